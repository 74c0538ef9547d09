// Tests for trpl::join / join3 (include/trpl/join.hpp): results, what join accepts, ownership of
// callables, fairness (listings 17-8, 17-11 … 17-13), exceptions, cancellation, start-up.
#include "trpl/join.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <cstdint>
#include <expected>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>
#include <vector>

#include "support/counted.hpp"
#include "support/harness.hpp"
#include "trpl/runtime.hpp"
#include "trpl/sync/channel.hpp"
#include "trpl/time.hpp"

namespace {

using trpl::test::paused_runtime;
using trpl::test::ms_since;
using trpl::test::finishes_within;

using namespace std::chrono_literals;
using trpl::test::Counted;
using trpl::test::CountedScope;




// "<ms> | <text>" lines, as the book's measured outputs are written.
struct Log {
  trpl::Instant start = trpl::Instant::now();
  std::vector<std::string> lines;
  void operator()(const std::string& text) {
    lines.push_back(std::to_string(ms_since(start)) + " | " + text);
  }
};

trpl::Task<int> value_after(std::chrono::milliseconds d, int v) {
  co_await trpl::sleep(d);
  co_return v;
}

trpl::Task<std::string> text_after(std::chrono::milliseconds d, std::string s) {
  co_await trpl::sleep(d);
  co_return s;
}

trpl::Task<> nothing_after(std::chrono::milliseconds d) { co_await trpl::sleep(d); }

// GCC 12 miscompiles a lambda prvalue with non-trivial captures written inside a co_await
// expression: the closure is bit-copied and both copies are destroyed (its captures die twice;
// with a Sender capture that is a double release). So these tests name an owning lambda first
// and pass it with std::move; the inline spelling is checked under Clang only (see
// AnInlineRvalueCallableInTheCoAwaitExpressionIsDestroyedExactlyOnce).
#if defined(__clang__) || defined(TRPL_TEST_GCC_LAMBDA_TEMPORARY_FIXED)
#define TRPL_TEST_INLINE_OWNING_LAMBDAS 1
#endif

struct Boom : std::runtime_error {
  explicit Boom(int code) : std::runtime_error("boom"), code(code) {}
  int code;
};

// ---- results and accepted operations ----

TEST(Join, ResultsComeInArgumentOrderWithVoidAsMonostate) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    const auto start = trpl::Instant::now();
    // Completion order is 2nd, 3rd, 1st; the tuple keeps argument order.
    auto results =
        co_await trpl::join(value_after(30ms, 1), text_after(10ms, "two"), nothing_after(20ms));
    static_assert(std::is_same_v<decltype(results), std::tuple<int, std::string, std::monostate>>);
    EXPECT_EQ(std::get<0>(results), 1);
    EXPECT_EQ(std::get<1>(results), "two");
    EXPECT_EQ(ms_since(start), 30);  // concurrent, not 60
  });
}

TEST(Join, AcceptsTasksHandlesAndLvalueAndRvalueCallables) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    const auto start = trpl::Instant::now();
    trpl::Task<int> lvalue_task = value_after(5ms, 2);
    auto lvalue_callable = []() -> trpl::Task<std::string> { co_return "lvalue"; };
    auto [a, b, c, d, e] = co_await trpl::join(
        value_after(10ms, 1),                                         // rvalue Task
        lvalue_task,                                                  // lvalue Task
        lvalue_callable,                                              // lvalue callable
        []() -> trpl::Task<double> { co_return 0.5; },                // rvalue callable
        trpl::spawn_task([]() -> trpl::Task<int> { co_return 9; }));  // awaitable
    static_assert(std::is_same_v<decltype(e), std::expected<int, trpl::JoinError>>);
    EXPECT_EQ(a, 1);
    EXPECT_EQ(b, 2);
    EXPECT_EQ(c, "lvalue");
    EXPECT_EQ(d, 0.5);
    EXPECT_EQ(e.value_or(-1), 9);
    EXPECT_EQ(ms_since(start), 10);
    EXPECT_TRUE(lvalue_task.is_ready());  // awaited in place, not moved out
  });
}

