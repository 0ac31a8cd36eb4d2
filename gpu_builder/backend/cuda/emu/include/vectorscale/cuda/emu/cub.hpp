/**
 * @file cub.hpp
 * @brief The CUDA emulator's versions of the CUB device-wide calls the backend makes, with
 *        CUB's signatures and protocol: a call with null temporary storage only reports the
 *        bytes it needs; a call with less than that fails (cudaErrorInvalidValue) instead of
 *        working, so a caller that sizes its storage for fewer items than it passes is caught.
 *        Results are CUB's (the sorts are stable, as CUB's radix sort is).
 */
#pragma once

#include <cuda_runtime_api.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <iterator>
#include <numeric>
#include <type_traits>
#include <vector>

namespace cub {

namespace emu_detail {

// Storage the emulated call asks for: some fixed bytes plus `per_item` per item, like CUB's.
inline cudaError_t temp_protocol(void* temp, std::size_t& bytes, std::int64_t items, std::size_t per_item) {
  if (items < 0) return cudaErrorInvalidValue;
  const std::size_t need = 256 + static_cast<std::size_t>(items) * per_item;
  if (temp == nullptr) {
    bytes = need;
    return cudaSuccess;
  }
  return bytes < need ? cudaErrorInvalidValue : cudaSuccess;
}

}  // namespace emu_detail

struct DeviceRadixSort {
  /** Stable sort of (key, value) pairs by the key bits [begin_bit, end_bit). */
  template <class K, class V, class N>
  static cudaError_t SortPairs(void* temp, std::size_t& bytes, const K* keys_in, K* keys_out, const V* values_in,
                               V* values_out, N num_items, int begin_bit = 0, int end_bit = sizeof(K) * 8,
                               cudaStream_t stream = nullptr) {
    static_assert(std::is_unsigned_v<K>, "the backend sorts unsigned keys");
    (void)stream;
    const auto n = static_cast<std::int64_t>(num_items);
    if (begin_bit < 0 || end_bit > static_cast<int>(sizeof(K) * 8) || begin_bit >= end_bit)
      return cudaErrorInvalidValue;
    const cudaError_t st = emu_detail::temp_protocol(temp, bytes, n, sizeof(K) + sizeof(V));
    if (st != cudaSuccess || temp == nullptr || n == 0) return st;
    const int width = end_bit - begin_bit;
    const K mask = width >= static_cast<int>(sizeof(K) * 8) ? ~K{0} : static_cast<K>((K{1} << width) - 1);
    auto digit = [&](K k) { return static_cast<K>(k >> begin_bit) & mask; };
    std::vector<std::size_t> idx(static_cast<std::size_t>(n));
    std::iota(idx.begin(), idx.end(), std::size_t{0});
    std::stable_sort(idx.begin(), idx.end(),
                     [&](std::size_t a, std::size_t b) { return digit(keys_in[a]) < digit(keys_in[b]); });
    std::vector<K> k(idx.size());
    std::vector<V> v(idx.size());
    for (std::size_t i = 0; i < idx.size(); ++i) k[i] = keys_in[idx[i]], v[i] = values_in[idx[i]];
    std::copy(k.begin(), k.end(), keys_out);
    std::copy(v.begin(), v.end(), values_out);
    return cudaSuccess;
  }
};

struct DeviceRunLengthEncode {
  /** Runs of equal consecutive items: their values, lengths and number (*num_runs_out). */
  template <class In, class Unique, class Lengths, class Runs, class N>
  static cudaError_t Encode(void* temp, std::size_t& bytes, In in, Unique unique_out, Lengths lengths_out,
                            Runs num_runs_out, N num_items, cudaStream_t stream = nullptr) {
    (void)stream;
    const auto n = static_cast<std::int64_t>(num_items);
    const cudaError_t st = emu_detail::temp_protocol(temp, bytes, n, 0);
    if (st != cudaSuccess || temp == nullptr) return st;
    std::int64_t runs = 0;
    for (std::int64_t i = 0; i < n;) {
      std::int64_t j = i + 1;
      while (j < n && in[j] == in[i]) ++j;
      unique_out[runs] = in[i];
      lengths_out[runs] = static_cast<std::remove_reference_t<decltype(lengths_out[0])>>(j - i);
      ++runs;
      i = j;
    }
    *num_runs_out = static_cast<std::remove_reference_t<decltype(*num_runs_out)>>(runs);
    return cudaSuccess;
  }
};

struct DeviceScan {
  /** out[i] = sum of in[0..i). */
  template <class In, class Out, class N>
  static cudaError_t ExclusiveSum(void* temp, std::size_t& bytes, In in, Out out, N num_items,
                                  cudaStream_t stream = nullptr) {
    (void)stream;
    const auto n = static_cast<std::int64_t>(num_items);
    const cudaError_t st = emu_detail::temp_protocol(temp, bytes, n, 0);
    if (st != cudaSuccess || temp == nullptr) return st;
    using T = std::remove_cv_t<std::remove_reference_t<decltype(in[0])>>;
    T sum{};
    for (std::int64_t i = 0; i < n; ++i) {
      const T v = in[i];  // in and out may be the same array
      out[i] = sum;
      sum = static_cast<T>(sum + v);
    }
    return cudaSuccess;
  }
};

struct DeviceReduce {
  /** *out = op(...op(op(init, in[0]), in[1])..., in[n-1]). */
  template <class In, class Out, class Op, class T, class N>
  static cudaError_t Reduce(void* temp, std::size_t& bytes, In in, Out out, N num_items, Op op, T init,
                            cudaStream_t stream = nullptr) {
    (void)stream;
    const auto n = static_cast<std::int64_t>(num_items);
    const cudaError_t st = emu_detail::temp_protocol(temp, bytes, n, 0);
    if (st != cudaSuccess || temp == nullptr) return st;
    T acc = init;
    for (std::int64_t i = 0; i < n; ++i) acc = op(acc, in[i]);
    *out = acc;
    return cudaSuccess;
  }
};

}  // namespace cub
