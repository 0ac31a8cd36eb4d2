#!/bin/sh
# run_if_data.sh FILE CMD...: runs CMD when FILE exists; otherwise says why and exits 77 (ctest: skipped).
f=$1
shift
if [ ! -f "$f" ]; then
  echo "SKIPPED: data file $f not found (the shared data sets are not on this machine)"
  exit 77
fi
exec "$@"
