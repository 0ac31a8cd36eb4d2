// SBQ: training statistics, encoding against a slow bit-by-bit reference, stream round trips.
#include <gtest/gtest.h>

#include <cmath>
#include <tuple>

#include "synthetic.hpp"
#include "vectorscale/core/error.hpp"
#include "vectorscale/distance/distance.hpp"
#include "vectorscale/sbq/sbq.hpp"

namespace {

using vs::sbq::Quantizer;

// The specification, written as directly as possible: bucket of the z-score over b+1 equal
// buckets of [-2, 2], thermometer code, bit (d*b + j).
std::vector<std::uint64_t> reference_encode(const std::vector<float>& v, const std::vector<double>& mean,
                                            const std::vector<double>& sd, unsigned bits) {
  const std::size_t dims = v.size();
  std::vector<std::uint64_t> out((dims * bits + 63) / 64, 0);
  for (std::size_t d = 0; d < dims; ++d) {
    unsigned k;
    if (bits == 1) {
      k = v[d] > static_cast<float>(mean[d]) ? 1 : 0;
    } else {
      const double z = sd[d] > 0 ? (v[d] - mean[d]) / sd[d] : 0.0;
      const double width = 4.0 / (bits + 1);
      double b = std::floor((z + 2.0) / width);
      b = std::clamp(b, 0.0, static_cast<double>(bits));
      k = static_cast<unsigned>(b);
    }
    for (unsigned j = 0; j < k; ++j) {
      const std::size_t bit = d * bits + j;
      out[bit / 64] |= std::uint64_t{1} << (bit % 64);
    }
  }
  return out;
}

void reference_stats(const std::vector<float>& data, std::size_t n, std::size_t dims, std::vector<double>& mean,
                     std::vector<double>& sd) {
  mean.assign(dims, 0.0);
  sd.assign(dims, 0.0);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t d = 0; d < dims; ++d) mean[d] += data[i * dims + d];
  for (auto& m : mean) m /= static_cast<double>(n);
  for (std::size_t i = 0; i < n; ++i)
    for (std::size_t d = 0; d < dims; ++d) sd[d] += (data[i * dims + d] - mean[d]) * (data[i * dims + d] - mean[d]);
  for (auto& s : sd) s = std::sqrt(s / static_cast<double>(n));
}

TEST(Sbq, DefaultBitsRuleMatchesPgvectorscale) {
  EXPECT_EQ(vs::sbq::default_bits_per_dim(1), 2u);
  EXPECT_EQ(vs::sbq::default_bits_per_dim(784), 2u);
  EXPECT_EQ(vs::sbq::default_bits_per_dim(899), 2u);
  EXPECT_EQ(vs::sbq::default_bits_per_dim(900), 1u);
  EXPECT_EQ(vs::sbq::default_bits_per_dim(1536), 1u);
  EXPECT_EQ(vs::sbq::code_words(64, 1), 1u);
  EXPECT_EQ(vs::sbq::code_words(65, 1), 2u);
  EXPECT_EQ(vs::sbq::code_words(784, 2), 25u);
}

class SbqEncode : public ::testing::TestWithParam<std::tuple<std::size_t, unsigned>> {};

