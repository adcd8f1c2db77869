/* fixture.c -- PyTorch fixture cases for the op suites (see fixture.h):
 * reading a case table and its packed values, building a row's inputs,
 * running the op, and checking the output, its graph and the gradients.
 *
 * The two generators lay their tables out differently; both are read here:
 *   gen_reduce.py (ops/reduce): any number of inputs, as lists in the
 *       "views", "inputs" and "grads" columns; the graph as one "chain";
 *   gen_arith.py (ops/arith): inputs a and b (b "-" for unary ops) in
 *       "a", "view_a", "rg_a", "ga" and the same for b; the graph as
 *       "grad_fn" and "next".
 * A table says which layout it has by its header: "inputs" or not.
 *
 * Other suites open single rows of their own tables (tu_fixture_row,
 * tu_fixture_row_at): lines starting with '#' are comments, the first
 * other line is the header, and fields may escape \\, \t and \n. */
#include "fixture.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

enum {
    MAX_COLS = 32, /* columns of a case table */
    MAX_IN = 8,    /* inputs of one case */
    SPEC_LEN = 64, /* a tensor spec such as "c128:123456:2x3x4x5" */
    PATH_LEN = 256 /* a path under tests/data */
};

/* The tag of each dtype in tensor specs and values file names. */
static const char *const dtype_tags[CG_DTYPE_COUNT] = {
    [CG_FLOAT32] = "f32",
    [CG_FLOAT64] = "f64",
    [CG_COMPLEX64] = "c64",
    [CG_COMPLEX128] = "c128",
};

struct tu_fixture_case {
    const tu_fixture_set *set;         /* NULL for tu_fixture_row(_at) */
    char rel[PATH_LEN];                /* the table, under tests/data */
    char *table;                       /* the table, whole; cut in place */
    int ncols;                         /* columns of the header */
    char *names[MAX_COLS];             /* the header's column names */
    char *fields[MAX_COLS];            /* this row's fields, by column */
    cg_tensor *values[CG_DTYPE_COUNT]; /* values_<dt>.npy, on first use */
};

/* ======================================================================
 * Reading a table: plain stdio, so that it also works while a suite is
 * being built (Check's asserts work only inside a running test)
 * ====================================================================== */

/* The file at `path`, whole, NUL-terminated and malloc'd; NULL when it
 * cannot be read (errno says why). */
static char *read_whole(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 1 << 16, n = 0;
    char *s = malloc(cap);
    while (s) {
        n += fread(s + n, 1, cap - n - 1, f);
        if (n < cap - 1)
            break; /* end of file, or an error */
        cap *= 2;
        char *bigger = realloc(s, cap);
        if (!bigger)
            free(s);
        s = bigger;
    }
    if (s && ferror(f)) {
        free(s);
        s = NULL;
    }
    fclose(f);
    if (s)
        s[n] = '\0';
    return s;
}

/* "<dir>/cases.tsv" of `set`, relative to tests/data. */
static void table_path(const tu_fixture_set *set, char *buf, size_t cap)
{
    snprintf(buf, cap, "%s/cases.tsv", set->dir);
}

/* The first line from `line` on that is neither a comment ('#') nor
 * empty, or NULL. */
static const char *skip_comments(const char *line)
{
    while (line && (*line == '#' || *line == '\n')) {
        const char *end = strchr(line, '\n');
        line = end ? end + 1 : NULL;
    }
    return line && *line ? line : NULL;
}

/* The row after `line` (the header or a row), or NULL after the last. */
static const char *next_line(const char *line)
{
    const char *end = strchr(line, '\n');
    return end ? skip_comments(end + 1) : NULL;
}

/* True when `line` is a row of `key`, its first field (any row when key
 * is NULL). */
static bool in_suite(const char *line, const char *key)
{
    if (!key)
        return true;
    size_t len = strlen(key);
    return strncmp(line, key, len) == 0 && line[len] == '\t';
}

/* Row `k` of `key` in `table` (after the header line), or NULL. */
static const char *find_row(const char *table, const char *key, int k)
{
    const char *header = skip_comments(table);
    for (const char *line = header ? next_line(header) : NULL; line;
         line = next_line(line))
        if (in_suite(line, key) && k-- == 0)
            return line;
    return NULL;
}

/* How many rows of `key` (all rows when NULL) tests/data/<rel> has; 1
 * (after saying why on stderr) when the table cannot be read or has none,
 * so that the one test then run fails. */
