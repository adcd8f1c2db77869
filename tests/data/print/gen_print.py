#!/usr/bin/env python3
"""Generates the reference data of tests/test_print.c: torch's repr() of
tensors, with the values that produced it.

Run with a Python that has PyTorch 1.13 and NumPy (on Debian the system
interpreter with python3-torch; a pyenv "python3" on PATH may lack torch):

    /usr/bin/python3 tests/data/print/gen_print.py [output_dir]

(default output_dir: the folder holding this script).  The committed data
was made with torch 1.13.0a0 (Debian python3-torch) and NumPy 1.24.2; the
script records the version it ran with in examples.tsv and random.tsv
(first line, a comment) and refuses any torch other than 1.13.

Outputs (all values little-endian, C order; float32 '<f4', float64 '<f8',
complex64 '<c8', complex128 '<c16'):

  examples/NN.npy, examples/NN.txt   for the 54 examples of TENSOR_PRINT.md:
      t.detach().numpy() and repr(t) + "\\n" (print(t) exactly).
  examples.tsv   one line per example: n, expression, dtype, shape,
      requires_grad (0/1), grad_fn name or "-", is_parameter (0/1).

  random_f4.npy, random_f8.npy, random_c8.npy, random_c16.npy
      the values of every random tensor of that dtype, flattened row-major
      and concatenated, one 1-d array per dtype (keeps the file count low).
  random.txt     the reprs, each as "### <id>\\n" + repr(t) + "\\n\\n".
  random.tsv     one line per random tensor: id, dtype, shape ("2,3,4"; "-"
      for a 0-d tensor), value offset (in elements) into random_<dtype>.npy,
      requires_grad, grad_fn or "-", is_parameter, byte offset and length of
      the repr in random.txt, and a short description of the case.

The random tensors come from fixed seeds (random.Random(SEED) for the
choices, torch.Generator().manual_seed(SEED + k) for tensor k's values) and
cover: 0-5 dimensions, all four dtypes, int / fixed / scientific modes
(every switch: small minimum, large ratio, large maximum, integral values),
nan / inf / -inf / -0 / 0 in real and imaginary parts, empty tensors, wide
rows that wrap, summarised tensors (with extreme values hidden in elided
positions, which must not influence the format), autograd suffixes that do
and do not fit on the last line, and parameters.
"""

import os
import random
import sys

import numpy as np
import torch
from torch import nn

SEED = 20240531

