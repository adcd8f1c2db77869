/*
 * optimizer.c -- torch.optim.Optimizer, the part every optimizer shares:
 * parameter groups and their hyperparameters, add_param_group's checks,
 * zero_grad, the two-phase step driver, state_dict / load_state_dict and
 * repr, as in PyTorch 1.13 (torch/optim/optimizer.py).
 *
 * The kinds (sgd.c, adam.c, rmsprop.c, adagrad.c) supply a table: their
 * hyperparameters in PyTorch's param_groups order, their state entries in
 * PyTorch's order, the constructor checks, and the update split in two:
 * `prepare` checks and allocates (lazily created state), `update` only
 * computes. A step prepares every parameter first, so a failure (out of
 * memory, an unsupported case) leaves every value as it was; PyTorch may
 * have updated some parameters before it raises.
 *
 * Left out: closures (step(closure)), sparse gradients, foreach/fused/
 * capturable/differentiable (kept in param_groups as PyTorch's constant
 * values), hooks.
 */
#include "optim_internal.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static const char *const kind_names[CG_OPTIM_KIND_COUNT] = {
    [CG_OPTIM_SGD] = "SGD",         [CG_OPTIM_ADAM] = "Adam",
    [CG_OPTIM_ADAMW] = "AdamW",     [CG_OPTIM_RMSPROP] = "RMSprop",
    [CG_OPTIM_ADAGRAD] = "Adagrad",
};

const char *cg_optimizer_kind_name(cg_optimizer_kind kind)
{
    if ((int)kind < 0 || kind >= CG_OPTIM_KIND_COUNT)
        return "unknown";
    return kind_names[kind];
}

cg_optimizer_kind cg_optimizer_kind_of(const cg_optimizer *opt)
{
    return opt ? opt->vt->kind : CG_OPTIM_KIND_COUNT;
}

/* ======================================================================
 * Construction and parameter groups
 * ====================================================================== */

static void pstate_clear(cg__pstate *s)
{
    for (int k = 0; k < CG__MAX_SLOTS; k++)
        cg_tensor_release(s->tensors[k]);
    memset(s, 0, sizeof *s);
}

static void group_clear(cg__group *g)
{
    for (int i = 0; i < g->nextra; i++)
        cg_free(g->extra[i].name);
    cg_free(g->extra);
    g->extra = NULL;
    g->nextra = 0;
}

void cg_optimizer_free(cg_optimizer *opt)
{
    if (!opt)
        return;
    for (int i = 0; i < opt->nparams; i++) {
        pstate_clear(&opt->state[i]);
        cg_tensor_release(opt->params[i]);
    }
    for (int g = 0; g < opt->ngroups; g++)
        group_clear(&opt->groups[g]);
    cg_free(opt->state);
    cg_free(opt->params);
    cg_free(opt->groups);
    cg_free(opt);
}

/* The options of a group: `options` as given (of the optimizer's kind) or
 * the defaults; SGD's lr NAN ("not given") falls back to the default's,
 * and is PyTorch's required-parameter error when that is NAN too. */
static cg_status resolve_options(const cg_optimizer *opt, const void *options,
                                 cg__options *o)
{
    const cg__optim_vtable *vt = opt->vt;
    memset(o, 0, sizeof *o);
    if (options) {
        cg_optimizer_kind k = *(const cg_optimizer_kind *)options;
        if (k != vt->kind)
            return cg__optim_error(
                CG_ERR_MISUSE,
                "param group options are for %s, but the optimizer is %s",
                cg_optimizer_kind_name(k), cg_optimizer_kind_name(vt->kind));
        memcpy(o, options, vt->options_size);
    } else {
        *o = opt->defaults;
    }
    if (vt->kind == CG_OPTIM_SGD && isnan(o->sgd.lr)) {
        o->sgd.lr = opt->defaults.sgd.lr;
        if (isnan(o->sgd.lr))
            return cg__optim_error(CG_ERR_VALUE,
                                   "parameter group didn't specify a value "
                                   "of required optimization parameter lr");
    }
    return CG_OK;
}

/* add_param_group's checks, in PyTorch's order. */
static cg_status check_group(const cg_optimizer *opt, cg_tensor *const *params,
                             int n, const void *options, cg__options *o)
{
    if (n < 0)
        return cg__optim_error(CG_ERR_VALUE, "num_params must be >= 0");
    if (n > 0 && !params)
        return cg__optim_null("params");
    for (int i = 0; i < n; i++) {
        if (!params[i])
            return cg__optim_error(CG_ERR_MISUSE,
                                   "optimizer can only optimize Tensors, but "
                                   "one of the params is NoneType");
        if (!(cg_tensor_is_leaf(params[i]) ||
              cg_tensor_retains_grad(params[i])))
            return cg__optim_error(CG_ERR_VALUE,
                                   "can't optimize a non-leaf Tensor");
    }
    cg_status st = resolve_options(opt, options, o);
    if (st != CG_OK)
        return st;
    for (int i = 0; i < n; i++)
        for (int j = 0; j < i; j++)
            if (params[i] == params[j])
                return cg__optim_error(
                    CG_ERR_VALUE,
                    "optimizer contains a parameter group with duplicate "
                    "parameters; in future, this will cause an error; see "
                    "github.com/pytorch/pytorch/issues/40967 for more "
                    "information");
    for (int i = 0; i < n; i++)
        for (int j = 0; j < opt->nparams; j++)
            if (params[i] == opt->params[j])
                return cg__optim_error(CG_ERR_VALUE,
                                       "some parameters appear in more than "
                                       "one parameter group");
    return CG_OK;
}

