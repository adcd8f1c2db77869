/*
 * test_nn_conv.c -- nn.ConvTranspose3d and nn.Conv3d as modules, and the
 * module base they share, against PyTorch 1.13.
 *
 * Reference data: tests/data/golden/ (42 ConvTranspose3d configurations,
 * CONV_TRANSPOSE3D.md section 9) and tests/data/nn/ (written by
 * gen_nn_errors.py with real torch: construction and forward errors,
 * attributes, reprs, Conv3d golden data, a nested container).
 *
 * TCases: golden, conv3d_golden, errors, attrs, reprs, module, autograd,
 * explain, seed_tour, alloc.
 */
#include "module_internal.h"
#include "testutil.h"
/* the printer's grad_fn override, to print torch's reference values with
 * the suffix they had */
#include "tensor_internal.h"

#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Section 2.4: PyTorch's float32 kernel sums in an unspecified order
 * (differences up to 9e-7 of the largest magnitude were measured);
 * float64 agrees to rounding. */
#define TOL_F32 1e-5
#define TOL_F64 1e-12

static double tol_for(cg_dtype dt)
{
    return dt == CG_FLOAT64 || dt == CG_COMPLEX128 ? TOL_F64 : TOL_F32;
}

/* ======================================================================
 * Tables: tab-separated, a header line, cells escaped by the generator
 * ====================================================================== */

#define MAX_CELLS 24

typedef struct table {
    char *text;
    int nrows;
    char **cells; /* nrows * MAX_CELLS */
} table;

static void unescape(char *s)
{
    char *d = s;
    for (; *s; s++) {
        if (*s != '\\' || !s[1]) {
            *d++ = *s;
            continue;
        }
        s++;
        *d++ = *s == 'n' ? '\n' : *s == 't' ? '\t' : *s;
    }
    *d = '\0';
}

/* Reads tests/data/<rel>; rows exclude the header. */
static table table_load(const char *rel)
{
    table t = {0};
    t.text = tu_read_text(tu_data_path(rel));
    ck_assert_msg(t.text != NULL, "cannot read %s", rel);
    int lines = 0;
    for (char *p = t.text; *p; p++)
        lines += *p == '\n';
    t.cells = calloc((size_t)(lines + 1) * MAX_CELLS, sizeof *t.cells);
    ck_assert_ptr_nonnull(t.cells);
    char *save = NULL;
    char *line = strtok_r(t.text, "\n", &save); /* header */
    while ((line = strtok_r(NULL, "\n", &save)) != NULL) {
        char **row = t.cells + (size_t)t.nrows * MAX_CELLS;
        int n = 0;
        char *cell = line;
        for (;;) {
            char *tab = strchr(cell, '\t');
            if (tab)
                *tab = '\0';
            ck_assert_int_lt(n, MAX_CELLS);
            unescape(cell);
            row[n++] = cell;
            if (!tab)
                break;
            cell = tab + 1;
        }
        t.nrows++;
    }
    return t;
}

static char **table_row(const table *t, int i)
{
    ck_assert_int_lt(i, t->nrows);
    return t->cells + (size_t)i * MAX_CELLS;
}

static void table_free(table *t)
{
    free(t->text);
    free(t->cells);
}

/* Rows of a table (header excluded). Runs while the suite is built, so
 * it uses no Check assertion. */
static int table_count(const char *rel)
{
    FILE *f = fopen(tu_data_path(rel), "rb");
    if (!f)
        return 0;
    int lines = 0, c;
    while ((c = fgetc(f)) != EOF)
        lines += c == '\n';
    fclose(f);
    return lines > 0 ? lines - 1 : 0;
}

/* "3,3,3" -> (3, {3, 3, 3}); "()" -> 0 entries */
static cg_ints parse_ints(const char *s)
{
    cg_ints v = {0, {0}};
    if (strcmp(s, "()") == 0)
        return v;
    const char *p = s;
    while (*p) {
        ck_assert_int_lt(v.n, 8);
        char *end;
        v.v[v.n++] = strtoll(p, &end, 10);
        ck_assert_msg(end != p, "bad list %s", s);
        p = *end == ',' ? end + 1 : end;
    }
    return v;
}

static cg_dtype parse_dtype(const char *s)
{
    if (strcmp(s, "float64") == 0)
        return CG_FLOAT64;
    if (strcmp(s, "complex64") == 0)
        return CG_COMPLEX64;
    if (strcmp(s, "complex128") == 0)
        return CG_COMPLEX128;
    if (strcmp(s, "int32") == 0)
        return (cg_dtype)99; /* no integer dtypes in cgrad: an invalid one */
    ck_assert_str_eq(s, "float32");
    return CG_FLOAT32;
}

static bool given(const char *cell)
{
    return strcmp(cell, "-") != 0;
}

/* ======================================================================
 * Modules from configuration rows (the tables in tests/data/nn, columns 0-17)
 * ====================================================================== */

enum {
    C_ID,
    C_MODULE,
    C_IN,
    C_OUT,
    C_KERNEL,
    C_STRIDE,
    C_PADDING,
    C_OP,
    C_GROUPS,
    C_BIAS,
    C_DILATION,
    C_MODE,
    C_DTYPE,
    C_SEED,
    C_SET_MODE,
    C_INPUT_SHAPE,
    C_INPUT_DTYPE,
    C_OUTPUT_SIZE,
    C_EXTRA
};

typedef struct row_cfg {
    bool transposed;
    cg_conv_transpose3d_opts t;
    cg_conv3d_opts c;
    uint64_t seed;
} row_cfg;

static row_cfg parse_cfg(char **r)
{
    row_cfg k;
    k.transposed = strcmp(r[C_MODULE], "ConvTranspose3d") == 0;
    int64_t in = strtoll(r[C_IN], NULL, 10), out = strtoll(r[C_OUT], NULL, 10);
    cg_ints kernel = parse_ints(r[C_KERNEL]);
    k.t = cg_conv_transpose3d_options(in, out, kernel);
    k.c = cg_conv3d_options(in, out, kernel);
    if (given(r[C_STRIDE]))
        k.t.stride = k.c.stride = parse_ints(r[C_STRIDE]);
    if (given(r[C_PADDING]))
        k.t.padding = k.c.padding = parse_ints(r[C_PADDING]);
    if (given(r[C_OP]))
        k.t.output_padding = parse_ints(r[C_OP]);
    if (given(r[C_DILATION]))
        k.t.dilation = k.c.dilation = parse_ints(r[C_DILATION]);
    if (given(r[C_GROUPS]))
        k.t.groups = k.c.groups = strtoll(r[C_GROUPS], NULL, 10);
    if (given(r[C_BIAS]))
        k.t.bias = k.c.bias = strcmp(r[C_BIAS], "1") == 0;
    if (given(r[C_MODE]))
        k.t.padding_mode = k.c.padding_mode = r[C_MODE];
    if (given(r[C_DTYPE]))
        k.t.dtype = k.c.dtype = parse_dtype(r[C_DTYPE]);
    k.seed = given(r[C_SEED]) ? strtoull(r[C_SEED], NULL, 10) : 0;
    return k;
}

static cg_status build_cfg(const row_cfg *k, cg_module **m)
{
    cg_manual_seed(k->seed);
    return k->transposed ? cg_conv_transpose3d_new(&k->t, m)
                         : cg_conv3d_new(&k->c, m);
}

/* m.padding_mode = mode (Conv3d has no public setter: the base's). */
static void set_mode(cg_module *m, const char *mode)
{
    if (cg_conv_transpose3d_config(m))
        tu_ok(cg_conv_transpose3d_set_padding_mode(m, mode));
    else
        tu_ok(cg__conv_set_padding_mode((cg__conv *)m, mode));
}

static char *module_repr(const cg_module *m)
{
    size_t len = 0;
    tu_ok(cg_module_repr(m, NULL, 0, &len));
    char *s = malloc(len + 1);
    ck_assert_ptr_nonnull(s);
    size_t len2 = 0;
    tu_ok(cg_module_repr(m, s, len + 1, &len2));
    ck_assert_uint_eq(len, len2);
    return s;
}

static char *module_getattr(const cg_module *m, const char *name)
{
    size_t len = 0;
    tu_ok(cg_module_getattr(m, name, NULL, 0, &len));
    char *s = malloc(len + 1);
    ck_assert_ptr_nonnull(s);
    tu_ok(cg_module_getattr(m, name, s, len + 1, NULL));
    return s;
}

static void assert_shape_str(const cg_tensor *t, const char *want)
{
    cg_ints v = parse_ints(want);
    tu_assert_shape(t, v.v, v.n);
}

static cg_tensor *param(const cg_module *m, bool bias)
{
    const char *name = bias ? "bias" : "weight";
    return cg__module_parameter(m, name);
}

