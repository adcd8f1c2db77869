/*
 * reduce.c -- sum and mean over all or some dimensions (PyTorch 1.13, CPU),
 * each with its backward beside its forward, and cg__sum_to, the adjoint of
 * broadcasting used by expand's backward and every broadcasting op's.
 *
 *   sum()               SumBackward0   gx = gy expanded to the input shape
 *   sum(dims, keepdim)  SumBackward1   gx = gy, reduced dims unsqueezed
 *                                           (when !keepdim), expanded
 *   mean()              MeanBackward0  gx = (gy / N) expanded
 *   mean(dims, keepdim) MeanBackward1  gx = (gy / N) unsqueezed, expanded
 *
 * N is the number of elements reduced into each output. An empty list of
 * dims reduces every dimension (PyTorch 1.13's rule); a repeated dim is an
 * error. The mean of nothing is nan, as in PyTorch.
 *
 * Summation order. Every output element is a sum of n inputs, taken in
 * row-major order of the reduced dimensions (r = 0 .. n-1). That sequence
 * is cut into chunks of SUM_CHUNK = 256 consecutive r. A chunk is summed
 * in SUM_LANES = 16 lanes: lane j adds v[j], v[j+16], v[j+32], ... left to
 * right, and the lanes are then added pairwise in a balanced tree:
 * ((l0+l1)+(l2+l3))+((l4+l5)+(l6+l7)), the same for l8..l15, then the two
 * halves. Chunk sums are then added left to right. Complex values are summed as
 * their real and imaginary parts, each in that order. (The lanes are what
 * vector registers hold: the order is the one a vectorised loop computes
 * anyway, fixed here so that every instruction set gives the same bits.)
 *   The accumulator is double for every dtype: float32 inputs convert to
 * double exactly, so a float32 sum is rounded once, at the end. PyTorch
 * sums float32 in float with a cascade that is itself accurate to a few
 * ulp, so the two agree well within float32's 1e-5 test tolerance, and
 * our result does not depend on how the work is split. float64 sums
 * grow their error with n/16 within a chunk and with the number of chunks
 * across them, as PyTorch's own float64 cascade roughly does.
 *   Parallel split: the work is a list of tasks (output element, chunk);
 * blocks of consecutive tasks go to the thread pool, each task writes its
 * own partial, and the partials of an output are combined in chunk order
 * on the calling thread. Task and block bounds depend only on the shapes,
 * so 1 and 16 threads give bitwise-identical results. A sum of fewer than
 * SUM_PARALLEL_MIN inputs runs on the calling thread; a larger one in
 * blocks of about SUM_BLOCK_ELEMS inputs, so that each thread reads one
 * contiguous stretch of a contiguous input -- mostly the part it wrote
 * itself when the op before split its output the same way, as
 * element-wise ops do (a loss summed right after being computed).
 *
 * Not here: other reductions (prod, max, ...), dtype= arguments, the
 * integer promotion of sum (cgrad has only floating dtypes).
 */
#include "autograd_internal.h"
#include "simd_internal.h"
#include "threadpool_internal.h"

#include <string.h>

enum {
    SUM_CHUNK = 256,            /* inputs per chunk (see the order above) */
    SUM_LANES = 16,             /* running sums per chunk (idem): as many
                                   as keep the adder busy */
    SUM_BLOCK_ELEMS = 1 << 10,  /* inputs read per pool chunk, about */
    SUM_PARALLEL_MIN = 1 << 14, /* fewer inputs in all: no pool. A pool
                                   job costs about a microsecond, what
                                   one thread takes to sum ~8K floats */
};

/* ---- the kernel ---------------------------------------------------------- */

/* A chunk's lane sums (see below), one per instruction set. */
typedef double (*lanes_f32_fn)(const float *, int64_t);
typedef double (*lanes_f64_fn)(const double *, int64_t);

/* A reduction seen on real components: a complex tensor is its real view
 * with a trailing kept dimension of size 2 (stride 1), so one kernel serves
 * all four dtypes. Strides and offsets are in components. */
