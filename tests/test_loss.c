/* test_loss.c -- the losses: F.mse_loss, F.l1_loss,
 * F.binary_cross_entropy_with_logits, F.nll_loss, F.cross_entropy
 * (core/loss.c) and nn.MSELoss, L1Loss, CrossEntropyLoss, BCEWithLogitsLoss
 * (nn/loss.c), held to PyTorch 1.13's values, gradients, grad_fn chains,
 * messages and reprs (tests/data/nn/loss/gen_loss.py). */
#include "cgrad_nn.h"
#include "fixture.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* float32: PyTorch computes elementwise terms in float and sums in its own
 * order, cgrad rounds double results once; 1e-5 relative covers both.
 * float64: the two differ only by summation order. */
#define TOL_F32 1e-5
#define TOL_F64 1e-12

static const char *const reductions[3] = {"none", "mean", "sum"};

/* ======================================================================
 * PyTorch fixtures: every row through the functional API and again
 * through the modules
 * ====================================================================== */

typedef struct row_args {
    const char *op, *red;
    int64_t ii;
    double ls;
    cg_tensor *x, *t, *w, *pw;
} row_args;

static row_args read_row(const tu_fixture_case *c, cg_tensor *const *in, int n)
{
    row_args a = {0};
    a.op = tu_fixture_field(c, "op");
    int64_t red = tu_fixture_arg_int(c, "red");
    ck_assert(red >= 0 && red <= 2);
    a.red = reductions[red];
    a.ii = tu_fixture_arg_int(c, "ii");
    a.ls = tu_fixture_number(c, "ls");
    int64_t w = tu_fixture_arg_int(c, "w"), pw = tu_fixture_arg_int(c, "pw");
    ck_assert_int_eq(n, 2 + (int)w + (int)pw);
    a.x = in[0];
    a.t = in[1];
    a.w = w ? in[2] : NULL;
    a.pw = pw ? in[2 + w] : NULL;
    return a;
}

static cg_status functional_op(const tu_fixture_case *c, cg_tensor *const *in,
                               int n, cg_tensor **out)
{
    row_args a = read_row(c, in, n);
    if (strcmp(a.op, "mse") == 0)
        return cg_mse_loss(a.x, a.t, a.red, out);
    if (strcmp(a.op, "l1") == 0)
        return cg_l1_loss(a.x, a.t, a.red, out);
    if (strcmp(a.op, "bce") == 0)
        return cg_binary_cross_entropy_with_logits(a.x, a.t, a.w, a.pw, a.red,
                                                   out);
    if (strcmp(a.op, "nll") == 0)
        return cg_nll_loss(a.x, a.t, a.w, a.ii, a.red, out);
    ck_assert_str_eq(a.op, "ce");
    return cg_cross_entropy(a.x, a.t, a.w, a.ii, a.red, a.ls, out);
}

/* The same rows through nn modules built with the row's arguments
 * (F.nll_loss has no module here and stays functional). */
static cg_status module_op(const tu_fixture_case *c, cg_tensor *const *in,
                           int n, cg_tensor **out)
{
    row_args a = read_row(c, in, n);
    cg_module *m = NULL;
    if (strcmp(a.op, "mse") == 0) {
        tu_ok(cg_mse_loss_new(a.red, &m));
    } else if (strcmp(a.op, "l1") == 0) {
        tu_ok(cg_l1_loss_new(a.red, &m));
    } else if (strcmp(a.op, "bce") == 0) {
        cg_bce_with_logits_loss_opts o = cg_bce_with_logits_loss_options();
        o.weight = a.w;
        o.pos_weight = a.pw;
        o.reduction = a.red;
        tu_ok(cg_bce_with_logits_loss_new(&o, &m));
    } else if (strcmp(a.op, "ce") == 0) {
        cg_cross_entropy_loss_opts o = cg_cross_entropy_loss_options();
        o.weight = a.w;
        o.ignore_index = a.ii;
        o.reduction = a.red;
        o.label_smoothing = a.ls;
        tu_ok(cg_cross_entropy_loss_new(&o, &m));
    } else {
        return functional_op(c, in, n, out);
    }
    cg_status st = cg_loss_forward(m, a.x, a.t, out);
    cg_module_free(m);
    return st;
}

static const tu_fixture_set torch_cases = {"nn/loss", "loss", functional_op,
                                           TOL_F32, TOL_F64};
static const tu_fixture_set module_cases = {"nn/loss", "loss", module_op,
                                            TOL_F32, TOL_F64};

/* ======================================================================
 * gradcheck in float64: every loss and reduction, w.r.t. the input and
 * (where PyTorch differentiates it) the target
 * ====================================================================== */

typedef enum gc_kind {
    GC_MSE,
    GC_MSE_BCAST,
    GC_L1,
    GC_BCE,
    GC_BCE_W_PW,
    GC_CE,
    GC_CE_W_II,
    GC_CE_LS,
    GC_CE_LS_W_II,
    GC_CE_3D,
    GC_CE_4D_W_LS,
    GC_CE_UNBATCHED,
    GC_CE_PROB,
    GC_CE_PROB_W_LS,
    GC_NLL_4D,
    GC_COUNT
} gc_kind;

typedef struct gc_case {
    gc_kind kind;
    const char *red;
    cg_tensor *t;  /* a fixed target (when not an input) */
    cg_tensor *w;  /* weight or NULL */
    cg_tensor *pw; /* pos_weight or NULL */
} gc_case;

