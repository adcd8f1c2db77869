#!/usr/bin/env python3
"""Generates the reference data of tests/test_autograd.c from PyTorch 1.13.

Run with a Python that has PyTorch 1.13 and NumPy (on Debian the system
interpreter with python3-torch; a pyenv "python3" on PATH may lack torch):

    /usr/bin/python3 tests/data/autograd/gen_autograd.py [output_dir]

(default output_dir: the folder holding this script). The committed data
was made with torch 1.13.0a0 (Debian python3-torch) and NumPy 1.24.2; the
script records the versions in VERSION.txt and refuses any torch other
than 1.13. Nothing here is random except the composite's inputs, drawn
from torch.manual_seed(SEED) and stored as .npy, so the C test never
depends on the RNG. Torch runs on one thread, so that a rerun writes the
same bytes (its multi-threaded sums differ in the last bit between runs).

Outputs:

  VERSION.txt    torch and numpy versions, the seed.
  graphs.txt     for each expression of CASES, the structure of its
      backward graph: "case <name>", then one line per next_functions entry
      in depth-first order (children in next_functions order):
          <depth> <id> <name> <input_nr>
      <id> numbers distinct nodes in the order they are first reached; a
      node reached again prints its line again (same id) but is not
      expanded. AccumulateGrad is written "AccumulateGrad:<leaf name>", a
      None entry "<depth> - None <input_nr>". The case ends with "end".
      The root line has input_nr = the output's output_nr (0).
  composite_{x,y,w}.npy, composite_g{x,y,w}.npy   inputs and torch's
      gradients of COMPOSITE (float64).
  messages.txt   "<key>\\t<message>" for the autograd errors the C test
      reproduces with the same expressions (str(exception)).
  autograd_graph.grads.txt   repr() of the gradients of the expression in
      examples/autograd_graph.c, each block "<name>.grad:\\n<repr>\\n"; the
      example's expected output must contain these blocks verbatim.
"""
import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

SEED = 20240613
torch.set_num_threads(1)  # reproducible float sums across runs
D = torch.float64

if not torch.__version__.startswith("1.13"):
    sys.exit("gen_autograd.py needs torch 1.13, found " + torch.__version__)

OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(
    os.path.abspath(__file__))


def leaves():
    """The named leaves every case may use, with fixed values (the graph
    structure does not depend on them)."""
    x = torch.tensor([[0.5, -1.0, 2.0], [1.5, 0.25, -0.75]], dtype=D,
                     requires_grad=True)
    y = torch.tensor([0.3, -0.6, 0.9], dtype=D, requires_grad=True)
    w = torch.tensor([[0.1, 0.2, -0.3, 0.4], [0.5, -0.6, 0.7, 0.8],
                      [-0.9, 1.0, 1.1, -1.2]], dtype=D, requires_grad=True)
    v = torch.tensor([1.0, 2.0, 3.0], dtype=D)  # requires no grad
    b = torch.tensor([[[0.1, 0.2, 0.3], [0.4, 0.5, 0.6]],
                      [[0.7, 0.8, 0.9], [1.0, 1.1, 1.2]]], dtype=D,
                     requires_grad=True)
    c = torch.tensor([[1 + 2j, -0.5 + 0.25j, 3 - 1j],
                      [0.5 - 0.5j, 2 + 0j, -1 + 1.5j]],
                     dtype=torch.complex128, requires_grad=True)
    return dict(x=x, y=y, w=w, v=v, b=b, c=c)


