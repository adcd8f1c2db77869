/* test_reduce.c -- sum and mean (and cg__sum_to, through expand's backward)
 * against PyTorch 1.13.
 *
 * TCases:
 *   torch      every "reduce" row of tests/data/ops/reduce/cases.tsv (made
 *              by tests/data/ops/gen_reduce.py): forward values, the
 *              grad_fn chain, and the gradients of y.backward(gy), for all
 *              four dtypes, non-contiguous inputs, 0-d and empty tensors
 *   order      the documented summation order: chunks of 256 summed as a
 *              pairwise tree, chunk sums added left to right, in double
 *   threads    1, 2 and 3 threads give bitwise-identical sums and gradients
 *   errors     PyTorch's messages, arguments untouched
 *   alloc      every allocation of forward + backward fails in turn
 *   gradcheck  finite differences (float64, complex128)
 */
#include "testutil.h"
#include "fixture.h"
#include "simd_internal.h"
#include "tensor_internal.h"

#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* float32 results are rounded from double sums, PyTorch's from float
 * cascades: both within a few ulp of exact. float64: both pairwise-like. */
#define TOL_F32 1e-5
#define TOL_F64 1e-12

/* ======================================================================
 * torch
 * ====================================================================== */

static cg_status reduce_op(const tu_fixture_case *c, cg_tensor *const *in,
                           int n, cg_tensor **out)
{
    const char *op = tu_fixture_field(c, "op");
    int64_t dims[CG_MAX_DIMS];
    ck_assert_int_eq(n, 1);
    if (strcmp(op, "sum") == 0)
        return cg_sum(in[0], out);
    if (strcmp(op, "mean") == 0)
        return cg_mean(in[0], out);
    if (strcmp(op, "expand") == 0) {
        int nd = tu_fixture_arg_list(c, "shape", 'x', dims, CG_MAX_DIMS);
        return cg_tensor_expand(in[0], dims, nd, out);
    }
    int nd = tu_fixture_arg_list(c, "dims", ',', dims, CG_MAX_DIMS);
    bool keep = tu_fixture_arg_int(c, "keep") != 0;
    if (strcmp(op, "sum_dims") == 0)
        return cg_sum_dims(in[0], dims, nd, keep, out);
    ck_assert_str_eq(op, "mean_dims");
    return cg_mean_dims(in[0], dims, nd, keep, out);
}

/* The "reduce" rows of tests/data/ops/reduce (see gen_reduce.py). */
static const tu_fixture_set torch_cases = {"ops/reduce", "reduce", reduce_op,
                                           TOL_F32, TOL_F64};

/* ======================================================================
 * order
 * ====================================================================== */

/* The balanced pairwise sum of l[lo .. lo + n), n a power of two. */
static double model_tree(const double *l, int lo, int n)
{
    return n == 1 ? l[lo]
                  : model_tree(l, lo, n / 2) + model_tree(l, lo + n / 2, n / 2);
}

/* The documented order, computed here independently: per chunk of 256,
 * 16 lanes (lane j: x[j], x[j+16], ... left to right, from -0.0), the
 * lanes as a balanced pairwise tree; chunks left to right. */
static double model_sum(const double *x, int64_t n)
{
    double total = 0.0;
    for (int64_t c0 = 0; c0 < n; c0 += 256) {
        int64_t m = n - c0 < 256 ? n - c0 : 256;
        double l[16];
        for (int j = 0; j < 16; j++)
            l[j] = -0.0;
        for (int64_t i = 0; i < m; i++)
            l[i % 16] = l[i % 16] + x[c0 + i];
        double v = model_tree(l, 0, 16);
        total = c0 == 0 ? v : total + v;
    }
    return total;
}

/* Each test of the order runs once per SIMD level (_i): the vector lane
 * sums keep the portable order bit for bit. */
