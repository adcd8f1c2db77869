/*
 * test_pooling.c -- F.max_pool3d / F.avg_pool3d and nn.MaxPool3d /
 * nn.AvgPool3d against PyTorch 1.13 (tests/data/nn/spatial, written by
 * gen_spatial.py): outputs, grad_fn names and input gradients of eight
 * configurations (batched and unbatched, padding, dilation, ceil mode,
 * count_include_pad, divisor_override) in float32 and float64, reprs,
 * attributes, error messages, float64 gradcheck, thread-count
 * independence and allocation failures.
 *
 * Max pooling also against a model of PyTorch's window walk on rows long
 * enough for the side-by-side path (ties, NaNs, -inf, edges).
 *
 * TCases: torch, repr, errors, gradcheck, threads, alloc, huge_sizes,
 * max_model.
 */
#include "cgrad_nn.h"
#include "spatial.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* float32: PyTorch sums a window in float like cgrad, in the same order;
 * the bound leaves room for a different summation order (section 2.9). */
#define TOL_F32 1e-5
#define TOL_F64 1e-12

#define DIR "nn/spatial/"

/* ---- modules from a case row --------------------------------------------- */

static cg_module *make_pool(const tu_fixture_case *c)
{
    const char *layer = tu_fixture_field(c, "layer");
    cg_ints k = tu_fixture_arg_ints(c, "k");
    cg_module *m = NULL;
    if (strcmp(layer, "MaxPool3d") == 0) {
        cg_max_pool3d_opts o = cg_max_pool3d_options(k);
        if (tu_fixture_has_arg(c, "s"))
            o.stride = tu_fixture_arg_ints(c, "s");
        if (tu_fixture_has_arg(c, "p"))
            o.padding = tu_fixture_arg_ints(c, "p");
        if (tu_fixture_has_arg(c, "d"))
            o.dilation = tu_fixture_arg_ints(c, "d");
        if (tu_fixture_has_arg(c, "ceil"))
            o.ceil_mode = tu_fixture_arg_int(c, "ceil") != 0;
        tu_ok(cg_max_pool3d_new(&o, &m));
    } else {
        ck_assert_str_eq(layer, "AvgPool3d");
        cg_avg_pool3d_opts o = cg_avg_pool3d_options(k);
        if (tu_fixture_has_arg(c, "s"))
            o.stride = tu_fixture_arg_ints(c, "s");
        if (tu_fixture_has_arg(c, "p"))
            o.padding = tu_fixture_arg_ints(c, "p");
        if (tu_fixture_has_arg(c, "ceil"))
            o.ceil_mode = tu_fixture_arg_int(c, "ceil") != 0;
        if (tu_fixture_has_arg(c, "cip"))
            o.count_include_pad = tu_fixture_arg_int(c, "cip") != 0;
        if (tu_fixture_has_arg(c, "div")) {
            o.has_divisor_override = true;
            o.divisor_override = tu_fixture_arg_int(c, "div");
        }
        tu_ok(cg_avg_pool3d_new(&o, &m));
    }
    return m;
}

static const char *const cases[] = {"mp1", "mp2", "mp3", "mp4",
                                    "ap1", "ap2", "ap3", "ap4"};
#define NCASES ((int)(sizeof cases / sizeof *cases))

/* Row _i / 2 in float32 (even) or float64 (odd). */
START_TEST(torch_case)
{
    tu_spatial_case sc = tu_spatial_case_open(_i);
    tu_spatial_case_load_io(&sc);
    cg_module *m = make_pool(sc.c);
    cg_tensor *y = NULL;
    tu_ok(cg_module_forward(m, sc.x, &y));
    tu_assert_close(y, sc.y_ref, sc.tol, sc.id);
    ck_assert_str_eq(cg_node_name(cg_tensor_grad_fn(y)),
                     tu_fixture_field(sc.c, "grad_fn"));
    /* PyTorch's node has the input's AccumulateGrad as its only edge */
    ck_assert_int_eq(cg_node_num_next(cg_tensor_grad_fn(y)), 1);
    tu_ok(cg_tensor_backward(y, sc.gy, false));
    tu_assert_close(cg_tensor_grad(sc.x), sc.gx_ref, sc.tol, "gx");
    /* a second backward finds the saved input freed, as in PyTorch */
    ck_assert_int_eq(cg_tensor_backward(y, sc.gy, false), CG_ERR_RUNTIME);
    cg_tensor_release(y);
    cg_module_free(m);
    tu_spatial_case_close(&sc);
}
END_TEST

