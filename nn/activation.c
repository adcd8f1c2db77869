/*
 * activation.c -- the activation modules of PyTorch 1.13's
 * torch/nn/modules/activation.py: nn.ReLU, nn.LeakyReLU, nn.Sigmoid,
 * nn.Tanh and nn.GELU, thin wrappers over the core ops (core/activation.c)
 * with PyTorch's reprs: "ReLU()", "LeakyReLU(negative_slope=0.01)",
 * "Sigmoid()", "Tanh()", "GELU(approximate='none')".
 *
 * Left out: inplace=True (cgrad has no in-place activations yet).
 */
#include "module_internal.h"

#include <string.h>

/* One struct serves all five: the slope (LeakyReLU) or the approximation
 * (GELU) are the only state. */
typedef struct activation {
    cg_module base;
    double negative_slope; /* LeakyReLU */
    char *approximate;     /* GELU, owned */
} activation;

static cg_status relu_forward(cg_module *m, cg_tensor *x, cg_tensor **out)
{
    (void)m;
    return cg_relu(x, out);
}

static cg_status sigmoid_forward(cg_module *m, cg_tensor *x, cg_tensor **out)
{
    (void)m;
    return cg_sigmoid(x, out);
}

static cg_status tanh_forward(cg_module *m, cg_tensor *x, cg_tensor **out)
{
    (void)m;
    return cg_tanh(x, out);
}

static cg_status leaky_forward(cg_module *m, cg_tensor *x, cg_tensor **out)
{
    return cg_leaky_relu(x, ((activation *)m)->negative_slope, out);
}

static cg_status gelu_forward(cg_module *m, cg_tensor *x, cg_tensor **out)
{
    return cg_gelu(x, ((activation *)m)->approximate, out);
}

static cg_status leaky_extra_repr(const cg_module *m, cg__strbuf *sb)
{
    cg__sb_puts(sb, "negative_slope=");
    return cg__sb_pyfloat(sb, ((const activation *)m)->negative_slope);
}

static cg_status gelu_extra_repr(const cg_module *m, cg__strbuf *sb)
{
    cg__sb_puts(sb, "approximate=");
    return cg__sb_pystr(sb, ((const activation *)m)->approximate);
}

static cg_status leaky_getattr(const cg_module *m, const char *name,
                               cg__strbuf *sb, bool *found)
{
    *found = strcmp(name, "negative_slope") == 0;
    return *found ? cg__sb_pyfloat(sb, ((const activation *)m)->negative_slope)
                  : CG_OK;
}

static cg_status gelu_getattr(const cg_module *m, const char *name,
                              cg__strbuf *sb, bool *found)
{
    *found = strcmp(name, "approximate") == 0;
    return *found ? cg__sb_pystr(sb, ((const activation *)m)->approximate)
                  : CG_OK;
}

static void gelu_destroy(cg_module *m)
{
    cg_free(((activation *)m)->approximate);
}

static const cg__module_vtable relu_vtable = {"ReLU", relu_forward, NULL, NULL,
                                              NULL};
static const cg__module_vtable sigmoid_vtable = {"Sigmoid", sigmoid_forward,
                                                 NULL, NULL, NULL};
static const cg__module_vtable tanh_vtable = {"Tanh", tanh_forward, NULL, NULL,
                                              NULL};
static const cg__module_vtable leaky_vtable = {
    "LeakyReLU", leaky_forward, leaky_extra_repr, leaky_getattr, NULL};
static const cg__module_vtable gelu_vtable = {
    "GELU", gelu_forward, gelu_extra_repr, gelu_getattr, gelu_destroy};

static cg_status new_activation(const cg__module_vtable *vt, cg_module **out)
{
    if (!out)
        return cg__nn_null("out");
    return cg__module_alloc(sizeof(activation), vt, out);
}

cg_status cg_relu_new(cg_module **out)
{
    return new_activation(&relu_vtable, out);
}

cg_status cg_sigmoid_new(cg_module **out)
{
    return new_activation(&sigmoid_vtable, out);
}

cg_status cg_tanh_new(cg_module **out)
{
    return new_activation(&tanh_vtable, out);
}

cg_status cg_leaky_relu_new(double negative_slope, cg_module **out)
{
    cg_module *m = NULL;
    cg_status st = new_activation(&leaky_vtable, &m);
    if (st != CG_OK)
        return st;
    ((activation *)m)->negative_slope = negative_slope;
    *out = m;
    return CG_OK;
}

cg_status cg_gelu_new(const char *approximate, cg_module **out)
{
    if (!approximate)
        approximate = "none";
    char *copy = cg__strdup(approximate);
    if (!copy)
        return cg__nn_nomem(strlen(approximate) + 1);
    cg_module *m = NULL;
    cg_status st = new_activation(&gelu_vtable, &m);
    if (st != CG_OK) {
        cg_free(copy);
        return st;
    }
    ((activation *)m)->approximate = copy;
    *out = m;
    return CG_OK;
}
