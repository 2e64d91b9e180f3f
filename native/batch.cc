#include "batch.h"

namespace convscope {

Batch GatherBatch(const at::Tensor& images, const at::Tensor& labels, const at::Tensor& rows, double mean, double std) {
  at::Tensor x = images.index_select(0, rows).unsqueeze(1).to(at::kFloat).div_(255.0);
  if (mean != 0.0 || std != 1.0) x.sub_(mean).div_(std);
  return {x, labels.index_select(0, rows).to(at::kLong)};
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
