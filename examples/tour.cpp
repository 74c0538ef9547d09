// tour: runs the book's listings 17-6 … 17-13 (the listing_17_NN programs next to it) one by
// one and shows each line they print with the milliseconds since start, and how each ended.
//
// Usage: tour            run every listing (about 25 s: the listings sleep in real time)
//        tour 17-12 …    run only these (17-6 and 17-06 both work)
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

struct Listing {
  std::string_view number;   // as the book writes it: "17-6"
  std::string_view program;  // the executable next to the tour
  std::string_view about;    // what the book uses it to show, in one sentence
  bool hangs;                // never exits on purpose: the tour stops it
  std::string_view why_it_hangs;
};

constexpr Listing kListings[] = {
    {"17-6",
     "listing_17_06",
     "A task started with spawn_task counts beside the main future's own loop, and is cut off "
     "mid-count when the main future finishes.",
     false,
     {}},
    {"17-7",
     "listing_17_07",
     "Awaiting the spawned task's join handle keeps the program alive until that task has "
     "counted all the way to 9.",
     false,
     {}},
    {"17-8",
     "listing_17_08",
     "trpl::join drives two async blocks inside a single task, taking turns fairly, so the "
     "interleaving is the same on every run.",
     false,
     {}},
    {"17-9",
     "listing_17_09",
     "One message goes through an async channel and is received in the same future, one step "
     "after the other, with no concurrency at all.",
     false,
     {}},
    {"17-10", "listing_17_10",
     "All the sends and their sleeps happen before the first receive in one future, so the four "
     "lines arrive together after two seconds.",
     true,
     "rx.recv() returns nothing only once every sender is gone, but tx lives in the same outer\n"
     "block that is now stuck in the receive loop, so it is never dropped and recv() waits\n"
     "forever. Nothing calls rx.close() either."},
    {"17-11", "listing_17_11",
     "Sending and receiving in two blocks run by join spaces the lines 500 ms apart, yet the "
     "program still never finishes.",
     true,
     "tx_fut only borrowed tx: when it finishes, tx is still alive in the outer block, so\n"
     "rx.recv() keeps waiting, rx_fut never ends, the join never ends, and the outer block that\n"
     "owns tx never reaches the point where it would drop it."},
    {"17-12",
     "listing_17_12",
     "Moving the sender into its block means it is dropped when that block ends, which closes "
     "the channel and lets the program finish.",
     false,
     {}},
    {"17-13",
     "listing_17_13",
     "Two senders, one cloned from the other, feed a single receiver at different paces while "
     "join3 runs all three blocks.",
     false,
     {}},
};

// How long a hanging listing runs before it is stopped, and how long a stopped one may take to
// go after SIGTERM before SIGKILL.
constexpr auto kStopAfter = std::chrono::seconds(3);
constexpr auto kGracePeriod = std::chrono::seconds(1);
// A listing that should exit but is still running after this is broken: stop it too.
constexpr auto kSafetyLimit = std::chrono::seconds(20);

long long ms_since(steady::time_point start) {
  return std::chrono::duration_cast<std::chrono::milliseconds>(steady::now() - start).count();
}

void print_line(const std::string& line) { std::cout << line << '\n' << std::flush; }

void print_output_line(long long ms, std::string_view text) {
  char stamp[32];
  std::snprintf(stamp, sizeof stamp, "%6lld ms | ", ms);
  print_line(stamp + std::string(text));
}

// The directory holding this executable (the listings are built next to it).
std::string own_directory() {
  std::vector<char> buf(4096);
  ssize_t n = ::readlink("/proc/self/exe", buf.data(), buf.size() - 1);
  if (n <= 0) return ".";
  std::string path(buf.data(), static_cast<std::size_t>(n));
  std::size_t slash = path.rfind('/');
  return slash == std::string::npos ? std::string(".") : path.substr(0, slash);
}

struct Outcome {
  bool exited = false;   // ended by itself (code) rather than by a signal
  int code = 0;          // exit code, or the signal that ended it
  bool stopped = false;  // we sent the signal (hanging listing, or the safety limit)
  long long ms = 0;      // when it was reaped, since start
};

