#!/usr/bin/env bash
# The GPU kit: everything the GPU checks need, built here and carried to a lent GPU machine.
#
# The GPU machine (the device tool's nvidia-h100-x1 / nvidia-h200) is a CUDA image (Python with
# NumPy, the CUDA 13 toolkit with nvcc, cuBLAS and compute-sanitizer, driver 580), x86-64, no
# network, commands run as root, and it has no gRPC, Protobuf, GoogleTest or PostgreSQL: the
# project cannot be built there. So `pack` builds here (Debian 12 + the CUDA toolkit, no GPU
# needed) and packs the programs, a relocatable copy of Debian's PostgreSQL 15 with our
# extension installed into it, and every shared library they need except glibc's, the NVIDIA
# driver's and the CUDA toolkit's (the CUDA runtime and cuBLAS are the machine's: `run` finds
# them through ldconfig, /usr/local/cuda* or pip's nvidia-* packages) into one archive; `run`
# unpacks it there and runs the checks.
#
#   deploy/gpu-kit.sh pack [DIR]     here: build (Release, CUDA architectures $VS_KIT_CUDA_ARCH,
#                                    default 90 = sm_90 SASS + PTX, for the H100/H200) into
#                                    build/gpukit, pack DIR/vskit.tar.xz (DIR: default .gpukit,
#                                    which pack adds to .git/info/exclude), print the sizes
#   deploy/gpu-kit.sh check [DIR]    here: unpack DIR's archive into a scratch folder and check
#                                    with ldd that every library of every kit program resolves
#                                    inside the kit (glibc, driver and CUDA toolkit aside)
#   deploy/gpu-kit.sh run [STEP...]  on the GPU machine, in the repo root, with DIR carried:
#                                    unpack (xz, else python3's tarfile) into $VS_KIT_ROOT, print
#                                    the machine (nvidia-smi, the device properties, where every
#                                    library resolves), run the steps (default: core gpu bench
#                                    e2e sanitize), each logged to $OUT/STEP.log, then one summary
#                                    line per step (also $OUT/summary.txt)
#
# The device tool's call, from the checkout the session started in, after `pack` there
# (gpu_builder/README.md, "Tests on a GPU machine: the GPU kit"):
#   run(command="bash deploy/gpu-kit.sh run", carry=[".gpukit"], timeout_s=600)
#
# Steps (each in its own bash under `timeout`, default limits in `budget` below, all of them
# $VS_KIT_TIMEOUT when set; no step starts with less than 30 s left of $VS_KIT_DEADLINE):
#   core        vs_cuda_core_tests (the CUDA algorithms on the CPU; a check that the kit runs)
#   gpu         vs_gpu_tests, every test (label `gpu`); they skip with the reason where no device
#               (on a machine with a device, a skip fails the step)
#   sanitize    compute-sanitizer memcheck (with --leak-check full), racecheck, synccheck on a
#               small subset of vs_gpu_tests that launches every kernel ($VS_KIT_SANITIZE_FILTER,
#               $VS_KIT_SANITIZE_RACE_FILTER override the subsets)
#   bench       gpu_build_bench: CPU and CUDA side by side at $VS_KIT_BENCH_CPU_N (200,000) rows,
#               then CUDA alone at $VS_KIT_BENCH_N x $VS_KIT_BENCH_DIMS (1,000,000 x 768): the
#               CPU backend at 1M rows on 16 cores may not fit one call with the rest. The summary
#               gives the speed-up measured at the smaller size and an estimate at 1M (the CPU
#               time scaled linearly with the rows: a lower bound, Vamana grows a little faster
#               than linearly); `bench-full` measures it. The 1M run also builds the variants
#               $VS_KIT_BENCH_VARIANTS on the same data (default: with a refinement pass,
#               without the shared-memory visited sets, with the search kernel held to 32
#               registers, and with the query read from global memory), each summarised
#               with its recall, phases, device seconds and searches
#   bench-full  gpu_build_bench --n $VS_KIT_BENCH_N --dims $VS_KIT_BENCH_DIMS, CPU then CUDA on
#               the same data (the last line is the measured speed-up and recall gap); in a call
#               of its own: `VS_KIT_DEADLINE=590 bash deploy/gpu-kit.sh run bench-full`
#   e2e         CREATE INDEX end to end: gpu_build_bench --write data ($VS_KIT_E2E_N x
#               $VS_KIT_BENCH_DIMS, cosine, $VS_KIT_E2E_QUERIES queries with their exact top 10),
#               vskit-fvecs2pg to COPY's binary format, a throwaway PostgreSQL 15 from the kit
#               (as the user vskit, created if missing: PostgreSQL refuses root; unix socket
#               only), gpu_builder --backend cuda on 127.0.0.1 (--backend cpu, said in the log,
#               where no CUDA device is usable), CREATE INDEX ... USING diskann through the builder
#               (diskann.builder_endpoint, builder_fallback off) and locally (diskann.build_threads
#               = all cores): seconds, who built it (diskann_index_info), diskann_validate_index,
#               the plan, recall@10 at L=40 and L=100 computed in SQL against the exact answers
#
# Settings (environment), with their defaults:
#   OUT=/tmp/gpukit-out       logs: info.log, STEP.log, summary.txt (the device tool brings
#                             back 8 files at most: all six steps give exactly 8)
#   VS_KIT_DIR=.gpukit        where the archive is (run, check) or goes (pack)
#   VS_KIT_ROOT=/tmp/vskit    where run unpacks it (world-readable: PostgreSQL runs as vskit;
#                             /var/tmp/vskit, then /opt/vskit where /tmp is mounted noexec)
#   VS_KIT_WORK=/tmp/vskit-work   scratch: data files, the cluster, the builder's logs
#   VS_KIT_DEADLINE=570       seconds from the start of `run`; each step's limit is cut to fit
#   VS_KIT_TIMEOUT            one limit for every step instead of the defaults
#   VS_KIT_BENCH_N=1000000 VS_KIT_BENCH_DIMS=768 VS_KIT_BENCH_CPU_N=200000
#   VS_KIT_BENCH_ARGS=""      more gpu_build_bench options for bench and bench-full, e.g.
#                             "--fp32" (graph phase in FP32 instead of BF16) or "--tf32"
#   VS_KIT_BENCH_VARIANTS=cuda:refine-max-rows=0,cuda:local-visited=0,cuda:search-full-occupancy,cuda:query-in-shared=0,cuda:vectors=mapped-training
#                             more CUDA builds in bench's 1M run, comma-separated backends of
#                             gpu_build_bench with the GPU build's knobs (with the refinement
#                             pass that builds above 100,000 rows skip; visited sets in global
#                             memory only; the search kernel at 32 registers; the query read
#                             from global memory; training from mapped host memory, the plan
#                             of builds whose float vectors do not fit beside the graph);
#                             empty: none
#   VS_KIT_E2E_N=100000 VS_KIT_E2E_QUERIES=100 VS_KIT_E2E_LOCAL=1 (0: no local build)
#   VS_KIT_SANITIZE_TOOLS="memcheck racecheck synccheck"
#   VS_KIT_COMPAT=auto        1: the kit's libstdc++/libgcc_s always; 0: never; auto: when the
#                             machine's lacks the GLIBCXX version the programs need
#   VS_KIT_BUILD_DIR=build/gpukit VS_KIT_CUDA_ARCH=90 VS_KIT_JOBS=$(nproc)   (pack)
set -euo pipefail

here=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
self=$here/deploy/gpu-kit.sh
archive=vskit.tar.xz

