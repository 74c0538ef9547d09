// Tests for the frame pool (include/trpl/detail/frame_pool.hpp, src/task/frame_pool.cpp): every
// size class and the operator-new path round-trip with aligned, writable memory; same-thread
// reuse is LIFO; chunks freed on another thread come back without ever being handed out twice;
// a thread's cached chunks go back to the shared lists when it exits (and chunks it frees while
// exiting are not lost); and a four-thread stress passing chunks between threads, where a
// pattern written into every live chunk must be intact when it is freed.
//
// The tests call pool_alloc/pool_free directly, so an AddressSanitizer build runs them against
// the pool too, with free chunks poisoned (frame_alloc there bypasses the pool).
#include "trpl/detail/frame_pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <barrier>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <map>
#include <mutex>
#include <random>
#include <set>
#include <thread>
#include <utility>
#include <vector>

#include "support/sanitizers.hpp"

namespace {

using trpl::detail::kPoolBatch;
using trpl::detail::kPoolGranule;
using trpl::detail::kPoolMaxCached;
using trpl::detail::kPoolMaxSize;
using trpl::detail::pool_alloc;
using trpl::detail::pool_class;
using trpl::detail::pool_free;

// Sizes: ThreadSanitizer makes every byte written to a chunk an instrumented access; keep that
// binary's share well under 20 s.
#if defined(TRPL_TEST_TSAN)
constexpr int kStressOpsPerThread = 60'000;
constexpr int kShortThreads = 100;
#else
constexpr int kStressOpsPerThread = 400'000;
constexpr int kShortThreads = 300;
#endif

// The bytes a chunk of `size` really has: its class size (more than asked, up to 15 bytes).
std::size_t usable(std::size_t size) {
  return size > kPoolMaxSize ? size : (pool_class(size) + 1) * kPoolGranule;
}
bool aligned16(const void* p) { return reinterpret_cast<std::uintptr_t>(p) % 16 == 0; }

// Fills [p, p+n) with a pattern derived from `tag`, and checks it.
void fill(void* p, std::size_t n, std::uint64_t tag) {
  auto* b = static_cast<unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) b[i] = static_cast<unsigned char>((tag >> ((i % 8) * 8)) ^ i);
}
bool intact(const void* p, std::size_t n, std::uint64_t tag) {
  const auto* b = static_cast<const unsigned char*>(p);
  for (std::size_t i = 0; i < n; ++i) {
    if (b[i] != static_cast<unsigned char>((tag >> ((i % 8) * 8)) ^ i)) return false;
  }
  return true;
}

// The live chunks of a test, as address ranges: a chunk handed out while another live chunk
// overlaps it (the same one twice, or two that share bytes) is a failure.
class LiveSet {
 public:
  // False if [p, p+n) overlaps a live range.
  bool add(void* p, std::size_t n) {
    std::lock_guard lk(mu_);
    const auto a = reinterpret_cast<std::uintptr_t>(p);
    auto it = live_.lower_bound(a);
    if (it != live_.end() && it->first < a + n) return false;
    if (it != live_.begin() && std::prev(it)->first + std::prev(it)->second > a) return false;
    live_.emplace(a, n);
    return true;
  }
  // False if p is not live.
  bool remove(void* p) {
    std::lock_guard lk(mu_);
    return live_.erase(reinterpret_cast<std::uintptr_t>(p)) == 1;
  }
  std::size_t size() const {
    std::lock_guard lk(mu_);
    return live_.size();
  }

 private:
  mutable std::mutex mu_;
  std::map<std::uintptr_t, std::size_t> live_;
};

