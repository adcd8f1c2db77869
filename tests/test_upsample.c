/*
 * test_upsample.c -- cg_upsample_nearest and nn.Upsample (mode 'nearest')
 * against PyTorch 1.13 (tests/data/nn/spatial, written by gen_spatial.py):
 * outputs, grad_fn names and input gradients of eight configurations (5-D
 * with scale factors, sizes, per-axis tuples including a downscale,
 * recompute_scale_factor; 4-D and 3-D inputs upsample 2 and 1 axes as in
 * PyTorch) in float32 and float64, reprs, attributes, F.interpolate's
 * error messages, float64 gradcheck, thread-count independence and
 * allocation failures.
 *
 * Doubling along W (its own path) against a model of the general one.
 *
 * TCases: torch, repr, errors, gradcheck, threads, alloc, huge_sizes,
 * doubled.
 */
#include "cgrad_nn.h"
#include "spatial.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* A copy is exact; the backward sums at most a few values per element in
 * PyTorch's order. */
#define TOL_F32 1e-5
#define TOL_F64 1e-12

static cg_module *make_upsample(const tu_fixture_case *c)
{
    cg_upsample_opts o = cg_upsample_options();
    if (tu_fixture_has_arg(c, "size"))
        o.size = tu_fixture_arg_ints(c, "size");
    if (tu_fixture_has_arg(c, "scale"))
        o.scale_n = tu_fixture_arg_numbers(
            c, "scale", ',', o.scale_factor,
            (int)(sizeof o.scale_factor / sizeof *o.scale_factor));
    if (tu_fixture_has_arg(c, "recompute"))
        o.recompute_scale_factor = tu_fixture_arg_int(c, "recompute") != 0;
    cg_module *m = NULL;
    tu_ok(cg_upsample_new(&o, &m));
    return m;
}

static const char *const cases[] = {"up1", "up2", "up3", "up4",
                                    "up5", "up6", "up7", "up8"};
#define NCASES ((int)(sizeof cases / sizeof *cases))

START_TEST(torch_case)
{
    tu_spatial_case sc = tu_spatial_case_open(_i);
    tu_spatial_case_load_io(&sc);
    cg_module *m = make_upsample(sc.c);
    cg_tensor *y = NULL;
    tu_ok(cg_module_forward(m, sc.x, &y));
    /* nearest neighbour copies: the output is exact */
    tu_assert_bitwise(y, sc.y_ref, sc.id);
    ck_assert_str_eq(cg_node_name(cg_tensor_grad_fn(y)),
                     tu_fixture_field(sc.c, "grad_fn"));
    tu_ok(cg_tensor_backward(y, sc.gy, true));
    tu_assert_close(cg_tensor_grad(sc.x), sc.gx_ref, sc.tol, "gx");
    cg_tensor_release(y);
    cg_module_free(m);
    tu_spatial_case_close(&sc);
}
END_TEST

/* ---- reprs and attributes -------------------------------------------------
 */

static void check_repr(const cg_upsample_opts *o, const char *id)
{
    cg_module *m = NULL;
    tu_ok(cg_upsample_new(o, &m));
    tu_spatial_assert_repr(m, id);
    cg_module_free(m);
}