// GCC 12 copies the awaiter when `co_await` is applied to a function call returning an lvalue
// reference; join's child and the root coroutine name the operand first, so joining a Sleep, a
// nested join or any non-copyable awaiter compiles on GCC 12 too. These tests prove it.
#define TRPL_TEST_AWAITER_OPERANDS 1

#if defined(TRPL_TEST_AWAITER_OPERANDS)
TEST(Join, AcceptsSleepAwaitablesByValueAndByReference) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    const auto start = trpl::Instant::now();
    trpl::Sleep lvalue_sleep = trpl::sleep(7ms);
    auto [a, b, c] = co_await trpl::join(trpl::sleep(15ms), lvalue_sleep, value_after(3ms, 3));
    static_assert(std::is_same_v<decltype(a), std::monostate>);
    static_assert(std::is_same_v<decltype(b), std::monostate>);
    EXPECT_EQ(c, 3);
    EXPECT_EQ(ms_since(start), 15);
  });
}
#endif

TEST(Join, Join3YieldsThreeResultsInArgumentOrder) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    auto [a, b, c] = co_await trpl::join3(text_after(3ms, "a"), value_after(1ms, 2),
                                          []() -> trpl::Task<bool> { co_return true; });
    EXPECT_EQ(a, "a");
    EXPECT_EQ(b, 2);
    EXPECT_TRUE(c);
  });
}

TEST(Join, JoinOfZeroOperationsCompletesAtOnceWithAnEmptyTuple) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    const auto start = trpl::Instant::now();
    auto r = co_await trpl::join();
    static_assert(std::is_same_v<decltype(r), std::tuple<>>);
    EXPECT_EQ(ms_since(start), 0);
  });
}

TEST(Join, AJoinInsideAJoinChildRunsAllLeavesConcurrently) {
  auto rt = paused_runtime();
  Log log;
  rt.block_on([&]() -> trpl::Task<> {
    log.start = trpl::Instant::now();
    auto leaf = [&](std::chrono::milliseconds d, std::string name) -> trpl::Task<std::string> {
      co_await trpl::sleep(d);
      log(name);
      co_return name;
    };
    auto inner = [&]() -> trpl::Task<std::tuple<std::string, std::string>> {
      co_return co_await trpl::join(leaf(30ms, "a"), leaf(10ms, "b"));
    };
    auto [ab, c] = co_await trpl::join(inner, leaf(20ms, "c"));
    EXPECT_EQ(ab, std::make_tuple(std::string("a"), std::string("b")));
    EXPECT_EQ(c, "c");
    EXPECT_EQ(ms_since(log.start), 30);
  });
  EXPECT_EQ(log.lines, (std::vector<std::string>{"10 | b", "20 | c", "30 | a"}));
}

#if defined(TRPL_TEST_AWAITER_OPERANDS)
TEST(Join, NestedJoinsRunAllLeavesConcurrentlyAndYieldNestedTuples) {
  auto rt = paused_runtime();
  Log log;
  rt.block_on([&]() -> trpl::Task<> {
    log.start = trpl::Instant::now();
    auto leaf = [&](std::chrono::milliseconds d, std::string name) -> trpl::Task<std::string> {
      co_await trpl::sleep(d);
      log(name);
      co_return name;
    };
    auto [inner, c] =
        co_await trpl::join(trpl::join(leaf(30ms, "a"), leaf(10ms, "b")), leaf(20ms, "c"));
    EXPECT_EQ(std::get<0>(inner), "a");
    EXPECT_EQ(std::get<1>(inner), "b");
    EXPECT_EQ(c, "c");
  });
  EXPECT_EQ(log.lines, (std::vector<std::string>{"10 | b", "20 | c", "30 | a"}));
}
#endif

