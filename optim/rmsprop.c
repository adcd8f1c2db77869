/*
 * rmsprop.c -- torch.optim.RMSprop (PyTorch 1.13, torch/optim/rmsprop.py,
 * _single_tensor_rmsprop). Per parameter p with gradient g, in PyTorch's
 * order (step is a Python int counted before the update):
 *
 *   g = maximize ? -g : g
 *   if weight_decay != 0:  g = g.add(p, alpha=weight_decay)
 *   complex: p, g, square_avg (and the buffers) = view_as_real(...)
 *   square_avg.mul_(alpha).addcmul_(g, g, value=1 - alpha)
 *   centered: grad_avg.mul_(alpha).add_(g, alpha=1 - alpha)
 *             avg = square_avg.addcmul(grad_avg, grad_avg, value=-1).sqrt_()
 *   else:     avg = square_avg.sqrt()
 *   avg = avg.add_(eps)
 *   momentum > 0: buf.mul_(momentum).addcdiv_(g, avg); p.add_(buf, alpha=-lr)
 *   else:         p.addcdiv_(g, avg, value=-lr)
 *
 * The element arithmetic follows PyTorch's kernels as adam.c describes
 * (add with alpha and addcmul fused, addcdiv not), so float32 and float64
 * match PyTorch bitwise. Left out: foreach, differentiable.
 */
#include "optim_internal.h"

#include <math.h>
#include <stddef.h>

#define HP(name, field, type, intdef)                                          \
    {                                                                          \
        name, type, offsetof(cg_rmsprop_options, field), false, intdef         \
    }

static const cg__hparam rmsprop_hparams[] = {
    HP("lr", lr, HP_DOUBLE, false),
    HP("momentum", momentum, HP_DOUBLE, true),
    HP("alpha", alpha, HP_DOUBLE, false),
    HP("eps", eps, HP_DOUBLE, false),
    HP("centered", centered, HP_BOOL, false),
    HP("weight_decay", weight_decay, HP_DOUBLE, true),
    {"foreach", HP_NONE, 0, true, false},
    HP("maximize", maximize, HP_BOOL, false),
    {"differentiable", HP_BOOL, 0, true, false},
};

enum { SLOT_STEP = 0, SLOT_SQUARE_AVG = 1, SLOT_BUF = 2, SLOT_GRAD_AVG = 3 };
static const cg__slot_spec rmsprop_slots[] = {
    {"step", SLOT_STEP_INT, true},
    {"square_avg", SLOT_TENSOR, true},
    {"momentum_buffer", SLOT_TENSOR, false},
    {"grad_avg", SLOT_TENSOR, false},
};

cg_rmsprop_options cg_rmsprop_defaults(void)
{
    return (cg_rmsprop_options){.kind = CG_OPTIM_RMSPROP,
                                .lr = 1e-2,
                                .alpha = 0.99,
                                .eps = 1e-8,
                                .weight_decay = 0.0,
                                .momentum = 0.0,
                                .centered = false,
                                .maximize = false};
}

static cg_status rmsprop_check(const cg__options *opts)
{
    const cg_rmsprop_options *o = &opts->rmsprop;
    char v[40];
    if (!(0.0 <= o->lr))
        return cg__optim_error(CG_ERR_VALUE, "Invalid learning rate: %s",
                               cg__pyfloat(o->lr, v, sizeof v));
    if (!(0.0 <= o->eps))
        return cg__optim_error(CG_ERR_VALUE, "Invalid epsilon value: %s",
                               cg__pyfloat(o->eps, v, sizeof v));
    if (!(0.0 <= o->momentum))
        return cg__optim_error(CG_ERR_VALUE, "Invalid momentum value: %s",
                               cg__pyfloat(o->momentum, v, sizeof v));
    if (!(0.0 <= o->weight_decay))
        return cg__optim_error(CG_ERR_VALUE, "Invalid weight_decay value: %s",
                               cg__pyfloat(o->weight_decay, v, sizeof v));
    if (!(0.0 <= o->alpha))
        return cg__optim_error(CG_ERR_VALUE, "Invalid alpha value: %s",
                               cg__pyfloat(o->alpha, v, sizeof v));
    return CG_OK;
}

static cg_status rmsprop_prepare(cg_optimizer *opt, const cg__group *g,
                                 int index, cg_tensor *param,
                                 const cg_tensor *grad)
{
    (void)grad;
    const cg_rmsprop_options *o = &g->opts.rmsprop;
    cg__pstate *s = &opt->state[index];
    cg_status st = CG_OK;
    if (!s->present) {
        st = cg__ensure_slot(opt, index, SLOT_SQUARE_AVG, param);
        if (st == CG_OK && o->momentum > 0)
            st = cg__ensure_slot(opt, index, SLOT_BUF, param);
        if (st == CG_OK && o->centered)
            st = cg__ensure_slot(opt, index, SLOT_GRAD_AVG, param);
        return st;
    }
    if (!s->tensors[SLOT_SQUARE_AVG])
        return cg__optim_key_error("square_avg");
    if (o->momentum > 0 && !s->tensors[SLOT_BUF])
        return cg__optim_key_error("momentum_buffer");
    if (o->centered && !s->tensors[SLOT_GRAD_AVG])
        return cg__optim_key_error("grad_avg");
    return CG_OK;
}

typedef struct rmsprop_args {
    double lr, alpha, eps, weight_decay, momentum;
    bool centered, maximize, complex_wd;
} rmsprop_args;

/* Component k of the update: d its gradient, pc its parameter; SETUP
 * declares the flags l2 (weight decay), centered and momentum. With all
 * three the constant false the loop has no branch left and is vectorised. */
