#include "args.h"

#include <cmath>

namespace convscope {

std::string DescribeValue(const Napi::Value& value) {
  if (value.IsUndefined()) return "undefined";
  if (value.IsNull()) return "null";
  if (value.IsNumber()) return std::to_string(value.As<Napi::Number>().DoubleValue()) + " of type number";
  if (value.IsString()) return "\"" + value.As<Napi::String>().Utf8Value() + "\" of type string";
  if (value.IsBoolean()) return std::string(value.As<Napi::Boolean>().Value() ? "true" : "false") + " of type boolean";
  if (value.IsArray()) return "an array";
  if (value.IsTypedArray()) return "a typed array";
  if (value.IsFunction()) return "a function";
  return "a value of type object";
}

static std::string Expected(const std::string& what, const char* name, const Napi::Value& value) {
  return "Expected " + what + " for " + name + " but received " + DescribeValue(value);
}

int64_t ReadInt(const Napi::Value& value, const char* name, int64_t min, int64_t max) {
  if (!value.IsNumber()) throw TypeMismatch(Expected("an integer", name, value));
  double d = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d) || std::floor(d) != d) throw TypeMismatch(Expected("an integer", name, value));
  if (d < static_cast<double>(min) || d > static_cast<double>(max)) {
    throw OutOfRange(Expected("an integer in [" + std::to_string(min) + ", " + std::to_string(max) + "]", name, value));
  }
  return static_cast<int64_t>(d);
}

double ReadNumber(const Napi::Value& value, const char* name) {
  if (!value.IsNumber()) throw TypeMismatch(Expected("a number", name, value));
  double d = value.As<Napi::Number>().DoubleValue();
  if (!std::isfinite(d)) throw OutOfRange(Expected("a finite number", name, value));
  return d;
}

bool ReadBool(const Napi::Value& value, const char* name) {
  if (!value.IsBoolean()) throw TypeMismatch(Expected("a boolean", name, value));
  return value.As<Napi::Boolean>().Value();
}

std::string ReadString(const Napi::Value& value, const char* name) {
  if (!value.IsString()) throw TypeMismatch(Expected("a string", name, value));
  return value.As<Napi::String>().Utf8Value();
}

std::vector<int64_t> ReadIntArray(const Napi::Value& value, const char* name, int64_t min, int64_t max) {
  if (!value.IsArray()) throw TypeMismatch(Expected("an array of integers", name, value));
  auto array = value.As<Napi::Array>();
  std::vector<int64_t> out;
  out.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) {
    out.push_back(ReadInt(array.Get(i), Element(name, i).c_str(), min, max));
  }
  return out;
}

std::vector<double> ReadNumbers(const Napi::Value& value, const char* name) {
  if (value.IsNumber()) return {ReadNumber(value, name)};
  if (!value.IsArray()) throw TypeMismatch(Expected("a number or an array of numbers", name, value));
  auto array = value.As<Napi::Array>();
  if (array.Length() == 0) throw OutOfRange(Expected("at least one number", name, value));
  std::vector<double> out;
  out.reserve(array.Length());
  for (uint32_t i = 0; i < array.Length(); ++i) out.push_back(ReadNumber(array.Get(i), Element(name, i).c_str()));
  return out;
}

double OptionalNumber(const Napi::Object& options, const char* key, double fallback) {
  Napi::Value value = options.Get(key);
  return value.IsUndefined() ? fallback : ReadNumber(value, key);
}

bool OptionalBool(const Napi::Object& options, const char* key, bool fallback) {
  Napi::Value value = options.Get(key);
  return value.IsUndefined() ? fallback : ReadBool(value, key);
}

int64_t OptionalInt(const Napi::Object& options, const char* key, int64_t fallback, int64_t min, int64_t max) {
  Napi::Value value = options.Get(key);
  return value.IsUndefined() ? fallback : ReadInt(value, key, min, max);
}

std::string OptionalString(const Napi::Object& options, const char* key, const std::string& fallback) {
  Napi::Value value = options.Get(key);
  return value.IsUndefined() ? fallback : ReadString(value, key);
}

std::vector<double> OptionalNumbers(const Napi::Object& options, const char* key, std::vector<double> fallback) {
  Napi::Value value = options.Get(key);
  return value.IsUndefined() ? fallback : ReadNumbers(value, key);
}

std::string Element(const char* list, uint32_t index) {
  return std::string(list) + "[" + std::to_string(index) + "]";
}

}  // namespace convscope
