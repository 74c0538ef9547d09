// Task<T>: the lazy, move-only coroutine type of trpl (a Rust future). Awaiting a Task runs it
// inline; it knows nothing of the runtime beyond one thread-local "run next" slot (see below).
#pragma once

#include <coroutine>
#include <exception>
#include <optional>
#include <type_traits>
#include <utility>

#include "trpl/detail/frame_pool.hpp"
#include "trpl/error.hpp"

namespace trpl {

template <class T = void>
class Task;

namespace detail {

class PromiseBase;

// The runtime's run loop installs a Trampoline while it resumes frames of a task. A coroutine
// that finishes after having been suspended hands its awaiting parent to the loop through it
// instead of resuming the parent on top of the current stack, and a child task started too
// deep is queued here instead of being started inline: stacks never grow with the length or
// depth of a chain of awaits, on any compiler and at any optimisation level (GCC 12 does not
// turn symmetric transfer into a tail call at -O0 or under sanitizers). Without a trampoline
// (no run loop on this thread) completions fall back to symmetric transfer.
struct Trampoline {
  std::coroutine_handle<> next;        // the one continuation set by a final_suspend
  PromiseBase* deferred_head = nullptr;  // children started too deep, FIFO
  PromiseBase* deferred_tail = nullptr;

  // Resumes everything handed over until nothing is left. Called by the run loop after it
  // resumed a frame.
  void drain();
  // A deferred child's Task is being destroyed before its start came up: drop it.
  void forget(PromiseBase* p) noexcept;
};
inline thread_local Trampoline* tl_trampoline = nullptr;

// How deep inline starts of child tasks may nest on one stack before the child is handed to
// the run loop instead (bounds stack use for deep recursion of synchronously-completing tasks).
inline constexpr int kMaxInlineDepth = 64;
inline thread_local int tl_inline_depth = 0;

// Continue `next` after the current frame suspends: through the run loop when there is one,
// else by symmetric transfer.
inline std::coroutine_handle<> continue_with(std::coroutine_handle<> next) noexcept {
  if (Trampoline* t = tl_trampoline) {
    t->next = next;
    return std::noop_coroutine();
  }
  return next;
}

// Where a task is relative to the frame that awaits it.
enum class ChildState : unsigned char {
  not_started,
  running_inline,      // parent is still inside await_suspend, running the child on its stack
  completed_inline,    // child finished before the parent's await_suspend returned
  detached,            // parent is suspended; the child continues it when done
};

// Frames come from the pool (detail/frame_pool.hpp): no malloc per coroutine in steady state.
class PromiseBase : public PooledFrame {
 public:
  std::suspend_always initial_suspend() const noexcept { return {}; }

  struct FinalAwaiter {
    bool await_ready() const noexcept { return false; }
    template <class P>
    std::coroutine_handle<> await_suspend(std::coroutine_handle<P> self) const noexcept {
      PromiseBase& p = self.promise();
      if (!p.continuation_) return std::noop_coroutine();  // a task's root: the run loop sees done()
      if (p.state_ == ChildState::running_inline) {
        p.state_ = ChildState::completed_inline;  // the parent continues without a transfer
        return std::noop_coroutine();
      }
      return continue_with(p.continuation_);
    }
    void await_resume() const noexcept {}
  };
  FinalAwaiter final_suspend() const noexcept { return {}; }

  void unhandled_exception() noexcept { exception_ = std::current_exception(); }

  std::coroutine_handle<> continuation_;
  std::exception_ptr exception_;
  PromiseBase* deferred_next_ = nullptr;  // link in Trampoline's deferred starts
  std::coroutine_handle<> self_;          // set when deferred
  ChildState state_ = ChildState::not_started;
  bool deferred_ = false;                 // waiting in the trampoline for its start
};

inline void Trampoline::forget(PromiseBase* p) noexcept {
  PromiseBase* prev = nullptr;
  for (PromiseBase* q = deferred_head; q != nullptr; prev = q, q = q->deferred_next_) {
    if (q != p) continue;
    (prev ? prev->deferred_next_ : deferred_head) = q->deferred_next_;
    if (deferred_tail == q) deferred_tail = prev;
    break;
  }
  p->deferred_next_ = nullptr;
  p->deferred_ = false;
}

inline void Trampoline::drain() {
  for (;;) {
    if (next) {
      std::exchange(next, nullptr).resume();
    } else if (PromiseBase* p = deferred_head) {
      deferred_head = p->deferred_next_;
      if (deferred_head == nullptr) deferred_tail = nullptr;
      p->deferred_next_ = nullptr;
      p->deferred_ = false;
      p->self_.resume();
    } else {
      return;
    }
  }
}

template <class T>
class Promise final : public PromiseBase {
 public:
  Task<T> get_return_object() noexcept;
  template <class U>
    requires std::is_convertible_v<U&&, T>
  void return_value(U&& value) noexcept(std::is_nothrow_constructible_v<T, U&&>) {
    value_.emplace(std::forward<U>(value));
  }
  T take() {
    if (exception_) std::rethrow_exception(exception_);
    return std::move(*value_);
  }

