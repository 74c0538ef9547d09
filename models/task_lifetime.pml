/* task_lifetime.pml — task_state.pml plus the cell's lifetime.
 *
 * The same model (see task_state.pml for what it abstracts) with the TaskHeader's references
 * (life word bits 1..): the registry's, dropped by TaskList::sweep() (src/runtime/task/
 * registry.hpp) on the thread that spawned the task once it sees COMPLETE, and the handle's,
 * dropped by JoinHandle::reset(); the last unref frees the cell (~TaskCell drops an output
 * still there). Extra property: nothing touches the cell after it is freed — in particular
 * RuntimeCore::finish (harness.cpp), which after its COMPLETE CAS still calls
 * ops->drop_output(t) (when it saw DETACHED) and reads and CASes t->join_waiter, holding no
 * reference of its own.
 * Define FINISHER_HOLDS_REF=1 (spin -DFINISHER_HOLDS_REF=1 -a task_lifetime.pml) to check the
 * fix: the finisher takes a reference before the COMPLETE CAS and drops it at its end.
 */
#define CHECK_LIFETIME 1
#include "task_state.pml"
