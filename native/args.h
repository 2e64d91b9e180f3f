// Reading JS arguments into C++ values, with one message shape:
// "Expected <what> for <name> but received <value>". A wrong type throws TypeMismatch, a value out of
// range OutOfRange (errors.h turns them into TypeError and RangeError).
#pragma once

#include <napi.h>

#include <cstdint>
#include <string>
#include <vector>

#include "errors.h"

namespace convscope {

// Argument readers with one message shape: "Expected <what> for <name> but received <value>".
std::string DescribeValue(const Napi::Value& value);
int64_t ReadInt(const Napi::Value& value, const char* name, int64_t min, int64_t max);
double ReadNumber(const Napi::Value& value, const char* name);
bool ReadBool(const Napi::Value& value, const char* name);
std::string ReadString(const Napi::Value& value, const char* name);
std::vector<int64_t> ReadIntArray(const Napi::Value& value, const char* name, int64_t min, int64_t max);
// One finite number, or an array of them (a value per image channel): always a vector, of one element
// for a plain number.
std::vector<double> ReadNumbers(const Napi::Value& value, const char* name);

// Options-object fields that may be left out: `fallback` when undefined, else read as above.
double OptionalNumber(const Napi::Object& options, const char* key, double fallback);
bool OptionalBool(const Napi::Object& options, const char* key, bool fallback);
int64_t OptionalInt(const Napi::Object& options, const char* key, int64_t fallback, int64_t min, int64_t max);
std::string OptionalString(const Napi::Object& options, const char* key, const std::string& fallback);
std::vector<double> OptionalNumbers(const Napi::Object& options, const char* key, std::vector<double> fallback);

// The name of a list's element for messages: Element("tensors", 2) is "tensors[2]".
std::string Element(const char* list, uint32_t index);

}  // namespace convscope
