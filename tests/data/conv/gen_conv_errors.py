#!/usr/bin/env python3
"""Reference data for cgrad's functional convolutions (tests/test_convolution.c).

Run with the PyTorch the data must mirror (PyTorch 1.13.1, Debian's
python3-torch, x86-64; needs numpy):

    /usr/bin/python3 tests/data/conv/gen_conv_errors.py [output_dir]

(default output_dir: the folder holding this script).  It writes:

errors.tsv
    One row per argument check of F.conv_transpose3d, F.conv3d and (rows
    F1-F3 of CONV_TRANSPOSE3D.md) nn.ConvTranspose3d.forward, with the
    arguments and what PyTorch did: the exception class and its exact
    message, or "OK" and the result's shape and dtype.  Columns:
        id  func  input_shape input_dtype  weight_shape weight_dtype
        bias_shape bias_dtype  stride padding output_padding groups dilation
        output_size padding_mode  exception  message
    func is conv_transpose3d, conv3d or module.  Shapes are Python lists,
    "-" means None; stride ... dilation are an int (expanded to a triple)
    or a list (kept as given, any length).  For module rows the weight/bias
    shapes are the module's parameters and stride ... dilation its
    attributes as given to the constructor.  Tensor values do not matter
    for any row; each test builds its own.

    conv3d rows are produced with torch.backends.mkldnn disabled: 1.13
    sends float32 conv3d to oneDNN, whose messages for three checks
    (dilation, dtype, zero kernel) differ from the portable kernels' that
    float64 uses; cgrad follows the portable kernels for every dtype.

conv3d/cases.tsv, conv3d/<case>/*.npy
    F.conv3d forward and backward for a few configurations (float32,
    float64, complex64): input, weight, bias (if any), grad_output, output,
    grad_input, grad_weight, grad_bias, from torch.manual_seed(seed) and
    randn in that order.

complex/cases.tsv, complex/<case>/*.npy
    Complex F.conv_transpose3d forward and backward.  1.13 cannot run it
    ("slow_conv_transpose3d_out_cpu" not implemented for 'ComplexFloat'),
    so, as in seed_walkthrough.py, it is evaluated with PyTorch 2.x's
    decomposition into three real convolutions with 1.13's real kernel,
    under autograd:  a = conv(xr, Wr, br); b = conv(xi, Wi); c = conv(xr +
    xi, Wr + Wi, br + bi); out = a - b + 1j * (c - a - b).  complex_seed is
    the seed document's complex64 example (weight and bias of
    nn.ConvTranspose3d(1, 3, 1, dtype=torch.complex64) after
    torch.manual_seed(42)); its complex_seed/output_repr.txt is repr(output),
    checked against tests/data/seed_walkthrough.expected.txt when present.

One thread everywhere (torch.set_num_threads(1), and OpenBLAS/OpenMP/MKL
limited to one thread before torch loads) keeps summation orders, so the
last bits of every fixture, the same from run to run.  The BLAS matters
too: Debian's torch calls whatever libblas.so.3 the alternatives system
selects, and OpenBLAS picks its GEMM kernel by CPU, so its float bits
differ from machine to machine.  The fixtures are made with the reference
BLAS (libblas3), as tests/data/golden is, which makes them reproducible and
lets the test hold the complex outputs to PyTorch's bits:

    LD_PRELOAD=/usr/lib/x86_64-linux-gnu/blas/libblas.so.3 \
        /usr/bin/python3 tests/data/conv/gen_conv_errors.py
The script checks its own fixtures (the complex decomposition against a
float64 direct evaluation) before writing.
"""

import os
import sys

for _var in ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS"):
    os.environ[_var] = "1"

import numpy as np  # noqa: E402 -- after the thread settings
import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402
from torch import nn  # noqa: E402

DTYPES = {
    "float32": torch.float32,
    "float64": torch.float64,
    "complex64": torch.complex64,
    "complex128": torch.complex128,
}
DTYPE_NAMES = {v: k for k, v in DTYPES.items()}


def fmt(v):
    if v is None:
        return "-"
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(str(int(e)) for e in v) + "]"
    return str(int(v))


# ---------------------------------------------------------------------------
# argument checks

ROWS = []


def row(id_, func, x, w, b=None, stride=1, padding=0, output_padding=0,
        groups=1, dilation=1, output_size=None, padding_mode="zeros"):
    """x, w, b: (shape, dtype name) or None (bias only)."""
    ROWS.append(dict(id=id_, func=func, x=x, w=w, b=b, stride=stride,
                     padding=padding, output_padding=output_padding,
                     groups=groups, dilation=dilation,
                     output_size=output_size, padding_mode=padding_mode))


