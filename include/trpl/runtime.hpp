// The runtime: Runtime and its Builder, block_on/run (drive a future to completion on this
// thread) and spawn_task (start a task that runs beside it, on the runtime's workers).
#pragma once

#include <chrono>
#include <csignal>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <source_location>
#include <string>
#include <type_traits>
#include <utility>

#include "trpl/awaitable.hpp"
#include "trpl/diagnostics.hpp"
#include "trpl/detail/runtime_context.hpp"
#include "trpl/detail/task_cell.hpp"
#include "trpl/error.hpp"
#include "trpl/join_handle.hpp"

namespace trpl {

namespace detail {
struct RuntimeConfig {
  bool multi_thread = true;
  std::size_t worker_threads = 0;  // 0: one per hardware thread
  bool start_paused = false;
  bool deterministic = false;      // seeded choice among ready tasks
  std::uint64_t seed = 0;
  DeadlockPolicy on_deadlock = DeadlockPolicy::report;
  std::chrono::milliseconds deadlock_grace{250};
  int dump_signal = 0;             // 0: none
};
RuntimeCore* make_runtime_core(const RuntimeConfig& config);

template <class T>
T take_block_on_output(TaskCell<T>* cell) {
  std::expected<T, JoinError> out = cell->take();
  if (!out) {
    if (out.error().is_panic()) std::rethrow_exception(out.error().exception());
    throw_error("block_on", "the main future was cancelled", "Do not abort the block_on future");
  }
  if constexpr (!std::is_void_v<T>) return std::move(*out);
}
}  // namespace detail

// An async runtime: a scheduler (one thread, or worker threads) plus its timer driver.
//
// Build one with Runtime::builder() (or trpl::run, which builds a default one per call).
// Destroying a Runtime cancels every task still running on it — their frames are destroyed
// and their destructors run — before the destructor returns.
class Runtime {
 public:
  class Builder {
   public:
    // Everything runs on the thread that calls block_on (tokio's current_thread).
    Builder& current_thread() { config_.multi_thread = false; return *this; }
    // Spawned tasks run on worker threads; block_on's future on the calling thread (default).
    Builder& multi_thread() { config_.multi_thread = true; return *this; }
    // Number of worker threads for multi_thread (default: hardware threads). Must be >= 1.
    Builder& worker_threads(std::size_t n);
    // Virtual time: the clock stands still while a task runs and jumps to the next timer
    // when every task is waiting. Tests of long sleeps run instantly and deterministically.
    // Requires current_thread.
    Builder& start_paused(bool paused = true) { config_.start_paused = paused; return *this; }
    // A single-threaded runtime with paused time whose choice among ready tasks is driven by
    // `seed` (within a task the FIFO and fairness rules still hold): the same seed replays
    // the same interleaving. The environment variable TRPL_SEED, when set, overrides `seed`.
    Builder& deterministic(std::uint64_t seed);
    // What to do when every task waits and nothing inside the runtime can wake one:
    // report on stderr and keep waiting (default), or make block_on throw trpl::Deadlock.
    Builder& on_deadlock(DeadlockPolicy policy) { config_.on_deadlock = policy; return *this; }
    // How long the runtime must stay stuck before it reports (default 250 ms, real time).
    Builder& deadlock_grace(std::chrono::milliseconds grace) { config_.deadlock_grace = grace; return *this; }
    // Print dump_tasks() on stderr whenever the process receives `signal` (e.g. SIGQUIT,
    // Ctrl-\ in a terminal), as Go and the JVM do. Opt-in; one runtime at a time.
    Builder& dump_on_signal(int signal = SIGQUIT) { config_.dump_signal = signal; return *this; }
    Runtime build() const;

   private:
    detail::RuntimeConfig config_;
  };
  static Builder builder() { return Builder(); }

  // A default multi-thread runtime (the one trpl::run uses).
  Runtime() : Runtime(detail::RuntimeConfig{}) {}
  Runtime(Runtime&& other) noexcept : core_(std::exchange(other.core_, nullptr)) {}
  Runtime& operator=(Runtime&& other) noexcept;
  Runtime(const Runtime&) = delete;
  Runtime& operator=(const Runtime&) = delete;
  ~Runtime();

  // Runs `f` (a Task, an awaitable, or a callable returning one) to completion on this thread
  // and returns its value, or rethrows its exception. Spawned tasks keep running afterwards
  // (multi_thread) or resume at the next block_on (current_thread) until the Runtime dies.
  // An rvalue callable is owned (destroyed when its coroutine completes); an lvalue one is
  // borrowed. Errors: trpl::Error when called from inside a runtime (await instead).
  template <class F>
    requires AsyncOperation<F>
  auto block_on(F&& f) {
    auto* cell = detail::make_task_cell(core_, std::forward<F>(f));
    struct Release {  // the cell's second reference (a JoinHandle's, for a spawned task)
      detail::TaskHeader* t;
      ~Release() { t->unref(); }
    } release{cell};
    detail::block_on_prepared(*core_, cell);
    return detail::take_block_on_output(cell);
  }

  // This runtime's part of dump_tasks().
  std::string dump_tasks() const;
  // The seed of a deterministic runtime (after TRPL_SEED), else 0.
  std::uint64_t seed() const noexcept;

  // Spawns `f` on this runtime from any thread (inside or outside it); see trpl::spawn_task.
  template <class F>
    requires AsyncOperation<std::decay_t<F>>
  auto spawn(F&& f, std::string name = {},
             std::source_location where = std::source_location::current()) {
    return spawn_on(*core_, std::decay_t<F>(std::forward<F>(f)), std::move(name), where);
  }

  template <class Op>
  static auto spawn_on(detail::RuntimeCore& rt, Op op, std::string name, std::source_location where) {
    auto* cell = detail::make_task_cell(&rt, std::move(op));
    using T = typename std::remove_pointer_t<decltype(cell)>::value_type;
    cell->set_name(name);
    cell->spawned_at = where;
    detail::spawn_prepared(rt, cell);  // the registry's reference; the JoinHandle adopts the other
    return JoinHandle<T>(cell);
  }

 private:
  explicit Runtime(const detail::RuntimeConfig& config) : core_(detail::make_runtime_core(config)) {}
  detail::RuntimeCore* core_;
};

// Starts `f` as a new task on the current runtime and returns its JoinHandle. The task starts
// at once and runs in parallel with the caller (multi_thread) until it finishes, is aborted,
// or the runtime shuts down. The task always owns `f` (an lvalue callable is copied, as
// std::thread does), since it may outlive the caller's frame. `name` shows in dump_tasks().
// Errors: trpl::Error when called on a thread that runs no trpl runtime.
template <class F>
  requires AsyncOperation<std::decay_t<F>>
auto spawn_task(F&& f, std::string name = {},
                std::source_location where = std::source_location::current()) {
  detail::RuntimeCore& rt = detail::current_runtime("spawn_task");
  return Runtime::spawn_on(rt, std::decay_t<F>(std::forward<F>(f)), std::move(name), where);
}

// Builds a default multi-thread runtime, runs `f` to completion on this thread, cancels the
// tasks still running, and returns f's value (or rethrows its exception). The book's
// `trpl::run`. Errors: trpl::Error when called from inside a runtime.
template <class F>
  requires AsyncOperation<F>
auto block_on(F&& f) {
  Runtime rt;
  return rt.block_on(std::forward<F>(f));
}
template <class F>
  requires AsyncOperation<F>
auto run(F&& f) {
  Runtime rt;
  return rt.block_on(std::forward<F>(f));
}

}  // namespace trpl
