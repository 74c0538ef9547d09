// Tests for trpl::channel (include/trpl/sync/channel.hpp): FIFO order, close and disconnection,
// try_recv, lifetimes of queued messages, misuse errors, and cancellation of a waiting recv.
#include "trpl/sync/channel.hpp"

#include <gtest/gtest.h>

#include <chrono>
#include <expected>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <thread>
#include <type_traits>
#include <utility>
#include <vector>

#include "support/counted.hpp"
#include "support/harness.hpp"
#include "trpl/join.hpp"
#include "trpl/runtime.hpp"
#include "trpl/time.hpp"

namespace {

using trpl::test::paused_runtime;
using trpl::test::ms_since;
using trpl::test::finishes_within;

using namespace std::chrono_literals;
using trpl::test::Counted;
using trpl::test::CountedScope;




// Calls `f`, expecting a trpl::Error whose message names `call`.
template <class F>
void expect_error_naming(const char* call, F f) {
  try {
    f();
    ADD_FAILURE() << "expected trpl::Error from " << call;
  } catch (const trpl::Error& e) {
    EXPECT_NE(std::string(e.what()).find(call), std::string::npos) << e.what();
  }
}

// ---- order, send, end of stream ----

TEST(Channel, RecvYieldsMessagesInTheOrderTheyWereSent) {
  auto rt = paused_runtime();
  std::vector<int> got;
  rt.block_on([&]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<int>();
    for (int i = 0; i < 1000; ++i) EXPECT_TRUE(tx.send(i).has_value());
    for (int i = 0; i < 1000; ++i) {
      std::optional<int> v = co_await rx.recv();
      if (v) got.push_back(*v);
    }
  });
  ASSERT_EQ(got.size(), 1000u);
  for (int i = 0; i < 1000; ++i) ASSERT_EQ(got[static_cast<std::size_t>(i)], i);
}

TEST(Channel, ClonesInterleaveInSendOrderAndAWaitingRecvSeesEachMessageInOrder) {
  std::vector<std::string> got;
  EXPECT_TRUE(finishes_within(10s, [&]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<std::string>();
    auto receiver = [&]() -> trpl::Task<> {
      while (std::optional<std::string> v = co_await rx.recv()) got.push_back(*v);
    };
    auto sender = [a = tx.clone(), b = std::move(tx)]() -> trpl::Task<> {
      for (int i = 0; i < 5; ++i) {
        EXPECT_TRUE(a.send("a" + std::to_string(i)).has_value());
        EXPECT_TRUE(b.send("b" + std::to_string(i)).has_value());
        if (i % 2 == 0) co_await trpl::sleep(1ms);
      }
    };
    co_await trpl::join(receiver, std::move(sender));
  }));
  const std::vector<std::string> want{"a0", "b0", "a1", "b1", "a2", "b2", "a3", "b3", "a4", "b4"};
  EXPECT_EQ(got, want);
}

