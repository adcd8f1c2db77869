"""Reference data for nn.BatchNorm3d, nn.MaxPool3d, nn.AvgPool3d and
nn.Upsample (tests/test_batch_norm.c, test_pooling.c, test_upsample.c).

Run with real PyTorch 1.13:  /usr/bin/python3 gen_spatial.py
Writes, next to this script:
  cases.tsv   one row per configuration: id, layer, args (k=v;...), input
              shape, grad_fn of the output (and of the eval output for
              BatchNorm3d)
  <id>_<dt>_<what>.npy  inputs x (x0, x1, x2 for the BatchNorm3d training
              steps), the fed gradient gy, outputs y, gradients gx (gw, gb),
              running statistics after each step (rm<k>, rv<k>), eval
              output ye and its gradients (gxe, gwe, gbe); dt is f32 or f64
  reprs.tsv   id, repr(module)
  errors.tsv  id, exception class, message (the C tests rebuild each call)
Seeds: torch.manual_seed(1234 + case number) before each case's draws.
"""
import math
import os

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
DTYPES = {"f32": torch.float32, "f64": torch.float64}


def save(name, t):
    np.save(os.path.join(HERE, name + ".npy"), t.detach().numpy())


def distinct(shape, seed):
    """Values without ties (max pooling's gradient is then well defined)."""
    g = torch.Generator().manual_seed(seed)
    n = int(np.prod(shape))
    perm = torch.randperm(n, generator=g).double()
    return ((perm - n / 2) / n * 4).reshape(shape)


rows = []


def run_case(cid, layer, args, make, shape, seed):
    names = []
    for dt, tdt in DTYPES.items():
        torch.manual_seed(seed)
        x = distinct(shape, seed).to(tdt).requires_grad_(True)
        m = make().to(tdt)
        y = m(x)
        gy = torch.randn(y.shape, dtype=torch.float64).to(tdt)
        y.backward(gy)
        for what, t in (("x", x), ("y", y), ("gy", gy), ("gx", x.grad)):
            save(f"{cid}_{dt}_{what}", t)
        names.append(type(y.grad_fn).__name__)
    rows.append([cid, layer, args, "x".join(map(str, shape)), names[0], "-"])


# ---- pooling -------------------------------------------------------------
pool_cases = [
    ("mp1", "MaxPool3d", "k=2", lambda: nn.MaxPool3d(2), (2, 3, 4, 4, 4)),
    ("mp2", "MaxPool3d", "k=2,1,3;s=1,2,1;p=1,0,1;d=1,1,2;ceil=1",
     lambda: nn.MaxPool3d((2, 1, 3), stride=(1, 2, 1), padding=(1, 0, 1),
                          dilation=(1, 1, 2), ceil_mode=True), (2, 2, 5, 4, 6)),
    ("mp3", "MaxPool3d", "k=3;s=2;p=1;d=2",
     lambda: nn.MaxPool3d(3, stride=2, padding=1, dilation=2), (3, 5, 5, 5)),
    ("mp4", "MaxPool3d", "k=2;ceil=1", lambda: nn.MaxPool3d(2, ceil_mode=True),
     (1, 2, 5, 5, 5)),
    ("ap1", "AvgPool3d", "k=2", lambda: nn.AvgPool3d(2), (2, 3, 4, 4, 4)),
    ("ap2", "AvgPool3d", "k=2,1,3;s=1;p=1,0,1;ceil=1;cip=0",
     lambda: nn.AvgPool3d((2, 1, 3), stride=1, padding=(1, 0, 1),
                          ceil_mode=True, count_include_pad=False),
     (2, 2, 4, 3, 5)),
    ("ap3", "AvgPool3d", "k=3;s=2;p=1;ceil=1",
     lambda: nn.AvgPool3d(3, stride=2, padding=1, ceil_mode=True), (3, 5, 5, 5)),
    ("ap4", "AvgPool3d", "k=3;s=2;p=1;div=5",
     lambda: nn.AvgPool3d(3, stride=2, padding=1, divisor_override=5),
     (1, 2, 5, 6, 5)),
    ("up1", "Upsample", "scale=2.0", lambda: nn.Upsample(scale_factor=2),
     (2, 3, 2, 2, 2)),
    ("up2", "Upsample", "size=3,5,4", lambda: nn.Upsample(size=(3, 5, 4)),
     (1, 2, 2, 3, 2)),
    ("up3", "Upsample", "scale=1.7,2.5,0.6",
     lambda: nn.Upsample(scale_factor=(1.7, 2.5, 0.6)), (1, 2, 3, 2, 5)),
    ("up4", "Upsample", "size=5", lambda: nn.Upsample(size=5), (1, 1, 3, 2, 4)),
    ("up5", "Upsample", "scale=1.5", lambda: nn.Upsample(scale_factor=1.5),
     (1, 2, 3, 3)),
    ("up6", "Upsample", "size=7", lambda: nn.Upsample(size=7), (2, 2, 4)),
    ("up7", "Upsample", "scale=1.7;recompute=1",
     lambda: nn.Upsample(scale_factor=1.7, recompute_scale_factor=True),
     (1, 1, 3, 4, 5)),
    ("up8", "Upsample", "scale=0.7,3.0",
     lambda: nn.Upsample(scale_factor=(0.7, 3.0)), (2, 1, 10, 3)),
]
for i, (cid, layer, args, make, shape) in enumerate(pool_cases):
    run_case(cid, layer, args, make, shape, 1234 + i)

