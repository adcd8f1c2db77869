/*
 * lr_scheduler.c -- torch.optim.lr_scheduler (PyTorch 1.13): StepLR,
 * MultiStepLR, ExponentialLR, CosineAnnealingLR, LinearLR, OneCycleLR,
 * ReduceLROnPlateau and SequentialLR.
 *
 * _LRScheduler's protocol, reproduced exactly:
 *   constructor  last_epoch == -1: every group gets initial_lr = lr
 *                (setdefault); else initial_lr must be there (KeyError);
 *                base_lrs = the initial_lrs; then one step (_initial_step:
 *                _step_count = 0, step()).
 *   step()       _step_count += 1; last_epoch += 1; values = get_lr();
 *                group i's lr = values[i] (zip: as many as there are
 *                values); _last_lr = every group's lr.
 *   step(epoch)  (only SequentialLR uses it, with 0) last_epoch = epoch;
 *                the closed form where the class has one, else get_lr().
 * get_lr is PyTorch's recursive ("chainable") form, which reads the
 * groups' current lr, and every formula is evaluated in double in Python's
 * order (a * b / c is (a * b) / c), with libm's cos and pow as Python's
 * math.cos and float.__pow__ call them; so get_last_lr() is PyTorch's to
 * the last bit.
 *
 * Departures, all in the direction of cgrad's error rules: a failing
 * constructor or step changes nothing (PyTorch may have set initial_lr,
 * betas or last_epoch before it raises); ZeroDivisionError and KeyError
 * have no cgrad status yet and come back as CG_ERR_VALUE and CG_ERR_INDEX
 * with Python's messages. Left out: LambdaLR, MultiplicativeLR, ConstantLR,
 * PolynomialLR, CyclicLR, CosineAnnealingWarmRestarts, ChainedScheduler,
 * the schedulers' state_dict, and PyTorch's warnings.
 */
#include "optim_internal.h"

#include <math.h>
#include <stdio.h>
#include <string.h>

#define PI 3.141592653589793 /* math.pi */

typedef struct phase {
    double end_step;
    const char *start_lr, *end_lr, *start_mom, *end_mom;
} phase;

struct cg_lr_scheduler {
    cg_lr_scheduler_kind kind;
    cg_optimizer *opt; /* borrowed */
    int64_t last_epoch;
    int64_t step_count; /* _step_count */
    bool verbose;
    int nbase;
    double *base_lrs;
    int nlast; /* -1 until _last_lr exists (ReduceLROnPlateau) */
    double *last_lr;
    int cap;               /* room in last_lr, values, moms */
    double *values, *moms; /* scratch of a step */

    /* StepLR, MultiStepLR, ExponentialLR */
    int64_t step_size;
    double gamma;
    int nmilestones;
    int64_t *milestones; /* MultiStepLR: sorted, repeats kept;
                            SequentialLR: as given */
    /* CosineAnnealingLR */
    int64_t T_max;
    double eta_min;
    /* LinearLR */
    double start_factor, end_factor;
    int64_t total_iters;
    /* OneCycleLR */
    int64_t total_steps;
    int nphases;
    phase phases[3];
    bool anneal_cos, cycle_momentum, use_beta1;
    /* ReduceLROnPlateau */
    bool mode_max, rel;
    double factor, threshold, eps, best;
    int64_t patience, cooldown, cooldown_counter, num_bad_epochs;
    double *min_lrs;
    int nmin_lrs;
    /* SequentialLR: owned children */
    int nchildren;
    cg_lr_scheduler **children;
};

static const char *const kind_names[CG_SCHED_KIND_COUNT] = {
    [CG_SCHED_STEP_LR] = "StepLR",
    [CG_SCHED_MULTI_STEP_LR] = "MultiStepLR",
    [CG_SCHED_EXPONENTIAL_LR] = "ExponentialLR",
    [CG_SCHED_COSINE_ANNEALING_LR] = "CosineAnnealingLR",
    [CG_SCHED_LINEAR_LR] = "LinearLR",
    [CG_SCHED_ONE_CYCLE_LR] = "OneCycleLR",
    [CG_SCHED_REDUCE_LR_ON_PLATEAU] = "ReduceLROnPlateau",
    [CG_SCHED_SEQUENTIAL_LR] = "SequentialLR",
};

const char *cg_lr_scheduler_kind_name(cg_lr_scheduler_kind kind)
{
    if ((int)kind < 0 || kind >= CG_SCHED_KIND_COUNT)
        return "unknown";
    return kind_names[kind];
}

cg_lr_scheduler_kind cg_lr_scheduler_kind_of(const cg_lr_scheduler *s)
{
    return s ? s->kind : CG_SCHED_KIND_COUNT;
}

int64_t cg_lr_scheduler_last_epoch(const cg_lr_scheduler *s)
{
    return s ? s->last_epoch : 0;
}

void cg_lr_scheduler_free(cg_lr_scheduler *s)
{
    if (!s)
        return;
    for (int i = 0; i < s->nchildren; i++)
        cg_lr_scheduler_free(s->children[i]);
    cg_free(s->children);
    cg_free(s->base_lrs);
    cg_free(s->last_lr);
    cg_free(s->values);
    cg_free(s->moms);
    cg_free(s->milestones);
    cg_free(s->min_lrs);
    cg_free(s);
}

static cg_status zero_division(bool integer)
{
    return cg__optim_error(CG_ERR_VALUE, integer ? "integer division or modulo "
                                                   "by zero"
                                                 : "float division by zero");
}