static cg_status add_group(cg_optimizer *opt, cg_tensor *const *params, int n,
                           const void *options)
{
    cg__options o;
    cg_status st = check_group(opt, params, n, options, &o);
    if (st != CG_OK)
        return st;
    /* Grow the arrays; their counts change only at the commit below, so a
     * failure here leaves the optimizer as it was (with spare room). */
    size_t bytes = (size_t)(opt->ngroups + 1) * sizeof *opt->groups;
    cg__group *groups = cg_realloc(opt->groups, bytes);
    if (!groups)
        return cg__optim_nomem(bytes);
    opt->groups = groups;
    bytes = (size_t)(opt->nparams + n) * sizeof *opt->params;
    cg_tensor **ps = cg_realloc(opt->params, bytes);
    if (!ps)
        return cg__optim_nomem(bytes);
    opt->params = ps;
    bytes = (size_t)(opt->nparams + n) * sizeof *opt->state;
    cg__pstate *ss = cg_realloc(opt->state, bytes);
    if (!ss)
        return cg__optim_nomem(bytes);
    opt->state = ss;
    memset(ss + opt->nparams, 0, (size_t)n * sizeof *ss);

    cg__group g = {.nparams = n, .first = opt->nparams, .opts = o};
    if (opt->vt->init_state) {
        for (int i = 0; i < n; i++) {
            st = opt->vt->init_state(opt, &g, opt->nparams + i, params[i]);
            if (st != CG_OK) {
                for (int j = 0; j <= i; j++)
                    pstate_clear(&ss[opt->nparams + j]);
                return st;
            }
        }
    }
    for (int i = 0; i < n; i++)
        ps[opt->nparams + i] = cg_tensor_retain(params[i]);
    groups[opt->ngroups++] = g;
    opt->nparams += n;
    return CG_OK;
}

cg_status cg__optimizer_new(const cg__optim_vtable *vt,
                            const cg_param_group *groups, int num_groups,
                            const void *defaults, cg_optimizer **out)
{
    if (!out)
        return cg__optim_null("out");
    if (!defaults)
        return cg__optim_null("defaults");
    cg_optimizer_kind k = *(const cg_optimizer_kind *)defaults;
    if (k != vt->kind)
        return cg__optim_error(
            CG_ERR_MISUSE, "options are for %s, but the optimizer is %s",
            cg_optimizer_kind_name(k), cg_optimizer_kind_name(vt->kind));
    cg__options d;
    memset(&d, 0, sizeof d);
    memcpy(&d, defaults, vt->options_size);
    cg_status st = vt->check_defaults(&d);
    if (st != CG_OK)
        return st;
    if (num_groups <= 0)
        return cg__optim_error(CG_ERR_VALUE,
                               "optimizer got an empty parameter list");
    if (!groups)
        return cg__optim_null("groups");
    cg_optimizer *opt = cg_calloc(1, sizeof *opt);
    if (!opt)
        return cg__optim_nomem(sizeof *opt);
    opt->vt = vt;
    opt->defaults = d;
    for (int g = 0; g < num_groups; g++) {
        st = add_group(opt, groups[g].params, groups[g].num_params,
                       groups[g].options);
        if (st != CG_OK) {
            cg_optimizer_free(opt);
            return st;
        }
    }
    *out = opt;
    return CG_OK;
}

cg_status cg_optimizer_add_param_group(cg_optimizer *opt,
                                       cg_tensor *const *params, int num_params,
                                       const void *options)
{
    if (!opt)
        return cg__optim_null("optimizer");
    return add_group(opt, params, num_params, options);
}

int cg_optimizer_num_param_groups(const cg_optimizer *opt)
{
    return opt ? opt->ngroups : 0;
}

int cg_optimizer_group_size(const cg_optimizer *opt, int group)
{
    if (!opt || group < 0 || group >= opt->ngroups)
        return -1;
    return opt->groups[group].nparams;
}

cg_status cg_optimizer_param(const cg_optimizer *opt, int group, int i,
                             cg_tensor **param)
{
    if (!opt)
        return cg__optim_null("optimizer");
    if (!param)
        return cg__optim_null("param");
    cg_status st = cg__optim_check_index(group, opt->ngroups);
    if (st != CG_OK)
        return st;
    const cg__group *g = &opt->groups[group];
    if ((st = cg__optim_check_index(i, g->nparams)) != CG_OK)
        return st;
    *param = opt->params[g->first + i];
    return CG_OK;
}

/* ======================================================================
 * Group keys: hyperparameters and the keys schedulers add
 * ====================================================================== */

