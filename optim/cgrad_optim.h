/*
 * cgrad_optim.h -- torch.optim for cgrad: optimizers, learning-rate
 * schedulers, gradient clipping, and the data pipeline a training loop
 * needs (torch.randperm and a DataLoader over tensors).
 *
 * Everything here mirrors PyTorch 1.13 on CPU: the same names, defaults,
 * error messages and numbers. The optimizers run PyTorch's single-tensor
 * (foreach=False, the 1.13 default) update formulas in the same operation
 * order, rounding every intermediate to the parameter's dtype and fusing a
 * multiply-add exactly where PyTorch's AVX2 kernels fuse it, so float32
 * and float64 trajectories are bitwise PyTorch's (see optim/adam.c).
 *
 * A training step reads as in Python:
 *
 *     // opt = torch.optim.AdamW(params, lr=1e-3)
 *     cg_adamw_options o = cg_adamw_defaults();
 *     o.lr = 1e-3;
 *     cg_optimizer *opt = NULL;
 *     if (cg_adamw_new(params, nparams, &o, &opt) != CG_OK) ...
 *     // sched = OneCycleLR(opt, max_lr=1e-2, total_steps=1000)
 *     cg_one_cycle_lr_options so = cg_one_cycle_lr_defaults(1e-2);
 *     so.total_steps = 1000;
 *     cg_lr_scheduler *sched = NULL;
 *     if (cg_one_cycle_lr_new(opt, &so, &sched) != CG_OK) ...
 *     for (...) {
 *         cg_optimizer_zero_grad(opt, false);       // opt.zero_grad()
 *         ... forward, cg_tensor_backward(loss, NULL, false) ...
 *         cg_optimizer_step(opt);                   // opt.step()
 *         cg_lr_scheduler_step(sched);              // sched.step()
 *     }
 *     cg_lr_scheduler_free(sched);
 *     cg_optimizer_free(opt);
 *
 * C has no keyword arguments: each optimizer and scheduler has an options
 * struct and a defaults initialiser holding PyTorch's defaults. Errors
 * follow core/cgrad.h: a cg_status, PyTorch's message in cg_last_error(),
 * and on failure nothing written and nothing changed.
 *
 * Includes cgrad.h and cgrad_nn.h; uses nothing but the public core and nn
 * headers.
 */
#ifndef CGRAD_OPTIM_H
#define CGRAD_OPTIM_H

#include "cgrad.h"
#include "cgrad_nn.h"

