#!/usr/bin/env python3
"""Reference data for cgrad's losses (core/loss.c, nn/loss.c, tested by
tests/test_loss.c), produced by real PyTorch 1.13 (CPU, one thread).

Run:  /usr/bin/python3 tests/data/nn/loss/gen_loss.py
(the system Python that has torch and numpy). This script is the only way
the files next to it change:

  cases.tsv        one row per case, in tests/fixture.c's "inputs" layout
                   (the columns of tests/data/ops/gen_reduce.py) plus "ls"
  values_f32.npy, values_f64.npy
                   every tensor of every case, flattened and concatenated
  errors.tsv       id, exception class and message of every error case
                   test_loss.c reproduces (the C test builds the same
                   arguments from the id)
  VERSION.txt      torch and numpy versions, case count

Columns of cases.tsv:
  suite    "loss"
  case     a unique name
  op       mse l1 bce ce nll
  args     red=0|1|2 (PyTorch's Reduction enum: none, mean, sum),
           ii=<ignore_index>, w=0|1 (a weight input follows the target),
           pw=0|1 (a pos_weight input follows)
  ls       label_smoothing (cross_entropy; 0 elsewhere)
  views    one entry per input ("c", with "!" when it needs no grad)
  chain    y.grad_fn and everything below it (gen_reduce.py's notation)
  inputs   input, target[, weight][, pos_weight]: stored tensors
  y, gy    the output and the gradient fed to y.backward(gy)
  grads    the gradients of the inputs ("-" for none)

cgrad has no integer dtype: a class-index target is stored (and passed to
cgrad) as a floating tensor holding the integral class numbers; PyTorch is
given the same values as int64. Every case draws from
torch.manual_seed(<row number>).
"""
import os
import warnings

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
COLUMNS = ["suite", "case", "op", "args", "ls", "views", "chain", "inputs",
           "y", "gy", "grads"]
TDT = {"f32": torch.float32, "f64": torch.float64}
NPDT = {"f32": np.float32, "f64": np.float64}
NAME = {torch.float32: "f32", torch.float64: "f64"}
RED = {"none": 0, "mean": 1, "sum": 2}

torch.set_num_threads(1)
# the broadcasting UserWarning of mse_loss / l1_loss (cgrad has no warnings)
warnings.simplefilter("ignore")
store = {k: [] for k in NPDT}
used = {k: 0 for k in NPDT}
rows = []


def put(t, dt=None):
    if t is None:
        return "-"
    t = t.detach().contiguous()
    dt = dt or NAME[t.dtype]
    arr = np.ascontiguousarray(t.numpy()).reshape(-1).astype(NPDT[dt])
    off = used[dt]
    store[dt].append(arr)
    used[dt] += arr.size
    shape = "()" if t.dim() == 0 else "x".join(str(s) for s in t.shape)
    return "%s:%d:%s" % (dt, off, shape)


def chain(fn):
    if fn is None:
        return "None"
    name = type(fn).__name__
    if name == "AccumulateGrad" or not fn.next_functions:
        return name
    return name + "(" + ", ".join(
        chain(f) + ("" if nr == 0 or f is None else "#%d" % nr)
        for f, nr in fn.next_functions) + ")"


def row(name, op, red, dt, x, t, t_grad, fn, w=None, pw=None, ii=-100,
        ls=0.0, t_store_dt=None):
    """x, t (and w, pw) are made under the row's seed by the caller;
    fn(x, t, w, pw) computes y. The target is a leaf needing grad when
    t_grad; an int64 target is stored as the input's dtype."""
    x.requires_grad_(True)
    if t_grad:
        t.requires_grad_(True)
    y = fn(x, t, w, pw)
    gy = torch.randn(y.shape, dtype=y.dtype)
    y.backward(gy)
    ins = [x, t] + [a for a in (w, pw) if a is not None]
    views = ["c", "c" if t_grad else "c!"] + ["c!"] * (len(ins) - 2)
    tdt = dt if t.dtype == torch.int64 else None
    stored = [put(x), put(t.double() if tdt else t, tdt)] + \
        [put(a) for a in ins[2:]]
    grads = [put(x.grad), put(t.grad) if t_grad else "-"] + \
        ["-"] * (len(ins) - 2)
    args = "red=%d ii=%d w=%d pw=%d" % (RED[red], ii, w is not None,
                                       pw is not None)
    rows.append(["loss", name, op, args, repr(float(ls)), ",".join(views),
                 chain(y.grad_fn), " ".join(stored), put(y), put(gy),
                 " ".join(grads)])


