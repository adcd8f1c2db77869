/*
 * test_nn_layers.c -- the module tree, Sequential / ModuleList,
 * user-defined modules and the simple layers (Linear, ReLU, LeakyReLU,
 * Sigmoid, Tanh, GELU, Flatten, Dropout), with F.linear / addmm and
 * F.dropout underneath, against PyTorch 1.13.
 *
 * Reference data: tests/data/nn/layers/ (gen_layers.py, real torch):
 * cases.tsv + one folder per case (init values after manual_seed, output,
 * gradients, grad_fn chain), reprs.tsv, errors.tsv and the expected
 * stdout of examples/custom_module.
 *
 * TCases: cases, reprs, errors, gradcheck, tree, custom, example, alloc.
 */
#include "fixture.h"
#include "module_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* PyTorch's float32 kernels sum in their own order (BLAS for addmm);
 * float64 agrees to rounding. */
#define TOL_F32 1e-5
#define TOL_F64 1e-12

#define DIR "nn/layers/"

/* ======================================================================
 * Building modules from gen_layers.py's spec language
 * ====================================================================== */

static cg_module *build(const char *spec, cg_dtype dt);

/* The ';'-separated parts of "a; Seq[b; c]; d" at depth 0. */
static cg_module *build_seq(const char *body, cg_dtype dt)
{
    cg_module *seq = NULL;
    tu_ok(cg_sequential_new(&seq));
    char *copy = strdup(body);
    ck_assert_ptr_nonnull(copy);
    int depth = 0;
    char *start = copy;
    for (char *p = copy;; p++) {
        if (*p == '[')
            depth++;
        else if (*p == ']')
            depth--;
        if ((*p == ';' && depth == 0) || *p == '\0') {
            bool end = *p == '\0';
            *p = '\0';
            while (*start == ' ')
                start++;
            if (*start) {
                cg_module *child = build(start, dt);
                tu_ok(cg_sequential_append(seq, child));
                cg_module_free(child);
            }
            if (end)
                break;
            start = p + 1;
        }
    }
    free(copy);
    return seq;
}

static cg_module *build(const char *spec, cg_dtype dt)
{
    if (strncmp(spec, "Seq[", 4) == 0) {
        size_t n = strlen(spec);
        char *body = strndup(spec + 4, n - 5);
        cg_module *m = build_seq(body, dt);
        free(body);
        return m;
    }
    char name[32] = "";
    double a = 0, b = 0, c = 0;
    char word[32] = "";
    int got = sscanf(spec, "%31s %lf %lf %lf", name, &a, &b, &c);
    cg_module *m = NULL;
    if (strcmp(name, "Linear") == 0) {
        ck_assert_int_eq(got, 4);
        cg_linear_opts o = cg_linear_options((int64_t)a, (int64_t)b);
        o.bias = c != 0;
        o.dtype = dt;
        tu_ok(cg_linear_new(&o, &m));
    } else if (strcmp(name, "ReLU") == 0) {
        tu_ok(cg_relu_new(&m));
    } else if (strcmp(name, "LeakyReLU") == 0) {
        tu_ok(cg_leaky_relu_new(a, &m));
    } else if (strcmp(name, "Sigmoid") == 0) {
        tu_ok(cg_sigmoid_new(&m));
    } else if (strcmp(name, "Tanh") == 0) {
        tu_ok(cg_tanh_new(&m));
    } else if (strcmp(name, "GELU") == 0) {
        ck_assert_int_eq(sscanf(spec, "%*s %31s", word), 1);
        tu_ok(cg_gelu_new(word, &m));
    } else if (strcmp(name, "Flatten") == 0) {
        tu_ok(cg_flatten_new((int64_t)a, (int64_t)b, &m));
    } else if (strcmp(name, "Dropout") == 0) {
        tu_ok(cg_dropout_new(a, &m));
    } else {
        ck_abort_msg("unknown spec %s", spec);
    }
    return m;
}

/* y.grad_fn as gen_layers.py writes it: Name(child,...), None, and
 * AccumulateGrad for leaves. */
static void chain_of(const cg_node *n, char *buf, size_t size)
{
    size_t len = strlen(buf);
    if (!n) {
        snprintf(buf + len, size - len, "None");
        return;
    }
    snprintf(buf + len, size - len, "%s", cg_node_name(n));
    int k = cg_node_num_next(n);
    if (k == 0)
        return;
    strncat(buf, "(", size - strlen(buf) - 1);
    for (int i = 0; i < k; i++) {
        if (i)
            strncat(buf, ",", size - strlen(buf) - 1);
        int nr;
        chain_of(cg_node_next(n, i, &nr), buf, size);
    }
    strncat(buf, ")", size - strlen(buf) - 1);
}

static cg_tensor *load_case(const char *id, const char *file)
{
    char rel[256];
    snprintf(rel, sizeof rel, DIR "%s/%s.npy", id, file);
    return tu_load(rel);
}

static void param_file(char *out, size_t size, const char *prefix,
                       const char *name)
{
    snprintf(out, size, "%s%s", prefix, name);
    for (char *p = out; *p; p++)
        if (*p == '.')
            *p = '_';
}

/* ======================================================================
 * cases: init values, forward, chain and gradients of every case
 * ====================================================================== */

