"""Reference data for tests/test_safetensors.c and tests/test_state_dict.c,
made with real PyTorch (run with /usr/bin/python3; torch 1.13).

Writes, next to this script:
  VERSION.txt                torch version, seeds, which safetensors writer
  x_{f32,f64}.npy            input of the round-trip model (manual_seed(1))
  torch_{f32,f64}.safetensors  PyTorch's Sequential(Conv3d(2, 3, 3,
                             padding=1), ReLU(), ConvTranspose3d(3, 2, 2,
                             stride=2)) after manual_seed(0), saved as
                             safetensors.torch.save_model saves it (reference
                             order, __metadata__ {"format": "pt"})
  y_torch_{f32,f64}.npy      that model's output on x
  c_layout_{f32,f64}.safetensors  the same state dict in state_dict order
                             without metadata: byte for byte what cgrad must
                             write for the C model built after
                             cg_manual_seed(0) (whose init is PyTorch's)
  y_roundtrip_{f32,f64}.npy  roundtrip.py's output for c_layout_*: PyTorch
                             loading cgrad's file with strict=True
  torch_bn.safetensors       a BatchNorm3d(3) after two training steps
                             (running stats, num_batches_tracked = 2 as
                             I64), random affine values (manual_seed(2))
  x_bn.npy, y_bn.npy         an input and its eval-mode output
  load_messages.tsv          load_state_dict outcomes (exception class and
                             exact message) for the cases the C test rebuilds

When the `safetensors` package is installed its save_model writes
torch_*.safetensors; otherwise stfile.write does, in the same layout.
"""
import os
import subprocess
import sys

import numpy as np
import torch
from torch import nn

HERE = os.path.dirname(os.path.abspath(__file__))
sys.dont_write_bytecode = True  # no __pycache__ beside the data
sys.path.insert(0, HERE)
import stfile  # noqa: E402
from roundtrip import model  # noqa: E402

DTYPES = {"f32": torch.float32, "f64": torch.float64}


def out(name):
    return os.path.join(HERE, name)


def save_torch(m, path):
    try:
        from safetensors.torch import save_model
        save_model(m, path)
        return "safetensors " + __import__("safetensors").__version__
    except ImportError:
        stfile.write(path, list(m.state_dict().items()), {"format": "pt"},
                     reference_order=True)
        return "stfile.py (the safetensors package is not installed)"


def round_trip_data():
    writer = None
    for tag, dt in DTYPES.items():
        torch.manual_seed(1)
        x = torch.randn(1, 2, 3, 3, 3, dtype=dt)
        np.save(out(f"x_{tag}.npy"), x.numpy())
        torch.manual_seed(0)
        m = model(dt)
        writer = save_torch(m, out(f"torch_{tag}.safetensors"))
        with torch.no_grad():
            np.save(out(f"y_torch_{tag}.npy"), m(x).numpy())
        stfile.write(out(f"c_layout_{tag}.safetensors"),
                     list(m.state_dict().items()), None,
                     reference_order=False)
        subprocess.run([sys.executable, out("roundtrip.py"),
                        out(f"c_layout_{tag}.safetensors"),
                        out(f"x_{tag}.npy"),
                        out(f"y_roundtrip_{tag}.npy")], check=True)
    return writer


def batchnorm_data():
    torch.manual_seed(2)
    bn = nn.BatchNorm3d(3)
    with torch.no_grad():
        bn.weight.uniform_(0.5, 1.5)
        bn.bias.uniform_(-0.5, 0.5)
    for _ in range(2):
        bn(torch.randn(2, 3, 2, 2, 2))
    bn.eval()
    x = torch.randn(2, 3, 2, 2, 2)
    np.save(out("x_bn.npy"), x.numpy())
    with torch.no_grad():
        np.save(out("y_bn.npy"), bn(x).numpy())
    save_torch(bn, out("torch_bn.safetensors"))


# ---- load_state_dict messages -------------------------------------------

def seq():
    return nn.Sequential(nn.Conv3d(1, 2, 1), nn.ReLU(),
                         nn.ConvTranspose3d(2, 1, 1, bias=False))


