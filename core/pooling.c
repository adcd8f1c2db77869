/*
 * pooling.c -- F.max_pool3d and F.avg_pool3d (PyTorch 1.13, CPU), real
 * dtypes, each with its backward beside its forward.
 *
 * Input x (N, C, T, H, W) or unbatched (C, T, H, W); output y (N, C, To,
 * Ho, Wo) (or (C, To, Ho, Wo)). Per spatial axis, with kernel k, stride s
 * (default k), padding p, dilation d (max only; avg uses 1):
 *   out = floor((in + 2p - d(k - 1) - 1 + (ceil_mode ? s - 1 : 0)) / s) + 1
 * and in ceil mode the last window must start inside the input or the left
 * padding: out -= 1 when (out - 1)s >= in + p.
 *
 *   max_pool3d  MaxPool3DWithIndicesBackward0  saves x; keeps the argmax
 *               of every output (an index into its plane, PyTorch's
 *               `indices`) in the node. y = max over the window taps
 *               inside the input, NaN winning (a later NaN replaces an
 *               earlier one), the first maximum winning a tie;
 *               gx[argmax] += gy.
 *   avg_pool3d  AvgPool3DBackward0  saves x. The window [o*s - p,
 *               min(o*s - p + k, in + p)) is clamped to the input; y =
 *               sum(window, in the dtype, taps in t, h, w order) /
 *               divisor, divisor = divisor_override, else the unclamped
 *               window volume (count_include_pad) or the clamped one;
 *               gx[window] += gy / divisor.
 *
 * Checks and messages are PyTorch 1.13's, in its order: each argument's
 * length, then its entries fitting a C int ("integer out of range"), the
 * input rank, divisor_override, the output size of each axis (stride not
 * zero, padding in [0, k/2]), then pool3d_shape_check (kernel, stride,
 * dilation positive; non-batch dimensions non-empty; avg: input not
 * smaller than the kernel; output not empty), the output's shape as
 * tensor creation checks it, then the dtype. With the arguments in C ints,
 * only a huge input size (an expanded view) can overflow an output size;
 * that is an error where PyTorch wraps around. Planes (n, c)
 * are independent: the pool computes whole planes, forward and backward,
 * and a plane's gradient accumulates in PyTorch's order (outputs in
 * row-major order), so the thread count cannot change a bit.
 *
 * Left out: return_indices (the indices stay inside the node; cgrad has no
 * integer dtype to hand them out), channels-last layouts.
 */
#include "autograd_internal.h"
#include "plane_internal.h"

#include <limits.h>
#include <math.h>
#include <string.h>

enum { PLANE_BLOCK_WORK = 1 << 15 }; /* window taps per pool chunk, about */

/* ======================================================================
 * Geometry and checks
 * ====================================================================== */

typedef struct pool_geom {
    int64_t planes;        /* N * C */
    int64_t in[3], out[3]; /* T, H, W of x and y */
    int64_t k[3], s[3], p[3], d[3];
    bool ceil_mode;
    /* avg only */
    bool count_include_pad;
    bool has_divisor;
    int64_t divisor;
    int64_t in_plane, out_plane; /* elements of a plane of x, of y */
    int64_t per_block;           /* planes per pool chunk */
} pool_geom;

/* Python's floor division for a positive or negative divisor (div_rtn). */
static int64_t div_floor(int64_t x, int64_t y)
{
    int64_t q = x / y, r = x % y;
    if (r != 0 && ((r < 0) != (y < 0)))
        q--;
    return q;
}

/* pooling_output_shape: the output size of one axis. k, p, s and d fit a
 * C int (plan checks them first), so d(k - 1) cannot overflow int64; in,
 * a tensor's size, can be close to INT64_MAX. */