die() {
  echo "gpu-kit: $*" >&2
  exit 1
}
note() { echo "== $*"; }

# ---- shared: which libraries the GPU machine has itself --------------------------------------

os_name() { sed -n 's/^PRETTY_NAME=//p' /etc/os-release 2>/dev/null | tr -d '"'; }

# glibc's, the NVIDIA driver's and the CUDA toolkit's libraries: never packed, always the machine's.
is_machine_lib() {
  case $1 in
    linux-vdso.so.* | ld-linux*.so.* | libc.so.* | libm.so.* | libdl.so.* | libpthread.so.* | librt.so.* | \
      libresolv.so.* | libutil.so.* | libanl.so.* | libmvec.so.* | libBrokenLocale.so.* | libnss_*.so.* | \
      libthread_db.so.*) return 0 ;;
    libcuda.so.* | libnvidia-*.so.* | libcudart.so.* | libcublas.so.* | libcublasLt.so.*) return 0 ;;
  esac
  return 1
}

# The kit's ELF files (programs, PostgreSQL's modules), below $1.
kit_elves() {
  local f
  find "$1/bin" "$1/pg" -type f \( -perm -u+x -o -name '*.so' \) -print | while read -r f; do
    if [[ $(head -c4 "$f" | od -An -c | tr -d ' ') == 177ELF ]]; then echo "$f"; fi
  done
}

# ---- pack ------------------------------------------------------------------------------------

# The device-properties helper: driver and runtime versions, then per device what the kernels
# and the memory plan depend on. Exit 0 with at least one device, 3 without.
devinfo_source() {
  cat <<'EOF'
#include <cstdio>
#include <cuda_runtime.h>
int main() {
  int driver = 0, runtime = 0, count = 0;
  cudaDriverGetVersion(&driver);
  cudaRuntimeGetVersion(&runtime);
  std::printf("CUDA driver API %d.%d, runtime %d.%d (static in this program)\n", driver / 1000, driver % 1000 / 10,
              runtime / 1000, runtime % 1000 / 10);
  const cudaError_t e = cudaGetDeviceCount(&count);
  if (e != cudaSuccess || count == 0) {
    std::printf("no usable CUDA device: %s\n", e != cudaSuccess ? cudaGetErrorString(e) : "none found");
    return 3;
  }
  for (int d = 0; d < count; ++d) {
    cudaDeviceProp p{};
    cudaGetDeviceProperties(&p, d);
    cudaSetDevice(d);
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    int clock_khz = 0, mem_clock_khz = 0;
    cudaDeviceGetAttribute(&clock_khz, cudaDevAttrClockRate, d);
    cudaDeviceGetAttribute(&mem_clock_khz, cudaDevAttrMemoryClockRate, d);
    std::printf("device %d: %s, compute capability %d.%d, %d SMs, %.1f GiB (%.1f GiB free)\n", d, p.name, p.major,
                p.minor, p.multiProcessorCount, total_b / 1073741824.0, free_b / 1073741824.0);
    std::printf("  L2 %.1f MiB, shared memory %zu KiB per SM, %zu KiB per block (opt-in %zu KiB), %d registers per block\n",
                p.l2CacheSize / 1048576.0, p.sharedMemPerMultiprocessor / 1024, p.sharedMemPerBlock / 1024,
                p.sharedMemPerBlockOptin / 1024, p.regsPerBlock);
    std::printf("  warp %d, max threads %d per block and %d per SM, SM clock %d MHz, memory clock %d MHz, bus %d bits\n",
                p.warpSize, p.maxThreadsPerBlock, p.maxThreadsPerMultiProcessor, clock_khz / 1000,
                mem_clock_khz / 1000, p.memoryBusWidth);
    std::printf("  PCI %04x:%02x:%02x, ECC %s, async engines %d, managed memory %s, host memory mapping %s\n",
                p.pciDomainID, p.pciBusID, p.pciDeviceID, p.ECCEnabled ? "on" : "off", p.asyncEngineCount,
                p.concurrentManagedAccess ? "concurrent" : "not concurrent", p.canMapHostMemory ? "yes" : "no");
  }
  return 0;
}
EOF
}

# fvecs/ivecs (gpu_build_bench --write) to what COPY reads: `vectors IN OUT` writes binary COPY
# rows (int4 row number, vector); `ids IN OUT` writes text rows "row number<TAB>{a,b,...}".
fvecs2pg_source() {
  cat <<'EOF'
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
static void put16(FILE* f, uint16_t v) { v = __builtin_bswap16(v); fwrite(&v, 2, 1, f); }
static void put32(FILE* f, uint32_t v) { v = __builtin_bswap32(v); fwrite(&v, 4, 1, f); }
int main(int argc, char** argv) {
  if (argc != 4 || (strcmp(argv[1], "vectors") && strcmp(argv[1], "ids"))) {
    fprintf(stderr, "usage: %s vectors|ids IN OUT\n", argv[0]);
    return 2;
  }
  const int vectors = strcmp(argv[1], "vectors") == 0;
  FILE* in = fopen(argv[2], "rb");
  FILE* out = fopen(argv[3], "wb");
  if (!in || !out) { perror("fvecs2pg"); return 1; }
  static char inbuf[1 << 20], outbuf[1 << 20];
  setvbuf(in, inbuf, _IOFBF, sizeof inbuf);
  setvbuf(out, outbuf, _IOFBF, sizeof outbuf);
  if (vectors) { fwrite("PGCOPY\n\377\r\n\0", 11, 1, out); put32(out, 0); put32(out, 0); }
  uint32_t row = 0, buf[65536];
  int32_t dims;
  while (fread(&dims, 4, 1, in) == 1) {
    if (dims <= 0 || dims > 65535 || fread(buf, 4, (size_t)dims, in) != (size_t)dims) {
      fprintf(stderr, "fvecs2pg: %s: bad row %u\n", argv[2], row);
      return 1;
    }
    if (vectors) {
      put16(out, 2); put32(out, 4); put32(out, row);
      put32(out, 4 + 4 * (uint32_t)dims); put16(out, (uint16_t)dims); put16(out, 0);
      for (int32_t d = 0; d < dims; ++d) put32(out, buf[d]);
    } else {
      fprintf(out, "%u\t{", row);
      for (int32_t d = 0; d < dims; ++d) fprintf(out, d ? ",%d" : "%d", (int32_t)buf[d]);
      fputs("}\n", out);
    }
    ++row;
  }
  if (vectors) put16(out, 0xffff);
  if (fclose(out) != 0) { perror("fvecs2pg"); return 1; }
  fprintf(stderr, "fvecs2pg: %u rows from %s\n", row, argv[2]);
  return 0;
}
EOF
}

cache_value() { sed -n "s/^$1:[A-Z]*=//p" "$2/CMakeCache.txt"; }

# Copies $1 into the kit's lib/ (or compat/) under its soname, unless the machine has it.
pack_lib() {
  local name=$1 path=$2 kit=$3
  is_machine_lib "$name" && return 0
  case $name in
    libstdc++.so.* | libgcc_s.so.*) [[ -e $kit/compat/$name ]] || cp -L "$path" "$kit/compat/$name" ;;
    *) [[ -e $kit/lib/$name ]] || cp -L "$path" "$kit/lib/$name" ;;
  esac
}