# The examples of TENSOR_PRINT.md, section 9, in order (the same list as
# tensor_print_examples.py in the project's reference folder, copied here
# so that this repository stands alone).
EXAMPLES = [
    # fixed-point mode, alignment of the sign column
    "torch.tensor([1.5, -2.25, 3.0])",
    "torch.tensor([[1.0, 22.5], [333.25, -4.0]])",
    # integer mode
    "torch.tensor([1., -3., 0.])",
    "torch.zeros(3)",
    "torch.tensor([-0.0, 0.0])",
    "torch.tensor([-0.0, 1.5])",
    # scientific mode: small minimum, large ratio, large maximum
    "torch.tensor([0.0001, 1.0])",
    "torch.tensor([0.00009, 1.0])",
    "torch.tensor([0.001, 10.0])",
    "torch.tensor([0.01, 10.0])",
    "torch.tensor([100000000., 1.])",
    "torch.tensor([123456789., 1.])",
    "torch.tensor([0.00005, -0.00005])",
    # non-finite values
    "torch.tensor([float('nan'), 1.5, float('inf'), -float('inf')])",
    "torch.tensor([float('nan'), 2., float('inf')])",
    "torch.tensor([float('nan'), 1e-5, 1.])",
    # scalars and empty tensors
    "torch.tensor(3.5)",
    "torch.tensor(2.)",
    "torch.tensor(-0.00001)",
    "torch.zeros(0)",
    "torch.zeros(2, 0)",
    "torch.zeros(0, dtype=torch.float64)",
    "torch.zeros(0, dtype=torch.complex64)",
    # float64 suffix
    "torch.tensor([1.5, -2.25], dtype=torch.float64)",
    "torch.tensor([2., 3.], dtype=torch.float64)",
    # line wrapping at 80 columns and nesting layout
    "torch.arange(20.) / 3",
    "torch.arange(30.).reshape(2, 15) / 7",
    "torch.arange(12.).reshape(2, 2, 3) - 5.5",
    "torch.arange(16.).reshape(2, 2, 2, 2) * 0.5",
    "torch.arange(12.).reshape(1, 2, 2, 3, 1) - 4",
    "torch.arange(24.).reshape(2, 1, 3, 2, 2) / 4",
    # summarization (more than 1000 elements)
    "torch.arange(2000.) / 7",
    "torch.arange(1001.).reshape(7, 143)",
    "torch.arange(1600.).reshape(40, 40)",
    "(torch.arange(2 * 3 * 4 * 50.).reshape(2, 3, 4, 50) - 100) / 3",
    "torch.arange(7 * 7 * 7 * 3.).reshape(7, 7, 7, 3) / 10",
    # complex64 / complex128
    "torch.tensor([1+2j, -3.5-0.25j])",
    "torch.tensor([1+0j, 2-0j])",
    "torch.tensor([0.5+1e-5j, 100-3j])",
    "torch.tensor([1.25+2j], dtype=torch.complex128)",
    "torch.tensor(1.5-2.5j)",
    "torch.tensor([[1+1j, 2.5-1j], [-3+0.125j, 4j]])",
    "torch.arange(24.).reshape(12, 2).mul(0.37).to(torch.complex64) * (1 - 2j)",
    "torch.arange(10.).to(torch.complex64) * (0.5 + 0.25j)",
    # autograd suffixes
    "torch.ones(2, requires_grad=True)",
    "torch.ones(2, requires_grad=True) * 2",
    "torch.ones(2, dtype=torch.float64, requires_grad=True) * 2",
    "torch.full((2, 14), 1.5, requires_grad=True) * 2",
    "torch.full((2, 12), 1.5, requires_grad=True) * 2",
    "torch.full((2, 13), 1.5, dtype=torch.float64, requires_grad=True) * 2",
    "torch.arange(20., requires_grad=True) / 3",
    # parameters
    "nn.Parameter(torch.tensor([0.5304, -0.1265, 0.1165]))",
    "nn.Parameter(torch.tensor([1., 2.]), requires_grad=False)",
    "nn.Parameter(torch.tensor([1., 2.], dtype=torch.float64))",
]

DTYPES = {
    torch.float32: ("float32", "f4", np.float32),
    torch.float64: ("float64", "f8", np.float64),
    torch.complex64: ("complex64", "c8", np.complex64),
    torch.complex128: ("complex128", "c16", np.complex128),
}


def autograd_state(t):
    """(requires_grad, grad_fn name or "-", is_parameter) as repr sees it."""
    grad_fn = type(t.grad_fn).__name__ if t.grad_fn is not None else "-"
    return (int(t.requires_grad), grad_fn, int(isinstance(t, nn.Parameter)))


def shape_text(t):
    return ",".join(str(s) for s in t.shape) if t.dim() > 0 else "-"


def values_of(t):
    """The detached values in C order with the dtype's exact .npy type."""
    np_type = DTYPES[t.dtype][2]
    # np.array keeps a 0-d shape (np.ascontiguousarray would make it 1-d)
    a = np.array(t.detach().numpy(), dtype=np_type, order="C")
    return a.astype(a.dtype.newbyteorder("<"), copy=False)


# ---- the random set ----------------------------------------------------------

SPECIALS = [float("nan"), float("inf"), -float("inf"), -0.0, 0.0]


