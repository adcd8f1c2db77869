/*
 * copy.c -- copies and conversions: contiguous, clone, to(dtype), copy_,
 * fill_, zero_ (PyTorch 1.13 semantics, CPU).
 *
 * clone records CloneBackward0 (the gradient passes through unchanged);
 * to(dtype) records ToCopyBackward0 (the gradient is converted back, a
 * complex gradient of a real input keeping its real part, as PyTorch's
 * _to_copy_backward). complex -> real conversion discards the imaginary
 * part (PyTorch also warns; cgrad has no warning channel). The in-place
 * ops refuse tensors that require grad while grad mode is on.
 */
#include "autograd_internal.h"
#include "ops_internal.h"
#include "threadpool_internal.h"

#include <string.h>

/* Copies the strided tensor t into the contiguous buffer dst of dtype
 * ddt, converting as PyTorch does (a real value gets imaginary part 0; a
 * complex one converted to real keeps its real part), row by row along the
 * last dimension after merging the dimensions that are one run of memory
 * (memcpy, a fill for a broadcast row, else a typed strided loop): an
 * expanded gradient such as y.sum()'s merges into one broadcast row and
 * becomes a fill, a transposed view into rows of a strided loop, instead
 * of a load and a store through the generic iterator per element. Blocks
 * of elements go to the thread pool; each element is written once, by one
 * thread. */

/* n elements from src, `step` elements apart, converted into out,
 * `ostep` elements apart. */
typedef void (*copy_run_fn)(char *out, int64_t ostep, const char *src,
                            int64_t n, int64_t step);

#define COPY_RE_real(v) (v)
#define COPY_IM_real(v) 0
#define COPY_RE_cplx(v) (v).re
#define COPY_IM_cplx(v) (v).im
#define COPY_MK_real(T, R, re, im) ((T)(re))
#define COPY_MK_cplx(T, R, re, im) ((T){(R)(re), (R)(im)})
/* the dtypes twice: the pairs need one list inside the other */
#define COPY_DTYPES(X)                                                         \
    X(f32, float, float, real)                                                 \
    X(f64, double, double, real)                                               \
    X(c64, cg_c64, float, cplx)                                                \
    X(c128, cg_c128, double, cplx)
#define COPY_DTYPES_TO(X, ...)                                                 \
    X(__VA_ARGS__, f32, float, float, real)                                    \
    X(__VA_ARGS__, f64, double, double, real)                                  \
    X(__VA_ARGS__, c64, cg_c64, float, cplx)                                   \
    X(__VA_ARGS__, c128, cg_c128, double, cplx)
#define DEFINE_COPY_RUN(SS, ST, SR, SK, DS, DT, DR, DK)                        \
    static void copy_##SS##_##DS(char *out, int64_t ostep, const char *src,    \
                                 int64_t n, int64_t step)                      \
    {                                                                          \
        DT *o = (DT *)out;                                                     \
        const ST *x = (const ST *)src;                                         \
        if (ostep != 1) { /* into a strided view */                            \
            for (int64_t i = 0; i < n; i++)                                    \
                o[i * ostep] = COPY_MK_##DK(DT, DR, COPY_RE_##SK(x[i * step]), \
                                            COPY_IM_##SK(x[i * step]));        \
        } else if (step == 0) { /* a broadcast row: a fill */                  \
            const DT v =                                                       \
                COPY_MK_##DK(DT, DR, COPY_RE_##SK(x[0]), COPY_IM_##SK(x[0]));  \
            for (int64_t i = 0; i < n; i++)                                    \
                o[i] = v;                                                      \
        } else if (step == 1) { /* the loops the compiler vectorises */        \
            for (int64_t i = 0; i < n; i++)                                    \
                o[i] = COPY_MK_##DK(DT, DR, COPY_RE_##SK(x[i]),                \
                                    COPY_IM_##SK(x[i]));                       \
        } else {                                                               \
            for (int64_t i = 0; i < n; i++)                                    \
                o[i] = COPY_MK_##DK(DT, DR, COPY_RE_##SK(x[i * step]),         \
                                    COPY_IM_##SK(x[i * step]));                \
        }                                                                      \
    }
