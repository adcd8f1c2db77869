#!/usr/bin/env python3
"""Writes the fixtures of tests/test_arithmetic.c and tests/test_activation.c
(elementwise arithmetic and activations, forward and backward) from real
PyTorch.

Run from anywhere, with the system Python that has PyTorch 1.13 and numpy
(the `python3` on PATH may be a pyenv one without torch):

    /usr/bin/python3 tests/data/ops/gen_arith.py

It rewrites tests/data/ops/arith/ (next to this script):

  cases.tsv         one row per case (columns below), tab separated, with a
                    header line
  values_f32.npy, values_f64.npy, values_c64.npy, values_c128.npy
                    every tensor of every case, flattened (C order) and
                    concatenated, one 1-D file per dtype
  VERSION.txt       torch and numpy versions, case count

A tensor is named in cases.tsv as "<dtype>:<offset>:<shape>", e.g.
"f32:120:2x3" (offset counts elements of that dtype's file; a 0-d shape is
written "()"), or "-" when absent.

Columns of cases.tsv:
  suite     "arith" (test_arithmetic.c) or "act" (test_activation.c)
  case      the file prefix
  op        add sub mul div (tensor, tensor); add_s sub_s mul_s div_s rsub_s
            (tensor, Python float s); mul_cs (tensor * complex(s, s_im));
            neg exp log sqrt abs conj; pow (a ** s); relu, leaky_relu
            (slope s), sigmoid, tanh, gelu, gelu_tanh (approximate='tanh')
  view_a    how the input is made from the stored base, which is the leaf:
            "contig" (the base itself), "t" (base.transpose(0, -1)),
            "step2" (base[..., ::2])
  rg_a      1 when a's base requires grad
  view_b, rg_b   the same for b ("-" for ops without b)
  s, s_im   the scalar operand / exponent / slope, as Python reprs
  grad_fn   type(y.grad_fn).__name__, "-" for None
  next      the names of y.grad_fn.next_functions, comma separated, "None"
            for an empty edge ("-" when y has no grad_fn)
  special   1 when the data holds nan/inf (compare NaN as equal to NaN)
  a, b      the stored inputs (bases of the views)
  y         the output
  gy        the gradient fed to y.backward(gy)
  ga, gb    the gradients of a's and b's bases ("-" when not required)

Every case draws from torch.manual_seed(<row number>); the gradient gy is
drawn right after the inputs. torch.set_num_threads(1) keeps float32 sums
in one order. This script is the only way these files change.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "arith")
DT = {"f32": torch.float32, "f64": torch.float64, "c64": torch.complex64,
      "c128": torch.complex128}
NAN, INF = float("nan"), float("inf")

BINARY = {
    "add": lambda a, b: a + b,
    "sub": lambda a, b: a - b,
    "mul": lambda a, b: a * b,
    "div": lambda a, b: a / b,
}
UNARY = {
    "add_s": lambda a, s: a + s.real,
    "sub_s": lambda a, s: a - s.real,
    "mul_s": lambda a, s: a * s.real,
    "div_s": lambda a, s: a / s.real,
    "rsub_s": lambda a, s: s.real - a,
    "mul_cs": lambda a, s: a * s,
    "neg": lambda a, s: -a,
    "exp": lambda a, s: torch.exp(a),
    "log": lambda a, s: torch.log(a),
    "sqrt": lambda a, s: torch.sqrt(a),
    "abs": lambda a, s: torch.abs(a),
    "conj": lambda a, s: a.conj(),
    "pow": lambda a, s: a ** s.real,
    "relu": lambda a, s: torch.relu(a),
    "leaky_relu": lambda a, s: F.leaky_relu(a, s.real),
    "sigmoid": lambda a, s: torch.sigmoid(a),
    "tanh": lambda a, s: torch.tanh(a),
    "gelu": lambda a, s: F.gelu(a),
    "gelu_tanh": lambda a, s: F.gelu(a, approximate="tanh"),
}

rows = []


def make_view(base, view):
    if view == "contig":
        return base
    if view == "t":
        return base.transpose(0, -1)
    if view == "step2":
        return base[..., ::2]
    raise ValueError(view)


def base_shape(shape, view):
    """The stored shape whose view has `shape`."""
    shape = list(shape)
    if view == "t":
        shape[0], shape[-1] = shape[-1], shape[0]
    elif view == "step2":
        shape[-1] = 2 * shape[-1]
    return shape


def draw(shape, dt, kind):
    """Random data of a kind: "n" normal, "pos" positive (log, sqrt, pow),
    "nz" away from zero (divisors)."""
    t = torch.randn(shape, dtype=DT[dt])
    if kind == "pos":
        t = t.abs() + 0.25 if not t.is_complex() else t
    elif kind == "nz":
        if t.is_complex():
            t = t + 0.5 * t / t.abs().clamp(min=1e-3)
        else:
            t = t + 0.5 * torch.sign(t)
    return t


NP = {torch.float32: "f32", torch.float64: "f64", torch.complex64: "c64",
      torch.complex128: "c128"}
store = {k: [] for k in DT}
used = {k: 0 for k in DT}


def save(t):
    """Appends t to its dtype's value file; returns its spec."""
    if t is None:
        return "-"
    t = t.detach().resolve_conj()
    dt = NP[t.dtype]
    flat = t.contiguous().numpy().reshape(-1)
    spec = "%s:%d:%s" % (dt, used[dt],
                         "x".join(str(d) for d in t.shape) or "()")
    store[dt].append(flat)
    used[dt] += flat.size
    return spec


