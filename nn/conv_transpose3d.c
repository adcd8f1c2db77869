/*
 * conv_transpose3d.c -- nn.ConvTranspose3d: the module around the
 * functional cg_conv_transpose3d.
 *
 * Mirrors PyTorch 1.13's torch.nn.ConvTranspose3d (CONV_TRANSPOSE3D.md):
 * construction checks C1-C6 in PyTorch's order and words (C1 here, the
 * rest in _ConvNd, conv3d.c), the weight (Cin, Cout/G, kD, kH, kW) and
 * bias drawn as reset_parameters does, the module-level forward checks F1
 * (padding_mode changed after construction) and F2/F3 (output_size), the
 * repr and the attributes. Everything else a forward checks (F4-F21) and
 * computes belongs to the functional form in core/.
 *
 * Also here: cg_conv_transpose3d_explain_shape, a teaching helper that
 * prints the output-size formula of each axis with its terms filled in.
 *
 * Shapes: input (N, Cin, D, H, W) or unbatched (Cin, D, H, W); weight
 * (Cin, Cout/G, kD, kH, kW); output (N, Cout, Do, Ho, Wo) with, per axis,
 *   out = (in - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1.
 */
#include "module_internal.h"

/* the output-size rules and _output_padding, shared with core/ */
#include "conv_internal.h"

#include <stdio.h>
#include <string.h>

static cg_status ct3d_forward(cg_module *m, cg_tensor *input, cg_tensor **out);

static const cg__module_vtable ct3d_vtable = {
    "ConvTranspose3d", ct3d_forward,     cg__conv_extra_repr,
    cg__conv_getattr,  cg__conv_destroy,
};

/* The module as a ConvTranspose3d, or NULL. */
static cg__conv *as_ct3d(const cg_module *m)
{
    return cg__module_is(m, &ct3d_vtable) ? (cg__conv *)m : NULL;
}

static cg_status not_ct3d(const cg_module *m, const char *fn)
{
    if (!m)
        return cg__nn_null("module");
    return cg_error(CG_ERR_MISUSE,
                    "%s: the module is a %s, not a "
                    "ConvTranspose3d",
                    fn, cg_module_type_name(m));
}

/* ======================================================================
 * Construction
 * ====================================================================== */

cg_conv_transpose3d_opts cg_conv_transpose3d_options(int64_t in_channels,
                                                     int64_t out_channels,
                                                     cg_ints kernel_size)
{
    return (cg_conv_transpose3d_opts){
        .in_channels = in_channels,
        .out_channels = out_channels,
        .kernel_size = kernel_size,
        .stride = CG_INT3(1),
        .padding = CG_INT3(0),
        .output_padding = CG_INT3(0),
        .groups = 1,
        .bias = true,
        .dilation = CG_INT3(1),
        .padding_mode = "zeros",
        .device = NULL,
        .dtype = CG_FLOAT32,
    };
}

/* The options as _ConvNd arguments, after the checks of the C struct
 * itself and C1 (_ConvTransposeNd's own check, before anything else). */
static cg_status ct3d_args(const cg_conv_transpose3d_opts *o, cg__conv_args *a)
{
    if (!o->padding_mode)
        return cg__nn_null("padding_mode");
    cg_status st;
    if ((st = cg__conv_check_ints(&o->kernel_size, "kernel_size")) != CG_OK ||
        (st = cg__conv_check_ints(&o->stride, "stride")) != CG_OK ||
        (st = cg__conv_check_ints(&o->padding, "padding")) != CG_OK ||
        (st = cg__conv_check_ints(&o->output_padding, "output_padding")) !=
            CG_OK ||
        (st = cg__conv_check_ints(&o->dilation, "dilation")) != CG_OK)
        return st;
    if (strcmp(o->padding_mode, "zeros") != 0)
        return cg_error(CG_ERR_VALUE, "Only \"zeros\" padding mode is "
                                      "supported for ConvTranspose3d");
    *a = (cg__conv_args){
        .in_channels = o->in_channels,
        .out_channels = o->out_channels,
        .kernel_size = o->kernel_size,
        .stride = o->stride,
        .padding = o->padding,
        .dilation = o->dilation,
        .transposed = true,
        .output_padding = o->output_padding,
        .groups = o->groups,
        .bias = o->bias,
        .padding_mode = o->padding_mode,
        .device = o->device,
        .dtype = o->dtype,
    };
    return CG_OK;
}

