#!/usr/bin/env python3
"""Writes the fixtures of tests/test_optim.c and tests/test_lr_scheduler.c
from real PyTorch 1.13.

Run from anywhere, with the system Python that has PyTorch 1.13 and numpy
(the `python3` on PATH may be a pyenv without torch):

    /usr/bin/python3 tests/data/optim/gen_optim.py

It rewrites, next to itself (this script is the only way they change):

  VERSION.txt            torch / numpy versions, seeds, thread count
  problem_<dtype>.npy    the test problem for float32/float64/complex64/
                         complex128, 1-D: initial values of P0 (2,3), P1 (4,),
                         P2 (3,2, a transposed, non-contiguous leaf), P3 (2,)
                         (never gets a grad), then coefficients C0, C1, C2
                         and targets T0, T1, T2 (row-major each). The loss is
                         sum over k of |Pk*Ck - Tk|^2, written for complex as
                         sum(real(z)**2 + imag(z)**2), for real as
                         sum(z**2).
  optim_cases.tsv        one optimizer run per row (columns below)
  traj/<case>.npy        (STEPS+1, 18) parameter values (P0, P1, P2, P3
                         flattened in logical order) before and after every
                         step
  state/<case>.tsv       the optimizer's state_dict after SPLIT steps,
                         flattened with cgrad's dotted names (see
                         cg_state_dict): name, kind, value (numbers as
                         repr(float)) or dtype and shape for tensors
  state/<case>.npy       the values of those tensors, concatenated, 1-D, in
                         the parameters' dtype (0-d steps as a float32 file
                         state/<case>_step.npy is not needed: steps are
                         numbers in the tsv)
  errors.tsv             constructor errors of optimizers and schedulers:
                         what, args, exception, message
  sched_cases.tsv        scheduler runs: name, optimizer, lrs, spec, steps,
                         metrics
  sched/<case>.npy       (steps+1, ngroups) get_last_lr() after construction
                         and after every step (float64); OneCycleLR cases
                         also sched/<case>_mom.npy with the cycled momentum
  clip_cases.tsv         clip_grad_norm_ runs: name, dtype, shapes, max_norm,
                         norm_type, error_if_nonfinite, total (repr), status
  clip/<case>_in.npy / _out.npy   gradients before / after, concatenated
  norms.tsv              clip_grad_norm_ of one torch.randn(n) * scale
                         gradient (seed per row), n = 1..72, 100, 1000, 4099:
                         dtype, n, seed, scale, norm_type, total
  randperm.tsv           torch.randperm: n, seed, generator, dtype, the first
                         (up to) 16 values, and a checksum of all of them
  loader.tsv             DataLoader(TensorDataset(x, y)) runs: every batch
                         of y (the sample indices) per epoch, and a float64
                         torch.rand drawn from the default generator (and
                         from the loader's generator) after each epoch

optim_cases.tsv columns: name, optimizer, dtype, options ("k=v,..."; betas
as betas0/betas1), group1 ("-" for one group holding P0..P3; else the
options that group 1 overrides: group 0 holds P0 and P3, group 1 P1 and P2),
grad ("loss": backward of the loss; "param": P0..P2's .grad set to a copy
of the parameter, so no arithmetic enters the gradient).
"""
import math
import os
import sys

import numpy as np
import torch

HERE = os.path.dirname(os.path.abspath(__file__))
STEPS = 20
SPLIT = 10
TDT = {"float32": torch.float32, "float64": torch.float64,
       "complex64": torch.complex64, "complex128": torch.complex128}
NPDT = {"float32": np.float32, "float64": np.float64,
        "complex64": np.complex64, "complex128": np.complex128}
SHAPES = [(2, 3), (4,), (3, 2), (2,)]

torch.set_num_threads(1)


def out(path):
    full = os.path.join(HERE, path)
    os.makedirs(os.path.dirname(full), exist_ok=True)
    return full


def save(path, arr):
    np.save(out(path), np.ascontiguousarray(arr))


# ---- the problem ----------------------------------------------------------

def problem(dtname):
    torch.manual_seed(1234)
    dt = TDT[dtname]
    vals = [torch.randn(s, dtype=dt) for s in SHAPES]
    coefs = [torch.randn(s, dtype=dt) for s in SHAPES[:3]]
    targets = [torch.randn(s, dtype=dt) for s in SHAPES[:3]]
    flat = torch.cat([t.reshape(-1) for t in vals + coefs + targets])
    save("problem_%s.npy" % dtname, flat.numpy())
    return vals, coefs, targets


PROBLEMS = {k: problem(k) for k in TDT}


def make_params(dtname):
    vals, _, _ = PROBLEMS[dtname]
    p0 = vals[0].clone().requires_grad_()
    p1 = vals[1].clone().requires_grad_()
    base = vals[2].t().contiguous()          # (2, 3)
    p2 = base.t().detach().requires_grad_()  # (3, 2), strides (1, 3)
    assert not p2.is_contiguous() and p2.is_leaf
    p3 = vals[3].clone().requires_grad_()
    return [p0, p1, p2, p3]


