/*
 * convolution.c -- F.conv_transpose3d and F.conv3d, forward and backward,
 * as PyTorch 1.13 (CPU) computes and checks them.
 *
 * Both are one differentiable op, ConvolutionBackward0, with edges (input,
 * weight, bias) in that order. An unbatched 4-D input is unsqueezed first
 * and the result squeezed with squeeze(0), so the chain reads
 * SqueezeBackward1 -> ConvolutionBackward0 -> UnsqueezeBackward0, as
 * PyTorch's composite records it.
 *
 * Argument checks run in PyTorch's order with its words: batchify (F4),
 * at::_convolution's parameter expansion and check_shape_forward (F5-F13),
 * the zero-batch shortcut (F14, an empty result) and the empty-input check
 * (F15), then the CPU kernel's own checks (F16-F20 for the transposed
 * convolution; for conv3d those of its portable kernels, see below).
 *
 * Complex tensors (PyTorch 2.x for conv_transpose3d, 1.13 for conv3d) are
 * convolved as three real convolutions combined with Gauss's trick, built
 * from public ops (real/imag views, add/sub, a final complex add), so the
 * batched result's grad_fn is AddBackward0 as in PyTorch:
 *     a = conv(xr, Wr, br)
 *     b = conv(xi, Wi)
 *     c = conv(xr + xi, Wr + Wi, br + bi)
 *     out = (a - b) + 1j * ((c - a) - b)
 *
 * conv3d's CPU kernels in 1.13 differ in three messages by backend: float32
 * usually goes to oneDNN ("non-positive dilation is not supported", "Input
 * type (torch.FloatTensor) and weight type ..."), float64 to the portable
 * kernels. cgrad has one kernel and always uses the portable kernels'
 * messages (what 1.13 prints for float64, and for float32 with
 * torch.backends.mkldnn disabled); as they do, it accepts a bias of another
 * dtype for a real input and converts it.
 *
 * Kernels: the fast ones of kernels/conv_transpose3d_fast.c run (on the
 * thread pool, vectorised, bitwise independent of the thread count); the
 * portable reference kernels below are their oracle (conv_internal.h
 * exposes them to the tests). The transposed forward rounds in PyTorch's
 * order, so its float32 values are PyTorch's bits; the other passes agree
 * with PyTorch within CONV_TRANSPOSE3D.md 2.4. conv3d runs on the same
 * kernels, as the adjoint (see conv_internal.h).
 *
 * Not here: padding='same'/'valid' strings, padding modes other than
 * zeros, 1-D/2-D convolutions.
 */
#include "conv_internal.h"
#include "kernels/conv_transpose3d_fast.h"
#include "ops_internal.h"

#include <string.h>

/* ======================================================================
 * Checked int64 arithmetic for sizes computed from user arguments
 * ====================================================================== */

static bool add_ok(int64_t a, int64_t b, int64_t *r)
{
    if ((b > 0 && a > INT64_MAX - b) || (b < 0 && a < INT64_MIN - b))
        return false;
    *r = a + b;
    return true;
}

static bool sub_ok(int64_t a, int64_t b, int64_t *r)
{
    if ((b < 0 && a > INT64_MAX + b) || (b > 0 && a < INT64_MIN + b))
        return false;
    *r = a - b;
    return true;
}

static bool mul_ok(int64_t a, int64_t b, int64_t *r)
{
    if (a != 0 && b != 0) {
        if (a > 0 ? (b > 0 ? a > INT64_MAX / b : b < INT64_MIN / a)
                  : (b > 0 ? a < INT64_MIN / b : b < INT64_MAX / a))
            return false;
    }
    *r = a * b;
    return true;
}

bool cg__ct3d_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t op,
                       int64_t d, int64_t *out)
{
    int64_t a, b, c, r;
    return sub_ok(in, 1, &a) && mul_ok(a, s, &a) && mul_ok(p, 2, &b) &&
           sub_ok(k, 1, &c) && mul_ok(d, c, &c) && sub_ok(a, b, &r) &&
           add_ok(r, c, &r) && add_ok(r, op, &r) && add_ok(r, 1, &r) &&
           (*out = r, true);
}

/* The dilated kernel's extent d*(k - 1) + 1. */
static bool dilated_extent(int64_t k, int64_t d, int64_t *out)
{
    int64_t c;
    return sub_ok(k, 1, &c) && mul_ok(d, c, &c) && add_ok(c, 1, out);
}

bool cg__conv3d_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d,
                         int64_t *out)
{
    int64_t padded, ext, r;
    if (s == 0 || !mul_ok(p, 2, &padded) || !add_ok(in, padded, &padded) ||
        !dilated_extent(k, d, &ext) || !sub_ok(padded, ext, &r))
        return false;
    *out = r / s + 1; /* C++'s truncating division, as PyTorch */
    return true;
}

static cg_status overflow_error(const char *fname)
{
    return cg__error(CG_ERR_RUNTIME,
                     "%s: the arguments make a size overflow int64 (PyTorch "
                     "would wrap around)",
                     fname);
}

/* ======================================================================
 * Small formatting helpers for messages
 * ====================================================================== */

/* "[a, b, c]" of n values (PyTorch's IntArrayRef printing). */
static char *fmt_list(const int64_t *v, int n, char *buf, size_t size)
{
    return cg__format_shape(v, n, buf, size);
}

/* "a x b x c". */
static char *fmt_x(const int64_t *v, int n, char *buf, size_t size)
{
    size_t m = 0;
    buf[0] = '\0';
    for (int i = 0; i < n; i++)
        m += (size_t)snprintf(buf + m, m < size ? size - m : 0, "%s%lld",
                              i ? " x " : "", (long long)v[i]);
    return buf;
}

/* A cg_ints holds 0..8 entries; anything else is a C-level misuse. */
static cg_status check_ints(const cg_ints *v, const char *name)
{
    if (v->n < 0 || v->n > 8)
        return cg__error(CG_ERR_MISUSE,
                         "%s: a cg_ints holds 0 to 8 values, but n is %d", name,
                         v->n);
    return CG_OK;
}

/* ======================================================================
 * nn.ConvTranspose3d's output_size (F2, F3), for nn/
 * ====================================================================== */

/* Python's input.size(dim) for a non-negative dim. */
static cg_status py_size(const int64_t *shape, int ndim, int dim, int64_t *out)
{
    if (ndim == 0)
        return cg__error(CG_ERR_INDEX,
                         "Dimension specified as %d but tensor has no "
                         "dimensions",
                         dim);
    if (dim >= ndim)
        return cg__error(CG_ERR_INDEX,
                         "Dimension out of range (expected to be in range of "
                         "[%d, %d], but got %d)",
                         -ndim, ndim - 1, dim);
    *out = shape[dim];
    return CG_OK;
}

/* Python's seq[i] on a module attribute tuple. */
static cg_status py_index(const cg_ints *v, int i, int64_t *out)
{
    if (i >= v->n)
        return cg__error(CG_ERR_INDEX, "tuple index out of range");
    *out = v->v[i];
    return CG_OK;
}

