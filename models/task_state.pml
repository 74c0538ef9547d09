/* task_state.pml — a task's state word and the protocols around it (scripts/model-check).
 * Models task_header.hpp (the word `sched`: SCHEDULED RUNNING COMPLETE DETACHED + wake stack;
 * fire, drain_wakes/append_stack/pop_ready, cancel_queued, cancel_locked), harness.cpp
 * (claim_scheduled; run_task: CANCELLED check, resume ready frames, start the root, go idle or
 * take new wakes, give way; finish: destroy frames, COMPLETE, join_waiter handshake),
 * runtime.cpp (abort_task, enqueue_woken), join_handle.hpp (Awaiter: await_ready/await_suspend/
 * ~Awaiter; reset: DETACHED, drop of the output).
 * Processes: 2 runners popping the run queue rq; 2 notifiers, one per frame (taking the node
 * out of its wait list = a claim flag the owner may win instead); an abort (or none); the
 * handle's owner (maybe awaits it from a frame of task J, which may be destroyed mid-wait;
 * then drops it); a checker that runs when nothing else can. Sizes: 2 frames, each waits
 * NWAITS 2 times; the root completes when both returned.
 * Abstracted: stack and ready list are bitsets (order irrelevant: the owner takes the stack
 * whole); budget = nondeterministic give-way when more is ready; J's run loop = "its node was
 * pushed"; shutdown's claim_idle; memory orders (SC); spurious CAS failures.
 * Properties: RUNNING owners <= 1; never queued twice; claim only SCHEDULED & !RUNNING &
 * !COMPLETE; COMPLETE only holding RUNNING, stack empty; no resume of a destroyed frame, one
 * resume per wake, no push onto a destroyed frame's node; no wake lost (at the end COMPLETE,
 * every frame resumed for each wake or destroyed); output consumed exactly once, never read
 * after; the joiner woken iff it suspended, at most once. CHECK_LIFETIME: task_lifetime.pml.
 */

#define NF 2                 /* frames, each waiting on one node with its own notifier */
#ifndef NWAITS
#define NWAITS 2             /* waits per frame: it re-arms its node after the first resume */
#endif
#ifndef CHECK_LIFETIME
#define CHECK_LIFETIME 0
#endif
#ifndef FINISHER_HOLDS_REF
#define FINISHER_HOLDS_REF 0 /* the fix for the use-after-free task_lifetime.pml finds */
#endif

#define SCHED 1
#define RUN   2
#define COMP  4
#define DET   8
#define B(i)  (1 << (i))

#define IDLE   0             /* WakeNode::state */
#define REG    1
#define QUEUED 2

/* TaskHeader */
byte sched = SCHED;          /* the flags of the word; born SCHEDULED */
byte stk = 0;                /* ... and its wake stack: bit i = node i is on it */
bool cancelled = 0;          /* life: CANCELLED */
byte join_waiter = 0;        /* 0: null, 1: the joiner's node */
byte output = 0;             /* 0 none, 1 stored, 2 consumed */
byte consumed = 0;
bool output_taken = 0;
byte refs = 2;               /* the registry's and the handle's */
bool freed = 0;
chan rq = [2] of { bit };    /* the run queues (only this task is ever on them) */

/* TaskCore, owner only (and the frames) */
byte ready = 0;              /* the ready list */
bool started = 0;
bool core_alive = 1;         /* the root frame (holding TaskCore) is not destroyed */
byte nstate[NF];             /* the nodes' state */
byte claim[NF];              /* 0 in its wait list, 1 a notifier took it, 2 the owner took it back */
bool done[NF];               /* the frame was resumed and returned */
bool destroyed[NF];
byte resumed[NF];
byte fires[NF];              /* pushes of the node by its notifier */
byte owners = 0;             /* runners holding RUNNING */

/* the joiner (a frame of task J awaiting the handle) */
byte jstate = IDLE;
bool jpushed = 0;            /* its node is on J's wake stack */
bool jsuspended = 0, jdestroyed = 0;
bool jcancel = 0;            /* J is destroyed while the frame waits */
bool hdone = 0;              /* the handle was dropped */
byte jresumed = 0;
bool abort_done = 0;