TEST(FramePool, EverySizeClassAndTheOperatorNewPathRoundTripAlignedWritableMemory) {
  std::vector<std::size_t> sizes;
  for (std::size_t s = 1; s <= kPoolMaxSize; ++s) sizes.push_back(s);
  for (std::size_t s : {kPoolMaxSize + 1, kPoolMaxSize + 16, std::size_t{2000}, std::size_t{4096},
                        std::size_t{65'536}, std::size_t{1'000'000}}) {
    sizes.push_back(s);
  }
  for (std::size_t s : sizes) {
    void* p = pool_alloc(s);
    ASSERT_NE(p, nullptr) << s;
    ASSERT_TRUE(aligned16(p)) << s << " " << p;
    fill(p, usable(s), s);
    ASSERT_TRUE(intact(p, usable(s), s)) << s;
    pool_free(p, s);
  }
  // Size 0 has a class too (the smallest).
  void* p = pool_alloc(0);
  ASSERT_NE(p, nullptr);
  EXPECT_TRUE(aligned16(p));
  std::memset(p, 0xAB, kPoolGranule);
  pool_free(p, 0);
}

TEST(FramePool, ManyLiveChunksOfEachClassAreDistinctAlignedAndDoNotOverlap) {
  // More than a slab's worth of the small classes and past the cache limit, so allocation
  // refills (from fresh slabs and from the shared list) and freeing spills.
  constexpr int kPerClass = 3 * static_cast<int>(kPoolMaxCached) + 7;
  LiveSet live;
  std::vector<std::pair<void*, std::size_t>> held;
  for (std::size_t cls = 0; cls < kPoolMaxSize / kPoolGranule; ++cls) {
    const std::size_t size = (cls + 1) * kPoolGranule - (cls % 3);  // not always a multiple
    for (int i = 0; i < kPerClass; ++i) {
      void* p = pool_alloc(size);
      ASSERT_TRUE(aligned16(p));
      ASSERT_TRUE(live.add(p, usable(size))) << "class " << cls << " chunk " << i << " " << p;
      fill(p, usable(size), reinterpret_cast<std::uintptr_t>(p));
      held.emplace_back(p, size);
    }
  }
  for (auto [p, size] : held) {
    ASSERT_TRUE(intact(p, usable(size), reinterpret_cast<std::uintptr_t>(p))) << p;
    ASSERT_TRUE(live.remove(p));
    pool_free(p, size);
  }
}

TEST(FramePool, AChunkFreedOnTheSameThreadIsTheNextOneHandedOut) {
  for (std::size_t size : {std::size_t{16}, std::size_t{40}, std::size_t{200}, kPoolMaxSize}) {
    SCOPED_TRACE(size);
    void* p = pool_alloc(size);
    pool_free(p, size);
    EXPECT_EQ(pool_alloc(size), p);
    // Any size of the same class gets it.
    pool_free(p, size);
    const std::size_t same_class = (pool_class(size) * kPoolGranule) + 1;
    EXPECT_EQ(pool_alloc(same_class), p);
    pool_free(p, same_class);
    // LIFO over several.
    void* a = pool_alloc(size);
    void* b = pool_alloc(size);
    void* c = pool_alloc(size);
    pool_free(a, size);
    pool_free(b, size);
    pool_free(c, size);
    EXPECT_EQ(pool_alloc(size), c);
    EXPECT_EQ(pool_alloc(size), b);
    EXPECT_EQ(pool_alloc(size), a);
    pool_free(a, size);
    pool_free(b, size);
    pool_free(c, size);
  }
}

TEST(FramePool, GivingChunksToTheSharedListNeverWritesIntoTheirNeighbours) {
  // The smallest class, where a chunk is 16 bytes. A fresh thread takes chunks until two are
  // adjacent, C and N = C + 16, fills N (live throughout) with a pattern, frees C alone (the
  // head of its free list) and exits: the exit flush gives that list, headed by C, to the shared
  // list. Whatever the pool writes to link the batch must stay inside C.
  constexpr std::size_t kSize = 16;
  constexpr std::uint64_t kTag = 0x0123'4567'89AB'CDEFull;
  std::vector<void*> taken;
  void* c = nullptr;
  void* n = nullptr;
  std::thread([&] {
    std::set<std::uintptr_t> addrs;
    for (int i = 0; i < 512 && c == nullptr; ++i) {
      void* p = pool_alloc(kSize);
      taken.push_back(p);
      const auto a = reinterpret_cast<std::uintptr_t>(p);
      addrs.insert(a);
      if (addrs.count(a + kSize) != 0) {
        c = p;
        n = reinterpret_cast<void*>(a + kSize);
      } else if (addrs.count(a - kSize) != 0) {
        c = reinterpret_cast<void*>(a - kSize);
        n = p;
      }
    }
    if (c == nullptr) return;
    fill(n, kSize, kTag);
    pool_free(c, kSize);
  }).join();
  ASSERT_NE(c, nullptr) << "no two adjacent chunks in 512";
  std::uint32_t first_word = 0;
  std::memcpy(&first_word, n, sizeof first_word);
  EXPECT_TRUE(intact(n, kSize, kTag))
      << "the live chunk " << n << " after the freed " << c
      << " was overwritten; its first 4 bytes now read " << first_word;
  for (void* p : taken) {
    if (p != c) pool_free(p, kSize);
  }
}

TEST(FramePool, ChunksFreedOnAnotherThreadAreReusedButNeverHandedOutTwice) {
  // A allocates; B frees them all (into B's cache, spilling to the shared list); then both
  // allocate again at once, with everything they hold live: no address may be live twice.
  constexpr int kChunks = 5'000;
  const std::size_t sizes[] = {48, 96, 512};
  LiveSet live;
  std::vector<std::pair<void*, std::size_t>> from_a;
  std::barrier sync(2);
  std::atomic<std::uint64_t> overlaps{0}, corrupted{0};
  std::set<void*> seen_first;  // A's first chunks (written before the barrier)

  auto again = [&](std::vector<std::pair<void*, std::size_t>>& mine, std::uint64_t who) {
    for (int i = 0; i < kChunks; ++i) {
      const std::size_t size = sizes[static_cast<std::size_t>(i) % 3];
      void* p = pool_alloc(size);
      if (!live.add(p, usable(size))) overlaps.fetch_add(1, std::memory_order_relaxed);
      fill(p, usable(size), who ^ i);
      mine.emplace_back(p, size);
    }
    for (std::size_t i = 0; i < mine.size(); ++i) {
      auto [p, size] = mine[i];
      if (!intact(p, usable(size), who ^ i)) corrupted.fetch_add(1, std::memory_order_relaxed);
    }
  };
  std::vector<std::pair<void*, std::size_t>> second_a, second_b;
  std::thread a([&] {
    for (int i = 0; i < kChunks; ++i) {
      const std::size_t size = sizes[static_cast<std::size_t>(i) % 3];
      void* p = pool_alloc(size);
      if (!live.add(p, usable(size))) overlaps.fetch_add(1, std::memory_order_relaxed);
      fill(p, usable(size), 0xA000'0000ull + static_cast<std::uint64_t>(i));
      from_a.emplace_back(p, size);
      seen_first.insert(p);
    }
    sync.arrive_and_wait();  // B frees them
    sync.arrive_and_wait();
    again(second_a, 0xAAAA'0000'0000ull);
    sync.arrive_and_wait();  // both hold everything: check, then free
    for (auto [p, size] : second_a) {
      live.remove(p);
      pool_free(p, size);
    }
  });
  std::thread b([&] {
    sync.arrive_and_wait();
    for (std::size_t i = 0; i < from_a.size(); ++i) {
      auto [p, size] = from_a[i];
      if (!intact(p, usable(size), 0xA000'0000ull + i)) corrupted.fetch_add(1, std::memory_order_relaxed);
      live.remove(p);
      pool_free(p, size);
    }
    sync.arrive_and_wait();
    again(second_b, 0xBBBB'0000'0000ull);
    sync.arrive_and_wait();
    for (auto [p, size] : second_b) {
      live.remove(p);
      pool_free(p, size);
    }
  });
  a.join();
  b.join();
  EXPECT_EQ(overlaps.load(), 0u);
  EXPECT_EQ(corrupted.load(), 0u);
  EXPECT_EQ(live.size(), 0u);
  // The second round reused A's first chunks: every one was free (in B's cache, or in the
  // shared lists B spilled to, which refills drain before carving a slab) and the second round
  // asked for twice as many.
  std::size_t reused = 0;
  for (auto [p, size] : second_a) reused += seen_first.count(p);
  for (auto [p, size] : second_b) reused += seen_first.count(p);
  EXPECT_GE(reused, static_cast<std::size_t>(kChunks) * 95 / 100);
}

TEST(FramePool, AThreadThatExitsGivesItsCachedChunksBack) {
  // Many short threads, one after another, each taking and freeing kChunks chunks of a class
  // nothing else here uses, then exiting with up to kPoolMaxCached of them cached. If exit did
  // not flush the cache, each thread would strand those and the next would carve a new slab:
  // thousands of distinct addresses. Flushed, the same few slabs go round.
  constexpr std::size_t kSize = 1000;  // class 62 (1008 bytes): 65 chunks a slab
  constexpr int kChunks = 100;
  std::set<void*> seen;
  std::mutex mu;
  for (int t = 0; t < kShortThreads; ++t) {
    std::thread([&] {
      std::vector<void*> mine;
      for (int i = 0; i < kChunks; ++i) mine.push_back(pool_alloc(kSize));
      {
        std::lock_guard lk(mu);
        seen.insert(mine.begin(), mine.end());
      }
      for (void* p : mine) pool_free(p, kSize);
    }).join();
  }
  // No leak per thread: even 10 chunks stranded per thread would be 1000 or more addresses.
  EXPECT_LE(seen.size(), static_cast<std::size_t>(5 * kChunks)) << "distinct chunks";
  std::printf("distinct chunks over %d threads: %zu\n", kShortThreads, seen.size());
  // And this thread, allocating the same, gets those chunks back.
  std::vector<void*> mine;
  std::size_t known = 0;
  for (int i = 0; i < kChunks; ++i) {
    mine.push_back(pool_alloc(kSize));
    known += seen.count(mine.back());
  }
  EXPECT_GE(known, static_cast<std::size_t>(kChunks) / 2);
  for (void* p : mine) pool_free(p, kSize);
}

// Holds chunks until its thread's thread-locals are destroyed: constructed before the pool's
// exit flush is armed, it is destroyed after the flush ran, so its frees (and an allocation)
// take the pool's exiting-thread paths.
struct FreedAtExit {
  std::vector<void*> chunks;
  std::size_t size = 0;
  bool* ran = nullptr;
  bool* after_flush = nullptr;
  ~FreedAtExit() {
    if (size == 0) return;
    *after_flush = trpl::detail::tl_pool_cache.dead;  // the pool's flush has run
    for (void* p : chunks) pool_free(p, size);
    void* late = pool_alloc(size);  // allocation on the way out works too
    if (late != nullptr && aligned16(late)) {
      std::memset(late, 0x5A, usable(size));
      pool_free(late, size);
      *ran = true;
    }
  }
};
thread_local FreedAtExit tl_freed_at_exit;

TEST(FramePool, ChunksFreedByAnExitingThreadAfterItsFlushAreNotLost) {
  constexpr std::size_t kSize = 976;  // class 60: nothing else here uses it
  constexpr int kChunks = 40;
  std::vector<void*> held;
  bool ran = false, after_flush = false;
  std::thread([&] {
    FreedAtExit& f = tl_freed_at_exit;  // constructed first, so destroyed after the flush
    f.size = kSize;
    f.ran = &ran;
    f.after_flush = &after_flush;
    for (int i = 0; i < kChunks; ++i) f.chunks.push_back(pool_alloc(kSize));  // arms the flush
    held = f.chunks;
  }).join();
  EXPECT_TRUE(ran);
  EXPECT_TRUE(after_flush) << "the frees did not take the exiting-thread path";
  // A new thread (an empty cache: it takes from the shared lists) finds every one of them.
  std::set<void*> want(held.begin(), held.end());
  std::size_t found = 0;
  std::thread([&] {
    std::vector<void*> got;
    for (int i = 0; i < 4'096 && found < want.size(); ++i) {
      void* p = pool_alloc(kSize);
      found += want.count(p);
      got.push_back(p);
    }
    for (void* p : got) pool_free(p, kSize);
  }).join();
  EXPECT_EQ(found, want.size());
}

TEST(FramePoolStress, FourThreadsPassingChunksAroundNeverShareALiveChunk) {
  // Each thread allocates and frees random sizes (all classes, and some above the pool's
  // limit), holds up to a few hundred chunks, and hands some to the others through a locked
  // exchange list; the receiver checks, and frees or keeps, them. Every live chunk carries a
  // pattern unique to its current allocation; a chunk handed out while still live elsewhere
  // gets overwritten by its second owner, and the first owner's check fails.
  constexpr int kThreads = 4;
  struct Held {
    void* p;
    std::size_t size;
    std::uint64_t tag;
  };
  std::mutex mu;
  std::vector<Held> exchange;
  std::atomic<std::uint64_t> corrupted{0}, passed{0}, received{0};
  std::vector<std::thread> threads;
  for (int k = 0; k < kThreads; ++k) {
    threads.emplace_back([&, k] {
      std::mt19937_64 rng(1'000 + static_cast<std::uint64_t>(k));
      std::vector<Held> mine;
      std::uint64_t next_tag = static_cast<std::uint64_t>(k + 1) << 56;
      auto size_of = [&] {
        const std::uint64_t r = rng() % 100;
        if (r < 60) return static_cast<std::size_t>(1 + rng() % 256);
        if (r < 97) return static_cast<std::size_t>(1 + rng() % kPoolMaxSize);
        return static_cast<std::size_t>(kPoolMaxSize + 1 + rng() % 3'000);
      };
      auto release = [&](const Held& h) {
        if (!intact(h.p, usable(h.size), h.tag)) corrupted.fetch_add(1, std::memory_order_relaxed);
        pool_free(h.p, h.size);
      };
      for (int op = 0; op < kStressOpsPerThread; ++op) {
        const std::uint64_t r = rng() % 100;
        if (r < 50 && mine.size() < 400) {
          const std::size_t size = size_of();
          void* p = pool_alloc(size);
          if (p == nullptr || !aligned16(p)) corrupted.fetch_add(1, std::memory_order_relaxed);
          const std::uint64_t tag = ++next_tag;
          fill(p, usable(size), tag);
          mine.push_back({p, size, tag});
        } else if (r < 90 && !mine.empty()) {
          const std::size_t i = rng() % mine.size();
          release(mine[i]);
          mine[i] = mine.back();
          mine.pop_back();
        } else if (r < 96 && !mine.empty()) {
          // Hand a few to whoever comes next.
          std::lock_guard lk(mu);
          for (int n = 0; n < 4 && !mine.empty(); ++n) {
            exchange.push_back(mine.back());
            mine.pop_back();
            passed.fetch_add(1, std::memory_order_relaxed);
          }
        } else {
          // Take what others handed over: check it, free half, keep (and re-tag) the rest.
          std::vector<Held> got;
          {
            std::lock_guard lk(mu);
            got.swap(exchange);
          }
          received.fetch_add(got.size(), std::memory_order_relaxed);
          for (Held& h : got) {
            if (rng() % 2 == 0) {
              release(h);
            } else {
              if (!intact(h.p, usable(h.size), h.tag)) corrupted.fetch_add(1, std::memory_order_relaxed);
              h.tag = ++next_tag;
              fill(h.p, usable(h.size), h.tag);
              mine.push_back(h);
            }
          }
        }
      }
      for (const Held& h : mine) release(h);
    });
  }
  for (auto& t : threads) t.join();
  for (const Held& h : exchange) {
    if (!intact(h.p, usable(h.size), h.tag)) corrupted.fetch_add(1);
    pool_free(h.p, h.size);
  }
  EXPECT_EQ(corrupted.load(), 0u);
  EXPECT_GT(passed.load(), 0u);
  EXPECT_GT(received.load(), 0u);
}

}  // namespace
