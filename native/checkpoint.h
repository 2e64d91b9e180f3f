// State dicts in PyTorch's own file format (the zip archive torch.save writes), so that Python's
// torch.load reads convscope checkpoints and convscope reads Python's.
#pragma once

#include <napi.h>

namespace convscope {
void RegisterCheckpoint(Napi::Env env, Napi::Object exports);
}
