/* test_literal.c -- cg_tensor_literal / cg_tensor_literal_dtype: Python
 * literal text to tensors as torch.tensor makes them. Shapes, dtypes,
 * values (bit for bit) and torch's errors come from
 * tests/data/npy/literal_cases.tsv, written by PyTorch 1.13 through
 * tests/data/npy/gen_npy.py; the syntax errors, which Python reports as
 * SyntaxError before torch runs, are cgrad's own and listed here. */
#include "testutil.h"

#include <locale.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* A sentinel: a failing call must leave *out exactly as it was. */
#define UNTOUCHED ((cg_tensor *)(uintptr_t)0x5a5a5a5a)

/* ---- the torch-generated cases ------------------------------------------ */

#define MAX_FIELDS 6

typedef struct lit_case {
    char *text;                    /* unescaped literal */
    const char *dtype;             /* "-" or a dtype name */
    const char *field[MAX_FIELDS]; /* "ok", dtype, sizes, values | "err",
                                      exception, message */
    int nfields;
} lit_case;

static char *tsv; /* the file, split in place */
static lit_case cases[256];
static int ncases;

static char *unescape(const char *s)
{
    size_t n = strlen(s);
    char *r = malloc(n + 1), *p = r;
    ck_assert_ptr_nonnull(r);
    for (size_t i = 0; i < n; i++) {
        if (s[i] == '\\' && i + 1 < n) {
            char c = s[++i];
            *p++ = c == 't' ? '\t' : c == 'n' ? '\n' : c == 'r' ? '\r' : c;
        } else {
            *p++ = s[i];
        }
    }
    *p = '\0';
    return r;
}

static void load_cases(void)
{
    tsv = tu_read_text(tu_data_path("npy/literal_cases.tsv"));
    ck_assert_msg(tsv != NULL, "literal_cases.tsv is missing");
    ncases = 0;
    for (char *line = tsv; *line;) {
        char *end = strchr(line, '\n');
        if (end)
            *end = '\0';
        ck_assert_int_lt(ncases, (int)(sizeof cases / sizeof cases[0]));
        lit_case *c = &cases[ncases++];
        char *f[MAX_FIELDS + 2];
        int n = 0;
        for (char *p = line;; n++) {
            ck_assert_int_lt(n, MAX_FIELDS + 2);
            f[n] = p;
            char *tab = strchr(p, '\t');
            if (!tab) {
                n++;
                break;
            }
            *tab = '\0';
            p = tab + 1;
        }
        ck_assert_int_ge(n, 4);
        c->text = unescape(f[0]);
        c->dtype = f[1];
        c->nfields = n - 2;
        for (int k = 0; k < c->nfields; k++)
            c->field[k] = f[k + 2];
        if (!end)
            break;
        line = end + 1;
    }
}

static void free_cases(void)
{
    for (int i = 0; i < ncases; i++)
        free(cases[i].text);
    free(tsv);
    ncases = 0;
}

static cg_dtype dtype_named(const char *name)
{
    for (int d = 0; d < CG_DTYPE_COUNT; d++)
        if (strcmp(cg_dtype_name((cg_dtype)d), name) == 0)
            return (cg_dtype)d;
    ck_abort_msg("unknown dtype %s", name);
    return CG_FLOAT32;
}

static cg_status run_case(const lit_case *c, cg_tensor **out)
{
    if (strcmp(c->dtype, "-") == 0)
        return cg_tensor_literal(c->text, out);
    return cg_tensor_literal_dtype(c->text, dtype_named(c->dtype), out);
}

