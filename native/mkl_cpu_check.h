// MKL on any x86 CPU: the addon answers MKL's "is this an Intel CPU?" question itself.
//
// Why: PyTorch's x86 libtorch links Intel's MKL for fp32 matrix products (the dense layers and their
// backward). MKL picks its fast AVX-512 and AVX2 kernels only after checking that the CPU's vendor
// string is "GenuineIntel"; on any other CPU it takes a generic path. On the project's AMD EPYC (Zen 5,
// AVX-512) a 1024x1024 sgemm ran at 170 GFLOP/s on MKL's own check and at 390 GFLOP/s with the check
// lifted, the speed oneDNN's convolutions reach on the same cores (2026-12-01). Python users get the
// same by LD_PRELOADing a library that defines mkl_serv_intel_cpu_true; an addon defines it itself.
// $CONVSCOPE_MKL_ANY_CPU=0 keeps MKL's own check. Builds without MKL (Debian's libtorch 1.13 uses
// OpenBLAS) never ask.
#pragma once

namespace convscope {

struct MklCpuCheckStats {
  bool present = false;  // this libtorch links MKL
  int branch = -1;       // the kernel branch MKL chose (mkl_serv_cpu_detect); -1 without MKL
  bool lifted = true;    // the answer is "yes" whatever the vendor
  bool intel = false;    // the CPU says GenuineIntel (MKL's own answer)
};

// The setting of $CONVSCOPE_MKL_ANY_CPU (true when unset); throws std::invalid_argument naming the
// variable when it is neither 0 nor 1. Called when the addon loads.
bool ReadMklAnyCpuSetting();

MklCpuCheckStats ReadMklCpuCheckStats();

}  // namespace convscope
