// Data-parallel training on c10d, PyTorch's own distributed engine: a process group joined through
// a TCPStore rendezvous (torchrun's), Gloo for CPU tensors (distributed_gloo.h), and the collectives
// training needs: broadcast from rank 0, a sum of a few numbers, and the bucketed gradient average
// the native epoch loop (trainer.cc) and the eager path both run between backward and the optimizer.
#pragma once

#include <napi.h>
#include <torch/torch.h>

#include <memory>
#include <vector>

namespace convscope {

// A joined process group (defined in distributed.cc; opaque to the other sources).
class Group;

// The group held by a ProcessGroup object; throws naming `name` when it is not one, or is disposed.
std::shared_ptr<Group> GroupFrom(const Napi::Value& value, const char* name);

// Averages the gradients of `params` over the group's ranks, bucket by bucket (about 25 MiB each, as
// DDP's buckets; all of them in flight at once), and `objective` with them. Returns the mean objective,
// a one-element tensor on its device, identical on every rank, so that every rank takes the same
// decision about a non-finite loss. A missing gradient counts as zeros. Blocks until done: call it
// off the JS thread. Throws when a peer fails or the group's timeout passes.
at::Tensor AverageGradients(Group& group, const std::vector<at::Tensor>& params, const at::Tensor& objective);

void RegisterDistributed(Napi::Env env, Napi::Object exports);

}  // namespace convscope