# Every library the kit's ELF files need (ldd, so transitively), packed.
pack_libs() {
  local kit=$1 f line name path missing=0
  while read -r f; do
    while read -r line; do
      case $line in
        *"=> not found"*) echo "gpu-kit: $f needs ${line%% *}, which is not found" >&2; missing=1 ;;
        *"=> "/*) name=${line%% *}; path=${line#*=> }; pack_lib "$name" "${path%% (*}" "$kit" ;;
      esac
    done < <(ldd "$f" 2>/dev/null || true)
  done < <(kit_elves "$kit")
  ((missing == 0)) || die "libraries missing on this machine: install them and pack again"
}

pack() {
  local dir=${1:-${VS_KIT_DIR:-$here/.gpukit}}
  local build=${VS_KIT_BUILD_DIR:-$here/build/gpukit} arch=${VS_KIT_CUDA_ARCH:-90}
  local jobs=${VS_KIT_JOBS:-$(nproc)}
  if ! command -v nvcc >/dev/null && [[ -x /usr/local/cuda/bin/nvcc ]]; then
    export PATH=/usr/local/cuda/bin:$PATH
  fi
  command -v nvcc >/dev/null || die "nvcc not found: the kit needs the CUDA backend"

  note "configure $build (Release, CUDA architectures $arch)"
  cmake -S "$here" -B "$build" -DCMAKE_BUILD_TYPE=Release -DCMAKE_CUDA_ARCHITECTURES="$arch" \
    -DVS_WITH_CUDA=ON -DVS_BUNDLED_VECTOR=ON -DVS_FAILURE_POINTS=OFF -DVS_SANITIZE= >/dev/null
  [[ $(cache_value VS_PG_BINDIR "$build") ]] || die "no PostgreSQL server headers: install postgresql-server-dev-15"
  note "build (-j $jobs)"
  cmake --build "$build" -j "$jobs" --target vs_gpu_tests vs_cuda_core_tests gpu_build_bench gpu_builder \
    vectorscale vector
  [[ -x $build/gpu_builder/gpu_builder ]] || die "gpu_builder was not built (gRPC and Protobuf missing?)"

  local stage
  stage=$(mktemp -d /tmp/gpukit-pack.XXXXXX)
  # shellcheck disable=SC2064 # expand now: the folder is this call's
  trap "rm -rf '$stage'" EXIT
  local kit=$stage/vskit
  mkdir -p "$kit/bin" "$kit/lib" "$kit/compat" "$kit/pg"

  note "programs"
  cp "$build/tests/unit/vs_gpu_tests" "$build/tests/unit/vs_cuda_core_tests" "$build/tests/bench/gpu_build_bench" \
    "$build/gpu_builder/gpu_builder" "$kit/bin/"
  devinfo_source >"$stage/devinfo.cu"
  nvcc -O2 -std=c++17 -cudart static -arch=sm_"${arch%%[!0-9]*}" -o "$kit/bin/vskit-devinfo" "$stage/devinfo.cu"
  fvecs2pg_source >"$stage/fvecs2pg.c"
  cc -O2 -Wall -o "$kit/bin/vskit-fvecs2pg" "$stage/fvecs2pg.c"

  note "PostgreSQL: Debian's server and client, relocated under pg/ (same paths below it)"
  local bindir pkglibdir sharedir pgversion
  bindir=$(cache_value VS_PG_BINDIR "$build")
  pkglibdir=$(cache_value VS_PG_PKGLIBDIR "$build")
  sharedir=$(cache_value VS_PG_SHAREDIR "$build")
  pgversion=$(cache_value VS_PG_VERSION "$build")
  mkdir -p "$kit/pg$bindir" "$kit/pg$pkglibdir" "$kit/pg$sharedir"
  cp -L "$bindir"/{postgres,initdb,pg_ctl,psql} "$kit/pg$bindir/"
  # The modules initdb and the server load (PL/pgSQL, the Snowball dictionaries, the encoding
  # conversions); no contrib, no JIT.
  cp -L "$pkglibdir"/{plpgsql,dict_snowball}.so "$pkglibdir"/*_and_*.so "$kit/pg$pkglibdir/"
  cp -rL "$sharedir/." "$kit/pg$sharedir/"
  rm -f "$kit/pg$sharedir"/extension/vector*  # a system-wide pgvector or vectorscale: ours below

  note "our extension (vector, vectorscale), installed into a DESTDIR and copied in"
  local destdir=$stage/destdir
  local component
  for component in vector vectorscale; do
    # DESTDIR keeps the system's PostgreSQL untouched; the lock serialises installs anyway.
    if command -v flock >/dev/null; then
      DESTDIR=$destdir flock /tmp/vs_pg_install.lock cmake --install "$build" --component "$component" >/dev/null
    else
      DESTDIR=$destdir cmake --install "$build" --component "$component" >/dev/null
    fi
  done
  [[ -f $destdir$pkglibdir/vectorscale.so && -f $destdir$pkglibdir/vector.so ]] || die "extension install failed"
  cp "$destdir$pkglibdir"/*.so "$kit/pg$pkglibdir/"
  cp "$destdir$sharedir"/extension/* "$kit/pg$sharedir/extension/"

  note "shared libraries (ldd; glibc, driver and CUDA toolkit left to the machine)"
  pack_libs "$kit"
  local glibc glibcxx
  glibc=$(kit_elves "$kit" | xargs objdump -T 2>/dev/null | grep -o 'GLIBC_2\.[0-9.]*' | sort -uV | tail -1 || true)
  glibcxx=$(kit_elves "$kit" | xargs objdump -T 2>/dev/null | grep -o 'GLIBCXX_3\.[0-9.]*' | sort -uV | tail -1 || true)
  {
    echo "vskit: vectorscale GPU kit"
    echo "commit: $(git -C "$here" rev-parse HEAD 2>/dev/null || echo unknown)$(git -C "$here" diff --quiet HEAD 2>/dev/null || echo ' (with local changes)')"
    echo "packed: $(date -u +%FT%TZ) on $(os_name)"
    echo "cuda_architectures: $arch"
    echo "nvcc: $(nvcc --version | tail -1)"
    echo "postgresql: $pgversion"
    echo "pg_bindir: $bindir"
    echo "glibc_needed: $glibc"
    echo "glibcxx_needed: $glibcxx"
  } >"$kit/MANIFEST"
  chmod -R a+rX "$kit"

  note "archive"
  mkdir -p "$dir"
  rm -f "$dir/$archive"
  tar -C "$stage" -cf - vskit | xz -T0 -6 >"$dir/$archive"
  cp "$kit/MANIFEST" "$dir/MANIFEST"
  exclude_kit_dir "$dir"
  sizes "$dir" "$kit"
}

# The kit's folder goes into .git/info/exclude (so the device tool sends it only when carried).
exclude_kit_dir() {
  local dir rel exclude
  dir=$(cd "$1" && pwd)
  rel=${dir#"$here"/}
  [[ $rel == "$dir" ]] && return 0  # outside the checkout: nothing to ignore
  exclude=$(git -C "$here" rev-parse --git-path info/exclude 2>/dev/null) || return 0
  [[ $exclude == /* ]] || exclude=$here/$exclude
  mkdir -p "$(dirname "$exclude")"
  grep -qxF "/$rel/" "$exclude" 2>/dev/null || echo "/$rel/" >>"$exclude"
}

sizes() {
  local dir=$1 kit=$2 tree untracked kitsize
  tree=$(git -C "$here" ls-files -z | (cd "$here" && xargs -0 stat -c %s 2>/dev/null) | awk '{s+=$1} END {print s+0}')
  untracked=$(git -C "$here" ls-files -z --others --exclude-standard |
    (cd "$here" && xargs -0 -r stat -c %s 2>/dev/null) | awk '{s+=$1} END {print s+0}')
  kitsize=$(du -sb "$dir" | cut -f1)
  echo "kit: $dir/$archive $(numfmt --to=iec-i --suffix=B "$kitsize") (unpacked $(du -sh "$kit" | cut -f1));" \
    "needs glibc >= $(sed -n 's/^glibc_needed: GLIBC_//p' "$kit/MANIFEST")"
  echo "travels: tracked $(numfmt --to=iec-i --suffix=B "$tree") + untracked $(numfmt --to=iec-i --suffix=B "$untracked")" \
    "+ kit = $(numfmt --to=iec-i --suffix=B $((tree + untracked + kitsize))) of the device tool's 64 MiB"
}

# ---- unpacking and the library path ----------------------------------------------------------

# Unpacks $1/vskit.tar.xz into $2 unless the same archive is already there.
unpack() {
  local dir=$1 root=$2 sum
  [[ -f $dir/$archive ]] || die "no $dir/$archive: run deploy/gpu-kit.sh pack here first, and carry the folder"
  sum=$(cksum <"$dir/$archive")
  if [[ -f $root/.archive && $(cat "$root/.archive") == "$sum" ]]; then
    return 0
  fi
  rm -rf "$root"
  mkdir -p "$root"
  if command -v xz >/dev/null; then
    xz -dc "$dir/$archive" | tar -C "$root" --strip-components=1 -xf -
  elif command -v python3 >/dev/null; then
    env -u LD_LIBRARY_PATH python3 - "$dir/$archive" "$root" <<'EOF'
import sys, tarfile
with tarfile.open(sys.argv[1]) as t:
    for m in t.getmembers():
        m.name = m.name.partition("/")[2]
        if m.name:
            t.extract(m, sys.argv[2], **({"filter": "tar"} if hasattr(tarfile, "tar_filter") else {}))
EOF
  else
    die "neither xz nor python3 to unpack $archive"
  fi
  chmod a+rx "$root"
  echo "$sum" >"$root/.archive"
}

# The folder holding the first of the named libraries found: the dynamic linker's cache, the
# CUDA toolkit, pip's nvidia-* packages (site-packages/nvidia/*/lib).
find_lib_dir() {
  local name=$1 hit
  hit=$(ldconfig -p 2>/dev/null | awk -v n="$name" '$1 == n {print $NF; exit}' || true)
  if [[ -z $hit ]]; then
    hit=$(find /usr/local/cuda/lib64 /usr/local/cuda/targets/x86_64-linux/lib /usr/local/cuda/lib \
      /usr/local/cuda-*/lib64 /usr/lib/x86_64-linux-gnu -maxdepth 1 -name "$name" 2>/dev/null | head -1 || true)
  fi
  if [[ -z $hit ]]; then
    hit=$(find /opt /usr/local/lib /usr/lib/python3* /root/.local -path '*/nvidia/*' -name "$name" 2>/dev/null |
      head -1 || true)
  fi
  [[ -n $hit ]] && dirname "$(readlink -f "$hit")"
}

