/* test_activation.c -- relu, leaky_relu, sigmoid, tanh and gelu
 * (core/activation.c): values and gradients against PyTorch 1.13 fixtures
 * (the "act" rows of tests/data/ops/arith, written by
 * tests/data/ops/gen_arith.py), including NaN, infinities and signed
 * zeros; grad_fn names, edges and saved tensors; PyTorch's error messages
 * for complex inputs and a bad `approximate`; the contiguous and strided
 * kernel paths held to each other; allocation failures; and
 * finite-difference gradient checks in float64 and complex128. */
#include "testutil.h"
#include "fixture.h"

#include <math.h>
#include <stdint.h>
#include <string.h>

/* float32: PyTorch's kernels (oneDNN's GELU, Sleef's exp/tanh) differ
 * from ours (glibc, and GELU in double) by a few ulp. float64: 1e-16. */
#define TOL_F32 1e-5
#define TOL_F64 1e-12

/* A failing call must leave *out exactly as it was. */
#define UNTOUCHED ((cg_tensor *)(uintptr_t)0x5a5a5a5a)

/* ======================================================================
 * The activations, as one signature
 * ====================================================================== */

typedef cg_status (*act_fn)(cg_tensor *, cg_tensor **);

static cg_status leaky(cg_tensor *a, cg_tensor **y)
{
    return cg_leaky_relu(a, 0.05, y);
}
static cg_status gelu(cg_tensor *a, cg_tensor **y)
{
    return cg_gelu(a, "none", y);
}
static cg_status gelu_tanh(cg_tensor *a, cg_tensor **y)
{
    return cg_gelu(a, "tanh", y);
}

static const struct {
    const char *name;
    act_fn fn;
    bool complex_ok; /* PyTorch accepts complex input */
    bool saves_output;
} acts[] = {
    {"relu", cg_relu, false, true},      {"leaky_relu", leaky, false, false},
    {"sigmoid", cg_sigmoid, true, true}, {"tanh", cg_tanh, true, true},
    {"gelu", gelu, false, false},        {"gelu_tanh", gelu_tanh, false, false},
};
#define N_ACTS ((int)(sizeof acts / sizeof *acts))

/* ======================================================================
 * Fixtures: the "act" rows of tests/data/ops/arith (see gen_arith.py)
 * ====================================================================== */

static cg_status act_op(const tu_fixture_case *c, cg_tensor *const *in, int n,
                        cg_tensor **y)
{
    const char *op = tu_fixture_field(c, "op");
    ck_assert_int_eq(n, 1);
    if (strcmp(op, "leaky_relu") == 0) /* the row's slope */
        return cg_leaky_relu(in[0], tu_fixture_number(c, "s"), y);
    if (strcmp(op, "gelu") == 0) /* approximate omitted */
        return cg_gelu(in[0], NULL, y);
    for (int i = 0; i < N_ACTS; i++)
        if (strcmp(op, acts[i].name) == 0)
            return acts[i].fn(in[0], y);
    ck_abort_msg("unknown activation %s", op);
    return CG_ERR_VALUE;
}

static const tu_fixture_set fixture_cases = {"ops/arith", "act", act_op,
                                             TOL_F32, TOL_F64};

/* ======================================================================
 * Hand-written tests
 * ====================================================================== */

/* shape filled with v0, v0 + step, ... (complex: imaginary parts
 * 0.5 - 0.25 * k). */
static cg_tensor *ramp(const int64_t *shape, int ndim, cg_dtype dt, double v0,
                       double step)
{
    cg_tensor *t = NULL;
    tu_ok(cg_empty(shape, ndim, dt, &t));
    int64_t idx[CG_MAX_DIMS] = {0};
    for (int64_t k = 0; k < cg_tensor_numel(t); k++) {
        double im = cg_dtype_is_complex(dt) ? 0.5 - 0.25 * (double)k : 0.0;
        tu_ok(cg_tensor_set(t, idx, v0 + step * (double)k, im));
        for (int d = ndim - 1; d >= 0 && ++idx[d] == shape[d]; d--)
            idx[d] = 0;
    }
    return t;
}

/* The node saves its output (an alias with the same values) or its
 * input (the tensor itself), as PyTorch's ReluBackward0 saves `result` and
 * GeluBackward0 `self`. gelu(x, NULL) is gelu(x, "none"). */