def loss_of(params, dtname):
    _, coefs, targets = PROBLEMS[dtname]
    total = None
    for p, c, t in zip(params[:3], coefs, targets):
        z = p * c - t
        if z.is_complex():
            term = (z.real ** 2 + z.imag ** 2).sum()
        else:
            term = (z ** 2).sum()
        total = term if total is None else total + term
    return total


def flat_params(params):
    return torch.cat([p.detach().reshape(-1) for p in params]).numpy()


# ---- optimizers ------------------------------------------------------------

OPT_CLASSES = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam,
               "AdamW": torch.optim.AdamW, "RMSprop": torch.optim.RMSprop,
               "Adagrad": torch.optim.Adagrad}


def parse_opts(s):
    if s == "-":
        return {}
    d = {}
    for kv in s.split(","):
        k, v = kv.split("=")
        d[k] = v
    return d


def to_kwargs(d):
    kw = {}
    betas = None
    for k, v in d.items():
        if k in ("nesterov", "maximize", "amsgrad", "centered"):
            kw[k] = v == "1"
        elif k in ("betas0", "betas1"):
            betas = betas or [0.9, 0.999]
            betas[int(k[-1])] = float(v)
        else:
            kw[k] = float(v)
    if betas:
        kw["betas"] = tuple(betas)
    return kw


def flatten_state_dict(sd):
    """cgrad's flattening of PyTorch's nested dict: [(name, value)]."""
    items = []
    for idx, st in sd["state"].items():
        for k, v in st.items():
            items.append(("state.%d.%s" % (idx, k), v))
    for gi, g in enumerate(sd["param_groups"]):
        for k, v in g.items():
            if k == "params":
                for j, pi in enumerate(v):
                    items.append(("param_groups.%d.params.%d" % (gi, j), pi))
            elif isinstance(v, tuple):
                for j, x in enumerate(v):
                    items.append(("param_groups.%d.%s.%d" % (gi, k, j), x))
            else:
                items.append(("param_groups.%d.%s" % (gi, k), v))
    return items


def write_state(case, opt, dtname):
    rows, tensors = [], []
    for name, v in flatten_state_dict(opt.state_dict()):
        if torch.is_tensor(v):
            if v.dim() == 0:  # Adam's and Adagrad's step: a 0-d float32
                rows.append("%s\ttensor0\t%r\t%s" % (name, float(v.item()),
                                                     str(v.dtype)[6:]))
            else:
                rows.append("%s\ttensor\t%s\t%s" % (
                    name, str(v.dtype)[6:], ",".join(map(str, v.shape))))
                tensors.append(v.detach().reshape(-1).to(TDT[dtname]))
        elif v is None:
            rows.append("%s\tNone\t-\t-" % name)
        elif isinstance(v, bool):
            rows.append("%s\tbool\t%d\t-" % (name, int(v)))
        else:
            rows.append("%s\tnumber\t%r\t-" % (name, float(v)))
    with open(out("state/%s.tsv" % case), "w") as f:
        f.write("name\tkind\tvalue\textra\n")
        f.write("\n".join(rows) + "\n")
    if tensors:
        save("state/%s.npy" % case, torch.cat(tensors).numpy())
    else:
        save("state/%s.npy" % case, np.zeros(0, dtype=NPDT[dtname]))


OPT_CASES = []


def opt_case(name, optname, options, group1="-",
             dtypes=("float32", "float64"), grad="loss"):
    for dt in dtypes:
        OPT_CASES.append(("%s_%s" % (name, dt), optname, dt, options, group1,
                          grad))


opt_case("sgd_plain", "SGD", "lr=0.1")
opt_case("sgd_momentum", "SGD", "lr=0.05,momentum=0.9")
opt_case("sgd_nesterov_wd", "SGD",
         "lr=0.05,momentum=0.9,nesterov=1,weight_decay=0.01")
opt_case("sgd_dampening_maximize", "SGD",
         "lr=0.01,momentum=0.8,dampening=0.3,maximize=1")
opt_case("sgd_groups", "SGD", "lr=0.05,momentum=0.9", "lr=0.01")
opt_case("sgd_complex", "SGD", "lr=0.05,momentum=0.9,weight_decay=0.1",
         dtypes=("complex64", "complex128"))
opt_case("adam_default", "Adam", "lr=0.01")
opt_case("adam_wd_amsgrad", "Adam",
         "lr=0.02,weight_decay=0.1,amsgrad=1,betas0=0.8,betas1=0.99")
opt_case("adam_maximize_eps", "Adam", "lr=0.01,maximize=1,eps=1e-06")
opt_case("adam_groups", "Adam", "lr=0.01", "lr=0.003,amsgrad=1")
opt_case("adam_complex", "Adam", "lr=0.01,weight_decay=0.05",
         dtypes=("complex64", "complex128"))
