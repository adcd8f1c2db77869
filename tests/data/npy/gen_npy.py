"""Writes the .npy fixtures that tests/test_npy.c loads and byte-compares,
and literal_cases.tsv, torch.tensor's verdict on the literals that
tests/test_literal.c parses.

Run from anywhere with the system Python that has NumPy and PyTorch (the
`python3` on PATH may be a pyenv one without them):

    /usr/bin/python3 tests/data/npy/gen_npy.py

Written with NumPy 1.24.2 (np.save, np.lib.format.write_array) and
PyTorch 1.13 on Python 3.11; the npy test checks values computed by the
same formulas in C, so a change here needs the matching change in
test_npy.c. Each .npy fixture is under 2 KiB, the table about 14 KiB;
nothing is random, so a rerun rewrites the same bytes.

Value formulas, for flat (row-major) index i:
    real:     (i - 2.5) * 0.75
    complex:  (i - 2.5) * 0.75  +  (-0.125 * i) j
All are exact in float32, so every dtype holds the same numbers.
"""
import os
import struct

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))


def values(shape, dtype):
    n = int(np.prod(shape, dtype=np.int64))
    i = np.arange(n, dtype=np.float64)
    v = (i - 2.5) * 0.75
    if np.dtype(dtype).kind == "c":
        v = v + 1j * (-0.125 * i)
    return v.astype(dtype).reshape(shape)


def save(name, array, version=None):
    path = os.path.join(HERE, name)
    if version is None:
        np.save(path, array)
    else:
        with open(path, "wb") as f:
            np.lib.format.write_array(f, array, version=version)


def main():
    dtypes = {"f4": "<f4", "f8": "<f8", "c8": "<c8", "c16": "<c16"}
    for tag, dt in dtypes.items():
        save(f"{tag}_2x3.npy", values((2, 3), dt))          # every dtype
        save(f"{tag}_scalar.npy", values((), dt))           # 0-d
        save(f"{tag}_empty.npy", values((2, 0, 3), dt))     # empty
    save("f4_len0.npy", values((0,), "<f4"))
    save("f8_5d.npy", values((2, 1, 3, 1, 2), "<f8"))       # >= 5 dims
    save("c8_6d.npy", values((1, 2, 1, 2, 1, 3), "<c8"))
    save("f4_16d.npy", values((1,) * 15 + (2,), "<f4"))     # CG_MAX_DIMS
    save("f8_vec7.npy", values((7,), "<f8"))                # 1-d
    # format versions 2.0 and 3.0 (u32 header length)
    save("f4_2x3_v2.npy", values((2, 3), "<f4"), version=(2, 0))
    save("c16_2x3_v3.npy", values((2, 3), "<c16"), version=(3, 0))
    # what numpy writes for non-contiguous arrays cgrad saves: the
    # transpose (saved C-ordered), a broadcast row and a strided slice
    a = values((3, 4), "<f8")
    save("f8_3x4.npy", a)
    save("f8_3x4_T.npy", np.ascontiguousarray(a.T))
    row = values((1, 3), "<c8")
    save("c8_expand_4x3.npy", np.broadcast_to(row, (4, 3)))
    save("f8_3x4_slice.npy", a[::2, 1::2])
    # special values
    f4 = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 1e-45, 3.4028235e38,
                   1.1754944e-38, 0.1, -1.0 / 3.0], dtype="<f4")
    save("f4_special.npy", f4)
    f8 = np.array([0.0, -0.0, np.inf, -np.inf, np.nan, 5e-324,
                   1.7976931348623157e308, 2.2250738585072014e-308, 0.1,
                   -1.0 / 3.0], dtype="<f8")
    save("f8_special.npy", f8)
    # a header as numpy < 1.14 wrote it: padded to 16 bytes, not 64
    head = b"{'descr': '<f4', 'fortran_order': False, 'shape': (2, 3), }"
    pad = 16 - (10 + len(head) + 1) % 16
    head += b" " * (pad % 16) + b"\n"
    with open(os.path.join(HERE, "f4_2x3_align16.npy"), "wb") as f:
        f.write(b"\x93NUMPY\x01\x00" + struct.pack("<H", len(head)) + head)
        f.write(values((2, 3), "<f4").tobytes())
    gen_literals()


