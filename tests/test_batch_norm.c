/*
 * test_batch_norm.c -- cg_batch_norm (F.batch_norm) and nn.BatchNorm3d
 * against PyTorch 1.13 (tests/data/nn/spatial, written by gen_spatial.py):
 * four configurations (default; momentum=None without affine; no running
 * statistics; momentum 0.5 with eps 0.01), each run for three training
 * steps (outputs, input/weight/bias gradients, running statistics and
 * num_batches_tracked after every step) and then in eval mode (output and
 * gradients), in float32 and float64; reprs and state names; PyTorch's
 * error messages with the module left unchanged; float64 gradcheck in
 * training and evaluation; thread-count independence; allocation
 * failures.
 *
 * The documented summation order, bit for bit.
 *
 * TCases: torch, repr, errors, gradcheck, threads, alloc, order.
 */
#include "cgrad_nn.h"
#include "spatial.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* float32: PyTorch's kernel rounds its statistics to float and sums in its
 * own (vectorised) order; cgrad sums in double. float64 agrees to
 * rounding. */
#define TOL_F32 1e-5
#define TOL_F64 1e-12

static cg_module *make_bn(const tu_fixture_case *c, cg_dtype dt)
{
    cg_batch_norm3d_opts o =
        cg_batch_norm3d_options(tu_fixture_arg_int(c, "num_features"));
    o.dtype = dt;
    if (tu_fixture_arg_is(c, "momentum", "None"))
        o.momentum_none = true;
    else if (tu_fixture_has_arg(c, "momentum"))
        o.momentum = tu_fixture_arg_number(c, "momentum");
    if (tu_fixture_has_arg(c, "eps"))
        o.eps = tu_fixture_arg_number(c, "eps");
    if (tu_fixture_has_arg(c, "affine"))
        o.affine = tu_fixture_arg_int(c, "affine") != 0;
    if (tu_fixture_has_arg(c, "track"))
        o.track_running_stats = tu_fixture_arg_int(c, "track") != 0;
    cg_module *m = NULL;
    tu_ok(cg_batch_norm3d_new(&o, &m));
    return m;
}

static void check_grad(cg_tensor *t, const tu_fixture_case *c, const char *dt,
                       const char *what, double tol)
{
    const char *id = tu_fixture_field(c, "id");
    cg_tensor *ref = tu_fixture_npy(c, dt, what);
    ck_assert_msg(cg_tensor_grad(t) != NULL, "%s %s: no gradient", id, what);
    tu_assert_close(cg_tensor_grad(t), ref, tol, what);
    cg_tensor_release(ref);
}

static const char *const cases[] = {"bn1", "bn2", "bn3", "bn4"};
#define NCASES ((int)(sizeof cases / sizeof *cases))

