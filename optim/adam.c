/*
 * adam.c -- torch.optim.Adam and torch.optim.AdamW (PyTorch 1.13,
 * torch/optim/adam.py and adamw.py, _single_tensor_adam(w), the default
 * foreach=False path). The two share the update; they differ in weight
 * decay: Adam adds it to the gradient (L2), AdamW shrinks the parameter
 * first (decoupled). Per parameter p with gradient g, in PyTorch's order:
 *
 *   g = maximize ? -g : g
 *   step += 1                                (a float32 count, as PyTorch's
 *                                             torch.tensor(0.) state)
 *   Adam:  if weight_decay != 0:  g = g.add(p, alpha=weight_decay)
 *   complex: g, exp_avg, exp_avg_sq, p = view_as_real(...)
 *   AdamW: p.mul_(1 - lr * weight_decay)
 *   exp_avg.mul_(beta1).add_(g, alpha=1 - beta1)
 *   exp_avg_sq.mul_(beta2).addcmul_(g, g.conj(), value=1 - beta2)
 *   bias_correction1 = 1 - beta1 ** step; bias_correction2 = 1 - beta2 ** step
 *   step_size = lr / bias_correction1        (all in double, as Python)
 *   amsgrad: max_exp_avg_sq = maximum(max_exp_avg_sq, exp_avg_sq)
 *   denom = (v.sqrt() / sqrt(bias_correction2)).add_(eps)
 *           with v = max_exp_avg_sq or exp_avg_sq
 *   p.addcdiv_(exp_avg, denom, value=-step_size)
 *
 * Arithmetic per element in the parameter's dtype T, scalars rounded to T
 * first, as PyTorch's CPU kernels (AVX2 build) compute them:
 *   a.add(b, alpha=s)          fma(b, s, a)
 *   a.addcmul(b, c, value=s)   fma(s*b, c, a)
 *   a.addcdiv(b, c, value=s)   a + (s*b)/c          (no fusion)
 *   a.mul(s), a / s, sqrt, a.add(s)   one rounding each
 * The fusion is the same in the vector body and the scalar tail of
 * PyTorch's loops, so results do not depend on position or strides, and
 * float32/float64 trajectories match PyTorch bitwise. Complex weight decay
 * goes through complex add (product rounded, not fused). AMSGrad with
 * complex parameters fails as in PyTorch 1.13 ("maximum not implemented
 * for complex tensors."). Left out: foreach, fused, capturable,
 * differentiable, sparse gradients.
 */
#include "optim_internal.h"

#include <math.h>
#include <stddef.h>

#define HP(name, field, type, intdef)                                          \
    {                                                                          \
        name, type, offsetof(cg_adam_options, field), false, intdef            \
    }

static const cg__hparam adam_hparams[] = {
    HP("lr", lr, HP_DOUBLE, false),
    HP("betas.0", betas[0], HP_DOUBLE, false),
    HP("betas.1", betas[1], HP_DOUBLE, false),
    HP("eps", eps, HP_DOUBLE, false),
    HP("weight_decay", weight_decay, HP_DOUBLE, true),
    HP("amsgrad", amsgrad, HP_BOOL, false),
    HP("maximize", maximize, HP_BOOL, false),
    {"foreach", HP_NONE, 0, true, false},
    {"capturable", HP_BOOL, 0, true, false},
    {"differentiable", HP_BOOL, 0, true, false},
    {"fused", HP_BOOL, 0, true, false},
};

/* AdamW's param_groups keys, in its own order. */
static const cg__hparam adamw_hparams[] = {
    HP("lr", lr, HP_DOUBLE, false),
    HP("betas.0", betas[0], HP_DOUBLE, false),
    HP("betas.1", betas[1], HP_DOUBLE, false),
    HP("eps", eps, HP_DOUBLE, false),
    HP("weight_decay", weight_decay, HP_DOUBLE, false),
    HP("amsgrad", amsgrad, HP_BOOL, false),
    {"foreach", HP_NONE, 0, true, false},
    HP("maximize", maximize, HP_BOOL, false),
    {"capturable", HP_BOOL, 0, true, false},
};

enum { SLOT_STEP = 0, SLOT_EXP_AVG = 1, SLOT_EXP_AVG_SQ = 2, SLOT_MAX = 3 };
static const cg__slot_spec adam_slots[] = {
    {"step", SLOT_STEP_F32, true},
    {"exp_avg", SLOT_TENSOR, true},
    {"exp_avg_sq", SLOT_TENSOR, true},
    {"max_exp_avg_sq", SLOT_TENSOR, false},
};

cg_adam_options cg_adam_defaults(void)
{
    return (cg_adam_options){.kind = CG_OPTIM_ADAM,
                             .lr = 1e-3,
                             .betas = {0.9, 0.999},
                             .eps = 1e-8,
                             .weight_decay = 0.0,
                             .amsgrad = false,
                             .maximize = false};
}