cg_status cg__ct3d_output_padding(const int64_t *input_shape, int input_ndim,
                                  const cg_ints *output_size,
                                  cg_ints kernel_size, cg_ints stride,
                                  cg_ints padding, cg_ints dilation,
                                  cg_ints output_padding, cg_ints *out)
{
    cg_status st;
    if (!out)
        return cg__error_null("out");
    if (input_ndim > 0 && !input_shape)
        return cg__error_null("input_shape");
    if ((st = check_ints(&kernel_size, "kernel_size")) != CG_OK ||
        (st = check_ints(&stride, "stride")) != CG_OK ||
        (st = check_ints(&padding, "padding")) != CG_OK ||
        (st = check_ints(&dilation, "dilation")) != CG_OK ||
        (st = check_ints(&output_padding, "output_padding")) != CG_OK)
        return st;
    if (!output_size) {
        *out = output_padding;
        return CG_OK;
    }
    if ((st = check_ints(output_size, "output_size")) != CG_OK)
        return st;
    int nns = input_ndim == 5 ? 2 : 1; /* non-spatial dimensions */
    const int64_t *req = output_size->v;
    if (output_size->n == nns + 3)
        req += nns; /* the leading sizes are dropped unchecked */
    else if (output_size->n != 3)
        return cg__error(CG_ERR_VALUE,
                         "ConvTranspose3D: for %dD input, output_size must "
                         "have 3 or %d elements (got %d)",
                         input_ndim, nns + 3, output_size->n);
    int64_t mins[3], maxs[3];
    for (int a = 0; a < 3; a++) {
        /* Python evaluates the operands left to right:
         * (input.size(a + nns) - 1) * stride[a] - 2 * padding[a]
         *     + dilation[a] * (kernel_size[a] - 1) + 1 */
        int64_t in = 0, s = 0, p = 0, d = 0, k = 0;
        if ((st = py_size(input_shape, input_ndim, a + nns, &in)) != CG_OK ||
            (st = py_index(&stride, a, &s)) != CG_OK ||
            (st = py_index(&padding, a, &p)) != CG_OK ||
            (st = py_index(&dilation, a, &d)) != CG_OK ||
            (st = py_index(&kernel_size, a, &k)) != CG_OK)
            return st;
        if (!cg__ct3d_out_size(in, k, s, p, 0, d, &mins[a]) ||
            !add_ok(mins[a], s, &maxs[a]) || !sub_ok(maxs[a], 1, &maxs[a]))
            return overflow_error("ConvTranspose3d");
    }
    for (int a = 0; a < 3; a++) {
        if (req[a] < mins[a] || req[a] > maxs[a]) {
            char r[128], lo[128], hi[128], in[512];
            int rest = input_ndim > 2 ? input_ndim - 2 : 0;
            return cg__error(
                CG_ERR_VALUE,
                "requested an output size of %s, but valid sizes range from "
                "%s to %s (for an input of torch.Size(%s))",
                fmt_list(req, 3, r, sizeof r), fmt_list(mins, 3, lo, sizeof lo),
                fmt_list(maxs, 3, hi, sizeof hi),
                fmt_list(input_shape + (input_ndim - rest), rest, in,
                         sizeof in));
        }
    }
    cg_ints res = {3, {0}};
    for (int a = 0; a < 3; a++)
        res.v[a] = req[a] - mins[a];
    *out = res;
    return CG_OK;
}

/* ======================================================================
 * Argument checks: what the call will compute, or PyTorch's error
 * ====================================================================== */

typedef struct conv_plan {
    const char *fname; /* "conv_transpose3d" or "conv3d" */
    bool transposed;
    bool empty;     /* zero batch or channels: zeros, no kernel */
    cg_conv_geom g; /* of the transposed convolution (conv_internal.h) */
    int64_t out_shape[5];
    cg_dtype dtype; /* of the result */
} conv_plan;

/* expand_param_if_needed: one value is repeated, otherwise the length must
 * be weight.dim() - 2. */
static cg_status expand_param(const cg_ints *v, const char *name, int dim,
                              int64_t *res)
{
    if (v->n == 1) {
        for (int i = 0; i < dim; i++)
            res[i] = v->v[0];
        return CG_OK;
    }
    if (v->n != dim) {
        char buf[256];
        return cg__error(CG_ERR_RUNTIME,
                         "expected %s to be a single integer value or a list "
                         "of %d values to match the convolution dimensions, "
                         "but got %s=%s",
                         name, dim, name,
                         fmt_list(v->v, v->n, buf, sizeof buf));
    }
    for (int i = 0; i < dim; i++)
        res[i] = v->v[i];
    return CG_OK;
}

static bool any_below(const int64_t *v, int n, int64_t bound)
{
    for (int i = 0; i < n; i++)
        if (v[i] < bound)
            return true;
    return false;
}

/* The result of the zero-batch / zero-channel shortcut (ConvBackend::Empty:
 * `input * weight.view(-1)[0]`, then `+= bias[0]`, then a view to the
 * computed shape), with the errors those steps raise. */
static cg_status plan_empty(conv_plan *pl, const int64_t *xs, cg_dtype xdt,
                            const cg_tensor *w, const cg_tensor *b)
{
    cg_dtype dt;
    if (xs[1] == 0) {
        dt = cg__promote(xdt, w->dtype); /* input.view(-1) * weight_view */
    } else {
        if (cg_tensor_numel(w) == 0)
            return cg__error(CG_ERR_INDEX,
                             "select(): index 0 out of range for tensor of "
                             "size [0] at dimension 0");
        dt = cg__result_type_scalar(xdt, cg_dtype_is_complex(w->dtype));
    }
    if (b) {
        if (cg_tensor_numel(b) == 0)
            return cg__error(CG_ERR_INDEX,
                             "select(): index 0 out of range for tensor of "
                             "size [0] at dimension 0");
        cg_dtype rt = cg__result_type_scalar(dt, cg_dtype_is_complex(b->dtype));
        if (rt != dt)
            return cg__error(CG_ERR_RUNTIME,
                             "result type %s can't be cast to the desired "
                             "output type %s",
                             cg__dtype_scalar_name(rt),
                             cg__dtype_scalar_name(dt));
    }
    /* view(shape) of a 0-element tensor: -1 would be inferred */
    int infer = -1;
    for (int i = 0; i < 5; i++) {
        if (pl->out_shape[i] == -1) {
            if (infer >= 0)
                return cg__error(CG_ERR_RUNTIME,
                                 "only one dimension can be inferred");
            infer = i;
        } else if (pl->out_shape[i] < 0) {
            return cg__error(CG_ERR_RUNTIME, "invalid shape dimension %lld",
                             (long long)pl->out_shape[i]);
        }
    }
    if (infer >= 0) {
        char buf[256];
        return cg__error(CG_ERR_RUNTIME,
                         "cannot reshape tensor of 0 elements into shape %s "
                         "because the unspecified dimension size -1 can be "
                         "any value and is ambiguous",
                         fmt_list(pl->out_shape, 5, buf, sizeof buf));
    }
    pl->empty = true;
    pl->dtype = dt;
    return CG_OK;
}

