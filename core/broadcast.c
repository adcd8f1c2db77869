/*
 * broadcast.c -- what elementwise ops share, as PyTorch 1.13 does it:
 *
 *   - broadcasting two shapes (ATen's infer_size: right-aligned, size 1
 *     stretches, the first mismatch from the right is reported);
 *   - dtype promotion (torch.result_type): dimensioned tensors decide the
 *     precision; a 0-d tensor or a Python scalar only moves the result to
 *     a higher category (real -> complex), keeping that precision;
 *   - the elementwise loop (TensorIterator's idea without its generality):
 *     inputs are seen with the output's shape (stride 0 where broadcast),
 *     dimensions that are contiguous in every operand are merged, and a
 *     kernel is called once per innermost run. Large loops are cut into
 *     fixed chunks of elements for the thread pool, so results do not
 *     depend on the thread count.
 *
 * Not here: TensorIterator's output resizing, memory-format (channels-last)
 * propagation, dynamic casting inside the loop (inputs of another dtype
 * are converted up front), integer dtypes.
 */
#include "ops_internal.h"
#include "threadpool_internal.h"

#include <complex.h>
#include <string.h>

/* ---- broadcasting -------------------------------------------------------- */

cg_status cg__broadcast_dims(const int64_t *a, int na, const int64_t *b, int nb,
                             int64_t *out, int *ndim)
{
    int n = na > nb ? na : nb;
    int64_t res[CG_MAX_DIMS];
    cg_status st = cg__check_ndim(n);
    if (st != CG_OK)
        return st;
    for (int i = n - 1; i >= 0; i--) {
        int ia = i - (n - na), ib = i - (n - nb);
        int64_t sa = ia >= 0 ? a[ia] : 1, sb = ib >= 0 ? b[ib] : 1;
        if (sa != sb && sa != 1 && sb != 1)
            return cg__error(CG_ERR_RUNTIME,
                             "The size of tensor a (%lld) must match the "
                             "size of tensor b (%lld) at non-singleton "
                             "dimension %d",
                             (long long)sa, (long long)sb, i);
        res[i] = sa == 1 ? sb : sa;
    }
    memcpy(out, res, (size_t)n * sizeof *res);
    *ndim = n;
    return CG_OK;
}

cg_status cg__broadcast_shapes(const cg_tensor *a, const cg_tensor *b,
                               int64_t *out_shape, int *ndim)
{
    return cg__broadcast_dims(a->shape, a->ndim, b->shape, b->ndim, out_shape,
                              ndim);
}

/* ---- promotion ----------------------------------------------------------- */

static bool is_wide(cg_dtype dt)
{
    return dt == CG_FLOAT64 || dt == CG_COMPLEX128;
}

cg_dtype cg__promote(cg_dtype a, cg_dtype b)
{
    bool cplx = cg_dtype_is_complex(a) || cg_dtype_is_complex(b);
    bool wide = is_wide(a) || is_wide(b);
    if (cplx)
        return wide ? CG_COMPLEX128 : CG_COMPLEX64;
    return wide ? CG_FLOAT64 : CG_FLOAT32;
}

/* `lower` (a 0-d tensor's or a scalar's dtype) joins `higher` (the
 * dimensioned operands' dtype): only its category counts. */
static cg_dtype combine_categories(cg_dtype higher, cg_dtype lower)
{
    if (!cg_dtype_is_complex(higher) && cg_dtype_is_complex(lower))
        return cg_dtype_to_complex(higher);
    return higher;
}

cg_dtype cg__result_type(const cg_tensor *a, const cg_tensor *b)
{
    bool da = a->ndim > 0, db = b->ndim > 0;
    if (da == db)
        return cg__promote(a->dtype, b->dtype);
    return da ? combine_categories(a->dtype, b->dtype)
              : combine_categories(b->dtype, a->dtype);
}

cg_dtype cg__result_type_scalar(cg_dtype dt, bool complex_scalar)
{
    return complex_scalar ? combine_categories(dt, CG_COMPLEX128) : dt;
}

/* ---- the elementwise loop ------------------------------------------------ */

