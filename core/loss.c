/*
 * loss.c -- the loss functions of torch.nn.functional as PyTorch 1.13 (CPU)
 * computes them: mse_loss, l1_loss, binary_cross_entropy_with_logits,
 * nll_loss and cross_entropy, each with reduction 'none' | 'mean' | 'sum',
 * and the graph PyTorch records for them, node for node.
 *
 *   mse_loss    MseLossBackward0 (input, target), after torch.broadcast_tensors
 *               (ExpandBackward0 on the operand that was broadcast)
 *                 l = (x - t)^2;  gx = norm * (x - t) * gy, gt = -gx,
 *                 norm = 2 / numel for 'mean', else 2
 *   l1_loss     composed as 1.13 composes it: AbsBackward0(SubBackward0),
 *               then MeanBackward0 / SumBackward0
 *   binary_cross_entropy_with_logits
 *               BinaryCrossEntropyWithLogitsBackward0 (input, target); with
 *               m = max(-x, 0), lw = 1 + (pw - 1) t (1 without pos_weight):
 *                 l  = w * ((1 - t) x + lw * (log(e^-m + e^(-x-m)) + m))
 *                 gx = w * gy * ((pw t + 1 - t) sigmoid(x) - pw t)
 *                 gt = w * gy * (log sigmoid(-x) - pw log sigmoid(x))
 *               (pw = 1 without pos_weight), both / numel for 'mean'
 *   nll_loss    NllLossBackward0 (1-D or 2-D input), NllLoss2DBackward0
 *               (4-D; 3-D and 5-D+ inputs are viewed as 4-D between two
 *               ViewBackward0, as nll_loss_nd does). For kept elements
 *               l = -w[t] x[t]; 'mean' divides the sum by sum(w[t]);
 *               gx[t] = -w[t] gy (/ sum(w[t]) for 'mean').
 *   cross_entropy
 *     class indices:       NllLoss(LogSoftmax(x))
 *     + label_smoothing:   (1 - ls) * nll + ls / C * smooth, where smooth
 *                          = -(logp [* w]).sum(class_dim) with ignored
 *                          entries set to 0 (IndexPutBackward0), reduced by
 *                          MaskedSelectBackward0 + MeanBackward0 ('mean'),
 *                          or by SumBackward0 / DivBackward0 (weighted mean)
 *     class probabilities: -(logp * t' [* w]) summed over the class dim
 *                          ('none') or everything ('sum'), / (numel / C)
 *                          for 'mean' (DivBackward1); t' = t (1 - ls) +
 *                          ls / C (MulBackward1, AddBackward1) when ls > 0
 *   The Tensor-with-C++-scalar products of the composite paths are
 *   recorded as MulBackward1 / DivBackward1 / AddBackward1, as ATen's
 *   C++ records them (cgrad's public *_scalar ops record Python's
 *   AddBackward0 / MulBackward0 forms).
 *
 * Targets. cgrad has no integer dtype: class indices come as a floating
 * tensor holding whole numbers, with the shape of the input minus the class
 * dimension ((N), (N, d1, ...), or () for an unbatched (C) input). A target
 * of the input's own shape holds class probabilities: PyTorch 1.13 itself
 * decides by shape first ("Assume soft targets when input and target shapes
 * are the same"), so the two never collide. An index that is neither
 * ignore_index nor a whole number is a ValueError; one outside [0, C) is
 * PyTorch's IndexError "Target 5 is out of bounds.".
 *
 * Numerics. Elementwise values are computed in double and rounded once to
 * the result dtype; reductions go through cgrad's sum / mean (a fixed
 * order) and the nll sums run sequentially in double, so results do not
 * depend on the thread count.
 *
 * Left out: PyTorch's UserWarning for broadcast mse / l1 targets (cgrad has
 * no warnings channel); the legacy size_average / reduce arguments. Mixed
 * float32 / float64 operands promote as in PyTorch; where 1.13's
 * mse_loss backward then fails ("Found dtype Double but expected Float"),
 * cgrad returns the gradients in each input's dtype.
 */
#include "ops_internal.h"

#include <string.h>

enum { RED_NONE = 0, RED_MEAN = 1, RED_SUM = 2 }; /* at::Reduction */

/* _Reduction.get_enum: NULL is the default 'mean'. */
static cg_status parse_reduction(const char *s, int *red)
{
    if (!s || strcmp(s, "mean") == 0 || strcmp(s, "elementwise_mean") == 0)
        *red = RED_MEAN;
    else if (strcmp(s, "none") == 0)
        *red = RED_NONE;
    else if (strcmp(s, "sum") == 0)
        *red = RED_SUM;
    else
        return cg__error(CG_ERR_VALUE, "%s is not a valid value for reduction",
                         s);
    return CG_OK;
}

static bool same_shape(const cg_tensor *a, const cg_tensor *b)
{
    if (a->ndim != b->ndim)
        return false;
    for (int d = 0; d < a->ndim; d++)
        if (a->shape[d] != b->shape[d])
            return false;
    return true;
}

static bool shape_eq(const int64_t *a, int na, const int64_t *b, int nb)
{
    return na == nb && (na == 0 || memcmp(a, b, (size_t)na * sizeof *a) == 0);
}

/* ======================================================================
 * Dense double buffers: what the kernels below compute on
 * ====================================================================== */

/* t broadcast to `shape` as numel doubles in row-major order, in a new
 * cg__buffer_alloc'd array (*out NULL when t is NULL). No autograd. */
static cg_status dense(const cg_tensor *t, const int64_t *shape, int ndim,
                       double **out)
{
    *out = NULL;
    if (!t)
        return CG_OK;
    int64_t n = 1, es[CG_MAX_DIMS], est[CG_MAX_DIMS];
    if (!cg__shape_numel(shape, ndim, &n))
        return cg__error(CG_ERR_RUNTIME, "internal error: bad loss shape");
    cg_status st = cg__expand_geometry(t, shape, ndim, es, est);
    if (st != CG_OK)
        return st;
    cg_tensor *v;
    if ((st = cg__tensor_view_of(t, es, est, ndim, t->offset, &v)) != CG_OK)
        return st;
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(double);
    double *buf = cg__buffer_alloc(bytes);
    if (!buf)
        st = cg__error_nomem(bytes);
    else
        st = cg_tensor_to_doubles(v, buf, n);
    cg_tensor_release(v);
    if (st != CG_OK) {
        cg__buffer_free(buf);
        return st;
    }
    *out = buf;
    return CG_OK;
}

/* A new contiguous tensor of `shape` and dtype dt holding v rounded. */
static cg_status from_doubles(const double *v, const int64_t *shape, int ndim,
                              cg_dtype dt, cg_tensor **out)
{
    cg_tensor *r;
    cg_status st = cg__tensor_new_uninit(shape, ndim, dt, &r);
    if (st != CG_OK)
        return st;
    int64_t n = cg_tensor_numel(r);
    if (dt == CG_FLOAT32) {
        float *d = cg_tensor_data(r);
        for (int64_t i = 0; i < n; i++)
            d[i] = (float)v[i];
    } else if (dt == CG_FLOAT64) {
        memcpy(cg_tensor_data(r), v, (size_t)n * sizeof *v);
    } else {
        for (int64_t i = 0; i < n; i++)
            cg__store(r, i, v[i], 0.0);
    }
    *out = r;
    return CG_OK;
}