/* Makes room for one value per group of the optimizer. */
static cg_status ensure_cap(cg_lr_scheduler *s)
{
    int n = cg_optimizer_num_param_groups(s->opt);
    if (n <= s->cap)
        return CG_OK;
    size_t bytes = (size_t)n * sizeof(double);
    double *a = cg_realloc(s->last_lr, bytes);
    if (!a)
        return cg__optim_nomem(bytes);
    s->last_lr = a;
    if (!(a = cg_realloc(s->values, bytes)))
        return cg__optim_nomem(bytes);
    s->values = a;
    if (!(a = cg_realloc(s->moms, bytes)))
        return cg__optim_nomem(bytes);
    s->moms = a;
    s->cap = n;
    return CG_OK;
}

static double group_lr(const cg_lr_scheduler *s, int g)
{
    double v = 0;
    cg_optimizer_get_lr(s->opt, g, &v);
    return v;
}

/* group[key] (a KeyError when absent) */
static cg_status group_value(const cg_lr_scheduler *s, int g, const char *key,
                             double *v)
{
    return cg_optimizer_get_option(s->opt, g, key, v);
}

static const char *momentum_key(const cg_lr_scheduler *s)
{
    return s->use_beta1 ? "betas.0" : "momentum";
}

/* ======================================================================
 * get_lr (chainable) and the closed forms
 * ====================================================================== */

/* MultiStepLR: how many times `epoch` is a milestone (Counter lookup) and
 * how many milestones are <= epoch (bisect_right). */
static int milestone_count(const cg_lr_scheduler *s, int64_t epoch)
{
    int c = 0;
    for (int i = 0; i < s->nmilestones; i++)
        c += s->milestones[i] == epoch;
    return c;
}

static int bisect_right(const int64_t *a, int n, int64_t x)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (x < a[mid])
            hi = mid;
        else
            lo = mid + 1;
    }
    return lo;
}

static double anneal(const cg_lr_scheduler *s, double start, double end,
                     double pct)
{
    if (s->anneal_cos) {
        double cos_out = cos(PI * pct) + 1;
        return end + (start - end) / 2.0 * cos_out;
    }
    return (end - start) * pct + start;
}

/* OneCycleLR.get_lr for one group: lr and (when cycling) momentum. */
static cg_status one_cycle_group(const cg_lr_scheduler *s, int g, double *lr,
                                 double *mom)
{
    int64_t step_num = s->last_epoch;
    double start_step = 0;
    for (int i = 0; i < s->nphases; i++) {
        const phase *ph = &s->phases[i];
        double end_step = ph->end_step;
        if ((double)step_num <= end_step || i == s->nphases - 1) {
            if (end_step - start_step == 0)
                return zero_division(false);
            double pct =
                ((double)step_num - start_step) / (end_step - start_step);
            double a, b;
            cg_status st = group_value(s, g, ph->start_lr, &a);
            if (st == CG_OK)
                st = group_value(s, g, ph->end_lr, &b);
            if (st != CG_OK)
                return st;
            *lr = anneal(s, a, b, pct);
            if (s->cycle_momentum) {
                st = group_value(s, g, ph->start_mom, &a);
                if (st == CG_OK)
                    st = group_value(s, g, ph->end_mom, &b);
                if (st != CG_OK)
                    return st;
                *mom = anneal(s, a, b, pct);
            }
            return CG_OK;
        }
        start_step = ph->end_step;
    }
    return CG_OK;
}

/* get_lr(): s->values[0..*n), and s->moms for OneCycleLR. */
static cg_status get_lr(cg_lr_scheduler *s, int *n)
{
    int ng = cg_optimizer_num_param_groups(s->opt);
    int nz = ng < s->nbase ? ng : s->nbase; /* zip(base_lrs, groups) */
    int64_t le = s->last_epoch;
    double *v = s->values;
    *n = ng;
    switch (s->kind) {
    case CG_SCHED_STEP_LR:
        if (le != 0 && s->step_size == 0)
            return zero_division(true);
        for (int g = 0; g < ng; g++)
            v[g] = (le == 0 || le % s->step_size != 0)
                       ? group_lr(s, g)
                       : group_lr(s, g) * s->gamma;
        return CG_OK;
    case CG_SCHED_MULTI_STEP_LR: {
        int c = milestone_count(s, le);
        for (int g = 0; g < ng; g++)
            v[g] = c == 0 ? group_lr(s, g)
                          : group_lr(s, g) * pow(s->gamma, (double)c);
        return CG_OK;
    }
    case CG_SCHED_EXPONENTIAL_LR:
        for (int g = 0; g < ng; g++)
            v[g] = le == 0 ? group_lr(s, g) : group_lr(s, g) * s->gamma;
        return CG_OK;
    case CG_SCHED_COSINE_ANNEALING_LR: {
        double T = (double)s->T_max, eta = s->eta_min;
        if (le == 0) {
            for (int g = 0; g < ng; g++)
                v[g] = group_lr(s, g);
            return CG_OK;
        }
        *n = nz;
        if (s->step_count == 1 && le > 0) {
            if (s->T_max == 0)
                return zero_division(false);
            for (int g = 0; g < nz; g++)
                v[g] = eta + (s->base_lrs[g] - eta) *
                                 (1 + cos((double)le * PI / T)) / 2;
            return CG_OK;
        }
        if (s->T_max == 0)
            return zero_division(true);
        if ((le - 1 - s->T_max) % (2 * s->T_max) == 0) {
            for (int g = 0; g < nz; g++)
                v[g] = group_lr(s, g) +
                       (s->base_lrs[g] - eta) * (1 - cos(PI / T)) / 2;
            return CG_OK;
        }
        *n = ng;
        double num = 1 + cos(PI * (double)le / T);
        double den = 1 + cos(PI * (double)(le - 1) / T);
        if (den == 0)
            return zero_division(false);
        for (int g = 0; g < ng; g++)
            v[g] = num / den * (group_lr(s, g) - eta) + eta;
        return CG_OK;
    }
    case CG_SCHED_LINEAR_LR: {
        double sf = s->start_factor, ef = s->end_factor;
        for (int g = 0; g < ng; g++) {
            double lr = group_lr(s, g);
            if (le == 0) {
                v[g] = lr * sf;
            } else if (le > s->total_iters) {
                v[g] = lr;
            } else {
                double den =
                    (double)s->total_iters * sf + (double)(le - 1) * (ef - sf);
                if (den == 0)
                    return zero_division(false);
                v[g] = lr * (1. + (ef - sf) / den);
            }
        }
        return CG_OK;
    }
    case CG_SCHED_ONE_CYCLE_LR:
        if (le > s->total_steps)
            return cg__optim_error(CG_ERR_VALUE,
                                   "Tried to step %lld times. The specified "
                                   "number of total steps is %lld",
                                   (long long)(le + 1),
                                   (long long)s->total_steps);
        for (int g = 0; g < ng; g++) {
            cg_status st = one_cycle_group(s, g, &v[g], &s->moms[g]);
            if (st != CG_OK)
                return st;
        }
        return CG_OK;
    default:
        return cg__optim_error(CG_ERR_RUNTIME, "%s has no get_lr",
                               cg_lr_scheduler_kind_name(s->kind));
    }
}