def fmt(x):
    return repr(float(x))


def add_case(suite, name, op, a, b=None, view_a="contig", view_b="contig",
             rg_a=True, rg_b=True, s=0.0, special=False):
    """a, b: the stored bases (tensors). The op runs on their views."""
    s = complex(s)
    gen_gy = torch.Generator().manual_seed(1000 + len(rows))
    a = a.detach().clone().requires_grad_(rg_a)
    av = make_view(a, view_a)
    if b is not None:
        b = b.detach().clone().requires_grad_(rg_b)
        bv = make_view(b, view_b)
        y = BINARY[op](av, bv)
    else:
        y = UNARY[op](av, s)
    gy = torch.randn(y.shape, dtype=y.dtype, generator=gen_gy)
    if special:
        gy = torch.ones_like(y)
    if y.requires_grad:
        y.backward(gy)
    fn = y.grad_fn
    nxt = "-"
    if fn is not None:
        nxt = ",".join("None" if f is None else type(f).__name__
                       for f, _ in fn.next_functions)
    specs = [save(a), save(b), save(y), save(gy),
             save(a.grad if rg_a else None),
             save(b.grad if b is not None and rg_b else None)]
    rows.append([suite, name, op, view_a, "1" if rg_a else "0",
                 view_b if b is not None else "-",
                 ("1" if rg_b else "0") if b is not None else "-",
                 fmt(s.real), fmt(s.imag),
                 type(fn).__name__ if fn is not None else "-", nxt,
                 "1" if special else "0"] + specs)


def seed():
    torch.manual_seed(len(rows))


SPECIAL = [NAN, 0.0, -0.0, 1.0, -1.0, INF, -INF, 1e-3, -30.0, 30.0, 0.5,
           -2.5]