TEST(Channel, SendIsAPlainCallThatNeverSuspends) {
  using SendResult = decltype(std::declval<const trpl::Sender<int>&>().send(1));
  static_assert(std::is_same_v<SendResult, std::expected<void, trpl::SendError<int>>>);

  // Outside any runtime, with nobody receiving: 100,000 sends all succeed at once.
  auto [tx, rx] = trpl::channel<int>();
  for (int i = 0; i < 100'000; ++i) ASSERT_TRUE(tx.send(i).has_value());

  // Inside a join, a receiver already waiting does not get to run until the sender suspends.
  auto rt = paused_runtime();
  std::vector<std::string> log;
  rt.block_on([&]() -> trpl::Task<> {
    const auto start = trpl::Instant::now();
    for (int i = 0; i < 100'000; ++i) {
      std::expected<int, trpl::TryRecvError> v = rx.try_recv();
      if (!v || *v != i) {
        ADD_FAILURE() << "message " << i << " missing";
        co_return;
      }
    }
    auto receiver = [&]() -> trpl::Task<> {
      while (co_await rx.recv()) log.push_back("received");
    };
    auto sender = [&, tx = std::move(tx)]() -> trpl::Task<> {
      for (int i = 0; i < 3; ++i) EXPECT_TRUE(tx.send(i).has_value());
      log.push_back("sent 3");
      co_return;
    };
    co_await trpl::join(receiver, std::move(sender));
    EXPECT_EQ(ms_since(start), 0);
  });
  const std::vector<std::string> want{"sent 3", "received", "received", "received"};
  EXPECT_EQ(log, want);
}

TEST(Channel, RecvYieldsEveryMessageThenNulloptOnceEveryCloneOfTheSenderIsDestroyed) {
  EXPECT_TRUE(finishes_within(10s, []() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<int>();
    std::optional<trpl::Sender<int>> a(std::in_place, tx.clone());
    std::optional<trpl::Sender<int>> b(std::in_place, *a);  // a copy is a clone too
    std::optional<trpl::Sender<int>> c(std::in_place, std::move(tx));
    EXPECT_EQ(rx.sender_count(), 3u);
    EXPECT_TRUE(a->send(1).has_value());
    EXPECT_TRUE(b->send(2).has_value());
    EXPECT_TRUE(c->send(3).has_value());
    a.reset();
    c.reset();
    EXPECT_EQ(rx.sender_count(), 1u);
    for (int want = 1; want <= 3; ++want) {
      std::optional<int> v = co_await rx.recv();
      EXPECT_EQ(v, want);
    }
    // One clone is still alive: the channel is open and empty.
    EXPECT_EQ(rx.try_recv(), std::unexpected(trpl::TryRecvError::empty));

    // A recv that is already waiting ends when the last clone is destroyed elsewhere.
    std::optional<int> last = 99;
    auto receiver = [&]() -> trpl::Task<> { last = co_await rx.recv(); };
    auto dropper = [last_sender = std::move(*b)]() -> trpl::Task<> {
      co_await trpl::sleep(5ms);  // last_sender dies when this completes
    };
    b.reset();
    co_await trpl::join(receiver, std::move(dropper));
    EXPECT_EQ(last, std::nullopt);
    EXPECT_EQ(rx.sender_count(), 0u);
    std::optional<int> again = co_await rx.recv();  // and it stays ended
    EXPECT_EQ(again, std::nullopt);
  }));
}

TEST(Channel, AssigningASenderReleasesTheChannelItHeldBefore) {
  auto [tx_a, rx_a] = trpl::channel<int>();
  auto [tx_b, rx_b] = trpl::channel<int>();
  EXPECT_TRUE(tx_a.send(1).has_value());
  tx_a = tx_b;  // channel A loses its only sender
  EXPECT_EQ(rx_a.sender_count(), 0u);
  EXPECT_EQ(rx_b.sender_count(), 2u);
  EXPECT_EQ(rx_a.try_recv().value(), 1);
  EXPECT_EQ(rx_a.try_recv(), std::unexpected(trpl::TryRecvError::disconnected));
  EXPECT_TRUE(tx_a.send(2).has_value());
  EXPECT_EQ(rx_b.try_recv().value(), 2);
}

// ---- close ----

TEST(ChannelClose, LaterSendsFailAndHandBackTheSameObject) {
  auto [tx, rx] = trpl::channel<std::unique_ptr<int>>();
  EXPECT_FALSE(tx.is_closed());
  rx.close();
  EXPECT_TRUE(tx.is_closed());
  auto p = std::make_unique<int>(42);
  int* const raw = p.get();
  auto result = tx.send(std::move(p));
  ASSERT_FALSE(result.has_value());
  EXPECT_EQ(result.error().value.get(), raw);  // moved back, not copied or destroyed
  EXPECT_EQ(*result.error().value, 42);
  EXPECT_NE(std::string(result.error().what()).find("send"), std::string::npos);
  // A clone made after the close is closed too.
  auto clone = tx.clone();
  EXPECT_TRUE(clone.is_closed());
  EXPECT_FALSE(clone.send(std::make_unique<int>(1)).has_value());
}

