// Tests of the book's listings 17-6 … 17-13 (examples/): exact lines, order and virtual-time
// stamps under paused time, loose checks in real time, and the tour's handling of the programs.
#include "listings.hpp"

#include <gtest/gtest.h>
#include <sys/wait.h>

#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <optional>
#include <ostream>
#include <regex>
#include <streambuf>
#include <string>
#include <thread>
#include <trpl/trpl.hpp>
#include <utility>
#include <vector>

namespace {

using namespace std::chrono_literals;

// One line a listing printed, stamped with the ms since the listing started on trpl's clock.
struct Line {
  long long ms;
  std::string text;
  friend bool operator==(const Line&, const Line&) = default;
  friend std::ostream& operator<<(std::ostream& os, const Line& l) {
    return os << l.ms << " ms | " << l.text;
  }
};

// Swaps std::cout's and std::cerr's buffers for recorders for as long as it lives. Each
// completed line is stamped with trpl::Instant::now() minus the start set by set_start(): the
// virtual clock when the line is printed inside a paused runtime, the real one otherwise.
class Capture {
 public:
  Capture() : out_(*this, out_lines_), err_(*this, err_lines_) {
    old_out_ = std::cout.rdbuf(&out_);
    old_err_ = std::cerr.rdbuf(&err_);
  }
  ~Capture() {
    std::cout.rdbuf(old_out_);
    std::cerr.rdbuf(old_err_);
  }
  Capture(const Capture&) = delete;
  Capture& operator=(const Capture&) = delete;

  // Call on the clock the listing will run on (inside the runtime, for virtual time).
  void set_start(trpl::Instant start) {
    std::lock_guard lock(mu_);
    start_ = start;
  }
  std::vector<Line> out() const {
    std::lock_guard lock(mu_);
    return out_lines_;
  }
  std::vector<Line> err() const {
    std::lock_guard lock(mu_);
    return err_lines_;
  }
  long long ms_since_start() const {
    std::lock_guard lock(mu_);
    return std::chrono::duration_cast<std::chrono::milliseconds>(trpl::Instant::now() - start_)
        .count();
  }

 private:
  class Recorder final : public std::streambuf {
   public:
    Recorder(Capture& owner, std::vector<Line>& lines) : owner_(owner), lines_(lines) {}

   protected:
    int_type overflow(int_type c) override {
      if (!traits_type::eq_int_type(c, traits_type::eof())) put(traits_type::to_char_type(c));
      return traits_type::not_eof(c);
    }
    std::streamsize xsputn(const char* s, std::streamsize n) override {
      for (std::streamsize i = 0; i < n; ++i) put(s[i]);
      return n;
    }

   private:
    void put(char c) {
      if (c != '\n') {
        partial_ += c;
        return;
      }
      // Stamped when the line is complete: that is when println has written it.
      const trpl::Instant now = trpl::Instant::now();
      std::lock_guard lock(owner_.mu_);
      lines_.push_back(
          {std::chrono::duration_cast<std::chrono::milliseconds>(now - owner_.start_).count(),
           std::exchange(partial_, {})});
    }
    Capture& owner_;
    std::vector<Line>& lines_;
    std::string partial_;  // only touched under println's lock (one writer at a time)
  };