/* ======================================================================
 * golden: the 42 ConvTranspose3d cases of CONV_TRANSPOSE3D.md section 9
 * ====================================================================== */

enum {
    G_NAME,
    G_SEED,
    G_DTYPE,
    G_CTOR,
    G_IN,
    G_OUT,
    G_KERNEL,
    G_STRIDE,
    G_PADDING,
    G_OP,
    G_GROUPS,
    G_BIAS,
    G_DILATION,
    G_INPUT_SHAPE,
    G_OUTPUT_SIZE,
    G_EFF_OP,
    G_OUTPUT_SHAPE,
    G_GRAD_FN,
    G_REPR
};

static cg_tensor *load_case(const char *dir, const char *name, const char *file)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s/%s", dir, name, file);
    return tu_load(rel);
}

static void check_case_file(const char *dir, const char *name, const char *file,
                            const cg_tensor *got, bool bitwise, double tol)
{
    cg_tensor *ref = load_case(dir, name, file);
    char what[256];
    snprintf(what, sizeof what, "%s %s", name, file);
    if (bitwise)
        tu_assert_bitwise(got, ref, what);
    else
        tu_assert_close(got, ref, tol, what);
    cg_tensor_release(ref);
}

/* Number tokens of two reprs agree within `tol` relative to the largest
 * magnitude; everything else is identical. Returns the byte offset (in a)
 * of the first disagreement, or -1. */
static long repr_close(const char *a, const char *b, double tol)
{
    double scale = 1.0;
    for (const char *p = b; *p;) {
        char *end;
        double v = strtod(p, &end);
        if (end != p && (isdigit((unsigned char)*p) || *p == '-')) {
            scale = fmax(scale, fabs(v));
            p = end;
        } else {
            p++;
        }
    }
    const char *pa = a, *pb = b;
    while (*pa || *pb) {
        bool num = (isdigit((unsigned char)*pa) || *pa == '-') &&
                   (isdigit((unsigned char)*pb) || *pb == '-');
        if (num) {
            char *ea, *eb;
            double va = strtod(pa, &ea), vb = strtod(pb, &eb);
            if (ea != pa && eb != pb) {
                /* the same width, so columns stay aligned */
                if (ea - pa != eb - pb || fabs(va - vb) > tol * scale)
                    return (long)(pa - a);
                pa = ea;
                pb = eb;
                continue;
            }
        }
        if (*pa != *pb)
            return (long)(pa - a);
        pa++;
        pb++;
    }
    return -1;
}

/* repr(y) against torch's output_repr.txt. The printer is checked byte
 * for byte on torch's own values (the reference output, given y's grad_fn
 * name). With `exact`, y's own repr must be identical too: the
 * ConvTranspose3d forward rounds in PyTorch's order (slow_conv_transpose3d
 * with reference BLAS), so its float32 values are PyTorch's bits. PyTorch
 * 1.13 runs float32 conv3d through oneDNN, whose order is its own: there
 * numbers compare within the tolerance and everything else byte for
 * byte (float64 is exact either way). */
static void check_output_repr(const char *dir, const char *name,
                              const cg_tensor *y, cg_tensor *ref, bool exact)
{
    char rel[256];
    snprintf(rel, sizeof rel, "%s/%s/output_repr.txt", dir, name);
    char *file = tu_read_text(tu_data_path(rel));
    ck_assert_ptr_nonnull(file);
    size_t flen = strlen(file);
    ck_assert(flen > 0 && file[flen - 1] == '\n');
    file[flen - 1] = '\0';

    ref->debug_grad_fn_name = cg_node_name(cg_tensor_grad_fn(y));
    char *printed = tu_repr(ref);
    ref->debug_grad_fn_name = NULL;
    ck_assert_msg(strcmp(printed, file) == 0,
                  "%s: torch's values print differently:\n%.300s\n"
                  "expected:\n%.300s",
                  name, printed, file);
    free(printed);

    char *got = tu_repr(y);
    long at;
    if (exact || cg_tensor_dtype(y) == CG_FLOAT64) {
        size_t i = 0;
        while (got[i] && got[i] == file[i])
            i++;
        at = got[i] || file[i] ? (long)i : -1;
    } else {
        at = repr_close(got, file, TOL_F32);
    }
    long from = at > 120 ? at - 120 : 0;
    ck_assert_msg(at < 0,
                  "%s: repr differs at byte %ld:\n%.240s\n"
                  "expected:\n%.240s",
                  name, at, got + from, file + from);
    free(got);
    free(file);
}

/* Runs the recipe of the generators: manual_seed; module; x = randn;
 * y = m(x[, output_size]); gy = randn(y.shape); y.backward(gy); and
 * compares everything with the stored files. */
static void run_golden(const char *dir, const char *name, cg_module *m,
                       cg_dtype dt, const char *input_shape,
                       const cg_ints *output_size, const char *output_shape,
                       const char *grad_fn, const char *repr)
{
    double tol = tol_for(dt);
    cg_tensor *w = param(m, false), *b = param(m, true);
    /* the initialisation is bit-exact with PyTorch's generator */
    check_case_file(dir, name, "weight.npy", w, true, 0);
    if (b)
        check_case_file(dir, name, "bias.npy", b, true, 0);
    char *got_repr = module_repr(m);
    ck_assert_str_eq(got_repr, repr);
    free(got_repr);

    cg_ints xs = parse_ints(input_shape);
    cg_tensor *x = NULL, *y = NULL, *gy = NULL;
    tu_ok(cg_randn(xs.v, xs.n, dt, NULL, &x));
    check_case_file(dir, name, "input.npy", x, true, 0);
    tu_ok(cg_tensor_requires_grad_(x, true));
    if (cg_conv_transpose3d_config(m))
        tu_ok(cg_conv_transpose3d_forward(m, x, output_size, &y));
    else
        tu_ok(cg_module_forward(m, x, &y));
    assert_shape_str(y, output_shape);
    ck_assert_ptr_nonnull(cg_tensor_grad_fn(y));
    ck_assert_str_eq(cg_node_name(cg_tensor_grad_fn(y)), grad_fn);
    ck_assert(cg_tensor_requires_grad(y));
    /* ConvTranspose3d's forward is PyTorch's bits; Conv3d's within tol */
    bool exact = cg_conv_transpose3d_config(m) != NULL;
    check_case_file(dir, name, "output.npy", y, exact, tol);
    cg_tensor *ref = load_case(dir, name, "output.npy");
    check_output_repr(dir, name, y, ref, exact);
    cg_tensor_release(ref);

    tu_ok(cg_randn(cg_tensor_shape(y), cg_tensor_dim(y), dt, NULL, &gy));
    check_case_file(dir, name, "grad_output.npy", gy, true, 0);
    tu_ok(cg_tensor_backward(y, gy, false));
    check_case_file(dir, name, "grad_input.npy", cg_tensor_grad(x), false, tol);
    check_case_file(dir, name, "grad_weight.npy", cg_tensor_grad(w), false,
                    tol);
    if (b)
        check_case_file(dir, name, "grad_bias.npy", cg_tensor_grad(b), false,
                        tol);
    ck_assert(!cg_tensor_requires_grad(cg_tensor_grad(w)));
    ck_assert_int_eq(cg_tensor_dtype(cg_tensor_grad(w)), dt);
    cg_tensor_release(gy);
    cg_tensor_release(y);
    cg_tensor_release(x);
}

START_TEST(test_golden)
{
    table t = table_load("golden/cases.tsv");
    char **r = table_row(&t, _i);
    cg_ints k = parse_ints(r[G_KERNEL]);
    cg_conv_transpose3d_opts o = cg_conv_transpose3d_options(
        strtoll(r[G_IN], NULL, 10), strtoll(r[G_OUT], NULL, 10), k);
    o.stride = parse_ints(r[G_STRIDE]);
    o.padding = parse_ints(r[G_PADDING]);
    o.output_padding = parse_ints(r[G_OP]);
    o.groups = strtoll(r[G_GROUPS], NULL, 10);
    o.bias = strcmp(r[G_BIAS], "1") == 0;
    o.dilation = parse_ints(r[G_DILATION]);
    o.dtype = parse_dtype(r[G_DTYPE]);
    cg_manual_seed(strtoull(r[G_SEED], NULL, 10));
    cg_module *m = NULL;
    tu_ok(cg_conv_transpose3d_new(&o, &m));
    cg_ints os = {0, {0}};
    bool has_os = given(r[G_OUTPUT_SIZE]);
    if (has_os)
        os = parse_ints(r[G_OUTPUT_SIZE]);
    run_golden("golden", r[G_NAME], m, o.dtype, r[G_INPUT_SHAPE],
               has_os ? &os : NULL, r[G_OUTPUT_SHAPE], r[G_GRAD_FN], r[G_REPR]);
    cg_module_free(m);
    table_free(&t);
}
END_TEST

