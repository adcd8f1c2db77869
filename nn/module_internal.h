/*
 * module_internal.h -- what every nn layer shares: the module base
 * (torch.nn.Module's bookkeeping), a string builder for reprs, and the
 * part of _ConvNd that Conv3d and ConvTranspose3d have in common. Private
 * to the library; never installed.
 *
 * A layer is a struct whose first member is a cg_module. The base holds,
 * like nn.Module, three ordered name -> value tables (_parameters,
 * _buffers, _modules; a value may be None), the training flag and a
 * vtable with the layer's class name, forward, extra_repr, attribute
 * lookup and destructor. The base implements everything declared in the
 * "Modules" section of cgrad_nn.h on top of that.
 */
#ifndef CGRAD_NN_MODULE_INTERNAL_H
#define CGRAD_NN_MODULE_INTERNAL_H

#include "cgrad_nn.h"

#include <stdarg.h>

/* ======================================================================
 * Errors: nn/ reports through the public cg_error, like any extension.
 * ====================================================================== */

/** MemoryError for a request of `bytes` bytes, in PyTorch's words. */
static inline cg_status cg__nn_nomem(size_t bytes)
{
    return cg_error(CG_ERR_NOMEM,
                    "DefaultCPUAllocator: can't allocate memory: you tried "
                    "to allocate %zu bytes.",
                    bytes);
}

/** CG_ERR_MISUSE: "<what> must not be NULL". */
static inline cg_status cg__nn_null(const char *what)
{
    return cg_error(CG_ERR_MISUSE, "%s must not be NULL", what);
}

/* ======================================================================
 * String builder (module.c). Appends are checked: the first failed
 * allocation sets MemoryError, makes the builder "failed", and every later
 * append is a no-op returning CG_ERR_NOMEM, so a caller may append a
 * sequence and test the status once at the end.
 * ====================================================================== */

typedef struct cg__strbuf {
    char *data;  /* NUL-terminated once anything was appended, or NULL */
    size_t len;  /* bytes written, without the NUL */
    size_t cap;  /* bytes allocated */
    bool failed; /* an allocation failed; the content is incomplete */
} cg__strbuf;

#define CG__STRBUF_INIT                                                        \
    {                                                                          \
        NULL, 0, 0, false                                                      \
    }

