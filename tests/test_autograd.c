/* test_autograd.c -- the dynamic graph and the backward engine (autograd.c,
 * engine.c), gradcheck (gradcheck.c) and the graph printers (graph.c),
 * held to PyTorch 1.13: grad_fn names and next_functions of a set of
 * expressions, gradients, and the autograd errors word for word, from
 * tests/data/autograd (made by gen_autograd.py).
 *
 * TCases: engine, errors, deep, pytorch, gradcheck, graph, alloc, example,
 * and regressions / op_parity (cases where cgrad once differed from
 * PyTorch or lost state; see the comment above each test). */
#include "testutil.h"

#include "autograd_internal.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

/* float64 results of the same arithmetic in the same order agree to the
 * last bits; reductions and matmul may order sums differently from
 * PyTorch's kernels, hence a little slack. */
#define TOL_F64 1e-12

/* ---- a pool of tensors released after each test ------------------------ */

static cg_tensor *pool[1 << 12];
static int npool;

static cg_tensor *keep(cg_tensor *t)
{
    ck_assert_msg(npool < (int)(sizeof pool / sizeof *pool), "pool full");
    pool[npool++] = t;
    return t;
}

static void drain(void)
{
    while (npool > 0)
        cg_tensor_release(pool[--npool]);
    cg_set_grad_enabled(true);
    cg_set_allocator(NULL);
}

/* Asserting wrappers: each result goes to the pool. */
typedef cg_status (*op1_fn)(cg_tensor *, cg_tensor **);
typedef cg_status (*op2_fn)(cg_tensor *, cg_tensor *, cg_tensor **);
typedef cg_status (*ops_fn)(cg_tensor *, double, cg_tensor **);

static cg_tensor *U(op1_fn op, cg_tensor *a)
{
    cg_tensor *r = NULL;
    tu_ok(op(a, &r));
    return keep(r);
}

static cg_tensor *B(op2_fn op, cg_tensor *a, cg_tensor *b)
{
    cg_tensor *r = NULL;
    tu_ok(op(a, b, &r));
    return keep(r);
}

static cg_tensor *S(ops_fn op, cg_tensor *a, double s)
{
    cg_tensor *r = NULL;
    tu_ok(op(a, s, &r));
    return keep(r);
}

static cg_tensor *lit_dt(const char *text, cg_dtype dt, bool rg,
                         const char *name)
{
    cg_tensor *t = NULL;
    tu_ok(cg_tensor_literal_dtype(text, dt, &t));
    tu_ok(cg_tensor_requires_grad_(t, rg));
    if (name)
        tu_ok(cg_tensor_set_name(t, name));
    return keep(t);
}

static cg_tensor *lit(const char *text, bool rg, const char *name)
{
    return lit_dt(text, CG_FLOAT64, rg, name);
}

static cg_tensor *view(cg_tensor *t, const int64_t *shape, int ndim)
{
    cg_tensor *r = NULL;
    tu_ok(cg_tensor_view(t, shape, ndim, &r));
    return keep(r);
}

static cg_tensor *detach(cg_tensor *t)
{
    cg_tensor *r = NULL;
    tu_ok(cg_tensor_detach(t, &r));
    return keep(r);
}

static cg_tensor *sum_dims(cg_tensor *t, int64_t dim, bool keepdim)
{
    cg_tensor *r = NULL;
    tu_ok(cg_sum_dims(t, &dim, 1, keepdim, &r));
    return keep(r);
}

static cg_tensor *slice(cg_tensor *t, int64_t dim, int64_t start, int64_t end)
{
    cg_tensor *r = NULL;
    tu_ok(cg_tensor_slice(t, dim, start, end, 1, &r));
    return keep(r);
}

static cg_tensor *select_(cg_tensor *t, int64_t dim, int64_t index)
{
    cg_tensor *r = NULL;
    tu_ok(cg_tensor_select(t, dim, index, &r));
    return keep(r);
}

static cg_tensor *cat(cg_tensor *const *ts, int n, int64_t dim)
{
    cg_tensor *r = NULL;
    tu_ok(cg_cat(ts, n, dim, &r));
    return keep(r);
}

static cg_tensor *full(const int64_t *shape, int ndim, double v, cg_dtype dt)
{
    cg_tensor *r = NULL;
    tu_ok(cg_full(shape, ndim, v, dt, &r));
    return keep(r);
}

static double get1(const cg_tensor *t, int64_t i)
{
    double re = NAN;
    tu_ok(cg_tensor_get(t, &i, &re, NULL));
    return re;
}

/* Values of t as doubles (malloc'd; complex: re, im pairs). */
static double *values(const cg_tensor *t, int64_t *n)
{
    int64_t m =
        cg_tensor_numel(t) * (cg_dtype_is_complex(cg_tensor_dtype(t)) ? 2 : 1);
    double *v = malloc((size_t)(m + 1) * sizeof *v);
    ck_assert_ptr_nonnull(v);
    tu_ok(cg_tensor_to_doubles(t, v, m));
    if (n)
        *n = m;
    return v;
}

/* t's values equal `expect` (n doubles) within tol. */
static void assert_values(const cg_tensor *t, const double *expect, int64_t n,
                          double tol, const char *what)
{
    ck_assert_msg(t != NULL, "%s: no tensor", what);
    int64_t m;
    double *v = values(t, &m);
    ck_assert_msg(m == n, "%s: %lld values, expected %lld", what, (long long)m,
                  (long long)n);
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(fabs(v[i] - expect[i]) <= tol,
                      "%s[%lld] = %.17g, expected %.17g", what, (long long)i,
                      v[i], expect[i]);
    free(v);
}

/* ---- snapshots of gradients, to prove a failed backward changed nothing -- */

typedef struct grad_snap {
    const cg_tensor *t;
    const cg_tensor *grad; /* the pointer */
    double *vals;          /* its values (NULL when no grad) */
    int64_t n;
    uint64_t version; /* of the grad's storage */
} grad_snap;

static grad_snap snap_grad(const cg_tensor *t)
{
    grad_snap s = {.t = t, .grad = cg_tensor_grad(t)};
    if (s.grad) {
        s.vals = values(s.grad, &s.n);
        s.version = atomic_load(&s.grad->storage->version);
    }
    return s;
}

static void check_grad_snap(grad_snap *s, const char *what)
{
    ck_assert_msg(cg_tensor_grad(s->t) == s->grad, "%s: .grad was replaced",
                  what);
    if (s->grad) {
        int64_t n;
        double *v = values(s->grad, &n);
        ck_assert_int_eq(n, s->n);
        ck_assert_msg(memcmp(v, s->vals, (size_t)n * sizeof *v) == 0,
                      "%s: .grad values changed", what);
        ck_assert_msg(atomic_load(&s->grad->storage->version) == s->version,
                      "%s: .grad was written", what);
        free(v);
    }
    free(s->vals);
    s->vals = NULL;
}

/* ---- test-only ops, recorded with cg__record ----------------------------- */

/* y = k * x, with a backward that is right (TST_OK) or deliberately wrong in
 * one of several ways, so the engine and gradcheck can be tested without
 * depending on any real op's backward. */
enum tst_mode {
    TST_OK,       /* gx = k gy */
    TST_BAD_ELEM, /* gx = k gy, element `bad` doubled */
    TST_CONJ,     /* gx = k conj(gy): wrong for complex */
    TST_FAIL,     /* fails while *fail is set */
    TST_NONDET,   /* gx = k gy (1 + 1e-12 * calls): not reentrant */
    TST_UNSCALED, /* gx = ones when gy is all zero */
};

typedef struct tst_ctx {
    double k;
    enum tst_mode mode;
    int64_t bad;
    const bool *fail;
    int *released; /* counts release_ctx calls */
} tst_ctx;

static int tst_calls;

static cg_status tst_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const tst_ctx *c = node->ctx;
    if (c->mode == TST_FAIL && c->fail && *c->fail)
        return cg__error(CG_ERR_RUNTIME, "TestBackward: told to fail");
    if (!cg__needs_grad(node, 0))
        return CG_OK;
    cg_tensor *g = NULL;
    cg_status st = cg_tensor_clone(gy, &g); /* contiguous, offset 0 */
    if (st != CG_OK)
        return st;
    bool all_zero = true;
    int64_t n = cg_tensor_numel(g);
    for (int64_t i = 0; i < n; i++) {
        double re, im;
        cg__load(g, i, &re, &im);
        all_zero = all_zero && re == 0.0 && im == 0.0;
        double f = c->k;
        if (c->mode == TST_BAD_ELEM && i == c->bad)
            f *= 2.0;
        if (c->mode == TST_NONDET)
            f *= 1.0 + 1e-12 * ++tst_calls;
        if (c->mode == TST_CONJ)
            im = -im;
        cg__store(g, i, f * re, f * im);
    }
    if (c->mode == TST_UNSCALED && all_zero)
        for (int64_t i = 0; i < n; i++)
            cg__store(g, i, 1.0, 0.0);
    gx[0] = g;
    return CG_OK;
}

static void tst_release(void *ctx)
{
    tst_ctx *c = ctx;
    if (c->released)
        ++*c->released;
}

static const cg_op_def tst_op = {"TestBackward", tst_backward, NULL};
static const cg_op_def tst_ctx_op = {"TestCtxBackward", tst_backward,
                                     tst_release};

static cg_status tst_apply(cg_tensor *x, const cg_op_def *op, tst_ctx c,
                           cg_tensor **out)
{
    cg_tensor *y = NULL;
    bool prev = cg_set_grad_enabled(false);
    cg_status st = cg_mul_scalar(x, c.k, &y);
    cg_set_grad_enabled(prev);
    if (st != CG_OK)
        return st;
    tst_ctx *ctx = NULL;
    if ((st = cg__record(y, op, &x, 1, sizeof *ctx, NULL, (void **)&ctx)) !=
        CG_OK) {
        cg_tensor_release(y);
        return st;
    }
    if (ctx)
        *ctx = c;
    *out = y;
    return CG_OK;
}

static cg_tensor *tst(cg_tensor *x, tst_ctx c)
{
    cg_tensor *y = NULL;
    tu_ok(tst_apply(x, &tst_op, c, &y));
    return keep(y);
}

static bool starts_with(const char *s, const char *prefix)
{
    return strncmp(s, prefix, strlen(prefix)) == 0;
}

/* ---- reading text written to a FILE -------------------------------------- */

static char *file_text(FILE *f)
{
    long n = ftell(f);
    ck_assert_int_ge(n, 0);
    rewind(f);
    char *s = malloc((size_t)n + 1);
    ck_assert_ptr_nonnull(s);
    ck_assert_uint_eq(fread(s, 1, (size_t)n, f), (size_t)n);
    s[n] = '\0';
    return s;
}

static char *tree_of(const cg_tensor *t)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tu_ok(cg_graph_print(t, f));
    char *s = file_text(f);
    fclose(f);
    return s;
}

static char *dot_of(const cg_tensor *t)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tu_ok(cg_graph_write_dot(t, f));
    char *s = file_text(f);
    fclose(f);
    return s;
}

/* ======================================================================
 * engine
 * ====================================================================== */

START_TEST(test_leaf_accumulate_grad)
{
    cg_tensor *x = lit("[1., 2., 3.]", true, "x");
    ck_assert(cg_tensor_is_leaf(x));
    ck_assert(cg_tensor_requires_grad(x));
    ck_assert_ptr_null(cg_tensor_grad_fn(x)); /* x.grad_fn is None */
    cg_tensor *y = S(cg_mul_scalar, x, 2.0);
    ck_assert(!cg_tensor_is_leaf(y));
    ck_assert(cg_tensor_requires_grad(y));
    const cg_node *n = cg_tensor_grad_fn(y);
    ck_assert_str_eq(cg_node_name(n), "MulBackward0");
    ck_assert_int_eq(cg_node_num_next(n), 2);
    int nr = -1;
    const cg_node *acc = cg_node_next(n, 0, &nr);
    ck_assert_str_eq(cg_node_name(acc), "AccumulateGrad");
    ck_assert_int_eq(nr, 0);
    ck_assert_ptr_eq(cg_node_variable(acc), x);
    ck_assert_int_eq(cg_node_num_next(acc), 0);
    ck_assert_ptr_null(cg_node_next(n, 1, &nr)); /* the scalar: None */
    ck_assert_ptr_null(cg_node_variable(n));
    int ndim = -1;
    const int64_t *shape = cg_node_output_shape(acc, &ndim);
    ck_assert_int_eq(ndim, 1);
    ck_assert_int_eq(shape[0], 3);
    /* while alive, a leaf has one AccumulateGrad, shared by its uses */
    cg_tensor *z = S(cg_mul_scalar, x, 3.0);
    ck_assert_ptr_eq(cg_node_next(cg_tensor_grad_fn(z), 0, NULL), acc);
    /* out of range and NULL are harmless */
    ck_assert_ptr_null(cg_node_next(n, 2, &nr));
    ck_assert_ptr_null(cg_node_next(n, -1, &nr));
    ck_assert_ptr_null(cg_node_next(NULL, 0, &nr));
    ck_assert_int_eq(cg_node_num_next(NULL), 0);
    ck_assert_ptr_null(cg_node_name(NULL));
    ck_assert_ptr_null(cg_tensor_grad_fn(NULL));
}
END_TEST

START_TEST(test_requires_grad_propagation)
{
    cg_tensor *a = lit("[1., 2.]", false, NULL);
    cg_tensor *b = lit("[3., 4.]", false, NULL);
    cg_tensor *x = lit("[5., 6.]", true, NULL);
    cg_tensor *ab = B(cg_add, a, b);
    ck_assert(!cg_tensor_requires_grad(ab));
    ck_assert(cg_tensor_is_leaf(ab));
    ck_assert_ptr_null(cg_tensor_grad_fn(ab));
    cg_tensor *ax = B(cg_mul, a, x);
    ck_assert(cg_tensor_requires_grad(ax));
    const cg_node *n = cg_tensor_grad_fn(ax);
    ck_assert_ptr_null(cg_node_next(n, 0, NULL));
    ck_assert_str_eq(cg_node_name(cg_node_next(n, 1, NULL)), "AccumulateGrad");
    /* views and copies carry requires_grad on */
    cg_tensor *v = view(ax, (int64_t[]){2, 1}, 2);
    ck_assert(cg_tensor_requires_grad(v));
    ck_assert_str_eq(cg_node_name(cg_tensor_grad_fn(v)), "ViewBackward0");
    cg_tensor *c = U(cg_tensor_clone, a);
    ck_assert(!cg_tensor_requires_grad(c));
    /* requires_grad_ on a leaf */
    tu_ok(cg_tensor_requires_grad_(a, true));
    ck_assert(cg_tensor_requires_grad(a));
    tu_ok(cg_tensor_requires_grad_(a, false));
    ck_assert(!cg_tensor_requires_grad(a));
}
END_TEST

START_TEST(test_grad_accumulates)
{
    cg_tensor *x = lit("[1., 2., 3.]", true, "x");
    ck_assert_ptr_null(cg_tensor_grad(x));
    cg_tensor *l1 = U(cg_sum, S(cg_mul_scalar, x, 2.0));
    tu_ok(cg_tensor_backward(l1, NULL, false));
    cg_tensor *g = cg_tensor_grad(x);
    assert_values(g, (double[]){2, 2, 2}, 3, 0.0, "x.grad");
    ck_assert(!cg_tensor_requires_grad(g));
    ck_assert_ptr_null(cg_tensor_grad_fn(g));
    ck_assert_int_eq(cg_tensor_dtype(g), CG_FLOAT64);
    /* a second backward adds in place, into the same tensor */
    cg_tensor *l2 = U(cg_sum, B(cg_mul, x, x));
    tu_ok(cg_tensor_backward(l2, NULL, false));
    ck_assert_ptr_eq(cg_tensor_grad(x), g);
    assert_values(g, (double[]){4, 6, 8}, 3, 0.0, "x.grad");
    /* backward on the leaf itself */
    tu_ok(cg_tensor_backward(x, lit("[1., 10., 100.]", false, NULL), false));
    assert_values(g, (double[]){5, 16, 108}, 3, 0.0, "x.grad");
}
END_TEST

/* Gradients that arrive strided -- transposed (TBackward0), permuted,
 * expanded (SumBackward0), complex -- accumulate element by element into
 * .grad and into a node's buffer (a tensor used twice). */
static cg_tensor *arange_dt(int64_t n, cg_dtype dt, double scale,
                            const int64_t *shape, int nd, bool rg)
{
    cg_tensor *a = NULL, *b = NULL, *v = NULL;
    tu_ok(cg_arange(n, CG_FLOAT64, &a));
    tu_ok(cg_mul_scalar(a, scale, &b));
    cg_tensor_release(a);
    tu_ok(cg_tensor_to(b, dt, &a));
    cg_tensor_release(b);
    tu_ok(cg_tensor_reshape(a, shape, nd, &v));
    cg_tensor_release(a);
    tu_ok(cg_tensor_contiguous(v, &b));
    cg_tensor_release(v);
    tu_ok(cg_tensor_requires_grad_(b, rg));
    return keep(b);
}

static void assert_elems(const cg_tensor *t, const double *want, int64_t n,
                         const char *what)
{
    double got[64];
    ck_assert_int_le(n, 64);
    tu_ok(cg_tensor_to_doubles(t, got, n));
    for (int64_t i = 0; i < n; i++)
        ck_assert_msg(got[i] == want[i], "%s[%lld]: %g, expected %g", what,
                      (long long)i, got[i], want[i]);
}