/* apply_loss_reduction on a tensor without history: itself ('none'), its
 * mean or its sum. */
static cg_status reduce_plain(cg_tensor *e, int red, cg_tensor **out)
{
    if (red == RED_NONE) {
        *out = cg_tensor_retain(e);
        return CG_OK;
    }
    bool prev = cg_set_grad_enabled(false);
    cg_status st = red == RED_MEAN ? cg_mean(e, out) : cg_sum(e, out);
    cg_set_grad_enabled(prev);
    return st;
}

/* ======================================================================
 * Tensor-scalar ops as ATen's C++ records them: MulBackward1 (x * s),
 * DivBackward1 (x / s), AddBackward1 (x + s); gx = gy * s, gy / s, gy.
 * ====================================================================== */

enum { SC_MUL, SC_DIV, SC_ADD };

typedef struct scalar_ctx {
    int kind;
    double s;
} scalar_ctx;

static cg_status scalar_plain(int kind, cg_tensor *x, double s, cg_tensor **out)
{
    bool prev = cg_set_grad_enabled(false);
    cg_status st = kind == SC_MUL   ? cg_mul_scalar(x, s, out)
                   : kind == SC_DIV ? cg_div_scalar(x, s, out)
                                    : cg_add_scalar(x, s, out);
    cg_set_grad_enabled(prev);
    return st;
}

static cg_status scalar_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const scalar_ctx *c = node->ctx;
    /* the gradient of x + s is gy itself, handed on as a copy */
    return c->kind == SC_ADD ? scalar_plain(SC_MUL, gy, 1.0, &gx[0])
                             : scalar_plain(c->kind, gy, c->s, &gx[0]);
}

static const cg_op_def mul1_op = {"MulBackward1", scalar_backward, NULL};
static const cg_op_def div1_op = {"DivBackward1", scalar_backward, NULL};
static const cg_op_def add1_op = {"AddBackward1", scalar_backward, NULL};

static cg_status scalar_op(int kind, cg_tensor *x, double s, cg_tensor **out)
{
    cg_tensor *y;
    cg_status st = scalar_plain(kind, x, s, &y);
    if (st != CG_OK)
        return st;
    const cg_op_def *op = kind == SC_MUL   ? &mul1_op
                          : kind == SC_DIV ? &div1_op
                                           : &add1_op;
    scalar_ctx *c;
    if ((st = cg__record(y, op, &x, 1, sizeof *c, NULL, (void **)&c)) !=
        CG_OK) {
        cg_tensor_release(y);
        return st;
    }
    if (c) {
        c->kind = kind;
        c->s = s;
    }
    *out = y;
    return CG_OK;
}

/* ======================================================================
 * Masks: x.index_put_({mask}, 0) (IndexPutBackward0, edges self and
 * values) and x.masked_select(keep) (MaskedSelectBackward0). A mask is a
 * fresh float64 tensor of x's shape holding 0 or 1, saved for backward.
 * ====================================================================== */

/* A copy of x (x's dtype and shape) with the elements where mask != 0
 * set to 0 (when `zero_masked`) or, with !zero_masked, where mask == 0. */
static cg_status masked_zero(const cg_tensor *x, const cg_tensor *mask,
                             bool zero_masked, cg_tensor **out)
{
    double *v = NULL, *m = NULL;
    cg_status st = dense(x, x->shape, x->ndim, &v);
    if (st == CG_OK)
        st = dense(mask, x->shape, x->ndim, &m);
    if (st == CG_OK) {
        int64_t n = cg_tensor_numel(x);
        for (int64_t i = 0; i < n; i++)
            if ((m[i] != 0.0) == zero_masked)
                v[i] = 0.0;
        st = from_doubles(v, x->shape, x->ndim, x->dtype, out);
    }
    cg__buffer_free(v);
    cg__buffer_free(m);
    return st;
}

static cg_status index_put_backward(cg_node *node, cg_tensor *gy,
                                    cg_tensor **gx)
{
    cg_tensor *mask;
    cg_status st = cg__saved(node, 0, &mask);
    if (st != CG_OK || !cg__needs_grad(node, 0))
        return st;
    return masked_zero(gy, mask, true, &gx[0]);
}

static const cg_op_def index_put_op = {"IndexPutBackward0", index_put_backward,
                                       NULL};

/* x.index_put_({mask}, 0.0), recorded out of place. */
static cg_status zero_where(cg_tensor *x, cg_tensor *mask, cg_tensor **out)
{
    cg_tensor *y;
    cg_status st = masked_zero(x, mask, true, &y);
    if (st != CG_OK)
        return st;
    cg_tensor *ins[2] = {x, NULL};
    cg_node *node;
    if ((st = cg__record(y, &index_put_op, ins, 2, 0, &node, NULL)) != CG_OK ||
        (node && (st = cg__save(node, 0, mask, false)) != CG_OK)) {
        cg_tensor_release(y);
        return st;
    }
    *out = y;
    return CG_OK;
}

static cg_status masked_select_backward(cg_node *node, cg_tensor *gy,
                                        cg_tensor **gx)
{
    cg_tensor *keep;
    cg_status st = cg__saved(node, 0, &keep);
    if (st != CG_OK)
        return st;
    double *k = NULL, *g = NULL;
    if ((st = dense(keep, keep->shape, keep->ndim, &k)) == CG_OK &&
        (st = dense(gy, gy->shape, gy->ndim, &g)) == CG_OK) {
        int64_t n = cg_tensor_numel(keep), j = 0;
        for (int64_t i = 0; i < n; i++)
            k[i] = k[i] != 0.0 ? g[j++] : 0.0;
        st = from_doubles(k, keep->shape, keep->ndim, gy->dtype, &gx[0]);
    }
    cg__buffer_free(k);
    cg__buffer_free(g);
    return st;
}

static const cg_op_def masked_select_op = {"MaskedSelectBackward0",
                                           masked_select_backward, NULL};

/* x.masked_select(keep): the kept elements, in order, as a 1-D tensor. */
static cg_status select_where(cg_tensor *x, cg_tensor *keep, cg_tensor **out)
{
    double *v = NULL, *k = NULL;
    cg_tensor *y = NULL;
    cg_status st = dense(x, x->shape, x->ndim, &v);
    if (st == CG_OK)
        st = dense(keep, x->shape, x->ndim, &k);
    if (st == CG_OK) {
        int64_t n = cg_tensor_numel(x), j = 0;
        for (int64_t i = 0; i < n; i++)
            if (k[i] != 0.0)
                v[j++] = v[i];
        st = from_doubles(v, &j, 1, x->dtype, &y);
    }
    cg__buffer_free(v);
    cg__buffer_free(k);
    if (st != CG_OK)
        return st;
    cg_node *node;
    if ((st = cg__record(y, &masked_select_op, &x, 1, 0, &node, NULL)) !=
            CG_OK ||
        (node && (st = cg__save(node, 0, keep, false)) != CG_OK)) {
        cg_tensor_release(y);
        return st;
    }
    *out = y;
    return CG_OK;
}