inline consume() {
  d_step { assert(output == 1); output = 2; consumed++ }
}

inline unref() {
  d_step {
    assert(refs > 0);
    refs--;
    if
    :: refs == 0 -> freed = 1;
       if
       :: output == 1 -> output = 2; consumed++   /* ~TaskCell drops what is left */
       :: else -> skip
       fi
    :: else -> skip
    fi
  }
}

#if CHECK_LIFETIME
#define CELL_ALIVE assert(!freed)
#else
#define CELL_ALIVE skip
#endif

/* enqueue_woken / enqueue: the task was made SCHEDULED by us and is not RUNNING */
inline enqueue() {
  atomic {
    assert(core_alive);
    assert((sched & SCHED) && !(sched & (RUN | COMP)));
    assert(len(rq) == 0);            /* never on a run queue twice */
    rq!1
  }
}

inline drain_wakes() {
  d_step { ready = ready | stk; stk = 0 }
}

/* ---- notifiers: take the node out of the wait list, then fire() ---- */

proctype Notifier(byte i) {
  bool idle;
  byte round = 0;
  do
  :: round < NWAITS ->
     if
     :: skip
     :: break                                  /* the event never comes: the frame waits on */
     fi;
end_wait:
     atomic { nstate[i] == REG && claim[i] == 0 -> claim[i] = 1 };
     nstate[i] = QUEUED;                       /* fire: n.state = queued */
     d_step {                                  /* the push CAS */
       assert(!destroyed[i]);                  /* the frame is alive while its node is queued */
       assert(!(stk & B(i)));
       stk = stk | B(i);
       fires[i]++;
       idle = ((sched & (SCHED | RUN | COMP)) == 0);
       if
       :: idle -> sched = sched | SCHED
       :: else -> skip
       fi
     };
     if
     :: idle -> enqueue()
     :: else -> skip
     fi;
     d_step { idle = 0; round++ }
  :: else -> break
  od
}

/* ---- abort_task ---- */

proctype Abort() {
  byte s;
  bool gone;
  if
  :: cancelled = 1;                            /* life.fetch_or(CANCELLED) */
     d_step {
       s = sched;
       if
       :: s & COMP -> gone = 1
       :: else -> sched = s | SCHED
       fi
     };
     if
     :: !gone && (s & (SCHED | RUN)) == 0 -> enqueue()
     :: else -> skip
     fi
  :: skip                                      /* no abort */
  fi;
  abort_done = 1
}

/* ---- the runner: RuntimeCore::run_task and finish ---- */

inline cancel_queued(k) {
  do
  :: ready & B(k) -> break
  :: !(ready & B(k)) && stk != 0 -> drain_wakes()
  od;                                          /* (blocks while the push is still in flight) */
  ready = ready & ~B(k);                       /* unlink_ready */
  nstate[k] = IDLE                             /* disarm */
}

inline finish(was_cancelled) {
  /* t->root.destroy(): every frame still alive is destroyed; its awaiter takes its node back */
  k = 0;
  do
  :: k < NF ->
     if
     :: !done[k] && nstate[k] != IDLE ->
        d_step {
          if
          :: claim[k] == 0 -> claim[k] = 2; ok = 1
          :: else -> ok = 0
          fi
        };
        if
        :: ok -> nstate[k] = IDLE              /* unlinked from the wait list; disarm */
        :: else -> cancel_queued(k)            /* a notifier won: it queues (or queued) it */
        fi
     :: else -> skip
     fi;
     if
     :: !done[k] -> destroyed[k] = 1
     :: else -> skip
     fi;
     k++
  :: else -> break
  od;
  core_alive = 0;
  if
  :: was_cancelled -> d_step { assert(output == 0); output = 1 }   /* set_cancelled */
  :: else -> skip
  fi;
#if FINISHER_HOLDS_REF
  d_step { refs++ };
#endif
  d_step {                                     /* the COMPLETE CAS */
    assert(stk == 0);                          /* a destroyed frame left a wake queued */
    assert(ready == 0);
    assert((sched & RUN) && owners == 1);      /* COMPLETE only while holding RUNNING */
    s = sched;
    sched = (s & DET) | COMP;
    owners--
  };
  if
  :: s & DET -> CELL_ALIVE; consume()          /* drop_output: nobody will read it */
  :: else -> skip
  fi;
  /* the join_waiter handshake */
  atomic { CELL_ALIVE; w = join_waiter };
  if
  :: w != 0 ->
     d_step {
       CELL_ALIVE;
       if
       :: join_waiter == w -> join_waiter = 0; ok = 1
       :: else -> ok = 0
       fi
     };
     if
     :: ok ->                                  /* fire(*w) on J */
        jstate = QUEUED;
        d_step { assert(!jdestroyed); jpushed = 1 }
     :: else -> skip
     fi
  :: else -> skip
  fi;
#if FINISHER_HOLDS_REF
  unref();
#endif
  skip
}