opt_case("adamw_default", "AdamW", "lr=0.01")
opt_case("adamw_amsgrad", "AdamW", "lr=0.02,weight_decay=0.1,amsgrad=1")
opt_case("adamw_groups", "AdamW", "lr=0.01", "lr=0.05,weight_decay=0.0")
opt_case("adamw_complex", "AdamW", "lr=0.01,maximize=1",
         dtypes=("complex64", "complex128"))
opt_case("rmsprop_default", "RMSprop", "lr=0.01")
opt_case("rmsprop_centered_momentum", "RMSprop",
         "lr=0.01,momentum=0.9,centered=1,weight_decay=0.05")
opt_case("rmsprop_maximize", "RMSprop", "lr=0.005,alpha=0.9,maximize=1")
opt_case("rmsprop_groups", "RMSprop", "lr=0.01", "lr=0.002,momentum=0.5")
opt_case("rmsprop_complex", "RMSprop",
         "lr=0.01,momentum=0.5,centered=1,weight_decay=0.05",
         dtypes=("complex64", "complex128"))
opt_case("adagrad_default", "Adagrad", "lr=0.1")
opt_case("adagrad_decay", "Adagrad",
         "lr=0.1,lr_decay=0.01,weight_decay=0.1,"
         "initial_accumulator_value=0.5,eps=1e-06")
opt_case("adagrad_groups", "Adagrad", "lr=0.1", "lr=0.3,maximize=1")
opt_case("adagrad_complex", "Adagrad", "lr=0.1,weight_decay=0.1,"
         "initial_accumulator_value=0.25", dtypes=("complex64", "complex128"))
# The same complex runs with .grad = p.clone() (no arithmetic in the
# gradient): the optimizers' own complex arithmetic, bit for bit.
for _n, _o, _a in [("sgd", "SGD", "lr=0.05,momentum=0.9,weight_decay=0.1"),
                   ("adam", "Adam", "lr=0.01,weight_decay=0.05"),
                   ("adamw", "AdamW", "lr=0.01,maximize=1"),
                   ("rmsprop", "RMSprop",
                    "lr=0.01,momentum=0.5,centered=1,weight_decay=0.05"),
                   ("adagrad", "Adagrad", "lr=0.1,weight_decay=0.1,"
                    "initial_accumulator_value=0.25")]:
    opt_case(_n + "_gradp", _o, _a, dtypes=("complex64", "complex128"),
             grad="param")


def run_opt_case(case):
    name, optname, dt, options, group1, grad = case
    params = make_params(dt)
    kw = to_kwargs(parse_opts(options))
    cls = OPT_CLASSES[optname]
    if group1 == "-":
        opt = cls(params, **kw)
    else:
        g1 = dict(kw)
        g1.update(to_kwargs(parse_opts(group1)))
        g1.pop("params", None)
        groups = [{"params": [params[0], params[3]]},
                  dict(params=[params[1], params[2]], **g1)]
        opt = cls(groups, **kw)
    traj = [flat_params(params)]
    for step in range(1, STEPS + 1):
        opt.zero_grad()
        if grad == "loss":
            loss_of(params, dt).backward()
        else:
            for p in params[:3]:
                p.grad = p.detach().clone()
        opt.step()
        assert params[3].grad is None
        traj.append(flat_params(params))
        if step == SPLIT:
            write_state(name, opt, dt)
    save("traj/%s.npy" % name, np.stack(traj))


# ---- errors ----------------------------------------------------------------

ERRORS = []


def err(what, args, fn):
    try:
        fn()
    except Exception as e:  # noqa: BLE001 -- recording PyTorch's exception
        ERRORS.append((what, args, type(e).__name__, str(e)))
        return
    raise AssertionError("no error: %s %s" % (what, args))


