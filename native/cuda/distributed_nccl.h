// ProcessGroupNCCL for a data-parallel run's CUDA tensors, made through c10d's own constructor. Its
// header includes nccl.h, which the CUDA PyTorch wheel does not ship (the nvidia-nccl wheel it pins
// does: scripts/find-libtorch.js finds it); only distributed_nccl.cc includes it, compiled on its
// own. Built only where CONVSCOPE_NCCL is defined (a CUDA build that found nccl.h).
#pragma once

#include <torch/csrc/distributed/c10d/Backend.hpp>
#include <torch/csrc/distributed/c10d/Store.hpp>

#include <chrono>

namespace convscope {

// An NCCL process group of `size` ranks over `store`, on CUDA device `device` (the rank's LOCAL_RANK).
// Collectives wait at most `timeout` and then throw (TORCH_NCCL_BLOCKING_WAIT), instead of NCCL's
// watchdog ending the process.
c10::intrusive_ptr<c10d::Backend> ConnectNccl(const c10::intrusive_ptr<c10d::Store>& store, int rank, int size,
                                              std::chrono::milliseconds timeout, int device);

}  // namespace convscope
