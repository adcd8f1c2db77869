#!/usr/bin/env python3
"""Writes the fixtures of tests/test_reduce.c, test_matmul.c, test_cat.c,
test_softmax.c and test_complex.c (reductions, matrix products, cat,
softmax, complex views) from real PyTorch: forward values, gradients and
the grad_fn chain.

Run from anywhere, with the system Python that has PyTorch 1.13 and numpy
(the `python3` on PATH may be a pyenv one without torch):

    /usr/bin/python3 tests/data/ops/gen_reduce.py

It rewrites tests/data/ops/reduce/ (next to this script):

  cases.tsv         one row per case (columns below), tab separated, with a
                    header line
  values_f32.npy, values_f64.npy, values_c64.npy, values_c128.npy
                    every tensor of every case, flattened (C order) and
                    concatenated, one 1-D file per dtype
  VERSION.txt       torch and numpy versions, case count

A tensor is named as "<dtype>:<offset>:<shape>", e.g. "f32:120:2x3" (offset
counts elements of that dtype's file; a 0-d shape is "()", a 1-D one "5"),
or "-" when absent.

Columns of cases.tsv:
  suite    reduce, matmul, cat, softmax or complex (the test file)
  case     a unique name
  op       sum sum_dims mean mean_dims expand (reduce); mm bmm matmul
           (matmul); cat; softmax log_softmax; view_as_real real imag
           complex
  args     op parameters, space separated key=value: dims=0,2 (an empty
           list is "dims="), keep=0|1, dim=-1, shape=2x3x4 (expand)
  views    one entry per input, comma separated: how the input is made
           from the stored base, which is the leaf:
             c  the base itself
             T  base.transpose(-2, -1)
             S  base[::2] (every other index of dim 0)
           followed by "!" when the base does not require grad
  chain    y.grad_fn and everything below it: Name(next, next, ...), with
           "None" for an empty edge and "#k" after a next whose input_nr
           k is not 0; AccumulateGrad leaves are "AccumulateGrad"; "-"
           when y has no grad_fn
  inputs   the stored bases, space separated
  y        the output (made contiguous)
  gy       the gradient fed to y.backward(gy)
  grads    the gradients of the bases, space separated ("-" for a base
           that does not require grad)

Every case draws from torch.manual_seed(<row number>); gy is drawn right
after the inputs. One workaround: this system's torch build returns 0 for
complex dot products (a BLAS ABI bug of the generic-BLAS Debian build), so
the value of a complex 1-D x 1-D matmul is stored as (a * b).sum(). torch.set_num_threads(1) keeps float32 sums in one
order. This script is the only way these files change.
"""
import os

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "reduce")
COLUMNS = ["suite", "case", "op", "args", "views", "chain", "inputs", "y",
           "gy", "grads"]
TDT = {"f32": torch.float32, "f64": torch.float64, "c64": torch.complex64,
       "c128": torch.complex128}
NPDT = {"f32": np.float32, "f64": np.float64, "c64": np.complex64,
        "c128": np.complex128}
NAME = {torch.float32: "f32", torch.float64: "f64", torch.complex64: "c64",
        torch.complex128: "c128"}

torch.set_num_threads(1)
store = {k: [] for k in NPDT}
used = {k: 0 for k in NPDT}
rows = []


def put(t):
    """Appends t's values to its dtype's file; returns the tensor's name."""
    if t is None:
        return "-"
    t = t.detach().contiguous()
    dt = NAME[t.dtype]
    arr = np.ascontiguousarray(t.numpy()).reshape(-1)
    off = used[dt]
    store[dt].append(arr.astype(NPDT[dt]))
    used[dt] += arr.size
    shape = "()" if t.dim() == 0 else "x".join(str(s) for s in t.shape)
    return "%s:%d:%s" % (dt, off, shape)


def chain(fn):
    if fn is None:
        return "None"
    name = type(fn).__name__
    if name == "AccumulateGrad":
        return name
    if not fn.next_functions:
        return name
    parts = []
    for f, nr in fn.next_functions:
        parts.append(chain(f) + ("" if nr == 0 or f is None else "#%d" % nr))
    return name + "(" + ", ".join(parts) + ")"


def base_shape(shape, view):
    shape = list(shape)
    if view == "T":
        shape[-1], shape[-2] = shape[-2], shape[-1]
    elif view == "S":
        shape[0] *= 2
    return shape