void cg__loop_init(cg_loop *l, cg_tensor *out, const cg_tensor *const *ins,
                   int nin)
{
    const cg_tensor *ops[CG_LOOP_MAX_ARGS];
    int64_t str[CG_LOOP_MAX_ARGS][CG_MAX_DIMS];
    int na = nin + 1, nd = out->ndim;
    ops[0] = out;
    for (int k = 0; k < nin; k++)
        ops[k + 1] = ins[k];
    /* every operand seen with out's shape, strides in bytes */
    for (int k = 0; k < na; k++) {
        const cg_tensor *t = ops[k];
        int64_t el = (int64_t)cg__elsize(t);
        for (int d = 0; d < nd; d++) {
            int j = d - (nd - t->ndim);
            str[k][d] = (j < 0 || t->shape[j] == 1) ? 0 : t->strides[j] * el;
        }
        l->data[k] = cg__elem_ptr(t, t->offset);
    }
    /* coalesce from the innermost dimension out: size-1 dimensions vanish,
     * and dimension d joins the run inside it when every operand steps
     * over that run exactly */
    int64_t shape[CG_MAX_DIMS], cs[CG_LOOP_MAX_ARGS][CG_MAX_DIMS];
    int m = 0;
    for (int d = nd - 1; d >= 0; d--) {
        if (out->shape[d] == 1)
            continue;
        bool merge = m > 0;
        for (int k = 0; merge && k < na; k++)
            merge = str[k][d] == cs[k][m - 1] * shape[m - 1];
        if (merge) {
            shape[m - 1] *= out->shape[d];
            continue;
        }
        shape[m] = out->shape[d];
        for (int k = 0; k < na; k++)
            cs[k][m] = str[k][d];
        m++;
    }
    l->nargs = na;
    l->ndim = m;
    l->numel = cg_tensor_numel(out);
    for (int i = 0; i < m; i++) {
        l->shape[i] = shape[m - 1 - i];
        for (int k = 0; k < na; k++)
            l->strides[k][i] = cs[k][m - 1 - i];
    }
}

/* One run of a loop: n elements, operand k from ptr[k], strides[k] bytes
 * apart. */
typedef void (*run_fn)(void *ctx, char *const *ptr, const int64_t *strides,
                       int64_t n);

/* Walks out's elements [begin, end) in row-major order, run by run. */
static void loop_walk(const cg_loop *l, run_fn run, void *ctx, int64_t begin,
                      int64_t end)
{
    char *ptr[CG_LOOP_MAX_ARGS];
    int64_t inner[CG_LOOP_MAX_ARGS] = {0}, off[CG_LOOP_MAX_ARGS] = {0};
    int na = l->nargs, nd = l->ndim;
    if (end > l->numel)
        end = l->numel;
    if (begin >= end)
        return;
    if (nd == 0) { /* one element */
        for (int k = 0; k < na; k++)
            ptr[k] = l->data[k];
        run(ctx, ptr, inner, 1);
        return;
    }
    int64_t idx[CG_MAX_DIMS], rest = begin;
    for (int d = nd - 1; d >= 0; d--) {
        idx[d] = rest % l->shape[d];
        rest /= l->shape[d];
        for (int k = 0; k < na; k++)
            off[k] += idx[d] * l->strides[k][d];
    }
    for (int k = 0; k < na; k++)
        inner[k] = l->strides[k][nd - 1];
    int last = nd - 1;
    for (int64_t pos = begin;;) {
        int64_t n = l->shape[last] - idx[last];
        if (n > end - pos)
            n = end - pos;
        for (int k = 0; k < na; k++)
            ptr[k] = l->data[k] + off[k];
        run(ctx, ptr, inner, n);
        pos += n;
        if (pos >= end)
            return;
        /* the run ended at the end of the innermost dimension: carry */
        idx[last] += n;
        for (int k = 0; k < na; k++)
            off[k] += n * inner[k];
        for (int d = last; d > 0 && idx[d] == l->shape[d]; d--) {
            idx[d] = 0;
            idx[d - 1]++;
            for (int k = 0; k < na; k++)
                off[k] += l->strides[k][d - 1] - l->shape[d] * l->strides[k][d];
        }
    }
}

typedef struct plain_run {
    cg_loop_fn fn;
    const cg_kparams *params;
} plain_run;

static void run_plain(void *ctx, char *const *ptr, const int64_t *strides,
                      int64_t n)
{
    const plain_run *p = ctx;
    p->fn(ptr, strides, n, p->params);
}

void cg__loop_run(const cg_loop *l, cg_loop_fn fn, const cg_kparams *params,
                  int64_t begin, int64_t end)
{
    plain_run p = {fn, params};
    loop_walk(l, run_plain, &p, begin, end);
}

/* Elements an input is converted in at a time (see cg__map): a piece of
 * each converted input stays in L1. */
#define CONVERT_PIECE 256

/* A run whose inputs of another dtype are converted piece by piece into
 * buffers, which the kernel then reads as contiguous inputs of its own
 * dtype: the values a whole converted copy would give, without writing
 * and reading back a temporary the size of the tensor. */
typedef struct convert_run {
    cg_loop_fn fn;
    const cg_kparams *params;
    int nargs;
    cg_dtype in_dt;
    cg_dtype from[CG_LOOP_MAX_ARGS]; /* operand k's dtype (0: the output) */
} convert_run;

