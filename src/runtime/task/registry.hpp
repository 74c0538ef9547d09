// TaskList: one thread's share of a runtime's registry of tasks (what shutdown cancels and
// dump_tasks shows), and the ids of the tasks that thread spawns. Spawning takes no lock.
#pragma once

#include <atomic>
#include <cstdint>
#include <mutex>

#include "trpl/detail/task_header.hpp"

namespace trpl::detail {

// Each worker thread, the block_on thread and "every other thread" have a list of the tasks
// they spawned, newest first, linked through TaskHeader::registry_next. The list holds one
// reference on each cell. A task is not unlinked when it completes (its finisher may be any
// thread); the list's owner sweeps finished tasks out once the list has doubled since the
// last sweep, so the cost is O(1) per spawn and a finished cell lingers at most until then
// (its frame is already freed; only the small cell waits). A cell is swept only once its
// finisher is done with it (is_finished), not merely complete.
//
// Concurrency: only the owner pushes (a release store of `head_`; readers see a consistent
// older prefix) and sweeps. Sweeps and readers (dump_tasks, shutdown) take `mu_`, so a reader
// never walks into a node being unlinked. A shared list (spawns from threads that belong to no
// runtime) is pushed under `mu_` too (`locked` below).
class TaskList {
 public:
  static constexpr std::uint64_t kIdBlock = 256;

  TaskList() = default;
  TaskList(const TaskList&) = delete;
  TaskList& operator=(const TaskList&) = delete;
  ~TaskList() { clear(); }

  // The owner (or anyone holding mu_ for a shared list): adds a freshly made task and gives it
  // an id. `ids` hands out blocks of ids for the runtime. True when the list wants a sweep()
  // (called without mu_ held).
  [[nodiscard]] bool push(TaskHeader* t, std::atomic<std::uint64_t>& ids) noexcept {
    if (next_id_ == id_end_) {
      next_id_ = ids.fetch_add(kIdBlock, std::memory_order_relaxed);
      id_end_ = next_id_ + kIdBlock;
    }
    t->id = next_id_++;
    t->registry_next = head_.load(std::memory_order_relaxed);
    head_.store(t, std::memory_order_release);
    return ++len_ >= 2 * live_at_sweep_ + 256;
  }

  // The owner (any thread, for a shared list): drops the finished tasks.
  void sweep() noexcept {
    TaskHeader* dead = nullptr;
    {
      std::lock_guard lk(mu_);
      std::size_t live = 0;
      TaskHeader* prev = nullptr;
      for (TaskHeader* t = head_.load(std::memory_order_relaxed); t != nullptr;) {
        TaskHeader* next = t->registry_next;
        if (t->is_finished()) {
          if (prev) prev->registry_next = next; else head_.store(next, std::memory_order_relaxed);
          t->registry_next = dead;
          dead = t;
        } else {
          ++live;
          prev = t;
        }
        t = next;
      }
      len_ = live_at_sweep_ = live;
    }
    while (dead != nullptr) {
      TaskHeader* next = dead->registry_next;
      dead->unref();
      dead = next;
    }
  }

  // Any thread: calls f(t) for each task not yet complete, under the list's lock (f must not
  // spawn on this list or sweep it).
  template <class F>
  void for_each_live(F&& f) {
    std::lock_guard lk(mu_);
    for (TaskHeader* t = head_.load(std::memory_order_acquire); t != nullptr; t = t->registry_next) {
      if (!t->is_complete()) f(t);
    }
  }

  // Once nothing can run any more (shutdown, after every task completed): drops them all.
  void clear() noexcept {
    TaskHeader* t = head_.exchange(nullptr, std::memory_order_acq_rel);
    while (t != nullptr) {
      TaskHeader* next = t->registry_next;
      t->unref();
      t = next;
    }
    len_ = live_at_sweep_ = 0;
  }

  // The owner: finished tasks may be waiting to be swept (worth a sweep before sleeping).
  bool wants_sweep() const noexcept { return len_ >= 2 * live_at_sweep_ + 64; }

  std::mutex& mutex() noexcept { return mu_; }

 private:
  std::atomic<TaskHeader*> head_{nullptr};
  std::size_t len_ = 0;            // owner
  std::size_t live_at_sweep_ = 0;  // owner
  std::uint64_t next_id_ = 0, id_end_ = 0;  // owner
  std::mutex mu_;
};

}  // namespace trpl::detail
