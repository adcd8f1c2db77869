/* testutil.c -- see testutil.h. */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *tu_data_path(const char *rel)
{
    static char buf[4096];
    snprintf(buf, sizeof buf, "%s/%s", CG_TEST_DATA, rel);
    return buf;
}

cg_tensor *tu_load(const char *rel)
{
    cg_tensor *t = NULL;
    cg_status st = cg_load_npy(tu_data_path(rel), &t);
    ck_assert_msg(st == CG_OK, "loading %s: %s: %s", rel, cg_status_name(st),
                  cg_last_error());
    return t;
}

char *tu_read_text(const char *path)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    size_t cap = 4096, n = 0;
    char *s = malloc(cap);
    ck_assert_ptr_nonnull(s);
    size_t r;
    while ((r = fread(s + n, 1, cap - n - 1, f)) > 0) {
        n += r;
        if (cap - n - 1 == 0) {
            cap *= 2;
            s = realloc(s, cap);
            ck_assert_ptr_nonnull(s);
        }
    }
    fclose(f);
    s[n] = '\0';
    return s;
}

void tu_assert_shape(const cg_tensor *t, const int64_t *shape, int ndim)
{
    ck_assert_int_eq(cg_tensor_dim(t), ndim);
    for (int i = 0; i < ndim; i++)
        ck_assert_int_eq(cg_tensor_shape(t)[i], shape[i]);
}