static const cg__hparam *find_hparam(const cg__optim_vtable *vt,
                                     const char *key)
{
    for (int i = 0; i < vt->nhparams; i++)
        if (strcmp(vt->hparams[i].name, key) == 0)
            return &vt->hparams[i];
    return NULL;
}

bool cg__optimizer_has_hparam(const cg_optimizer *opt, const char *key)
{
    const cg__hparam *h = find_hparam(opt->vt, key);
    return h && !h->constant;
}

bool cg__group_get(const cg_optimizer *opt, const cg__group *g, const char *key,
                   double *value)
{
    const cg__hparam *h = find_hparam(opt->vt, key);
    if (h && h->constant && h->type == HP_BOOL) {
        *value = 0.0; /* differentiable, capturable, fused: False */
        return true;
    }
    if (h && !h->constant) {
        cg__options o = g->opts;
        *value = h->type == HP_BOOL ? (*cg__hp_bool(&o, h) ? 1.0 : 0.0)
                                    : *cg__hp_double(&o, h);
        return true;
    }
    for (int i = 0; i < g->nextra; i++)
        if (strcmp(g->extra[i].name, key) == 0) {
            *value = g->extra[i].value;
            return true;
        }
    return false;
}

cg_status cg_optimizer_get_option(const cg_optimizer *opt, int group,
                                  const char *key, double *value)
{
    if (!opt)
        return cg__optim_null("optimizer");
    if (!key)
        return cg__optim_null("key");
    if (!value)
        return cg__optim_null("value");
    cg_status st = cg__optim_check_index(group, opt->ngroups);
    if (st != CG_OK)
        return st;
    if (!cg__group_get(opt, &opt->groups[group], key, value))
        return cg__optim_key_error(key);
    return CG_OK;
}

/* Adds or replaces an extra key of a group. */
static cg_status set_extra(cg__group *g, const char *key, double value,
                           bool is_bool)
{
    for (int i = 0; i < g->nextra; i++)
        if (strcmp(g->extra[i].name, key) == 0) {
            g->extra[i].value = value;
            g->extra[i].is_bool = is_bool;
            return CG_OK;
        }
    size_t len = strlen(key) + 1;
    char *name = cg_malloc(len);
    if (!name)
        return cg__optim_nomem(len);
    size_t bytes = (size_t)(g->nextra + 1) * sizeof *g->extra;
    cg__extra *ex = cg_realloc(g->extra, bytes);
    if (!ex) {
        cg_free(name);
        return cg__optim_nomem(bytes);
    }
    memcpy(name, key, len);
    g->extra = ex;
    ex[g->nextra++] = (cg__extra){name, value, is_bool};
    return CG_OK;
}

cg_status cg_optimizer_set_option(cg_optimizer *opt, int group, const char *key,
                                  double value)
{
    if (!opt)
        return cg__optim_null("optimizer");
    if (!key)
        return cg__optim_null("key");
    cg_status st = cg__optim_check_index(group, opt->ngroups);
    if (st != CG_OK)
        return st;
    cg__group *g = &opt->groups[group];
    const cg__hparam *h = find_hparam(opt->vt, key);
    if (h && h->constant)
        return cg__optim_error(
            CG_ERR_VALUE, "'%s' is fixed in cgrad (PyTorch's default)", key);
    if (h) {
        if (h->type == HP_BOOL)
            *cg__hp_bool(&g->opts, h) = value != 0.0;
        else
            *cg__hp_double(&g->opts, h) = value;
        return CG_OK;
    }
    return set_extra(g, key, value, false);
}

cg_status cg_optimizer_get_lr(const cg_optimizer *opt, int group, double *lr)
{
    return cg_optimizer_get_option(opt, group, "lr", lr);
}

cg_status cg_optimizer_set_lr(cg_optimizer *opt, int group, double lr)
{
    return cg_optimizer_set_option(opt, group, "lr", lr);
}

/* ---- snapshots of the groups, for the schedulers' constructors ------- */

cg_status cg__groups_save(const cg_optimizer *opt, cg__groups_snapshot *snap)
{
    snap->ngroups = opt->ngroups;
    snap->groups = cg_calloc((size_t)opt->ngroups + 1, sizeof *snap->groups);
    if (!snap->groups)
        return cg__optim_nomem(((size_t)opt->ngroups + 1) *
                               sizeof *snap->groups);
    for (int g = 0; g < opt->ngroups; g++) {
        const cg__group *src = &opt->groups[g];
        cg__group *dst = &snap->groups[g];
        dst->nparams = src->nparams;
        dst->first = src->first;
        dst->opts = src->opts;
        for (int e = 0; e < src->nextra; e++) {
            cg_status st =
                set_extra(dst, src->extra[e].name, src->extra[e].value,
                          src->extra[e].is_bool);
            if (st != CG_OK) {
                cg__groups_discard(snap);
                return st;
            }
        }
    }
    return CG_OK;
}

void cg__groups_discard(cg__groups_snapshot *snap)
{
    if (!snap->groups)
        return;
    for (int g = 0; g < snap->ngroups; g++)
        group_clear(&snap->groups[g]);
    cg_free(snap->groups);
    snap->groups = NULL;
}

