/*
 * dropout.c -- nn.Dropout(p=0.5) of PyTorch 1.13: the constructor's
 * ValueError "dropout probability has to be between 0 and 1, but got
 * 1.5", repr "Dropout(p=0.5, inplace=False)", and forward F.dropout(x, p,
 * self.training) (core/dropout.c) with the default generator: PyTorch's
 * draws in train mode, the input itself in eval mode.
 *
 * Left out: inplace=True.
 */
#include "module_internal.h"

#include <math.h>
#include <string.h>

typedef struct dropout {
    cg_module base;
    double p;
} dropout;

static cg_status dropout_forward(cg_module *m, cg_tensor *x, cg_tensor **out)
{
    return cg_dropout(x, ((dropout *)m)->p, m->training, NULL, out);
}

static cg_status dropout_extra_repr(const cg_module *m, cg__strbuf *sb)
{
    cg__sb_puts(sb, "p=");
    cg__sb_pyfloat(sb, ((const dropout *)m)->p);
    return cg__sb_puts(sb, ", inplace=False");
}

static cg_status dropout_getattr(const cg_module *m, const char *name,
                                 cg__strbuf *sb, bool *found)
{
    *found = true;
    if (strcmp(name, "p") == 0)
        return cg__sb_pyfloat(sb, ((const dropout *)m)->p);
    if (strcmp(name, "inplace") == 0)
        return cg__sb_puts(sb, "False");
    *found = false;
    return CG_OK;
}

static const cg__module_vtable dropout_vtable = {
    "Dropout", dropout_forward, dropout_extra_repr, dropout_getattr, NULL};

cg_status cg_dropout_new(double p, cg_module **out)
{
    if (!out)
        return cg__nn_null("out");
    /* _DropoutNd.__init__: `if p < 0 or p > 1` (NaN passes, as there) */
    if (p < 0 || p > 1) {
        char pf[48];
        cg_format_float(p, pf, sizeof pf);
        return cg_error(CG_ERR_VALUE,
                        "dropout probability has to be between 0 and 1, but "
                        "got %s",
                        pf);
    }
    cg_module *m = NULL;
    cg_status st = cg__module_alloc(sizeof(dropout), &dropout_vtable, &m);
    if (st != CG_OK)
        return st;
    ((dropout *)m)->p = p;
    *out = m;
    return CG_OK;
}
