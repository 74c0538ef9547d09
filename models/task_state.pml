/* task_state.pml — a task's state word, its join word, its references and the protocols
 * around them (scripts/model-check).
 * Models task_header.hpp (the word `sched`: SCHEDULED RUNNING COMPLETE + wake stack; the word
 * `join`: 0 | the awaiting frame's node | kJoinDetached | kJoinDone; the references in `life`;
 * fire, drain_wakes/append_stack/pop_ready, cancel_queued, cancel_locked), harness.cpp
 * (claim_scheduled; run_task: CANCELLED check, resume ready frames, start the root (ops->start
 * may fail: finish at once), go idle or take new wakes, give way; finish: registry->remove,
 * destroy_core (frames destroyed, their awaiters take their nodes back), set_cancelled, the
 * COMPLETE CAS, the join word (kJoinDetached -> drop the output, store kJoinDone|kJoinDetached;
 * else CAS what it read, 0 or the node, to kJoinDone and fire the node it replaced), then
 * unref of "alive", its last touch), runtime.cpp (abort_task, enqueue_woken), registry.hpp
 * (the live list: remove, for_each_live), join_handle.hpp (Awaiter: await_ready /
 * await_suspend (arm, CAS join 0 -> node; failing on kJoinDone: not suspended) /
 * await_resume / ~Awaiter (CAS node -> 0, else cancel_queued); reset: fetch_or(kJoinDetached),
 * drop the output itself if kJoinDone was set, unref); task_cell.hpp (~TaskCell drops an
 * output still there).
 * Processes: 2 runners popping the run queue rq; 2 notifiers, one per frame (taking the node
 * out of its wait list = a claim flag the owner may win instead); an abort (or none); the
 * handle's owner (awaits it from a frame of task J, maybe twice: the first frame may be
 * destroyed mid-wait; or never; then drops it); with DUMPER=1 a dump_tasks (claim_idle, give
 * back); a checker that runs when nothing else can. Sizes: 2 frames, each waits NWAITS 2 times;
 * the root completes when both returned; NAWAITS 2 awaits of the handle.
 * Variants: -DDUMPER=1 (dump_tasks; ~5x the states), -DNAWAITS=1 (one await; half the states),
 * -DSWEEP=1 (the design of 2d8dfa2, which the first version of these models checked: no
 * "alive" reference, the registry holds one that TaskList::sweep() drops once kJoinDone is set).
 * Abstracted: stack and ready list are bitsets (order irrelevant: the owner takes the stack
 * whole); budget = nondeterministic give-way when more is ready; J's run loop = "its node was
 * pushed" (jpushed: on J's wake stack / ready list); the output's value vs error (one slot);
 * the registry's lock (remove and for_each_live's ref are atomic steps); shutdown's
 * cancel_everything; memory orders (SC); spurious CAS failures (a CAS loop is one atomic step
 * per attempt).
 * Properties: RUNNING owners <= 1 (runners and dump); never queued twice; claim only SCHEDULED
 * & !RUNNING & !COMPLETE; COMPLETE only holding RUNNING, stack empty, output stored; no resume
 * of a destroyed frame, one resume per wake, no push onto a destroyed frame's node (the task's
 * frames and J's); no wake lost (at the end COMPLETE, every frame resumed for each wake or
 * destroyed); no abort lost; the output stored once, consumed (taken or dropped) exactly once,
 * never read after; the joiner woken iff it suspended, at most once, and never left on J's
 * ready list when its frame is destroyed; at the end kJoinDone is set iff COMPLETE; the core
 * is alive while listed (remove, for_each_live). CHECK_LIFETIME (task_lifetime.pml): nothing
 * touches the cell after it is freed, and it is freed iff complete and the handle is gone.
 */

#define NF 2                 /* frames, each waiting on one node with its own notifier */
#ifndef NWAITS
#define NWAITS 2             /* waits per frame: it re-arms its node after the first resume */
#endif
#ifndef NAWAITS
#define NAWAITS 2            /* awaits of the handle: one more after a wait whose frame was destroyed */
#endif
#ifndef DUMPER
#define DUMPER 0             /* 1: also a dump_tasks() that claims the idle task and gives it back */
#endif
#ifndef CHECK_LIFETIME
#define CHECK_LIFETIME 0
#endif
#ifndef SWEEP
#define SWEEP 0              /* 1: the previous design (2d8dfa2): no "alive" reference; the registry
                                holds one, dropped by TaskList::sweep() once kJoinDone is set */
#endif

