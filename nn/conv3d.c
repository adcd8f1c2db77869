/*
 * conv3d.c -- nn.Conv3d, and _ConvNd: what Conv3d and ConvTranspose3d
 * share (construction checks, parameters, reset_parameters, repr and
 * attributes).
 *
 * Mirrors PyTorch 1.13's torch/nn/modules/conv.py: _ConvNd.__init__ checks
 * groups, the channel divisibility and (Conv3d) the padding mode, then
 * creates weight and bias with torch.empty (whose negative-size error it
 * reproduces) as nn.Parameters, and reset_parameters() draws them from the
 * default generator exactly as PyTorch does (kaiming_uniform_ with
 * a = sqrt(5), then the bias bound 1/sqrt(fan_in)).
 *
 * Left out: padding='same' / 'valid' (a cg_ints cannot hold a string);
 * Conv3d's forward for the padding modes 'reflect', 'replicate' and
 * 'circular' (they need F.pad, which cgrad does not have yet: such a
 * module constructs and prints as in PyTorch, and its forward is a
 * NotImplementedError); the UserWarning "Initializing zero-element
 * tensors is a no-op" (cgrad has no warnings channel; the no-op itself is
 * kept). Where 1.13 leaves a bias with fan_in == 0 uninitialised, cgrad
 * sets it to zeros.
 */
#include "module_internal.h"

#include <math.h>
#include <string.h>

/* ======================================================================
 * _ConvNd: construction
 * ====================================================================== */

cg_status cg__conv_check_ints(const cg_ints *v, const char *what)
{
    if (v->n < 0 || v->n > 8)
        return cg_error(CG_ERR_MISUSE,
                        "%s: a cg_ints holds 0 to 8 entries, got n = %d", what,
                        v->n);
    return CG_OK;
}

int cg__conv_weight_shape(const cg__conv_args *a, int64_t *shape)
{
    /* Python's floor division; when the check above it passed, the
     * division is exact and C's truncation agrees. */
    if (a->transposed) {
        shape[0] = a->in_channels;
        shape[1] = a->out_channels / a->groups;
    } else {
        shape[0] = a->out_channels;
        shape[1] = a->in_channels / a->groups;
    }
    for (int i = 0; i < a->kernel_size.n; i++)
        shape[2 + i] = a->kernel_size.v[i];
    return 2 + a->kernel_size.n;
}

/* The padding modes Conv3d accepts, in the order 1.13 prints its set
 * (a Python set: the order is that of the reference run, see
 * tests/data/nn/gen_nn_errors.py). */
static const char *const padding_modes[] = {"replicate", "reflect", "zeros",
                                            "circular"};

cg_status cg__conv_validate(const cg__conv_args *a)
{
    if (a->groups <= 0)
        return cg_error(CG_ERR_VALUE, "groups must be a positive integer");
    if (a->in_channels % a->groups != 0)
        return cg_error(CG_ERR_VALUE,
                        "in_channels must be divisible by groups");
    if (a->out_channels % a->groups != 0)
        return cg_error(CG_ERR_VALUE,
                        "out_channels must be divisible by groups");
    bool mode_ok = false;
    for (size_t i = 0; i < sizeof padding_modes / sizeof *padding_modes; i++)
        mode_ok = mode_ok || strcmp(a->padding_mode, padding_modes[i]) == 0;
    if (!mode_ok)
        return cg_error(CG_ERR_VALUE,
                        "padding_mode must be one of {'%s', '%s', '%s', "
                        "'%s'}, but got padding_mode='%s'",
                        padding_modes[0], padding_modes[1], padding_modes[2],
                        padding_modes[3], a->padding_mode);
    /* torch.empty(..., device=device) */
    if (a->device && strcmp(a->device, "cpu") != 0)
        return cg_error(CG_ERR_RUNTIME,
                        "cgrad runs on the CPU only: device '%s' is not "
                        "available (use NULL, Python's None, or \"cpu\")",
                        a->device);
    /* torch.empty(weight shape): the first negative size, with the shape */
    int64_t shape[CG_MAX_DIMS];
    int ndim = cg__conv_weight_shape(a, shape);
    for (int i = 0; i < ndim; i++) {
        if (shape[i] >= 0)
            continue;
        char list[CG_MAX_DIMS * 24 + 4];
        size_t used = 0;
        list[used++] = '[';
        for (int j = 0; j < ndim; j++)
            used +=
                (size_t)snprintf(list + used, sizeof list - used,
                                 j ? ", %lld" : "%lld", (long long)shape[j]);
        snprintf(list + used, sizeof list - used, "]");
        return cg_error(CG_ERR_RUNTIME,
                        "Trying to create tensor with negative dimension "
                        "%lld: %s",
                        (long long)shape[i], list);
    }
    /* nn.Parameter(..., requires_grad=True); every valid cg_dtype is a
     * floating or complex type */
    if ((int)a->dtype < 0 || a->dtype >= CG_DTYPE_COUNT)
        return cg_error(CG_ERR_RUNTIME,
                        "Only Tensors of floating point and complex dtype "
                        "can require gradients");
    return CG_OK;
}

