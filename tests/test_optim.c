/* test_optim.c -- optim/: the optimizers (SGD, Adam, AdamW, RMSprop,
 * Adagrad), their state dicts, clip_grad_norm_, randperm and the
 * DataLoader, against PyTorch 1.13 (tests/data/optim/gen_optim.py).
 *
 * TCases:
 *   trajectory  optim_cases.tsv: 20 steps of every case on the test problem
 *               (a transposed parameter, one without .grad, one or two
 *               groups), every step's parameters bitwise PyTorch's for
 *               float32/float64, and for complex when .grad is a copy of
 *               the parameter; complex through the loss within TOL_* (the
 *               core's complex gradient is up to 1 ulp off PyTorch's)
 *   state       the state dict after 10 steps: PyTorch's names, kinds,
 *               numbers and tensors; resuming from it (ours, and
 *               PyTorch's own state dict imported) continues bitwise;
 *               load_state_dict's checks leave the optimizer unchanged
 *   behaviour   zero_grad, skipped parameters, version counters, groups and
 *               options, add_param_group, repr, transactional steps
 *   errors      errors.tsv: every constructor message, exactly
 *   clip        clip_cases.tsv: clip_grad_norm_ totals and clipped grads
 *   data        randperm.tsv and loader.tsv, bitwise, RNG streams included
 *   alloc       allocation failures injected one by one
 */
