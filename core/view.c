/*
 * view.c -- view ops: tensors that share storage with their base, each
 * with its backward beside its forward (PyTorch 1.13 names and messages).
 *
 *   view       ViewBackward0          gx = gy.reshape(input shape)
 *   reshape    ReshapeAliasBackward0  (when a view is possible)
 *              CloneBackward0 + UnsafeViewBackward0 (when it must copy)
 *   flatten    as reshape
 *   unsqueeze  UnsqueezeBackward0     gx = gy.squeeze(dim)
 *   squeeze(d) SqueezeBackward1       gx = gy.unsqueeze(d) (if d was 1)
 *   squeeze()  SqueezeBackward0       gx = gy.reshape(input shape)
 *   permute    PermuteBackward0       gx = gy.permute(inverse)
 *   transpose  TransposeBackward0     gx = gy.transpose(d0, d1)
 *   narrow, slice  SliceBackward0     gx = zeros; gx[slice] = gy
 *   select     SelectBackward0        gx = zeros; gx[index] = gy
 *   expand     ExpandBackward0        gx = gy summed to the input shape
 *
 * Views share the storage, and so the version counter, of their base; an
 * in-place write through any of them is seen by autograd.
 */
#include "autograd_internal.h"

#include <string.h>

/* Shape of the input, kept by most view nodes for their backward. */
typedef struct shape_ctx {
    int ndim;
    int64_t shape[CG_MAX_DIMS];
    int64_t a, b, c; /* op parameters: dims, start, step, index */
} shape_ctx;

/* Records `op` on the view `out` of `t`, keeping t's shape and params. */
static cg_status record_view(cg_tensor *out, cg_tensor *t, const cg_op_def *op,
                             int64_t a, int64_t b, int64_t c)
{
    shape_ctx *ctx;
    cg_status st = cg__record(out, op, &t, 1, sizeof *ctx, NULL, (void **)&ctx);
    if (st != CG_OK || !ctx)
        return st;
    ctx->ndim = t->ndim;
    memcpy(ctx->shape, t->shape, sizeof ctx->shape);
    ctx->a = a;
    ctx->b = b;
    ctx->c = c;
    return CG_OK;
}

/* Makes a view of t with the given geometry and records `op` on it. */
static cg_status make_view(cg_tensor *t, const int64_t *shape,
                           const int64_t *strides, int ndim, int64_t offset,
                           const cg_op_def *op, int64_t a, int64_t b, int64_t c,
                           cg_tensor **out)
{
    cg_tensor *v;
    cg_status st = cg__tensor_view_of(t, shape, strides, ndim, offset, &v);
    if (st != CG_OK)
        return st;
    if ((st = record_view(v, t, op, a, b, c)) != CG_OK) {
        cg_tensor_release(v);
        return st;
    }
    *out = v;
    return CG_OK;
}

static cg_status check_args(const cg_tensor *t, cg_tensor **out)
{
    if (!t)
        return cg__error_null("tensor");
    if (!out)
        return cg__error_null("out");
    return CG_OK;
}

/* ---- view / reshape -------------------------------------------------------
 */

static cg_status reshape_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const shape_ctx *c = node->ctx;
    return cg_tensor_reshape(gy, c->shape, c->ndim, &gx[0]);
}

static const cg_op_def view_op = {"ViewBackward0", reshape_backward, NULL};
static const cg_op_def reshape_alias_op = {"ReshapeAliasBackward0",
                                           reshape_backward, NULL};
static const cg_op_def unsafe_view_op = {"UnsafeViewBackward0",
                                         reshape_backward, NULL};