# Sets CUDA_LD (the machine's CUDA runtime and cuBLAS), COMPAT_LD (the kit's libstdc++ when
# the machine's is older than our programs need) and KIT_LD (everything a kit program needs).
library_path() {
  local root=$1 lib dir dirs=() need sys
  for lib in libcudart.so.13 libcublas.so.13 libcublasLt.so.13; do
    if dir=$(find_lib_dir "$lib"); then
      [[ " ${dirs[*]} " == *" $dir "* ]] || dirs+=("$dir")
    else
      echo "gpu-kit: $lib not found on this machine (ldconfig, /usr/local/cuda, pip nvidia-* packages)" >&2
    fi
  done
  CUDA_LD=$(
    IFS=:
    echo "${dirs[*]}"
  )
  COMPAT_LD=
  need=$(sed -n 's/^glibcxx_needed: //p' "$root/MANIFEST")
  sys=$(ldconfig -p 2>/dev/null | awk '$1 == "libstdc++.so.6" && /x86-64/ {print $NF; exit}' || true)
  case ${VS_KIT_COMPAT:-auto} in
    1) COMPAT_LD=$root/compat ;;
    0) ;;
    *) if [[ -z $sys ]] || { [[ -n $need ]] && ! grep -qF "$need" "$sys"; }; then
      COMPAT_LD=$root/compat
    fi ;;
  esac
  KIT_LD=$root/lib${CUDA_LD:+:$CUDA_LD}${COMPAT_LD:+:$COMPAT_LD}
  GPU_LD=${CUDA_LD}${COMPAT_LD:+:$COMPAT_LD}
  export CUDA_LD COMPAT_LD KIT_LD GPU_LD
}

# ldd of every kit ELF with only KIT_LD: each library must resolve inside the kit, or be the
# machine's glibc / driver / CUDA toolkit (by name). Prints the machine's libraries used once.
check_libs() {
  local root=$1 f line name path bad=0
  declare -A machine=()
  while read -r f; do
    while read -r line; do
      case $line in
        *"not found"*) echo "MISSING ${f#"$root"/}: $line"; bad=1 ;;
        *"=> "/*)
          name=${line%% *}; path=${line#*=> }; path=${path%% (*}
          if [[ $path == "$root"/* ]]; then
            :
          elif is_machine_lib "$name" || [[ -z $COMPAT_LD && $name == @(libstdc++.so.6|libgcc_s.so.1) ]]; then
            machine[$path]=1
          else
            echo "OUTSIDE ${f#"$root"/}: $name => $path"; bad=1
          fi ;;
      esac
    done < <(LD_LIBRARY_PATH=$KIT_LD ldd "$f" 2>&1 || true)
  done < <(kit_elves "$root")
  echo "libraries of the machine used: $(printf '%s\n' "${!machine[@]}" | sort | tr '\n' ' ')"
  if ((bad)); then
    echo "libraries: PROBLEMS above"
    return 1
  fi
  echo "libraries: every kit program resolves inside the kit or to glibc/driver/CUDA"
}

check() {
  local dir=${1:-${VS_KIT_DIR:-$here/.gpukit}} root
  root=$(mktemp -d /tmp/gpukit-check.XXXXXX)
  unpack "$dir" "$root"
  library_path "$root"
  echo "KIT_LD=$KIT_LD"
  local rc=0
  check_libs "$root" || rc=1
  rm -rf "$root"
  return $rc
}

# ---- run: the machine ------------------------------------------------------------------------

info() {
  local root=$VS_KIT_ROOT need have
  note "machine"
  uname -srm
  os_name
  have=$(getconf GNU_LIBC_VERSION 2>/dev/null | awk '{print $2}')
  echo "glibc ${have:-unknown}; $(nproc) CPUs ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ //'));" \
    "memory $(awk '/MemTotal/ {printf "%.0f GiB", $2 / 1048576}' /proc/meminfo);" \
    "disk $(df -h "$(dirname "$VS_KIT_WORK")" | awk 'NR == 2 {print $4 " free on " $6}')"
  need=$(sed -n 's/^glibc_needed: GLIBC_//p' "$root/MANIFEST")
  if [[ -n $have && -n $need && $(printf '%s\n%s\n' "$need" "$have" | sort -V | head -1) != "$need" ]]; then
    echo "WARNING: the kit needs glibc >= $need, this machine has $have: its programs will not start"
  fi
  note "nvidia-smi"
  if command -v nvidia-smi >/dev/null; then
    timeout 20 nvidia-smi || true
    timeout 20 nvidia-smi --query-gpu=name,compute_cap,memory.total,clocks.max.sm,clocks.max.mem,power.limit,driver_version \
      --format=csv || true
  else
    echo "nvidia-smi: not found"
  fi
  note "device properties (vskit-devinfo)"
  if LD_LIBRARY_PATH=$GPU_LD timeout 60 "$root/bin/vskit-devinfo"; then
    echo 1 >"$STATE/has_gpu"
  else
    echo 0 >"$STATE/has_gpu"
  fi
  note "kit"
  cat "$root/MANIFEST"
  echo "CUDA runtime and cuBLAS from: ${CUDA_LD:-NOT FOUND}"
  if [[ -n $COMPAT_LD ]]; then
    echo "libstdc++: the kit's (the machine's is older or missing)"
  else
    echo "libstdc++: the machine's"
  fi
  echo "compute-sanitizer: $(sanitizer_path || echo 'not found')"
  check_libs "$root" || true
}

sanitizer_path() {
  local p
  p=$(command -v compute-sanitizer 2>/dev/null) ||
    p=$(find /usr/local/cuda/bin /usr/local/cuda/compute-sanitizer /usr/local/cuda-*/bin /usr/local/cuda-*/compute-sanitizer \
      /opt/nvidia -maxdepth 3 -name compute-sanitizer -type f 2>/dev/null | head -1 || true)
  [[ -n $p ]] && echo "$p"
}

