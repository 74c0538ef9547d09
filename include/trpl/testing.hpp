// Test helpers: run one scenario on deterministic runtimes under many seeds, and say which
// seed failed and how to replay it (TRPL_SEED). See docs/debugging.md.
#pragma once

#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <string>
#include <utility>

#include "trpl/runtime.hpp"

namespace trpl::testing {

struct SeedSearch {
  bool ok = true;             // every seed passed
  std::uint64_t seed = 0;     // the first failing seed (when !ok)
  std::uint64_t runs = 0;     // how many seeds ran
  std::string message;        // why it failed, with the replay instruction
};

// Runs `scenario(rt)` on `Runtime::builder().deterministic(seed)` for seeds first, first+1, …
// (count of them) and stops at the first failure: `scenario` returned false or threw. When
// TRPL_SEED is set, only that seed runs (the replay). A failure is also printed on stderr as
// "trpl: scenario failed with seed N (replay: TRPL_SEED=N)", so a failing test shows it.
// `scenario` is a callable taking trpl::Runtime& and returning bool (or void: only a throw
// fails).
template <class Scenario>
SeedSearch run_seeds(std::uint64_t count, Scenario&& scenario, std::uint64_t first = 0) {
  SeedSearch result;
  const char* env = std::getenv("TRPL_SEED");
  const bool replay = env != nullptr && *env != '\0';
  if (replay) count = 1;
  for (std::uint64_t i = 0; i < count; ++i) {
    Runtime rt = Runtime::builder().deterministic(first + i).build();  // TRPL_SEED overrides
    ++result.runs;
    std::string why;
    try {
      if constexpr (std::is_void_v<std::invoke_result_t<Scenario&, Runtime&>>) {
        scenario(rt);
      } else if (!scenario(rt)) {
        why = "the scenario returned false";
      }
    } catch (const std::exception& e) {
      why = std::string("the scenario threw: ") + e.what();
    } catch (...) {
      why = "the scenario threw a non-std::exception value";
    }
    if (!why.empty()) {
      result.ok = false;
      result.seed = rt.seed();
      result.message = "trpl: scenario failed with seed " + std::to_string(result.seed) + " (" + why +
                       "); replay: TRPL_SEED=" + std::to_string(result.seed);
      std::fprintf(stderr, "%s\n", result.message.c_str());
      return result;
    }
  }
  return result;
}

}  // namespace trpl::testing
