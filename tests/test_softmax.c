/* test_softmax.c -- softmax and log_softmax against PyTorch 1.13.
 *
 * TCases:
 *   torch      every "softmax" row of tests/data/ops/reduce/cases.tsv (made
 *              by tests/data/ops/gen_reduce.py): values, gradients, grad_fn
 *              chains, for float32/float64, every dim position, strided
 *              inputs, 0-d and empty tensors, inputs where exp alone would
 *              overflow
 *   special    inf and nan inputs give PyTorch's nan / -inf pattern
 *   threads    1 and 4 threads give bitwise-identical results and grads
 *   errors     PyTorch's messages (dims, complex dtypes, the saved output
 *              modified in place), arguments untouched
 *   alloc      every allocation of forward + backward fails in turn
 *   gradcheck  finite differences (float64)
 */
#include "testutil.h"
#include "fixture.h"
#include "tensor_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* float32: cgrad computes each line in double and rounds once; PyTorch in
 * float with vectorised exp, within a few ulp. */
#define TOL_F32 1e-5
#define TOL_F64 1e-12

/* ======================================================================
 * torch
 * ====================================================================== */

static cg_status softmax_op(const tu_fixture_case *c, cg_tensor *const *in,
                            int n, cg_tensor **out)
{
    const char *op = tu_fixture_field(c, "op");
    int64_t dim = tu_fixture_arg_int(c, "dim");
    ck_assert_int_eq(n, 1);
    if (strcmp(op, "softmax") == 0)
        return cg_softmax(in[0], dim, out);
    ck_assert_str_eq(op, "log_softmax");
    return cg_log_softmax(in[0], dim, out);
}

/* The "softmax" rows of tests/data/ops/reduce (see gen_reduce.py). */
static const tu_fixture_set torch_cases = {"ops/reduce", "softmax", softmax_op,
                                           TOL_F32, TOL_F64};

/* ======================================================================
 * special
 * ====================================================================== */

/* PyTorch 1.13: softmax([inf, 1]) = [nan, nan], softmax([-inf, -inf]) =
 * [nan, nan], log_softmax([-inf, 1]) = [-inf, 0], log_softmax([inf, 1]) =
 * [nan, nan]; a nan anywhere in a line makes the whole line nan. */
