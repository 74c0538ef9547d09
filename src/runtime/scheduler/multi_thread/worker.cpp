// The multi_thread scheduler's worker loop: where the next task comes from (LIFO slot, local
// queue, inject queue, other workers), the brief spin, and sleeping (one sleeper holds the
// timer driver and wakes at the next deadline; the deadlock report is made there).
#include "runtime/scheduler/multi_thread/worker.hpp"

#include <chrono>

#include "runtime/runtime_core.hpp"

namespace trpl::detail {

namespace {
// tokio's numbers: the inject queue is looked at first every kGlobalInterval ticks, the timers
// fired every kDriveInterval ticks; the LIFO slot runs at most kMaxLifoPolls times in a row.
constexpr std::uint32_t kGlobalInterval = 61;
constexpr std::uint32_t kDriveInterval = 61;
constexpr std::uint32_t kMaxLifoPolls = 3;
// Every kFrontInterval ticks (offset from the inject check) the worker runs its oldest local
// task instead of its newest, so the front of the queue cannot starve.
constexpr std::uint32_t kFrontInterval = 61;
constexpr std::uint32_t kFrontPhase = 31;
// How many tasks a worker takes from the inject queue at once (the first runs now).
constexpr int kInjectBatch = 64;
// How long a worker that just ran work spins before it sleeps: about one futex round trip.
constexpr auto kSpin = std::chrono::microseconds(5);

std::uint64_t next_random(std::uint64_t& s) noexcept {
  s ^= s << 13;
  s ^= s >> 7;
  s ^= s << 17;
  return s;
}
}  // namespace

MultiThread::MultiThread(RuntimeCore& rt, std::size_t n) : rt_(rt), idle_(n) {
  workers_.reserve(n);
  for (std::size_t i = 0; i < n; ++i) workers_.push_back(std::make_unique<Worker>(*this, i));
}

MultiThread::~MultiThread() { stop(); }

void MultiThread::start() {
  for (auto& w : workers_) {
    Worker* wp = w.get();
    w->thread = std::thread([this, wp] { worker_main(*wp); });
  }
}

void MultiThread::stop() {
  stopping_.store(true, std::memory_order_seq_cst);
  for (auto& w : workers_) w->parker.unpark();
  for (auto& w : workers_) {
    if (w->thread.joinable()) w->thread.join();
  }
}

// ---- queueing

void MultiThread::push_local(Worker& w, TaskHeader* t, bool back) noexcept {
  if (back ? w.queue.push_back(t) : w.queue.push_front(t)) return;
  if (w.queue.len() >= LocalQueue::kCapacity / 2) {
    // Full: the older half goes to the inject queue, where any worker finds it.
    w.queue.take_front_half([&](TaskHeader* o) { inject_.push(o); }, LocalQueue::kCapacity / 2);
    if (back ? w.queue.push_back(t) : w.queue.push_front(t)) return;
  }
  inject_.push(t);  // still no room, or a thief is copying the front
}

void MultiThread::schedule(TaskHeader* t, EnqueueKind kind) noexcept {
  if (Worker* w = this_worker()) {
    if (kind != EnqueueKind::yielded && tl_current_task != nullptr) {
      // Woken or spawned by the running task: it runs next, here (as tokio and Go do). The
      // slot is not stealable, so filling an empty one tells nobody: a chain of spawns or a
      // ping-pong pair stays on this worker instead of waking another per step.
      TaskHeader* prev = w->lifo;
      const bool prev_spawned = w->lifo_spawned;
      w->lifo = t;
      w->lifo_spawned = kind == EnqueueKind::spawned;
      if (prev == nullptr) return;
      // The displaced task: a spawn stays next in line (the back: depth first), a wake goes
      // behind the others.
      push_local(*w, prev, prev_spawned);
    } else {
      push_local(*w, t, kind == EnqueueKind::spawned);
    }
    notify_one();
    return;
  }
  inject_.push(t);
  notify_one();
}

void MultiThread::notify_one() noexcept {
  const int i = idle_.worker_to_wake();
  if (i >= 0) workers_[static_cast<std::size_t>(i)]->parker.unpark();
}

TaskHeader* MultiThread::pop_inject(Worker& w, bool batch) noexcept {
  if (!inject_.maybe_nonempty()) return nullptr;
  if (inject_consumer_.exchange(true, std::memory_order_acquire)) return nullptr;
  TaskHeader* first = inject_.pop();
  int moved = 0;
  if (first != nullptr && batch) {
    // The rest of the batch runs in the order it was pushed: each goes behind the previous.
    while (moved < kInjectBatch && w.queue.len() < LocalQueue::kCapacity / 2) {
      TaskHeader* t = inject_.pop();
      if (t == nullptr) break;
      if (!w.queue.push_front(t)) {
        push_local(w, t, false);
      }
      ++moved;
    }
  }
  inject_consumer_.store(false, std::memory_order_release);
  if (moved > 0) notify_one();
  return first;
}

TaskHeader* MultiThread::next_task(Worker& w) noexcept {
  ++w.tick;
  // Fairness first: now and then the inject queue, and the oldest local task.
  if (w.tick % kGlobalInterval == 0) {
    if (TaskHeader* t = pop_inject(w, false)) return t;
  }
  if (w.tick % kFrontInterval == kFrontPhase) {
    if (TaskHeader* t = w.queue.pop_front()) return t;
  }
  if (w.lifo != nullptr) {
    // A spawned task keeps its place (depth first); a woken one runs at most kMaxLifoPolls
    // times in a row, so a ping-pong pair cannot starve the rest.
    if (w.lifo_spawned || w.lifo_polls < kMaxLifoPolls) {
      ++w.lifo_polls;
      return std::exchange(w.lifo, nullptr);
    }
    // Enough in a row: behind the others. No wake-up for it: this worker is busy with it.
    push_local(w, std::exchange(w.lifo, nullptr), false);
  }
  w.lifo_polls = 0;
  if (TaskHeader* t = w.queue.pop_back()) return t;
  return pop_inject(w, true);
}

TaskHeader* MultiThread::steal_work(Worker& w) noexcept {
  if (!w.searching) {
    if (!idle_.try_start_searching()) return nullptr;
    w.searching = true;
  }
  const std::size_t n = workers_.size();
  const std::size_t start = static_cast<std::size_t>(next_random(w.rng) % n);
  for (std::size_t k = 0; k < n; ++k) {
    Worker& victim = *workers_[(start + k) % n];
    if (&victim == &w) continue;
    if (TaskHeader* t = victim.queue.steal_into(w.queue)) return t;
  }
  return pop_inject(w, true);
}

bool MultiThread::work_visible(const Worker& w) const noexcept {
  if (inject_.maybe_nonempty() || w.lifo != nullptr) return true;
  for (const auto& o : workers_) {
    if (!o->queue.empty()) return true;
  }
  return false;
}

TaskHeader* MultiThread::pop_any() noexcept {
  for (auto& w : workers_) {
    if (w->lifo != nullptr) return std::exchange(w->lifo, nullptr);
    if (TaskHeader* t = w->queue.pop_back()) return t;
  }
  return inject_.pop();
}

bool MultiThread::maybe_has_queued() const noexcept {
  for (const auto& w : workers_) {
    if (w->lifo != nullptr || !w->queue.empty()) return true;
  }
  return inject_.maybe_nonempty();
}

std::uint64_t MultiThread::runs() const noexcept {
  std::uint64_t n = 0;
  for (const auto& w : workers_) n += w->runs.load(std::memory_order_relaxed);
  return n;
}

void MultiThread::deadline_changed(std::int64_t deadline_ns) noexcept {
  const std::int64_t until = driver_until_ns_.load(std::memory_order_seq_cst);
  if (until == INT64_MIN || deadline_ns >= until) return;
  const int i = driver_worker_.load(std::memory_order_seq_cst);
  if (i >= 0) workers_[static_cast<std::size_t>(i)]->parker.unpark();
}

// ---- the loop

void MultiThread::worker_main(Worker& w) {
  tl_worker = &w;
  tl_runtime = &rt_;
  while (!stopping_.load(std::memory_order_acquire)) {
    TaskHeader* t = next_task(w);
    if (t == nullptr) t = steal_work(w);
    if (t == nullptr) {
      if (spin_for_work(w)) continue;
      sleep(w);
      continue;
    }
    if (w.searching) {
      // The last searcher to find work wakes another, so work keeps spreading.
      w.searching = false;
      if (idle_.stop_searching()) notify_one();
    }
    rt_.run_task(t);
    w.ran_since_park = true;
    w.runs.store(w.runs.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
    if (w.tick % kDriveInterval == 0) rt_.drive();  // busy workers must not starve the timers
  }
  if (w.searching) {
    w.searching = false;
    idle_.stop_searching();
  }
  tl_worker = nullptr;
  tl_runtime = nullptr;
}

bool MultiThread::spin_for_work(Worker& w) noexcept {
  if (!w.ran_since_park) return false;
  w.ran_since_park = false;
  const auto until = std::chrono::steady_clock::now() + kSpin;
  for (unsigned i = 1;; ++i) {
#if defined(__x86_64__) || defined(__i386__)
    __builtin_ia32_pause();
#endif
    if (work_visible(w) || stopping_.load(std::memory_order_relaxed)) return true;
    if (i % 16 == 0 && std::chrono::steady_clock::now() >= until) return false;
  }
}

void MultiThread::sleep(Worker& w) {
  const bool was_searching = std::exchange(w.searching, false);
  if (idle_.go_to_sleep(w.index, was_searching) && work_visible(w)) {
    // The last searcher must not leave work behind: look again.
    if (idle_.wake_self(w.index, false)) return;
    w.searching = true;  // a pusher woke us meanwhile (we are counted searching)
    return;
  }
  for (;;) {
    if (stopping_.load(std::memory_order_acquire)) {
      if (!idle_.wake_self(w.index, false)) w.searching = true;
      return;
    }
    if (!driver_taken_.exchange(true, std::memory_order_acquire)) {
      driver_worker_.store(static_cast<int>(w.index), std::memory_order_seq_cst);
      sleep_as_driver(w);
      driver_worker_.store(-1, std::memory_order_seq_cst);
      driver_taken_.store(false, std::memory_order_release);
    } else {
      w.parker.park();
    }
    if (!idle_.is_asleep(w.index)) {
      w.searching = true;  // a pusher woke us and counted us searching
      return;
    }
    if (!w.queue.empty() || work_visible(w)) {
      // The timers we fired queued work here, or work appeared: get up by ourselves.
      if (!idle_.wake_self(w.index, false)) w.searching = true;
      return;
    }
  }
}

void MultiThread::sleep_as_driver(Worker& w) {
  for (;;) {
    driver_until_ns_.store(INT64_MIN, std::memory_order_seq_cst);
    const Clock::time_point now = rt_.now();
    rt_.note_coarse_now(now);
    rt_.drive();  // fires into our queue (we are a worker running no task: behind the others)
    if (!w.queue.empty() || stopping_.load(std::memory_order_acquire) || !idle_.is_asleep(w.index)) return;
    const std::optional<Clock::time_point> next = rt_.next_deadline();
    // Publish when we mean to wake, then look again (see CurrentThread::run).
    driver_until_ns_.store(next ? rt_.clock_ns(*next) : INT64_MAX, std::memory_order_seq_cst);
    if (const auto again = rt_.next_deadline(); again && (!next || *again < *next)) continue;
    if (next) {
      w.parker.park_for(*next - now);
      driver_until_ns_.store(INT64_MIN, std::memory_order_seq_cst);
      if (rt_.now() < *next) return;  // woken early: let the caller see why
      continue;                      // due: fire it
    }
    // No timer at all: after the grace period, if every worker and the block_on thread still
    // sleep and nothing ran, nothing inside the runtime can wake a task.
    const std::uint64_t runs = rt_.total_runs();
    const auto slept_from = Clock::now();
    w.parker.park_for(rt_.config().deadlock_grace);
    driver_until_ns_.store(INT64_MIN, std::memory_order_seq_cst);
    const bool stuck = Clock::now() - slept_from >= rt_.config().deadlock_grace &&
                       idle_.awake() == 0 && rt_.main_is_idle() && !work_visible(w) &&
                       !rt_.next_deadline() && rt_.total_runs() == runs;
    if (stuck && w.reported_at_runs != runs) {
      w.reported_at_runs = runs;
      rt_.report_deadlock();
    }
    return;
  }
}

}  // namespace trpl::detail
