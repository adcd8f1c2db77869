/*
 * batch_norm.c -- F.batch_norm (PyTorch 1.13, CPU): the functional batch
 * normalisation nn.BatchNorm1d/2d/3d call, real dtypes, forward beside
 * backward.
 *
 * x (N, C, *) ; per channel c over its n = N * prod(*) values:
 *   training (batch statistics):
 *     mean = sum(x) / n, var = sum((x - mean)^2) / n,
 *     invstd = 1 / sqrt(var + eps), and, when given, in place:
 *       running_mean = momentum * mean + (1 - momentum) * running_mean
 *       running_var  = momentum * var * n / (n - 1) + (1 - momentum) *
 * running_var evaluation: mean = running_mean, invstd = 1 / sqrt(running_var +
 * eps). y = (x - mean) * invstd * weight + bias   (weight 1, bias 0 when NULL)
 * Sums run in double, channel by channel, and each value is rounded once.
 * A channel's sums take its runs of S values (one per sample) in order,
 * each run into BN_LANES running sums (value s into lane s % BN_LANES:
 * one chain of additions would wait on the adder's latency), the lanes
 * added as a fixed tree at the end: a fixed order, whatever the thread
 * count.
 *
 * Backward, NativeBatchNormBackward0 with edges (input, weight, bias); with
 * xhat = (x - mean) * invstd, g = gy summed over the channel:
 *   gbias = sum(gy), gweight = sum(gy * xhat),
 *   training: gx = weight * invstd * (gy - sum(gy)/n - xhat * sum(gy * xhat)/n)
 *   evaluation: gx = gy * weight * invstd.
 * The node keeps input and weight as saved tensors and mean/invstd of the
 * forward as plain data (PyTorch saves the running statistics by reference
 * and its kernels update them without bumping their version, so a backward
 * after a later training step would use the newer ones; cgrad uses the
 * statistics the forward used).
 *
 * An empty input takes PyTorch's shortcut: input.clone() * weight[0] +
 * bias[0] (CloneBackward0, MulBackward0, AddBackward0), statistics
 * untouched. Checks and messages follow F.batch_norm and 1.13's
 * _batch_norm_impl_index / batch_norm_cpu, in order. Channels are
 * independent: the pool computes whole channels, so the thread count
 * cannot change a bit. On any error nothing changes, running statistics
 * included.
 */
#include "autograd_internal.h"
#include "threadpool_internal.h"

#include <math.h>
#include <string.h>

/* ======================================================================
 * Kernels
 * ====================================================================== */

typedef struct bn_job {
    int64_t N, C, S;  /* x viewed as (N, C, S) */
    bool batch_stats; /* training: compute mean/var from x */
    double eps;
    const void *x;         /* contiguous, the input's dtype */
    const double *w, *b;   /* C entries, or NULL (1 / 0) */
    double *mean, *invstd; /* C entries: in (eval) or out (training) */
    double *var_sum;       /* C entries, out (training) */
    void *y;               /* forward output */
    /* backward */
    const void *gy;
    void *gx;        /* NULL: not needed */
    double *gw, *gb; /* C entries each */
} bn_job;

enum { BN_LANES = 8 };

/* The lanes' total: ((l0 + l1) + (l2 + l3)) + ((l4 + l5) + (l6 + l7)). */
static double lanes_total(double *l)
{
    for (int w = 1; w < BN_LANES; w *= 2)
        for (int k = 0; k < BN_LANES; k += 2 * w)
            l[k] += l[k + w];
    return l[0];
}

/* STMT for s_ = 0 .. n - 1 with k_ = s_ % BN_LANES, written so that k_ is
 * a constant in the unrolled body (the lanes stay in registers). */
#define BN_RUN(n, STMT)                                                        \
    do {                                                                       \
        int64_t b_ = 0;                                                        \
        for (; b_ + BN_LANES <= (n); b_ += BN_LANES)                           \
            for (int k_ = 0; k_ < BN_LANES; k_++) {                            \
                const int64_t s_ = b_ + k_;                                    \
                STMT;                                                          \
            }                                                                  \
        for (int k_ = 0; b_ + k_ < (n); k_++) {                                \
            const int64_t s_ = b_ + k_;                                        \
            STMT;                                                              \
        }                                                                      \
    } while (0)