def errors():
    p = torch.zeros(2, requires_grad=True)
    q = torch.zeros(2, requires_grad=True)
    nonleaf = p * 2

    def opt_err(optname, args, params=None):
        kw = to_kwargs(parse_opts(args)) if "=" in args else {}
        err(optname, args, lambda: OPT_CLASSES[optname](
            [p] if params is None else params, **kw))

    opt_err("SGD", "lr=-1.0")
    # Python's repr(float) in messages: positional vs exponent, shortest
    # round-trip digits, subnormals, the largest double
    for v in (-1e16, -1e15, -0.0001, -1e-05, -123.456, -2.5e-310,
              -1.7976931348623157e+308, -0.30000000000000004, -5e-324,
              -1234567.0, -float("inf")):
        opt_err("SGD", "lr=%r" % v)
    opt_err("SGD", "lr=0.1,momentum=-0.5")
    opt_err("SGD", "lr=0.1,weight_decay=-1.0")
    opt_err("SGD", "lr=0.1,nesterov=1")
    opt_err("SGD", "lr=0.1,nesterov=1,momentum=0.9,dampening=0.1")
    err("SGD", "required", lambda: torch.optim.SGD([p]))
    for optname in ("Adam", "AdamW"):
        opt_err(optname, "lr=-0.001")
        opt_err(optname, "eps=-1e-08")
        opt_err(optname, "betas0=1.0")
        opt_err(optname, "betas0=-0.1")
        opt_err(optname, "betas1=1.5")
        opt_err(optname, "weight_decay=-0.01")
        opt_err(optname, "lr=nan")
    opt_err("RMSprop", "lr=-0.01")
    opt_err("RMSprop", "eps=-1.0")
    opt_err("RMSprop", "momentum=-0.9")
    opt_err("RMSprop", "weight_decay=-1e-05")
    opt_err("RMSprop", "alpha=-0.99")
    opt_err("Adagrad", "lr=-0.1")
    opt_err("Adagrad", "lr_decay=-0.5")
    opt_err("Adagrad", "weight_decay=-2.0")
    opt_err("Adagrad", "initial_accumulator_value=-0.1")
    opt_err("Adagrad", "eps=-1e-10")
    opt_err("Adam", "empty", params=[])
    opt_err("Adam", "nonleaf", params=[nonleaf])
    err("Adam", "overlap",
        lambda: torch.optim.Adam([{"params": [p, q]}, {"params": [q]}]))
    err("Adam", "add_param_group_overlap",
        lambda: torch.optim.Adam([p]).add_param_group({"params": [p]}))
    err("SGD", "groups_required",
        lambda: torch.optim.SGD([{"params": [p]}]))
    # complex AMSGrad
    c = torch.zeros(2, dtype=torch.complex64, requires_grad=True)
    c.grad = torch.ones(2, dtype=torch.complex64)
    err("Adam", "complex_amsgrad",
        lambda: torch.optim.Adam([c], amsgrad=True).step())

    # schedulers
    sgd = torch.optim.SGD([p], lr=0.1, momentum=0.9)
    from torch.optim import lr_scheduler as S
    err("LinearLR", "start_factor=1.5",
        lambda: S.LinearLR(sgd, start_factor=1.5))
    err("LinearLR", "start_factor=-0.5",
        lambda: S.LinearLR(sgd, start_factor=-0.5))
    err("LinearLR", "end_factor=2.0", lambda: S.LinearLR(sgd, end_factor=2.0))
    err("StepLR", "step_size=3,last_epoch=4",
        lambda: S.StepLR(torch.optim.SGD([p], lr=0.1), 3, last_epoch=4))
    err("OneCycleLR", "max_lr=0.1",
        lambda: S.OneCycleLR(sgd, max_lr=0.1))
    err("OneCycleLR", "max_lr=0.1,total_steps=0",
        lambda: S.OneCycleLR(sgd, max_lr=0.1, total_steps=0))
    err("OneCycleLR", "max_lr=0.1,total_steps=-5",
        lambda: S.OneCycleLR(sgd, max_lr=0.1, total_steps=-5))
    err("OneCycleLR", "max_lr=0.1,epochs=0,steps_per_epoch=10",
        lambda: S.OneCycleLR(sgd, max_lr=0.1, epochs=0, steps_per_epoch=10))
    err("OneCycleLR", "max_lr=0.1,epochs=3,steps_per_epoch=-1",
        lambda: S.OneCycleLR(sgd, max_lr=0.1, epochs=3, steps_per_epoch=-1))
    err("OneCycleLR", "max_lr=0.1,total_steps=10,pct_start=1.5",
        lambda: S.OneCycleLR(sgd, max_lr=0.1, total_steps=10, pct_start=1.5))
    err("OneCycleLR", "max_lr=0.1,total_steps=10,anneal_strategy=cosine",
        lambda: S.OneCycleLR(sgd, max_lr=0.1, total_steps=10,
                             anneal_strategy="cosine"))
    err("OneCycleLR", "max_lrs=0.1|0.2,total_steps=10",
        lambda: S.OneCycleLR(sgd, max_lr=[0.1, 0.2], total_steps=10))
    err("OneCycleLR", "adagrad,max_lr=0.1,total_steps=10",
        lambda: S.OneCycleLR(torch.optim.Adagrad([p]), max_lr=0.1,
                             total_steps=10))
    err("ReduceLROnPlateau", "factor=1.0",
        lambda: S.ReduceLROnPlateau(sgd, factor=1.0))
    err("ReduceLROnPlateau", "min_lrs=0.1|0.2",
        lambda: S.ReduceLROnPlateau(sgd, min_lr=[0.1, 0.2]))
    err("ReduceLROnPlateau", "mode=maximum",
        lambda: S.ReduceLROnPlateau(sgd, mode="maximum"))
    err("ReduceLROnPlateau", "threshold_mode=relative",
        lambda: S.ReduceLROnPlateau(sgd, threshold_mode="relative"))
    other = torch.optim.SGD([q], lr=0.1)
    s1 = S.StepLR(sgd, 3)
    s2 = S.StepLR(other, 3)
    err("SequentialLR", "other_optimizer",
        lambda: S.SequentialLR(sgd, [s1, s2], milestones=[2]))
    s3 = S.ExponentialLR(sgd, 0.9)
    err("SequentialLR", "milestones",
        lambda: S.SequentialLR(sgd, [s1, s3], milestones=[]))
    oc = S.OneCycleLR(torch.optim.SGD([p], lr=0.1), max_lr=0.1, total_steps=3)
    for _ in range(5):
        oc.optimizer.step()
        try:
            oc.step()
        except ValueError as e:
            ERRORS.append(("OneCycleLR", "step_past_end", "ValueError", str(e)))
            break
    with open(out("errors.tsv"), "w") as f:
        f.write("what\targs\texception\tmessage\n")
        for row in ERRORS:
            f.write("\t".join(row) + "\n")


