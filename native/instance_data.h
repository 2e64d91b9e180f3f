// Per-environment state (safe under worker threads): the constructors the addon needs to create
// wrapped objects from C++.
#pragma once

#include <napi.h>

namespace at { class Tensor; }

namespace convscope {

struct InstanceData {
  // A tensor handed from TensorWrap::Wrap to the constructor it calls next. (An External would do,
  // but each one leaves a small allocation behind until V8 happens to collect it.)
  at::Tensor* pendingTensor = nullptr;
  Napi::FunctionReference tensorConstructor;
  Napi::FunctionReference optimizerConstructor;
  Napi::FunctionReference scriptModelConstructor;
  // distributed.cc: joinGroup makes its ProcessGroup objects with it.
  Napi::FunctionReference processGroupConstructor;
  // reducer.cc: ReducerFrom checks its objects against it.
  Napi::FunctionReference gradientReducerConstructor;
  // Set only in builds with the CUDA sources (cuda/graph_step.cc).
  Napi::FunctionReference stepGraphConstructor;
};

inline InstanceData& GetInstanceData(Napi::Env env) {
  return *env.GetInstanceData<InstanceData>();
}

}  // namespace convscope
