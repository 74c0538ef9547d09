// RuntimeCore: what every trpl::Runtime is underneath — its configuration, clock and drivers,
// the task lifecycle shared by both schedulers (spawn, run, finish, cancel), block_on, the
// registry of live tasks, and shutdown. The schedulers (scheduler/) decide where a runnable
// task waits and which thread runs it.
#pragma once

#include <array>
#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>

#include "runtime/scheduler/enqueue.hpp"
#include "runtime/scheduler/inject.hpp"
#include "runtime/scheduler/parker.hpp"
#include "runtime/task/registry.hpp"
#include "trpl/detail/runtime_context.hpp"
#include "trpl/detail/task_header.hpp"
#include "trpl/runtime.hpp"

namespace trpl::detail {

class CurrentThread;
class MultiThread;

// The process-wide list of runtimes (for dump_tasks) and the dump-on-signal hook.
void register_runtime(RuntimeCore* rt);
void unregister_runtime(RuntimeCore* rt);
void install_dump_signal(int sig);
void remove_dump_signal(int sig);

class RuntimeCore {
 public:
  explicit RuntimeCore(const RuntimeConfig& config);
  RuntimeCore(const RuntimeCore&) = delete;
  RuntimeCore& operator=(const RuntimeCore&) = delete;

  // Cancels every task, stops the workers, destroys the drivers, frees this object.
  void shutdown();

  // Registers a prepared task (root created, not started, SCHEDULED) and queues it.
  void spawn(TaskHeader* t);
  void block_on(TaskHeader* main);
  // Queues `t`, which the caller moved from idle to SCHEDULED (or made and registered).
  void enqueue(TaskHeader* t, EnqueueKind kind) noexcept;

  // Runs `t` (popped from a run queue: SCHEDULED, not RUNNING) until it has no ready frame,
  // completes, or gives way. Defined in task/harness.cpp.
  void run_task(TaskHeader* t) noexcept;
  // SCHEDULED (popped from a run queue) -> RUNNING, taking its wake stack. Defined there too.
  static void claim_scheduled(TaskHeader* t) noexcept;
  // Claims a task that sits on no queue for cancellation (idle -> RUNNING): false if it is
  // scheduled, running or complete.
  static bool claim_idle(TaskHeader* t) noexcept;
  // Destroys the root frame (first: cancelled), publishes the output, wakes the joiner. The
  // caller holds RUNNING.
  void finish(TaskHeader* t, bool cancelled) noexcept;
  // finish(t, true) for a task claimed outside any run loop (shutdown, raise, closed spawn).
  void cancel_claimed(TaskHeader* t) noexcept;

  Clock::time_point now() const noexcept;
  Driver& driver(DriverKind kind, std::unique_ptr<Driver> (*make)(RuntimeCore&));
  // A driver's new earliest deadline: wake whoever sleeps past it.
  void deadline_changed(Clock::time_point deadline) noexcept;
  // Lets every driver fire what is due now. Any runtime thread.
  void drive();
  std::optional<Clock::time_point> next_deadline();
  std::size_t pending_wakeups();  // registrations (timers) that could still wake a task

  // This runtime's part of dump_tasks(): every live task, what it does, where it waits.
  std::string dump();
  void describe_task(TaskHeader* t, std::string& out);
  // The deadlock report: prints it (policy report) or keeps it for block_on to throw (raise).
  void report_deadlock();
  bool deadlock_raised() const noexcept { return deadlock_raised_.load(std::memory_order_acquire); }
  std::string take_deadlock_report();

  const RuntimeConfig& config() const noexcept { return config_; }
  std::uint64_t seed() const noexcept { return config_.seed; }
  std::int64_t clock_ns(Clock::time_point tp) const noexcept;
  // The clock at the last park or drive, for "waiting for about N ms" (relaxed, coarse).
  void note_coarse_now(Clock::time_point tp) noexcept {
    coarse_now_ns_.store(clock_ns(tp), std::memory_order_relaxed);
  }
  std::int64_t coarse_now_ns() const noexcept { return coarse_now_ns_.load(std::memory_order_relaxed); }
  // Paused time: jump the virtual clock forward to `tp`.
  void advance_paused_clock(Clock::time_point tp) noexcept;

  // The block_on thread of a multi_thread runtime: the main future's queue and its sleep.
  InjectQueue& main_queue() noexcept { return main_queue_; }
  bool main_is_idle() const noexcept { return main_idle_.load(std::memory_order_acquire); }
  // How many task runs there have been (deadlock detection: a stuck runtime runs none).
  std::uint64_t total_runs() const noexcept;

  CurrentThread* current_thread() noexcept { return ct_.get(); }
  MultiThread* multi_thread() noexcept { return mt_.get(); }

 private:
  ~RuntimeCore();

  // The list this thread registers its spawns on.
  TaskList& spawn_list() noexcept;
  void run_main_loop(TaskHeader* main);
  [[noreturn]] void raise_deadlock(TaskHeader* main);
  // Shutdown: cancels every task, however they are woken meanwhile, until none is left.
  void cancel_everything();
  // Calls f(list) for each share of the registry (defined below).
  template <class F>
  void for_each_list(F&& f);

  const RuntimeConfig config_;
  std::unique_ptr<CurrentThread> ct_;
  std::unique_ptr<MultiThread> mt_;

  // The block_on future of a multi_thread runtime runs on its caller's thread only.
  InjectQueue main_queue_;
  Parker main_parker_;
  std::atomic<bool> main_idle_{false};    // the block_on thread sleeps (or is not in block_on)
  std::atomic<bool> blocking_{false};     // a block_on is running (one at a time)
  std::atomic<std::uint64_t> main_runs_{0};

  // Registry: the block_on/loop thread's list, and the list of every other thread (locked).
  // Workers have their own (multi_thread/worker.hpp).
  TaskList main_list_;
  TaskList shared_list_;
  std::atomic<std::uint64_t> ids_{1};

  // Shutdown: set before cancelling; threads that are not the runtime's own count themselves
  // in while they push onto its queues, and shutdown waits for them to leave.
  std::atomic<bool> closing_{false};
  std::atomic<std::uint32_t> outside_pushers_{0};

  std::atomic<bool> deadlock_raised_{false};
  std::mutex deadlock_mu_;
  std::string deadlock_report_;  // deadlock_mu_

  std::mutex drivers_mu_;
  std::array<std::atomic<Driver*>, static_cast<std::size_t>(DriverKind::count)> drivers_{};

  const Clock::time_point origin_ = Clock::now();
  std::atomic<std::int64_t> paused_ns_{0};      // virtual time since origin_, under start_paused
  std::atomic<std::int64_t> coarse_now_ns_{0};

  friend class CurrentThread;
  friend class MultiThread;
};

}  // namespace trpl::detail

#include "runtime/scheduler/current_thread.hpp"
#include "runtime/scheduler/multi_thread/worker.hpp"

namespace trpl::detail {

template <class F>
void RuntimeCore::for_each_list(F&& f) {
  f(main_list_);
  f(shared_list_);
  if (mt_) mt_->for_each_worker([&](Worker& w) { f(w.spawned); });
}

}  // namespace trpl::detail