/* Checks of slow_conv_transpose3d's CPU kernel (F16-F20). */
static cg_status plan_transposed_kernel(conv_plan *pl, const int64_t *xs,
                                        cg_dtype xdt, const cg_tensor *w,
                                        const cg_tensor *b)
{
    const cg_conv_geom *g = &pl->g;
    if (any_below(g->d, 3, 1))
        return cg__error(CG_ERR_RUNTIME,
                         "dilation should be greater than zero, but got "
                         "dilation_depth: %lld, dilation_height: %lld, "
                         "dilation_width: %lld",
                         (long long)g->d[0], (long long)g->d[1],
                         (long long)g->d[2]);
    for (int a = 0; a < 3; a++) {
        if (g->op[a] >= g->s[a] && g->op[a] >= g->d[a])
            return cg__error(
                CG_ERR_RUNTIME,
                "output padding must be smaller than either stride or "
                "dilation, but got output_padding_depth: %lld "
                "output_padding_height: %lld output_padding_width: %lld "
                "stride_depth: %lld stride_height: %lld stride_width: %lld "
                "dilation_depth: %lld dilation_height: %lld dilation_width: "
                "%lld",
                (long long)g->op[0], (long long)g->op[1], (long long)g->op[2],
                (long long)g->s[0], (long long)g->s[1], (long long)g->s[2],
                (long long)g->d[0], (long long)g->d[1], (long long)g->d[2]);
    }
    if (cg_tensor_numel(w) == 0) {
        /* the kernel runs once per group, on weight[g*Cig:(g+1)*Cig] */
        int64_t ws[5];
        memcpy(ws, w->shape, sizeof ws);
        ws[0] /= g->G;
        char buf[256];
        return cg__error(CG_ERR_RUNTIME,
                         "non-empty 5D (n_output_plane x n_input_plane x "
                         "kernel_depth x kernel_height x kernel_width) tensor "
                         "expected for weight, but got: %s",
                         fmt_list(ws, 5, buf, sizeof buf));
    }
    if (any_below(pl->out_shape + 2, 3, 1)) {
        char in[128], out[128];
        return cg__error(CG_ERR_RUNTIME,
                         "Given input size per channel: (%s). Calculated "
                         "output size per channel: (%s). Output size is too "
                         "small",
                         fmt_x(xs + 2, 3, in, sizeof in),
                         fmt_x(pl->out_shape + 2, 3, out, sizeof out));
    }
    if (w->dtype != xdt)
        return cg__error(CG_ERR_RUNTIME, "expected scalar type %s but found %s",
                         cg__dtype_scalar_name(xdt),
                         cg__dtype_scalar_name(w->dtype));
    if (b && b->dtype != xdt)
        return cg__error(CG_ERR_RUNTIME, "expected scalar type %s but found %s",
                         cg__dtype_scalar_name(xdt),
                         cg__dtype_scalar_name(b->dtype));
    pl->dtype = xdt;
    return CG_OK;
}

/* Checks of conv3d's portable CPU kernels (slow_conv3d, or
 * slow_conv_dilated3d when some dilation is not 1). */
static cg_status plan_conv3d_kernel(conv_plan *pl, cg_dtype xdt,
                                    const cg_tensor *w)
{
    const cg_conv_geom *g = &pl->g;
    char buf[128];
    bool dilated = g->d[0] != 1 || g->d[1] != 1 || g->d[2] != 1;
    if (any_below(g->k, 3, 1))
        return dilated ? cg__error(CG_ERR_RUNTIME,
                                   "kernel size should be greater than zero, "
                                   "but got %s",
                                   fmt_list(g->k, 3, buf, sizeof buf))
                       : cg__error(CG_ERR_RUNTIME,
                                   "kernel size should be greater than zero, "
                                   "but got: %s (TxHxW)",
                                   fmt_x(g->k, 3, buf, sizeof buf));
    if (any_below(g->d, 3, 1))
        return cg__error(CG_ERR_RUNTIME,
                         "dilation should be greater than zero, but got %s",
                         fmt_list(g->d, 3, buf, sizeof buf));
    if (w->dtype != xdt)
        return cg__error(CG_ERR_RUNTIME, "expected scalar type %s but found %s",
                         cg__dtype_scalar_name(xdt),
                         cg__dtype_scalar_name(w->dtype));
    pl->dtype = xdt; /* a bias of another dtype is converted */
    return CG_OK;
}

/* Everything at::_convolution checks, in its order, for a batched input
 * of shape xs (5 sizes) and dtype xdt. */
