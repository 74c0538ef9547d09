// Counted: a test value that counts its constructions, copies, moves and destructions, so a
// test can prove lifetime and cancellation claims ("exactly one destruction", "nothing leaked").
#pragma once

#include <atomic>
#include <cstdint>

namespace trpl::test {

// Every counter is a static atomic: Counted objects may live in frames that run, and are
// destroyed, on any runtime thread. Call Counted::reset() at the start of each test (or hold a
// CountedScope) so counts never leak from one test into the next.
//
// A destroyed object's canary is overwritten, so destroying the same object twice is counted in
// `double_destructions` (best effort: AddressSanitizer is the real check for that).
struct Counted {
  static inline std::atomic<std::int64_t> default_constructions{0};
  static inline std::atomic<std::int64_t> value_constructions{0};
  static inline std::atomic<std::int64_t> copy_constructions{0};
  static inline std::atomic<std::int64_t> move_constructions{0};
  static inline std::atomic<std::int64_t> copy_assignments{0};
  static inline std::atomic<std::int64_t> move_assignments{0};
  static inline std::atomic<std::int64_t> destructions{0};
  static inline std::atomic<std::int64_t> double_destructions{0};

  static void reset() noexcept {
    for (auto* c :
         {&default_constructions, &value_constructions, &copy_constructions, &move_constructions,
          &copy_assignments, &move_assignments, &destructions, &double_destructions}) {
      c->store(0, std::memory_order_relaxed);
    }
  }
  // Objects ever created (every constructor, including copies and moves).
  static std::int64_t constructions() noexcept {
    return default_constructions.load() + value_constructions.load() + copy_constructions.load() +
           move_constructions.load();
  }
  static std::int64_t copies() noexcept {
    return copy_constructions.load() + copy_assignments.load();
  }
  static std::int64_t moves() noexcept {
    return move_constructions.load() + move_assignments.load();
  }
  // Objects created and not yet destroyed.
  static std::int64_t alive() noexcept { return constructions() - destructions.load(); }

  Counted() noexcept { default_constructions.fetch_add(1); }
  explicit Counted(int v) noexcept : value(v) { value_constructions.fetch_add(1); }
  Counted(const Counted& o) noexcept : value(o.value) { copy_constructions.fetch_add(1); }
  Counted(Counted&& o) noexcept : value(o.value) {
    o.moved_from = true;
    move_constructions.fetch_add(1);
  }
  Counted& operator=(const Counted& o) noexcept {
    value = o.value;
    moved_from = o.moved_from;
    copy_assignments.fetch_add(1);
    return *this;
  }
  Counted& operator=(Counted&& o) noexcept {
    value = o.value;
    moved_from = o.moved_from;
    o.moved_from = true;
    move_assignments.fetch_add(1);
    return *this;
  }
  ~Counted() {
    if (canary != kAlive) double_destructions.fetch_add(1);
    canary = kDead;
    destructions.fetch_add(1);
  }

  int value = 0;
  bool moved_from = false;

 private:
  static constexpr std::uint32_t kAlive = 0xC0A7ED;
  static constexpr std::uint32_t kDead = 0xDEADDEAD;
  volatile std::uint32_t canary = kAlive;
};

// Resets the counters when a test starts (construct it first thing in the test body).
struct CountedScope {
  CountedScope() noexcept { Counted::reset(); }
};

}  // namespace trpl::test