# ---- schedulers --------------------------------------------------------------

SCHED_CASES = []


def sched_case(name, optname, lrs, spec, steps=50, metrics="-"):
    SCHED_CASES.append((name, optname, lrs, spec, steps, metrics))


sched_case("step", "SGD", "0.1|0.05", "StepLR(step_size=7,gamma=0.5)")
sched_case("multistep", "SGD", "0.1",
           "MultiStepLR(milestones=3|8|8|20,gamma=0.3)")
sched_case("exponential", "Adam", "0.01|0.1", "ExponentialLR(gamma=0.93)")
sched_case("cosine", "SGD", "0.1|0.02",
           "CosineAnnealingLR(T_max=10,eta_min=0.001)")
sched_case("cosine_default", "Adam", "0.3", "CosineAnnealingLR(T_max=7)")
sched_case("cosine_resume", "SGD", "0.1",
           "CosineAnnealingLR(T_max=12,eta_min=0.0,last_epoch=5)")
sched_case("linear", "SGD", "0.1|0.3", "LinearLR()")
sched_case("linear_custom", "SGD", "0.5",
           "LinearLR(start_factor=0.25,end_factor=0.75,total_iters=13)")
sched_case("onecycle_cos_sgd", "SGD", "0.1|0.2",
           "OneCycleLR(max_lr=0.5,total_steps=50)")
sched_case("onecycle_linear_adam", "Adam", "0.001",
           "OneCycleLR(max_lr=0.01,epochs=5,steps_per_epoch=10,"
           "anneal_strategy=linear,pct_start=0.25,div_factor=10.0,"
           "final_div_factor=100.0)")
sched_case("onecycle_three_phase", "AdamW", "0.001|0.002",
           "OneCycleLR(max_lrs=0.02|0.04,total_steps=50,three_phase=1,"
           "base_momentums=0.8|0.7,max_momentums=0.9|0.95)")
sched_case("onecycle_rmsprop_nomom", "RMSprop", "0.01",
           "OneCycleLR(max_lr=0.05,total_steps=50,cycle_momentum=0)")
sched_case("plateau_min", "SGD", "0.1|0.05",
           "ReduceLROnPlateau(patience=2,factor=0.5,min_lrs=0.01|0.03)",
           metrics="1.0|0.9|0.95|0.95|0.96|0.8|0.8|0.8|0.8|0.7|0.7|0.7|0.7"
                   "|0.7|0.7|0.7|0.7|0.7|0.7|0.7|0.65|0.66|0.66|0.66|0.5"
                   "|0.5|0.5|0.5|0.5|0.5|0.49|0.5|0.5|0.5|0.5|0.5|0.5|0.5"
                   "|0.4|0.4|0.4|0.4|0.4|0.4|0.4|0.4|0.4|0.4|0.4")
sched_case("plateau_max_abs_cooldown", "Adam", "0.01",
           "ReduceLROnPlateau(mode=max,threshold_mode=abs,threshold=0.05,"
           "patience=1,cooldown=2,factor=0.3,eps=1e-05)",
           metrics="0.1|0.2|0.22|0.23|0.5|0.52|0.4|0.3|0.31|0.32|0.33|nan"
                   "|0.34|0.9|0.91|0.92|0.93|0.94|0.95|0.96|0.96|0.96|0.96"
                   "|0.97|0.99|0.99|0.99|0.99|inf|0.99|0.99|0.99|1.2|1.2|1.2"
                   "|1.2|1.2|1.2|1.2|1.2|1.3|1.3|1.3|1.3|1.3|1.3|1.3")
sched_case("sequential", "SGD", "0.1|0.01",
           "SequentialLR(milestones=5|12;LinearLR(start_factor=0.1,"
           "total_iters=5);ExponentialLR(gamma=0.9);"
           "CosineAnnealingLR(T_max=10,eta_min=0.001))")
sched_case("sequential_step_onecycle", "SGD", "0.1",
           "SequentialLR(milestones=6;StepLR(step_size=2,gamma=0.5);"
           "OneCycleLR(max_lr=0.3,total_steps=50))")


def split_top(s, sep):
    parts, depth, cur = [], 0, ""
    for ch in s:
        if ch == "(":
            depth += 1
        elif ch == ")":
            depth -= 1
        if ch == sep and depth == 0:
            parts.append(cur)
            cur = ""
        else:
            cur += ch
    parts.append(cur)
    return parts