// Runs `path` with stdout and stderr into one pipe, printing each line as it arrives, stamped
// with the ms since the child was started. Stops the child after `stop_after` if it is still
// running (SIGTERM, then SIGKILL after the grace period).
std::optional<Outcome> run_child(const std::string& path, steady::duration stop_after) {
  int fds[2];
  if (::pipe2(fds, O_CLOEXEC) != 0) {
    std::cerr << "tour: pipe: " << std::strerror(errno) << '\n';
    return std::nullopt;
  }
  const steady::time_point start = steady::now();
  const pid_t pid = ::fork();
  if (pid < 0) {
    std::cerr << "tour: fork: " << std::strerror(errno) << '\n';
    ::close(fds[0]);
    ::close(fds[1]);
    return std::nullopt;
  }
  if (pid == 0) {
    // One pipe for both streams keeps the order in which the child wrote its lines; the
    // child's stderr matters too (see the deadlock-report hook below).
    ::dup2(fds[1], STDOUT_FILENO);
    ::dup2(fds[1], STDERR_FILENO);
    char* const argv[] = {const_cast<char*>(path.c_str()), nullptr};
    ::execv(path.c_str(), argv);
    const std::string msg = "tour: cannot run " + path + ": " + std::strerror(errno) + "\n";
    [[maybe_unused]] ssize_t ignored = ::write(STDERR_FILENO, msg.data(), msg.size());
    ::_exit(127);
  }
  ::close(fds[1]);

  Outcome out;
  std::string pending;  // bytes of a line not finished yet
  bool eof = false;
  bool reaped = false;
  int status = 0;
  std::optional<steady::time_point> term_sent;
  bool kill_sent = false;
  const steady::time_point stop_at = start + stop_after;

  while (!eof || !reaped) {
    if (eof && !reaped) {
      pid_t r = ::waitpid(pid, &status, WNOHANG);
      if (r == pid) {
        reaped = true;
        out.ms = ms_since(start);
        break;
      }
    }
    const steady::time_point now = steady::now();
    if (!term_sent && now >= stop_at) {
      ::kill(pid, SIGTERM);
      out.stopped = true;
      term_sent = now;
    } else if (term_sent && !kill_sent && now >= *term_sent + kGracePeriod) {
      ::kill(pid, SIGKILL);
      kill_sent = true;
    }
    steady::time_point wake = !term_sent   ? stop_at
                              : !kill_sent ? *term_sent + kGracePeriod
                                           : now + std::chrono::milliseconds(50);
    if (eof) wake = std::min(wake, now + std::chrono::milliseconds(5));  // waiting to reap
    const long long timeout_ms =
        std::max<long long>(0, std::chrono::ceil<std::chrono::milliseconds>(wake - now).count());

    pollfd p{eof ? -1 : fds[0], POLLIN, 0};  // a negative fd is ignored: just a timed wait
    int ready = ::poll(&p, 1, static_cast<int>(std::min<long long>(timeout_ms, 1000)));
    if (ready < 0 && errno != EINTR) break;
    if (ready <= 0 || eof) continue;

    char buf[4096];
    ssize_t n = ::read(fds[0], buf, sizeof buf);
    const long long ms = ms_since(start);
    if (n < 0 && (errno == EINTR || errno == EAGAIN)) continue;
    if (n <= 0) {
      eof = true;
      continue;
    }
    pending.append(buf, static_cast<std::size_t>(n));
    std::size_t nl;
    while ((nl = pending.find('\n')) != std::string::npos) {
      print_output_line(ms, std::string_view(pending).substr(0, nl));
      pending.erase(0, nl + 1);
    }
  }
  ::close(fds[0]);
  if (!pending.empty()) print_output_line(ms_since(start), pending);
  if (!reaped) {
    while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
    }
    out.ms = ms_since(start);
  }
  if (WIFEXITED(status)) {
    out.exited = true;
    out.code = WEXITSTATUS(status);
  } else if (WIFSIGNALED(status)) {
    out.code = WTERMSIG(status);
  }
  return out;
}

