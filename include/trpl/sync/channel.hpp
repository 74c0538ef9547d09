// channel<T>(): the book's unbounded multi-producer, single-consumer async channel.
// Sender is copyable (a copy is a clone), send never waits; Receiver::recv is awaited.
#pragma once

#include <atomic>
#include <cstddef>
#include <cstdint>
#include <expected>
#include <memory>
#include <new>
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

// The channel is a lock-free list of blocks of kSlots messages (one allocation per block,
// blocks recycled), after tokio's mpsc list and crossbeam's list flavour.
//
// `tail_` is the only word senders write: bits 0..61 the next message index to claim, bit 62
// RX_WAITING (the receiver sleeps, waiting for message `waited_`), bit 63 CLOSED.
//   send:   one fetch_add on `tail_` claims index i (the one RMW per message); the value is
//           written into slot i % kSlots of block i / kSlots (found from the `tail_block_`
//           hint, the list grown by CAS once per block) and published by a release store of
//           the slot's `ready` flag. If the fetch_add saw RX_WAITING with i == waited_, this
//           sender is the one the receiver waits for: it clears the bit (fetch_and) and wakes
//           it. A send that finds CLOSED returns its value; one that raced the close writes a
//           tombstone in its slot so the receiver can step over it.
//   recv:   reads slot head_: ready -> take it (no RMW, no scheduler). Not ready: if tail_
//           shows head_ claimed, a sender is between its claim and its publish (a few
//           instructions; the receiver spins, yielding after a while); if not, the channel is
//           empty: the receiver stores its node and waited_ = head_ and sets RX_WAITING with a
//           CAS that fails if anything was claimed or the channel closed meanwhile.
//   close:  (last Sender dropped, or Receiver::close) sets CLOSED and clears RX_WAITING in one
//           CAS; if the bit was set, the closer wakes the receiver. The receiver drains every
//           index claimed before, then sees the end.
//   cancel: a receiving frame destroyed mid-wait clears RX_WAITING itself (fetch_and); if a
//           sender or closer cleared it first, that one is waking the node: cancel_queued.
// Blocks: a sender that walks past a full block moves `tail_block_` on (CAS) and records the
// tail it then saw (seq_cst): a sender that may still hold the old block claimed an index
// below that, so once the receiver has consumed past it nobody can be touching the block and
// the receiver recycles it at the end of the list (or frees it).
template <class T>
struct ChannelState {
  static constexpr std::uint64_t kSlots = 32;
  static constexpr std::uint64_t kClosed = 1ull << 63, kRxWaiting = 1ull << 62;
  static constexpr std::uint64_t kIndex = kRxWaiting - 1;
  static constexpr std::uint64_t kMaxSpare = 4;  // recycled blocks kept ahead of the senders
  enum SlotState : std::uint8_t { kEmpty, kFull, kTombstone };

  struct Block {
    std::uint64_t start = 0;
    std::atomic<Block*> next{nullptr};
    std::atomic<bool> released{false};
    std::uint64_t observed_tail = 0;  // written before `released` is set
    std::atomic<std::uint8_t> ready[kSlots] = {};
    alignas(T) unsigned char storage[kSlots][sizeof(T)];
    T* value(std::uint64_t i) noexcept { return std::launder(reinterpret_cast<T*>(storage[i % kSlots])); }
    static void* operator new(std::size_t size) { return frame_alloc(size); }
    static void operator delete(void* p, std::size_t size) noexcept { frame_free(p, size); }
  };

  ChannelState() {
    auto* b = new Block();
    tail_block_.store(b, std::memory_order_relaxed);
    head_block_ = free_head_ = b;
  }
  ~ChannelState() {
    // Quiescent (no Sender, no Receiver): destroy what was published and never received.
    const std::uint64_t end = tail_.load(std::memory_order_acquire) & kIndex;
    Block* b = head_block_;
    for (std::uint64_t i = head_; i < end; ++i) {
      if (i >= b->start + kSlots) b = b->next.load(std::memory_order_acquire);
      if (b == nullptr) break;
      if (b->ready[i % kSlots].load(std::memory_order_acquire) == kFull) std::destroy_at(b->value(i));
    }
    for (Block* f = free_head_; f != nullptr;) {
      Block* next = f->next.load(std::memory_order_acquire);
      delete f;
      f = next;
    }
  }
  ChannelState(const ChannelState&) = delete;
  ChannelState& operator=(const ChannelState&) = delete;

