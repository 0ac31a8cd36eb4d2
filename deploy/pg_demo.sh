#!/usr/bin/env bash
# The PostgreSQL half of the main job: starts a throwaway cluster on a Unix socket (as the
# unprivileged user vs_test when run as root), loads a real data set of ../shared/data, builds
# `CREATE INDEX ... USING diskann` (memory_optimized and plain), and prints build seconds,
# index size, WAL bytes of the build, recall@10 and queries per second measured inside the
# server. Every step is bounded: at most --queries queries, one build per storage layout.
#
# With --builder PATH it also starts gpu_builder (CPU backend unless a GPU backend exists) on a
# loopback port and builds the same index through it (diskann.builder_endpoint), printing the
# same figures and who built the index.
#
# Usage: deploy/pg_demo.sh BINDIR DATA_PREFIX METRIC(l2|cosine|ip) [--queries N] [--builder PATH]
set -euo pipefail
if (($# < 3)); then
  echo "usage: $0 BINDIR DATA_PREFIX l2|cosine|ip [--queries N]" >&2
  exit 2
fi
bindir=$1
prefix=$2
metric=$3
shift 3
nq=200
builder=
while (($#)); do
  case $1 in
    --queries) nq=$2; shift ;;
    --builder) builder=$2; shift ;;
    *) echo "unknown option $1" >&2; exit 2 ;;
  esac
  shift
done
case $metric in
  l2) op='<->'; opclass=vector_l2_ops ;;
  cosine) op='<=>'; opclass=vector_cosine_ops ;;
  ip) op='<#>'; opclass=vector_ip_ops ;;
  *) echo "metric must be l2, cosine or ip" >&2; exit 2 ;;
esac
name=$(basename "$prefix")

work=$(mktemp -d /tmp/vs_demo.XXXXXX)
as_user=()
if ((EUID == 0)); then
  id -u vs_test >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vs_test
  chown vs_test "$work"
  as_user=(runuser -u vs_test --)
fi
builder_pid=
cleanup() {
  "${as_user[@]}" "$bindir/pg_ctl" -D "$work/data" -m immediate stop >/dev/null 2>&1 || true
  if [[ -n $builder_pid ]]; then kill "$builder_pid" 2>/dev/null || true; wait "$builder_pid" 2>/dev/null || true; fi
  rm -rf "$work"
}
trap cleanup EXIT

# TexMex files -> COPY text (id, vector); ground truth -> (qid, id) of the true top 10.
perl -e '
  my ($prefix, $dir, $nq) = @ARGV;
  sub vecs { my ($path, $t, $limit) = @_; open my $fh, "<:raw", $path or die "$path: $!"; my @r;
    while (!defined $limit || @r < $limit) { last unless read($fh, my $h, 4) == 4; my $d = unpack("l<", $h);
      read($fh, my $b, 4 * $d) == 4 * $d or die "short read"; push @r, [unpack(($t eq "f" ? "f<" : "l<") . $d, $b)]; } @r }
  for my $part (["base", undef], ["query", $nq]) {
    open my $o, ">", "$dir/$part->[0].tsv" or die; my $i = 0;
    print $o $i++, "\t[", join(",", @$_), "]\n" for vecs("$prefix.$part->[0].fvecs", "f", $part->[1]); }
  open my $o, ">", "$dir/gt.tsv" or die; my $q = 0;
  for my $row (vecs("$prefix.gt.ivecs", "i", $nq)) { print $o "$q\t$row->[$_]\n" for 0 .. 9; $q++ }