#include "testutil.h"
#include "cgrad_optim.h"
#include "simd_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Real trajectories are bitwise. With a complex loss the gradient itself
 * (the core's complex multiply in MulBackward0) is up to 1 ulp off
 * PyTorch's, and 20 steps carry that along; these bounds hold it. The
 * optimizers' own complex arithmetic is bitwise (the "param" cases). */
#define TOL_F64 1e-12
#define TOL_F32 1e-6
#define STEPS 20
#define SPLIT 10
#define NPARAMS 4
#define NVALUES 18 /* 6 + 4 + 6 + 2 elements */

static cg_dtype dtype_of(const char *s)
{
    if (strcmp(s, "float32") == 0)
        return CG_FLOAT32;
    if (strcmp(s, "float64") == 0)
        return CG_FLOAT64;
    if (strcmp(s, "complex64") == 0)
        return CG_COMPLEX64;
    ck_assert_str_eq(s, "complex128");
    return CG_COMPLEX128;
}

/* ======================================================================
 * The test problem: P0 (2,3), P1 (4,), P2 (3,2) transposed, P3 (2,) unused
 * ====================================================================== */

typedef struct problem {
    cg_tensor *p[NPARAMS];
    cg_tensor *coef[3], *target[3];
    bool grad_is_param; /* .grad = p.clone() instead of the loss's */
} problem;

static const int64_t SHAPE[NPARAMS][2] = {{2, 3}, {4, 0}, {3, 2}, {2, 0}};
static const int NDIM[NPARAMS] = {2, 1, 2, 1};
static const int64_t OFFSET[NPARAMS] = {0, 6, 10, 16};
static const int64_t COUNT[NPARAMS] = {6, 4, 6, 2};

static cg_tensor *piece(cg_tensor *flat, int64_t start, int k)
{
    cg_tensor *n = NULL, *r = NULL, *c = NULL;
    tu_ok(cg_tensor_narrow(flat, 0, start, COUNT[k], &n));
    tu_ok(cg_tensor_reshape(n, SHAPE[k], NDIM[k], &r));
    tu_ok(cg_tensor_clone(r, &c));
    cg_tensor_release(n);
    cg_tensor_release(r);
    return c;
}

static problem make_problem(cg_dtype dt)
{
    char rel[64];
    snprintf(rel, sizeof rel, "optim/problem_%s.npy", cg_dtype_name(dt));
    cg_tensor *flat = tu_load(rel);
    problem pb = {.grad_is_param = false};
    for (int k = 0; k < NPARAMS; k++) {
        cg_tensor *v = piece(flat, OFFSET[k], k);
        if (k == 2) {
            /* base (2, 3) = P2^T contiguous; P2 = base.t(), a leaf view */
            cg_tensor *t = NULL, *base = NULL;
            tu_ok(cg_tensor_t(v, &t));
            tu_ok(cg_tensor_contiguous(t, &base));
            cg_tensor_release(t);
            tu_ok(cg_tensor_t(base, &pb.p[k]));
            cg_tensor_release(base);
            cg_tensor_release(v);
            ck_assert(!cg_tensor_is_contiguous(pb.p[k]));
        } else {
            pb.p[k] = v;
        }
        tu_ok(cg_tensor_requires_grad_(pb.p[k], true));
        ck_assert(cg_tensor_is_leaf(pb.p[k]));
    }
    for (int k = 0; k < 3; k++) {
        pb.coef[k] = piece(flat, 18 + OFFSET[k], k);
        pb.target[k] = piece(flat, 34 + OFFSET[k], k);
    }
    cg_tensor_release(flat);
    return pb;
}

static void free_problem(problem *pb)
{
    for (int k = 0; k < NPARAMS; k++)
        cg_tensor_release(pb->p[k]);
    for (int k = 0; k < 3; k++) {
        cg_tensor_release(pb->coef[k]);
        cg_tensor_release(pb->target[k]);
    }
}

/* loss = sum_k sum(|Pk*Ck - Tk|^2); backward fills P0..P2's grads (or
 * they become copies of the parameters). */
static cg_status backward(problem *pb)
{
    if (pb->grad_is_param) {
        for (int k = 0; k < 3; k++) {
            cg_tensor *g = NULL, *d = NULL;
            cg_status st = cg_tensor_detach(pb->p[k], &d);
            if (st == CG_OK)
                st = cg_tensor_clone(d, &g);
            if (st == CG_OK)
                st = cg_tensor_set_grad(pb->p[k], g);
            cg_tensor_release(d);
            cg_tensor_release(g);
            if (st != CG_OK)
                return st;
        }
        return CG_OK;
    }
    cg_tensor *total = NULL;
    cg_status st = CG_OK;
    for (int k = 0; k < 3 && st == CG_OK; k++) {
        cg_tensor *m = NULL, *z = NULL, *sq = NULL, *term = NULL, *next = NULL;
        st = cg_mul(pb->p[k], pb->coef[k], &m);
        if (st == CG_OK)
            st = cg_sub(m, pb->target[k], &z);
        if (st == CG_OK && cg_dtype_is_complex(cg_tensor_dtype(z))) {
            cg_tensor *re = NULL, *im = NULL, *re2 = NULL, *im2 = NULL;
            st = cg_real(z, &re);
            if (st == CG_OK)
                st = cg_imag(z, &im);
            if (st == CG_OK)
                st = cg_pow_scalar(re, 2.0, &re2);
            if (st == CG_OK)
                st = cg_pow_scalar(im, 2.0, &im2);
            if (st == CG_OK)
                st = cg_add(re2, im2, &sq);
            cg_tensor_release(re);
            cg_tensor_release(im);
            cg_tensor_release(re2);
            cg_tensor_release(im2);
        } else if (st == CG_OK) {
            st = cg_pow_scalar(z, 2.0, &sq);
        }
        if (st == CG_OK)
            st = cg_sum(sq, &term);
        if (st == CG_OK && total) {
            st = cg_add(total, term, &next);
            cg_tensor_release(total);
            total = next;
        } else if (st == CG_OK) {
            total = cg_tensor_retain(term);
        }
        cg_tensor_release(m);
        cg_tensor_release(z);
        cg_tensor_release(sq);
        cg_tensor_release(term);
    }
    if (st == CG_OK)
        st = cg_tensor_backward(total, NULL, false);
    cg_tensor_release(total);
    return st;
}

/* The parameters' values, flattened in logical order (complex: re, im). */
static void flat_values(problem *pb, double *out, int per)
{
    int64_t at = 0;
    for (int k = 0; k < NPARAMS; k++) {
        tu_ok(cg_tensor_to_doubles(pb->p[k], out + at, COUNT[k] * per));
        at += COUNT[k] * per;
    }
}

/* Overwrites the parameters with row `row` of a trajectory. */
static void set_values(problem *pb, const double *traj_row, int per)
{
    bool prev = cg_set_grad_enabled(false);
    int64_t at = 0;
    for (int k = 0; k < NPARAMS; k++) {
        for (int64_t i = 0; i < COUNT[k]; i++) {
            int64_t idx[2] = {NDIM[k] == 2 ? i / SHAPE[k][1] : i,
                              NDIM[k] == 2 ? i % SHAPE[k][1] : 0};
            double re = traj_row[(at + i) * per];
            double im = per == 2 ? traj_row[(at + i) * per + 1] : 0.0;
            tu_ok(cg_tensor_set(pb->p[k], idx, re, im));
        }
        at += COUNT[k];
    }
    cg_set_grad_enabled(prev);
}

/* ======================================================================
 * Building an optimizer from a case row
 * ====================================================================== */

typedef union any_options {
    cg_optimizer_kind kind;
    cg_sgd_options sgd;
    cg_adam_options adam;
    cg_rmsprop_options rmsprop;
    cg_adagrad_options adagrad;
} any_options;

static cg_optimizer_kind kind_of(const char *name)
{
    for (int k = 0; k < CG_OPTIM_KIND_COUNT; k++)
        if (strcmp(cg_optimizer_kind_name((cg_optimizer_kind)k), name) == 0)
            return (cg_optimizer_kind)k;
    ck_abort_msg("unknown optimizer %s", name);
    return CG_OPTIM_SGD;
}

static any_options defaults_of(cg_optimizer_kind k)
{
    any_options o;
    memset(&o, 0, sizeof o);
    switch (k) {
    case CG_OPTIM_SGD:
        o.sgd = cg_sgd_defaults();
        break;
    case CG_OPTIM_ADAM:
        o.adam = cg_adam_defaults();
        break;
    case CG_OPTIM_ADAMW:
        o.adam = cg_adamw_defaults();
        break;
    case CG_OPTIM_RMSPROP:
        o.rmsprop = cg_rmsprop_defaults();
        break;
    default:
        o.adagrad = cg_adagrad_defaults();
        break;
    }
    return o;
}

/* Applies "k=v,..." to the options of kind o->kind. */
static void apply_options(any_options *o, const char *list)
{
    char b[64];
    const char *v;
#define D(key, field)                                                          \
    if ((v = tu_opt_value(list, key, b, sizeof b)))                            \
    field = strtod(v, NULL)
#define B(key, field)                                                          \
    if ((v = tu_opt_value(list, key, b, sizeof b)))                            \
    field = strcmp(v, "1") == 0
    switch (o->kind) {
    case CG_OPTIM_SGD:
        D("lr", o->sgd.lr);
        D("momentum", o->sgd.momentum);
        D("dampening", o->sgd.dampening);
        D("weight_decay", o->sgd.weight_decay);
        B("nesterov", o->sgd.nesterov);
        B("maximize", o->sgd.maximize);
        break;
    case CG_OPTIM_ADAM:
    case CG_OPTIM_ADAMW:
        D("lr", o->adam.lr);
        D("betas0", o->adam.betas[0]);
        D("betas1", o->adam.betas[1]);
        D("eps", o->adam.eps);
        D("weight_decay", o->adam.weight_decay);
        B("amsgrad", o->adam.amsgrad);
        B("maximize", o->adam.maximize);
        break;
    case CG_OPTIM_RMSPROP:
        D("lr", o->rmsprop.lr);
        D("alpha", o->rmsprop.alpha);
        D("eps", o->rmsprop.eps);
        D("weight_decay", o->rmsprop.weight_decay);
        D("momentum", o->rmsprop.momentum);
        B("centered", o->rmsprop.centered);
        B("maximize", o->rmsprop.maximize);
        break;
    default:
        D("lr", o->adagrad.lr);
        D("lr_decay", o->adagrad.lr_decay);
        D("weight_decay", o->adagrad.weight_decay);
        D("initial_accumulator_value", o->adagrad.initial_accumulator_value);
        D("eps", o->adagrad.eps);
        B("maximize", o->adagrad.maximize);
        break;
    }
#undef D
#undef B
}

static cg_status new_groups(cg_optimizer_kind k, const cg_param_group *g,
                            int ng, const any_options *d, cg_optimizer **out)
{
    switch (k) {
    case CG_OPTIM_SGD:
        return cg_sgd_new_groups(g, ng, &d->sgd, out);
    case CG_OPTIM_ADAM:
        return cg_adam_new_groups(g, ng, &d->adam, out);
    case CG_OPTIM_ADAMW:
        return cg_adamw_new_groups(g, ng, &d->adam, out);
    case CG_OPTIM_RMSPROP:
        return cg_rmsprop_new_groups(g, ng, &d->rmsprop, out);
    default:
        return cg_adagrad_new_groups(g, ng, &d->adagrad, out);
    }
}

/* The optimizer of case row r over pb's parameters. */
static cg_optimizer *case_optimizer(const tu_table *t, int r, problem *pb)
{
    cg_optimizer_kind k = kind_of(tu_table_cell(t, r, "optimizer"));
    any_options d = defaults_of(k);
    apply_options(&d, tu_table_cell(t, r, "options"));
    const char *g1 = tu_table_cell(t, r, "group1");
    cg_optimizer *opt = NULL;
    if (strcmp(g1, "-") == 0) {
        cg_param_group g = {pb->p, NPARAMS, NULL};
        tu_ok(new_groups(k, &g, 1, &d, &opt));
    } else {
        any_options o1 = d;
        apply_options(&o1, g1);
        cg_tensor *a[2] = {pb->p[0], pb->p[3]}, *b[2] = {pb->p[1], pb->p[2]};
        cg_param_group g[2] = {{a, 2, NULL}, {b, 2, &o1}};
        tu_ok(new_groups(k, g, 2, &d, &opt));
    }
    return opt;
}

/* Values of a .npy as doubles (complex: re, im pairs). */
static double *npy_doubles(const char *rel, int64_t *n)
{
    cg_tensor *t = tu_load(rel);
    int64_t m =
        cg_tensor_numel(t) * (cg_dtype_is_complex(cg_tensor_dtype(t)) ? 2 : 1);
    double *v = malloc(sizeof(double) * (size_t)(m + 1));
    tu_ok(cg_tensor_to_doubles(t, v, m));
    cg_tensor_release(t);
    *n = m;
    return v;
}

/* Compares a parameter row; returns the largest error relative to
 * max(1, |ref|) and counts values that differ in any bit. */
static double compare_row(const double *got, const double *ref, int n,
                          int *ndiff)
{
    double worst = 0;
    for (int i = 0; i < n; i++) {
        if (memcmp(&got[i], &ref[i], sizeof(double)) != 0)
            (*ndiff)++;
        double e = fabs(got[i] - ref[i]) / fmax(1.0, fabs(ref[i]));
        if (e > worst || isnan(e))
            worst = isnan(e) ? INFINITY : e;
    }
    return worst;
}

static void run_steps(cg_optimizer *opt, problem *pb, const double *traj,
                      int from, int to, int per, const char *what, bool bitwise,
                      double tol, double *worst_out)
{
    double got[NVALUES * 2];
    double worst = 0;
    for (int s = from + 1; s <= to; s++) {
        tu_ok(cg_optimizer_zero_grad(opt, false));
        tu_ok(backward(pb));
        tu_ok(cg_optimizer_step(opt));
        ck_assert_ptr_null(cg_tensor_grad(pb->p[3]));
        flat_values(pb, got, per);
        int ndiff = 0;
        double e = compare_row(got, traj + (size_t)s * NVALUES * per,
                               NVALUES * per, &ndiff);
        worst = fmax(worst, e);
        ck_assert_msg(e <= tol, "%s: step %d differs by %.3g (> %.3g)", what, s,
                      e, tol);
        if (bitwise)
            ck_assert_msg(ndiff == 0,
                          "%s: step %d: %d values differ from PyTorch's in "
                          "some bit (max rel. error %.3g)",
                          what, s, ndiff, e);
    }
    if (worst_out)
        *worst_out = fmax(*worst_out, worst);
}

/* ======================================================================
 * trajectory
 * ====================================================================== */

/* The case table, read once per process on first use (inside a test:
 * Check's asserts work only there). */
static tu_table cases;
static bool cases_loaded;

static void load_cases(void)
{
    if (!cases_loaded) {
        cases = tu_table_load("optim/optim_cases.tsv");
        cases_loaded = true;
    }
}

/* Rows of a table, counted without Check (the suite is built outside any
 * test). */
static int count_rows(const char *rel)
{
    FILE *f = fopen(tu_data_path(rel), "rb");
    if (!f)
        return 1; /* one test, which then fails to read it */
    int lines = 0, c, last = '\n';
    while ((c = fgetc(f)) != EOF) {
        lines += c == '\n';
        last = c;
    }
    fclose(f);
    lines += last != '\n';
    return lines - 1;
}

/* Case r at the current SIMD level (the optimizers' FMA bodies run above
 * DEFAULT, their plain ones at it: both must be PyTorch's bits). */
static void trajectory_at(int r)
{
    const char *name = tu_table_cell(&cases, r, "name");
    cg_dtype dt = dtype_of(tu_table_cell(&cases, r, "dtype"));
    int per = cg_dtype_is_complex(dt) ? 2 : 1;
    char rel[128], what[160];
    snprintf(rel, sizeof rel, "optim/traj/%s.npy", name);
    snprintf(what, sizeof what, "%s [%s]", name, cg_get_cpu_capability());
    int64_t n;
    double *traj = npy_doubles(rel, &n);
    ck_assert_int_eq(n, (STEPS + 1) * NVALUES * per);

    bool gradp = strcmp(tu_table_cell(&cases, r, "grad"), "param") == 0;
    problem pb = make_problem(dt);
    pb.grad_is_param = gradp;
    double got[NVALUES * 2];
    int nd = 0;
    flat_values(&pb, got, per);
    compare_row(got, traj, NVALUES * per, &nd);
    ck_assert_int_eq(nd, 0);
    cg_optimizer *opt = case_optimizer(&cases, r, &pb);
    /* bitwise unless the complex loss's gradient is in the loop */
    bool exact = !cg_dtype_is_complex(dt) || gradp;
    double tol = cg_dtype_to_real(dt) == CG_FLOAT32 ? TOL_F32 : TOL_F64;
    double worst = 0;
    run_steps(opt, &pb, traj, 0, STEPS, per, what, exact, tol, &worst);
    if (getenv("CG_OPTIM_REPORT"))
        fprintf(stderr, "%-48s worst rel. error %.3g\n", what, worst);
    cg_optimizer_free(opt);
    free_problem(&pb);
    free(traj);
}

START_TEST(test_trajectory)
{
    load_cases();
    int r = _i;
    ck_assert_int_lt(r, cases.nrows);
    for (int lv = CG_SIMD_PORTABLE; lv <= (int)cg__simd_detected(); lv++) {
        cg_simd prev = cg__simd_override((cg_simd)lv);
        ck_assert_int_eq(cg__simd_level(), lv);
        trajectory_at(r);
        cg__simd_override(prev);
    }
}
END_TEST

/* ======================================================================
 * state
 * ====================================================================== */

/* PyTorch's state dict of a case (state/<case>.tsv + .npy) as a
 * cg_state_dict; tensors in dtype dt. */
static cg_state_dict *torch_state_dict(const char *name, cg_dtype dt)
{
    char rel[128];
    snprintf(rel, sizeof rel, "optim/state/%s.tsv", name);
    tu_table t = tu_table_load(rel);
    snprintf(rel, sizeof rel, "optim/state/%s.npy", name);
    cg_tensor *flat = tu_load(rel);
    cg_state_dict *sd = NULL;
    tu_ok(cg_state_dict_new(&sd));
    int64_t at = 0;
    for (int r = 0; r < t.nrows; r++) {
        const char *key = tu_table_cell(&t, r, "name");
        const char *kind = tu_table_cell(&t, r, "kind");
        const char *value = tu_table_cell(&t, r, "value");
        if (strcmp(kind, "tensor") == 0) {
            int64_t shape[4];
            char buf[32];
            snprintf(buf, sizeof buf, "%s", tu_table_cell(&t, r, "extra"));
            char *parts[4];
            int nd = tu_split(buf, ',', parts, 4);
            int64_t numel = 1;
            for (int i = 0; i < nd; i++)
                numel *= shape[i] = strtoll(parts[i], NULL, 10);
            cg_tensor *n = NULL, *v = NULL;
            tu_ok(cg_tensor_narrow(flat, 0, at, numel, &n));
            tu_ok(cg_tensor_reshape(n, shape, nd, &v));
            ck_assert_int_eq(cg_tensor_dtype(v), dt);
            tu_ok(cg_state_dict_set_tensor(sd, key, v));
            cg_tensor_release(n);
            cg_tensor_release(v);
            at += numel;
        } else if (strcmp(kind, "tensor0") == 0) {
            float f = strtof(value, NULL);
            cg_tensor *s = NULL;
            tu_ok(cg_tensor_from_data(&f, NULL, 0, CG_FLOAT32, &s));
            tu_ok(cg_state_dict_set_tensor(sd, key, s));
            cg_tensor_release(s);
        } else if (strcmp(kind, "number") == 0) {
            tu_ok(cg_state_dict_set_number(sd, key, strtod(value, NULL)));
        } else if (strcmp(kind, "bool") == 0) {
            tu_ok(cg_state_dict_set_bool(sd, key, strcmp(value, "1") == 0));
        } else {
            tu_ok(cg_state_dict_set_none(sd, key));
        }
    }
    ck_assert_int_eq(at, cg_tensor_numel(flat));
    cg_tensor_release(flat);
    tu_table_free(&t);
    return sd;
}

/* Our state dict has exactly PyTorch's entries: names (group 0's and the
 * state's in PyTorch's order), kinds, numbers, and tensors bitwise. */
static void assert_same_state(const cg_state_dict *ours,
                              const cg_state_dict *theirs, const char *what)
{
    ck_assert_msg(cg_state_dict_size(ours) == cg_state_dict_size(theirs),
                  "%s: %d entries, PyTorch has %d", what,
                  cg_state_dict_size(ours), cg_state_dict_size(theirs));
    for (int i = 0; i < cg_state_dict_size(theirs); i++) {
        const char *name;
        cg_state_kind kind, okind;
        cg_tensor *t, *ot;
        double num, onum;
        tu_ok(cg_state_dict_entry(theirs, i, &name, &kind, &t, &num));
        int j = cg_state_dict_find(ours, name);
        ck_assert_msg(j >= 0, "%s: no entry %s", what, name);
        if (strncmp(name, "state.", 6) == 0 ||
            strncmp(name, "param_groups.0.", 15) == 0)
            ck_assert_msg(j == i, "%s: %s at %d, PyTorch has it at %d", what,
                          name, j, i);
        tu_ok(cg_state_dict_entry(ours, j, NULL, &okind, &ot, &onum));
        ck_assert_msg(okind == kind, "%s: %s is a %s, PyTorch's a %s", what,
                      name, cg_state_kind_name(okind),
                      cg_state_kind_name(kind));
        if (kind == CG_STATE_TENSOR)
            tu_assert_bitwise(ot, t, name);
        else
            ck_assert_msg(onum == num, "%s: %s is %.17g, PyTorch's %.17g", what,
                          name, onum, num);
    }
}

START_TEST(test_state)
{
    load_cases();
    int r = _i;
    const char *name = tu_table_cell(&cases, r, "name");
    cg_dtype dt = dtype_of(tu_table_cell(&cases, r, "dtype"));
    int per = cg_dtype_is_complex(dt) ? 2 : 1;
    bool gradp = strcmp(tu_table_cell(&cases, r, "grad"), "param") == 0;
    bool real = !cg_dtype_is_complex(dt) || gradp; /* bitwise */
    double tol = cg_dtype_to_real(dt) == CG_FLOAT32 ? TOL_F32 : TOL_F64;
    char rel[128];
    snprintf(rel, sizeof rel, "optim/traj/%s.npy", name);
    int64_t n;
    double *traj = npy_doubles(rel, &n);

    /* 10 steps, then our state dict vs PyTorch's (bitwise unless the
     * complex loss's gradient is in the loop) */
    problem pb = make_problem(dt);
    pb.grad_is_param = gradp;
    cg_optimizer *opt = case_optimizer(&cases, r, &pb);
    run_steps(opt, &pb, traj, 0, SPLIT, per, name, real, tol, NULL);
    cg_state_dict *ours = NULL;
    tu_ok(cg_optimizer_state_dict(opt, &ours));
    cg_state_dict *theirs = torch_state_dict(name, dt);
    if (real)
        assert_same_state(ours, theirs, name);

    /* resume from our own state dict: a fresh optimizer continues exactly
     * where the first left off, and so does the first one */
    problem pb2 = make_problem(dt);
    pb2.grad_is_param = gradp;
    set_values(&pb2, traj + (size_t)SPLIT * NVALUES * per, per);
    if (!real) /* continue from our own values, not PyTorch's */ {
        double cur[NVALUES * 2];
        flat_values(&pb, cur, per);
        set_values(&pb2, cur, per);
    }
    cg_optimizer *opt2 = case_optimizer(&cases, r, &pb2);
    tu_ok(cg_optimizer_load_state_dict(opt2, ours));
    double a[NVALUES * 2], b[NVALUES * 2];
    for (int s = SPLIT + 1; s <= STEPS; s++) {
        tu_ok(cg_optimizer_zero_grad(opt, true));
        tu_ok(cg_optimizer_zero_grad(opt2, true));
        tu_ok(backward(&pb));
        tu_ok(backward(&pb2));
        tu_ok(cg_optimizer_step(opt));
        tu_ok(cg_optimizer_step(opt2));
        flat_values(&pb, a, per);
        flat_values(&pb2, b, per);
        ck_assert_msg(memcmp(a, b, sizeof(double) * NVALUES * (size_t)per) == 0,
                      "%s: resumed run differs at step %d", name, s);
    }
    cg_optimizer_free(opt2);
    free_problem(&pb2);

    /* import PyTorch's state dict at step 10 and continue: PyTorch's steps
     * 11..20 (real dtypes bitwise) */
    problem pb3 = make_problem(dt);
    pb3.grad_is_param = gradp;
    set_values(&pb3, traj + (size_t)SPLIT * NVALUES * per, per);
    cg_optimizer *opt3 = case_optimizer(&cases, r, &pb3);
    tu_ok(cg_optimizer_load_state_dict(opt3, theirs));
    run_steps(opt3, &pb3, traj, SPLIT, STEPS, per, name, real, tol, NULL);
    cg_optimizer_free(opt3);
    free_problem(&pb3);

    cg_state_dict_free(ours);
    cg_state_dict_free(theirs);
    cg_optimizer_free(opt);
    free_problem(&pb);
    free(traj);
}
END_TEST

/* load_state_dict's checks: each failure leaves the optimizer unchanged. */
START_TEST(test_load_errors)
{
    problem pb = make_problem(CG_FLOAT64);
    cg_adam_options o = cg_adam_defaults();
    o.lr = 0.01;
    o.amsgrad = true;
    cg_optimizer *opt = NULL;
    tu_ok(cg_adam_new(pb.p, NPARAMS, &o, &opt));
    for (int s = 0; s < 3; s++) {
        tu_ok(cg_optimizer_zero_grad(opt, false));
        tu_ok(backward(&pb));
        tu_ok(cg_optimizer_step(opt));
    }
    cg_state_dict *good = NULL;
    tu_ok(cg_optimizer_state_dict(opt, &good));

    struct {
        const char *remove, *set, *why;
        cg_status st;
        const char *msg;
    } bad[] = {
        {"param_groups.0.params.3", NULL, "size", CG_ERR_VALUE,
         "loaded state dict contains a parameter group that doesn't match "
         "the size of optimizer's group"},
        {NULL, "param_groups.1.lr", "groups", CG_ERR_VALUE,
         "loaded state dict has a different number of parameter groups"},
        {"param_groups.0.eps", NULL, "missing", CG_ERR_VALUE,
         "loaded state dict is missing 'param_groups.0.eps'"},
        {"state.1.exp_avg_sq", NULL, "missing state", CG_ERR_VALUE,
         "loaded state dict is missing 'state.1.exp_avg_sq'"},
        {NULL, "state.0.bogus", "unknown", CG_ERR_VALUE,
         "loaded state dict entry 'state.0.bogus' is not a state entry of "
         "this optimizer"},
        {NULL, "weights.0", "prefix", CG_ERR_VALUE,
         "loaded state dict entry 'weights.0' is neither state.* nor "
         "param_groups.*"},
        {NULL, "state.0.exp_avg", "kind", CG_ERR_VALUE,
         "loaded state dict entry 'state.0.exp_avg' must be a tensor"},
    };
    double before[NVALUES];
    flat_values(&pb, before, 1);
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        cg_state_dict *sd = NULL;
        tu_ok(cg_optimizer_state_dict(opt, &sd));
        if (bad[i].remove)
            tu_ok(cg_state_dict_remove(sd, bad[i].remove));
        if (bad[i].set)
            tu_ok(cg_state_dict_set_number(sd, bad[i].set, 1.0));
        tu_fails(cg_optimizer_load_state_dict(opt, sd), bad[i].st, bad[i].msg);
        cg_state_dict_free(sd);
    }
    /* a shape mismatch */
    cg_state_dict *sd = NULL;
    tu_ok(cg_optimizer_state_dict(opt, &sd));
    cg_tensor *z = NULL;
    tu_ok(cg_zeros((int64_t[]){5}, 1, CG_FLOAT64, &z));
    tu_ok(cg_state_dict_set_tensor(sd, "state.0.exp_avg", z));
    tu_fails(cg_optimizer_load_state_dict(opt, sd), CG_ERR_VALUE,
             "loaded state dict entry 'state.0.exp_avg' has a different "
             "shape from its parameter");
    cg_tensor_release(z);
    cg_state_dict_free(sd);
    /* unchanged: the same state dict, and the same next step as a twin */
    cg_state_dict *after = NULL;
    tu_ok(cg_optimizer_state_dict(opt, &after));
    assert_same_state(after, good, "after failed loads");
    cg_state_dict_free(after);
    tu_fails(cg_state_dict_remove(good, "nope"), CG_ERR_INDEX, "'nope'");
    cg_state_dict_free(good);
    cg_optimizer_free(opt);
    free_problem(&pb);
}
END_TEST

