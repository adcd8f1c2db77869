/* test_arithmetic.c -- elementwise arithmetic (core/arithmetic.c) and what
 * it shares with other ops (core/broadcast.c): values, grad_fn chains and
 * gradients against PyTorch 1.13 fixtures (tests/data/ops/arith, written by
 * tests/data/ops/gen_arith.py), broadcasting and promotion rules, exact
 * error messages with arguments left untouched, the contiguous and strided
 * kernel paths held to each other, thread-count independence, allocation
 * failures, and finite-difference gradient checks. */
#include "testutil.h"
#include "fixture.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* float32: PyTorch's vectorised libm (Sleef) and summation order differ
 * from glibc's and ours by a few ulp. float64: the same, at 1e-16. */
#define TOL_F32 1e-5
#define TOL_F64 1e-12

/* A failing call must leave *out exactly as it was. */
#define UNTOUCHED ((cg_tensor *)(uintptr_t)0x5a5a5a5a)

/* ======================================================================
 * Fixtures: the "arith" rows of tests/data/ops/arith (see gen_arith.py)
 * ====================================================================== */

static cg_status arith_op(const tu_fixture_case *c, cg_tensor *const *in, int n,
                          cg_tensor **y)
{
    const char *op = tu_fixture_field(c, "op");
    cg_tensor *a = in[0], *b = n > 1 ? in[1] : NULL;
    double s = tu_fixture_number(c, "s");
    if (!strcmp(op, "add"))
        return cg_add(a, b, y);
    if (!strcmp(op, "sub"))
        return cg_sub(a, b, y);
    if (!strcmp(op, "mul"))
        return cg_mul(a, b, y);
    if (!strcmp(op, "div"))
        return cg_div(a, b, y);
    if (!strcmp(op, "add_s"))
        return cg_add_scalar(a, s, y);
    if (!strcmp(op, "sub_s"))
        return cg_sub_scalar(a, s, y);
    if (!strcmp(op, "mul_s"))
        return cg_mul_scalar(a, s, y);
    if (!strcmp(op, "div_s"))
        return cg_div_scalar(a, s, y);
    if (!strcmp(op, "rsub_s"))
        return cg_rsub_scalar(a, s, y);
    if (!strcmp(op, "mul_cs"))
        return cg_mul_complex_scalar(a, s, tu_fixture_number(c, "s_im"), y);
    if (!strcmp(op, "neg"))
        return cg_neg(a, y);
    if (!strcmp(op, "exp"))
        return cg_exp(a, y);
    if (!strcmp(op, "log"))
        return cg_log(a, y);
    if (!strcmp(op, "sqrt"))
        return cg_sqrt(a, y);
    if (!strcmp(op, "abs"))
        return cg_abs(a, y);
    if (!strcmp(op, "conj"))
        return cg_conj(a, y);
    if (!strcmp(op, "pow"))
        return cg_pow_scalar(a, s, y);
    ck_abort_msg("unknown op %s", op);
    return CG_ERR_VALUE;
}

static const tu_fixture_set fixture_cases = {"ops/arith", "arith", arith_op,
                                             TOL_F32, TOL_F64};

/* ======================================================================
 * Helpers for the hand-written tests
 * ====================================================================== */

/* A tensor of shape `shape` filled with v0, v0 + step, ... (complex:
 * imaginary parts 0.5 - 0.25 * k). */
static cg_tensor *ramp(const int64_t *shape, int ndim, cg_dtype dt, double v0,
                       double step)
{
    cg_tensor *t = NULL;
    tu_ok(cg_empty(shape, ndim, dt, &t));
    int64_t n = cg_tensor_numel(t);
    int64_t idx[CG_MAX_DIMS] = {0};
    for (int64_t k = 0; k < n; k++) {
        double im = cg_dtype_is_complex(dt) ? 0.5 - 0.25 * (double)k : 0.0;
        tu_ok(cg_tensor_set(t, idx, v0 + step * (double)k, im));
        for (int d = ndim - 1; d >= 0 && ++idx[d] == shape[d]; d--)
            idx[d] = 0;
    }
    return t;
}

static cg_tensor *scalar_of(double v, cg_dtype dt)
{
    cg_tensor *t = NULL;
    tu_ok(cg_full(NULL, 0, v, dt, &t));
    return t;
}