START_TEST(test_order)
{
    cg_simd prev = cg__simd_override((cg_simd)_i);
    /* values spanning more magnitudes than a double holds, with mantissas
     * that do not end early, make the order visible: their sums round */
    static const int64_t sizes[] = {1, 7, 255, 256, 257, 1000, 5000};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int64_t n = sizes[k];
        double *x = malloc((size_t)n * sizeof *x);
        ck_assert_ptr_nonnull(x);
        for (int64_t i = 0; i < n; i++)
            x[i] = ldexp((i % 3 == 0 ? -1.0 : 1.0) *
                             (1.0 + 1.0 / (double)(i % 7 + 3)),
                         (int)(i % 70) - 35);
        cg_tensor *t = NULL, *s = NULL;
        tu_ok(cg_tensor_from_data(x, &n, 1, CG_FLOAT64, &t));
        tu_ok(cg_sum(t, &s));
        double got, im;
        tu_ok(cg_tensor_item(s, &got, &im));
        double want = model_sum(x, n);
        ck_assert_msg(memcmp(&got, &want, sizeof got) == 0,
                      "n=%lld: %.17g, expected %.17g", (long long)n, got, want);
        /* float32 rounds the double sum once */
        cg_tensor *t32 = NULL, *s32 = NULL;
        tu_ok(cg_tensor_to(t, CG_FLOAT32, &t32));
        tu_ok(cg_sum(t32, &s32));
        float *xf = cg_tensor_data(t32);
        double *xd = malloc((size_t)n * sizeof *xd);
        ck_assert_ptr_nonnull(xd);
        for (int64_t i = 0; i < n; i++)
            xd[i] = xf[i];
        tu_ok(cg_tensor_item(s32, &got, &im));
        ck_assert_msg(got == (double)(float)model_sum(xd, n), "float32 n=%lld",
                      (long long)n);
        free(xd);
        cg_tensor_release(s32);
        cg_tensor_release(t32);
        cg_tensor_release(s);
        cg_tensor_release(t);
        free(x);
    }
    cg__simd_override(prev);
}
END_TEST

/* float32 inputs whose large values cancel: the double lane sums round
 * differently in another order, by more than a float's last bit of the
 * small result, so the float32 lane sums of every SIMD level (_i) are
 * checked bit for bit against the documented order. */
START_TEST(test_order_f32_cancel)
{
    cg_simd prev = cg__simd_override((cg_simd)_i);
    enum { N = 3000 };
    static float x[N];
    static double xd[N];
    uint32_t r = 12345;
    for (int i = 0; i < N / 2; i++) {
        r = r * 1664525u + 1013904223u;
        float u = 1.0f + (float)(r >> 8) / 16777216.0f;
        /* a large value and, 750 places on (mod N/2), its negative */
        x[i] = i % 2 ? ldexpf(u, 30 + i % 20) : ldexpf(u, -(i % 10));
        x[N / 2 + (i + 750) % (N / 2)] = i % 2 ? -x[i] : x[i];
    }
    for (int i = 0; i < N; i++)
        xd[i] = x[i];
    int64_t n = N;
    cg_tensor *t = NULL, *s = NULL;
    tu_ok(cg_tensor_from_data(x, &n, 1, CG_FLOAT32, &t));
    tu_ok(cg_sum(t, &s));
    double got, im;
    tu_ok(cg_tensor_item(s, &got, &im));
    float want = (float)model_sum(xd, N);
    ck_assert_msg((float)got == want, "level %d: %.9g, expected %.9g", _i, got,
                  (double)want);
    cg_tensor_release(s);
    cg_tensor_release(t);
    cg__simd_override(prev);
}
END_TEST

/* A strided sum over a middle dim equals the model per output. */
START_TEST(test_order_strided)
{
    cg_simd prev = cg__simd_override((cg_simd)_i);
    int64_t shape[3] = {3, 600, 2}, n = 3 * 600 * 2;
    double *x = malloc((size_t)n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < n; i++)
        x[i] = ldexp(1.0 + 1.0 / (double)(i % 11 + 3), (int)(i % 70) - 35) *
               (i % 2 ? 1 : -1);
    cg_tensor *t = NULL, *s = NULL;
    tu_ok(cg_tensor_from_data(x, shape, 3, CG_FLOAT64, &t));
    int64_t dim = 1;
    tu_ok(cg_sum_dims(t, &dim, 1, false, &s));
    double col[600];
    for (int a = 0; a < 3; a++)
        for (int b = 0; b < 2; b++) {
            for (int j = 0; j < 600; j++)
                col[j] = x[(a * 600 + j) * 2 + b];
            int64_t idx[2] = {a, b};
            double got, im, want = model_sum(col, 600);
            tu_ok(cg_tensor_get(s, idx, &got, &im));
            ck_assert(memcmp(&got, &want, sizeof got) == 0);
        }
    cg_tensor_release(s);
    cg_tensor_release(t);
    free(x);
    cg__simd_override(prev);
}
END_TEST

/* ======================================================================
 * threads
 * ====================================================================== */