/* ======================================================================
 * mse_loss
 * ====================================================================== */

typedef struct red_ctx {
    int red;
} red_ctx;

/* The common case without the dense double copies: input and target of
 * the result's dtype, contiguous, of one shape (nothing broadcast), the
 * gradient the same or a single value. The same arithmetic in double per
 * element, rounded once -- the same bits as the dense path -- in ranges on
 * the thread pool (each element written by one thread). */
enum { MSE_GRAIN = 1 << 14 }; /* elements per pool range */

typedef struct mse_job {
    const void *a, *b, *g; /* g: NULL (forward), or 1 or n values */
    bool g_scalar;
    double norm;
    void *out, *neg; /* neg: -out, or NULL */
    int64_t n;
} mse_job;

#define DEFINE_MSE(S, T)                                                       \
    static void mse_fwd_##S(void *ctx, int64_t begin, int64_t end)             \
    {                                                                          \
        const mse_job *j = ctx;                                                \
        const T *a = j->a, *b = j->b;                                          \
        T *o = j->out;                                                         \
        for (int64_t i = begin; i < end; i++) {                                \
            double d = (double)a[i] - (double)b[i];                            \
            o[i] = (T)(d * d);                                                 \
        }                                                                      \
    }                                                                          \
    static void mse_bwd_##S(void *ctx, int64_t begin, int64_t end)             \
    {                                                                          \
        const mse_job *j = ctx;                                                \
        const T *a = j->a, *b = j->b, *g = j->g;                               \
        T *o = j->out, *ng = j->neg;                                           \
        for (int64_t i = begin; i < end; i++) {                                \
            double gi = (double)g[j->g_scalar ? 0 : i];                        \
            double v = j->norm * ((double)a[i] - (double)b[i]) * gi;           \
            o[i] = (T)v;                                                       \
            if (ng)                                                            \
                ng[i] = (T)-v;                                                 \
        }                                                                      \
    }
DEFINE_MSE(f32, float)
DEFINE_MSE(f64, double)
#undef DEFINE_MSE

/* t as the fast path takes it: dtype dt, contiguous, shape (shape, nd). */
static bool mse_plain(const cg_tensor *t, cg_dtype dt, const int64_t *shape,
                      int nd)
{
    return t->dtype == dt && cg_tensor_is_contiguous(t) &&
           shape_eq(t->shape, t->ndim, shape, nd);
}

static void mse_run(mse_job *j, cg_dtype dt, bool backward)
{
    cg_parallel_body fn = dt == CG_FLOAT32
                              ? (backward ? mse_bwd_f32 : mse_fwd_f32)
                              : (backward ? mse_bwd_f64 : mse_fwd_f64);
    /* cannot fail: the body is set and the grain positive */
    (void)cg_parallel_for(0, j->n, MSE_GRAIN, fn, j);
}

static cg_status mse_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const red_ctx *c = node->ctx;
    cg_tensor *a, *b;
    cg_status st = cg__saved(node, 0, &a);
    if (st != CG_OK || (st = cg__saved(node, 1, &b)) != CG_OK)
        return st;
    double *va = NULL, *vb = NULL, *g = NULL;
    cg_tensor *ga = NULL;
    cg_dtype dt = cg__promote(a->dtype, b->dtype);
    int64_t n = cg_tensor_numel(a);
    double norm = c->red == RED_MEAN ? 2.0 / (double)n : 2.0;
    if (mse_plain(a, dt, a->shape, a->ndim) &&
        mse_plain(b, dt, a->shape, a->ndim) && gy->dtype == dt &&
        (cg_tensor_numel(gy) == 1 || mse_plain(gy, dt, a->shape, a->ndim))) {
        cg_tensor *gt = NULL;
        if ((st = cg__tensor_new_uninit(a->shape, a->ndim, dt, &ga)) != CG_OK ||
            (cg__needs_grad(node, 1) &&
             (st = cg__tensor_new_uninit(a->shape, a->ndim, dt, &gt)) !=
                 CG_OK)) {
            cg_tensor_release(ga);
            return st;
        }
        mse_job j = {.a = cg_tensor_data(a),
                     .b = cg_tensor_data(b),
                     .g = cg_tensor_data(gy),
                     .g_scalar = cg_tensor_numel(gy) == 1,
                     .norm = norm,
                     .out = cg_tensor_data(ga),
                     .neg = gt ? cg_tensor_data(gt) : NULL,
                     .n = n};
        mse_run(&j, dt, true);
        gx[1] = gt;
        if (cg__needs_grad(node, 0))
            gx[0] = ga;
        else
            cg_tensor_release(ga);
        return CG_OK;
    }
    if ((st = dense(a, a->shape, a->ndim, &va)) != CG_OK ||
        (st = dense(b, a->shape, a->ndim, &vb)) != CG_OK ||
        (st = dense(gy, a->shape, a->ndim, &g)) != CG_OK)
        goto done;
    for (int64_t i = 0; i < n; i++)
        va[i] = norm * (va[i] - vb[i]) * g[i];
    if ((st = from_doubles(va, a->shape, a->ndim, dt, &ga)) != CG_OK)
        goto done;
    if (cg__needs_grad(node, 1)) {
        for (int64_t i = 0; i < n; i++)
            va[i] = -va[i];
        if ((st = from_doubles(va, a->shape, a->ndim, dt, &gx[1])) != CG_OK)
            goto done;
    }
    if (cg__needs_grad(node, 0))
        gx[0] = cg_tensor_retain(ga);
done:
    cg_tensor_release(ga);
    cg__buffer_free(va);
    cg__buffer_free(vb);
    cg__buffer_free(g);
    return st;
}

static const cg_op_def mse_op = {"MseLossBackward0", mse_backward, NULL};

/* torch.broadcast_tensors(input, target): each expanded (ExpandBackward0)
 * only when its shape differs from the broadcast one. */
static cg_status broadcast_pair(cg_tensor *input, cg_tensor *target,
                                cg_tensor **a, cg_tensor **b)
{
    int64_t shape[CG_MAX_DIMS];
    int nd;
    cg_status st = cg__broadcast_shapes(input, target, shape, &nd);
    if (st != CG_OK)
        return st;
    *a = *b = NULL;
    if (shape_eq(input->shape, input->ndim, shape, nd))
        *a = cg_tensor_retain(input);
    else if ((st = cg_tensor_expand(input, shape, nd, a)) != CG_OK)
        return st;
    if (shape_eq(target->shape, target->ndim, shape, nd))
        *b = cg_tensor_retain(target);
    else if ((st = cg_tensor_expand(target, shape, nd, b)) != CG_OK) {
        cg_tensor_release(*a);
        return st;
    }
    return CG_OK;
}

