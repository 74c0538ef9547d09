// Tests for the runtime (include/trpl/runtime.hpp): block_on/run, spawn_task and JoinHandle,
// abort and shutdown (cancel = destroy), misuse errors, and both scheduler flavors.
#include "trpl/runtime.hpp"

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
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <utility>
#include <vector>

#include "support/counted.hpp"
#include "support/harness.hpp"
#include "trpl/error.hpp"
#include "trpl/join_handle.hpp"
#include "trpl/sync/channel.hpp"
#include "trpl/task.hpp"
#include "trpl/time.hpp"

namespace {

using trpl::test::paused_runtime;
using trpl::test::must_finish_within;

using namespace std::chrono_literals;
using trpl::JoinError;
using trpl::JoinHandle;
using trpl::Runtime;
using trpl::Task;
using trpl::test::Counted;
using trpl::test::CountedScope;

template <class T>
using Joined = std::expected<T, JoinError>;

Runtime current_runtime() { return Runtime::builder().current_thread().build(); }
Runtime multi_runtime(std::size_t workers) {
  return Runtime::builder().multi_thread().worker_threads(workers).build();
}

struct Boom : std::runtime_error {
  explicit Boom(int c) : std::runtime_error("boom " + std::to_string(c)), code(c) {}
  int code;
};

// The message of the trpl::Error `f` throws, or "" if it throws none.
template <class F>
std::string error_message(F&& f) {
  try {
    f();
  } catch (const trpl::Error& e) {
    return e.what();
  }
  return "";
}

// ---- block_on / run ----

TEST(Runtime, RunReturnsTheFuturesValue) {
  EXPECT_EQ(trpl::run([]() -> Task<int> { co_return 42; }), 42);
  EXPECT_EQ(trpl::run([]() -> Task<std::string> { co_return "hi"; }), "hi");
  bool ran = false;
  trpl::run([&]() -> Task<void> {
    ran = true;
    co_return;
  });
  EXPECT_TRUE(ran);
}

Task<int> plus_one(int v) { co_return v + 1; }

TEST(Runtime, BlockOnAcceptsATaskOrACallableOnEitherFlavor) {
  auto cur = current_runtime();
  EXPECT_EQ(cur.block_on(plus_one(1)), 2);
  EXPECT_EQ(cur.block_on([]() { return plus_one(2); }), 3);
  auto multi = multi_runtime(2);
  EXPECT_EQ(multi.block_on(plus_one(3)), 4);
  EXPECT_EQ(multi.block_on([]() -> Task<int> { co_return co_await plus_one(4); }), 5);
}

TEST(Runtime, BlockOnOwnsAnRvalueCallableAndBorrowsAnLvalueOne) {
  CountedScope scope;
  auto rt = paused_runtime();
  std::int64_t alive_inside = -1;
  auto owned = [c = Counted(1), &alive_inside]() -> Task<void> {
    alive_inside = Counted::alive();
    co_return;
  };
  rt.block_on(std::move(owned));
  EXPECT_EQ(alive_inside, 2) << "the moved-from original and the copy block_on owns";
  EXPECT_EQ(Counted::copies(), 0);
  EXPECT_EQ(Counted::alive(), 1) << "block_on destroyed the callable it owned before returning";

  Counted::reset();
  auto borrowed = [c = Counted(2)]() -> Task<int> { co_return c.value; };
  EXPECT_EQ(rt.block_on(borrowed), 2);
  EXPECT_EQ(Counted::copies(), 0) << "an lvalue callable is borrowed, not copied";
  EXPECT_EQ(Counted::moves(), 0);
  EXPECT_EQ(Counted::alive(), 1);
}

TEST(Runtime, ExceptionEscapingTheMainFutureLeavesBlockOnAsTheSameType) {
  auto rt = paused_runtime();
  try {
    rt.block_on([]() -> Task<int> {
      co_await trpl::sleep(1ms);
      throw Boom(7);
    });
    ADD_FAILURE() << "block_on did not throw";
  } catch (const Boom& b) {
    EXPECT_EQ(b.code, 7);
    EXPECT_STREQ(b.what(), "boom 7");
  }
  EXPECT_THROW(trpl::run([]() -> Task<void> {
                 throw std::out_of_range("main");
                 co_return;
               }),
               std::out_of_range);
  // The runtime stays usable after its main future threw.
  EXPECT_EQ(rt.block_on(plus_one(0)), 1);
}

TEST(Runtime, ARuntimeCanBlockOnTwice) {
  for (bool multi : {false, true}) {
    auto rt = multi ? multi_runtime(2) : current_runtime();
    EXPECT_EQ(rt.block_on(plus_one(1)), 2);
    EXPECT_EQ(rt.block_on([]() -> Task<int> {
      co_await trpl::sleep(1ms);
      co_return 10;
    }),
              10);
  }
}

TEST(Runtime, ATaskSpawnedInOneBlockOnCanBeAwaitedInTheNext) {
  for (bool multi : {false, true}) {
    auto rt = multi ? multi_runtime(2) : paused_runtime();
    JoinHandle<int> h = rt.block_on([]() -> Task<JoinHandle<int>> {
      co_return trpl::spawn_task([]() -> Task<int> {
        co_await trpl::sleep(5ms);
        co_return 5;
      });
    });
    Joined<int> r = rt.block_on([&]() -> Task<Joined<int>> { co_return co_await h; });
    ASSERT_TRUE(r.has_value()) << multi;
    EXPECT_EQ(*r, 5);
  }
}

// ---- spawn_task and JoinHandle ----

TEST(Runtime, SpawnedTaskValueArrivesThroughItsJoinHandle) {
  auto rt = paused_runtime();
  Joined<int> r = rt.block_on([]() -> Task<Joined<int>> {
    auto h = trpl::spawn_task([]() -> Task<int> {
      co_await trpl::sleep(10ms);
      co_return 99;
    });
    EXPECT_TRUE(h.valid());
    EXPECT_NE(h.id(), 0u);
    co_return co_await h;
  });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 99);
}

