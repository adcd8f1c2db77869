"""The PyTorch side of the safetensors round trip (issue 7, must-show 3).

    python3 roundtrip.py MODEL.safetensors X.npy OUT.npy

Loads a safetensors file that cgrad wrote from a C model
Sequential(Conv3d(2, 3, 3, padding=1), ReLU(), ConvTranspose3d(3, 2, 2,
stride=2)) into the same PyTorch model with load_state_dict(strict=True),
runs it on X and saves the output. Uses the `safetensors` package when it is
installed, else the hand reader in stfile.py. Exits non-zero (with
PyTorch's exception) when the file does not load strictly.
"""
import os
import sys

import numpy as np
import torch
from torch import nn

sys.dont_write_bytecode = True  # no __pycache__ beside the data
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import stfile  # noqa: E402


def model(dtype):
    return nn.Sequential(
        nn.Conv3d(2, 3, 3, padding=1, dtype=dtype),
        nn.ReLU(),
        nn.ConvTranspose3d(3, 2, 2, stride=2, dtype=dtype))


def load(path):
    try:
        from safetensors.torch import load_file
        return load_file(path)
    except ImportError:
        return stfile.read(path)[0]


def main():
    path, x_path, out_path = sys.argv[1:4]
    sd = load(path)
    dtype = sd["0.weight"].dtype
    torch.manual_seed(12345)  # any init: every value comes from the file
    m = model(dtype)
    m.load_state_dict(sd, strict=True)
    for name, t in m.state_dict().items():
        assert torch.equal(t, sd[name]), name
    x = torch.from_numpy(np.load(x_path))
    with torch.no_grad():
        y = m(x)
    np.save(out_path, y.numpy())


if __name__ == "__main__":
    main()