/* Snapshot of everything a failing call must not change. */
typedef struct snap {
    const cg_tensor *t;
    int ndim;
    int64_t shape[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    bool requires_grad;
    const cg_node *grad_fn;
    double vals[64];
} snap;

static snap take(const cg_tensor *t)
{
    snap s = {.t = t,
              .ndim = cg_tensor_dim(t),
              .requires_grad = cg_tensor_requires_grad(t),
              .grad_fn = cg_tensor_grad_fn(t)};
    memcpy(s.shape, cg_tensor_shape(t), sizeof(int64_t) * (size_t)s.ndim);
    memcpy(s.strides, cg_tensor_strides(t), sizeof(int64_t) * (size_t)s.ndim);
    tu_ok(cg_tensor_to_doubles(t, s.vals, 64));
    return s;
}

static void same(const snap *s)
{
    snap now = take(s->t);
    ck_assert_int_eq(now.ndim, s->ndim);
    ck_assert_mem_eq(now.shape, s->shape, sizeof(int64_t) * (size_t)s->ndim);
    ck_assert_mem_eq(now.strides, s->strides,
                     sizeof(int64_t) * (size_t)s->ndim);
    ck_assert(now.requires_grad == s->requires_grad);
    ck_assert_ptr_eq(now.grad_fn, s->grad_fn);
    ck_assert_mem_eq(now.vals, s->vals, sizeof now.vals);
}

/* ======================================================================
 * Broadcasting and promotion
 * ====================================================================== */

START_TEST(test_broadcast_shapes)
{
    static const struct {
        int na, nb;
        int64_t a[4], b[4];
        int nout;
        int64_t out[4];
    } ok[] = {
        {2, 1, {2, 3}, {3}, 2, {2, 3}},
        {3, 2, {2, 1, 4}, {3, 1}, 3, {2, 3, 4}},
        {0, 2, {0}, {2, 2}, 2, {2, 2}},
        {1, 1, {1}, {0}, 1, {0}},
        {2, 4, {5, 1}, {2, 1, 1, 7}, 4, {2, 1, 5, 7}},
    };
    for (size_t i = 0; i < sizeof ok / sizeof *ok; i++) {
        cg_tensor *a = ramp(ok[i].a, ok[i].na, CG_FLOAT32, 0, 1);
        cg_tensor *b = ramp(ok[i].b, ok[i].nb, CG_FLOAT32, 0, 1);
        cg_tensor *y = NULL;
        tu_ok(cg_add(a, b, &y));
        tu_assert_shape(y, ok[i].out, ok[i].nout);
        cg_tensor_release(y);
        tu_ok(cg_mul(b, a, &y)); /* symmetric */
        tu_assert_shape(y, ok[i].out, ok[i].nout);
        cg_tensor_release(y);
        cg_tensor_release(a);
        cg_tensor_release(b);
    }
}
END_TEST

/* Mixed dtypes: an input of another dtype than the result is converted as
 * it is read, a few hundred elements at a time. The values must be those
 * of converting it whole first, bit for bit: a transposed input spanning
 * several pieces and pool chunks, against a broadcast row of another
 * dtype, for every ordered pair of dtypes and all four operators. */
START_TEST(test_promotion_values)
{
    static const int64_t big[2] = {2, 40001}, row[2] = {1, 2};
    cg_status (*ops[])(cg_tensor *, cg_tensor *,
                       cg_tensor **) = {cg_add, cg_sub, cg_mul, cg_div};
    for (int i = 0; i < CG_DTYPE_COUNT; i++)
        for (int j = 0; j < CG_DTYPE_COUNT; j++) {
            if (i == j)
                continue;
            cg_tensor *a2 = NULL, *a = NULL, *b = NULL;
            tu_ok(cg_randn(big, 2, (cg_dtype)i, NULL, &a2));
            tu_ok(cg_tensor_t(a2, &a)); /* [40001, 2], not contiguous */
            tu_ok(cg_randn(row, 2, (cg_dtype)j, NULL, &b));
            for (int o = 0; o < 4; o++) {
                cg_tensor *y = NULL, *ac = NULL, *bc = NULL, *want = NULL;
                tu_ok(ops[o](a, b, &y));
                tu_ok(cg_tensor_to(a, cg_tensor_dtype(y), &ac));
                tu_ok(cg_tensor_to(b, cg_tensor_dtype(y), &bc));
                tu_ok(ops[o](ac, bc, &want));
                tu_assert_bitwise(y, want, "converted as read");
                cg_tensor_release(y);
                tu_ok(ops[o](b, a, &y)); /* the other side converted */
                cg_tensor_release(want);
                tu_ok(ops[o](bc, ac, &want));
                tu_assert_bitwise(y, want, "converted as read (swapped)");
                cg_tensor_release(y);
                cg_tensor_release(want);
                cg_tensor_release(ac);
                cg_tensor_release(bc);
            }
            cg_tensor_release(a);
            cg_tensor_release(a2);
            cg_tensor_release(b);
        }
}
END_TEST

/* result dtype of (dimensioned | 0-d) x (dimensioned | 0-d) for every pair,
 * as torch 1.13 prints it (float32 [2] * complex128 0-d = complex64). */
START_TEST(test_promotion)
{
    enum {
        F32 = CG_FLOAT32,
        F64 = CG_FLOAT64,
        C64 = CG_COMPLEX64,
        C128 = CG_COMPLEX128
    };
    /* [a][b] = {dim*0d, 0d*0d, dim*dim} */
    static const int want[4][4][3] = {
        {{F32, F32, F32}, {F32, F64, F64}, {C64, C64, C64}, {C64, C128, C128}},
        {{F64, F64, F64},
         {F64, F64, F64},
         {C128, C128, C128},
         {C128, C128, C128}},
        {{C64, C64, C64},
         {C64, C128, C128},
         {C64, C64, C64},
         {C64, C128, C128}},
        {{C128, C128, C128},
         {C128, C128, C128},
         {C128, C128, C128},
         {C128, C128, C128}},
    };
    int64_t two = 2;
    for (int i = 0; i < 4; i++) {
        for (int j = 0; j < 4; j++) {
            cg_tensor *ad = NULL, *a0 = NULL, *bd = NULL, *b0 = NULL;
            tu_ok(cg_ones(&two, 1, (cg_dtype)i, &ad));
            tu_ok(cg_ones(NULL, 0, (cg_dtype)i, &a0));
            tu_ok(cg_ones(&two, 1, (cg_dtype)j, &bd));
            tu_ok(cg_ones(NULL, 0, (cg_dtype)j, &b0));
            cg_tensor *pairs[3][2] = {{ad, b0}, {a0, b0}, {ad, bd}};
            for (int k = 0; k < 3; k++) {
                cg_status (*ops[])(cg_tensor *, cg_tensor *, cg_tensor **) = {
                    cg_add, cg_sub, cg_mul, cg_div};
                for (int o = 0; o < 4; o++) {
                    cg_tensor *y = NULL;
                    tu_ok(ops[o](pairs[k][0], pairs[k][1], &y));
                    ck_assert_msg((int)cg_tensor_dtype(y) == want[i][j][k],
                                  "%s op %d %s (case %d): got %s",
                                  cg_dtype_name((cg_dtype)i), o,
                                  cg_dtype_name((cg_dtype)j), k,
                                  cg_dtype_name(cg_tensor_dtype(y)));
                    cg_tensor_release(y);
                }
            }
            cg_tensor_release(ad);
            cg_tensor_release(a0);
            cg_tensor_release(bd);
            cg_tensor_release(b0);
        }
        /* Python scalars never raise the precision; a complex one makes
         * the result complex at the tensor's precision */
        cg_tensor *t = NULL, *y = NULL;
        static const int cplx[4] = {C64, C128, C64, C128};
        tu_ok(cg_ones(&two, 1, (cg_dtype)i, &t));
        cg_status (*sops[])(cg_tensor *, double, cg_tensor **) = {
            cg_add_scalar, cg_sub_scalar,  cg_mul_scalar,
            cg_div_scalar, cg_rsub_scalar, cg_pow_scalar};
        for (int o = 0; o < 6; o++) {
            tu_ok(sops[o](t, 2.5, &y));
            ck_assert_int_eq(cg_tensor_dtype(y), i);
            cg_tensor_release(y);
        }
        tu_ok(cg_mul_complex_scalar(t, 0.0, 1.0, &y));
        ck_assert_int_eq(cg_tensor_dtype(y), cplx[i]);
        cg_tensor_release(y);
        tu_ok(cg_abs(t, &y));
        ck_assert_int_eq(cg_tensor_dtype(y), i == C64    ? F32
                                             : i == C128 ? F64
                                                         : i);
        cg_tensor_release(y);
        cg_tensor_release(t);
    }
}
END_TEST

/* The float32 scalar is rounded to float first, as PyTorch does: x + 0.1
 * adds 0.1f (bitwise), and x / 3 divides (no reciprocal). */
START_TEST(test_scalar_rounding)
{
    int64_t n = 5;
    cg_tensor *x = ramp(&n, 1, CG_FLOAT32, 0.3, 1.7), *y = NULL;
    float xs[5];
    for (int i = 0; i < 5; i++)
        xs[i] = (float)(0.3 + 1.7 * i);
    tu_ok(cg_add_scalar(x, 0.1, &y));
    for (int64_t i = 0; i < 5; i++) {
        double v;
        tu_ok(cg_tensor_get(y, &i, &v, NULL));
        ck_assert_float_eq((float)v, xs[i] + 0.1f);
    }
    cg_tensor_release(y);
    tu_ok(cg_div_scalar(x, 3.0, &y));
    for (int64_t i = 0; i < 5; i++) {
        double v;
        tu_ok(cg_tensor_get(y, &i, &v, NULL));
        ck_assert_float_eq((float)v, xs[i] / 3.0f);
    }
    cg_tensor_release(y);
    cg_tensor_release(x);
}
END_TEST

/* ======================================================================
 * Autograd details
 * ====================================================================== */

static const char *edge_name(const cg_tensor *y, int i)
{
    int nr;
    const cg_node *m = cg_node_next(cg_tensor_grad_fn(y), i, &nr);
    return m ? cg_node_name(m) : "None";
}

START_TEST(test_graph)
{
    int64_t shape[] = {2, 3};
    cg_tensor *a = ramp(shape, 2, CG_FLOAT32, -1, 0.5);
    cg_tensor *b = ramp(shape + 1, 1, CG_FLOAT32, 1, 0.5);
    cg_tensor *y = NULL;
    tu_ok(cg_tensor_requires_grad_(a, true));

    /* saved tensors: only what the needed gradients use (PyTorch's
     * should_compute_output) */
    tu_ok(cg_mul(a, b, &y));
    ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(y)), 1);
    ck_assert_ptr_eq(cg_node_saved(cg_tensor_grad_fn(y), 0), b);
    cg_tensor_release(y);
    tu_ok(cg_div(b, a, &y)); /* b / a: a and b both kept for grad of a */
    ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(y)), 2);
    cg_tensor_release(y);
    tu_ok(cg_add(a, b, &y));
    ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(y)), 0);
    ck_assert_str_eq(edge_name(y, 1), "None");
    cg_tensor_release(y);

    /* no grad mode: nothing recorded */
    bool prev = cg_set_grad_enabled(false);
    tu_ok(cg_mul(a, a, &y));
    ck_assert_ptr_null(cg_tensor_grad_fn(y));
    ck_assert(!cg_tensor_requires_grad(y));
    cg_tensor_release(y);
    cg_set_grad_enabled(prev);

    /* neither input requires grad */
    tu_ok(cg_exp(b, &y));
    ck_assert_ptr_null(cg_tensor_grad_fn(y));
    cg_tensor_release(y);

    /* conj of a real tensor is the tensor itself, as in PyTorch */
    tu_ok(cg_conj(a, &y));
    ck_assert_ptr_eq(y, a);
    cg_tensor_release(y);

    /* x * x: both edges reach the same AccumulateGrad; grad = 2x */
    tu_ok(cg_mul(a, a, &y));
    ck_assert_ptr_eq(cg_node_next(cg_tensor_grad_fn(y), 0, NULL),
                     cg_node_next(cg_tensor_grad_fn(y), 1, NULL));
    cg_tensor *g = NULL;
    tu_ok(cg_ones(shape, 2, CG_FLOAT32, &g));
    tu_ok(cg_tensor_backward(y, g, false));
    cg_tensor *twice = NULL;
    tu_ok(cg_mul_scalar(a, 2.0, &twice));
    tu_assert_close(cg_tensor_grad(a), twice, 0, "d(x*x)/dx");
    cg_tensor_release(y);
    /* x + x: both gradients are gy itself, summed by the engine */
    tu_ok(cg_tensor_zero_grad(a, true));
    tu_ok(cg_add(a, a, &y));
    tu_ok(cg_tensor_backward(y, g, false));
    cg_tensor_release(twice);
    tu_ok(cg_full(shape, 2, 2.0, CG_FLOAT32, &twice));
    tu_assert_close(cg_tensor_grad(a), twice, 0, "d(x+x)/dx");
    cg_tensor_release(twice);
    cg_tensor_release(y);
    cg_tensor_release(g);

    /* a chain through every op reaches the leaf once per use */
    tu_ok(cg_tensor_zero_grad(a, true));
    cg_tensor *t1 = NULL, *t2 = NULL, *t3 = NULL;
    tu_ok(cg_exp(a, &t1));
    tu_ok(cg_pow_scalar(t1, 2.0, &t2));
    tu_ok(cg_sub(t2, a, &t3));
    ck_assert_str_eq(cg_node_name(cg_tensor_grad_fn(t3)), "SubBackward0");
    ck_assert_str_eq(edge_name(t3, 0), "PowBackward0");
    ck_assert_str_eq(edge_name(t3, 1), "AccumulateGrad");
    ck_assert_str_eq(edge_name(t2, 0), "ExpBackward0");
    cg_tensor_release(t1);
    cg_tensor_release(t2);
    cg_tensor_release(t3);
    cg_tensor_release(a);
    cg_tensor_release(b);
}
END_TEST