START_TEST(test_case)
{
    tu_fixture_case *r = tu_fixture_row_at(DIR "cases.tsv", _i);
    const char *id = tu_fixture_field(r, "id"),
               *spec = tu_fixture_field(r, "spec"),
               *mode = tu_fixture_field(r, "mode"),
               *tr = tu_fixture_field(r, "transform"),
               *chain = tu_fixture_field(r, "chain"),
               *params = tu_fixture_field(r, "params");
    cg_dtype dt = strcmp(tu_fixture_field(r, "dtype"), "float64") == 0
                      ? CG_FLOAT64
                      : CG_FLOAT32;
    double tol = dt == CG_FLOAT64 ? TOL_F64 : TOL_F32;
    bool y_is_x = strcmp(tu_fixture_field(r, "y_is_x"), "1") == 0;
    /* Dropout's draws are compared bit for bit when it is the layer */
    bool exact = strncmp(spec, "Dropout", 7) == 0;

    cg_tensor *x0 = load_case(id, "x"), *x = NULL;
    ck_assert_int_eq(cg_tensor_dtype(x0), dt);
    if (strcmp(tr, "t12") == 0)
        tu_ok(cg_tensor_transpose(x0, 1, 2, &x));
    else if (strcmp(tr, "t01") == 0)
        tu_ok(cg_tensor_transpose(x0, 0, 1, &x));
    else
        x = cg_tensor_retain(x0);
    tu_ok(cg_tensor_requires_grad_(x, true));

    cg_manual_seed(strtoull(tu_fixture_field(r, "seed"), NULL, 10));
    cg_module *m = build(spec, dt);
    tu_ok(cg_module_train(m, strcmp(mode, "train") == 0));

    /* named_parameters(): names in PyTorch's order, init values exact */
    char names[512] = "";
    int np = cg_module_num_parameters(m);
    for (int i = 0; i < np; i++) {
        const char *name;
        cg_tensor *p;
        tu_ok(cg_module_named_parameter(m, i, &name, &p));
        if (i)
            strcat(names, ",");
        strcat(names, name);
        char f[128];
        param_file(f, sizeof f, "init_", name);
        cg_tensor *want = load_case(id, f);
        tu_assert_bitwise(p, want, f);
        cg_tensor_release(want);
    }
    ck_assert_str_eq(np ? names : "-", params);

    cg_tensor *y = NULL;
    tu_ok(cg_module_forward(m, x, &y));
    ck_assert_msg((y == x) == y_is_x, "%s: y is x: %d, torch: %d", id, y == x,
                  y_is_x);
    cg_tensor *want_y = load_case(id, "y");
    if (exact)
        tu_assert_bitwise(y, want_y, "y");
    else
        tu_assert_close(y, want_y, tol, "y");
    char got_chain[2048] = "";
    if (y_is_x)
        strcpy(got_chain, "same");
    else
        chain_of(cg_tensor_grad_fn(y), got_chain, sizeof got_chain);
    ck_assert_str_eq(got_chain, chain);

    cg_tensor *gy = load_case(id, "gy");
    tu_ok(cg_tensor_backward(y, gy, false));
    cg_tensor *gx = load_case(id, "gx");
    ck_assert_ptr_nonnull(cg_tensor_grad(x));
    if (exact)
        tu_assert_bitwise(cg_tensor_grad(x), gx, "gx");
    else
        tu_assert_close(cg_tensor_grad(x), gx, tol, "gx");
    for (int i = 0; i < np; i++) {
        const char *name;
        cg_tensor *p;
        tu_ok(cg_module_named_parameter(m, i, &name, &p));
        char f[128];
        param_file(f, sizeof f, "grad_", name);
        cg_tensor *want = load_case(id, f);
        ck_assert_msg(cg_tensor_grad(p) != NULL, "%s has no grad", name);
        tu_assert_close(cg_tensor_grad(p), want, tol, f);
        cg_tensor_release(want);
    }
    cg_tensor_release(gx);
    cg_tensor_release(gy);
    cg_tensor_release(want_y);
    cg_tensor_release(y);
    cg_tensor_release(x);
    cg_tensor_release(x0);
    cg_module_free(m);
    tu_fixture_close(r);
}
END_TEST

/* Dropout keeps drawing from the generator: a second forward draws anew
 * (the mask changes), and manual_seed replays the first. */
START_TEST(test_dropout_replay)
{
    int64_t shape[1] = {200};
    cg_tensor *x = NULL, *y1 = NULL, *y2 = NULL, *y3 = NULL;
    tu_ok(cg_ones(shape, 1, CG_FLOAT32, &x));
    cg_module *m = NULL;
    tu_ok(cg_dropout_new(0.5, &m));
    cg_manual_seed(3);
    tu_ok(cg_module_forward(m, x, &y1));
    tu_ok(cg_module_forward(m, x, &y2));
    cg_manual_seed(3);
    tu_ok(cg_module_forward(m, x, &y3));
    tu_assert_bitwise(y1, y3, "replay");
    const float *a = cg_tensor_data(y1), *b = cg_tensor_data(y2);
    int differ = 0, kept = 0;
    for (int i = 0; i < 200; i++) {
        differ += a[i] != b[i];
        kept += a[i] != 0;
        ck_assert(a[i] == 0.0f || a[i] == 2.0f);
    }
    ck_assert_int_gt(differ, 50);
    ck_assert_int_gt(kept, 70);
    ck_assert_int_lt(kept, 130);
    /* eval: the input itself, and no draws */
    tu_ok(cg_module_eval(m));
    cg_tensor *y4 = NULL;
    cg_manual_seed(3);
    tu_ok(cg_module_forward(m, x, &y4));
    ck_assert_ptr_eq(y4, x);
    cg_tensor *u1 = NULL, *u2 = NULL;
    tu_ok(cg_rand(shape, 1, CG_FLOAT32, NULL, &u1));
    cg_manual_seed(3);
    tu_ok(cg_rand(shape, 1, CG_FLOAT32, NULL, &u2));
    tu_assert_bitwise(u1, u2, "eval draws nothing");
    cg_tensor_release(u1);
    cg_tensor_release(u2);
    cg_tensor_release(y4);
    cg_tensor_release(x);
    cg_tensor_release(y1);
    cg_tensor_release(y2);
    cg_tensor_release(y3);
    cg_module_free(m);
}
END_TEST

/* ======================================================================
 * reprs: the same constructions as gen_layers.py's repr_modules()
 * ====================================================================== */