static cg_status axis_out(const char *name, int64_t in, int64_t k, int64_t p,
                          int64_t s, int64_t d, bool ceil_mode, int64_t *out)
{
    if (s == 0)
        return cg__error(CG_ERR_RUNTIME, "stride should not be zero");
    if (p < 0)
        return cg__error(CG_ERR_RUNTIME,
                         "pad must be non-negative, but got pad: %lld",
                         (long long)p);
    if (p > k / 2)
        return cg__error(CG_ERR_RUNTIME,
                         "pad should be at most half of kernel size, but got "
                         "pad=%lld and kernel_size=%lld",
                         (long long)p, (long long)k);
    /* span = in + 2p - d(k - 1) - 1 (+ s - 1 in ceil mode), o = floor(span
     * / s) + 1; span > INT64_MIN, so the division cannot overflow */
    int64_t span, o, last;
    if (__builtin_add_overflow(in, 2 * p, &span) ||
        __builtin_sub_overflow(span, d * (k - 1) + 1, &span) ||
        __builtin_add_overflow(span, ceil_mode ? s - 1 : 0, &span) ||
        __builtin_add_overflow(div_floor(span, s), 1, &o))
        return cg__error(CG_ERR_RUNTIME,
                         "%s: the arguments make a size overflow int64 "
                         "(PyTorch would wrap around)",
                         name);
    /* (o - 1)s <= span for s > 0; a negative s, which shape_check rejects,
     * can overflow it (in + p <= in + 2p cannot) */
    if (ceil_mode && !__builtin_mul_overflow(o - 1, s, &last) && last >= in + p)
        o--;
    *out = o;
    return CG_OK;
}

/* An int-or-triple argument: 1 entry means (v, v, v). */
static void triple(const cg_ints *v, int64_t *t)
{
    for (int i = 0; i < 3; i++)
        t[i] = v->v[v->n == 1 ? 0 : i];
}

static cg_status check_ints(const cg_ints *v, const char *what)
{
    if (v->n < 0 || v->n > 8)
        return cg__error(CG_ERR_MISUSE,
                         "%s: a cg_ints holds 0 to 8 entries, got n = %d", what,
                         v->n);
    return CG_OK;
}

/* safe_downcast<int, int64_t> (Pool.h) of each entry: PyTorch 1.13's
 * pools hold their arguments in C ints. */
static cg_status check_int_range(const cg_ints *v)
{
    for (int i = 0; i < v->n; i++)
        if (v->v[i] < INT_MIN || v->v[i] > INT_MAX)
            return cg__error(CG_ERR_RUNTIME, "integer out of range");
    return CG_OK;
}

/* The shape of y: x's with the three spatial sizes replaced. */
static void out_shape(const cg_tensor *x, const pool_geom *g, int64_t *shape)
{
    memcpy(shape, x->shape, sizeof(int64_t) * (size_t)x->ndim);
    for (int i = 0; i < 3; i++)
        shape[x->ndim - 3 + i] = g->out[i];
}

/* pool3d_shape_check (Pool.h). */
static cg_status shape_check(const cg_tensor *x, const pool_geom *g,
                             const char *fn_name, bool check_input_size)
{
    const int64_t *k = g->k, *s = g->s, *d = g->d;
    if (!(k[0] > 0 && k[2] > 0 && k[1] > 0))
        return cg__error(CG_ERR_RUNTIME,
                         "kernel size should be greater than zero, but got "
                         "kT: %lld kH: %lld kW: %lld",
                         (long long)k[0], (long long)k[1], (long long)k[2]);
    if (!(s[0] > 0 && s[2] > 0 && s[1] > 0))
        return cg__error(CG_ERR_RUNTIME,
                         "stride should be greater than zero, but got "
                         "dT: %lld dH: %lld dW: %lld",
                         (long long)s[0], (long long)s[1], (long long)s[2]);
    if (!(d[0] > 0 && d[2] > 0 && d[1] > 0))
        return cg__error(CG_ERR_RUNTIME,
                         "dilation should be greater than zero, but got "
                         "dilationT: %lld dilationH: %lld dilationW: %lld",
                         (long long)d[0], (long long)d[1], (long long)d[2]);
    for (int i = x->ndim == 5 ? 1 : 0; i < x->ndim; i++) {
        if (x->shape[i] > 0)
            continue;
        char shape[CG_MAX_DIMS * 24];
        /* PyTorch prints the size (always 0), not the dimension */
        return cg__error(
            CG_ERR_RUNTIME,
            "%s: Expected input's non-batch dimensions to have "
            "positive length, but input has a shape of %s and "
            "non-batch dimension %lld has length zero!",
            fn_name, cg__format_shape(x->shape, x->ndim, shape, sizeof shape),
            (long long)x->shape[i]);
    }
    const int64_t *in = g->in, *out = g->out;
    if (check_input_size && !(in[0] >= k[0] && in[1] >= k[1] && in[2] >= k[2]))
        return cg__error(CG_ERR_RUNTIME,
                         "input image (T: %lld H: %lld W: %lld) smaller than "
                         "kernel size (kT: %lld kH: %lld kW: %lld)",
                         (long long)in[0], (long long)in[1], (long long)in[2],
                         (long long)k[0], (long long)k[1], (long long)k[2]);
    /* (the padding check of pool3d_shape_check cannot fail after
     * axis_out's) */
    if (!(out[0] >= 1 && out[2] >= 1 && out[1] >= 1)) {
        long long c = (long long)x->shape[x->ndim - 4];
        return cg__error(CG_ERR_RUNTIME,
                         "Given input size: (%lldx%lldx%lldx%lld). Calculated "
                         "output size: (%lldx%lldx%lldx%lld). Output size is "
                         "too small",
                         c, (long long)in[0], (long long)in[1],
                         (long long)in[2], c, (long long)out[0],
                         (long long)out[1], (long long)out[2]);
    }
    return CG_OK;
}