// ---- start-up ----

TEST(Join, ChildrenThatCompleteSynchronouslyDuringStartUpKeepTheirResults) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    const auto start = trpl::Instant::now();
    auto now = [](int v) -> trpl::Task<int> { co_return v; };
    auto [a, b, c] = co_await trpl::join(now(1), value_after(10ms, 2), now(3));
    EXPECT_EQ(std::tie(a, b, c), std::make_tuple(1, 2, 3));
    EXPECT_EQ(ms_since(start), 10);
    // All synchronous: the join completes without the frame ever waiting.
    auto [x, y] = co_await trpl::join(now(4), now(5));
    EXPECT_EQ(std::tie(x, y), std::make_tuple(4, 5));
    EXPECT_EQ(ms_since(start), 10);
  });
}

TEST(Join, AWakeDeliveredDuringStartUpByASynchronousSiblingIsNotLost) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<int>();
    // The first child waits in recv; the second sends and completes while the join is still
    // starting its children, so the first is woken before the join has suspended.
    auto receiver = [&]() -> trpl::Task<int> { co_return (co_await rx.recv()).value_or(-1); };
    auto sender = [&]() -> trpl::Task<> {
      EXPECT_TRUE(tx.send(42).has_value());
      co_return;
    };
    auto [got, ignored] = co_await trpl::join(receiver, sender);
    EXPECT_EQ(got, 42);
  });
}

// ---- ownership of callables (invariant 6) ----

TEST(Join, AnRvalueCallableIsDestroyedAsSoonAsItsChildCompletesBeforeJoinEnds) {
  CountedScope scope;
  auto rt = paused_runtime();
  std::vector<std::int64_t> destroyed_at;  // Counted destructions seen by the sibling at 5, 20 ms
  rt.block_on([&]() -> trpl::Task<> {
    auto observer = [&]() -> trpl::Task<> {
      co_await trpl::sleep(5ms);
      destroyed_at.push_back(Counted::destructions.load());
      co_await trpl::sleep(15ms);
      destroyed_at.push_back(Counted::destructions.load());
      co_await trpl::sleep(10ms);
    };
    auto owning = [c = Counted(1)]() -> trpl::Task<int> {
      co_await trpl::sleep(10ms);
      co_return c.value;
    };
    co_await trpl::join(std::move(owning), observer);
  });
  ASSERT_EQ(destroyed_at.size(), 2u);
  // Between 5 ms and 20 ms the only Counted to die is the one the finished child owned.
  EXPECT_EQ(destroyed_at[1] - destroyed_at[0], 1);
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

#if defined(TRPL_TEST_INLINE_OWNING_LAMBDAS)
TEST(Join, AnInlineRvalueCallableInTheCoAwaitExpressionIsDestroyedExactlyOnce) {
  CountedScope scope;
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<int>();
    auto receiver = [&]() -> trpl::Task<int> {
      int n = 0;
      while (co_await rx.recv()) ++n;
      co_return n;
    };
    // The book's `async move` block written in place.
    auto [ignored, n] = co_await trpl::join(
        [tx = std::move(tx), c = Counted(1)]() -> trpl::Task<> {
          EXPECT_TRUE(tx.send(1).has_value());
          co_await trpl::sleep(1ms);
          EXPECT_TRUE(tx.send(2).has_value());
        },
        receiver);
    EXPECT_EQ(n, 2);
  });
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}
#endif

TEST(Join, AnLvalueCallableIsBorrowedNeitherCopiedNorDestroyed) {
  CountedScope scope;
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    auto callable = [c = Counted(7)]() -> trpl::Task<int> {
      co_await trpl::sleep(1ms);
      co_return c.moved_from ? -1 : c.value;
    };
    const auto baseline = Counted::constructions();
    auto [a, b] = co_await trpl::join(callable, value_after(2ms, 0));
    EXPECT_EQ(a, 7);
    EXPECT_EQ(Counted::constructions(), baseline);  // no copy, no move
    EXPECT_EQ(Counted::alive(), 1);                 // the lambda's own capture
    auto [again] = co_await trpl::join(callable);   // still usable
    EXPECT_EQ(again, 7);
    (void)b;
  });
  EXPECT_EQ(Counted::alive(), 0);
}

