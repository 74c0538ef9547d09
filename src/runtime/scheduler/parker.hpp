// Parker: puts one thread to sleep until another unparks it (a futex word with a permit, as
// Rust's std::thread::park): a worker with nothing to do, the block_on thread, the
// current_thread loop. An unpark that comes first makes the next park return at once.
#pragma once

#include <linux/futex.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <climits>
#include <cstdint>
#include <ctime>

namespace trpl::detail {

class Parker {
 public:
  // Sleeps until unpark() (or a spurious wake-up: callers re-check their condition).
  void park() noexcept { park_impl(nullptr); }
  // Sleeps until unpark() or `timeout` has passed.
  void park_for(std::chrono::nanoseconds timeout) noexcept {
    if (timeout.count() <= 0) {
      state_.store(kEmpty, std::memory_order_release);  // consume a pending permit, if any
      return;
    }
    timespec ts;
    ts.tv_sec = static_cast<time_t>(timeout.count() / 1'000'000'000);
    ts.tv_nsec = static_cast<long>(timeout.count() % 1'000'000'000);
    park_impl(&ts);
  }
  // Any thread: wakes the parked thread, or lets its next park return at once.
  void unpark() noexcept {
    if (state_.exchange(kNotified, std::memory_order_release) == kParked) {
      ::syscall(SYS_futex, reinterpret_cast<std::int32_t*>(&state_), FUTEX_WAKE_PRIVATE, 1, nullptr,
                nullptr, 0);
    }
  }

 private:
  static constexpr std::int32_t kEmpty = 0, kNotified = 1, kParked = -1;

  void park_impl(const timespec* timeout) noexcept {
    // NOTIFIED -> EMPTY returns at once; EMPTY -> PARKED sleeps.
    if (state_.fetch_sub(1, std::memory_order_acquire) == kNotified) return;
    ::syscall(SYS_futex, reinterpret_cast<std::int32_t*>(&state_), FUTEX_WAIT_PRIVATE, kParked,
              timeout, nullptr, 0);
    // Woken, timed out or spurious: either way we are awake; take the permit if it is there.
    state_.exchange(kEmpty, std::memory_order_acquire);
  }

  static_assert(sizeof(std::atomic<std::int32_t>) == sizeof(std::int32_t));
  std::atomic<std::int32_t> state_{kEmpty};
};

}  // namespace trpl::detail