static cg_status gc_fn(cg_tensor *const *in, int n, cg_tensor **out, void *u)
{
    const gc_case *g = u;
    cg_tensor *x = in[0], *t = n > 1 ? in[1] : g->t;
    switch (g->kind) {
    case GC_MSE:
    case GC_MSE_BCAST:
        return cg_mse_loss(x, t, g->red, out);
    case GC_L1:
        return cg_l1_loss(x, t, g->red, out);
    case GC_BCE:
    case GC_BCE_W_PW:
        return cg_binary_cross_entropy_with_logits(x, t, g->w, g->pw, g->red,
                                                   out);
    case GC_CE_W_II:
        return cg_cross_entropy(x, t, g->w, 1, g->red, 0.0, out);
    case GC_CE_LS:
        return cg_cross_entropy(x, t, NULL, -100, g->red, 0.3, out);
    case GC_CE_LS_W_II:
    case GC_CE_4D_W_LS:
        return cg_cross_entropy(x, t, g->w, -100, g->red, 0.2, out);
    case GC_CE_PROB_W_LS:
        return cg_cross_entropy(x, t, g->w, -100, g->red, 0.1, out);
    case GC_NLL_4D:
        return cg_nll_loss(x, t, NULL, -100, g->red, out);
    default:
        return cg_cross_entropy(x, t, g->w, -100, g->red, 0.0, out);
    }
}

static cg_tensor *lit(const char *text)
{
    cg_tensor *t = NULL;
    tu_ok(cg_tensor_literal_dtype(text, CG_FLOAT64, &t));
    return t;
}

static cg_tensor *randn64(const int64_t *shape, int ndim)
{
    cg_tensor *t = NULL;
    tu_ok(cg_randn(shape, ndim, CG_FLOAT64, NULL, &t));
    return t;
}

static cg_tensor *rand64(const int64_t *shape, int ndim)
{
    cg_tensor *t = NULL;
    tu_ok(cg_rand(shape, ndim, CG_FLOAT64, NULL, &t));
    return t;
}

/* The softmax of a random (shape) tensor along dim: probabilities. */
static cg_tensor *probs64(const int64_t *shape, int ndim, int64_t dim)
{
    cg_tensor *r = randn64(shape, ndim), *p = NULL;
    tu_ok(cg_softmax(r, dim, &p));
    cg_tensor_release(r);
    return p;
}

START_TEST(test_gradcheck)
{
    gc_kind kind = (gc_kind)(_i / 3);
    gc_case g = {kind, reductions[_i % 3], NULL, NULL, NULL};
    cg_tensor *in[2] = {NULL, NULL};
    int n = 1;
    cg_manual_seed(100 + (uint64_t)_i);
    int64_t s34[] = {3, 4}, s4[] = {4}, s234[] = {2, 3, 4};
    switch (kind) {
    case GC_MSE:
    case GC_L1:
        in[0] = randn64(s34, 2);
        in[1] = randn64(s34, 2);
        n = 2;
        break;
    case GC_MSE_BCAST:
        in[0] = randn64(s4, 1);
        in[1] = randn64(s34, 2);
        n = 2;
        break;
    case GC_BCE:
        in[0] = randn64(s34, 2);
        in[1] = rand64(s34, 2);
        n = 2;
        break;
    case GC_BCE_W_PW:
        in[0] = randn64(s234, 3);
        in[1] = rand64(s234, 3);
        n = 2;
        g.w = lit("[[0.5], [1.5], [2.0]]");
        g.pw = lit("[0.3, 1.0, 2.5, 4.0]");
        break;
    case GC_CE:
        in[0] = randn64(s34, 2);
        g.t = lit("[3, 0, 2]");
        break;
    case GC_CE_W_II:
        in[0] = randn64(s34, 2);
        g.t = lit("[3, 1, 2]");
        g.w = lit("[0.2, 1.0, 2.0, 0.7]");
        break;
    case GC_CE_LS:
        in[0] = randn64(s34, 2);
        g.t = lit("[1, -100, 2]");
        break;
    case GC_CE_LS_W_II:
        in[0] = randn64(s34, 2);
        g.t = lit("[1, -100, 3]");
        g.w = lit("[0.2, 1.0, 2.0, 0.7]");
        break;
    case GC_CE_3D:
        in[0] = randn64(s234, 3);
        g.t = lit("[[0, 2, 1, -100], [2, 2, 0, 1]]");
        break;
    case GC_CE_4D_W_LS: {
        int64_t s[] = {2, 3, 2, 2};
        in[0] = randn64(s, 4);
        g.t = lit("[[[0, 2], [1, -100]], [[2, 1], [0, 0]]]");
        g.w = lit("[0.5, 1.0, 3.0]");
        break;
    }
    case GC_CE_UNBATCHED:
        in[0] = randn64(s4, 1);
        g.t = lit("2");
        break;
    case GC_CE_PROB:
        in[0] = randn64(s234, 3);
        in[1] = probs64(s234, 3, 1);
        n = 2;
        break;
    case GC_CE_PROB_W_LS:
        in[0] = randn64(s34, 2);
        in[1] = probs64(s34, 2, 1);
        n = 2;
        g.w = lit("[0.2, 1.0, 2.0, 0.7]");
        break;
    case GC_NLL_4D: {
        int64_t s[] = {2, 3, 1, 2};
        in[0] = randn64(s, 4);
        g.t = lit("[[[0, 2]], [[1, 1]]]");
        break;
    }
    default:
        ck_abort_msg("no such case %d", (int)kind);
    }
    for (int i = 0; i < n; i++)
        tu_ok(cg_tensor_requires_grad_(in[i], true));
    cg_gradcheck_result r;
    tu_ok(cg_gradcheck(gc_fn, &g, in, n, NULL, &r));
    ck_assert_msg(r.passed, "case %d %s: %s", (int)kind, g.red, r.message);
    for (int i = 0; i < n; i++)
        cg_tensor_release(in[i]);
    cg_tensor_release(g.t);
    cg_tensor_release(g.w);
    cg_tensor_release(g.pw);
}
END_TEST

/* ======================================================================
 * Errors: PyTorch's class and message (errors.tsv), nothing changed
 * ====================================================================== */

/* The tensors an error case made, with copies to prove they did not
 * change. */