void cg__groups_restore(cg_optimizer *opt, cg__groups_snapshot *snap)
{
    for (int g = 0; g < snap->ngroups && g < opt->ngroups; g++) {
        cg__group tmp = opt->groups[g];
        opt->groups[g] = snap->groups[g];
        snap->groups[g] = tmp;
    }
    cg__groups_discard(snap);
}

/* ======================================================================
 * zero_grad and step
 * ====================================================================== */

cg_status cg_optimizer_zero_grad(cg_optimizer *opt, bool set_to_none)
{
    if (!opt)
        return cg__optim_null("optimizer");
    for (int i = 0; i < opt->nparams; i++) {
        cg_status st = cg_tensor_zero_grad(opt->params[i], set_to_none);
        if (st != CG_OK)
            return st;
    }
    return CG_OK;
}

cg_status cg__state_tensor(const cg_tensor *like, double fill,
                           bool complex_fill, cg_tensor **out)
{
    cg_dtype dt = cg_tensor_dtype(like);
    const int64_t *shape = cg_tensor_shape(like);
    int nd = cg_tensor_dim(like);
    if (fill == 0.0)
        return cg_zeros(shape, nd, dt, out);
    if (complex_fill && cg_dtype_is_complex(dt))
        return cg_full_complex(shape, nd, fill, fill, dt, out);
    return cg_full(shape, nd, fill, dt, out);
}

cg_status cg__ensure_slot(cg_optimizer *opt, int index, int k,
                          const cg_tensor *param)
{
    cg__pstate *s = &opt->state[index];
    if (s->tensors[k])
        return CG_OK;
    cg_tensor *t = NULL;
    cg_status st = cg__state_tensor(param, 0.0, false, &t);
    if (st != CG_OK)
        return st;
    s->tensors[k] = t;
    s->has[k] = true;
    s->fresh[k] = true;
    return CG_OK;
}

/* Drops what the failed step created; clears the marks after a good one. */
static void finish_step(cg_optimizer *opt, bool failed)
{
    for (int i = 0; i < opt->nparams; i++) {
        cg__pstate *s = &opt->state[i];
        for (int k = 0; k < CG__MAX_SLOTS; k++) {
            if (s->fresh[k] && failed) {
                cg_tensor_release(s->tensors[k]);
                s->tensors[k] = NULL;
                s->has[k] = false;
            }
            s->fresh[k] = false;
        }
        if (s->fresh_present && failed)
            s->present = false;
        s->fresh_present = false;
    }
}

static cg_status check_grad(const cg_tensor *p, const cg_tensor *g)
{
    if (cg_tensor_dtype(g) != cg_tensor_dtype(p) ||
        cg_tensor_dim(g) != cg_tensor_dim(p) ||
        memcmp(cg_tensor_shape(g), cg_tensor_shape(p),
               (size_t)cg_tensor_dim(p) * sizeof(int64_t)) != 0)
        return cg__optim_error(CG_ERR_RUNTIME,
                               "a parameter's .grad differs from it in dtype "
                               "or shape");
    return CG_OK;
}

cg_status cg_optimizer_step(cg_optimizer *opt)
{
    if (!opt)
        return cg__optim_null("optimizer");
    bool prev = cg_set_grad_enabled(false);
    cg_status st = CG_OK;
    for (int gi = 0; gi < opt->ngroups && st == CG_OK; gi++) {
        const cg__group *g = &opt->groups[gi];
        for (int j = 0; j < g->nparams && st == CG_OK; j++) {
            int idx = g->first + j;
            cg_tensor *p = opt->params[idx];
            cg_tensor *grad = cg_tensor_grad(p);
            if (!grad)
                continue;
            st = check_grad(p, grad);
            if (st == CG_OK)
                st = cg__check_no_overlap(p);
            if (st == CG_OK)
                st = opt->vt->prepare(opt, g, idx, p, grad);
        }
    }
    if (st != CG_OK) {
        finish_step(opt, true);
        cg_set_grad_enabled(prev);
        return st;
    }
    for (int gi = 0; gi < opt->ngroups; gi++) {
        const cg__group *g = &opt->groups[gi];
        for (int j = 0; j < g->nparams; j++) {
            int idx = g->first + j;
            cg_tensor *p = opt->params[idx];
            cg_tensor *grad = cg_tensor_grad(p);
            if (!grad)
                continue;
            opt->vt->update(opt, g, idx, p, grad);
            cg_status bst = cg__bump_version(p);
            if (bst != CG_OK && st == CG_OK)
                st = bst;
        }
    }
    finish_step(opt, false);
    cg_set_grad_enabled(prev);
    return st;
}

/* ======================================================================
 * state_dict
 * ====================================================================== */

static cg_status put_clone(cg_state_dict *sd, const char *name, cg_tensor *t)
{
    cg_tensor *c = NULL;
    cg_status st = cg_tensor_clone(t, &c);
    if (st != CG_OK)
        return st;
    st = cg_state_dict_set_tensor(sd, name, c);
    cg_tensor_release(c);
    return st;
}

