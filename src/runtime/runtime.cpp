// RuntimeCore's implementation: task lifecycle (run, finish, cancel), both scheduler flavors,
// the driving of timers by whichever thread is idle, paused time, and shutdown.
#include "runtime/runtime_core.hpp"

#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>

#include "trpl/error.hpp"

namespace trpl::detail {

namespace {
// A task that keeps being woken while it runs gives way to the others after this many resumes.
constexpr int kRunBudget = 128;
// A thread that keeps finding tasks to run still fires due timers every this many task runs
// (tokio's event_interval).
constexpr int kDriveInterval = 61;

std::int64_t to_ns(Clock::duration d) {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(d).count();
}
}  // namespace

// ---- the narrow interface of runtime_context.hpp / task_header.hpp ----

RuntimeCore& current_runtime(const char* call) {
  if (tl_runtime == nullptr) {
    throw_error(call, "no trpl runtime is running on this thread",
                "Call it from async code inside trpl::run / Runtime::block_on, or use "
                "Runtime::spawn from outside");
  }
  return *tl_runtime;
}
void spawn_prepared(RuntimeCore& rt, TaskHeader* t) { rt.spawn(t); }
void block_on_prepared(RuntimeCore& rt, TaskHeader* main) { rt.block_on(main); }
void schedule(TaskHeader* t) noexcept {
  // The state word is checked before the runtime is touched: a completed task's runtime may
  // already be shut down.
  std::uint64_t prev = t->state.fetch_or(TaskHeader::kScheduled, std::memory_order_acq_rel);
  if (prev & (TaskHeader::kScheduled | TaskHeader::kRunning | TaskHeader::kComplete)) return;
  t->rt->schedule(t);
}
void abort_task(TaskHeader* t) noexcept {
  std::uint64_t prev = t->state.fetch_or(TaskHeader::kCancelled, std::memory_order_acq_rel);
  if (!(prev & TaskHeader::kComplete)) schedule(t);
}
void retain_runtime(RuntimeCore* rt) noexcept { rt->retain(); }
void release_runtime(RuntimeCore* rt) noexcept { rt->release(); }
Clock::time_point runtime_now(RuntimeCore& rt) noexcept { return rt.now(); }
Driver& driver(RuntimeCore& rt, DriverKind kind, std::unique_ptr<Driver> (*make)(RuntimeCore&)) {
  return rt.driver(kind, make);
}
void deadline_changed(RuntimeCore& rt, Clock::time_point deadline) noexcept {
  rt.deadline_changed(deadline);
}
void throw_not_in_task(const char* call) {
  throw_error(call, "awaited outside a trpl task",
              "Await it inside a coroutine run by trpl::run, Runtime::block_on or spawn_task");
}

RuntimeCore* make_runtime_core(const RuntimeConfig& config) { return new RuntimeCore(config); }

// ---- RuntimeCore ----

RuntimeCore::RuntimeCore(const RuntimeConfig& config) : config_(config), rng_state_(config.seed) {
  register_runtime(this);
  if (config_.dump_signal != 0) install_dump_signal(config_.dump_signal);
  if (config_.multi_thread) {
    std::size_t n = config_.worker_threads;
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    workers_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) workers_.emplace_back([this, i] { worker_main(i); });
  }
}

Clock::time_point RuntimeCore::now() const noexcept {
  if (config_.start_paused) {
    return origin_ + std::chrono::nanoseconds(paused_ns_.load(std::memory_order_acquire));
  }
  return Clock::now();
}

void RuntimeCore::register_task(TaskHeader* t) {
  t->id = next_id_.fetch_add(1, std::memory_order_relaxed);
  std::lock_guard lk(registry_mu_);
  t->registry_prev = nullptr;
  t->registry_next = registry_head_;
  if (registry_head_) registry_head_->registry_prev = t;
  registry_head_ = t;
}

