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
    cg_ints stride;           /* default CG_INT3(1) */
    cg_ints padding;          /* default CG_INT3(0) */
    cg_ints output_padding;   /* default CG_INT3(0) */
    int64_t groups;           /* default 1 */
    bool bias;                /* default true */
    cg_ints dilation;         /* default CG_INT3(1) */
    const char *padding_mode; /* default "zeros" (the only one accepted) */
    const char *device;       /* NULL (None) or "cpu" */
    cg_dtype dtype;           /* default CG_FLOAT32 (None) */
} cg_conv_transpose3d_opts;

/** The defaults for the three required arguments. */
CG_API cg_conv_transpose3d_opts cg_conv_transpose3d_options(
    int64_t in_channels, int64_t out_channels, cg_ints kernel_size);
/** nn.ConvTranspose3d(**opts): validates (C1-C6 of CONV_TRANSPOSE3D.md, in
 *  PyTorch's order and words) and initialises weight and bias from the
 *  default generator exactly as PyTorch's reset_parameters. */
CG_API cg_status cg_conv_transpose3d_new(const cg_conv_transpose3d_opts *opts,
                                         cg_module **out);
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
    const cg_conv_transpose3d_opts *opts, const int64_t *input_shape, int ndim,
    FILE *f);

/** The constructor arguments of nn.Conv3d, in PyTorch's order. */
typedef struct cg_conv3d_opts {
    int64_t in_channels;
    int64_t out_channels;
    cg_ints kernel_size;
    cg_ints stride;           /* default CG_INT3(1) */
    cg_ints padding;          /* default CG_INT3(0) */
    cg_ints dilation;         /* default CG_INT3(1) */
    int64_t groups;           /* default 1 */
    bool bias;                /* default true */
    const char *padding_mode; /* default "zeros" */
    const char *device;
    cg_dtype dtype;
} cg_conv3d_opts;

CG_API cg_conv3d_opts cg_conv3d_options(int64_t in_channels,
                                        int64_t out_channels,
                                        cg_ints kernel_size);
CG_API cg_status cg_conv3d_new(const cg_conv3d_opts *opts, cg_module **out);
CG_API cg_tensor *cg_conv3d_weight(const cg_module *m);
CG_API cg_tensor *cg_conv3d_bias(const cg_module *m);
CG_API const cg_conv3d_opts *cg_conv3d_config(const cg_module *m);

/* ======================================================================
 * issue 7 (layers helper): the module tree, user-defined modules,
 * Sequential / ModuleList and the simple layers
 * ====================================================================== */

/** m.train(mode): sets the training flag of m and every descendant. */
CG_API cg_status cg_module_train(cg_module *m, bool mode);
/** m.eval(): m.train(false). */
CG_API cg_status cg_module_eval(cg_module *m);
/** m.training (false for NULL). */
CG_API bool cg_module_is_training(const cg_module *m);
/** len(m._modules): the number of direct children (None entries
 *  included, as named in _modules); 0 for NULL. */
CG_API int cg_module_num_children(const cg_module *m);
/** The i-th entry of m._modules in insertion order: its name and child
 *  (NULL for None), both borrowed and valid while m keeps the entry.
 *  IndexError "list index out of range" past the end. */
CG_API cg_status cg_module_named_child(const cg_module *m, int i,
                                       const char **name, cg_module **child);

/* ---- user-defined modules (class MyModule(nn.Module)) ---------------- */

/** What a user's module class provides. The struct must outlive every
 *  module made from it (make it static const). */
