/*
 * conv_internal.h -- what the 3-D convolutions share beyond
 * core/convolution.c: the output-size rules, nn.ConvTranspose3d's
 * output_size handling (for nn/, rows F2/F3 of CONV_TRANSPOSE3D.md), and
 * the portable reference kernels that faster kernels are tested against.
 * Never installed.
 *
 * Letters are PyTorch's: N batch, Cin / Cout channels of the transposed
 * convolution's input / output, G groups, Cig = Cin/G, Cog = Cout/G,
 * D, H, W spatial sizes. Per spatial axis a (0, 1, 2 = depth, height,
 * width): k kernel size, s stride, p padding, op output_padding,
 * d dilation.
 */
#ifndef CGRAD_CONV_INTERNAL_H
#define CGRAD_CONV_INTERNAL_H

#include "tensor_internal.h"

/* ======================================================================
 * Output sizes (int64 arithmetic checked for overflow: false when an
 * intermediate value does not fit, which PyTorch would silently wrap)
 * ====================================================================== */

/** Transposed convolution, one axis:
 *    out = (in - 1)*s - 2*p + d*(k - 1) + op + 1.
 *  The result may be zero or negative (PyTorch reports that later). */
bool cg__ct3d_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t op,
                       int64_t d, int64_t *out);

/** Ordinary convolution (conv3d), one axis, for a padded input at least as
 *  large as the dilated kernel (s > 0):
 *    out = (in + 2*p - (d*(k - 1) + 1)) / s + 1. */
bool cg__conv3d_out_size(int64_t in, int64_t k, int64_t s, int64_t p, int64_t d,
                         int64_t *out);

/** nn.ConvTranspose3d._output_padding (PyTorch 1.13), for the module's
 *  forward(input, output_size):
 *  - output_size NULL (None): *out = output_padding, as stored.
 *  - otherwise output_size may have 3 entries, or 5 (batched) / 4 (other
 *    inputs) whose leading 2 / 1 are dropped unchecked; anything else is
 *    ValueError "ConvTranspose3D: for 5D input, output_size must have 3 or
 *    5 elements (got 2)". For each axis a, min[a] = (in - 1)*s - 2*p +
 *    d*(k - 1) + 1 and max[a] = min[a] + s - 1, with `in` read as
 *    input.size(a + 2) (batched 5-D input) or input.size(a + 1); a request
 *    outside [min, max] is ValueError "requested an output size of
 *    [13, 11, 11], but valid sizes range from [11, 11, 11] to
 *    [12, 12, 12] (for an input of torch.Size([5, 5, 5]))" (the input part
 *    is input.size()[2:], as PyTorch prints it). *out = output_size -
 *    min, which replaces the module's output_padding.
 *  As in Python, a kernel_size / stride / padding / dilation sequence
 *  shorter than 3 entries raises IndexError "tuple index out of range"
 *  while computing min (only then: a wrong length is otherwise reported by
 *  the functional form, F6), and an input of fewer dimensions than read
 *  raises IndexError "Dimension out of range (expected to be in range of
 *  [-3, 2], but got 3)" ("Dimension specified as 1 but tensor has no
 *  dimensions" for a 0-d input). An overflowing size is a RuntimeError.
 *  input_shape: input_ndim sizes. out: written only on success. */
cg_status cg__ct3d_output_padding(const int64_t *input_shape, int input_ndim,
                                  const cg_ints *output_size,
                                  cg_ints kernel_size, cg_ints stride,
                                  cg_ints padding, cg_ints dilation,
                                  cg_ints output_padding, cg_ints *out);

/* ======================================================================
 * Reference kernels
 *
 * Direct summation, written once for float32 and float64 (other dtypes are
 * a RuntimeError "internal error"; complex convolutions are composed of
 * real ones in convolution.c). All buffers are contiguous, row-major
 * (NCDHW). Each kernel writes its whole output (no accumulation into
 * existing values), visits only the taps that land inside the output
 * (valid ranges are computed per axis, never tested tap by tap), and sums
 * in the tensor's own precision: float32 in float32 as PyTorch's float32
 * kernel does, which section 2.4's tolerance covers. Single-threaded.
 * ====================================================================== */

