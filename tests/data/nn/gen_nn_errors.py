#!/usr/bin/env python3
"""Reference data for cgrad's nn.ConvTranspose3d and nn.Conv3d modules,
produced by real PyTorch (1.13.x, CPU, one thread).

Run:  /usr/bin/python3 tests/data/nn/gen_nn_errors.py [output_dir]
(default output_dir: the folder holding this script). Needs torch and numpy.
This script is the only way the files below change.

It writes, next to itself:

  errors.tsv   every construction check (C1-C6 of CONV_TRANSPOSE3D.md and
               Conv3d's own), the module-level forward checks F1-F3, and a
               few functional checks reached through the module, each with
               the exception class and message torch raises. Rows whose
               call succeeds say "OK" and give the output shape instead.
  attrs.tsv    repr(getattr(module, name)) for every public attribute of a
               few modules (or the AttributeError message).
  reprs.tsv    repr(module) for many configurations.
  nested.txt   a container of layers (nn.Sequential, which cgrad's tests
               imitate with the module base): its repr, then one line per
               named_parameters() entry (name and shape); the same child
               appears twice, so the names show PyTorch's deduplication.
  conv3d_cases.tsv, conv3d/<case>/*.npy, output_repr.txt
               Conv3d golden data: manual_seed(seed); module; x = randn;
               y = m(x); gy = randn(y.shape); y.backward(gy) -- the same
               recipe as reference/golden/gen_golden.py uses for
               ConvTranspose3d.

Every table row starts with the same configuration columns, so the C tests
can rebuild each module from the row alone:

  id module in out kernel stride padding output_padding groups bias
  dilation padding_mode dtype seed set_padding_mode input_shape
  input_dtype output_size

Lists are comma-separated ("3,3,3"); an empty list is "()"; "-" means the
argument is not given (default) or, for input_shape / output_size /
set_padding_mode, absent. Sequences are passed to torch as lists, so their
length is kept (torch's _triple keeps any sequence as is). Text cells
escape backslash, tab and newline as \\\\, \\t and \\n.

PYTHONHASHSEED: Conv3d's "padding_mode must be one of {...}" message prints
a Python set, whose order depends on the string hash seed of the process.
The script re-runs itself with PYTHONHASHSEED=0 so the fixture is stable;
cgrad prints that order.
"""

import os
import subprocess
import sys

if os.environ.get("PYTHONHASHSEED") != "0":
    env = dict(os.environ, PYTHONHASHSEED="0")
    sys.exit(subprocess.call([sys.executable] + sys.argv, env=env))

import warnings  # noqa: E402

import numpy as np  # noqa: E402
import torch  # noqa: E402
from torch import nn  # noqa: E402

warnings.filterwarnings("ignore", message="Initializing zero-element tensors is a no-op")

DTYPES = {"float32": torch.float32, "float64": torch.float64,
          "complex64": torch.complex64, "complex128": torch.complex128,
          "int32": torch.int32}

CONFIG_COLUMNS = ["id", "module", "in", "out", "kernel", "stride", "padding",
                  "output_padding", "groups", "bias", "dilation", "padding_mode",
                  "dtype", "seed", "set_padding_mode", "input_shape", "input_dtype",
                  "output_size"]


def cfg(id_, module="ConvTranspose3d", in_=4, out=6, kernel=(3, 3, 3), **kw):
    c = {"id": id_, "module": module, "in": in_, "out": out, "kernel": list(kernel)}
    c.update(kw)
    return c


def fmt_list(v):
    if v is None:
        return "-"
    v = list(v)
    return ",".join(str(x) for x in v) if v else "()"


def escape(s):
    return s.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")


def config_cells(c):
    def opt(key, f=str):
        return f(c[key]) if key in c else "-"
    return [c["id"], c["module"], str(c["in"]), str(c["out"]), fmt_list(c["kernel"]),
            opt("stride", fmt_list), opt("padding", fmt_list),
            opt("output_padding", fmt_list), opt("groups"),
            opt("bias", lambda b: "1" if b else "0"), opt("dilation", fmt_list),
            opt("padding_mode"), opt("dtype"), opt("seed"), opt("set_padding_mode"),
            opt("input_shape", fmt_list), opt("input_dtype"), opt("output_size", fmt_list)]


