// Tests for InjectQueue (src/runtime/scheduler/inject.hpp), the intrusive MPSC run queue that
// any thread pushes onto and one consumer at a time pops: FIFO order and the maybe_nonempty()
// hint on one thread, then producers racing one consumer, consumers taking turns through a
// try-lock as MultiThread::pop_inject does, and the "push in flight" window (pop() returns null
// while the hint says nonempty: the consumer retries and the task still arrives).
//
// The queue links tasks through their TaskCore, so each header here has a real core linked to
// it both ways, as the runtime makes them. A producer writes a plain (non-atomic) field of the header
// before pushing it and the consumer reads it after popping it, so a missing happens-before
// through the queue is a data race ThreadSanitizer reports.
#include "runtime/scheduler/inject.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <deque>
#include <memory>
#include <random>
#include <thread>
#include <vector>

#include "trpl/detail/task_header.hpp"

#include "support/sanitizers.hpp"

namespace {

using trpl::detail::InjectQueue;
using trpl::detail::TaskCore;
using trpl::detail::TaskHeader;
using trpl::detail::TaskOps;

// Sizes: ThreadSanitizer is several times slower on the contended exchange; keep that binary's
// share well under 20 s.
#if defined(TRPL_TEST_TSAN)
constexpr std::uint32_t kPushes = 300'000;
constexpr int kRounds = 10'000;
#else
constexpr std::uint32_t kPushes = 1'500'000;
constexpr int kRounds = 50'000;
#endif
constexpr std::uint32_t kProducers = 3;
// Recycled: a header is pushed again once popped. Few, so that the queue stays short and the
// consumer keeps reaching its last node (where pop() re-inserts the stub) while pushes land.
constexpr std::uint32_t kHeadersPerProducer = 8;

const TaskOps kNoOps{};  // never called: the tests neither complete nor free these tasks

// Headers with root frames, linked both ways as the runtime links them. `sched` is reused as
// the test's "on the queue" flag (the runtime's SCHEDULED bit means the same): 0 when free.
class Headers {
 public:
  explicit Headers(std::size_t n) {
    all_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      auto t = std::make_unique<TaskHeader>(&kNoOps);
      cores_.push_back(std::make_unique<TaskCore>());
      t->core_ = cores_.back().get();
      t->core_->header = t.get();
      t->sched.store(0, std::memory_order_relaxed);
      all_.push_back(std::move(t));
    }
  }
  Headers(const Headers&) = delete;
  Headers& operator=(const Headers&) = delete;
  ~Headers() = default;
  TaskHeader* operator[](std::size_t i) const { return all_[i].get(); }
  std::size_t size() const { return all_.size(); }

 private:
  std::vector<std::unique_ptr<TaskHeader>> all_;
  std::vector<std::unique_ptr<TaskCore>> cores_;
};

// The message a header carries: who pushed it, and its place in that producer's sequence.
std::uint64_t message(std::uint32_t producer, std::uint32_t seq) {
  return (std::uint64_t{producer} << 32) | seq;
}
std::uint32_t producer_of(std::uint64_t m) { return static_cast<std::uint32_t>(m >> 32); }
std::uint32_t seq_of(std::uint64_t m) { return static_cast<std::uint32_t>(m); }

TEST(InjectQueue, EmptyQueuePopsNullAndIsNotMaybeNonempty) {
  InjectQueue q;
  EXPECT_FALSE(q.maybe_nonempty());
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_FALSE(q.maybe_nonempty());
}

TEST(InjectQueue, OnePushedTaskIsSeenByTheHintAndPoppedOnce) {
  Headers h(2);
  InjectQueue q;
  // Many times over: each pop of the last task re-inserts the stub node.
  for (int i = 0; i < 1'000; ++i) {
    TaskHeader* t = h[static_cast<std::size_t>(i % 2)];
    q.push(t);
    ASSERT_TRUE(q.maybe_nonempty()) << i;
    ASSERT_EQ(q.pop(), t) << i;
    ASSERT_FALSE(q.maybe_nonempty()) << i;
    ASSERT_EQ(q.pop(), nullptr) << i;
  }
}