def seed():
    torch.manual_seed(len(rows))


def randn(*shape, dt):
    return torch.randn(*shape, dtype=TDT[dt])


for dt in ("f32", "f64"):
    for red in ("none", "mean", "sum"):
        tag = "%s_%s" % (red, dt)
        # ---- MSELoss, L1Loss: same shapes, broadcasting, 0-d -------------
        seed()
        row("mse_" + tag, "mse", red, dt, randn(3, 4, dt=dt),
            randn(3, 4, dt=dt), True,
            lambda x, t, w, pw, r=red: F.mse_loss(x, t, reduction=r))
        seed()
        row("mse_bcast_" + tag, "mse", red, dt, randn(2, 3, 4, dt=dt),
            randn(3, 1, dt=dt), True,
            lambda x, t, w, pw, r=red: F.mse_loss(x, t, reduction=r))
        seed()
        row("l1_" + tag, "l1", red, dt, randn(3, 4, dt=dt),
            randn(3, 4, dt=dt), True,
            lambda x, t, w, pw, r=red: F.l1_loss(x, t, reduction=r))
        seed()
        row("l1_bcast_" + tag, "l1", red, dt, randn(4, dt=dt),
            randn(2, 4, dt=dt), True,
            lambda x, t, w, pw, r=red: F.l1_loss(x, t, reduction=r))
        # ---- BCEWithLogitsLoss ------------------------------------------
        seed()
        row("bce_" + tag, "bce", red, dt, randn(3, 4, dt=dt) * 3,
            torch.rand(3, 4, dtype=TDT[dt]), True,
            lambda x, t, w, pw, r=red:
            F.binary_cross_entropy_with_logits(x, t, reduction=r))
        seed()
        row("bce_w_pw_" + tag, "bce", red, dt, randn(2, 3, 4, dt=dt) * 3,
            torch.rand(2, 3, 4, dtype=TDT[dt]), True,
            lambda x, t, w, pw, r=red:
            F.binary_cross_entropy_with_logits(x, t, weight=w, pos_weight=pw,
                                               reduction=r),
            w=torch.rand(3, 1, dtype=TDT[dt]) + 0.5,
            pw=torch.rand(4, dtype=TDT[dt]) * 3)
        seed()
        row("bce_pw_" + tag, "bce", red, dt, randn(5, dt=dt) * 4,
            (torch.rand(5) > 0.5).to(TDT[dt]), False,
            lambda x, t, w, pw, r=red:
            F.binary_cross_entropy_with_logits(x, t, pos_weight=pw,
                                               reduction=r),
            pw=torch.rand(5, dtype=TDT[dt]) * 2)
        # ---- CrossEntropyLoss with class indices -------------------------
        ce = (lambda x, t, w, pw, r=red, ii=-100, ls=0.0:
              F.cross_entropy(x, t, weight=w, ignore_index=ii, reduction=r,
                              label_smoothing=ls))
        seed()
        row("ce_" + tag, "ce", red, dt, randn(4, 5, dt=dt),
            torch.tensor([1, 0, 4, 2]), False, ce)
        seed()
        row("ce_w_" + tag, "ce", red, dt, randn(4, 5, dt=dt),
            torch.tensor([1, 0, 4, 1]), False, ce,
            w=torch.rand(5, dtype=TDT[dt]) + 0.1)
        seed()
        row("ce_ii_" + tag, "ce", red, dt, randn(5, 3, dt=dt),
            torch.tensor([2, -100, 0, -100, 1]), False, ce)
        seed()
        row("ce_ii1_w_" + tag, "ce", red, dt, randn(5, 3, dt=dt),
            torch.tensor([2, 1, 0, 1, 2]), False,
            lambda x, t, w, pw, r=red: F.cross_entropy(
                x, t, weight=w, ignore_index=1, reduction=r),
            w=torch.rand(3, dtype=TDT[dt]) + 0.1, ii=1)
        seed()
        row("ce_ls_" + tag, "ce", red, dt, randn(4, 5, dt=dt),
            torch.tensor([1, 0, 4, 2]), False,
            lambda x, t, w, pw, r=red: F.cross_entropy(
                x, t, reduction=r, label_smoothing=0.1), ls=0.1)
        seed()
        row("ce_ls_w_ii_" + tag, "ce", red, dt, randn(5, 4, dt=dt),
            torch.tensor([3, -100, 0, 2, 0]), False,
            lambda x, t, w, pw, r=red: F.cross_entropy(
                x, t, weight=w, reduction=r, label_smoothing=0.25),
            w=torch.rand(4, dtype=TDT[dt]) + 0.1, ls=0.25)
        seed()
        row("ce_ls_ii_" + tag, "ce", red, dt, randn(5, 4, dt=dt),
            torch.tensor([3, 2, 0, 2, 1]), False,
            lambda x, t, w, pw, r=red: F.cross_entropy(
                x, t, ignore_index=2, reduction=r, label_smoothing=0.3),
            ii=2, ls=0.3)
        seed()
        row("ce_4d_" + tag, "ce", red, dt, randn(2, 3, 2, 3, dt=dt),
            torch.randint(0, 3, (2, 2, 3)), False, ce)
        seed()
        row("ce_4d_w_ls_" + tag, "ce", red, dt, randn(2, 3, 2, 2, dt=dt),
            torch.tensor([[[0, 2], [1, -100]], [[2, 2], [0, 1]]]), False,
            lambda x, t, w, pw, r=red: F.cross_entropy(
                x, t, weight=w, reduction=r, label_smoothing=0.2),
            w=torch.rand(3, dtype=TDT[dt]) + 0.1, ls=0.2)
        seed()
        row("ce_3d_" + tag, "ce", red, dt, randn(2, 4, 3, dt=dt),
            torch.tensor([[0, 3, -100], [2, 1, 1]]), False, ce)
        seed()
        row("ce_5d_w_" + tag, "ce", red, dt, randn(2, 3, 2, 1, 2, dt=dt),
            torch.randint(0, 3, (2, 2, 1, 2)), False, ce,
            w=torch.rand(3, dtype=TDT[dt]) + 0.1)
        seed()
        row("ce_unbatched_" + tag, "ce", red, dt, randn(5, dt=dt),
            torch.tensor(3), False, ce)
        # ---- CrossEntropyLoss with class probabilities -------------------
        seed()
        row("ce_prob_" + tag, "ce", red, dt, randn(3, 4, dt=dt),
            torch.softmax(randn(3, 4, dt=dt), 1), True, ce)
        seed()
        row("ce_prob_w_ls_" + tag, "ce", red, dt, randn(3, 4, dt=dt),
            torch.softmax(randn(3, 4, dt=dt), 1), True,
            lambda x, t, w, pw, r=red: F.cross_entropy(
                x, t, weight=w, reduction=r, label_smoothing=0.15),
            w=torch.rand(4, dtype=TDT[dt]) + 0.1, ls=0.15)
        seed()
        row("ce_prob_4d_" + tag, "ce", red, dt, randn(2, 3, 2, 2, dt=dt),
            torch.softmax(randn(2, 3, 2, 2, dt=dt), 1), False, ce)
        seed()
        row("ce_prob_unbatched_ls_" + tag, "ce", red, dt, randn(4, dt=dt),
            torch.softmax(randn(4, dt=dt), 0), True,
            lambda x, t, w, pw, r=red: F.cross_entropy(
                x, t, reduction=r, label_smoothing=0.5), ls=0.5)
        # ---- F.nll_loss ----------------------------------------------------
        seed()
        row("nll_w_ii_" + tag, "nll", red, dt,
            torch.log_softmax(randn(4, 3, dt=dt), 1),
            torch.tensor([2, 0, 1, 0]), False,
            lambda x, t, w, pw, r=red: F.nll_loss(
                x, t, weight=w, ignore_index=0, reduction=r),
            w=torch.rand(3, dtype=TDT[dt]) + 0.1, ii=0)
        seed()
        row("nll_4d_" + tag, "nll", red, dt, randn(2, 3, 2, 2, dt=dt),
            torch.randint(0, 3, (2, 2, 2)), False,
            lambda x, t, w, pw, r=red: F.nll_loss(x, t, reduction=r))