/* _get_closed_form_lr(); false when the class has none (OneCycleLR). */
static bool closed_form(cg_lr_scheduler *s, int *n, cg_status *st)
{
    int ng = cg_optimizer_num_param_groups(s->opt);
    int nz = ng < s->nbase ? ng : s->nbase;
    int64_t le = s->last_epoch;
    double *v = s->values;
    const double *base = s->base_lrs;
    *n = nz;
    *st = CG_OK;
    switch (s->kind) {
    case CG_SCHED_STEP_LR:
        if (s->step_size == 0) {
            *st = zero_division(true);
            return true;
        }
        for (int g = 0; g < nz; g++)
            v[g] =
                base[g] * pow(s->gamma, (double)cg__floordiv(le, s->step_size));
        return true;
    case CG_SCHED_MULTI_STEP_LR: {
        int k = bisect_right(s->milestones, s->nmilestones, le);
        for (int g = 0; g < nz; g++)
            v[g] = base[g] * pow(s->gamma, (double)k);
        return true;
    }
    case CG_SCHED_EXPONENTIAL_LR:
        for (int g = 0; g < nz; g++)
            v[g] = base[g] * pow(s->gamma, (double)le);
        return true;
    case CG_SCHED_COSINE_ANNEALING_LR:
        if (s->T_max == 0) {
            *st = zero_division(false);
            return true;
        }
        for (int g = 0; g < nz; g++)
            v[g] = s->eta_min +
                   (base[g] - s->eta_min) *
                       (1 + cos(PI * (double)le / (double)s->T_max)) / 2;
        return true;
    case CG_SCHED_LINEAR_LR: {
        if (s->total_iters == 0) {
            *st = zero_division(false);
            return true;
        }
        int64_t m = s->total_iters < le ? s->total_iters : le;
        for (int g = 0; g < nz; g++)
            v[g] = base[g] *
                   (s->start_factor + (s->end_factor - s->start_factor) *
                                          (double)m / (double)s->total_iters);
        return true;
    }
    default:
        return false;
    }
}

/* ======================================================================
 * step
 * ====================================================================== */

static void print_lr(const cg_lr_scheduler *s, int g, double lr, bool has_epoch,
                     int64_t epoch)
{
    if (!s->verbose)
        return;
    if (has_epoch)
        printf("Epoch %.5lld: adjusting learning rate of group %d to %.4e.\n",
               (long long)epoch, g, lr);
    else
        printf("Adjusting learning rate of group %d to %.4e.\n", g, lr);
}

/* Records every group's lr as _last_lr. */
static void set_last_lr(cg_lr_scheduler *s)
{
    int ng = cg_optimizer_num_param_groups(s->opt);
    for (int g = 0; g < ng; g++)
        s->last_lr[g] = group_lr(s, g);
    s->nlast = ng;
}

/* _LRScheduler.step(epoch); nothing changes when it fails. */
static cg_status sched_step(cg_lr_scheduler *s, bool has_epoch, int64_t epoch)
{
    cg_status st = ensure_cap(s);
    if (st != CG_OK)
        return st;
    int64_t saved_epoch = s->last_epoch;
    s->step_count++;
    int n = 0;
    if (!has_epoch) {
        s->last_epoch++;
        st = get_lr(s, &n);
    } else {
        s->last_epoch = epoch;
        if (!closed_form(s, &n, &st))
            st = get_lr(s, &n);
    }
    if (st != CG_OK) {
        s->step_count--;
        s->last_epoch = saved_epoch;
        return st;
    }
    if (s->kind == CG_SCHED_ONE_CYCLE_LR && s->cycle_momentum)
        for (int g = 0; g < n; g++)
            cg_optimizer_set_option(s->opt, g, momentum_key(s), s->moms[g]);
    for (int g = 0; g < n; g++) {
        cg_optimizer_set_lr(s->opt, g, s->values[g]);
        print_lr(s, g, s->values[g], has_epoch, epoch);
    }
    set_last_lr(s);
    return CG_OK;
}

static cg_status sequential_step(cg_lr_scheduler *s)
{
    int64_t le = s->last_epoch + 1;
    int idx = bisect_right(s->milestones, s->nmilestones, le);
    cg_lr_scheduler *child = s->children[idx];
    cg_status st;
    if (idx > 0 && s->milestones[idx - 1] == le)
        st = sched_step(child, true, 0);
    else
        st = sched_step(child, false, 0);
    if (st != CG_OK)
        return st;
    s->last_epoch = le;
    memcpy(s->last_lr, child->last_lr, (size_t)child->nlast * sizeof(double));
    s->nlast = child->nlast;
    return CG_OK;
}