class Maker:
    """Draws the random cases. Each case is (description, tensor)."""

    def __init__(self):
        self.rng = random.Random(SEED)
        self.k = 0
        self.cases = []

    def gen(self):
        g = torch.Generator().manual_seed(SEED + self.k)
        self.k += 1
        return g

    def dtype(self):
        return self.rng.choice(list(DTYPES))

    def values(self, shape, dtype, scale, rounded):
        t = torch.randn(tuple(shape), generator=self.gen(), dtype=dtype) * scale
        if rounded:
            t = (torch.complex(t.real.round(), t.imag.round())
                 if t.is_complex() else t.round())
        return t

    def sprinkle(self, t, count):
        """Puts nan/inf/-inf/-0/0 at random places (real or imaginary)."""
        if t.numel() == 0:
            return t
        t = t.clone()
        flat = t.view(-1)
        for _ in range(count):
            i = self.rng.randrange(t.numel())
            v = self.rng.choice(SPECIALS)
            if t.is_complex():
                z = complex(flat[i].item())
                z = complex(v, z.imag) if self.rng.random() < 0.5 else complex(z.real, v)
                flat[i] = z
            else:
                flat[i] = v
        return t

    def decorate(self, t):
        """Sometimes gives t an autograd suffix or makes it a parameter."""
        r = self.rng.random()
        if r < 0.12:
            ops = [lambda x: x * 1, lambda x: x + 0, lambda x: x / 1,
                   lambda x: x.view(x.shape), lambda x: x.clone()]
            return self.rng.choice(ops)(t.detach().requires_grad_())
        if r < 0.18:
            return t.detach().requires_grad_()
        if r < 0.22:
            return nn.Parameter(t.detach(), requires_grad=self.rng.random() < 0.7)
        return t

    def add(self, desc, t):
        self.cases.append((desc, t))

    # -- families of cases ----------------------------------------------------

    def small(self, count):
        for _ in range(count):
            ndim = self.rng.randint(0, 5)
            shape = [self.rng.randint(1, 5) for _ in range(ndim)]
            if ndim and self.rng.random() < 0.04:
                shape[self.rng.randrange(ndim)] = 0
            dtype = self.dtype()
            scale = 10.0 ** self.rng.randint(-7, 10)
            rounded = self.rng.random() < 0.3
            t = self.values(shape, dtype, scale, rounded)
            desc = "small scale=1e%d%s" % (round(np.log10(scale)),
                                           " rounded" if rounded else "")
            if self.rng.random() < 0.2:
                t = self.sprinkle(t, self.rng.randint(1, 3))
                desc += " specials"
            self.add(desc, self.decorate(t))

    def wide(self, count):
        """Rows long enough to wrap, every element width."""
        for _ in range(count):
            ndim = self.rng.randint(1, 3)
            shape = [self.rng.randint(1, 3) for _ in range(ndim - 1)]
            shape.append(self.rng.randint(8, 40))
            dtype = self.dtype()
            scale = 10.0 ** self.rng.randint(-5, 9)
            rounded = self.rng.random() < 0.4
            t = self.values(shape, dtype, scale, rounded)
            if self.rng.random() < 0.2:
                t = self.sprinkle(t, 2)
            self.add("wide scale=1e%d" % round(np.log10(scale)), self.decorate(t))

    def summarised(self, count):
        """numel > 1000; extremes hidden in elided positions must not
        change the format."""
        shapes = [(1001,), (1500,), (7, 143), (6, 6, 6, 5), (11, 13, 7),
                  (2, 3, 4, 50), (40, 40), (1, 1001), (3, 1, 400),
                  (2, 2, 2, 2, 70), (7, 7, 7, 3), (1002, 1), (8, 8, 8, 2),
                  (5, 5, 5, 9), (2, 7, 2, 7, 6)]
        for j in range(count):
            shape = list(shapes[j % len(shapes)])
            dtype = self.dtype()
            scale = 10.0 ** self.rng.randint(-6, 9)
            rounded = self.rng.random() < 0.3
            t = self.values(shape, dtype, scale, rounded)
            desc = "summarised scale=1e%d" % round(np.log10(scale))
            if self.rng.random() < 0.5:
                # an extreme value at the middle of every long dimension
                # (hidden when the dimension is elided)
                idx = tuple(s // 2 for s in shape)
                t = t.clone()
                t[idx] = self.rng.choice([1e12, 1e-9, float("nan"), 0.5, 3e9])
                desc += " hidden-extreme"
            if self.rng.random() < 0.3:
                t = self.sprinkle(t, 3)
                desc += " specials"
            self.add(desc, self.decorate(t))

    def handmade(self):
        """Boundaries of the mode rules and the suffix placement."""
        f32, f64, c64, c128 = (torch.float32, torch.float64, torch.complex64,
                               torch.complex128)
        lit = [
            ([1e8, 1.0], f64), ([1e8, 1.5], f64), ([1e8 + 1, 1.0], f64),
            ([1000.0, 1.0], f64), ([1001.0, 1.0], f64), ([1e-4, 1.0], f64),
            ([1e-4, 0.5], f32), ([0.1, 100.0], f64), ([0.1, 100.01], f64),
            ([0.99995, 2.0], f64), ([9.99995, 1.5], f64),
            ([-9.99996, 1.5], f32), ([99999999.0, 0.5], f64),
            ([123456.789, -0.5], f64), ([1e-300, 1.0], f64),
            ([5e-324, 1.0], f64), ([1.7e308, -1.7e308], f64),
            ([float("nan")] * 3, f32), ([float("inf"), -float("inf")], f64),
            ([-0.0] * 4, f64), ([0.0, -0.0, float("nan")], f32),
            ([1e10, float("nan"), -0.0], f32), ([-1e-5, 0.0], f64),
            ([12345678.0, -87654321.0], f64), ([0.5, 1e-4 * 0.999], f64),
            ([1 + 1e-9j, 2 + 0j], c128), ([float("nan") + 1j, 1 - 1j], c64),
            ([complex(1, float("inf")), complex(-float("inf"), 2)], c128),
            ([complex(-0.0, -0.0), complex(0.0, 0.0)], c64),
            ([1e9 + 0.5j, -2 - 1e-6j], c128), ([3j, -4j, 5j], c64),
            ([complex(1.5, float("nan"))], c128),
        ]
        for vals, dt in lit:
            self.add("handmade %r" % (vals,), torch.tensor(vals, dtype=dt))
        self.add("handmade 0-d nan", torch.tensor(float("nan")))
        self.add("handmade 0-d -0", torch.tensor(-0.0, dtype=f64))
        self.add("handmade 0-d complex", torch.tensor(-1e-7 + 3e5j, dtype=c128))
        for shape in [(0,), (3, 0), (0, 2, 1), (1, 0, 0, 4)]:
            for dt in DTYPES:
                t = torch.zeros(shape, dtype=dt)
                if self.rng.random() < 0.5:
                    t = t.requires_grad_() * 1
                self.add("handmade empty %s" % (shape,), t)
        # rows whose last line is just short / just long enough for a suffix
        for n in range(8, 16):
            for dt in (f32, f64):
                t = torch.full((2, n), 1.5, dtype=dt, requires_grad=True) * 2
                self.add("handmade suffix fit n=%d" % n, t)
                t = torch.full((n,), -1.25, dtype=dt, requires_grad=True) + 0
                self.add("handmade suffix fit 1-d n=%d" % n, t)
        # the width the imaginary formatter gives its own column
        self.add("handmade complex wide",
                 torch.arange(30.).to(c64) * (1 - 2.5j) - 7j)
        self.add("handmade complex sci row",
                 torch.arange(1., 25.).to(c128) * (1e-6 + 1e3j))
        # a maximum of exactly 1e8 is not "> 1e8"
        for vals, dt in [([1e8, 5e5], f64), ([1e8, 123456.5], f64),
                         ([-1e8, 2e5], f32)]:
            self.add("handmade %r" % (vals,), torch.tensor(vals, dtype=dt))
        # nan with its sign bit set (x86's default nan, 0 * inf) prints
        # "nan" as Python does
        self.add("handmade -nan", -torch.tensor([float("nan"), 1.5]))
        self.add("handmade -nan sci",
                 -torch.tensor([float("nan"), 1e-5, 1.], dtype=f64))
        self.add("handmade -nan 0-d", -torch.tensor(float("nan")))
        self.add("handmade 0*inf", torch.zeros(3) * float("inf"))
        self.add("handmade -nan complex",
                 torch.complex(-torch.tensor([float("nan"), 2.0]),
                               -torch.tensor([1.0, float("nan")])))
        # no finite non-zero value: the width stays 1, which sets how many
        # elements share a line
        self.add("handmade zeros(30)", torch.zeros(30))
        self.add("handmade nan row", torch.full((40,), float("nan"), dtype=f64))
        self.add("handmade complex zero imag", torch.arange(30.).to(c64))
        self.add("handmade complex zero real", torch.arange(30.).to(c128) * 1j)
        # exactly THRESHOLD elements are not summarised
        self.add("handmade 1000 elements", torch.arange(1000.) / 3)
        self.add("handmade 1000 elements 2-d",
                 torch.randn(8, 125, generator=self.gen()))
        # grad_fn names of every length around the line-break limits, after
        # a dtype suffix that stays on the last line or moves to its own
        for total in range(30, 52):
            name = ("Long" + "x" * 40)[:total - len("Backward")]
            fn = type(name, (torch.autograd.Function,), {
                "forward": staticmethod(lambda ctx, x: x * 1),
                "backward": staticmethod(lambda ctx, g: g)})
            for shape, dt, v in [((1,), f64, 1.5), ((2, 14), f64, 3.0),
                                 ((2, 9), f64, 1.5), ((2, 3), c128, 1.5),
                                 ((1,), f32, 1.5), ((2, 6), f32, 1.5)]:
                x = torch.full(shape, v, dtype=dt, requires_grad=True)
                self.add("handmade grad_fn length %d" % total, fn.apply(x))


def make_random():
    m = Maker()
    m.handmade()
    m.small(260)
    m.wide(40)
    m.summarised(30)
    return m.cases


# ---- writing -----------------------------------------------------------------


def write_examples(out_dir):
    env = {"torch": torch, "nn": nn}
    ex_dir = os.path.join(out_dir, "examples")
    os.makedirs(ex_dir, exist_ok=True)
    rows = []
    for n, expr in enumerate(EXAMPLES, 1):
        t = eval(expr, env)  # noqa: S307 - the fixed expressions above
        name = DTYPES[t.dtype][0]
        np.save(os.path.join(ex_dir, "%02d.npy" % n), values_of(t))
        with open(os.path.join(ex_dir, "%02d.txt" % n), "w") as fh:
            fh.write(repr(t) + "\n")
        rg, gf, param = autograd_state(t)
        rows.append("%d\t%s\t%s\t%s\t%d\t%s\t%d" % (n, expr, name, shape_text(t),
                                                    rg, gf, param))
    with open(os.path.join(out_dir, "examples.tsv"), "w") as fh:
        fh.write("# torch %s, numpy %s\n" % (torch.__version__, np.__version__))
        fh.write("n\texpression\tdtype\tshape\trequires_grad\tgrad_fn\t"
                 "is_parameter\n")
        fh.write("\n".join(rows) + "\n")
    return len(rows)


def write_random(out_dir):
    cases = make_random()
    flat = {code: [] for _, code, _ in DTYPES.values()}
    used = {code: 0 for code in flat}
    text = []
    text_len = 0
    rows = []
    for i, (desc, t) in enumerate(cases):
        name, code, _ = DTYPES[t.dtype]
        v = values_of(t).reshape(-1)
        offset = used[code]
        flat[code].append(v)
        used[code] += v.size
        r = repr(t)
        head = "### %d\n" % i
        start = text_len + len(head)
        chunk = head + r + "\n\n"
        text.append(chunk)
        text_len += len(chunk)  # ASCII only
        rg, gf, param = autograd_state(t)
        rows.append("%d\t%s\t%s\t%d\t%d\t%s\t%d\t%d\t%d\t%s" % (
            i, name, shape_text(t), offset, rg, gf, param, start, len(r),
            desc.replace("\t", " ")))
    for name, code, np_type in DTYPES.values():
        arr = (np.concatenate(flat[code]) if flat[code]
               else np.zeros(0, dtype=np_type)).astype(np_type)
        np.save(os.path.join(out_dir, "random_%s.npy" % code),
                arr.astype(arr.dtype.newbyteorder("<")))
    joined = "".join(text)
    assert joined.isascii()
    with open(os.path.join(out_dir, "random.txt"), "w") as fh:
        fh.write(joined)
    with open(os.path.join(out_dir, "random.tsv"), "w") as fh:
        fh.write("# torch %s, numpy %s, seed %d\n" % (torch.__version__,
                                                      np.__version__, SEED))
        fh.write("id\tdtype\tshape\tvalue_offset\trequires_grad\tgrad_fn\t"
                 "is_parameter\trepr_offset\trepr_len\tdescription\n")
        fh.write("\n".join(rows) + "\n")
    return len(rows)


def main():
    if not torch.__version__.startswith("1.13"):
        sys.exit("gen_print.py needs torch 1.13, this is %s" % torch.__version__)
    torch.set_printoptions(profile="default")
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
        os.path.abspath(__file__))
    n_ex = write_examples(out_dir)
    n_rand = write_random(out_dir)
    print("wrote %d examples and %d random tensors to %s (torch %s)" % (
        n_ex, n_rand, out_dir, torch.__version__))


if __name__ == "__main__":
    main()
