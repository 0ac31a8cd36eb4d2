#!/usr/bin/env bash
# ctest `packaging_debs` (label packaging): builds the Debian packages of this build tree with
# CPack into a scratch directory (nothing is installed) and checks them:
#   - each expected package exists, with the right name, version, architecture and fields
#     (Depends, Conflicts, conffiles, maintainer scripts);
#   - the exact list of files each one ships, at Debian's PostgreSQL and systemd paths;
#   - extracted (dpkg-deb -x) into a scratch root: modules are ELF shared objects exporting
#     PostgreSQL's entry points with every library resolved, the builder binary runs and accepts
#     the options of the shipped config file, the control files name files that exist;
#   - the maintainer scripts, run with stub commands that record what they would do;
#   - the systemd unit with `systemd-analyze verify` (skipped, saying why, without systemd).
# Then the repository's shell scripts with shellcheck and deploy/k8s with python3-yaml
# (each skipped, saying why, when the tool is missing).
#
# Usage: check_packages.sh SOURCE_DIR BUILD_DIR SCRATCH_DIR CPACK DEB_VERSION PG_MAJOR PACKAGE...
set -euo pipefail

src=$1
build=$2
scratch=$3
cpack=$4
deb_version=$5
pg=$6
shift 6
packages=("$@")

failures=0
fail() {
  echo "FAIL: $*" >&2
  failures=$((failures + 1))
}
ok() { echo "ok: $*"; }
skip() { echo "SKIP: $*"; }

# Asserts that the text $2 (what) contains the fixed string $3; $1 names the check.
expect_contains() {
  if [[ $2 == *"$3"* ]]; then ok "$1"; else fail "$1: '$3' not in: $2"; fi
}

rm -rf "$scratch"
mkdir -p "$scratch"
arch=$(dpkg --print-architecture)

# ---- build the packages ----------------------------------------------------------------------
# CPack first runs the build tool on the tree (target preinstall, a no-op after the build):
# the ctest shares the lock vs_build_tree with the other test that builds in this tree.
if ! "$cpack" -G DEB --config "$build/CPackConfig.cmake" -B "$scratch/out" >"$scratch/cpack.log" 2>&1; then
  cat "$scratch/cpack.log" >&2
  echo "FAIL: cpack" >&2
  exit 1
fi

# ---- per package -----------------------------------------------------------------------------
# The regular files (no directories) a package ships, sorted, without the leading "."
files_of() {
  dpkg-deb --fsys-tarfile "$1" | tar -t | sed -n 's|^\./|/|p' | grep -v '/$' | sort
}

# Checks that an ELF shared object (or PIE executable) is stripped, exports the given dynamic
# symbols and that every library it needs resolves here.
check_module() {
  local so=$1
  shift
  if [[ $(head -c 4 "$so" | od -An -c | tr -d ' ') != '177ELF' ]]; then
    fail "$so is not an ELF file"
    return
  fi
  readelf -h "$so" | grep -q 'Type:.*DYN' || fail "$so is not a shared object"
  readelf -S -W "$so" | grep -q ' \.symtab ' && fail "$so is not stripped"
  local dynsyms
  dynsyms=$(readelf --dyn-syms -W "$so" | awk '$7 != "UND" { print $8 }')
  for sym in "$@"; do
    grep -qx "$sym" <<<"$dynsyms" || fail "$so does not export $sym"
  done
  if ldd "$so" | grep -q 'not found'; then
    fail "$so needs libraries that are not installed: $(ldd "$so" | grep 'not found')"
  fi
  ok "$(basename "$so"): stripped ELF shared object exporting $*; its libraries resolve"
}

# Compares the files package $1 ships ($files) with the paths $2...
check_files() {
  local pkg=$1 expected
  shift
  expected=$(printf '%s\n' "$@" | sort)
  [[ $files == "$expected" ]] || fail "$pkg ships:"$'\n'"$files"$'\n'"expected:"$'\n'"$expected"
}

# The checks both extension packages share: module NAME (arg 1) exporting SYMBOLS (args 2...),
# its control file and the SQL script of its default version, Depends on the server first.
check_extension() {
  local name=$1 lib=/usr/lib/postgresql/$pg/lib ext=/usr/share/postgresql/$pg/extension default
  shift
  default=$(sed -n "s/^default_version = '\(.*\)'/\1/p" "$root$ext/$name.control")
  check_files "$pkg" "$lib/$name.so" "$ext/$name--$default.sql" "$ext/$name.control"
  [[ ${depends%%,*} == "postgresql-$pg" ]] || fail "$pkg: Depends does not start with postgresql-$pg: $depends"
  check_module "$root$lib/$name.so" "$@"
}

