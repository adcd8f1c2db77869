/*
 * cgrad.h -- the public contract of cgrad's core: tensors, dtypes, errors,
 * the random number generator, printing and NumPy interchange.
 *
 * cgrad is a small autograd and neural-network framework in C11 that
 * behaves like PyTorch 1.13 (CPU): same names, defaults, shapes, error
 * messages and numbers. Anything not declared in this header (or in
 * nn/cgrad_nn.h, optim/cgrad_optim.h) is private.
 *
 * Conventions (see README.md, "Conventions"):
 *   - Every function that can fail returns a cg_status; CG_OK is 0. Results
 *     come back through trailing `out` pointers, which are written only on
 *     success. On failure every argument is left as it was and nothing
 *     leaks; cg_last_error() holds PyTorch's message.
 *   - Shapes, strides and indices are int64_t in PyTorch order (outermost
 *     first); strides count elements. size_t is used only for bytes.
 *   - Tensors are reference counted. A tensor returned through `out` is a
 *     new reference owned by the caller, released with cg_tensor_release().
 *     Arguments are borrowed. Every *_release / *_free accepts NULL.
 *   - Global mutable state: the default generator (cg_manual_seed), the
 *     thread-local last error, the allocator and the grad mode. Each is
 *     documented where it is declared.
 *
 * Quick example (mirrors `torch.manual_seed(42); x = torch.randn(2, 3)`):
 *
 *     cg_manual_seed(42);
 *     cg_tensor *x = NULL;
 *     int64_t shape[] = {2, 3};
 *     if (cg_randn(shape, 2, CG_FLOAT32, NULL, &x) != CG_OK) {
 *         fprintf(stderr, "%s: %s\n", cg_status_name(cg_last_status()),
 *                 cg_last_error());
 *         return 1;
 *     }
 *     cg_tensor_print(x, stdout);
 *     cg_tensor_release(x);
 */
#ifndef CGRAD_H
#define CGRAD_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define CG_API
#elif defined(__GNUC__)
#define CG_API __attribute__((visibility("default")))
#else
#define CG_API
#endif

#define CGRAD_VERSION_MAJOR 0
#define CGRAD_VERSION_MINOR 1
#define CGRAD_VERSION_PATCH 0

/** The largest number of dimensions a tensor can have. */
#define CG_MAX_DIMS 16

/* ======================================================================
 * Status codes and errors
 * ====================================================================== */

/** Result of every fallible call. Values are fixed; new ones are only ever
 *  appended before CG_STATUS_COUNT. cg_status_name() gives the Python
 *  exception class PyTorch raises for the same mistake. */
typedef enum cg_status {
    CG_OK = 0,            /* success */
    CG_ERR_VALUE = 1,     /* ValueError */
    CG_ERR_RUNTIME = 2,   /* RuntimeError (also broken internal invariants) */
    CG_ERR_TYPE = 3,      /* TypeError */
    CG_ERR_INDEX = 4,     /* IndexError */
    CG_ERR_ATTRIBUTE = 5, /* AttributeError */
    CG_ERR_NOMEM = 6,     /* MemoryError: an allocation failed */
    CG_ERR_MISUSE = 7,    /* TypeError: NULL where an object was required */
    CG_ERR_NOT_IMPLEMENTED = 8, /* NotImplementedError */
    CG_ERR_IO = 9,        /* OSError: a file could not be read or written */
    CG_ERR_OVERFLOW = 10, /* OverflowError: a float too large to convert */
    CG_STATUS_COUNT
} cg_status;

/** Python's name of the exception class for `st`: "ValueError",
 *  "RuntimeError", ... ("OK" for CG_OK, "UnknownError" out of range). */
CG_API const char *cg_status_name(cg_status st);

/** The message of the last failed call on this thread, worded as PyTorch
 *  words it, without the exception name (""). The string is owned by the
 *  library and stays valid until the next failing call on this thread. */
CG_API const char *cg_last_error(void);

/** The status of the last failed call on this thread (CG_OK if none). */
CG_API cg_status cg_last_status(void);

/** Forget the last error of this thread. */
CG_API void cg_clear_error(void);

/** Writes "<ExceptionName>: <message>\n" for the last error to `f`, as
 *  Python prints an uncaught exception's last line. */
CG_API void cg_print_last_error(FILE *f);

/** Sets this thread's last error to `st` with a printf-formatted message
 *  and returns `st`, for code built on cgrad (nn/, optim/, a user's own
 *  module or op) to report failures the way the library does:
 *      return cg_error(CG_ERR_VALUE, "groups must be a positive integer"); */
