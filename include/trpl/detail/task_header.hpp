// TaskHeader: the one allocation behind each spawned task (and each block_on main future):
// atomic state word, ready-frame queues, root frame, join slot. Only the runtime touches it.
#pragma once

#include <atomic>
#include <cassert>
#include <coroutine>
#include <cstdint>
#include <source_location>
#include <string>

#include "trpl/detail/spin_lock.hpp"
#include "trpl/detail/wake_node.hpp"

namespace trpl::detail {

class RuntimeCore;
// Keeps the runtime's memory alive while a task header refers to it (defined by the runtime).
void retain_runtime(RuntimeCore* rt) noexcept;
void release_runtime(RuntimeCore* rt) noexcept;

// State word layout (low byte flags, reference count above):
//   bit 0 SCHEDULED  the task is in a run queue, or was woken while RUNNING (run it again)
//   bit 1 RUNNING    a thread owns the task: only it resumes or destroys frames, pops wakes
//   bit 2 COMPLETE   the root frame is gone and the output is published
//   bit 3 CANCELLED  abort() or shutdown asked for cancellation; the next run destroys frames
//   bits 8..63       references: JoinHandle, "alive in the runtime", run queue, waking notifier
struct TaskHeader {
  static constexpr std::uint64_t kScheduled = 1;
  static constexpr std::uint64_t kRunning = 2;
  static constexpr std::uint64_t kComplete = 4;
  static constexpr std::uint64_t kCancelled = 8;
  static constexpr std::uint64_t kRefOne = 1u << 8;

  explicit TaskHeader(RuntimeCore* rt) : rt(rt) { retain_runtime(rt); }
  TaskHeader(const TaskHeader&) = delete;
  TaskHeader& operator=(const TaskHeader&) = delete;
  virtual ~TaskHeader() { release_runtime(rt); }

  // Stores "cancelled" as the output (the root frame is already destroyed).
  virtual void set_cancelled() = 0;

  void ref() noexcept { state.fetch_add(kRefOne, std::memory_order_relaxed); }
  // Drops one reference; frees the task when it was the last.
  void unref() noexcept {
    if ((state.fetch_sub(kRefOne, std::memory_order_acq_rel) >> 8) == 1) delete this;
  }
  bool is_complete() const noexcept {
    return (state.load(std::memory_order_acquire) & kComplete) != 0;
  }

  // Wake stack: any thread pushes (lock-free); the owner drains it into the ready list.
  void push_wake(WakeNode* n) noexcept {
    WakeNode* head = incoming.load(std::memory_order_relaxed);
    do {
      n->next = head;
    } while (!incoming.compare_exchange_weak(head, n, std::memory_order_release,
                                             std::memory_order_relaxed));
  }
  // Owner only: move every pushed wake to the tail of the ready list, oldest first.
  void drain_wakes() noexcept {
    WakeNode* n = incoming.exchange(nullptr, std::memory_order_acquire);
    if (n == nullptr) return;
    WakeNode* fifo = nullptr;  // reverse the LIFO stack
    while (n != nullptr) {
      WakeNode* next = n->next;
      n->next = fifo;
      fifo = n;
      n = next;
    }
    for (WakeNode* m = fifo; m != nullptr;) {
      WakeNode* next = m->next;
      m->next = nullptr;
      m->prev = ready_tail;
      if (ready_tail) ready_tail->next = m; else ready_head = m;
      ready_tail = m;
      m = next;
    }
  }
  // Owner only: the oldest ready wake, unlinked, or null.
  WakeNode* pop_ready() noexcept {
    if (ready_head == nullptr) drain_wakes();
    WakeNode* n = ready_head;
    if (n == nullptr) return nullptr;
    ready_head = n->next;
    if (ready_head) ready_head->prev = nullptr; else ready_tail = nullptr;
    n->next = n->prev = nullptr;
    return n;
  }
  // Owner only: take a queued node out of the ready queue (its frame is being destroyed).
  void remove_ready(WakeNode* n) noexcept {
    drain_wakes();  // the node's push finished before its state became queued
    if (n->prev) n->prev->next = n->next; else ready_head = n->next;
    if (n->next) n->next->prev = n->prev; else ready_tail = n->prev;
    n->next = n->prev = nullptr;
  }
  bool has_ready() const noexcept {
    return ready_head != nullptr || incoming.load(std::memory_order_acquire) != nullptr;
  }