START_TEST(test_grad_accumulates_strided)
{
    const cg_dtype dts[2] = {CG_FLOAT32, CG_FLOAT64};
    for (int d = 0; d < 2; d++) {
        const cg_dtype dt = dts[d];
        /* x (3, 4): sum(x.t() * c) gives x.grad = c.t(), transposed */
        const int64_t xs[2] = {3, 4}, cs[2] = {4, 3};
        cg_tensor *x = arange_dt(12, dt, 1.0, xs, 2, true);
        cg_tensor *c1 = arange_dt(12, dt, 0.5, cs, 2, false);
        cg_tensor *c2 = arange_dt(12, dt, -0.25, cs, 2, false);
        double want[12] = {0};
        for (int round = 0; round < 2; round++) {
            cg_tensor *c = round ? c2 : c1;
            cg_tensor *l = U(cg_sum, B(cg_mul, U(cg_tensor_t, x), c));
            tu_ok(cg_tensor_backward(l, NULL, false));
            for (int i = 0; i < 3; i++)
                for (int j = 0; j < 4; j++)
                    want[i * 4 + j] += (round ? -0.25 : 0.5) * (j * 3 + i);
            assert_elems(cg_tensor_grad(x), want, 12, "x.grad, transposed");
        }
        /* an expanded gradient (stride 0) on top */
        tu_ok(cg_tensor_backward(U(cg_sum, x), NULL, false));
        for (int i = 0; i < 12; i++)
            want[i] += 1.0;
        assert_elems(cg_tensor_grad(x), want, 12, "x.grad, expanded");
        /* a node's buffer: y = 2x used transposed and as it is */
        cg_tensor *z = arange_dt(12, dt, 1.0, xs, 2, true);
        cg_tensor *y = S(cg_mul_scalar, z, 2.0);
        cg_tensor *l = B(cg_add, U(cg_sum, B(cg_mul, U(cg_tensor_t, y), c1)),
                         U(cg_sum, B(cg_mul, y, z)));
        tu_ok(cg_tensor_backward(l, NULL, false));
        double wz[12];
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++) {
                int k = i * 4 + j;
                /* d/dz of sum(2z^T c1) + sum(2z * z) */
                wz[k] = 2.0 * 0.5 * (j * 3 + i) + 4.0 * k;
            }
        assert_elems(cg_tensor_grad(z), wz, 12, "z.grad, through a buffer");
        /* 3-D, permuted: (2, 3, 4) seen as (4, 3, 2) */
        const int64_t ws[3] = {2, 3, 4}, ps[3] = {4, 3, 2};
        const int64_t perm[3] = {2, 1, 0};
        cg_tensor *w = arange_dt(24, dt, 1.0, ws, 3, true);
        cg_tensor *cp = arange_dt(24, dt, 0.5, ps, 3, false);
        for (int round = 0; round < 2; round++) {
            cg_tensor *pw = NULL;
            tu_ok(cg_tensor_permute(w, perm, 3, &pw));
            keep(pw);
            tu_ok(
                cg_tensor_backward(U(cg_sum, B(cg_mul, pw, cp)), NULL, false));
        }
        double ww[24];
        for (int a = 0; a < 2; a++)
            for (int b = 0; b < 3; b++)
                for (int c = 0; c < 4; c++)
                    ww[(a * 3 + b) * 4 + c] = 2 * 0.5 * ((c * 3 + b) * 2 + a);
        assert_elems(cg_tensor_grad(w), ww, 24, "w.grad, permuted");
    }
    /* complex64: backward through x.t() with complex gradients, twice --
     * the second adds a transposed complex gradient into x.grad */
    const int64_t xs[2] = {3, 4}, gs[2] = {4, 3};
    cg_tensor *re = arange_dt(12, CG_FLOAT32, 1.0, xs, 2, false);
    cg_tensor *x = NULL;
    tu_ok(cg_complex(re, re, &x));
    keep(x);
    tu_ok(cg_tensor_requires_grad_(x, true));
    double wre[12] = {0}, wim[12] = {0};
    for (int round = 0; round < 2; round++) {
        cg_tensor *gr =
            arange_dt(12, CG_FLOAT32, round ? 0.5 : -2.0, gs, 2, false);
        cg_tensor *gi =
            arange_dt(12, CG_FLOAT32, round ? 3.0 : 0.25, gs, 2, false);
        cg_tensor *g = NULL;
        tu_ok(cg_complex(gr, gi, &g));
        keep(g);
        tu_ok(cg_tensor_backward(U(cg_tensor_t, x), g, false));
        for (int i = 0; i < 3; i++)
            for (int j = 0; j < 4; j++) {
                wre[i * 4 + j] += (round ? 0.5 : -2.0) * (j * 3 + i);
                wim[i * 4 + j] += (round ? 3.0 : 0.25) * (j * 3 + i);
            }
        assert_elems(U(cg_real, cg_tensor_grad(x)), wre, 12,
                     "complex x.grad, real part");
        assert_elems(U(cg_imag, cg_tensor_grad(x)), wim, 12,
                     "complex x.grad, imaginary part");
    }
}
END_TEST

START_TEST(test_zero_grad)
{
    cg_tensor *x = lit("[1., 2.]", true, NULL);
    tu_ok(cg_tensor_zero_grad(x, false)); /* no grad: nothing to do */
    ck_assert_ptr_null(cg_tensor_grad(x));
    tu_ok(cg_tensor_backward(U(cg_sum, S(cg_mul_scalar, x, 3.0)), NULL, false));
    cg_tensor *g = cg_tensor_grad(x);
    tu_ok(cg_tensor_zero_grad(x, false));
    ck_assert_ptr_eq(cg_tensor_grad(x), g);
    assert_values(g, (double[]){0, 0}, 2, 0.0, "zeroed");
    tu_ok(cg_tensor_backward(U(cg_sum, S(cg_mul_scalar, x, 3.0)), NULL, false));
    assert_values(cg_tensor_grad(x), (double[]){3, 3}, 2, 0.0, "x.grad");
    tu_ok(cg_tensor_zero_grad(x, true));
    ck_assert_ptr_null(cg_tensor_grad(x));
    /* set_grad: shape and dtype checked, PyTorch's words */
    tu_fails(cg_tensor_set_grad(x, lit("[1., 2., 3.]", false, NULL)),
             CG_ERR_RUNTIME, "assigned grad has data of a different size");
    tu_fails(cg_tensor_set_grad(x, lit_dt("[1., 2.]", CG_FLOAT32, false, NULL)),
             CG_ERR_RUNTIME, "assigned grad has data of a different type");
    ck_assert_ptr_null(cg_tensor_grad(x));
    cg_tensor *mine = lit("[7., 8.]", false, NULL);
    tu_ok(cg_tensor_set_grad(x, mine));
    ck_assert_ptr_eq(cg_tensor_grad(x), mine);
    tu_ok(cg_tensor_set_grad(x, NULL));
    ck_assert_ptr_null(cg_tensor_grad(x));
    tu_fails(cg_tensor_zero_grad(NULL, true), CG_ERR_MISUSE,
             "tensor must not be NULL");
}
END_TEST

START_TEST(test_detach)
{
    cg_tensor *x = lit("[1., 2., 3.]", true, "x");
    cg_tensor *y = U(cg_exp, x);
    cg_tensor *d = detach(y);
    ck_assert(cg_tensor_shares_storage(d, y));
    ck_assert_ptr_eq(cg_tensor_data(d), cg_tensor_data(y));
    ck_assert_ptr_null(cg_tensor_grad_fn(d));
    ck_assert(!cg_tensor_requires_grad(d));
    ck_assert(cg_tensor_is_leaf(d));
    ck_assert_ptr_null(cg_tensor_grad(d));
    /* an op on the detached tensor records nothing */
    ck_assert_ptr_null(cg_tensor_grad_fn(S(cg_mul_scalar, d, 2.0)));
    /* detach shares the version counter: writing through it is seen */
    tu_ok(cg_tensor_set(d, (int64_t[]){0}, 5.0, 0.0));
    ck_assert_double_eq(get1(y, 0), 5.0);
    cg_status st = cg_tensor_backward(U(cg_sum, y), NULL, false);
    ck_assert_int_eq(st, CG_ERR_RUNTIME);
    ck_assert_ptr_nonnull(strstr(cg_last_error(), "which is output 0 of "
                                                  "ExpBackward0, is at "
                                                  "version 1; expected "
                                                  "version 0 instead."));
    ck_assert_ptr_null(cg_tensor_grad(x));
}
END_TEST

START_TEST(test_retain_grad)
{
    cg_tensor *x = lit("[1., 2., 3.]", true, "x");
    cg_tensor *y = S(cg_mul_scalar, x, 2.0);
    cg_tensor *w = S(cg_mul_scalar, x, 3.0);
    ck_assert(!cg_tensor_retains_grad(y));
    tu_ok(cg_tensor_retain_grad(y));
    ck_assert(cg_tensor_retains_grad(y));
    tu_ok(cg_tensor_retain_grad(x)); /* a leaf: no-op */
    ck_assert(!cg_tensor_retains_grad(x));
    cg_tensor *l = U(cg_sum, B(cg_add, B(cg_mul, y, y), w));
    tu_ok(cg_tensor_backward(l, NULL, true));
    /* dl/dy = 2y = 4x; dl/dx = 2y*2 + 3 */
    assert_values(cg_tensor_grad(y), (double[]){4, 8, 12}, 3, 0.0, "y.grad");
    ck_assert_ptr_null(cg_tensor_grad(w));
    assert_values(cg_tensor_grad(x), (double[]){11, 19, 27}, 3, 0.0, "x.grad");
    /* a second backward: the retained grad accumulates, out of place */
    cg_tensor *g1 = cg_tensor_grad(y);
    cg_tensor *hold = cg_tensor_retain(g1);
    tu_ok(cg_tensor_backward(l, NULL, false));
    assert_values(cg_tensor_grad(y), (double[]){8, 16, 24}, 3, 0.0, "y.grad");
    assert_values(hold, (double[]){4, 8, 12}, 3, 0.0, "the first y.grad");
    cg_tensor_release(hold);
    /* retain_grad on a tensor that needs no grad */
    const char *msg = "can't retain_grad on Tensor that has "
                      "requires_grad=False";
    tu_fails(cg_tensor_retain_grad(lit("[1.]", false, NULL)), CG_ERR_RUNTIME,
             msg);
    /* a retaining tensor that dies first leaves no dangling pointer */
    cg_tensor *t = NULL;
    tu_ok(cg_mul_scalar(x, 4.0, &t));
    tu_ok(cg_tensor_retain_grad(t));
    cg_tensor *u = U(cg_sum, t);
    cg_tensor_release(t);
    tu_ok(cg_tensor_backward(u, NULL, false));
}
END_TEST

START_TEST(test_retain_graph)
{
    cg_tensor *x = lit("[0., 1.]", true, NULL);
    cg_tensor *l = U(cg_sum, U(cg_exp, x));
    const cg_node *e = cg_node_next(cg_tensor_grad_fn(l), 0, NULL);
    ck_assert_str_eq(cg_node_name(e), "ExpBackward0");
    ck_assert_int_eq(cg_node_num_saved(e), 1);
    tu_ok(cg_tensor_backward(l, NULL, true));
    ck_assert_int_eq(cg_node_num_saved(e), 1);
    tu_ok(cg_tensor_backward(l, NULL, true));
    tu_ok(cg_tensor_backward(l, NULL, false));
    ck_assert_int_eq(cg_node_num_saved(e), 0); /* released */
    ck_assert_ptr_null(cg_node_saved(e, 0));
    double e1 = exp(1.0);
    assert_values(cg_tensor_grad(x), (double[]){3.0, 3.0 * e1}, 2, 1e-15,
                  "x.grad");
    grad_snap s = snap_grad(x);
    tu_fails(cg_tensor_backward(l, NULL, false), CG_ERR_RUNTIME,
             "Trying to backward through the graph a second time (or "
             "directly access saved tensors after they have already been "
             "freed). Saved intermediate values of the graph are freed when "
             "you call .backward() or autograd.grad(). Specify "
             "retain_graph=True if you need to backward through the graph a "
             "second time or if you need to access saved tensors after "
             "calling backward.");
    check_grad_snap(&s, "x after a second backward");
    /* nodes that saved nothing can run again, as in PyTorch */
    cg_tensor *v = U(cg_sum, view(x, (int64_t[]){2, 1}, 2));
    tu_ok(cg_tensor_backward(v, NULL, false));
    tu_ok(cg_tensor_backward(v, NULL, false));
}
END_TEST

START_TEST(test_no_grad_scope)
{
    cg_tensor *x = lit("[1., 2.]", true, NULL);
    ck_assert(cg_is_grad_enabled());
    bool prev = cg_set_grad_enabled(false);
    ck_assert(prev);
    ck_assert(!cg_is_grad_enabled());
    cg_tensor *y = U(cg_exp, S(cg_mul_scalar, x, 2.0));
    cg_tensor *z = B(cg_mul, x, x);
    cg_tensor *v = view(x, (int64_t[]){1, 2}, 2);
    ck_assert(!cg_set_grad_enabled(prev));
    ck_assert(cg_is_grad_enabled());
    for (int i = 0; i < 3; i++) {
        cg_tensor *t = (cg_tensor *[]){y, z, v}[i];
        ck_assert_ptr_null(cg_tensor_grad_fn(t));
        ck_assert(!cg_tensor_requires_grad(t));
        ck_assert(cg_tensor_is_leaf(t));
    }
    /* the grad mode is per thread and nests */
    prev = cg_set_grad_enabled(false);
    bool inner = cg_set_grad_enabled(true);
    ck_assert(!inner);
    ck_assert_ptr_nonnull(cg_tensor_grad_fn(S(cg_mul_scalar, x, 2.0)));
    cg_set_grad_enabled(inner);
    cg_set_grad_enabled(prev);
}
END_TEST

START_TEST(test_requires_grad_errors)
{
    cg_tensor *x = lit("[1., 2.]", true, NULL);
    cg_tensor *y = S(cg_mul_scalar, x, 2.0);
    tu_fails(cg_tensor_requires_grad_(y, false), CG_ERR_RUNTIME,
             "you can only change requires_grad flags of leaf variables. If "
             "you want to use a computed variable in a subgraph that doesn't "
             "require differentiation use var_no_grad = var.detach().");
    ck_assert(cg_tensor_requires_grad(y));
    tu_ok(cg_tensor_requires_grad_(y, true)); /* allowed, as in PyTorch */
    tu_fails(cg_tensor_requires_grad_(NULL, true), CG_ERR_MISUSE,
             "tensor must not be NULL");
    /* in place on a leaf that requires grad */
    tu_fails(cg_tensor_fill_(x, 1.0), CG_ERR_RUNTIME,
             "a leaf Variable that requires grad is being used in an "
             "in-place operation.");
    tu_fails(cg_tensor_set(x, (int64_t[]){0}, 1.0, 0.0), CG_ERR_RUNTIME,
             "a leaf Variable that requires grad is being used in an "
             "in-place operation.");
    ck_assert_double_eq(get1(x, 0), 1.0);
    /* under no_grad the leaf may be written */
    bool prev = cg_set_grad_enabled(false);
    tu_ok(cg_tensor_set(x, (int64_t[]){0}, 9.0, 0.0));
    cg_set_grad_enabled(prev);
    ck_assert_double_eq(get1(x, 0), 9.0);
}
END_TEST

START_TEST(test_saved_released)
{
    cg_tensor *x = lit("[1., 2., 3.]", true, "x");
    cg_tensor *w = lit("[[1.], [2.], [3.]]", true, "w");
    cg_tensor *m = B(cg_mm, view(x, (int64_t[]){1, 3}, 2), w);
    cg_tensor *e = U(cg_exp, m);
    const cg_node *en = cg_tensor_grad_fn(e);
    const cg_node *mn = cg_tensor_grad_fn(m);
    ck_assert_int_eq(cg_node_num_saved(en), 1);
    ck_assert_int_eq(cg_node_num_saved(mn), 2);
    ck_assert_ptr_nonnull(cg_node_saved(mn, 1));
    ck_assert_ptr_null(cg_node_saved(mn, 2));
    /* the saved output is an alias of e without autograd state */
    const cg_tensor *r = cg_node_saved(en, 0);
    ck_assert(cg_tensor_shares_storage(r, e));
    ck_assert_ptr_null(cg_tensor_grad_fn(r));
    tu_ok(cg_tensor_backward(U(cg_sum, e), NULL, false));
    ck_assert_int_eq(cg_node_num_saved(en), 0);
    ck_assert_int_eq(cg_node_num_saved(mn), 0);
    ck_assert_ptr_null(cg_node_saved(mn, 0));
    /* x.grad = exp(m) * w^T, w.grad = exp(m) * x^T with m = 14 */
    double em = exp(14.0);
    assert_values(cg_tensor_grad(x), (double[]){em, 2 * em, 3 * em}, 3,
                  em * 1e-15, "x.grad");
    assert_values(cg_tensor_grad(w), (double[]){em, 2 * em, 3 * em}, 3,
                  em * 1e-15, "w.grad");
}
END_TEST

