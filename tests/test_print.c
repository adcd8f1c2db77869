/* test_print.c -- repr(tensor) against PyTorch 1.13's text, byte for byte.
 *
 * TCases:
 *   examples -- the 54 examples of TENSOR_PRINT.md (tests/data/print/
 *               examples/, made by gen_print.py)
 *   golden   -- the ConvTranspose3d outputs of tests/data/golden, with their
 *               grad_fn suffixes
 *   random   -- a few hundred random tensors (tests/data/print/random.*)
 *   views    -- non-contiguous tensors print as their contiguous copies
 *   buffer   -- snprintf semantics of cg_tensor_repr, cg_tensor_print's
 *               FILE output, NULL arguments, a decimal-comma locale
 *   alloc    -- every allocation of a repr fails in turn, cleanly
 *
 * The fixtures hold values and the autograd state repr shows; the tests
 * set that state directly (requires_grad, is_parameter and the grad_fn
 * name override debug_grad_fn_name), so printing is tested on its own.
 */
#include "testutil.h"
#include "tensor_internal.h"

#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    N_EXAMPLES = 54, /* TENSOR_PRINT.md, section 9 */
    N_GOLDEN = 42,   /* tests/data/golden/cases.tsv */
    MAX_FIELDS = 32,
};

/* ---- .tsv fixtures ------------------------------------------------------ */

/* One line of a tab-separated table, split into fields (in place). */
typedef struct tsv_row {
    char *line; /* malloc'd copy of the line, fields point into it */
    char *field[MAX_FIELDS];
    int n;
} tsv_row;

/* Finds line `row` of `text`, counting -1 for the header (the first line
 * not starting with '#') and 0.. for the data lines after it. */
static const char *tsv_line(const char *text, int row, size_t *len)
{
    int at = -2;
    for (const char *s = text; *s;) {
        const char *e = strchr(s, '\n');
        size_t n = e ? (size_t)(e - s) : strlen(s);
        if (n > 0 && s[0] != '#' && ++at == row) {
            *len = n;
            return s;
        }
        s += n + (e ? 1 : 0);
    }
    return NULL;
}

/* Number of data lines. */
static int tsv_count(const char *text)
{
    size_t len;
    int n = 0;
    while (tsv_line(text, n, &len))
        n++;
    return n;
}

static void tsv_get(const char *text, int row, tsv_row *r)
{
    size_t len;
    const char *s = tsv_line(text, row, &len);
    ck_assert_msg(s != NULL, "no row %d in the table", row);
    r->line = malloc(len + 1);
    ck_assert_ptr_nonnull(r->line);
    memcpy(r->line, s, len);
    r->line[len] = '\0';
    r->n = 0;
    char *p = r->line;
    for (;;) {
        ck_assert_int_lt(r->n, MAX_FIELDS);
        r->field[r->n++] = p;
        char *tab = strchr(p, '\t');
        if (!tab)
            break;
        *tab = '\0';
        p = tab + 1;
    }
}

/* Index of the column named `name` in the header. */
static int tsv_column(const char *text, const char *name)
{
    tsv_row h;
    tsv_get(text, -1, &h);
    int col = -1;
    for (int i = 0; i < h.n; i++)
        if (strcmp(h.field[i], name) == 0)
            col = i;
    free(h.line);
    ck_assert_msg(col >= 0, "no column %s", name);
    return col;
}

static char *read_data_text(const char *rel)
{
    char *s = tu_read_text(tu_data_path(rel));
    ck_assert_msg(s != NULL, "cannot read tests/data/%s", rel);
    return s;
}

/* Parses "2,3,4" ("-" is a 0-d shape) into shape; returns ndim. */
static int parse_shape(const char *text, int64_t *shape)
{
    if (strcmp(text, "-") == 0)
        return 0;
    int nd = 0;
    for (const char *s = text; *s;) {
        ck_assert_int_lt(nd, CG_MAX_DIMS);
        char *end;
        shape[nd++] = strtoll(s, &end, 10);
        ck_assert_msg(end != s, "bad shape %s", text);
        s = *end == ',' ? end + 1 : end;
    }
    return nd;
}

static cg_dtype parse_dtype(const char *name)
{
    for (int d = 0; d < CG_DTYPE_COUNT; d++)
        if (strcmp(cg_dtype_name((cg_dtype)d), name) == 0)
            return (cg_dtype)d;
    ck_abort_msg("unknown dtype %s", name);
    return CG_FLOAT32;
}