START_TEST(test_special)
{
    static const struct {
        const char *x;
        bool log;
        double want[3]; /* 2 is nan, 3 is -inf */
    } cases[] = {
        {"[inf, 1.]", false, {2, 2}},  {"[-inf, -inf]", false, {2, 2}},
        {"[-inf, 1.]", true, {3, 0}},  {"[inf, 1.]", true, {2, 2}},
        {"[-inf, 1.]", false, {0, 1}}, {"[nan, 1., 2.]", false, {2, 2, 2}},
        {"[1., nan]", true, {2, 2}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        cg_tensor *x = NULL, *y = NULL;
        tu_ok(cg_tensor_literal(cases[k].x, &x));
        tu_ok(cases[k].log ? cg_log_softmax(x, 0, &y) : cg_softmax(x, 0, &y));
        for (int64_t i = 0; i < cg_tensor_numel(x); i++) {
            double v, im, w = cases[k].want[i];
            tu_ok(cg_tensor_get(y, &i, &v, &im));
            if (w == 2)
                ck_assert_msg(isnan(v), "case %zu[%lld]: %g", k, (long long)i,
                              v);
            else if (w == 3)
                ck_assert_msg(v == -INFINITY, "case %zu: %g", k, v);
            else
                ck_assert_msg(v == w, "case %zu[%lld]: %g", k, (long long)i, v);
        }
        cg_tensor_release(y);
        cg_tensor_release(x);
    }
}
END_TEST

/* ======================================================================
 * threads
 * ====================================================================== */

static void run_with(int threads, cg_tensor *x, int64_t dim, bool log,
                     cg_tensor **o)
{
    ck_assert_int_eq(cg_set_num_threads(threads), CG_OK);
    cg_tensor *y = NULL, *w = NULL;
    int64_t shape[2] = {cg_tensor_shape(x)[0], cg_tensor_shape(x)[1]};
    cg_manual_seed(3);
    tu_ok(cg_randn(shape, 2, cg_tensor_dtype(x), NULL, &w));
    tu_ok(log ? cg_log_softmax(x, dim, &y) : cg_softmax(x, dim, &y));
    tu_ok(cg_tensor_backward(y, w, false));
    o[0] = y;
    tu_ok(cg_tensor_clone(cg_tensor_grad(x), &o[1]));
    tu_ok(cg_tensor_zero_grad(x, true));
    cg_tensor_release(w);
}

START_TEST(test_threads)
{
    int64_t shape[2] = {300, 500};
    cg_tensor *x = NULL;
    cg_manual_seed(1);
    tu_ok(cg_randn(shape, 2, CG_FLOAT32, NULL, &x));
    tu_ok(cg_tensor_requires_grad_(x, true));
    int prev = cg_get_num_threads();
    for (int k = 0; k < 4; k++) {
        cg_tensor *one[2], *four[2];
        run_with(1, x, k % 2, k / 2, one);
        run_with(4, x, k % 2, k / 2, four);
        for (int i = 0; i < 2; i++) {
            tu_assert_bitwise(one[i], four[i], "1 vs 4 threads");
            cg_tensor_release(one[i]);
            cg_tensor_release(four[i]);
        }
    }
    cg_set_num_threads(prev);
    cg_tensor_release(x);
}
END_TEST

/* ======================================================================
 * errors
 * ====================================================================== */

static cg_tensor *zt(const int64_t *shape, int ndim, cg_dtype dt, bool grad)
{
    cg_tensor *t = NULL;
    tu_ok(cg_zeros(shape, ndim, dt, &t));
    tu_ok(cg_tensor_requires_grad_(t, grad));
    return t;
}

START_TEST(test_errors)
{
    int64_t s23[2] = {2, 3}, s03[2] = {0, 3};
    cg_tensor *x = zt(s23, 2, CG_FLOAT32, true), *out = NULL;
    tu_fails(cg_softmax(x, 2, &out), CG_ERR_INDEX,
             "Dimension out of range (expected to be in range of [-2, 1], but "
             "got 2)");
    tu_fails(cg_log_softmax(x, -3, &out), CG_ERR_INDEX,
             "Dimension out of range (expected to be in range of [-2, 1], but "
             "got -3)");
    cg_tensor *s = zt(NULL, 0, CG_FLOAT64, true);
    tu_fails(cg_softmax(s, 1, &out), CG_ERR_INDEX,
             "Dimension out of range (expected to be in range of [-1, 0], but "
             "got 1)");
    tu_fails(cg_softmax(NULL, 0, &out), CG_ERR_MISUSE,
             "tensor must not be NULL");
    tu_fails(cg_log_softmax(x, 0, NULL), CG_ERR_MISUSE, "out must not be NULL");
    cg_tensor *c = zt(s23, 2, CG_COMPLEX64, true);
    cg_tensor *z = zt(s23, 2, CG_COMPLEX128, true);
    cg_tensor *c0 = zt(NULL, 0, CG_COMPLEX64, true);
    tu_fails(cg_softmax(c, 1, &out), CG_ERR_RUNTIME,
             "\"softmax_lastdim_kernel_impl\" not implemented for "
             "'ComplexFloat'");
    tu_fails(cg_log_softmax(c, -1, &out), CG_ERR_RUNTIME,
             "\"log_softmax_lastdim_kernel_impl\" not implemented for "
             "'ComplexFloat'");
    tu_fails(cg_log_softmax(c, 0, &out), CG_ERR_RUNTIME,
             "\"softmax_kernel_impl\" not implemented for 'ComplexFloat'");
    tu_fails(cg_softmax(z, 0, &out), CG_ERR_RUNTIME,
             "\"softmax_kernel_impl\" not implemented for 'ComplexDouble'");
    tu_fails(cg_log_softmax(z, 1, &out), CG_ERR_RUNTIME,
             "\"log_softmax_lastdim_kernel_impl\" not implemented for "
             "'ComplexDouble'");
    tu_fails(cg_softmax(c0, 0, &out), CG_ERR_RUNTIME,
             "\"softmax_lastdim_kernel_impl\" not implemented for "
             "'ComplexFloat'");
    /* an empty complex input reaches no kernel: only autograd refuses */
    cg_tensor *ce = zt(s03, 2, CG_COMPLEX64, true);
    tu_fails(cg_softmax(ce, 1, &out), CG_ERR_RUNTIME,
             "_softmax does not support automatic differentiation for "
             "outputs with complex dtype.");
    tu_fails(cg_log_softmax(ce, 0, &out), CG_ERR_RUNTIME,
             "_log_softmax does not support automatic differentiation for "
             "outputs with complex dtype.");
    ck_assert_ptr_null(out);
    tu_ok(cg_tensor_requires_grad_(ce, false));
    tu_ok(cg_softmax(ce, 1, &out));
    ck_assert_int_eq(cg_tensor_dtype(out), CG_COMPLEX64);
    tu_assert_shape(out, s03, 2);
    cg_tensor_release(out);
    cg_tensor *all[] = {x, s, c, z, c0, ce};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        ck_assert_ptr_null(cg_tensor_grad_fn(all[i]));
        cg_tensor_release(all[i]);
    }
}
END_TEST

/* The saved output modified in place (under no_grad): PyTorch's message,
 * naming the node whose output it is; no .grad written. */