typedef struct cg_module_type {
    /** The class name (type(m).__name__), used by repr and messages. */
    const char *type_name;
    /** forward(self, input); NULL: calling it is PyTorch's
     *  NotImplementedError "Module [Name] is missing the required
     *  \"forward\" function". Reach the state with cg_module_state and
     *  the registered parts with cg_module_get_parameter / _child. */
    cg_status (*forward)(cg_module *self, cg_tensor *input, cg_tensor **out);
    /** extra_repr(self), snprintf-style into buf (size bytes, NUL
     *  included) with the full length in *len; called once to measure
     *  and once to write. NULL: empty. */
    cg_status (*extra_repr)(const cg_module *self, char *buf, size_t size,
                            size_t *len);
    /** Frees the user's state when the module dies. NULL: nothing. */
    void (*destroy)(void *state);
} cg_module_type;

/** A new module of class `type` with user state `state` (may be NULL;
 *  ownership passes to the module, which calls type->destroy(state) when
 *  it dies -- also when this call fails). Training on, nothing
 *  registered. */
CG_API cg_status cg_module_new_custom(const cg_module_type *type, void *state,
                                      cg_module **out);
/** The state given to cg_module_new_custom (NULL for other modules). */
CG_API void *cg_module_state(const cg_module *m);
/** self.<name> = nn.Parameter(t) / register_parameter(name, t): t may be
 *  NULL (None). The module takes a reference, marks t as a parameter and
 *  makes it require grad (t must be a leaf). An entry of the same name is
 *  replaced in place. Names may not be empty or contain "." (CG_ERR_MISUSE
 *  with PyTorch's wording: "parameter name can't contain \".\""). */
CG_API cg_status cg_module_register_parameter(cg_module *m, const char *name,
                                              cg_tensor *t);
/** register_buffer(name, t, persistent): t may be NULL; takes a
 *  reference. */
CG_API cg_status cg_module_register_buffer(cg_module *m, const char *name,
                                           cg_tensor *t, bool persistent);
/** add_module(name, child) / self.<name> = child: child may be NULL; the
 *  parent takes its own reference (the caller still frees its handle).
 *  ValueError "cgrad: a module cannot contain itself" when m is child or
 *  lies inside it. */
CG_API cg_status cg_module_register_module(cg_module *m, const char *name,
                                           cg_module *child);
/** m._parameters[name] / m._buffers[name] / m._modules[name], borrowed;
 *  NULL when absent or None. */
CG_API cg_tensor *cg_module_get_parameter(const cg_module *m, const char *name);
CG_API cg_tensor *cg_module_get_buffer(const cg_module *m, const char *name);
CG_API cg_module *cg_module_get_child(const cg_module *m, const char *name);

/* ---- containers ------------------------------------------------------ */

/** nn.Sequential(): an empty container; children are named "0", "1", ...
 *  forward runs them in order (an empty one returns its input). */
CG_API cg_status cg_sequential_new(cg_module **out);
/** seq.append(child): the container takes its own reference; the caller
 *  still frees its handle with cg_module_free. */
CG_API cg_status cg_sequential_append(cg_module *seq, cg_module *child);
/** seq[i], negative counting from the end; borrowed. IndexError "index 5
 *  is out of range" as PyTorch. */
CG_API cg_status cg_sequential_index(const cg_module *seq, int64_t i,
                                     cg_module **out);
/** len(seq); -1 when seq is not a Sequential. */
CG_API int64_t cg_sequential_len(const cg_module *seq);

/** nn.ModuleList(): like Sequential without a forward. */
CG_API cg_status cg_module_list_new(cg_module **out);
CG_API cg_status cg_module_list_append(cg_module *list, cg_module *child);
CG_API cg_status cg_module_list_index(const cg_module *list, int64_t i,
                                      cg_module **out);
CG_API int64_t cg_module_list_len(const cg_module *list);

/* ---- nn.Linear -------------------------------------------------------- */

/** The constructor arguments of nn.Linear, in PyTorch's order. */
typedef struct cg_linear_opts {
    int64_t in_features;
    int64_t out_features;
    bool bias;          /* default true */
    const char *device; /* NULL (None) or "cpu" */
    cg_dtype dtype;     /* default CG_FLOAT32 */
} cg_linear_opts;

