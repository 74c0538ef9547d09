// Tests for the hierarchical timing wheel (src/time/wheel.hpp): firing times, FIFO among equal
// deadlines across levels and cascades, removal, clamping, and a randomized model check.
#include "time/wheel.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <map>
#include <memory>
#include <optional>
#include <random>
#include <utility>
#include <vector>

namespace {

using trpl::detail::TimerEntry;
using trpl::detail::Wheel;

// Wheel is ~6 KiB; keep it off the test's stack frame.
std::unique_ptr<Wheel> make_wheel() { return std::make_unique<Wheel>(); }

void arm(Wheel& w, TimerEntry& e, std::uint64_t tick) {
  e.tick = tick;
  w.insert(e);
}

// Polls to `now` until nothing more is due; returns the entries in the order they came out.
std::vector<TimerEntry*> drain(Wheel& w, std::uint64_t now) {
  std::vector<TimerEntry*> out;
  while (TimerEntry* e = w.poll(now)) out.push_back(e);
  return out;
}

TEST(Wheel, EmptyWheelHasNoExpirationAndPollAdvancesElapsed) {
  auto w = make_wheel();
  EXPECT_TRUE(w->empty());
  EXPECT_EQ(w->size(), 0u);
  EXPECT_EQ(w->elapsed(), 0u);
  EXPECT_EQ(w->next_expiration(), std::nullopt);
  EXPECT_EQ(w->poll(10), nullptr);
  EXPECT_EQ(w->elapsed(), 10u);
  EXPECT_EQ(w->poll(5), nullptr);  // never goes backwards
  EXPECT_EQ(w->elapsed(), 10u);
  EXPECT_EQ(w->poll(std::uint64_t{1} << 40), nullptr);  // big jump
  EXPECT_EQ(w->elapsed(), std::uint64_t{1} << 40);
  EXPECT_EQ(w->next_expiration(), std::nullopt);
}

TEST(Wheel, EntryFiresAtItsTickNotBefore) {
  // Deadlines at every level, at and around slot and level boundaries.
  const std::uint64_t ticks[] = {1,
                                 2,
                                 63,
                                 64,
                                 65,
                                 4095,
                                 4096,
                                 4097,
                                 5000,
                                 262143,
                                 262144,
                                 300000,
                                 16777216,
                                 1073741823,
                                 1073741824,
                                 5000000000ull,
                                 (std::uint64_t{1} << 36) - 1};
  for (std::uint64_t start : {std::uint64_t{0}, std::uint64_t{12345}, std::uint64_t{1} << 36}) {
    for (std::uint64_t d : ticks) {
      auto w = make_wheel();
      ASSERT_EQ(w->poll(start), nullptr);
      TimerEntry e;
      arm(*w, e, start + d);
      EXPECT_TRUE(e.in_wheel);
      EXPECT_EQ(w->size(), 1u);
      ASSERT_TRUE(w->next_expiration().has_value());
      EXPECT_LE(*w->next_expiration(), start + d);
      EXPECT_EQ(w->poll(start + d - 1), nullptr) << "start " << start << " d " << d;
      EXPECT_EQ(w->elapsed(), start + d - 1);
      EXPECT_EQ(w->next_expiration(), start + d);
      EXPECT_EQ(w->poll(start + d), &e) << "start " << start << " d " << d;
      EXPECT_FALSE(e.in_wheel);
      EXPECT_EQ(e.next, nullptr);
      EXPECT_EQ(e.prev, nullptr);
      EXPECT_EQ(e.tick, start + d);
      EXPECT_EQ(w->elapsed(), start + d);
      EXPECT_TRUE(w->empty());
      EXPECT_EQ(w->poll(start + d), nullptr);
    }
  }
}

TEST(Wheel, EntryFiresWhenPollJumpsPastItsTick) {
  auto w = make_wheel();
  TimerEntry a, b;
  arm(*w, a, 70);
  arm(*w, b, 300000);
  EXPECT_EQ(w->poll(10'000'000), &a);
  EXPECT_EQ(w->elapsed(), 70u);
  EXPECT_EQ(w->poll(10'000'000), &b);
  EXPECT_EQ(w->elapsed(), 300000u);
  EXPECT_EQ(w->poll(10'000'000), nullptr);
  EXPECT_EQ(w->elapsed(), 10'000'000u);
}

TEST(Wheel, EqualTicksFireInInsertionOrderWithinOneSlot) {
  auto w = make_wheel();
  TimerEntry e[8];
  for (auto& x : e) arm(*w, x, 40);  // level 0
  TimerEntry f[8];
  for (auto& x : f) arm(*w, x, 100000);  // level 2
  std::vector<TimerEntry*> out = drain(*w, 100000);
  ASSERT_EQ(out.size(), 16u);
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out[i], &e[i]) << i;
  for (int i = 0; i < 8; ++i) EXPECT_EQ(out[8 + i], &f[i]) << i;
}