START_TEST(test_golden_count)
{
    ck_assert_int_eq(table_count("golden/cases.tsv"), 42);
    ck_assert_int_ge(table_count("nn/conv3d_cases.tsv"), 6);
}
END_TEST

START_TEST(test_conv3d_golden)
{
    table t = table_load("nn/conv3d_cases.tsv");
    char **r = table_row(&t, _i);
    row_cfg k = parse_cfg(r);
    ck_assert(!k.transposed);
    cg_module *m = NULL;
    tu_ok(build_cfg(&k, &m));
    run_golden("nn/conv3d", r[C_ID], m, k.c.dtype, r[C_INPUT_SHAPE], NULL,
               r[C_EXTRA], r[C_EXTRA + 1], r[C_EXTRA + 2]);
    cg_module_free(m);
    table_free(&t);
}
END_TEST

/* ======================================================================
 * errors: C1-C6, Conv3d's checks, F1-F3 and functional checks through
 * the module, with torch's exact messages; nothing changes on failure
 * ====================================================================== */

/* The next value of the default generator, as a float32 uniform. */
static double next_draw(void)
{
    int64_t one = 1;
    cg_tensor *t = NULL;
    tu_ok(cg_rand(&one, 1, CG_FLOAT32, NULL, &t));
    double v;
    tu_ok(cg_tensor_item(t, &v, NULL));
    cg_tensor_release(t);
    return v;
}

static cg_tensor *clone_of(cg_tensor *t)
{
    if (!t)
        return NULL;
    cg_tensor *c = NULL;
    tu_ok(cg_tensor_clone(t, &c));
    return c;
}

START_TEST(test_errors)
{
    table t = table_load("nn/errors.tsv");
    char **r = table_row(&t, _i);
    const char *id = r[C_ID], *exc = r[C_EXTRA], *msg = r[C_EXTRA + 1];
    row_cfg k = parse_cfg(r);
    bool has_input = given(r[C_INPUT_SHAPE]);
    cg_module *const sentinel = (cg_module *)&k;
    cg_module *m = sentinel;
    cg_status st = build_cfg(&k, &m);
    if (!has_input || st != CG_OK) {
        if (strcmp(exc, "OK") == 0) {
            ck_assert_msg(st == CG_OK, "%s: %s", id, cg_last_error());
            cg_module_free(m);
        } else {
            ck_assert_msg(st != CG_OK, "%s: constructed", id);
            ck_assert_str_eq(cg_status_name(st), exc);
            ck_assert_str_eq(cg_last_error(), msg);
            /* *out untouched, and no random number was drawn */
            ck_assert_ptr_eq(m, sentinel);
            double after = next_draw();
            cg_manual_seed(k.seed);
            ck_assert_double_eq(after, next_draw());
        }
        table_free(&t);
        return;
    }
    if (given(r[C_SET_MODE]))
        set_mode(m, r[C_SET_MODE]);
    cg_ints xs = parse_ints(r[C_INPUT_SHAPE]);
    cg_dtype xdt =
        given(r[C_INPUT_DTYPE]) ? parse_dtype(r[C_INPUT_DTYPE]) : CG_FLOAT32;
    cg_tensor *x = NULL;
    tu_ok(cg_randn(xs.v, xs.n, xdt, NULL, &x));
    cg_ints os = {0, {0}};
    bool has_os = given(r[C_OUTPUT_SIZE]);
    if (has_os)
        os = parse_ints(r[C_OUTPUT_SIZE]);
    cg_tensor *w0 = clone_of(param(m, false)), *b0 = clone_of(param(m, true));
    cg_tensor *x0 = clone_of(x);
    char *repr0 = module_repr(m);

    cg_tensor *const ysentinel = (cg_tensor *)&k;
    cg_tensor *y = ysentinel;
    if (k.transposed)
        st = cg_conv_transpose3d_forward(m, x, has_os ? &os : NULL, &y);
    else
        st = cg_module_forward(m, x, &y);
    if (strcmp(exc, "OK") == 0) {
        ck_assert_msg(st == CG_OK, "%s: %s: %s", id, cg_status_name(st),
                      cg_last_error());
        assert_shape_str(y, msg);
        cg_tensor_release(y);
    } else {
        ck_assert_msg(st != CG_OK, "%s: forward succeeded", id);
        ck_assert_msg(strcmp(cg_status_name(st), exc) == 0,
                      "%s: %s (%s), expected %s", id, cg_status_name(st),
                      cg_last_error(), exc);
        ck_assert_str_eq(cg_last_error(), msg);
        ck_assert_ptr_eq(y, ysentinel);
        /* module and input as they were */
        tu_assert_bitwise(param(m, false), w0, "weight after the error");
        if (b0)
            tu_assert_bitwise(param(m, true), b0, "bias after the error");
        tu_assert_bitwise(x, x0, "input after the error");
        ck_assert(!cg_tensor_requires_grad(x));
        ck_assert_ptr_null(cg_tensor_grad(x));
        ck_assert_ptr_null(cg_tensor_grad(param(m, false)));
        char *repr1 = module_repr(m);
        ck_assert_str_eq(repr1, repr0);
        free(repr1);
    }
    free(repr0);
    cg_tensor_release(x0);
    cg_tensor_release(b0);
    cg_tensor_release(w0);
    cg_tensor_release(x);
    cg_module_free(m);
    table_free(&t);
}
END_TEST

/* Problems only a C caller can make: NULLs, malformed cg_ints, devices. */
START_TEST(test_errors_c_api)
{
    cg_conv_transpose3d_opts o = cg_conv_transpose3d_options(2, 2, CG_INT3(1));
    cg_module *m = NULL;
    tu_fails(cg_conv_transpose3d_new(NULL, &m), CG_ERR_MISUSE,
             "opts must not be NULL");
    tu_fails(cg_conv_transpose3d_new(&o, NULL), CG_ERR_MISUSE,
             "out must not be NULL");
    o.padding_mode = NULL;
    tu_fails(cg_conv_transpose3d_new(&o, &m), CG_ERR_MISUSE,
             "padding_mode must not be NULL");
    o.padding_mode = "zeros";
    o.stride.n = 9;
    tu_fails(cg_conv_transpose3d_new(&o, &m), CG_ERR_MISUSE,
             "stride: a cg_ints holds 0 to 8 entries, got n = 9");
    o.stride = CG_INT3(1);
    o.device = "cuda";
    tu_fails(cg_conv_transpose3d_new(&o, &m), CG_ERR_RUNTIME,
             "cgrad runs on the CPU only: device 'cuda' is not available "
             "(use NULL, Python's None, or \"cpu\")");
    /* the device check comes where torch.empty runs: after C2-C4, before
     * the negative-size check */
    o.kernel_size = CG_INT3(-1);
    tu_fails(cg_conv_transpose3d_new(&o, &m), CG_ERR_RUNTIME,
             "cgrad runs on the CPU only: device 'cuda' is not available "
             "(use NULL, Python's None, or \"cpu\")");
    o.groups = 0;
    tu_fails(cg_conv_transpose3d_new(&o, &m), CG_ERR_VALUE,
             "groups must be a positive integer");
    ck_assert_ptr_null(m);
    o = cg_conv_transpose3d_options(2, 2, CG_INT3(1));
    o.device = "cpu";
    tu_ok(cg_conv_transpose3d_new(&o, &m));
    ck_assert_str_eq(cg_conv_transpose3d_config(m)->device, "cpu");

    cg_tensor *x = NULL, *y = NULL;
    int64_t shape[5] = {1, 2, 2, 2, 2};
    tu_ok(cg_zeros(shape, 5, CG_FLOAT32, &x));
    tu_fails(cg_module_forward(NULL, x, &y), CG_ERR_MISUSE,
             "module must not be NULL");
    tu_fails(cg_module_forward(m, NULL, &y), CG_ERR_MISUSE,
             "input must not be NULL");
    tu_fails(cg_module_forward(m, x, NULL), CG_ERR_MISUSE,
             "out must not be NULL");
    tu_fails(cg_conv_transpose3d_forward(NULL, x, NULL, &y), CG_ERR_MISUSE,
             "module must not be NULL");
    cg_ints bad = {9, {0}};
    tu_fails(cg_conv_transpose3d_forward(m, x, &bad, &y), CG_ERR_MISUSE,
             "output_size: a cg_ints holds 0 to 8 entries, got n = 9");
    ck_assert_ptr_null(y);

    /* a Conv3d is not a ConvTranspose3d */
    cg_conv3d_opts c = cg_conv3d_options(2, 2, CG_INT3(1));
    cg_module *k = NULL;
    tu_ok(cg_conv3d_new(&c, &k));
    tu_fails(cg_conv_transpose3d_forward(k, x, NULL, &y), CG_ERR_MISUSE,
             "cg_conv_transpose3d_forward: the module is a Conv3d, not a "
             "ConvTranspose3d");
    tu_fails(cg_conv_transpose3d_reset_parameters(k), CG_ERR_MISUSE,
             "cg_conv_transpose3d_reset_parameters: the module is a Conv3d, "
             "not a ConvTranspose3d");
    tu_fails(cg_conv_transpose3d_set_padding_mode(k, "zeros"), CG_ERR_MISUSE,
             "cg_conv_transpose3d_set_padding_mode: the module is a Conv3d, "
             "not a ConvTranspose3d");
    tu_fails(cg_conv_transpose3d_set_padding_mode(m, NULL), CG_ERR_MISUSE,
             "padding_mode must not be NULL");
    ck_assert_ptr_null(cg_conv_transpose3d_weight(k));
    ck_assert_ptr_null(cg_conv_transpose3d_bias(k));
    ck_assert_ptr_null(cg_conv_transpose3d_config(k));
    ck_assert_ptr_null(cg_conv3d_weight(m));
    ck_assert_ptr_null(cg_conv3d_bias(m));
    ck_assert_ptr_null(cg_conv3d_config(m));
    ck_assert_ptr_null(cg_conv_transpose3d_weight(NULL));
    ck_assert_ptr_eq(cg_conv3d_weight(k), param(k, false));
    ck_assert_ptr_eq(cg_conv3d_bias(k), param(k, true));

    /* Conv3d with a padding mode other than 'zeros' builds and prints as
     * in PyTorch; its forward needs F.pad, which cgrad lacks */
    cg_module *kr = NULL;
    c.padding_mode = "reflect";
    tu_ok(cg_conv3d_new(&c, &kr));
    tu_fails(cg_module_forward(kr, x, &y), CG_ERR_NOT_IMPLEMENTED,
             "Conv3d with padding_mode='reflect' needs F.pad, which cgrad "
             "does not implement yet; only 'zeros' runs");
    cg_module_free(kr);

    cg_tensor_release(x);
    cg_module_free(k);
    cg_module_free(m);
    cg_module_free(NULL);
}
END_TEST