/* After a resume: the budget ran out (or yield_now) and more is ready: RUNNING -> SCHEDULED,
   then requeue behind the others. (A break: run_task returns.) */
#define GIVE_WAY \
        if \
        :: ready != 0 || stk != 0 -> \
           d_step { sched = (sched | SCHED) & ~RUN; owners-- }; \
           enqueue(); break \
        :: skip \
        fi

inline run_task() {
  d_step {                                     /* claim_scheduled */
    assert((sched & SCHED) && !(sched & (RUN | COMP)));
    sched = (sched & DET) | RUN;
    ready = ready | stk; stk = 0;
    owners++;
    assert(owners == 1)                        /* never two runners */
  };
  do
  :: if
     :: cancelled -> finish(1); break
     :: else -> skip
     fi;
     /* pop_ready */
     if
     :: ready == 0 -> drain_wakes()
     :: else -> skip
     fi;
     if
     :: ready != 0 ->
        if
        :: ready & B(0) -> n = 0
        :: ready & B(1) -> n = 1
        fi;
        ready = ready & ~B(n);
        nstate[n] = IDLE;                      /* disarm */
        d_step {                               /* n->frame.resume() */
          assert(!destroyed[n] && !done[n]);
          assert(resumed[n] < fires[n]);       /* one resume per wake */
          resumed[n]++;
          if
          :: resumed[n] == NWAITS -> done[n] = 1   /* it returns */
          :: else -> nstate[n] = REG; claim[n] = 0 /* it waits again (arm, into the wait list) */
          fi
        };
        if
        :: (done[0] + done[1] == NF) ->        /* the root is done */
           d_step { assert(output == 0); output = 1 };
           finish(0); break
        :: else -> skip
        fi;
        GIVE_WAY
     :: ready == 0 && !started ->              /* the first run: the root arms its waits */
        started = 1;
        k = 0;
        do
        :: k < NF -> nstate[k] = REG; k++
        :: else -> break
        od;
        GIVE_WAY
     :: ready == 0 && started ->
        /* nothing ready: go idle, unless a wake (or an abort) arrived since the last look */
        d_step { s = sched; ls = stk };
        if
        :: ls != 0 || (s & SCHED) ->
           d_step {
             if
             :: sched == s && stk == ls -> sched = (s & DET) | RUN; ready = ready | stk; stk = 0
             :: else -> skip
             fi
           }
        :: else ->
           d_step {
             if
             :: sched == s && stk == ls -> sched = s & ~RUN; owners--; ok = 1
             :: else -> ok = 0
             fi
           };
           if
           :: ok -> break
           :: else -> skip
           fi
        fi
     fi;
     atomic { s = 0; ls = 0; ok = 0; n = 0; k = 0; w = 0 }
  od
}

proctype Runner() {
  byte s, ls, n, k, w;
  bool ok;
  bit x;
end_idle:
  do
  :: rq?x -> run_task(); atomic { s = 0; ls = 0; ok = 0; n = 0; k = 0; w = 0; x = 0 }
  od
}

/* ---- the handle's owner: maybe awaits it (a frame of task J), then drops it ---- */