/* A saved tensor modified in place: PyTorch's version-counter message
 * names the output of ExpBackward0. */
START_TEST(test_inplace_saved)
{
    int64_t n = 3;
    cg_tensor *a = ramp(&n, 1, CG_FLOAT32, 0, 1), *y = NULL, *g = NULL;
    tu_ok(cg_tensor_requires_grad_(a, true));
    tu_ok(cg_exp(a, &y));
    bool prev = cg_set_grad_enabled(false);
    tu_ok(cg_tensor_fill_(y, 1.0));
    cg_set_grad_enabled(prev);
    tu_ok(cg_ones(&n, 1, CG_FLOAT32, &g));
    tu_fails(cg_tensor_backward(y, g, false), CG_ERR_RUNTIME,
             "one of the variables needed for gradient computation has been "
             "modified by an inplace operation: [torch.FloatTensor [3]], "
             "which is output 0 of ExpBackward0, is at version 1; expected "
             "version 0 instead. Hint: enable anomaly detection to find the "
             "operation that failed to compute its gradient, with "
             "torch.autograd.set_detect_anomaly(True).");
    ck_assert_ptr_null(cg_tensor_grad(a));
    cg_tensor_release(y);

    /* an input saved by mul, modified after the forward */
    cg_tensor *x = ramp(&n, 1, CG_FLOAT64, 1, 1), *b = NULL;
    tu_ok(cg_tensor_requires_grad_(x, true));
    tu_ok(cg_neg(x, &b));
    tu_ok(cg_mul(a, b, &y));
    prev = cg_set_grad_enabled(false);
    tu_ok(cg_tensor_fill_(b, 2.0));
    cg_set_grad_enabled(prev);
    tu_fails(cg_tensor_backward(y, g, false), CG_ERR_RUNTIME,
             "one of the variables needed for gradient computation has been "
             "modified by an inplace operation: [torch.DoubleTensor [3]], "
             "which is output 0 of NegBackward0, is at version 1; expected "
             "version 0 instead. Hint: enable anomaly detection to find the "
             "operation that failed to compute its gradient, with "
             "torch.autograd.set_detect_anomaly(True).");
    ck_assert_ptr_null(cg_tensor_grad(x));
    cg_tensor_release(y);
    cg_tensor_release(x);

    /* and a second backward through freed saved tensors */
    tu_ok(cg_sqrt(a, &y));
    tu_ok(cg_tensor_backward(y, g, false));
    tu_fails(cg_tensor_backward(y, g, false), CG_ERR_RUNTIME,
             "Trying to backward through the graph a second time (or "
             "directly access saved tensors after they have already been "
             "freed). Saved intermediate values of the graph are freed when "
             "you call .backward() or autograd.grad(). Specify "
             "retain_graph=True if you need to backward through the graph a "
             "second time or if you need to access saved tensors after "
             "calling backward.");
    cg_tensor_release(y);
    cg_tensor_release(g);
    cg_tensor_release(a);
    cg_tensor_release(b);
}
END_TEST