# ---- run: the steps (each runs in its own bash under `timeout`: bash gpu-kit.sh __step NAME) --

# One line of the step's summary (the parent prefixes the outcome and the seconds).
summary() { echo "$*" >>"$STATE/$STEP.summary"; }

# Runs a GoogleTest program, its output also in $STATE/$STEP.gtest; summarises the counts.
run_gtest() {
  local out=$STATE/$STEP.gtest rc=0 failed
  "$@" 2>&1 | tee "$out" || rc=$?
  summary "$(gtest_counts "$out")"
  failed=$(sed -n '/^\[  FAILED  \] [0-9]* tests\{0,1\}, listed below/,$ s/^\[  FAILED  \] \([^ ]*\).*/\1/p' "$out" |
    grep -v '^[0-9]' | head -8 | paste -sd' ' || true)
  [[ -z $failed ]] || summary "failed: $failed"
  if [[ $(cat "$STATE/has_gpu") == 1 ]] && grep -q '^\[  SKIPPED \] [0-9]* tests\{0,1\}, listed below' "$out"; then
    summary "UNEXPECTED: tests skipped although vskit-devinfo found a device"
    ((rc)) || rc=1
  fi
  return "$rc"
}

gtest_counts() {
  local ran passed skipped failed why
  ran=$(sed -n 's/^\[==========\] \([0-9]*\) tests\{0,1\} from .* ran\..*/\1/p' "$1" | tail -1)
  passed=$(sed -n 's/^\[  PASSED  \] \([0-9]*\) tests\{0,1\}\..*/\1/p' "$1" | tail -1)
  skipped=$(sed -n 's/^\[  SKIPPED \] \([0-9]*\) tests\{0,1\}, listed below.*/\1/p' "$1" | tail -1)
  failed=$(sed -n 's/^\[  FAILED  \] \([0-9]*\) tests\{0,1\}, listed below.*/\1/p' "$1" | tail -1)
  why=$(grep -m1 -A1 ': Skipped$' "$1" | tail -1 || true)
  echo "${ran:-0} tests: ${passed:-0} passed, ${failed:-0} failed, ${skipped:-0} skipped${why:+ ($why)}"
}

step_core() {
  run_gtest env LD_LIBRARY_PATH="$GPU_LD" "$VS_KIT_ROOT/bin/vs_cuda_core_tests"
}

step_gpu() {
  run_gtest env LD_LIBRARY_PATH="$GPU_LD" "$VS_KIT_ROOT/bin/vs_gpu_tests"
}

# The subsets: every kernel (train: column sums, groups, SBQ codes, medoid; search; prune:
# gather, prune, refine, final prune; reverse edges: keys, targets, runs, overflow; the smoke
# kernel), resident and mapped vectors, the out-of-memory and cancel paths, cuBLAS and CUB;
# small data so that each tool finishes in a minute or two.
sanitize_filter_race='CudaDevice.*:CudaBuild.GraphIsTheCpuReferenceOnExactData:CudaBuild.OutOfCoreTinyTilesGiveTheReferenceGraph'
sanitize_filter_mem="$sanitize_filter_race:CudaBuild.TooLittleDeviceMemoryIsAClearOutOfMemoryError:CudaBuild.CancelStopsTheBuild"
sanitize_filter_mem+=':CudaBackend.PagesValidateForEveryMetricAndStorage'

step_sanitize() {
  local cs tool filter share t rc errors left shares=0
  if ! cs=$(sanitizer_path); then
    summary "compute-sanitizer not found"
    return 1
  fi
  "$cs" --version | tail -1
  local status=0 tools=${VS_KIT_SANITIZE_TOOLS:-memcheck racecheck synccheck}
  for tool in $tools; do
    case $tool in memcheck) shares=$((shares + 45)) ;; racecheck) shares=$((shares + 35)) ;; *) shares=$((shares + 20)) ;; esac
  done
  for tool in $tools; do
    case $tool in
      memcheck) filter=${VS_KIT_SANITIZE_FILTER:-$sanitize_filter_mem}; share=45 ;;
      racecheck) filter=${VS_KIT_SANITIZE_RACE_FILTER:-$sanitize_filter_race}; share=35 ;;
      *) filter=${VS_KIT_SANITIZE_RACE_FILTER:-$sanitize_filter_race}; share=20 ;;
    esac
    # Each tool gets its share of what is left (memcheck 45, racecheck 35, synccheck 20).
    left=$((STEP_END - SECONDS - 5))
    t=$((left * share / shares))
    shares=$((shares - share))
    if ((t < 10)); then
      summary "$tool: not run (no time left)"
      status=1
      continue
    fi
    note "compute-sanitizer --tool $tool (timeout ${t}s) --gtest_filter=$filter"
    local extra=()
    [[ $tool == memcheck ]] && extra=(--leak-check full)
    rc=0
    LD_LIBRARY_PATH=$GPU_LD timeout -k 5 "$t" "$cs" --tool "$tool" "${extra[@]}" --error-exitcode 99 --print-limit 50 \
      "$VS_KIT_ROOT/bin/vs_gpu_tests" --gtest_filter="$filter" 2>&1 | tee "$STATE/sanitize.$tool" || rc=$?
    errors=$(sed -n -e 's/.*ERROR SUMMARY: \([0-9]*\) error.*/\1/p' \
      -e 's/.*RACECHECK SUMMARY: .*(\([0-9]*\) error.*/\1/p' "$STATE/sanitize.$tool" | tail -1)
    case $rc in
      0) summary "$tool: ${errors:-0} errors; $(gtest_counts "$STATE/sanitize.$tool")" ;;
      124 | 137) summary "$tool: TIMEOUT after ${t}s"; status=1 ;;
      *) summary "$tool: ${errors:-?} errors (exit $rc); $(gtest_counts "$STATE/sanitize.$tool")"; status=1 ;;
    esac
    if [[ $(cat "$STATE/has_gpu") == 1 ]] && grep -q '^\[  SKIPPED \] [0-9]* tests\{0,1\}, listed below' \
      "$STATE/sanitize.$tool"; then
      summary "$tool: UNEXPECTED skips: the device is not usable under the sanitizer"
      status=1
    fi
  done
  return "$status"
}

# Fields of gpu_build_bench's JSON lines: json_field FILE BACKEND KEY (first match in that line).
json_field() {
  grep "\"backend\":\"$2\"" "$1" | tail -1 | grep -o "\"$3\":[0-9.]*" | head -1 | cut -d: -f2 || true
}