#define RMSPROP_STEP(T, FMA, SQRT)                                             \
    d = a->maximize ? -d : d;                                                  \
    if (l2)                                                                    \
        d = a->complex_wd ? d + wd * *pc : FMA(*pc, wd, d);                    \
    T sk = sq[k] * alpha;                                                      \
    sk = FMA(oma * d, d, sk);                                                  \
    sq[k] = sk;                                                                \
    T avg;                                                                     \
    if (centered) {                                                            \
        gavg[k] = gavg[k] * alpha;                                             \
        gavg[k] = FMA(d, oma, gavg[k]);                                        \
        avg = SQRT(FMA(minus1 * gavg[k], gavg[k], sk));                        \
    } else {                                                                   \
        avg = SQRT(sk);                                                        \
    }                                                                          \
    avg = avg + eps;                                                           \
    if (momentum) {                                                            \
        buf[k] = buf[k] * mom;                                                 \
        buf[k] = buf[k] + ((T)1 * d) / avg;                                    \
        *pc = FMA(buf[k], neglr, *pc);                                         \
    } else {                                                                   \
        *pc = *pc + (neglr * d) / avg;                                         \
    }

#define RMSPROP_CONSTS(T)                                                      \
    const T alpha = (T)a->alpha, oma = (T)(1.0 - a->alpha);                    \
    const T wd = (T)a->weight_decay, eps = (T)a->eps;                          \
    const T mom = (T)a->momentum, neglr = (T)(-a->lr), minus1 = (T)-1;

/* What STEP uses from the state, with the flags l2, centered and momentum
 * given */
#define RMSPROP_SETUP_AS(T, L2, CENTERED, MOMENTUM)                            \
    const rmsprop_args *a = st->a;                                             \
    T *sq = st->sq, *buf = st->buf, *gavg = st->gavg;                          \
    const bool l2 = (L2), centered = (CENTERED), momentum = (MOMENTUM);        \
    RMSPROP_CONSTS(T)
#define RMSPROP_SETUP(T)                                                       \
    RMSPROP_SETUP_AS(T, a->weight_decay != 0, a->centered, a->momentum > 0)
/* The defaults (no weight decay, not centered, no momentum), constant */
#define RMSPROP_SETUP_PLAIN(T) RMSPROP_SETUP_AS(T, false, false, false)

#define DEFINE_RMSPROP_UPDATE(T, SFX, FMA, SQRT)                               \
    typedef struct rmsprop_state_##SFX {                                       \
        const rmsprop_args *a;                                                 \
        T *sq, *buf, *gavg;                                                    \
    } rmsprop_state_##SFX;                                                     \
    CG__DEFINE_UPDATE_KERNEL(rmsprop_kernel_##SFX, T, rmsprop_state_##SFX,     \
                             RMSPROP_SETUP, RMSPROP_STEP, FMA, SQRT)           \
    CG__DEFINE_UPDATE_KERNEL(rmsprop_plain_kernel_##SFX, T,                    \
                             rmsprop_state_##SFX, RMSPROP_SETUP_PLAIN,         \
                             RMSPROP_STEP, FMA, SQRT)                          \
    static void rmsprop_update_##SFX(const rmsprop_args *a, cg_tensor *param,  \
                                     const cg_tensor *grad, T *sq, T *buf,     \
                                     T *gavg)                                  \
    {                                                                          \
        rmsprop_state_##SFX st = {a, sq, buf, gavg};                           \
        const bool plain =                                                     \
            a->weight_decay == 0 && !a->centered && !(a->momentum > 0);        \
        cg__update_elementwise(                                                \
            param, grad,                                                       \
            plain ? &rmsprop_plain_kernel_##SFX : &rmsprop_kernel_##SFX, &st); \
    }

DEFINE_RMSPROP_UPDATE(float, f32, fmaf, sqrtf)
DEFINE_RMSPROP_UPDATE(double, f64, fma, sqrt)
#undef RMSPROP_STEP
#undef RMSPROP_SETUP_AS
#undef RMSPROP_SETUP
#undef RMSPROP_SETUP_PLAIN
#undef RMSPROP_CONSTS

static void rmsprop_update(cg_optimizer *opt, const cg__group *g, int index,
                           cg_tensor *param, const cg_tensor *grad)
{
    const cg_rmsprop_options *o = &g->opts.rmsprop;
    cg__pstate *s = &opt->state[index];
    cg_dtype dt = cg_tensor_dtype(param);
    s->present = true;
    s->has[SLOT_STEP] = s->has[SLOT_SQUARE_AVG] = true;
    s->step += 1;
    rmsprop_args a = {.lr = o->lr,
                      .alpha = o->alpha,
                      .eps = o->eps,
                      .weight_decay = o->weight_decay,
                      .momentum = o->momentum,
                      .centered = o->centered,
                      .maximize = o->maximize,
                      .complex_wd = cg_dtype_is_complex(dt)};
    void *sq = cg_tensor_data(s->tensors[SLOT_SQUARE_AVG]);
    void *buf = o->momentum > 0 ? cg_tensor_data(s->tensors[SLOT_BUF]) : NULL;
    void *gavg = o->centered ? cg_tensor_data(s->tensors[SLOT_GRAD_AVG]) : NULL;
    if (cg_dtype_to_real(dt) == CG_FLOAT32)
        rmsprop_update_f32(&a, param, grad, sq, buf, gavg);
    else
        rmsprop_update_f64(&a, param, grad, sq, buf, gavg);
}

CG__DEFINE_OPTIMIZER(rmsprop, cg_rmsprop_options, CG_OPTIM_RMSPROP,
                     rmsprop_hparams, rmsprop_slots,
                     .check_defaults = rmsprop_check,
                     .prepare = rmsprop_prepare, .update = rmsprop_update)
