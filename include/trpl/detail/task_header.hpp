// A spawned task (or block_on main future) in memory: TaskHeader, the small cell that lives
// until its JoinHandle is gone, and TaskCore, what the runtime needs only while the task is
// alive (allocated with the task's operation, freed when the task completes), whose root frame
// is the task's own coroutine. Plus the wake protocol between notifiers and the task's owner.
// Only the runtime and the leaf awaitables touch these.
#pragma once

#include <atomic>
#include <cassert>
#include <coroutine>
#include <cstdint>
#include <exception>
#include <source_location>
#include <string>
#include <thread>

#include "trpl/detail/frame_pool.hpp"
#include "trpl/detail/wake_node.hpp"

namespace trpl::detail {

class RuntimeCore;
class TaskList;
struct TaskHeader;

// A pause for the short waits of the protocols below (a peer is between two instructions);
// after a while it yields the CPU so a preempted peer can finish.
inline void spin_pause(unsigned& spins) noexcept {
  if (++spins < 64) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
  } else {
    std::this_thread::yield();
  }
}

// The intrusive link of the run queues that are lists (the inject queue, the current_thread
// queue, the block_on queue). A task is on at most one run queue at a time.
struct QueueLink {
  std::atomic<QueueLink*> queue_next{nullptr};
};

// What the runtime keeps for a live task: 80 bytes, allocated (from the pool) together with
// the task's operation when that is a callable (task_cell.hpp), freed once the task completed.
// Owner-only fields are touched by the thread holding the task's RUNNING state (or, once, by
// its spawner before the task is published).
struct TaskCore : QueueLink {
  TaskHeader* header = nullptr;
  RuntimeCore* rt = nullptr;
  // The coroutine the run loop starts: the task's own Task frame (a spawned Task<T>, or the
  // one its callable returned), or a root coroutine awaiting any other awaitable. Owned.
  std::coroutine_handle<> root;
  // Ready frames, oldest first (owner only), fed from the header's wake stack.
  WakeNode* ready_head = nullptr;
  WakeNode* ready_tail = nullptr;
  WakeNode* waits_head = nullptr;  // the armed nodes of this task's frames (owner only)
  TaskCore* registry_prev = nullptr;  // the spawning thread's list of live tasks (registry.hpp)
  TaskCore* registry_next = nullptr;
  std::uint32_t idle_since_ms = 0; // runtime clock (ms, wrapping) when it last went idle (owner)
  bool pinned = false;    // the block_on main future of a multi_thread runtime: its thread only
  bool started = false;   // the root frame has been resumed once (owner only)
  bool give_way = false;  // yield_now: requeue behind the ready work after this resume (owner)

  // Owner only: takes every node from the wake stack and appends them, oldest first.
  inline void drain_wakes() noexcept;
  // Owner only: appends a stack taken from the state word (newest first), oldest first.
  inline void append_stack(WakeNode* stack) noexcept;
  // Owner only: the oldest ready node, unlinked, or null.
  inline WakeNode* pop_ready() noexcept;
  // Owner only: appends a node the owner itself queues (yield_now).
  void push_ready(WakeNode* n) noexcept {
    n->next = nullptr;
    n->prev = ready_tail;
    n->in_ready = true;
    if (ready_tail) ready_tail->next = n; else ready_head = n;
    ready_tail = n;
  }
  // Owner only: unlinks a node that is on the ready list.
  void unlink_ready(WakeNode* n) noexcept {
    if (n->prev) n->prev->next = n->next; else ready_head = n->next;
    if (n->next) n->next->prev = n->prev; else ready_tail = n->prev;
    n->next = n->prev = nullptr;
    n->in_ready = false;
  }
};

// How the type-erased runtime reaches a task's typed parts: the output, the operation and the
// memory of the cell and the core (one table per kind of task, task_cell.hpp).
struct TaskOps {
  void (*drop_output)(TaskHeader*) noexcept;    // destroys an output nobody will read
  void (*free_cell)(TaskHeader*) noexcept;      // destroys what is left and frees the cell
  void (*set_cancelled)(TaskHeader*, std::string who);  // stores "cancelled" as the output
  // First run: makes the root frame if the operation is a callable (its errors become the
  // output) and returns it, or null when there is nothing to resume.
  std::coroutine_handle<> (*start)(TaskHeader*) noexcept;
  // Finish: stores the root's outcome (unless cancelled), destroys the root frame — with it
  // every frame the task owns — then the operation, then frees the core.
  void (*destroy_core)(TaskHeader*, bool cancelled) noexcept;
};