def build(c):
    kw = {}
    for key in ("stride", "padding", "output_padding", "dilation"):
        if key in c:
            kw[key] = list(c[key])
    for key in ("groups", "bias", "padding_mode"):
        if key in c:
            kw[key] = c[key]
    if "dtype" in c:
        kw["dtype"] = DTYPES[c["dtype"]]
    cls = nn.ConvTranspose3d if c["module"] == "ConvTranspose3d" else nn.Conv3d
    torch.manual_seed(c.get("seed", 0))
    return cls(c["in"], c["out"], list(c["kernel"]), **kw)


def run(c):
    """Builds and (if the row has an input) runs the module; returns
    (exception class name or "OK", message or output shape)."""
    try:
        m = build(c)
        if "set_padding_mode" in c:
            m.padding_mode = c["set_padding_mode"]
        if "input_shape" not in c:
            return "OK", "-"
        x = torch.randn(tuple(c["input_shape"]), dtype=DTYPES[c.get("input_dtype", "float32")])
        if "output_size" in c:
            y = m(x, output_size=list(c["output_size"]))
        else:
            y = m(x)
        return "OK", fmt_list(y.shape)
    except Exception as exc:  # every failure is recorded, whatever its class
        return type(exc).__name__, str(exc)


CT = "ConvTranspose3d"
C3 = "Conv3d"
X5 = (2, 4, 5, 5, 5)
X4 = (4, 5, 5, 5)