typedef struct err_ctx {
    int n;
    cg_tensor *t[8], *copy[8];
} err_ctx;

static cg_tensor *mk(err_ctx *e, const char *text, cg_dtype dt)
{
    cg_tensor *t = NULL, *c = NULL;
    tu_ok(cg_tensor_literal_dtype(text, dt, &t));
    tu_ok(cg_tensor_clone(t, &c));
    ck_assert_int_lt(e->n, 8);
    e->t[e->n] = t;
    e->copy[e->n++] = c;
    return t;
}

/* A float32 tensor of `shape` filled with 0.25 * (i % 7) - 0.5. */
static cg_tensor *mkshape(err_ctx *e, const int64_t *shape, int ndim,
                          cg_dtype dt)
{
    cg_tensor *t = NULL, *c = NULL;
    tu_ok(cg_zeros(shape, ndim, dt, &t));
    int64_t n = cg_tensor_numel(t);
    for (int64_t i = 0; i < n; i++) {
        int64_t idx[CG_MAX_DIMS], r = i;
        for (int d = ndim - 1; d >= 0; d--) {
            idx[d] = r % shape[d];
            r /= shape[d];
        }
        tu_ok(cg_tensor_set(t, idx, 0.25 * (double)(i % 7) - 0.5, 0.0));
    }
    tu_ok(cg_tensor_clone(t, &c));
    ck_assert_int_lt(e->n, 8);
    e->t[e->n] = t;
    e->copy[e->n++] = c;
    return t;
}

#define F32 CG_FLOAT32
#define SHAPE(...) ((const int64_t[]){__VA_ARGS__})
#define NDIM(...) ((int)(sizeof((const int64_t[]){__VA_ARGS__}) / 8))
#define T(...) mkshape(e, SHAPE(__VA_ARGS__), NDIM(__VA_ARGS__), F32)
#define T0() mkshape(e, NULL, 0, F32)
#define L(text) mk(e, text, F32)

typedef cg_status (*err_fn)(err_ctx *e, cg_tensor **out);

static cg_status e_mse_shape(err_ctx *e, cg_tensor **o)
{
    return cg_mse_loss(T(2, 3), T(2, 4), NULL, o);
}
static cg_status e_mse_reduction(err_ctx *e, cg_tensor **o)
{
    return cg_mse_loss(T(2, 3), T(2, 3), "bad", o);
}
static cg_status e_mse_shape_before_reduction(err_ctx *e, cg_tensor **o)
{
    return cg_mse_loss(T(2, 3), T(2, 4), "bad", o);
}
static cg_status e_mse_complex(err_ctx *e, cg_tensor **o)
{
    return cg_mse_loss(mk(e, "[[1+1j, 2, 3], [4, 5, 6]]", CG_COMPLEX64),
                       mk(e, "[[1, 2j, 3], [4, 5, 6]]", CG_COMPLEX64), NULL, o);
}
static cg_status e_l1_shape(err_ctx *e, cg_tensor **o)
{
    return cg_l1_loss(T(2, 3), T(2, 4), NULL, o);
}
static cg_status e_l1_reduction(err_ctx *e, cg_tensor **o)
{
    return cg_l1_loss(T(3), T(3), "elementwise", o);
}
static cg_status e_bce_size(err_ctx *e, cg_tensor **o)
{
    return cg_binary_cross_entropy_with_logits(T(3), T(2), NULL, NULL, NULL, o);
}
static cg_status e_bce_size_2d(err_ctx *e, cg_tensor **o)
{
    return cg_binary_cross_entropy_with_logits(T(2, 3), T(3), NULL, NULL, NULL,
                                               o);
}
static cg_status e_bce_reduction_first(err_ctx *e, cg_tensor **o)
{
    return cg_binary_cross_entropy_with_logits(T(3), T(2), NULL, NULL, "Mean",
                                               o);
}
static cg_status e_bce_weight(err_ctx *e, cg_tensor **o)
{
    return cg_binary_cross_entropy_with_logits(T(2, 3), T(2, 3), T(4), NULL,
                                               NULL, o);
}
static cg_status e_bce_weight_big(err_ctx *e, cg_tensor **o)
{
    return cg_binary_cross_entropy_with_logits(T(3), T(3), T(2, 3), NULL, NULL,
                                               o);
}
static cg_status e_bce_pos_weight(err_ctx *e, cg_tensor **o)
{
    return cg_binary_cross_entropy_with_logits(T(2, 3), T(2, 3), NULL, T(4),
                                               NULL, o);
}
static cg_status e_bce_pos_weight_big(err_ctx *e, cg_tensor **o)
{
    return cg_binary_cross_entropy_with_logits(T(3), T(3), NULL, T(2, 3), NULL,
                                               o);
}
static cg_status e_bce_complex(err_ctx *e, cg_tensor **o)
{
    return cg_binary_cross_entropy_with_logits(
        mk(e, "[1j, 2, 3]", CG_COMPLEX64), mk(e, "[1, 2, 3j]", CG_COMPLEX64),
        NULL, NULL, NULL, o);
}
static cg_status e_ce_batch(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(3, 4), L("[0, 1]"), NULL, -100, NULL, 0.0, o);
}
static cg_status e_ce_out_of_bounds(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(3, 4), L("[0, 1, 5]"), NULL, -100, NULL, 0.0, o);
}
static cg_status e_ce_negative(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(3, 4), L("[0, -1, 2]"), NULL, -100, NULL, 0.0, o);
}
static cg_status e_ce_out_of_bounds_4d(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(2, 4, 2, 2),
                            L("[[[7, 7], [7, 7]], [[7, 7], [7, 7]]]"), NULL,
                            -100, NULL, 0.0, o);
}
static cg_status e_ce_out_of_bounds_3d(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(2, 4, 2), L("[[7, 7], [7, 7]]"), NULL, -100, NULL,
                            0.0, o);
}
static cg_status e_ce_out_of_bounds_unbatched(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(4), L("9"), NULL, -100, NULL, 0.0, o);
}
static cg_status e_ce_out_of_bounds_ls(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(3, 4), L("[0, 1, 9]"), NULL, -100, NULL, 0.1, o);
}
static cg_status e_ce_reduction(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(3, 4), L("[0, 1, 2]"), NULL, -100, "bad", 0.0, o);
}
static cg_status e_ce_reduction_first(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(3, 4), L("[0, 1]"), NULL, -100, "bad", 0.0, o);
}
static cg_status e_ce_weight(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(3, 4), L("[0, 1, 2]"), T(3), -100, NULL, 0.0, o);
}
static cg_status e_ce_weight_2d(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(3, 4), L("[0, 1, 2]"), T(2, 2), -100, NULL, 0.0,
                            o);
}
static cg_status e_ce_weight_4d(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(2, 4, 2, 2),
                            L("[[[0, 0], [0, 0]], [[0, 0], [0, 0]]]"), T(3),
                            -100, NULL, 0.0, o);
}
static cg_status e_ce_weight_prob(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(3, 4), T(3, 4), T(3), -100, NULL, 0.0, o);
}
static cg_status e_ce_weight_dtype(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(3, 4), L("[0, 1, 2]"),
                            mk(e, "[1, 1, 1, 1]", CG_FLOAT64), -100, NULL, 0.0,
                            o);
}
static cg_status e_ce_label_smoothing(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(3, 4), L("[0, 1, 2]"), NULL, -100, NULL, 1.5, o);
}
static cg_status e_ce_label_smoothing_prob(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(3, 4), T(3, 4), NULL, -100, NULL, 1.5, o);
}
static cg_status e_ce_prob_ignore_index(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(3, 4), T(3, 4), NULL, 1, NULL, 0.0, o);
}
static cg_status e_ce_target_size_3d(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(2, 3, 5), T(2, 4), NULL, -100, NULL, 0.0, o);
}
static cg_status e_ce_target_size_4d(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(2, 3, 5, 5), T(2, 4, 5), NULL, -100, NULL, 0.0,
                            o);
}
static cg_status e_ce_target_dim_4d(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(2, 3, 5, 5), T(2, 5), NULL, -100, NULL, 0.0, o);
}
static cg_status e_ce_target_dim_2d(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(2, 3), T(2, 4, 1), NULL, -100, NULL, 0.0, o);
}
static cg_status e_ce_size_unbatched(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T(4), L("[1, 2]"), NULL, -100, NULL, 0.0, o);
}
static cg_status e_ce_0d_prob(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T0(), T0(), NULL, -100, NULL, 0.0, o);
}
static cg_status e_ce_0d(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(T0(), L("[1, 2]"), NULL, -100, NULL, 0.0, o);
}
static cg_status e_ce_complex(err_ctx *e, cg_tensor **o)
{
    return cg_cross_entropy(
        mk(e, "[[1j, 2, 3, 4], [1, 2, 3, 4], [1, 2, 3, 4]]", CG_COMPLEX64),
        L("[0, 1, 2]"), NULL, -100, NULL, 0.0, o);
}

