/* test_complex.c -- view_as_real, real, imag and complex() against PyTorch
 * 1.13.
 *
 * TCases:
 *   torch      every "complex" row of tests/data/ops/reduce/cases.tsv (made
 *              by tests/data/ops/gen_reduce.py): values, gradients and the
 *              grad_fn chains (SelectBackward0 over ViewAsRealBackward0 for
 *              .real / .imag), strided and 0-d inputs, broadcasting
 *   views      the views share storage with PyTorch's strides and offsets,
 *              writes show through, a.real of a real tensor is a itself
 *   errors     PyTorch's messages, in its order, arguments untouched
 *   alloc      every allocation of forward + backward fails in turn
 *   gradcheck  finite differences (complex128 in, float64 in)
 */
#include "testutil.h"
#include "fixture.h"
#include "tensor_internal.h"

#include <string.h>

/* views and complex() only move values; sum_to adds a few */
#define TOL_F32 1e-6
#define TOL_F64 1e-14

/* ======================================================================
 * torch
 * ====================================================================== */

static cg_status complex_op(const tu_fixture_case *c, cg_tensor *const *in,
                            int n, cg_tensor **out)
{
    const char *op = tu_fixture_field(c, "op");
    if (strcmp(op, "complex") == 0) {
        ck_assert_int_eq(n, 2);
        return cg_complex(in[0], in[1], out);
    }
    ck_assert_int_eq(n, 1);
    if (strcmp(op, "view_as_real") == 0)
        return cg_view_as_real(in[0], out);
    if (strcmp(op, "real") == 0)
        return cg_real(in[0], out);
    ck_assert_str_eq(op, "imag");
    return cg_imag(in[0], out);
}

/* The "complex" rows of tests/data/ops/reduce (see gen_reduce.py). */
static const tu_fixture_set torch_cases = {"ops/reduce", "complex", complex_op,
                                           TOL_F32, TOL_F64};

/* ======================================================================
 * views
 * ====================================================================== */

static void assert_geometry(const cg_tensor *t, int ndim, const int64_t *shape,
                            const int64_t *strides, int64_t offset)
{
    tu_assert_shape(t, shape, ndim);
    for (int i = 0; i < ndim; i++)
        ck_assert_int_eq(cg_tensor_strides(t)[i], strides[i]);
    ck_assert_int_eq(cg_tensor_storage_offset(t), offset);
}

START_TEST(test_views)
{
    /* PyTorch: view_as_real(randn(2, 3, cfloat)) has strides (6, 2, 1);
     * of its .t(): shape (3, 2, 2), strides (2, 6, 1); .real / .imag of
     * (2, 3): strides (6, 2), offsets 0 and 1 */
    int64_t s23[2] = {2, 3};
    cg_tensor *z = NULL, *v = NULL, *t = NULL, *vt = NULL, *re = NULL,
              *im = NULL, *row = NULL, *vr = NULL;
    cg_manual_seed(5);
    tu_ok(cg_randn(s23, 2, CG_COMPLEX64, NULL, &z));
    tu_ok(cg_view_as_real(z, &v));
    ck_assert(cg_tensor_shares_storage(z, v));
    ck_assert_int_eq(cg_tensor_dtype(v), CG_FLOAT32);
    assert_geometry(v, 3, (int64_t[]){2, 3, 2}, (int64_t[]){6, 2, 1}, 0);
    tu_ok(cg_tensor_t(z, &t));
    tu_ok(cg_view_as_real(t, &vt));
    assert_geometry(vt, 3, (int64_t[]){3, 2, 2}, (int64_t[]){2, 6, 1}, 0);
    tu_ok(cg_real(z, &re));
    tu_ok(cg_imag(z, &im));
    assert_geometry(re, 2, s23, (int64_t[]){6, 2}, 0);
    assert_geometry(im, 2, s23, (int64_t[]){6, 2}, 1);
    /* a view with an offset: z[1] starts at complex element 3 */
    tu_ok(cg_tensor_select(z, 0, 1, &row));
    tu_ok(cg_view_as_real(row, &vr));
    assert_geometry(vr, 2, (int64_t[]){3, 2}, (int64_t[]){2, 1}, 6);
    /* writes through the real view show in the complex tensor */
    int64_t at[3] = {1, 2, 1}, zat[2] = {1, 2};
    tu_ok(cg_tensor_set(v, at, -7.5, 0.0));
    double a, b;
    tu_ok(cg_tensor_get(z, zat, &a, &b));
    ck_assert(b == -7.5);
    tu_ok(cg_tensor_get(im, zat, &a, &b));
    ck_assert(a == -7.5);
    cg_tensor *all[] = {z, v, t, vt, re, im, row, vr};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        cg_tensor_release(all[i]);
}
END_TEST