// The state word `sched`: the task's wake stack and three flags in its low bits.
//   bit 0 SCHEDULED  on a run queue or about to be pushed on one (whoever set it pushes), or,
//                    while RUNNING, "look again before going idle" (abort)
//   bit 1 RUNNING    a thread owns the task: only it resumes or destroys frames, reads the
//                    wake stack into the ready list, or completes the task
//   bit 2 COMPLETE   the root frame is destroyed and the output published; final
//   bits 3..63       the wake stack: WakeNodes (8-aligned) pushed by notifiers, newest first
// Transitions (each one CAS or fetch_or; the Promela model models/task_state.pml checks them):
//   fire:   push a node; if neither SCHEDULED, RUNNING nor COMPLETE: also set SCHEDULED, and
//           the notifier enqueues the task. A task that is SCHEDULED and not RUNNING cannot
//           complete, so the enqueuer may touch it without holding a reference.
//   run:    SCHEDULED, !RUNNING -> RUNNING, taking the whole stack (the run queue's popper).
//   idle:   RUNNING, empty stack, !SCHEDULED -> 0 (else: take the stack / clear SCHEDULED and
//           keep running).
//   give way (budget, yield_now): RUNNING -> SCHEDULED, and the runner enqueues it again.
//   finish: RUNNING -> COMPLETE (the stack is empty: every frame deregistered when destroyed).
// The life word `life`: bit 0 CANCELLED (abort asked; read by the runner after it claims the
// task), bits 1.. references: the JoinHandle's, a dump's, and "alive", which the finisher
// drops as the very last thing it does (so nothing frees the cell while it still writes it).
// The join word `join`: 0, the WakeNode of the frame awaiting the JoinHandle, or flags:
// kJoinDetached (the handle is gone without taking the output), kJoinDone (the finisher has
// been: the output is published). After COMPLETE the finisher CASes in kJoinDone, waking the
// node it replaced; if it finds kJoinDetached it drops the output (no handle is left to race
// it). The handle's awaiter CASes 0 -> its node (failing on kJoinDone: finished, no wait) and
// takes it back by CAS when destroyed (failing: the finisher is firing it); a dropped handle
// sets kJoinDetached (fetch_or) and drops the output itself if kJoinDone was set. Each outcome
// has exactly one owner, so an unread output is destroyed promptly, once. (The cell's memory
// is kept by the references: the finisher holds "alive" until its last touch.)
struct TaskHeader {
  static constexpr std::uintptr_t kScheduled = 1, kRunning = 2, kComplete = 4;
  static constexpr std::uintptr_t kFlags = 7;
  static constexpr std::uintptr_t kJoinDetached = 1, kJoinDone = 2;
  static constexpr std::uint32_t kCancelled = 1, kRefOne = 2;

  explicit TaskHeader(const TaskOps* o) noexcept : ops(o) {}
  TaskHeader(const TaskHeader&) = delete;
  TaskHeader& operator=(const TaskHeader&) = delete;

  static WakeNode* stack_of(std::uintptr_t s) noexcept {
    return reinterpret_cast<WakeNode*>(s & ~kFlags);
  }
  TaskCore& core() noexcept { return *core_; }

  void ref() noexcept { life.fetch_add(kRefOne, std::memory_order_relaxed); }
  // Drops one reference; frees the cell with the last one.
  void unref() noexcept {
    if (life.fetch_sub(kRefOne, std::memory_order_acq_rel) < 2 * kRefOne) ops->free_cell(this);
  }
  bool is_complete() const noexcept {
    return (sched.load(std::memory_order_acquire) & kComplete) != 0;
  }

  bool is_cancelled() const noexcept {
    return (life.load(std::memory_order_acquire) & kCancelled) != 0;
  }

  // Born SCHEDULED: its spawner pushes it on a run queue.
  std::atomic<std::uintptr_t> sched{kScheduled};
  std::atomic<std::uint32_t> life{2 * kRefOne};  // "alive" and the handle's
  enum Output : std::uint8_t { kNoOutput, kValue, kError };
  std::uint8_t output = kNoOutput;  // written before COMPLETE, read after it
  bool output_taken = false;        // the JoinHandle moved it out (its owner only)
  TaskCore* core_ = nullptr;        // owned; null once the task completed
  std::atomic<std::uintptr_t> join{0};  // see above
  const TaskOps* ops;
  std::uint64_t id = 0;
  TaskList* registry = nullptr;  // the list of live tasks it is on while alive (registry.hpp)
  // For dump_tasks, which names even running tasks (their core may vanish at any moment):
  // the name given to spawn_task (owned, null when none) and where it was called.
  char* name = nullptr;
  std::source_location spawned_at{};

  ~TaskHeader() { delete[] name; }
  void set_name(const std::string& n) {
    if (n.empty()) return;
    name = new char[n.size() + 1];
    n.copy(name, n.size());
    name[n.size()] = '\0';
  }
  const char* name_or_empty() const noexcept { return name ? name : ""; }
};