typedef struct sum_plan {
    const char *data; /* the input's storage base */
    bool f64;         /* components are double (else float) */
    int nk, nr;       /* kept / reduced dimensions */
    int64_t ks[CG_MAX_DIMS + 1], kst[CG_MAX_DIMS + 1]; /* kept sizes, strides */
    int64_t rs[CG_MAX_DIMS], rst[CG_MAX_DIMS];         /* reduced */
    int64_t base;     /* input offset, components */
    int64_t n_out;    /* output components */
    int64_t n_red;    /* inputs per output */
    int64_t n_chunks; /* chunks per output (>= 1) */
    int64_t tasks_per_block;
    double divisor;         /* 1 for sum, N for mean */
    char *out;              /* contiguous output, n_out components */
    double *partial;        /* n_out * n_chunks partials, when n_chunks > 1 */
    lanes_f32_fn lanes_f32; /* a chunk's lane sums, vectorised or not */
    lanes_f64_fn lanes_f64;
} sum_plan;

/* Loads `n` reduced inputs starting at row-major reduced index `r0` of the
 * output whose first input is at component offset `pos0`. */
#define SUM_TYPES(X) X(f32, float) X(f64, double)

#define DEFINE_GATHER(S, T)                                                    \
    static void gather_##S(const sum_plan *p, int64_t pos0, int64_t r0,        \
                           int64_t n, double *v)                               \
    {                                                                          \
        const T *x = (const T *)p->data;                                       \
        int64_t idx[CG_MAX_DIMS], pos = pos0, rest = r0;                       \
        for (int d = p->nr - 1; d >= 0; d--) {                                 \
            idx[d] = rest % p->rs[d];                                          \
            rest /= p->rs[d];                                                  \
            pos += idx[d] * p->rst[d];                                         \
        }                                                                      \
        for (int64_t k = 0; k < n; k++) {                                      \
            v[k] = (double)x[pos];                                             \
            for (int d = p->nr - 1; d >= 0; d--) {                             \
                if (++idx[d] < p->rs[d]) {                                     \
                    pos += p->rst[d];                                          \
                    break;                                                     \
                }                                                              \
                pos -= p->rst[d] * (p->rs[d] - 1);                             \
                idx[d] = 0;                                                    \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    static void put_##S(char *out, int64_t i, double v)                        \
    {                                                                          \
        ((T *)out)[i] = (T)v;                                                  \
    }
SUM_TYPES(DEFINE_GATHER)
#undef DEFINE_GATHER

/* A chunk's sum in the documented order: SUM_LANES running sums, lane j
 * taking inputs j, j + SUM_LANES, j + 2*SUM_LANES, ... in turn, then the
 * lanes added as a fixed tree. A lane starts at -0.0, the identity of
 * addition (-0.0 + x is x for every x, signed zeros included), so lanes
 * left empty by a short chunk change nothing. The same C code serves
 * every instruction set: it is compiled once portable and, on x86, once
 * each for AVX2 and AVX-512 (target attributes; cg__simd_level picks), and
 * the compiler keeps each lane's additions in order, whatever vector width
 * it gives the lanes: the same bits everywhere. */
static double lanes_combine(double *l)
{
    for (int w = 1; w < SUM_LANES; w *= 2)
        for (int j = 0; j < SUM_LANES; j += 2 * w)
            l[j] = l[j] + l[j + w];
    return l[0];
}

#define DEFINE_LANES(S, T, ISA, ATTR)                                          \
    static ATTR double lanes_sum_##S##ISA(const T *x, int64_t n)               \
    {                                                                          \
        double l[SUM_LANES];                                                   \
        for (int j = 0; j < SUM_LANES; j++)                                    \
            l[j] = -0.0;                                                       \
        int64_t i = 0;                                                         \
        for (; i + SUM_LANES <= n; i += SUM_LANES)                             \
            for (int j = 0; j < SUM_LANES; j++)                                \
                l[j] += (double)x[i + j];                                      \
        for (int j = 0; i < n; i++, j++)                                       \
            l[j] += (double)x[i];                                              \
        return lanes_combine(l);                                               \
    }
#define DEFINE_LANES_PORTABLE(S, T) DEFINE_LANES(S, T, , )
SUM_TYPES(DEFINE_LANES_PORTABLE)
#if defined(__x86_64__) || defined(__i386__)
#define SUM_X86 1
#define DEFINE_LANES_AVX2(S, T)                                                \
    DEFINE_LANES(S, T, _avx2, __attribute__((target("avx2"))))
/* full-width vectors: gcc's default tuning would keep to 256 bits */
#ifdef __clang__
#define SUM_AVX512_ATTR                                                        \
    __attribute__((target("avx512f"), min_vector_width(512)))
#else
#define SUM_AVX512_ATTR                                                        \
    __attribute__((target("avx512f,prefer-vector-width=512")))
#endif
#define DEFINE_LANES_AVX512(S, T) DEFINE_LANES(S, T, _avx512, SUM_AVX512_ATTR)
SUM_TYPES(DEFINE_LANES_AVX2)
SUM_TYPES(DEFINE_LANES_AVX512)
#endif
#undef DEFINE_LANES

/* The lane sums for the instruction set the kernels use now. */
static void lanes_pick(lanes_f32_fn *f32, lanes_f64_fn *f64)
{
    *f32 = lanes_sum_f32;
    *f64 = lanes_sum_f64;
#ifdef SUM_X86
    switch (cg__simd_level()) {
    case CG_SIMD_AVX512:
        *f32 = lanes_sum_f32_avx512;
        *f64 = lanes_sum_f64_avx512;
        break;
    case CG_SIMD_AVX2:
        *f32 = lanes_sum_f32_avx2;
        *f64 = lanes_sum_f64_avx2;
        break;
    default:
        break;
    }
#endif
}

/* One task: the sum of chunk c of output o. */
static double sum_task(const sum_plan *p, int64_t o, int64_t c)
{
    int64_t pos = p->base, rest = o;
    for (int d = p->nk - 1; d >= 0; d--) {
        pos += (rest % p->ks[d]) * p->kst[d];
        rest /= p->ks[d];
    }
    int64_t r0 = c * SUM_CHUNK;
    int64_t n = p->n_red - r0 < SUM_CHUNK ? p->n_red - r0 : SUM_CHUNK;
    if (n <= 0) /* an empty reduction (some reduced size is 0) */
        return 0.0;
    if (p->nr == 1 && p->rst[0] == 1) /* contiguous inputs */
        return p->f64 ? p->lanes_f64((const double *)p->data + pos + r0, n)
                      : p->lanes_f32((const float *)p->data + pos + r0, n);
    double v[SUM_CHUNK];
    if (p->f64)
        gather_f64(p, pos, r0, n, v);
    else
        gather_f32(p, pos, r0, n, v);
    return p->lanes_f64(v, n);
}

static void put(const sum_plan *p, int64_t o, double s)
{
    if (p->f64)
        put_f64(p->out, o, s / p->divisor);
    else
        put_f32(p->out, o, s / p->divisor);
}

static void sum_blocks(void *ctx, int64_t begin, int64_t end)
{
    const sum_plan *p = ctx;
    int64_t n_tasks = p->n_out * p->n_chunks;
    for (int64_t b = begin; b < end; b++) {
        int64_t t0 = b * p->tasks_per_block, t1 = t0 + p->tasks_per_block;
        if (t1 > n_tasks)
            t1 = n_tasks;
        for (int64_t t = t0; t < t1; t++) {
            double s = sum_task(p, t / p->n_chunks, t % p->n_chunks);
            if (p->n_chunks == 1)
                put(p, t, s);
            else
                p->partial[t] = s;
        }
    }
}

/* *out (new, contiguous, shape out_shape) = the sum of t over the
 * dimensions flagged in `reduce`, divided by `divisor`. No autograd. */
static cg_status sum_kernel(const cg_tensor *t, const bool *reduce,
                            double divisor, const int64_t *out_shape,
                            int out_ndim, cg_tensor **out)
{
    cg_tensor *r;
    cg_status st = cg__tensor_new(out_shape, out_ndim, t->dtype, &r);
    if (st != CG_OK)
        return st;
    bool cplx = cg_dtype_is_complex(t->dtype);
    int64_t w = cplx ? 2 : 1; /* components per element */
    sum_plan p = {
        .data = (const char *)t->storage->data,
        .f64 = cg_dtype_to_real(t->dtype) == CG_FLOAT64,
        .base = t->offset * w,
        .divisor = divisor,
        .out = (char *)r->storage->data,
        .n_out = 1,
        .n_red = 1,
    };
    lanes_pick(&p.lanes_f32, &p.lanes_f64);
    /* an empty input sums nothing: each output is 0 / divisor. Its other
     * sizes may multiply past int64 and its strides wrap around
     * ([0, 2**40, 2**40]), so the plan below never sees it. */
    if (cg_tensor_numel(t) == 0) {
        for (int64_t o = 0; o < cg_tensor_numel(r) * w; o++)
            put(&p, o, 0.0);
        *out = r;
        return CG_OK;
    }
    for (int d = 0; d < t->ndim; d++) {
        if (reduce[d]) {
            p.rs[p.nr] = t->shape[d];
            p.rst[p.nr++] = t->strides[d] * w;
            p.n_red *= t->shape[d];
        } else {
            p.ks[p.nk] = t->shape[d];
            p.kst[p.nk++] = t->strides[d] * w;
            p.n_out *= t->shape[d];
        }
    }
    /* reduced dims that are one run of memory walk as one: the same
     * row-major sequence of inputs, with fewer index updates */
    int nr = 0;
    for (int d = 0; d < p.nr; d++) {
        if (nr > 0 && p.rst[nr - 1] == p.rs[d] * p.rst[d]) {
            p.rs[nr - 1] *= p.rs[d];
            p.rst[nr - 1] = p.rst[d];
        } else {
            p.rs[nr] = p.rs[d];
            p.rst[nr++] = p.rst[d];
        }
    }
    p.nr = nr;
    if (cplx) {
        p.ks[p.nk] = 2;
        p.kst[p.nk++] = 1;
        p.n_out *= 2;
    }
    if (p.n_out == 0) {
        *out = r;
        return CG_OK;
    }
    p.n_chunks =
        p.n_red > SUM_CHUNK ? (p.n_red + SUM_CHUNK - 1) / SUM_CHUNK : 1;
    int64_t per_task = p.n_red < SUM_CHUNK ? p.n_red : SUM_CHUNK;
    p.tasks_per_block = SUM_BLOCK_ELEMS / (per_task > 0 ? per_task : 1);
    if (p.tasks_per_block < 1)
        p.tasks_per_block = 1;
    int64_t n_tasks = p.n_out * p.n_chunks;
    if (p.n_chunks > 1) {
        size_t bytes = (size_t)n_tasks * sizeof *p.partial;
        p.partial = cg__buffer_alloc(bytes);
        if (!p.partial) {
            cg_tensor_release(r);
            return cg__error_nomem(bytes);
        }
    }
    int64_t n_blocks = (n_tasks + p.tasks_per_block - 1) / p.tasks_per_block;
    if (p.n_out * p.n_red < SUM_PARALLEL_MIN)
        sum_blocks(&p, 0, n_blocks);
    else
        cg__parallel_for(n_blocks, sum_blocks, &p);
    if (p.n_chunks > 1) {
        for (int64_t o = 0; o < p.n_out; o++) {
            const double *c = p.partial + o * p.n_chunks;
            double s = c[0];
            for (int64_t k = 1; k < p.n_chunks; k++)
                s += c[k];
            put(&p, o, s);
        }
        cg__buffer_free(p.partial);
    }
    *out = r;
    return CG_OK;
}

/* ---- sum_to: the adjoint of broadcasting --------------------------------- */

cg_status cg__sum_to(const cg_tensor *t, const int64_t *shape, int ndim,
                     cg_tensor **out)
{
    /* reduce the leading extra dims and the dims `shape` has as 1; the
     * kept-dim result has exactly `shape`'s row-major layout */
    bool reduce[CG_MAX_DIMS] = {false};
    int lead = t->ndim - ndim;
    for (int i = 0; i < t->ndim; i++) {
        int j = i - lead;
        reduce[i] = j < 0 || (shape[j] == 1 && t->shape[i] != 1);
    }
    return sum_kernel(t, reduce, 1.0, shape, ndim, out);
}

/* ---- sum / mean: forward and backward ------------------------------------ */

/* What the backward needs: the input's shape, which dims were reduced,
 * whether they were kept, and N for the mean. */
typedef struct reduce_ctx {
    int ndim;
    int64_t shape[CG_MAX_DIMS];
    bool reduced[CG_MAX_DIMS];
    bool keepdim;
    double count;
} reduce_ctx;

/* gy seen with the input's shape: stride 0 along every reduced dim (the
 * unsqueeze-then-expand of PyTorch's sum_backward, as one view). */
static cg_status expand_back(const reduce_ctx *c, cg_tensor *gy, cg_tensor **gx)
{
    int64_t strides[CG_MAX_DIMS];
    for (int d = 0, j = 0; d < c->ndim; d++) {
        if (c->reduced[d]) {
            strides[d] = 0;
            j += c->keepdim;
        } else {
            strides[d] = gy->strides[j++];
        }
    }
    return cg__tensor_view_of(gy, c->shape, strides, c->ndim, gy->offset, gx);
}

static cg_status sum_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    return expand_back(node->ctx, gy, &gx[0]);
}

static cg_status mean_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const reduce_ctx *c = node->ctx;
    bool none[CG_MAX_DIMS] = {false};
    cg_tensor *scaled;
    cg_status st = sum_kernel(gy, none, c->count, gy->shape, gy->ndim, &scaled);
    if (st != CG_OK)
        return st;
    st = expand_back(c, scaled, &gx[0]);
    cg_tensor_release(scaled);
    return st;
}

static const cg_op_def sum0_op = {"SumBackward0", sum_backward, NULL};
static const cg_op_def sum1_op = {"SumBackward1", sum_backward, NULL};
static const cg_op_def mean0_op = {"MeanBackward0", mean_backward, NULL};
static const cg_op_def mean1_op = {"MeanBackward1", mean_backward, NULL};

/* The reduced-dims flags for `dims` (all dims when all_dims or ndims is 0),
 * with PyTorch's checks in its order: each dim wrapped (IndexError), then
 * checked against the ones before it. */
static cg_status reduced_dims(const cg_tensor *a, const int64_t *dims,
                              int ndims, bool all_dims, bool *reduced)
{
    if (ndims < 0)
        return cg__error(CG_ERR_VALUE,
                         "the number of dims must not be "
                         "negative, but got %d",
                         ndims);
    if (ndims > 0 && !dims)
        return cg__error_null("dims");
    bool seen[CG_MAX_DIMS] = {false};
    for (int i = 0; i < ndims && !all_dims; i++) {
        int64_t d;
        cg_status st = cg__wrap_dim(dims[i], a->ndim, &d);
        if (st != CG_OK)
            return st;
        if (seen[d])
            return cg__error(CG_ERR_RUNTIME,
                             "dim %lld appears multiple times in the list of "
                             "dims",
                             (long long)d);
        seen[d] = true;
    }
    bool every = all_dims || ndims == 0;
    for (int d = 0; d < a->ndim; d++)
        reduced[d] = every || seen[d];
    return CG_OK;
}

static cg_status reduce_op(cg_tensor *a, const int64_t *dims, int ndims,
                           bool all_dims, bool keepdim, bool mean,
                           const cg_op_def *op, cg_tensor **out)
{
    if (!a)
        return cg__error_null("tensor");
    if (!out)
        return cg__error_null("out");
    reduce_ctx c = {.ndim = a->ndim, .keepdim = keepdim, .count = 1.0};
    memcpy(c.shape, a->shape, sizeof c.shape);
    cg_status st = reduced_dims(a, dims, ndims, all_dims, c.reduced);
    if (st != CG_OK)
        return st;
    int64_t shape[CG_MAX_DIMS];
    int n = 0;
    for (int d = 0; d < a->ndim; d++) {
        if (c.reduced[d])
            c.count *= (double)a->shape[d];
        if (!c.reduced[d] || keepdim)
            shape[n++] = c.reduced[d] ? 1 : a->shape[d];
    }
    cg_tensor *r;
    if ((st = sum_kernel(a, c.reduced, mean ? c.count : 1.0, shape, n, &r)) !=
        CG_OK)
        return st;
    reduce_ctx *ctx;
    if ((st = cg__record(r, op, &a, 1, sizeof *ctx, NULL, (void **)&ctx)) !=
        CG_OK) {
        cg_tensor_release(r);
        return st;
    }
    if (ctx)
        *ctx = c;
    *out = r;
    return CG_OK;
}

cg_status cg_sum(cg_tensor *a, cg_tensor **out)
{
    return reduce_op(a, NULL, 0, true, false, false, &sum0_op, out);
}

cg_status cg_sum_dims(cg_tensor *a, const int64_t *dims, int ndims,
                      bool keepdim, cg_tensor **out)
{
    return reduce_op(a, dims, ndims, false, keepdim, false, &sum1_op, out);
}

cg_status cg_mean(cg_tensor *a, cg_tensor **out)
{
    return reduce_op(a, NULL, 0, true, false, true, &mean0_op, out);
}

cg_status cg_mean_dims(cg_tensor *a, const int64_t *dims, int ndims,
                       bool keepdim, cg_tensor **out)
{
    return reduce_op(a, dims, ndims, false, keepdim, true, &mean1_op, out);
}
