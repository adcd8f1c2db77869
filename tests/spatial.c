/* spatial.c -- the shared layout of the spatial layers' suites (see
 * spatial.h). */
#include "spatial.h"

#define DIR "nn/spatial/"

/* The suite being built: set by tu_spatial_suite_create, read by the tests,
 * which Check runs afterwards in this process or in a fork of it. */
static tu_spatial_suite suite;

START_TEST(error_row)
{
    const char *id = suite.error_ids[_i];
    tu_fixture_assert_error(DIR "errors.tsv", id, suite.error_call(id));
}
END_TEST

START_TEST(threads)
{
    tu_assert_same_for_threads(suite.threads_run, NULL, suite.n_threads_res);
}
END_TEST

START_TEST(alloc)
{
    ck_assert_int_gt(tu_alloc_sweep(suite.alloc_scenario, NULL, suite.name),
                     suite.alloc_min);
}
END_TEST

Suite *tu_spatial_suite_create(const tu_spatial_suite *d)
{
    suite = *d;
    Suite *s = suite_create(d->name);
    TCase *tc = tu_suite_tcase(s, "torch", 0);
    tcase_add_loop_test(tc, d->torch_case, 0, 2 * d->ncases);
    tc = tu_suite_tcase(s, "repr", 0);
    tcase_add_test(tc, d->reprs);
    tc = tu_suite_tcase(s, "errors", 0);
    tcase_add_loop_test(tc, error_row, 0, d->nerrors);
    tcase_add_test(tc, d->more_errors);
    tc = tu_suite_tcase(s, "gradcheck", 60);
    tcase_add_test(tc, d->gradcheck);
    tc = tu_suite_tcase(s, "threads", 60);
    tcase_add_test(tc, threads);
    tc = tu_suite_tcase(s, "alloc", 120);
    tcase_add_test(tc, alloc);
    return s;
}

tu_spatial_case tu_spatial_case_open(int i)
{
    tu_spatial_case sc = {0};
    ck_assert_msg(i >= 0 && i < 2 * suite.ncases, "no case %d", i);
    sc.id = suite.cases[i / 2];
    sc.dt = i % 2 ? "f64" : "f32";
    sc.dtype = i % 2 ? CG_FLOAT64 : CG_FLOAT32;
    sc.tol = i % 2 ? suite.tol_f64 : suite.tol_f32;
    sc.c = tu_fixture_row(DIR "cases.tsv", sc.id);
    return sc;
}

void tu_spatial_case_load_io(tu_spatial_case *sc)
{
    sc->x = tu_fixture_npy(sc->c, sc->dt, "x");
    sc->y_ref = tu_fixture_npy(sc->c, sc->dt, "y");
    sc->gy = tu_fixture_npy(sc->c, sc->dt, "gy");
    sc->gx_ref = tu_fixture_npy(sc->c, sc->dt, "gx");
    tu_ok(cg_tensor_requires_grad_(sc->x, true));
}

void tu_spatial_case_close(tu_spatial_case *sc)
{
    tu_fixture_close(sc->c);
    cg_tensor_release(sc->x);
    cg_tensor_release(sc->y_ref);
    cg_tensor_release(sc->gy);
    cg_tensor_release(sc->gx_ref);
    *sc = (tu_spatial_case){0};
}

void tu_spatial_assert_repr(const cg_module *m, const char *id)
{
    char buf[512];
    tu_ok(cg_module_repr(m, buf, sizeof buf, NULL));
    tu_fixture_case *c = tu_fixture_row(DIR "reprs.tsv", id);
    ck_assert_str_eq(buf, tu_fixture_field(c, "repr"));
    tu_fixture_close(c);
}
