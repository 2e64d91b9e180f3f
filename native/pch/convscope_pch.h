// The external headers that nearly every translation unit of the addon parses: libtorch's (about
// 90% of a unit's compile time before) and Node-API's. binding.gyp compiles this file once per build
// (with the target's own flags) into a precompiled header in the build folder, which each unit that
// includes it loads instead of parsing the headers again; the CMake build does the same with
// target_precompile_headers. Only headers from outside the project belong here: a change to one of
// native/'s own headers then rebuilds exactly the units that include it, as make's dependency files
// say. Units that need no libtorch (mkl_cpu_check.cc, errors.cc) do not include it.
// Included as <convscope_pch.h>, first in a unit: GCC uses a precompiled header only for the first
// include, and looks for convscope_pch.h.gch in each include folder before the header itself.
// An include guard, not #pragma once: GCC warns about the pragma in the file it precompiles.
#ifndef CONVSCOPE_PCH_H_
#define CONVSCOPE_PCH_H_

#include <napi.h>

#include <ATen/ATen.h>
#include <ATen/Parallel.h>
#include <ATen/autocast_mode.h>
#include <torch/csrc/jit/api/compilation_unit.h>
#include <torch/csrc/jit/frontend/resolver.h>
#include <torch/csrc/jit/frontend/sugared_value.h>
#include <torch/csrc/jit/serialization/import.h>
#include <torch/library.h>
#include <torch/script.h>
#include <torch/torch.h>
#include <torch/version.h>

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <map>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <unordered_map>
#include <vector>

#endif  // CONVSCOPE_PCH_H_
