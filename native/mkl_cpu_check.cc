#include "mkl_cpu_check.h"

// MKL's own, exported by an MKL libtorch (weak: absent from one built on another BLAS). It returns the
// kernel branch MKL dispatches to, asking mkl_serv_intel_cpu_true first; the numbering is MKL's
// (undocumented): 0 is its generic branch, higher numbers newer instruction sets (7: AVX-512 here).
extern "C" int mkl_serv_cpu_detect() __attribute__((weak));

#include <cpuid.h>

#include <cstdlib>
#include <cstring>
#include <stdexcept>
#include <string>

namespace convscope {
namespace {

bool CpuIsIntel() {
  unsigned int eax = 0, ebx = 0, ecx = 0, edx = 0;
  if (!__get_cpuid(0, &eax, &ebx, &ecx, &edx)) return false;
  char vendor[13] = {};
  std::memcpy(vendor, &ebx, 4);
  std::memcpy(vendor + 4, &edx, 4);
  std::memcpy(vendor + 8, &ecx, 4);
  return std::strcmp(vendor, "GenuineIntel") == 0;
}

// $CONVSCOPE_MKL_ANY_CPU: unset or "1" lifts MKL's vendor test, "0" keeps it; anything else is refused
// when the addon loads (ReadMklAnyCpuSetting), so that here, where nothing may throw, it is one of those.
bool LiftVendorTest() {
  const char* value = std::getenv("CONVSCOPE_MKL_ANY_CPU");
  return value == nullptr || std::strcmp(value, "0") != 0;
}

}  // namespace

bool ReadMklAnyCpuSetting() {
  const char* value = std::getenv("CONVSCOPE_MKL_ANY_CPU");
  if (value == nullptr || std::strcmp(value, "1") == 0) return true;
  if (std::strcmp(value, "0") == 0) return false;
  throw std::invalid_argument(std::string("Expected 0 or 1 for the environment variable CONVSCOPE_MKL_ANY_CPU but received \"") +
                              value + "\"");
}

MklCpuCheckStats ReadMklCpuCheckStats() {
  MklCpuCheckStats stats;
  stats.present = &mkl_serv_cpu_detect != nullptr;
  stats.branch = stats.present ? mkl_serv_cpu_detect() : -1;
  stats.lifted = LiftVendorTest();
  stats.intel = CpuIsIntel();
  return stats;
}

}  // namespace convscope

// MKL asks this once per process, the first time it picks a kernel; libtorch_cpu.so calls it through
// its PLT, and the dynamic linker looks in the addon (the root of the group node's dlopen loaded)
// before libtorch itself, so this definition answers instead of MKL's. MKL still reads the CPU's
// feature bits (AVX2, AVX-512) to choose among its kernels; this only drops the "GenuineIntel" test.
extern "C" __attribute__((visibility("default"))) int mkl_serv_intel_cpu_true() {
  return convscope::LiftVendorTest() || convscope::CpuIsIntel() ? 1 : 0;
}
