// One of the addon's two unity units (native/unity/bindings.cc says why): the training step, the
// fused kernels and the TorchScript ops, about as much compile time as the other unit.
#include "../batch.cc"
#include "../conv2d.cc"
#include "../cpu_block_cache.cc"
#include "../fused_adam.cc"
#include "../pool_activation.cc"
#include "../precision.cc"
#include "../script_ops.cc"
#include "../sync_batch_norm.cc"
#include "../train_step.cc"
#include "../ema.cc"
#include "../tta.cc"
#include "../whitening.cc"