  void unref() noexcept {
    if (refs_.fetch_sub(1, std::memory_order_acq_rel) == 1) delete this;
  }

  // ---- senders

  // Queues `value`, or hands it back (the channel is closed).
  // (The rare paths are out of line, so the common one saves no registers.)
  std::expected<void, SendError<T>> send(T&& value) {
    if (tail_.load(std::memory_order_relaxed) & kClosed) [[unlikely]] return refuse(std::move(value));
    const std::uint64_t t = tail_.fetch_add(1, std::memory_order_seq_cst);
    const std::uint64_t i = t & kIndex;
    Block* b = find_block(i);
    if (t & kClosed) [[unlikely]] return tombstone(b, i, std::move(value));
    std::construct_at(b->value(i), std::move(value));
    b->ready[i % kSlots].store(kFull, std::memory_order_release);
    if (t & kRxWaiting) [[unlikely]] maybe_wake(i);
    return {};
  }
  [[gnu::noinline]] static std::expected<void, SendError<T>> refuse(T&& value) {
    return std::unexpected(SendError<T>{std::move(value)});
  }
  // The send raced the close: its slot must still be filled (with "nothing") for the receiver.
  [[gnu::noinline]] std::expected<void, SendError<T>> tombstone(Block* b, std::uint64_t i, T&& value) {
    b->ready[i % kSlots].store(kTombstone, std::memory_order_release);
    return refuse(std::move(value));
  }
  [[gnu::noinline]] void maybe_wake(std::uint64_t i) noexcept {
    if (i != waited_.load(std::memory_order_relaxed)) return;
    // We are the message the receiver sleeps for: whoever clears the bit wakes it.
    if (tail_.fetch_and(~kRxWaiting, std::memory_order_acq_rel) & kRxWaiting) {
      wake_after_unlock(fire(*waiter_));
    }
  }
  void add_sender() noexcept { senders_.fetch_add(1, std::memory_order_relaxed); }
  void drop_sender() noexcept {
    if (senders_.fetch_sub(1, std::memory_order_acq_rel) == 1) close();
  }
  // Sets CLOSED (once); wakes a receiver that sleeps.
  void close() noexcept {
    std::uint64_t t = tail_.load(std::memory_order_relaxed);
    while (!(t & kClosed)) {
      if (tail_.compare_exchange_weak(t, (t | kClosed) & ~kRxWaiting, std::memory_order_acq_rel,
                                      std::memory_order_relaxed)) {
        if (t & kRxWaiting) wake_after_unlock(fire(*waiter_));
        return;
      }
    }
  }
  bool is_closed() const noexcept { return (tail_.load(std::memory_order_acquire) & kClosed) != 0; }
  std::size_t sender_count() const noexcept { return senders_.load(std::memory_order_acquire); }
  void add_ref() noexcept { refs_.fetch_add(1, std::memory_order_relaxed); }

  // ---- the receiver (one at a time)

  enum class Poll { value, closed, empty, in_flight };

  // Takes the next message into `out` if it is there (with `out` null: destroys it in place).
  Poll poll(std::optional<T>* out) noexcept(std::is_nothrow_move_constructible_v<T>) {
    for (;;) {
      if (head_ == head_block_->start + kSlots) {
        Block* n = head_block_->next.load(std::memory_order_acquire);
        if (n == nullptr) return tail_state();  // the next block is being grown, or none yet
        head_block_ = n;
        reclaim();
      }
      const std::uint8_t r = head_block_->ready[head_ % kSlots].load(std::memory_order_acquire);
      if (r == kFull) {
        T* v = head_block_->value(head_);
        if (out != nullptr) out->emplace(std::move(*v));
        std::destroy_at(v);
        ++head_;
        return Poll::value;
      }
      if (r == kTombstone) {
        ++head_;
        continue;
      }
      return tail_state();
    }
  }
  // The common case, inline: the next message is in the current block and published.
  bool take_ready(std::optional<T>& out) noexcept(std::is_nothrow_move_constructible_v<T>) {
    if (head_ == head_block_->start + kSlots) return false;
    if (head_block_->ready[head_ % kSlots].load(std::memory_order_acquire) != kFull) return false;
    T* v = head_block_->value(head_);
    out.emplace(std::move(*v));
    std::destroy_at(v);
    ++head_;
    return true;
  }
  // poll(), waiting out a send in flight (a sender between its claim and its publish).
  Poll poll_settled(std::optional<T>* out) {
    for (unsigned spins = 0;; spin_pause(spins)) {
      const Poll p = poll(out);
      if (p != Poll::in_flight) return p;
    }
  }
  // Registers `n` as the sleeping receiver, unless a message was claimed or the channel closed
  // since the last poll (then false: poll again).
  bool register_waiter(WakeNode& n) noexcept {
    std::uint64_t t = tail_.load(std::memory_order_acquire);
    if ((t & kIndex) != head_ || (t & (kClosed | kRxWaiting))) return false;
    waiter_ = &n;
    waited_.store(head_, std::memory_order_relaxed);
    return tail_.compare_exchange_strong(t, t | kRxWaiting, std::memory_order_seq_cst,
                                         std::memory_order_relaxed);
  }
  bool has_waiter() const noexcept { return (tail_.load(std::memory_order_acquire) & kRxWaiting) != 0; }
  // The waiting frame is destroyed: take the registration back, or learn that a sender or
  // closer already took it (then it is queueing the node: the caller cancels it there).
  bool unregister_waiter() noexcept {
    return (tail_.fetch_and(~kRxWaiting, std::memory_order_acq_rel) & kRxWaiting) != 0;
  }
  // The receiver is gone: close, and destroy every message sent before the close (waiting
  // out sends between their claim and their publish), so a send that succeeded is destroyed
  // by the time the Receiver's destructor returns.
  void drop_receiver() noexcept {
    close();
    while (poll_settled(nullptr) == Poll::value) {
    }
  }
  std::size_t queued() const noexcept { return (tail_.load(std::memory_order_acquire) & kIndex) - head_; }