def parse_spec(spec):
    name = spec[:spec.index("(")]
    body = spec[spec.index("(") + 1:-1]
    if name == "SequentialLR":
        parts = split_top(body, ";")
        args = dict(kv.split("=") for kv in parts[0].split(","))
        return name, args, [parse_spec(c) for c in parts[1:]]
    args = dict(kv.split("=") for kv in body.split(",")) if body else {}
    return name, args, []


def build_sched(opt, spec_tuple):
    from torch.optim import lr_scheduler as S
    name, a, children = spec_tuple

    def f(k, d):
        return float(a[k]) if k in a else d

    def i(k, d):
        return int(a[k]) if k in a else d

    def fl(k):
        return [float(x) for x in a[k].split("|")]

    le = i("last_epoch", -1)
    if le != -1:
        for g in opt.param_groups:
            g.setdefault("initial_lr", g["lr"])
    if name == "StepLR":
        return S.StepLR(opt, i("step_size", 1), f("gamma", 0.1),
                        last_epoch=le)
    if name == "MultiStepLR":
        ms = [int(x) for x in a["milestones"].split("|")]
        return S.MultiStepLR(opt, ms, f("gamma", 0.1), last_epoch=le)
    if name == "ExponentialLR":
        return S.ExponentialLR(opt, f("gamma", 0.1), last_epoch=le)
    if name == "CosineAnnealingLR":
        return S.CosineAnnealingLR(opt, i("T_max", 1), f("eta_min", 0),
                                   last_epoch=le)
    if name == "LinearLR":
        return S.LinearLR(opt, f("start_factor", 1.0 / 3),
                          f("end_factor", 1.0), i("total_iters", 5),
                          last_epoch=le)
    if name == "OneCycleLR":
        kw = {}
        kw["max_lr"] = fl("max_lrs") if "max_lrs" in a else f("max_lr", 0.1)
        for k in ("total_steps", "epochs", "steps_per_epoch"):
            if k in a:
                kw[k] = int(a[k])
        for k in ("pct_start", "div_factor", "final_div_factor"):
            if k in a:
                kw[k] = float(a[k])
        for k in ("base_momentum", "max_momentum"):
            if k + "s" in a:
                kw[k] = fl(k + "s")
            elif k in a:
                kw[k] = float(a[k])
        if "anneal_strategy" in a:
            kw["anneal_strategy"] = a["anneal_strategy"]
        for k in ("three_phase", "cycle_momentum"):
            if k in a:
                kw[k] = a[k] == "1"
        return S.OneCycleLR(opt, last_epoch=le, **kw)
    if name == "ReduceLROnPlateau":
        kw = {}
        for k in ("factor", "threshold", "eps"):
            if k in a:
                kw[k] = float(a[k])
        for k in ("patience", "cooldown"):
            if k in a:
                kw[k] = int(a[k])
        for k in ("mode", "threshold_mode"):
            if k in a:
                kw[k] = a[k]
        if "min_lrs" in a:
            kw["min_lr"] = fl("min_lrs")
        elif "min_lr" in a:
            kw["min_lr"] = float(a["min_lr"])
        return S.ReduceLROnPlateau(opt, **kw)
    if name == "SequentialLR":
        kids = [build_sched(opt, c) for c in children]
        ms = [int(x) for x in a["milestones"].split("|")]
        return S.SequentialLR(opt, kids, ms)
    raise ValueError(name)


def momentum_of(opt):
    if "betas" in opt.defaults:
        return [g["betas"][0] for g in opt.param_groups]
    if "momentum" in opt.defaults:
        return [g["momentum"] for g in opt.param_groups]
    return []


def run_sched_case(case):
    name, optname, lrs, spec, steps, metrics = case
    lrs = [float(x) for x in lrs.split("|")]
    params = [torch.zeros(1, requires_grad=True) for _ in lrs]
    groups = [{"params": [p], "lr": lr} for p, lr in zip(params, lrs)]
    kw = {"lr": lrs[0]}
    opt = OPT_CLASSES[optname](groups, **kw)
    st = parse_spec(spec)
    sched = build_sched(opt, st)
    plateau = st[0] == "ReduceLROnPlateau"
    lr_rows = [[g["lr"] for g in opt.param_groups] if plateau
               else list(sched.get_last_lr())]
    mom_rows = [momentum_of(opt)]
    ms = [float(x) for x in metrics.split("|")] if metrics != "-" else []
    nsteps = len(ms) if plateau else steps
    for k in range(nsteps):
        opt.step()
        if plateau:
            sched.step(ms[k])
        else:
            sched.step()
        lr_rows.append(list(sched.get_last_lr()) if not plateau
                       else list(sched._last_lr))
        mom_rows.append(momentum_of(opt))
    save("sched/%s.npy" % name, np.array(lr_rows, dtype=np.float64))
    if "OneCycle" in spec:
        save("sched/%s_mom.npy" % name, np.array(mom_rows, dtype=np.float64))
    return (name, optname, "|".join(repr(x) for x in lrs), spec, str(nsteps),
            metrics)