TEST_P(SbqEncode, MatchesReferenceAndStatistics) {
  const auto [dims, bits] = GetParam();
  const std::size_t n = 300;
  auto data = vs::test::clustered(n, dims, 5, 1000 + dims * 10 + bits, 1.0f);
  for (std::size_t i = 0; i < n; ++i) data[i * dims] = 3.5f;  // a constant dimension (sd = 0)
  const Quantizer q = Quantizer::train(data.data(), n, dims, bits);
  std::vector<double> mean, sd;
  reference_stats(data, n, dims, mean, sd);
  for (std::size_t d = 0; d < dims; ++d) {
    ASSERT_NEAR(q.mean()[d], mean[d], 1e-5 * (1 + std::abs(mean[d]))) << "dimension " << d;
    if (bits > 1) {
      ASSERT_NEAR(q.stddev()[d], sd[d], 1e-4 * (1 + sd[d])) << "dimension " << d;
    }
  }
  EXPECT_EQ(q.stddev().size(), bits > 1 ? dims : 0u);

  // Use the quantizer's own float statistics in the reference, so that values sitting exactly
  // on a bucket edge are judged the same way.
  std::vector<double> qmean(q.mean().begin(), q.mean().end());
  std::vector<double> qsd(dims, 0.0);
  if (bits > 1) qsd.assign(q.stddev().begin(), q.stddev().end());
  std::vector<std::uint64_t> code(q.words());
  for (std::size_t i = 0; i < n; ++i) {
    std::vector<float> v(data.begin() + static_cast<std::ptrdiff_t>(i * dims),
                         data.begin() + static_cast<std::ptrdiff_t>((i + 1) * dims));
    q.encode(v.data(), code.data());
    const auto want = reference_encode(v, qmean, qsd, bits);
    ASSERT_EQ(code, want) << "row " << i;
  }
}

INSTANTIATE_TEST_SUITE_P(DimsBits, SbqEncode,
                         ::testing::Combine(::testing::Values<std::size_t>(1, 7, 63, 64, 65, 784),
                                            ::testing::Values(1u, 2u, 3u, 4u, 8u)));

TEST(Sbq, ThermometerHammingIsBucketDistance) {
  // Two bits: buckets 0, 1, 2 per dimension; Hamming distance = sum of |bucket differences|.
  const std::size_t dims = 3;
  const std::vector<float> stream = {0, 0, 0, 1, 1, 1};  // mean 0, sd 1
  const Quantizer q(dims, 2, stream);
  const float a[] = {-1.9f, 0.0f, 1.9f};  // buckets 0, 1, 2
  const float b[] = {1.9f, 0.0f, -1.9f};  // buckets 2, 1, 0
  std::uint64_t ca = 0, cb = 0;
  q.encode(a, &ca);
  q.encode(b, &cb);
  EXPECT_EQ(ca, 0b110100u);  // dim0: 00, dim1: 01 (bit 2), dim2: 11 (bits 4,5)
  EXPECT_EQ(vs::distance::hamming(&ca, &cb, 1), 4u);
  const float far[] = {100.0f, -100.0f, std::nanf("")};  // clamped to bucket 2, 0; NaN to 0
  std::uint64_t cf = 0;
  q.encode(far, &cf);
  EXPECT_EQ(cf, 0b000011u);
}

TEST(Sbq, StreamRoundTripEncodesIdentically) {
  const std::size_t dims = 100, n = 200;
  const auto data = vs::test::clustered(n, dims, 4, 77);
  for (const unsigned bits : {1u, 2u}) {
    const Quantizer q = Quantizer::train(data.data(), n, dims, bits);
    const Quantizer r(dims, bits, q.stream());
    std::vector<std::uint64_t> c1(q.words()), c2(r.words());
    for (std::size_t i = 0; i < n; ++i) {
      q.encode(&data[i * dims], c1.data());
      r.encode(&data[i * dims], c2.data());
      ASSERT_EQ(c1, c2);
    }
    EXPECT_EQ(q.stream().size(), bits > 1 ? 2 * dims : dims);
  }
}