/* ---- comparing texts -------------------------------------------------- */

/* Check's messages are limited (about 8 KiB): whole texts are shown only
 * up to this many characters each. */
#define SHOW_MAX 2000

/* Fails with the first differing line when got != want. */
static void expect_text(const char *got, const char *want, const char *what)
{
    if (strcmp(got, want) == 0)
        return;
    size_t i = 0, line = 1, line_start = 0;
    while (got[i] && got[i] == want[i]) {
        if (got[i] == '\n') {
            line++;
            line_start = i + 1;
        }
        i++;
    }
    int wl = (int)strcspn(want + line_start, "\n");
    int gl = (int)strcspn(got + line_start, "\n");
    size_t wn = strlen(want), gn = strlen(got);
    ck_abort_msg("%s: repr differs at byte %zu (line %zu, column %zu)\n"
                 "expected line: \"%.*s\"\n"
                 "got line:      \"%.*s\"\n"
                 "--- expected (%zu bytes):\n%.*s%s\n"
                 "--- got (%zu bytes):\n%.*s%s",
                 what, i, line, i - line_start + 1, wl < 200 ? wl : 200,
                 want + line_start, gl < 200 ? gl : 200, got + line_start, wn,
                 (int)(wn < SHOW_MAX ? wn : SHOW_MAX), want,
                 wn > SHOW_MAX ? "..." : "", gn,
                 (int)(gn < SHOW_MAX ? gn : SHOW_MAX), got,
                 gn > SHOW_MAX ? "..." : "");
}

/* Drops the one trailing newline of a fixture written as print() does. */
static void chomp(char *s)
{
    size_t n = strlen(s);
    if (n > 0 && s[n - 1] == '\n')
        s[n - 1] = '\0';
}

/* The repr-relevant autograd state, set directly. */
static void set_state(cg_tensor *t, const char *requires_grad,
                      const char *grad_fn, const char *is_parameter)
{
    t->requires_grad = strcmp(requires_grad, "1") == 0;
    t->debug_grad_fn_name = strcmp(grad_fn, "-") == 0 ? NULL : grad_fn;
    t->is_parameter = strcmp(is_parameter, "1") == 0;
}

/* Undoes set_state before release (the name points into a row). */
static void release_plain(cg_tensor *t)
{
    if (t) {
        t->requires_grad = false;
        t->debug_grad_fn_name = NULL;
        t->is_parameter = false;
    }
    cg_tensor_release(t);
}

/* ---- examples ----------------------------------------------------------- */

START_TEST(test_examples)
{
    char *table = read_data_text("print/examples.tsv");
    ck_assert_int_eq(tsv_count(table), N_EXAMPLES);
    tsv_row r;
    tsv_get(table, _i, &r);
    ck_assert_int_eq(r.n, 7); /* n expression dtype shape rg grad_fn param */
    ck_assert_int_eq(atoi(r.field[0]), _i + 1);

    char rel[64];
    snprintf(rel, sizeof rel, "print/examples/%02d.npy", _i + 1);
    cg_tensor *t = tu_load(rel);
    ck_assert_str_eq(cg_dtype_name(cg_tensor_dtype(t)), r.field[2]);
    int64_t shape[CG_MAX_DIMS];
    int nd = parse_shape(r.field[3], shape);
    tu_assert_shape(t, shape, nd);
    set_state(t, r.field[4], r.field[5], r.field[6]);

    snprintf(rel, sizeof rel, "print/examples/%02d.txt", _i + 1);
    char *want = read_data_text(rel);
    chomp(want);
    char *got = tu_repr(t);
    char what[256];
    snprintf(what, sizeof what, "example %d: %s", _i + 1, r.field[1]);
    expect_text(got, want, what);

    free(got);
    free(want);
    release_plain(t);
    free(r.line);
    free(table);
}
END_TEST

/* ---- golden ConvTranspose3d outputs ----------------------------------- */