/** The defaults for the two required arguments. */
CG_API cg_linear_opts cg_linear_options(int64_t in_features,
                                        int64_t out_features);
/** nn.Linear(**opts): weight (out, in) from kaiming_uniform_(a=sqrt(5))
 *  and bias from U(-1/sqrt(in), 1/sqrt(in)), drawn from the default
 *  generator exactly as PyTorch. Forward is cg_linear. */
CG_API cg_status cg_linear_new(const cg_linear_opts *opts, cg_module **out);
/** m.weight, m.bias (NULL when bias=False), borrowed. */
CG_API cg_tensor *cg_linear_weight(const cg_module *m);
CG_API cg_tensor *cg_linear_bias(const cg_module *m);
/** m.reset_parameters(). */
CG_API cg_status cg_linear_reset_parameters(cg_module *m);

/* ---- activations, Flatten, Dropout ------------------------------------ */

/** nn.ReLU(), nn.Sigmoid(), nn.Tanh() (inplace=True is not offered). */
CG_API cg_status cg_relu_new(cg_module **out);
CG_API cg_status cg_sigmoid_new(cg_module **out);
CG_API cg_status cg_tanh_new(cg_module **out);
/** nn.LeakyReLU(negative_slope) (PyTorch's default 0.01). */
CG_API cg_status cg_leaky_relu_new(double negative_slope, cg_module **out);
/** nn.GELU(approximate): "none" (default; NULL means it) or "tanh".
 *  Like PyTorch, any string is accepted here and forward rejects others
 *  ("approximate argument must be either none or tanh."). */
CG_API cg_status cg_gelu_new(const char *approximate, cg_module **out);
/** nn.Flatten(start_dim, end_dim) (PyTorch's defaults 1, -1). */
CG_API cg_status cg_flatten_new(int64_t start_dim, int64_t end_dim,
                                cg_module **out);
/** nn.Dropout(p) (default 0.5): ValueError "dropout probability has to be
 *  between 0 and 1, but got 1.5". Forward is cg_dropout(x, p,
 *  m.training) with the default generator: identity (x itself) in eval
 *  mode. inplace=True is not offered. */
CG_API cg_status cg_dropout_new(double p, cg_module **out);
/* ---- end issue 7 (layers helper) -------------------------------------- */

/* ======================================================================
 * issue 7 (serialization helper): state dicts and safetensors
 * ====================================================================== */

/** What a state-dict entry holds. Values are fixed; new ones are only
 *  appended. */
typedef enum cg_state_kind {
    CG_STATE_TENSOR = 0, /* a tensor */
    CG_STATE_NUMBER = 1, /* a Python int or float, as a double */
    CG_STATE_BOOL = 2,   /* True/False (number 1 or 0) */
    CG_STATE_NONE = 3,   /* None */
    CG_STATE_KIND_COUNT
} cg_state_kind;

/** "tensor", "number", "bool", "None" ("unknown" out of range). */
CG_API const char *cg_state_kind_name(cg_state_kind kind);

/** An ordered list of uniquely named entries: PyTorch's nested
 *  state_dict flattened with dotted names. A module's holds its
 *  parameters and persistent buffers ("0.weight", "1.running_mean"); an
 *  optimizer's (cg_optimizer_state_dict) "state.0.exp_avg" (tensor),
 *  "state.0.step" (0-d float32 tensor, as PyTorch keeps it),
 *  "param_groups.0.lr" (number), "param_groups.0.betas.1",
 *  "param_groups.0.amsgrad" (bool), "param_groups.0.foreach" (None),
 *  "param_groups.0.params.0" (number: the parameter's index). Tensors
 *  go to safetensors and the rest to its metadata. */
typedef struct cg_state_dict cg_state_dict;