TEST(Wheel, EqualTicksFireInInsertionOrderAcrossLevelsAndCascades) {
  {  // The brief's example: A placed at level 2 at elapsed 0, B at level 1 at elapsed 4990.
    auto w = make_wheel();
    TimerEntry a, b;
    arm(*w, a, 5000);
    EXPECT_EQ(w->poll(4990), nullptr);
    arm(*w, b, 5000);
    EXPECT_EQ(w->poll(5000), &a);
    EXPECT_EQ(w->poll(5000), &b);
    EXPECT_EQ(w->poll(5000), nullptr);
  }
  {  // One entry per level for the same far deadline, each inserted as time closes in, plus
     // interleaved entries for neighbouring ticks that must not disturb the order.
    auto w = make_wheel();
    const std::uint64_t t = 3 * (std::uint64_t{1} << 30) + 5 * (1 << 24) + 7 * (1 << 18) +
                            11 * (1 << 12) + 13 * (1 << 6) + 17;
    TimerEntry same[7], before[6], after[6];
    const std::uint64_t steps[] = {
        0,    t - (std::uint64_t{1} << 29), t - (1 << 23), t - (1 << 17), t - (1 << 11), t - 40,
        t - 2};
    for (int i = 0; i < 7; ++i) {
      EXPECT_EQ(w->poll(steps[i]), nullptr) << i;
      EXPECT_EQ(w->elapsed(), steps[i]);
      arm(*w, same[i], t);
      if (i < 6) {
        arm(*w, after[i], t + 1);
        arm(*w, before[i], t - 1);
      }
    }
    std::vector<TimerEntry*> out = drain(*w, t + 1);
    std::vector<TimerEntry*> want;
    for (auto& x : before) want.push_back(&x);
    for (auto& x : same) want.push_back(&x);
    for (auto& x : after) want.push_back(&x);
    EXPECT_EQ(out, want);
  }
  {  // Insertion right after a cascade moved earlier same-tick entries down a level.
    auto w = make_wheel();
    TimerEntry a, b, c;
    arm(*w, a, 4096 + 100);             // level 2
    EXPECT_EQ(w->poll(4096), nullptr);  // cascades level-2 slot 1 -> a now at level 1
    arm(*w, b, 4096 + 100);
    EXPECT_EQ(w->poll(4096 + 64), nullptr);  // cascades again -> a, b at level 0
    arm(*w, c, 4096 + 100);
    EXPECT_EQ(drain(*w, 1 << 20), (std::vector<TimerEntry*>{&a, &b, &c}));
  }
  {  // Interleaving single polls with inserts for the tick being drained is not allowed
     // (tick must be > elapsed), but inserting for the next tick mid-drain keeps order.
    auto w = make_wheel();
    TimerEntry a, b, c, d;
    arm(*w, a, 64);
    arm(*w, b, 64);
    EXPECT_EQ(w->poll(100), &a);
    arm(*w, c, 65);
    arm(*w, d, 64 + 4096);
    EXPECT_EQ(drain(*w, 1 << 20), (std::vector<TimerEntry*>{&b, &c, &d}));
  }
}

