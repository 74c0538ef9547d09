// trpl::testing::run_seeds: a planted interleaving bug is found within 1000 seeds, the failing
// seed is reported with its replay line, and TRPL_SEED replays exactly that seed.
#include "trpl/testing.hpp"

#include <gtest/gtest.h>

#include <cstdlib>
#include <stdexcept>
#include <string>

#include "trpl/trpl.hpp"

namespace {

// A scheduling point that does not move the clock: wait for a task that does nothing, so the
// deterministic scheduler chooses which ready task runs next.
trpl::Task<void> yield_point() {
  auto h = trpl::spawn_task([]() -> trpl::Task<void> { co_return; });
  (co_await h).value();
}

// Two tasks read a counter, reach a scheduling point, then write it back incremented: some
// interleavings lose an update. Returns the final count (2 when nothing was lost).
int racy_count(trpl::Runtime& rt) {
  int counter = 0;
  rt.block_on([&counter]() -> trpl::Task<void> {
    auto increment = [&counter]() -> trpl::Task<void> {
      const int seen = counter;
      co_await yield_point();
      counter = seen + 1;
    };
    auto a = trpl::spawn_task(increment);
    auto b = trpl::spawn_task(increment);
    (co_await a).value();
    (co_await b).value();
  });
  return counter;
}

class RunSeeds : public ::testing::Test {
 protected:
  void SetUp() override { ::unsetenv("TRPL_SEED"); }
  void TearDown() override { ::unsetenv("TRPL_SEED"); }
};

TEST_F(RunSeeds, FindsAPlantedLostUpdateWithin1000SeedsAndNamesTheReplay) {
  ::testing::internal::CaptureStderr();
  trpl::testing::SeedSearch found =
      trpl::testing::run_seeds(1000, [](trpl::Runtime& rt) { return racy_count(rt) == 2; });
  const std::string err = ::testing::internal::GetCapturedStderr();
  ASSERT_FALSE(found.ok) << "no seed in 0..999 lost an update";
  EXPECT_LE(found.runs, 1000u);
  const std::string replay = "TRPL_SEED=" + std::to_string(found.seed);
  EXPECT_NE(found.message.find(replay), std::string::npos) << found.message;
  EXPECT_NE(err.find(replay), std::string::npos) << err;

  // The same seed fails again, and TRPL_SEED makes run_seeds run exactly that one.
  trpl::Runtime again = trpl::Runtime::builder().deterministic(found.seed).build();
  EXPECT_NE(racy_count(again), 2);
  ::setenv("TRPL_SEED", std::to_string(found.seed).c_str(), 1);
  ::testing::internal::CaptureStderr();
  trpl::testing::SeedSearch replayed =
      trpl::testing::run_seeds(1000, [](trpl::Runtime& rt) { return racy_count(rt) == 2; }, 5000);
  ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(replayed.ok);
  EXPECT_EQ(replayed.runs, 1u);
  EXPECT_EQ(replayed.seed, found.seed);
}

TEST_F(RunSeeds, RunsEverySeedWhenTheScenarioHolds) {
  std::uint64_t seen = 0;
  trpl::testing::SeedSearch r = trpl::testing::run_seeds(
      50, [&seen](trpl::Runtime& rt) {
        ++seen;
        rt.block_on([]() -> trpl::Task<void> { co_await trpl::sleep(std::chrono::milliseconds(5)); });
      },
      100);
  EXPECT_TRUE(r.ok) << r.message;
  EXPECT_EQ(r.runs, 50u);
  EXPECT_EQ(seen, 50u);
}

TEST_F(RunSeeds, AThrowingScenarioFailsWithItsMessage) {
  ::testing::internal::CaptureStderr();
  trpl::testing::SeedSearch r = trpl::testing::run_seeds(
      10, [](trpl::Runtime& rt) -> bool { return rt.seed() != 3 || (throw std::runtime_error("seed three"), false); });
  ::testing::internal::GetCapturedStderr();
  EXPECT_FALSE(r.ok);
  EXPECT_EQ(r.seed, 3u);
  EXPECT_EQ(r.runs, 4u);
  EXPECT_NE(r.message.find("threw: seed three"), std::string::npos) << r.message;
}

}  // namespace