static void run_converting(void *ctx, char *const *ptr, const int64_t *strides,
                           int64_t n)
{
    const convert_run *c = ctx;
    const size_t isz = cg_dtype_size(c->in_dt);
    /* 16-byte elements at most: complex128 */
    _Alignas(64) unsigned char buf[CG_LOOP_MAX_ARGS - 1][CONVERT_PIECE * 16];
    char *p[CG_LOOP_MAX_ARGS];
    int64_t st[CG_LOOP_MAX_ARGS];
    for (int64_t off = 0; off < n; off += CONVERT_PIECE) {
        const int64_t m = n - off < CONVERT_PIECE ? n - off : CONVERT_PIECE;
        for (int k = 0; k < c->nargs; k++) {
            char *at = ptr[k] + off * strides[k];
            if (k == 0 || c->from[k] == c->in_dt) {
                p[k] = at;
                st[k] = strides[k];
                continue;
            }
            const int64_t fsz = (int64_t)cg_dtype_size(c->from[k]);
            cg__convert_run(buf[k - 1], c->in_dt, at, c->from[k], m,
                            strides[k] / fsz);
            p[k] = (char *)buf[k - 1];
            st[k] = (int64_t)isz;
        }
        c->fn(p, st, m, c->params);
    }
}

/* Elements per chunk of a parallel elementwise loop: large enough that a
 * chunk outweighs the cost of handing it to a thread. */
#define MAP_CHUNK ((int64_t)1 << 15)

typedef struct map_job {
    const cg_loop *loop;
    run_fn run;
    void *ctx;
} map_job;

static void map_chunks(void *ctx, int64_t begin, int64_t end)
{
    const map_job *j = ctx;
    loop_walk(j->loop, j->run, j->ctx, begin * MAP_CHUNK, end * MAP_CHUNK);
}

cg_status cg__map(const int64_t *shape, int ndim, cg_dtype out_dt,
                  const cg_tensor *const *ins, int nin, cg_dtype in_dt,
                  cg_loop_fn fn, const cg_kparams *params, cg_tensor **out)
{
    if (nin < 1 || nin >= CG_LOOP_MAX_ARGS || !fn)
        return cg__error(CG_ERR_RUNTIME,
                         "internal error: elementwise loop with %d inputs "
                         "and %s kernel",
                         nin, fn ? "a" : "no");
    cg_tensor *r = NULL;
    /* the loop writes every element of r */
    cg_status st = cg__tensor_new_uninit(shape, ndim, out_dt, &r);
    if (st != CG_OK)
        return st;
    cg_loop l;
    cg__loop_init(&l, r, ins, nin);
    plain_run plain = {fn, params};
    convert_run conv = {fn, params, nin + 1, in_dt, {out_dt}};
    bool convert = false;
    for (int i = 0; i < nin; i++) {
        conv.from[i + 1] = ins[i]->dtype;
        convert = convert || ins[i]->dtype != in_dt;
    }
    map_job job = {&l, convert ? run_converting : run_plain,
                   convert ? (void *)&conv : (void *)&plain};
    cg__parallel_for((l.numel + MAP_CHUNK - 1) / MAP_CHUNK, map_chunks, &job);
    *out = r;
    return CG_OK;
}

/* ---- complex functions (see ops_internal.h) ---------------------------------
 * C99's complex functions, which PyTorch's std::complex functions also call
 * (libstdc++ forwards to them), on cgrad's (re, im) pairs. A union converts
 * between the pair and R _Complex, whose layout C11 fixes as R[2]. */

#define COMPLEX_FUNCS(S, T, R, F)                                              \
    typedef union S##_pun {                                                    \
        T s;                                                                   \
        R _Complex c;                                                          \
    } S##_pun;                                                                 \
    static R _Complex S##_to_c(T a)                                            \
    {                                                                          \
        S##_pun u;                                                             \
        u.s = a;                                                               \
        return u.c;                                                            \
    }                                                                          \
    static T S##_from_c(R _Complex c)                                          \
    {                                                                          \
        S##_pun u;                                                             \
        u.c = c;                                                               \
        return u.s;                                                            \
    }                                                                          \
    R cg__##S##_abs(T a)                                                       \
    {                                                                          \
        return cabs##F(S##_to_c(a));                                           \
    }                                                                          \
    T cg__##S##_exp(T a)                                                       \
    {                                                                          \
        return S##_from_c(cexp##F(S##_to_c(a)));                               \
    }                                                                          \
    T cg__##S##_log(T a)                                                       \
    {                                                                          \
        return S##_from_c(clog##F(S##_to_c(a)));                               \
    }                                                                          \
    T cg__##S##_sqrt(T a)                                                      \
    {                                                                          \
        return S##_from_c(csqrt##F(S##_to_c(a)));                              \
    }                                                                          \
    T cg__##S##_tanh(T a)                                                      \
    {                                                                          \
        return S##_from_c(ctanh##F(S##_to_c(a)));                              \
    }                                                                          \
    T cg__##S##_powg(T a, double p)                                            \
    {                                                                          \
        return S##_from_c(cpow##F(S##_to_c(a), S##_to_c(cg__##S##_of(p, 0)))); \
    }

COMPLEX_FUNCS(c64, cg_c64, float, f)
COMPLEX_FUNCS(c128, cg_c128, double, )