/* release_ctx runs exactly once per node, when the node dies. */
START_TEST(test_release_ctx_once)
{
    int released = 0;
    cg_tensor *x = lit("[1., 2.]", true, NULL);
    cg_tensor *y = NULL;
    tu_ok(tst_apply(x, &tst_ctx_op,
                    (tst_ctx){.k = 2.0, .mode = TST_OK, .released = &released},
                    &y));
    cg_tensor *l = NULL;
    tu_ok(cg_sum(y, &l));
    tu_ok(cg_tensor_backward(l, NULL, true));
    ck_assert_int_eq(released, 0);
    cg_tensor_release(y);
    ck_assert_int_eq(released, 0); /* l still holds the graph */
    cg_tensor_release(l);
    ck_assert_int_eq(released, 1);
}
END_TEST

START_TEST(test_trace)
{
    cg_tensor *x = lit("[1., 2., 3.]", true, NULL);
    cg_tensor *l =
        U(cg_sum, S(cg_mul_scalar, view(x, (int64_t[]){3, 1}, 2), 2.0));
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    cg_autograd_set_trace(f);
    tu_ok(cg_tensor_backward(l, NULL, false));
    cg_autograd_set_trace(NULL);
    char *s = file_text(f);
    fclose(f);
    ck_assert_str_eq(s, "[backward] SumBackward0: grad_output [] -> "
                        "grad_inputs ([3, 1])\n"
                        "[backward] MulBackward0: grad_output [3, 1] -> "
                        "grad_inputs ([3, 1], None)\n"
                        "[backward] ViewBackward0: grad_output [3, 1] -> "
                        "grad_inputs ([3])\n");
    free(s);
}
END_TEST

/* PyTorch's order: among ready nodes the newest runs first, and a node
 * runs once all its gradients arrived; the result does not depend on it,
 * but the float summation order of a leaf gradient does. */
START_TEST(test_diamond)
{
    cg_tensor *x = lit("[1., 2.]", true, NULL);
    cg_tensor *a = S(cg_mul_scalar, x, 2.0);
    cg_tensor *b = U(cg_exp, a);
    cg_tensor *c = S(cg_mul_scalar, a, 3.0);
    cg_tensor *l = U(cg_sum, B(cg_add, B(cg_mul, b, c), a));
    tu_ok(cg_tensor_backward(l, NULL, false));
    /* l = sum(e^{2x} 6x + 2x): dl/dx = 12x e^{2x} + 6 e^{2x} + 2 */
    double e2 = exp(2.0), e4 = exp(4.0);
    assert_values(cg_tensor_grad(x),
                  (double[]){12 * e2 + 6 * e2 + 2, 24 * e4 + 6 * e4 + 2}, 2,
                  1e-12, "x.grad");
}
END_TEST

/* A new .grad never aliases the gradient given, another leaf's .grad or
 * anything the graph still holds. */
START_TEST(test_grads_are_private)
{
    cg_tensor *x = lit("[1., 2.]", true, "x");
    cg_tensor *y = lit("[3., 4.]", true, "y");
    cg_tensor *g = lit("[10., 20.]", false, "g");
    tu_ok(cg_tensor_backward(U(cg_tensor_clone, x), g, false));
    ck_assert(!cg_tensor_shares_storage(cg_tensor_grad(x), g));
    tu_ok(cg_tensor_set(g, (int64_t[]){0}, -1.0, 0.0));
    assert_values(cg_tensor_grad(x), (double[]){10, 20}, 2, 0.0, "x.grad");
    /* AddBackward0 hands the same gradient to both edges */
    tu_ok(cg_tensor_zero_grad(x, true));
    tu_ok(cg_tensor_backward(B(cg_add, x, y), g, false));
    ck_assert(!cg_tensor_shares_storage(cg_tensor_grad(x), cg_tensor_grad(y)));
    ck_assert(!cg_tensor_shares_storage(cg_tensor_grad(x), g));
    /* the leaf given as its own root */
    cg_tensor *z = lit("[5., 6.]", true, "z");
    tu_ok(cg_tensor_backward(z, g, false));
    ck_assert(!cg_tensor_shares_storage(cg_tensor_grad(z), g));
    assert_values(cg_tensor_grad(z), (double[]){-1, 20}, 2, 0.0, "z.grad");
}
END_TEST

/* A gradient of another real dtype is converted, as PyTorch's
 * validate_outputs does; nodes with more than 8 inputs work. */
START_TEST(test_gradient_dtype_and_wide_nodes)
{
    cg_tensor *x = lit("[1., 2.]", true, "x");
    cg_tensor *g = lit_dt("[0.5, 0.25]", CG_FLOAT32, false, NULL);
    tu_ok(cg_tensor_backward(S(cg_mul_scalar, x, 4.0), g, false));
    ck_assert_int_eq(cg_tensor_dtype(cg_tensor_grad(x)), CG_FLOAT64);
    assert_values(cg_tensor_grad(x), (double[]){2, 1}, 2, 0.0, "x.grad");
    cg_tensor *parts[12];
    for (int i = 0; i < 12; i++) {
        parts[i] = full((int64_t[]){1}, 1, (double)i, CG_FLOAT64);
        tu_ok(cg_tensor_requires_grad_(parts[i], i % 3 != 1));
    }
    cg_tensor *c = cat(parts, 12, 0);
    ck_assert_int_eq(cg_node_num_next(cg_tensor_grad_fn(c)), 12);
    tu_ok(cg_tensor_backward(U(cg_sum, S(cg_pow_scalar, c, 2.0)), NULL, false));
    for (int i = 0; i < 12; i++) {
        if (i % 3 == 1) {
            ck_assert_ptr_null(cg_tensor_grad(parts[i]));
            ck_assert_ptr_null(cg_node_next(cg_tensor_grad_fn(c), i, NULL));
        } else {
            assert_values(cg_tensor_grad(parts[i]), (double[]){2.0 * i}, 1, 0.0,
                          "part.grad");
        }
    }
}
END_TEST

/* ======================================================================
 * errors: PyTorch's words, and every tensor as it was afterwards
 * ====================================================================== */

/* messages.txt, made by gen_autograd.py */
static const char *torch_message(const char *key)
{
    static char buf[2048];
    char *text = tu_read_text(tu_data_path("autograd/messages.txt"));
    ck_assert_msg(text != NULL, "messages.txt missing");
    size_t klen = strlen(key);
    const char *line = text;
    buf[0] = '\0';
    while (line && *line) {
        if (strncmp(line, key, klen) == 0 && line[klen] == '\t') {
            const char *msg = line + klen + 1;
            size_t n = strcspn(msg, "\n");
            ck_assert_uint_lt(n, sizeof buf);
            memcpy(buf, msg, n);
            buf[n] = '\0';
            break;
        }
        line = strchr(line, '\n');
        if (line)
            line++;
    }
    free(text);
    ck_assert_msg(buf[0] != '\0', "no message %s in messages.txt", key);
    return buf;
}

/* The named leaves of gen_autograd.py's leaves(). */
typedef struct leaves {
    cg_tensor *x, *y, *w, *v, *b, *c;
} leaves;

static leaves make_leaves(void)
{
    leaves L;
    L.x = lit("[[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]]", true, "x");
    L.y = lit("[0.3, -0.6, 0.9]", true, "y");
    L.w = lit("[[0.1, 0.2, -0.3, 0.4], [0.5, -0.6, 0.7, 0.8], "
              "[-0.9, 1.0, 1.1, -1.2]]",
              true, "w");
    L.v = lit("[1.0, 2.0, 3.0]", false, "v");
    L.b = lit("[[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]], "
              "[[0.7, 0.8, 0.9], [1.0, 1.1, 1.2]]]",
              true, "b");
    L.c = lit_dt("[[1+2j, -0.5+0.25j, 3-1j], [0.5-0.5j, 2+0j, -1+1.5j]]",
                 CG_COMPLEX128, true, "c");
    return L;
}

/* Gives x and w a gradient first, so "unchanged" means something. */
static void prime_grads(leaves *L)
{
    tu_ok(cg_tensor_backward(U(cg_sum, B(cg_mm, L->x, L->w)), NULL, false));
    ck_assert_ptr_nonnull(cg_tensor_grad(L->x));
    ck_assert_ptr_nonnull(cg_tensor_grad(L->w));
}

START_TEST(test_error_scalar)
{
    leaves L = make_leaves();
    prime_grads(&L);
    grad_snap sx = snap_grad(L.x), sw = snap_grad(L.w);
    cg_tensor *m = B(cg_mm, L.x, L.w);
    tu_fails(cg_tensor_backward(m, NULL, false), CG_ERR_RUNTIME,
             torch_message("scalar"));
    ck_assert_str_eq(torch_message("scalar"),
                     "grad can be implicitly created only for scalar outputs");
    check_grad_snap(&sx, "x");
    check_grad_snap(&sw, "w");
    ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(m)), 2);
}
END_TEST

START_TEST(test_error_second_backward)
{
    leaves L = make_leaves();
    cg_tensor *s = U(cg_sum, B(cg_mm, L.x, L.w));
    tu_ok(cg_tensor_backward(s, NULL, false));
    grad_snap sx = snap_grad(L.x), sw = snap_grad(L.w);
    tu_fails(cg_tensor_backward(s, NULL, false), CG_ERR_RUNTIME,
             torch_message("second"));
    check_grad_snap(&sx, "x");
    check_grad_snap(&sw, "w");
    /* with exp (saves its result) as well */
    cg_tensor *e = U(cg_sum, U(cg_exp, L.y));
    tu_ok(cg_tensor_backward(e, NULL, false));
    grad_snap sy = snap_grad(L.y);
    tu_fails(cg_tensor_backward(e, NULL, true), CG_ERR_RUNTIME,
             torch_message("second"));
    check_grad_snap(&sy, "y");
}
END_TEST

START_TEST(test_error_no_grad_fn)
{
    leaves L = make_leaves();
    prime_grads(&L);
    grad_snap sx = snap_grad(L.x), sw = snap_grad(L.w);
    bool prev = cg_set_grad_enabled(false);
    cg_tensor *m = B(cg_mm, L.x, L.w);
    cg_set_grad_enabled(prev);
    cg_tensor *s = U(cg_sum, m);
    ck_assert(!cg_tensor_requires_grad(s));
    tu_fails(cg_tensor_backward(s, NULL, false), CG_ERR_RUNTIME,
             torch_message("nograd"));
    tu_fails(cg_tensor_backward(L.v, lit("[1., 1., 1.]", false, NULL), false),
             CG_ERR_RUNTIME, torch_message("nograd"));
    check_grad_snap(&sx, "x");
    check_grad_snap(&sw, "w");
}
END_TEST

START_TEST(test_error_shape_mismatch)
{
    cg_tensor *w5 = full((int64_t[]){1, 1, 2, 1, 1}, 5, 1.0, CG_FLOAT64);
    tu_ok(cg_tensor_requires_grad_(w5, true));
    tu_ok(cg_tensor_set_grad(
        w5, full((int64_t[]){1, 1, 2, 1, 1}, 5, 4.0, CG_FLOAT64)));
    grad_snap s = snap_grad(w5);
    cg_tensor *c = U(cg_tensor_clone, w5);
    cg_tensor *g = full((int64_t[]){3}, 1, 1.0, CG_FLOAT64);
    tu_fails(cg_tensor_backward(c, g, false), CG_ERR_RUNTIME,
             torch_message("mismatch"));
    ck_assert_str_eq(torch_message("mismatch"),
                     "Mismatch in shape: grad_output[0] has a shape of "
                     "torch.Size([3]) and output[0] has a shape of "
                     "torch.Size([1, 1, 2, 1, 1]).");
    check_grad_snap(&s, "w5");
    /* the gradient given is not modified either way */
    assert_values(g, (double[]){1, 1, 1}, 3, 0.0, "gradient");
}
END_TEST

START_TEST(test_error_version_saved_output)
{
    /* x.exp() saves its result; writing it under no_grad is seen */
    cg_tensor *x = lit("[1., 2., 3.]", true, NULL);
    cg_tensor *y = U(cg_exp, x);
    bool prev = cg_set_grad_enabled(false);
    tu_ok(cg_tensor_set(y, (int64_t[]){0}, 5.0, 0.0));
    cg_set_grad_enabled(prev);
    tu_fails(cg_tensor_backward(U(cg_sum, y), NULL, false), CG_ERR_RUNTIME,
             torch_message("version_output"));
    ck_assert_ptr_null(cg_tensor_grad(x));
    ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(y)), 1);
    /* through a view of the output: the same counter */
    cg_tensor *y2 = U(cg_exp, x);
    prev = cg_set_grad_enabled(false);
    tu_ok(cg_tensor_set(view(y2, (int64_t[]){3}, 1), (int64_t[]){1}, 0.0, 0.0));
    cg_set_grad_enabled(prev);
    tu_fails(cg_tensor_backward(U(cg_sum, y2), NULL, false), CG_ERR_RUNTIME,
             torch_message("version_view_of_output"));
    ck_assert_ptr_null(cg_tensor_grad(x));
}
END_TEST

/* A saved input with no grad_fn (PyTorch: no "which is output" clause). */
START_TEST(test_error_version_saved_input)
{
    leaves L = make_leaves();
    prime_grads(&L);
    cg_tensor *w = U(cg_tensor_clone, detach(L.w)); /* requires no grad */
    cg_tensor *m = B(cg_mm, L.x, w);
    tu_ok(cg_tensor_set(w, (int64_t[]){0, 0}, 1.0, 0.0));
    grad_snap sx = snap_grad(L.x);
    tu_fails(cg_tensor_backward(U(cg_sum, m), NULL, false), CG_ERR_RUNTIME,
             torch_message("version_input"));
    check_grad_snap(&sx, "x");
}
END_TEST

START_TEST(test_error_version_saved_leaf)
{
    leaves L = make_leaves();
    prime_grads(&L);
    cg_tensor *m = B(cg_mm, L.x, L.w);
    bool prev = cg_set_grad_enabled(false);
    tu_ok(cg_tensor_set(L.x, (int64_t[]){0, 0}, 1.0, 0.0));
    cg_set_grad_enabled(prev);
    grad_snap sx = snap_grad(L.x), sw = snap_grad(L.w);
    tu_fails(cg_tensor_backward(U(cg_sum, m), NULL, false), CG_ERR_RUNTIME,
             torch_message("version_leaf"));
    check_grad_snap(&sx, "x");
    check_grad_snap(&sw, "w");
}
END_TEST

START_TEST(test_error_leaf_inplace)
{
    leaves L = make_leaves();
    tu_fails(cg_tensor_fill_(L.x, 1.0), CG_ERR_RUNTIME,
             torch_message("leaf_inplace"));
    tu_fails(cg_tensor_requires_grad_(U(cg_tensor_clone, L.x), false),
             CG_ERR_RUNTIME, torch_message("requires_grad_nonleaf"));
    tu_fails(cg_tensor_retain_grad(L.v), CG_ERR_RUNTIME,
             torch_message("retain_grad_no_grad"));
}
END_TEST

/* A backward failing half-way through (after other branches delivered
 * gradients into buffers) changes nothing: no .grad, no retained grad, no
 * saved tensor; and the same graph then runs to completion. */
START_TEST(test_error_transactional)
{
    bool fail = true;
    cg_tensor *x = lit("[1., 2., 3.]", true, "x");
    cg_tensor *z = lit("[4., 5., 6.]", true, "z");
    tu_ok(cg_tensor_set_grad(x, lit("[100., 200., 300.]", false, NULL)));
    grad_snap sx = snap_grad(x), sz = snap_grad(z);
    cg_tensor *a = U(cg_exp, x);
    cg_tensor *b = tst(a, (tst_ctx){.k = 1.0, .mode = TST_FAIL, .fail = &fail});
    cg_tensor *c = B(cg_mul, z, x);
    tu_ok(cg_tensor_retain_grad(c));
    tu_ok(cg_tensor_retain_grad(a));
    cg_tensor *l = B(cg_add, U(cg_sum, b), U(cg_sum, c));
    /* sum(c)'s branch is newer and runs first: x and z get buffers */
    tu_fails(cg_tensor_backward(l, NULL, false), CG_ERR_RUNTIME,
             "TestBackward: told to fail");
    check_grad_snap(&sx, "x");
    check_grad_snap(&sz, "z");
    ck_assert_ptr_null(cg_tensor_grad(c));
    ck_assert_ptr_null(cg_tensor_grad(a));
    ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(a)), 1);
    ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(c)), 2);
    /* the graph is intact */
    fail = false;
    tu_ok(cg_tensor_backward(l, NULL, false));
    double e[3] = {exp(1.0), exp(2.0), exp(3.0)};
    assert_values(cg_tensor_grad(x),
                  (double[]){100 + e[0] + 4, 200 + e[1] + 5, 300 + e[2] + 6}, 3,
                  1e-12, "x.grad");
    assert_values(cg_tensor_grad(z), (double[]){1, 2, 3}, 3, 0.0, "z.grad");
    assert_values(cg_tensor_grad(c), (double[]){1, 1, 1}, 3, 0.0, "c.grad");
    assert_values(cg_tensor_grad(a), (double[]){1, 1, 1}, 3, 0.0, "a.grad");
    ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(a)), 0);
}
END_TEST

