#!/usr/bin/env bash
# Fails when a pg_regress suite under REGRESS_DIR (default: this script's directory) has a
# sql/NAME.sql that its schedule does not run, or a scheduled test without sql/ or expected/.
set -euo pipefail

root=${1:-$(dirname "$0")}
status=0
found=0
for sqldir in "$root"/*/sql; do
  [[ -d $sqldir ]] || continue
  suite=$(dirname "$sqldir")
  found=1
  if [[ ! -f $suite/schedule ]]; then
    echo "$suite: no schedule" >&2
    status=1
    continue
  fi
  scheduled=" $(sed -n 's/^test:[[:space:]]*//p' "$suite/schedule" | tr -s '[:space:]' ' ') "
  for sql in "$sqldir"/*.sql; do
    [[ -e $sql ]] || continue
    name=$(basename "$sql" .sql)
    if [[ $scheduled != *" $name "* ]]; then
      echo "$suite: sql/$name.sql is not in the schedule" >&2
      status=1
    fi
  done
  for name in $scheduled; do
    [[ -f $suite/sql/$name.sql ]] || { echo "$suite: scheduled test $name has no sql/$name.sql" >&2; status=1; }
    [[ -f $suite/expected/$name.out ]] || { echo "$suite: scheduled test $name has no expected/$name.out" >&2; status=1; }
  done
done
if ((found == 0)); then
  echo "no pg_regress suites under $root" >&2
  exit 1
fi
((status == 0)) && echo "all schedules complete"
exit "$status"