TEST(Runtime, AwaitingAnAlreadyFinishedTaskYieldsItsValue) {
  auto rt = paused_runtime();
  Joined<void> r = rt.block_on([]() -> Task<Joined<void>> {
    auto h = trpl::spawn_task([]() -> Task<void> { co_return; });
    co_await trpl::sleep(5ms);  // the task runs and finishes meanwhile
    EXPECT_TRUE(h.is_finished());
    co_return co_await h;
  });
  EXPECT_TRUE(r.has_value());
}

TEST(Runtime, ThrowingTaskGivesAPanicJoinErrorCarryingItsException) {
  auto rt = paused_runtime();
  Joined<int> r = rt.block_on([]() -> Task<Joined<int>> {
    auto h = trpl::spawn_task(
        []() -> Task<int> {
          co_await trpl::sleep(1ms);
          throw Boom(3);
        },
        "thrower");
    co_return co_await h;
  });
  ASSERT_FALSE(r.has_value());
  const JoinError& e = r.error();
  EXPECT_TRUE(e.is_panic());
  EXPECT_FALSE(e.is_cancelled());
  ASSERT_TRUE(e.exception());
  try {
    e.rethrow();
    ADD_FAILURE() << "rethrow did not throw";
  } catch (const Boom& b) {
    EXPECT_EQ(b.code, 3);
  }
  EXPECT_NE(e.message().find("boom 3"), std::string::npos) << e.message();
  EXPECT_NE(e.message().find("thrower"), std::string::npos) << e.message();
}

TEST(Runtime, ASpawnedTaskFailingDoesNotDisturbTheOthers) {
  auto rt = multi_runtime(2);
  auto [bad, good] = rt.block_on([]() -> Task<std::pair<Joined<int>, Joined<int>>> {
    auto a = trpl::spawn_task([]() -> Task<int> {
      throw Boom(1);
      co_return 0;
    });
    auto b = trpl::spawn_task([]() -> Task<int> {
      co_await trpl::sleep(2ms);
      co_return 2;
    });
    auto ra = co_await a;
    auto rb = co_await b;
    co_return std::pair{std::move(ra), std::move(rb)};
  });
  EXPECT_TRUE(!bad.has_value() && bad.error().is_panic());
  ASSERT_TRUE(good.has_value());
  EXPECT_EQ(*good, 2);
}

