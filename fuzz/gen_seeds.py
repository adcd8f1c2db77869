#!/usr/bin/env python3
"""Writes the hand-made seeds of fuzz/corpus/{print,conv,autograd}: byte
strings laid out as each harness decodes them (see fuzz_<target>.c), so the
fuzzers start from inputs that reach deep: a printed tensor of every dtype,
summarised and permuted; Conv3d / ConvTranspose3d layers with strides,
padding, groups and dilation; small expression graphs. The npy and
safetensors corpora are copies of tests/data/npy/*.npy and
tests/data/nn/safetensors/*.safetensors. Run: python3 fuzz/gen_seeds.py"""
import os
import struct

HERE = os.path.dirname(os.path.abspath(__file__))


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, name), "wb") as f:
        f.write(bytes(data))


# ---- print: dtype, rank, big, dims, nvals-1, values, flags, nviews, views
def special(i):
    return [0, i]


def i8(v):
    return [1, v & 0xFF]


def raw64(x):
    return [3] + list(struct.pack("<d", x))


def raw32(x):
    return [3] + list(struct.pack("<f", x))


def pr(dtype, dims, values, flags=0, views=(), big=False):
    out = [dtype, len(dims), 0 if big else 1]
    for i, d in enumerate(dims):
        if big and i == 0:
            out += [0] + list(struct.pack("<H", d - 1))
        else:
            out += [d - 1 if big else d]
    out += [len(values) - 1]
    for v in values:
        out += v
    out += [flags, len(views)]
    for v in views:
        out += v
    return out


write("print", "f32_2x3_mixed", pr(0, [2, 3], [i8(1), i8(-2), special(2), special(3), raw32(0.125)]))
write("print", "f64_scalar_nan", pr(1, [], [special(2)]))
write("print", "f64_sci", pr(1, [3], [raw64(1e-8), raw64(12345.678), special(1)]))
write("print", "c64_2x2", pr(2, [2, 2], [i8(1), special(3), raw32(-0.5), special(4)]))
write("print", "c128_vec", pr(3, [4], [raw64(1e10), raw64(-1e-10), i8(7)]))
write("print", "f32_summarised", pr(0, [1100], [i8(1), i8(-3), raw32(0.5)], big=True))
write("print", "f64_summarised_2d", pr(1, [40, 30], [raw64(1.5), i8(2)], big=True))
write("print", "f32_empty", pr(0, [0, 3], [i8(0)]))
# rank 4, requires grad, permute then slice with step
write("print", "f64_4d_views", pr(1, [2, 3, 2, 4], [i8(1), i8(2), raw64(0.25)],
                                  flags=1, views=[[1, 0, 2, 1], [0, 2, 1, 0, 0, 2]]))
write("print", "f32_parameter", pr(0, [3, 1], [i8(5), i8(-4)], flags=2,
                                   views=[[0, 5, 0, 2]]))
write("print", "f64_grad_fn", pr(1, [2, 2], [raw64(3.0), raw64(-1.0)], flags=3))

# ---- conv: see fuzz_conv.c for the order of the decisions
# tables (indices): CHANNELS {1,1,2,2,3,4,6,0,-1}; GROUPS {1,1,1,2,3,0,-2};
# KERNEL {1,2,3,1,2,0,-1}; STRIDE {1,1,2,3,0,-1}; PADDING {0,0,1,2,-1};
# OUTPAD {0,0,1,2,-1}; DILATION {1,1,2,3,0,-1}; SPATIAL {1,2,3,4,5,0};
# BATCH {1,2,0}; DTYPES {f32,f64,f32,f64,c64,c128}; counts {3,3,3,3,1,1,0,2,4}


def ints3(a, b, c):
    return [0, a, b, c]


def conv(transposed, dtype, cin, cout, groups, k, s, p, op, d, bias, mode,
         seed, threads, rank, batch, spatial, bwd, osize=None):
    out = [transposed, dtype, cin, cout, groups] + k + s + p + op + d
    out += [1 if bias else 0, mode, seed, 1 if threads == 1 else 0]
    if transposed:
        out += [1]  # padding_mode: default
    out += [{5: 0, 4: 3, 3: 5, 6: 6}[rank]]
    if rank >= 5:
        out += [batch]
    out += [1]  # channels = in_channels
    out += spatial
    out += [1]  # input dtype = layer dtype
    out += [1]  # input requires grad
    if transposed:
        out += [0 if osize else 1]
        if osize:
            out += [0] + [v + 1 for v in osize]
    out += [bwd]
    return out


write("conv", "conv3d_basic_f64", conv(0, 1, 2, 4, 0, ints3(2, 1, 0), ints3(0, 2, 0),
                                      ints3(0, 2, 0), ints3(0, 0, 0), ints3(0, 0, 0),
                                      True, 0, 1, 1, 5, 0, [3, 3, 4], 1))
write("conv", "conv3d_groups_dil_f32", conv(0, 0, 5, 5, 3, ints3(1, 1, 2), ints3(2, 0, 1),
                                           ints3(2, 2, 0), ints3(0, 0, 0), ints3(2, 0, 2),
                                           False, 0, 7, 2, 5, 1, [4, 3, 4], 2))
write("conv", "ct3d_stride_outpad_f64", conv(1, 1, 2, 3, 0, ints3(1, 2, 0), ints3(2, 3, 0),
                                             ints3(2, 0, 0), ints3(2, 1, 0), ints3(0, 2, 0),
                                             True, 0, 3, 1, 5, 1, [2, 3, 2], 1))
