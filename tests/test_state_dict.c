/*
 * test_state_dict.c -- nn/state_dict.c: the cg_state_dict dictionary,
 * Module.state_dict() and Module.load_state_dict(strict) against PyTorch
 * 1.13 (tests/data/nn/safetensors/load_messages.tsv, written by
 * gen_safetensors.py with real torch: for each case the exception class
 * and exact message, or the missing/unexpected keys of a successful load,
 * and the model's state_dict keys).
 *
 * TCases: dict (the dictionary itself), state_dict (names, order,
 * sharing), load (the PyTorch cases, values after a load, the model
 * untouched after every failure, the version counter), alloc (every
 * allocation of a load failing in turn: MemoryError, no leak, model
 * untouched).
 */
#include "fixture.h"

#include "cgrad_nn.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* ======================================================================
 * The dictionary
 * ====================================================================== */

START_TEST(test_dict_basics)
{
    cg_state_dict *sd = NULL;
    tu_ok(cg_state_dict_new(&sd));
    ck_assert_int_eq(cg_state_dict_size(sd), 0);
    ck_assert_int_eq(cg_state_dict_size(NULL), 0);
    cg_tensor *t = NULL;
    tu_ok(cg_tensor_literal("[1., 2.]", &t));
    tu_ok(cg_state_dict_set_number(sd, "a", 0.5));
    tu_ok(cg_state_dict_set_tensor(sd, "b", t));
    tu_ok(cg_state_dict_set_bool(sd, "c", true));
    tu_ok(cg_state_dict_set_none(sd, "d"));
    /* replacing keeps the position */
    tu_ok(cg_state_dict_set_bool(sd, "a", false));
    ck_assert_int_eq(cg_state_dict_size(sd), 4);
    const char *names[4] = {"a", "b", "c", "d"};
    cg_state_kind kinds[4] = {CG_STATE_BOOL, CG_STATE_TENSOR, CG_STATE_BOOL,
                              CG_STATE_NONE};
    double nums[4] = {0.0, 0.0, 1.0, 0.0};
    for (int i = 0; i < 4; i++) {
        const char *name;
        cg_state_kind kind;
        cg_tensor *v;
        double num;
        tu_ok(cg_state_dict_entry(sd, i, &name, &kind, &v, &num));
        ck_assert_str_eq(name, names[i]);
        ck_assert_int_eq(kind, kinds[i]);
        ck_assert_double_eq(num, nums[i]);
        ck_assert_ptr_eq(v, i == 1 ? t : NULL);
        ck_assert_int_eq(cg_state_dict_find(sd, names[i]), i);
    }
    ck_assert_int_eq(cg_state_dict_find(sd, "zz"), -1);
    tu_fails(cg_state_dict_entry(sd, 4, NULL, NULL, NULL, NULL), CG_ERR_INDEX,
             "list index out of range");
    tu_fails(cg_state_dict_remove(sd, "zz"), CG_ERR_INDEX, "'zz'");
    tu_ok(cg_state_dict_remove(sd, "b"));
    ck_assert_int_eq(cg_state_dict_find(sd, "c"), 1);
    tu_fails(cg_state_dict_set_tensor(sd, "x", NULL), CG_ERR_MISUSE,
             "tensor must not be NULL");
    tu_fails(cg_state_dict_new(NULL), CG_ERR_MISUSE, "out must not be NULL");
    ck_assert_str_eq(cg_state_kind_name(CG_STATE_NONE), "None");
    ck_assert_str_eq(cg_state_kind_name(CG_STATE_KIND_COUNT), "unknown");
    cg_state_dict_free(sd);
    cg_state_dict_free(NULL);
    cg_tensor_release(t);
}
END_TEST

/* ======================================================================
 * Models of the PyTorch cases
 * ====================================================================== */

/* Sequential(Conv3d(1, 2, 1), ReLU(), ConvTranspose3d(2, 1, 1,
 * bias=False)) */
static cg_module *make_seq(void)
{
    cg_module *seq = NULL, *c = NULL, *r = NULL, *t = NULL;
    tu_ok(cg_sequential_new(&seq));
    cg_conv3d_opts co = cg_conv3d_options(1, 2, CG_INT3(1));
    tu_ok(cg_conv3d_new(&co, &c));
    tu_ok(cg_relu_new(&r));
    cg_conv_transpose3d_opts to = cg_conv_transpose3d_options(2, 1, CG_INT3(1));
    to.bias = false;
    tu_ok(cg_conv_transpose3d_new(&to, &t));
    tu_ok(cg_sequential_append(seq, c));
    tu_ok(cg_sequential_append(seq, r));
    tu_ok(cg_sequential_append(seq, t));
    cg_module_free(c);
    cg_module_free(r);
    cg_module_free(t);
    return seq;
}