 private:
  Poll tail_state() const noexcept {
    const std::uint64_t t = tail_.load(std::memory_order_acquire);
    if ((t & kIndex) != head_) return Poll::in_flight;
    return (t & kClosed) ? Poll::closed : Poll::empty;
  }

  // The block holding index i (creating blocks as needed). A sender claims first and reads
  // the hint after, and the hint only moves past a block whose slots are all published
  // ("final"), so it never passes the block of an index still being sent: the walk from the
  // hint always reaches ours. Moving it is tried by the first sender of each block (and by
  // one that finds it lagging), over the final prefix.
  Block* find_block(std::uint64_t i) {
    const std::uint64_t start = i - i % kSlots;
    Block* b = tail_block_.load(std::memory_order_seq_cst);
    if (b->start == start) [[likely]] return b;
    return walk_to_block(b, i, start);
  }
  [[gnu::noinline]] Block* walk_to_block(Block* b, std::uint64_t i, std::uint64_t start) {
    bool advancing = i % kSlots == 0 || b->start + 2 * kSlots <= start;
    while (b->start != start) {
      Block* n = b->next.load(std::memory_order_acquire);
      if (n == nullptr) n = grow(b);
      if (advancing && is_final(*b)) {
        Block* expected = b;
        if (tail_block_.compare_exchange_strong(expected, n, std::memory_order_seq_cst)) {
          // Senders that may still hold b claimed below this tail (they claimed, then read
          // the hint before this CAS): once the receiver is past it, b is nobody's.
          b->observed_tail = tail_.load(std::memory_order_seq_cst) & kIndex;
          b->released.store(true, std::memory_order_release);
        } else {
          advancing = false;
        }
      } else {
        advancing = false;
      }
      b = n;
    }
    return b;
  }
  static bool is_final(const Block& b) noexcept {
    for (const auto& r : b.ready) {
      if (r.load(std::memory_order_acquire) == kEmpty) return false;
    }
    return true;
  }
  // Appends a block after `b` (or finds the one another sender appended).
  Block* grow(Block* b) {
    auto* fresh = new Block();
    fresh->start = b->start + kSlots;
    Block* expected = nullptr;
    if (b->next.compare_exchange_strong(expected, fresh, std::memory_order_acq_rel,
                                        std::memory_order_acquire)) {
      return fresh;
    }
    // Lost the race: give ours a later place in the list, or free it.
    Block* at = expected;
    for (int tries = 0; tries < 3; ++tries) {
      fresh->start = at->start + kSlots;
      Block* none = nullptr;
      if (at->next.compare_exchange_strong(none, fresh, std::memory_order_acq_rel,
                                           std::memory_order_acquire)) {
        return expected;
      }
      at = none;
    }
    delete fresh;
    return expected;
  }
  // The receiver: recycles consumed blocks no sender can still be touching.
  void reclaim() noexcept {
    while (free_head_ != head_block_ && free_head_->released.load(std::memory_order_acquire) &&
           free_head_->observed_tail <= head_) {
      Block* b = free_head_;
      free_head_ = b->next.load(std::memory_order_acquire);
      recycle(b);
    }
  }
  // Puts a consumed block back at the end of the list for senders to reuse, unless enough
  // spare blocks wait there already (then it is freed).
  void recycle(Block* b) noexcept {
    if (b == recycle_tail_) recycle_tail_ = nullptr;
    b->next.store(nullptr, std::memory_order_relaxed);
    b->released.store(false, std::memory_order_relaxed);
    b->observed_tail = 0;
    for (auto& r : b->ready) r.store(kEmpty, std::memory_order_relaxed);
    const std::uint64_t claimed = tail_.load(std::memory_order_acquire) & kIndex;
    // Walk from the last block we appended (still ahead of head_), else from the hint.
    Block* at = recycle_tail_ != nullptr ? recycle_tail_ : tail_block_.load(std::memory_order_acquire);
    for (int tries = 0; tries < 3;) {
      Block* n = at->next.load(std::memory_order_acquire);
      if (n != nullptr) {
        at = n;
        continue;
      }
      if (at->start >= claimed + kMaxSpare * kSlots) break;  // spares enough
      b->start = at->start + kSlots;
      if (at->next.compare_exchange_strong(n, b, std::memory_order_acq_rel, std::memory_order_acquire)) {
        recycle_tail_ = b;
        return;
      }
      ++tries;
    }
    delete b;
  }