cg_status cg_lr_scheduler_step(cg_lr_scheduler *s)
{
    if (!s)
        return cg__optim_null("scheduler");
    if (s->kind == CG_SCHED_REDUCE_LR_ON_PLATEAU)
        return cg__optim_error(CG_ERR_TYPE,
                               "step() missing 1 required positional "
                               "argument: 'metrics'");
    if (s->kind == CG_SCHED_SEQUENTIAL_LR) {
        cg_status st = ensure_cap(s);
        return st != CG_OK ? st : sequential_step(s);
    }
    return sched_step(s, false, 0);
}

cg_status cg_lr_scheduler_get_last_lr(const cg_lr_scheduler *s, double *lrs,
                                      int cap, int *n)
{
    if (!s)
        return cg__optim_null("scheduler");
    if (s->nlast < 0)
        return cg__optim_error(CG_ERR_ATTRIBUTE,
                               "'%s' object has no attribute '_last_lr'",
                               cg_lr_scheduler_kind_name(s->kind));
    if (cap > 0 && !lrs)
        return cg__optim_null("lrs");
    for (int i = 0; i < s->nlast && i < cap; i++)
        lrs[i] = s->last_lr[i];
    if (n)
        *n = s->nlast;
    return CG_OK;
}

/* ======================================================================
 * Construction
 * ====================================================================== */

/* A scheduler with PyTorch's base state; `kind` decides the rest. */
static cg_status sched_alloc(cg_optimizer *opt, cg_lr_scheduler_kind kind,
                             int64_t last_epoch, bool verbose,
                             cg_lr_scheduler **out)
{
    cg_lr_scheduler *s = cg_calloc(1, sizeof *s);
    if (!s)
        return cg__optim_nomem(sizeof *s);
    s->kind = kind;
    s->opt = opt;
    s->last_epoch = last_epoch;
    s->verbose = verbose;
    s->nlast = -1;
    cg_status st = ensure_cap(s);
    int ng = cg_optimizer_num_param_groups(opt);
    if (st == CG_OK) {
        s->base_lrs = cg_calloc((size_t)ng + 1, sizeof(double));
        if (!s->base_lrs)
            st = cg__optim_nomem(((size_t)ng + 1) * sizeof(double));
    }
    if (st != CG_OK) {
        cg_lr_scheduler_free(s);
        return st;
    }
    *out = s;
    return CG_OK;
}

/* With last_epoch != -1 every group needs initial_lr (checked before
 * anything changes). */
static cg_status check_resume(cg_optimizer *opt, int64_t last_epoch)
{
    if (last_epoch == -1)
        return CG_OK;
    for (int g = 0; g < cg_optimizer_num_param_groups(opt); g++) {
        double v;
        if (cg_optimizer_get_option(opt, g, "initial_lr", &v) != CG_OK)
            return cg__optim_error(CG_ERR_INDEX,
                                   "\"param 'initial_lr' is not specified in "
                                   "param_groups[%d] when resuming an "
                                   "optimizer\"",
                                   g);
    }
    return CG_OK;
}

/* _LRScheduler.__init__ from initial_lr on: the groups are already
 * snapshotted by the caller, who restores them if this fails. */
static cg_status lr_scheduler_init(cg_lr_scheduler *s)
{
    int ng = cg_optimizer_num_param_groups(s->opt);
    cg_status st = CG_OK;
    for (int g = 0; g < ng && st == CG_OK; g++) {
        double v;
        if (s->last_epoch == -1 &&
            cg_optimizer_get_option(s->opt, g, "initial_lr", &v) != CG_OK)
            st = cg_optimizer_set_option(s->opt, g, "initial_lr",
                                         group_lr(s, g));
        if (st == CG_OK)
            st = cg_optimizer_get_option(s->opt, g, "initial_lr",
                                         &s->base_lrs[g]);
    }
    s->nbase = ng;
    if (st != CG_OK)
        return st;
    /* _initial_step */
    s->step_count = 0;
    return sched_step(s, false, 0);
}

/* The shared tail of every _LRScheduler constructor: snapshot, `setup`
 * (scheduler-specific group changes), init, and rollback on failure. */
static cg_status finish_new(cg_lr_scheduler *s,
                            cg_status (*setup)(cg_lr_scheduler *s, void *ctx),
                            void *ctx, cg_lr_scheduler **out)
{
    cg__groups_snapshot snap = {0, NULL};
    cg_status st = cg__groups_save(s->opt, &snap);
    if (st == CG_OK && setup)
        st = setup(s, ctx);
    if (st == CG_OK)
        st = lr_scheduler_init(s);
    if (st != CG_OK) {
        if (snap.groups)
            cg__groups_restore(s->opt, &snap);
        cg_lr_scheduler_free(s);
        return st;
    }
    cg__groups_discard(&snap);
    *out = s;
    return CG_OK;
}

static cg_status check_new(cg_optimizer *opt, const void *opts,
                           cg_lr_scheduler **out)
{
    if (!out)
        return cg__optim_null("out");
    if (!opt)
        return cg__optim_null("optimizer");
    if (!opts)
        return cg__optim_null("options");
    return CG_OK;
}

cg_step_lr_options cg_step_lr_defaults(int64_t step_size)
{
    return (cg_step_lr_options){.step_size = step_size,
                                .gamma = 0.1,
                                .last_epoch = -1,
                                .verbose = false};
}

cg_status cg_step_lr_new(cg_optimizer *opt, const cg_step_lr_options *o,
                         cg_lr_scheduler **out)
{
    cg_status st = check_new(opt, o, out);
    if (st == CG_OK)
        st = check_resume(opt, o->last_epoch);
    cg_lr_scheduler *s = NULL;
    if (st == CG_OK)
        st = sched_alloc(opt, CG_SCHED_STEP_LR, o->last_epoch, o->verbose, &s);
    if (st != CG_OK)
        return st;
    s->step_size = o->step_size;
    s->gamma = o->gamma;
    return finish_new(s, NULL, NULL, out);
}