static const cg_module_type holder_type = {"Holder", NULL, NULL, NULL};

static cg_tensor *zeros(const int64_t *shape, int ndim)
{
    cg_tensor *t = NULL;
    tu_ok(cg_zeros(shape, ndim, CG_FLOAT32, &t));
    return t;
}

/* Holder in gen_safetensors.py: w (2, 2), None parameter, 0-d buffer b0,
 * non-persistent buffer tmp, None buffer. */
static cg_module *make_holder(void)
{
    cg_module *m = NULL;
    tu_ok(cg_module_new_custom(&holder_type, NULL, &m));
    int64_t s22[2] = {2, 2}, s2[1] = {2};
    cg_tensor *w = zeros(s22, 2), *b0 = zeros(NULL, 0), *tmp = zeros(s2, 1);
    tu_ok(cg_module_register_parameter(m, "w", w));
    tu_ok(cg_module_register_parameter(m, "none_p", NULL));
    tu_ok(cg_module_register_buffer(m, "b0", b0, true));
    tu_ok(cg_module_register_buffer(m, "tmp", tmp, false));
    tu_ok(cg_module_register_buffer(m, "none_b", NULL, true));
    cg_tensor_release(w);
    cg_tensor_release(b0);
    cg_tensor_release(tmp);
    return m;
}

/* Sequential(Sequential(Conv3d(1, 1, 1)), Conv3d(1, 1, 1)) */
static cg_module *make_nested(void)
{
    cg_module *outer = NULL, *inner = NULL, *a = NULL, *b = NULL;
    cg_conv3d_opts co = cg_conv3d_options(1, 1, CG_INT3(1));
    tu_ok(cg_sequential_new(&outer));
    tu_ok(cg_sequential_new(&inner));
    tu_ok(cg_conv3d_new(&co, &a));
    tu_ok(cg_conv3d_new(&co, &b));
    tu_ok(cg_sequential_append(inner, a));
    tu_ok(cg_sequential_append(outer, inner));
    tu_ok(cg_sequential_append(outer, b));
    cg_module_free(a);
    cg_module_free(b);
    cg_module_free(inner);
    return outer;
}

static cg_tensor *zeros_n(int64_t n)
{
    return zeros(&n, 1);
}

static void put_tensor(cg_state_dict *sd, const char *name, cg_tensor *t)
{
    tu_ok(cg_state_dict_set_tensor(sd, name, t));
    cg_tensor_release(t);
}

static cg_state_dict *module_sd(const cg_module *m)
{
    cg_state_dict *sd = NULL;
    tu_ok(cg_module_state_dict(m, &sd));
    return sd;
}

/* Builds the model and the state dict of a case, as gen_safetensors.py
 * does; the tensors given to the dict are fresh. */
