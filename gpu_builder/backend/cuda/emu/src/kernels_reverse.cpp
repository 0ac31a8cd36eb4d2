// src/reverse.cu compiled by the host compiler for the CUDA emulator
// (its definitions first).
#include "vectorscale/cuda/emu/device.hpp"

#include "reverse.cu"