START_TEST(test_error_null)
{
    tu_fails(cg_tensor_backward(NULL, NULL, false), CG_ERR_MISUSE,
             "tensor must not be NULL");
    cg_tensor *x = lit("[1.]", true, NULL);
    tu_fails(cg_tensor_detach(x, NULL), CG_ERR_MISUSE, "out must not be NULL");
    tu_fails(cg_tensor_retain_grad(NULL), CG_ERR_MISUSE,
             "tensor must not be NULL");
    tu_fails(cg_tensor_set_grad(NULL, x), CG_ERR_MISUSE,
             "tensor must not be NULL");
}
END_TEST

/* ======================================================================
 * regressions: where engine.c / autograd.c once differed from PyTorch 1.13
 * or lost state (each test describes the bug it guards against)
 * ====================================================================== */

/* PyTorch refuses a complex gradient for a real output and the reverse
 * (torch/autograd/__init__.py, _make_grads); engine.c's root_gradient
 * converts silently, dropping the imaginary part. */
START_TEST(test_bug_complex_grad_dtype)
{
    leaves L = make_leaves();
    cg_tensor *cx = U(cg_tensor_clone, L.x);
    cg_tensor *g = NULL;
    tu_ok(cg_ones((int64_t[]){2, 3}, 2, CG_COMPLEX128, &g));
    keep(g);
    tu_fails(cg_tensor_backward(cx, g, false), CG_ERR_RUNTIME,
             torch_message("complex_grad_for_real"));
    ck_assert_ptr_null(cg_tensor_grad(L.x));
    cg_tensor *cc = U(cg_tensor_clone, L.c);
    tu_fails(cg_tensor_backward(cc, full((int64_t[]){2, 3}, 2, 1.0, CG_FLOAT64),
                                false),
             CG_ERR_RUNTIME, torch_message("real_grad_for_complex"));
    ck_assert_ptr_null(cg_tensor_grad(L.c));
}
END_TEST

/* PyTorch checks the gradient's shape (_make_grads) before the engine sees
 * that the output requires no grad. */
START_TEST(test_bug_check_order)
{
    cg_tensor *t = full((int64_t[]){3}, 1, 1.0, CG_FLOAT64);
    tu_fails(
        cg_tensor_backward(t, full((int64_t[]){2}, 1, 1.0, CG_FLOAT64), false),
        CG_ERR_RUNTIME, torch_message("mismatch_no_grad"));
}
END_TEST

/* engine.c discover(): a node is marked queued (and its dependency count
 * raised) before vec_push(&e->nodes, ...) can fail; cleanup() only resets
 * the nodes in e->nodes, so after an out-of-memory backward that node stays
 * "queued" for ever and a later backward never runs it: gradients go
 * missing silently. */
START_TEST(test_bug_discover_state_after_nomem)
{
    cg_tensor *x = lit("[1., 2.]", true, NULL);
    cg_tensor *y = S(cg_mul_scalar, x, 3.0);
    /* a failing backward from y: its first allocation fails */
    cg_tensor *g = full((int64_t[]){2}, 1, 1.0, CG_FLOAT64);
    tu_alloc_begin(1);
    cg_status st = cg_tensor_backward(y, g, true);
    tu_alloc_end();
    ck_assert_int_eq(st, CG_ERR_NOMEM);
    /* another graph through y's node */
    cg_tensor *l = U(cg_sum, S(cg_mul_scalar, y, 2.0));
    tu_ok(cg_tensor_backward(l, NULL, false));
    assert_values(cg_tensor_grad(x), (double[]){6, 6}, 2, 0.0, "x.grad");
}
END_TEST

/* The same with the growth of the node list (64 -> 128 entries) failing in
 * the middle of the graph. */
START_TEST(test_bug_discover_growth_after_nomem)
{
    cg_tensor *x = lit("[1., 2.]", true, NULL);
    cg_tensor *t = x;
    for (int i = 0; i < 100; i++)
        t = S(cg_mul_scalar, t, 1.0);
    cg_tensor *l = U(cg_sum, t);
    for (long n = 1;; n++) {
        tu_alloc_begin(n);
        cg_status st = cg_tensor_backward(l, NULL, true);
        bool failed = tu_alloc_failed();
        tu_alloc_end();
        if (!failed) {
            tu_ok(st);
            break;
        }
        ck_assert_int_eq(st, CG_ERR_NOMEM);
        ck_assert_ptr_null(cg_tensor_grad(x));
    }
    assert_values(cg_tensor_grad(x), (double[]){1, 1}, 2, 0.0, "x.grad");
    tu_ok(cg_tensor_zero_grad(x, true));
    tu_ok(cg_tensor_backward(l, NULL, false));
    assert_values(cg_tensor_grad(x), (double[]){1, 1}, 2, 0.0, "x.grad");
}
END_TEST

/* autograd.c cg__node_release_saved() calls op->release_ctx at the end of
 * every backward without retain_graph (engine.c commit()) and again when
 * the node is destroyed (node_destroy()): a release_ctx that frees memory
 * frees it twice, and a second backward through a node that saved no
 * tensor (allowed) would read released op state. */
START_TEST(test_bug_release_ctx_twice)
{
    int released = 0;
    cg_tensor *x = lit("[1., 2.]", true, NULL);
    cg_tensor *y = NULL;
    tu_ok(tst_apply(x, &tst_ctx_op,
                    (tst_ctx){.k = 2.0, .mode = TST_OK, .released = &released},
                    &y));
    keep(y);
    tu_ok(
        cg_tensor_backward(y, full((int64_t[]){2}, 1, 1.0, CG_FLOAT64), false));
    ck_assert_int_eq(released, 0); /* op state outlives the backward */
    tu_ok(
        cg_tensor_backward(y, full((int64_t[]){2}, 1, 1.0, CG_FLOAT64), false));
    drain();
    ck_assert_int_eq(released, 1);
}
END_TEST

/* ======================================================================
 * op_parity: an op must save what PyTorch 1.13 saves
 * ====================================================================== */

/* In 1.13 `x * 2` and `x / 2` are mul.Tensor / div.Tensor with a
 * wrapped-number tensor, which MulBackward0 / DivBackward0 save, so a
 * second backward fails (x + 2, x - 2, 2 - x save nothing and run again);
 * cg_mul_scalar and cg_div_scalar save nothing (arithmetic.c), so it
 * succeeds. */
START_TEST(test_parity_scalar_second_backward)
{
    cg_tensor *x = lit("[1., 2.]", true, NULL);
    cg_tensor *a = U(cg_sum, S(cg_add_scalar, x, 2.0));
    tu_ok(cg_tensor_backward(a, NULL, false));
    tu_ok(cg_tensor_backward(a, NULL, false));
    cg_tensor *s = U(cg_sum, S(cg_mul_scalar, x, 2.0));
    tu_ok(cg_tensor_backward(s, NULL, false));
    tu_fails(cg_tensor_backward(s, NULL, false), CG_ERR_RUNTIME,
             torch_message("second"));
    cg_tensor *d = U(cg_sum, S(cg_div_scalar, x, 2.0));
    tu_ok(cg_tensor_backward(d, NULL, false));
    tu_fails(cg_tensor_backward(d, NULL, false), CG_ERR_RUNTIME,
             torch_message("second"));
}
END_TEST

/* ======================================================================
 * deep: 100,000-node chains, backward, printing and freeing, no recursion
 * ====================================================================== */

#define DEEP 100000

/* x (3) through DEEP ops; returns the last (owned by the caller). */
static cg_tensor *chain(cg_tensor *x, int kind, cg_tensor *c)
{
    cg_tensor *t = cg_tensor_retain(x);
    for (int i = 0; i < DEEP; i++) {
        cg_tensor *n = NULL;
        switch (kind) {
        case 0:
            tu_ok(cg_mul_scalar(t, 1.0, &n));
            break;
        case 1:
            tu_ok(cg_tensor_view(t, (int64_t[]){i % 2 ? 3 : 1, 3}, 2 - i % 2,
                                 &n));
            break;
        default:
            tu_ok(cg_mul(t, c, &n)); /* saves c */
            break;
        }
        cg_tensor_release(t);
        t = n;
    }
    return t;
}

START_TEST(test_deep_mul_scalar)
{
    cg_tensor *x = lit("[1., 2., 3.]", true, "x");
    cg_tensor *t = chain(x, 0, NULL);
    cg_tensor *l = NULL;
    tu_ok(cg_sum(t, &l));
    cg_tensor_release(t);
    tu_ok(cg_tensor_backward(l, NULL, true));
    assert_values(cg_tensor_grad(x), (double[]){1, 1, 1}, 3, 0.0, "x.grad");
    /* printing a chain this deep: linear size, no recursion */
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tu_ok(cg_graph_print(l, f));
    long size = ftell(f);
    ck_assert_int_gt(size, 0);
    ck_assert_int_lt(size, 100L * (DEEP + 2));
    rewind(f);
    char line[512], last[512] = "";
    long lines = 0;
    bool deepest_mul = false, leaf = false;
    while (fgets(line, sizeof line, f)) {
        if (lines == 0)
            ck_assert_str_eq(line, "SumBackward0 []\n");
        if (lines == 1)
            ck_assert_str_eq(line,
                             "\xe2\x94\x94\xe2\x94\x80 MulBackward0 [3]\n");
        deepest_mul |= !strcmp(line, "[depth 100000] \xe2\x94\x9c\xe2\x94\x80 "
                                     "MulBackward0 [3]\n");
        leaf |= !strcmp(line, "[depth 100001] \xe2\x94\x9c\xe2\x94\x80 "
                              "AccumulateGrad (x [3])\n");
        memcpy(last, line, sizeof last);
        lines++;
    }
    /* Sum, 100,000 Mul, the leaf, and each Mul's None (the scalar) */
    ck_assert_int_eq(lines, 1 + DEEP + 1 + DEEP);
    ck_assert(deepest_mul);
    ck_assert(leaf);
    ck_assert_str_eq(last, "   \xe2\x94\x94\xe2\x94\x80 None\n");
    fclose(f);
    f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tu_ok(cg_graph_write_dot(l, f));
    ck_assert_int_gt(ftell(f), 0);
    fclose(f);
    cg_tensor_release(l); /* frees 100,001 nodes iteratively */
}
END_TEST

START_TEST(test_deep_views)
{
    cg_tensor *x = lit("[[1., 2., 3.]]", true, "x");
    cg_tensor *t = chain(x, 1, NULL);
    tu_ok(cg_tensor_backward(t, lit("[1., 2., 3.]", false, NULL), false));
    assert_values(cg_tensor_grad(x), (double[]){1, 2, 3}, 3, 0.0, "x.grad");
    cg_tensor_release(t);
}
END_TEST

START_TEST(test_deep_saved)
{
    cg_tensor *x = lit("[1., 2., 3.]", true, "x");
    cg_tensor *c = lit("[1., -1., 0.5]", false, "c");
    cg_tensor *t = chain(x, 2, c);
    /* freed without any backward */
    cg_tensor_release(t);
    t = chain(x, 2, c);
    tu_ok(cg_tensor_backward(t, lit("[1., 1., 1.]", false, NULL), false));
    assert_values(cg_tensor_grad(x), (double[]){1, 1, pow(0.5, DEEP)}, 3, 0.0,
                  "x.grad");
    cg_tensor_release(t);
}
END_TEST

/* ======================================================================
 * pytorch: graph structure and gradients against PyTorch 1.13
 * ====================================================================== */

static const char *const CASES[] = {
    "mul_sum",      "mul_scalar",         "square",
    "add_detached", "add_const",          "exp_log_sqrt",
    "views",        "reshape_copy",       "slices",
    "mm",           "matmul_mv",          "matmul_vm",
    "matmul_dot",   "matmul_batched",     "cat",
    "softmax",      "activations",        "div_sub",
    "pow_mean",     "rsub_neg",           "to_clone",
    "complex",      "mul_complex_scalar",
};
#define N_CASES ((int)(sizeof CASES / sizeof *CASES))

/* gen_autograd.py's CASES, op for op. */
static cg_tensor *build_case(const char *name, const leaves *L)
{
    cg_tensor *x = L->x, *y = L->y, *w = L->w, *v = L->v, *b = L->b, *c = L->c,
              *r = NULL;
    if (!strcmp(name, "mul_sum"))
        return U(cg_sum, B(cg_mul, x, y));
    if (!strcmp(name, "mul_scalar"))
        return S(cg_mul_scalar, x, 2.0);
    if (!strcmp(name, "square"))
        return B(cg_mul, x, x);
    if (!strcmp(name, "add_detached"))
        return B(cg_add, x, detach(y));
    if (!strcmp(name, "add_const"))
        return B(cg_add, v, y);
    if (!strcmp(name, "exp_log_sqrt"))
        return U(cg_sqrt, U(cg_abs, U(cg_log, U(cg_exp, x))));
    if (!strcmp(name, "views")) {
        cg_tensor *t = U(cg_tensor_t, view(x, (int64_t[]){3, 2}, 2));
        tu_ok(cg_tensor_unsqueeze(t, 0, &r));
        tu_ok(cg_tensor_squeeze_dim(keep(r), 0, &r));
        return sum_dims(keep(r), 0, false);
    }
    if (!strcmp(name, "reshape_copy")) {
        tu_ok(cg_tensor_reshape(U(cg_tensor_t, x), (int64_t[]){6}, 1, &r));
        return keep(r);
    }
    if (!strcmp(name, "slices")) {
        /* x[:, 1:] is two slices in PyTorch (":" on dim 0 is recorded) */
        cg_tensor *a =
            select_(slice(slice(x, 0, 0, INT64_MAX), 1, 1, INT64_MAX), 0, 1);
        tu_ok(cg_tensor_expand(y, (int64_t[]){2, 3}, 2, &r));
        tu_ok(cg_tensor_narrow(keep(r), 1, 0, 2, &r));
        tu_ok(cg_tensor_permute(keep(r), (int64_t[]){1, 0}, 2, &r));
        tu_ok(cg_tensor_transpose(keep(r), 0, 1, &r));
        return B(cg_add, a, select_(keep(r), 0, 0));
    }
    if (!strcmp(name, "mm"))
        return B(cg_mm, x, w);
    if (!strcmp(name, "matmul_mv"))
        return B(cg_matmul, x, y);
    if (!strcmp(name, "matmul_vm"))
        return B(cg_matmul, y, w);
    if (!strcmp(name, "matmul_dot"))
        return B(cg_matmul, y, v);
    if (!strcmp(name, "matmul_batched"))
        return B(cg_matmul, b, w);
    if (!strcmp(name, "cat"))
        return cat((cg_tensor *[]){x, S(cg_mul_scalar, x, 2.0), detach(x)}, 3,
                   0);
    if (!strcmp(name, "softmax")) {
        tu_ok(cg_softmax(x, 1, &r));
        tu_ok(cg_log_softmax(keep(r), 0, &r));
        return keep(r);
    }
    if (!strcmp(name, "activations")) {
        cg_tensor *t = U(cg_tanh, U(cg_sigmoid, U(cg_relu, x)));
        tu_ok(cg_gelu(t, NULL, &r));
        tu_ok(cg_leaky_relu(keep(r), 0.1, &r));
        return keep(r);
    }
    if (!strcmp(name, "div_sub"))
        return B(cg_div, B(cg_sub, x, y), S(cg_add_scalar, x, 1.0));
    if (!strcmp(name, "pow_mean")) {
        int64_t d1 = 1, d0 = 0;
        cg_tensor *m = U(cg_mean, S(cg_pow_scalar, x, 2.0));
        tu_ok(cg_mean_dims(x, &d1, 1, true, &r));
        tu_ok(cg_sum_dims(keep(r), &d0, 1, false, &r));
        return B(cg_add, m, U(cg_sum, keep(r)));
    }
    if (!strcmp(name, "rsub_neg"))
        return S(cg_sub_scalar, U(cg_neg, S(cg_rsub_scalar, x, 2.0)), 3.0);
    if (!strcmp(name, "to_clone")) {
        tu_ok(cg_tensor_to(x, CG_FLOAT32, &r));
        return U(cg_tensor_clone, keep(r));
    }
    if (!strcmp(name, "complex")) {
        cg_tensor *z = B(cg_mul, B(cg_complex, x, S(cg_mul_scalar, x, 2.0)), c);
        cg_tensor *t1 = U(cg_sum, U(cg_view_as_real, z));
        cg_tensor *t2 = U(cg_sum, U(cg_abs, c));
        cg_tensor *t3 = U(cg_sum, U(cg_real, c));
        cg_tensor *t4 = U(cg_sum, U(cg_imag, c));
        cg_tensor *t5 = U(cg_sum, U(cg_real, B(cg_mul, U(cg_conj, c), c)));
        return B(cg_add, B(cg_add, B(cg_add, B(cg_add, t1, t2), t3), t4), t5);
    }
    if (!strcmp(name, "mul_complex_scalar")) {
        tu_ok(cg_mul_complex_scalar(x, 0.0, 1.0, &r));
        return keep(r);
    }
    ck_abort_msg("unknown case %s", name);
    return NULL;
}

/* A growable string. */
typedef struct text {
    char *s;
    size_t n, cap;
} text;

static void text_add(text *t, const char *fmt, ...)
{
    va_list ap;
    char buf[256];
    va_start(ap, fmt);
    int len = vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    ck_assert(len >= 0 && (size_t)len < sizeof buf);
    if (t->n + (size_t)len + 1 > t->cap) {
        t->cap = (t->cap + (size_t)len + 1) * 2;
        t->s = realloc(t->s, t->cap);
        ck_assert_ptr_nonnull(t->s);
    }
    memcpy(t->s + t->n, buf, (size_t)len + 1);
    t->n += (size_t)len;
}

