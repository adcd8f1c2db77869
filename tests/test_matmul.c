/* test_matmul.c -- mm, bmm and matmul against PyTorch 1.13.
 *
 * TCases:
 *   torch      every "matmul" row of tests/data/ops/reduce/cases.tsv (made
 *              by tests/data/ops/gen_reduce.py): values, gradients and the
 *              grad_fn chain matmul records for each of its dispatch cases
 *              (dot, mv, 1-D x 2-D, mm, folded >=3-D x 1-D/2-D on either
 *              side, broadcast bmm, the transposed 3-D exception), the
 *              kernel's block edges (K > KC, M > MC, N > NC), empty sizes,
 *              non-contiguous operands, all four dtypes
 *   kernel     the blocked GEMM equals the reference loop bitwise, over
 *              many shapes, strides and dtypes, at every SIMD level
 *   threads    1 and 4 threads give bitwise-identical products and grads
 *   errors     every message, as PyTorch words it, arguments untouched;
 *              saved tensors modified in place
 *   alloc      every allocation of forward + backward fails in turn
 *   gradcheck  finite differences (float64, complex128) for mm, bmm and
 *              each matmul case, contiguous and not
 */
#include "testutil.h"
#include "fixture.h"
#include "tensor_internal.h"

#include <stdlib.h>
#include <string.h>

/* float32: cgrad accumulates in double and rounds once, PyTorch's BLAS in
 * float; both are within a few ulp of exact at these depths (K <= 300).
 * float64: both accumulate in double. */
#define TOL_F32 1e-5
#define TOL_F64 1e-12

#include "simd_internal.h"

/* matmul.c's reference loop (test hook, not in a header). */
cg_status cg__mm_reference(cg_tensor *a, cg_tensor *b, cg_tensor **out);

/* ======================================================================
 * torch
 * ====================================================================== */

static cg_status matmul_op(const tu_fixture_case *c, cg_tensor *const *in,
                           int n, cg_tensor **out)
{
    const char *op = tu_fixture_field(c, "op");
    ck_assert_int_eq(n, 2);
    if (strcmp(op, "mm") == 0)
        return cg_mm(in[0], in[1], out);
    if (strcmp(op, "bmm") == 0)
        return cg_bmm(in[0], in[1], out);
    ck_assert_str_eq(op, "matmul");
    return cg_matmul(in[0], in[1], out);
}

/* The "matmul" rows of tests/data/ops/reduce (see gen_reduce.py). */
static const tu_fixture_set torch_cases = {"ops/reduce", "matmul", matmul_op,
                                           TOL_F32, TOL_F64};

/* ======================================================================
 * kernel: blocked == reference, bitwise
 * ====================================================================== */

static cg_tensor *randt(const int64_t *shape, int ndim, cg_dtype dt,
                        uint64_t seed)
{
    cg_tensor *t = NULL;
    cg_manual_seed(seed);
    tu_ok(cg_randn(shape, ndim, dt, NULL, &t));
    return t;
}

/* An M x K operand, contiguous or viewed through a transpose or a step. */
static cg_tensor *operand(int64_t rows, int64_t cols, cg_dtype dt, int view,
                          uint64_t seed)
{
    cg_tensor *b, *v = NULL;
    if (view == 1) { /* transposed */
        int64_t s[2] = {cols, rows};
        b = randt(s, 2, dt, seed);
        tu_ok(cg_tensor_t(b, &v));
    } else if (view == 2) { /* every other column */
        int64_t s[2] = {rows, 2 * cols};
        b = randt(s, 2, dt, seed);
        tu_ok(cg_tensor_slice(b, 1, 0, INT64_MAX, 2, &v));
    } else {
        int64_t s[2] = {rows, cols};
        b = randt(s, 2, dt, seed);
        v = cg_tensor_retain(b);
    }
    cg_tensor_release(b);
    return v;
}

/* Once per SIMD level (_i): the vector micro-kernels keep the reference's
 * bits. */
