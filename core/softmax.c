/*
 * softmax.c -- softmax and log_softmax along one dimension (PyTorch 1.13,
 * CPU), real dtypes only, each with its backward beside its forward.
 *
 * Along dim, for each line x (length D) with m = max(x):
 *   softmax      y = exp(x - m) / sum(exp(x - m))     SoftmaxBackward0
 *                gx = y * (gy - sum(gy * y))
 *   log_softmax  y = (x - m) - log(sum(exp(x - m)))   LogSoftmaxBackward0
 *                gx = gy - exp(y) * sum(gy)
 * Both backwards save the output, as PyTorch does. Subtracting the max
 * keeps exp from overflowing; a line holding +inf, or only -inf, gives
 * nan as in PyTorch. Lines are computed in double and rounded once (float32
 * too); sums run left to right along the line. Lines are independent, so
 * the pool splits them in blocks of whole lines and the thread count
 * cannot change a result.
 *
 * Complex inputs fail with PyTorch's kernel-dispatch message (which names
 * the "lastdim" kernel when dim is the last one), or, for an empty complex
 * input that requires grad, with its autograd message.
 */
#include "autograd_internal.h"
#include "threadpool_internal.h"

#include <math.h>
#include <string.h>

enum { LINE_BLOCK_ELEMS = 1 << 14 }; /* elements per pool chunk, about */

/* A tensor seen as lines along dim: the other dims' sizes and strides,
 * the stride along dim, and the start of its data. */
typedef struct lines {
    char *data;
    int n;
    int64_t shape[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    int64_t step;
} lines;

static void lines_of(const cg_tensor *t, int64_t dim, lines *g)
{
    g->data = cg__elem_ptr(t, t->offset);
    g->n = 0;
    g->step = t->ndim > 0 ? t->strides[dim] : 1;
    for (int d = 0; d < t->ndim; d++) {
        if (d == dim)
            continue;
        g->shape[g->n] = t->shape[d];
        g->strides[g->n++] = t->strides[d];
    }
}

/* Line l's index along the other dims, into idx. */
static void line_index(const lines *g, int64_t l, int64_t *idx)
{
    for (int d = g->n - 1; d >= 0; d--) {
        idx[d] = l % g->shape[d];
        l /= g->shape[d];
    }
}

/* Element offset of the line at index idx. */
static int64_t line_offset(const lines *g, const int64_t *idx)
{
    int64_t pos = 0;
    for (int d = 0; d < g->n; d++)
        pos += idx[d] * g->strides[d];
    return pos;
}

/* Advances idx (row-major over g's shape) to the next line and the
 * offsets pos[0 .. nt) of the nt tensors t[] along with it. The tensors
 * share g's shape, not its strides. */
static void line_next(int64_t *idx, const lines *const *t, int nt, int64_t *pos)
{
    const lines *g = t[0];
    for (int d = g->n - 1; d >= 0; d--) {
        if (++idx[d] < g->shape[d]) {
            for (int k = 0; k < nt; k++)
                pos[k] += t[k]->strides[d];
            return;
        }
        idx[d] = 0;
        for (int k = 0; k < nt; k++)
            pos[k] -= t[k]->strides[d] * (g->shape[d] - 1);
    }
}

typedef struct softmax_job {
    bool log;
    int64_t len; /* D */
    int64_t n_lines;
    int64_t per_block; /* lines per pool chunk */
    lines a, b, out;   /* forward: a = x; backward: a = gy, b = y */
} softmax_job;

/* The kernels, once per real dtype: a line's forward and backward, and
 * the pool chunks (blocks of whole lines) that run them. */
#define DEFINE_SOFTMAX(S, T)                                                   \
    static void forward_##S(const softmax_job *j, const int64_t *pos)          \
    {                                                                          \
        const T *x = (const T *)j->a.data + pos[0];                            \
        T *y = (T *)j->out.data + pos[1];                                      \
        int64_t xs = j->a.step, ys = j->out.step;                              \
        double m = -INFINITY, s = 0.0;                                         \
        for (int64_t k = 0; k < j->len; k++)                                   \
            if ((double)x[k * xs] > m)                                         \
                m = x[k * xs];                                                 \
        for (int64_t k = 0; k < j->len; k++)                                   \
            s += exp((double)x[k * xs] - m);                                   \
        if (j->log) {                                                          \
            double ls = log(s);                                                \
            for (int64_t k = 0; k < j->len; k++)                               \
                y[k * ys] = (T)(((double)x[k * xs] - m) - ls);                 \
        } else {                                                               \
            for (int64_t k = 0; k < j->len; k++)                               \
                y[k * ys] = (T)(exp((double)x[k * xs] - m) / s);               \
        }                                                                      \
    }                                                                          \
    static void backward_##S(const softmax_job *j, const int64_t *pos)         \
    {                                                                          \
        const T *gy = (const T *)j->a.data + pos[0];                           \
        const T *y = (const T *)j->b.data + pos[1];                            \
        T *gx = (T *)j->out.data + pos[2];                                     \
        int64_t gs = j->a.step, ys = j->b.step, xs = j->out.step;              \
        double s = 0.0;                                                        \
        for (int64_t k = 0; k < j->len; k++)                                   \
            s += j->log ? (double)gy[k * gs]                                   \
                        : (double)gy[k * gs] * (double)y[k * ys];              \
        for (int64_t k = 0; k < j->len; k++) {                                 \
            double g = gy[k * gs], v = y[k * ys];                              \
            gx[k * xs] = (T)(j->log ? g - exp(v) * s : v * (g - s));           \
        }                                                                      \
    }                                                                          \
    static void forward_blocks_##S(void *ctx, int64_t begin, int64_t end)      \
    {                                                                          \
        const softmax_job *j = ctx;                                            \
        const lines *t[2] = {&j->a, &j->out};                                  \
        int64_t l = begin * j->per_block, idx[CG_MAX_DIMS], pos[2];            \
        line_index(&j->a, l, idx);                                             \
        pos[0] = line_offset(&j->a, idx);                                      \
        pos[1] = line_offset(&j->out, idx);                                    \
        for (; l < end * j->per_block && l < j->n_lines; l++) {                \
            forward_##S(j, pos);                                               \
            line_next(idx, t, 2, pos);                                         \
        }                                                                      \
    }                                                                          \
    static void backward_blocks_##S(void *ctx, int64_t begin, int64_t end)     \
    {                                                                          \
        const softmax_job *j = ctx;                                            \
        const lines *t[3] = {&j->a, &j->b, &j->out};                           \
        int64_t l = begin * j->per_block, idx[CG_MAX_DIMS], pos[3];            \
        line_index(&j->a, l, idx);                                             \
        for (int k = 0; k < 3; k++)                                            \
            pos[k] = line_offset(t[k], idx);                                   \
        for (; l < end * j->per_block && l < j->n_lines; l++) {                \
            backward_##S(j, pos);                                              \
            line_next(idx, t, 3, pos);                                         \
        }                                                                      \
    }

#define SOFTMAX_TYPES(X) X(f32, float) X(f64, double)
SOFTMAX_TYPES(DEFINE_SOFTMAX)
#undef DEFINE_SOFTMAX

/* Runs a pass over all lines of `out` (dtype dt, shape with len along
 * dim). */
static void run(softmax_job *j, const cg_tensor *out, cg_parallel_fn f32,
                cg_parallel_fn f64)
{
    int64_t numel = cg_tensor_numel(out);
    if (numel == 0)
        return;
    j->n_lines = numel / j->len;
    j->per_block =
        LINE_BLOCK_ELEMS / j->len > 0 ? LINE_BLOCK_ELEMS / j->len : 1;
    cg__parallel_for((j->n_lines + j->per_block - 1) / j->per_block,
                     out->dtype == CG_FLOAT64 ? f64 : f32, j);
}

/* The dim the op ran along and whether it is log_softmax. */
typedef struct softmax_ctx {
    int64_t dim;
    bool log;
} softmax_ctx;

static cg_status softmax_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const softmax_ctx *c = node->ctx;
    cg_tensor *y, *r;
    cg_status st = cg__saved(node, 0, &y);
    if (st != CG_OK)
        return st;
    if ((st = cg__tensor_new(y->shape, y->ndim, y->dtype, &r)) != CG_OK)
        return st;
    softmax_job j = {.log = c->log, .len = y->ndim > 0 ? y->shape[c->dim] : 1};
    lines_of(gy, c->dim, &j.a);
    lines_of(y, c->dim, &j.b);
    lines_of(r, c->dim, &j.out);
    run(&j, r, backward_blocks_f32, backward_blocks_f64);
    gx[0] = r;
    return CG_OK;
}