cg_adamw_options cg_adamw_defaults(void)
{
    cg_adamw_options o = cg_adam_defaults();
    o.kind = CG_OPTIM_ADAMW;
    o.weight_decay = 1e-2;
    return o;
}

/* Adam's and AdamW's __init__ checks (`not 0.0 <= x` also catches NaN). */
static cg_status adam_check(const cg__options *opts)
{
    const cg_adam_options *o = &opts->adam;
    char v[40];
    if (!(0.0 <= o->lr))
        return cg__optim_error(CG_ERR_VALUE, "Invalid learning rate: %s",
                               cg__pyfloat(o->lr, v, sizeof v));
    if (!(0.0 <= o->eps))
        return cg__optim_error(CG_ERR_VALUE, "Invalid epsilon value: %s",
                               cg__pyfloat(o->eps, v, sizeof v));
    if (!(0.0 <= o->betas[0] && o->betas[0] < 1.0))
        return cg__optim_error(CG_ERR_VALUE,
                               "Invalid beta parameter at index 0: %s",
                               cg__pyfloat(o->betas[0], v, sizeof v));
    if (!(0.0 <= o->betas[1] && o->betas[1] < 1.0))
        return cg__optim_error(CG_ERR_VALUE,
                               "Invalid beta parameter at index 1: %s",
                               cg__pyfloat(o->betas[1], v, sizeof v));
    if (!(0.0 <= o->weight_decay))
        return cg__optim_error(CG_ERR_VALUE, "Invalid weight_decay value: %s",
                               cg__pyfloat(o->weight_decay, v, sizeof v));
    return CG_OK;
}

static cg_status adam_prepare(cg_optimizer *opt, const cg__group *g, int index,
                              cg_tensor *param, const cg_tensor *grad)
{
    (void)grad;
    cg__pstate *s = &opt->state[index];
    bool amsgrad = g->opts.adam.amsgrad;
    cg_status st = CG_OK;
    if (!s->present) {
        /* Lazy state initialization: step 0, zeros (amsgrad: a third). */
        st = cg__ensure_slot(opt, index, SLOT_EXP_AVG, param);
        if (st == CG_OK)
            st = cg__ensure_slot(opt, index, SLOT_EXP_AVG_SQ, param);
        if (st == CG_OK && amsgrad)
            st = cg__ensure_slot(opt, index, SLOT_MAX, param);
        if (st != CG_OK)
            return st;
    } else if (!s->tensors[SLOT_EXP_AVG]) {
        return cg__optim_key_error("exp_avg");
    } else if (!s->tensors[SLOT_EXP_AVG_SQ]) {
        return cg__optim_key_error("exp_avg_sq");
    } else if (amsgrad && !s->tensors[SLOT_MAX]) {
        return cg__optim_key_error("max_exp_avg_sq");
    }
    if (amsgrad && cg_dtype_is_complex(cg_tensor_dtype(param)))
        return cg__optim_error(CG_ERR_RUNTIME,
                               "maximum not implemented for complex tensors.");
    return CG_OK;
}

/* The scalars of one parameter's update, computed in double as Python
 * computes them. */
typedef struct adam_args {
    double beta1, beta2, eps, weight_decay;
    double decay;     /* AdamW: 1 - lr * weight_decay */
    double step_size; /* lr / bias_correction1 */
    double bc2_sqrt;  /* sqrt(bias_correction2) */
    bool decoupled, amsgrad, maximize, complex_wd;
} adam_args;

/* One element k of the update: d its gradient, pc its parameter; SETUP
 * declares the flags l2 (weight decay into the gradient) and amsgrad.
 * Written with selects rather than branches, so that with both flags the
 * constant false the loop has no branch left and is vectorised. */
#define ADAM_STEP(T, FMA, SQRT)                                                \
    d = a->maximize ? -d : d;                                                  \
    if (l2)                                                                    \
        d = a->complex_wd ? d + wd * *pc : FMA(*pc, wd, d);                    \
    const T pd = *pc * decay;                                                  \
    T pv = a->decoupled ? pd : *pc;                                            \
    T mk = m[k] * b1;                                                          \
    mk = FMA(d, omb1, mk);                                                     \
    m[k] = mk;                                                                 \
    T vk = v[k] * b2;                                                          \
    vk = FMA(omb2 * d, d, vk);                                                 \
    v[k] = vk;                                                                 \
    if (amsgrad) {                                                             \
        /* torch.maximum: NaN propagates */                                    \
        T mx = vmax[k];                                                        \
        if (isnan(mx) || isnan(vk))                                            \
            vmax[k] = mx + vk;                                                 \
        else if (vk > mx)                                                      \
            vmax[k] = vk;                                                      \
        vk = vmax[k];                                                          \
    }                                                                          \
    T denom = SQRT(vk) / bc2s + eps;                                           \
    *pc = pv + (negstep * mk) / denom;

