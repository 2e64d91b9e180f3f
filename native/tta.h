// Test-time augmentation's views of a batch: the batch moved by whole pixels and/or mirrored
// left-right, the same for every image (evaluation averages the model's logits over such views).
#pragma once

#include <napi.h>
#include <torch/torch.h>

namespace convscope {

// x [B, C, H, W] mirrored left-right when `flip`, then moved `dy` pixels down and `dx` right (|dy|,
// |dx| < H, W), the uncovered pixels set to `padValue`.
at::Tensor TranslatedView(const at::Tensor& x, int64_t dy, int64_t dx, bool flip, double padValue);

// exports.tta = { view(x, dy, dx, flip, padValue) }.
void RegisterTta(Napi::Env env, Napi::Object exports);

}  // namespace convscope
