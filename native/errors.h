// Turning C++ and libtorch failures into JS errors. Every native entry point runs its body through
// Guarded(), so no exception (c10::Error, std::bad_alloc, ...) can escape into N-API and abort the process.
#pragma once

#include <napi.h>
#include <c10/util/Exception.h>

#include <stdexcept>
#include <string>

namespace convscope {

// Thrown by argument checks; mapped to TypeError.
struct TypeMismatch : std::runtime_error {
  using std::runtime_error::runtime_error;
};
// Thrown by range checks; mapped to RangeError.
struct OutOfRange : std::runtime_error {
  using std::runtime_error::runtime_error;
};

// The message of a libtorch error without its C++ backtrace, which means nothing to a JS caller.
std::string DescribeTorchError(const c10::Error& e);

[[noreturn]] void ThrowAsJs(Napi::Env env, const std::exception_ptr& error);

template <typename Body>
auto Guarded(Napi::Env env, Body&& body) -> decltype(body()) {
  try {
    return body();
  } catch (const Napi::Error&) {
    throw;
  } catch (...) {
    ThrowAsJs(env, std::current_exception());
  }
}

// Argument readers with one message shape: "Expected <what> for <name> but received <value>".
std::string DescribeValue(const Napi::Value& value);
int64_t ReadInt(const Napi::Value& value, const char* name, int64_t min, int64_t max);
double ReadNumber(const Napi::Value& value, const char* name);
bool ReadBool(const Napi::Value& value, const char* name);
std::string ReadString(const Napi::Value& value, const char* name);
std::vector<int64_t> ReadIntArray(const Napi::Value& value, const char* name, int64_t min, int64_t max);

// Options-object fields that may be left out: `fallback` when undefined, else read as above.
double OptionalNumber(const Napi::Object& options, const char* key, double fallback);
bool OptionalBool(const Napi::Object& options, const char* key, bool fallback);
int64_t OptionalInt(const Napi::Object& options, const char* key, int64_t fallback, int64_t min, int64_t max);
std::string OptionalString(const Napi::Object& options, const char* key, const std::string& fallback);

}  // namespace convscope