TEST(ChannelClose, BufferedMessagesAreStillReceivedThenNullopt) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<std::unique_ptr<int>>();
    EXPECT_TRUE(tx.send(std::make_unique<int>(1)).has_value());
    EXPECT_TRUE(tx.send(std::make_unique<int>(2)).has_value());
    rx.close();
    EXPECT_FALSE(tx.send(std::make_unique<int>(3)).has_value());
    std::vector<int> got;
    // tx is still alive: the end comes from the close alone.
    while (std::optional<std::unique_ptr<int>> v = co_await rx.recv()) got.push_back(**v);
    EXPECT_EQ(got, (std::vector<int>{1, 2}));
    std::optional<std::unique_ptr<int>> after = co_await rx.recv();
    EXPECT_FALSE(after.has_value());
    rx.close();  // closing twice is harmless
    EXPECT_EQ(rx.try_recv(), std::unexpected(trpl::TryRecvError::disconnected));
  });
}

// A sibling in a join may close the Receiver that another sibling is waiting on (both borrow
// it, as in the book); the waiting recv must then end with nullopt.
// Was a library bug (fixed): Receiver::close() sets `closed` but does not wake the pending recv
// (unlike the last Sender's destruction), so the waiter sleeps forever. Repro below: the join
// never finishes within 10 s of virtual time.
TEST(ChannelClose, CloseEndsARecvThatIsAlreadyWaiting) {
  auto [tx, rx] = trpl::channel<int>();
  std::optional<int> got = 99;
  EXPECT_TRUE(finishes_within(10s, [&]() -> trpl::Task<> {
    auto waiter = [&]() -> trpl::Task<> { got = co_await rx.recv(); };
    auto closer = [&]() -> trpl::Task<> {
      co_await trpl::sleep(1ms);
      rx.close();
    };
    co_await trpl::join(waiter, closer);
  }));
  EXPECT_EQ(got, std::nullopt);
  EXPECT_TRUE(tx.is_closed());
}

// ---- try_recv ----

TEST(ChannelTryRecv, EmptyWhileSendersLiveDisconnectedOnceTheyAreGoneAndDrained) {
  auto [tx, rx] = trpl::channel<int>();
  EXPECT_EQ(rx.try_recv(), std::unexpected(trpl::TryRecvError::empty));
  EXPECT_TRUE(tx.send(5).has_value());
  EXPECT_TRUE(tx.send(6).has_value());
  EXPECT_EQ(rx.try_recv().value(), 5);
  { auto gone = std::move(tx); }
  EXPECT_EQ(rx.try_recv().value(), 6);  // buffered messages outlive the senders
  EXPECT_EQ(rx.try_recv(), std::unexpected(trpl::TryRecvError::disconnected));
  EXPECT_EQ(rx.try_recv(), std::unexpected(trpl::TryRecvError::disconnected));
}

TEST(ChannelTryRecv, DisconnectedAfterCloseEvenWithSendersAlive) {
  auto [tx, rx] = trpl::channel<int>();
  EXPECT_TRUE(tx.send(1).has_value());
  rx.close();
  EXPECT_EQ(rx.try_recv().value(), 1);
  EXPECT_EQ(rx.try_recv(), std::unexpected(trpl::TryRecvError::disconnected));
  EXPECT_EQ(rx.sender_count(), 1u);
}

// ---- lifetimes of queued messages ----