static cg_module *linear(int64_t in, int64_t out, bool bias, cg_dtype dt)
{
    cg_linear_opts o = cg_linear_options(in, out);
    o.bias = bias;
    o.dtype = dt;
    cg_module *m = NULL;
    tu_ok(cg_linear_new(&o, &m));
    return m;
}

/* Appends to seq and drops the caller's handle. */
static void push(cg_module *seq, cg_module *child)
{
    if (cg_sequential_len(seq) >= 0)
        tu_ok(cg_sequential_append(seq, child));
    else
        tu_ok(cg_module_list_append(seq, child));
    cg_module_free(child);
}

static cg_module *seq_new(void)
{
    cg_module *s = NULL;
    tu_ok(cg_sequential_new(&s));
    return s;
}

static cg_module *simple(cg_status (*ctor)(cg_module **))
{
    cg_module *m = NULL;
    tu_ok(ctor(&m));
    return m;
}

static cg_module *leaky(double s)
{
    cg_module *m = NULL;
    tu_ok(cg_leaky_relu_new(s, &m));
    return m;
}

static cg_module *gelu(const char *a)
{
    cg_module *m = NULL;
    tu_ok(cg_gelu_new(a, &m));
    return m;
}

static cg_module *flatten(int64_t s, int64_t e)
{
    cg_module *m = NULL;
    tu_ok(cg_flatten_new(s, e, &m));
    return m;
}

static cg_module *dropout(double p)
{
    cg_module *m = NULL;
    tu_ok(cg_dropout_new(p, &m));
    return m;
}

static cg_module *repr_module(const char *id)
{
    if (!strcmp(id, "linear"))
        return linear(3, 5, true, CG_FLOAT32);
    if (!strcmp(id, "linear_nobias"))
        return linear(3, 5, false, CG_FLOAT32);
    if (!strcmp(id, "linear_f64"))
        return linear(7, 1, true, CG_FLOAT64);
    if (!strcmp(id, "relu"))
        return simple(cg_relu_new);
    if (!strcmp(id, "leaky_default"))
        return leaky(0.01);
    if (!strcmp(id, "leaky_02"))
        return leaky(0.2);
    if (!strcmp(id, "leaky_1e5"))
        return leaky(1e-5);
    if (!strcmp(id, "leaky_neg"))
        return leaky(-3.0);
    if (!strcmp(id, "sigmoid"))
        return simple(cg_sigmoid_new);
    if (!strcmp(id, "tanh"))
        return simple(cg_tanh_new);
    if (!strcmp(id, "gelu"))
        return gelu(NULL);
    if (!strcmp(id, "gelu_tanh"))
        return gelu("tanh");
    if (!strcmp(id, "flatten"))
        return flatten(1, -1);
    if (!strcmp(id, "flatten_0_2"))
        return flatten(0, 2);
    if (!strcmp(id, "dropout"))
        return dropout(0.5);
    if (!strcmp(id, "dropout_01"))
        return dropout(0.1);
    if (!strcmp(id, "dropout_1"))
        return dropout(1.0);
    if (!strcmp(id, "dropout_0"))
        return dropout(0.0);
    if (!strcmp(id, "seq_empty"))
        return seq_new();
    if (!strcmp(id, "seq_nested")) {
        cg_module *s = seq_new(), *inner = seq_new();
        push(s, linear(4, 3, true, CG_FLOAT32));
        push(s, simple(cg_relu_new));
        push(inner, linear(3, 2, false, CG_FLOAT32));
        push(inner, simple(cg_tanh_new));
        push(s, inner);
        push(s, dropout(0.2));
        push(s, gelu("tanh"));
        return s;
    }
    if (!strcmp(id, "seq_shared")) {
        cg_module *s = seq_new(), *shared = linear(2, 2, true, CG_FLOAT32);
        tu_ok(cg_sequential_append(s, shared));
        push(s, simple(cg_relu_new));
        push(s, shared);
        return s;
    }
    if (!strcmp(id, "module_list")) {
        cg_module *l = NULL, *inner = seq_new(), *empty = NULL;
        tu_ok(cg_module_list_new(&l));
        tu_ok(cg_module_list_new(&empty));
        push(l, simple(cg_relu_new));
        push(inner, linear(1, 1, true, CG_FLOAT32));
        push(l, inner);
        push(l, empty);
        return l;
    }
    ck_abort_msg("no constructor for %s", id);
    return NULL;
}

START_TEST(test_repr)
{
    tu_fixture_case *r = tu_fixture_row_at(DIR "reprs.tsv", _i);
    cg_module *m = repr_module(tu_fixture_field(r, "id"));
    size_t len = 0;
    tu_ok(cg_module_repr(m, NULL, 0, &len));
    char *buf = malloc(len + 1);
    tu_ok(cg_module_repr(m, buf, len + 1, NULL));
    ck_assert_str_eq(buf, tu_fixture_field(r, "repr"));
    /* named_parameters(): "name:shape" with shared modules counted once */
    char got[512] = "";
    int np = cg_module_num_parameters(m);
    for (int i = 0; i < np; i++) {
        const char *name;
        cg_tensor *p;
        tu_ok(cg_module_named_parameter(m, i, &name, &p));
        size_t n = strlen(got);
        snprintf(got + n, sizeof got - n, "%s%s:", i ? "," : "", name);
        for (int d = 0; d < cg_tensor_dim(p); d++) {
            n = strlen(got);
            snprintf(got + n, sizeof got - n, d ? "x%lld" : "%lld",
                     (long long)cg_tensor_shape(p)[d]);
        }
    }
    ck_assert_str_eq(np ? got : "-", tu_fixture_field(r, "named_parameters"));
    free(buf);
    cg_module_free(m);
    tu_fixture_close(r);
}
END_TEST

/* ======================================================================
 * errors: PyTorch's class and message word for word, objects unchanged
 * ====================================================================== */