static void build_case(const char *name, cg_module **model,
                       cg_state_dict **dict)
{
    cg_manual_seed(0);
    cg_module *m = NULL;
    cg_state_dict *sd = NULL;
    if (strncmp(name, "seq", 3) == 0) {
        m = make_seq();
        sd = module_sd(m);
    } else if (strncmp(name, "holder", 6) == 0) {
        m = make_holder();
        tu_ok(cg_state_dict_new(&sd));
    } else {
        m = make_nested();
        sd = module_sd(m);
    }
    if (strcmp(name, "seq_mixed") == 0) {
        int64_t s33[2] = {3, 3};
        tu_ok(cg_state_dict_remove(sd, "0.weight"));
        tu_ok(cg_state_dict_remove(sd, "0.bias"));
        put_tensor(sd, "3.weight", zeros_n(1));
        put_tensor(sd, "2.bias", zeros_n(1));
        put_tensor(sd, "0.foo", zeros_n(1));
        put_tensor(sd, "weight", zeros_n(1));
        put_tensor(sd, "2.weight", zeros(s33, 2));
    } else if (strcmp(name, "seq_non_tensor") == 0) {
        tu_ok(cg_state_dict_set_number(sd, "0.weight", 3.0));
        tu_ok(cg_state_dict_set_none(sd, "0.bias"));
    } else if (strcmp(name, "seq_bool") == 0) {
        tu_ok(cg_state_dict_set_bool(sd, "0.weight", true));
    } else if (strcmp(name, "seq_empty") == 0) {
        cg_state_dict_free(sd);
        tu_ok(cg_state_dict_new(&sd));
    } else if (strcmp(name, "seq_f64") == 0) {
        int64_t s[5] = {2, 1, 1, 1, 1};
        cg_tensor *t = NULL;
        tu_ok(cg_full(s, 5, 0.25, CG_FLOAT64, &t));
        put_tensor(sd, "0.weight", t);
    } else if (strncmp(name, "holder", 6) == 0) {
        int64_t s22[2] = {2, 2};
        cg_tensor *w = NULL, *b0 = NULL;
        tu_ok(cg_ones(s22, 2, CG_FLOAT32, &w));
        put_tensor(sd, "w", w);
        if (strcmp(name, "holder_1d_into_0d") == 0)
            tu_ok(cg_tensor_literal("[5.0]", &b0));
        else if (strcmp(name, "holder_empty_1d") == 0)
            b0 = zeros_n(0);
        else
            tu_ok(cg_tensor_literal("1.0", &b0));
        put_tensor(sd, "b0", b0);
        if (strcmp(name, "holder_unexpected") == 0) {
            put_tensor(sd, "tmp", zeros_n(2));
            put_tensor(sd, "none_p", zeros_n(1));
            put_tensor(sd, "none_b", zeros_n(1));
        }
    } else if (strcmp(name, "nested") == 0) {
        tu_ok(cg_state_dict_remove(sd, "0.0.bias"));
        put_tensor(sd, "0.1.weight", zeros_n(1));
        put_tensor(sd, "0.0.x.y", zeros_n(1));
        put_tensor(sd, "1.bias", zeros_n(2));
    } else {
        ck_abort_msg("unknown case %s", name);
    }
    *model = m;
    *dict = sd;
}

/* The module's state_dict keys joined with ",". */
static void keys_of(const cg_module *m, char *buf, size_t size)
{
    cg_state_dict *sd = module_sd(m);
    buf[0] = '\0';
    for (int i = 0; i < cg_state_dict_size(sd); i++) {
        const char *name;
        tu_ok(cg_state_dict_entry(sd, i, &name, NULL, NULL, NULL));
        if (i)
            strncat(buf, ",", size - strlen(buf) - 1);
        strncat(buf, name, size - strlen(buf) - 1);
    }
    cg_state_dict_free(sd);
}

/* A deep copy of every value of m's state dict, to check "unchanged". */
static cg_state_dict *snapshot(const cg_module *m)
{
    cg_state_dict *sd = module_sd(m), *copy = NULL;
    tu_ok(cg_state_dict_new(&copy));
    for (int i = 0; i < cg_state_dict_size(sd); i++) {
        const char *name;
        cg_tensor *t, *c = NULL;
        tu_ok(cg_state_dict_entry(sd, i, &name, NULL, &t, NULL));
        tu_ok(cg_tensor_clone(t, &c));
        put_tensor(copy, name, c);
    }
    cg_state_dict_free(sd);
    return copy;
}

static void assert_unchanged(const cg_module *m, const cg_state_dict *snap,
                             const char *what)
{
    cg_state_dict *sd = module_sd(m);
    ck_assert_int_eq(cg_state_dict_size(sd), cg_state_dict_size(snap));
    for (int i = 0; i < cg_state_dict_size(sd); i++) {
        cg_tensor *a, *b;
        tu_ok(cg_state_dict_entry(sd, i, NULL, NULL, &a, NULL));
        tu_ok(cg_state_dict_entry(snap, i, NULL, NULL, &b, NULL));
        tu_assert_bitwise(a, b, what);
    }
    cg_state_dict_free(sd);
}

/* ======================================================================
 * Module.state_dict()
 * ====================================================================== */

