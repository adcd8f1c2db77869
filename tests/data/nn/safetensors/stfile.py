"""The safetensors format written and read by hand, for the generator and
roundtrip.py when the `safetensors` package is not installed (it is not on
PyPI-less machines). The format: an 8-byte little-endian header length N,
N bytes of compact UTF-8 JSON padded with spaces to a multiple of 8
({name: {"dtype", "shape", "data_offsets": [begin, end)}}, optional
"__metadata__" of str -> str), then the tensors' bytes back to back."""
import json
import struct

import numpy as np
import torch

CODES = {torch.float32: ("F32", "<f4"), torch.float64: ("F64", "<f8"),
         torch.complex64: ("C64", "<c8"), torch.int64: ("I64", "<i8")}
NUMPY = {code: np_dtype for code, np_dtype in CODES.values()}
# safetensors' Dtype enum order (increasing alignment); the reference
# writer sorts by it, descending, then by name
ALIGN = ["BOOL", "U8", "I8", "F8_E5M2", "F8_E4M3", "I16", "U16", "F16",
         "BF16", "I32", "U32", "F32", "F64", "I64", "U64", "C64"]


def write(path, tensors, metadata=None, reference_order=True):
    """tensors: list of (name, tensor). reference_order sorts them as
    safetensors' serialize() does; otherwise they keep the given order (as
    cgrad writes them)."""
    items = list(tensors)
    if reference_order:
        items.sort(key=lambda kv: (-ALIGN.index(CODES[kv[1].dtype][0]), kv[0]))
    header, blobs, offset = {}, [], 0
    if metadata:
        header["__metadata__"] = metadata
    for name, t in items:
        code, np_dtype = CODES[t.dtype]
        b = np.ascontiguousarray(t.detach().numpy().astype(np_dtype)).tobytes()
        header[name] = {"dtype": code, "shape": list(t.shape),
                        "data_offsets": [offset, offset + len(b)]}
        offset += len(b)
        blobs.append(b)
    h = json.dumps(header, separators=(",", ":"), ensure_ascii=False).encode()
    h += b" " * ((8 - len(h) % 8) % 8)
    with open(path, "wb") as f:
        f.write(struct.pack("<Q", len(h)))
        f.write(h)
        for b in blobs:
            f.write(b)


def read(path):
    """-> (dict name -> tensor in offset order, metadata dict or None)"""
    with open(path, "rb") as f:
        data = f.read()
    (n,) = struct.unpack("<Q", data[:8])
    header = json.loads(data[8:8 + n].decode("utf-8"))
    metadata = header.pop("__metadata__", None)
    base = 8 + n
    out = {}
    for name, info in sorted(header.items(),
                             key=lambda kv: kv[1]["data_offsets"]):
        b, e = info["data_offsets"]
        arr = np.frombuffer(data[base + b:base + e],
                            dtype=NUMPY[info["dtype"]]).reshape(info["shape"])
        out[name] = torch.from_numpy(arr.copy())
    return out, metadata
