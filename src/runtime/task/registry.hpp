// TaskList: one thread's share of a runtime's registry of live tasks (what shutdown cancels and
// dump_tasks shows), and the ids of the tasks that thread spawns.
#pragma once

#include <atomic>
#include <cstdint>

#include "trpl/detail/task_header.hpp"

namespace trpl::detail {

// A tiny test-and-test-and-set lock for critical sections of a few instructions; it yields
// after a short spin so a preempted holder cannot stall its waiters.
class SpinLock {
 public:
  void lock() noexcept {
    for (unsigned spins = 0; locked_.exchange(true, std::memory_order_acquire);) {
      while (locked_.load(std::memory_order_relaxed)) spin_pause(spins);
    }
  }
  void unlock() noexcept { locked_.store(false, std::memory_order_release); }

 private:
  std::atomic<bool> locked_{false};
};

// Each worker thread, the block_on thread and "every other thread" have a list of the live
// tasks they spawned, linked through their cores (TaskCore::registry_prev/next) and guarded by
// a spin lock. The spawner links the task; its finisher — any thread — unlinks it before the
// core is freed, while the core is still in its cache (an earlier design left finished tasks
// in the list and swept them lazily: walking cold cells cost a third of skynet's time). The
// lock is almost always uncontended: a task is usually finished on the worker that spawned it.
class TaskList {
 public:
  static constexpr std::uint64_t kIdBlock = 256;

  TaskList() = default;
  TaskList(const TaskList&) = delete;
  TaskList& operator=(const TaskList&) = delete;

  // Links a freshly made task (not yet published) and gives it an id; `ids` hands out blocks
  // of ids for the runtime.
  void push(TaskHeader* t, std::atomic<std::uint64_t>& ids) noexcept {
    TaskCore* c = &t->core();
    t->registry = this;
    lock_.lock();
    if (next_id_ == id_end_) {
      next_id_ = ids.fetch_add(kIdBlock, std::memory_order_relaxed);
      id_end_ = next_id_ + kIdBlock;
    }
    t->id = next_id_++;
    c->registry_prev = nullptr;
    c->registry_next = head_;
    if (head_) head_->registry_prev = c;
    head_ = c;
    lock_.unlock();
  }

  // The finisher (any thread), before it frees the core.
  void remove(TaskCore* c) noexcept {
    lock_.lock();
    if (c->registry_prev) c->registry_prev->registry_next = c->registry_next; else head_ = c->registry_next;
    if (c->registry_next) c->registry_next->registry_prev = c->registry_prev;
    lock_.unlock();
  }

  // Any thread: calls f(t) for each live task under the list's lock (f must not spawn, finish
  // or block; it typically takes a reference).
  template <class F>
  void for_each_live(F&& f) {
    lock_.lock();
    for (TaskCore* c = head_; c != nullptr; c = c->registry_next) f(c->header);
    lock_.unlock();
  }

 private:
  SpinLock lock_;
  TaskCore* head_ = nullptr;
  std::uint64_t next_id_ = 0, id_end_ = 0;
};

}  // namespace trpl::detail