/* ======================================================================
 * behaviour
 * ====================================================================== */

START_TEST(test_zero_grad_and_skips)
{
    problem pb = make_problem(CG_FLOAT32);
    cg_sgd_options o = cg_sgd_defaults();
    o.lr = 0.1;
    o.momentum = 0.9;
    cg_optimizer *opt = NULL;
    tu_ok(cg_sgd_new(pb.p, NPARAMS, &o, &opt));
    ck_assert_int_eq(cg_optimizer_kind_of(opt), CG_OPTIM_SGD);
    tu_ok(backward(&pb));
    tu_ok(cg_optimizer_step(opt));
    /* P3 has no grad: no state, unchanged */
    cg_state_dict *sd = NULL;
    tu_ok(cg_optimizer_state_dict(opt, &sd));
    ck_assert_int_ge(cg_state_dict_find(sd, "state.2.momentum_buffer"), 0);
    ck_assert_int_eq(cg_state_dict_find(sd, "state.3.momentum_buffer"), -1);
    cg_state_dict_free(sd);
    /* zero_grad(False) zeroes in place (same tensor); True sets None */
    cg_tensor *g0 = cg_tensor_grad(pb.p[0]);
    tu_ok(cg_optimizer_zero_grad(opt, false));
    ck_assert_ptr_eq(cg_tensor_grad(pb.p[0]), g0);
    double v[6];
    tu_ok(cg_tensor_to_doubles(g0, v, 6));
    for (int i = 0; i < 6; i++)
        ck_assert(v[i] == 0.0);
    tu_ok(cg_optimizer_zero_grad(opt, true));
    for (int k = 0; k < NPARAMS; k++)
        ck_assert_ptr_null(cg_tensor_grad(pb.p[k]));
    /* a step with no grads changes nothing */
    double before[NVALUES], after[NVALUES];
    flat_values(&pb, before, 1);
    tu_ok(cg_optimizer_step(opt));
    flat_values(&pb, after, 1);
    ck_assert(memcmp(before, after, sizeof before) == 0);
    cg_optimizer_free(opt);
    free_problem(&pb);
}
END_TEST