void RuntimeCore::unregister_task(TaskHeader* t) noexcept {
  {
    std::lock_guard lk(registry_mu_);
    if (t->registry_prev) t->registry_prev->registry_next = t->registry_next;
    else registry_head_ = t->registry_next;
    if (t->registry_next) t->registry_next->registry_prev = t->registry_prev;
    t->registry_prev = t->registry_next = nullptr;
  }
  t->unref();  // "alive in the runtime"
}

void RuntimeCore::spawn(TaskHeader* t) {
  register_task(t);
  // The first wake (resume the root) is a wait like any other: queued, and recorded so the
  // dump can say the task has not run yet. Nobody else knows the task yet: no lock needed.
  static constexpr WaitKind kFirstRun{"its first run (spawned, not started yet)"};
  note_wait(t->start, kFirstRun, nullptr);
#if TRPL_RECORDING
  t->start.waits_next = t->waits_head;
  t->waits_head = &t->start;
#endif
  t->start.state.store(WakeNode::kQueued, std::memory_order_relaxed);
  t->push_wake(&t->start);
  bool closed;
  {
    std::lock_guard lk(mu_);
    closed = closed_;
  }
  if (closed) {
    // The runtime is gone: the task is cancelled before it ever runs, as tokio does.
    t->state.fetch_or(TaskHeader::kRunning | TaskHeader::kCancelled, std::memory_order_acq_rel);
    finish(t, true);
    return;
  }
  detail::schedule(t);
}

void RuntimeCore::schedule(TaskHeader* t) noexcept {
  t->ref();  // the run queue's
  push_runnable(t);
}

void RuntimeCore::push_runnable(TaskHeader* t) noexcept {
  if (t->pinned) {
    {
      std::lock_guard lk(main_mu_);
      main_queue_.push(t);
    }
    main_cv_.notify_one();
    return;
  }
  std::unique_lock lk(mu_);
  if (closed_) {
    lk.unlock();
    t->unref();
    return;
  }
  queue_.push(t);
  if (idle_ > 0) {
    lk.unlock();
    work_cv_.notify_one();
  } else if (driver_busy_) {
    lk.unlock();
    driver_cv_.notify_one();
  }
}

void RuntimeCore::run_task(TaskHeader* t) noexcept {
  std::uint64_t s = t->state.load(std::memory_order_acquire);
  for (;;) {
    if (s & TaskHeader::kComplete) {  // finished while queued (shutdown raced a wake)
      t->unref();
      return;
    }
    assert(!(s & TaskHeader::kRunning));
    if (t->state.compare_exchange_weak(s, (s & ~TaskHeader::kScheduled) | TaskHeader::kRunning,
                                       std::memory_order_acq_rel, std::memory_order_acquire)) {
      break;
    }
  }
  runs_.fetch_add(1, std::memory_order_relaxed);
  TaskHeader* const outer_task = tl_current_task;
  Trampoline* const outer_trampoline = tl_trampoline;
  Trampoline trampoline;
  tl_current_task = t;
  tl_trampoline = &trampoline;
  int budget = kRunBudget;
  for (;;) {
    if (s & TaskHeader::kCancelled) {
      finish(t, true);
      break;
    }
    if (WakeNode* n = t->pop_ready()) {
      disarm(t, *n);
      n->frame.resume();
      trampoline.drain();
      if (t->root.done()) {
        finish(t, false);
        break;
      }
      s = t->state.load(std::memory_order_acquire);
      if (--budget == 0 && (t->has_ready() || (s & TaskHeader::kScheduled))) {
        // Give way: back to the end of the queue, which keeps our reference.
        while (!t->state.compare_exchange_weak(
            s, (s | TaskHeader::kScheduled) & ~TaskHeader::kRunning, std::memory_order_acq_rel,
            std::memory_order_acquire)) {
        }
        tl_current_task = outer_task;
        tl_trampoline = outer_trampoline;
        push_runnable(t);
        return;
      }
      continue;
    }
    // Nothing ready: go idle, unless a wake arrived since the last look.
    s = t->state.load(std::memory_order_acquire);
    if (s & TaskHeader::kScheduled) {
      t->state.fetch_and(~TaskHeader::kScheduled, std::memory_order_acq_rel);
      s = t->state.load(std::memory_order_acquire);
      continue;
    }
#if TRPL_RECORDING
    t->idle_since_ns = coarse_now_ns_.load(std::memory_order_relaxed);
#endif
    if (t->state.compare_exchange_strong(s, s & ~TaskHeader::kRunning, std::memory_order_acq_rel,
                                         std::memory_order_acquire)) {
      break;
    }
  }
  tl_current_task = outer_task;
  tl_trampoline = outer_trampoline;
  t->unref();  // the run queue's
}