START_TEST(test_kernel)
{
    cg_simd prev = cg__simd_override((cg_simd)_i);
    /* around MR (4), NR (8 / 4), MC (64), KC (256), NC (256) */
    static const int64_t dims[][3] = {
        {1, 1, 1},
        {3, 5, 2},
        {4, 8, 4},
        {5, 9, 3},
        {64, 7, 9},
        {65, 3, 17},
        {2, 257, 3},
        {7, 300, 11},
        {3, 4, 257},
        {70, 33, 260},
        {129, 513, 5},
        {1, 600, 1},
        /* blocks of A and of B large enough to be packed on the pool */
        {8, 300, 300},
        {100, 300, 20},
    };
    static const cg_dtype dts[] = {CG_FLOAT32, CG_FLOAT64, CG_COMPLEX64,
                                   CG_COMPLEX128};
    for (size_t k = 0; k < sizeof dims / sizeof *dims; k++)
        for (int d = 0; d < 4; d++)
            for (int view = 0; view < 3; view++) {
                int64_t M = dims[k][0], K = dims[k][1], N = dims[k][2];
                cg_tensor *a = operand(M, K, dts[d], view, 10 * k + 1);
                cg_tensor *b = operand(K, N, dts[d], 2 - view, 10 * k + 2);
                cg_tensor *y = NULL, *r = NULL;
                tu_ok(cg_mm(a, b, &y));
                tu_ok(cg__mm_reference(a, b, &r));
                tu_assert_bitwise(y, r, "blocked vs reference");
                cg_tensor_release(y);
                cg_tensor_release(r);
                cg_tensor_release(a);
                cg_tensor_release(b);
            }
    cg__simd_override(prev);
}
END_TEST

/* Values a reader can check by hand, including conjugation in backward. */
START_TEST(test_kernel_values)
{
    cg_tensor *a = NULL, *b = NULL, *y = NULL, *ref = NULL;
    tu_ok(cg_tensor_literal("[[1., 2.], [3., 4.]]", &a));
    tu_ok(cg_tensor_literal("[[5., 6.], [7., 8.]]", &b));
    tu_ok(cg_tensor_literal("[[19., 22.], [43., 50.]]", &ref));
    tu_ok(cg_mm(a, b, &y));
    tu_assert_bitwise(y, ref, "2x2");
    cg_tensor_release(y);
    cg_tensor_release(ref);
    cg_tensor_release(a);
    cg_tensor_release(b);
    /* (1+1j) . (2-1j) = 3+1j; d/da conj convention: ga = gy * conj(b) */
    tu_ok(cg_tensor_literal("[1+1j]", &a));
    tu_ok(cg_tensor_literal("[2-1j]", &b));
    tu_ok(cg_tensor_requires_grad_(a, true));
    tu_ok(cg_matmul(a, b, &y));
    double re, im;
    tu_ok(cg_tensor_item(y, &re, &im));
    ck_assert(re == 3.0 && im == 1.0);
    tu_ok(cg_tensor_backward(y, NULL, false));
    int64_t i0 = 0;
    tu_ok(cg_tensor_get(cg_tensor_grad(a), &i0, &re, &im));
    ck_assert(re == 2.0 && im == 1.0);
    cg_tensor_release(y);
    cg_tensor_release(a);
    cg_tensor_release(b);
}
END_TEST

/* ======================================================================
 * threads
 * ====================================================================== */

static void products(int threads, cg_tensor *a, cg_tensor *b, cg_tensor **o)
{
    ck_assert_int_eq(cg_set_num_threads(threads), CG_OK);
    cg_tensor *y = NULL, *s = NULL;
    tu_ok(cg_matmul(a, b, &y));
    tu_ok(cg_sum(y, &s));
    tu_ok(cg_tensor_backward(s, NULL, false));
    o[0] = y;
    tu_ok(cg_tensor_clone(cg_tensor_grad(a), &o[1]));
    tu_ok(cg_tensor_clone(cg_tensor_grad(b), &o[2]));
    tu_ok(cg_tensor_zero_grad(a, true));
    tu_ok(cg_tensor_zero_grad(b, true));
    cg_tensor_release(s);
}

START_TEST(test_threads)
{
    int64_t sa[3] = {2, 150, 300}, sb[2] = {300, 270};
    cg_tensor *a = randt(sa, 3, CG_FLOAT32, 1),
              *b = randt(sb, 2, CG_FLOAT32, 2);
    tu_ok(cg_tensor_requires_grad_(a, true));
    tu_ok(cg_tensor_requires_grad_(b, true));
    cg_tensor *one[3], *four[3];
    int prev = cg_get_num_threads();
    products(1, a, b, one);
    products(4, a, b, four);
    cg_set_num_threads(prev);
    for (int i = 0; i < 3; i++) {
        tu_assert_bitwise(one[i], four[i], "1 vs 4 threads");
        cg_tensor_release(one[i]);
        cg_tensor_release(four[i]);
    }
    cg_tensor_release(a);
    cg_tensor_release(b);
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
    int op; /* 0 mm, 1 bmm, 2 matmul */
    const char *a;
    cg_dtype da;
    const char *b;
    cg_dtype db;
    const char *msg;
} err_case;

