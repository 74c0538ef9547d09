// trpl_bench <workload> <N>: the peers' workloads (../shared/peers, shaped like the tokio peer) on trpl,
// printing the peers' one-line format. Exit 3: workload not implemented; exit 1: a check of the result failed.
// Workloads: spawn_join, spawn_join_block_on, chan_throughput_st/_mt, ping_pong, timers, fan_in, skynet, fib,
// chained_spawn, yield_many; and two of trpl's own (not in the peers' runner): idle_cpu and run_overhead.
// join_many needs join_all (the chapter's issue): it exits 3 until then.
#include <trpl/trpl.hpp>

#include <sys/resource.h>

#include <chrono>
#include <coroutine>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <expected>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

namespace {

using u64 = std::uint64_t;
using clk = std::chrono::steady_clock;
using trpl::Task;

// ---------- reporting and checks (the same as every peer)

long peak_rss_kb() {
  std::ifstream f("/proc/self/status");
  std::string line;
  while (std::getline(f, line))
    if (line.rfind("VmHWM:", 0) == 0) return std::atol(line.c_str() + 6);
  return 0;
}

void report(const char* w, u64 n, double secs, double per_op_ns) {
  std::printf("workload=%s peer=trpl n=%llu seconds=%.6f per_op_ns=%.3f peak_rss_kb=%ld\n", w,
              static_cast<unsigned long long>(n), secs, per_op_ns, peak_rss_kb());
}

double since(clk::time_point t) { return std::chrono::duration<double>(clk::now() - t).count(); }

// A failed check may happen on a worker thread while the runtime still runs: leave at once.
[[noreturn]] void fail(const char* what) {
  std::fprintf(stderr, "check failed: %s\n", what);
  std::fflush(nullptr);
  std::_Exit(1);
}
void check(bool ok, const char* what) {
  if (!ok) fail(what);
}

// A JoinHandle's result, or exit 1 when the task failed or was cancelled.
template <class T>
T unwrap(std::expected<T, trpl::JoinError> r, const char* what) {
  if (!r) {
    std::fprintf(stderr, "%s: %s\n", what, r.error().message().c_str());
    fail(what);
  }
  if constexpr (!std::is_void_v<T>) return std::move(*r);
}

u64 splitmix64(u64& s) {
  s += 0x9E3779B97F4A7C15ull;
  u64 z = s;
  z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
  z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
  return z ^ (z >> 31);
}

u64 sum_of_i_and_7(u64 n) {
  u64 want = 0;
  for (u64 i = 0; i < n; ++i) want += i & 7;
  return want;
}

trpl::Runtime multi_thread() { return trpl::Runtime::builder().multi_thread().worker_threads(2).build(); }
trpl::Runtime current_thread() { return trpl::Runtime::builder().current_thread().build(); }

// Runs `driver` as a spawned task (on a worker, for multi_thread), as the tokio peer does with
// block_on(tokio::spawn(driver)), and returns its value.
template <class T>
T block_on_spawned(trpl::Runtime& rt, Task<T> driver) {
  return rt.block_on([&driver]() -> Task<T> {
    co_return unwrap(co_await trpl::spawn_task(std::move(driver)), "driver task");
  });
}

// ---------- W1 spawn_join: spawn N tasks returning i & 7, await the handles in order. 2 workers.

Task<u64> small_task(u64 i) { co_return i & 7; }

Task<double> spawn_join_driver(u64 n) {
  auto t = clk::now();
  std::vector<trpl::JoinHandle<u64>> hs;
  hs.reserve(n);
  for (u64 i = 0; i < n; ++i) hs.push_back(trpl::spawn_task(small_task(i)));
  u64 sum = 0;
  for (auto& h : hs) sum += unwrap(co_await h, "spawn_join task");
  double e = since(t);
  check(sum == sum_of_i_and_7(n), "spawn_join sum");
  co_return e;
}

void spawn_join(u64 n) {
  auto rt = multi_thread();
  double secs = block_on_spawned(rt, spawn_join_driver(n));
  report("spawn_join", n, secs, secs * 1e9 / n);
}

// The driver is the block_on future itself (the trpl::run shape): spawns come from a non-worker thread.
void spawn_join_block_on(u64 n) {
  auto rt = multi_thread();
  double secs = rt.block_on(spawn_join_driver(n));
  report("spawn_join_block_on", n, secs, secs * 1e9 / n);
}

// ---------- W2 chan_throughput: one producer, one consumer, one unbounded channel.

Task<void> produce(trpl::Sender<u64> tx, u64 begin, u64 end) {
  for (u64 i = begin; i < end; ++i)
    if (!tx.send(i)) fail("send: receiver closed");
  co_return;  // tx is dropped with this task: the consumer sees the end once every producer is gone
}

Task<u64> consume(trpl::Receiver<u64> rx) {
  u64 s = 0;
  while (auto v = co_await rx.recv()) s += *v;
  co_return s;
}

Task<double> chan_driver(u64 n) {
  auto t = clk::now();
  auto [tx, rx] = trpl::channel<u64>();
  auto p = trpl::spawn_task(produce(std::move(tx), 0, n));
  auto c = trpl::spawn_task(consume(std::move(rx)));
  unwrap(co_await p, "producer");
  u64 s = unwrap(co_await c, "consumer");
  double e = since(t);
  check(s == n * (n - 1) / 2, "chan sum");
  co_return e;
}

void chan_throughput(u64 n, bool multi) {
  auto rt = multi ? multi_thread() : current_thread();
  double secs = block_on_spawned(rt, chan_driver(n));
  report(multi ? "chan_throughput_mt" : "chan_throughput_st", n, secs, secs * 1e9 / n);
}

// ---------- W3 ping_pong: two tasks, two channels, current_thread. One op = one round trip.

Task<void> ponger(trpl::Receiver<u64> rx, trpl::Sender<u64> tx) {
  while (auto v = co_await rx.recv())
    if (!tx.send(*v + 1)) break;
}

Task<u64> pinger(trpl::Sender<u64> tx_param, trpl::Receiver<u64> rx, u64 n) {
  u64 v = 0;
  {
    trpl::Sender<u64> tx = std::move(tx_param);  // dropped after the loop: the ponger sees the end
    for (u64 i = 0; i < n; ++i) {
      if (!tx.send(v)) fail("ping send");
      auto r = co_await rx.recv();
      if (!r) fail("pong channel closed");
      v = *r;
    }
  }
  co_return v;
}

Task<double> ping_pong_driver(u64 n) {
  auto t = clk::now();
  auto [tx1, rx1] = trpl::channel<u64>();
  auto [tx2, rx2] = trpl::channel<u64>();
  auto b = trpl::spawn_task(ponger(std::move(rx1), std::move(tx2)));
  auto a = trpl::spawn_task(pinger(std::move(tx1), std::move(rx2), n));
  u64 v = unwrap(co_await a, "pinger");
  unwrap(co_await b, "ponger");
  double e = since(t);
  check(v == n, "ping_pong value");
  co_return e;
}

void ping_pong(u64 n) {
  auto rt = current_thread();
  double secs = block_on_spawned(rt, ping_pong_driver(n));
  report("ping_pong", n, secs, secs * 1e9 / n);
}

// ---------- W4 timers: N tasks each sleep splitmix64(42) % 1001 ms, 2 workers. per_op = (wall - 1 s) / N.

Task<void> sleeper(u64 ms) { co_await trpl::sleep(std::chrono::milliseconds(ms)); }

Task<double> timers_driver(std::vector<u64> durs) {
  auto t = clk::now();
  std::vector<trpl::JoinHandle<void>> hs;
  hs.reserve(durs.size());
  for (u64 d : durs) hs.push_back(trpl::spawn_task(sleeper(d)));
  for (auto& h : hs) unwrap(co_await h, "sleeper");
  co_return since(t);
}

void timers(u64 n) {
  std::vector<u64> durs(n);
  u64 seed = 42;
  for (auto& d : durs) d = splitmix64(seed) % 1001;
  auto rt = multi_thread();
  double secs = block_on_spawned(rt, timers_driver(std::move(durs)));
  report("timers", n, secs, (secs - 1.0) * 1e9 / n);
}

// ---------- W6 fan_in: 8 producers each send N/8 u64 into one unbounded channel, one consumer, 2 workers.

Task<double> fan_in_driver(u64 per) {
  auto t = clk::now();
  auto [tx, rx] = trpl::channel<u64>();
  std::vector<trpl::JoinHandle<void>> ps;
  for (u64 p = 0; p < 8; ++p) ps.push_back(trpl::spawn_task(produce(tx.clone(), p * per, (p + 1) * per)));
  { auto drop = std::move(tx); }  // only the producers' clones keep the channel open
  auto c = trpl::spawn_task(consume(std::move(rx)));
  for (auto& p : ps) unwrap(co_await p, "producer");
  u64 s = unwrap(co_await c, "consumer");
  double e = since(t);
  u64 total = per * 8;
  check(s == total * (total - 1) / 2, "fan_in sum");
  co_return e;
}

void fan_in(u64 n) {
  u64 per = n / 8;
  auto rt = multi_thread();
  double secs = block_on_spawned(rt, fan_in_driver(per));
  report("fan_in", per * 8, secs, secs * 1e9 / (per * 8));
}

// ---------- W7 skynet: each node spawns 10 children, awaits their JoinHandles in order and sums them;
// leaves return their number. 1,111,111 tasks for N = 1M leaves, 2 workers. per_op = wall / N leaves.

Task<u64> skynet_node(u64 num, u64 size) {
  if (size == 1) co_return num;
  u64 sub = size / 10;
  trpl::JoinHandle<u64> hs[10];
  for (u64 i = 0; i < 10; ++i) hs[i] = trpl::spawn_task(skynet_node(num + i * sub, sub));
  u64 sum = 0;
  for (auto& h : hs) sum += unwrap(co_await h, "skynet child");
  co_return sum;
}

Task<double> skynet_driver(u64 n) {
  auto t = clk::now();
  u64 s = co_await skynet_node(0, n);
  double e = since(t);
  check(s == n * (n - 1) / 2, "skynet sum");
  co_return e;
}

void skynet(u64 n) {
  u64 p = 1;
  while (p < n) p *= 10;
  if (p != n) {
    std::fprintf(stderr, "skynet: N must be a power of 10\n");
    std::exit(2);
  }
  auto rt = multi_thread();
  double secs = block_on_spawned(rt, skynet_driver(n));
  report("skynet", n, secs, secs * 1e9 / n);
}

// ---------- W8 fib: fork-join fib(n), no serial cutoff, 2 workers. fib(n-1) is a spawned task, fib(n-2) is
// awaited inline (co_await of the Task), then the JoinHandle is awaited. fib(n+1)-1 spawned tasks
// (1,346,268 for n = 30). per_op = wall / calls(n), calls(n) = 2*fib(n+1)-1 (2,692,537 for n = 30).

struct FibRef {
  u64 value;  // fib(n)
  u64 calls;  // calls of the naive recursion
};
FibRef fib_ref(u64 n) {
  u64 a = 0, b = 1;  // fib(0), fib(1)
  for (u64 i = 0; i < n; ++i) {
    u64 c = a + b;
    a = b;
    b = c;
  }
  return {a, 2 * b - 1};
}

Task<u64> fib_node(u64 n) {
  if (n < 2) co_return n;
  auto h = trpl::spawn_task(fib_node(n - 1));
  u64 b = co_await fib_node(n - 2);
  co_return unwrap(co_await h, "fib task") + b;
}

Task<double> fib_driver(u64 n, u64 want) {
  auto t = clk::now();
  u64 v = co_await fib_node(n);
  double e = since(t);
  check(v == want, "fib value");
  co_return e;
}

void fib(u64 n) {
  if (n > 92) {  // fib(n+1) must fit in a u64
    std::fprintf(stderr, "fib: n must be at most 92\n");
    std::exit(2);
  }
  FibRef ref = fib_ref(n);
  auto rt = multi_thread();
  double secs = block_on_spawned(rt, fib_driver(n, ref.value));
  report("fib", n, secs, secs * 1e9 / static_cast<double>(ref.calls));
}

// ---------- W9 chained_spawn (tokio's benches/rt_multi_threaded.rs shape): task k spawns task k+1 without awaiting
// it (the JoinHandle is dropped: detached) and ends; task N sends N to the driver. trpl has no oneshot: an
// unbounded channel whose one Sender is moved down the chain. spawn_task only queues the new task, so the chain
// does not grow the stack. 2 workers. per_op = wall / N.

Task<void> chain_step(u64 k, u64 n, trpl::Sender<u64> done) {
  if (k >= n) {
    if (!done.send(k)) fail("chained_spawn: driver gone");
    co_return;
  }
  (void)trpl::spawn_task(chain_step(k + 1, n, std::move(done)));  // detached
}

Task<double> chained_spawn_driver(u64 n) {
  auto t = clk::now();
  auto [tx, rx] = trpl::channel<u64>();
  (void)trpl::spawn_task(chain_step(1, n, std::move(tx)));  // detached
  auto v = co_await rx.recv();
  double e = since(t);
  check(v && *v == n, "chained_spawn value");
  co_return e;
}

void chained_spawn(u64 n) {
  auto rt = multi_thread();
  double secs = block_on_spawned(rt, chained_spawn_driver(n));
  report("chained_spawn", n, secs, secs * 1e9 / n);
}

// ---------- W10 yield_many: 200 spawned tasks each loop N/200 times over `co_await trpl::yield_now()` and return
// their count; the driver awaits the handles in order. 2 workers. per_op = wall / total yields (n = 200 * (N/200)).
// Needs <trpl/yield_now.hpp>; without it the workload exits 3.

constexpr u64 kYieldTasks = 200;

Task<u64> yielder(u64 per) {
  u64 c = 0;
  for (u64 i = 0; i < per; ++i) {
    co_await trpl::yield_now();
    ++c;
  }
  co_return c;
}

Task<double> yield_many_driver(u64 per) {
  auto t = clk::now();
  std::vector<trpl::JoinHandle<u64>> hs;
  hs.reserve(kYieldTasks);
  for (u64 i = 0; i < kYieldTasks; ++i) hs.push_back(trpl::spawn_task(yielder(per)));
  u64 s = 0;
  for (auto& h : hs) s += unwrap(co_await h, "yielder");
  double e = since(t);
  check(s == per * kYieldTasks, "yield_many count");
  co_return e;
}

void yield_many(u64 n) {
  u64 per = n / kYieldTasks;
  u64 total = per * kYieldTasks;
  if (total == 0) {
    std::fprintf(stderr, "yield_many: N must be at least %llu\n", static_cast<unsigned long long>(kYieldTasks));
    std::exit(2);
  }
  auto rt = multi_thread();
  double secs = block_on_spawned(rt, yield_many_driver(per));
  report("yield_many", total, secs, secs * 1e9 / total);
}


// ---------- trpl's own: idle_cpu (N ms): a 2-worker runtime whose main future sleeps N ms; per_op_ns = CPU
// time of the whole process per ms slept (the idle runtime's cost; the bar: < 10 ms over 2 s).
// run_overhead (N): N times trpl::run of a future that returns at once; per_op_ns = wall time per run.

double cpu_seconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return static_cast<double>(u.ru_utime.tv_sec + u.ru_stime.tv_sec) +
         static_cast<double>(u.ru_utime.tv_usec + u.ru_stime.tv_usec) * 1e-6;
}

