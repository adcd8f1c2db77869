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
    for (int64_t i = 0; i < n; i++) {
        double d = fabs(a[i] - b[i]);
        ck_assert_msg(d <= tol * scale,
                      "%s: value %lld is %.17g, expected %.17g "
                      "(diff %.3g > %.3g)",
                      what, (long long)i, a[i], b[i], d, tol * scale);
    }
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
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(memcmp(&a[i], &b[i], sizeof(double)) == 0 ||
                          (isnan(a[i]) && isnan(b[i])),
                      "%s: value %lld is %.17g, expected %.17g", what,
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