/* ======================================================================
 * attrs and reprs
 * ====================================================================== */

START_TEST(test_attrs)
{
    table t = table_load("nn/attrs.tsv");
    char **r = table_row(&t, _i);
    const char *name = r[C_EXTRA], *exc = r[C_EXTRA + 1];
    const char *want = r[C_EXTRA + 2];
    row_cfg k = parse_cfg(r);
    cg_module *m = NULL;
    tu_ok(build_cfg(&k, &m));
    if (given(r[C_SET_MODE]))
        set_mode(m, r[C_SET_MODE]);
    if (strcmp(exc, "OK") == 0) {
        char *got = module_getattr(m, name);
        ck_assert_msg(strcmp(got, want) == 0, "%s.%s is\n%s\nexpected\n%s",
                      r[C_ID], name, got, want);
        free(got);
    } else {
        char buf[8] = "unset";
        size_t len = 12345;
        cg_status st = cg_module_getattr(m, name, buf, sizeof buf, &len);
        ck_assert_str_eq(cg_status_name(st), exc);
        ck_assert_str_eq(cg_last_error(), want);
        ck_assert_str_eq(buf, "unset");
        ck_assert_uint_eq(len, 12345);
    }
    cg_module_free(m);
    table_free(&t);
}
END_TEST

START_TEST(test_reprs)
{
    table t = table_load("nn/reprs.tsv");
    char **r = table_row(&t, _i);
    row_cfg k = parse_cfg(r);
    cg_module *m = NULL;
    tu_ok(build_cfg(&k, &m));
    if (given(r[C_SET_MODE]))
        set_mode(m, r[C_SET_MODE]);
    char *got = module_repr(m);
    ck_assert_str_eq(got, r[C_EXTRA]);
    free(got);
    cg_module_free(m);
    table_free(&t);
}
END_TEST

/* ======================================================================
 * module: the base's functions
 * ====================================================================== */

START_TEST(test_module_basics)
{
    cg_conv_transpose3d_opts o = cg_conv_transpose3d_options(1, 3, CG_INT3(1));
    cg_module *m = NULL;
    cg_manual_seed(42);
    tu_ok(cg_conv_transpose3d_new(&o, &m));
    ck_assert_str_eq(cg_module_type_name(m), "ConvTranspose3d");
    ck_assert_ptr_null(cg_module_type_name(NULL));

    /* named_parameters(): weight, then bias */
    ck_assert_int_eq(cg_module_num_parameters(m), 2);
    const char *name = NULL;
    cg_tensor *p = NULL;
    tu_ok(cg_module_named_parameter(m, 0, &name, &p));
    ck_assert_str_eq(name, "weight");
    ck_assert_ptr_eq(p, cg_conv_transpose3d_weight(m));
    tu_ok(cg_module_named_parameter(m, 1, &name, &p));
    ck_assert_str_eq(name, "bias");
    ck_assert_ptr_eq(p, cg_conv_transpose3d_bias(m));
    /* a lent name outlives changes to other modules */
    const char *first = NULL;
    tu_ok(cg_module_named_parameter(m, 0, &first, NULL));
    cg_module *other = NULL; /* a kernel of size 0 draws nothing */
    cg_conv_transpose3d_opts oz = cg_conv_transpose3d_options(1, 3, CG_INT3(0));
    tu_ok(cg_conv_transpose3d_new(&oz, &other));
    cg_module_free(other);
    tu_ok(cg_module_named_parameter(m, 1, &name, NULL));
    ck_assert_str_eq(first, "weight");
    tu_fails(cg_module_named_parameter(m, 2, &name, &p), CG_ERR_INDEX,
             "list index out of range");
    tu_fails(cg_module_named_parameter(m, -1, &name, &p), CG_ERR_INDEX,
             "list index out of range");

    /* parameters: leaves that require grad, named, printed as Parameter */
    cg_tensor *w = cg_conv_transpose3d_weight(m);
    ck_assert(cg_tensor_is_leaf(w));
    ck_assert(cg_tensor_requires_grad(w));
    ck_assert(cg_tensor_is_parameter(w));
    ck_assert_str_eq(cg_tensor_name(w), "weight");
    ck_assert_str_eq(cg_tensor_name(cg_conv_transpose3d_bias(m)), "bias");
    ck_assert_ptr_null(cg_tensor_grad_fn(w));
    ck_assert_int_eq(cg_tensor_dtype(w), CG_FLOAT32);

    /* config: the arguments as stored */
    const cg_conv_transpose3d_opts *cfg = cg_conv_transpose3d_config(m);
    ck_assert_int_eq(cfg->in_channels, 1);
    ck_assert_int_eq(cfg->out_channels, 3);
    ck_assert_int_eq(cfg->kernel_size.n, 3);
    ck_assert(cfg->bias);
    ck_assert_str_eq(cfg->padding_mode, "zeros");
    ck_assert_ptr_null(cfg->device);

    /* repr, snprintf-style */
    const char *want = "ConvTranspose3d(1, 3, kernel_size=(1, 1, 1), "
                       "stride=(1, 1, 1))";
    char small[10];
    size_t len = 0;
    tu_ok(cg_module_repr(m, small, sizeof small, &len));
    ck_assert_uint_eq(len, strlen(want));
    ck_assert_str_eq(small, "ConvTrans");
    tu_ok(cg_module_repr(m, NULL, 0, NULL));
    tu_fails(cg_module_repr(NULL, small, sizeof small, &len), CG_ERR_MISUSE,
             "module must not be NULL");
    tu_fails(cg_module_getattr(m, NULL, small, sizeof small, &len),
             CG_ERR_MISUSE, "name must not be NULL");

    /* print(m) */
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tu_ok(cg_module_print(m, f));
    rewind(f);
    char line[256] = "";
    ck_assert_ptr_nonnull(fgets(line, sizeof line, f));
    fclose(f);
    ck_assert_str_eq(line, "ConvTranspose3d(1, 3, kernel_size=(1, 1, 1), "
                           "stride=(1, 1, 1))\n");
    tu_fails(cg_module_print(m, NULL), CG_ERR_MISUSE, "file must not be NULL");

    /* reset_parameters() takes the next draws: those of a second module
     * built after the same seed (seed tour, step 9) */
    tu_ok(cg_conv_transpose3d_reset_parameters(m));
    char *wr = module_getattr(m, "weight");
    ck_assert_str_eq(wr, "Parameter containing:\n"
                         "tensor([[[[[-0.2811]]],\n\n\n"
                         "         [[[ 0.3391]]],\n\n\n"
                         "         [[[ 0.5090]]]]], requires_grad=True)");
    free(wr);
    char *br = module_getattr(m, "bias");
    ck_assert_str_eq(br, "Parameter containing:\n"
                         "tensor([-0.4236,  0.5018,  0.1081], "
                         "requires_grad=True)");
    free(br);

    /* requires_grad_(False) on every parameter, and back */
    tu_ok(cg_module_requires_grad_(m, false));
    ck_assert(!cg_tensor_requires_grad(w));
    ck_assert(!cg_tensor_requires_grad(cg_conv_transpose3d_bias(m)));
    tu_ok(cg_module_requires_grad_(m, true));
    ck_assert(cg_tensor_requires_grad(w));
    tu_fails(cg_module_requires_grad_(NULL, true), CG_ERR_MISUSE,
             "module must not be NULL");
    tu_fails(cg_module_zero_grad(NULL, true), CG_ERR_MISUSE,
             "module must not be NULL");

    /* training is an attribute of every module */
    char *tr = module_getattr(m, "training");
    ck_assert_str_eq(tr, "True");
    free(tr);
    cg__module_train(m, false);
    tr = module_getattr(m, "training");
    ck_assert_str_eq(tr, "False");
    free(tr);

    cg_module_free(m);
}
END_TEST