START_TEST(test_real_of_real)
{
    cg_tensor *x = NULL, *r = NULL, *s = NULL, *v = NULL;
    tu_ok(cg_tensor_literal("[1., 2.]", &x));
    tu_ok(cg_real(x, &r));
    ck_assert_ptr_eq(r, x); /* torch.real(x) is x */
    cg_tensor_release(r);
    /* 0-d complex: view_as_real gives shape [2] */
    tu_ok(cg_tensor_literal("1-2j", &s));
    tu_ok(cg_view_as_real(s, &v));
    assert_geometry(v, 1, (int64_t[]){2}, (int64_t[]){1}, 0);
    cg_tensor_release(v);
    cg_tensor_release(s);
    cg_tensor_release(x);
}
END_TEST

/* ======================================================================
 * errors
 * ====================================================================== */

static cg_tensor *zt(const int64_t *shape, int ndim, cg_dtype dt)
{
    cg_tensor *t = NULL;
    tu_ok(cg_zeros(shape, ndim, dt, &t));
    tu_ok(cg_tensor_requires_grad_(t, true));
    return t;
}

START_TEST(test_errors)
{
    int64_t s23[2] = {2, 3}, s3 = 3, s4 = 4;
    cg_tensor *f = zt(s23, 2, CG_FLOAT32), *d = zt(s23, 2, CG_FLOAT64);
    cg_tensor *c = zt(s23, 2, CG_COMPLEX64), *z = zt(s23, 2, CG_COMPLEX128);
    cg_tensor *f3 = zt(&s3, 1, CG_FLOAT32), *f4 = zt(&s4, 1, CG_FLOAT32);
    cg_tensor *out = NULL;
    tu_fails(cg_view_as_real(f, &out), CG_ERR_RUNTIME,
             "view_as_real is only supported for complex tensors");
    tu_fails(cg_imag(d, &out), CG_ERR_RUNTIME,
             "imag is not implemented for tensors with non-complex dtypes.");
    tu_fails(cg_complex(c, c, &out), CG_ERR_RUNTIME,
             "Expected both inputs to be Half, Float or Double tensors but "
             "got ComplexFloat and ComplexFloat");
    tu_fails(cg_complex(c, f, &out), CG_ERR_RUNTIME,
             "Expected both inputs to be Half, Float or Double tensors but "
             "got ComplexFloat and Float");
    tu_fails(cg_complex(f, c, &out), CG_ERR_RUNTIME,
             "Expected both inputs to be Half, Float or Double tensors but "
             "got Float and ComplexFloat");
    tu_fails(cg_complex(z, z, &out), CG_ERR_RUNTIME,
             "Expected both inputs to be Half, Float or Double tensors but "
             "got ComplexDouble and ComplexDouble");
    tu_fails(cg_complex(f, d, &out), CG_ERR_RUNTIME,
             "Expected object of scalar type Float but got scalar type Double "
             "for second argument");
    tu_fails(cg_complex(d, f, &out), CG_ERR_RUNTIME,
             "Expected object of scalar type Double but got scalar type Float "
             "for second argument");
    /* the dtype check comes before broadcasting */
    tu_fails(cg_complex(d, f4, &out), CG_ERR_RUNTIME,
             "Expected object of scalar type Double but got scalar type Float "
             "for second argument");
    tu_fails(cg_complex(f, f4, &out), CG_ERR_RUNTIME,
             "The size of tensor a (3) must match the size of tensor b (4) at "
             "non-singleton dimension 1");
    tu_fails(cg_view_as_real(NULL, &out), CG_ERR_MISUSE,
             "tensor must not be NULL");
    tu_fails(cg_real(c, NULL), CG_ERR_MISUSE, "out must not be NULL");
    tu_fails(cg_imag(NULL, &out), CG_ERR_MISUSE, "tensor must not be NULL");
    tu_fails(cg_complex(NULL, f, &out), CG_ERR_MISUSE, "real must not be NULL");
    tu_fails(cg_complex(f, NULL, &out), CG_ERR_MISUSE, "imag must not be NULL");
    tu_fails(cg_complex(f, f3, NULL), CG_ERR_MISUSE, "out must not be NULL");
    ck_assert_ptr_null(out);
    /* cgrad's dimension limit: no room for the trailing 2 */
    int64_t ones[CG_MAX_DIMS];
    for (int i = 0; i < CG_MAX_DIMS; i++)
        ones[i] = 1;
    cg_tensor *big = zt(ones, CG_MAX_DIMS, CG_COMPLEX64);
    tu_fails(cg_view_as_real(big, &out), CG_ERR_RUNTIME,
             "cgrad tensors have at most 16 dimensions, but got 17");
    cg_tensor *all[] = {f, d, c, z, f3, f4, big};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++) {
        ck_assert_ptr_null(cg_tensor_grad_fn(all[i]));
        cg_tensor_release(all[i]);
    }
}
END_TEST