#define DEFINE_BN(SFX, T)                                                      \
    static void bn_fwd_##SFX(void *ctx, int64_t c0, int64_t c1)                \
    {                                                                          \
        bn_job *j = ctx;                                                       \
        const T *x = j->x;                                                     \
        T *y = j->y;                                                           \
        double n = (double)(j->N * j->S);                                      \
        for (int64_t c = c0; c < c1; c++) {                                    \
            if (j->batch_stats) {                                              \
                double l[BN_LANES] = {0}, q[BN_LANES] = {0};                   \
                for (int64_t i = 0; i < j->N; i++) {                           \
                    const T *r = x + (i * j->C + c) * j->S;                    \
                    BN_RUN(j->S, l[k_] += r[s_]);                              \
                }                                                              \
                double mean = lanes_total(l) / n;                              \
                for (int64_t i = 0; i < j->N; i++) {                           \
                    const T *r = x + (i * j->C + c) * j->S;                    \
                    BN_RUN(j->S, {                                             \
                        double dv = r[s_] - mean;                              \
                        q[k_] += dv * dv;                                      \
                    });                                                        \
                }                                                              \
                double vs = lanes_total(q);                                    \
                j->mean[c] = mean;                                             \
                j->var_sum[c] = vs;                                            \
                j->invstd[c] = 1.0 / sqrt(vs / n + j->eps);                    \
            }                                                                  \
            double m = j->mean[c], is = j->invstd[c];                          \
            double w = j->w ? j->w[c] : 1.0, b = j->b ? j->b[c] : 0.0;         \
            for (int64_t i = 0; i < j->N; i++)                                 \
                for (int64_t s = 0; s < j->S; s++) {                           \
                    int64_t at = (i * j->C + c) * j->S + s;                    \
                    y[at] = (T)(((double)x[at] - m) * is * w + b);             \
                }                                                              \
        }                                                                      \
    }                                                                          \
    static void bn_bwd_##SFX(void *ctx, int64_t c0, int64_t c1)                \
    {                                                                          \
        bn_job *j = ctx;                                                       \
        const T *x = j->x, *gy = j->gy;                                        \
        T *gx = j->gx;                                                         \
        double n = (double)(j->N * j->S);                                      \
        for (int64_t c = c0; c < c1; c++) {                                    \
            double m = j->mean[c], is = j->invstd[c];                          \
            double w = j->w ? j->w[c] : 1.0;                                   \
            double lg[BN_LANES] = {0}, lgx[BN_LANES] = {0};                    \
            for (int64_t i = 0; i < j->N; i++) {                               \
                const int64_t at = (i * j->C + c) * j->S;                      \
                const T *rg = gy + at, *rx = x + at;                           \
                BN_RUN(j->S, {                                                 \
                    lg[k_] += rg[s_];                                          \
                    lgx[k_] += (double)rg[s_] * (((double)rx[s_] - m) * is);   \
                });                                                            \
            }                                                                  \
            double sg = lanes_total(lg), sgx = lanes_total(lgx);               \
            j->gb[c] = sg;                                                     \
            j->gw[c] = sgx;                                                    \
            if (!gx)                                                           \
                continue;                                                      \
            for (int64_t i = 0; i < j->N; i++)                                 \
                for (int64_t s = 0; s < j->S; s++) {                           \
                    int64_t at = (i * j->C + c) * j->S + s;                    \
                    double g = gy[at];                                         \
                    if (j->batch_stats) {                                      \
                        double xh = ((double)x[at] - m) * is;                  \
                        g = g - sg / n - xh * sgx / n;                         \
                    }                                                          \
                    gx[at] = (T)(g * is * w);                                  \
                }                                                              \
        }                                                                      \
    }

DEFINE_BN(f32, float)
DEFINE_BN(f64, double)
#undef DEFINE_BN

/* ======================================================================
 * Helpers
 * ====================================================================== */

