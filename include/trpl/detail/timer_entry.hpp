// TimerEntry: a WakeNode with a deadline, linked into the timer wheel while it waits.
// Lives inside the Sleep awaiter; the wheel never allocates.
#pragma once

#include <cstdint>

#include "trpl/detail/wake_node.hpp"

namespace trpl::detail {

struct TimerEntry : WakeNode {
  std::uint64_t tick = 0;       // deadline, in ticks (1 ms) since the wheel's origin
  bool in_far = false;          // beyond the wheel's 2.2-year range: in the driver's far list
  std::uint8_t level = 0;       // where the wheel linked it
  std::uint8_t slot = 0;
  bool in_wheel = false;
};

}  // namespace trpl::detail