/* The listing of gen_autograd.py's graph_lines(), from the public API. */
static char *graph_lines(const cg_tensor *root)
{
    typedef struct item {
        const cg_node *n;
        int depth, nr;
    } item;
    item stack[512];
    const cg_node *seen[256];
    int nstack = 0, nseen = 0;
    text out = {0};
    stack[nstack++] = (item){cg_tensor_grad_fn(root), 0, 0};
    while (nstack > 0) {
        item it = stack[--nstack];
        if (!it.n) {
            text_add(&out, "%d - None %d\n", it.depth, it.nr);
            continue;
        }
        char label[128];
        snprintf(label, sizeof label, "%s", cg_node_name(it.n));
        if (cg_node_variable(it.n)) {
            const char *vn = cg_tensor_name(cg_node_variable(it.n));
            snprintf(label, sizeof label, "AccumulateGrad:%s", vn ? vn : "?");
        }
        int id = -1;
        for (int k = 0; k < nseen; k++)
            if (seen[k] == it.n)
                id = k;
        if (id >= 0) {
            text_add(&out, "%d %d %s %d\n", it.depth, id, label, it.nr);
            continue;
        }
        ck_assert_int_lt(nseen, 256);
        seen[nseen] = it.n;
        text_add(&out, "%d %d %s %d\n", it.depth, nseen++, label, it.nr);
        for (int i = cg_node_num_next(it.n) - 1; i >= 0; i--) {
            int nr = 0;
            const cg_node *m = cg_node_next(it.n, i, &nr);
            ck_assert_int_lt(nstack, 512);
            stack[nstack++] = (item){m, it.depth + 1, nr};
        }
    }
    return out.s;
}

/* The expected listing of one case from graphs.txt (malloc'd). */
static char *expected_lines(const char *name)
{
    char *all = tu_read_text(tu_data_path("autograd/graphs.txt"));
    ck_assert_ptr_nonnull(all);
    char head[128];
    snprintf(head, sizeof head, "\ncase %s\n", name);
    char *p = strstr(all, head);
    ck_assert_msg(p != NULL, "case %s not in graphs.txt", name);
    p += strlen(head);
    char *end = strstr(p, "end\n");
    ck_assert_ptr_nonnull(end);
    size_t n = (size_t)(end - p);
    char *r = malloc(n + 1);
    ck_assert_ptr_nonnull(r);
    memcpy(r, p, n);
    r[n] = '\0';
    free(all);
    return r;
}

START_TEST(test_pytorch_graphs)
{
    leaves L = make_leaves();
    cg_tensor *out = build_case(CASES[_i], &L);
    char *got = graph_lines(out);
    char *want = expected_lines(CASES[_i]);
    ck_assert_msg(strcmp(got, want) == 0, "%s:\n--- cgrad\n%s--- torch\n%s",
                  CASES[_i], got, want);
    free(got);
    free(want);
    /* and a backward runs through it */
    cg_tensor *g = NULL;
    tu_ok(cg_ones(cg_tensor_shape(out), cg_tensor_dim(out),
                  cg_tensor_dtype(out), &g));
    tu_ok(cg_tensor_backward(out, keep(g), false));
}
END_TEST

static cg_tensor *composite(cg_tensor *x, cg_tensor *y, cg_tensor *w)
{
    cg_tensor *a =
        B(cg_add, U(cg_exp, B(cg_mul, x, y)), S(cg_pow_scalar, x, 2));
    cg_tensor *b = U(cg_tensor_t, view(a, (int64_t[]){3, 2}, 2));
    cg_tensor *s = NULL;
    tu_ok(cg_softmax(B(cg_matmul, b, w), -1, &s));
    keep(s);
    cg_tensor *t1 = U(cg_sum, S(cg_pow_scalar, s, 2.0));
    cg_tensor *t2 = U(cg_mean, cat((cg_tensor *[]){a, b}, 2, 0));
    cg_tensor *q =
        B(cg_div, slice(slice(s, 0, 0, INT64_MAX), 1, 1, INT64_MAX),
          S(cg_add_scalar, slice(slice(a, 0, 0, INT64_MAX), 1, 0, 1), 1.0));
    return B(cg_add, B(cg_add, t1, t2), U(cg_sum, q));
}

START_TEST(test_pytorch_composite_gradients)
{
    cg_tensor *x = keep(tu_load("autograd/composite_x.npy"));
    cg_tensor *y = keep(tu_load("autograd/composite_y.npy"));
    cg_tensor *w = keep(tu_load("autograd/composite_w.npy"));
    for (int i = 0; i < 3; i++)
        tu_ok(cg_tensor_requires_grad_((cg_tensor *[]){x, y, w}[i], true));
    tu_ok(cg_tensor_backward(composite(x, y, w), NULL, false));
    tu_assert_close(cg_tensor_grad(x),
                    keep(tu_load("autograd/composite_gx.npy")), TOL_F64,
                    "x.grad");
    tu_assert_close(cg_tensor_grad(y),
                    keep(tu_load("autograd/composite_gy.npy")), TOL_F64,
                    "y.grad");
    tu_assert_close(cg_tensor_grad(w),
                    keep(tu_load("autograd/composite_gw.npy")), TOL_F64,
                    "w.grad");
}
END_TEST

/* ======================================================================
 * gradcheck
 * ====================================================================== */

typedef struct gc_op {
    const char *name;
    op1_fn op1; /* unary, or NULL */
    op2_fn op2; /* binary, or NULL */
    int64_t sa[3], sb[3];
    int na, nb;      /* ndim of the inputs */
    bool positive;   /* inputs in [0.5, 1.5) (+ the same imaginary) */
    bool complex_ok; /* also checked in complex128 */
} gc_op;

static cg_status f_pow2(cg_tensor *a, cg_tensor **o)
{
    return cg_pow_scalar(a, 2.0, o);
}
static cg_status f_pow_half(cg_tensor *a, cg_tensor **o)
{
    return cg_pow_scalar(a, 0.5, o);
}
static cg_status f_pow_m15(cg_tensor *a, cg_tensor **o)
{
    return cg_pow_scalar(a, -1.5, o);
}
static cg_status f_mul_s(cg_tensor *a, cg_tensor **o)
{
    return cg_mul_scalar(a, -2.5, o);
}
static cg_status f_div_s(cg_tensor *a, cg_tensor **o)
{
    return cg_div_scalar(a, 4.0, o);
}
static cg_status f_add_s(cg_tensor *a, cg_tensor **o)
{
    return cg_add_scalar(a, 1.5, o);
}
static cg_status f_sub_s(cg_tensor *a, cg_tensor **o)
{
    return cg_sub_scalar(a, 1.5, o);
}
static cg_status f_rsub_s(cg_tensor *a, cg_tensor **o)
{
    return cg_rsub_scalar(a, 1.5, o);
}
static cg_status f_mul_c(cg_tensor *a, cg_tensor **o)
{
    return cg_mul_complex_scalar(a, 0.5, -2.0, o);
}
static cg_status f_leaky(cg_tensor *a, cg_tensor **o)
{
    return cg_leaky_relu(a, 0.1, o);
}
static cg_status f_gelu(cg_tensor *a, cg_tensor **o)
{
    return cg_gelu(a, "none", o);
}
static cg_status f_gelu_tanh(cg_tensor *a, cg_tensor **o)
{
    return cg_gelu(a, "tanh", o);
}
static cg_status f_softmax(cg_tensor *a, cg_tensor **o)
{
    return cg_softmax(a, 1, o);
}
static cg_status f_log_softmax(cg_tensor *a, cg_tensor **o)
{
    return cg_log_softmax(a, 0, o);
}
static cg_status f_sum1(cg_tensor *a, cg_tensor **o)
{
    int64_t d = 1;
    return cg_sum_dims(a, &d, 1, true, o);
}
static cg_status f_mean0(cg_tensor *a, cg_tensor **o)
{
    int64_t d = 0;
    return cg_mean_dims(a, &d, 1, false, o);
}
static cg_status f_view(cg_tensor *a, cg_tensor **o)
{
    return cg_tensor_view(a, (int64_t[]){3, 2}, 2, o);
}
static cg_status f_reshape(cg_tensor *a, cg_tensor **o)
{
    cg_tensor *t = NULL;
    cg_status st = cg_tensor_t(a, &t);
    if (st)
        return st;
    st = cg_tensor_reshape(t, (int64_t[]){6}, 1, o);
    cg_tensor_release(t);
    return st;
}
static cg_status f_permute(cg_tensor *a, cg_tensor **o)
{
    return cg_tensor_permute(a, (int64_t[]){1, 0}, 2, o);
}
static cg_status f_slice(cg_tensor *a, cg_tensor **o)
{
    return cg_tensor_slice(a, 1, 1, INT64_MAX, 1, o);
}
static cg_status f_select(cg_tensor *a, cg_tensor **o)
{
    return cg_tensor_select(a, 0, 1, o);
}
static cg_status f_expand(cg_tensor *a, cg_tensor **o)
{
    return cg_tensor_expand(a, (int64_t[]){4, 2, 3}, 3, o);
}
static cg_status f_unsqueeze(cg_tensor *a, cg_tensor **o)
{
    return cg_tensor_unsqueeze(a, 1, o);
}
static cg_status f_to_c(cg_tensor *a, cg_tensor **o)
{
    return cg_tensor_to(a, CG_COMPLEX128, o);
}
static cg_status f_cat(cg_tensor *a, cg_tensor *b, cg_tensor **o)
{
    return cg_cat((cg_tensor *[]){a, b, a}, 3, 0, o);
}

static const gc_op GC_OPS[] = {
    {"exp", cg_exp, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"log", cg_log, NULL, {2, 3}, {0}, 2, 0, true, true},
    {"sqrt", cg_sqrt, NULL, {2, 3}, {0}, 2, 0, true, true},
    {"abs", cg_abs, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"neg", cg_neg, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"conj", cg_conj, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"pow2", f_pow2, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"pow0.5", f_pow_half, NULL, {2, 3}, {0}, 2, 0, true, false},
    {"pow-1.5", f_pow_m15, NULL, {2, 3}, {0}, 2, 0, true, false},
    {"mul_scalar", f_mul_s, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"div_scalar", f_div_s, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"add_scalar", f_add_s, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"sub_scalar", f_sub_s, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"rsub_scalar", f_rsub_s, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"mul_complex_scalar", f_mul_c, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"relu", cg_relu, NULL, {2, 3}, {0}, 2, 0, false, false},
    {"leaky_relu", f_leaky, NULL, {2, 3}, {0}, 2, 0, false, false},
    {"sigmoid", cg_sigmoid, NULL, {2, 3}, {0}, 2, 0, false, false},
    {"tanh", cg_tanh, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"gelu", f_gelu, NULL, {2, 3}, {0}, 2, 0, false, false},
    {"gelu_tanh", f_gelu_tanh, NULL, {2, 3}, {0}, 2, 0, false, false},
    {"softmax", f_softmax, NULL, {2, 3}, {0}, 2, 0, false, false},
    {"log_softmax", f_log_softmax, NULL, {2, 3}, {0}, 2, 0, false, false},
    {"sum", cg_sum, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"sum_dims", f_sum1, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"mean", cg_mean, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"mean_dims", f_mean0, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"clone", cg_tensor_clone, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"to_complex", f_to_c, NULL, {2, 3}, {0}, 2, 0, false, false},
    {"t", cg_tensor_t, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"view", f_view, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"reshape_copy", f_reshape, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"permute", f_permute, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"slice", f_slice, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"select", f_select, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"expand", f_expand, NULL, {1, 3}, {0}, 2, 0, false, true},
    {"unsqueeze", f_unsqueeze, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"squeeze", cg_tensor_squeeze, NULL, {2, 1, 3}, {0}, 3, 0, false, true},
    {"view_as_real", cg_view_as_real, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"real", cg_real, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"imag", cg_imag, NULL, {2, 3}, {0}, 2, 0, false, true},
    {"add", NULL, cg_add, {2, 3}, {3}, 2, 1, false, true},
    {"sub", NULL, cg_sub, {2, 3}, {2, 1}, 2, 2, false, true},
    {"mul", NULL, cg_mul, {2, 3}, {3}, 2, 1, false, true},
    {"div", NULL, cg_div, {2, 3}, {2, 3}, 2, 2, true, true},
    {"mm", NULL, cg_mm, {2, 3}, {3, 4}, 2, 2, false, true},
    {"bmm", NULL, cg_bmm, {2, 2, 3}, {2, 3, 2}, 3, 3, false, true},
    {"matmul_mv", NULL, cg_matmul, {2, 3}, {3}, 2, 1, false, true},
    {"matmul_vm", NULL, cg_matmul, {3}, {3, 2}, 1, 2, false, true},
    {"matmul_dot", NULL, cg_matmul, {3}, {3}, 1, 1, false, true},
    {"matmul_batched", NULL, cg_matmul, {2, 2, 3}, {3, 2}, 3, 2, false, true},
    {"cat", NULL, f_cat, {2, 3}, {1, 3}, 2, 2, false, true},
    {"complex", NULL, cg_complex, {2, 3}, {2, 3}, 2, 2, false, false},
};
#define N_GC_OPS ((int)(sizeof GC_OPS / sizeof *GC_OPS))

static const gc_op *find_op(const char *name)
{
    for (int i = 0; i < N_GC_OPS; i++)
        if (!strcmp(GC_OPS[i].name, name))
            return &GC_OPS[i];
    ck_abort_msg("no op %s", name);
    return NULL;
}

static cg_status gc_run(cg_tensor *const *in, int n, cg_tensor **out,
                        void *user)
{
    const gc_op *op = user;
    (void)n;
    return op->op1 ? op->op1(in[0], out) : op->op2(in[0], in[1], out);
}

/* A random input of the op's shape: randn, or uniform in [0.5, 1.5). */
static cg_tensor *gc_input(const int64_t *shape, int ndim, cg_dtype dt,
                           bool positive)
{
    cg_tensor *t = NULL;
    if (positive) {
        tu_ok(cg_rand(shape, ndim, dt, NULL, &t));
        keep(t);
        t = S(cg_add_scalar, t, 0.5);
    } else {
        tu_ok(cg_randn(shape, ndim, dt, NULL, &t));
        keep(t);
    }
    tu_ok(cg_tensor_requires_grad_(t, true));
    return t;
}

START_TEST(test_gradcheck_ops)
{
    const gc_op *op = &GC_OPS[_i];
    for (int k = 0; k < 2; k++) {
        cg_dtype dt = k ? CG_COMPLEX128 : CG_FLOAT64;
        bool needs_complex =
            !strcmp(op->name, "view_as_real") || !strcmp(op->name, "imag");
        if ((k && !op->complex_ok) || (!k && needs_complex))
            continue;
        cg_manual_seed(1000 + (uint64_t)_i);
        cg_tensor *in[2] = {gc_input(op->sa, op->na, dt, op->positive),
                            op->op2 ? gc_input(op->sb, op->nb, dt, op->positive)
                                    : NULL};
        cg_gradcheck_result res;
        memset(&res, 0x5a, sizeof res);
        tu_ok(
            cg_gradcheck(gc_run, (void *)op, in, op->op2 ? 2 : 1, NULL, &res));
        ck_assert_msg(res.passed, "gradcheck %s (%s): %s", op->name,
                      cg_dtype_name(dt), res.message);
        ck_assert_str_eq(res.message, "");
    }
}
END_TEST

/* f(x) = tst(x) with the given context: the deliberately wrong backward. */
typedef struct wrong_f {
    tst_ctx c;
    int which;      /* the input it applies to */
    op2_fn combine; /* joins the inputs when there are two */
} wrong_f;

static cg_status f_wrong(cg_tensor *const *in, int n, cg_tensor **out,
                         void *user)
{
    const wrong_f *w = user;
    cg_tensor *t = NULL;
    cg_status st = tst_apply(in[w->which], &tst_op, w->c, &t);
    if (st != CG_OK || n == 1) {
        *out = t;
        return st;
    }
    cg_tensor *a = w->which == 0 ? t : in[0], *b = w->which == 1 ? t : in[1];
    st = w->combine(a, b, out);
    cg_tensor_release(t);
    return st;
}

START_TEST(test_gradcheck_catches_wrong_backward)
{
    cg_tensor *x = lit("[0.5, -1.0, 2.0, 0.25, 3.0]", true, "x");
    wrong_f w = {.c = {.k = 3.0, .mode = TST_BAD_ELEM, .bad = 2}};
    cg_gradcheck_result res;
    tu_ok(cg_gradcheck(f_wrong, &w, &x, 1, NULL, &res));
    ck_assert(!res.passed);
    ck_assert_int_eq(res.input, 0);
    ck_assert_int_eq(res.input_index, 2);
    ck_assert_int_eq(res.output_index, 2);
    ck_assert(!res.imag_part);
    ck_assert_double_eq_tol(res.numeric, 3.0, 1e-6);
    ck_assert_double_eq_tol(res.analytic, 6.0, 1e-15);
    ck_assert_str_eq(res.message,
                     "Jacobian mismatch for output 0 with respect to input "
                     "0,\nnumerical:3\nanalytical:6\n(the worst of 1 "
                     "mismatched entries: input element 2, output element "
                     "2)");
    /* the same op with a correct backward passes */
    w.c.mode = TST_OK;
    tu_ok(cg_gradcheck(f_wrong, &w, &x, 1, NULL, &res));
    ck_assert_msg(res.passed, "%s", res.message);
    /* generous tolerances let the wrong one pass */
    w.c.mode = TST_BAD_ELEM;
    cg_gradcheck_options o = cg_gradcheck_defaults();
    ck_assert_double_eq(o.eps, 1e-6);
    ck_assert_double_eq(o.atol, 1e-5);
    ck_assert_double_eq(o.rtol, 1e-3);
    o.atol = 4.0;
    tu_ok(cg_gradcheck(f_wrong, &w, &x, 1, &o, &res));
    ck_assert(res.passed);
    ck_assert_int_eq(res.input_index, 2); /* still the worst entry */
}
END_TEST