static cg_status plan_conv(conv_plan *pl, const int64_t *xs, cg_dtype xdt,
                           const cg_tensor *w, const cg_tensor *b,
                           const cg_ints *stride, const cg_ints *padding,
                           const cg_ints *output_padding, int64_t groups,
                           const cg_ints *dilation)
{
    char ws[512], buf[512];
    int dim = w->ndim - 2;
    if (dim <= 0)
        return cg__error(CG_ERR_RUNTIME,
                         "weight should have at least three dimensions");
    if (groups <= 0)
        return cg__error(CG_ERR_RUNTIME, "non-positive groups is not "
                                         "supported");
    int64_t s[CG_MAX_DIMS], p[CG_MAX_DIMS], d[CG_MAX_DIMS], op[CG_MAX_DIMS];
    cg_status st;
    if ((st = expand_param(stride, "stride", dim, s)) != CG_OK ||
        (st = expand_param(padding, "padding", dim, p)) != CG_OK ||
        (st = expand_param(dilation, "dilation", dim, d)) != CG_OK ||
        (st = expand_param(output_padding, "output_padding", dim, op)) != CG_OK)
        return st;

    /* check_shape_forward */
    if (any_below(p, dim, 0))
        return cg__error(CG_ERR_RUNTIME, "negative padding is not supported");
    if (any_below(op, dim, 0))
        return cg__error(CG_ERR_RUNTIME,
                         "negative output_padding is not supported");
    if (any_below(s, dim, 1))
        return cg__error(CG_ERR_RUNTIME, "non-positive stride is not "
                                         "supported");
    if (w->ndim != 5)
        return cg__error(CG_ERR_RUNTIME,
                         "Expected %d-dimensional input for %d-dimensional "
                         "weight %s, but got 5-dimensional input of size %s "
                         "instead",
                         w->ndim, w->ndim,
                         fmt_list(w->shape, w->ndim, ws, sizeof ws),
                         fmt_list(xs, 5, buf, sizeof buf));
    const int64_t *wsh = w->shape;
    if (wsh[0] < groups)
        return cg__error(CG_ERR_RUNTIME,
                         "Given groups=%lld, expected weight to be at least "
                         "%lld at dimension 0, but got weight of size %s "
                         "instead",
                         (long long)groups, (long long)groups,
                         fmt_list(w->shape, w->ndim, ws, sizeof ws));
    if (wsh[0] % groups != 0)
        return cg__error(CG_ERR_RUNTIME,
                         "Given groups=%lld, expected weight to be divisible "
                         "by %lld at dimension 0, but got weight of size [%s] "
                         "instead",
                         (long long)groups, (long long)groups,
                         fmt_list(w->shape, w->ndim, ws, sizeof ws));
    cg_conv_geom *g = &pl->g;
    memset(g, 0, sizeof *g);
    g->G = groups;
    g->N = xs[0];
    for (int a = 0; a < 3; a++) {
        g->k[a] = wsh[a + 2];
        g->s[a] = s[a];
        g->p[a] = p[a];
        g->d[a] = d[a];
        g->op[a] = op[a];
    }
    int64_t cout, per_group; /* weight.size(1) * groups */
    if (!mul_ok(wsh[1], groups, &per_group))
        return overflow_error(pl->fname);
    if (pl->transposed) {
        if (xs[1] != wsh[0])
            return cg__error(CG_ERR_RUNTIME,
                             "Given transposed=1, weight of size %s, expected "
                             "input%s to have %lld channels, but got %lld "
                             "channels instead",
                             fmt_list(w->shape, w->ndim, ws, sizeof ws),
                             fmt_list(xs, 5, buf, sizeof buf),
                             (long long)wsh[0], (long long)xs[1]);
        cout = per_group;
        if (b && !(b->ndim == 1 && b->shape[0] == cout))
            return cg__error(
                CG_ERR_RUNTIME,
                "Given transposed=1, weight of size %s, expected "
                "bias to be 1-dimensional with %lld elements, "
                "but got bias of size %s instead",
                fmt_list(w->shape, w->ndim, ws, sizeof ws), (long long)cout,
                cg__format_shape(b->shape, b->ndim, buf, sizeof buf));
        for (int a = 0; a < 3; a++)
            if (!cg__ct3d_out_size(xs[a + 2], g->k[a], s[a], p[a], op[a], d[a],
                                   &pl->out_shape[a + 2]))
                return overflow_error(pl->fname);
        g->Cin = xs[1];
        g->Cout = cout;
        memcpy(g->in, xs + 2, sizeof g->in);
        memcpy(g->out, pl->out_shape + 2, sizeof g->out);
    } else {
        if (xs[1] != per_group)
            return cg__error(CG_ERR_RUNTIME,
                             "Given groups=%lld, weight of size %s, expected "
                             "input%s to have %lld channels, but got %lld "
                             "channels instead",
                             (long long)groups,
                             fmt_list(w->shape, w->ndim, ws, sizeof ws),
                             fmt_list(xs, 5, buf, sizeof buf),
                             (long long)per_group, (long long)xs[1]);
        cout = wsh[0];
        if (b && !(b->ndim == 1 && b->shape[0] == cout))
            return cg__error(
                CG_ERR_RUNTIME,
                "Given weight of size %s, expected bias to be "
                "1-dimensional with %lld elements, but got bias "
                "of size %s instead",
                fmt_list(w->shape, w->ndim, ws, sizeof ws), (long long)cout,
                cg__format_shape(b->shape, b->ndim, buf, sizeof buf));
        int64_t padded[3], ext[3];
        bool small = false;
        for (int a = 0; a < 3; a++) {
            if (!mul_ok(p[a], 2, &padded[a]) ||
                !add_ok(padded[a], xs[a + 2], &padded[a]) ||
                !dilated_extent(g->k[a], d[a], &ext[a]))
                return overflow_error(pl->fname);
            small = small || padded[a] < ext[a];
        }
        if (small) {
            char ks[128];
            return cg__error(CG_ERR_RUNTIME,
                             "Calculated padded input size per channel: (%s). "
                             "Kernel size: (%s). Kernel size can't be greater "
                             "than actual input size",
                             fmt_x(padded, 3, buf, sizeof buf),
                             fmt_x(ext, 3, ks, sizeof ks));
        }
        for (int a = 0; a < 3; a++) {
            int64_t full;
            if (!cg__conv3d_out_size(xs[a + 2], g->k[a], s[a], p[a], d[a],
                                     &pl->out_shape[a + 2]))
                return overflow_error(pl->fname);
            /* the conv3d output is the transposed convolution's input; the
             * positions conv3d skips at the end act as its output_padding */
            if (cg__ct3d_out_size(pl->out_shape[a + 2], g->k[a], s[a], p[a], 0,
                                  d[a], &full))
                g->op[a] = xs[a + 2] - full;
        }
        g->Cin = cout;
        g->Cout = xs[1];
        memcpy(g->in, pl->out_shape + 2, sizeof g->in);
        memcpy(g->out, xs + 2, sizeof g->out);
    }
    pl->out_shape[0] = xs[0];
    pl->out_shape[1] = xs[1] == 0 ? 0 : cout; /* calc_output_size */

    /* _select_conv_backend: empty inputs never reach a kernel */
    if (xs[0] == 0 || xs[1] == 0)
        return plan_empty(pl, xs, xdt, w, b);
    if (xs[2] == 0 || xs[3] == 0 || xs[4] == 0)
        return cg__error(CG_ERR_RUNTIME,
                         "Only zero batch or zero channel inputs are "
                         "supported, but got input shape: %s",
                         fmt_list(xs, 5, buf, sizeof buf));
    return pl->transposed ? plan_transposed_kernel(pl, xs, xdt, w, b)
                          : plan_conv3d_kernel(pl, xdt, w);
}

/* PyTorch 1.13's names in check_input_same_type_as_parameters. */
static const char *type_name(cg_dtype dt)
{
    switch (dt) {
    case CG_FLOAT32:
        return "torch.FloatTensor";
    case CG_FLOAT64:
        return "torch.DoubleTensor";
    case CG_COMPLEX64:
        return "CPUComplexFloatType";
    default:
        return "CPUComplexDoubleType";
    }
}

/* A complex input is checked against its parameters before anything else
 * (complex_convolution). conv3d uses 1.13's words; conv_transpose3d, which
 * 1.13 cannot run on complex tensors, uses its F20 words. */
static cg_status check_complex_types(bool transposed, const cg_tensor *x,
                                     const cg_tensor *w, const cg_tensor *b)
{
    const cg_tensor *ps[2] = {w, b};
    const char *names[2] = {"weight", "bias"};
    for (int i = 0; i < 2; i++) {
        if (!ps[i] || ps[i]->dtype == x->dtype)
            continue;
        if (transposed)
            return cg__error(CG_ERR_RUNTIME,
                             "expected scalar type %s but found %s",
                             cg__dtype_scalar_name(x->dtype),
                             cg__dtype_scalar_name(ps[i]->dtype));
        return cg__error(CG_ERR_RUNTIME,
                         "Input type (%s) and %s type (%s) should be the same",
                         type_name(x->dtype), names[i],
                         type_name(ps[i]->dtype));
    }
    return CG_OK;
}

/* ======================================================================
 * Reference kernels (see conv_internal.h for shapes and formulas)
 *
 * Along axis a, input position i and tap t meet at output position
 * o = i*s - p + t*d. Instead of testing every (i, t) pair, the loops
 * compute which taps of a given i (or which i of a given t) land in
 * [0, out), once per loop level, so the innermost loops run without
 * conditions.
 * ====================================================================== */

static int64_t volume(const int64_t *v)
{
    return v[0] * v[1] * v[2];
}

/* ceil(a / b) for a >= 0, b > 0, without overflow. */
static inline int64_t ceil_div(int64_t a, int64_t b)
{
    return a / b + (a % b != 0);
}

/* The in-range part of a loop along one axis: indices [lo, hi) (taps of
 * one input position, or input positions of one tap), whose output
 * position is base + index * step. */
typedef struct span {
    int64_t lo, hi, base, step;
} span;

/* Indices j in [0, n) with 0 <= base + j*step < out (step > 0). */
static inline span span_of(int64_t base, int64_t step, int64_t n, int64_t out)
{
    span r = {base >= 0 ? 0 : ceil_div(-base, step), 0, base, step};
    int64_t room = out - 1 - base;
    r.hi = room < 0 ? 0 : room / step + 1;
    if (r.hi > n)
        r.hi = n;
    if (r.hi < r.lo)
        r.hi = r.lo;
    return r;
}