# all targets ignored: mean is 0/0
seed()
row("ce_all_ignored_mean_f64", "ce", "mean", "f64", randn(2, 3, dt="f64"),
    torch.tensor([-100, -100]), False,
    lambda x, t, w, pw: F.cross_entropy(x, t))

# ---- errors --------------------------------------------------------------
L = torch.tensor
errors = []


def err(id_, f):
    try:
        f()
    except Exception as e:  # noqa: BLE001
        errors.append((id_, type(e).__name__, str(e)))
        return
    raise SystemExit("error case %s did not fail" % id_)


r = torch.randn
err("mse_shape", lambda: F.mse_loss(r(2, 3), r(2, 4)))
err("mse_reduction", lambda: F.mse_loss(r(2, 3), r(2, 3), reduction="bad"))
err("mse_shape_before_reduction",
    lambda: F.mse_loss(r(2, 3), r(2, 4), reduction="bad"))
err("mse_complex", lambda: F.mse_loss(r(2, 3, dtype=torch.complex64),
                                      r(2, 3, dtype=torch.complex64)))
err("l1_shape", lambda: F.l1_loss(r(2, 3), r(2, 4)))
err("l1_reduction", lambda: F.l1_loss(r(3), r(3), reduction="elementwise"))
err("bce_size", lambda: F.binary_cross_entropy_with_logits(r(3), r(2)))
err("bce_size_2d",
    lambda: F.binary_cross_entropy_with_logits(r(2, 3), r(3)))