 private:
  std::optional<T> value_;
};

template <>
class Promise<void> final : public PromiseBase {
 public:
  Task<void> get_return_object() noexcept;
  void return_void() noexcept {}
  void take() {
    if (exception_) std::rethrow_exception(exception_);
  }
};

template <class T>
class Promise<T&> final : public PromiseBase {
 public:
  Task<T&> get_return_object() noexcept;
  void return_value(T& value) noexcept { value_ = &value; }
  T& take() {
    if (exception_) std::rethrow_exception(exception_);
    return *value_;
  }

 private:
  T* value_ = nullptr;
};

}  // namespace detail

// A lazy coroutine producing a T. Nothing runs until it is awaited (or handed to spawn_task,
// join, run). Move-only; destroying it destroys the coroutine frame and everything it owns,
// wherever it is suspended (that is how cancellation works in trpl).
//
// Returns: `co_await task` yields the T the coroutine returned, or rethrows its exception.
// Errors: trpl::Error when the Task is moved-from or was already awaited.
// Cancellation: destroying the awaiting frame destroys this task's frame too (it is owned).
// Thread safety: a Task belongs to one task of the runtime at a time; do not share it.
template <class T>
class [[nodiscard("a Task does nothing until it is awaited, spawned or joined")]] Task {
 public:
  using promise_type = detail::Promise<T>;
  using value_type = T;

  Task() noexcept = default;
  explicit Task(std::coroutine_handle<promise_type> h) noexcept : handle_(h) {}
  Task(Task&& other) noexcept : handle_(std::exchange(other.handle_, nullptr)) {}
  Task& operator=(Task&& other) noexcept {
    if (this != &other) {
      reset();
      handle_ = std::exchange(other.handle_, nullptr);
    }
    return *this;
  }
  Task(const Task&) = delete;
  Task& operator=(const Task&) = delete;
  ~Task() { reset(); }

  // True when this Task owns a coroutine (it was not moved from).
  bool valid() const noexcept { return static_cast<bool>(handle_); }
  // True when the coroutine ran to completion (its result is ready to be taken).
  bool is_ready() const noexcept { return handle_ && handle_.done(); }

  class Awaiter {
   public:
    explicit Awaiter(std::coroutine_handle<promise_type> h) : handle_(h) {}
    bool await_ready() const {
      if (!handle_) {
        detail::throw_error("Task::operator co_await", "this Task is empty (moved-from)",
                            "Await the Task object that received it");
      }
      if (handle_.promise().state_ != detail::ChildState::not_started) {
        detail::throw_error("Task::operator co_await", "this Task was already awaited",
                            "A Task runs once; make a new one by calling the coroutine again");
      }
      return false;
    }
    bool await_suspend(std::coroutine_handle<> parent) noexcept {
      auto& p = handle_.promise();
      p.continuation_ = parent;
      detail::Trampoline* t = detail::tl_trampoline;
      if (detail::tl_inline_depth >= detail::kMaxInlineDepth && t != nullptr) {
        // Too deep to run on this stack: let the run loop start it from the bottom.
        p.state_ = detail::ChildState::detached;
        p.self_ = handle_;
        p.deferred_ = true;
        if (t->deferred_tail) t->deferred_tail->deferred_next_ = &p; else t->deferred_head = &p;
        t->deferred_tail = &p;
        return true;
      }
      p.state_ = detail::ChildState::running_inline;
      ++detail::tl_inline_depth;
      handle_.resume();
      --detail::tl_inline_depth;
      if (p.state_ == detail::ChildState::completed_inline) return false;
      p.state_ = detail::ChildState::detached;
      return true;
    }
    decltype(auto) await_resume() { return handle_.promise().take(); }

   private:
    std::coroutine_handle<promise_type> handle_;
  };

  Awaiter operator co_await() & { return Awaiter(handle_); }
  Awaiter operator co_await() && { return Awaiter(handle_); }

  // For the runtime and combinators: the coroutine handle, still owned by this Task.
  std::coroutine_handle<promise_type> handle() const noexcept { return handle_; }
  // For the runtime: gives up the frame (the caller now owns it and must destroy it).
  std::coroutine_handle<promise_type> release() noexcept { return std::exchange(handle_, nullptr); }

 private:
  void reset() noexcept {
    if (!handle_) return;
    // Destroyed before the run loop started it (its owner was cancelled): never start it.
    if (handle_.promise().deferred_ && detail::tl_trampoline != nullptr) {
      detail::tl_trampoline->forget(&handle_.promise());
    }
    std::exchange(handle_, nullptr).destroy();
  }
  std::coroutine_handle<promise_type> handle_;
};

namespace detail {
template <class T>
Task<T> Promise<T>::get_return_object() noexcept {
  return Task<T>(std::coroutine_handle<Promise<T>>::from_promise(*this));
}
inline Task<void> Promise<void>::get_return_object() noexcept {
  return Task<void>(std::coroutine_handle<Promise<void>>::from_promise(*this));
}
template <class T>
Task<T&> Promise<T&>::get_return_object() noexcept {
  return Task<T&>(std::coroutine_handle<Promise<T&>>::from_promise(*this));
}
}  // namespace detail

}  // namespace trpl