def T(shape, dt="float32"):
    return (list(shape), dt)


X5 = T([2, 4, 5, 5, 5])
W = T([4, 6, 3, 3, 3])
B = T([6])
ct = "conv_transpose3d"

# F4: batchify
row("F4_3d", ct, T([4, 5, 5]), W)
row("F4_0d", ct, T([]), W)
row("F4_6d", ct, T([1, 2, 4, 5, 5, 5]), W)
row("F4_before_groups", ct, T([4, 5]), W, groups=0)
# _convolution: weight dims, groups, parameter lengths
row("W_2d", ct, X5, T([4, 6]))
row("W_2d_before_groups", ct, X5, T([4, 6]), groups=0)
row("W_3d_stride", ct, X5, T([4, 6, 3]))
row("W_3d_dims", ct, X5, T([4, 6, 3]), stride=[1], padding=[0],
    output_padding=[0], dilation=[1])
row("W_4d_dims", ct, X5, T([4, 6, 3, 3]), stride=[1, 1], padding=[0, 0],
    output_padding=[0, 0], dilation=[1, 1])
row("W_6d_dims", ct, X5, T([4, 6, 3, 3, 3, 3]), stride=[1] * 4,
    padding=[0] * 4, output_padding=[0] * 4, dilation=[1] * 4)
row("F5_groups0", ct, X5, W, B, groups=0)
row("F5_groups_neg", ct, X5, W, B, groups=-1, stride=[1, 1])
row("F6_stride2", ct, X5, W, B, stride=[1, 1])
row("F6_stride_empty", ct, X5, W, B, stride=[])
row("F6_stride4", ct, X5, W, B, stride=[1, 1, 1, 1])
row("F6_stride1_ok", ct, X5, W, B, stride=[2])
row("F6_padding", ct, X5, W, B, padding=[1, 1])
row("F6_dilation", ct, X5, W, B, dilation=[1, 1], output_padding=[1, 1])
row("F6_output_padding", ct, X5, W, B, output_padding=[1, 1])
row("F6_stride_before_padding", ct, X5, W, B, stride=[1, 1], padding=[1, 1])
# check_shape_forward
row("F7_padding", ct, X5, W, B, padding=-1, output_padding=-1, stride=0)
row("F7_one_axis", ct, X5, W, B, padding=[0, 0, -2])
row("F8_output_padding", ct, X5, W, B, output_padding=-1, stride=0)
row("F9_stride0", ct, X5, W, B, stride=0, dilation=0)
row("F9_stride_neg", ct, X5, W, B, stride=[1, -1, 1])
row("F10_weight0", ct, X5, T([0, 6, 3, 3, 3]))
row("F10_groups2", ct, X5, T([1, 6, 3, 3, 3]), groups=2)
row("F11_groups3", ct, X5, W, groups=3)
row("F12_batched", ct, T([2, 3, 5, 5, 5]), W)
row("F12_unbatched", ct, T([3, 5, 5, 5]), W)
row("F12_groups", ct, T([2, 3, 5, 5, 5]), T([4, 3, 3, 3, 3]), groups=2)
row("F13_bias5", ct, X5, W, T([5]))
row("F13_bias2d", ct, X5, W, T([6, 1]))
row("F13_bias0d", ct, X5, W, T([]))
row("F13_groups", ct, X5, W, T([6]), groups=2)
row("F13_before_F14", ct, T([0, 4, 5, 5, 5]), W, T([0]))
# F14: zero batch, the empty result and the errors on its way
row("F14_ok", ct, T([0, 4, 5, 5, 5]), W, B)
row("F14_unbatched_channels", ct, T([0, 5, 5, 5]), W, B)
row("F14_stride", ct, T([0, 4, 5, 5, 5]), W, B, stride=2, output_padding=7)
row("F14_groups", ct, T([0, 4, 5, 5, 5]), T([4, 3, 3, 3, 3]), T([6]),
    groups=2, dilation=0)
row("F14_weight_f64", ct, T([0, 4, 5, 5, 5]), T([4, 6, 3, 3, 3], "float64"),
    B)
row("F14_input_f64", ct, T([0, 4, 5, 5, 5], "float64"), W, B)
row("F14_weight_c128", ct, T([0, 4, 5, 5, 5]), T([4, 6, 3, 3, 3],
                                                  "complex128"), B)