# Each case: name -> function of the leaves returning the output tensor.
# The C test builds the same expressions (keep both lists in step).
CASES = [
    ("mul_sum", lambda L: (L["x"] * L["y"]).sum()),
    ("mul_scalar", lambda L: L["x"] * 2),
    ("square", lambda L: L["x"] * L["x"]),
    ("add_detached", lambda L: L["x"] + L["y"].detach()),
    ("add_const", lambda L: L["v"] + L["y"]),
    ("exp_log_sqrt", lambda L: L["x"].exp().log().abs().sqrt()),
    ("views", lambda L: L["x"].view(3, 2).t().unsqueeze(0).squeeze(0)
     .sum(0)),
    ("reshape_copy", lambda L: L["x"].t().reshape(6)),
    ("slices", lambda L: L["x"][:, 1:].select(0, 1) + L["y"].expand(2, 3)
     .narrow(1, 0, 2).permute(1, 0).transpose(0, 1)[0]),
    ("mm", lambda L: L["x"].mm(L["w"])),
    ("matmul_mv", lambda L: torch.matmul(L["x"], L["y"])),
    ("matmul_vm", lambda L: torch.matmul(L["y"], L["w"])),
    ("matmul_dot", lambda L: torch.matmul(L["y"], L["v"])),
    ("matmul_batched", lambda L: torch.matmul(L["b"], L["w"])),
    ("cat", lambda L: torch.cat([L["x"], L["x"] * 2, L["x"].detach()], 0)),
    ("softmax", lambda L: L["x"].softmax(1).log_softmax(0)),
    ("activations", lambda L: F.leaky_relu(
        F.gelu(L["x"].relu().sigmoid().tanh()), 0.1)),
    ("div_sub", lambda L: (L["x"] - L["y"]) / (L["x"] + 1)),
    ("pow_mean", lambda L: L["x"].pow(2).mean() + L["x"].mean((1,), True)
     .sum((0,), False).sum()),
    ("rsub_neg", lambda L: (2 - L["x"]).neg() - 3),
    ("to_clone", lambda L: L["x"].to(torch.float32).clone()),
    ("complex", lambda L: torch.view_as_real(
        torch.complex(L["x"], L["x"] * 2) * L["c"]).sum() + L["c"].abs()
     .sum() + L["c"].real.sum() + L["c"].imag.sum() + (L["c"].conj() *
                                    L["c"]).real.sum()),
    ("mul_complex_scalar", lambda L: L["x"] * 1j),
]


def graph_lines(root, names):
    """The depth-first listing described in the module docstring."""
    ids = {}
    keep = []  # keep the Python wrappers alive so ids stay meaningful
    lines = []
    stack = [(root, 0, 0)]
    while stack:
        node, depth, nr = stack.pop()
        if node is None:
            lines.append("%d - None %d" % (depth, nr))
            continue
        label = node.name()
        if label == "torch::autograd::AccumulateGrad":
            label = "AccumulateGrad"
        if label == "AccumulateGrad":
            label += ":" + names[id(node.variable)]
        key = node
        if key in ids:
            lines.append("%d %d %s %d" % (depth, ids[key], label, nr))
            continue
        ids[key] = len(ids)
        keep.append(node)
        lines.append("%d %d %s %d" % (depth, ids[key], label, nr))
        for nxt, inr in reversed(node.next_functions):
            stack.append((nxt, depth + 1, inr))
    return lines


def write_graphs():
    out = []
    for name, fn in CASES:
        L = leaves()
        names = {id(t): k for k, t in L.items()}
        y = fn(L)
        assert y.grad_fn is not None, name
        out.append("case " + name)
        out.extend(graph_lines(y.grad_fn, names))
        out.append("end")
    with open(os.path.join(OUT, "graphs.txt"), "w") as f:
        f.write("# torch %s; see gen_autograd.py\n" % torch.__version__)
        f.write("\n".join(out) + "\n")


def composite(x, y, w):
    """((x*y).exp() + x.pow(2)), broadcast y, then views, matmul, softmax,
    cat, slicing and reductions."""
    a = (x * y).exp() + x.pow(2)                 # (2, 3)
    b = a.view(3, 2).t()                         # (2, 3), a view
    s = torch.softmax(torch.matmul(b, w), -1)    # (2, 4)
    return s.pow(2).sum() + torch.cat([a, b], 0).mean() + \
        (s[:, 1:] / (1 + a[:, :1])).sum()


def write_composite():
    torch.manual_seed(SEED)
    x = torch.randn(2, 3, dtype=D, requires_grad=True)
    y = torch.randn(3, dtype=D, requires_grad=True)
    w = torch.randn(3, 4, dtype=D, requires_grad=True)
    composite(x, y, w).backward()
    for n, t in (("x", x), ("y", y), ("w", w)):
        np.save(os.path.join(OUT, "composite_%s.npy" % n),
                t.detach().numpy())
        np.save(os.path.join(OUT, "composite_g%s.npy" % n), t.grad.numpy())


def error_of(fn):
    try:
        fn()
    except RuntimeError as e:
        return str(e)
    raise AssertionError("no error")