  alignas(64) std::atomic<std::uint64_t> tail_{0};
  std::atomic<Block*> tail_block_{nullptr};
  std::atomic<std::size_t> senders_{1};
  std::atomic<std::size_t> refs_{2};
  // The receiver's (waiter_ and waited_ are published to senders by the RX_WAITING CAS).
  alignas(64) std::uint64_t head_ = 0;
  Block* head_block_ = nullptr;
  Block* free_head_ = nullptr;     // the oldest block not yet recycled (<= head_block_)
  Block* recycle_tail_ = nullptr;  // the last block recycled, while it is ahead of head_
  WakeNode* waiter_ = nullptr;
  std::atomic<std::uint64_t> waited_{0};  // relaxed: a late sender may read an old one
};

}  // namespace detail

template <class T>
class Receiver;

// The sending half. Copying a Sender clones it: the channel stays open while any copy lives.
// Thread safety: send() may be called from any thread, including plain std::threads.
template <class T>
class Sender {
 public:
  Sender(const Sender& o) noexcept : state_(o.state_) {
    if (state_) {
      state_->add_ref();
      state_->add_sender();
    }
  }
  Sender(Sender&& o) noexcept : state_(std::exchange(o.state_, nullptr)) {}
  Sender& operator=(Sender o) noexcept {
    std::swap(state_, o.state_);
    return *this;
  }
  ~Sender() { release(); }

  // Queues `value` for the receiver; never waits (the channel is unbounded).
  // Returns: the value back inside SendError once the receiver is closed or destroyed.
  // Errors: trpl::Error on a moved-from Sender.
  // Cost: one atomic read-modify-write (plus a wake when the receiver sleeps).
  std::expected<void, SendError<T>> send(T value) const {
    if (!state_) [[unlikely]] moved_from();
    return state_->send(std::move(value));
  }
  // A new Sender for the same channel (the same as copying).
  Sender clone() const { return *this; }
  // True when the receiver is closed or gone: every send will fail.
  bool is_closed() const { return !state_ || state_->is_closed(); }

 private:
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> channel();
  explicit Sender(detail::ChannelState<T>* s) noexcept : state_(s) {}
  [[noreturn, gnu::noinline, gnu::cold]] static void moved_from() {
    detail::throw_error("Sender::send", "this Sender is empty (moved-from)",
                        "Send on the Sender you moved it into, or clone one before moving");
  }
  void release() noexcept {
    if (!state_) return;
    state_->drop_sender();  // the last one closes the channel: recv sees the end
    std::exchange(state_, nullptr)->unref();
  }
  detail::ChannelState<T>* state_;
};