/* Keeps the options the cg_*_config accessors lend out in step with the
 * stored arguments. */
static void sync_options(cg__conv *c)
{
    const cg__conv_args *a = &c->a;
    c->topts = (cg_conv_transpose3d_opts){
        .in_channels = a->in_channels,
        .out_channels = a->out_channels,
        .kernel_size = a->kernel_size,
        .stride = a->stride,
        .padding = a->padding,
        .output_padding = a->output_padding,
        .groups = a->groups,
        .bias = c->bias != NULL,
        .dilation = a->dilation,
        .padding_mode = c->mode,
        .device = a->device,
        .dtype = a->dtype,
    };
    c->copts = (cg_conv3d_opts){
        .in_channels = a->in_channels,
        .out_channels = a->out_channels,
        .kernel_size = a->kernel_size,
        .stride = a->stride,
        .padding = a->padding,
        .dilation = a->dilation,
        .groups = a->groups,
        .bias = c->bias != NULL,
        .padding_mode = c->mode,
        .device = a->device,
        .dtype = a->dtype,
    };
}

/* A new leaf nn.Parameter named `name` of the given shape, registered on
 * m (which then holds the only reference). */
static cg_status new_parameter(cg_module *m, const char *name,
                               const int64_t *shape, int ndim, cg_dtype dt,
                               cg_tensor **param)
{
    cg_tensor *t = NULL;
    cg_status st = cg_empty(shape, ndim, dt, &t);
    if (st != CG_OK)
        return st;
    if ((st = cg_tensor_set_parameter(t, true)) != CG_OK ||
        (st = cg_tensor_set_name(t, name)) != CG_OK ||
        (st = cg_tensor_requires_grad_(t, true)) != CG_OK ||
        (st = cg__module_register_parameter(m, name, t)) != CG_OK) {
        cg_tensor_release(t);
        return st;
    }
    cg_tensor_release(t); /* the module's table keeps it alive */
    *param = t;
    return CG_OK;
}

cg_status cg__conv_new(const cg__conv_args *a, const cg__module_vtable *vt,
                       cg_module **out)
{
    cg_status st = cg__conv_validate(a);
    if (st != CG_OK)
        return st;
    cg_module *m = NULL;
    if ((st = cg__module_alloc(sizeof(cg__conv), vt, &m)) != CG_OK)
        return st;
    cg__conv *c = (cg__conv *)m;
    c->a = *a;
    c->a.device = a->device ? "cpu" : NULL; /* not the caller's pointer */
    if (!(c->mode = cg__strdup(a->padding_mode))) {
        st = cg__nn_nomem(strlen(a->padding_mode) + 1);
        goto fail;
    }
    c->a.padding_mode = c->mode;

    int64_t shape[CG_MAX_DIMS];
    int ndim = cg__conv_weight_shape(a, shape);
    if ((st = new_parameter(m, "weight", shape, ndim, a->dtype, &c->weight)) !=
        CG_OK)
        goto fail;
    if (a->bias) {
        if ((st = new_parameter(m, "bias", &a->out_channels, 1, a->dtype,
                                &c->bias)) != CG_OK)
            goto fail;
    } else if ((st = cg__module_register_parameter(m, "bias", NULL)) != CG_OK) {
        goto fail;
    }
    if ((st = cg__conv_reset_parameters(c)) != CG_OK)
        goto fail;
    sync_options(c);
    *out = m;
    return CG_OK;
fail:
    cg_module_free(m);
    return st;
}

void cg__conv_destroy(cg_module *m)
{
    cg_free(((cg__conv *)m)->mode);
}

cg_status cg__conv_set_padding_mode(cg__conv *c, const char *mode)
{
    if (!mode)
        return cg__nn_null("padding_mode");
    char *copy = cg__strdup(mode);
    if (!copy)
        return cg__nn_nomem(strlen(mode) + 1);
    cg_free(c->mode);
    c->mode = copy;
    c->a.padding_mode = copy;
    sync_options(c);
    return CG_OK;
}