def arith_cases():
    for op in BINARY:
        kb = "nz" if op == "div" else "n"
        for dt in DT:
            seed()
            add_case("arith", "%s_%s" % (op, dt), op, draw([2, 3], dt, "n"),
                     draw([2, 3], dt, kb))
        seed()
        add_case("arith", op + "_bcast_f32", op, draw([2, 1, 4], "f32", "n"),
                 draw([3, 1], "f32", kb))
        seed()
        add_case("arith", op + "_bcast_c128", op, draw([4], "c128", "n"),
                 draw([3, 1], "c128", kb))
        seed()
        add_case("arith", op + "_noncontig_f64", op,
                 draw(base_shape([2, 3], "t"), "f64", "n"),
                 draw(base_shape([2, 3], "step2"), "f64", kb),
                 view_a="t", view_b="step2")
        seed()
        add_case("arith", op + "_noncontig_bcast_c64", op,
                 draw(base_shape([2, 4], "step2"), "c64", "n"),
                 draw(base_shape([3, 1, 1], "t"), "c64", kb),
                 view_a="step2", view_b="t")
        seed()
        add_case("arith", op + "_mixed_f32_f64", op, draw([2, 3], "f32", "n"),
                 draw([3], "f64", kb))
        seed()
        add_case("arith", op + "_mixed_f64_c64", op, draw([2, 3], "f64", "n"),
                 draw([2, 3], "c64", kb))
        seed()
        add_case("arith", op + "_mixed_c64_f32", op, draw([3], "c64", "n"),
                 draw([2, 3], "f32", kb))
        seed()
        add_case("arith", op + "_0d_f32_f64", op, draw([2, 3], "f32", "n"),
                 draw([], "f64", kb))
        seed()
        add_case("arith", op + "_0d_f32_c128", op, draw([3], "f32", "n"),
                 draw([], "c128", kb))
        seed()
        add_case("arith", op + "_0d_first_f64", op, draw([], "f64", "n"),
                 draw([2, 2], "f32", kb))
        seed()
        add_case("arith", op + "_rg10", op, draw([2, 3], "f32", "n"),
                 draw([2, 3], "f32", kb), rg_b=False)
        seed()
        add_case("arith", op + "_rg01", op, draw([3], "c128", "n"),
                 draw([2, 3], "c128", kb), rg_a=False)
        seed()
        add_case("arith", op + "_norg", op, draw([3], "f64", "n"),
                 draw([3], "f64", kb), rg_a=False, rg_b=False)
    for op, s in (("add_s", 2.5), ("sub_s", -1.75), ("mul_s", 0.1),
                  ("div_s", 3.0), ("rsub_s", 2.0)):
        for dt in DT:
            seed()
            add_case("arith", "%s_%s" % (op, dt), op, draw([2, 3], dt, "n"),
                     s=s)
        seed()
        add_case("arith", op + "_noncontig_f32", op,
                 draw(base_shape([3, 2], "t"), "f32", "n"), view_a="t", s=s)
    for dt, s in (("f32", 1j), ("f64", 2 - 0.5j), ("c64", 1.5 + 2j),
                  ("c128", 0.25 - 3j)):
        seed()
        add_case("arith", "mul_cs_" + dt, "mul_cs", draw([2, 3], dt, "n"),
                 s=s)
    seed()
    add_case("arith", "mul_cs_noncontig_f64", "mul_cs",
             draw(base_shape([2, 3], "step2"), "f64", "n"), view_a="step2",
             s=-1j)
    for op, kind in (("neg", "n"), ("exp", "n"), ("log", "pos"),
                     ("sqrt", "pos"), ("abs", "n"), ("conj", "n")):
        for dt in DT:
            seed()
            add_case("arith", "%s_%s" % (op, dt), op, draw([2, 3], dt, kind))
        seed()
        add_case("arith", op + "_noncontig_c128", op,
                 draw(base_shape([3, 2], "t"), "c128", kind), view_a="t")
        seed()
        add_case("arith", op + "_noncontig_f32", op,
                 draw(base_shape([2, 3], "step2"), "f32", kind),
                 view_a="step2")
        if op != "conj":
            for dt in ("f32", "f64"):
                add_case("arith", "%s_special_%s" % (op, dt), op,
                         torch.tensor(SPECIAL, dtype=DT[dt]), special=True)
    # wide ranges, to exercise the float32 libm paths
    for dt in ("f32", "f64"):
        add_case("arith", "exp_range_" + dt, "exp",
                 torch.linspace(-80, 80, 81, dtype=DT[dt]))
        add_case("arith", "log_range_" + dt, "log",
                 torch.logspace(-30, 30, 61, dtype=DT[dt]))
    for p in (0.0, 1.0, 2.0, 3.0, -1.0, -2.0, 0.5, -0.5, 2.5, -1.5, 1.0 / 3):
        seed()
        add_case("arith", "pow_%s_f64" % fmt(p).replace(".", "p"), "pow",
                 draw([2, 3], "f64", "pos"), s=p)
        add_case("arith", "pow_%s_special_f64" % fmt(p).replace(".", "p"),
                 "pow", torch.tensor(SPECIAL, dtype=torch.float64), s=p,
                 special=True)
    for p in (2.0, -1.0, 0.5, 2.5, -3.0):
        seed()
        add_case("arith", "pow_%s_f32" % fmt(p).replace(".", "p"), "pow",
                 draw([2, 3], "f32", "pos"), s=p)
        seed()
        add_case("arith", "pow_%s_c128" % fmt(p).replace(".", "p"), "pow",
                 draw([2, 3], "c128", "nz"), s=p)
    seed()
    add_case("arith", "pow_2p5_c64", "pow", draw([2, 3], "c64", "nz"), s=2.5)
    seed()
    add_case("arith", "pow_noncontig_f64", "pow",
             draw(base_shape([2, 3], "t"), "f64", "pos"), view_a="t", s=1.5)
    seed()
    add_case("arith", "pow_neg_base_f64", "pow", draw([2, 3], "f64", "n"),
             s=2.5)