static int count_rows(const char *rel, const char *key)
{
    char *table = read_whole(tu_data_path(rel));
    if (!table) {
        fprintf(stderr, "tests/data/%s: cannot read it: %s\n", rel,
                strerror(errno));
        return 1;
    }
    int n = 0;
    const char *header = skip_comments(table);
    for (const char *line = header ? next_line(header) : NULL; line;
         line = next_line(line))
        n += in_suite(line, key);
    free(table);
    if (n == 0)
        fprintf(stderr, "tests/data/%s: no \"%s\" rows\n", rel, key ? key : "");
    return n > 0 ? n : 1;
}

/* ======================================================================
 * One row, inside a test
 * ====================================================================== */

/* Undoes the escapes \\, \t and \n of a field, in place. */
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

/* Cuts `line` (up to its newline) into tab-separated fields, in place. */
static int split_fields(char *line, char **fields)
{
    char *end = strchr(line, '\n');
    if (end)
        *end = '\0';
    int n = 0;
    for (char *f = line; f; n++) {
        ck_assert_msg(n < MAX_COLS, "a table row has over %d fields", MAX_COLS);
        fields[n] = f;
        f = strchr(f, '\t');
        if (f)
            *f++ = '\0';
    }
    return n;
}

/* Row `k` of `key` (of all rows when NULL) in tests/data/<rel>, with its
 * fields unescaped; `set` is the op suite's, or NULL. */
static tu_fixture_case *case_open(const char *rel, const tu_fixture_set *set,
                                  const char *key, int k)
{
    tu_fixture_case *c = calloc(1, sizeof *c);
    ck_assert_ptr_nonnull(c);
    c->set = set;
    ck_assert_msg(strlen(rel) < sizeof c->rel, "%s: path too long", rel);
    strcpy(c->rel, rel);
    c->table = read_whole(tu_data_path(rel));
    ck_assert_msg(c->table != NULL, "tests/data/%s: cannot read it: %s", rel,
                  strerror(errno));
    const char *row = find_row(c->table, key, k);
    ck_assert_msg(row != NULL, "tests/data/%s: no \"%s\" row %d", rel,
                  key ? key : "", k);
    char *row_text = c->table + (row - c->table);
    char *header = c->table + (skip_comments(c->table) - c->table);
    c->ncols = split_fields(header, c->names);
    int n = split_fields(row_text, c->fields);
    ck_assert_msg(n == c->ncols,
                  "tests/data/%s: \"%s\" row %d has %d "
                  "fields, the header %d",
                  rel, key ? key : "", k, n, c->ncols);
    for (int i = 0; i < n; i++)
        unescape(c->fields[i]);
    return c;
}

tu_fixture_case *tu_fixture_row(const char *table, const char *id)
{
    return case_open(table, NULL, id, 0);
}

tu_fixture_case *tu_fixture_row_at(const char *table, int k)
{
    return case_open(table, NULL, NULL, k);
}

int tu_fixture_count(const char *table)
{
    return count_rows(table, NULL);
}

void tu_fixture_close(tu_fixture_case *c)
{
    if (!c)
        return;
    for (int d = 0; d < CG_DTYPE_COUNT; d++)
        cg_tensor_release(c->values[d]);
    free(c->table);
    free(c);
}

static bool has_column(const tu_fixture_case *c, const char *column)
{
    for (int i = 0; i < c->ncols; i++)
        if (strcmp(c->names[i], column) == 0)
            return true;
    return false;
}

const char *tu_fixture_field(const tu_fixture_case *c, const char *column)
{
    for (int i = 0; i < c->ncols; i++)
        if (strcmp(c->names[i], column) == 0)
            return c->fields[i];
    ck_abort_msg("tests/data/%s has no column \"%s\"", c->rel, column);
    return NULL;
}

double tu_fixture_number(const tu_fixture_case *c, const char *column)
{
    const char *s = tu_fixture_field(c, column);
    char *end;
    double v = strtod(s, &end);
    ck_assert_msg(end != s && *end == '\0', "%s: \"%s\" is not a number",
                  column, s);
    return v;
}

/* True at the end of an argument's value: the end of the field or the
 * separator of the pairs (' ' in the ops tables, ';' in nn/spatial). */
static bool arg_end(char ch)
{
    return ch == '\0' || ch == ' ' || ch == ';';
}