static void sums_with_threads(int threads, cg_tensor *x, cg_tensor **outs)
{
    ck_assert_int_eq(cg_set_num_threads(threads), CG_OK);
    int64_t d0 = 0, d1 = 1, d01[2] = {0, 1};
    cg_tensor *g = NULL;
    tu_ok(cg_sum(x, &outs[0]));
    tu_ok(cg_sum_dims(x, &d0, 1, false, &outs[1]));
    tu_ok(cg_sum_dims(x, &d1, 1, true, &outs[2]));
    tu_ok(cg_mean_dims(x, d01, 2, false, &outs[3]));
    tu_ok(cg_tensor_backward(outs[3], NULL, false));
    tu_ok(cg_tensor_clone(cg_tensor_grad(x), &g));
    tu_ok(cg_tensor_zero_grad(x, true));
    outs[4] = g;
}

START_TEST(test_threads)
{
    /* 210,000 inputs; and 17,496 (ConvTranspose3d E's output), just over
     * the size at which a sum goes to the pool */
    const int64_t shapes[2][2] = {{300, 700}, {54, 324}};
    for (int k = 0; k < 2; k++) {
        cg_tensor *x = NULL, *a[5], *b[5], *c[5];
        cg_manual_seed(7);
        tu_ok(cg_randn(shapes[k], 2, CG_FLOAT32, NULL, &x));
        tu_ok(cg_tensor_requires_grad_(x, true));
        int prev = cg_get_num_threads();
        sums_with_threads(1, x, a);
        sums_with_threads(2, x, b);
        sums_with_threads(3, x, c);
        cg_set_num_threads(prev);
        for (int i = 0; i < 5; i++) {
            tu_assert_bitwise(a[i], b[i], "1 vs 2 threads");
            tu_assert_bitwise(a[i], c[i], "1 vs 3 threads");
            cg_tensor_release(a[i]);
            cg_tensor_release(b[i]);
            cg_tensor_release(c[i]);
        }
        cg_tensor_release(x);
    }
}
END_TEST

/* ======================================================================
 * errors
 * ====================================================================== */

START_TEST(test_errors)
{
    int64_t shape[2] = {2, 3};
    cg_tensor *x = NULL, *out = NULL, *s = NULL;
    tu_ok(cg_ones(shape, 2, CG_FLOAT32, &x));
    tu_ok(cg_tensor_requires_grad_(x, true));
    int64_t dup[2] = {1, 1}, dup2[2] = {1, -1}, dup3[3] = {0, 1, 0},
            bad[2] = {0, 2}, neg[1] = {-3};
    tu_fails(cg_sum_dims(x, dup, 2, false, &out), CG_ERR_RUNTIME,
             "dim 1 appears multiple times in the list of dims");
    tu_fails(cg_sum_dims(x, dup2, 2, true, &out), CG_ERR_RUNTIME,
             "dim 1 appears multiple times in the list of dims");
    tu_fails(cg_mean_dims(x, dup3, 3, false, &out), CG_ERR_RUNTIME,
             "dim 0 appears multiple times in the list of dims");
    tu_fails(cg_sum_dims(x, bad, 2, false, &out), CG_ERR_INDEX,
             "Dimension out of range (expected to be in range of [-2, 1], "
             "but got 2)");
    tu_fails(cg_mean_dims(x, neg, 1, false, &out), CG_ERR_INDEX,
             "Dimension out of range (expected to be in range of [-2, 1], "
             "but got -3)");
    ck_assert_ptr_null(out);
    /* 0-d: dims 0 and -1 only */
    int64_t one = 1;
    tu_ok(cg_full(NULL, 0, 2.0, CG_FLOAT64, &s));
    tu_fails(cg_sum_dims(s, &one, 1, false, &out), CG_ERR_INDEX,
             "Dimension out of range (expected to be in range of [-1, 0], "
             "but got 1)");
    /* NULL arguments */
    tu_fails(cg_sum(NULL, &out), CG_ERR_MISUSE, "tensor must not be NULL");
    tu_fails(cg_mean(x, NULL), CG_ERR_MISUSE, "out must not be NULL");
    tu_fails(cg_sum_dims(x, NULL, 1, false, &out), CG_ERR_MISUSE,
             "dims must not be NULL");
    tu_fails(cg_mean_dims(x, dup, -1, false, &out), CG_ERR_VALUE,
             "the number of dims must not be negative, but got -1");
    ck_assert_ptr_null(out);
    /* the input is unchanged and records nothing */
    ck_assert_ptr_null(cg_tensor_grad_fn(x));
    ck_assert_ptr_null(cg_tensor_grad(x));
    double v, im;
    int64_t idx[2] = {1, 2};
    tu_ok(cg_tensor_get(x, idx, &v, &im));
    ck_assert(v == 1.0);
    cg_tensor_release(s);
    cg_tensor_release(x);
}
END_TEST

