/* local_queue.pml — the work-stealing run queue of a multi_thread worker (checked by scripts/model-check).
 * Models src/runtime/scheduler/multi_thread/local_queue.hpp, LocalQueue: push_back, push_front,
 * pop_back, pop_front, take_front_half (owner), steal_into (thieves); and MultiThread::push_local
 * (worker.cpp: on a failed push, move the older half to the inject queue if at least half full,
 * retry, else inject). The word (steal, head, tail) is three globals changed only inside one
 * atomic block per CAS (a failed CAS loads the current word, as compare_exchange does); slot
 * reads and writes are separate steps, so a thief's claim, copy and finishing CAS interleave
 * with everything the owner does.
 * Sizes: CAP 4 slots, indices mod MOD 8 (code: 256 slots, 16-bit indices; slot = index % CAP in
 * both, so `(tail - steal) mod MOD >= CAP` is the same arithmetic); the queue starts at index
 * START 6 holding PREFILL 3 items (positions 6, 7, 0: the indices wrap), then the owner does
 * NOPS 3 nondeterministic operations on fresh items; two thieves, NTRIES 2 attempts each.
 * Abstracted: memory orders (sequentially consistent), spurious CAS failures, the thief's own
 * queue (it just records what it got), tasks (an item is a number).
 * Properties: every item is taken exactly once — popped, stolen, overflowed, or left queued
 * (asserted at each take, checked at the end); a thief never reads a slot the owner wrote
 * since the claim (per-slot version); the owner never writes a slot inside [steal, tail), in
 * particular none a thief is copying (per-slot copy count); at the end steal == head.
 */

#define CAP    4
#define MOD    8
#ifndef START
#define START  6          /* initial steal = head: near the wrap of the modular indices */
#endif
#ifndef PREFILL
#define PREFILL 3         /* items queued before the thieves start (positions 6, 7, 0) */
#endif
#ifndef NOPS
#define NOPS   3          /* owner operations after that */
#endif
#ifndef NTRIES
#define NTRIES 2          /* steal attempts per thief */
#endif
#define NITEMS (PREFILL + NOPS + 1) /* item ids 1.. */

#define IDX(p)    ((p) % CAP)
#define INC(a, n) (((a) + (n)) % MOD)
#define SUB(a, b) (((a) + MOD - (b)) % MOD)

/* The packed word. */
byte steal = START, head = START, tail = START;
byte buf[CAP];            /* item ids (0: never written) */
byte ver[CAP];            /* bumped by every owner write of the slot */
byte copying[CAP];        /* thieves between claim and finish that claimed the slot */

byte next_item = 1;
bool pushed[NITEMS];      /* handed to push_local */
byte taken[NITEMS];       /* times taken: popped, stolen or overflowed */

inline take(it) {
  d_step {
    assert(it != 0 && it < next_item);
    assert(pushed[it]);
    assert(taken[it] == 0);          /* nothing taken twice */
    taken[it] = 1
  }
}

/* Owner write of slot `idx` (position not yet published). Never a slot inside [steal, tail). */
inline owner_write(idx, it) {
  d_step {
    assert(copying[idx] == 0);
    assert(((idx + CAP - IDX(steal)) % CAP) >= SUB(tail, steal));
    buf[idx] = it;
    ver[idx] = (ver[idx] + 1) % 4
  }
}

inline load_word() {
  atomic { ls = steal; lh = head; lt = tail }
}

/* ---- owner ---- */

inline push_back(it, ok) {
  load_word();
  do
  :: SUB(lt, ls) >= CAP -> ok = 0; break
  :: else ->
     owner_write(IDX(lt), it);
     d_step {
       if
       :: steal == ls && head == lh && tail == lt -> tail = INC(lt, 1); ok = 1
       :: else -> ls = steal; lh = head; lt = tail; ok = 0
       fi
     }
     if
     :: ok -> break
     :: else -> skip
     fi
  od
}

inline push_front(it, ok) {
  load_word();
  do
  :: ls != lh -> ok = 0; break
  :: ls == lh && SUB(lt, lh) >= CAP -> ok = 0; break
  :: ls == lh && SUB(lt, lh) < CAP ->
     fr = SUB(lh, 1);
     owner_write(IDX(fr), it);
     d_step {
       if
       :: steal == ls && head == lh && tail == lt -> steal = fr; head = fr; ok = 1
       :: else -> ls = steal; lh = head; lt = tail; ok = 0
       fi
     }
     if
     :: ok -> break
     :: else -> skip
     fi
  od
}

inline pop_back(got) {
  load_word();
  do
  :: lh == lt -> got = 0; break
  :: else ->
     d_step {
       if
       :: steal == ls && head == lh && tail == lt -> tail = SUB(lt, 1); ok = 1
       :: else -> ls = steal; lh = head; lt = tail; ok = 0
       fi
     }
     if
     :: ok -> got = buf[IDX(SUB(lt, 1))]; break
     :: else -> skip
     fi
  od
}

inline pop_front(got) {
  load_word();
  do
  :: lh == lt -> got = 0; break
  :: else ->
     d_step {
       if
       :: steal == ls && head == lh && tail == lt ->
          if
          :: ls == lh -> steal = INC(lh, 1)
          :: else -> skip
          fi;
          head = INC(lh, 1); ok = 1
       :: else -> ls = steal; lh = head; lt = tail; ok = 0
       fi
     }
     if
     :: ok -> got = buf[IDX(lh)]; break
     :: else -> skip
     fi
  od
}