// ---- fairness (invariant 4) ----

TEST(JoinFairness, TwoBlocksPrintInListing17_8sOrderAtEach500msTick) {
  auto rt = paused_runtime();
  Log log;
  rt.block_on([&]() -> trpl::Task<> {
    log.start = trpl::Instant::now();
    auto fut1 = [&]() -> trpl::Task<> {
      for (int i = 1; i < 10; ++i) {
        log("hi number " + std::to_string(i) + " from the first task!");
        co_await trpl::sleep(500ms);
      }
    };
    auto fut2 = [&]() -> trpl::Task<> {
      for (int i = 1; i < 5; ++i) {
        log("hi number " + std::to_string(i) + " from the second task!");
        co_await trpl::sleep(500ms);
      }
    };
    co_await trpl::join(fut1, fut2);
    log("exit");
  });
  const std::vector<std::string> want{
      "0 | hi number 1 from the first task!",    "0 | hi number 1 from the second task!",
      "500 | hi number 2 from the first task!",  "500 | hi number 2 from the second task!",
      "1000 | hi number 3 from the first task!", "1000 | hi number 3 from the second task!",
      "1500 | hi number 4 from the first task!", "1500 | hi number 4 from the second task!",
      "2000 | hi number 5 from the first task!", "2500 | hi number 6 from the first task!",
      "3000 | hi number 7 from the first task!", "3500 | hi number 8 from the first task!",
      "4000 | hi number 9 from the first task!", "4500 | exit"};
  EXPECT_EQ(log.lines, want);
}

TEST(JoinFairness, ChildrenYieldingThroughSleepsAlternateExactly) {
  auto rt = paused_runtime();
  std::string order;
  rt.block_on([&]() -> trpl::Task<> {
    auto child = [&](char name) -> trpl::Task<> {
      for (int i = 0; i < 50; ++i) {
        order += name;
        co_await trpl::sleep(1ms);
      }
    };
    co_await trpl::join3(child('a'), child('b'), child('c'));
  });
  std::string want;
  for (int i = 0; i < 50; ++i) want += "abc";
  EXPECT_EQ(order, want);
}

TEST(JoinFairness, ChildrenPingPongingThroughChannelsAlternateExactly) {
  std::string order;
  EXPECT_TRUE(finishes_within(10s, [&]() -> trpl::Task<> {
    auto [to_b, b_rx] = trpl::channel<int>();
    auto [to_a, a_rx] = trpl::channel<int>();
    auto a = [&, tx = std::move(to_b)]() -> trpl::Task<> {
      EXPECT_TRUE(tx.send(0).has_value());
      while (std::optional<int> v = co_await a_rx.recv()) {
        order += 'a';
        if (*v >= 40) break;
        EXPECT_TRUE(tx.send(*v + 1).has_value());
      }
    };  // dropping tx ends b
    auto b = [&, tx = std::move(to_a)]() -> trpl::Task<> {
      while (std::optional<int> v = co_await b_rx.recv()) {
        order += 'b';
        EXPECT_TRUE(tx.send(*v + 1).has_value());
      }
    };
    co_await trpl::join(std::move(a), std::move(b));
  }));
  std::string want;
  for (int i = 0; i < 21; ++i) want += "ba";
  EXPECT_EQ(order, want);
}