/* Resolves a requested shape (one -1 allowed) against numel. */
static cg_status infer_shape(const cg_tensor *t, const int64_t *shape, int ndim,
                             int64_t *res)
{
    cg_status st_shape = cg__check_shape_arg(shape, ndim);
    if (st_shape != CG_OK)
        return st_shape;
    int64_t numel = cg_tensor_numel(t), prod = 1;
    int infer = -1;
    bool bad = false;
    for (int i = 0; i < ndim; i++) {
        if (shape[i] == -1) {
            if (infer >= 0)
                return cg__error(CG_ERR_RUNTIME,
                                 "only one dimension can be inferred");
            infer = i;
        } else if (shape[i] < 0) {
            return cg__error(CG_ERR_RUNTIME, "invalid shape dimension %lld",
                             (long long)shape[i]);
        } else if (!cg__mul_overflow(prod, shape[i], &prod)) {
            bad = true;
        }
        res[i] = shape[i];
    }
    if (!bad) {
        if (infer >= 0) {
            if (prod > 0 && numel % prod == 0) {
                res[infer] = numel / prod;
                return CG_OK;
            }
        } else if (prod == numel) {
            return CG_OK;
        }
    }
    char buf[512];
    return cg__error(CG_ERR_RUNTIME,
                     "shape '%s' is invalid for input of size "
                     "%lld",
                     cg__format_shape(shape, ndim, buf, sizeof buf),
                     (long long)numel);
}

/* Strides that let `shape` view t's memory without a copy (PyTorch's
 * computeStride): false when some new dimension would span two
 * non-contiguous chunks of the old layout. */
static bool view_strides(const cg_tensor *t, const int64_t *shape, int ndim,
                         int64_t *strides)
{
    int64_t numel = cg_tensor_numel(t);
    if (numel == 0 || t->ndim == 0) {
        cg__contiguous_strides(shape, ndim, strides);
        return true;
    }
    int view_d = ndim - 1;
    int64_t chunk_stride = t->strides[t->ndim - 1];
    int64_t tensor_numel = 1, view_numel = 1;
    for (int d = t->ndim - 1; d >= 0; d--) {
        tensor_numel *= t->shape[d];
        if (d == 0 || (t->shape[d - 1] != 1 &&
                       t->strides[d - 1] != tensor_numel * chunk_stride)) {
            while (view_d >= 0 &&
                   (view_numel < tensor_numel || shape[view_d] == 1)) {
                strides[view_d] = view_numel * chunk_stride;
                view_numel *= shape[view_d];
                view_d--;
            }
            if (view_numel != tensor_numel)
                return false;
            if (d > 0) {
                chunk_stride = t->strides[d - 1];
                tensor_numel = 1;
                view_numel = 1;
            }
        }
    }
    return view_d == -1;
}