  mutable std::mutex mu_;
  trpl::Instant start_;
  std::vector<Line> out_lines_;
  std::vector<Line> err_lines_;
  Recorder out_;
  Recorder err_;
  std::streambuf* old_out_ = nullptr;
  std::streambuf* old_err_ = nullptr;
};

// Ends the test process with a message when a listing has not finished within `limit` of real
// time, so that a hang (say, a join that keeps a moved-in Sender alive) fails fast and says
// which listing it was, instead of waiting for CTest's timeout.
class Watchdog {
 public:
  Watchdog(const char* what, std::chrono::seconds limit)
      : thread_([this, what, limit] {
          std::unique_lock lock(mu_);
          if (!cv_.wait_for(lock, limit, [this] { return done_; })) {
            std::fprintf(stderr, "watchdog: %s did not finish within %lld s of real time\n", what,
                         static_cast<long long>(limit.count()));
            std::abort();
          }
        }) {}
  ~Watchdog() {
    {
      std::lock_guard lock(mu_);
      done_ = true;
    }
    cv_.notify_one();
    thread_.join();
  }
  Watchdog(const Watchdog&) = delete;
  Watchdog& operator=(const Watchdog&) = delete;

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool done_ = false;
  std::thread thread_;  // last: starts once the members it uses exist
};

// Paused runs take milliseconds of real time; this is only there to turn a hang into a failure.
constexpr auto kPausedLimit = std::chrono::seconds(30);
// Real-time runs last up to 4.5 s; a loaded machine (sanitizers, parallel tests) gets room.
constexpr auto kRealLimit = std::chrono::seconds(30);

trpl::Runtime paused_runtime() {
  return trpl::Runtime::builder().current_thread().start_paused(true).build();
}

// Runs a listing's main future to completion on `rt`, as its main() does with trpl::run, and
// returns the virtual ms at which it completed.
long long run_to_completion(trpl::Runtime& rt, Capture& cap, trpl::Task<> (*main_future)()) {
  Watchdog watchdog("a listing's main future (paused time)", kPausedLimit);
  return rt.block_on([&]() -> trpl::Task<long long> {
    cap.set_start(trpl::Instant::now());
    co_await main_future();
    co_return cap.ms_since_start();
  });
}

std::string first(int i) { return "hi number " + std::to_string(i) + " from the first task!"; }
std::string second(int i) { return "hi number " + std::to_string(i) + " from the second task!"; }
std::string received(const std::string& word) { return "received '" + word + "'"; }

// ---- paused time: exact lines, order and virtual timestamps -----------------------------------

TEST(Listing17_06, MainLoopLeadsEachTickAndTheTaskIsCutOffWhenMainEndsAt2000ms) {
  Capture cap;
  auto rt = paused_runtime();
  const long long end_ms = run_to_completion(rt, cap, listing_17_06::main_future);
  // The main future prints first in every tick: it ran before the spawned task started, so its
  // timers were registered first, and equal deadlines fire in registration order. At 2000 ms
  // main's fourth sleep ends the block_on before the task gets to print its fifth line.
  const std::vector<Line> expected = {
      {0, second(1)},    {0, first(1)},    {500, second(2)},  {500, first(2)},
      {1000, second(3)}, {1000, first(3)}, {1500, second(4)}, {1500, first(4)},
  };
  EXPECT_EQ(cap.out(), expected);
  EXPECT_EQ(end_ms, 2000);
  EXPECT_TRUE(cap.err().empty());
}

TEST(Listing17_06, SpawnedTaskIsStillPendingWhenTheMainFutureReturns) {
  // What stops the first task in trpl::run is the runtime's shutdown, not the end of the main
  // future: on the same runtime, a later block_on lets the detached task carry on from line 5.
  Capture cap;
  auto rt = paused_runtime();
  ASSERT_EQ(run_to_completion(rt, cap, listing_17_06::main_future), 2000);
  rt.block_on([]() -> trpl::Task<> { co_await trpl::sleep(10s); });
  const std::vector<Line> out = cap.out();
  ASSERT_EQ(out.size(), 8u + 5u);
  const std::vector<Line> rest(out.begin() + 8, out.end());
  const std::vector<Line> expected = {
      {2000, first(5)}, {2500, first(6)}, {3000, first(7)}, {3500, first(8)}, {4000, first(9)},
  };
  EXPECT_EQ(rest, expected);
}

TEST(Listing17_06, RuntimeDestructionCancelsTheSpawnedTaskWithoutRunningItFurther) {
  // The task is pending (previous test) with a wake due at 2000 ms. Destroying the runtime must
  // destroy its frame without resuming it: no line 5 … 9 appears, destruction returns, and
  // (under ASan's leak check) the frame is freed.
  Capture cap;
  std::optional<trpl::Runtime> rt(paused_runtime());
  ASSERT_EQ(run_to_completion(*rt, cap, listing_17_06::main_future), 2000);
  const std::vector<Line> before = cap.out();
  rt.reset();
  EXPECT_EQ(cap.out(), before);
  for (const Line& l : cap.out()) {
    for (int i = 5; i < 10; ++i) EXPECT_NE(l.text, first(i));
  }
}

TEST(Listing17_07, AwaitingTheJoinHandleRunsTheTaskToNineAndExitsAt4500ms) {
  Capture cap;
  auto rt = paused_runtime();
  const long long end_ms = run_to_completion(rt, cap, listing_17_07::main_future);
  const std::vector<Line> expected = {
      {0, second(1)},   {0, first(1)},     {500, second(2)}, {500, first(2)},  {1000, second(3)},
      {1000, first(3)}, {1500, second(4)}, {1500, first(4)}, {2000, first(5)}, {2500, first(6)},
      {3000, first(7)}, {3500, first(8)},  {4000, first(9)},
  };
  EXPECT_EQ(cap.out(), expected);
  // The task's last sleep ends at 4500 ms; only then does the handle complete.
  EXPECT_EQ(end_ms, 4500);
}

TEST(Listing17_08, JoinRunsFirstThenSecondInEveryTickAndExitsAt4500ms) {
  Capture cap;
  auto rt = paused_runtime();
  const long long end_ms = run_to_completion(rt, cap, listing_17_08::main_future);
  const std::vector<Line> expected = {
      {0, first(1)},     {0, second(1)},   {500, first(2)},   {500, second(2)}, {1000, first(3)},
      {1000, second(3)}, {1500, first(4)}, {1500, second(4)}, {2000, first(5)}, {2500, first(6)},
      {3000, first(7)},  {3500, first(8)}, {4000, first(9)},
  };
  EXPECT_EQ(cap.out(), expected);
  EXPECT_EQ(end_ms, 4500);
}

TEST(Listing17_09, ReceivesHiAtOnceAndExits) {
  Capture cap;
  auto rt = paused_runtime();
  const long long end_ms = run_to_completion(rt, cap, listing_17_09::main_future);
  const std::vector<Line> expected = {{0, received("hi")}};
  EXPECT_EQ(cap.out(), expected);
  EXPECT_EQ(end_ms, 0);
}

// 17-10 and 17-11 never complete: they run as a spawned task while block_on sleeps 10 s of
// virtual time; then the task must still be pending, and destroying the runtime cancels it.
void expect_never_exits(trpl::Task<> (*main_future)(), const std::vector<Line>& expected) {
  Capture cap;
  trpl::JoinHandle<void> handle;  // outlives the runtime, to look at the task after shutdown
  std::optional<trpl::Runtime> rt(paused_runtime());
  Watchdog watchdog("a never-exiting listing's 10 s of virtual time", kPausedLimit);
  handle = rt->block_on([&]() -> trpl::Task<trpl::JoinHandle<void>> {
    cap.set_start(trpl::Instant::now());
    auto h = trpl::spawn_task(main_future);
    co_await trpl::sleep(10s);
    co_return std::move(h);
  });
  EXPECT_FALSE(handle.is_finished()) << "the listing should still wait on rx.recv() at 10 s";
  EXPECT_EQ(cap.out(), expected);
  rt.reset();
  EXPECT_TRUE(handle.is_finished()) << "destroying the runtime should have cancelled the task";
  EXPECT_EQ(cap.out(), expected);
}

TEST(Listing17_10, AllFourLinesArriveTogetherAt2000msAndItNeverExits) {
  expect_never_exits(listing_17_10::main_future, {
                                                     {2000, received("hi")},
                                                     {2000, received("from")},
                                                     {2000, received("the")},
                                                     {2000, received("future")},
                                                 });
}

TEST(Listing17_11, LinesArrive500msApartAndItNeverExits) {
  expect_never_exits(listing_17_11::main_future, {
                                                     {0, received("hi")},
                                                     {500, received("from")},
                                                     {1000, received("the")},
                                                     {1500, received("future")},
                                                 });
}

TEST(Listing17_12, MovedSenderClosesTheChannelWhenItsBlockEndsSoItExitsAt2000ms) {
  Capture cap;
  auto rt = paused_runtime();
  const long long end_ms = run_to_completion(rt, cap, listing_17_12::main_future);
  const std::vector<Line> expected = {
      {0, received("hi")},
      {500, received("from")},
      {1000, received("the")},
      {1500, received("future")},
  };
  EXPECT_EQ(cap.out(), expected);
  // Not later: the sender is dropped when tx_fut completes (its last sleep, 2000 ms), not when
  // the whole join ends (which would be never).
  EXPECT_EQ(end_ms, 2000);
  EXPECT_TRUE(cap.err().empty()) << "the listing file prints to stdout, not stderr";
}

TEST(Listing17_13, TwoSendersInterleaveWithMessagesBeforeFutureAt1500msAndItExitsAt6000ms) {
  Capture cap;
  auto rt = paused_runtime();
  const long long end_ms = run_to_completion(rt, cap, listing_17_13::main_future);
  // At 1500 ms both senders' deadlines are equal: tx's sleep (set at 0 ms) was registered
  // before tx1's third (set at 1000 ms), so tx runs first and `messages` precedes `future`,
  // as in the book.
  const std::vector<Line> expected = {
      {0, received("hi")},     {0, received("more")},        {500, received("from")},
      {1000, received("the")}, {1500, received("messages")}, {1500, received("future")},
      {3000, received("for")}, {4500, received("you")},
  };
  EXPECT_EQ(cap.out(), expected);
  // The channel closes when the later sender, tx, is dropped after its last 1500 ms sleep.
  EXPECT_EQ(end_ms, 6000);
}

// ---- real time, the default multi-thread runtime of trpl::run (loose timing) -----------------

TEST(Listing17_06, InRealTimeRunReturnsAfterTwoSecondsAndTheTaskPrintsNothingMore) {
  Capture cap;
  cap.set_start(trpl::Instant::now());
  Watchdog watchdog("trpl::run of a listing (real time)", kRealLimit);
  trpl::run(listing_17_06::main_future);
  const long long returned_ms = cap.ms_since_start();
  EXPECT_GE(returned_ms, 1900);
  EXPECT_LT(returned_ms, 3000);
  // Line 6 would come at ≈2500 ms if the task survived run.
  std::this_thread::sleep_for(1s);
  std::vector<std::string> firsts, seconds;
  for (const Line& l : cap.out()) {
    if (l.text.find("first") != std::string::npos)
      firsts.push_back(l.text);
    else
      seconds.push_back(l.text);
  }
  EXPECT_EQ(seconds, (std::vector<std::string>{second(1), second(2), second(3), second(4)}));
  // The task runs on a worker thread: its fifth line (at ≈2000 ms) races the end of run.
  ASSERT_GE(firsts.size(), 4u);
  ASSERT_LE(firsts.size(), 5u);
  for (std::size_t i = 0; i < firsts.size(); ++i) EXPECT_EQ(firsts[i], first(int(i) + 1));
}

TEST(Listing17_08, InRealTimeJoinKeepsTheSameInterleavingOnTheMultiThreadRuntime) {
  Capture cap;
  cap.set_start(trpl::Instant::now());
  Watchdog watchdog("trpl::run of a listing (real time)", kRealLimit);
  trpl::run(listing_17_08::main_future);
  const long long returned_ms = cap.ms_since_start();
  std::vector<std::string> texts;
  for (const Line& l : cap.out()) texts.push_back(l.text);
  const std::vector<std::string> expected = {
      first(1),  second(1), first(2), second(2), first(3), second(3), first(4),
      second(4), first(5),  first(6), first(7),  first(8), first(9),
  };
  EXPECT_EQ(texts, expected);
  EXPECT_GE(returned_ms, 4400);
  EXPECT_LT(returned_ms, 6000);
}

TEST(Listing17_12, InRealTimeLinesAreAbout500msApartAndItExitsWithinThreeSeconds) {
  Capture cap;
  cap.set_start(trpl::Instant::now());
  Watchdog watchdog("trpl::run of a listing (real time)", kRealLimit);
  trpl::run(listing_17_12::main_future);
  const long long returned_ms = cap.ms_since_start();
  const std::vector<Line> out = cap.out();
  ASSERT_EQ(out.size(), 4u);
  const char* words[] = {"hi", "from", "the", "future"};
  for (std::size_t i = 0; i < 4; ++i) EXPECT_EQ(out[i].text, received(words[i]));
  EXPECT_LT(out[0].ms, 150);
  for (std::size_t i = 1; i < 4; ++i) {
    EXPECT_NEAR(out[i].ms - out[i - 1].ms, 500, 150) << "between lines " << i << " and " << i + 1;
  }
  EXPECT_GE(returned_ms, 1900);
  EXPECT_LT(returned_ms, 3000);
}

// ---- the tour (examples/tour.cpp), run as a process ---------------------------------------

struct ProcessResult {
  int exit_code = -1;
  std::string output;
};

ProcessResult run_tour(const std::string& args) {
  ProcessResult r;
  const std::string cmd = std::string(TRPL_TOUR_PATH) + " " + args + " 2>&1";
  FILE* p = ::popen(cmd.c_str(), "r");
  if (p == nullptr) return r;
  char buf[4096];
  std::size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, p)) > 0) r.output.append(buf, n);
  const int status = ::pclose(p);
  if (WIFEXITED(status)) r.exit_code = WEXITSTATUS(status);
  return r;
}

