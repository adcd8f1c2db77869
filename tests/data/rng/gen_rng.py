#!/usr/bin/env python3
"""Writes the RNG fixtures of tests/test_rng.c ("torch" TCase) from real PyTorch.

Run from anywhere, with the system Python that has PyTorch 1.13 and numpy:

    /usr/bin/python3 tests/data/rng/gen_rng.py

It rewrites, next to itself:
  cases.tsv                 one row per call, replayed in order (see COLUMNS)
  rng_float32.npy, rng_float64.npy, rng_complex64.npy, rng_complex128.npy
                            the values of every row, concatenated (1-D, C order)
  VERSION.txt               torch / numpy versions and the seeds used

A "seq" is a list of rows replayed on ONE generator: a row whose seed is
not "=" calls manual_seed(seed) first (which also clears the cached normal
sample); "=" continues the stream. Rows with a view other than "contig"
fill a strided view of a zero-initialised base tensor and store the WHOLE
base (row-major), so untouched elements are checked too:
  t     2-D view = base.t(),             base shape (s1, s0)
  step  view = base[::2],                base shape (2*s0, s1, ...)
  perm  3-D view = base.permute(2, 0, 1), base shape (s1, s2, s0)
"at:i,j,..." (rand/randn only) stores just those elements of the flat result.
random64 rows store each 64-bit draw as two exact float64 integers (high
32-bit word, then low word), taken from int64.random_(-2**63, None), which
returns random64() unchanged. Floats in a/b are Python reprs (round-trip
exact with strtod). This script is the only way these files change.
"""
import math
import os
import subprocess
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
COLUMNS = ["seq", "group", "seed", "op", "dtype", "shape", "view", "a", "b",
           "offset", "count"]
TDT = {"float32": torch.float32, "float64": torch.float64,
       "complex64": torch.complex64, "complex128": torch.complex128}
NPDT = {"float32": np.float32, "float64": np.float64,
        "complex64": np.complex64, "complex128": np.complex128}

rows = []
store = {k: [] for k in NPDT}
used = {k: 0 for k in NPDT}
seeds_used = set()
seq_id = [-1]


def new_seq():
    seq_id[0] += 1


def add(group, seed, op, dtype, shape, view, a, b, values):
    """values: a flat numpy array of `dtype` (or float64 for random64)."""
    kind = "float64" if op == "random64" else dtype
    vals = np.ascontiguousarray(values, dtype=NPDT[kind]).reshape(-1)
    if seed is not None:
        seeds_used.add(seed)
    rows.append([str(seq_id[0]), group, "=" if seed is None else str(seed), op,
                 dtype, ",".join(str(s) for s in shape) if shape else "-",
                 view, "-" if a is None else repr(float(a)),
                 "-" if b is None else repr(float(b)), str(used[kind]),
                 str(vals.size)])
    store[kind].append(vals)
    used[kind] += vals.size


def flat(t):
    return t.detach().reshape(-1).numpy().copy()


def base_and_view(shape, view, dtype):
    if view == "contig":
        base = torch.zeros(shape, dtype=TDT[dtype])
        return base, base
    if view == "t":
        base = torch.zeros((shape[1], shape[0]), dtype=TDT[dtype])
        return base, base.t()
    if view == "step":
        base = torch.zeros((2 * shape[0],) + tuple(shape[1:]), dtype=TDT[dtype])
        return base, base[::2]
    if view == "perm":
        base = torch.zeros((shape[1], shape[2], shape[0]), dtype=TDT[dtype])
        return base, base.permute(2, 0, 1)
    raise ValueError(view)


def fill(group, seed, op, dtype, shape, view="contig", a=None, b=None):
    """manual_seed(seed) unless seed is None, then one call; records it."""
    if seed is not None:
        torch.manual_seed(seed)
    shape = tuple(shape)
    if op == "rand":
        out = torch.rand(shape, dtype=TDT[dtype])
    elif op == "randn":
        out = torch.randn(shape, dtype=TDT[dtype])
    else:
        base, v = base_and_view(shape, view, dtype)
        assert tuple(v.shape) == shape
        if op == "uniform":
            v.uniform_(a, b)
        elif op == "normal":
            v.normal_(a, b)
        else:
            raise ValueError(op)
        out = base
    add(group, seed, op, dtype, shape, view, a, b, flat(out))


# ---- engine: raw random64() words ------------------------------------------
def random64_row(seed, n, generator=None):
    if generator is None:
        torch.manual_seed(seed)
    t = torch.empty(n, dtype=torch.int64).random_(-2 ** 63, None,
                                                  generator=generator)
    words = []
    for v in t.tolist():
        u = v & (2 ** 64 - 1)
        words += [float(u >> 32), float(u & 0xFFFFFFFF)]
    add("engine", seed, "random64", "float64", (n,), "contig", None, None,
        np.array(words))