inline void TaskCore::drain_wakes() noexcept {
  std::uintptr_t s = header->sched.load(std::memory_order_relaxed);
  while (TaskHeader::stack_of(s) != nullptr) {
    if (header->sched.compare_exchange_weak(s, s & TaskHeader::kFlags, std::memory_order_acquire,
                                            std::memory_order_relaxed)) {
      break;
    }
  }
  append_stack(TaskHeader::stack_of(s));
}

inline void TaskCore::append_stack(WakeNode* n) noexcept {
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
    push_ready(m);
    m = next;
  }
}

inline WakeNode* TaskCore::pop_ready() noexcept {
  if (ready_head == nullptr) drain_wakes();
  WakeNode* n = ready_head;
  if (n == nullptr) return nullptr;
  ready_head = n->next;
  if (ready_head) ready_head->prev = nullptr; else ready_tail = nullptr;
  n->next = n->prev = nullptr;
  n->in_ready = false;
  return n;
}

// The task whose frames this thread is running now (null outside a run loop).
inline thread_local constinit TaskHeader* tl_current_task = nullptr;

// Pushes a task that fire() (or a schedule) moved from idle to SCHEDULED onto a run queue:
// the current worker's, or the runtime's inject queue, or the block_on thread's. Defined by
// the runtime; any thread.
void enqueue_woken(TaskHeader* t) noexcept;

[[noreturn]] void throw_not_in_task(const char* call);

// Registers `n` for the current task's frame `h` (the caller holds whatever makes the node
// visible to notifiers, or publishes it afterwards). On every suspension, so inline. Throws
// trpl::Error when no task of a runtime runs on this thread.
inline void arm(WakeNode& n, std::coroutine_handle<> h, const char* call) {
  TaskHeader* t = tl_current_task;
  if (t == nullptr) [[unlikely]] throw_not_in_task(call);
  n.task = t;
  n.frame = h;
#if TRPL_RECORDING
  TaskCore& c = t->core();
  n.waits_next = c.waits_head;
  c.waits_head = &n;
#endif
  n.state.store(WakeNode::kRegistered, std::memory_order_relaxed);
}

// Notifier side, after taking `n` out of whatever it waited in: queue its frame on its task.
// Returns the task when the caller must enqueue it (pass it to wake_after_unlock once any lock
// is released), else null. The node is not touched after the push.
[[nodiscard]] inline TaskHeader* fire(WakeNode& n) noexcept {
  TaskHeader* t = n.task;
  n.state.store(WakeNode::kQueued, std::memory_order_relaxed);
  std::uintptr_t s = t->sched.load(std::memory_order_relaxed);
  for (;;) {
    n.next = TaskHeader::stack_of(s);
    const bool idle =
        (s & (TaskHeader::kScheduled | TaskHeader::kRunning | TaskHeader::kComplete)) == 0;
    const std::uintptr_t ns = reinterpret_cast<std::uintptr_t>(&n) | (s & TaskHeader::kFlags) |
                              (idle ? TaskHeader::kScheduled : 0);
    if (t->sched.compare_exchange_weak(s, ns, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      return idle ? t : nullptr;
    }
  }
}
// The lock-based notifiers' name for it (they call it under their lock).
[[nodiscard]] inline TaskHeader* fire_locked(WakeNode& n) noexcept { return fire(n); }
inline void wake_after_unlock(TaskHeader* t) noexcept {
  if (t != nullptr) enqueue_woken(t);
}

// Owner side: the node is no longer waited on (resumed, or taken back from its wait
// structure): back to idle, off the task's list of waits. `t` is n's task.
inline void disarm(TaskHeader* t, WakeNode& n) noexcept {
#if TRPL_RECORDING
  // A stack: the node is almost always on top (one wait per task); join children walk a few.
  TaskCore& c = t->core();
  if (c.waits_head == &n) [[likely]] {
    c.waits_head = n.waits_next;
  } else {
    WakeNode** link = &c.waits_head;
    while (*link != &n && *link != nullptr) link = &(*link)->waits_next;
    if (*link == &n) *link = n.waits_next;
  }
#else
  (void)t;
#endif
  n.state.store(WakeNode::kIdle, std::memory_order_relaxed);
}
inline void disarm(WakeNode& n) noexcept { disarm(n.task, n); }

// Owner side: forget a node a notifier queued (or is queueing) on the current task. The push
// may still be in flight: drain the wake stack until the node is on the ready list.
inline void cancel_queued(WakeNode& n) noexcept {
  TaskCore& c = n.task->core();
  for (unsigned spins = 0; !n.in_ready; spin_pause(spins)) c.drain_wakes();
  c.unlink_ready(&n);
  disarm(n);
}

// Owner side, in an awaiter's destructor, holding the wait structure's lock: if the node is
// still registered, `unlink` takes it out; if a notifier already queued it, it is taken off
// the task's ready list. Either way nothing will resume the frame.
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
