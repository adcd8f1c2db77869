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
 * The fixture table (same format in test_matmul.c, test_cat.c,
 * test_softmax.c, test_complex.c; see gen_reduce.py)
 * ====================================================================== */

enum { FX_MAX_IN = 8 };

typedef struct fx_case {
    char *line; /* owned; the fields point into it */
    const char *op, *args, *chain, *y, *gy;
    char *views[FX_MAX_IN], *inputs[FX_MAX_IN], *grads[FX_MAX_IN];
    int n;
} fx_case;

static char *fx_text(void)
{
    char *s = tu_read_text(tu_data_path("ops/reduce/cases.tsv"));
    ck_assert_msg(s != NULL, "cannot read ops/reduce/cases.tsv");
    return s;
}

/* The `k`-th line (0-based, after the header) whose suite is `suite`,
 * as a malloc'd copy; NULL when there are fewer. */
static char *fx_line(const char *text, const char *suite, int k)
{
    size_t sl = strlen(suite);
    const char *s = strchr(text, '\n');
    while (s && *++s) {
        const char *e = strchr(s, '\n');
        size_t len = e ? (size_t)(e - s) : strlen(s);
        if (len > sl && strncmp(s, suite, sl) == 0 && s[sl] == '\t' &&
            k-- == 0) {
            char *line = malloc(len + 1);
            ck_assert_ptr_nonnull(line);
            memcpy(line, s, len);
            line[len] = '\0';
            return line;
        }
        s = e;
    }
    return NULL;
}

/* Rows of `suite`, counted without Check's asserts (which cannot run
 * while the suite is being built). */
static int fx_count(const char *suite)
{
    FILE *f = fopen(tu_data_path("ops/reduce/cases.tsv"), "r");
    char line[4096];
    size_t sl = strlen(suite);
    int n = 0;
    while (f && fgets(line, sizeof line, f))
        n += strncmp(line, suite, sl) == 0 && line[sl] == '\t';
    if (f)
        fclose(f);
    return n;
}

/* Splits s at `sep` in place into at most `max` fields. */
static int split(char *s, char sep, char **f, int max)
{
    int n = 0;
    if (*s == '\0')
        return 0;
    for (;;) {
        ck_assert_int_lt(n, max);
        f[n++] = s;
        char *e = strchr(s, sep);
        if (!e)
            return n;
        *e = '\0';
        s = e + 1;
    }
}

static void fx_get(const char *suite, int k, fx_case *c)
{
    char *text = fx_text();
    memset(c, 0, sizeof *c);
    c->line = fx_line(text, suite, k);
    free(text);
    ck_assert_msg(c->line != NULL, "no %s case %d", suite, k);
    char *f[10];
    ck_assert_int_eq(split(c->line, '\t', f, 10), 10);
    c->op = f[2];
    c->args = f[3];
    c->chain = f[5];
    c->y = f[7];
    c->gy = f[8];
    c->n = split(f[4], ',', c->views, FX_MAX_IN);
    ck_assert_int_eq(split(f[6], ' ', c->inputs, FX_MAX_IN), c->n);
    ck_assert_int_eq(split(f[9], ' ', c->grads, FX_MAX_IN), c->n);
}

/* A tensor named "<dtype>:<offset>:<shape>" in the values files. */
static cg_tensor *fx_tensor(const char *name)
{
    static const char *dts[] = {"f32", "f64", "c64", "c128"};
    char dt[8];
    long long off;
    int pos = 0;
    ck_assert_int_eq(sscanf(name, "%7[^:]:%lld:%n", dt, &off, &pos), 2);
    int d = 0;
    while (d < 4 && strcmp(dts[d], dt) != 0)
        d++;
    ck_assert_int_lt(d, 4);
    int64_t shape[CG_MAX_DIMS];
    int ndim = 0;
    const char *s = name + pos;
    if (strcmp(s, "()") != 0) {
        for (;;) {
            shape[ndim++] = strtoll(s, (char **)&s, 10);
            if (*s != 'x')
                break;
            s++;
        }
    }
    char file[64];
    snprintf(file, sizeof file, "ops/reduce/values_%s.npy", dt);
    cg_tensor *all = tu_load(file), *t = NULL;
    size_t el = cg_dtype_size((cg_dtype)d);
    tu_ok(cg_tensor_from_data((char *)cg_tensor_data(all) + (size_t)off * el,
                              shape, ndim, (cg_dtype)d, &t));
    cg_tensor_release(all);
    return t;
}

/* An integer argument "key=v" of the args column. */
static int64_t fx_int(const fx_case *c, const char *key)
{
    const char *s = strstr(c->args, key);
    ck_assert_msg(s != NULL, "no %s in '%s'", key, c->args);
    return strtoll(s + strlen(key) + 1, NULL, 10);
}

/* Appends node n's chain, in gen_reduce.py's notation, to buf. */
static void chain_of(const cg_node *n, char *buf, size_t cap)
{
    size_t len = strlen(buf);
    if (!n) {
        snprintf(buf + len, cap - len, "None");
        return;
    }
    snprintf(buf + len, cap - len, "%s", cg_node_name(n));
    int k = cg_node_num_next(n);
    if (k == 0 || strcmp(cg_node_name(n), "AccumulateGrad") == 0)
        return;
    strncat(buf, "(", cap - strlen(buf) - 1);
    for (int i = 0; i < k; i++) {
        int nr = 0;
        const cg_node *m = cg_node_next(n, i, &nr);
        if (i)
            strncat(buf, ", ", cap - strlen(buf) - 1);
        chain_of(m, buf, cap);
        if (m && nr) {
            len = strlen(buf);
            snprintf(buf + len, cap - len, "#%d", nr);
        }
    }
    strncat(buf, ")", cap - strlen(buf) - 1);
}