/* retain_graph keeps MeanBackward0 usable: two backwards accumulate. */
START_TEST(test_backward_twice)
{
    int64_t shape[2] = {2, 3};
    cg_tensor *x = NULL, *m = NULL;
    tu_ok(cg_ones(shape, 2, CG_FLOAT64, &x));
    tu_ok(cg_tensor_requires_grad_(x, true));
    tu_ok(cg_mean(x, &m));
    ck_assert_str_eq(cg_node_name(cg_tensor_grad_fn(m)), "MeanBackward0");
    tu_ok(cg_tensor_backward(m, NULL, true));
    tu_ok(cg_tensor_backward(m, NULL, false));
    double g, im;
    int64_t idx[2] = {0, 0};
    tu_ok(cg_tensor_get(cg_tensor_grad(x), idx, &g, &im));
    ck_assert_double_eq_tol(g, 2.0 / 6.0, 1e-15);
    cg_tensor_release(m);
    cg_tensor_release(x);
}
END_TEST

/* ======================================================================
 * empty
 * ====================================================================== */

/* Every element of t (float32) is `want`, or NaN when want is NaN. */
static void assert_all(const cg_tensor *t, double want)
{
    const float *v = cg_tensor_data(t);
    for (int64_t i = 0; i < cg_tensor_numel(t); i++)
        ck_assert_msg(isnan(want) ? isnan(v[i]) : v[i] == want,
                      "element %lld: %g, expected %g", (long long)i, v[i],
                      want);
}

/* An empty input whose other sizes multiply past int64 (PyTorch 1.13:
 * torch.empty(0, 2**40, 2**40).sum(dim=(1, 2)) has shape (0,), .sum() is
 * 0 and .mean() is nan), and one whose contiguous strides wrap around
 * ([4, 0, 2**22, 2**40]: strides (2**62, 2**62, 2**40, 1), sum over
 * (1, 2, 3) is [0, 0, 0, 0]). */
START_TEST(test_empty_huge)
{
    const int64_t B = INT64_C(1) << 40;
    cg_tensor *x = NULL, *xt = NULL, *y = NULL;
    tu_ok(cg_empty((int64_t[]){0, B, B}, 3, CG_FLOAT32, &x));
    tu_ok(cg_tensor_requires_grad_(x, true));
    tu_ok(cg_sum_dims(x, (int64_t[]){1, 2}, 2, false, &y));
    tu_assert_shape(y, (int64_t[]){0}, 1);
    cg_tensor *s = NULL;
    tu_ok(cg_sum(y, &s));
    tu_ok(cg_tensor_backward(s, NULL, false));
    tu_assert_shape(cg_tensor_grad(x), (int64_t[]){0, B, B}, 3);
    cg_tensor_release(s);
    cg_tensor_release(y);
    tu_ok(cg_mean_dims(x, (int64_t[]){1, 2}, 2, true, &y));
    tu_assert_shape(y, (int64_t[]){0, 1, 1}, 3);
    cg_tensor_release(y);
    tu_ok(cg_sum(x, &y));
    assert_all(y, 0.0);
    cg_tensor_release(y);
    tu_ok(cg_mean(x, &y));
    assert_all(y, NAN);
    cg_tensor_release(y);
    tu_ok(cg_tensor_transpose(x, 1, 2, &xt));
    tu_ok(cg_sum_dims(xt, (int64_t[]){1, 2}, 2, false, &y));
    tu_assert_shape(y, (int64_t[]){0}, 1);
    cg_tensor_release(y);
    cg_tensor_release(xt);
    cg_tensor_release(x);
    tu_ok(cg_empty((int64_t[]){4, 0, INT64_C(1) << 22, B}, 4, CG_FLOAT32, &x));
    tu_ok(cg_sum_dims(x, (int64_t[]){1, 2, 3}, 3, false, &y));
    tu_assert_shape(y, (int64_t[]){4}, 1);
    assert_all(y, 0.0);
    cg_tensor_release(y);
    tu_ok(cg_mean_dims(x, (int64_t[]){1, 2, 3}, 3, false, &y));
    assert_all(y, NAN);
    cg_tensor_release(y);
    cg_tensor_release(x);
}
END_TEST

/* ======================================================================
 * alloc
 * ====================================================================== */

