// The memory of coroutine frames and task cells: per-thread free lists by size class, with
// Go-style spill to and refill from a shared list, so a frame freed on another thread is reused.
#pragma once

#include <cstddef>
#include <cstdint>
#include <new>

// The pool hides use-after-free from AddressSanitizer; an ASan build hands frames and cells to
// the system allocator instead (the pool's own tests still exercise it, with poisoning).
#if defined(__SANITIZE_ADDRESS__)
#define TRPL_POOL_ASAN 1
#elif defined(__has_feature)
#if __has_feature(address_sanitizer)
#define TRPL_POOL_ASAN 1
#endif
#endif
#ifndef TRPL_POOL_ASAN
#define TRPL_POOL_ASAN 0
#endif
#if TRPL_POOL_ASAN
#include <sanitizer/asan_interface.h>
#endif

namespace trpl::detail {

// How it works. Sizes up to kPoolMaxSize are rounded up to a multiple of 16 (a size class);
// larger ones go to operator new. Each thread keeps, per class, a singly linked list of free
// chunks (no atomics, no lock). A free on any thread goes to that thread's list; a list longer
// than kPoolMaxCached gives kPoolBatch chunks to the class's shared list (one lock per batch);
// an empty list takes a batch back, or carves new chunks from a 64 KiB slab. Chunks are never
// returned to the system: the pool's footprint is the program's peak, as Go's goroutine
// stacks are. A thread's lists go back to the shared lists when the thread exits.
inline constexpr std::size_t kPoolGranule = 16;
inline constexpr std::size_t kPoolMaxSize = 1024;
inline constexpr std::size_t kPoolClasses = kPoolMaxSize / kPoolGranule;
inline constexpr std::uint32_t kPoolBatch = 32;
inline constexpr std::uint32_t kPoolMaxCached = 2 * kPoolBatch;

struct PoolChunk {
  PoolChunk* next;
};

// One thread's free lists. Constant-initialised and trivially destructible, so reaching it is a
// plain thread-local access; the flush at thread exit is registered on the first slow path.
struct PoolCache {
  PoolChunk* head[kPoolClasses];
  std::uint32_t count[kPoolClasses];
  bool registered;  // the exit flush is armed
  bool dead;        // the thread is exiting: everything goes straight to the shared lists
};
inline thread_local constinit PoolCache tl_pool_cache{};

// Slow paths (src/task/frame_pool.cpp).
void* pool_refill(std::size_t cls);
void pool_spill(std::size_t cls) noexcept;
void pool_free_slow(void* p, std::size_t cls) noexcept;

// A free chunk is off limits (but for its link) to anything that is not the pool.
inline void pool_poison([[maybe_unused]] void* p, [[maybe_unused]] std::size_t size) noexcept {
#if TRPL_POOL_ASAN
  ASAN_POISON_MEMORY_REGION(p, size);
#endif
}
inline void pool_unpoison([[maybe_unused]] void* p, [[maybe_unused]] std::size_t size) noexcept {
#if TRPL_POOL_ASAN
  ASAN_UNPOISON_MEMORY_REGION(p, size);
#endif
}

constexpr std::size_t pool_class(std::size_t size) noexcept {
  return size == 0 ? 0 : (size - 1) / kPoolGranule;
}

// Memory for `size` bytes, aligned to 16 (what operator new guarantees).
inline void* pool_alloc(std::size_t size) {
  if (size > kPoolMaxSize) return ::operator new(size);
  const std::size_t cls = pool_class(size);
  PoolCache& c = tl_pool_cache;
  if (PoolChunk* chunk = c.head[cls]) [[likely]] {
    pool_unpoison(chunk, (cls + 1) * kPoolGranule);
    c.head[cls] = chunk->next;
    --c.count[cls];
    return chunk;
  }
  return pool_refill(cls);
}

// Returns memory from pool_alloc(size); any thread may free it.
inline void pool_free(void* p, std::size_t size) noexcept {
  if (size > kPoolMaxSize) {
    ::operator delete(p);
    return;
  }
  const std::size_t cls = pool_class(size);
  PoolCache& c = tl_pool_cache;
  if (c.dead) [[unlikely]] {
    pool_free_slow(p, cls);
    return;
  }
  auto* chunk = static_cast<PoolChunk*>(p);
  chunk->next = c.head[cls];
  pool_poison(reinterpret_cast<char*>(p) + sizeof(PoolChunk), (cls + 1) * kPoolGranule - sizeof(PoolChunk));
  c.head[cls] = chunk;
  if (++c.count[cls] > kPoolMaxCached) [[unlikely]] pool_spill(cls);
}

// What frames and task cells use: the pool, or (under ASan) the system allocator.
inline void* frame_alloc(std::size_t size) {
#if TRPL_POOL_ASAN
  return ::operator new(size);
#else
  return pool_alloc(size);
#endif
}
inline void frame_free(void* p, std::size_t size) noexcept {
#if TRPL_POOL_ASAN
  ::operator delete(p, size);
#else
  pool_free(p, size);
#endif
}

// Gives a promise type pooled frames: `struct promise_type : PooledFrame { ... }`.
struct PooledFrame {
  static void* operator new(std::size_t size) { return frame_alloc(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_free(p, size); }
};

}  // namespace trpl::detail