static cg_status check_pair(const cg_tensor *input, const cg_tensor *target,
                            cg_tensor **out)
{
    if (!input)
        return cg__error_null("input");
    if (!target)
        return cg__error_null("target");
    if (!out)
        return cg__error_null("out");
    return CG_OK;
}

cg_status cg_mse_loss(cg_tensor *input, cg_tensor *target,
                      const char *reduction, cg_tensor **out)
{
    cg_status st = check_pair(input, target, out);
    if (st != CG_OK)
        return st;
    int64_t shape[CG_MAX_DIMS];
    int nd, red = RED_MEAN;
    if ((st = cg__broadcast_shapes(input, target, shape, &nd)) != CG_OK ||
        (st = parse_reduction(reduction, &red)) != CG_OK)
        return st;
    cg_dtype dt = cg__promote(input->dtype, target->dtype);
    if (cg_dtype_is_complex(dt))
        return cg__error(CG_ERR_RUNTIME, "\"mse_cpu\" not implemented for '%s'",
                         cg__dtype_scalar_name(dt));
    cg_tensor *a = NULL, *b = NULL, *e = NULL, *y = NULL;
    double *va = NULL, *vb = NULL;
    if ((st = broadcast_pair(input, target, &a, &b)) != CG_OK)
        return st;
    if (mse_plain(a, dt, shape, nd) && mse_plain(b, dt, shape, nd)) {
        if ((st = cg__tensor_new_uninit(shape, nd, dt, &e)) != CG_OK)
            goto done;
        mse_job j = {.a = cg_tensor_data(a),
                     .b = cg_tensor_data(b),
                     .out = cg_tensor_data(e),
                     .n = cg_tensor_numel(e)};
        mse_run(&j, dt, false);
    } else {
        if ((st = dense(a, shape, nd, &va)) != CG_OK ||
            (st = dense(b, shape, nd, &vb)) != CG_OK)
            goto done;
        int64_t n = cg_tensor_numel(a);
        for (int64_t i = 0; i < n; i++) {
            double d = va[i] - vb[i];
            va[i] = d * d;
        }
        if ((st = from_doubles(va, shape, nd, dt, &e)) != CG_OK)
            goto done;
    }
    if ((st = reduce_plain(e, red, &y)) != CG_OK)
        goto done;
    cg_tensor *ins[2] = {a, b};
    cg_node *node;
    red_ctx *c;
    if ((st = cg__record(y, &mse_op, ins, 2, sizeof *c, &node, (void **)&c)) !=
            CG_OK ||
        (node && ((st = cg__save(node, 0, a, false)) != CG_OK ||
                  (st = cg__save(node, 1, b, false)) != CG_OK)))
        goto done;
    if (c)
        c->red = red;
    *out = y;
    y = NULL;
done:
    cg__buffer_free(va);
    cg__buffer_free(vb);
    cg_tensor_release(y);
    cg_tensor_release(e);
    cg_tensor_release(a);
    cg_tensor_release(b);
    return st;
}

/* ======================================================================
 * l1_loss: (input - target).abs(), then mean or sum
 * ====================================================================== */

cg_status cg_l1_loss(cg_tensor *input, cg_tensor *target, const char *reduction,
                     cg_tensor **out)
{
    cg_status st = check_pair(input, target, out);
    if (st != CG_OK)
        return st;
    int64_t shape[CG_MAX_DIMS];
    int nd, red = RED_MEAN;
    if ((st = cg__broadcast_shapes(input, target, shape, &nd)) != CG_OK ||
        (st = parse_reduction(reduction, &red)) != CG_OK)
        return st;
    cg_tensor *a = NULL, *b = NULL, *d = NULL, *ad = NULL;
    if ((st = broadcast_pair(input, target, &a, &b)) != CG_OK)
        return st;
    if ((st = cg_sub(a, b, &d)) == CG_OK && (st = cg_abs(d, &ad)) == CG_OK) {
        if (red == RED_NONE)
            *out = cg_tensor_retain(ad);
        else
            st = red == RED_MEAN ? cg_mean(ad, out) : cg_sum(ad, out);
    }
    cg_tensor_release(ad);
    cg_tensor_release(d);
    cg_tensor_release(a);
    cg_tensor_release(b);
    return st;
}

/* ======================================================================
 * binary_cross_entropy_with_logits
 * ====================================================================== */

/* log(sigmoid(x)), without overflow. */
static double log_sigmoid(double x)
{
    return x >= 0 ? -log1p(exp(-x)) : x - log1p(exp(x));
}

static cg_status bce_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const red_ctx *c = node->ctx;
    cg_tensor *x, *t, *w, *pw;
    cg_status st;
    if ((st = cg__saved(node, 0, &x)) != CG_OK ||
        (st = cg__saved(node, 1, &t)) != CG_OK ||
        (st = cg__saved(node, 2, &w)) != CG_OK ||
        (st = cg__saved(node, 3, &pw)) != CG_OK)
        return st;
    const int64_t *shape = x->shape;
    int nd = x->ndim;
    int64_t n = cg_tensor_numel(x);
    cg_dtype dt = cg__promote(x->dtype, t->dtype);
    double *vx = NULL, *vt = NULL, *vw = NULL, *vp = NULL, *g = NULL, *r = NULL;
    size_t bytes = (size_t)(n > 0 ? n : 1) * sizeof(double);
    if ((st = dense(x, shape, nd, &vx)) != CG_OK ||
        (st = dense(t, shape, nd, &vt)) != CG_OK ||
        (st = dense(w, shape, nd, &vw)) != CG_OK ||
        (st = dense(pw, shape, nd, &vp)) != CG_OK ||
        (st = dense(gy, shape, nd, &g)) != CG_OK)
        goto done;
    if (!(r = cg__buffer_alloc(bytes))) {
        st = cg__error_nomem(bytes);
        goto done;
    }
    double scale = c->red == RED_MEAN ? 1.0 / (double)n : 1.0;
    for (int k = 0; k < 2; k++) {
        if (!cg__needs_grad(node, k))
            continue;
        for (int64_t i = 0; i < n; i++) {
            double p = vp ? vp[i] : 1.0, xi = vx[i], ti = vt[i], v;
            if (k == 0) {
                double s = 1.0 / (1.0 + exp(-xi));
                v = vp ? (p * ti + 1.0 - ti) * s - p * ti : s - ti;
            } else {
                v = vp ? log_sigmoid(-xi) - p * log_sigmoid(xi) : -xi;
            }
            v *= g[i];
            if (vw)
                v *= vw[i];
            r[i] = v * scale;
        }
        if ((st = from_doubles(r, shape, nd, dt, &gx[k])) != CG_OK)
            goto done;
    }
done:
    cg__buffer_free(vx);
    cg__buffer_free(vt);
    cg__buffer_free(vw);
    cg__buffer_free(vp);
    cg__buffer_free(g);
    cg__buffer_free(r);
    return st;
}