#ifdef __cplusplus
extern "C" {
#endif

/** "None" for an optional integer argument (OneCycleLR's total_steps,
 *  epochs and steps_per_epoch). */
#define CG_NONE INT64_MIN

/* State dicts (cg_state_dict, cg_state_kind) are declared in cgrad_nn.h:
 * the optimizers' state_dict uses the same dictionary as modules' and
 * safetensors files. */

/* ======================================================================
 * Optimizers (torch.optim.Optimizer)
 * ====================================================================== */

/** The optimizer classes. Values are fixed; new ones are only appended. */
typedef enum cg_optimizer_kind {
    CG_OPTIM_SGD = 0,
    CG_OPTIM_ADAM = 1,
    CG_OPTIM_ADAMW = 2,
    CG_OPTIM_RMSPROP = 3,
    CG_OPTIM_ADAGRAD = 4,
    CG_OPTIM_KIND_COUNT
} cg_optimizer_kind;

/** The class name: "SGD", "Adam", "AdamW", "RMSprop", "Adagrad"
 *  ("unknown" out of range). */
CG_API const char *cg_optimizer_kind_name(cg_optimizer_kind kind);

/** An optimizer: parameter groups (each a list of parameters plus its own
 *  hyperparameters) and the per-parameter state. It holds a reference to
 *  every parameter. */
typedef struct cg_optimizer cg_optimizer;

/** One parameter group, as PyTorch's {'params': [...], 'lr': ..., ...}.
 *  `params` (num_params entries, borrowed) are leaf tensors; `options`
 *  is NULL for the optimizer's defaults, else points to the options
 *  struct of the optimizer's own kind (cg_sgd_options for SGD, ...). Its
 *  values are taken as given and not validated, as PyTorch validates
 *  only the defaults; an SGD group whose lr is NAN takes the default's. */
typedef struct cg_param_group {
    cg_tensor *const *params;
    int num_params;
    const void *options;
} cg_param_group;

/** torch.optim.SGD's arguments. */
typedef struct cg_sgd_options {
    cg_optimizer_kind kind; /* CG_OPTIM_SGD (set by cg_sgd_defaults) */
    double lr;              /* required in PyTorch: NAN means "not given" */
    double momentum;        /* 0 */
    double dampening;       /* 0 */
    double weight_decay;    /* 0 */
    bool nesterov;          /* false */
    bool maximize;          /* false */
} cg_sgd_options;

/** torch.optim.Adam's and AdamW's arguments. */
typedef struct cg_adam_options {
    cg_optimizer_kind kind; /* CG_OPTIM_ADAM or CG_OPTIM_ADAMW */
    double lr;              /* 1e-3 */
    double betas[2];        /* (0.9, 0.999) */
    double eps;             /* 1e-8 */
    double weight_decay;    /* Adam 0 (L2 added to the gradient); AdamW
                               1e-2 (decoupled: p *= 1 - lr*wd) */
    bool amsgrad;           /* false */
    bool maximize;          /* false */
} cg_adam_options;

/** AdamW takes the same arguments as Adam; only the default weight decay
 *  and its meaning differ. */
typedef cg_adam_options cg_adamw_options;

/** torch.optim.RMSprop's arguments. */
typedef struct cg_rmsprop_options {
    cg_optimizer_kind kind; /* CG_OPTIM_RMSPROP */
    double lr;              /* 1e-2 */
    double alpha;           /* 0.99 */
    double eps;             /* 1e-8 */
    double weight_decay;    /* 0 */
    double momentum;        /* 0 */
    bool centered;          /* false */
    bool maximize;          /* false */
} cg_rmsprop_options;

/** torch.optim.Adagrad's arguments. */
typedef struct cg_adagrad_options {
    cg_optimizer_kind kind;           /* CG_OPTIM_ADAGRAD */
    double lr;                        /* 1e-2 */
    double lr_decay;                  /* 0 */
    double weight_decay;              /* 0 */
    double initial_accumulator_value; /* 0 */
    double eps;                       /* 1e-10 */
    bool maximize;                    /* false */
} cg_adagrad_options;

/** PyTorch's defaults for each optimizer (with `kind` set). */
CG_API cg_sgd_options cg_sgd_defaults(void);
CG_API cg_adam_options cg_adam_defaults(void);
CG_API cg_adamw_options cg_adamw_defaults(void);
CG_API cg_rmsprop_options cg_rmsprop_defaults(void);
CG_API cg_adagrad_options cg_adagrad_defaults(void);

/** torch.optim.SGD(params, **opts) with one parameter group, and
 *  SGD(groups, **defaults) with several. `opts`/`defaults` NULL means
 *  cg_sgd_defaults(). The parameters are borrowed (the optimizer takes its
 *  own references). Checks, in PyTorch's order and words (ValueError
 *  unless noted; numbers printed as Python prints a float, so lr=-1.0
 *  gives "Invalid learning rate: -1.0"):
 *    "Invalid learning rate: -1.0", "Invalid momentum value: -0.5",
 *    "Invalid weight_decay value: -1.0",
 *    "Nesterov momentum requires a momentum and zero dampening",
 *    "optimizer got an empty parameter list" (no parameters / no groups),
 *    "can't optimize a non-leaf Tensor",
 *    "parameter group didn't specify a value of required optimization
 *     parameter lr" (lr NAN in the group and the defaults),
 *    "optimizer contains a parameter group with duplicate parameters; in
 *     future, this will cause an error; see
 *     github.com/pytorch/pytorch/issues/40967 for more information"
 *     (PyTorch only warns; cgrad refuses),
 *    "some parameters appear in more than one parameter group",
 *    CG_ERR_MISUSE "optimizer can only optimize Tensors, but one of the
 *     params is NoneType" (a NULL parameter), and a NULL options pointer
 *     of the wrong kind.
 *  The caller owns *out (cg_optimizer_free). */
CG_API cg_status cg_sgd_new(cg_tensor *const *params, int num_params,
                            const cg_sgd_options *opts, cg_optimizer **out);
CG_API cg_status cg_sgd_new_groups(const cg_param_group *groups, int num_groups,
                                   const cg_sgd_options *defaults,
                                   cg_optimizer **out);
/** torch.optim.Adam. Checks: "Invalid learning rate: ...", "Invalid
 *  epsilon value: ...", "Invalid beta parameter at index 0: ...", "Invalid
 *  beta parameter at index 1: ...", "Invalid weight_decay value: ...",
 *  then the parameter checks of cg_sgd_new. */
CG_API cg_status cg_adam_new(cg_tensor *const *params, int num_params,
                             const cg_adam_options *opts, cg_optimizer **out);
CG_API cg_status cg_adam_new_groups(const cg_param_group *groups,
                                    int num_groups,
                                    const cg_adam_options *defaults,
                                    cg_optimizer **out);
/** torch.optim.AdamW: Adam's checks and update with decoupled weight
 *  decay. `opts` must come from cg_adamw_defaults (kind CG_OPTIM_ADAMW). */
CG_API cg_status cg_adamw_new(cg_tensor *const *params, int num_params,
                              const cg_adamw_options *opts, cg_optimizer **out);
CG_API cg_status cg_adamw_new_groups(const cg_param_group *groups,
                                     int num_groups,
                                     const cg_adamw_options *defaults,
                                     cg_optimizer **out);
/** torch.optim.RMSprop. Checks: "Invalid learning rate: ...", "Invalid
 *  epsilon value: ...", "Invalid momentum value: ...", "Invalid
 *  weight_decay value: ...", "Invalid alpha value: ...". */
CG_API cg_status cg_rmsprop_new(cg_tensor *const *params, int num_params,
                                const cg_rmsprop_options *opts,
                                cg_optimizer **out);
CG_API cg_status cg_rmsprop_new_groups(const cg_param_group *groups,
                                       int num_groups,
                                       const cg_rmsprop_options *defaults,
                                       cg_optimizer **out);
/** torch.optim.Adagrad. Checks: "Invalid learning rate: ...", "Invalid
 *  lr_decay value: ...", "Invalid weight_decay value: ...", "Invalid
 *  initial_accumulator_value value: ...", "Invalid epsilon value: ...".
 *  The state (step 0, sum = initial_accumulator_value) is created here
 *  for every parameter, as PyTorch does. */
CG_API cg_status cg_adagrad_new(cg_tensor *const *params, int num_params,
                                const cg_adagrad_options *opts,
                                cg_optimizer **out);
CG_API cg_status cg_adagrad_new_groups(const cg_param_group *groups,
                                       int num_groups,
                                       const cg_adagrad_options *defaults,
                                       cg_optimizer **out);

/** Frees the optimizer, its state and its parameter references
 *  (NULL-safe). Schedulers built on it must be freed first. */
CG_API void cg_optimizer_free(cg_optimizer *opt);
/** The optimizer's kind (type(opt)). */
CG_API cg_optimizer_kind cg_optimizer_kind_of(const cg_optimizer *opt);

/** opt.step(): one update of every parameter that has a .grad (the
 *  others are skipped and get no state), group by group, run with grad
 *  mode off. Parameters are written in place (any strides) and their
 *  version counters bumped, so a graph that saved them refuses a later
 *  backward, as in PyTorch. float32, float64, and complex parameters
 *  (updated as their view_as_real, as PyTorch does) are supported.
 *  Transactional: every check and allocation (lazily created state) runs
 *  before any value changes, so on error nothing has changed. Errors:
 *  RuntimeError "maximum not implemented for complex tensors." (amsgrad
 *  with a complex parameter); "unsupported operation: more than one
 *  element of the written-to tensor refers to a single memory location.
 *  Please clone() the tensor before performing the operation." (an
 *  expanded parameter); KeyError (CG_ERR_INDEX, "'max_exp_avg_sq'",
 *  "'momentum_buffer'", "'grad_avg'") when a group's amsgrad, momentum or
 *  centered was switched on after its state was created, as PyTorch
 *  fails; NOMEM. */
CG_API cg_status cg_optimizer_step(cg_optimizer *opt);
/** opt.zero_grad(set_to_none): zeroes every parameter's .grad in place,
 *  or sets it to None. PyTorch 1.13's default is set_to_none=false. */
CG_API cg_status cg_optimizer_zero_grad(cg_optimizer *opt, bool set_to_none);
/** opt.add_param_group({'params': params, **options}): `options` NULL
 *  for the optimizer's defaults (those given to its constructor), else
 *  the optimizer's own options struct. The checks of the constructor's
 *  parameter part; a group may be empty. Adagrad creates the new
 *  parameters' state here (PyTorch 1.13 forgets to and fails at the next
 *  step with KeyError: 'sum'). */
CG_API cg_status cg_optimizer_add_param_group(cg_optimizer *opt,
                                              cg_tensor *const *params,
                                              int num_params,
                                              const void *options);

/** len(opt.param_groups). */
CG_API int cg_optimizer_num_param_groups(const cg_optimizer *opt);
/** len(opt.param_groups[group]['params']) (-1 for a bad group). */
CG_API int cg_optimizer_group_size(const cg_optimizer *opt, int group);
/** opt.param_groups[group]['params'][i], borrowed. IndexError "list index
 *  out of range". */
CG_API cg_status cg_optimizer_param(const cg_optimizer *opt, int group, int i,
                                    cg_tensor **param);
/** opt.param_groups[group]['lr'], and setting it (what schedulers do).
 *  IndexError "list index out of range" for a bad group. */
CG_API cg_status cg_optimizer_get_lr(const cg_optimizer *opt, int group,
                                     double *lr);
CG_API cg_status cg_optimizer_set_lr(cg_optimizer *opt, int group, double lr);
/** opt.param_groups[group][key] for a number or bool: the optimizer's
 *  hyperparameters ("lr", "momentum", "betas.0", "betas.1", "eps",
 *  "weight_decay", "amsgrad", "nesterov", ...) and the keys schedulers
 *  add ("initial_lr", "max_lr", "min_lr", "max_momentum",
 *  "base_momentum"). Setting a hyperparameter changes the next step
 *  (bools take value != 0); setting an unknown key adds it, as a dict
 *  does. PyTorch's fixed flags read as False ("differentiable",
 *  "capturable", "fused"; "foreach" is None: a KeyError here) and cannot
 *  be set (ValueError). KeyError (status CG_ERR_INDEX, message "'key'")
 *  when absent; IndexError for a bad group. */
CG_API cg_status cg_optimizer_get_option(const cg_optimizer *opt, int group,
                                         const char *key, double *value);
CG_API cg_status cg_optimizer_set_option(cg_optimizer *opt, int group,
                                         const char *key, double value);

/** opt.state_dict(), flattened (see cg_state_dict): for each parameter
 *  with state, "state.<index>.<name>" in PyTorch's order (indices count
 *  parameters across groups in order), then for each group its
 *  hyperparameters in PyTorch's order, any keys schedulers added, and
 *  "param_groups.<g>.params.<j>". Unlike PyTorch, whose dict shares the
 *  live state tensors, the tensors are copies: the dict is a snapshot.
 *  The caller owns *out. */
CG_API cg_status cg_optimizer_state_dict(const cg_optimizer *opt,
                                         cg_state_dict **out);
/** opt.load_state_dict(sd): replaces the state and the groups'
 *  hyperparameters. Everything is validated first; on error the
 *  optimizer is unchanged. PyTorch's checks (ValueError): "loaded state
 *  dict has a different number of parameter groups", "loaded state dict
 *  contains a parameter group that doesn't match the size of optimizer's
 *  group"; and cgrad's (ValueError, naming the entry): unknown or
 *  malformed names, wrong kinds, missing hyperparameters or state
 *  entries, state tensors whose shape differs from the parameter's.
 *  Floating state tensors are converted to a real parameter's dtype (not
 *  "step"), as PyTorch's cast does, and copied. */
CG_API cg_status cg_optimizer_load_state_dict(cg_optimizer *opt,
                                              const cg_state_dict *sd);
/** repr(opt) into buf, snprintf-style (see cg_tensor_repr):
 *  "Adam (\nParameter Group 0\n    amsgrad: False\n ...)". */
CG_API cg_status cg_optimizer_repr(const cg_optimizer *opt, char *buf,
                                   size_t size, size_t *len);

/* ======================================================================
 * Learning-rate schedulers (torch.optim.lr_scheduler)
 * ====================================================================== */

/** The scheduler classes. Values are fixed; new ones are only appended. */
typedef enum cg_lr_scheduler_kind {
    CG_SCHED_STEP_LR = 0,
    CG_SCHED_MULTI_STEP_LR = 1,
    CG_SCHED_EXPONENTIAL_LR = 2,
    CG_SCHED_COSINE_ANNEALING_LR = 3,
    CG_SCHED_LINEAR_LR = 4,
    CG_SCHED_ONE_CYCLE_LR = 5,
    CG_SCHED_REDUCE_LR_ON_PLATEAU = 6,
    CG_SCHED_SEQUENTIAL_LR = 7,
    CG_SCHED_KIND_COUNT
} cg_lr_scheduler_kind;

/** "StepLR", "MultiStepLR", ..., "ReduceLROnPlateau", "SequentialLR". */
CG_API const char *cg_lr_scheduler_kind_name(cg_lr_scheduler_kind kind);

/** A scheduler drives the "lr" of every group of one optimizer, which it
 *  borrows: the optimizer must outlive it. The constructors of all but
 *  ReduceLROnPlateau perform PyTorch's initial step (last_epoch -1 -> 0,
 *  and the optimizer's lr set to the epoch-0 value), and record
 *  "initial_lr" in each group when last_epoch is -1. With last_epoch >=
 *  0 (resuming), every group must have "initial_lr": KeyError (status
 *  CG_ERR_INDEX) "param 'initial_lr' is not specified in param_groups[0]
 *  when resuming an optimizer". Learning rates follow PyTorch's recursive
 *  (chainable) get_lr formulas evaluated in double in the same order, so
 *  get_last_lr() equals PyTorch's to the last bit. `verbose` prints
 *  PyTorch's "Adjusting learning rate of group 0 to 1.0000e-01." lines
 *  to stdout. */
typedef struct cg_lr_scheduler cg_lr_scheduler;

/** StepLR(optimizer, step_size, gamma=0.1, last_epoch=-1, verbose=False) */
typedef struct cg_step_lr_options {
    int64_t step_size;
    double gamma;       /* 0.1 */
    int64_t last_epoch; /* -1 */
    bool verbose;       /* false */
} cg_step_lr_options;
CG_API cg_step_lr_options cg_step_lr_defaults(int64_t step_size);
CG_API cg_status cg_step_lr_new(cg_optimizer *opt,
                                const cg_step_lr_options *opts,
                                cg_lr_scheduler **out);

/** MultiStepLR(optimizer, milestones, gamma=0.1, ...). The milestones are
 *  copied; a repeated milestone multiplies by gamma once per occurrence,
 *  as PyTorch's Counter does. */
typedef struct cg_multi_step_lr_options {
    const int64_t *milestones;
    int num_milestones;
    double gamma;       /* 0.1 */
    int64_t last_epoch; /* -1 */
    bool verbose;       /* false */
} cg_multi_step_lr_options;
CG_API cg_multi_step_lr_options
cg_multi_step_lr_defaults(const int64_t *milestones, int num_milestones);
CG_API cg_status cg_multi_step_lr_new(cg_optimizer *opt,
                                      const cg_multi_step_lr_options *opts,
                                      cg_lr_scheduler **out);

/** ExponentialLR(optimizer, gamma, ...) */
typedef struct cg_exponential_lr_options {
    double gamma;
    int64_t last_epoch; /* -1 */
    bool verbose;       /* false */
} cg_exponential_lr_options;
CG_API cg_exponential_lr_options cg_exponential_lr_defaults(double gamma);
CG_API cg_status cg_exponential_lr_new(cg_optimizer *opt,
                                       const cg_exponential_lr_options *opts,
                                       cg_lr_scheduler **out);

/** CosineAnnealingLR(optimizer, T_max, eta_min=0, ...). T_max = 0 fails
 *  at the second step, as in PyTorch (ZeroDivisionError "integer division
 *  or modulo by zero", reported as CG_ERR_VALUE). */
typedef struct cg_cosine_annealing_lr_options {
    int64_t T_max;
    double eta_min;     /* 0 */
    int64_t last_epoch; /* -1 */
    bool verbose;       /* false */
} cg_cosine_annealing_lr_options;
CG_API cg_cosine_annealing_lr_options
cg_cosine_annealing_lr_defaults(int64_t T_max);
CG_API cg_status cg_cosine_annealing_lr_new(
    cg_optimizer *opt, const cg_cosine_annealing_lr_options *opts,
    cg_lr_scheduler **out);

/** LinearLR(optimizer, start_factor=1/3, end_factor=1.0, total_iters=5,
 *  ...). ValueError "Starting multiplicative factor expected to be
 *  between 0 and 1." / "Ending multiplicative factor expected to be
 *  between 0 and 1.". */
typedef struct cg_linear_lr_options {
    double start_factor; /* 1.0 / 3 */
    double end_factor;   /* 1.0 */
    int64_t total_iters; /* 5 */
    int64_t last_epoch;  /* -1 */
    bool verbose;        /* false */
} cg_linear_lr_options;
CG_API cg_linear_lr_options cg_linear_lr_defaults(void);
CG_API cg_status cg_linear_lr_new(cg_optimizer *opt,
                                  const cg_linear_lr_options *opts,
                                  cg_lr_scheduler **out);

/** OneCycleLR(optimizer, max_lr, total_steps=None, epochs=None,
 *  steps_per_epoch=None, pct_start=0.3, anneal_strategy='cos',
 *  cycle_momentum=True, base_momentum=0.85, max_momentum=0.95,
 *  div_factor=25., final_div_factor=1e4, three_phase=False, ...).
 *  A per-group list is given with the `*s` pointer and its count (NULL
 *  for the scalar). With cycle_momentum the momentum ("momentum" of SGD
 *  and RMSprop, "betas.0" of Adam and AdamW) is cycled too. The groups
 *  get "initial_lr", "max_lr", "min_lr" (and "max_momentum",
 *  "base_momentum"). Errors, PyTorch's words (ValueError): "You must
 *  define either total_steps OR (epochs AND steps_per_epoch)", "Expected
 *  positive integer total_steps, but got 0", "... epochs ...", "...
 *  steps_per_epoch ...", "Expected float between 0 and 1 pct_start, but
 *  got 1.5", "anneal_strategy must by one of 'cos' or 'linear', instead
 *  got x", "expected 2 values for max_lr, got 3", "optimizer must support
 *  momentum with `cycle_momentum` option enabled"; at a step past
 *  total_steps, "Tried to step 11 times. The specified number of total
 *  steps is 10". Unlike PyTorch, a failed constructor leaves the
 *  optimizer's groups unchanged. */
typedef struct cg_one_cycle_lr_options {
    double max_lr;
    const double *max_lrs; /* per group, or NULL */
    int num_max_lrs;
    int64_t total_steps;          /* CG_NONE */
    int64_t epochs;               /* CG_NONE */
    int64_t steps_per_epoch;      /* CG_NONE */
    double pct_start;             /* 0.3 */
    const char *anneal_strategy;  /* "cos" (or "linear") */
    bool cycle_momentum;          /* true */
    double base_momentum;         /* 0.85 */
    const double *base_momentums; /* per group, or NULL */
    int num_base_momentums;
    double max_momentum;         /* 0.95 */
    const double *max_momentums; /* per group, or NULL */
    int num_max_momentums;
    double div_factor;       /* 25 */
    double final_div_factor; /* 1e4 */
    bool three_phase;        /* false */
    int64_t last_epoch;      /* -1 */
    bool verbose;            /* false */
} cg_one_cycle_lr_options;
CG_API cg_one_cycle_lr_options cg_one_cycle_lr_defaults(double max_lr);
CG_API cg_status cg_one_cycle_lr_new(cg_optimizer *opt,
                                     const cg_one_cycle_lr_options *opts,
                                     cg_lr_scheduler **out);

/** ReduceLROnPlateau(optimizer, mode='min', factor=0.1, patience=10,
 *  threshold=1e-4, threshold_mode='rel', cooldown=0, min_lr=0, eps=1e-8).
 *  Stepped with cg_reduce_lr_on_plateau_step. ValueError "Factor should
 *  be < 1.0.", "expected 2 min_lrs, got 3", "mode x is unknown!",
 *  "threshold mode x is unknown!". No initial step and no "initial_lr",
 *  as in PyTorch. */
typedef struct cg_reduce_lr_on_plateau_options {
    const char *mode;           /* "min" (or "max") */
    double factor;              /* 0.1 */
    int64_t patience;           /* 10 */
    double threshold;           /* 1e-4 */
    const char *threshold_mode; /* "rel" (or "abs") */
    int64_t cooldown;           /* 0 */
    double min_lr;              /* 0 */
    const double *min_lrs;      /* per group, or NULL */
    int num_min_lrs;
    double eps;   /* 1e-8 */
    bool verbose; /* false */
} cg_reduce_lr_on_plateau_options;
CG_API cg_reduce_lr_on_plateau_options cg_reduce_lr_on_plateau_defaults(void);
CG_API cg_status cg_reduce_lr_on_plateau_new(
    cg_optimizer *opt, const cg_reduce_lr_on_plateau_options *opts,
    cg_lr_scheduler **out);
/** scheduler.step(metrics) of ReduceLROnPlateau. TypeError for another
 *  kind of scheduler. */
CG_API cg_status cg_reduce_lr_on_plateau_step(cg_lr_scheduler *s,
                                              double metrics);

/** SequentialLR(optimizer, schedulers, milestones, last_epoch=-1):
 *  schedulers[0] until milestones[0], then schedulers[1], ..., with 1.13's
 *  behaviour exactly, quirks included: the constructor resets every
 *  group's lr to its initial_lr, moves each scheduler's last_epoch back
 *  by one and repeats the first one's initial step; at a milestone the
 *  next scheduler is stepped with epoch 0 (its closed form, where it has
 *  one). On success the SequentialLR owns the schedulers and frees them
 *  (they stay readable through borrowed pointers); on failure the caller
 *  still owns them. ValueError "Sequential Schedulers expects all
 *  schedulers to belong to the same optimizer, but got schedulers at
 *  index 1 to be different than the optimizer passed in." and "Sequential
 *  Schedulers expects number of schedulers provided to be one more than
 *  the number of milestone points, but got number of schedulers 2 and the
 *  number of milestones to be equal to 0"; cgrad refuses (TypeError)
 *  ReduceLROnPlateau, SequentialLR and repeated schedulers, which 1.13
 *  accepts and then fails on. */
CG_API cg_status cg_sequential_lr_new(cg_optimizer *opt,
                                      cg_lr_scheduler *const *schedulers,
                                      int num_schedulers,
                                      const int64_t *milestones,
                                      int num_milestones, int64_t last_epoch,
                                      cg_lr_scheduler **out);

/** scheduler.step(). TypeError "step() missing 1 required positional
 *  argument: 'metrics'" for ReduceLROnPlateau. On error (OneCycleLR
 *  past its total steps, CosineAnnealingLR with T_max 0) nothing
 *  changes. */
CG_API cg_status cg_lr_scheduler_step(cg_lr_scheduler *s);
/** scheduler.get_last_lr(): writes min(cap, n) learning rates (one per
 *  group) to lrs and the count n to *n (either may be NULL/0 to ask the
 *  count). ReduceLROnPlateau before its first step: AttributeError
 *  "'ReduceLROnPlateau' object has no attribute '_last_lr'". */
CG_API cg_status cg_lr_scheduler_get_last_lr(const cg_lr_scheduler *s,
                                             double *lrs, int cap, int *n);
/** scheduler.last_epoch. */
CG_API int64_t cg_lr_scheduler_last_epoch(const cg_lr_scheduler *s);
/** The scheduler's kind. */
CG_API cg_lr_scheduler_kind cg_lr_scheduler_kind_of(const cg_lr_scheduler *s);
/** Frees the scheduler (and a SequentialLR's children). NULL-safe. The
 *  optimizer keeps the lr the scheduler last set. */
CG_API void cg_lr_scheduler_free(cg_lr_scheduler *s);

/* ======================================================================
 * Gradient clipping (torch.nn.utils.clip_grad_norm_)
 * ====================================================================== */

/** torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type,
 *  error_if_nonfinite): the norm of the per-parameter gradient norms of
 *  the params that have a .grad, computed as PyTorch 1.13 computes it
 *  (same reduction order; float32 2-norms take its vectorised kernel's
 *  order), then every gradient is multiplied in place by
 *  clamp(max_norm / (total_norm + 1e-6), max=1.0). norm_type may be
 *  INFINITY (max |g|), 0, 1, 2 or any p. *total_norm (may be NULL) gets
 *  the norm, rounded to the gradients' dtype as PyTorch's tensor holds
 *  it (0 when no parameter has a gradient). RuntimeError "The total
 *  norm of order 2.0 for gradients from `parameters` is non-finite, so it
 *  cannot be clipped. To disable this error and scale the gradients by
 *  the non-finite norm anyway, set `error_if_nonfinite=False`" (nothing
 *  changed). */
CG_API cg_status cg_clip_grad_norm_(cg_tensor *const *params, int num_params,
                                    double max_norm, double norm_type,
                                    bool error_if_nonfinite,
                                    double *total_norm);

/* ======================================================================
 * Data: torch.randperm and DataLoader(TensorDataset(...))
 * ====================================================================== */

/** torch.randperm(n, generator=g, dtype=dt): a random permutation of
 *  0..n-1, bit for bit PyTorch 1.13's CPU algorithm (one 32-bit draw per
 *  swap, `random() % (n - i)`). cgrad has no integer dtype: use float64
 *  (exact below 2**53) or float32 (values rounded, as PyTorch allows).
 *  g NULL is the default generator. Errors: RuntimeError "Trying to
 *  create tensor with negative dimension -1: [-1]", "\"randperm\" not
 *  implemented for 'ComplexFloat'". On error the generator is unchanged.
 *  (torch.randperm belongs with core/rng.c; it lives in optim/ until the
 *  core takes it.) */
CG_API cg_status cg_randperm(int64_t n, cg_dtype dt, cg_generator *g,
                             cg_tensor **out);
/** The same permutation written to out[0..n) as integers. */
CG_API cg_status cg_randperm_indices(int64_t n, cg_generator *g, int64_t *out);

/** DataLoader(TensorDataset(*tensors), batch_size, shuffle, drop_last,
 *  generator) with num_workers=0. */
typedef struct cg_dataloader cg_dataloader;

/* ======================================================================
 * DistributedSampler
 * (torch.utils.data.distributed.DistributedSampler, PyTorch 1.13)
 * ====================================================================== */

/** Shards a data set of n samples across num_replicas processes. Pure
 *  index arithmetic, no communication: pass cg_dist_get_world_size() and
 *  cg_dist_get_rank() (cgrad_distributed.h) or any values. */
typedef struct cg_distributed_sampler cg_distributed_sampler;

typedef struct cg_distributed_sampler_options {
    int64_t num_replicas; /* required */
    int64_t rank;         /* required */
    bool shuffle;         /* true */
    int64_t seed;         /* 0: the same on every rank */
    bool drop_last;       /* false */
} cg_distributed_sampler_options;
CG_API cg_distributed_sampler_options
cg_distributed_sampler_defaults(int64_t num_replicas, int64_t rank);

/** DistributedSampler(dataset of n samples, **opts): num_samples =
 *  ceil(n / num_replicas), or with drop_last and n not divisible
 *  ceil((n - num_replicas) / num_replicas); total_size = num_samples *
 *  num_replicas. ValueError "Invalid rank 3, rank should be in the
 *  interval [0, 1]" (PyTorch's words), ValueError for n < 0. Epoch 0. */
CG_API cg_status cg_distributed_sampler_new(
    int64_t n, const cg_distributed_sampler_options *opts,
    cg_distributed_sampler **out);
CG_API void cg_distributed_sampler_free(cg_distributed_sampler *s);
/** len(sampler.dataset): the n it was made with (0 for NULL). */
CG_API int64_t
cg_distributed_sampler_dataset_len(const cg_distributed_sampler *s);
/** len(sampler): num_samples (0 for NULL). */
CG_API int64_t cg_distributed_sampler_len(const cg_distributed_sampler *s);
/** sampler.set_epoch(epoch): the shuffle of the next pass. */
CG_API void cg_distributed_sampler_set_epoch(cg_distributed_sampler *s,
                                             int64_t epoch);
/** list(iter(sampler)) into out[0 .. len): torch.randperm(n) from a
 *  fresh generator seeded with seed + epoch (arange(n) without shuffle);
 *  padded to total_size by repeating the list from its head (or cut to
 *  total_size with drop_last); then every num_replicas-th index starting
 *  at rank. Draws nothing from the default generator. */
CG_API cg_status cg_distributed_sampler_indices(const cg_distributed_sampler *s,
                                                int64_t *out);

typedef struct cg_dataloader_options {
    int64_t batch_size;      /* 1 */
    bool shuffle;            /* false */
    bool drop_last;          /* false */
    cg_generator *generator; /* NULL: PyTorch's generator=None */
    /* sampler=DistributedSampler(...) (NULL: None). Borrowed;
     * must outlive the loader and describe as many samples as the
     * tensors hold. Each epoch takes its indices (after set_epoch) at the
     * first batch. */
    cg_distributed_sampler *sampler;
} cg_dataloader_options;
CG_API cg_dataloader_options cg_dataloader_defaults(void);

/** A loader over `tensors` (num_tensors >= 1, borrowed; the loader keeps
 *  references), which must share their first dimension. Errors:
 *  ValueError "Size mismatch between tensors" (PyTorch's assert),
 *  IndexError "dimension specified as 0 but tensor has no dimensions",
 *  IndexError "tuple index out of range" (no tensors), ValueError
 *  "batch_size should be a positive integer value, but got batch_size=0",
 *  ValueError "num_samples should be a positive integer value, but got
 *  num_samples=0" (shuffling an empty dataset), ValueError "sampler option
 *  is mutually exclusive with shuffle", ValueError "cgrad: the sampler
 *  covers 10 samples, the tensors hold 12". A generator given in the
 *  options is borrowed and must outlive the loader. */
CG_API cg_status cg_dataloader_new(cg_tensor *const *tensors, int num_tensors,
                                   const cg_dataloader_options *opts,
                                   cg_dataloader **out);
CG_API void cg_dataloader_free(cg_dataloader *dl);
/** len(loader): batches per epoch. */
CG_API int64_t cg_dataloader_len(const cg_dataloader *dl);
/** next(it) of `for batch in loader`: the first call of an epoch starts
 *  it (iter(loader)); each call writes one batch, num_tensors new
 *  contiguous tensors (batch[i] holds rows of tensors[i], gathered like
 *  index_select; owned by the caller) and sets *has_batch; at the end of
 *  the epoch it writes nothing, sets *has_batch false, and the next call
 *  starts a new epoch. Random draws happen exactly when PyTorch makes
 *  them: at iter() one int64 draw (the loader's _base_seed), at the first
 *  batch the sampler's randperm (with generator=None: a seed drawn from
 *  the default generator for a fresh generator), and when the sampler is
 *  exhausted one more randperm that PyTorch makes and discards; so runs
 *  interleaved with other draws match PyTorch too. Batches never record
 *  autograd history. On error (NOMEM) the loader and generators are as
 *  before the call. */
CG_API cg_status cg_dataloader_next(cg_dataloader *dl, cg_tensor **batch,
                                    bool *has_batch);
/** Abandons the current epoch (a `break` out of the for loop); the next
 *  cg_dataloader_next starts a new one. */
CG_API void cg_dataloader_reset(cg_dataloader *dl);

#ifdef __cplusplus
}
#endif

#endif /* CGRAD_OPTIM_H */