/* What follows "key=" in the "args" column, or NULL. */
static const char *find_arg(const tu_fixture_case *c, const char *key)
{
    const char *args = tu_fixture_field(c, "args");
    size_t len = strlen(key);
    for (const char *s = args; *s; s++) {
        if (strncmp(s, key, len) == 0 && s[len] == '=')
            return s + len + 1;
        while (!arg_end(*s))
            s++;
        if (!*s)
            break;
    }
    return NULL;
}

/* What follows "key=" in the "args" column; fails the test without. */
static const char *arg_value(const tu_fixture_case *c, const char *key)
{
    const char *v = find_arg(c, key);
    if (!v)
        ck_abort_msg("no %s= in args \"%s\"", key, tu_fixture_field(c, "args"));
    return v;
}

bool tu_fixture_has_arg(const tu_fixture_case *c, const char *key)
{
    return find_arg(c, key) != NULL;
}

bool tu_fixture_arg_is(const tu_fixture_case *c, const char *key,
                       const char *text)
{
    const char *v = find_arg(c, key);
    size_t len = strlen(text);
    return v && strncmp(v, text, len) == 0 && arg_end(v[len]);
}

int64_t tu_fixture_arg_int(const tu_fixture_case *c, const char *key)
{
    const char *s = arg_value(c, key);
    char *end;
    int64_t v = strtoll(s, &end, 10);
    ck_assert_msg(end != s && arg_end(*end), "%s: \"%s\" is not an integer",
                  key, s);
    return v;
}

/* The list argument `key` into iv (integers) or dv (numbers), at most max
 * entries separated by sep; the number of entries. */
static int arg_values(const tu_fixture_case *c, const char *key, char sep,
                      int64_t *iv, double *dv, int max)
{
    const char *s = arg_value(c, key);
    int n = 0;
    while (!arg_end(*s)) {
        ck_assert_msg(n < max, "%s: over %d entries", key, max);
        char *end;
        if (iv)
            iv[n++] = strtoll(s, &end, 10);
        else
            dv[n++] = strtod(s, &end);
        ck_assert_msg(end != s && (*end == sep || arg_end(*end)),
                      "%s: bad list \"%s\"", key, s);
        s = end + (*end == sep);
    }
    return n;
}

int tu_fixture_arg_list(const tu_fixture_case *c, const char *key, char sep,
                        int64_t *v, int max)
{
    return arg_values(c, key, sep, v, NULL, max);
}

cg_ints tu_fixture_arg_ints(const tu_fixture_case *c, const char *key)
{
    cg_ints v = {0, {0}};
    v.n =
        tu_fixture_arg_list(c, key, ',', v.v, (int)(sizeof v.v / sizeof *v.v));
    return v;
}

int tu_fixture_arg_numbers(const tu_fixture_case *c, const char *key, char sep,
                           double *v, int max)
{
    return arg_values(c, key, sep, NULL, v, max);
}

double tu_fixture_arg_number(const tu_fixture_case *c, const char *key)
{
    const char *s = arg_value(c, key);
    char *end;
    double v = strtod(s, &end);
    ck_assert_msg(end != s && arg_end(*end), "%s: \"%s\" is not a number", key,
                  s);
    return v;
}

void tu_fixture_assert_error(const char *table, const char *id, cg_status st)
{
    tu_fixture_case *c = tu_fixture_row(table, id);
    ck_assert_msg(st != CG_OK, "%s: no error", id);
    ck_assert_str_eq(cg_status_name(st), tu_fixture_field(c, "exception"));
    ck_assert_str_eq(cg_last_error(), tu_fixture_field(c, "message"));
    tu_fixture_close(c);
}

cg_tensor *tu_fixture_npy(const tu_fixture_case *c, const char *dt,
                          const char *what)
{
    const char *slash = strrchr(c->rel, '/');
    int dir_len = slash ? (int)(slash - c->rel) + 1 : 0;
    char rel[PATH_LEN];
    int r = snprintf(rel, sizeof rel, "%.*s%s_%s_%s.npy", dir_len, c->rel,
                     c->fields[0], dt, what);
    ck_assert_msg(r > 0 && (size_t)r < sizeof rel, "%s: path too long", what);
    return tu_load(rel);
}

/* ---- tensors ---------------------------------------------------------- */