/* ======================================================================
 * alloc
 * ====================================================================== */

/* complex(re (2, 1), im (3,)) -> .real + view_as_real(...).sum() of .imag
 * parts, each summed; backward. */
static cg_status alloc_scenario(void *ctx)
{
    (void)ctx;
    int64_t s21[2] = {2, 1}, s3 = 3;
    cg_tensor *re = NULL, *im = NULL, *z = NULL, *a = NULL, *b = NULL,
              *v = NULL, *parts[3] = {NULL}, *sum = NULL;
    cg_status st = cg_ones(s21, 2, CG_FLOAT32, &re);
    if (st == CG_OK)
        st = cg_ones(&s3, 1, CG_FLOAT32, &im);
    if (st == CG_OK)
        st = cg_tensor_requires_grad_(re, true);
    if (st == CG_OK)
        st = cg_tensor_requires_grad_(im, true);
    if (st == CG_OK)
        st = cg_complex(re, im, &z);
    if (st == CG_OK)
        st = cg_real(z, &a);
    if (st == CG_OK)
        st = cg_imag(z, &b);
    if (st == CG_OK)
        st = cg_view_as_real(z, &v);
    if (st == CG_OK)
        st = cg_sum(a, &parts[0]);
    if (st == CG_OK)
        st = cg_sum(b, &parts[1]);
    if (st == CG_OK)
        st = cg_sum(v, &parts[2]);
    if (st == CG_OK) {
        int64_t one = 1;
        cg_tensor *p1[3] = {NULL};
        for (int i = 0; i < 3 && st == CG_OK; i++)
            st = cg_tensor_reshape(parts[i], &one, 1, &p1[i]);
        if (st == CG_OK)
            st = cg_cat(p1, 3, 0, &sum);
        for (int i = 0; i < 3; i++)
            cg_tensor_release(p1[i]);
    }
    cg_tensor *total = NULL;
    if (st == CG_OK)
        st = cg_sum(sum, &total);
    if (st == CG_OK)
        st = cg_tensor_backward(total, NULL, false);
    cg_tensor *all[] = {total, sum, parts[0], parts[1], parts[2], v,
                        b,     a,   z,        im,       re};
    for (size_t i = 0; i < sizeof all / sizeof *all; i++)
        cg_tensor_release(all[i]);
    return st;
}

