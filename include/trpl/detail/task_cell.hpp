// TaskCell<T>: a TaskHeader plus the typed output slot; and how a task runs its operation
// (a Task as the root frame itself, a callable returning a Task, or any other awaitable under a
// root coroutine) and stores its result (value, or the escaping exception as a JoinError).
#pragma once

#include <coroutine>
#include <exception>
#include <functional>
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

  explicit TaskCell(const TaskOps* ops) noexcept : TaskHeader(ops) {}
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
  // The escaping exception being handled now, as the task's output.
  void set_panic() { set_error(JoinError::panic(std::current_exception(), describe_task_name(this))); }
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
  union {
    stored_type value_;
    JoinError* error_;
  };
};

// ---- the three kinds of operation a task can run, and their TaskOps ----
//   a Task<U> (owned): its frame is the task's root; nothing else is kept.
//   a callable returning Task<U> (a coroutine lambda, owned or borrowed): kept beside the core,
//     called at the first run; the Task it returns is the root.
//   any other awaitable, or a callable returning one: a root coroutine awaits it.
// A Task root needs no frame of its own: its promise keeps the value or exception, which the
// finisher moves into the cell.

template <class X>
struct is_task : std::false_type {};
template <class U>
struct is_task<Task<U>> : std::true_type {};

template <class Op>
inline constexpr bool kIsOwnedTask = is_task<Op>::value;  // stored_op_t: a value for an rvalue
template <class Op>
concept TaskCallable = !Awaitable<std::remove_reference_t<Op>&> &&
                       std::invocable<std::remove_reference_t<Op>&> &&
                       is_task<std::invoke_result_t<std::remove_reference_t<Op>&>>::value;

// The core of a task whose operation lives elsewhere (in its root frame).
struct PooledCore final : TaskCore {
  static void* operator new(std::size_t size) { return frame_alloc(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_free(p, size); }
};
// The core and, beside it, the callable the root came from (an rvalue owned, an lvalue
// borrowed: Op is then a reference). Destroyed after the root frame, which may refer to it.
template <class Op>
struct CallableCore final : TaskCore {
  template <class F>
  explicit CallableCore(F&& f) : op(static_cast<F&&>(f)) {}
  static void* operator new(std::size_t size) { return frame_alloc(size); }
  static void operator delete(void* p, std::size_t size) noexcept { frame_free(p, size); }
  Op op;
};

// The root coroutine for any other awaitable: awaits the operation (a parameter: owned, or
// borrowed by reference) and stores the outcome in the cell.
struct RootPromise;
struct RootCoroutine {
  using promise_type = RootPromise;
  std::coroutine_handle<RootPromise> handle;
};
struct RootPromise : PooledFrame {
  RootCoroutine get_return_object() noexcept {
    return {std::coroutine_handle<RootPromise>::from_promise(*this)};
  }
  std::suspend_always initial_suspend() const noexcept { return {}; }
  std::suspend_always final_suspend() const noexcept { return {}; }
  void return_void() const noexcept {}
  void unhandled_exception() const noexcept { std::terminate(); }  // the body catches all
};
template <class T, class Op>
RootCoroutine root_coroutine(TaskCell<T>* cell, Op op) {
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
    cell->set_panic();
  }
}

// Moves a finished Task root's outcome (value or exception) into the cell.
template <class T, class U>
void store_task_outcome(TaskCell<T>* cell, std::coroutine_handle<> root) noexcept {
  auto h = std::coroutine_handle<typename Task<U>::promise_type>::from_address(root.address());
  try {
    if constexpr (std::is_void_v<T>) {
      h.promise().take();
      cell->set_value();
    } else {
      cell->set_value(h.promise().take());
    }
  } catch (...) {
    cell->set_panic();
  }
}