# Recall@10 of a backend at L=10 and L=100: "R10/R100 at L=10/100": json_recall FILE BACKEND.
json_recall() {
  echo "$(json_field "$1" "$2" 10)/$(json_field "$1" "$2" 100) at L=10/100"
}

# One object of a gpu_build_bench JSON line as "key value, key value": json_section FILE BACKEND NAME.
json_section() {
  grep "\"backend\":\"$2\"" "$1" | tail -1 | grep -o "\"$3\":{[^}]*}" | head -1 |
    sed -e "s/^\"$3\":{//" -e 's/}$//' -e 's/"//g' -e 's/:/ /g' -e 's/,/, /g' || true
}

# Runs gpu_build_bench (output also in $1); a failure is summarised and remembered in status.
# It stops 15 s before the step's limit, so that the step still summarises the JSON lines of
# the builds that finished.
bench_run() {
  local out=$1 rc=0 extra=() left=$((STEP_END - SECONDS - 15))
  shift
  # Extra options for every benchmark run, e.g. VS_KIT_BENCH_ARGS="--fp32" or "--tf32".
  read -r -a extra <<<"${VS_KIT_BENCH_ARGS:-}"
  set -- "$@" "${extra[@]}"
  if ((left < 10)); then
    summary "gpu_build_bench $*: not run (the step's limit)"
    status=1
    return 0
  fi
  note "gpu_build_bench $* (timeout ${left}s)"
  LD_LIBRARY_PATH=$GPU_LD timeout -k 5 "$left" "$VS_KIT_ROOT/bin/gpu_build_bench" --threads "$(nproc)" "$@" 2>&1 |
    tee "$out" || rc=$?
  if ((rc == 124 || rc == 137)); then
    summary "gpu_build_bench $*: stopped after ${left}s (the step's limit); the builds that finished are below"
    status=1
  elif ((rc)); then
    summary "gpu_build_bench $* exited $rc: $(grep -m1 '^gpu_build_bench: ' "$out" | grep -v 'generated\|brute force' || true)"
    status=1
  fi
}

step_bench() {
  local n=${VS_KIT_BENCH_N:-1000000} dims=${VS_KIT_BENCH_DIMS:-768} cpu_n=${VS_KIT_BENCH_CPU_N:-200000}
  local variants=${VS_KIT_BENCH_VARIANTS-cuda:refine-max-rows=0,cuda:local-visited=0,cuda:search-full-occupancy,cuda:query-in-shared=0,cuda:vectors=mapped-training}
  local big=$STATE/bench.big small=$STATE/bench.small cuda='' cpu cuda_small speedup est status=0
  # The side-by-side run first: its figures stay in the summary if the big run hits the limit.
  bench_run "$small" --n "$cpu_n" --dims "$dims" --backends cpu,cuda
  cpu=$(json_field "$small" cpu total)
  cuda_small=$(json_field "$small" cuda total)
  speedup=$(grep -o '"speedup":[0-9.]*' "$small" | cut -d: -f2 || true)
  summary "cpu $cpu_n x $dims: ${cpu:-?}s, recall@10 $(json_recall "$small" cpu)"
  [[ -z $cuda_small ]] ||
    summary "cuda $cpu_n x $dims: ${cuda_small}s, recall@10 $(json_recall "$small" cuda); speed-up ${speedup}x"
  if [[ $(cat "$STATE/has_gpu") == 1 ]]; then
    bench_run "$big" --n "$n" --dims "$dims" --backends "cuda${variants:+,$variants}"
    cuda=$(json_field "$big" cuda total)
  else
    echo "no CUDA device (info.log): no CUDA run at $n rows" >"$big"
  fi
  if [[ -n $cuda ]]; then
    summary "cuda $n x $dims: ${cuda}s, recall@10 $(json_recall "$big" cuda)"
    summary "  phases: $(json_section "$big" cuda seconds)"
    summary "  graph phase on the device, seconds: $(json_section "$big" cuda device_seconds)"
    summary "  searches: $(json_section "$big" cuda search)"
    local v
    for v in ${variants//,/ }; do
      summary "$v $n x $dims: $(json_field "$big" "$v" total)s, recall@10 $(json_recall "$big" "$v");" \
        "phases: $(json_section "$big" "$v" seconds); device seconds: $(json_section "$big" "$v" device_seconds);" \
        "searches: $(json_section "$big" "$v" search)"
    done
  else
    summary "cuda $n x $dims: not run ($(grep -m1 -e 'skipping cuda' -e 'no CUDA' "$big" | sed 's/.*skipping cuda: //'))"
  fi
  if [[ -n $cuda && -n $cpu ]]; then
    # The CPU build at n rows, estimated linearly from cpu_n rows (a lower bound).
    est=$(awk -v c="$cpu" -v n="$n" -v m="$cpu_n" -v g="$cuda" \
      'BEGIN {printf "%.0f s, so a speed-up of about %.1fx or more", c * n / m, c * n / m / g}')
    summary "cpu at $n estimated: $est (measured by bench-full)"
  fi
  return "$status"
}

step_bench_full() {
  local n=${VS_KIT_BENCH_N:-1000000} dims=${VS_KIT_BENCH_DIMS:-768} out=$STATE/bench.full status=0
  bench_run "$out" --n "$n" --dims "$dims" --backends cpu,cuda
  local cpu cuda
  cpu=$(json_field "$out" cpu total)
  cuda=$(json_field "$out" cuda total)
  summary "$n x $dims: cpu ${cpu:-?}s, recall@10 $(json_recall "$out" cpu)"
  if [[ -n $cuda ]]; then
    summary "cuda ${cuda}s, recall@10 $(json_recall "$out" cuda);" \
      "$(grep -o '"speedup".*' "$out" | tr -d '{}"' | sed 's/,recall_gap_points:/x, recall gap in points at L=/')"
  else
    summary "cuda: not run ($(grep -m1 'skipping cuda' "$out" | sed 's/.*skipping cuda: //'))"
  fi
  return "$status"
}

# ---- run: e2e --------------------------------------------------------------------------------

e2e_dir() { echo "${VS_KIT_WORK:-/tmp/vskit-work}/e2e"; }

# AS_PG: the prefix that runs a command as the unprivileged user vskit (PostgreSQL refuses root).
pg_user() {
  AS_PG=()
  ((EUID == 0)) || return 0
  if ! id vskit >/dev/null 2>&1; then
    useradd --system --no-create-home --home-dir /nonexistent --shell /bin/false vskit 2>/dev/null || {
      echo "vskit:x:7432:7432:vectorscale kit:/nonexistent:/bin/false" >>/etc/passwd
      echo "vskit:x:7432:" >>/etc/group
    }
  fi
  if command -v setpriv >/dev/null; then
    AS_PG=(setpriv --reuid="$(id -u vskit)" --regid="$(id -g vskit)" --clear-groups --)
  elif command -v runuser >/dev/null; then
    AS_PG=(runuser -u vskit --)
  else
    # shellcheck disable=SC2016 # expanded by the user's shell
    AS_PG=(su -s /bin/sh vskit -c 'exec "$0" "$@"')
  fi
}

pg_bin() { echo "$VS_KIT_ROOT/pg$(sed -n 's/^pg_bindir: //p' "$VS_KIT_ROOT/MANIFEST")"; }

as_pg() { (cd "$(e2e_dir)" && "${AS_PG[@]}" env LD_LIBRARY_PATH="$KIT_LD" TZ=GMT LC_ALL=C "$@"); }

sql() {
  LD_LIBRARY_PATH=$KIT_LD TZ=GMT LC_ALL=C "$(pg_bin)/psql" -X -q -At -v ON_ERROR_STOP=1 -h "$(e2e_dir)/pg" \
    -p 54329 -U postgres -d postgres "$@"
}

# Starts gpu_builder with backend $1 on a loopback port; BUILDER_ENDPOINT, or 1 if it exits.
start_builder() {
  local dir backend=$1 pid i
  dir=$(e2e_dir)
  : >"$dir/builder.out"
  LD_LIBRARY_PATH=$KIT_LD "$VS_KIT_ROOT/bin/gpu_builder" --listen 127.0.0.1:0 --backend "$backend" \
    --threads "$(nproc)" >"$dir/builder.out" 2>"$dir/builder.err" &
  pid=$!
  echo "$pid" >"$dir/builder.pid"
  for ((i = 0; i < 600; i++)); do
    if grep -q '^listening on ' "$dir/builder.out"; then
      BUILDER_ENDPOINT=$(sed -n 's/^listening on //p;T;q' "$dir/builder.out")
      head -5 "$dir/builder.err"
      return 0
    fi
    if ! kill -0 "$pid" 2>/dev/null; then
      echo "gpu_builder --backend $backend exited: $(cat "$dir/builder.err")"
      rm -f "$dir/builder.pid"
      return 1
    fi
    sleep 0.1
  done
  echo "gpu_builder --backend $backend did not listen within 60 s"
  return 1
}

stop_builder() {
  local dir pid i
  dir=$(e2e_dir)
  [[ -f $dir/builder.pid ]] || return 0
  pid=$(cat "$dir/builder.pid")
  kill "$pid" 2>/dev/null || true
  for ((i = 0; i < 150; i++)); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
  kill -9 "$pid" 2>/dev/null || true
  rm -f "$dir/builder.pid"
}

stop_pg() {
  local dir
  dir=$(e2e_dir)
  [[ -f $dir/pg/data/postmaster.pid ]] || return 0
  pg_user
  as_pg "$(pg_bin)/pg_ctl" -D "$dir/pg/data" -m fast -w -t 30 stop >/dev/null 2>&1 ||
    as_pg "$(pg_bin)/pg_ctl" -D "$dir/pg/data" -m immediate stop >/dev/null 2>&1 || true
}

# After the step, also when it failed or was stopped: stop both, show their logs.
e2e_cleanup() {
  local dir
  dir=$(e2e_dir)
  stop_builder
  stop_pg
  if [[ -f $dir/builder.err ]]; then
    note "gpu_builder's log"
    cat "$dir/builder.err"
  fi
  if [[ -f $dir/pg/server.log ]]; then
    note "PostgreSQL's log (last 40 lines)"
    tail -40 "$dir/pg/server.log"
  fi
}

# CREATE INDEX through the builder ($1 = builder) or locally ($1 = local), then who built it,
# the pages checked, and recall@10 of 10-NN queries against the exact answers (truth).
e2e_build() {
  local mode=$1 set
  case $mode in
    builder) set="SET diskann.builder_endpoint = '$BUILDER_ENDPOINT'; SET diskann.builder_fallback = off;" ;;
    local) set="SET diskann.build_threads = $(nproc);" ;;
  esac
  note "CREATE INDEX, $mode"
  sql <<SQL
