/*
 * adagrad.c -- torch.optim.Adagrad (PyTorch 1.13, torch/optim/adagrad.py,
 * _single_tensor_adagrad). The state (step = tensor(0.), sum = full_like(p,
 * initial_accumulator_value), complex(v, v) for complex p) is made by the
 * constructor for every parameter. Per parameter p with gradient g:
 *
 *   step += 1                                  (float32, then .item())
 *   g = maximize ? -g : g
 *   if weight_decay != 0:  g = g.add(p, alpha=weight_decay)
 *   clr = lr / (1 + (step - 1) * lr_decay)     (double, as Python)
 *   complex: g, sum, p = view_as_real(...)
 *   sum.addcmul_(g, g, value=1)
 *   std = sum.sqrt().add_(eps)
 *   p.addcdiv_(g, std, value=-clr)
 *
 * Element arithmetic as adam.c describes, so float32 and float64 match
 * PyTorch bitwise. Left out: sparse gradients, foreach.
 */
#include "optim_internal.h"

#include <math.h>
#include <stddef.h>

#define HP(name, field, type, intdef)                                          \
    {                                                                          \
        name, type, offsetof(cg_adagrad_options, field), false, intdef         \
    }

static const cg__hparam adagrad_hparams[] = {
    HP("lr", lr, HP_DOUBLE, false),
    HP("lr_decay", lr_decay, HP_DOUBLE, true),
    HP("eps", eps, HP_DOUBLE, false),
    HP("weight_decay", weight_decay, HP_DOUBLE, true),
    HP("initial_accumulator_value", initial_accumulator_value, HP_DOUBLE, true),
    {"foreach", HP_NONE, 0, true, false},
    HP("maximize", maximize, HP_BOOL, false),
};

enum { SLOT_STEP = 0, SLOT_SUM = 1 };
static const cg__slot_spec adagrad_slots[] = {
    {"step", SLOT_STEP_F32, true},
    {"sum", SLOT_TENSOR, true},
};

cg_adagrad_options cg_adagrad_defaults(void)
{
    return (cg_adagrad_options){.kind = CG_OPTIM_ADAGRAD,
                                .lr = 1e-2,
                                .lr_decay = 0.0,
                                .weight_decay = 0.0,
                                .initial_accumulator_value = 0.0,
                                .eps = 1e-10,
                                .maximize = false};
}

static cg_status adagrad_check(const cg__options *opts)
{
    const cg_adagrad_options *o = &opts->adagrad;
    char v[40];
    if (!(0.0 <= o->lr))
        return cg__optim_error(CG_ERR_VALUE, "Invalid learning rate: %s",
                               cg__pyfloat(o->lr, v, sizeof v));
    if (!(0.0 <= o->lr_decay))
        return cg__optim_error(CG_ERR_VALUE, "Invalid lr_decay value: %s",
                               cg__pyfloat(o->lr_decay, v, sizeof v));
    if (!(0.0 <= o->weight_decay))
        return cg__optim_error(CG_ERR_VALUE, "Invalid weight_decay value: %s",
                               cg__pyfloat(o->weight_decay, v, sizeof v));
    if (!(0.0 <= o->initial_accumulator_value))
        return cg__optim_error(
            CG_ERR_VALUE, "Invalid initial_accumulator_value value: %s",
            cg__pyfloat(o->initial_accumulator_value, v, sizeof v));
    if (!(0.0 <= o->eps))
        return cg__optim_error(CG_ERR_VALUE, "Invalid epsilon value: %s",
                               cg__pyfloat(o->eps, v, sizeof v));
    return CG_OK;
}

static cg_status adagrad_init_state(cg_optimizer *opt, const cg__group *g,
                                    int index, cg_tensor *param)
{
    cg__pstate *s = &opt->state[index];
    cg_tensor *sum = NULL;
    cg_status st = cg__state_tensor(
        param, g->opts.adagrad.initial_accumulator_value, true, &sum);
    if (st != CG_OK)
        return st;
    s->tensors[SLOT_SUM] = sum;
    s->step = 0.0;
    s->present = s->has[SLOT_STEP] = s->has[SLOT_SUM] = true;
    return CG_OK;
}