/* values_<dt>.npy of the case's directory, loaded on first use. */
static cg_tensor *values_file(tu_fixture_case *c, cg_dtype dt)
{
    if (!c->values[dt]) {
        char rel[PATH_LEN];
        snprintf(rel, sizeof rel, "%s/values_%s.npy", c->set->dir,
                 dtype_tags[dt]);
        c->values[dt] = tu_load(rel);
        ck_assert_msg(cg_tensor_dtype(c->values[dt]) == dt &&
                          cg_tensor_dim(c->values[dt]) == 1,
                      "%s is not a 1-D %s array", rel, cg_dtype_name(dt));
    }
    return c->values[dt];
}

/* The tensor named by `spec`, "<dt>:<offset>:<shape>" (e.g. "f32:120:2x3",
 * 0-d "f64:7:()"): a copy of the values at that element offset of
 * values_<dt>.npy. NULL for "-". */
static cg_tensor *spec_tensor(tu_fixture_case *c, const char *spec)
{
    if (strcmp(spec, "-") == 0)
        return NULL;
    const char *colon = strchr(spec, ':');
    ck_assert_msg(colon != NULL, "bad tensor spec \"%s\"", spec);
    int dt = 0;
    while (dt < CG_DTYPE_COUNT &&
           !(strlen(dtype_tags[dt]) == (size_t)(colon - spec) &&
             strncmp(spec, dtype_tags[dt], (size_t)(colon - spec)) == 0))
        dt++;
    ck_assert_msg(dt < CG_DTYPE_COUNT, "bad dtype in spec \"%s\"", spec);
    char *p;
    long long off = strtoll(colon + 1, &p, 10);
    ck_assert_msg(*p == ':' && off >= 0, "bad offset in spec \"%s\"", spec);
    p++;
    int64_t shape[CG_MAX_DIMS], numel = 1;
    int ndim = 0;
    if (strcmp(p, "()") != 0) {
        for (;;) {
            ck_assert_msg(ndim < CG_MAX_DIMS, "spec \"%s\": too many dims",
                          spec);
            char *end;
            shape[ndim] = strtoll(p, &end, 10);
            ck_assert_msg(end != p && shape[ndim] >= 0,
                          "bad shape in spec \"%s\"", spec);
            numel *= shape[ndim++];
            p = end;
            if (*p != 'x')
                break;
            p++;
        }
        ck_assert_msg(*p == '\0', "bad shape in spec \"%s\"", spec);
    }
    const cg_tensor *all = values_file(c, (cg_dtype)dt);
    ck_assert_msg(off + numel <= cg_tensor_numel(all),
                  "spec \"%s\" runs past the end of values_%s.npy", spec,
                  dtype_tags[dt]);
    const char *data = cg_tensor_data(all);
    cg_tensor *t = NULL;
    tu_ok(cg_tensor_from_data(data + (size_t)off * cg_dtype_size((cg_dtype)dt),
                              shape, ndim, (cg_dtype)dt, &t));
    return t;
}

/* ---- inputs ----------------------------------------------------------- */

/* One input of a case, as the row describes it. */
typedef struct fx_input {
    char base[SPEC_LEN]; /* the stored base, which is the leaf */
    char view[16];       /* how the op's input is made from the base */
    char grad[SPEC_LEN]; /* the base's expected gradient, "-": none */
    bool requires_grad;  /* whether the base requires grad */
} fx_input;

/* Copies the first len bytes of s into out (cap bytes), NUL-terminated. */
static void copy_text(char *out, size_t cap, const char *s, size_t len)
{
    ck_assert_msg(len < cap, "field \"%s\" is too long", s);
    memcpy(out, s, len);
    out[len] = '\0';
}

/* Copies the part of `s` before `sep` (all of it when there is no sep)
 * into out (cap bytes); returns what follows sep, or NULL at the end. */
static const char *take(const char *s, char sep, char *out, size_t cap)
{
    const char *end = strchr(s, sep);
    copy_text(out, cap, s, end ? (size_t)(end - s) : strlen(s));
    return end ? end + 1 : NULL;
}

/* gen_reduce.py: "views" holds c, T or S per input (comma separated),
 * with "!" after one whose base needs no grad; "inputs" and "grads" hold
 * the bases and their gradients (space separated). */
