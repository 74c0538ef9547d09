// Tests for LocalQueue (src/runtime/scheduler/multi_thread/local_queue.hpp), the worker's
// 256-slot run queue: its single-threaded semantics (which end is which, capacity, the 16-bit
// index wrap-around, take_front_half, steal_into on a quiescent queue), then an owner racing
// thieves that also steal from each other, where every task must be taken exactly once.
//
// The queue never dereferences what it stores, so the items are not real tasks: they are
// 16-byte aligned test records passed through the queue as TaskHeader*. The concurrent test
// writes a plain (non-atomic) payload into a record before pushing it and reads it after taking
// it, so a missing happens-before through the queue is a data race ThreadSanitizer reports, and
// a record taken twice (or a slot read stale) shows up as a count of two.
#include "runtime/scheduler/multi_thread/local_queue.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <memory>
#include <random>
#include <string>
#include <thread>
#include <vector>

#include "support/sanitizers.hpp"

namespace {

using trpl::detail::LocalQueue;
using trpl::detail::TaskHeader;

constexpr std::uint32_t kCap = LocalQueue::kCapacity;

// Sizes: ThreadSanitizer runs the contended CASes many times slower; keep that binary's share
// well under 20 s. The single-threaded cycle count is the same everywhere (it must wrap the
// 16-bit indices many times over).
#if defined(TRPL_TEST_TSAN)
constexpr std::uint32_t kStressItems = 1'000'000;
constexpr std::uint32_t kFullItems = 500'000;
#else
constexpr std::uint32_t kStressItems = 2'000'000;
constexpr std::uint32_t kFullItems = 2'000'000;
#endif
constexpr int kWrapCycles = 800'000;

// ---- fake task pointers for the single-threaded tests: distinct, 16-byte aligned, never
// dereferenced (by the queue or by the tests).
TaskHeader* fake(std::uint32_t i) {
  return reinterpret_cast<TaskHeader*>((static_cast<std::uintptr_t>(i) + 1) * 16);
}
std::uint32_t index_of(TaskHeader* t) {
  return static_cast<std::uint32_t>(reinterpret_cast<std::uintptr_t>(t) / 16 - 1);
}

// Pops everything from the front (oldest first).
std::vector<std::uint32_t> drain_front(LocalQueue& q) {
  std::vector<std::uint32_t> out;
  while (TaskHeader* t = q.pop_front()) out.push_back(index_of(t));
  return out;
}
std::vector<std::uint32_t> iota(std::uint32_t from, std::uint32_t to) {
  std::vector<std::uint32_t> v;
  for (std::uint32_t i = from; i < to; ++i) v.push_back(i);
  return v;
}

// Moves head and tail of an empty queue to `offset` (mod 2^16) so a test starts anywhere on the
// index circle, including just below the wrap: forwards by push_back + pop_front, or backwards
// (the shorter way for offsets past the middle) by push_front + pop_back.
void advance_empty(LocalQueue& q, std::uint32_t offset) {
  ASSERT_TRUE(q.empty());
  offset %= 65'536;
  if (offset <= 32'768) {
    for (std::uint32_t i = 0; i < offset; ++i) {
      ASSERT_TRUE(q.push_back(fake(0)));
      ASSERT_EQ(q.pop_front(), fake(0));
    }
  } else {
    for (std::uint32_t i = offset; i < 65'536; ++i) {
      ASSERT_TRUE(q.push_front(fake(0)));
      ASSERT_EQ(q.pop_back(), fake(0));
    }
  }
  ASSERT_TRUE(q.empty());
}

TEST(LocalQueue, EmptyQueuePopsNullFromBothEndsAndHasNothingToSteal) {
  LocalQueue q, dst;
  EXPECT_TRUE(q.empty());
  EXPECT_EQ(q.len(), 0u);
  EXPECT_EQ(q.pop_back(), nullptr);
  EXPECT_EQ(q.pop_front(), nullptr);
  EXPECT_EQ(q.steal_into(dst), nullptr);
  EXPECT_TRUE(dst.empty());
}

TEST(LocalQueue, PushBackPopBackIsLifo) {
  LocalQueue q;
  for (std::uint32_t i = 0; i < 10; ++i) ASSERT_TRUE(q.push_back(fake(i)));
  EXPECT_EQ(q.len(), 10u);
  for (std::uint32_t i = 10; i-- > 0;) EXPECT_EQ(q.pop_back(), fake(i));
  EXPECT_EQ(q.pop_back(), nullptr);
  EXPECT_TRUE(q.empty());
}

TEST(LocalQueue, PushBackPopFrontIsFifo) {
  LocalQueue q;
  for (std::uint32_t i = 0; i < 10; ++i) ASSERT_TRUE(q.push_back(fake(i)));
  EXPECT_EQ(drain_front(q), iota(0, 10));
}

TEST(LocalQueue, PushFrontGoesBehindEverythingInFifoOrderAmongItself) {
  // Back-pushed 0,1,2, then front-pushed 100, 101: front to back the queue is 101 100 0 1 2.
  {
    LocalQueue q;
    for (std::uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(q.push_back(fake(i)));
    ASSERT_TRUE(q.push_front(fake(100)));
    ASSERT_TRUE(q.push_front(fake(101)));
    EXPECT_EQ(q.len(), 5u);
    // pop_back: the newest back-pushed task first, the front-pushed ones last.
    for (std::uint32_t want : {2u, 1u, 0u, 100u, 101u}) EXPECT_EQ(q.pop_back(), fake(want));
    EXPECT_EQ(q.pop_back(), nullptr);
  }
  {
    LocalQueue q;
    for (std::uint32_t i = 0; i < 3; ++i) ASSERT_TRUE(q.push_back(fake(i)));
    ASSERT_TRUE(q.push_front(fake(100)));
    ASSERT_TRUE(q.push_front(fake(101)));
    // pop_front: the front-pushed ones first.
    EXPECT_EQ(drain_front(q), (std::vector<std::uint32_t>{101, 100, 0, 1, 2}));
  }
  {
    // push_front on an empty queue, from index 0 (head goes below zero: wraps to 65535).
    LocalQueue q;
    ASSERT_TRUE(q.push_front(fake(7)));
    ASSERT_TRUE(q.push_front(fake(8)));
    EXPECT_EQ(q.len(), 2u);
    EXPECT_EQ(q.pop_back(), fake(7));
    EXPECT_EQ(q.pop_back(), fake(8));
    EXPECT_TRUE(q.empty());
  }
}

TEST(LocalQueue, CapacityOf256IsEnforcedAtBothEnds) {
  for (std::uint32_t offset : {0u, 100u, 65'500u}) {
    SCOPED_TRACE(offset);
    LocalQueue q;
    advance_empty(q, offset);
    for (std::uint32_t i = 0; i < kCap; ++i) ASSERT_TRUE(q.push_back(fake(i))) << i;
    EXPECT_EQ(q.len(), kCap);
    EXPECT_FALSE(q.push_back(fake(999)));
    EXPECT_FALSE(q.push_front(fake(999)));
    EXPECT_EQ(q.len(), kCap);
    // One slot free: exactly one more push fits, at either end.
    EXPECT_EQ(q.pop_back(), fake(kCap - 1));
    EXPECT_TRUE(q.push_front(fake(1000)));
    EXPECT_FALSE(q.push_back(fake(999)));
    EXPECT_EQ(q.pop_front(), fake(1000));
    EXPECT_TRUE(q.push_back(fake(1001)));
    EXPECT_FALSE(q.push_front(fake(999)));
    // Nothing was overwritten by the refused pushes.
    std::vector<std::uint32_t> want = iota(0, kCap - 1);
    want.push_back(1001);
    EXPECT_EQ(drain_front(q), want);
  }
  // Filled from the front alone.
  LocalQueue q;
  for (std::uint32_t i = 0; i < kCap; ++i) ASSERT_TRUE(q.push_front(fake(i))) << i;
  EXPECT_FALSE(q.push_front(fake(999)));
  EXPECT_FALSE(q.push_back(fake(999)));
  for (std::uint32_t i = 0; i < kCap; ++i) ASSERT_EQ(q.pop_back(), fake(i));
  EXPECT_TRUE(q.empty());
}

TEST(LocalQueue, TakeFrontHalfMovesTheOldestHalfInOrder) {
  for (std::uint32_t offset : {0u, 65'470u}) {
    SCOPED_TRACE(offset);
    LocalQueue q;
    advance_empty(q, offset);
    for (std::uint32_t i = 0; i < 100; ++i) ASSERT_TRUE(q.push_back(fake(i)));
    std::vector<std::uint32_t> out;
    EXPECT_EQ(q.take_front_half([&](TaskHeader* t) { out.push_back(index_of(t)); }, kCap / 2),
              50u);
    EXPECT_EQ(out, iota(0, 50));
    EXPECT_EQ(q.len(), 50u);
    // `max` caps it.
    out.clear();
    EXPECT_EQ(q.take_front_half([&](TaskHeader* t) { out.push_back(index_of(t)); }, 10), 10u);
    EXPECT_EQ(out, iota(50, 60));
    EXPECT_EQ(drain_front(q), iota(60, 100));
  }
  // A full queue gives 128, after which both ends have room again.
  LocalQueue q;
  for (std::uint32_t i = 0; i < kCap; ++i) ASSERT_TRUE(q.push_back(fake(i)));
  std::vector<std::uint32_t> out;
  EXPECT_EQ(q.take_front_half([&](TaskHeader* t) { out.push_back(index_of(t)); }, kCap / 2),
            kCap / 2);
  EXPECT_EQ(out, iota(0, kCap / 2));
  EXPECT_TRUE(q.push_back(fake(1000)));
  EXPECT_TRUE(q.push_front(fake(1001)));
  std::vector<std::uint32_t> want{1001};
  for (std::uint32_t i = kCap / 2; i < kCap; ++i) want.push_back(i);
  want.push_back(1000);
  EXPECT_EQ(drain_front(q), want);
  // One task: half of one is none.
  ASSERT_TRUE(q.push_back(fake(5)));
  EXPECT_EQ(q.take_front_half([&](TaskHeader*) { ADD_FAILURE(); }, kCap / 2), 0u);
  EXPECT_EQ(q.pop_back(), fake(5));
}

TEST(LocalQueue, WrapAroundOfThe16BitIndicesOverManyCyclesKeepsOrderAndCount) {
  // Random batches pushed at both ends and popped from both ends, against a model deque; the
  // indices go round the 2^16 circle (forwards by push_back, backwards by push_front) hundreds
  // of times.
  LocalQueue q;
  std::vector<std::uint32_t> model;  // front .. back
  std::mt19937 rng(12345);
  std::uint32_t next = 0;
  std::int64_t head_travel = 0;  // how far the head index moved forwards, unwrapped
  for (int cycle = 0; cycle < kWrapCycles; ++cycle) {
    // Out of 16: push_back 6, push_front 2, pop_back 2, pop_front 6. More pops at the front
    // than pushes there, so the indices drift forwards round the circle.
    const std::uint32_t op = rng() % 16;
    if (op < 6) {
      const bool ok = q.push_back(fake(next % 4096));
      ASSERT_EQ(ok, model.size() < kCap) << "cycle " << cycle;
      if (ok) model.push_back(next++ % 4096);
    } else if (op < 8) {
      const bool ok = q.push_front(fake(next % 4096));
      ASSERT_EQ(ok, model.size() < kCap) << "cycle " << cycle;
      if (ok) model.insert(model.begin(), next++ % 4096), --head_travel;
    } else if (op < 10) {
      TaskHeader* t = q.pop_back();
      if (model.empty()) {
        ASSERT_EQ(t, nullptr) << "cycle " << cycle;
      } else {
        ASSERT_EQ(t, fake(model.back())) << "cycle " << cycle;
        model.pop_back();
      }
    } else {
      TaskHeader* t = q.pop_front();
      if (model.empty()) {
        ASSERT_EQ(t, nullptr) << "cycle " << cycle;
      } else {
        ASSERT_EQ(t, fake(model.front())) << "cycle " << cycle;
        model.erase(model.begin());
        ++head_travel;
      }
    }
    ASSERT_EQ(q.len(), model.size()) << "cycle " << cycle;
  }
  EXPECT_GT(head_travel, 65'536 * 2);  // the random walk itself wrapped the indices, twice over
  while (q.pop_front() != nullptr) {}
  // Full-queue cycles at every phase of the ring, for the capacity check across the wrap.
  for (int cycle = 0; cycle < 2'000; ++cycle) {
    const std::uint32_t n = kCap - static_cast<std::uint32_t>(cycle % 3);
    for (std::uint32_t i = 0; i < n; ++i) ASSERT_TRUE(q.push_back(fake(i)));
    if (n == kCap) {
      ASSERT_FALSE(q.push_back(fake(0)));
      ASSERT_FALSE(q.push_front(fake(0)));
    }
    for (std::uint32_t i = 0; i < n; ++i) ASSERT_EQ(q.pop_front(), fake(i));
    ASSERT_TRUE(q.empty());
  }
}

TEST(LocalQueue, StealIntoAQuiescentQueueMovesTheOlderHalfAndReturnsItsNewest) {
  // For every length, at index offsets that put the stolen run across the 2^16 wrap.
  for (std::uint32_t offset : {0u, 65'400u, 65'535u}) {
    for (std::uint32_t n = 0; n <= kCap; ++n) {
      SCOPED_TRACE(::testing::Message() << "offset " << offset << " n " << n);
      LocalQueue src, dst;
      advance_empty(src, offset);
      advance_empty(dst, 65'536 - n);  // dst's copies cross the wrap too
      for (std::uint32_t i = 0; i < n; ++i) ASSERT_TRUE(src.push_back(fake(i)));
      TaskHeader* run_now = src.steal_into(dst);
      const std::uint32_t stolen = n - n / 2;
      if (n == 0) {
        EXPECT_EQ(run_now, nullptr);
      } else {
        // The thief runs the newest task it took; the older ones wait in its queue, in order.
        EXPECT_EQ(run_now, fake(stolen - 1));
      }
      EXPECT_EQ(dst.len(), stolen == 0 ? 0 : stolen - 1);
      EXPECT_EQ(src.len(), n / 2);
      EXPECT_EQ(drain_front(dst), iota(0, stolen == 0 ? 0 : stolen - 1));
      // The victim keeps the newer half, and both of its ends still work.
      if (n / 2 > 0) {
        EXPECT_EQ(src.pop_back(), fake(n - 1));
      }
      EXPECT_EQ(drain_front(src), iota(stolen, n / 2 > 0 ? n - 1 : stolen));
      // After the steal the victim's slots are its own again: it fills to capacity.
      for (std::uint32_t i = 0; i < kCap; ++i) ASSERT_TRUE(src.push_back(fake(i)));
      EXPECT_FALSE(src.push_back(fake(0)));
      EXPECT_FALSE(src.push_front(fake(0)));
    }
  }
  // Front-pushed tasks are the oldest: they go first.
  LocalQueue src, dst;
  for (std::uint32_t i = 0; i < 4; ++i) ASSERT_TRUE(src.push_back(fake(i)));
  ASSERT_TRUE(src.push_front(fake(100)));
  ASSERT_TRUE(src.push_front(fake(101)));  // front to back: 101 100 0 1 2 3
  EXPECT_EQ(src.steal_into(dst), fake(0));
  EXPECT_EQ(drain_front(dst), (std::vector<std::uint32_t>{101, 100}));
  EXPECT_EQ(drain_front(src), (std::vector<std::uint32_t>{1, 2, 3}));
}

// ---- the concurrent stress ----

// A task stand-in: `payload` is plain memory written by the pusher and read by the taker (a
// data race unless the queue orders them); `taken` counts how often it came out of a queue.
struct alignas(16) Item {
  std::uint64_t payload = 0;
  std::uint32_t taken_by = 0;  // plain too: two takers race on it
  std::atomic<std::uint32_t> taken{0};
};
constexpr std::uint64_t kMagic = 0x9E37'79B9'7F4A'7C15ull;

TaskHeader* as_task(Item* it) { return reinterpret_cast<TaskHeader*>(it); }
Item* as_item(TaskHeader* t) { return reinterpret_cast<Item*>(t); }

struct Stress {
  explicit Stress(std::uint32_t n) : items(n) {}
  std::vector<Item> items;
  std::atomic<std::uint64_t> bad_payload{0};
  std::atomic<std::uint64_t> foreign{0};
  std::atomic<std::uint64_t> consumed{0};

  void take(TaskHeader* t, std::uint32_t who) {
    Item* it = as_item(t);
    const auto i = static_cast<std::size_t>(it - items.data());
    if (it < items.data() || i >= items.size()) {
      foreign.fetch_add(1, std::memory_order_relaxed);
      return;
    }
    if (it->payload != (i ^ kMagic)) bad_payload.fetch_add(1, std::memory_order_relaxed);
    it->taken_by = who;
    it->taken.fetch_add(1, std::memory_order_relaxed);
    consumed.fetch_add(1, std::memory_order_relaxed);
  }
};

// "Running" a task: a short random pause, so that the owner does not simply outrun the thieves
// and a thief's queue stays non-empty long enough for its neighbours to steal from it.
void work(std::minstd_rand& rng) {
  const std::uint32_t n = rng() % 256;
  for (std::uint32_t i = 0; i < n; ++i) {
    std::atomic_signal_fence(std::memory_order_seq_cst);  // not optimised away
    asm volatile("" ::: "memory");
  }
}

// The thieves of a stress run. Thieves 0 .. kOwnerThieves-1 steal from the owner (so two of
// them race each other for its front, and one finds the other still copying), and from their
// neighbour when the owner has nothing; the last thief steals only from its neighbours, so its
// tasks all come second hand, published by steal_into's copy into another thief's queue while
// that thief drains it at the other end. Each thief owns its queue: it is empty whenever the
// thief steals into it (steal_into's precondition), and only that thief pops from it.
constexpr int kOwnerThieves = 2;
constexpr int kThieves = kOwnerThieves + 1;

struct Thieves {
  // `min_len[k]`: thief k steals from the owner only when the owner's queue holds at least that
  // many tasks.
  Thieves(Stress& s, LocalQueue& owner_q, std::uint32_t seed,
          std::array<std::uint32_t, kOwnerThieves> min_len = {})
      : s(s), owner_q(owner_q), min_len(min_len) {
    for (int k = 0; k < kThieves; ++k) queues.push_back(std::make_unique<LocalQueue>());
    for (int k = 0; k < kThieves; ++k) threads.emplace_back([this, k, seed] { run(k, seed); });
  }
  // Call once the owner has taken everything left in its queue and pushes no more.
  void finish() {
    owner_done.store(true, std::memory_order_release);
    for (auto& t : threads) t.join();
  }

  void run(int k, std::uint32_t seed) {
    LocalQueue& mine = *queues[static_cast<std::size_t>(k)];
    const auto who = static_cast<std::uint32_t>(k + 1);
    std::minstd_rand rng(seed + who);
    std::uint64_t my_steals = 0, my_second_hand = 0;
    for (;;) {
      const bool done = owner_done.load(std::memory_order_acquire);
      TaskHeader* t = nullptr;
      if (k < kOwnerThieves && owner_q.len() >= min_len[static_cast<std::size_t>(k)] &&
          (t = owner_q.steal_into(mine)) != nullptr) {
        ++my_steals;
      } else {
        const int first = static_cast<int>(rng() % (kThieves - 1));
        for (int j = 0; j < kThieves - 1 && t == nullptr; ++j) {
          const int victim = (k + 1 + (first + j) % (kThieves - 1)) % kThieves;
          t = queues[static_cast<std::size_t>(victim)]->steal_into(mine);
        }
        if (t != nullptr) ++my_second_hand;
      }
      if (t == nullptr) {
        // Leave only when the owner had finished before this round and nothing was found:
        // its queue is empty for good, and every other thief drains its own.
        if (done) break;
        std::this_thread::yield();
        continue;
      }
      s.take(t, who);
      work(rng);
      // Drain our queue, mostly from the back as a worker does, sometimes from the front;
      // other thieves may be stealing from it meanwhile.
      for (;;) {
        TaskHeader* u = (rng() % 8 == 0) ? mine.pop_front() : mine.pop_back();
        if (u == nullptr) break;
        s.take(u, who);
        work(rng);
      }
    }
    steals.fetch_add(my_steals, std::memory_order_relaxed);
    second_hand.fetch_add(my_second_hand, std::memory_order_relaxed);
  }

  Stress& s;
  LocalQueue& owner_q;
  std::array<std::uint32_t, kOwnerThieves> min_len;
  std::vector<std::unique_ptr<LocalQueue>> queues;
  std::vector<std::thread> threads;
  std::atomic<bool> owner_done{false};
  std::atomic<std::uint64_t> steals{0}, second_hand{0};
};

// Every item was taken exactly once, and nothing else came out of a queue.
void expect_each_taken_once(const Stress& s, const Thieves& th, const LocalQueue& owner_q) {
  EXPECT_TRUE(owner_q.empty());
  for (const auto& q : th.queues) EXPECT_TRUE(q->empty());
  EXPECT_EQ(s.foreign.load(), 0u);
  EXPECT_EQ(s.bad_payload.load(), 0u);
  std::uint64_t lost = 0, duplicated = 0;
  std::size_t first_bad = SIZE_MAX;
  for (std::size_t i = 0; i < s.items.size(); ++i) {
    const std::uint32_t n = s.items[i].taken.load(std::memory_order_relaxed);
    if (n == 0) ++lost;
    if (n > 1) ++duplicated;
    if (n != 1 && first_bad == SIZE_MAX) first_bad = i;
  }
  EXPECT_EQ(lost, 0u) << "first bad item " << first_bad;
  EXPECT_EQ(duplicated, 0u) << "first bad item " << first_bad;
  EXPECT_EQ(s.consumed.load(), s.items.size());
}

std::uint64_t taken_by_thieves(const Stress& s) {
  std::uint64_t n = 0;
  for (const Item& it : s.items) n += it.taken_by != 0 ? 1 : 0;
  return n;
}

TEST(LocalQueueStress, OwnerMixAgainstThievesTakesEveryTaskExactlyOnce) {
  const std::uint32_t seed = 20'240'611;
  Stress s(kStressItems);
  auto owner_q = std::make_unique<LocalQueue>();
  LocalQueue& q = *owner_q;
  Thieves th(s, q, seed);

  // The owner (this thread): a seeded random mix of its four operations over unique items, in
  // phases that fill the queue (so pushes meet thieves still copying, and the overflow path
  // runs) and phases that empty it (so pops race steals for the last tasks).
  std::mt19937 rng(seed);
  std::minstd_rand work_rng(seed);
  std::uint32_t next = 0;
  std::vector<TaskHeader*> overflow;  // the runtime's inject queue
  std::uint64_t refused_front = 0, overflowed = 0, max_len = 0;
  bool filling = true;
  int phase_left = 0;
  auto push = [&](bool back) {
    Item& it = s.items[next];
    it.payload = next ^ kMagic;
    ++next;
    if (back ? q.push_back(as_task(&it)) : q.push_front(as_task(&it))) return;
    if (!back && q.len() < kCap) ++refused_front;  // a thief is copying the front
    // Full: usually give the thieves a chance first (on a loaded machine they may not be
    // running at all), then overflow as the runtime does.
    if (rng() % 4 != 0) {
      std::this_thread::yield();
      if (back ? q.push_back(as_task(&it)) : q.push_front(as_task(&it))) return;
    }
    if (q.len() >= kCap / 2) {
      overflowed += q.take_front_half([&](TaskHeader* o) { overflow.push_back(o); }, kCap / 2);
      if (back ? q.push_back(as_task(&it)) : q.push_front(as_task(&it))) return;
    }
    overflow.push_back(as_task(&it));
  };
  while (next < kStressItems) {
    if (phase_left-- <= 0) {
      filling = !filling;
      phase_left = static_cast<int>(rng() % 600);
    }
    const std::uint32_t r = rng() % 100;
    if (r < (filling ? 75u : 35u)) {
      push(r % 4 != 0);  // 3 in 4 at the back (spawns), 1 in 4 at the front (wakes)
    } else if (TaskHeader* t = (r % 5 == 0) ? q.pop_front() : q.pop_back()) {
      s.take(t, 0);
      work(work_rng);
    }
    max_len = std::max<std::uint64_t>(max_len, q.len());
    if (overflow.size() > 512 || (!filling && !overflow.empty())) {
      for (TaskHeader* o : overflow) {
        s.take(o, 0);
        work(work_rng);
      }
      overflow.clear();
    }
  }
  for (TaskHeader* o : overflow) s.take(o, 0);
  while (TaskHeader* t = q.pop_back()) s.take(t, 0);
  th.finish();

  expect_each_taken_once(s, th, q);
  EXPECT_GT(th.steals.load(), 0u);  // the race was real
  std::printf("taken by thieves %llu of %llu; steals %llu, second hand %llu, "
              "push_front refused %llu, overflowed %llu, longest %llu\n",
              static_cast<unsigned long long>(taken_by_thieves(s)),
              static_cast<unsigned long long>(kStressItems),
              static_cast<unsigned long long>(th.steals.load()),
              static_cast<unsigned long long>(th.second_hand.load()),
              static_cast<unsigned long long>(refused_front),
              static_cast<unsigned long long>(overflowed),
              static_cast<unsigned long long>(max_len));
}

TEST(LocalQueueStress, OwnerRefillingAFullQueueNeverOverwritesTasksAThiefIsCopying) {
  // The owner keeps its queue full, pushing again the moment a steal frees room, so its pushes
  // land on the slots a thief has just claimed: the room must count those slots as taken until
  // the thief is done copying them ([steal, head) in the state word). Thief 0 steals only from
  // a full queue (the owner's refill races its copy); thief 1 steals from a quarter full one,
  // so it also tries while thief 0 is copying (and must be turned away: its claim would move
  // `steal` past the slots thief 0 has not copied yet).
  const std::uint32_t seed = 7'654'321;
  Stress s(kFullItems);
  auto owner_q = std::make_unique<LocalQueue>();
  LocalQueue& q = *owner_q;
  Thieves th(s, q, seed, {kCap, kCap / 4});
  std::minstd_rand rng(seed);
  std::uint64_t refused = 0;
  for (std::uint32_t next = 0; next < kFullItems;) {
    Item& it = s.items[next];
    it.payload = next ^ kMagic;
    if (q.push_back(as_task(&it))) {
      ++next;
      continue;
    }
    // No room: now and then run one task; otherwise wait for the thieves.
    ++refused;
    if (rng() % 16 == 0) {
      if (TaskHeader* t = q.pop_back()) s.take(t, 0);
    } else if (rng() % 8 == 0) {
      std::this_thread::yield();
    }
  }
  while (TaskHeader* t = q.pop_back()) s.take(t, 0);
  th.finish();

  expect_each_taken_once(s, th, q);
  EXPECT_GT(th.steals.load(), 0u);
  std::printf("taken by thieves %llu of %llu; steals %llu, second hand %llu, refused %llu\n",
              static_cast<unsigned long long>(taken_by_thieves(s)),
              static_cast<unsigned long long>(kFullItems),
              static_cast<unsigned long long>(th.steals.load()),
              static_cast<unsigned long long>(th.second_hand.load()),
              static_cast<unsigned long long>(refused));
}

}  // namespace