/* Everything up to the dtype check, for both pools: fills g. `name` is
 * "max_pool3d" or "avg_pool3d" (their length messages differ slightly). */
static cg_status plan(const cg_tensor *x, const char *name, cg_ints kernel,
                      cg_ints stride, cg_ints padding, cg_ints dilation,
                      bool ceil_mode, const int64_t *divisor_override,
                      pool_geom *g)
{
    bool is_max = name[0] == 'm';
    cg_status st;
    if ((st = check_ints(&kernel, "kernel_size")) != CG_OK ||
        (st = check_ints(&stride, "stride")) != CG_OK ||
        (st = check_ints(&padding, "padding")) != CG_OK ||
        (st = check_ints(&dilation, "dilation")) != CG_OK)
        return st;
    memset(g, 0, sizeof *g);
    if (kernel.n != 1 && kernel.n != 3)
        return cg__error(CG_ERR_RUNTIME,
                         is_max ? "max_pool3d: kernel_size must either be a "
                                  "single int, or a tuple of three ints"
                                : "avg_pool3d: kernel_size must be a single "
                                  "int, or a tuple of three ints");
    if ((st = check_int_range(&kernel)) != CG_OK)
        return st;
    triple(&kernel, g->k);
    if (stride.n != 0 && stride.n != 1 && stride.n != 3)
        return cg__error(CG_ERR_RUNTIME,
                         is_max ? "max_pool3d: stride must either be omitted, "
                                  "a single int, or a tuple of three ints"
                                : "avg_pool3d: stride must be omitted, a "
                                  "single int, or a tuple of three ints");
    if ((st = check_int_range(&stride)) != CG_OK)
        return st;
    if (stride.n == 0)
        memcpy(g->s, g->k, sizeof g->s);
    else
        triple(&stride, g->s);
    if (padding.n != 1 && padding.n != 3)
        return cg__error(CG_ERR_RUNTIME,
                         is_max ? "max_pool3d: padding must be either be a "
                                  "single int, or a tuple of three ints"
                                : "avg_pool3d: padding must be a single int, "
                                  "or a tuple of three ints");
    if ((st = check_int_range(&padding)) != CG_OK)
        return st;
    triple(&padding, g->p);
    if (is_max) {
        if (dilation.n != 1 && dilation.n != 3)
            return cg__error(CG_ERR_RUNTIME,
                             "max_pool3d: dilation must be either a single "
                             "int, or a tuple of three ints");
        if ((st = check_int_range(&dilation)) != CG_OK)
            return st;
        triple(&dilation, g->d);
    } else {
        g->d[0] = g->d[1] = g->d[2] = 1;
    }
    if (x->ndim != 4 && x->ndim != 5)
        return cg__error(CG_ERR_RUNTIME, "non-empty 4D or 5D (batch mode) "
                                         "tensor expected for input");
    if (divisor_override && *divisor_override == 0)
        return cg__error(CG_ERR_RUNTIME, "divisor must be not zero");
    int b = x->ndim - 3;
    for (int i = 0; i < 3; i++) {
        g->in[i] = x->shape[b + i];
        if ((st = axis_out(name, g->in[i], g->k[i], g->p[i], g->s[i], g->d[i],
                           ceil_mode, &g->out[i])) != CG_OK)
            return st;
    }
    if ((st = shape_check(x, g,
                          is_max ? "max_pool3d_with_indices_out_cpu_"
                                   "template()"
                                 : "avg_pool3d()",
                          !is_max)) != CG_OK)
        return st;
    /* y's shape as cg__tensor_new will check it (PyTorch resizes the
     * output here); when it passes, a plane of y is countable unless there
     * are no planes */
    int64_t shape[5], numel;
    out_shape(x, g, shape);
    if ((st = cg__check_new_shape(shape, x->ndim, &numel)) != CG_OK)
        return st;
    g->planes = x->shape[x->ndim - 4] * (x->ndim == 5 ? x->shape[0] : 1);
    g->ceil_mode = ceil_mode;
    g->has_divisor = divisor_override != NULL;
    g->divisor = divisor_override ? *divisor_override : 0;
    g->in_plane = cg__plane_numel(g->in);
    g->out_plane = cg__plane_numel(g->out);
    /* taps of a plane; a max-pool window can be far larger than x */
    int64_t work = g->out_plane;
    for (int i = 0; i < 3; i++)
        work = cg__work_mul(work, g->k[i]);
    g->per_block = cg__planes_per_block(PLANE_BLOCK_WORK, work);
    return CG_OK;
}

