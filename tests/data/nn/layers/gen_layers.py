#!/usr/bin/env python3
"""Reference data for cgrad's simple nn layers and containers, produced by
real PyTorch (1.13.x, CPU, one thread): nn.Linear, ReLU, LeakyReLU,
Sigmoid, Tanh, GELU, Flatten, Dropout and Sequential.

Run:  /usr/bin/python3 tests/data/nn/layers/gen_layers.py [output_dir]
(default: the folder holding this script). Needs torch and numpy. This
script is the only way the files below change.

Files, next to this script:

  VERSION      torch and numpy versions.
  cases.tsv    one row per case: id, spec, dtype, seed, mode, input shape,
               input transform, the grad_fn chain of y, parameter names.
  <id>/        x.npy (the base input, before the transform), y.npy, gy.npy,
               gx.npy, and per parameter (dots as '_'): init_<name>.npy (its
               value right after construction) and grad_<name>.npy.
  reprs.tsv    id and repr(module) for many constructions (ids match the
               C test's table of constructors).
  errors.tsv   id, exception class and message for the failing calls.
  custom_module.expected.txt
               stdout of the PyTorch program examples/custom_module.c
               mirrors (see gen_custom_module below).

Recipe of a case (the C test replays it):
  torch.manual_seed(1000 + row); x = randn(shape, dtype) (saved; the C
  test loads it); x = transform(x).requires_grad_();
  torch.manual_seed(seed); m = build(spec, dtype); m.train(mode)
  y = m(x); gy = randn(y.shape) drawn from manual_seed(2000 + row);
  y.backward(gy).
So the initial parameters (bit for bit) and Dropout's noise are drawn right
after manual_seed(seed), as a user would see them.

Spec language (shared with the C test): layers separated by ';' inside
Seq[...]; a layer is its name and its arguments separated by spaces:
  Linear in out bias(0/1) | ReLU | LeakyReLU slope | Sigmoid | Tanh |
  GELU none|tanh | Flatten start end | Dropout p | Seq[...]

The chain column writes y.grad_fn as Name(child,child,...) over
next_functions, None for an empty edge, AccumulateGrad for leaves.
"""

import os
import sys

import numpy as np
import torch
from torch import nn

torch.set_num_threads(1)
OUT = sys.argv[1] if len(sys.argv) > 1 else os.path.dirname(os.path.abspath(__file__))


def split_top(s):
    parts, depth, cur = [], 0, ''
    for ch in s:
        if ch == '[':
            depth += 1
        elif ch == ']':
            depth -= 1
        if ch == ';' and depth == 0:
            parts.append(cur.strip())
            cur = ''
        else:
            cur += ch
    if cur.strip():
        parts.append(cur.strip())
    return parts


def build(spec, dtype):
    spec = spec.strip()
    if spec.startswith('Seq['):
        return nn.Sequential(*[build(p, dtype) for p in split_top(spec[4:-1])])
    w = spec.split()
    name, a = w[0], w[1:]
    if name == 'Linear':
        return nn.Linear(int(a[0]), int(a[1]), bias=bool(int(a[2])), dtype=dtype)
    if name == 'ReLU':
        return nn.ReLU()
    if name == 'LeakyReLU':
        return nn.LeakyReLU(float(a[0]))
    if name == 'Sigmoid':
        return nn.Sigmoid()
    if name == 'Tanh':
        return nn.Tanh()
    if name == 'GELU':
        return nn.GELU(approximate=a[0])
    if name == 'Flatten':
        return nn.Flatten(int(a[0]), int(a[1]))
    if name == 'Dropout':
        return nn.Dropout(float(a[0]))
    raise ValueError(spec)


def chain(fn):
    if fn is None:
        return 'None'
    name = type(fn).__name__
    kids = [chain(n) for n, _ in fn.next_functions]
    return name + ('(' + ','.join(kids) + ')' if kids else '')


