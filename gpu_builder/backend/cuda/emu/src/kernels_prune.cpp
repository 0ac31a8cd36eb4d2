// src/prune.cu compiled by the host compiler for the CUDA emulator
// (its definitions first).
#include "vectorscale/cuda/emu/device.hpp"

#include "prune.cu"