def make_view(b, view):
    if view == "T":
        return b.transpose(-2, -1)
    if view == "S":
        return b[::2]
    return b


def rand(shape, dt):
    return torch.randn(*shape, dtype=TDT[dt]) if shape else \
        torch.randn((), dtype=TDT[dt])


def case(suite, name, op, args, specs, fn, special=None):
    """specs: list of (shape, dtype, view) with view 'c', 'T', 'S' plus an
    optional '!' (no grad). fn(inputs) computes y. special(base list) may
    overwrite base values before requires_grad is set."""
    torch.manual_seed(len(rows))
    bases, inputs = [], []
    for shape, dt, view in specs:
        b = rand(base_shape(shape, view.rstrip("!")), dt)
        bases.append(b)
    if special:
        special(bases)
    for b, (shape, dt, view) in zip(bases, specs):
        b.requires_grad_(not view.endswith("!"))
        inputs.append(make_view(b, view.rstrip("!")))
    y = fn(*inputs)
    yval = y
    if op == "matmul" and all(t.dim() == 1 and t.is_complex()
                              for t in inputs):
        # this system's torch (Debian 1.13.1+dfsg, BLAS_INFO=generic)
        # returns 0 for every complex dot: its zdotu/cdotu calls get the
        # complex return convention wrong. The chain and gradients do not
        # use dot; the value is taken from the definition instead.
        with torch.no_grad():
            yval = (inputs[0] * inputs[1]).sum()
    gy = rand(list(y.shape), NAME[y.dtype])
    if y.requires_grad:
        y.backward(gy)
    rows.append([suite, name, op, args, ",".join(s[2] for s in specs),
                 chain(y.grad_fn) if y.grad_fn is not None else "-",
                 " ".join(put(b) for b in bases), put(yval), put(gy),
                 " ".join(put(b.grad) if b.requires_grad else "-"
                          for b in bases)])


def dims_arg(dims, keep):
    return "dims=%s keep=%d" % (",".join(str(d) for d in dims), keep)


# ---- reduce ------------------------------------------------------------------
for dt in NPDT:
    case("reduce", "sum_%s" % dt, "sum", "", [((3, 4), dt, "c")],
         lambda x: x.sum())
    case("reduce", "mean_%s" % dt, "mean", "", [((2, 3, 4), dt, "c")],
         lambda x: x.mean())
    case("reduce", "sum_dims_%s" % dt, "sum_dims", dims_arg([1], 0),
         [((3, 4, 5), dt, "c")], lambda x: x.sum(dim=[1]))
    case("reduce", "mean_dims_%s" % dt, "mean_dims", dims_arg([0, 2], 1),
         [((3, 4, 5), dt, "c")], lambda x: x.mean(dim=[0, 2], keepdim=True))
    case("reduce", "sum_T_%s" % dt, "sum_dims", dims_arg([-1], 0),
         [((4, 3), dt, "T")], lambda x: x.sum(dim=[-1]))
    case("reduce", "mean_S_%s" % dt, "mean_dims", dims_arg([0], 0),
         [((3, 5), dt, "S")], lambda x: x.mean(dim=[0]))
for keep in (0, 1):
    for dims in ([0], [2, 0], [-1, 1], [], [0, 1, 2]):
        tag = "_".join(str(d).replace("-", "m") for d in dims) or "none"
        case("reduce", "sum_d%s_k%d" % (tag, keep), "sum_dims",
             dims_arg(dims, keep), [((2, 3, 4), "f64", "c")],
             lambda x, d=dims, k=keep: x.sum(dim=d, keepdim=bool(k)))
        case("reduce", "mean_d%s_k%d" % (tag, keep), "mean_dims",
             dims_arg(dims, keep), [((2, 3, 4), "f32", "c")],
             lambda x, d=dims, k=keep: x.mean(dim=d, keepdim=bool(k)))
# long sums: several chunks of 256 in one output, and many outputs
case("reduce", "sum_long_f32", "sum", "", [((3000,), "f32", "c")],
     lambda x: x.sum())
case("reduce", "sum_long_f64", "sum", "", [((2000,), "f64", "c")],
     lambda x: x.sum())
case("reduce", "mean_long_c64", "mean_dims", dims_arg([0], 0),
     [((700, 3), "c64", "c")], lambda x: x.mean(dim=[0]))