# id, spec, dtype, seed, mode, input shape, transform
CASES = [
    ('lin_2d_f32', 'Linear 3 5 1', 'float32', 0, 'train', '4x3', '-'),
    ('lin_2d_nobias_f64', 'Linear 3 5 0', 'float64', 1, 'train', '4x3', '-'),
    ('lin_1d_f32', 'Linear 3 5 1', 'float32', 2, 'train', '3', '-'),
    ('lin_1d_nobias_f64', 'Linear 3 5 0', 'float64', 2, 'train', '3', '-'),
    ('lin_3d_f64', 'Linear 3 4 1', 'float64', 3, 'train', '2x4x3', '-'),
    ('lin_3d_nobias_f32', 'Linear 3 4 0', 'float32', 3, 'train', '2x4x3', '-'),
    ('lin_3d_noncontig_f64', 'Linear 3 4 1', 'float64', 4, 'train', '2x3x4', 't12'),
    ('lin_4d_f32', 'Linear 3 2 1', 'float32', 5, 'train', '2x2x2x3', '-'),
    ('lin_seed42_f32', 'Linear 10 7 1', 'float32', 42, 'train', '6x10', '-'),
    ('lin_seed42_f64', 'Linear 10 7 1', 'float64', 42, 'train', '6x10', '-'),
    ('lin_empty_batch_f32', 'Linear 3 2 1', 'float32', 6, 'train', '0x3', '-'),
    ('lin_in0_f32', 'Linear 0 3 1', 'float32', 7, 'train', '2x0', '-'),
    ('relu_f32', 'ReLU', 'float32', 0, 'train', '3x4', '-'),
    ('relu_f64', 'ReLU', 'float64', 0, 'train', '2x3x2', '-'),
    ('leaky_f32', 'LeakyReLU 0.2', 'float32', 0, 'train', '3x4', '-'),
    ('leaky_default_f64', 'LeakyReLU 0.01', 'float64', 0, 'train', '5', '-'),
    ('sigmoid_f32', 'Sigmoid', 'float32', 0, 'train', '3x4', '-'),
    ('sigmoid_f64', 'Sigmoid', 'float64', 0, 'train', '3x4', '-'),
    ('tanh_f32', 'Tanh', 'float32', 0, 'train', '3x4', '-'),
    ('tanh_f64', 'Tanh', 'float64', 0, 'train', '2x5', '-'),
    ('gelu_f32', 'GELU none', 'float32', 0, 'train', '3x4', '-'),
    ('gelu_f64', 'GELU none', 'float64', 0, 'train', '3x4', '-'),
    ('gelu_tanh_f32', 'GELU tanh', 'float32', 0, 'train', '3x4', '-'),
    ('gelu_tanh_f64', 'GELU tanh', 'float64', 0, 'train', '3x4', '-'),
    ('flatten_f32', 'Flatten 1 -1', 'float32', 0, 'train', '2x3x4', '-'),
    ('flatten_all_f64', 'Flatten 0 -1', 'float64', 0, 'train', '2x3x4', '-'),
    ('flatten_mid_f32', 'Flatten 1 2', 'float32', 0, 'train', '2x3x4x2', '-'),
    ('flatten_noncontig_f64', 'Flatten 1 -1', 'float64', 0, 'train', '2x3x4', 't12'),
    ('dropout_f32', 'Dropout 0.5', 'float32', 0, 'train', '4x25', '-'),
    ('dropout_f64', 'Dropout 0.3', 'float64', 11, 'train', '3x7x5', '-'),
    ('dropout_p09_f32', 'Dropout 0.9', 'float32', 12, 'train', '64', '-'),
    ('dropout_noncontig_f32', 'Dropout 0.25', 'float32', 13, 'train', '3x5', 't01'),
    ('dropout_eval_f32', 'Dropout 0.5', 'float32', 0, 'eval', '4x5', '-'),
    ('dropout_p1_f64', 'Dropout 1.0', 'float64', 0, 'train', '4x5', '-'),
    ('dropout_p0_f32', 'Dropout 0.0', 'float32', 0, 'train', '4x5', '-'),
    ('seq_mlp_f32', 'Seq[Linear 3 4 1; ReLU; Linear 4 2 1]', 'float32', 0, 'train', '5x3', '-'),
    ('seq_mlp_f64', 'Seq[Linear 3 4 1; Tanh; Linear 4 2 0; Sigmoid]', 'float64', 9, 'train', '5x3', '-'),
    ('seq_nested_f32', 'Seq[Flatten 1 -1; Linear 6 5 1; Seq[GELU tanh; Dropout 0.4; Linear 5 3 1]; LeakyReLU 0.1]',
     'float32', 21, 'train', '4x2x3', '-'),
    ('seq_nested_eval_f64', 'Seq[Flatten 1 -1; Linear 6 5 1; Seq[GELU none; Dropout 0.4; Linear 5 3 1]; LeakyReLU 0.1]',
     'float64', 21, 'eval', '4x2x3', '-'),
    ('seq_empty_f32', 'Seq[]', 'float32', 0, 'train', '2x3', '-'),
]

DT = {'float32': torch.float32, 'float64': torch.float64}


def transform(x, t):
    if t == 't12':
        return x.transpose(1, 2)
    if t == 't01':
        return x.transpose(0, 1)
    return x


def save(path, t):
    np.save(path, np.ascontiguousarray(t.detach().numpy()))


def esc(s):
    return s.replace('\\', '\\\\').replace('\t', '\\t').replace('\n', '\\n')


