// CurrentThread: the scheduler of a current_thread runtime (and of the deterministic one):
// every task runs on the thread that calls block_on, in FIFO order (or a seeded order).
#pragma once

#include <atomic>
#include <cstdint>

#include "runtime/scheduler/inject.hpp"
#include "runtime/scheduler/parker.hpp"
#include "trpl/detail/task_header.hpp"

namespace trpl::detail {

class RuntimeCore;

class CurrentThread {
 public:
  explicit CurrentThread(RuntimeCore& rt) noexcept;

  // Any thread: queues `t` (SCHEDULED). From the loop's own thread it goes to the back of the
  // loop's queue (no atomics); from any other thread onto the inject queue, waking the loop.
  void schedule(TaskHeader* t) noexcept;
  // block_on: runs every task on this thread until `main` completes or a deadlock is raised.
  void run(TaskHeader* main);
  // Shutdown (nothing runs): the next queued task, from either queue, or null.
  TaskHeader* pop_any() noexcept;
  bool maybe_has_queued() const noexcept { return len_ != 0 || inject_.maybe_nonempty(); }
  // A driver's new earliest deadline: wake the loop if it sleeps past it.
  void deadline_changed(std::int64_t deadline_ns) noexcept;
  std::uint64_t runs() const noexcept { return runs_.load(std::memory_order_relaxed); }

 private:
  void push_local(TaskHeader* t) noexcept;
  TaskHeader* pop_local() noexcept;
  // The next task to run: FIFO, or the seeded choice of a deterministic runtime.
  TaskHeader* pop_runnable() noexcept;
  void take_inject() noexcept;

  RuntimeCore& rt_;
  // The loop's queue (loop thread only), linked through QueueLink.
  QueueLink* head_ = nullptr;
  QueueLink* tail_ = nullptr;
  std::size_t len_ = 0;
  InjectQueue inject_;
  Parker parker_;
  // When the sleeping loop means to wake (clock ns; INT64_MIN: it is awake and will look at
  // the deadlines again before sleeping).
  std::atomic<std::int64_t> parked_until_ns_{INT64_MIN};
  std::atomic<std::uint64_t> runs_{0};
  std::uint64_t rng_state_;
  std::uint64_t reported_at_runs_ = UINT64_MAX;  // deadlock reported once per episode
};

}  // namespace trpl::detail