#define SCHED 1              /* sched's flags */
#define RUN   2
#define COMP  4
#define JDET  1              /* join: kJoinDetached, kJoinDone, the joiner's node (8-aligned) */
#define JDONE 2
#define JNODE 8
#define B(i)  (1 << (i))

#define IDLE   0             /* WakeNode::state */
#define REG    1
#define QUEUED 2

/* TaskHeader (the cell) */
byte sched = SCHED;          /* the flags of the word; born SCHEDULED */
byte stk = 0;                /* ... and its wake stack: bit i = node i is on it */
bool cancelled = 0;          /* life: CANCELLED */
byte join = 0;               /* the join word */
byte output = 0;             /* 0 none, 1 stored, 2 consumed (taken or dropped) */
byte consumed = 0;
bool output_taken = 0;
byte refs = 2;               /* life's references: "alive" (SWEEP: the registry's) and the handle's */
bool freed = 0;
bool listed = 1;             /* on its spawner's TaskList of live tasks */
chan rq = [2] of { bit };    /* the run queues (only this task is ever on them) */

/* TaskCore, owner only (and the frames) */
byte ready = 0;              /* the ready list */
bool started = 0;
bool core_alive = 1;         /* destroy_core has not run */
byte nstate[NF];             /* the nodes' state */
byte claim[NF];              /* 0 in its wait list, 1 a notifier took it, 2 the owner took it back */
bool done[NF];               /* the frame was resumed and returned */
bool destroyed[NF];
byte resumed[NF];
byte fires[NF];              /* pushes of the node by its notifier */
byte owners = 0;             /* runners holding RUNNING */

/* the joiner (a frame of task J awaiting the handle) */
byte jstate = IDLE;          /* its node's state */
bool jpushed = 0;            /* its node is on J's wake stack / ready list */
byte jfires = 0;
bool jsuspended = 0, jdestroyed = 0;
bool hdone = 0;              /* the handle was dropped */
byte jresumed = 0;
bool abort_done = 0;

#if CHECK_LIFETIME
#define CELL_ALIVE assert(!freed)
#else
#define CELL_ALIVE skip
#endif

/* take, drop_output, drop: destroy or move out the output (the cell's slot) */
inline consume() {
  d_step { CELL_ALIVE; assert(output == 1); output = 2; consumed++ }
}