/* t as a contiguous tensor without autograd. */
static cg_status dense(cg_tensor *t, cg_tensor **out)
{
    bool prev = cg_set_grad_enabled(false);
    cg_status st = cg_tensor_contiguous(t, out);
    cg_set_grad_enabled(prev);
    return st;
}

/* A new 1-D tensor of dtype dt holding v[0..n). */
static cg_status from_doubles(const double *v, int64_t n, cg_dtype dt,
                              cg_tensor **out)
{
    cg_tensor *t;
    cg_status st = cg__tensor_new(&n, 1, dt, &t);
    if (st != CG_OK)
        return st;
    for (int64_t i = 0; i < n; i++)
        cg__store(t, t->offset + i, v[i], 0.0);
    *out = t;
    return CG_OK;
}

/* ======================================================================
 * Backward
 * ====================================================================== */

typedef struct bn_ctx {
    int64_t C;
    bool batch_stats;
    double *stats; /* 2C: mean, invstd; owned */
} bn_ctx;

static void bn_ctx_release(void *ctx)
{
    cg__free(((bn_ctx *)ctx)->stats);
}

static cg_status bn_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const bn_ctx *c = node->ctx;
    cg_tensor *x, *w, *xc = NULL, *gyc = NULL, *r = NULL;
    cg_tensor *gw_t = NULL, *gb_t = NULL;
    double *buf = NULL;
    cg_status st;
    if ((st = cg__saved(node, 0, &x)) != CG_OK ||
        (st = cg__saved(node, 1, &w)) != CG_OK)
        return st;
    size_t bytes = (size_t)(3 * c->C + 1) * sizeof(double);
    if (!(buf = cg__malloc(bytes)))
        return cg__error_nomem(bytes);
    double *wv = w ? buf + 2 * c->C : NULL;
    if (w && (st = cg_tensor_to_doubles(w, wv, c->C)) != CG_OK)
        goto fail;
    if ((st = dense(x, &xc)) != CG_OK || (st = dense(gy, &gyc)) != CG_OK)
        goto fail;
    if (cg__needs_grad(node, 0) && /* every element is written below */
        (st = cg__tensor_new_uninit(x->shape, x->ndim, x->dtype, &r)) != CG_OK)
        goto fail;
    bn_job j = {.N = x->shape[0],
                .C = c->C,
                .S = c->C > 0 ? cg_tensor_numel(x) / x->shape[0] / c->C : 0,
                .batch_stats = c->batch_stats,
                .x = cg_tensor_data(xc),
                .w = wv,
                .mean = c->stats,
                .invstd = c->stats + c->C,
                .gy = cg_tensor_data(gyc),
                .gx = r ? cg_tensor_data(r) : NULL,
                .gw = buf,
                .gb = buf + c->C};
    cg__parallel_for(c->C, x->dtype == CG_FLOAT64 ? bn_bwd_f64 : bn_bwd_f32,
                     &j);
    if (cg__needs_grad(node, 1) &&
        (st = from_doubles(j.gw, c->C, x->dtype, &gw_t)) != CG_OK)
        goto fail;
    if (cg__needs_grad(node, 2)) {
        /* every parameter has x's dtype (checked in forward) */
        if ((st = from_doubles(j.gb, c->C, x->dtype, &gb_t)) != CG_OK)
            goto fail;
    }
    cg_tensor_release(xc);
    cg_tensor_release(gyc);
    cg__free(buf);
    gx[0] = r;
    gx[1] = gw_t;
    gx[2] = gb_t;
    return CG_OK;
fail:
    cg_tensor_release(xc);
    cg_tensor_release(gyc);
    cg_tensor_release(r);
    cg_tensor_release(gw_t);
    cg__free(buf);
    return st;
}

static const cg_op_def batch_norm_op = {"NativeBatchNormBackward0", bn_backward,
                                        bn_ctx_release};

/* ======================================================================
 * Checks
 * ====================================================================== */

static cg_status check_numel(const char *what, const cg_tensor *t, int64_t C)
{
    if (t && cg_tensor_numel(t) != C)
        return cg__error(CG_ERR_RUNTIME,
                         "%s should contain %lld elements not %lld", what,
                         (long long)C, (long long)cg_tensor_numel(t));
    return CG_OK;
}