case("reduce", "sum_rows_f32", "sum_dims", dims_arg([1], 0),
     [((5, 600), "f32", "c")], lambda x: x.sum(dim=[1]))
case("reduce", "sum_4d_f64", "sum_dims", dims_arg([3, 1], 1),
     [((2, 3, 2, 5), "f64", "T")], lambda x: x.sum(dim=[3, 1], keepdim=True))
# 0-d and empty tensors
case("reduce", "sum_0d", "sum_dims", dims_arg([0], 0), [((), "f32", "c")],
     lambda x: x.sum(dim=[0]))
case("reduce", "mean_0d_keep", "mean_dims", dims_arg([-1], 1),
     [((), "f64", "c")], lambda x: x.mean(dim=[-1], keepdim=True))
case("reduce", "sum_0d_all", "sum", "", [((), "c128", "c")],
     lambda x: x.sum())
case("reduce", "sum_empty", "sum_dims", dims_arg([0], 0),
     [((0, 3), "f32", "c")], lambda x: x.sum(dim=[0]))
case("reduce", "sum_empty_all", "sum", "", [((2, 0), "f64", "c")],
     lambda x: x.sum())
case("reduce", "mean_empty_rows", "mean_dims", dims_arg([0], 1),
     [((0, 3), "f64", "c")], lambda x: x.mean(dim=[0], keepdim=True))
# sum_to (cg__sum_to) through expand's backward
for dt in ("f32", "c128"):
    case("reduce", "expand_%s" % dt, "expand", "shape=2x3x4",
         [((3, 1), dt, "c")], lambda x: x.expand(2, 3, 4))
case("reduce", "expand_lead", "expand", "shape=2x1x5x3",
     [((5, 1), "f64", "c")], lambda x: x.expand(2, 1, 5, 3))
case("reduce", "expand_T", "expand", "shape=4x3x2",
     [((3, 1), "f32", "T")], lambda x: x.expand(4, 3, 2))

# ---- matmul ------------------------------------------------------------------
for dt in NPDT:
    case("matmul", "mm_%s" % dt, "mm", "", [((3, 4), dt, "c"),
                                             ((4, 5), dt, "c")],
         lambda a, b: torch.mm(a, b))
    case("matmul", "mm_T_%s" % dt, "mm", "", [((3, 4), dt, "T"),
                                               ((4, 2), dt, "S")],
         lambda a, b: torch.mm(a, b))
    case("matmul", "bmm_%s" % dt, "bmm", "", [((2, 3, 4), dt, "c"),
                                               ((2, 4, 5), dt, "T")],
         lambda a, b: torch.bmm(a, b))
case("matmul", "mm_nograd_a", "mm", "", [((3, 4), "f32", "c!"),
                                         ((4, 5), "f32", "c")],
     lambda a, b: torch.mm(a, b))
case("matmul", "mm_nograd_b", "mm", "", [((3, 4), "c64", "c"),
                                         ((4, 5), "c64", "c!")],
     lambda a, b: torch.mm(a, b))
case("matmul", "bmm_S", "bmm", "", [((2, 3, 4), "f64", "S"),
                                    ((2, 4, 2), "f64", "c")],
     lambda a, b: torch.bmm(a, b))
# the kernel's blocks: K > KC (256), M > MC (64), N > NC (256)
case("matmul", "mm_deep_f32", "mm", "", [((9, 300), "f32", "c"),
                                         ((300, 5), "f32", "T")],
     lambda a, b: torch.mm(a, b))
case("matmul", "mm_tall_f64", "mm", "", [((70, 6), "f64", "c"),
                                         ((6, 9), "f64", "c")],
     lambda a, b: torch.mm(a, b))
case("matmul", "mm_wide_c64", "mm", "", [((3, 5), "c64", "c"),
                                         ((5, 260), "c64", "c")],
     lambda a, b: torch.mm(a, b))
case("matmul", "mm_empty_k", "mm", "", [((2, 0), "f32", "c"),
                                        ((0, 3), "f32", "c")],
     lambda a, b: torch.mm(a, b))
case("matmul", "mm_empty_m", "mm", "", [((0, 3), "f64", "c"),
                                        ((3, 4), "f64", "c")],
     lambda a, b: torch.mm(a, b))