/* The step writes parameters in place and bumps their version counter, so
 * a graph that saved one refuses a later backward, as in PyTorch. */
START_TEST(test_version_counter)
{
    cg_tensor *p = NULL, *y = NULL, *s = NULL;
    tu_ok(cg_tensor_literal("[1., 2., 3.]", &p));
    tu_ok(cg_tensor_requires_grad_(p, true));
    cg_adam_options o = cg_adam_defaults();
    cg_optimizer *opt = NULL;
    tu_ok(cg_adam_new(&p, 1, &o, &opt));
    tu_ok(cg_mul(p, p, &y)); /* saves p */
    tu_ok(cg_sum(y, &s));
    cg_tensor *g = NULL;
    tu_ok(cg_ones((int64_t[]){3}, 1, CG_FLOAT32, &g));
    tu_ok(cg_tensor_set_grad(p, g));
    cg_tensor_release(g);
    tu_ok(cg_optimizer_step(opt));
    ck_assert(cg_tensor_backward(s, NULL, false) == CG_ERR_RUNTIME);
    ck_assert_msg(strstr(cg_last_error(), "modified by an inplace operation"),
                  "%s", cg_last_error());
    ck_assert(cg_is_grad_enabled());
    cg_tensor_release(y);
    cg_tensor_release(s);
    cg_optimizer_free(opt);
    cg_tensor_release(p);
}
END_TEST

START_TEST(test_groups_and_options)
{
    problem pb = make_problem(CG_FLOAT64);
    cg_adamw_options o = cg_adamw_defaults();
    cg_optimizer *opt = NULL;
    tu_ok(cg_adamw_new(pb.p, 2, &o, &opt));
    ck_assert_int_eq(cg_optimizer_num_param_groups(opt), 1);
    ck_assert_int_eq(cg_optimizer_group_size(opt, 0), 2);
    ck_assert_int_eq(cg_optimizer_group_size(opt, 1), -1);
    /* add_param_group with the defaults, then with its own options */
    tu_ok(cg_optimizer_add_param_group(opt, &pb.p[2], 1, NULL));
    cg_adamw_options o2 = cg_adamw_defaults();
    o2.lr = 0.5;
    tu_ok(cg_optimizer_add_param_group(opt, &pb.p[3], 1, &o2));
    ck_assert_int_eq(cg_optimizer_num_param_groups(opt), 3);
    double v;
    tu_ok(cg_optimizer_get_lr(opt, 1, &v));
    ck_assert(v == 1e-3);
    tu_ok(cg_optimizer_get_lr(opt, 2, &v));
    ck_assert(v == 0.5);
    tu_ok(cg_optimizer_set_lr(opt, 0, 0.25));
    tu_ok(cg_optimizer_get_option(opt, 0, "lr", &v));
    ck_assert(v == 0.25);
    tu_ok(cg_optimizer_get_option(opt, 0, "betas.1", &v));
    ck_assert(v == 0.999);
    tu_ok(cg_optimizer_get_option(opt, 0, "weight_decay", &v));
    ck_assert(v == 1e-2);
    tu_ok(cg_optimizer_set_option(opt, 0, "amsgrad", 1));
    tu_ok(cg_optimizer_get_option(opt, 0, "amsgrad", &v));
    ck_assert(v == 1.0);
    tu_fails(cg_optimizer_get_option(opt, 0, "initial_lr", &v), CG_ERR_INDEX,
             "'initial_lr'");
    tu_ok(cg_optimizer_set_option(opt, 0, "initial_lr", 0.125));
    tu_ok(cg_optimizer_get_option(opt, 0, "initial_lr", &v));
    ck_assert(v == 0.125);
    tu_fails(cg_optimizer_get_lr(opt, 3, &v), CG_ERR_INDEX,
             "list index out of range");
    cg_tensor *p = NULL;
    tu_ok(cg_optimizer_param(opt, 2, 0, &p));
    ck_assert_ptr_eq(p, pb.p[3]);
    tu_fails(cg_optimizer_param(opt, 2, 1, &p), CG_ERR_INDEX,
             "list index out of range");
    /* an empty group is allowed; a repeated parameter is not */
    tu_ok(cg_optimizer_add_param_group(opt, NULL, 0, NULL));
    tu_fails(cg_optimizer_add_param_group(opt, &pb.p[0], 1, NULL), CG_ERR_VALUE,
             "some parameters appear in more than one parameter group");
    /* options of another optimizer are refused */
    cg_adam_options wrong = cg_adam_defaults();
    cg_tensor *q = NULL;
    tu_ok(cg_zeros((int64_t[]){2}, 1, CG_FLOAT64, &q));
    tu_fails(cg_optimizer_add_param_group(opt, &q, 1, &wrong), CG_ERR_MISUSE,
             "param group options are for Adam, but the optimizer is AdamW");
    cg_tensor *dup[2] = {q, q};
    tu_fails(cg_optimizer_add_param_group(opt, dup, 2, NULL), CG_ERR_VALUE,
             "optimizer contains a parameter group with duplicate "
             "parameters; in future, this will cause an error; see "
             "github.com/pytorch/pytorch/issues/40967 for more information");
    cg_tensor *none[1] = {NULL};
    tu_fails(cg_optimizer_add_param_group(opt, none, 1, NULL), CG_ERR_MISUSE,
             "optimizer can only optimize Tensors, but one of the params is "
             "NoneType");
    ck_assert_int_eq(cg_optimizer_num_param_groups(opt), 4);
    cg_tensor_release(q);
    cg_optimizer_free(opt);
    free_problem(&pb);
}
END_TEST

/* repr(opt), byte for byte as PyTorch 1.13 prints these optimizers. */
START_TEST(test_repr)
{
    cg_tensor *p = NULL, *q = NULL;
    tu_ok(cg_zeros((int64_t[]){2}, 1, CG_FLOAT32, &p));
    tu_ok(cg_zeros((int64_t[]){2}, 1, CG_FLOAT32, &q));
    cg_optimizer *opt = NULL;
    tu_ok(cg_adagrad_new(&p, 1, NULL, &opt));
    tu_ok(cg_optimizer_add_param_group(opt, &q, 1, NULL));
    char buf[1024];
    size_t len;
    tu_ok(cg_optimizer_repr(opt, buf, sizeof buf, &len));
    ck_assert_str_eq(buf, "Adagrad (\n"
                          "Parameter Group 0\n"
                          "    eps: 1e-10\n"
                          "    foreach: None\n"
                          "    initial_accumulator_value: 0\n"
                          "    lr: 0.01\n"
                          "    lr_decay: 0\n"
                          "    maximize: False\n"
                          "    weight_decay: 0\n"
                          "\n"
                          "Parameter Group 1\n"
                          "    eps: 1e-10\n"
                          "    foreach: None\n"
                          "    initial_accumulator_value: 0\n"
                          "    lr: 0.01\n"
                          "    lr_decay: 0\n"
                          "    maximize: False\n"
                          "    weight_decay: 0\n"
                          ")");
    ck_assert_uint_eq(len, strlen(buf));
    cg_optimizer_free(opt);
    cg_adam_options o = cg_adam_defaults();
    o.amsgrad = true;
    tu_ok(cg_adam_new(&p, 1, &o, &opt));
    tu_ok(cg_optimizer_set_option(opt, 0, "initial_lr", 0.001));
    tu_ok(cg_optimizer_repr(opt, buf, sizeof buf, &len));
    ck_assert_str_eq(buf, "Adam (\n"
                          "Parameter Group 0\n"
                          "    amsgrad: True\n"
                          "    betas: (0.9, 0.999)\n"
                          "    capturable: False\n"
                          "    differentiable: False\n"
                          "    eps: 1e-08\n"
                          "    foreach: None\n"
                          "    fused: False\n"
                          "    initial_lr: 0.001\n"
                          "    lr: 0.001\n"
                          "    maximize: False\n"
                          "    weight_decay: 0\n"
                          ")");
    /* snprintf-style: a short buffer gets a prefix and the full length */
    char small[8];
    size_t full;
    tu_ok(cg_optimizer_repr(opt, small, sizeof small, &full));
    ck_assert_str_eq(small, "Adam (\n");
    ck_assert_uint_eq(full, len);
    cg_optimizer_free(opt);
    cg_tensor_release(p);
    cg_tensor_release(q);
}
END_TEST