START_TEST(test_saved)
{
    int64_t shape[] = {2, 3};
    cg_tensor *a = ramp(shape, 2, CG_FLOAT64, -1.2, 0.5);
    tu_ok(cg_tensor_requires_grad_(a, true));
    for (int i = 0; i < N_ACTS; i++) {
        cg_tensor *y = NULL;
        tu_ok(acts[i].fn(a, &y));
        const cg_node *fn = cg_tensor_grad_fn(y);
        ck_assert_int_eq(cg_node_num_saved(fn), 1);
        const cg_tensor *s = cg_node_saved(fn, 0);
        if (acts[i].saves_output) {
            ck_assert_ptr_ne(s, y); /* an alias: no reference cycle */
            ck_assert(cg_tensor_shares_storage(s, y));
        } else {
            ck_assert_ptr_eq(s, a);
        }
        cg_tensor_release(y);
    }
    cg_tensor *y1 = NULL, *y2 = NULL;
    tu_ok(cg_gelu(a, NULL, &y1));
    tu_ok(cg_gelu(a, "none", &y2));
    tu_assert_bitwise(y1, y2, "gelu NULL vs none");
    cg_tensor_release(y1);
    cg_tensor_release(y2);
    cg_tensor_release(a);
}
END_TEST

/* The saved output modified in place: PyTorch's message names it. */
START_TEST(test_inplace_saved)
{
    int64_t n = 4;
    cg_tensor *a = ramp(&n, 1, CG_FLOAT32, -1, 1), *y = NULL, *g = NULL;
    tu_ok(cg_tensor_requires_grad_(a, true));
    tu_ok(cg_relu(a, &y));
    bool prev = cg_set_grad_enabled(false);
    tu_ok(cg_tensor_fill_(y, 3.0));
    cg_set_grad_enabled(prev);
    tu_ok(cg_ones(&n, 1, CG_FLOAT32, &g));
    tu_fails(cg_tensor_backward(y, g, false), CG_ERR_RUNTIME,
             "one of the variables needed for gradient computation has been "
             "modified by an inplace operation: [torch.FloatTensor [4]], "
             "which is output 0 of ReluBackward0, is at version 1; expected "
             "version 0 instead. Hint: enable anomaly detection to find the "
             "operation that failed to compute its gradient, with "
             "torch.autograd.set_detect_anomaly(True).");
    ck_assert_ptr_null(cg_tensor_grad(a));
    cg_tensor_release(y);
    cg_tensor_release(g);
    cg_tensor_release(a);
}
END_TEST

/* Every activation on a transposed (strided) input gives the same bits
 * as on its contiguous copy, forward and backward; and the same bits for
 * 1 and 3 threads on a tensor of several parallel chunks. */
START_TEST(test_strided_paths)
{
    for (int dt = 0; dt < CG_DTYPE_COUNT; dt++) {
        int64_t bs[] = {6, 5};
        cg_tensor *base = ramp(bs, 2, (cg_dtype)dt, -3.1, 0.21);
        cg_tensor *nc = NULL, *c = NULL;
        tu_ok(cg_tensor_requires_grad_(base, true));
        tu_ok(cg_tensor_transpose(base, 0, 1, &nc));
        bool prev = cg_set_grad_enabled(false);
        tu_ok(cg_tensor_contiguous(nc, &c));
        cg_set_grad_enabled(prev);
        tu_ok(cg_tensor_requires_grad_(c, true));
        for (int i = 0; i < N_ACTS; i++) {
            if (cg_dtype_is_complex((cg_dtype)dt) && !acts[i].complex_ok)
                continue;
            cg_tensor *y1 = NULL, *y2 = NULL, *g = NULL, *gt = NULL;
            tu_ok(acts[i].fn(c, &y1));
            tu_ok(acts[i].fn(nc, &y2));
            tu_assert_bitwise(y2, y1, acts[i].name);
            /* the same upstream gradient, contiguous for the first and
             * strided (a transposed copy seen transposed) for the second */
            g = ramp(cg_tensor_shape(y1), 2, (cg_dtype)dt, 0.7, -0.09);
            tu_ok(cg_tensor_backward(y1, g, false));
            cg_tensor *gT = NULL, *gTc = NULL;
            tu_ok(cg_tensor_transpose(g, 0, 1, &gT));
            tu_ok(cg_tensor_contiguous(gT, &gTc));
            tu_ok(cg_tensor_transpose(gTc, 0, 1, &gt));
            ck_assert(!cg_tensor_is_contiguous(gt));
            tu_ok(cg_tensor_backward(y2, gt, false));
            cg_tensor *gbase = NULL;
            tu_ok(cg_tensor_transpose(cg_tensor_grad(base), 0, 1, &gbase));
            tu_assert_bitwise(gbase, cg_tensor_grad(c), acts[i].name);
            tu_ok(cg_tensor_zero_grad(base, true));
            tu_ok(cg_tensor_zero_grad(c, true));
            cg_tensor *all[] = {y1, y2, g, gt, gT, gTc, gbase};
            for (size_t k = 0; k < sizeof all / sizeof *all; k++)
                cg_tensor_release(all[k]);
        }
        cg_tensor_release(base);
        cg_tensor_release(nc);
        cg_tensor_release(c);
    }

    int64_t big[] = {257, 301};
    cg_tensor *x = ramp(big, 2, CG_FLOAT32, -7.0, 0.0002);
    int saved = cg_get_num_threads();
    for (int i = 0; i < N_ACTS; i++) {
        cg_tensor *y1 = NULL, *y3 = NULL;
        tu_ok(cg_set_num_threads(1));
        tu_ok(acts[i].fn(x, &y1));
        tu_ok(cg_set_num_threads(3));
        tu_ok(acts[i].fn(x, &y3));
        tu_assert_bitwise(y3, y1, acts[i].name);
        cg_tensor_release(y1);
        cg_tensor_release(y3);
    }
    tu_ok(cg_set_num_threads(saved));
    cg_tensor_release(x);
}
END_TEST

