// Gradients averaged over a data-parallel group by c10d's DDP Reducer, as PyTorch's
// DistributedDataParallel averages them: the parameters' gradients are copied into buckets as
// backward produces them (autograd hooks on their accumulators), each bucket's allreduce starts as
// soon as the bucket is full, and the Reducer's callback at the end of backward waits for the
// buckets and hands every parameter its averaged gradient (a view into its bucket). Backward, not
// the optimizer, therefore blocks on the network: it runs off the JS thread on both paths (the
// native epoch loop, trainer.cc, and the eager step's backward, GradientReducer.backward()).
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <memory>

namespace convscope {

// A Reducer over one run's parameters (defined in reducer.cc; opaque to the other sources).
class GradientReducer;

// The reducer held by a GradientReducer object; throws naming `name` when it is not one, or is disposed.
std::shared_ptr<GradientReducer> ReducerFrom(const Napi::Value& value, const char* name);

// Backward of `objective` with the Reducer averaging the gradients of its parameters over the
// group, overlapped with backward. Returns the objective's mean over the ranks (a one-element tensor
// on its device, the same on every rank), so that every rank takes the same decision about a
// non-finite loss. Blocks until the last bucket is averaged: call it off the JS thread. Throws when
// a peer fails or the group's timeout passes.
at::Tensor ReducedBackward(GradientReducer& reducer, const at::Tensor& objective);

// The gradients of a run's parameters averaged over the reducer's group beside a CUDA graph
// (cuda/graph_step.cc), where DDP's Reducer cannot serve: a replayed graph runs no autograd hooks,
// so the Reducer would never see the gradients of a replayed backward. The gradients go into flat
// buckets of at most DDP's 25 MiB, in reverse parameter order (the order backward produces them),
// allocated once: Pack and Unpack only launch copies on the current stream, so a graph captures
// them at fixed addresses; Allreduce issues one allreduce per bucket on the group and waits for
// them, between the replay of the backward's graph and that of the update's.
class BucketedAverage {
 public:
  // `params`: those the optimizer updates; the ones that require a gradient are averaged.
  BucketedAverage(std::shared_ptr<GradientReducer> reducer, const std::vector<at::Tensor>& params);
  ~BucketedAverage();
  BucketedAverage(const BucketedAverage&) = delete;
  BucketedAverage& operator=(const BucketedAverage&) = delete;

  // Copies every gradient (all must be defined: backward has run) into its bucket.
  void Pack();
  // Sums the buckets over the group (blocking; throws when a peer fails or the timeout passes).
  void Allreduce();
  // Divides the buckets by the group's size and copies them back into the gradients.
  void Unpack();
  size_t buckets() const;
  const GradientReducer* reducer() const;

 private:
  struct State;
  std::unique_ptr<State> state_;
};

// distributed.GradientReducer and distributed.liveReducers, on the addon's `distributed` object.
void RegisterReducer(Napi::Env env, Napi::Object distributed);

}  // namespace convscope