START_TEST(test_errors)
{
    const cg_dtype F = CG_FLOAT32, D = CG_FLOAT64, C = CG_COMPLEX64,
                   Z = CG_COMPLEX128;
    const err_case cases[] = {
        {0, "2x3", F, "4x5", F,
         "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x5)"},
        {0, "2x3x1", F, "3x5", F, "self must be a matrix"},
        {0, "3", F, "3x2", F, "self must be a matrix"},
        {0, "2x3", F, "3", F, "mat2 must be a matrix"},
        {0, "2x3", F, "3x4", D, "expected scalar type Float but found Double"},
        {0, "2x3", D, "3x4", F, "expected scalar type Double but found Float"},
        {0, "2x3", C, "3x4", F,
         "expected scalar type ComplexFloat but found Float"},
        {0, "2x3", F, "3x4", C,
         "expected scalar type Float but found ComplexFloat"},
        {0, "2x3", F, "4x4", D,
         "mat1 and mat2 shapes cannot be multiplied (2x3 and 4x4)"},
        {1, "2x3", F, "2x3x4", F, "batch1 must be a 3D tensor"},
        {1, "2x3x4", F, "3x4", F, "batch2 must be a 3D tensor"},
        {1, "2x3x4", F, "2x5x5", F,
         "Expected size for first two dimensions of batch2 tensor to be: "
         "[2, 4] but got: [2, 5]."},
        {1, "2x3x4", F, "3x4x5", F,
         "Expected size for first two dimensions of batch2 tensor to be: "
         "[2, 4] but got: [3, 4]."},
        {1, "2x3x4", F, "2x4x5", D,
         "expected scalar type Float but found Double"},
        {1, "2x3x4", D, "3x5x5", F,
         "Expected size for first two dimensions of batch2 tensor to be: "
         "[2, 4] but got: [3, 5]."},
        {2, "", F, "3", F,
         "both arguments to matmul need to be at least 1D, but they are 0D "
         "and 1D"},
        {2, "3", F, "", F,
         "both arguments to matmul need to be at least 1D, but they are 1D "
         "and 0D"},
        {2, "3", F, "4", F,
         "inconsistent tensor size, expected tensor [3] and src [4] to have "
         "the same number of elements, but got 3 and 4 elements "
         "respectively"},
        {2, "2x3", F, "4", F, "size mismatch, got 2, 2x3,4"},
        {2, "3", F, "4x2", F,
         "mat1 and mat2 shapes cannot be multiplied (1x3 and 4x2)"},
        {2, "2x2x3", F, "4x2", F,
         "mat1 and mat2 shapes cannot be multiplied (4x3 and 4x2)"},
        {2, "2x2x3", F, "4", F, "size mismatch, got 4, 4x3,4"},
        {2, "3", F, "2x4x2", F, "size mismatch, got 4, 4x4,3"},
        {2, "2x3", F, "2x4x2", F,
         "mat1 and mat2 shapes cannot be multiplied (4x4 and 3x2)"},
        {2, "2x2x3", F, "2x4x2", F,
         "Expected size for first two dimensions of batch2 tensor to be: "
         "[2, 3] but got: [2, 4]."},
        {2, "2x2x3", F, "3x3x2", F,
         "The size of tensor a (2) must match the size of tensor b (3) at "
         "non-singleton dimension 0"},
        {2, "3", F, "3", D,
         "dot : expected both vectors to have same dtype, but found Float "
         "and Double"},
        {2, "3", C, "3", F,
         "dot : expected both vectors to have same dtype, but found "
         "ComplexFloat and Float"},
        {2, "2x3", F, "3", D, "expected scalar type Float but found Double"},
        {2, "2x3", F, "3x2", D, "expected scalar type Float but found Double"},
        {2, "2x2x3", F, "2x3x2", D,
         "expected scalar type Float but found Double"},
        {2, "2x2x3", F, "3x2", D,
         "expected scalar type Float but found Double"},
        {2, "3", D, "2x3x2", F, "expected scalar type Float but found Double"},
        {2, "2x3", D, "3x2", Z,
         "expected scalar type Double but found ComplexDouble"},
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
        const err_case *e = &cases[k];
        cg_tensor *a = zt(e->a, e->da), *b = zt(e->b, e->db), *out = NULL;
        cg_status st = e->op == 0   ? cg_mm(a, b, &out)
                       : e->op == 1 ? cg_bmm(a, b, &out)
                                    : cg_matmul(a, b, &out);
        ck_assert_msg(st == CG_ERR_RUNTIME, "case %zu: %s", k,
                      cg_status_name(st));
        ck_assert_str_eq(cg_last_error(), e->msg);
        ck_assert_ptr_null(out);
        ck_assert_ptr_null(cg_tensor_grad_fn(a));
        ck_assert_ptr_null(cg_tensor_grad_fn(b));
        cg_tensor_release(a);
        cg_tensor_release(b);
    }
    cg_tensor *a = zt("2x2", CG_FLOAT32), *out = NULL;
    tu_fails(cg_mm(NULL, a, &out), CG_ERR_MISUSE, "self must not be NULL");
    tu_fails(cg_bmm(a, NULL, &out), CG_ERR_MISUSE, "other must not be NULL");
    tu_fails(cg_matmul(a, a, NULL), CG_ERR_MISUSE, "out must not be NULL");
    ck_assert_ptr_null(out);
    cg_tensor_release(a);
}
END_TEST

