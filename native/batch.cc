#include "batch.h"

#include <string>

#include "errors.h"

namespace convscope {

void CheckChannelValues(const ChannelValues& values, int64_t channels, const char* name) {
  if (values.size() == 1 || static_cast<int64_t>(values.size()) == channels) return;
  throw OutOfRange("Expected one value or one per channel (" + std::to_string(channels) + ") for " + name + " but received " +
                   std::to_string(values.size()));
}

void StandardiseInPlace(at::Tensor& x, const ChannelValues& mean, const ChannelValues& std) {
  const int64_t channels = x.size(1);
  CheckChannelValues(mean, channels, "mean");
  CheckChannelValues(std, channels, "std");
  if (mean.size() == 1 && std.size() == 1) {
    if (mean[0] != 0.0 || std[0] != 1.0) x.sub_(mean[0]).div_(std[0]);
    return;
  }
  for (int64_t c = 0; c < channels; ++c) {
    const double m = mean.size() == 1 ? mean[0] : mean[c];
    const double s = std.size() == 1 ? std[0] : std[c];
    x.select(1, c).sub_(m).div_(s);
  }
}

Batch GatherBatch(const at::Tensor& images, const at::Tensor& labels, const at::Tensor& rows, const ChannelValues& mean,
                  const ChannelValues& std) {
  at::Tensor picked = images.index_select(0, rows);
  if (images.dim() == 3) picked = picked.unsqueeze(1);
  // index_select made a new tensor, so a float batch may be standardised in place.
  at::Tensor x = images.scalar_type() == at::kByte ? picked.to(at::kFloat).div_(255.0) : picked.to(at::kFloat);
  StandardiseInPlace(x, mean, std);
  return {x, labels.index_select(0, rows).to(at::kLong)};
}

// x padded by `shift` on every side with a value per channel: constant_pad_nd for one value (the grey
// path as it always was), else a filled tensor with x copied into its middle.
static at::Tensor PadChannels(const at::Tensor& x, int64_t shift, const ChannelValues& padValues) {
  if (padValues.size() == 1) return at::constant_pad_nd(x, {shift, shift, shift, shift}, padValues[0]);
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  at::Tensor padded = at::empty({n, c, h + 2 * shift, w + 2 * shift}, x.options());
  for (int64_t k = 0; k < c; ++k) padded.select(1, k).fill_(padValues[k]);
  padded.narrow(2, shift, h).narrow(3, shift, w).copy_(x);
  return padded;
}

at::Tensor AugmentBatch(const at::Tensor& x, int64_t shift, bool flip, const ChannelValues& padValues) {
  const int64_t n = x.size(0), c = x.size(1), h = x.size(2), w = x.size(3);
  CheckChannelValues(padValues, c, "padValues");
  at::Tensor out = x;
  if (shift > 0) {
    const auto indexOptions = x.options().dtype(at::kLong);
    at::Tensor padded = PadChannels(x, shift, padValues);
    at::Tensor rows = at::randint(0, 2 * shift + 1, {n, 1}, indexOptions) + at::arange(h, indexOptions).unsqueeze(0);
    at::Tensor cols = at::randint(0, 2 * shift + 1, {n, 1}, indexOptions) + at::arange(w, indexOptions).unsqueeze(0);
    // Rows first ([B, C, H, W + 2s]), then columns ([B, C, H, W]); every channel of an image takes its offsets.
    out = padded.gather(2, rows.view({n, 1, h, 1}).expand({n, c, h, w + 2 * shift}));
    out = out.gather(3, cols.view({n, 1, 1, w}).expand({n, c, h, w}));
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
