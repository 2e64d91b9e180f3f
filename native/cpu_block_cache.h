// A caching CPU allocator for libtorch: large blocks freed by a tensor are kept, by size, and handed
// to the next tensor of that size instead of going back to malloc.
//
// Why: a training step frees and reallocates the same activations and gradients every step. glibc
// serves blocks that large from fresh mmap()s, or from arena heaps that it shrinks as soon as their
// top is free (always so on the worker thread the scripted epoch runs on), so each step pays the
// kernel's page faults for its own memory again: a quarter of a batch-norm step on the project's
// machine (perf, 2026-11-28). PyTorch's CUDA caching allocator avoids the same cost on the GPU.
// Python users swap the process's malloc for jemalloc or tcmalloc (LD_PRELOAD) or tune glibc's
// (GLIBC_TUNABLES); an addon cannot do either for the Node process that loads it, but libtorch lets it
// replace the allocator behind CPU tensors (c10::SetCPUAllocator), and reuse by size is all it needs.
#pragma once

#include <napi.h>

#include <cstddef>
#include <cstdint>

namespace convscope {

struct CpuBlockCacheStats {
  int64_t cachedBytes = 0, cachedBlocks = 0;  // held for reuse now
  int64_t hits = 0, misses = 0;               // large requests served from the cache / from malloc
  int64_t limitBytes = 0;
};

// Makes the cache libtorch's CPU allocator (once per process; later calls do nothing). The limit comes
// from $CONVSCOPE_CPU_CACHE_MB (default 1024; 0 turns caching off).
void InstallCpuBlockCache();

// Frees every cached block (to malloc). Blocks in use are not affected.
void EmptyCpuBlockCache();

CpuBlockCacheStats ReadCpuBlockCacheStats();

void RegisterCpuBlockCache(Napi::Env env, Napi::Object exports);

}  // namespace convscope