/* The taps of input position i on axis a. */
static inline span taps_of(const cg_conv_geom *g, int a, int64_t i)
{
    return span_of(i * g->s[a] - g->p[a], g->d[a], g->k[a], g->out[a]);
}

/* The input positions that tap t on axis a reaches the output from. */
static inline span inputs_of(const cg_conv_geom *g, int a, int64_t t)
{
    return span_of(t * g->d[a] - g->p[a], g->s[a], g->in[a], g->out[a]);
}

/* Per-dtype kernels, instantiated for float and double. Index names: n
 * batch, ci input channel, cj = co' output channel within the group, i
 * input position, t tap, o output position; 0, 1, 2 are the axes.
 *
 * gather: one input voxel with the taps in sp[0..2], over all Cog output
 * channels of its group; wc = w[ci], gyg = gy[n, g*Cog]. correlate: one
 * tap with the input positions in sp[0..2], summed over the batch;
 * xc = x[0, ci], gyc = gy[0, co]. */
#define CONV_KERNELS(S, T)                                                     \
    static inline T gather_##S(const cg_conv_geom *g, const span *sp,          \
                               const T *wc, const T *gyg)                      \
    {                                                                          \
        const int64_t Cog = g->Cout / g->G, kV = volume(g->k);                 \
        const int64_t outV = volume(g->out);                                   \
        T acc = 0;                                                             \
        for (int64_t cj = 0; cj < Cog; cj++)                                   \
            for (int64_t t0 = sp[0].lo; t0 < sp[0].hi; t0++)                   \
                for (int64_t t1 = sp[1].lo; t1 < sp[1].hi; t1++) {             \
                    int64_t o0 = sp[0].base + t0 * sp[0].step;                 \
                    int64_t o1 = sp[1].base + t1 * sp[1].step;                 \
                    const T *gr = gyg + cj * outV +                            \
                                  (o0 * g->out[1] + o1) * g->out[2] +          \
                                  sp[2].base;                                  \
                    const T *wr =                                              \
                        wc + cj * kV + (t0 * g->k[1] + t1) * g->k[2];          \
                    for (int64_t t2 = sp[2].lo; t2 < sp[2].hi; t2++)           \
                        acc += gr[t2 * sp[2].step] * wr[t2];                   \
                }                                                              \
        return acc;                                                            \
    }                                                                          \
                                                                               \
    static inline T correlate_##S(const cg_conv_geom *g, const span *sp,       \
                                  const T *xc, const T *gyc)                   \
    {                                                                          \
        const int64_t inV = volume(g->in), outV = volume(g->out);              \
        T acc = 0;                                                             \
        for (int64_t n = 0; n < g->N; n++)                                     \
            for (int64_t i0 = sp[0].lo; i0 < sp[0].hi; i0++)                   \
                for (int64_t i1 = sp[1].lo; i1 < sp[1].hi; i1++) {             \
                    int64_t o0 = sp[0].base + i0 * sp[0].step;                 \
                    int64_t o1 = sp[1].base + i1 * sp[1].step;                 \
                    const T *xr = xc + n * g->Cin * inV +                      \
                                  (i0 * g->in[1] + i1) * g->in[2];             \
                    const T *gr = gyc + n * g->Cout * outV +                   \
                                  (o0 * g->out[1] + o1) * g->out[2] +          \
                                  sp[2].base;                                  \
                    for (int64_t i2 = sp[2].lo; i2 < sp[2].hi; i2++)           \
                        acc += xr[i2] * gr[i2 * sp[2].step];                   \
                }                                                              \
        return acc;                                                            \
    }                                                                          \
                                                                               \
    static void add_bias_##S(T *y, const T *b, int64_t N, int64_t C,           \
                             int64_t V)                                        \
    {                                                                          \
        for (int64_t n = 0; n < N; n++)                                        \
            for (int64_t c = 0; c < C; c++)                                    \
                for (int64_t v = 0; v < V; v++)                                \
                    y[(n * C + c) * V + v] += b[c];                            \
    }                                                                          \
                                                                               \
    static void channel_sum_##S(const T *a, int64_t N, int64_t C, int64_t V,   \
                                T *out)                                        \
    {                                                                          \
        for (int64_t c = 0; c < C; c++) {                                      \
            T acc = 0;                                                         \
            for (int64_t n = 0; n < N; n++)                                    \
                for (int64_t v = 0; v < V; v++)                                \
                    acc += a[(n * C + c) * V + v];                             \
            out[c] = acc;                                                      \
        }                                                                      \
    }                                                                          \
                                                                               \
    /* PyTorch 1.13's slow_conv_transpose3d, in its order of rounding:         \
     * per (n, group) a column buffer col[cj, t, i] = sum over ci (in          \
     * order, one multiply and one add each: reference BLAS) of                \
     * w[ci, cj, t] * x[ci, i], scattered by col2vol into y starting from      \
     * 0 with taps in (t0, t1, t2) order, then + bias. Reproducing that        \
     * order makes float32 outputs bit for bit PyTorch's (all 28 float32       \
     * golden cases), so they also print identically. */                       \
    static void forward_##S(const cg_conv_geom *g, const T *x, const T *w,     \
                            const T *b, T *y)                                  \
    {                                                                          \
        const int64_t Cig = g->Cin / g->G, Cog = g->Cout / g->G;               \
        const int64_t inV = volume(g->in), outV = volume(g->out);              \
        const int64_t kV = volume(g->k), wstride = Cog * kV;                   \
        memset(y, 0, (size_t)(g->N * g->Cout * outV) * sizeof(T));             \
        for (int64_t n = 0; n < g->N; n++)                                     \
            for (int64_t gi = 0; gi < g->G; gi++)                              \
                for (int64_t cj = 0; cj < Cog; cj++) {                         \
                    const T *xg = x + (n * g->Cin + gi * Cig) * inV;           \
                    const T *wg = w + gi * Cig * wstride + cj * kV;            \
                    T *yc = y + (n * g->Cout + gi * Cog + cj) * outV;          \
                    for (int64_t t = 0; t < kV; t++) {                         \
                        int64_t tt[3] = {t / (g->k[1] * g->k[2]),              \
                                         t / g->k[2] % g->k[1], t % g->k[2]};  \
                        span sp[3];                                            \
                        for (int a = 0; a < 3; a++)                            \
                            sp[a] = inputs_of(g, a, tt[a]);                    \
                        for (int64_t i0 = sp[0].lo; i0 < sp[0].hi; i0++)       \
                            for (int64_t i1 = sp[1].lo; i1 < sp[1].hi; i1++) { \
                                int64_t o0 = sp[0].base + i0 * sp[0].step;     \
                                int64_t o1 = sp[1].base + i1 * sp[1].step;     \
                                T *yr = yc +                                   \
                                        (o0 * g->out[1] + o1) * g->out[2] +    \
                                        sp[2].base;                            \
                                const T *xr =                                  \
                                    xg + (i0 * g->in[1] + i1) * g->in[2];      \
                                for (int64_t i2 = sp[2].lo; i2 < sp[2].hi;     \
                                     i2++) {                                   \
                                    T dot = 0;                                 \
                                    for (int64_t c = 0; c < Cig; c++)          \
                                        dot += xr[c * inV + i2] *              \
                                               wg[c * wstride + t];            \
                                    yr[i2 * sp[2].step] += dot;                \
                                }                                              \
                            }                                                  \
                    }                                                          \
                }                                                              \
        if (b)                                                                 \
            add_bias_##S(y, b, g->N, g->Cout, outV);                           \
    }                                                                          \
                                                                               \
    /* gx[n, ci, i] = sum over cj and in-range taps of gy[o] * w[t]. */        \
    static void backward_input_##S(const cg_conv_geom *g, const T *gy,         \
                                   const T *w, T *gx)                          \
    {                                                                          \
        const int64_t Cig = g->Cin / g->G, Cog = g->Cout / g->G;               \
        const int64_t inV = volume(g->in), outV = volume(g->out);              \
        for (int64_t n = 0; n < g->N; n++)                                     \
            for (int64_t ci = 0; ci < g->Cin; ci++) {                          \
                T *gxc = gx + (n * g->Cin + ci) * inV;                         \
                const T *wc = w + ci * Cog * volume(g->k);                     \
                const T *gyg = gy + (n * g->Cout + ci / Cig * Cog) * outV;     \
                span sp[3];                                                    \
                for (int64_t i0 = 0; i0 < g->in[0]; i0++) {                    \
                    sp[0] = taps_of(g, 0, i0);                                 \
                    for (int64_t i1 = 0; i1 < g->in[1]; i1++) {                \
                        sp[1] = taps_of(g, 1, i1);                             \
                        T *gxr = gxc + (i0 * g->in[1] + i1) * g->in[2];        \
                        for (int64_t i2 = 0; i2 < g->in[2]; i2++) {            \
                            sp[2] = taps_of(g, 2, i2);                         \
                            gxr[i2] = gather_##S(g, sp, wc, gyg);              \
                        }                                                      \
                    }                                                          \
                }                                                              \
            }                                                                  \
    }                                                                          \
                                                                               \
    /* gw[ci, cj, t] = sum over n and in-range i of x[i] * gy[o]. */           \
    static void backward_weight_##S(const cg_conv_geom *g, const T *x,         \
                                    const T *gy, T *gw)                        \
    {                                                                          \
        const int64_t Cig = g->Cin / g->G, Cog = g->Cout / g->G;               \
        const int64_t inV = volume(g->in), outV = volume(g->out);              \
        for (int64_t ci = 0; ci < g->Cin; ci++)                                \
            for (int64_t cj = 0; cj < Cog; cj++) {                             \
                const T *xc = x + ci * inV;                                    \
                const T *gyc = gy + (ci / Cig * Cog + cj) * outV;              \
                T *gwk = gw + (ci * Cog + cj) * volume(g->k);                  \
                span sp[3];                                                    \
                for (int64_t t0 = 0; t0 < g->k[0]; t0++) {                     \
                    sp[0] = inputs_of(g, 0, t0);                               \
                    for (int64_t t1 = 0; t1 < g->k[1]; t1++) {                 \
                        sp[1] = inputs_of(g, 1, t1);                           \
                        T *gwr = gwk + (t0 * g->k[1] + t1) * g->k[2];          \
                        for (int64_t t2 = 0; t2 < g->k[2]; t2++) {             \
                            sp[2] = inputs_of(g, 2, t2);                       \
                            gwr[t2] = correlate_##S(g, sp, xc, gyc);           \
                        }                                                      \
                    }                                                          \
                }                                                              \
            }                                                                  \
    }

