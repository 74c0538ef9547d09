// Time: Instant (the runtime's clock: real, or virtual under start_paused), sleep(duration)
// and sleep_until(Instant). The deadline is fixed when sleep() is called, as in the book.
#pragma once

#include <chrono>
#include <compare>
#include <coroutine>
#include <source_location>
#include <string>

#include "trpl/detail/runtime_context.hpp"
#include "trpl/detail/timer_entry.hpp"

namespace trpl {

// A point on the runtime's clock. Inside a runtime built with start_paused it is virtual time;
// elsewhere std::chrono::steady_clock. Adding or subtracting a duration saturates (at
// Instant::far_future(), which no timer ever reaches, or at the clock's minimum) instead of
// overflowing.
class Instant {
 public:
  using clock = std::chrono::steady_clock;
  using duration = clock::duration;

  constexpr Instant() = default;
  constexpr explicit Instant(clock::time_point tp) : tp_(tp) {}

  static Instant now() noexcept {
    if (detail::tl_runtime != nullptr) return Instant(detail::runtime_now(*detail::tl_runtime));
    return Instant(clock::now());
  }
  static constexpr Instant far_future() noexcept { return Instant(clock::time_point::max()); }

  clock::time_point time_point() const noexcept { return tp_; }
  bool is_far_future() const noexcept { return tp_ == clock::time_point::max(); }

  template <class Rep, class Period>
  Instant operator+(std::chrono::duration<Rep, Period> d) const noexcept {
    using wide = std::chrono::duration<long double, std::nano>;
    const long double want = std::chrono::duration_cast<wide>(d).count();
    const long double at = wide(tp_.time_since_epoch()).count();
    if (want >= wide(clock::time_point::max().time_since_epoch()).count() - at) return far_future();
    if (want <= wide(clock::time_point::min().time_since_epoch()).count() - at) {
      return Instant(clock::time_point::min());  // saturates downwards too
    }
    return Instant(tp_ + std::chrono::duration_cast<duration>(wide(want)));
  }
  template <class Rep, class Period>
  Instant& operator+=(std::chrono::duration<Rep, Period> d) noexcept {
    return *this = *this + d;
  }
  template <class Rep, class Period>
  Instant operator-(std::chrono::duration<Rep, Period> d) const noexcept {
    using wide = std::chrono::duration<long double, std::nano>;
    return *this + wide(-std::chrono::duration_cast<wide>(d).count());
  }
  // The time from `earlier` to this instant (negative if `earlier` is later).
  duration operator-(Instant earlier) const noexcept { return tp_ - earlier.tp_; }
  // The time since this instant, on the same clock as Instant::now().
  duration elapsed() const noexcept { return now() - *this; }

  friend auto operator<=>(Instant, Instant) = default;
  friend bool operator==(Instant, Instant) = default;

 private:
  clock::time_point tp_{};
};

namespace detail {
// Registers/cancels timer entries with the current runtime's timer driver (src/time); the
// entry's task finds the driver for cancel.
void timer_register(TimerEntry& entry, Clock::time_point deadline);
void timer_cancel(TimerEntry& entry) noexcept;
}  // namespace detail

// The awaitable returned by sleep()/sleep_until().
//
// Returns: nothing; `co_await` completes once the runtime's clock reaches deadline().
// Errors: trpl::Error when awaited outside a trpl task.
// Cancellation: destroying the awaiting frame (drop, abort, race loser, shutdown) removes the
//   timer; a timer that fired but was not yet resumed is forgotten. Nothing leaks or resumes.
// Thread safety: awaited by one frame at a time; the timer may fire on any runtime thread.
class [[nodiscard("a Sleep does nothing until it is awaited")]] Sleep {
 public:
  explicit Sleep(Instant deadline, std::source_location where = std::source_location::current())
      : deadline_(deadline) {
    entry_.where = where;
  }
  Sleep(Sleep&& other) noexcept : deadline_(other.deadline_) { entry_.where = other.entry_.where; }
  Sleep& operator=(Sleep&&) = delete;
  ~Sleep() {
    if (entry_.load_state() == detail::WakeNode::kIdle) return;
    if (deadline_.is_far_future()) {
      detail::disarm(entry_);  // armed, but never given to the timer driver
    } else {
      detail::timer_cancel(entry_);
    }
  }

  Instant deadline() const noexcept { return deadline_; }

  bool await_ready() const noexcept { return deadline_ <= Instant::now(); }
  void await_suspend(std::coroutine_handle<> h) {
    static constexpr detail::WaitKind kSleep{"sleep"};
    static constexpr detail::WaitKind kForever{
        "sleep", [](const detail::WakeNode&, std::string& out) {
          out = "forever: its deadline saturated, no timer will fire it";
        }};
    detail::note_wait(entry_, deadline_.is_far_future() ? kForever : kSleep);
    detail::arm(entry_, h, "sleep");
    if (!deadline_.is_far_future()) detail::timer_register(entry_, deadline_.time_point());
  }
  void await_resume() const noexcept {}

 private:
  detail::TimerEntry entry_;
  Instant deadline_;
};

// Waits `d` from now (the deadline is fixed here, when sleep is called). Any std::chrono
// duration; a huge one saturates to "forever" rather than overflowing.
template <class Rep, class Period>
Sleep sleep(std::chrono::duration<Rep, Period> d,
            std::source_location where = std::source_location::current()) {
  return Sleep(Instant::now() + d, where);
}

// Waits until the runtime's clock reaches `deadline`.
inline Sleep sleep_until(Instant deadline,
                         std::source_location where = std::source_location::current()) {
  return Sleep(deadline, where);
}

}  // namespace trpl
