/*
 * _egru_tpool.c - the pthread pool behind edgegru.load(..., threads=N) (see _egru_tpool.h).
 *
 * A run publishes a job: the task, its argument, and a 64-bit generation word `gen` = (sequence
 * number << 8) | task count. Thread t (1 .. N-1) owns task t and the caller task 0, so that each
 * core keeps computing the same slice of the weights (which stays in its cache). Every task index
 * has a claim word; whoever moves it to the job's generation (compare-and-swap) runs the task, so
 * each task runs exactly once. The caller runs task 0, then claims every task still unclaimed
 * (its owner is asleep or descheduled: on a VM with shared cores waiting for it could take
 * milliseconds), then waits for each claimed task's word to say it has returned. A task's fields
 * are read only after its claim succeeded: the job cannot end (and the next one cannot overwrite
 * them) before that task is finished.
 *
 * Idle workers spin on `gen` for SPIN_NS (yielding the core every IDLE_YIELD_NS, in case they
 * share it with the caller), then sleep on a condition variable until egru_tpool_wake, which the
 * Python layer calls as a pass or stream step starts (any batch); runs themselves never signal (a
 * futex call per step would cost more than the step): the caller runs a sleeping worker's tasks.
 * A batch-1 pass's steps come a microsecond apart, so during a pass the workers stay awake, and
 * between passes they give the cores back. A worker that finds MISS_LIMIT of its tasks in a row
 * already taken by the caller is starved (its core is busy with other work): it sleeps until the
 * next wake too, and the pass goes on at one thread's speed. The caller's wait for a claimed
 * task spins, yielding after YIELD_NS (a worker descheduled on the caller's core gets it back).
 *
 * Reentrancy: one job at a time per pool (a busy flag); a run that finds the pool busy, or runs
 * in a child process after fork (its threads do not exist there), runs all tasks itself. Either
 * way the results are the same bits (egru_workers_t's contract).
 */
#if !defined(_WIN32)
#define _GNU_SOURCE 1
#endif

#include "_egru_tpool.h"

#include <stdlib.h>

#if defined(_WIN32)

egru_tpool_t *egru_tpool_create(uint32_t threads)
{
    (void)threads;
    return NULL; /* no pthreads: threads=1 only (runtime.py says so) */
}
void egru_tpool_destroy(egru_tpool_t *pool)
{
    (void)pool;
}
const egru_workers_t *egru_tpool_workers(const egru_tpool_t *pool)
{
    (void)pool;
    return NULL;
}
void egru_tpool_wake(egru_tpool_t *pool)
{
    (void)pool;
}

#else

#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <time.h>

#if defined(__x86_64__) || defined(__i386__)
#include <immintrin.h>
#define CPU_RELAX() _mm_pause()
#elif defined(__aarch64__)
#define CPU_RELAX() __asm__ __volatile__("yield")
#else
#define CPU_RELAX() ((void)0)
#endif

#define SPIN_NS       (100ull * 1000ull) /* an idle worker spins this long before it sleeps */
#define YIELD_NS      (20ull * 1000ull)  /* a caller waiting for a running task yields this often */
/* An idle worker yields this often: when it shares a core with the caller (the other cores are
 * taken), it must not hold it for long; between the steps of a pass it waits < 1 us. */
#define IDLE_YIELD_NS (4ull * 1000ull)
#define MISS_LIMIT    16u /* tasks of its own a worker finds taken before it sleeps */
/* A run that finds every worker asleep, and none of them starved, wakes them at most this often.
 * A pass can go quiet for longer than SPIN_NS between two split steps (a batch of 64 gathers its
 * next block's embedding rows for a millisecond or two), and its workers fall asleep; without
 * this the rest of the pass would run on one thread. One wake per millisecond costs well under 1 %
 * of it. */
#define REWAKE_NS     (1000ull * 1000ull)

typedef struct {
    _Alignas(64) atomic_ullong word; /* 2g: generation g runs the task; 2g + 1: it returned */
} claim_t;

