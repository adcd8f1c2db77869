/*
 * cat.c -- torch.cat (PyTorch 1.13, CPU): joins tensors along a dimension.
 *
 *   cat(tensors, dim)   CatBackward0   gx[i] = gy.narrow(dim, offset_i, size_i)
 *
 * PyTorch's rules, in its order: no 0-d tensor ("zero-dimensional tensor
 * (at position 1) cannot be concatenated"); dim wrapped against the first
 * tensor that is not a legacy empty one; a non-empty list; then every
 * such tensor must have that tensor's number of dims and sizes except
 * along dim. A legacy empty tensor (1-D of size 0) is skipped: it adds
 * nothing and its gradient is an empty tensor, but it still takes part in
 * dtype promotion and gets an edge in next_functions. The result's dtype
 * is the promotion of all inputs (float32 < float64, real < complex). When
 * every input is skipped the result has shape [0].
 *
 * Gradients are views (narrow slices) of gy; the engine converts one to
 * its input's dtype when cat promoted it (a complex gradient of a real
 * input keeps its real part, as PyTorch).
 */
#include "ops_internal.h"

#include <stdio.h>
#include <string.h>

/* The backward's state: per input, where its slice starts and its size
 * along dim (skipped inputs have size -1). */
typedef struct cat_part {
    int64_t offset, size;
} cat_part;

typedef struct cat_ctx {
    int64_t dim;
    int n;
    cat_part part[]; /* n entries */
} cat_ctx;

static bool skipped(const cg_tensor *t)
{
    return t->ndim == 1 && t->shape[0] == 0;
}

/* The slice [offset, offset+size) of t along dim, as a plain view. */
static cg_status slice_of(const cg_tensor *t, int64_t dim, int64_t offset,
                          int64_t size, cg_tensor **out)
{
    int64_t shape[CG_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    shape[dim] = size;
    return cg__tensor_view_of(t, shape, t->strides, t->ndim,
                              t->offset + offset * t->strides[dim], out);
}

static cg_status cat_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const cat_ctx *c = node->ctx;
    for (int i = 0; i < c->n; i++) {
        if (!cg__needs_grad(node, i))
            continue;
        const cat_part *p = &c->part[i];
        int64_t zero = 0;
        cg_status st = p->size < 0
                           ? cg_zeros(&zero, 1, gy->dtype, &gx[i])
                           : slice_of(gy, c->dim, p->offset, p->size, &gx[i]);
        if (st != CG_OK)
            return st;
    }
    return CG_OK;
}

static const cg_op_def cat_op = {"CatBackward0", cat_backward, NULL};

/* The checks, in PyTorch's order; on success the wrapped dim, the output
 * dtype and shape. */
static cg_status check_cat(cg_tensor *const *tensors, int n, int64_t dim,
                           int64_t *wdim, cg_dtype *dt, int64_t *shape,
                           int *ndim)
{
    for (int i = 0; i < n; i++) {
        if (!tensors[i]) {
            char what[64];
            snprintf(what, sizeof what, "tensors[%d]", i);
            return cg__error_null(what);
        }
    }
    for (int i = 0; i < n; i++)
        if (tensors[i]->ndim == 0)
            return cg__error(CG_ERR_RUNTIME,
                             "zero-dimensional tensor (at position %d) cannot "
                             "be concatenated",
                             i);
    int valid = n;
    for (int i = 0; i < n && valid == n; i++)
        if (!skipped(tensors[i]))
            valid = i;
    *wdim = dim;
    if (valid < n) {
        cg_status st = cg__wrap_dim(dim, tensors[valid]->ndim, wdim);
        if (st != CG_OK)
            return st;
    }
    if (n == 0)
        return cg__error(CG_ERR_RUNTIME,
                         "torch.cat(): expected a non-empty list of Tensors");
    *dt = tensors[0]->dtype;
    for (int i = 1; i < n; i++)
        *dt = cg__promote(*dt, tensors[i]->dtype);
    if (valid == n) {
        shape[0] = 0;
        *ndim = 1;
        return CG_OK;
    }
    const cg_tensor *first = tensors[valid];
    int64_t at_dim = 0;
    for (int i = 0; i < n; i++) {
        const cg_tensor *t = tensors[i];
        if (skipped(t))
            continue;
        if (t->ndim != first->ndim)
            return cg__error(CG_ERR_RUNTIME,
                             "Tensors must have same number of dimensions: "
                             "got %d and %d",
                             first->ndim, t->ndim);
        for (int d = 0; d < first->ndim; d++) {
            if (d != *wdim && t->shape[d] != first->shape[d])
                return cg__error(CG_ERR_RUNTIME,
                                 "Sizes of tensors must match except in "
                                 "dimension %lld. Expected size %lld but got "
                                 "size %lld for tensor number %d in the list.",
                                 (long long)*wdim, (long long)first->shape[d],
                                 (long long)t->shape[d], i);
        }
        at_dim += t->shape[*wdim];
    }
    memcpy(shape, first->shape, (size_t)first->ndim * sizeof *shape);
    shape[*wdim] = at_dim;
    *ndim = first->ndim;
    return CG_OK;
}

cg_status cg_cat(cg_tensor *const *tensors, int n, int64_t dim, cg_tensor **out)
{
    if (!out)
        return cg__error_null("out");
    if (n < 0)
        return cg__error(CG_ERR_VALUE,
                         "the number of tensors must not be negative, but got "
                         "%d",
                         n);
    if (n > 0 && !tensors)
        return cg__error_null("tensors");
    int64_t d = 0, shape[CG_MAX_DIMS];
    int ndim = 0;
    cg_dtype dt = CG_FLOAT32;
    cg_status st = check_cat(tensors, n, dim, &d, &dt, shape, &ndim);
    if (st != CG_OK)
        return st;
    cg_tensor *r;
    if ((st = cg__tensor_new(shape, ndim, dt, &r)) != CG_OK)
        return st;
    cat_ctx *ctx;
    size_t ctx_size = sizeof *ctx + (size_t)n * sizeof ctx->part[0];
    if ((st = cg__record(r, &cat_op, tensors, n, ctx_size, NULL,
                         (void **)&ctx)) != CG_OK) {
        cg_tensor_release(r);
        return st;
    }
    int64_t offset = 0;
    for (int i = 0; i < n; i++) {
        const cg_tensor *t = tensors[i];
        int64_t size = skipped(t) ? -1 : t->shape[d];
        if (ctx) {
            ctx->part[i].offset = offset;
            ctx->part[i].size = size;
        }
        if (size <= 0)
            continue;
        cg_tensor *slice;
        if ((st = slice_of(r, d, offset, size, &slice)) != CG_OK) {
            cg_tensor_release(r);
            return st;
        }
        cg__copy_values(slice, t); /* converts t to r's dtype */
        cg_tensor_release(slice);
        offset += size;
    }
    if (ctx) {
        ctx->dim = d;
        ctx->n = n;
    }
    *out = r;
    return CG_OK;
}