err("bce_reduction_first", lambda: F.binary_cross_entropy_with_logits(
    r(3), r(2), reduction="Mean"))
err("bce_weight", lambda: F.binary_cross_entropy_with_logits(
    r(2, 3), torch.rand(2, 3), weight=torch.rand(4)))
err("bce_weight_big", lambda: F.binary_cross_entropy_with_logits(
    r(3), torch.rand(3), weight=torch.rand(2, 3)))
err("bce_pos_weight", lambda: F.binary_cross_entropy_with_logits(
    r(2, 3), torch.rand(2, 3), pos_weight=torch.rand(4)))
err("bce_pos_weight_big", lambda: F.binary_cross_entropy_with_logits(
    r(3), torch.rand(3), pos_weight=torch.rand(2, 3)))
err("bce_complex", lambda: F.binary_cross_entropy_with_logits(
    r(3, dtype=torch.complex64), r(3, dtype=torch.complex64)))
err("ce_batch", lambda: F.cross_entropy(r(3, 4), L([0, 1])))
err("ce_out_of_bounds", lambda: F.cross_entropy(r(3, 4), L([0, 1, 5])))
err("ce_negative", lambda: F.cross_entropy(r(3, 4), L([0, -1, 2])))
err("ce_out_of_bounds_4d",
    lambda: F.cross_entropy(r(2, 4, 2, 2), torch.full((2, 2, 2), 7)))
err("ce_out_of_bounds_3d",
    lambda: F.cross_entropy(r(2, 4, 2), torch.full((2, 2), 7)))
err("ce_out_of_bounds_unbatched", lambda: F.cross_entropy(r(4), L(9)))
err("ce_out_of_bounds_ls",
    lambda: F.cross_entropy(r(3, 4), L([0, 1, 9]), label_smoothing=0.1))
err("ce_reduction", lambda: F.cross_entropy(r(3, 4), L([0, 1, 2]),
                                            reduction="bad"))
err("ce_reduction_first", lambda: F.cross_entropy(r(3, 4), L([0, 1]),
                                                  reduction="bad"))
err("ce_weight", lambda: F.cross_entropy(r(3, 4), L([0, 1, 2]),
                                         weight=torch.rand(3)))
err("ce_weight_2d", lambda: F.cross_entropy(r(3, 4), L([0, 1, 2]),
                                            weight=torch.rand(2, 2)))
err("ce_weight_4d", lambda: F.cross_entropy(
    r(2, 4, 2, 2), torch.zeros(2, 2, 2, dtype=torch.long),
    weight=torch.rand(3)))