START_TEST(test_state_dict_names_and_sharing)
{
    cg_manual_seed(0);
    cg_module *m = make_seq();
    char keys[256];
    keys_of(m, keys, sizeof keys);
    ck_assert_str_eq(keys, "0.weight,0.bias,2.weight");
    cg_state_dict *sd = module_sd(m);
    /* detached views of the parameters: same storage and values, no
     * grad, leaves; writing through one writes the model */
    for (int i = 0; i < 3; i++) {
        const char *name;
        cg_tensor *t, *p;
        cg_state_kind kind;
        tu_ok(cg_state_dict_entry(sd, i, &name, &kind, &t, NULL));
        ck_assert_int_eq(kind, CG_STATE_TENSOR);
        tu_ok(cg_module_named_parameter(m, i, NULL, &p));
        ck_assert_ptr_ne(t, p);
        ck_assert(cg_tensor_shares_storage(t, p));
        ck_assert(!cg_tensor_requires_grad(t));
        ck_assert(cg_tensor_is_leaf(t));
        tu_assert_bitwise(t, p, name);
    }
    cg_tensor *w, *p;
    tu_ok(cg_state_dict_entry(sd, 2, NULL, NULL, &w, NULL));
    tu_ok(cg_tensor_fill_(w, 7.0));
    tu_ok(cg_module_named_parameter(m, 2, NULL, &p));
    double v;
    int64_t idx[5] = {1, 0, 0, 0, 0};
    tu_ok(cg_tensor_get(p, idx, &v, NULL));
    ck_assert_double_eq(v, 7.0);
    cg_state_dict_free(sd);
    cg_module_free(m);

    /* a user module: parameters, then persistent buffers; None and
     * non-persistent entries skipped */
    m = make_holder();
    keys_of(m, keys, sizeof keys);
    ck_assert_str_eq(keys, "w,b0");
    cg_module_free(m);
    m = make_nested();
    keys_of(m, keys, sizeof keys);
    ck_assert_str_eq(keys, "0.0.weight,0.0.bias,1.weight,1.bias");
    cg_module_free(m);
    tu_fails(cg_module_state_dict(NULL, &sd), CG_ERR_MISUSE,
             "module must not be NULL");
}
END_TEST

/* ======================================================================
 * load_state_dict: the PyTorch cases
 * ====================================================================== */

#define LOAD_MESSAGES "nn/safetensors/load_messages.tsv"

/* The values a successful case must have loaded. */
static void check_loaded(const char *name, const cg_module *m)
{
    double v = 0.0;
    if (strcmp(name, "seq_f64") == 0) {
        cg_tensor *w;
        tu_ok(cg_module_named_parameter(m, 0, NULL, &w));
        ck_assert_int_eq(cg_tensor_dtype(w), CG_FLOAT32);
        int64_t idx[5] = {1, 0, 0, 0, 0};
        tu_ok(cg_tensor_get(w, idx, &v, NULL));
        ck_assert_double_eq(v, 0.25);
    } else if (strcmp(name, "holder_1d_into_0d") == 0) {
        tu_ok(cg_tensor_item(cg_module_get_buffer(m, "b0"), &v, NULL));
        ck_assert_double_eq(v, 5.0);
        int64_t idx[2] = {1, 1};
        tu_ok(cg_tensor_get(cg_module_get_parameter(m, "w"), idx, &v, NULL));
        ck_assert_double_eq(v, 1.0);
    } else if (strcmp(name, "holder_unexpected") == 0) {
        tu_ok(cg_tensor_item(cg_module_get_buffer(m, "b0"), &v, NULL));
        ck_assert_double_eq(v, 1.0);
    }
}

START_TEST(test_load_pytorch_cases)
{
    int n = tu_fixture_count(LOAD_MESSAGES);
    ck_assert_int_eq(n, 13);
    for (int i = 0; i < n; i++) {
        tu_fixture_case *r = tu_fixture_row_at(LOAD_MESSAGES, i);
        const char *name = tu_fixture_field(r, "case");
        const char *status = tu_fixture_field(r, "status");
        const char *message = tu_fixture_field(r, "message");
        const char *want_keys = tu_fixture_field(r, "keys");
        bool strict = strcmp(tu_fixture_field(r, "strict"), "1") == 0;
        cg_module *m = NULL;
        cg_state_dict *sd = NULL;
        build_case(name, &m, &sd);
        char keys[256];
        keys_of(m, keys, sizeof keys);
        ck_assert_msg(strcmp(keys, want_keys) == 0, "%s: keys %s, torch %s",
                      name, keys, want_keys);
        cg_state_dict *snap = snapshot(m);
        cg_status st = cg_module_load_state_dict(m, sd, strict);
        if (strcmp(status, "OK") == 0) {
            ck_assert_msg(st == CG_OK, "%s (strict=%d): %s: %s", name, strict,
                          cg_status_name(st), cg_last_error());
            check_loaded(name, m);
        } else {
            ck_assert_msg(st != CG_OK, "%s (strict=%d) loaded", name, strict);
            ck_assert_str_eq(cg_status_name(st), status);
            ck_assert_msg(strcmp(cg_last_error(), message) == 0,
                          "%s (strict=%d):\n got: %s\nwant: %s", name, strict,
                          cg_last_error(), message);
            /* unlike PyTorch, nothing was copied */
            assert_unchanged(m, snap, name);
        }
        tu_fixture_close(r);
        cg_state_dict_free(snap);
        cg_state_dict_free(sd);
        cg_module_free(m);
    }
}
END_TEST