/* ======================================================================
 * Kernels: the contiguous fast path against the strided reference path,
 * broadcasting of a large operand, and thread-count independence
 * ====================================================================== */

typedef cg_status (*unary_fn)(cg_tensor *, cg_tensor **);

static cg_status pow_2p5(cg_tensor *a, cg_tensor **y)
{
    return cg_pow_scalar(a, 2.5, y);
}
static cg_status pow_m1(cg_tensor *a, cg_tensor **y)
{
    return cg_pow_scalar(a, -1.0, y);
}
static cg_status mul_s(cg_tensor *a, cg_tensor **y)
{
    return cg_mul_scalar(a, -0.75, y);
}
static cg_status rsub_s(cg_tensor *a, cg_tensor **y)
{
    return cg_rsub_scalar(a, 3.0, y);
}
static cg_status mul_cs(cg_tensor *a, cg_tensor **y)
{
    return cg_mul_complex_scalar(a, 0.5, -2.0, y);
}

static const unary_fn unary_ops[] = {cg_neg, cg_exp,  cg_log,  cg_sqrt,
                                     cg_abs, cg_conj, pow_2p5, pow_m1,
                                     mul_s,  rsub_s,  mul_cs};
typedef cg_status (*binary_fn)(cg_tensor *, cg_tensor *, cg_tensor **);
static const binary_fn binary_ops[] = {cg_add, cg_sub, cg_mul, cg_div};