TEST(Runtime, TaskSpawnedFromASpawnedTaskRuns) {
  for (bool multi : {false, true}) {
    auto rt = multi ? multi_runtime(2) : paused_runtime();
    Joined<int> r = rt.block_on([]() -> Task<Joined<int>> {
      auto outer = trpl::spawn_task([]() -> Task<int> {
        auto inner = trpl::spawn_task([]() -> Task<int> {
          co_await trpl::sleep(1ms);
          co_return 20;
        });
        auto v = co_await inner;
        co_return v ? *v + 1 : -1;
      });
      co_return co_await outer;
    });
    ASSERT_TRUE(r.has_value()) << multi;
    EXPECT_EQ(*r, 21) << multi;
  }
}

TEST(Runtime, SpawnTaskCopiesAnLvalueCallableAndDestroysItsCopyWhenTheTaskEnds) {
  CountedScope scope;
  auto rt = paused_runtime();
  auto work = [c = Counted(8)]() -> Task<int> {
    co_await trpl::sleep(1ms);
    co_return c.value;
  };
  std::int64_t alive_after = -1;
  Joined<int> r = rt.block_on([&]() -> Task<Joined<int>> {
    auto h = trpl::spawn_task(work);  // lvalue: copied into the task
    auto v = co_await h;
    alive_after = Counted::alive();
    co_return v;
  });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 8);
  EXPECT_GE(Counted::copies(), 1);
  EXPECT_EQ(alive_after, 1) << "only the caller's original is left once the task finished";
}

TEST(Runtime, SpawnedRvalueCallableIsDestroyedWhenItsTaskFinishesNotWhenTheHandleDies) {
  CountedScope scope;
  auto rt = paused_runtime();
  std::int64_t alive_after = -1;
  rt.block_on([&]() -> Task<void> {
    auto h = trpl::spawn_task([c = Counted(1)]() -> Task<int> { co_return c.value; });
    co_await trpl::sleep(1ms);
    EXPECT_TRUE(h.is_finished());
    alive_after = Counted::alive();  // the handle is still alive here
  });
  EXPECT_EQ(alive_after, 0);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

// ---- abort ----

// Holds a Counted in its own frame and in a child frame, then sleeps for an hour.
Task<void> sleeper_with_counted(std::atomic<bool>* started, bool* finished) {
  Counted outer(1);
  co_await [](std::atomic<bool>* started) -> Task<void> {
    Counted inner(2);
    started->store(true);
    co_await trpl::sleep(1h);
  }(started);
  *finished = true;
}

TEST(Runtime, AbortCancelsTheTaskAndRunsItsFrameDestructors) {
  CountedScope scope;
  auto rt = paused_runtime();
  std::atomic<bool> started{false};
  bool finished = false;
  std::int64_t alive_while_sleeping = -1;
  Joined<void> r = rt.block_on([&]() -> Task<Joined<void>> {
    auto h = trpl::spawn_task(sleeper_with_counted(&started, &finished));
    co_await trpl::sleep(1ms);
    alive_while_sleeping = Counted::alive();
    EXPECT_FALSE(h.is_finished());
    h.abort();
    co_return co_await h;
  });
  EXPECT_TRUE(started.load());
  EXPECT_EQ(alive_while_sleeping, 2);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().is_cancelled());
  EXPECT_FALSE(r.error().is_panic());
  EXPECT_FALSE(r.error().exception());
  EXPECT_NE(r.error().message().find("cancelled"), std::string::npos) << r.error().message();
  EXPECT_FALSE(finished);
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::destructions.load(), 2);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

TEST(Runtime, AbortBeforeTheTaskFirstRunsMeansItNeverRuns) {
  CountedScope scope;
  auto rt = paused_runtime();
  bool ran = false;
  Joined<int> r = rt.block_on([&]() -> Task<Joined<int>> {
    auto h = trpl::spawn_task([c = Counted(1), &ran]() -> Task<int> {
      ran = true;
      co_return c.value;
    });
    h.abort();  // current_thread: the task has not had a turn yet
    co_return co_await h;
  });
  EXPECT_FALSE(ran);
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().is_cancelled());
  EXPECT_EQ(Counted::alive(), 0);
}