struct egru_tpool {
    egru_workers_t workers;
    uint32_t threads; /* in all, the caller included */
    pthread_t *tids;
    uint32_t started; /* threads started (threads - 1 on success) */
    unsigned fork_epoch;
    egru_task_fn task; /* the current job (written before gen, read after a claim) */
    void *arg;
    uint64_t seq;                   /* sequence numbers published (under busy) */
    _Alignas(64) atomic_ullong gen; /* (seq << 8) | count */
    _Alignas(64) atomic_uint busy;  /* 1 while a run owns the pool */
    atomic_uint sleepers;
    atomic_uint starved;       /* a worker slept for want of a core (MISS_LIMIT); wake clears */
    atomic_ullong last_rewake; /* now_ns() of the last wake by a run (REWAKE_NS) */
    atomic_uint wake_seq;      /* bumped by egru_tpool_wake (under mu) */
    atomic_uint stop;
    pthread_mutex_t mu;
    pthread_cond_t cv;
    claim_t claims[EGRU_TPOOL_MAX_THREADS];
};

typedef struct {
    egru_tpool_t *pool;
    uint32_t index;
} worker_arg_t;

#ifdef EGRU_TPOOL_STATS
unsigned long egru_tpool_steals;
#endif
static atomic_uint fork_epoch; /* bumped in a child after fork: pools of the parent go inline */

static void on_fork_child(void)
{
    atomic_fetch_add(&fork_epoch, 1u);
}

static pthread_once_t atfork_once = PTHREAD_ONCE_INIT;
static void install_atfork(void)
{
    (void)pthread_atfork(NULL, NULL, on_fork_child);
}

static uint64_t now_ns(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000ull + (uint64_t)ts.tv_nsec;
}

/* A task's claim word: 2g while generation g's task i runs, 2g + 1 once it has returned (so the
 * caller waits on the words of the tasks, one cache line each, and no shared counter). Moves
 * task i's word to 2g from below; 1 when this thread got the task. */
static int try_claim(egru_tpool_t *p, uint32_t i, uint64_t g)
{
    unsigned long long old = atomic_load_explicit(&p->claims[i].word, memory_order_acquire);
    while (old < 2 * g) {
        if (atomic_compare_exchange_weak_explicit(&p->claims[i].word, &old, 2 * g,
                                                  memory_order_acq_rel, memory_order_acquire)) {
            return 1;
        }
    }
    return 0;
}

static void run_claimed(egru_tpool_t *p, uint32_t i, uint64_t g)
{
    p->task(p->arg, i);
    atomic_store_explicit(&p->claims[i].word, 2 * g + 1, memory_order_release);
}

/* Spins until gen moves past `last` (returns 1, *g the new value), for at most SPIN_NS
 * (returns 0), yielding the core every IDLE_YIELD_NS. */
static int spin_gen(egru_tpool_t *p, uint64_t last, uint64_t *g)
{
    uint64_t t0 = 0, ty = 0;
    uint32_t n = 0;
    for (;;) {
        *g = atomic_load_explicit(&p->gen, memory_order_acquire);
        if (*g != last || atomic_load_explicit(&p->stop, memory_order_relaxed)) {
            return 1;
        }
        CPU_RELAX();
        if ((++n & 63u) == 0) {
            const uint64_t t = now_ns();
            if (!t0) {
                t0 = ty = t;
            } else if (t - t0 > SPIN_NS) {
                return 0;
            } else if (t - ty > IDLE_YIELD_NS) {
                sched_yield();
                ty = t;
            }
        }
    }
}

/* Sleeps until egru_tpool_wake or egru_tpool_destroy. */
static void sleep_until_woken(egru_tpool_t *p)
{
    unsigned seen;
    pthread_mutex_lock(&p->mu);
    seen = atomic_load(&p->wake_seq);
    atomic_fetch_add(&p->sleepers, 1u);
    while (atomic_load(&p->wake_seq) == seen && !atomic_load(&p->stop)) {
        pthread_cond_wait(&p->cv, &p->mu);
    }
    atomic_fetch_sub(&p->sleepers, 1u);
    pthread_mutex_unlock(&p->mu);
}

