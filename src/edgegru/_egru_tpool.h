/*
 * _egru_tpool.h - the worker threads behind edgegru.load(..., threads=N): an egru_workers_t
 * (edgegru.h, docs/c_api.md "Threads") made of N - 1 pthreads and the calling thread. Part of the
 * Python extension only; the C runtime in ext/ links no threading library.
 */
#ifndef EGRU_TPOOL_H
#define EGRU_TPOOL_H

#include <stdint.h>

#include "edgegru.h"

#define EGRU_TPOOL_MAX_THREADS 64u

typedef struct egru_tpool egru_tpool_t;

/* A pool of `threads` threads in all (the caller of a run counts as one, so threads - 1 are
 * started), 2 <= threads <= EGRU_TPOOL_MAX_THREADS; NULL when threads are out of that range or
 * cannot be started. Thread-safe: run may be called from any number of threads at once (a call
 * that finds the pool busy runs its tasks on its own thread). */
egru_tpool_t *egru_tpool_create(uint32_t threads);

/* Stops and joins the threads and frees the pool; no run may be in progress. NULL: nothing. */
void egru_tpool_destroy(egru_tpool_t *pool);

/* The egru_workers_t to give egru_model_use_workers; valid until egru_tpool_destroy. */
const egru_workers_t *egru_tpool_workers(const egru_tpool_t *pool);

/* A hint that runs are coming (a forward pass starts): sleeping workers wake up and spin, so the
 * first run does not wait for them to be scheduled. Cheap when they are awake already. */
void egru_tpool_wake(egru_tpool_t *pool);

#endif /* EGRU_TPOOL_H */