/* bias=False: bias is None, not a parameter */
START_TEST(test_module_no_bias)
{
    cg_conv3d_opts o = cg_conv3d_options(2, 4, CG_TRIPLE(1, 2, 1));
    o.bias = false;
    o.groups = 2;
    cg_module *m = NULL;
    tu_ok(cg_conv3d_new(&o, &m));
    ck_assert_int_eq(cg_module_num_parameters(m), 1);
    ck_assert_ptr_null(cg_conv3d_bias(m));
    ck_assert(!cg_conv3d_config(m)->bias);
    const char *name;
    cg_tensor *p;
    tu_ok(cg_module_named_parameter(m, 0, &name, &p));
    ck_assert_str_eq(name, "weight");
    int64_t shape[5] = {4, 1, 1, 2, 1}; /* (Cout, Cin/G, k...) */
    tu_assert_shape(p, shape, 5);
    char *b = module_getattr(m, "bias");
    ck_assert_str_eq(b, "None");
    free(b);
    cg_module_free(m);
}
END_TEST

/* Zero-element weights: no draws for the weight; a bias with fan_in 0 is
 * zeros; one with fan_in != 0 (in_channels = 0) still draws. */
START_TEST(test_module_zero_sizes)
{
    cg_module *m = NULL;
    cg_conv_transpose3d_opts o = cg_conv_transpose3d_options(4, 6, CG_INT3(0));
    cg_manual_seed(5);
    tu_ok(cg_conv_transpose3d_new(&o, &m));
    double after = next_draw();
    cg_manual_seed(5);
    ck_assert_double_eq(after, next_draw()); /* nothing was drawn */
    cg_tensor *b = cg_conv_transpose3d_bias(m);
    double v[6];
    tu_ok(cg_tensor_to_doubles(b, v, 6));
    for (int i = 0; i < 6; i++)
        ck_assert_double_eq(v[i], 0.0);
    cg_module_free(m);

    /* in_channels 0: weight (0, 6, 3, 3, 3) has no elements, fan_in is
     * 6*27 = 162 and the bias takes the first six draws */
    o = cg_conv_transpose3d_options(0, 6, CG_INT3(3));
    cg_manual_seed(5);
    tu_ok(cg_conv_transpose3d_new(&o, &m));
    after = next_draw();
    int64_t seven = 7;
    cg_tensor *r = NULL;
    cg_manual_seed(5);
    tu_ok(cg_rand(&seven, 1, CG_FLOAT32, NULL, &r));
    double rv[7];
    tu_ok(cg_tensor_to_doubles(r, rv, 7));
    ck_assert_double_eq(after, rv[6]);
    cg_tensor_release(r);
    cg_module_free(m);
}
END_TEST

/* A container imitated with the base (nn.Sequential arrives later): the
 * nested repr and named_parameters() with a shared child, as torch
 * prints them (tests/data/nn/nested.txt). */
static const cg__module_vtable fake_sequential = {"Sequential", NULL, NULL,
                                                  NULL, NULL};

START_TEST(test_module_nested)
{
    char *want = tu_read_text(tu_data_path("nn/nested.txt"));
    ck_assert_ptr_nonnull(want);
    cg_module *shared = NULL, *c3 = NULL, *ct = NULL, *inner = NULL,
              *outer = NULL;
    cg_conv_transpose3d_opts o = cg_conv_transpose3d_options(1, 3, CG_INT3(1));
    tu_ok(cg_conv_transpose3d_new(&o, &shared));
    cg_conv3d_opts k = cg_conv3d_options(3, 2, CG_INT3(2));
    k.bias = false;
    tu_ok(cg_conv3d_new(&k, &c3));
    o = cg_conv_transpose3d_options(2, 2, CG_INT3(2));
    o.stride = CG_INT3(2);
    tu_ok(cg_conv_transpose3d_new(&o, &ct));
    tu_ok(cg__module_alloc(sizeof(cg_module), &fake_sequential, &inner));
    tu_ok(cg__module_register_module(inner, "0", c3));
    tu_ok(cg__module_register_module(inner, "1", ct));
    tu_ok(cg__module_alloc(sizeof(cg_module), &fake_sequential, &outer));
    tu_ok(cg__module_register_module(outer, "0", shared));
    tu_ok(cg__module_register_module(outer, "1", inner));
    tu_ok(cg__module_register_module(outer, "2", shared));
    /* the container owns its children now */
    cg_module_free(shared);
    cg_module_free(c3);
    cg_module_free(ct);
    cg_module_free(inner);

    char *repr = module_repr(outer);
    size_t n = strlen(repr);
    ck_assert_msg(strncmp(want, repr, n) == 0 && want[n] == '\n',
                  "repr is\n%s\nexpected\n%s", repr, want);
    /* then "name shape" per named_parameters() entry */
    char *line = want + n + 1;
    int count = cg_module_num_parameters(outer);
    for (int i = 0; i < count; i++) {
        const char *name;
        cg_tensor *p;
        tu_ok(cg_module_named_parameter(outer, i, &name, &p));
        char *nl = strchr(line, '\n');
        ck_assert_ptr_nonnull(nl);
        *nl = '\0';
        char *sp = strchr(line, ' ');
        ck_assert_ptr_nonnull(sp);
        *sp = '\0';
        ck_assert_str_eq(name, line);
        assert_shape_str(p, sp + 1);
        line = nl + 1;
    }
    ck_assert_str_eq(line, "");
    ck_assert_int_eq(count, 5);

    /* a child is an attribute; training propagates */
    char *child = module_getattr(outer, "1");
    ck_assert_str_eq(child,
                     "Sequential(\n"
                     "  (0): Conv3d(3, 2, kernel_size=(2, 2, 2), "
                     "stride=(1, 1, 1), bias=False)\n"
                     "  (1): ConvTranspose3d(2, 2, kernel_size=(2, 2, 2), "
                     "stride=(2, 2, 2))\n"
                     ")");
    free(child);
    cg__module_train(outer, false);
    char *tr = module_getattr(ct, "training");
    ck_assert_str_eq(tr, "False");
    free(tr);
    tu_fails(cg_module_getattr(outer, "3", NULL, 0, NULL), CG_ERR_ATTRIBUTE,
             "'Sequential' object has no attribute '3'");
    cg_tensor *x = NULL, *y = NULL;
    tu_ok(cg_zeros((int64_t[]){1}, 1, CG_FLOAT32, &x));
    tu_fails(cg_module_forward(outer, x, &y), CG_ERR_NOT_IMPLEMENTED,
             "Module [Sequential] is missing the required \"forward\" "
             "function");
    cg_tensor_release(x);

    /* zero_grad over the whole tree */
    tu_ok(cg_module_zero_grad(outer, true));

    /* an empty container prints as Sequential() */
    cg_module *empty = NULL;
    tu_ok(cg__module_alloc(sizeof(cg_module), &fake_sequential, &empty));
    char *er = module_repr(empty);
    ck_assert_str_eq(er, "Sequential()");
    free(er);
    tu_ok(cg__module_register_module(empty, "0", NULL));
    er = module_repr(empty);
    ck_assert_str_eq(er, "Sequential(\n  (0): None\n)");
    free(er);
    ck_assert_int_eq(cg_module_num_parameters(empty), 0);
    cg_module_free(empty);

    free(repr);
    free(want);
    cg_module_free(outer);
}
END_TEST

