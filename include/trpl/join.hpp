// join(a, b, ...) / join3(a, b, c): run several operations concurrently inside the current
// task, fairly, and yield all their results as a tuple (void results as std::monostate).
#pragma once

#include <array>
#include <coroutine>
#include <cstddef>
#include <exception>
#include <optional>
#include <tuple>
#include <type_traits>
#include <utility>
#include <variant>

#include "trpl/awaitable.hpp"
#include "trpl/task.hpp"

namespace trpl {

namespace detail {

template <class T>
using join_value_t = std::conditional_t<std::is_void_v<T>, std::monostate, T>;

// Bookkeeping shared by the children of one join and the join's awaiter.
struct JoinControl {
  std::size_t remaining = 0;
  bool starting = false;              // the awaiter is still starting children on its stack
  std::coroutine_handle<> parent;
  std::exception_ptr error;           // the first exception a child threw
  std::coroutine_handle<>* children = nullptr;  // the awaiter's table of live child frames
  std::size_t count = 0;

  void destroy_children() noexcept {
    for (std::size_t i = 0; i < count; ++i) {
      if (children[i]) std::exchange(children[i], nullptr).destroy();
    }
  }
};

// The coroutine wrapping one child of a join. When it finishes it destroys its own frame at
// once — with it the operation it owns (an `async move` block's captures, e.g. a Sender) —
// and resumes the join's parent if it was the last one (or threw).
struct JoinChild {
  struct promise_type : PooledFrame {
    JoinControl* control = nullptr;
    std::size_t index = 0;

    JoinChild get_return_object() noexcept {
      return {std::coroutine_handle<promise_type>::from_promise(*this)};
    }
    std::suspend_always initial_suspend() const noexcept { return {}; }
    struct FinalAwaiter {
      bool await_ready() const noexcept { return false; }
      std::coroutine_handle<> await_suspend(std::coroutine_handle<promise_type> self) const noexcept {
        JoinControl* c = self.promise().control;
        c->children[self.promise().index] = nullptr;
        self.destroy();  // nothing of the frame is touched after this
        --c->remaining;
        if (c->starting) return std::noop_coroutine();
        if (c->error) c->destroy_children();  // the others are cancelled
        if (c->remaining == 0 || c->error) return continue_with(c->parent);
        return std::noop_coroutine();
      }
      void await_resume() const noexcept {}
    };
    FinalAwaiter final_suspend() const noexcept { return {}; }
    void return_void() const noexcept {}
    void unhandled_exception() noexcept {
      if (!control->error) control->error = std::current_exception();
    }
  };
  std::coroutine_handle<promise_type> handle;
};

template <class Op, class Slot>
JoinChild join_child(Op op, Slot* slot) {
  if constexpr (std::is_void_v<op_result_t<Op>>) {
    auto&& awaitable = await_op(op);  // named: GCC 12 copies a reference operand of co_await
    co_await static_cast<decltype(awaitable)&&>(awaitable);
    slot->emplace();
  } else {
    auto&& awaitable = await_op(op);
    slot->emplace(co_await static_cast<decltype(awaitable)&&>(awaitable));
  }
}

template <class... Ops>
class [[nodiscard("join does nothing until it is awaited")]] JoinAwaitable {
  static constexpr std::size_t N = sizeof...(Ops);

 public:
  using result_type = std::tuple<join_value_t<op_result_t<Ops>>...>;

  template <class... Fs>
    requires(sizeof...(Fs) == N && (std::is_constructible_v<Ops, Fs&&> && ...))
  explicit JoinAwaitable(std::in_place_t, Fs&&... fs) : ops_(std::forward<Fs>(fs)...) {}
  JoinAwaitable(JoinAwaitable&&) = default;
  JoinAwaitable(const JoinAwaitable&) = delete;
  ~JoinAwaitable() { control_.destroy_children(); }

  bool await_ready() const noexcept { return N == 0; }

  bool await_suspend(std::coroutine_handle<> parent) {
    control_.parent = parent;
    control_.children = children_.data();
    control_.count = N;
    make_children(std::index_sequence_for<Ops...>{});
    control_.remaining = N;
    control_.starting = true;
    // Start each child in argument order; each runs until its first suspension.
    for (std::size_t i = 0; i < N && !control_.error; ++i) {
      if (children_[i]) {
        ++tl_inline_depth;
        children_[i].resume();
        --tl_inline_depth;
      }
    }
    control_.starting = false;
    if (control_.error) {
      control_.destroy_children();
      return false;
    }
    return control_.remaining != 0;
  }

  result_type await_resume() {
    if (control_.error) std::rethrow_exception(control_.error);
    return take(std::index_sequence_for<Ops...>{});
  }

 private:
  template <std::size_t... I>
  void make_children(std::index_sequence<I...>) {
    (make_child<I>(), ...);
  }
  template <std::size_t I>
  void make_child() {
    using Op = std::tuple_element_t<I, std::tuple<Ops...>>;
    JoinChild c = join_child<Op>(static_cast<Op&&>(std::get<I>(ops_)), &std::get<I>(slots_));
    c.handle.promise().control = &control_;
    c.handle.promise().index = I;
    children_[I] = c.handle;
  }
  template <std::size_t... I>
  result_type take(std::index_sequence<I...>) {
    return result_type(take_one(std::move(*std::get<I>(slots_)))...);
  }
  template <class V>
  static V take_one(V&& v) { return std::move(v); }

  std::tuple<Ops...> ops_;
  std::tuple<std::optional<join_value_t<op_result_t<Ops>>>...> slots_;
  std::array<std::coroutine_handle<>, N> children_{};
  JoinControl control_;
};

}  // namespace detail

// Awaits every operation concurrently within the current task and yields their results in
// argument order as a std::tuple (void results as std::monostate).
//
// Operations: Tasks, awaitables, or callables returning one. An rvalue is owned and destroyed
//   as soon as its operation completes (Rust's `async move`: a moved-in Sender is dropped
//   then, not when the whole join ends); an lvalue is borrowed (Rust's plain `async` block).
// Fairness: children start in argument order; afterwards each runs when it becomes ready, in
//   the order they became ready — none runs twice while a ready sibling waits.
// Errors: the first exception a child throws cancels the others and is rethrown.
// Cancellation: destroying the awaiting frame destroys every unfinished child (their timers
//   and channel waits are deregistered).
template <class... Fs>
  requires(AsyncOperation<Fs> && ...)
auto join(Fs&&... fs) {
  return detail::JoinAwaitable<detail::stored_op_t<Fs&&>...>(std::in_place, std::forward<Fs>(fs)...);
}

// join of exactly three operations (the book's trpl::join3).
template <class A, class B, class C>
  requires AsyncOperation<A> && AsyncOperation<B> && AsyncOperation<C>
auto join3(A&& a, B&& b, C&& c) {
  return join(std::forward<A>(a), std::forward<B>(b), std::forward<C>(c));
}

}  // namespace trpl