static double tol_of(const cg_tensor *t)
{
    cg_dtype dt = cg_tensor_dtype(t);
    return dt == CG_FLOAT32 || dt == CG_COMPLEX64 ? TOL_F32 : TOL_F64;
}

/* tu_assert_close, where nan matches nan and an infinity itself (PyTorch
 * gives nan for the mean of nothing and for softmax of a line with +inf). */
static void fx_close(const cg_tensor *got, const cg_tensor *ref,
                     const char *what)
{
    tu_assert_shape(got, cg_tensor_shape(ref), cg_tensor_dim(ref));
    int64_t n = cg_tensor_numel(ref) *
                (cg_dtype_is_complex(cg_tensor_dtype(ref)) ? 2 : 1);
    double *a = malloc((size_t)(n + 1) * sizeof *a);
    double *b = malloc((size_t)(n + 1) * sizeof *b);
    ck_assert(a && b);
    tu_ok(cg_tensor_to_doubles(got, a, n));
    tu_ok(cg_tensor_to_doubles(ref, b, n));
    double scale = 1.0, tol = tol_of(ref);
    for (int64_t i = 0; i < n; i++)
        if (isfinite(b[i]))
            scale = fmax(scale, fabs(b[i]));
    for (int64_t i = 0; i < n; i++) {
        bool ok = isnan(b[i])   ? isnan(a[i])
                  : isinf(b[i]) ? a[i] == b[i]
                                : fabs(a[i] - b[i]) <= tol * scale;
        ck_assert_msg(ok, "%s: value %lld is %.17g, expected %.17g", what,
                      (long long)i, a[i], b[i]);
    }
    free(a);
    free(b);
}

typedef cg_status (*fx_op)(const fx_case *c, cg_tensor **in, cg_tensor **out);

/* Loads a case, builds the inputs (views of leaves), runs op, and checks
 * y, its chain, and the leaves' gradients after y.backward(gy). */
static void fx_run(const char *suite, int k, fx_op op)
{
    fx_case c;
    fx_get(suite, k, &c);
    cg_tensor *base[FX_MAX_IN], *in[FX_MAX_IN], *y = NULL;
    for (int i = 0; i < c.n; i++) {
        base[i] = fx_tensor(c.inputs[i]);
        tu_ok(cg_tensor_requires_grad_(base[i], !strchr(c.views[i], '!')));
        switch (c.views[i][0]) {
        case 'T':
            tu_ok(cg_tensor_transpose(base[i], -2, -1, &in[i]));
            break;
        case 'S':
            tu_ok(cg_tensor_slice(base[i], 0, 0, INT64_MAX, 2, &in[i]));
            break;
        default:
            in[i] = cg_tensor_retain(base[i]);
        }
    }
    tu_ok(op(&c, in, &y));
    cg_tensor *yref = fx_tensor(c.y);
    ck_assert_int_eq(cg_tensor_dtype(y), cg_tensor_dtype(yref));
    fx_close(y, yref, c.y);
    char chain[4096] = "";
    if (cg_tensor_grad_fn(y))
        chain_of(cg_tensor_grad_fn(y), chain, sizeof chain);
    else
        strcpy(chain, "-");
    ck_assert_str_eq(chain, c.chain);
    if (cg_tensor_requires_grad(y)) {
        cg_tensor *gy = fx_tensor(c.gy);
        tu_ok(cg_tensor_backward(y, gy, false));
        cg_tensor_release(gy);
    }
    for (int i = 0; i < c.n; i++) {
        if (strcmp(c.grads[i], "-") == 0) {
            ck_assert_ptr_null(cg_tensor_grad(base[i]));
            continue;
        }
        cg_tensor *g = fx_tensor(c.grads[i]);
        ck_assert_msg(cg_tensor_grad(base[i]) != NULL, "no grad of input %d",
                      i);
        ck_assert_int_eq(cg_tensor_dtype(cg_tensor_grad(base[i])),
                         cg_tensor_dtype(g));
        fx_close(cg_tensor_grad(base[i]), g, c.grads[i]);
        cg_tensor_release(g);
    }
    for (int i = 0; i < c.n; i++) {
        cg_tensor_release(in[i]);
        cg_tensor_release(base[i]);
    }
    cg_tensor_release(yref);
    cg_tensor_release(y);
    free(c.line);
}

/* ======================================================================
 * torch
 * ====================================================================== */

static cg_status softmax_op(const fx_case *c, cg_tensor **in, cg_tensor **out)
{
    if (strcmp(c->op, "softmax") == 0)
        return cg_softmax(in[0], fx_int(c, "dim"), out);
    ck_assert_str_eq(c->op, "log_softmax");
    return cg_log_softmax(in[0], fx_int(c, "dim"), out);
}

START_TEST(test_torch)
{
    fx_run("softmax", _i, softmax_op);
}
END_TEST

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
    TCase *tc = tcase_create("torch");
    tcase_add_loop_test(tc, test_torch, 0, fx_count("softmax"));
    suite_add_tcase(s, tc);
    tc = tcase_create("special");
    tcase_add_test(tc, test_special);
    suite_add_tcase(s, tc);
    tc = tcase_create("threads");
    tcase_add_test(tc, test_threads);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_saved_output);
    suite_add_tcase(s, tc);
    tc = tcase_create("alloc");
    tcase_add_test(tc, test_alloc);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    tc = tcase_create("gradcheck");
    tcase_add_test(tc, test_gradcheck);
    tcase_set_timeout(tc, 120);
    suite_add_tcase(s, tc);
    return s;
}