TEST(Wheel, RemovedEntryIsNeverReturned) {
  auto w = make_wheel();
  TimerEntry a, b, c, d;
  arm(*w, a, 10);
  arm(*w, b, 10);
  arm(*w, c, 10);
  arm(*w, d, 200000);
  w->remove(b);  // middle of a list
  EXPECT_FALSE(b.in_wheel);
  EXPECT_EQ(b.next, nullptr);
  EXPECT_EQ(b.prev, nullptr);
  EXPECT_EQ(w->size(), 3u);
  w->remove(b);  // not in the wheel: no-op
  EXPECT_EQ(w->size(), 3u);
  w->remove(a);  // head
  w->remove(d);  // only entry of its slot: the level becomes empty
  EXPECT_EQ(w->size(), 1u);
  EXPECT_EQ(w->next_expiration(), 10u);
  EXPECT_EQ(drain(*w, 1'000'000), (std::vector<TimerEntry*>{&c}));
  EXPECT_TRUE(w->empty());
  EXPECT_EQ(w->next_expiration(), std::nullopt);
  // Removing the last one leaves an empty wheel that reports nothing.
  arm(*w, a, 2'000'000);
  w->remove(a);
  EXPECT_TRUE(w->empty());
  EXPECT_EQ(w->next_expiration(), std::nullopt);
  EXPECT_EQ(w->poll(3'000'000), nullptr);
}

TEST(Wheel, RemoveWorksOnACascadedEntry) {
  auto w = make_wheel();
  TimerEntry a, b, c;
  arm(*w, a, 5000);  // level 2, slot 1 (starts at 4096)
  arm(*w, b, 5000);
  arm(*w, c, 5001);
  EXPECT_EQ(w->next_expiration(), 4096u);
  EXPECT_EQ(w->poll(4096), nullptr);  // cascade to level 1
  EXPECT_EQ(w->elapsed(), 4096u);
  EXPECT_EQ(w->next_expiration(), 4992u);  // level-1 slot start of 5000
  w->remove(a);
  EXPECT_EQ(w->poll(4992), nullptr);  // cascade to level 0
  w->remove(c);
  EXPECT_EQ(w->size(), 1u);
  EXPECT_EQ(w->next_expiration(), 5000u);
  EXPECT_EQ(drain(*w, 6000), (std::vector<TimerEntry*>{&b}));
  EXPECT_TRUE(w->empty());
}

TEST(Wheel, FarDeadlineIsClampedToMaxTicksAhead) {
  auto w = make_wheel();
  ASSERT_EQ(w->poll(1000), nullptr);
  TimerEntry a, b, c;
  arm(*w, a, 1000 + Wheel::kMaxTicksAhead + 12345);
  EXPECT_EQ(a.tick, 1000 + Wheel::kMaxTicksAhead);
  arm(*w, b, ~std::uint64_t{0});
  EXPECT_EQ(b.tick, 1000 + Wheel::kMaxTicksAhead);
  arm(*w, c, 1000 + Wheel::kMaxTicksAhead);  // exactly at the limit: unchanged
  EXPECT_EQ(c.tick, 1000 + Wheel::kMaxTicksAhead);
  EXPECT_EQ(w->poll(1000 + Wheel::kMaxTicksAhead - 1), nullptr);
  EXPECT_EQ(drain(*w, 1000 + Wheel::kMaxTicksAhead), (std::vector<TimerEntry*>{&a, &b, &c}));
}

TEST(Wheel, TopLevelRingWrapsWithoutFiringEarly) {
  // elapsed sits inside top-level slot 3; a deadline a full rotation ahead hashes to slot 3 too
  // (and one to slot 2, "behind" elapsed). Both must wait for the next rotation, and a deadline
  // in the current rotation (slot 40) must come first.
  auto w = make_wheel();
  const std::uint64_t e = 3 * (std::uint64_t{1} << 30) + 100;
  ASSERT_EQ(w->poll(e), nullptr);
  TimerEntry wrap3, wrap2, cur;
  arm(*w, wrap3, e + Wheel::kMaxTicksAhead);                    // slot 3, next rotation
  arm(*w, wrap2, (std::uint64_t{1} << 36) + 2 * (1ull << 30));  // slot 2, next rotation
  arm(*w, cur, 40 * (std::uint64_t{1} << 30) + 7);              // slot 40, this rotation
  ASSERT_TRUE(w->next_expiration().has_value());
  EXPECT_EQ(*w->next_expiration(), 40 * (std::uint64_t{1} << 30));
  EXPECT_EQ(w->poll((std::uint64_t{1} << 36) - 1), &cur);
  EXPECT_EQ(w->poll((std::uint64_t{1} << 36) - 1), nullptr);
  EXPECT_EQ(w->poll(wrap2.tick - 1), nullptr);
  EXPECT_EQ(w->poll(wrap2.tick), &wrap2);
  EXPECT_EQ(w->poll(wrap3.tick - 1), nullptr);
  EXPECT_EQ(w->poll(wrap3.tick), &wrap3);
  EXPECT_TRUE(w->empty());
}

