// MultiThread: the work-stealing scheduler of a multi_thread runtime. Each Worker is a thread
// with a LocalQueue, a LIFO slot and a Parker; a global InjectQueue takes spawns and wakes from
// threads that are not workers; Idle decides who sleeps and who is woken.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <thread>
#include <vector>

#include "runtime/scheduler/enqueue.hpp"
#include "runtime/scheduler/inject.hpp"
#include "runtime/scheduler/multi_thread/idle.hpp"
#include "runtime/scheduler/multi_thread/local_queue.hpp"
#include "runtime/scheduler/parker.hpp"
#include "runtime/task/registry.hpp"

namespace trpl::detail {

class RuntimeCore;
class MultiThread;

struct Worker {
  Worker(MultiThread& s, std::size_t i) : sched(s), index(i), rng(0x9E3779B97F4A7C15ull * (i + 1)) {}

  MultiThread& sched;
  const std::size_t index;
  LocalQueue queue;
  // The task woken by the running task: it runs next, on this worker (not stealable), at
  // most kMaxLifoPolls times in a row; then it goes behind the others.
  TaskHeader* lifo = nullptr;
  bool lifo_spawned = false;  // the slot holds a task spawned (not woken) by the running one
  std::uint32_t lifo_polls = 0;
  std::uint32_t tick = 0;
  bool searching = false;       // counted as searching in Idle
  bool ran_since_park = false;  // spin before sleeping only right after running work
  std::uint64_t rng;
  std::uint64_t reported_at_runs = UINT64_MAX;  // deadlock reported once per episode (driver)
  std::atomic<std::uint64_t> runs{0};           // tasks run (owner stores; anyone reads)
  TaskList spawned;                             // the registry's share: tasks spawned here
  Parker parker;
  std::thread thread;
};

// The worker running on this thread (null elsewhere).
inline thread_local constinit Worker* tl_worker = nullptr;

class MultiThread {
 public:
  MultiThread(RuntimeCore& rt, std::size_t workers);
  ~MultiThread();
  void start();
  // Stops and joins the workers (shutdown; whatever is queued stays queued).
  void stop();

  // Any thread: queues `t` (SCHEDULED) where `kind` says (see LocalQueue), waking a worker if
  // none is looking for work.
  void schedule(TaskHeader* t, EnqueueKind kind) noexcept;
  // This thread's worker, if it is one of ours.
  Worker* this_worker() const noexcept {
    Worker* w = tl_worker;
    return w != nullptr && &w->sched == this ? w : nullptr;
  }
  // Shutdown (no worker runs): the next queued task anywhere, or null.
  TaskHeader* pop_any() noexcept;
  bool maybe_has_queued() const noexcept;
  void deadline_changed(std::int64_t deadline_ns) noexcept;
  std::uint64_t runs() const noexcept;
  template <class F>
  void for_each_worker(F&& f) {
    for (auto& w : workers_) f(*w);
  }

 private:
  void worker_main(Worker& w);
  TaskHeader* next_task(Worker& w) noexcept;
  TaskHeader* steal_work(Worker& w) noexcept;
  TaskHeader* pop_inject(Worker& w, bool batch) noexcept;
  void push_local(Worker& w, TaskHeader* t, bool back) noexcept;
  void notify_one() noexcept;
  bool work_visible(const Worker& w) const noexcept;
  bool spin_for_work(Worker& w) noexcept;
  void sleep(Worker& w);
  // The sleeping worker that holds the driver: waits for the next deadline, fires timers.
  void sleep_as_driver(Worker& w);

  RuntimeCore& rt_;
  std::vector<std::unique_ptr<Worker>> workers_;
  InjectQueue inject_;
  std::atomic<bool> inject_consumer_{false};  // one worker pops the inject queue at a time
  Idle idle_;
  std::atomic<bool> stopping_{false};
  std::atomic<bool> driver_taken_{false};     // a sleeping worker waits for the next deadline
  std::atomic<int> driver_worker_{-1};
  std::atomic<std::int64_t> driver_until_ns_{INT64_MIN};  // its wake-up time (MIN: awake)
};

}  // namespace trpl::detail