START_TEST(test_gradcheck_input_numbering)
{
    /* "input j" counts the inputs that require grad, as in PyTorch;
     * res.input indexes the caller's array */
    cg_tensor *c = lit("[[1., 2.], [3., 4.]]", false, "c");
    cg_tensor *x = lit("[[0.5, -1.0], [2.0, 0.25]]", true, "x");
    cg_tensor *in[2] = {c, x};
    wrong_f w = {.c = {.k = 2.0, .mode = TST_BAD_ELEM, .bad = 3},
                 .which = 1,
                 .combine = cg_mul};
    cg_gradcheck_result res;
    tu_ok(cg_gradcheck(f_wrong, &w, in, 2, NULL, &res));
    ck_assert(!res.passed);
    ck_assert_int_eq(res.input, 1);
    ck_assert_int_eq(res.input_index, 3);
    ck_assert_int_eq(res.output_index, 3);
    ck_assert_msg(starts_with(res.message, "Jacobian mismatch for output 0 "
                                           "with respect to input 0,\n"
                                           "numerical:"),
                  "%s", res.message);
    /* both require grad: the wrong one is input 1 */
    tu_ok(cg_tensor_requires_grad_(c, true));
    tu_ok(cg_gradcheck(f_wrong, &w, in, 2, NULL, &res));
    ck_assert(!res.passed);
    ck_assert_int_eq(res.input, 1);
    ck_assert_int_eq(res.input_index, 3);
    ck_assert_msg(starts_with(res.message, "Jacobian mismatch for output 0 "
                                           "with respect to input 1,\n"),
                  "%s", res.message);
    /* y = c * x with x's element 3 wrong: dy3/dx3 = 2 c3 = 8 vs 16 */
    ck_assert_double_eq_tol(res.numeric, 8.0, 1e-6);
    ck_assert_double_eq_tol(res.analytic, 16.0, 1e-15);
}
END_TEST

START_TEST(test_gradcheck_complex_wrong)
{
    /* conj(gy) is right for the real part of the output and wrong for its
     * imaginary part */
    cg_tensor *z = lit_dt("[1+2j, -0.5+0.25j, 3-1j]", CG_COMPLEX128, true, "z");
    wrong_f w = {.c = {.k = 2.0, .mode = TST_CONJ}};
    cg_gradcheck_result res;
    tu_ok(cg_gradcheck(f_wrong, &w, &z, 1, NULL, &res));
    ck_assert(!res.passed);
    ck_assert(res.imag_part);
    ck_assert_int_eq(res.input_index, res.output_index);
    ck_assert_msg(starts_with(res.message,
                              "While considering the imaginary part of "
                              "complex outputs only, Jacobian mismatch for "
                              "output 0 with respect to input 0,\n"
                              "numerical:(0+2j)\nanalytical:(0-2j)\n"),
                  "%s", res.message);
    /* d Im(2z)/dz conj-Wirtinger: 2j, the wrong backward gives -2j */
    ck_assert_double_eq_tol(res.numeric, 2.0, 1e-6);
    ck_assert_double_eq_tol(res.analytic, -2.0, 1e-15);
    /* one element wrong: the real part check already sees it */
    w.c.mode = TST_BAD_ELEM;
    w.c.bad = 1;
    tu_ok(cg_gradcheck(f_wrong, &w, &z, 1, NULL, &res));
    ck_assert(!res.passed);
    ck_assert_int_eq(res.input_index, 1);
    ck_assert_int_eq(res.output_index, 1);
    w.c.mode = TST_OK;
    tu_ok(cg_gradcheck(f_wrong, &w, &z, 1, NULL, &res));
    ck_assert_msg(res.passed, "%s", res.message);
}
END_TEST

/* Counts calls and records the state f sees. */
typedef struct spy {
    int calls;
    bool grad_mode_numeric_seen_on;
    cg_tensor *captured; /* a leaf f uses besides its inputs */
    int fail_at;         /* the call that fails (0: none) */
    int shrink_at;       /* the call that returns another shape */
    bool no_graph;       /* compute under no_grad */
    bool constant;       /* ignore the input */
} spy;

static cg_status f_spy(cg_tensor *const *in, int n, cg_tensor **out, void *user)
{
    spy *s = user;
    (void)n;
    s->calls++;
    if (s->fail_at && s->calls == s->fail_at)
        return cg__error(CG_ERR_VALUE, "spy: failing on purpose");
    if (s->calls > 1 && cg_is_grad_enabled())
        s->grad_mode_numeric_seen_on = true;
    if (s->constant)
        return cg_ones((int64_t[]){2}, 1, CG_FLOAT64, out);
    bool prev = cg_set_grad_enabled(!s->no_graph && cg_is_grad_enabled());
    cg_tensor *t = NULL;
    cg_status st;
    if (s->captured)
        st = cg_mm(in[0], s->captured, &t);
    else
        st = cg_exp(in[0], &t);
    cg_set_grad_enabled(prev);
    if (st == CG_OK && s->shrink_at && s->calls == s->shrink_at) {
        cg_tensor *v = NULL;
        st = cg_tensor_slice(t, 0, 0, 1, 1, &v);
        cg_tensor_release(t);
        t = v;
    }
    *out = t;
    return st;
}

static uint8_t *raw_bytes(const cg_tensor *t, size_t *n)
{
    int64_t m;
    double *v = values(t, &m);
    *n = (size_t)m * sizeof *v;
    return (uint8_t *)v;
}

START_TEST(test_gradcheck_leaves_inputs_alone)
{
    /* a non-contiguous input with awkward values */
    cg_tensor *base = lit("[[0.1, -0.7], [1e-8, 3.3], [0.3333333333333333, "
                          "-2.5]]",
                          false, NULL);
    tu_ok(cg_tensor_requires_grad_(base, true));
    cg_tensor *x = U(cg_tensor_t, base); /* a non-leaf view */
    tu_ok(cg_tensor_retain_grad(x));
    cg_tensor *xg = lit("[[9., 9., 9.], [9., 9., 9.]]", false, NULL);
    tu_ok(cg_tensor_set_grad(x, xg));
    tu_ok(cg_tensor_set_grad(
        base, lit("[[1., 2.], [3., 4.], [5., 6.]]", false, NULL)));
    grad_snap sb = snap_grad(base), sx = snap_grad(x);
    size_t nb0, nb1;
    uint8_t *before = raw_bytes(x, &nb0);
    spy s = {0};
    cg_gradcheck_result res;
    tu_ok(cg_gradcheck(f_spy, &s, &x, 1, NULL, &res));
    ck_assert_msg(res.passed, "%s", res.message);
    ck_assert_int_eq(s.calls, 1 + 2 * 6);
    ck_assert(!s.grad_mode_numeric_seen_on);
    uint8_t *after = raw_bytes(x, &nb1);
    ck_assert_uint_eq(nb0, nb1);
    ck_assert_mem_eq(before, after, nb0);
    check_grad_snap(&sb, "base");
    check_grad_snap(&sx, "x");
    ck_assert_ptr_null(cg_tensor_grad_fn(base));
    ck_assert_str_eq(cg_node_name(cg_tensor_grad_fn(x)), "TBackward0");
    ck_assert(cg_is_grad_enabled());
    free(before);
    free(after);
    /* a leaf f captures keeps its .grad (and one without keeps none) */
    cg_tensor *W = lit("[[1., 2.], [3., 4.], [5., 6.]]", true, "W");
    cg_tensor *V = lit("[[0.5], [0.25]]", true, "V");
    tu_ok(cg_tensor_set_grad(
        W, lit("[[7., 7.], [7., 7.], [7., 7.]]", false, NULL)));
    grad_snap sw = snap_grad(W);
    spy s2 = {.captured = W};
    tu_ok(cg_gradcheck(f_spy, &s2, &x, 1, NULL, &res));
    ck_assert_msg(res.passed, "%s", res.message);
    check_grad_snap(&sw, "W");
    sw = snap_grad(W);
    spy s3 = {.captured = V};
    cg_tensor *x2 = lit("[[1., 2.], [3., 4.]]", true, NULL);
    tu_ok(cg_gradcheck(f_spy, &s3, &x2, 1, NULL, &res));
    ck_assert_msg(res.passed, "%s", res.message);
    ck_assert_ptr_null(cg_tensor_grad(V));
    ck_assert_ptr_null(cg_tensor_grad(x2));
    /* a captured non-leaf: its graph stays usable, its grads untouched */
    cg_tensor *h = B(cg_mul, W, W); /* saves W twice */
    tu_ok(cg_tensor_retain_grad(h));
    spy s4 = {.captured = h};
    tu_ok(cg_gradcheck(f_spy, &s4, &x, 1, NULL, &res));
    ck_assert_msg(res.passed, "%s", res.message);
    ck_assert_ptr_null(cg_tensor_grad(h));
    check_grad_snap(&sw, "W");
    ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(h)), 2);
    tu_ok(cg_tensor_zero_grad(W, true));
    tu_ok(cg_tensor_backward(U(cg_sum, h), NULL, false));
    assert_values(cg_tensor_grad(W), (double[]){2, 4, 6, 8, 10, 12}, 6, 0.0,
                  "W.grad");
    assert_values(cg_tensor_grad(h), (double[]){1, 1, 1, 1, 1, 1}, 6, 0.0,
                  "h.grad");
    /* called under no_grad: the check still runs, the mode is restored */
    bool prev = cg_set_grad_enabled(false);
    tu_ok(cg_gradcheck(f_spy, &s3, &x2, 1, NULL, &res));
    ck_assert(!cg_is_grad_enabled());
    cg_set_grad_enabled(prev);
    ck_assert_msg(res.passed, "%s", res.message);
}
END_TEST

START_TEST(test_gradcheck_input_errors)
{
    cg_tensor *f32 = lit_dt("[1., 2.]", CG_FLOAT32, true, NULL);
    cg_tensor *c = lit("[1., 2.]", false, NULL);
    cg_tensor *x = lit("[1., 2.]", true, NULL);
    spy s = {0};
    cg_gradcheck_result res;
    memset(&res, 0x5a, sizeof res);
    cg_gradcheck_result untouched = res;
    cg_tensor *in[2] = {c, f32};
    tu_fails(cg_gradcheck(f_spy, &s, in, 2, NULL, &res), CG_ERR_VALUE,
             "Input #1 requires gradient and is not a double precision "
             "floating point or complex. This check will likely fail if all "
             "the inputs are not of double precision floating point or "
             "complex.");
    tu_fails(cg_gradcheck(f_spy, &s, &c, 1, NULL, &res), CG_ERR_VALUE,
             "gradcheck expects at least one input tensor to require "
             "gradient, but none of the them have requires_grad=True.");
    cg_tensor *e = NULL;
    tu_ok(cg_tensor_expand(x, (int64_t[]){3, 2}, 2, &e));
    keep(e);
    tu_fails(cg_gradcheck(f_spy, &s, &e, 1, NULL, &res), CG_ERR_RUNTIME,
             "The 0th input has a dimension with stride 0. gradcheck only "
             "supports inputs that are non-overlapping to be able to compute "
             "the numerical gradients correctly. You should call .contiguous "
             "on the input before passing it to gradcheck.");
    tu_fails(cg_gradcheck(NULL, &s, &x, 1, NULL, &res), CG_ERR_MISUSE,
             "f must not be NULL");
    tu_fails(cg_gradcheck(f_spy, &s, &x, 1, NULL, NULL), CG_ERR_MISUSE,
             "res must not be NULL");
    tu_fails(cg_gradcheck(f_spy, &s, NULL, 1, NULL, &res), CG_ERR_MISUSE,
             "inputs must not be NULL");
    ck_assert_int_eq(s.calls, 0);
    ck_assert_mem_eq(&res, &untouched, sizeof res);
    /* f failing, on the first call and half-way through the differences */
    size_t n0, n1;
    uint8_t *before = raw_bytes(x, &n0);
    for (int at = 1; at <= 4; at++) {
        spy f = {.fail_at = at};
        tu_fails(cg_gradcheck(f_spy, &f, &x, 1, NULL, &res), CG_ERR_VALUE,
                 "spy: failing on purpose");
        uint8_t *after = raw_bytes(x, &n1);
        ck_assert_mem_eq(before, after, n0);
        free(after);
        ck_assert_ptr_null(cg_tensor_grad(x));
    }
    free(before);
    ck_assert_mem_eq(&res, &untouched, sizeof res);
    /* f changing its output's shape */
    spy sh = {.shrink_at = 3};
    tu_fails(cg_gradcheck(f_spy, &sh, &x, 1, NULL, &res), CG_ERR_RUNTIME,
             "Expected `func` to return outputs with the same shape when "
             "inputs are perturbed by 1e-06, but got: shapes torch.Size([2]) "
             "and torch.Size([1]).");
}
END_TEST

START_TEST(test_gradcheck_other_failures)
{
    cg_tensor *x = lit("[0.5, -1.0, 2.0]", true, "x");
    cg_gradcheck_result res;
    /* a backward that is not deterministic */
    wrong_f w = {.c = {.k = 1.5, .mode = TST_NONDET}};
    tu_ok(cg_gradcheck(f_wrong, &w, &x, 1, NULL, &res));
    ck_assert(!res.passed);
    ck_assert_str_eq(res.message,
                     "Backward is not reentrant, i.e., running backward with "
                     "same input and grad_output multiple times gives "
                     "different values, although analytical gradient matches "
                     "numerical gradient.The tolerance for nondeterminism was "
                     "0.0.");
    ck_assert_int_eq(res.input_index, 0);
    ck_assert_int_eq(res.output_index, 0);
    /* a backward that ignores a zero grad_output */
    w.c.mode = TST_UNSCALED;
    tu_ok(cg_gradcheck(f_wrong, &w, &x, 1, NULL, &res));
    ck_assert(!res.passed);
    ck_assert_str_eq(res.message, "backward not multiplied by grad_output");
    ck_assert_int_eq(res.input, 0);
    /* no differentiable output: the function must be constant */
    spy s = {.no_graph = true};
    tu_ok(cg_gradcheck(f_spy, &s, &x, 1, NULL, &res));
    ck_assert(!res.passed);
    ck_assert_str_eq(res.message,
                     "Numerical gradient for function expected to be zero");
    spy k = {.constant = true};
    tu_ok(cg_gradcheck(f_spy, &k, &x, 1, NULL, &res));
    ck_assert_msg(res.passed, "%s", res.message);
    /* the same tensor twice is one input, as in PyTorch */
    cg_tensor *in[2] = {x, x};
    tu_ok(cg_gradcheck(gc_run, (void *)find_op("mul"), in, 2, NULL, &res));
    ck_assert_msg(res.passed, "%s", res.message);
    /* an empty input has an empty Jacobian */
    cg_tensor *empty = NULL;
    tu_ok(cg_zeros((int64_t[]){0}, 1, CG_FLOAT64, &empty));
    keep(empty);
    tu_ok(cg_tensor_requires_grad_(empty, true));
    tu_ok(cg_gradcheck(gc_run, (void *)find_op("exp"), &empty, 1, NULL, &res));
    ck_assert(res.passed);
}
END_TEST

/* The composite's backward against finite differences, per input. */
typedef struct comp_f {
    int which;
    cg_tensor *in[3];
} comp_f;

static cg_status f_composite(cg_tensor *const *in, int n, cg_tensor **out,
                             void *user)
{
    comp_f *c = user;
    (void)n;
    cg_tensor *args[3] = {c->in[0], c->in[1], c->in[2]};
    args[c->which] = in[0];
    int mark = npool;
    cg_tensor *r = composite(args[0], args[1], args[2]);
    *out = cg_tensor_retain(r);
    while (npool > mark)
        cg_tensor_release(pool[--npool]);
    return CG_OK;
}

START_TEST(test_gradcheck_composite)
{
    comp_f c;
    const char *files[3] = {"autograd/composite_x.npy",
                            "autograd/composite_y.npy",
                            "autograd/composite_w.npy"};
    for (int i = 0; i < 3; i++)
        c.in[i] = keep(tu_load(files[i]));
    for (c.which = 0; c.which < 3; c.which++) {
        cg_tensor *x = U(cg_tensor_clone, c.in[c.which]);
        tu_ok(cg_tensor_requires_grad_(x, true));
        cg_gradcheck_result res;
        tu_ok(cg_gradcheck(f_composite, &c, &x, 1, NULL, &res));
        ck_assert_msg(res.passed, "input %d: %s", c.which, res.message);
    }
}
END_TEST

/* The view ops (and contiguous / clone / to) over several shapes, on
 * contiguous inputs and on non-contiguous ones: a transposed view of a
 * leaf (T) or every other row of one (STEP), in float64 and complex128.
 * Result shapes and grad_fn names are what PyTorch 1.13 gives for the
 * same expressions (x.view(6, 4), x.reshape(3, 8), x.squeeze(), ...). */