START_TEST(torch_case)
{
    tu_spatial_case sc = tu_spatial_case_open(_i);
    const tu_fixture_case *c = sc.c;
    const char *dt = sc.dt;
    double tol = sc.tol;
    cg_module *m = make_bn(c, sc.dtype);
    cg_tensor *w = cg_batch_norm3d_weight(m), *b = cg_batch_norm3d_bias(m);
    if (w) { /* the generator's weight and bias */
        cg_tensor *wr = tu_fixture_npy(c, dt, "w"),
                  *br = tu_fixture_npy(c, dt, "b");
        bool prev = cg_set_grad_enabled(false);
        tu_ok(cg_tensor_copy_(w, wr));
        tu_ok(cg_tensor_copy_(b, br));
        cg_set_grad_enabled(prev);
        cg_tensor_release(wr);
        cg_tensor_release(br);
    }
    const char *fn = tu_fixture_field(c, "grad_fn");
    const char *efn = tu_fixture_field(c, "eval_grad_fn");
    cg_tensor *x = NULL, *gy = NULL;
    char what[16];
    for (int step = 0; step < 4; step++) {
        bool eval = step == 3;
        if (eval) {
            tu_ok(cg_module_eval(m));
        } else {
            cg_tensor_release(x);
            cg_tensor_release(gy);
            snprintf(what, sizeof what, "x%d", step);
            x = tu_fixture_npy(c, dt, what);
            snprintf(what, sizeof what, "gy%d", step);
            gy = tu_fixture_npy(c, dt, what);
            tu_ok(cg_tensor_requires_grad_(x, true));
        }
        tu_ok(cg_tensor_zero_grad(x, true));
        tu_ok(cg_module_zero_grad(m, true));
        cg_tensor *y = NULL;
        tu_ok(cg_module_forward(m, x, &y));
        snprintf(what, sizeof what, eval ? "ye" : "y%d", step);
        cg_tensor *y_ref = tu_fixture_npy(c, dt, what);
        tu_assert_close(y, y_ref, tol, what);
        const cg_node *node = cg_tensor_grad_fn(y);
        ck_assert_str_eq(cg_node_name(node), eval ? efn : fn);
        ck_assert_int_eq(cg_node_num_next(node), 3); /* input, weight, bias */
        tu_ok(cg_tensor_backward(y, gy, false));
        snprintf(what, sizeof what, eval ? "gxe" : "gx%d", step);
        check_grad(x, c, dt, what, tol);
        if (w) {
            snprintf(what, sizeof what, eval ? "gwe" : "gw%d", step);
            check_grad(w, c, dt, what, tol);
            snprintf(what, sizeof what, eval ? "gbe" : "gb%d", step);
            check_grad(b, c, dt, what, tol);
        }
        cg_tensor *rm = cg_batch_norm3d_running_mean(m);
        if (rm) {
            int k = eval ? 2 : step; /* eval leaves them as they were */
            snprintf(what, sizeof what, "rm%d", k);
            cg_tensor *r = tu_fixture_npy(c, dt, what);
            tu_assert_close(rm, r, tol, what);
            cg_tensor_release(r);
            snprintf(what, sizeof what, "rv%d", k);
            r = tu_fixture_npy(c, dt, what);
            tu_assert_close(cg_batch_norm3d_running_var(m), r, tol, what);
            cg_tensor_release(r);
            double count;
            tu_ok(cg_tensor_item(cg_batch_norm3d_num_batches_tracked(m), &count,
                                 NULL));
            ck_assert_int_eq((int)count, k + 1);
        } else {
            ck_assert_ptr_null(cg_batch_norm3d_num_batches_tracked(m));
        }
        cg_tensor_release(y_ref);
        cg_tensor_release(y);
    }
    tu_spatial_case_close(&sc);
    cg_tensor_release(x);
    cg_tensor_release(gy);
    cg_module_free(m);
}
END_TEST

/* ---- reprs, attributes, state ----------------------------------------------
 */

static void check_repr(const cg_batch_norm3d_opts *o, const char *id)
{
    cg_module *m = NULL;
    tu_ok(cg_batch_norm3d_new(o, &m));
    tu_spatial_assert_repr(m, id);
    cg_module_free(m);
}