class Holder(nn.Module):
    """A user module: a parameter, a None parameter, a 0-d buffer, a
    non-persistent buffer and a None buffer (cgrad builds the same with
    cg_module_new_custom)."""

    def __init__(self):
        super().__init__()
        self.w = nn.Parameter(torch.zeros(2, 2))
        self.register_parameter("none_p", None)
        self.register_buffer("b0", torch.tensor(0.0))
        self.register_buffer("tmp", torch.zeros(2), persistent=False)
        self.register_buffer("none_b", None)


def nested():
    return nn.Sequential(nn.Sequential(nn.Conv3d(1, 1, 1)), nn.Conv3d(1, 1, 1))


def case_seq_mixed():
    m = seq()
    sd = m.state_dict()
    del sd["0.weight"], sd["0.bias"]
    sd["3.weight"] = torch.zeros(1)
    sd["2.bias"] = torch.zeros(1)
    sd["0.foo"] = torch.zeros(1)
    sd["weight"] = torch.zeros(1)
    sd["2.weight"] = torch.zeros(3, 3)
    return m, sd


def case_seq_non_tensor():
    m = seq()
    sd = m.state_dict()
    sd["0.weight"] = 3.0
    sd["0.bias"] = None
    return m, sd


def case_seq_bool():
    m = seq()
    sd = m.state_dict()
    sd["0.weight"] = True
    return m, sd


def case_seq_empty():
    return seq(), {}


def case_seq_f64():
    m = seq()
    sd = m.state_dict()
    sd["0.weight"] = torch.full((2, 1, 1, 1, 1), 0.25, dtype=torch.float64)
    return m, sd


def case_holder_1d_into_0d():
    return Holder(), {"w": torch.ones(2, 2), "b0": torch.tensor([5.0])}


def case_holder_empty_1d():
    return Holder(), {"w": torch.ones(2, 2), "b0": torch.zeros(0)}


def case_holder_unexpected():
    return Holder(), {"w": torch.ones(2, 2), "b0": torch.tensor(1.0),
                      "tmp": torch.zeros(2), "none_p": torch.zeros(1),
                      "none_b": torch.zeros(1)}


def case_nested():
    m = nested()
    sd = m.state_dict()
    del sd["0.0.bias"]
    sd["0.1.weight"] = torch.zeros(1)
    sd["0.0.x.y"] = torch.zeros(1)
    sd["1.bias"] = torch.zeros(2)
    return m, sd


CASES = [
    ("seq_mixed", case_seq_mixed, True),
    ("seq_mixed", case_seq_mixed, False),
    ("seq_non_tensor", case_seq_non_tensor, True),
    ("seq_bool", case_seq_bool, True),
    ("seq_empty", case_seq_empty, True),
    ("seq_empty", case_seq_empty, False),
    ("seq_f64", case_seq_f64, True),
    ("holder_1d_into_0d", case_holder_1d_into_0d, True),
    ("holder_empty_1d", case_holder_empty_1d, True),
    ("holder_unexpected", case_holder_unexpected, True),
    ("holder_unexpected", case_holder_unexpected, False),
    ("nested", case_nested, True),
    ("nested", case_nested, False),
]


def esc(s):
    return s.replace("\\", "\\\\").replace("\n", "\\n").replace("\t", "\\t")


def messages():
    rows = ["case\tstrict\tstatus\tmessage\tkeys"]
    for name, make, strict in CASES:
        m, sd = make()
        keys = ",".join(m.state_dict().keys())
        try:
            r = m.load_state_dict(sd, strict=strict)
            status, msg = "OK", (",".join(r.missing_keys) + ";" +
                                 ",".join(r.unexpected_keys))
        except Exception as e:  # the class and text cgrad must reproduce
            status, msg = type(e).__name__, str(e)
        rows.append(f"{name}\t{int(strict)}\t{status}\t{esc(msg)}\t{keys}")
    with open(out("load_messages.tsv"), "w") as f:
        f.write("\n".join(rows) + "\n")


if __name__ == "__main__":
    writer = round_trip_data()
    batchnorm_data()
    messages()
    with open(out("VERSION.txt"), "w") as f:
        f.write(f"torch {torch.__version__}\nnumpy {np.__version__}\n"
                f"model seed 0 (torch.manual_seed), input seed 1\n"
                f"torch_*.safetensors written by {writer}\n")