/* A loss module made by name, for the module rows. */
static cg_module *loss_module(const char *type, const char *reduction)
{
    cg_module *m = NULL;
    if (strcmp(type, "mse") == 0) {
        tu_ok(cg_mse_loss_new(reduction, &m));
    } else if (strcmp(type, "l1") == 0) {
        tu_ok(cg_l1_loss_new(reduction, &m));
    } else {
        cg_cross_entropy_loss_opts o = cg_cross_entropy_loss_options();
        o.reduction = reduction;
        tu_ok(cg_cross_entropy_loss_new(&o, &m));
    }
    return m;
}

static cg_status e_module_one_argument(err_ctx *e, cg_tensor **o)
{
    cg_module *m = loss_module("mse", NULL);
    cg_status st = cg_module_forward(m, T(3), o);
    cg_module_free(m);
    return st;
}
static cg_status e_module_one_argument_ce(err_ctx *e, cg_tensor **o)
{
    cg_module *m = loss_module("ce", NULL);
    cg_status st = cg_module_forward(m, T(3), o);
    cg_module_free(m);
    return st;
}
static cg_status e_module_bad_reduction(err_ctx *e, cg_tensor **o)
{
    cg_module *m = loss_module("l1", "bad");
    cg_status st = cg_loss_forward(m, T(3), T(3), o);
    cg_module_free(m);
    return st;
}
static cg_status e_module_two_arguments(err_ctx *e, cg_tensor **o)
{
    cg_module *m = NULL;
    tu_ok(cg_relu_new(&m));
    cg_status st = cg_loss_forward(m, T(3), T(3), o);
    cg_module_free(m);
    return st;
}

static const struct {
    const char *id;
    err_fn fn;
} error_cases[] = {
#define E(name)                                                                \
    {                                                                          \
#name, e_##name                                                        \
    }
    E(mse_shape),
    E(mse_reduction),
    E(mse_shape_before_reduction),
    E(mse_complex),
    E(l1_shape),
    E(l1_reduction),
    E(bce_size),
    E(bce_size_2d),
    E(bce_reduction_first),
    E(bce_weight),
    E(bce_weight_big),
    E(bce_pos_weight),
    E(bce_pos_weight_big),
    E(bce_complex),
    E(ce_batch),
    E(ce_out_of_bounds),
    E(ce_negative),
    E(ce_out_of_bounds_4d),
    E(ce_out_of_bounds_3d),
    E(ce_out_of_bounds_unbatched),
    E(ce_out_of_bounds_ls),
    E(ce_reduction),
    E(ce_reduction_first),
    E(ce_weight),
    E(ce_weight_2d),
    E(ce_weight_4d),
    E(ce_weight_prob),
    E(ce_weight_dtype),
    E(ce_label_smoothing),
    E(ce_label_smoothing_prob),
    E(ce_prob_ignore_index),
    E(ce_target_size_3d),
    E(ce_target_size_4d),
    E(ce_target_dim_4d),
    E(ce_target_dim_2d),
    E(ce_size_unbatched),
    E(ce_0d_prob),
    E(ce_0d),
    E(ce_complex),
    E(module_one_argument),
    E(module_one_argument_ce),
    E(module_bad_reduction),
    E(module_two_arguments),
#undef E
};
enum { N_ERROR_CASES = sizeof error_cases / sizeof *error_cases };