# matmul's dispatch, and the chains it records
MM = [
    ("dot", [(4,), (4,)]),
    ("mv", [(3, 4), (4,)]),
    ("vm", [(4,), (4, 5)]),
    ("mm", [(3, 4), (4, 5)]),
    ("3x2", [(2, 3, 4), (4, 5)]),
    ("3x1", [(2, 3, 4), (4,)]),
    ("1x3", [(4,), (2, 4, 5)]),
    ("2x3", [(3, 4), (2, 4, 5)]),
    ("3x3", [(2, 3, 4), (2, 4, 5)]),
    ("4x3", [(2, 1, 3, 4), (5, 4, 2)]),
    ("3x3b", [(2, 3, 4), (1, 4, 5)]),
    ("1x4", [(4,), (2, 2, 4, 3)]),
    ("4x2", [(2, 2, 3, 4), (4, 5)]),
    ("4x1", [(2, 2, 3, 4), (4,)]),
    ("2x3n1", [(3, 4), (2, 4, 1)]),
    ("3x1x3", [(3, 2, 3, 4), (2, 4, 5)]),
]
for name, (sa, sb) in MM:
    for dt in ("f32", "c128"):
        case("matmul", "matmul_%s_%s" % (name, dt), "matmul", "",
             [(sa, dt, "c"), (sb, dt, "c")],
             lambda a, b: torch.matmul(a, b))
case("matmul", "matmul_perm", "matmul", "", [((2, 3, 4), "f64", "T"),
                                             ((4, 5), "f64", "c")],
     lambda a, b: torch.matmul(a, b))
case("matmul", "matmul_T_fold", "matmul", "", [((2, 3, 4), "f32", "c"),
                                               ((4, 5), "f32", "T")],
     lambda a, b: torch.matmul(a, b))
case("matmul", "matmul_2x3_nograd", "matmul", "",
     [((3, 4), "f32", "c!"), ((2, 4, 5), "f32", "c")],
     lambda a, b: torch.matmul(a, b))
case("matmul", "matmul_3x3_nograd", "matmul", "",
     [((2, 3, 4), "c64", "c"), ((2, 4, 5), "c64", "c!")],
     lambda a, b: torch.matmul(a, b))
case("matmul", "matmul_empty", "matmul", "", [((3, 5, 0), "f32", "c"),
                                              ((0, 2), "f32", "c")],
     lambda a, b: torch.matmul(a, b))

# ---- cat -----------------------------------------------------------------------
for dt in NPDT:
    case("cat", "cat0_%s" % dt, "cat", "dim=0", [((2, 3), dt, "c"),
                                                 ((1, 3), dt, "c")],
         lambda *t: torch.cat(t, 0))
    case("cat", "cat1_%s" % dt, "cat", "dim=-1",
         [((2, 3), dt, "c"), ((2, 1), dt, "T"), ((2, 4), dt, "c")],
         lambda *t: torch.cat(t, -1))
case("cat", "cat_3d", "cat", "dim=1", [((2, 3, 4), "f64", "S"),
                                       ((2, 1, 4), "f64", "c"),
                                       ((2, 2, 4), "f64", "c!")],
     lambda *t: torch.cat(t, 1))
case("cat", "cat_promote_f64", "cat", "dim=0",
     [((2, 3), "f32", "c"), ((1, 3), "f64", "c")], lambda *t: torch.cat(t))
case("cat", "cat_promote_c64", "cat", "dim=1",
     [((2, 3), "f32", "c"), ((2, 2), "c64", "c")],
     lambda *t: torch.cat(t, 1))
case("cat", "cat_promote_c128", "cat", "dim=0",
     [((1, 2), "f64", "c"), ((2, 2), "c64", "c"), ((1, 2), "f32", "c!")],
     lambda *t: torch.cat(t))
case("cat", "cat_legacy_empty", "cat", "dim=1",
     [((0,), "f32", "c"), ((2, 3), "f32", "c"), ((0,), "f64", "c"),
      ((2, 2), "f32", "c")], lambda *t: torch.cat(t, 1))
case("cat", "cat_all_empty", "cat", "dim=5",
     [((0,), "f32", "c"), ((0,), "f32", "c")], lambda *t: torch.cat(t, 5))
case("cat", "cat_zero_rows", "cat", "dim=0",
     [((0, 3), "f32", "c"), ((2, 3), "f32", "c")], lambda *t: torch.cat(t))