// The misuse a spawned Task can carry (empty, or already awaited), as the task's output.
template <class T, class U>
bool check_task_root(TaskCell<T>* cell, std::coroutine_handle<> root) noexcept {
  try {
    if (!root) {
      throw_error("spawn_task", "the Task is empty (moved-from)", "Spawn the Task object that received it");
    }
    auto h = std::coroutine_handle<typename Task<U>::promise_type>::from_address(root.address());
    if (h.promise().state_ != ChildState::not_started || h.done()) {
      throw_error("spawn_task", "the Task was already awaited",
                  "A Task runs once; make a new one by calling the coroutine again");
    }
    return true;
  } catch (...) {
    cell->set_panic();
    return false;
  }
}

template <class T, class Op>
struct TaskKind {
  using Cell = TaskCell<T>;
  static Cell* cell_of(TaskHeader* t) noexcept { return static_cast<Cell*>(t); }

  template <class F>
  static TaskCore* make_core(Cell* cell, F&& f) {
    if constexpr (kIsOwnedTask<Op>) {
      auto* c = new PooledCore();
      Op task = static_cast<F&&>(f);
      c->root = task.release();
      return c;
    } else if constexpr (TaskCallable<Op>) {
      return new CallableCore<Op>(static_cast<F&&>(f));
    } else {
      auto* c = new PooledCore();
      try {
        c->root = root_coroutine<T, Op>(cell, static_cast<F&&>(f)).handle;
      } catch (...) {
        delete c;
        throw;
      }
      return c;
    }
  }

  static std::coroutine_handle<> start(TaskHeader* t) noexcept {
    TaskCore& c = t->core();
    if constexpr (kIsOwnedTask<Op>) {
      using U = typename Op::value_type;
      if (!check_task_root<T, U>(cell_of(t), c.root)) return nullptr;
    } else if constexpr (TaskCallable<Op>) {
      auto& core = static_cast<CallableCore<Op>&>(c);
      try {
        c.root = std::invoke(core.op).release();
      } catch (...) {
        cell_of(t)->set_panic();
        return nullptr;
      }
      using U = typename std::invoke_result_t<std::remove_reference_t<Op>&>::value_type;
      if (!check_task_root<T, U>(cell_of(t), c.root)) return nullptr;
    }
    return c.root;
  }

  static void destroy_core(TaskHeader* t, bool cancelled) noexcept {
    TaskCore* c = t->core_;
    if (c->root) {
      if constexpr (kIsOwnedTask<Op>) {
        if (!cancelled && c->root.done()) store_task_outcome<T, typename Op::value_type>(cell_of(t), c->root);
      } else if constexpr (TaskCallable<Op>) {
        using U = typename std::invoke_result_t<std::remove_reference_t<Op>&>::value_type;
        if (!cancelled && c->root.done()) store_task_outcome<T, U>(cell_of(t), c->root);
      }
      // Destroys every frame the task owns; their awaiters deregister through the core.
      c->root.destroy();
      c->root = nullptr;
    }
    if constexpr (TaskCallable<Op>) {
      delete static_cast<CallableCore<Op>*>(c);  // the callable after the frame it made
    } else {
      delete static_cast<PooledCore*>(c);
    }
    t->core_ = nullptr;
  }

  static constexpr TaskOps kOps = {
      [](TaskHeader* t) noexcept { cell_of(t)->drop(); },
      [](TaskHeader* t) noexcept { delete cell_of(t); },
      [](TaskHeader* t, std::string who) { cell_of(t)->set_error(JoinError::cancelled(std::move(who))); },
      &start,
      &destroy_core,
  };
};

// Allocates the cell and core for operation `f` (held as stored_op_t<F>: owned or borrowed),
// its root not started.
template <class F>
auto make_task_cell(RuntimeCore* rt, F&& f) {
  using Op = stored_op_t<F&&>;
  using T = op_result_t<Op>;
  using Kind = TaskKind<T, Op>;
  auto cell = std::make_unique<TaskCell<T>>(&Kind::kOps);
  TaskCore* c = Kind::make_core(cell.get(), static_cast<F&&>(f));
  c->header = cell.get();
  c->rt = rt;
  cell->core_ = c;
  return cell.release();
}

}  // namespace trpl::detail
