// The pool's slow paths (include/trpl/detail/frame_pool.hpp): the shared per-class lists of
// batches, slab carving, and the flush of a thread's free lists when the thread exits.
#include "trpl/detail/frame_pool.hpp"

#include <array>
#include <mutex>
#include <vector>

namespace trpl::detail {

namespace {

constexpr std::size_t kSlabBytes = 64 * 1024;

// A batch of free chunks: a chain through PoolChunk::next, and its length. The shared list
// keeps both outside the chunks: a chunk may be as small as 16 bytes (a count kept in the
// first chunk once overwrote its neighbour, found by tests/task/frame_pool_test.cpp), and
// counting a chain means touching every chunk, which another thread freed (a cache miss
// each: that made refills a fifth of spawn_join_block_on).
struct Batch {
  PoolChunk* chain;
  std::uint32_t count;
};

struct SharedClass {
  std::mutex mu;
  std::vector<Batch> batches;
};

struct Shared {
  std::array<SharedClass, kPoolClasses> classes;
  std::mutex slabs_mu;
  void* slabs = nullptr;  // every slab, linked through its first word (kept reachable)
};

// Never destroyed: frames may be freed by other static destructors after main returns.
Shared& shared() {
  static Shared* s = new Shared();
  return *s;
}

std::size_t class_size(std::size_t cls) { return (cls + 1) * kPoolGranule; }

void push_batch(std::size_t cls, PoolChunk* first, std::uint32_t count) noexcept {
  SharedClass& sc = shared().classes[cls];
  std::lock_guard lk(sc.mu);
  try {
    sc.batches.push_back(Batch{first, count});
  } catch (...) {
    // No memory for the list itself: leave the chunks unused rather than lose track of them
    // (they stay reachable from their slab).
  }
}

// A batch from the shared list, or a fresh slab's worth of chunks. Returns the chain and count.
PoolChunk* take_batch(std::size_t cls, std::uint32_t& count) {
  SharedClass& sc = shared().classes[cls];
  {
    std::lock_guard lk(sc.mu);
    if (!sc.batches.empty()) {
      const Batch b = sc.batches.back();
      sc.batches.pop_back();
      count = b.count;
      return b.chain;
    }
  }
  const std::size_t size = class_size(cls);
  auto* slab = static_cast<char*>(::operator new(kSlabBytes));
  {
    std::lock_guard lk(shared().slabs_mu);
    *reinterpret_cast<void**>(slab) = shared().slabs;
    shared().slabs = slab;
  }
  // The first 16 bytes link the slab list; chunks follow.
  char* begin = slab + kPoolGranule;
  const std::size_t n = (kSlabBytes - kPoolGranule) / size;
  PoolChunk* head = nullptr;
  for (std::size_t i = n; i-- > 0;) {
    auto* chunk = reinterpret_cast<PoolChunk*>(begin + i * size);
    chunk->next = head;
    pool_poison(reinterpret_cast<char*>(chunk) + sizeof(PoolChunk), size - sizeof(PoolChunk));
    head = chunk;
  }
  count = static_cast<std::uint32_t>(n);
  return head;
}

void flush_thread() noexcept {
  PoolCache& c = tl_pool_cache;
  c.dead = true;
  for (std::size_t cls = 0; cls < kPoolClasses; ++cls) {
    if (c.head[cls] != nullptr) push_batch(cls, c.head[cls], c.count[cls]);
    c.head[cls] = nullptr;
    c.count[cls] = 0;
  }
}

struct ExitFlush {
  ~ExitFlush() { flush_thread(); }
};

void arm_exit_flush() {
  static thread_local ExitFlush flush;
  (void)&flush;
  tl_pool_cache.registered = true;
}

}  // namespace

void* pool_refill(std::size_t cls) {
  PoolCache& c = tl_pool_cache;
  std::uint32_t count = 0;
  PoolChunk* chain = take_batch(cls, count);
  pool_unpoison(chain, class_size(cls));
  if (c.dead) [[unlikely]] {
    // The thread is exiting: use one chunk, give the rest back.
    if (PoolChunk* rest = chain->next) push_batch(cls, rest, count - 1);
    return chain;
  }
  if (!c.registered) arm_exit_flush();
  c.head[cls] = chain->next;
  c.count[cls] = count - 1;
  return chain;
}

void pool_spill(std::size_t cls) noexcept {
  PoolCache& c = tl_pool_cache;
  if (!c.registered) arm_exit_flush();
  // Keep the most recently freed (cache-warm) chunks; give the older kPoolBatch away.
  PoolChunk* keep_last = c.head[cls];
  for (std::uint32_t i = 1; i < c.count[cls] - kPoolBatch; ++i) keep_last = keep_last->next;
  PoolChunk* give = keep_last->next;
  keep_last->next = nullptr;
  c.count[cls] -= kPoolBatch;
  push_batch(cls, give, kPoolBatch);
}

void pool_free_slow(void* p, std::size_t cls) noexcept {
  auto* chunk = static_cast<PoolChunk*>(p);
  chunk->next = nullptr;
  push_batch(cls, chunk, 1);
}

}  // namespace trpl::detail