TEST(Runtime, AbortAfterTheTaskFinishedChangesNothing) {
  auto rt = paused_runtime();
  Joined<int> r = rt.block_on([&]() -> Task<Joined<int>> {
    auto h = trpl::spawn_task([]() -> Task<int> { co_return 6; });
    co_await trpl::sleep(1ms);
    EXPECT_TRUE(h.is_finished());
    h.abort();
    h.abort();
    co_return co_await h;
  });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 6);
}

TEST(Runtime, AbortFromAnotherThreadWhileTheTaskSleeps) {
  for (bool multi : {false, true}) {
    CountedScope scope;
    auto rt = multi ? multi_runtime(2) : current_runtime();  // real time: nothing fires
    std::atomic<bool> started{false};
    bool finished = false;
    Joined<void> r = rt.block_on([&]() -> Task<Joined<void>> {
      auto h = trpl::spawn_task(sleeper_with_counted(&started, &finished));
      std::thread aborter([&] {
        while (!started.load()) std::this_thread::yield();
        std::this_thread::sleep_for(2ms);  // let it reach its sleep
        h.abort();
      });
      auto v = co_await h;  // woken by the cancellation that the other thread asked for
      aborter.join();
      co_return v;
    });
    ASSERT_FALSE(r.has_value()) << multi;
    EXPECT_TRUE(r.error().is_cancelled()) << multi;
    EXPECT_FALSE(finished);
    EXPECT_EQ(Counted::alive(), 0) << multi;
    EXPECT_EQ(Counted::double_destructions.load(), 0);
  }
}

TEST(Runtime, AbortOfARunningTaskTakesEffectAtItsNextSuspension) {
  CountedScope scope;
  auto rt = multi_runtime(2);
  std::atomic<bool> running{false}, aborted{false};
  std::atomic<bool> passed_the_sleep{false};
  Joined<void> r = rt.block_on([&]() -> Task<Joined<void>> {
    auto h = trpl::spawn_task([&, c = Counted(1)]() -> Task<void> {
      running.store(true);
      while (!aborted.load()) std::this_thread::yield();  // running on a worker while aborted
      co_await trpl::sleep(1ms);  // the next suspension: the frame is destroyed here
      passed_the_sleep.store(true);
    });
    while (!running.load()) std::this_thread::yield();  // block_on's thread is not a worker
    h.abort();
    aborted.store(true);
    co_return co_await h;
  });
  ASSERT_FALSE(r.has_value());
  EXPECT_TRUE(r.error().is_cancelled());
  EXPECT_FALSE(passed_the_sleep.load());
  EXPECT_EQ(Counted::alive(), 0);
}

TEST(Runtime, AbortOfATaskWaitingOnAChannelDropsItsMovedInSender) {
  CountedScope scope;
  auto rt = paused_runtime();
  std::optional<int> end;
  rt.block_on([&]() -> Task<void> {
    auto [tx, rx] = trpl::channel<int>();
    auto [tx2, rx2] = trpl::channel<int>();
    // The task owns `tx` (moved in) and blocks on rx2 forever; aborting it must drop tx, so
    // our recv on rx ends.
    auto h =
        trpl::spawn_task([tx = std::move(tx), rx2 = std::move(rx2),
                          c = Counted(1)]() mutable -> Task<void> { (void)co_await rx2.recv(); });
    co_await trpl::sleep(1ms);
    h.abort();
    end = co_await rx.recv();
    EXPECT_TRUE(h.is_finished());
    (void)tx2;
  });
  EXPECT_EQ(end, std::nullopt);
  EXPECT_EQ(Counted::alive(), 0);
}

// ---- is_finished and detaching ----

