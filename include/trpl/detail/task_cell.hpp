// TaskCell<T>: a TaskHeader plus the typed output slot, and the root coroutine that runs the
// task's operation and stores its result (value, or the escaping exception as a JoinError).
#pragma once

#include <coroutine>
#include <exception>
#include <expected>
#include <memory>
#include <string>
#include <type_traits>
#include <utility>
#include <variant>

#include "trpl/awaitable.hpp"
#include "trpl/detail/frame_pool.hpp"
#include "trpl/detail/task_header.hpp"
#include "trpl/join_error.hpp"

namespace trpl::detail {

// "task 7 'worker'", as JoinError messages and dump_tasks name a task (core alive).
inline std::string describe_task_name(const TaskHeader* t) {
  std::string s = "task " + std::to_string(t->id);
  if (t->name != nullptr) s += std::string(" '") + t->name + "'";
  return s;
}

// Out of line on purpose: GCC 12 -O3 mistakes a delete through the output union for a delete
// of the cell itself (-Wfree-nonheap-object).
[[gnu::noinline]] inline void destroy_join_error(JoinError* e) noexcept { delete e; }

// The output is a value or, rarely, a JoinError kept out of line, so a finished task's cell
// stays small (a million unjoined handles of u64 cost 64 bytes each).
template <class T>
struct TaskCell final : TaskHeader {
  using value_type = T;
  using stored_type = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

  TaskCell() noexcept : TaskHeader(&kOps) {}
  ~TaskCell() { drop(); }

  static void* operator new(std::size_t size) { return frame_alloc(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_free(p, size); }

  template <class... A>
  void set_value(A&&... a) {
    std::construct_at(&value_, std::forward<A>(a)...);
    output = kValue;
  }
  void set_error(JoinError e) {
    error_ = new JoinError(std::move(e));
    output = kError;
  }
  // The JoinHandle's read (after COMPLETE): moves the output out.
  std::expected<T, JoinError> take() {
    output_taken = true;
    if (output == kError) {
      std::expected<T, JoinError> r(std::unexpect, std::move(*error_));
      drop();
      return r;
    }
    if constexpr (std::is_void_v<T>) {
      drop();
      return {};
    } else {
      std::expected<T, JoinError> r(std::in_place, std::move(value_));
      drop();
      return r;
    }
  }
  void drop() noexcept {
    if (output == kValue) std::destroy_at(&value_);
    else if (output == kError) destroy_join_error(error_);
    output = kNoOutput;
  }

 private:
  static const TaskOps kOps;
  union {
    stored_type value_;
    JoinError* error_;
  };
};

template <class T>
const TaskOps TaskCell<T>::kOps = {
    [](TaskHeader* t) noexcept { static_cast<TaskCell<T>*>(t)->drop(); },
    [](TaskHeader* t) noexcept { delete static_cast<TaskCell<T>*>(t); },
    [](TaskHeader* t, std::string who) {
      static_cast<TaskCell<T>*>(t)->set_error(JoinError::cancelled(std::move(who)));
    },
};

// The coroutine at the root of every task: awaits the operation, stores the outcome in the
// cell, and stops at final_suspend so the runtime can destroy it before publishing the output.
// It runs at once up to its first suspension, moving (an rvalue) or binding (an lvalue) the
// operation into a local: a local is destroyed before the promise, and the promise holds the
// TaskCore that destroying the operation's frames still needs (their awaiters deregister
// through it). The local is the only copy: a moved-in callable exists once, as in Rust.
template <class T, class Op, class F>
RootCoroutine root_coroutine(TaskCell<T>* cell, F&& f) {
  Op op = static_cast<F&&>(f);     // f is the caller's, alive until this first suspension
  co_await std::suspend_always{};  // made; the run loop starts it
  try {
    if constexpr (std::is_void_v<T>) {
      auto&& awaitable = await_op(op);  // named: GCC 12 copies a reference operand of co_await
      co_await static_cast<decltype(awaitable)&&>(awaitable);
      cell->set_value();
    } else {
      auto&& awaitable = await_op(op);
      cell->set_value(co_await static_cast<decltype(awaitable)&&>(awaitable));
    }
  } catch (...) {
    cell->set_error(JoinError::panic(std::current_exception(), describe_task_name(cell)));
  }
}

// Allocates the cell for operation `f` (held as stored_op_t<F>: owned or borrowed) with its
// root coroutine created but not started.
template <class F>
auto make_task_cell(RuntimeCore* rt, F&& f) {
  using Op = stored_op_t<F&&>;
  using T = op_result_t<Op>;
  auto cell = std::make_unique<TaskCell<T>>();
  RootHandle root = root_coroutine<T, Op>(cell.get(), static_cast<F&&>(f)).handle;
  if (root.done()) {  // moving the operation in threw
    std::exception_ptr e = root.promise().creation_error;
    root.destroy();
    std::rethrow_exception(e);
  }
  cell->root = root;
  TaskCore& c = cell->core();
  c.header = cell.get();
  c.rt = rt;
  return cell.release();
}

}  // namespace trpl::detail