/** An empty state dict. Errors: CG_ERR_MISUSE (out NULL), NOMEM. */
CG_API cg_status cg_state_dict_new(cg_state_dict **out);
/** Frees the dict and drops its tensor references (NULL-safe). */
CG_API void cg_state_dict_free(cg_state_dict *sd);
/** Number of entries (0 for NULL). */
CG_API int cg_state_dict_size(const cg_state_dict *sd);
/** The i-th entry in insertion order: its name (borrowed, valid while the
 *  entry lives), kind, tensor (borrowed; NULL unless CG_STATE_TENSOR) and
 *  number (0/1 for bool, 0 for None and tensors). Any out pointer may be
 *  NULL. IndexError "list index out of range" for a bad i. */
CG_API cg_status cg_state_dict_entry(const cg_state_dict *sd, int i,
                                     const char **name, cg_state_kind *kind,
                                     cg_tensor **tensor, double *number);
/** Index of the entry called `name`, or -1. */
CG_API int cg_state_dict_find(const cg_state_dict *sd, const char *name);
/** Adds or replaces `name` (copied) with a tensor (a reference is taken;
 *  the tensor is not copied), a number, a bool or None. A replaced entry
 *  keeps its position. Errors: CG_ERR_MISUSE (NULL sd, name or tensor),
 *  NOMEM (sd unchanged). */
CG_API cg_status cg_state_dict_set_tensor(cg_state_dict *sd, const char *name,
                                          cg_tensor *t);
CG_API cg_status cg_state_dict_set_number(cg_state_dict *sd, const char *name,
                                          double value);
CG_API cg_status cg_state_dict_set_bool(cg_state_dict *sd, const char *name,
                                        bool value);
CG_API cg_status cg_state_dict_set_none(cg_state_dict *sd, const char *name);
/** Removes `name`. KeyError (status CG_ERR_INDEX, message "'name'") when
 *  absent. */
CG_API cg_status cg_state_dict_remove(cg_state_dict *sd, const char *name);

/** m.state_dict(): each module's parameters, then its persistent buffers
 *  (None entries skipped), then its children's with "<child>." prefixes,
 *  depth first, in PyTorch's order and names ("0.weight", "0.bias",
 *  "2.weight"). The tensors are detached views sharing storage and
 *  version counter with the module's (as keep_vars=False gives): writing
 *  through them writes the model. The caller owns *out. */
CG_API cg_status cg_module_state_dict(const cg_module *m, cg_state_dict **out);
/** m.load_state_dict(sd, strict): copies each entry into the parameter or
 *  persistent buffer of the same name, converted to its dtype, under
 *  no-grad, bumping its version counter as copy_ does. Errors are
 *  collected as PyTorch 1.13 collects them and raised together as
 *  RuntimeError "Error(s) in loading state_dict for Sequential:\n\t
 *  Missing key(s) in state_dict: \"0.weight\", \"0.bias\". \n\t
 *  Unexpected key(s) in state_dict: \"3.weight\". \n\tsize mismatch for
 *  2.weight: copying a param with shape torch.Size([3, 3]) from
 *  checkpoint, the shape in current model is torch.Size([2, 1, 1, 1,
 *  1])." (missing / unexpected only when strict); a non-tensor entry
 *  gives "While copying the parameter named \"0.weight\", expected
 *  torch.Tensor or Tensor-like object from checkpoint but received
 *  <class 'float'>"; a complex entry for a real tensor gives PyTorch's
 *  "..., an exception occurred : (...)." form with cgrad's copy_ message
 *  (PyTorch would warn and drop the imaginary part). A 0-d tensor takes
 *  element 0 of a 1-d entry, as in PyTorch. Everything is checked before
 *  anything is written: on any error the model is unchanged. */
CG_API cg_status cg_module_load_state_dict(cg_module *m,
                                           const cg_state_dict *sd,
                                           bool strict);