TEST(InjectQueue, SingleThreadedOrderIsFifoAndTheHintIsExact) {
  // Random pushes and pops against a model, so the queue is emptied (and the stub re-inserted)
  // at every depth, and pushes follow pops that left the stub anywhere in the chain.
  Headers h(64);
  InjectQueue q;
  std::deque<TaskHeader*> model;
  std::vector<TaskHeader*> free_list;
  for (std::size_t i = 0; i < h.size(); ++i) free_list.push_back(h[i]);
  std::mt19937 rng(99);
  for (int step = 0; step < 200'000; ++step) {
    if (!free_list.empty() && rng() % 2 == 0) {
      TaskHeader* t = free_list.back();
      free_list.pop_back();
      q.push(t);
      model.push_back(t);
    } else {
      TaskHeader* t = q.pop();
      if (model.empty()) {
        ASSERT_EQ(t, nullptr) << "step " << step;
      } else {
        ASSERT_EQ(t, model.front()) << "step " << step;
        model.pop_front();
        free_list.push_back(t);
      }
    }
    ASSERT_EQ(q.maybe_nonempty(), !model.empty()) << "step " << step;
  }
  while (q.pop() != nullptr) {}
  EXPECT_FALSE(q.maybe_nonempty());
}

// ---- producers on their own threads

// What a consumer checks, per pop: every header is a known one, arrives once (its flag says
// it is on the queue), in its producer's order, and carries the message its producer wrote.
struct Checker {
  std::vector<std::uint32_t> next = std::vector<std::uint32_t>(kProducers, 0);
  std::uint64_t received = 0;
  std::uint64_t out_of_order = 0;
  std::uint64_t not_queued = 0;

  void take(TaskHeader* t) {
    const std::uint64_t m = t->id;  // plain: written by the producer before its push
    if (t->sched.load(std::memory_order_relaxed) != 1) ++not_queued;
    const std::uint32_t p = producer_of(m);
    if (p >= kProducers || seq_of(m) != next[p]) {
      if (++out_of_order <= 5) {
        ADD_FAILURE() << "producer " << p << " seq " << seq_of(m) << " expected "
                      << (p < kProducers ? next[p] : 0);
      }
      if (p >= kProducers) return;
    }
    next[p] = seq_of(m) + 1;
    ++received;
    t->sched.store(0, std::memory_order_release);  // its producer may push it again
  }
};

// Producer p pushes its share of `total` messages through its own headers, re-pushing each
// header once the consumer has popped it, and counts every push that has returned.
struct Producers {
  Producers(InjectQueue& q, std::uint32_t total)
      : q(q), headers(kProducers * kHeadersPerProducer), total(total) {
    for (std::uint32_t p = 0; p < kProducers; ++p) {
      threads.emplace_back([this, p] { run(p); });
    }
  }
  std::uint32_t share(std::uint32_t p) const {
    return total / kProducers + (p < total % kProducers ? 1 : 0);
  }
  void run(std::uint32_t p) {
    const std::uint32_t n = share(p);
    std::minstd_rand rng(p + 1);
    for (std::uint32_t seq = 0; seq < n; ++seq) {
      // A random pause now and then, so pushes arrive in bursts and gaps, not in lockstep.
      if (rng() % 4 == 0) {
        for (std::uint32_t i = rng() % 256; i > 0; --i) std::atomic_signal_fence(std::memory_order_seq_cst);
      }
      TaskHeader* t = headers[p * kHeadersPerProducer + seq % kHeadersPerProducer];
      for (unsigned spins = 0; t->sched.load(std::memory_order_acquire) != 0;) {
        trpl::detail::spin_pause(spins);  // still on the queue: wait for the consumer
      }
      t->id = message(p, seq);
      t->sched.store(1, std::memory_order_relaxed);
      q.push(t);
      completed.fetch_add(1, std::memory_order_release);
    }
  }
  void join() {
    for (auto& t : threads) t.join();
  }

  InjectQueue& q;
  Headers headers;
  std::uint32_t total;
  std::atomic<std::uint64_t> completed{0};  // pushes that have returned
  std::vector<std::thread> threads;
};

