/* test_cat.c -- torch.cat against PyTorch 1.13.
 *
 * TCases:
 *   torch      every "cat" row of tests/data/ops/reduce/cases.tsv (made by
 *              tests/data/ops/gen_reduce.py): values, gradients and the
 *              grad_fn chain, for all dtypes, mixed dtypes (promotion),
 *              legacy empty tensors, non-contiguous inputs, inputs that
 *              need no grad
 *   errors     every message, as PyTorch words it, in its order
 *   alloc      every allocation of forward + backward fails in turn
 *   gradcheck  finite differences (float64, complex128, and a float64
 *              input promoted to complex128)
 */
#include "testutil.h"
#include "tensor_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* cat only copies (and converts float32 to wider dtypes exactly) */
#define TOL_F32 1e-7
#define TOL_F64 1e-15

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

static cg_status cat_op(const fx_case *c, cg_tensor **in, cg_tensor **out)
{
    ck_assert_str_eq(c->op, "cat");
    return cg_cat(in, c->n, fx_int(c, "dim"), out);
}

START_TEST(test_torch)
{
    fx_run("cat", _i, cat_op);
}
END_TEST

/* The result owns new storage; a single input is copied too. */
START_TEST(test_copies)
{
    cg_tensor *a = NULL, *y = NULL;
    tu_ok(cg_tensor_literal("[1., 2., 3.]", &a));
    tu_ok(cg_cat(&a, 1, 0, &y));
    ck_assert(!cg_tensor_shares_storage(a, y));
    ck_assert_ptr_null(cg_tensor_grad_fn(y));
    tu_assert_bitwise(y, a, "cat of one");
    cg_tensor_release(y);
    cg_tensor_release(a);
}
END_TEST

/* ======================================================================
 * errors
 * ====================================================================== */

static cg_tensor *zt(const char *shape_text, cg_dtype dt)
{
    int64_t shape[8];
    int n = 0;
    for (const char *s = shape_text; *s;) {
        shape[n++] = strtoll(s, (char **)&s, 10);
        if (*s == 'x')
            s++;
    }
    cg_tensor *t = NULL;
    tu_ok(cg_zeros(shape, n, dt, &t));
    tu_ok(cg_tensor_requires_grad_(t, true));
    return t;
}

typedef struct err_case {
    const char *shapes[3]; /* "" is a 0-d tensor, NULL ends the list */
    int64_t dim;
    cg_status st;
    const char *msg;
} err_case;