TEST(Wheel, LateInsertIsDueAtElapsed) {
  // Tolerated misuse: tick <= elapsed() fires on the next poll at or after elapsed().
  auto w = make_wheel();
  ASSERT_EQ(w->poll(1000), nullptr);
  TimerEntry a, b;
  arm(*w, a, 1000);
  arm(*w, b, 3);
  EXPECT_EQ(w->next_expiration(), 1000u);
  EXPECT_EQ(w->poll(999), nullptr);
  EXPECT_EQ(drain(*w, 1000), (std::vector<TimerEntry*>{&a, &b}));
  EXPECT_EQ(b.tick, 3u);  // not rewritten
}

// ---------------------------------------------------------------------------------------------
// Randomized model check: a std::map keyed by (tick, insertion sequence) is the specification.

class Model {
 public:
  explicit Model(std::uint64_t seed)
      : rng_(seed), pool_(new TimerEntry[kPool]), pos_(kPool, kNone) {
    for (std::size_t i = kPool; i-- > 0;) free_.push_back(i);
  }

  bool empty() const { return model_.empty(); }

  std::uint64_t below(std::uint64_t n) { return n == 0 ? 0 : rng_() % n; }  // [0, n)
  bool chance(unsigned percent) { return below(100) < percent; }

  std::uint64_t random_delta() {
    switch (below(6)) {
      case 0:
        return 1 + below(70);
      case 1:
        return 1 + below(5000);
      case 2:
        return 1 + below(300000);
      case 3:
        return 1 + below(Wheel::kMaxTicksAhead);
      case 4:
        return 1 + below(std::uint64_t{1} << 40);  // often clamped
      default:
        return 1 + below(8);  // dense: many equal ticks
    }
  }

  void insert() {
    if (free_.empty()) return;
    const std::size_t id = free_.back();
    free_.pop_back();
    const std::uint64_t e = w_.elapsed();
    std::uint64_t tick = e + random_delta();
    // Reuse a live deadline often, so equal ticks end up inserted at different levels/times.
    if (!live_.empty() && chance(30)) {
      const std::uint64_t t = pool_[live_[below(live_.size())]].tick;
      if (t > e) tick = t;
    }
    const std::uint64_t expect = std::min(tick, e + Wheel::kMaxTicksAhead);
    pool_[id].tick = tick;
    w_.insert(pool_[id]);
    ASSERT_EQ(pool_[id].tick, expect);
    ASSERT_TRUE(pool_[id].in_wheel);
    seq_of_[id] = next_seq_++;
    model_.emplace(std::pair{expect, seq_of_[id]}, id);
    pos_[id] = live_.size();
    live_.push_back(id);
  }

  void remove() {
    if (live_.empty()) return;
    const std::size_t id = live_[below(live_.size())];
    w_.remove(pool_[id]);
    ASSERT_FALSE(pool_[id].in_wheel);
    ASSERT_EQ(model_.erase({pool_[id].tick, seq_of_[id]}), 1u);
    forget(id);
  }

  // One poll; checks the popped entry (or its absence) against the model.
  bool poll_once(std::uint64_t now) {
    const std::uint64_t before = w_.elapsed();
    TimerEntry* got = w_.poll(now);
    if (got == nullptr) {
      EXPECT_EQ(w_.elapsed(), std::max(before, now));
      if (!model_.empty()) {
        EXPECT_GT(model_.begin()->first.first, now);
      }
      return false;
    }
    EXPECT_FALSE(model_.empty());
    if (model_.empty()) return false;
    const auto it = model_.begin();
    EXPECT_EQ(got, &pool_[it->second]) << "got tick " << got->tick << ", want tick "
                                       << it->first.first << " seq " << it->first.second;
    EXPECT_LE(got->tick, now);
    EXPECT_EQ(got->tick, it->first.first);
    EXPECT_EQ(w_.elapsed(), got->tick);
    EXPECT_FALSE(got->in_wheel);
    EXPECT_EQ(got->next, nullptr);
    EXPECT_EQ(got->prev, nullptr);
    const std::size_t id = it->second;
    model_.erase(it);
    forget(id);
    return true;
  }

  void drain_to(std::uint64_t now) {
    while (poll_once(now) && !::testing::Test::HasFailure()) {
    }
  }

