// WakeNode: the registration a suspended leaf awaitable (timer, channel, join handle) leaves
// with whatever will wake it. Notifying it queues its frame on its task; the owner can always
// cancel it.
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
//   idle --arm (owner)--> registered
//   registered --fire (the one notifier that took the node out of its wait structure)--> queued
//   queued --the owner's run loop pops it--> idle, then the frame is resumed
// fire() stores `queued`, then pushes the node onto its task's wake stack (one CAS on the
// task's state word); after that push it never touches the node again. Only the owner (the
// thread holding the task's RUNNING state) leaves idle, pops the ready list or destroys the
// frame. So the awaiter's destructor (run by the owner): idle -> nothing; registered -> take
// the node back from the wait structure (under its lock, or by a CAS that the notifier would
// otherwise win); if a notifier won, the node is or soon will be on the task's wake stack:
// cancel_queued() drains that stack until the node shows up (a bounded wait: the notifier is
// between two instructions) and unlinks it from the ready list. Nothing resumes a destroyed
// frame, and no notifier touches a node after its push.
//
// 8-byte aligned (its pointers): the task's state word keeps 3 flags in the stack head's low bits.
struct WakeNode {
  enum State : std::uint8_t { kIdle, kRegistered, kQueued };

  WakeNode* next = nullptr;  // wait-structure link, then wake stack / ready list link
  WakeNode* prev = nullptr;
  std::coroutine_handle<> frame;
  TaskHeader* task = nullptr;
  std::atomic<std::uint8_t> state{kIdle};
  bool in_ready = false;  // on the owner's ready list (owner only)
  // Diagnostics (read by dump_tasks while it holds the task, so never concurrently with the
  // owner): what the frame waits on, where, and what `kind->describe` looks at.
  const struct WaitKind* kind = nullptr;
  std::source_location where{};  // set by the awaiter when made (line 0: no location)
  const void* context = nullptr;
  WakeNode* waits_next = nullptr;  // the owning task's stack of armed nodes (owner only)

  WakeNode() = default;
  WakeNode(const WakeNode&) = delete;
  WakeNode& operator=(const WakeNode&) = delete;

  std::uint8_t load_state() const noexcept { return state.load(std::memory_order_acquire); }
};

// Records what a node waits on, for dump_tasks: two pointer stores per suspension (where it
// waits was stored in the node when its awaiter was made).
inline void note_wait(WakeNode& n, const WaitKind& kind, const void* context = nullptr) noexcept {
#if TRPL_RECORDING
  n.kind = &kind;
  n.context = context;
#else
  (void)n, (void)kind, (void)context;
#endif
}

}  // namespace trpl::detail
