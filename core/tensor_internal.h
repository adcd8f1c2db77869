/*
 * tensor_internal.h -- the private layout of tensors and storage, the
 * error and allocation helpers every core file uses. Never installed.
 */
#ifndef CGRAD_TENSOR_INTERNAL_H
#define CGRAD_TENSOR_INTERNAL_H

#include "cgrad.h"

#include <stdarg.h>
#include <stdatomic.h>

/* ---- errors (error.c) ------------------------------------------------ */

/** Sets the thread's last error to `st` and the printf-formatted message;
 *  returns `st`, so a check reads `return cg__error(CG_ERR_VALUE, ...)`. */
cg_status cg__error(cg_status st, const char *fmt, ...)
#if defined(__GNUC__)
    __attribute__((format(printf, 2, 3)))
#endif
    ;
/** The out-of-memory error for a request of `bytes` bytes, in PyTorch's
 *  words ("DefaultCPUAllocator: can't allocate memory: you tried to
 *  allocate 96 bytes."). */
cg_status cg__error_nomem(size_t bytes);
/** CG_ERR_MISUSE for a NULL argument: "<what> must not be NULL". */
cg_status cg__error_null(const char *what);

/* ---- allocation (alloc.c): every allocation goes through these ------- */

void *cg__malloc(size_t size);
void *cg__calloc(size_t n, size_t size); /* zeroed, overflow-checked */
void *cg__realloc(void *p, size_t size);
void cg__free(void *p);
/** Tensor storage: like cg__malloc / cg__free, but with the C library's
 *  allocator installed, freed blocks of 64 KiB and more are kept (up to
 *  64 blocks and 256 MiB in all, the oldest evicted first) and handed out
 *  again for a request of the same size in whole pages.
 *  A training step allocates the same large buffers every time; without
 *  the cache glibc returns them to the system and each step pays the page
 *  faults again (3x the time of a small 3-D model's step). Installing an
 *  allocator empties the cache, and the cache is bypassed while a user
 *  allocator is installed. `size` must be the size the block was
 *  allocated with. */
void *cg__storage_alloc(size_t size);
/** A transient buffer through the storage cache (kernels' and losses'
 *  working arrays): like cg__malloc / cg__calloc / cg__free, but a large
 *  buffer freed is handed out again to the next request of its size
 *  instead of going back to the system, which would fault its pages in
 *  again on every call. NULL on failure; cg__buffer_free is NULL-safe. */
void *cg__buffer_alloc(size_t size);
void *cg__buffer_calloc(size_t n, size_t size);
void cg__buffer_free(void *p);
/** The contiguous real tensor t (new, not shared) filled with
 *  bernoulli(q) draws scaled by `value`: t[i] = u_i < q ? value : 0, u_i
 *  the generator's uniform doubles (53 bits of one 64-bit draw) in order,
 *  all under one hold of the generator's lock (PyTorch 1.13's CPU
 *  bernoulli_(q) without MKL, then the scale). */
cg_status cg__bernoulli_fill(cg_tensor *t, double q, double value,
                             cg_generator *g);
void cg__storage_free(void *p, size_t size);
/** a*b and a+b on non-negative int64 values, false on overflow. */
bool cg__mul_overflow(int64_t a, int64_t b, int64_t *out);
bool cg__add_overflow(int64_t a, int64_t b, int64_t *out);

/* ---- dtypes (dtype.c) ------------------------------------------------ */

/** PyTorch's C++ scalar type name, as in its messages: "Float",
 *  "Double", "ComplexFloat", "ComplexDouble". */
const char *cg__dtype_scalar_name(cg_dtype dt);
bool cg__dtype_valid(cg_dtype dt);
/** CG_ERR_VALUE "invalid dtype 7" when dt is not a cg_dtype. */
cg_status cg__check_dtype(cg_dtype dt);

/* ---- storage --------------------------------------------------------- */

#define CG_STORAGE_ALIGN 64

typedef struct cg_storage {
    atomic_long refs;
    void *data; /* CG_STORAGE_ALIGN-aligned, nbytes long */
    void *raw;  /* what the allocator returned (data lies inside) */
    size_t nbytes;
    atomic_ulong version; /* bumped by every in-place write through any
                             view: autograd's version counter */
} cg_storage;

/* ---- tensors --------------------------------------------------------- */

struct cg_node;

struct cg_tensor {
    atomic_long refs;
    cg_dtype dtype;
    int ndim;
    int64_t shape[CG_MAX_DIMS];   /* sizes, outermost first */
    int64_t strides[CG_MAX_DIMS]; /* in elements */
    int64_t offset;               /* first element, in elements */
    cg_storage *storage;

    /* autograd state (autograd.c) */
    bool requires_grad;      /* leaf: user flag; non-leaf: has grad_fn */
    bool retains_grad;       /* non-leaf asked to keep .grad */
    bool is_parameter;       /* nn.Parameter: prints "Parameter containing:" */
    cg_tensor *grad;         /* owned, or NULL */
    struct cg_node *grad_fn; /* owned reference, NULL for leaves */
    int output_nr;           /* which output of grad_fn this is */
    struct cg_node *grad_accumulator; /* weak: a leaf's AccumulateGrad */
    const char *debug_grad_fn_name;   /* tests only: print suffix override */
    char name[64]; /* cg_tensor_set_name, for the graph printers */
};

/** Allocates a tensor header with the given shape over `storage` (a new
 *  reference is taken), contiguous strides unless `strides` is given.
 *  RuntimeError "numel: integer multiplication overflow" when the sizes
 *  multiplied in order overflow int64 (PyTorch's refresh_numel check:
 *  [0, 2**40, 2**40] is a tensor, [2**40, 2**40, 0] is not). */