TEST(ChannelLifetime, DestroyingTheReceiverDestroysQueuedMessagesOnceAndLaterSendsFail) {
  CountedScope scope;
  {
    auto [tx, rx] = trpl::channel<Counted>();
    for (int i = 0; i < 5; ++i) EXPECT_TRUE(tx.send(Counted(i)).has_value());
    const auto destroyed_before = Counted::destructions.load();
    { auto dying = std::move(rx); }
    EXPECT_EQ(Counted::alive(), 0);  // the five queued messages, nothing else
    EXPECT_EQ(Counted::destructions.load() - destroyed_before, 5);
    EXPECT_TRUE(tx.is_closed());
    auto result = tx.send(Counted(9));
    ASSERT_FALSE(result.has_value());
    EXPECT_EQ(result.error().value.value, 9);
    EXPECT_FALSE(result.error().value.moved_from);
  }
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

TEST(ChannelLifetime, MessageQueuedWhenTheLastSenderThenTheReceiverDieIsDestroyedOnce) {
  CountedScope scope;
  {
    auto [tx, rx] = trpl::channel<Counted>();
    EXPECT_TRUE(tx.send(Counted(1)).has_value());
    { auto gone = std::move(tx); }
    EXPECT_EQ(Counted::alive(), 1);  // still receivable
    { auto gone = std::move(rx); }
    EXPECT_EQ(Counted::alive(), 0);
  }
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

TEST(ChannelLifetime, MessageQueuedWhenTheReceiverThenTheLastSenderDieIsDestroyedOnce) {
  CountedScope scope;
  {
    auto [tx, rx] = trpl::channel<Counted>();
    EXPECT_TRUE(tx.send(Counted(1)).has_value());
    { auto gone = std::move(rx); }
    EXPECT_EQ(Counted::alive(), 0);
    { auto gone = std::move(tx); }
  }
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

TEST(ChannelLifetime, MessagesQueuedWhenSenderAndReceiverDieOnTwoThreadsAreDestroyedOnce) {
  CountedScope scope;
  for (int round = 0; round < 500; ++round) {
    auto [tx, rx] = trpl::channel<Counted>();
    for (int i = 0; i < 3; ++i) EXPECT_TRUE(tx.send(Counted(i)).has_value());
    std::thread a([s = std::move(tx)]() mutable { auto gone = std::move(s); });
    std::thread b([r = std::move(rx)]() mutable { auto gone = std::move(r); });
    a.join();
    b.join();
    ASSERT_EQ(Counted::alive(), 0) << "round " << round;
  }
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

// A message may carry a Sender of its own channel (a reply path); destroying the Receiver then
// destroys the message, which drops the last Sender while the channel is being torn down.
struct CarriesSender {
  std::unique_ptr<trpl::Sender<CarriesSender>> tx;
  Counted counted;
};

TEST(ChannelLifetime, QueuedMessageHoldingTheLastSenderIsDestroyedOnceWithTheReceiver) {
  CountedScope scope;
  {
    auto [tx, rx] = trpl::channel<CarriesSender>();
    CarriesSender msg{std::make_unique<trpl::Sender<CarriesSender>>(tx), Counted(1)};
    EXPECT_TRUE(tx.send(std::move(msg)).has_value());
    { auto gone = std::move(tx); }
    EXPECT_EQ(rx.sender_count(), 1u);  // the one inside the message
    EXPECT_EQ(Counted::alive(), 2);    // the queued message and the moved-from `msg`
  }                                    // msg (moved-from), then rx with the message and its Sender
  EXPECT_EQ(Counted::alive(), 0);
  EXPECT_EQ(Counted::double_destructions.load(), 0);
}

TEST(ChannelLifetime, ReceivingTheMessageThatHoldsTheLastSenderEndsTheChannelWhenItDies) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<CarriesSender>();
    CarriesSender msg{std::make_unique<trpl::Sender<CarriesSender>>(tx), Counted(1)};
    EXPECT_TRUE(tx.send(std::move(msg)).has_value());
    { auto gone = std::move(tx); }
    {
      std::optional<CarriesSender> got = co_await rx.recv();
      EXPECT_TRUE(got.has_value());
      EXPECT_EQ(rx.sender_count(), 1u);
    }
    EXPECT_EQ(rx.sender_count(), 0u);
    std::optional<CarriesSender> end = co_await rx.recv();
    EXPECT_FALSE(end.has_value());
  });
}

// ---- misuse is loud ----

TEST(ChannelMisuse, SendOnAMovedFromSenderThrowsErrorNamingTheCall) {
  static_assert(std::is_base_of_v<std::logic_error, trpl::Error>);
  auto [tx, rx] = trpl::channel<int>();
  auto moved = std::move(tx);
  expect_error_naming("Sender::send", [&] { (void)tx.send(1); });
  EXPECT_TRUE(tx.is_closed());  // queries on an empty Sender answer, they do not throw
  EXPECT_TRUE(moved.send(2).has_value());
}

TEST(ChannelMisuse, RecvTryRecvAndCloseOnAMovedFromReceiverThrowErrorNamingTheCall) {
  auto [tx, rx] = trpl::channel<int>();
  auto moved = std::move(rx);
  expect_error_naming("Receiver::recv", [&] { (void)rx.recv(); });
  expect_error_naming("Receiver::try_recv", [&] { (void)rx.try_recv(); });
  expect_error_naming("Receiver::close", [&] { rx.close(); });
  EXPECT_EQ(rx.sender_count(), 0u);
  // The same misuse inside a runtime surfaces from co_await.
  auto rt = paused_runtime();
  expect_error_naming("Receiver::recv",
                      [&] { rt.block_on([&]() -> trpl::Task<> { (void)co_await rx.recv(); }); });
  EXPECT_TRUE(tx.send(1).has_value());
  EXPECT_EQ(moved.try_recv().value(), 1);
}

TEST(ChannelMisuse, TwoFramesAwaitingRecvOnOneReceiverAtOnceThrowsError) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<int>();
    auto first = [&]() -> trpl::Task<> { (void)co_await rx.recv(); };
    auto second = [&]() -> trpl::Task<> { (void)co_await rx.recv(); };
    bool threw = false;
    try {
      co_await trpl::join(first, second);
    } catch (const trpl::Error& e) {
      threw = true;
      EXPECT_NE(std::string(e.what()).find("Receiver::recv"), std::string::npos) << e.what();
    }
    EXPECT_TRUE(threw);
    // The first frame's wait was cancelled with the join: the Receiver works normally again.
    EXPECT_TRUE(tx.send(3).has_value());
    std::optional<int> v = co_await rx.recv();
    EXPECT_EQ(v, 3);
    auto late_sender = [&]() -> trpl::Task<> {
      co_await trpl::sleep(1ms);
      EXPECT_TRUE(tx.send(4).has_value());
    };
    auto receiver = [&]() -> trpl::Task<int> { co_return (co_await rx.recv()).value_or(-1); };
    auto [ignored, got] = co_await trpl::join(late_sender, receiver);
    EXPECT_EQ(got, 4);
  });
}

