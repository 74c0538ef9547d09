// What trpl accepts as "an async operation": a Task, any awaitable, or a callable returning
// one (the book's async blocks become lambdas returning Task). Concepts and result types.
#pragma once

#include <concepts>
#include <coroutine>
#include <functional>
#include <type_traits>
#include <utility>

#include "trpl/task.hpp"

namespace trpl {

namespace detail {
template <class A>
concept HasMemberCoAwait = requires(A&& a) { static_cast<A&&>(a).operator co_await(); };
template <class A>
concept HasFreeCoAwait = requires(A&& a) { operator co_await(static_cast<A&&>(a)); };
template <class A>
concept IsAwaiter = requires(A& a, std::coroutine_handle<> h) {
  { a.await_ready() } -> std::convertible_to<bool>;
  a.await_resume();
};

template <class A>
decltype(auto) get_awaiter(A&& a) {
  if constexpr (HasMemberCoAwait<A>) return static_cast<A&&>(a).operator co_await();
  else if constexpr (HasFreeCoAwait<A>) return operator co_await(static_cast<A&&>(a));
  else return static_cast<A&&>(a);
}
}  // namespace detail

// Something `co_await` accepts: a Task, an awaiter, or a type with operator co_await.
template <class A>
concept Awaitable = detail::HasMemberCoAwait<A> || detail::HasFreeCoAwait<A> ||
                    detail::IsAwaiter<std::remove_reference_t<A>>;

// What `co_await a` yields.
template <Awaitable A>
using await_result_t = decltype(detail::get_awaiter(std::declval<A>()).await_resume());

// An async operation: an awaitable, or a callable taking no arguments that returns one
// (a coroutine lambda `[]() -> trpl::Task<int> { ... }` is the C++ spelling of `async { }`).
template <class F>
concept AsyncOperation =
    Awaitable<F> || (std::invocable<std::remove_reference_t<F>&> &&
                     Awaitable<std::invoke_result_t<std::remove_reference_t<F>&>>);

namespace detail {
// The thing to co_await for an operation stored as `op` (invoking it when it is callable).
template <class Op>
decltype(auto) await_op(Op& op) {
  if constexpr (Awaitable<Op&>) return (op);
  else return std::invoke(op);
}
template <class Op>
using op_await_t = decltype(await_op(std::declval<Op&>()));

// The result of running operation Op, with void kept as void.
template <class Op>
using op_result_t = std::remove_cvref_t<await_result_t<op_await_t<Op>>>;

// How an operation passed to run/join/race is held: rvalues by value (owned: destroyed as
// soon as its coroutine completes — Rust's `async move`), lvalues by reference (borrowed —
// Rust's plain `async` block borrowing its surroundings).
template <class F>
using stored_op_t = std::conditional_t<std::is_lvalue_reference_v<F>, F, std::decay_t<F>>;
}  // namespace detail

}  // namespace trpl