/* ======================================================================
 * autograd: section 4 of CONV_TRANSPOSE3D.md
 * ====================================================================== */

/* next_functions[i] of n is the AccumulateGrad of `leaf`, or None. */
static void assert_next(const cg_node *n, int i, const char *name,
                        const cg_tensor *leaf)
{
    int nr;
    const cg_node *next = cg_node_next(n, i, &nr);
    if (!name) {
        ck_assert_msg(next == NULL, "next_functions[%d] is %s, expected None",
                      i, next ? cg_node_name(next) : "");
        return;
    }
    ck_assert_msg(next != NULL, "next_functions[%d] is None, expected %s", i,
                  name);
    ck_assert_str_eq(cg_node_name(next), name);
    if (leaf)
        ck_assert_ptr_eq(cg_node_variable(next), leaf);
}

static cg_module *small_module(bool bias)
{
    cg_conv_transpose3d_opts o = cg_conv_transpose3d_options(2, 3, CG_INT3(2));
    o.bias = bias;
    cg_module *m = NULL;
    cg_manual_seed(1);
    tu_ok(cg_conv_transpose3d_new(&o, &m));
    return m;
}

static cg_tensor *input_of(int ndim, bool requires_grad)
{
    int64_t shape[5] = {1, 2, 2, 2, 2};
    cg_tensor *x = NULL;
    tu_ok(cg_randn(ndim == 5 ? shape : shape + 1, ndim, CG_FLOAT32, NULL, &x));
    tu_ok(cg_tensor_requires_grad_(x, requires_grad));
    return x;
}

START_TEST(test_autograd_batched)
{
    cg_module *m = small_module(true);
    cg_tensor *w = cg_conv_transpose3d_weight(m);
    cg_tensor *b = cg_conv_transpose3d_bias(m);
    for (int rg = 0; rg < 2; rg++) {
        cg_tensor *x = input_of(5, rg), *y = NULL;
        tu_ok(cg_module_forward(m, x, &y));
        const cg_node *n = cg_tensor_grad_fn(y);
        ck_assert_ptr_nonnull(n);
        ck_assert_str_eq(cg_node_name(n), "ConvolutionBackward0");
        ck_assert_int_eq(cg_node_num_next(n), 3);
        assert_next(n, 0, rg ? "AccumulateGrad" : NULL, x);
        assert_next(n, 1, "AccumulateGrad", w);
        assert_next(n, 2, "AccumulateGrad", b);
        cg_tensor_release(y);
        cg_tensor_release(x);
    }
    cg_module_free(m);
}
END_TEST

START_TEST(test_autograd_unbatched)
{
    cg_module *m = small_module(true);
    for (int rg = 0; rg < 2; rg++) {
        cg_tensor *x = input_of(4, rg), *y = NULL;
        tu_ok(cg_module_forward(m, x, &y));
        const cg_node *sq = cg_tensor_grad_fn(y);
        ck_assert_str_eq(cg_node_name(sq), "SqueezeBackward1");
        ck_assert_int_eq(cg_node_num_next(sq), 1);
        assert_next(sq, 0, "ConvolutionBackward0", NULL);
        const cg_node *conv = cg_node_next(sq, 0, NULL);
        ck_assert_int_eq(cg_node_num_next(conv), 3);
        assert_next(conv, 0, rg ? "UnsqueezeBackward0" : NULL, NULL);
        if (rg) {
            const cg_node *un = cg_node_next(conv, 0, NULL);
            assert_next(un, 0, "AccumulateGrad", x);
        }
        assert_next(conv, 1, "AccumulateGrad", cg_conv_transpose3d_weight(m));
        assert_next(conv, 2, "AccumulateGrad", cg_conv_transpose3d_bias(m));
        int64_t shape[4] = {3, 3, 3, 3};
        tu_assert_shape(y, shape, 4);
        cg_tensor_release(y);
        cg_tensor_release(x);
    }
    cg_module_free(m);
}
END_TEST

START_TEST(test_autograd_frozen_and_no_bias)
{
    /* frozen weight: None in its slot */
    cg_module *m = small_module(true);
    tu_ok(cg_tensor_requires_grad_(cg_conv_transpose3d_weight(m), false));
    cg_tensor *x = input_of(5, false), *y = NULL;
    tu_ok(cg_module_forward(m, x, &y));
    const cg_node *n = cg_tensor_grad_fn(y);
    assert_next(n, 0, NULL, NULL);
    assert_next(n, 1, NULL, NULL);
    assert_next(n, 2, "AccumulateGrad", cg_conv_transpose3d_bias(m));
    cg_tensor_release(y);
    /* everything frozen: no graph at all */
    tu_ok(cg_module_requires_grad_(m, false));
    tu_ok(cg_module_forward(m, x, &y));
    ck_assert_ptr_null(cg_tensor_grad_fn(y));
    ck_assert(!cg_tensor_requires_grad(y));
    cg_tensor_release(y);
    cg_module_free(m);

    /* no bias: None in the third slot */
    m = small_module(false);
    tu_ok(cg_module_forward(m, x, &y));
    n = cg_tensor_grad_fn(y);
    ck_assert_int_eq(cg_node_num_next(n), 3);
    assert_next(n, 1, "AccumulateGrad", cg_conv_transpose3d_weight(m));
    assert_next(n, 2, NULL, NULL);
    cg_tensor_release(y);
    cg_tensor_release(x);
    cg_module_free(m);
}
END_TEST

START_TEST(test_autograd_no_grad)
{
    cg_module *m = small_module(true);
    cg_tensor *x = input_of(5, true), *y = NULL;
    bool prev = cg_set_grad_enabled(false);
    cg_status st = cg_module_forward(m, x, &y);
    cg_set_grad_enabled(prev);
    tu_ok(st);
    ck_assert_ptr_null(cg_tensor_grad_fn(y));
    ck_assert(!cg_tensor_requires_grad(y));
    tu_fails(cg_tensor_backward(y, y, false), CG_ERR_RUNTIME,
             "element 0 of tensors does not require grad and does not have "
             "a grad_fn");
    cg_tensor_release(y);
    cg_tensor_release(x);
    cg_module_free(m);
}
END_TEST

/* .grad accumulates over backward calls; zero_grad resets it */
START_TEST(test_autograd_accumulates)
{
    cg_module *m = small_module(true);
    cg_tensor *w = cg_conv_transpose3d_weight(m);
    cg_tensor *x = input_of(5, true), *y = NULL, *gy = NULL, *g1 = NULL;
    for (int pass = 0; pass < 2; pass++) {
        tu_ok(cg_module_forward(m, x, &y));
        if (!gy)
            tu_ok(
                cg_ones(cg_tensor_shape(y), cg_tensor_dim(y), CG_FLOAT32, &gy));
        tu_ok(cg_tensor_backward(y, gy, false));
        cg_tensor_release(y);
        if (pass == 0)
            tu_ok(cg_tensor_clone(cg_tensor_grad(w), &g1));
    }
    cg_tensor *twice = NULL;
    tu_ok(cg_mul_scalar(g1, 2.0, &twice));
    tu_assert_close(cg_tensor_grad(w), twice, TOL_F32, "weight grad twice");
    tu_ok(cg_module_zero_grad(m, false));
    double v[48]; /* weight (2, 3, 2, 2, 2) */
    tu_ok(cg_tensor_to_doubles(cg_tensor_grad(w), v, 48));
    for (int i = 0; i < 48; i++)
        ck_assert_double_eq(v[i], 0.0);
    tu_ok(cg_module_zero_grad(m, true));
    ck_assert_ptr_null(cg_tensor_grad(w));
    ck_assert_ptr_null(cg_tensor_grad(cg_conv_transpose3d_bias(m)));
    cg_tensor_release(twice);
    cg_tensor_release(g1);
    cg_tensor_release(gy);
    cg_tensor_release(x);
    cg_module_free(m);
}
END_TEST

/* complex64 (PyTorch 2.x's three real convolutions): AddBackward0 for a
 * batched input, SqueezeBackward1 for an unbatched one */
START_TEST(test_autograd_complex)
{
    cg_conv_transpose3d_opts o = cg_conv_transpose3d_options(1, 2, CG_INT3(2));
    o.dtype = CG_COMPLEX64;
    cg_module *m = NULL;
    cg_manual_seed(42);
    tu_ok(cg_conv_transpose3d_new(&o, &m));
    ck_assert_int_eq(cg_tensor_dtype(cg_conv_transpose3d_weight(m)),
                     CG_COMPLEX64);
    int64_t shape[5] = {1, 1, 2, 1, 2};
    for (int ndim = 5; ndim >= 4; ndim--) {
        cg_tensor *x = NULL, *y = NULL;
        tu_ok(cg_randn(shape + 5 - ndim, ndim, CG_COMPLEX64, NULL, &x));
        tu_ok(cg_module_forward(m, x, &y));
        ck_assert_str_eq(cg_node_name(cg_tensor_grad_fn(y)),
                         ndim == 5 ? "AddBackward0" : "SqueezeBackward1");
        ck_assert_int_eq(cg_tensor_dtype(y), CG_COMPLEX64);
        cg_tensor_release(y);
        cg_tensor_release(x);
    }
    cg_module_free(m);
}
END_TEST

