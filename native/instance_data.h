// Per-environment state (safe under worker threads): the constructors the addon needs to create
// wrapped objects from C++.
#pragma once

#include <napi.h>

namespace convscope {

struct InstanceData {
  Napi::FunctionReference tensorConstructor;
  Napi::FunctionReference optimizerConstructor;
  Napi::FunctionReference scriptModelConstructor;
};

inline InstanceData& GetInstanceData(Napi::Env env) {
  return *env.GetInstanceData<InstanceData>();
}

}  // namespace convscope
