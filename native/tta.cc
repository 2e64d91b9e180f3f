#include "tta.h"

#include <algorithm>
#include <cstdlib>

#include "args.h"
#include "errors.h"
#include "tensor.h"

namespace convscope {

at::Tensor TranslatedView(const at::Tensor& x, int64_t dy, int64_t dx, bool flip, double padValue) {
  at::Tensor out = flip ? x.flip({3}) : x;
  if (dy == 0 && dx == 0) return out;
  const int64_t h = x.size(2), w = x.size(3);
  const int64_t pad = std::max(std::abs(dy), std::abs(dx));
  at::Tensor padded = at::constant_pad_nd(out, {pad, pad, pad, pad}, padValue);
  // Pixel (i, j) of the view is pixel (i - dy, j - dx) of the image.
  return padded.slice(2, pad - dy, pad - dy + h).slice(3, pad - dx, pad - dx + w).contiguous();
}

namespace {

// tta.view(x, dy, dx, flip, padValue)
Napi::Value TtaView(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor x = TensorWrap::From(info[0], "x");
    if (x.dim() != 4) throw OutOfRange("Expected a batch [N, C, H, W] for x");
    const int64_t dy = ReadInt(info[1], "dy", -(x.size(2) - 1), x.size(2) - 1);
    const int64_t dx = ReadInt(info[2], "dx", -(x.size(3) - 1), x.size(3) - 1);
    return TensorWrap::Wrap(info.Env(), TranslatedView(x, dy, dx, ReadBool(info[3], "flip"), ReadNumber(info[4], "padValue")));
  });
}

}  // namespace

void RegisterTta(Napi::Env env, Napi::Object exports) {
  auto table = Napi::Object::New(env);
  table.Set("view", Napi::Function::New(env, TtaView, "view"));
  exports.Set("tta", table);
}

}  // namespace convscope
