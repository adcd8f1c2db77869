/*
 * linear.c -- torch.addmm and F.linear (PyTorch 1.13, CPU), composed as
 * at::linear composes them so the recorded graph is PyTorch's.
 *
 *   addmm(self, m1, m2)   AddmmBackward0   y = self + m1 @ m2 (beta = alpha
 *                         = 1; self broadcast to (n, p))
 *                         g_self = gy summed back to self's shape
 *                         g_m1   = gy @ conj(m2)^T
 *                         g_m2   = conj(m1)^T @ gy
 *
 *   linear(x, w, b) =
 *     x 2-D, b given:              addmm(b, x, w.t())
 *     x contiguous 3-D, b given:   addmm(b, x.view(-1, in), w.t())
 *                                  .view(x0, x1, out)
 *     b given otherwise:           matmul(x, w.t()) + b
 *     no b:                        matmul(x, w.t())
 *
 * so a 2-D input records AddmmBackward0 (edges: bias, input, TBackward0
 * over the weight), a 3-D one ViewBackward0 over that (its input edge
 * through ViewBackward0), and 1-D or 4-D+ inputs the matmul chain
 * (SqueezeBackward3 / UnsafeViewBackward0 over MmBackward0) under
 * AddBackward0.
 *
 * Numerics: the product is cg_mm's (accumulated in double, rounded once),
 * then self is added in the result dtype; PyTorch's BLAS adds self to the
 * float product in the same order, so float32 agrees to rounding.
 *
 * Left out: beta/alpha other than 1, out= variants.
 */
#include "ops_internal.h"

#include <string.h>

/* ---- addmm: AddmmBackward0 ---------------------------------------------- */

typedef struct addmm_ctx {
    int self_ndim;
    int64_t self_shape[CG_MAX_DIMS];
} addmm_ctx;

enum { SLOT_MAT1 = 0, SLOT_MAT2 = 1 };

/* conj(t)^T for a matrix: a transposed view (real) or a conjugated copy
 * of one (complex). */
static cg_status conj_t(cg_tensor *t, cg_tensor **out)
{
    cg_tensor *tt = NULL;
    cg_status st = cg_tensor_t(t, &tt);
    if (st != CG_OK)
        return st;
    st = cg_conj(tt, out);
    cg_tensor_release(tt);
    return st;
}

static cg_status addmm_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const addmm_ctx *c = node->ctx;
    cg_status st;
    if (cg__needs_grad(node, 0) &&
        (st = cg__sum_to(gy, c->self_shape, c->self_ndim, &gx[0])) != CG_OK)
        return st;
    if (cg__needs_grad(node, 1)) { /* gy @ conj(m2)^T */
        cg_tensor *m2, *m2h = NULL;
        if ((st = cg__saved(node, SLOT_MAT2, &m2)) != CG_OK ||
            (st = conj_t(m2, &m2h)) != CG_OK)
            return st;
        st = cg_mm(gy, m2h, &gx[1]);
        cg_tensor_release(m2h);
        if (st != CG_OK)
            return st;
    }
    if (cg__needs_grad(node, 2)) { /* conj(m1)^T @ gy */
        cg_tensor *m1, *m1h = NULL;
        if ((st = cg__saved(node, SLOT_MAT1, &m1)) != CG_OK ||
            (st = conj_t(m1, &m1h)) != CG_OK)
            return st;
        st = cg_mm(m1h, gy, &gx[2]);
        cg_tensor_release(m1h);
        if (st != CG_OK)
            return st;
    }
    return CG_OK;
}

static const cg_op_def addmm_op = {"AddmmBackward0", addmm_backward, NULL};