START_TEST(test_errors)
{
    static const err_case cases[] = {
        {{NULL},
         0,
         CG_ERR_RUNTIME,
         "torch.cat(): expected a non-empty list of Tensors"},
        {{"2x3", "3x3", NULL},
         1,
         CG_ERR_RUNTIME,
         "Sizes of tensors must match except in dimension 1. Expected size 2 "
         "but got size 3 for tensor number 1 in the list."},
        {{"1x2x3", "1x2x4", NULL},
         0,
         CG_ERR_RUNTIME,
         "Sizes of tensors must match except in dimension 0. Expected size 3 "
         "but got size 4 for tensor number 1 in the list."},
        {{"1x2x3", "1x3x3", NULL},
         2,
         CG_ERR_RUNTIME,
         "Sizes of tensors must match except in dimension 2. Expected size 2 "
         "but got size 3 for tensor number 1 in the list."},
        {{"2x3", "2x3x1", NULL},
         0,
         CG_ERR_RUNTIME,
         "Tensors must have same number of dimensions: got 2 and 3"},
        {{"2x3", "3", NULL},
         0,
         CG_ERR_RUNTIME,
         "Tensors must have same number of dimensions: got 2 and 1"},
        {{"3", "2x3", NULL},
         0,
         CG_ERR_RUNTIME,
         "Tensors must have same number of dimensions: got 1 and 2"},
        {{"0", "2x3", "2x3x1"},
         1,
         CG_ERR_RUNTIME,
         "Tensors must have same number of dimensions: got 2 and 3"},
        {{"0", "2x3", "3x3"},
         1,
         CG_ERR_RUNTIME,
         "Sizes of tensors must match except in dimension 1. Expected size 2 "
         "but got size 3 for tensor number 2 in the list."},
        {{"2x3", "0", "3x3"},
         1,
         CG_ERR_RUNTIME,
         "Sizes of tensors must match except in dimension 1. Expected size 2 "
         "but got size 3 for tensor number 2 in the list."},
        {{"0x0", "2x3", NULL},
         0,
         CG_ERR_RUNTIME,
         "Sizes of tensors must match except in dimension 0. Expected size 0 "
         "but got size 3 for tensor number 1 in the list."},
        {{"", "2", NULL},
         0,
         CG_ERR_RUNTIME,
         "zero-dimensional tensor (at position 0) cannot be concatenated"},
        {{"2", "", NULL},
         0,
         CG_ERR_RUNTIME,
         "zero-dimensional tensor (at position 1) cannot be concatenated"},
        {{"", "2x3", NULL},
         5,
         CG_ERR_RUNTIME,
         "zero-dimensional tensor (at position 0) cannot be concatenated"},
        {{"0", "", NULL},
         0,
         CG_ERR_RUNTIME,
         "zero-dimensional tensor (at position 1) cannot be concatenated"},
        {{"2x3", "2x3", NULL},
         2,
         CG_ERR_INDEX,
         "Dimension out of range (expected to be in range of [-2, 1], but "
         "got 2)"},
        {{"2x3", "2x3", NULL},
         -3,
         CG_ERR_INDEX,
         "Dimension out of range (expected to be in range of [-2, 1], but "
         "got -3)"},
        {{"2x3", "0", NULL},
         5,
         CG_ERR_INDEX,
         "Dimension out of range (expected to be in range of [-2, 1], but "
         "got 5)"},
        {{"0", "2x3", NULL},
         2,
         CG_ERR_INDEX,
         "Dimension out of range (expected to be in range of [-2, 1], but "
         "got 2)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const err_case *e = &cases[k];
        cg_tensor *in[3] = {NULL}, *out = NULL;
        int n = 0;
        while (n < 3 && e->shapes[n]) {
            in[n] = zt(e->shapes[n], n == 1 ? CG_FLOAT64 : CG_FLOAT32);
            n++;
        }
        cg_status st = cg_cat(in, n, e->dim, &out);
        ck_assert_msg(st == e->st, "case %zu: %s (%s)", k, cg_status_name(st),
                      cg_last_error());
        ck_assert_str_eq(cg_last_error(), e->msg);
        ck_assert_ptr_null(out);
        for (int i = 0; i < n; i++) {
            ck_assert_ptr_null(cg_tensor_grad_fn(in[i]));
            cg_tensor_release(in[i]);
        }
    }
    cg_tensor *a = zt("2", CG_FLOAT32), *out = NULL;
    cg_tensor *with_null[2] = {a, NULL};
    tu_fails(cg_cat(&a, 1, 0, NULL), CG_ERR_MISUSE, "out must not be NULL");
    tu_fails(cg_cat(NULL, 2, 0, &out), CG_ERR_MISUSE,
             "tensors must not be NULL");
    tu_fails(cg_cat(with_null, 2, 0, &out), CG_ERR_MISUSE,
             "tensors[1] must not be NULL");
    tu_fails(cg_cat(&a, -1, 0, &out), CG_ERR_VALUE,
             "the number of tensors must not be negative, but got -1");
    tu_fails(cg_cat(NULL, 0, 0, &out), CG_ERR_RUNTIME,
             "torch.cat(): expected a non-empty list of Tensors");
    ck_assert_ptr_null(out);
    cg_tensor_release(a);
}
END_TEST

/* ======================================================================
 * alloc
 * ====================================================================== */

/* cat([float32 2x3, legacy empty float64, complex64 2x2 transposed], -1),
 * summed, backward. */
static cg_status alloc_scenario(void *ctx)
{
    (void)ctx;
    int64_t s1[2] = {2, 3}, s2[2] = {2, 2}, s0 = 0;
    cg_tensor *in[3] = {NULL}, *t = NULL, *y = NULL, *s = NULL;
    cg_status st = cg_ones(s1, 2, CG_FLOAT32, &in[0]);
    if (st == CG_OK)
        st = cg_ones(&s0, 1, CG_FLOAT64, &in[1]);
    if (st == CG_OK)
        st = cg_ones(s2, 2, CG_COMPLEX64, &t);
    for (int i = 0; i < 2 && st == CG_OK; i++)
        st = cg_tensor_requires_grad_(in[i], true);
    if (st == CG_OK)
        st = cg_tensor_requires_grad_(t, true);
    if (st == CG_OK)
        st = cg_tensor_transpose(t, 0, 1, &in[2]);
    if (st == CG_OK)
        st = cg_cat(in, 3, -1, &y);
    if (st == CG_OK)
        st = cg_sum(y, &s);
    if (st == CG_OK)
        st = cg_tensor_backward(s, NULL, false);
    cg_tensor_release(s);
    cg_tensor_release(y);
    for (int i = 0; i < 3; i++)
        cg_tensor_release(in[i]);
    cg_tensor_release(t);
    return st;
}

START_TEST(test_alloc)
{
    ck_assert_int_gt(tu_alloc_sweep(alloc_scenario, NULL, "cat"), 0);
}
END_TEST

/* ======================================================================
 * gradcheck
 * ====================================================================== */

typedef struct gc_spec {
    int64_t dim;
    bool transpose_first;
} gc_spec;

static cg_status gc_fn(cg_tensor *const *in, int n, cg_tensor **out, void *user)
{
    const gc_spec *s = user;
    cg_tensor *v[4], *t = NULL;
    cg_status st = CG_OK;
    for (int i = 0; i < n; i++)
        v[i] = in[i];
    if (s->transpose_first) {
        if ((st = cg_tensor_transpose(in[0], 0, -1, &t)) != CG_OK)
            return st;
        v[0] = t;
    }
    st = cg_cat(v, n, s->dim, out);
    cg_tensor_release(t);
    return st;
}

START_TEST(test_gradcheck)
{
    static const struct {
        gc_spec s;
        int n;
        int64_t shapes[3][3];
        int ndim;
        int dtypes[3]; /* 0: the case's dtype, 1: float64 */
    } cases[] = {
        {{0, false}, 2, {{2, 3}, {1, 3}}, 2, {0, 0}},
        {{-1, true}, 3, {{3, 2}, {2, 1}, {2, 4}}, 2, {0, 0, 0}},
        {{1, false}, 2, {{2, 1, 3}, {2, 2, 3}}, 3, {0, 0}},
        {{0, false}, 2, {{2, 2}, {1, 2}}, 2, {1, 0}},
    };
    static const cg_dtype dts[] = {CG_FLOAT64, CG_COMPLEX128};
    for (int d = 0; d < 2; d++)
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
            cg_tensor *in[3] = {NULL};
            for (int i = 0; i < cases[k].n; i++) {
                cg_manual_seed(10 * k + i);
                tu_ok(cg_randn(cases[k].shapes[i], cases[k].ndim,
                               cases[k].dtypes[i] ? CG_FLOAT64 : dts[d], NULL,
                               &in[i]));
                tu_ok(cg_tensor_requires_grad_(in[i], true));
            }
            cg_gradcheck_result r;
            tu_ok(cg_gradcheck(gc_fn, (void *)&cases[k].s, in, cases[k].n, NULL,
                               &r));
            ck_assert_msg(r.passed, "%s case %zu: %s", cg_dtype_name(dts[d]), k,
                          r.message);
            for (int i = 0; i < cases[k].n; i++)
                cg_tensor_release(in[i]);
        }
}
END_TEST

Suite *cat_suite(void)
{
    Suite *s = suite_create("cat");
    TCase *tc = tcase_create("torch");
    tcase_add_loop_test(tc, test_torch, 0, fx_count("cat"));
    tcase_add_test(tc, test_copies);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_errors);
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