cg_status cg_conv_transpose3d_new(const cg_conv_transpose3d_opts *opts,
                                  cg_module **out)
{
    if (!opts)
        return cg__nn_null("opts");
    if (!out)
        return cg__nn_null("out");
    cg__conv_args a;
    cg_status st = ct3d_args(opts, &a);
    if (st != CG_OK)
        return st;
    return cg__conv_new(&a, &ct3d_vtable, out);
}

cg_status cg_conv_transpose3d_reset_parameters(cg_module *m)
{
    cg__conv *c = as_ct3d(m);
    if (!c)
        return not_ct3d(m, "cg_conv_transpose3d_reset_parameters");
    return cg__conv_reset_parameters(c);
}

cg_tensor *cg_conv_transpose3d_weight(const cg_module *m)
{
    cg__conv *c = as_ct3d(m);
    return c ? c->weight : NULL;
}

cg_tensor *cg_conv_transpose3d_bias(const cg_module *m)
{
    cg__conv *c = as_ct3d(m);
    return c ? c->bias : NULL;
}

const cg_conv_transpose3d_opts *cg_conv_transpose3d_config(const cg_module *m)
{
    cg__conv *c = as_ct3d(m);
    return c ? &c->topts : NULL;
}

cg_status cg_conv_transpose3d_set_padding_mode(cg_module *m, const char *mode)
{
    cg__conv *c = as_ct3d(m);
    if (!c)
        return not_ct3d(m, "cg_conv_transpose3d_set_padding_mode");
    return cg__conv_set_padding_mode(c, mode);
}

/* ======================================================================
 * forward: F1, then output_size (F2/F3), then the functional form
 * ====================================================================== */

cg_status cg_conv_transpose3d_forward(cg_module *m, cg_tensor *input,
                                      const cg_ints *output_size,
                                      cg_tensor **out)
{
    cg__conv *c = as_ct3d(m);
    if (!c)
        return not_ct3d(m, "cg_conv_transpose3d_forward");
    if (!input)
        return cg__nn_null("input");
    if (!out)
        return cg__nn_null("out");
    if (output_size) {
        cg_status st = cg__conv_check_ints(output_size, "output_size");
        if (st != CG_OK)
            return st;
    }
    if (strcmp(c->a.padding_mode, "zeros") != 0)
        return cg_error(CG_ERR_VALUE, "Only `zeros` padding mode is "
                                      "supported for ConvTranspose3d");
    /* _output_padding: output_size (F2/F3) replaces output_padding */
    cg_ints op = c->a.output_padding;
    if (output_size) {
        cg_status st = cg__ct3d_output_padding(
            cg_tensor_shape(input), cg_tensor_dim(input), output_size,
            c->a.kernel_size, c->a.stride, c->a.padding, c->a.dilation,
            c->a.output_padding, &op);
        if (st != CG_OK)
            return st;
    }
    return cg_conv_transpose3d(input, c->weight, c->bias, c->a.stride,
                               c->a.padding, op, c->a.groups, c->a.dilation,
                               out);
}

static cg_status ct3d_forward(cg_module *m, cg_tensor *input, cg_tensor **out)
{
    return cg_conv_transpose3d_forward(m, input, NULL, out);
}

/* ======================================================================
 * explain_shape: the output-size arithmetic, spelled out
 * ====================================================================== */

/* A parameter list expanded to 3 entries as the functional form does (one
 * entry stands for all three), or F6. */
