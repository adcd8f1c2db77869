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
 *   threads    1 and 4 threads give bitwise-identical sums and gradients
 *   errors     PyTorch's messages, arguments untouched
 *   alloc      every allocation of forward + backward fails in turn
 *   gradcheck  finite differences (float64, complex128)
 */
#include "testutil.h"
#include "tensor_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* float32 results are rounded from double sums, PyTorch's from float
 * cascades: both within a few ulp of exact. float64: both pairwise-like. */
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

/* A list argument "key=a,b,c" or a shape "key=2x3x4" (separator sep). */
static int fx_list(const fx_case *c, const char *key, char sep, int64_t *v)
{
    const char *s = strstr(c->args, key);
    ck_assert_msg(s != NULL, "no %s in '%s'", key, c->args);
    s += strlen(key) + 1;
    int n = 0;
    while (*s && *s != ' ') {
        v[n++] = strtoll(s, (char **)&s, 10);
        if (*s == sep)
            s++;
    }
    return n;
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

static cg_status reduce_op(const fx_case *c, cg_tensor **in, cg_tensor **out)
{
    int64_t dims[CG_MAX_DIMS];
    if (strcmp(c->op, "sum") == 0)
        return cg_sum(in[0], out);
    if (strcmp(c->op, "mean") == 0)
        return cg_mean(in[0], out);
    if (strcmp(c->op, "expand") == 0) {
        int n = fx_list(c, "shape", 'x', dims);
        return cg_tensor_expand(in[0], dims, n, out);
    }
    int n = fx_list(c, "dims", ',', dims);
    bool keep = fx_int(c, "keep") != 0;
    if (strcmp(c->op, "sum_dims") == 0)
        return cg_sum_dims(in[0], dims, n, keep, out);
    ck_assert_str_eq(c->op, "mean_dims");
    return cg_mean_dims(in[0], dims, n, keep, out);
}

START_TEST(test_torch)
{
    fx_run("reduce", _i, reduce_op);
}
END_TEST

/* ======================================================================
 * order
 * ====================================================================== */

/* The documented order, computed here independently. */
static double model_sum(const double *x, int64_t n)
{
    double total = 0.0;
    for (int64_t c0 = 0; c0 < n; c0 += 256) {
        int64_t m = n - c0 < 256 ? n - c0 : 256;
        double v[256];
        for (int64_t i = 0; i < m; i++)
            v[i] = x[c0 + i];
        while (m > 1) { /* one level of the pairwise tree */
            int64_t h = m / 2;
            for (int64_t i = 0; i < h; i++)
                v[i] = v[2 * i] + v[2 * i + 1];
            if (m % 2)
                v[h] = v[m - 1];
            m = h + m % 2;
        }
        total = c0 == 0 ? v[0] : total + v[0];
    }
    return total;
}

START_TEST(test_order)
{
    /* values spanning many magnitudes make the order visible */
    static const int64_t sizes[] = {1, 7, 255, 256, 257, 1000, 5000};
    for (size_t k = 0; k < sizeof sizes / sizeof *sizes; k++) {
        int64_t n = sizes[k];
        double *x = malloc((size_t)n * sizeof *x);
        ck_assert_ptr_nonnull(x);
        for (int64_t i = 0; i < n; i++)
            x[i] = ldexp((i % 3 == 0 ? -1.0 : 1.0) * (double)(i % 17 + 1),
                         (int)(i % 40) - 20);
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
}
END_TEST

/* A strided sum over a middle dim equals the model per output. */
START_TEST(test_order_strided)
{
    int64_t shape[3] = {3, 600, 2}, n = 3 * 600 * 2;
    double *x = malloc((size_t)n * sizeof *x);
    ck_assert_ptr_nonnull(x);
    for (int64_t i = 0; i < n; i++)
        x[i] = ldexp(1.0 + (double)(i % 11), (int)(i % 31) - 15) *
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
    int64_t shape[2] = {300, 700};
    cg_tensor *x = NULL, *a[5], *b[5];
    cg_manual_seed(7);
    tu_ok(cg_randn(shape, 2, CG_FLOAT32, NULL, &x));
    tu_ok(cg_tensor_requires_grad_(x, true));
    int prev = cg_get_num_threads();
    sums_with_threads(1, x, a);
    sums_with_threads(4, x, b);
    cg_set_num_threads(prev);
    for (int i = 0; i < 5; i++) {
        tu_assert_bitwise(a[i], b[i], "1 vs 4 threads");
        cg_tensor_release(a[i]);
        cg_tensor_release(b[i]);
    }
    cg_tensor_release(x);
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
    TCase *tc = tcase_create("torch");
    tcase_add_loop_test(tc, test_torch, 0, fx_count("reduce"));
    suite_add_tcase(s, tc);
    tc = tcase_create("order");
    tcase_add_test(tc, test_order);
    tcase_add_test(tc, test_order_strided);
    suite_add_tcase(s, tc);
    tc = tcase_create("threads");
    tcase_add_test(tc, test_threads);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_backward_twice);
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