' "$prefix" "$work" "$nq"
chmod a+r "$work"/*.tsv
dims=$(awk -F, 'NR == 1 { print NF; exit }' "$work/query.tsv")

"${as_user[@]}" "$bindir/initdb" -D "$work/data" -A trust -U postgres --no-locale -E UTF8 >/dev/null
"${as_user[@]}" "$bindir/pg_ctl" -D "$work/data" -l "$work/server.log" -w \
  -o "-c listen_addresses='' -k $work -p 54329 -c shared_buffers=512MB -c maintenance_work_mem=2GB -c max_wal_size=4GB" \
  start >/dev/null
psql=("$bindir/psql" -X -q -A -t -v ON_ERROR_STOP=1 -h "$work" -p 54329 -U postgres postgres)

"${psql[@]}" <<SQL
CREATE EXTENSION vectorscale CASCADE;
CREATE TABLE items (id int, embedding vector($dims));
CREATE TABLE queries (qid int, q vector($dims));
CREATE TABLE truth (qid int, id int);
COPY items FROM '$work/base.tsv';
COPY queries FROM '$work/query.tsv';
COPY truth FROM '$work/gt.tsv';
VACUUM ANALYZE items;
SQL
rows=$("${psql[@]}" -c "SELECT count(*) FROM items")
echo "== $name: $rows rows of $dims dimensions, $metric, $nq queries, PostgreSQL $("${psql[@]}" -c 'SHOW server_version')"

endpoint=
if [[ -n $builder ]]; then
  "$builder" --listen 127.0.0.1:0 >"$work/builder.out" 2>"$work/builder.log" &
  builder_pid=$!
  for _ in $(seq 100); do
    grep -q '^listening on ' "$work/builder.out" 2>/dev/null && break
    sleep 0.1
  done
  endpoint=$(sed -n 's/^listening on //p' "$work/builder.out")
  [[ -n $endpoint ]] || { echo "gpu_builder did not start: $(cat "$work/builder.log")" >&2; exit 1; }
fi

runs=(memory_optimized:local plain:local)
[[ -n $endpoint ]] && runs+=(memory_optimized:builder)
for run in "${runs[@]}"; do
  storage=${run%%:*}
  where=${run##*:}
  if [[ $storage == plain && ( $metric == ip || $dims -gt 1900 ) ]]; then continue; fi
  set_endpoint=
  [[ $where == builder ]] && set_endpoint="SET diskann.builder_endpoint = '$endpoint'; SET diskann.builder_fallback = off;"
  "${psql[@]}" <<SQL
DROP INDEX IF EXISTS items_idx;
CHECKPOINT;
SELECT pg_current_wal_insert_lsn() AS lsn0, clock_timestamp() AS t0 \gset
$set_endpoint
CREATE INDEX items_idx ON items USING diskann (embedding $opclass) WITH (storage_layout = $storage);
SELECT round(extract(epoch FROM clock_timestamp() - :'t0')::numeric, 2) AS build_s,
       pg_wal_lsn_diff(pg_current_wal_insert_lsn(), :'lsn0') AS wal_bytes \gset
SELECT pg_relation_size('items_idx') AS index_bytes, built_by || '/' || build_backend AS built_by
  FROM diskann_index_info('items_idx') \gset
RESET diskann.builder_endpoint;
SET enable_seqscan = off;
-- recall@10 and server-side queries per second at a few search list sizes
CREATE TEMP TABLE IF NOT EXISTS results (l int, recall numeric, qps numeric);
TRUNCATE results;
DO \$\$
DECLARE l int; t0 timestamptz; hits bigint; n int; secs float8;
BEGIN
  FOREACH l IN ARRAY ARRAY[40, 100, 200] LOOP
    PERFORM set_config('diskann.query_search_list_size', l::text, true);
    SELECT count(*) INTO n FROM queries;
    t0 := clock_timestamp();
    SELECT count(*) INTO hits FROM queries qq,
      LATERAL (SELECT id FROM items ORDER BY embedding $op qq.q LIMIT 10) s
     WHERE s.id IN (SELECT id FROM truth WHERE truth.qid = qq.qid);
    secs := extract(epoch FROM clock_timestamp() - t0);
    INSERT INTO results VALUES (l, round(hits / (10.0 * n), 4), round((n / secs)::numeric, 1));
  END LOOP;
END \$\$;
\echo '   $storage, built by' :built_by ': build' :build_s 's, index' :index_bytes 'bytes, build WAL' :wal_bytes 'bytes'
SELECT format('     L=%s  recall@10=%s  QPS=%s', l, recall, qps) FROM results ORDER BY l;
SQL
done
"${psql[@]}" -c "SELECT diskann_validate_index('items_idx')" >/dev/null

# Streaming inserts, side by side in this run: half the rows indexed, the other half inserted
# (one aminsert per row), for diskann and, where pgvector is installed, its HNSW index.
has_hnsw=$("${psql[@]}" -c "SELECT count(*) FROM pg_am WHERE amname = 'hnsw'")
echo "   streaming inserts (half built, half inserted, one client):"
declare -A rate=()
for am in diskann:memory_optimized diskann:plain hnsw:-; do
  method=${am%%:*}
  storage=${am##*:}
  [[ $method == hnsw && $has_hnsw != 1 ]] && continue
  [[ $storage == plain && ( $metric == ip || $dims -gt 1900 ) ]] && continue
  with=""
  [[ $method == diskann ]] && with="WITH (storage_layout = $storage)"
  rate[$am]=$("${psql[@]}" <<SQL | tail -1
DROP TABLE IF EXISTS ins;
CREATE TABLE ins (id int, embedding vector($dims));
INSERT INTO ins SELECT * FROM items WHERE id % 2 = 0;
CREATE INDEX ON ins USING $method (embedding $opclass) $with;
SELECT clock_timestamp() AS t0 \gset
INSERT INTO ins SELECT * FROM items WHERE id % 2 = 1;
SELECT round((SELECT count(*) FROM items WHERE id % 2 = 1) / extract(epoch FROM clock_timestamp() - :'t0')::numeric, 0);
SQL
)
  echo "     $method ${storage/-/(m=16, ef_construction=64)}: ${rate[$am]} rows/s"
done
if [[ -n ${rate[hnsw:-]:-} ]]; then
  awk -v a="${rate[diskann:memory_optimized]}" -v b="${rate[hnsw:-]}" \
    'BEGIN { printf "     diskann memory_optimized / hnsw: %.2fx\n", a / b }'
else
  echo "     (pgvector's hnsw is not installed here: no side-by-side ratio)"
fi
"${psql[@]}" -c "DROP TABLE ins" >/dev/null
echo "   index validated; server log: no crash" && ! grep -q 'terminated by signal' "$work/server.log"
