// RuntimeCore: construction, spawning and queueing, block_on (the block_on thread's loop of a
// multi_thread runtime lives here), drivers and the clock, shutdown; and trpl::Runtime.
#include <algorithm>
#include <cassert>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <thread>
#include <vector>

#include "runtime/runtime_core.hpp"
#include "runtime/scheduler/current_thread.hpp"
#include "runtime/scheduler/multi_thread/worker.hpp"
#include "trpl/error.hpp"

namespace trpl::detail {

namespace {
// How long the block_on thread spins for its next wake before it sleeps.
constexpr auto kMainSpin = std::chrono::microseconds(5);
using H = TaskHeader;
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
void enqueue_woken(TaskHeader* t) noexcept {
  // t is SCHEDULED and not RUNNING: it cannot complete before it is run, so its core is alive.
  t->core().rt->enqueue(t, EnqueueKind::woken);
}
void abort_task(TaskHeader* t) noexcept {
  t->life.fetch_or(H::kCancelled, std::memory_order_acq_rel);
  std::uintptr_t s = t->sched.load(std::memory_order_relaxed);
  for (;;) {
    if (s & H::kComplete) return;
    if (t->sched.compare_exchange_weak(s, s | H::kScheduled, std::memory_order_acq_rel,
                                       std::memory_order_relaxed)) {
      break;
    }
  }
  // Idle: we scheduled it, so we queue it; otherwise its runner (or queue) sees the flag.
  if ((s & (H::kScheduled | H::kRunning)) == 0) enqueue_woken(t);
}
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

RuntimeCore::RuntimeCore(const RuntimeConfig& config) : config_(config) {
  if (config_.multi_thread) {
    std::size_t n = config_.worker_threads;
    if (n == 0) n = std::max(1u, std::thread::hardware_concurrency());
    mt_ = std::make_unique<MultiThread>(*this, n);
    mt_->start();
  } else {
    ct_ = std::make_unique<CurrentThread>(*this);
  }
  register_runtime(this);
  if (config_.dump_signal != 0) install_dump_signal(config_.dump_signal);
}

RuntimeCore::~RuntimeCore() = default;

Clock::time_point RuntimeCore::now() const noexcept {
  if (config_.start_paused) {
    return origin_ + std::chrono::nanoseconds(paused_ns_.load(std::memory_order_acquire));
  }
  return Clock::now();
}

std::int64_t RuntimeCore::clock_ns(Clock::time_point tp) const noexcept {
  return std::chrono::duration_cast<std::chrono::nanoseconds>(tp.time_since_epoch()).count();
}

void RuntimeCore::advance_paused_clock(Clock::time_point tp) noexcept {
  const std::int64_t target =
      std::chrono::duration_cast<std::chrono::nanoseconds>(tp - origin_).count();
  if (target > paused_ns_.load(std::memory_order_relaxed)) {
    paused_ns_.store(target, std::memory_order_release);
  }
}

TaskList& RuntimeCore::spawn_list() noexcept {
  if (mt_) {
    if (Worker* w = mt_->this_worker()) return w->spawned;
  }
  if (tl_runtime == this) return main_list_;  // the block_on (or current_thread loop) thread
  return shared_list_;
}

void RuntimeCore::spawn(TaskHeader* t) {
  spawn_list().push(t, ids_);
  if (closing_.load(std::memory_order_acquire)) {
    // The runtime is shutting down: the task is cancelled before it ever runs, as tokio does.
    claim_scheduled(t);
    cancel_claimed(t);
    return;
  }
  enqueue(t, EnqueueKind::spawned);
}

void RuntimeCore::enqueue(TaskHeader* t, EnqueueKind kind) noexcept {
  // A thread that is not this runtime's own (a worker, the block_on thread, the shutdown
  // thread) counts itself in: shutdown waits for it to be done with this object.
  const bool outside = tl_runtime != this;
  if (outside) outside_pushers_.fetch_add(1, std::memory_order_seq_cst);
  if (t->core().pinned) {
    main_queue_.push(t);
    main_parker_.unpark();
  } else if (mt_) {
    mt_->schedule(t, kind);
  } else {
    ct_->schedule(t);
  }
  if (outside) outside_pushers_.fetch_sub(1, std::memory_order_seq_cst);
}

std::uint64_t RuntimeCore::total_runs() const noexcept {
  const std::uint64_t sched = mt_ ? mt_->runs() : ct_->runs();
  return sched + main_runs_.load(std::memory_order_relaxed);
}

// ---- block_on ----

void RuntimeCore::block_on(TaskHeader* main) {
  auto refuse = [&](const char* problem, const char* fix) {
    main->ops->destroy_core(main, true);  // never ran: nothing registered
    main->unref();  // "alive": it never was
    throw_error("block_on", problem, fix);
  };
  if (tl_runtime != nullptr) {
    refuse("called on a thread that is already running a trpl runtime",
           "Inside async code, co_await the operation instead of blocking on it");
  }
  if (blocking_.exchange(true, std::memory_order_acq_rel)) {
    refuse("this runtime is already blocking on a future on another thread",
           "Run one block_on at a time per Runtime, or spawn the second future as a task");
  }
  main->core().pinned = mt_ != nullptr;
  tl_runtime = this;
  struct Reset {
    RuntimeCore* rt;
    ~Reset() {
      tl_runtime = nullptr;
      rt->main_idle_.store(true, std::memory_order_release);
      rt->blocking_.store(false, std::memory_order_release);
    }
  } reset{this};
  main_idle_.store(false, std::memory_order_release);
  spawn(main);
  if (ct_) {
    ct_->run(main);
  } else {
    run_main_loop(main);
  }
  if (!main->is_complete()) raise_deadlock(main);
}

void RuntimeCore::run_main_loop(TaskHeader* main) {
  while (!main->is_complete() && !deadlock_raised()) {
    if (TaskHeader* t = main_queue_.pop()) {
      run_task(t);
      main_runs_.store(main_runs_.load(std::memory_order_relaxed) + 1, std::memory_order_relaxed);
      continue;
    }
    // Spin for about one futex round trip: the next wake is often that close.
    const auto until = std::chrono::steady_clock::now() + kMainSpin;
    bool found = false;
    for (unsigned i = 1; !found; ++i) {
#if defined(__x86_64__) || defined(__i386__)
      __builtin_ia32_pause();
#endif
      found = main_queue_.maybe_nonempty();
      if (i % 16 == 0 && std::chrono::steady_clock::now() >= until) break;
    }
    if (found) continue;
    main_idle_.store(true, std::memory_order_seq_cst);
    if (!main_queue_.maybe_nonempty() && !main->is_complete() && !deadlock_raised()) {
      main_parker_.park();  // a push's unpark() that came first makes this return at once
    }
    main_idle_.store(false, std::memory_order_seq_cst);
  }
}

void RuntimeCore::raise_deadlock(TaskHeader* main) {
  // DeadlockPolicy::raise: cancel the stuck future here (its frames belong to this thread),
  // then throw the report.
  std::string report = take_deadlock_report();
  abort_task(main);
  while (!main->is_complete()) {
    TaskHeader* t = main_queue_.pop();
    if (t == nullptr && ct_) t = ct_->pop_any();
    if (t != nullptr) {
      run_task(t);
    } else {
      std::this_thread::yield();
    }
  }
  throw Deadlock(report);
}

std::string RuntimeCore::take_deadlock_report() {
  std::lock_guard lk(deadlock_mu_);
  deadlock_raised_.store(false, std::memory_order_release);
  return std::exchange(deadlock_report_, std::string());
}

// ---- drivers ----

void RuntimeCore::drive() {
  const Clock::time_point t = now();
  for (auto& slot : drivers_) {
    if (Driver* d = slot.load(std::memory_order_acquire)) d->process(t);
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

std::size_t RuntimeCore::pending_wakeups() {
  std::size_t n = 0;
  for (auto& slot : drivers_) {
    if (Driver* d = slot.load(std::memory_order_acquire)) n += d->pending();
  }
  return n;
}

void RuntimeCore::deadline_changed(Clock::time_point deadline) noexcept {
  const std::int64_t ns = clock_ns(deadline);
  if (mt_) mt_->deadline_changed(ns);
  else ct_->deadline_changed(ns);
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

// ---- shutdown ----

void RuntimeCore::cancel_everything() {
  for (unsigned spins = 0;;) {
    bool progressed = false;
    // Whatever is queued was scheduled: popping it makes it ours.
    for (;;) {
      TaskHeader* t = main_queue_.pop();
      if (t == nullptr) t = mt_ ? mt_->pop_any() : ct_->pop_any();
      if (t == nullptr) break;
      claim_scheduled(t);
      cancel_claimed(t);
      progressed = true;
    }
    // Then every live task that sits on no queue. Destructors run now and may wake, spawn
    // or cancel others: loop until none is left.
    std::vector<TaskHeader*> live;
    for_each_list([&](TaskList& l) {
      l.for_each_live([&](TaskHeader* t) {
        t->ref();
        live.push_back(t);
      });
    });
    if (live.empty() && !main_queue_.maybe_nonempty() &&
        !(mt_ ? mt_->maybe_has_queued() : ct_->maybe_has_queued())) {
      return;
    }
    for (TaskHeader* t : live) {
      if (claim_idle(t)) {
        cancel_claimed(t);
        progressed = true;
      }
      t->unref();
    }
    // A task scheduled by a thread outside that has not pushed it yet: wait for the push.
    if (!progressed) spin_pause(spins);
  }
}

void RuntimeCore::shutdown() {
  unregister_runtime(this);  // no dump_tasks() starts on us any more
  if (config_.dump_signal != 0) remove_dump_signal(config_.dump_signal);
  if (mt_) mt_->stop();  // whatever they had queued stays queued
  closing_.store(true, std::memory_order_seq_cst);
  RuntimeCore* const outer = tl_runtime;
  tl_runtime = this;
  cancel_everything();
  tl_runtime = outer;
  // Every task is complete, so no push of ours is pending; outside threads still inside
  // enqueue() leave it now.
  for (unsigned spins = 0; outside_pushers_.load(std::memory_order_seq_cst) != 0;) spin_pause(spins);
  for (auto& slot : drivers_) delete slot.exchange(nullptr, std::memory_order_acq_rel);
  delete this;
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