shipped=()
for pkg in "${packages[@]}"; do
  deb=$scratch/out/${pkg}_${deb_version}_$arch.deb
  if [[ ! -f $deb ]]; then
    fail "$pkg: no ${pkg}_${deb_version}_$arch.deb (cpack made: $(ls "$scratch/out"))"
    continue
  fi
  shipped+=("$deb")
  echo "== $pkg ($(stat -c %s "$deb") bytes)"
  for field in Package Version Architecture Maintainer Description; do
    [[ -n $(dpkg-deb -f "$deb" "$field") ]] || fail "$pkg: empty $field"
  done
  [[ $(dpkg-deb -f "$deb" Package) == "$pkg" ]] || fail "$pkg: Package is $(dpkg-deb -f "$deb" Package)"
  [[ $(dpkg-deb -f "$deb" Version) == "$deb_version" ]] || fail "$pkg: Version is not $deb_version"
  depends=$(dpkg-deb -f "$deb" Depends)
  root=$scratch/root/$pkg
  control=$scratch/control/$pkg
  mkdir -p "$root" "${control%/*}"
  dpkg-deb -x "$deb" "$root"
  dpkg-deb -e "$deb" "$control"
  files=$(files_of "$deb")

  case $pkg in
    "postgresql-$pg-vectorscale")
      check_extension vectorscale Pg_magic_func _PG_init diskann_amhandler
      expect_contains "$pkg Depends: the vector type, ours or pgvector" "$depends" \
        "postgresql-$pg-vectorscale-vector | postgresql-$pg-pgvector"
      if readelf -d "$root/usr/lib/postgresql/$pg/lib/vectorscale.so" | grep -q 'libgrpc'; then
        expect_contains "$pkg Depends: gRPC from dpkg-shlibdeps" "$depends" "libgrpc++"
        expect_contains "$pkg Depends: Protobuf from dpkg-shlibdeps" "$depends" "libprotobuf"
      fi
      ;;
    "postgresql-$pg-vectorscale-vector")
      check_extension vector Pg_magic_func vector_in vector_out
      expect_contains "$pkg Conflicts with pgvector" "$(dpkg-deb -f "$deb" Conflicts)" "postgresql-$pg-pgvector"
      expect_contains "$pkg Replaces pgvector" "$(dpkg-deb -f "$deb" Replaces)" "postgresql-$pg-pgvector"
      grep -q '^# vectorscale bundled vector type' "$root/usr/share/postgresql/$pg/extension/vector.control" ||
        fail "$pkg: vector.control lacks the bundled-type marker"
      ;;
    vectorscale-gpu-builder)
      bin=/usr/bin/vectorscale-gpu-builder
      unit=/lib/systemd/system/vectorscale-gpu-builder.service
      conf=/etc/vectorscale/gpu-builder.conf
      check_files "$pkg" "$bin" "$unit" "$conf"
      readelf -S -W "$root$bin" | grep -q ' \.symtab ' && fail "$bin is not stripped"
      expect_contains "$pkg Depends: adduser (postinst)" "$depends" "adduser"
      expect_contains "$pkg Depends: gRPC from dpkg-shlibdeps" "$depends" "libgrpc++"
      expect_contains "$pkg Depends: Protobuf from dpkg-shlibdeps" "$depends" "libprotobuf"
      [[ $(cat "$control/conffiles" 2>/dev/null) == "$conf" ]] || fail "$pkg: conffiles is not exactly $conf"
      for script in postinst prerm postrm; do
        if [[ -x $control/$script && $(head -1 "$control/$script") == '#!/bin/sh' ]]; then
          sh -n "$control/$script" || fail "$pkg: $script has a syntax error"
        else
          fail "$pkg: no executable /bin/sh $script"
        fi
      done
      # The binary runs (its libraries resolve) and accepts the options the config file sets:
      # the parser checks every option before --help, which then ends it with status 0.
      if ! "$root$bin" --help | grep -q '^usage: gpu_builder'; then
        fail "$pkg: $bin --help does not print the usage"
      fi
      opts=$(env -i sh -c "set -a; . '$root$conf'; printf %s \"\$GPU_BUILDER_OPTS\"")
      [[ $opts == *--listen* ]] || fail "$pkg: $conf sets no --listen in GPU_BUILDER_OPTS"
      # shellcheck disable=SC2086 # split at spaces, as systemd's $GPU_BUILDER_OPTS is
      "$root$bin" $opts --help >/dev/null || fail "$pkg: $bin rejects the options of $conf: $opts"
      # The unit runs that binary with that file, as the user postinst creates, and gives a
      # graceful stop the default grace period plus 45 s.
      u=$root$unit
      [[ $(sed -n 's/^ExecStart=\([^ ]*\).*/\1/p' "$u") == "$bin" ]] || fail "$pkg: ExecStart is not $bin"
      [[ $(sed -n 's/^EnvironmentFile=//p' "$u") == "$conf" ]] || fail "$pkg: EnvironmentFile is not $conf"
      grep -q "ExecStart=.*\\\$GPU_BUILDER_OPTS\$" "$u" || fail "$pkg: ExecStart does not pass \$GPU_BUILDER_OPTS"
      user=$(sed -n 's/^User=//p' "$u")
      grep -q "^user=$user\$" "$control/postinst" || fail "$pkg: postinst does not create User=$user"
      grace=$("$root$bin" --help | sed -n 's/.*--shutdown-grace-seconds.*(default \([0-9]*\)).*/\1/p')
      stop=$(sed -n 's/^TimeoutStopSec=\([0-9]*\)$/\1/p' "$u")
      if [[ -z $grace || -z $stop ]] || ((stop < grace + 45)); then
        fail "$pkg: TimeoutStopSec ($stop) < default grace ($grace) + 45"
      fi
      grep -q '^PrivateDevices=yes' "$u" && fail "$pkg: PrivateDevices=yes would hide the GPUs"
      for key in 'NoNewPrivileges=yes' 'ProtectSystem=strict' 'ProtectHome=yes' 'PrivateTmp=yes' \
                 'Restart=on-failure' 'DevicePolicy=closed' 'DeviceAllow=char-nvidia-frontend rw'; do
        grep -qx "$key" "$u" || fail "$pkg: the unit lacks $key"
      done
      if command -v systemd-analyze >/dev/null; then
        # verify checks that ExecStart is executable: point it at the extracted binary.
        mkdir -p "$scratch/unit"
        sed "s|^ExecStart=$bin|ExecStart=$root$bin|" "$u" >"$scratch/unit/${unit##*/}"
        if out=$(systemd-analyze verify "$scratch/unit/${unit##*/}" 2>&1) && [[ -z $out ]]; then
          ok "systemd-analyze verify: no findings"
          systemd-analyze security --offline=true "$scratch/unit/${unit##*/}" 2>/dev/null |
            grep 'Overall exposure' || true
        else
          fail "systemd-analyze verify $unit: $out"
        fi
      else
        skip "systemd-analyze not installed (package systemd): the unit is not verified"
      fi
      ;;
    *) fail "no checks for package $pkg" ;;
  esac