write("conv", "ct3d_groups_f32_unbatched", conv(1, 0, 5, 5, 3, ints3(2, 2, 2), ints3(2, 2, 0),
                                                ints3(0, 0, 2), ints3(0, 2, 0), ints3(0, 0, 0),
                                                True, 0, 9, 2, 4, 0, [2, 2, 3], 2))
write("conv", "ct3d_output_size_f64", conv(1, 1, 1, 2, 0, ints3(2, 2, 2), ints3(2, 2, 2),
                                           ints3(0, 0, 0), ints3(0, 0, 0), ints3(0, 0, 0),
                                           True, 0, 5, 1, 5, 0, [2, 2, 2], 1, osize=[5, 4, 5]))
write("conv", "conv3d_c64", conv(0, 4, 2, 2, 0, ints3(1, 1, 1), ints3(0, 0, 0),
                                 ints3(2, 2, 2), ints3(0, 0, 0), ints3(0, 0, 0),
                                 True, 0, 2, 1, 5, 0, [2, 2, 2], 2))
write("conv", "ct3d_c128", conv(1, 5, 2, 2, 0, ints3(1, 1, 1), ints3(2, 2, 2),
                                ints3(0, 0, 0), ints3(0, 0, 0), ints3(0, 0, 0),
                                True, 0, 2, 1, 5, 0, [2, 2, 2], 1))
write("conv", "conv3d_reflect", conv(0, 0, 0, 0, 0, ints3(0, 0, 0), ints3(0, 0, 0),
                                     ints3(0, 0, 0), ints3(0, 0, 0), ints3(0, 0, 0),
                                     True, 3, 1, 1, 5, 0, [2, 2, 2], 0))

# ---- autograd: nleaves-1, base rank, base dims-1, per leaf (variant, mask,
# dtype: 0 complex128 / else float64, values), nops-1, ops (code, a, b, c)
OPS = ["neg", "exp", "log", "sqrt", "abs", "pow", "relu", "leaky_relu",
       "sigmoid", "tanh", "gelu", "softmax", "log_softmax", "sum", "sum_dims",
       "mean", "mean_dims", "add_s", "sub_s", "mul_s", "div_s", "rsub_s",
       "conj", "real", "imag", "view_as_real", "transpose", "permute",
       "unsqueeze", "squeeze", "squeeze_dim", "select", "narrow", "slice",
       "expand", "reshape", "flatten", "t", "contiguous", "clone", "mul_cs",
       "add", "sub", "mul", "div", "matmul", "mm", "bmm", "cat", "complex",
       "linear", "mse_loss", "l1_loss", "cross_entropy", "push", "pop"]


def ag(base, leaves, ops):
    out = [len(leaves) - 1, len(base)] + [d - 1 for d in base]
    for variant, cx, vals in leaves:
        out += [variant, 0, 0 if cx else 1] + [v & 0xFF for v in vals]
    out += [len(ops) - 1]
    for name, a, b, c in ops:
        out += [OPS.index(name), a, b, c]
    return out


v6 = [40, -30, 17, 55, -70, 23]
v9 = [12, -44, 31, 66, -8, 27, -51, 90, 5]
write("autograd", "mlp_like", ag([2, 3], [(0, False, v6), (3, False, v6)],
                                 [("matmul", 0, 0, 0), ("tanh", 0, 0, 0), ("sum", 0, 0, 0)]))
write("autograd", "softmax_log", ag([3, 3], [(0, False, v9)],
                                    [("softmax", 2, 0, 0), ("log", 0, 0, 0), ("mean", 0, 0, 0)]))
write("autograd", "broadcast_div", ag([2, 3], [(0, False, v6), (1, False, [60, -80, 50])],
                                      [("push", 0, 0, 0), ("div", 1, 0, 0), ("exp", 0, 0, 0),
                                       ("mul", 0, 0, 0)]))
write("autograd", "complex_abs", ag([3], [(0, False, [30, 50, -20]), (0, False, [-10, 40, 70])],
                                    [("complex", 1, 0, 0), ("mul_cs", 1, 2, 0), ("abs", 0, 0, 0)]))
write("autograd", "views_cat", ag([2, 3], [(0, False, v6), (0, False, v6)],
                                  [("transpose", 1, 2, 0), ("cat", 1, 2, 0), ("gelu", 0, 1, 0),
                                   ("narrow", 3, 1, 2), ("pow", 0, 0, 0)]))
write("autograd", "cplx_leaf_exp", ag([2], [(0, True, [30, -20, 10, 45])],
                                      [("exp", 0, 0, 0), ("sigmoid", 0, 0, 0), ("real", 0, 0, 0)]))
write("autograd", "losses", ag([2, 3], [(0, False, v6), (0, False, [5, 9, 33, -12, 61, 7])],
                               [("mse_loss", 1, 0, 0), ("push", 0, 0, 0), ("cross_entropy", 1, 0, 1)]))
write("autograd", "bmm_sqrt", ag([2, 2, 2], [(0, False, v6 + [11, 13]), (3, False, v6 + [-9, 29])],
                                 [("bmm", 1, 0, 0), ("mul", 0, 0, 0), ("add_s", 0, 0, 0),
                                  ("sqrt", 0, 0, 0), ("log_softmax", 3, 0, 0)]))
