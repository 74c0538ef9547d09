// Hierarchical timing wheel: the intrusive, allocation-free deadline index behind the runtime's
// timers (O(1) insert/remove, O(levels) next_expiration, equal deadlines fire in insertion order).
#pragma once

#include <bit>
#include <cstddef>
#include <cstdint>
#include <optional>

#include "trpl/detail/timer_entry.hpp"

namespace trpl::detail {

// TimerEntry (trpl/detail/timer_entry.hpp) is the registration the wheel links; it lives inside
// an awaiter, and the wheel never owns, allocates or frees it.

// Layout. Level L (0..5) has 64 slots; a level-L slot covers 64^L ticks, so level L as a whole
// covers 64^(L+1) ticks. Slot s of level L holds deadlines t with (t >> 6L) & 63 == s. Each level
// keeps a 64-bit occupancy bitmap (bit s set <=> slot s's list is non-empty) and each slot is a
// doubly linked list (head/tail) threaded through WakeNode::next/prev, so insert and remove are
// O(1) and finding the first occupied slot of a level is a rotate + countr_zero.
//
// Fields.
//   elapsed_    the last tick processed; only ever grows. Nothing with a deadline < elapsed_ is
//               still linked (except the tolerated "late" inserts, see insert()).
//   size_       number of linked entries.
//   occupied_   per-level slot occupancy bitmaps.
//   slots_      per-level, per-slot list heads and tails.
//   TimerEntry::level/slot  the list the entry is on (needed by remove to find the list head).
//
// Placement. An entry with deadline t > e (e = elapsed_) goes to level_for(e, t): the level whose
// 6-bit group contains the highest bit where e and t differ (clamped to the top level), and within
// it to slot (t >> 6L) & 63. Deadlines t <= e go to level 0, slot e & 63 (the slot due now).
//
// Invariants (e = elapsed_), maintained by insert, remove and poll:
//   (I1) An entry at level L < 5 with deadline t agrees with e on every bit above group L, and its
//        slot is strictly after e's slot at that level (for L = 0: at or after; entries at
//        slot e & 63 of level 0 are due now). The top level is a ring: t - e < 64^6 always, so
//        a slot at or before e's top-level slot holds deadlines of the next rotation.
//   (I2) Hence every live entry with deadline t sits exactly at level_for(e, t), slot_for(t): as
//        e advances without passing the start of t's slot, level_for(e, t) does not change, and
//        when e reaches that start the slot is cascaded, i.e. each entry is re-placed with the
//        new e. All entries with the same deadline are therefore always on the same list.
//   (I3) Every deadline at level L is smaller than every deadline at level L+1: level-L deadlines
//        lie inside e's current level-(L+1) slot, level-(L+1) deadlines at or after its end.
//        So the earliest work is always in the lowest non-empty level.
//   (I4) e only advances to the earliest slot start (cascading that slot at once if it is above
//        level 0), or to a `now` strictly before it, so (I1) is never broken by moving time.
//
// Why equal deadlines fire FIFO. By (I2) all entries for tick t are on one list. insert appends
// at the tail; a cascade detaches a whole slot and re-inserts its entries in list order, each at
// the tail of its new list. When slot S (level L >= 1) is cascaded, no lower-level list holds a
// deadline inside S's range (such an entry would, by (I2), have been in S itself), so the moved
// entries land on lists holding none of their deadlines, and anything inserted later for the same
// tick lands behind them. A level-0 slot holds a single tick; poll pops its head. So entries for
// one tick leave in insertion order, and poll visits ticks in increasing order by (I3)/(I4).
class Wheel {
 public:
  static constexpr unsigned kLevels = 6, kSlots = 64;  // covers 64^6 ticks (~2.2 years)
  static constexpr std::uint64_t kMaxTicksAhead = (1ull << 36) - 1;

  Wheel() = default;
  // The wheel holds pointers into entries it does not own: copying would alias them.
  Wheel(const Wheel&) = delete;
  Wheel& operator=(const Wheel&) = delete;
  // Destroying a wheel that still links entries just forgets them (their in_wheel stays true).
  ~Wheel() = default;

  // Last tick processed (starts at 0, never decreases).
  std::uint64_t elapsed() const noexcept { return elapsed_; }

  // Link e at the tail of its slot. O(1). Expects e.tick > elapsed(). A deadline further than
  // kMaxTicksAhead past elapsed() is clamped: e.tick is REWRITTEN to elapsed() + kMaxTicksAhead
  // and the entry fires then (a caller wanting a later real deadline re-arms). Tolerated misuse:
  // e.tick <= elapsed() links e as due now (the next poll(now >= elapsed()) returns it, after
  // anything already due at elapsed()); e already linked is removed first (a re-registration).
  void insert(TimerEntry& e) noexcept {
    if (e.in_wheel) remove(e);
    if (e.tick > elapsed_ && e.tick - elapsed_ > kMaxTicksAhead) e.tick = elapsed_ + kMaxTicksAhead;
    link(e);
    e.in_wheel = true;
    ++size_;
  }

  // Unlink e. O(1). Expects e to be in this wheel; a no-op if e.in_wheel is false.
  void remove(TimerEntry& e) noexcept {
    if (!e.in_wheel) return;
    unlink(e);
    e.in_wheel = false;
    --size_;
  }

  bool empty() const noexcept { return size_ == 0; }
  std::size_t size() const noexcept { return size_; }

  // The earliest tick at which poll() may have something to do (a deadline, or the start of a
  // higher-level slot that must be cascaded), or nullopt when empty. Never earlier than
  // elapsed(), never later than the earliest live deadline (late inserts count as due at
  // elapsed()). O(levels).
  std::optional<std::uint64_t> next_expiration() const noexcept {
    if (auto x = earliest()) return x->start;
    return std::nullopt;
  }