/* ======================================================================
 * _ConvNd.reset_parameters
 * ====================================================================== */

/* init._calculate_fan_in_and_fan_out(weight)[0]: weight.size(1) times
 * the product of the sizes after it. For a transposed convolution
 * dimension 1 holds the output channels per group. Exact in double for
 * any size a tensor can have in practice. */
static double fan_in_of(const cg_tensor *w)
{
    const int64_t *shape = cg_tensor_shape(w);
    double fan = (double)shape[1];
    for (int i = 2; i < cg_tensor_dim(w); i++)
        fan *= (double)shape[i];
    return fan;
}

cg_status cg__conv_reset_parameters(cg__conv *c)
{
    /* init functions run under torch.no_grad() */
    bool prev = cg_set_grad_enabled(false);
    cg_status st = CG_OK;
    double fan_in = fan_in_of(c->weight);
    if (cg_tensor_numel(c->weight) != 0) {
        /* kaiming_uniform_(w, a=math.sqrt(5)), evaluated as PyTorch does
         * it, in this order: sqrt(5)**2 is 5.000000000000001, and the
         * bound ends one ulp below 1/sqrt(fan_in). */
        double a = sqrt(5.0);
        double gain = sqrt(2.0 / (1 + a * a));
        double std = gain / sqrt(fan_in);
        double bound = sqrt(3.0) * std;
        st = cg_tensor_uniform_(c->weight, -bound, bound, NULL);
    }
    /* else: "Initializing zero-element tensors is a no-op", no draws */
    if (st == CG_OK && c->bias) {
        if (fan_in != 0) {
            double bound = 1 / sqrt(fan_in);
            st = cg_tensor_uniform_(c->bias, -bound, bound, NULL);
        } else {
            st = cg_tensor_zero_(c->bias);
        }
    }
    cg_set_grad_enabled(prev);
    return st;
}

/* ======================================================================
 * _ConvNd: repr and attributes
 * ====================================================================== */

static bool all_equal(const cg_ints *v, int64_t x)
{
    for (int i = 0; i < v->n; i++)
        if (v->v[i] != x)
            return false;
    return true;
}

cg_status cg__conv_extra_repr_args(const cg__conv_args *a, bool has_bias,
                                   cg__strbuf *sb)
{
    cg__sb_printf(sb, "%lld, %lld, kernel_size=", (long long)a->in_channels,
                  (long long)a->out_channels);
    cg__sb_tuple(sb, a->kernel_size.v, a->kernel_size.n);
    cg__sb_puts(sb, ", stride=");
    cg__sb_tuple(sb, a->stride.v, a->stride.n);
    /* each only when it differs from (default,) * len(value) */
    if (!all_equal(&a->padding, 0)) {
        cg__sb_puts(sb, ", padding=");
        cg__sb_tuple(sb, a->padding.v, a->padding.n);
    }
    if (!all_equal(&a->dilation, 1)) {
        cg__sb_puts(sb, ", dilation=");
        cg__sb_tuple(sb, a->dilation.v, a->dilation.n);
    }
    if (!all_equal(&a->output_padding, 0)) {
        cg__sb_puts(sb, ", output_padding=");
        cg__sb_tuple(sb, a->output_padding.v, a->output_padding.n);
    }
    if (a->groups != 1)
        cg__sb_printf(sb, ", groups=%lld", (long long)a->groups);
    if (!has_bias)
        cg__sb_puts(sb, ", bias=False");
    /* str.format of a str: no quotes */
    if (strcmp(a->padding_mode, "zeros") != 0)
        cg__sb_printf(sb, ", padding_mode=%s", a->padding_mode);
    return cg__sb_status(sb);
}

cg_status cg__conv_extra_repr(const cg_module *m, cg__strbuf *sb)
{
    const cg__conv *c = (const cg__conv *)m;
    return cg__conv_extra_repr_args(&c->a, c->bias != NULL, sb);
}

