/* test_lr_scheduler.c -- optim/lr_scheduler.c against PyTorch 1.13
 * (tests/data/optim/gen_optim.py).
 *
 * TCases:
 *   sequence   sched_cases.tsv: get_last_lr() after construction and after
 *              every step, bitwise (OneCycleLR's cycled momentum too), for
 *              StepLR, MultiStepLR, ExponentialLR, CosineAnnealingLR (also
 *              resumed with last_epoch), LinearLR, OneCycleLR (cos, linear,
 *              three-phase, per-group lists, no momentum),
 *              ReduceLROnPlateau (min/max, rel/abs, cooldown, min_lrs, a
 *              NaN metric) and SequentialLR (with 1.13's quirks)
 *   errors     errors.tsv: every constructor message, exactly, and the
 *              optimizer untouched
 *   behaviour  last_epoch, initial_lr, transactional failures, ownership
 *   alloc      allocation failures injected one by one
 */
#include "testutil.h"
#include "cgrad_optim.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

/* The schedules are bitwise PyTorch's; this is the brief's bound, used
 * only to say how far off a failure is. */
#define TOL_LR 1e-15

static int count_rows(const char *rel)
{
    FILE *f = fopen(tu_data_path(rel), "rb");
    if (!f)
        return 1;
    int lines = 0, c, last = '\n';
    while ((c = fgetc(f)) != EOF) {
        lines += c == '\n';
        last = c;
    }
    fclose(f);
    return lines + (last != '\n') - 1;
}

/* A '|'-separated list of numbers. */
static int numbers(const char *s, double *out, int cap)
{
    int n = 0;
    while (s && *s && n < cap) {
        char *end;
        out[n++] = strtod(s, &end);
        s = *end == '|' ? end + 1 : NULL;
    }
    return n;
}

/* ---- optimizers with one parameter per group ------------------------------
 */

typedef struct rig {
    int ngroups;
    cg_tensor *p[4];
    cg_optimizer *opt;
} rig;

static rig make_rig(const char *optname, const double *lrs, int ng)
{
    rig r = {.ngroups = ng};
    cg_param_group g[4];
    union {
        cg_optimizer_kind kind;
        cg_sgd_options sgd;
        cg_adam_options adam;
        cg_rmsprop_options rmsprop;
        cg_adagrad_options adagrad;
    } o[4], d;
    for (int i = 0; i < ng; i++) {
        tu_ok(cg_zeros((int64_t[]){1}, 1, CG_FLOAT32, &r.p[i]));
        tu_ok(cg_tensor_requires_grad_(r.p[i], true));
    }
    for (int i = 0; i <= ng; i++) {
        double lr = lrs[i < ng ? i : 0];
        if (strcmp(optname, "SGD") == 0) {
            d.sgd = cg_sgd_defaults();
            d.sgd.lr = lr;
        } else if (strcmp(optname, "Adam") == 0) {
            d.adam = cg_adam_defaults();
            d.adam.lr = lr;
        } else if (strcmp(optname, "AdamW") == 0) {
            d.adam = cg_adamw_defaults();
            d.adam.lr = lr;
        } else if (strcmp(optname, "RMSprop") == 0) {
            d.rmsprop = cg_rmsprop_defaults();
            d.rmsprop.lr = lr;
        } else {
            ck_assert_str_eq(optname, "Adagrad");
            d.adagrad = cg_adagrad_defaults();
            d.adagrad.lr = lr;
        }
        if (i < ng) {
            o[i] = d;
            g[i] = (cg_param_group){&r.p[i], 1, &o[i]};
        }
    }
    cg_status st;
    switch (d.kind) {
    case CG_OPTIM_SGD:
        st = cg_sgd_new_groups(g, ng, &d.sgd, &r.opt);
        break;
    case CG_OPTIM_ADAM:
        st = cg_adam_new_groups(g, ng, &d.adam, &r.opt);
        break;
    case CG_OPTIM_ADAMW:
        st = cg_adamw_new_groups(g, ng, &d.adam, &r.opt);
        break;
    case CG_OPTIM_RMSPROP:
        st = cg_rmsprop_new_groups(g, ng, &d.rmsprop, &r.opt);
        break;
    default:
        st = cg_adagrad_new_groups(g, ng, &d.adagrad, &r.opt);
        break;
    }
    tu_ok(st);
    return r;
}