START_TEST(reprs)
{
    cg_upsample_opts o = cg_upsample_options();
    o.scale_n = 1;
    o.scale_factor[0] = 2;
    check_repr(&o, "up_scale");
    o.scale_n = 3;
    o.scale_factor[1] = 1.5;
    o.scale_factor[2] = 3;
    check_repr(&o, "up_scale_tuple");
    o = cg_upsample_options();
    o.size = CG_INTS(1, 5);
    check_repr(&o, "up_size");
    o.size = CG_TRIPLE(2, 3, 4);
    check_repr(&o, "up_size_tuple");
    o = cg_upsample_options();
    o.scale_n = 1;
    o.scale_factor[0] = 1e-5;
    check_repr(&o, "up_small");
    o.scale_factor[0] = 0; /* float(0) if 0 else None: None */
    check_repr(&o, "up_zero");

    cg_module *m = NULL;
    o.scale_factor[0] = 2;
    tu_ok(cg_upsample_new(&o, &m));
    char buf[64];
    tu_ok(cg_module_getattr(m, "mode", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "'nearest'");
    tu_ok(cg_module_getattr(m, "scale_factor", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "2.0");
    tu_ok(cg_module_getattr(m, "size", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "None");
    ck_assert_int_eq(cg_upsample_config(m)->scale_n, 1);
    cg_module_free(m);
}
END_TEST

/* ---- errors
 * ------------------------------------------------------------------ */

static cg_status error_call(const char *id)
{
    static const int64_t s5[] = {2, 3, 4, 4, 4}, s2[] = {2, 3},
                         s6[] = {1, 2, 3, 4, 5, 6}, s3[] = {1, 2, 3},
                         s4[] = {1, 2, 3, 3}, c0[] = {1, 0, 3, 3, 3},
                         c1[] = {1, 1, 3, 3, 3};
    const int64_t *shape = s5;
    int ndim = 5;
    cg_dtype dt = CG_FLOAT32;
    cg_upsample_opts o = cg_upsample_options();
    const char *c = id + 3;
    if (!strcmp(c, "none")) {
    } else if (!strcmp(c, "both")) {
        o.size = CG_INTS(1, 2);
        o.scale_n = 1;
        o.scale_factor[0] = 2;
    } else if (!strcmp(c, "2d") || !strcmp(c, "6d")) {
        o.scale_n = 1;
        o.scale_factor[0] = 2;
        shape = c[0] == '2' ? s2 : s6;
        ndim = c[0] == '2' ? 2 : 6;
    } else if (!strcmp(c, "size_len")) {
        o.size = CG_INTS(2, 2, 3);
    } else if (!strcmp(c, "scale_len")) {
        o.scale_n = 2;
        o.scale_factor[0] = 2;
        o.scale_factor[1] = 3.5;
    } else if (!strcmp(c, "size0")) {
        o.size = CG_INTS(1, 0);
    } else if (!strcmp(c, "scale_small")) {
        o.scale_n = 1;
        o.scale_factor[0] = 0.1;
    } else if (!strcmp(c, "size0_1d")) {
        o.size = CG_INTS(1, 0);
        shape = s3, ndim = 3;
    } else if (!strcmp(c, "size0_2d")) {
        o.size = CG_INTS(2, 0, 2);
        shape = s4, ndim = 4;
    } else if (!strcmp(c, "c0")) {
        o.size = CG_INTS(1, 2);
        shape = c0;
    } else if (!strcmp(c, "complex")) {
        o.size = CG_INTS(1, 2);
        shape = c1, dt = CG_COMPLEX64;
    } else {
        ck_assert_msg(!strcmp(c, "recompute_size"), "unknown row %s", id);
        o.size = CG_INTS(1, 2);
        o.recompute_scale_factor = true;
    }
    cg_module *m = NULL;
    tu_ok(cg_upsample_new(&o, &m));
    cg_tensor *x = tu_randn(shape, ndim, dt), *y = NULL;
    cg_status st = cg_module_forward(m, x, &y);
    ck_assert_ptr_null(y);
    cg_tensor_release(x);
    cg_module_free(m);
    return st;
}

static const char *const error_ids[] = {
    "up_none",           "up_both",      "up_2d",    "up_6d",
    "up_size_len",       "up_scale_len", "up_size0", "up_scale_small",
    "up_size0_1d",       "up_size0_2d",  "up_c0",    "up_complex",
    "up_recompute_size",
};

START_TEST(c_errors)
{
    static const int64_t s5[] = {1, 1, 2, 2, 2};
    cg_tensor *x = tu_randn(s5, 5, CG_FLOAT32), *y = NULL;
    int64_t size[3] = {3, 3, 3};
    double sc[3] = {2, 2, 2};
    ck_assert_int_eq(cg_upsample_nearest(x, size, NULL, 2, &y), CG_ERR_MISUSE);
    tu_fails(cg_upsample_nearest(x, size, sc, 3, &y), CG_ERR_RUNTIME,
             "Must specify exactly one of output_size and scale_factors");
    ck_assert_ptr_null(y);
    cg_upsample_opts o = cg_upsample_options();
    o.mode = "trilinear";
    cg_module *m = NULL;
    ck_assert_int_eq(cg_upsample_new(&o, &m), CG_ERR_NOT_IMPLEMENTED);
    ck_assert_ptr_null(m);
    cg_tensor_release(x);
}
END_TEST

/* ---- sizes near int64's range ---------------------------------------------
 * Output (or input) planes whose element count overflows int64: the count
 * was computed, unchecked, before the output's shape was. */

START_TEST(huge_sizes)
{
    static const int64_t s5[] = {1, 1, 1, 1, 1}, s4[] = {1, 1, 1, 1};
    const int64_t big = INT64_C(1) << 40;
    cg_tensor *x = tu_randn(s5, 5, CG_FLOAT32), *y = NULL;
    /* the message of creating that tensor, as in PyTorch 1.13 */
    const char *msg = "Storage size calculation overflowed with sizes=[1, 1, "
                      "1099511627776, 1099511627776, 1099511627776]";
    const int64_t size[3] = {big, big, big};
    tu_fails(cg_upsample_nearest(x, size, NULL, 3, &y), CG_ERR_RUNTIME, msg);
    const double scale[3] = {0x1p40, 0x1p40, 0x1p40};
    tu_fails(cg_upsample_nearest(x, NULL, scale, 3, &y), CG_ERR_RUNTIME, msg);
    ck_assert_ptr_null(y);
    cg_tensor_release(x);
    x = tu_randn(s4, 4, CG_FLOAT64);
    const int64_t size2[2] = {INT64_C(1) << 32, INT64_C(1) << 32};
    tu_fails(cg_upsample_nearest(x, size2, NULL, 2, &y), CG_ERR_RUNTIME,
             "Storage size calculation overflowed with sizes=[1, 1, "
             "4294967296, 4294967296]");
    ck_assert_ptr_null(y);
    cg_tensor_release(x);

    /* an empty batch: an empty result, as in PyTorch */
    static const int64_t e5[] = {0, 1, 1, 1, 1};
    const int64_t e5_out[] = {0, 1, big, big, big};
    tu_ok(cg_empty(e5, 5, CG_FLOAT32, &x));
    tu_ok(cg_upsample_nearest(x, size, NULL, 3, &y));
    tu_assert_shape(y, e5_out, 5);
    cg_tensor_release(y);
    y = NULL;
    cg_tensor_release(x);
    /* input planes too large to count (PyTorch 1.13's check of them
     * wraps around to 0 and says "Non-empty 5D data tensor expected") */
    static const int64_t e5_in[] = {0, 1, INT64_C(1) << 30, INT64_C(1) << 30,
                                    INT64_C(1) << 30};
    const int64_t two[3] = {2, 2, 2}, e5_two[] = {0, 1, 2, 2, 2};
    tu_ok(cg_empty(e5_in, 5, CG_FLOAT32, &x));
    tu_ok(cg_upsample_nearest(x, two, NULL, 3, &y));
    tu_assert_shape(y, e5_two, 5);
    cg_tensor_release(y);
    cg_tensor_release(x);
}
END_TEST

/* recompute_scale_factor=True computes math.floor(float(in) * scale) as
 * a Python int: PyTorch 1.13 raises OverflowError for an infinite size,
 * ValueError for NaN (0 * inf too), and the upsample call's TypeError for
 * a size outside int64; a 6-D input is NotImplementedError first. */
typedef struct recompute_case {
    int ndim;
    double scale[3];
    int scale_n;
    cg_status st;
    const char *msg;
} recompute_case;

START_TEST(recompute_huge)
{
    static const char *const too_big3 =
        "upsample_nearest3d(): argument 'output_size' must be tuple of "
        "SymInts, but found element of type int at pos 1";
    static const recompute_case rows[] = {
        {5, {1e30}, 1, CG_ERR_TYPE, too_big3},
        {5, {0x1p62}, 1, CG_ERR_TYPE, too_big3}, /* 2 * 2**62 = 2**63 */
        {5, {-1e300}, 1, CG_ERR_TYPE, too_big3},
        {4,
         {1e30},
         1,
         CG_ERR_TYPE,
         "upsample_nearest2d(): argument 'output_size' must be tuple of "
         "SymInts, but found element of type int at pos 1"},
        {5,
         {INFINITY},
         1,
         CG_ERR_OVERFLOW,
         "cannot convert float infinity to integer"},
        {5,
         {-INFINITY},
         1,
         CG_ERR_OVERFLOW,
         "cannot convert float infinity to integer"},
        {5,
         {1.0, 1.0, INFINITY},
         3,
         CG_ERR_OVERFLOW,
         "cannot convert float infinity to integer"},
        {5, {NAN}, 1, CG_ERR_VALUE, "cannot convert float NaN to integer"},
        {5,
         {NAN, INFINITY, 1.0},
         3,
         CG_ERR_VALUE,
         "cannot convert float NaN to integer"},
        {6,
         {1e30},
         1,
         CG_ERR_NOT_IMPLEMENTED,
         "Input Error: Only 3D, 4D and 5D input Tensors supported (got 6D) "
         "for the modes: nearest | linear | bilinear | bicubic | trilinear | "
         "area | nearest-exact (got nearest)"},
    };
    static const int64_t shape[6] = {1, 1, 2, 2, 2, 2};
    for (size_t i = 0; i < sizeof rows / sizeof *rows; i++) {
        const recompute_case *c = &rows[i];
        cg_upsample_opts o = cg_upsample_options();
        o.scale_n = c->scale_n;
        memcpy(o.scale_factor, c->scale, sizeof c->scale);
        o.recompute_scale_factor = true;
        cg_module *m = NULL;
        tu_ok(cg_upsample_new(&o, &m));
        cg_tensor *x = tu_randn(shape, c->ndim, CG_FLOAT32), *y = NULL;
        tu_fails(cg_module_forward(m, x, &y), c->st, c->msg);
        ck_assert_ptr_null(y);
        cg_tensor_release(x);
        cg_module_free(m);
    }
    /* an empty axis times inf is NaN */
    static const int64_t e5[] = {1, 1, 0, 2, 2};
    cg_upsample_opts o = cg_upsample_options();
    o.scale_n = 1;
    o.scale_factor[0] = INFINITY;
    o.recompute_scale_factor = true;
    cg_module *m = NULL;
    cg_tensor *x = NULL, *y = NULL;
    tu_ok(cg_upsample_new(&o, &m));
    tu_ok(cg_empty(e5, 5, CG_FLOAT32, &x));
    tu_fails(cg_module_forward(m, x, &y), CG_ERR_VALUE,
             "cannot convert float NaN to integer");
    ck_assert_ptr_null(y);
    cg_tensor_release(x);
    cg_module_free(m);
}
END_TEST

/* ---- gradcheck ------------------------------------------------------------
 */

typedef struct up_cfg {
    int n;
    int64_t size[3];
    double scale[3];
    bool use_scale;
} up_cfg;

static cg_status up_fn(cg_tensor *const *in, int n, cg_tensor **out, void *user)
{
    (void)n;
    const up_cfg *c = user;
    return cg_upsample_nearest(in[0], c->use_scale ? NULL : c->size,
                               c->use_scale ? c->scale : NULL, c->n, out);
}

START_TEST(gradcheck)
{
    static const int64_t s5[] = {1, 2, 3, 2, 4}, s4[] = {2, 1, 3, 5},
                         s3[] = {2, 2, 5};
    const up_cfg cfgs[] = {
        {3, {0}, {2, 2, 2}, true},       {3, {4, 5, 3}, {0}, false},
        {3, {0}, {1.7, 2.5, 0.6}, true}, {2, {7, 2}, {0}, false},
        {1, {0}, {1.3}, true},
    };
    const int64_t *shapes[] = {s5, s5, s5, s4, s3};
    for (size_t i = 0; i < sizeof cfgs / sizeof *cfgs; i++) {
        cg_tensor *x = tu_randn(shapes[i], cfgs[i].n + 2, CG_FLOAT64);
        tu_ok(cg_tensor_requires_grad_(x, true));
        cg_gradcheck_result r;
        tu_ok(cg_gradcheck(up_fn, (void *)&cfgs[i], &x, 1, NULL, &r));
        ck_assert_msg(r.passed, "config %zu: %s", i, r.message);
        cg_tensor_release(x);
    }
}
END_TEST

/* One run: y and x's gradient. */
static void threads_run(void *ctx, cg_tensor **res)
{
    (void)ctx;
    static const int64_t s5[] = {3, 7, 6, 5, 7};
    double sc[3] = {1.7, 2.0, 0.8};
    cg_tensor *x = tu_randn(s5, 5, CG_FLOAT32), *y = NULL, *s = NULL;
    tu_ok(cg_tensor_requires_grad_(x, true));
    tu_ok(cg_upsample_nearest(x, NULL, sc, 3, &y));
    tu_ok(cg_mul(y, y, &s));
    tu_ok(tu_sum_backward(s));
    res[0] = y;
    res[1] = cg_tensor_retain(cg_tensor_grad(x));
    cg_tensor_release(s);
    cg_tensor_release(x);
}

static cg_status alloc_scenario(void *ctx)
{
    (void)ctx;
    static const int64_t s5[] = {1, 2, 2, 3, 2};
    cg_tensor *x = NULL, *y = NULL;
    cg_module *m = NULL;
    cg_upsample_opts o = cg_upsample_options();
    o.scale_n = 1;
    o.scale_factor[0] = 1.5;
    cg_status st = cg_ones(s5, 5, CG_FLOAT32, &x);
    if (st == CG_OK)
        st = cg_tensor_requires_grad_(x, true);
    if (st == CG_OK)
        st = cg_upsample_new(&o, &m);
    if (st == CG_OK)
        st = cg_module_forward(m, x, &y);
    if (st == CG_OK)
        st = tu_sum_backward(y);
    cg_tensor_release(y);
    cg_tensor_release(x);
    cg_module_free(m);
    return st;
}

/* Doubling along W has a path of its own (pairs of outputs per input):
 * the output and the input gradient against a model of the general one --
 * a copy per output, and one += per output in (t, h, w) order -- bit for
 * bit, with W doubled alone and with every axis doubled, float32 and
 * float64. */
static int64_t nearest_src(int64_t o, int64_t in, int64_t out, double scale)
{
    /* PyTorch's nearest_idx with a scale factor */
    if (out == in)
        return o;
    if (out == 2 * in)
        return o >> 1;
    int64_t s = (int64_t)floorf((float)o * (float)(1.0 / scale));
    return s < in - 1 ? s : in - 1;
}

static void doubled_w_case(cg_dtype dt, const double *scale)
{
    enum { N = 2, C = 3, D = 3, H = 4, W = 5 };
    const int64_t xs[5] = {N, C, D, H, W};
    cg_manual_seed(3);
    cg_tensor *x = NULL, *y = NULL, *gy = NULL, *xd = NULL, *gyd = NULL;
    cg_tensor *yd = NULL, *gxd = NULL;
    tu_ok(cg_randn(xs, 5, dt, NULL, &x));
    tu_ok(cg_tensor_requires_grad_(x, true));
    tu_ok(cg_upsample_nearest(x, NULL, scale, 3, &y));
    const int64_t *os = cg_tensor_shape(y);
    const int64_t OD = os[2], OH = os[3], OW = os[4];
    ck_assert_int_eq(OW, 2 * W);
    tu_ok(cg_randn(os, 5, dt, NULL, &gy));
    tu_ok(cg_tensor_backward(y, gy, false));
    tu_ok(cg_tensor_to(x, CG_FLOAT64, &xd));
    tu_ok(cg_tensor_to(gy, CG_FLOAT64, &gyd));
    tu_ok(cg_tensor_to(y, CG_FLOAT64, &yd));
    tu_ok(cg_tensor_to(cg_tensor_grad(x), CG_FLOAT64, &gxd));
    const double *xv = cg_tensor_data(xd), *gv = cg_tensor_data(gyd),
                 *yv = cg_tensor_data(yd), *gxv = cg_tensor_data(gxd);
    static double want[N * C * D * H * W];
    memset(want, 0, sizeof want);
    for (int64_t pl = 0; pl < N * C; pl++)
        for (int64_t t = 0; t < OD; t++)
            for (int64_t h = 0; h < OH; h++)
                for (int64_t w = 0; w < OW; w++) {
                    const int64_t st = nearest_src(t, D, OD, scale[0]);
                    const int64_t sh = nearest_src(h, H, OH, scale[1]);
                    const int64_t src = ((pl * D + st) * H + sh) * W + (w >> 1);
                    const int64_t out = ((pl * OD + t) * OH + h) * OW + w;
                    ck_assert_msg(yv[out] == xv[src], "y[%lld]",
                                  (long long)out);
                    if (dt == CG_FLOAT32)
                        want[src] = (float)((float)want[src] + (float)gv[out]);
                    else
                        want[src] += gv[out];
                }
    for (int64_t i = 0; i < N * C * D * H * W; i++)
        ck_assert_msg(gxv[i] == want[i], "gx[%lld]: %.17g, expected %.17g",
                      (long long)i, gxv[i], want[i]);
    cg_tensor *all[] = {x, y, gy, xd, gyd, yd, gxd};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        cg_tensor_release(all[i]);
}

START_TEST(doubled_w)
{
    const double both[3] = {2.0, 2.0, 2.0}, w_only[3] = {1.5, 1.7, 2.0};
    doubled_w_case(CG_FLOAT32, both);
    doubled_w_case(CG_FLOAT32, w_only);
    doubled_w_case(CG_FLOAT64, both);
    doubled_w_case(CG_FLOAT64, w_only);
}
END_TEST

Suite *upsample_suite(void)
{
    const tu_spatial_suite d = {
        .name = "upsample",
        .cases = cases,
        .ncases = NCASES,
        .tol_f32 = TOL_F32,
        .tol_f64 = TOL_F64,
        .torch_case = torch_case,
        .reprs = reprs,
        .error_ids = error_ids,
        .nerrors = (int)(sizeof error_ids / sizeof *error_ids),
        .error_call = error_call,
        .more_errors = c_errors,
        .gradcheck = gradcheck,
        .threads_run = threads_run,
        .n_threads_res = 2,
        .alloc_scenario = alloc_scenario,
        .alloc_min = 5,
    };
    Suite *s = tu_spatial_suite_create(&d);
    TCase *huge = tu_suite_tcase(s, "huge_sizes", 0);
    tcase_add_test(huge, huge_sizes);
    tcase_add_test(huge, recompute_huge);
    tcase_add_test(tu_suite_tcase(s, "doubled", 0), doubled_w);
    return s;
}
