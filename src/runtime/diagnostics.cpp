// Diagnostics: the task dump (claiming each idle task so its frames can be read safely), the
// deadlock report, the process-wide list of runtimes for dump_tasks(), the dump-on-signal.
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <iostream>
#include <algorithm>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/runtime_core.hpp"
#include "trpl/diagnostics.hpp"

namespace trpl::detail {

namespace {

std::mutex& runtimes_mu() {
  static std::mutex mu;
  return mu;
}
std::vector<RuntimeCore*>& runtimes() {
  static std::vector<RuntimeCore*> list;
  return list;
}

std::string where_text(const std::source_location* w) {
  if (w == nullptr) return {};
  std::string s = w->file_name();
  if (auto slash = s.rfind('/'); slash != std::string::npos) {
    // Keep the last two path parts: enough to find the line, short enough to read.
    auto prev = s.rfind('/', slash - 1);
    s = s.substr(prev == std::string::npos ? 0 : prev + 1);
  }
  return s + ":" + std::to_string(w->line());
}

std::string ms_text(std::int64_t ns) {
  return std::to_string(ns / 1'000'000) + " ms";
}

// Dump on a signal: the handler only writes a byte; this thread does the dump.
int g_signal_pipe[2] = {-1, -1};
std::thread* g_signal_thread = nullptr;
struct sigaction g_old_action {};

void on_dump_signal(int) {
  char b = 1;
  [[maybe_unused]] auto r = ::write(g_signal_pipe[1], &b, 1);
}

}  // namespace

void register_runtime(RuntimeCore* rt) {
  std::lock_guard lk(runtimes_mu());
  runtimes().push_back(rt);
}
void unregister_runtime(RuntimeCore* rt) {
  std::lock_guard lk(runtimes_mu());
  std::erase(runtimes(), rt);
}

void install_dump_signal(int sig) {
  std::lock_guard lk(runtimes_mu());
  if (g_signal_thread != nullptr) return;
  if (::pipe(g_signal_pipe) != 0) return;
  g_signal_thread = new std::thread([] {
    char b;
    while (::read(g_signal_pipe[0], &b, 1) == 1 && b == 1) {
      std::string report = trpl::dump_tasks();
      std::fputs(report.c_str(), stderr);
      std::fflush(stderr);
    }
  });
  struct sigaction sa {};
  sa.sa_handler = on_dump_signal;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = SA_RESTART;
  ::sigaction(sig, &sa, &g_old_action);
}

void remove_dump_signal(int sig) {
  std::thread* t = nullptr;
  {
    std::lock_guard lk(runtimes_mu());
    if (g_signal_thread == nullptr) return;
    ::sigaction(sig, &g_old_action, nullptr);
    t = std::exchange(g_signal_thread, nullptr);
    char stop = 0;
    [[maybe_unused]] auto r = ::write(g_signal_pipe[1], &stop, 1);
  }
  t->join();
  delete t;
  ::close(g_signal_pipe[0]);
  ::close(g_signal_pipe[1]);
}

void RuntimeCore::describe_task(TaskHeader* t, std::string& out) {
  using H = TaskHeader;
  out += "  task " + std::to_string(t->id);
  if (t->name != nullptr) out += std::string(" '") + t->name + "'";
  if (t->spawned_at.line() == 0) {
    out += " (the block_on future)";
  } else {
    out += " spawned at " + where_text(&t->spawned_at);
  }
  // Only the thread holding RUNNING may look at a task's frames (or its core): claim it while
  // it is idle.
  const bool own = (t == tl_current_task);
  if (!own) {
    const std::uintptr_t s = t->sched.load(std::memory_order_acquire);
    if (s & H::kComplete) {
      out += ": finished\n";
      return;
    }
    if (s & H::kRunning) {
      out += ": running\n";
      return;
    }
    if (s & H::kScheduled) {
      out += ": ready to run\n";
      return;
    }
    if (!claim_idle(t)) {
      out += ": running\n";  // it was woken, or someone else claimed it, just now
      return;
    }
  }
  TaskCore& c = t->core();
  if (own) {
    out += ": running (this is the task calling dump_tasks)\n";
  } else {
    const std::int64_t idle_for =
        static_cast<std::uint32_t>(coarse_now_ns() / 1'000'000 - c.idle_since_ms) * std::int64_t{1'000'000};
    out += ": waiting";
    if (idle_for > 0) out += " for about " + ms_text(idle_for);
    out += "\n";
  }
  if (!c.started) out += "      on its first run (spawned, not started yet)\n";
  for (WakeNode* n = c.waits_head; n != nullptr; n = n->waits_next) {
    out += "      on ";
    out += n->kind ? n->kind->what : "an awaitable";
    if (n->kind && n->kind->describe) {
      std::string detail;
      n->kind->describe(*n, detail);
      if (!detail.empty()) out += " (" + detail + ")";
    }
    if (n->where.line() != 0) out += " at " + where_text(&n->where);
    out += "\n";
  }
  if (!own) {
    // Give the task back. A wake that arrived meanwhile found it "running" and left it to us:
    // then it is ours to queue.
    std::uintptr_t s = t->sched.load(std::memory_order_acquire);
    for (;;) {
      const bool woken = H::stack_of(s) != nullptr || (s & H::kScheduled);
      const std::uintptr_t ns = woken ? ((s | H::kScheduled) & ~H::kRunning) : (s & ~H::kRunning);
      if (t->sched.compare_exchange_weak(s, ns, std::memory_order_acq_rel, std::memory_order_acquire)) {
        if (woken) enqueue(t, EnqueueKind::woken);
        break;
      }
    }
  }
}

std::string RuntimeCore::dump() {
  std::vector<TaskHeader*> tasks;
  for_each_list([&](TaskList& l) {
    l.for_each_live([&](TaskHeader* t) {
      t->ref();
      tasks.push_back(t);
    });
  });
  // Oldest first (each list is newest-first; ids grow with time within a list).
  std::sort(tasks.begin(), tasks.end(), [](TaskHeader* a, TaskHeader* b) { return a->id < b->id; });
  std::string out = "trpl runtime (" + std::string(config_.multi_thread ? "multi_thread" : "current_thread") +
                    (config_.deterministic ? ", deterministic seed " + std::to_string(config_.seed) : "") +
                    "): " + std::to_string(tasks.size()) + " live task" + (tasks.size() == 1 ? "" : "s") + "\n";
  for (TaskHeader* t : tasks) describe_task(t, out);
  for (TaskHeader* t : tasks) t->unref();
  return out;
}

void RuntimeCore::report_deadlock() {
  std::string report =
      "trpl: possible deadlock: every task is waiting, and nothing inside the runtime can wake "
      "one (no runnable task, no armed timer). Only a send or wake from a thread outside the "
      "runtime could still end the wait; it would be served normally.\n";
  report += dump();
  if (config_.on_deadlock == DeadlockPolicy::report) {
    std::fputs(report.c_str(), stderr);
    std::fflush(stderr);
    return;
  }
  {
    std::lock_guard lk(deadlock_mu_);
    deadlock_report_ = std::move(report);
    deadlock_raised_.store(true, std::memory_order_release);
  }
  main_parker_.unpark();
}

}  // namespace trpl::detail

namespace trpl {

std::string dump_tasks() {
  std::lock_guard lk(detail::runtimes_mu());
  std::string out;
  for (detail::RuntimeCore* rt : detail::runtimes()) out += rt->dump();
  if (out.empty()) out = "trpl: no runtime is running\n";
  return out;
}

}  // namespace trpl