/* cgrad's own rule: a complex entry for a real tensor is refused (PyTorch
 * warns and drops the imaginary part), in PyTorch's words for an
 * exception raised by copy_; other entries are not written either. */
START_TEST(test_load_complex_into_real)
{
    cg_manual_seed(0);
    cg_module *m = make_seq();
    cg_state_dict *sd = module_sd(m), *snap = snapshot(m);
    int64_t s[5] = {2, 1, 1, 1, 1};
    cg_tensor *c = NULL, *z = NULL;
    tu_ok(cg_zeros(s, 5, CG_COMPLEX64, &c));
    put_tensor(sd, "2.weight", c);
    tu_ok(cg_zeros(s, 5, CG_FLOAT32, &z));
    put_tensor(sd, "0.weight", z);
    tu_fails(cg_module_load_state_dict(m, sd, true), CG_ERR_RUNTIME,
             "Error(s) in loading state_dict for Sequential:\n\tWhile "
             "copying the parameter named \"2.weight\", whose dimensions in "
             "the model are torch.Size([2, 1, 1, 1, 1]) and whose dimensions "
             "in the checkpoint are torch.Size([2, 1, 1, 1, 1]), an "
             "exception occurred : ('copy_: cannot copy complex64 values "
             "into a float32 tensor (use real() or to())',).");
    assert_unchanged(m, snap, "complex into real");
    cg_state_dict_free(snap);
    cg_state_dict_free(sd);
    cg_module_free(m);
}
END_TEST

/* A model's own state dict loads back into it (its views share the
 * storage being written); another model's values arrive bit for bit, the
 * version counter moves (as copy_ moves it) and the parameters stay
 * leaves that require grad. */
START_TEST(test_load_values_and_version)
{
    cg_manual_seed(0);
    cg_module *a = make_seq();
    cg_manual_seed(1);
    cg_module *b = make_seq();
    cg_state_dict *sa = module_sd(a), *sb = module_sd(b);
    cg_state_dict *snap_b = snapshot(b);
    tu_ok(cg_module_load_state_dict(b, sb, true)); /* itself */
    assert_unchanged(b, snap_b, "own state dict");

    /* a graph that saved b's weight, then a load: backward must see the
     * in-place write */
    cg_tensor *w = NULL, *y = NULL, *s = NULL;
    tu_ok(cg_module_named_parameter(b, 0, NULL, &w));
    tu_ok(cg_mul(w, w, &y));
    tu_ok(cg_sum(y, &s));
    tu_ok(cg_module_load_state_dict(b, sa, true));
    cg_state_dict *snap_a = snapshot(a);
    assert_unchanged(b, snap_a, "b after loading a");
    cg_status st = cg_tensor_backward(s, NULL, false);
    ck_assert_int_eq(st, CG_ERR_RUNTIME);
    ck_assert_msg(strstr(cg_last_error(), "modified by an inplace operation"),
                  "%s", cg_last_error());
    for (int i = 0; i < cg_module_num_parameters(b); i++) {
        cg_tensor *p;
        tu_ok(cg_module_named_parameter(b, i, NULL, &p));
        ck_assert(cg_tensor_requires_grad(p));
        ck_assert(cg_tensor_is_leaf(p));
    }
    cg_tensor_release(y);
    cg_tensor_release(s);
    cg_state_dict_free(snap_a);
    cg_state_dict_free(snap_b);
    cg_state_dict_free(sa);
    cg_state_dict_free(sb);
    cg_module_free(a);
    cg_module_free(b);
}
END_TEST

