/*
 * optim_internal.h -- what optim/ files share and nobody else sees: the
 * optimizer object's layout, the per-optimizer operation table, the
 * strided element walk, the element-wise update driver the optimizers
 * share, and error helpers.
 * Never installed. Only public headers are included: optim/ is built on
 * the public core API.
 */
#ifndef CGRAD_OPTIM_INTERNAL_H
#define CGRAD_OPTIM_INTERNAL_H

#include "cgrad_optim.h"

#include <stdarg.h>

/* ---- errors (errors.c) ---------------------------------------------- */

/** Sets the thread's last error (status and printf-formatted message) and
 *  returns `st`. */
cg_status cg__optim_error(cg_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/** CG_ERR_NOMEM with PyTorch's allocator message for `bytes`. */
cg_status cg__optim_nomem(size_t bytes);
/** CG_ERR_MISUSE "<what> must not be NULL". */
cg_status cg__optim_null(const char *what);
/** Python's repr(float(v)) ("-1.0", "0.1", "1e-08", "inf", "nan") into
 *  buf (at least 32 bytes); returns buf. */
char *cg__pyfloat(double v, char *buf, size_t size);
/** Python's str(bool). */
static inline const char *cg__pybool(bool b)
{
    return b ? "True" : "False";
}
/** IndexError "list index out of range" unless 0 <= i < n. */
cg_status cg__optim_check_index(int i, int n);
/** The KeyError PyTorch raises for a missing dict key: status
 *  CG_ERR_INDEX (cgrad has no KeyError status yet), message "'key'". */
cg_status cg__optim_key_error(const char *key);
/** Python's floor division and modulo on ints. */
int64_t cg__floordiv(int64_t a, int64_t b);

/* ---- strided element walk ------------------------------------------- */

/** Visits a tensor's elements in row-major (logical) order and gives each
 *  one's offset, in elements, from cg_tensor_data(t). Contiguous tensors
 *  take a counter; others an odometer over their public strides. */
typedef struct cg__walk {
    int ndim;
    bool contiguous;
    int64_t off;
    int64_t shape[CG_MAX_DIMS];
    int64_t strides[CG_MAX_DIMS];
    int64_t idx[CG_MAX_DIMS];
} cg__walk;

void cg__walk_init(cg__walk *w, const cg_tensor *t);

/** Moves to the next element (call after using w->off). */
static inline void cg__walk_next(cg__walk *w)
{
    if (w->contiguous) {
        w->off++;
        return;
    }
    for (int d = w->ndim - 1; d >= 0; d--) {
        if (++w->idx[d] < w->shape[d]) {
            w->off += w->strides[d];
            return;
        }
        w->off -= w->strides[d] * (w->shape[d] - 1);
        w->idx[d] = 0;
    }
}

/* ---- element-wise updates ------------------------------------------ */

/** An element-wise update's body: components [k, k + n) of a parameter
 *  at p, their gradients at g (consecutive components of the parameter's
 *  real dtype, complex values as re, im); k also indexes the optimizer's
 *  contiguous state tensors. Must not fail. */
typedef void (*cg__update_body)(void *ctx, void *p, const void *g, int64_t k,
                                int64_t n);

/** One update compiled twice: `plain` for any CPU, and `fma` (NULL where
 *  it is not built) for CPUs with FMA -- there fmaf is one instruction
 *  instead of a library call, and a loop without branches (the common
 *  configurations' kernels) is vectorised. Both run the same IEEE
 *  operations in the same order (multiply, add, divide, sqrt and fma are
 *  each correctly rounded; -ffp-contract=off, set for the whole build,
 *  keeps the compiler from fusing anything else, and -fno-math-errno lets
 *  sqrt be the instruction alone), so they give the same bits. */
typedef struct cg__update_kernel {
    cg__update_body plain, fma;
} cg__update_kernel;

/** Runs the kernel's body -- fma when cg_get_cpu_capability() is not
 *  "DEFAULT" -- over every component of param beside grad's (same shape
 *  and dtype): contiguous tensors in ranges of components on the pool
 *  (cg_parallel_for: each component is its own, so the thread count
 *  changes nothing), others an element at a time along strided walks. */
void cg__update_elementwise(cg_tensor *param, const cg_tensor *grad,
                            const cg__update_kernel *kernel, void *ctx);

/** Whether the FMA builds below run: cg_get_cpu_capability() is not
 *  "DEFAULT" (CGRAD_SIMD=off forces the plain ones). */
bool cg__use_fma(void);

/* The FMA variant: x86-64 with GCC or clang (elsewhere fmaf is either an
 * instruction already, as on AArch64, or not known to be one). */
#if defined(__x86_64__) && (defined(__GNUC__) || defined(__clang__))
#define CG__FMA_VARIANT(...) __VA_ARGS__
#define CG__FMA_BODY(name) name
#else
#define CG__FMA_VARIANT(...)
#define CG__FMA_BODY(name) NULL
#endif

/* A body `name`: the loop over components, each one's update written
 * once as STEP(T, FMA, SQRT) with `d` its gradient, `pc` its parameter
 * and `k` its index, after SETUP(T), which declares what STEP uses from
 * `st` (the ctx, a const STATE *). */
#define CG__UPDATE_BODY(name, attr, T, STATE, SETUP, STEP, FMA, SQRT)          \
    attr static void name(void *ctx, void *vp, const void *vg, int64_t k0,     \
                          int64_t n)                                           \
    {                                                                          \
        const STATE *st = ctx;                                                 \
        SETUP(T)                                                               \
        T *p = vp;                                                             \
        const T *g = vg;                                                       \
        for (int64_t i = 0; i < n; i++) {                                      \
            T *pc = p + i;                                                     \
            T d = g[i];                                                        \
            const int64_t k = k0 + i;                                          \
            STEP(T, FMA, SQRT)                                                 \
        }                                                                      \
    }

/** Defines `static const cg__update_kernel name` from SETUP and STEP (see
 *  CG__UPDATE_BODY), its bodies name_plain and name_fma. */
#define CG__DEFINE_UPDATE_KERNEL(name, T, STATE, SETUP, STEP, FMA, SQRT)       \
    CG__UPDATE_BODY(name##_plain, , T, STATE, SETUP, STEP, FMA, SQRT)          \
    CG__FMA_VARIANT(CG__UPDATE_BODY(name##_fma,                                \
                                    __attribute__((target("avx2,fma"))), T,    \
                                    STATE, SETUP, STEP, FMA, SQRT))            \
    static const cg__update_kernel name = {name##_plain,                       \
                                           CG__FMA_BODY(name##_fma)};

/** RuntimeError (PyTorch's words) when t has a dimension of stride 0 and
 *  size > 1: an in-place write would hit one element twice. */
cg_status cg__check_no_overlap(const cg_tensor *t);
/** Bumps t's version counter after its data was written through
 *  cg_tensor_data (rewrites one element with its own value through the
 *  public in-place cg_tensor_set). Grad mode must be off. */
cg_status cg__bump_version(cg_tensor *t);

/* ---- optimizers ------------------------------------------------------ */

/** A hyperparameter of a group: how it is stored in the options struct
 *  and named in PyTorch's param_groups. */
typedef enum hp_type { HP_DOUBLE = 0, HP_BOOL = 1, HP_NONE = 2 } hp_type;

typedef struct cg__hparam {
    const char *name; /* "lr", "betas.0", "foreach", ... */
    hp_type type;     /* HP_NONE: a constant None PyTorch keeps (foreach) */
    size_t offset;    /* into the options struct (HP_DOUBLE / HP_BOOL) */
    bool constant;    /* PyTorch-only flags cgrad keeps at False/None
                         (differentiable, capturable, fused, foreach) */
    bool int_default; /* PyTorch's default is the int 0 (repr prints "0") */
} cg__hparam;

/** What a state entry of a parameter is called and holds. */
typedef enum slot_type {
    SLOT_TENSOR = 0,    /* a tensor shaped like the parameter */
    SLOT_STEP_F32 = 1,  /* a 0-d float32 tensor in PyTorch (Adam's step) */
    SLOT_STEP_INT = 2,  /* a Python int (RMSprop's step) */
    SLOT_OPT_TENSOR = 3 /* a tensor or None (SGD's momentum_buffer) */
} slot_type;

#define CG__MAX_SLOTS 4

typedef struct cg__slot_spec {
    const char *name; /* "exp_avg", ... */
    slot_type type;
    bool required; /* every state of the kind has it (load checks) */
} cg__slot_spec;

/** The state of one parameter. `tensors[k]` is NULL for a slot not
 *  present (or None); step slots use `step`. */
typedef struct cg__pstate {
    bool present;                      /* the state dict has this param */
    bool has[CG__MAX_SLOTS];           /* slot k present (tensor or None) */
    cg_tensor *tensors[CG__MAX_SLOTS]; /* contiguous, owned */
    double step;                       /* step count (Adam: float32 values) */
    /* made by the step in progress, dropped if it fails */
    bool fresh_present;
    bool fresh[CG__MAX_SLOTS];
} cg__pstate;

/** Options of any kind, stored per group. */
typedef union cg__options {
    cg_optimizer_kind kind;
    cg_sgd_options sgd;
    cg_adam_options adam;
    cg_rmsprop_options rmsprop;
    cg_adagrad_options adagrad;
} cg__options;

/** A key a scheduler (or the user) added to a group ("initial_lr"). */
typedef struct cg__extra {
    char *name;
    double value;
    bool is_bool;
} cg__extra;

typedef struct cg__group {
    int nparams;
    int first; /* global index of the group's first parameter */
    cg__options opts;
    int nextra;
    cg__extra *extra;
} cg__group;

struct cg_optimizer;

/** The per-kind operations (sgd.c, adam.c, rmsprop.c, adagrad.c). */
typedef struct cg__optim_vtable {
    cg_optimizer_kind kind;
    size_t options_size;
    const cg__hparam *hparams; /* PyTorch's param_groups order */
    int nhparams;
    const cg__slot_spec *slots; /* PyTorch's state order */
    int nslots;
    /** Validates the constructor's defaults (PyTorch's __init__ checks). */
    cg_status (*check_defaults)(const cg__options *o);
    /** Phase one of a step for one parameter with a grad: checks, and
     *  creates missing state (new tensors recorded in `made` so a failed
     *  step can drop them). Must not change values. */
    cg_status (*prepare)(struct cg_optimizer *opt, const cg__group *g,
                         int index, cg_tensor *param, const cg_tensor *grad);
    /** Phase two: the update; cannot fail. */
    void (*update)(struct cg_optimizer *opt, const cg__group *g, int index,
                   cg_tensor *param, const cg_tensor *grad);
    /** Creates state at construction / add_param_group (Adagrad), or
     *  NULL. */
    cg_status (*init_state)(struct cg_optimizer *opt, const cg__group *g,
                            int index, cg_tensor *param);
} cg__optim_vtable;

struct cg_optimizer {
    const cg__optim_vtable *vt;
    cg__options defaults;
    int ngroups;
    cg__group *groups;
    int nparams;        /* across groups */
    cg_tensor **params; /* nparams references, group after group */
    cg__pstate *state;  /* nparams */
};

/** Shared constructor: validates, then builds the groups. */
cg_status cg__optimizer_new(const cg__optim_vtable *vt,
                            const cg_param_group *groups, int num_groups,
                            const void *defaults, cg_optimizer **out);

/** A new zero-filled (or value-filled) contiguous tensor shaped like
 *  `like` with its dtype, for state. */
cg_status cg__state_tensor(const cg_tensor *like, double fill,
                           bool complex_fill, cg_tensor **out);
/** Creates slot `k` of parameter `index` if missing (zeros), marking it
 *  fresh so a failing step can drop it. */
cg_status cg__ensure_slot(cg_optimizer *opt, int index, int k,
                          const cg_tensor *param);

/** Looks up a group key: the hyperparameter table, then extras. Returns
 *  true when found. */
bool cg__group_get(const cg_optimizer *opt, const cg__group *g, const char *key,
                   double *value);
/** True when `key` is one of the optimizer kind's hyperparameters. */
bool cg__optimizer_has_hparam(const cg_optimizer *opt, const char *key);

/* ---- scheduler helpers the optimizer exposes ------------------------ */

/** A deep copy of every group's options and extra keys, so a scheduler
 *  constructor that fails half way can put the optimizer back. */
typedef struct cg__groups_snapshot {
    int ngroups;
    cg__group *groups;
} cg__groups_snapshot;

cg_status cg__groups_save(const cg_optimizer *opt, cg__groups_snapshot *snap);
/** Puts the saved groups back (the snapshot is consumed). */
void cg__groups_restore(cg_optimizer *opt, cg__groups_snapshot *snap);
/** Frees a snapshot that is not needed. */
void cg__groups_discard(cg__groups_snapshot *snap);

/** Field access for a double hyperparameter by table entry. */
static inline double *cg__hp_double(cg__options *o, const cg__hparam *h)
{
    return (double *)(void *)((char *)o + h->offset);
}
static inline bool *cg__hp_bool(cg__options *o, const cg__hparam *h)
{
    return (bool *)(void *)((char *)o + h->offset);
}

/** Defines an optimizer kind `name` (sgd, adam, ...): its vtable
 *  cg__<name>_vtable (kind KIND, options type opts_t, the hparams and
 *  slots arrays, then the operations as designated initializers, e.g.
 *  `.check_defaults = sgd_check`) and the public constructors
 *  cg_<name>_new / cg_<name>_new_groups, which take cg_<name>_defaults()
 *  when given no options and leave every check to cg__optimizer_new. */
#define CG__DEFINE_OPTIMIZER(name, opts_t, KIND, hparams_, slots_, ...)        \
    const cg__optim_vtable cg__##name##_vtable = {                             \
        .kind = KIND,                                                          \
        .options_size = sizeof(opts_t),                                        \
        .hparams = hparams_,                                                   \
        .nhparams = (int)(sizeof hparams_ / sizeof *hparams_),                 \
        .slots = slots_,                                                       \
        .nslots = (int)(sizeof slots_ / sizeof *slots_),                       \
        __VA_ARGS__};                                                          \
    cg_status cg_##name##_new(cg_tensor *const *params, int num_params,        \
                              const opts_t *opts, cg_optimizer **out)          \
    {                                                                          \
        opts_t d = opts ? *opts : cg_##name##_defaults();                      \
        cg_param_group g = {params, num_params, NULL};                         \
        return cg__optimizer_new(&cg__##name##_vtable, &g,                     \
                                 num_params > 0 ? 1 : 0, &d, out);             \
    }                                                                          \
    cg_status cg_##name##_new_groups(const cg_param_group *groups,             \
                                     int num_groups, const opts_t *defaults,   \
                                     cg_optimizer **out)                       \
    {                                                                          \
        opts_t d = defaults ? *defaults : cg_##name##_defaults();              \
        return cg__optimizer_new(&cg__##name##_vtable, groups, num_groups, &d, \
                                 out);                                         \
    }

extern const cg__optim_vtable cg__sgd_vtable;
extern const cg__optim_vtable cg__adam_vtable;
extern const cg__optim_vtable cg__adamw_vtable;
extern const cg__optim_vtable cg__rmsprop_vtable;
extern const cg__optim_vtable cg__adagrad_vtable;

/* ---- arithmetic helpers for the update kernels ----------------------- */

/** The elements a kernel touches per tensor element: 1 for real dtypes,
 *  2 for complex (the view_as_real components). */
static inline int cg__ncomp(cg_dtype dt)
{
    return cg_dtype_is_complex(dt) ? 2 : 1;
}

#endif