// After a stress round: the queue is empty and says so, every push arrived once and in its
// producer's order, and the hint never hid a finished push.
void expect_all_delivered(InjectQueue& q, const Checker& c, const Producers& prod,
                          std::uint64_t hint_missed) {
  EXPECT_EQ(q.pop(), nullptr);
  EXPECT_FALSE(q.maybe_nonempty());
  EXPECT_EQ(hint_missed, 0u);
  EXPECT_EQ(c.out_of_order, 0u);
  EXPECT_EQ(c.not_queued, 0u);
  EXPECT_EQ(c.received, kPushes);
  for (std::uint32_t p = 0; p < kProducers; ++p) EXPECT_EQ(c.next[p], prod.share(p)) << p;
}

TEST(InjectQueueStress, ProducersToOneConsumerDeliverEveryTaskOnceInPerProducerOrder) {
  InjectQueue q;
  Producers prod(q, kPushes);
  Checker c;
  std::uint64_t in_flight_nulls = 0, hint_missed = 0;
  unsigned spins = 0;
  while (c.received < kPushes) {
    // A push that has returned and is not popped yet must show in the hint: a consumer that
    // reads "empty" here goes to sleep with the task stranded.
    const std::uint64_t done = prod.completed.load(std::memory_order_acquire);
    const bool hint = q.maybe_nonempty();
    if (c.received < done && !hint && ++hint_missed <= 5) {
      ADD_FAILURE() << "maybe_nonempty() is false with " << done - c.received
                    << " finished pushes not popped (received " << c.received << ")";
    }
    TaskHeader* t = q.pop();
    if (t == nullptr) {
      if (hint) ++in_flight_nulls;  // a push in flight, or nothing yet: look again
      trpl::detail::spin_pause(spins);
      continue;
    }
    spins = 0;
    c.take(t);
  }
  prod.join();
  expect_all_delivered(q, c, prod, hint_missed);
  std::printf("null pops while the hint said nonempty: %llu\n",
              static_cast<unsigned long long>(in_flight_nulls));
}

TEST(InjectQueueStress, ConsumersTakingTurnsThroughATryLockDeliverEveryTaskOnceInOrder) {
  // As MultiThread::pop_inject: look at the hint, try the consumer flag, pop a batch, release.
  // Pops are serialised by the flag, so per-producer order is checked across both consumers.
  constexpr int kConsumers = 2;
  constexpr int kBatch = 16;
  InjectQueue q;
  std::atomic<bool> consumer_flag{false};
  Checker c;  // only touched holding the flag
  std::atomic<std::uint64_t> received{0};
  std::uint64_t hint_missed = 0;
  std::atomic<std::uint64_t> turns{0}, busy{0};
  std::atomic<bool> gave_up{false};  // the hint hid a task for good: the consumers leave
  Producers prod(q, kPushes);
  std::vector<std::thread> consumers;
  for (int k = 0; k < kConsumers; ++k) {
    consumers.emplace_back([&] {
      std::uint64_t my_turns = 0, my_busy = 0;
      auto idle_since = std::chrono::steady_clock::now();
      while (received.load(std::memory_order_acquire) < kPushes &&
             !gave_up.load(std::memory_order_relaxed)) {
        if (!q.maybe_nonempty()) {
          // Everything pushed, not everything received, and the hint says empty: a consumer
          // that trusts it (pop_inject does) would never come back for the rest.
          if (prod.completed.load(std::memory_order_acquire) < kPushes) {
            idle_since = std::chrono::steady_clock::now();
          } else if (std::chrono::steady_clock::now() - idle_since > std::chrono::seconds(5)) {
            gave_up.store(true, std::memory_order_relaxed);
          }
          std::this_thread::yield();
          continue;
        }
        idle_since = std::chrono::steady_clock::now();
        if (consumer_flag.exchange(true, std::memory_order_acquire)) {
          ++my_busy;  // the other consumer has it
          continue;
        }
        ++my_turns;
        for (int i = 0; i < kBatch; ++i) {
          TaskHeader* t = q.pop();
          if (t == nullptr) break;  // a push in flight or empty: give the turn up, come back
          c.take(t);
        }
        // Holding the flag nobody pops: a finished, unpopped push must show in the hint.
        const std::uint64_t done = prod.completed.load(std::memory_order_acquire);
        if (c.received < done && !q.maybe_nonempty() && ++hint_missed <= 5) {
          ADD_FAILURE() << "maybe_nonempty() is false with " << done - c.received
                        << " finished pushes not popped";
        }
        received.store(c.received, std::memory_order_release);
        consumer_flag.store(false, std::memory_order_release);
      }
      turns.fetch_add(my_turns, std::memory_order_relaxed);
      busy.fetch_add(my_busy, std::memory_order_relaxed);
    });
  }
  for (auto& t : consumers) t.join();
  prod.join();
  EXPECT_FALSE(gave_up.load()) << "tasks stranded behind a false maybe_nonempty(): received "
                               << c.received << " of " << kPushes;
  while (q.pop() != nullptr) {}  // (only after such a failure)
  expect_all_delivered(q, c, prod, hint_missed);
  std::printf("consumer turns %llu, flag busy %llu\n",
              static_cast<unsigned long long>(turns.load()),
              static_cast<unsigned long long>(busy.load()));
}

