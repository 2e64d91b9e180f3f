// CUDA-only entry points, compiled only where scripts/find-libtorch.js finds a CUDA libtorch and a
// CUDA toolkit (CONVSCOPE_CUDA_SOURCES). Builds without them have no `cuda` object on the addon, and
// torchInfo().cudaSources is false.
#pragma once

#include <napi.h>

namespace convscope {

void RegisterCuda(Napi::Env env, Napi::Object exports);

}  // namespace convscope
