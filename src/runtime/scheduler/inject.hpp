// InjectQueue: an intrusive, unbounded, lock-free run queue that any thread pushes onto and one
// consumer at a time pops (Vyukov's MPSC queue): the multi_thread runtime's global queue for
// spawns and wakes from outside the workers, and the queue of wakes that reach a current_thread
// runtime or a block_on thread from other threads.
#pragma once

#include <atomic>

#include "trpl/detail/task_header.hpp"

namespace trpl::detail {

// push: one exchange on `tail_`, then a release store linking the previous node (wait-free).
// pop: no atomic read-modify-write unless the queue is down to its last node. Between a
// pusher's two steps the queue holds a node the consumer cannot reach yet: pop() returns null
// and maybe_nonempty() stays true, so a consumer that is about to sleep looks again instead
// (the pusher wakes someone only after linking).
class InjectQueue {
 public:
  InjectQueue() noexcept : head_(&stub_), tail_(&stub_) {}
  InjectQueue(const InjectQueue&) = delete;
  InjectQueue& operator=(const InjectQueue&) = delete;

  // Any thread. `t` is SCHEDULED and on no other queue.
  void push(TaskHeader* t) noexcept { push_link(&t->core()); }

  // The consumer only (callers serialise consumers themselves).
  TaskHeader* pop() noexcept {
    QueueLink* head = head_;
    QueueLink* next = head->queue_next.load(std::memory_order_acquire);
    if (head == &stub_) {
      if (next == nullptr) return nullptr;
      head_ = head = next;
      next = next->queue_next.load(std::memory_order_acquire);
    }
    if (next != nullptr) {
      head_ = next;
      return task_of(head);
    }
    if (tail_.load(std::memory_order_acquire) != head) return nullptr;  // a push in flight
    push_link(&stub_);
    next = head->queue_next.load(std::memory_order_acquire);
    if (next == nullptr) return nullptr;  // another push slipped in before the stub
    head_ = next;
    return task_of(head);
  }

  // Any thread; a hint (exact once pushes have finished): something was pushed and not popped.
  bool maybe_nonempty() const noexcept {
    return tail_.load(std::memory_order_acquire) != &stub_ ||
           stub_.queue_next.load(std::memory_order_acquire) != nullptr;
  }

 private:
  static TaskHeader* task_of(QueueLink* l) noexcept { return static_cast<TaskCore*>(l)->header; }
  void push_link(QueueLink* n) noexcept {
    n->queue_next.store(nullptr, std::memory_order_relaxed);
    QueueLink* prev = tail_.exchange(n, std::memory_order_acq_rel);
    prev->queue_next.store(n, std::memory_order_release);
  }

  QueueLink* head_;  // the consumer's
  QueueLink stub_;
  alignas(64) std::atomic<QueueLink*> tail_;
};

}  // namespace trpl::detail
