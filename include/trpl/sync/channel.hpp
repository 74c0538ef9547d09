// channel<T>(): the book's unbounded multi-producer, single-consumer async channel.
// Sender is copyable (a copy is a clone), send never waits; Receiver::recv is awaited.
#pragma once

#include <cstddef>
#include <deque>
#include <expected>
#include <mutex>
#include <optional>
#include <source_location>
#include <string>
#include <utility>

#include "trpl/detail/task_header.hpp"
#include "trpl/error.hpp"

namespace trpl {

// send() failed because the receiver is closed or gone; the value comes back in `value`.
template <class T>
struct SendError {
  T value;
  const char* what() const noexcept { return "trpl::Sender::send: the receiver is closed; the value is returned"; }
};

enum class TryRecvError {
  empty,         // no message now, but senders are alive
  disconnected,  // every sender is gone (or close() was called) and nothing is buffered
};

namespace detail {

// Shared by every Sender and the Receiver of one channel. The lock guards everything but refs.
template <class T>
struct ChannelState {
  std::mutex lock;
  std::deque<T> queue;
  std::size_t senders = 1;
  bool closed = false;         // Receiver::close() or the Receiver was destroyed
  WakeNode* waiter = nullptr;  // the receiver's pending recv, if any
  std::atomic<std::size_t> refs{2};

