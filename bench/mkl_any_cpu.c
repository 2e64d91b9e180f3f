/* For the benchmark's PyTorch rows only: LD_PRELOADed into Python, it gives PyTorch's MKL the answer
 * that convscope's addon gives (native/mkl_cpu_check.h), so that both sides run MKL's fast kernels
 * on a CPU that is not Intel's. Compiled by bench/mkl-preload.ts into a temporary folder. */
int mkl_serv_intel_cpu_true(void) { return 1; }
