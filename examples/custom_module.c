/*
 * custom_module.c -- a user-defined nn.Module in C, used like a built-in.
 *
 * The PyTorch program this mirrors (tests/data/nn/layers/gen_layers.py
 * prints its output, and the nn_layers test holds this program's stdout
 * to it byte for byte):
 *
 *     class ResidualBlock(nn.Module):
 *         def __init__(self, features, hidden):
 *             super().__init__()
 *             self.features, self.hidden = features, hidden
 *             self.fc1 = nn.Linear(features, hidden)
 *             self.act = nn.ReLU()
 *             self.fc2 = nn.Linear(hidden, features)
 *         def extra_repr(self):
 *             return f'features={self.features}, hidden={self.hidden}'
 *         def forward(self, x):
 *             return x + self.fc2(self.act(self.fc1(x)))
 *
 *     torch.manual_seed(0)
 *     model = nn.Sequential(ResidualBlock(4, 8), nn.Linear(4, 2))
 *     print(model)
 *     for name, p in model.named_parameters(): print(name, tuple(p.shape))
 *     x = torch.randn(3, 4)
 *     y = model(x); print(y)
 *     y.sum().backward(); print(model[0].fc1.bias.grad)
 *     model.eval(); print(model.training, model[0].fc1.training)
 *
 * A C module is a cg_module_type (class name, forward, extra_repr,
 * destroy) plus a state pointer of your own; its parameters, buffers and
 * children are registered on it, so named_parameters(), train()/eval(),
 * zero_grad(), repr and cg_module_free see them like a built-in layer's.
 */
#include "cgrad_nn.h"

#include <inttypes.h>
#include <stdio.h>

/* The user's own fields (what Python keeps in self.__dict__). */
typedef struct residual_state {
    int64_t features, hidden;
} residual_state;

/* x + fc2(relu(fc1(x))): children are found by name, as self.fc1 is. */
static cg_status residual_forward(cg_module *self, cg_tensor *x,
                                  cg_tensor **out)
{
    cg_tensor *h = NULL, *a = NULL, *r = NULL;
    cg_status st = cg_module_forward(cg_module_get_child(self, "fc1"), x, &h);
    if (st == CG_OK)
        st = cg_module_forward(cg_module_get_child(self, "act"), h, &a);
    if (st == CG_OK)
        st = cg_module_forward(cg_module_get_child(self, "fc2"), a, &r);
    if (st == CG_OK)
        st = cg_add(x, r, out);
    cg_tensor_release(h);
    cg_tensor_release(a);
    cg_tensor_release(r);
    return st;
}

static cg_status residual_extra_repr(const cg_module *self, char *buf,
                                     size_t size, size_t *len)
{
    const residual_state *s = cg_module_state(self);
    int n = snprintf(buf, size, "features=%" PRId64 ", hidden=%" PRId64,
                     s->features, s->hidden);
    *len = (size_t)n;
    return CG_OK;
}

static void residual_destroy(void *state)
{
    cg_free(state);
}

static const cg_module_type residual_type = {
    "ResidualBlock", residual_forward, residual_extra_repr, residual_destroy};

/* ResidualBlock(features, hidden): __init__ registers the children in
 * the order Python assigns them. */
static cg_status residual_new(int64_t features, int64_t hidden, cg_module **out)
{
    residual_state *s = cg_malloc(sizeof *s);
    if (!s)
        return cg_error(CG_ERR_NOMEM, "out of memory");
    s->features = features;
    s->hidden = hidden;
    cg_module *m = NULL, *fc1 = NULL, *act = NULL, *fc2 = NULL;
    cg_status st = cg_module_new_custom(&residual_type, s, &m); /* owns s */
    if (st != CG_OK)
        return st;
    cg_linear_opts o1 = cg_linear_options(features, hidden);
    cg_linear_opts o2 = cg_linear_options(hidden, features);
    if ((st = cg_linear_new(&o1, &fc1)) == CG_OK &&
        (st = cg_module_register_module(m, "fc1", fc1)) == CG_OK &&
        (st = cg_relu_new(&act)) == CG_OK &&
        (st = cg_module_register_module(m, "act", act)) == CG_OK &&
        (st = cg_linear_new(&o2, &fc2)) == CG_OK)
        st = cg_module_register_module(m, "fc2", fc2);
    /* the parent holds its own references now */
    cg_module_free(fc1);
    cg_module_free(act);
    cg_module_free(fc2);
    if (st != CG_OK) {
        cg_module_free(m);
        return st;
    }
    *out = m;
    return CG_OK;
}

static int fail(void)
{
    cg_print_last_error(stderr);
    return 1;
}

int main(void)
{
    cg_manual_seed(0);
    cg_module *model = NULL, *block = NULL, *head = NULL;
    cg_linear_opts oh = cg_linear_options(4, 2);
    if (cg_sequential_new(&model) != CG_OK ||
        residual_new(4, 8, &block) != CG_OK ||
        cg_sequential_append(model, block) != CG_OK ||
        cg_linear_new(&oh, &head) != CG_OK ||
        cg_sequential_append(model, head) != CG_OK)
        return fail();
    cg_module_free(block); /* the Sequential keeps them */
    cg_module_free(head);

    cg_module_print(model, stdout);
    for (int i = 0; i < cg_module_num_parameters(model); i++) {
        const char *name;
        cg_tensor *p;
        cg_module_named_parameter(model, i, &name, &p);
        const int64_t *shape = cg_tensor_shape(p);
        if (cg_tensor_dim(p) == 2)
            printf("%s (%" PRId64 ", %" PRId64 ")\n", name, shape[0], shape[1]);
        else
            printf("%s (%" PRId64 ",)\n", name, shape[0]);
    }

    int64_t xs[2] = {3, 4};
    cg_tensor *x = NULL, *y = NULL, *s = NULL;
    if (cg_randn(xs, 2, CG_FLOAT32, NULL, &x) != CG_OK ||
        cg_module_forward(model, x, &y) != CG_OK)
        return fail();
    cg_tensor_print(y, stdout);
    if (cg_sum(y, &s) != CG_OK || cg_tensor_backward(s, NULL, false) != CG_OK)
        return fail();
    cg_module *b0 = NULL;
    cg_sequential_index(model, 0, &b0);
    cg_tensor_print(cg_tensor_grad(cg_module_get_parameter(
                        cg_module_get_child(b0, "fc1"), "bias")),
                    stdout);

    cg_module_eval(model);
    printf("%s %s\n", cg_module_is_training(model) ? "True" : "False",
           cg_module_is_training(cg_module_get_child(b0, "fc1")) ? "True"
                                                                 : "False");
    cg_tensor_release(x);
    cg_tensor_release(y);
    cg_tensor_release(s);
    cg_module_free(model);
    return 0;
}