cg_multi_step_lr_options cg_multi_step_lr_defaults(const int64_t *milestones,
                                                   int num_milestones)
{
    return (cg_multi_step_lr_options){.milestones = milestones,
                                      .num_milestones = num_milestones,
                                      .gamma = 0.1,
                                      .last_epoch = -1,
                                      .verbose = false};
}

cg_status cg_multi_step_lr_new(cg_optimizer *opt,
                               const cg_multi_step_lr_options *o,
                               cg_lr_scheduler **out)
{
    cg_status st = check_new(opt, o, out);
    if (st == CG_OK && o->num_milestones > 0 && !o->milestones)
        st = cg__optim_null("milestones");
    if (st == CG_OK)
        st = check_resume(opt, o->last_epoch);
    cg_lr_scheduler *s = NULL;
    if (st == CG_OK)
        st = sched_alloc(opt, CG_SCHED_MULTI_STEP_LR, o->last_epoch, o->verbose,
                         &s);
    if (st != CG_OK)
        return st;
    int nm = o->num_milestones > 0 ? o->num_milestones : 0;
    s->milestones = cg_malloc(((size_t)nm + 1) * sizeof(int64_t));
    if (!s->milestones) {
        cg_lr_scheduler_free(s);
        return cg__optim_nomem(((size_t)nm + 1) * sizeof(int64_t));
    }
    /* sorted(Counter(milestones).elements()) */
    for (int i = 0; i < nm; i++) {
        int64_t m = o->milestones[i];
        int j = i;
        for (; j > 0 && s->milestones[j - 1] > m; j--)
            s->milestones[j] = s->milestones[j - 1];
        s->milestones[j] = m;
    }
    s->nmilestones = nm;
    s->gamma = o->gamma;
    return finish_new(s, NULL, NULL, out);
}

cg_exponential_lr_options cg_exponential_lr_defaults(double gamma)
{
    return (cg_exponential_lr_options){
        .gamma = gamma, .last_epoch = -1, .verbose = false};
}

cg_status cg_exponential_lr_new(cg_optimizer *opt,
                                const cg_exponential_lr_options *o,
                                cg_lr_scheduler **out)
{
    cg_status st = check_new(opt, o, out);
    if (st == CG_OK)
        st = check_resume(opt, o->last_epoch);
    cg_lr_scheduler *s = NULL;
    if (st == CG_OK)
        st = sched_alloc(opt, CG_SCHED_EXPONENTIAL_LR, o->last_epoch,
                         o->verbose, &s);
    if (st != CG_OK)
        return st;
    s->gamma = o->gamma;
    return finish_new(s, NULL, NULL, out);
}

cg_cosine_annealing_lr_options cg_cosine_annealing_lr_defaults(int64_t T_max)
{
    return (cg_cosine_annealing_lr_options){
        .T_max = T_max, .eta_min = 0.0, .last_epoch = -1, .verbose = false};
}

cg_status cg_cosine_annealing_lr_new(cg_optimizer *opt,
                                     const cg_cosine_annealing_lr_options *o,
                                     cg_lr_scheduler **out)
{
    cg_status st = check_new(opt, o, out);
    if (st == CG_OK)
        st = check_resume(opt, o->last_epoch);
    cg_lr_scheduler *s = NULL;
    if (st == CG_OK)
        st = sched_alloc(opt, CG_SCHED_COSINE_ANNEALING_LR, o->last_epoch,
                         o->verbose, &s);
    if (st != CG_OK)
        return st;
    s->T_max = o->T_max;
    s->eta_min = o->eta_min;
    return finish_new(s, NULL, NULL, out);
}

cg_linear_lr_options cg_linear_lr_defaults(void)
{
    return (cg_linear_lr_options){.start_factor = 1.0 / 3,
                                  .end_factor = 1.0,
                                  .total_iters = 5,
                                  .last_epoch = -1,
                                  .verbose = false};
}

cg_status cg_linear_lr_new(cg_optimizer *opt, const cg_linear_lr_options *o,
                           cg_lr_scheduler **out)
{
    cg_status st = check_new(opt, o, out);
    if (st != CG_OK)
        return st;
    if (o->start_factor > 1.0 || o->start_factor < 0)
        return cg__optim_error(CG_ERR_VALUE,
                               "Starting multiplicative factor expected to "
                               "be between 0 and 1.");
    if (o->end_factor > 1.0 || o->end_factor < 0)
        return cg__optim_error(CG_ERR_VALUE,
                               "Ending multiplicative factor expected to be "
                               "between 0 and 1.");
    st = check_resume(opt, o->last_epoch);
    cg_lr_scheduler *s = NULL;
    if (st == CG_OK)
        st =
            sched_alloc(opt, CG_SCHED_LINEAR_LR, o->last_epoch, o->verbose, &s);
    if (st != CG_OK)
        return st;
    s->start_factor = o->start_factor;
    s->end_factor = o->end_factor;
    s->total_iters = o->total_iters;
    return finish_new(s, NULL, NULL, out);
}

/* ---- OneCycleLR ---------------------------------------------------------- */

cg_one_cycle_lr_options cg_one_cycle_lr_defaults(double max_lr)
{
    return (cg_one_cycle_lr_options){.max_lr = max_lr,
                                     .max_lrs = NULL,
                                     .num_max_lrs = 0,
                                     .total_steps = CG_NONE,
                                     .epochs = CG_NONE,
                                     .steps_per_epoch = CG_NONE,
                                     .pct_start = 0.3,
                                     .anneal_strategy = "cos",
                                     .cycle_momentum = true,
                                     .base_momentum = 0.85,
                                     .base_momentums = NULL,
                                     .num_base_momentums = 0,
                                     .max_momentum = 0.95,
                                     .max_momentums = NULL,
                                     .num_max_momentums = 0,
                                     .div_factor = 25.,
                                     .final_div_factor = 1e4,
                                     .three_phase = false,
                                     .last_epoch = -1,
                                     .verbose = false};
}