START_TEST(test_strided_paths)
{
    for (int dt = 0; dt < CG_DTYPE_COUNT; dt++) {
        int64_t bs[] = {7, 5};
        cg_tensor *base = ramp(bs, 2, (cg_dtype)dt, 0.25, 0.125);
        cg_tensor *nc = NULL, *c = NULL, *other = NULL;
        tu_ok(cg_tensor_transpose(base, 0, 1, &nc)); /* (5, 7) strided */
        tu_ok(cg_tensor_contiguous(nc, &c));
        ck_assert(!cg_tensor_is_contiguous(nc) && cg_tensor_is_contiguous(c));
        for (size_t o = 0; o < sizeof unary_ops / sizeof *unary_ops; o++) {
            cg_tensor *y1 = NULL, *y2 = NULL;
            tu_ok(unary_ops[o](c, &y1));
            tu_ok(unary_ops[o](nc, &y2));
            tu_assert_bitwise(y2, y1, "unary strided vs contiguous");
            cg_tensor_release(y1);
            cg_tensor_release(y2);
        }
        int64_t os[] = {5, 1};
        other = ramp(os, 2, (cg_dtype)dt, 1.5, 0.5);
        for (size_t o = 0; o < sizeof binary_ops / sizeof *binary_ops; o++) {
            cg_tensor *y1 = NULL, *y2 = NULL, *oe = NULL, *oc = NULL;
            /* other broadcast (stride 0) against the strided and the
             * contiguous operand, and expanded to a contiguous copy */
            int64_t full[] = {5, 7};
            tu_ok(cg_tensor_expand(other, full, 2, &oe));
            tu_ok(cg_tensor_contiguous(oe, &oc));
            tu_ok(binary_ops[o](c, oc, &y1));
            tu_ok(binary_ops[o](nc, other, &y2));
            tu_assert_bitwise(y2, y1, "binary strided vs contiguous");
            cg_tensor_release(y2);
            tu_ok(binary_ops[o](oe, nc, &y2));
            cg_tensor_release(y1);
            tu_ok(binary_ops[o](oc, c, &y1));
            tu_assert_bitwise(y2, y1, "binary broadcast first");
            cg_tensor_release(y1);
            cg_tensor_release(y2);
            cg_tensor_release(oe);
            cg_tensor_release(oc);
        }
        cg_tensor_release(other);
        cg_tensor_release(base);
        cg_tensor_release(nc);
        cg_tensor_release(c);
    }
}
END_TEST

/* Big enough for several parallel chunks: exact float32 results (a sum or
 * product of two floats rounded once), and the same bits for 1 and 3
 * threads. */
START_TEST(test_large_and_threads)
{
    int64_t sa[] = {301, 257}, sb[] = {257};
    cg_tensor *a = ramp(sa, 2, CG_FLOAT32, -40.0, 0.001);
    cg_tensor *b = ramp(sb, 1, CG_FLOAT32, 3.0, -0.01);
    cg_tensor *ta = NULL;
    tu_ok(cg_tensor_transpose(a, 0, 1, &ta));
    cg_tensor *y[2][3] = {{NULL}};
    int threads[2] = {1, 3};
    int saved = cg_get_num_threads();
    for (int k = 0; k < 2; k++) {
        tu_ok(cg_set_num_threads(threads[k]));
        tu_ok(cg_add(a, b, &y[k][0]));
        tu_ok(cg_mul(b, a, &y[k][1]));
        tu_ok(cg_exp(ta, &y[k][2]));
    }
    tu_ok(cg_set_num_threads(saved));
    for (int j = 0; j < 3; j++)
        tu_assert_bitwise(y[1][j], y[0][j], "1 vs 3 threads");
    const float *pa = cg_tensor_data(a), *pb = cg_tensor_data(b);
    const float *p0 = cg_tensor_data(y[0][0]), *p1 = cg_tensor_data(y[0][1]);
    for (int64_t i = 0; i < 301 * 257; i++) {
        ck_assert_float_eq(p0[i], pa[i] + pb[i % 257]);
        ck_assert_float_eq(p1[i], pb[i % 257] * pa[i]);
    }
    for (int k = 0; k < 2; k++)
        for (int j = 0; j < 3; j++)
            cg_tensor_release(y[k][j]);
    cg_tensor_release(ta);
    cg_tensor_release(a);
    cg_tensor_release(b);
}
END_TEST

