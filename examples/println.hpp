// println / eprintln for the book's listings: Rust's println!/eprintln! as whole lines.
// One lock for both streams, so lines from tasks on different worker threads never interleave.
#pragma once

#include <iostream>
#include <mutex>
#include <string_view>

namespace detail_println {
// Shared by println and eprintln: stdout and stderr often end up in one pipe (the tour merges
// them), and a line must reach it in one piece whichever stream it went to.
inline std::mutex& line_mutex() {
  static std::mutex m;
  return m;
}
}  // namespace detail_println

// Writes `line` and a newline to std::cout and flushes, so the line is out before the next
// await (the tour timestamps lines as they arrive; a buffered line would arrive late).
inline void println(std::string_view line) {
  std::lock_guard lock(detail_println::line_mutex());
  std::cout << line << '\n' << std::flush;
}

// The same on std::cerr (Rust's eprintln!).
inline void eprintln(std::string_view line) {
  std::lock_guard lock(detail_println::line_mutex());
  std::cerr << line << '\n' << std::flush;
}