static void free_rig(rig *r)
{
    cg_optimizer_free(r->opt);
    for (int i = 0; i < r->ngroups; i++)
        cg_tensor_release(r->p[i]);
}

/* ---- schedulers from gen_optim.py's spec strings ---------------------------
 */

static double num(const char *args, const char *key, double dflt)
{
    char b[64];
    const char *v = tu_opt_value(args, key, b, sizeof b);
    return v ? strtod(v, NULL) : dflt;
}

static int64_t inum(const char *args, const char *key, int64_t dflt)
{
    char b[64];
    const char *v = tu_opt_value(args, key, b, sizeof b);
    return v ? strtoll(v, NULL, 10) : dflt;
}

static bool flag(const char *args, const char *key, bool dflt)
{
    char b[8];
    const char *v = tu_opt_value(args, key, b, sizeof b);
    return v ? strcmp(v, "1") == 0 : dflt;
}

/* Splits "a;b(c;d);e" at top-level ';' in place. */
static int split_top(char *s, char **out, int cap)
{
    int n = 0, depth = 0;
    out[n++] = s;
    for (char *p = s; *p && n < cap; p++) {
        if (*p == '(')
            depth++;
        else if (*p == ')')
            depth--;
        else if (*p == ';' && depth == 0) {
            *p = '\0';
            out[n++] = p + 1;
        }
    }
    return n;
}

/* Lists kept alive while a scheduler is built (OneCycleLR, plateau). */
static double lists[3][8];
static int64_t ilist[16];
/* gen_optim.py gives a resumed scheduler's groups an initial_lr; its error
 * rows do not */
static bool auto_initial_lr = true;

