// Compiled on its own (binding.gyp lists it beside the unity units; CMake keeps it out of its unity
// batches): distributed_gloo.h says why. USE_C10D_GLOO is what libtorch's own build defines for the
// sources that see ProcessGroupGloo; it is defined here only, for this file.
#define USE_C10D_GLOO 1

#include "torch_compat.h"

#if CONVSCOPE_HAS_C10D
#include <torch/csrc/distributed/c10d/ProcessGroupGloo.hpp>

#include "distributed_gloo.h"

namespace convscope {

c10::intrusive_ptr<c10d::Backend> ConnectGloo(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                              std::chrono::milliseconds timeout) {
  // create_default picks the network device as PyTorch does: GLOO_SOCKET_IFNAME when set, else this
  // host's name (or the loopback device when the name does not resolve).
  auto options = c10d::ProcessGroupGloo::Options::create_default(timeout);
  // Two threads run the group's collectives: the gradient buckets of a step overlap on them.
  options->threads = 2;
  return c10::make_intrusive<c10d::ProcessGroupGloo>(store, rank, size, options);
}

}  // namespace convscope
#endif
