/*
 * plane_internal.h -- running a kernel over independent planes (n, c) of
 * an (N, C, ...) tensor on the pool, a block of whole planes per chunk
 * (pooling.c, upsample.c). Never installed.
 *
 * The block size comes from the work of one plane only, never from the
 * thread count, and each plane is computed by one chunk, so a kernel that
 * writes whole planes gives bitwise the same result for every thread
 * count.
 */
#ifndef CGRAD_PLANE_INTERNAL_H
#define CGRAD_PLANE_INTERNAL_H

#include "tensor_internal.h"
#include "threadpool_internal.h"

/** How many planes a chunk takes: about `budget` units of work when one
 *  plane costs `work` units; at least 1. */
static inline int64_t cg__planes_per_block(int64_t budget, int64_t work)
{
    return work > 0 && budget / work > 0 ? budget / work : 1;
}

/** The elements of one plane of spatial sizes n[0..2], or 0 when their
 *  product overflows int64. A tensor's element count bounds the product
 *  when it has planes, so only a tensor with no planes (an empty batch
 *  or no channels) gets 0, and no kernel then reads it. */
static inline int64_t cg__plane_numel(const int64_t *n)
{
    int64_t r;
    return cg__shape_numel(n, 3, &r) ? r : 0;
}

/** a * b, or INT64_MAX when that overflows int64 (a, b >= 0): a work
 *  estimate for cg__planes_per_block, where "too much" is all it says. */
static inline int64_t cg__work_mul(int64_t a, int64_t b)
{
    int64_t r;
    return cg__mul_overflow(a, b, &r) ? r : INT64_MAX;
}

/** Planes [first, last). */
typedef struct cg__plane_span {
    int64_t first, last;
} cg__plane_span;

/** The planes of chunks [begin, end) of `planes` planes, per_block planes
 *  a chunk (the last chunk may hold fewer). */
static inline cg__plane_span cg__plane_range(int64_t begin, int64_t end,
                                             int64_t per_block, int64_t planes)
{
    cg__plane_span r = {begin * per_block, end * per_block};
    if (r.last > planes)
        r.last = planes;
    return r;
}

/** Runs fn(ctx, begin, end) over the chunks of `planes` planes, per_block
 *  planes a chunk; nothing when there are no planes. */
static inline void cg__plane_for(int64_t planes, int64_t per_block,
                                 cg_parallel_fn fn, void *ctx)
{
    if (planes > 0)
        cg__parallel_for((planes + per_block - 1) / per_block, fn, ctx);
}

/** Defines NAME, a cg_parallel_fn for a job of type JOB, that calls
 *  PLANE(j, pl, src, dst) for each plane pl of chunks [begin, end) in
 *  order: the prologue every plane kernel shares. JOB holds `g` (a
 *  geometry with `planes`, `per_block` and the plane sizes), `src` and
 *  `dst`; src and dst point at plane pl's first element, as const T * and
 *  T *, planes g->SRC_N and g->DST_N elements apart. PLANE is a static
 *  function of one dtype, which the compiler inlines into the loop. */
#define CG__PLANE_KERNEL(NAME, JOB, T, SRC_N, DST_N, PLANE)                    \
    static void NAME(void *ctx, int64_t begin, int64_t end)                    \
    {                                                                          \
        const JOB *j = ctx;                                                    \
        cg__plane_span r =                                                     \
            cg__plane_range(begin, end, j->g->per_block, j->g->planes);        \
        for (int64_t pl = r.first; pl < r.last; pl++)                          \
            PLANE(j, pl, (const T *)j->src + pl * j->g->SRC_N,                 \
                  (T *)j->dst + pl * j->g->DST_N);                             \
    }

#endif