def gen_cases():
    rows = ['id\tspec\tdtype\tseed\tmode\tshape\ttransform\tchain\tparams\ty_is_x']
    for k, (cid, spec, dts, seed, mode, shape, tr) in enumerate(CASES):
        dt = DT[dts]
        d = os.path.join(OUT, cid)
        os.makedirs(d, exist_ok=True)
        dims = [int(v) for v in shape.split('x')]
        torch.manual_seed(1000 + k)
        x0 = torch.randn(dims, dtype=dt)
        x = transform(x0, tr).detach().requires_grad_()
        torch.manual_seed(seed)
        m = build(spec, dt)
        m.train(mode == 'train')
        names = []
        for name, p in m.named_parameters():
            names.append(name)
            save(os.path.join(d, 'init_%s.npy' % name.replace('.', '_')), p)
        y = m(x)
        y_is_x = y is x
        save(os.path.join(d, 'x.npy'), x0)
        save(os.path.join(d, 'y.npy'), y)
        torch.manual_seed(2000 + k)
        gy = torch.randn(y.shape, dtype=dt)
        save(os.path.join(d, 'gy.npy'), gy)
        y.backward(gy)
        save(os.path.join(d, 'gx.npy'), x.grad)
        for name, p in m.named_parameters():
            save(os.path.join(d, 'grad_%s.npy' % name.replace('.', '_')), p.grad)
        rows.append('\t'.join([cid, spec, dts, str(seed), mode, shape, tr,
                               chain(y.grad_fn) if not y_is_x else 'same',
                               ','.join(names) if names else '-',
                               '1' if y_is_x else '0']))
    with open(os.path.join(OUT, 'cases.tsv'), 'w') as f:
        f.write('\n'.join(rows) + '\n')


# id -> module; the C test builds the same ones under the same ids
def repr_modules():
    seq = nn.Sequential(nn.Linear(4, 3), nn.ReLU(),
                        nn.Sequential(nn.Linear(3, 2, bias=False), nn.Tanh()),
                        nn.Dropout(0.2), nn.GELU('tanh'))
    shared = nn.Linear(2, 2)
    return [
        ('linear', nn.Linear(3, 5)),
        ('linear_nobias', nn.Linear(3, 5, bias=False)),
        ('linear_f64', nn.Linear(7, 1, dtype=torch.float64)),
        ('relu', nn.ReLU()),
        ('leaky_default', nn.LeakyReLU()),
        ('leaky_02', nn.LeakyReLU(0.2)),
        ('leaky_1e5', nn.LeakyReLU(1e-5)),
        ('leaky_neg', nn.LeakyReLU(-3.0)),
        ('sigmoid', nn.Sigmoid()),
        ('tanh', nn.Tanh()),
        ('gelu', nn.GELU()),
        ('gelu_tanh', nn.GELU(approximate='tanh')),
        ('flatten', nn.Flatten()),
        ('flatten_0_2', nn.Flatten(0, 2)),
        ('dropout', nn.Dropout()),
        ('dropout_01', nn.Dropout(0.1)),
        ('dropout_1', nn.Dropout(1.0)),
        ('dropout_0', nn.Dropout(0.0)),
        ('seq_empty', nn.Sequential()),
        ('seq_nested', seq),
        ('seq_shared', nn.Sequential(shared, nn.ReLU(), shared)),
        ('module_list', nn.ModuleList([nn.ReLU(), nn.Sequential(nn.Linear(1, 1)), nn.ModuleList()])),
    ]


def gen_reprs():
    rows = ['id\trepr\tnamed_parameters']
    for rid, m in repr_modules():
        params = ','.join('%s:%s' % (n, 'x'.join(str(s) for s in p.shape) or '()')
                          for n, p in m.named_parameters())
        rows.append('%s\t%s\t%s' % (rid, esc(repr(m)), params or '-'))
    with open(os.path.join(OUT, 'reprs.tsv'), 'w') as f:
        f.write('\n'.join(rows) + '\n')


def err(fn):
    try:
        r = fn()
    except Exception as e:  # noqa: BLE001
        return type(e).__name__, str(e)
    return 'OK', repr(tuple(r.shape)) if hasattr(r, 'shape') else 'OK'