START_TEST(test_golden)
{
    char *table = read_data_text("golden/cases.tsv");
    ck_assert_int_eq(tsv_count(table), N_GOLDEN);
    int name_col = tsv_column(table, "name");
    int fn_col = tsv_column(table, "grad_fn");
    tsv_row r;
    tsv_get(table, _i, &r);
    ck_assert_int_gt(r.n, fn_col);
    const char *name = r.field[name_col];

    char rel[256];
    snprintf(rel, sizeof rel, "golden/%s/output.npy", name);
    cg_tensor *t = tu_load(rel);
    set_state(t, "1", r.field[fn_col], "0");
    snprintf(rel, sizeof rel, "golden/%s/output_repr.txt", name);
    char *want = read_data_text(rel);
    chomp(want);
    char *got = tu_repr(t);
    expect_text(got, want, name);

    free(got);
    free(want);
    release_plain(t);
    free(r.line);
    free(table);
}
END_TEST

/* ---- random tensors --------------------------------------------------- */

/* Rows of random.tsv, counted when the suite is built: outside a test, so
 * without Check's asserts (tu_read_text uses them). */
static int random_count(void)
{
    FILE *f = fopen(tu_data_path("print/random.tsv"), "r");
    if (!f)
        return 0;
    int lines = 0, c, prev = '\n';
    bool comment = false;
    while ((c = fgetc(f)) != EOF) {
        if (prev == '\n') {
            comment = c == '#';
            if (!comment && c != '\n')
                lines++;
        }
        prev = c;
    }
    fclose(f);
    return lines > 0 ? lines - 1 : 0; /* the header */
}

START_TEST(test_random)
{
    static const char *const files[CG_DTYPE_COUNT] = {
        "print/random_f4.npy", "print/random_f8.npy", "print/random_c8.npy",
        "print/random_c16.npy"};
    char *table = read_data_text("print/random.tsv");
    tsv_row r;
    tsv_get(table, _i, &r);
    /* id dtype shape value_offset requires_grad grad_fn is_parameter
     * repr_offset repr_len description */
    ck_assert_int_eq(r.n, 10);
    ck_assert_int_eq(atoi(r.field[0]), _i);
    cg_dtype dt = parse_dtype(r.field[1]);
    int64_t shape[CG_MAX_DIMS];
    int nd = parse_shape(r.field[2], shape);
    long long offset = atoll(r.field[3]);

    cg_tensor *flat = tu_load(files[dt]);
    ck_assert_int_eq(cg_tensor_dtype(flat), dt);
    int64_t numel = 1;
    for (int d = 0; d < nd; d++)
        numel *= shape[d];
    ck_assert_int_le(offset + numel, cg_tensor_numel(flat));
    const char *base = cg_tensor_data(flat);
    cg_tensor *t = NULL;
    tu_ok(cg_tensor_from_data(base + (size_t)offset * cg_dtype_size(dt), shape,
                              nd, dt, &t));
    set_state(t, r.field[4], r.field[5], r.field[6]);

    char *all = read_data_text("print/random.txt");
    size_t at = (size_t)atoll(r.field[7]), len = (size_t)atoll(r.field[8]);
    ck_assert_uint_le(at + len, strlen(all));
    char *want = malloc(len + 1);
    ck_assert_ptr_nonnull(want);
    memcpy(want, all + at, len);
    want[len] = '\0';
    char *got = tu_repr(t);
    char what[256];
    snprintf(what, sizeof what, "random #%d (%s, shape %s, %s)", _i, r.field[1],
             r.field[2], r.field[9]);
    expect_text(got, want, what);

    free(got);
    free(want);
    free(all);
    release_plain(t);
    cg_tensor_release(flat);
    free(r.line);
    free(table);
}
END_TEST

/* ---- views ------------------------------------------------------------- */

/* (arange(n) - n/3) / 7 as dt, complex ones with a second ramp as the
 * imaginary part, reshaped. */
static cg_tensor *ramp(const int64_t *shape, int nd, cg_dtype dt)
{
    int64_t n = 1;
    for (int d = 0; d < nd; d++)
        n *= shape[d];
    cg_tensor *t = NULL;
    tu_ok(cg_zeros(shape, nd, dt, &t));
    for (int64_t i = 0; i < n; i++)
        cg__store(t, i, ((double)i - (double)n / 3) / 7, 0.25 * (double)i);
    return t;
}