/* batch_norm_cpu's dtype checks: the first parameter given decides
 * whether the call is "mixed" (then only bfloat16 input with float
 * parameters would pass); otherwise every parameter must match. */
static cg_status check_dtypes(const cg_tensor *x, cg_tensor *const *params)
{
    const cg_tensor *first = NULL;
    for (int i = 0; i < 4 && !first; i++)
        first = params[i];
    if (first && first->dtype != x->dtype)
        return cg__error(CG_ERR_RUNTIME,
                         x->dtype == CG_FLOAT32
                             ? "mixed dtype (CPU): expect parameter to have "
                               "scalar type of Float"
                             : "mixed dtype (CPU): expect input to have "
                               "scalar type of BFloat16");
    if (cg_dtype_is_complex(x->dtype))
        return cg__error(CG_ERR_RUNTIME,
                         "\"batch_norm\" not implemented for '%s'",
                         cg__dtype_scalar_name(x->dtype));
    for (int i = 0; i < 4; i++)
        if (params[i] && params[i]->dtype != x->dtype)
            return cg__error(CG_ERR_RUNTIME,
                             "expected scalar type %s but found %s",
                             cg__dtype_scalar_name(x->dtype),
                             cg__dtype_scalar_name(params[i]->dtype));
    return CG_OK;
}

/* _batch_norm_impl_index's shortcut for an empty input:
 * input.clone() * weight[0] + bias[0]. */
static cg_status empty_input(cg_tensor *x, cg_tensor *w, cg_tensor *b,
                             cg_tensor **out)
{
    cg_tensor *y = NULL, *e = NULL, *t = NULL;
    cg_status st = cg_tensor_clone(x, &y);
    if (st != CG_OK)
        return st;
    cg_tensor *const params[2] = {w, b};
    for (int i = 0; i < 2; i++) {
        if (!params[i])
            continue;
        if ((st = cg_tensor_select(params[i], 0, 0, &e)) != CG_OK ||
            (st = (i == 0 ? cg_mul : cg_add)(y, e, &t)) != CG_OK) {
            cg_tensor_release(e);
            cg_tensor_release(y);
            return st;
        }
        cg_tensor_release(e);
        cg_tensor_release(y);
        e = NULL;
        y = t;
    }
    *out = y;
    return CG_OK;
}

/* ======================================================================
 * The op
 * ====================================================================== */