/* Finite differences through the module's forward (output_size and all),
 * float64 and complex128, with respect to the input, the weight and the
 * bias. gradcheck hands f detached aliases of its inputs; f lends them to
 * the module as its parameters for the one call (the module's forward
 * reads c->weight and c->bias), so the Jacobian is the module's. */
typedef struct gc_ctx {
    cg_module *m;
    const cg_ints *output_size;
} gc_ctx;

static cg_status gc_forward(cg_tensor *const *inputs, int n, cg_tensor **out,
                            void *user)
{
    gc_ctx *c = user;
    cg__conv *conv = (cg__conv *)c->m;
    cg_tensor *w = conv->weight, *b = conv->bias;
    if (n > 1)
        conv->weight = inputs[1];
    if (n > 2)
        conv->bias = inputs[2];
    cg_status st =
        cg_conv_transpose3d_forward(c->m, inputs[0], c->output_size, out);
    conv->weight = w;
    conv->bias = b;
    return st;
}

START_TEST(test_autograd_gradcheck)
{
    const cg_dtype dts[2] = {CG_FLOAT64, CG_COMPLEX128};
    for (int di = 0; di < 2; di++) {
        cg_conv_transpose3d_opts o =
            cg_conv_transpose3d_options(2, 4, CG_TRIPLE(2, 1, 3));
        o.stride = CG_TRIPLE(2, 1, 2);
        o.padding = CG_TRIPLE(0, 0, 1);
        o.groups = 2;
        o.dilation = CG_TRIPLE(1, 2, 1);
        o.dtype = dts[di];
        cg_module *m = NULL;
        cg_manual_seed(3);
        tu_ok(cg_conv_transpose3d_new(&o, &m));
        ck_assert_int_eq(cg_tensor_dtype(cg_conv_transpose3d_weight(m)),
                         dts[di]);
        int64_t shape[5] = {2, 2, 2, 2, 3};
        cg_ints os = CG_TRIPLE(4, 2, 6); /* output_padding (1, 0, 1) */
        for (int ndim = 5; ndim >= 4; ndim--) {
            cg_tensor *in[3] = {NULL, NULL, NULL};
            tu_ok(cg_randn(shape + 5 - ndim, ndim, dts[di], NULL, &in[0]));
            tu_ok(cg_tensor_clone(cg_conv_transpose3d_weight(m), &in[1]));
            tu_ok(cg_tensor_clone(cg_conv_transpose3d_bias(m), &in[2]));
            for (int i = 0; i < 3; i++)
                tu_ok(cg_tensor_requires_grad_(in[i], true));
            gc_ctx ctx = {m, ndim == 5 ? &os : NULL};
            cg_tensor *y = NULL;
            tu_ok(gc_forward(in, 3, &y, &ctx));
            int64_t want5[5] = {2, 4, 4, 2, 6}, want4[4] = {4, 4, 2, 5};
            if (ndim == 5)
                tu_assert_shape(y, want5, 5);
            else
                tu_assert_shape(y, want4, 4);
            cg_tensor_release(y);
            cg_gradcheck_result res;
            tu_ok(cg_gradcheck(gc_forward, &ctx, in, 3, NULL, &res));
            ck_assert_msg(res.passed, "%s %dD: %s", cg_dtype_name(dts[di]),
                          ndim, res.message);
            /* the module's own parameters were lent back untouched */
            ck_assert_ptr_null(cg_tensor_grad(cg_conv_transpose3d_weight(m)));
            for (int i = 0; i < 3; i++)
                cg_tensor_release(in[i]);
        }
        cg_module_free(m);
    }
}
END_TEST

/* ======================================================================
 * explain: the teaching helper's exact text
 * ====================================================================== */

static char *explain(const cg_conv_transpose3d_opts *o, const int64_t *shape,
                     int ndim, cg_status *st)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    *st = cg_conv_transpose3d_explain_shape(o, shape, ndim, f);
    long n = ftell(f);
    rewind(f);
    char *s = calloc((size_t)n + 1, 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    fclose(f);
    return s;
}

#define FORMULA                                                                \
    "(in - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1"
#define RANGE                                                                  \
    "valid output_size range (forward's argument, which then replaces "        \
    "output_padding):"

START_TEST(test_explain)
{
    cg_status st;
    /* the upsampling block of many decoders */
    cg_conv_transpose3d_opts o = cg_conv_transpose3d_options(4, 6, CG_INT3(3));
    o.stride = CG_INT3(2);
    o.padding = CG_INT3(1);
    o.output_padding = CG_INT3(1);
    int64_t x5[5] = {2, 4, 5, 5, 5};
    char *s = explain(&o, x5, 5, &st);
    tu_ok(st);
    ck_assert_str_eq(
        s, "ConvTranspose3d(4, 6, kernel_size=(3, 3, 3), stride=(2, 2, 2), "
           "padding=(1, 1, 1), output_padding=(1, 1, 1)) on an input of shape "
           "[2, 4, 5, 5, 5] (N, Cin, D, H, W):\n"
           "out[d] = " FORMULA " = (5 - 1)*2 - 2*1 + 1*(3 - 1) + 1 + 1 = 10\n"
           "out[h] = " FORMULA " = (5 - 1)*2 - 2*1 + 1*(3 - 1) + 1 + 1 = 10\n"
           "out[w] = " FORMULA " = (5 - 1)*2 - 2*1 + 1*(3 - 1) + 1 + 1 = 10\n"
           "output shape: [2, 6, 10, 10, 10] (N, Cout, D, H, W)\n" RANGE
           " d in [9, 10], h in [9, 10], w in [9, 10]\n");
    free(s);

    /* every argument different per axis, unbatched */
    o = cg_conv_transpose3d_options(2, 4, CG_TRIPLE(3, 2, 1));
    o.stride = CG_TRIPLE(1, 3, 2);
    o.padding = CG_TRIPLE(0, 1, 0);
    o.output_padding = CG_TRIPLE(0, 2, 1);
    o.groups = 2;
    o.dilation = CG_TRIPLE(2, 1, 1);
    int64_t x4[4] = {2, 3, 4, 5};
    s = explain(&o, x4, 4, &st);
    tu_ok(st);
    ck_assert_str_eq(
        s, "ConvTranspose3d(2, 4, kernel_size=(3, 2, 1), stride=(1, 3, 2), "
           "padding=(0, 1, 0), dilation=(2, 1, 1), output_padding=(0, 2, 1), "
           "groups=2) on an input of shape [2, 3, 4, 5] (Cin, D, H, W), "
           "unbatched:\n"
           "out[d] = " FORMULA " = (3 - 1)*1 - 2*0 + 2*(3 - 1) + 0 + 1 = 7\n"
           "out[h] = " FORMULA " = (4 - 1)*3 - 2*1 + 1*(2 - 1) + 2 + 1 = 11\n"
           "out[w] = " FORMULA " = (5 - 1)*2 - 2*0 + 1*(1 - 1) + 1 + 1 = 10\n"
           "output shape: [4, 7, 11, 10] (Cout, D, H, W)\n" RANGE
           " d in [7, 7], h in [9, 11], w in [9, 10]\n");
    free(s);

    /* an impossible configuration: the forward's message, nothing
     * written */
    o = cg_conv_transpose3d_options(4, 6, CG_INT3(3));
    o.padding = CG_INT3(5);
    int64_t tiny[5] = {1, 4, 2, 2, 2};
    s = explain(&o, tiny, 5, &st);
    ck_assert_int_eq(st, CG_ERR_RUNTIME);
    ck_assert_str_eq(cg_last_error(),
                     "Given input size per channel: (2 x 2 x 2). Calculated "
                     "output size per channel: (-6 x -6 x -6). Output size "
                     "is too small");
    ck_assert_str_eq(s, "");
    free(s);
    o = cg_conv_transpose3d_options(4, 6, CG_INT3(3));
    o.output_padding = CG_INT3(1);
    s = explain(&o, x5, 5, &st);
    ck_assert_int_eq(st, CG_ERR_RUNTIME);
    ck_assert_str_eq(s, "");
    free(s);
    s = explain(&o, x5, 3, &st);
    ck_assert_int_eq(st, CG_ERR_RUNTIME);
    ck_assert_str_eq(cg_last_error(),
                     "Expected 4D (unbatched) or 5D (batched) input to "
                     "conv_transpose3d, but got input of size: [2, 4, 5]");
    free(s);
    o = cg_conv_transpose3d_options(4, 6, CG_INT3(3));
    o.groups = 0;
    s = explain(&o, x5, 5, &st);
    ck_assert_int_eq(st, CG_ERR_VALUE);
    ck_assert_str_eq(cg_last_error(), "groups must be a positive integer");
    free(s);
    o = cg_conv_transpose3d_options(3, 6, CG_INT3(3));
    s = explain(&o, x5, 5, &st);
    ck_assert_str_eq(cg_last_error(),
                     "Given transposed=1, weight of size [3, 6, 3, 3, 3], "
                     "expected input[2, 4, 5, 5, 5] to have 3 channels, but "
                     "got 4 channels instead");
    free(s);
    tu_fails(cg_conv_transpose3d_explain_shape(NULL, x5, 5, stdout),
             CG_ERR_MISUSE, "opts must not be NULL");
    tu_fails(cg_conv_transpose3d_explain_shape(&o, x5, 5, NULL), CG_ERR_MISUSE,
             "file must not be NULL");
}
END_TEST