/* Empty and 0-d operands. */
START_TEST(test_empty_and_scalar)
{
    int64_t s0[] = {0, 3}, s1[] = {1, 3};
    cg_tensor *e = ramp(s0, 2, CG_FLOAT64, 0, 1),
              *o = ramp(s1, 2, CG_FLOAT64, 1, 1);
    cg_tensor *y = NULL, *g = NULL;
    tu_ok(cg_tensor_requires_grad_(o, true));
    tu_ok(cg_mul(e, o, &y));
    tu_assert_shape(y, s0, 2);
    tu_ok(cg_zeros(s0, 2, CG_FLOAT64, &g));
    tu_ok(cg_tensor_backward(y, g, false));
    cg_tensor *z = NULL;
    tu_ok(cg_zeros(s1, 2, CG_FLOAT64, &z));
    tu_assert_close(cg_tensor_grad(o), z, 0, "grad through an empty product");
    cg_tensor_release(z);
    cg_tensor_release(y);
    cg_tensor_release(g);

    cg_tensor *s = scalar_of(4.0, CG_FLOAT64), *r = NULL;
    tu_ok(cg_tensor_requires_grad_(s, true));
    tu_ok(cg_sqrt(s, &r));
    ck_assert_int_eq(cg_tensor_dim(r), 0);
    tu_ok(cg_tensor_backward(r, NULL, false));
    double v;
    tu_ok(cg_tensor_item(cg_tensor_grad(s), &v, NULL));
    ck_assert_double_eq(v, 0.25);
    cg_tensor_release(r);
    cg_tensor_release(s);
    cg_tensor_release(e);
    cg_tensor_release(o);
}
END_TEST

/* ======================================================================
 * Errors
 * ====================================================================== */

