#include "ops.h"

#include <torch/torch.h>

#include "batch.h"
#include "train_step.h"
#include "device.h"
#include "args.h"
#include "conv2d.h"
#include "errors.h"
#include "pool_activation.h"
#include "sync_batch_norm.h"
#include "tensor.h"
#include "torch_compat.h"

namespace convscope {
namespace {

using Fn = Napi::Value (*)(const Napi::CallbackInfo&);

at::Tensor Arg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  return TensorWrap::From(info[index], name);
}

// A bias is optional: null or undefined means none.
c10::optional<at::Tensor> OptionalArg(const Napi::CallbackInfo& info, size_t index, const char* name) {
  if (info[index].IsNull() || info[index].IsUndefined()) return c10::nullopt;
  return TensorWrap::From(info[index], name);
}

Napi::Value Wrapped(const Napi::CallbackInfo& info, at::Tensor t) {
  return TensorWrap::Wrap(info.Env(), std::move(t));
}

Napi::Value Zeros(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    auto shape = ReadIntArray(info[0], "shape", 0, INT64_C(1) << 40);
    auto dtype = ParseDtype(info[1].IsUndefined() ? "float32" : ReadString(info[1], "dtype"));
    return Wrapped(info, torch::zeros(shape, torch::TensorOptions().dtype(dtype)));
  });
}

// Uniform in [low, high) from libtorch's default generator: the same draw PyTorch's layer
// initialisation makes, so a seed gives the same weights as in Python.
Napi::Value Uniform(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    auto shape = ReadIntArray(info[0], "shape", 0, INT64_C(1) << 40);
    double low = ReadNumber(info[1], "low");
    double high = ReadNumber(info[2], "high");
    return Wrapped(info, torch::empty(shape).uniform_(low, high));
  });
}

// Under bfloat16 autocast on the CPU, oneDNN's fast convolutions are the channels-last ones (PyTorch's
// own bf16 recipe converts to channels-last); the output stays channels-last, which the activation
// and max pooling after it also prefer. In training, convolutions followed by batch normalisation and
// the first one ask for channels-last too (`channelsLast`; convolvesChannelsLast in src/nn/spec.ts
// says why). Same values, other layout; fp32 otherwise keeps NCHW.
// A one-channel input (the network's) only has its strides relabelled, no copy: contiguous() would
// return it unchanged (one channel is channels-last already by libtorch's rules), and with NCHW
// strides the convolution would answer in NCHW, so that a batch norm after it met a channels-last
// gradient and took libtorch's serial fallback (as the scripted graph does, src/nn/script-source.ts).
at::Tensor ConvolutionLayout(const at::Tensor& x, bool channelsLast) {
  if (!x.is_cpu() || x.dim() != 4 || !(channelsLast || compat::AutocastEnabled(at::kCPU))) return x;
  if (x.size(1) == 1 && x.is_contiguous()) return x.as_strided(x.sizes(), {x.size(2) * x.size(3), 1, x.size(3), 1});
  return x.contiguous(at::MemoryFormat::ChannelsLast);
}

// conv2d(x, w, bias, stride, padding, channelsLast?): padding is [left, right, top, bottom];
// symmetric padding goes to the convolution itself, asymmetric ('same' with an even kernel) pads the
// input first, as TensorFlow does. Conv2dOp, not Conv2d: in a unity unit (CMake's batches differ
// from binding.gyp's) this file shares its scope with conv2d.h's kernel, which script_ops.cc takes
// the address of.
Napi::Value Conv2dOp(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    const bool channelsLast = !info[5].IsUndefined() && ReadBool(info[5], "channelsLast");
    at::Tensor x = ConvolutionLayout(Arg(info, 0, "input"), channelsLast);
    at::Tensor w = Arg(info, 1, "weight");
    auto bias = OptionalArg(info, 2, "bias");
    auto stride = ReadIntArray(info[3], "stride", 1, 1 << 16);
    auto pad = ReadIntArray(info[4], "padding", 0, 1 << 16);
    if (stride.size() != 2) throw OutOfRange("Expected [strideH, strideW] for stride");
    if (pad.size() != 4) throw OutOfRange("Expected [left, right, top, bottom] for padding");
    if (pad[0] == pad[1] && pad[2] == pad[3]) {
      const std::vector<int64_t> symmetric{pad[2], pad[0]};
      return Wrapped(info, convscope::Conv2d(x, w, bias, stride, symmetric));
    }
    const std::vector<int64_t> none{0, 0};
    at::Tensor padded = at::constant_pad_nd(x, pad, 0);
    return Wrapped(info, convscope::Conv2d(padded, w, bias, stride, none));
  });
}