static int list_inputs(const tu_fixture_case *c, fx_input *in)
{
    const char *name = tu_fixture_field(c, "case");
    const char *views = tu_fixture_field(c, "views");
    const char *bases = tu_fixture_field(c, "inputs");
    const char *grads = tu_fixture_field(c, "grads");
    int n = 0;
    while (views) {
        ck_assert_msg(n < MAX_IN, "%s: over %d inputs", name, MAX_IN);
        ck_assert_msg(bases && grads, "%s: fewer inputs or grads than views",
                      name);
        fx_input *x = &in[n++];
        views = take(views, ',', x->view, sizeof x->view);
        bases = take(bases, ' ', x->base, sizeof x->base);
        grads = take(grads, ' ', x->grad, sizeof x->grad);
        char *bang = strchr(x->view, '!');
        x->requires_grad = bang == NULL;
        if (bang) {
            ck_assert_msg(bang[1] == '\0', "%s: bad view", name);
            *bang = '\0';
        }
    }
    ck_assert_msg(!bases && !grads, "%s: more inputs or grads than views",
                  name);
    return n;
}

/* gen_arith.py: a in "a", "view_a", "rg_a" (0 or 1), "ga"; b the same,
 * with "b" "-" when the op has no b. */
static int pair_inputs(const tu_fixture_case *c, fx_input *in)
{
    static const char *const cols[2][4] = {{"a", "view_a", "rg_a", "ga"},
                                           {"b", "view_b", "rg_b", "gb"}};
    int n = strcmp(tu_fixture_field(c, "b"), "-") == 0 ? 1 : 2;
    for (int i = 0; i < n; i++) {
        const char *base = tu_fixture_field(c, cols[i][0]);
        const char *view = tu_fixture_field(c, cols[i][1]);
        const char *rg = tu_fixture_field(c, cols[i][2]);
        const char *grad = tu_fixture_field(c, cols[i][3]);
        copy_text(in[i].base, sizeof in[i].base, base, strlen(base));
        copy_text(in[i].view, sizeof in[i].view, view, strlen(view));
        copy_text(in[i].grad, sizeof in[i].grad, grad, strlen(grad));
        ck_assert_msg(strcmp(rg, "0") == 0 || strcmp(rg, "1") == 0,
                      "%s: %s is \"%s\"", tu_fixture_field(c, "case"),
                      cols[i][2], rg);
        in[i].requires_grad = rg[0] == '1';
    }
    return n;
}

/* The input the op sees: the base itself or a view of it, as named by
 * gen_reduce.py (c, T, S) or gen_arith.py (contig, t, step2). */
static cg_tensor *view_of(cg_tensor *base, const char *view)
{
    cg_tensor *v = NULL;
    if (strcmp(view, "c") == 0 || strcmp(view, "contig") == 0)
        v = cg_tensor_retain(base);
    else if (strcmp(view, "T") == 0) /* base.transpose(-2, -1) */
        tu_ok(cg_tensor_transpose(base, -2, -1, &v));
    else if (strcmp(view, "t") == 0) /* base.transpose(0, -1) */
        tu_ok(cg_tensor_transpose(base, 0, -1, &v));
    else if (strcmp(view, "S") == 0) /* base[::2] */
        tu_ok(cg_tensor_slice(base, 0, 0, INT64_MAX, 2, &v));
    else if (strcmp(view, "step2") == 0) /* base[..., ::2] */
        tu_ok(cg_tensor_slice(base, -1, 0, INT64_MAX, 2, &v));
    else
        ck_abort_msg("unknown view \"%s\"", view);
    return v;
}

/* ======================================================================
 * Checks
 * ====================================================================== */

static double tol_of(const tu_fixture_set *set, cg_dtype dt)
{
    return dt == CG_FLOAT32 || dt == CG_COMPLEX64 ? set->tol_f32 : set->tol_f64;
}

/* got has ref's dtype and shape, and values within tol * max(1, max
 * |finite ref|); a NaN must match NaN and an infinity itself. `what`
 * names the tensor in messages. */
