#include "cuda_runtime.h"

#include <c10/core/Allocator.h>
#include <c10/cuda/CUDACachingAllocator.h>
#include <c10/cuda/CUDAFunctions.h>

#include "../args.h"
#include "../errors.h"
#include "graph_step.h"

// Declared in ATen/cuda/CUDAContextLight.h, which also includes the cuSPARSE and cuBLAS headers
// that a CUDA toolkit without those libraries lacks; this file needs only the one function.
namespace at::cuda {
void clearCublasWorkspaces();
}

namespace convscope {
namespace {

constexpr size_t kAggregate = static_cast<size_t>(c10::CachingAllocator::StatType::AGGREGATE);

c10::DeviceIndex ReadDeviceIndex(const Napi::Value& value) {
  if (value.IsUndefined()) return c10::cuda::current_device();
  return static_cast<c10::DeviceIndex>(ReadInt(value, "device", 0, c10::cuda::device_count() - 1));
}

// memory(device?) -> { allocated, reserved, peakAllocated }: bytes held by libtorch's caching
// allocator on one GPU, so tests and benchmarks can tell a leak from the allocator's cache.
Napi::Value Memory(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    const auto stats = c10::cuda::CUDACachingAllocator::getDeviceStats(ReadDeviceIndex(info[0]));
    auto result = Napi::Object::New(info.Env());
    result.Set("allocated", static_cast<double>(stats.allocated_bytes[kAggregate].current));
    result.Set("reserved", static_cast<double>(stats.reserved_bytes[kAggregate].current));
    result.Set("peakAllocated", static_cast<double>(stats.allocated_bytes[kAggregate].peak));
    return result;
  });
}

// synchronize(): waits for every kernel queued on the current GPU; timings are only honest after it.
Napi::Value Synchronize(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    c10::cuda::device_synchronize();
    return info.Env().Undefined();
  });
}

// emptyCache(): returns the allocator's unused blocks to the driver (after an out-of-memory error,
// say), the cuBLAS workspaces included: libtorch keeps one per (thread's handle, stream) for the
// process's life, and they are made again when next needed. Waits for the GPU first, so no kernel
// still uses a workspace; keeps them while a captured graph (which holds their addresses) lives.
Napi::Value EmptyCache(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    c10::cuda::device_synchronize();
    if (LiveGraphCount() == 0) at::cuda::clearCublasWorkspaces();
    c10::cuda::CUDACachingAllocator::emptyCache();
    return info.Env().Undefined();
  });
}

}  // namespace

void RegisterCuda(Napi::Env env, Napi::Object exports) {
  auto cuda = Napi::Object::New(env);
  cuda.Set("memory", Napi::Function::New(env, Memory, "memory"));
  cuda.Set("synchronize", Napi::Function::New(env, Synchronize, "synchronize"));
  cuda.Set("emptyCache", Napi::Function::New(env, EmptyCache, "emptyCache"));
  RegisterGraphStep(env, cuda);
  exports.Set("cuda", cuda);
}

}  // namespace convscope