static const cg_op_def bce_op = {"BinaryCrossEntropyWithLogitsBackward0",
                                 bce_backward, NULL};

/* loss.mul_(w) / loss.add_(..) on a loss of `shape`: w must broadcast to
 * it without growing it. */
static cg_status check_inplace_operand(const int64_t *shape, int nd,
                                       const int64_t *wshape, int wnd)
{
    int64_t b[CG_MAX_DIMS];
    int bnd;
    cg_status st = cg__broadcast_dims(shape, nd, wshape, wnd, b, &bnd);
    if (st != CG_OK)
        return st;
    if (!shape_eq(shape, nd, b, bnd)) {
        char s1[CG_MAX_DIMS * 24 + 4], s2[CG_MAX_DIMS * 24 + 4];
        return cg__error(CG_ERR_RUNTIME,
                         "output with shape %s doesn't match the broadcast "
                         "shape %s",
                         cg__format_shape(shape, nd, s1, sizeof s1),
                         cg__format_shape(b, bnd, s2, sizeof s2));
    }
    return CG_OK;
}

cg_status
cg_binary_cross_entropy_with_logits(cg_tensor *input, cg_tensor *target,
                                    cg_tensor *weight, cg_tensor *pos_weight,
                                    const char *reduction, cg_tensor **out)
{
    cg_status st = check_pair(input, target, out);
    int red = RED_MEAN;
    if (st != CG_OK || (st = parse_reduction(reduction, &red)) != CG_OK)
        return st;
    if (!same_shape(input, target)) {
        char s1[CG_MAX_DIMS * 24 + 4], s2[CG_MAX_DIMS * 24 + 4];
        return cg__error(
            CG_ERR_VALUE,
            "Target size (torch.Size(%s)) must be the same as input size "
            "(torch.Size(%s))",
            cg__format_shape(target->shape, target->ndim, s1, sizeof s1),
            cg__format_shape(input->shape, input->ndim, s2, sizeof s2));
    }
    cg_dtype dt = cg__promote(input->dtype, target->dtype);
    if (cg_dtype_is_complex(dt))
        return cg__error(CG_ERR_RUNTIME,
                         "clamp is not supported for complex types");
    const int64_t *shape = input->shape;
    int nd = input->ndim;
    if (pos_weight) {
        /* (pos_weight - 1).mul(target), then added into the loss */
        int64_t b[CG_MAX_DIMS];
        int bnd;
        if ((st = cg__broadcast_shapes(pos_weight, target, b, &bnd)) != CG_OK ||
            (st = check_inplace_operand(shape, nd, b, bnd)) != CG_OK)
            return st;
    }
    if (weight && (st = check_inplace_operand(shape, nd, weight->shape,
                                              weight->ndim)) != CG_OK)
        return st;
    int64_t n = cg_tensor_numel(input);
    double *vx = NULL, *vt = NULL, *vw = NULL, *vp = NULL;
    cg_tensor *e = NULL, *y = NULL;
    if ((st = dense(input, shape, nd, &vx)) != CG_OK ||
        (st = dense(target, shape, nd, &vt)) != CG_OK ||
        (st = dense(weight, shape, nd, &vw)) != CG_OK ||
        (st = dense(pos_weight, shape, nd, &vp)) != CG_OK)
        goto done;
    for (int64_t i = 0; i < n; i++) {
        double x = vx[i], t = vt[i];
        double m = -x > 0.0 ? -x : 0.0;
        double lse = log(exp(-m) + exp(-x - m)) + m; /* log(1 + e^-x) */
        double lw = vp ? (vp[i] - 1.0) * t + 1.0 : 1.0;
        double l = (1.0 - t) * x + lw * lse;
        vx[i] = vw ? l * vw[i] : l;
    }
    if ((st = from_doubles(vx, shape, nd, dt, &e)) != CG_OK ||
        (st = reduce_plain(e, red, &y)) != CG_OK)
        goto done;
    cg_tensor *ins[2] = {input, target};
    cg_node *node;
    red_ctx *c;
    if ((st = cg__record(y, &bce_op, ins, 2, sizeof *c, &node, (void **)&c)) !=
            CG_OK ||
        (node && ((st = cg__save(node, 0, input, false)) != CG_OK ||
                  (st = cg__save(node, 1, target, false)) != CG_OK ||
                  (st = cg__save(node, 2, weight, false)) != CG_OK ||
                  (st = cg__save(node, 3, pos_weight, false)) != CG_OK)))
        goto done;
    if (c)
        c->red = red;
    *out = y;
    y = NULL;
done:
    cg__buffer_free(vx);
    cg__buffer_free(vt);
    cg__buffer_free(vw);
    cg__buffer_free(vp);
    cg_tensor_release(e);
    cg_tensor_release(y);
    return st;
}

/* ======================================================================
 * nll_loss: the kernel on an input seen as (N, C, S)
 * ====================================================================== */

typedef struct nll_ctx {
    int red;
    int64_t ignore_index;
    int64_t n, c, s;     /* N, C, S (S = H*W for the 2-D form, else 1) */
    double total_weight; /* sum of w[t] over kept targets ('mean') */
    int ndim;            /* the input's shape */
    int64_t shape[CG_MAX_DIMS];
} nll_ctx;

static cg_status nll_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const nll_ctx *c = node->ctx;
    cg_tensor *t, *w;
    cg_status st;
    if ((st = cg__saved(node, 0, &t)) != CG_OK ||
        (st = cg__saved(node, 1, &w)) != CG_OK)
        return st;
    int64_t total = c->n * c->c * c->s, m = c->n * c->s;
    if (m > cg_tensor_numel(t))
        m = cg_tensor_numel(t);
    size_t bytes = (size_t)(total > 0 ? total : 1) * sizeof(double);
    double *vt = NULL, *vw = NULL, *g = NULL,
           *r = cg__buffer_calloc((size_t)(total > 0 ? total : 1),
                                  sizeof(double));
    if (!r)
        return cg__error_nomem(bytes);
    if ((st = dense(t, t->shape, t->ndim, &vt)) != CG_OK ||
        (st = dense(w, w ? w->shape : NULL, w ? w->ndim : 0, &vw)) != CG_OK ||
        (st = dense(gy, gy->shape, gy->ndim, &g)) != CG_OK)
        goto done;
    for (int64_t i = 0; i < m; i++) {
        double ti = vt[i];
        if (ti == (double)c->ignore_index)
            continue;
        int64_t k = (int64_t)ti, b = i / c->s, sp = i % c->s;
        double gi = c->red == RED_NONE ? g[i] : g[0];
        if (c->red == RED_MEAN)
            gi /= c->total_weight;
        gi = -gi;
        r[(b * c->c + k) * c->s + sp] = vw ? vw[k] * gi : gi;
    }
    st = from_doubles(r, c->shape, c->ndim, gy->dtype, &gx[0]);
done:
    cg__buffer_free(r);
    cg__buffer_free(vt);
    cg__buffer_free(vw);
    cg__buffer_free(g);
    return st;
}