static void *worker_main(void *varg)
{
    worker_arg_t *wa = (worker_arg_t *)varg;
    egru_tpool_t *p = wa->pool;
    const uint32_t me = wa->index;
    uint64_t last = atomic_load(&p->gen), g = last;
    uint32_t missed = 0;
    free(wa);
    for (;;) {
        if (!spin_gen(p, last, &g) || missed >= MISS_LIMIT) {
            /* Idle, or starved (the caller ran our last tasks: this thread was not running when
             * they came, its core is taken by others): sleep until the next pass wakes us (or,
             * idle only, a run of this pass: REWAKE_NS). */
            if (missed >= MISS_LIMIT) {
                atomic_store_explicit(&p->starved, 1u, memory_order_relaxed);
            }
            sleep_until_woken(p);
            missed = 0;
            last = atomic_load(&p->gen);
            continue;
        }
        if (atomic_load(&p->stop)) {
            break;
        }
        last = g;
        if (me < (uint32_t)(g & 0xFFu)) {
            if (try_claim(p, me, g)) {
                run_claimed(p, me, g);
                missed = 0;
            } else {
                ++missed;
            }
        }
    }
    return NULL;
}

/* Wakes every sleeping worker (under mu, so that none misses it between its check and its wait). */
static void wake_all(egru_tpool_t *p)
{
    pthread_mutex_lock(&p->mu);
    atomic_fetch_add(&p->wake_seq, 1u);
    pthread_cond_broadcast(&p->cv);
    pthread_mutex_unlock(&p->mu);
}

/* A run found every worker asleep: wake them if none is starved and the last such wake is
 * REWAKE_NS ago. They start tens of microseconds later; this run and the next go inline. */
static void maybe_rewake(egru_tpool_t *p)
{
    uint64_t t, last;
    if (atomic_load_explicit(&p->starved, memory_order_relaxed)) {
        return; /* their cores are busy: the next pass's wake retries */
    }
    t = now_ns();
    last = atomic_load_explicit(&p->last_rewake, memory_order_relaxed);
    if (t - last >= REWAKE_NS && atomic_compare_exchange_strong(&p->last_rewake, &last, t)) {
        wake_all(p);
    }
}

/* Publishes generation (seq + 1, count); the caller owns `busy`. Sleeping workers are not
 * woken (a futex call per step would cost more than the step): the caller runs their tasks. */
static uint64_t publish(egru_tpool_t *p, uint32_t count)
{
    const uint64_t g = (++p->seq << 8) | count;
    atomic_store_explicit(&p->gen, g, memory_order_release);
    return g;
}

static void pool_run(void *ctx, egru_task_fn task, void *arg, uint32_t count)
{
    egru_tpool_t *p = (egru_tpool_t *)ctx;
    unsigned expected = 0;
    uint64_t g, t0 = 0;
    uint32_t i, n = 0;
    const int usable =
        count > 1 && count <= p->threads && p->fork_epoch == atomic_load(&fork_epoch);
    const int asleep =
        usable && atomic_load_explicit(&p->sleepers, memory_order_relaxed) == p->threads - 1;
    if (!usable || asleep || !atomic_compare_exchange_strong(&p->busy, &expected, 1u)) {
        if (asleep) {
            maybe_rewake(p);
        }
        for (i = 0; i < count; ++i) { /* busy (another run), all asleep, or forked: inline */
            task(arg, i);
        }
        return;
    }
    p->task = task;
    p->arg = arg;
    g = publish(p, count);
    if (try_claim(p, 0, g)) {
        run_claimed(p, 0, g);
    }
    for (i = 1; i < count; ++i) { /* tasks whose owner has not started: not running, run here */
        if (try_claim(p, i, g)) {
            run_claimed(p, i, g);
#ifdef EGRU_TPOOL_STATS
            ++egru_tpool_steals;
#endif
        }
    }
    for (i = 1; i < count; ++i) { /* the others: claimed, so running; wait for them */
        while (atomic_load_explicit(&p->claims[i].word, memory_order_acquire) != 2 * g + 1) {
            CPU_RELAX();
            if ((++n & 63u) == 0) {
                const uint64_t t = now_ns();
                if (!t0) {
                    t0 = t;
                } else if (t - t0 > YIELD_NS) {
                    sched_yield(); /* the worker running a task may be waiting for this core */
                }
            }
        }
    }
    atomic_store_explicit(&p->busy, 0u, memory_order_release);
}