/* _format_param: a per-group list must have one value per group. */
static cg_status format_param(const char *name, int ngroups, const double *list,
                              int nlist)
{
    if (list && nlist != ngroups)
        return cg__optim_error(CG_ERR_VALUE,
                               "expected %d values for %s, got %d", ngroups,
                               name, nlist);
    return CG_OK;
}

static double param_at(const double *list, double scalar, int g)
{
    return list ? list[g] : scalar;
}

static cg_status one_cycle_setup(cg_lr_scheduler *s, void *ctx)
{
    const cg_one_cycle_lr_options *o = ctx;
    cg_optimizer *opt = s->opt;
    int ng = cg_optimizer_num_param_groups(opt);
    cg_status st = CG_OK;
    if (o->last_epoch == -1)
        for (int g = 0; g < ng && st == CG_OK; g++) {
            double max_lr = param_at(o->max_lrs, o->max_lr, g);
            double initial = max_lr / o->div_factor;
            st = cg_optimizer_set_option(opt, g, "initial_lr", initial);
            if (st == CG_OK)
                st = cg_optimizer_set_option(opt, g, "max_lr", max_lr);
            if (st == CG_OK)
                st = cg_optimizer_set_option(opt, g, "min_lr",
                                             initial / o->final_div_factor);
        }
    if (s->cycle_momentum && o->last_epoch == -1)
        for (int g = 0; g < ng && st == CG_OK; g++) {
            double m = param_at(o->max_momentums, o->max_momentum, g);
            double b = param_at(o->base_momentums, o->base_momentum, g);
            st = cg_optimizer_set_option(opt, g, momentum_key(s), m);
            if (st == CG_OK)
                st = cg_optimizer_set_option(opt, g, "max_momentum", m);
            if (st == CG_OK)
                st = cg_optimizer_set_option(opt, g, "base_momentum", b);
        }
    return st;
}

cg_status cg_one_cycle_lr_new(cg_optimizer *opt,
                              const cg_one_cycle_lr_options *o,
                              cg_lr_scheduler **out)
{
    cg_status st = check_new(opt, o, out);
    if (st != CG_OK)
        return st;
    int64_t total;
    if (o->total_steps == CG_NONE && o->epochs == CG_NONE &&
        o->steps_per_epoch == CG_NONE)
        return cg__optim_error(CG_ERR_VALUE, "You must define either "
                                             "total_steps OR (epochs AND "
                                             "steps_per_epoch)");
    if (o->total_steps != CG_NONE) {
        if (o->total_steps <= 0)
            return cg__optim_error(CG_ERR_VALUE,
                                   "Expected positive integer total_steps, "
                                   "but got %lld",
                                   (long long)o->total_steps);
        total = o->total_steps;
    } else {
        if (o->epochs == CG_NONE || o->steps_per_epoch == CG_NONE) {
            if (o->epochs != CG_NONE && o->epochs <= 0)
                return cg__optim_error(CG_ERR_VALUE,
                                       "Expected positive integer epochs, "
                                       "but got %lld",
                                       (long long)o->epochs);
            return cg__optim_error(CG_ERR_TYPE,
                                   "'<=' not supported between instances of "
                                   "'NoneType' and 'int'");
        }
        if (o->epochs <= 0)
            return cg__optim_error(CG_ERR_VALUE,
                                   "Expected positive integer epochs, but "
                                   "got %lld",
                                   (long long)o->epochs);
        if (o->steps_per_epoch <= 0)
            return cg__optim_error(CG_ERR_VALUE,
                                   "Expected positive integer "
                                   "steps_per_epoch, but got %lld",
                                   (long long)o->steps_per_epoch);
        total = o->epochs * o->steps_per_epoch;
    }
    char b[40];
    if (o->pct_start < 0 || o->pct_start > 1)
        return cg__optim_error(CG_ERR_VALUE,
                               "Expected float between 0 and 1 pct_start, "
                               "but got %s",
                               cg__pyfloat(o->pct_start, b, sizeof b));
    const char *as = o->anneal_strategy ? o->anneal_strategy : "None";
    if (strcmp(as, "cos") != 0 && strcmp(as, "linear") != 0)
        return cg__optim_error(CG_ERR_VALUE,
                               "anneal_strategy must by one of 'cos' or "
                               "'linear', instead got %s",
                               as);
    int ng = cg_optimizer_num_param_groups(opt);
    st = format_param("max_lr", ng, o->max_lrs, o->num_max_lrs);
    cg_optimizer_kind k = cg_optimizer_kind_of(opt);
    bool has_momentum = k == CG_OPTIM_SGD || k == CG_OPTIM_RMSPROP;
    bool has_betas = k == CG_OPTIM_ADAM || k == CG_OPTIM_ADAMW;
    if (st == CG_OK && o->cycle_momentum) {
        if (!has_momentum && !has_betas)
            return cg__optim_error(CG_ERR_VALUE,
                                   "optimizer must support momentum with "
                                   "`cycle_momentum` option enabled");
        st = format_param("max_momentum", ng, o->max_momentums,
                          o->num_max_momentums);
        if (st == CG_OK)
            st = format_param("base_momentum", ng, o->base_momentums,
                              o->num_base_momentums);
    }
    if (st == CG_OK)
        st = check_resume(opt, o->last_epoch);
    cg_lr_scheduler *s = NULL;
    if (st == CG_OK)
        st = sched_alloc(opt, CG_SCHED_ONE_CYCLE_LR, o->last_epoch, o->verbose,
                         &s);
    if (st != CG_OK)
        return st;
    s->total_steps = total;
    s->anneal_cos = strcmp(as, "cos") == 0;
    s->cycle_momentum = o->cycle_momentum;
    s->use_beta1 = has_betas;
    double pct = o->pct_start;
    if (o->three_phase) {
        s->nphases = 3;
        s->phases[0] = (phase){pct * (double)total - 1, "initial_lr", "max_lr",
                               "max_momentum", "base_momentum"};
        s->phases[1] = (phase){2 * pct * (double)total - 2, "max_lr",
                               "initial_lr", "base_momentum", "max_momentum"};
        s->phases[2] = (phase){(double)(total - 1), "initial_lr", "min_lr",
                               "max_momentum", "max_momentum"};
    } else {
        s->nphases = 2;
        s->phases[0] = (phase){pct * (double)total - 1, "initial_lr", "max_lr",
                               "max_momentum", "base_momentum"};
        s->phases[1] = (phase){(double)(total - 1), "max_lr", "min_lr",
                               "base_momentum", "max_momentum"};
    }
    return finish_new(s, one_cycle_setup, (void *)o, out);
}