  std::uint64_t random_now() {
    const std::uint64_t e = w_.elapsed();
    switch (below(6)) {
      case 0:
        return e + below(71);
      case 1:
        return e + below(5001);
      case 2:
        return e + below(300001);
      case 3:
        return e + below(std::uint64_t{1} << 36);
      case 4:
        return e + below(std::uint64_t{1} << 38);  // beyond anything linked
      default:
        return e - std::min<std::uint64_t>(e, below(100));  // at or before elapsed
    }
  }

  // next_expiration never later than the earliest live tick, never before elapsed(), and
  // poll(next_expiration) makes progress (returns an entry or moves next_expiration later).
  void check_next_expiration_progress() {
    const std::optional<std::uint64_t> n = w_.next_expiration();
    if (!n) return;
    if (poll_once(*n)) return;
    const std::optional<std::uint64_t> after = w_.next_expiration();
    if (after) {
      EXPECT_GT(*after, *n);
    }
  }

  void check_invariants() {
    ASSERT_EQ(w_.size(), model_.size());
    ASSERT_EQ(w_.empty(), model_.empty());
    const std::optional<std::uint64_t> n = w_.next_expiration();
    if (model_.empty()) {
      ASSERT_EQ(n, std::nullopt);
    } else {
      ASSERT_TRUE(n.has_value());
      ASSERT_LE(*n, model_.begin()->first.first);
      ASSERT_GE(*n, w_.elapsed());
    }
  }

  void run(int ops) {
    for (int i = 0; i < ops && !::testing::Test::HasFailure(); ++i) {
      const std::uint64_t r = below(100);
      if (r < 45) {
        ASSERT_NO_FATAL_FAILURE(insert()) << "op " << i;
      } else if (r < 60) {
        ASSERT_NO_FATAL_FAILURE(remove()) << "op " << i;
      } else if (r < 75) {
        drain_to(random_now());
      } else if (r < 88) {
        poll_once(random_now());
      } else {
        check_next_expiration_progress();
      }
      ASSERT_NO_FATAL_FAILURE(check_invariants()) << "op " << i;
    }
    // Finally everything still linked comes out, in order.
    drain_to(w_.elapsed() + Wheel::kMaxTicksAhead);
    EXPECT_TRUE(w_.empty());
    EXPECT_TRUE(model_.empty());
  }

 private:
  static constexpr std::size_t kPool = 600;
  static constexpr std::size_t kNone = ~std::size_t{0};

  void forget(std::size_t id) {
    const std::size_t p = pos_[id];
    live_[p] = live_.back();
    pos_[live_[p]] = p;
    live_.pop_back();
    pos_[id] = kNone;
    free_.push_back(id);
  }

  std::mt19937_64 rng_;
  Wheel w_;
  std::unique_ptr<TimerEntry[]> pool_;
  std::uint64_t seq_of_[kPool] = {};
  std::uint64_t next_seq_ = 0;
  std::map<std::pair<std::uint64_t, std::uint64_t>, std::size_t> model_;
  std::vector<std::size_t> live_, pos_, free_;
};

TEST(Wheel, RandomOperationsMatchTickThenInsertionOrderModel) {
  for (std::uint64_t seed : {0x5eedull, 1ull, 2ull, 3ull, 42ull, 0xdeadbeefull}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    auto m = std::make_unique<Model>(seed);
    m->run(20000);
    if (HasFailure()) return;
  }
}

TEST(Wheel, NextExpirationNeverLaterThanEarliestTickAndPollingItMakesProgress) {
  for (std::uint64_t seed : {7ull, 8ull, 9ull}) {
    SCOPED_TRACE(::testing::Message() << "seed " << seed);
    auto m = std::make_unique<Model>(seed);
    // Alternate bursts of inserts with polling exactly at next_expiration until empty.
    for (int round = 0; round < 40 && !HasFailure(); ++round) {
      for (int i = 0; i < 50; ++i) ASSERT_NO_FATAL_FAILURE(m->insert());
      ASSERT_NO_FATAL_FAILURE(m->check_invariants());
      for (int steps = 0; steps < 100000; ++steps) {
        m->check_next_expiration_progress();
        ASSERT_NO_FATAL_FAILURE(m->check_invariants());
        if (HasFailure() || m->empty()) break;
      }
      ASSERT_TRUE(m->empty());
    }
  }
}

}  // namespace