TEST(InjectQueueStress, PushesInFlightWhileTheConsumerPopsTheLastTaskAreNeverLost) {
  // Rounds of two producers pushing one task each at the same moment onto an empty queue while
  // the consumer pops: its pop of the last linked node races the second push (the stub goes
  // back in, or a push is seen half done and pop() returns null). The consumer retries until
  // it has both; between pops, a finished push must show in the hint; after both, the queue is
  // empty and says so.
  Headers h(2);
  InjectQueue q;
  std::atomic<int> round{0};
  std::atomic<int> completed{0};  // pushes of this round that have returned
  std::atomic<bool> stop{false};  // a task was lost: the producers leave
  std::vector<std::thread> producers;
  for (int p = 0; p < 2; ++p) {
    producers.emplace_back([&, p] {
      TaskHeader* t = h[static_cast<std::size_t>(p)];
      for (int r = 1; r <= kRounds; ++r) {
        for (unsigned spins = 0; round.load(std::memory_order_acquire) < r;) {
          if (stop.load(std::memory_order_relaxed)) return;
          trpl::detail::spin_pause(spins);
        }
        t->id = message(static_cast<std::uint32_t>(p), static_cast<std::uint32_t>(r));
        q.push(t);
        completed.fetch_add(1, std::memory_order_release);
      }
    });
  }
  std::uint64_t in_flight_nulls = 0, hint_missed = 0, lost = 0, wrong = 0, not_empty_after = 0;
  for (int r = 1; r <= kRounds; ++r) {
    completed.store(0, std::memory_order_relaxed);
    round.store(r, std::memory_order_release);
    int got = 0;
    bool seen[2] = {false, false};
    std::uint64_t tries = 0;
    for (unsigned spins = 0; got < 2;) {
      const int done = completed.load(std::memory_order_acquire);
      const bool hint = q.maybe_nonempty();
      if (got < done && !hint && ++hint_missed <= 5) {
        ADD_FAILURE() << "round " << r << ": maybe_nonempty() is false with " << done - got
                      << " finished pushes not popped";
      }
      TaskHeader* t = q.pop();
      if (t == nullptr) {
        if (hint) ++in_flight_nulls;
        if (++tries > 10'000'000) {  // many seconds: the task is gone
          ++lost;
          break;
        }
        trpl::detail::spin_pause(spins);
        continue;
      }
      const std::uint64_t m = t->id;
      const std::uint32_t p = producer_of(m);
      if (p > 1 || seq_of(m) != static_cast<std::uint32_t>(r) || seen[p] || t != h[p]) {
        ++wrong;
      } else {
        seen[p] = true;
      }
      ++got;
    }
    if (lost != 0) break;
    // Both pushes returned (they were popped) and both were popped: empty, and exactly so.
    for (unsigned spins = 0; completed.load(std::memory_order_acquire) < 2;) {
      trpl::detail::spin_pause(spins);
    }
    if (q.maybe_nonempty()) ++not_empty_after;
    if (q.pop() != nullptr) ++wrong;
  }
  stop.store(true, std::memory_order_relaxed);
  for (auto& t : producers) t.join();
  EXPECT_EQ(lost, 0u);
  EXPECT_EQ(wrong, 0u);
  EXPECT_EQ(hint_missed, 0u);
  EXPECT_EQ(not_empty_after, 0u);
  std::printf("rounds %d, null pops while the hint said nonempty: %llu\n", kRounds,
              static_cast<unsigned long long>(in_flight_nulls));
}

}  // namespace
