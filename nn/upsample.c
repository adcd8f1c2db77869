/*
 * upsample.c -- nn.Upsample with mode 'nearest' (PyTorch 1.13's
 * torch/nn/modules/upsampling.py), whose forward is F.interpolate: the
 * size / scale_factor checks of torch/nn/functional.py, in its order and
 * words, then cg_upsample_nearest for 3-D, 4-D and 5-D inputs (1, 2 or 3
 * spatial axes, as PyTorch).
 *
 * The options follow the Python values: size.n == 0 is None, one entry a
 * Python int (used for every spatial axis; repr "size=4"), more a tuple;
 * likewise scale_n / scale_factor for floats. As in __init__, a scalar
 * scale_factor of 0 becomes None. recompute_scale_factor=True takes
 * floor(in * scale) as the size and drops the scale (PyTorch's path).
 *
 * Left out: the other modes and align_corners (construction fails with
 * NotImplementedError naming the mode).
 */
#include "module_internal.h"

#include <math.h>
#include <string.h>

typedef struct upsample {
    cg_module base;
    cg_upsample_opts o; /* mode points at "nearest"; scalar 0 scale: None */
} upsample;

/* str(self.size) / str(self.scale_factor) */
static cg_status sb_size(cg__strbuf *sb, const cg_ints *s)
{
    if (s->n == 0)
        return cg__sb_puts(sb, "None");
    if (s->n == 1)
        return cg__sb_printf(sb, "%lld", (long long)s->v[0]);
    return cg__sb_tuple(sb, s->v, s->n);
}

static cg_status sb_scale(cg__strbuf *sb, const cg_upsample_opts *o)
{
    if (o->scale_n == 0)
        return cg__sb_puts(sb, "None");
    if (o->scale_n == 1)
        return cg__sb_pyfloat(sb, o->scale_factor[0]);
    cg__sb_puts(sb, "(");
    for (int i = 0; i < o->scale_n; i++) {
        if (i)
            cg__sb_puts(sb, ", ");
        cg__sb_pyfloat(sb, o->scale_factor[i]);
    }
    return cg__sb_puts(sb, ")");
}

static cg_status up_forward(cg_module *m, cg_tensor *input, cg_tensor **out)
{
    const cg_upsample_opts *o = &((const upsample *)m)->o;
    if (!input)
        return cg__nn_null("input");
    int ndim = cg_tensor_dim(input);
    int dim = ndim - 2; /* spatial axes */
    const int64_t *shape = cg_tensor_shape(input);
    int64_t size[8];
    double scale[8];
    bool use_size = false, use_scale = false;
    if (o->size.n > 0 && o->scale_n > 0)
        return cg_error(CG_ERR_VALUE,
                        "only one of size or scale_factor should be defined");
    if (o->size.n > 0 || o->scale_n > 0) {
        bool is_size = o->size.n > 0;
        int n = is_size ? o->size.n : o->scale_n;
        if (n > 1 && n != dim) {
            cg__strbuf sb = CG__STRBUF_INIT;
            cg__sb_list(&sb, dim > 0 ? shape + 2 : NULL, dim > 0 ? dim : 0);
            cg__sb_puts(&sb, is_size ? " and output size of "
                                     : " and scale_factor of shape ");
            if (is_size)
                sb_size(&sb, &o->size);
            else
                sb_scale(&sb, o);
            cg_status st = cg__sb_status(&sb);
            if (st == CG_OK)
                st = cg_error(CG_ERR_VALUE,
                              "Input and %s must have the same number of "
                              "spatial dimensions, but got input with spatial "
                              "dimensions of %s. Please provide input tensor "
                              "in (N, C, d1, d2, ...,dK) format and %s in "
                              "(%s1, %s2, ...,%sK) format.",
                              is_size ? "output" : "scale_factor", sb.data,
                              is_size ? "output size" : "scale_factor",
                              is_size ? "o" : "s", is_size ? "o" : "s",
                              is_size ? "o" : "s");
            cg__sb_free(&sb);
            return st;
        }
        for (int i = 0; i < dim && i < 8; i++) {
            if (is_size)
                size[i] = o->size.v[n == 1 ? 0 : i];
            else
                scale[i] = o->scale_factor[n == 1 ? 0 : i];
        }
        use_size = is_size;
        use_scale = !is_size;
    } else {
        return cg_error(CG_ERR_VALUE,
                        "either size or scale_factor should be defined");
    }
    if (o->recompute_scale_factor && use_size)
        return cg_error(CG_ERR_VALUE, "recompute_scale_factor is not "
                                      "meaningful with an explicit size.");
    bool size_too_big = false; /* a size outside int64 */
    if (o->recompute_scale_factor) {
        /* math.floor(float(in) * scale), a Python int: NaN and infinity
         * raise here, and a size outside int64 is the TypeError of the
         * upsample call below */
        for (int i = 0; i < dim && i < 8; i++) {
            double v = floor((double)shape[2 + i] * scale[i]);
            if (isnan(v))
                return cg_error(CG_ERR_VALUE,
                                "cannot convert float NaN to integer");
            if (isinf(v))
                return cg_error(CG_ERR_OVERFLOW,
                                "cannot convert float infinity to integer");
            size_too_big |= !(v >= -0x1p63 && v < 0x1p63);
            size[i] = size_too_big ? 0 : (int64_t)v;
        }
        use_size = true;
        use_scale = false;
    }
    if (ndim < 3 || ndim > 5)
        return cg_error(CG_ERR_NOT_IMPLEMENTED,
                        "Input Error: Only 3D, 4D and 5D input Tensors "
                        "supported (got %dD) for the modes: nearest | linear "
                        "| bilinear | bicubic | trilinear | area | "
                        "nearest-exact (got %s)",
                        ndim, o->mode);
    if (size_too_big)
        return cg_error(CG_ERR_TYPE,
                        "upsample_nearest%dd(): argument 'output_size' must "
                        "be tuple of SymInts, but found element of type int "
                        "at pos 1",
                        dim);
    return cg_upsample_nearest(input, use_size ? size : NULL,
                               use_scale ? scale : NULL, dim, out);
}