/* The row of `id` in errors.tsv: its exception and message (malloc'd
 * line, cut in place; free *line). */
static void expected_error(const char *id, char **line, const char **exc,
                           const char **msg)
{
    char *text = tu_read_text(tu_data_path("nn/loss/errors.tsv"));
    ck_assert_msg(text != NULL, "cannot read nn/loss/errors.tsv");
    size_t len = strlen(id);
    for (char *s = strchr(text, '\n'); s && s[1]; s = strchr(s + 1, '\n')) {
        char *row = s + 1;
        if (strncmp(row, id, len) != 0 || row[len] != '\t')
            continue;
        char *end = strchr(row, '\n');
        if (end)
            *end = '\0';
        char *tab = strchr(row + len + 1, '\t');
        ck_assert_ptr_nonnull(tab);
        *tab = '\0';
        *exc = row + len + 1;
        *msg = tab + 1;
        *line = text;
        return;
    }
    ck_abort_msg("errors.tsv has no row %s", id);
}

START_TEST(test_errors)
{
    const char *id = error_cases[_i].id;
    char *text;
    const char *exc, *msg;
    expected_error(id, &text, &exc, &msg);
    err_ctx e = {0};
    cg_tensor *sentinel = (cg_tensor *)&e, *out = sentinel;
    cg_status st = error_cases[_i].fn(&e, &out);
    ck_assert_msg(st != CG_OK, "%s: no error", id);
    ck_assert_msg(strcmp(cg_status_name(st), exc) == 0, "%s: %s, expected %s",
                  id, cg_status_name(st), exc);
    ck_assert_msg(strcmp(cg_last_error(), msg) == 0,
                  "%s: message\n  \"%s\", expected\n  \"%s\"", id,
                  cg_last_error(), msg);
    ck_assert_msg(out == sentinel, "%s: out was written", id);
    for (int i = 0; i < e.n; i++) {
        tu_assert_bitwise(e.t[i], e.copy[i], id);
        ck_assert_ptr_null(cg_tensor_grad_fn(e.t[i]));
        ck_assert_ptr_null(cg_tensor_grad(e.t[i]));
        cg_tensor_release(e.t[i]);
        cg_tensor_release(e.copy[i]);
    }
    free(text);
}
END_TEST

/* Every row of errors.tsv has a C case (and the other way round, by the
 * loop above). */
START_TEST(test_errors_table_complete)
{
    char *text = tu_read_text(tu_data_path("nn/loss/errors.tsv"));
    ck_assert_ptr_nonnull(text);
    int rows = 0;
    for (char *s = strchr(text, '\n'); s && s[1]; s = strchr(s + 1, '\n')) {
        char *row = s + 1, *tab = strchr(row, '\t');
        ck_assert_ptr_nonnull(tab);
        bool found = false;
        for (int i = 0; i < N_ERROR_CASES; i++)
            found = found ||
                    (strlen(error_cases[i].id) == (size_t)(tab - row) &&
                     strncmp(row, error_cases[i].id, (size_t)(tab - row)) == 0);
        ck_assert_msg(found, "errors.tsv row %.*s has no C case",
                      (int)(tab - row), row);
        rows++;
    }
    ck_assert_int_eq(rows, N_ERROR_CASES);
    free(text);
}
END_TEST

/* cgrad's own checks: class indices held in a floating tensor must be
 * whole numbers; NULL arguments. */
START_TEST(test_errors_cgrad)
{
    err_ctx ec = {0}, *e = &ec;
    cg_tensor *x = T(3, 4), *out = NULL;
    tu_fails(cg_cross_entropy(x, L("[0, 1.5, 2]"), NULL, -100, NULL, 0.0, &out),
             CG_ERR_VALUE,
             "Target 1.5 is not a class index: class-index targets must "
             "hold whole numbers");
    tu_fails(cg_cross_entropy(x, L("[0, nan, 2]"), NULL, -100, NULL, 0.1, &out),
             CG_ERR_VALUE,
             "Target nan is not a class index: class-index targets must "
             "hold whole numbers");
    /* the first bad index in order decides */
    tu_fails(cg_nll_loss(x, L("[0, 7, 2.5]"), NULL, -100, "sum", &out),
             CG_ERR_INDEX, "Target 7 is out of bounds.");
    ck_assert_ptr_null(out);
    tu_fails(cg_mse_loss(NULL, x, NULL, &out), CG_ERR_MISUSE,
             "input must not be NULL");
    tu_fails(cg_cross_entropy(x, NULL, NULL, -100, NULL, 0.0, &out),
             CG_ERR_MISUSE, "target must not be NULL");
    tu_fails(cg_l1_loss(x, x, NULL, NULL), CG_ERR_MISUSE,
             "out must not be NULL");
    tu_fails(cg_loss_forward(NULL, x, x, &out), CG_ERR_MISUSE,
             "module must not be NULL");
    tu_fails(cg_cross_entropy_loss_new(NULL, NULL), CG_ERR_MISUSE,
             "opts must not be NULL");
    for (int i = 0; i < ec.n; i++) {
        tu_assert_bitwise(ec.t[i], ec.copy[i], "argument");
        cg_tensor_release(ec.t[i]);
        cg_tensor_release(ec.copy[i]);
    }
}
END_TEST