# ---- BatchNorm3d: three training steps, then eval ---------------------------
bn_cases = [
    ("bn1", "num_features=3", lambda: nn.BatchNorm3d(3), (2, 3, 2, 3, 2), True),
    ("bn2", "num_features=3;momentum=None;affine=0;eps=0.001",
     lambda: nn.BatchNorm3d(3, eps=1e-3, momentum=None, affine=False),
     (2, 3, 2, 2, 3), False),
    ("bn3", "num_features=2;track=0",
     lambda: nn.BatchNorm3d(2, track_running_stats=False), (3, 2, 2, 2, 2), True),
    ("bn4", "num_features=4;momentum=0.5;eps=0.01",
     lambda: nn.BatchNorm3d(4, eps=0.01, momentum=0.5), (1, 4, 3, 2, 2), True),
]
for i, (cid, args, make, shape, set_affine) in enumerate(bn_cases):
    names = []
    for dt, tdt in DTYPES.items():
        seed = 2000 + i
        torch.manual_seed(seed)
        m = make().to(tdt)
        if set_affine:  # non-trivial weight and bias, drawn in float64
            with torch.no_grad():
                m.weight.copy_(torch.randn(m.num_features, dtype=torch.float64))
                m.bias.copy_(torch.randn(m.num_features, dtype=torch.float64))
            save(f"{cid}_{dt}_w", m.weight)
            save(f"{cid}_{dt}_b", m.bias)
        for step in range(3):
            x = (torch.randn(shape, dtype=torch.float64) * (1 + step) + step).to(tdt)
            x.requires_grad_(True)
            if m.weight is not None:
                m.weight.grad = None
                m.bias.grad = None
            y = m(x)
            gy = torch.randn(shape, dtype=torch.float64).to(tdt)
            y.backward(gy)
            save(f"{cid}_{dt}_x{step}", x)
            save(f"{cid}_{dt}_y{step}", y)
            save(f"{cid}_{dt}_gy{step}", gy)
            save(f"{cid}_{dt}_gx{step}", x.grad)
            if m.weight is not None:
                save(f"{cid}_{dt}_gw{step}", m.weight.grad)
                save(f"{cid}_{dt}_gb{step}", m.bias.grad)
            if m.running_mean is not None:
                save(f"{cid}_{dt}_rm{step}", m.running_mean)
                save(f"{cid}_{dt}_rv{step}", m.running_var)
                assert int(m.num_batches_tracked) == step + 1
        train_fn = type(y.grad_fn).__name__
        m.eval()
        x = x.detach().requires_grad_(True)
        if m.weight is not None:
            m.weight.grad = None
            m.bias.grad = None
        ye = m(x)
        ye.backward(gy)
        save(f"{cid}_{dt}_ye", ye)
        save(f"{cid}_{dt}_gxe", x.grad)
        if m.weight is not None:
            save(f"{cid}_{dt}_gwe", m.weight.grad)
            save(f"{cid}_{dt}_gbe", m.bias.grad)
        names = [train_fn, type(ye.grad_fn).__name__]
    rows.append([cid, "BatchNorm3d", args, "x".join(map(str, shape)), names[0],
                 names[1]])

with open(os.path.join(HERE, "cases.tsv"), "w") as f:
    f.write(f"# torch {torch.__version__}\n")
    f.write("id\tlayer\targs\tshape\tgrad_fn\teval_grad_fn\n")
    for r in rows:
        f.write("\t".join(r) + "\n")