// Training on threads: blocks of rows merged in order, so every thread count gives the same bits;
// up to one block it is one Trainer fed row by row; and it is the data's statistics.
TEST(Sbq, TrainingDoesNotDependOnThreads) {
  const std::size_t dims = 37, n = 3 * Quantizer::kTrainBlockRows + 123;
  const auto data = vs::test::clustered(n, dims, 6, 91, 2.0f);
  for (const unsigned bits : {1u, 2u}) {
    const std::vector<float> one = Quantizer::train(data.data(), n, dims, bits, 1).stream();
    for (const std::size_t threads : {2u, 3u, 8u})
      EXPECT_EQ(Quantizer::train(data.data(), n, dims, bits, threads).stream(), one) << threads << " threads";
    std::vector<double> mean, sd;
    reference_stats(data, n, dims, mean, sd);
    for (std::size_t d = 0; d < dims; ++d) {
      ASSERT_NEAR(one[d], mean[d], 1e-5 * (1 + std::abs(mean[d]))) << "dimension " << d;
      if (bits > 1) {
        ASSERT_NEAR(one[dims + d], sd[d], 1e-4 * (1 + sd[d])) << "dimension " << d;
      }
    }
    // One group (below two groups' rows): the row-by-row Trainer exactly.
    const std::size_t one_group = 2 * Quantizer::kTrainBlockRows - 1;
    vs::sbq::Trainer t(dims, bits);
    for (std::size_t i = 0; i < one_group; ++i) t.add(&data[i * dims]);
    EXPECT_EQ(Quantizer::train(data.data(), one_group, dims, bits, 4).stream(), t.finish());
  }
  // Past kTrainGroups groups of the fewest rows, groups grow instead: still the same bits.
  const std::size_t many = Quantizer::kTrainGroups * Quantizer::kTrainBlockRows + 5000;
  const auto wide = vs::test::clustered(many, 2, 3, 5, 1.0f);
  EXPECT_EQ(Quantizer::train(wide.data(), many, 2, 2, 3).stream(),
            Quantizer::train(wide.data(), many, 2, 2, 1).stream());
  // A bad value in any group is the caller's error, whichever thread met it.
  auto bad = data;
  bad[(n - 5) * dims + 3] = std::nanf("");
  EXPECT_THROW((void)Quantizer::train(bad.data(), n, dims, 2, 3), vs::Error);
}

TEST(Sbq, TrainerMergeIsOneTrainer) {
  const std::size_t dims = 5, n = 300;
  const auto data = vs::test::clustered(n, dims, 3, 17, 4.0f);
  for (const std::size_t cut : {std::size_t{0}, std::size_t{1}, std::size_t{120}, n}) {
    vs::sbq::Trainer whole(dims, 2), a(dims, 2), b(dims, 2);
    for (std::size_t i = 0; i < n; ++i) {
      (i < cut ? a : b).add(&data[i * dims]);
      whole.add(&data[i * dims]);
    }
    vs::sbq::Trainer merged(dims, 2);
    merged.merge(a);
    if (cut == n) {
      EXPECT_EQ(merged.finish(), a.finish());  // into an empty trainer: a copy
    }
    merged.merge(b);
    EXPECT_EQ(merged.count(), n);
    const auto got = merged.finish(), want = whole.finish();
    for (std::size_t k = 0; k < got.size(); ++k) EXPECT_NEAR(got[k], want[k], 1e-6 * (1 + std::abs(want[k])));
  }
  vs::sbq::Trainer other(dims + 1, 2);
  vs::sbq::Trainer t(dims, 2);
  EXPECT_THROW(t.merge(other), vs::Error);
}

TEST(Sbq, RejectsBadParametersAndInput) {
  EXPECT_THROW(vs::sbq::Trainer(0, 1), vs::Error);
  EXPECT_THROW(vs::sbq::Trainer(16001, 1), vs::Error);
  EXPECT_THROW(vs::sbq::Trainer(10, 0), vs::Error);
  EXPECT_THROW(vs::sbq::Trainer(10, 9), vs::Error);
  const std::vector<float> short_stream(5, 0.0f);
  EXPECT_THROW(Quantizer(10, 1, short_stream), vs::Error);
  const std::vector<float> neg_sd = {0, 0, 1, -1};
  EXPECT_THROW(Quantizer(2, 2, neg_sd), vs::Error);
  vs::sbq::Trainer t(2, 1);
  const float bad[] = {1.0f, std::numeric_limits<float>::infinity()};
  try {
    t.add(bad);
    FAIL() << "no throw";
  } catch (const vs::Error& e) {
    EXPECT_EQ(e.code(), vs::ErrorCode::kInvalidArgument);
    EXPECT_NE(std::string(e.what()).find("component 1"), std::string::npos) << e.what();
  }
}

}  // namespace