void RuntimeCore::finish(TaskHeader* t, bool cancelled) noexcept {
  if (t->start.load_state() == WakeNode::kQueued) cancel_queued(t->start);  // never ran
  if (t->root) {
    // Destroying the root destroys every frame the task owns; their awaiters deregister.
    std::coroutine_handle<> root = std::exchange(t->root, nullptr);
    root.destroy();
  }
  if (cancelled) t->set_cancelled();
  assert(!t->has_ready() && "a destroyed frame left a wake queued");
  t->join_lock.lock();
  std::uint64_t s = t->state.load(std::memory_order_relaxed);
  while (!t->state.compare_exchange_weak(
      s, (s | TaskHeader::kComplete) & ~(TaskHeader::kRunning | TaskHeader::kScheduled),
      std::memory_order_acq_rel, std::memory_order_relaxed)) {
  }
  WakeNode* waiter = std::exchange(t->join_waiter, nullptr);
  TaskHeader* waiter_task = waiter ? fire_locked(*waiter) : nullptr;
  t->join_lock.unlock();
  if (waiter_task) wake_after_unlock(waiter_task);
  unregister_task(t);
}

void RuntimeCore::block_on(TaskHeader* main) {
  if (tl_runtime != nullptr) {
    std::exchange(main->root, nullptr).destroy();
    main->unref();  // "alive": it never was
    throw_error("block_on", "called on a thread that is already running a trpl runtime",
                "Inside async code, co_await the operation instead of blocking on it");
  }
  main->pinned = config_.multi_thread;
  tl_runtime = this;
  struct Reset {
    ~Reset() { tl_runtime = nullptr; }
  } reset;
  spawn(main);
  if (!config_.multi_thread) {
    run_current_thread(main);
    std::unique_lock lk(mu_);
    if (!main->is_complete()) raise_deadlock(main, lk);
    return;
  }
  std::unique_lock lk(main_mu_);
  main_ = main;
  while (!main->is_complete() && deadlock_report_.empty()) {
    TaskHeader* t = main_queue_.pop();
    if (t == nullptr) {
      main_idle_ = true;
      main_cv_.wait(lk);
      main_idle_ = false;
      continue;
    }
    lk.unlock();
    run_task(t);
    lk.lock();
  }
  main_ = nullptr;
  if (!main->is_complete()) raise_deadlock(main, lk);
}

template <class Lock>
void RuntimeCore::raise_deadlock(TaskHeader* main, Lock& lk) {
  // DeadlockPolicy::raise: cancel the stuck future here (its frames belong to this thread),
  // then throw the report.
  std::string report = std::exchange(deadlock_report_, std::string());
  lk.unlock();
  std::uint64_t s = main->state.load(std::memory_order_acquire);
  while (!main->state.compare_exchange_weak(s, (s | TaskHeader::kRunning | TaskHeader::kCancelled) & ~TaskHeader::kScheduled,
                                            std::memory_order_acq_rel, std::memory_order_acquire)) {
  }
  TaskHeader* const outer_task = tl_current_task;
  tl_current_task = main;
  finish(main, true);
  tl_current_task = outer_task;
  throw Deadlock(report);
}

