// One of the addon's two unity units (binding.gyp compiles one per core): the N-API bindings and
// what they drive. Each of native/'s sources parses libtorch's headers for 13 s and instantiates
// their templates for 4 s before its own code (GCC 12, one core); compiled one by one, the 16 sources
// spent 90% of a 2-minute build there. Together they pay it once per unit: the whole addon builds in
// about 40 s on two cores. The sources stay separate files with their own includes, compiled the same
// way by the CMake build (UNITY_BUILD); names at file scope must therefore be unique across native/
// (test/native-sources.test.ts checks that every source is compiled exactly once).
#include "../addon.cc"
#include "../checkpoint.cc"
#include "../device.cc"
#include "../distributed.cc"
#include "../ops.cc"
#include "../optimizer.cc"
#include "../reducer.cc"
#include "../script_model.cc"
#include "../tensor.cc"
#include "../trainer.cc"