START_TEST(test_load_misuse)
{
    cg_manual_seed(0);
    cg_module *m = make_seq();
    cg_state_dict *sd = module_sd(m);
    tu_fails(cg_module_load_state_dict(NULL, sd, true), CG_ERR_MISUSE,
             "module must not be NULL");
    tu_fails(cg_module_load_state_dict(m, NULL, true), CG_ERR_MISUSE,
             "state dict must not be NULL");
    cg_state_dict_free(sd);
    cg_module_free(m);
}
END_TEST

/* ======================================================================
 * Allocation failures
 * ====================================================================== */

typedef struct alloc_ctx {
    cg_module *m;
    cg_state_dict *sd;
    bool expect_error; /* the scenario's load fails with a RuntimeError */
} alloc_ctx;

/* Every element of every parameter of m: set to v, or compared with v. */
static bool params_fill(cg_module *m, double v, bool check)
{
    bool prev = cg_set_grad_enabled(false);
    bool same = true;
    for (int i = 0; i < cg_module_num_parameters(m); i++) {
        cg_tensor *p;
        tu_ok(cg_module_named_parameter(m, i, NULL, &p));
        if (!check) {
            tu_ok(cg_tensor_fill_(p, v));
            continue;
        }
        const float *d = cg_tensor_data(p);
        for (int64_t k = 0; k < cg_tensor_numel(p); k++)
            same = same && d[k] == (float)v;
    }
    cg_set_grad_enabled(prev);
    return same;
}

/* Marks the model (9.0 everywhere, without allocating), loads, and on
 * MemoryError checks that the mark is intact: nothing was written. */
static cg_status load_scenario(void *p)
{
    alloc_ctx *c = p;
    params_fill(c->m, 9.0, false);
    cg_status st = cg_module_load_state_dict(c->m, c->sd, true);
    if (st == CG_ERR_NOMEM) {
        ck_assert_msg(params_fill(c->m, 9.0, true),
                      "a failed load wrote the model");
        return st;
    }
    if (c->expect_error && st == CG_ERR_RUNTIME) {
        ck_assert(params_fill(c->m, 9.0, true));
        return CG_OK;
    }
    return st;
}

START_TEST(test_alloc_load)
{
    /* a successful load of another model's values (f64 entries, so a
     * conversion allocates too) */
    cg_manual_seed(0);
    cg_module *a = make_seq();
    cg_manual_seed(1);
    cg_module *b = make_seq();
    cg_state_dict *sd = module_sd(a);
    int64_t s[5] = {2, 1, 1, 1, 1};
    cg_tensor *t = NULL;
    tu_ok(cg_full(s, 5, 0.5, CG_FLOAT64, &t));
    put_tensor(sd, "0.weight", t);
    alloc_ctx c = {b, sd, false};
    params_fill(b, 0.0, true); /* builds named_parameters()' cache */
    long n = tu_alloc_sweep(load_scenario, &c, "load_state_dict");
    ck_assert_int_gt(n, 3);
    tu_ok(load_scenario(&c)); /* and without injection it loads */
    ck_assert(!params_fill(b, 9.0, true));
    cg_state_dict_free(sd);

    /* a failing load: every message-building allocation too */
    cg_module *h = NULL;
    cg_state_dict *hsd = NULL;
    build_case("nested", &h, &hsd);
    alloc_ctx e = {h, hsd, true};
    params_fill(h, 0.0, true);
    n = tu_alloc_sweep(load_scenario, &e, "load_state_dict errors");
    ck_assert_int_gt(n, 3);
    cg_state_dict_free(hsd);
    cg_module_free(h);
    cg_module_free(a);
    cg_module_free(b);
}
END_TEST

Suite *state_dict_suite(void)
{
    Suite *s = suite_create("state_dict");
    TCase *tc = tcase_create("dict");
    tcase_add_test(tc, test_dict_basics);
    suite_add_tcase(s, tc);
    tc = tcase_create("state_dict");
    tcase_add_test(tc, test_state_dict_names_and_sharing);
    suite_add_tcase(s, tc);
    tc = tcase_create("load");
    tcase_add_test(tc, test_load_pytorch_cases);
    tcase_add_test(tc, test_load_complex_into_real);
    tcase_add_test(tc, test_load_values_and_version);
    tcase_add_test(tc, test_load_misuse);
    suite_add_tcase(s, tc);
    tc = tcase_create("alloc");
    tcase_add_test(tc, test_alloc_load);
    suite_add_tcase(s, tc);
    return s;
}