static const cg_op_def nll_op = {"NllLossBackward0", nll_backward, NULL};
static const cg_op_def nll2d_op = {"NllLoss2DBackward0", nll_backward, NULL};

/* The forward of nll_loss (two_d false: input (C) or (N, C)) or nll_loss2d
 * (input (N, C, H, W)), after the shape checks. Output for 'none': (N),
 * () or (N, H, W). */
static cg_status nll_kernel(cg_tensor *x, cg_tensor *target, cg_tensor *weight,
                            int red, int64_t ii, bool two_d, cg_tensor **out)
{
    if (weight && weight->dtype != x->dtype)
        return cg__error(CG_ERR_RUNTIME, "expected scalar type %s but found %s",
                         cg__dtype_scalar_name(x->dtype),
                         cg__dtype_scalar_name(weight->dtype));
    int64_t N = x->ndim == 1 ? 1 : x->shape[0];
    int64_t C = x->ndim == 1 ? x->shape[0] : x->shape[1];
    int64_t S = two_d ? x->shape[2] * x->shape[3] : 1;
    int64_t m = N * S;
    double *vx = NULL, *vt = NULL, *vw = NULL, *l = NULL;
    cg_tensor *y = NULL;
    cg_status st;
    if ((st = dense(x, x->shape, x->ndim, &vx)) != CG_OK)
        goto done;
    /* the 1-D kernel reads the first target element only */
    if (m > cg_tensor_numel(target))
        m = cg_tensor_numel(target);
    if ((st = dense(target, target->shape, target->ndim, &vt)) != CG_OK)
        goto done;
    if ((st = dense(weight, weight ? weight->shape : NULL,
                    weight ? weight->ndim : 0, &vw)) != CG_OK)
        goto done;
    size_t bytes = (size_t)(m > 0 ? m : 1) * sizeof(double);
    if (!(l = cg__buffer_calloc((size_t)(m > 0 ? m : 1), sizeof(double)))) {
        st = cg__error_nomem(bytes);
        goto done;
    }
    double total = 0.0, total_weight = 0.0;
    for (int64_t i = 0; i < m; i++) {
        double ti = vt[i];
        l[i] = 0.0;
        if (ti == (double)ii)
            continue;
        if (!(ti == floor(ti))) {
            st = cg__error(CG_ERR_VALUE,
                           "Target %g is not a class index: class-index "
                           "targets must hold whole numbers",
                           ti);
            goto done;
        }
        if (ti < 0 || ti >= (double)C) {
            st = cg__error(CG_ERR_INDEX, "Target %.0f is out of bounds.", ti);
            goto done;
        }
        int64_t k = (int64_t)ti, b = i / S, sp = i % S;
        double wk = vw ? vw[(size_t)k] : 1.0;
        l[i] = -wk * vx[(b * C + k) * S + sp];
        total += l[i];
        total_weight += wk;
    }
    if (red == RED_NONE) {
        int64_t oshape[3] = {N, x->ndim == 4 ? x->shape[2] : 0,
                             x->ndim == 4 ? x->shape[3] : 0};
        int ond = two_d ? 3 : x->ndim == 2 ? 1 : 0;
        st = from_doubles(l, oshape, ond, x->dtype, &y);
    } else {
        double v = red == RED_SUM ? total : total / total_weight;
        st = from_doubles(&v, NULL, 0, x->dtype, &y);
    }
    if (st != CG_OK)
        goto done;
    cg_node *node;
    nll_ctx *c;
    if ((st = cg__record(y, two_d ? &nll2d_op : &nll_op, &x, 1, sizeof *c,
                         &node, (void **)&c)) != CG_OK ||
        (node && ((st = cg__save(node, 0, target, false)) != CG_OK ||
                  (st = cg__save(node, 1, weight, false)) != CG_OK)))
        goto done;
    if (c) {
        c->red = red;
        c->ignore_index = ii;
        c->n = N;
        c->c = C;
        c->s = S;
        /* PyTorch keeps total_weight in the input's dtype */
        c->total_weight =
            x->dtype == CG_FLOAT32 ? (double)(float)total_weight : total_weight;
        c->ndim = x->ndim;
        memcpy(c->shape, x->shape, (size_t)x->ndim * sizeof *x->shape);
    }
    *out = y;
    y = NULL;
done:
    cg__buffer_free(vx);
    cg__buffer_free(vt);
    cg__buffer_free(vw);
    cg__buffer_free(l);
    cg_tensor_release(y);
    return st;
}

/* "Dimension specified as 0 but tensor has no dimensions" (t.size(d) of a
 * 0-d tensor). */
static cg_status no_dims_error(int64_t d)
{
    return cg__error(CG_ERR_INDEX,
                     "Dimension specified as %lld but tensor has no dimensions",
                     (long long)d);
}

/* nll_loss for 1-D / 2-D inputs: at::nll_loss's checks. */
static cg_status nll_1d_2d(cg_tensor *x, cg_tensor *target, cg_tensor *weight,
                           int red, int64_t ii, cg_tensor **out)
{
    char s1[CG_MAX_DIMS * 24 + 4], s2[CG_MAX_DIMS * 24 + 4];
    if (target->ndim > 1)
        return cg__error(CG_ERR_RUNTIME, "0D or 1D target tensor expected, "
                                         "multi-target not supported");
    bool no_batch_dim = x->ndim == 1 && target->ndim == 0;
    if (!no_batch_dim && (target->ndim == 0 || x->shape[0] != target->shape[0]))
        return target->ndim == 0
                   ? no_dims_error(0)
                   : cg__error(
                         CG_ERR_RUNTIME,
                         "size mismatch (got input: %s, target: %s)",
                         cg__format_shape(x->shape, x->ndim, s1, sizeof s1),
                         cg__format_shape(target->shape, target->ndim, s2,
                                          sizeof s2));
    int64_t C = x->shape[x->ndim - 1];
    if (weight && (weight->ndim != 1 || cg_tensor_numel(weight) != C))
        return cg__error(
            CG_ERR_RUNTIME,
            "weight tensor should be defined either for all %lld "
            "classes or no classes but got weight tensor of "
            "shape: %s",
            (long long)C,
            cg__format_shape(weight->shape, weight->ndim, s1, sizeof s1));
    return nll_kernel(x, target, weight, red, ii, false, out);
}

/* nll_loss2d: input (N, C, H, W), target (N, H, W). */
static cg_status nll_2d(cg_tensor *x, cg_tensor *target, cg_tensor *weight,
                        int red, int64_t ii, cg_tensor **out)
{
    char s1[CG_MAX_DIMS * 24 + 4], s2[CG_MAX_DIMS * 24 + 4];
    if (target->ndim != 3)
        return cg__error(CG_ERR_RUNTIME,
                         "only batches of spatial targets supported (3D "
                         "tensors) but got targets of dimension: %d",
                         target->ndim);
    if (weight && cg_tensor_numel(weight) != x->shape[1])
        return cg__error(CG_ERR_RUNTIME, "weight tensor should be defined "
                                         "either for all or no classes");
    if (x->shape[0] != target->shape[0] || x->shape[2] != target->shape[1] ||
        x->shape[3] != target->shape[2])
        return cg__error(
            CG_ERR_RUNTIME,
            "size mismatch (got input: %s , "
            "target: %s",
            cg__format_shape(x->shape, x->ndim, s1, sizeof s1),
            cg__format_shape(target->shape, target->ndim, s2, sizeof s2));
    return nll_kernel(x, target, weight, red, ii, true, out);
}

