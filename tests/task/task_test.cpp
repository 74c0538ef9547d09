// Tests for Task<T> (include/trpl/task.hpp): laziness, results, exceptions, misuse errors,
// frame lifetime, and that long and deep chains of awaits never grow the stack (invariant 1).
#include "trpl/task.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <expected>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <utility>
#include <vector>

#include "support/counted.hpp"
#include "trpl/error.hpp"
#include "trpl/join.hpp"
#include "trpl/runtime.hpp"
#include "trpl/time.hpp"
#include "support/harness.hpp"

namespace {

using trpl::test::paused_runtime;

using namespace std::chrono_literals;
using trpl::Task;
using trpl::test::Counted;
using trpl::test::CountedScope;

// ---- a runtime-free driver: awaits a Task from a plain eager coroutine on this thread ----

// Starts at once and stops at its end; destroying it destroys its frame (and the Task it owns,
// wherever that is suspended).
struct Eager {
  struct promise_type {
    std::exception_ptr error;
    Eager get_return_object() noexcept {
      return Eager{std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_never initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() noexcept { error = std::current_exception(); }
  };
  explicit Eager(std::coroutine_handle<promise_type> h) : handle(h) {}
  Eager(Eager&& o) noexcept : handle(std::exchange(o.handle, nullptr)) {}
  ~Eager() {
    if (handle) handle.destroy();
  }
  bool done() const { return handle.done(); }
  std::coroutine_handle<promise_type> handle;
};

Eager eager_await(Task<void> task) { co_await task; }

// Awaits `task` with no runtime on this thread; true when it completed synchronously.
// Rethrows what escaped it.
bool run_sync(Task<void> task) {
  Eager e = eager_await(std::move(task));
  if (e.handle.promise().error) std::rethrow_exception(e.handle.promise().error);
  return e.done();
}

// An awaitable that suspends forever (nothing ever resumes it): a frame parked on it can only
// be destroyed.
struct SuspendForever {
  bool await_ready() const noexcept { return false; }
  void await_suspend(std::coroutine_handle<>) const noexcept {}
  void await_resume() const noexcept {}
};

struct Boom : std::runtime_error {
  explicit Boom(int c) : std::runtime_error("boom " + std::to_string(c)), code(c) {}
  int code;
};

// ---- laziness ----

Task<int> set_flag(bool* flag) {
  *flag = true;
  co_return 7;
}

TEST(Task, TaskDoesNotStartUntilAwaited) {
  bool started = false;
  Task<int> t = set_flag(&started);
  EXPECT_TRUE(t.valid());
  EXPECT_FALSE(t.is_ready());
  EXPECT_FALSE(started) << "creating a Task must not run its body";
  int got = 0;
  ASSERT_TRUE(run_sync([](Task<int>& t, int& got) -> Task<void> { got = co_await t; }(t, got)));
  EXPECT_TRUE(started);
  EXPECT_EQ(got, 7);
  EXPECT_TRUE(t.is_ready());
}

TEST(Task, TaskDoesNotStartWhenMovedOrStoredOnly) {
  bool started = false;
  {
    Task<int> t = set_flag(&started);
    Task<int> u = std::move(t);
    std::vector<Task<int>> v;
    v.push_back(std::move(u));
    EXPECT_FALSE(t.valid());
    EXPECT_FALSE(u.valid());
  }
  EXPECT_FALSE(started) << "a Task destroyed without being awaited must never run";
}

// ---- results ----

Task<int> forty_two() { co_return 42; }
Task<std::unique_ptr<int>> boxed(int v) { co_return std::make_unique<int>(v); }
Task<std::string> greet(std::string who) { co_return "hello " + who; }

TEST(Task, AwaitingAValueTaskYieldsTheValueItReturned) {
  int a = 0;
  std::unique_ptr<int> b;
  std::string c;
  ASSERT_TRUE(run_sync([](int& a, std::unique_ptr<int>& b, std::string& c) -> Task<void> {
    a = co_await forty_two();
    b = co_await boxed(9);  // move-only results come out by move
    c = co_await greet("world");
  }(a, b, c)));
  EXPECT_EQ(a, 42);
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(*b, 9);
  EXPECT_EQ(c, "hello world");
}

Task<void> bump(int* n) {
  ++*n;
  co_return;
}

TEST(Task, AwaitingAVoidTaskRunsItToCompletion) {
  int n = 0;
  ASSERT_TRUE(run_sync([](int* n) -> Task<void> {
    co_await bump(n);
    co_await bump(n);
  }(&n)));
  EXPECT_EQ(n, 2);
}

Task<int&> ref_to(int& x) { co_return x; }
Task<const std::string&> cref_to(const std::string& s) { co_return s; }

TEST(Task, AwaitingAReferenceTaskYieldsTheSameObject) {
  int x = 1;
  std::string s = "same";
  int* seen = nullptr;
  const std::string* seen_s = nullptr;
  ASSERT_TRUE(run_sync(
      [](int& x, const std::string& s, int*& seen, const std::string*& seen_s) -> Task<void> {
        int& r = co_await ref_to(x);
        r = 5;  // writes through to x
        seen = &r;
        seen_s = &(co_await cref_to(s));
      }(x, s, seen, seen_s)));
  EXPECT_EQ(seen, &x);
  EXPECT_EQ(x, 5);
  EXPECT_EQ(seen_s, &s);
}

Task<Counted> make_counted(int v) { co_return Counted(v); }

TEST(Task, ResultIsMovedOutNeverCopied) {
  CountedScope scope;
  int value = 0;
  ASSERT_TRUE(run_sync([](int& value) -> Task<void> {
    Counted c = co_await make_counted(3);
    value = c.value;
  }(value)));
  EXPECT_EQ(value, 3);
  EXPECT_EQ(Counted::copies(), 0);
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

// ---- exceptions ----

Task<int> throws_boom(int code) {
  if (code >= 0) throw Boom(code);
  co_return 0;
}
Task<int> passes_through(int code) {
  int v = co_await throws_boom(code);  // not caught here: travels on to our awaiter
  co_return v + 1;
}
Task<void> throws_in_void() {
  throw std::out_of_range("void task");
  co_return;
}

TEST(Task, ExceptionPropagatesThroughCoAwaitUnchanged) {
  int code = -1;
  std::string what;
  ASSERT_TRUE(run_sync([](int& code, std::string& what) -> Task<void> {
    try {
      (void)co_await passes_through(17);
    } catch (const Boom& b) {
      code = b.code;
      what = b.what();
    }
  }(code, what)));
  EXPECT_EQ(code, 17);
  EXPECT_EQ(what, "boom 17");
}

TEST(Task, ExceptionFromAVoidTaskReachesTheOutermostAwaiter) {
  EXPECT_THROW(run_sync([]() -> Task<void> { co_await throws_in_void(); }()), std::out_of_range);
}

// ---- misuse ----

// Runs `body` (which awaits something invalid) and returns the trpl::Error's message, or ""
// when nothing was thrown.
std::string error_from(Task<void> body) {
  try {
    run_sync(std::move(body));
  } catch (const trpl::Error& e) {
    return e.what();
  }
  return "";
}

TEST(Task, AwaitingAMovedFromTaskThrowsErrorNamingTask) {
  std::string msg = error_from([]() -> Task<void> {
    Task<int> t = forty_two();
    Task<int> u = std::move(t);
    (void)co_await t;  // NOLINT(bugprone-use-after-move): the misuse under test
  }());
  EXPECT_NE(msg.find("Task"), std::string::npos) << msg;
  EXPECT_NE(msg.find("moved-from"), std::string::npos) << msg;
}

TEST(Task, AwaitingADefaultConstructedTaskThrowsError) {
  std::string msg = error_from([]() -> Task<void> {
    Task<void> t;
    co_await t;
  }());
  EXPECT_NE(msg.find("Task"), std::string::npos) << msg;
}

TEST(Task, AwaitingATaskTwiceThrowsErrorNamingTask) {
  std::string msg = error_from([]() -> Task<void> {
    Task<int> t = forty_two();
    EXPECT_EQ(co_await t, 42);
    (void)co_await t;
  }());
  EXPECT_NE(msg.find("Task"), std::string::npos) << msg;
  EXPECT_NE(msg.find("already awaited"), std::string::npos) << msg;
}

TEST(Task, ErrorIsALogicError) {
  // Misuse errors are std::logic_errors (DESIGN invariant 9): catchable as such.
  EXPECT_THROW(run_sync([]() -> Task<void> {
                 Task<int> t;
                 (void)co_await t;
               }()),
               std::logic_error);
}

// ---- frame lifetime ----

Task<int> owns_counted(Counted c, bool* ran) {
  *ran = true;
  co_return c.value;
}

TEST(Task, DestroyingAnUnawaitedTaskDestroysItsFrame) {
  CountedScope scope;
  bool ran = false;
  {
    Task<int> t = owns_counted(Counted(1), &ran);
    EXPECT_EQ(Counted::alive(), 1) << "the parameter copy lives in the frame";
  }
  EXPECT_FALSE(ran);
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::destructions.load(), Counted::constructions());
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

Task<void> parks_forever(int depth, bool* resumed) {
  Counted local(depth);
  if (depth == 0) {
    co_await SuspendForever{};
  } else {
    co_await parks_forever(depth - 1, resumed);
  }
  *resumed = true;
}

TEST(Task, DestroyingTheAwaitingFrameDestroysEverySuspendedChild) {
  CountedScope scope;
  bool resumed = false;
  {
    Eager e = eager_await(parks_forever(5, &resumed));
    EXPECT_FALSE(e.done());
    EXPECT_EQ(Counted::alive(), 6) << "one local per level, all suspended";
  }
  EXPECT_FALSE(resumed);
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::destructions.load(), 6);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

TEST(Task, CompletedChildFrameLivesUntilItsTaskIsDestroyed) {
  CountedScope scope;
  bool ran = false;
  std::int64_t alive_after_await = -1;
  ASSERT_TRUE(run_sync([](bool* ran, std::int64_t& alive_after_await) -> Task<void> {
    {
      Task<int> t = owns_counted(Counted(4), ran);
      EXPECT_EQ(co_await t, 4);
      alive_after_await = Counted::alive();
    }
    EXPECT_EQ(Counted::alive(), 0) << "destroying the finished Task destroys its frame";
  }(&ran, alive_after_await)));
  EXPECT_TRUE(ran);
  EXPECT_EQ(alive_after_await, 1) << "a finished child's frame (and its parameter) lives on";
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

// ---- stack depth ----

Task<int> one() { co_return 1; }

// Without a runtime, synchronous completion does not transfer at all (the child finishes
// before the parent's await_suspend returns), so a million awaits use constant stack.
TEST(Task, MillionSynchronousAwaitsWithoutARuntimeDoNotGrowTheStack) {
  long sum = 0;
  ASSERT_TRUE(run_sync([](long& sum) -> Task<void> {
    for (int i = 0; i < 1'000'000; ++i) sum += co_await one();
  }(sum)));
  EXPECT_EQ(sum, 1'000'000);
}

// The same loop inside a trpl runtime. A release build would survive even an implementation
// that relied on symmetric transfer being a tail call; debug (-O0) GCC builds and the ASan/TSan
// builds are the real check, since there a missing bound would overflow the stack.
TEST(Task, MillionSynchronousAwaitsInsideARuntimeDoNotOverflowTheStack) {
  auto rt = paused_runtime();
  long sum = rt.block_on([]() -> Task<long> {
    long s = 0;
    for (int i = 0; i < 1'000'000; ++i) s += co_await one();
    co_return s;
  });
  EXPECT_EQ(sum, 1'000'000);
}

Task<long> recurse(int n) {
  if (n == 0) co_return 0;
  co_return 1 + co_await recurse(n - 1);
}

// 100,000 frames each awaiting the next: run inline, this would need ~100,000 nested resume
// calls on one stack. The runtime's trampoline starts deep children from the bottom instead.
TEST(Task, RecursionHundredThousandDeepCompletes) {
  auto rt = paused_runtime();
  EXPECT_EQ(rt.block_on(recurse(100'000)), 100'000);
}

TEST(Task, RecursionAlsoCompletesOnTheMultiThreadRuntime) {
  auto rt = trpl::Runtime::builder().multi_thread().worker_threads(2).build();
  auto h = rt.block_on([]() -> Task<trpl::JoinHandle<long>> {
    co_return trpl::spawn_task([]() -> Task<long> { co_return co_await recurse(100'000); });
  });
  auto r =
      rt.block_on([&]() -> Task<std::expected<long, trpl::JoinError>> { co_return co_await h; });
  ASSERT_TRUE(r.has_value());
  EXPECT_EQ(*r, 100'000);
}

Task<long> recurse_then_throw(int n) {
  if (n == 0) throw Boom(n);
  co_return 1 + co_await recurse_then_throw(n - 1);
}

TEST(Task, ExceptionFromTheBottomOfADeepChainReachesTheTop) {
  auto rt = paused_runtime();
  EXPECT_THROW(rt.block_on(recurse_then_throw(10'000)), Boom);
}

// ---- a deferred start must be cancellable ----

std::atomic<bool> g_owner_destroyed{false};

struct SetsOwnerDestroyed {
  ~SetsOwnerDestroyed() { g_owner_destroyed.store(true); }
};

Task<int> deferred_leaf() {
  if (g_owner_destroyed.load()) {
    // Our frame (and the frame we would resume next) is already freed: stop before worse.
    std::fprintf(stderr, "a Task was resumed after the frame that owned it was destroyed\n");
    std::abort();
  }
  co_return 1;
}
Task<void> owner_of_deferred_leaf() {
  SetsOwnerDestroyed marker;
  (void)co_await deferred_leaf();  // deep enough: queued on the run loop's trampoline
}
Task<void> failing_sibling() {
  throw std::runtime_error("sibling failed");
  co_return;
}
Task<void> join_at_depth(int n) {
  if (n > 0) {
    co_await join_at_depth(n - 1);
    co_return;
  }
  g_owner_destroyed.store(false);
  // The sibling throws while the first child's awaited Task waits on the trampoline's deferred
  // list; join destroys the first child (and with it that Task) at once.
  co_await trpl::join(owner_of_deferred_leaf(), failing_sibling());
}

// Regression: a child Task started past kMaxInlineDepth waits on the run loop's Trampoline;
// when its owner is destroyed first (join does, synchronously, when a later sibling throws
// during start-up) the Task must leave the trampoline, or drain() would resume a freed frame
// (it did: ASan heap-use-after-free in Trampoline::drain). Depths 0..140 make the join start at
// every position modulo the 64-deep window.
TEST(Task, DeferredChildIsNeverResumedAfterItsOwnerIsDestroyed) {
  auto rt = paused_runtime();
  int caught = 0;
  for (int n = 0; n < 140; ++n) {
    try {
      rt.block_on(join_at_depth(n));
    } catch (const std::runtime_error&) {
      ++caught;
    }
  }
  EXPECT_EQ(caught, 140);
}

// ---- children that suspend ----

Task<int> sleepy_leaf(int v) {
  co_await trpl::sleep(1ms);
  co_return v;
}
Task<int> middle(int v) { co_return 10 * co_await sleepy_leaf(v); }

TEST(Task, ChildThatSuspendsResumesItsParentWhenItCompletes) {
  auto rt = paused_runtime();
  auto [value, waited] = rt.block_on([]() -> Task<std::pair<int, trpl::Instant::duration>> {
    auto start = trpl::Instant::now();
    int v = co_await middle(4);
    co_return std::pair{v + 1, trpl::Instant::now() - start};
  });
  EXPECT_EQ(value, 41);
  EXPECT_EQ(waited, 1ms);
}

Task<long> recurse_to_sleep(int n) {
  if (n == 0) {
    co_await trpl::sleep(1ms);
    co_return 0;
  }
  co_return 1 + co_await recurse_to_sleep(n - 1);
}

// The leaf suspends, so every level completes after its parent suspended: the completions go
// back up 100,000 levels through the run loop rather than nested resumes.
TEST(Task, DeepChainWhoseLeafSuspendsUnwindsWithoutGrowingTheStack) {
  auto rt = paused_runtime();
  EXPECT_EQ(rt.block_on(recurse_to_sleep(100'000)), 100'000);
}

TEST(Task, ManySequentialSuspendingChildrenEachResumeTheParent) {
  auto rt = paused_runtime();
  auto [sum, waited] = rt.block_on([]() -> Task<std::pair<long, trpl::Instant::duration>> {
    auto start = trpl::Instant::now();
    long s = 0;
    for (int i = 0; i < 1000; ++i) s += co_await sleepy_leaf(i);
    co_return std::pair{s, trpl::Instant::now() - start};
  });
  EXPECT_EQ(sum, 999L * 1000 / 2);
  EXPECT_EQ(waited, 1000ms);
}

}  // namespace