/* ======================================================================
 * Modules: repr and attributes (modules.tsv)
 * ====================================================================== */

static cg_module *module_by_id(const char *id, cg_tensor **keep)
{
    cg_module *m = NULL;
    *keep = NULL;
    if (strcmp(id, "mse") == 0)
        return loss_module("mse", NULL);
    if (strcmp(id, "l1_sum") == 0)
        return loss_module("l1", "sum");
    if (strcmp(id, "ce") == 0)
        return loss_module("ce", NULL);
    if (strcmp(id, "ce_opts") == 0) {
        tu_ok(cg_tensor_literal("[1., 2., 0.5]", keep));
        cg_cross_entropy_loss_opts o = cg_cross_entropy_loss_options();
        o.weight = *keep;
        o.ignore_index = 2;
        o.reduction = "none";
        o.label_smoothing = 0.05;
        tu_ok(cg_cross_entropy_loss_new(&o, &m));
        return m;
    }
    cg_bce_with_logits_loss_opts o = cg_bce_with_logits_loss_options();
    if (strcmp(id, "bce_pw") == 0) {
        tu_ok(cg_tensor_literal("[2., 3.]", keep));
        o.pos_weight = *keep;
        o.reduction = "sum";
    } else {
        ck_assert_str_eq(id, "bce");
    }
    tu_ok(cg_bce_with_logits_loss_new(&o, &m));
    return m;
}

START_TEST(test_module_reprs)
{
    char *text = tu_read_text(tu_data_path("nn/loss/modules.tsv"));
    ck_assert_ptr_nonnull(text);
    int checked = 0;
    for (char *line = strchr(text, '\n'); line && line[1];) {
        char *row = line + 1, *end = strchr(row, '\n');
        line = end;
        if (end)
            *end = '\0';
        char *t1 = strchr(row, '\t'), *t2 = t1 ? strchr(t1 + 1, '\t') : NULL;
        ck_assert_ptr_nonnull(t2);
        *t1 = *t2 = '\0';
        const char *id = row, *attr = t1 + 1, *want = t2 + 1;
        cg_tensor *kept;
        cg_module *m = module_by_id(id, &kept);
        char got[512];
        if (strcmp(attr, "-") == 0) {
            tu_ok(cg_module_repr(m, got, sizeof got, NULL));
        } else {
            cg_status st = cg_module_getattr(m, attr, got, sizeof got, NULL);
            if (st != CG_OK)
                snprintf(got, sizeof got, "%s: %s", cg_status_name(st),
                         cg_last_error());
        }
        ck_assert_msg(strcmp(got, want) == 0, "%s.%s: \"%s\", expected \"%s\"",
                      id, attr, got, want);
        cg_module_free(m);
        cg_tensor_release(kept);
        checked++;
    }
    ck_assert_int_eq(checked, 6 * 7);
    free(text);
}
END_TEST

/* The module reads its weight buffer when it runs: a buffer replaced
 * after construction is the one used, and the module holds the caller's
 * tensor itself, not a copy. */
START_TEST(test_module_weight_buffer)
{
    cg_tensor *x = NULL, *t = NULL, *w = NULL, *w2 = NULL, *a = NULL, *b = NULL,
              *c = NULL;
    tu_ok(cg_tensor_literal("[[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]", &x));
    tu_ok(cg_tensor_literal("[2, 0]", &t));
    tu_ok(cg_tensor_literal("[1.0, 1.0, 1.0]", &w));
    tu_ok(cg_tensor_literal("[0.0, 3.0, 1.0]", &w2));
    cg_cross_entropy_loss_opts o = cg_cross_entropy_loss_options();
    o.weight = w;
    o.reduction = "sum";
    cg_module *m = NULL;
    tu_ok(cg_cross_entropy_loss_new(&o, &m));
    ck_assert_ptr_eq(cg_module_get_buffer(m, "weight"), w);
    tu_ok(cg_loss_forward(m, x, t, &a));
    tu_ok(cg_cross_entropy(x, t, NULL, -100, "sum", 0.0, &b));
    tu_assert_bitwise(a, b, "weight of ones");
    tu_ok(cg_module_register_buffer(m, "weight", w2, true));
    cg_tensor_release(a);
    tu_ok(cg_loss_forward(m, x, t, &a));
    tu_ok(cg_cross_entropy(x, t, w2, -100, "sum", 0.0, &c));
    tu_assert_bitwise(a, c, "replaced weight");
    /* and it differs from the unweighted loss */
    double v1, v2;
    tu_ok(cg_tensor_item(a, &v1, NULL));
    tu_ok(cg_tensor_item(b, &v2, NULL));
    ck_assert_msg(fabs(v1 - v2) > 0.1, "the new weight was not used");
    cg_module_free(m);
    cg_tensor_release(x);
    cg_tensor_release(t);
    cg_tensor_release(w);
    cg_tensor_release(w2);
    cg_tensor_release(a);
    cg_tensor_release(b);
    cg_tensor_release(c);
}
END_TEST

/* ======================================================================
 * Threads: 1 and 8 threads give the same bits
 * ====================================================================== */

/* Every loss on large inputs, forward and backward; the results and
 * gradients, in order, into res (caller releases). */
