// yield_now(): give way to the other ready work once (tokio::task::yield_now, the book's
// trpl::yield_now). The frame resumes after every frame and task that was ready before it.
#pragma once

#include <coroutine>
#include <source_location>

#include "trpl/detail/task_header.hpp"

namespace trpl {

namespace detail {
// Queues the current task's frame behind its other ready frames and asks the run loop to put
// the task behind the other ready tasks (never into a worker's LIFO slot). Owner only.
inline void yield_node(WakeNode& n) noexcept {
  TaskCore& c = n.task->core();
  n.state.store(WakeNode::kQueued, std::memory_order_relaxed);
  c.push_ready(&n);
  c.give_way = true;
}
}  // namespace detail

// The awaitable returned by yield_now().
//
// Returns: nothing; `co_await` resumes once the work that was ready before it has run: first
//   the task's other ready frames (two yielding loops in one join alternate), then the other
//   ready tasks (the task goes to the back of the run queue).
// Errors: trpl::Error when awaited outside a trpl task.
// Cancellation: destroying the waiting frame (drop, abort, race loser, shutdown) takes its
//   wake off the task's ready list; nothing resumes it.
// Thread safety: one frame awaits it; it involves no other thread.
class [[nodiscard("yield_now does nothing until it is awaited")]] YieldNow {
 public:
  explicit YieldNow(std::source_location where = std::source_location::current()) { node_.where = where; }
  YieldNow(YieldNow&& other) noexcept { node_.where = other.node_.where; }
  YieldNow& operator=(YieldNow&&) = delete;
  ~YieldNow() {
    if (node_.load_state() != detail::WakeNode::kIdle) detail::cancel_queued(node_);
  }

  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<> h) {
    static constexpr detail::WaitKind kYield{"yield_now (ready: it runs after the work ahead of it)"};
    detail::note_wait(node_, kYield);
    detail::arm(node_, h, "yield_now");
    detail::yield_node(node_);
  }
  void await_resume() const noexcept {}

 private:
  detail::WakeNode node_;
};

// Yields once: `co_await trpl::yield_now();`.
inline YieldNow yield_now(std::source_location where = std::source_location::current()) {
  return YieldNow(where);
}

}  // namespace trpl