/* A step that fails (here: AMSGrad meets a complex parameter after a real
 * one) changes nothing: no value, no step count, no state. */
START_TEST(test_transactional_step)
{
    cg_tensor *p = NULL, *c = NULL, *g = NULL, *gc = NULL;
    tu_ok(cg_tensor_literal("[1., 2.]", &p));
    tu_ok(cg_tensor_literal("[1+1j, 2-1j]", &c));
    tu_ok(cg_tensor_requires_grad_(p, true));
    tu_ok(cg_tensor_requires_grad_(c, true));
    tu_ok(cg_ones((int64_t[]){2}, 1, CG_FLOAT32, &g));
    tu_ok(cg_ones((int64_t[]){2}, 1, CG_COMPLEX64, &gc));
    tu_ok(cg_tensor_set_grad(p, g));
    tu_ok(cg_tensor_set_grad(c, gc));
    cg_tensor *both[2] = {p, c};
    cg_adam_options o = cg_adam_defaults();
    o.amsgrad = true;
    cg_optimizer *opt = NULL;
    tu_ok(cg_adam_new(both, 2, &o, &opt));
    tu_fails(cg_optimizer_step(opt), CG_ERR_RUNTIME,
             "maximum not implemented for complex tensors.");
    double v[2];
    tu_ok(cg_tensor_to_doubles(p, v, 2));
    ck_assert(v[0] == 1.0 && v[1] == 2.0);
    cg_state_dict *sd = NULL;
    tu_ok(cg_optimizer_state_dict(opt, &sd));
    ck_assert_int_eq(cg_state_dict_find(sd, "state.0.step"), -1);
    cg_state_dict_free(sd);
    /* without amsgrad the complex parameter is updated as view_as_real */
    tu_ok(cg_optimizer_set_option(opt, 0, "amsgrad", 0));
    tu_ok(cg_optimizer_step(opt));
    /* switching amsgrad on later fails as PyTorch does (KeyError) */
    tu_ok(cg_optimizer_set_option(opt, 0, "amsgrad", 1));
    tu_fails(cg_optimizer_step(opt), CG_ERR_INDEX, "'max_exp_avg_sq'");
    /* an expanded parameter cannot be written in place */
    cg_tensor *one = NULL, *ex = NULL;
    tu_ok(cg_tensor_literal("[1.]", &one));
    tu_ok(cg_tensor_expand(one, (int64_t[]){3}, 1, &ex));
    tu_ok(cg_tensor_requires_grad_(ex, true));
    cg_tensor *gx = NULL;
    tu_ok(cg_ones((int64_t[]){3}, 1, CG_FLOAT32, &gx));
    tu_ok(cg_tensor_set_grad(ex, gx));
    cg_optimizer *o2 = NULL;
    tu_ok(cg_sgd_new(&ex, 1, &(cg_sgd_options){.kind = CG_OPTIM_SGD, .lr = 0.1},
                     &o2));
    tu_fails(cg_optimizer_step(o2), CG_ERR_RUNTIME,
             "unsupported operation: more than one element of the "
             "written-to tensor refers to a single memory location. Please "
             "clone() the tensor before performing the operation.");
    cg_optimizer_free(o2);
    cg_tensor_release(gx);
    cg_tensor_release(ex);
    cg_tensor_release(one);
    cg_optimizer_free(opt);
    cg_tensor_release(g);
    cg_tensor_release(gc);
    cg_tensor_release(p);
    cg_tensor_release(c);
}
END_TEST

/* ======================================================================
 * errors: every constructor message of errors.tsv
 * ====================================================================== */

static cg_status status_of(const char *exception)
{
    if (strcmp(exception, "ValueError") == 0)
        return CG_ERR_VALUE;
    if (strcmp(exception, "RuntimeError") == 0)
        return CG_ERR_RUNTIME;
    if (strcmp(exception, "KeyError") == 0)
        return CG_ERR_INDEX;
    ck_assert_str_eq(exception, "TypeError");
    return CG_ERR_TYPE;
}

START_TEST(test_errors)
{
    tu_table t = tu_table_load("optim/errors.tsv");
    cg_tensor *p = NULL, *q = NULL, *nonleaf = NULL;
    tu_ok(cg_zeros((int64_t[]){2}, 1, CG_FLOAT32, &p));
    tu_ok(cg_tensor_requires_grad_(p, true));
    tu_ok(cg_zeros((int64_t[]){2}, 1, CG_FLOAT32, &q));
    tu_ok(cg_tensor_requires_grad_(q, true));
    tu_ok(cg_mul_scalar(p, 2.0, &nonleaf));
    int checked = 0;
    for (int r = 0; r < t.nrows; r++) {
        const char *what = tu_table_cell(&t, r, "what");
        const char *args = tu_table_cell(&t, r, "args");
        cg_status want = status_of(tu_table_cell(&t, r, "exception"));
        const char *msg = tu_table_cell(&t, r, "message");
        if (strcmp(what, "SGD") && strcmp(what, "Adam") &&
            strcmp(what, "AdamW") && strcmp(what, "RMSprop") &&
            strcmp(what, "Adagrad"))
            continue; /* the schedulers' rows: test_lr_scheduler.c */
        cg_optimizer_kind k = kind_of(what);
        any_options d = defaults_of(k);
        cg_optimizer *opt = (cg_optimizer *)&t; /* must stay untouched */
        cg_optimizer *const sentinel = opt;
        cg_status st;
        if (strcmp(args, "empty") == 0) {
            cg_param_group g = {NULL, 0, NULL};
            st = new_groups(k, &g, 0, &d, &opt);
        } else if (strcmp(args, "nonleaf") == 0) {
            cg_param_group g = {&nonleaf, 1, NULL};
            st = new_groups(k, &g, 1, &d, &opt);
        } else if (strcmp(args, "overlap") == 0) {
            cg_tensor *a[2] = {p, q};
            cg_param_group g[2] = {{a, 2, NULL}, {&q, 1, NULL}};
            st = new_groups(k, g, 2, &d, &opt);
        } else if (strcmp(args, "add_param_group_overlap") == 0) {
            cg_optimizer *o = NULL;
            cg_param_group g = {&p, 1, NULL};
            tu_ok(new_groups(k, &g, 1, &d, &o));
            st = cg_optimizer_add_param_group(o, &p, 1, NULL);
            ck_assert_int_eq(cg_optimizer_num_param_groups(o), 1);
            cg_optimizer_free(o);
        } else if (strcmp(args, "required") == 0 ||
                   strcmp(args, "groups_required") == 0) {
            cg_param_group g = {&p, 1, NULL};
            st = new_groups(k, &g, 1, &d, &opt);
        } else if (strcmp(args, "complex_amsgrad") == 0) {
            cg_tensor *c = NULL, *gc = NULL;
            tu_ok(cg_zeros((int64_t[]){2}, 1, CG_COMPLEX64, &c));
            tu_ok(cg_tensor_requires_grad_(c, true));
            tu_ok(cg_ones((int64_t[]){2}, 1, CG_COMPLEX64, &gc));
            tu_ok(cg_tensor_set_grad(c, gc));
            d.adam.amsgrad = true;
            cg_optimizer *o = NULL;
            cg_param_group g = {&c, 1, NULL};
            tu_ok(new_groups(k, &g, 1, &d, &o));
            st = cg_optimizer_step(o);
            cg_optimizer_free(o);
            cg_tensor_release(gc);
            cg_tensor_release(c);
        } else {
            if (strstr(args, "lr=") == NULL && k == CG_OPTIM_SGD)
                d.sgd.lr = 0.1;
            apply_options(&d, args);
            cg_param_group g = {&p, 1, NULL};
            st = new_groups(k, &g, 1, &d, &opt);
        }
        ck_assert_msg(st == want, "%s(%s): %s, expected %s (%s)", what, args,
                      cg_status_name(st), tu_table_cell(&t, r, "exception"),
                      cg_last_error());
        ck_assert_str_eq(cg_last_error(), msg);
        ck_assert_ptr_eq(opt, sentinel);
        checked++;
    }
    ck_assert_int_ge(checked, 47);
    cg_tensor_release(nonleaf);
    cg_tensor_release(p);
    cg_tensor_release(q);
    tu_table_free(&t);
}
END_TEST

/* ======================================================================
 * clip_grad_norm_
 * ====================================================================== */