static cg_tensor *randn_t(cg_dtype dt, int ndim, ...)
{
    int64_t shape[8];
    va_list ap;
    va_start(ap, ndim);
    for (int i = 0; i < ndim; i++)
        shape[i] = va_arg(ap, int64_t);
    va_end(ap);
    cg_tensor *t = NULL;
    tu_ok(cg_randn(shape, ndim, dt, NULL, &t));
    return t;
}

#define F32 CG_FLOAT32
#define F64 CG_FLOAT64
#define I(x) ((int64_t)(x))

/* Runs the call named `id`; *out receives a result if the call made one. */
static cg_status error_call(const char *id, cg_tensor **res)
{
    cg_tensor *w = randn_t(F32, 2, I(5), I(3)), *b = randn_t(F32, 1, I(5));
    cg_tensor *x = NULL, *w2 = NULL, *b2 = NULL;
    cg_module *m = NULL, *seq = NULL, *got = NULL;
    cg_status st;
    cg_linear_opts o;
    if (!strcmp(id, "dropout_new_15")) {
        st = cg_dropout_new(1.5, &m);
    } else if (!strcmp(id, "dropout_new_neg")) {
        st = cg_dropout_new(-0.5, &m);
    } else if (!strcmp(id, "dropout_f_15")) {
        x = randn_t(F32, 1, I(3));
        st = cg_dropout(x, 1.5, true, NULL, res);
    } else if (!strcmp(id, "dropout_f_nan")) {
        x = randn_t(F32, 1, I(3));
        st = cg_dropout(x, NAN, true, NULL, res);
    } else if (!strcmp(id, "dropout_f_complex")) {
        int64_t s[1] = {3};
        tu_ok(cg_zeros(s, 1, CG_COMPLEX64, &x));
        st = cg_dropout(x, 0.5, true, NULL, res);
    } else if (!strcmp(id, "linear_new_neg_out")) {
        o = cg_linear_options(3, -1);
        st = cg_linear_new(&o, &m);
    } else if (!strcmp(id, "linear_new_neg_in")) {
        o = cg_linear_options(-2, 3);
        st = cg_linear_new(&o, &m);
    } else if (!strcmp(id, "linear_2d_mismatch")) {
        x = randn_t(F32, 2, I(2), I(4));
        st = cg_linear(x, w, b, res);
    } else if (!strcmp(id, "linear_2d_mismatch_nobias")) {
        x = randn_t(F32, 2, I(2), I(4));
        st = cg_linear(x, w, NULL, res);
    } else if (!strcmp(id, "linear_1d_mismatch")) {
        x = randn_t(F32, 1, I(4));
        st = cg_linear(x, w, b, res);
    } else if (!strcmp(id, "linear_3d_mismatch")) {
        x = randn_t(F32, 3, I(2), I(2), I(4));
        st = cg_linear(x, w, b, res);
    } else if (!strcmp(id, "linear_4d_mismatch")) {
        x = randn_t(F32, 4, I(2), I(2), I(2), I(4));
        st = cg_linear(x, w, b, res);
    } else if (!strcmp(id, "linear_0d")) {
        x = randn_t(F32, 0);
        st = cg_linear(x, w, b, res);
    } else if (!strcmp(id, "linear_dtype_input")) {
        x = randn_t(F64, 2, I(2), I(3));
        st = cg_linear(x, w, b, res);
    } else if (!strcmp(id, "linear_dtype_input_nobias")) {
        x = randn_t(F64, 2, I(2), I(3));
        st = cg_linear(x, w, NULL, res);
    } else if (!strcmp(id, "linear_dtype_bias")) {
        x = randn_t(F32, 2, I(2), I(3));
        b2 = randn_t(F64, 1, I(5));
        st = cg_linear(x, w, b2, res);
    } else if (!strcmp(id, "linear_bias_size")) {
        x = randn_t(F32, 2, I(2), I(3));
        b2 = randn_t(F32, 1, I(4));
        st = cg_linear(x, w, b2, res);
    } else if (!strcmp(id, "linear_bias_size_1d")) {
        x = randn_t(F32, 1, I(3));
        b2 = randn_t(F32, 1, I(4));
        st = cg_linear(x, w, b2, res);
    } else if (!strcmp(id, "linear_bias_size_3d")) {
        x = randn_t(F32, 3, I(2), I(4), I(3));
        b2 = randn_t(F32, 1, I(4));
        st = cg_linear(x, w, b2, res);
    } else if (!strcmp(id, "linear_weight_1d")) {
        x = randn_t(F32, 2, I(2), I(3));
        w2 = randn_t(F32, 1, I(3));
        st = cg_linear(x, w2, b, res);
    } else if (!strcmp(id, "linear_weight_3d")) {
        x = randn_t(F32, 2, I(2), I(3));
        w2 = randn_t(F32, 3, I(2), I(5), I(3));
        st = cg_linear(x, w2, b, res);
    } else if (!strncmp(id, "seq_", 4)) {
        seq = seq_new();
        push(seq, linear(3, 4, true, F32));
        push(seq, simple(cg_relu_new));
        push(seq, linear(4, 2, true, F32));
        if (!strcmp(id, "seq_index_5")) {
            st = cg_sequential_index(seq, 5, &got);
        } else if (!strcmp(id, "seq_index_m4")) {
            st = cg_sequential_index(seq, -4, &got);
        } else if (!strcmp(id, "seq_index_m3")) {
            st = cg_sequential_index(seq, -3, &got);
            if (st == CG_OK)
                ck_assert_str_eq(cg_module_type_name(got), "Linear");
        } else {
            x = randn_t(F32, 2, I(2), I(5));
            st = cg_module_forward(seq, x, res);
        }
    } else if (!strncmp(id, "modlist_", 8)) {
        tu_ok(cg_module_list_new(&seq));
        push(seq, simple(cg_relu_new));
        if (!strcmp(id, "modlist_index_3")) {
            st = cg_module_list_index(seq, 3, &got);
        } else {
            x = randn_t(F32, 1, I(2));
            st = cg_module_forward(seq, x, res);
        }
    } else if (!strcmp(id, "gelu_bad_approx")) {
        m = gelu("fast");
        x = randn_t(F32, 1, I(2));
        st = cg_module_forward(m, x, res);
    } else if (!strcmp(id, "flatten_bad_dim")) {
        m = flatten(1, 5);
        x = randn_t(F32, 2, I(2), I(3));
        st = cg_module_forward(m, x, res);
    } else if (!strcmp(id, "flatten_start_after_end")) {
        m = flatten(2, 1);
        x = randn_t(F32, 3, I(2), I(3), I(4));
        st = cg_module_forward(m, x, res);
    } else if (!strcmp(id, "relu_complex")) {
        int64_t s[1] = {2};
        tu_ok(cg_zeros(s, 1, CG_COMPLEX64, &x));
        m = simple(cg_relu_new);
        st = cg_module_forward(m, x, res);
    } else {
        ck_abort_msg("no call for %s", id);
        st = CG_ERR_RUNTIME;
    }
    /* keep the message across the releases below */
    cg_tensor_release(x);
    cg_tensor_release(w);
    cg_tensor_release(b);
    cg_tensor_release(w2);
    cg_tensor_release(b2);
    cg_module_free(m);
    cg_module_free(seq);
    return st;
}

