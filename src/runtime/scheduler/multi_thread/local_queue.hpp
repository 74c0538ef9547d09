// LocalQueue: a worker's bounded run queue (256 tasks). Its owner pushes and pops at both
// ends; other workers steal the older half. Lock-free; one CAS per operation.
#pragma once

#include <array>
#include <atomic>
#include <cstddef>
#include <cstdint>

#include "trpl/detail/task_header.hpp"

namespace trpl::detail {

// Which end is which. The owner pops the BACK: the newest task, which is the one whose data
// is in cache and, for a spawn, the child that makes fork-join run depth-first (skynet keeps
// a few dozen tasks alive, not a million). Spawned tasks are pushed at the back. Woken,
// yielded and displaced tasks are pushed at the FRONT: behind all the local work, in FIFO
// order among themselves. Thieves take from the front: the oldest tasks, i.e. the biggest
// subtrees of a fork-join and the longest-waiting wakes. So that the front is not starved by
// a back that keeps refilling, the worker pops the front every so often (worker.cpp).
//
// The whole state is one 64-bit word, so that every transition is a single CAS and the owner
// can pop the back while thieves take the front:
//   bits  0..15 tail   one past the newest task (back)
//   bits 16..31 head   the oldest task not yet claimed (front)
//   bits 32..47 steal  the oldest slot a thief may still be copying (== head: none)
// Indices run modulo 2^16; slot i is buffer_[i % kCapacity]. Tasks live in [head, tail);
// slots in [steal, head) are being copied out by a thief and must not be overwritten, so the
// owner's room is kCapacity - (tail - steal).
//   push_back:  [owner]  write slot tail; CAS tail+1 (release: publishes the slot)
//   push_front: [owner]  only when steal == head: write slot head-1; CAS head, steal = head-1
//   pop_back:   [owner]  CAS tail-1 when head != tail; read slot tail-1 (written by the owner)
//   pop_front:  [owner]  CAS head+1 (steal follows head if no thief is copying); read slot head
//   steal_into: [thief]  when steal == head: CAS head += n (n = half, rounded up); copy slots
//               [steal, steal+n) into its own queue; CAS steal = head (done)
// models/local_queue.pml checks these transitions exhaustively (nothing lost, nothing taken
// twice, no slot overwritten while a thief copies it).
class LocalQueue {
 public:
  static constexpr std::uint32_t kCapacity = 256;
  static_assert((kCapacity & (kCapacity - 1)) == 0 && kCapacity <= (1u << 15));