/** Writes sd as a safetensors file (https://github.com/huggingface/
 *  safetensors): an 8-byte little-endian header length, a compact JSON
 *  header padded with spaces to a multiple of 8 as the reference writer
 *  pads it, then the tensors' bytes back to back (C order, little endian)
 *  in the dict's order. Tensors are "F32", "F64" or "C64" (complex64, the
 *  dtype safetensors 0.7 added); complex128 has no safetensors dtype and
 *  is a ValueError. Numbers, bools and None go to "__metadata__" as the
 *  strings "True", "False", "None" and the shortest "%.17g"-style text
 *  that reads back as the same double ("0.001", "1e-08", "inf", "nan").
 *  Errors: ValueError (complex128, a name "__metadata__" or not valid
 *  UTF-8), OSError (the file cannot be written; a partial file may
 *  remain), MISUSE. */
CG_API cg_status cg_safetensors_save(const cg_state_dict *sd, const char *path);
/** Reads a safetensors file into a new state dict: the tensors in the
 *  order of their data, then the metadata entries in the header's order
 *  ("True"/"False" -> bool, "None" -> None, a number -> number; the
 *  framework tag "format" of PyTorch-written files is skipped). Loading
 *  is strict: a short file, a header length past the end or over 100 MB,
 *  a header that is not UTF-8 or not strict JSON (RFC 8259: no trailing
 *  commas, comments, NaN, leading zeros, lone surrogates; duplicate keys
 *  rejected), unknown fields, dtypes other than F32/F64/C64 (and I64,
 *  read into float64 when every value is exact there: PyTorch's
 *  num_batches_tracked), shapes whose
 *  byte size overflows or differs from their data_offsets, offsets that
 *  overlap, leave gaps or do not cover the data exactly, and metadata
 *  values that are not cgrad's are each a ValueError "cannot load
 *  '<path>': <problem>"; an unreadable file is an OSError ("[Errno 2] No
 *  such file or directory: 'x'"). The file size is checked before
 *  anything is allocated. The caller owns *out. */
CG_API cg_status cg_safetensors_load(const char *path, cg_state_dict **out);
/** cg_module_state_dict then cg_safetensors_save. */
CG_API cg_status cg_module_save_safetensors(const cg_module *m,
                                            const char *path);
/** cg_safetensors_load then cg_module_load_state_dict(strict). */
CG_API cg_status cg_module_load_safetensors(cg_module *m, const char *path,
                                            bool strict);
/* ---- end issue 7 (serialization helper) ------------------------------- */

/* ======================================================================
 * issue 7 (losses helper): MSELoss, L1Loss, CrossEntropyLoss,
 * BCEWithLogitsLoss
 *
 * Loss modules print as PyTorch's ("MSELoss()", "CrossEntropyLoss()")
 * and expose their attributes through cg_module_getattr ("reduction",
 * and "ignore_index", "label_smoothing" for CrossEntropyLoss; the
 * buffers "weight" and, for BCEWithLogitsLoss, "pos_weight", None when
 * not given). `reduction` is stored as given (NULL: "mean"); like
 * PyTorch, a bad one is only reported by forward ("bad is not a valid
 * value for reduction"). Weight tensors are held by reference as
 * buffers, not copied. The functional forms and the convention for
 * class-index targets (a floating tensor of whole numbers, shaped as the
 * input without its class dimension) are in cgrad.h (cg_cross_entropy).
 * ====================================================================== */

/** loss(input, target) for any loss module: the functional loss with the
 *  module's settings. Another module is Python's TypeError
 *  "ReLU.forward() takes 2 positional arguments but 3 were given". (A
 *  loss module given to cg_module_forward fails with "MSELoss.forward()
 *  missing 1 required positional argument: 'target'".) */
CG_API cg_status cg_loss_forward(cg_module *m, cg_tensor *input,
                                 cg_tensor *target, cg_tensor **out);
/** nn.MSELoss(reduction) and nn.L1Loss(reduction). */
CG_API cg_status cg_mse_loss_new(const char *reduction, cg_module **out);
CG_API cg_status cg_l1_loss_new(const char *reduction, cg_module **out);