#define DEFINE_COPY_RUNS_FROM(SS, ST, SR, SK)                                  \
    COPY_DTYPES_TO(DEFINE_COPY_RUN, SS, ST, SR, SK)
COPY_DTYPES(DEFINE_COPY_RUNS_FROM)
#define COPY_RUN_ENTRY(SS, DS) copy_##SS##_##DS
#define COPY_RUN_ROW(SS)                                                       \
    {                                                                          \
        COPY_RUN_ENTRY(SS, f32), COPY_RUN_ENTRY(SS, f64),                      \
            COPY_RUN_ENTRY(SS, c64), COPY_RUN_ENTRY(SS, c128)                  \
    }
/* [source dtype][destination dtype], in cg_dtype's order */
static const copy_run_fn COPY_RUNS[CG_DTYPE_COUNT][CG_DTYPE_COUNT] = {
    COPY_RUN_ROW(f32), COPY_RUN_ROW(f64), COPY_RUN_ROW(c64),
    COPY_RUN_ROW(c128)};

void cg__convert_run(void *out, cg_dtype to, const void *src, cg_dtype from,
                     int64_t n, int64_t step)
{
    COPY_RUNS[from][to]((char *)out, 1, (const char *)src, n, step);
}

typedef struct row_copy {
    const char *base; /* the source's first element */
    char *dst;        /* the destination's first element */
    size_t ssz, dsz;  /* element sizes of source and destination */
    copy_run_fn run;  /* the typed loop from t's dtype to dst's */
    bool same;        /* the same dtype: a unit-step run is a memcpy */
    int nd;           /* merged dims; the last is the row */
    int64_t shape[CG_MAX_DIMS], strides[CG_MAX_DIMS], dstrides[CG_MAX_DIMS];
    int64_t numel;
} row_copy;

enum { ROW_COPY_BLOCK = 1 << 15 }; /* elements per pool chunk */

static void copy_run(const row_copy *c, char *out, int64_t ostep,
                     const char *src, int64_t n, int64_t step)
{
    if (c->same && step == 1 && ostep == 1)
        memcpy(out, src, (size_t)n * c->ssz);
    else
        c->run(out, ostep, src, n, step);
}

/* Output elements [begin, end) * ROW_COPY_BLOCK, run by run. */
static void copy_row_blocks(void *ctx, int64_t begin, int64_t end)
{
    const row_copy *c = ctx;
    const int nd = c->nd;
    const int64_t len = c->shape[nd - 1], step = c->strides[nd - 1],
                  ostep = c->dstrides[nd - 1];
    int64_t e = begin * ROW_COPY_BLOCK;
    int64_t e1 =
        end * ROW_COPY_BLOCK < c->numel ? end * ROW_COPY_BLOCK : c->numel;
    int64_t idx[CG_MAX_DIMS] = {0}, rest = e / len, i0 = e % len;
    for (int d = nd - 2; d >= 0; d--) {
        idx[d] = rest % c->shape[d];
        rest /= c->shape[d];
    }
    while (e < e1) {
        int64_t off = i0 * step, doff = i0 * ostep;
        for (int d = 0; d + 1 < nd; d++) {
            off += idx[d] * c->strides[d];
            doff += idx[d] * c->dstrides[d];
        }
        int64_t n = len - i0 < e1 - e ? len - i0 : e1 - e;
        copy_run(c, c->dst + doff * (int64_t)c->dsz, ostep,
                 c->base + off * (int64_t)c->ssz, n, step);
        e += n;
        i0 = 0;
        for (int d = nd - 2; d >= 0; d--) {
            if (++idx[d] < c->shape[d])
                break;
            idx[d] = 0;
        }
    }
}

