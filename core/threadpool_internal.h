/*
 * threadpool_internal.h -- the parallel loop kernels use. Never installed.
 */
#ifndef CGRAD_THREADPOOL_INTERNAL_H
#define CGRAD_THREADPOOL_INTERNAL_H

#include "tensor_internal.h"

/** Computes chunks [begin, end) of a job. Must not fail: a kernel checks
 *  and allocates before its parallel loop. */
typedef void (*cg_parallel_fn)(void *ctx, int64_t begin, int64_t end);

/** Runs fn over chunks 0..n-1 on the pool. Each chunk is computed by
 *  exactly one thread, so a kernel whose chunks write disjoint outputs (or
 *  per-chunk partials combined afterwards in chunk order) gives bitwise
 *  the same result for every thread count. Choose n from the problem size
 *  only, never from the thread count. Runs serially when nested, when
 *  another job is running, or with one thread. */
void cg__parallel_for(int64_t n, cg_parallel_fn fn, void *ctx);

#endif