static void assert_close(const cg_tensor *got, const cg_tensor *ref, double tol,
                         const char *what)
{
    ck_assert_msg(got != NULL, "%s: missing", what);
    ck_assert_msg(cg_tensor_dtype(got) == cg_tensor_dtype(ref),
                  "%s: dtype %s, expected %s", what,
                  cg_dtype_name(cg_tensor_dtype(got)),
                  cg_dtype_name(cg_tensor_dtype(ref)));
    tu_assert_shape(got, cg_tensor_shape(ref), cg_tensor_dim(ref));
    int64_t n = cg_tensor_numel(ref) *
                (cg_dtype_is_complex(cg_tensor_dtype(ref)) ? 2 : 1);
    double *a = malloc((size_t)(n + 1) * sizeof *a);
    double *b = malloc((size_t)(n + 1) * sizeof *b);
    ck_assert(a && b);
    tu_ok(cg_tensor_to_doubles(got, a, n));
    tu_ok(cg_tensor_to_doubles(ref, b, n));
    double scale = 1.0;
    for (int64_t i = 0; i < n; i++)
        if (isfinite(b[i]))
            scale = fmax(scale, fabs(b[i]));
    for (int64_t i = 0; i < n; i++) {
        bool ok = isnan(b[i])   ? isnan(a[i])
                  : isinf(b[i]) ? a[i] == b[i]
                                : fabs(a[i] - b[i]) <= tol * scale;
        ck_assert_msg(ok,
                      "%s: value %lld is %.17g, expected %.17g "
                      "(tolerance %.3g)",
                      what, (long long)i, a[i], b[i], tol * scale);
    }
    free(a);
    free(b);
}

/* Appends printf-style text to buf (cap bytes), failing when it does not
 * fit. */
static void append(char *buf, size_t cap, const char *fmt, ...)
{
    size_t len = strlen(buf);
    va_list ap;
    va_start(ap, fmt);
    int r = vsnprintf(buf + len, cap - len, fmt, ap);
    va_end(ap);
    ck_assert_msg(r >= 0 && (size_t)r < cap - len,
                  "a graph's text is over %zu bytes", cap);
}

/* Appends node n and everything below it in gen_reduce.py's notation:
 * Name(next, next, ...), "None" for an empty edge, "#k" after a next
 * whose input_nr k is not 0; an AccumulateGrad leaf is just its name. */
static void append_chain(const cg_node *n, char *buf, size_t cap)
{
    if (!n) {
        append(buf, cap, "None");
        return;
    }
    append(buf, cap, "%s", cg_node_name(n));
    int k = cg_node_num_next(n);
    if (k == 0 || strcmp(cg_node_name(n), "AccumulateGrad") == 0)
        return;
    append(buf, cap, "(");
    for (int i = 0; i < k; i++) {
        int nr = 0;
        const cg_node *m = cg_node_next(n, i, &nr);
        if (i)
            append(buf, cap, ", ");
        append_chain(m, buf, cap);
        if (m && nr)
            append(buf, cap, "#%d", nr);
    }
    append(buf, cap, ")");
}

/* Appends the names of fn's next_functions in gen_arith.py's notation:
 * comma separated, "None" for an empty edge. */
static void append_next_names(const cg_node *fn, char *buf, size_t cap)
{
    for (int i = 0; i < cg_node_num_next(fn); i++) {
        const cg_node *m = cg_node_next(fn, i, NULL);
        append(buf, cap, "%s%s", i ? "," : "", m ? cg_node_name(m) : "None");
    }
}

/* y's graph against the row: the whole chain (gen_reduce.py), or grad_fn
 * and its next_functions (gen_arith.py); "-" stands for no grad_fn. */
static void check_graph(const tu_fixture_case *c, const cg_tensor *y)
{
    const char *name = tu_fixture_field(c, "case");
    const cg_node *fn = cg_tensor_grad_fn(y);
    char got[4096] = "";
    if (has_column(c, "chain")) {
        if (fn)
            append_chain(fn, got, sizeof got);
        else
            append(got, sizeof got, "-");
        const char *want = tu_fixture_field(c, "chain");
        ck_assert_msg(strcmp(got, want) == 0, "%s: chain %s, expected %s", name,
                      got, want);
        return;
    }
    const char *want = tu_fixture_field(c, "grad_fn");
    ck_assert_msg(strcmp(fn ? cg_node_name(fn) : "-", want) == 0,
                  "%s: grad_fn %s, expected %s", name,
                  fn ? cg_node_name(fn) : "-", want);
    if (fn)
        append_next_names(fn, got, sizeof got);
    else
        append(got, sizeof got, "-");
    want = tu_fixture_field(c, "next");
    ck_assert_msg(strcmp(got, want) == 0, "%s: next %s, expected %s", name, got,
                  want);
}

/* ======================================================================
 * Running a row
 * ====================================================================== */