static cg_status put_state(const cg_optimizer *opt, cg_state_dict *sd)
{
    const cg__optim_vtable *vt = opt->vt;
    char name[128];
    cg_status st = CG_OK;
    for (int i = 0; i < opt->nparams && st == CG_OK; i++) {
        const cg__pstate *s = &opt->state[i];
        if (!s->present)
            continue;
        for (int k = 0; k < vt->nslots && st == CG_OK; k++) {
            if (!s->has[k])
                continue;
            snprintf(name, sizeof name, "state.%d.%s", i, vt->slots[k].name);
            switch (vt->slots[k].type) {
            case SLOT_STEP_F32: {
                float v = (float)s->step;
                cg_tensor *t = NULL;
                st = cg_tensor_from_data(&v, NULL, 0, CG_FLOAT32, &t);
                if (st == CG_OK)
                    st = cg_state_dict_set_tensor(sd, name, t);
                cg_tensor_release(t);
                break;
            }
            case SLOT_STEP_INT:
                st = cg_state_dict_set_number(sd, name, s->step);
                break;
            case SLOT_TENSOR:
            case SLOT_OPT_TENSOR:
                if (s->tensors[k])
                    st = put_clone(sd, name, s->tensors[k]);
                else
                    st = cg_state_dict_set_none(sd, name);
                break;
            }
        }
    }
    return st;
}

static cg_status put_groups(const cg_optimizer *opt, cg_state_dict *sd)
{
    const cg__optim_vtable *vt = opt->vt;
    char name[192];
    cg_status st = CG_OK;
    for (int gi = 0; gi < opt->ngroups && st == CG_OK; gi++) {
        const cg__group *g = &opt->groups[gi];
        cg__options o = g->opts;
        for (int h = 0; h < vt->nhparams && st == CG_OK; h++) {
            const cg__hparam *hp = &vt->hparams[h];
            snprintf(name, sizeof name, "param_groups.%d.%s", gi, hp->name);
            if (hp->type == HP_NONE)
                st = cg_state_dict_set_none(sd, name);
            else if (hp->type == HP_BOOL)
                st = cg_state_dict_set_bool(
                    sd, name, !hp->constant && *cg__hp_bool(&o, hp));
            else
                st = cg_state_dict_set_number(sd, name, *cg__hp_double(&o, hp));
        }
        for (int e = 0; e < g->nextra && st == CG_OK; e++) {
            snprintf(name, sizeof name, "param_groups.%d.%s", gi,
                     g->extra[e].name);
            st = g->extra[e].is_bool
                     ? cg_state_dict_set_bool(sd, name, g->extra[e].value != 0)
                     : cg_state_dict_set_number(sd, name, g->extra[e].value);
        }
        for (int j = 0; j < g->nparams && st == CG_OK; j++) {
            snprintf(name, sizeof name, "param_groups.%d.params.%d", gi, j);
            st = cg_state_dict_set_number(sd, name, (double)(g->first + j));
        }
    }
    return st;
}

cg_status cg_optimizer_state_dict(const cg_optimizer *opt, cg_state_dict **out)
{
    if (!opt)
        return cg__optim_null("optimizer");
    if (!out)
        return cg__optim_null("out");
    cg_state_dict *sd = NULL;
    cg_status st = cg_state_dict_new(&sd);
    if (st == CG_OK)
        st = put_state(opt, sd);
    if (st == CG_OK)
        st = put_groups(opt, sd);
    if (st != CG_OK) {
        cg_state_dict_free(sd);
        return st;
    }
    *out = sd;
    return CG_OK;
}

/* ======================================================================
 * load_state_dict: parse and validate everything into fresh structures,
 * then swap them in.
 * ====================================================================== */

/* Reads a non-negative decimal integer at *s, advancing it; false if
 * there is none or it overflows an int. */
static bool parse_index(const char **s, int *out)
{
    const char *p = *s;
    if (*p < '0' || *p > '9')
        return false;
    long v = 0;
    while (*p >= '0' && *p <= '9') {
        v = v * 10 + (*p - '0');
        if (v > 1000000000L)
            return false;
        p++;
    }
    *out = (int)v;
    *s = p;
    return true;
}

typedef struct load_ctx {
    const cg_optimizer *opt;
    const cg_state_dict *sd;
    int ngroups;       /* groups seen in the dict */
    int *group_len;    /* params.<j> entries per saved group */
    int *saved_index;  /* saved parameter index, flattened order */
    cg__group *groups; /* new groups (opts, extras) */
    cg__pstate *state; /* new state, nparams */
} load_ctx;

static void load_ctx_free(load_ctx *c)
{
    if (c->groups)
        for (int g = 0; g < c->opt->ngroups; g++)
            group_clear(&c->groups[g]);
    if (c->state)
        for (int i = 0; i < c->opt->nparams; i++)
            pstate_clear(&c->state[i]);
    cg_free(c->group_len);
    cg_free(c->saved_index);
    cg_free(c->groups);
    cg_free(c->state);
}