START_TEST(test_saved_output)
{
    int64_t s34[2] = {3, 4};
    cg_tensor *x = zt(s34, 2, CG_FLOAT32, true), *y = NULL, *s = NULL;
    for (int log = 0; log < 2; log++) {
        tu_ok(log ? cg_log_softmax(x, 1, &y) : cg_softmax(x, 1, &y));
        ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(y)), 1);
        tu_ok(cg_sum(y, &s));
        bool prev = cg_set_grad_enabled(false);
        tu_ok(cg_tensor_fill_(y, 2.0));
        cg_set_grad_enabled(prev);
        char msg[512];
        snprintf(msg, sizeof msg,
                 "one of the variables needed for gradient computation has "
                 "been modified by an inplace operation: [torch.FloatTensor "
                 "[3, 4]], which is output 0 of %s, is at version 1; "
                 "expected version 0 instead. Hint: enable anomaly detection "
                 "to find the operation that failed to compute its gradient, "
                 "with torch.autograd.set_detect_anomaly(True).",
                 log ? "LogSoftmaxBackward0" : "SoftmaxBackward0");
        tu_fails(cg_tensor_backward(s, NULL, false), CG_ERR_RUNTIME, msg);
        ck_assert_ptr_null(cg_tensor_grad(x));
        cg_tensor_release(s);
        cg_tensor_release(y);
    }
    cg_tensor_release(x);
}
END_TEST

/* ======================================================================
 * alloc
 * ====================================================================== */

static cg_status alloc_scenario(void *ctx)
{
    const bool *log = ctx;
    int64_t shape[3] = {2, 3, 4};
    cg_tensor *x = NULL, *v = NULL, *y = NULL, *s = NULL;
    cg_status st = cg_ones(shape, 3, CG_FLOAT64, &x);
    if (st == CG_OK)
        st = cg_tensor_requires_grad_(x, true);
    if (st == CG_OK)
        st = cg_tensor_transpose(x, 0, 2, &v);
    if (st == CG_OK)
        st = *log ? cg_log_softmax(v, 1, &y) : cg_softmax(v, 1, &y);
    if (st == CG_OK)
        st = cg_sum(y, &s);
    if (st == CG_OK)
        st = cg_tensor_backward(s, NULL, false);
    cg_tensor_release(s);
    cg_tensor_release(y);
    cg_tensor_release(v);
    cg_tensor_release(x);
    return st;
}

START_TEST(test_alloc)
{
    bool log = false;
    ck_assert_int_gt(tu_alloc_sweep(alloc_scenario, &log, "softmax"), 0);
    log = true;
    ck_assert_int_gt(tu_alloc_sweep(alloc_scenario, &log, "log_softmax"), 0);
}
END_TEST

/* ======================================================================
 * gradcheck
 * ====================================================================== */

typedef struct gc_spec {
    bool log;
    int64_t dim;
    bool transpose;
} gc_spec;

static cg_status gc_fn(cg_tensor *const *in, int n, cg_tensor **out, void *user)
{
    (void)n;
    const gc_spec *s = user;
    cg_tensor *v = NULL;
    cg_status st = CG_OK;
    if (s->transpose)
        st = cg_tensor_transpose(in[0], 0, -1, &v);
    else
        v = cg_tensor_retain(in[0]);
    if (st != CG_OK)
        return st;
    st = s->log ? cg_log_softmax(v, s->dim, out) : cg_softmax(v, s->dim, out);
    cg_tensor_release(v);
    return st;
}

START_TEST(test_gradcheck)
{
    static const struct {
        gc_spec s;
        int ndim;
        int64_t shape[3];
    } cases[] = {
        {{false, -1, false}, 2, {3, 4}},  {{true, -1, false}, 2, {3, 4}},
        {{false, 0, true}, 3, {2, 3, 4}}, {{true, 1, true}, 3, {2, 3, 4}},
        {{false, 0, false}, 0, {0}},      {{true, 0, false}, 1, {5}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        cg_tensor *x = NULL;
        cg_manual_seed(20 + k);
        tu_ok(cg_randn(cases[k].shape, cases[k].ndim, CG_FLOAT64, NULL, &x));
        tu_ok(cg_tensor_requires_grad_(x, true));
        cg_gradcheck_result r;
        tu_ok(cg_gradcheck(gc_fn, (void *)&cases[k].s, &x, 1, NULL, &r));
        ck_assert_msg(r.passed, "case %zu: %s", k, r.message);
        cg_tensor_release(x);
    }
}
END_TEST

Suite *softmax_suite(void)
{
    Suite *s = suite_create("softmax");
    tu_fixture_tcase(s, "torch", &torch_cases);
    tcase_add_test(tu_suite_tcase(s, "special", 0), test_special);
    tcase_add_test(tu_suite_tcase(s, "threads", 60), test_threads);
    TCase *tc = tu_suite_tcase(s, "errors", 0);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_saved_output);
    tcase_add_test(tu_suite_tcase(s, "alloc", 120), test_alloc);
    tcase_add_test(tu_suite_tcase(s, "gradcheck", 120), test_gradcheck);
    return s;
}
