#!/usr/bin/env bash
# Runs one TAP test (PostgreSQL::Test::Cluster) against the PostgreSQL that pg_config names.
#
#   run_tap.sh BINDIR PGXS_PERL_DIR TEST.pl OUTPUT_DIR
#
# Clusters, logs and results go under OUTPUT_DIR/tmp_check. initdb refuses to run as root, so
# as root (CI) the test runs as the unprivileged system user vs_test in a private directory
# under /tmp, and its logs are copied back. VS_SHARED_DATA (default: ../shared/data of the
# checkout) is passed on for tests that load the real data sets, VS_GPU_BUILDER (the
# gpu_builder executable, set by ctest when it is built) for the build-offload tests, and
# VS_GPU_BUILDER_EMU (gpu_builder on the CUDA emulator) for TAP 009.
set -euo pipefail
if (($# != 4)); then
  echo "usage: $0 BINDIR PGXS_PERL_DIR TEST.pl OUTPUT_DIR" >&2
  exit 2
fi
bindir=$1
perl_dir=$2
test=$(cd "$(dirname "$3")" && pwd)/$(basename "$3")
outdir=$4
mkdir -p "$outdir"
outdir=$(cd "$outdir" && pwd)
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
export VS_SHARED_DATA=${VS_SHARED_DATA:-$(cd "$here/../../.." && pwd)/shared/data}
export PATH=$bindir:$PATH
export PERL5LIB=$perl_dir:$here/lib${PERL5LIB:+:$PERL5LIB}
export PG_REGRESS=${PG_REGRESS:-$(dirname "$perl_dir")/regress/pg_regress}

if ! perl -MIPC::Run -e 1 2>/dev/null; then
  echo "IPC::Run is missing (install libipc-run-perl)" >&2
  exit 1
fi
rm -rf "$outdir/tmp_check"
if ((EUID == 0)); then
  id -u vs_test >/dev/null 2>&1 ||
    useradd --system --no-create-home --home-dir /nonexistent --shell /usr/sbin/nologin vs_test
  work=$(mktemp -d /tmp/vs_tap.XXXXXX)
  trap 'rm -rf "$work"' EXIT
  cp "$test" "$work/"
  cp -R "$here/lib" "$work/lib"
  chown -R vs_test "$work"
  chmod 755 "$work"
  rc=0
  (cd "$work" && runuser -u vs_test -- env PATH="$PATH" PERL5LIB="$perl_dir:$work/lib" PG_REGRESS="$PG_REGRESS" \
     VS_SHARED_DATA="$VS_SHARED_DATA" VS_GPU_BUILDER="${VS_GPU_BUILDER:-}" \
     VS_GPU_BUILDER_EMU="${VS_GPU_BUILDER_EMU:-}" TESTDIR="$work" \
     prove -v "$work/$(basename "$test")") \
    2>&1 | tee "$outdir/prove.out" || rc=$?
  cp -R "$work/tmp_check" "$outdir/" 2>/dev/null || true
else
  rc=0
  (cd "$outdir" && TESTDIR="$outdir" prove -v "$test") 2>&1 | tee "$outdir/prove.out" || rc=$?
fi
if ((rc == 0)) && grep -q '\.\. skipped: ' "$outdir/prove.out"; then
  exit 77  # the test skipped itself and printed why (ctest: SKIP_RETURN_CODE)
fi
if ((rc != 0)); then
  for log in "$outdir"/tmp_check/log/*.log; do
    [[ -f $log ]] || continue
    echo "==== $log (tail)"
    tail -n 40 "$log"
  done
fi
exit "$rc"
