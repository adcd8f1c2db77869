/*
 * linear.c -- nn.Linear: y = x @ W^T + b, as PyTorch 1.13's
 * torch/nn/modules/linear.py.
 *
 * weight (out_features, in_features) and bias (out_features) are created
 * with torch.empty (whose negative-size message is reproduced) and drawn
 * by reset_parameters() from the default generator exactly as PyTorch:
 * kaiming_uniform_(weight, a=sqrt(5)) (bound sqrt(3) * gain / sqrt(fan_in),
 * gain = sqrt(2 / (1 + a^2)); no draws for a zero-element weight), then
 * uniform_(bias, -1/sqrt(fan_in), 1/sqrt(fan_in)) (bound 0 when fan_in is
 * 0, which still draws). Forward is F.linear (core/linear.c).
 *
 * Left out: device other than the CPU, the UserWarning for zero-element
 * init.
 */
#include "module_internal.h"

#include <math.h>
#include <string.h>

/* The weight and bias live in base.params only and are looked up by name
 * each time, as Python's forward reads self.weight: registering a new
 * "weight" on the module (cg_module_register_parameter) replaces it. */
typedef struct linear {
    cg_module base;
    int64_t in_features, out_features;
} linear;

static cg_tensor *weight_of(const cg_module *m)
{
    return cg__module_parameter(m, "weight");
}

static cg_tensor *bias_of(const cg_module *m)
{
    return cg__module_parameter(m, "bias");
}

static cg_status linear_forward(cg_module *m, cg_tensor *input, cg_tensor **out)
{
    cg_tensor *w = weight_of(m);
    if (!w)
        return cg_error(CG_ERR_TYPE, "linear(): argument 'weight' must be "
                                     "Tensor, not NoneType");
    return cg_linear(input, w, bias_of(m), out);
}

static cg_status linear_extra_repr(const cg_module *m, cg__strbuf *sb)
{
    const linear *l = (const linear *)m;
    return cg__sb_printf(sb, "in_features=%lld, out_features=%lld, bias=%s",
                         (long long)l->in_features, (long long)l->out_features,
                         bias_of(m) ? "True" : "False");
}

static cg_status linear_getattr(const cg_module *m, const char *name,
                                cg__strbuf *sb, bool *found)
{
    const linear *l = (const linear *)m;
    *found = true;
    if (strcmp(name, "in_features") == 0)
        return cg__sb_printf(sb, "%lld", (long long)l->in_features);
    if (strcmp(name, "out_features") == 0)
        return cg__sb_printf(sb, "%lld", (long long)l->out_features);
    *found = false;
    return CG_OK;
}

static const cg__module_vtable linear_vtable = {
    "Linear", linear_forward, linear_extra_repr, linear_getattr, NULL,
};

cg_linear_opts cg_linear_options(int64_t in_features, int64_t out_features)
{
    return (cg_linear_opts){
        .in_features = in_features,
        .out_features = out_features,
        .bias = true,
        .device = NULL,
        .dtype = CG_FLOAT32,
    };
}

/* A new leaf nn.Parameter registered on m as `name` (the table holds the
 * only reference). */
static cg_status add_parameter(cg_module *m, const char *name,
                               const int64_t *shape, int ndim, cg_dtype dt)
{
    cg_tensor *t = NULL;
    cg_status st = cg_empty(shape, ndim, dt, &t);
    if (st != CG_OK)
        return st;
    if ((st = cg_tensor_set_parameter(t, true)) == CG_OK &&
        (st = cg_tensor_set_name(t, name)) == CG_OK &&
        (st = cg_tensor_requires_grad_(t, true)) == CG_OK)
        st = cg__module_register_parameter(m, name, t);
    cg_tensor_release(t); /* the table keeps it alive */
    return st;
}

static cg_status reset(linear *l)
{
    cg_tensor *weight = weight_of(&l->base), *bias = bias_of(&l->base);
    bool prev = cg_set_grad_enabled(false); /* init runs under no_grad */
    cg_status st = CG_OK;
    double fan_in = (double)l->in_features;
    if (weight && cg_tensor_numel(weight) != 0) {
        /* in PyTorch's order of evaluation: sqrt(5)**2 is
         * 5.000000000000001 */
        double a = sqrt(5.0);
        double gain = sqrt(2.0 / (1 + a * a));
        double std = gain / sqrt(fan_in);
        double bound = sqrt(3.0) * std;
        st = cg_tensor_uniform_(weight, -bound, bound, NULL);
    }
    if (st == CG_OK && bias) {
        double bound = fan_in > 0 ? 1 / sqrt(fan_in) : 0;
        st = cg_tensor_uniform_(bias, -bound, bound, NULL);
    }
    cg_set_grad_enabled(prev);
    return st;
}

cg_status cg_linear_new(const cg_linear_opts *opts, cg_module **out)
{
    if (!opts)
        return cg__nn_null("opts");
    if (!out)
        return cg__nn_null("out");
    /* torch.empty((out_features, in_features), device, dtype) */
    int64_t shape[2] = {opts->out_features, opts->in_features};
    for (int i = 0; i < 2; i++)
        if (shape[i] < 0)
            return cg_error(CG_ERR_RUNTIME,
                            "Trying to create tensor with negative dimension "
                            "%lld: [%lld, %lld]",
                            (long long)shape[i], (long long)shape[0],
                            (long long)shape[1]);
    if (opts->device && strcmp(opts->device, "cpu") != 0)
        return cg_error(CG_ERR_RUNTIME,
                        "cgrad runs on the CPU only: device '%s' is not "
                        "available (use NULL, Python's None, or \"cpu\")",
                        opts->device);
    if ((int)opts->dtype < 0 || opts->dtype >= CG_DTYPE_COUNT)
        return cg_error(CG_ERR_RUNTIME,
                        "Only Tensors of floating point and complex dtype "
                        "can require gradients");
    cg_module *m = NULL;
    cg_status st = cg__module_alloc(sizeof(linear), &linear_vtable, &m);
    if (st != CG_OK)
        return st;
    linear *l = (linear *)m;
    l->in_features = opts->in_features;
    l->out_features = opts->out_features;
    if ((st = add_parameter(m, "weight", shape, 2, opts->dtype)) != CG_OK)
        goto fail;
    if (opts->bias)
        st = add_parameter(m, "bias", &opts->out_features, 1, opts->dtype);
    else
        st = cg__module_register_parameter(m, "bias", NULL);
    if (st != CG_OK || (st = reset(l)) != CG_OK)
        goto fail;
    *out = m;
    return CG_OK;
fail:
    cg_module_free(m);
    return st;
}

cg_tensor *cg_linear_weight(const cg_module *m)
{
    return cg__module_is(m, &linear_vtable) ? weight_of(m) : NULL;
}

cg_tensor *cg_linear_bias(const cg_module *m)
{
    return cg__module_is(m, &linear_vtable) ? bias_of(m) : NULL;
}

cg_status cg_linear_reset_parameters(cg_module *m)
{
    if (!m)
        return cg__nn_null("module");
    if (!cg__module_is(m, &linear_vtable))
        return cg_error(CG_ERR_TYPE, "expected a Linear, got a %s",
                        m->vt->type_name);
    return reset((linear *)m);
}