TEST(Runtime, IsFinishedBecomesTrueExactlyWhenTheTaskEnds) {
  auto rt = paused_runtime();
  rt.block_on([]() -> Task<void> {
    JoinHandle<int> empty;
    EXPECT_FALSE(empty.is_finished());
    EXPECT_FALSE(empty.valid());
    auto h = trpl::spawn_task([]() -> Task<int> {
      co_await trpl::sleep(10ms);
      co_return 1;
    });
    EXPECT_FALSE(h.is_finished());
    co_await trpl::sleep(5ms);
    EXPECT_FALSE(h.is_finished());
    co_await trpl::sleep(10ms);
    EXPECT_TRUE(h.is_finished());
    auto r = co_await h;
    EXPECT_TRUE(r.has_value());
    EXPECT_TRUE(h.is_finished());
  });
}

TEST(Runtime, DroppingTheJoinHandleDetachesTheTaskWhichStillRunsToCompletion) {
  for (bool multi : {false, true}) {
    CountedScope scope;
    auto rt = multi ? multi_runtime(2) : paused_runtime();
    std::optional<int> got = rt.block_on([]() -> Task<std::optional<int>> {
      auto [tx, rx] = trpl::channel<int>();
      {
        auto h = trpl::spawn_task([tx = std::move(tx), c = Counted(1)]() -> Task<void> {
          co_await trpl::sleep(5ms);
          (void)tx.send(77);
        });
      }  // handle dropped: the task is detached, not cancelled
      co_return co_await rx.recv();
    });
    EXPECT_EQ(got, 77) << multi;
    // The task finished (its Sender was dropped, or recv would not have ended) — its frame is
    // gone by the time the runtime is.
    rt = Runtime::builder().current_thread().build();
    EXPECT_EQ(Counted::alive(), 0);
  }
}

// ---- shutdown ----

// Spawns `n` tasks blocked on an hour-long sleep and `n` blocked on a channel whose Sender
// outlives the runtime; each holds a Counted in its frame.
Task<void> spawn_blocked(int n, trpl::Receiver<int>* receivers, std::atomic<int>* parked) {
  for (int i = 0; i < n; ++i) {
    (void)trpl::spawn_task([c = Counted(i), parked]() -> Task<void> {
      parked->fetch_add(1);
      co_await trpl::sleep(1h);
      ADD_FAILURE() << "a sleep of an hour fired";
    });
    (void)trpl::spawn_task(
        [c = Counted(i), rx = std::move(receivers[i]), parked]() mutable -> Task<void> {
          parked->fetch_add(1);
          auto m = co_await rx.recv();
          ADD_FAILURE() << "recv returned " << m.has_value();
        });
  }
  co_return;
}

TEST(Runtime, ShutdownCancelsBlockedTasksAndRunsTheirDestructorsBeforeRunReturns) {
  CountedScope scope;
  constexpr int n = 20;
  std::vector<trpl::Sender<int>> senders;
  std::vector<trpl::Receiver<int>> receivers;
  for (int i = 0; i < n; ++i) {
    auto [tx, rx] = trpl::channel<int>();
    senders.push_back(std::move(tx));
    receivers.push_back(std::move(rx));
  }
  std::atomic<int> parked{0};
  trpl::run([&]() -> Task<void> {
    co_await spawn_blocked(n, receivers.data(), &parked);
    while (parked.load() < 2 * n) co_await trpl::sleep(1ms);
  });
  EXPECT_EQ(parked.load(), 2 * n);
  EXPECT_EQ(Counted::alive(), 0) << "trpl::run returned with spawned frames still alive";
  EXPECT_EQ(Counted::double_destructions.load(), 0);
  for (auto& tx : senders) EXPECT_TRUE(tx.is_closed()) << "the receiving frame was destroyed";
}

