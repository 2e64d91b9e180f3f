// Patch-whitening initialisation of a first convolution (as airbench and hlb-CIFAR10 start theirs):
// filters from the eigenvectors of the covariance of the training images' k x k patches, each scaled
// by 1 / sqrt(eigenvalue + eps), so that the convolution's outputs over those patches are decorrelated
// with unit variance; each filter also with its sign flipped, so that a ReLU keeps both halves.
#pragma once

#include <napi.h>
#include <torch/torch.h>

namespace convscope {

// uint8 images [N, H, W] (standardised with mean and stdev first) -> float32 filters [2 k^2, 1, k, k]:
// the eigenvectors of the patch covariance by decreasing eigenvalue, then the same negated.
at::Tensor PatchWhiteningFilters(const at::Tensor& images, int64_t kernel, double mean, double stdev, double eps);

// exports.whitening = { filters(images, kernel, mean, std, eps) }.
void RegisterWhitening(Napi::Env env, Napi::Object exports);

}  // namespace convscope