DROP INDEX IF EXISTS items_idx;
CHECKPOINT;
$set
SELECT clock_timestamp() AS t0 \gset
CREATE INDEX items_idx ON items USING diskann (embedding vector_cosine_ops);
SELECT format('$mode: create_index_seconds=%s',
              round(extract(epoch FROM clock_timestamp() - :'t0'::timestamptz)::numeric, 2));
RESET diskann.builder_endpoint;
SELECT format('$mode: built_by=%s backend=%s builder_id=%s nodes=%s index_mib=%s', built_by, build_backend,
              coalesce(nullif(builder_id, ''), '-'), nodes, round(pg_relation_size('items_idx') / 1048576.0, 1))
  FROM diskann_index_info('items_idx');
SELECT diskann_validate_index('items_idx');
SELECT '$mode: validate=ok';
SET enable_seqscan = off;
EXPLAIN (COSTS OFF) SELECT (SELECT count(*) FROM (SELECT i.id FROM items i ORDER BY i.embedding <=> q.embedding
                                                    LIMIT 10) nn) FROM queries q;
SET diskann.query_rescore = 50;
SET diskann.query_search_list_size = 40;
SELECT format('$mode: recall@10 L=40 %s (%s queries)', round(avg(hits) / 10, 4), count(*))
  FROM (SELECT (SELECT count(*) FROM (SELECT i.id FROM items i ORDER BY i.embedding <=> q.embedding LIMIT 10) nn
                 WHERE nn.id = ANY (t.ids)) AS hits
          FROM queries q JOIN truth t USING (id)) s;
SET diskann.query_search_list_size = 100;
SELECT clock_timestamp() AS t1 \gset
SELECT format('$mode: recall@10 L=100 %s (%s queries)', round(avg(hits) / 10, 4), count(*))
  FROM (SELECT (SELECT count(*) FROM (SELECT i.id FROM items i ORDER BY i.embedding <=> q.embedding LIMIT 10) nn
                 WHERE nn.id = ANY (t.ids)) AS hits
          FROM queries q JOIN truth t USING (id)) s;
SELECT format('$mode: query_ms_at_L100=%s',
              round(extract(epoch FROM clock_timestamp() - :'t1'::timestamptz)::numeric * 1000 / count(*), 2))
  FROM queries;
SQL
}