TEST(Runtime, DestroyingARuntimeCancelsItsTasksOnEitherFlavor) {
  for (int flavor = 0; flavor < 3; ++flavor) {
    CountedScope scope;
    constexpr int n = 10;
    std::vector<trpl::Sender<int>> senders;
    std::vector<trpl::Receiver<int>> receivers;
    for (int i = 0; i < n; ++i) {
      auto [tx, rx] = trpl::channel<int>();
      senders.push_back(std::move(tx));
      receivers.push_back(std::move(rx));
    }
    std::vector<JoinHandle<void>> handles;
    std::atomic<int> parked{0};
    {
      auto rt = flavor == 0 ? paused_runtime() : flavor == 1 ? current_runtime() : multi_runtime(2);
      rt.block_on([&]() -> Task<void> {
        co_await spawn_blocked(n, receivers.data(), &parked);
        handles.push_back(trpl::spawn_task([c = Counted(-1)]() -> Task<void> {
          for (;;) co_await trpl::sleep(1ms);  // busy with timers until shutdown
        }));
        while (parked.load() < 2 * n) co_await trpl::sleep(1ms);
      });
      EXPECT_GT(Counted::alive(), 0)
          << "spawned tasks live on after block_on (flavor " << flavor << ")";
    }
    EXPECT_EQ(Counted::alive(), 0) << "flavor " << flavor;
    EXPECT_EQ(Counted::double_destructions.load(), 0);
    ASSERT_EQ(handles.size(), 1u);
    EXPECT_TRUE(handles[0].is_finished()) << "a cancelled task counts as finished";
    // The handle outlives its runtime and still tells why there is no value.
    auto other = paused_runtime();
    auto r = other.block_on([&]() -> Task<Joined<void>> { co_return co_await handles[0]; });
    EXPECT_TRUE(!r.has_value() && r.error().is_cancelled()) << "flavor " << flavor;
  }
}

TEST(Runtime, ATaskSpawnedButNeverRunIsCancelledByShutdown) {
  CountedScope scope;
  bool ran = false;
  std::optional<JoinHandle<int>> h;
  {
    auto rt = current_runtime();  // runs tasks only inside block_on, and there is none
    h.emplace(rt.spawn([c = Counted(1), &ran]() -> Task<int> {
      ran = true;
      co_return c.value;
    }));
    EXPECT_FALSE(h->is_finished());
  }
  EXPECT_FALSE(ran);
  EXPECT_TRUE(h->is_finished());
  EXPECT_EQ(Counted::alive(), 0);
  auto other = paused_runtime();
  auto r = other.block_on([&]() -> Task<Joined<int>> { co_return co_await *h; });
  EXPECT_TRUE(!r.has_value() && r.error().is_cancelled());
}

TEST(Runtime, TasksStopRunningWhenRunReturns) {
  // The book's listing 17-6: the spawned loop stops when main ends.
  std::atomic<int> ticks{0};
  trpl::run([&]() -> Task<void> {
    (void)trpl::spawn_task([&]() -> Task<void> {
      for (;;) {
        ticks.fetch_add(1);
        co_await trpl::sleep(1ms);
      }
    });
    co_await trpl::sleep(20ms);
  });
  int at_return = ticks.load();
  EXPECT_GT(at_return, 0);
  std::this_thread::sleep_for(30ms);
  EXPECT_EQ(ticks.load(), at_return) << "a task ran after trpl::run returned";
}


// Two tasks that keep waking each other (a message bounced forever between two channels), so
// the run queue is never empty; `progress` gets one message once 1,000 bounces happened.
Task<void> spawn_ping_pong(trpl::Sender<int> progress) {
  auto [a_tx, a_rx] = trpl::channel<int>();
  auto [b_tx, b_rx] = trpl::channel<int>();
  (void)trpl::spawn_task([tx = b_tx, rx = std::move(a_rx), progress = std::move(progress),
                          c = Counted(1)]() mutable -> Task<void> {
    while (auto m = co_await rx.recv()) {
      if (*m == 1000) (void)progress.send(*m);
      (void)tx.send(*m + 1);
    }
  });
  (void)trpl::spawn_task([tx = a_tx, rx = std::move(b_rx), c = Counted(2)]() mutable -> Task<void> {
    while (auto m = co_await rx.recv()) (void)tx.send(*m + 1);
  });
  (void)a_tx.send(0);
  co_return;
}

// Destroys `rt` while two of its tasks keep waking each other.
void shut_down_during_ping_pong(Runtime rt) {
  rt.block_on([]() -> Task<void> {
    auto [tx, rx] = trpl::channel<int>();
    co_await spawn_ping_pong(std::move(tx));
    EXPECT_EQ(co_await rx.recv(), 1000);
  });
}