static void check_ok_case(const lit_case *c)
{
    cg_tensor *t = NULL;
    cg_status st = run_case(c, &t);
    ck_assert_msg(st == CG_OK, "%s: %s: %s", c->text, cg_status_name(st),
                  cg_last_error());
    ck_assert_msg(strcmp(cg_dtype_name(cg_tensor_dtype(t)), c->field[1]) == 0,
                  "%s: dtype %s, torch says %s", c->text,
                  cg_dtype_name(cg_tensor_dtype(t)), c->field[1]);
    /* sizes */
    int64_t shape[CG_MAX_DIMS];
    int ndim = 0;
    const char *p = c->field[2];
    while (*p) {
        char *e;
        shape[ndim++] = strtoll(p, &e, 10);
        p = *e == ',' ? e + 1 : e;
    }
    ck_assert_msg(cg_tensor_dim(t) == ndim, "%s: %d dims, torch has %d",
                  c->text, cg_tensor_dim(t), ndim);
    for (int d = 0; d < ndim; d++)
        ck_assert_msg(cg_tensor_shape(t)[d] == shape[d],
                      "%s: size %lld at dim %d, torch has %lld", c->text,
                      (long long)cg_tensor_shape(t)[d], d, (long long)shape[d]);
    ck_assert(cg_tensor_is_contiguous(t));
    /* values, bit for bit */
    int64_t n =
        cg_tensor_numel(t) * (cg_dtype_is_complex(cg_tensor_dtype(t)) ? 2 : 1);
    double *v = malloc((size_t)(n + 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    tu_ok(cg_tensor_to_doubles(t, v, n));
    p = c->nfields > 3 ? c->field[3] : "";
    for (int64_t i = 0; i < n; i++) {
        char *e;
        uint64_t want = strtoull(p, &e, 16), got;
        ck_assert_msg(e != p, "%s: torch has fewer values", c->text);
        p = e;
        memcpy(&got, &v[i], sizeof got);
        ck_assert_msg(got == want,
                      "%s: value %lld is %.17g (%016llx), torch has %016llx",
                      c->text, (long long)i, v[i], (unsigned long long)got,
                      (unsigned long long)want);
    }
    while (*p == ' ')
        p++;
    ck_assert_msg(*p == '\0', "%s: torch has more values", c->text);
    free(v);
    cg_tensor_release(t);
}

static void check_err_case(const lit_case *c)
{
    cg_tensor *t = UNTOUCHED;
    cg_status st = run_case(c, &t);
    ck_assert_msg(st != CG_OK, "%s: succeeded, torch raises %s", c->text,
                  c->field[1]);
    ck_assert_msg(strcmp(cg_status_name(st), c->field[1]) == 0,
                  "%s: %s (%s), torch raises %s", c->text, cg_status_name(st),
                  cg_last_error(), c->field[1]);
    ck_assert_msg(strcmp(cg_last_error(), c->field[2]) == 0,
                  "%s: message \"%s\", torch says \"%s\"", c->text,
                  cg_last_error(), c->field[2]);
    ck_assert_ptr_eq(t, UNTOUCHED);
}

START_TEST(test_torch_values)
{
    int checked = 0;
    for (int i = 0; i < ncases; i++)
        if (strcmp(cases[i].field[0], "ok") == 0) {
            check_ok_case(&cases[i]);
            checked++;
        }
    ck_assert_int_gt(checked, 50);
}
END_TEST

START_TEST(test_torch_errors)
{
    int checked = 0;
    for (int i = 0; i < ncases; i++)
        if (strcmp(cases[i].field[0], "err") == 0) {
            check_err_case(&cases[i]);
            checked++;
        }
    ck_assert_int_gt(checked, 20);
}
END_TEST

/* ---- exact expectations written out ------------------------------------- */

START_TEST(test_seed_literals)
{
    cg_tensor *t = NULL;
    tu_ok(cg_tensor_literal("[[[[8., -3., 0., 1., 5., -2.]]]]", &t));
    int64_t s[] = {1, 1, 1, 6};
    tu_assert_shape(t, s, 4);
    ck_assert_int_eq(cg_tensor_dtype(t), CG_FLOAT32);
    const float *f = cg_tensor_data(t);
    const float want[] = {8, -3, 0, 1, 5, -2};
    for (int i = 0; i < 6; i++)
        ck_assert(f[i] == want[i]);
    cg_tensor_release(t);

    tu_ok(cg_tensor_literal("[[[[[8.+0.j], [-3.+0.j], [0.+0.j]], "
                            "[[1.+0.j], [5.+0.j], [-2.+0.j]]]]]",
                            &t));
    int64_t c[] = {1, 1, 2, 3, 1};
    tu_assert_shape(t, c, 5);
    ck_assert_int_eq(cg_tensor_dtype(t), CG_COMPLEX64);
    f = cg_tensor_data(t);
    for (int i = 0; i < 6; i++) {
        ck_assert(f[2 * i] == want[i]);
        ck_assert(f[2 * i + 1] == 0.0f && !signbit(f[2 * i + 1]));
    }
    cg_tensor_release(t);

    /* a scalar, and the same through every dtype */
    for (int d = 0; d < CG_DTYPE_COUNT; d++) {
        tu_ok(cg_tensor_literal_dtype(" -2.5 ", (cg_dtype)d, &t));
        ck_assert_int_eq(cg_tensor_dim(t), 0);
        ck_assert_int_eq(cg_tensor_dtype(t), d);
        double re = 0, im = 1;
        tu_ok(cg_tensor_item(t, &re, &im));
        ck_assert(re == -2.5 && im == 0.0);
        cg_tensor_release(t);
    }
}
END_TEST

/* strtod reads ',' as the radix in some locales; cgrad must not care.
 * Runs when such a locale is installed (CI images often have none). */
START_TEST(test_locale_independent)
{
    static const char *const names[] = {"de_DE.UTF-8", "de_DE.utf8",
                                        "fr_FR.UTF-8", "fr_FR.utf8",
                                        "ru_RU.UTF-8", "nl_NL.UTF-8"};
    const char *found = NULL;
    for (size_t i = 0; i < sizeof names / sizeof names[0] && !found; i++)
        if (setlocale(LC_NUMERIC, names[i]))
            found = names[i];
    if (!found)
        return;
    ck_assert(strtod("1.5", NULL) != 1.5); /* the locale really bites */
    cg_tensor *t = NULL;
    tu_ok(cg_tensor_literal_dtype("[1.5, 2.25e1, .5, float('0.25'), 1e-1]",
                                  CG_FLOAT64, &t));
    const double *v = cg_tensor_data(t);
    ck_assert(v[0] == 1.5 && v[1] == 22.5 && v[2] == 0.5 && v[3] == 0.25 &&
              v[4] == 0.1);
    cg_tensor_release(t);
    setlocale(LC_NUMERIC, "C");
}
END_TEST

START_TEST(test_results_are_independent)
{
    cg_tensor *a = NULL, *b = NULL;
    tu_ok(cg_tensor_literal("[1., 2.]", &a));
    tu_ok(cg_tensor_literal("[1., 2.]", &b));
    ck_assert(!cg_tensor_shares_storage(a, b));
    int64_t i0 = 0;
    tu_ok(cg_tensor_set(a, &i0, 5.0, 0.0));
    double re;
    tu_ok(cg_tensor_get(b, &i0, &re, NULL));
    ck_assert(re == 1.0);
    cg_tensor_release(a);
    cg_tensor_release(b);
}
END_TEST

/* ---- cgrad's own errors ------------------------------------------------- */

typedef struct bad_literal {
    const char *text;
    cg_status status;
    const char *msg;
} bad_literal;

static const bad_literal bad_literals[] = {
    {"", CG_ERR_VALUE,
     "invalid literal at position 0: unexpected end of "
     "input"},
    {"  \n ", CG_ERR_VALUE,
     "invalid literal at position 4: unexpected end "
     "of input"},
    {"[1, 2", CG_ERR_VALUE,
     "invalid literal at position 5: unexpected end "
     "of input"},
    {"[1, 2]]", CG_ERR_VALUE,
     "invalid literal at position 6: unexpected "
     "']'"},
    {"[1,, 2]", CG_ERR_VALUE,
     "invalid literal at position 3: unexpected "
     "','"},
    {"[1 2]", CG_ERR_VALUE, "invalid literal at position 3: unexpected '2'"},
    {"[,]", CG_ERR_VALUE, "invalid literal at position 1: unexpected ','"},
    {"(,)", CG_ERR_VALUE, "invalid literal at position 1: unexpected ','"},
    {"[1, 2)", CG_ERR_VALUE,
     "invalid literal at position 5: unexpected "
     "')'"},
    {"(1, 2]", CG_ERR_VALUE,
     "invalid literal at position 5: unexpected "
     "']'"},
    {"[[1, 2], [3, 4]", CG_ERR_VALUE,
     "invalid literal at position 15: "
     "unexpected end of input"},
    {"[1, 2] x", CG_ERR_VALUE,
     "invalid literal at position 7: unexpected "
     "'x'"},
    {"[1 * 2]", CG_ERR_VALUE,
     "invalid literal at position 3: unexpected "
     "'*'"},
    {"['a']", CG_ERR_VALUE,
     "invalid literal at position 1: unexpected "
     "\"'\""},
    {"[\xc3\xa9]", CG_ERR_VALUE,
     "invalid literal at position 1: unexpected "
     "byte 0xc3"},
    {"[1, -]", CG_ERR_VALUE,
     "invalid literal at position 5: unexpected "
     "']'"},
    {"[1 +]", CG_ERR_VALUE,
     "invalid literal at position 4: unexpected "
     "']'"},
    {"1e", CG_ERR_VALUE,
     "invalid literal at position 0: malformed number "
     "'1e'"},
    {"[1e+]", CG_ERR_VALUE,
     "invalid literal at position 1: malformed "
     "number '1e'"},
    {"[1.2.3]", CG_ERR_VALUE,
     "invalid literal at position 1: malformed "
     "number '1.2.3'"},
    {"[0x10]", CG_ERR_VALUE,
     "invalid literal at position 1: malformed "
     "number '0x10'"},
    {"[1_000]", CG_ERR_VALUE,
     "invalid literal at position 1: malformed "
     "number '1_000'"},
    {"[2jj]", CG_ERR_VALUE,
     "invalid literal at position 1: malformed "
     "number '2jj'"},
    {"[01]", CG_ERR_VALUE,
     "invalid literal at position 1: leading zeros "
     "in decimal integer literals are not permitted"},
    {"[foo]", CG_ERR_VALUE,
     "invalid literal at position 1: name 'foo' is "
     "not defined"},
    {"[math.inf]", CG_ERR_VALUE,
     "invalid literal at position 1: name "
     "'math' is not defined"},
    {"[Inf]", CG_ERR_VALUE,
     "invalid literal at position 1: name 'Inf' is "
     "not defined"},
    {"[float]", CG_ERR_VALUE,
     "invalid literal at position 6: unexpected "
     "']'"},
    {"[float('1.5)]", CG_ERR_VALUE,
     "invalid literal at position 7: "
     "unterminated string"},
    {"[float('\\x31')]", CG_ERR_VALUE,
     "invalid literal at position 8: "
     "escape sequences are not supported"},
    {"float(1, 2)", CG_ERR_VALUE,
     "invalid literal at position 9: "
     "unexpected '2'"},
    {"complex(1, 2, 3)", CG_ERR_VALUE,
     "invalid literal at position 14: "
     "unexpected '3'"},
    {"complex('1+2j')", CG_ERR_VALUE,
     "invalid literal at position 8: "
     "unexpected \"'\""},
    {"[1 + (2, 3)]", CG_ERR_VALUE,
     "invalid literal at position 7: "
     "unexpected ','"},
    {"[1 + [2]]", CG_ERR_VALUE,
     "invalid literal at position 5: "
     "unexpected '['"},
    {"[float('1_0')]", CG_ERR_VALUE,
     "could not convert string to float: "
     "'1_0'"},
    {"10000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000000000000000000000000000000000000000000000000000000000000"
     "00000000000000000000000000000000000000000000000000000000000000000000",
     CG_ERR_VALUE,
     "invalid literal at position 0: int too large to convert "
     "to float"},
    {"[[[[[[[[[[[[[[[[[1.]]]]]]]]]]]]]]]]]", CG_ERR_VALUE,
     "the literal has 17 dimensions, but cgrad tensors have at most 16"},
    {"[[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]]", CG_ERR_VALUE,
     "the literal has 17 dimensions, but cgrad tensors have at most 16"},
};

START_TEST(test_syntax_errors)
{
    const bad_literal *b = &bad_literals[_i];
    cg_tensor *t = UNTOUCHED;
    tu_fails(cg_tensor_literal(b->text, &t), b->status, b->msg);
    ck_assert_ptr_eq(t, UNTOUCHED);
    t = UNTOUCHED;
    tu_fails(cg_tensor_literal_dtype(b->text, CG_COMPLEX128, &t), b->status,
             b->msg);
    ck_assert_ptr_eq(t, UNTOUCHED);
}
END_TEST

START_TEST(test_nesting_limit)
{
    char text[512];
    /* 200 brackets are fine syntactically (the shape is then too deep) */
    memset(text, '[', 200);
    memset(text + 200, ']', 200);
    text[400] = '\0';
    cg_tensor *t = UNTOUCHED;
    tu_fails(cg_tensor_literal(text, &t), CG_ERR_VALUE,
             "the literal has 200 dimensions, but cgrad tensors have at "
             "most 16");
    /* a deep parenthesised number stays a scalar */
    memset(text, '(', 200);
    text[200] = '1';
    memset(text + 201, ')', 200);
    text[401] = '\0';
    tu_ok(cg_tensor_literal(text, &t));
    ck_assert_int_eq(cg_tensor_dim(t), 0);
    cg_tensor_release(t);
    /* 201 is one too many, as in Python */
    memset(text, '[', 201);
    text[201] = '\0';
    t = UNTOUCHED;
    tu_fails(cg_tensor_literal(text, &t), CG_ERR_VALUE,
             "invalid literal at position 200: too many nested parentheses "
             "(at most 200)");
    ck_assert_ptr_eq(t, UNTOUCHED);
    memset(text, '(', 201);
    tu_fails(cg_tensor_literal(text, &t), CG_ERR_VALUE,
             "invalid literal at position 200: too many nested parentheses "
             "(at most 200)");
    ck_assert_ptr_eq(t, UNTOUCHED);
}
END_TEST

START_TEST(test_bad_arguments)
{
    cg_tensor *t = UNTOUCHED;
    tu_fails(cg_tensor_literal(NULL, &t), CG_ERR_MISUSE,
             "text must not be NULL");
    ck_assert_ptr_eq(t, UNTOUCHED);
    tu_fails(cg_tensor_literal("[1.]", NULL), CG_ERR_MISUSE,
             "out must not be NULL");
    tu_fails(cg_tensor_literal_dtype("[1.]", (cg_dtype)7, &t), CG_ERR_VALUE,
             "invalid dtype 7");
    ck_assert_ptr_eq(t, UNTOUCHED);
    tu_fails(cg_tensor_literal_dtype("[1.]", (cg_dtype)-1, &t), CG_ERR_VALUE,
             "invalid dtype -1");
    ck_assert_ptr_eq(t, UNTOUCHED);
}
END_TEST

/* `levels` nested lists along the first path, each `len` long: the first
 * element goes one level down, the others are numbers. Ragged unless
 * levels == 1, but the first path promises len^levels elements. */
static char *first_path_literal(int levels, int len)
{
    size_t cap = (size_t)levels * (size_t)len * 8 + 16, k = 0;
    char *text = malloc(cap);
    ck_assert_ptr_nonnull(text);
    for (int d = 0; d < levels; d++)
        text[k++] = '[';
    text[k++] = '1';
    for (int d = 0; d < levels; d++) {
        for (int i = 1; i < len; i++)
            k += (size_t)snprintf(text + k, cap - k, ", 2.");
        text[k++] = ']';
    }
    text[k] = '\0';
    return text;
}

/* A ragged literal whose first path promises a huge shape is found out
 * without allocating that shape (PyTorch would try to allocate it). */
START_TEST(test_ragged_huge_shape)
{
    static const int levels[] = {4, 16};
    for (int k = 0; k < 2; k++) {
        /* 100^4 = 1e8 elements; 100^16 overflows int64 */
        char *text = first_path_literal(levels[k], 100);
        cg_tensor *t = UNTOUCHED;
        tu_alloc_begin(0);
        cg_status st = cg_tensor_literal(text, &t);
        long made = tu_alloc_end();
        ck_assert_int_eq(st, CG_ERR_TYPE);
        ck_assert_str_eq(cg_last_error(), "not a sequence");
        ck_assert_int_eq(made, 0);
        ck_assert_ptr_eq(t, UNTOUCHED);
        free(text);
    }
    char *text = first_path_literal(1, 100);
    cg_tensor *t = NULL;
    tu_ok(cg_tensor_literal(text, &t));
    ck_assert_int_eq(cg_tensor_numel(t), 100);
    cg_tensor_release(t);
    free(text);
}
END_TEST

/* ---- alloc -------------------------------------------------------------- */

static cg_status literal_scenario(void *ctx)
{
    (void)ctx;
    cg_tensor *a = NULL, *b = NULL, *c = NULL;
    cg_status st = cg_tensor_literal("[[1+2j, 3], [float('nan'), -4.5e1]]", &a);
    if (st == CG_OK)
        st = cg_tensor_literal_dtype("[[], []]", CG_FLOAT64, &b);
    if (st == CG_OK)
        st = cg_tensor_literal("0.5", &c);
    cg_tensor_release(a);
    cg_tensor_release(b);
    cg_tensor_release(c);
    return st;
}

START_TEST(test_alloc_sweep)
{
    long n = tu_alloc_sweep(literal_scenario, NULL, "literals");
    ck_assert_int_ge(n, 3);
    /* an error allocates nothing */
    tu_alloc_begin(0);
    cg_tensor *t = UNTOUCHED;
    ck_assert_int_eq(cg_tensor_literal("[[1, 2], [3]]", &t), CG_ERR_VALUE);
    ck_assert_int_eq(cg_tensor_literal("[1, 2", &t), CG_ERR_VALUE);
    ck_assert_int_eq(tu_alloc_live(), 0);
    tu_alloc_end();
    ck_assert_ptr_eq(t, UNTOUCHED);
}
END_TEST

Suite *literal_suite(void)
{
    Suite *s = suite_create("literal");
    TCase *tc = tcase_create("parse");
    tcase_add_checked_fixture(tc, load_cases, free_cases);
    tcase_add_test(tc, test_torch_values);
    tcase_add_test(tc, test_seed_literals);
    tcase_add_test(tc, test_locale_independent);
    tcase_add_test(tc, test_results_are_independent);
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, load_cases, free_cases);
    tcase_add_test(tc, test_torch_errors);
    tcase_add_loop_test(tc, test_syntax_errors, 0,
                        (int)(sizeof bad_literals / sizeof bad_literals[0]));
    tcase_add_test(tc, test_nesting_limit);
    tcase_add_test(tc, test_bad_arguments);
    tcase_add_test(tc, test_ragged_huge_shape);
    suite_add_tcase(s, tc);
    tc = tcase_create("alloc");
    tcase_add_test(tc, test_alloc_sweep);
    suite_add_tcase(s, tc);
    return s;
}