/* mm saves mat2 for self's gradient and self for mat2's, each only when
 * needed; an in-place change of a saved operand fails backward with
 * PyTorch's message and changes no .grad. */
START_TEST(test_saved)
{
    cg_tensor *a = zt("3x4", CG_FLOAT32), *b = zt("4x5", CG_FLOAT32);
    cg_tensor *y = NULL, *s = NULL;
    tu_ok(cg_tensor_requires_grad_(b, false));
    tu_ok(cg_mm(a, b, &y));
    ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(y)), 1);
    ck_assert_ptr_eq(cg_node_saved(cg_tensor_grad_fn(y), 0), b);
    tu_ok(cg_sum(y, &s));
    tu_ok(cg_tensor_fill_(b, 1.0));
    /* PyTorch: "...: [torch.FloatTensor [4, 5]] is at version 1; expected
     * version 0 instead. Hint: ..."; the wording is autograd.c's, which
     * (reported) puts a comma after "]]" for a saved leaf: only the parts
     * this op decides are checked here */
    static const char prefix[] =
        "one of the variables needed for gradient computation has been "
        "modified by an inplace operation: [torch.FloatTensor [4, 5]]";
    ck_assert_int_eq(cg_tensor_backward(s, NULL, false), CG_ERR_RUNTIME);
    ck_assert_msg(strncmp(cg_last_error(), prefix, sizeof prefix - 1) == 0 &&
                      strstr(cg_last_error(), "is at version 1; expected "
                                              "version 0 instead."),
                  "%s", cg_last_error());
    ck_assert_ptr_null(cg_tensor_grad(a));
    cg_tensor_release(s);
    cg_tensor_release(y);
    tu_ok(cg_tensor_requires_grad_(b, true));
    tu_ok(cg_mm(a, b, &y));
    ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(y)), 2);
    cg_tensor_release(y);
    cg_tensor_release(a);
    cg_tensor_release(b);
}
END_TEST

/* ======================================================================
 * alloc
 * ====================================================================== */

typedef struct alloc_case {
    const char *a, *b;
    cg_dtype dt;
} alloc_case;

static cg_status shaped(const char *text, cg_dtype dt, cg_tensor **out)
{
    int64_t shape[8];
    int n = 0;
    for (const char *s = text; *s;) {
        shape[n++] = strtoll(s, (char **)&s, 10);
        if (*s == 'x')
            s++;
    }
    cg_status st = cg_ones(shape, n, dt, out);
    if (st == CG_OK && (st = cg_tensor_requires_grad_(*out, true)) != CG_OK) {
        cg_tensor_release(*out);
        *out = NULL;
    }
    return st;
}

static cg_status alloc_scenario(void *ctx)
{
    const alloc_case *c = ctx;
    cg_tensor *a = NULL, *b = NULL, *y = NULL, *s = NULL;
    cg_status st = shaped(c->a, c->dt, &a);
    if (st == CG_OK)
        st = shaped(c->b, c->dt, &b);
    if (st == CG_OK)
        st = cg_matmul(a, b, &y);
    if (st == CG_OK)
        st = cg_sum(y, &s);
    if (st == CG_OK)
        st = cg_tensor_backward(s, NULL, false);
    cg_tensor_release(s);
    cg_tensor_release(y);
    cg_tensor_release(a);
    cg_tensor_release(b);
    return st;
}