/* print(view) must equal print(view.contiguous()) and print(view.clone()) */
static void expect_same_as_copy(cg_tensor *view, const char *what)
{
    ck_assert_msg(!cg_tensor_is_contiguous(view), "%s: view is contiguous",
                  what);
    cg_tensor *c = NULL, *k = NULL;
    tu_ok(cg_tensor_contiguous(view, &c));
    tu_ok(cg_tensor_clone(view, &k));
    ck_assert(cg_tensor_is_contiguous(c));
    char *a = tu_repr(view), *b = tu_repr(c), *e = tu_repr(k);
    expect_text(a, b, what);
    expect_text(a, e, what);
    free(a);
    free(b);
    free(e);
    cg_tensor_release(c);
    cg_tensor_release(k);
}

START_TEST(test_views_public)
{
    for (int dt = 0; dt < CG_DTYPE_COUNT; dt++) {
        int64_t s3[] = {2, 3, 4};
        cg_tensor *base = ramp(s3, 3, (cg_dtype)dt), *v = NULL, *w = NULL;

        tu_ok(cg_tensor_transpose(base, 0, 2, &v));
        expect_same_as_copy(v, "transpose(0, 2)");
        cg_tensor_release(v);

        int64_t perm[] = {1, 2, 0};
        tu_ok(cg_tensor_permute(base, perm, 3, &v));
        expect_same_as_copy(v, "permute(1, 2, 0)");
        cg_tensor_release(v);

        tu_ok(cg_tensor_slice(base, 2, 1, INT64_MAX, 2, &v));
        expect_same_as_copy(v, "[..., 1::2]");
        tu_ok(cg_tensor_select(v, 1, 2, &w)); /* also has an offset */
        expect_same_as_copy(w, "[..., 1::2][:, 2]");
        cg_tensor_release(w);
        cg_tensor_release(v);

        tu_ok(cg_tensor_narrow(base, 1, 1, 2, &v));
        expect_same_as_copy(v, "narrow(1, 1, 2)");
        cg_tensor_release(v);

        int64_t s1[] = {1, 3, 1};
        cg_tensor *col = ramp(s1, 3, (cg_dtype)dt);
        int64_t big[] = {4, 3, 5};
        tu_ok(cg_tensor_expand(col, big, 3, &v)); /* stride 0 */
        expect_same_as_copy(v, "expand(4, 3, 5)");
        cg_tensor_release(v);
        cg_tensor_release(col);
        cg_tensor_release(base);

        /* summarised: the formatter must see the view's shown elements */
        int64_t s2[] = {40, 50};
        base = ramp(s2, 2, (cg_dtype)dt);
        tu_ok(cg_tensor_transpose(base, 0, 1, &v));
        expect_same_as_copy(v, "summarised transpose");
        tu_ok(cg_tensor_slice(v, 0, 3, 47, 3, &w));
        expect_same_as_copy(w, "summarised transpose sliced");
        cg_tensor_release(w);
        cg_tensor_release(v);
        cg_tensor_release(base);
    }
}
END_TEST

/* A contiguous copy made element by element, independent of copy.c. */
static cg_tensor *copy_by_elements(const cg_tensor *t)
{
    cg_tensor *c = NULL;
    tu_ok(
        cg_zeros(cg_tensor_shape(t), cg_tensor_dim(t), cg_tensor_dtype(t), &c));
    cg_iter it;
    cg__iter_init(&it, t);
    int64_t k = 0;
    if (it.remaining > 0) {
        do {
            double re, im;
            cg__load(t, it.pos, &re, &im);
            cg__store(c, k++, re, im);
        } while (cg__iter_next(&it));
    }
    return c;
}

/* Strides the view API does not make (negative, overlapping, 5-d with an
 * offset), built directly on the storage. */
/* 8 and 9 dimensions (the 9-d one a permuted, unsqueezed view), against
 * PyTorch 1.13:
 *   t = (torch.arange(8.).reshape(1, 2, 1, 1, 2, 1, 1, 2) - 2.5) / 4
 *   repr(t); repr(t.permute(7, 6, 5, 4, 3, 2, 1, 0).unsqueeze(3)) */