START_TEST(test_clip)
{
    tu_table t = tu_table_load("optim/clip_cases.tsv");
    for (int r = 0; r < t.nrows; r++) {
        const char *name = tu_table_cell(&t, r, "name");
        cg_dtype dt = dtype_of(tu_table_cell(&t, r, "dtype"));
        char shapes[128], rel[128];
        snprintf(shapes, sizeof shapes, "%s", tu_table_cell(&t, r, "shapes"));
        snprintf(rel, sizeof rel, "optim/clip/%s_in.npy", name);
        cg_tensor *gin = tu_load(rel);
        snprintf(rel, sizeof rel, "optim/clip/%s_out.npy", name);
        cg_tensor *gout = tu_load(rel);
        char *parts[8];
        int np = tu_split(shapes, '|', parts, 8);
        cg_tensor *params[8];
        int64_t at = 0;
        for (int i = 0; i < np; i++) {
            bool nograd = parts[i][0] == '-';
            char *dims[4];
            int nd = tu_split(parts[i] + (nograd ? 1 : 0), ',', dims, 4);
            int64_t shape[4], numel = 1;
            for (int d = 0; d < nd; d++)
                numel *= shape[d] = strtoll(dims[d], NULL, 10);
            tu_ok(cg_zeros(shape, nd, dt, &params[i]));
            tu_ok(cg_tensor_requires_grad_(params[i], true));
            if (!nograd) {
                cg_tensor *n = NULL, *v = NULL, *c = NULL;
                tu_ok(cg_tensor_narrow(gin, 0, at, numel, &n));
                tu_ok(cg_tensor_reshape(n, shape, nd, &v));
                tu_ok(cg_tensor_clone(v, &c));
                tu_ok(cg_tensor_set_grad(params[i], c));
                cg_tensor_release(n);
                cg_tensor_release(v);
                cg_tensor_release(c);
                at += numel;
            }
        }
        double max_norm = strtod(tu_table_cell(&t, r, "max_norm"), NULL);
        double norm_type = strtod(tu_table_cell(&t, r, "norm_type"), NULL);
        bool nonfinite =
            strcmp(tu_table_cell(&t, r, "error_if_nonfinite"), "1") == 0;
        double total = -1;
        cg_status st = cg_clip_grad_norm_(params, np, max_norm, norm_type,
                                          nonfinite, &total);
        const char *status = tu_table_cell(&t, r, "status");
        if (strcmp(status, "OK") == 0) {
            ck_assert_msg(st == CG_OK, "%s: %s", name, cg_last_error());
            double want = strtod(tu_table_cell(&t, r, "total"), NULL);
            ck_assert_msg(total == want || (isinf(want) && isinf(total)),
                          "%s: total norm %.17g, PyTorch's %.17g", name, total,
                          want);
        } else {
            ck_assert_int_eq(st, CG_ERR_RUNTIME);
            ck_assert_str_eq(cg_last_error(), strchr(status, ':') + 1);
            ck_assert(total == -1);
        }
        /* the clipped grads, concatenated, bitwise */
        cg_tensor *cat[8];
        int nc = 0;
        for (int i = 0; i < np; i++) {
            cg_tensor *g = cg_tensor_grad(params[i]);
            if (g)
                tu_ok(cg_tensor_reshape(g, (int64_t[]){-1}, 1, &cat[nc++]));
        }
        cg_tensor *all = NULL;
        tu_ok(cg_cat(cat, nc, 0, &all));
        tu_assert_bitwise(all, gout, name);
        cg_tensor_release(all);
        for (int i = 0; i < nc; i++)
            cg_tensor_release(cat[i]);
        for (int i = 0; i < np; i++)
            cg_tensor_release(params[i]);
        cg_tensor_release(gin);
        cg_tensor_release(gout);
    }
    /* no parameter with a grad: 0, nothing else */
    cg_tensor *p = NULL;
    tu_ok(cg_zeros((int64_t[]){2}, 1, CG_FLOAT32, &p));
    double total = -1;
    tu_ok(cg_clip_grad_norm_(&p, 1, 1.0, 2.0, true, &total));
    ck_assert(total == 0.0);
    tu_ok(cg_clip_grad_norm_(NULL, 0, 1.0, 2.0, true, NULL));
    cg_tensor_release(p);
    tu_table_free(&t);
}
END_TEST

/* Every tail length of PyTorch's 8-lane float32 2-norm, and the sequential
 * float64 one, on gradients regenerated with cg_randn (bit-exact with
 * torch.randn): the total of one gradient is its norm. */
START_TEST(test_norms)
{
    tu_table t = tu_table_load("optim/norms.tsv");
    for (int r = 0; r < t.nrows; r++) {
        cg_dtype dt = dtype_of(tu_table_cell(&t, r, "dtype"));
        int64_t n = strtoll(tu_table_cell(&t, r, "n"), NULL, 10);
        double scale = strtod(tu_table_cell(&t, r, "scale"), NULL);
        double p = strtod(tu_table_cell(&t, r, "norm_type"), NULL);
        cg_manual_seed(strtoull(tu_table_cell(&t, r, "seed"), NULL, 10));
        cg_tensor *g0 = NULL, *g = NULL, *x = NULL;
        tu_ok(cg_randn(&n, 1, dt, NULL, &g0));
        tu_ok(cg_mul_scalar(g0, scale, &g));
        tu_ok(cg_zeros(&n, 1, dt, &x));
        tu_ok(cg_tensor_requires_grad_(x, true));
        tu_ok(cg_tensor_set_grad(x, g));
        double want = strtod(tu_table_cell(&t, r, "total"), NULL);
        /* at every SIMD level: the float32 2-norm's lanes have an FMA
         * build */
        for (int lv = CG_SIMD_PORTABLE; lv <= (int)cg__simd_detected(); lv++) {
            cg_simd prev = cg__simd_override((cg_simd)lv);
            double total;
            tu_ok(cg_clip_grad_norm_(&x, 1, 1e30, p, false, &total));
            ck_assert_msg(total == want,
                          "%s n=%lld p=%g [%s]: total %.17g, PyTorch's %.17g",
                          tu_table_cell(&t, r, "dtype"), (long long)n, p,
                          cg_get_cpu_capability(), total, want);
            cg__simd_override(prev);
        }
        cg_tensor_release(g0);
        cg_tensor_release(g);
        cg_tensor_release(x);
    }
    tu_table_free(&t);
}
END_TEST

/* ======================================================================
 * randperm and DataLoader
 * ====================================================================== */

/* (a * b) mod m for a, b < m < 2**62, without 128-bit integers */
static uint64_t mulmod(uint64_t a, uint64_t b, uint64_t m)
{
    uint64_t r = 0;
    for (; b; b >>= 1) {
        if (b & 1)
            r = (r + a) % m;
        a = (a << 1) % m;
    }
    return r;
}

/* gen_optim.py's checksum: h = (h * 1000003 + v + 1) mod (2**61 - 1) */
static uint64_t checksum(const int64_t *v, int64_t n)
{
    const uint64_t m = UINT64_C(2305843009213693951);
    uint64_t h = 0;
    for (int64_t i = 0; i < n; i++)
        h = (mulmod(h, 1000003u, m) + (uint64_t)v[i] + 1) % m;
    return h;
}

static double rand_scalar(cg_generator *g)
{
    cg_tensor *t = NULL;
    tu_ok(cg_rand(NULL, 0, CG_FLOAT64, g, &t));
    double v;
    tu_ok(cg_tensor_item(t, &v, NULL));
    cg_tensor_release(t);
    return v;
}

START_TEST(test_randperm)
{
    tu_table t = tu_table_load("optim/randperm.tsv");
    for (int r = 0; r < t.nrows; r++) {
        int64_t n = strtoll(tu_table_cell(&t, r, "n"), NULL, 10);
        uint64_t seed = strtoull(tu_table_cell(&t, r, "seed"), NULL, 10);
        bool priv = strcmp(tu_table_cell(&t, r, "generator"), "private") == 0;
        cg_dtype dt = dtype_of(tu_table_cell(&t, r, "dtype"));
        cg_generator *g = NULL;
        if (priv)
            tu_ok(cg_generator_new(seed, &g));
        else
            cg_manual_seed(seed);
        cg_tensor *perm = NULL;
        tu_ok(cg_randperm(n, dt, g, &perm));
        ck_assert_int_eq(cg_tensor_dtype(perm), dt);
        tu_assert_shape(perm, &n, 1);
        double *v = malloc(sizeof(double) * (size_t)(n + 1));
        int64_t *iv = malloc(sizeof(int64_t) * (size_t)(n + 1));
        tu_ok(cg_tensor_to_doubles(perm, v, n));
        for (int64_t i = 0; i < n; i++)
            iv[i] = (int64_t)v[i];
        char first[512] = "", *w = first;
        for (int64_t i = 0; i < n && i < 16; i++)
            w += sprintf(w, "%s%lld", i ? "," : "", (long long)iv[i]);
        if (n == 0)
            strcpy(first, "-");
        ck_assert_str_eq(first, tu_table_cell(&t, r, "first"));
        ck_assert_uint_eq(checksum(iv, n),
                          strtoull(tu_table_cell(&t, r, "checksum"), NULL, 10));
        /* the generator is where PyTorch leaves it */
        ck_assert(rand_scalar(g) ==
                  strtod(tu_table_cell(&t, r, "after"), NULL));
        /* cg_randperm_indices gives the same permutation */
        if (priv)
            cg_generator_manual_seed(g, seed);
        else
            cg_manual_seed(seed);
        int64_t *again = malloc(sizeof(int64_t) * (size_t)(n + 1));
        tu_ok(cg_randperm_indices(n, g, again));
        ck_assert(memcmp(again, iv, sizeof(int64_t) * (size_t)n) == 0);
        free(again);
        free(v);
        free(iv);
        cg_tensor_release(perm);
        cg_generator_free(g);
    }
    tu_table_free(&t);
    cg_tensor *out = NULL;
    tu_fails(cg_randperm(-1, CG_FLOAT64, NULL, &out), CG_ERR_RUNTIME,
             "Trying to create tensor with negative dimension -1: [-1]");
    tu_fails(cg_randperm(5, CG_COMPLEX64, NULL, &out), CG_ERR_RUNTIME,
             "\"randperm\" not implemented for 'ComplexFloat'");
    ck_assert_ptr_null(out);
}
END_TEST

/* The optimizers' flat passes run on the pool in ranges, and on CPUs with
 * FMA through vectorised bodies: the same parameters, bit for bit, at 1
 * thread with the portable bodies (the scalar code the trajectories check
 * against PyTorch) and at 3 threads with the CPU's own, for a parameter
 * several ranges long: AdamW (float32 with amsgrad, complex64 without),
 * Adam, RMSprop and SGD with their defaults and SGD with momentum (the
 * branch-free common kernels), SGD with momentum, Nesterov and weight
 * decay, RMSprop centered with momentum, Adagrad with weight decay. */
