/*
 * flatten.c -- nn.Flatten(start_dim=1, end_dim=-1) of PyTorch 1.13:
 * forward is input.flatten(start_dim, end_dim) (a view when possible,
 * ReshapeAliasBackward0; the input itself when nothing is merged), repr
 * "Flatten(start_dim=1, end_dim=-1)". Dims are checked at forward time,
 * with flatten's messages, as in PyTorch.
 */
#include "module_internal.h"

#include <string.h>

typedef struct flatten {
    cg_module base;
    int64_t start_dim, end_dim;
} flatten;

static cg_status flatten_forward(cg_module *m, cg_tensor *x, cg_tensor **out)
{
    const flatten *f = (const flatten *)m;
    return cg_tensor_flatten(x, f->start_dim, f->end_dim, out);
}

static cg_status flatten_extra_repr(const cg_module *m, cg__strbuf *sb)
{
    const flatten *f = (const flatten *)m;
    return cg__sb_printf(sb, "start_dim=%lld, end_dim=%lld",
                         (long long)f->start_dim, (long long)f->end_dim);
}

static cg_status flatten_getattr(const cg_module *m, const char *name,
                                 cg__strbuf *sb, bool *found)
{
    const flatten *f = (const flatten *)m;
    *found = true;
    if (strcmp(name, "start_dim") == 0)
        return cg__sb_printf(sb, "%lld", (long long)f->start_dim);
    if (strcmp(name, "end_dim") == 0)
        return cg__sb_printf(sb, "%lld", (long long)f->end_dim);
    *found = false;
    return CG_OK;
}

static const cg__module_vtable flatten_vtable = {
    "Flatten", flatten_forward, flatten_extra_repr, flatten_getattr, NULL};

cg_status cg_flatten_new(int64_t start_dim, int64_t end_dim, cg_module **out)
{
    if (!out)
        return cg__nn_null("out");
    cg_module *m = NULL;
    cg_status st = cg__module_alloc(sizeof(flatten), &flatten_vtable, &m);
    if (st != CG_OK)
        return st;
    ((flatten *)m)->start_dim = start_dim;
    ((flatten *)m)->end_dim = end_dim;
    *out = m;
    return CG_OK;
}