// Regression (fixed in 2dbbdef): workers left their loop only on an empty run queue, so
// shutdown waited forever for workers running tasks that keep waking each other.
TEST(Runtime, ShutdownCompletesWhileTasksKeepWakingEachOther) {
  for (std::size_t workers : {1u, 2u}) {
    CountedScope scope;
    must_finish_within(std::chrono::seconds(10),
                       "destroying a multi_thread runtime whose tasks ping-pong",
                       [&] { shut_down_during_ping_pong(multi_runtime(workers)); });
    EXPECT_EQ(Counted::alive(), 0) << workers;
  }
}

TEST(Runtime, ShutdownOfTheCurrentThreadFlavorCompletesWhileTasksKeepWakingEachOther) {
  CountedScope scope;
  must_finish_within(std::chrono::seconds(10),
                     "destroying a current_thread runtime whose tasks ping-pong",
                     [] { shut_down_during_ping_pong(current_runtime()); });
  EXPECT_EQ(Counted::alive(), 0);
}

// ---- misuse errors ----

TEST(Runtime, SpawnTaskOutsideARuntimeThrowsErrorNamingSpawnTask) {
  CountedScope scope;
  std::string msg = error_message(
      [] { (void)trpl::spawn_task([c = Counted(1)]() -> Task<void> { co_return; }); });
  EXPECT_NE(msg.find("spawn_task"), std::string::npos) << msg;
  EXPECT_NE(msg.find("Runtime::spawn"), std::string::npos) << "the fix is named: " << msg;
  EXPECT_EQ(Counted::alive(), 0);
}

TEST(Runtime, SpawnTaskFromAPlainThreadThrowsEvenWhileARuntimeRuns) {
  auto rt = multi_runtime(1);
  std::string msg = rt.block_on([]() -> Task<std::string> {
    std::string m;
    std::thread([&] {
      m = error_message([] { (void)trpl::spawn_task([]() -> Task<void> { co_return; }); });
    }).join();
    co_return m;
  });
  EXPECT_NE(msg.find("spawn_task"), std::string::npos) << msg;
}

TEST(Runtime, BlockOnInsideARuntimeThrowsErrorNamingBlockOn) {
  for (bool multi : {false, true}) {
    auto rt = multi ? multi_runtime(1) : current_runtime();
    auto [inner_msg, run_msg, spawned_msg] =
        rt.block_on([&]() -> Task<std::tuple<std::string, std::string, std::string>> {
          std::string a = error_message([&] { rt.block_on(plus_one(1)); });
          std::string b = error_message([] { trpl::run(plus_one(1)); });
          auto h = trpl::spawn_task([&]() -> Task<std::string> {
            co_return error_message([&] { rt.block_on(plus_one(1)); });
          });
          auto c = co_await h;
          co_return std::tuple{a, b, c.value_or("(task failed)")};
        });
    for (const std::string& msg : {inner_msg, run_msg, spawned_msg}) {
      EXPECT_NE(msg.find("block_on"), std::string::npos) << multi << ": " << msg;
    }
    EXPECT_EQ(rt.block_on(plus_one(1)), 2) << "the runtime still works afterwards";
  }
}

TEST(Runtime, AwaitingAConsumedJoinHandleThrowsErrorNamingJoinHandle) {
  auto rt = paused_runtime();
  auto [consumed, moved,
        second] = rt.block_on([]() -> Task<std::tuple<std::string, std::string, bool>> {
    auto h = trpl::spawn_task([]() -> Task<int> { co_return 1; });
    auto first = co_await h;
    std::string consumed_msg, moved_msg;
    try {
      (void)co_await h;
    } catch (const trpl::Error& e) {
      consumed_msg = e.what();
    }
    auto g = trpl::spawn_task([]() -> Task<int> { co_return 2; });
    auto g2 = std::move(g);
    try {
      (void)co_await g;  // NOLINT(bugprone-use-after-move): the misuse under test
    } catch (const trpl::Error& e) {
      moved_msg = e.what();
    }
    auto r2 = co_await g2;
    co_return std::tuple{consumed_msg, moved_msg, first.has_value() && r2.has_value() && *r2 == 2};
  });
  EXPECT_NE(consumed.find("JoinHandle"), std::string::npos) << consumed;
  EXPECT_NE(consumed.find("already taken"), std::string::npos) << consumed;
  EXPECT_NE(moved.find("JoinHandle"), std::string::npos) << moved;
  EXPECT_TRUE(second);
}

