// trpl::Error: the one exception type for misuse of the library (wrong thread, moved-from
// handle, consumed result). Its message names the call that was wrong and what to do instead.
#pragma once

#include <stdexcept>
#include <string>

namespace trpl {

class Error : public std::logic_error {
 public:
  using std::logic_error::logic_error;
};

namespace detail {
// Builds "trpl::<call>: <what went wrong>. <how to fix it>." and throws it as trpl::Error.
[[noreturn]] inline void throw_error(const char* call, const std::string& problem,
                                     const std::string& fix) {
  throw Error(std::string("trpl::") + call + ": " + problem + ". " + fix);
}
}  // namespace detail

}  // namespace trpl