cg_status cg_addmm(cg_tensor *self, cg_tensor *mat1, cg_tensor *mat2,
                   cg_tensor **out)
{
    if (!self)
        return cg__error_null("self");
    if (!mat1)
        return cg__error_null("mat1");
    if (!mat2)
        return cg__error_null("mat2");
    if (!out)
        return cg__error_null("out");
    /* at::addmm's checks, in its order */
    if (self->dtype != mat2->dtype)
        return cg__error(CG_ERR_RUNTIME,
                         "self and mat2 must have the same dtype");
    if (mat1->dtype != mat2->dtype)
        return cg__error(CG_ERR_RUNTIME,
                         "mat1 and mat2 must have the same dtype");
    if (mat1->ndim != 2)
        return cg__error(CG_ERR_RUNTIME,
                         "mat1 must be a matrix, got %d-D tensor", mat1->ndim);
    if (mat2->ndim != 2)
        return cg__error(CG_ERR_RUNTIME,
                         "mat2 must be a matrix, got %d-D tensor", mat2->ndim);
    if (mat1->shape[1] != mat2->shape[0])
        return cg__error(CG_ERR_RUNTIME,
                         "mat1 and mat2 shapes cannot be multiplied (%lldx%lld "
                         "and %lldx%lld)",
                         (long long)mat1->shape[0], (long long)mat1->shape[1],
                         (long long)mat2->shape[0], (long long)mat2->shape[1]);
    int64_t shape[2] = {mat1->shape[0], mat2->shape[1]};
    int64_t es[CG_MAX_DIMS], estr[CG_MAX_DIMS];
    cg_status st = cg__expand_geometry(self, shape, 2, es, estr);
    if (st != CG_OK)
        return st;

    /* values without a graph, then one node over the three inputs */
    bool prev = cg_set_grad_enabled(false);
    cg_tensor *prod = NULL, *y = NULL;
    st = cg_mm(mat1, mat2, &prod);
    if (st == CG_OK)
        st = cg_add(prod, self, &y);
    cg_set_grad_enabled(prev);
    cg_tensor_release(prod);
    if (st != CG_OK)
        return st;
    cg_tensor *ins[3] = {self, mat1, mat2};
    cg_node *node;
    addmm_ctx *c;
    if ((st = cg__record(y, &addmm_op, ins, 3, sizeof *c, &node,
                         (void **)&c)) != CG_OK)
        goto fail;
    if (node) {
        c->self_ndim = self->ndim;
        memcpy(c->self_shape, self->shape, sizeof c->self_shape);
        if (cg__needs_grad(node, 2) &&
            (st = cg__save(node, SLOT_MAT1, mat1, false)) != CG_OK)
            goto fail;
        if (cg__needs_grad(node, 1) &&
            (st = cg__save(node, SLOT_MAT2, mat2, false)) != CG_OK)
            goto fail;
    }
    *out = y;
    return CG_OK;
fail:
    cg_tensor_release(y);
    return st;
}

/* ---- F.linear --------------------------------------------------------------
 */

/* _flatten_3d_linear: addmm over the (x0 * x1, in) view, viewed back. */
static cg_status flatten_3d_linear(cg_tensor *x, cg_tensor *wt, cg_tensor *b,
                                   cg_tensor **out)
{
    int64_t flat[2] = {x->shape[0] * x->shape[1], x->shape[2]};
    cg_tensor *xf = NULL, *r = NULL;
    cg_status st = cg_tensor_view(x, flat, 2, &xf);
    if (st == CG_OK)
        st = cg_addmm(b, xf, wt, &r);
    cg_tensor_release(xf);
    if (st != CG_OK)
        return st;
    int64_t shape[3] = {x->shape[0], x->shape[1], r->shape[1]};
    st = cg_tensor_view(r, shape, 3, out);
    cg_tensor_release(r);
    return st;
}

cg_status cg_linear(cg_tensor *input, cg_tensor *weight, cg_tensor *bias,
                    cg_tensor **out)
{
    if (!input)
        return cg__error_null("input");
    if (!weight)
        return cg__error_null("weight");
    if (!out)
        return cg__error_null("out");
    cg_tensor *wt = NULL, *y = NULL;
    cg_status st = cg_tensor_t(weight, &wt);
    if (st != CG_OK)
        return st;
    if (bias && input->ndim == 2) {
        st = cg_addmm(bias, input, wt, &y);
    } else if (bias && input->ndim == 3 && cg_tensor_is_contiguous(input)) {
        st = flatten_3d_linear(input, wt, bias, &y);
    } else if (bias) {
        cg_tensor *p = NULL;
        st = cg_matmul(input, wt, &p);
        if (st == CG_OK)
            st = cg_add(p, bias, &y);
        cg_tensor_release(p);
    } else {
        st = cg_matmul(input, wt, &y);
    }
    cg_tensor_release(wt);
    if (st == CG_OK)
        *out = y;
    return st;
}