TEST(JoinFairness, ReadyChildrenRunInTheOrderTheyBecameReady) {
  auto rt = paused_runtime();
  std::string order;
  rt.block_on([&]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<int>();
    // At 1 ms, a's and b's timers fire (a's registered first). a then wakes c, which became
    // ready after b: b must run before c, although c is woken by the frame that just ran.
    auto c = [&]() -> trpl::Task<> {
      (void)co_await rx.recv();
      order += 'c';
    };
    auto a = [&]() -> trpl::Task<> {
      co_await trpl::sleep(1ms);
      order += 'a';
      EXPECT_TRUE(tx.send(1).has_value());
    };
    auto b = [&]() -> trpl::Task<> {
      co_await trpl::sleep(1ms);
      order += 'b';
    };
    co_await trpl::join3(c, a, b);
  });
  EXPECT_EQ(order, "abc");
}

// ---- the book's channel listings ----

const std::vector<std::string> kFirstWords{"hi", "from", "the", "future"};
const std::vector<std::string> kSecondWords{"more", "messages", "for", "you"};

TEST(JoinListings, OwnedSenderChildFinishingClosesTheChannelSoJoinReturns_17_12) {
  Log log;
  EXPECT_TRUE(finishes_within(10s, [&]() -> trpl::Task<> {
    log.start = trpl::Instant::now();
    auto [tx, rx] = trpl::channel<std::string>();
    auto tx_fut = [tx = std::move(tx)]() -> trpl::Task<> {
      for (const std::string& word : kFirstWords) {
        EXPECT_TRUE(tx.send(word).has_value());
        co_await trpl::sleep(500ms);
      }
    };
    auto rx_fut = [&]() -> trpl::Task<> {
      while (std::optional<std::string> value = co_await rx.recv()) {
        log("received '" + *value + "'");
      }
    };
    co_await trpl::join(std::move(tx_fut), rx_fut);
    log("exit");
  }));
  const std::vector<std::string> want{"0 | received 'hi'", "500 | received 'from'",
                                      "1000 | received 'the'", "1500 | received 'future'",
                                      "2000 | exit"};
  EXPECT_EQ(log.lines, want);
}

TEST(JoinListings, BorrowedSenderKeepsTheJoinWaitingForever_17_11) {
  auto rt = paused_runtime();
  Log log;
  rt.block_on([&]() -> trpl::Task<> {
    log.start = trpl::Instant::now();
    auto handle = trpl::spawn_task([&]() -> trpl::Task<> {
      auto [tx, rx] = trpl::channel<std::string>();
      auto tx_fut = [&]() -> trpl::Task<> {  // borrows tx: it outlives this block
        for (const std::string& word : kFirstWords) {
          EXPECT_TRUE(tx.send(word).has_value());
          co_await trpl::sleep(500ms);
        }
      };
      auto rx_fut = [&]() -> trpl::Task<> {
        while (std::optional<std::string> value = co_await rx.recv()) {
          log("received '" + *value + "'");
        }
      };
      co_await trpl::join(tx_fut, rx_fut);
      log("join returned");
    });
    co_await trpl::sleep(10s);
    EXPECT_FALSE(handle.is_finished());
    handle.abort();
    auto result = co_await handle;
    EXPECT_TRUE(!result && result.error().is_cancelled());
  });
  const std::vector<std::string> want{"0 | received 'hi'", "500 | received 'from'",
                                      "1000 | received 'the'", "1500 | received 'future'"};
  EXPECT_EQ(log.lines, want);
}

