// Diagnostics: dump_tasks() (what every task is doing and where it waits), the deadlock
// report's policy and its exception. See docs/debugging.md.
#pragma once

#include <string>

#include "trpl/error.hpp"

namespace trpl {

// What a runtime does when every task waits and nothing inside it can wake one.
enum class DeadlockPolicy {
  report,  // print the report on stderr once and keep waiting (the book's 17-10 never exits)
  raise,   // block_on cancels its future and throws trpl::Deadlock carrying the report (tests)
};

// Thrown by block_on under DeadlockPolicy::raise. what() is the whole report.
class Deadlock : public Error {
 public:
  using Error::Error;
};

// A readable report of every live task of every runtime in this process: its id, name, where
// it was spawned, whether it runs, is ready, or waits — and for each wait, on what (sleep,
// channel recv with the number of live senders, join handle of task N) and at which line.
// Callable from any thread, inside or outside a runtime. Tasks running at that moment are
// reported as running (only their own thread may look at their frames).
std::string dump_tasks();

}  // namespace trpl
