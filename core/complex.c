/*
 * complex.c -- complex tensors seen as real ones and built from real ones
 * (PyTorch 1.13, CPU).
 *
 *   view_as_real(a)  ViewAsRealBackward0  a view: shape + [2], strides
 *                                          doubled + [1] (in real
 *                                          elements); gx = view_as_complex(gy)
 *   a.real, a.imag   SelectBackward0 over ViewAsRealBackward0: as 1.13,
 *                    view_as_real(a).select(-1, 0 or 1), a view
 *   complex(re, im)  ComplexBackward0     re + i im, broadcast;
 *                                          gre = real(gy), gim = imag(gy),
 *                                          each summed to its input's shape
 *
 * For a real tensor a.real is a itself and a.imag is an error, as in
 * PyTorch. complex() takes two real tensors of the same dtype. None of
 * this needs per-dtype kernels: the data moves through real views.
 *
 * Not here: view_as_complex as a public op, polar, angle, conj views.
 */
#include "ops_internal.h"

#include <string.h>

/* The real view of complex t (no autograd). */
static cg_status real_view(const cg_tensor *t, cg_tensor **out)
{
    cg_status st = cg__check_ndim(t->ndim + 1);
    if (st != CG_OK)
        return st;
    int64_t shape[CG_MAX_DIMS], strides[CG_MAX_DIMS];
    for (int d = 0; d < t->ndim; d++) {
        shape[d] = t->shape[d];
        strides[d] = 2 * t->strides[d];
    }
    shape[t->ndim] = 2;
    strides[t->ndim] = 1;
    return cg__tensor_make(t->storage, cg_dtype_to_real(t->dtype), shape,
                           strides, t->ndim + 1, 2 * t->offset, out);
}

/* ---- view_as_real: ViewAsRealBackward0 ----------------------------------- */

/* gx = view_as_complex(gy): a new complex tensor of gy's shape minus its
 * trailing 2, whose real view is filled from gy. */
static cg_status view_as_real_backward(cg_node *node, cg_tensor *gy,
                                       cg_tensor **gx)
{
    (void)node;
    cg_tensor *c, *v;
    /* the copy below writes every component of c */
    cg_status st = cg__tensor_new_uninit(gy->shape, gy->ndim - 1,
                                         cg_dtype_to_complex(gy->dtype), &c);
    if (st != CG_OK)
        return st;
    if ((st = real_view(c, &v)) != CG_OK) {
        cg_tensor_release(c);
        return st;
    }
    cg__copy_values(v, gy);
    cg_tensor_release(v);
    gx[0] = c;
    return CG_OK;
}

static const cg_op_def view_as_real_op = {"ViewAsRealBackward0",
                                          view_as_real_backward, NULL};

cg_status cg_view_as_real(cg_tensor *a, cg_tensor **out)
{
    if (!a)
        return cg__error_null("tensor");
    if (!out)
        return cg__error_null("out");
    if (!cg_dtype_is_complex(a->dtype))
        return cg__error(CG_ERR_RUNTIME,
                         "view_as_real is only supported for complex tensors");
    cg_tensor *v;
    cg_status st = real_view(a, &v);
    if (st != CG_OK)
        return st;
    if ((st = cg__record(v, &view_as_real_op, &a, 1, 0, NULL, NULL)) != CG_OK) {
        cg_tensor_release(v);
        return st;
    }
    *out = v;
    return CG_OK;
}

/* ---- real / imag: SelectBackward0 over ViewAsRealBackward0 --------------- */

/* view_as_real(a).select(-1, part). */
static cg_status part_of(cg_tensor *a, int64_t part, cg_tensor **out)
{
    cg_tensor *v;
    cg_status st = cg_view_as_real(a, &v);
    if (st != CG_OK)
        return st;
    st = cg_tensor_select(v, -1, part, out);
    cg_tensor_release(v);
    return st;
}

cg_status cg_real(cg_tensor *a, cg_tensor **out)
{
    if (!a)
        return cg__error_null("tensor");
    if (!out)
        return cg__error_null("out");
    if (!cg_dtype_is_complex(a->dtype)) {
        *out = cg_tensor_retain(a);
        return CG_OK;
    }
    return part_of(a, 0, out);
}