/* ---- reprs and attributes -------------------------------------------------
 */

START_TEST(reprs)
{
    cg_module *m = NULL;
    cg_max_pool3d_opts mo = cg_max_pool3d_options(CG_INTS(1, 2));
    tu_ok(cg_max_pool3d_new(&mo, &m));
    tu_spatial_assert_repr(m, "mp_int");
    char buf[64];
    tu_ok(cg_module_getattr(m, "stride", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "2");
    tu_ok(cg_module_getattr(m, "return_indices", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "False");
    ck_assert_int_eq(cg_max_pool3d_config(m)->stride.v[0], 2);
    cg_module_free(m);

    mo = cg_max_pool3d_options(CG_TRIPLE(2, 1, 3));
    mo.stride = CG_TRIPLE(1, 2, 1);
    mo.padding = CG_INTS(1, 1);
    mo.dilation = CG_INTS(1, 2);
    mo.ceil_mode = true;
    tu_ok(cg_max_pool3d_new(&mo, &m));
    tu_spatial_assert_repr(m, "mp_tuple");
    tu_ok(cg_module_getattr(m, "kernel_size", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "(2, 1, 3)");
    cg_module_free(m);

    cg_avg_pool3d_opts ao = cg_avg_pool3d_options(CG_INTS(1, 2));
    tu_ok(cg_avg_pool3d_new(&ao, &m));
    tu_spatial_assert_repr(m, "ap_int");
    tu_ok(cg_module_getattr(m, "divisor_override", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "None");
    tu_ok(cg_module_getattr(m, "count_include_pad", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "True");
    cg_module_free(m);

    ao = cg_avg_pool3d_options(CG_TRIPLE(2, 1, 3));
    ao.stride = CG_INTS(1, 1);
    ao.padding = CG_TRIPLE(1, 0, 1);
    ao.ceil_mode = true;
    ao.count_include_pad = false;
    ao.has_divisor_override = true;
    ao.divisor_override = 3;
    tu_ok(cg_avg_pool3d_new(&ao, &m));
    tu_spatial_assert_repr(m, "ap_tuple");
    tu_ok(cg_module_getattr(m, "divisor_override", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "3");
    ck_assert_ptr_null(cg_max_pool3d_config(m));
    ck_assert_int_eq(cg_module_num_parameters(m), 0);
    cg_module_free(m);
}
END_TEST

/* ---- errors
 * ------------------------------------------------------------------ */

/* Rebuilds the call of errors.tsv row `id`; returns its status. */
static cg_status error_call(const char *id)
{
    static const int64_t s5[] = {2, 3, 4, 4, 4}, s3[] = {3, 4, 4},
                         zc[] = {2, 0, 4, 4, 4}, z4[] = {3, 0, 4, 4},
                         zs[] = {2, 3, 0, 4, 4}, c5[] = {1, 1, 4, 4, 4},
                         one5[] = {1, 1, 1, 1, 1};
    const int64_t big = INT64_C(1) << 31; /* one past a C int */
    cg_tensor *x = NULL, *y = NULL;
    const cg_ints one = CG_INTS(1, 1), zero = CG_INTS(1, 0), none = {0, {0}};
    cg_status st;
    bool is_max = id[0] == 'm';
    const char *c = id + 3;
    int64_t div0 = 0;
    cg_ints k = CG_INTS(1, 2), s = none, p = zero, d = one;
    const int64_t *shape = s5;
    int ndim = 5;
    cg_dtype dt = CG_FLOAT32;
    if (!strcmp(c, "k2len"))
        k = CG_INTS(2, 2, 2);
    else if (!strcmp(c, "s2len"))
        s = CG_INTS(2, 1, 1);
    else if (!strcmp(c, "p2len"))
        s = one, p = CG_INTS(2, 0, 0);
    else if (!strcmp(c, "d2len"))
        s = one, d = CG_INTS(2, 1, 1);
    else if (!strcmp(c, "k0"))
        k = CG_INTS(1, 0);
    else if (!strcmp(c, "kneg"))
        k = CG_INTS(1, -1);
    else if (!strcmp(c, "sneg"))
        s = CG_INTS(1, -1);
    else if (!strcmp(c, "pneg"))
        s = one, p = CG_INTS(1, -1);
    else if (!strcmp(c, "pbig"))
        s = one, p = CG_INTS(1, 2);
    else if (!strcmp(c, "d0"))
        s = one, d = CG_INTS(1, 0);
    else if (!strcmp(c, "3d"))
        shape = s3, ndim = 3;
    else if (!strcmp(c, "small"))
        k = is_max ? CG_INTS(1, 3) : CG_INTS(1, 5), d = CG_INTS(1, 2);
    else if (!strcmp(c, "small_pad"))
        k = CG_INTS(1, 5), s = one, p = CG_INTS(1, 2);
    else if (!strcmp(c, "zero_chan"))
        shape = zc;
    else if (!strcmp(c, "zero_t4"))
        shape = z4, ndim = 4;
    else if (!strcmp(c, "zero_spatial"))
        shape = zs;
    else if (!strcmp(c, "complex"))
        shape = c5, dt = CG_COMPLEX64;
    else if (!strcmp(c, "kbig"))
        shape = one5, k = CG_INTS(1, INT64_C(1) << 40),
        p = CG_INTS(1, INT64_C(1) << 39);
    else if (!strcmp(c, "srange"))
        s = CG_INTS(1, is_max ? big : -big - 1);
    else if (!strcmp(c, "prange"))
        s = one, p = CG_INTS(1, big);
    else if (!strcmp(c, "drange"))
        s = one, d = CG_INTS(1, big);
    else if (!strcmp(c, "krange_s2len"))
        k = CG_TRIPLE(1, big, 1), s = CG_INTS(2, 1, 1);
    else if (!strcmp(c, "krange"))
        k = CG_INTS(1, big);
    else if (!strcmp(c, "kmin"))
        k = CG_INTS(1, -big);
    else if (!strcmp(c, "dilated_small"))
        shape = one5, k = CG_INTS(1, big - 1), d = CG_INTS(1, big - 1);
    else
        ck_assert_msg(!strcmp(c, "div0"), "unknown error row %s", id);
    x = tu_randn(shape, ndim, dt);
    if (is_max)
        st = cg_max_pool3d(x, k, s, p, d, false, &y);
    else
        st = cg_avg_pool3d(x, k, s, p, false, true,
                           !strcmp(c, "div0") ? &div0 : NULL, &y);
    ck_assert_ptr_null(y); /* out is not written on failure */
    cg_tensor_release(x);
    return st;
}

static const char *const error_ids[] = {
    "mp_k2len",        "mp_s2len",
    "mp_p2len",        "mp_d2len",
    "mp_k0",           "mp_kneg",
    "mp_sneg",         "mp_pneg",
    "mp_pbig",         "mp_d0",
    "mp_3d",           "mp_small",
    "mp_zero_chan",    "mp_zero_t4",
    "mp_complex",      "mp_kbig",
    "mp_srange",       "mp_prange",
    "mp_drange",       "mp_krange_s2len",
    "mp_kmin",         "mp_dilated_small",
    "ap_k2len",        "ap_s2len",
    "ap_p2len",        "ap_pbig",
    "ap_small",        "ap_small_pad",
    "ap_div0",         "ap_3d",
    "ap_zero_spatial", "ap_complex",
    "ap_krange",       "ap_srange",
    "ap_prange",       "ap_krange_s2len",
};

/* A module's forward fails the same way, and the module is unchanged. */
START_TEST(module_error)
{
    cg_module *m = NULL;
    cg_max_pool3d_opts o = cg_max_pool3d_options(CG_INTS(1, 3));
    o.dilation = CG_INTS(1, 2);
    tu_ok(cg_max_pool3d_new(&o, &m));
    static const int64_t s5[] = {2, 3, 4, 4, 4};
    cg_tensor *x = tu_randn(s5, 5, CG_FLOAT32), *y = NULL;
    tu_fixture_case *c = tu_fixture_row(DIR "errors.tsv", "mp_small");
    tu_fails(cg_module_forward(m, x, &y), CG_ERR_RUNTIME,
             tu_fixture_field(c, "message"));
    ck_assert_ptr_null(y);
    char before[256], after[256];
    tu_ok(cg_module_repr(m, after, sizeof after, NULL));
    cg_max_pool3d_opts o2 = o;
    o2.stride = o.kernel_size;
    cg_module *m2 = NULL;
    tu_ok(cg_max_pool3d_new(&o2, &m2));
    tu_ok(cg_module_repr(m2, before, sizeof before, NULL));
    ck_assert_str_eq(before, after);
    /* a bad cg_ints is the C caller's mistake */
    o.kernel_size.n = 9;
    ck_assert_int_eq(cg_max_pool3d_new(&o, &m2 /* unchanged */), CG_ERR_MISUSE);
    tu_fixture_close(c);
    cg_tensor_release(x);
    cg_module_free(m);
    cg_module_free(m2);
}
END_TEST

/* ---- sizes near int64's range ---------------------------------------------
 * Valid calls whose products of sizes (plane sizes, the work estimate)
 * overflowed int64 before they were checked; PyTorch 1.13 returns these
 * results. */

START_TEST(huge_sizes)
{
    /* a kernel of 2**31 - 1 taps per axis on one voxel: y = x, as PyTorch
     * (the window's 2**93 taps must not be counted in int64, nor its
     * 2**30 - 1 padded taps stepped over one by one) */
    static const int64_t one5[] = {1, 1, 1, 1, 1};
    const int64_t kmax = (INT64_C(1) << 31) - 1;
    cg_tensor *x = tu_randn(one5, 5, CG_FLOAT32), *y = NULL;
    tu_ok(cg_tensor_requires_grad_(x, true));
    const int64_t strides[] = {1, kmax};
    for (int i = 0; i < 2; i++) {
        tu_ok(cg_max_pool3d(x, CG_INTS(1, kmax), CG_INTS(1, strides[i]),
                            CG_INTS(1, kmax / 2), CG_INTS(1, 1), false, &y));
        tu_assert_bitwise(y, x, "max_pool3d, kernel 2**31 - 1");
        tu_ok(tu_sum_backward(y)); /* x.grad gains 1 a call */
        const float *gx = cg_tensor_data(cg_tensor_grad(x));
        ck_assert_float_eq(gx[0], (float)(i + 1));
        cg_tensor_release(y);
        y = NULL;
    }
    cg_tensor_release(x);

    /* an empty batch of planes too large to count: an empty result of
     * PyTorch's shape */
    static const int64_t e5[] = {0, 1, INT64_C(1) << 30, INT64_C(1) << 30,
                                 INT64_C(1) << 30};
    const int64_t e5_out[] = {0, 1, (INT64_C(1) << 30) + 1,
                              (INT64_C(1) << 30) + 1, (INT64_C(1) << 30) + 1};
    tu_ok(cg_empty(e5, 5, CG_FLOAT32, &x));
    tu_ok(cg_max_pool3d(x, CG_INTS(1, 2), CG_INTS(1, 1), CG_INTS(1, 1),
                        CG_INTS(1, 1), false, &y));
    tu_assert_shape(y, e5_out, 5);
    cg_tensor_release(y);
    y = NULL;
    const cg_ints none = {0, {0}};
    tu_ok(cg_avg_pool3d(x, CG_INTS(1, 1), none, CG_INTS(1, 0), false, true,
                        NULL, &y));
    tu_assert_shape(y, e5, 5);
    cg_tensor_release(y);
    cg_tensor_release(x);

    /* an input size near INT64_MAX (an expanded view): in + 2p overflows,
     * where PyTorch wraps around to a nonsense output size */
    static const int64_t wide[] = {1, 1, INT64_MAX, 1, 1};
    cg_tensor *one = tu_randn(one5, 5, CG_FLOAT32);
    tu_ok(cg_tensor_expand(one, wide, 5, &x));
    y = NULL;
    tu_fails(cg_max_pool3d(x, CG_TRIPLE(2, 1, 1), CG_INTS(1, 1),
                           CG_TRIPLE(1, 0, 0), CG_INTS(1, 1), false, &y),
             CG_ERR_RUNTIME,
             "max_pool3d: the arguments make a size overflow int64 (PyTorch "
             "would wrap around)");
    tu_fails(cg_avg_pool3d(x, CG_TRIPLE(2, 1, 1), CG_INTS(1, 1),
                           CG_TRIPLE(1, 0, 0), true, true, NULL, &y),
             CG_ERR_RUNTIME,
             "avg_pool3d: the arguments make a size overflow int64 (PyTorch "
             "would wrap around)");
    ck_assert_ptr_null(y);
    cg_tensor_release(x);
    cg_tensor_release(one);
}
END_TEST

/* ---- gradcheck (float64, inputs without ties) -----------------------------
 */

typedef struct pool_cfg {
    bool max;
    cg_ints k, s, p, d;
    bool ceil, cip;
    int64_t div; /* 0: None */
} pool_cfg;

static cg_status pool_fn(cg_tensor *const *in, int n, cg_tensor **out,
                         void *user)
{
    (void)n;
    const pool_cfg *c = user;
    if (c->max)
        return cg_max_pool3d(in[0], c->k, c->s, c->p, c->d, c->ceil, out);
    return cg_avg_pool3d(in[0], c->k, c->s, c->p, c->ceil, c->cip,
                         c->div ? &c->div : NULL, out);
}

/* Distinct values spread over [-2, 2): a permutation of 0..n-1 by a
 * multiplier coprime with n. */
static cg_tensor *distinct(const int64_t *shape, int ndim)
{
    int64_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= shape[i];
    double *v = malloc((size_t)n * sizeof *v);
    ck_assert_ptr_nonnull(v);
    int64_t mul = 7919; /* prime, larger than the sizes used */
    for (int64_t i = 0; i < n; i++)
        v[i] = ((double)((i * mul) % n) - (double)n / 2) / (double)n * 4;
    cg_tensor *t = NULL;
    tu_ok(cg_tensor_from_data(v, shape, ndim, CG_FLOAT64, &t));
    free(v);
    tu_ok(cg_tensor_requires_grad_(t, true));
    return t;
}

START_TEST(gradcheck)
{
    const cg_ints none = {0, {0}};
    const pool_cfg cfgs[] = {
        {true, CG_INTS(1, 2), none, CG_INTS(1, 0), CG_INTS(1, 1), false, true,
         0},
        {true, CG_TRIPLE(2, 1, 3), CG_TRIPLE(1, 2, 1), CG_TRIPLE(1, 0, 1),
         CG_TRIPLE(1, 1, 2), true, true, 0},
        {false, CG_INTS(1, 2), none, CG_INTS(1, 0), CG_INTS(1, 1), false, true,
         0},
        {false, CG_TRIPLE(2, 1, 3), CG_INTS(1, 1), CG_TRIPLE(1, 0, 1),
         CG_INTS(1, 1), true, false, 0},
        {false, CG_INTS(1, 3), CG_INTS(1, 2), CG_INTS(1, 1), CG_INTS(1, 1),
         true, true, 5},
    };
    static const int64_t s5[] = {1, 2, 4, 3, 5}, s4[] = {2, 3, 4, 5};
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
        for (int b = 0; b < 2; b++) {
            cg_tensor *x = b ? distinct(s4, 4) : distinct(s5, 5);
            cg_gradcheck_result r;
            tu_ok(cg_gradcheck(pool_fn, (void *)&cfgs[i], &x, 1, NULL, &r));
            ck_assert_msg(r.passed, "config %zu batched %d: %s", i, !b,
                          r.message);
            cg_tensor_release(x);
        }
    }
}
END_TEST

/* ---- threads: bitwise the same for 1 and 3 threads ----------------------- */

/* One run: max then avg pooling, each y and x's gradient. */
static void threads_run(void *ctx, cg_tensor **res)
{
    (void)ctx;
    static const int64_t s5[] = {3, 5, 9, 8, 7};
    for (int which = 0; which < 2; which++) {
        cg_tensor *x = distinct(s5, 5), *y = NULL, *s = NULL;
        if (which == 0)
            tu_ok(cg_max_pool3d(x, CG_INTS(1, 3), CG_INTS(1, 2), CG_INTS(1, 1),
                                CG_INTS(1, 1), true, &y));
        else
            tu_ok(cg_avg_pool3d(x, CG_INTS(1, 3), CG_INTS(1, 1), CG_INTS(1, 1),
                                false, false, NULL, &y));
        tu_ok(cg_mul(y, y, &s));
        tu_ok(tu_sum_backward(s));
        res[2 * which] = y;
        res[2 * which + 1] = cg_tensor_retain(cg_tensor_grad(x));
        cg_tensor_release(s);
        cg_tensor_release(x);
    }
}

/* ---- allocation failures
 * ----------------------------------------------------- */

static cg_status alloc_scenario(void *ctx)
{
    (void)ctx;
    static const int64_t s5[] = {1, 2, 4, 4, 4};
    cg_tensor *x = NULL, *y = NULL, *s = NULL;
    cg_module *m = NULL;
    cg_status st = cg_ones(s5, 5, CG_FLOAT64, &x);
    if (st == CG_OK)
        st = cg_tensor_requires_grad_(x, true);
    cg_max_pool3d_opts o = cg_max_pool3d_options(CG_INTS(1, 2));
    if (st == CG_OK)
        st = cg_max_pool3d_new(&o, &m);
    if (st == CG_OK)
        st = cg_module_forward(m, x, &y);
    if (st == CG_OK)
        st = cg_avg_pool3d(y, CG_INTS(1, 2), CG_INTS(1, 1), CG_INTS(1, 1),
                           false, true, NULL, &s);
    if (st == CG_OK)
        st = tu_sum_backward(s);
    cg_tensor_release(s);
    cg_tensor_release(y);
    cg_tensor_release(x);
    cg_module_free(m);
    return st;
}

/* Max pooling against a model of PyTorch's window walk: per output, the
 * window's taps inside the input in (t, h, w) order, a larger value or a
 * NaN taking over from -inf, the first tap's index to begin with. Rows long
 * enough for the side-by-side path (POOL_LANES outputs at once) with
 * edges that leave the input along W (padding, ceil_mode), dilation,
 * overlapping windows, and values full of ties, NaNs and -infs, or all
 * -inf (where the first tap's index is the answer); the
 * output (bit for bit) and the input gradient, which lands on each
 * output's chosen index. */
typedef struct mp_cfg {
    int64_t k[3], s[3], p[3], d[3];
    bool ceil;
    int64_t W;
} mp_cfg;

static int64_t mp_out(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d,
                      bool ceil)
{
    int64_t span = in + 2 * p - d * (k - 1) - 1;
    int64_t o = (ceil ? span + s - 1 : span) / s + 1;
    if (ceil && (o - 1) * s >= in + p)
        o--;
    return o;
}

static void mp_model_case(const mp_cfg *cf, cg_dtype dt, bool all_neg_inf)
{
    enum { N = 1, C = 2, D = 3, H = 4 };
    const int64_t W = cf->W, in[3] = {D, H, W};
    const int64_t numel = N * C * D * H * W;
    double *xv = malloc((size_t)numel * sizeof *xv);
    ck_assert_ptr_nonnull(xv);
    for (int64_t i = 0; i < numel; i++) {
        uint32_t r = (uint32_t)(i * 2654435761u) >> 7;
        xv[i] = all_neg_inf   ? -INFINITY /* only the first index counts */
                : r % 17 == 0 ? NAN
                : r % 13 == 0 ? -INFINITY
                              : (double)(r % 5); /* ties everywhere */
    }
    const int64_t xs[5] = {N, C, D, H, W};
    cg_tensor *x = NULL, *x64 = NULL, *y = NULL, *gy = NULL, *y64 = NULL,
              *gx64 = NULL;
    tu_ok(cg_tensor_from_data(xv, xs, 5, CG_FLOAT64, &x64));
    tu_ok(cg_tensor_to(x64, dt, &x));
    tu_ok(cg_tensor_requires_grad_(x, true));
    cg_ints k = {3, {cf->k[0], cf->k[1], cf->k[2]}},
            st = {3, {cf->s[0], cf->s[1], cf->s[2]}},
            pd = {3, {cf->p[0], cf->p[1], cf->p[2]}},
            dl = {3, {cf->d[0], cf->d[1], cf->d[2]}};
    tu_ok(cg_max_pool3d(x, k, st, pd, dl, cf->ceil, &y));
    int64_t out[3];
    for (int a = 0; a < 3; a++)
        out[a] =
            mp_out(in[a], cf->k[a], cf->s[a], cf->p[a], cf->d[a], cf->ceil);
    ck_assert_int_eq(cg_tensor_shape(y)[4], out[2]);
    const int64_t on = N * C * out[0] * out[1] * out[2];
    double *gv = malloc((size_t)on * sizeof *gv);
    ck_assert_ptr_nonnull(gv);
    for (int64_t o = 0; o < on; o++)
        gv[o] = ldexp(1.0 + (double)(o % 7) / 8, (int)(o % 9) - 4);
    cg_tensor *gy64 = NULL;
    tu_ok(cg_tensor_from_data(gv, cg_tensor_shape(y), 5, CG_FLOAT64, &gy64));
    tu_ok(cg_tensor_to(gy64, dt, &gy));
    tu_ok(cg_tensor_backward(y, gy, false));
    tu_ok(cg_tensor_to(y, CG_FLOAT64, &y64));
    tu_ok(cg_tensor_to(cg_tensor_grad(x), CG_FLOAT64, &gx64));
    const double *yv = cg_tensor_data(y64), *gxv = cg_tensor_data(gx64);
    double *want = calloc((size_t)numel, sizeof *want);
    ck_assert_ptr_nonnull(want);
    const int64_t ip = D * H * W;
    int64_t o = 0;
    for (int64_t pl = 0; pl < N * C; pl++)
        for (int64_t ot = 0; ot < out[0]; ot++)
            for (int64_t oh = 0; oh < out[1]; oh++)
                for (int64_t ow = 0; ow < out[2]; ow++, o++) {
                    const int64_t op[3] = {ot, oh, ow};
                    int64_t best = -1;
                    double m = -INFINITY;
                    /* the taps inside, in (t, h, w) order */
                    for (int64_t a = 0; a < cf->k[0]; a++)
                        for (int64_t b = 0; b < cf->k[1]; b++)
                            for (int64_t c = 0; c < cf->k[2]; c++) {
                                const int64_t tap[3] = {a, b, c};
                                int64_t pos[3];
                                bool inside = true;
                                for (int ax = 0; ax < 3; ax++) {
                                    pos[ax] = op[ax] * cf->s[ax] - cf->p[ax] +
                                              tap[ax] * cf->d[ax];
                                    inside &= pos[ax] >= 0 && pos[ax] < in[ax];
                                }
                                if (!inside)
                                    continue;
                                int64_t at = (pos[0] * H + pos[1]) * W + pos[2];
                                double v = xv[pl * ip + at];
                                if (best < 0)
                                    best = at;
                                if (v > m || isnan(v)) {
                                    m = v;
                                    best = at;
                                }
                            }
                    ck_assert_msg(memcmp(&yv[o], &m, sizeof m) == 0 ||
                                      (isnan(yv[o]) && isnan(m)),
                                  "W=%lld output %lld: %g, expected %g",
                                  (long long)W, (long long)o, yv[o], m);
                    want[pl * ip + best] +=
                        (double)(dt == CG_FLOAT32 ? (float)gv[o] : gv[o]);
                }
    for (int64_t i = 0; i < numel; i++)
        ck_assert_msg(gxv[i] == want[i],
                      "W=%lld grad input[%lld]: %g, expected %g", (long long)W,
                      (long long)i, gxv[i], want[i]);
    cg_tensor *all[] = {x, x64, y, gy, gy64, y64, gx64};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        cg_tensor_release(all[i]);
    free(want);
    free(gv);
    free(xv);
}

START_TEST(max_model)
{
    static const mp_cfg cfgs[] = {
        {{2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}, false, 40},
        {{2, 2, 2}, {2, 2, 2}, {0, 0, 0}, {1, 1, 1}, true, 37},
        {{1, 2, 3}, {1, 1, 1}, {0, 1, 1}, {1, 1, 1}, false, 29},
        {{2, 1, 3}, {1, 2, 2}, {1, 0, 1}, {1, 1, 2}, true, 41},
        {{3, 3, 4}, {2, 1, 3}, {1, 1, 2}, {1, 1, 1}, true, 50},
        {{1, 1, 1}, {1, 1, 2}, {0, 0, 0}, {1, 1, 1}, false, 33},
    };
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++)
        for (int inf = 0; inf < 2; inf++) {
            mp_model_case(&cfgs[i], CG_FLOAT32, inf);
            mp_model_case(&cfgs[i], CG_FLOAT64, inf);
        }
}
END_TEST

Suite *pooling_suite(void)
{
    const tu_spatial_suite d = {
        .name = "pooling",
        .cases = cases,
        .ncases = NCASES,
        .tol_f32 = TOL_F32,
        .tol_f64 = TOL_F64,
        .torch_case = torch_case,
        .reprs = reprs,
        .error_ids = error_ids,
        .nerrors = (int)(sizeof error_ids / sizeof *error_ids),
        .error_call = error_call,
        .more_errors = module_error,
        .gradcheck = gradcheck,
        .threads_run = threads_run,
        .n_threads_res = 4,
        .alloc_scenario = alloc_scenario,
        .alloc_min = 10,
    };
    Suite *s = tu_spatial_suite_create(&d);
    tcase_add_test(tu_suite_tcase(s, "huge_sizes", 0), huge_sizes);
    tcase_add_test(tu_suite_tcase(s, "max_model", 0), max_model);
    return s;
}
