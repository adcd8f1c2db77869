/*
 * sgd.c -- torch.optim.SGD (PyTorch 1.13, torch/optim/sgd.py,
 * _single_tensor_sgd): momentum, dampening, Nesterov, weight decay,
 * maximize. Per parameter p with gradient g, in PyTorch's order:
 *
 *   d = maximize ? -g : g
 *   if weight_decay != 0:  d = d.add(p, alpha=weight_decay)
 *   if momentum != 0:
 *       buf = clone(d)                                 (first step)
 *       buf = buf.mul_(momentum).add_(d, alpha=1 - dampening)  (later)
 *       d = nesterov ? d.add(buf, alpha=momentum) : buf
 *   p.add_(d, alpha=-lr)
 *
 * Every scalar is rounded to the dtype first (PyTorch's Scalar.to<T>()),
 * and `a.add(b, alpha=s)` is one fused multiply-add fma(b, s, a) for real
 * dtypes, as PyTorch's AVX2 add kernel computes it in both its vector and
 * its scalar loops; complex add rounds the product first (its complex
 * multiply is not fused). So float32 and float64 match PyTorch bitwise.
 * Left out: sparse gradients, foreach.
 */
#include "optim_internal.h"

#include <math.h>
#include <stddef.h>

#define HP(name, field, type, intdef)                                          \
    {                                                                          \
        name, type, offsetof(cg_sgd_options, field), false, intdef             \
    }

static const cg__hparam sgd_hparams[] = {
    HP("lr", lr, HP_DOUBLE, false),
    HP("momentum", momentum, HP_DOUBLE, true),
    HP("dampening", dampening, HP_DOUBLE, true),
    HP("weight_decay", weight_decay, HP_DOUBLE, true),
    HP("nesterov", nesterov, HP_BOOL, false),
    HP("maximize", maximize, HP_BOOL, false),
    {"foreach", HP_NONE, 0, true, false},
    {"differentiable", HP_BOOL, 0, true, false},
};

enum { SLOT_BUF = 0 };
static const cg__slot_spec sgd_slots[] = {
    {"momentum_buffer", SLOT_OPT_TENSOR, false},
};

cg_sgd_options cg_sgd_defaults(void)
{
    return (cg_sgd_options){.kind = CG_OPTIM_SGD,
                            .lr = NAN,
                            .momentum = 0.0,
                            .dampening = 0.0,
                            .weight_decay = 0.0,
                            .nesterov = false,
                            .maximize = false};
}

static cg_status sgd_check(const cg__options *opts)
{
    const cg_sgd_options *o = &opts->sgd;
    char v[40];
    if (!isnan(o->lr) && o->lr < 0.0)
        return cg__optim_error(CG_ERR_VALUE, "Invalid learning rate: %s",
                               cg__pyfloat(o->lr, v, sizeof v));
    if (o->momentum < 0.0)
        return cg__optim_error(CG_ERR_VALUE, "Invalid momentum value: %s",
                               cg__pyfloat(o->momentum, v, sizeof v));
    if (o->weight_decay < 0.0)
        return cg__optim_error(CG_ERR_VALUE, "Invalid weight_decay value: %s",
                               cg__pyfloat(o->weight_decay, v, sizeof v));
    if (o->nesterov && (o->momentum <= 0 || o->dampening != 0))
        return cg__optim_error(CG_ERR_VALUE, "Nesterov momentum requires a "
                                             "momentum and zero dampening");
    return CG_OK;
}

static cg_status sgd_prepare(cg_optimizer *opt, const cg__group *g, int index,
                             cg_tensor *param, const cg_tensor *grad)
{
    (void)grad;
    if (g->opts.sgd.momentum != 0)
        return cg__ensure_slot(opt, index, SLOT_BUF, param);
    return CG_OK;
}

/* The update of one parameter, instantiated for float and double. `fused`
 * selects PyTorch's real add (one fma) or its complex add (rounded
 * product, then sum) for every `y + a*x`; `first` means the momentum
 * buffer is new and takes a copy of d. */
typedef struct sgd_args {
    double lr, momentum, dampening, weight_decay;
    bool nesterov, maximize, fused, first;
} sgd_args;

#define AXPY(FMA, x, a, y) (fused ? FMA((x), (a), (y)) : (y) + (a) * (x))

/* Component k of the update: d its gradient, pc its parameter (SGD takes
 * no square root: SQRT is unused); SETUP declares the flags fused, l2
 * (weight decay), momentum, first and nesterov. With every flag constant
 * (the kernels for real parameters without weight decay below) the loop
 * has no branch left and is vectorised. */