static cg_status bad_entry(const char *name, const char *why)
{
    return cg__optim_error(CG_ERR_VALUE, "loaded state dict entry '%s' %s",
                           name, why);
}

/* Pass 1: the number of groups and their sizes (PyTorch's checks). */
static cg_status load_count_groups(load_ctx *c)
{
    int n = cg_state_dict_size(c->sd);
    int maxg = -1;
    for (int i = 0; i < n; i++) {
        const char *name;
        cg_state_dict_entry(c->sd, i, &name, NULL, NULL, NULL);
        if (strncmp(name, "param_groups.", 13) == 0) {
            const char *p = name + 13;
            int g;
            if (!parse_index(&p, &g) || *p != '.')
                return bad_entry(name, "is not param_groups.<group>.<key>");
            if (g > maxg)
                maxg = g;
        } else if (strncmp(name, "state.", 6) != 0) {
            return bad_entry(name, "is neither state.* nor param_groups.*");
        }
    }
    c->ngroups = maxg + 1;
    if (c->ngroups != c->opt->ngroups)
        return cg__optim_error(CG_ERR_VALUE,
                               "loaded state dict has a different number of "
                               "parameter groups");
    c->group_len = cg_calloc((size_t)c->ngroups + 1, sizeof *c->group_len);
    if (!c->group_len)
        return cg__optim_nomem(((size_t)c->ngroups + 1) * sizeof(int));
    for (int i = 0; i < n; i++) {
        const char *name;
        cg_state_dict_entry(c->sd, i, &name, NULL, NULL, NULL);
        if (strncmp(name, "param_groups.", 13) != 0)
            continue;
        const char *p = name + 13;
        int g = 0, j = 0;
        parse_index(&p, &g);
        if (strncmp(p, ".params.", 8) != 0)
            continue;
        p += 8;
        if (!parse_index(&p, &j) || *p)
            return bad_entry(name, "is not param_groups.<g>.params.<j>");
        if (j + 1 > c->group_len[g])
            c->group_len[g] = j + 1;
    }
    for (int g = 0; g < c->ngroups; g++)
        if (c->group_len[g] != c->opt->groups[g].nparams)
            return cg__optim_error(CG_ERR_VALUE,
                                   "loaded state dict contains a parameter "
                                   "group that doesn't match the size of "
                                   "optimizer's group");
    return CG_OK;
}

/* Pass 2: the groups' keys and the saved parameter indices. */
static cg_status load_groups(load_ctx *c)
{
    const cg_optimizer *opt = c->opt;
    const cg__optim_vtable *vt = opt->vt;
    int nparams = opt->nparams;
    c->saved_index = cg_malloc(((size_t)nparams + 1) * sizeof(int));
    c->groups = cg_calloc((size_t)opt->ngroups + 1, sizeof *c->groups);
    if (!c->saved_index || !c->groups)
        return cg__optim_nomem(((size_t)nparams + 1) * sizeof(int));
    for (int i = 0; i < nparams; i++)
        c->saved_index[i] = -1;
    for (int g = 0; g < opt->ngroups; g++) {
        c->groups[g].nparams = opt->groups[g].nparams;
        c->groups[g].first = opt->groups[g].first;
        c->groups[g].opts = opt->groups[g].opts;
    }
    /* Which required hyperparameters each group has seen. */
    bool seen[64];
    for (int g = 0; g < opt->ngroups; g++) {
        memset(seen, 0, sizeof seen);
        char prefix[48];
        int plen = snprintf(prefix, sizeof prefix, "param_groups.%d.", g);
        for (int i = 0; i < cg_state_dict_size(c->sd); i++) {
            const char *name;
            cg_state_kind kind;
            double num;
            cg_state_dict_entry(c->sd, i, &name, &kind, NULL, &num);
            if (strncmp(name, prefix, (size_t)plen) != 0)
                continue;
            const char *key = name + plen;
            if (strncmp(key, "params.", 7) == 0) {
                const char *p = key + 7;
                int j = 0;
                parse_index(&p, &j);
                if (kind != CG_STATE_NUMBER || num < 0 || num != floor(num) ||
                    num > 1e9)
                    return bad_entry(name, "must be a parameter index");
                int pos = c->groups[g].first + j;
                if (c->saved_index[pos] >= 0)
                    return bad_entry(name, "is given twice");
                c->saved_index[pos] = (int)num;
                continue;
            }
            const cg__hparam *h = find_hparam(vt, key);
            if (h) {
                seen[h - vt->hparams] = true;
                if (h->constant)
                    continue; /* foreach, differentiable, ...: cgrad's own */
                if (h->type == HP_BOOL) {
                    if (kind != CG_STATE_BOOL && kind != CG_STATE_NUMBER)
                        return bad_entry(name, "must be a bool");
                    *cg__hp_bool(&c->groups[g].opts, h) = num != 0.0;
                } else {
                    if (kind != CG_STATE_NUMBER && kind != CG_STATE_BOOL)
                        return bad_entry(name, "must be a number");
                    *cg__hp_double(&c->groups[g].opts, h) = num;
                }
                continue;
            }
            if (strchr(key, '.') || !*key)
                return bad_entry(name, "is not a known key");
            if (kind != CG_STATE_NUMBER && kind != CG_STATE_BOOL)
                return bad_entry(name, "must be a number or a bool");
            cg_status st =
                set_extra(&c->groups[g], key, num, kind == CG_STATE_BOOL);
            if (st != CG_OK)
                return st;
        }
        for (int h = 0; h < vt->nhparams; h++)
            if (!seen[h] && !vt->hparams[h].constant)
                return cg__optim_error(CG_ERR_VALUE,
                                       "loaded state dict is missing "
                                       "'param_groups.%d.%s'",
                                       g, vt->hparams[h].name);
    }
    for (int i = 0; i < nparams; i++)
        for (int j = 0; j < i; j++)
            if (c->saved_index[i] == c->saved_index[j])
                return cg__optim_error(CG_ERR_VALUE,
                                       "loaded state dict gives parameter "
                                       "index %d twice",
                                       c->saved_index[i]);
    return CG_OK;
}

