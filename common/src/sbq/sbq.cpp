#include "vectorscale/sbq/sbq.hpp"

#include <algorithm>
#include <cmath>
#include <cstring>
#include <vector>

#include "vectorscale/core/error.hpp"
#include "vectorscale/core/threads.hpp"

namespace vs::sbq {

Trainer::Trainer(std::size_t dims, std::uint32_t bits) : dims_(dims), bits_(bits), mean_(dims), m2_(dims) {
  VS_EXPECTS(dims >= 1 && dims <= kMaxDims, "SBQ supports 1 to %u dimensions, not %zu", kMaxDims, dims);
  VS_EXPECTS(bits >= 1 && bits <= kMaxBitsPerDim, "SBQ supports 1 to %u bits per dimension, not %u",
             kMaxBitsPerDim, bits);
}

// Adds one vector (Welford's update keeps the variance numerically stable).
void Trainer::add(const float* v) {
  ++count_;
  const double inv_n = 1.0 / static_cast<double>(count_);
  for (std::size_t d = 0; d < dims_; ++d) {
    const double x = v[d];
    VS_EXPECTS(std::isfinite(x), "vector component %zu is not finite", d);
    const double delta = x - mean_[d];
    mean_[d] += delta * inv_n;
    m2_[d] += delta * (x - mean_[d]);
  }
}

void Trainer::merge(const Trainer& other) {
  VS_EXPECTS(other.dims_ == dims_ && other.bits_ == bits_, "merging trainers of different shapes");
  if (other.count_ == 0) return;
  if (count_ == 0) {
    *this = other;
    return;
  }
  const double na = static_cast<double>(count_), nb = static_cast<double>(other.count_), n = na + nb;
  for (std::size_t d = 0; d < dims_; ++d) {
    const double delta = other.mean_[d] - mean_[d];
    mean_[d] += delta * (nb / n);
    m2_[d] += other.m2_[d] + delta * delta * (na * nb / n);
  }
  count_ += other.count_;
}

// Mean, then the population standard deviation when more than one bit is used.
std::vector<float> Trainer::finish() const {
  std::vector<float> out(stream_length(dims_, bits_));
  for (std::size_t d = 0; d < dims_; ++d) out[d] = static_cast<float>(mean_[d]);
  if (bits_ > 1) {
    for (std::size_t d = 0; d < dims_; ++d)
      out[dims_ + d] = count_ > 0 ? static_cast<float>(std::sqrt(m2_[d] / static_cast<double>(count_))) : 0.0f;
  }
  return out;
}

Quantizer::Quantizer(std::size_t dims, std::uint32_t bits, std::span<const float> stream)
    : dims_(dims), bits_(bits) {
  VS_EXPECTS(dims >= 1 && dims <= kMaxDims, "SBQ supports 1 to %u dimensions, not %zu", kMaxDims, dims);
  VS_EXPECTS(bits >= 1 && bits <= kMaxBitsPerDim, "SBQ supports 1 to %u bits per dimension, not %u",
             kMaxBitsPerDim, bits);
  const std::size_t expect = stream_length(dims, bits);
  VS_EXPECTS(stream.size() == expect, "quantizer stream has %zu values, expected %zu", stream.size(), expect);
  mean_.assign(stream.begin(), stream.begin() + static_cast<std::ptrdiff_t>(dims));
  if (bits > 1) {
    stddev_.assign(stream.begin() + static_cast<std::ptrdiff_t>(dims), stream.end());
    inv_stddev_.resize(dims);
    for (std::size_t d = 0; d < dims; ++d) {
      VS_EXPECTS(std::isfinite(stddev_[d]) && stddev_[d] >= 0.0f, "bad standard deviation for dimension %zu", d);
      // A constant dimension has z = 0 for every vector: all codes agree there.
      inv_stddev_[d] = stddev_[d] > 0.0f ? 1.0f / stddev_[d] : 0.0f;
    }
  }
  for (std::size_t d = 0; d < dims; ++d) VS_EXPECTS(std::isfinite(mean_[d]), "bad mean for dimension %zu", d);
}

Quantizer Quantizer::train(const float* vectors, std::size_t n, std::size_t dims, std::uint32_t bits,
                           std::size_t threads) {
  // Contiguous groups of rows, as many as n allows (at least kTrainBlockRows rows each) up to
  // kTrainGroups: fixed by n alone.
  const std::size_t groups = std::min(kTrainGroups, std::max<std::size_t>(1, n / kTrainBlockRows));
  std::vector<Trainer> parts(groups, Trainer(dims, bits));
  const std::size_t workers = std::max<std::size_t>(1, std::min(threads, groups));
  run_workers(workers, [&](std::size_t w) {
    for (std::size_t g = w; g < groups; g += workers)
      for (std::size_t i = n * g / groups; i < n * (g + 1) / groups; ++i) parts[g].add(vectors + i * dims);
  });
  Trainer t(dims, bits);
  for (const Trainer& part : parts) t.merge(part);
  return Quantizer(dims, bits, t.finish());
}

std::vector<float> Quantizer::stream() const {
  std::vector<float> out(mean_);
  out.insert(out.end(), stddev_.begin(), stddev_.end());
  return out;
}

// Encodes one vector. The 1-bit path packs 64 comparisons per word; the b-bit path writes a
// thermometer code per dimension.
void Quantizer::encode(const float* v, std::uint64_t* out) const noexcept {
  const std::size_t nwords = words();
  std::memset(out, 0, nwords * sizeof(std::uint64_t));
  if (bits_ == 1) {
    for (std::size_t d = 0; d < dims_; ++d)
      if (v[d] > mean_[d]) out[d >> 6] |= std::uint64_t{1} << (d & 63);
    return;
  }
  const float buckets = static_cast<float>(bits_ + 1);
  const float scale = buckets / 4.0f;  // bucket = floor((z + 2) / (4 / (b + 1)))
  for (std::size_t d = 0; d < dims_; ++d) {
    const float z = (v[d] - mean_[d]) * inv_stddev_[d];
    float kf = std::floor((z + 2.0f) * scale);
    if (!(kf > 0.0f)) kf = 0.0f;  // also maps NaN to bucket 0
    if (kf > static_cast<float>(bits_)) kf = static_cast<float>(bits_);
    const auto k = static_cast<std::uint32_t>(kf);
    std::size_t bit = d * bits_;
    for (std::uint32_t j = 0; j < k; ++j, ++bit) out[bit >> 6] |= std::uint64_t{1} << (bit & 63);
  }
}

}  // namespace vs::sbq