for seed in (0, 5489, 2 ** 32 + 5, -1):
    new_seq()
    random64_row(seed, 400)
# torch.Generator() before any seeding starts at default_rng_seed_val
new_seq()
fresh = torch.Generator()
assert fresh.initial_seed() == 67280421310721
random64_row(67280421310721, 400, generator=fresh)

# ---- init: nn.ConvTranspose3d.reset_parameters ------------------------------
init_cases = [
    (42, 1, 3, 1, 1, True, "float32"),
    (42, 3, 3, 1, 1, True, "float32"),
    (7, 4, 6, (2, 3, 1), 2, True, "float32"),
    (7, 4, 6, (2, 3, 1), 2, True, "float64"),
    (42, 1, 3, 1, 1, True, "complex64"),
    (0, 2, 4, 3, 1, True, "complex64"),
    (123, 8, 4, (3, 1, 2), 4, False, "float32"),
    (2024, 6, 9, 3, 3, True, "float64"),
    (5, 16, 8, 3, 1, True, "float32"),
    (99, 3, 12, (1, 2, 3), 3, True, "float32"),
    (2 ** 32 + 5, 2, 2, 2, 1, True, "float32"),
    (-1, 2, 2, 2, 1, True, "float64"),
]
for seed in range(20):
    init_cases.append((seed, 1 + seed % 4, 2 * (1 + seed % 3), 1 + seed % 3,
                       1, seed % 2 == 0, "float32"))
