// The runtime's timer driver: a hierarchical wheel (src/time/wheel.hpp) under one lock,
// created on a runtime's first sleep, fired by the runtime's idle driving thread.
#include <array>
#include <mutex>

#include "runtime/runtime_core.hpp"
#include "time/wheel.hpp"
#include "trpl/time.hpp"

namespace trpl::detail {

namespace {

class TimerDriver final : public Driver {
 public:
  explicit TimerDriver(RuntimeCore& rt) : rt_(rt), origin_(runtime_now(rt)) {}
  ~TimerDriver() override = default;

  static std::unique_ptr<Driver> make(RuntimeCore& rt) { return std::make_unique<TimerDriver>(rt); }

  void insert(TimerEntry& e, Clock::time_point deadline) {
    bool earliest;
    {
      std::lock_guard lk(mu_);
      std::uint64_t tick = to_tick_ceil(deadline);
      if (tick <= wheel_.elapsed()) tick = wheel_.elapsed() + 1;
      e.tick = tick;
      e.want_tick = tick;
      e.driver = this;
      auto before = wheel_.next_expiration();
      wheel_.insert(e);
      earliest = !before || e.tick < *before;
    }
    if (earliest) rt_.deadline_changed(deadline);
  }

  void cancel(TimerEntry& e) noexcept {
    std::lock_guard lk(mu_);
    cancel_locked(e, [&] {
      if (e.in_wheel) wheel_.remove(e);
    });
  }

  std::optional<Clock::time_point> next_deadline() override {
    std::lock_guard lk(mu_);
    if (auto t = wheel_.next_expiration()) return origin_ + std::chrono::milliseconds(*t);
    return std::nullopt;
  }

  void process(Clock::time_point now) override {
    if (now < origin_) return;
    const std::uint64_t tick = static_cast<std::uint64_t>(
        std::chrono::duration_cast<std::chrono::milliseconds>(now - origin_).count());
    // Fire in batches: notify under the lock (the protocol of wake_node.hpp), schedule after.
    std::array<TaskHeader*, 32> woken;
    for (;;) {
      std::size_t n = 0;
      {
        std::lock_guard lk(mu_);
        while (n < woken.size()) {
          TimerEntry* e = wheel_.poll(tick);
          if (e == nullptr) break;
          if (e->want_tick > tick) {  // clamped beyond the wheel's range: not due yet
            e->tick = e->want_tick;
            wheel_.insert(*e);
            continue;
          }
          woken[n++] = fire_locked(*e);
        }
      }
      for (std::size_t i = 0; i < n; ++i) wake_after_unlock(woken[i]);
      if (n < woken.size()) return;
    }
  }

  std::size_t pending() override {
    std::lock_guard lk(mu_);
    return wheel_.size();
  }

 private:
  std::uint64_t to_tick_ceil(Clock::time_point deadline) const {
    if (deadline <= origin_) return 0;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - origin_).count();
    return static_cast<std::uint64_t>((ns + 999'999) / 1'000'000);
  }

  RuntimeCore& rt_;
  const Clock::time_point origin_;
  std::mutex mu_;
  Wheel wheel_;
};

}  // namespace

void timer_register(TimerEntry& entry, Clock::time_point deadline) {
  RuntimeCore& rt = current_runtime("sleep");
  auto& d = static_cast<TimerDriver&>(driver(rt, DriverKind::timer, &TimerDriver::make));
  d.insert(entry, deadline);
}

void timer_cancel(TimerEntry& entry) noexcept {
  if (entry.driver == nullptr) {  // a sleep until far_future(): armed, never in the wheel
    disarm(entry);
    return;
  }
  static_cast<TimerDriver*>(entry.driver)->cancel(entry);
}

}  // namespace trpl::detail
