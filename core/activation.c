/*
 * activation.c -- elementwise activations with autograd, as torch.relu,
 * F.leaky_relu, torch.sigmoid, torch.tanh and F.gelu in PyTorch 1.13 (CPU).
 *
 *   relu        ReluBackward0       saves y   gx = y <= 0 ? 0 : gy
 *   leaky_relu  LeakyReluBackward0  saves x   gx = x > 0 ? gy : gy * slope
 *   sigmoid     SigmoidBackward0    saves y   gx = gy * conj((1 - y) * y)
 *   tanh        TanhBackward0       saves y   gx = gy * conj(1 - y * y)
 *   gelu        GeluBackward0       saves x   exact:  y = x * Phi(x),
 *                   gx = gy * (Phi(x) + x * phi(x)), Phi/phi the standard
 *                   normal cdf/pdf; "tanh": y = x/2 * (1 + tanh(u)),
 *                   u = sqrt(2/pi) * (x + 0.044715 x^3),
 *                   gx = gy * ((1 + tanh u)/2
 *                          + x/2 * (1 - tanh^2 u) * sqrt(2/pi) * (1 + 3 *
 * 0.044715 x^2))
 *
 * relu(x) keeps NaN and -0.0 (PyTorch's clamp_min); leaky_relu(x) is
 * x > 0 ? x : x * slope, slope rounded to the dtype as PyTorch does.
 * sigmoid and tanh take complex tensors (as PyTorch does); relu,
 * leaky_relu and gelu refuse them with PyTorch's messages.
 *
 * Precision: float32 sigmoid and tanh compute in float (libm's expf/tanhf
 * are within an ulp or two, as PyTorch's vectorised kernels are). GELU's
 * erf form cancels for negative x in float (1 + erf(x) -> 0), so both GELU
 * forms and their gradients compute in double and round once: within half
 * an ulp of the exact value, and so within PyTorch's own few-ulp error.
 * The exact form uses erfc(-x/sqrt 2) = 1 + erf(x/sqrt 2), which is
 * accurate where the sum would cancel.
 */
#include "ops_internal.h"

#include <string.h>

#define SQRT1_2 0.70710678118654752440        /* 1/sqrt(2) */
#define INV_SQRT_2PI 0.39894228040143267794   /* 1/sqrt(2 pi) */
#define SQRT_2_OVER_PI 0.79788456080286535588 /* sqrt(2/pi) */
#define GELU_KAPPA 0.044715

/* ---- GELU in double ------------------------------------------------------ */

static double gelu_erf(double x)
{
    return 0.5 * x * erfc(-x * SQRT1_2);
}

static double gelu_erf_grad(double x)
{
    double cdf = 0.5 * erfc(-x * SQRT1_2);
    double pdf = exp(-0.5 * x * x) * INV_SQRT_2PI;
    return cdf + x * pdf;
}

static double gelu_tanh(double x)
{
    double inner = SQRT_2_OVER_PI * (x + GELU_KAPPA * x * x * x);
    return 0.5 * x * (1.0 + tanh(inner));
}

static double gelu_tanh_grad(double x)
{
    double x2 = x * x;
    double t = tanh(SQRT_2_OVER_PI * (x + GELU_KAPPA * x2 * x));
    double left = 0.5 * x, right = 1.0 + t;
    double dleft = 0.5 * right;
    double dright =
        left * (1.0 - t * t) * SQRT_2_OVER_PI * (1.0 + 3.0 * GELU_KAPPA * x2);
    return dleft + dright;
}

/* ---- kernels ----------------------------------------------------------------
 * Binary backward kernels take (gy, saved); p->p is the slope. */