# ---- clip_grad_norm_ --------------------------------------------------------

CLIP_CASES = []


def clip_case(name, dt, shapes, max_norm, norm_type, nonfinite=False,
              scale=1.0, poison=False):
    CLIP_CASES.append((name, dt, shapes, max_norm, norm_type, nonfinite,
                       scale, poison))


clip_case("l2_f32", "float32", "3,5|17|4,4,3|-2", 1.0, 2.0)
clip_case("l2_f64", "float64", "3,5|17|4,4,3|-2", 1.0, 2.0)
clip_case("l2_f32_long", "float32", "1000|37|9,9|2", 5.0, 2.0)
clip_case("l2_f32_noclip", "float32", "3|4", 100.0, 2.0)
clip_case("l2_f64_long", "float64", "1000|37|9,9", 5.0, 2.0)
clip_case("inf_f32", "float32", "3,5|17", 0.5, math.inf)
clip_case("inf_f64", "float64", "3,5|17|6", 0.5, math.inf)
clip_case("l1_f32", "float32", "3,5|17|8", 2.0, 1.0)
clip_case("l3_f64", "float64", "3,5|17", 0.7, 3.0)
clip_case("p05_f32", "float32", "11|6", 20.0, 0.5)
clip_case("l0_f64", "float64", "11|6", 3.0, 0.0)
clip_case("single_f32", "float32", "33", 0.1, 2.0)
clip_case("nonfinite_error", "float32", "3|4", 1.0, 2.0, nonfinite=True,
          poison=True)
clip_case("nonfinite_scaled", "float32", "3|4", 1.0, 2.0, poison=True)


def run_clip_case(case):
    name, dt, shapes, max_norm, norm_type, nonfinite, scale, poison = case
    torch.manual_seed(99)
    params, grads = [], []
    for s in shapes.split("|"):
        shape = tuple(abs(int(x)) for x in s.split(","))
        p = torch.zeros(shape, dtype=TDT[dt], requires_grad=True)
        if not s.startswith("-"):   # "-2": a parameter without .grad
            p.grad = torch.randn(shape, dtype=TDT[dt]) * scale
            grads.append(p.grad)
        params.append(p)
    if poison:
        grads[0].view(-1)[1] = math.inf
    gin = torch.cat([g.reshape(-1) for g in grads]).clone()
    status, total = "OK", "-"
    try:
        t = torch.nn.utils.clip_grad_norm_(params, max_norm, norm_type,
                                           error_if_nonfinite=nonfinite)
        total = repr(float(t.item()))
    except RuntimeError as e:
        status = "RuntimeError:" + str(e)
    gout = torch.cat([g.reshape(-1) for g in grads])
    save("clip/%s_in.npy" % name, gin.numpy())
    save("clip/%s_out.npy" % name, gout.numpy())
    return (name, dt, shapes, repr(float(max_norm)), repr(float(norm_type)),
            str(int(nonfinite)), total, status)


def norm_rows():
    """clip_grad_norm_ of one random gradient per row, for every tail length
    of PyTorch's 8-lane float32 kernel: the total is that gradient's norm
    (sqrt(x*x) == x), regenerated in C with cg_randn."""
    rows = []
    for dt in ("float32", "float64"):
        for n in list(range(1, 73)) + [100, 1000, 4099]:
            for p in ((2.0, 1.0, 3.0) if n % 9 == 0 else (2.0,)):
                seed = 1000 + n
                scale = 10.0 ** ((n % 7) - 3)
                torch.manual_seed(seed)
                g = torch.randn(n, dtype=TDT[dt]) * scale
                x = torch.zeros(n, dtype=TDT[dt], requires_grad=True)
                x.grad = g
                direct = torch.norm(g, p).item()
                t = torch.nn.utils.clip_grad_norm_([x], 1e30, p).item()
                assert t == direct or p != 2.0, (n, t, direct)
                rows.append((dt, str(n), str(seed), repr(scale), repr(p),
                             repr(t)))
    return rows


# ---- randperm and DataLoader ----------------------------------------------

def checksum(values):
    h = 0
    for v in values:
        h = (h * 1000003 + int(v) + 1) % 2305843009213693951
    return h


def randperm_rows():
    rows = []
    for n, seed, gen, dt in [(1, 0, "default", "float64"),
                             (5, 42, "default", "float64"),
                             (100, 7, "private", "float64"),
                             (1000, 123, "default", "float32"),
                             (50000, 2024, "private", "float64"),
                             (0, 3, "default", "float64"),
                             (2, 1, "default", "float64")]:
        if gen == "default":
            torch.manual_seed(seed)
            r = torch.randperm(n, dtype=TDT[dt])
            after = torch.rand((), dtype=torch.float64).item()
        else:
            g = torch.Generator()
            g.manual_seed(seed)
            r = torch.randperm(n, generator=g, dtype=TDT[dt])
            after = torch.rand((), generator=g, dtype=torch.float64).item()
        vals = [int(x) for x in r.tolist()]
        rows.append((str(n), str(seed), gen, dt,
                     ",".join(map(str, vals[:16])) or "-",
                     str(checksum(vals)), repr(after)))
    return rows