TEST(Runtime, WorkerThreadsZeroThrowsErrorNamingIt) {
  std::string msg = error_message([] { (void)Runtime::builder().worker_threads(0).build(); });
  EXPECT_NE(msg.find("worker_threads"), std::string::npos) << msg;
}

TEST(Runtime, StartPausedWithMultiThreadThrowsErrorNamingIt) {
  std::string explicit_msg =
      error_message([] { (void)Runtime::builder().multi_thread().start_paused(true).build(); });
  EXPECT_NE(explicit_msg.find("start_paused"), std::string::npos) << explicit_msg;
  std::string default_msg =
      error_message([] { (void)Runtime::builder().start_paused(true).build(); });
  EXPECT_NE(default_msg.find("start_paused"), std::string::npos)
      << "multi_thread is the default flavor: " << default_msg;
  EXPECT_EQ(
      error_message([] { (void)Runtime::builder().current_thread().start_paused(true).build(); }),
      "");
}

// ---- both flavors under load ----

struct Flavor {
  const char* name;
  bool multi;
  std::size_t workers;
};

class RuntimeFlavor : public ::testing::TestWithParam<Flavor> {
 protected:
  Runtime make() const {
    return GetParam().multi ? multi_runtime(GetParam().workers) : current_runtime();
  }
};

TEST_P(RuntimeFlavor, TenThousandSpawnedTasksAllRunAndTheirResultsSum) {
  constexpr int n = 10'000;
  auto rt = make();
  std::int64_t sum = rt.block_on([]() -> Task<std::int64_t> {
    std::vector<JoinHandle<std::int64_t>> handles;
    handles.reserve(n);
    for (int i = 0; i < n; ++i) {
      handles.push_back(trpl::spawn_task([i]() -> Task<std::int64_t> { co_return i; }));
    }
    std::int64_t s = 0;
    for (auto& h : handles) {
      auto r = co_await h;
      EXPECT_TRUE(r.has_value());
      s += r.value_or(0);
    }
    co_return s;
  });
  EXPECT_EQ(sum, std::int64_t{n} * (n - 1) / 2);
}

TEST_P(RuntimeFlavor, SpawnFromAPlainThreadViaRuntimeSpawn) {
  auto rt = make();
  auto ch = trpl::channel<int>();
  trpl::Receiver<int>& rx = ch.second;
  // The plain thread spawns while block_on waits (current_thread: the block_on thread runs it).
  std::optional<int> got =
      rt.block_on([&, tx = std::move(ch.first)]() mutable -> Task<std::optional<int>> {
        std::thread t([&rt, tx = std::move(tx)]() mutable {
          auto h = rt.spawn([tx = std::move(tx)]() -> Task<void> {
            (void)tx.send(5);
            co_return;
          });
          (void)h;  // dropped: detached
        });
        auto v = co_await rx.recv();
        t.join();
        co_return v;
      });
  EXPECT_EQ(got, 5);

  // Spawned from a plain thread while no block_on runs: awaited by a later block_on.
  std::optional<JoinHandle<int>> handle;
  std::thread([&] { handle.emplace(rt.spawn([]() -> Task<int> { co_return 11; })); }).join();
  Joined<int> r = rt.block_on([&]() -> Task<Joined<int>> { co_return co_await *handle; });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 11);
}

INSTANTIATE_TEST_SUITE_P(Flavors, RuntimeFlavor,
                         ::testing::Values(Flavor{"current_thread", false, 0},
                                           Flavor{"multi_thread_1", true, 1},
                                           Flavor{"multi_thread_2", true, 2}),
                         [](const auto& info) { return std::string(info.param.name); });

}  // namespace
