// The runtime's narrow interface for the headers above it (time, sync, combinators): which
// runtime and task this thread runs, spawning a prepared task, the clock, and drivers.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>

#include "trpl/detail/task_header.hpp"

namespace trpl::detail {

class RuntimeCore;
using Clock = std::chrono::steady_clock;

// The runtime whose task or block_on loop runs on this thread (null elsewhere).
inline thread_local RuntimeCore* tl_runtime = nullptr;

// The runtime of this thread, or a trpl::Error naming `call` when there is none.
RuntimeCore& current_runtime(const char* call);

// Hands a prepared task (root created, not started) to the runtime: registers and schedules
// it. The registry takes the reference the cell keeps for it; the caller keeps the other.
void spawn_prepared(RuntimeCore& rt, TaskHeader* t);
// Runs `main` as the block_on future on this thread until it completes.
void block_on_prepared(RuntimeCore& rt, TaskHeader* main);
// Asks for `t` to be cancelled (any thread): its frames are destroyed at its next run.
void abort_task(TaskHeader* t) noexcept;

// The runtime's clock: real time, or virtual time under start_paused.
Clock::time_point runtime_now(RuntimeCore& rt) noexcept;
// Timer/I/O drivers plug into the runtime through this interface; the runtime's idle thread
// parks until the earliest deadline of any driver and then lets each process what is due.
class Driver {
 public:
  virtual ~Driver() = default;
  // The earliest instant at which process() has something to do, if any.
  virtual std::optional<Clock::time_point> next_deadline() = 0;
  // Fires whatever is due at `now`. Called by the parked driving thread and, every few dozen
  // task runs, by busy workers too: it must be safe to call from several threads at once.
  virtual void process(Clock::time_point now) = 0;
  // How many registrations could still wake a task (for the deadlock report).
  virtual std::size_t pending() = 0;
};
enum class DriverKind : unsigned { timer = 0, count };
// The runtime's driver of `kind`, created by `make` on first use (first caller wins).
Driver& driver(RuntimeCore& rt, DriverKind kind, std::unique_ptr<Driver> (*make)(RuntimeCore&));
// A driver tells the runtime it has a new earliest deadline, so a parked driving thread
// wakes up in time.
void deadline_changed(RuntimeCore& rt, Clock::time_point deadline) noexcept;

}  // namespace trpl::detail