  std::atomic<std::uint64_t> state{kRefOne};  // one reference: "alive in the runtime"
  std::atomic<WakeNode*> incoming{nullptr};
  WakeNode* ready_head = nullptr;
  WakeNode* ready_tail = nullptr;

  RuntimeCore* const rt;
  TaskHeader* queue_next = nullptr;      // run queue link (guarded by the queue)
  TaskHeader* registry_prev = nullptr;   // list of live tasks (guarded by the runtime)
  TaskHeader* registry_next = nullptr;
  std::coroutine_handle<> root;          // owned; destroyed at completion or cancellation
  WakeNode start;                        // the first wake: resume the root
  bool pinned = false;                   // the block_on main future: runs on that thread only

  WakeNode* waits_head = nullptr;        // armed nodes of this task's frames (owner only)
  std::int64_t idle_since_ns = 0;        // runtime clock when it last went idle (owner only)

  bool output_taken = false;             // the JoinHandle moved the output out (its owner only)

  SpinLock join_lock;                    // guards join_waiter and the COMPLETE publication
  WakeNode* join_waiter = nullptr;

  std::uint64_t id = 0;
  std::string name;
  std::source_location spawned_at;
};

// The task whose frames this thread is running now (null outside a run loop).
inline thread_local TaskHeader* tl_current_task = nullptr;

// Schedules `t` to run (from any thread). Defined by the runtime.
void schedule(TaskHeader* t) noexcept;

[[noreturn]] void throw_not_in_task(const char* call);

// Registers `n` for the current task's frame `h` (caller holds the wait list's lock): on every
// suspension, so inline. Throws trpl::Error when no task of a runtime runs on this thread.
inline void arm(WakeNode& n, std::coroutine_handle<> h, const char* call) {
  TaskHeader* t = tl_current_task;
  if (t == nullptr) [[unlikely]] throw_not_in_task(call);
  n.task = t;
  n.frame = h;
#if TRPL_RECORDING
  n.waits_next = t->waits_head;
  t->waits_head = &n;
#endif
  n.state.store(WakeNode::kRegistered, std::memory_order_relaxed);
}

// Notifier side, under the wait list's lock, after unlinking `n`: queue its frame on its task.
// Returns the task with a reference held; pass it to `wake_after_unlock` once the lock is
// released.
inline TaskHeader* fire_locked(WakeNode& n) noexcept {
  TaskHeader* t = n.task;
  t->ref();
  // State first: once pushed, the owner may pop, resume and destroy the node at any moment.
  n.state.store(WakeNode::kQueued, std::memory_order_relaxed);
  t->push_wake(&n);
  return t;
}
inline void wake_after_unlock(TaskHeader* t) noexcept {
  schedule(t);
  t->unref();
}

// Owner side: the node is no longer waited on (resumed, or unlinked from its wait list by its
// awaiter's destructor under that list's lock): back to idle, off the task's list of waits.
// `t` is n's task (the run loop passes the one it runs, saving a load).
inline void disarm(TaskHeader* t, WakeNode& n) noexcept {
#if TRPL_RECORDING
  // A stack: the node is almost always on top (one wait per task); join children walk a few.
  if (t->waits_head == &n) [[likely]] {
    t->waits_head = n.waits_next;
  } else {
    WakeNode** link = &t->waits_head;
    while (*link != &n && *link != nullptr) link = &(*link)->waits_next;
    if (*link == &n) *link = n.waits_next;
  }
#else
  (void)t;
#endif
  n.state.store(WakeNode::kIdle, std::memory_order_relaxed);
}
inline void disarm(WakeNode& n) noexcept { disarm(n.task, n); }

// Owner side, under the wait list's lock (so a notifier's push is complete): forget a node
// that is already queued on the current task.
inline void cancel_queued(WakeNode& n) noexcept {
  n.task->remove_ready(&n);
  disarm(n);
}

// Owner side, in an awaiter's destructor, holding the wait list's lock: if the node is still
// registered, `unlink` takes it out of the wait list; if a notifier already queued it, it is
// taken off the task's ready list. Either way nothing will resume the frame.
template <class Unlink>
void cancel_locked(WakeNode& n, Unlink&& unlink) noexcept {
  if (n.load_state() == WakeNode::kRegistered) {
    unlink();
    disarm(n);
  } else if (n.load_state() == WakeNode::kQueued) {
    cancel_queued(n);
  }
}

}  // namespace trpl::detail