for seed, cin, cout, k, groups, bias, dtype in init_cases:
    new_seq()
    torch.manual_seed(seed)
    m = nn.ConvTranspose3d(cin, cout, k, groups=groups, bias=bias,
                           dtype=TDT[dtype])
    ks = tuple(k) if isinstance(k, tuple) else (k, k, k)
    fan_in = (cout // groups) * ks[0] * ks[1] * ks[2]
    # the same Python expressions torch.nn.init evaluates
    gain = math.sqrt(2.0 / (1 + math.sqrt(5) ** 2))
    bound = math.sqrt(3.0) * (gain / math.sqrt(fan_in))
    add("init", seed, "uniform", dtype, tuple(m.weight.shape), "contig",
        -bound, bound, flat(m.weight))
    if bias:
        bb = 1 / math.sqrt(fan_in)
        add("init", None, "uniform", dtype, (cout,), "contig", -bb, bb,
            flat(m.bias))

# ---- uniform_ and rand -------------------------------------------------------
uniform_cases = [
    (1, 50, -0.3, 0.7, "float32"), (2, 50, 0.0, 1.0, "float32"),
    (3, 40, -2.5, 1e-3, "float64"), (4, 9, -1.0, 1.0, "complex64"),
    (11, 700, -0.125, 0.125, "float32"),
    (5, 9, -1.0, 1.0, "complex128"), (6, 4, -3.5, 2.25, "complex128"),
    (7, 33, 0.0, 1.0, "float64"), (13, 5, 0.5, 0.5, "float32"),
    (14, 6, -1e300, 1e300, "float64"), (15, 6, -1e38, 1e38, "float32"),
    (16, 17, 3.0, 1e7, "float32"),
    # bounds that float32 cannot hold: the width is float(to) - float(from)
    (17, 50, 0.1, 0.7, "float32"), (18, 50, 1.1, 3.3, "float32"),
    (19, 50, -0.3333, 0.2, "complex64"), (28, 50, 1e-3, 1e-2, "float32"),
]
for seed, n, lo, hi, dtype in uniform_cases:
    new_seq()
    fill("uniform", seed, "uniform", dtype, (n,), a=lo, b=hi)
for seed, shape, view, dtype in [(20, (4, 3), "t", "float32"),
                                 (21, (3, 4), "step", "float64"),
                                 (22, (2, 3, 4), "perm", "float32"),
                                 (23, (3, 5), "t", "complex64"),
                                 (24, (2, 3), "step", "complex128"),
                                 (25, (), "contig", "float32"),
                                 (26, (2, 1, 3), "contig", "complex64")]:
    new_seq()
    fill("uniform", seed, "uniform", dtype, shape, view, -0.75, 0.5)
for seed, shape, dtype in [(8, (3, 4), "float32"), (9, (2, 5), "float64"),
                           (10, (7,), "complex64"), (12, (2, 3), "complex128"),
                           (27, (5000,), "float64")]:
    new_seq()
    fill("uniform", seed, "rand", dtype, shape)

# ---- randn and normal_, every path -------------------------------------------
for seed in range(12):
    for n in (1, 2, 3, 7, 15, 16, 17, 31, 40, 100, 257):
        for dtype in ("float32", "float64"):
            new_seq()
            fill("randn", seed, "randn", dtype, (n,))
    for n in (1, 5, 8, 9, 30):
        new_seq()
        fill("randn", seed, "randn", "complex64", (n,))
for seed in range(6):
    for n in (1, 5, 7, 8, 9, 30):
        new_seq()
        fill("randn", seed, "randn", "complex128", (n,))
new_seq()
fill("randn", 42, "randn", "float32", (5000,))
for seed, shape, dtype in [(30, (4, 5), "float32"), (31, (), "float64"),
                           (32, (2, 3, 4), "float64"),
                           (33, (3, 3), "complex128")]:
    new_seq()
    fill("randn", seed, "randn", dtype, shape)
for i, (mean, std) in enumerate([(0.3, 2.7), (-1.1, 0.37), (5.0, 0.0)]):
    for dtype in TDT:
        for n in (5, 16, 37):
            new_seq()
            fill("randn", 40 + i, "normal", dtype, (n,), a=mean, b=std)
for seed, shape, view, dtype in [(50, (8, 5), "t", "float32"),
                                 (51, (6, 4), "t", "float64"),
                                 (52, (10, 3), "step", "float32"),
                                 (53, (5, 4), "t", "complex64"),
                                 (54, (2, 3, 4), "perm", "complex128"),
                                 (55, (3, 4, 2), "perm", "float32")]:
    new_seq()
    fill("randn", seed, "normal", dtype, shape, view, 0.25, 1.5)

# The AVX2 sincos reduces its argument with three multiply-adds that GCC
# fuses; fused and unfused differ only for u2 in {12582909, 12582912,
# 12582913} * 2**-24 (theta near 3*pi/2). These seeds hit one of those
# values in a u2 slot early in the stream; only the two outputs of that
# pair (cos at i - 8, sin at i) are stored.
for seed, i in [(376, 14141), (133, 118763), (45, 194715)]:
    new_seq()
    n = (i // 16 + 1) * 16
    torch.manual_seed(seed)
    t = torch.randn(n).reshape(-1)
    add("randn", seed, "randn", "float32", (n,), "at:%d,%d" % (i - 8, i),
        None, None, t[[i - 8, i]].numpy().copy())

# ---- sequences on one generator: the cached normal sample --------------------
new_seq()  # rng_check.py's sequence: the cache survives paths B/C and rand
fill("seq", 3, "randn", "float32", (3,))
fill("seq", None, "randn", "float32", (20,))
fill("seq", None, "randn", "float32", (1,))
fill("seq", None, "rand", "float32", (2,))
fill("seq", None, "randn", "float64", (2,))
new_seq()  # manual_seed clears the cache
fill("seq", 4, "randn", "float32", (1,))
fill("seq", 4, "randn", "float32", (1,))
new_seq()  # neither uniform_ nor path B touch the cache
fill("seq", 5, "randn", "float64", (1,))
fill("seq", None, "uniform", "float32", (3,), a=-2.0, b=2.0)
fill("seq", None, "randn", "float64", (17,))
fill("seq", None, "randn", "float32", (1,))
new_seq()  # complex and mean/std applied to a cached sample
fill("seq", 6, "randn", "complex64", (1,))
fill("seq", None, "randn", "float32", (1,))
fill("seq", None, "randn", "complex128", (1,))
fill("seq", None, "normal", "float64", (1,), a=2.0, b=0.5)
fill("seq", None, "normal", "float32", (1,), a=-1.0, b=3.0)

# ---- write ---------------------------------------------------------------------
with open(os.path.join(HERE, "cases.tsv"), "w") as fh:
    fh.write("\t".join(COLUMNS) + "\n")
    for r in rows:
        fh.write("\t".join(r) + "\n")
for kind, parts in store.items():
    arr = np.concatenate(parts) if parts else np.zeros(0, dtype=NPDT[kind])
    np.save(os.path.join(HERE, "rng_%s.npy" % kind), arr.astype(NPDT[kind]))
# the default generator of a fresh process is seeded non-deterministically
probe = [subprocess.run([sys.executable, "-c",
                         "import torch; print(torch.initial_seed())"],
                        capture_output=True, text=True, check=True).stdout
         for _ in range(2)]
assert probe[0] != probe[1]
with open(os.path.join(HERE, "VERSION.txt"), "w") as fh:
    fh.write("torch %s\nnumpy %s\n" % (torch.__version__, np.__version__))
    fh.write("torch.Generator().initial_seed() = 67280421310721\n")
    fh.write("torch.initial_seed() of a fresh process differs between "
             "processes (checked)\n")
    fh.write("seeds: %s\n" % " ".join(str(s) for s in sorted(seeds_used)))
    fh.write("rows: %d, sequences: %d\n" % (len(rows), seq_id[0] + 1))
    for kind in NPDT:
        fh.write("rng_%s.npy: %d values\n" % (kind, used[kind]))
print("wrote %d rows in %d sequences to %s" % (len(rows), seq_id[0] + 1, HERE))