ERRORS = [
    # ---- ConvTranspose3d construction: C1-C6 in PyTorch's order --------
    cfg("C1_reflect", padding_mode="reflect"),
    cfg("C1_before_C2", in_=3, groups=0, padding_mode="circular"),
    cfg("C2_groups0", groups=0),
    cfg("C2_groups_neg", groups=-2),
    cfg("C3_in", in_=3, out=6, groups=2),
    cfg("C4_out", in_=4, out=5, groups=2),
    cfg("C3_before_C4", in_=3, out=5, groups=2),
    cfg("C5_kernel_neg", in_=4, out=4, kernel=(-1, -1, -1)),
    cfg("C5_in_neg", in_=-1, out=4),
    cfg("C5_out_neg", in_=2, out=-2, groups=2),
    cfg("C5_kernel_mixed", in_=4, out=4, kernel=(3, -2, -5)),
    cfg("C6_int32", in_=4, out=4, dtype="int32"),
    cfg("C5_before_C6", in_=4, out=4, kernel=(-1, -1, -1), dtype="int32"),
    cfg("C2_before_C5", in_=4, out=4, kernel=(-1, -1, -1), groups=0),
    cfg("ok_zero_kernel", kernel=(0, 0, 0)),
    cfg("ok_in0", in_=0),
    cfg("ok_wrong_lengths", kernel=(3, 3), stride=(1, 1), padding=(0, 0, 0, 0)),
    # ---- Conv3d construction -------------------------------------------
    cfg("K2_groups0", module=C3, groups=0),
    cfg("K3_in", module=C3, in_=3, groups=2),
    cfg("K4_out", module=C3, out=5, groups=2),
    cfg("K_mode", module=C3, padding_mode="foo"),
    cfg("K_groups_before_mode", module=C3, groups=0, padding_mode="foo"),
    cfg("K_mode_before_C5", module=C3, kernel=(-1, -1, -1), padding_mode="foo"),
    cfg("K5_kernel_neg", module=C3, in_=4, out=4, kernel=(-1, -1, -1)),
    cfg("K5_out_neg", module=C3, in_=4, out=-2),
    cfg("K6_int32", module=C3, dtype="int32"),
    cfg("K_ok_reflect", module=C3, padding_mode="reflect"),
    # ---- ConvTranspose3d forward: module-level F1-F3 -------------------
    cfg("F1_reflect", set_padding_mode="reflect", input_shape=X5),
    cfg("F1_before_F2", set_padding_mode="circular", input_shape=X5, output_size=(1, 2)),
    cfg("F2_5d_got2", stride=(2, 2, 2), input_shape=X5, output_size=(10, 10)),
    cfg("F2_4d_got2", stride=(2, 2, 2), input_shape=X4, output_size=(10, 10)),
    cfg("F2_5d_got4", stride=(2, 2, 2), input_shape=X5, output_size=(2, 6, 11, 11)),
    cfg("F2_4d_got5", stride=(2, 2, 2), input_shape=X4, output_size=(1, 6, 11, 11, 11)),
    cfg("F2_3d_got2", stride=(2, 2, 2), input_shape=(4, 5, 5), output_size=(10, 10)),
    cfg("F2_empty", stride=(2, 2, 2), input_shape=X5, output_size=()),
    cfg("F3_high", stride=(2, 2, 2), input_shape=X5, output_size=(13, 11, 11)),
    cfg("F3_low", stride=(2, 2, 2), input_shape=X5, output_size=(11, 10, 11)),
    cfg("F3_5_entries", stride=(2, 2, 2), input_shape=X5, output_size=(2, 6, 13, 11, 11)),
    cfg("F3_4d", stride=(2, 2, 2), input_shape=X4, output_size=(13, 11, 11)),
    cfg("F3_4d_4_entries", stride=(2, 2, 2), input_shape=X4, output_size=(6, 13, 11, 11)),
    cfg("F3_padding", stride=(3, 3, 3), padding=(1, 2, 0), dilation=(2, 1, 1),
        input_shape=(1, 4, 2, 3, 4), output_size=(8, 7, 20)),
    cfg("F3_3d_input", stride=(2, 2, 2), input_shape=(4, 5, 5), output_size=(11, 11, 11)),
    cfg("F3_0d_input", stride=(2, 2, 2), input_shape=(), output_size=(11, 11, 11)),
    cfg("F3_short_kernel", kernel=(3, 3), stride=(2, 2, 2), input_shape=X5,
        output_size=(11, 11, 11)),
    cfg("F3_short_stride", stride=(2, 2), input_shape=X5, output_size=(11, 11, 11)),
    cfg("ok_leading_unchecked", stride=(2, 2, 2), input_shape=X5,
        output_size=(99, 99, 12, 11, 11)),
    cfg("ok_output_size_4d", stride=(2, 2, 2), input_shape=X4, output_size=(12, 11, 12)),
    cfg("ok_output_size_ignores_op", stride=(2, 2, 2), output_padding=(1, 1, 1),
        input_shape=X5, output_size=(11, 12, 11)),
    cfg("ok_batch0", input_shape=(0, 4, 5, 5, 5)),
    # ---- checks of the functional form, reached through the module -----
    cfg("G_F4_3d", input_shape=(4, 5, 5)),
    cfg("G_F4_0d", input_shape=()),
    cfg("G_F6_kernel2", kernel=(3, 3), input_shape=X5),
    cfg("G_F7_padding", padding=(-1, 0, 0), input_shape=X5),
    cfg("G_F8_output_padding", output_padding=(0, -1, 0), stride=(2, 2, 2), input_shape=X5),
    cfg("G_F9_stride", stride=(0, 1, 1), input_shape=X5),
    cfg("G_F10_in0", in_=0, input_shape=(1, 0, 5, 5, 5)),
    cfg("G_F12_channels", input_shape=(2, 3, 5, 5, 5)),
    cfg("G_F12_unbatched", input_shape=(3, 5, 5, 5)),
    cfg("G_F15_spatial0", input_shape=(1, 4, 0, 5, 5)),
    cfg("G_F16_dilation", dilation=(0, 0, 0), input_shape=X5),
    cfg("G_F17_op", output_padding=(1, 1, 1), input_shape=X5),
    cfg("G_F18_kernel0", kernel=(0, 0, 0), input_shape=(1, 4, 5, 5, 5)),
    cfg("G_F19_small", padding=(5, 5, 5), input_shape=(1, 4, 2, 2, 2)),
    cfg("G_F20_double_input", input_shape=X5, input_dtype="float64"),
    cfg("G_F20_double_module", dtype="float64", input_shape=X5),
    cfg("G_F20_complex_module", dtype="complex64", input_shape=X5),
    # ---- Conv3d forward through the module -----------------------------
    cfg("K_F4_3d", module=C3, input_shape=(4, 5, 5)),
    cfg("K_F12_channels", module=C3, input_shape=(2, 3, 5, 5, 5)),
    cfg("K_ok_unbatched", module=C3, input_shape=X4),
]

ATTR_NAMES = ["in_channels", "out_channels", "kernel_size", "stride", "padding",
              "output_padding", "groups", "dilation", "padding_mode", "transposed",
              "training", "weight", "bias", "device", "dtype", "foo", "__class__x"]