# ---- reprs -------------------------------------------------------------------
reprs = [
    ("bn_default", nn.BatchNorm3d(3)),
    ("bn_none", nn.BatchNorm3d(3, momentum=None, affine=False,
                               track_running_stats=False)),
    ("bn_eps", nn.BatchNorm3d(5, eps=0.1 + 0.2, momentum=1e-7)),
    ("mp_int", nn.MaxPool3d(2)),
    ("mp_tuple", nn.MaxPool3d((2, 1, 3), stride=(1, 2, 1), padding=1,
                              dilation=2, ceil_mode=True)),
    ("ap_int", nn.AvgPool3d(2)),
    ("ap_tuple", nn.AvgPool3d((2, 1, 3), stride=1, padding=(1, 0, 1),
                              ceil_mode=True, count_include_pad=False,
                              divisor_override=3)),
    ("up_scale", nn.Upsample(scale_factor=2)),
    ("up_scale_tuple", nn.Upsample(scale_factor=(2, 1.5, 3))),
    ("up_size", nn.Upsample(size=5)),
    ("up_size_tuple", nn.Upsample(size=(2, 3, 4))),
    ("up_small", nn.Upsample(scale_factor=1e-5)),
    ("up_zero", nn.Upsample(scale_factor=0)),
]
with open(os.path.join(HERE, "reprs.tsv"), "w") as f:
    f.write(f"# torch {torch.__version__}\n")
    f.write("id\trepr\n")
    for cid, m in reprs:
        f.write(f"{cid}\t{repr(m)}\n")