static cg_status build(cg_optimizer *opt, const char *spec,
                       cg_lr_scheduler **out)
{
    char name[32], body[512];
    const char *lp = strchr(spec, '(');
    ck_assert_ptr_nonnull(lp);
    snprintf(name, sizeof name, "%.*s", (int)(lp - spec), spec);
    snprintf(body, sizeof body, "%.*s", (int)(strlen(lp) - 2), lp + 1);
    int64_t le = inum(body, "last_epoch", -1);
    if (le != -1 && auto_initial_lr) /* setdefault('initial_lr', lr) */
        for (int g = 0; g < cg_optimizer_num_param_groups(opt); g++) {
            double v;
            if (cg_optimizer_get_option(opt, g, "initial_lr", &v) != CG_OK) {
                tu_ok(cg_optimizer_get_lr(opt, g, &v));
                tu_ok(cg_optimizer_set_option(opt, g, "initial_lr", v));
            }
        }
    char b[128];
    if (strcmp(name, "StepLR") == 0) {
        cg_step_lr_options o = cg_step_lr_defaults(inum(body, "step_size", 1));
        o.gamma = num(body, "gamma", 0.1);
        o.last_epoch = le;
        return cg_step_lr_new(opt, &o, out);
    }
    if (strcmp(name, "MultiStepLR") == 0) {
        double m[16];
        int nm = numbers(tu_opt_value(body, "milestones", b, sizeof b), m, 16);
        for (int i = 0; i < nm; i++)
            ilist[i] = (int64_t)m[i];
        cg_multi_step_lr_options o = cg_multi_step_lr_defaults(ilist, nm);
        o.gamma = num(body, "gamma", 0.1);
        o.last_epoch = le;
        return cg_multi_step_lr_new(opt, &o, out);
    }
    if (strcmp(name, "ExponentialLR") == 0) {
        cg_exponential_lr_options o =
            cg_exponential_lr_defaults(num(body, "gamma", 0.1));
        o.last_epoch = le;
        return cg_exponential_lr_new(opt, &o, out);
    }
    if (strcmp(name, "CosineAnnealingLR") == 0) {
        cg_cosine_annealing_lr_options o =
            cg_cosine_annealing_lr_defaults(inum(body, "T_max", 1));
        o.eta_min = num(body, "eta_min", 0);
        o.last_epoch = le;
        return cg_cosine_annealing_lr_new(opt, &o, out);
    }
    if (strcmp(name, "LinearLR") == 0) {
        cg_linear_lr_options o = cg_linear_lr_defaults();
        o.start_factor = num(body, "start_factor", o.start_factor);
        o.end_factor = num(body, "end_factor", o.end_factor);
        o.total_iters = inum(body, "total_iters", o.total_iters);
        o.last_epoch = le;
        return cg_linear_lr_new(opt, &o, out);
    }
    if (strcmp(name, "OneCycleLR") == 0) {
        cg_one_cycle_lr_options o =
            cg_one_cycle_lr_defaults(num(body, "max_lr", 0.1));
        if (tu_opt_value(body, "max_lrs", b, sizeof b)) {
            o.num_max_lrs = numbers(b, lists[0], 8);
            o.max_lrs = lists[0];
        }
        if (tu_opt_value(body, "base_momentums", b, sizeof b)) {
            o.num_base_momentums = numbers(b, lists[1], 8);
            o.base_momentums = lists[1];
        }
        if (tu_opt_value(body, "max_momentums", b, sizeof b)) {
            o.num_max_momentums = numbers(b, lists[2], 8);
            o.max_momentums = lists[2];
        }
        o.total_steps = inum(body, "total_steps", CG_NONE);
        o.epochs = inum(body, "epochs", CG_NONE);
        o.steps_per_epoch = inum(body, "steps_per_epoch", CG_NONE);
        o.pct_start = num(body, "pct_start", o.pct_start);
        o.div_factor = num(body, "div_factor", o.div_factor);
        o.final_div_factor = num(body, "final_div_factor", o.final_div_factor);
        o.base_momentum = num(body, "base_momentum", o.base_momentum);
        o.max_momentum = num(body, "max_momentum", o.max_momentum);
        static char strategy[32];
        if (tu_opt_value(body, "anneal_strategy", strategy, sizeof strategy))
            o.anneal_strategy = strategy;
        o.three_phase = flag(body, "three_phase", false);
        o.cycle_momentum = flag(body, "cycle_momentum", true);
        o.last_epoch = le;
        return cg_one_cycle_lr_new(opt, &o, out);
    }
    if (strcmp(name, "ReduceLROnPlateau") == 0) {
        cg_reduce_lr_on_plateau_options o = cg_reduce_lr_on_plateau_defaults();
        o.factor = num(body, "factor", o.factor);
        o.threshold = num(body, "threshold", o.threshold);
        o.eps = num(body, "eps", o.eps);
        o.patience = inum(body, "patience", o.patience);
        o.cooldown = inum(body, "cooldown", o.cooldown);
        static char mode[32], tmode[32];
        if (tu_opt_value(body, "mode", mode, sizeof mode))
            o.mode = mode;
        if (tu_opt_value(body, "threshold_mode", tmode, sizeof tmode))
            o.threshold_mode = tmode;
        if (tu_opt_value(body, "min_lrs", b, sizeof b)) {
            o.num_min_lrs = numbers(b, lists[0], 8);
            o.min_lrs = lists[0];
        }
        o.min_lr = num(body, "min_lr", 0);
        return cg_reduce_lr_on_plateau_new(opt, &o, out);
    }
    ck_assert_str_eq(name, "SequentialLR");
    char *parts[8];
    int np = split_top(body, parts, 8);
    double m[8];
    int nm = numbers(tu_opt_value(parts[0], "milestones", b, sizeof b), m, 8);
    int64_t ms[8];
    for (int i = 0; i < nm; i++)
        ms[i] = (int64_t)m[i];
    cg_lr_scheduler *kids[8];
    for (int i = 1; i < np; i++)
        tu_ok(build(opt, parts[i], &kids[i - 1]));
    cg_status st = cg_sequential_lr_new(opt, kids, np - 1, ms, nm, -1, out);
    if (st != CG_OK)
        for (int i = 0; i < np - 1; i++)
            cg_lr_scheduler_free(kids[i]);
    return st;
}

/* ======================================================================
 * sequence
 * ====================================================================== */

static double *npy_doubles(const char *rel, int64_t *n, int64_t *cols)
{
    cg_tensor *t = tu_load(rel);
    *n = cg_tensor_numel(t);
    *cols = cg_tensor_dim(t) == 2 ? cg_tensor_shape(t)[1] : 1;
    double *v = malloc(sizeof(double) * (size_t)(*n + 1));
    tu_ok(cg_tensor_to_doubles(t, v, *n));
    cg_tensor_release(t);
    return v;
}

