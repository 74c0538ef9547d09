// Destroying a frame that awaits a JoinHandle: while registered, and after the joined task
// finished but before the waiter ran. The waiter is never resumed; the joined task is unharmed.
#include "trpl/join_handle.hpp"

#include <gtest/gtest.h>

#include <chrono>

#include "support/harness.hpp"
#include "trpl/trpl.hpp"

namespace {

using namespace std::chrono_literals;
using trpl::test::paused_runtime;

TEST(JoinHandleCancel, AbortingTheAwaiterWhileRegisteredLeavesTheJoinedTaskRunning) {
  auto rt = paused_runtime();
  bool waiter_resumed = false;
  bool joined_finished = false;
  rt.block_on([&]() -> trpl::Task<> {
    auto joined = trpl::spawn_task([&]() -> trpl::Task<int> {
      co_await trpl::sleep(100ms);
      joined_finished = true;
      co_return 7;
    });
    auto waiter = trpl::spawn_task([&, h = std::move(joined)]() mutable -> trpl::Task<> {
      (void)co_await h;  // registered in the joined task's join slot
      waiter_resumed = true;
    });
    co_await trpl::sleep(10ms);
    waiter.abort();  // destroys the waiting frame (and with it the handle: detached)
    auto w = co_await waiter;
    EXPECT_TRUE(!w && w.error().is_cancelled());
    co_await trpl::sleep(200ms);
  });
  EXPECT_FALSE(waiter_resumed);
  EXPECT_TRUE(joined_finished);
}

TEST(JoinHandleCancel, AbortingTheAwaiterAfterItsWakeWasQueuedNeverResumesIt) {
  auto rt = paused_runtime();
  bool waiter_resumed = false;
  bool joined_done = false;
  rt.block_on([&]() -> trpl::Task<> {
    auto joined = trpl::spawn_task([&]() -> trpl::Task<int> {
      co_await trpl::sleep(50ms);
      joined_done = true;
      co_return 7;
    });
    auto waiter = trpl::spawn_task([&, h = std::move(joined)]() mutable -> trpl::Task<> {
      (void)co_await h;
      waiter_resumed = true;
    });
    // Let both tasks start, then wake at the joined task's deadline with a timer registered after
    // its own: the joined task runs first, completes and queues the waiter's wake; the main
    // future runs next (the waiter is behind it in the queue) and aborts the waiter.
    co_await trpl::sleep(1ms);
    co_await trpl::sleep(49ms);
    EXPECT_TRUE(joined_done);
    EXPECT_TRUE(waiter.is_finished() == false);
    waiter.abort();
    auto w = co_await waiter;
    EXPECT_TRUE(!w && w.error().is_cancelled());
  });
  EXPECT_FALSE(waiter_resumed);
}

}  // namespace