static int run_all(cg_tensor **res)
{
    int n = 0;
    int64_t s[] = {64, 300}, s4[] = {4, 10, 30, 40}, s3[] = {4, 30, 40};
    cg_manual_seed(7);
    cg_tensor *x = NULL, *t = NULL, *p = NULL, *x4 = NULL, *t4 = NULL,
              *ti = NULL;
    tu_ok(cg_randn(s, 2, CG_FLOAT32, NULL, &x));
    tu_ok(cg_rand(s, 2, CG_FLOAT32, NULL, &t));
    tu_ok(cg_randn(s4, 4, CG_FLOAT32, NULL, &x4));
    tu_ok(cg_rand(s3, 3, CG_FLOAT32, NULL, &t4));
    /* class indices: floor(10 * u) */
    {
        cg_tensor *u = NULL;
        tu_ok(cg_mul_scalar(t4, 10.0, &u));
        int64_t numel = cg_tensor_numel(u);
        double *v = malloc((size_t)numel * sizeof *v);
        ck_assert_ptr_nonnull(v);
        tu_ok(cg_tensor_to_doubles(u, v, numel));
        for (int64_t i = 0; i < numel; i++)
            v[i] = floor(v[i]);
        tu_ok(cg_tensor_from_data(v, s3, 3, CG_FLOAT64, &ti));
        free(v);
        cg_tensor_release(u);
    }
    tu_ok(cg_softmax(t, 1, &p));
    tu_ok(cg_tensor_requires_grad_(x, true));
    tu_ok(cg_tensor_requires_grad_(x4, true));
    for (int r = 0; r < 3; r++) {
        cg_tensor *y[4] = {NULL};
        tu_ok(cg_mse_loss(x, t, reductions[r], &y[0]));
        tu_ok(cg_binary_cross_entropy_with_logits(x, t, NULL, NULL,
                                                  reductions[r], &y[1]));
        tu_ok(cg_cross_entropy(x, p, NULL, -100, reductions[r], 0.1, &y[2]));
        tu_ok(cg_cross_entropy(x4, ti, NULL, 3, reductions[r], 0.2, &y[3]));
        for (int k = 0; k < 4; k++) {
            cg_tensor *ones = NULL;
            tu_ok(cg_ones(cg_tensor_shape(y[k]), cg_tensor_dim(y[k]),
                          CG_FLOAT32, &ones));
            tu_ok(cg_tensor_backward(y[k], ones, false));
            cg_tensor_release(ones);
            res[n++] = y[k];
        }
        tu_ok(cg_tensor_clone(cg_tensor_grad(x), &res[n++]));
        tu_ok(cg_tensor_clone(cg_tensor_grad(x4), &res[n++]));
    }
    cg_tensor_release(x);
    cg_tensor_release(t);
    cg_tensor_release(p);
    cg_tensor_release(x4);
    cg_tensor_release(t4);
    cg_tensor_release(ti);
    return n;
}

/* mse_loss takes contiguous same-shape operands without its dense double
 * copies, on the thread pool: the same bits as the general path, which a
 * transposed view of the same values takes. Values ('none'), the loss
 * ('mean', 'sum') and both gradients (gy random: full for 'none', a
 * scalar otherwise), float32 and float64, with more elements than one
 * pool block. */
static void mse_pair(cg_dtype dt, int red, bool fast, cg_tensor **out)
{
    /* out: [loss, grad input, grad target] */
    const int64_t shape[3] = {9, 40, 50};
    cg_tensor *x = NULL, *t = NULL, *xb = NULL, *tb = NULL, *xv = NULL,
              *tv = NULL, *y = NULL, *gy = NULL;
    cg_manual_seed(11);
    tu_ok(cg_randn(shape, 3, dt, NULL, &x));
    tu_ok(cg_randn(shape, 3, dt, NULL, &t));
    cg_tensor *xin = x, *tin = t;
    if (!fast) {
        /* the same values through a transposed view of a transposed copy */
        cg_tensor *xt = NULL, *tt = NULL;
        tu_ok(cg_tensor_transpose(x, 0, 2, &xt));
        tu_ok(cg_tensor_transpose(t, 0, 2, &tt));
        tu_ok(cg_tensor_contiguous(xt, &xb));
        tu_ok(cg_tensor_contiguous(tt, &tb));
        cg_tensor_release(xt);
        cg_tensor_release(tt);
        tu_ok(cg_tensor_requires_grad_(xb, true));
        tu_ok(cg_tensor_requires_grad_(tb, true));
        tu_ok(cg_tensor_transpose(xb, 0, 2, &xv));
        tu_ok(cg_tensor_transpose(tb, 0, 2, &tv));
        ck_assert(!cg_tensor_is_contiguous(xv));
        xin = xv;
        tin = tv;
    } else {
        tu_ok(cg_tensor_requires_grad_(x, true));
        tu_ok(cg_tensor_requires_grad_(t, true));
    }
    tu_ok(cg_mse_loss(xin, tin, reductions[red], &y));
    /* a gy other than 1 (full for 'none', a scalar otherwise) */
    tu_ok(cg_randn(cg_tensor_shape(y), cg_tensor_dim(y), dt, NULL, &gy));
    tu_ok(cg_tensor_backward(y, gy, false));
    tu_ok(cg_tensor_detach(y, &out[0]));
    if (fast) {
        tu_ok(cg_tensor_clone(cg_tensor_grad(x), &out[1]));
        tu_ok(cg_tensor_clone(cg_tensor_grad(t), &out[2]));
    } else {
        cg_tensor *g = NULL;
        tu_ok(cg_tensor_transpose(cg_tensor_grad(xb), 0, 2, &g));
        tu_ok(cg_tensor_contiguous(g, &out[1]));
        cg_tensor_release(g);
        tu_ok(cg_tensor_transpose(cg_tensor_grad(tb), 0, 2, &g));
        tu_ok(cg_tensor_contiguous(g, &out[2]));
        cg_tensor_release(g);
    }
    cg_tensor *all[] = {x, t, xb, tb, xv, tv, y, gy};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        cg_tensor_release(all[i]);
}