def act_cases():
    acts = (("relu", 0.0), ("leaky_relu", 0.01), ("sigmoid", 0.0),
            ("tanh", 0.0), ("gelu", 0.0), ("gelu_tanh", 0.0))
    for op, s in acts:
        for dt in ("f32", "f64"):
            seed()
            add_case("act", "%s_%s" % (op, dt), op, draw([3, 4], dt, "n") * 3,
                     s=s)
            add_case("act", "%s_range_%s" % (op, dt), op,
                     torch.linspace(-12, 12, 97, dtype=DT[dt]), s=s)
            add_case("act", "%s_special_%s" % (op, dt), op,
                     torch.tensor(SPECIAL, dtype=DT[dt]), s=s, special=True)
        seed()
        add_case("act", op + "_noncontig_f32", op,
                 draw(base_shape([2, 3, 4], "t"), "f32", "n") * 2,
                 view_a="t", s=s)
        seed()
        add_case("act", op + "_step2_f64", op,
                 draw(base_shape([3, 4], "step2"), "f64", "n") * 2,
                 view_a="step2", s=s)
        seed()
        add_case("act", op + "_0d_f64", op, draw([], "f64", "n"), s=s)
    for s in (0.2, -0.5, 1.5):
        seed()
        add_case("act", "leaky_relu_%s_f32" % fmt(s).replace(".", "p"),
                 "leaky_relu", draw([3, 4], "f32", "n"), s=s)
    for op in ("sigmoid", "tanh"):
        for dt in ("c64", "c128"):
            seed()
            add_case("act", "%s_%s" % (op, dt), op, draw([3, 4], dt, "n") * 2)
        seed()
        add_case("act", op + "_noncontig_c128", op,
                 draw(base_shape([3, 4], "t"), "c128", "n"), view_a="t")


def main():
    torch.set_num_threads(1)
    os.makedirs(OUT, exist_ok=True)
    for f in os.listdir(OUT):
        if f.endswith(".npy") or f in ("cases.tsv", "VERSION.txt"):
            os.remove(os.path.join(OUT, f))
    npdt = {"f32": np.float32, "f64": np.float64, "c64": np.complex64,
            "c128": np.complex128}
    arith_cases()
    act_cases()
    names = [r[1] for r in rows]
    if len(set(names)) != len(names):
        sys.exit("duplicate case names")
    with open(os.path.join(OUT, "cases.tsv"), "w") as f:
        f.write("\t".join(["suite", "case", "op", "view_a", "rg_a", "view_b",
                           "rg_b", "s", "s_im", "grad_fn", "next",
                           "special", "a", "b", "y", "gy", "ga", "gb"]) +
                "\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    for dt, parts in store.items():
        vals = np.concatenate(parts) if parts else np.zeros(0)
        np.save(os.path.join(OUT, "values_%s.npy" % dt),
                np.ascontiguousarray(vals, dtype=npdt[dt]))
    with open(os.path.join(OUT, "VERSION.txt"), "w") as f:
        f.write("torch %s\nnumpy %s\ncases: %d\n" %
                (torch.__version__, np.__version__, len(rows)))
    size = sum(os.path.getsize(os.path.join(OUT, f)) for f in os.listdir(OUT))
    print("%d cases, %d bytes" % (len(rows), size))


if __name__ == "__main__":
    main()
