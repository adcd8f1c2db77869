/*
 * cgrad_nn.h -- torch.nn for cgrad: modules, layers and losses.
 *
 * A module is an opaque cg_module made by a layer's constructor and freed
 * with cg_module_free (which frees its children too). Its parameters are
 * leaf tensors that require grad, owned by the module and lent out through
 * borrowed pointers that stay valid while the module lives. C has no
 * keyword arguments: each layer has an options struct with a defaults
 * initialiser, so a call reads like the Python one:
 *
 *     // nn.ConvTranspose3d(1, 3, kernel_size=1, stride=2)
 *     cg_conv_transpose3d_opts o =
 *         cg_conv_transpose3d_options(1, 3, CG_INT3(1));
 *     o.stride = CG_INT3(2);
 *     cg_module *m = NULL;
 *     if (cg_conv_transpose3d_new(&o, &m) != CG_OK) ...
 *
 * Includes cgrad.h; knows nothing of optim/.
 */
#ifndef CGRAD_NN_H
#define CGRAD_NN_H

#include "cgrad.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ======================================================================
 * Modules (torch.nn.Module)
 * ====================================================================== */

typedef struct cg_module cg_module;

/** Frees the module and everything it owns (children, parameters' own
 *  references). NULL-safe. Tensors the caller still holds stay valid. */
CG_API void cg_module_free(cg_module *m);
/** The class name: "ConvTranspose3d", "Sequential", ... */
CG_API const char *cg_module_type_name(const cg_module *m);
/** m(input): the module's forward. */
CG_API cg_status cg_module_forward(cg_module *m, cg_tensor *input,
                                   cg_tensor **out);
/** repr(m) into buf, snprintf-style (see cg_tensor_repr). */
CG_API cg_status cg_module_repr(const cg_module *m, char *buf, size_t size,
                                size_t *len);
/** print(m): repr and a newline. */
CG_API cg_status cg_module_print(const cg_module *m, FILE *f);
/** The Python repr of attribute `name` (`m.kernel_size` -> "(1, 1, 1)",
 *  `m.padding_mode` -> "'zeros'", `m.bias` -> "Parameter containing:..."
 *  or "None"), snprintf-style. AttributeError "'ConvTranspose3d' object
 *  has no attribute 'device'" for unknown names. */
CG_API cg_status cg_module_getattr(const cg_module *m, const char *name,
                                   char *buf, size_t size, size_t *len);
/** Number of parameters (named_parameters(), recursing into children, in
 *  PyTorch's order; a None bias is not a parameter). */
CG_API int cg_module_num_parameters(const cg_module *m);
/** The i-th of named_parameters(): its dotted name ("weight", "0.bias")
 *  and tensor, both borrowed. IndexError past the end. */
CG_API cg_status cg_module_named_parameter(const cg_module *m, int i,
                                           const char **name,
                                           cg_tensor **param);
/** module.zero_grad(set_to_none). */
CG_API cg_status cg_module_zero_grad(cg_module *m, bool set_to_none);
/** module.requires_grad_(flag) on every parameter. */
CG_API cg_status cg_module_requires_grad_(cg_module *m, bool requires_grad);

/* ======================================================================
 * nn.ConvTranspose3d and nn.Conv3d
 * ====================================================================== */

/** The constructor arguments of nn.ConvTranspose3d, in PyTorch's order. */
typedef struct cg_conv_transpose3d_opts {
    int64_t in_channels;
    int64_t out_channels;
    cg_ints kernel_size;
    cg_ints stride;         /* default CG_INT3(1) */
    cg_ints padding;        /* default CG_INT3(0) */
    cg_ints output_padding; /* default CG_INT3(0) */
    int64_t groups;         /* default 1 */
    bool bias;              /* default true */
    cg_ints dilation;       /* default CG_INT3(1) */
    const char *padding_mode; /* default "zeros" (the only one accepted) */
    const char *device;     /* NULL (None) or "cpu" */
    cg_dtype dtype;         /* default CG_FLOAT32 (None) */
} cg_conv_transpose3d_opts;

/** The defaults for the three required arguments. */
CG_API cg_conv_transpose3d_opts cg_conv_transpose3d_options(
    int64_t in_channels, int64_t out_channels, cg_ints kernel_size);
/** nn.ConvTranspose3d(**opts): validates (C1-C6 of CONV_TRANSPOSE3D.md, in
 *  PyTorch's order and words) and initialises weight and bias from the
 *  default generator exactly as PyTorch's reset_parameters. */
CG_API cg_status cg_conv_transpose3d_new(
    const cg_conv_transpose3d_opts *opts, cg_module **out);
/** m(input, output_size): output_size NULL for None. */
CG_API cg_status cg_conv_transpose3d_forward(cg_module *m, cg_tensor *input,
                                             const cg_ints *output_size,
                                             cg_tensor **out);
/** m.reset_parameters(): draws new weight and bias values. */
CG_API cg_status cg_conv_transpose3d_reset_parameters(cg_module *m);
/** m.weight and m.bias (NULL when bias=False), borrowed. */
CG_API cg_tensor *cg_conv_transpose3d_weight(const cg_module *m);
CG_API cg_tensor *cg_conv_transpose3d_bias(const cg_module *m);
/** The constructor arguments as stored (m.kernel_size, m.stride, ...),
 *  borrowed; NULL if m is not a ConvTranspose3d. */
CG_API const cg_conv_transpose3d_opts *
cg_conv_transpose3d_config(const cg_module *m);
/** m.padding_mode = mode (accepted as PyTorch does; forward then fails
 *  with F1 unless it is "zeros"). */
CG_API cg_status cg_conv_transpose3d_set_padding_mode(cg_module *m,
                                                      const char *mode);
/** Teaching helper: prints, for an input of `input_shape`, the output-size
 *  formula of each axis with every term filled in, the resulting shape,
 *  and the range output_size may take. */
CG_API cg_status cg_conv_transpose3d_explain_shape(
    const cg_conv_transpose3d_opts *opts, const int64_t *input_shape,
    int ndim, FILE *f);

/** The constructor arguments of nn.Conv3d, in PyTorch's order. */
typedef struct cg_conv3d_opts {
    int64_t in_channels;
    int64_t out_channels;
    cg_ints kernel_size;
    cg_ints stride;   /* default CG_INT3(1) */
    cg_ints padding;  /* default CG_INT3(0) */
    cg_ints dilation; /* default CG_INT3(1) */
    int64_t groups;   /* default 1 */
    bool bias;        /* default true */
    const char *padding_mode; /* default "zeros" */
    const char *device;
    cg_dtype dtype;
} cg_conv3d_opts;

CG_API cg_conv3d_opts cg_conv3d_options(int64_t in_channels,
                                           int64_t out_channels,
                                           cg_ints kernel_size);
CG_API cg_status cg_conv3d_new(const cg_conv3d_opts *opts,
                               cg_module **out);
CG_API cg_tensor *cg_conv3d_weight(const cg_module *m);
CG_API cg_tensor *cg_conv3d_bias(const cg_module *m);
CG_API const cg_conv3d_opts *cg_conv3d_config(const cg_module *m);

#ifdef __cplusplus
}
#endif

#endif /* CGRAD_NN_H */