static cg_status expand3(const cg_ints *v, const char *name, int expected,
                         int64_t out[3])
{
    if (v->n == 1) {
        out[0] = out[1] = out[2] = v->v[0];
        return CG_OK;
    }
    if (v->n != expected) {
        cg__strbuf sb = CG__STRBUF_INIT;
        cg_status st = cg__sb_list(&sb, v->v, v->n);
        if (st == CG_OK)
            st = cg_error(CG_ERR_RUNTIME,
                          "expected %s to be a single integer value or a "
                          "list of %d values to match the convolution "
                          "dimensions, but got %s=%s",
                          name, expected, name, sb.data);
        cg__sb_free(&sb);
        return st;
    }
    memcpy(out, v->v, 3 * sizeof *out);
    return CG_OK;
}

/* "5" or "(-1)": a term as it reads inside the formula. */
static void put_term(cg__strbuf *sb, int64_t v)
{
    cg__sb_printf(sb, v < 0 ? "(%lld)" : "%lld", (long long)v);
}

static cg_status shape_error(cg_status st, const char *fmt,
                             const int64_t *shape, int ndim)
{
    cg__strbuf sb = CG__STRBUF_INIT;
    cg_status s2 = cg__sb_list(&sb, shape, ndim);
    if (s2 == CG_OK)
        s2 = cg_error(st, fmt, sb.data);
    cg__sb_free(&sb);
    return s2;
}

/* The geometry checks a forward makes (F4-F19 of CONV_TRANSPOSE3D.md), in
 * PyTorch's order; fills the spatial output size. */