enum {
    RUN_ADAMW,
    RUN_ADAM,
    RUN_SGD,
    RUN_SGD_MOMENTUM,
    RUN_SGD_PLAIN,
    RUN_RMSPROP,
    RUN_RMSPROP_PLAIN,
    RUN_ADAGRAD,
    RUN_KINDS
};

static void optim_run(cg_dtype dt, int threads, cg_simd level, int kind,
                      cg_tensor **out)
{
    tu_ok(cg_set_num_threads(threads));
    cg_simd prev = cg__simd_override(level);
    const int64_t shape[2] = {211, 199}; /* 42K elements */
    cg_tensor *p = NULL, *g = NULL;
    cg_manual_seed(17);
    tu_ok(cg_randn(shape, 2, dt, NULL, &p));
    tu_ok(cg_randn(shape, 2, dt, NULL, &g));
    tu_ok(cg_tensor_requires_grad_(p, true));
    tu_ok(cg_tensor_set_grad(p, g));
    cg_optimizer *opt = NULL;
    if (kind == RUN_SGD || kind == RUN_SGD_MOMENTUM || kind == RUN_SGD_PLAIN) {
        cg_sgd_options o = cg_sgd_defaults();
        o.lr = 0.01;
        if (kind != RUN_SGD_PLAIN)
            o.momentum = 0.9;
        if (kind == RUN_SGD) {
            o.nesterov = true;
            o.weight_decay = 0.01;
        }
        tu_ok(cg_sgd_new(&p, 1, &o, &opt));
    } else if (kind == RUN_RMSPROP || kind == RUN_RMSPROP_PLAIN) {
        cg_rmsprop_options o = cg_rmsprop_defaults();
        if (kind == RUN_RMSPROP) {
            o.momentum = 0.5;
            o.centered = true;
        }
        tu_ok(cg_rmsprop_new(&p, 1, &o, &opt));
    } else if (kind == RUN_ADAGRAD) {
        cg_adagrad_options o = cg_adagrad_defaults();
        o.weight_decay = 0.01;
        tu_ok(cg_adagrad_new(&p, 1, &o, &opt));
    } else if (kind == RUN_ADAM) {
        cg_adam_options o = cg_adam_defaults();
        o.lr = 0.01;
        tu_ok(cg_adam_new(&p, 1, &o, &opt));
    } else {
        cg_adamw_options o = cg_adamw_defaults();
        o.amsgrad = dt == CG_FLOAT32; /* PyTorch has no complex maximum */
        o.lr = 0.01;
        tu_ok(cg_adamw_new(&p, 1, &o, &opt));
    }
    for (int step = 0; step < 3; step++)
        tu_ok(cg_optimizer_step(opt));
    tu_ok(cg_tensor_detach(p, out));
    cg_optimizer_free(opt);
    cg_tensor_release(g);
    cg_tensor_release(p);
    cg__simd_override(prev);
}

START_TEST(test_optim_threads)
{
    const cg_dtype dts[3] = {CG_FLOAT32, CG_FLOAT64, CG_COMPLEX64};
    static const char *const names[RUN_KINDS] = {"AdamW",
                                                 "Adam",
                                                 "SGD",
                                                 "SGD (momentum)",
                                                 "SGD (defaults)",
                                                 "RMSprop",
                                                 "RMSprop (defaults)",
                                                 "Adagrad"};
    for (int kind = 0; kind < RUN_KINDS; kind++)
        for (int d = 0; d < 3; d++) {
            cg_tensor *one = NULL, *three = NULL;
            optim_run(dts[d], 1, CG_SIMD_PORTABLE, kind, &one);
            optim_run(dts[d], 3, cg__simd_detected(), kind, &three);
            tu_assert_bitwise(one, three, names[kind]);
            cg_tensor_release(one);
            cg_tensor_release(three);
        }
}
END_TEST

/* Batches of non-contiguous datasets: each batch row is the dataset row
 * its index names, element for element, whatever the dataset's strides
 * (a transposed view: no two elements adjacent; a narrowed one: runs of
 * 5 with gaps; a size-1 dimension; a 1-D tensor). */
START_TEST(test_dataloader_strided)
{
    enum { N = 7 };
    cg_tensor *base_a = NULL, *base_b = NULL, *base_c = NULL, *v = NULL;
    cg_tensor *d[4] = {NULL, NULL, NULL, NULL}; /* a, b, c, index */
    tu_ok(cg_arange(N * 4 * 3, CG_FLOAT32, &base_a));
    tu_ok(cg_tensor_view(base_a, (int64_t[]){N, 4, 3}, 3, &v));
    tu_ok(cg_tensor_transpose(v, 1, 2, &d[0])); /* (N, 3, 4), strides 12,1,3 */
    cg_tensor_release(v);
    tu_ok(cg_arange(N * 2 * 8, CG_FLOAT64, &base_b));
    tu_ok(cg_tensor_view(base_b, (int64_t[]){N, 2, 8}, 3, &v));
    tu_ok(cg_tensor_narrow(v, 2, 1, 5, &d[1])); /* (N, 2, 5), strides 16,8,1 */
    cg_tensor_release(v);
    tu_ok(cg_arange(N * 6, CG_FLOAT32, &base_c));
    tu_ok(cg_tensor_view(base_c, (int64_t[]){N, 1, 6}, 3, &d[2]));
    tu_ok(cg_arange(N, CG_FLOAT64, &d[3]));
    cg_dataloader_options o = cg_dataloader_defaults();
    o.batch_size = 3;
    o.shuffle = true;
    cg_dataloader *dl = NULL;
    tu_ok(cg_dataloader_new(d, 4, &o, &dl));
    const int64_t row[3] = {12, 10, 6};
    int seen = 0;
    for (;;) {
        cg_tensor *batch[4] = {NULL, NULL, NULL, NULL};
        bool has = false;
        tu_ok(cg_dataloader_next(dl, batch, &has));
        if (!has)
            break;
        int64_t b = cg_tensor_shape(batch[3])[0];
        double idx[3];
        tu_ok(cg_tensor_to_doubles(batch[3], idx, b));
        for (int k = 0; k < 3; k++) {
            ck_assert(cg_tensor_is_contiguous(batch[k]));
            ck_assert_int_eq(cg_tensor_numel(batch[k]), b * row[k]);
            double got[3 * 12];
            tu_ok(cg_tensor_to_doubles(batch[k], got, b * row[k]));
            for (int64_t i = 0; i < b; i++) {
                cg_tensor *want_t = NULL;
                tu_ok(cg_tensor_select(d[k], 0, (int64_t)idx[i], &want_t));
                double want[12];
                tu_ok(cg_tensor_to_doubles(want_t, want, row[k]));
                for (int64_t e = 0; e < row[k]; e++)
                    ck_assert_msg(got[i * row[k] + e] == want[e],
                                  "tensor %d, row %g, element %lld", k, idx[i],
                                  (long long)e);
                cg_tensor_release(want_t);
            }
            cg_tensor_release(batch[k]);
        }
        cg_tensor_release(batch[3]);
        seen += (int)b;
    }
    ck_assert_int_eq(seen, N);
    cg_dataloader_free(dl);
    for (int k = 0; k < 4; k++)
        cg_tensor_release(d[k]);
    cg_tensor_release(base_a);
    cg_tensor_release(base_b);
    cg_tensor_release(base_c);
}
END_TEST