TEST(JoinListings, TwoOwnedSendersAndAReceiverUnderJoin3_17_13) {
  Log log;
  EXPECT_TRUE(finishes_within(10s, [&]() -> trpl::Task<> {
    log.start = trpl::Instant::now();
    auto [tx, rx] = trpl::channel<std::string>();
    auto tx1_fut = [tx1 = tx.clone()]() -> trpl::Task<> {
      for (const std::string& word : kFirstWords) {
        EXPECT_TRUE(tx1.send(word).has_value());
        co_await trpl::sleep(500ms);
      }
    };
    auto rx_fut = [&]() -> trpl::Task<> {
      while (std::optional<std::string> value = co_await rx.recv()) {
        log("received '" + *value + "'");
      }
    };
    auto tx_fut = [tx = std::move(tx)]() -> trpl::Task<> {
      for (const std::string& word : kSecondWords) {
        EXPECT_TRUE(tx.send(word).has_value());
        co_await trpl::sleep(1500ms);
      }
    };
    co_await trpl::join3(std::move(tx1_fut), std::move(tx_fut), rx_fut);
    log("exit");
  }));
  // At 1500 ms both senders' timers are due; tx's was registered first (at 0 ms, tx1's at
  // 1000 ms), so with equal deadlines firing in registration order "messages" comes first, as
  // in the book.
  const std::vector<std::string> want{
      "0 | received 'hi'",     "0 | received 'more'",        "500 | received 'from'",
      "1000 | received 'the'", "1500 | received 'messages'", "1500 | received 'future'",
      "3000 | received 'for'", "4500 | received 'you'",      "6000 | exit"};
  EXPECT_EQ(log.lines, want);
}

// ---- exceptions (the first one cancels the siblings and is rethrown) ----