row("F14_weight_c64_f64", ct, T([0, 4, 5, 5, 5], "float64"),
    T([4, 3, 3, 3, 3], "complex64"), T([6], "complex128"), groups=2)
row("F14_bias_complex", ct, T([0, 4, 5, 5, 5]), W, T([6], "complex128"))
row("F14_bias_c64_f64", ct, T([0, 4, 5, 5, 5], "float64"), W,
    T([6], "complex64"))
row("F14_kernel0", ct, T([0, 4, 5, 5, 5]), T([4, 6, 0, 3, 3]), B)
row("F14_zero_size", ct, T([0, 4, 5, 5, 5]), W, B, padding=[3, 3, 3])
row("F14_negative", ct, T([0, 4, 5, 5, 5]), W, B, padding=6)
row("F14_minus_one", ct, T([0, 4, 5, 5, 5]), W, B, padding=[3, 4, 3])
row("F14_minus_one_then_negative", ct, T([0, 4, 5, 5, 5]), W, B,
    padding=[3, 4, 9])
row("F14_two_minus_one", ct, T([0, 4, 5, 5, 5]), W, B, padding=[4, 4, 3])
# F15
row("F15_spatial0", ct, T([1, 4, 0, 5, 5]), W, B)
row("F15_unbatched", ct, T([4, 5, 0, 5]), W, B)
row("F15_before_F16", ct, T([1, 4, 5, 5, 0]), W, B, dilation=0)
# the kernel's checks
row("F16_dilation0", ct, X5, W, B, dilation=0)
row("F16_mixed", ct, X5, W, B, dilation=[0, 1, 2])
row("F16_negative", ct, X5, W, B, dilation=-1)
row("F16_before_F17", ct, X5, W, B, dilation=[1, 1, -1], output_padding=3)
row("F17_s1_d1", ct, X5, W, B, output_padding=1)
row("F17_one_axis", ct, X5, W, B, output_padding=[0, 1, 0],
    dilation=[1, 1, 2])
row("F17_s2_d2", ct, X5, W, B, output_padding=2, stride=2, dilation=2)
row("F17_groups", ct, T([2, 4, 5, 5, 5]), T([4, 2, 3, 3, 3]), T([4]),
    groups=2, output_padding=1)
row("F17_ok_d", ct, X5, W, B, output_padding=1, dilation=2)
row("F17_before_F18", ct, X5, T([4, 6, 0, 3, 3]), B, output_padding=1)
row("F18_kernel0", ct, X5, T([4, 6, 0, 0, 0]), B)
row("F18_groups", ct, X5, T([4, 3, 0, 3, 3]), groups=2)
row("F18_out_channels0", ct, X5, T([4, 0, 3, 3, 3]), T([0]))
row("F18_before_F19", ct, X5, T([4, 6, 0, 3, 3]), B, padding=5)
row("F18_before_F20", ct, X5, T([4, 6, 0, 3, 3], "float64"), B)
row("F19_small", ct, X5, W, B, padding=4)
row("F19_mixed", ct, X5, W, B, padding=[1, 2, 4])
row("F19_ok_one", ct, X5, W, B, padding=3)
row("F19_before_F20", ct, X5, W, T([6], "float64"), padding=5)
row("F19_unbatched", ct, T([4, 5, 5, 5]), W, B, padding=[4, 0, 0])
row("F20_input_f64", ct, T([2, 4, 5, 5, 5], "float64"), W, B)
row("F20_weight_f64", ct, X5, T([4, 6, 3, 3, 3], "float64"), B)
row("F20_bias_f64", ct, X5, W, T([6], "float64"))
row("F20_input_weight_f64", ct, T([2, 4, 5, 5, 5], "float64"),
    T([4, 6, 3, 3, 3], "float64"), B)
row("F20_weight_c64", ct, X5, T([4, 6, 3, 3, 3], "complex64"), B)
row("F20_bias_c64", ct, X5, W, T([6], "complex64"))
row("F20_weight_first", ct, X5, T([4, 6, 3, 3, 3], "complex64"),
    T([6], "float64"))
row("F20_unbatched", ct, T([4, 5, 5, 5], "float64"), W)
row("OK_groups_op_d", ct, T([1, 4, 3, 3, 3]), T([4, 2, 3, 3, 3]), T([4]),
    groups=2, output_padding=[1, 0, 1], dilation=2, stride=[1, 2, 1],
    padding=[0, 1, 2])

