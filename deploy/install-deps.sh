#!/usr/bin/env bash
# Installs the Debian 12 packages that building and testing vectorscale need. Idempotent:
# only missing packages are installed (apt-get as root, or through sudo). file: CPack's
# dpkg-shlibdeps step; shellcheck and python3-yaml: the packaging test (systemd, for
# systemd-analyze, is left to the machine: it is the init system of a Debian 12 host, and the
# test says so when it is missing); libboost-context-dev: the fibers of the CUDA emulator. With
# --bench, also what tests/bench/pg_bench.py needs (Debian's python3 modules and the
# Fashion-MNIST data set).
set -euo pipefail
packages=(build-essential cmake pkg-config libgtest-dev libgmock-dev libbenchmark-dev
          libhnswlib-dev clang libclang-rt-14-dev postgresql-15 postgresql-server-dev-15
          libipc-run-perl libgrpc++-dev libprotobuf-dev protobuf-compiler protobuf-compiler-grpc
          openssl file shellcheck python3-yaml libboost-context-dev)
if [[ ${1:-} == --bench ]]; then
  packages+=(python3-numpy python3-psycopg2 python3-matplotlib dataset-fashion-mnist)
fi
missing=()
for p in "${packages[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
((${#missing[@]})) || exit 0
echo "== installing: ${missing[*]}"
sudo=()
if ((EUID != 0)); then
  command -v sudo >/dev/null || { echo "need root (or sudo) to install: ${missing[*]}" >&2; exit 1; }
  sudo=(sudo)
fi
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q
"${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends "${missing[@]}"