CONV_KERNELS(f32, float)
CONV_KERNELS(f64, double)

static cg_status bad_dtype(const char *kernel, cg_dtype dt)
{
    return cg__error(CG_ERR_RUNTIME,
                     "internal error: %s has no %s kernel (float32 and "
                     "float64 only)",
                     kernel, cg_dtype_name(dt));
}

/* Dispatches CALL_<S>(...) on dt (float32 / float64). */
#define CONV_DISPATCH(name, dt, f32_call, f64_call)                            \
    switch (dt) {                                                              \
    case CG_FLOAT32:                                                           \
        f32_call;                                                              \
        return CG_OK;                                                          \
    case CG_FLOAT64:                                                           \
        f64_call;                                                              \
        return CG_OK;                                                          \
    default:                                                                   \
        return bad_dtype(name, dt);                                            \
    }

cg_status cg__ct3d_ref_forward(const cg_conv_geom *g, cg_dtype dt,
                               const void *x, const void *w, const void *b,
                               void *y){
    CONV_DISPATCH("cg__ct3d_ref_forward", dt, forward_f32(g, x, w, b, y),
                  forward_f64(g, x, w, b, y))}

cg_status cg__ct3d_ref_backward_input(const cg_conv_geom *g, cg_dtype dt,
                                      const void *gy, const void *w, void *gx){
    CONV_DISPATCH("cg__ct3d_ref_backward_input", dt,
                  backward_input_f32(g, gy, w, gx),
                  backward_input_f64(g, gy, w, gx))}

cg_status cg__ct3d_ref_backward_weight(const cg_conv_geom *g, cg_dtype dt,
                                       const void *x, const void *gy, void *gw)
{
    CONV_DISPATCH("cg__ct3d_ref_backward_weight", dt,
                  backward_weight_f32(g, x, gy, gw),
                  backward_weight_f64(g, x, gy, gw))
}

static cg_status channel_sum(cg_dtype dt, const void *a, int64_t N, int64_t C,
                             int64_t S, void *out)
{
    CONV_DISPATCH("channel_sum", dt, channel_sum_f32(a, N, C, S, out),
                  channel_sum_f64(a, N, C, S, out))
}

static cg_status add_channel_bias(cg_dtype dt, void *y, const void *b,
                                  int64_t N, int64_t C, int64_t S){
    CONV_DISPATCH("add_channel_bias", dt, add_bias_f32(y, b, N, C, S),
                  add_bias_f64(y, b, N, C, S))}

cg_status cg__ct3d_ref_backward_bias(const cg_conv_geom *g, cg_dtype dt,
                                     const void *gy, void *gb)
{
    return channel_sum(dt, gy, g->N, g->Cout, volume(g->out), gb);
}

/* ======================================================================
 * The op: forward, backward, recording
 * ====================================================================== */

typedef struct conv_ctx {
    conv_plan plan;
    int64_t bias_len; /* bias.size(0), -1 without a bias (PyTorch keeps only
                         the bias's size, not the bias) */
} conv_ctx;

/* t as a contiguous tensor of dtype dt, without autograd: t itself (a new
 * reference) when it already is one, else a converted copy. */
static cg_status contiguous_as(cg_tensor *t, cg_dtype dt, cg_tensor **out)
{
    if (t->dtype == dt && cg_tensor_is_contiguous(t)) {
        *out = cg_tensor_retain(t);
        return CG_OK;
    }
    cg_tensor *c;
    /* the copy writes every element */
    cg_status st = cg__tensor_new_uninit(t->shape, t->ndim, dt, &c);
    if (st != CG_OK)
        return st;
    cg__copy_values(c, t);
    *out = c;
    return CG_OK;
}