# ---- torch.tensor(<literal>) ---------------------------------------------
#
# Each case is (text, dtype): the text is evaluated as Python evaluates it
# (with the names inf, nan, infj, nanj that torch's repr prints) and given
# to torch.tensor. dtype None means cgrad's inference: complex64 if any
# element is complex, else float32 (cgrad has no integer dtype, so ints
# are read as torch.tensor(data, dtype=torch.float32) reads them).
#
# literal_cases.tsv, one case per line, fields split by tabs, the text with
# \\, \t, \n, \r escaped:
#   text  dtype|-  ok   dtype  sizes(comma-separated)  values
#   text  dtype|-  err  ExceptionName  message
# values are the float64 bit patterns (16 hex digits, space-separated) of
# every element in row-major order, real then imaginary part for complex.

NAMES = {"inf": float("inf"), "nan": float("nan"),
         "infj": complex(0, float("inf")), "nanj": complex(0, float("nan"))}

HALF = "1.00000000000000011102230246251565404236316680908203125"

LITERALS = [
    # the seed's literals
    ("[[[[8., -3., 0., 1., 5., -2.]]]]", None),
    ("[[[[[8.+0.j], [-3.+0.j], [0.+0.j]], [[1.+0.j], [5.+0.j], "
     "[-2.+0.j]]]]]", None),
    # scalars
    ("3.5", None), ("-0.0", None), ("0", None), ("-0", None), ("7", None),
    ("(2.5)", None), ("((1.5))", None), ("  42\n", None), ("1j", None),
    # empties
    ("[]", None), ("[[], []]", None), ("()", None), ("[[[]]]", None),
    ("[(), ()]", None), ("[[[], []], [[], []], [[], []]]", None),
    # special values
    ("[float('nan'), float('inf'), -float('inf'), -0.0, 0.0]", None),
    ("[nan, inf, -inf, -nan]", None),
    ("[float(' 1.5 '), float('-inf'), float('Infinity'), float('NaN'), "
     "float('1e3'), float('.5'), float('-0'), float('+7.'), float(\"2\")]",
     None),
    ("[float(), float(2), float(1+1), float(-0.0), float(True)]", None),
    # numbers as Python spells them
    ("[1e10, 1E-5, 2.5e+3, .5, 5., 1.e2, 0.1, 00.5, 007e1, 0e0]", None),
    ("[1e400, -1e400, 1e-400, 3.4028235e38, 3.4028236e38, 1.4e-45, 7e-46,"
     " 1e-45, 1.1754943e-38]", None),
    ("[1, 2, 3]", None), ("[[1, 2], [3, 4]]", None), ("[00, 0]", None),
    ("[16777217, 9007199254740993, 123456789012345678901234567890, "
     "9223372036854775807, 9223372036854775808]", None),
    ("[16777217, 9007199254740993, 0.1]", "float64"),
    ("[0.1, 1e-310, 2.2250738585072014e-308, 1.7976931348623157e308, "
     "1.7976931348623158e308, 1.797693134862315807e308]", "float64"),
    # correct rounding of long mantissas (halfway cases, 800+ digits)
    (HALF, "float64"),
    (HALF + "0" * 1000 + "1", "float64"),
    (HALF + "0" * 1000, "float64"),
    ("0." + "0" * 400 + "1e401", "float64"),
    ("0." + "0" * 400 + "15e401", "float32"),
    ("1" * 900 + "e-899", "float64"),
    ("1" * 900 + ".5e-899", "float64"),
    ("0.1000000000000000055511151231257827021181583404541015625",
     "float64"),
    ("[2.4703282292062327e-324, 2.4703282292062328e-324, "
     "4.9406564584124654e-324]", "float64"),
    # arithmetic and signs
    ("[0.1+0.2, 1-1, 9007199254740993-1, -9223372036854775807-2]",
     "float64"),
    ("[+1, -+-2, - 3, --4, +-+5.5]", None),
    # complex
    ("[1+2j, 3]", None), ("[-3.5-0.25j, 4j]", None), ("[1j, 2]", None),
    ("(1+2j)", None), ("[(1+2j), (3-4j), (-0-0j)]", None),
    ("[complex(1, 2), complex(-0.0, 0.0), complex(3), complex(), "
     "complex(1j, 1j), complex(1.5, -0.0), complex(2j)]", None),
    ("[nan+nanj, -inf+1.j, inf+infj, 1-infj]", None),
    ("[-0.-0.j, -0.+0.j, 0.-0.j, 1e5J, 1.5e-3j, 2.j]", None),
    ("[[], [1j]]", None),
    ("[1, 2]", "complex64"), ("[[1.5, 0.1]]", "complex128"),
    ("[1+2j, 0.1-0.1j]", "complex128"),
    # sequences: tuples, grouping, whitespace, trailing commas
    ("[[1, 2], (3, 4)]", None), ("((1, 2), (3, 4))", None), ("(1,)", None),
    ("[(1,), (2,)]", None), ("([1, 2])", None), ("((1, 2))", None),
    ("[([1]), ((2,))]", None), ("[(1), ((2))]", None),
    (" [ 1 ,\n 2 ,\t3 , ] ", None), ("[\r\n1.5\f]\n", None),
    ("[[1,],[2,],]", None), ("[True, False, 2.5]", None),
    ("[[[[[[[[[[[[[[[[1.]]]]]]]]]]]]]]]]", None),
    ("[[1], [2], [3], [4], [5], [6], [7], [8], [9], [10], [11], [12]]",
     None),
    # torch checks nothing when the shape is empty
    ("[[], [1, 2]]", None), ("[[], 3]", None), ("[[], [[[]]]]", None),
    ("[[], [1j]]", "float32"),
    # torch's errors, in its order
    ("[[1, 2], [1, 2, 3]]", None), ("[[1, 2], 3]", None),
    ("[1, [2, 3]]", None), ("[1., (2., 3.)]", None), ("[1j]", "float32"),
    ("1j", "float64"), ("[[1.], []]", None), ("[[1, 2], [3, [4]]]", None),
    ("[[[1, 2], [3, 4]], [[5, 6], [7]]]", None),
    ("[[1, 2], [[3], 4]]", None), ("[2., 1j]", "float64"),
    ("[[1, 2], [3, 4], [5]]", None), ("[[1j, 2], [3]]", None),
    ("[1, 2, [3]]", None), ("[[1, 2], 3, [4, 5, 6]]", None),
    ("[[1, 2], [3, 4, 5], 6]", None), ("[[1j], [1, 2]]", "float32"),
    ("[[1, 2], [1j]]", "float32"), ("[(1, 2), [3, (4,)]]", None),
    ("[float(1j)]", None), ("[float('abc')]", None),
    ("[float('1.5.5')]", None), ("[float(\"it's\")]", None),
    ("[float('')]", None), ("[float('1e')]", None), ("[float('j')]", None),
    ("[float('\t-x ')]", None),
]


