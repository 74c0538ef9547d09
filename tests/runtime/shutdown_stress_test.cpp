// Stress of the hard race (DESIGN.md): wakes, aborts and spawns in flight while tasks' frames
// are destroyed, up to and through runtime shutdown. Every Counted must die exactly once.
// clang-format off: the header under test comes first (it must compile on its own).
#include "trpl/runtime.hpp"
// clang-format on

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <expected>
#include <mutex>
#include <optional>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/counted.hpp"
#include "trpl/join_handle.hpp"
#include "trpl/sync/channel.hpp"
#include "trpl/task.hpp"
#include "trpl/time.hpp"

namespace {

using namespace std::chrono_literals;
using trpl::JoinHandle;
using trpl::Runtime;
using trpl::Task;
using trpl::test::Counted;
using trpl::test::CountedScope;

// Ends the process with a message if the current round does not finish in time: a hang in
// shutdown cannot be recovered in-process.
class Watchdog {
 public:
  explicit Watchdog(std::chrono::seconds limit)
      : thread_([this, limit] {
          std::unique_lock lk(mu_);
          while (!stop_) {
            if (!cv_.wait_for(lk, limit, [&] { return stop_ || kicked_; })) {
              std::fprintf(stderr, "HANG: a stress round (%s) made no progress for %lld s\n",
                           what_.c_str(), static_cast<long long>(limit.count()));
              std::fflush(stderr);
              std::_Exit(3);
            }
            kicked_ = false;
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lk(mu_);
      stop_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  // A round starts: reset the timer and remember what it does, for the report.
  void kick(std::string what) {
    std::lock_guard lk(mu_);
    what_ = std::move(what);
    kicked_ = true;
    cv_.notify_one();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool stop_ = false;
  bool kicked_ = false;
  std::string what_ = "starting";
  std::thread thread_;
};

void spin_for(std::chrono::microseconds d) {
  auto until = std::chrono::steady_clock::now() + d;
  while (std::chrono::steady_clock::now() < until) {
  }
}

struct RoundConfig {
  int flavor;  // 0: current_thread, 1: multi_thread with 1 worker, 2: with 2 workers
  bool block_on_main;
  int run_us;  // how long the runtime runs before it is destroyed
  unsigned seed;
  std::string describe() const {
    static const char* names[] = {"current_thread", "multi_thread(1)", "multi_thread(2)"};
    return std::string(names[flavor]) + (block_on_main ? " with block_on" : " without block_on") +
           ", runs " + std::to_string(run_us) + " us, seed " + std::to_string(seed);
  }
};

struct RoundStats {
  std::int64_t sends_ok = 0;
  std::int64_t sends_refused = 0;
  std::int64_t aborts = 0;
};

// One round: a runtime full of tasks waiting on timers and channels (and busy ones), outside
// threads sending and aborting, then the runtime destroyed mid-flight while they carry on.
// Returns false (after recording failures) when the round broke an invariant.
bool one_round(const RoundConfig& cfg, RoundStats& stats) {
  constexpr int kTimerTasks = 12, kReceiverTasks = 12, kJoinerTasks = 6, kSpawnerTasks = 3,
                kBusyTasks = 3;
  std::mt19937 rng(cfg.seed);
  std::optional<Runtime> rt;
  if (cfg.flavor == 0)
    rt.emplace(Runtime::builder().current_thread().build());
  else
    rt.emplace(Runtime::builder().multi_thread().worker_threads(cfg.flavor).build());

  std::vector<JoinHandle<void>> handles;  // read-only once the outside threads start
  std::vector<trpl::Sender<Counted>> outside_senders;

  // Timer waiters: a Counted in the task and in a child frame, short sleeps forever.
  for (int i = 0; i < kTimerTasks; ++i) {
    const int ms = 1 + static_cast<int>(rng() % 2);
    handles.push_back(rt->spawn([c = Counted(i), ms]() -> Task<void> {
      Counted local(c.value);
      for (;;) {
        co_await [](int ms) -> Task<void> {
          Counted in_child(ms);
          co_await trpl::sleep(std::chrono::milliseconds(ms));
        }(ms);
      }
    }));
  }
  // Channel waiters: each owns its Receiver and a Sender of the next one's channel; some
  // messages are forwarded once, so wakes also come from inside the runtime.
  std::vector<trpl::Sender<Counted>> txs;
  std::vector<trpl::Receiver<Counted>> rxs;
  for (int i = 0; i < kReceiverTasks; ++i) {
    auto [tx, rx] = trpl::channel<Counted>();
    txs.push_back(std::move(tx));
    rxs.push_back(std::move(rx));
  }
  for (int i = 0; i < kReceiverTasks; ++i) {
    outside_senders.push_back(txs[static_cast<std::size_t>(i)].clone());
    trpl::Sender<Counted> next = txs[static_cast<std::size_t>((i + 1) % kReceiverTasks)].clone();
    handles.push_back(rt->spawn([rx = std::move(rxs[static_cast<std::size_t>(i)]),
                                 next = std::move(next), c = Counted(i)]() mutable -> Task<void> {
      while (std::optional<Counted> m = co_await rx.recv()) {
        if (m->value % 3 == 0) {
          m->value = 1;  // forwarded at most once: no endless ping-pong
          (void)next.send(std::move(*m));
        }
      }
    }));
  }
  txs.clear();  // only the tasks' and the outside threads' senders keep the channels open
  // Joiners: spawn a child from inside the runtime and wait for it (a join waiter in flight).
  for (int i = 0; i < kJoinerTasks; ++i) {
    handles.push_back(rt->spawn([c = Counted(i)]() -> Task<void> {
      for (;;) {
        auto child = trpl::spawn_task([d = Counted(-1)]() -> Task<int> {
          co_await trpl::sleep(1ms);
          co_return d.value;
        });
        (void)co_await child;
      }
    }));
  }
  // Spawners: keep spawning short-lived detached tasks.
  for (int i = 0; i < kSpawnerTasks; ++i) {
    handles.push_back(rt->spawn([c = Counted(i)]() -> Task<void> {
      for (int k = 0;; ++k) {
        (void)trpl::spawn_task([d = Counted(k)]() -> Task<void> {
          co_await trpl::sleep(std::chrono::milliseconds(d.value % 2 + 1));
        });
        co_await trpl::sleep(1ms);
      }
    }));
  }
  // Busy tasks: keep the workers running when shutdown comes.
  for (int i = 0; i < kBusyTasks; ++i) {
    handles.push_back(rt->spawn([c = Counted(i)]() -> Task<void> {
      for (;;) {
        spin_for(50us);
        co_await trpl::sleep(1ms);
      }
    }));
  }

  std::atomic<bool> stop{false};
  std::atomic<std::int64_t> sends_ok{0}, sends_refused{0}, aborts{0};
  std::vector<std::thread> outside;
  for (int s = 0; s < 2; ++s) {
    outside.emplace_back([&, seed = rng()] {
      std::mt19937 r(seed);
      for (int k = 0; !stop.load(std::memory_order_relaxed); ++k) {
        auto& tx = outside_senders[r() % outside_senders.size()];
        if (tx.send(Counted(k)))
          sends_ok.fetch_add(1, std::memory_order_relaxed);
        else
          sends_refused.fetch_add(1, std::memory_order_relaxed);
        if (k % 8 == 7) std::this_thread::sleep_for(std::chrono::microseconds(r() % 200));
      }
    });
  }
  outside.emplace_back([&, seed = rng()] {
    std::mt19937 r(seed);
    while (!stop.load(std::memory_order_relaxed)) {
      handles[r() % handles.size()].abort();
      aborts.fetch_add(1, std::memory_order_relaxed);
      std::this_thread::sleep_for(std::chrono::microseconds(100 + r() % 400));
    }
  });

  if (cfg.block_on_main || cfg.flavor == 0) {
    // current_thread runs its tasks only inside block_on.
    rt->block_on([&]() -> Task<void> {
      auto extra = trpl::spawn_task([c = Counted(99)]() -> Task<void> {
        for (;;) co_await trpl::sleep(1ms);
      });
      (void)extra;  // detached; cancelled by shutdown
      co_await trpl::sleep(std::chrono::microseconds(cfg.run_us));
    });
  } else {
    std::this_thread::sleep_for(std::chrono::microseconds(cfg.run_us));
  }
  rt.reset();  // shutdown while sends and aborts keep coming

  bool ok = true;
  for (std::size_t i = 0; i < handles.size(); ++i) {
    if (!handles[i].is_finished()) {
      ADD_FAILURE() << "task " << i << " is not finished after its runtime died (" << cfg.describe()
                    << ")";
      ok = false;
    }
  }
  std::this_thread::sleep_for(200us);  // the outside threads keep hitting the dead tasks a bit
  stop.store(true);
  for (auto& t : outside) t.join();
  stats.sends_ok += sends_ok.load();
  stats.sends_refused += sends_refused.load();
  stats.aborts += aborts.load();
  outside_senders.clear();
  handles.clear();

  if (Counted::alive() != 0 || Counted::double_destructions.load() != 0) {
    ADD_FAILURE() << Counted::alive() << " Counted still alive, "
                  << Counted::double_destructions.load() << " destroyed twice (" << cfg.describe()
                  << ")";
    ok = false;
  }
  return ok;
}

TEST(ShutdownStress, RuntimeDestroyedMidFlightDestroysEveryFrameAndMessageExactlyOnce) {
  CountedScope scope;
  Watchdog watchdog(std::chrono::seconds(30));
  std::mt19937 rng(20240611);
  RoundStats stats;
  const auto until = std::chrono::steady_clock::now() + 2s;
  int rounds = 0;
  int per_flavor[3] = {0, 0, 0};
  while (rounds < 6 || std::chrono::steady_clock::now() < until) {
    RoundConfig cfg{static_cast<int>(rounds % 3), rng() % 2 == 0, static_cast<int>(rng() % 3000),
                    static_cast<unsigned>(rng())};
    watchdog.kick(cfg.describe());
    Counted::reset();
    ++per_flavor[cfg.flavor];
    ++rounds;
    if (!one_round(cfg, stats)) break;  // one detailed failure beats hundreds
  }
  EXPECT_GT(stats.sends_ok, 0);
  EXPECT_GT(stats.sends_refused, 0) << "no send ever raced a closed channel";
  EXPECT_GT(stats.aborts, 0);
  RecordProperty("rounds", rounds);
  std::printf(
      "[ stats    ] %d rounds (%d current_thread, %d multi(1), %d multi(2)); %lld sends, "
      "%lld refused, %lld aborts\n",
      rounds, per_flavor[0], per_flavor[1], per_flavor[2], static_cast<long long>(stats.sends_ok),
      static_cast<long long>(stats.sends_refused), static_cast<long long>(stats.aborts));
}

// Aborting a receiving task from another thread while several threads send to it: the wake
// in flight and the frame's destruction race on every iteration. Messages are never lost:
// those received are counted, the rest are destroyed with the channel.
TEST(ShutdownStress, ReceiverAbortedWhileManyThreadsSend) {
  CountedScope scope;
  Watchdog watchdog(std::chrono::seconds(30));
  const auto until = std::chrono::steady_clock::now() + 1s;
  int rounds = 0;
  while (rounds < 10 || std::chrono::steady_clock::now() < until) {
    watchdog.kick("receiver aborted while threads send, round " + std::to_string(rounds));
    ++rounds;
    auto rt = Runtime::builder().multi_thread().worker_threads(2).build();
    auto [tx, rx] = trpl::channel<Counted>();
    std::atomic<int> received{0};
    auto h = rt.spawn([rx = std::move(rx), &received]() mutable -> Task<void> {
      while (auto m = co_await rx.recv()) received.fetch_add(1, std::memory_order_relaxed);
    });
    std::atomic<bool> go{false};
    std::vector<std::thread> senders;
    for (int s = 0; s < 3; ++s) {
      senders.emplace_back([&go, tx = tx.clone(), s] {
        while (!go.load()) std::this_thread::yield();
        for (int k = 0; k < 200; ++k) {
          if (!tx.send(Counted(s * 1000 + k))) break;  // refused: the receiver is gone
        }
      });
    }
    go.store(true);
    std::this_thread::sleep_for(std::chrono::microseconds(rounds % 7 * 50));
    h.abort();
    for (auto& t : senders) t.join();
    auto r =
        rt.block_on([&]() -> Task<std::expected<void, trpl::JoinError>> { co_return co_await h; });
    EXPECT_TRUE(!r.has_value() && r.error().is_cancelled());
    EXPECT_TRUE(tx.is_closed()) << "the aborted receiver's frame (and Receiver) must be gone";
    EXPECT_EQ(Counted::alive(), 0) << "queued messages are destroyed when the channel dies";
    if (Counted::alive() != 0) break;
  }
  EXPECT_EQ(Counted::double_destructions.load(), 0);
  RecordProperty("rounds", rounds);
}

}  // namespace