/* The 5-d t for the transposed convolution's backward kernels, which take
 * its planes' N and C strides (planes[0..1], in elements) and either
 * contiguous (D, H, W) planes (*plane = false) or one plane for every
 * (n, c) with any strides (*plane = true, its strides t's last three):
 *   - t itself (a new reference) when its planes are contiguous and of
 *     dtype dt;
 *   - t itself when it is one plane expanded along N and C -- y.sum()'s
 *     gradient -- of dtype dt and at most CG__CT3D_PRIVATE_PLANE_BYTES:
 *     each kernel thread makes its own copy;
 *   - else a contiguous copy of its distinct planes only (one plane for
 *     all when t is expanded along N and C). */
static cg_status planes_as(cg_tensor *t, cg_dtype dt, cg_tensor **out,
                           int64_t planes[2], bool *plane)
{
    const int64_t *sh = t->shape, *st = t->strides;
    const int64_t P = sh[2] * sh[3] * sh[4];
    bool contiguous_planes = t->dtype == dt;
    for (int64_t d = 4, want = 1; d >= 2; want *= sh[d], d--)
        if (sh[d] != 1 && st[d] != want)
            contiguous_planes = false;
    const bool one_plane =
        (sh[0] == 1 || st[0] == 0) && (sh[1] == 1 || st[1] == 0);
    *plane = !contiguous_planes && one_plane && t->dtype == dt &&
             (size_t)P * cg_dtype_size(dt) <= CG__CT3D_PRIVATE_PLANE_BYTES;
    if (contiguous_planes || *plane) {
        *out = cg_tensor_retain(t);
        planes[0] = *plane || sh[0] == 1 ? 0 : st[0];
        planes[1] = *plane || sh[1] == 1 ? 0 : st[1];
        return CG_OK;
    }
    const int64_t shape[5] = {st[0] == 0 ? 1 : sh[0], st[1] == 0 ? 1 : sh[1],
                              sh[2], sh[3], sh[4]};
    cg_tensor *distinct;
    cg_status s =
        cg__tensor_view_of(t, shape, t->strides, 5, t->offset, &distinct);
    if (s != CG_OK)
        return s;
    s = contiguous_as(distinct, dt, out);
    cg_tensor_release(distinct);
    if (s != CG_OK)
        return s;
    planes[0] = shape[0] == 1 ? 0 : shape[1] * P;
    planes[1] = shape[1] == 1 ? 0 : P;
    return CG_OK;
}

static cg_status conv_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx);

static const cg_op_def convolution_op = {"ConvolutionBackward0", conv_backward,
                                         NULL};

/* One real convolution as planned (the checks have passed): the kernel,
 * then the ConvolutionBackward0 node with edges (x, w, b). */
static cg_status conv_run(const conv_plan *pl, cg_tensor *x, cg_tensor *w,
                          cg_tensor *b, cg_tensor **out)
{
    cg_tensor *y = NULL, *xc = NULL, *wc = NULL, *bc = NULL;
    /* the fast kernels write their whole output; an empty plan leaves the
     * zeros */
    cg_status st = pl->empty
                       ? cg__tensor_new(pl->out_shape, 5, pl->dtype, &y)
                       : cg__tensor_new_uninit(pl->out_shape, 5, pl->dtype, &y);
    if (st != CG_OK)
        return st;
    if (!pl->empty) {
        const cg_conv_geom *g = &pl->g;
        if ((st = contiguous_as(x, pl->dtype, &xc)) != CG_OK ||
            (st = contiguous_as(w, pl->dtype, &wc)) != CG_OK ||
            (b && (st = contiguous_as(b, pl->dtype, &bc)) != CG_OK))
            goto fail;
        const void *bd = bc ? cg_tensor_data(bc) : NULL;
        if (pl->transposed) {
            st = cg__ct3d_fast_forward(g, pl->dtype, cg_tensor_data(xc),
                                       cg_tensor_data(wc), bd,
                                       cg_tensor_data(y));
        } else {
            st = cg__ct3d_fast_backward_input(g, pl->dtype, cg_tensor_data(xc),
                                              cg_tensor_data(wc),
                                              cg_tensor_data(y));
            if (st == CG_OK && bd)
                st = add_channel_bias(pl->dtype, cg_tensor_data(y), bd, g->N,
                                      g->Cin, volume(g->in));
        }
        if (st != CG_OK)
            goto fail;
    }
    cg_tensor *ins[3] = {x, w, b};
    cg_node *node;
    conv_ctx *ctx;
    if ((st = cg__record(y, &convolution_op, ins, 3, sizeof *ctx, &node,
                         (void **)&ctx)) != CG_OK)
        goto fail;
    if (node) {
        ctx->plan = *pl;
        ctx->bias_len = b ? b->shape[0] : -1;
        if ((st = cg__save(node, 0, x, false)) != CG_OK ||
            (st = cg__save(node, 1, w, false)) != CG_OK)
            goto fail;
    }
    cg_tensor_release(xc);
    cg_tensor_release(wc);
    cg_tensor_release(bc);
    *out = y;
    return CG_OK;
fail:
    cg_tensor_release(xc);
    cg_tensor_release(wc);
    cg_tensor_release(bc);
    cg_tensor_release(y); /* and with it any node recorded on it */
    return st;
}

/* ConvolutionBackward0: only the gradients whose inputs need them. */
static cg_status conv_backward(cg_node *node, cg_tensor *gy, cg_tensor **gx)
{
    const conv_ctx *ctx = node->ctx;
    const conv_plan *pl = &ctx->plan;
    const cg_conv_geom *g = &pl->g;
    cg_tensor *x, *w, *gyc = NULL, *xc = NULL, *wc = NULL;
    cg_tensor *res[3] = {NULL, NULL, NULL};
    cg_status st;
    if ((st = cg__saved(node, 0, &x)) != CG_OK ||
        (st = cg__saved(node, 1, &w)) != CG_OK)
        return st;
    /* gradients are made in the result's dtype; the engine converts them to
     * an input's own dtype when it differs (a converted conv3d bias) */
    /* the fast kernels write each gradient whole; an empty plan leaves the
     * zeros */
    cg_status (*make)(const int64_t *, int, cg_dtype, cg_tensor **) =
        pl->empty ? cg__tensor_new : cg__tensor_new_uninit;
    if ((cg__needs_grad(node, 0) &&
         (st = make(x->shape, x->ndim, pl->dtype, &res[0])) != CG_OK) ||
        (cg__needs_grad(node, 1) &&
         (st = make(w->shape, w->ndim, pl->dtype, &res[1])) != CG_OK) ||
        (cg__needs_grad(node, 2) && ctx->bias_len >= 0 &&
         (st = make(&ctx->bias_len, 1, pl->dtype, &res[2])) != CG_OK))
        goto fail;
    if (!pl->empty) {
        bool need_gx = res[0] != NULL, need_gw = res[1] != NULL;
        int64_t planes[2];
        bool plane = false;
        if ((st = pl->transposed
                      ? planes_as(gy, pl->dtype, &gyc, planes, &plane)
                      : contiguous_as(gy, pl->dtype, &gyc)) != CG_OK ||
            (need_gx && (st = contiguous_as(w, pl->dtype, &wc)) != CG_OK) ||
            (need_gw && (st = contiguous_as(x, pl->dtype, &xc)) != CG_OK))
            goto fail;
        const void *gyd = cg_tensor_data(gyc);
        if (pl->transposed) {
            /* one call: the gradients share the rearranged gy */
            st = cg__ct3d_fast_backward_planes(
                g, pl->dtype, need_gw ? cg_tensor_data(xc) : NULL,
                need_gx ? cg_tensor_data(wc) : NULL, gyd, planes,
                plane ? gyc->strides + 2 : NULL,
                need_gx ? cg_tensor_data(res[0]) : NULL,
                need_gw ? cg_tensor_data(res[1]) : NULL,
                res[2] ? cg_tensor_data(res[2]) : NULL);
        } else {
            /* conv3d: gy is shaped like the transposed convolution's x */
            if (need_gx)
                st =
                    cg__ct3d_fast_forward(g, pl->dtype, gyd, cg_tensor_data(wc),
                                          NULL, cg_tensor_data(res[0]));
            if (st == CG_OK && need_gw)
                st = cg__ct3d_fast_backward_weight(g, pl->dtype, gyd,
                                                   cg_tensor_data(xc),
                                                   cg_tensor_data(res[1]));
            if (st == CG_OK && res[2]) {
                /* the bias gradient sums gz, shaped like the transposed
                 * convolution's x: its geometry with x's sizes as y's */
                cg_conv_geom gb = *g;
                gb.Cout = g->Cin;
                memcpy(gb.out, g->in, sizeof gb.out);
                st = cg__ct3d_fast_backward_bias(&gb, pl->dtype, gyd,
                                                 cg_tensor_data(res[2]));
            }
        }
        if (st != CG_OK)
            goto fail;
    }
    for (int i = 0; i < 3; i++)
        gx[i] = res[i];
    cg_tensor_release(gyc);
    cg_tensor_release(xc);
    cg_tensor_release(wc);
    return CG_OK;
fail:
    for (int i = 0; i < 3; i++)
        cg_tensor_release(res[i]);
    cg_tensor_release(gyc);
    cg_tensor_release(xc);
    cg_tensor_release(wc);
    return st;
}