START_TEST(test_high_rank)
{
    static const float data[8] = {-0.625f, -0.375f, -0.125f, 0.125f,
                                  0.375f,  0.625f,  0.875f,  1.125f};
    int64_t shape[8] = {1, 2, 1, 1, 2, 1, 1, 2};
    cg_tensor *t = NULL, *p = NULL, *u = NULL;
    tu_ok(cg_tensor_from_data(data, shape, 8, CG_FLOAT32, &t));
    char *got = tu_repr(t);
    expect_text(got,
                "tensor([[[[[[[[-0.6250, -0.3750]]],\n\n\n"
                "            [[[-0.1250,  0.1250]]]]]],\n\n\n\n\n\n"
                "         [[[[[[ 0.3750,  0.6250]]],\n\n\n"
                "            [[[ 0.8750,  1.1250]]]]]]]])",
                "8-d");
    free(got);
    tu_ok(cg_tensor_permute(t, (int64_t[]){7, 6, 5, 4, 3, 2, 1, 0}, 8, &p));
    tu_ok(cg_tensor_unsqueeze(p, 3, &u));
    tu_assert_shape(u, (int64_t[]){2, 1, 1, 1, 2, 1, 1, 2, 1}, 9);
    ck_assert(!cg_tensor_is_contiguous(u));
    got = tu_repr(u);
    expect_text(got,
                "tensor([[[[[[[[[-0.6250],\n"
                "               [ 0.3750]]]],\n\n\n\n"
                "            [[[[-0.1250],\n"
                "               [ 0.8750]]]]]]]],\n\n\n\n\n\n\n\n"
                "        [[[[[[[[-0.3750],\n"
                "               [ 0.6250]]]],\n\n\n\n"
                "            [[[[ 0.1250],\n"
                "               [ 1.1250]]]]]]]]])",
                "9-d permuted view");
    free(got);
    cg_tensor_release(u);
    cg_tensor_release(p);
    cg_tensor_release(t);
}
END_TEST

START_TEST(test_views_raw_strides)
{
    int64_t n = 3000;
    for (int dt = 0; dt < CG_DTYPE_COUNT; dt++) {
        cg_tensor *base = ramp(&n, 1, (cg_dtype)dt);
        struct {
            int nd;
            int64_t shape[5], strides[5], offset;
            const char *what;
        } cases[] = {
            {2, {4, 5}, {-5, -1}, 19, "reversed 2-d"},
            {2, {6, 4}, {1, 1}, 10, "overlapping rows"},
            {1, {1200}, {-2}, 2999, "summarised reversed, step 2"},
            {5, {2, 3, 2, 4, 3}, {7, -100, 1000, 1, 250}, 300, "5-d mixed"},
            {4, {9, 2, 8, 9}, {1, 2000, 3, 100}, 5, "summarised 4-d"},
            {0, {0}, {0}, 1234, "0-d at an offset"},
        };
        for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
            cg_tensor *v = NULL;
            tu_ok(cg__tensor_view_of(base, cases[i].shape, cases[i].strides,
                                     cases[i].nd, cases[i].offset, &v));
            cg_tensor *c = copy_by_elements(v);
            char *a = tu_repr(v), *b = tu_repr(c);
            expect_text(a, b, cases[i].what);
            free(a);
            free(b);
            cg_tensor_release(c);
            cg_tensor_release(v);
        }
        cg_tensor_release(base);
    }
}
END_TEST

/* ---- buffer and FILE -------------------------------------------------- */

/* Everything written to a FILE by cg_tensor_print. */
static char *print_to_string(const cg_tensor *t)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tu_ok(cg_tensor_print(t, f));
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    fclose(f);
    return s;
}

