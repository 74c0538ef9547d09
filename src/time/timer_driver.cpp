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
      auto before = next_tick_locked();
      migrate_far_locked();  // older far timers for the same tick go first
      if (tick - wheel_.elapsed() > Wheel::kMaxTicksAhead) link_far_locked(e);
      else wheel_.insert(e);
      earliest = !before || e.tick < *before;
    }
    if (earliest) rt_.deadline_changed(deadline);
  }

  void cancel(TimerEntry& e) noexcept {
    std::lock_guard lk(mu_);
    cancel_locked(e, [&] {
      if (e.in_wheel) wheel_.remove(e);
      else if (e.in_far) unlink_far_locked(e);
    });
  }

  std::optional<Clock::time_point> next_deadline() override {
    std::lock_guard lk(mu_);
    if (auto t = next_tick_locked()) return origin_ + std::chrono::milliseconds(*t);
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
          if (e == nullptr) {
            // The wheel reached `tick`: far timers now within its range join it, in order.
            if (far_head_ == nullptr || far_tick() - wheel_.elapsed() > Wheel::kMaxTicksAhead) break;
            migrate_far_locked();
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
    return wheel_.size() + far_count_;
  }

 private:
  std::uint64_t to_tick_ceil(Clock::time_point deadline) const {
    if (deadline <= origin_) return 0;
    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(deadline - origin_).count();
    return static_cast<std::uint64_t>((ns + 999'999) / 1'000'000);
  }

  // Timers further than the wheel's range (2^36 ms, about 2.2 years) wait in a list sorted by
  // (tick, registration order) and move into the wheel once it comes within range — before
  // any later registration for the same tick, so equal deadlines still fire FIFO.
  void link_far_locked(TimerEntry& e) {
    WakeNode* after = far_tail_;
    while (after != nullptr && static_cast<TimerEntry*>(after)->tick > e.tick) after = after->prev;
    e.prev = after;
    e.next = after ? after->next : far_head_;
    (e.next ? e.next->prev : far_tail_) = &e;
    if (after) after->next = &e; else far_head_ = &e;
    e.in_far = true;
    ++far_count_;
  }
  void unlink_far_locked(TimerEntry& e) {
    (e.prev ? e.prev->next : far_head_) = e.next;
    (e.next ? e.next->prev : far_tail_) = e.prev;
    e.next = e.prev = nullptr;
    e.in_far = false;
    --far_count_;
  }
  void migrate_far_locked() {
    while (far_head_ != nullptr && far_tick() - wheel_.elapsed() <= Wheel::kMaxTicksAhead) {
      TimerEntry& e = *static_cast<TimerEntry*>(far_head_);
      unlink_far_locked(e);
      wheel_.insert(e);
    }
  }
  // The earliest tick with work: the wheel's, or when the first far timer enters its range.
  std::optional<std::uint64_t> next_tick_locked() const {
    std::optional<std::uint64_t> t = wheel_.next_expiration();
    if (far_head_ != nullptr) {
      std::uint64_t enters = far_tick() - Wheel::kMaxTicksAhead;
      if (!t || enters < *t) t = enters;
    }
    return t;
  }

  RuntimeCore& rt_;
  const Clock::time_point origin_;
  std::mutex mu_;
  Wheel wheel_;
  std::uint64_t far_tick() const { return static_cast<const TimerEntry*>(far_head_)->tick; }

  WakeNode* far_head_ = nullptr;  // TimerEntries, linked through WakeNode::next/prev
  WakeNode* far_tail_ = nullptr;
  std::size_t far_count_ = 0;
};

}  // namespace

void timer_register(TimerEntry& entry, Clock::time_point deadline) {
  RuntimeCore& rt = current_runtime("sleep");
  auto& d = static_cast<TimerDriver&>(driver(rt, DriverKind::timer, &TimerDriver::make));
  d.insert(entry, deadline);
}

void timer_cancel(TimerEntry& entry) noexcept {
  // The caller owns the entry's task, whose runtime registered it (the driver exists).
  RuntimeCore& rt = *entry.task->core().rt;
  static_cast<TimerDriver&>(driver(rt, DriverKind::timer, &TimerDriver::make)).cancel(entry);
}

}  // namespace trpl::detail