void RuntimeCore::run_and_drive(TaskHeader* t, int& runs_since_drive) {
  run_task(t);
  if (++runs_since_drive >= kDriveInterval) {  // busy tasks must not starve the timers
    runs_since_drive = 0;
    drive(now());
  }
}

void RuntimeCore::drive(Clock::time_point now) {
  for (auto& slot : drivers_) {
    if (Driver* d = slot.load(std::memory_order_acquire)) d->process(now);
  }
}

std::optional<Clock::time_point> RuntimeCore::next_deadline() {
  std::optional<Clock::time_point> earliest;
  for (auto& slot : drivers_) {
    if (Driver* d = slot.load(std::memory_order_acquire)) {
      if (auto nd = d->next_deadline(); nd && (!earliest || *nd < *earliest)) earliest = nd;
    }
  }
  return earliest;
}

void RuntimeCore::run_current_thread(TaskHeader* main) {
  std::unique_lock lk(mu_);
  int runs_since_drive = 0;
  while (!main->is_complete()) {
    if (TaskHeader* t = pop_runnable()) {
      lk.unlock();
      run_and_drive(t, runs_since_drive);
      lk.lock();
      continue;
    }
    driver_deadline_ns_.store(INT64_MIN, std::memory_order_relaxed);  // we are awake
    lk.unlock();
    const Clock::time_point now_tp = now();
    coarse_now_ns_.store(to_ns(now_tp - origin_), std::memory_order_relaxed);
    drive(now_tp);
    std::optional<Clock::time_point> next = next_deadline();
    lk.lock();
    if (!queue_.empty()) continue;
    if (config_.start_paused && next) {
      // Every task waits and a timer is armed: jump the virtual clock to it.
      std::int64_t target = to_ns(*next - origin_);
      std::int64_t cur = paused_ns_.load(std::memory_order_relaxed);
      if (target > cur) paused_ns_.store(target, std::memory_order_release);
      continue;
    }
    if (!park_deadline_settled(next)) continue;
    ++idle_;
    if (next && !config_.start_paused) {
      work_cv_.wait_until(lk, *next);
    } else {
      // Nothing inside the runtime can wake us: after the grace period, say so (once).
      const std::uint64_t runs = runs_.load(std::memory_order_relaxed);
      const std::uint64_t gen = deadline_gen_;
      bool woken = work_cv_.wait_for(lk, config_.deadlock_grace,
                                     [&] { return !queue_.empty() || gen != deadline_gen_; });
      if (!woken && reported_at_runs_ != runs && !main->is_complete()) {
        reported_at_runs_ = runs;
        --idle_;
        lk.unlock();
        report_deadlock();
        lk.lock();
        if (!deadlock_report_.empty()) return;  // raise: block_on throws
        ++idle_;
        work_cv_.wait(lk, [&] { return !queue_.empty(); });
      }
    }
    --idle_;
  }
}

TaskHeader* RuntimeCore::pop_runnable() noexcept {
  if (!config_.deterministic || queue_.empty()) return queue_.pop();
  // Seeded choice among the ready tasks: pick the k-th, keep the others' order.
  const std::size_t n = queue_.size();
  rng_state_ += 0x9E3779B97F4A7C15ull;
  std::uint64_t z = rng_state_;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  z ^= z >> 31;
  std::size_t k = static_cast<std::size_t>(z % n);
  TaskQueue rest;
  TaskHeader* chosen = nullptr;
  for (std::size_t i = 0; i < n; ++i) {
    TaskHeader* t = queue_.pop();
    if (i == k) chosen = t;
    else rest.push(t);
  }
  queue_ = rest;
  return chosen;
}