/* ---- ReduceLROnPlateau ----------------------------------------------------
 */

cg_reduce_lr_on_plateau_options cg_reduce_lr_on_plateau_defaults(void)
{
    return (cg_reduce_lr_on_plateau_options){.mode = "min",
                                             .factor = 0.1,
                                             .patience = 10,
                                             .threshold = 1e-4,
                                             .threshold_mode = "rel",
                                             .cooldown = 0,
                                             .min_lr = 0.0,
                                             .min_lrs = NULL,
                                             .num_min_lrs = 0,
                                             .eps = 1e-8,
                                             .verbose = false};
}

cg_status cg_reduce_lr_on_plateau_new(cg_optimizer *opt,
                                      const cg_reduce_lr_on_plateau_options *o,
                                      cg_lr_scheduler **out)
{
    cg_status st = check_new(opt, o, out);
    if (st != CG_OK)
        return st;
    if (o->factor >= 1.0)
        return cg__optim_error(CG_ERR_VALUE, "Factor should be < 1.0.");
    int ng = cg_optimizer_num_param_groups(opt);
    if (o->min_lrs && o->num_min_lrs != ng)
        return cg__optim_error(CG_ERR_VALUE, "expected %d min_lrs, got %d", ng,
                               o->num_min_lrs);
    if (!o->mode || !o->threshold_mode)
        return cg__optim_null(!o->mode ? "mode" : "threshold_mode");
    bool mode_max = strcmp(o->mode, "max") == 0;
    if (!mode_max && strcmp(o->mode, "min") != 0)
        return cg__optim_error(CG_ERR_VALUE, "mode %s is unknown!", o->mode);
    bool rel = strcmp(o->threshold_mode, "rel") == 0;
    if (!rel && strcmp(o->threshold_mode, "abs") != 0)
        return cg__optim_error(CG_ERR_VALUE, "threshold mode %s is unknown!",
                               o->threshold_mode);
    cg_lr_scheduler *s = NULL;
    st = sched_alloc(opt, CG_SCHED_REDUCE_LR_ON_PLATEAU, 0, o->verbose, &s);
    if (st != CG_OK)
        return st;
    s->min_lrs = cg_malloc(((size_t)ng + 1) * sizeof(double));
    if (!s->min_lrs) {
        cg_lr_scheduler_free(s);
        return cg__optim_nomem(((size_t)ng + 1) * sizeof(double));
    }
    for (int g = 0; g < ng; g++)
        s->min_lrs[g] = param_at(o->min_lrs, o->min_lr, g);
    s->nmin_lrs = ng;
    s->factor = o->factor;
    s->patience = o->patience;
    s->cooldown = o->cooldown;
    s->threshold = o->threshold;
    s->eps = o->eps;
    s->mode_max = mode_max;
    s->rel = rel;
    s->best = mode_max ? -INFINITY : INFINITY; /* mode_worse */
    *out = s;
    return CG_OK;
}

static bool is_better(const cg_lr_scheduler *s, double a, double best)
{
    if (!s->mode_max && s->rel)
        return a < best * (1. - s->threshold);
    if (!s->mode_max)
        return a < best - s->threshold;
    if (s->rel)
        return a > best * (s->threshold + 1.);
    return a > best + s->threshold;
}

cg_status cg_reduce_lr_on_plateau_step(cg_lr_scheduler *s, double metrics)
{
    if (!s)
        return cg__optim_null("scheduler");
    if (s->kind != CG_SCHED_REDUCE_LR_ON_PLATEAU)
        return cg__optim_error(CG_ERR_TYPE,
                               "step() takes from 1 to 2 positional "
                               "arguments but 3 were given");
    int ng = cg_optimizer_num_param_groups(s->opt);
    cg_status st = ensure_cap(s);
    if (st != CG_OK)
        return st;
    /* the bookkeeping in locals first: a reduction over more groups than
     * min_lrs fails (IndexError) before anything changes */
    double current = metrics, best = s->best;
    int64_t bad = s->num_bad_epochs, cooldown_counter = s->cooldown_counter;
    if (is_better(s, current, best)) {
        best = current;
        bad = 0;
    } else {
        bad += 1;
    }
    if (cooldown_counter > 0) { /* in_cooldown */
        cooldown_counter -= 1;
        bad = 0;
    }
    if (bad > s->patience && ng > s->nmin_lrs)
        return cg__optim_error(CG_ERR_INDEX, "list index out of range");
    int64_t epoch = s->last_epoch + 1;
    s->last_epoch = epoch;
    s->best = best;
    s->num_bad_epochs = bad;
    s->cooldown_counter = cooldown_counter;
    if (s->num_bad_epochs > s->patience) {
        for (int g = 0; g < ng; g++) { /* _reduce_lr */
            double old_lr = group_lr(s, g);
            double prod = old_lr * s->factor;
            double new_lr = s->min_lrs[g] > prod ? s->min_lrs[g] : prod;
            if (old_lr - new_lr > s->eps) {
                cg_optimizer_set_lr(s->opt, g, new_lr);
                if (s->verbose)
                    printf("Epoch %.5lld: reducing learning rate of group %d "
                           "to %.4e.\n",
                           (long long)epoch, g, new_lr);
            }
        }
        s->cooldown_counter = s->cooldown;
        s->num_bad_epochs = 0;
    }
    set_last_lr(s);
    return CG_OK;
}

