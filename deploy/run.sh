#!/usr/bin/env bash
# The main job, end to end, as far as the tree implements it today:
#   1. builds everything (Release) and installs the extension into the PostgreSQL that
#      pg_config names (the bundled vector type only where no pgvector is installed);
#   2. runs the in-memory engine on the real data sets of ../shared/data (mnist-10k, L2;
#      docs768, cosine, when present), side by side with hnswlib: build seconds, recall@10,
#      QPS (one JSON line per measurement, kept in build/run/results.jsonl);
#   3. tests/bench/pg_bench.py: a throwaway PostgreSQL per data set (Fashion-MNIST from Debian,
#      so a fresh machine without ../shared/data runs it too; mnist-10k and docs768 when
#      present), CREATE INDEX ... USING diskann locally (memory_optimized and plain) and through
#      gpu_builder (started on a loopback port): build time, index size, build WAL, recall@10,
#      QPS and p99, clients, streaming inserts, filtered queries; JSON and plots.
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

"$here/deploy/install-deps.sh" --bench
cmake -S "$here" -B "$here/build/run" -DCMAKE_BUILD_TYPE=Release >/dev/null
cmake --build "$here/build/run" -j "$threads" >/dev/null
cmake --install "$here/build/run" --component vector >/dev/null
cmake --install "$here/build/run" --component vectorscale >/dev/null
pg_bindir=$(grep -m1 '^VS_PG_BINDIR:' "$here/build/run/CMakeCache.txt" | cut -d= -f2-)
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

builder=()
if [[ -x $here/build/run/gpu_builder/gpu_builder ]]; then
  builder=(--builder "$here/build/run/gpu_builder/gpu_builder")
fi

# In PostgreSQL: Fashion-MNIST (Debian's dataset-fashion-mnist, 20,000 rows, so it runs on a
# fresh machine too), then mnist-10k and docs768 when present: CREATE INDEX locally and
# through gpu_builder, recall/QPS/p99 sweeps, clients, streaming inserts, filtered queries;
# results.json and plots under build/run/bench-*.
echo "== PostgreSQL end to end (tests/bench/pg_bench.py)" >&2
/usr/bin/python3 "$here/tests/bench/pg_bench.py" --data fashion-mnist --metric l2 --rows 20000 \
  --bindir "$pg_bindir" "${builder[@]}" --out "$here/build/run/bench-fashion-mnist"
if [[ -f $data/mnist-10k.base.fvecs ]]; then
  /usr/bin/python3 "$here/tests/bench/pg_bench.py" --data "$data/mnist-10k" --metric l2 \
    --bindir "$pg_bindir" "${builder[@]}" --out "$here/build/run/bench-mnist-10k"
fi
if [[ -f $data/docs768.base.fvecs ]]; then
  /usr/bin/python3 "$here/tests/bench/pg_bench.py" --data "$data/docs768" --metric cosine \
    --bindir "$pg_bindir" "${builder[@]}" --out "$here/build/run/bench-docs768"
fi