/* ======================================================================
 * Errors, with PyTorch 1.13's messages
 * ====================================================================== */

START_TEST(test_complex_errors)
{
    static const char *msgs[][2] = {
        /* complex64, complex128 */
        {"clamp is not supported for complex types",
         "clamp is not supported for complex types"},
        {"\"leaky_relu_cpu\" not implemented for 'ComplexFloat'",
         "\"leaky_relu_cpu\" not implemented for 'ComplexDouble'"},
        {NULL, NULL},
        {NULL, NULL},
        {"\"GeluKernelImpl\" not implemented for 'ComplexFloat'",
         "\"GeluKernelImpl\" not implemented for 'ComplexDouble'"},
        {"\"GeluKernelImpl\" not implemented for 'ComplexFloat'",
         "\"GeluKernelImpl\" not implemented for 'ComplexDouble'"},
    };
    int64_t shape[] = {3};
    for (int k = 0; k < 2; k++) {
        cg_tensor *z = ramp(shape, 1, k ? CG_COMPLEX128 : CG_COMPLEX64, 1, 1);
        tu_ok(cg_tensor_requires_grad_(z, true));
        double before[6], after[6];
        tu_ok(cg_tensor_to_doubles(z, before, 6));
        for (int i = 0; i < N_ACTS; i++) {
            cg_tensor *y = UNTOUCHED;
            if (acts[i].complex_ok) {
                tu_ok(acts[i].fn(z, &y));
                ck_assert_int_eq(cg_tensor_dtype(y), cg_tensor_dtype(z));
                cg_tensor_release(y);
                continue;
            }
            tu_fails(acts[i].fn(z, &y), CG_ERR_RUNTIME, msgs[i][k]);
            ck_assert_ptr_eq(y, UNTOUCHED);
        }
        tu_ok(cg_tensor_to_doubles(z, after, 6));
        ck_assert_mem_eq(before, after, sizeof before);
        ck_assert(cg_tensor_is_leaf(z) && cg_tensor_requires_grad(z));
        ck_assert_ptr_null(cg_tensor_grad(z));
        cg_tensor_release(z);
    }
}
END_TEST

START_TEST(test_argument_errors)
{
    int64_t shape[] = {3};
    cg_tensor *x = ramp(shape, 1, CG_FLOAT32, 1, 1), *y = UNTOUCHED;
    cg_tensor *z = ramp(shape, 1, CG_COMPLEX64, 1, 1);
    static const char *bad[] = {"x", "None", "Tanh", "", "tanh "};
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        tu_fails(cg_gelu(x, bad[i], &y), CG_ERR_RUNTIME,
                 "approximate argument must be either none or tanh.");
        /* checked before the dtype, as in PyTorch */
        tu_fails(cg_gelu(z, bad[i], &y), CG_ERR_RUNTIME,
                 "approximate argument must be either none or tanh.");
    }
    for (int i = 0; i < N_ACTS; i++) {
        tu_fails(acts[i].fn(NULL, &y), CG_ERR_MISUSE, "a must not be NULL");
        tu_fails(acts[i].fn(x, NULL), CG_ERR_MISUSE, "out must not be NULL");
    }
    ck_assert_ptr_eq(y, UNTOUCHED);
    cg_tensor_release(x);
    cg_tensor_release(z);
}
END_TEST

/* ======================================================================
 * Allocation failures
 * ====================================================================== */