def has_complex(data):
    if isinstance(data, (list, tuple)):
        return any(has_complex(x) for x in data)
    return isinstance(data, complex)


def escape(text):
    return (text.replace("\\", "\\\\").replace("\t", "\\t")
            .replace("\n", "\\n").replace("\r", "\\r"))


def bits(x):
    return struct.pack(">d", x).hex()


def verdict(text, dtype):
    import torch
    try:
        data = eval(text, {"__builtins__": {"float": float,
                                            "complex": complex,
                                            "True": True,
                                            "False": False}},
                    dict(NAMES))
        if dtype is None:
            dt = torch.complex64 if has_complex(data) else torch.float32
        else:
            dt = getattr(torch, dtype)
        t = torch.tensor(data, dtype=dt)
    except (TypeError, ValueError, OverflowError) as e:
        return ["err", type(e).__name__, str(e)]
    flat = t.reshape(-1).tolist()
    vals = []
    for v in flat:
        if t.is_complex():
            vals += [bits(v.real), bits(v.imag)]
        else:
            vals.append(bits(v))
    return ["ok", str(t.dtype).replace("torch.", ""),
            ",".join(str(s) for s in t.shape), " ".join(vals)]


def gen_literals():
    import torch
    assert torch.__version__.startswith("1.13"), torch.__version__
    # cgrad's inference is torch's for float and complex data
    assert torch.tensor([1.5, 2j]).dtype == torch.complex64
    assert torch.tensor([[1.5]]).dtype == torch.float32
    lines = []
    for text, dtype in LITERALS:
        row = [escape(text), dtype or "-"] + verdict(text, dtype)
        assert all("\t" not in f and "\n" not in f for f in row), row
        lines.append("\t".join(row))
    with open(os.path.join(HERE, "literal_cases.tsv"), "w") as f:
        f.write("\n".join(lines) + "\n")


if __name__ == "__main__":
    main()