/* Moves the older half (at most CAP/2) to the inject queue. */
inline take_front_half() {
  want = SUB(tail, head) / 2;      /* len() / 2: one load */
  if
  :: want > CAP / 2 -> want = CAP / 2
  :: else -> skip
  fi;
  moved = 0;
  do
  :: moved < want ->
     pop_front(got);
     if
     :: got == 0 -> break
     :: else -> take(got); moved++
     fi
  :: else -> break
  od
}

inline try_push(back, it, ok) {
  if
  :: back -> push_back(it, ok)
  :: else -> push_front(it, ok)
  fi
}

/* MultiThread::push_local */
inline push_local(back) {
  d_step { it = next_item; next_item++; pushed[it] = 1 };
  try_push(back, it, ok);
  if
  :: !ok ->
     if
     :: SUB(tail, head) >= CAP / 2 ->
        take_front_half();
        try_push(back, it, ok)
     :: else -> skip
     fi;
     if
     :: !ok -> take(it)      /* straight to the inject queue */
     :: else -> skip
     fi
  :: else -> skip
  fi
}

proctype Owner() {
  byte ls, lh, lt, fr, it, got, want, moved, nops = 0;
  bool ok;
  do
  :: nops < NOPS ->
     nops++;
     if
     :: push_local(1)
     :: push_local(0)
     :: pop_back(got);  if :: got != 0 -> take(got) :: else -> skip fi
     :: pop_front(got); if :: got != 0 -> take(got) :: else -> skip fi
     fi;
     /* forget the dead locals (fewer distinct states) */
     atomic { ls = 0; lh = 0; lt = 0; fr = 0; it = 0; got = 0; want = 0; moved = 0; ok = 0 }
  :: else -> break
  od
}

/* ---- thieves ---- */

proctype Thief() {
  byte ls, lh, lt, n, first, avail, k, it, tries = 0;
  byte snap[CAP];
  bool ok;
  do
  :: tries < NTRIES ->
     tries++;
     /* claim: when steal == head, CAS head += n (n = half, rounded up), steal = head */
     load_word();
     do
     :: ls != lh -> n = 0; break                     /* another thief is copying */
     :: else ->
        avail = SUB(lt, lh);
        n = avail - avail / 2;
        if
        :: n == 0 -> break
        :: else -> skip
        fi;
        d_step {
          if
          :: steal == ls && head == lh && tail == lt ->
             steal = lh; head = INC(lh, n); ok = 1;
             k = 0;
             do
             :: k < n -> copying[IDX(INC(lh, k))]++; snap[k] = ver[IDX(INC(lh, k))]; k++
             :: else -> break
             od
          :: else -> ls = steal; lh = head; lt = tail; ok = 0
          fi
        }
        if
        :: ok -> first = lh; break
        :: else -> skip
        fi
     od;
     if
     :: n > 0 ->
        /* copy the claimed slots (the first n-1 into our queue, the last one to run now) */
        k = 0;
        do
        :: k < n ->
           d_step {
             it = buf[IDX(INC(first, k))];
             assert(ver[IDX(INC(first, k))] == snap[k])   /* not overwritten since the claim */
           };
           take(it);
           k++
        :: else -> break
        od;
        /* done copying: CAS steal = head */
        load_word();
        do
        :: atomic {
             if
             :: steal == ls && head == lh && tail == lt ->
                steal = lh; ok = 1;
                k = 0;
                do
                :: k < n -> copying[IDX(INC(first, k))]--; k++
                :: else -> break
                od
             :: else -> ls = steal; lh = head; lt = tail; ok = 0
             fi
           };
           if
           :: ok -> break
           :: else -> skip
           fi
        od;
        /* publish into our own queue: loosely, take() recorded the items; forget the locals */
        atomic {
          n = 0; first = 0; avail = 0; k = 0; it = 0; ok = 0; ls = 0; lh = 0; lt = 0;
          snap[0] = 0; snap[1] = 0; snap[2] = 0; snap[3] = 0
        }
     :: else -> atomic { n = 0; avail = 0; ok = 0; ls = 0; lh = 0; lt = 0 }
     fi
  :: else -> break
  od
}

init {
  byte i = 1;
  atomic {
    /* the queue as the owner's push_backs left it */
    do
    :: i <= PREFILL ->
       buf[IDX(tail)] = next_item; pushed[next_item] = 1; next_item++; tail = INC(tail, 1); i++
    :: else -> i = 1; break
    od;
    run Owner();
    run Thief();
    run Thief()
  };
  (_nr_pr == 1);
  /* the end: no thief is copying; what is still queued is taken by the check itself; then
     every item pushed was taken exactly once */
  assert(steal == head);
  assert(copying[0] == 0 && copying[1] == 0 && copying[2] == 0 && copying[3] == 0);
  assert(SUB(tail, head) <= CAP);
  do
  :: head != tail -> take(buf[IDX(head)]); head = INC(head, 1)
  :: else -> break
  od;
  do
  :: i < next_item -> assert(pushed[i] && taken[i] == 1); i++
  :: else -> break
  od
}
