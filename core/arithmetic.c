/*
 * arithmetic.c -- elementwise arithmetic with autograd, as PyTorch 1.13's
 * tensor operators on the CPU. Binary ops broadcast and promote (see
 * broadcast.c); a Python scalar is a "wrapped number" that never raises a
 * tensor's precision and appears as a None edge.
 *
 * Each op's gradient, with gy the gradient of the output (for complex
 * values PyTorch's convention: gy = dL/d conj(y), so a holomorphic f
 * passes gy * conj(f'(x))):
 *
 *   a + b, a + s       AddBackward0   ga = gy             gb = gy
 *   a - b, a - s       SubBackward0   ga = gy             gb = -gy
 *   s - a              RsubBackward1  ga = -gy
 *   a * b, a * s       MulBackward0   ga = gy * conj(b)   gb = gy * conj(a)
 *   a / b, a / s       DivBackward0   ga = gy / conj(b)
 *                                     gb = -gy * conj(a / b / b)
 *   -a                 NegBackward0   ga = -gy
 *   a ** p             PowBackward0   ga = gy * conj(p * a ** (p - 1)),
 *                                     zeros for p == 0
 *   exp(a)             ExpBackward0   ga = gy * conj(y)
 *   log(a)             LogBackward0   ga = gy / conj(a)
 *   sqrt(a)            SqrtBackward0  ga = gy / (2 * conj(y))
 *   |a|                AbsBackward0   ga = gy * sgn(a)  (0 at 0; z/|z|)
 *   conj(a)            ConjBackward0  ga = conj(gy)
 *
 * A gradient is then summed over the dimensions its input was broadcast
 * along, and a real input of a complex result gets its real part
 * (PyTorch's handle_r_to_c), in the input's dtype.
 *
 * Differences from PyTorch: conj of a complex tensor is a copy (PyTorch
 * returns a lazy conjugate view); a ** p takes a real exponent only.
 * Integer dtypes, alpha= and out= do not exist in cgrad.
 */
#include "ops_internal.h"

#include <string.h>

/* ---- kernels ---------------------------------------------------------------
 * One template per operation, instantiated for every dtype. Forward and the
 * backward formulas of the table above. */