static void assert_lr(double got, double want, const char *name, int row, int g,
                      const char *what)
{
    ck_assert_msg(
        memcmp(&got, &want, sizeof got) == 0 || (isnan(got) && isnan(want)),
        "%s step %d group %d: %s %.17g, PyTorch's %.17g (rel. "
        "error %.3g, bound %.0e)",
        name, row, g, what, got, want, fabs(got - want) / fabs(want), TOL_LR);
}

START_TEST(test_sequence)
{
    tu_table t = tu_table_load("optim/sched_cases.tsv");
    int r = _i;
    const char *name = tu_table_cell(&t, r, "name");
    const char *spec = tu_table_cell(&t, r, "spec");
    double lrs[4];
    int ng = numbers(tu_table_cell(&t, r, "lrs"), lrs, 4);
    int steps = atoi(tu_table_cell(&t, r, "steps"));
    double metrics[64];
    int nmetrics = strcmp(tu_table_cell(&t, r, "metrics"), "-") == 0
                       ? 0
                       : numbers(tu_table_cell(&t, r, "metrics"), metrics, 64);
    rig rg = make_rig(tu_table_cell(&t, r, "optimizer"), lrs, ng);
    cg_lr_scheduler *s = NULL;
    tu_ok(build(rg.opt, spec, &s));
    bool plateau = cg_lr_scheduler_kind_of(s) == CG_SCHED_REDUCE_LR_ON_PLATEAU;

    char rel[128];
    int64_t n, cols;
    snprintf(rel, sizeof rel, "optim/sched/%s.npy", name);
    double *want = npy_doubles(rel, &n, &cols);
    ck_assert_int_eq(cols, ng);
    ck_assert_int_eq(n, (int64_t)(steps + 1) * ng);
    double *mom = NULL;
    const char *mkey = NULL;
    if (strstr(spec, "OneCycleLR")) {
        int64_t mn, mc;
        snprintf(rel, sizeof rel, "optim/sched/%s_mom.npy", name);
        mom = npy_doubles(rel, &mn, &mc);
        cg_optimizer_kind k = cg_optimizer_kind_of(rg.opt);
        mkey =
            k == CG_OPTIM_ADAM || k == CG_OPTIM_ADAMW ? "betas.0" : "momentum";
    }
    for (int row = 0; row <= steps; row++) {
        if (row > 0) {
            if (plateau)
                tu_ok(cg_reduce_lr_on_plateau_step(s, metrics[row - 1]));
            else
                tu_ok(cg_lr_scheduler_step(s));
        }
        double got[4];
        int cnt = -1;
        if (plateau && row == 0) {
            tu_fails(cg_lr_scheduler_get_last_lr(s, got, 4, &cnt),
                     CG_ERR_ATTRIBUTE,
                     "'ReduceLROnPlateau' object has no attribute '_last_lr'");
            for (int g = 0; g < ng; g++)
                tu_ok(cg_optimizer_get_lr(rg.opt, g, &got[g]));
        } else {
            tu_ok(cg_lr_scheduler_get_last_lr(s, got, 4, &cnt));
            ck_assert_int_eq(cnt, ng);
        }
        for (int g = 0; g < ng; g++) {
            assert_lr(got[g], want[row * ng + g], name, row, g, "lr");
            double cur;
            tu_ok(cg_optimizer_get_lr(rg.opt, g, &cur));
            assert_lr(cur, want[row * ng + g], name, row, g, "group lr");
            if (mom) {
                double m;
                tu_ok(cg_optimizer_get_option(rg.opt, g, mkey, &m));
                assert_lr(m, mom[row * ng + g], name, row, g, "momentum");
            }
        }
    }
    ck_assert_int_eq(nmetrics, plateau ? steps : 0);
    free(want);
    free(mom);
    cg_lr_scheduler_free(s);
    free_rig(&rg);
    tu_table_free(&t);
}
END_TEST

/* ======================================================================
 * errors
 * ====================================================================== */