Napi::Value Linear(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    return Wrapped(info, at::linear(Arg(info, 0, "input"), Arg(info, 1, "weight"), OptionalArg(info, 2, "bias")));
  });
}

Napi::Value MaxPool2d(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    int64_t kernel = ReadInt(info[1], "kernelSize", 1, 1 << 16);
    int64_t stride = ReadInt(info[2], "stride", 1, 1 << 16);
    return Wrapped(info, at::max_pool2d(Arg(info, 0, "input"), {kernel, kernel}, {stride, stride}));
  });
}

// maxPoolActivation(x, activation, negativeSlope): 2x2 max pooling then ReLU or leaky ReLU, fused
// (pool_activation.h); the eager model's training forward on the CPU.
Napi::Value MaxPoolActivation(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor x = Arg(info, 0, "input");
    std::string name = ReadString(info[1], "activation");
    if (name == "relu") return Wrapped(info, MaxPool2x2Activation(x, 0.0));
    if (name == "leaky_relu") return Wrapped(info, MaxPool2x2Activation(x, ReadNumber(info[2], "negativeSlope")));
    throw OutOfRange("Expected relu or leaky_relu for activation (the ones that commute with max pooling) but received \"" + name + "\"");
  });
}

Napi::Value Activation(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor x = Arg(info, 0, "input");
    std::string name = ReadString(info[1], "activation");
    if (name == "relu") return Wrapped(info, at::relu(x));
    if (name == "elu") return Wrapped(info, at::elu(x));
    if (name == "tanh") return Wrapped(info, at::tanh(x));
    if (name == "sigmoid") return Wrapped(info, at::sigmoid(x));
    // The slope comes from TS (LEAKY_RELU_SLOPE in src/core/native.ts), as TorchScript and ONNX get it.
    if (name == "leaky_relu") return Wrapped(info, at::leaky_relu(x, ReadNumber(info[2], "negativeSlope")));
    throw OutOfRange("Expected one of relu, elu, tanh, sigmoid, leaky_relu for activation but received \"" + name + "\"");
  });
}

Napi::Value Dropout(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    double p = ReadNumber(info[1], "rate");
    if (p < 0 || p >= 1) throw OutOfRange("Expected a number in [0, 1) for rate");
    return Wrapped(info, at::dropout(Arg(info, 0, "input"), p, ReadBool(info[2], "training")));
  });
}

// batchNorm(x, weight, bias, runningMean, runningVar, numBatchesTracked, training, momentum, eps):
// PyTorch's BatchNorm1d/2d forward. In training it normalises with the batch's statistics (the whole
// group's while a data-parallel run syncs batch norms: sync_batch_norm.h) and updates the running
// ones in place, and counts the batch as nn.BatchNorm's forward does; in evaluation it uses the
// running statistics.
Napi::Value BatchNorm(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor x = Arg(info, 0, "input");
    if (x.dim() != 2 && x.dim() != 4) throw OutOfRange("Expected an input [N, C] or [N, C, H, W] for batchNorm");
    at::Tensor runningMean = Arg(info, 3, "runningMean");
    at::Tensor runningVar = Arg(info, 4, "runningVar");
    auto counter = OptionalArg(info, 5, "numBatchesTracked");
    const bool training = ReadBool(info[6], "training");
    const double momentum = ReadNumber(info[7], "momentum");
    const double eps = ReadNumber(info[8], "eps");
    if (momentum < 0 || momentum > 1) throw OutOfRange("Expected a number in [0, 1] for momentum");
    if (!(eps > 0)) throw OutOfRange("Expected a number > 0 for eps");
    if (runningMean.dim() != 1 || runningMean.size(0) != x.size(1) || runningVar.sizes() != runningMean.sizes()) {
      throw OutOfRange("Expected running statistics of " + std::to_string(x.size(1)) + " channels for batchNorm");
    }
    at::Tensor y = BatchNormForward(x, OptionalArg(info, 1, "weight"), OptionalArg(info, 2, "bias"), runningMean, runningVar,
                                    training, momentum, eps);
    if (training && counter) {
      at::NoGradGuard no_grad;
      counter->add_(1);
    }
    return Wrapped(info, y);
  });
}