START_TEST(test_dataloader)
{
    tu_table t = tu_table_load("optim/loader.tsv");
    for (int r = 0; r < t.nrows; r++) {
        const char *name = tu_table_cell(&t, r, "name");
        int64_t n = strtoll(tu_table_cell(&t, r, "n"), NULL, 10);
        cg_dataloader_options o = cg_dataloader_defaults();
        o.batch_size = strtoll(tu_table_cell(&t, r, "batch_size"), NULL, 10);
        o.shuffle = strcmp(tu_table_cell(&t, r, "shuffle"), "1") == 0;
        o.drop_last = strcmp(tu_table_cell(&t, r, "drop_last"), "1") == 0;
        const char *gs = tu_table_cell(&t, r, "gen_seed");
        cg_generator *g = NULL;
        if (strcmp(gs, "-") != 0)
            tu_ok(cg_generator_new(strtoull(gs, NULL, 10), &g));
        o.generator = g;
        cg_manual_seed(4321);
        /* x = arange(2n).view(n, 2) (float32), y = arange(n) (float64) */
        cg_tensor *x0 = NULL, *x = NULL, *y = NULL;
        tu_ok(cg_arange(2 * n, CG_FLOAT32, &x0));
        tu_ok(cg_tensor_view(x0, (int64_t[]){n, 2}, 2, &x));
        tu_ok(cg_arange(n, CG_FLOAT64, &y));
        cg_tensor *data[2] = {x, y};
        cg_dataloader *dl = NULL;
        tu_ok(cg_dataloader_new(data, 2, &o, &dl));
        ck_assert_int_eq(cg_dataloader_len(dl),
                         strtoll(tu_table_cell(&t, r, "len"), NULL, 10));
        char epochs[8192];
        snprintf(epochs, sizeof epochs, "%s", tu_table_cell(&t, r, "epochs"));
        char *ep[8];
        int ne = tu_split(epochs, ' ', ep, 8);
        for (int e = 0; e < ne; e++) {
            char *f[4];
            ck_assert_int_eq(tu_split(ep[e], '/', f, 4), 4);
            int limit = strcmp(f[0], "full") == 0 ? -1 : atoi(f[0]);
            char got[4096] = "", *w = got;
            int k = 0;
            for (;;) {
                cg_tensor *batch[2] = {NULL, NULL};
                bool has = false;
                tu_ok(cg_dataloader_next(dl, batch, &has));
                if (!has)
                    break;
                int64_t b = cg_tensor_shape(batch[1])[0];
                ck_assert_int_eq(cg_tensor_shape(batch[0])[0], b);
                ck_assert_int_eq(cg_tensor_shape(batch[0])[1], 2);
                double yv[1024], xv[2048];
                tu_ok(cg_tensor_to_doubles(batch[1], yv, b));
                tu_ok(cg_tensor_to_doubles(batch[0], xv, 2 * b));
                ck_assert(cg_tensor_dtype(batch[0]) == CG_FLOAT32);
                ck_assert(!cg_tensor_requires_grad(batch[0]));
                w += sprintf(w, "%s", k ? ";" : "");
                for (int64_t i = 0; i < b; i++) {
                    ck_assert(xv[2 * i] == 2 * yv[i]);
                    ck_assert(xv[2 * i + 1] == 2 * yv[i] + 1);
                    w += sprintf(w, "%s%lld", i ? "," : "", (long long)yv[i]);
                }
                cg_tensor_release(batch[0]);
                cg_tensor_release(batch[1]);
                k++;
                if (limit > 0 && k == limit) {
                    cg_dataloader_reset(dl); /* break */
                    break;
                }
            }
            if (k == 0)
                strcpy(got, "-");
            ck_assert_msg(strcmp(got, f[1]) == 0,
                          "%s epoch %d: %s, PyTorch's %s", name, e, got, f[1]);
            ck_assert_msg(rand_scalar(NULL) == strtod(f[2], NULL),
                          "%s epoch %d: the default generator is off", name, e);
            if (g)
                ck_assert_msg(rand_scalar(g) == strtod(f[3], NULL),
                              "%s epoch %d: the loader's generator is off",
                              name, e);
        }
        cg_dataloader_free(dl);
        cg_generator_free(g);
        cg_tensor_release(x0);
        cg_tensor_release(x);
        cg_tensor_release(y);
    }
    tu_table_free(&t);

    /* construction errors */
    cg_tensor *a = NULL, *b = NULL, *s = NULL;
    tu_ok(cg_zeros((int64_t[]){4, 2}, 2, CG_FLOAT32, &a));
    tu_ok(cg_zeros((int64_t[]){5}, 1, CG_FLOAT32, &b));
    tu_ok(cg_tensor_literal("3.", &s));
    cg_dataloader *dl = NULL;
    cg_dataloader_options o = cg_dataloader_defaults();
    cg_tensor *ab[2] = {a, b};
    tu_fails(cg_dataloader_new(ab, 2, &o, &dl), CG_ERR_VALUE,
             "Size mismatch between tensors");
    tu_fails(cg_dataloader_new(&s, 1, &o, &dl), CG_ERR_INDEX,
             "dimension specified as 0 but tensor has no dimensions");
    tu_fails(cg_dataloader_new(NULL, 0, &o, &dl), CG_ERR_INDEX,
             "tuple index out of range");
    o.batch_size = 0;
    tu_fails(cg_dataloader_new(&a, 1, &o, &dl), CG_ERR_VALUE,
             "batch_size should be a positive integer value, but got "
             "batch_size=0");
    cg_tensor *empty = NULL;
    tu_ok(cg_zeros((int64_t[]){0, 3}, 2, CG_FLOAT32, &empty));
    o = cg_dataloader_defaults();
    o.shuffle = true;
    tu_fails(cg_dataloader_new(&empty, 1, &o, &dl), CG_ERR_VALUE,
             "num_samples should be a positive integer value, but got "
             "num_samples=0");
    ck_assert_ptr_null(dl);
    cg_tensor_release(empty);
    cg_tensor_release(a);
    cg_tensor_release(b);
    cg_tensor_release(s);
}
END_TEST

/* ======================================================================
 * alloc: every allocation failing in turn
 * ====================================================================== */

typedef struct sweep_ctx {
    problem *pb;
    cg_optimizer_kind kind;
} sweep_ctx;

static cg_status optimizer_scenario(void *vctx)
{
    sweep_ctx *ctx = vctx;
    any_options d = defaults_of(ctx->kind);
    switch (ctx->kind) {
    case CG_OPTIM_SGD:
        d.sgd.lr = 0.1;
        d.sgd.momentum = 0.9;
        break;
    case CG_OPTIM_ADAM:
    case CG_OPTIM_ADAMW:
        d.adam.amsgrad = true;
        break;
    case CG_OPTIM_RMSPROP:
        d.rmsprop.momentum = 0.5;
        d.rmsprop.centered = true;
        break;
    default:
        break;
    }
    cg_tensor *a[2] = {ctx->pb->p[0], ctx->pb->p[3]};
    cg_tensor *b[2] = {ctx->pb->p[1], ctx->pb->p[2]};
    cg_param_group g[2] = {{a, 2, NULL}, {b, 2, NULL}};
    cg_optimizer *opt = NULL, *twin = NULL;
    cg_state_dict *sd = NULL;
    char buf[64];
    cg_status st = new_groups(ctx->kind, g, 2, &d, &opt);
    if (st == CG_OK)
        st = cg_optimizer_step(opt);
    if (st == CG_OK)
        st = cg_optimizer_step(opt);
    if (st == CG_OK)
        st = cg_optimizer_set_option(opt, 1, "initial_lr", 0.5);
    if (st == CG_OK)
        st = cg_optimizer_state_dict(opt, &sd);
    if (st == CG_OK)
        st = new_groups(ctx->kind, g, 2, &d, &twin);
    if (st == CG_OK)
        st = cg_optimizer_load_state_dict(twin, sd);
    if (st == CG_OK)
        st = cg_optimizer_repr(twin, buf, sizeof buf, NULL);
    if (st == CG_OK)
        st = cg_optimizer_zero_grad(twin, false);
    cg_state_dict_free(sd);
    cg_optimizer_free(twin);
    cg_optimizer_free(opt);
    return st;
}

START_TEST(test_alloc_optimizers)
{
    problem pb = make_problem(CG_FLOAT64);
    tu_ok(backward(&pb));
    for (int k = 0; k < CG_OPTIM_KIND_COUNT; k++) {
        sweep_ctx ctx = {&pb, (cg_optimizer_kind)k};
        long n = tu_alloc_sweep(optimizer_scenario, &ctx,
                                cg_optimizer_kind_name(ctx.kind));
        ck_assert_int_gt(n, 10);
    }
    free_problem(&pb);
}
END_TEST

typedef struct data_ctx {
    cg_tensor *x, *y;
    cg_generator *g;
} data_ctx;

static cg_status data_scenario(void *vctx)
{
    data_ctx *ctx = vctx;
    cg_tensor *perm = NULL;
    cg_status st = cg_randperm(7, CG_FLOAT64, ctx->g, &perm);
    cg_tensor_release(perm);
    cg_dataloader_options o = cg_dataloader_defaults();
    o.batch_size = 3;
    o.shuffle = true;
    cg_dataloader *dl = NULL;
    cg_tensor *data[2] = {ctx->x, ctx->y};
    if (st == CG_OK)
        st = cg_dataloader_new(data, 2, &o, &dl);
    for (int i = 0; i < 5 && st == CG_OK; i++) {
        cg_tensor *batch[2] = {NULL, NULL};
        bool has;
        st = cg_dataloader_next(dl, batch, &has);
        cg_tensor_release(batch[0]);
        cg_tensor_release(batch[1]);
    }
    cg_dataloader_free(dl);
    cg_tensor *p[2] = {ctx->x, ctx->y};
    double total;
    if (st == CG_OK)
        st = cg_clip_grad_norm_(p, 2, 1.0, 2.0, false, &total);
    if (st == CG_OK)
        st = cg_clip_grad_norm_(p, 2, 1.0, INFINITY, false, &total);
    if (st == CG_OK)
        st = cg_clip_grad_norm_(p, 2, 1.0, 3.0, false, &total);
    return st;
}

START_TEST(test_alloc_data)
{
    data_ctx ctx = {NULL, NULL, NULL};
    tu_ok(cg_randn((int64_t[]){8, 3}, 2, CG_FLOAT32, NULL, &ctx.x));
    tu_ok(cg_randn((int64_t[]){8}, 1, CG_FLOAT64, NULL, &ctx.y));
    for (int i = 0; i < 2; i++) {
        cg_tensor *t = i ? ctx.y : ctx.x, *g = NULL;
        tu_ok(cg_tensor_requires_grad_(t, true));
        tu_ok(cg_randn(cg_tensor_shape(t), cg_tensor_dim(t), cg_tensor_dtype(t),
                       NULL, &g));
        tu_ok(cg_tensor_set_grad(t, g));
        cg_tensor_release(g);
    }
    tu_ok(cg_generator_new(3, &ctx.g));
    long n = tu_alloc_sweep(data_scenario, &ctx, "randperm/dataloader/clip");
    ck_assert_int_gt(n, 5);
    cg_generator_free(ctx.g);
    cg_tensor_release(ctx.x);
    cg_tensor_release(ctx.y);
}
END_TEST

/* ======================================================================
 * suite
 * ====================================================================== */

Suite *optim_suite(void)
{
    Suite *s = suite_create("optim");
    int n = count_rows("optim/optim_cases.tsv");

    TCase *tc = tcase_create("trajectory");
    tcase_add_loop_test(tc, test_trajectory, 0, n);
    suite_add_tcase(s, tc);

    tc = tcase_create("state");
    tcase_add_loop_test(tc, test_state, 0, n);
    tcase_add_test(tc, test_load_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("behaviour");
    tcase_add_test(tc, test_zero_grad_and_skips);
    tcase_add_test(tc, test_version_counter);
    tcase_add_test(tc, test_groups_and_options);
    tcase_add_test(tc, test_repr);
    tcase_add_test(tc, test_transactional_step);
    suite_add_tcase(s, tc);

    tc = tcase_create("errors");
    tcase_add_test(tc, test_errors);
    suite_add_tcase(s, tc);

    tc = tcase_create("clip");
    tcase_add_test(tc, test_clip);
    tcase_add_test(tc, test_norms);
    suite_add_tcase(s, tc);

    tc = tcase_create("data");
    tcase_add_test(tc, test_randperm);
    tcase_add_test(tc, test_dataloader);
    tcase_add_test(tc, test_dataloader_strided);
    tcase_add_test(tc, test_optim_threads);
    suite_add_tcase(s, tc);

    tc = tcase_create("alloc");
    tcase_set_timeout(tc, 120);
    tcase_add_test(tc, test_alloc_optimizers);
    tcase_add_test(tc, test_alloc_data);
    suite_add_tcase(s, tc);
    return s;
}
