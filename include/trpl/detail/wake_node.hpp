// WakeNode: the registration a suspended leaf awaitable (timer, channel, join handle) leaves
// in a wait list. Notifying it queues its frame on its task; the owner can always cancel it.
#pragma once

#include <atomic>
#include <coroutine>
#include <cstdint>
#include <source_location>
#include <string>

// TRPL_RECORDING=0 compiles out what dump_tasks and the deadlock report read (where each frame
// waits, on what); the CMake option TRPL_RECORDING sets it for the library and its users alike.
#ifndef TRPL_RECORDING
#define TRPL_RECORDING 1
#endif

namespace trpl::detail {

struct TaskHeader;
struct WakeNode;

// What a kind of awaitable waits on, for dump_tasks: a name and an optional live detail
// ("2 senders alive"). One static instance per awaitable type.
struct WaitKind {
  const char* what;
  void (*describe)(const WakeNode&, std::string&) = nullptr;
};

// The protocol (DESIGN.md, "the hard race"). A node lives inside an awaiter, in the coroutine
// frame of the task that waits. Its `state` moves:
//   idle --arm (owner, under the wait list's lock)--> registered
//   registered --fire_locked (notifier, under the same lock, after unlinking)--> queued
//   queued --run loop pops it (owner)--> idle, then the frame is resumed
// The notifier pushes the node onto the task's wake stack while it still holds the wait list's
// lock, so an owner that takes the lock afterwards sees `queued` with the push complete. The
// awaiter's destructor (always run by the owner, rule 1) therefore: idle -> nothing (only the
// owner leaves idle); otherwise take the lock and, if still registered, unlink; if queued,
// remove the node from the task's ready list, which only the owner consumes. Nothing can
// resume a destroyed frame, and no notifier touches a node after its push.
struct WakeNode {
  enum State : std::uint8_t { kIdle, kRegistered, kQueued };

  WakeNode* next = nullptr;  // wait list link, then wake stack / ready list link
  WakeNode* prev = nullptr;
  std::coroutine_handle<> frame;
  TaskHeader* task = nullptr;
  std::atomic<std::uint8_t> state{kIdle};
  // Diagnostics (read by dump_tasks while it holds the task, so never concurrently with the
  // owner): what the frame waits on, where, and what `kind->describe` looks at.
  const struct WaitKind* kind = nullptr;
  const std::source_location* where = nullptr;
  const void* context = nullptr;
  WakeNode* waits_next = nullptr;  // the owning task's stack of armed nodes (owner only)

  WakeNode() = default;
  WakeNode(const WakeNode&) = delete;
  WakeNode& operator=(const WakeNode&) = delete;

  std::uint8_t load_state() const noexcept { return state.load(std::memory_order_acquire); }
};

// Records what a node waits on and where, for dump_tasks: three pointer stores per suspension.
inline void note_wait(WakeNode& n, const WaitKind& kind, const std::source_location* where,
                      const void* context = nullptr) noexcept {
#if TRPL_RECORDING
  n.kind = &kind;
  n.where = where;
  n.context = context;
#else
  (void)n, (void)kind, (void)where, (void)context;
#endif
}

}  // namespace trpl::detail
