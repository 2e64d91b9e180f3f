// The addon's entry point: only registers what the other files define.
#include <napi.h>

#include "checkpoint.h"
#include "cpu_block_cache.h"
#include "device.h"
#include "distributed.h"
#include "ema.h"
#include "instance_data.h"
#include "mkl_cpu_check.h"
#include "ops.h"
#include "optimizer.h"
#include "precision.h"
#include "script_model.h"
#include "script_ops.h"
#include "tensor.h"
#include "torch_compat.h"
#include "trainer.h"
#include "tta.h"
#include "whitening.h"
#ifdef CONVSCOPE_CUDA_SOURCES
#include "cuda/cuda_runtime.h"
#endif

namespace convscope {

Napi::Object Init(Napi::Env env, Napi::Object exports) {
  compat::DisableNnpack();
  try {
    InstallCpuBlockCache();
    ReadMklAnyCpuSetting();
    RegisterScriptOps();
  } catch (const std::exception& e) {
    throw Napi::Error::New(env, e.what());
  }
  auto* data = new InstanceData();
  env.SetInstanceData<InstanceData>(data);

  Napi::Function tensor = TensorWrap::Define(env);
  data->tensorConstructor = Napi::Persistent(tensor);
  exports.Set("Tensor", tensor);

  Napi::Function optimizer = OptimizerWrap::Define(env);
  data->optimizerConstructor = Napi::Persistent(optimizer);
  exports.Set("Optimizer", optimizer);

  Napi::Function scriptModel = ScriptModelWrap::Define(env);
  data->scriptModelConstructor = Napi::Persistent(scriptModel);
  exports.Set("ScriptModel", scriptModel);

  RegisterDevice(env, exports);
  RegisterCpuBlockCache(env, exports);
  RegisterOps(env, exports);
  RegisterCheckpoint(env, exports);
  RegisterTrainer(env, exports);
  RegisterPrecision(env, exports);
  RegisterDistributed(env, exports);
  RegisterEma(env, exports);
  RegisterTta(env, exports);
  RegisterWhitening(env, exports);
#ifdef CONVSCOPE_CUDA_SOURCES
  RegisterCuda(env, exports);
#endif
  return exports;
}

}  // namespace convscope

static Napi::Object InitAddon(Napi::Env env, Napi::Object exports) {
  return convscope::Init(env, exports);
}

NODE_API_MODULE(convscope, InitAddon)