/* t as a contiguous tensor without autograd (t itself, retained, when it
 * already is one). */
static cg_status dense(cg_tensor *t, cg_tensor **out)
{
    bool prev = cg_set_grad_enabled(false);
    cg_status st = cg_tensor_contiguous(t, out);
    cg_set_grad_enabled(prev);
    return st;
}

/* ======================================================================
 * Kernels, once per real dtype. A job covers planes [begin*per_block,
 * end*per_block); a plane of x has in[0]*in[1]*in[2] elements, one of y
 * out[0]*out[1]*out[2].
 * ====================================================================== */

typedef struct pool_job {
    const pool_geom *g;
    const void *src;     /* forward: x; backward: gy */
    void *dst;           /* forward: y; backward: gx (zeroed) */
    int64_t *idx;        /* max: argmax per output (NULL: not kept) */
    const int64_t *cidx; /* max backward: the kept argmax */
} pool_job;

/* The window of output o on axis i, for max pooling: first tap inside
 * the input and the end (exclusive). */
static void max_window(const pool_geom *g, int i, int64_t o, int64_t *b,
                       int64_t *e)
{
    int64_t start = o * g->s[i] - g->p[i];
    int64_t end = start + (g->k[i] - 1) * g->d[i] + 1;
    if (end > g->in[i])
        end = g->in[i];
    if (start < 0) /* PyTorch steps there one dilation at a time */
        start += (-start + g->d[i] - 1) / g->d[i] * g->d[i];
    *b = start;
    *e = end;
}

/* The window for average pooling: the clamped range and the unclamped
 * volume factor. */
static void avg_window(const pool_geom *g, int i, int64_t o, int64_t *b,
                       int64_t *e, int64_t *padded)
{
    int64_t start = o * g->s[i] - g->p[i];
    int64_t end = start + g->k[i];
    if (end > g->in[i] + g->p[i])
        end = g->in[i] + g->p[i];
    *padded = end - start;
    *b = start < 0 ? 0 : start;
    *e = end > g->in[i] ? g->in[i] : end;
}

/* The (t, h, w) of output o of a plane (row-major). */
static void out_pos(const pool_geom *g, int64_t o, int64_t *pos)
{
    pos[2] = o % g->out[2];
    pos[1] = o / g->out[2] % g->out[1];
    pos[0] = o / g->out[2] / g->out[1];
}