// The receiving half (move-only). `co_await rx.recv()` yields every message sent, in order
// per sender, then std::nullopt once every Sender is gone (or close() was called).
template <class T>
class Receiver {
  using State = detail::ChannelState<T>;

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
    RecvAwaiter(State* s, std::source_location where) : state_(s) { node_.where = where; }
    RecvAwaiter(const RecvAwaiter&) = delete;
    ~RecvAwaiter() {
      if (node_.load_state() == detail::WakeNode::kIdle) return;
      // Destroyed mid-wait: no message was taken, so none is lost.
      if (state_->unregister_waiter()) {
        detail::disarm(node_);
      } else {
        detail::cancel_queued(node_);  // a sender or closer is waking (or woke) it
      }
    }
    // A message already there (or the end) is taken without suspending.
    bool await_ready() {
      if (state_->take_ready(value_)) [[likely]] {
        ready_ = true;
        return true;
      }
      return settle() != State::Poll::empty;
    }
    bool await_suspend(std::coroutine_handle<> h) {
      for (;;) {
        if (state_->has_waiter()) {
          detail::throw_error("Receiver::recv", "two frames are awaiting recv() on one Receiver at once",
                              "Receive from one place; share the messages another way (the Receiver is single-consumer)");
        }
        detail::note_wait(node_, kWaitKind, state_);
        detail::arm(node_, h, "Receiver::recv");
        if (state_->register_waiter(node_)) return true;
        detail::disarm(node_);  // a send or a close came in meanwhile
        if (settle() != State::Poll::empty) return false;
      }
    }
    std::optional<T> await_resume() {
      if (!ready_) {
        // Woken: the message we waited for is published, or the channel closed.
        if (settle() == State::Poll::empty) {
          detail::throw_error("Receiver::recv", "another frame received the message this recv was woken for",
                              "Receive from one place only (the Receiver is single-consumer)");
        }
      }
      return std::move(value_);
    }

   private:
    typename State::Poll settle() {
      const auto p = state_->poll_settled(&value_);
      ready_ = p != State::Poll::empty;
      return p;
    }
    static constexpr detail::WaitKind kWaitKind{
        "channel recv", [](const detail::WakeNode& n, std::string& out) {
          auto* st = static_cast<State*>(const_cast<void*>(n.context));
          const std::size_t senders = st->sender_count();
          out = std::to_string(senders) + (senders == 1 ? " sender" : " senders") + " alive, " +
                std::to_string(st->queued()) + " queued";
          if (senders > 0 && !st->is_closed()) out += "; it ends only when every Sender is dropped";
        }};
    State* state_;
    std::optional<T> value_;
    bool ready_ = false;
    detail::WakeNode node_;
  };

  // Waits for the next message: the message, or std::nullopt once the channel is closed and
  // drained.
  // Returns: std::optional<T>.
  // Errors: trpl::Error on a moved-from Receiver, or when two frames await recv() at once.
  // Cancellation: destroying the waiting frame loses no message (it stays queued for the next
  //   recv); a message that arrives as the frame is destroyed is not taken.
  // Thread safety: one receiving task; senders on any thread.
  RecvAwaiter recv(std::source_location where = std::source_location::current()) {
    check("Receiver::recv");
    return RecvAwaiter(state_, where);
  }

  // The next message if one is queued now, without waiting.
  std::expected<T, TryRecvError> try_recv() {
    check("Receiver::try_recv");
    std::optional<T> v;
    switch (state_->poll_settled(&v)) {
      case State::Poll::value:
        return std::move(*v);
      case State::Poll::closed:
        return std::unexpected(TryRecvError::disconnected);
      default:
        return std::unexpected(TryRecvError::empty);
    }
  }

  // Stops the channel: later sends fail (returning their value); messages already queued are
  // still received, then recv() yields std::nullopt.
  void close() {
    check("Receiver::close");
    state_->close();  // a recv already waiting (another frame of this task) sees the end too
  }

  // How many senders are alive (for diagnostics).
  std::size_t sender_count() const { return state_ ? state_->sender_count() : 0; }

 private:
  template <class U>
  friend std::pair<Sender<U>, Receiver<U>> channel();
  explicit Receiver(State* s) noexcept : state_(s) {}
  void check(const char* call) const {
    if (!state_) [[unlikely]] moved_from(call);
  }
  [[noreturn, gnu::noinline, gnu::cold]] static void moved_from(const char* call) {
    detail::throw_error(call, "this Receiver is empty (moved-from)", "Use the Receiver you moved it into");
  }
  void release() noexcept {
    if (!state_) return;
    state_->drop_receiver();
    std::exchange(state_, nullptr)->unref();
  }
  State* state_;
};

// Creates an unbounded channel: (Sender, Receiver), as the book's trpl::channel().
template <class T>
std::pair<Sender<T>, Receiver<T>> channel() {
  auto* s = new detail::ChannelState<T>();
  return {Sender<T>(s), Receiver<T>(s)};
}

}  // namespace trpl