#define SGD_STEP(T, FMA, SQRT)                                                 \
    d = args->maximize ? -d : d;                                               \
    if (l2)                                                                    \
        d = AXPY(FMA, *pc, wd, d);                                             \
    if (momentum) {                                                            \
        T *b = buf + k;                                                        \
        if (first) {                                                           \
            *b = d;                                                            \
        } else {                                                               \
            *b = *b * mom;                                                     \
            *b = AXPY(FMA, d, damp1, *b);                                      \
        }                                                                      \
        d = nesterov ? AXPY(FMA, *b, mom, d) : *b;                             \
    }                                                                          \
    *pc = AXPY(FMA, d, neglr, *pc);

#define SGD_CONSTS(T)                                                          \
    const T wd = (T)args->weight_decay, mom = (T)args->momentum;               \
    const T damp1 = (T)(1.0 - args->dampening), neglr = (T)(-args->lr);

/* What STEP uses from the state, with its flags given */
#define SGD_SETUP_AS(T, FUSED, L2, MOMENTUM, FIRST, NESTEROV)                  \
    const sgd_args *args = st->args;                                           \
    T *buf = st->buf;                                                          \
    const bool fused = (FUSED), l2 = (L2), momentum = (MOMENTUM),              \
               first = (FIRST), nesterov = (NESTEROV);                         \
    SGD_CONSTS(T)
#define SGD_SETUP(T)                                                           \
    SGD_SETUP_AS(T, args->fused, args->weight_decay != 0, args->momentum != 0, \
                 args->first, args->nesterov)
/* real parameters, no weight decay: plain SGD, and momentum after the
 * first step without Nesterov */
#define SGD_SETUP_PLAIN(T) SGD_SETUP_AS(T, true, false, false, false, false)
#define SGD_SETUP_MOMENTUM(T) SGD_SETUP_AS(T, true, false, true, false, false)

#define DEFINE_SGD_UPDATE(T, SFX, FMA, SQRT)                                   \
    typedef struct sgd_state_##SFX {                                           \
        const sgd_args *args;                                                  \
        T *buf;                                                                \
    } sgd_state_##SFX;                                                         \
    CG__DEFINE_UPDATE_KERNEL(sgd_kernel_##SFX, T, sgd_state_##SFX, SGD_SETUP,  \
                             SGD_STEP, FMA, SQRT)                              \
    CG__DEFINE_UPDATE_KERNEL(sgd_plain_kernel_##SFX, T, sgd_state_##SFX,       \
                             SGD_SETUP_PLAIN, SGD_STEP, FMA, SQRT)             \
    CG__DEFINE_UPDATE_KERNEL(sgd_momentum_kernel_##SFX, T, sgd_state_##SFX,    \
                             SGD_SETUP_MOMENTUM, SGD_STEP, FMA, SQRT)          \
    static void sgd_update_##SFX(const sgd_args *args, cg_tensor *param,       \
                                 const cg_tensor *grad, T *buf)                \
    {                                                                          \
        sgd_state_##SFX st = {args, buf};                                      \
        const cg__update_kernel *kern = &sgd_kernel_##SFX;                     \
        if (args->fused && args->weight_decay == 0 && args->momentum == 0)     \
            kern = &sgd_plain_kernel_##SFX;                                    \
        else if (args->fused && args->weight_decay == 0 && !args->first &&     \
                 !args->nesterov)                                              \
            kern = &sgd_momentum_kernel_##SFX;                                 \
        cg__update_elementwise(param, grad, kern, &st);                        \
    }

DEFINE_SGD_UPDATE(float, f32, fmaf, sqrtf)
DEFINE_SGD_UPDATE(double, f64, fma, sqrt)
#undef SGD_STEP
#undef SGD_SETUP_AS
#undef SGD_SETUP
#undef SGD_SETUP_PLAIN
#undef SGD_SETUP_MOMENTUM
#undef SGD_CONSTS

static void sgd_update(cg_optimizer *opt, const cg__group *g, int index,
                       cg_tensor *param, const cg_tensor *grad)
{
    const cg_sgd_options *o = &g->opts.sgd;
    cg__pstate *s = &opt->state[index];
    cg_dtype dt = cg_tensor_dtype(param);
    sgd_args args = {.lr = o->lr,
                     .momentum = o->momentum,
                     .dampening = o->dampening,
                     .weight_decay = o->weight_decay,
                     .nesterov = o->nesterov,
                     .maximize = o->maximize,
                     .fused = !cg_dtype_is_complex(dt),
                     .first = s->fresh[SLOT_BUF]};
    void *buf = o->momentum != 0 ? cg_tensor_data(s->tensors[SLOT_BUF]) : NULL;
    if (cg_dtype_to_real(dt) == CG_FLOAT32)
        sgd_update_f32(&args, param, grad, buf);
    else
        sgd_update_f64(&args, param, grad, buf);
    s->present = true;
    s->has[SLOT_BUF] = true; /* a tensor, or None when momentum is 0 */
}

CG__DEFINE_OPTIMIZER(sgd, cg_sgd_options, CG_OPTIM_SGD, sgd_hparams, sgd_slots,
                     .check_defaults = sgd_check, .prepare = sgd_prepare,
                     .update = sgd_update)