enum vw_kind {
    VW_VIEW,
    VW_RESHAPE,
    VW_FLATTEN,
    VW_UNSQUEEZE,
    VW_SQUEEZE_DIM,
    VW_SQUEEZE,
    VW_PERMUTE,
    VW_TRANSPOSE,
    VW_T,
    VW_NARROW,
    VW_SLICE,
    VW_SELECT,
    VW_EXPAND,
    VW_CONTIGUOUS,
    VW_CLONE,
    VW_TO,
};
enum vw_input { VI_CONTIG, VI_T, VI_STEP };

typedef struct vw_case {
    const char *name;
    const char *grad_fn; /* y.grad_fn in PyTorch 1.13 (to(): x's own) */
    enum vw_kind kind;
    enum vw_input input;
    /* comma-separated lists: the input's shape ("-": 0-d), the op's
     * arguments ("max": INT64_MAX), the result's shape */
    const char *shape, *args, *oshape;
} vw_case;

static const vw_case VW_CASES[] = {
    {"view 2x3x4 -> 6x4", "ViewBackward0", VW_VIEW, VI_CONTIG, "2,3,4", "6,4",
     "6,4"},
    {"view 2x3x4 -> -1", "ViewBackward0", VW_VIEW, VI_CONTIG, "2,3,4", "-1",
     "24"},
    {"view 0-d -> 1x1", "ViewBackward0", VW_VIEW, VI_CONTIG, "-", "1,1", "1,1"},
    {"view T split", "ViewBackward0", VW_VIEW, VI_T, "2,3,4", "2,3,2,2",
     "2,3,2,2"},
    {"view STEP merge", "ViewBackward0", VW_VIEW, VI_STEP, "2,3,4", "2,12,1",
     "2,12,1"},
    {"reshape contiguous", "ReshapeAliasBackward0", VW_RESHAPE, VI_CONTIG,
     "2,3,4", "4,6", "4,6"},
    {"reshape T (copies)", "UnsafeViewBackward0", VW_RESHAPE, VI_T, "2,3,4",
     "3,8", "3,8"},
    {"reshape STEP (copies)", "UnsafeViewBackward0", VW_RESHAPE, VI_STEP, "3,4",
     "-1", "12"},
    {"flatten T", "UnsafeViewBackward0", VW_FLATTEN, VI_T, "2,3,4", "1,-1",
     "2,12"},
    {"unsqueeze 0", "UnsqueezeBackward0", VW_UNSQUEEZE, VI_CONTIG, "2,3", "0",
     "1,2,3"},
    {"unsqueeze -1 T", "UnsqueezeBackward0", VW_UNSQUEEZE, VI_T, "2,3", "-1",
     "2,3,1"},
    {"unsqueeze 0-d", "UnsqueezeBackward0", VW_UNSQUEEZE, VI_CONTIG, "-", "0",
     "1"},
    {"squeeze(1)", "SqueezeBackward1", VW_SQUEEZE_DIM, VI_CONTIG, "2,1,3", "1",
     "2,3"},
    {"squeeze(0) size 2", "SqueezeBackward1", VW_SQUEEZE_DIM, VI_STEP, "2,1,3",
     "0", "2,1,3"},
    {"squeeze(0) T", "SqueezeBackward1", VW_SQUEEZE_DIM, VI_T, "1,3,2", "0",
     "3,2"},
    {"squeeze()", "SqueezeBackward0", VW_SQUEEZE, VI_CONTIG, "1,2,1,3", "",
     "2,3"},
    {"squeeze() T", "SqueezeBackward0", VW_SQUEEZE, VI_T, "1,3,2", "", "3,2"},
    {"squeeze() nothing", "SqueezeBackward0", VW_SQUEEZE, VI_STEP, "2,3", "",
     "2,3"},
    {"permute(2, 0, 1)", "PermuteBackward0", VW_PERMUTE, VI_CONTIG, "2,3,4",
     "2,0,1", "4,2,3"},
    {"permute(-1, 0, 1) T", "PermuteBackward0", VW_PERMUTE, VI_T, "2,3,4",
     "-1,0,1", "4,2,3"},
    {"permute 4-d STEP", "PermuteBackward0", VW_PERMUTE, VI_STEP, "2,1,3,2",
     "3,1,0,2", "2,1,2,3"},
    {"transpose(0, 2)", "TransposeBackward0", VW_TRANSPOSE, VI_CONTIG, "2,3,4",
     "0,2", "4,3,2"},
    {"transpose(1, -1) STEP", "TransposeBackward0", VW_TRANSPOSE, VI_STEP,
     "2,3,4", "1,-1", "2,4,3"},
    {"t 2-d T", "TBackward0", VW_T, VI_T, "3,4", "", "4,3"},
    {"t 1-d", "TBackward0", VW_T, VI_CONTIG, "5", "", "5"},
    {"narrow(1, 1, 2)", "SliceBackward0", VW_NARROW, VI_CONTIG, "2,3,4",
     "1,1,2", "2,2,4"},
    {"narrow(-1, 0, 3) T", "SliceBackward0", VW_NARROW, VI_T, "2,3,4", "-1,0,3",
     "2,3,3"},
    {"[::2]", "SliceBackward0", VW_SLICE, VI_CONTIG, "5,3", "0,0,max,2", "3,3"},
    {"[..., 1:3] STEP", "SliceBackward0", VW_SLICE, VI_STEP, "2,3,4",
     "-1,1,3,1", "2,3,2"},
    {"[:, -2:] T", "SliceBackward0", VW_SLICE, VI_T, "3,4", "1,-2,max,1",
     "3,2"},
    {"select(1, 2)", "SelectBackward0", VW_SELECT, VI_CONTIG, "2,3,4", "1,2",
     "2,4"},
    {"select(-1, -1) T", "SelectBackward0", VW_SELECT, VI_T, "2,3,4", "-1,-1",
     "2,3"},
    {"select(0, 1) 1-d", "SelectBackward0", VW_SELECT, VI_CONTIG, "3", "0,1",
     "-"},
    {"expand 1x3 -> 4x3", "ExpandBackward0", VW_EXPAND, VI_CONTIG, "1,3", "4,3",
     "4,3"},
    {"expand 3x1 -> 2x3x5 T", "ExpandBackward0", VW_EXPAND, VI_T, "3,1",
     "2,3,5", "2,3,5"},
    {"expand(-1, 4, -1) STEP", "ExpandBackward0", VW_EXPAND, VI_STEP, "2,1,3",
     "-1,4,-1", "2,4,3"},
    {"expand 0-d", "ExpandBackward0", VW_EXPAND, VI_CONTIG, "-", "2,2", "2,2"},
    {"contiguous T", "CloneBackward0", VW_CONTIGUOUS, VI_T, "2,3,4", "",
     "2,3,4"},
    {"contiguous STEP", "CloneBackward0", VW_CONTIGUOUS, VI_STEP, "3,4", "",
     "3,4"},
    {"clone STEP", "CloneBackward0", VW_CLONE, VI_STEP, "2,3,4", "", "2,3,4"},
    {"to same dtype T", "TransposeBackward0", VW_TO, VI_T, "3,4", "", "3,4"},
};
#define N_VW_CASES ((int)(sizeof VW_CASES / sizeof *VW_CASES))

/* Parses a vw_case list into v (at most 4 values); returns the count. */
static int vw_list(const char *list, int64_t *v)
{
    int n = 0;
    if (strcmp(list, "-") == 0)
        return 0;
    for (const char *q = list; *q && n < 4;) {
        char *end;
        if (strncmp(q, "max", 3) == 0) {
            v[n++] = INT64_MAX;
            end = (char *)q + 3;
        } else {
            v[n++] = strtoll(q, &end, 10);
            if (end == q)
                return -1;
        }
        q = *end == ',' ? end + 1 : end;
    }
    return n;
}

static cg_status vw_run(cg_tensor *const *in, int n, cg_tensor **out,
                        void *user)
{
    const vw_case *c = user;
    int64_t p[4] = {0};
    int np = vw_list(c->args, p);
    cg_tensor *x = in[0];
    (void)n;
    switch (c->kind) {
    case VW_VIEW:
        return cg_tensor_view(x, p, np, out);
    case VW_RESHAPE:
        return cg_tensor_reshape(x, p, np, out);
    case VW_FLATTEN:
        return cg_tensor_flatten(x, p[0], p[1], out);
    case VW_UNSQUEEZE:
        return cg_tensor_unsqueeze(x, p[0], out);
    case VW_SQUEEZE_DIM:
        return cg_tensor_squeeze_dim(x, p[0], out);
    case VW_SQUEEZE:
        return cg_tensor_squeeze(x, out);
    case VW_PERMUTE:
        return cg_tensor_permute(x, p, np, out);
    case VW_TRANSPOSE:
        return cg_tensor_transpose(x, p[0], p[1], out);
    case VW_T:
        return cg_tensor_t(x, out);
    case VW_NARROW:
        return cg_tensor_narrow(x, p[0], p[1], p[2], out);
    case VW_SLICE:
        return cg_tensor_slice(x, p[0], p[1], p[2], p[3], out);
    case VW_SELECT:
        return cg_tensor_select(x, p[0], p[1], out);
    case VW_EXPAND:
        return cg_tensor_expand(x, p, np, out);
    case VW_CONTIGUOUS:
        return cg_tensor_contiguous(x, out);
    case VW_CLONE:
        return cg_tensor_clone(x, out);
    case VW_TO:
        return cg_tensor_to(x, cg_tensor_dtype(x), out);
    }
    return CG_ERR_RUNTIME;
}

/* A requires-grad input of the case's shape, laid out as it asks. */
static cg_tensor *vw_input(const vw_case *c, cg_dtype dt)
{
    int64_t shape[4], base[4];
    int nd = vw_list(c->shape, shape);
    ck_assert_int_ge(nd, 0);
    memcpy(base, shape, sizeof base);
    cg_tensor *leaf = NULL, *x = NULL;
    if (c->input == VI_T) { /* base has dims 0 and -1 swapped */
        ck_assert_int_ge(nd, 2);
        base[0] = shape[nd - 1];
        base[nd - 1] = shape[0];
    } else if (c->input == VI_STEP) { /* base has twice the rows */
        ck_assert_int_ge(nd, 1);
        base[0] *= 2;
    }
    tu_ok(cg_randn(base, nd, dt, NULL, &leaf));
    keep(leaf);
    tu_ok(cg_tensor_requires_grad_(leaf, true));
    if (c->input == VI_T)
        tu_ok(cg_tensor_transpose(leaf, 0, -1, &x));
    else if (c->input == VI_STEP)
        tu_ok(cg_tensor_slice(leaf, 0, 0, INT64_MAX, 2, &x));
    else
        return leaf;
    keep(x);
    tu_assert_shape(x, shape, nd);
    ck_assert_msg(!cg_tensor_is_contiguous(x) || shape[0] == 1 ||
                      shape[nd - 1] == 1,
                  "%s: the input view is contiguous", c->name);
    ck_assert(cg_tensor_requires_grad(x));
    return x;
}

START_TEST(test_gradcheck_views)
{
    const vw_case *c = &VW_CASES[_i];
    static const cg_dtype dts[] = {CG_FLOAT64, CG_COMPLEX128};
    int64_t p[4], oshape[4];
    ck_assert_int_ge(vw_list(c->args, p), 0);
    int ond = vw_list(c->oshape, oshape);
    ck_assert_int_ge(ond, 0);
    for (int d = 0; d < 2; d++) {
        cg_manual_seed(3000 + (uint64_t)(2 * _i + d));
        cg_tensor *x = vw_input(c, dts[d]);
        /* the op does what it should, with PyTorch's grad_fn */
        cg_tensor *y = NULL;
        tu_ok(vw_run(&x, 1, &y, (void *)c));
        keep(y);
        tu_assert_shape(y, oshape, ond);
        ck_assert_int_eq(cg_tensor_dtype(y), dts[d]);
        ck_assert(cg_tensor_requires_grad(y));
        ck_assert_ptr_nonnull(cg_tensor_grad_fn(y));
        ck_assert_str_eq(cg_node_name(cg_tensor_grad_fn(y)), c->grad_fn);
        if (c->kind == VW_TO)
            ck_assert_ptr_eq(y, x); /* the same tensor, as PyTorch */
        cg_gradcheck_result res;
        memset(&res, 0x5a, sizeof res);
        tu_ok(cg_gradcheck(vw_run, (void *)c, &x, 1, NULL, &res));
        ck_assert_msg(res.passed, "gradcheck %s (%s): %s", c->name,
                      cg_dtype_name(dts[d]), res.message);
        ck_assert_str_eq(res.message, "");
    }
}
END_TEST

/* ======================================================================
 * graph: the text tree and DOT of a small expression
 * ====================================================================== */

/* s = sum(exp(x * y) + x * y + x * 2): a shared node, a None edge, saved
 * tensors with names, without, and the op's own result. */
static cg_tensor *small_graph(leaves *L)
{
    cg_tensor *m = B(cg_mul, L->x, L->y);
    cg_tensor *a = B(cg_add, U(cg_exp, m), m);
    return U(cg_sum, B(cg_add, a, S(cg_mul_scalar, L->x, 2.0)));
}

static const char TREE[] =
    "SumBackward0 []\n"
    "\xe2\x94\x94\xe2\x94\x80 AddBackward0 [2, 3]\n"
    "   \xe2\x94\x9c\xe2\x94\x80 AddBackward0 [2, 3]\n"
    "   \xe2\x94\x82  \xe2\x94\x9c\xe2\x94\x80 ExpBackward0 [2, 3] saved: "
    "result [2, 3]\n"
    "   \xe2\x94\x82  \xe2\x94\x82  \xe2\x94\x94\xe2\x94\x80 MulBackward0 #1 "
    "[2, 3] saved: x [2, 3], y [3]\n"
    "   \xe2\x94\x82  \xe2\x94\x82     \xe2\x94\x9c\xe2\x94\x80 "
    "AccumulateGrad #2 (x [2, 3])\n"
    "   \xe2\x94\x82  \xe2\x94\x82     \xe2\x94\x94\xe2\x94\x80 "
    "AccumulateGrad (y [3])\n"
    "   \xe2\x94\x82  \xe2\x94\x94\xe2\x94\x80 (see above) MulBackward0 #1\n"
    "   \xe2\x94\x94\xe2\x94\x80 MulBackward0 [2, 3]\n"
    "      \xe2\x94\x9c\xe2\x94\x80 (see above) AccumulateGrad #2\n"
    "      \xe2\x94\x94\xe2\x94\x80 None\n";

static const char DOT[] =
    "digraph grad_fn {\n"
    "  graph [ordering=out];\n"
    "  node [shape=box, fontname=\"monospace\"];\n"
    "  n0 [label=\"SumBackward0\\n[]\"];\n"
    "  n1 [label=\"AddBackward0\\n[2, 3]\"];\n"
    "  n2 [label=\"AddBackward0\\n[2, 3]\"];\n"
    "  n3 [label=\"ExpBackward0\\n[2, 3]\\nsaved: result [2, 3]\"];\n"
    "  n4 [label=\"MulBackward0\\n[2, 3]\\nsaved: x [2, 3], y [3]\"];\n"
    "  n5 [label=\"AccumulateGrad\\nx [2, 3]\", style=filled, "
    "fillcolor=lightblue];\n"
    "  n6 [label=\"AccumulateGrad\\ny [3]\", style=filled, "
    "fillcolor=lightblue];\n"
    "  n7 [label=\"MulBackward0\\n[2, 3]\"];\n"
    "  n0 -> n1 [label=\"0\"];\n"
    "  n1 -> n2 [label=\"0\"];\n"
    "  n1 -> n7 [label=\"1\"];\n"
    "  n2 -> n3 [label=\"0\"];\n"
    "  n2 -> n4 [label=\"1\"];\n"
    "  n3 -> n4 [label=\"0\"];\n"
    "  n4 -> n5 [label=\"0\"];\n"
    "  n4 -> n6 [label=\"1\"];\n"
    "  n7 -> n5 [label=\"0\"];\n"
    "  none0 [label=\"None\", shape=plaintext];\n"
    "  n7 -> none0 [label=\"1\"];\n"
    "}\n";

START_TEST(test_graph_text)
{
    leaves L = make_leaves();
    cg_tensor *s = small_graph(&L);
    char *t = tree_of(s);
    ck_assert_str_eq(t, TREE);
    free(t);
    t = dot_of(s);
    ck_assert_str_eq(t, DOT);
    free(t);
    /* after backward the saved tensors are gone */
    tu_ok(cg_tensor_backward(s, NULL, false));
    t = tree_of(s);
    ck_assert_ptr_nonnull(strstr(t, "ExpBackward0 [2, 3] saved: (freed)\n"));
    ck_assert_ptr_nonnull(strstr(t, "MulBackward0 #1 [2, 3] saved: (freed)\n"));
    free(t);
}
END_TEST

