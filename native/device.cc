#include "device.h"

#include <ATen/Parallel.h>
#include <torch/version.h>

#include "args.h"
#include "cpu_block_cache.h"
#include "errors.h"
#include "mkl_cpu_check.h"
#include "tensor.h"

#include <dlfcn.h>
#include <malloc.h>

namespace convscope {

// The libtorch actually loaded (not the one the build looked for): the file that holds one of its symbols.
static std::string LoadedLibtorchPath() {
  Dl_info where;
  if (dladdr(reinterpret_cast<void*>(&at::get_num_threads), &where) && where.dli_fname) return where.dli_fname;
  return "unknown";
}

torch::Device ParseDevice(const std::string& name) {
  if (name == "cpu") return torch::Device(torch::kCPU);
  if (name == "cuda" || name.rfind("cuda:", 0) == 0) {
    if (!torch::cuda::is_available()) {
      throw std::runtime_error(
          "CUDA was asked for but is not available: the libtorch loaded from " + LoadedLibtorchPath() +
          " has no CUDA support or sees no GPU. Rebuild convscope against a CUDA libtorch "
          "(LIBTORCH=/path/to/libtorch-cuda or TORCH_PYTHON=python-with-cuda-torch, then npm run build:addon).");
    }
    torch::Device device(name);
    if (device.has_index() && device.index() >= static_cast<int>(torch::cuda::device_count())) {
      throw OutOfRange("Expected a CUDA device index below " + std::to_string(torch::cuda::device_count()) +
                       " for device but received \"" + name + "\"");
    }
    return device;
  }
  throw OutOfRange("Expected \"cpu\", \"cuda\" or \"cuda:N\" for device but received \"" + name + "\"");
}

namespace {

Napi::Value TorchInfo(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    auto env = info.Env();
    auto result = Napi::Object::New(env);
    result.Set("version", TORCH_VERSION);
    result.Set("cuda", torch::cuda::is_available());
    result.Set("cudnn", torch::cuda::cudnn_is_available());
    result.Set("deviceCount", static_cast<double>(torch::cuda::device_count()));
    result.Set("threads", static_cast<double>(at::get_num_threads()));
    result.Set("libtorchPath", LoadedLibtorchPath());
    // The addon's own at::parallel_for loops (fused Adam, the fused pooling) are OpenMP regions compiled
    // into the addon: built without -fopenmp they would silently run on one thread.
#ifdef _OPENMP
    result.Set("parallelKernels", true);
#else
    result.Set("parallelKernels", false);
#endif
    MklCpuCheckStats mkl = ReadMklCpuCheckStats();
    auto mklInfo = Napi::Object::New(env);
    mklInfo.Set("mkl", mkl.present);
    mklInfo.Set("branch", mkl.branch);
    mklInfo.Set("anyCpu", mkl.lifted);
    mklInfo.Set("intelCpu", mkl.intel);
    result.Set("mklCpuCheck", mklInfo);
#ifdef CONVSCOPE_WITH_CUDA
    result.Set("builtWithCuda", true);
#else
    result.Set("builtWithCuda", false);
#endif
#ifdef CONVSCOPE_CUDA_SOURCES
    result.Set("cudaSources", true);
#else
    result.Set("cudaSources", false);
#endif
    return result;
  });
}

Napi::Value SetNumThreads(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    at::set_num_threads(static_cast<int>(ReadInt(info[0], "threads", 1, 1024)));
    return info.Env().Undefined();
  });
}

Napi::Value ManualSeed(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    torch::manual_seed(static_cast<uint64_t>(ReadInt(info[0], "seed", 0, INT64_C(9007199254740991))));
    return info.Env().Undefined();
  });
}

// Hands memory freed by libtorch back to the OS: the blocks the CPU block cache keeps for reuse
// (cpu_block_cache.h), then what glibc keeps in its arenas (its mmap threshold rises after the first
// large free), so that a process done with training or evaluating does not hold on to its memory.
Napi::Value ReleaseFreeMemory(const Napi::CallbackInfo& info) {
  EmptyCpuBlockCache();
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
}

// Only glibc's part of ReleaseFreeMemory: the eager loop's periodic trim, which must keep the
// cached blocks that the next steps reuse.
Napi::Value TrimHeap(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), malloc_trim(0) != 0);
}

Napi::Value LiveTensors(const Napi::CallbackInfo& info) {
  return Napi::Number::New(info.Env(), static_cast<double>(TensorWrap::LiveCount()));
}

}  // namespace

void RegisterDevice(Napi::Env env, Napi::Object exports) {
  exports.Set("torchInfo", Napi::Function::New(env, TorchInfo, "torchInfo"));
  exports.Set("setNumThreads", Napi::Function::New(env, SetNumThreads, "setNumThreads"));
  exports.Set("manualSeed", Napi::Function::New(env, ManualSeed, "manualSeed"));
  exports.Set("liveTensors", Napi::Function::New(env, LiveTensors, "liveTensors"));
  exports.Set("releaseFreeMemory", Napi::Function::New(env, ReleaseFreeMemory, "releaseFreeMemory"));
  exports.Set("trimHeap", Napi::Function::New(env, TrimHeap, "trimHeap"));
}

}  // namespace convscope