/* A tensor for the state of `param`: same shape; a real parameter gets
 * its dtype (PyTorch's cast), a complex one needs the same dtype. */
static cg_status load_tensor(const char *name, cg_tensor *t,
                             const cg_tensor *param, cg_tensor **out)
{
    int nd = cg_tensor_dim(param);
    if (cg_tensor_dim(t) != nd ||
        memcmp(cg_tensor_shape(t), cg_tensor_shape(param),
               (size_t)nd * sizeof(int64_t)) != 0)
        return bad_entry(name, "has a different shape from its parameter");
    cg_dtype pdt = cg_tensor_dtype(param);
    if (cg_dtype_is_complex(pdt) && cg_tensor_dtype(t) != pdt)
        return bad_entry(name, "must have its complex parameter's dtype");
    cg_tensor *conv = NULL;
    cg_status st = cg_tensor_to(t, pdt, &conv);
    if (st != CG_OK)
        return st;
    st = cg_tensor_clone(conv, out);
    cg_tensor_release(conv);
    return st;
}

/* Pass 3: the per-parameter state. */
static cg_status load_state(load_ctx *c)
{
    const cg_optimizer *opt = c->opt;
    const cg__optim_vtable *vt = opt->vt;
    size_t bytes = ((size_t)opt->nparams + 1) * sizeof *c->state;
    c->state = cg_calloc((size_t)opt->nparams + 1, sizeof *c->state);
    if (!c->state)
        return cg__optim_nomem(bytes);
    for (int i = 0; i < cg_state_dict_size(c->sd); i++) {
        const char *name;
        cg_state_kind kind;
        cg_tensor *t;
        double num;
        cg_state_dict_entry(c->sd, i, &name, &kind, &t, &num);
        if (strncmp(name, "state.", 6) != 0)
            continue;
        const char *p = name + 6;
        int saved;
        if (!parse_index(&p, &saved) || *p != '.')
            return bad_entry(name, "is not state.<index>.<name>");
        const char *slot = p + 1;
        int k = -1;
        for (int s = 0; s < vt->nslots; s++)
            if (strcmp(vt->slots[s].name, slot) == 0)
                k = s;
        if (k < 0)
            return bad_entry(name, "is not a state entry of this optimizer");
        int pos = -1;
        for (int j = 0; j < opt->nparams; j++)
            if (c->saved_index[j] == saved)
                pos = j;
        if (pos < 0)
            continue; /* state of no parameter: PyTorch keeps it, unused */
        cg__pstate *s = &c->state[pos];
        const cg_tensor *param = opt->params[pos];
        switch (vt->slots[k].type) {
        case SLOT_STEP_F32:
        case SLOT_STEP_INT:
            if (kind == CG_STATE_TENSOR && cg_tensor_numel(t) == 1) {
                cg_status st = cg_tensor_item(t, &num, NULL);
                if (st != CG_OK)
                    return st;
            } else if (kind != CG_STATE_NUMBER) {
                return bad_entry(name, "must be a number or a one-element "
                                       "tensor");
            }
            if (!(num >= 0) || num != floor(num))
                return bad_entry(name, "must be a non-negative whole number");
            s->step =
                vt->slots[k].type == SLOT_STEP_F32 ? (double)(float)num : num;
            break;
        case SLOT_TENSOR:
        case SLOT_OPT_TENSOR:
            if (kind == CG_STATE_NONE && vt->slots[k].type == SLOT_OPT_TENSOR)
                break;
            if (kind != CG_STATE_TENSOR)
                return bad_entry(name, "must be a tensor");
            {
                cg_status st = load_tensor(name, t, param, &s->tensors[k]);
                if (st != CG_OK)
                    return st;
            }
            break;
        }
        s->has[k] = true;
        s->present = true;
    }
    /* The entries every present state has (the conditional ones, such as
     * max_exp_avg_sq, are checked by the step, as PyTorch fails there). */
    for (int j = 0; j < opt->nparams; j++) {
        const cg__pstate *s = &c->state[j];
        if (!s->present)
            continue;
        for (int k = 0; k < vt->nslots; k++)
            if (vt->slots[k].required && !s->has[k])
                return cg__optim_error(CG_ERR_VALUE,
                                       "loaded state dict is missing "
                                       "'state.%d.%s'",
                                       c->saved_index[j], vt->slots[k].name);
    }
    return CG_OK;
}

