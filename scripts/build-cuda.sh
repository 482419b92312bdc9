#!/usr/bin/env bash
# Build latentflow with --features cuda on a machine WITHOUT a GPU or a CUDA toolkit, using
# NVIDIA's pip wheels for nvcc, headers and libraries and a generated libcuda.so stub, so
# that the binary can be carried to a GPU machine (which needs a driver for CUDA >= 13.4 and
# the runtime libraries: the same wheels on LD_LIBRARY_PATH serve). Takes ~20 minutes on 2
# cores; the venv is ~1.2 GB, the target ~1.4 GB. Not needed for the CPU build or the tests.
# Usage: scripts/build-cuda.sh [REPO_DIR=.] [WORK_DIR=~/.cache/latentflow-cuda]
set -euo pipefail
REPO=${1:-.}
WORK=${2:-$HOME/.cache/latentflow-cuda}
VENV=$WORK/venv

# 1. CUDA 13.4 toolkit pieces from PyPI. cudarc 0.19.10 knows CUDA <= 13.4 only,
#    and picks the version from `nvcc --version` (candle enables cuda-version-from-build-system),
#    so do NOT take the latest 13.5 wheels (or set CUDARC_CUDA_VERSION=13040).
[ -x "$VENV/bin/python" ] || python3 -m venv "$VENV"
"$VENV/bin/pip" install -q 'cuda-toolkit[nvcc,cudart,cublas,curand,nvrtc,cccl]==13.4.3'
#   -> nvidia-cuda-nvcc 13.4.92, nvidia-cuda-crt 13.4.92, nvidia-nvvm 13.4.92,
#      nvidia-cuda-runtime 13.4.92, nvidia-cuda-nvrtc 13.4.92, nvidia-cublas 13.8.0.4,
#      nvidia-curand 10.4.4.72, nvidia-cuda-cccl 13.3.4.3.1
CU=$("$VENV/bin/python" -c 'import os,nvidia; print(os.path.join(list(nvidia.__path__)[0],"cu13"))')

# 2. The wheels ship only versioned sonames; the linker needs the unversioned names.
pushd "$CU/lib" >/dev/null
for l in cudart.so.13 cublas.so.13 cublasLt.so.13 curand.so.10 nvrtc.so.13; do
  ln -sf "lib$l" "lib${l%.so.*}.so"
done
popd >/dev/null

# 3. libcuda (the driver) is not on PyPI. cudarc is built with `dynamic-linking`, so the
#    linker needs a libcuda.so: generate a stub (soname libcuda.so.1) exporting every
#    cu* entry point from cudarc's driver bindings. At run time the real driver's
#    libcuda.so.1 is used; the stub must never be shipped / put on LD_LIBRARY_PATH.
mkdir -p "$CU/lib/stubs"
(cd "$REPO" && cargo fetch --locked -q)   # cudarc's sources, which list the entry points
SYS=$(ls -d "${CARGO_HOME:-$HOME/.cargo}"/registry/src/*/cudarc-0.19.10/src/driver/sys/mod.rs | head -1)
grep -oE '^pub unsafe fn cu[A-Za-z0-9_]+' "$SYS" | awk '{print $4}' | sort -u \
  | awk '{printf "int %s(void){return 999;}\n",$1}' > "$CU/lib/stubs/libcuda_stub.c"
gcc -shared -fPIC -O0 -Wl,-soname,libcuda.so.1 -o "$CU/lib/stubs/libcuda.so" "$CU/lib/stubs/libcuda_stub.c"

# 4. Environment read by cudarc (link search: $CUDA_HOME/lib, lib/stubs; version via nvcc)
#    and cudaforge/candle-kernels (nvcc from PATH, CUDA_COMPUTE_CAP since no nvidia-smi).
export PATH="$CU/bin:$PATH"
export CUDA_HOME="$CU" CUDA_PATH="$CU" CUDA_ROOT="$CU"
export CUDA_COMPUTE_CAP=${CUDA_COMPUTE_CAP:-90}     # 90 = H100/H200
export CARGO_TARGET_DIR=${CARGO_TARGET_DIR:-$WORK/target}
nvcc --version | tail -2

REPO=$(cd "$REPO" && pwd); cd "$REPO"
time nice -n 10 cargo build --release --features cuda
BIN=$CARGO_TARGET_DIR/release/latentflow
ls -l "$BIN"
echo "--- ldd without CUDA libs on the path:"; ldd "$BIN" | grep -E 'not found|cuda|cublas|curand|nvrtc' || true
echo "--- ldd with the pip CUDA libs on the path (libcuda.so.1 must come from the driver):"
LD_LIBRARY_PATH="$CU/lib" ldd "$BIN" | grep -E 'not found|cuda|cublas|curand|nvrtc' || true
