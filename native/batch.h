// The arithmetic of one training step that both paths share: the eager path reaches it through the
// ops in ops.cc, the native epoch loop (trainer.cc) calls it directly, so the two cannot drift apart.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace convscope {

struct Batch {
  at::Tensor x;  // float [B, 1, H, W]: pixels scaled to [0, 1], then standardised
  at::Tensor y;  // int64 [B]
};

// Rows `rows` of uint8 images [N, H, W] and labels [N], on the images' device.
Batch GatherBatch(const at::Tensor& images, const at::Tensor& labels, const at::Tensor& rows, double mean, double std);

// Random shifts and horizontal flips of a gathered batch x [B, 1, H, W], each image its own: padded
// by `shift` pixels with `padValue` (a blank pixel after standardisation), cropped back to H x W at
// an offset drawn per image from [0, 2 * shift] in each direction, then mirrored left-right with
// probability 1/2 when `flip`. Draws from the default generator of x's device, in a fixed order (row
// offsets, column offsets, flips), so both paths and a CUDA graph's replays see the same kind of draws.
at::Tensor AugmentBatch(const at::Tensor& x, int64_t shift, bool flip, double padValue);

// sum over tensors of sum(|t|): the L1 penalty before its coefficient.
at::Tensor SumOfAbs(const std::vector<at::Tensor>& tensors);

// [loss * batch size, correct predictions] as float64 on the step's device, to be summed there and
// read back only now and then (a read-back synchronises a GPU).
at::Tensor BatchStats(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& loss);

}  // namespace convscope