inline unref() {             /* life.fetch_sub; the last one frees the cell */
  atomic {
    CELL_ALIVE;
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

/* enqueue_woken / enqueue: the task was made SCHEDULED by us and is not RUNNING */
inline enqueue() {
  atomic {
    CELL_ALIVE;
    assert(core_alive);
    assert((sched & SCHED) && !(sched & (RUN | COMP)));
    assert(len(rq) == 0);            /* never on a run queue twice */
    rq!1
  }
}

inline drain_wakes() {
  d_step { CELL_ALIVE; ready = ready | stk; stk = 0 }
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
       CELL_ALIVE;
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

/* ---- abort_task (through the handle, which holds a reference meanwhile) ---- */

proctype Abort() {
  byte s;
  bool gone;
  if
  :: d_step { CELL_ALIVE; cancelled = 1 };     /* life.fetch_or(CANCELLED) */
     d_step {                                  /* the CAS loop */
       CELL_ALIVE;
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
#if !SWEEP
  d_step {                                     /* t->registry->remove(core), under its lock */
    CELL_ALIVE;
    assert(listed && core_alive);              /* it unlinks the core's links */
    listed = 0
  };
#endif
  /* ops->destroy_core: the root's outcome is in the cell already (the caller stored it) or
     the task is cancelled; destroying the root destroys every frame still alive (its awaiter
     takes its node back); then the core is freed */
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
  atomic { CELL_ALIVE; core_alive = 0 };
  if
  :: was_cancelled -> d_step { CELL_ALIVE; assert(output == 0); output = 1 }   /* set_cancelled */
  :: else -> skip
  fi;
  d_step {                                     /* the COMPLETE CAS */
    CELL_ALIVE;
    assert(stk == 0);                          /* a destroyed frame left a wake queued */
    assert(ready == 0);
    assert((sched & RUN) && owners == 1);      /* COMPLETE only while holding RUNNING */
    assert(output == 1);                       /* the output is published with COMPLETE */
    sched = COMP;
    owners--
  };
  /* the join word, last: once kJoinDone is in, the finisher never touches the cell again */
  d_step { CELL_ALIVE; w = join };
  do
  :: w == JDET ->                              /* no handle left: the output is ours */
     consume();                                /* ops->drop_output */
     d_step { CELL_ALIVE; join = JDONE | JDET };   /* a plain store */
     break
  :: w != JDET ->
     d_step {                                  /* CAS w -> kJoinDone */
       CELL_ALIVE;
       assert(w == 0 || w == JNODE);
       if
       :: join == w -> join = JDONE; ok = 1
       :: else -> w = join; ok = 0
       fi
     };
     if
     :: ok ->
        if
        :: w == JNODE ->                       /* fire(*node): J's node and J, not our cell */
           jstate = QUEUED;
           d_step { assert(!jdestroyed && !jpushed); jpushed = 1; jfires++ }
        :: else -> skip
        fi;
        break
     :: else -> skip
     fi
  od;
#if !SWEEP
  unref()                                      /* "alive": the very last touch */
#else
  skip                                         /* (SWEEP: kJoinDone was the last touch) */
#endif
}

/* After a resume: the budget ran out (or yield_now) and more is ready: RUNNING -> SCHEDULED,
   then requeue behind the others. (A break: run_task returns.) */
#define GIVE_WAY \
        if \
        :: ready != 0 || stk != 0 -> \
           d_step { CELL_ALIVE; sched = (sched | SCHED) & ~RUN; owners-- }; \
           enqueue(); break \
        :: skip \
        fi

inline run_task() {
  d_step {                                     /* claim_scheduled: CAS -> exactly RUNNING */
    CELL_ALIVE;
    assert((sched & SCHED) && !(sched & (RUN | COMP)));
    sched = RUN;
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
        d_step {                               /* (owner-only steps, one atomic step) */
          ready = ready & ~B(n);               /* pop_ready */
          nstate[n] = IDLE;                    /* disarm */
          /* n->frame.resume() */
          assert(!destroyed[n] && !done[n]);
          assert(resumed[n] < fires[n]);       /* one resume per wake */
          resumed[n]++;
          if
          :: resumed[n] == NWAITS -> done[n] = 1   /* it returns */
          :: else -> nstate[n] = REG; claim[n] = 0 /* it waits again (arm, into the wait list) */
          fi
        };
        if
        :: (done[0] + done[1] == NF) ->        /* the root is done: destroy_core stores its outcome */
           d_step { assert(output == 0); output = 1 };
           finish(0); break
        :: else -> skip
        fi;
        GIVE_WAY
     :: ready == 0 && !started ->              /* the first run: ops->start */
        started = 1;
        if
        :: true ->                             /* start returned null: its error is the output */
           d_step { assert(output == 0); output = 1 };
           finish(0); break
        :: true ->                             /* root.resume(): the root arms its waits */
           k = 0;
           do
           :: k < NF -> nstate[k] = REG; k++
           :: else -> break
           od
        fi;
        GIVE_WAY
     :: ready == 0 && started ->
        /* nothing ready: go idle, unless a wake (or an abort) arrived since the last look */
        d_step { CELL_ALIVE; s = sched; ls = stk };
        if
        :: ls != 0 || (s & SCHED) ->
           d_step {
             if
             :: sched == s && stk == ls -> sched = RUN; ready = ready | stk; stk = 0
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
  d_step {
    CELL_ALIVE;
    assert(sched & COMP);
    output_taken = 1;
    assert(output == 1); output = 2; consumed++
  }
}

proctype Handle() {
  byte s, j, nawait = 0;
  bool ok;
  do
  :: nawait < NAWAITS && !output_taken ->
     /* co_await handle, by a fresh Awaiter (a previous one was destroyed mid-wait) */
     d_step {
       nawait++; jsuspended = 0; jdestroyed = 0; jfires = 0; jresumed = 0;
       CELL_ALIVE; s = sched                   /* await_ready: is_complete() */
     };
     if
     :: s & COMP -> take()
     :: else ->
        /* await_suspend (the node's state is unseen by others until the CAS publishes it:
           arm and disarm are folded into the CAS step) */
        d_step {
          jstate = REG;                        /* arm */
          CELL_ALIVE;
          j = join;                            /* CAS join 0 -> &node */
          if
          :: join == 0 -> join = JNODE; jsuspended = 1   /* the finisher will fire the node */
          :: else -> jstate = IDLE             /* disarm */
          fi
        };
        if
        :: j == 0 -> skip
        :: else ->
           assert(j == JDONE);                 /* (anything else: the misuse error) */
           take()                              /* it finished meanwhile: no suspension */
        fi;
        if
        :: jsuspended ->
           if
           :: true ->
end_join:     jpushed;                         /* J's run loop pops the node, disarms, resumes us */
              d_step { assert(!jdestroyed); jpushed = 0; jstate = IDLE; jresumed++ };
              take()
           :: true ->                          /* the frame is destroyed mid-wait: ~Awaiter */
              if
              :: jstate == IDLE -> skip        /* (not reached: a suspended node is armed) */
              :: else ->
                 d_step {                      /* CAS join &node -> 0 */
                   CELL_ALIVE;
                   if
                   :: join == JNODE -> join = 0; ok = 1
                   :: else -> ok = 0
                   fi
                 };
                 if
                 :: ok -> jstate = IDLE        /* disarm */
                 :: else ->                    /* cancel_queued: the finisher queues (or queued) it */
                    jpushed;
                    d_step { jpushed = 0; jstate = IDLE }
                 fi
              fi;
              d_step { assert(!jpushed && jfires <= 1); jdestroyed = 1 }   /* not left on J's ready list */
           fi
        :: else -> skip
        fi
     fi
  :: break                                     /* no (more) awaits */
  od;
  abort_done;                                  /* (abort() is called through the handle) */
  /* reset() */
  if
  :: !output_taken ->
     d_step { CELL_ALIVE; j = join; join = join | JDET };   /* fetch_or(kJoinDetached) */
     if
     :: j & JDONE -> consume()                 /* finished before: the output is ours */
     :: else -> skip                           /* the finisher will drop it */
     fi
  :: else -> skip
  fi;
  unref();
  hdone = 1
}

#if CHECK_LIFETIME && SWEEP
/* SWEEP: the registry's list owner (another thread): sweep() drops its reference once the
   task is finished (is_finished(): kJoinDone in the join word) */
proctype Sweeper() {
end_wait:
  (join & JDONE) -> unref()
}
#endif

#if DUMPER
/* dump_tasks (diagnostics.cpp): for_each_live refs the task while it is on the registry's list
   (under the list's lock, which the finisher's remove takes; SWEEP: if not complete); describe_task
   claims it if idle (claim_idle), reads its core, and gives it back, queueing it if a wake or an
   abort arrived meanwhile (they saw RUNNING and left it to us); then unrefs it. */
proctype Dumper() {
  bool got = 0, claimed = 0, woken = 0;
  d_step {
    if
#if SWEEP
    :: !(sched & COMP) -> CELL_ALIVE; refs++; got = 1
#else
    :: listed -> CELL_ALIVE; assert(core_alive); refs++; got = 1   /* walks the cores */
#endif
    :: else -> skip
    fi
  };
  if
  :: got ->
     d_step {                                  /* claim_idle */
       CELL_ALIVE;
       if
       :: (sched & (SCHED | RUN | COMP)) == 0 ->
          sched = sched | RUN; owners++; claimed = 1;
          assert(owners == 1)
       :: else -> skip
       fi
     };
     if
     :: claimed ->
        d_step { CELL_ALIVE; assert(core_alive && started) };   /* reads started, waits_head */
        d_step {                               /* give it back (CAS) */
          CELL_ALIVE;
          assert(sched & RUN);
          woken = (stk != 0 || (sched & SCHED));
          if
          :: woken -> sched = (sched | SCHED) & ~RUN
          :: else -> sched = sched & ~RUN
          fi;
          owners--
        };
        if
        :: woken -> enqueue()
        :: else -> skip
        fi
     :: else -> skip
     fi;
     unref()
  :: else -> skip
  fi
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
     assert(join & JDONE);                     /* the finisher got through the join word */
     assert(!jsuspended || jdestroyed || jresumed == 1);   /* the joiner was woken */
     assert(hdone && consumed == 1 && output == 2);        /* the output consumed exactly once */
     assert(!jpushed)
  :: else ->                                   /* still waiting: on a wait never fired */
     assert(started && consumed == 0 && jfires == 0 && !(join & JDONE));
     assert((nstate[0] == REG && claim[0] == 0) || (nstate[1] == REG && claim[1] == 0))
  fi;
  assert(jresumed <= 1 && jfires <= 1);
  assert(jfires == 0 || jsuspended);           /* the joiner was fired only if it suspended */
#if CHECK_LIFETIME
  if
  :: hdone && (sched & COMP) -> assert(freed && refs == 0)   /* no leak */
  :: else -> assert(!freed)
  fi;
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
#if CHECK_LIFETIME && SWEEP
    run Sweeper();
#endif
#if DUMPER
    run Dumper();
#endif
    run Check();
    rq!1                                       /* spawn: born SCHEDULED, pushed by the spawner */
  }
}