/* The avg-pool window [b, e) of output o, per axis, and its divisor
 * (divisor_override, else the unclamped window volume with
 * count_include_pad or the clamped one); false when the window holds no
 * input element. */
static bool avg_window3(const pool_geom *g, int64_t o, int64_t *b, int64_t *e,
                        int64_t *divisor)
{
    int64_t pos[3], pd[3];
    out_pos(g, o, pos);
    for (int i = 0; i < 3; i++)
        avg_window(g, i, pos[i], &b[i], &e[i], &pd[i]);
    if (b[0] >= e[0] || b[1] >= e[1] || b[2] >= e[2])
        return false;
    if (g->has_divisor)
        *divisor = g->divisor;
    else if (g->count_include_pad)
        *divisor = pd[0] * pd[1] * pd[2];
    else
        *divisor = (e[0] - b[0]) * (e[1] - b[1]) * (e[2] - b[2]);
    return true;
}

/* Max pooling weighs a window's candidates in (t, h, w) order; a larger
 * value or a NaN takes over (PyTorch's rule: the first of equal maxima,
 * the last NaN). Each candidate depends on the running maximum, so one
 * output is a chain of compares; POOL_LANES outputs of a row are weighed
 * side by side (independent chains, the selects without branches: which
 * candidate wins is data, a branch would guess wrong half the time),
 * each still seeing its own candidates in window order. Outputs whose
 * window leaves the input along W (padding, ceil_mode) take the one-by-one
 * walk. */
enum { POOL_LANES = 8 };

/* take ? a : b, by bit masks (U: the unsigned integer of T's width). */
#define DEFINE_SELECT(S, T, U)                                                 \
    static inline T select_##S(bool take, T a, T b)                            \
    {                                                                          \
        U ua, ub, mask = (U)0 - (U)take;                                       \
        memcpy(&ua, &a, sizeof ua);                                            \
        memcpy(&ub, &b, sizeof ub);                                            \
        ua = (ua & mask) | (ub & ~mask);                                       \
        memcpy(&a, &ua, sizeof a);                                             \
        return a;                                                              \
    }
DEFINE_SELECT(f32, float, uint32_t)
DEFINE_SELECT(f64, double, uint64_t)
#undef DEFINE_SELECT

/* One plane of each pass; CG__PLANE_KERNEL makes the pool's chunk
 * functions (max_fwd_f32, ...) from them. pl is the plane's index. */
