// TaskCell<T>: a TaskHeader plus the typed output slot, and the root coroutine that runs the
// task's operation and stores its result (value, or the escaping exception as a JoinError).
#pragma once

#include <coroutine>
#include <exception>
#include <expected>
#include <optional>
#include <utility>

#include "trpl/awaitable.hpp"
#include "trpl/detail/task_header.hpp"
#include "trpl/join_error.hpp"

namespace trpl::detail {

template <class T>
struct TaskCell final : TaskHeader {
  using value_type = T;
  using TaskHeader::TaskHeader;
  void set_cancelled() override {
    output.emplace(std::unexpected(JoinError::cancelled(describe())));
  }
  std::string describe() const {
    std::string s = "task " + std::to_string(id);
    if (!name.empty()) s += " '" + name + "'";
    return s;
  }
  std::optional<std::expected<T, JoinError>> output;
};

// The coroutine at the root of every task: awaits the operation, stores the outcome in the
// cell, and stops at final_suspend so the runtime can destroy it (and with it the operation,
// e.g. a moved-in Sender) before publishing the output.
struct RootCoroutine {
  struct promise_type {
    RootCoroutine get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    std::suspend_always final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() const noexcept { std::terminate(); }  // the body catches all
  };
  std::coroutine_handle<promise_type> handle;
};

template <class T, class Op>
RootCoroutine root_coroutine(TaskCell<T>* cell, Op op) {
  try {
    if constexpr (std::is_void_v<T>) {
      auto&& awaitable = await_op(op);  // named: GCC 12 copies a reference operand of co_await
      co_await static_cast<decltype(awaitable)&&>(awaitable);
      cell->output.emplace();
    } else {
      auto&& awaitable = await_op(op);
      cell->output.emplace(co_await static_cast<decltype(awaitable)&&>(awaitable));
    }
  } catch (...) {
    cell->output.emplace(std::unexpected(JoinError::panic(std::current_exception(), cell->describe())));
  }
}

// Allocates the cell for operation `f` (held as stored_op_t<F>: owned or borrowed) with its
// root coroutine created but not started.
template <class F>
auto make_task_cell(RuntimeCore* rt, F&& f) {
  using Op = stored_op_t<F&&>;
  using T = op_result_t<Op>;
  auto* cell = new TaskCell<T>(rt);
  cell->root = root_coroutine<T, Op>(cell, static_cast<F&&>(f)).handle;
  cell->start.frame = cell->root;
  cell->start.task = cell;
  return cell;
}

}  // namespace trpl::detail
