// The current_thread scheduler's loop: run what is queued, fire due timers every
// kDriveInterval runs and whenever idle, jump paused time, sleep until the next deadline or an
// outside wake, and report a deadlock when nothing can ever wake a task.
#include "runtime/scheduler/current_thread.hpp"

#include <chrono>

#include "runtime/runtime_core.hpp"

namespace trpl::detail {

namespace {
// A loop that keeps finding tasks to run still fires due timers every this many task runs
// (tokio's event_interval).
constexpr int kDriveInterval = 61;
// The loop running on this thread (its own wakes need no atomics).
thread_local constinit CurrentThread* tl_loop = nullptr;
}  // namespace

CurrentThread::CurrentThread(RuntimeCore& rt) noexcept : rt_(rt), rng_state_(rt.seed()) {}

void CurrentThread::push_local(TaskHeader* t) noexcept {
  QueueLink* l = &t->core();
  l->queue_next.store(nullptr, std::memory_order_relaxed);
  if (tail_) tail_->queue_next.store(l, std::memory_order_relaxed); else head_ = l;
  tail_ = l;
  ++len_;
}

TaskHeader* CurrentThread::pop_local() noexcept {
  QueueLink* l = head_;
  if (l == nullptr) return nullptr;
  head_ = l->queue_next.load(std::memory_order_relaxed);
  if (head_ == nullptr) tail_ = nullptr;
  --len_;
  return static_cast<TaskCore*>(l)->header;
}

void CurrentThread::take_inject() noexcept {
  while (TaskHeader* t = inject_.pop()) push_local(t);
}

void CurrentThread::schedule(TaskHeader* t) noexcept {
  if (tl_loop == this) {
    push_local(t);
    return;
  }
  inject_.push(t);
  parker_.unpark();
}

TaskHeader* CurrentThread::pop_runnable() noexcept {
  if (inject_.maybe_nonempty()) take_inject();
  if (!rt_.config().deterministic || len_ <= 1) return pop_local();
  // Seeded choice among the ready tasks: take the k-th, keep the others' order.
  rng_state_ += 0x9E3779B97F4A7C15ull;
  std::uint64_t z = rng_state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  const std::size_t k = static_cast<std::size_t>(z % len_);
  QueueLink* prev = nullptr;
  QueueLink* l = head_;
  for (std::size_t i = 0; i < k; ++i) {
    prev = l;
    l = l->queue_next.load(std::memory_order_relaxed);
  }
  QueueLink* next = l->queue_next.load(std::memory_order_relaxed);
  if (prev) prev->queue_next.store(next, std::memory_order_relaxed); else head_ = next;
  if (tail_ == l) tail_ = prev;
  --len_;
  return static_cast<TaskCore*>(l)->header;
}

TaskHeader* CurrentThread::pop_any() noexcept {
  if (TaskHeader* t = pop_local()) return t;
  return inject_.pop();
}

void CurrentThread::deadline_changed(std::int64_t deadline_ns) noexcept {
  const std::int64_t until = parked_until_ns_.load(std::memory_order_seq_cst);
  if (until != INT64_MIN && deadline_ns < until) parker_.unpark();
}

void CurrentThread::run(TaskHeader* main) {
  CurrentThread* const outer = tl_loop;
  tl_loop = this;
  struct Reset {
    CurrentThread* outer;
    ~Reset() { tl_loop = outer; }
  } reset{outer};
  const bool paused = rt_.config().start_paused;
  int runs_since_drive = 0;
  while (!main->is_complete()) {
    if (TaskHeader* t = pop_runnable()) {
      rt_.run_task(t);
      runs_.store(runs_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      if (++runs_since_drive >= kDriveInterval) {  // busy tasks must not starve the timers
        runs_since_drive = 0;
        rt_.drive();
      }
      continue;
    }
    // Nothing queued: fire what is due, then sleep until the next deadline or a wake.
    parked_until_ns_.store(INT64_MIN, std::memory_order_relaxed);
    const Clock::time_point now = rt_.now();
    rt_.note_coarse_now(now);
    rt_.drive();
    if (len_ != 0 || inject_.maybe_nonempty()) continue;
    const std::optional<Clock::time_point> next = rt_.next_deadline();
    if (paused && next) {
      // Every task waits and a timer is armed: jump the virtual clock to it.
      rt_.advance_paused_clock(*next);
      continue;
    }
    // Publish when we mean to wake, then look again: a timer registered before the
    // publication is seen here; one registered after it sees the publication and wakes us.
    parked_until_ns_.store(next ? rt_.clock_ns(*next) : INT64_MAX, std::memory_order_seq_cst);
    if (const auto again = rt_.next_deadline(); again && (!next || *again < *next)) continue;
    if (inject_.maybe_nonempty()) continue;
    if (next && !paused) {
      parker_.park_for(*next - now);
      continue;
    }
    // Nothing inside the runtime can wake a task: after the grace period, say so (once).
    const std::uint64_t runs = runs_.load(std::memory_order_relaxed);
    const auto slept_from = Clock::now();
    parker_.park_for(rt_.config().deadlock_grace);
    const bool stuck = !inject_.maybe_nonempty() && !rt_.next_deadline() &&
                       Clock::now() - slept_from >= rt_.config().deadlock_grace;
    if (stuck && reported_at_runs_ != runs && !main->is_complete()) {
      reported_at_runs_ = runs;
      parked_until_ns_.store(INT64_MIN, std::memory_order_relaxed);
      rt_.report_deadlock();
      if (rt_.deadlock_raised()) return;  // block_on throws
    }
  }
  parked_until_ns_.store(INT64_MIN, std::memory_order_relaxed);
}

}  // namespace trpl::detail