cg_status cg_optimizer_load_state_dict(cg_optimizer *opt,
                                       const cg_state_dict *sd)
{
    if (!opt)
        return cg__optim_null("optimizer");
    if (!sd)
        return cg__optim_null("state dict");
    load_ctx c = {.opt = opt, .sd = sd};
    cg_status st = load_count_groups(&c);
    if (st == CG_OK)
        st = load_groups(&c);
    if (st == CG_OK)
        st = load_state(&c);
    if (st != CG_OK) {
        load_ctx_free(&c);
        return st;
    }
    /* Commit: swap the new groups' options and extras and the state in. */
    for (int g = 0; g < opt->ngroups; g++) {
        cg__group tmp = opt->groups[g];
        opt->groups[g] = c.groups[g];
        c.groups[g] = tmp;
    }
    cg__pstate *old = opt->state;
    opt->state = c.state;
    c.state = old;
    load_ctx_free(&c);
    return CG_OK;
}

/* ======================================================================
 * repr
 * ====================================================================== */

typedef struct strbuf {
    char *buf;
    size_t size, len;
} strbuf;

static void sb_printf(strbuf *b, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
static void sb_printf(strbuf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    size_t room = b->len < b->size ? b->size - b->len : 0;
    int n = vsnprintf(room ? b->buf + b->len : NULL, room, fmt, ap);
    va_end(ap);
    if (n > 0)
        b->len += (size_t)n;
}

typedef struct repr_item {
    const char *key;
    char value[96];
} repr_item;

static int item_cmp(const void *a, const void *b)
{
    return strcmp(((const repr_item *)a)->key, ((const repr_item *)b)->key);
}

cg_status cg_optimizer_repr(const cg_optimizer *opt, char *buf, size_t size,
                            size_t *len)
{
    if (!opt)
        return cg__optim_null("optimizer");
    if (!buf && size > 0)
        return cg__optim_null("buf");
    const cg__optim_vtable *vt = opt->vt;
    strbuf b = {buf, size, 0};
    sb_printf(&b, "%s (", cg_optimizer_kind_name(vt->kind));
    for (int gi = 0; gi < opt->ngroups; gi++) {
        const cg__group *g = &opt->groups[gi];
        cg__options o = g->opts;
        int nitems = vt->nhparams + g->nextra;
        repr_item *items = cg_malloc((size_t)nitems * sizeof *items);
        if (!items)
            return cg__optim_nomem((size_t)nitems * sizeof *items);
        int n = 0;
        char a[40], c[40];
        for (int h = 0; h < vt->nhparams; h++) {
            const cg__hparam *hp = &vt->hparams[h];
            size_t nl = strlen(hp->name);
            if (nl > 2 && strcmp(hp->name + nl - 2, ".1") == 0)
                continue; /* printed with its ".0" sibling as a tuple */
            repr_item *it = &items[n++];
            it->key = hp->name;
            if (hp->type == HP_NONE) {
                snprintf(it->value, sizeof it->value, "None");
            } else if (hp->type == HP_BOOL) {
                snprintf(it->value, sizeof it->value, "%s",
                         cg__pybool(!hp->constant && *cg__hp_bool(&o, hp)));
            } else if (nl > 2 && strcmp(hp->name + nl - 2, ".0") == 0) {
                /* "betas.0" + "betas.1" -> betas: (0.9, 0.999) */
                cg__pyfloat(*cg__hp_double(&o, hp), a, sizeof a);
                cg__pyfloat(*cg__hp_double(&o, hp + 1), c, sizeof c);
                snprintf(it->value, sizeof it->value, "(%s, %s)", a, c);
            } else {
                double v = *cg__hp_double(&o, hp);
                if (hp->int_default && v == 0.0)
                    snprintf(it->value, sizeof it->value, "0");
                else
                    cg__pyfloat(v, it->value, sizeof it->value);
            }
        }
        for (int e = 0; e < g->nextra; e++) {
            repr_item *it = &items[n++];
            it->key = g->extra[e].name;
            if (g->extra[e].is_bool)
                snprintf(it->value, sizeof it->value, "%s",
                         cg__pybool(g->extra[e].value != 0));
            else
                cg__pyfloat(g->extra[e].value, it->value, sizeof it->value);
        }
        qsort(items, (size_t)n, sizeof *items, item_cmp);
        sb_printf(&b, "\nParameter Group %d\n", gi);
        for (int i = 0; i < n; i++) {
            const char *key = items[i].key;
            size_t kl = strlen(key);
            int shown = (int)kl;
            if (kl > 2 && strcmp(key + kl - 2, ".0") == 0)
                shown -= 2;
            sb_printf(&b, "    %.*s: %s\n", shown, key, items[i].value);
        }
        cg_free(items);
    }
    sb_printf(&b, ")");
    if (len)
        *len = b.len;
    return CG_OK;
}
