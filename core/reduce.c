/*
 * reduce.c -- reductions: sum_to (the adjoint of broadcasting), used by
 * expand's backward and every broadcasting op's backward.
 */
#include "tensor_internal.h"

#include <string.h>

cg_status cg__sum_to(const cg_tensor *t, const int64_t *shape, int ndim,
                     cg_tensor **out)
{
    cg_tensor *r;
    cg_status st = cg__tensor_new(shape, ndim, t->dtype, &r);
    if (st != CG_OK)
        return st;
    if (cg_tensor_numel(t) > 0) {
        /* r seen with t's shape: stride 0 along every summed dimension, so
         * walking t and this view together adds each element into place */
        int64_t vstr[CG_MAX_DIMS];
        int lead = t->ndim - ndim;
        for (int i = 0; i < t->ndim; i++) {
            int j = i - lead;
            vstr[i] = (j < 0 || (r->shape[j] == 1 && t->shape[i] != 1))
                          ? 0
                          : r->strides[j];
        }
        cg_iter a, b;
        cg__iter_init(&a, t);
        cg__iter_init(&b, t);
        memcpy(b.strides, vstr, sizeof vstr);
        b.pos = 0;
        do {
            double are, aim, bre, bim;
            cg__load(t, a.pos, &are, &aim);
            cg__load(r, b.pos, &bre, &bim);
            cg__store(r, b.pos, bre + are, bim + aim);
            cg__iter_next(&b);
        } while (cg__iter_next(&a));
    }
    *out = r;
    return CG_OK;
}