static double *values_of(const cg_tensor *t, int64_t *count)
{
    int64_t n =
        cg_tensor_numel(t) * (cg_dtype_is_complex(cg_tensor_dtype(t)) ? 2 : 1);
    double *v = malloc((size_t)(n ? n : 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    ck_assert_int_eq(cg_tensor_to_doubles(t, v, n), CG_OK);
    *count = n;
    return v;
}

void tu_assert_close(const cg_tensor *got, const cg_tensor *ref, double tol,
                     const char *what)
{
    ck_assert_msg(cg_tensor_dim(got) == cg_tensor_dim(ref),
                  "%s: %d dims, expected %d", what, cg_tensor_dim(got),
                  cg_tensor_dim(ref));
    for (int i = 0; i < cg_tensor_dim(ref); i++)
        ck_assert_msg(cg_tensor_shape(got)[i] == cg_tensor_shape(ref)[i],
                      "%s: size %lld at dim %d, expected %lld", what,
                      (long long)cg_tensor_shape(got)[i], i,
                      (long long)cg_tensor_shape(ref)[i]);
    int64_t n, m;
    double *a = values_of(got, &n), *b = values_of(ref, &m);
    ck_assert_int_eq(n, m);
    double scale = 1.0;
    for (int64_t i = 0; i < m; i++)
        scale = fmax(scale, fabs(b[i]));
    /* the first value off, then one check (Check records every check it
     * passes: one per element makes a large comparison slow) */
    int64_t i = 0;
    while (i < n && fabs(a[i] - b[i]) <= tol * scale)
        i++;
    if (i < n)
        ck_assert_msg(false,
                      "%s: value %lld is %.17g, expected %.17g "
                      "(diff %.3g > %.3g)",
                      what, (long long)i, a[i], b[i], fabs(a[i] - b[i]),
                      tol * scale);
    free(a);
    free(b);
}

void tu_assert_bitwise(const cg_tensor *got, const cg_tensor *ref,
                       const char *what)
{
    ck_assert_msg(cg_tensor_dtype(got) == cg_tensor_dtype(ref),
                  "%s: dtype %s, expected %s", what,
                  cg_dtype_name(cg_tensor_dtype(got)),
                  cg_dtype_name(cg_tensor_dtype(ref)));
    tu_assert_shape(got, cg_tensor_shape(ref), cg_tensor_dim(ref));
    int64_t n, m;
    double *a = values_of(got, &n), *b = values_of(ref, &m);
    ck_assert_int_eq(n, m);
    int64_t i = 0; /* the first value that differs, then one check */
    while (i < n && (memcmp(&a[i], &b[i], sizeof(double)) == 0 ||
                     (isnan(a[i]) && isnan(b[i]))))
        i++;
    if (i < n)
        ck_assert_msg(false, "%s: value %lld is %.17g, expected %.17g", what,
                      (long long)i, a[i], b[i]);
    free(a);
    free(b);
}

char *tu_repr(const cg_tensor *t)
{
    size_t len = 0;
    ck_assert_int_eq(cg_tensor_repr(t, NULL, 0, &len), CG_OK);
    char *s = malloc(len + 1);
    ck_assert_ptr_nonnull(s);
    size_t len2 = 0;
    ck_assert_int_eq(cg_tensor_repr(t, s, len + 1, &len2), CG_OK);
    ck_assert_uint_eq(len, len2);
    return s;
}

cg_tensor *tu_randn(const int64_t *shape, int ndim, cg_dtype dt)
{
    cg_tensor *t = NULL;
    cg_manual_seed(7);
    tu_ok(cg_randn(shape, ndim, dt, NULL, &t));
    return t;
}

cg_status tu_sum_backward(cg_tensor *y)
{
    cg_tensor *sum = NULL;
    cg_status st = cg_sum(y, &sum);
    if (st == CG_OK)
        st = cg_tensor_backward(sum, NULL, false);
    cg_tensor_release(sum);
    return st;
}

void tu_assert_same_for_threads(void (*run)(void *ctx, cg_tensor **res),
                                void *ctx, int n)
{
    enum { MAX_RES = 8 };
    ck_assert_int_le(n, MAX_RES);
    cg_tensor *res[2][MAX_RES];
    int saved = cg_get_num_threads();
    for (int t = 0; t < 2; t++) {
        tu_ok(cg_set_num_threads(t ? 3 : 1));
        run(ctx, res[t]);
    }
    tu_ok(cg_set_num_threads(saved));
    for (int i = 0; i < n; i++) {
        tu_assert_bitwise(res[1][i], res[0][i], "1 vs 3 threads");
        cg_tensor_release(res[0][i]);
        cg_tensor_release(res[1][i]);
    }
}

/* ---- allocation failure injection ------------------------------------ */

static long alloc_count, alloc_fail_at, alloc_live;
static bool alloc_failed;

static void *count_malloc(size_t size, void *user)
{
    (void)user;
    alloc_count++;
    if (alloc_count == alloc_fail_at) {
        alloc_failed = true;
        return NULL;
    }
    void *p = malloc(size);
    if (p)
        alloc_live++;
    return p;
}

static void *count_realloc(void *p, size_t size, void *user)
{
    (void)user;
    alloc_count++;
    if (alloc_count == alloc_fail_at) {
        alloc_failed = true;
        return NULL;
    }
    void *q = realloc(p, size);
    if (q && !p)
        alloc_live++;
    return q;
}

static void count_free(void *p, void *user)
{
    (void)user;
    if (p)
        alloc_live--;
    free(p);
}

void tu_alloc_begin(long fail_at)
{
    alloc_count = 0;
    alloc_live = 0;
    alloc_failed = false;
    alloc_fail_at = fail_at;
    cg_allocator a = {count_malloc, count_realloc, count_free, NULL};
    ck_assert_int_eq(cg_set_allocator(&a), CG_OK);
}

long tu_alloc_end(void)
{
    cg_set_allocator(NULL);
    return alloc_count;
}

long tu_alloc_live(void)
{
    return alloc_live;
}

bool tu_alloc_failed(void)
{
    return alloc_failed;
}

long tu_alloc_sweep(cg_status (*scenario)(void *ctx), void *ctx,
                    const char *what)
{
    tu_alloc_begin(0);
    cg_status st = scenario(ctx);
    long live = tu_alloc_live();
    long total = tu_alloc_end();
    ck_assert_msg(st == CG_OK, "%s: the scenario fails without injection: %s",
                  what, cg_last_error());
    ck_assert_msg(live == 0, "%s: %ld blocks leak without injection", what,
                  live);
    ck_assert_msg(total > 0, "%s: the scenario allocates nothing", what);
    for (long n = 1; n <= total; n++) {
        tu_alloc_begin(n);
        st = scenario(ctx);
        live = tu_alloc_live();
        bool failed = tu_alloc_failed();
        tu_alloc_end();
        ck_assert_msg(failed, "%s: allocation %ld of %ld was never reached",
                      what, n, total);
        ck_assert_msg(st == CG_ERR_NOMEM,
                      "%s: with allocation %ld failing the status is %s (%s)",
                      what, n, cg_status_name(st), cg_last_error());
        ck_assert_msg(cg_last_error()[0] != '\0', "%s: no message", what);
        ck_assert_msg(live == 0,
                      "%s: with allocation %ld failing %ld blocks "
                      "leak",
                      what, n, live);
    }
    return total;
}

/* ---- tab-separated tables and k=v lists ---------------------------------- */

int tu_split(char *s, char sep, char **out, int cap)
{
    int n = 0;
    while (n < cap) {
        out[n++] = s;
        char *e = strchr(s, sep);
        if (!e)
            break;
        *e = '\0';
        s = e + 1;
    }
    return n;
}

tu_table tu_table_load(const char *rel)
{
    tu_table t = {0};
    t.text = tu_read_text(tu_data_path(rel));
    ck_assert_msg(t.text != NULL, "cannot read %s", rel);
    int lines = 0;
    for (char *p = t.text; *p; p++)
        lines += *p == '\n';
    char **rows = malloc(sizeof(char *) * (size_t)(lines + 1));
    ck_assert_ptr_nonnull(rows);
    int nl = tu_split(t.text, '\n', rows, lines + 1);
    while (nl > 0 && rows[nl - 1][0] == '\0')
        nl--;
    t.ncols = tu_split(rows[0], '\t', t.head, 16);
    t.nrows = nl - 1;
    t.cells = malloc(sizeof(char *) * (size_t)(t.nrows * t.ncols + 1));
    ck_assert_ptr_nonnull(t.cells);
    for (int r = 0; r < t.nrows; r++) {
        int n = tu_split(rows[r + 1], '\t', t.cells + r * t.ncols, t.ncols);
        ck_assert_msg(n == t.ncols, "%s row %d has %d columns", rel, r, n);
    }
    free(rows);
    return t;
}

const char *tu_table_cell(const tu_table *t, int r, const char *column)
{
    for (int c = 0; c < t->ncols; c++)
        if (strcmp(t->head[c], column) == 0)
            return t->cells[r * t->ncols + c];
    ck_abort_msg("no column %s", column);
    return NULL;
}

void tu_table_free(tu_table *t)
{
    free(t->text);
    free(t->cells);
    t->text = NULL;
    t->cells = NULL;
}

const char *tu_opt_value(const char *list, const char *key, char *buf,
                         size_t size)
{
    size_t kl = strlen(key);
    const char *p = list;
    while (p && *p) {
        if (strncmp(p, key, kl) == 0 && p[kl] == '=') {
            const char *v = p + kl + 1;
            size_t n = strcspn(v, ",");
            if (n >= size)
                n = size - 1;
            memcpy(buf, v, n);
            buf[n] = '\0';
            return buf;
        }
        p = strchr(p, ',');
        if (p)
            p++;
    }
    return NULL;
}