// Global average pooling: [N, C, H, W] -> [N, C], the mean over each channel's pixels.
Napi::Value GlobalAvgPool(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor x = Arg(info, 0, "input");
    if (x.dim() != 4) throw OutOfRange("Expected an input [N, C, H, W] for globalAvgPool");
    return Wrapped(info, x.mean({2, 3}));
  });
}

Napi::Value Flatten(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] { return Wrapped(info, at::flatten(Arg(info, 0, "input"), 1)); });
}

Napi::Value CrossEntropy(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    std::string reduction = info[2].IsUndefined() ? "mean" : ReadString(info[2], "reduction");
    int64_t mode = reduction == "sum" ? at::Reduction::Sum : reduction == "none" ? at::Reduction::None : at::Reduction::Mean;
    if (reduction != "sum" && reduction != "mean" && reduction != "none") {
      throw OutOfRange("Expected mean, sum or none for reduction but received \"" + reduction + "\"");
    }
    const double smoothing = info[3].IsUndefined() ? 0.0 : CheckLabelSmoothing(ReadNumber(info[3], "labelSmoothing"));
    return Wrapped(info, at::cross_entropy_loss(Arg(info, 0, "logits"), Arg(info, 1, "labels"), {}, mode, -100, smoothing));
  });
}

// sum over tensors of sum(|t|): the L1 penalty's raw value.
Napi::Value SumAbs(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    if (!info[0].IsArray()) throw TypeMismatch("Expected an array of Tensors for tensors but received " + DescribeValue(info[0]));
    auto list = info[0].As<Napi::Array>();
    if (list.Length() == 0) throw OutOfRange("Expected at least one Tensor for tensors");
    std::vector<at::Tensor> tensors;
    for (uint32_t i = 0; i < list.Length(); ++i) tensors.push_back(TensorWrap::From(list.Get(i), Element("tensors", i).c_str()));
    return Wrapped(info, SumOfAbs(tensors));
  });
}

Napi::Value Add(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor a = Arg(info, 0, "a");
    at::Tensor b = Arg(info, 1, "b");
    return Wrapped(info, a + b);
  });
}

Napi::Value MulScalar(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] { return Wrapped(info, Arg(info, 0, "input") * ReadNumber(info[1], "factor")); });
}

// x * scale + shift in one pass: pixel scaling and standardisation.
Napi::Value Affine(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor x = Arg(info, 0, "input");
    return Wrapped(info, at::add(x * ReadNumber(info[1], "scale"), ReadNumber(info[2], "shift")));
  });
}

Napi::Value Softmax(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    return Wrapped(info, at::softmax(Arg(info, 0, "input"), ReadInt(info[1], "dim", -8, 8), at::kFloat));
  });
}

Napi::Value Argmax(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] { return Wrapped(info, at::argmax(Arg(info, 0, "input"), ReadInt(info[1], "dim", -8, 8))); });
}

// A num_classes x num_classes matrix, rows = true class, columns = predicted class.
Napi::Value Confusion(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor predicted = Arg(info, 0, "predicted").to(at::kLong);
    at::Tensor labels = Arg(info, 1, "labels").to(at::kLong);
    int64_t classes = ReadInt(info[2], "numClasses", 1, 4096);
    at::Tensor flat = at::bincount(labels * classes + predicted, {}, classes * classes);
    return Wrapped(info, flat.view({classes, classes}));
  });
}