/* ======================================================================
 * seed_tour: the example's stdout is PyTorch's, byte for byte
 * ====================================================================== */

START_TEST(test_seed_tour)
{
    FILE *p = popen(CG_BUILD_DIR "/examples/seed_tour", "r");
    ck_assert_ptr_nonnull(p);
    size_t cap = 1 << 16, n = 0, r;
    char *out = malloc(cap);
    ck_assert_ptr_nonnull(out);
    while ((r = fread(out + n, 1, cap - n - 1, p)) > 0) {
        n += r;
        if (n + 1 == cap) {
            cap *= 2;
            out = realloc(out, cap);
            ck_assert_ptr_nonnull(out);
        }
    }
    out[n] = '\0';
    int rc = pclose(p);
    ck_assert_msg(rc == 0, "seed_tour exited with status %d", rc);
    char *want = tu_read_text(tu_data_path("seed_walkthrough.expected.txt"));
    ck_assert_ptr_nonnull(want);
    if (strcmp(out, want) != 0) {
        size_t i = 0;
        while (out[i] && out[i] == want[i])
            i++;
        size_t from = i > 200 ? i - 200 : 0;
        ck_abort_msg("seed_tour differs at byte %zu:\n--- got:\n%.400s\n"
                     "--- expected:\n%.400s",
                     i, out + from, want + from);
    }
    free(want);
    free(out);
}
END_TEST

/* ======================================================================
 * alloc: every allocation of construct + forward + backward + repr + free
 * may fail, with MemoryError and nothing leaked
 * ====================================================================== */

static cg_status alloc_scenario(void *ctx)
{
    bool unbatched = ctx != NULL;
    cg_module *m = NULL;
    cg_tensor *x = NULL, *y = NULL, *gy = NULL;
    char buf[2048];
    cg_status st;
    cg_conv_transpose3d_opts o =
        cg_conv_transpose3d_options(2, 4, CG_TRIPLE(2, 2, 1));
    o.stride = CG_INT3(2);
    o.groups = 2;
    cg_manual_seed(7);
    if ((st = cg_conv_transpose3d_new(&o, &m)) != CG_OK)
        goto done;
    int64_t shape[5] = {1, 2, 2, 2, 2};
    if ((st = cg_randn(unbatched ? shape + 1 : shape, unbatched ? 4 : 5,
                       CG_FLOAT32, NULL, &x)) != CG_OK ||
        (st = cg_tensor_requires_grad_(x, true)) != CG_OK)
        goto done;
    cg_ints os = CG_TRIPLE(5, 4, 3);
    if ((st = cg_conv_transpose3d_forward(m, x, &os, &y)) != CG_OK)
        goto done;
    if ((st = cg_ones(cg_tensor_shape(y), cg_tensor_dim(y), CG_FLOAT32, &gy)) !=
            CG_OK ||
        (st = cg_tensor_backward(y, gy, false)) != CG_OK)
        goto done;
    if ((st = cg_module_repr(m, buf, sizeof buf, NULL)) != CG_OK ||
        (st = cg_module_getattr(m, "weight", buf, sizeof buf, NULL)) != CG_OK ||
        (st = cg_module_getattr(m, "kernel_size", buf, sizeof buf, NULL)) !=
            CG_OK ||
        (st = cg_module_zero_grad(m, true)) != CG_OK)
        goto done;
    if (cg_module_num_parameters(m) != 2) {
        st = cg_last_status();
        goto done;
    }
done:
    cg_tensor_release(gy);
    cg_tensor_release(y);
    cg_tensor_release(x);
    cg_module_free(m);
    return st;
}

START_TEST(test_alloc)
{
    long n = tu_alloc_sweep(alloc_scenario, NULL, "batched");
    ck_assert_int_gt(n, 10);
    n = tu_alloc_sweep(alloc_scenario, &n, "unbatched");
    ck_assert_int_gt(n, 10);
}
END_TEST

static cg_status alloc_errors_scenario(void *ctx)
{
    (void)ctx;
    cg_module *m = NULL;
    char buf[64];
    cg_conv3d_opts o = cg_conv3d_options(2, 2, CG_INT3(1));
    o.padding_mode = "circular";
    cg_status st = cg_conv3d_new(&o, &m);
    if (st != CG_OK)
        return st;
    /* an AttributeError allocates nothing it keeps; a repr does */
    st = cg_module_getattr(m, "device", buf, sizeof buf, NULL);
    if (st == CG_ERR_ATTRIBUTE)
        st = cg_module_repr(m, buf, sizeof buf, NULL);
    if (st == CG_OK)
        st = cg__conv_set_padding_mode((cg__conv *)m, "zeros");
    FILE *f = fopen("/dev/null", "w");
    if (st == CG_OK && f) {
        cg_conv_transpose3d_opts t =
            cg_conv_transpose3d_options(2, 2, CG_INT3(3));
        int64_t shape[5] = {1, 2, 3, 3, 3};
        st = cg_conv_transpose3d_explain_shape(&t, shape, 5, f);
    }
    if (f)
        fclose(f);
    cg_module_free(m);
    return st;
}

START_TEST(test_alloc_other_paths)
{
    ck_assert_int_gt(tu_alloc_sweep(alloc_errors_scenario, NULL, "other"), 3);
}
END_TEST

/* ====================================================================== */

Suite *nn_conv_suite(void)
{
    Suite *s = suite_create("nn_conv");
    TCase *tc;

    tc = tcase_create("golden");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_golden_count);
    tcase_add_loop_test(tc, test_golden, 0, table_count("golden/cases.tsv"));
    suite_add_tcase(s, tc);

    tc = tcase_create("conv3d_golden");
    tcase_set_timeout(tc, 60);
    tcase_add_loop_test(tc, test_conv3d_golden, 0,
                        table_count("nn/conv3d_cases.tsv"));
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_loop_test(tc, test_errors, 0, table_count("nn/errors.tsv"));
    tcase_add_test(tc, test_errors_c_api);
    suite_add_tcase(s, tc);

    tc = tcase_create("attrs");
    tcase_add_loop_test(tc, test_attrs, 0, table_count("nn/attrs.tsv"));
    suite_add_tcase(s, tc);

    tc = tcase_create("reprs");
    tcase_add_loop_test(tc, test_reprs, 0, table_count("nn/reprs.tsv"));
    suite_add_tcase(s, tc);

    tc = tcase_create("module");
    tcase_add_test(tc, test_module_basics);
    tcase_add_test(tc, test_module_no_bias);
    tcase_add_test(tc, test_module_zero_sizes);
    tcase_add_test(tc, test_module_nested);
    suite_add_tcase(s, tc);

    tc = tcase_create("autograd");
    tcase_add_test(tc, test_autograd_batched);
    tcase_add_test(tc, test_autograd_unbatched);
    tcase_add_test(tc, test_autograd_frozen_and_no_bias);
    tcase_add_test(tc, test_autograd_no_grad);
    tcase_add_test(tc, test_autograd_accumulates);
    tcase_add_test(tc, test_autograd_complex);
    tcase_add_test(tc, test_autograd_gradcheck);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    tc = tcase_create("explain");
    tcase_add_test(tc, test_explain);
    suite_add_tcase(s, tc);

    tc = tcase_create("seed_tour");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_seed_tour);
    suite_add_tcase(s, tc);

    tc = tcase_create("alloc");
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_alloc);
    tcase_add_test(tc, test_alloc_other_paths);
    suite_add_tcase(s, tc);
    return s;
}
