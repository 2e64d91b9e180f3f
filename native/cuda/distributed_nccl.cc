// Compiled on its own (binding.gyp lists it among the CUDA-only sources; CMake keeps it out of its
// unity batches): distributed_nccl.h says why. USE_C10D_NCCL is what libtorch's own build defines for
// the sources that see ProcessGroupNCCL; it is defined here only, for this file.
#ifdef CONVSCOPE_NCCL
#define USE_C10D_NCCL 1

#include "distributed_nccl.h"

#include <c10/cuda/CUDAFunctions.h>
#include <torch/csrc/distributed/c10d/ProcessGroupNCCL.hpp>

#include <cstdlib>

namespace convscope {

c10::intrusive_ptr<c10d::Backend> ConnectNccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                              std::chrono::milliseconds timeout, int device) {
  // Read by ProcessGroupNCCL's constructor: wait() then honours the timeout and throws, where the
  // default lets the watchdog thread end the whole process. A user's own setting wins.
  setenv("TORCH_NCCL_BLOCKING_WAIT", "1", /*overwrite=*/0);
  c10::cuda::set_device(static_cast<c10::DeviceIndex>(device));
  auto options = c10d::ProcessGroupNCCL::Options::create();
  options->timeout = timeout;
  return c10::make_intrusive<c10d::ProcessGroupNCCL>(store, rank, size, options);
}

}  // namespace convscope
#endif