TEST(JoinErrors, AnExceptionCancelsTheSiblingsDeregistersTheirTimersAndIsRethrown) {
  CountedScope scope;
  auto rt = paused_runtime();
  bool sibling_resumed = false;
  rt.block_on([&]() -> trpl::Task<> {
    const auto start = trpl::Instant::now();
    auto borrowed = [&]() -> trpl::Task<> {
      Counted local(2);
      co_await trpl::sleep(2h);
      sibling_resumed = true;
    };
    auto owning = [c = Counted(1), &sibling_resumed]() -> trpl::Task<> {
      Counted local(1);
      co_await trpl::sleep(1h);
      sibling_resumed = true;
    };
    auto failing = []() -> trpl::Task<> {
      co_await trpl::sleep(10ms);
      throw Boom(3);
    };
    std::optional<int> code;
    try {
      co_await trpl::join(std::move(owning), borrowed, failing);
    } catch (const Boom& e) {
      code = e.code;
      // Both siblings' frames (their locals and the owned capture) are gone; what is left is
      // the moved-from capture of `owning` itself.
      EXPECT_EQ(Counted::alive(), 1);
    }
    EXPECT_EQ(code, 3);
    EXPECT_EQ(ms_since(start), 10);
    // Sleep past the cancelled deadlines: a timer left registered would now fire into a
    // destroyed frame (caught by ASan), or resume a sibling.
    co_await trpl::sleep(3h);
    EXPECT_EQ(ms_since(start), 10 + 3 * 3600 * 1000);
  });
  EXPECT_FALSE(sibling_resumed);
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

TEST(JoinErrors, SiblingsAreCancelledBeforeTheExceptionReachesTheAwaitingFrame) {
  CountedScope scope;
  auto rt = paused_runtime();
  bool sibling_resumed = false;
  std::int64_t alive_in_handler = -1;
  rt.block_on([&]() -> trpl::Task<> {
    auto sibling = [&]() -> trpl::Task<> {
      Counted local(1);
      co_await trpl::sleep(20ms);
      sibling_resumed = true;
    };
    auto failing = []() -> trpl::Task<> {
      co_await trpl::sleep(10ms);
      throw Boom(1);
    };
    // A named join outlives the co_await: its siblings must be gone anyway when it throws.
    auto joined = trpl::join(sibling, failing);
    try {
      co_await joined;
    } catch (const Boom&) {
      alive_in_handler = Counted::alive();
    }
    co_await trpl::sleep(1h);  // the sibling's deadline passes while `joined` still exists
  });
  EXPECT_EQ(alive_in_handler, 0);
  EXPECT_FALSE(sibling_resumed);
}

TEST(JoinErrors, RuntimeExitsWithoutWaitingForTheTimersOfCancelledSiblings) {
  // Real (not paused) time: if cancelled siblings' hour-long timers were still awaited, this
  // test would hang instead of returning.
  auto rt = trpl::Runtime::builder().current_thread().build();
  const auto t0 = std::chrono::steady_clock::now();
  EXPECT_THROW(rt.block_on([]() -> trpl::Task<> {
    co_await trpl::join(nothing_after(1h), nothing_after(2h), []() -> trpl::Task<> {
      co_await trpl::sleep(1ms);
      throw Boom(1);
    });
  }),
               Boom);
  EXPECT_LT(std::chrono::steady_clock::now() - t0, 10min);
}

TEST(JoinErrors, AnExceptionDuringStartUpDestroysStartedAndUnstartedSiblings) {
  CountedScope scope;
  auto rt = paused_runtime();
  bool third_started = false;
  rt.block_on([&]() -> trpl::Task<> {
    const auto start = trpl::Instant::now();
    auto started = [c = Counted(1)]() -> trpl::Task<> { co_await trpl::sleep(1h); };
    auto failing = []() -> trpl::Task<> {
      throw Boom(2);
      co_return;
    };
    auto unstarted = [c = Counted(3), &third_started]() -> trpl::Task<> {
      third_started = true;
      co_return;
    };
    bool threw = false;
    try {
      co_await trpl::join3(std::move(started), failing, std::move(unstarted));
    } catch (const Boom& e) {
      threw = e.code == 2;
    }
    EXPECT_TRUE(threw);
    EXPECT_EQ(ms_since(start), 0);
    co_await trpl::sleep(2h);
  });
  EXPECT_FALSE(third_started);  // children start in argument order and the error stops that
  EXPECT_EQ(Counted::alive(), 0);
}

TEST(JoinErrors, AnExceptionCancelsASiblingWhoseWakeIsAlreadyQueued) {
  auto rt = paused_runtime();
  bool sibling_resumed = false;
  rt.block_on([&]() -> trpl::Task<> {
    // Both timers fire at 5 ms; the thrower's first. The sibling is then ready (queued on the
    // task) when the exception destroys it: it must never be resumed.
    auto thrower = []() -> trpl::Task<> {
      co_await trpl::sleep(5ms);
      throw Boom(1);
    };
    auto sibling = [&]() -> trpl::Task<> {
      co_await trpl::sleep(5ms);
      sibling_resumed = true;
    };
    bool threw = false;
    try {
      co_await trpl::join(thrower, sibling);
    } catch (const Boom&) {
      threw = true;
    }
    EXPECT_TRUE(threw);
    co_await trpl::sleep(10ms);
  });
  EXPECT_FALSE(sibling_resumed);
}

TEST(JoinErrors, WhenTwoChildrenThrowTheFirstExceptionIsRethrown) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    auto thrower = [](int code, std::chrono::milliseconds d) -> trpl::Task<> {
      co_await trpl::sleep(d);
      throw Boom(code);
    };
    std::optional<int> code;
    try {
      co_await trpl::join(thrower(1, 5ms), thrower(2, 5ms), thrower(3, 1ms));
    } catch (const Boom& e) {
      code = e.code;
    }
    EXPECT_EQ(code, 3);
  });
}

#if defined(TRPL_TEST_AWAITER_OPERANDS)
TEST(JoinErrors, AnExceptionInANestedJoinPropagatesAndCancelsOuterSiblings) {
  CountedScope scope;
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    auto waits = [](std::chrono::milliseconds d) -> trpl::Task<> {
      Counted local;
      co_await trpl::sleep(d);
    };
    auto throws = []() -> trpl::Task<> {
      co_await trpl::sleep(3ms);
      throw Boom(4);
    };
    std::optional<int> code;
    try {
      co_await trpl::join(trpl::join(waits(1h), throws()), waits(2h));
    } catch (const Boom& e) {
      code = e.code;
      EXPECT_EQ(Counted::alive(), 0);
    }
    EXPECT_EQ(code, 4);
  });
}
#endif