START_TEST(test_buffer)
{
    static const float v[] = {1.5f, -2.25f, 3.0f};
    int64_t n = 3;
    cg_tensor *t = NULL;
    tu_ok(cg_tensor_from_data(v, &n, 1, CG_FLOAT32, &t));
    const char *want = "tensor([ 1.5000, -2.2500,  3.0000])";
    size_t want_len = strlen(want);

    size_t len = 0;
    tu_ok(cg_tensor_repr(t, NULL, 0, &len)); /* sizing call */
    ck_assert_uint_eq(len, want_len);
    tu_ok(cg_tensor_repr(t, NULL, 0, NULL));

    char buf[64];
    memset(buf, 'X', sizeof buf);
    len = 0;
    tu_ok(cg_tensor_repr(t, buf, sizeof buf, &len));
    ck_assert_str_eq(buf, want);
    ck_assert_uint_eq(len, want_len);

    /* exactly enough room */
    memset(buf, 'X', sizeof buf);
    tu_ok(cg_tensor_repr(t, buf, want_len + 1, &len));
    ck_assert_str_eq(buf, want);

    /* truncated: size-1 characters and a NUL, nothing beyond; the full
     * length is still reported */
    memset(buf, 'X', sizeof buf);
    len = 0;
    tu_ok(cg_tensor_repr(t, buf, 8, &len));
    ck_assert_str_eq(buf, "tensor(");
    ck_assert_int_eq(buf[8], 'X');
    ck_assert_uint_eq(len, want_len);
    memset(buf, 'X', sizeof buf);
    tu_ok(cg_tensor_repr(t, buf, want_len, &len));
    ck_assert_uint_eq(strlen(buf), want_len - 1);
    ck_assert_int_eq(memcmp(buf, want, want_len - 1), 0);
    ck_assert_int_eq(buf[want_len + 1], 'X');

    /* size 1: just the NUL */
    memset(buf, 'X', sizeof buf);
    tu_ok(cg_tensor_repr(t, buf, 1, NULL));
    ck_assert_int_eq(buf[0], '\0');
    ck_assert_int_eq(buf[1], 'X');

    /* size 0: buf is not touched */
    memset(buf, 'X', sizeof buf);
    tu_ok(cg_tensor_repr(t, buf, 0, &len));
    ck_assert_int_eq(buf[0], 'X');
    ck_assert_uint_eq(len, want_len);

    /* print() adds a newline; a parameter its header line */
    char *s = print_to_string(t);
    ck_assert_str_eq(s, "tensor([ 1.5000, -2.2500,  3.0000])\n");
    free(s);
    t->is_parameter = true;
    t->requires_grad = true;
    s = print_to_string(t);
    ck_assert_str_eq(s, "Parameter containing:\n"
                        "tensor([ 1.5000, -2.2500,  3.0000], "
                        "requires_grad=True)\n");
    free(s);
    char *r = tu_repr(t);
    ck_assert_str_eq(r, "Parameter containing:\n"
                        "tensor([ 1.5000, -2.2500,  3.0000], "
                        "requires_grad=True)");
    free(r);
    t->is_parameter = false;
    t->requires_grad = false;

    cg_tensor_release(t);
}
END_TEST

START_TEST(test_buffer_errors)
{
    cg_tensor *t = NULL;
    tu_ok(cg_arange(2, CG_FLOAT32, &t));
    size_t len = 12345;
    char buf[8] = "unset";

    tu_fails(cg_tensor_repr(NULL, buf, sizeof buf, &len), CG_ERR_MISUSE,
             "tensor must not be NULL");
    ck_assert_uint_eq(len, 12345);
    ck_assert_str_eq(buf, "unset");
    tu_fails(cg_tensor_repr(t, NULL, 4, &len), CG_ERR_MISUSE,
             "buf must not be NULL");
    ck_assert_uint_eq(len, 12345);
    tu_fails(cg_tensor_print(NULL, stdout), CG_ERR_MISUSE,
             "tensor must not be NULL");
    tu_fails(cg_tensor_print(t, NULL), CG_ERR_MISUSE, "f must not be NULL");

    /* a stream that refuses writes */
    FILE *ro = fopen("/dev/null", "r");
    if (ro) {
        cg_status st = cg_tensor_print(t, ro);
        ck_assert_int_eq(st, CG_ERR_IO);
        fclose(ro);
    }
    cg_tensor_release(t);
}
END_TEST

/* A decimal-comma locale makes printf write "1,5000"; torch never does.
 * Runs only where such a locale is installed (LOCPATH may point at one
 * made with localedef). */
START_TEST(test_locale)
{
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8",
                                        "fr_FR.UTF-8", "fr_FR.utf8",
                                        "de_DE",       "fr_FR"};
    static const double v[] = {1.5, -2.25, 1e-5, 3.0};
    int64_t n = 4, two = 2;
    cg_tensor *ts[4] = {NULL};
    tu_ok(cg_tensor_from_data(v, &n, 1, CG_FLOAT64, &ts[0]));   /* sci */
    tu_ok(cg_tensor_from_data(v, &two, 1, CG_FLOAT64, &ts[1])); /* fixed */
    tu_ok(cg_tensor_from_data(v, &two, 1, CG_COMPLEX128, &ts[2]));
    tu_ok(cg_full(&two, 1, 3.0, CG_FLOAT32, &ts[3])); /* int mode */
    char *want[4];
    for (int i = 0; i < 4; i++)
        want[i] = tu_repr(ts[i]);

    const char *cur = setlocale(LC_NUMERIC, NULL);
    char *saved = strdup(cur ? cur : "C");
    ck_assert_ptr_nonnull(saved);
    bool found = false;
    for (size_t k = 0; k < sizeof names / sizeof names[0] && !found; k++)
        found = setlocale(LC_NUMERIC, names[k]) != NULL;
    if (found) {
        char probe[16];
        snprintf(probe, sizeof probe, "%.1f", 0.5);
        for (int i = 0; i < 4; i++) {
            char *got = tu_repr(ts[i]);
            expect_text(got, want[i], probe);
            free(got);
        }
    }
    setlocale(LC_NUMERIC, saved);
    free(saved);
    for (int i = 0; i < 4; i++) {
        free(want[i]);
        cg_tensor_release(ts[i]);
    }
}
END_TEST

