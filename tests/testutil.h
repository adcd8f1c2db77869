/* testutil.h -- helpers shared by the Check suites: data files, value
 * comparisons, and an allocator that fails the N-th allocation. */
#ifndef CGRAD_TESTUTIL_H
#define CGRAD_TESTUTIL_H

#include "cgrad.h"

#include <check.h>

/** Path of a file under tests/data (static buffer, one at a time). */
const char *tu_data_path(const char *rel);
/** Loads tests/data/<rel> (.npy); fails the test on error. */
cg_tensor *tu_load(const char *rel);
/** Reads a whole text file into a malloc'd NUL-terminated string, or
 *  NULL if it does not exist. */
char *tu_read_text(const char *path);
/** A tab-separated table read whole: a header line naming the columns,
 *  then one row per line. */
typedef struct tu_table {
    char *text;
    int ncols, nrows;
    char **cells; /* nrows * ncols, the header excluded */
    char *head[16];
} tu_table;
/** Reads tests/data/<rel>; fails the test when the file cannot be read or
 *  a row has another number of fields than the header. */
tu_table tu_table_load(const char *rel);
/** Row r's field of `column`; fails the test for a column not in the
 *  header. */
const char *tu_table_cell(const tu_table *t, int r, const char *column);
void tu_table_free(tu_table *t);
/** Cuts s in place at each `sep` into at most cap fields; their count. */
int tu_split(char *s, char sep, char **out, int cap);
/** The value of "key=" in a "k=v,k=v" list, copied into buf (cut to
 *  size - 1 bytes); NULL when the key is absent. */
const char *tu_opt_value(const char *list, const char *key, char *buf,
                         size_t size);
/** Asserts `st` is CG_OK, printing the last error otherwise. */
#define tu_ok(expr)                                                            \
    do {                                                                       \
        cg_status tu_st_ = (expr);                                             \
        ck_assert_msg(tu_st_ == CG_OK, "%s failed: %s: %s", #expr,             \
                      cg_status_name(tu_st_), cg_last_error());                \
    } while (0)
/** Asserts `expr` fails with status `status` and exactly message `msg`. */
#define tu_fails(expr, status, msg)                                            \
    do {                                                                       \
        cg_status tu_st_ = (expr);                                             \
        ck_assert_msg(tu_st_ == (status), "%s: expected %s, got %s (%s)",      \
                      #expr, cg_status_name(status), cg_status_name(tu_st_),   \
                      cg_last_error());                                        \
        ck_assert_str_eq(cg_last_error(), (msg));                              \
    } while (0)

/** Max |got - ref| <= tol * max(1, max|ref|) over all elements (same
 *  shape required). Complex values compare re and im separately. */
void tu_assert_close(const cg_tensor *got, const cg_tensor *ref, double tol,
                     const char *what);
/** Same shape, dtype and bit-identical values. */
void tu_assert_bitwise(const cg_tensor *got, const cg_tensor *ref,
                       const char *what);
/** Same shape (ndim and sizes). */
void tu_assert_shape(const cg_tensor *t, const int64_t *shape, int ndim);
/** repr(t) into a malloc'd string. */
char *tu_repr(const cg_tensor *t);

/** cg_randn after cg_manual_seed(7): the same values for the same shape
 *  and dtype on every call. Fails the test on error. */
cg_tensor *tu_randn(const int64_t *shape, int ndim, cg_dtype dt);
/** sum(y).backward(), the sum freed again; the first failing status, so
 *  that an allocation-failure scenario can chain it. */
cg_status tu_sum_backward(cg_tensor *y);
/** Runs `run` with 1 thread and then with 3 (the thread count is restored
 *  after); each run stores n (at most 8) new references in res. Asserts
 *  that the two runs' tensors are bit-identical ("1 vs 3 threads") and
 *  releases them. */
void tu_assert_same_for_threads(void (*run)(void *ctx, cg_tensor **res),
                                void *ctx, int n);

/* ---- allocation failure injection ------------------------------------ */

/** Installs the counting allocator; allocation number `fail_at` (1-based)
 *  and only that one returns NULL (0: none fails). Resets counters. */
void tu_alloc_begin(long fail_at);
/** Restores the C allocator; returns how many allocations were made. */
long tu_alloc_end(void);
/** Live (allocated and not freed) blocks made since tu_alloc_begin. */
long tu_alloc_live(void);
/** True when the injected failure happened. */
bool tu_alloc_failed(void);

/** Runs `scenario` once to count its allocations, then once per
 *  allocation with that allocation failing. Each run must return CG_OK
 *  (only when the failing allocation was not reached) or CG_ERR_NOMEM
 *  with a message, and must free everything it made (live blocks back to
 *  zero). Returns the number of allocations failed in turn. */
long tu_alloc_sweep(cg_status (*scenario)(void *ctx), void *ctx,
                    const char *what);

#endif
