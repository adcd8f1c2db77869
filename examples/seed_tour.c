/*
 * seed_tour.c -- the tour of nn.ConvTranspose3d that cgrad started from,
 * replayed with cgrad.
 *
 * The seed document ("ConvTranspose3d() in PyTorch") walks through a
 * transposed 3-D convolution in a Python session. This program performs
 * every step of it with cgrad and prints what the Python REPL would: a
 * line ">>> <python code>" for each statement, followed, for expressions,
 * by the value's repr. Its output equals, byte for byte, what PyTorch
 * 1.13 prints for the same session
 * (tests/data/seed_walkthrough.expected.txt; the test suite checks it).
 *
 * Read it next to the Python: each step shows the C call that does what
 * the Python line does. Three ideas carry the whole API:
 *
 *   - Every call that can fail returns a cg_status (CG_OK is 0) and
 *     hands its result back through a trailing pointer. On failure,
 *     cg_status_name() and cg_last_error() give Python's exception class
 *     and PyTorch's exact message.
 *   - C has no keyword arguments, so a layer takes an options struct
 *     filled with the defaults first; you then change only what the
 *     Python call passes by keyword.
 *   - Tensors are reference counted: what you receive through an `out`
 *     pointer is yours to cg_tensor_release(); modules are freed with
 *     cg_module_free(). Accessors such as cg_conv_transpose3d_weight()
 *     lend a pointer that lives as long as the module.
 *
 * Build and run:  ./build/examples/seed_tour
 */
#include "cgrad_nn.h"

#include <stdio.h>
#include <stdlib.h>

/* ---- REPL echo helpers ------------------------------------------------ */

/* A statement: Python echoes only the code. */
static void say(const char *python)
{
    printf(">>> %s\n", python);
}

/* An expression whose value is a tensor: the code, then repr(value). */
static cg_status show_tensor(const char *python, const cg_tensor *t)
{
    say(python);
    return cg_tensor_print(t, stdout);
}

/* An expression whose value is a Python bool. */
static void show_bool(const char *python, bool value)
{
    say(python);
    printf("%s\n", value ? "True" : "False");
}

/* `module` at the prompt: repr(module). */
static cg_status show_module(const char *python, const cg_module *m)
{
    say(python);
    return cg_module_print(m, stdout);
}

/* `module.<name>` at the prompt: the attribute's repr, or the
 * AttributeError Python reports for a name the module does not have. */
static cg_status show_attr(const char *python, const cg_module *m,
                           const char *name)
{
    char buf[4096];
    size_t len = 0;
    say(python);
    cg_status st = cg_module_getattr(m, name, buf, sizeof buf, &len);
    if (st == CG_ERR_ATTRIBUTE) {
        printf("%s: %s\n", cg_status_name(st), cg_last_error());
        return CG_OK;
    }
    if (st != CG_OK)
        return st;
    if (len >= sizeof buf) {
        fprintf(stderr, "seed_tour: repr of %s longer than expected\n", name);
        return CG_ERR_RUNTIME;
    }
    printf("%s\n", buf);
    return CG_OK;
}

/* Every step either succeeds or ends the tour with PyTorch's message. */
#define TRY(expr)                                                              \
    do {                                                                       \
        cg_status st_ = (expr);                                                \
        if (st_ != CG_OK) {                                                    \
            fprintf(stderr, "seed_tour: %s\n  %s: %s\n", #expr,                \
                    cg_status_name(st_), cg_last_error());                     \
            goto done;                                                         \
        }                                                                      \
    } while (0)

/* nn.ConvTranspose3d(in_channels=cin, out_channels=cout, kernel_size=1):
 * the three required arguments; everything else keeps its default
 * (stride 1, padding 0, output_padding 0, groups 1, bias True,
 * dilation 1, padding_mode 'zeros', float32). */
static cg_status conv_transpose3d(int64_t cin, int64_t cout, cg_dtype dtype,
                                  cg_module **out)
{
    cg_conv_transpose3d_opts o =
        cg_conv_transpose3d_options(cin, cout, CG_INT3(1));
    o.dtype = dtype;
    return cg_conv_transpose3d_new(&o, out);
}