START_TEST(test_error)
{
    tu_fixture_case *r = tu_fixture_row_at(DIR "errors.tsv", _i);
    const char *id = tu_fixture_field(r, "id");
    cg_tensor *res = NULL;
    cg_status st = error_call(id, &res);
    if (strcmp(tu_fixture_field(r, "exception"), "OK") == 0) {
        ck_assert_msg(st == CG_OK, "%s: %s", id, cg_last_error());
    } else {
        /* PyTorch's KeyError/TypeError classes map by name; the C misuse
         * code is never expected here */
        ck_assert_msg(st != CG_OK, "%s succeeded", id);
        ck_assert_str_eq(cg_status_name(st), tu_fixture_field(r, "exception"));
        ck_assert_str_eq(cg_last_error(), tu_fixture_field(r, "message"));
        ck_assert_ptr_null(res); /* out not written */
    }
    cg_tensor_release(res);
    tu_fixture_close(r);
}
END_TEST

/* A failed forward leaves the module as it was: same parameters, no
 * grads, same repr. */
START_TEST(test_error_unchanged)
{
    cg_manual_seed(5);
    cg_module *m = linear(3, 4, true, F32);
    cg_tensor *w0 = NULL, *b0 = NULL, *x = randn_t(F32, 2, I(2), I(5));
    tu_ok(cg_tensor_clone(cg_linear_weight(m), &w0));
    tu_ok(cg_tensor_clone(cg_linear_bias(m), &b0));
    cg_tensor *y = NULL;
    tu_fails(cg_module_forward(m, x, &y), CG_ERR_RUNTIME,
             "mat1 and mat2 shapes cannot be multiplied (2x5 and 3x4)");
    ck_assert_ptr_null(y);
    tu_assert_bitwise(cg_linear_weight(m), w0, "weight");
    tu_assert_bitwise(cg_linear_bias(m), b0, "bias");
    ck_assert_ptr_null(cg_tensor_grad(cg_linear_weight(m)));
    cg_module *d = NULL;
    tu_fails(cg_dropout_new(1.5, &d), CG_ERR_VALUE,
             "dropout probability has to be between 0 and 1, but got 1.5");
    ck_assert_ptr_null(d);
    cg_module *s = seq_new(), *got = NULL;
    tu_fails(cg_sequential_index(s, 0, &got), CG_ERR_INDEX,
             "index 0 is out of range");
    ck_assert_ptr_null(got);
    tu_fails(cg_sequential_append(s, s), CG_ERR_VALUE,
             "cgrad: a module cannot contain itself");
    ck_assert_int_eq(cg_sequential_len(s), 0);
    cg_tensor_release(w0);
    cg_tensor_release(b0);
    cg_tensor_release(x);
    cg_module_free(s);
    cg_module_free(m);
}
END_TEST

/* ======================================================================
 * gradcheck: float64 finite differences through every layer
 * ====================================================================== */

typedef struct gc_ctx {
    cg_module *m;
    int nparams;       /* inputs[1..nparams] are the parameters */
    char names[8][64]; /* their dotted names (copies: the lent ones
                          change as f re-registers the parameters) */
} gc_ctx;

/* module.<dotted name> = nn.Parameter(t): gradcheck hands f aliases of its
 * inputs, so f installs them in the module as Python code would. */
static cg_status set_param(cg_module *m, const char *dotted, cg_tensor *t)
{
    char buf[64];
    snprintf(buf, sizeof buf, "%s", dotted);
    char *name = buf, *dot;
    while ((dot = strchr(name, '.')) != NULL) {
        *dot = '\0';
        m = cg_module_get_child(m, name);
        name = dot + 1;
    }
    return cg_module_register_parameter(m, name, t);
}

static cg_status gc_fn(cg_tensor *const *in, int n, cg_tensor **out, void *user)
{
    (void)n;
    gc_ctx *c = user;
    cg_tensor *y = NULL;
    cg_status st;
    for (int i = 0; i < c->nparams; i++)
        if ((st = set_param(c->m, c->names[i], in[1 + i])) != CG_OK)
            return st;
    cg_manual_seed(77); /* Dropout: the same mask for every evaluation */
    st = cg_module_forward(c->m, in[0], &y);
    if (st != CG_OK)
        return st;
    if (y == in[0]) { /* identity: a fresh tensor for gradcheck */
        st = cg_mul_scalar(y, 1.0, out);
        cg_tensor_release(y);
        return st;
    }
    *out = y;
    return CG_OK;
}

static const char *const gc_specs[] = {
    "Linear 3 4 1",
    "Linear 3 4 0",
    "ReLU",
    "LeakyReLU 0.3",
    "Sigmoid",
    "Tanh",
    "GELU none",
    "GELU tanh",
    "Flatten 1 -1",
    "Dropout 0.4",
    "Seq[Linear 3 5 1; Tanh; Linear 5 2 1]",
};