  // Owner: the newest task at the back; false when there is no room (the caller overflows).
  // (Acquire: a slot is reused only after the thief that copied it out published that.)
  bool push_back(TaskHeader* t) noexcept {
    std::uint64_t w = state_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint16_t tail = tail_of(w);
      if (static_cast<std::uint16_t>(tail - steal_of(w)) >= kCapacity) return false;
      slot(tail).store(t, std::memory_order_relaxed);
      if (state_.compare_exchange_weak(w, pack(steal_of(w), head_of(w), tail + 1),
                                       std::memory_order_acq_rel, std::memory_order_acquire)) {
        return true;
      }
    }
  }
  // Owner: a task behind all the others; false when there is no room or a thief is copying.
  bool push_front(TaskHeader* t) noexcept {
    std::uint64_t w = state_.load(std::memory_order_acquire);
    for (;;) {
      const std::uint16_t head = head_of(w);
      if (steal_of(w) != head) return false;
      if (static_cast<std::uint16_t>(tail_of(w) - head) >= kCapacity) return false;
      const std::uint16_t front = head - 1;
      slot(front).store(t, std::memory_order_relaxed);
      if (state_.compare_exchange_weak(w, pack(front, front, tail_of(w)), std::memory_order_acq_rel,
                                       std::memory_order_acquire)) {
        return true;
      }
    }
  }
  // Owner: the newest task, or null.
  TaskHeader* pop_back() noexcept {
    std::uint64_t w = state_.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint16_t tail = tail_of(w);
      if (head_of(w) == tail) return nullptr;
      const std::uint16_t back = tail - 1;
      if (state_.compare_exchange_weak(w, pack(steal_of(w), head_of(w), back),
                                       std::memory_order_relaxed, std::memory_order_relaxed)) {
        return slot(back).load(std::memory_order_relaxed);
      }
    }
  }
  // Owner: the oldest task, or null.
  TaskHeader* pop_front() noexcept {
    std::uint64_t w = state_.load(std::memory_order_relaxed);
    for (;;) {
      const std::uint16_t head = head_of(w);
      if (head == tail_of(w)) return nullptr;
      const std::uint16_t steal = steal_of(w) == head ? head + 1 : steal_of(w);
      if (state_.compare_exchange_weak(w, pack(steal, head + 1, tail_of(w)),
                                       std::memory_order_relaxed, std::memory_order_relaxed)) {
        return slot(head).load(std::memory_order_relaxed);
      }
    }
  }
  // Owner: moves the older half (up to `max`) to `out`, oldest first, for the inject queue
  // when the queue is full. Returns how many.
  template <class Out>
  std::uint32_t take_front_half(Out&& out, std::uint32_t max) noexcept {
    std::uint32_t moved = 0;
    std::uint32_t want = len() / 2;
    if (want > max) want = max;
    while (moved < want) {
      TaskHeader* t = pop_front();
      if (t == nullptr) break;
      out(t);
      ++moved;
    }
    return moved;
  }

  // Thief: moves the older half of this queue into `dst` (which must be empty and owned by the
  // caller) and returns the newest of them to run now, or null.
  TaskHeader* steal_into(LocalQueue& dst) noexcept {
    std::uint64_t w = state_.load(std::memory_order_acquire);
    std::uint16_t first, n;
    for (;;) {
      const std::uint16_t head = head_of(w);
      if (steal_of(w) != head) return nullptr;  // another thief is copying
      const std::uint16_t avail = tail_of(w) - head;
      n = avail - avail / 2;
      if (n == 0) return nullptr;
      if (state_.compare_exchange_weak(w, pack(head, head + n, tail_of(w)),
                                       std::memory_order_acquire, std::memory_order_acquire)) {
        first = head;
        break;
      }
    }
    // Copy the claimed slots; the owner does not overwrite [steal, head).
    std::uint64_t dw = dst.state_.load(std::memory_order_relaxed);
    const std::uint16_t dtail = tail_of(dw);
    for (std::uint16_t i = 0; i + 1 < n; ++i) {
      dst.slot(dtail + i).store(slot(first + i).load(std::memory_order_relaxed),
                                std::memory_order_relaxed);
    }
    TaskHeader* run_now = slot(first + n - 1).load(std::memory_order_relaxed);
    // Done copying: the slots are the owner's again.
    w = state_.load(std::memory_order_relaxed);
    while (!state_.compare_exchange_weak(w, pack(head_of(w), head_of(w), tail_of(w)),
                                         std::memory_order_release, std::memory_order_relaxed)) {
    }
    if (n > 1) {
      // Publish the copies in our own queue (we own it; only thieves race this CAS).
      while (!dst.state_.compare_exchange_weak(
          dw, pack(steal_of(dw), head_of(dw), tail_of(dw) + (n - 1)), std::memory_order_release,
          std::memory_order_relaxed)) {
      }
    }
    return run_now;
  }

  std::uint32_t len() const noexcept {
    const std::uint64_t w = state_.load(std::memory_order_relaxed);
    return static_cast<std::uint16_t>(tail_of(w) - head_of(w));
  }
  bool empty() const noexcept { return len() == 0; }

 private:
  static std::uint16_t tail_of(std::uint64_t w) noexcept { return static_cast<std::uint16_t>(w); }
  static std::uint16_t head_of(std::uint64_t w) noexcept { return static_cast<std::uint16_t>(w >> 16); }
  static std::uint16_t steal_of(std::uint64_t w) noexcept { return static_cast<std::uint16_t>(w >> 32); }
  static std::uint64_t pack(std::uint16_t steal, std::uint16_t head, std::uint16_t tail) noexcept {
    return (std::uint64_t{steal} << 32) | (std::uint64_t{head} << 16) | tail;
  }
  std::atomic<TaskHeader*>& slot(std::uint16_t i) noexcept { return buffer_[i & (kCapacity - 1)]; }

  alignas(64) std::atomic<std::uint64_t> state_{0};
  alignas(64) std::array<std::atomic<TaskHeader*>, kCapacity> buffer_{};
};

}  // namespace trpl::detail
