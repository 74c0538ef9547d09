// Stress tests for trpl::channel under real parallelism: a million messages from tasks and plain
// threads, and the hard race (sends in flight while the receiving task is aborted), repeated.
#include <gtest/gtest.h>

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <random>
#include <thread>
#include <utility>
#include <vector>

#include "support/counted.hpp"
#include "trpl/runtime.hpp"
#include "trpl/sync/channel.hpp"
#include "trpl/time.hpp"

#include "support/sanitizers.hpp"

namespace {

using trpl::test::Counted;
using trpl::test::CountedScope;

// Sizes: the same number of race rounds everywhere; fewer bulk messages under ThreadSanitizer,
// which runs the mutex-per-send path several times slower (keep that binary well under 20 s).
#if defined(TRPL_TEST_TSAN)
constexpr std::int64_t kMillionMessages = 500'000;
#else
constexpr std::int64_t kMillionMessages = 1'000'000;
#endif
constexpr int kRaceRounds = 300;
constexpr int kRaceMessagesPerThread = 1'000;
constexpr int kRaceThreads = 3;

trpl::Runtime two_workers() {
  return trpl::Runtime::builder().multi_thread().worker_threads(2).build();
}

struct Numbered {
  std::uint32_t producer;
  std::uint32_t seq;
};

TEST(ChannelStress, MillionMessagesFromTasksAndThreadsArriveExactlyOnceInPerProducerOrder) {
  constexpr std::uint32_t kTaskProducers = 4;
  constexpr std::uint32_t kThreadProducers = 2;
  constexpr std::uint32_t kProducers = kTaskProducers + kThreadProducers;
  std::vector<std::uint32_t> count(kProducers);
  for (std::uint32_t p = 0; p < kProducers; ++p) {
    count[p] = static_cast<std::uint32_t>(kMillionMessages / kProducers +
                                          (p < kMillionMessages % kProducers ? 1 : 0));
  }

  auto rt = two_workers();
  auto [tx, rx] = trpl::channel<Numbered>();
  std::vector<std::uint32_t> next(kProducers, 0);
  std::int64_t received = 0;
  std::int64_t out_of_order = 0;
  std::vector<std::thread> threads;
  rt.block_on([&, tx = std::move(tx)]() mutable -> trpl::Task<> {
    std::vector<trpl::JoinHandle<void>> tasks;
    for (std::uint32_t p = 0; p < kTaskProducers; ++p) {
      tasks.push_back(trpl::spawn_task([tx = tx.clone(), p, n = count[p]]() -> trpl::Task<> {
        for (std::uint32_t seq = 0; seq < n; ++seq) {
          if (!tx.send(Numbered{p, seq})) ADD_FAILURE() << "send failed";
        }
        co_return;
      }));
    }
    for (std::uint32_t p = kTaskProducers; p < kProducers; ++p) {
      threads.emplace_back([tx = tx.clone(), p, n = count[p]] {
        for (std::uint32_t seq = 0; seq < n; ++seq) {
          if (!tx.send(Numbered{p, seq})) ADD_FAILURE() << "send failed";
        }
      });
    }
    { auto gone = std::move(tx); }  // only the producers' clones keep the channel open
    while (std::optional<Numbered> m = co_await rx.recv()) {
      if (m->producer >= kProducers || m->seq != next[m->producer]) {
        if (++out_of_order <= 5) {
          ADD_FAILURE() << "producer " << m->producer << " seq " << m->seq << " expected "
                        << (m->producer < kProducers ? next[m->producer] : 0);
        }
        if (m->producer >= kProducers) continue;
      }
      next[m->producer] = m->seq + 1;
      ++received;
    }
    for (auto& t : tasks) {
      auto r = co_await t;
      EXPECT_TRUE(r.has_value());
    }
  });
  for (auto& t : threads) t.join();
  EXPECT_EQ(out_of_order, 0);
  EXPECT_EQ(received, kMillionMessages);
  for (std::uint32_t p = 0; p < kProducers; ++p) EXPECT_EQ(next[p], count[p]) << "producer " << p;
}

// A message that records its own destruction in a per-round table (slot = its id), so "destroyed
// exactly once" is checked per message, not just in total.
struct Tracked {
  Tracked(int id, std::atomic<std::uint8_t>* table) : counted(id), table(table) {}
  Tracked(Tracked&&) noexcept = default;
  Tracked& operator=(Tracked&&) = delete;
  ~Tracked() {
    if (!counted.moved_from) table[counted.value].fetch_add(1, std::memory_order_relaxed);
  }
  Counted counted;
  std::atomic<std::uint8_t>* table;
};

struct RaceOutcome {
  std::int64_t sent = 0;
  std::int64_t refused = 0;
  std::int64_t received = 0;
};

// Starts kRaceThreads plain threads each sending kRaceMessagesPerThread Tracked messages, all
// released at once so their sends overlap, with frequent yields so that the receiving task keeps
// catching up and waiting in recv. The returned threads hold the only Senders.
std::vector<std::thread> start_senders(trpl::Sender<Tracked> tx, std::atomic<std::uint8_t>* table,
                                       std::atomic<std::int64_t>& sent,
                                       std::atomic<std::int64_t>& refused) {
  std::vector<std::thread> threads;
  auto ready = std::make_shared<std::atomic<int>>(0);
  for (int t = 0; t < kRaceThreads; ++t) {
    threads.emplace_back([tx = tx.clone(), t, table, &sent, &refused, ready] {
      ready->fetch_add(1);
      while (ready->load() < kRaceThreads) std::this_thread::yield();
      for (int i = 0; i < kRaceMessagesPerThread; ++i) {
        if (i % 64 == 0) std::this_thread::yield();
        const int id = t * kRaceMessagesPerThread + i;
        if (tx.send(Tracked(id, table))) {
          sent.fetch_add(1, std::memory_order_relaxed);
        } else {
          refused.fetch_add(1, std::memory_order_relaxed);  // the SendError's value dies here
        }
      }
    });
  }
  return threads;
}

void expect_each_destroyed_once(const std::vector<std::atomic<std::uint8_t>>& table, int round) {
  for (std::size_t id = 0; id < table.size(); ++id) {
    const unsigned n = table[id].load();
    if (n != 1) {
      ADD_FAILURE() << "round " << round << ": message " << id << " destroyed " << n << " times";
      return;
    }
  }
}

// The hard race of DESIGN.md: sends (and their wakes) in flight while the task waiting in recv
// is aborted from another thread. The task owns the Receiver, so the abort also closes the
// channel: later sends fail and hand their message back. Every message dies exactly once.
TEST(ChannelStress, AbortingTheReceivingTaskWhileThreadsSendDestroysEveryMessageExactlyOnce) {
  CountedScope scope;
  std::mt19937 rng(12345);
  constexpr int kTotal = kRaceThreads * kRaceMessagesPerThread;
  for (int round = 0; round < kRaceRounds; ++round) {
    std::vector<std::atomic<std::uint8_t>> table(kTotal);
    std::atomic<std::int64_t> sent{0}, refused{0}, received{0};
    {
      auto rt = two_workers();
      auto [tx, rx] = trpl::channel<Tracked>();
      auto handle = rt.spawn([rx = std::move(rx), &received]() mutable -> trpl::Task<> {
        while (std::optional<Tracked> m = co_await rx.recv()) {
          received.fetch_add(1, std::memory_order_relaxed);
        }
      });
      auto threads = start_senders(std::move(tx), table.data(), sent, refused);
      // Abort after a random share of the messages arrived (or once the senders are done).
      const std::int64_t abort_after =
          std::uniform_int_distribution<std::int64_t>(0, kTotal - 1)(rng);
      while (received.load(std::memory_order_relaxed) < abort_after &&
             sent.load(std::memory_order_relaxed) + refused.load(std::memory_order_relaxed) <
                 kTotal) {
        std::this_thread::yield();
      }
      handle.abort();
      for (auto& t : threads) t.join();
      rt.block_on([&]() -> trpl::Task<> {
        auto r = co_await handle;  // cancelled, or finished if every sender was already gone
        EXPECT_TRUE(r.has_value() || r.error().is_cancelled());
      });
    }  // runtime shut down
    ASSERT_EQ(sent.load() + refused.load(), kTotal);
    ASSERT_LE(received.load(), sent.load());
    expect_each_destroyed_once(table, round);
    ASSERT_EQ(Counted::alive(), 0) << "round " << round;
    if (HasFailure()) return;
  }
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

// The same race with the Receiver outside the aborted task (the task only borrows it): the
// abort must leave every message queued, so receiving task + a final drain see all of them.
TEST(ChannelStress, AbortingATaskThatBorrowsTheReceiverWhileThreadsSendLosesNoMessage) {
  CountedScope scope;
  std::mt19937 rng(54321);
  constexpr int kTotal = kRaceThreads * kRaceMessagesPerThread;
  for (int round = 0; round < kRaceRounds; ++round) {
    std::vector<std::atomic<std::uint8_t>> table(kTotal);
    std::atomic<std::int64_t> sent{0}, refused{0}, received{0};
    std::int64_t drained = 0;
    {
      auto rt = two_workers();
      auto [tx, rx] = trpl::channel<Tracked>();
      auto handle = rt.spawn([&rx, &received]() -> trpl::Task<> {
        while (std::optional<Tracked> m = co_await rx.recv()) {
          received.fetch_add(1, std::memory_order_relaxed);
        }
      });
      auto threads = start_senders(std::move(tx), table.data(), sent, refused);
      const std::int64_t abort_after =
          std::uniform_int_distribution<std::int64_t>(0, kTotal - 1)(rng);
      while (received.load(std::memory_order_relaxed) < abort_after &&
             sent.load(std::memory_order_relaxed) < kTotal) {
        std::this_thread::yield();
      }
      handle.abort();
      for (auto& t : threads) t.join();
      rt.block_on([&]() -> trpl::Task<> {
        auto r = co_await handle;
        EXPECT_TRUE(r.has_value() || r.error().is_cancelled());
      });
      while (rx.try_recv()) ++drained;
      EXPECT_EQ(rx.try_recv(), std::unexpected(trpl::TryRecvError::disconnected));
    }
    ASSERT_EQ(refused.load(), 0);  // the Receiver lived through the whole round
    ASSERT_EQ(received.load() + drained, kTotal) << "round " << round;
    expect_each_destroyed_once(table, round);
    ASSERT_EQ(Counted::alive(), 0) << "round " << round;
    if (HasFailure()) return;
  }
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

}  // namespace
