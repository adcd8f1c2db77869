/*
 * batchnorm.c -- nn.BatchNorm3d (PyTorch 1.13's _NormBase / _BatchNorm /
 * BatchNorm3d in torch/nn/modules/batchnorm.py).
 *
 * Parameters weight (ones) and bias (zeros) when affine, else None.
 * Buffers running_mean (zeros), running_var (ones) and num_batches_tracked
 * when track_running_stats, else three None buffers; all persistent, so a
 * state_dict has PyTorch's five names in PyTorch's order. Forward is
 * _BatchNorm.forward: in training with running statistics it counts the
 * batch and uses momentum (or, for momentum=None, 1/num_batches_tracked:
 * the cumulative average) as the update factor; batch statistics are used
 * in training, or in evaluation when no running statistics are kept.
 *
 * Deviations, by necessity or by the house rules:
 *   - num_batches_tracked is a 0-d float64 tensor: cgrad has no integer
 *     dtype (PyTorch's is int64). Counts are exact up to 2**53.
 *   - PyTorch increments num_batches_tracked before F.batch_norm runs, so a
 *     failing forward (e.g. "Expected more than 1 value per channel when
 *     training") still counts the batch; cgrad counts it only when the
 *     forward succeeds, leaving the module unchanged on any error.
 */
#include "module_internal.h"

#include <string.h>

typedef struct batch_norm3d {
    cg_module base;
    cg_batch_norm3d_opts o; /* as given (device NULL or "cpu") */
} batch_norm3d;

static cg_status bn_forward(cg_module *m, cg_tensor *input, cg_tensor **out);
static cg_status bn_extra_repr(const cg_module *m, cg__strbuf *sb);
static cg_status bn_getattr(const cg_module *m, const char *name,
                            cg__strbuf *sb, bool *found);

static const cg__module_vtable bn_vtable = {
    "BatchNorm3d", bn_forward, bn_extra_repr, bn_getattr, NULL,
};

cg_batch_norm3d_opts cg_batch_norm3d_options(int64_t num_features)
{
    return (cg_batch_norm3d_opts){
        .num_features = num_features,
        .eps = 1e-5,
        .momentum = 0.1,
        .momentum_none = false,
        .affine = true,
        .track_running_stats = true,
        .device = NULL,
        .dtype = CG_FLOAT32,
    };
}

/* A new tensor of `shape` filled with v, registered as parameter or
 * buffer `name` of m (which then holds the only reference). */
static cg_status add_tensor(cg_module *m, const char *name,
                            const int64_t *shape, int ndim, double v,
                            cg_dtype dt, bool parameter)
{
    cg_tensor *t = NULL;
    cg_status st = cg_full(shape, ndim, v, dt, &t);
    if (st != CG_OK)
        return st;
    if (parameter && ((st = cg_tensor_set_parameter(t, true)) != CG_OK ||
                      (st = cg_tensor_requires_grad_(t, true)) != CG_OK))
        goto done;
    if ((st = cg_tensor_set_name(t, name)) != CG_OK)
        goto done;
    st = parameter ? cg__module_register_parameter(m, name, t)
                   : cg__module_register_buffer(m, name, t, true);
done:
    cg_tensor_release(t);
    return st;
}

cg_status cg_batch_norm3d_new(const cg_batch_norm3d_opts *opts, cg_module **out)
{
    if (!opts)
        return cg__nn_null("opts");
    if (!out)
        return cg__nn_null("out");
    /* torch.empty(num_features, device=device, dtype=dtype) */
    if (opts->device && strcmp(opts->device, "cpu") != 0)
        return cg_error(CG_ERR_RUNTIME,
                        "cgrad runs on the CPU only: device '%s' is not "
                        "available (use NULL, Python's None, or \"cpu\")",
                        opts->device);
    if (opts->num_features < 0 && (opts->affine || opts->track_running_stats))
        return cg_error(CG_ERR_RUNTIME,
                        "Trying to create tensor with negative dimension "
                        "%lld: [%lld]",
                        (long long)opts->num_features,
                        (long long)opts->num_features);
    if ((int)opts->dtype < 0 || opts->dtype >= CG_DTYPE_COUNT)
        return cg_error(CG_ERR_RUNTIME,
                        "Only Tensors of floating point and complex dtype "
                        "can require gradients");
    cg_module *m = NULL;
    cg_status st = cg__module_alloc(sizeof(batch_norm3d), &bn_vtable, &m);
    if (st != CG_OK)
        return st;
    batch_norm3d *b = (batch_norm3d *)m;
    b->o = *opts;
    b->o.device = opts->device ? "cpu" : NULL;
    const int64_t *c = &opts->num_features;
    if (opts->affine) {
        if ((st = add_tensor(m, "weight", c, 1, 1.0, opts->dtype, true)) !=
                CG_OK ||
            (st = add_tensor(m, "bias", c, 1, 0.0, opts->dtype, true)) != CG_OK)
            goto fail;
    } else if ((st = cg__module_register_parameter(m, "weight", NULL)) !=
                   CG_OK ||
               (st = cg__module_register_parameter(m, "bias", NULL)) != CG_OK) {
        goto fail;
    }
    static const char *const buffers[3] = {"running_mean", "running_var",
                                           "num_batches_tracked"};
    for (int i = 0; i < 3; i++) {
        if (!opts->track_running_stats)
            st = cg__module_register_buffer(m, buffers[i], NULL, true);
        else if (i < 2)
            st = add_tensor(m, buffers[i], c, 1, i == 0 ? 0.0 : 1.0,
                            opts->dtype, false);
        else
            st = add_tensor(m, buffers[i], NULL, 0, 0.0, CG_FLOAT64, false);
        if (st != CG_OK)
            goto fail;
    }
    *out = m;
    return CG_OK;
fail:
    cg_module_free(m);
    return st;
}

