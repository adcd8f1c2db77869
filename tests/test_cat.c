/* test_cat.c -- torch.cat against PyTorch 1.13.
 *
 * TCases:
 *   torch      every "cat" row of tests/data/ops/reduce/cases.tsv (made by
 *              tests/data/ops/gen_reduce.py): values, gradients and the
 *              grad_fn chain, for all dtypes, mixed dtypes (promotion),
 *              legacy empty tensors, non-contiguous inputs, inputs that
 *              need no grad
 *   errors     every message, as PyTorch words it, in its order
 *   alloc      every allocation of forward + backward fails in turn
 *   gradcheck  finite differences (float64, complex128, and a float64
 *              input promoted to complex128)
 */
#include "testutil.h"
#include "fixture.h"
#include "tensor_internal.h"

#include <stdlib.h>

/* cat only copies (and converts float32 to wider dtypes exactly) */
#define TOL_F32 1e-7
#define TOL_F64 1e-15

/* ======================================================================
 * torch
 * ====================================================================== */

static cg_status cat_op(const tu_fixture_case *c, cg_tensor *const *in, int n,
                        cg_tensor **out)
{
    ck_assert_str_eq(tu_fixture_field(c, "op"), "cat");
    return cg_cat(in, n, tu_fixture_arg_int(c, "dim"), out);
}

/* The "cat" rows of tests/data/ops/reduce (see gen_reduce.py). */
static const tu_fixture_set torch_cases = {"ops/reduce", "cat", cat_op, TOL_F32,
                                           TOL_F64};

/* The result owns new storage; a single input is copied too. */
START_TEST(test_copies)
{
    cg_tensor *a = NULL, *y = NULL;
    tu_ok(cg_tensor_literal("[1., 2., 3.]", &a));
    tu_ok(cg_cat(&a, 1, 0, &y));
    ck_assert(!cg_tensor_shares_storage(a, y));
    ck_assert_ptr_null(cg_tensor_grad_fn(y));
    tu_assert_bitwise(y, a, "cat of one");
    cg_tensor_release(y);
    cg_tensor_release(a);
}
END_TEST

/* ======================================================================
 * errors
 * ====================================================================== */

static cg_tensor *zt(const char *shape_text, cg_dtype dt)
{
    int64_t shape[8];
    int n = 0;
    for (const char *s = shape_text; *s;) {
        shape[n++] = strtoll(s, (char **)&s, 10);
        if (*s == 'x')
            s++;
    }
    cg_tensor *t = NULL;
    tu_ok(cg_zeros(shape, n, dt, &t));
    tu_ok(cg_tensor_requires_grad_(t, true));
    return t;
}

typedef struct err_case {
    const char *shapes[3]; /* "" is a 0-d tensor, NULL ends the list */
    int64_t dim;
    cg_status st;
    const char *msg;
} err_case;

