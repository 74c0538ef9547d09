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
// (the pusher wakes someone only after linking). The queue is empty exactly when head_ and
// tail_ are both the stub and the stub links nothing: after pop() re-inserts the stub behind
// a push that raced it, head_ is a real node while tail_ is the stub again, so the hint looks
// at head_ too (found by tests/runtime/inject_queue_stress_test.cpp).
class InjectQueue {
 public:
  InjectQueue() noexcept : head_(&stub_), tail_(&stub_) {}
  InjectQueue(const InjectQueue&) = delete;
  InjectQueue& operator=(const InjectQueue&) = delete;

  // Any thread. `t` is SCHEDULED and on no other queue.
  void push(TaskHeader* t) noexcept { push_link(&t->core()); }

  // The consumer only (callers serialise consumers themselves).
  TaskHeader* pop() noexcept {
    QueueLink* head = head_.load(std::memory_order_relaxed);
    QueueLink* next = head->queue_next.load(std::memory_order_acquire);
    if (head == &stub_) {
      if (next == nullptr) return nullptr;
      set_head(head = next);
      next = next->queue_next.load(std::memory_order_acquire);
    }
    if (next != nullptr) {
      set_head(next);
      return task_of(head);
    }
    if (tail_.load(std::memory_order_acquire) != head) return nullptr;  // a push in flight
    push_link(&stub_);
    next = head->queue_next.load(std::memory_order_acquire);
    if (next == nullptr) return nullptr;  // another push slipped in before the stub
    set_head(next);
    return task_of(head);
  }

  // Any thread; a hint (exact on the consumer's thread once pushes have finished): something
  // was pushed and not popped.
  bool maybe_nonempty() const noexcept {
    return tail_.load(std::memory_order_acquire) != &stub_ ||
           stub_.queue_next.load(std::memory_order_acquire) != nullptr ||
           head_.load(std::memory_order_relaxed) != &stub_;
  }

 private:
  static TaskHeader* task_of(QueueLink* l) noexcept { return static_cast<TaskCore*>(l)->header; }
  void set_head(QueueLink* h) noexcept { head_.store(h, std::memory_order_relaxed); }
  void push_link(QueueLink* n) noexcept {
    n->queue_next.store(nullptr, std::memory_order_relaxed);
    QueueLink* prev = tail_.exchange(n, std::memory_order_acq_rel);
    prev->queue_next.store(n, std::memory_order_release);
  }

  std::atomic<QueueLink*> head_;  // written by the consumer; read (the hint) by anyone
  QueueLink stub_;
  alignas(64) std::atomic<QueueLink*> tail_;
};

}  // namespace trpl::detail