done

# ---- maintainer scripts, with stubs ------------------------------------------------------------
# Each script runs with PATH holding only stubs that log their arguments, so nothing on this
# machine changes; the logs are compared with what the script must do. Where a private mount
# namespace is allowed (root), both cases run: systemd running (/run/systemd/system present,
# on a tmpfs /run of that namespace) and not; elsewhere only this machine's case.
control=$scratch/control/vectorscale-gpu-builder
if [[ -d $control ]]; then
  stubs=$scratch/stubs
  mkdir -p "$stubs"
  cat >"$stubs/stub" <<'EOF'
#!/bin/sh
name=${0##*/}
echo "$name $*" >>"$STUB_LOG"
case "$name $1" in
  "getent passwd") [ -n "$STUB_USER" ] ;;
  "dpkg-statoverride --list") [ -n "$STUB_OVERRIDE" ] ;;
  "deb-systemd-helper --quiet") [ -n "$STUB_ENABLED" ] ;;
  *) exit 0 ;;
esac
EOF
  chmod +x "$stubs/stub"
  for cmd in getent adduser dpkg-statoverride deb-systemd-helper deb-systemd-invoke systemctl rmdir; do
    ln -sf stub "$stubs/$cmd"
  done
  if unshare -m sh -c 'mount -t tmpfs tmpfs /run' 2>/dev/null; then
    modes=(0 1)
  elif [[ -d /run/systemd/system ]]; then
    modes=(1)
    skip "no private mount namespace: maintainer scripts checked with systemd running only"
  else
    modes=(0)
    skip "no private mount namespace: maintainer scripts checked without systemd only"
  fi
  # run_script SYSTEMD(0|1) NAME ARGS... with STUB_* from the environment; prints the log.
  run_script() {
    local systemd=$1 script=$2 log=$scratch/stub.log
    shift 2
    : >"$log"
    local cmd=(env -i PATH="$stubs" STUB_LOG="$log" STUB_USER="${STUB_USER:-}"
               STUB_OVERRIDE="${STUB_OVERRIDE:-}" STUB_ENABLED="${STUB_ENABLED:-}"
               /bin/sh -e "$control/$script" "$@")
    if ((${#modes[@]} == 2)); then
      # shellcheck disable=SC2016 # expanded by the inner sh
      cmd=(unshare -m sh -c 'mount -t tmpfs tmpfs /run && if [ "$0" = 1 ]; then mkdir -p /run/systemd/system; fi && exec "$@"'
           "$systemd" "${cmd[@]}")
    fi
    "${cmd[@]}" || echo "exit status $?" >>"$log"
    cat "$log"
  }
  check_log() {  # WHAT LOG MUST-CONTAIN... ; a pattern starting with ! must be absent
    local what=$1 log=$2
    shift 2
    for want in "$@"; do
      if [[ $want == !* ]]; then
        grep -qF -- "${want#!}" <<<"$log" && fail "maintainer scripts, $what: '${want#!}' in:"$'\n'"$log"
      else
        grep -qF -- "$want" <<<"$log" || fail "maintainer scripts, $what: no '$want' in:"$'\n'"$log"
      fi
    done
    ok "maintainer scripts: $what"
  }
  u=vectorscale-gpu-builder.service
  for running in "${modes[@]}"; do
    # With systemd running: reload it, restart on upgrade, stop on remove. Without: none of it.
    on=systemd no=
    ((running)) || { on="no systemd"; no='!'; }
    check_log "first install, $on" "$(run_script "$running" postinst configure)" \
      "adduser --system --group" \
      "dpkg-statoverride --update --add root vectorscale-builder 0750 /etc/vectorscale" \
      "deb-systemd-helper update-state $u" "!deb-systemd-helper enable" "!try-restart" \
      "!deb-systemd-invoke start" "${no}systemctl --system daemon-reload" "!exit status"
    check_log "upgrade of an enabled service, $on" \
      "$(STUB_USER=1 STUB_OVERRIDE=1 STUB_ENABLED=1 run_script "$running" postinst configure 0.0.1-1)" \
      "!adduser" "!dpkg-statoverride --update" "deb-systemd-helper enable $u" \
      "${no}deb-systemd-invoke try-restart $u" "!exit status"
    check_log "prerm remove, $on" "$(run_script "$running" prerm remove)" \
      "${no}deb-systemd-invoke stop $u" "!exit status"
    check_log "prerm upgrade, $on" "$(run_script "$running" prerm upgrade "$deb_version")" \
      "!deb-systemd-invoke" "!exit status"
    check_log "postrm remove, $on" "$(run_script "$running" postrm remove)" \
      "${no}systemctl --system daemon-reload" "!deb-systemd-helper purge" "!exit status"
    check_log "postrm purge, $on" "$(STUB_OVERRIDE=1 run_script "$running" postrm purge)" \
      "deb-systemd-helper purge $u" "dpkg-statoverride --remove /etc/vectorscale" "!deluser" \
      "!exit status"
  done
fi

# ---- shell scripts: shellcheck ---------------------------------------------------------------
if command -v shellcheck >/dev/null; then
  scripts=()
  if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    mapfile -t candidates < <(git -C "$src" ls-files --cached --others --exclude-standard)
  else
    mapfile -t candidates < <(cd "$src" && find . -path ./build -prune -o -type f -print | sed 's|^\./||')
  fi
  for f in "${candidates[@]}"; do
    [[ -f $src/$f ]] || continue
    if [[ $f == *.sh ]] || head -1 "$src/$f" 2>/dev/null | grep -Eq '^#!.*(/|env )(ba)?sh( |$)'; then
      scripts+=("$src/$f")
    fi
  done
  if out=$(shellcheck "${scripts[@]}" 2>&1); then
    ok "shellcheck: ${#scripts[@]} scripts clean"
  else
    fail "shellcheck:"$'\n'"$out"
  fi
else
  skip "shellcheck not installed (deploy/install-deps.sh installs it): scripts not checked"
fi

# ---- Kubernetes manifests: YAML --------------------------------------------------------------
python=
for p in python3 /usr/bin/python3; do
  if command -v "$p" >/dev/null && "$p" -c 'import yaml' 2>/dev/null; then python=$p; break; fi
done
if [[ -n $python ]]; then
  if out=$("$python" "$src/tests/packaging/check_k8s.py" "$src/deploy/k8s" 2>&1); then
    ok "deploy/k8s: $out"
  else
    fail "deploy/k8s: $out"
  fi
else
  skip "no python3 with the yaml module (python3-yaml): deploy/k8s is not checked"
fi

# ---- container files name the packages this tree builds ----------------------------------------
for pkg in "${packages[@]}"; do
  case $pkg in
    "postgresql-$pg-vectorscale" | "postgresql-$pg-vectorscale-vector") file=Containerfile.postgres ;;
    vectorscale-gpu-builder) file=Containerfile.builder ;;
  esac
  grep -q "${pkg}_" "$src/deploy/container/$file" || fail "deploy/container/$file does not install $pkg"
done

if ((failures)); then
  echo "== $failures packaging check(s) failed" >&2
  exit 1
fi
echo "== packaging: all checks passed (${#shipped[@]} packages: $(cd "$scratch/out" && du -bc ./*.deb | tail -1 | cut -f1) bytes)"
