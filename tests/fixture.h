/* fixture.h -- PyTorch golden fixtures for the op suites: a case table
 * (tests/data/<dir>/cases.tsv) and the tensors it names (packed into
 * values_<dt>.npy next to it), as written by tests/data/ops/gen_arith.py
 * and tests/data/ops/gen_reduce.py. Each row is one case: inputs made from
 * stored bases (the leaves), an op, the expected output, its grad_fn graph,
 * the gradient fed to y.backward(gy) and the expected leaf gradients.
 *
 * A suite describes its rows once, with a tu_fixture_set and a function
 * that runs a row's op, and adds them with tu_fixture_tcase:
 *
 *     static const tu_fixture_set torch_cases = {
 *         "ops/reduce", "softmax", softmax_op, TOL_F32, TOL_F64};
 *     ...
 *     tu_fixture_tcase(s, "torch", &torch_cases);
 *
 * Every row then runs as one test that checks all the row records. */
#ifndef CGRAD_FIXTURE_H
#define CGRAD_FIXTURE_H

#include "testutil.h"

/** One row of a case table while it runs (opaque; see the accessors). */
typedef struct tu_fixture_case tu_fixture_case;

/** Runs the row's op on `in` (n inputs, already viewed as the row says)
 *  and returns the op's status, with the result in *out. May use Check's
 *  asserts (it runs inside the row's test). */
typedef cg_status (*tu_fixture_op)(const tu_fixture_case *c,
                                   cg_tensor *const *in, int n,
                                   cg_tensor **out);

/** The rows of one suite in one fixture directory, how to run them and
 *  how closely to check them. Values and gradients must lie within
 *  tol * max(1, max |finite expected value|); NaN must match NaN and an
 *  infinity itself. */
typedef struct tu_fixture_set {
    const char *dir;   /* under tests/data, e.g. "ops/reduce" */
    const char *suite; /* the rows' first column, e.g. "softmax" */
    tu_fixture_op op;  /* runs a row's op */
    double tol_f32;    /* tolerance for float32 and complex64 values */
    double tol_f64;    /* tolerance for float64 and complex128 values */
} tu_fixture_set;

/** Adds a TCase named `name` to suite `s` with one test per row of `set`
 *  and returns it (owned by s; more tests may be added to it). `set` must
 *  stay valid while the suite runs (make it static). Call it while the
 *  suite is being built: it counts the rows with plain stdio, and when the
 *  table cannot be read or has no such rows it says so on stderr and adds
 *  one test, which fails with the reason.
 *
 *  The test of row k (0-based among the rows of set->suite) fails at the
 *  first of these that does not hold:
 *  - the op returns CG_OK;
 *  - y has the stored output's dtype, shape and values;
 *  - y's graph: the whole grad_fn chain ("chain" column, gen_reduce.py's
 *    notation), or y.grad_fn's name and the names of its next_functions
 *    ("grad_fn" and "next" columns, gen_arith.py);
 *  - when y requires grad, after y.backward(gy): each leaf that PyTorch
 *    gave a gradient has one with the stored dtype, shape and values, and
 *    every other leaf has none. A gradient is held to the looser of its
 *    own dtype's tolerance and y's (PyTorch computed a float64 leaf's
 *    gradient through a float32 y in float32). */
TCase *tu_fixture_tcase(Suite *s, const char *name, const tu_fixture_set *set);

/* ---- for tu_fixture_op: the row's other columns ---------------------- */

/** The field of `column` (a name from the table's header line); fails the
 *  test when the table has no such column. Borrowed from the case. */
const char *tu_fixture_field(const tu_fixture_case *c, const char *column);
/** The field of `column` read as a number (Python's repr of a float). */
double tu_fixture_number(const tu_fixture_case *c, const char *column);

/* The "args" column holds key=value pairs separated by ' ' (the ops
 * tables: "dim=-1 keepdim=1") or ';' (nn/spatial: "k=2,1,3;s=1"). The
 * readers of a value fail the test when `key` is missing or malformed. */

/** Whether the "args" column has the argument `key`. */
bool tu_fixture_has_arg(const tu_fixture_case *c, const char *key);
/** Whether the argument `key` is there and is exactly `text` ("None"). */
bool tu_fixture_arg_is(const tu_fixture_case *c, const char *key,
                       const char *text);
/** The integer argument `key` of the "args" column ("dim=-1"). */
int64_t tu_fixture_arg_int(const tu_fixture_case *c, const char *key);
/** The list argument `key` of the "args" column, entries separated by
 *  `sep` ("dims=0,2" with ',', "shape=2x3x4" with 'x', "dims=" is empty),
 *  into v (at most max entries, out). Returns the number of entries. */
int tu_fixture_arg_list(const tu_fixture_case *c, const char *key, char sep,
                        int64_t *v, int max);
/** The list argument `key` of ints separated by ',' ("k=2,1,3"). */
cg_ints tu_fixture_arg_ints(const tu_fixture_case *c, const char *key);
/** The argument `key` read as a number ("eps=0.001"). */
double tu_fixture_arg_number(const tu_fixture_case *c, const char *key);
/** The list argument `key` of numbers separated by `sep` ("scale=1.7,2.5"
 *  with ','), into v (at most max entries, out). Returns the number of
 *  entries. */
int tu_fixture_arg_numbers(const tu_fixture_case *c, const char *key, char sep,
                           double *v, int max);

/* ---- one row of any table ------------------------------------------- */

/** Opens the row whose first field is `id` in tests/data/<table> (tab
 *  separated; lines starting with '#' are comments, the first other line
 *  is the header; fields may escape \\, \t and \n), for the accessors
 *  above; fails the test when there is none. Close it with
 *  tu_fixture_close. */
tu_fixture_case *tu_fixture_row(const char *table, const char *id);
/** Opens row k (0-based, after the header) of tests/data/<table>. */
tu_fixture_case *tu_fixture_row_at(const char *table, int k);
/** Frees a row from tu_fixture_row(_at) and what it loaded; NULL is
 *  fine. Fields read from it are then gone. */
void tu_fixture_close(tu_fixture_case *c);
/** The number of rows of tests/data/<table>, for tcase_add_loop_test while
 *  a suite is built (plain stdio); 1, after saying why on stderr, when the
 *  table cannot be read or has no rows, so that the one test fails. */
int tu_fixture_count(const char *table);
/** Asserts that `st`, the status of the call of row `id` of an errors
 *  table tests/data/<table>, is its "exception" (cg_status_name) and that
 *  cg_last_error() is its "message", word for word. */
void tu_fixture_assert_error(const char *table, const char *id, cg_status st);
/** Loads "<id>_<dt>_<what>.npy" beside the row's table, id being the row's
 *  first field (gen_spatial.py's names: "mp1_f32_gx.npy"). */
cg_tensor *tu_fixture_npy(const tu_fixture_case *c, const char *dt,
                          const char *what);

/* ---- building the suites ------------------------------------------- */

/** Adds a TCase named `name` to suite `s`, its tests limited to `timeout`
 *  seconds each (0 keeps Check's default), and returns it (owned by s)
 *  for tcase_add_test / tcase_add_loop_test. */
TCase *tu_suite_tcase(Suite *s, const char *name, double timeout);

#endif