/* at::nll_loss_nd. */
static cg_status nll_nd(cg_tensor *x, cg_tensor *target, cg_tensor *weight,
                        int red, int64_t ii, cg_tensor **out)
{
    if (x->ndim < 1)
        return cg__error(CG_ERR_VALUE, "Expected 1 or more dimensions (got 0)");
    if (x->ndim != 1) {
        if (target->ndim == 0)
            return no_dims_error(0);
        if (x->shape[0] != target->shape[0])
            return cg__error(CG_ERR_VALUE,
                             "Expected input batch_size (%lld) to match "
                             "target batch_size (%lld).",
                             (long long)x->shape[0],
                             (long long)target->shape[0]);
    }
    if (cg_dtype_is_complex(x->dtype))
        return cg__error(CG_ERR_RUNTIME,
                         "\"nll_loss_out_frame\" not implemented for '%s'",
                         cg__dtype_scalar_name(x->dtype));
    if (x->ndim <= 2)
        return nll_1d_2d(x, target, weight, red, ii, out);
    if (x->ndim == 4)
        return nll_2d(x, target, weight, red, ii, out);
    /* 3-D or over 4-D: viewed as (N, C, 1, -1) */
    int64_t n = x->shape[0], c = x->shape[1], out_size[CG_MAX_DIMS];
    int on = x->ndim - 1;
    out_size[0] = n;
    for (int d = 2; d < x->ndim; d++)
        out_size[d - 1] = x->shape[d];
    if (!shape_eq(target->shape + 1, target->ndim - 1, x->shape + 2,
                  x->ndim - 2)) {
        char s1[CG_MAX_DIMS * 24 + 4], s2[CG_MAX_DIMS * 24 + 4];
        return cg__error(
            CG_ERR_RUNTIME, "Expected target size %s, got %s",
            cg__format_shape(out_size, on, s1, sizeof s1),
            cg__format_shape(target->shape, target->ndim, s2, sizeof s2));
    }
    bool empty_x = cg_tensor_numel(x) == 0,
         empty_t = cg_tensor_numel(target) == 0;
    int64_t xs[4] = {n, c, empty_x ? 0 : 1, empty_x ? 0 : -1};
    int64_t ts[3] = {n, empty_t ? 0 : 1, empty_t ? 0 : -1};
    cg_tensor *xc = NULL, *tc = NULL, *xv = NULL, *tv = NULL, *r = NULL;
    cg_status st;
    if ((st = cg_tensor_contiguous(x, &xc)) == CG_OK &&
        (st = cg_tensor_contiguous(target, &tc)) == CG_OK &&
        (st = cg_tensor_view(xc, xs, 4, &xv)) == CG_OK &&
        (st = cg_tensor_view(tc, ts, 3, &tv)) == CG_OK &&
        (st = nll_2d(xv, tv, weight, red, ii, &r)) == CG_OK) {
        if (red == RED_NONE)
            st = cg_tensor_view(r, out_size, on, out);
        else
            *out = cg_tensor_retain(r);
    }
    cg_tensor_release(xc);
    cg_tensor_release(tc);
    cg_tensor_release(xv);
    cg_tensor_release(tv);
    cg_tensor_release(r);
    return st;
}

cg_status cg_nll_loss(cg_tensor *input, cg_tensor *target, cg_tensor *weight,
                      int64_t ignore_index, const char *reduction,
                      cg_tensor **out)
{
    cg_status st = check_pair(input, target, out);
    int red = RED_MEAN;
    if (st != CG_OK || (st = parse_reduction(reduction, &red)) != CG_OK)
        return st;
    return nll_nd(input, target, weight, red, ignore_index, out);
}

/* ======================================================================
 * cross_entropy
 * ====================================================================== */

/* Intermediate tensors of a composite, released together. */
typedef struct temps {
    int n;
    cg_tensor *t[24];
} temps;

/* Keeps t (just made) for release; returns it. */
static cg_tensor *keep(temps *k, cg_tensor *t)
{
    k->t[k->n++] = t;
    return t;
}

static void temps_release(temps *k)
{
    for (int i = 0; i < k->n; i++)
        cg_tensor_release(k->t[i]);
}

/* weight.view(shape with C at class_dim and 1 elsewhere) (ndim dims). */
static cg_status weight_view(cg_tensor *weight, int ndim, int class_dim,
                             cg_tensor **out)
{
    int64_t shape[CG_MAX_DIMS];
    for (int d = 0; d < ndim; d++)
        shape[d] = d == class_dim ? weight->shape[0] : 1;
    return cg_tensor_view(weight, shape, ndim, out);
}

/* cross_entropy_loss_prob_target. */
static cg_status ce_prob(cg_tensor *self, cg_tensor *target, cg_tensor *weight,
                         int red, double ls, cg_tensor **out)
{
    if (self->ndim == 0)
        return no_dims_error(1);
    int class_dim = self->ndim == 1 ? 0 : 1;
    int64_t C = self->shape[class_dim];
    if (weight && (weight->ndim != 1 || cg_tensor_numel(weight) != C)) {
        char s1[CG_MAX_DIMS * 24 + 4];
        return cg__error(
            CG_ERR_RUNTIME,
            "cross_entropy: weight tensor should be defined "
            "either for all %lld classes or no classes but got "
            "weight tensor of shape: %s",
            (long long)C,
            cg__format_shape(weight->shape, weight->ndim, s1, sizeof s1));
    }
    temps k = {0};
    cg_tensor *logp, *t = target, *p, *r;
    cg_status st = cg_log_softmax(self, class_dim, &logp);
    if (st != CG_OK)
        return st;
    keep(&k, logp);
    if (ls > 0.0) {
        if (ls > 1.0) {
            st = cg__error(CG_ERR_RUNTIME,
                           "label_smoothing must be between 0.0 and 1.0. "
                           "Got: %g",
                           ls);
            goto done;
        }
        cg_tensor *t1;
        if ((st = scalar_op(SC_MUL, target, 1.0 - ls, &t1)) != CG_OK)
            goto done;
        keep(&k, t1);
        if ((st = scalar_op(SC_ADD, t1, ls / (double)C, &t)) != CG_OK)
            goto done;
        keep(&k, t);
    }
    if ((st = cg_mul(logp, t, &p)) != CG_OK)
        goto done;
    keep(&k, p);
    if (weight) {
        cg_tensor *wv, *pw;
        if (self->ndim > 1) {
            if ((st = weight_view(weight, self->ndim, class_dim, &wv)) != CG_OK)
                goto done;
        } else {
            wv = cg_tensor_retain(weight);
        }
        keep(&k, wv);
        if ((st = cg_mul(p, wv, &pw)) != CG_OK)
            goto done;
        p = keep(&k, pw);
    }
    if (red == RED_NONE) {
        int64_t d = class_dim;
        st = cg_sum_dims(p, &d, 1, false, &r);
    } else {
        st = cg_sum(p, &r);
    }
    if (st != CG_OK)
        goto done;
    keep(&k, r);
    if (red != RED_MEAN) {
        st = cg_neg(r, out);
        goto done;
    }
    cg_tensor *nr;
    if ((st = cg_neg(r, &nr)) != CG_OK)
        goto done;
    keep(&k, nr);
    int64_t numel = cg_tensor_numel(self);
    st = scalar_op(SC_DIV, nr, numel == 0 ? 0.0 : (double)(numel / C), out);
done:
    temps_release(&k);
    return st;
}