/** The constructor arguments of nn.CrossEntropyLoss. */
typedef struct cg_cross_entropy_loss_opts {
    cg_tensor *weight;      /* (C) or NULL (None, the default) */
    int64_t ignore_index;   /* default -100 */
    const char *reduction;  /* default "mean" */
    double label_smoothing; /* default 0.0 */
} cg_cross_entropy_loss_opts;
CG_API cg_cross_entropy_loss_opts cg_cross_entropy_loss_options(void);
/** nn.CrossEntropyLoss(**opts); forward is cg_cross_entropy. */
CG_API cg_status cg_cross_entropy_loss_new(
    const cg_cross_entropy_loss_opts *opts, cg_module **out);

/** The constructor arguments of nn.BCEWithLogitsLoss. */
typedef struct cg_bce_with_logits_loss_opts {
    cg_tensor *weight;     /* NULL (None, the default) */
    const char *reduction; /* default "mean" */
    cg_tensor *pos_weight; /* NULL (None, the default) */
} cg_bce_with_logits_loss_opts;
CG_API cg_bce_with_logits_loss_opts cg_bce_with_logits_loss_options(void);
/** nn.BCEWithLogitsLoss(**opts); forward is
 *  cg_binary_cross_entropy_with_logits. */
CG_API cg_status cg_bce_with_logits_loss_new(
    const cg_bce_with_logits_loss_opts *opts, cg_module **out);
/* ---- end issue 7 (losses helper) -------------------------------------- */

/* ======================================================================
 * issue 7 (spatial helper): BatchNorm3d, MaxPool3d, AvgPool3d, Upsample
 * ====================================================================== */

/** The constructor arguments of nn.BatchNorm3d, in PyTorch's order. */
typedef struct cg_batch_norm3d_opts {
    int64_t num_features;
    double eps;               /* default 1e-5 */
    double momentum;          /* default 0.1 */
    bool momentum_none;       /* momentum=None: cumulative moving average
                                 (factor 1/num_batches_tracked) */
    bool affine;              /* default true: weight (ones), bias (zeros) */
    bool track_running_stats; /* default true */
    const char *device;       /* NULL (None) or "cpu" */
    cg_dtype dtype;           /* default CG_FLOAT32 */
} cg_batch_norm3d_opts;

/** The defaults for num_features. */
CG_API cg_batch_norm3d_opts cg_batch_norm3d_options(int64_t num_features);
/** nn.BatchNorm3d(**opts). Parameters weight, bias (None unless affine);
 *  persistent buffers running_mean (zeros), running_var (ones),
 *  num_batches_tracked (None unless track_running_stats).
 *  num_batches_tracked is a 0-d float64 tensor (PyTorch: int64; cgrad has
 *  no integer dtype; exact to 2**53). Forward (cg_module_forward) is
 *  _BatchNorm.forward: ValueError "expected 5D input (got 4D input)",
 *  then cg_batch_norm with batch statistics in training (updating the
 *  running ones and counting the batch) or the running statistics in
 *  evaluation. A failing forward changes nothing (PyTorch would already
 *  have counted the batch). */
CG_API cg_status cg_batch_norm3d_new(const cg_batch_norm3d_opts *opts,
                                     cg_module **out);
/** m.weight, m.bias, m.running_mean, m.running_var, m.num_batches_tracked
 *  (NULL when None or when m is not a BatchNorm3d), borrowed. */
CG_API cg_tensor *cg_batch_norm3d_weight(const cg_module *m);
CG_API cg_tensor *cg_batch_norm3d_bias(const cg_module *m);
CG_API cg_tensor *cg_batch_norm3d_running_mean(const cg_module *m);
CG_API cg_tensor *cg_batch_norm3d_running_var(const cg_module *m);
CG_API cg_tensor *cg_batch_norm3d_num_batches_tracked(const cg_module *m);