START_TEST(test_gradcheck)
{
    const char *spec = gc_specs[_i];
    cg_manual_seed(123);
    cg_module *m = build(spec, CG_FLOAT64);
    int64_t shapes[3][3] = {{4, 3}, {3}, {2, 4, 3}};
    for (int s = 0; s < 3; s++) {
        int ndim = s == 0 ? 2 : s == 1 ? 1 : 3;
        if (!strcmp(spec, "Flatten 1 -1") && ndim == 1)
            continue; /* dim 1 does not exist */
        cg_tensor *x = NULL;
        tu_ok(cg_randn(shapes[s], ndim, CG_FLOAT64, NULL, &x));
        /* keep ReLU's inputs off the kink */
        tu_ok(cg_tensor_requires_grad_(x, true));
        cg_tensor *inputs[8] = {x};
        gc_ctx c = {m, 0, {""}};
        int n = 1;
        for (int i = 0; i < cg_module_num_parameters(m); i++) {
            const char *name;
            tu_ok(cg_module_named_parameter(m, i, &name, &inputs[n++]));
            snprintf(c.names[c.nparams++], sizeof c.names[0], "%s", name);
        }
        cg_gradcheck_result res;
        tu_ok(cg_gradcheck(gc_fn, &c, inputs, n, NULL, &res));
        ck_assert_msg(res.passed, "%s (%dD): %s", spec, ndim, res.message);
        cg_tensor_release(x);
    }
    cg_module_free(m);
}
END_TEST

/* cg_addmm on its own: broadcast self of each shape PyTorch accepts. */
static cg_status addmm_fn(cg_tensor *const *in, int n, cg_tensor **out,
                          void *user)
{
    (void)n;
    (void)user;
    return cg_addmm(in[0], in[1], in[2], out);
}

START_TEST(test_gradcheck_addmm)
{
    int64_t self_shapes[4][2] = {{3, 4}, {4, 0}, {1, 4}, {3, 1}};
    int self_ndim[4] = {2, 1, 2, 2};
    for (int k = 0; k < 4; k++) {
        cg_manual_seed((uint64_t)k);
        cg_tensor *s = NULL, *a = randn_t(F64, 2, I(3), I(2)),
                  *b = randn_t(F64, 2, I(2), I(4));
        tu_ok(cg_randn(self_shapes[k], self_ndim[k], F64, NULL, &s));
        cg_tensor *in[3] = {s, a, b};
        for (int i = 0; i < 3; i++)
            tu_ok(cg_tensor_requires_grad_(in[i], true));
        cg_gradcheck_result res;
        tu_ok(cg_gradcheck(addmm_fn, NULL, in, 3, NULL, &res));
        ck_assert_msg(res.passed, "self %d: %s", k, res.message);
        for (int i = 0; i < 3; i++)
            cg_tensor_release(in[i]);
    }
}
END_TEST

/* ======================================================================
 * tree: train/eval, zero_grad, requires_grad_, children, sharing
 * ====================================================================== */

START_TEST(test_tree)
{
    cg_manual_seed(0);
    cg_module *s = seq_new(), *inner = seq_new();
    push(s, linear(3, 4, true, F32));
    push(inner, dropout(0.5));
    push(inner, linear(4, 2, false, F32));
    push(s, inner);
    ck_assert_int_eq(cg_sequential_len(s), 2);
    ck_assert_int_eq(cg_module_num_children(s), 2);
    const char *name;
    cg_module *child;
    tu_ok(cg_module_named_child(s, 1, &name, &child));
    ck_assert_str_eq(name, "1");
    ck_assert_ptr_eq(child, inner);
    tu_fails(cg_module_named_child(s, 2, &name, &child), CG_ERR_INDEX,
             "list index out of range");
    cg_module *last = NULL;
    tu_ok(cg_sequential_index(s, -1, &last));
    ck_assert_ptr_eq(last, inner);
    tu_ok(cg_sequential_index(inner, -2, &last));
    ck_assert_str_eq(cg_module_type_name(last), "Dropout");

    /* train()/eval() reach every descendant */
    ck_assert(cg_module_is_training(last));
    tu_ok(cg_module_eval(s));
    ck_assert(!cg_module_is_training(s));
    ck_assert(!cg_module_is_training(inner));
    ck_assert(!cg_module_is_training(last));
    tu_ok(cg_module_train(s, true));
    ck_assert(cg_module_is_training(last));
    char buf[16];
    tu_ok(cg_module_getattr(last, "training", buf, sizeof buf, NULL));
    ck_assert_str_eq(buf, "True");

    /* names across nesting, then grads, zero_grad and requires_grad_ */
    const char *want[] = {"0.weight", "0.bias", "1.1.weight"};
    ck_assert_int_eq(cg_module_num_parameters(s), 3);
    for (int i = 0; i < 3; i++) {
        tu_ok(cg_module_named_parameter(s, i, &name, NULL));
        ck_assert_str_eq(name, want[i]);
    }
    tu_ok(cg_module_eval(s));
    cg_tensor *x = randn_t(F32, 2, I(2), I(3)), *y = NULL, *l = NULL;
    tu_ok(cg_module_forward(s, x, &y));
    tu_ok(cg_sum(y, &l));
    tu_ok(cg_tensor_backward(l, NULL, false));
    cg_tensor *p;
    for (int i = 0; i < 3; i++) {
        tu_ok(cg_module_named_parameter(s, i, NULL, &p));
        ck_assert_ptr_nonnull(cg_tensor_grad(p));
    }
    tu_ok(cg_module_zero_grad(s, false));
    for (int i = 0; i < 3; i++) {
        tu_ok(cg_module_named_parameter(s, i, NULL, &p));
        double v[20];
        tu_ok(cg_tensor_to_doubles(cg_tensor_grad(p), v, 20));
        for (int k = 0; k < cg_tensor_numel(p); k++)
            ck_assert(v[k] == 0.0);
    }
    tu_ok(cg_module_zero_grad(s, true));
    tu_ok(cg_module_requires_grad_(s, false));
    for (int i = 0; i < 3; i++) {
        tu_ok(cg_module_named_parameter(s, i, NULL, &p));
        ck_assert_ptr_null(cg_tensor_grad(p));
        ck_assert(!cg_tensor_requires_grad(p));
    }
    cg_tensor_release(x);
    cg_tensor_release(y);
    cg_tensor_release(l);

    /* a cycle is refused, directly and through nesting */
    tu_fails(cg_sequential_append(inner, s), CG_ERR_VALUE,
             "cgrad: a module cannot contain itself");
    ck_assert_int_eq(cg_sequential_len(inner), 2);
    cg_module_free(s);
}
END_TEST

