/*
 * autograd_graph.c -- builds a tiny two-layer network's loss, shows its
 * backward graph as a text tree and as Graphviz DOT, runs backward and
 * prints the gradients. The same computation in PyTorch 1.13:
 *
 *     x  = torch.tensor([[1., -2., 3.], [0.5, 0., -1.]], dtype=torch.float64)
 *     W1 = torch.tensor(..., requires_grad=True)     # (3, 4), likewise b1 (4),
 *     h  = torch.relu(x.mm(W1) + b1)                 # W2 (4, 1), b2 (1)
 *     y  = h.mm(W2) + b2
 *     loss = y.pow(2).mean()
 *     loss.backward()
 *
 * Usage: autograd_graph [graph.dot]   (render with: dot -Tpng graph.dot)
 */
#include "cgrad.h"

#include <stdio.h>
#include <stdlib.h>

/* Exits with PyTorch's exception line when a call fails. */
#define CHECK(expr)                                                            \
    do {                                                                       \
        if ((expr) != CG_OK) {                                                 \
            fprintf(stderr, "%s: ", #expr);                                    \
            cg_print_last_error(stderr);                                       \
            exit(EXIT_FAILURE);                                                \
        }                                                                      \
    } while (0)

/* A float64 tensor from a Python literal, named for the graph printers. */
static cg_tensor *named(const char *literal, const char *name,
                        bool requires_grad)
{
    cg_tensor *t = NULL;
    CHECK(cg_tensor_literal_dtype(literal, CG_FLOAT64, &t));
    CHECK(cg_tensor_set_name(t, name));
    CHECK(cg_tensor_requires_grad_(t, requires_grad));
    return t;
}

int main(int argc, char **argv)
{
    const char *dot_path = argc > 1 ? argv[1] : "graph.dot";

    cg_tensor *x = named("[[1., -2., 3.], [0.5, 0., -1.]]", "x", false);
    cg_tensor *W1 = named("[[0.2, -0.1, 0.4, 0.3], [-0.5, 0.6, 0.1, -0.2],"
                          " [0.3, 0.2, -0.4, 0.5]]",
                          "W1", true);
    cg_tensor *b1 = named("[0.1, -0.2, 0.05, 0.0]", "b1", true);
    cg_tensor *W2 = named("[[0.7], [-0.3], [0.5], [0.2]]", "W2", true);
    cg_tensor *b2 = named("[0.1]", "b2", true);

    /* forward: every intermediate is released as soon as the next one
     * holds it in the graph */
    cg_tensor *xw = NULL, *pre = NULL, *h = NULL, *hw = NULL, *y = NULL,
              *sq = NULL, *loss = NULL;
    CHECK(cg_mm(x, W1, &xw));
    CHECK(cg_add(xw, b1, &pre));
    CHECK(cg_relu(pre, &h));
    CHECK(cg_mm(h, W2, &hw));
    CHECK(cg_add(hw, b2, &y));
    CHECK(cg_pow_scalar(y, 2.0, &sq));
    CHECK(cg_mean(sq, &loss));
    cg_tensor_release(xw);
    cg_tensor_release(pre);
    cg_tensor_release(h);
    cg_tensor_release(hw);
    cg_tensor_release(y);
    cg_tensor_release(sq);

    printf("loss:\n");
    CHECK(cg_tensor_print(loss, stdout));
    printf("\nbackward graph of loss:\n");
    CHECK(cg_graph_print(loss, stdout));

    FILE *dot = fopen(dot_path, "w");
    if (!dot) {
        perror(dot_path);
        return EXIT_FAILURE;
    }
    CHECK(cg_graph_write_dot(loss, dot));
    if (fclose(dot) != 0) {
        perror(dot_path);
        return EXIT_FAILURE;
    }

    CHECK(cg_tensor_backward(loss, NULL, false));
    printf("\nafter backward (saved tensors freed):\n");
    CHECK(cg_graph_print(loss, stdout));
    printf("\n");
    cg_tensor *params[] = {W1, b1, W2, b2};
    for (int i = 0; i < 4; i++) {
        printf("%s.grad:\n", cg_tensor_name(params[i]));
        CHECK(cg_tensor_print(cg_tensor_grad(params[i]), stdout));
    }

    cg_tensor_release(loss);
    cg_tensor_release(x);
    for (int i = 0; i < 4; i++)
        cg_tensor_release(params[i]);
    return EXIT_SUCCESS;
}
