#include "tensor.h"

#include <cstring>

#include "args.h"
#include "errors.h"
#include "instance_data.h"

namespace convscope {

std::atomic<int64_t> TensorWrap::live_count_{0};

namespace {

struct TypedArrayDtype {
  napi_typedarray_type array;
  at::ScalarType scalar;
};

at::ScalarType ScalarTypeOf(napi_typedarray_type type) {
  switch (type) {
    case napi_float32_array: return at::kFloat;
    case napi_float64_array: return at::kDouble;
    case napi_int32_array: return at::kInt;
    case napi_bigint64_array: return at::kLong;
    case napi_uint8_array: return at::kByte;
    case napi_uint8_clamped_array: return at::kByte;
    case napi_int8_array: return at::kChar;
    case napi_int16_array: return at::kShort;
    default:
      throw TypeMismatch(
          "Expected a Float32Array, Float64Array, Int32Array, BigInt64Array, Uint8Array, Int8Array or Int16Array "
          "for data but received an unsupported typed array");
  }
}

// The JS array type a tensor of this dtype reads back into. Half-precision types have no JS array
// and are widened to float32; bool reads back as uint8.
napi_typedarray_type ArrayTypeFor(at::ScalarType type, at::ScalarType* readAs) {
  switch (type) {
    case at::kFloat: *readAs = at::kFloat; return napi_float32_array;
    case at::kDouble: *readAs = at::kDouble; return napi_float64_array;
    case at::kInt: *readAs = at::kInt; return napi_int32_array;
    case at::kLong: *readAs = at::kLong; return napi_bigint64_array;
    case at::kByte: *readAs = at::kByte; return napi_uint8_array;
    case at::kBool: *readAs = at::kByte; return napi_uint8_array;
    case at::kChar: *readAs = at::kChar; return napi_int8_array;
    case at::kShort: *readAs = at::kShort; return napi_int16_array;
    case at::kBFloat16:
    case at::kHalf: *readAs = at::kFloat; return napi_float32_array;
    default: throw TypeMismatch("tensor dtype " + DtypeName(type) + " cannot be read into a typed array");
  }
}

}  // namespace

std::string DtypeName(at::ScalarType type) {
  switch (type) {
    case at::kFloat: return "float32";
    case at::kDouble: return "float64";
    case at::kInt: return "int32";
    case at::kLong: return "int64";
    case at::kByte: return "uint8";
    case at::kChar: return "int8";
    case at::kShort: return "int16";
    case at::kBool: return "bool";
    case at::kBFloat16: return "bfloat16";
    case at::kHalf: return "float16";
    default: return c10::toString(type);
  }
}

at::ScalarType ParseDtype(const std::string& name) {
  if (name == "float32") return at::kFloat;
  if (name == "float64") return at::kDouble;
  if (name == "int32") return at::kInt;
  if (name == "int64") return at::kLong;
  if (name == "uint8") return at::kByte;
  if (name == "int8") return at::kChar;
  if (name == "int16") return at::kShort;
  if (name == "bool") return at::kBool;
  if (name == "bfloat16") return at::kBFloat16;
  if (name == "float16") return at::kHalf;
  throw OutOfRange("Expected one of float32, float64, int32, int64, uint8, int8, int16, bool, bfloat16, float16 "
                   "for dtype but received \"" + name + "\"");
}

Napi::Function TensorWrap::Define(Napi::Env env) {
  return DefineClass(env, "Tensor", {
      InstanceAccessor<&TensorWrap::Shape>("shape"),
      InstanceAccessor<&TensorWrap::Dtype>("dtype"),
      InstanceAccessor<&TensorWrap::Device>("device"),
      InstanceAccessor<&TensorWrap::IsDisposed>("isDisposed"),
      InstanceAccessor<&TensorWrap::RequiresGrad, &TensorWrap::SetRequiresGrad>("requiresGrad"),
      InstanceMethod<&TensorWrap::ToTypedArray>("toTypedArray"),
      InstanceMethod<&TensorWrap::Item>("item"),
      InstanceMethod<&TensorWrap::Grad>("grad"),
      InstanceMethod<&TensorWrap::Backward>("backward"),
      InstanceMethod<&TensorWrap::Dispose>("dispose"),
  });
}

Napi::Object TensorWrap::Wrap(Napi::Env env, at::Tensor tensor) {
  // The constructor called next takes the tensor from the instance data (one thread per env).
  InstanceData& data = GetInstanceData(env);
  data.pendingTensor = &tensor;
  try {
    Napi::Object wrapped = data.tensorConstructor.New({});
    data.pendingTensor = nullptr;
    return wrapped;
  } catch (...) {
    data.pendingTensor = nullptr;
    throw;
  }
}

bool TensorWrap::IsTensor(const Napi::Value& value) {
  if (!value.IsObject()) return false;
  return value.As<Napi::Object>().InstanceOf(GetInstanceData(value.Env()).tensorConstructor.Value());
}

at::Tensor& TensorWrap::From(const Napi::Value& value, const char* name) {
  if (!IsTensor(value)) {
    throw TypeMismatch(std::string("Expected a Tensor for ") + name + " but received " + DescribeValue(value));
  }
  auto* wrap = TensorWrap::Unwrap(value.As<Napi::Object>());
  if (!wrap->live_) throw std::runtime_error(std::string("Tensor for ") + name + " was used after dispose()");
  return wrap->tensor_;
}

TensorWrap::TensorWrap(const Napi::CallbackInfo& info) : Napi::ObjectWrap<TensorWrap>(info) {
  Guarded(info.Env(), [&] {
    InstanceData& data = GetInstanceData(info.Env());
    if (info.Length() == 0 && data.pendingTensor) {
      at::Tensor* pending = data.pendingTensor;
      data.pendingTensor = nullptr;
      Adopt(info.Env(), *pending);
      return;
    }
    // new Tensor(typedArray, shape): the JS memory may move or be freed by the GC, so the values are
    // copied into memory libtorch owns.
    if (info.Length() < 2 || !info[0].IsTypedArray()) {
      throw TypeMismatch("Expected a typed array for data but received " +
                         (info.Length() ? DescribeValue(info[0]) : std::string("undefined")));
    }
    auto array = info[0].As<Napi::TypedArray>();
    at::ScalarType type = ScalarTypeOf(array.TypedArrayType());
    auto shape = ReadIntArray(info[1], "shape", 0, INT64_C(1) << 40);
    int64_t elements = 1;
    for (auto d : shape) {
      if (d != 0 && elements > (INT64_C(1) << 40) / d) throw OutOfRange("Expected a shape of at most 2^40 elements for shape");
      elements *= d;
    }
    if (elements != static_cast<int64_t>(array.ElementLength())) {
      throw OutOfRange("Expected data of " + std::to_string(elements) + " elements to match shape but received " +
                       std::to_string(array.ElementLength()) + " elements");
    }
    at::Tensor tensor = torch::empty(shape, torch::TensorOptions().dtype(type));
    auto* bytes = static_cast<const uint8_t*>(array.ArrayBuffer().Data()) + array.ByteOffset();
    if (elements > 0) std::memcpy(tensor.data_ptr(), bytes, tensor.nbytes());
    Adopt(info.Env(), std::move(tensor));
  });
}

TensorWrap::~TensorWrap() {
  if (live_) Release(Env());
}

void TensorWrap::Adopt(Napi::Env env, at::Tensor tensor) {
  tensor_ = std::move(tensor);
  live_ = true;
  live_count_.fetch_add(1);
  // Only host memory matters to V8's heuristics; device memory is not its concern.
  if (tensor_.defined() && tensor_.device().is_cpu()) {
    reported_bytes_ = static_cast<int64_t>(tensor_.nbytes());
    Napi::MemoryManagement::AdjustExternalMemory(env, reported_bytes_);
  }
}

void TensorWrap::Release(Napi::Env env) {
  tensor_ = at::Tensor();
  live_ = false;
  live_count_.fetch_sub(1);
  if (reported_bytes_ != 0) {
    Napi::MemoryManagement::AdjustExternalMemory(env, -reported_bytes_);
    reported_bytes_ = 0;
  }
}

at::Tensor& TensorWrap::Checked(const char* method) {
  if (!live_) throw std::runtime_error(std::string("Tensor.") + method + ": the tensor was used after dispose()");
  return tensor_;
}

Napi::Value TensorWrap::Shape(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    auto sizes = Checked("shape").sizes();
    auto array = Napi::Array::New(info.Env(), sizes.size());
    for (size_t i = 0; i < sizes.size(); ++i) array.Set(i, Napi::Number::New(info.Env(), static_cast<double>(sizes[i])));
    return array;
  });
}