/* dst = t (the same shape; dst has no stride-0 dimension). */
static void copy_rows(const cg_tensor *t, cg_tensor *dst)
{
    const cg_dtype ddt = dst->dtype;
    row_copy c = {
        .base = (const char *)t->storage->data +
                (size_t)t->offset * cg_dtype_size(t->dtype),
        .dst = cg__elem_ptr(dst, dst->offset),
        .ssz = cg_dtype_size(t->dtype),
        .dsz = cg_dtype_size(ddt),
        .run = COPY_RUNS[t->dtype][ddt],
        .same = t->dtype == ddt,
        .nd = 1,
        .shape = {1},
        .strides = {0},
        .dstrides = {0},
        .numel = 1,
    };
    /* merge dim d into the last merged dim when both tensors step d steps
     * over that dim's whole extent (size-1 dims merge with anything) */
    for (int d = 0; d < t->ndim; d++) {
        int64_t n = t->shape[d], st = t->strides[d], dt = dst->strides[d];
        c.numel *= n;
        if (n == 1)
            continue;
        int k = c.nd - 1;
        if (c.shape[k] == 1) {
            c.shape[k] = n;
            c.strides[k] = st;
            c.dstrides[k] = dt;
        } else if (c.strides[k] == n * st && c.dstrides[k] == n * dt) {
            c.shape[k] *= n;
            c.strides[k] = st;
            c.dstrides[k] = dt;
        } else {
            c.shape[c.nd] = n;
            c.strides[c.nd] = st;
            c.dstrides[c.nd++] = dt;
        }
    }
    if (c.numel == 0)
        return;
    cg__parallel_for((c.numel + ROW_COPY_BLOCK - 1) / ROW_COPY_BLOCK,
                     copy_row_blocks, &c);
}

/* dst[...] = src[...] over the same shape, converting dtypes. Both may
 * have any strides; src may also be broadcast (stride 0). */
void cg__copy_values(cg_tensor *dst, const cg_tensor *src)
{
    int64_t n = cg_tensor_numel(dst);
    if (n == 0)
        return;
    if (dst->dtype == src->dtype && cg_tensor_is_contiguous(dst) &&
        cg_tensor_is_contiguous(src)) {
        memcpy(cg__elem_ptr(dst, dst->offset), cg__elem_ptr(src, src->offset),
               (size_t)n * cg__elsize(dst));
        return;
    }
    /* a destination with overlapping elements (stride 0) is written
     * element by element, in order, as before */
    bool overlap = false;
    for (int d = 0; d < dst->ndim; d++)
        overlap |= dst->strides[d] == 0 && dst->shape[d] > 1;
    if (!overlap) {
        copy_rows(src, dst);
        return;
    }
    cg_iter a, b;
    cg__iter_init(&a, dst);
    cg__iter_init(&b, src);
    do {
        double re, im;
        cg__load(src, b.pos, &re, &im);
        cg__store(dst, a.pos, re, im);
        cg__iter_next(&b);
    } while (cg__iter_next(&a));
}

/* A contiguous copy of t in dtype dt, without autograd. */
static cg_status copy_as(const cg_tensor *t, cg_dtype dt, cg_tensor **out)
{
    cg_tensor *c;
    /* the copy writes every element */
    cg_status st = cg__tensor_new_uninit(t->shape, t->ndim, dt, &c);
    if (st != CG_OK)
        return st;
    cg__copy_values(c, t);
    *out = c;
    return CG_OK;
}

/* ---- clone: CloneBackward0 ------------------------------------------------
 */

static cg_status clone_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    (void)node;
    gx[0] = cg_tensor_retain(gy);
    return CG_OK;
}

static const cg_op_def clone_op = {"CloneBackward0", clone_backward, NULL};

cg_status cg_tensor_clone(cg_tensor *t, cg_tensor **out)
{
    if (!t)
        return cg__error_null("tensor");
    if (!out)
        return cg__error_null("out");
    cg_tensor *c;
    cg_status st = copy_as(t, t->dtype, &c);
    if (st != CG_OK)
        return st;
    if ((st = cg__record(c, &clone_op, &t, 1, 0, NULL, NULL)) != CG_OK) {
        cg_tensor_release(c);
        return st;
    }
    *out = c;
    return CG_OK;
}