/* ---- SequentialLR ---------------------------------------------------------
 */

cg_status cg_sequential_lr_new(cg_optimizer *opt,
                               cg_lr_scheduler *const *schedulers,
                               int num_schedulers, const int64_t *milestones,
                               int num_milestones, int64_t last_epoch,
                               cg_lr_scheduler **out)
{
    if (!out)
        return cg__optim_null("out");
    if (!opt)
        return cg__optim_null("optimizer");
    if (num_schedulers > 0 && !schedulers)
        return cg__optim_null("schedulers");
    if (num_milestones > 0 && !milestones)
        return cg__optim_null("milestones");
    for (int i = 0; i < num_schedulers; i++) {
        if (!schedulers[i])
            return cg__optim_null("scheduler");
        if (schedulers[i]->opt != opt)
            return cg__optim_error(CG_ERR_VALUE,
                                   "Sequential Schedulers expects all "
                                   "schedulers to belong to the same "
                                   "optimizer, but got schedulers at index "
                                   "%d to be different than the optimizer "
                                   "passed in.",
                                   i);
    }
    if (num_milestones != num_schedulers - 1)
        return cg__optim_error(CG_ERR_VALUE,
                               "Sequential Schedulers expects number of "
                               "schedulers provided to be one more than the "
                               "number of milestone points, but got number "
                               "of schedulers %d and the number of "
                               "milestones to be equal to %d",
                               num_schedulers, num_milestones);
    for (int i = 0; i < num_schedulers; i++) {
        cg_lr_scheduler_kind k = schedulers[i]->kind;
        if (k == CG_SCHED_REDUCE_LR_ON_PLATEAU || k == CG_SCHED_SEQUENTIAL_LR)
            return cg__optim_error(CG_ERR_TYPE,
                                   "SequentialLR cannot chain a %s",
                                   cg_lr_scheduler_kind_name(k));
        for (int j = 0; j < i; j++)
            if (schedulers[j] == schedulers[i])
                return cg__optim_error(CG_ERR_TYPE,
                                       "SequentialLR got the same scheduler "
                                       "twice");
    }
    int ng = cg_optimizer_num_param_groups(opt);
    for (int g = 0; g < ng; g++) {
        double v;
        if (cg_optimizer_get_option(opt, g, "initial_lr", &v) != CG_OK)
            return cg__optim_key_error("initial_lr");
    }
    cg_lr_scheduler *s = NULL;
    cg_status st =
        sched_alloc(opt, CG_SCHED_SEQUENTIAL_LR, last_epoch + 1, false, &s);
    if (st != CG_OK)
        return st;
    size_t bytes = ((size_t)num_schedulers + 1) * sizeof *s->children;
    s->children = cg_malloc(bytes);
    s->milestones = cg_malloc(((size_t)num_milestones + 1) * sizeof(int64_t));
    cg__groups_snapshot snap = {0, NULL};
    if (!s->children || !s->milestones)
        st = cg__optim_nomem(bytes);
    if (st == CG_OK)
        st = cg__groups_save(opt, &snap);
    /* what the children had, to undo a failed initial step */
    int64_t *saved = NULL;
    if (st == CG_OK && !(saved = cg_malloc(((size_t)num_schedulers + 1) * 2 *
                                           sizeof(int64_t))))
        st =
            cg__optim_nomem(((size_t)num_schedulers + 1) * 2 * sizeof(int64_t));
    if (st == CG_OK && num_schedulers > 0)
        st = ensure_cap(schedulers[0]);
    if (st != CG_OK) {
        cg__groups_discard(&snap);
        cg_free(saved);
        cg_lr_scheduler_free(s);
        return st;
    }
    for (int i = 0; i < num_milestones; i++)
        s->milestones[i] = milestones[i];
    s->nmilestones = num_milestones;
    for (int g = 0; g < ng; g++) {
        double v;
        cg_optimizer_get_option(opt, g, "initial_lr", &v);
        cg_optimizer_set_lr(opt, g, v);
    }
    for (int i = 0; i < num_schedulers; i++) {
        saved[2 * i] = schedulers[i]->last_epoch;
        saved[2 * i + 1] = schedulers[i]->step_count;
        schedulers[i]->last_epoch -= 1;
    }
    if (num_schedulers > 0) {
        schedulers[0]->step_count = 0; /* _initial_step */
        st = sched_step(schedulers[0], false, 0);
    }
    if (st != CG_OK) {
        for (int i = 0; i < num_schedulers; i++) {
            schedulers[i]->last_epoch = saved[2 * i];
            schedulers[i]->step_count = saved[2 * i + 1];
        }
        cg__groups_restore(opt, &snap);
        cg_free(saved);
        cg_lr_scheduler_free(s);
        return st;
    }
    cg_free(saved);
    cg__groups_discard(&snap);
    for (int i = 0; i < num_schedulers; i++)
        s->children[i] = schedulers[i];
    s->nchildren = num_schedulers;
    if (num_schedulers > 0) {
        memcpy(s->last_lr, schedulers[0]->last_lr,
               (size_t)schedulers[0]->nlast * sizeof(double));
        s->nlast = schedulers[0]->nlast;
    } else {
        s->nlast = 0;
    }
    *out = s;
    return CG_OK;
}