/* ---- allocation failures ------------------------------------------------ */

/* Builds a 1000-element float64 tensor (long text: the buffer grows several
 * times), gives it a suffix, sizes and writes its repr, prints it; then a
 * summarised complex one. Returns the first failure; releases everything.
 * On a failing print nothing may reach the FILE. */
static cg_status repr_scenario(void *ctx)
{
    (void)ctx;
    cg_status st;
    cg_tensor *t = NULL, *v = NULL;
    char *buf = NULL;
    FILE *f = NULL;

    if ((st = cg_arange(1000, CG_FLOAT64, &t)) != CG_OK)
        goto done;
    t->requires_grad = true;
    t->debug_grad_fn_name = "MulBackward0";
    size_t len = 0;
    if ((st = cg_tensor_repr(t, NULL, 0, &len)) != CG_OK)
        goto done;
    buf = malloc(len + 1); /* the test's own memory, not cgrad's */
    if (!buf) {
        st = CG_ERR_RUNTIME;
        goto done;
    }
    if ((st = cg_tensor_repr(t, buf, len + 1, NULL)) != CG_OK)
        goto done;
    f = tmpfile();
    if (!f) {
        st = CG_ERR_RUNTIME;
        goto done;
    }
    st = cg_tensor_print(t, f);
    if (st != CG_OK) {
        if (ftell(f) != 0)
            st = CG_ERR_RUNTIME; /* partial output: the sweep fails */
        goto done;
    }
    int64_t shape[] = {30, 40};
    if ((st = cg_full_complex(shape, 2, 1.5, -2.0, CG_COMPLEX128, &v)) != CG_OK)
        goto done;
    v->is_parameter = true;
    st = cg_tensor_repr(v, buf, len + 1, NULL);

done:
    if (f)
        fclose(f);
    free(buf);
    if (t)
        t->debug_grad_fn_name = NULL;
    cg_tensor_release(t);
    cg_tensor_release(v);
    return st;
}

START_TEST(test_alloc)
{
    long n = tu_alloc_sweep(repr_scenario, NULL, "repr");
    ck_assert_int_gt(n, 6);
}
END_TEST

/* ---- the suite ---------------------------------------------------------- */

START_TEST(test_random_fixture_missing)
{
    ck_abort_msg("tests/data/print/random.tsv is missing or empty: run "
                 "tests/data/print/gen_print.py");
}
END_TEST

Suite *print_suite(void)
{
    Suite *s = suite_create("print");

    TCase *tc = tcase_create("examples");
    tcase_add_loop_test(tc, test_examples, 0, N_EXAMPLES);
    suite_add_tcase(s, tc);

    tc = tcase_create("golden");
    tcase_add_loop_test(tc, test_golden, 0, N_GOLDEN);
    suite_add_tcase(s, tc);

    tc = tcase_create("random");
    int n = random_count();
    if (n > 0)
        tcase_add_loop_test(tc, test_random, 0, n);
    else
        tcase_add_test(tc, test_random_fixture_missing);
    suite_add_tcase(s, tc);

    tc = tcase_create("views");
    tcase_add_test(tc, test_views_public);
    tcase_add_test(tc, test_views_raw_strides);
    tcase_add_test(tc, test_high_rank);
    suite_add_tcase(s, tc);

    tc = tcase_create("buffer");
    tcase_add_test(tc, test_buffer);
    tcase_add_test(tc, test_buffer_errors);
    tcase_add_test(tc, test_locale);
    suite_add_tcase(s, tc);

    tc = tcase_create("alloc");
    tcase_add_test(tc, test_alloc);
    tcase_set_timeout(tc, 60);
    suite_add_tcase(s, tc);

    return s;
}
