/*
 * threadpool_internal.h -- the parallel loop kernels use. Never installed.
 */
#ifndef CGRAD_THREADPOOL_INTERNAL_H
#define CGRAD_THREADPOOL_INTERNAL_H

#include "tensor_internal.h"

/** Computes chunks [begin, end) of a job. Must not fail: a kernel checks
 *  and allocates before its parallel loop. */
typedef void (*cg_parallel_fn)(void *ctx, int64_t begin, int64_t end);

/** Runs fn over chunks 0..n-1 on the pool, in calls over contiguous
 *  ranges; a thread may make several calls, and which thread computes
 *  which chunk varies from run to run (threads that finish early take
 *  over others' chunks). Each chunk is computed by exactly one call, so a
 *  kernel whose chunks write disjoint outputs (or per-chunk partials
 *  combined afterwards in chunk order) gives bitwise the same result for
 *  every thread count and every run -- as long as each output's
 *  computation does not depend on how the work is cut: choose n from the
 *  problem size only, or (as backward-weights does, to share its work
 *  evenly) cut it by the thread count only where every output is still
 *  computed whole, in one order. Runs serially (one call over all chunks)
 *  when nested, when another job is running, or with one thread. */
void cg__parallel_for(int64_t n, cg_parallel_fn fn, void *ctx);

/** A chunk function told its thread's home: a chunk index in [0, n) that
 *  is the same for every call a thread makes in the job and differs
 *  between threads. A kernel with per-thread scratch allocates one per
 *  chunk and uses its home's. */
typedef void (*cg_parallel_home_fn)(void *ctx, int64_t begin, int64_t end,
                                    int64_t home);

/** cg__parallel_for for a chunk function that uses its home. */
void cg__parallel_for_home(int64_t n, cg_parallel_home_fn fn, void *ctx);

/** Tests only: while `stall` is set, workers stall before entering a job,
 *  as descheduled threads would; the caller then computes every chunk.
 *  Lowering the thread count (which joins workers) lets them go. */
void cg__threadpool_stall_workers(bool stall);

#endif