START_TEST(test_broadcast_errors)
{
    static const struct {
        int na, nb;
        int64_t a[3], b[3];
        const char *msg;
    } bad[] = {
        {2,
         2,
         {2, 3},
         {2, 4},
         "The size of tensor a (3) must match the size of tensor b (4) at "
         "non-singleton dimension 1"},
        {1,
         2,
         {3},
         {4, 2},
         "The size of tensor a (3) must match the size of tensor b (2) at "
         "non-singleton dimension 1"},
        {3,
         2,
         {2, 3, 4},
         {5, 4},
         "The size of tensor a (3) must match the size of tensor b (5) at "
         "non-singleton dimension 1"},
        {2,
         1,
         {0, 2},
         {3},
         "The size of tensor a (2) must match the size of tensor b (3) at "
         "non-singleton dimension 1"},
        {3,
         3,
         {4, 1, 2},
         {3, 1, 2},
         "The size of tensor a (4) must match the size of tensor b (3) at "
         "non-singleton dimension 0"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cg_tensor *a = ramp(bad[i].a, bad[i].na, CG_FLOAT32, 0, 1);
        cg_tensor *b = ramp(bad[i].b, bad[i].nb, CG_COMPLEX128, 0, 1);
        tu_ok(cg_tensor_requires_grad_(a, true));
        snap sa = take(a), sb = take(b);
        for (size_t o = 0; o < sizeof binary_ops / sizeof *binary_ops; o++) {
            cg_tensor *y = UNTOUCHED;
            tu_fails(binary_ops[o](a, b, &y), CG_ERR_RUNTIME, bad[i].msg);
            ck_assert_ptr_eq(y, UNTOUCHED);
            same(&sa);
            same(&sb);
        }
        ck_assert_ptr_null(cg_tensor_grad(a));
        cg_tensor_release(a);
        cg_tensor_release(b);
    }
}
END_TEST

START_TEST(test_null_args)
{
    int64_t n = 2;
    cg_tensor *a = ramp(&n, 1, CG_FLOAT32, 1, 1), *y = UNTOUCHED;
    for (size_t o = 0; o < sizeof binary_ops / sizeof *binary_ops; o++) {
        tu_fails(binary_ops[o](NULL, a, &y), CG_ERR_MISUSE,
                 "a must not be NULL");
        tu_fails(binary_ops[o](a, NULL, &y), CG_ERR_MISUSE,
                 "b must not be NULL");
        tu_fails(binary_ops[o](a, a, NULL), CG_ERR_MISUSE,
                 "out must not be NULL");
    }
    cg_status (*sops[])(cg_tensor *, double, cg_tensor **) = {
        cg_add_scalar, cg_sub_scalar,  cg_mul_scalar,
        cg_div_scalar, cg_rsub_scalar, cg_pow_scalar};
    for (size_t o = 0; o < sizeof sops / sizeof *sops; o++) {
        tu_fails(sops[o](NULL, 1.0, &y), CG_ERR_MISUSE, "a must not be NULL");
        tu_fails(sops[o](a, 1.0, NULL), CG_ERR_MISUSE, "out must not be NULL");
    }
    tu_fails(cg_mul_complex_scalar(NULL, 0, 1, &y), CG_ERR_MISUSE,
             "a must not be NULL");
    tu_fails(cg_mul_complex_scalar(a, 0, 1, NULL), CG_ERR_MISUSE,
             "out must not be NULL");
    unary_fn uops[] = {cg_neg, cg_exp, cg_log, cg_sqrt, cg_abs, cg_conj};
    for (size_t o = 0; o < sizeof uops / sizeof *uops; o++) {
        tu_fails(uops[o](NULL, &y), CG_ERR_MISUSE, "a must not be NULL");
        tu_fails(uops[o](a, NULL), CG_ERR_MISUSE, "out must not be NULL");
    }
    ck_assert_ptr_eq(y, UNTOUCHED);
    cg_tensor_release(a);
}
END_TEST

/* ======================================================================
 * Allocation failures: a forward and backward through every op, with each
 * allocation failing in turn
 * ====================================================================== */

static cg_status sweep_scenario(void *ctx)
{
    (void)ctx;
    enum { N = 16 };
    cg_tensor *t[N] = {NULL};
    int k = 0;
    cg_status st;
    int64_t sa[] = {3, 2}, sb[] = {3};
#define STEP(call)                                                             \
    do {                                                                       \
        if ((st = (call)) != CG_OK)                                            \
            goto out;                                                          \
        k++;                                                                   \
    } while (0)
    STEP(cg_full(sa, 2, 0.5, CG_FLOAT32, &t[k]));                 /* 0: a */
    STEP(cg_full_complex(sb, 1, 1.5, -0.5, CG_COMPLEX64, &t[k])); /* 1: b */
    if ((st = cg_tensor_requires_grad_(t[0], true)) != CG_OK ||
        (st = cg_tensor_requires_grad_(t[1], true)) != CG_OK)
        goto out;
    STEP(cg_tensor_transpose(t[0], 0, 1, &t[k]));        /* 2: a.T */
    STEP(cg_mul(t[2], t[1], &t[k]));                     /* 3 */
    STEP(cg_div(t[3], t[2], &t[k]));                     /* 4 */
    STEP(cg_sub(t[4], t[1], &t[k]));                     /* 5 */
    STEP(cg_exp(t[5], &t[k]));                           /* 6 */
    STEP(cg_abs(t[6], &t[k]));                           /* 7: real */
    STEP(cg_add_scalar(t[7], 1.0, &t[k]));               /* 8 */
    STEP(cg_log(t[8], &t[k]));                           /* 9 */
    STEP(cg_pow_scalar(t[9], 1.5, &t[k]));               /* 10 */
    STEP(cg_mul_complex_scalar(t[10], 0.0, 1.0, &t[k])); /* 11 */
    STEP(cg_conj(t[11], &t[k]));                         /* 12 */
    STEP(cg_rsub_scalar(t[12], 2.0, &t[k]));             /* 13 */
    STEP(cg_sqrt(t[13], &t[k]));                         /* 14 */
    STEP(cg_ones(cg_tensor_shape(t[14]), cg_tensor_dim(t[14]),
                 cg_tensor_dtype(t[14]), &t[k])); /* 15: gy */
    st = cg_tensor_backward(t[14], t[15], false);
#undef STEP
out:
    for (int i = 0; i < N; i++)
        cg_tensor_release(t[i]);
    return st;
}

START_TEST(test_alloc_sweep)
{
    long n = tu_alloc_sweep(sweep_scenario, NULL, "arithmetic");
    ck_assert_int_gt(n, 40);
}
END_TEST

/* ======================================================================
 * Gradient checks (float64, complex128)
 * ====================================================================== */

typedef struct gc_case {
    const char *name;
    int arity; /* 1, or 2 for tensor-tensor ops */
    binary_fn binary;
    unary_fn unary;
    bool real_only; /* no complex128 check */
    double lo;      /* inputs start here (positive for log, sqrt, pow) */
} gc_case;

static cg_status gc_call(cg_tensor *const *in, int n, cg_tensor **out,
                         void *user)
{
    const gc_case *c = user;
    (void)n;
    return c->arity == 2 ? c->binary(in[0], in[1], out) : c->unary(in[0], out);
}

static cg_status pow_3(cg_tensor *a, cg_tensor **y)
{
    return cg_pow_scalar(a, 3.0, y);
}
static cg_status pow_m1p5(cg_tensor *a, cg_tensor **y)
{
    return cg_pow_scalar(a, -1.5, y);
}
static cg_status pow_0(cg_tensor *a, cg_tensor **y)
{
    return cg_pow_scalar(a, 0.0, y);
}
static cg_status add_s(cg_tensor *a, cg_tensor **y)
{
    return cg_add_scalar(a, 1.25, y);
}
static cg_status sub_s(cg_tensor *a, cg_tensor **y)
{
    return cg_sub_scalar(a, 1.25, y);
}
static cg_status div_s(cg_tensor *a, cg_tensor **y)
{
    return cg_div_scalar(a, -1.25, y);
}

static const gc_case gc_cases[] = {
    {"add", 2, cg_add, NULL, false, -1},
    {"sub", 2, cg_sub, NULL, false, -1},
    {"mul", 2, cg_mul, NULL, false, -1},
    {"div", 2, cg_div, NULL, false, 0.5},
    {"add_s", 1, NULL, add_s, false, -1},
    {"sub_s", 1, NULL, sub_s, false, -1},
    {"mul_s", 1, NULL, mul_s, false, -1},
    {"div_s", 1, NULL, div_s, false, -1},
    {"rsub_s", 1, NULL, rsub_s, false, -1},
    {"mul_cs", 1, NULL, mul_cs, false, -1},
    {"neg", 1, NULL, cg_neg, false, -1},
    {"exp", 1, NULL, cg_exp, false, -1},
    {"log", 1, NULL, cg_log, false, 0.5},
    {"sqrt", 1, NULL, cg_sqrt, false, 0.5},
    {"abs", 1, NULL, cg_abs, false, 0.3},
    {"abs_signs", 1, NULL, cg_abs, true, -1.05},
    {"conj", 1, NULL, cg_conj, false, -1},
    {"pow_2p5", 1, NULL, pow_2p5, false, 0.5},
    {"pow_3", 1, NULL, pow_3, false, -1},
    {"pow_m1", 1, NULL, pow_m1, false, 0.5},
    {"pow_m1p5", 1, NULL, pow_m1p5, false, 0.5},
    {"pow_0", 1, NULL, pow_0, false, -1},
};

/* Input k of a gradcheck: a ramp from lo, made non-contiguous (a
 * transposed or stepped view of a leaf) when `view` is set. */
static cg_tensor *gc_input(const int64_t *shape, int ndim, cg_dtype dt,
                           double lo, int view, cg_tensor **leaf)
{
    cg_tensor *v = NULL;
    if (view == 0 || ndim < 2) {
        *leaf = ramp(shape, ndim, dt, lo, 0.23);
        tu_ok(cg_tensor_requires_grad_(*leaf, true));
        v = cg_tensor_retain(*leaf);
    } else {
        int64_t bs[CG_MAX_DIMS];
        memcpy(bs, shape, sizeof(int64_t) * (size_t)ndim);
        bs[0] = shape[ndim - 1];
        bs[ndim - 1] = shape[0];
        *leaf = ramp(bs, ndim, dt, lo, 0.23);
        tu_ok(cg_tensor_requires_grad_(*leaf, true));
        tu_ok(cg_tensor_transpose(*leaf, 0, -1, &v));
    }
    return v;
}

START_TEST(test_gradcheck)
{
    const gc_case *c = &gc_cases[_i];
    static const struct {
        int na, nb;
        int64_t a[3], b[3];
        int view;
    } shapes[] = {
        {2, 2, {2, 3}, {2, 3}, 0},
        {2, 1, {2, 3}, {3}, 1}, /* broadcast, a non-contiguous */
        {1, 3, {4}, {2, 3, 1}, 0},
        {0, 2, {0}, {3, 2}, 1}, /* 0-d with a strided 2-d */
    };
    /* (a, b) dtypes: real, complex, and a real a with a complex b (the
     * real part of a complex gradient) */
    static const cg_dtype passes[3][2] = {{CG_FLOAT64, CG_FLOAT64},
                                          {CG_COMPLEX128, CG_COMPLEX128},
                                          {CG_FLOAT64, CG_COMPLEX128}};
    for (int pass = 0; pass < 3; pass++) {
        cg_dtype da = passes[pass][0], db = passes[pass][1];
        if ((pass > 0 && c->real_only) || (pass == 2 && c->arity == 1))
            continue;
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            cg_tensor *leaf[2] = {NULL}, *in[2] = {NULL};
            in[0] = gc_input(shapes[s].a, shapes[s].na, da, c->lo,
                             shapes[s].view, &leaf[0]);
            if (c->arity == 2)
                in[1] = gc_input(shapes[s].b, shapes[s].nb, db, c->lo + 0.05, 0,
                                 &leaf[1]);
            cg_gradcheck_result res;
            tu_ok(cg_gradcheck(gc_call, (void *)c, in, c->arity, NULL, &res));
            ck_assert_msg(res.passed, "%s %s/%s shape %zu: %s", c->name,
                          cg_dtype_name(da), cg_dtype_name(db), s, res.message);
            for (int k = 0; k < 2; k++) {
                cg_tensor_release(in[k]);
                cg_tensor_release(leaf[k]);
            }
        }
    }
}
END_TEST

Suite *arithmetic_suite(void)
{
    Suite *s = suite_create("arithmetic");
    tu_fixture_tcase(s, "fixtures", &fixture_cases);
    TCase *tc = tu_suite_tcase(s, "rules", 0);
    tcase_add_test(tc, test_broadcast_shapes);
    tcase_add_test(tc, test_promotion);
    tcase_add_test(tc, test_promotion_values);
    tcase_add_test(tc, test_scalar_rounding);
    tcase_add_test(tc, test_empty_and_scalar);
    tc = tu_suite_tcase(s, "autograd", 0);
    tcase_add_test(tc, test_graph);
    tcase_add_test(tc, test_inplace_saved);
    tc = tu_suite_tcase(s, "kernels", 60);
    tcase_add_test(tc, test_strided_paths);
    tcase_add_test(tc, test_large_and_threads);
    tc = tu_suite_tcase(s, "errors", 120);
    tcase_add_test(tc, test_broadcast_errors);
    tcase_add_test(tc, test_null_args);
    tcase_add_test(tc, test_alloc_sweep);
    tcase_add_loop_test(tu_suite_tcase(s, "gradcheck", 120), test_gradcheck, 0,
                        (int)(sizeof gc_cases / sizeof *gc_cases));
    return s;
}