START_TEST(test_errors)
{
    static const err_case cases[] = {
        {{NULL},
         0,
         CG_ERR_RUNTIME,
         "torch.cat(): expected a non-empty list of Tensors"},
        {{"2x3", "3x3", NULL},
         1,
         CG_ERR_RUNTIME,
         "Sizes of tensors must match except in dimension 1. Expected size 2 "
         "but got size 3 for tensor number 1 in the list."},
        {{"1x2x3", "1x2x4", NULL},
         0,
         CG_ERR_RUNTIME,
         "Sizes of tensors must match except in dimension 0. Expected size 3 "
         "but got size 4 for tensor number 1 in the list."},
        {{"1x2x3", "1x3x3", NULL},
         2,
         CG_ERR_RUNTIME,
         "Sizes of tensors must match except in dimension 2. Expected size 2 "
         "but got size 3 for tensor number 1 in the list."},
        {{"2x3", "2x3x1", NULL},
         0,
         CG_ERR_RUNTIME,
         "Tensors must have same number of dimensions: got 2 and 3"},
        {{"2x3", "3", NULL},
         0,
         CG_ERR_RUNTIME,
         "Tensors must have same number of dimensions: got 2 and 1"},
        {{"3", "2x3", NULL},
         0,
         CG_ERR_RUNTIME,
         "Tensors must have same number of dimensions: got 1 and 2"},
        {{"0", "2x3", "2x3x1"},
         1,
         CG_ERR_RUNTIME,
         "Tensors must have same number of dimensions: got 2 and 3"},
        {{"0", "2x3", "3x3"},
         1,
         CG_ERR_RUNTIME,
         "Sizes of tensors must match except in dimension 1. Expected size 2 "
         "but got size 3 for tensor number 2 in the list."},
        {{"2x3", "0", "3x3"},
         1,
         CG_ERR_RUNTIME,
         "Sizes of tensors must match except in dimension 1. Expected size 2 "
         "but got size 3 for tensor number 2 in the list."},
        {{"0x0", "2x3", NULL},
         0,
         CG_ERR_RUNTIME,
         "Sizes of tensors must match except in dimension 0. Expected size 0 "
         "but got size 3 for tensor number 1 in the list."},
        {{"", "2", NULL},
         0,
         CG_ERR_RUNTIME,
         "zero-dimensional tensor (at position 0) cannot be concatenated"},
        {{"2", "", NULL},
         0,
         CG_ERR_RUNTIME,
         "zero-dimensional tensor (at position 1) cannot be concatenated"},
        {{"", "2x3", NULL},
         5,
         CG_ERR_RUNTIME,
         "zero-dimensional tensor (at position 0) cannot be concatenated"},
        {{"0", "", NULL},
         0,
         CG_ERR_RUNTIME,
         "zero-dimensional tensor (at position 1) cannot be concatenated"},
        {{"2x3", "2x3", NULL},
         2,
         CG_ERR_INDEX,
         "Dimension out of range (expected to be in range of [-2, 1], but "
         "got 2)"},
        {{"2x3", "2x3", NULL},
         -3,
         CG_ERR_INDEX,
         "Dimension out of range (expected to be in range of [-2, 1], but "
         "got -3)"},
        {{"2x3", "0", NULL},
         5,
         CG_ERR_INDEX,
         "Dimension out of range (expected to be in range of [-2, 1], but "
         "got 5)"},
        {{"0", "2x3", NULL},
         2,
         CG_ERR_INDEX,
         "Dimension out of range (expected to be in range of [-2, 1], but "
         "got 2)"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const err_case *e = &cases[k];
        cg_tensor *in[3] = {NULL}, *out = NULL;
        int n = 0;
        while (n < 3 && e->shapes[n]) {
            in[n] = zt(e->shapes[n], n == 1 ? CG_FLOAT64 : CG_FLOAT32);
            n++;
        }
        cg_status st = cg_cat(in, n, e->dim, &out);
        ck_assert_msg(st == e->st, "case %zu: %s (%s)", k, cg_status_name(st),
                      cg_last_error());
        ck_assert_str_eq(cg_last_error(), e->msg);
        ck_assert_ptr_null(out);
        for (int i = 0; i < n; i++) {
            ck_assert_ptr_null(cg_tensor_grad_fn(in[i]));
            cg_tensor_release(in[i]);
        }
    }
    cg_tensor *a = zt("2", CG_FLOAT32), *out = NULL;
    cg_tensor *with_null[2] = {a, NULL};
    tu_fails(cg_cat(&a, 1, 0, NULL), CG_ERR_MISUSE, "out must not be NULL");
    tu_fails(cg_cat(NULL, 2, 0, &out), CG_ERR_MISUSE,
             "tensors must not be NULL");
    tu_fails(cg_cat(with_null, 2, 0, &out), CG_ERR_MISUSE,
             "tensors[1] must not be NULL");
    tu_fails(cg_cat(&a, -1, 0, &out), CG_ERR_VALUE,
             "the number of tensors must not be negative, but got -1");
    tu_fails(cg_cat(NULL, 0, 0, &out), CG_ERR_RUNTIME,
             "torch.cat(): expected a non-empty list of Tensors");
    ck_assert_ptr_null(out);
    cg_tensor_release(a);
}
END_TEST

/* ======================================================================
 * alloc
 * ====================================================================== */

/* cat([float32 2x3, legacy empty float64, complex64 2x2 transposed], -1),
 * summed, backward. */
static cg_status alloc_scenario(void *ctx)
{
    (void)ctx;
    int64_t s1[2] = {2, 3}, s2[2] = {2, 2}, s0 = 0;
    cg_tensor *in[3] = {NULL}, *t = NULL, *y = NULL, *s = NULL;
    cg_status st = cg_ones(s1, 2, CG_FLOAT32, &in[0]);
    if (st == CG_OK)
        st = cg_ones(&s0, 1, CG_FLOAT64, &in[1]);
    if (st == CG_OK)
        st = cg_ones(s2, 2, CG_COMPLEX64, &t);
    for (int i = 0; i < 2 && st == CG_OK; i++)
        st = cg_tensor_requires_grad_(in[i], true);
    if (st == CG_OK)
        st = cg_tensor_requires_grad_(t, true);
    if (st == CG_OK)
        st = cg_tensor_transpose(t, 0, 1, &in[2]);
    if (st == CG_OK)
        st = cg_cat(in, 3, -1, &y);
    if (st == CG_OK)
        st = cg_sum(y, &s);
    if (st == CG_OK)
        st = cg_tensor_backward(s, NULL, false);
    cg_tensor_release(s);
    cg_tensor_release(y);
    for (int i = 0; i < 3; i++)
        cg_tensor_release(in[i]);
    cg_tensor_release(t);
    return st;
}

START_TEST(test_alloc)
{
    ck_assert_int_gt(tu_alloc_sweep(alloc_scenario, NULL, "cat"), 0);
}
END_TEST

/* ======================================================================
 * gradcheck
 * ====================================================================== */

typedef struct gc_spec {
    int64_t dim;
    bool transpose_first;
} gc_spec;

static cg_status gc_fn(cg_tensor *const *in, int n, cg_tensor **out, void *user)
{
    const gc_spec *s = user;
    cg_tensor *v[4], *t = NULL;
    cg_status st = CG_OK;
    for (int i = 0; i < n; i++)
        v[i] = in[i];
    if (s->transpose_first) {
        if ((st = cg_tensor_transpose(in[0], 0, -1, &t)) != CG_OK)
            return st;
        v[0] = t;
    }
    st = cg_cat(v, n, s->dim, out);
    cg_tensor_release(t);
    return st;
}

START_TEST(test_gradcheck)
{
    static const struct {
        gc_spec s;
        int n;
        int64_t shapes[3][3];
        int ndim;
        int dtypes[3]; /* 0: the case's dtype, 1: float64 */
    } cases[] = {
        {{0, false}, 2, {{2, 3}, {1, 3}}, 2, {0, 0}},
        {{-1, true}, 3, {{3, 2}, {2, 1}, {2, 4}}, 2, {0, 0, 0}},
        {{1, false}, 2, {{2, 1, 3}, {2, 2, 3}}, 3, {0, 0}},
        {{0, false}, 2, {{2, 2}, {1, 2}}, 2, {1, 0}},
    };
    static const cg_dtype dts[] = {CG_FLOAT64, CG_COMPLEX128};
    for (int d = 0; d < 2; d++)
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
            cg_tensor *in[3] = {NULL};
            for (int i = 0; i < cases[k].n; i++) {
                cg_manual_seed(10 * k + i);
                tu_ok(cg_randn(cases[k].shapes[i], cases[k].ndim,
                               cases[k].dtypes[i] ? CG_FLOAT64 : dts[d], NULL,
                               &in[i]));
                tu_ok(cg_tensor_requires_grad_(in[i], true));
            }
            cg_gradcheck_result r;
            tu_ok(cg_gradcheck(gc_fn, (void *)&cases[k].s, in, cases[k].n, NULL,
                               &r));
            ck_assert_msg(r.passed, "%s case %zu: %s", cg_dtype_name(dts[d]), k,
                          r.message);
            for (int i = 0; i < cases[k].n; i++)
                cg_tensor_release(in[i]);
        }
}
END_TEST

Suite *cat_suite(void)
{
    Suite *s = suite_create("cat");
    TCase *tc = tu_fixture_tcase(s, "torch", &torch_cases);
    tcase_add_test(tc, test_copies);
    tcase_add_test(tu_suite_tcase(s, "errors", 0), test_errors);
    tcase_add_test(tu_suite_tcase(s, "alloc", 120), test_alloc);
    tcase_add_test(tu_suite_tcase(s, "gradcheck", 120), test_gradcheck);
    return s;
}
