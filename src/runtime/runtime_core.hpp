// RuntimeCore: the scheduler behind trpl::Runtime — run queues, worker threads, the block_on
// loop, task lifecycle (run, complete, cancel), shutdown, drivers and the (paused) clock.
#pragma once

#include <array>
#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "trpl/detail/runtime_context.hpp"
#include "trpl/detail/task_header.hpp"
#include "trpl/runtime.hpp"

namespace trpl::detail {

// Intrusive FIFO of tasks through TaskHeader::queue_next; guarded by its owner's mutex.
class TaskQueue {
 public:
  void push(TaskHeader* t) noexcept {
    t->queue_next = nullptr;
    if (tail_) tail_->queue_next = t; else head_ = t;
    tail_ = t;
    ++size_;
  }
  TaskHeader* pop() noexcept {
    TaskHeader* t = head_;
    if (t) {
      head_ = t->queue_next;
      if (!head_) tail_ = nullptr;
      t->queue_next = nullptr;
      --size_;
    }
    return t;
  }
  bool empty() const noexcept { return head_ == nullptr; }
  std::size_t size() const noexcept { return size_; }

 private:
  TaskHeader* head_ = nullptr;
  TaskHeader* tail_ = nullptr;
  std::size_t size_ = 0;
};

class RuntimeCore;
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

  // Cancels every task, stops the workers, destroys the drivers; then drops the Runtime's
  // reference (the memory lives on while task headers refer to it).
  void shutdown();

  void spawn(TaskHeader* t);
  void block_on(TaskHeader* main);
  void schedule(TaskHeader* t) noexcept;  // the caller set SCHEDULED on an idle task
  Clock::time_point now() const noexcept;
  Driver& driver(DriverKind kind, std::unique_ptr<Driver> (*make)(RuntimeCore&));
  void deadline_changed(Clock::time_point deadline) noexcept;

  // This runtime's part of dump_tasks(): every live task, what it does, where it waits.
  std::string dump();
  std::uint64_t seed() const noexcept { return config_.seed; }

  void retain() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }
  void release() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

 private:
  ~RuntimeCore() = default;

  // Runs `t`'s ready frames until it has none, completes, or uses up its budget (then it is
  // queued again behind the others). Consumes the run queue's reference.
  void run_task(TaskHeader* t) noexcept;
  // run_task, and every kDriveInterval runs on this thread let the drivers fire what is due.
  void run_and_drive(TaskHeader* t, int& runs_since_drive);
  // Destroys the root frame (cancelled: first), publishes the output, wakes the joiner.
  void finish(TaskHeader* t, bool cancelled) noexcept;
  void register_task(TaskHeader* t);
  void unregister_task(TaskHeader* t) noexcept;
  void push_runnable(TaskHeader* t) noexcept;

  void worker_main(std::size_t index);
  // The block_on loop of a current_thread runtime: runs every task on this thread.
  void run_current_thread(TaskHeader* main);
  // Lets every driver fire what is due at `now`.
  void drive(Clock::time_point now);
  std::optional<Clock::time_point> next_deadline();
  // Pops the next runnable task (FIFO, or seeded under deterministic); mu_ held.
  TaskHeader* pop_runnable() noexcept;
  // Called by the last awake thread after the grace period found nothing runnable, no armed
  // timer and no task run in between: reports once, and returns the report for raise.
  void report_deadlock();
  void describe_task(TaskHeader* t, std::string& out);
  bool main_is_idle();
  template <class Lock>
  [[noreturn]] void raise_deadlock(TaskHeader* main, Lock& lk);
  // Called under mu_ before parking until `next`: false when an earlier deadline appeared.
  bool park_deadline_settled(std::optional<Clock::time_point>& next);

  const RuntimeConfig config_;
  std::atomic<std::size_t> refs_{1};  // the Runtime's, plus one per live task header

  // Run queue of the workers (multi_thread) or of the block_on thread (current_thread).
  std::mutex mu_;
  std::condition_variable work_cv_;    // idle threads wait here for tasks
  std::condition_variable driver_cv_;  // the driving thread waits here for its deadline
  TaskQueue queue_;
  std::size_t idle_ = 0;
  bool driver_busy_ = false;           // a parked thread is driving the timers
  std::atomic<std::int64_t> driver_deadline_ns_{INT64_MAX};  // when it means to wake up
  std::uint64_t deadline_gen_ = 0;     // bumped when a new earliest deadline appears
  bool stopping_ = false;              // workers must exit
  bool closed_ = false;                // shut down: queue nothing more

  // The block_on main task of a multi_thread runtime runs on its caller's thread only.
  std::mutex main_mu_;
  std::condition_variable main_cv_;
  TaskQueue main_queue_;
  bool main_idle_ = false;             // the block_on thread waits for its task (main_mu_)
  TaskHeader* main_ = nullptr;         // the current block_on future (main_mu_)

  // Deadlock detection: task runs so far (a stuck runtime runs none during the grace period),
  // the run count at the last report (report once per episode), the report for raise.
  std::atomic<std::uint64_t> runs_{0};
  std::uint64_t reported_at_runs_ = UINT64_MAX;  // mu_
  std::string deadlock_report_;                  // main_mu_ (multi) / mu_ (current)
  std::uint64_t rng_state_ = 0;                  // deterministic choice (mu_)

  std::vector<std::thread> workers_;

  // Every live task (for shutdown and dump_tasks).
  std::mutex registry_mu_;
  TaskHeader* registry_head_ = nullptr;
  std::atomic<std::uint64_t> next_id_{1};

  std::mutex drivers_mu_;
  std::array<std::atomic<Driver*>, static_cast<std::size_t>(DriverKind::count)> drivers_{};

  const Clock::time_point origin_ = Clock::now();
  std::atomic<std::int64_t> paused_ns_{0};  // virtual time since origin_, under start_paused
  std::atomic<std::int64_t> coarse_now_ns_{0};  // clock at the last park/drive (for "idle since")
};

}  // namespace trpl::detail
