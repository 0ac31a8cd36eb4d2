#!/usr/bin/env bash
# Runs the isolation-tester suite (specs/, expected/, schedule) against a temporary instance.
#
#   run_isolation.sh PG_ISOLATION_REGRESS BINDIR SUITE_DIR OUTPUT_DIR [OPTION...]
#
# Like tests/regress/run_pg_regress.sh: results (regression.diffs, regression.out, results/,
# and the server log on failure) land in OUTPUT_DIR, the diffs are printed when the suite
# fails, and as root (CI) the suite runs as the unprivileged system user vs_test in a private
# copy under /tmp, since initdb and postgres refuse to run as root. The instance runs without
# autovacuum, so that only the specs' own VACUUMs change the indexes and no background
# snapshot holds dead rows back. A step that waits longer than PGISOLATIONTIMEOUT seconds
# (default 60) is cancelled, so a VACUUM or insert that blocks forever fails the suite.
set -euo pipefail

if (($# < 4)); then
  echo "usage: $0 PG_ISOLATION_REGRESS BINDIR SUITE_DIR OUTPUT_DIR [OPTION...]" >&2
  exit 2
fi
pg_isolation_regress=$1
bindir=$2
suite=$(cd "$3" && pwd)
outdir=$4
shift 4
export PGISOLATIONTIMEOUT=${PGISOLATIONTIMEOUT:-60}

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
rm -rf "$outdir/results" "$outdir/regression.diffs" "$outdir/regression.out" "$outdir/log"

run_user=vs_test
if ((EUID == 0)); then
  if ! id -u "$run_user" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      "$run_user"
  fi
  work=$(mktemp -d /tmp/vs_isolation.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  mkdir "$work/in" "$work/out"
  cp -R "$suite/." "$work/in/"
  chown -R "$run_user" "$work"
  indir=$work/in
  rundir=$work/out
  instance=$work/tmp_check
  as_user=(runuser -u "$run_user" -- env PGISOLATIONTIMEOUT="$PGISOLATIONTIMEOUT")
else
  indir=$suite
  rundir=$outdir
  instance=$outdir/tmp_check
  as_user=()
fi
conf=$rundir/isolation.conf
printf "%s\n" "autovacuum = off" > "$conf"
if ((EUID == 0)); then chown "$run_user" "$conf"; fi

rc=0
(cd "$rundir" &&
  "${as_user[@]}" "$pg_isolation_regress" --temp-instance="$instance" --bindir="$bindir" \
    --inputdir="$indir" --outputdir="$rundir" --schedule="$indir/schedule" \
    --temp-config="$conf" --no-locale --encoding=UTF8 "$@") || rc=$?

if [[ $rundir != "$outdir" ]]; then
  for f in regression.diffs regression.out results; do
    if [[ -e $rundir/$f ]]; then cp -R "$rundir/$f" "$outdir/"; fi
  done
fi
if ((rc != 0)); then
  if [[ -d $instance/log ]]; then cp -R "$instance/log" "$outdir/"; fi
  if [[ -s $outdir/regression.diffs ]]; then
    echo "==== $outdir/regression.diffs ===="
    cat "$outdir/regression.diffs"
  else
    echo "pg_isolation_regress failed (exit $rc) without diffs; server log: $outdir/log" >&2
    if [[ -d $outdir/log ]]; then tail -n 50 "$outdir"/log/* >&2 || true; fi
  fi
fi
exit "$rc"