static cg_status up_extra_repr(const cg_module *m, cg__strbuf *sb)
{
    const cg_upsample_opts *o = &((const upsample *)m)->o;
    if (o->scale_n > 0) {
        cg__sb_puts(sb, "scale_factor=");
        sb_scale(sb, o);
    } else {
        cg__sb_puts(sb, "size=");
        sb_size(sb, &o->size);
    }
    return cg__sb_printf(sb, ", mode=%s", o->mode);
}

static cg_status up_getattr(const cg_module *m, const char *name,
                            cg__strbuf *sb, bool *found)
{
    const cg_upsample_opts *o = &((const upsample *)m)->o;
    *found = true;
    if (strcmp(name, "size") == 0)
        return sb_size(sb, &o->size);
    if (strcmp(name, "scale_factor") == 0)
        return sb_scale(sb, o);
    if (strcmp(name, "mode") == 0)
        return cg__sb_pystr(sb, o->mode);
    if (strcmp(name, "align_corners") == 0)
        return cg__sb_puts(sb, "None");
    if (strcmp(name, "recompute_scale_factor") == 0)
        return cg__sb_puts(sb, o->recompute_scale_factor ? "True" : "None");
    *found = false;
    return CG_OK;
}

static const cg__module_vtable up_vtable = {
    "Upsample", up_forward, up_extra_repr, up_getattr, NULL,
};

cg_upsample_opts cg_upsample_options(void)
{
    return (cg_upsample_opts){
        .size = {0, {0}},
        .scale_n = 0,
        .scale_factor = {0},
        .mode = "nearest",
        .recompute_scale_factor = false,
    };
}

cg_status cg_upsample_new(const cg_upsample_opts *opts, cg_module **out)
{
    if (!opts)
        return cg__nn_null("opts");
    if (!out)
        return cg__nn_null("out");
    cg_status st = cg__conv_check_ints(&opts->size, "size");
    if (st != CG_OK)
        return st;
    if (opts->scale_n < 0 || opts->scale_n > 8)
        return cg_error(CG_ERR_MISUSE,
                        "scale_factor: scale_n must be 0 to 8, got %d",
                        opts->scale_n);
    if (!opts->mode || strcmp(opts->mode, "nearest") != 0)
        return cg_error(CG_ERR_NOT_IMPLEMENTED,
                        "cgrad's Upsample implements mode 'nearest' only, got "
                        "'%s'",
                        opts->mode ? opts->mode : "(null)");
    cg_module *m = NULL;
    if ((st = cg__module_alloc(sizeof(upsample), &up_vtable, &m)) != CG_OK)
        return st;
    upsample *u = (upsample *)m;
    u->o = *opts;
    u->o.mode = "nearest";
    /* float(scale_factor) if scale_factor else None */
    if (u->o.scale_n == 1 && u->o.scale_factor[0] == 0)
        u->o.scale_n = 0;
    *out = m;
    return CG_OK;
}

const cg_upsample_opts *cg_upsample_config(const cg_module *m)
{
    return cg__module_is(m, &up_vtable) ? &((const upsample *)m)->o : NULL;
}
