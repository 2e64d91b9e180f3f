// Data-parallel training on c10d, PyTorch's own distributed engine: a process group joined through
// a TCPStore or FileStore rendezvous (torchrun's, or a shared file), Gloo for CPU tensors
// (distributed_gloo.h), NCCL for CUDA tensors (cuda/distributed_nccl.h), and the collectives training
// needs beside the gradients (which DDP's Reducer averages: reducer.h): broadcast from rank 0 and a
// sum of a few numbers.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <functional>
#include <memory>
#include <mutex>
#include <string>

#include "torch_compat.h"

#if CONVSCOPE_HAS_C10D
#include <torch/csrc/distributed/c10d/ProcessGroup.hpp>
#endif

namespace convscope {

// A joined process group. Shared by the JS object that holds it and by the work in flight on it.
class Group {
 public:
#if CONVSCOPE_HAS_C10D
  c10::intrusive_ptr<c10d::Store> store;
  c10::intrusive_ptr<c10d::Backend> backend;
  // The backend as a c10d::ProcessGroup: what DDP's Reducer issues its bucket allreduces on.
  c10::intrusive_ptr<c10d::ProcessGroup> processGroup;
  // Where the group's collectives want their tensors: the CPU for Gloo, the rank's GPU for NCCL.
  at::Device device = at::kCPU;
#endif
  int rank = 0, size = 1;
  std::string backendName;
  // Collectives must be issued in the same order on every rank: one caller at a time per group.
  std::mutex order;
};

#if CONVSCOPE_HAS_C10D
// The sum over the ranks of a small tensor (a few numbers), made on the group's device for the
// collective (NCCL reduces GPU tensors only) and returned on `t`'s. Blocking. The caller keeps the
// group's order: it holds `order`, or runs inside work that does (a backward the Reducer runs).
at::Tensor SumOverGroup(Group& group, const at::Tensor& t);
#endif

// The group held by a ProcessGroup object; throws naming `name` when it is not one, or is disposed.
std::shared_ptr<Group> GroupFrom(const Napi::Value& value, const char* name);

// Runs `work` (blocking: a collective, a rendezvous, a backward pass that waits for its buckets) on a
// libuv worker thread; the returned promise settles on the main thread with `finish`'s value, or
// rejects with the failure as its JS error class.
Napi::Value QueueCollective(Napi::Env env, const char* name, std::function<void()> work, std::function<Napi::Value(Napi::Env)> finish);

void RegisterDistributed(Napi::Env env, Napi::Object exports);

}  // namespace convscope