START_TEST(test_alloc)
{
    static const alloc_case cases[] = {
        {"3", "3", CG_FLOAT32},           /* dot */
        {"2x3", "3", CG_COMPLEX128},      /* mv */
        {"3", "3x2", CG_FLOAT64},         /* 1-D x 2-D */
        {"2x3", "3x70", CG_FLOAT32},      /* mm */
        {"3x4", "2x4x5", CG_COMPLEX64},   /* folded, transposed */
        {"2x1x3x4", "5x4x2", CG_FLOAT64}, /* broadcast bmm */
    };
    for (size_t k = 0; k < sizeof cases / sizeof *cases; k++)
        ck_assert_int_gt(
            tu_alloc_sweep(alloc_scenario, (void *)&cases[k], cases[k].a), 0);
}
END_TEST

/* ======================================================================
 * gradcheck
 * ====================================================================== */

typedef struct gc_spec {
    int op;           /* 0 mm, 1 bmm, 2 matmul */
    bool transpose_a; /* feed a.transpose(-2, -1)'s base */
} gc_spec;

static cg_status gc_fn(cg_tensor *const *in, int n, cg_tensor **out, void *user)
{
    (void)n;
    const gc_spec *s = user;
    cg_tensor *a = NULL;
    cg_status st = CG_OK;
    if (s->transpose_a)
        st = cg_tensor_transpose(in[0], -2, -1, &a);
    else
        a = cg_tensor_retain(in[0]);
    if (st != CG_OK)
        return st;
    st = s->op == 0   ? cg_mm(a, in[1], out)
         : s->op == 1 ? cg_bmm(a, in[1], out)
                      : cg_matmul(a, in[1], out);
    cg_tensor_release(a);
    return st;
}

START_TEST(test_gradcheck)
{
    /* shapes of a's base and b */
    static const struct {
        gc_spec s;
        int na, nb;
        int64_t a[4], b[4];
    } cases[] = {
        {{0, false}, 2, 2, {3, 4}, {4, 2}},
        {{0, true}, 2, 2, {4, 3}, {4, 2}},
        {{1, false}, 3, 3, {2, 3, 4}, {2, 4, 2}},
        {{1, true}, 3, 3, {2, 4, 3}, {2, 4, 2}},
        {{2, false}, 1, 1, {4}, {4}},
        {{2, false}, 2, 1, {3, 4}, {4}},
        {{2, false}, 1, 2, {4}, {4, 2}},
        {{2, false}, 3, 2, {2, 3, 4}, {4, 2}},
        {{2, false}, 1, 3, {4}, {2, 4, 2}},
        {{2, false}, 2, 3, {3, 4}, {2, 4, 2}},
        {{2, false}, 4, 3, {2, 1, 2, 3}, {2, 3, 2}},
        {{2, true}, 3, 2, {2, 4, 3}, {4, 2}},
    };
    static const cg_dtype dts[] = {CG_FLOAT64, CG_COMPLEX128};
    for (int d = 0; d < 2; d++)
        for (size_t k = 0; k < sizeof cases / sizeof *cases; k++) {
            cg_tensor *in[2] = {
                randt(cases[k].a, cases[k].na, dts[d], 3 * k),
                randt(cases[k].b, cases[k].nb, dts[d], 3 * k + 1)};
            tu_ok(cg_tensor_requires_grad_(in[0], true));
            tu_ok(cg_tensor_requires_grad_(in[1], true));
            cg_gradcheck_result r;
            tu_ok(cg_gradcheck(gc_fn, (void *)&cases[k].s, in, 2, NULL, &r));
            ck_assert_msg(r.passed, "%s case %zu: %s", cg_dtype_name(dts[d]), k,
                          r.message);
            cg_tensor_release(in[0]);
            cg_tensor_release(in[1]);
        }
}
END_TEST

Suite *matmul_suite(void)
{
    Suite *s = suite_create("matmul");
    tu_fixture_tcase(s, "torch", &torch_cases);
    TCase *tc = tu_suite_tcase(s, "kernel", 120);
    tcase_add_loop_test(tc, test_kernel, 0, CG_SIMD_COUNT);
    tcase_add_test(tc, test_kernel_values);
    tcase_add_test(tu_suite_tcase(s, "threads", 120), test_threads);
    tc = tu_suite_tcase(s, "errors", 0);
    tcase_add_test(tc, test_errors);
    tcase_add_test(tc, test_saved);
    tcase_add_test(tu_suite_tcase(s, "alloc", 300), test_alloc);
    tcase_add_test(tu_suite_tcase(s, "gradcheck", 300), test_gradcheck);
    return s;
}
