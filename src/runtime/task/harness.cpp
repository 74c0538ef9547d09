// The task lifecycle both schedulers share: running a task's ready frames (run_task), giving
// way, going idle, and finishing — destroying the frames, publishing the output, waking the
// joiner. The state word's transitions are described in trpl/detail/task_header.hpp.
#include <cassert>

#include "runtime/runtime_core.hpp"
#include "trpl/detail/task_cell.hpp"
#include "trpl/task.hpp"

namespace trpl::detail {

namespace {
// A task that keeps being woken while it runs gives way to the others after this many resumes.
constexpr int kRunBudget = 128;

using H = TaskHeader;

// The thread-locals of "this thread runs task t's frames", restored on every way out.
struct RunningTask {
  explicit RunningTask(TaskHeader* t) noexcept
      : outer_task(tl_current_task), outer_trampoline(tl_trampoline) {
    tl_current_task = t;
    tl_trampoline = &trampoline;
  }
  ~RunningTask() {
    tl_current_task = outer_task;
    tl_trampoline = outer_trampoline;
  }
  RunningTask(const RunningTask&) = delete;
  TaskHeader* const outer_task;
  Trampoline* const outer_trampoline;
  Trampoline trampoline;
};

}  // namespace

void RuntimeCore::claim_scheduled(TaskHeader* t) noexcept {
  std::uintptr_t s = t->sched.load(std::memory_order_relaxed);
  while (!t->sched.compare_exchange_weak(s, H::kRunning,
                                         std::memory_order_acquire, std::memory_order_relaxed)) {
  }
  assert((s & H::kScheduled) && !(s & (H::kRunning | H::kComplete)));
  t->core().append_stack(H::stack_of(s));
}

void RuntimeCore::run_task(TaskHeader* t) noexcept {
  claim_scheduled(t);
  TaskCore& c = t->core();
  RunningTask running(t);
  int budget = kRunBudget;
  for (;;) {
    if (t->life.load(std::memory_order_acquire) & H::kCancelled) [[unlikely]] {
      finish(t, true);
      running.trampoline.drain();
      return;
    }
    if (WakeNode* n = c.pop_ready()) {
      disarm(t, *n);
      n->frame.resume();
    } else if (!c.started) [[unlikely]] {
      c.started = true;
      std::coroutine_handle<> root = t->ops->start(t);
      if (!root) {  // the operation could not even start: its error is the output
        finish(t, false);
        running.trampoline.drain();
        return;
      }
      root.resume();
    } else {
      // Nothing ready: go idle, unless a wake (or an abort) arrived since the last look.
      std::uintptr_t s = t->sched.load(std::memory_order_acquire);
      if (H::stack_of(s) != nullptr || (s & H::kScheduled)) {
        if (t->sched.compare_exchange_weak(s, H::kRunning,
                                           std::memory_order_acquire, std::memory_order_relaxed)) {
          c.append_stack(H::stack_of(s));
        }
        continue;
      }
#if TRPL_RECORDING
      c.idle_since_ms = static_cast<std::uint32_t>(coarse_now_ns() / 1'000'000);
#endif
      if (t->sched.compare_exchange_weak(s, s & ~H::kRunning, std::memory_order_release,
                                         std::memory_order_relaxed)) {
        return;
      }
      continue;
    }
    running.trampoline.drain();
    if (c.root.done()) {
      finish(t, false);
      running.trampoline.drain();
      return;
    }
    if (c.give_way || --budget == 0) [[unlikely]] {
      const bool more = c.ready_head != nullptr ||
                        H::stack_of(t->sched.load(std::memory_order_relaxed)) != nullptr;
      if (c.give_way || more) {
        // Give way: RUNNING -> SCHEDULED, then behind the ready work.
        c.give_way = false;
        std::uintptr_t s = t->sched.load(std::memory_order_relaxed);
        while (!t->sched.compare_exchange_weak(s, (s | H::kScheduled) & ~H::kRunning,
                                               std::memory_order_release, std::memory_order_relaxed)) {
        }
        enqueue(t, EnqueueKind::yielded);
        return;
      }
      budget = kRunBudget;
    }
  }
}

bool RuntimeCore::claim_idle(TaskHeader* t) noexcept {
  std::uintptr_t s = t->sched.load(std::memory_order_acquire);
  for (;;) {
    if ((s & (H::kScheduled | H::kRunning | H::kComplete)) != 0) return false;
    if (t->sched.compare_exchange_weak(s, s | H::kRunning, std::memory_order_acquire,
                                       std::memory_order_acquire)) {
      return true;
    }
  }
}

void RuntimeCore::cancel_claimed(TaskHeader* t) noexcept {
  RunningTask running(t);
  finish(t, true);
  running.trampoline.drain();
}

void RuntimeCore::finish(TaskHeader* t, bool cancelled) noexcept {
  // Off the registry while the core is still hot (dumps and shutdown stop seeing it).
  t->registry->remove(&t->core());
  // Destroying the root destroys every frame the task owns; their awaiters deregister through
  // the core, which is freed after them. A finished root's outcome moves into the cell first.
  t->ops->destroy_core(t, cancelled);
  if (cancelled) t->ops->set_cancelled(t, describe_task_name(t));
  std::uintptr_t s = t->sched.load(std::memory_order_relaxed);
  for (;;) {
    assert(H::stack_of(s) == nullptr && "a destroyed frame left a wake queued");
    if (t->sched.compare_exchange_weak(s, H::kComplete, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      break;
    }
  }
  // The join word (TaskHeader): wake the awaiting frame, or drop an output nobody will read.
  std::uintptr_t j = t->join.load(std::memory_order_acquire);
  for (;;) {
    if (j == H::kJoinDetached) {
      // Nobody will read the output, and no handle is left to race us for the word.
      t->ops->drop_output(t);
      t->join.store(H::kJoinDone | H::kJoinDetached, std::memory_order_release);
      break;
    }
    if (t->join.compare_exchange_weak(j, H::kJoinDone, std::memory_order_acq_rel,
                                      std::memory_order_acquire)) {
      if (j != 0) wake_after_unlock(fire(*reinterpret_cast<WakeNode*>(j)));  // not our cell
      break;
    }
  }
  t->unref();  // "alive": last, the cell may be freed now
}

}  // namespace trpl::detail