# conv3d (the adjoint): its own checks, 1.13 portable-kernel wording
c3 = "conv3d"
Z = T([2, 6, 7, 7, 7])
V = T([4, 3, 3, 3, 3])
row("C3_3d", c3, T([6, 7, 7]), V)
row("C3_W_2d", c3, Z, T([4, 3]))
row("C3_groups0", c3, Z, V, groups=0)
row("C3_stride2", c3, Z, V, stride=[1, 1], groups=2)
row("C3_padding2", c3, Z, V, padding=[1, 1], groups=2)
row("C3_dilation2", c3, Z, V, dilation=[1, 1], groups=2)
row("C3_output_padding", c3, Z, T([4, 3, 3, 3]), stride=[1, 1],
    padding=[0, 0], dilation=[1, 1])
row("C3_W_3d_dims", c3, Z, T([4, 3, 3]), stride=[1], padding=[0],
    dilation=[1])
row("C3_negative_padding", c3, Z, V, padding=-1, stride=0, groups=2)
row("C3_stride0", c3, Z, V, stride=0, groups=2)
row("C3_F10", c3, Z, T([0, 3, 3, 3, 3]))
row("C3_F11", c3, Z, V, groups=3)
row("C3_channels", c3, Z, V)
row("C3_channels_unbatched", c3, T([6, 7, 7, 7]), V)
row("C3_channels_groups", c3, Z, T([4, 2, 3, 3, 3]), groups=2)
row("C3_bias", c3, Z, V, T([5]), groups=2)
row("C3_bias_2d", c3, Z, V, T([4, 1]), groups=2)
row("C3_kernel_too_big", c3, Z, T([4, 3, 9, 3, 3]), groups=2)
row("C3_kernel_too_big_dilated", c3, Z, V, groups=2, dilation=[4, 1, 1])
row("C3_kernel_too_big_padded_ok", c3, Z, T([4, 3, 9, 3, 3]), groups=2,
    padding=[1, 0, 0])
row("C3_zero_batch", c3, T([0, 6, 7, 7, 7]), V, groups=2)
row("C3_zero_batch_dilation_neg", c3, T([0, 6, 7, 7, 7]), V, groups=2,
    dilation=-2)
row("C3_zero_batch_kernel0", c3, T([0, 6, 7, 7, 7]), T([4, 3, 0, 3, 3]),
    groups=2)
row("C3_zero_batch_bias_complex", c3, T([0, 6, 7, 7, 7]), V,
    T([4], "complex128"), groups=2)
row("C3_zero_channels", c3, T([2, 0, 7, 7, 7]), T([4, 0, 3, 3, 3]),
    groups=2)
row("C3_zero_channels_f64_weight", c3, T([2, 0, 7, 7, 7]),
    T([4, 0, 3, 3, 3], "float64"), T([4]), groups=2)
row("C3_zero_channels_bias_complex", c3, T([2, 0, 7, 7, 7]),
    T([4, 0, 3, 3, 3]), T([4], "complex128"), groups=2)
row("C3_F15", c3, T([1, 6, 0, 7, 7]), T([4, 3, 1, 3, 3]), groups=2,
    padding=1)
row("C3_padded_zero", c3, T([1, 6, 0, 7, 7]), V, groups=2)
row("C3_dilation0", c3, Z, V, groups=2, dilation=0)
row("C3_dilation_mixed", c3, Z, V, groups=2, dilation=[0, 1, 1])
row("C3_dilation_neg", c3, Z, V, groups=2, dilation=[1, 1, -1])
row("C3_kernel0", c3, Z, T([4, 3, 0, 3, 3]), groups=2)
row("C3_kernel0_dilated", c3, Z, T([4, 3, 0, 3, 3]), groups=2, dilation=2)
row("C3_kernel0_before_dilation", c3, Z, T([4, 3, 0, 3, 3]), groups=2,
    dilation=0)
row("C3_weight_f64", c3, Z, T([4, 3, 3, 3, 3], "float64"), groups=2)
row("C3_input_f64", c3, T([2, 6, 7, 7, 7], "float64"), V, groups=2)
row("C3_weight_f64_dilated", c3, Z, T([4, 3, 3, 3, 3], "float64"),
    groups=2, dilation=2)
