// JoinError: why a spawned task produced no value — it was cancelled (abort, shutdown) or an
// exception escaped it (a "panic" in Rust's words; the exception is kept).
#pragma once

#include <exception>
#include <string>

namespace trpl {

class JoinError {
 public:
  static JoinError cancelled(std::string task = {}) { return JoinError(nullptr, std::move(task)); }
  static JoinError panic(std::exception_ptr e, std::string task = {}) {
    return JoinError(std::move(e), std::move(task));
  }

  bool is_cancelled() const noexcept { return !exception_; }
  bool is_panic() const noexcept { return static_cast<bool>(exception_); }
  // The exception that escaped the task (null when cancelled).
  const std::exception_ptr& exception() const noexcept { return exception_; }
  // Rethrows the task's exception. Cancellation has none: that throws trpl::Error-free
  // std::runtime_error naming the task.
  [[noreturn]] void rethrow() const;
  // "task 7 'worker' was cancelled" / "task 7 panicked: <what()>".
  std::string message() const;

 private:
  JoinError(std::exception_ptr e, std::string task) : exception_(std::move(e)), task_(std::move(task)) {}
  std::exception_ptr exception_;
  std::string task_;
};

inline std::string JoinError::message() const {
  std::string who = task_.empty() ? std::string("task") : task_;
  if (is_cancelled()) return who + " was cancelled";
  try {
    std::rethrow_exception(exception_);
  } catch (const std::exception& e) {
    return who + " panicked: " + e.what();
  } catch (...) {
    return who + " panicked with a non-std::exception value";
  }
}

inline void JoinError::rethrow() const {
  if (exception_) std::rethrow_exception(exception_);
  throw std::runtime_error(message());
}

}  // namespace trpl
