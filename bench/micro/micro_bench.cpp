// trpl_micro: Google Benchmark micro-benchmarks of the hot paths — frame alloc/free, coroutine
// create+run+destroy, spawn+join, a wake (a ping-pong round trip), channel send/recv, timer
// insert/cancel. Each runs inside one block_on where it needs a runtime.
#include <benchmark/benchmark.h>

#include <chrono>
#include <cstdlib>

#include "trpl/detail/frame_pool.hpp"
#include "trpl/detail/timer_entry.hpp"
#include "trpl/trpl.hpp"

namespace {

using trpl::Task;
using namespace std::chrono_literals;

trpl::Runtime current_thread() { return trpl::Runtime::builder().current_thread().build(); }
trpl::Runtime multi_thread() { return trpl::Runtime::builder().multi_thread().worker_threads(2).build(); }

// ---- memory

void BM_PoolAllocFree(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = trpl::detail::pool_alloc(size);
    benchmark::DoNotOptimize(p);
    trpl::detail::pool_free(p, size);
  }
}
BENCHMARK(BM_PoolAllocFree)->Arg(64)->Arg(256);

void BM_MallocFree(benchmark::State& state) {
  const auto size = static_cast<std::size_t>(state.range(0));
  for (auto _ : state) {
    void* p = std::malloc(size);
    benchmark::DoNotOptimize(p);
    std::free(p);
  }
}
BENCHMARK(BM_MallocFree)->Arg(64)->Arg(256);

// ---- coroutine frames: create, run to completion (awaited inline), destroy

Task<int> leaf(int i) { co_return i; }

void BM_CoroutineCreateRunDestroy(benchmark::State& state) {
  auto rt = current_thread();
  rt.block_on([&]() -> Task<void> {
    int sum = 0;
    for (auto _ : state) sum += co_await leaf(1);
    benchmark::DoNotOptimize(sum);
  });
}
BENCHMARK(BM_CoroutineCreateRunDestroy);

// ---- spawn + join

void BM_SpawnJoin_CurrentThread(benchmark::State& state) {
  auto rt = current_thread();
  rt.block_on([&]() -> Task<void> {
    for (auto _ : state) {
      auto h = trpl::spawn_task(leaf(1));
      benchmark::DoNotOptimize(co_await h);
    }
  });
}
BENCHMARK(BM_SpawnJoin_CurrentThread);

void BM_SpawnJoin_MultiThread(benchmark::State& state) {
  auto rt = multi_thread();
  rt.block_on([&]() -> Task<void> {
    auto driver = trpl::spawn_task([&]() -> Task<void> {
      for (auto _ : state) {
        auto h = trpl::spawn_task(leaf(1));
        benchmark::DoNotOptimize(co_await h);
      }
    });
    (void)co_await driver;
  });
}
BENCHMARK(BM_SpawnJoin_MultiThread)->UseRealTime();

// ---- a wake: one round trip between two tasks over two channels (two wakes, four switches)

void BM_PingPongRoundTrip(benchmark::State& state) {
  auto rt = current_thread();
  rt.block_on([&]() -> Task<void> {
    auto [tx1, rx1] = trpl::channel<int>();
    auto [tx2, rx2] = trpl::channel<int>();
    auto ponger = trpl::spawn_task([rx = std::move(rx1), tx = std::move(tx2)]() mutable -> Task<void> {
      while (auto v = co_await rx.recv()) (void)tx.send(*v);
    });
    for (auto _ : state) {
      (void)tx1.send(1);
      benchmark::DoNotOptimize(co_await rx2.recv());
    }
    { auto drop = std::move(tx1); }
    (void)co_await ponger;
  });
}
BENCHMARK(BM_PingPongRoundTrip);

// ---- yield_now: one task yielding to itself (the run loop requeues it each time)

void BM_YieldNow(benchmark::State& state) {
  auto rt = current_thread();
  rt.block_on([&]() -> Task<void> {
    for (auto _ : state) co_await trpl::yield_now();
  });
}
BENCHMARK(BM_YieldNow);

// ---- channel: a send and the receive of a message already there (no suspension)

void BM_ChannelSendRecv(benchmark::State& state) {
  auto rt = current_thread();
  rt.block_on([&]() -> Task<void> {
    auto [tx, rx] = trpl::channel<int>();
    for (auto _ : state) {
      (void)tx.send(1);
      benchmark::DoNotOptimize(co_await rx.recv());
    }
  });
}
BENCHMARK(BM_ChannelSendRecv);

void BM_ChannelTryRecv(benchmark::State& state) {
  auto [tx, rx] = trpl::channel<int>();
  for (auto _ : state) {
    (void)tx.send(1);
    benchmark::DoNotOptimize(rx.try_recv());
  }
}
BENCHMARK(BM_ChannelTryRecv);

// ---- timers: insert and cancel one timer (a sleep armed, then dropped before it fires)

// A sleep armed and then dropped before it fires: a coroutine started by hand inside the
// task runs to its sleep (the timer goes into the wheel) and is destroyed there (it leaves).
Task<void> sleeper() { co_await trpl::sleep(1h); }

void BM_TimerInsertCancel(benchmark::State& state) {
  auto rt = current_thread();
  rt.block_on([&]() -> Task<void> {
    for (auto _ : state) {
      Task<void> t = sleeper();
      t.handle().resume();
    }
    co_return;
  });
}
BENCHMARK(BM_TimerInsertCancel);

}  // namespace

BENCHMARK_MAIN();