START_TEST(test_alloc)
{
    ck_assert_int_gt(tu_alloc_sweep(alloc_scenario, NULL, "complex"), 0);
}
END_TEST

/* ======================================================================
 * gradcheck
 * ====================================================================== */

enum { GC_VIEW_AS_REAL, GC_REAL, GC_IMAG, GC_COMPLEX, GC_COMPLEX_T };

static cg_status gc_fn(cg_tensor *const *in, int n, cg_tensor **out, void *user)
{
    (void)n;
    int op = *(const int *)user;
    cg_tensor *t = NULL;
    cg_status st;
    switch (op) {
    case GC_VIEW_AS_REAL:
        return cg_view_as_real(in[0], out);
    case GC_REAL:
        return cg_real(in[0], out);
    case GC_IMAG:
        return cg_imag(in[0], out);
    case GC_COMPLEX:
        return cg_complex(in[0], in[1], out);
    default: /* complex(re.t(), im), broadcast */
        if ((st = cg_tensor_t(in[0], &t)) != CG_OK)
            return st;
        st = cg_complex(t, in[1], out);
        cg_tensor_release(t);
        return st;
    }
}

START_TEST(test_gradcheck)
{
    static const struct {
        int op, n;
        cg_dtype dt;
        int ndim[2];
        int64_t shape[2][2];
    } cases[] = {
        {GC_VIEW_AS_REAL, 1, CG_COMPLEX128, {2}, {{2, 3}}},
        {GC_VIEW_AS_REAL, 1, CG_COMPLEX128, {0}, {{0}}},
        {GC_REAL, 1, CG_COMPLEX128, {2}, {{3, 2}}},
        {GC_IMAG, 1, CG_COMPLEX128, {1}, {{4}}},
        {GC_REAL, 1, CG_FLOAT64, {2}, {{2, 2}}},
        {GC_COMPLEX, 2, CG_FLOAT64, {2, 2}, {{2, 3}, {2, 3}}},
        {GC_COMPLEX, 2, CG_FLOAT64, {2, 1}, {{2, 1}, {3}}},
        {GC_COMPLEX_T, 2, CG_FLOAT64, {2, 2}, {{3, 2}, {1, 3}}},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        cg_tensor *in[2] = {NULL};
        for (int i = 0; i < cases[k].n; i++) {
            cg_manual_seed(30 + 2 * k + i);
            tu_ok(cg_randn(cases[k].shape[i], cases[k].ndim[i], cases[k].dt,
                           NULL, &in[i]));
            tu_ok(cg_tensor_requires_grad_(in[i], true));
        }
        cg_gradcheck_result r;
        tu_ok(cg_gradcheck(gc_fn, (void *)&cases[k].op, in, cases[k].n, NULL,
                           &r));
        ck_assert_msg(r.passed, "case %zu: %s", k, r.message);
        for (int i = 0; i < cases[k].n; i++)
            cg_tensor_release(in[i]);
    }
}
END_TEST

Suite *complex_suite(void)
{
    Suite *s = suite_create("complex");
    tu_fixture_tcase(s, "torch", &torch_cases);
    TCase *tc = tu_suite_tcase(s, "views", 0);
    tcase_add_test(tc, test_views);
    tcase_add_test(tc, test_real_of_real);
    tcase_add_test(tu_suite_tcase(s, "errors", 0), test_errors);
    tcase_add_test(tu_suite_tcase(s, "alloc", 120), test_alloc);
    tcase_add_test(tu_suite_tcase(s, "gradcheck", 120), test_gradcheck);
    return s;
}