step_e2e() {
  local n=${VS_KIT_E2E_N:-100000} dims=${VS_KIT_BENCH_DIMS:-768} q=${VS_KIT_E2E_QUERIES:-100}
  local dir data pgbin backend=cuda t0 out=$STATE/e2e.sql
  dir=$(e2e_dir)
  data=$dir/data
  pgbin=$(pg_bin)
  trap 'exit 143' TERM
  trap e2e_cleanup EXIT
  rm -rf "$dir"
  mkdir -p "$data" "$dir/pg"
  chmod 755 "$(dirname "$dir")" "$dir" "$data"

  note "data: gpu_build_bench --write ($n x $dims, cosine, $q queries and their exact top 10)"
  LD_LIBRARY_PATH=$GPU_LD "$VS_KIT_ROOT/bin/gpu_build_bench" --n "$n" --dims "$dims" --queries "$q" --metric cosine \
    --threads "$(nproc)" --write "$data/e2e"
  "$VS_KIT_ROOT/bin/vskit-fvecs2pg" vectors "$data/e2e.base.fvecs" "$data/items.copy"
  "$VS_KIT_ROOT/bin/vskit-fvecs2pg" vectors "$data/e2e.query.fvecs" "$data/queries.copy"
  "$VS_KIT_ROOT/bin/vskit-fvecs2pg" ids "$data/e2e.gt.ivecs" "$data/truth.tsv"
  rm -f "$data"/e2e.*.fvecs
  chmod a+r "$data"/*

  note "PostgreSQL: initdb and start as vskit (sockets in $dir/pg, no TCP)"
  pg_user
  ((${#AS_PG[@]} == 0)) || chown "$(id -u vskit):$(id -g vskit)" "$dir/pg"
  echo "as: ${AS_PG[*]:-(this user)}"
  as_pg "$pgbin/initdb" -D "$dir/pg/data" -A trust -U postgres --no-locale -E UTF8 >/dev/null
  # One line: pg_ctl pastes the options into a shell command line.
  local opts="-c listen_addresses='' -k $dir/pg -p 54329 -c shared_buffers=1GB -c maintenance_work_mem=8GB"
  opts+=" -c max_wal_size=16GB -c max_parallel_workers_per_gather=0 -c jit=off -c timezone=GMT -c log_timezone=GMT"
  as_pg "$pgbin/pg_ctl" -D "$dir/pg/data" -l "$dir/pg/server.log" -w -t 120 -o "$opts" start >/dev/null
  sql -c "SELECT version()"

  note "gpu_builder on 127.0.0.1"
  if ! start_builder cuda; then
    backend=cpu
    echo "NOTE: no usable CUDA backend here: gpu_builder --backend cpu instead (the plumbing only, no GPU figure)"
    start_builder cpu || return 1
  fi
  echo "builder: $BUILDER_ENDPOINT (--backend $backend)"

  note "load (binary COPY, server side)"
  t0=$EPOCHREALTIME
  sql <<SQL
CREATE EXTENSION vectorscale CASCADE;
CREATE TABLE items (id int, embedding vector($dims));
CREATE TABLE queries (id int, embedding vector($dims));
CREATE TABLE truth (id int, ids int[]);
COPY items FROM '$data/items.copy' (FORMAT binary);
COPY queries FROM '$data/queries.copy' (FORMAT binary);
COPY truth FROM '$data/truth.tsv';
VACUUM ANALYZE items;
SELECT format('loaded %s rows (%s MiB with TOAST)', count(*), round(pg_total_relation_size('items') / 1048576.0))
  FROM items;
SQL
  awk -v a="$t0" -v b="$EPOCHREALTIME" 'BEGIN {printf "loaded in %.1fs\n", b - a}' | tee "$out"
  summary "$n x $dims cosine, $(tail -1 "$out"), gpu_builder --backend $backend"

  local modes=builder status=0
  [[ ${VS_KIT_E2E_LOCAL:-1} == 0 ]] || modes="builder local"
  local m
  for m in $modes; do
    e2e_build "$m" | tee -a "$out" || { summary "$m: FAILED (e2e.log has the error)"; status=1; }
  done
  for m in $modes; do
    summary "$m: $(grep "^$m: create_index_seconds=" "$out" | cut -d= -f2)s," \
      "$(grep "^$m: built_by=" "$out" | sed 's/^[a-z]*: //; s/ builder_id=.*//'), $(grep -c "^$m: validate=ok" "$out") validated," \
      "recall@10 $(grep "^$m: recall@10 L=100" "$out" | awk '{print $4}') at L=100," \
      "$(grep "^$m: recall@10 L=40" "$out" | awk '{print $4}') at L=40"
  done
  # Where the build through gpu_builder spent its time: the extension's LOG line, the builder's.
  local phases
  phases=$(grep -o 'built through builder.*' "$dir/pg/server.log" 2>/dev/null | tail -1 | grep -o '([^()]*)$' |
    tr -d '()' || true)
  [[ -z $phases ]] || summary "builder: $phases"
  phases=$(grep '^build client=' "$dir/builder.err" 2>/dev/null | tail -1 | grep -o 'queue_s=.* write_s=[0-9.]*' || true)
  [[ -z $phases ]] || summary "gpu_builder: $phases"
  if [[ $modes == *local* ]]; then
    summary "CREATE INDEX speed-up through gpu_builder ($backend): $(awk '/^local: create_index_seconds=/ {split($2, a, "="); l = a[2]}
      /^builder: create_index_seconds=/ {split($2, a, "="); b = a[2]} END {if (b > 0) printf "%.2fx", l / b}' "$out")"
  fi
  return "$status"
}

# ---- run: the driver -------------------------------------------------------------------------

declare -A budget=([core]=60 [gpu]=150 [sanitize]=170 [bench]=220 [bench-full]=590 [e2e]=200)
# The acceptance's figures first (gpu tests, builder and CREATE INDEX times); sanitize last,
# where the run's deadline may cut it short (then: `run sanitize` in a call of its own).
steps_default=(core gpu bench e2e sanitize)

run_step() {
  local name=$1 t left rc=0 started=$SECONDS outcome
  left=$((deadline - (SECONDS - run_start) - 10))
  t=${VS_KIT_TIMEOUT:-${budget[$name]}}
  ((t > left)) && t=$left
  if ((t < 30)); then
    echo "$name: SKIPPED (the run's deadline: ${left}s left; run it in another call)" >>"$STATE/summary"
    return 0
  fi
  note "step $name (timeout ${t}s)"
  STEP_TIMEOUT=$t timeout -k 15 "$t" bash "$self" __step "$name" 2>&1 | tee "$OUT/$name.log" || rc=${PIPESTATUS[0]}
  [[ $name == e2e ]] && e2e_cleanup >/dev/null 2>&1
  case $rc in
    0) outcome=ok ;;
    124 | 137) outcome="TIMEOUT after ${t}s" ;;
    *) outcome="FAILED (exit $rc)" ;;
  esac
  echo "$name: $outcome, $((SECONDS - started))s; $(awk 'NR > 1 {printf "; "} {printf "%s", $0}' "$STATE/$name.summary" \
    2>/dev/null)" >>"$STATE/summary"
}

run() {
  local step
  run_start=$SECONDS
  deadline=${VS_KIT_DEADLINE:-570}
  OUT=${OUT:-/tmp/gpukit-out}
  VS_KIT_ROOT=${VS_KIT_ROOT:-/tmp/vskit}
  VS_KIT_WORK=${VS_KIT_WORK:-/tmp/vskit-work}
  STATE=$VS_KIT_WORK/state
  export OUT VS_KIT_ROOT VS_KIT_WORK STATE
  local steps=("$@")
  ((${#steps[@]})) || steps=("${steps_default[@]}")
  for step in "${steps[@]}"; do
    [[ -n ${budget[$step]:-} ]] || die "unknown step $step (steps: ${!budget[*]})"
  done
  mkdir -p "$OUT" "$VS_KIT_WORK"
  rm -rf "$STATE"
  mkdir -p "$STATE"
  # Unpacked where programs may run (a /tmp mounted noexec: the next folder).
  local root rc
  for root in "$VS_KIT_ROOT" /var/tmp/vskit /opt/vskit; do
    unpack "${VS_KIT_DIR:-$here/.gpukit}" "$root"
    rc=0
    "$root/bin/vskit-fvecs2pg" >/dev/null 2>&1 || rc=$?
    ((rc == 2)) && break  # its usage message: it runs
    echo "gpu-kit: programs in $root do not run (exit $rc; mounted noexec?)"
  done
  ((rc == 2)) || die "no folder to unpack the kit into where programs run"
  VS_KIT_ROOT=$root
  library_path "$VS_KIT_ROOT"
  info 2>&1 | tee "$OUT/info.log"
  echo "unpacked and checked in $((SECONDS - run_start))s" | tee -a "$OUT/info.log"
  for step in "${steps[@]}"; do
    run_step "$step"
  done
  note "summary ($((SECONDS - run_start))s)"
  tee "$OUT/summary.txt" <"$STATE/summary"
}

case ${1:-} in
  pack) shift; pack "$@" ;;
  check) shift; check "$@" ;;
  run) shift; run "$@" ;;
  __step)
    STEP=$2
    STEP_END=$((SECONDS + STEP_TIMEOUT))
    "step_${STEP//-/_}" ;;
  *) sed -n '2,/^set -euo/p' "$0" | sed '$d; s/^# \{0,1\}//' >&2; exit 2 ;;
esac
