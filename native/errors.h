// Turning C++ and libtorch failures into JS errors. Every native entry point runs its body through
// Guarded(), so no exception (c10::Error, std::bad_alloc, ...) can escape into N-API and abort the process.
#pragma once

#include <napi.h>
#include <c10/util/Exception.h>

#include <exception>
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

// What a C++ failure becomes in JS: its error class and message. One description for the main thread
// (ThrowAsJs) and for worker threads, which keep it until they are back on the main thread.
struct ErrorDescription {
  enum class Kind { Error, TypeError, RangeError };
  Kind kind;
  std::string message;
};

// TypeMismatch is a TypeError; OutOfRange and std::bad_alloc are RangeErrors; c10::Error reads
// "libtorch: <message>", any other exception "convscope native: <what>". Never throws; touches no N-API.
ErrorDescription Describe(const std::exception_ptr& error);

Napi::Error ToJsError(Napi::Env env, const ErrorDescription& description);

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

}  // namespace convscope