  // Advance elapsed() towards `now`, cascading higher-level slots as time reaches them, and
  // return ONE expired entry (tick <= now), already unlinked (in_wheel = false, links null), with
  // elapsed() == its tick (a late insert: elapsed() unchanged); or nullptr when nothing more
  // expires at or before `now`, and then elapsed() == max(elapsed(), now). Entries come out in
  // (tick, insertion order) order.
  TimerEntry* poll(std::uint64_t now) noexcept {
    for (;;) {
      const std::optional<Earliest> x = earliest();
      if (!x || x->start > now) {
        if (now > elapsed_) elapsed_ = now;  // (I4): strictly before any slot start
        return nullptr;
      }
      elapsed_ = x->start;  // >= elapsed_: every slot start is (see earliest())
      Slot& s = slots_[x->level][x->slot];
      if (x->level == 0) {
        auto* e = static_cast<TimerEntry*>(s.head);
        remove(*e);
        return e;
      }
      // Cascade: detach the whole list first, then re-place its entries in list order. Each
      // lands strictly below x->level (its deadline is within 64^level of the new elapsed_).
      WakeNode* n = s.head;
      s.head = s.tail = nullptr;
      occupied_[x->level] &= ~(std::uint64_t{1} << x->slot);
      while (n != nullptr) {
        WakeNode* next = n->next;
        link(*static_cast<TimerEntry*>(n));
        n = next;
      }
    }
  }

 private:
  static constexpr unsigned kBits = 6;  // log2(kSlots)
  static constexpr std::uint64_t kSlotMask = kSlots - 1;
  static_assert(kSlots == (1u << kBits) && kSlots == 64, "bitmaps are 64-bit words");
  static_assert(kMaxTicksAhead == (std::uint64_t{1} << (kBits * kLevels)) - 1);

  struct Slot {
    WakeNode* head = nullptr;
    WakeNode* tail = nullptr;
  };

  struct Earliest {
    std::uint64_t start;  // first tick of the slot (for level 0: the deadline itself)
    unsigned level;
    unsigned slot;
  };

  // Level for deadline t given elapsed e (t > e): the 6-bit group of the highest differing bit.
  // OR-ing in the slot mask makes level 0 the answer when only the low group differs; anything
  // differing at bit 36 or above (top-level ring wrap) is clamped to the top level.
  static unsigned level_for(std::uint64_t e, std::uint64_t t) noexcept {
    const std::uint64_t masked = (e ^ t) | kSlotMask;
    const unsigned level = static_cast<unsigned>(63 - std::countl_zero(masked)) / kBits;
    return level < kLevels ? level : kLevels - 1;
  }

  // Place e on the tail of its list according to (e.tick, elapsed_). Does not touch size_ or
  // in_wheel (shared by insert and cascade).
  void link(TimerEntry& e) noexcept {
    unsigned level = 0;
    unsigned slot = static_cast<unsigned>(elapsed_ & kSlotMask);  // late / due now
    if (e.tick > elapsed_) {
      level = level_for(elapsed_, e.tick);
      slot = static_cast<unsigned>((e.tick >> (level * kBits)) & kSlotMask);
    }
    e.level = static_cast<std::uint8_t>(level);
    e.slot = static_cast<std::uint8_t>(slot);
    Slot& s = slots_[level][slot];
    e.next = nullptr;
    e.prev = s.tail;
    if (s.tail != nullptr) {
      s.tail->next = &e;
    } else {
      s.head = &e;
      occupied_[level] |= std::uint64_t{1} << slot;
    }
    s.tail = &e;
  }

  void unlink(TimerEntry& e) noexcept {
    Slot& s = slots_[e.level][e.slot];
    (e.prev != nullptr ? e.prev->next : s.head) = e.next;
    (e.next != nullptr ? e.next->prev : s.tail) = e.prev;
    if (s.head == nullptr) occupied_[e.level] &= ~(std::uint64_t{1} << e.slot);
    e.next = e.prev = nullptr;
  }

  // The first occupied slot of the lowest non-empty level (by (I3) that is the earliest work).
  // Search order starts at the first slot that may be occupied: at level 0 elapsed_'s own slot
  // (due now), above it the slot after elapsed_'s, so that on the top level elapsed_'s own slot
  // (a deadline of the next rotation, see (I1)) comes last. Rotating the bitmap right by that
  // first slot puts it at bit 0; countr_zero is then the distance, and with k = distance from
  // elapsed_'s slot (1..64 above level 0) the slot starts at ((elapsed_ >> 6L) + k) << 6L.
  std::optional<Earliest> earliest() const noexcept {
    for (unsigned level = 0; level < kLevels; ++level) {
      if (occupied_[level] == 0) continue;
      const unsigned shift = level * kBits;
      const std::uint64_t cur = elapsed_ >> shift;
      const unsigned cur_slot = static_cast<unsigned>(cur & kSlotMask);
      const unsigned first = level == 0 ? 0u : 1u;  // distance of the first slot searched
      const int rot = static_cast<int>((cur_slot + first) & kSlotMask);
      const unsigned k =
          first + static_cast<unsigned>(std::countr_zero(std::rotr(occupied_[level], rot)));
      return Earliest{(cur + k) << shift, level, static_cast<unsigned>((cur_slot + k) & kSlotMask)};
    }
    return std::nullopt;
  }

  std::uint64_t elapsed_ = 0;
  std::size_t size_ = 0;
  std::uint64_t occupied_[kLevels] = {};
  Slot slots_[kLevels][kSlots] = {};
};

}  // namespace trpl::detail
