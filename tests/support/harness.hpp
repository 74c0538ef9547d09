// Shared test scaffolding: a paused runtime, virtual-time helpers, and watchdogs that turn a
// hang into a clear failure instead of a CTest timeout.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>
#include <utility>

#include "trpl/runtime.hpp"
#include "trpl/time.hpp"

namespace trpl::test {

// A current_thread runtime with virtual time: sleeps jump the clock, runs are deterministic.
inline trpl::Runtime paused_runtime() {
  return trpl::Runtime::builder().current_thread().start_paused(true).build();
}

// Milliseconds since `start` on the runtime's clock (virtual inside a paused runtime).
inline long long ms_since(trpl::Instant start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(trpl::Instant::now() - start)
      .count();
}

// Runs `op` as a task spawned on a paused runtime and reports whether it finished within `limit`
// of virtual time; a task still running then is aborted, so a hang (a join that never ends)
// fails a check instead of stalling the test binary.
template <class F>
bool finishes_within(std::chrono::milliseconds limit, F op) {
  auto rt = paused_runtime();
  return rt.block_on([&]() -> trpl::Task<bool> {
    auto handle = trpl::spawn_task(std::move(op));
    co_await trpl::sleep(limit);
    const bool finished = handle.is_finished();
    handle.abort();
    auto result = co_await handle;
    if (finished && !result) ADD_FAILURE() << result.error().message();
    co_return finished;
  });
}

// Runs `f`; if it has not returned within `limit` of real time, reports `what` and ends the
// process (a hung thread cannot be recovered in-process; a clear message beats the timeout).
template <class F>
void must_finish_within(std::chrono::seconds limit, const char* what, F&& f) {
  std::mutex mu;
  std::condition_variable cv;
  bool done = false;
  std::thread watchdog([&] {
    std::unique_lock lk(mu);
    if (!cv.wait_for(lk, limit, [&] { return done; })) {
      std::fprintf(stderr, "HANG: %s did not finish within %lld s\n", what,
                   static_cast<long long>(limit.count()));
      std::fflush(stderr);
      std::_Exit(3);
    }
  });
  f();
  {
    std::lock_guard lk(mu);
    done = true;
  }
  cv.notify_one();
  watchdog.join();
}

}  // namespace trpl::test