cg_status cg_imag(cg_tensor *a, cg_tensor **out)
{
    if (!a)
        return cg__error_null("tensor");
    if (!out)
        return cg__error_null("out");
    if (!cg_dtype_is_complex(a->dtype))
        return cg__error(CG_ERR_RUNTIME,
                         "imag is not implemented for tensors with non-complex "
                         "dtypes.");
    return part_of(a, 1, out);
}

/* ---- complex: ComplexBackward0 ------------------------------------------- */

/* The input shapes, to sum each gradient back to. */
typedef struct complex_ctx {
    int ndim[2];
    int64_t shape[2][CG_MAX_DIMS];
} complex_ctx;

/* gre = real(gy), gim = imag(gy), summed to the inputs' shapes. */
static cg_status complex_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const complex_ctx *c = node->ctx;
    cg_tensor *v;
    cg_status st = real_view(gy, &v);
    if (st != CG_OK)
        return st;
    for (int i = 0; i < 2 && st == CG_OK; i++) {
        if (!cg__needs_grad(node, i))
            continue;
        cg_tensor *part;
        if ((st = cg_tensor_select(v, -1, i, &part)) != CG_OK)
            break;
        st = cg__sum_to(part, c->shape[i], c->ndim[i], &gx[i]);
        cg_tensor_release(part);
    }
    cg_tensor_release(v);
    return st;
}

static const cg_op_def complex_op = {"ComplexBackward0", complex_backward,
                                     NULL};

cg_status cg_complex(cg_tensor *re, cg_tensor *im, cg_tensor **out)
{
    if (!re)
        return cg__error_null("real");
    if (!im)
        return cg__error_null("imag");
    if (!out)
        return cg__error_null("out");
    if (cg_dtype_is_complex(re->dtype) || cg_dtype_is_complex(im->dtype))
        return cg__error(CG_ERR_RUNTIME,
                         "Expected both inputs to be Half, Float or Double "
                         "tensors but got %s and %s",
                         cg__dtype_scalar_name(re->dtype),
                         cg__dtype_scalar_name(im->dtype));
    if (re->dtype != im->dtype)
        return cg__error(CG_ERR_RUNTIME,
                         "Expected object of scalar type %s but got scalar "
                         "type %s for second argument",
                         cg__dtype_scalar_name(re->dtype),
                         cg__dtype_scalar_name(im->dtype));
    int64_t shape[CG_MAX_DIMS];
    int ndim;
    cg_status st = cg__broadcast_shapes(re, im, shape, &ndim);
    if (st != CG_OK)
        return st;
    cg_tensor *r, *v = NULL, *part = NULL;
    if ((st = cg__tensor_new(shape, ndim, cg_dtype_to_complex(re->dtype),
                             &r)) != CG_OK)
        return st;
    /* each part of r's real view gets its input, broadcast by stride 0 */
    cg_tensor *const in[2] = {re, im};
    st = real_view(r, &v);
    for (int i = 0; i < 2 && st == CG_OK; i++) {
        int64_t bshape[CG_MAX_DIMS], bstrides[CG_MAX_DIMS];
        cg_tensor *b = NULL;
        if ((st = cg_tensor_select(v, -1, i, &part)) == CG_OK &&
            (st = cg__expand_geometry(in[i], shape, ndim, bshape, bstrides)) ==
                CG_OK &&
            (st = cg__tensor_view_of(in[i], bshape, bstrides, ndim,
                                     in[i]->offset, &b)) == CG_OK)
            cg__copy_values(part, b);
        cg_tensor_release(b);
        cg_tensor_release(part);
        part = NULL;
    }
    cg_tensor_release(v);
    complex_ctx *ctx = NULL;
    if (st == CG_OK)
        st =
            cg__record(r, &complex_op, in, 2, sizeof *ctx, NULL, (void **)&ctx);
    if (st != CG_OK) {
        cg_tensor_release(r);
        return st;
    }
    if (ctx) {
        for (int i = 0; i < 2; i++) {
            ctx->ndim[i] = in[i]->ndim;
            memcpy(ctx->shape[i], in[i]->shape, sizeof ctx->shape[i]);
        }
    }
    *out = r;
    return CG_OK;
}