err("ce_weight_prob", lambda: F.cross_entropy(r(3, 4), torch.rand(3, 4),
                                              weight=torch.rand(3)))
err("ce_weight_dtype", lambda: F.cross_entropy(
    r(3, 4), L([0, 1, 2]), weight=torch.rand(4, dtype=torch.float64)))
err("ce_label_smoothing", lambda: F.cross_entropy(
    r(3, 4), L([0, 1, 2]), label_smoothing=1.5))
err("ce_label_smoothing_prob", lambda: F.cross_entropy(
    r(3, 4), torch.rand(3, 4), label_smoothing=1.5))
err("ce_prob_ignore_index", lambda: F.cross_entropy(
    r(3, 4), torch.rand(3, 4), ignore_index=1))
err("ce_target_size_3d", lambda: F.cross_entropy(
    r(2, 3, 5), torch.zeros(2, 4, dtype=torch.long)))
err("ce_target_size_4d", lambda: F.cross_entropy(
    r(2, 3, 5, 5), torch.zeros(2, 4, 5, dtype=torch.long)))
err("ce_target_dim_4d", lambda: F.cross_entropy(
    r(2, 3, 5, 5), torch.zeros(2, 5, dtype=torch.long)))
err("ce_target_dim_2d", lambda: F.cross_entropy(
    r(2, 3), torch.zeros(2, 4, 1, dtype=torch.long)))
err("ce_size_unbatched", lambda: F.cross_entropy(r(4), L([1, 2])))
err("ce_0d_prob", lambda: F.cross_entropy(r(()), torch.rand(())))
err("ce_0d", lambda: F.cross_entropy(r(()), L([1, 2])))
err("ce_complex", lambda: F.cross_entropy(r(3, 4, dtype=torch.complex64),
                                          L([0, 1, 2])))
err("module_one_argument", lambda: torch.nn.MSELoss()(r(3)))
err("module_one_argument_ce", lambda: torch.nn.CrossEntropyLoss()(r(3)))
err("module_bad_reduction",
    lambda: torch.nn.L1Loss(reduction="bad")(r(3), r(3)))
err("module_two_arguments", lambda: torch.nn.ReLU()(r(3), r(3)))

# ---- module reprs and attributes ------------------------------------------
from torch import nn  # noqa: E402
mods = [
    ("mse", nn.MSELoss()), ("l1_sum", nn.L1Loss(reduction="sum")),
    ("ce", nn.CrossEntropyLoss()),
    ("ce_opts", nn.CrossEntropyLoss(weight=torch.tensor([1., 2., 0.5]),
                                    ignore_index=2, reduction="none",
                                    label_smoothing=0.05)),
    ("bce", nn.BCEWithLogitsLoss()),
    ("bce_pw", nn.BCEWithLogitsLoss(pos_weight=torch.tensor([2., 3.]),
                                    reduction="sum")),
]
with open(os.path.join(HERE, "modules.tsv"), "w") as f:
    f.write("id\tattr\trepr\n")
    for id_, m in mods:
        f.write("%s\t-\t%s\n" % (id_, repr(m)))
        for a in ("reduction", "ignore_index", "label_smoothing", "weight",
                  "pos_weight", "training"):
            try:
                v = repr(getattr(m, a))
            except AttributeError as e:
                v = "AttributeError: " + str(e)
            f.write("%s\t%s\t%s\n" % (id_, a, v.replace("\n", "\\n")))

with open(os.path.join(HERE, "cases.tsv"), "w") as f:
    f.write("\t".join(COLUMNS) + "\n")
    for rw in rows:
        f.write("\t".join(rw) + "\n")
for dt in NPDT:
    np.save(os.path.join(HERE, "values_%s.npy" % dt),
            np.concatenate(store[dt]))
with open(os.path.join(HERE, "errors.tsv"), "w") as f:
    f.write("id\texception\tmessage\n")
    for e in errors:
        f.write("%s\t%s\t%s\n" % e)
with open(os.path.join(HERE, "VERSION.txt"), "w") as f:
    f.write("torch %s, numpy %s, %d cases, %d error cases\n" % (
        torch.__version__, np.__version__, len(rows), len(errors)))