/* The per-parameter constants, as the element type. */
#define ADAM_CONSTS(T)                                                         \
    const T b1 = (T)a->beta1, b2 = (T)a->beta2;                                \
    const T omb1 = (T)(1.0 - a->beta1), omb2 = (T)(1.0 - a->beta2);            \
    const T wd = (T)a->weight_decay, decay = (T)a->decay;                      \
    const T bc2s = (T)a->bc2_sqrt, eps = (T)a->eps;                            \
    const T negstep = (T)(-a->step_size);

/* What STEP uses from the state, with the flags l2 and amsgrad given */
#define ADAM_SETUP_AS(T, L2, AMSGRAD)                                          \
    const adam_args *a = st->a;                                                \
    T *m = st->m, *v = st->v, *vmax = st->vmax;                                \
    const bool l2 = (L2), amsgrad = (AMSGRAD);                                 \
    ADAM_CONSTS(T)
#define ADAM_SETUP(T)                                                          \
    ADAM_SETUP_AS(T, !a->decoupled && a->weight_decay != 0, a->amsgrad)
/* The common case (no amsgrad, no L2 weight decay: Adam's and AdamW's
 * defaults) with both flags constant */
#define ADAM_SETUP_COMMON(T) ADAM_SETUP_AS(T, false, false)

#define DEFINE_ADAM_UPDATE(T, SFX, FMA, SQRT)                                  \
    typedef struct adam_state_##SFX {                                          \
        const adam_args *a;                                                    \
        T *m, *v, *vmax;                                                       \
    } adam_state_##SFX;                                                        \
    CG__DEFINE_UPDATE_KERNEL(adam_kernel_##SFX, T, adam_state_##SFX,           \
                             ADAM_SETUP, ADAM_STEP, FMA, SQRT)                 \
    CG__DEFINE_UPDATE_KERNEL(adam_common_kernel_##SFX, T, adam_state_##SFX,    \
                             ADAM_SETUP_COMMON, ADAM_STEP, FMA, SQRT)          \
    static void adam_update_##SFX(const adam_args *a, cg_tensor *param,        \
                                  const cg_tensor *grad, T *m, T *v, T *vmax)  \
    {                                                                          \
        adam_state_##SFX st = {a, m, v, vmax};                                 \
        const bool common =                                                    \
            !a->amsgrad && (a->decoupled || a->weight_decay == 0);             \
        cg__update_elementwise(                                                \
            param, grad,                                                       \
            common ? &adam_common_kernel_##SFX : &adam_kernel_##SFX, &st);     \
    }

DEFINE_ADAM_UPDATE(float, f32, fmaf, sqrtf)
DEFINE_ADAM_UPDATE(double, f64, fma, sqrt)
#undef ADAM_STEP
#undef ADAM_SETUP_AS
#undef ADAM_SETUP
#undef ADAM_SETUP_COMMON
#undef ADAM_CONSTS

static void adam_update(cg_optimizer *opt, const cg__group *g, int index,
                        cg_tensor *param, const cg_tensor *grad)
{
    const cg_adam_options *o = &g->opts.adam;
    cg__pstate *s = &opt->state[index];
    cg_dtype dt = cg_tensor_dtype(param);
    /* step_t += 1 on a float32 tensor, then step_t.item() */
    s->step = (double)(float)(s->step + 1.0);
    s->present = true;
    s->has[SLOT_STEP] = true;
    double step = s->step;
    double bc1 = 1 - pow(o->betas[0], step);
    double bc2 = 1 - pow(o->betas[1], step);
    adam_args a = {.beta1 = o->betas[0],
                   .beta2 = o->betas[1],
                   .eps = o->eps,
                   .weight_decay = o->weight_decay,
                   .decay = 1 - o->lr * o->weight_decay,
                   .step_size = o->lr / bc1,
                   .bc2_sqrt = sqrt(bc2),
                   .decoupled = opt->vt->kind == CG_OPTIM_ADAMW,
                   .amsgrad = o->amsgrad,
                   .maximize = o->maximize,
                   .complex_wd = cg_dtype_is_complex(dt)};
    void *m = cg_tensor_data(s->tensors[SLOT_EXP_AVG]);
    void *v = cg_tensor_data(s->tensors[SLOT_EXP_AVG_SQ]);
    void *vmax = o->amsgrad ? cg_tensor_data(s->tensors[SLOT_MAX]) : NULL;
    if (cg_dtype_to_real(dt) == CG_FLOAT32)
        adam_update_f32(&a, param, grad, m, v, vmax);
    else
        adam_update_f64(&a, param, grad, m, v, vmax);
}

CG__DEFINE_OPTIMIZER(adam, cg_adam_options, CG_OPTIM_ADAM, adam_hparams,
                     adam_slots, .check_defaults = adam_check,
                     .prepare = adam_prepare, .update = adam_update)

CG__DEFINE_OPTIMIZER(adamw, cg_adamw_options, CG_OPTIM_ADAMW, adamw_hparams,
                     adam_slots, .check_defaults = adam_check,
                     .prepare = adam_prepare, .update = adam_update)