void idle_cpu(u64 ms) {
  auto rt = multi_thread();
  const double c0 = cpu_seconds();
  rt.block_on([ms]() -> Task<void> { co_await trpl::sleep(std::chrono::milliseconds(ms)); });
  const double cpu = cpu_seconds() - c0;
  report("idle_cpu", ms, cpu, cpu * 1e9 / static_cast<double>(ms));
}

void run_overhead(u64 n) {
  auto t = clk::now();
  for (u64 i = 0; i < n; ++i) {
    if (trpl::run([]() -> Task<u64> { co_return 7; }) != 7) fail("run_overhead value");
  }
  double secs = since(t);
  report("run_overhead", n, secs, secs * 1e9 / static_cast<double>(n));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc < 3) {
    std::fprintf(stderr, "usage: %s <workload> <N>\n", argv[0]);
    return 2;
  }
  const std::string w = argv[1];
  const u64 n = std::strtoull(argv[2], nullptr, 10);
  if (n == 0) {
    std::fprintf(stderr, "N must be a positive integer\n");
    return 2;
  }
  if (w == "spawn_join") spawn_join(n);
  else if (w == "spawn_join_block_on") spawn_join_block_on(n);
  else if (w == "chan_throughput_st") chan_throughput(n, false);
  else if (w == "chan_throughput_mt") chan_throughput(n, true);
  else if (w == "ping_pong") ping_pong(n);
  else if (w == "timers") timers(n);
  else if (w == "fan_in") fan_in(n);
  else if (w == "skynet") skynet(n);
  else if (w == "fib") fib(n);
  else if (w == "chained_spawn") chained_spawn(n);
  else if (w == "yield_many") yield_many(n);
  else if (w == "idle_cpu") idle_cpu(n);
  else if (w == "run_overhead") run_overhead(n);
  else {
    std::fprintf(stderr, "unsupported workload %s\n", w.c_str());
    return 3;  // includes join_many (needs join_all)
  }
  return 0;
}
