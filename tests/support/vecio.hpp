// Readers for the TexMex .fvecs / .ivecs files of ../shared/data (little-endian: int32 dim, then dim values).
#pragma once
#include <cstdint>
#include <cstdio>
#include <stdexcept>
#include <string>
#include <vector>

namespace vs::test {

/** Rows of a .fvecs / .ivecs file, row-major, with their common dimension. */
template <class T>
struct VecFile {
  std::size_t rows = 0;
  std::size_t dims = 0;
  std::vector<T> data;
};

/** Reads a whole .fvecs (T = float) or .ivecs (T = int32_t) file; throws on malformed input. */
template <class T>
VecFile<T> read_vecs(const std::string& path, std::size_t max_rows = static_cast<std::size_t>(-1)) {
  static_assert(sizeof(T) == 4);
  std::FILE* f = std::fopen(path.c_str(), "rb");
  if (f == nullptr) throw std::runtime_error("cannot open " + path);
  VecFile<T> out;
  std::int32_t dim = 0;
  while (out.rows < max_rows && std::fread(&dim, 4, 1, f) == 1) {
    if (dim <= 0 || (out.dims != 0 && static_cast<std::size_t>(dim) != out.dims)) {
      std::fclose(f);
      throw std::runtime_error("bad row dimension in " + path);
    }
    out.dims = static_cast<std::size_t>(dim);
    const std::size_t at = out.data.size();
    out.data.resize(at + out.dims);
    if (std::fread(out.data.data() + at, 4, out.dims, f) != out.dims) {
      std::fclose(f);
      throw std::runtime_error("truncated row in " + path);
    }
    ++out.rows;
  }
  std::fclose(f);
  return out;
}

}  // namespace vs::test
