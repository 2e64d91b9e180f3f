// The eager path's operations: each runs one libtorch op (with autograd) and returns a new Tensor.
// The layer logic lives in TypeScript (src/nn); this file is deliberately thin.
#pragma once

#include <napi.h>

namespace convscope {
void RegisterOps(Napi::Env env, Napi::Object exports);
}
