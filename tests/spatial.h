/* spatial.h -- what the suites of the spatial layers share (test_pooling.c,
 * test_upsample.c, test_batch_norm.c), whose PyTorch data gen_spatial.py
 * wrote to tests/data/nn/spatial: one layout of TCases, the rows of
 * cases.tsv run in float32 and float64, reprs.tsv and errors.tsv.
 *
 * A suite describes itself once and builds from that:
 *
 *     Suite *pooling_suite(void)
 *     {
 *         const tu_spatial_suite d = {
 *             .name = "pooling", .cases = cases, .ncases = NCASES, ...};
 *         return tu_spatial_suite_create(&d);
 *     }
 *
 * and its torch_case opens its row with tu_spatial_case_open(_i). */
#ifndef CGRAD_SPATIAL_H
#define CGRAD_SPATIAL_H

#include "cgrad_nn.h"
#include "fixture.h"

/** One spatial suite: its rows, its tests and how closely it checks. */
typedef struct tu_spatial_suite {
    const char *name;         /* the suite's, e.g. "pooling" */
    const char *const *cases; /* ids of its rows of cases.tsv */
    int ncases;
    double tol_f32, tol_f64; /* tolerances of the float32, float64 runs */
    const TTest *torch_case; /* run for loop indices 0 to 2 * ncases */
    const TTest *reprs;
    const char *const *error_ids; /* ids of its rows of errors.tsv */
    int nerrors;
    /* makes row id's call, which should fail, and returns its status */
    cg_status (*error_call)(const char *id);
    const TTest *more_errors; /* one more test of TCase "errors" */
    const TTest *gradcheck;
    /* one run of the "threads" test: n_threads_res new references in res,
     * see tu_assert_same_for_threads */
    void (*threads_run)(void *ctx, cg_tensor **res);
    int n_threads_res;
    cg_status (*alloc_scenario)(void *ctx); /* for tu_alloc_sweep */
    long alloc_min; /* the sweep must fail more allocations than this */
} tu_spatial_suite;

/** Builds the suite `d` describes (d is copied; one per process), with
 *  these TCases and tests:
 *  - "torch": torch_case, loop indices 0 to 2 * ncases;
 *  - "repr": reprs;
 *  - "errors": error_row, one per error id: tu_fixture_assert_error of
 *    errors.tsv on error_call(id); then more_errors;
 *  - "gradcheck" (60 s): gradcheck;
 *  - "threads" (60 s): threads, tu_assert_same_for_threads(threads_run);
 *  - "alloc" (120 s): alloc, tu_alloc_sweep(alloc_scenario) with the
 *    suite's name fails over alloc_min allocations. */
Suite *tu_spatial_suite_create(const tu_spatial_suite *d);

/** A run of torch_case: a row of cases.tsv in one dtype. */
typedef struct tu_spatial_case {
    tu_fixture_case *c; /* the row */
    const char *id;     /* its id, e.g. "mp1" */
    const char *dt;     /* "f32" or "f64", for tu_fixture_npy */
    cg_dtype dtype;     /* CG_FLOAT32 or CG_FLOAT64 */
    double tol;         /* the suite's tol_f32 or tol_f64 */
    /* from tu_spatial_case_load_io, NULL before: the input (requiring
     * grad), the expected output, the gradient fed to y.backward(gy) and
     * the input's expected gradient */
    cg_tensor *x, *y_ref, *gy, *gx_ref;
} tu_spatial_case;

/** Loop index i of torch_case: row cases[i / 2], in float32 for even i
 *  and float64 for odd i. Close it with tu_spatial_case_close. */
tu_spatial_case tu_spatial_case_open(int i);
/** Loads the row's "<id>_<dt>_{x,y,gy,gx}.npy" into x (made to require
 *  grad), y_ref, gy and gx_ref. */
void tu_spatial_case_load_io(tu_spatial_case *sc);
/** Closes the row and releases what tu_spatial_case_load_io loaded. */
void tu_spatial_case_close(tu_spatial_case *sc);

/** Asserts that m's repr is the "repr" of row `id` of reprs.tsv. */
void tu_spatial_assert_repr(const cg_module *m, const char *id);

#endif