#define DEFINE_POOL(S, T)                                                      \
    /* Output ow of the row whose T and H windows are [b0, e0), [b1, e1). */   \
    static void max_one_##S(const pool_geom *g, const T *x, int64_t b0,        \
                            int64_t e0, int64_t b1, int64_t e1, int64_t ow,    \
                            T *y, int64_t *ix)                                 \
    {                                                                          \
        int64_t b2, e2;                                                        \
        max_window(g, 2, ow, &b2, &e2);                                        \
        int64_t best = (b0 * g->in[1] + b1) * g->in[2] + b2;                   \
        T m = -(T)INFINITY;                                                    \
        for (int64_t t = b0; t < e0; t += g->d[0])                             \
            for (int64_t h = b1; h < e1; h += g->d[1])                         \
                for (int64_t w = b2; w < e2; w += g->d[2]) {                   \
                    int64_t at = (t * g->in[1] + h) * g->in[2] + w;            \
                    T v = x[at];                                               \
                    bool take = (v > m) | (v != v);                            \
                    m = select_##S(take, v, m);                                \
                    best = take ? at : best;                                   \
                }                                                              \
        *y = m;                                                                \
        if (ix)                                                                \
            *ix = best;                                                        \
    }                                                                          \
    /* POOL_LANES outputs from ow on, whose windows lie inside along W. */     \
    static void max_lanes_##S(const pool_geom *g, const T *x, int64_t b0,      \
                              int64_t e0, int64_t b1, int64_t e1, int64_t ow,  \
                              T *y, int64_t *ix)                               \
    {                                                                          \
        const int64_t sw = g->s[2], w0 = ow * sw - g->p[2];                    \
        T m[POOL_LANES];                                                       \
        int64_t best[POOL_LANES];                                              \
        for (int q = 0; q < POOL_LANES; q++) {                                 \
            m[q] = -(T)INFINITY;                                               \
            best[q] = (b0 * g->in[1] + b1) * g->in[2] + w0 + q * sw;           \
        }                                                                      \
        for (int64_t t = b0; t < e0; t += g->d[0])                             \
            for (int64_t h = b1; h < e1; h += g->d[1]) {                       \
                const int64_t rb = (t * g->in[1] + h) * g->in[2] + w0;         \
                for (int64_t kw = 0; kw < g->k[2]; kw++) {                     \
                    const int64_t at = rb + kw * g->d[2];                      \
                    _Pragma("GCC unroll 8") for (int q = 0; q < POOL_LANES;    \
                                                 q++)                          \
                    {                                                          \
                        T v = x[at + q * sw];                                  \
                        bool take = (v > m[q]) | (v != v);                     \
                        m[q] = select_##S(take, v, m[q]);                      \
                        best[q] = take ? at + q * sw : best[q];                \
                    }                                                          \
                }                                                              \
            }                                                                  \
        for (int q = 0; q < POOL_LANES; q++) {                                 \
            y[q] = m[q];                                                       \
            if (ix)                                                            \
                ix[q] = best[q];                                               \
        }                                                                      \
    }                                                                          \
    static void max_fwd_plane_##S(const pool_job *j, int64_t pl, const T *x,   \
                                  T *y)                                        \
    {                                                                          \
        const pool_geom *g = j->g;                                             \
        const int64_t op = g->out_plane;                                       \
        int64_t *ix = j->idx ? j->idx + pl * op : NULL;                        \
        /* outputs ow with every W tap inside: [wlo, whi) */                   \
        const int64_t last = (g->k[2] - 1) * g->d[2];                          \
        int64_t wlo = (g->p[2] + g->s[2] - 1) / g->s[2], whi = 0;              \
        if (g->in[2] - 1 - last + g->p[2] >= 0)                                \
            whi = (g->in[2] - 1 - last + g->p[2]) / g->s[2] + 1;               \
        if (whi > g->out[2])                                                   \
            whi = g->out[2];                                                   \
        int64_t o = 0;                                                         \
        for (int64_t ot = 0; ot < g->out[0]; ot++) {                           \
            int64_t b0, e0;                                                    \
            max_window(g, 0, ot, &b0, &e0);                                    \
            for (int64_t oh = 0; oh < g->out[1]; oh++) {                       \
                int64_t b1, e1;                                                \
                max_window(g, 1, oh, &b1, &e1);                                \
                int64_t ow = 0;                                                \
                while (ow < g->out[2]) {                                       \
                    if (ow >= wlo && ow + POOL_LANES <= whi) {                 \
                        max_lanes_##S(g, x, b0, e0, b1, e1, ow, y + o,         \
                                      ix ? ix + o : NULL);                     \
                        ow += POOL_LANES;                                      \
                        o += POOL_LANES;                                       \
                    } else {                                                   \
                        max_one_##S(g, x, b0, e0, b1, e1, ow, y + o,           \
                                    ix ? ix + o : NULL);                       \
                        ow++;                                                  \
                        o++;                                                   \
                    }                                                          \
                }                                                              \
            }                                                                  \
        }                                                                      \
    }                                                                          \
    static void max_bwd_plane_##S(const pool_job *j, int64_t pl, const T *gy,  \
                                  T *gx)                                       \
    {                                                                          \
        const int64_t ip = j->g->in_plane, op = j->g->out_plane;               \
        const int64_t *ix = j->cidx + pl * op;                                 \
        for (int64_t o = 0; o < op; o++)                                       \
            if (ix[o] >= 0 && ix[o] < ip) /* a window always has a tap */      \
                gx[ix[o]] += gy[o];                                            \
    }                                                                          \
    static void avg_fwd_plane_##S(const pool_job *j, int64_t pl, const T *x,   \
                                  T *y)                                        \
    {                                                                          \
        (void)pl;                                                              \
        const pool_geom *g = j->g;                                             \
        const int64_t op = g->out_plane;                                       \
        for (int64_t o = 0; o < op; o++) {                                     \
            int64_t b[3], e[3], divisor;                                       \
            if (!avg_window3(g, o, b, e, &divisor)) {                          \
                y[o] = 0;                                                      \
                continue;                                                      \
            }                                                                  \
            T sum = 0;                                                         \
            for (int64_t t = b[0]; t < e[0]; t++)                              \
                for (int64_t h = b[1]; h < e[1]; h++)                          \
                    for (int64_t w = b[2]; w < e[2]; w++)                      \
                        sum += x[(t * g->in[1] + h) * g->in[2] + w];           \
            y[o] = sum / (T)divisor;                                           \
        }                                                                      \
    }                                                                          \
    static void avg_bwd_plane_##S(const pool_job *j, int64_t pl, const T *gy,  \
                                  T *gx)                                       \
    {                                                                          \
        (void)pl;                                                              \
        const pool_geom *g = j->g;                                             \
        const int64_t op = g->out_plane;                                       \
        for (int64_t o = 0; o < op; o++) {                                     \
            int64_t b[3], e[3], divisor;                                       \
            if (!avg_window3(g, o, b, e, &divisor))                            \
                continue;                                                      \
            T v = gy[o] / (T)divisor;                                          \
            for (int64_t t = b[0]; t < e[0]; t++)                              \
                for (int64_t h = b[1]; h < e[1]; h++)                          \
                    for (int64_t w = b[2]; w < e[2]; w++)                      \
                        gx[(t * g->in[1] + h) * g->in[2] + w] += v;            \
        }                                                                      \
    }                                                                          \
    CG__PLANE_KERNEL(max_fwd_##S, pool_job, T, in_plane, out_plane,            \
                     max_fwd_plane_##S)                                        \
    CG__PLANE_KERNEL(max_bwd_##S, pool_job, T, out_plane, in_plane,            \
                     max_bwd_plane_##S)                                        \
    CG__PLANE_KERNEL(avg_fwd_##S, pool_job, T, in_plane, out_plane,            \
                     avg_fwd_plane_##S)                                        \
    CG__PLANE_KERNEL(avg_bwd_##S, pool_job, T, out_plane, in_plane,            \
                     avg_bwd_plane_##S)

DEFINE_POOL(f32, float)
DEFINE_POOL(f64, double)
#undef DEFINE_POOL

static void run(const pool_geom *g, pool_job *j, cg_dtype dt,
                cg_parallel_fn f32, cg_parallel_fn f64)
{
    cg__plane_for(g->planes, g->per_block, dt == CG_FLOAT64 ? f64 : f32, j);
}

/* ======================================================================
 * Autograd nodes
 * ====================================================================== */

typedef struct pool_ctx {
    pool_geom g;
    int64_t *indices; /* max: argmax per output, owned */
} pool_ctx;

static void pool_ctx_release(void *ctx)
{
    cg__free(((pool_ctx *)ctx)->indices);
}

/* gx for either pool: zeros of x's shape, then the kernel. */
static cg_status pool_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx,
                               bool is_max)
{
    const pool_ctx *c = node->ctx;
    cg_tensor *x, *gyc = NULL, *r = NULL;
    cg_status st = cg__saved(node, 0, &x);
    if (st != CG_OK)
        return st;
    if (!cg__needs_grad(node, 0))
        return CG_OK;
    if ((st = dense(gy, &gyc)) != CG_OK)
        return st;
    if ((st = cg__tensor_new(x->shape, x->ndim, x->dtype, &r)) != CG_OK) {
        cg_tensor_release(gyc);
        return st;
    }
    pool_job j = {.g = &c->g,
                  .src = cg_tensor_data(gyc),
                  .dst = cg_tensor_data(r),
                  .cidx = c->indices};
    if (is_max)
        run(&c->g, &j, x->dtype, max_bwd_f32, max_bwd_f64);
    else
        run(&c->g, &j, x->dtype, avg_bwd_f32, avg_bwd_f64);
    cg_tensor_release(gyc);
    gx[0] = r;
    return CG_OK;
}

static cg_status max_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    return pool_backward(node, gy, gx, true);
}

static cg_status avg_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    return pool_backward(node, gy, gx, false);
}

static const cg_op_def max_pool3d_op = {"MaxPool3DWithIndicesBackward0",
                                        max_backward, pool_ctx_release};
static const cg_op_def avg_pool3d_op = {"AvgPool3DBackward0", avg_backward,
                                        NULL};

/* The forward both pools share once planned: y, the kernel and the node. */
static cg_status pool_forward(cg_tensor *x, const pool_geom *g, bool is_max,
                              cg_tensor **out)
{
    int64_t shape[5];
    out_shape(x, g, shape);
    cg_tensor *y = NULL, *xc = NULL;
    int64_t *indices = NULL;
    /* every element is written below */
    cg_status st = cg__tensor_new_uninit(shape, x->ndim, x->dtype, &y);
    if (st != CG_OK)
        return st;
    if ((st = dense(x, &xc)) != CG_OK)
        goto fail;
    bool record = cg__should_record(&x, 1);
    int64_t numel = cg_tensor_numel(y);
    if (is_max && record) {
        indices = cg__malloc((size_t)(numel > 0 ? numel : 1) * sizeof *indices);
        if (!indices) {
            st = cg__error_nomem((size_t)numel * sizeof *indices);
            goto fail;
        }
    }
    pool_job j = {.g = g,
                  .src = cg_tensor_data(xc),
                  .dst = cg_tensor_data(y),
                  .idx = indices};
    if (is_max)
        run(g, &j, x->dtype, max_fwd_f32, max_fwd_f64);
    else
        run(g, &j, x->dtype, avg_fwd_f32, avg_fwd_f64);
    cg_node *node;
    pool_ctx *c;
    if ((st = cg__record(y, is_max ? &max_pool3d_op : &avg_pool3d_op, &x, 1,
                         sizeof *c, &node, (void **)&c)) != CG_OK)
        goto fail;
    if (node) {
        c->g = *g;
        c->indices = indices; /* the node owns them from here */
        indices = NULL;
        if ((st = cg__save(node, 0, x, false)) != CG_OK)
            goto fail;
    }
    cg__free(indices);
    cg_tensor_release(xc);
    *out = y;
    return CG_OK;
fail:
    cg__free(indices);
    cg_tensor_release(xc);
    cg_tensor_release(y);
    return st;
}

static cg_status check_dtype(const cg_tensor *x, const char *kernel)
{
    if (cg_dtype_is_complex(x->dtype))
        return cg__error(CG_ERR_RUNTIME, "\"%s\" not implemented for '%s'",
                         kernel, cg__dtype_scalar_name(x->dtype));
    return CG_OK;
}

/* ======================================================================
 * The ops
 * ====================================================================== */

cg_status cg_max_pool3d(cg_tensor *input, cg_ints kernel_size, cg_ints stride,
                        cg_ints padding, cg_ints dilation, bool ceil_mode,
                        cg_tensor **out)
{
    if (!input)
        return cg__error_null("input");
    if (!out)
        return cg__error_null("out");
    pool_geom g;
    cg_status st = plan(input, "max_pool3d", kernel_size, stride, padding,
                        dilation, ceil_mode, NULL, &g);
    if (st != CG_OK ||
        (st = check_dtype(input, "max_pool3d_with_indices_cpu")) != CG_OK)
        return st;
    return pool_forward(input, &g, true, out);
}

cg_status cg_avg_pool3d(cg_tensor *input, cg_ints kernel_size, cg_ints stride,
                        cg_ints padding, bool ceil_mode, bool count_include_pad,
                        const int64_t *divisor_override, cg_tensor **out)
{
    if (!input)
        return cg__error_null("input");
    if (!out)
        return cg__error_null("out");
    pool_geom g;
    cg_status st = plan(input, "avg_pool3d", kernel_size, stride, padding,
                        CG_INT3(1), ceil_mode, divisor_override, &g);
    if (st != CG_OK ||
        (st = check_dtype(input, "avg_pool3d_out_frame")) != CG_OK)
        return st;
    g.count_include_pad = count_include_pad;
    return pool_forward(input, &g, false, out);
}