START_TEST(reprs)
{
    cg_batch_norm3d_opts o = cg_batch_norm3d_options(3);
    check_repr(&o, "bn_default");
    o.momentum_none = true;
    o.affine = false;
    o.track_running_stats = false;
    check_repr(&o, "bn_none");
    o = cg_batch_norm3d_options(5);
    o.eps = 0.1 + 0.2;
    o.momentum = 1e-7;
    check_repr(&o, "bn_eps");

    /* PyTorch's parameters and buffers, their initial values and names */
    o = cg_batch_norm3d_options(3);
    o.dtype = CG_FLOAT64;
    cg_module *m = NULL;
    tu_ok(cg_batch_norm3d_new(&o, &m));
    ck_assert_int_eq(cg_module_num_parameters(m), 2);
    const char *name;
    cg_tensor *p;
    tu_ok(cg_module_named_parameter(m, 0, &name, &p));
    ck_assert_str_eq(name, "weight");
    ck_assert_ptr_eq(p, cg_batch_norm3d_weight(m));
    tu_ok(cg_module_named_parameter(m, 1, &name, &p));
    ck_assert_str_eq(name, "bias");
    double v[3];
    tu_ok(cg_tensor_to_doubles(cg_batch_norm3d_weight(m), v, 3));
    ck_assert(v[0] == 1 && v[1] == 1 && v[2] == 1);
    tu_ok(cg_tensor_to_doubles(cg_batch_norm3d_running_var(m), v, 3));
    ck_assert(v[0] == 1 && v[2] == 1);
    tu_ok(cg_tensor_to_doubles(cg_batch_norm3d_running_mean(m), v, 3));
    ck_assert(v[0] == 0 && v[2] == 0);
    cg_tensor *nbt = cg_batch_norm3d_num_batches_tracked(m);
    ck_assert_int_eq(cg_tensor_dim(nbt), 0);
    ck_assert_int_eq(cg_tensor_dtype(nbt), CG_FLOAT64);
    ck_assert_ptr_eq(cg_module_get_buffer(m, "running_mean"),
                     cg_batch_norm3d_running_mean(m));
    char buf[128];
    tu_ok(cg_module_getattr(m, "eps", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "1e-05");
    tu_ok(cg_module_getattr(m, "momentum", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "0.1");
    tu_ok(cg_module_getattr(m, "num_features", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "3");
    cg_module_free(m);

    o.affine = false;
    o.track_running_stats = false;
    tu_ok(cg_batch_norm3d_new(&o, &m));
    ck_assert_int_eq(cg_module_num_parameters(m), 0);
    ck_assert_ptr_null(cg_batch_norm3d_running_mean(m));
    tu_ok(cg_module_getattr(m, "running_var", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "None");
    cg_module_free(m);
}
END_TEST

/* ---- errors
 * ------------------------------------------------------------------ */

/* Everything a forward could change, as doubles. */
typedef struct bn_state {
    double rm[4], rv[4], nbt;
    bool training;
} bn_state;

static bn_state state_of(const cg_module *m)
{
    bn_state s = {{0}, {0}, -1, cg_module_is_training(m)};
    if (cg_batch_norm3d_running_mean(m)) {
        tu_ok(cg_tensor_to_doubles(cg_batch_norm3d_running_mean(m), s.rm, 3));
        tu_ok(cg_tensor_to_doubles(cg_batch_norm3d_running_var(m), s.rv, 3));
        tu_ok(cg_tensor_item(cg_batch_norm3d_num_batches_tracked(m), &s.nbt,
                             NULL));
    }
    return s;
}

static cg_status error_call(const char *id)
{
    static const int64_t s4[] = {2, 3, 4, 4}, s6[] = {1, 3, 1, 1, 1, 1},
                         one[] = {1, 3, 1, 1, 1}, c4[] = {2, 4, 1, 1, 1},
                         c4b[] = {2, 4, 2, 2, 2}, s5[] = {2, 3, 2, 2, 2},
                         f2[] = {2, 3}, f1[] = {3}, n3[] = {3}, n4[] = {4};
    const int64_t *shape = s5;
    int ndim = 5;
    cg_dtype dt = CG_FLOAT32;
    cg_batch_norm3d_opts o = cg_batch_norm3d_options(3);
    bool eval = false;
    cg_status st;
    cg_tensor *y = NULL;
    if (!strncmp(id, "fbn_", 4)) { /* the functional form */
        const char *c = id + 4;
        cg_tensor *x = tu_randn(strcmp(c, "1d") ? f2 : f1,
                                strcmp(c, "1d") ? 2 : 1, CG_FLOAT32);
        cg_tensor *z3 = NULL, *o3 = NULL, *o4 = NULL, *o3d = NULL;
        tu_ok(cg_zeros(n3, 1, CG_FLOAT32, &z3));
        tu_ok(cg_ones(n3, 1, CG_FLOAT32, &o3));
        tu_ok(cg_ones(n4, 1, CG_FLOAT32, &o4));
        tu_ok(cg_ones(n3, 1, CG_FLOAT64, &o3d));
        double before[4];
        tu_ok(cg_tensor_to_doubles(z3, before, 3));
        if (!strcmp(c, "eval_none"))
            st = cg_batch_norm(x, NULL, NULL, NULL, NULL, false, 0.1, 1e-5, &y);
        else if (!strcmp(c, "rv"))
            st = cg_batch_norm(x, z3, o4, NULL, NULL, true, 0.1, 1e-5, &y);
        else if (!strcmp(c, "bias"))
            st = cg_batch_norm(x, NULL, NULL, o3, o4, true, 0.1, 1e-5, &y);
        else if (!strcmp(c, "1d"))
            st = cg_batch_norm(x, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, &y);
        else {
            ck_assert_str_eq(c, "rv64");
            st = cg_batch_norm(x, z3, o3d, NULL, NULL, true, 0.1, 1e-5, &y);
        }
        double after[4];
        tu_ok(cg_tensor_to_doubles(z3, after, 3)); /* running_mean unchanged */
        ck_assert(memcmp(before, after, 3 * sizeof(double)) == 0);
        ck_assert_ptr_null(y);
        cg_tensor_release(x);
        cg_tensor_release(z3);
        cg_tensor_release(o3);
        cg_tensor_release(o4);
        cg_tensor_release(o3d);
        return st;
    }
    const char *c = id + 3;
    if (!strcmp(c, "4d"))
        shape = s4, ndim = 4;
    else if (!strcmp(c, "6d"))
        shape = s6, ndim = 6;
    else if (!strcmp(c, "1val"))
        shape = one;
    else if (!strcmp(c, "chan_eval"))
        shape = c4, eval = true;
    else if (!strcmp(c, "chan_train"))
        shape = c4;
    else if (!strcmp(c, "chan_notrack"))
        shape = c4b, o.track_running_stats = false;
    else if (!strcmp(c, "mixed_f64"))
        dt = CG_FLOAT64;
    else if (!strcmp(c, "mixed_f32"))
        o.dtype = CG_FLOAT64;
    else if (!strcmp(c, "complex"))
        dt = CG_COMPLEX64, o.affine = false, o.track_running_stats = false;
    else {
        ck_assert_str_eq(c, "neg");
        o.num_features = -1;
        cg_module *m = NULL;
        st = cg_batch_norm3d_new(&o, &m);
        ck_assert_ptr_null(m);
        return st;
    }
    cg_module *m = NULL;
    tu_ok(cg_batch_norm3d_new(&o, &m));
    if (eval)
        tu_ok(cg_module_eval(m));
    cg_tensor *x = tu_randn(shape, ndim, dt);
    tu_ok(cg_tensor_requires_grad_(x, true));
    bn_state before = state_of(m);
    st = cg_module_forward(m, x, &y);
    bn_state after = state_of(m);
    ck_assert_msg(memcmp(&before, &after, sizeof before) == 0,
                  "%s: the module changed", id);
    ck_assert_ptr_null(y);
    ck_assert_ptr_null(cg_tensor_grad(x));
    cg_tensor_release(x);
    cg_module_free(m);
    return st;
}

static const char *const error_ids[] = {
    "bn_4d",         "bn_6d",           "bn_1val",       "bn_chan_eval",
    "bn_chan_train", "bn_chan_notrack", "bn_mixed_f64",  "bn_mixed_f32",
    "bn_complex",    "bn_neg",          "fbn_eval_none", "fbn_rv",
    "fbn_bias",      "fbn_1d",          "fbn_rv64",
};

/* An empty batch takes PyTorch's clone * weight[0] + bias[0] path: an
 * empty result, AddBackward0, the batch counted, statistics untouched.
 * No channels with N * D = 2**80 values per channel is not the "more
 * than 1 value per channel" error (Python multiplies without overflow):
 * F.batch_norm(torch.empty(2**40, 0, 2**40), None, None, training=True)
 * is empty, of the input's shape. */
START_TEST(empty_batch)
{
    static const int64_t s[] = {0, 3, 2, 2, 2};
    cg_batch_norm3d_opts o = cg_batch_norm3d_options(3);
    cg_module *m = NULL;
    tu_ok(cg_batch_norm3d_new(&o, &m));
    cg_tensor *x = NULL, *y = NULL;
    tu_ok(cg_zeros(s, 5, CG_FLOAT32, &x));
    tu_ok(cg_module_forward(m, x, &y));
    tu_assert_shape(y, s, 5);
    ck_assert_str_eq(cg_node_name(cg_tensor_grad_fn(y)), "AddBackward0");
    bn_state st = state_of(m);
    ck_assert(st.nbt == 1 && st.rm[0] == 0 && st.rv[0] == 1);
    cg_tensor_release(y);
    cg_tensor_release(x);
    cg_module_free(m);
    const int64_t B = INT64_C(1) << 40, huge[] = {B, 0, B};
    tu_ok(cg_empty(huge, 3, CG_FLOAT32, &x));
    tu_ok(cg_batch_norm(x, NULL, NULL, NULL, NULL, true, 0.1, 1e-5, &y));
    tu_assert_shape(y, huge, 3);
    cg_tensor_release(y);
    cg_tensor_release(x);
}
END_TEST

/* ---- gradcheck ------------------------------------------------------------
 */

typedef struct bn_cfg {
    bool training;
    cg_tensor *rm, *rv;
} bn_cfg;

static cg_status bn_fn(cg_tensor *const *in, int n, cg_tensor **out, void *user)
{
    (void)n;
    const bn_cfg *c = user;
    /* training with no running statistics: gradcheck's repeated calls
     * must all see the same function */
    return cg_batch_norm(in[0], c->training ? NULL : c->rm,
                         c->training ? NULL : c->rv, in[1], in[2], c->training,
                         0.1, 1e-5, out);
}

START_TEST(gradcheck)
{
    static const int64_t s5[] = {2, 3, 2, 3, 2}, c3[] = {3};
    const double rmv[3] = {0.1, -0.3, 0.5}, rvv[3] = {0.7, 1.3, 2.0};
    cg_tensor *rm = NULL, *rv = NULL;
    tu_ok(cg_tensor_from_data(rmv, c3, 1, CG_FLOAT64, &rm));
    tu_ok(cg_tensor_from_data(rvv, c3, 1, CG_FLOAT64, &rv));
    for (int training = 0; training < 2; training++) {
        cg_tensor *in[3];
        in[0] = tu_randn(s5, 5, CG_FLOAT64);
        cg_manual_seed(11);
        tu_ok(cg_randn(c3, 1, CG_FLOAT64, NULL, &in[1]));
        tu_ok(cg_randn(c3, 1, CG_FLOAT64, NULL, &in[2]));
        for (int i = 0; i < 3; i++)
            tu_ok(cg_tensor_requires_grad_(in[i], true));
        bn_cfg cfg = {training != 0, rm, rv};
        cg_gradcheck_result r;
        tu_ok(cg_gradcheck(bn_fn, &cfg, in, 3, NULL, &r));
        ck_assert_msg(r.passed, "training %d: %s", training, r.message);
        for (int i = 0; i < 3; i++)
            cg_tensor_release(in[i]);
    }
    cg_tensor_release(rm);
    cg_tensor_release(rv);
}
END_TEST

/* One run on a new module: y, x's gradient and the running variance. */
static void threads_run(void *ctx, cg_tensor **res)
{
    (void)ctx;
    static const int64_t s5[] = {3, 9, 5, 6, 7};
    cg_batch_norm3d_opts o = cg_batch_norm3d_options(9);
    cg_module *m = NULL;
    tu_ok(cg_batch_norm3d_new(&o, &m));
    cg_tensor *x = tu_randn(s5, 5, CG_FLOAT32), *y = NULL, *s = NULL;
    tu_ok(cg_tensor_requires_grad_(x, true));
    tu_ok(cg_module_forward(m, x, &y));
    tu_ok(cg_mul(y, x, &s));
    tu_ok(tu_sum_backward(s));
    res[0] = y;
    res[1] = cg_tensor_retain(cg_tensor_grad(x));
    res[2] = cg_tensor_retain(cg_batch_norm3d_running_var(m));
    cg_tensor_release(s);
    cg_tensor_release(x);
    cg_module_free(m);
}

static cg_status alloc_scenario(void *ctx)
{
    (void)ctx;
    static const int64_t s5[] = {2, 2, 2, 1, 2};
    cg_tensor *x = NULL, *y = NULL;
    cg_module *m = NULL;
    cg_batch_norm3d_opts o = cg_batch_norm3d_options(2);
    cg_status st = cg_arange(16, CG_FLOAT32, &x);
    cg_tensor *xv = NULL;
    if (st == CG_OK)
        st = cg_tensor_reshape(x, s5, 5, &xv);
    if (st == CG_OK)
        st = cg_tensor_requires_grad_(xv, true);
    if (st == CG_OK)
        st = cg_batch_norm3d_new(&o, &m);
    if (st == CG_OK)
        st = cg_module_forward(m, xv, &y);
    if (st == CG_OK)
        st = tu_sum_backward(y);
    cg_tensor_release(y);
    cg_tensor_release(xv);
    cg_tensor_release(x);
    cg_module_free(m);
    return st;
}

/* The documented summation order (core/batch_norm.c), computed here
 * independently: per channel, each sample's run of S values into 8 lanes
 * (value s into lane s % 8), the lanes added as a balanced tree. Values
 * spanning many magnitudes make any other order visible; the output and
 * the weight, bias and input gradients must match bit for bit. */
static double lanes_tree(double *l)
{
    for (int w = 1; w < 8; w *= 2)
        for (int k = 0; k < 8; k += 2 * w)
            l[k] += l[k + w];
    return l[0];
}

/* Rounds v as dtype dt holds it. */
static double as_dt(double v, cg_dtype dt)
{
    return dt == CG_FLOAT32 ? (double)(float)v : v;
}

/* Each value of t as a double (t of at most 3 * 2 * 37 elements). */
static void doubles_of(const cg_tensor *t, double *out)
{
    tu_ok(cg_tensor_to_doubles(t, out, cg_tensor_numel(t)));
}

/* Loop over _i: float64, then float32 (inputs rounded to float first; the
 * sums still run in double, each result rounded once -- that rounding
 * hides most order differences, so float64 is the order's test and
 * float32 checks the float kernel against the same model). */
START_TEST(summation_order)
{
    enum { N = 3, C = 2, S = 37 };
    const cg_dtype dt = _i ? CG_FLOAT32 : CG_FLOAT64;
    static double xv[N * C * S], gv[N * C * S];
    for (int i = 0; i < N * C * S; i++) {
        xv[i] =
            as_dt(ldexp((i % 3 == 0 ? -1.0 : 1.0) * (1.0 + 1.0 / (i % 7 + 3)),
                        i % 41 - 20),
                  dt);
        gv[i] = as_dt(ldexp(1.0 + 1.0 / (i % 5 + 2), i % 23 - 11), dt);
    }
    const double wv[C] = {0.75, -1.25}, bv[C] = {0.5, 2.0}, eps = 1e-5;
    const int64_t xs[3] = {N, C, S}, cs[1] = {C};
    cg_tensor *t[4] = {NULL, NULL, NULL, NULL}, *y = NULL;
    tu_ok(cg_tensor_from_data(xv, xs, 3, CG_FLOAT64, &t[0]));
    tu_ok(cg_tensor_from_data(gv, xs, 3, CG_FLOAT64, &t[1]));
    tu_ok(cg_tensor_from_data(wv, cs, 1, CG_FLOAT64, &t[2]));
    tu_ok(cg_tensor_from_data(bv, cs, 1, CG_FLOAT64, &t[3]));
    cg_tensor *x = NULL, *gy = NULL, *w = NULL, *b = NULL;
    tu_ok(cg_tensor_to(t[0], dt, &x));
    tu_ok(cg_tensor_to(t[1], dt, &gy));
    tu_ok(cg_tensor_to(t[2], dt, &w));
    tu_ok(cg_tensor_to(t[3], dt, &b));
    tu_ok(cg_tensor_requires_grad_(x, true));
    tu_ok(cg_tensor_requires_grad_(w, true));
    tu_ok(cg_tensor_requires_grad_(b, true));
    tu_ok(cg_batch_norm(x, NULL, NULL, w, b, true, 0.1, eps, &y));
    tu_ok(cg_tensor_backward(y, gy, false));
    static double yg[N * C * S], gx[N * C * S];
    double gw[C], gb[C];
    doubles_of(y, yg);
    doubles_of(cg_tensor_grad(x), gx);
    doubles_of(cg_tensor_grad(w), gw);
    doubles_of(cg_tensor_grad(b), gb);
    const double n = N * S;
    for (int c = 0; c < C; c++) {
        double l[8] = {0}, q[8] = {0}, lg[8] = {0}, lgx[8] = {0};
        for (int i = 0; i < N; i++)
            for (int s = 0; s < S; s++)
                l[s % 8] += xv[(i * C + c) * S + s];
        double mean = lanes_tree(l) / n;
        for (int i = 0; i < N; i++)
            for (int s = 0; s < S; s++) {
                double dv = xv[(i * C + c) * S + s] - mean;
                q[s % 8] += dv * dv;
            }
        double is = 1.0 / sqrt(lanes_tree(q) / n + eps);
        for (int i = 0; i < N; i++)
            for (int s = 0; s < S; s++) {
                int at = (i * C + c) * S + s;
                double want = as_dt((xv[at] - mean) * is * wv[c] + bv[c], dt);
                ck_assert_msg(yg[at] == want, "y[%d]: %.17g, expected %.17g",
                              at, yg[at], want);
                lg[s % 8] += gv[at];
                lgx[s % 8] += gv[at] * ((xv[at] - mean) * is);
            }
        double sg = lanes_tree(lg), sgx = lanes_tree(lgx);
        ck_assert_msg(gb[c] == as_dt(sg, dt),
                      "grad bias[%d]: %.17g, expected %.17g", c, gb[c], sg);
        ck_assert_msg(gw[c] == as_dt(sgx, dt),
                      "grad weight[%d]: %.17g, expected %.17g", c, gw[c], sgx);
        for (int i = 0; i < N; i++)
            for (int s = 0; s < S; s++) {
                int at = (i * C + c) * S + s;
                double xh = (xv[at] - mean) * is;
                double want =
                    as_dt((gv[at] - sg / n - xh * sgx / n) * is * wv[c], dt);
                ck_assert_msg(gx[at] == want,
                              "grad input[%d]: %.17g, expected %.17g", at,
                              gx[at], want);
            }
    }
    cg_tensor *all[] = {t[0], t[1], t[2], t[3], x, w, b, gy, y};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        cg_tensor_release(all[i]);
}
END_TEST

Suite *batch_norm_suite(void)
{
    const tu_spatial_suite d = {
        .name = "batch_norm",
        .cases = cases,
        .ncases = NCASES,
        .tol_f32 = TOL_F32,
        .tol_f64 = TOL_F64,
        .torch_case = torch_case,
        .reprs = reprs,
        .error_ids = error_ids,
        .nerrors = (int)(sizeof error_ids / sizeof *error_ids),
        .error_call = error_call,
        .more_errors = empty_batch,
        .gradcheck = gradcheck,
        .threads_run = threads_run,
        .n_threads_res = 3,
        .alloc_scenario = alloc_scenario,
        .alloc_min = 10,
    };
    Suite *s = tu_spatial_suite_create(&d);
    tcase_add_loop_test(tu_suite_tcase(s, "order", 0), summation_order, 0, 2);
    return s;
}
