/*
 * sequential.c -- nn.Sequential and nn.ModuleList: ordered containers of
 * modules whose children are named "0", "1", ... as PyTorch 1.13 names
 * them.
 *
 * Mirrors torch/nn/modules/container.py: append adds the child under
 * str(len(self)); seq[i] accepts negative indices and raises IndexError
 * "index 5 is out of range" outside [-len, len); Sequential.forward feeds
 * each child's output to the next (an empty Sequential returns its input
 * itself); ModuleList has no forward, so calling it is the base's
 * NotImplementedError. Neither has an extra_repr, so the repr is the
 * base's "Sequential(\n  (0): ...\n)" (or "Sequential()" when empty).
 *
 * Left out: construction from an OrderedDict (string names), slicing,
 * insert/pop/extend/del, `+` and `*` of containers. A container holds a
 * reference to each child, so one module may sit in two containers; a
 * module can never contain itself (ValueError, see cg__module_add_child).
 */
#include "module_internal.h"

#include <inttypes.h>
#include <stdio.h>

static cg_status sequential_forward(cg_module *m, cg_tensor *input,
                                    cg_tensor **out);

static const cg__module_vtable sequential_vtable = {
    "Sequential", sequential_forward, NULL, NULL, NULL,
};

static const cg__module_vtable module_list_vtable = {
    "ModuleList", NULL, NULL, NULL, NULL,
};

/* ---- shared by both containers ------------------------------------------ */

static cg_status container_append(cg_module *c, const cg__module_vtable *vt,
                                  const char *what, cg_module *child)
{
    if (!c)
        return cg__nn_null(what);
    if (!cg__module_is(c, vt))
        return cg_error(CG_ERR_TYPE, "expected a %s, got a %s", vt->type_name,
                        c->vt->type_name);
    if (!child)
        return cg__nn_null("module");
    char name[24];
    snprintf(name, sizeof name, "%d", c->children.n);
    return cg__module_add_child(c, name, child);
}

static cg_status container_index(const cg_module *c,
                                 const cg__module_vtable *vt, const char *what,
                                 int64_t i, cg_module **out)
{
    if (!c)
        return cg__nn_null(what);
    if (!out)
        return cg__nn_null("out");
    if (!cg__module_is(c, vt))
        return cg_error(CG_ERR_TYPE, "expected a %s, got a %s", vt->type_name,
                        c->vt->type_name);
    int64_t n = c->children.n;
    if (i < -n || i >= n)
        return cg_error(CG_ERR_INDEX, "index %" PRId64 " is out of range", i);
    *out = c->children.items[i < 0 ? i + n : i].module;
    return CG_OK;
}

/* ---- nn.Sequential ------------------------------------------------------- */

cg_status cg_sequential_new(cg_module **out)
{
    if (!out)
        return cg__nn_null("out");
    return cg__module_alloc(sizeof(cg_module), &sequential_vtable, out);
}

cg_status cg_sequential_append(cg_module *seq, cg_module *child)
{
    return container_append(seq, &sequential_vtable, "seq", child);
}

cg_status cg_sequential_index(const cg_module *seq, int64_t i, cg_module **out)
{
    return container_index(seq, &sequential_vtable, "seq", i, out);
}

int64_t cg_sequential_len(const cg_module *seq)
{
    return cg__module_is(seq, &sequential_vtable) ? seq->children.n : -1;
}

/* for module in self: input = module(input). Each intermediate result is
 * released as soon as the next child has consumed it. */
static cg_status sequential_forward(cg_module *m, cg_tensor *input,
                                    cg_tensor **out)
{
    cg_tensor *x = cg_tensor_retain(input);
    for (int i = 0; i < m->children.n; i++) {
        cg_module *child = m->children.items[i].module;
        cg_tensor *y = NULL;
        cg_status st = cg_module_forward(child, x, &y);
        cg_tensor_release(x);
        if (st != CG_OK)
            return st;
        x = y;
    }
    *out = x;
    return CG_OK;
}

/* ---- nn.ModuleList ---------------------------------------------------------
 */

cg_status cg_module_list_new(cg_module **out)
{
    if (!out)
        return cg__nn_null("out");
    return cg__module_alloc(sizeof(cg_module), &module_list_vtable, out);
}

cg_status cg_module_list_append(cg_module *list, cg_module *child)
{
    return container_append(list, &module_list_vtable, "list", child);
}

cg_status cg_module_list_index(const cg_module *list, int64_t i,
                               cg_module **out)
{
    return container_index(list, &module_list_vtable, "list", i, out);
}

int64_t cg_module_list_len(const cg_module *list)
{
    return cg__module_is(list, &module_list_vtable) ? list->children.n : -1;
}
