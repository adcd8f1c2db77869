"""Reference data for tests/test_distributed_sampler.c: the indices the real
torch.utils.data.distributed.DistributedSampler yields (num_replicas and
rank given, so no process group is needed), and its constructor errors.

Writes sampler.tsv: one line per case,
    n  num_replicas  rank  shuffle  seed  epoch  drop_last  len  indices
(indices space-separated, "-" when empty), and sampler_errors.tsv:
    n  num_replicas  rank  message
Run with /usr/bin/python3 (PyTorch 1.13). No random state besides the
sampler's own seed + epoch is involved.
"""
import os

import torch
from torch.utils.data.distributed import DistributedSampler

HERE = os.path.dirname(os.path.abspath(__file__))

CASES = []
for n in (0, 1, 5, 10, 12, 13, 100):
    for R in (1, 2, 3, 4, 7):
        for shuffle in (False, True):
            for drop_last in (False, True):
                for rank in sorted({0, R // 2, R - 1}):
                    for seed, epoch in ((0, 0), (0, 3), (42, 1)):
                        if not shuffle and (seed, epoch) != (0, 0):
                            continue
                        CASES.append((n, R, rank, shuffle, seed, epoch, drop_last))
# a long list, and one where the padding repeats the list more than once
CASES += [(1000, 3, 1, True, 7, 2, False), (1000, 3, 2, True, 7, 2, True),
          (2, 7, 6, True, 0, 0, False), (3, 8, 5, False, 0, 0, False)]

with open(os.path.join(HERE, "sampler.tsv"), "w") as f:
    f.write("# torch %s: DistributedSampler(range(n), num_replicas, rank, "
            "shuffle, seed) after set_epoch(epoch)\n" % torch.__version__)
    for n, R, rank, shuffle, seed, epoch, drop_last in CASES:
        s = DistributedSampler(range(n), num_replicas=R, rank=rank,
                               shuffle=shuffle, seed=seed, drop_last=drop_last)
        s.set_epoch(epoch)
        idx = list(iter(s))
        assert len(idx) == len(s)
        f.write("%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%s\n" % (
            n, R, rank, int(shuffle), seed, epoch, int(drop_last), len(s),
            " ".join(map(str, idx)) if idx else "-"))

with open(os.path.join(HERE, "sampler_errors.tsv"), "w") as f:
    f.write("# torch %s: DistributedSampler constructor errors\n"
            % torch.__version__)
    for n, R, rank in ((10, 2, 2), (10, 2, -1), (10, 1, 5), (10, 0, 0),
                       (10, 4, 7)):
        try:
            DistributedSampler(range(n), num_replicas=R, rank=rank)
            raise SystemExit("no error for %r" % ((n, R, rank),))
        except ValueError as e:
            f.write("%d\t%d\t%d\t%s\n" % (n, R, rank, e))

# DataLoader(TensorDataset(x), batch_size, sampler=DistributedSampler(...)):
# the batches of two epochs (set_epoch(e) before each), and then one
# torch.rand draw from the default generator, which shows that each
# iter() drew exactly PyTorch's _base_seed and the sampler drew nothing.
from torch.utils.data import DataLoader, TensorDataset

with open(os.path.join(HERE, "loader.tsv"), "w") as f:
    f.write("# torch %s: manual_seed(5); DataLoader(TensorDataset(arange(n)), "
            "batch_size, sampler=DistributedSampler(range(n), R, rank, "
            "seed=4, drop_last)); epochs 0 and 1; then torch.rand(1)\n"
            % torch.__version__)
    for n, R, rank, batch, drop_last in ((13, 3, 1, 2, False),
                                         (13, 3, 2, 4, True),
                                         (20, 2, 0, 3, False)):
        torch.manual_seed(5)
        x = torch.arange(n, dtype=torch.float32)
        s = DistributedSampler(range(n), num_replicas=R, rank=rank, seed=4,
                               drop_last=drop_last)
        dl = DataLoader(TensorDataset(x), batch_size=batch, sampler=s)
        rows = []
        for e in range(2):
            s.set_epoch(e)
            for (b,) in dl:
                rows.append(",".join(str(int(v)) for v in b.tolist()))
        f.write("%d\t%d\t%d\t%d\t%d\t%s\t%.9g\n" % (
            n, R, rank, batch, int(drop_last), " ".join(rows),
            torch.rand(1).item()))
