#!/usr/bin/env python3
"""Writes the fixtures of tests/test_train.c (the "trajectory" TCase) from
real PyTorch 1.13: 20 optimizer steps on a small 3-D model, for every
optimizer with and without each of its options, in float32 and float64.

Run from anywhere, with the system Python that has PyTorch 1.13 and numpy:

    /usr/bin/python3 tests/data/optim/gen_model_traj.py

The model and the problem (one per dtype, the same seed for both):

    torch.manual_seed(SEED)
    model = nn.Sequential(
        nn.Conv3d(2, 4, 3, stride=2, padding=1, dtype=dt),           # 0
        nn.ReLU(),                                                   # 1
        nn.ConvTranspose3d(4, 2, 4, stride=2, padding=1, dtype=dt))  # 2
    x = torch.randn(2, 2, 6, 6, 6, dtype=dt)       # drawn after the model
    target = torch.randn(2, 2, 6, 6, 6, dtype=dt)
    loss = nn.MSELoss()(model(x), target)

and every case starts from that state (the initial parameters are
restored between cases), then runs STEPS times:

    opt.zero_grad(); loss = mse(model(x), target); loss.backward()
    [clip_grad_norm_(model.parameters(), clip)]; opt.step(); [sched.step()]

It rewrites, in model/ next to itself (this script is the only way they
change):

  model/VERSION.txt         torch / numpy / python versions, seed, threads
  model/cases.tsv           one run per row: name, optimizer, dtype,
                            seed (SEED), options ("k=v,..."; betas as betas0/betas1),
                            extra ("-", "cosine=T_max" for a
                            CosineAnnealingLR stepped after every step,
                            "clip=max_norm" for clip_grad_norm_ before it)
  model/init_<dtype>.npy    the initial parameters, named_parameters()
                            order (0.weight, 0.bias, 2.weight, 2.bias),
                            flattened and concatenated
  model/data_<dtype>.npy    x then target, flattened and concatenated
  model/<case>_loss.npy     (STEPS,) the loss of every step (before its
                            update), in the dtype
  model/<case>_params.npy   the parameters after STEPS steps, as init_
"""
import os
import sys

import numpy as np
import torch
import torch.nn as nn

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "model")
SEED = 20240608
STEPS = 20
TDT = {"float32": torch.float32, "float64": torch.float64}

torch.set_num_threads(1)


def out(name):
    os.makedirs(HERE, exist_ok=True)
    return os.path.join(HERE, name)


def save(name, arr):
    np.save(out(name), np.ascontiguousarray(arr))


def build(dtname):
    dt = TDT[dtname]
    torch.manual_seed(SEED)
    model = nn.Sequential(
        nn.Conv3d(2, 4, 3, stride=2, padding=1, dtype=dt),
        nn.ReLU(),
        nn.ConvTranspose3d(4, 2, 4, stride=2, padding=1, dtype=dt))
    x = torch.randn(2, 2, 6, 6, 6, dtype=dt)
    target = torch.randn(2, 2, 6, 6, 6, dtype=dt)
    return model, x, target


def flat(params):
    return torch.cat([p.detach().reshape(-1) for p in params]).numpy()


def parse(s):
    if s == "-":
        return {}
    return dict(kv.split("=") for kv in s.split(","))


def kwargs_of(d):
    kw, betas = {}, None
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


OPT = {"SGD": torch.optim.SGD, "Adam": torch.optim.Adam,
       "AdamW": torch.optim.AdamW, "RMSprop": torch.optim.RMSprop,
       "Adagrad": torch.optim.Adagrad}