START_TEST(test_errors)
{
    tu_table t = tu_table_load("optim/errors.tsv");
    int checked = 0;
    auto_initial_lr = false;
    for (int r = 0; r < t.nrows; r++) {
        const char *what = tu_table_cell(&t, r, "what");
        const char *args = tu_table_cell(&t, r, "args");
        const char *msg = tu_table_cell(&t, r, "message");
        const char *exc = tu_table_cell(&t, r, "exception");
        cg_status want = strcmp(exc, "ValueError") == 0  ? CG_ERR_VALUE
                         : strcmp(exc, "KeyError") == 0  ? CG_ERR_INDEX
                         : strcmp(exc, "TypeError") == 0 ? CG_ERR_TYPE
                                                         : CG_ERR_RUNTIME;
        bool sched = strstr(what, "LR") != NULL ||
                     strcmp(what, "ReduceLROnPlateau") == 0;
        if (!sched)
            continue; /* the optimizers' rows: test_optim.c */
        double lr = 0.1;
        rig rg = make_rig(strncmp(args, "adagrad", 7) == 0 ? "Adagrad" : "SGD",
                          &lr, 1);
        if (strncmp(args, "adagrad", 7) != 0)
            tu_ok(cg_optimizer_set_option(rg.opt, 0, "momentum", 0.9));
        const char *a = strncmp(args, "adagrad,", 8) == 0 ? args + 8 : args;
        cg_lr_scheduler *s = (cg_lr_scheduler *)&t, *const sentinel = s;
        cg_status st;
        char spec[256];
        if (strcmp(what, "SequentialLR") == 0) {
            double lr2 = 0.1;
            rig other = make_rig("SGD", &lr2, 1);
            cg_lr_scheduler *k1 = NULL, *k2 = NULL;
            tu_ok(build(rg.opt, "StepLR(step_size=3)", &k1));
            if (strcmp(args, "other_optimizer") == 0) {
                tu_ok(build(other.opt, "StepLR(step_size=3)", &k2));
                cg_lr_scheduler *kids[2] = {k1, k2};
                st = cg_sequential_lr_new(rg.opt, kids, 2, (int64_t[]){2}, 1,
                                          -1, &s);
            } else {
                tu_ok(build(rg.opt, "ExponentialLR(gamma=0.9)", &k2));
                cg_lr_scheduler *kids[2] = {k1, k2};
                st = cg_sequential_lr_new(rg.opt, kids, 2, NULL, 0, -1, &s);
            }
            cg_lr_scheduler_free(k1);
            cg_lr_scheduler_free(k2);
            free_rig(&other);
        } else if (strcmp(args, "step_past_end") == 0) {
            cg_lr_scheduler *oc = NULL;
            tu_ok(build(rg.opt, "OneCycleLR(max_lr=0.1,total_steps=3)", &oc));
            st = CG_OK;
            for (int i = 0; i < 5 && st == CG_OK; i++)
                st = cg_lr_scheduler_step(oc);
            /* nothing moved: the last good lr and last_epoch stay */
            ck_assert_int_eq(cg_lr_scheduler_last_epoch(oc), 3);
            cg_lr_scheduler_free(oc);
        } else {
            snprintf(spec, sizeof spec, "%s(%s)", what, a);
            st = build(rg.opt, spec, &s);
        }
        ck_assert_msg(st == want, "%s(%s): %s (%s), expected %s", what, args,
                      cg_status_name(st), cg_last_error(), exc);
        ck_assert_str_eq(cg_last_error(), msg);
        ck_assert_ptr_eq(s, sentinel);
        /* the optimizer's group is as it was: lr 0.1, no scheduler keys */
        double v;
        tu_ok(cg_optimizer_get_lr(rg.opt, 0, &v));
        if (strcmp(args, "step_past_end") != 0 &&
            strcmp(what, "SequentialLR") != 0) {
            ck_assert(v == 0.1);
            ck_assert(cg_optimizer_get_option(rg.opt, 0, "initial_lr", &v) ==
                      CG_ERR_INDEX);
        }
        free_rig(&rg);
        checked++;
    }
    ck_assert_int_eq(checked, 20);
    tu_table_free(&t);
}
END_TEST

/* ======================================================================
 * behaviour
 * ====================================================================== */

