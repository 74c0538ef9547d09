// Tests for trpl::yield_now (include/trpl/yield_now.hpp): it resumes after the work that was
// already ready — the task's other frames, then the other tasks — never ahead of it; and a
// frame destroyed while its yield is queued is never resumed.
#include "trpl/yield_now.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <string>
#include <vector>

#include "support/counted.hpp"
#include "support/harness.hpp"
#include "trpl/join.hpp"
#include "trpl/runtime.hpp"
#include "trpl/sync/channel.hpp"
#include "trpl/task.hpp"

namespace {

using trpl::Task;
using trpl::test::Counted;
using trpl::test::CountedScope;
using trpl::test::paused_runtime;

TEST(YieldNow, TwoYieldingLoopsInOneJoinAlternate) {
  auto rt = paused_runtime();
  std::string order;
  rt.block_on([&]() -> Task<void> {
    auto loop = [&](char name) -> Task<void> {
      for (int i = 0; i < 3; ++i) {
        order += name;
        co_await trpl::yield_now();
      }
    };
    co_await trpl::join(loop('a'), loop('b'));
  });
  EXPECT_EQ(order, "ababab");
}

TEST(YieldNow, ResumesAfterTheTasksThatWereAlreadyReady) {
  auto rt = paused_runtime();
  std::vector<std::string> order;
  rt.block_on([&]() -> Task<void> {
    auto a = trpl::spawn_task([&]() -> Task<void> {
      order.push_back("a");
      co_return;
    });
    auto b = trpl::spawn_task([&]() -> Task<void> {
      order.push_back("b");
      co_return;
    });
    order.push_back("main before");
    co_await trpl::yield_now();  // a and b were queued first: they run before we resume
    order.push_back("main after");
    (void)co_await a;
    (void)co_await b;
  });
  EXPECT_EQ(order, (std::vector<std::string>{"main before", "a", "b", "main after"}));
}

TEST(YieldNow, AYieldingLoopDoesNotStarveAnotherTaskOnOneWorker) {
  // One worker: the yielder goes behind the ready work every time (never into the LIFO
  // slot), so the other task makes progress while it loops. Both are spawned by a task on
  // that worker, the other one first, so both are queued before the loop starts.
  auto rt = trpl::Runtime::builder().multi_thread().worker_threads(1).build();
  std::atomic<int> other_runs{0};
  std::atomic<bool> stop{false};
  const int seen = rt.block_on([&]() -> Task<int> {
    auto driver = trpl::spawn_task([&]() -> Task<int> {
      auto other = trpl::spawn_task([&]() -> Task<void> {
        while (!stop.load()) {
          other_runs.fetch_add(1);
          co_await trpl::yield_now();
        }
      });
      auto spinner = trpl::spawn_task([&]() -> Task<int> {
        int seen_other = 0;
        for (int i = 0; i < 100'000 && seen_other < 10; ++i) {
          co_await trpl::yield_now();
          seen_other = other_runs.load();
        }
        stop.store(true);
        co_return seen_other;
      });
      const int r = (co_await spinner).value();
      (void)co_await other;
      co_return r;
    });
    co_return (co_await driver).value();
  });
  EXPECT_GE(seen, 10);
}

TEST(YieldNow, TheYieldersOwnWakeeRunsBeforeItResumes) {
  // A task wakes another (the woken one would take the LIFO slot) and then yields: both the
  // woken task and the task queued before run first.
  auto rt = trpl::Runtime::builder().multi_thread().worker_threads(1).build();
  std::mutex mu;
  std::vector<std::string> order;
  auto note = [&](const char* s) {
    std::lock_guard lk(mu);
    order.emplace_back(s);
  };
  rt.block_on([&]() -> Task<void> {
    auto [tx, rx] = trpl::channel<int>();
    auto driver = trpl::spawn_task([&, tx = std::move(tx), rx = std::move(rx)]() mutable -> Task<void> {
      auto receiver = trpl::spawn_task([&, rx = std::move(rx)]() mutable -> Task<void> {
        (void)co_await rx.recv();
        note("woken");
      });
      co_await trpl::yield_now();  // let the receiver start and wait
      auto queued = trpl::spawn_task([&]() -> Task<void> {
        note("queued");
        co_return;
      });
      (void)tx.send(1);
      note("yield");
      co_await trpl::yield_now();
      note("resumed");
      (void)co_await receiver;
      (void)co_await queued;
    });
    (void)co_await driver;
  });
  ASSERT_EQ(order.size(), 4u);
  EXPECT_EQ(order[0], "yield");
  EXPECT_EQ(order[3], "resumed");
}

TEST(YieldNow, AFrameDestroyedWhileItsYieldIsQueuedIsNeverResumed) {
  CountedScope scope;
  auto rt = paused_runtime();
  int resumed = 0;
  rt.block_on([&]() -> Task<void> {
    auto victim = trpl::spawn_task([&, c = Counted(1)]() -> Task<void> {
      for (;;) {
        co_await trpl::yield_now();
        ++resumed;
      }
    });
    co_await trpl::yield_now();  // the victim runs and yields: its wake is queued
    const int before = resumed;
    victim.abort();              // destroyed while queued
    auto r = co_await victim;
    EXPECT_TRUE(!r && r.error().is_cancelled());
    EXPECT_LE(resumed - before, 1) << "resumed after the abort";
  });
  EXPECT_EQ(Counted::alive(), 0) << "the aborted frame's captures are destroyed";
}

TEST(YieldNow, AFrameWhoseJoinSiblingThrowsWhileItsYieldIsQueuedIsDestroyedSafely) {
  CountedScope scope;
  auto rt = paused_runtime();
  EXPECT_THROW(rt.block_on([&]() -> Task<void> {
    auto yielder = [c = Counted(2)]() -> Task<void> {
      for (;;) co_await trpl::yield_now();
    };
    auto thrower = []() -> Task<void> {
      co_await trpl::yield_now();
      throw std::runtime_error("sibling");
    };
    co_await trpl::join(yielder, thrower);
  }),
               std::runtime_error);
  EXPECT_EQ(Counted::alive(), 0) << "the yielding frame and its lambda are destroyed";
}

TEST(YieldNow, OutsideATaskItIsATrplError) {
  auto y = trpl::yield_now();
  EXPECT_FALSE(y.await_ready());
  try {
    y.await_suspend(std::noop_coroutine());
    ADD_FAILURE() << "no error";
  } catch (const trpl::Error& e) {
    EXPECT_NE(std::string(e.what()).find("yield_now"), std::string::npos) << e.what();
  }
}

TEST(YieldNow, ShutdownCancelsTasksWhoseYieldsAreQueued) {
  CountedScope scope;
  {
    auto rt = trpl::Runtime::builder().multi_thread().worker_threads(2).build();
    rt.block_on([&]() -> Task<void> {
      for (int i = 0; i < 8; ++i) {
        (void)trpl::spawn_task([c = Counted(i)]() -> Task<void> {
          for (;;) co_await trpl::yield_now();
        });
      }
      co_await trpl::yield_now();
    });
  }
  EXPECT_EQ(Counted::alive(), 0);
}

}  // namespace
