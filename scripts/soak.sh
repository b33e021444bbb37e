#!/usr/bin/env bash
# `make soak`: the randomized no-loss test with SOAK_EXAMPLES examples in all (default 500),
# split over SOAK_SHARDS processes (default 4) that run side by side with their own seeds.
# An example spends most of its time waiting on jobs and syncs, so shards add throughput on
# a small machine. Each shard appends one JSON line per example to soak-<n>.jsonl under
# SOAK_DIR (default .soak/); any failing shard fails the whole run. The closing line counts
# those lines: examples that passed (what max_examples counts), failed, and were discarded
# (abandoned by Hypothesis when they drew past its size limit; they count for nothing).
set -uo pipefail
cd "$(dirname "$0")/.."

examples="${SOAK_EXAMPLES:-500}"
shards="${SOAK_SHARDS:-4}"
dir="${SOAK_DIR:-.soak}"
per_shard=$(( (examples + shards - 1) / shards ))
mkdir -p "$dir"
rm -f "$dir"/soak-*.jsonl "$dir"/soak-*.log

pids=()
for shard in $(seq 1 "$shards"); do
  HYPOTHESIS_PROFILE=soak SOAK_SHARD_EXAMPLES="$per_shard" \
    NO_LOSS_PROGRESS="$dir/soak-$shard.jsonl" \
    .venv/bin/pytest tests/integration/test_no_loss.py -p no:cacheprovider \
    --hypothesis-seed="$shard" -q >"$dir/soak-$shard.log" 2>&1 &
  pids+=("$!")
done

failed=0
for shard in $(seq 1 "$shards"); do
  if ! wait "${pids[$((shard - 1))]}"; then
    failed=1
    echo "soak shard $shard failed; see $dir/soak-$shard.log"
  fi
done
count() { cat "$dir"/soak-*.jsonl 2>/dev/null | grep -c "\"outcome\": \"$1\""; }
echo "soak: $(count passed) examples passed, $(count failed) failed," \
  "$(count discarded) discarded, over $shards shards ($examples asked)"
exit "$failed"