// How many rows of logits have their largest value at the label: a batch's correct predictions.
Napi::Value CountCorrect(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    at::Tensor hits = Arg(info, 0, "logits").argmax(1).eq(Arg(info, 1, "labels")).sum();
    return Napi::Number::New(info.Env(), static_cast<double>(hits.item<int64_t>()));
  });
}

// [loss * batch, correct] of a step as a float64 tensor on the step's device: accumulated there and
// read back every N steps, so a GPU is not synchronised after each step.
Napi::Value StepStats(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor logits = Arg(info, 0, "logits");
    at::Tensor labels = Arg(info, 1, "labels");
    at::Tensor loss = Arg(info, 2, "loss");
    return Wrapped(info, BatchStats(logits, labels, loss));
  });
}

Napi::Value Detach(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] { return Wrapped(info, Arg(info, 0, "input").detach().clone()); });
}

Napi::Value To(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor x = Arg(info, 0, "input");
    torch::Device device = info[1].IsUndefined() || info[1].IsNull() ? x.device() : ParseDevice(ReadString(info[1], "device"));
    at::ScalarType dtype = info[2].IsUndefined() || info[2].IsNull() ? x.scalar_type() : ParseDtype(ReadString(info[2], "dtype"));
    return Wrapped(info, x.to(device, dtype));
  });
}

Napi::Value Reshape(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    return Wrapped(info, Arg(info, 0, "input").reshape(ReadIntArray(info[1], "shape", -1, INT64_C(1) << 40)));
  });
}

Napi::Value Slice(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor x = Arg(info, 0, "input");
    int64_t dim = ReadInt(info[1], "dim", 0, 7);
    int64_t start = ReadInt(info[2], "start", 0, INT64_C(1) << 40);
    int64_t end = ReadInt(info[3], "end", 0, INT64_C(1) << 40);
    if (dim >= x.dim()) throw OutOfRange("Expected dim < " + std::to_string(x.dim()) + " for dim");
    if (start > end || end > x.size(dim)) {
      throw OutOfRange("Expected 0 <= start <= end <= " + std::to_string(x.size(dim)) + " for slice");
    }
    return Wrapped(info, x.slice(dim, start, end));
  });
}

// A deterministic permutation for epoch shuffling, from its own generator so that it does not
// disturb the default generator that dropout draws from.
Napi::Value Randperm(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    int64_t n = ReadInt(info[0], "n", 0, INT64_C(1) << 40);
    int64_t seed = ReadInt(info[1], "seed", 0, INT64_C(9007199254740991));
    auto generator = at::make_generator<at::CPUGeneratorImpl>(static_cast<uint64_t>(seed));
    return Wrapped(info, at::randperm(n, generator, torch::TensorOptions().dtype(at::kLong)));
  });
}

// Builds a float batch [B, C, H, W] in [0, 1] (then standardised per channel) and int64 labels from
// images (uint8 [N, H, W], uint8 or float32 [N, C, H, W]) and labels [N], on the images' device,
// taking rows indices[start:end]. mean and std: a number, or an array with one per channel.
Napi::Value GatherBatch(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor images = Arg(info, 0, "images");
    at::Tensor labels = Arg(info, 1, "labels");
    at::Tensor indices = Arg(info, 2, "indices");
    int64_t start = ReadInt(info[3], "start", 0, INT64_C(1) << 40);
    int64_t end = ReadInt(info[4], "end", 0, INT64_C(1) << 40);
    ChannelValues mean = ReadNumbers(info[5], "mean");
    ChannelValues std = ReadNumbers(info[6], "std");
    for (double s : std) {
      if (s <= 0) throw OutOfRange("Expected positive numbers for std");
    }
    const bool grey = images.dim() == 3 && images.scalar_type() == at::kByte;
    const bool planar = images.dim() == 4 && (images.scalar_type() == at::kByte || images.scalar_type() == at::kFloat);
    if (!grey && !planar) throw OutOfRange("Expected uint8 images [N, H, W] or uint8 or float32 images [N, C, H, W] for images");
    if (start >= end || end > indices.size(0)) {
      throw OutOfRange("Expected 0 <= start < end <= " + std::to_string(indices.size(0)) + " for the batch range");
    }
    Batch batch = convscope::GatherBatch(images, labels, indices.slice(0, start, end).to(images.device()), mean, std);
    auto pair = Napi::Array::New(info.Env(), 2);
    pair.Set(0u, Wrapped(info, batch.x));
    pair.Set(1u, Wrapped(info, batch.y));
    return pair;
  });
}