int main(void)
{
    int status = EXIT_FAILURE;
    cg_tensor *tensor1 = NULL, *tensor2 = NULL, *y = NULL, *my_tensor = NULL;
    cg_module *convtran3d1 = NULL, *convtran3d2 = NULL, *convtran3d = NULL;
    cg_module *first = NULL, *second = NULL;

    /* ---- 1. A 4-D input and its requires_grad flag -------------------
     * torch.tensor(...) parses the same nested-list text. Four dimensions
     * read as one unbatched sample (Cin=1, D=1, H=1, W=6). A tensor made
     * by hand does not require grad. */
    say("tensor1 = torch.tensor([[[[8., -3., 0., 1., 5., -2.]]]])");
    TRY(cg_tensor_literal("[[[[8., -3., 0., 1., 5., -2.]]]]", &tensor1));
    show_bool("tensor1.requires_grad", cg_tensor_requires_grad(tensor1));

    /* ---- 2. The module, seeded -----------------------------------------
     * The weight (Cin=1, Cout=3, 1, 1, 1) and the bias (3) are drawn from
     * the default generator at construction, exactly as PyTorch draws
     * them, so the same seed gives the same numbers. */
    say("torch.manual_seed(42)");
    cg_manual_seed(42);
    say("convtran3d1 = nn.ConvTranspose3d(in_channels=1, out_channels=3, "
        "kernel_size=1)");
    TRY(conv_transpose3d(1, 3, CG_FLOAT32, &convtran3d1));

    /* ---- 3. Forward ------------------------------------------------------
     * An unbatched input is unsqueezed to (1, 1, 1, 1, 6), convolved and
     * squeezed back, so the last op recorded is SqueezeBackward1. The
     * output requires grad because the parameters do.
     *
     * The seed document prints different numbers here (-2.6722, ...);
     * those are what a *second* module built after the same seed gives
     * (step 9 reproduces them). PyTorch prints the 4.0616 below, and so
     * does the document later for identical code. */
    say("tensor2 = convtran3d1(input=tensor1)");
    TRY(cg_module_forward(convtran3d1, tensor1, &tensor2));
    TRY(show_tensor("tensor2", tensor2));
    show_bool("tensor2.requires_grad", cg_tensor_requires_grad(tensor2));

    /* ---- 4. The module and its attributes ---------------------------------
     * repr shows the arguments that differ from the defaults (kernel_size
     * and stride always). Sizes are stored as tuples, the padding mode as
     * a string, and weight and bias are Parameters. */
    TRY(show_module("convtran3d1", convtran3d1));
    static const char *const attrs[] = {
        "in_channels", "out_channels",   "kernel_size", "stride",
        "padding",     "output_padding", "groups",      "bias",
        "dilation",    "padding_mode",   "weight",
    };
    for (size_t i = 0; i < sizeof attrs / sizeof *attrs; i++) {
        char python[64];
        snprintf(python, sizeof python, "convtran3d1.%s", attrs[i]);
        TRY(show_attr(python, convtran3d1, attrs[i]));
    }
    /* "convtran3d1.device and convtran3d1.dtype don't work": the module
     * has no such attributes (its parameters do). */
    TRY(show_attr("convtran3d1.device", convtran3d1, "device"));
    TRY(show_attr("convtran3d1.dtype", convtran3d1, "dtype"));

    /* ---- 5. Chaining: 3 channels in, 3 out ------------------------------ */
    say("torch.manual_seed(42)");
    cg_manual_seed(42);
    say("convtran3d2 = nn.ConvTranspose3d(in_channels=3, out_channels=3, "
        "kernel_size=1)");
    TRY(conv_transpose3d(3, 3, CG_FLOAT32, &convtran3d2));
    TRY(cg_module_forward(convtran3d2, tensor2, &y));
    TRY(show_tensor("convtran3d2(input=tensor2)", y));
    cg_tensor_release(y);
    y = NULL;

    /* ---- 6. Every argument spelled out -----------------------------------
     * Writing the defaults explicitly changes nothing: the same seed gives
     * the same module and output as in step 3. device=None is NULL (or
     * "cpu"); dtype=None is float32. */
    say("torch.manual_seed(42)");
    cg_manual_seed(42);
    say("convtran3d = nn.ConvTranspose3d(in_channels=1, out_channels=3, "
        "kernel_size=1, stride=1, padding=0, output_padding=0, groups=1, "
        "bias=True, dilation=1, padding_mode='zeros', device=None, "
        "dtype=None)");
    {
        cg_conv_transpose3d_opts o =
            cg_conv_transpose3d_options(1, 3, CG_INT3(1));
        o.stride = CG_INT3(1);
        o.padding = CG_INT3(0);
        o.output_padding = CG_INT3(0);
        o.groups = 1;
        o.bias = true;
        o.dilation = CG_INT3(1);
        o.padding_mode = "zeros";
        o.device = NULL;
        o.dtype = CG_FLOAT32;
        TRY(cg_conv_transpose3d_new(&o, &convtran3d));
    }
    TRY(cg_module_forward(convtran3d, tensor1, &y));
    TRY(show_tensor("convtran3d(input=tensor1)", y));
    cg_tensor_release(y);
    y = NULL;

    /* ---- 7. The same six numbers in other shapes -------------------------
     * A 1x1x1 kernel acts on each position separately, so reshaping the
     * input only reshapes the output. Four dimensions are unbatched
     * (SqueezeBackward1); five are a batch (ConvolutionBackward0). */
    static const struct {
        const char *python;  /* the Python statement */
        const char *literal; /* its torch.tensor text */
    } shapes[] = {
        {"my_tensor = torch.tensor([[[[8., -3., 0.], [1., 5., -2.]]]])",
         "[[[[8., -3., 0.], [1., 5., -2.]]]]"},
        {"my_tensor = torch.tensor([[[[8.], [-3.], [0.], [1.], [5.], "
         "[-2.]]]])",
         "[[[[8.], [-3.], [0.], [1.], [5.], [-2.]]]]"},
        {"my_tensor = torch.tensor([[[[[8.], [-3.], [0.]], [[1.], [5.], "
         "[-2.]]]]])",
         "[[[[[8.], [-3.], [0.]], [[1.], [5.], [-2.]]]]]"},
    };
    for (size_t i = 0; i < sizeof shapes / sizeof *shapes; i++) {
        say(shapes[i].python);
        TRY(cg_tensor_literal(shapes[i].literal, &my_tensor));
        say("torch.manual_seed(42)");
        cg_manual_seed(42);
        say("convtran3d = nn.ConvTranspose3d(in_channels=1, out_channels=3, "
            "kernel_size=1)");
        cg_module_free(convtran3d);
        convtran3d = NULL;
        TRY(conv_transpose3d(1, 3, CG_FLOAT32, &convtran3d));
        TRY(cg_module_forward(convtran3d, my_tensor, &y));
        TRY(show_tensor("convtran3d(input=my_tensor)", y));
        cg_tensor_release(y);
        y = NULL;
        cg_tensor_release(my_tensor);
        my_tensor = NULL;
    }

    /* ---- 8. complex64 ----------------------------------------------------
     * A complex input needs a complex module (dtype=torch.complex64).
     * Each complex weight and bias takes two draws (real, then imaginary
     * part). The convolution runs as three real ones combined (PyTorch
     * 2.x's method), so the last op is an addition: AddBackward0. */
    say("my_tensor = torch.tensor([[[[[8.+0.j], [-3.+0.j], [0.+0.j]], "
        "[[1.+0.j], [5.+0.j], [-2.+0.j]]]]])");
    TRY(cg_tensor_literal("[[[[[8.+0.j], [-3.+0.j], [0.+0.j]], "
                          "[[1.+0.j], [5.+0.j], [-2.+0.j]]]]]",
                          &my_tensor));
    say("torch.manual_seed(42)");
    cg_manual_seed(42);
    say("convtran3d = nn.ConvTranspose3d(in_channels=1, out_channels=3, "
        "kernel_size=1, dtype=torch.complex64)");
    cg_module_free(convtran3d);
    convtran3d = NULL;
    TRY(conv_transpose3d(1, 3, CG_COMPLEX64, &convtran3d));
    TRY(cg_module_forward(convtran3d, my_tensor, &y));
    TRY(show_tensor("convtran3d(input=my_tensor)", y));
    cg_tensor_release(y);
    y = NULL;

    /* ---- 9. Where the document's first tensor2 came from ----------------
     * A second module built after the same seed continues the random
     * stream (draws 7-12), and its output is the document's -2.6722, ...
     * The first module is freed right away, as `del first`. */
    say("torch.manual_seed(42)");
    cg_manual_seed(42);
    say("first = nn.ConvTranspose3d(in_channels=1, out_channels=3, "
        "kernel_size=1)");
    TRY(conv_transpose3d(1, 3, CG_FLOAT32, &first));
    cg_module_free(first);
    first = NULL;
    say("second = nn.ConvTranspose3d(in_channels=1, out_channels=3, "
        "kernel_size=1)");
    TRY(conv_transpose3d(1, 3, CG_FLOAT32, &second));
    TRY(cg_module_forward(second, tensor1, &y));
    TRY(show_tensor("second(input=tensor1)", y));
    TRY(show_attr("second.weight", second, "weight"));
    TRY(show_attr("second.bias", second, "bias"));

    status = EXIT_SUCCESS;
done:
    /* Everything is released in any order; NULL is fine. */
    cg_tensor_release(y);
    cg_tensor_release(my_tensor);
    cg_tensor_release(tensor2);
    cg_tensor_release(tensor1);
    cg_module_free(second);
    cg_module_free(first);
    cg_module_free(convtran3d);
    cg_module_free(convtran3d2);
    cg_module_free(convtran3d1);
    return status;
}