static const cg_op_def softmax_op = {"SoftmaxBackward0", softmax_backward,
                                     NULL};
static const cg_op_def log_softmax_op = {"LogSoftmaxBackward0",
                                         softmax_backward, NULL};

static cg_status softmax_common(cg_tensor *a, int64_t dim, bool log,
                                cg_tensor **out)
{
    if (!a)
        return cg__error_null("tensor");
    if (!out)
        return cg__error_null("out");
    int64_t d;
    cg_status st = cg__wrap_dim(dim, a->ndim, &d);
    if (st != CG_OK)
        return st;
    if (cg_dtype_is_complex(a->dtype)) {
        if (cg_tensor_numel(a) > 0) {
            bool last = a->ndim == 0 || d == a->ndim - 1;
            return cg__error(CG_ERR_RUNTIME, "\"%s\" not implemented for '%s'",
                             !last ? "softmax_kernel_impl"
                             : log ? "log_softmax_lastdim_kernel_impl"
                                   : "softmax_lastdim_kernel_impl",
                             cg__dtype_scalar_name(a->dtype));
        }
        if (cg__should_record(&a, 1))
            return cg__error(CG_ERR_RUNTIME,
                             "_%s does not support automatic differentiation "
                             "for outputs with complex dtype.",
                             log ? "log_softmax" : "softmax");
    }
    cg_tensor *r;
    if ((st = cg__tensor_new(a->shape, a->ndim, a->dtype, &r)) != CG_OK)
        return st;
    if (!cg_dtype_is_complex(a->dtype)) {
        softmax_job j = {.log = log, .len = a->ndim > 0 ? a->shape[d] : 1};
        lines_of(a, d, &j.a);
        lines_of(r, d, &j.out);
        run(&j, r, forward_blocks_f32, forward_blocks_f64);
    }
    cg_node *node;
    softmax_ctx *ctx;
    if ((st = cg__record(r, log ? &log_softmax_op : &softmax_op, &a, 1,
                         sizeof *ctx, &node, (void **)&ctx)) != CG_OK ||
        (node && (st = cg__save(node, 0, r, true)) != CG_OK)) {
        cg_tensor_release(r);
        return st;
    }
    if (ctx) {
        ctx->dim = d;
        ctx->log = log;
    }
    *out = r;
    return CG_OK;
}

cg_status cg_softmax(cg_tensor *a, int64_t dim, cg_tensor **out)
{
    return softmax_common(a, dim, false, out);
}

cg_status cg_log_softmax(cg_tensor *a, int64_t dim, cg_tensor **out)
{
    return softmax_common(a, dim, true, out);
}