static cg_status adagrad_prepare(cg_optimizer *opt, const cg__group *g,
                                 int index, cg_tensor *param,
                                 const cg_tensor *grad)
{
    (void)g;
    (void)param;
    (void)grad;
    if (!opt->state[index].tensors[SLOT_SUM])
        return cg__optim_key_error("sum");
    return CG_OK;
}

typedef struct adagrad_args {
    double clr, eps, weight_decay;
    bool maximize, complex_wd;
} adagrad_args;

/* Component k of the update: d its gradient, pc its parameter. */
#define ADAGRAD_STEP(T, FMA, SQRT)                                             \
    if (a->maximize)                                                           \
        d = -d;                                                                \
    if (a->weight_decay != 0)                                                  \
        d = a->complex_wd ? d + wd * *pc : FMA(*pc, wd, d);                    \
    sum[k] = FMA(one * d, d, sum[k]);                                          \
    T std = SQRT(sum[k]) + eps;                                                \
    *pc = *pc + (negclr * d) / std;

#define ADAGRAD_CONSTS(T)                                                      \
    const T wd = (T)a->weight_decay, eps = (T)a->eps;                          \
    const T negclr = (T)(-a->clr), one = (T)1;

#define ADAGRAD_SETUP(T)                                                       \
    const adagrad_args *a = st->a;                                             \
    T *sum = st->sum;                                                          \
    ADAGRAD_CONSTS(T)

#define DEFINE_ADAGRAD_UPDATE(T, SFX, FMA, SQRT)                               \
    typedef struct adagrad_state_##SFX {                                       \
        const adagrad_args *a;                                                 \
        T *sum;                                                                \
    } adagrad_state_##SFX;                                                     \
    CG__DEFINE_UPDATE_KERNEL(adagrad_kernel_##SFX, T, adagrad_state_##SFX,     \
                             ADAGRAD_SETUP, ADAGRAD_STEP, FMA, SQRT)           \
    static void adagrad_update_##SFX(const adagrad_args *a, cg_tensor *param,  \
                                     const cg_tensor *grad, T *sum)            \
    {                                                                          \
        adagrad_state_##SFX st = {a, sum};                                     \
        cg__update_elementwise(param, grad, &adagrad_kernel_##SFX, &st);       \
    }

DEFINE_ADAGRAD_UPDATE(float, f32, fmaf, sqrtf)
DEFINE_ADAGRAD_UPDATE(double, f64, fma, sqrt)
#undef ADAGRAD_STEP
#undef ADAGRAD_SETUP
#undef ADAGRAD_CONSTS

static void adagrad_update(cg_optimizer *opt, const cg__group *g, int index,
                           cg_tensor *param, const cg_tensor *grad)
{
    const cg_adagrad_options *o = &g->opts.adagrad;
    cg__pstate *s = &opt->state[index];
    cg_dtype dt = cg_tensor_dtype(param);
    s->step = (double)(float)(s->step + 1.0);
    s->present = s->has[SLOT_STEP] = true;
    double step = s->step;
    adagrad_args a = {.clr = o->lr / (1 + (step - 1) * o->lr_decay),
                      .eps = o->eps,
                      .weight_decay = o->weight_decay,
                      .maximize = o->maximize,
                      .complex_wd = cg_dtype_is_complex(dt)};
    void *sum = cg_tensor_data(s->tensors[SLOT_SUM]);
    if (cg_dtype_to_real(dt) == CG_FLOAT32)
        adagrad_update_f32(&a, param, grad, sum);
    else
        adagrad_update_f64(&a, param, grad, sum);
}

CG__DEFINE_OPTIMIZER(adagrad, cg_adagrad_options, CG_OPTIM_ADAGRAD,
                     adagrad_hparams, adagrad_slots,
                     .check_defaults = adagrad_check,
                     .prepare = adagrad_prepare, .update = adagrad_update,
                     .init_state = adagrad_init_state)