#define REAL_ACT_KERNELS(S, T, R)                                              \
    CG_UNARY_KERNEL(relu, S, T, T, x < 0 ? (T)0 : x)                           \
    CG_BINARY_KERNEL(relu_grad, S, T, b <= 0 ? (T)0 : a)                       \
    CG_UNARY_KERNEL(leaky, S, T, T, x > 0 ? x : x * (T)p->p)                   \
    CG_BINARY_KERNEL(leaky_grad, S, T, b > 0 ? a : a * (T)p->p)                \
    CG_UNARY_KERNEL(gelu, S, T, T, (T)gelu_erf(x))                             \
    CG_BINARY_KERNEL(gelu_grad, S, T, (T)(a * gelu_erf_grad(b)))               \
    CG_UNARY_KERNEL(gelu_t, S, T, T, (T)gelu_tanh(x))                          \
    CG_BINARY_KERNEL(gelu_t_grad, S, T, (T)(a * gelu_tanh_grad(b)))

#define ACT_KERNELS(S, T, R)                                                   \
    CG_UNARY_KERNEL(                                                           \
        sigmoid, S, T, T,                                                      \
        cg__##S##_div(cg__##S##_of(1.0, 0.0),                                  \
                      cg__##S##_add(cg__##S##_of(1.0, 0.0),                    \
                                    cg__##S##_exp(cg__##S##_neg(x)))))         \
    CG_BINARY_KERNEL(                                                          \
        sigmoid_grad, S, T,                                                    \
        cg__##S##_mul(a, cg__##S##_conj(cg__##S##_mul(                         \
                             cg__##S##_sub(cg__##S##_of(1.0, 0.0), b), b))))   \
    CG_UNARY_KERNEL(tanh, S, T, T, cg__##S##_tanh(x))                          \
    CG_BINARY_KERNEL(                                                          \
        tanh_grad, S, T,                                                       \
        cg__##S##_mul(a, cg__##S##_conj(cg__##S##_sub(cg__##S##_of(1.0, 0.0),  \
                                                      cg__##S##_mul(b, b)))))

CG_FOR_REAL_DTYPES(REAL_ACT_KERNELS)
CG_FOR_ALL_DTYPES(ACT_KERNELS)

static const cg_kernel_table relu_k = CG_KERNELS_REAL(relu);
static const cg_kernel_table relu_grad_k = CG_KERNELS_REAL(relu_grad);
static const cg_kernel_table leaky_k = CG_KERNELS_REAL(leaky);
static const cg_kernel_table leaky_grad_k = CG_KERNELS_REAL(leaky_grad);
static const cg_kernel_table gelu_k = CG_KERNELS_REAL(gelu);
static const cg_kernel_table gelu_grad_k = CG_KERNELS_REAL(gelu_grad);
static const cg_kernel_table gelu_t_k = CG_KERNELS_REAL(gelu_t);
static const cg_kernel_table gelu_t_grad_k = CG_KERNELS_REAL(gelu_t_grad);
static const cg_kernel_table sigmoid_k = CG_KERNELS_ALL(sigmoid);
static const cg_kernel_table sigmoid_grad_k = CG_KERNELS_ALL(sigmoid_grad);
static const cg_kernel_table tanh_k = CG_KERNELS_ALL(tanh);
static const cg_kernel_table tanh_grad_k = CG_KERNELS_ALL(tanh_grad);

/* ---- shared forward and backward ----------------------------------------- */

/* A node keeps the kernel parameters (slope) and the gradient kernel's
 * table, so one backward serves every activation. */
typedef struct act_ctx {
    cg_kparams params;
    const cg_loop_fn *grad_k;
} act_ctx;

/* gx = grad_k(gy, saved), same shape and dtype as gy. */
static cg_status act_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const act_ctx *c = node->ctx;
    cg_tensor *s;
    cg_status st = cg__saved(node, 0, &s);
    if (st != CG_OK)
        return st;
    const cg_tensor *ins[2] = {gy, s};
    return cg__map(gy->shape, gy->ndim, gy->dtype, ins, 2, gy->dtype,
                   c->grad_k[gy->dtype], &c->params, &gx[0]);
}

/* y = k(a) recorded as `op`, saving y (save_out) or a. */
static cg_status act_forward(const cg_op_def *op, const cg_loop_fn *k,
                             const cg_loop_fn *grad_k, cg_tensor *a,
                             double param, bool save_out, cg_tensor **out)
{
    cg_kparams p = {.p = param};
    const cg_tensor *in = a;
    cg_tensor *y;
    cg_status st = cg__map(a->shape, a->ndim, a->dtype, &in, 1, a->dtype,
                           k[a->dtype], &p, &y);
    if (st != CG_OK)
        return st;
    cg_node *node;
    act_ctx *c;
    if ((st = cg__record(y, op, &a, 1, sizeof *c, &node, (void **)&c)) != CG_OK)
        goto fail;
    if (node) {
        c->params = p;
        c->grad_k = grad_k;
        if ((st = cg__save(node, 0, save_out ? y : a, save_out)) != CG_OK)
            goto fail;
    }
    *out = y;
    return CG_OK;
fail:
    cg_tensor_release(y);
    return st;
}

static cg_status check_args(const cg_tensor *a, cg_tensor **out)
{
    if (!a)
        return cg__error_null("a");
    if (!out)
        return cg__error_null("out");
    return CG_OK;
}

/* PyTorch's dispatch error for a kernel without complex support. */
static cg_status not_implemented(const char *kernel, cg_dtype dt)
{
    return cg__error(CG_ERR_RUNTIME, "\"%s\" not implemented for '%s'", kernel,
                     cg__dtype_scalar_name(dt));
}

/* ---- the ops ------------------------------------------------------------- */

static const cg_op_def relu_op = {"ReluBackward0", act_backward, NULL};
static const cg_op_def leaky_op = {"LeakyReluBackward0", act_backward, NULL};
static const cg_op_def sigmoid_op = {"SigmoidBackward0", act_backward, NULL};
static const cg_op_def tanh_op = {"TanhBackward0", act_backward, NULL};
static const cg_op_def gelu_op = {"GeluBackward0", act_backward, NULL};

cg_status cg_relu(cg_tensor *a, cg_tensor **out)
{
    cg_status st = check_args(a, out);
    if (st != CG_OK)
        return st;
    if (cg_dtype_is_complex(a->dtype)) /* relu is clamp_min(a, 0) */
        return cg__error(CG_ERR_RUNTIME,
                         "clamp is not supported for complex types");
    return act_forward(&relu_op, relu_k, relu_grad_k, a, 0.0, true, out);
}

cg_status cg_leaky_relu(cg_tensor *a, double negative_slope, cg_tensor **out)
{
    cg_status st = check_args(a, out);
    if (st != CG_OK)
        return st;
    if (cg_dtype_is_complex(a->dtype))
        return not_implemented("leaky_relu_cpu", a->dtype);
    return act_forward(&leaky_op, leaky_k, leaky_grad_k, a, negative_slope,
                       false, out);
}

cg_status cg_sigmoid(cg_tensor *a, cg_tensor **out)
{
    cg_status st = check_args(a, out);
    return st != CG_OK ? st
                       : act_forward(&sigmoid_op, sigmoid_k, sigmoid_grad_k, a,
                                     0.0, true, out);
}

cg_status cg_tanh(cg_tensor *a, cg_tensor **out)
{
    cg_status st = check_args(a, out);
    return st != CG_OK
               ? st
               : act_forward(&tanh_op, tanh_k, tanh_grad_k, a, 0.0, true, out);
}

cg_status cg_gelu(cg_tensor *a, const char *approximate, cg_tensor **out)
{
    cg_status st = check_args(a, out);
    if (st != CG_OK)
        return st;
    bool tanh_form = approximate && strcmp(approximate, "tanh") == 0;
    if (approximate && !tanh_form && strcmp(approximate, "none") != 0)
        return cg__error(CG_ERR_RUNTIME,
                         "approximate argument must be either none or tanh.");
    if (cg_dtype_is_complex(a->dtype))
        return not_implemented("GeluKernelImpl", a->dtype);
    return act_forward(&gelu_op, tanh_form ? gelu_t_k : gelu_k,
                       tanh_form ? gelu_t_grad_k : gelu_grad_k, a, 0.0, false,
                       out);
}