inline take() {                                /* await_resume: cell->take() */
  assert(sched & COMP);
  output_taken = 1;
  consume()
}

proctype Handle() {
  byte s;
  bool ok;
  if
  :: /* co_await handle */
     if
     :: sched & COMP -> take()                 /* await_ready */
     :: else ->
        /* await_suspend */
        jstate = REG;                          /* arm */
        d_step { assert(join_waiter == 0); join_waiter = 1 };   /* CAS null -> node */
        if
        :: sched & COMP ->                     /* it finished meanwhile: take the node back */
           d_step {
             if
             :: join_waiter == 1 -> join_waiter = 0; ok = 1
             :: else -> ok = 0
             fi
           };
           if
           :: ok -> jstate = IDLE; take()      /* not suspended */
           :: else -> jsuspended = 1           /* the finisher fires it */
           fi
        :: else -> jsuspended = 1
        fi;
        if
        :: jsuspended ->
           if
           :: jcancel = 0
           :: jcancel = 1
           fi;
           if
           :: !jcancel ->
end_join:     jpushed;                         /* J's run loop pops the node and resumes us */
              d_step { assert(!jdestroyed); jstate = IDLE; jresumed++ };
              take()
           :: jcancel ->
              atomic {                         /* J is destroyed mid-wait: ~Awaiter */
                assert(jstate != IDLE);
                if
                :: join_waiter == 1 -> join_waiter = 0; ok = 1
                :: else -> ok = 0
                fi
              };
              if
              :: ok -> jstate = IDLE
              :: else -> jpushed; jstate = IDLE   /* cancel_queued: the finisher queues it */
              fi;
              jdestroyed = 1
           fi
        :: else -> skip
        fi
     fi
  :: skip                                      /* never awaited */
  fi;
  abort_done;                                  /* (abort() is called through the handle) */
  /* reset() */
  if
  :: !output_taken ->
     if
     :: sched & COMP -> consume()              /* is_complete(): drop */
     :: else ->
        d_step { s = sched; sched = sched | DET };   /* fetch_or(DETACHED) */
        if
        :: s & COMP -> consume()
        :: else -> skip
        fi
     fi
  :: else -> skip
  fi;
  unref();
  hdone = 1
}

#if CHECK_LIFETIME
/* the registry's list owner (another worker): sweep() drops its reference once COMPLETE */
proctype Sweeper() {
end_wait:
  (sched & COMP) -> unref()
}
#endif

/* Runs when nobody else can move: the end state must be a clean one. */
proctype Check() {
  byte k = 0;
  timeout ->
  /* complete, or idle (not SCHEDULED, not RUNNING) with no wake pending */
  assert(stk == 0 && ready == 0 && len(rq) == 0 && owners == 0);
  assert(!(sched & (SCHED | RUN)));
  assert(!cancelled || (sched & COMP));        /* an abort is not lost */
  do
  :: k < NF ->
     assert(resumed[k] == fires[k] || destroyed[k]);   /* no wake lost */
     k++
  :: else -> break
  od;
  if
  :: sched & COMP ->
     assert(!jsuspended || jdestroyed || jresumed == 1);   /* the joiner was woken */
     assert(hdone && consumed == 1 && output == 2);        /* the output consumed exactly once */
     assert(join_waiter == 0)
  :: else ->                                   /* still waiting: on a wait never fired */
     assert(started && consumed == 0 && !jpushed);
     assert((nstate[0] == REG && claim[0] == 0) || (nstate[1] == REG && claim[1] == 0))
  fi;
  assert(jresumed <= 1);
  assert(!jpushed || jsuspended);              /* the joiner was fired only if it suspended */
#if CHECK_LIFETIME
  assert(!hdone || !(sched & COMP) || (freed && refs == 0));
#endif
  skip
}

init {
  atomic {
    run Runner();
    run Runner();
    run Notifier(0);
    run Notifier(1);
    run Abort();
    run Handle();
#if CHECK_LIFETIME
    run Sweeper();
#endif
    run Check();
    rq!1                                       /* spawn: born SCHEDULED, pushed by the spawner */
  }
}
