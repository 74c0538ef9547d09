// JoinHandle<T>: the awaitable handle of a spawned task. `co_await handle` yields
// std::expected<T, JoinError>; abort() cancels the task; dropping the handle detaches it.
#pragma once

#include <coroutine>
#include <expected>
#include <string>
#include <utility>

#include "trpl/detail/runtime_context.hpp"
#include "trpl/detail/task_cell.hpp"
#include "trpl/error.hpp"
#include "trpl/join_error.hpp"

namespace trpl {

// Returns: `co_await handle` -> std::expected<T, JoinError>: the task's value, or why there
//   is none (cancelled by abort()/shutdown, or the exception that escaped it).
// Errors: trpl::Error when the handle is empty (moved-from) or its result was already taken.
// Cancellation: if the frame awaiting the handle is destroyed, it stops waiting; the task
//   itself keeps running (use abort() to stop it).
// Thread safety: abort() and is_finished() may be called from any thread; awaiting is for one
//   frame at a time.
template <class T>
class [[nodiscard("dropping a JoinHandle detaches the task; keep it to await or abort it")]]
JoinHandle {
 public:
  JoinHandle() = default;
  explicit JoinHandle(detail::TaskCell<T>* cell) noexcept : cell_(cell) {}  // adopts a reference
  JoinHandle(JoinHandle&& o) noexcept : cell_(std::exchange(o.cell_, nullptr)) {}
  JoinHandle& operator=(JoinHandle&& o) noexcept {
    if (this != &o) {
      reset();
      cell_ = std::exchange(o.cell_, nullptr);
    }
    return *this;
  }
  ~JoinHandle() { reset(); }

  // Cancels the task: its frames are destroyed (destructors run) at its next scheduling
  // point; awaiting the handle then yields JoinError::is_cancelled(). No effect once finished.
  void abort() const noexcept {
    if (cell_) detail::abort_task(cell_);
  }
  // True once the task completed, failed or was cancelled.
  bool is_finished() const noexcept { return cell_ && cell_->is_complete(); }
  // The runtime's number for the task (as in dump_tasks()).
  std::uint64_t id() const noexcept { return cell_ ? cell_->id : 0; }
  bool valid() const noexcept { return cell_ != nullptr; }

  // The await: a lock-free handshake with the task's finisher through the cell's join word
  // (see TaskHeader): the awaiter CASes its node in; the finisher exchanges it out and fires
  // it; whichever of the awaiter's take-back CAS and the finisher's exchange comes first wins.
  class Awaiter {
   public:
    explicit Awaiter(JoinHandle& h) : handle_(h) {}
    Awaiter(const Awaiter&) = delete;
    ~Awaiter() {
      if (node_.load_state() == detail::WakeNode::kIdle) return;
      // The awaiting frame is destroyed mid-wait (abort, a sibling's exception, shutdown).
      auto mine = reinterpret_cast<std::uintptr_t>(&node_);
      if (handle_.cell_->join.compare_exchange_strong(mine, 0, std::memory_order_acq_rel)) {
        detail::disarm(node_);
      } else {
        detail::cancel_queued(node_);  // the finisher took it and queues (or queued) it
      }
    }
    bool await_ready() const {
      if (!handle_.cell_) {
        detail::throw_error("JoinHandle::operator co_await", "this JoinHandle is empty (moved-from or default-constructed)",
                            "Await the handle that spawn_task returned");
      }
      if (handle_.cell_->output_taken) {
        detail::throw_error("JoinHandle::operator co_await", "this task's result was already taken",
                            "Await a JoinHandle once; keep the result if you need it twice");
      }
      return handle_.cell_->is_complete();
    }
    bool await_suspend(std::coroutine_handle<> h) {
      auto* cell = handle_.cell_;
      detail::note_wait(node_, kWaitKind, cell);
      detail::arm(node_, h, "JoinHandle::operator co_await");
      std::uintptr_t none = 0;
      if (cell->join.compare_exchange_strong(none, reinterpret_cast<std::uintptr_t>(&node_),
                                             std::memory_order_acq_rel, std::memory_order_acquire)) {
        return true;  // the finisher will find the node and wake it
      }
      detail::disarm(node_);
      if (none & detail::TaskHeader::kJoinDone) return false;  // it finished meanwhile
      detail::throw_error("JoinHandle::operator co_await", "this handle is already being awaited elsewhere",
                          "Await a JoinHandle from one place only");
    }
    std::expected<T, JoinError> await_resume() { return handle_.cell_->take(); }

   private:
    static constexpr detail::WaitKind kWaitKind{
        "join handle", [](const detail::WakeNode& n, std::string& out) {
          out = "of task " + std::to_string(static_cast<const detail::TaskHeader*>(n.context)->id);
        }};
    JoinHandle& handle_;
    detail::WakeNode node_;
  };

  Awaiter operator co_await() & { return Awaiter(*this); }
  Awaiter operator co_await() && { return Awaiter(*this); }

 private:
  // Drops the handle: the task runs on, detached. Its output, if nobody took it, is destroyed
  // here when the task already finished, else by the finisher (the join word).
  void reset() noexcept {
    if (!cell_) return;
    auto* cell = std::exchange(cell_, nullptr);
    if (!cell->output_taken &&
        (cell->join.fetch_or(detail::TaskHeader::kJoinDetached, std::memory_order_acq_rel) &
         detail::TaskHeader::kJoinDone)) {
      cell->drop();  // finished before: the output is ours to destroy
    }
    cell->unref();
  }
  detail::TaskCell<T>* cell_ = nullptr;
};

}  // namespace trpl