row("C3_bias_f64_ok", c3, Z, V, T([4], "float64"), groups=2)
row("C3_bias_f32_ok", c3, T([2, 6, 7, 7, 7], "float64"),
    T([4, 3, 3, 3, 3], "float64"), T([4]), groups=2)
row("C3_weight_complex", c3, Z, T([4, 3, 3, 3, 3], "complex64"), groups=2)
row("C3_complex_real_weight", c3, T([2, 6, 7, 7, 7], "complex64"), V,
    groups=2)
row("C3_complex_before_groups", c3, T([2, 6, 7, 7, 7], "complex64"), V,
    groups=0)
row("C3_complex_c128_weight", c3, T([2, 6, 7, 7, 7], "complex64"),
    T([4, 3, 3, 3, 3], "complex128"), groups=2)
row("C3_complex128_f64_weight", c3, T([2, 6, 7, 7, 7], "complex128"),
    T([4, 3, 3, 3, 3], "float64"), groups=2)
row("C3_complex_real_bias", c3, T([2, 6, 7, 7, 7], "complex64"),
    T([4, 3, 3, 3, 3], "complex64"), T([4]), groups=2)
row("C3_complex_c128_bias", c3, T([2, 6, 7, 7, 7], "complex64"),
    T([4, 3, 3, 3, 3], "complex64"), T([4], "complex128"), groups=2)
row("C3_complex_ok", c3, T([2, 6, 7, 7, 7], "complex64"),
    T([4, 3, 3, 3, 3], "complex64"), T([4], "complex64"), groups=2)
row("C3_complex_groups0", c3, T([2, 6, 7, 7, 7], "complex64"),
    T([4, 3, 3, 3, 3], "complex64"), groups=0)
row("C3_complex_zero_batch", c3, T([0, 6, 7, 7, 7], "complex64"),
    T([4, 3, 3, 3, 3], "complex64"), T([4], "complex64"), groups=2)
row("C3_complex_unbatched_3d", c3, T([7, 7, 7], "complex64"), V)
row("C3_ok_strided", c3, T([1, 4, 7, 8, 6]), T([6, 2, 3, 2, 3]), T([6]),
    groups=2, stride=[2, 1, 2], padding=[1, 0, 2], dilation=[2, 1, 1])

# nn.ConvTranspose3d.forward: F1-F3 (module-level, before the functional
# checks). weight/bias/stride/... describe the module.
md = "module"
MW = T([4, 6, 3, 3, 3])
row("F1_padding_mode", md, X5, MW, B, padding_mode="reflect")
row("F1_before_F2", md, X5, MW, B, padding_mode="circular",
    output_size=[1, 2])
row("F2_batched", md, X5, MW, B, output_size=[1, 2])
row("F2_unbatched", md, T([4, 5, 5, 5]), MW, B, output_size=[1, 2])
row("F2_3d_input", md, T([5, 5, 5]), MW, B, output_size=[13, 11, 11, 4, 4])
row("F2_empty", md, X5, MW, B, output_size=[])
row("F3_batched", md, X5, MW, B, output_size=[13, 11, 11])
row("F3_batched_5", md, X5, MW, B, output_size=[9, 9, 13, 11, 11])
row("F3_unbatched", md, T([4, 2, 2, 2]), MW, B, output_size=[13, 11, 11])
row("F3_unbatched_4", md, T([4, 2, 2, 2]), MW, B, output_size=[9, 6, 4, 4])
row("F3_stride2_low", md, X5, MW, B, stride=2, output_size=[10, 11, 11])
row("F3_stride2_high", md, X5, MW, B, stride=2, output_size=[11, 11, 13])
row("F3_6d_input", md, T([1, 1, 4, 5, 5, 5]), MW, B, output_size=[7, 7, 7])
row("F3_negative_stride", md, X5, MW, B, stride=-1, output_size=[7, 7, 7])
row("F3_3d_input_index", md, T([5, 5, 5]), MW, B, output_size=[13, 11, 11])
row("F3_2d_input_index", md, T([5, 5]), MW, B, output_size=[13, 11, 11])
row("F3_0d_input_index", md, T([]), MW, B, output_size=[13, 11, 11])
row("F3_short_stride", md, X5, MW, B, stride=[1, 1], output_size=[7, 7, 7])
row("F3_short_kernel", md, X5, T([4, 6, 3]), B, output_size=[7, 7, 7])
row("F3_ok_low", md, X5, MW, B, stride=2, output_size=[11, 11, 11])
row("F3_ok_high", md, X5, MW, B, stride=2, output_size=[1, 1, 12, 11, 12])
row("F3_ok_unbatched", md, T([4, 5, 5, 5]), MW, B, stride=[3, 2, 1],
    padding=1, output_size=[13, 10, 5])