/** The shape of one transposed convolution y = conv_transpose3d(x, w, b):
 *    x (N, Cin, in[0], in[1], in[2])
 *    w (Cin, Cout/G, k[0], k[1], k[2])
 *    b (Cout) or none
 *    y (N, Cout, out[0], out[1], out[2])
 *  Input voxel i and tap t of input channel ci (group g = ci / Cig) add
 *  x[n, ci, i] * w[ci, co', t] into y[n, g*Cog + co', o] with
 *    o[a] = i[a]*s[a] - p[a] + t[a]*d[a],
 *  dropped unless 0 <= o[a] < out[a] on every axis. out is normally
 *  cg__ct3d_out_size(in, k, s, p, op, d) but the kernels take it as given
 *  (conv3d's geometry below has no output_padding of its own). */
typedef struct cg_conv_geom {
    int64_t N;      /* batch */
    int64_t Cin;    /* channels of x, weight.size(0) */
    int64_t Cout;   /* channels of y, weight.size(1) * G */
    int64_t G;      /* groups, > 0, dividing Cin and Cout */
    int64_t in[3];  /* spatial size of x */
    int64_t out[3]; /* spatial size of y */
    int64_t k[3];   /* kernel size, > 0 */
    int64_t s[3];   /* stride, > 0 */
    int64_t p[3];   /* padding, >= 0 */
    int64_t op[3];  /* output_padding (informational) */
    int64_t d[3];   /* dilation, > 0 */
} cg_conv_geom;

/** Forward: y = conv_transpose3d(x, w) + b (b may be NULL; added last, as
 *  PyTorch does). dt: CG_FLOAT32 or CG_FLOAT64. */
cg_status cg__ct3d_ref_forward(const cg_conv_geom *g, cg_dtype dt,
                               const void *x, const void *w, const void *b,
                               void *y);

/** Gradient of the input from gy (N, Cout, out...):
 *    gx[n, ci, i] = sum over co', t with o in range of
 *                   gy[n, g*Cog + co', o] * w[ci, co', t],
 *  i.e. conv3d(gy, w, stride=s, padding=p, dilation=d, groups=G) cropped to
 *  x's spatial size. gx (N, Cin, in...). */
cg_status cg__ct3d_ref_backward_input(const cg_conv_geom *g, cg_dtype dt,
                                      const void *gy, const void *w, void *gx);

/** Gradient of the weight:
 *    gw[ci, co', t] = sum over n, i with o in range of
 *                     x[n, ci, i] * gy[n, g*Cog + co', o].
 *  gw (Cin, Cout/G, k...). */
cg_status cg__ct3d_ref_backward_weight(const cg_conv_geom *g, cg_dtype dt,
                                       const void *x, const void *gy, void *gw);

/** Gradient of the bias: gb[c] = sum over n and out positions of
 *  gy[n, c, .]. gb (Cout). */
cg_status cg__ct3d_ref_backward_bias(const cg_conv_geom *g, cg_dtype dt,
                                     const void *gy, void *gb);

/*
 * conv3d is the adjoint, so it runs on the same kernels. For
 * z = conv3d(u, v, bias, s, p, d, G) with u (N, C, U...), v (K, C/G, k...),
 * z (N, K, Z...), take the geometry of the transposed convolution that maps
 * z's shape back to u's: Cin = K, Cout = C, in = Z, out = U (same k, s, p,
 * d, G). Then
 *    z      = cg__ct3d_ref_backward_input(g, gy = u, w = v)  (+ bias)
 *    grad u = cg__ct3d_ref_forward(g, x = grad z, w = v, b = NULL)
 *    grad v = cg__ct3d_ref_backward_weight(g, x = grad z, gy = u)
 *    grad bias = per-channel sums of grad z.
 */

#endif /* CGRAD_CONV_INTERNAL_H */
