#!/usr/bin/env bash
# The main job, end to end, as far as the tree implements it today: builds the engine (Release)
# and runs the in-memory DiskANN index on the real data sets of ../shared/data (mnist-10k, L2;
# docs768, cosine, when present) with plain and SBQ storage, side by side with hnswlib, printing
# build seconds, recall@10 and QPS (one JSON line per measurement, also kept in
# build/run/results.jsonl).
#
# The PostgreSQL part (throwaway cluster, CREATE INDEX ... USING diskann locally and through
# gpu_builder) joins this script with the access method and the builder service.
#
# Usage: deploy/run.sh [--data DIR] [--threads N]
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
data=${VS_DATA_DIR:-$here/../shared/data}
threads=$(nproc 2>/dev/null || echo 2)
while (($#)); do
  case $1 in
    --data) data=$2; shift ;;
    --threads) threads=$2; shift ;;
    *) echo "usage: $0 [--data DIR] [--threads N]" >&2; exit 2 ;;
  esac
  shift
done

"$here/deploy/install-deps.sh"
cmake -S "$here" -B "$here/build/run" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$here/build/run" -j "$threads" --target ann_bench >/dev/null
bench=$here/build/run/tests/bench/ann_bench
out=$here/build/run/results.jsonl
: >"$out"

run() {
  echo "== $*" >&2
  "$bench" --threads "$threads" "$@" | tee -a "$out"
}
if [[ -f $data/mnist-10k.base.fvecs ]]; then
  run --data "$data/mnist-10k" --metric l2 --storage plain --sweep 10,20,40,80
  run --data "$data/mnist-10k" --metric l2 --storage sbq --rescore 50 --sweep 40,80,160 --no-hnsw
else
  echo "no $data/mnist-10k.base.fvecs: skipping mnist-10k" >&2
fi
if [[ -f $data/docs768.base.fvecs ]]; then
  run --data "$data/docs768" --metric cosine --storage plain --sweep 20,40,80,160
  run --data "$data/docs768" --metric cosine --storage sbq --rescore 50,100 --sweep 50,100,200 --no-hnsw
else
  echo "no $data/docs768.base.fvecs: skipping docs768" >&2
fi
echo "results: $out" >&2