cg_status cg__tensor_make(cg_storage *storage, cg_dtype dt,
                          const int64_t *shape, const int64_t *strides,
                          int ndim, int64_t offset, cg_tensor **out);
/** The checks cg__tensor_new makes of a shape (ndim range, negative
 *  sizes, element count overflow), with its messages, allocating nothing;
 *  the element count in *numel. For an op that must reject an output
 *  shape before it computes anything else from it. */
cg_status cg__check_new_shape(const int64_t *shape, int ndim, int64_t *numel);
/** A new contiguous tensor with fresh zeroed storage. Checks the shape
 *  (negative sizes, ndim range, overflow) with PyTorch's messages. */
cg_status cg__tensor_new(const int64_t *shape, int ndim, cg_dtype dt,
                         cg_tensor **out);
/** The same without zeroing the storage: only for a result that a kernel
 *  then writes whole (zeroing a large output the kernel overwrites costs
 *  as much as a fast kernel's pass over it). */
cg_status cg__tensor_new_uninit(const int64_t *shape, int ndim, cg_dtype dt,
                                cg_tensor **out);
/** A new tensor viewing t's storage with another geometry (a view). */
cg_status cg__tensor_view_of(const cg_tensor *t, const int64_t *shape,
                             const int64_t *strides, int ndim, int64_t offset,
                             cg_tensor **out);
/** RuntimeError "cgrad tensors have at most 16 dimensions, but got 17"
 *  unless 0 <= ndim <= CG_MAX_DIMS. */
cg_status cg__check_ndim(int ndim);
/** cg__check_ndim, and a NULL shape with ndim > 0 (CG_ERR_MISUSE). */
cg_status cg__check_shape_arg(const int64_t *shape, int ndim);
/** Number of elements of a shape; false on overflow or negative size. */
bool cg__shape_numel(const int64_t *shape, int ndim, int64_t *out);
/** Contiguous (row-major) strides of a shape. */
void cg__contiguous_strides(const int64_t *shape, int ndim, int64_t *strides);
/** Wraps a possibly negative dim into [0, ndim) (ndim 0 is treated as 1,
 *  as PyTorch does); IndexError with PyTorch's message otherwise. */
cg_status cg__wrap_dim(int64_t dim, int ndim, int64_t *out);
/** Formats a shape as PyTorch prints a list: "[2, 3, 4]". Returns buf. */
char *cg__format_shape(const int64_t *shape, int ndim, char *buf, size_t size);
/** Element size in bytes. */
static inline size_t cg__elsize(const cg_tensor *t)
{
    return cg_dtype_size(t->dtype);
}
/** Address of the element at storage index `i` (offset included). */
static inline char *cg__elem_ptr(const cg_tensor *t, int64_t i)
{
    return (char *)t->storage->data + (size_t)i * cg__elsize(t);
}
/** Bumps the version counter after an in-place write. */
static inline void cg__bump_version(cg_tensor *t)
{
    atomic_fetch_add(&t->storage->version, 1);
}

/* ---- strided iteration ----------------------------------------------- */

/** Storage index (in elements, offset included) of every element of `t`
 *  in row-major order is visited by this iterator. */
typedef struct cg_iter {
    int ndim;
    int64_t shape[CG_MAX_DIMS];
    int64_t strides[CG_MAX_DIMS];
    int64_t idx[CG_MAX_DIMS];
    int64_t pos;       /* current storage index */
    int64_t remaining; /* elements left, including the current one */
} cg_iter;

void cg__iter_init(cg_iter *it, const cg_tensor *t);
/** The same over a shape and strides of one's own (ndim dims, the first
 *  element at storage index `base`): e.g. the starts of a tensor's rows,
 *  all its dims but the last. */
void cg__iter_init_dims(cg_iter *it, const int64_t *shape,
                        const int64_t *strides, int ndim, int64_t base);
/** Advances to the next element; returns false after the last one. */
static inline bool cg__iter_next(cg_iter *it)
{
    if (--it->remaining <= 0)
        return false;
    for (int d = it->ndim - 1; d >= 0; d--) {
        if (++it->idx[d] < it->shape[d]) {
            it->pos += it->strides[d];
            return true;
        }
        it->pos -= it->strides[d] * (it->shape[d] - 1);
        it->idx[d] = 0;
    }
    return true;
}

/** Reads element at storage index i as double(s). */
void cg__load(const cg_tensor *t, int64_t i, double *re, double *im);
/** Writes a double value (re, im) at storage index i, rounded to dtype. */
void cg__store(cg_tensor *t, int64_t i, double re, double im);

/* ---- shared kernels --------------------------------------------------- */

/** dst[...] = src[...] elementwise over dst's shape (src same shape or
 *  broadcast by stride 0), converting dtypes; no autograd. */
void cg__copy_values(cg_tensor *dst, const cg_tensor *src);
/** n elements of dtype `from`, `step` elements apart (0: one element
 *  repeated), converted to dtype `to` into contiguous out, each as
 *  cg__copy_values converts it. */
void cg__convert_run(void *out, cg_dtype to, const void *src, cg_dtype from,
                     int64_t n, int64_t step);
/** The geometry of t.expand(shape) (PyTorch's rules and messages). */
cg_status cg__expand_geometry(const cg_tensor *t, const int64_t *shape,
                              int ndim, int64_t *res, int64_t *strides);
/** A new contiguous tensor: t summed over the dimensions that were
 *  broadcast to reach t's shape from `shape` (leading extra dimensions,
 *  and size-1 dimensions of `shape`); no autograd. The adjoint of expand. */
cg_status cg__sum_to(const cg_tensor *t, const int64_t *shape, int ndim,
                     cg_tensor **out);

#endif /* CGRAD_TENSOR_INTERNAL_H */