// A second consumer that runs between the wake of a waiting recv and its resumption takes the
// message; the first recv must then keep waiting (or the misuse must be reported), never end.
// Was a library bug (fixed): RecvAwaiter::await_resume returns std::nullopt whenever the queue is
// empty, so the woken recv reports "closed and drained" on an open channel (tx alive, no close)
// and a receive loop stops early. Misuse is only detected while the first waiter is registered,
// not once it has been woken.
TEST(ChannelMisuse, RecvNeverReportsTheEndWhileTheChannelIsOpen_TryRecvSibling) {
  auto rt = paused_runtime();
  std::optional<int> got = 99;
  bool reported = false;
  rt.block_on([&]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<int>();
    auto waiter = [&]() -> trpl::Task<> { got = co_await rx.recv(); };
    auto thief = [&]() -> trpl::Task<> {
      EXPECT_TRUE(tx.send(1).has_value());  // wakes the waiter...
      EXPECT_EQ(rx.try_recv().value(), 1);  // ...and takes its message before it runs
      co_await trpl::sleep(1ms);
      EXPECT_TRUE(tx.send(2).has_value());
    };
    try {
      co_await trpl::join(waiter, thief);
    } catch (const trpl::Error&) {
      reported = true;
    }
  });
  EXPECT_TRUE(reported || got == 2) << "recv yielded " << (got ? std::to_string(*got) : "nullopt");
}