row("F3_ok_replaces_op", md, X5, MW, B, stride=2, output_padding=1,
    output_size=[11, 11, 11])
row("F3_ok_then_F12", md, T([2, 3, 5, 5, 5]), MW, B, stride=2,
    output_size=[12, 11, 11])
row("F3_none_then_F17", md, X5, MW, B, output_padding=1)
row("F3_short_stride_no_size", md, X5, MW, B, stride=[1, 1])


def make(spec, requires_grad=False):
    if spec is None:
        return None
    shape, dt = spec
    return torch.randn(shape, dtype=DTYPES[dt])


def run_row(r):
    x, w, b = make(r["x"]), make(r["w"]), make(r["b"])
    if r["func"] == ct:
        return F.conv_transpose3d(x, w, b, r["stride"], r["padding"],
                                  r["output_padding"], r["groups"],
                                  r["dilation"])
    if r["func"] == c3:
        with torch.backends.mkldnn.flags(enabled=False):
            return F.conv3d(x, w, b, r["stride"], r["padding"],
                            r["dilation"], r["groups"])
    # module: built from the row, then its parameters replaced by w, b
    wshape = r["w"][0]
    m = nn.ConvTranspose3d(wshape[0], wshape[1] * r["groups"],
                           list(wshape[2:]), stride=r["stride"], padding=r["padding"],
                           output_padding=r["output_padding"],
                           groups=r["groups"], bias=b is not None,
                           dilation=r["dilation"],
                           dtype=DTYPES[r["w"][1]])
    m.padding_mode = r["padding_mode"]
    return m(x, output_size=r["output_size"])


