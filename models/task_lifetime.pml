/* task_lifetime.pml — task_state.pml plus the cell's lifetime.
 *
 * The same model (see task_state.pml for what it abstracts) with the TaskHeader's references
 * (life word bits 1..): the registry's, dropped by TaskList::sweep() (src/runtime/task/
 * registry.hpp) on the thread that spawned the task once is_finished() sees kJoinDone in the
 * join word, and the handle's, dropped by JoinHandle::reset(); the last unref frees the cell
 * (~TaskCell drops an output still there). Extra properties: nothing touches the cell after
 * it is freed — the finisher (RuntimeCore::finish, harness.cpp: destroy_core, set_cancelled,
 * the COMPLETE CAS, then the join word: drop_output + store, or the CAS, its last touch), the
 * runners, the notifiers (push CAS, enqueue), abort_task, the handle (await_ready,
 * await_suspend's CAS, take, ~Awaiter's CAS, reset's fetch_or / drop / unref) and the sweeper;
 * at the end the cell is freed iff the task completed and the handle is gone (no leak).
 *
 * History: against the code before 0dc3e6a (DETACHED in the state word, a join_waiter
 * pointer, and sweep() freeing on is_complete()) this model found a use-after-free: finish()
 * still called drop_output and read/CASed join_waiter after its COMPLETE CAS while the
 * handle's reset() and the sweep could drop the last reference (see models/README.md).
 */
#define CHECK_LIFETIME 1
#include "task_state.pml"