def gen_errors():
    F = torch.nn.functional
    w = torch.randn(5, 3)
    b = torch.randn(5)
    seq = nn.Sequential(nn.Linear(3, 4), nn.ReLU(), nn.Linear(4, 2))
    cases = [
        ('dropout_new_15', lambda: nn.Dropout(1.5)),
        ('dropout_new_neg', lambda: nn.Dropout(-0.5)),
        ('dropout_f_15', lambda: F.dropout(torch.randn(3), 1.5)),
        ('dropout_f_nan', lambda: F.dropout(torch.randn(3), float('nan'))),
        ('dropout_f_complex', lambda: F.dropout(torch.randn(3, dtype=torch.complex64), 0.5)),
        ('linear_new_neg_out', lambda: nn.Linear(3, -1)),
        ('linear_new_neg_in', lambda: nn.Linear(-2, 3)),
        ('linear_2d_mismatch', lambda: F.linear(torch.randn(2, 4), w, b)),
        ('linear_2d_mismatch_nobias', lambda: F.linear(torch.randn(2, 4), w)),
        ('linear_1d_mismatch', lambda: F.linear(torch.randn(4), w, b)),
        ('linear_3d_mismatch', lambda: F.linear(torch.randn(2, 2, 4), w, b)),
        ('linear_4d_mismatch', lambda: F.linear(torch.randn(2, 2, 2, 4), w, b)),
        ('linear_0d', lambda: F.linear(torch.randn(()), w, b)),
        ('linear_dtype_input', lambda: F.linear(torch.randn(2, 3, dtype=torch.float64), w, b)),
        ('linear_dtype_input_nobias', lambda: F.linear(torch.randn(2, 3, dtype=torch.float64), w)),
        ('linear_dtype_bias', lambda: F.linear(torch.randn(2, 3), w, b.double())),
        ('linear_bias_size', lambda: F.linear(torch.randn(2, 3), w, torch.randn(4))),
        ('linear_bias_size_1d', lambda: F.linear(torch.randn(3), w, torch.randn(4))),
        ('linear_bias_size_3d', lambda: F.linear(torch.randn(2, 4, 3), w, torch.randn(4))),
        ('linear_weight_1d', lambda: F.linear(torch.randn(2, 3), torch.randn(3), b)),
        ('linear_weight_3d', lambda: F.linear(torch.randn(2, 3), torch.randn(2, 5, 3), b)),
        ('seq_index_5', lambda: seq[5]),
        ('seq_index_m4', lambda: seq[-4]),
        ('seq_index_m3', lambda: seq[-3]),
        ('modlist_index_3', lambda: nn.ModuleList([nn.ReLU()])[3]),
        ('modlist_forward', lambda: nn.ModuleList([nn.ReLU()])(torch.randn(2))),
        ('seq_forward_mismatch', lambda: seq(torch.randn(2, 5))),
        ('gelu_bad_approx', lambda: nn.GELU(approximate='fast')(torch.randn(2))),
        ('flatten_bad_dim', lambda: nn.Flatten(1, 5)(torch.randn(2, 3))),
        ('flatten_start_after_end', lambda: nn.Flatten(2, 1)(torch.randn(2, 3, 4))),
        ('relu_complex', lambda: nn.ReLU()(torch.randn(2, dtype=torch.complex64))),
    ]
    rows = ['id\texception\tmessage']
    for cid, fn in cases:
        e, msg = err(fn)
        rows.append('%s\t%s\t%s' % (cid, e, esc(msg)))
    with open(os.path.join(OUT, 'errors.tsv'), 'w') as f:
        f.write('\n'.join(rows) + '\n')


# ---- examples/custom_module.c: the same program in PyTorch -----------------

class ResidualBlock(nn.Module):
    def __init__(self, features, hidden):
        super().__init__()
        self.features, self.hidden = features, hidden
        self.fc1 = nn.Linear(features, hidden)
        self.act = nn.ReLU()
        self.fc2 = nn.Linear(hidden, features)

    def extra_repr(self):
        return f'features={self.features}, hidden={self.hidden}'

    def forward(self, x):
        return x + self.fc2(self.act(self.fc1(x)))


def gen_custom_module():
    import contextlib
    import io
    buf = io.StringIO()
    with contextlib.redirect_stdout(buf):
        torch.manual_seed(0)
        model = nn.Sequential(ResidualBlock(4, 8), nn.Linear(4, 2))
        print(model)
        for name, p in model.named_parameters():
            print(name, tuple(p.shape))
        x = torch.randn(3, 4)
        y = model(x)
        print(y)
        y.sum().backward()
        print(model[0].fc1.bias.grad)
        model.eval()
        print(model.training, model[0].fc1.training)
    with open(os.path.join(OUT, 'custom_module.expected.txt'), 'w') as f:
        f.write(buf.getvalue())


if __name__ == '__main__':
    with open(os.path.join(OUT, 'VERSION'), 'w') as f:
        f.write('torch %s, numpy %s\n' % (torch.__version__, np.__version__))
    gen_cases()
    gen_reprs()
    gen_errors()
    gen_custom_module()