/* Runs row `k` of `set` and checks it (the list is in fixture.h). */
static void run_row(const tu_fixture_set *set, int k)
{
    char rel[PATH_LEN];
    table_path(set, rel, sizeof rel);
    tu_fixture_case *c = case_open(rel, set, set->suite, k);
    const char *name = tu_fixture_field(c, "case");
    fx_input in[MAX_IN];
    int n = has_column(c, "inputs") ? list_inputs(c, in) : pair_inputs(c, in);
    cg_tensor *leaf[MAX_IN], *seen[MAX_IN], *y = NULL;
    for (int i = 0; i < n; i++) {
        leaf[i] = spec_tensor(c, in[i].base);
        ck_assert_msg(leaf[i] != NULL, "%s: input %d has no base", name, i);
        tu_ok(cg_tensor_requires_grad_(leaf[i], in[i].requires_grad));
        seen[i] = view_of(leaf[i], in[i].view);
    }
    cg_status st = set->op(c, seen, n, &y);
    ck_assert_msg(st == CG_OK, "%s: %s: %s", name, cg_status_name(st),
                  cg_last_error());

    char what[160];
    snprintf(what, sizeof what, "%s: y", name);
    cg_tensor *yref = spec_tensor(c, tu_fixture_field(c, "y"));
    ck_assert_msg(yref != NULL, "%s: the row has no y", name);
    cg_dtype ydt = cg_tensor_dtype(yref);
    assert_close(y, yref, tol_of(set, ydt), what);
    check_graph(c, y);

    if (cg_tensor_requires_grad(y)) {
        cg_tensor *gy = spec_tensor(c, tu_fixture_field(c, "gy"));
        ck_assert_msg(gy != NULL, "%s: y requires grad, the row has no gy",
                      name);
        tu_ok(cg_tensor_backward(y, gy, false));
        cg_tensor_release(gy);
    }
    for (int i = 0; i < n; i++) {
        snprintf(what, sizeof what, "%s: grad of input %d", name, i);
        cg_tensor *g = spec_tensor(c, in[i].grad);
        if (g) {
            double tol =
                fmax(tol_of(set, cg_tensor_dtype(g)), tol_of(set, ydt));
            assert_close(cg_tensor_grad(leaf[i]), g, tol, what);
        } else {
            ck_assert_msg(cg_tensor_grad(leaf[i]) == NULL,
                          "%s: PyTorch has none", what);
        }
        cg_tensor_release(g);
    }

    for (int i = 0; i < n; i++) {
        cg_tensor_release(seen[i]);
        cg_tensor_release(leaf[i]);
    }
    cg_tensor_release(yref);
    cg_tensor_release(y);
    tu_fixture_close(c);
}

/* ======================================================================
 * Building the suites
 * ====================================================================== */

TCase *tu_suite_tcase(Suite *s, const char *name, double timeout)
{
    TCase *tc = tcase_create(name);
    if (timeout > 0)
        tcase_set_timeout(tc, timeout);
    suite_add_tcase(s, tc);
    return tc;
}

/* One Check loop test, fixture_row, runs the rows of every set added: set
 * j owns loop indices [first, first + count) of slots[j]. The slots are
 * filled while the suite is built and read by the tests, which Check runs
 * afterwards in this process or in a fork of it. */
enum { MAX_SETS = 8 };
static struct {
    const tu_fixture_set *set;
    int first, count;
} slots[MAX_SETS];
static int n_slots;
static int next_index; /* the first loop index not yet given to a set */

START_TEST(fixture_row)
{
    for (int j = 0; j < n_slots; j++)
        if (_i >= slots[j].first && _i < slots[j].first + slots[j].count) {
            run_row(slots[j].set, _i - slots[j].first);
            return;
        }
    ck_abort_msg("no fixture set owns row %d: over %d sets were added", _i,
                 MAX_SETS);
}
END_TEST

TCase *tu_fixture_tcase(Suite *s, const char *name, const tu_fixture_set *set)
{
    TCase *tc = tu_suite_tcase(s, name, 0);
    char rel[PATH_LEN];
    table_path(set, rel, sizeof rel);
    int first = next_index, count = count_rows(rel, set->suite);
    next_index += count;
    if (n_slots < MAX_SETS) {
        slots[n_slots].set = set;
        slots[n_slots].first = first;
        slots[n_slots].count = count;
        n_slots++;
    }
    tcase_add_loop_test(tc, fixture_row, first, first + count);
    return tc;
}
