// Idle: which workers are awake, which of them are searching for work, and which sleep — the
// rules that wake exactly as many workers as there is work for (tokio's idle.rs, in spirit).
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <mutex>
#include <vector>

namespace trpl::detail {

// `state_` packs (awake workers << 16) | (searching workers). The rules:
//   - a worker may start searching (stealing) only while fewer than half the workers search;
//   - a push wakes a sleeping worker only if nobody searches and someone sleeps (whoever is
//     searching will find the work); the woken worker starts out searching;
//   - the last searcher that finds work wakes another (work keeps spreading, one at a time);
//   - a worker about to sleep that was the last searcher looks at every queue once more.
// The lost-wakeup race is closed by a StoreLoad pair: the pusher publishes its task, fences
// (seq_cst) and reads `state_`; the sleeper updates `state_` (a seq_cst RMW under mu_) and
// then reads the queues. One of the two sees the other.
class Idle {
 public:
  explicit Idle(std::size_t workers)
      : workers_(workers), state_(static_cast<std::uint32_t>(workers) << 16), asleep_(workers, false) {
    sleepers_.reserve(workers);
  }

  // A worker with nothing local: may it search? (At most half of them at once.)
  bool try_start_searching() noexcept {
    std::uint32_t s = state_.load(std::memory_order_seq_cst);
    for (;;) {
      if (2 * searching(s) >= workers_) return false;
      if (state_.compare_exchange_weak(s, s + 1, std::memory_order_seq_cst)) return true;
    }
  }
  // A searcher found work or gives up searching: true when it was the last searcher.
  bool stop_searching() noexcept { return searching(state_.fetch_sub(1, std::memory_order_seq_cst)) == 1; }

  // A pusher published work: the index of a sleeping worker to wake (already counted awake
  // and searching), or -1. The caller unparks it.
  int worker_to_wake() noexcept {
    std::atomic_thread_fence(std::memory_order_seq_cst);
    if (!should_wake(state_.load(std::memory_order_seq_cst))) return -1;
    std::lock_guard lk(mu_);
    if (!should_wake(state_.load(std::memory_order_seq_cst)) || sleepers_.empty()) return -1;
    const std::size_t i = sleepers_.back();
    sleepers_.pop_back();
    asleep_[i] = false;
    state_.fetch_add((1u << 16) | 1u, std::memory_order_seq_cst);
    return static_cast<int>(i);
  }

  // Worker `i` goes to sleep. Returns true when it was the last searcher (it must then look at
  // every queue once more, and wake itself if it finds work).
  bool go_to_sleep(std::size_t i, bool searching_now) noexcept {
    std::lock_guard lk(mu_);
    const std::uint32_t dec = (1u << 16) | (searching_now ? 1u : 0u);
    const std::uint32_t prev = state_.fetch_sub(dec, std::memory_order_seq_cst);
    sleepers_.push_back(i);
    asleep_[i] = true;
    return searching_now && searching(prev) == 1;
  }
  // Worker `i` wakes by itself (a timeout, or it found work after all): true if it was still
  // asleep (it is now counted awake, searching if `searching_now`), false if a pusher woke it.
  bool wake_self(std::size_t i, bool searching_now) noexcept {
    std::lock_guard lk(mu_);
    if (!asleep_[i]) return false;
    asleep_[i] = false;
    for (std::size_t k = 0; k < sleepers_.size(); ++k) {
      if (sleepers_[k] == i) {
        sleepers_.erase(sleepers_.begin() + static_cast<std::ptrdiff_t>(k));
        break;
      }
    }
    state_.fetch_add((1u << 16) | (searching_now ? 1u : 0u), std::memory_order_seq_cst);
    return true;
  }
  bool is_asleep(std::size_t i) noexcept {
    std::lock_guard lk(mu_);
    return asleep_[i];
  }
  // Every sleeper, to wake them all (shutdown).
  std::vector<std::size_t> take_all_sleepers() {
    std::lock_guard lk(mu_);
    std::vector<std::size_t> all = std::move(sleepers_);
    sleepers_.clear();
    for (std::size_t i : all) asleep_[i] = false;
    state_.fetch_add(static_cast<std::uint32_t>(all.size()) << 16, std::memory_order_seq_cst);
    return all;
  }
  std::size_t awake() const noexcept { return state_.load(std::memory_order_seq_cst) >> 16; }

 private:
  static std::uint32_t searching(std::uint32_t s) noexcept { return s & 0xffff; }
  bool should_wake(std::uint32_t s) const noexcept { return searching(s) == 0 && (s >> 16) < workers_; }

  const std::size_t workers_;
  std::atomic<std::uint32_t> state_;
  std::mutex mu_;
  std::vector<std::size_t> sleepers_;  // mu_
  std::vector<bool> asleep_;           // mu_
};

}  // namespace trpl::detail