// The same (fixed) library bug, with a second recv as the thief (it completes at once because
// the queue is not empty, so the "two frames in recv" check never sees it).
TEST(ChannelMisuse, RecvNeverReportsTheEndWhileTheChannelIsOpen_RecvSibling) {
  auto rt = paused_runtime();
  std::optional<int> got = 99;
  bool reported = false;
  rt.block_on([&]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<int>();
    auto waiter = [&]() -> trpl::Task<> { got = co_await rx.recv(); };
    auto thief = [&]() -> trpl::Task<> {
      EXPECT_TRUE(tx.send(1).has_value());
      std::optional<int> stolen = co_await rx.recv();
      EXPECT_EQ(stolen, 1);
      co_await trpl::sleep(1ms);
      EXPECT_TRUE(tx.send(2).has_value());
    };
    try {
      co_await trpl::join(waiter, thief);
    } catch (const trpl::Error&) {
      reported = true;
    }
  });
  EXPECT_TRUE(reported || got == 2) << "recv yielded " << (got ? std::to_string(*got) : "nullopt");
}

// ---- cancellation of a waiting recv loses nothing ----

TEST(ChannelCancel, AbortingATaskRegisteredInRecvLosesNoMessage) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<int>();
    bool resumed = false;
    auto handle = trpl::spawn_task([&]() -> trpl::Task<> {
      (void)co_await rx.recv();
      resumed = true;
    });
    co_await trpl::sleep(1ms);  // the task is now waiting in recv
    EXPECT_FALSE(handle.is_finished());
    handle.abort();
    auto result = co_await handle;
    EXPECT_TRUE(!result && result.error().is_cancelled());
    EXPECT_TRUE(tx.send(7).has_value());
    std::optional<int> v = co_await rx.recv();
    EXPECT_EQ(v, 7);
    EXPECT_FALSE(resumed);
  });
}

TEST(ChannelCancel, AbortingATaskWhoseRecvWasWokenButNotResumedLosesNoMessage) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<int>();
    bool resumed = false;
    auto handle = trpl::spawn_task([&]() -> trpl::Task<> {
      (void)co_await rx.recv();
      resumed = true;
    });
    co_await trpl::sleep(1ms);
    EXPECT_TRUE(tx.send(7).has_value());  // queues the waiter's frame on its task...
    handle.abort();                       // ...which is destroyed before it runs
    auto result = co_await handle;
    EXPECT_TRUE(!result && result.error().is_cancelled());
    EXPECT_FALSE(resumed);
    EXPECT_EQ(rx.try_recv().value(), 7);
    // No stale registration remains: a new recv waits and is woken normally.
    auto sender = [&]() -> trpl::Task<> {
      co_await trpl::sleep(1ms);
      EXPECT_TRUE(tx.send(8).has_value());
    };
    auto receiver = [&]() -> trpl::Task<int> { co_return (co_await rx.recv()).value_or(-1); };
    auto [ignored, got] = co_await trpl::join(sender, receiver);
    EXPECT_EQ(got, 8);
  });
}

TEST(ChannelCancel, JoinCancelledByASiblingExceptionWhileRecvIsRegisteredLosesNoMessage) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<int>();
    bool received = false;
    auto receiver = [&]() -> trpl::Task<> {
      (void)co_await rx.recv();
      received = true;
    };
    auto failing = []() -> trpl::Task<> {
      co_await trpl::sleep(1ms);
      throw std::runtime_error("boom");
    };
    bool threw = false;
    try {
      co_await trpl::join(receiver, failing);
    } catch (const std::runtime_error&) {
      threw = true;
    }
    EXPECT_TRUE(threw);
    EXPECT_FALSE(received);
    EXPECT_TRUE(tx.send(5).has_value());
    std::optional<int> v = co_await rx.recv();
    EXPECT_EQ(v, 5);
  });
}

