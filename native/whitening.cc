#include "whitening.h"

#include <algorithm>

#include "args.h"
#include "errors.h"
#include "tensor.h"

namespace convscope {

// Images per chunk of the covariance sums: 500 28x28 images of 5x5 patches are 58 MB of doubles.
constexpr int64_t kWhiteningChunk = 500;

at::Tensor PatchWhiteningFilters(const at::Tensor& images, int64_t kernel, double mean, double stdev, double eps) {
  torch::NoGradGuard noGrad;
  const int64_t dims = kernel * kernel;
  // Double precision: the smallest eigenvalues of a pixel covariance are tiny, and float32 would lose
  // them. The sums run over chunks of images, so memory stays bounded by a chunk's patches.
  const auto options = images.options().dtype(at::kDouble);
  at::Tensor products = torch::zeros({dims, dims}, options);
  at::Tensor sums = torch::zeros({dims}, options);
  int64_t rows = 0;
  for (const at::Tensor& chunk : images.split(kWhiteningChunk)) {
    at::Tensor x = chunk.to(at::kDouble).div(255.0).sub(mean).div(stdev).unsqueeze(1);
    // [n, k*k, L] -> every k x k patch as a row of k*k values.
    at::Tensor patches = at::im2col(x, {kernel, kernel}, {1, 1}, {0, 0}, {1, 1}).transpose(1, 2).reshape({-1, dims});
    products.add_(patches.t().mm(patches));
    sums.add_(patches.sum(0));
    rows += patches.size(0);
  }
  if (rows < 2) throw OutOfRange("Expected images with at least two patches of the kernel's size for images");
  at::Tensor covariance = (products - sums.outer(sums).div(static_cast<double>(rows))).div(static_cast<double>(rows - 1));
  auto [values, vectors] = at::linalg_eigh(covariance);
  // eigh answers in increasing order: the largest (smoothest) components first.
  values = values.flip(0);
  vectors = vectors.flip(1);
  at::Tensor filters = vectors.t().div((values + eps).sqrt().unsqueeze(1)).reshape({dims, 1, kernel, kernel});
  return at::cat({filters, filters.neg()}, 0).to(at::kFloat).contiguous();
}

namespace {

// whitening.filters(images, kernel, mean, std, eps)
Napi::Value WhiteningFilters(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor images = TensorWrap::From(info[0], "images");
    if (images.dim() != 3 || images.scalar_type() != at::kByte) throw OutOfRange("Expected uint8 images of shape [N, H, W] for images");
    const int64_t kernel = ReadInt(info[1], "kernel", 1, std::min(images.size(1), images.size(2)));
    const double stdev = ReadNumber(info[3], "std");
    if (!(stdev > 0)) throw OutOfRange("Expected a positive number for std");
    const double eps = ReadNumber(info[4], "eps");
    if (!(eps > 0)) throw OutOfRange("Expected a positive number for eps");
    return TensorWrap::Wrap(info.Env(), PatchWhiteningFilters(images, kernel, ReadNumber(info[2], "mean"), stdev, eps));
  });
}

}  // namespace

void RegisterWhitening(Napi::Env env, Napi::Object exports) {
  auto table = Napi::Object::New(env);
  table.Set("filters", Napi::Function::New(env, WhiteningFilters, "filters"));
  exports.Set("whitening", table);
}

}  // namespace convscope