// augment(x, shift, flip, padValue): batch.h's AugmentBatch, for the eager path; padValue is a number
// or one per channel.
Napi::Value Augment(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor x = Arg(info, 0, "x");
    if (x.dim() != 4) throw OutOfRange("Expected a batch [N, C, H, W] for x");
    const int64_t shift = ReadInt(info[1], "shift", 0, 1024);
    return Wrapped(info, AugmentBatch(x, shift, ReadBool(info[2], "flip"), ReadNumbers(info[3], "padValue")));
  });
}

// standardize(x, scale, mean, std): (x * scale - mean[c]) / std[c] for a batch [N, C, H, W] (a new
// tensor; differentiable), mean and std a number or one per channel: prepared images and probes.
Napi::Value Standardize(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&] {
    at::Tensor x = Arg(info, 0, "x");
    if (x.dim() != 4) throw OutOfRange("Expected a batch [N, C, H, W] for x");
    const double scale = ReadNumber(info[1], "scale");
    ChannelValues mean = ReadNumbers(info[2], "mean");
    ChannelValues std = ReadNumbers(info[3], "std");
    CheckChannelValues(mean, x.size(1), "mean");
    CheckChannelValues(std, x.size(1), "std");
    for (double s : std) {
      if (s <= 0) throw OutOfRange("Expected positive numbers for std");
    }
    const int64_t channels = x.size(1);
    // Per-channel constants as [1, C, 1, 1] tensors on x's device: (x * scale - mean) / std.
    std::vector<float> shift(channels), factor(channels);
    for (int64_t c = 0; c < channels; ++c) {
      const double s = std.size() == 1 ? std[0] : std[c];
      factor[c] = static_cast<float>(scale / s);
      shift[c] = static_cast<float>(-(mean.size() == 1 ? mean[0] : mean[c]) / s);
    }
    // Copied from the host vectors: C floats each.
    at::Tensor f = torch::tensor(factor).view({1, channels, 1, 1}).to(x.device());
    at::Tensor b = torch::tensor(shift).view({1, channels, 1, 1}).to(x.device());
    return Wrapped(info, at::addcmul(b, x, f));
  });
}

Napi::Value SetGradEnabled(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    bool previous = at::GradMode::is_enabled();
    at::GradMode::set_enabled(ReadBool(info[0], "enabled"));
    return Napi::Boolean::New(info.Env(), previous);
  });
}

}  // namespace

void RegisterOps(Napi::Env env, Napi::Object exports) {
  const std::pair<const char*, Fn> ops[] = {
      {"zeros", Zeros}, {"uniform", Uniform}, {"conv2d", Conv2dOp}, {"linear", Linear},
      {"maxPool2d", MaxPool2d}, {"maxPoolActivation", MaxPoolActivation}, {"activation", Activation}, {"dropout", Dropout}, {"flatten", Flatten},
      {"batchNorm", BatchNorm}, {"globalAvgPool", GlobalAvgPool},
      {"crossEntropy", CrossEntropy}, {"sumAbs", SumAbs}, {"add", Add}, {"mulScalar", MulScalar}, {"affine", Affine},
      {"softmax", Softmax}, {"argmax", Argmax}, {"confusion", Confusion}, {"countCorrect", CountCorrect}, {"stepStats", StepStats}, {"detach", Detach}, {"to", To},
      {"reshape", Reshape}, {"slice", Slice}, {"randperm", Randperm}, {"gatherBatch", GatherBatch}, {"augment", Augment},
      {"standardize", Standardize},
      {"setGradEnabled", SetGradEnabled},
  };
  auto table = Napi::Object::New(env);
  for (const auto& [name, fn] : ops) table.Set(name, Napi::Function::New(env, fn, name));
  exports.Set("ops", table);
}

}  // namespace convscope