TEST(ChannelCancel, JoinCancelledByASiblingExceptionAfterTheRecvWasWokenLosesNoMessage) {
  auto rt = paused_runtime();
  rt.block_on([]() -> trpl::Task<> {
    auto [tx, rx] = trpl::channel<int>();
    bool received = false;
    auto receiver = [&]() -> trpl::Task<> {
      (void)co_await rx.recv();
      received = true;
    };
    auto failing = [&]() -> trpl::Task<> {
      co_await trpl::sleep(1ms);
      EXPECT_TRUE(tx.send(5).has_value());  // the receiver is queued, not yet resumed
      throw std::runtime_error("boom");
    };
    bool threw = false;
    try {
      co_await trpl::join(receiver, failing);
    } catch (const std::runtime_error&) {
      threw = true;
    }
    EXPECT_TRUE(threw);
    EXPECT_FALSE(received);
    EXPECT_EQ(rx.try_recv().value(), 5);
    EXPECT_EQ(rx.try_recv(), std::unexpected(trpl::TryRecvError::empty));
  });
}

// ---- plain threads sending into a runtime (listing 17-42) ----

TEST(ChannelThreads, MessagesFromStdThreadsReachARecvLoopInARuntimeInOrderThenItEnds) {
  auto [tx, rx] = trpl::channel<int>();
  std::thread producer([tx = std::move(tx)] {
    for (int i = 1; i <= 10; ++i) {
      EXPECT_TRUE(tx.send(i).has_value());
      std::this_thread::sleep_for(1ms);
    }
  });  // the thread's Sender dies with its lambda, closing the channel
  std::vector<int> got;
  trpl::run([&]() -> trpl::Task<> {
    while (std::optional<int> v = co_await rx.recv()) got.push_back(*v);
  });
  producer.join();
  EXPECT_EQ(got, (std::vector<int>{1, 2, 3, 4, 5, 6, 7, 8, 9, 10}));
}

TEST(ChannelThreads, SeveralStdThreadsAndATaskSendConcurrentlyWithPerSenderOrder) {
  static constexpr int kThreads = 3;
  static constexpr int kPerSender = 2000;
  auto [tx, rx] = trpl::channel<std::pair<int, int>>();
  std::vector<std::thread> producers;
  for (int p = 0; p < kThreads; ++p) {
    producers.emplace_back([p, tx = tx.clone()] {
      for (int i = 0; i < kPerSender; ++i) EXPECT_TRUE(tx.send({p, i}).has_value());
    });
  }
  std::vector<int> next(kThreads + 1, 0);
  int total = 0;
  trpl::run([&, tx = std::move(tx)]() mutable -> trpl::Task<> {
    auto task = trpl::spawn_task([tx = std::move(tx)]() -> trpl::Task<> {
      for (int i = 0; i < kPerSender; ++i) {
        EXPECT_TRUE(tx.send({kThreads, i}).has_value());
        if (i % 100 == 0) co_await trpl::sleep(1ms);
      }
    });
    while (std::optional<std::pair<int, int>> v = co_await rx.recv()) {
      auto [p, i] = *v;
      EXPECT_EQ(i, next[static_cast<std::size_t>(p)]) << "sender " << p;
      next[static_cast<std::size_t>(p)] = i + 1;
      ++total;
    }
    auto r = co_await task;
    EXPECT_TRUE(r.has_value());
  });
  for (auto& t : producers) t.join();
  EXPECT_EQ(total, (kThreads + 1) * kPerSender);
}

}  // namespace