def loader_rows():
    rows = []
    configs = [
        ("seq_keep", 10, 3, 0, 0, None, "full|full"),
        ("seq_drop", 10, 3, 0, 1, None, "full|full"),
        ("shuffle_default_keep", 10, 4, 1, 0, None, "full|full|full"),
        ("shuffle_default_drop", 10, 4, 1, 1, None, "full|full"),
        ("shuffle_exact", 12, 4, 1, 0, None, "full|full"),
        ("shuffle_exact_drop", 12, 4, 1, 1, None, "full|full"),
        ("shuffle_gen_keep", 11, 3, 1, 0, 77, "full|full|full"),
        ("shuffle_gen_drop", 11, 3, 1, 1, 77, "full|2|full"),
        ("shuffle_gen_break", 9, 2, 1, 0, 5, "1|full|3|full"),
        ("shuffle_big", 1000, 64, 1, 0, 31337, "full"),
        ("single_batch", 5, 10, 1, 0, None, "full|full"),
        ("batch1", 4, 1, 1, 1, 8, "full|full"),
    ]
    for (name, n, bs, shuffle, drop, gseed, epochs) in configs:
        torch.manual_seed(4321)
        g = None
        if gseed is not None:
            g = torch.Generator()
            g.manual_seed(gseed)
        x = torch.arange(2 * n, dtype=torch.float32).view(n, 2)
        y = torch.arange(n, dtype=torch.float64)
        dl = torch.utils.data.DataLoader(
            torch.utils.data.TensorDataset(x, y), batch_size=bs,
            shuffle=bool(shuffle), drop_last=bool(drop), generator=g)
        ep_out = []
        for ep in epochs.split("|"):
            batches = []
            for k, (bx, by) in enumerate(dl):
                assert torch.equal(bx[:, 0], 2 * by.float())
                batches.append(",".join(str(int(v)) for v in by.tolist()))
                if ep != "full" and k + 1 == int(ep):
                    break
            after = torch.rand((), dtype=torch.float64).item()
            gafter = (torch.rand((), generator=g, dtype=torch.float64).item()
                      if g is not None else 0.0)
            ep_out.append("%s/%s/%r/%r" % (ep, ";".join(batches) or "-",
                                            after, gafter))
        rows.append((name, str(n), str(bs), str(shuffle), str(drop),
                     str(gseed) if gseed is not None else "-", str(len(dl)),
                     " ".join(ep_out)))
    return rows


def main():
    for case in OPT_CASES:
        run_opt_case(case)
    with open(out("optim_cases.tsv"), "w") as f:
        f.write("name\toptimizer\tdtype\toptions\tgroup1\tgrad\n")
        for c in OPT_CASES:
            f.write("\t".join(c) + "\n")
    errors()
    rows = [run_sched_case(c) for c in SCHED_CASES]
    with open(out("sched_cases.tsv"), "w") as f:
        f.write("name\toptimizer\tlrs\tspec\tsteps\tmetrics\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    rows = [run_clip_case(c) for c in CLIP_CASES]
    with open(out("clip_cases.tsv"), "w") as f:
        f.write("name\tdtype\tshapes\tmax_norm\tnorm_type\terror_if_nonfinite"
                "\ttotal\tstatus\n")
        for r in rows:
            f.write("\t".join(r) + "\n")
    with open(out("norms.tsv"), "w") as f:
        f.write("dtype\tn\tseed\tscale\tnorm_type\ttotal\n")
        for r in norm_rows():
            f.write("\t".join(r) + "\n")
    with open(out("randperm.tsv"), "w") as f:
        f.write("n\tseed\tgenerator\tdtype\tfirst\tchecksum\tafter\n")
        for r in randperm_rows():
            f.write("\t".join(r) + "\n")
    with open(out("loader.tsv"), "w") as f:
        f.write("name\tn\tbatch_size\tshuffle\tdrop_last\tgen_seed\tlen"
                "\tepochs\n")
        for r in loader_rows():
            f.write("\t".join(r) + "\n")
    with open(out("VERSION.txt"), "w") as f:
        f.write("torch %s\nnumpy %s\npython %s\n" % (
            torch.__version__, np.__version__, sys.version.split()[0]))
        f.write("torch.get_num_threads() %d\n" % torch.get_num_threads())
        f.write("seeds: problem 1234, clip 99, loader 4321 (+ per-row "
                "generator seeds), randperm per row\n")
        f.write("steps %d, state dict after step %d\n" % (STEPS, SPLIT))


if __name__ == "__main__":
    main()