START_TEST(test_mse_contiguous_path)
{
    const cg_dtype dts[2] = {CG_FLOAT32, CG_FLOAT64};
    for (int d = 0; d < 2; d++)
        for (int red = 0; red < 3; red++) {
            cg_tensor *fast[3] = {NULL, NULL, NULL};
            cg_tensor *slow[3] = {NULL, NULL, NULL};
            mse_pair(dts[d], red, true, fast);
            mse_pair(dts[d], red, false, slow);
            const char *what[3] = {"loss", "grad input", "grad target"};
            for (int k = 0; k < 3; k++) {
                tu_assert_bitwise(fast[k], slow[k], what[k]);
                cg_tensor_release(fast[k]);
                cg_tensor_release(slow[k]);
            }
        }
}
END_TEST

START_TEST(test_threads)
{
    cg_tensor *a[32], *b[32];
    tu_ok(cg_set_num_threads(1));
    int n = run_all(a);
    tu_ok(cg_set_num_threads(8));
    int m = run_all(b);
    ck_assert_int_eq(n, m);
    for (int i = 0; i < n; i++) {
        tu_assert_bitwise(a[i], b[i], "1 vs 8 threads");
        cg_tensor_release(a[i]);
        cg_tensor_release(b[i]);
    }
}
END_TEST

/* ======================================================================
 * Out of memory: every allocation of a forward + backward of each loss
 * fails in turn; nothing leaks and the status is MemoryError
 * ====================================================================== */

static cg_status sweep_scenario(void *ctx)
{
    (void)ctx;
    enum { N = 12 };
    cg_tensor *t[N] = {NULL};
    cg_status st;
    if ((st = cg_tensor_literal("[[0.5, -1.0, 2.0], [1.5, 0.0, -0.5]]",
                                &t[0])) != CG_OK ||
        (st = cg_tensor_requires_grad_(t[0], true)) != CG_OK ||
        (st = cg_tensor_literal("[2, -100]", &t[1])) != CG_OK ||
        (st = cg_tensor_literal("[0.5, 2.0, 1.0]", &t[2])) != CG_OK ||
        (st = cg_tensor_literal("[[0.2, 0.3, 0.5], [1.0, 0.0, 0.0]]", &t[3])) !=
            CG_OK ||
        (st = cg_cross_entropy(t[0], t[1], t[2], -100, "mean", 0.1, &t[4])) !=
            CG_OK ||
        (st = cg_cross_entropy(t[0], t[1], NULL, -100, "mean", 0.2, &t[5])) !=
            CG_OK ||
        (st = cg_cross_entropy(t[0], t[3], t[2], -100, "mean", 0.1, &t[6])) !=
            CG_OK ||
        (st = cg_binary_cross_entropy_with_logits(t[0], t[3], t[2], t[2], "sum",
                                                  &t[7])) != CG_OK ||
        (st = cg_mse_loss(t[0], t[2], "none", &t[8])) != CG_OK ||
        (st = cg_l1_loss(t[0], t[3], "mean", &t[9])) != CG_OK ||
        (st = cg_add(t[4], t[5], &t[10])) != CG_OK ||
        (st = cg_add(t[10], t[6], &t[11])) != CG_OK)
        goto out;
    cg_tensor *u = NULL, *v = NULL, *w = NULL;
    if ((st = cg_sum(t[8], &u)) == CG_OK &&
        (st = cg_add(t[11], u, &v)) == CG_OK &&
        (st = cg_add(v, t[7], &w)) == CG_OK) {
        cg_tensor *z = NULL;
        if ((st = cg_add(w, t[9], &z)) == CG_OK)
            st = cg_tensor_backward(z, NULL, false);
        cg_tensor_release(z);
    }
    cg_tensor_release(u);
    cg_tensor_release(v);
    cg_tensor_release(w);
out:
    for (int i = 0; i < N; i++)
        cg_tensor_release(t[i]);
    return st;
}

START_TEST(test_alloc_sweep)
{
    long n = tu_alloc_sweep(sweep_scenario, NULL, "losses");
    ck_assert_int_gt(n, 100);
}
END_TEST

static cg_status module_scenario(void *ctx)
{
    (void)ctx;
    cg_module *m = NULL;
    cg_tensor *w = NULL;
    cg_status st = cg_tensor_literal("[1.0, 2.0]", &w);
    if (st != CG_OK)
        return st;
    cg_bce_with_logits_loss_opts o = cg_bce_with_logits_loss_options();
    o.pos_weight = w;
    o.reduction = "sum";
    st = cg_bce_with_logits_loss_new(&o, &m);
    if (st == CG_OK) {
        char buf[64];
        st = cg_module_getattr(m, "reduction", buf, sizeof buf, NULL);
    }
    cg_module_free(m);
    cg_tensor_release(w);
    return st;
}

START_TEST(test_alloc_modules)
{
    long n = tu_alloc_sweep(module_scenario, NULL, "loss modules");
    ck_assert_int_gt(n, 3);
}
END_TEST

Suite *loss_suite(void)
{
    Suite *s = suite_create("loss");
    tu_fixture_tcase(s, "torch", &torch_cases);
    tu_fixture_tcase(s, "modules", &module_cases);
    TCase *tc = tu_suite_tcase(s, "repr", 0);
    tcase_add_test(tc, test_module_reprs);
    tcase_add_test(tc, test_module_weight_buffer);
    tcase_add_loop_test(tu_suite_tcase(s, "gradcheck", 120), test_gradcheck, 0,
                        GC_COUNT * 3);
    tc = tu_suite_tcase(s, "errors", 0);
    tcase_add_loop_test(tc, test_errors, 0, N_ERROR_CASES);
    tcase_add_test(tc, test_errors_table_complete);
    tcase_add_test(tc, test_errors_cgrad);
    tcase_add_test(tu_suite_tcase(s, "threads", 120), test_threads);
    tcase_add_test(tc, test_mse_contiguous_path);
    tc = tu_suite_tcase(s, "alloc", 300);
    tcase_add_test(tc, test_alloc_sweep);
    tcase_add_test(tc, test_alloc_modules);
    return s;
}