CG_API cg_status cg_error(cg_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;

/* ======================================================================
 * Allocator
 * ====================================================================== */

/** Memory functions cgrad uses for every allocation it makes. `user` is
 *  passed back to each call. malloc_fn(0) may return NULL or a unique
 *  pointer. A function returning NULL for a non-zero size is an
 *  out-of-memory condition: the failing call returns CG_ERR_NOMEM and
 *  leaves everything as it was. */
typedef struct cg_allocator {
    void *(*malloc_fn)(size_t size, void *user);
    void *(*realloc_fn)(void *ptr, size_t size, void *user);
    void (*free_fn)(void *ptr, void *user);
    void *user;
} cg_allocator;

/** Installs `a` (copied), or restores the C library's allocator when `a`
 *  is NULL. Memory must be released by the allocator that made it: install
 *  an allocator only while the library holds no objects, and with no
 *  other thread inside cgrad. CG_ERR_MISUSE if a function is missing. */
CG_API cg_status cg_set_allocator(const cg_allocator *a);

/** Allocation through the installed allocator, for code built on cgrad
 *  (nn/, optim/, user extensions) that wants its memory counted and its
 *  failures injected like the library's own. cg_malloc(0) returns a
 *  unique pointer; NULL means out of memory. cg_calloc checks n*size for
 *  overflow. cg_free(NULL) is a no-op. */
CG_API void *cg_malloc(size_t size);
CG_API void *cg_calloc(size_t n, size_t size);
CG_API void *cg_realloc(void *ptr, size_t size);
CG_API void cg_free(void *ptr);

/* ======================================================================
 * dtypes
 * ====================================================================== */

/** Element types. Complex types store interleaved (re, im) pairs, as
 *  PyTorch does. Values are fixed; new ones are only appended. */
typedef enum cg_dtype {
    CG_FLOAT32 = 0,    /* torch.float32 (torch.float), the default */
    CG_FLOAT64 = 1,    /* torch.float64 (torch.double) */
    CG_COMPLEX64 = 2,  /* torch.complex64 (torch.cfloat) */
    CG_COMPLEX128 = 3, /* torch.complex128 (torch.cdouble) */
    CG_DTYPE_COUNT
} cg_dtype;

/** "float32", "float64", "complex64", "complex128" (as after "torch."). */
CG_API const char *cg_dtype_name(cg_dtype dt);
/** Bytes per element: 4, 8, 8, 16 (0 for an invalid dtype). */
CG_API size_t cg_dtype_size(cg_dtype dt);
/** True for CG_COMPLEX64 and CG_COMPLEX128. */
CG_API bool cg_dtype_is_complex(cg_dtype dt);
/** The real dtype of a complex one (complex64 -> float32); identity on
 *  real dtypes. */
CG_API cg_dtype cg_dtype_to_real(cg_dtype dt);
/** The complex dtype of a real one (float32 -> complex64). */
CG_API cg_dtype cg_dtype_to_complex(cg_dtype dt);

/* ======================================================================
 * Tensors: creation and lifetime
 * ====================================================================== */

/** A strided view of reference-counted storage, with autograd state. */
typedef struct cg_tensor cg_tensor;

/** A random number generator (MT19937), like torch.Generator. */
typedef struct cg_generator cg_generator;

/** Takes one more reference to `t` and returns it (NULL-safe). */
CG_API cg_tensor *cg_tensor_retain(cg_tensor *t);
/** Drops one reference; the last one frees the tensor (NULL-safe). */
CG_API void cg_tensor_release(cg_tensor *t);

/** torch.empty(shape, dtype=dt): uninitialised values (zero-filled in
 *  practice, so a bug never reads garbage). `ndim` may be 0 (a scalar).
 *  Errors: negative dimension (RuntimeError, PyTorch's "Trying to create
 *  tensor with negative dimension -1: [2, -1]"), too many dimensions,
 *  size overflow, invalid dtype, out of memory. */
CG_API cg_status cg_empty(const int64_t *shape, int ndim, cg_dtype dt,
                          cg_tensor **out);
/** torch.zeros(shape, dtype=dt). */
CG_API cg_status cg_zeros(const int64_t *shape, int ndim, cg_dtype dt,
                          cg_tensor **out);
/** torch.ones(shape, dtype=dt). */
CG_API cg_status cg_ones(const int64_t *shape, int ndim, cg_dtype dt,
                         cg_tensor **out);
/** torch.full(shape, value, dtype=dt); for a complex dtype the value is
 *  (value + 0j). */
CG_API cg_status cg_full(const int64_t *shape, int ndim, double value,
                         cg_dtype dt, cg_tensor **out);
/** torch.full(shape, complex(re, im), dtype=dt); dt must be complex. */
CG_API cg_status cg_full_complex(const int64_t *shape, int ndim, double re,
                                 double im, cg_dtype dt, cg_tensor **out);
/** A new contiguous tensor holding a copy of `data`, which has numel
 *  elements of `dt` in row-major order (complex: re, im pairs). */
CG_API cg_status cg_tensor_from_data(const void *data, const int64_t *shape,
                                     int ndim, cg_dtype dt, cg_tensor **out);
/** torch.arange(n, dtype=dt): 0, 1, ..., n-1. */
CG_API cg_status cg_arange(int64_t n, cg_dtype dt, cg_tensor **out);

/** torch.tensor(<literal>): parses Python's nested-list (or tuple) syntax,
 *  e.g. "[[[[8., -3., 0., 1., 5., -2.]]]]", "3.5", "[1+2j, -3.5-0.25j]",
 *  "[float('nan'), inf]". The dtype is float32, or complex64 when any
 *  element is complex, as torch.tensor infers it for float data; ints and
 *  True/False become float32 too (cgrad has no integer dtype). The shape
 *  follows the first element down, as torch.tensor does (so "[[], [1]]"
 *  is an empty (2, 0) tensor). At most 16 dimensions. Errors, with
 *  PyTorch's or Python's words where they have them: ValueError "expected
 *  sequence of length 2 at dim 1 (got 3)", TypeError "not a sequence",
 *  TypeError "must be real number, not list"; and for malformed text a
 *  ValueError "invalid literal at position P: <what>" (P a 0-based byte
 *  offset). Parsing does not depend on the C locale. */
CG_API cg_status cg_tensor_literal(const char *text, cg_tensor **out);
/** cg_tensor_literal with an explicit dtype (torch.tensor(..., dtype=dt));
 *  complex values into a real dtype are a TypeError. */
CG_API cg_status cg_tensor_literal_dtype(const char *text, cg_dtype dt,
                                         cg_tensor **out);

/* ======================================================================
 * Tensors: properties and elements
 * ====================================================================== */

CG_API cg_dtype cg_tensor_dtype(const cg_tensor *t);
/** Number of dimensions (t.dim()). */
CG_API int cg_tensor_dim(const cg_tensor *t);
/** Number of elements (t.numel()). */
CG_API int64_t cg_tensor_numel(const cg_tensor *t);
/** The shape array (ndim entries), borrowed, valid while t lives and is
 *  not resized. */
CG_API const int64_t *cg_tensor_shape(const cg_tensor *t);
/** The strides array (ndim entries, in elements), borrowed. */
CG_API const int64_t *cg_tensor_strides(const cg_tensor *t);
/** Offset of the first element in its storage, in elements. */
CG_API int64_t cg_tensor_storage_offset(const cg_tensor *t);
/** t.size(dim), dim may be negative. IndexError with PyTorch's message
 *  "Dimension out of range (expected to be in range of [-2, 1], but got
 *  5)" when out of range. */
CG_API cg_status cg_tensor_size(const cg_tensor *t, int64_t dim, int64_t *out);
/** t.is_contiguous(). */
CG_API bool cg_tensor_is_contiguous(const cg_tensor *t);
/** Pointer to the first element (storage data + offset), borrowed. Writing
 *  through it bypasses autograd's version counter; use it for reading. */
CG_API void *cg_tensor_data(const cg_tensor *t);
/** True when `a` and `b` view the same storage. */
CG_API bool cg_tensor_shares_storage(const cg_tensor *a, const cg_tensor *b);

/** The element at `index` (ndim entries, negative counts from the end),
 *  converted to double; for complex tensors the real part goes to `re`
 *  and the imaginary part to `im` (im may be NULL for real tensors).
 *  IndexError: "index 5 is out of bounds for dimension 0 with size 3". */
CG_API cg_status cg_tensor_get(const cg_tensor *t, const int64_t *index,
                               double *re, double *im);
/** Sets the element at `index` to re (+ im j); the value is rounded to the
 *  dtype. Complex values need a complex tensor (im must be 0 otherwise).
 *  An in-place write: bumps the version counter. */
CG_API cg_status cg_tensor_set(cg_tensor *t, const int64_t *index, double re,
                               double im);
/** t.item(): the value of a one-element tensor. ValueError "only one
 *  element tensors can be converted to Python scalars" otherwise. */
CG_API cg_status cg_tensor_item(const cg_tensor *t, double *re, double *im);
/** Copies all elements, in row-major order, into `dst` as doubles
 *  (complex: re, im pairs). `cap` counts doubles; CG_ERR_VALUE if too
 *  small. */
CG_API cg_status cg_tensor_to_doubles(const cg_tensor *t, double *dst,
                                      int64_t cap);

/* ======================================================================
 * Views (they share storage with their base) and copies
 * ====================================================================== */

/** t.view(shape): one entry may be -1 (inferred). The view must be
 *  expressible with t's strides (RuntimeError: "view size is not
 *  compatible with input tensor's size and stride (at least one dimension
 *  spans across two contiguous subspaces). Use .reshape(...) instead.");
 *  a wrong element count gives "shape '[2, 4]' is invalid for input of
 *  size 6". */
CG_API cg_status cg_tensor_view(cg_tensor *t, const int64_t *shape, int ndim,
                                cg_tensor **out);
/** t.reshape(shape): a view when possible, else a contiguous copy. */
CG_API cg_status cg_tensor_reshape(cg_tensor *t, const int64_t *shape, int ndim,
                                   cg_tensor **out);
/** t.flatten(start_dim, end_dim). */
CG_API cg_status cg_tensor_flatten(cg_tensor *t, int64_t start_dim,
                                   int64_t end_dim, cg_tensor **out);
/** t.unsqueeze(dim), dim in [-ndim-1, ndim]. */
CG_API cg_status cg_tensor_unsqueeze(cg_tensor *t, int64_t dim,
                                     cg_tensor **out);
/** t.squeeze(dim): drops `dim` if its size is 1, else returns a view of
 *  the same shape (grad_fn SqueezeBackward1). */
CG_API cg_status cg_tensor_squeeze_dim(cg_tensor *t, int64_t dim,
                                       cg_tensor **out);
/** t.squeeze(): drops every size-1 dimension (grad_fn SqueezeBackward0). */
CG_API cg_status cg_tensor_squeeze(cg_tensor *t, cg_tensor **out);
/** t.permute(dims): `dims` is a permutation of 0..ndim-1 (negatives
 *  allowed). RuntimeError "permute(sparse_coo): number of dimensions in
 *  the tensor input does not match the length of the desired ordering of
 *  dimensions i.e. input.dim() = 3 is not equal to len(dims) = 2" and
 *  "repeated dim in permute" as PyTorch. */
CG_API cg_status cg_tensor_permute(cg_tensor *t, const int64_t *dims, int ndim,
                                   cg_tensor **out);
/** t.transpose(dim0, dim1). */
CG_API cg_status cg_tensor_transpose(cg_tensor *t, int64_t dim0, int64_t dim1,
                                     cg_tensor **out);
/** t.narrow(dim, start, length). */
CG_API cg_status cg_tensor_narrow(cg_tensor *t, int64_t dim, int64_t start,
                                  int64_t length, cg_tensor **out);
/** t[..., start:end:step, ...] on dimension `dim`, with Python's slice
 *  rules (negative start/end count from the end and are clamped; step must
 *  be positive: "slice step must be positive"). Use INT64_MAX for an open
 *  end. */
CG_API cg_status cg_tensor_slice(cg_tensor *t, int64_t dim, int64_t start,
                                 int64_t end, int64_t step, cg_tensor **out);
/** t.select(dim, index) (t[index] for dim 0): removes `dim`. */
CG_API cg_status cg_tensor_select(cg_tensor *t, int64_t dim, int64_t index,
                                  cg_tensor **out);
/** t.expand(shape): size-1 dimensions broadcast (stride 0), -1 keeps a
 *  size, new leading dimensions may be added. */
CG_API cg_status cg_tensor_expand(cg_tensor *t, const int64_t *shape, int ndim,
                                  cg_tensor **out);
/** t.contiguous(): t itself (a new reference) when already contiguous,
 *  else a contiguous copy. */
CG_API cg_status cg_tensor_contiguous(cg_tensor *t, cg_tensor **out);
/** t.clone(): a contiguous copy with its own storage. */
CG_API cg_status cg_tensor_clone(cg_tensor *t, cg_tensor **out);
/** t.to(dtype): t itself when the dtype already matches, else a converted
 *  copy. complex -> real discards the imaginary part (PyTorch warns). */
CG_API cg_status cg_tensor_to(cg_tensor *t, cg_dtype dt, cg_tensor **out);
/** dst.copy_(src): copies src's values (broadcast to dst's shape,
 *  converted to dst's dtype) into dst, in place. */
CG_API cg_status cg_tensor_copy_(cg_tensor *dst, cg_tensor *src);
/** t.fill_(value) / t.zero_(): in place. */
CG_API cg_status cg_tensor_fill_(cg_tensor *t, double value);
CG_API cg_status cg_tensor_zero_(cg_tensor *t);

/* ======================================================================
 * Autograd (torch.autograd)
 * ====================================================================== */

/** A node of the backward graph (t.grad_fn), read-only to users. */
typedef struct cg_node cg_node;

/** torch.is_grad_enabled() for the calling thread (grad mode is
 *  thread-local, as in PyTorch). */
CG_API bool cg_is_grad_enabled(void);
/** torch.set_grad_enabled(enabled); returns the previous mode, so a
 *  no-grad scope reads:
 *      bool prev = cg_set_grad_enabled(false);  // with torch.no_grad():
 *      ...
 *      cg_set_grad_enabled(prev);                                      */
CG_API bool cg_set_grad_enabled(bool enabled);

/** t.requires_grad. */
CG_API bool cg_tensor_requires_grad(const cg_tensor *t);
/** t.requires_grad_(flag). RuntimeError for clearing it on a non-leaf
 *  ("you can only change requires_grad flags of leaf variables. ..."). */
CG_API cg_status cg_tensor_requires_grad_(cg_tensor *t, bool requires_grad);
/** t.is_leaf: no grad_fn. */
CG_API bool cg_tensor_is_leaf(const cg_tensor *t);
/** t.grad, borrowed (NULL when None). Valid until the next backward,
 *  zero_grad or set_grad on t. */
CG_API cg_tensor *cg_tensor_grad(const cg_tensor *t);
/** t.grad = grad (NULL for None); same dtype and shape required
 *  ("assigned grad has data of a different size"). Takes a reference. */
CG_API cg_status cg_tensor_set_grad(cg_tensor *t, cg_tensor *grad);
/** Zeroes t.grad in place, or sets it to None when set_to_none. */
CG_API cg_status cg_tensor_zero_grad(cg_tensor *t, bool set_to_none);
/** t.retain_grad(): a non-leaf keeps its .grad after backward. */
CG_API cg_status cg_tensor_retain_grad(cg_tensor *t);
/** t.retains_grad. */
CG_API bool cg_tensor_retains_grad(const cg_tensor *t);
/** t.detach(): a view sharing storage (and version counter) with t,
 *  without autograd history. */
CG_API cg_status cg_tensor_detach(cg_tensor *t, cg_tensor **out);

/** t.backward(gradient, retain_graph): accumulates d(t)/d(leaf) into the
 *  .grad of every leaf that requires grad. `gradient` may be NULL for a
 *  one-element t. Errors (RuntimeError, PyTorch's words): "element 0 of
 *  tensors does not require grad and does not have a grad_fn", "grad can
 *  be implicitly created only for scalar outputs", "Mismatch in shape:
 *  grad_output[0] has a shape of torch.Size([3]) and output[0] has a shape
 *  of torch.Size([2])."; the "backward through the graph a second time"
 *  message; the in-place modification (version counter) message.
 *  Transactional: on any error no .grad changes and the graph is kept
 *  (except the .grad of leaves with post-accumulate-grad hooks, see
 *  cg_tensor_register_post_accumulate_grad_hook). */
CG_API cg_status cg_tensor_backward(cg_tensor *t, cg_tensor *gradient,
                                    bool retain_graph);

/** t.grad_fn, borrowed (NULL for leaves). */
CG_API const cg_node *cg_tensor_grad_fn(const cg_tensor *t);
/** The node's name as PyTorch prints it: "ConvolutionBackward0",
 *  "AccumulateGrad", ... */
CG_API const char *cg_node_name(const cg_node *n);
/** len(node.next_functions). */
CG_API int cg_node_num_next(const cg_node *n);
/** node.next_functions[i]: the node (NULL for None) and, in *input_nr,
 *  the index that goes with it. */
CG_API const cg_node *cg_node_next(const cg_node *n, int i, int *input_nr);
/** AccumulateGrad's .variable (the leaf), borrowed; NULL for others. */
CG_API const cg_tensor *cg_node_variable(const cg_node *n);
/** Number of tensors the node still holds for backward (0 after a backward
 *  without retain_graph), and the i-th of them, borrowed. */
CG_API int cg_node_num_saved(const cg_node *n);
CG_API const cg_tensor *cg_node_saved(const cg_node *n, int i);
/** Shape of the forward output the node belongs to. */
CG_API const int64_t *cg_node_output_shape(const cg_node *n, int *ndim);

/** Opt-in backward trace: while set, every node the engine runs prints a
 *  line to `f` with the shapes of the gradient it receives and produces.
 *  NULL turns it off. Process-wide. */
CG_API void cg_autograd_set_trace(FILE *f);

/* ---- Post-accumulate-grad hooks -------------------------------------- */

/** A registered hook; cg_hook_handle_remove unregisters and frees it
 *  (PyTorch's RemovableHandle). */
typedef struct cg_hook_handle cg_hook_handle;
/** A post-accumulate-grad hook: called with the leaf after its .grad has
 *  been accumulated, with grad mode off. Returning an error aborts the
 *  backward, which returns that status and message. */
typedef cg_status (*cg_post_accumulate_grad_hook_fn)(cg_tensor *param,
                                                     void *ctx);
/** t.register_post_accumulate_grad_hook(hook) (PyTorch 2.1's API): during
 *  every backward that reaches leaf t, as soon as all gradients for t
 *  have arrived, t.grad is written (first gradient adopted, later ones
 *  added in place) and then fn(t, ctx) runs, on the thread that called
 *  backward, in registration order with t's other hooks. No gradient
 *  reaching t: no call. A leaf with hooks has its .grad written at that
 *  moment, as PyTorch writes every .grad, so a backward that fails later
 *  keeps it (cg_tensor_backward is transactional only for leaves without
 *  hooks). The handle keeps t alive until removed. RuntimeError "cannot
 *  register a hook on a tensor that doesn't require gradient",
 *  "post accumulate grad hooks cannot be registered on non-leaf
 *  tensors". Not thread-safe against a backward running through t. */
CG_API cg_status cg_tensor_register_post_accumulate_grad_hook(
    cg_tensor *t, cg_post_accumulate_grad_hook_fn fn, void *ctx,
    cg_hook_handle **out);
/** handle.remove(): unregisters the hook and frees the handle; NULL-safe.
 *  Must not be called from a hook of the same tensor while it runs. */
CG_API void cg_hook_handle_remove(cg_hook_handle *h);

/* ======================================================================
 * Differentiable ops (torch.* functions). Each records a grad_fn named as
 * in PyTorch 1.13 when grad mode is on and an input requires grad.
 * Binary ops broadcast as PyTorch ("The size of tensor a (3) must match
 * the size of tensor b (4) at non-singleton dimension 1") and promote
 * dtypes (float32 < float64, real < complex: float64 + complex64 gives
 * complex128; a 0-d tensor promotes only across real/complex, as in
 * PyTorch). Results are contiguous (PyTorch keeps a permuted input's
 * layout; the values are the same). A scalar operand is a 0-d "wrapped number":
 * it does not promote a tensor's precision (x_f32 * 2.0 stays float32), and
 * appears as a None edge in next_functions, as PyTorch shows it.
 * ====================================================================== */

/* ---- arithmetic ---- */
/** a + b (AddBackward0). */
CG_API cg_status cg_add(cg_tensor *a, cg_tensor *b, cg_tensor **out);
/** a - b (SubBackward0). */
CG_API cg_status cg_sub(cg_tensor *a, cg_tensor *b, cg_tensor **out);
/** a * b (MulBackward0). */
CG_API cg_status cg_mul(cg_tensor *a, cg_tensor *b, cg_tensor **out);
/** a / b (DivBackward0). */
CG_API cg_status cg_div(cg_tensor *a, cg_tensor *b, cg_tensor **out);
/** a + s, a - s, a * s, a / s with a Python scalar (AddBackward0, ...). */
CG_API cg_status cg_add_scalar(cg_tensor *a, double s, cg_tensor **out);
CG_API cg_status cg_sub_scalar(cg_tensor *a, double s, cg_tensor **out);
CG_API cg_status cg_mul_scalar(cg_tensor *a, double s, cg_tensor **out);
CG_API cg_status cg_div_scalar(cg_tensor *a, double s, cg_tensor **out);
/** a * (re + im j): `1j * x` (MulBackward0); the result is complex. */
CG_API cg_status cg_mul_complex_scalar(cg_tensor *a, double re, double im,
                                       cg_tensor **out);
/** s - a (RsubBackward1). */
CG_API cg_status cg_rsub_scalar(cg_tensor *a, double s, cg_tensor **out);
/** -a (NegBackward0). */
CG_API cg_status cg_neg(cg_tensor *a, cg_tensor **out);
/** a ** exponent (PowBackward0). */
CG_API cg_status cg_pow_scalar(cg_tensor *a, double exponent, cg_tensor **out);
/** exp, log, sqrt (ExpBackward0, LogBackward0, SqrtBackward0). */
CG_API cg_status cg_exp(cg_tensor *a, cg_tensor **out);
CG_API cg_status cg_log(cg_tensor *a, cg_tensor **out);
CG_API cg_status cg_sqrt(cg_tensor *a, cg_tensor **out);
/** |a| (AbsBackward0); real result for complex a. */
CG_API cg_status cg_abs(cg_tensor *a, cg_tensor **out);
/** conj(a) (ConjBackward0; a copy in cgrad, identity for real a). */
CG_API cg_status cg_conj(cg_tensor *a, cg_tensor **out);

/* ---- activations ---- */
/** relu (ReluBackward0). */
CG_API cg_status cg_relu(cg_tensor *a, cg_tensor **out);
/** leaky_relu(a, negative_slope) (LeakyReluBackward0). */
CG_API cg_status cg_leaky_relu(cg_tensor *a, double negative_slope,
                               cg_tensor **out);
/** sigmoid, tanh (SigmoidBackward0, TanhBackward0; both take complex,
 *  as in PyTorch 1.13). relu, leaky_relu and gelu refuse complex tensors
 *  with PyTorch's messages ("clamp is not supported for complex types",
 *  "\"leaky_relu_cpu\" not implemented for 'ComplexFloat'", ...). */
CG_API cg_status cg_sigmoid(cg_tensor *a, cg_tensor **out);
CG_API cg_status cg_tanh(cg_tensor *a, cg_tensor **out);
/** gelu(a, approximate) with approximate "none" or "tanh" (NULL = "none")
 *  (GeluBackward0). */
CG_API cg_status cg_gelu(cg_tensor *a, const char *approximate,
                         cg_tensor **out);
/** softmax / log_softmax along dim (SoftmaxBackward0,
 *  LogSoftmaxBackward0). */
CG_API cg_status cg_softmax(cg_tensor *a, int64_t dim, cg_tensor **out);
CG_API cg_status cg_log_softmax(cg_tensor *a, int64_t dim, cg_tensor **out);

/* ---- reductions ---- */
/** a.sum() (SumBackward0), a 0-d tensor. */
CG_API cg_status cg_sum(cg_tensor *a, cg_tensor **out);
/** a.sum(dims, keepdim) (SumBackward1); a dim may not repeat ("dim 1
 *  appears multiple times in the list of dims"); ndims == 0 reduces every
 *  dim, as PyTorch does for an empty list. Sums are taken in a fixed order
 *  (pairwise within chunks of 256, chunks left to right, in double),
 *  whatever the thread count. */
CG_API cg_status cg_sum_dims(cg_tensor *a, const int64_t *dims, int ndims,
                             bool keepdim, cg_tensor **out);
/** a.mean() (MeanBackward0) and a.mean(dims, keepdim) (MeanBackward1). */
CG_API cg_status cg_mean(cg_tensor *a, cg_tensor **out);
CG_API cg_status cg_mean_dims(cg_tensor *a, const int64_t *dims, int ndims,
                              bool keepdim, cg_tensor **out);

/* ---- linear algebra ---- */
/** torch.matmul(a, b) with PyTorch's 1-D/2-D/batched rules (MmBackward0,
 *  MvBackward0, BmmBackward0, DotBackward0 ... as PyTorch records). */
CG_API cg_status cg_matmul(cg_tensor *a, cg_tensor *b, cg_tensor **out);
/** a.mm(b): 2-D only (MmBackward0). */
CG_API cg_status cg_mm(cg_tensor *a, cg_tensor *b, cg_tensor **out);
/** a.bmm(b): 3-D only (BmmBackward0). */
CG_API cg_status cg_bmm(cg_tensor *a, cg_tensor *b, cg_tensor **out);
/** a.t(): transpose of a tensor of at most 2 dims (TBackward0). */
CG_API cg_status cg_tensor_t(cg_tensor *a, cg_tensor **out);

/* ---- joining ---- */
/** torch.cat(tensors, dim) (CatBackward0); dtypes promote as in PyTorch
 *  and legacy 1-D empty tensors are skipped. */
CG_API cg_status cg_cat(cg_tensor *const *tensors, int n, int64_t dim,
                        cg_tensor **out);

/* ---- complex ---- */
/** torch.view_as_real(a): a complex tensor as a real one with a trailing
 *  dimension of 2, sharing storage (ViewAsRealBackward0). */
CG_API cg_status cg_view_as_real(cg_tensor *a, cg_tensor **out);
/** a.real, a.imag: views of a complex tensor (SelectBackward0 over
 *  ViewAsRealBackward0, as PyTorch 1.13 records them). a.real of a real
 *  tensor is a itself (a new reference); a.imag of one is an error as in
 *  PyTorch ("imag is not implemented for tensors with non-complex
 *  dtypes."). */
CG_API cg_status cg_real(cg_tensor *a, cg_tensor **out);
CG_API cg_status cg_imag(cg_tensor *a, cg_tensor **out);
/** torch.complex(re, im) (ComplexBackward0). */
CG_API cg_status cg_complex(cg_tensor *re, cg_tensor *im, cg_tensor **out);

/* ======================================================================
 * Convolutions (torch.nn.functional.conv_transpose3d / conv3d)
 * ====================================================================== */

/** A size argument as Python passes it: PyTorch's `_triple` turns an int v
 *  into (v, v, v) and keeps a sequence as given, of any length (a wrong
 *  length is only an error at forward time, with PyTorch's message). */
typedef struct cg_ints {
    int n; /* number of entries, 0..8 */
    int64_t v[8];
} cg_ints;

/** An int argument: (v, v, v). */
#define CG_INT3(x) ((cg_ints){3, {(x), (x), (x)}})
/** A triple (d, h, w). */
#define CG_TRIPLE(d, h, w) ((cg_ints){3, {(d), (h), (w)}})
/** A list of any length: CG_INTS(2, 1, 1) is the Python list [1, 1]. */
#define CG_INTS(count, ...) ((cg_ints){(count), {__VA_ARGS__}})

/** F.conv_transpose3d(input, weight, bias, stride, padding,
 *  output_padding, groups, dilation). input (N, Cin, D, H, W) or unbatched
 *  (Cin, D, H, W); weight (Cin, Cout/groups, kD, kH, kW); bias (Cout) or
 *  NULL. Output (N, Cout, Do, Ho, Wo) with, per axis,
 *    out = (in - 1)*stride - 2*padding + dilation*(k - 1) + output_padding + 1.
 *  Records ConvolutionBackward0 (batched) or SqueezeBackward1 ->
 *  ConvolutionBackward0 -> UnsqueezeBackward0 (unbatched). Complex inputs
 *  go through three real convolutions (PyTorch 2.x's Gauss trick) ending
 *  in AddBackward0 (input, weight and bias must then share the complex
 *  dtype: "expected scalar type ComplexFloat but found Float"). Checks and
 *  messages are PyTorch 1.13's (rows F4-F20 of CONV_TRANSPOSE3D.md); a
 *  zero batch returns an empty result that still records its node; a size
 *  computation overflowing int64 is a RuntimeError (PyTorch wraps), and a
 *  cg_ints with n outside 0..8 is CG_ERR_MISUSE. */
CG_API cg_status cg_conv_transpose3d(cg_tensor *input, cg_tensor *weight,
                                     cg_tensor *bias, cg_ints stride,
                                     cg_ints padding, cg_ints output_padding,
                                     int64_t groups, cg_ints dilation,
                                     cg_tensor **out);
/** F.conv3d(input, weight, bias, stride, padding, dilation, groups):
 *  input (N, Cin, D, H, W) or (Cin, D, H, W); weight (Cout, Cin/groups,
 *  kD, kH, kW). The adjoint of conv_transpose3d. ConvolutionBackward0
 *  (complex: three real convolutions ending in AddBackward0). Messages are
 *  those of PyTorch 1.13's native (non-oneDNN) conv3d kernel, which
 *  PyTorch itself prints for float64; a real input converts a bias of the
 *  other real dtype, as that kernel does. */
CG_API cg_status cg_conv3d(cg_tensor *input, cg_tensor *weight, cg_tensor *bias,
                           cg_ints stride, cg_ints padding, cg_ints dilation,
                           int64_t groups, cg_tensor **out);

/* ---- issue 7 (layers helper): F.linear and F.dropout ---------------- */

/** F.linear(input, weight, bias): y = input @ weight^T + bias. input
 *  (*, in_features), weight (out_features, in_features), bias
 *  (out_features) or NULL. Composed exactly as PyTorch 1.13's at::linear,
 *  so the recorded chain is PyTorch's: 2-D input with bias is one
 *  addmm(bias, input, weight.t()) (AddmmBackward0 over TBackward0); a
 *  contiguous 3-D input with bias is view(-1, in) -> addmm -> view
 *  (ViewBackward0 over AddmmBackward0 over ViewBackward0); otherwise
 *  matmul(input, weight.t()) (MmBackward0, SqueezeBackward3,
 *  UnsafeViewBackward0 ... as matmul records) followed, with a bias, by
 *  AddBackward0. Messages are PyTorch's ("mat1 and mat2 shapes cannot be
 *  multiplied (2x4 and 3x5)", ...). */
CG_API cg_status cg_linear(cg_tensor *input, cg_tensor *weight, cg_tensor *bias,
                           cg_tensor **out);
/** torch.addmm(self, mat1, mat2): self (broadcastable to (n, p)) +
 *  mat1 (n, m) @ mat2 (m, p), beta = alpha = 1 (AddmmBackward0). */
CG_API cg_status cg_addmm(cg_tensor *self, cg_tensor *mat1, cg_tensor *mat2,
                          cg_tensor **out);
/** F.dropout(input, p, training) on the CPU, as PyTorch 1.13 computes it:
 *  ValueError "dropout probability has to be between 0 and 1, but got
 *  1.5" unless 0 <= p <= 1; when !training, p == 0 or input is empty, the
 *  result is input itself (a new reference); p == 1 gives input * 0;
 *  otherwise noise = bernoulli(1 - p) drawn from `gen` (NULL: the default
 *  generator) -- per element in row-major order, one random64() whose low
 *  53 bits times 2**-53 are compared with 1 - p, bit for bit as PyTorch's
 *  non-MKL CPU kernel -- divided by (1 - p) in the input's dtype, and the
 *  result is input * noise (MulBackward0, second edge None). Real dtypes
 *  only ("dropout: cgrad supports float32 and float64" otherwise). */
CG_API cg_status cg_dropout(cg_tensor *input, double p, bool training,
                            cg_generator *gen, cg_tensor **out);
/** Python's repr(float) of v into buf, snprintf-style ("0.01", "1e-05",
 *  "2.0", "-inf", "nan"): the shortest text that reads back as v. Returns
 *  the full length. Used for PyTorch's messages and module reprs. */
CG_API size_t cg_format_float(double v, char *buf, size_t size);
/* ---- end issue 7 (layers helper) ------------------------------------ */

/* ---- issue 7 (spatial helper): batch_norm, pooling, upsampling ------ */

/** F.batch_norm(input, running_mean, running_var, weight, bias, training,
 *  momentum, eps): input (N, C, *); the four others have C elements or
 *  are NULL (None). training: per-channel batch statistics normalise, and
 *  running_mean / running_var (when given) are updated in place:
 *  r = momentum * stat + (1 - momentum) * r, with the unbiased variance
 *  for running_var. Otherwise the running statistics normalise (both
 *  required). y = (x - mean) / sqrt(var + eps) * weight + bias,
 *  NativeBatchNormBackward0 with edges (input, weight, bias). An empty
 *  input gives input.clone() * weight[0] + bias[0], as PyTorch. Errors in
 *  PyTorch's order and words: ValueError "Expected more than 1 value per
 *  channel when training, got input size torch.Size([1, 3])", RuntimeError
 *  "running_mean should contain 4 elements not 3" (also running_var,
 *  weight, bias), "running_mean must be defined in evaluation mode", the
 *  mixed-dtype and complex messages of batch_norm_cpu. On error nothing
 *  changes, the running statistics included. */
CG_API cg_status cg_batch_norm(cg_tensor *input, cg_tensor *running_mean,
                               cg_tensor *running_var, cg_tensor *weight,
                               cg_tensor *bias, bool training, double momentum,
                               double eps, cg_tensor **out);

/** F.max_pool3d(input, kernel_size, stride, padding, dilation, ceil_mode):
 *  input (N, C, T, H, W) or unbatched (C, T, H, W). kernel_size, padding
 *  and dilation have 1 or 3 entries, stride 0 (None: kernel_size), 1 or
 *  3. Per axis out = floor((in + 2p - d(k-1) - 1 [+ s-1 in ceil mode]) / s)
 *  + 1 (ceil mode: minus 1 when the last window would start past in + p).
 *  y = max over the window (NaN propagates, the first maximum wins a tie),
 *  MaxPool3DWithIndicesBackward0 (the argmax indices stay in the node:
 *  return_indices is not offered). PyTorch 1.13's checks and messages
 *  ("max_pool3d: kernel_size must either be a single int, or a tuple of
 *  three ints", "stride should not be zero", "pad should be at most half
 *  of kernel size, but got pad=2 and kernel_size=2", "Given input size:
 *  (3x4x4x4). Calculated output size: (3x0x0x0). Output size is too
 *  small", ...). float32 and float64. */
CG_API cg_status cg_max_pool3d(cg_tensor *input, cg_ints kernel_size,
                               cg_ints stride, cg_ints padding,
                               cg_ints dilation, bool ceil_mode,
                               cg_tensor **out);
/** F.avg_pool3d(input, kernel_size, stride, padding, ceil_mode,
 *  count_include_pad, divisor_override): as cg_max_pool3d without
 *  dilation; y = window sum / divisor, the divisor being
 *  *divisor_override when given (NULL: None; 0 is "divisor must be not
 *  zero"), else the window volume with padding (count_include_pad) or
 *  without. The override is used as the int64 given, as avg_pool2d uses
 *  it; PyTorch 1.13's avg_pool3d truncates it to 32 bits (2**40 becomes
 *  0 and gives inf, 2**31 turns negative). AvgPool3DBackward0. PyTorch
 *  1.13's messages ("input image (T: 4 H: 4 W: 4) smaller than kernel
 *  size (kT: 5 kH: 5 kW: 5)", ...). */
CG_API cg_status cg_avg_pool3d(cg_tensor *input, cg_ints kernel_size,
                               cg_ints stride, cg_ints padding, bool ceil_mode,
                               bool count_include_pad,
                               const int64_t *divisor_override,
                               cg_tensor **out);

/** torch._C._nn.upsample_nearest{1,2,3}d(input, output_size,
 *  scale_factors), what F.interpolate(mode='nearest') calls: input (N, C,
 *  *in) with n = input.dim() - 2 spatial axes (1 to 3); exactly one of
 *  output_size / scale_factors (n entries each) is non-NULL. With scale
 *  factors out = int64(in * scale), and the source index of output o is
 *  PyTorch's nearest_idx: o (out == in), o >> 1 (out == 2 in), else
 *  min(floorf(o * r), in - 1) with r = (float)(1 / scale) or
 *  (float)in / out. UpsampleNearest{1,2,3}DBackward1. Errors with
 *  PyTorch's messages ("Input and output sizes should be greater than 0,
 *  but got input (D: 4, H: 4, W: 4) output (D: 0, H: 0, W: 0)",
 *  "Non-empty 5D data tensor expected but got a tensor with sizes [...]",
 *  the NotImplementedError of F.interpolate for another rank);
 *  CG_ERR_MISUSE when n is not input.dim() - 2. float32 and float64. */
CG_API cg_status cg_upsample_nearest(cg_tensor *input,
                                     const int64_t *output_size,
                                     const double *scale_factors, int n,
                                     cg_tensor **out);
/* ---- end issue 7 (spatial helper) ----------------------------------- */

/* ---- issue 7 (losses helper): torch.nn.functional losses ------------ */

/* Every loss takes `reduction` as PyTorch does: "none", "mean" or "sum"
 * (NULL is the default "mean"; "elementwise_mean" is accepted as "mean",
 * as 1.13 does after a deprecation warning), any other string a
 * ValueError "bad is not a valid value for reduction". 'none' keeps one
 * loss per element, 'mean' and 'sum' give a 0-d tensor. The grad_fn
 * chains are PyTorch 1.13's node for node. */

/** F.mse_loss(input, target, reduction): (input - target)^2. The two
 *  broadcast as torch.broadcast_tensors does (an operand that grows gets
 *  an ExpandBackward0; PyTorch's UserWarning is not emitted), else
 *  RuntimeError "The size of tensor a (3) must match the size of tensor b
 *  (4) at non-singleton dimension 1". MseLossBackward0 with edges (input,
 *  target): both are differentiated. Real dtypes ("\"mse_cpu\" not
 *  implemented for 'ComplexFloat'"). */
CG_API cg_status cg_mse_loss(cg_tensor *input, cg_tensor *target,
                             const char *reduction, cg_tensor **out);
/** F.l1_loss(input, target, reduction): |input - target|, broadcast as
 *  cg_mse_loss; recorded as 1.13 composes it: AbsBackward0 over
 *  SubBackward0, then MeanBackward0 / SumBackward0. */
CG_API cg_status cg_l1_loss(cg_tensor *input, cg_tensor *target,
                            const char *reduction, cg_tensor **out);
/** F.binary_cross_entropy_with_logits(input, target, weight, reduction,
 *  pos_weight): l = -w [pw t log sigmoid(x) + (1 - t) log(1 - sigmoid(x))],
 *  computed stably. target must have input's shape (ValueError "Target
 *  size (torch.Size([2])) must be the same as input size
 *  (torch.Size([3]))"); weight (NULL: None) and pos_weight (NULL: None,
 *  e.g. shape (C) for input (N, C)) broadcast to input's shape without
 *  growing it, with PyTorch's messages. The reduction is checked first.
 *  BinaryCrossEntropyWithLogitsBackward0 with edges (input, target):
 *  both are differentiated, weight and pos_weight are not. */
CG_API cg_status cg_binary_cross_entropy_with_logits(
    cg_tensor *input, cg_tensor *target, cg_tensor *weight,
    cg_tensor *pos_weight, const char *reduction, cg_tensor **out);
/** F.nll_loss(input, target, weight, ignore_index, reduction): input of
 *  log-probabilities (C), (N, C) or (N, C, d1, ...); target of class
 *  indices (see cg_cross_entropy: a floating tensor of whole numbers)
 *  shaped (), (N) or (N, d1, ...); weight (C) or NULL. l = -w[t] x[t];
 *  'mean' divides by the sum of w[t] over targets that are not
 *  ignore_index (nan when there are none). NllLossBackward0 (1-D, 2-D
 *  input), NllLoss2DBackward0 (4-D), ViewBackward0 around
 *  NllLoss2DBackward0 (3-D, 5-D+), as nll_loss_nd records. Messages of
 *  1.13 ("Expected input batch_size (3) to match target batch_size (2).",
 *  "Target 5 is out of bounds." (IndexError), "weight tensor should be
 *  defined either for all 4 classes or no classes but got weight tensor
 *  of shape: [3]", ...). A weight of another dtype than input is
 *  PyTorch's "expected scalar type Float but found Double". */
CG_API cg_status cg_nll_loss(cg_tensor *input, cg_tensor *target,
                             cg_tensor *weight, int64_t ignore_index,
                             const char *reduction, cg_tensor **out);
/** F.cross_entropy(input, target, weight, ignore_index, reduction,
 *  label_smoothing) (PyTorch's defaults: weight NULL, ignore_index -100,
 *  reduction "mean", label_smoothing 0.0). input (C), (N, C) or (N, C,
 *  d1, ...), the class dimension being 1 (0 for a 1-D input).
 *
 *  Targets: cgrad has no integer dtype, so CLASS INDICES are passed as a
 *  floating tensor holding whole numbers, shaped as the input without the
 *  class dimension: (N), (N, d1, ...), or () for an unbatched (C) input.
 *  A target with the SAME SHAPE as the input holds CLASS PROBABILITIES.
 *  PyTorch 1.13 tells the two apart by shape first as well, so the
 *  shapes never collide. An index equal to ignore_index is skipped; any
 *  other index that is not a whole number is a ValueError "Target 1.5 is
 *  not a class index: class-index targets must hold whole numbers"; one
 *  outside [0, C) is PyTorch's IndexError "Target 5 is out of bounds.".
 *
 *  Indices: NllLossBackward0 over LogSoftmaxBackward0 (see cg_nll_loss);
 *  with 0 < label_smoothing <= 1 the composite of 1.13
 *  ((1 - ls) * nll + ls / C * smoothing term; AddBackward0 over
 *  MulBackward1 ...). Probabilities: -(log_softmax(x) * t [* w]) summed
 *  over the class dimension ('none'), or over all and divided by numel/C
 *  ('mean', DivBackward1); the target is differentiated. ignore_index
 *  >= 0 with probabilities is "ignore_index is not supported for
 *  floating point target"; label_smoothing > 1 is "label_smoothing must
 *  be between 0.0 and 1.0. Got: 1.5" (a negative one is ignored, as in
 *  PyTorch). Other messages as PyTorch's, in its order. */
CG_API cg_status cg_cross_entropy(cg_tensor *input, cg_tensor *target,
                                  cg_tensor *weight, int64_t ignore_index,
                                  const char *reduction, double label_smoothing,
                                  cg_tensor **out);
/* ---- end issue 7 (losses helper) ------------------------------------ */

/* ======================================================================
 * Gradient checking (torch.autograd.gradcheck) and seeing the graph
 * ====================================================================== */

/** The function under test: computes *out from inputs[0..n). It must be
 *  deterministic and release everything it makes but *out. */
typedef cg_status (*cg_gradcheck_fn)(cg_tensor *const *inputs, int n,
                                     cg_tensor **out, void *user);

/** Tolerances, as torch.autograd.gradcheck's defaults. */
typedef struct cg_gradcheck_options {
    double eps;  /* finite-difference step, 1e-6 */
    double atol; /* 1e-5 */
    double rtol; /* 1e-3 */
} cg_gradcheck_options;

/** {eps 1e-6, atol 1e-5, rtol 1e-3}. */
CG_API cg_gradcheck_options cg_gradcheck_defaults(void);

/** What gradcheck found: the worst Jacobian entry (largest
 *  |analytic - numeric| - atol - rtol*|numeric|). */
typedef struct cg_gradcheck_result {
    bool passed;
    int input;            /* which input the worst entry belongs to */
    int64_t input_index;  /* flat (row-major) element of that input */
    int64_t output_index; /* flat element of the output */
    bool imag_part;       /* complex: the entry of the imaginary part */
    double numeric, analytic;
    char message[512]; /* PyTorch-style "Jacobian mismatch ..." text */
} cg_gradcheck_result;

/** torch.autograd.gradcheck: compares, for every input that requires
 *  grad (float64 or complex128), the analytic Jacobian (one backward per
 *  output element, vector-Jacobian products) with central finite
 *  differences. Complex inputs and outputs are checked the Wirtinger way
 *  PyTorch's gradcheck uses (real and imaginary perturbations, and the
 *  real and imaginary parts of the output separately). `opts` may be
 *  NULL for the defaults. Returns CG_OK when the check ran (the verdict
 *  is in res->passed); a failure status when f itself failed or the
 *  inputs are unusable (not float64/complex128: PyTorch's warning becomes
 *  a ValueError here). Inputs are restored exactly. */
CG_API cg_status cg_gradcheck(cg_gradcheck_fn f, void *user,
                              cg_tensor *const *inputs, int n,
                              const cg_gradcheck_options *opts,
                              cg_gradcheck_result *res);

/** Marks t as an nn.Parameter (printing then starts with "Parameter
 *  containing:"); nn modules do this for their weights. */
CG_API cg_status cg_tensor_set_parameter(cg_tensor *t, bool is_parameter);
/** True for a tensor marked as a parameter. */
CG_API bool cg_tensor_is_parameter(const cg_tensor *t);

/** Gives t a name shown by the graph printers ("weight", "bias", ...;
 *  copied, at most 63 bytes kept). NULL clears it. */
CG_API cg_status cg_tensor_set_name(cg_tensor *t, const char *name);
/** The name given with cg_tensor_set_name, or NULL. */
CG_API const char *cg_tensor_name(const cg_tensor *t);

/** Prints t's backward graph as an indented tree, one node per line, with
 *  each node's output shape and saved tensors, e.g.
 *      SqueezeBackward1 [3, 1, 1, 6]
 *      └─ ConvolutionBackward0 [1, 3, 1, 1, 6] saved: input [1, 1, 1, 1, 6],
 * ... ├─ None ├─ AccumulateGrad (weight [1, 3, 1, 1, 1]) └─ AccumulateGrad
 * (bias [3]) A node reached twice is printed once and then referred to. */
CG_API cg_status cg_graph_print(const cg_tensor *t, FILE *f);
/** Writes t's backward graph as a Graphviz DOT digraph to f. */
CG_API cg_status cg_graph_write_dot(const cg_tensor *t, FILE *f);

/* ======================================================================
 * Threads (torch.set_num_threads)
 * ====================================================================== */

/** torch.set_num_threads(n): the number of threads kernels use (the
 *  calling thread included). The default is CGRAD_NUM_THREADS from the
 *  environment, else the number of online cores. Results are bitwise
 *  identical whatever the count. RuntimeError "set_num_threads expects a
 *  positive integer" for n <= 0. Waits for a running parallel loop. */
CG_API cg_status cg_set_num_threads(int n);
/** torch.get_num_threads(). */
CG_API int cg_get_num_threads(void);

/** torch.backends.cpu.get_cpu_capability(): the instruction set cgrad's
 *  kernels use on this CPU, "AVX512", "AVX2" (with FMA) or "DEFAULT" (the
 *  portable C paths). CGRAD_SIMD=off|avx2|avx512 in the environment
 *  lowers it (as ATEN_CPU_CAPABILITY does PyTorch's); it never rises above
 *  what the CPU has. Code of one's own can pick its paths by it, as the
 *  optimizers do. */
CG_API const char *cg_get_cpu_capability(void);

/** A loop body for cg_parallel_for: indices [begin, end). */
typedef void (*cg_parallel_body)(void *ctx, int64_t begin, int64_t end);

/** at::parallel_for(begin, end, grain_size, f) for C code of one's own (a
 *  custom op, an optimizer): calls fn over [begin, end) on cgrad's thread
 *  pool, in ranges of `grain` indices cut from `begin` on (the last one
 *  shorter) -- the cut depends only on the arguments, never on the thread
 *  count; each range is handed to one call, on some thread, exactly once.
 *  Runs everything in one call on the calling thread when the loop has a
 *  single range, with one thread, or when called from inside another
 *  parallel loop (nested loops run serially, as PyTorch's do). fn must
 *  not fail; it may read anything and write what its ranges own.
 *  Returns when every range is done. TypeError (CG_ERR_MISUSE) for a NULL
 *  fn, RuntimeError for grain < 1; begin >= end does nothing. */
CG_API cg_status cg_parallel_for(int64_t begin, int64_t end, int64_t grain,
                                 cg_parallel_body fn, void *ctx);

/* ======================================================================
 * Random numbers (bit-exact with PyTorch 1.13 on x86-64 CPUs)
 * ====================================================================== */

/** torch.manual_seed(seed) on the default generator. The seed is taken
 *  modulo 2**64 (a negative int64 wraps, as in PyTorch) and the engine
 *  uses its low 32 bits. Also clears the cached normal sample. */
CG_API void cg_manual_seed(uint64_t seed);
/** torch.initial_seed(): the seed last given to the default generator.
 *  Before any cg_manual_seed it is 67280421310721 (the seed of a fresh
 *  torch.Generator()): unlike PyTorch, whose default generator starts from
 *  a random seed in each process, cgrad is deterministic from the start. */
CG_API uint64_t cg_initial_seed(void);
/** The default generator (torch.default_generator), borrowed; it lives
 *  for the whole process. Generators lock internally, so one generator may
 *  be shared by threads (the order of draws is then theirs to decide). */
CG_API cg_generator *cg_default_generator(void);

/* In the cg_generator_* functions below, a NULL generator means the
 * default generator. */

/** torch.Generator().manual_seed(seed). */
CG_API cg_status cg_generator_new(uint64_t seed, cg_generator **out);
CG_API void cg_generator_free(cg_generator *g);
/** g.manual_seed(seed). */
CG_API void cg_generator_manual_seed(cg_generator *g, uint64_t seed);
/** g.initial_seed(). */
CG_API uint64_t cg_generator_initial_seed(const cg_generator *g);
/** One 32-bit MT19937 output (the generator's random()). */
CG_API uint32_t cg_generator_random(cg_generator *g);
/** random64(): two outputs, the first is the high word. */
CG_API uint64_t cg_generator_random64(cg_generator *g);

/** t.uniform_(from, to, generator=g), g NULL for the default generator.
 *  Complex tensors draw their real and imaginary parts as two elements.
 *  Elements are filled in PyTorch's order: memory order, dimensions sorted
 *  by stride (a transposed tensor gets the same memory as a contiguous
 *  one). Errors, in PyTorch's order and words (RuntimeError): a leaf that
 *  requires grad ("a leaf Variable that requires grad is being used in an
 *  in-place operation."), "from is out of bounds for float" (or double;
 *  also for `to`), "uniform_ expects to return a [from, to) range, but
 *  found from=2 > to=1", "uniform_ expects to-from <= ...max()", and an
 *  expanded tensor ("unsupported operation: more than one element of the
 *  written-to tensor refers to a single memory location. ..."). On error
 *  neither t nor the generator changes. */
CG_API cg_status cg_tensor_uniform_(cg_tensor *t, double from, double to,
                                    cg_generator *g);
/** t.normal_(mean, std, generator=g). RuntimeError "normal expects std >=
 *  0.0, but found std -1" when std < 0 (and the leaf / overlap errors of
 *  cg_tensor_uniform_). Complex: normal_ of the real view with
 *  std/sqrt(2). Contiguous tensors of 16 or more elements take PyTorch's
 *  vectorised paths (bit-exact with its AVX2 build), others the scalar
 *  Box-Muller path with the generator's cached sample. */
CG_API cg_status cg_tensor_normal_(cg_tensor *t, double mean, double std,
                                   cg_generator *g);
/** torch.rand(shape, dtype=dt, generator=g). */
CG_API cg_status cg_rand(const int64_t *shape, int ndim, cg_dtype dt,
                         cg_generator *g, cg_tensor **out);
/** torch.randn(shape, dtype=dt, generator=g). */
CG_API cg_status cg_randn(const int64_t *shape, int ndim, cg_dtype dt,
                          cg_generator *g, cg_tensor **out);

/* ======================================================================
 * Printing (byte-exact with PyTorch's repr(tensor), default options)
 * ====================================================================== */

/** Writes repr(t) followed by a newline to `f` (print(t) in Python).
 *  Parameters print "Parameter containing:\n" first. Errors: CG_ERR_MISUSE
 *  (t or f NULL), CG_ERR_NOMEM (nothing written), CG_ERR_IO (the stream
 *  refused the write; part of the text may have reached it). */
CG_API cg_status cg_tensor_print(const cg_tensor *t, FILE *f);
/** repr(t) into `buf` (no trailing newline), snprintf-style: at most
 *  size-1 characters plus a NUL are written; *len (if not NULL) gets the
 *  full length, so a caller can size a buffer with (NULL, 0, &len).
 *  Errors: CG_ERR_MISUSE (t NULL, or buf NULL with size > 0), CG_ERR_NOMEM
 *  (nothing written to buf or *len). */
CG_API cg_status cg_tensor_repr(const cg_tensor *t, char *buf, size_t size,
                                size_t *len);

/* ======================================================================
 * NumPy .npy interchange
 * ====================================================================== */

/** Reads a .npy file (format 1.0/2.0/3.0, little-endian '<f4', '<f8',
 *  '<c8', '<c16', C order) into a new contiguous tensor. Anything else
 *  (other dtypes, big-endian, Fortran order, truncated or malformed
 *  header or data, bytes after the data, a header over 65535 bytes) is a
 *  ValueError "cannot load '<path>': <problem>"; an unreadable file is an
 *  OSError worded as Python's ("[Errno 2] No such file or directory:
 *  'x.npy'"). The file size is checked before anything is allocated. */
CG_API cg_status cg_load_npy(const char *path, cg_tensor **out);
/** Writes `t` (any strides) as a version 1.0 .npy file in C order, byte
 *  for byte as numpy 1.24's np.save. The path is used as given (no ".npy"
 *  is added). OSError when the file cannot be written (a partial file may
 *  remain, as with numpy); CG_ERR_MISUSE for NULL arguments. */
CG_API cg_status cg_save_npy(const cg_tensor *t, const char *path);

#ifdef __cplusplus
}
#endif

#endif /* CGRAD_H */
