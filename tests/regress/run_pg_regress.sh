#!/usr/bin/env bash
# Runs one pg_regress (or pg_isolation_regress) suite against a temporary instance.
#
#   run_pg_regress.sh PG_REGRESS BINDIR SUITE_DIR OUTPUT_DIR [PG_REGRESS_OPTION...]
#
# SUITE_DIR holds sql/ (or specs/), expected/ and schedule, and optionally temp.conf: settings
# of the temporary instance (--temp-config). PGISOLATIONTIMEOUT, when set, reaches the tester. Results (regression.diffs, regression.out,
# results/, and the server log on failure) land in OUTPUT_DIR; the diffs are printed when the
# suite fails. initdb and postgres refuse to run as root, so as root (CI) the suite runs as
# the unprivileged system user vs_test (created if missing) in a private copy under /tmp.
set -euo pipefail

if (($# < 4)); then
  echo "usage: $0 PG_REGRESS BINDIR SUITE_DIR OUTPUT_DIR [PG_REGRESS_OPTION...]" >&2
  exit 2
fi
pg_regress=$1
bindir=$2
suite=$(cd "$3" && pwd)
outdir=$4
shift 4

mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
rm -rf "$outdir/results" "$outdir/regression.diffs" "$outdir/regression.out" "$outdir/log"

run_user=vs_test
if ((EUID == 0)); then
  if ! id -u "$run_user" >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin \
      "$run_user"
  fi
  work=$(mktemp -d /tmp/vs_regress.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  mkdir "$work/in" "$work/out"
  cp -R "$suite/." "$work/in/"
  chown -R "$run_user" "$work"
  indir=$work/in
  rundir=$work/out
  instance=$work/tmp_check
  as_user=(runuser -u "$run_user" -- env ${PGISOLATIONTIMEOUT:+PGISOLATIONTIMEOUT=$PGISOLATIONTIMEOUT})
else
  indir=$suite
  rundir=$outdir
  instance=$outdir/tmp_check
  as_user=()
fi

extra=()
if [[ -f $indir/temp.conf ]]; then extra+=(--temp-config="$indir/temp.conf"); fi
rc=0
(cd "$rundir" &&
  "${as_user[@]}" "$pg_regress" --temp-instance="$instance" --bindir="$bindir" \
    --inputdir="$indir" --outputdir="$rundir" --schedule="$indir/schedule" \
    --no-locale --encoding=UTF8 "${extra[@]}" "$@") || rc=$?

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
    echo "pg_regress failed (exit $rc) without diffs; server log: $outdir/log" >&2
    if [[ -d $outdir/log ]]; then tail -n 50 "$outdir"/log/* >&2 || true; fi
  fi
fi
exit "$rc"