static cg_status bn_forward(cg_module *m, cg_tensor *input, cg_tensor **out)
{
    const batch_norm3d *b = (const batch_norm3d *)m;
    if (!input)
        return cg__nn_null("input");
    if (cg_tensor_dim(input) != 5)
        return cg_error(CG_ERR_VALUE, "expected 5D input (got %dD input)",
                        cg_tensor_dim(input));
    cg_tensor *rm = cg_module_get_buffer(m, "running_mean");
    cg_tensor *rv = cg_module_get_buffer(m, "running_var");
    cg_tensor *nbt = cg_module_get_buffer(m, "num_batches_tracked");
    double factor = b->o.momentum_none ? 0.0 : b->o.momentum;
    double count = 0;
    bool count_it = m->training && b->o.track_running_stats && nbt;
    if (count_it) {
        cg_status st = cg_tensor_item(nbt, &count, NULL);
        if (st != CG_OK)
            return st;
        count += 1;
        if (b->o.momentum_none)
            factor = 1.0 / count;
    }
    bool bn_training = m->training || (!rm && !rv);
    bool pass_stats = !m->training || b->o.track_running_stats;
    cg_status st = cg_batch_norm(
        input, pass_stats ? rm : NULL, pass_stats ? rv : NULL,
        cg__module_parameter(m, "weight"), cg__module_parameter(m, "bias"),
        bn_training, factor, b->o.eps, out);
    if (st != CG_OK || !count_it)
        return st;
    /* self.num_batches_tracked.add_(1), a buffer: no autograd */
    bool prev = cg_set_grad_enabled(false);
    st = cg_tensor_fill_(nbt, count);
    cg_set_grad_enabled(prev);
    if (st != CG_OK) {
        cg_tensor_release(*out);
        *out = NULL;
    }
    return st;
}

static cg_status bn_extra_repr(const cg_module *m, cg__strbuf *sb)
{
    const cg_batch_norm3d_opts *o = &((const batch_norm3d *)m)->o;
    cg__sb_printf(sb, "%lld, eps=", (long long)o->num_features);
    cg__sb_pyfloat(sb, o->eps);
    cg__sb_puts(sb, ", momentum=");
    if (o->momentum_none)
        cg__sb_puts(sb, "None");
    else
        cg__sb_pyfloat(sb, o->momentum);
    return cg__sb_printf(sb, ", affine=%s, track_running_stats=%s",
                         o->affine ? "True" : "False",
                         o->track_running_stats ? "True" : "False");
}

static cg_status bn_getattr(const cg_module *m, const char *name,
                            cg__strbuf *sb, bool *found)
{
    const cg_batch_norm3d_opts *o = &((const batch_norm3d *)m)->o;
    *found = true;
    if (strcmp(name, "num_features") == 0)
        return cg__sb_printf(sb, "%lld", (long long)o->num_features);
    if (strcmp(name, "eps") == 0)
        return cg__sb_pyfloat(sb, o->eps);
    if (strcmp(name, "momentum") == 0)
        return o->momentum_none ? cg__sb_puts(sb, "None")
                                : cg__sb_pyfloat(sb, o->momentum);
    if (strcmp(name, "affine") == 0)
        return cg__sb_puts(sb, o->affine ? "True" : "False");
    if (strcmp(name, "track_running_stats") == 0)
        return cg__sb_puts(sb, o->track_running_stats ? "True" : "False");
    *found = false;
    return CG_OK;
}

cg_tensor *cg_batch_norm3d_weight(const cg_module *m)
{
    return cg__module_is(m, &bn_vtable) ? cg__module_parameter(m, "weight")
                                        : NULL;
}

cg_tensor *cg_batch_norm3d_bias(const cg_module *m)
{
    return cg__module_is(m, &bn_vtable) ? cg__module_parameter(m, "bias")
                                        : NULL;
}

cg_tensor *cg_batch_norm3d_running_mean(const cg_module *m)
{
    return cg__module_is(m, &bn_vtable)
               ? cg_module_get_buffer(m, "running_mean")
               : NULL;
}

cg_tensor *cg_batch_norm3d_running_var(const cg_module *m)
{
    return cg__module_is(m, &bn_vtable) ? cg_module_get_buffer(m, "running_var")
                                        : NULL;
}

cg_tensor *cg_batch_norm3d_num_batches_tracked(const cg_module *m)
{
    return cg__module_is(m, &bn_vtable)
               ? cg_module_get_buffer(m, "num_batches_tracked")
               : NULL;
}