TEST(Tour, StampsEachLineOfAListingAndReportsItsExit) {
  const ProcessResult r = run_tour("17-09");
  EXPECT_EQ(r.exit_code, 0) << r.output;
  EXPECT_NE(r.output.find("=== Listing 17-9 "), std::string::npos) << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("\n +[0-9]+ ms \\| received 'hi'\n")))
      << r.output;
  EXPECT_TRUE(std::regex_search(r.output, std::regex("\nexited 0 after [0-9]+ ms\n"))) << r.output;
}

TEST(Tour, StopsAHangingListingAfterThreeSecondsAndSaysWhyItHangs) {
  const auto start = std::chrono::steady_clock::now();
  const ProcessResult r = run_tour("17-10");
  const auto took = std::chrono::steady_clock::now() - start;
  EXPECT_EQ(r.exit_code, 0) << "hanging is what the book says 17-10 does\n" << r.output;
  EXPECT_LT(took, 6s);
  std::smatch m;
  ASSERT_TRUE(
      std::regex_search(r.output, m, std::regex("\nstopped after ([0-9]+) ms \\(SIGTERM\\)\n")))
      << r.output;
  const long long stopped_ms = std::stoll(m[1].str());
  EXPECT_GE(stopped_ms, 3000);
  EXPECT_LT(stopped_ms, 4000);
  EXPECT_NE(r.output.find("why it never exits:"), std::string::npos) << r.output;
  // All four lines come at ≈2000 ms (loosely: a loaded machine may be late).
  const std::regex line(" +([0-9]+) ms \\| received '(hi|from|the|future)'");
  int lines = 0;
  for (auto it = std::sregex_iterator(r.output.begin(), r.output.end(), line);
       it != std::sregex_iterator(); ++it) {
    ++lines;
    const long long ms = std::stoll((*it)[1].str());
    EXPECT_GE(ms, 1950);
    EXPECT_LT(ms, 2500);
  }
  EXPECT_EQ(lines, 4) << r.output;
}

TEST(Tour, RejectsAnUnknownListing) {
  const ProcessResult r = run_tour("17-99");
  EXPECT_EQ(r.exit_code, 2) << r.output;
  EXPECT_NE(r.output.find("no listing 17-99"), std::string::npos) << r.output;
}

}  // namespace
