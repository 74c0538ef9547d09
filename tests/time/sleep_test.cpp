// Tests for time (include/trpl/time.hpp): sleep and sleep_until under paused and real time,
// Instant arithmetic, FIFO among equal deadlines, and dropped sleeps leaving nothing behind.
// clang-format off: the header under test comes first (it must compile on its own).
#include "trpl/time.hpp"
// clang-format on

#include <gtest/gtest.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <expected>
#include <mutex>
#include <numeric>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "support/counted.hpp"
#include "support/harness.hpp"
#include "trpl/detail/runtime_context.hpp"
#include "trpl/join.hpp"
#include "trpl/join_handle.hpp"
#include "trpl/runtime.hpp"
#include "trpl/sync/channel.hpp"
#include "trpl/task.hpp"

namespace {

using trpl::test::paused_runtime;
using trpl::test::must_finish_within;

using namespace std::chrono_literals;
using trpl::Instant;
using trpl::JoinError;
using trpl::JoinHandle;
using trpl::Runtime;
using trpl::Task;
using trpl::test::Counted;
using trpl::test::CountedScope;
using Duration = Instant::duration;

Runtime current_runtime() { return Runtime::builder().current_thread().build(); }
Runtime multi_runtime(std::size_t workers) {
  return Runtime::builder().multi_thread().worker_threads(workers).build();
}

// White-box: how many timers the current runtime's timer driver still holds. Only valid inside
// a task, after the runtime's first sleep created the driver (make = nullptr is never called).
std::size_t pending_timers() {
  auto& rt = trpl::detail::current_runtime("pending_timers");
  return trpl::detail::driver(rt, trpl::detail::DriverKind::timer, nullptr).pending();
}


// ---- paused time ----

TEST(Sleep, PausedSleepAdvancesNowByExactlyItsDuration) {
  auto rt = paused_runtime();
  auto [a, b, c] = rt.block_on([]() -> Task<std::tuple<Duration, Duration, Duration>> {
    Instant start = Instant::now();
    co_await trpl::sleep(500ms);
    Duration a = Instant::now() - start;
    co_await trpl::sleep(1h);
    Duration b = Instant::now() - start;
    co_await trpl::sleep(std::chrono::seconds(3));
    co_return std::tuple{a, b, Instant::now() - start};
  });
  EXPECT_EQ(a, 500ms);
  EXPECT_EQ(b, 1h + 500ms);
  EXPECT_EQ(c, 1h + 3s + 500ms);
}

TEST(Sleep, PausedClockStandsStillWhileTasksRun) {
  auto rt = paused_runtime();
  Duration d = rt.block_on([]() -> Task<Duration> {
    Instant start = Instant::now();
    std::this_thread::sleep_for(20ms);  // real time passes; virtual time must not
    co_return Instant::now() - start;
  });
  EXPECT_EQ(d, Duration::zero());
}

TEST(Sleep, DeadlineIsFixedWhenSleepIsCalledNotWhenAwaited) {
  auto rt = paused_runtime();
  auto [created_deadline_ok, woke_at, late_wait] =
      rt.block_on([]() -> Task<std::tuple<bool, Duration, Duration>> {
        Instant start = Instant::now();
        trpl::Sleep s = trpl::sleep(100ms);  // deadline: start + 100ms, whenever it is awaited
        bool ok = s.deadline() == start + 100ms;
        co_await trpl::sleep(60ms);
        co_await s;
        Duration woke = Instant::now() - start;

        trpl::Sleep expired = trpl::sleep(10ms);
        co_await trpl::sleep(50ms);  // past its deadline before it is awaited
        Instant before = Instant::now();
        co_await expired;
        co_return std::tuple{ok, woke, Instant::now() - before};
      });
  EXPECT_TRUE(created_deadline_ok);
  EXPECT_EQ(woke_at, 100ms) << "the deadline moved to when the sleep was awaited";
  EXPECT_EQ(late_wait, Duration::zero());
}

TEST(Sleep, SleepUntilWakesAtItsDeadline) {
  auto rt = paused_runtime();
  Duration d = rt.block_on([]() -> Task<Duration> {
    Instant start = Instant::now();
    co_await trpl::sleep_until(start + 250ms);
    co_return Instant::now() - start;
  });
  EXPECT_EQ(d, 250ms);
}

TEST(Sleep, ZeroAndPastDeadlinesCompleteAtOnce) {
  auto rt = paused_runtime();
  std::vector<Duration> waits = rt.block_on([]() -> Task<std::vector<Duration>> {
    // Another task's timer is pending: an immediate sleep must not jump the clock to it.
    auto other = trpl::spawn_task([]() -> Task<void> { co_await trpl::sleep(1s); });
    co_await trpl::sleep(1ms);
    std::vector<Duration> w;
    Instant start = Instant::now();
    co_await trpl::sleep(0ms);
    w.push_back(Instant::now() - start);
    co_await trpl::sleep(Duration::zero());
    w.push_back(Instant::now() - start);
    co_await trpl::sleep(-5ms);
    w.push_back(Instant::now() - start);
    co_await trpl::sleep_until(start - 1s);
    w.push_back(Instant::now() - start);
    co_await trpl::sleep_until(Instant::now());
    w.push_back(Instant::now() - start);
    other.abort();
    co_return w;
  });
  for (std::size_t i = 0; i < waits.size(); ++i) EXPECT_EQ(waits[i], Duration::zero()) << i;
}

TEST(Sleep, SubMillisecondSleepsAreRoundedUpNeverDown) {
  auto rt = paused_runtime();
  auto [a, b] = rt.block_on([]() -> Task<std::pair<Duration, Duration>> {
    Instant start = Instant::now();
    co_await trpl::sleep(1ns);
    Duration a = Instant::now() - start;
    co_await trpl::sleep(1500us);
    co_return std::pair{a, Instant::now() - start};
  });
  EXPECT_GE(a, 1ns);
  EXPECT_LE(a, 1ms);
  EXPECT_GE(b, a + 1500us);
  EXPECT_LE(b, a + 2ms);
}

// Spawns `n` tasks; task i first waits a shuffled delay (so the tasks register their final
// timer in an order unrelated to their spawn order), then sleeps until the shared `deadline`.
// Returns {registration order, firing order}.
std::pair<std::vector<int>, std::vector<int>> equal_deadline_tasks(Duration deadline_after, int n,
                                                                   unsigned seed) {
  auto rt = paused_runtime();
  std::vector<int> registered, fired;
  rt.block_on([&]() -> Task<void> {
    const Instant deadline = Instant::now() + deadline_after;
    std::vector<int> delay_ms(n);
    std::iota(delay_ms.begin(), delay_ms.end(), 0);
    std::shuffle(delay_ms.begin(), delay_ms.end(), std::mt19937(seed));
    std::vector<JoinHandle<void>> handles;
    for (int i = 0; i < n; ++i) {
      // Delays collide in groups of 3, so some register within the same millisecond too.
      const int d = delay_ms[static_cast<std::size_t>(i)] / 3;
      handles.push_back(trpl::spawn_task([i, d, deadline, &registered, &fired]() -> Task<void> {
        if (d > 0) co_await trpl::sleep(std::chrono::milliseconds(d));
        registered.push_back(i);
        co_await trpl::sleep_until(deadline);
        EXPECT_EQ(Instant::now(), deadline);
        fired.push_back(i);
      }));
    }
    for (auto& h : handles) EXPECT_TRUE((co_await h).has_value());
  });
  return {registered, fired};
}

class EqualDeadlines : public ::testing::TestWithParam<Duration> {};

TEST_P(EqualDeadlines, TimersWithEqualDeadlinesFireInRegistrationOrder) {
  constexpr int n = 150;
  auto [registered, fired] = equal_deadline_tasks(GetParam(), n, 1234);
  ASSERT_EQ(registered.size(), static_cast<std::size_t>(n));
  std::vector<int> spawn_order(n);
  std::iota(spawn_order.begin(), spawn_order.end(), 0);
  ASSERT_NE(registered, spawn_order) << "the test must register out of spawn order";
  EXPECT_EQ(fired, registered);
}

// Deadlines landing on different levels of the wheel (64 ms, 4 s, 4.4 min, 4.7 h per level), so
// the equal-deadline entries are cascaded down one or more times before they fire.
INSTANTIATE_TEST_SUITE_P(
    AcrossWheelLevels, EqualDeadlines,
    ::testing::Values(Duration(60ms), Duration(300ms), Duration(5s), Duration(100s), Duration(2h),
                      Duration(24h * 30)),
    [](const auto& info) {
      return std::to_string(
                 std::chrono::duration_cast<std::chrono::milliseconds>(info.param).count()) +
             "ms";
    });

Task<void> child_at(int i, int delay_ms, Instant deadline, std::vector<int>* registered,
                    std::vector<int>* fired) {
  if (delay_ms > 0) co_await trpl::sleep(std::chrono::milliseconds(delay_ms));
  registered->push_back(i);
  co_await trpl::sleep_until(deadline);
  fired->push_back(i);
}

TEST(Sleep, JoinChildrenWithEqualDeadlinesResumeInRegistrationOrder) {
  for (Duration after : {Duration(50ms), Duration(10s)}) {
    auto rt = paused_runtime();
    std::vector<int> registered, fired;
    rt.block_on([&]() -> Task<void> {
      const Instant d = Instant::now() + after;
      auto* r = &registered;
      auto* f = &fired;
      // Children start in argument order; the delays make them register in the order 3 6 0 ...
      co_await trpl::join(child_at(0, 5, d, r, f), child_at(1, 9, d, r, f), child_at(2, 7, d, r, f),
                          child_at(3, 0, d, r, f), child_at(4, 8, d, r, f), child_at(5, 2, d, r, f),
                          child_at(6, 1, d, r, f), child_at(7, 5, d, r, f));
    });
    EXPECT_EQ(registered, (std::vector<int>{3, 6, 5, 0, 7, 2, 4, 1}));
    EXPECT_EQ(fired, registered);
  }
}

// ---- far future ----

TEST(Sleep, HugeDurationsSaturateToFarFutureAndNeverFire) {
  auto rt = paused_runtime();
  rt.block_on([]() -> Task<void> {
    EXPECT_TRUE(trpl::sleep(std::chrono::years(1000)).deadline().is_far_future());
    EXPECT_TRUE(trpl::sleep(std::chrono::nanoseconds::max()).deadline().is_far_future());
    EXPECT_TRUE(trpl::sleep(std::chrono::hours::max()).deadline().is_far_future());
    EXPECT_FALSE(trpl::sleep(std::chrono::years(1)).deadline().is_far_future());

    Instant start = Instant::now();
    std::vector<JoinHandle<void>> sleepers;
    sleepers.push_back(
        trpl::spawn_task([]() -> Task<void> { co_await trpl::sleep(std::chrono::years(1000)); }));
    sleepers.push_back(trpl::spawn_task(
        []() -> Task<void> { co_await trpl::sleep(std::chrono::nanoseconds::max()); }));
    sleepers.push_back(trpl::spawn_task(
        []() -> Task<void> { co_await trpl::sleep_until(Instant::far_future()); }));
    co_await trpl::sleep(10s);
    EXPECT_EQ(Instant::now() - start, 10s) << "a far-future timer moved the paused clock";
    for (auto& h : sleepers) {
      EXPECT_FALSE(h.is_finished());
      h.abort();
    }
    for (auto& h : sleepers) {
      auto r = co_await h;
      EXPECT_TRUE(!r.has_value() && r.error().is_cancelled());
    }
  });
}

// Regression (fixed in 2dbbdef): the wheel covers 2^36 ms (~795 days) and clamps a later
// deadline to the end of its range (src/time/wheel.hpp, Wheel::insert); the timer driver fired
// the clamped entry, so a sleep between ~2.2 years and the saturation point (~292 years on
// steady_clock) woke ~795 days in.
TEST(Sleep, SleepLongerThanTheWheelsRangeDoesNotFireEarly) {
  auto rt = paused_runtime();
  auto [slept, deadline_ok] = rt.block_on([]() -> Task<std::pair<Duration, bool>> {
    Instant start = Instant::now();
    trpl::Sleep s = trpl::sleep(std::chrono::years(3));
    bool ok = !s.deadline().is_far_future();
    co_await s;
    co_return std::pair{Instant::now() - start, ok};
  });
  EXPECT_TRUE(deadline_ok);
  EXPECT_GE(slept, std::chrono::years(3))
      << "woke after " << std::chrono::duration_cast<std::chrono::hours>(slept).count() / 24
      << " days";
}

// Regression: timers beyond the wheel's 2^36 ms range used to be clamped and re-armed at the
// back of their slot, behind timers for the same deadline registered later (A at 0 for 3 years,
// B at 1 year, C at 2.5 years fired B, A, C). They now wait in an ordered far list that joins
// the wheel before any later registration for the same tick.
TEST(Sleep, EqualDeadlinesBeyondTheWheelsRangeFireInRegistrationOrder) {
  auto rt = paused_runtime();
  std::vector<char> fired;
  rt.block_on([&]() -> Task<void> {
    const Instant d = Instant::now() + std::chrono::years(3);
    auto at_deadline = [&fired, d](char name) -> Task<void> {
      co_await trpl::sleep_until(d);
      fired.push_back(name);
    };
    auto a = trpl::spawn_task(at_deadline('A'));
    co_await trpl::sleep(std::chrono::years(1));
    auto b = trpl::spawn_task(at_deadline('B'));
    co_await trpl::sleep(std::chrono::months(18));
    auto c = trpl::spawn_task(at_deadline('C'));
    (void)co_await a;
    (void)co_await b;
    (void)co_await c;
    EXPECT_EQ(Instant::now(), d);
  });
  EXPECT_EQ(std::string(fired.begin(), fired.end()), "ABC");
}

// ---- Instant ----

TEST(Instant, AdditionAndSubtractionAreInverse) {
  const Instant i = Instant::now();
  EXPECT_EQ((i + 5ms) - i, Duration(5ms));
  EXPECT_EQ(i - (i + 5ms), -Duration(5ms));
  EXPECT_EQ((i + 5ms) - 5ms, i);
  EXPECT_EQ(i + (-5ms), i - 5ms);
  EXPECT_EQ(i + 0ns, i);
  EXPECT_EQ((i + std::chrono::duration<double, std::milli>(1.5)) - i, Duration(1500us));
  Instant j = i;
  j += 2s;
  j += 500ms;
  EXPECT_EQ(j - i, Duration(2500ms));
  EXPECT_EQ(j.time_point(), i.time_point() + 2500ms);
}

TEST(Instant, ComparisonsFollowTheTimeline) {
  const Instant i = Instant::now();
  EXPECT_LT(i, i + 1ns);
  EXPECT_GT(i + 1ns, i);
  EXPECT_LE(i, i);
  EXPECT_GE(i, i);
  EXPECT_EQ(i, i + 0s);
  EXPECT_NE(i, i + 1ns);
  EXPECT_LT(i - 1ns, i);
  EXPECT_LT(i + std::chrono::years(100), Instant::far_future());
  EXPECT_TRUE(Instant::far_future().is_far_future());
  EXPECT_FALSE(i.is_far_future());
}

TEST(Instant, AdditionSaturatesAtFarFutureInsteadOfOverflowing) {
  const Instant i = Instant::now();
  EXPECT_EQ(Instant::far_future() + 1ns, Instant::far_future());
  EXPECT_EQ(Instant::far_future() + std::chrono::years(1), Instant::far_future());
  EXPECT_EQ(i + std::chrono::nanoseconds::max(), Instant::far_future());
  EXPECT_EQ(i + std::chrono::hours::max(), Instant::far_future());
  EXPECT_EQ(i + std::chrono::years(1000), Instant::far_future());
  EXPECT_EQ(i + std::chrono::duration<double>(1e30), Instant::far_future());
  Instant j = i;
  j += std::chrono::years(1000);
  EXPECT_TRUE(j.is_far_future());
  // Exactly up to the edge, no rounding through the wide intermediate type.
  const Instant zero{};
  EXPECT_EQ((zero + (std::chrono::nanoseconds::max() - 1ns)).time_point().time_since_epoch(),
            std::chrono::nanoseconds::max() - 1ns);
  EXPECT_FALSE((zero + (std::chrono::nanoseconds::max() - 1ns)).is_far_future());
  // Below the edge, going back from far_future is exact too.
  EXPECT_EQ(Instant::far_future() + (-1s), Instant::far_future() - 1s);
  EXPECT_FALSE((Instant::far_future() - 1s).is_far_future());
}

// Regression: Instant + a negative duration too large for int64 nanoseconds (nanoseconds::min(),
// -hours::max()) was undefined behaviour (UBSan: value outside the range of 'long'); it now
// saturates at the clock's minimum, so such a sleep is simply already due.
TEST(Instant, AddingAHugeNegativeDurationDoesNotOverflow) {
  const Instant i = Instant::now();
  EXPECT_LE(i + std::chrono::nanoseconds::min(), i);
  EXPECT_LE(i + (-std::chrono::hours::max()), i);
  auto rt = paused_runtime();
  Duration waited = rt.block_on([]() -> Task<Duration> {
    Instant start = Instant::now();
    co_await trpl::sleep(std::chrono::nanoseconds::min());  // a deadline in the past
    co_await trpl::sleep(-std::chrono::hours::max());
    co_return Instant::now() - start;
  });
  EXPECT_EQ(waited, Duration::zero());
}

TEST(Instant, NowOutsideARuntimeIsTheSteadyClock) {
  auto before = std::chrono::steady_clock::now();
  Instant now = Instant::now();
  auto after = std::chrono::steady_clock::now();
  EXPECT_LE(before, now.time_point());
  EXPECT_LE(now.time_point(), after);
}

TEST(Instant, ElapsedFollowsTheRuntimeClock) {
  auto rt = paused_runtime();
  Duration e = rt.block_on([]() -> Task<Duration> {
    Instant start = Instant::now();
    co_await trpl::sleep(30ms);
    co_return start.elapsed();
  });
  EXPECT_EQ(e, 30ms);
}

// ---- dropped sleeps ----

TEST(Sleep, AbortedSleepLeavesNoTimerBehind) {
  CountedScope scope;
  auto rt = paused_runtime();
  auto [pending_after, slept] = rt.block_on([]() -> Task<std::pair<std::size_t, Duration>> {
    Instant start = Instant::now();
    auto h = trpl::spawn_task([c = Counted(1)]() -> Task<void> {
      co_await trpl::sleep(5ms);
      ADD_FAILURE() << "an aborted sleep fired";
    });
    co_await trpl::sleep(1ms);  // the task is now registered in the wheel
    EXPECT_EQ(pending_timers(), 1u);
    h.abort();
    auto r = co_await h;
    EXPECT_TRUE(!r.has_value() && r.error().is_cancelled());
    std::size_t pending = pending_timers();
    // A timer left behind at 5 ms would fire into a destroyed frame (or move the clock) here.
    co_await trpl::sleep(10ms);
    co_return std::pair{pending, Instant::now() - start};
  });
  EXPECT_EQ(pending_after, 0u);
  EXPECT_EQ(slept, 11ms);
  EXPECT_EQ(Counted::alive(), 0);
}

TEST(Sleep, SleepCancelledByASiblingsExceptionLeavesNoTimerBehind) {
  auto rt = paused_runtime();
  auto [threw, pending_after, slept] =
      rt.block_on([]() -> Task<std::tuple<bool, std::size_t, Duration>> {
        Instant start = Instant::now();
        bool threw = false;
        try {
          // The first child's 5 ms sleep is dropped when the second child throws at 1 ms.
          co_await trpl::join(
              []() -> Task<void> {
                co_await trpl::sleep(5ms);
                ADD_FAILURE() << "a cancelled sleep fired";
              },
              []() -> Task<void> {
                co_await trpl::sleep(1ms);
                throw std::runtime_error("sibling");
              });
        } catch (const std::runtime_error&) {
          threw = true;
        }
        std::size_t pending = pending_timers();
        co_await trpl::sleep(10ms);
        co_return std::tuple{threw, pending, Instant::now() - start};
      });
  EXPECT_TRUE(threw);
  EXPECT_EQ(pending_after, 0u);
  EXPECT_EQ(slept, 11ms);
}

TEST(Sleep, ADroppedLongSleepDoesNotKeepARealTimeRuntimeAlive) {
  for (bool multi : {false, true}) {
    must_finish_within(std::chrono::seconds(20), "a runtime whose only timer was dropped", [&] {
      auto rt = multi ? multi_runtime(2) : current_runtime();
      rt.block_on([]() -> Task<void> {
        auto h = trpl::spawn_task([]() -> Task<void> { co_await trpl::sleep(1h); });
        co_await trpl::sleep(2ms);
        h.abort();
        (void)co_await h;
        co_await trpl::sleep(1ms);  // a second sleep still works
      });
    });
  }
}

TEST(Sleep, AwaitingASleepOutsideATrplTaskThrowsErrorNamingSleep) {
  struct Eager {
    struct promise_type {
      std::exception_ptr error;
      Eager get_return_object() {
        return {std::coroutine_handle<promise_type>::from_promise(*this)};
      }
      std::suspend_never initial_suspend() noexcept { return {}; }
      std::suspend_always final_suspend() noexcept { return {}; }
      void return_void() {}
      void unhandled_exception() { error = std::current_exception(); }
    };
    std::coroutine_handle<promise_type> h;
  };
  auto body = []() -> Eager {
    co_await trpl::sleep(0ms);  // ready at once: fine anywhere
    co_await trpl::sleep(1h);
  };
  Eager e = body();
  std::string msg;
  try {
    if (e.h.promise().error) std::rethrow_exception(e.h.promise().error);
  } catch (const trpl::Error& err) {
    msg = err.what();
  }
  e.h.destroy();
  EXPECT_NE(msg.find("sleep"), std::string::npos) << msg;
}

// ---- real time ----

TEST(Sleep, RealTimeSleepTakesAtLeastItsDuration) {
  for (bool multi : {false, true}) {
    auto rt = multi ? multi_runtime(2) : current_runtime();
    auto [wall, clock] = rt.block_on([]() -> Task<std::pair<Duration, Duration>> {
      auto wall_start = std::chrono::steady_clock::now();
      Instant start = Instant::now();
      co_await trpl::sleep(50ms);
      co_return std::pair{std::chrono::steady_clock::now() - wall_start, Instant::now() - start};
    });
    EXPECT_GE(wall, 50ms) << multi;
    EXPECT_LT(wall, 500ms) << multi;
    EXPECT_GE(clock, 50ms) << multi;
  }
}

TEST(Sleep, ManyConcurrentRealTimeSleepsEachLastAtLeastTheirDuration) {
  auto rt = multi_runtime(2);
  std::vector<Duration> shortfall = rt.block_on([]() -> Task<std::vector<Duration>> {
    std::vector<JoinHandle<Duration>> hs;
    for (int i = 0; i < 100; ++i) {
      hs.push_back(trpl::spawn_task([i]() -> Task<Duration> {
        auto want = std::chrono::milliseconds(1 + i % 20);
        auto start = std::chrono::steady_clock::now();
        co_await trpl::sleep(want);
        co_return (std::chrono::steady_clock::now() - start) - want;
      }));
    }
    std::vector<Duration> out;
    for (auto& h : hs) out.push_back((co_await h).value_or(-1h));
    co_return out;
  });
  for (std::size_t i = 0; i < shortfall.size(); ++i) EXPECT_GE(shortfall[i], Duration::zero()) << i;
}

// Spawns two tasks that keep waking each other through channels, so the run queue is never
// empty, until `stop` is set.
Task<void> spawn_busy_pair(const std::atomic<bool>* stop) {
  auto [a_tx, a_rx] = trpl::channel<int>();
  auto [b_tx, b_rx] = trpl::channel<int>();
  (void)trpl::spawn_task([tx = b_tx, rx = std::move(a_rx), stop]() mutable -> Task<void> {
    while (auto m = co_await rx.recv()) {
      if (stop->load()) co_return;  // drops tx: the other one's recv ends too
      (void)tx.send(*m + 1);
    }
  });
  (void)trpl::spawn_task([tx = a_tx, rx = std::move(b_rx), stop]() mutable -> Task<void> {
    while (auto m = co_await rx.recv()) {
      if (stop->load()) co_return;
      (void)tx.send(*m + 1);
    }
  });
  (void)a_tx.send(0);
  co_return;
}

// Regression (fixed in 2dbbdef): a run loop drove the timers only when its run queue was empty,
// so while tasks kept waking each other no timer fired on a current_thread runtime or on a
// multi_thread runtime with one worker (now every 61 task runs, as tokio's event_interval).
// Paused time is different: there a busy runtime rightly never advances the clock.
TEST(Sleep, TimersFireWhileOtherTasksStayBusy) {
  for (int flavor = 0; flavor < 2; ++flavor) {
    must_finish_within(std::chrono::seconds(10), "a sleep beside always-runnable tasks", [&] {
      std::atomic<bool> stop{false};
      auto rt = flavor == 0 ? current_runtime() : multi_runtime(1);
      Duration slept = rt.block_on([&]() -> Task<Duration> {
        co_await spawn_busy_pair(&stop);
        Instant start = Instant::now();
        co_await trpl::sleep(5ms);
        stop.store(true);  // let the pair end, so that shutdown has nothing busy to stop
        co_return Instant::now() - start;
      });
      EXPECT_GE(slept, 5ms);
    });
  }
}

// ---- stress: timers firing while their sleeps are dropped ----

// Tasks sleep in short loops on a multi_thread runtime while another thread aborts them at
// random moments, so aborts land before, during and after the timers fire. Every frame must be
// destroyed exactly once, every handle must end finished or cancelled, and nothing may hang.
TEST(SleepStress, TimersFiringWhileTheirSleepsAreDroppedByAbortsFromAnotherThread) {
  CountedScope scope;
  const auto until = std::chrono::steady_clock::now() + 1s;
  int rounds = 0;
  std::int64_t cancelled = 0, completed = 0;
  std::mt19937 rng(42);
  while (rounds < 3 || std::chrono::steady_clock::now() < until) {
    ++rounds;
    constexpr int n = 64;
    auto rt = multi_runtime(2);
    std::vector<JoinHandle<int>> handles;
    for (int i = 0; i < n; ++i) {
      const int loops = 1 + static_cast<int>(rng() % 4);
      const int ms = static_cast<int>(rng() % 3);
      handles.push_back(rt.spawn([i, loops, ms, c = Counted(i)]() -> Task<int> {
        Counted local(i);
        for (int k = 0; k < loops; ++k) co_await trpl::sleep(std::chrono::milliseconds(ms));
        co_return c.value;
      }));
    }
    std::thread aborter([&handles, seed = rng()] {
      std::mt19937 r(seed);
      for (int k = 0; k < n; ++k) {
        if (r() % 4 == 0) std::this_thread::sleep_for(std::chrono::microseconds(r() % 700));
        handles[r() % n].abort();
      }
    });
    std::vector<std::expected<int, JoinError>> results =
        rt.block_on([&]() -> Task<std::vector<std::expected<int, JoinError>>> {
          std::vector<std::expected<int, JoinError>> out;
          for (auto& h : handles) out.push_back(co_await h);
          co_return out;
        });
    aborter.join();
    for (int i = 0; i < n; ++i) {
      const auto& r = results[static_cast<std::size_t>(i)];
      if (r.has_value()) {
        EXPECT_EQ(*r, i);
        ++completed;
      } else {
        EXPECT_TRUE(r.error().is_cancelled()) << r.error().message();
        ++cancelled;
      }
    }
    EXPECT_EQ(Counted::alive(), 0) << "every task ended, so every frame must be gone";
    handles.clear();
  }
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
  EXPECT_GT(cancelled, 0);
  EXPECT_GT(completed, 0);
  RecordProperty("rounds", rounds);
}

}  // namespace
