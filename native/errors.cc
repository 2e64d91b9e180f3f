#include "errors.h"

#include <new>

namespace convscope {

std::string DescribeTorchError(const c10::Error& e) {
  return e.what_without_backtrace();
}

ErrorDescription Describe(const std::exception_ptr& error) {
  using Kind = ErrorDescription::Kind;
  try {
    std::rethrow_exception(error);
  } catch (const TypeMismatch& e) {
    return {Kind::TypeError, e.what()};
  } catch (const OutOfRange& e) {
    return {Kind::RangeError, e.what()};
  } catch (const c10::Error& e) {
    return {Kind::Error, "libtorch: " + DescribeTorchError(e)};
  } catch (const std::bad_alloc&) {
    return {Kind::RangeError, "out of memory: the allocation asked of libtorch could not be satisfied"};
  } catch (const std::exception& e) {
    return {Kind::Error, std::string("convscope native: ") + e.what()};
  } catch (...) {
    return {Kind::Error, "convscope native: unknown C++ exception"};
  }
}

Napi::Error ToJsError(Napi::Env env, const ErrorDescription& description) {
  switch (description.kind) {
    case ErrorDescription::Kind::TypeError: return Napi::TypeError::New(env, description.message);
    case ErrorDescription::Kind::RangeError: return Napi::RangeError::New(env, description.message);
    case ErrorDescription::Kind::Error: break;
  }
  return Napi::Error::New(env, description.message);
}

void ThrowAsJs(Napi::Env env, const std::exception_ptr& error) {
  throw ToJsError(env, Describe(error));
}

}  // namespace convscope