  void unref() noexcept {
    if (refs.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }
  // Under lock: hand the pending recv (if any) to the runtime; returns its task to wake.
  TaskHeader* take_waiter_locked() noexcept {
    WakeNode* w = std::exchange(waiter, nullptr);
    return w ? fire_locked(*w) : nullptr;
  }
};

}  // namespace detail

template <class T>
class Receiver;

// The sending half. Copying a Sender clones it: the channel stays open while any copy lives.
// Thread safety: send() may be called from any thread, including plain std::threads.
template <class T>
class Sender {
 public:
  Sender(const Sender& o) noexcept : state_(o.state_) { acquire(); }
  Sender(Sender&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  Sender& operator=(Sender o) noexcept {
    std::swap(state_, o.state_);
    return *this;
  }
  ~Sender() { release(); }

  // Queues `value` for the receiver; never waits (the channel is unbounded).
  // Returns: the value back inside SendError once the receiver is closed or destroyed.
  // Errors: trpl::Error on a moved-from Sender.
  std::expected<void, SendError<T>> send(T value) const {
    if (!state_) {
      detail::throw_error("Sender::send", "this Sender is empty (moved-from)",
                          "Send on the Sender you moved it into, or clone one before moving");
    }
    detail::TaskHeader* wake = nullptr;
    {
      std::lock_guard lk(state_->lock);
      if (state_->closed) return std::unexpected(SendError<T>{std::move(value)});
      state_->queue.push_back(std::move(value));
      wake = state_->take_waiter_locked();
    }
    if (wake) detail::wake_after_unlock(wake);
    return {};
  }
  // A new Sender for the same channel (the same as copying).
  Sender clone() const { return *this; }
  // True when the receiver is closed or gone: every send will fail.
  bool is_closed() const {
    if (!state_) return true;
    std::lock_guard lk(state_->lock);
    return state_->closed;
  }

 private:
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> channel();
  explicit Sender(detail::ChannelState<T>* s) noexcept : state_(s) {}
  void acquire() noexcept {
    if (!state_) return;
    state_->refs.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lk(state_->lock);
    ++state_->senders;
  }
  void release() noexcept {
    if (!state_) return;
    detail::TaskHeader* wake = nullptr;
    {
      std::lock_guard lk(state_->lock);
      if (--state_->senders == 0) wake = state_->take_waiter_locked();  // recv sees the end
    }
    if (wake) detail::wake_after_unlock(wake);
    std::exchange(state_, nullptr)->unref();
  }
  detail::ChannelState<T>* state_;
};

// The receiving half (move-only). `co_await rx.recv()` yields every message sent, in order
// per sender, then std::nullopt once every Sender is gone (or close() was called).
template <class T>
class Receiver {
 public:
  Receiver(Receiver&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  Receiver& operator=(Receiver&& o) noexcept {
    if (this != &o) {
      release();
      state_ = std::exchange(o.state_, nullptr);
    }
    return *this;
  }
  Receiver(const Receiver&) = delete;
  Receiver& operator=(const Receiver&) = delete;
  // Closes the channel and destroys the messages still queued.
  ~Receiver() { release(); }

  class RecvAwaiter {
   public:
    RecvAwaiter(detail::ChannelState<T>* s, std::source_location where) : state_(s), where_(where) {}
    RecvAwaiter(const RecvAwaiter&) = delete;
    ~RecvAwaiter() {
      if (node_.load_state() == detail::WakeNode::kIdle) return;
      // Woken but never resumed: the message stays queued for the next recv.
      std::lock_guard lk(state_->lock);
      detail::cancel_locked(node_, [&] { state_->waiter = nullptr; });
    }
    bool await_ready() const noexcept { return false; }
    bool await_suspend(std::coroutine_handle<> h) {
      std::lock_guard lk(state_->lock);
      if (!state_->queue.empty() || state_->senders == 0 || state_->closed) return false;
      if (state_->waiter != nullptr) {
        detail::throw_error("Receiver::recv", "two frames are awaiting recv() on one Receiver at once",
                            "Receive from one place; share the messages another way (the Receiver is single-consumer)");
      }
      detail::note_wait(node_, kWaitKind, &where_, state_);
      detail::arm(node_, h, "Receiver::recv");
      state_->waiter = &node_;
      return true;
    }
    std::optional<T> await_resume() {
      std::lock_guard lk(state_->lock);
      if (state_->queue.empty()) {
        if (state_->senders == 0 || state_->closed) return std::nullopt;  // closed and drained
        // Woken for a message that someone else took first: a second consumer.
        detail::throw_error("Receiver::recv", "another frame received the message this recv was woken for",
                            "Receive from one place only (the Receiver is single-consumer)");
      }
      std::optional<T> v(std::move(state_->queue.front()));
      state_->queue.pop_front();
      return v;
    }

   private:
    static constexpr detail::WaitKind kWaitKind{
        "channel recv", [](const detail::WakeNode& n, std::string& out) {
          auto* st = static_cast<detail::ChannelState<T>*>(const_cast<void*>(n.context));
          std::lock_guard g(st->lock);
          out = std::to_string(st->senders) + (st->senders == 1 ? " sender" : " senders") +
                " alive, " + std::to_string(st->queue.size()) + " queued";
          if (st->senders > 0 && !st->closed) out += "; it ends only when every Sender is dropped";
        }};
    detail::ChannelState<T>* state_;
    std::source_location where_;
    detail::WakeNode node_;
  };

  // Waits for the next message: the message, or std::nullopt once the channel is closed and
  // drained. Cancellation: destroying the waiting frame loses no message (it stays queued for
  // the next recv). Errors: trpl::Error on a moved-from Receiver, or when two frames await
  // recv() at once.
  RecvAwaiter recv(std::source_location where = std::source_location::current()) {
    check("Receiver::recv");
    return RecvAwaiter(state_, where);
  }

  // The next message if one is queued now, without waiting.
  std::expected<T, TryRecvError> try_recv() {
    check("Receiver::try_recv");
    std::lock_guard lk(state_->lock);
    if (state_->queue.empty()) {
      return std::unexpected(state_->senders == 0 || state_->closed ? TryRecvError::disconnected
                                                                     : TryRecvError::empty);
    }
    T v(std::move(state_->queue.front()));
    state_->queue.pop_front();
    return v;
  }

  // Stops the channel: later sends fail (returning their value); messages already queued are
  // still received, then recv() yields std::nullopt.
  void close() {
    check("Receiver::close");
    detail::TaskHeader* wake = nullptr;
    {
      std::lock_guard lk(state_->lock);
      state_->closed = true;
      wake = state_->take_waiter_locked();  // a recv already waiting sees the end too
    }
    if (wake) detail::wake_after_unlock(wake);
  }

  // How many senders are alive (for diagnostics).
  std::size_t sender_count() const {
    if (!state_) return 0;
    std::lock_guard lk(state_->lock);
    return state_->senders;
  }

 private:
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> channel();
  explicit Receiver(detail::ChannelState<T>* s) noexcept : state_(s) {}
  void check(const char* call) const {
    if (!state_) {
      detail::throw_error(call, "this Receiver is empty (moved-from)",
                          "Use the Receiver you moved it into");
    }
  }
  void release() noexcept {
    if (!state_) return;
    std::deque<T> dropped;  // destroyed outside the lock: a message's destructor may send
    {
      std::lock_guard lk(state_->lock);
      state_->closed = true;
      dropped.swap(state_->queue);
    }
    dropped.clear();
    std::exchange(state_, nullptr)->unref();
  }
  detail::ChannelState<T>* state_;
};

// Creates an unbounded channel: (Sender, Receiver), as the book's trpl::channel().
template <class T>
std::pair<Sender<T>, Receiver<T>> channel() {
  auto* s = new detail::ChannelState<T>();
  return {Sender<T>(s), Receiver<T>(s)};
}

}  // namespace trpl