static cg_status explain_check(const cg__conv_args *a, const int64_t *shape,
                               int ndim, int64_t s[3], int64_t p[3],
                               int64_t op[3], int64_t dil[3], int64_t k[3],
                               int64_t out[3])
{
    if (ndim != 4 && ndim != 5)
        return shape_error(CG_ERR_RUNTIME,
                           "Expected 4D (unbatched) or 5D (batched) input to "
                           "conv_transpose3d, but got input of size: %s",
                           shape, ndim);
    int64_t x[5]; /* the batched input shape */
    x[0] = ndim == 5 ? shape[0] : 1;
    memcpy(x + 1, shape + (ndim == 5 ? 1 : 0), 4 * sizeof *x);
    int64_t w[CG_MAX_DIMS];
    int wdim = cg__conv_weight_shape(a, w);
    cg_status st;
    if ((st = expand3(&a->stride, "stride", wdim - 2, s)) != CG_OK ||
        (st = expand3(&a->padding, "padding", wdim - 2, p)) != CG_OK ||
        (st = expand3(&a->dilation, "dilation", wdim - 2, dil)) != CG_OK ||
        (st = expand3(&a->output_padding, "output_padding", wdim - 2, op)) !=
            CG_OK)
        return st;
    if (wdim != 5)
        return shape_error(CG_ERR_RUNTIME,
                           "explain_shape: a 3-D kernel size is needed, got "
                           "weight of size %s",
                           w, wdim);
    memcpy(k, w + 2, 3 * sizeof *k);
    for (int i = 0; i < 3; i++)
        if (p[i] < 0)
            return cg_error(CG_ERR_RUNTIME, "negative padding is not "
                                            "supported");
    for (int i = 0; i < 3; i++)
        if (op[i] < 0)
            return cg_error(CG_ERR_RUNTIME, "negative output_padding is not "
                                            "supported");
    for (int i = 0; i < 3; i++)
        if (s[i] <= 0)
            return cg_error(CG_ERR_RUNTIME, "non-positive stride is not "
                                            "supported");
    if (w[0] < a->groups) {
        cg__strbuf sb = CG__STRBUF_INIT;
        st = cg__sb_list(&sb, w, wdim);
        if (st == CG_OK)
            st = cg_error(CG_ERR_RUNTIME,
                          "Given groups=%lld, expected weight to be at least "
                          "%lld at dimension 0, but got weight of size %s "
                          "instead",
                          (long long)a->groups, (long long)a->groups, sb.data);
        cg__sb_free(&sb);
        return st;
    }
    if (x[1] != w[0]) {
        cg__strbuf sb = CG__STRBUF_INIT;
        cg__sb_list(&sb, w, wdim);
        size_t wlen = sb.len;
        cg__sb_list(&sb, x, 5);
        st = cg__sb_status(&sb);
        if (st == CG_OK)
            st = cg_error(CG_ERR_RUNTIME,
                          "Given transposed=1, weight of size %.*s, expected "
                          "input%s to have %lld channels, but got %lld "
                          "channels instead",
                          (int)wlen, sb.data, sb.data + wlen, (long long)w[0],
                          (long long)x[1]);
        cg__sb_free(&sb);
        return st;
    }
    for (int i = 0; i < 3; i++)
        if (!cg__ct3d_out_size(x[2 + i], k[i], s[i], p[i], op[i], dil[i],
                               &out[i]))
            return cg_error(CG_ERR_RUNTIME,
                            "explain_shape: the output "
                            "size of axis %d overflows int64",
                            i);
    if (x[0] == 0) {
        /* a zero batch skips the remaining checks */
        for (int i = 0; i < 3; i++)
            if (out[i] < 0)
                return cg_error(CG_ERR_RUNTIME,
                                "invalid shape dimension "
                                "%lld",
                                (long long)out[i]);
        return CG_OK;
    }
    if (x[2] == 0 || x[3] == 0 || x[4] == 0)
        return shape_error(CG_ERR_RUNTIME,
                           "Only zero batch or zero channel inputs are "
                           "supported, but got input shape: %s",
                           x, 5);
    if (dil[0] <= 0 || dil[1] <= 0 || dil[2] <= 0)
        return cg_error(CG_ERR_RUNTIME,
                        "dilation should be greater than zero, but got "
                        "dilation_depth: %lld, dilation_height: %lld, "
                        "dilation_width: %lld",
                        (long long)dil[0], (long long)dil[1],
                        (long long)dil[2]);
    for (int i = 0; i < 3; i++)
        if (op[i] >= s[i] && op[i] >= dil[i])
            return cg_error(
                CG_ERR_RUNTIME,
                "output padding must be smaller than either stride or "
                "dilation, but got output_padding_depth: %lld "
                "output_padding_height: %lld output_padding_width: %lld "
                "stride_depth: %lld stride_height: %lld stride_width: %lld "
                "dilation_depth: %lld dilation_height: %lld dilation_width: "
                "%lld",
                (long long)op[0], (long long)op[1], (long long)op[2],
                (long long)s[0], (long long)s[1], (long long)s[2],
                (long long)dil[0], (long long)dil[1], (long long)dil[2]);
    if (w[1] == 0 || w[2] == 0 || w[3] == 0 || w[4] == 0)
        return shape_error(CG_ERR_RUNTIME,
                           "non-empty 5D (n_output_plane x n_input_plane x "
                           "kernel_depth x kernel_height x kernel_width) "
                           "tensor expected for weight, but got: %s",
                           w, 5);
    if (out[0] < 1 || out[1] < 1 || out[2] < 1)
        return cg_error(CG_ERR_RUNTIME,
                        "Given input size per channel: (%lld x %lld x "
                        "%lld). Calculated output size per channel: (%lld "
                        "x %lld x %lld). Output size is too small",
                        (long long)x[2], (long long)x[3], (long long)x[4],
                        (long long)out[0], (long long)out[1],
                        (long long)out[2]);
    return CG_OK;
}

