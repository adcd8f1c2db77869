#!/usr/bin/env bash
# A rank that fails mid-training ends the whole job within seconds, with
# the message on every rank: train_distributed --short with
# --fail-rank R --fail-step S feeds rank R a 3-D input at its step S.
# Checked for (2 ranks, rank 1 fails at step 3) and (3 ranks, rank 0 at
# step 2): mpirun exits nonzero (not by the 60 s timeout) in under 20 s,
# the failing rank printed "[rank R] <message>", every other rank
# "[rank R'] aborting: rank R failed: <message>", and training stopped
# (no final summary line).
# Usage: fail.sh <mpiexec> <train_distributed>
set -uo pipefail
mpiexec=$1 prog=$2
here=$(cd "$(dirname "$0")" && pwd)
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
msg="train_distributed: cg_ddp_forward(ddp, batch[0], &pred): RuntimeError: Expected 4D (unbatched) or 5D (batched) input to conv3d, but got input of size: [8, 8, 8]"
status=0
for setting in "2 1 3" "3 0 2"; do
  read -r np bad step <<<"$setting"
  start=$(date +%s%N)
  timeout 60 bash "$here/mpirun.sh" "$mpiexec" "$np" "$prog" --short \
    --threads 1 --fail-rank "$bad" --fail-step "$step" \
    >"$tmp/out" 2>"$tmp/err"
  rc=$?
  ms=$(( ($(date +%s%N) - start) / 1000000 ))
  echo "np $np, rank $bad fails at step $step: exit $rc after $ms ms"
  fail() { echo "FAILED: $*"; echo "--- stdout"; cat "$tmp/out"; echo "--- stderr"; cat "$tmp/err"; status=1; }
  [ "$rc" -ne 0 ] || fail "exit status 0"
  [ "$rc" -ne 124 ] || fail "timed out (hang)"
  [ "$ms" -lt 20000 ] || fail "took $ms ms"
  grep -qF "[rank $bad] $msg" "$tmp/err" || fail "no message from the failing rank"
  for ((r = 0; r < np; r++)); do
    [ "$r" -eq "$bad" ] && continue
    grep -qF "[rank $r] aborting: rank $bad failed: $msg" "$tmp/err" ||
      fail "no message from rank $r"
  done
  if grep -q "samples/s" "$tmp/out"; then fail "training finished"; fi
done
[ "$status" -eq 0 ] && echo "fail.sh: ok"
exit "$status"