cg_status cg__sb_putn(cg__strbuf *sb, const char *s, size_t n);
cg_status cg__sb_puts(cg__strbuf *sb, const char *s);
cg_status cg__sb_printf(cg__strbuf *sb, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/** repr(t) as cg_tensor_repr prints it ("Parameter containing:\n..." for
 *  parameters). */
cg_status cg__sb_tensor_repr(cg__strbuf *sb, const cg_tensor *t);
/** A Python tuple of ints: "(1, 1, 1)", "(2,)", "()". */
cg_status cg__sb_tuple(cg__strbuf *sb, const int64_t *v, int n);
/** A Python list of ints: "[1, 1, 1]", "[]". */
cg_status cg__sb_list(cg__strbuf *sb, const int64_t *v, int n);
/** Python's repr of a str: 'zeros' (quotes chosen and characters escaped
 *  as Python does for printable ASCII). */
cg_status cg__sb_pystr(cg__strbuf *sb, const char *s);
/** The status of the builder: CG_OK, or CG_ERR_NOMEM after a failure. */
cg_status cg__sb_status(const cg__strbuf *sb);
/** Copies the content out snprintf-style: at most size-1 bytes and a NUL
 *  into buf (buf may be NULL when size is 0); *len (if not NULL) gets the
 *  full length. */
void cg__sb_copy_out(const cg__strbuf *sb, char *buf, size_t size, size_t *len);
void cg__sb_free(cg__strbuf *sb);
/** A copy of s made with cg_malloc (NULL when out of memory; the caller
 *  reports it). */
char *cg__strdup(const char *s);

/* ======================================================================
 * The module base (module.c)
 * ====================================================================== */

/** What a layer tells the base about itself. */
typedef struct cg__module_vtable {
    /** The class name: type(m).__name__. */
    const char *type_name;
    /** m(input); NULL when the layer has no single-input forward (the base
     *  then reports PyTorch's "missing forward" NotImplementedError). */
    cg_status (*forward)(cg_module *m, cg_tensor *input, cg_tensor **out);
    /** extra_repr(): appends the text PyTorch shows inside the
     *  parentheses (nothing for none); may contain newlines. NULL: none. */
    cg_status (*extra_repr)(const cg_module *m, cg__strbuf *sb);
    /** The layer's own instance attributes (what is in its __dict__ besides
     *  the base's): appends repr(m.<name>) and sets *found, or leaves *found
     *  false for a name it does not have. NULL: none. */
    cg_status (*getattr)(const cg_module *m, const char *name, cg__strbuf *sb,
                         bool *found);
    /** Frees what the layer itself owns (not its parameters, buffers or
     *  children, which the base releases). NULL: nothing. */
    void (*destroy)(cg_module *m);
} cg__module_vtable;

/** One entry of an ordered name table. Exactly one of tensor / module is
 *  meaningful, depending on the table; both NULL is Python's None. */
typedef struct cg__module_entry {
    char *name;        /* owned */
    cg_tensor *tensor; /* owned reference (parameters, buffers) or NULL */
    cg_module *module; /* owned reference (children) or NULL */
    bool persistent;   /* buffers: part of state_dict */
} cg__module_entry;

typedef struct cg__module_table {
    int n, cap;
    cg__module_entry *items; /* insertion order, as Python's dict */
} cg__module_table;

struct cg_module {
    const cg__module_vtable *vt;
    long refs;                 /* owners: the creator and every parent */
    bool training;             /* Module.training, true after construction */
    cg__module_table params;   /* _parameters */
    cg__module_table buffers;  /* _buffers */
    cg__module_table children; /* _modules */
    /* named_parameters() of this module as the root, flattened with
     * dotted names; rebuilt when any module's tables changed since. */
    struct {
        uint64_t epoch; /* 0: never built */
        int n;
        char **names;        /* owned strings */
        cg_tensor **tensors; /* borrowed from the tables */
    } flat;
    cg_module *free_next; /* worklist link while freeing a tree */
};

/** Allocates a zeroed layer of `size` bytes (>= sizeof(cg_module)) whose
 *  first member is the base, and initialises the base (training on, one
 *  reference). */
cg_status cg__module_alloc(size_t size, const cg__module_vtable *vt,
                           cg_module **out);
/** Takes one more reference (a parent holding a child). */
cg_module *cg__module_retain(cg_module *m);

/** register_parameter(name, t): t may be NULL (None, e.g. bias=False).
 *  Takes a reference; replaces an entry of the same name in place. */
cg_status cg__module_register_parameter(cg_module *m, const char *name,
                                        cg_tensor *t);
/** register_buffer(name, t, persistent). */
cg_status cg__module_register_buffer(cg_module *m, const char *name,
                                     cg_tensor *t, bool persistent);
/** add_module(name, child): child may be NULL (None); takes a reference. */
cg_status cg__module_register_module(cg_module *m, const char *name,
                                     cg_module *child);
/** m._parameters[name] (NULL when absent or None), borrowed. */
cg_tensor *cg__module_parameter(const cg_module *m, const char *name);
/** m.train(mode) / m.eval(): sets the flag on m and all descendants. */
void cg__module_train(cg_module *m, bool mode);
/** True when m's class is the one described by vt. */
bool cg__module_is(const cg_module *m, const cg__module_vtable *vt);

/* ======================================================================
 * _ConvNd: the part Conv3d and ConvTranspose3d share (conv3d.c)
 * ====================================================================== */

/** The constructor arguments of _ConvNd.__init__, after each class turned
 *  its options into them. */
typedef struct cg__conv_args {
    int64_t in_channels, out_channels;
    cg_ints kernel_size, stride, padding, dilation;
    bool transposed;
    cg_ints output_padding; /* Conv3d: (0, 0, 0) */
    int64_t groups;
    bool bias;
    const char *padding_mode;
    const char *device;
    cg_dtype dtype;
} cg__conv_args;

/** A Conv3d or ConvTranspose3d module. */
typedef struct cg__conv {
    cg_module base;
    cg__conv_args a;   /* as stored; a.padding_mode points at mode */
    char *mode;        /* owned copy of the padding mode */
    cg_tensor *weight; /* borrowed from base.params ("weight") */
    cg_tensor *bias;   /* borrowed from base.params ("bias"), or NULL */
    /* the options as the cg_*_config accessors return them (kept in step
     * with `a`; padding_mode points at mode, device is NULL or "cpu") */
    cg_conv_transpose3d_opts topts;
    cg_conv3d_opts copts;
} cg__conv;

/** Checks a cg_ints a caller filled in (0..8 entries); `what` names the
 *  argument in the message. */
cg_status cg__conv_check_ints(const cg_ints *v, const char *what);
/** The construction checks after the class's own (C2-C6 and Conv3d's
 *  padding_mode set), in PyTorch's order, without allocating. */
cg_status cg__conv_validate(const cg__conv_args *a);
/** _ConvNd.__init__: validates, stores, creates weight (transposed:
 *  (Cin, Cout/G, k...), else (Cout, Cin/G, k...)) and bias, registers
 *  them and runs reset_parameters. */
cg_status cg__conv_new(const cg__conv_args *a, const cg__module_vtable *vt,
                       cg_module **out);
/** reset_parameters(): kaiming_uniform_(weight, a=sqrt(5)) and the bias
 *  bound 1/sqrt(fan_in), with fan_in read from weight dimension 1. */
cg_status cg__conv_reset_parameters(cg__conv *c);
/** The weight shape _ConvNd creates for `a` (ndim = 2 + kernel entries). */
int cg__conv_weight_shape(const cg__conv_args *a, int64_t *shape);
/** extra_repr() of _ConvNd for arguments `a` with a bias or not. */
cg_status cg__conv_extra_repr_args(const cg__conv_args *a, bool has_bias,
                                   cg__strbuf *sb);
/** The vtable entries every conv layer shares. */
cg_status cg__conv_extra_repr(const cg_module *m, cg__strbuf *sb);
cg_status cg__conv_getattr(const cg_module *m, const char *name, cg__strbuf *sb,
                           bool *found);
void cg__conv_destroy(cg_module *m);
/** m.padding_mode = mode (any string, as Python allows). */
cg_status cg__conv_set_padding_mode(cg__conv *c, const char *mode);

/* ---- issue 7 (layers helper) ------------------------------------------ */

/** Python's repr of a float: "0.01", "1e-05", "0.5", "2.0", "nan". */
cg_status cg__sb_pyfloat(cg__strbuf *sb, double v);
/** add_module(name, child) after checking that m is not child and does
 *  not lie inside it (ValueError "cgrad: a module cannot contain
 *  itself"), so a tree never holds a cycle. */
cg_status cg__module_add_child(cg_module *m, const char *name,
                               cg_module *child);
/* ---- end issue 7 (layers helper) -------------------------------------- */

#endif /* CGRAD_NN_MODULE_INTERNAL_H */
