#include "cpu_block_cache.h"

#include <c10/core/CPUAllocator.h>

#include <cstdlib>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include "args.h"
#include "errors.h"
#include "torch_compat.h"

namespace convscope {
namespace {

// Below glibc's default mmap threshold malloc serves blocks from its bins without faulting pages in.
constexpr size_t kSmallestCachedBlock = 128 * 1024;
// Sizes are rounded up to whole pages, so that requests a few bytes apart share blocks.
constexpr size_t kPage = 4096;
constexpr int64_t kDefaultLimitMb = 1024;

struct Block {
  c10::DataPtr memory;  // from the fallback allocator, which frees it when the block is deleted
  size_t bytes;
};

int64_t LimitFromEnvironment() {
  const char* text = std::getenv("CONVSCOPE_CPU_CACHE_MB");
  if (text == nullptr || *text == '\0') return kDefaultLimitMb << 20;
  char* end = nullptr;
  const long long mb = std::strtoll(text, &end, 10);
  // A malformed value must not silently cache a surprising amount: it is refused at load time.
  if (*end != '\0' || mb < 0 || mb > (INT64_C(1) << 30)) {
    throw OutOfRange("Expected a whole number of MiB >= 0 for CONVSCOPE_CPU_CACHE_MB but received \"" + std::string(text) + "\"");
  }
  return static_cast<int64_t>(mb) << 20;
}

class CpuBlockCache final : public compat::CpuAllocatorBase {
 public:
  CpuBlockCache(c10::Allocator* fallback, int64_t limit) : fallback_(fallback), limit_(limit) {}

  c10::DataPtr Allocate(size_t n) override {
    if (n < kSmallestCachedBlock || Limit() == 0) return fallback_->allocate(n);
    const size_t bytes = (n + kPage - 1) / kPage * kPage;
    Block* block = Take(bytes);
    if (block == nullptr) block = new Block{FreshMemory(bytes), bytes};
    void* data = block->memory.get();
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      lent_[data] = block;
    } catch (...) {
      delete block;  // the map could not grow: the block goes back to malloc, the caller gets the error
      throw;
    }
    // The context is the data pointer itself: oneDNN frees through raw_deleter() with nothing else.
    return {data, data, &ReturnBlock, c10::Device(c10::DeviceType::CPU)};
  }

  c10::DeleterFnPtr raw_deleter() const override { return &ReturnBlock; }

  void Empty() {
    std::unordered_map<size_t, std::vector<Block*>> blocks;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      blocks.swap(free_);
      stats_.cachedBytes = 0;
      stats_.cachedBlocks = 0;
    }
    for (auto& [bytes, list] : blocks) {
      for (Block* b : list) delete b;
    }
  }

  void SetLimit(int64_t limit) {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      limit_ = limit;
    }
    Empty();
  }

  CpuBlockCacheStats Stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    CpuBlockCacheStats s = stats_;
    s.limitBytes = limit_;
    return s;
  }

 private:
  static void ReturnBlock(void* data);

  int64_t Limit() {
    std::lock_guard<std::mutex> lock(mutex_);
    return limit_;
  }

  Block* Take(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    auto it = free_.find(bytes);
    if (it == free_.end() || it->second.empty()) {
      ++stats_.misses;
      return nullptr;
    }
    Block* block = it->second.back();
    it->second.pop_back();
    stats_.cachedBytes -= static_cast<int64_t>(bytes);
    --stats_.cachedBlocks;
    ++stats_.hits;
    return block;
  }

  // Out of memory with blocks cached: they go back to malloc and the request is tried once more.
  c10::DataPtr FreshMemory(size_t bytes) {
    try {
      return fallback_->allocate(bytes);
    } catch (const c10::Error&) {
      if (Stats().cachedBytes == 0) throw;
      Empty();
      return fallback_->allocate(bytes);
    }
  }

  // Every pointer this allocator handed out comes back here: a cached block's goes back to the
  // cache (or to malloc over the limit), any other was the fallback's and goes to its deleter.
  void Return(void* data) noexcept {
    Block* block = nullptr;
    {
      std::lock_guard<std::mutex> lock(mutex_);
      auto it = lent_.find(data);
      if (it != lent_.end()) {
        block = it->second;
        lent_.erase(it);
      }
    }
    if (block == nullptr) {
      fallback_->raw_deleter()(data);
      return;
    }
    Keep(block);
  }

  // Runs inside a tensor's deleter, where nothing may throw: a block the cache cannot take (over the
  // limit, or no memory for its list) goes back to malloc, outside the lock.
  void Keep(Block* block) noexcept {
    try {
      std::lock_guard<std::mutex> lock(mutex_);
      const int64_t bytes = static_cast<int64_t>(block->bytes);
      if (stats_.cachedBytes + bytes <= limit_) {
        free_[block->bytes].push_back(block);
        stats_.cachedBytes += bytes;
        ++stats_.cachedBlocks;
        return;
      }
    } catch (...) {
    }
    delete block;
  }

  c10::Allocator* fallback_;
  std::mutex mutex_;
  int64_t limit_;
  std::unordered_map<size_t, std::vector<Block*>> free_;  // by size, ready for reuse
  std::unordered_map<void*, Block*> lent_;                // by data pointer, in use by a tensor
  CpuBlockCacheStats stats_;
};

// Never destroyed: tensors freed during the process's exit (static ones of libtorch's included) may
// still return blocks to it.
CpuBlockCache* instance = nullptr;

void CpuBlockCache::ReturnBlock(void* data) {
  instance->Return(data);
}

Napi::Object StatsObject(Napi::Env env, const CpuBlockCacheStats& s) {
  auto o = Napi::Object::New(env);
  o.Set("cachedBytes", static_cast<double>(s.cachedBytes));
  o.Set("cachedBlocks", static_cast<double>(s.cachedBlocks));
  o.Set("hits", static_cast<double>(s.hits));
  o.Set("misses", static_cast<double>(s.misses));
  o.Set("limitBytes", static_cast<double>(s.limitBytes));
  return o;
}

// cpuBlockCache() -> { cachedBytes, cachedBlocks, hits, misses, limitBytes }
Napi::Value CacheStats(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value { return StatsObject(info.Env(), ReadCpuBlockCacheStats()); });
}

// setCpuBlockCacheLimit(bytes): 0 turns caching off; what is cached now is freed either way.
Napi::Value SetLimit(const Napi::CallbackInfo& info) {
  return Guarded(info.Env(), [&]() -> Napi::Value {
    instance->SetLimit(ReadInt(info[0], "bytes", 0, INT64_C(1) << 50));
    return info.Env().Undefined();
  });
}

}  // namespace

void InstallCpuBlockCache() {
  static std::once_flag once;
  std::call_once(once, [] {
    instance = new CpuBlockCache(c10::GetDefaultCPUAllocator(), LimitFromEnvironment());
    // Priority above the default allocator's (0); every CPU tensor allocated from now on goes through it.
    c10::SetCPUAllocator(instance, /*priority=*/1);
  });
}

void EmptyCpuBlockCache() {
  if (instance != nullptr) instance->Empty();
}

CpuBlockCacheStats ReadCpuBlockCacheStats() { return instance != nullptr ? instance->Stats() : CpuBlockCacheStats{}; }

void RegisterCpuBlockCache(Napi::Env env, Napi::Object exports) {
  exports.Set("cpuBlockCache", Napi::Function::New(env, CacheStats, "cpuBlockCache"));
  exports.Set("setCpuBlockCacheLimit", Napi::Function::New(env, SetLimit, "setCpuBlockCacheLimit"));
}

}  // namespace convscope
