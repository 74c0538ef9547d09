/* task_lifetime.pml — task_state.pml plus the cell's lifetime.
 *
 * The same model (see task_state.pml for what it abstracts) with "nothing touches the cell
 * after it is freed" asserted at every access: the finisher (RuntimeCore::finish, harness.cpp:
 * registry->remove, destroy_core, set_cancelled, the COMPLETE CAS, the join word — drop_output
 * and the store, or the CAS — and its unref of "alive"), the runners (claim, idle, give way),
 * the notifiers (push CAS, enqueue), abort_task, the handle (await_ready, await_suspend's CAS,
 * take, ~Awaiter's CAS, reset's fetch_or, drop and unref) and, with DUMPER=1, dump_tasks (ref
 * under the list's lock, claim_idle, give back, unref); and, at the end, the cell freed iff the
 * task completed and the handle is gone (no leak). References (life bits 1..): "alive", which
 * the finisher drops as its very last action, and the handle's, dropped by JoinHandle::reset()
 * (plus a dump's); the last unref frees the cell (~TaskCell drops an output still there).
 * With -DSWEEP=1: the design of 2d8dfa2 instead (the registry's reference, dropped by
 * TaskList::sweep() on the spawning thread once is_finished() sees kJoinDone).
 *
 * History: against the code before 0dc3e6a (DETACHED in the state word, a join_waiter
 * pointer, sweep() freeing on is_complete(), and no reference held by the finisher) this model
 * found a use-after-free: finish() still called drop_output and read/CASed join_waiter after
 * its COMPLETE CAS while the handle's reset() and the sweep could drop the last reference
 * (see models/README.md).
 */
#define CHECK_LIFETIME 1
#include "task_state.pml"
