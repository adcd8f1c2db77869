/*
 * pooling.c -- nn.MaxPool3d and nn.AvgPool3d (PyTorch 1.13's
 * torch/nn/modules/pooling.py).
 *
 * Like PyTorch, the modules keep their arguments as given and check
 * nothing at construction: a bad kernel size fails at forward with
 * F.max_pool3d's / F.avg_pool3d's message. stride=None becomes
 * kernel_size. A cg_ints of one entry stands for a Python int (printed
 * "kernel_size=2"), three entries for a tuple ("kernel_size=(2, 1, 3)").
 *
 * Left out: MaxPool3d(return_indices=True) (cgrad has no integer dtype for
 * the indices; the attribute reads False).
 */
#include "module_internal.h"

#include <string.h>

typedef struct max_pool3d {
    cg_module base;
    cg_max_pool3d_opts o; /* stride filled in */
} max_pool3d;

typedef struct avg_pool3d {
    cg_module base;
    cg_avg_pool3d_opts o; /* stride filled in; divisor via has_divisor */
} avg_pool3d;

/* A Python int (one entry) or tuple. */
static cg_status sb_int_or_tuple(cg__strbuf *sb, const cg_ints *v)
{
    if (v->n == 1)
        return cg__sb_printf(sb, "%lld", (long long)v->v[0]);
    return cg__sb_tuple(sb, v->v, v->n);
}

/* "kernel_size=2, stride=2, padding=0": how both extra_reprs start. */
static cg_status sb_window(cg__strbuf *sb, const cg_ints *kernel_size,
                           const cg_ints *stride, const cg_ints *padding)
{
    cg__sb_puts(sb, "kernel_size=");
    sb_int_or_tuple(sb, kernel_size);
    cg__sb_puts(sb, ", stride=");
    sb_int_or_tuple(sb, stride);
    cg__sb_puts(sb, ", padding=");
    return sb_int_or_tuple(sb, padding);
}

/* The attributes both pools have (kernel_size, stride, padding,
 * ceil_mode); *found is false when `name` is none of them. */
static cg_status window_getattr(const cg_ints *kernel_size,
                                const cg_ints *stride, const cg_ints *padding,
                                bool ceil_mode, const char *name,
                                cg__strbuf *sb, bool *found)
{
    *found = true;
    if (strcmp(name, "kernel_size") == 0)
        return sb_int_or_tuple(sb, kernel_size);
    if (strcmp(name, "stride") == 0)
        return sb_int_or_tuple(sb, stride);
    if (strcmp(name, "padding") == 0)
        return sb_int_or_tuple(sb, padding);
    if (strcmp(name, "ceil_mode") == 0)
        return cg__sb_puts(sb, ceil_mode ? "True" : "False");
    *found = false;
    return CG_OK;
}

/* What both constructors do first: check the n cg_ints arguments v
 * (named `names` in the message), then allocate the module. */
static cg_status pool_alloc(const cg_ints *const *v, const char *const *names,
                            int n, size_t size, const cg__module_vtable *vt,
                            cg_module **out)
{
    for (int i = 0; i < n; i++) {
        cg_status st = cg__conv_check_ints(v[i], names[i]);
        if (st != CG_OK)
            return st;
    }
    return cg__module_alloc(size, vt, out);
}

/* ======================================================================
 * nn.MaxPool3d
 * ====================================================================== */

static cg_status max_forward(cg_module *m, cg_tensor *input, cg_tensor **out)
{
    const cg_max_pool3d_opts *o = &((const max_pool3d *)m)->o;
    return cg_max_pool3d(input, o->kernel_size, o->stride, o->padding,
                         o->dilation, o->ceil_mode, out);
}

static cg_status max_extra_repr(const cg_module *m, cg__strbuf *sb)
{
    const cg_max_pool3d_opts *o = &((const max_pool3d *)m)->o;
    sb_window(sb, &o->kernel_size, &o->stride, &o->padding);
    cg__sb_puts(sb, ", dilation=");
    sb_int_or_tuple(sb, &o->dilation);
    return cg__sb_printf(sb, ", ceil_mode=%s", o->ceil_mode ? "True" : "False");
}

static cg_status max_getattr(const cg_module *m, const char *name,
                             cg__strbuf *sb, bool *found)
{
    const cg_max_pool3d_opts *o = &((const max_pool3d *)m)->o;
    cg_status st = window_getattr(&o->kernel_size, &o->stride, &o->padding,
                                  o->ceil_mode, name, sb, found);
    if (*found)
        return st;
    *found = true;
    if (strcmp(name, "dilation") == 0)
        return sb_int_or_tuple(sb, &o->dilation);
    if (strcmp(name, "return_indices") == 0)
        return cg__sb_puts(sb, "False");
    *found = false;
    return CG_OK;
}