/** The constructor arguments of nn.MaxPool3d. A cg_ints of one entry is a
 *  Python int (repr "kernel_size=2"), of three a tuple. Nothing is checked
 *  at construction (as in PyTorch); forward is cg_max_pool3d.
 *  return_indices=True is not offered. */
typedef struct cg_max_pool3d_opts {
    cg_ints kernel_size;
    cg_ints stride;   /* default None (n = 0): kernel_size */
    cg_ints padding;  /* default CG_INTS(1, 0) */
    cg_ints dilation; /* default CG_INTS(1, 1) */
    bool ceil_mode;   /* default false */
} cg_max_pool3d_opts;

CG_API cg_max_pool3d_opts cg_max_pool3d_options(cg_ints kernel_size);
/** nn.MaxPool3d(**opts); CG_ERR_MISUSE only for a cg_ints with n outside
 *  0..8. */
CG_API cg_status cg_max_pool3d_new(const cg_max_pool3d_opts *opts,
                                   cg_module **out);
/** The arguments as stored (stride filled in), borrowed; NULL if m is not
 *  a MaxPool3d. */
CG_API const cg_max_pool3d_opts *cg_max_pool3d_config(const cg_module *m);

/** The constructor arguments of nn.AvgPool3d; forward is cg_avg_pool3d. */
typedef struct cg_avg_pool3d_opts {
    cg_ints kernel_size;
    cg_ints stride;            /* default None (n = 0): kernel_size */
    cg_ints padding;           /* default CG_INTS(1, 0) */
    bool ceil_mode;            /* default false */
    bool count_include_pad;    /* default true */
    bool has_divisor_override; /* default false (None) */
    int64_t divisor_override;  /* used when has_divisor_override */
} cg_avg_pool3d_opts;

CG_API cg_avg_pool3d_opts cg_avg_pool3d_options(cg_ints kernel_size);
CG_API cg_status cg_avg_pool3d_new(const cg_avg_pool3d_opts *opts,
                                   cg_module **out);
CG_API const cg_avg_pool3d_opts *cg_avg_pool3d_config(const cg_module *m);

/** The constructor arguments of nn.Upsample (mode 'nearest' only). Python
 *  values: size.n == 0 is None, one entry a Python int (every spatial
 *  axis; repr "size=4"), more a tuple; scale_n / scale_factor likewise for
 *  floats (a scalar 0 becomes None, as in PyTorch). */
typedef struct cg_upsample_opts {
    cg_ints size; /* default None */
    int scale_n;  /* 0 (None), 1 (a float) or a tuple length */
    double scale_factor[8];
    const char *mode;            /* "nearest" (others: NotImplementedError) */
    bool recompute_scale_factor; /* default None (false) */
} cg_upsample_opts;

/** size=None, scale_factor=None, mode='nearest'. */
CG_API cg_upsample_opts cg_upsample_options(void);
/** nn.Upsample(**opts). Forward runs F.interpolate's checks (ValueError
 *  "either size or scale_factor should be defined", "only one of size or
 *  scale_factor should be defined", the spatial-dimension mismatch
 *  messages, "recompute_scale_factor is not meaningful with an explicit
 *  size.", NotImplementedError for a 2-D or 6-D input; with
 *  recompute_scale_factor, math.floor's ValueError "cannot convert float
 *  NaN to integer" and OverflowError "cannot convert float infinity to
 *  integer", and a TypeError for a size outside int64) and then
 *  cg_upsample_nearest: a 3-D, 4-D or 5-D input upsamples 1, 2 or 3 axes
 *  (UpsampleNearest{1,2,3}DBackward1). */
CG_API cg_status cg_upsample_new(const cg_upsample_opts *opts, cg_module **out);
CG_API const cg_upsample_opts *cg_upsample_config(const cg_module *m);
/* ---- end issue 7 (spatial helper) ------------------------------------- */

#ifdef __cplusplus
}
#endif

#endif /* CGRAD_NN_H */