cg_status
cg_conv_transpose3d_explain_shape(const cg_conv_transpose3d_opts *opts,
                                  const int64_t *input_shape, int ndim, FILE *f)
{
    if (!opts)
        return cg__nn_null("opts");
    if (!input_shape && ndim > 0)
        return cg__nn_null("input_shape");
    if (!f)
        return cg__nn_null("file");
    if (ndim < 0 || ndim > CG_MAX_DIMS)
        return cg_error(CG_ERR_VALUE,
                        "explain_shape: ndim must be in "
                        "[0, %d], got %d",
                        CG_MAX_DIMS, ndim);
    for (int i = 0; i < ndim; i++)
        if (input_shape[i] < 0)
            return cg_error(CG_ERR_VALUE,
                            "explain_shape: input sizes must "
                            "not be negative, got %lld",
                            (long long)input_shape[i]);
    cg__conv_args a;
    cg_status st = ct3d_args(opts, &a);
    if (st != CG_OK || (st = cg__conv_validate(&a)) != CG_OK)
        return st;
    int64_t s[3], p[3], op[3], dil[3], k[3], out[3];
    if ((st = explain_check(&a, input_shape, ndim, s, p, op, dil, k, out)) !=
        CG_OK)
        return st;

    /* Written to a string first: nothing reaches f unless all of it can. */
    static const char axis[3] = {'d', 'h', 'w'};
    const int64_t *sp = input_shape + (ndim == 5 ? 2 : 1);
    cg__strbuf sb = CG__STRBUF_INIT;
    cg__sb_puts(&sb, "ConvTranspose3d(");
    cg__conv_extra_repr_args(&a, a.bias, &sb);
    cg__sb_puts(&sb, ") on an input of shape ");
    cg__sb_list(&sb, input_shape, ndim);
    cg__sb_puts(&sb, ndim == 5 ? " (N, Cin, D, H, W):\n"
                               : " (Cin, D, H, W), unbatched:\n");
    for (int i = 0; i < 3; i++) {
        cg__sb_printf(&sb,
                      "out[%c] = (in - 1)*stride - 2*padding + "
                      "dilation*(k - 1) + output_padding + 1 = (",
                      axis[i]);
        put_term(&sb, sp[i]);
        cg__sb_puts(&sb, " - 1)*");
        put_term(&sb, s[i]);
        cg__sb_puts(&sb, " - 2*");
        put_term(&sb, p[i]);
        cg__sb_puts(&sb, " + ");
        put_term(&sb, dil[i]);
        cg__sb_puts(&sb, "*(");
        put_term(&sb, k[i]);
        cg__sb_puts(&sb, " - 1) + ");
        put_term(&sb, op[i]);
        cg__sb_printf(&sb, " + 1 = %lld\n", (long long)out[i]);
    }
    int64_t y[5];
    int yd = 0;
    if (ndim == 5)
        y[yd++] = input_shape[0];
    y[yd++] = a.out_channels;
    for (int i = 0; i < 3; i++)
        y[yd++] = out[i];
    cg__sb_puts(&sb, "output shape: ");
    cg__sb_list(&sb, y, yd);
    cg__sb_puts(&sb,
                ndim == 5 ? " (N, Cout, D, H, W)\n" : " (Cout, D, H, W)\n");
    /* forward(output_size=...) accepts, per axis, the size without
     * output_padding up to stride - 1 more, and then uses the difference
     * as the output padding */
    cg__sb_puts(&sb, "valid output_size range (forward's argument, which "
                     "then replaces output_padding):");
    for (int i = 0; i < 3; i++) {
        int64_t lo = out[i] - op[i];
        cg__sb_printf(&sb, "%s %c in [%lld, %lld]", i ? "," : "", axis[i],
                      (long long)lo, (long long)(lo + s[i] - 1));
    }
    cg__sb_puts(&sb, "\n");
    st = cg__sb_status(&sb);
    if (st == CG_OK && fwrite(sb.data, 1, sb.len, f) != sb.len)
        st = cg_error(CG_ERR_IO, "explain_shape: could not write the "
                                 "explanation");
    cg__sb_free(&sb);
    return st;
}