# ---- errors: each call is rebuilt in C by id ---------------------------------
x5 = torch.randn(2, 3, 4, 4, 4)
x1 = torch.randn(1, 1, 1, 1, 1)
bn = nn.BatchNorm3d(3)
errors = [
    ("mp_k2len", lambda: F.max_pool3d(x5, (2, 2))),
    ("mp_s2len", lambda: F.max_pool3d(x5, 2, (1, 1))),
    ("mp_p2len", lambda: F.max_pool3d(x5, 2, 1, (0, 0))),
    ("mp_d2len", lambda: F.max_pool3d(x5, 2, 1, 0, (1, 1))),
    ("mp_k0", lambda: F.max_pool3d(x5, 0)),
    ("mp_kneg", lambda: F.max_pool3d(x5, -1)),
    ("mp_sneg", lambda: F.max_pool3d(x5, 2, -1)),
    ("mp_pneg", lambda: F.max_pool3d(x5, 2, 1, -1)),
    ("mp_pbig", lambda: F.max_pool3d(x5, 2, 1, 2)),
    ("mp_d0", lambda: F.max_pool3d(x5, 2, 1, 0, 0)),
    ("mp_3d", lambda: F.max_pool3d(torch.randn(3, 4, 4), 2)),
    ("mp_small", lambda: F.max_pool3d(x5, 3, dilation=2)),
    ("mp_zero_chan", lambda: F.max_pool3d(torch.randn(2, 0, 4, 4, 4), 2)),
    ("mp_zero_t4", lambda: F.max_pool3d(torch.randn(3, 0, 4, 4), 2)),
    ("mp_complex", lambda: F.max_pool3d(torch.randn(1, 1, 4, 4, 4, dtype=torch.cfloat), 2)),
    # arguments must fit a C int (safe_downcast), checked after each length
    ("mp_kbig", lambda: F.max_pool3d(x1, 2**40, padding=2**39)),
    ("mp_srange", lambda: F.max_pool3d(x5, 2, 2**31)),
    ("mp_prange", lambda: F.max_pool3d(x5, 2, 1, 2**31)),
    ("mp_drange", lambda: F.max_pool3d(x5, 2, 1, 0, 2**31)),
    ("mp_krange_s2len", lambda: F.max_pool3d(x5, (1, 2**31, 1), (1, 1))),
    ("mp_kmin", lambda: F.max_pool3d(x5, -2**31)),
    ("mp_dilated_small", lambda: F.max_pool3d(x1, 2**31 - 1, dilation=2**31 - 1)),
    ("ap_k2len", lambda: F.avg_pool3d(x5, (2, 2))),
    ("ap_s2len", lambda: F.avg_pool3d(x5, 2, (1, 1))),
    ("ap_p2len", lambda: F.avg_pool3d(x5, 2, 1, (0, 0))),
    ("ap_pbig", lambda: F.avg_pool3d(x5, 2, 1, 2)),
    ("ap_small", lambda: F.avg_pool3d(x5, 5)),
    ("ap_small_pad", lambda: F.avg_pool3d(x5, 5, 1, 2)),
    ("ap_div0", lambda: F.avg_pool3d(x5, 2, divisor_override=0)),
    ("ap_3d", lambda: F.avg_pool3d(torch.randn(3, 4, 4), 2)),
    ("ap_zero_spatial", lambda: F.avg_pool3d(torch.randn(2, 3, 0, 4, 4), 2)),
    ("ap_complex", lambda: F.avg_pool3d(torch.randn(1, 1, 4, 4, 4, dtype=torch.cfloat), 2)),
    ("ap_krange", lambda: F.avg_pool3d(x5, 2**31)),
    ("ap_srange", lambda: F.avg_pool3d(x5, 2, -2**31 - 1)),
    ("ap_prange", lambda: F.avg_pool3d(x5, 2, 1, 2**31)),
    ("ap_krange_s2len", lambda: F.avg_pool3d(x5, (1, 2**31, 1), (1, 1))),
    ("up_none", lambda: nn.Upsample()(x5)),
    ("up_both", lambda: nn.Upsample(size=2, scale_factor=2.0)(x5)),
    ("up_2d", lambda: nn.Upsample(scale_factor=2.0)(torch.randn(2, 3))),
    ("up_6d", lambda: nn.Upsample(scale_factor=2.0)(torch.randn(1, 2, 3, 4, 5, 6))),
    ("up_size_len", lambda: nn.Upsample(size=(2, 3))(x5)),
    ("up_scale_len", lambda: nn.Upsample(scale_factor=(2.0, 3.5))(x5)),
    ("up_size0", lambda: nn.Upsample(size=0)(x5)),
    ("up_scale_small", lambda: nn.Upsample(scale_factor=0.1)(x5)),
    ("up_size0_1d", lambda: nn.Upsample(size=0)(torch.randn(1, 2, 3))),
    ("up_size0_2d", lambda: nn.Upsample(size=(0, 2))(torch.randn(1, 2, 3, 3))),
    ("up_c0", lambda: nn.Upsample(size=2)(torch.randn(1, 0, 3, 3, 3))),
    ("up_complex", lambda: nn.Upsample(size=2)(torch.randn(1, 1, 3, 3, 3, dtype=torch.cfloat))),
    ("up_recompute_size", lambda: nn.Upsample(size=2, recompute_scale_factor=True)(x5)),
    ("bn_4d", lambda: bn(torch.randn(2, 3, 4, 4))),
    ("bn_6d", lambda: bn(torch.randn(1, 3, 1, 1, 1, 1))),
    ("bn_1val", lambda: nn.BatchNorm3d(3)(torch.randn(1, 3, 1, 1, 1))),
    ("bn_chan_eval", lambda: nn.BatchNorm3d(3).eval()(torch.randn(2, 4, 1, 1, 1))),
    ("bn_chan_train", lambda: nn.BatchNorm3d(3)(torch.randn(2, 4, 1, 1, 1))),
    ("bn_chan_notrack", lambda: nn.BatchNorm3d(3, track_running_stats=False)(torch.randn(2, 4, 2, 2, 2))),
    ("bn_mixed_f64", lambda: nn.BatchNorm3d(3)(torch.randn(2, 3, 2, 2, 2, dtype=torch.double))),
    ("bn_mixed_f32", lambda: nn.BatchNorm3d(3).double()(torch.randn(2, 3, 2, 2, 2))),
    ("bn_complex", lambda: nn.BatchNorm3d(3, affine=False, track_running_stats=False)(torch.randn(2, 3, 2, 2, 2, dtype=torch.cfloat))),
    ("bn_neg", lambda: nn.BatchNorm3d(-1)),
    ("fbn_eval_none", lambda: F.batch_norm(torch.randn(2, 3), None, None, training=False)),
    ("fbn_rv", lambda: F.batch_norm(torch.randn(2, 3), torch.zeros(3), torch.ones(4), training=True)),
    ("fbn_bias", lambda: F.batch_norm(torch.randn(2, 3), None, None, torch.ones(3), torch.ones(4), training=True)),
    ("fbn_1d", lambda: F.batch_norm(torch.randn(3), None, None, training=True)),
    ("fbn_rv64", lambda: F.batch_norm(torch.randn(2, 3), torch.zeros(3), torch.ones(3, dtype=torch.double), training=True)),
]
with open(os.path.join(HERE, "errors.tsv"), "w") as f:
    f.write(f"# torch {torch.__version__}\n")
    f.write("id\texception\tmessage\n")
    for cid, fn in errors:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 -- the message is the data
            f.write(f"{cid}\t{type(e).__name__}\t{e}\n")
            continue
        raise SystemExit(f"{cid}: no error")
print(len(rows), "cases,", len(reprs), "reprs,", len(errors), "errors")