cg_status cg_batch_norm(cg_tensor *input, cg_tensor *running_mean,
                        cg_tensor *running_var, cg_tensor *weight,
                        cg_tensor *bias, bool training, double momentum,
                        double eps, cg_tensor **out)
{
    if (!input)
        return cg__error_null("input");
    if (!out)
        return cg__error_null("out");
    cg_tensor *x = input;
    if (training) { /* F.batch_norm's _verify_batch_size */
        if (x->ndim == 0)
            return cg__error(CG_ERR_INDEX, "tuple index out of range");
        /* size_prods == 1, with Python's unbounded ints: sizes are >= 0,
         * so the product is 1 exactly when each factor is (multiplying
         * could overflow: N = 2**40, C = 0, D = 2**40) */
        bool one_value = x->shape[0] == 1;
        for (int i = 2; i < x->ndim; i++)
            one_value = one_value && x->shape[i] == 1;
        if (one_value) {
            char shape[CG_MAX_DIMS * 24];
            return cg__error(
                CG_ERR_VALUE,
                "Expected more than 1 value per channel when "
                "training, got input size torch.Size(%s)",
                cg__format_shape(x->shape, x->ndim, shape, sizeof shape));
        }
    }
    int64_t dim1;
    cg_status st = cg__wrap_dim(1, x->ndim, &dim1);
    if (st != CG_OK)
        return st;
    int64_t C = x->shape[1];
    if (cg_tensor_numel(x) == 0)
        return empty_input(x, weight, bias, out);
    if (running_mean) {
        if ((st = check_numel("running_mean", running_mean, C)) != CG_OK)
            return st;
    } else if (!training) {
        return cg__error(CG_ERR_RUNTIME,
                         "running_mean must be defined in evaluation mode");
    }
    if (running_var) {
        if ((st = check_numel("running_var", running_var, C)) != CG_OK)
            return st;
    } else if (!training) {
        return cg__error(CG_ERR_RUNTIME,
                         "running_var must be defined in evaluation mode");
    }
    if ((st = check_numel("weight", weight, C)) != CG_OK ||
        (st = check_numel("bias", bias, C)) != CG_OK)
        return st;
    cg_tensor *const params[4] = {weight, bias, running_mean, running_var};
    if ((st = check_dtypes(x, params)) != CG_OK)
        return st;

    /* allocate */
    bool batch_stats = training;
    cg_tensor *y = NULL, *xc = NULL;
    size_t bytes = (size_t)(5 * C + 1) * sizeof(double);
    double *stats = cg__malloc(bytes); /* mean, invstd, var_sum, w, b */
    if (!stats)
        return cg__error_nomem(bytes);
    double *var_sum = stats + 2 * C, *wv = stats + 3 * C, *bv = stats + 4 * C;
    /* every element of y is written below */
    if ((st = cg__tensor_new_uninit(x->shape, x->ndim, x->dtype, &y)) !=
            CG_OK ||
        (st = dense(x, &xc)) != CG_OK ||
        (weight && (st = cg_tensor_to_doubles(weight, wv, C)) != CG_OK) ||
        (bias && (st = cg_tensor_to_doubles(bias, bv, C)) != CG_OK))
        goto fail;
    if (!batch_stats) {
        if ((st = cg_tensor_to_doubles(running_mean, stats, C)) != CG_OK ||
            (st = cg_tensor_to_doubles(running_var, stats + C, C)) != CG_OK)
            goto fail;
        for (int64_t c = 0; c < C; c++)
            stats[C + c] = 1.0 / sqrt(stats[C + c] + eps);
    }
    bn_job j = {.N = x->shape[0],
                .C = C,
                .S = cg_tensor_numel(x) / x->shape[0] / C,
                .batch_stats = batch_stats,
                .eps = eps,
                .x = cg_tensor_data(xc),
                .w = weight ? wv : NULL,
                .b = bias ? bv : NULL,
                .mean = stats,
                .invstd = stats + C,
                .var_sum = var_sum,
                .y = cg_tensor_data(y)};
    cg__parallel_for(C, x->dtype == CG_FLOAT64 ? bn_fwd_f64 : bn_fwd_f32, &j);

    cg_node *node;
    bn_ctx *ctx;
    cg_tensor *const edges[3] = {x, weight, bias};
    if ((st = cg__record(y, &batch_norm_op, edges, 3, sizeof *ctx, &node,
                         (void **)&ctx)) != CG_OK)
        goto fail;
    if (node) {
        ctx->C = C;
        ctx->batch_stats = batch_stats;
        ctx->stats = stats; /* the node owns mean and invstd now */
        if ((st = cg__save(node, 0, x, false)) != CG_OK ||
            (st = cg__save(node, 1, weight, false)) != CG_OK) {
            stats = NULL;
            goto fail;
        }
    }

    /* commit: the running statistics, in place (nothing can fail now) */
    if (batch_stats) {
        double n = (double)(j.N * j.S);
        cg_tensor *const run[2] = {running_mean, running_var};
        for (int r = 0; r < 2; r++) {
            if (!run[r])
                continue;
            cg_iter it;
            cg__iter_init(&it, run[r]);
            for (int64_t c = 0; c < C; c++, cg__iter_next(&it)) {
                double old, im;
                cg__load(run[r], it.pos, &old, &im);
                double v = r == 0 ? j.mean[c] : var_sum[c] / (n - 1);
                cg__store(run[r], it.pos, momentum * v + (1 - momentum) * old,
                          0.0);
            }
            cg__bump_version(run[r]);
        }
    }
    if (!node)
        cg__free(stats);
    cg_tensor_release(xc);
    *out = y;
    return CG_OK;
fail:
    cg__free(stats);
    cg_tensor_release(xc);
    cg_tensor_release(y);
    return st;
}