static cg_status alloc_scenario(void *ctx)
{
    const bool *mean = ctx;
    int64_t shape[3] = {3, 300, 2}, dims[2] = {1, -1};
    cg_tensor *x = NULL, *y = NULL, *v = NULL;
    cg_status st = cg_ones(shape, 3, CG_COMPLEX64, &x);
    if (st == CG_OK)
        st = cg_tensor_requires_grad_(x, true);
    if (st == CG_OK)
        st = cg_tensor_transpose(x, 0, 2, &v);
    if (st == CG_OK)
        st = *mean ? cg_mean_dims(v, dims, 2, true, &y)
                   : cg_sum_dims(v, dims, 2, false, &y);
    cg_tensor *s = NULL;
    if (st == CG_OK)
        st = cg_sum(y, &s);
    if (st == CG_OK) {
        cg_tensor_release(y);
        y = s;
        st = cg_tensor_backward(y, NULL, false);
    }
    cg_tensor_release(y);
    cg_tensor_release(v);
    cg_tensor_release(x);
    return st;
}

START_TEST(test_alloc)
{
    bool mean = false;
    ck_assert_int_gt(tu_alloc_sweep(alloc_scenario, &mean, "sum"), 0);
    mean = true;
    ck_assert_int_gt(tu_alloc_sweep(alloc_scenario, &mean, "mean"), 0);
}
END_TEST

/* ======================================================================
 * gradcheck
 * ====================================================================== */

typedef struct gc_spec {
    bool mean;
    int ndims; /* -1: the whole tensor */
    int64_t dims[3];
    bool keep;
    bool transpose; /* reduce a transposed view */
} gc_spec;

static cg_status gc_fn(cg_tensor *const *in, int n, cg_tensor **out, void *user)
{
    (void)n;
    const gc_spec *s = user;
    cg_tensor *v = cg_tensor_retain(in[0]);
    cg_status st = CG_OK;
    if (s->transpose) {
        cg_tensor_release(v);
        if ((st = cg_tensor_transpose(in[0], 0, -1, &v)) != CG_OK)
            return st;
    }
    if (s->ndims < 0)
        st = s->mean ? cg_mean(v, out) : cg_sum(v, out);
    else
        st = s->mean ? cg_mean_dims(v, s->dims, s->ndims, s->keep, out)
                     : cg_sum_dims(v, s->dims, s->ndims, s->keep, out);
    cg_tensor_release(v);
    return st;
}

START_TEST(test_gradcheck)
{
    static const gc_spec specs[] = {
        {false, -1, {0}, false, false}, {true, -1, {0}, false, true},
        {false, 1, {1}, false, false},  {true, 2, {0, 2}, true, true},
        {false, 0, {0}, true, false},   {true, 1, {-1}, false, true},
    };
    static const cg_dtype dts[] = {CG_FLOAT64, CG_COMPLEX128};
    int64_t shape[3] = {2, 3, 4};
    for (size_t d = 0; d < 2; d++)
        for (size_t k = 0; k < sizeof specs / sizeof *specs; k++) {
            cg_tensor *x = NULL;
            cg_manual_seed(100 + k);
            tu_ok(cg_randn(shape, 3, dts[d], NULL, &x));
            tu_ok(cg_tensor_requires_grad_(x, true));
            cg_gradcheck_result r;
            tu_ok(cg_gradcheck(gc_fn, (void *)&specs[k], &x, 1, NULL, &r));
            ck_assert_msg(r.passed, "%s spec %zu: %s", cg_dtype_name(dts[d]), k,
                          r.message);
            cg_tensor_release(x);
        }
}
END_TEST

Suite *reduce_suite(void)
{
    Suite *s = suite_create("reduce");
    tu_fixture_tcase(s, "torch", &torch_cases);
    TCase *tc = tu_suite_tcase(s, "order", 0);
    tcase_add_loop_test(tc, test_order, 0, CG_SIMD_COUNT);
    tcase_add_loop_test(tc, test_order_strided, 0, CG_SIMD_COUNT);
    tcase_add_loop_test(tc, test_order_f32_cancel, 0, CG_SIMD_COUNT);
    tcase_add_test(tu_suite_tcase(s, "threads", 60), test_threads);
    tc = tu_suite_tcase(s, "errors", 0);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_backward_twice);
    tcase_add_test(tu_suite_tcase(s, "empty", 0), test_empty_huge);
    tcase_add_test(tu_suite_tcase(s, "alloc", 120), test_alloc);
    tcase_add_test(tu_suite_tcase(s, "gradcheck", 120), test_gradcheck);
    return s;
}
