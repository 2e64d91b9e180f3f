// The one door to gloo: ProcessGroupGloo made through c10d's own constructor. Its header includes
// gloo's, which come from Debian's libgloo-dev and are older than the gloo linked into libtorch, so
// only distributed_gloo.cc includes it, compiled on its own (never in a unity unit), and no gloo type
// is ever constructed or touched here: c10d builds them, inside libtorch, with libtorch's gloo.
// Declared only where c10d is used (torch_compat.h's CONVSCOPE_HAS_C10D).
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

namespace convscope {

// A Gloo process group of `size` ranks over `store` (the rendezvous): connects the full mesh before
// returning and throws when a peer does not come within `timeout`, which also bounds every collective.
c10::intrusive_ptr<c10d::Backend> ConnectGloo(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                              std::chrono::milliseconds timeout);

}  // namespace convscope