// ---- cancellation of the frame awaiting a join (invariant 5) ----

TEST(JoinCancel, AbortingTheTaskSuspendedInJoinDestroysEveryUnfinishedChild) {
  CountedScope scope;
  auto rt = paused_runtime();
  bool resumed = false;
  rt.block_on([&]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<int>();
    auto handle = trpl::spawn_task([&]() -> trpl::Task<> {
      auto sleeper = [&]() -> trpl::Task<> {
        Counted local(1);
        co_await trpl::sleep(1h);
        resumed = true;
      };
      auto receiver = [&]() -> trpl::Task<> {
        Counted local(2);
        (void)co_await rx.recv();
        resumed = true;
      };
      auto owning = [c = Counted(3), &resumed]() -> trpl::Task<> {
        co_await trpl::sleep(2h);
        resumed = true;
      };
      co_await trpl::join(nothing_after(1ms), sleeper, receiver, std::move(owning));
      resumed = true;
    });
    co_await trpl::sleep(10ms);
    EXPECT_GT(Counted::alive(), 0);  // the three children still wait
    EXPECT_FALSE(handle.is_finished());
    handle.abort();
    auto result = co_await handle;
    EXPECT_TRUE(!result && result.error().is_cancelled());
    EXPECT_EQ(Counted::alive(), 0);
    // The receiver's wait was deregistered: a new recv here is not "a second frame in recv".
    EXPECT_TRUE(tx.send(1).has_value());
    std::optional<int> v = co_await rx.recv();
    EXPECT_EQ(v, 1);
    co_await trpl::sleep(3h);  // past every cancelled deadline
  });
  EXPECT_FALSE(resumed);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

TEST(JoinCancel, DroppingAnUnawaitedJoinRunsNothingAndDestroysItsOwnedCallables) {
  CountedScope scope;
  bool ran = false;
  {
    auto unawaited = trpl::join([c = Counted(1), &ran]() -> trpl::Task<> {
      ran = true;
      co_return;
    });
  }
  EXPECT_FALSE(ran);
  EXPECT_EQ(Counted::alive(), 0);
}

// ---- across threads ----

TEST(JoinThreads, JoinsInsideTasksOnAMultiThreadRuntimeWithSendersOnStdThreads) {
  static constexpr int kTasks = 8;
  static constexpr int kMessages = 200;
  std::vector<int> sums(kTasks, 0);
  std::vector<std::thread> threads;
  trpl::Runtime rt = trpl::Runtime::builder().multi_thread().worker_threads(2).build();
  rt.block_on([&]() -> trpl::Task<> {
    std::vector<trpl::JoinHandle<void>> handles;
    for (int t = 0; t < kTasks; ++t) {
      auto [tx, rx] = trpl::channel<int>();
      threads.emplace_back([tx = std::move(tx)] {
        for (int i = 1; i <= kMessages; ++i) EXPECT_TRUE(tx.send(i).has_value());
      });
      handles.push_back(trpl::spawn_task(
          [rx = std::move(rx), &sum = sums[static_cast<std::size_t>(t)]]() mutable -> trpl::Task<> {
            auto receiver = [&]() -> trpl::Task<int> {
              int n = 0;
              while (std::optional<int> v = co_await rx.recv()) {
                sum += *v;
                ++n;
              }
              co_return n;
            };
            auto [n, ignored] = co_await trpl::join(receiver, nothing_after(1ms));
            EXPECT_EQ(n, kMessages);
          }));
    }
    for (auto& h : handles) {
      auto r = co_await h;
      EXPECT_TRUE(r.has_value());
    }
  });
  for (auto& th : threads) th.join();
  for (int s : sums) EXPECT_EQ(s, kMessages * (kMessages + 1) / 2);
}

}  // namespace
