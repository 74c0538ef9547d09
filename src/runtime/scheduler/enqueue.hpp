// EnqueueKind: why a task is being queued, which decides where it waits (see LocalQueue).
#pragma once

namespace trpl::detail {

enum class EnqueueKind {
  woken,    // a notifier woke it (from the running task of a worker: that worker's LIFO slot)
  spawned,  // new: the back of the spawning worker's queue (it runs next: depth first)
  yielded,  // budget used up or yield_now: behind all the ready work
};

}  // namespace trpl::detail