static const cg__module_vtable max_vtable = {
    "MaxPool3d", max_forward, max_extra_repr, max_getattr, NULL,
};

cg_max_pool3d_opts cg_max_pool3d_options(cg_ints kernel_size)
{
    return (cg_max_pool3d_opts){
        .kernel_size = kernel_size,
        .stride = {0, {0}}, /* None */
        .padding = CG_INTS(1, 0),
        .dilation = CG_INTS(1, 1),
        .ceil_mode = false,
    };
}

cg_status cg_max_pool3d_new(const cg_max_pool3d_opts *opts, cg_module **out)
{
    if (!opts)
        return cg__nn_null("opts");
    if (!out)
        return cg__nn_null("out");
    const cg_ints *const v[4] = {&opts->kernel_size, &opts->stride,
                                 &opts->padding, &opts->dilation};
    static const char *const names[4] = {"kernel_size", "stride", "padding",
                                         "dilation"};
    cg_module *m = NULL;
    cg_status st = pool_alloc(v, names, 4, sizeof(max_pool3d), &max_vtable, &m);
    if (st != CG_OK)
        return st;
    max_pool3d *p = (max_pool3d *)m;
    p->o = *opts;
    /* stride if (stride is not None) else kernel_size */
    if (opts->stride.n == 0)
        p->o.stride = opts->kernel_size;
    *out = m;
    return CG_OK;
}

const cg_max_pool3d_opts *cg_max_pool3d_config(const cg_module *m)
{
    return cg__module_is(m, &max_vtable) ? &((const max_pool3d *)m)->o : NULL;
}

/* ======================================================================
 * nn.AvgPool3d
 * ====================================================================== */

static cg_status avg_forward(cg_module *m, cg_tensor *input, cg_tensor **out)
{
    const cg_avg_pool3d_opts *o = &((const avg_pool3d *)m)->o;
    return cg_avg_pool3d(input, o->kernel_size, o->stride, o->padding,
                         o->ceil_mode, o->count_include_pad,
                         o->has_divisor_override ? &o->divisor_override : NULL,
                         out);
}

static cg_status avg_extra_repr(const cg_module *m, cg__strbuf *sb)
{
    const cg_avg_pool3d_opts *o = &((const avg_pool3d *)m)->o;
    return sb_window(sb, &o->kernel_size, &o->stride, &o->padding);
}

static cg_status avg_getattr(const cg_module *m, const char *name,
                             cg__strbuf *sb, bool *found)
{
    const cg_avg_pool3d_opts *o = &((const avg_pool3d *)m)->o;
    cg_status st = window_getattr(&o->kernel_size, &o->stride, &o->padding,
                                  o->ceil_mode, name, sb, found);
    if (*found)
        return st;
    *found = true;
    if (strcmp(name, "count_include_pad") == 0)
        return cg__sb_puts(sb, o->count_include_pad ? "True" : "False");
    if (strcmp(name, "divisor_override") == 0)
        return o->has_divisor_override
                   ? cg__sb_printf(sb, "%lld", (long long)o->divisor_override)
                   : cg__sb_puts(sb, "None");
    *found = false;
    return CG_OK;
}

static const cg__module_vtable avg_vtable = {
    "AvgPool3d", avg_forward, avg_extra_repr, avg_getattr, NULL,
};

cg_avg_pool3d_opts cg_avg_pool3d_options(cg_ints kernel_size)
{
    return (cg_avg_pool3d_opts){
        .kernel_size = kernel_size,
        .stride = {0, {0}}, /* None */
        .padding = CG_INTS(1, 0),
        .ceil_mode = false,
        .count_include_pad = true,
        .has_divisor_override = false,
        .divisor_override = 0,
    };
}

cg_status cg_avg_pool3d_new(const cg_avg_pool3d_opts *opts, cg_module **out)
{
    if (!opts)
        return cg__nn_null("opts");
    if (!out)
        return cg__nn_null("out");
    const cg_ints *const v[3] = {&opts->kernel_size, &opts->stride,
                                 &opts->padding};
    static const char *const names[3] = {"kernel_size", "stride", "padding"};
    cg_module *m = NULL;
    cg_status st = pool_alloc(v, names, 3, sizeof(avg_pool3d), &avg_vtable, &m);
    if (st != CG_OK)
        return st;
    avg_pool3d *p = (avg_pool3d *)m;
    p->o = *opts;
    if (opts->stride.n == 0)
        p->o.stride = opts->kernel_size;
    *out = m;
    return CG_OK;
}

const cg_avg_pool3d_opts *cg_avg_pool3d_config(const cg_module *m)
{
    return cg__module_is(m, &avg_vtable) ? &((const avg_pool3d *)m)->o : NULL;
}