Napi::Value TensorWrap::Dtype(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), DtypeName(Checked("dtype").scalar_type()));
  });
}

Napi::Value TensorWrap::Device(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    return Napi::String::New(info.Env(), Checked("device").device().str());
  });
}

Napi::Value TensorWrap::IsDisposed(const Napi::CallbackInfo& info) {
  return Napi::Boolean::New(info.Env(), !live_);
}

Napi::Value TensorWrap::RequiresGrad(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    return Napi::Boolean::New(info.Env(), Checked("requiresGrad").requires_grad());
  });
}

void TensorWrap::SetRequiresGrad(const Napi::CallbackInfo& info, const Napi::Value& value) {
  Guarded(info.Env(), [&] { Checked("requiresGrad").set_requires_grad(ReadBool(value, "requiresGrad")); });
}

Napi::Value TensorWrap::ToTypedArray(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    at::ScalarType readAs;
    napi_typedarray_type arrayType = ArrayTypeFor(Checked("toTypedArray").scalar_type(), &readAs);
    // A deliberate copy out of libtorch: JS gets memory it owns, independent of the tensor's lifetime.
    at::Tensor host = tensor_.detach().to(torch::kCPU, readAs).contiguous();
    size_t bytes = host.nbytes();
    auto buffer = Napi::ArrayBuffer::New(info.Env(), bytes);
    if (bytes) std::memcpy(buffer.Data(), host.data_ptr(), bytes);
    napi_value result;
    napi_status status = napi_create_typedarray(info.Env(), arrayType, host.numel(), buffer, 0, &result);
    NAPI_THROW_IF_FAILED(info.Env(), status, Napi::Value());
    return Napi::Value(info.Env(), result);
  });
}

Napi::Value TensorWrap::Item(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    at::Tensor& t = Checked("item");
    if (t.numel() != 1) throw OutOfRange("Tensor.item: expected a tensor of one element but it has " + std::to_string(t.numel()));
    return Napi::Number::New(info.Env(), t.item<double>());
  });
}

Napi::Value TensorWrap::Grad(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    at::Tensor grad = Checked("grad").grad();
    if (!grad.defined()) return info.Env().Null();
    return Wrap(info.Env(), grad);
  });
}

Napi::Value TensorWrap::Backward(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    at::Tensor& t = Checked("backward");
    if (t.numel() != 1) throw OutOfRange("Tensor.backward: expected a scalar loss but the tensor has " + std::to_string(t.numel()) + " elements");
    t.backward();
    return info.Env().Undefined();
  });
}

Napi::Value TensorWrap::Dispose(const Napi::CallbackInfo& info) {
  // Disposing twice is harmless: scopes and users may both dispose the same tensor.
  if (live_) Release(info.Env());
  return info.Env().Undefined();
}

}  // namespace convscope