def write_messages():
    msgs = {}

    def version_output():
        x = torch.tensor([1.0, 2.0, 3.0], dtype=D, requires_grad=True)
        y = x.exp()
        with torch.no_grad():
            y[0] = 5.0
        y.sum().backward()
    msgs["version_output"] = error_of(version_output)

    def version_input():
        L = leaves()
        w = L["w"].detach().clone()   # requires no grad
        y = L["x"].mm(w)
        w[0, 0] = 1.0
        y.sum().backward()
    msgs["version_input"] = error_of(version_input)

    def version_leaf():
        L = leaves()
        y = L["x"].mm(L["w"])
        with torch.no_grad():
            L["x"][0, 0] = 1.0
        y.sum().backward()
    msgs["version_leaf"] = error_of(version_leaf)

    def version_view_of_output():
        # the saved output modified through a view of it
        x = torch.tensor([1.0, 2.0, 3.0], dtype=D, requires_grad=True)
        y = x.exp()
        with torch.no_grad():
            y.view(3)[1] = 0.0
        y.sum().backward()
    msgs["version_view_of_output"] = error_of(version_view_of_output)

    def second():
        L = leaves()
        s = L["x"].mm(L["w"]).sum()
        s.backward()
        s.backward()
    msgs["second"] = error_of(second)

    def scalar():
        L = leaves()
        L["x"].mm(L["w"]).backward()
    msgs["scalar"] = error_of(scalar)

    def nograd():
        L = leaves()
        with torch.no_grad():
            y = L["x"].mm(L["w"])
        y.sum().backward()
    msgs["nograd"] = error_of(nograd)

    def mismatch():
        w5 = torch.ones(1, 1, 2, 1, 1, dtype=D, requires_grad=True)
        w5.clone().backward(torch.ones(3, dtype=D))
    msgs["mismatch"] = error_of(mismatch)

    def mismatch_no_grad():
        # the shape check comes before the requires-grad check
        torch.ones(3, dtype=D).backward(torch.ones(2, dtype=D))
    msgs["mismatch_no_grad"] = error_of(mismatch_no_grad)

    def complex_grad_for_real():
        L = leaves()
        L["x"].clone().backward(torch.ones(2, 3, dtype=torch.complex128))
    msgs["complex_grad_for_real"] = error_of(complex_grad_for_real)

    def real_grad_for_complex():
        L = leaves()
        L["c"].clone().backward(torch.ones(2, 3, dtype=D))
    msgs["real_grad_for_complex"] = error_of(real_grad_for_complex)

    def requires_grad_nonleaf():
        L = leaves()
        L["x"].clone().requires_grad_(False)
    msgs["requires_grad_nonleaf"] = error_of(requires_grad_nonleaf)

    def retain_grad_no_grad():
        leaves()["v"].retain_grad()
    msgs["retain_grad_no_grad"] = error_of(retain_grad_no_grad)

    def leaf_inplace():
        leaves()["x"].fill_(1.0)
    msgs["leaf_inplace"] = error_of(leaf_inplace)

    with open(os.path.join(OUT, "messages.txt"), "w") as f:
        f.write("# torch %s; see gen_autograd.py\n" % torch.__version__)
        for k in sorted(msgs):
            assert "\n" not in msgs[k] and "\t" not in msgs[k], k
            f.write("%s\t%s\n" % (k, msgs[k]))


def write_example_grads():
    """The computation of examples/autograd_graph.c."""
    x = torch.tensor([[1.0, -2.0, 3.0], [0.5, 0.0, -1.0]], dtype=D)
    W1 = torch.tensor([[0.2, -0.1, 0.4, 0.3], [-0.5, 0.6, 0.1, -0.2],
                       [0.3, 0.2, -0.4, 0.5]], dtype=D, requires_grad=True)
    b1 = torch.tensor([0.1, -0.2, 0.05, 0.0], dtype=D, requires_grad=True)
    W2 = torch.tensor([[0.7], [-0.3], [0.5], [0.2]], dtype=D,
                      requires_grad=True)
    b2 = torch.tensor([0.1], dtype=D, requires_grad=True)
    h = torch.relu(x.mm(W1) + b1)
    y = h.mm(W2) + b2
    loss = y.pow(2).mean()
    loss.backward()
    with open(os.path.join(OUT, "autograd_graph.grads.txt"), "w") as f:
        f.write("loss:\n%r\n" % (loss,))
        for n, t in (("W1", W1), ("b1", b1), ("W2", W2), ("b2", b2)):
            f.write("%s.grad:\n%r\n" % (n, t.grad))


def main():
    os.makedirs(OUT, exist_ok=True)
    with open(os.path.join(OUT, "VERSION.txt"), "w") as f:
        f.write("torch %s\nnumpy %s\nseed %d\n" % (
            torch.__version__, np.__version__, SEED))
    write_graphs()
    write_composite()
    write_messages()
    write_example_grads()


if __name__ == "__main__":
    main()