/* One child in two parents: freeing either parent first leaves the other
 * whole; the child goes with the last owner (ASan watches). */
START_TEST(test_shared_child)
{
    cg_module *shared = linear(2, 2, true, F32);
    cg_module *a = seq_new(), *b = NULL;
    tu_ok(cg_module_list_new(&b));
    tu_ok(cg_sequential_append(a, shared));
    tu_ok(cg_module_list_append(b, shared));
    tu_ok(cg_sequential_append(a, shared)); /* twice in one parent too */
    cg_module_free(shared);
    cg_module_free(a);
    cg_module *got = NULL;
    tu_ok(cg_module_list_index(b, 0, &got));
    ck_assert_str_eq(cg_module_type_name(got), "Linear");
    ck_assert_ptr_nonnull(cg_linear_weight(got));
    cg_tensor *x = randn_t(F32, 1, I(2)), *y = NULL;
    tu_ok(cg_module_forward(got, x, &y));
    cg_tensor_release(x);
    cg_tensor_release(y);
    cg_module_free(b);
    cg_module_free(NULL);
    ck_assert_int_eq(cg_sequential_len(NULL), -1);
    ck_assert_int_eq(cg_module_list_len(NULL), -1);
}
END_TEST

/* ======================================================================
 * custom: a user-defined module through the public header only
 * ====================================================================== */

typedef struct scale_state {
    double factor;
    int *destroyed;
} scale_state;

static cg_status scale_forward(cg_module *self, cg_tensor *x, cg_tensor **out)
{
    const scale_state *s = cg_module_state(self);
    cg_tensor *w = cg_module_get_parameter(self, "w"), *t = NULL;
    cg_status st = cg_mul(x, w, &t);
    if (st == CG_OK)
        st = cg_mul_scalar(t, s->factor, out);
    cg_tensor_release(t);
    return st;
}

static cg_status scale_extra_repr(const cg_module *self, char *buf, size_t size,
                                  size_t *len)
{
    const scale_state *s = cg_module_state(self);
    *len = (size_t)snprintf(buf, size, "factor=%g", s->factor);
    return CG_OK;
}

static void scale_destroy(void *state)
{
    scale_state *s = state;
    (*s->destroyed)++;
    free(s);
}

static const cg_module_type scale_type = {"Scale", scale_forward,
                                          scale_extra_repr, scale_destroy};
static const cg_module_type bare_type = {"Bare", NULL, NULL, NULL};

START_TEST(test_custom)
{
    int destroyed = 0;
    scale_state *st = malloc(sizeof *st);
    st->factor = 2.0;
    st->destroyed = &destroyed;
    cg_module *m = NULL;
    tu_ok(cg_module_new_custom(&scale_type, st, &m));
    ck_assert_ptr_eq(cg_module_state(m), st);
    cg_tensor *w = NULL, *buf_t = NULL;
    int64_t shape[1] = {3};
    tu_ok(cg_ones(shape, 1, F64, &w));
    tu_ok(cg_zeros(shape, 1, F64, &buf_t));
    tu_ok(cg_module_register_parameter(m, "w", w));
    ck_assert(cg_tensor_requires_grad(w));
    ck_assert(cg_tensor_is_parameter(w));
    tu_ok(cg_module_register_buffer(m, "running", buf_t, true));
    ck_assert_ptr_eq(cg_module_get_buffer(m, "running"), buf_t);
    ck_assert_ptr_null(cg_module_get_buffer(m, "w"));
    tu_fails(cg_module_register_parameter(m, "a.b", w), CG_ERR_MISUSE,
             "parameter name can't contain \".\"");
    cg_module *inner = linear(3, 3, false, F64);
    tu_ok(cg_module_register_module(m, "inner", inner));
    tu_fails(cg_module_register_module(inner, "up", m), CG_ERR_VALUE,
             "cgrad: a module cannot contain itself");
    cg_module_free(inner);

    char repr[256];
    tu_ok(cg_module_repr(m, repr, sizeof repr, NULL));
    ck_assert_str_eq(repr,
                     "Scale(\n  factor=2\n  (inner): Linear(in_features=3, "
                     "out_features=3, bias=False)\n)");
    ck_assert_int_eq(cg_module_num_parameters(m), 2);
    const char *name;
    tu_ok(cg_module_named_parameter(m, 1, &name, NULL));
    ck_assert_str_eq(name, "inner.weight");

    /* forward, backward and gradcheck through the user's forward */
    cg_tensor *x = randn_t(F64, 1, I(3));
    tu_ok(cg_tensor_requires_grad_(x, true));
    cg_tensor *in[2] = {x, w};
    gc_ctx c = {m, 1, {"w"}};
    cg_gradcheck_result res;
    tu_ok(cg_gradcheck(gc_fn, &c, in, 2, NULL, &res));
    ck_assert_msg(res.passed, "%s", res.message);

    /* inside a Sequential, eval reaches it */
    cg_module *s = seq_new();
    tu_ok(cg_sequential_append(s, m));
    tu_ok(cg_module_eval(s));
    ck_assert(!cg_module_is_training(m));
    cg_module_free(m);
    ck_assert_int_eq(destroyed, 0);
    cg_module_free(s);
    ck_assert_int_eq(destroyed, 1);

    /* no forward: PyTorch's NotImplementedError; no extra_repr: "Bare()" */
    cg_module *bare = NULL;
    tu_ok(cg_module_new_custom(&bare_type, NULL, &bare));
    cg_tensor *y = NULL;
    tu_fails(cg_module_forward(bare, x, &y), CG_ERR_NOT_IMPLEMENTED,
             "Module [Bare] is missing the required \"forward\" function");
    tu_ok(cg_module_repr(bare, repr, sizeof repr, NULL));
    ck_assert_str_eq(repr, "Bare()");
    ck_assert_ptr_null(cg_module_state(bare));
    cg_module_free(bare);
    /* a failing constructor still frees the state it was given */
    scale_state *st2 = malloc(sizeof *st2);
    st2->destroyed = &destroyed;
    tu_fails(cg_module_new_custom(&scale_type, st2, NULL), CG_ERR_MISUSE,
             "out must not be NULL");
    ck_assert_int_eq(destroyed, 2);
    cg_tensor_release(x);
    cg_tensor_release(w);
    cg_tensor_release(buf_t);
}
END_TEST