def gen_errors(out_dir):
    torch.manual_seed(0)
    header = ["id", "func", "input_shape", "input_dtype", "weight_shape",
              "weight_dtype", "bias_shape", "bias_dtype", "stride", "padding",
              "output_padding", "groups", "dilation", "output_size",
              "padding_mode", "exception", "message"]
    lines = ["\t".join(header)]
    seen = set()
    for r in ROWS:
        assert r["id"] not in seen, r["id"]
        seen.add(r["id"])
        try:
            y = run_row(r)
            exc, msg = "OK", "shape=%s dtype=%s" % (
                fmt(list(y.shape)), DTYPE_NAMES[y.dtype])
        except Exception as e:  # noqa: BLE001 -- recording whatever torch says
            exc, msg = type(e).__name__, str(e)
        assert "\t" not in msg and "\n" not in msg, (r["id"], msg)
        b = r["b"]
        fields = [r["id"], r["func"], fmt(r["x"][0]), r["x"][1],
                  fmt(r["w"][0]), r["w"][1],
                  fmt(b[0]) if b else "-", b[1] if b else "-",
                  fmt(r["stride"]), fmt(r["padding"]),
                  "-" if r["func"] == c3 else fmt(r["output_padding"]),
                  str(r["groups"]), fmt(r["dilation"]),
                  fmt(r["output_size"]), r["padding_mode"], exc, msg]
        lines.append("\t".join(fields))
    with open(os.path.join(out_dir, "errors.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(ROWS)


# ---------------------------------------------------------------------------
# conv3d fixtures

CONV3D_CASES = [
    # name, seed, dtype, input shape, weight shape, bias, stride, padding,
    # dilation, groups
    ("basic_f32", 1, "float32", [2, 4, 6, 6, 6], [6, 4, 3, 3, 3], True,
     [1, 1, 1], [0, 0, 0], [1, 1, 1], 1),
    ("mixed_g2_f32", 2, "float32", [1, 4, 7, 8, 6], [6, 2, 3, 2, 3], True,
     [2, 1, 2], [1, 0, 2], [2, 1, 1], 2),
    ("crop_s3_f64", 3, "float64", [1, 2, 8, 8, 8], [3, 2, 3, 3, 3], True,
     [3, 3, 3], [1, 1, 1], [1, 1, 1], 1),
    ("unbatched_nobias_f64", 4, "float64", [3, 5, 5, 5], [2, 3, 2, 2, 2],
     False, [2, 2, 2], [0, 0, 0], [1, 1, 1], 1),
    ("depthwise_d2_f64", 5, "float64", [2, 3, 7, 6, 5], [6, 1, 2, 3, 2],
     True, [1, 2, 1], [2, 1, 0], [2, 2, 3], 3),
    ("complex_c64", 6, "complex64", [1, 2, 4, 5, 4], [4, 1, 2, 2, 3], True,
     [1, 2, 1], [1, 0, 1], [1, 1, 2], 2),
]


def save(d, name, t):
    np.save(os.path.join(d, name + ".npy"), t.detach().numpy())


def gen_conv3d(out_dir):
    root = os.path.join(out_dir, "conv3d")
    os.makedirs(root, exist_ok=True)
    lines = ["name\tseed\tdtype\tinput_shape\tweight_shape\tbias\tstride\t"
             "padding\tdilation\tgroups\toutput_shape\tgrad_fn"]
    for (name, seed, dt, xs, ws, has_b, s, p, d, g) in CONV3D_CASES:
        torch.manual_seed(seed)
        dtype = DTYPES[dt]
        x = torch.randn(xs, dtype=dtype, requires_grad=True)
        w = torch.randn(ws, dtype=dtype, requires_grad=True)
        b = torch.randn(ws[0], dtype=dtype, requires_grad=True) if has_b \
            else None
        y = F.conv3d(x, w, b, s, p, d, g)
        gy = torch.randn(y.shape, dtype=dtype)
        y.backward(gy)
        cd = os.path.join(root, name)
        os.makedirs(cd, exist_ok=True)
        for n, t in (("input", x), ("weight", w), ("grad_output", gy),
                     ("output", y), ("grad_input", x.grad),
                     ("grad_weight", w.grad)):
            save(cd, n, t)
        if has_b:
            save(cd, "bias", b)
            save(cd, "grad_bias", b.grad)
        lines.append("\t".join([name, str(seed), dt, fmt(xs), fmt(ws),
                                "1" if has_b else "0", fmt(s), fmt(p),
                                fmt(d), str(g), fmt(list(y.shape)),
                                type(y.grad_fn).__name__]))
    with open(os.path.join(root, "cases.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(CONV3D_CASES)


# ---------------------------------------------------------------------------
# complex conv_transpose3d fixtures (the decomposition of PyTorch 2.x)

def gauss(x, w, b, **args):
    x_re, x_im = x.real, x.imag
    w_re, w_im = w.real, w.imag
    if b is None:
        a = F.conv_transpose3d(x_re, w_re, None, **args)
        b_ = F.conv_transpose3d(x_im, w_im, None, **args)
        c = F.conv_transpose3d(x_re + x_im, w_re + w_im, None, **args)
    else:
        b_re, b_im = b.real, b.imag
        a = F.conv_transpose3d(x_re, w_re, b_re, **args)
        b_ = F.conv_transpose3d(x_im, w_im, None, **args)
        c = F.conv_transpose3d(x_re + x_im, w_re + w_im, b_re + b_im, **args)
    return a - b_ + 1j * (c - a - b_)


def direct(x, w, b, stride, padding, output_padding, groups, dilation):
    """Complex transposed convolution as real and imaginary real parts, in
    float64, by the plain formula."""
    args = dict(stride=stride, padding=padding, output_padding=output_padding,
                groups=groups, dilation=dilation)
    xr, xi = x.real.double(), x.imag.double()
    wr, wi = w.real.double(), w.imag.double()
    re = F.conv_transpose3d(xr, wr, None, **args) - \
        F.conv_transpose3d(xi, wi, None, **args)
    im = F.conv_transpose3d(xr, wi, None, **args) + \
        F.conv_transpose3d(xi, wr, None, **args)
    if b is not None:
        re = re + b.real.double().view(1, -1, 1, 1, 1)
        im = im + b.imag.double().view(1, -1, 1, 1, 1)
    return torch.complex(re, im)


COMPLEX_CASES = [
    # name, seed, dtype, input shape, in, out, kernel, stride, padding,
    # output_padding, groups, dilation, bias
    ("complex_seed", 42, "complex64", [1, 1, 2, 3, 1], 1, 3, [1, 1, 1],
     [1, 1, 1], [0, 0, 0], [0, 0, 0], 1, [1, 1, 1], True),
    ("complex_mixed_c64", 7, "complex64", [2, 4, 3, 2, 3], 4, 6, [2, 3, 2],
     [2, 1, 2], [1, 1, 0], [1, 0, 1], 2, [1, 2, 1], True),
    ("complex_unbatched_c128", 8, "complex128", [2, 3, 3, 2], 2, 2,
     [3, 2, 2], [1, 2, 3], [1, 0, 1], [0, 1, 2], 1, [2, 1, 1], False),
]


def write_seed_repr(cd, y):
    """repr(y) of the seed example, which must be what the seed walkthrough
    (tests/data/seed_walkthrough.expected.txt, when present) shows."""
    text = repr(y)
    walk = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                        "seed_walkthrough.expected.txt")
    if os.path.exists(walk):
        with open(walk) as f:
            lines = f.read().split("\n")
        i = lines.index(">>> convtran3d = nn.ConvTranspose3d(in_channels=1, "
                        "out_channels=3, kernel_size=1, "
                        "dtype=torch.complex64)")
        assert lines[i + 1] == ">>> convtran3d(input=my_tensor)"
        j = i + 2
        while not lines[j].startswith(">>> "):
            j += 1
        assert "\n".join(lines[i + 2:j]) == text, "seed repr differs"
    with open(os.path.join(cd, "output_repr.txt"), "w") as f:
        f.write(text + "\n")


def gen_complex(out_dir):
    root = os.path.join(out_dir, "complex")
    os.makedirs(root, exist_ok=True)
    lines = ["name\tseed\tdtype\tinput_shape\tweight_shape\tbias\tstride\t"
             "padding\toutput_padding\tgroups\tdilation\toutput_shape\t"
             "grad_fn"]
    for (name, seed, dt, xs, cin, cout, k, s, p, op, g, d, has_b) in \
            COMPLEX_CASES:
        dtype = DTYPES[dt]
        torch.manual_seed(seed)
        m = nn.ConvTranspose3d(cin, cout, k, stride=s, padding=p,
                               output_padding=op, groups=g, bias=has_b,
                               dilation=d, dtype=dtype)
        w = m.weight.detach().clone().requires_grad_()
        b = m.bias.detach().clone().requires_grad_() if has_b else None
        if name == "complex_seed":
            x = torch.tensor([[[[[8. + 0.j], [-3. + 0.j], [0. + 0.j]],
                                [[1. + 0.j], [5. + 0.j], [-2. + 0.j]]]]],
                             dtype=dtype)
        else:
            x = torch.randn(xs, dtype=dtype)
        x.requires_grad_()
        batched = x.dim() == 5
        args = dict(stride=s, padding=p, output_padding=op, groups=g,
                    dilation=d)
        y = gauss(x if batched else x.unsqueeze(0), w, b, **args)
        if not batched:
            y = y.squeeze(0)
        ref = direct(x if batched else x.unsqueeze(0), w, b, **args)
        if not batched:
            ref = ref.squeeze(0)
        tol = 1e-5 if dtype == torch.complex64 else 1e-12
        err = (y.detach().to(torch.complex128) - ref).abs().max().item()
        scale = max(1.0, ref.abs().max().item())
        assert err <= tol * scale, (name, err)
        gy = torch.randn(y.shape, dtype=dtype)
        y.backward(gy)
        cd = os.path.join(root, name)
        os.makedirs(cd, exist_ok=True)
        for n, t in (("input", x), ("weight", w), ("grad_output", gy),
                     ("output", y), ("grad_input", x.grad),
                     ("grad_weight", w.grad)):
            save(cd, n, t)
        if has_b:
            save(cd, "bias", b)
            save(cd, "grad_bias", b.grad)
        if name == "complex_seed":
            write_seed_repr(cd, y)
        lines.append("\t".join([name, str(seed), dt, fmt(xs),
                                fmt(list(w.shape)), "1" if has_b else "0",
                                fmt(s), fmt(p), fmt(op), str(g), fmt(d),
                                fmt(list(y.shape)),
                                type(y.grad_fn).__name__]))
    with open(os.path.join(root, "cases.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")
    return len(COMPLEX_CASES)


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else \
        os.path.dirname(os.path.abspath(__file__))
    torch.set_num_threads(1)
    print("torch", torch.__version__)
    n = gen_errors(out_dir)
    m = gen_conv3d(out_dir)
    c = gen_complex(out_dir)
    with open(os.path.join(out_dir, "VERSION.txt"), "w") as f:
        f.write("torch %s, numpy %s\n" % (torch.__version__, np.__version__))
    print("%d check rows, %d conv3d cases, %d complex cases" % (n, m, c))


if __name__ == "__main__":
    main()
