#!/usr/bin/env bash
# The test command (README, CI): installs the Debian packages the build and the tests need
# (idempotent; apt-get as root), configures, builds and runs every ctest in two configurations:
#   1. Release, -Wall -Wextra -Werror, CUDA compiled when nvcc exists, failure points compiled
#      in: the full ctest suite (unit, regress, TAP, benchmarks' recall checks);
#   2. ASan + UBSan (Debug, CPU-only, no PostgreSQL module): the unit and fuzz tests, and the
#      CUDA kernels on the CUDA emulator (which needs the toolkit's headers only);
#   3. ThreadSanitizer (Debug, CPU-only): the engine's parallel build and the CUDA core run by
#      a team of threads (tests/unit/cuda_core/thread_team.hpp).
#
# Usage: deploy/test.sh [--no-sanitizers] [--no-install] [-j N]
# Build trees go to build/test and build/asan under the checkout (override with VS_BUILD_ROOT).
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
build_root=${VS_BUILD_ROOT:-$here/build}
jobs=$(nproc 2>/dev/null || echo 2)
sanitizers=1
install=1
while (($#)); do
  case $1 in
    --no-sanitizers) sanitizers=0 ;;
    --no-install) install=0 ;;
    -j) jobs=$2; shift ;;
    *) echo "usage: $0 [--no-sanitizers] [--no-install] [-j N]" >&2; exit 2 ;;
  esac
  shift
done

# ---- packages --------------------------------------------------------------------------------
if ((install)); then
  "$here/deploy/install-deps.sh"
fi

# nvcc from the CUDA toolkit, when installed outside PATH.
if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
  export PATH=/usr/local/cuda/bin:$PATH
fi

# ---- 1. release build, all tests -------------------------------------------------------------
echo "== release build (warnings are errors)"
cmake -S "$here" -B "$build_root/test" -DCMAKE_BUILD_TYPE=Release -DVS_WERROR=ON -DVS_FAILURE_POINTS=ON
cmake --build "$build_root/test" -j "$jobs"
echo "== ctest (release)"
(cd "$build_root/test" && ctest --output-on-failure -j "$jobs" --timeout 900)

# ---- 2. sanitizers ---------------------------------------------------------------------------
if ((sanitizers)); then
  echo "== ASan+UBSan build"
  cmake -S "$here" -B "$build_root/asan" -DCMAKE_BUILD_TYPE=Debug -DVS_WERROR=ON \
        -DVS_SANITIZE=address,undefined -DVS_WITH_CUDA=OFF -DVS_BUILD_EXTENSION=OFF
  cmake --build "$build_root/asan" -j "$jobs"
  echo "== ctest (ASan+UBSan: unit and fuzz)"
  (cd "$build_root/asan" && ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 \
     UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
     ctest --output-on-failure -j "$jobs" -L 'unit|fuzz' -E '^emu' --timeout 900)
  # The CUDA kernels on the emulator under ASan+UBSan (a kernel reading or writing past its
  # device buffers is a heap overflow here): every kernel, with the vectors resident and mapped,
  # tiny batches; the other emulated tests ran in the release stage (this build is ~15x slower).
  emu_tests=$build_root/asan/tests/unit/vs_gpu_emu_tests
  if [[ -x $emu_tests ]]; then
    echo "== CUDA emulator under ASan+UBSan"
    ASAN_OPTIONS=detect_leaks=1:abort_on_error=0 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1 \
      "$emu_tests" --gtest_filter='CudaEmulator*:CudaDevice.*:CudaBuild.OutOfCore*:CudaBuild.TooLittle*'
  fi

  echo "== ThreadSanitizer build"
  cmake -S "$here" -B "$build_root/tsan" -DCMAKE_BUILD_TYPE=Debug -DVS_WERROR=ON \
        -DVS_SANITIZE=thread -DVS_WITH_CUDA=OFF -DVS_BUILD_EXTENSION=OFF
  cmake --build "$build_root/tsan" -j "$jobs" --target vs_unit_tests vs_cuda_core_tests
  echo "== ThreadSanitizer: parallel build, CUDA core on thread teams"
  export TSAN_OPTIONS=halt_on_error=1:second_deadlock_stack=1
  "$build_root/tsan/tests/unit/vs_cuda_core_tests" --gtest_filter='CudaCoreThreads.*'
  "$build_root/tsan/tests/unit/vs_unit_tests" --gtest_filter='*VamanaBuild*:Vamana.*'
fi
echo "== all tests passed"