/* ======================================================================
 * example: examples/custom_module prints what PyTorch prints
 * ====================================================================== */

START_TEST(test_example)
{
    FILE *p = popen(CG_BUILD_DIR "/examples/custom_module", "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 14, n = 0, r;
    char *out = malloc(cap);
    while ((r = fread(out + n, 1, cap - n - 1, p)) > 0)
        n += r;
    out[n] = '\0';
    int rc = pclose(p);
    ck_assert_msg(rc == 0, "custom_module exited with status %d", rc);
    char *want = tu_read_text(tu_data_path(DIR "custom_module.expected.txt"));
    ck_assert_ptr_nonnull(want);
    ck_assert_str_eq(out, want);
    free(want);
    free(out);
}
END_TEST

/* ======================================================================
 * alloc: every allocation of build + forward + backward + repr may fail
 * ====================================================================== */

static cg_status alloc_scenario(void *ctx)
{
    (void)ctx;
    cg_manual_seed(1);
    cg_module *s = NULL, *l1 = NULL, *act = NULL, *d = NULL, *l2 = NULL;
    cg_tensor *x = NULL, *y = NULL, *sum = NULL;
    char buf[512];
    cg_linear_opts o1 = cg_linear_options(3, 4), o2 = cg_linear_options(4, 2);
    int64_t shape[3] = {2, 2, 3};
    cg_status st;
    if ((st = cg_sequential_new(&s)) != CG_OK ||
        (st = cg_linear_new(&o1, &l1)) != CG_OK ||
        (st = cg_sequential_append(s, l1)) != CG_OK ||
        (st = cg_gelu_new("tanh", &act)) != CG_OK ||
        (st = cg_sequential_append(s, act)) != CG_OK ||
        (st = cg_dropout_new(0.3, &d)) != CG_OK ||
        (st = cg_sequential_append(s, d)) != CG_OK ||
        (st = cg_linear_new(&o2, &l2)) != CG_OK ||
        (st = cg_sequential_append(s, l2)) != CG_OK ||
        (st = cg_randn(shape, 3, CG_FLOAT32, NULL, &x)) != CG_OK ||
        (st = cg_tensor_requires_grad_(x, true)) != CG_OK ||
        (st = cg_module_forward(s, x, &y)) != CG_OK ||
        (st = cg_sum(y, &sum)) != CG_OK ||
        (st = cg_tensor_backward(sum, NULL, false)) != CG_OK ||
        (st = cg_module_repr(s, buf, sizeof buf, NULL)) != CG_OK)
        goto done;
    if (cg_module_num_parameters(s) < 0)
        st = cg_last_status();
done:
    cg_tensor_release(x);
    cg_tensor_release(y);
    cg_tensor_release(sum);
    cg_module_free(l1);
    cg_module_free(act);
    cg_module_free(d);
    cg_module_free(l2);
    cg_module_free(s);
    return st;
}

START_TEST(test_alloc)
{
    ck_assert_int_gt(tu_alloc_sweep(alloc_scenario, NULL, "mlp"), 20);
}
END_TEST

/* ====================================================================== */

Suite *nn_layers_suite(void)
{
    Suite *s = suite_create("nn_layers");
    TCase *tc;

    tc = tu_suite_tcase(s, "cases", 60);
    tcase_add_loop_test(tc, test_case, 0, tu_fixture_count(DIR "cases.tsv"));
    tcase_add_test(tc, test_dropout_replay);

    tc = tu_suite_tcase(s, "reprs", 0);
    tcase_add_loop_test(tc, test_repr, 0, tu_fixture_count(DIR "reprs.tsv"));

    tc = tu_suite_tcase(s, "errors", 0);
    tcase_add_loop_test(tc, test_error, 0, tu_fixture_count(DIR "errors.tsv"));
    tcase_add_test(tc, test_error_unchanged);

    tc = tu_suite_tcase(s, "gradcheck", 60);
    tcase_add_loop_test(tc, test_gradcheck, 0,
                        (int)(sizeof gc_specs / sizeof *gc_specs));
    tcase_add_test(tc, test_gradcheck_addmm);

    tc = tu_suite_tcase(s, "tree", 0);
    tcase_add_test(tc, test_tree);
    tcase_add_test(tc, test_shared_child);

    tc = tu_suite_tcase(s, "custom", 0);
    tcase_add_test(tc, test_custom);

    tc = tu_suite_tcase(s, "example", 30);
    tcase_add_test(tc, test_example);

    tc = tu_suite_tcase(s, "alloc", 300);
    tcase_add_test(tc, test_alloc);
    return s;
}
