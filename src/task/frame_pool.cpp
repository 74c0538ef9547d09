// The pool's slow paths (include/trpl/detail/frame_pool.hpp): the shared per-class lists of
// batches, slab carving, and the flush of a thread's free lists when the thread exits.
#include "trpl/detail/frame_pool.hpp"

#include <array>
#include <mutex>

namespace trpl::detail {

namespace {

constexpr std::size_t kSlabBytes = 64 * 1024;

// A batch of free chunks: a chain through PoolChunk::next whose first chunk also links the
// next batch of the shared list. It must fit the smallest chunk (16 bytes): no count is kept
// in it (take_batch counts the chain; a count here once overwrote a neighbour, found by
// tests/task/frame_pool_test.cpp).
struct BatchHead {
  PoolChunk chain;        // first chunk of the batch
  BatchHead* next_batch;  // the shared list
};
static_assert(sizeof(BatchHead) <= kPoolGranule);

struct SharedClass {
  std::mutex mu;
  BatchHead* batches = nullptr;
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

void push_batch(std::size_t cls, PoolChunk* first) noexcept {
  // The batch header lives in the first chunk (its link word, then the batch link).
  auto* b = reinterpret_cast<BatchHead*>(first);
  pool_unpoison(first, class_size(cls));
  SharedClass& sc = shared().classes[cls];
  std::lock_guard lk(sc.mu);
  b->next_batch = sc.batches;
  sc.batches = b;
}

// A batch from the shared list, or a fresh slab's worth of chunks. Returns the chain and count.
PoolChunk* take_batch(std::size_t cls, std::uint32_t& count) {
  SharedClass& sc = shared().classes[cls];
  {
    std::lock_guard lk(sc.mu);
    if (BatchHead* b = sc.batches) {
      sc.batches = b->next_batch;
      count = 0;
      for (PoolChunk* c = &b->chain; c != nullptr; c = c->next) ++count;
      return &b->chain;
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
    if (c.head[cls] != nullptr) push_batch(cls, c.head[cls]);
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
    if (PoolChunk* rest = chain->next) push_batch(cls, rest);
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
  push_batch(cls, give);
}

void pool_free_slow(void* p, std::size_t cls) noexcept {
  auto* chunk = static_cast<PoolChunk*>(p);
  chunk->next = nullptr;
  push_batch(cls, chunk);
}

}  // namespace trpl::detail