void RuntimeCore::worker_main(std::size_t /*index*/) {
  tl_runtime = this;
  std::unique_lock lk(mu_);
  int runs_since_drive = 0;
  for (;;) {
    if (stopping_) break;  // shutdown cancels whatever is still queued
    if (TaskHeader* t = pop_runnable()) {
      lk.unlock();
      run_and_drive(t, runs_since_drive);
      lk.lock();
      continue;
    }
    if (driver_busy_) {  // someone drives the timers: sleep until there is work
      ++idle_;
      work_cv_.wait(lk);
      --idle_;
      continue;
    }
    // Become the driving thread: fire what is due, then sleep until the next deadline.
    driver_busy_ = true;
    driver_deadline_ns_.store(INT64_MIN, std::memory_order_relaxed);
    lk.unlock();
    const Clock::time_point now_tp = now();
    coarse_now_ns_.store(to_ns(now_tp - origin_), std::memory_order_relaxed);
    drive(now_tp);
    std::optional<Clock::time_point> next = next_deadline();
    lk.lock();
    if (queue_.empty() && !stopping_ && park_deadline_settled(next)) {
      if (next) {
        driver_cv_.wait_until(lk, *next);
      } else {
        const std::uint64_t runs = runs_.load(std::memory_order_relaxed);
        const std::uint64_t gen = deadline_gen_;
        bool woken = driver_cv_.wait_for(lk, config_.deadlock_grace, [&] {
          return !queue_.empty() || stopping_ || gen != deadline_gen_;
        });
        if (!woken && idle_ + 1 == workers_.size() && reported_at_runs_ != runs &&
            runs_.load(std::memory_order_relaxed) == runs && main_is_idle()) {
          reported_at_runs_ = runs;
          lk.unlock();
          report_deadlock();
          lk.lock();
        }
      }
    }
    driver_busy_ = false;
    driver_deadline_ns_.store(INT64_MIN, std::memory_order_relaxed);
    // Another idle worker takes over the driving while this one runs tasks.
    if (idle_ > 0 && !queue_.empty()) work_cv_.notify_one();
  }
  tl_runtime = nullptr;
}

bool RuntimeCore::main_is_idle() {
  std::lock_guard lk(main_mu_);
  return main_queue_.empty() && (main_ == nullptr || main_idle_);
}

bool RuntimeCore::park_deadline_settled(std::optional<Clock::time_point>& next) {
  // Publish when we mean to wake, then look again: a timer registered before the publication
  // is seen here; one registered after it sees the publication and wakes us (deadline_changed).
  driver_deadline_ns_.store(next ? to_ns(next->time_since_epoch()) : INT64_MAX,
                            std::memory_order_seq_cst);
  std::optional<Clock::time_point> again = next_deadline();
  if (again && (!next || *again < *next)) {
    driver_deadline_ns_.store(INT64_MIN, std::memory_order_relaxed);
    return false;
  }
  return true;
}

void RuntimeCore::deadline_changed(Clock::time_point deadline) noexcept {
  // Only a thread parked past this deadline needs waking (INT64_MIN: it is awake and will
  // look at the deadlines again before parking, under mu_).
  std::int64_t parked_until = driver_deadline_ns_.load(std::memory_order_seq_cst);
  if (parked_until == INT64_MIN || to_ns(deadline.time_since_epoch()) >= parked_until) return;
  std::lock_guard lk(mu_);
  ++deadline_gen_;
  if (config_.multi_thread) {
    if (driver_busy_) driver_cv_.notify_one();
    else if (idle_ > 0) work_cv_.notify_one();
  } else {
    work_cv_.notify_one();
  }
}

Driver& RuntimeCore::driver(DriverKind kind, std::unique_ptr<Driver> (*make)(RuntimeCore&)) {
  auto& slot = drivers_[static_cast<std::size_t>(kind)];
  if (Driver* d = slot.load(std::memory_order_acquire)) return *d;
  std::lock_guard lk(drivers_mu_);
  if (Driver* d = slot.load(std::memory_order_acquire)) return *d;
  Driver* d = make(*this).release();
  slot.store(d, std::memory_order_release);
  return *d;
}