START_TEST(test_behaviour)
{
    double lr = 0.1;
    rig rg = make_rig("SGD", &lr, 1);
    cg_lr_scheduler *s = NULL;
    cg_step_lr_options so = cg_step_lr_defaults(2);
    tu_ok(cg_step_lr_new(rg.opt, &so, &s));
    ck_assert_int_eq(cg_lr_scheduler_last_epoch(s), 0);
    ck_assert_int_eq(cg_lr_scheduler_kind_of(s), CG_SCHED_STEP_LR);
    ck_assert_str_eq(cg_lr_scheduler_kind_name(CG_SCHED_ONE_CYCLE_LR),
                     "OneCycleLR");
    double v;
    tu_ok(cg_optimizer_get_option(rg.opt, 0, "initial_lr", &v));
    ck_assert(v == 0.1);
    /* the count alone */
    int n = -1;
    tu_ok(cg_lr_scheduler_get_last_lr(s, NULL, 0, &n));
    ck_assert_int_eq(n, 1);
    /* step() on a plateau scheduler, and the plateau step on another */
    tu_fails(cg_reduce_lr_on_plateau_step(s, 1.0), CG_ERR_TYPE,
             "step() takes from 1 to 2 positional arguments but 3 were "
             "given");
    cg_lr_scheduler *p = NULL;
    cg_reduce_lr_on_plateau_options po = cg_reduce_lr_on_plateau_defaults();
    tu_ok(cg_reduce_lr_on_plateau_new(rg.opt, &po, &p));
    tu_fails(cg_lr_scheduler_step(p), CG_ERR_TYPE,
             "step() missing 1 required positional argument: 'metrics'");
    /* SequentialLR refuses plateau children and repeats */
    cg_lr_scheduler *kids[2] = {s, p}, *seq = NULL;
    tu_fails(cg_sequential_lr_new(rg.opt, kids, 2, (int64_t[]){3}, 1, -1, &seq),
             CG_ERR_TYPE, "SequentialLR cannot chain a ReduceLROnPlateau");
    kids[1] = s;
    tu_fails(cg_sequential_lr_new(rg.opt, kids, 2, (int64_t[]){3}, 1, -1, &seq),
             CG_ERR_TYPE, "SequentialLR got the same scheduler twice");
    cg_lr_scheduler_free(p);
    cg_lr_scheduler_free(s);

    /* CosineAnnealingLR with T_max 0: PyTorch's ZeroDivisionError at the
     * second step (after the lr-preserving first one); nothing changes */
    cg_cosine_annealing_lr_options co = cg_cosine_annealing_lr_defaults(0);
    tu_ok(cg_cosine_annealing_lr_new(rg.opt, &co, &s));
    tu_fails(cg_lr_scheduler_step(s), CG_ERR_VALUE,
             "integer division or modulo by zero");
    ck_assert_int_eq(cg_lr_scheduler_last_epoch(s), 0);
    cg_lr_scheduler_free(s);

    /* OneCycleLR with epochs but no steps_per_epoch: Python's TypeError */
    cg_one_cycle_lr_options oo = cg_one_cycle_lr_defaults(0.1);
    oo.epochs = 3;
    tu_fails(cg_one_cycle_lr_new(rg.opt, &oo, &s), CG_ERR_TYPE,
             "'<=' not supported between instances of 'NoneType' and "
             "'int'");
    /* a OneCycleLR on SGD cycles "momentum" */
    oo = cg_one_cycle_lr_defaults(0.5);
    oo.total_steps = 10;
    tu_ok(cg_one_cycle_lr_new(rg.opt, &oo, &s));
    tu_ok(cg_optimizer_get_option(rg.opt, 0, "momentum", &v));
    ck_assert(v == 0.95);
    tu_ok(cg_optimizer_get_option(rg.opt, 0, "max_lr", &v));
    ck_assert(v == 0.5);
    cg_lr_scheduler_free(s);
    free_rig(&rg);
}
END_TEST

/* verbose prints PyTorch's lines to stdout */
START_TEST(test_verbose)
{
    double lr = 0.1;
    rig rg = make_rig("SGD", &lr, 1);
    char path[] = "/tmp/cg_verbose_XXXXXX";
    int fd = mkstemp(path);
    ck_assert_int_ge(fd, 0);
    fflush(stdout);
    int saved = dup(1);
    ck_assert_int_ge(saved, 0);
    ck_assert_int_ge(dup2(fd, 1), 0);
    cg_lr_scheduler *s = NULL, *p = NULL;
    cg_exponential_lr_options eo = cg_exponential_lr_defaults(0.5);
    eo.verbose = true;
    tu_ok(cg_exponential_lr_new(rg.opt, &eo, &s));
    tu_ok(cg_lr_scheduler_step(s));
    cg_reduce_lr_on_plateau_options po = cg_reduce_lr_on_plateau_defaults();
    po.patience = 0;
    po.verbose = true;
    tu_ok(cg_reduce_lr_on_plateau_new(rg.opt, &po, &p));
    tu_ok(cg_reduce_lr_on_plateau_step(p, 1.0));
    tu_ok(cg_reduce_lr_on_plateau_step(p, 2.0));
    fflush(stdout);
    dup2(saved, 1);
    close(saved);
    char text[512] = "";
    ssize_t got = pread(fd, text, sizeof text - 1, 0);
    ck_assert_int_ge(got, 0);
    text[got] = '\0';
    close(fd);
    remove(path);
    ck_assert_str_eq(text, "Adjusting learning rate of group 0 to 1.0000e-01.\n"
                           "Adjusting learning rate of group 0 to 5.0000e-02.\n"
                           "Epoch 00002: reducing learning rate of group 0 "
                           "to 5.0000e-03.\n");
    cg_lr_scheduler_free(p);
    cg_lr_scheduler_free(s);
    free_rig(&rg);
}
END_TEST

