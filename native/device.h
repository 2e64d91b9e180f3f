// Which libtorch was loaded and what it can do: version, CUDA, threads, seeding.
#pragma once

#include <napi.h>
#include <torch/torch.h>

namespace convscope {
// "cpu", "cuda" or "cuda:N"; a clear error when CUDA is asked for and this libtorch has none.
torch::Device ParseDevice(const std::string& name);
void RegisterDevice(Napi::Env env, Napi::Object exports);
}