ATTR_MODULES = [
    cfg("A_seed", in_=1, out=3, kernel=(1, 1, 1), seed=42),
    cfg("A_full", in_=4, out=6, kernel=(3, 2, 1), stride=(2, 1, 3), padding=(1, 0, 0),
        output_padding=(1, 0, 2), groups=2, bias=False, dilation=(1, 2, 1), seed=3),
    cfg("A_f64", in_=2, out=2, kernel=(1, 1, 2), dtype="float64", seed=5),
    cfg("A_complex", in_=1, out=2, kernel=(1, 1, 1), dtype="complex64", seed=42),
    cfg("A_complex128", in_=2, out=4, kernel=(2, 1, 3), groups=2, dtype="complex128",
        seed=11),
    cfg("A_set_mode", in_=1, out=1, kernel=(1, 1, 1), set_padding_mode="reflect", seed=1),
    cfg("A_conv3d", module=C3, in_=2, out=4, kernel=(1, 1, 2), stride=(2, 2, 2),
        padding=(0, 1, 0), dilation=(1, 1, 3), groups=2, seed=8),
    cfg("A_conv3d_nobias", module=C3, in_=1, out=1, kernel=(1, 1, 1), bias=False,
        padding_mode="circular", seed=9),
]

REPRS = [
    cfg("R_seed", in_=1, out=3, kernel=(1, 1, 1)),
    cfg("R_doc", in_=16, out=33, kernel=(3, 5, 2), stride=(2, 1, 1), padding=(0, 4, 2)),
    cfg("R_all", stride=(2, 2, 2), padding=(1, 1, 1), output_padding=(1, 1, 1), groups=2,
        bias=False, dilation=(2, 2, 2)),
    cfg("R_op_only", stride=(2, 2, 2), output_padding=(0, 0, 1)),
    cfg("R_dil_only", dilation=(1, 2, 1)),
    cfg("R_explicit_defaults", stride=(1, 1, 1), padding=(0, 0, 0), output_padding=(0, 0, 0),
        groups=1, bias=True, dilation=(1, 1, 1), padding_mode="zeros"),
    cfg("R_set_mode", set_padding_mode="reflect"),
    cfg("R_short", kernel=(2,), stride=(1,), padding=(0,), dilation=(1,)),
    cfg("R_short_pad", kernel=(2, 2), padding=(0, 1)),
    cfg("R_empty", kernel=(), stride=(), padding=(), output_padding=(), dilation=()),
    cfg("R_zero_kernel", kernel=(0, 0, 0)),
    cfg("R_long", kernel=(1, 2, 3, 4), stride=(1, 1, 1, 1, 1)),
    cfg("K_default", module=C3),
    cfg("K_all", module=C3, in_=4, out=4, stride=(2, 2, 2), padding=(1, 1, 1), groups=2,
        bias=False, dilation=(2, 2, 2), padding_mode="reflect"),
    cfg("K_pad_only", module=C3, in_=16, out=33, kernel=(3, 5, 2), stride=(2, 1, 1),
        padding=(4, 2, 0)),
    cfg("K_circular", module=C3, padding_mode="circular"),
    cfg("K_short", module=C3, kernel=(2,), stride=(1,), padding=(0,), dilation=(1,)),
    cfg("K_set_mode", module=C3, set_padding_mode="replicate"),
]

# Conv3d golden cases: name, seed, dtype, config, input shape
CONV3D_CASES = [
    cfg("k01_basic", module=C3, in_=2, out=3, kernel=(2, 2, 2), seed=1, dtype="float32",
        input_shape=(1, 2, 4, 4, 4)),
    cfg("k02_stride_pad_f64", module=C3, in_=3, out=2, kernel=(3, 3, 3), stride=(2, 2, 2),
        padding=(1, 1, 1), seed=2, dtype="float64", input_shape=(2, 3, 5, 4, 6)),
    cfg("k03_groups_dil", module=C3, in_=4, out=6, kernel=(2, 3, 1), dilation=(2, 1, 3),
        groups=2, seed=3, dtype="float32", input_shape=(1, 4, 5, 5, 5)),
    cfg("k04_nobias_unbatched", module=C3, in_=2, out=2, kernel=(1, 2, 3), stride=(1, 2, 1),
        padding=(0, 1, 2), bias=False, seed=4, dtype="float64", input_shape=(2, 3, 4, 5)),
    cfg("k05_seed42", module=C3, in_=1, out=3, kernel=(1, 1, 1), seed=42, dtype="float32",
        input_shape=(1, 1, 1, 6)),
    cfg("k06_depthwise", module=C3, in_=3, out=3, kernel=(3, 3, 3), padding=(1, 1, 1),
        groups=3, seed=6, dtype="float32", input_shape=(2, 3, 4, 4, 4)),
]


