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

// distributed.GradientReducer and distributed.liveReducers, on the addon's `distributed` object.
void RegisterReducer(Napi::Env env, Napi::Object distributed);

}  // namespace convscope