#define ARITH_KERNELS(S, T, R)                                                 \
    CG_BINARY_KERNEL(add, S, T, cg__##S##_add(a, b))                           \
    CG_BINARY_KERNEL(sub, S, T, cg__##S##_sub(a, b))                           \
    CG_BINARY_KERNEL(mul, S, T, cg__##S##_mul(a, b))                           \
    CG_BINARY_KERNEL(div, S, T, cg__##S##_div(a, b))                           \
    CG_BINARY_KERNEL(mulc, S, T, cg__##S##_mul(a, cg__##S##_conj(b)))          \
    CG_BINARY_KERNEL(divc, S, T, cg__##S##_div(a, cg__##S##_conj(b)))          \
    CG_BINARY_KERNEL(mulsgn, S, T, cg__##S##_mul(a, cg__##S##_sgn(b)))         \
    /* sqrt: gy / (2 * conj(y)) */                                             \
    CG_BINARY_KERNEL(sqrt_grad, S, T,                                          \
                     cg__##S##_div(a, cg__##S##_mul(cg__##S##_of(2.0, 0.0),    \
                                                    cg__##S##_conj(b))))       \
    /* pow: gy * conj(p * x ** (p - 1)); p->mode is the mode of p - 1 */       \
    CG_BINARY_KERNEL(                                                          \
        pow_grad, S, T,                                                        \
        cg__##S##_mul(a, cg__##S##_conj(cg__##S##_mul(                         \
                             cg__##S##_of(p->p, 0.0),                          \
                             cg__##S##_ipow(b, p->p - 1.0, p->mode)))))        \
    /* div: gb = -gy * conj(a / b / b) */                                      \
    CG_TERNARY_KERNEL(                                                         \
        div_grad_b, S, T,                                                      \
        cg__##S##_mul(cg__##S##_neg(a),                                        \
                      cg__##S##_conj(cg__##S##_div(cg__##S##_div(b, c), c))))  \
    CG_UNARY_KERNEL(add_s, S, T, T, cg__##S##_add(x, s))                       \
    CG_UNARY_KERNEL(sub_s, S, T, T, cg__##S##_sub(x, s))                       \
    CG_UNARY_KERNEL(mul_s, S, T, T, cg__##S##_mul(x, s))                       \
    CG_UNARY_KERNEL(div_s, S, T, T, cg__##S##_div(x, s))                       \
    CG_UNARY_KERNEL(rsub_s, S, T, T, cg__##S##_sub(s, x))                      \
    CG_UNARY_KERNEL(neg, S, T, T, cg__##S##_neg(x))                            \
    CG_UNARY_KERNEL(conj, S, T, T, cg__##S##_conj(x))                          \
    CG_UNARY_KERNEL(exp, S, T, T, cg__##S##_exp(x))                            \
    CG_UNARY_KERNEL(log, S, T, T, cg__##S##_log(x))                            \
    CG_UNARY_KERNEL(sqrt, S, T, T, cg__##S##_sqrt(x))                          \
    CG_UNARY_KERNEL(abs, S, T, R, cg__##S##_abs(x))                            \
    CG_UNARY_KERNEL(pow, S, T, T, cg__##S##_ipow(x, p->p, p->mode))

CG_FOR_ALL_DTYPES(ARITH_KERNELS)

static const cg_kernel_table add_k = CG_KERNELS_ALL(add);
static const cg_kernel_table sub_k = CG_KERNELS_ALL(sub);
static const cg_kernel_table mul_k = CG_KERNELS_ALL(mul);
static const cg_kernel_table div_k = CG_KERNELS_ALL(div);
static const cg_kernel_table mulc_k = CG_KERNELS_ALL(mulc);
static const cg_kernel_table divc_k = CG_KERNELS_ALL(divc);
static const cg_kernel_table mulsgn_k = CG_KERNELS_ALL(mulsgn);
static const cg_kernel_table sqrt_grad_k = CG_KERNELS_ALL(sqrt_grad);
static const cg_kernel_table pow_grad_k = CG_KERNELS_ALL(pow_grad);
static const cg_kernel_table div_grad_b_k = CG_KERNELS_ALL(div_grad_b);
static const cg_kernel_table add_s_k = CG_KERNELS_ALL(add_s);
static const cg_kernel_table sub_s_k = CG_KERNELS_ALL(sub_s);
static const cg_kernel_table mul_s_k = CG_KERNELS_ALL(mul_s);
static const cg_kernel_table div_s_k = CG_KERNELS_ALL(div_s);
static const cg_kernel_table rsub_s_k = CG_KERNELS_ALL(rsub_s);
static const cg_kernel_table neg_k = CG_KERNELS_ALL(neg);
static const cg_kernel_table conj_k = CG_KERNELS_ALL(conj);
static const cg_kernel_table exp_k = CG_KERNELS_ALL(exp);
static const cg_kernel_table log_k = CG_KERNELS_ALL(log);
static const cg_kernel_table sqrt_k = CG_KERNELS_ALL(sqrt);
static const cg_kernel_table abs_k = CG_KERNELS_ALL(abs);
static const cg_kernel_table pow_k = CG_KERNELS_ALL(pow);

/* ---- values without autograd --------------------------------------------- */

/* k(a, b) broadcast, in the promoted dtype of a and b. */
static cg_status binary_values(const cg_loop_fn *k, const cg_tensor *a,
                               const cg_tensor *b, const cg_kparams *p,
                               cg_tensor **out)
{
    int64_t shape[CG_MAX_DIMS];
    int ndim;
    cg_status st = cg__broadcast_shapes(a, b, shape, &ndim);
    if (st != CG_OK)
        return st;
    cg_dtype dt = cg__result_type(a, b);
    const cg_tensor *ins[2] = {a, b};
    return cg__map(shape, ndim, dt, ins, 2, dt, k[dt], p, out);
}

/* k(x) with the scalar (re, im) in params: a wrapped number that makes the
 * result complex only when it is complex itself. */
static cg_status scalar_values(const cg_loop_fn *k, const cg_tensor *x,
                               double re, double im, bool complex_scalar,
                               cg_tensor **out)
{
    cg_dtype dt = cg__result_type_scalar(x->dtype, complex_scalar);
    cg_kparams p = {.re = re, .im = im};
    return cg__map(x->shape, x->ndim, dt, &x, 1, dt, k[dt], &p, out);
}

/* k(x) in x's dtype, the result in out_dt (x's, or its real dtype). */
static cg_status unary_values(const cg_loop_fn *k, const cg_tensor *x,
                              cg_dtype out_dt, const cg_kparams *p,
                              cg_tensor **out)
{
    return cg__map(x->shape, x->ndim, out_dt, &x, 1, x->dtype, k[x->dtype], p,
                   out);
}

/* ---- recording ----------------------------------------------------------- */

/* What a node of this file keeps: its inputs' dtypes and shapes (to give
 * back gradients of the right kind) and the scalar operand or exponent. */
typedef struct arith_ctx {
    cg_dtype dtype[2];
    int ndim[2];
    int64_t shape[2][CG_MAX_DIMS];
    double re, im;
} arith_ctx;

/* Saved-tensor slots. */
enum { SLOT_A = 0, SLOT_B = 1, SLOT_OUT = 2 };

/* Which tensors an op keeps for backward. */
enum {
    SAVE_A_FOR_B = 1,   /* a, when b needs a gradient (mul, div) */
    SAVE_B_FOR_A = 2,   /* b, when a needs one (mul, div) */
    SAVE_B_FOR_ANY = 4, /* b, when either needs one (div) */
    SAVE_A = 8,         /* the input of a unary op */
    SAVE_OUT = 16,      /* the output of a unary op */
    SAVE_SCALAR = 32    /* the scalar operand, which PyTorch 1.13 wraps in a
                           saved tensor for x*s and x/s: its only visible
                           effect is that a second backward fails */
};

/* Records `op` on y (inputs a and b; b NULL for a scalar or a unary op),
 * keeping what `save` asks for. On failure y is released. */
static cg_status record(cg_tensor *y, const cg_op_def *op, cg_tensor *a,
                        cg_tensor *b, int n_inputs, int save, double re,
                        double im)
{
    cg_tensor *ins[2] = {a, b};
    cg_node *node;
    arith_ctx *c;
    cg_status st =
        cg__record(y, op, ins, n_inputs, sizeof *c, &node, (void **)&c);
    if (st != CG_OK || !node)
        goto out;
    for (int i = 0; i < 2; i++) {
        if (!ins[i])
            continue;
        c->dtype[i] = ins[i]->dtype;
        c->ndim[i] = ins[i]->ndim;
        memcpy(c->shape[i], ins[i]->shape, sizeof c->shape[i]);
    }
    c->re = re;
    c->im = im;
    bool ga = cg__needs_grad(node, 0), gb = cg__needs_grad(node, 1);
    if (((save & SAVE_A_FOR_B) && gb) || (save & SAVE_A))
        st = cg__save(node, SLOT_A, a, false);
    if (st == CG_OK && (((save & SAVE_B_FOR_A) && ga) ||
                        ((save & SAVE_B_FOR_ANY) && (ga || gb))))
        st = cg__save(node, SLOT_B, b, false);
    if (st == CG_OK && (save & SAVE_OUT))
        st = cg__save(node, SLOT_OUT, y, true);
    if (st == CG_OK && (save & SAVE_SCALAR))
        st = cg__save(node, SLOT_B, NULL, false);
out:
    if (st != CG_OK)
        cg_tensor_release(y);
    return st;
}

static cg_status check2(const cg_tensor *a, const cg_tensor *b, cg_tensor **out)
{
    if (!a)
        return cg__error_null("a");
    if (!b)
        return cg__error_null("b");
    if (!out)
        return cg__error_null("out");
    return CG_OK;
}

static cg_status check1(const cg_tensor *a, cg_tensor **out)
{
    if (!a)
        return cg__error_null("a");
    if (!out)
        return cg__error_null("out");
    return CG_OK;
}

/* A tensor op: y = k(a, b), recorded as `op`. */
static cg_status binary_op(const cg_op_def *op, const cg_loop_fn *k,
                           cg_tensor *a, cg_tensor *b, int save,
                           cg_tensor **out)
{
    cg_tensor *y;
    cg_status st = check2(a, b, out);
    if (st != CG_OK || (st = binary_values(k, a, b, NULL, &y)) != CG_OK ||
        (st = record(y, op, a, b, 2, save, 0.0, 0.0)) != CG_OK)
        return st;
    *out = y;
    return CG_OK;
}

/* A tensor-scalar op: y = k(a; s), recorded as `op` with edges (a, None)
 * (n_edges 2) or (a) (RsubBackward1). */
static cg_status scalar_op(const cg_op_def *op, const cg_loop_fn *k,
                           cg_tensor *a, double re, double im,
                           bool complex_scalar, int n_edges, int save,
                           cg_tensor **out)
{
    cg_tensor *y;
    cg_status st = check1(a, out);
    if (st != CG_OK ||
        (st = scalar_values(k, a, re, im, complex_scalar, &y)) != CG_OK ||
        (st = record(y, op, a, NULL, n_edges, save, re, im)) != CG_OK)
        return st;
    *out = y;
    return CG_OK;
}

/* A unary op: y = k(a), in a's dtype or (real_out) its real dtype. */
static cg_status unary_op(const cg_op_def *op, const cg_loop_fn *k,
                          cg_tensor *a, bool real_out, const cg_kparams *p,
                          int save, cg_tensor **out)
{
    cg_tensor *y;
    cg_status st = check1(a, out);
    if (st != CG_OK)
        return st;
    cg_dtype dt = real_out ? cg_dtype_to_real(a->dtype) : a->dtype;
    if ((st = unary_values(k, a, dt, p, &y)) != CG_OK ||
        (st = record(y, op, a, NULL, 1, save, p ? p->p : 0.0, 0.0)) != CG_OK)
        return st;
    *out = y;
    return CG_OK;
}

/* ---- backward helpers ---------------------------------------------------- */

/* Turns g (owned) into the gradient of input i: summed to its shape, real
 * part for a real input, in its dtype. */
static cg_status finish(const arith_ctx *c, int i, cg_tensor *g, cg_tensor **gx)
{
    cg_status st = CG_OK;
    bool same = g->ndim == c->ndim[i];
    for (int d = 0; same && d < g->ndim; d++)
        same = g->shape[d] == c->shape[i][d];
    if (!same) {
        cg_tensor *s;
        st = cg__sum_to(g, c->shape[i], c->ndim[i], &s);
        cg_tensor_release(g);
        if (st != CG_OK)
            return st;
        g = s;
    }
    if (g->dtype != c->dtype[i]) {
        cg_tensor *r;
        st = cg__tensor_new(g->shape, g->ndim, c->dtype[i], &r);
        if (st == CG_OK)
            cg__copy_values(r, g); /* complex -> real keeps the real part */
        cg_tensor_release(g);
        if (st != CG_OK)
            return st;
        g = r;
    }
    *gx = g;
    return CG_OK;
}

/* gx[i] = finish(k(a, b)). */
static cg_status grad_binary(cg_node *node, int i, const cg_loop_fn *k,
                             const cg_tensor *a, const cg_tensor *b,
                             const cg_kparams *p, cg_tensor **gx)
{
    cg_tensor *g;
    cg_status st = binary_values(k, a, b, p, &g);
    return st != CG_OK ? st : finish(node->ctx, i, g, &gx[i]);
}

/* gx[i] = finish(k(a)) in a's dtype. */
static cg_status grad_unary(cg_node *node, int i, const cg_loop_fn *k,
                            const cg_tensor *a, const cg_kparams *p,
                            cg_tensor **gx)
{
    cg_tensor *g;
    cg_status st = unary_values(k, a, a->dtype, p, &g);
    return st != CG_OK ? st : finish(node->ctx, i, g, &gx[i]);
}

/* ---- add, sub, rsub ------------------------------------------------------ */

static cg_status add_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    cg_status st = CG_OK;
    for (int i = 0; i < 2 && st == CG_OK; i++)
        if (cg__needs_grad(node, i))
            st = finish(node->ctx, i, cg_tensor_retain(gy), &gx[i]);
    return st;
}

static cg_status sub_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    cg_status st = CG_OK;
    if (cg__needs_grad(node, 0))
        st = finish(node->ctx, 0, cg_tensor_retain(gy), &gx[0]);
    if (st == CG_OK && cg__needs_grad(node, 1))
        st = grad_unary(node, 1, neg_k, gy, NULL, gx);
    return st;
}

static cg_status rsub_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    return cg__needs_grad(node, 0) ? grad_unary(node, 0, neg_k, gy, NULL, gx)
                                   : CG_OK;
}

static const cg_op_def add_op = {"AddBackward0", add_backward, NULL};
static const cg_op_def sub_op = {"SubBackward0", sub_backward, NULL};
static const cg_op_def rsub_op = {"RsubBackward1", rsub_backward, NULL};

cg_status cg_add(cg_tensor *a, cg_tensor *b, cg_tensor **out)
{
    return binary_op(&add_op, add_k, a, b, 0, out);
}

cg_status cg_sub(cg_tensor *a, cg_tensor *b, cg_tensor **out)
{
    return binary_op(&sub_op, sub_k, a, b, 0, out);
}

cg_status cg_add_scalar(cg_tensor *a, double s, cg_tensor **out)
{
    return scalar_op(&add_op, add_s_k, a, s, 0.0, false, 2, 0, out);
}

cg_status cg_sub_scalar(cg_tensor *a, double s, cg_tensor **out)
{
    return scalar_op(&sub_op, sub_s_k, a, s, 0.0, false, 2, 0, out);
}

cg_status cg_rsub_scalar(cg_tensor *a, double s, cg_tensor **out)
{
    return scalar_op(&rsub_op, rsub_s_k, a, s, 0.0, false, 1, 0, out);
}

/* ---- mul ----------------------------------------------------------------- */

static cg_status mul_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    cg_tensor *a, *b;
    cg_status st = CG_OK;
    if (cg__needs_grad(node, 0) &&
        ((st = cg__saved(node, SLOT_B, &b)) != CG_OK ||
         (st = grad_binary(node, 0, mulc_k, gy, b, NULL, gx)) != CG_OK))
        return st;
    if (cg__needs_grad(node, 1) &&
        ((st = cg__saved(node, SLOT_A, &a)) != CG_OK ||
         (st = grad_binary(node, 1, mulc_k, gy, a, NULL, gx)) != CG_OK))
        return st;
    return CG_OK;
}

/* a * s: ga = gy * conj(s). */
static cg_status mul_scalar_backward(cg_node *node, cg_tensor *gy,
                                     cg_tensor **gx)
{
    const arith_ctx *c = node->ctx;
    cg_tensor *g;
    cg_status st;
    if (!cg__needs_grad(node, 0))
        return CG_OK;
    if ((st = scalar_values(mul_s_k, gy, c->re, -c->im, c->im != 0.0, &g)) !=
        CG_OK)
        return st;
    return finish(c, 0, g, &gx[0]);
}

static const cg_op_def mul_op = {"MulBackward0", mul_backward, NULL};
static const cg_op_def mul_scalar_op = {"MulBackward0", mul_scalar_backward,
                                        NULL};

cg_status cg_mul(cg_tensor *a, cg_tensor *b, cg_tensor **out)
{
    return binary_op(&mul_op, mul_k, a, b, SAVE_A_FOR_B | SAVE_B_FOR_A, out);
}

cg_status cg_mul_scalar(cg_tensor *a, double s, cg_tensor **out)
{
    return scalar_op(&mul_scalar_op, mul_s_k, a, s, 0.0, false, 2, SAVE_SCALAR,
                     out);
}

cg_status cg_mul_complex_scalar(cg_tensor *a, double re, double im,
                                cg_tensor **out)
{
    return scalar_op(&mul_scalar_op, mul_s_k, a, re, im, true, 2, SAVE_SCALAR,
                     out);
}

/* ---- div ----------------------------------------------------------------- */

static cg_status div_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    cg_tensor *a, *b;
    cg_status st = CG_OK;
    bool ga = cg__needs_grad(node, 0), gb = cg__needs_grad(node, 1);
    if ((ga || gb) && (st = cg__saved(node, SLOT_B, &b)) != CG_OK)
        return st;
    if (ga && (st = grad_binary(node, 0, divc_k, gy, b, NULL, gx)) != CG_OK)
        return st;
    if (gb) {
        if ((st = cg__saved(node, SLOT_A, &a)) != CG_OK)
            return st;
        /* -gy * conj(a / b / b), a and b broadcast to gy's shape, all in
         * the output's dtype as in the forward */
        cg_dtype dt = gy->dtype;
        const cg_tensor *ins[3] = {gy, a, b};
        cg_tensor *g;
        if ((st = cg__map(gy->shape, gy->ndim, dt, ins, 3, dt, div_grad_b_k[dt],
                          NULL, &g)) != CG_OK)
            return st;
        return finish(node->ctx, 1, g, &gx[1]);
    }
    return CG_OK;
}

/* a / s: ga = gy / conj(s) (s is real). */
static cg_status div_scalar_backward(cg_node *node, cg_tensor *gy,
                                     cg_tensor **gx)
{
    const arith_ctx *c = node->ctx;
    cg_tensor *g;
    cg_status st;
    if (!cg__needs_grad(node, 0))
        return CG_OK;
    if ((st = scalar_values(div_s_k, gy, c->re, 0.0, false, &g)) != CG_OK)
        return st;
    return finish(c, 0, g, &gx[0]);
}

static const cg_op_def div_op = {"DivBackward0", div_backward, NULL};
static const cg_op_def div_scalar_op = {"DivBackward0", div_scalar_backward,
                                        NULL};

cg_status cg_div(cg_tensor *a, cg_tensor *b, cg_tensor **out)
{
    return binary_op(&div_op, div_k, a, b, SAVE_A_FOR_B | SAVE_B_FOR_ANY, out);
}

cg_status cg_div_scalar(cg_tensor *a, double s, cg_tensor **out)
{
    return scalar_op(&div_scalar_op, div_s_k, a, s, 0.0, false, 2, SAVE_SCALAR,
                     out);
}

/* ---- neg, conj ----------------------------------------------------------- */

static cg_status neg_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    return grad_unary(node, 0, neg_k, gy, NULL, gx);
}

static cg_status conj_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    return grad_unary(node, 0, conj_k, gy, NULL, gx);
}

static const cg_op_def neg_op = {"NegBackward0", neg_backward, NULL};
static const cg_op_def conj_op = {"ConjBackward0", conj_backward, NULL};

cg_status cg_neg(cg_tensor *a, cg_tensor **out)
{
    return unary_op(&neg_op, neg_k, a, false, NULL, 0, out);
}

cg_status cg_conj(cg_tensor *a, cg_tensor **out)
{
    cg_status st = check1(a, out);
    if (st != CG_OK)
        return st;
    if (!cg_dtype_is_complex(a->dtype)) { /* PyTorch returns a itself */
        *out = cg_tensor_retain(a);
        return CG_OK;
    }
    return unary_op(&conj_op, conj_k, a, false, NULL, 0, out);
}

/* ---- pow ----------------------------------------------------------------- */

static cg_status pow_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const arith_ctx *c = node->ctx;
    cg_tensor *x;
    cg_status st = cg__saved(node, SLOT_A, &x);
    if (st != CG_OK)
        return st;
    if (c->re == 0.0)
        return cg_zeros(c->shape[0], c->ndim[0], c->dtype[0], &gx[0]);
    cg_kparams p = {.p = c->re, .mode = cg__pow_mode(c->re - 1.0)};
    return grad_binary(node, 0, pow_grad_k, gy, x, &p, gx);
}

static const cg_op_def pow_op = {"PowBackward0", pow_backward, NULL};

cg_status cg_pow_scalar(cg_tensor *a, double exponent, cg_tensor **out)
{
    cg_kparams p = {.p = exponent, .mode = cg__pow_mode(exponent)};
    return unary_op(&pow_op, pow_k, a, false, &p, SAVE_A, out);
}

/* ---- exp, log, sqrt ------------------------------------------------------ */

static cg_status exp_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    cg_tensor *y;
    cg_status st = cg__saved(node, SLOT_OUT, &y);
    return st != CG_OK ? st : grad_binary(node, 0, mulc_k, gy, y, NULL, gx);
}

static cg_status log_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    cg_tensor *x;
    cg_status st = cg__saved(node, SLOT_A, &x);
    return st != CG_OK ? st : grad_binary(node, 0, divc_k, gy, x, NULL, gx);
}

static cg_status sqrt_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    cg_tensor *y;
    cg_status st = cg__saved(node, SLOT_OUT, &y);
    return st != CG_OK ? st
                       : grad_binary(node, 0, sqrt_grad_k, gy, y, NULL, gx);
}

static const cg_op_def exp_op = {"ExpBackward0", exp_backward, NULL};
static const cg_op_def log_op = {"LogBackward0", log_backward, NULL};
static const cg_op_def sqrt_op = {"SqrtBackward0", sqrt_backward, NULL};

cg_status cg_exp(cg_tensor *a, cg_tensor **out)
{
    return unary_op(&exp_op, exp_k, a, false, NULL, SAVE_OUT, out);
}

cg_status cg_log(cg_tensor *a, cg_tensor **out)
{
    return unary_op(&log_op, log_k, a, false, NULL, SAVE_A, out);
}

cg_status cg_sqrt(cg_tensor *a, cg_tensor **out)
{
    return unary_op(&sqrt_op, sqrt_k, a, false, NULL, SAVE_OUT, out);
}

/* ---- abs ----------------------------------------------------------------- */

/* ga = gy * sgn(a); gy is real, so for complex a it is promoted first. */
static cg_status abs_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    cg_tensor *x;
    cg_status st = cg__saved(node, SLOT_A, &x);
    return st != CG_OK ? st : grad_binary(node, 0, mulsgn_k, gy, x, NULL, gx);
}

static const cg_op_def abs_op = {"AbsBackward0", abs_backward, NULL};

cg_status cg_abs(cg_tensor *a, cg_tensor **out)
{
    return unary_op(&abs_op, abs_k, a, true, NULL, SAVE_A, out);
}
