// Batch normalisation for both paths (the eager op batchNorm and the scripted graph's
// convscope.batch_norm), and its synchronised form, PyTorch's SyncBatchNorm: while a data-parallel
// run has asked for it (syncBatchNormOver), a training forward normalises with the mean and variance
// of the whole global batch, every rank's images together, and backward sums the two per-channel
// terms of the input's gradient over the ranks. With 2 ranks at batch 64, every batch-norm layer
// then sees what one process sees at batch 128, and the running statistics are the same on every
// rank. Without a group (one process, evaluation, or no request) it is at::batch_norm.
#pragma once

#include <torch/torch.h>

#include <memory>

namespace convscope {

class Group;

// nn.BatchNorm's forward, without the batch count (the callers count num_batches_tracked): in
// training the batch's statistics (the group's, while one is set), updating the running ones in
// place; in evaluation the running statistics.
at::Tensor BatchNormForward(const at::Tensor& x, const c10::optional<at::Tensor>& weight, const c10::optional<at::Tensor>& bias,
                            at::Tensor& runningMean, at::Tensor& runningVar, bool training, double momentum, double eps);

// The group whose ranks' statistics training batch norms combine from now on, or none (nullptr).
// One per process: a process is one rank of one group.
void SyncBatchNormOver(std::shared_ptr<Group> group);

// Forgets `group` if batch norms sync over it (the group is being left).
void StopSyncingOver(const Group* group);

// Whether training batch norms sync over a group now.
bool SyncingBatchNorm();

}  // namespace convscope