/* The complex convolution as three real ones (Gauss), in PyTorch's order. */
static cg_status conv_complex(const conv_plan *pl, cg_tensor *x, cg_tensor *w,
                              cg_tensor *b, cg_tensor **out)
{
    enum { XR, XI, WR, WI, BR, BI, A, B, XS, WS, BS, C, RE, T1, T2, IT, N_ };
    cg_tensor *t[N_] = {NULL};
    conv_plan rp = *pl;
    rp.dtype = cg_dtype_to_real(pl->dtype);
    cg_status st;
    if ((st = cg_real(x, &t[XR])) != CG_OK ||
        (st = cg_imag(x, &t[XI])) != CG_OK ||
        (st = cg_real(w, &t[WR])) != CG_OK ||
        (st = cg_imag(w, &t[WI])) != CG_OK ||
        (b && ((st = cg_real(b, &t[BR])) != CG_OK ||
               (st = cg_imag(b, &t[BI])) != CG_OK)))
        goto out;
    if ((st = conv_run(&rp, t[XR], t[WR], t[BR], &t[A])) != CG_OK ||
        (st = conv_run(&rp, t[XI], t[WI], NULL, &t[B])) != CG_OK ||
        (st = cg_add(t[XR], t[XI], &t[XS])) != CG_OK ||
        (st = cg_add(t[WR], t[WI], &t[WS])) != CG_OK ||
        (b && (st = cg_add(t[BR], t[BI], &t[BS])) != CG_OK) ||
        (st = conv_run(&rp, t[XS], t[WS], t[BS], &t[C])) != CG_OK)
        goto out;
    /* (a - b) + 1j * ((c - a) - b) */
    if ((st = cg_sub(t[A], t[B], &t[RE])) != CG_OK ||
        (st = cg_sub(t[C], t[A], &t[T1])) != CG_OK ||
        (st = cg_sub(t[T1], t[B], &t[T2])) != CG_OK ||
        (st = cg_mul_complex_scalar(t[T2], 0.0, 1.0, &t[IT])) != CG_OK)
        goto out;
    st = cg_add(t[RE], t[IT], out);
out:
    for (int i = 0; i < N_; i++)
        cg_tensor_release(t[i]);
    return st;
}

/* The whole call: batchify, checks, the (real or complex) convolution,
 * squeeze. */
static cg_status convolution(bool transposed, cg_tensor *input,
                             cg_tensor *weight, cg_tensor *bias,
                             const cg_ints *stride, const cg_ints *padding,
                             const cg_ints *output_padding, int64_t groups,
                             const cg_ints *dilation, cg_tensor **out)
{
    const char *fname = transposed ? "conv_transpose3d" : "conv3d";
    cg_status st;
    if (!input)
        return cg__error_null("input");
    if (!weight)
        return cg__error_null("weight");
    if (!out)
        return cg__error_null("out");
    if ((st = check_ints(stride, "stride")) != CG_OK ||
        (st = check_ints(padding, "padding")) != CG_OK ||
        (st = check_ints(output_padding, "output_padding")) != CG_OK ||
        (st = check_ints(dilation, "dilation")) != CG_OK)
        return st;
    /* batchify */
    bool batched = input->ndim == 5;
    if (!batched && input->ndim != 4) {
        char buf[512];
        return cg__error(
            CG_ERR_RUNTIME,
            "Expected 4D (unbatched) or 5D (batched) input to "
            "%s, but got input of size: %s",
            fname,
            cg__format_shape(input->shape, input->ndim, buf, sizeof buf));
    }
    int64_t xs[5] = {1};
    memcpy(xs + (batched ? 0 : 1), input->shape,
           (size_t)input->ndim * sizeof *xs);
    bool cplx = cg_dtype_is_complex(input->dtype);
    if (cplx &&
        (st = check_complex_types(transposed, input, weight, bias)) != CG_OK)
        return st;
    conv_plan pl = {.fname = fname, .transposed = transposed};
    if ((st = plan_conv(&pl, xs, input->dtype, weight, bias, stride, padding,
                        output_padding, groups, dilation)) != CG_OK)
        return st;

    cg_tensor *x5 = NULL, *y5 = NULL;
    if (batched)
        x5 = cg_tensor_retain(input);
    else if ((st = cg_tensor_unsqueeze(input, 0, &x5)) != CG_OK)
        return st;
    st = cplx ? conv_complex(&pl, x5, weight, bias, &y5)
              : conv_run(&pl, x5, weight, bias, &y5);
    cg_tensor_release(x5);
    if (st != CG_OK)
        return st;
    if (batched) {
        *out = y5;
        return CG_OK;
    }
    st = cg_tensor_squeeze_dim(y5, 0, out);
    cg_tensor_release(y5);
    return st;
}

cg_status cg_conv_transpose3d(cg_tensor *input, cg_tensor *weight,
                              cg_tensor *bias, cg_ints stride, cg_ints padding,
                              cg_ints output_padding, int64_t groups,
                              cg_ints dilation, cg_tensor **out)
{
    return convolution(true, input, weight, bias, &stride, &padding,
                       &output_padding, groups, &dilation, out);
}

cg_status cg_conv3d(cg_tensor *input, cg_tensor *weight, cg_tensor *bias,
                    cg_ints stride, cg_ints padding, cg_ints dilation,
                    int64_t groups, cg_tensor **out)
{
    /* F.conv3d passes output_padding [0, 0, 0] to at::convolution */
    cg_ints no_output_padding = CG_INT3(0);
    return convolution(false, input, weight, bias, &stride, &padding,
                       &no_output_padding, groups, &dilation, out);
}
