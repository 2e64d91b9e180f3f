// The arithmetic of one training step that both paths share: the eager path reaches it through the
// ops in ops.cc, the native epoch loop (trainer.cc) calls it directly, so the two cannot drift apart.
#pragma once

#include <torch/torch.h>

#include <vector>

namespace convscope {

struct Batch {
  at::Tensor x;  // float [B, C, H, W]: pixels in [0, 1], then standardised per channel
  at::Tensor y;  // int64 [B]
};

// A value per image channel (a mean, a std, a padding value); one value stands for every channel.
using ChannelValues = std::vector<double>;

// Throws OutOfRange unless `values` has one value, or one per channel of `channels`.
void CheckChannelValues(const ChannelValues& values, int64_t channels, const char* name);

// Standardises x [B, C, H, W] in place: (x - mean[c]) / std[c]. One value each is the one-channel
// path as it always was (two scalar ops, nothing when mean 0 and std 1); otherwise two scalar ops per
// channel on channel views, so that no tensor is made from host values (a CUDA graph could not
// capture that copy).
void StandardiseInPlace(at::Tensor& x, const ChannelValues& mean, const ChannelValues& std);

// Rows `rows` of the images and labels [N], on the images' device. Images are uint8 [N, H, W] (grey,
// as IDX files hold them), uint8 [N, C, H, W] (scaled by 1/255) or float32 [N, C, H, W] already in
// [0, 1].
Batch GatherBatch(const at::Tensor& images, const at::Tensor& labels, const at::Tensor& rows, const ChannelValues& mean,
                  const ChannelValues& std);

// Random shifts and horizontal flips of a gathered batch x [B, C, H, W], each image its own and every
// channel of an image alike: padded by `shift` pixels with `padValues` (per channel; one value for
// all), cropped back to H x W at an offset drawn per image from [0, 2 * shift] in each direction (a
// random crop with padding, CIFAR's recipe at shift 4), then mirrored left-right with probability 1/2
// when `flip`. Draws from the default generator of x's device, in a fixed order (row offsets, column
// offsets, flips), so both paths and a CUDA graph's replays see the same kind of draws.
at::Tensor AugmentBatch(const at::Tensor& x, int64_t shift, bool flip, const ChannelValues& padValues);

// sum over tensors of sum(|t|): the L1 penalty before its coefficient.
at::Tensor SumOfAbs(const std::vector<at::Tensor>& tensors);

// [loss * batch size, correct predictions] as float64 on the step's device, to be summed there and
// read back only now and then (a read-back synchronises a GPU).
at::Tensor BatchStats(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& loss);

}  // namespace convscope