egru_tpool_t *egru_tpool_create(uint32_t threads)
{
    egru_tpool_t *p;
    uint32_t i;
    if (threads < 2 || threads > EGRU_TPOOL_MAX_THREADS) {
        return NULL;
    }
    (void)pthread_once(&atfork_once, install_atfork);
    p = (egru_tpool_t *)aligned_alloc(64, (sizeof *p + 63) / 64 * 64);
    if (!p) {
        return NULL;
    }
    p->workers.run = pool_run;
    p->workers.ctx = p;
    p->workers.count = threads;
    p->threads = threads;
    p->started = 0;
    p->fork_epoch = atomic_load(&fork_epoch);
    p->task = NULL;
    p->arg = NULL;
    p->seq = 0;
    atomic_init(&p->gen, 0);
    atomic_init(&p->busy, 0);
    atomic_init(&p->sleepers, 0);
    atomic_init(&p->starved, 0);
    atomic_init(&p->last_rewake, 0);
    atomic_init(&p->wake_seq, 0);
    atomic_init(&p->stop, 0);
    for (i = 0; i < EGRU_TPOOL_MAX_THREADS; ++i) {
        atomic_init(&p->claims[i].word, 0);
    }
    p->tids = (pthread_t *)calloc(threads, sizeof *p->tids);
    if (!p->tids || pthread_mutex_init(&p->mu, NULL) != 0) {
        free(p->tids);
        free(p);
        return NULL;
    }
    if (pthread_cond_init(&p->cv, NULL) != 0) {
        pthread_mutex_destroy(&p->mu);
        free(p->tids);
        free(p);
        return NULL;
    }
    for (i = 1; i < threads; ++i) {
        worker_arg_t *wa = (worker_arg_t *)malloc(sizeof *wa);
        if (!wa) {
            break;
        }
        wa->pool = p;
        wa->index = i;
        if (pthread_create(&p->tids[i], NULL, worker_main, wa) != 0) {
            free(wa);
            break;
        }
        ++p->started;
    }
    if (p->started != threads - 1) {
        egru_tpool_destroy(p);
        return NULL;
    }
    return p;
}

void egru_tpool_destroy(egru_tpool_t *p)
{
    uint32_t i;
    if (!p) {
        return;
    }
    atomic_store(&p->stop, 1u);
    wake_all(p);
    if (p->fork_epoch == atomic_load(&fork_epoch)) { /* a forked child has no threads to join */
        for (i = 1; i <= p->started; ++i) {
            pthread_join(p->tids[i], NULL);
        }
    }
    pthread_cond_destroy(&p->cv);
    pthread_mutex_destroy(&p->mu);
    free(p->tids);
    free(p);
}

const egru_workers_t *egru_tpool_workers(const egru_tpool_t *pool)
{
    return pool ? &pool->workers : NULL;
}

void egru_tpool_wake(egru_tpool_t *p)
{
    if (!p || p->fork_epoch != atomic_load(&fork_epoch)) {
        return; /* forked (no threads) */
    }
    if (atomic_load_explicit(&p->starved, memory_order_relaxed)) {    /* a new pass: try again */
        atomic_store_explicit(&p->starved, 0u, memory_order_relaxed); /* (no write per step) */
    }
    if (atomic_load(&p->sleepers)) {
        wake_all(p);
    }
}

#endif