// Runs one listing and reports it; returns whether it behaved as the book says.
bool tour_listing(const Listing& listing, const std::string& dir) {
  print_line("");
  print_line("=== Listing " + std::string(listing.number) + " " +
             std::string(60 - listing.number.size(), '='));
  print_line(std::string(listing.about));
  print_line(listing.hangs ? "(never exits, by design: stopped after 3 s)" : "(exits by itself)");

  const std::string path = dir + "/" + std::string(listing.program);
  if (::access(path.c_str(), X_OK) != 0) {
    print_line("not found: " + path + " (build the target " + std::string(listing.program) + ")");
    return false;
  }
  const steady::duration limit =
      listing.hangs ? steady::duration(kStopAfter) : steady::duration(kSafetyLimit);
  std::optional<Outcome> out = run_child(path, limit);
  if (!out) return false;

  if (out->exited) {
    print_line("exited " + std::to_string(out->code) + " after " + std::to_string(out->ms) + " ms");
  } else if (out->stopped) {
    const char* how = out->code == SIGTERM ? "SIGTERM" : out->code == SIGKILL ? "SIGKILL" : nullptr;
    print_line("stopped after " + std::to_string(out->ms) + " ms (" +
               (how ? std::string(how) : "signal " + std::to_string(out->code)) + ")");
  } else {
    print_line("killed by signal " + std::to_string(out->code) + " (" + ::strsignal(out->code) +
               ") after " + std::to_string(out->ms) + " ms");
  }

  if (listing.hangs) {
    // ---- HOOK: deadlock report --------------------------------------------------------------
    // The runtime's deadlock report (a separate issue: what every task waits on once none can
    // make progress) is written to the child's stderr. That stderr shares the pipe with stdout,
    // so the report shows up above among the timestamped lines with no change here (17-10 and
    // 17-11 show it about 500 ms after their last line), and the grace period between SIGTERM
    // and SIGKILL lets out a report printed on SIGTERM. Nothing else is needed at this point.
    // -------------------------------------------------------------------------------------------
    print_line("why it never exits:");
    std::string_view why = listing.why_it_hangs;
    while (!why.empty()) {
      std::size_t nl = why.find('\n');
      print_line("  " + std::string(why.substr(0, nl)));
      why = nl == std::string_view::npos ? std::string_view() : why.substr(nl + 1);
    }
    // Behaving as the book says: it was still running when stopped.
    return out->stopped && !out->exited;
  }
  if (out->stopped) print_line("it should have exited by itself: the book says it does");
  return out->exited && out->code == 0;
}

const Listing* find_listing(std::string_view arg) {
  for (const Listing& l : kListings) {
    // "17-6" or "17-06": compare the part after "17-" as a number.
    if (arg == l.number) return &l;
    if (arg.size() == 5 && arg.substr(0, 4) == "17-0" && arg.substr(4) == l.number.substr(3)) {
      return &l;
    }
  }
  return nullptr;
}

void usage(std::ostream& os) {
  os << "usage: tour [17-6 … 17-13]…\n"
        "Runs the book's listings (all of them without arguments) and prints each line they\n"
        "write with the milliseconds since the listing started, then how it ended.\n";
}

}  // namespace

int main(int argc, char** argv) {
  std::vector<const Listing*> chosen;
  for (int i = 1; i < argc; ++i) {
    std::string_view arg = argv[i];
    if (arg == "-h" || arg == "--help") {
      usage(std::cout);
      return 0;
    }
    const Listing* l = find_listing(arg);
    if (l == nullptr) {
      std::cerr << "tour: no listing " << arg << " here (17-6 … 17-13)\n";
      usage(std::cerr);
      return 2;
    }
    chosen.push_back(l);
  }
  if (chosen.empty()) {
    for (const Listing& l : kListings) chosen.push_back(&l);
  }

  const std::string dir = own_directory();
  int failed = 0;
  for (const Listing* l : chosen) {
    if (!tour_listing(*l, dir)) ++failed;
  }
  print_line("");
  if (failed == 0) {
    print_line(std::to_string(chosen.size()) + " listing(s): all behaved as the book describes");
  } else {
    print_line(std::to_string(failed) + " of " + std::to_string(chosen.size()) +
               " listing(s) did not behave as the book describes");
  }
  return failed == 0 ? 0 : 1;
}