void RuntimeCore::shutdown() {
  {
    std::lock_guard lk(mu_);
    stopping_ = true;
  }
  work_cv_.notify_all();
  driver_cv_.notify_all();
  for (auto& w : workers_) w.join();
  workers_.clear();

  // No thread runs tasks any more: claim and cancel each live one here. Destructors run now
  // and may wake, spawn or cancel others; loop until none is left.
  RuntimeCore* const outer = tl_runtime;
  tl_runtime = this;
  for (;;) {
    TaskHeader* t;
    {
      std::lock_guard lk(registry_mu_);
      t = registry_head_;
      if (t) t->ref();
    }
    if (t == nullptr) break;
    t->state.fetch_or(TaskHeader::kRunning | TaskHeader::kCancelled, std::memory_order_acq_rel);
    TaskHeader* const outer_task = tl_current_task;
    Trampoline* const outer_trampoline = tl_trampoline;
    Trampoline trampoline;
    tl_current_task = t;
    tl_trampoline = &trampoline;
    finish(t, true);
    trampoline.drain();
    tl_current_task = outer_task;
    tl_trampoline = outer_trampoline;
    t->unref();
  }
  TaskQueue leftover;
  {
    std::lock_guard lk(mu_);
    closed_ = true;
    while (TaskHeader* t = queue_.pop()) leftover.push(t);
  }
  {
    std::lock_guard lk(main_mu_);
    while (TaskHeader* t = main_queue_.pop()) leftover.push(t);
  }
  while (TaskHeader* t = leftover.pop()) t->unref();
  for (auto& slot : drivers_) delete slot.exchange(nullptr, std::memory_order_acq_rel);
  tl_runtime = outer;
  if (config_.dump_signal != 0) remove_dump_signal(config_.dump_signal);
  unregister_runtime(this);
  release();
}

}  // namespace trpl::detail

namespace trpl {

Runtime::Builder& Runtime::Builder::deterministic(std::uint64_t seed) {
  config_.multi_thread = false;
  config_.start_paused = true;
  config_.deterministic = true;
  config_.seed = seed;
  if (const char* env = std::getenv("TRPL_SEED"); env != nullptr && *env != '\0') {
    char* end = nullptr;
    errno = 0;
    unsigned long long v = std::strtoull(env, &end, 0);
    if (end == nullptr || *end != '\0' || errno == ERANGE || std::strchr(env, '-') != nullptr) {
      detail::throw_error("Runtime::Builder::deterministic",
                          std::string("TRPL_SEED='") + env + "' is not a seed (a number from 0 to 2^64-1)",
                          "Set TRPL_SEED to the decimal seed a failing run printed");
    }
    config_.seed = v;
  }
  return *this;
}

std::string Runtime::dump_tasks() const { return core_ ? core_->dump() : std::string(); }
std::uint64_t Runtime::seed() const noexcept { return core_ ? core_->seed() : 0; }

Runtime::Builder& Runtime::Builder::worker_threads(std::size_t n) {
  if (n == 0) {
    detail::throw_error("Runtime::Builder::worker_threads", "0 worker threads cannot run anything",
                        "Pass at least 1, or leave it unset for one per hardware thread");
  }
  config_.worker_threads = n;
  return *this;
}

Runtime Runtime::Builder::build() const {
  if (config_.start_paused && config_.multi_thread) {
    detail::throw_error("Runtime::Builder::build", "start_paused(true) needs the current_thread flavor",
                        "Add .current_thread() to the builder (virtual time needs one thread to "
                        "know when every task is waiting)");
  }
  return Runtime(config_);
}

Runtime& Runtime::operator=(Runtime&& other) noexcept {
  if (this != &other) {
    if (core_) core_->shutdown();
    core_ = std::exchange(other.core_, nullptr);
  }
  return *this;
}

Runtime::~Runtime() {
  if (core_) core_->shutdown();
}

}  // namespace trpl