/* ======================================================================
 * alloc
 * ====================================================================== */

static cg_status sched_scenario(void *ctx)
{
    cg_tensor **params = ctx;
    cg_adam_options ao = cg_adam_defaults();
    cg_adam_options g1 = cg_adam_defaults();
    g1.lr = 0.2;
    cg_param_group groups[2] = {{&params[0], 1, NULL}, {&params[1], 1, &g1}};
    cg_optimizer *opt = NULL;
    cg_status st = cg_adam_new_groups(groups, 2, &ao, &opt);
    if (st != CG_OK)
        return st;
    cg_lr_scheduler *a = NULL, *b = NULL, *c = NULL, *seq = NULL, *p = NULL;
    int64_t ms[2] = {2, 4};
    cg_multi_step_lr_options mo = cg_multi_step_lr_defaults(ms, 2);
    cg_linear_lr_options lo = cg_linear_lr_defaults();
    cg_one_cycle_lr_options oo = cg_one_cycle_lr_defaults(0.3);
    oo.total_steps = 20;
    cg_reduce_lr_on_plateau_options po = cg_reduce_lr_on_plateau_defaults();
    st = cg_linear_lr_new(opt, &lo, &a);
    if (st == CG_OK)
        st = cg_multi_step_lr_new(opt, &mo, &b);
    if (st == CG_OK)
        st = cg_one_cycle_lr_new(opt, &oo, &c);
    if (st == CG_OK) {
        cg_lr_scheduler *kids[3] = {a, b, c};
        st = cg_sequential_lr_new(opt, kids, 3, (int64_t[]){3, 6}, 2, -1, &seq);
        if (st == CG_OK)
            a = b = c = NULL; /* owned by seq now */
    }
    for (int i = 0; i < 8 && st == CG_OK; i++)
        st = cg_lr_scheduler_step(seq);
    if (st == CG_OK)
        st = cg_reduce_lr_on_plateau_new(opt, &po, &p);
    if (st == CG_OK)
        st = cg_reduce_lr_on_plateau_step(p, 0.5);
    cg_lr_scheduler_free(p);
    cg_lr_scheduler_free(seq);
    cg_lr_scheduler_free(a);
    cg_lr_scheduler_free(b);
    cg_lr_scheduler_free(c);
    cg_optimizer_free(opt);
    return st;
}

START_TEST(test_alloc)
{
    cg_tensor *params[2];
    for (int i = 0; i < 2; i++)
        tu_ok(cg_zeros((int64_t[]){3}, 1, CG_FLOAT32, &params[i]));
    long n = tu_alloc_sweep(sched_scenario, params, "schedulers");
    ck_assert_int_gt(n, 10);
    for (int i = 0; i < 2; i++)
        cg_tensor_release(params[i]);
}
END_TEST

Suite *lr_scheduler_suite(void)
{
    Suite *s = suite_create("lr_scheduler");
    TCase *tc = tcase_create("sequence");
    tcase_add_loop_test(tc, test_sequence, 0,
                        count_rows("optim/sched_cases.tsv"));
    suite_add_tcase(s, tc);
    tc = tcase_create("errors");
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);
    tc = tcase_create("behaviour");
    tcase_add_test(tc, test_behaviour);
    tcase_add_test(tc, test_verbose);
    suite_add_tcase(s, tc);
    tc = tcase_create("alloc");
    tcase_set_timeout(tc, 60);
    tcase_add_test(tc, test_alloc);
    suite_add_tcase(s, tc);
    return s;
}