static cg_status sweep_scenario(void *ctx)
{
    (void)ctx;
    enum { N = 10 };
    cg_tensor *t[N] = {NULL};
    int64_t shape[] = {2, 3};
    cg_status st;
    if ((st = cg_full(shape, 2, -0.5, CG_FLOAT64, &t[0])) != CG_OK ||
        (st = cg_tensor_requires_grad_(t[0], true)) != CG_OK ||
        (st = cg_tensor_transpose(t[0], 0, 1, &t[1])) != CG_OK ||
        (st = cg_relu(t[1], &t[2])) != CG_OK ||
        (st = cg_leaky_relu(t[1], 0.1, &t[3])) != CG_OK ||
        (st = cg_sigmoid(t[3], &t[4])) != CG_OK ||
        (st = cg_gelu(t[4], "tanh", &t[5])) != CG_OK ||
        (st = cg_gelu(t[5], NULL, &t[6])) != CG_OK ||
        (st = cg_tanh(t[6], &t[7])) != CG_OK ||
        (st = cg_ones(cg_tensor_shape(t[7]), 2, CG_FLOAT64, &t[8])) != CG_OK)
        goto out;
    st = cg_tensor_backward(t[7], t[8], false);
out:
    for (int i = 0; i < N; i++)
        cg_tensor_release(t[i]);
    return st;
}

START_TEST(test_alloc_sweep)
{
    long n = tu_alloc_sweep(sweep_scenario, NULL, "activations");
    ck_assert_int_gt(n, 20);
}
END_TEST

/* ======================================================================
 * Gradient checks: float64 for all, complex128 for sigmoid and tanh;
 * inputs avoid relu's and leaky_relu's kink at 0
 * ====================================================================== */

static cg_status gc_call(cg_tensor *const *in, int n, cg_tensor **out,
                         void *user)
{
    (void)n;
    return acts[*(const int *)user].fn(in[0], out);
}

START_TEST(test_gradcheck)
{
    static const int which[N_ACTS] = {0, 1, 2, 3, 4, 5};
    static const struct {
        int ndim;
        int64_t shape[3];
        bool transposed;
    } shapes[] = {{2, {3, 4}, false},
                  {2, {4, 3}, true},
                  {0, {0}, false},
                  {3, {2, 1, 3}, true}};
    for (int dt = CG_FLOAT64; dt <= CG_COMPLEX128;
         dt += CG_COMPLEX128 - CG_FLOAT64) {
        if (dt == CG_COMPLEX128 && !acts[_i].complex_ok)
            continue;
        for (size_t s = 0; s < sizeof shapes / sizeof *shapes; s++) {
            int nd = shapes[s].ndim;
            int64_t bs[3];
            memcpy(bs, shapes[s].shape, sizeof bs);
            if (shapes[s].transposed) {
                bs[0] = shapes[s].shape[nd - 1];
                bs[nd - 1] = shapes[s].shape[0];
            }
            /* -2.05, -1.78, ...: never 0 */
            cg_tensor *leaf = ramp(bs, nd, (cg_dtype)dt, -2.05, 0.27), *in;
            tu_ok(cg_tensor_requires_grad_(leaf, true));
            if (shapes[s].transposed)
                tu_ok(cg_tensor_transpose(leaf, 0, -1, &in));
            else
                in = cg_tensor_retain(leaf);
            cg_gradcheck_result res;
            tu_ok(
                cg_gradcheck(gc_call, (void *)&which[_i], &in, 1, NULL, &res));
            ck_assert_msg(res.passed, "%s %s shape %zu: %s", acts[_i].name,
                          cg_dtype_name((cg_dtype)dt), s, res.message);
            cg_tensor_release(in);
            cg_tensor_release(leaf);
        }
    }
}
END_TEST

Suite *activation_suite(void)
{
    Suite *s = suite_create("activation");
    tu_fixture_tcase(s, "fixtures", &fixture_cases);
    TCase *tc = tu_suite_tcase(s, "autograd", 0);
    tcase_add_test(tc, test_saved);
    tcase_add_test(tc, test_inplace_saved);
    tcase_add_test(tu_suite_tcase(s, "kernels", 60), test_strided_paths);
    tc = tu_suite_tcase(s, "errors", 120);
    tcase_add_test(tc, test_complex_errors);
    tcase_add_test(tc, test_argument_errors);
    tcase_add_test(tc, test_alloc_sweep);
    tcase_add_loop_test(tu_suite_tcase(s, "gradcheck", 120), test_gradcheck, 0,
                        N_ACTS);
    return s;
}