START_TEST(test_graph_small_cases)
{
    /* a tensor without grad_fn */
    cg_tensor *x = lit("[1., 2.]", true, "x");
    char *t = tree_of(x);
    ck_assert_str_eq(t, "None\n");
    free(t);
    t = dot_of(x);
    ck_assert_str_eq(t, "digraph grad_fn {\n  none0 [label=\"None\", "
                        "shape=plaintext];\n}\n");
    free(t);
    /* unnamed leaves, a 0-d output, names that need escaping in DOT */
    cg_tensor *u = lit("[[1., 2.]]", true, NULL);
    cg_tensor *v = lit("[3., 4.]", true, "say \"hi\"\\");
    cg_tensor *s = U(cg_sum, B(cg_mul, u, v));
    t = tree_of(s);
    ck_assert_str_eq(t, "SumBackward0 []\n"
                        "\xe2\x94\x94\xe2\x94\x80 MulBackward0 [1, 2] saved: "
                        "[1, 2], say \"hi\"\\ [2]\n"
                        "   \xe2\x94\x9c\xe2\x94\x80 AccumulateGrad ([1, 2])\n"
                        "   \xe2\x94\x94\xe2\x94\x80 AccumulateGrad (say "
                        "\"hi\"\\ [2])\n");
    free(t);
    t = dot_of(s);
    ck_assert_ptr_nonnull(strstr(t, "  n3 [label=\"AccumulateGrad\\nsay "
                                    "\\\"hi\\\"\\\\ [2]\", style=filled"));
    free(t);
    /* deep levels are numbered instead of indented */
    cg_tensor *d = x;
    for (int i = 0; i < 70; i++)
        d = S(cg_mul_scalar, d, 1.0);
    t = tree_of(d);
    ck_assert_ptr_nonnull(strstr(t, "\n[depth 65] \xe2\x94\x9c\xe2\x94\x80 "
                                    "MulBackward0 [2]\n"));
    ck_assert_ptr_nonnull(strstr(t, "\n[depth 70] \xe2\x94\x9c\xe2\x94\x80 "
                                    "AccumulateGrad (x [2])\n[depth 70] "
                                    "\xe2\x94\x94\xe2\x94\x80 None\n"));
    free(t);
    /* NULL arguments */
    tu_fails(cg_graph_print(NULL, stdout), CG_ERR_MISUSE,
             "tensor must not be NULL");
    tu_fails(cg_graph_print(x, NULL), CG_ERR_MISUSE, "file must not be NULL");
    tu_fails(cg_graph_write_dot(NULL, stdout), CG_ERR_MISUSE,
             "tensor must not be NULL");
    tu_fails(cg_graph_write_dot(x, NULL), CG_ERR_MISUSE,
             "file must not be NULL");
}
END_TEST

START_TEST(test_graph_write_error)
{
    leaves L = make_leaves();
    cg_tensor *s = small_graph(&L);
    FILE *f = fopen("/dev/full", "w");
    if (!f)
        return; /* no /dev/full here */
    setvbuf(f, NULL, _IONBF, 0);
    tu_fails(cg_graph_print(s, f), CG_ERR_IO, "could not write the graph");
    tu_fails(cg_graph_write_dot(s, f), CG_ERR_IO, "could not write the graph");
    fclose(f);
}
END_TEST

/* ======================================================================
 * alloc: every allocation fails in turn
 * ====================================================================== */

static cg_status scenario_forward_backward(void *ctx)
{
    (void)ctx;
    cg_tensor *t[12] = {0};
    cg_status st;
    int64_t vs[] = {3, 2};
    if ((st = cg_tensor_literal_dtype("[[1., 2., 3.], [4., 5., 6.]]",
                                      CG_FLOAT64, &t[0])) != CG_OK ||
        (st = cg_tensor_literal_dtype("[0.5, -1., 2.]", CG_FLOAT64, &t[1])) !=
            CG_OK ||
        (st = cg_tensor_requires_grad_(t[0], true)) != CG_OK ||
        (st = cg_tensor_requires_grad_(t[1], true)) != CG_OK ||
        (st = cg_mul(t[0], t[1], &t[2])) != CG_OK ||
        (st = cg_exp(t[2], &t[3])) != CG_OK ||
        (st = cg_tensor_view(t[3], vs, 2, &t[4])) != CG_OK ||
        (st = cg_mm(t[0], t[4], &t[5])) != CG_OK ||
        (st = cg_mul_scalar(t[5], 0.5, &t[6])) != CG_OK ||
        (st = cg_softmax(t[6], 1, &t[8])) != CG_OK ||
        (st = cg_cat((cg_tensor *[]){t[8], t[5]}, 2, 0, &t[9])) != CG_OK)
        goto out;
    if ((st = cg_sum(t[9], &t[7])) == CG_OK &&
        (st = cg_tensor_retain_grad(t[3])) == CG_OK &&
        (st = cg_tensor_backward(t[7], NULL, true)) == CG_OK &&
        (st = cg_tensor_backward(t[7], NULL, false)) == CG_OK) {
        /* the result is checked outside the sweep too */
        if (!cg_tensor_grad(t[0]) || !cg_tensor_grad(t[1]) ||
            !cg_tensor_grad(t[3]))
            st = cg__error(CG_ERR_RUNTIME, "missing gradient");
    }
out:
    for (int i = 11; i >= 0; i--)
        cg_tensor_release(t[i]);
    return st;
}

START_TEST(test_alloc_forward_backward)
{
    cg_clear_error();
    long n =
        tu_alloc_sweep(scenario_forward_backward, NULL, "forward + backward");
    ck_assert_int_gt(n, 20);
}
END_TEST

/* backward alone, on a graph built beforehand: each failure leaves every
 * .grad, retained grad and saved tensor as it was, and the graph usable. */
START_TEST(test_alloc_backward_transactional)
{
    cg_tensor *x = lit("[[1., 2., 3.], [4., 5., 6.]]", true, "x");
    cg_tensor *y = lit("[0.5, -1., 2.]", true, "y");
    tu_ok(cg_tensor_set_grad(x,
                             lit("[[1., 1., 1.], [1., 1., 1.]]", false, NULL)));
    cg_tensor *m = B(cg_mul, x, y);
    cg_tensor *e = U(cg_exp, m);
    tu_ok(cg_tensor_retain_grad(e));
    cg_tensor *l = U(cg_sum, B(cg_add, view(e, (int64_t[]){3, 2}, 2),
                               view(m, (int64_t[]){3, 2}, 2)));
    long n;
    for (n = 1;; n++) {
        grad_snap sx = snap_grad(x), sy = snap_grad(y), se = snap_grad(e);
        tu_alloc_begin(n);
        cg_status st = cg_tensor_backward(l, NULL, false);
        bool failed = tu_alloc_failed();
        tu_alloc_end();
        if (!failed) {
            tu_ok(st);
            free(sx.vals);
            free(sy.vals);
            free(se.vals);
            break;
        }
        ck_assert_msg(st == CG_ERR_NOMEM, "allocation %ld: %s", n,
                      cg_last_error());
        check_grad_snap(&sx, "x");
        check_grad_snap(&sy, "y");
        check_grad_snap(&se, "e");
        ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(e)), 1);
        ck_assert_int_eq(cg_node_num_saved(cg_tensor_grad_fn(m)), 2);
    }
    ck_assert_int_gt(n, 5);
    /* the one backward that went through is right */
    double xs[6] = {1, 2, 3, 4, 5, 6}, ys[3] = {0.5, -1, 2};
    double gx[6], gy[3] = {0, 0, 0}, ge[6];
    for (int i = 0; i < 6; i++) {
        double mi = xs[i] * ys[i % 3], d = exp(mi) + 1.0;
        ge[i] = 1.0;
        gx[i] = 1.0 + d * ys[i % 3];
        gy[i % 3] += d * xs[i];
    }
    assert_values(cg_tensor_grad(x), gx, 6, 1e-9, "x.grad");
    assert_values(cg_tensor_grad(y), gy, 3, 1e-9, "y.grad");
    assert_values(cg_tensor_grad(e), ge, 6, 0.0, "e.grad");
}
END_TEST

static cg_status scenario_gradcheck(void *ctx)
{
    const gc_op *const *ops = ctx;
    cg_tensor *x = NULL;
    cg_status st =
        cg_tensor_literal_dtype("[[0.5, -1.], [2., 0.25]]", CG_FLOAT64, &x);
    if (st != CG_OK)
        return st;
    cg_tensor *in[2] = {x, x};
    cg_gradcheck_result res;
    if ((st = cg_tensor_requires_grad_(x, true)) == CG_OK &&
        (st = cg_gradcheck(gc_run, (void *)ops[0], in, 1, NULL, &res)) ==
            CG_OK &&
        !res.passed)
        st = cg__error(CG_ERR_RUNTIME, "gradcheck: %s", res.message);
    if (st == CG_OK &&
        (st = cg_gradcheck(gc_run, (void *)ops[1], in, 2, NULL, &res)) ==
            CG_OK &&
        !res.passed)
        st = cg__error(CG_ERR_RUNTIME, "gradcheck: %s", res.message);
    cg_tensor_release(x);
    return st;
}

START_TEST(test_alloc_gradcheck)
{
    const gc_op *ops[2] = {find_op("exp"), find_op("mm")};
    tu_alloc_sweep(scenario_gradcheck, (void *)ops, "gradcheck");
}
END_TEST

static cg_status scenario_graph(void *ctx)
{
    FILE *f = ctx;
    cg_tensor *x = NULL, *e = NULL, *m = NULL, *s = NULL;
    cg_status st = cg_tensor_literal_dtype("[1., 2.]", CG_FLOAT64, &x);
    if (st == CG_OK && (st = cg_tensor_requires_grad_(x, true)) == CG_OK &&
        (st = cg_exp(x, &e)) == CG_OK && (st = cg_mul(e, x, &m)) == CG_OK &&
        (st = cg_sum(m, &s)) == CG_OK) {
        /* a failure writes nothing */
        long before = ftell(f);
        st = cg_graph_print(s, f);
        if (st != CG_OK && ftell(f) != before)
            st = cg__error(CG_ERR_RUNTIME, "partial tree written");
        before = ftell(f);
        if (st == CG_OK && (st = cg_graph_write_dot(s, f)) != CG_OK &&
            ftell(f) != before)
            st = cg__error(CG_ERR_RUNTIME, "partial DOT written");
    }
    cg_tensor_release(s);
    cg_tensor_release(m);
    cg_tensor_release(e);
    cg_tensor_release(x);
    return st;
}

START_TEST(test_alloc_graph)
{
    FILE *f = tmpfile();
    ck_assert_ptr_nonnull(f);
    tu_alloc_sweep(scenario_graph, f, "graph printers");
    fclose(f);
}
END_TEST

/* ======================================================================
 * example: examples/autograd_graph, byte for byte
 * ====================================================================== */

START_TEST(test_example_output)
{
    const char *exe = CG_BUILD_DIR "/examples/autograd_graph";
    struct stat sb;
    ck_assert_msg(stat(exe, &sb) == 0, "%s not built", exe);
    char dir[] = "/tmp/cg_autograd_XXXXXX";
    ck_assert_ptr_nonnull(mkdtemp(dir));
    char cmd[1024], out_path[512], dot_path[512];
    snprintf(out_path, sizeof out_path, "%s/stdout.txt", dir);
    snprintf(dot_path, sizeof dot_path, "%s/graph.dot", dir);
    snprintf(cmd, sizeof cmd, "cd '%s' && '%s' > stdout.txt", dir, exe);
    ck_assert_int_eq(system(cmd), 0);
    char *got = tu_read_text(out_path);
    char *want =
        tu_read_text(tu_data_path("autograd/autograd_graph.expected.txt"));
    ck_assert_ptr_nonnull(got);
    ck_assert_ptr_nonnull(want);
    ck_assert_str_eq(got, want);
    /* the gradients in it are PyTorch's */
    char *grads =
        tu_read_text(tu_data_path("autograd/autograd_graph.grads.txt"));
    ck_assert_ptr_nonnull(grads);
    /* blocks start at a line ending in ':' ("W1.grad:") */
    for (char *blk = grads; *blk;) {
        char *end = strchr(blk, '\n');
        ck_assert_ptr_nonnull(end);
        for (end++; *end; end = strchr(end, '\n') + 1) {
            size_t len = strcspn(end, "\n");
            if (len > 0 && end[len - 1] == ':')
                break;
        }
        char save = *end;
        *end = '\0';
        ck_assert_msg(strstr(want, blk) != NULL,
                      "the expected output lacks torch's block:\n%s", blk);
        *end = save;
        blk = end;
    }
    free(grads);
    char *dot = tu_read_text(dot_path);
    ck_assert_ptr_nonnull(dot);
    ck_assert_msg(strncmp(dot, "digraph", 7) == 0, "%s", dot);
    ck_assert_ptr_nonnull(strstr(dot, "AccumulateGrad\\nW1 [3, 4]"));
    free(dot);
    free(got);
    free(want);
    remove(out_path);
    remove(dot_path);
    rmdir(dir);
}
END_TEST

Suite *autograd_suite(void)
{
    Suite *s = suite_create("autograd");
    TCase *tc = tcase_create("engine");
    tcase_add_checked_fixture(tc, NULL, drain);
    tcase_add_test(tc, test_leaf_accumulate_grad);
    tcase_add_test(tc, test_requires_grad_propagation);
    tcase_add_test(tc, test_grad_accumulates);
    tcase_add_test(tc, test_grad_accumulates_strided);
    tcase_add_test(tc, test_zero_grad);
    tcase_add_test(tc, test_detach);
    tcase_add_test(tc, test_retain_grad);
    tcase_add_test(tc, test_retain_graph);
    tcase_add_test(tc, test_no_grad_scope);
    tcase_add_test(tc, test_requires_grad_errors);
    tcase_add_test(tc, test_saved_released);
    tcase_add_test(tc, test_release_ctx_once);
    tcase_add_test(tc, test_trace);
    tcase_add_test(tc, test_diamond);
    tcase_add_test(tc, test_grads_are_private);
    tcase_add_test(tc, test_gradient_dtype_and_wide_nodes);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_checked_fixture(tc, NULL, drain);
    tcase_add_test(tc, test_error_scalar);
    tcase_add_test(tc, test_error_second_backward);
    tcase_add_test(tc, test_error_no_grad_fn);
    tcase_add_test(tc, test_error_shape_mismatch);
    tcase_add_test(tc, test_error_version_saved_output);
    tcase_add_test(tc, test_error_version_saved_input);
    tcase_add_test(tc, test_error_version_saved_leaf);
    tcase_add_test(tc, test_error_leaf_inplace);
    tcase_add_test(tc, test_error_transactional);
    tcase_add_test(tc, test_error_null);
    suite_add_tcase(s, tc);

    tc = tcase_create("regressions");
    tcase_add_checked_fixture(tc, NULL, drain);
    tcase_add_test(tc, test_bug_complex_grad_dtype);
    tcase_add_test(tc, test_bug_check_order);
    tcase_add_test(tc, test_bug_discover_state_after_nomem);
    tcase_add_test(tc, test_bug_discover_growth_after_nomem);
    tcase_add_test(tc, test_bug_release_ctx_twice);
    suite_add_tcase(s, tc);

    tc = tcase_create("op_parity");
    tcase_add_checked_fixture(tc, NULL, drain);
    tcase_add_test(tc, test_parity_scalar_second_backward);
    suite_add_tcase(s, tc);

    tc = tcase_create("deep");
    tcase_add_checked_fixture(tc, NULL, drain);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_deep_mul_scalar);
    tcase_add_test(tc, test_deep_views);
    tcase_add_test(tc, test_deep_saved);
    suite_add_tcase(s, tc);

    tc = tcase_create("pytorch");
    tcase_add_checked_fixture(tc, NULL, drain);
    tcase_add_loop_test(tc, test_pytorch_graphs, 0, N_CASES);
    tcase_add_test(tc, test_pytorch_composite_gradients);
    suite_add_tcase(s, tc);

    tc = tcase_create("gradcheck");
    tcase_add_checked_fixture(tc, NULL, drain);
    tcase_set_timeout(tc, 120);
    tcase_add_loop_test(tc, test_gradcheck_ops, 0, N_GC_OPS);
    tcase_add_test(tc, test_gradcheck_catches_wrong_backward);
    tcase_add_test(tc, test_gradcheck_input_numbering);
    tcase_add_test(tc, test_gradcheck_complex_wrong);
    tcase_add_test(tc, test_gradcheck_leaves_inputs_alone);
    tcase_add_test(tc, test_gradcheck_input_errors);
    tcase_add_test(tc, test_gradcheck_other_failures);
    tcase_add_test(tc, test_gradcheck_composite);
    tcase_add_loop_test(tc, test_gradcheck_views, 0, N_VW_CASES);
    suite_add_tcase(s, tc);

    tc = tcase_create("graph");
    tcase_add_checked_fixture(tc, NULL, drain);
    tcase_add_test(tc, test_graph_text);
    tcase_add_test(tc, test_graph_small_cases);
    tcase_add_test(tc, test_graph_write_error);
    suite_add_tcase(s, tc);

    tc = tcase_create("alloc");
    tcase_add_checked_fixture(tc, NULL, drain);
    tcase_set_timeout(tc, 600);
    tcase_add_test(tc, test_alloc_forward_backward);
    tcase_add_test(tc, test_alloc_backward_transactional);
    tcase_add_test(tc, test_alloc_gradcheck);
    tcase_add_test(tc, test_alloc_graph);
    suite_add_tcase(s, tc);

    tc = tcase_create("example");
    tcase_add_checked_fixture(tc, NULL, drain);
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_example_output);
    suite_add_tcase(s, tc);
    return s;
}