/* target == ignore_index (or !=, with `equal` false) as a float64 0/1
 * tensor of the target's shape. */
static cg_status ignore_mask(const cg_tensor *target, int64_t ii, bool equal,
                             cg_tensor **out)
{
    double *v;
    cg_status st = dense(target, target->shape, target->ndim, &v);
    if (st != CG_OK)
        return st;
    int64_t n = cg_tensor_numel(target);
    for (int64_t i = 0; i < n; i++)
        v[i] = (v[i] == (double)ii) == equal ? 1.0 : 0.0;
    st = from_doubles(v, target->shape, target->ndim, CG_FLOAT64, out);
    cg__buffer_free(v);
    return st;
}

/* weight.gather(0, target.masked_select(~ignore_mask)).sum(), 0-d. */
static cg_status kept_weight_sum(const cg_tensor *target,
                                 const cg_tensor *weight, int64_t ii,
                                 cg_tensor **out)
{
    double *vt = NULL, *vw = NULL;
    cg_status st = dense(target, target->shape, target->ndim, &vt);
    if (st == CG_OK)
        st = dense(weight, weight->shape, weight->ndim, &vw);
    if (st == CG_OK) {
        double s = 0.0;
        int64_t n = cg_tensor_numel(target);
        for (int64_t i = 0; i < n; i++)
            if (vt[i] != (double)ii) /* bounds were checked by nll_loss */
                s += vw[(int64_t)vt[i]];
        st = from_doubles(&s, NULL, 0, weight->dtype, out);
    }
    cg__buffer_free(vt);
    cg__buffer_free(vw);
    return st;
}

/* cross_entropy_loss_label_smoothing (class indices, 0 < ls <= 1). */
static cg_status ce_smooth(cg_tensor *self, cg_tensor *target,
                           cg_tensor *weight, int red, int64_t ii, double ls,
                           cg_tensor **out)
{
    int class_dim = self->ndim == 1 ? 0 : 1;
    temps k = {0};
    cg_tensor *logp, *nll, *mask, *s, *sl, *sl0, *ret, *a, *b;
    cg_status st = cg_log_softmax(self, class_dim, &logp);
    if (st != CG_OK)
        return st;
    keep(&k, logp);
    if ((st = nll_nd(logp, target, weight, red, ii, &nll)) != CG_OK)
        goto done;
    keep(&k, nll);
    int64_t C = logp->shape[class_dim], d = class_dim;
    if ((st = ignore_mask(target, ii, true, &mask)) != CG_OK)
        goto done;
    keep(&k, mask);
    cg_tensor *src = logp;
    if (weight) {
        cg_tensor *wv, *p;
        if ((st = weight_view(weight, self->ndim, class_dim, &wv)) != CG_OK)
            goto done;
        keep(&k, wv);
        if ((st = cg_mul(logp, wv, &p)) != CG_OK)
            goto done;
        src = keep(&k, p);
    }
    if ((st = cg_sum_dims(src, &d, 1, false, &s)) != CG_OK)
        goto done;
    keep(&k, s);
    if ((st = cg_neg(s, &sl)) != CG_OK)
        goto done;
    keep(&k, sl);
    if ((st = zero_where(sl, mask, &sl0)) != CG_OK)
        goto done;
    keep(&k, sl0);
    if (red == RED_NONE) {
        ret = sl0;
    } else if (red == RED_SUM) {
        if ((st = cg_sum(sl0, &ret)) != CG_OK)
            goto done;
        keep(&k, ret);
    } else if (weight) {
        cg_tensor *num, *den;
        if ((st = cg_sum(sl0, &num)) != CG_OK)
            goto done;
        keep(&k, num);
        if ((st = kept_weight_sum(target, weight, ii, &den)) != CG_OK)
            goto done;
        keep(&k, den);
        if ((st = cg_div(num, den, &ret)) != CG_OK)
            goto done;
        keep(&k, ret);
    } else {
        cg_tensor *kept, *sel;
        if ((st = ignore_mask(target, ii, false, &kept)) != CG_OK)
            goto done;
        keep(&k, kept);
        if ((st = select_where(sl0, kept, &sel)) != CG_OK)
            goto done;
        keep(&k, sel);
        if ((st = cg_mean(sel, &ret)) != CG_OK)
            goto done;
        keep(&k, ret);
    }
    if ((st = scalar_op(SC_MUL, nll, 1.0 - ls, &a)) != CG_OK)
        goto done;
    keep(&k, a);
    if ((st = scalar_op(SC_MUL, ret, ls / (double)C, &b)) != CG_OK)
        goto done;
    keep(&k, b);
    st = cg_add(a, b, out);
done:
    temps_release(&k);
    return st;
}

cg_status cg_cross_entropy(cg_tensor *input, cg_tensor *target,
                           cg_tensor *weight, int64_t ignore_index,
                           const char *reduction, double label_smoothing,
                           cg_tensor **out)
{
    cg_status st = check_pair(input, target, out);
    int red = RED_MEAN;
    if (st != CG_OK || (st = parse_reduction(reduction, &red)) != CG_OK)
        return st;
    if (same_shape(input, target)) {
        /* class probabilities */
        if (ignore_index >= 0)
            return cg__error(CG_ERR_RUNTIME, "ignore_index is not supported "
                                             "for floating point target");
        return ce_prob(input, target, weight, red, label_smoothing, out);
    }
    if (label_smoothing > 0.0) {
        if (label_smoothing > 1.0)
            return cg__error(CG_ERR_RUNTIME,
                             "label_smoothing must be between 0.0 and 1.0. "
                             "Got: %g",
                             label_smoothing);
        return ce_smooth(input, target, weight, red, ignore_index,
                         label_smoothing, out);
    }
    cg_tensor *logp;
    if ((st = cg_log_softmax(input, input->ndim == 1 ? 0 : 1, &logp)) != CG_OK)
        return st;
    st = nll_nd(logp, target, weight, red, ignore_index, out);
    cg_tensor_release(logp);
    return st;
}