def write_table(path, header, rows):
    with open(path, "w") as fh:
        fh.write("\t".join(header) + "\n")
        for row in rows:
            fh.write("\t".join(row) + "\n")


def gen_errors(out_dir):
    rows = []
    for c in ERRORS:
        exc, msg = run(c)
        rows.append(config_cells(c) + [exc, escape(msg)])
    write_table(os.path.join(out_dir, "errors.tsv"), CONFIG_COLUMNS + ["exception", "message"],
                rows)


def gen_attrs(out_dir):
    rows = []
    for c in ATTR_MODULES:
        m = build(c)
        if "set_padding_mode" in c:
            m.padding_mode = c["set_padding_mode"]
        for name in ATTR_NAMES:
            try:
                value = repr(getattr(m, name))
                exc = "OK"
            except AttributeError as e:
                exc, value = "AttributeError", str(e)
            rows.append(config_cells(c) + [name, exc, escape(value)])
    write_table(os.path.join(out_dir, "attrs.tsv"), CONFIG_COLUMNS + ["attr", "exception",
                                                                      "value"], rows)


def gen_reprs(out_dir):
    rows = []
    for c in REPRS:
        m = build(c)
        if "set_padding_mode" in c:
            m.padding_mode = c["set_padding_mode"]
        rows.append(config_cells(c) + [escape(repr(m))])
    write_table(os.path.join(out_dir, "reprs.tsv"), CONFIG_COLUMNS + ["repr"], rows)


def gen_conv3d(out_dir):
    rows = []
    for c in CONV3D_CASES:
        m = build(c)
        tdt = DTYPES[c["dtype"]]
        x = torch.randn(*c["input_shape"], dtype=tdt).requires_grad_()
        y = m(x)
        gy = torch.randn(*y.shape, dtype=tdt)
        y.backward(gy)
        arrays = {"input": x.detach(), "weight": m.weight.detach(), "grad_output": gy,
                  "output": y.detach(), "grad_input": x.grad, "grad_weight": m.weight.grad}
        if m.bias is not None:
            arrays["bias"] = m.bias.detach()
            arrays["grad_bias"] = m.bias.grad
        case_dir = os.path.join(out_dir, "conv3d", c["id"])
        os.makedirs(case_dir, exist_ok=True)
        for key, t in arrays.items():
            np.save(os.path.join(case_dir, key + ".npy"),
                    np.ascontiguousarray(t.numpy()), allow_pickle=False)
        with open(os.path.join(case_dir, "output_repr.txt"), "w") as fh:
            fh.write(repr(y) + "\n")
        rows.append(config_cells(c) + [fmt_list(y.shape), type(y.grad_fn).__name__,
                                       escape(repr(m))])
    write_table(os.path.join(out_dir, "conv3d_cases.tsv"),
                CONFIG_COLUMNS + ["output_shape", "grad_fn", "module_repr"], rows)


def gen_nested(out_dir):
    torch.manual_seed(0)
    shared = nn.ConvTranspose3d(1, 3, 1)
    inner = nn.Sequential(nn.Conv3d(3, 2, 2, bias=False), nn.ConvTranspose3d(2, 2, 2, stride=2))
    outer = nn.Sequential(shared, inner, shared)
    with open(os.path.join(out_dir, "nested.txt"), "w") as fh:
        fh.write(repr(outer) + "\n")
        for name, p in outer.named_parameters():
            fh.write("%s %s\n" % (name, fmt_list(p.shape)))


def main():
    out_dir = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))
    torch.set_num_threads(1)
    gen_errors(out_dir)
    gen_attrs(out_dir)
    gen_reprs(out_dir)
    gen_conv3d(out_dir)
    gen_nested(out_dir)
    with open(os.path.join(out_dir, "VERSION"), "w") as fh:
        fh.write("torch %s, numpy %s, PYTHONHASHSEED=0\n" % (torch.__version__,
                                                               np.__version__))


if __name__ == "__main__":
    main()