case("cat", "cat_one", "cat", "dim=0", [((3,), "c128", "c")],
     lambda *t: torch.cat(t))
case("cat", "cat_nograd", "cat", "dim=0",
     [((2,), "f32", "c!"), ((3,), "f32", "c")], lambda *t: torch.cat(t))

# ---- softmax -------------------------------------------------------------------
for dt in ("f32", "f64"):
    for op, f in (("softmax", torch.softmax),
                  ("log_softmax", torch.log_softmax)):
        case("softmax", "%s_last_%s" % (op, dt), op, "dim=-1",
             [((3, 5), dt, "c")], lambda x, f=f: f(x, -1))
        case("softmax", "%s_d0_%s" % (op, dt), op, "dim=0",
             [((4, 3), dt, "c")], lambda x, f=f: f(x, 0))
        case("softmax", "%s_mid_%s" % (op, dt), op, "dim=1",
             [((2, 3, 4), dt, "T")], lambda x, f=f: f(x, 1))
        case("softmax", "%s_S_%s" % (op, dt), op, "dim=1",
             [((3, 4), dt, "S")], lambda x, f=f: f(x, 1))
        case("softmax", "%s_0d_%s" % (op, dt), op, "dim=0",
             [((), dt, "c")], lambda x, f=f: f(x, 0))
        case("softmax", "%s_long_%s" % (op, dt), op, "dim=0",
             [((500,), dt, "c")], lambda x, f=f: f(x, 0))


def big(bases):
    with torch.no_grad():
        bases[0][0] *= 300.0  # exp(x) alone would overflow


for op, f in (("softmax", torch.softmax), ("log_softmax", torch.log_softmax)):
    case("softmax", "%s_large" % op, op, "dim=1", [((2, 4), "f32", "c")],
         lambda x, f=f: f(x, 1), big)
    case("softmax", "%s_empty" % op, op, "dim=1", [((0, 3), "f32", "c")],
         lambda x, f=f: f(x, 1))

# ---- complex -------------------------------------------------------------------
for dt in ("c64", "c128"):
    case("complex", "view_as_real_%s" % dt, "view_as_real", "",
         [((2, 3), dt, "c")], lambda x: torch.view_as_real(x))
    case("complex", "view_as_real_T_%s" % dt, "view_as_real", "",
         [((3, 2), dt, "T")], lambda x: torch.view_as_real(x))
    case("complex", "real_%s" % dt, "real", "", [((2, 3), dt, "c")],
         lambda x: x.real)
    case("complex", "imag_%s" % dt, "imag", "", [((4,), dt, "S")],
         lambda x: x.imag)
case("complex", "view_as_real_0d", "view_as_real", "", [((), "c64", "c")],
     lambda x: torch.view_as_real(x))
case("complex", "imag_T", "imag", "", [((2, 3), "c128", "T")],
     lambda x: x.imag)
case("complex", "real_of_real", "real", "", [((2, 3), "f32", "c")],
     lambda x: torch.real(x))
for dt in ("f32", "f64"):
    case("complex", "complex_%s" % dt, "complex", "",
         [((2, 3), dt, "c"), ((2, 3), dt, "c")],
         lambda a, b: torch.complex(a, b))
    case("complex", "complex_bcast_%s" % dt, "complex", "",
         [((2, 1), dt, "c"), ((3,), dt, "S")],
         lambda a, b: torch.complex(a, b))
case("complex", "complex_T", "complex", "",
     [((2, 3), "f64", "T"), ((2, 3), "f64", "c!")],
     lambda a, b: torch.complex(a, b))
case("complex", "complex_0d", "complex", "",
     [((), "f32", "c!"), ((2,), "f32", "c")],
     lambda a, b: torch.complex(a, b))


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "cases.tsv"), "w") as f:
        f.write("\t".join(COLUMNS) + "\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    for dt in NPDT:
        arr = np.concatenate(store[dt]) if store[dt] else \
            np.zeros(0, NPDT[dt])
        np.save(os.path.join(OUT, "values_%s.npy" % dt), arr)
    with open(os.path.join(OUT, "VERSION.txt"), "w") as f:
        f.write("torch %s\nnumpy %s\ncases: %d\n"
                % (torch.__version__, np.__version__, len(rows)))


if __name__ == "__main__":
    main()