cg_status cg__conv_getattr(const cg_module *m, const char *name, cg__strbuf *sb,
                           bool *found)
{
    const cg__conv *c = (const cg__conv *)m;
    const cg__conv_args *a = &c->a;
    const struct {
        const char *name;
        const cg_ints *v;
    } tuples[] = {
        {"kernel_size", &a->kernel_size},
        {"stride", &a->stride},
        {"padding", &a->padding},
        {"dilation", &a->dilation},
        {"output_padding", &a->output_padding},
    };
    const struct {
        const char *name;
        int64_t v;
    } ints[] = {
        {"in_channels", a->in_channels},
        {"out_channels", a->out_channels},
        {"groups", a->groups},
    };
    *found = true;
    for (size_t i = 0; i < sizeof tuples / sizeof *tuples; i++)
        if (strcmp(name, tuples[i].name) == 0)
            return cg__sb_tuple(sb, tuples[i].v->v, tuples[i].v->n);
    for (size_t i = 0; i < sizeof ints / sizeof *ints; i++)
        if (strcmp(name, ints[i].name) == 0)
            return cg__sb_printf(sb, "%lld", (long long)ints[i].v);
    if (strcmp(name, "padding_mode") == 0)
        return cg__sb_pystr(sb, a->padding_mode);
    if (strcmp(name, "transposed") == 0)
        return cg__sb_puts(sb, a->transposed ? "True" : "False");
    *found = false;
    return CG_OK;
}

/* ======================================================================
 * nn.Conv3d
 * ====================================================================== */

static cg_status conv3d_forward(cg_module *m, cg_tensor *input,
                                cg_tensor **out);

static const cg__module_vtable conv3d_vtable = {
    "Conv3d",         conv3d_forward,   cg__conv_extra_repr,
    cg__conv_getattr, cg__conv_destroy,
};

cg_conv3d_opts cg_conv3d_options(int64_t in_channels, int64_t out_channels,
                                 cg_ints kernel_size)
{
    return (cg_conv3d_opts){
        .in_channels = in_channels,
        .out_channels = out_channels,
        .kernel_size = kernel_size,
        .stride = CG_INT3(1),
        .padding = CG_INT3(0),
        .dilation = CG_INT3(1),
        .groups = 1,
        .bias = true,
        .padding_mode = "zeros",
        .device = NULL,
        .dtype = CG_FLOAT32,
    };
}

cg_status cg_conv3d_new(const cg_conv3d_opts *opts, cg_module **out)
{
    if (!opts)
        return cg__nn_null("opts");
    if (!out)
        return cg__nn_null("out");
    if (!opts->padding_mode)
        return cg__nn_null("padding_mode");
    cg_status st;
    if ((st = cg__conv_check_ints(&opts->kernel_size, "kernel_size")) !=
            CG_OK ||
        (st = cg__conv_check_ints(&opts->stride, "stride")) != CG_OK ||
        (st = cg__conv_check_ints(&opts->padding, "padding")) != CG_OK ||
        (st = cg__conv_check_ints(&opts->dilation, "dilation")) != CG_OK)
        return st;
    cg__conv_args a = {
        .in_channels = opts->in_channels,
        .out_channels = opts->out_channels,
        .kernel_size = opts->kernel_size,
        .stride = opts->stride,
        .padding = opts->padding,
        .dilation = opts->dilation,
        .transposed = false,
        .output_padding = CG_INT3(0), /* _triple(0) */
        .groups = opts->groups,
        .bias = opts->bias,
        .padding_mode = opts->padding_mode,
        .device = opts->device,
        .dtype = opts->dtype,
    };
    return cg__conv_new(&a, &conv3d_vtable, out);
}

static cg_status conv3d_forward(cg_module *m, cg_tensor *input, cg_tensor **out)
{
    cg__conv *c = (cg__conv *)m;
    if (strcmp(c->a.padding_mode, "zeros") != 0)
        return cg_error(CG_ERR_NOT_IMPLEMENTED,
                        "Conv3d with padding_mode='%s' needs F.pad, which "
                        "cgrad does not implement yet; only 'zeros' runs",
                        c->a.padding_mode);
    return cg_conv3d(input, c->weight, c->bias, c->a.stride, c->a.padding,
                     c->a.dilation, c->a.groups, out);
}

cg_tensor *cg_conv3d_weight(const cg_module *m)
{
    return cg__module_is(m, &conv3d_vtable) ? ((const cg__conv *)m)->weight
                                            : NULL;
}

cg_tensor *cg_conv3d_bias(const cg_module *m)
{
    return cg__module_is(m, &conv3d_vtable) ? ((const cg__conv *)m)->bias
                                            : NULL;
}

const cg_conv3d_opts *cg_conv3d_config(const cg_module *m)
{
    return cg__module_is(m, &conv3d_vtable) ? &((const cg__conv *)m)->copts
                                            : NULL;
}