# name, optimizer, options, extra: each optimizer with its defaults, then
# each option switched on (or changed) by itself, then some together.
CASES = [
    ("sgd_plain", "SGD", "lr=0.5", "-"),
    ("sgd_momentum", "SGD", "lr=0.1,momentum=0.9", "-"),
    ("sgd_dampening", "SGD", "lr=0.1,momentum=0.9,dampening=0.5", "-"),
    ("sgd_nesterov", "SGD", "lr=0.1,momentum=0.9,nesterov=1", "-"),
    ("sgd_weight_decay", "SGD", "lr=0.5,weight_decay=0.2", "-"),
    ("sgd_maximize", "SGD", "lr=0.1,maximize=1", "-"),
    ("sgd_all", "SGD",
     "lr=0.03,momentum=0.8,nesterov=1,weight_decay=0.02,maximize=1", "-"),
    ("sgd_momentum_clip", "SGD", "lr=0.1,momentum=0.9", "clip=0.05"),
    ("adam_default", "Adam", "lr=0.001", "-"),
    ("adam_lr", "Adam", "lr=0.01", "-"),
    ("adam_betas", "Adam", "lr=0.01,betas0=0.8,betas1=0.99", "-"),
    ("adam_eps", "Adam", "lr=0.01,eps=0.001", "-"),
    ("adam_weight_decay", "Adam", "lr=0.01,weight_decay=0.1", "-"),
    ("adam_amsgrad", "Adam", "lr=0.01,amsgrad=1", "-"),
    ("adam_maximize", "Adam", "lr=0.002,maximize=1", "-"),
    ("adam_all", "Adam",
     "lr=0.01,betas0=0.85,betas1=0.995,eps=1e-06,weight_decay=0.05,"
     "amsgrad=1", "-"),
    ("adamw_default", "AdamW", "lr=0.001", "-"),
    ("adamw_lr", "AdamW", "lr=0.01", "-"),
    ("adamw_no_decay", "AdamW", "lr=0.01,weight_decay=0.0", "-"),
    ("adamw_weight_decay", "AdamW", "lr=0.01,weight_decay=0.5", "-"),
    ("adamw_amsgrad", "AdamW", "lr=0.01,amsgrad=1", "-"),
    ("adamw_maximize", "AdamW", "lr=0.002,maximize=1", "-"),
    ("adamw_cosine", "AdamW", "lr=0.02,weight_decay=0.05", "cosine=20"),
    ("rmsprop_default", "RMSprop", "lr=0.01", "-"),
    ("rmsprop_alpha", "RMSprop", "lr=0.005,alpha=0.9", "-"),
    ("rmsprop_eps", "RMSprop", "lr=0.005,eps=0.01", "-"),
    ("rmsprop_momentum", "RMSprop", "lr=0.002,momentum=0.9", "-"),
    ("rmsprop_centered", "RMSprop", "lr=0.005,centered=1", "-"),
    ("rmsprop_weight_decay", "RMSprop", "lr=0.005,weight_decay=0.1", "-"),
    ("rmsprop_maximize", "RMSprop", "lr=0.0005,maximize=1", "-"),
    ("rmsprop_all", "RMSprop",
     "lr=0.002,alpha=0.95,momentum=0.5,centered=1,weight_decay=0.05", "-"),
    ("adagrad_default", "Adagrad", "lr=0.01", "-"),
    ("adagrad_lr", "Adagrad", "lr=0.1", "-"),
    ("adagrad_lr_decay", "Adagrad", "lr=0.1,lr_decay=0.05", "-"),
    ("adagrad_weight_decay", "Adagrad", "lr=0.1,weight_decay=0.1", "-"),
    ("adagrad_initial_acc", "Adagrad",
     "lr=0.1,initial_accumulator_value=0.5", "-"),
    ("adagrad_eps", "Adagrad", "lr=0.1,eps=0.01", "-"),
    ("adagrad_maximize", "Adagrad", "lr=0.005,maximize=1", "-"),
]


def run(name, optname, options, extra, dtname):
    model, x, target = build(dtname)
    params = list(model.parameters())
    opt = OPT[optname](params, **kwargs_of(parse(options)))
    ex = parse(extra)
    sched = None
    if "cosine" in ex:
        sched = torch.optim.lr_scheduler.CosineAnnealingLR(
            opt, T_max=int(ex["cosine"]))
    mse = nn.MSELoss()
    losses = []
    for _ in range(STEPS):
        opt.zero_grad()
        loss = mse(model(x), target)
        loss.backward()
        if "clip" in ex:
            torch.nn.utils.clip_grad_norm_(params, float(ex["clip"]))
        opt.step()
        if sched is not None:
            sched.step()
        losses.append(loss.item())
    case = "%s_%s" % (name, dtname)
    save("%s_loss.npy" % case, np.array(losses, dtype=np.dtype(dtname)))
    save("%s_params.npy" % case, flat(params))
    return case, losses


def main():
    rows = []
    for dtname in TDT:
        model, x, target = build(dtname)
        save("init_%s.npy" % dtname, flat(model.parameters()))
        save("data_%s.npy" % dtname,
             torch.cat([x.reshape(-1), target.reshape(-1)]).numpy())
    for name, optname, options, extra in CASES:
        for dtname in TDT:
            case, losses = run(name, optname, options, extra, dtname)
            rows.append("%s\t%s\t%s\t%d\t%s\t%s" % (
                case, optname, dtname, SEED, options, extra))
            print("%-32s %.6g -> %.6g" % (case, losses[0], losses[-1]))
    with open(out("cases.tsv"), "w") as f:
        f.write("name\toptimizer\tdtype\tseed\toptions\textra\n")
        f.write("\n".join(rows) + "\n")
    with open(out("VERSION.txt"), "w") as f:
        f.write("torch %s\n" % torch.__version__)
        f.write("numpy %s\n" % np.__version__)
        f.write("python %s\n" % sys.version.split()[0])
        f.write("torch.get_num_threads() %d\n" % torch.get_num_threads())
        f.write("seed %d (torch.manual_seed before each model), steps %d\n"
                % (SEED, STEPS))


if __name__ == "__main__":
    main()