cg_status cg_tensor_contiguous(cg_tensor *t, cg_tensor **out)
{
    if (!t)
        return cg__error_null("tensor");
    if (!out)
        return cg__error_null("out");
    if (cg_tensor_is_contiguous(t)) {
        *out = cg_tensor_retain(t);
        return CG_OK;
    }
    return cg_tensor_clone(t, out);
}

/* ---- to(dtype): ToCopyBackward0 -------------------------------------------
 */

typedef struct to_ctx {
    cg_dtype src_dtype;
} to_ctx;

static cg_status to_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const to_ctx *c = node->ctx;
    return copy_as(gy, c->src_dtype, &gx[0]);
}

static const cg_op_def to_op = {"ToCopyBackward0", to_backward, NULL};

cg_status cg_tensor_to(cg_tensor *t, cg_dtype dt, cg_tensor **out)
{
    if (!t)
        return cg__error_null("tensor");
    if (!out)
        return cg__error_null("out");
    cg_status st = cg__check_dtype(dt);
    if (st != CG_OK)
        return st;
    if (dt == t->dtype) {
        *out = cg_tensor_retain(t);
        return CG_OK;
    }
    cg_tensor *c;
    if ((st = copy_as(t, dt, &c)) != CG_OK)
        return st;
    to_ctx *ctx;
    if ((st = cg__record(c, &to_op, &t, 1, sizeof *ctx, NULL, (void **)&ctx)) !=
        CG_OK) {
        cg_tensor_release(c);
        return st;
    }
    if (ctx)
        ctx->src_dtype = t->dtype;
    *out = c;
    return CG_OK;
}

/* ---- in place ---------------------------------------------------------------
 */

cg_status cg_tensor_copy_(cg_tensor *dst, cg_tensor *src)
{
    if (!dst)
        return cg__error_null("dst");
    if (!src)
        return cg__error_null("src");
    /* src broadcast to dst's shape, as a plain view (copy_ records no
     * autograd history in cgrad) */
    int64_t shape[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    cg_status st =
        cg__expand_geometry(src, dst->shape, dst->ndim, shape, strides);
    cg_tensor *b;
    if (st != CG_OK || (st = cg__tensor_view_of(src, shape, strides, dst->ndim,
                                                src->offset, &b)) != CG_OK)
        return st;
    if ((st = cg__check_inplace(dst, "copy_")) != CG_OK) {
        cg_tensor_release(b);
        return st;
    }
    if (cg_dtype_is_complex(src->dtype) && !cg_dtype_is_complex(dst->dtype)) {
        cg_tensor_release(b);
        return cg__error(CG_ERR_RUNTIME,
                         "copy_: cannot copy %s values into a %s tensor "
                         "(use real() or to())",
                         cg_dtype_name(src->dtype), cg_dtype_name(dst->dtype));
    }
    /* src may overlap dst (e.g. a view of it): go through a copy then */
    cg_tensor *tmp = NULL;
    if (src->storage == dst->storage) {
        if ((st = copy_as(b, b->dtype, &tmp)) != CG_OK) {
            cg_tensor_release(b);
            return st;
        }
    }
    cg__copy_values(dst, tmp ? tmp : b);
    cg_tensor_release(tmp);
    cg_tensor_release(b);
    cg__bump_version(dst);
    return CG_OK;
}

cg_status cg_tensor_fill_(cg_tensor *t, double value)
{
    if (!t)
        return cg__error_null("tensor");
    cg_status st = cg__check_inplace(t, "fill_");
    if (st != CG_OK)
        return st;
    if (cg_tensor_numel(t) > 0) {
        cg_iter it;
        cg__iter_init(&it, t);
        do
            cg__store(t, it.pos, value, 0.0);
        while (cg__iter_next(&it));
    }
    cg__bump_version(t);
    return CG_OK;
}

cg_status cg_tensor_zero_(cg_tensor *t)
{
    return cg_tensor_fill_(t, 0.0);
}