cg_status cg_tensor_view(cg_tensor *t, const int64_t *shape, int ndim,
                         cg_tensor **out)
{
    cg_status st = check_args(t, out);
    if (st != CG_OK)
        return st;
    int64_t res[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    if ((st = infer_shape(t, shape, ndim, res)) != CG_OK)
        return st;
    if (!view_strides(t, res, ndim, strides))
        return cg__error(CG_ERR_RUNTIME,
                         "view size is not compatible with input tensor's "
                         "size and stride (at least one dimension spans "
                         "across two contiguous subspaces). Use "
                         ".reshape(...) instead.");
    return make_view(t, res, strides, ndim, t->offset, &view_op, 0, 0, 0, out);
}

cg_status cg_tensor_reshape(cg_tensor *t, const int64_t *shape, int ndim,
                            cg_tensor **out)
{
    cg_status st = check_args(t, out);
    if (st != CG_OK)
        return st;
    int64_t res[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    if ((st = infer_shape(t, shape, ndim, res)) != CG_OK)
        return st;
    if (view_strides(t, res, ndim, strides))
        return make_view(t, res, strides, ndim, t->offset, &reshape_alias_op, 0,
                         0, 0, out);
    cg_tensor *c;
    if ((st = cg_tensor_clone(t, &c)) != CG_OK)
        return st;
    st = make_view(c, res, NULL, ndim, 0, &unsafe_view_op, 0, 0, 0, out);
    cg_tensor_release(c);
    return st;
}

cg_status cg_tensor_flatten(cg_tensor *t, int64_t start_dim, int64_t end_dim,
                            cg_tensor **out)
{
    cg_status st = check_args(t, out);
    if (st != CG_OK)
        return st;
    int64_t s, e;
    if ((st = cg__wrap_dim(start_dim, t->ndim, &s)) != CG_OK ||
        (st = cg__wrap_dim(end_dim, t->ndim, &e)) != CG_OK)
        return st;
    if (s > e)
        return cg__error(CG_ERR_RUNTIME, "flatten() has invalid args: "
                                         "start_dim cannot come after "
                                         "end_dim");
    if (t->ndim == 0) {
        int64_t one = 1;
        return cg_tensor_reshape(t, &one, 1, out);
    }
    if (s == e) {
        *out = cg_tensor_retain(t);
        return CG_OK;
    }
    int64_t shape[CG_MAX_DIMS];
    int n = 0;
    for (int64_t d = 0; d < s; d++)
        shape[n++] = t->shape[d];
    int64_t prod = 1;
    for (int64_t d = s; d <= e; d++)
        prod *= t->shape[d];
    shape[n++] = prod;
    for (int64_t d = e + 1; d < t->ndim; d++)
        shape[n++] = t->shape[d];
    return cg_tensor_reshape(t, shape, n, out);
}

/* ---- unsqueeze / squeeze ----------------------------------------------------
 */

static cg_status unsqueeze_backward(cg_node *node, cg_tensor *gy,
                                    cg_tensor **gx)
{
    const shape_ctx *c = node->ctx;
    return cg_tensor_squeeze_dim(gy, c->a, &gx[0]);
}

static const cg_op_def unsqueeze_op = {"UnsqueezeBackward0", unsqueeze_backward,
                                       NULL};

cg_status cg_tensor_unsqueeze(cg_tensor *t, int64_t dim, cg_tensor **out)
{
    cg_status st = check_args(t, out);
    if (st != CG_OK)
        return st;
    int64_t d;
    if ((st = cg__wrap_dim(dim, t->ndim + 1, &d)) != CG_OK)
        return st;
    if ((st = cg__check_ndim(t->ndim + 1)) != CG_OK)
        return st;
    int64_t shape[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    for (int i = 0, j = 0; i <= t->ndim; i++) {
        if (i == d) {
            shape[i] = 1;
            strides[i] = d < t->ndim ? t->shape[d] * t->strides[d] : 1;
        } else {
            shape[i] = t->shape[j];
            strides[i] = t->strides[j];
            j++;
        }
    }
    return make_view(t, shape, strides, t->ndim + 1, t->offset, &unsqueeze_op,
                     d, 0, 0, out);
}

static cg_status squeeze1_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const shape_ctx *c = node->ctx;
    if (c->ndim == gy->ndim) /* the dim was not of size 1: nothing removed */
        gx[0] = cg_tensor_retain(gy);
    else
        return cg_tensor_unsqueeze(gy, c->a, &gx[0]);
    return CG_OK;
}

static const cg_op_def squeeze1_op = {"SqueezeBackward1", squeeze1_backward,
                                      NULL};
static const cg_op_def squeeze0_op = {"SqueezeBackward0", reshape_backward,
                                      NULL};

/* Drops dimension d from t's geometry into shape/strides. */
static int drop_dim(const cg_tensor *t, int64_t d, int64_t *shape,
                    int64_t *strides)
{
    int n = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (i == d)
            continue;
        shape[n] = t->shape[i];
        strides[n] = t->strides[i];
        n++;
    }
    return n;
}

cg_status cg_tensor_squeeze_dim(cg_tensor *t, int64_t dim, cg_tensor **out)
{
    cg_status st = check_args(t, out);
    if (st != CG_OK)
        return st;
    int64_t d;
    if ((st = cg__wrap_dim(dim, t->ndim, &d)) != CG_OK)
        return st;
    int64_t shape[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    int n = t->ndim;
    if (t->ndim > 0 && t->shape[d] == 1) {
        n = drop_dim(t, d, shape, strides);
    } else {
        memcpy(shape, t->shape, sizeof shape);
        memcpy(strides, t->strides, sizeof strides);
    }
    return make_view(t, shape, strides, n, t->offset, &squeeze1_op, d, 0, 0,
                     out);
}

cg_status cg_tensor_squeeze(cg_tensor *t, cg_tensor **out)
{
    cg_status st = check_args(t, out);
    if (st != CG_OK)
        return st;
    int64_t shape[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    int n = 0;
    for (int i = 0; i < t->ndim; i++) {
        if (t->shape[i] != 1) {
            shape[n] = t->shape[i];
            strides[n] = t->strides[i];
            n++;
        }
    }
    return make_view(t, shape, strides, n, t->offset, &squeeze0_op, 0, 0, 0,
                     out);
}

/* ---- permute / transpose
 * ------------------------------------------------------ */

static cg_status permute_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    /* the forward permutation is stored in ctx->shape */
    const shape_ctx *c = node->ctx;
    int64_t inv[CG_MAX_DIMS];
    for (int i = 0; i < c->ndim; i++)
        inv[c->shape[i]] = i;
    return cg_tensor_permute(gy, inv, c->ndim, &gx[0]);
}

static const cg_op_def permute_op = {"PermuteBackward0", permute_backward,
                                     NULL};

cg_status cg_tensor_permute(cg_tensor *t, const int64_t *dims, int ndim,
                            cg_tensor **out)
{
    cg_status st = check_args(t, out);
    if (st != CG_OK)
        return st;
    if (ndim != t->ndim)
        return cg__error(CG_ERR_RUNTIME,
                         "permute(sparse_coo): number of dimensions in the "
                         "tensor input does not match the length of the "
                         "desired ordering of dimensions i.e. input.dim() = "
                         "%d is not equal to len(dims) = %d",
                         t->ndim, ndim);
    if (ndim > 0 && !dims)
        return cg__error_null("dims");
    int64_t perm[CG_MAX_DIMS], shape[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    bool seen[CG_MAX_DIMS] = {false};
    for (int i = 0; i < ndim; i++) {
        if ((st = cg__wrap_dim(dims[i], ndim, &perm[i])) != CG_OK)
            return st;
        if (seen[perm[i]])
            return cg__error(CG_ERR_RUNTIME,
                             "permute(): duplicate dims are not allowed.");
        seen[perm[i]] = true;
        shape[i] = t->shape[perm[i]];
        strides[i] = t->strides[perm[i]];
    }
    cg_tensor *v;
    if ((st = cg__tensor_view_of(t, shape, strides, ndim, t->offset, &v)) !=
        CG_OK)
        return st;
    shape_ctx *ctx;
    if ((st = cg__record(v, &permute_op, &t, 1, sizeof *ctx, NULL,
                         (void **)&ctx)) != CG_OK) {
        cg_tensor_release(v);
        return st;
    }
    if (ctx) {
        ctx->ndim = ndim;
        memcpy(ctx->shape, perm, (size_t)ndim * sizeof *perm);
    }
    *out = v;
    return CG_OK;
}

static cg_status transpose_backward(cg_node *node, cg_tensor *gy,
                                    cg_tensor **gx)
{
    const shape_ctx *c = node->ctx;
    return cg_tensor_transpose(gy, c->a, c->b, &gx[0]);
}

static const cg_op_def transpose_op = {"TransposeBackward0", transpose_backward,
                                       NULL};

cg_status cg_tensor_transpose(cg_tensor *t, int64_t dim0, int64_t dim1,
                              cg_tensor **out)
{
    cg_status st = check_args(t, out);
    if (st != CG_OK)
        return st;
    int64_t a, b;
    if ((st = cg__wrap_dim(dim0, t->ndim, &a)) != CG_OK ||
        (st = cg__wrap_dim(dim1, t->ndim, &b)) != CG_OK)
        return st;
    int64_t shape[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(strides, t->strides, sizeof strides);
    if (t->ndim > 0) {
        shape[a] = t->shape[b];
        shape[b] = t->shape[a];
        strides[a] = t->strides[b];
        strides[b] = t->strides[a];
    }
    return make_view(t, shape, strides, t->ndim, t->offset, &transpose_op, a, b,
                     0, out);
}

/* ---- slice / narrow / select ------------------------------------------------
 */

/* gx = zeros(input shape); the same slice of gx (as the forward took) = gy. */
static cg_status scatter_back(const shape_ctx *c, cg_tensor *gy, bool select,
                              cg_tensor **gx)
{
    cg_tensor *z, *part;
    cg_status st = cg__tensor_new(c->shape, c->ndim, gy->dtype, &z);
    if (st != CG_OK)
        return st;
    if (select)
        st = cg_tensor_select(z, c->a, c->b, &part);
    else
        st = cg_tensor_slice(z, c->a, c->b, INT64_MAX, c->c, &part);
    if (st == CG_OK && !select) {
        /* the forward's end is implied by gy's size along the dim */
        cg_tensor *p2;
        st = cg_tensor_narrow(part, c->a, 0, gy->shape[c->a], &p2);
        cg_tensor_release(part);
        part = p2;
    }
    if (st == CG_OK) {
        cg__copy_values(part, gy);
        cg_tensor_release(part);
        *gx = z;
        return CG_OK;
    }
    cg_tensor_release(z);
    return st;
}

static cg_status slice_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    return scatter_back(node->ctx, gy, false, &gx[0]);
}

static cg_status select_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    return scatter_back(node->ctx, gy, true, &gx[0]);
}

static const cg_op_def slice_op = {"SliceBackward0", slice_backward, NULL};
static const cg_op_def select_op = {"SelectBackward0", select_backward, NULL};

cg_status cg_tensor_slice(cg_tensor *t, int64_t dim, int64_t start, int64_t end,
                          int64_t step, cg_tensor **out)
{
    cg_status st = check_args(t, out);
    if (st != CG_OK)
        return st;
    if (t->ndim == 0)
        return cg__error(CG_ERR_INDEX, "slice() cannot be applied to a 0-dim "
                                       "tensor.");
    int64_t d;
    if ((st = cg__wrap_dim(dim, t->ndim, &d)) != CG_OK)
        return st;
    if (step == 0)
        return cg__error(CG_ERR_VALUE, "slice step cannot be zero");
    if (step < 0)
        return cg__error(CG_ERR_VALUE, "step must be greater than zero");
    int64_t n = t->shape[d];
    /* Python's clamping of slice bounds */
    if (start < 0)
        start = start < -n ? 0 : start + n;
    if (end < 0)
        end = end < -n ? 0 : end + n;
    if (start > n)
        start = n;
    if (end > n)
        end = n;
    if (end < start)
        end = start;
    int64_t shape[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    memcpy(shape, t->shape, sizeof shape);
    memcpy(strides, t->strides, sizeof strides);
    shape[d] = (end - start + step - 1) / step;
    strides[d] = t->strides[d] * step;
    return make_view(t, shape, strides, t->ndim,
                     t->offset + start * t->strides[d], &slice_op, d, start,
                     step, out);
}

cg_status cg_tensor_narrow(cg_tensor *t, int64_t dim, int64_t start,
                           int64_t length, cg_tensor **out)
{
    cg_status st = check_args(t, out);
    if (st != CG_OK)
        return st;
    if (t->ndim == 0)
        return cg__error(CG_ERR_RUNTIME,
                         "narrow() cannot be applied to a 0-dim tensor.");
    int64_t d;
    if ((st = cg__wrap_dim(dim, t->ndim, &d)) != CG_OK)
        return st;
    int64_t n = t->shape[d];
    if (start < 0) {
        /* PyTorch wraps a negative start like a dimension index */
        int64_t w;
        if ((st = cg__wrap_dim(start, (int)(n > 0 ? n : 1), &w)) != CG_OK)
            return st;
        start = w;
    }
    if (start > n || length < 0 || start + length > n)
        return cg__error(CG_ERR_RUNTIME,
                         "start (%lld) + length (%lld) exceeds dimension size "
                         "(%lld).",
                         (long long)start, (long long)length, (long long)n);
    return cg_tensor_slice(t, d, start, start + length, 1, out);
}

cg_status cg_tensor_select(cg_tensor *t, int64_t dim, int64_t index,
                           cg_tensor **out)
{
    cg_status st = check_args(t, out);
    if (st != CG_OK)
        return st;
    if (t->ndim == 0)
        return cg__error(CG_ERR_INDEX, "select() cannot be applied to a "
                                       "0-dim tensor.");
    int64_t d;
    if ((st = cg__wrap_dim(dim, t->ndim, &d)) != CG_OK)
        return st;
    int64_t n = t->shape[d];
    if (index < -n || index >= n) {
        char buf[512];
        return cg__error(CG_ERR_INDEX,
                         "select(): index %lld out of range for tensor of "
                         "size %s at dimension %lld",
                         (long long)index,
                         cg__format_shape(t->shape, t->ndim, buf, sizeof buf),
                         (long long)d);
    }
    if (index < 0)
        index += n;
    int64_t shape[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    int nd = drop_dim(t, d, shape, strides);
    return make_view(t, shape, strides, nd, t->offset + index * t->strides[d],
                     &select_op, d, index, 0, out);
}

/* ---- expand
 * ------------------------------------------------------------------- */

static cg_status expand_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const shape_ctx *c = node->ctx;
    return cg__sum_to(gy, c->shape, c->ndim, &gx[0]);
}

static const cg_op_def expand_op = {"ExpandBackward0", expand_backward, NULL};

cg_status cg__expand_geometry(const cg_tensor *t, const int64_t *shape,
                              int ndim, int64_t *res, int64_t *strides)
{
    cg_status st_shape = cg__check_shape_arg(shape, ndim);
    if (st_shape != CG_OK)
        return st_shape;
    if (ndim < t->ndim) {
        char buf[512], sz[512];
        cg__format_shape(t->shape, t->ndim, buf, sizeof buf);
        cg__format_shape(shape, ndim, sz, sizeof sz);
        return cg__error(CG_ERR_RUNTIME,
                         "expand(torch.%sTensor{%s}, size=%s): the number of "
                         "sizes provided (%d) must be greater or equal to the "
                         "number of dimensions in the tensor (%d)",
                         cg__dtype_scalar_name(t->dtype), buf, sz, ndim,
                         t->ndim);
    }
    int lead = ndim - t->ndim;
    for (int i = ndim - 1; i >= 0; i--) {
        int j = i - lead;
        if (j < 0) {
            if (shape[i] < 0)
                return cg__error(CG_ERR_RUNTIME,
                                 "The expanded size of the tensor (%lld) "
                                 "isn't allowed in a leading, non-existing "
                                 "dimension %d",
                                 (long long)shape[i], i);
            res[i] = shape[i];
            strides[i] = 0;
            continue;
        }
        int64_t want = shape[i] == -1 ? t->shape[j] : shape[i];
        if (t->shape[j] == want) {
            res[i] = want;
            strides[i] = t->strides[j];
        } else if (t->shape[j] == 1 && want >= 0) {
            res[i] = want;
            strides[i] = 0;
        } else {
            char buf[512], sz[512];
            cg__format_shape(shape, ndim, sz, sizeof sz);
            cg__format_shape(t->shape, t->ndim, buf, sizeof buf);
            return cg__error(CG_ERR_RUNTIME,
                             "The expanded size of the tensor (%lld) must "
                             "match the existing size (%lld) at non-singleton "
                             "dimension %d.  Target sizes: %s.  Tensor sizes: "
                             "%s",
                             (long long)want, (long long)t->shape[j], i, sz,
                             buf);
        }
    }
    int64_t numel;
    if (!cg__shape_numel(res, ndim, &numel))
        return cg__error(CG_ERR_RUNTIME,
                         "numel: integer multiplication overflow");
    return CG_OK;
}

cg_status cg_tensor_expand(cg_tensor *t, const int64_t *shape, int ndim,
                           cg_tensor **out)
{
    cg_status st = check_args(t, out);
    if (st != CG_OK)
        return st;
    int64_t res[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    if ((st = cg__expand_geometry(t, shape, ndim, res, strides)) != CG_OK)
        return st;
    return make_view(t, res, strides, ndim, t->offset, &expand_op, 0, 0, 0,
                     out);
}

/* ---- t: TBackward0
 * ------------------------------------------------------------ */

static cg_status t_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    (void)node;
    return cg_tensor_t(gy, &gx[0]);
}

static const cg_op_def t_op = {"TBackward0", t_backward, NULL};

cg_status cg_tensor_t(cg_tensor *t, cg_tensor **out)
{
    cg_status st = check_args(t, out);
    if (st != CG_OK)
        return st;
    if (t->ndim > 2)
        return cg__error(CG_ERR_RUNTIME,
                         "t() expects a tensor with <= 2 dimensions, but self "
                         "is %dD",
                         t->ndim);
    int64_t shape[2], strides[2];
    for (int i = 0; i < t->ndim; i++) {
        shape[i] = t->shape[t->ndim - 1 - i];
        strides[i] = t->strides[t->ndim - 1 - i];
    }
    return make_view(t, shape, strides, t->ndim, t->offset, &t_op, 0, 0, 0,
                     out);
}
