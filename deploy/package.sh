#!/usr/bin/env bash
# Builds the Debian packages (cmake/Packaging.cmake): a Release build without tests or failure
# points, then CPack. The .deb files land in OUTDIR (default build/packages under the checkout):
#   postgresql-15-vectorscale_<version>_<arch>.deb         the extension
#   postgresql-15-vectorscale-vector_<version>_<arch>.deb  the bundled vector type
#   vectorscale-gpu-builder_<version>_<arch>.deb           the build service (systemd unit)
# The extension packages need postgresql-server-dev-15, the builder needs gRPC; a part whose
# dependencies are missing is left out (CMake says so). CUDA is compiled when nvcc is found;
# VS_WITH_CUDA=OFF in the environment forces the CPU-only build.
#
# Usage: deploy/package.sh [OUTDIR] [-j N]
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
out=$here/build/packages
jobs=$(nproc 2>/dev/null || echo 2)
while (($#)); do
  case $1 in
    -j) jobs=$2; shift ;;
    -*) echo "usage: $0 [OUTDIR] [-j N]" >&2; exit 2 ;;
    *) out=$1 ;;
  esac
  shift
done

# nvcc from the CUDA toolkit, when installed outside PATH.
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi
cuda=()
if [[ -n ${VS_WITH_CUDA:-} ]]; then
  cuda=(-DVS_WITH_CUDA="$VS_WITH_CUDA")
fi

build=${VS_BUILD_ROOT:-$here/build}/package
cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DVS_BUILD_TESTS=OFF \
      -DVS_FAILURE_POINTS=OFF -DVS_SANITIZE= "${cuda[@]}"
cmake --build "$build" -j "$jobs"
mkdir -p "$out"
rm -rf "$build/cpack"
cpack --config "$build/CPackConfig.cmake" -B "$build/cpack"
cp "$build"/cpack/*.deb "$out"/
echo "== packages in $out:"
ls -l "$out"/*.deb
