#include "batch.h"

namespace convscope {

Batch GatherBatch(const at::Tensor& images, const at::Tensor& labels, const at::Tensor& rows, double mean, double std) {
  at::Tensor x = images.index_select(0, rows).unsqueeze(1).to(at::kFloat).div_(255.0);
  if (mean != 0.0 || std != 1.0) x.sub_(mean).div_(std);
  return {x, labels.index_select(0, rows).to(at::kLong)};
}

at::Tensor AugmentBatch(const at::Tensor& x, int64_t shift, bool flip, double padValue) {
  const int64_t n = x.size(0), h = x.size(2), w = x.size(3);
  at::Tensor out = x;
  if (shift > 0) {
    const auto indexOptions = x.options().dtype(at::kLong);
    at::Tensor padded = at::constant_pad_nd(x, {shift, shift, shift, shift}, padValue);
    at::Tensor rows = at::randint(0, 2 * shift + 1, {n, 1}, indexOptions) + at::arange(h, indexOptions).unsqueeze(0);
    at::Tensor cols = at::randint(0, 2 * shift + 1, {n, 1}, indexOptions) + at::arange(w, indexOptions).unsqueeze(0);
    // Rows first ([B, 1, H, W + 2s]), then columns ([B, 1, H, W]).
    out = padded.gather(2, rows.view({n, 1, h, 1}).expand({n, 1, h, w + 2 * shift}));
    out = out.gather(3, cols.view({n, 1, 1, w}).expand({n, 1, h, w}));
  }
  if (flip) {
    at::Tensor mirrored = at::rand({n, 1, 1, 1}, x.options()).lt(0.5);
    out = at::where(mirrored, out.flip({3}), out);
  }
  return out;
}

at::Tensor SumOfAbs(const std::vector<at::Tensor>& tensors) {
  at::Tensor total;
  for (const auto& t : tensors) total = total.defined() ? total + t.abs().sum() : t.abs().sum();
  return total;
}

at::Tensor BatchStats(const at::Tensor& logits, const at::Tensor& labels, const at::Tensor& loss) {
  at::Tensor sum = loss.detach().to(at::kDouble) * static_cast<double>(labels.size(0));
  at::Tensor correct = logits.detach().argmax(1).eq(labels).sum().to(at::kDouble);
  return at::stack({sum, correct});
}

}  // namespace convscope
