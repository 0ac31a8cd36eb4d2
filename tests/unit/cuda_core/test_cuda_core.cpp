// The per-item algorithms of the CUDA backend (gpu_builder/backend/cuda/include/vectorscale/
// cuda/core), run on the CPU with the serial team and compared with common/: these are the
// functions the kernels run, so these tests are the CPU half of the GPU build's tests.
#include <gtest/gtest.h>

#include <algorithm>
#include <array>
#include <cmath>
#include <cstring>
#include <numeric>
#include <random>
#include <set>
#include <vector>

#include "core_test_data.hpp"
#include "synthetic.hpp"
#include "vectorscale/core/error.hpp"
#include "vectorscale/cuda/core/prune_node.hpp"
#include "vectorscale/cuda/core/sbq.hpp"
#include "vectorscale/cuda/core/search.hpp"
#include "vectorscale/cuda/core/team.hpp"
#include "vectorscale/cuda/plan.hpp"
#include "vectorscale/distance/distance.hpp"
#include "vectorscale/sbq/sbq.hpp"
#include "vectorscale/vamana/prune.hpp"
#include "vectorscale/vamana/search.hpp"

namespace {

using namespace vs;
namespace core = vs::cuda::core;
using core::SerialTeam;
using vs::test::integer_points;

TEST(CudaCore, AlphaScheduleIsCommonsSchedule) {
  for (float a = 1.0f; a <= 5.0f; a += 0.05f) {
    const auto want = vamana::alpha_schedule(a);
    const auto got = core::make_alpha_schedule(a, true);
    ASSERT_EQ(got.count, want.size()) << a;
    for (std::size_t i = 0; i < want.size(); ++i) EXPECT_EQ(got.alpha[i], want[i]);
  }
  EXPECT_EQ(core::make_alpha_schedule(3.0f, false).count, 1u);
}

TEST(CudaCore, FloatOrderBitsKeepOrder) {
  std::vector<float> v = {-1e30f, -5.5f, -1.0f, -1e-30f, -0.0f, 0.0f, 1e-30f, 0.5f, 1.0f, 2.0f, 1e30f};
  for (std::size_t i = 0; i + 1 < v.size(); ++i)
    EXPECT_LE(core::float_order_bits(v[i]), core::float_order_bits(v[i + 1]));
  EXPECT_EQ(core::float_order_bits(-0.0f), core::float_order_bits(0.0f));
  EXPECT_LT(core::edge_key(3, 100.0f), core::edge_key(4, -100.0f));
  EXPECT_LT(core::edge_key(3, -2.0f), core::edge_key(3, -1.0f));
  EXPECT_EQ(core::edge_key_target(core::edge_key(77, 1.5f)), 77u);
}

TEST(CudaCore, BitonicSortOrdersLikeCommon) {
  std::mt19937_64 rng(5);
  for (std::uint32_t m : {1u, 2u, 4u, 32u, 256u, 1024u}) {
    std::vector<float> key(m);
    std::vector<std::uint32_t> id(m), payload(m);
    std::uniform_int_distribution<int> small(0, 20);  // many equal keys: ties go by id
    for (std::uint32_t i = 0; i < m; ++i) {
      key[i] = static_cast<float>(small(rng));
      id[i] = static_cast<std::uint32_t>(rng() % 100000);
      payload[i] = id[i] ^ 0xABCDu;
    }
    if (m > 2) key[1] = core::infinity(), id[1] = core::kNoNode, payload[1] = core::kNoNode ^ 0xABCDu;
    std::vector<std::pair<float, std::uint32_t>> want;
    for (std::uint32_t i = 0; i < m; ++i) want.emplace_back(key[i], id[i]);
    std::sort(want.begin(), want.end(),
              [](const auto& a, const auto& b) { return core::candidate_less(a.first, a.second, b.first, b.second); });
    core::bitonic_sort(SerialTeam{}, key.data(), id.data(), payload.data(), m);
    for (std::uint32_t i = 0; i < m; ++i) {
      EXPECT_EQ(key[i], want[i].first);
      EXPECT_EQ(id[i], want[i].second);
      EXPECT_EQ(payload[i], id[i] ^ 0xABCDu);
    }
  }
}

TEST(CudaCore, MergeListsKeepsTheBestCap) {
  std::mt19937_64 rng(9);
  for (int round = 0; round < 50; ++round) {
    const std::uint32_t na = static_cast<std::uint32_t>(rng() % 40), nb = static_cast<std::uint32_t>(rng() % 40);
    const std::uint32_t cap = 1 + static_cast<std::uint32_t>(rng() % 50);
    std::vector<std::uint32_t> ids(na + nb);
    std::iota(ids.begin(), ids.end(), 0u);
    std::shuffle(ids.begin(), ids.end(), rng);
    std::vector<std::tuple<float, std::uint32_t, std::uint8_t>> a, b;
    for (std::uint32_t i = 0; i < na; ++i) a.emplace_back(static_cast<float>(rng() % 10), ids[i], rng() % 2);
    for (std::uint32_t i = 0; i < nb; ++i) b.emplace_back(static_cast<float>(rng() % 10), ids[na + i], 0);
    auto less = [](const auto& x, const auto& y) {
      return core::candidate_less(std::get<0>(x), std::get<1>(x), std::get<0>(y), std::get<1>(y));
    };
    std::sort(a.begin(), a.end(), less);  // b stays in any order
    std::vector<float> ak, bk, ok(cap);
    std::vector<std::uint32_t> ai, bi, oi(cap);
    std::vector<std::uint8_t> af, of(cap);
    for (auto& [k, i, f] : a) ak.push_back(k), ai.push_back(i), af.push_back(f);
    for (auto& [k, i, f] : b) bk.push_back(k), bi.push_back(i);
    std::uint32_t first = core::kNoNode;
    const std::uint32_t size = core::merge_lists(SerialTeam{}, ak.data(), ai.data(), af.data(), na, bk.data(),
                                                 bi.data(), nb, ok.data(), oi.data(), of.data(), cap, &first);
    std::vector<std::tuple<float, std::uint32_t, std::uint8_t>> want(a);
    want.insert(want.end(), b.begin(), b.end());
    std::sort(want.begin(), want.end(), less);
    want.resize(std::min<std::size_t>(want.size(), cap));
    ASSERT_EQ(size, want.size());
    for (std::uint32_t i = 0; i < size; ++i) {
      EXPECT_EQ(ok[i], std::get<0>(want[i]));
      EXPECT_EQ(oi[i], std::get<1>(want[i]));
      EXPECT_EQ(of[i], std::get<2>(want[i]));
    }
    const auto unexpanded = std::find_if(want.begin(), want.end(), [](const auto& e) { return std::get<2>(e) == 0; });
    EXPECT_EQ(first, unexpanded == want.end() ? core::kNoNode : static_cast<std::uint32_t>(unexpanded - want.begin()));
  }
}

TEST(CudaCore, DistanceFormulasMatchCommon) {
  const std::size_t dims = 48;
  const auto a = test::uniform(dims, 1), b = test::uniform(dims, 2);
  auto nrm = [&](const std::vector<float>& v) { return distance::dot(v.data(), v.data(), dims); };
  const float ab = distance::dot(a.data(), b.data(), dims);
  EXPECT_NEAR(core::distance_from_gram(core::Metric::kL2, nrm(a), nrm(b), ab),
              distance::index_distance(distance::Metric::kL2, a.data(), b.data(), dims), 1e-4);
  EXPECT_FLOAT_EQ(core::distance_from_gram(core::Metric::kInnerProduct, nrm(a), nrm(b), ab),
                  distance::index_distance(distance::Metric::kInnerProduct, a.data(), b.data(), dims));
  EXPECT_FLOAT_EQ(core::distance_from_gram(core::Metric::kCosine, 1, 1, ab), 1.0f - ab);
  EXPECT_EQ(core::distance_from_gram(core::Metric::kL2, 1.0f, 1.0f, 1.0000001f), 0.0f);  // clamped
  for (const auto m : {core::Metric::kL2, core::Metric::kCosine, core::Metric::kInnerProduct}) {
    float sum = 0;
    for (std::size_t d = 0; d < dims; ++d) sum += core::distance_term(m, a[d], b[d]);
    EXPECT_NEAR(core::finish_distance(m, sum),
                distance::index_distance(static_cast<distance::Metric>(m), a.data(), b.data(), dims), 1e-4);
  }
}

// The prune core against vamana::robust_prune: random distances, hand-made cases, both rules.
TEST(CudaCore, RobustPruneSortedIsCommonsRobustPrune) {
  std::mt19937_64 rng(11);
  for (int round = 0; round < 300; ++round) {
    const std::uint32_t m = static_cast<std::uint32_t>(rng() % 120);
    const std::uint32_t R = 1 + static_cast<std::uint32_t>(rng() % 40);
    const bool ratio = round % 3 != 0;
    const float max_alpha = 1.0f + 0.1f * static_cast<float>(rng() % 25);
    const auto pts = integer_points(m + 1, 6, rng());
    const auto metric = ratio ? distance::Metric::kL2 : distance::Metric::kInnerProduct;
    auto d = [&](std::uint32_t x, std::uint32_t y) {
      return distance::index_distance(metric, &pts[x * 6], &pts[y * 6], 6);
    };
    // Candidates 1..m sorted by distance to point 0.
    std::vector<std::uint32_t> order(m);
    std::iota(order.begin(), order.end(), 1u);
    std::sort(order.begin(), order.end(), [&](auto x, auto y) { return core::candidate_less(d(0, x), x, d(0, y), y); });
    std::vector<float> dist(m);
    for (std::uint32_t i = 0; i < m; ++i) dist[i] = d(0, order[i]);
    auto pair = [&](std::size_t i, std::size_t j) { return d(order[i], order[j]); };
    std::vector<std::uint32_t> want;
    std::vector<float> factor;
    vamana::robust_prune(
        std::span<const float>(dist), R, max_alpha, ratio, pair, [](std::size_t, std::size_t) { return true; }, want,
        factor);
    std::vector<float> f(m + 1);
    std::vector<std::uint32_t> kept(m + 1);
    const auto schedule = core::make_alpha_schedule(max_alpha, ratio);
    const std::uint32_t count =
        core::robust_prune_sorted(SerialTeam{}, dist.data(), m, pair, R, schedule, ratio, f.data(), kept.data());
    ASSERT_EQ(count, want.size()) << "round " << round;
    for (std::uint32_t i = 0; i < count; ++i) EXPECT_EQ(kept[i], want[i]);
  }
}

TEST(CudaCore, RobustPruneHandMade) {
  // On a line: p = 0, candidates at 1, 2, 3, 10. At alpha 1, 1 occludes 2 and 3 (closer to 1
  // than to p) and 10; at alpha 1.2 nothing more is freed for these distances.
  const std::vector<float> dist = {1, 4, 9, 100};  // squared distances to p
  auto pos = [](std::size_t i) { return std::vector<float>{1, 2, 3, 10}[i]; };
  auto pair = [&](std::size_t i, std::size_t j) { return (pos(i) - pos(j)) * (pos(i) - pos(j)); };
  std::vector<float> factor(4);
  std::vector<std::uint32_t> kept(4);
  const auto count = core::robust_prune_sorted(SerialTeam{}, dist.data(), 4, pair, 4,
                                               core::make_alpha_schedule(1.2f, true), true, factor.data(), kept.data());
  ASSERT_EQ(count, 1u);
  EXPECT_EQ(kept[0], 0u);
  // A wide schedule frees 2 (d(p,2)/d(1,2) = 4 <= 5) and then 3 and 10 stay occluded by 2.
  const auto wide = core::robust_prune_sorted(SerialTeam{}, dist.data(), 4, pair, 4,
                                              core::make_alpha_schedule(5.0f, true), true, factor.data(), kept.data());
  std::vector<std::uint32_t> want;
  std::vector<float> f2;
  vamana::robust_prune(
      std::span<const float>(dist), 4, 5.0f, true, pair, [](std::size_t, std::size_t) { return true; }, want, f2);
  ASSERT_EQ(wide, want.size());
  for (std::uint32_t i = 0; i < wide; ++i) EXPECT_EQ(kept[i], want[i]);
  // R = 0 keeps nothing; m = 0 keeps nothing.
  EXPECT_EQ(core::robust_prune_sorted(SerialTeam{}, dist.data(), 4, pair, 0, core::make_alpha_schedule(1.2f, true),
                                      true, factor.data(), kept.data()),
            0u);
  EXPECT_EQ(core::robust_prune_sorted(SerialTeam{}, dist.data(), 0, pair, 5, core::make_alpha_schedule(1.2f, true),
                                      true, factor.data(), kept.data()),
            0u);
}

// prune_node (Gram matrix in, list out) against common/'s build prune: sort candidates by
// (distance, id), drop p, robust_prune with distances computed directly.
TEST(CudaCore, PruneNodeIsCommonsPruneOfACandidateSet) {
  std::mt19937_64 rng(3);
  for (const auto metric : {distance::Metric::kL2, distance::Metric::kInnerProduct}) {
    for (int round = 0; round < 100; ++round) {
      const std::size_t n = 300, dims = 5;
      const auto pts = integer_points(n, dims, rng(), 4);
      const std::uint32_t p = static_cast<std::uint32_t>(rng() % n);
      std::vector<std::uint32_t> ids(n);
      std::iota(ids.begin(), ids.end(), 0u);
      std::shuffle(ids.begin(), ids.end(), rng);
      const std::uint32_t count = static_cast<std::uint32_t>(rng() % 150);
      std::vector<std::uint32_t> cand(ids.begin(), ids.begin() + count);  // may contain p
      const std::uint32_t R = 4 + static_cast<std::uint32_t>(rng() % 20);
      vamana::BuildParams bp;
      bp.metric = metric;
      bp.num_neighbors = std::max<std::uint32_t>(R, vamana::kMinNumNeighbors);
      bp.max_alpha = 1.4f;
      auto settings = cuda::derive_settings(bp);
      settings.prune.R = R;
      auto vec = [&](std::uint32_t i) { return &pts[i * dims]; };
      auto d = [&](std::uint32_t x, std::uint32_t y) { return distance::index_distance(metric, vec(x), vec(y), dims); };

      // common/'s way (Builder::prune_expanded without labels).
      std::vector<std::pair<float, std::uint32_t>> sorted;
      for (auto c : cand)
        if (c != p) sorted.emplace_back(d(p, c), c);
      std::sort(sorted.begin(), sorted.end(),
                [](auto a, auto b) { return core::candidate_less(a.first, a.second, b.first, b.second); });
      std::vector<float> dist;
      for (auto& s : sorted) dist.push_back(s.first);
      std::vector<std::uint32_t> want_idx;
      std::vector<float> factor;
      vamana::robust_prune(
          std::span<const float>(dist), R, bp.max_alpha, metric != distance::Metric::kInnerProduct,
          [&](std::size_t i, std::size_t j) { return d(sorted[i].second, sorted[j].second); },
          [](std::size_t, std::size_t) { return true; }, want_idx, factor);

      // The core's way, from a Gram matrix.
      std::vector<std::uint32_t> rows = {p};
      rows.insert(rows.end(), cand.begin(), cand.end());
      auto gram = [&](std::uint32_t a, std::uint32_t b) { return distance::dot(vec(rows[a]), vec(rows[b]), dims); };
      std::vector<std::uint32_t> mem(core::prune_shared_bytes(settings.max_candidates) / 4 + 1);
      const auto shared = core::carve_prune_shared(mem.data(), settings.max_candidates);
      std::vector<std::uint32_t> out(R);
      std::vector<float> out_d(R);
      const std::uint32_t kept =
          core::prune_node(SerialTeam{}, p, cand.data(), count, gram, settings.prune, shared, out.data(), out_d.data());
      ASSERT_EQ(kept, want_idx.size());
      for (std::uint32_t k = 0; k < kept; ++k) {
        EXPECT_EQ(out[k], sorted[want_idx[k]].second);
        EXPECT_EQ(out_d[k], sorted[want_idx[k]].first);
      }
    }
  }
}

TEST(CudaCore, SbqWordsAreCommonsCodes) {
  std::mt19937_64 rng(21);
  for (std::uint32_t bits = 1; bits <= sbq::kMaxBitsPerDim; ++bits) {
    for (std::size_t dims : {1u, 7u, 63u, 64u, 65u, 100u, 200u}) {
      const std::size_t n = 40;
      auto data = test::uniform(n * dims, rng(), -3.0f, 3.0f);
      const auto q = sbq::Quantizer::train(data.data(), n, dims, bits);
      for (std::size_t d = 0; d < dims; d += 5) data[d] = q.mean()[d];  // values exactly at the mean
      std::vector<float> inv(dims, 0.0f);
      if (bits > 1)
        for (std::size_t d = 0; d < dims; ++d) inv[d] = q.stddev()[d] > 0.0f ? 1.0f / q.stddev()[d] : 0.0f;
      std::vector<std::uint64_t> want(q.words());
      for (std::size_t i = 0; i < n; ++i) {
        q.encode(&data[i * dims], want.data());
        for (std::size_t w = 0; w < q.words(); ++w)
          ASSERT_EQ(core::sbq_word(&data[i * dims], q.mean().data(), inv.data(), dims, bits, w), want[w])
              << "bits " << bits << " dims " << dims << " row " << i << " word " << w;
      }
    }
  }
}

TEST(CudaCore, VisitedTableSetSemantics) {
  const std::uint32_t slots = core::visited_table_slots(10, 8);
  EXPECT_GE(slots, 2u * (1 + 10 * 8));
  EXPECT_EQ(slots & (slots - 1), 0u);
  std::vector<std::uint32_t> table(slots, core::kEmptySlot);
  std::set<std::uint32_t> seen;
  std::mt19937_64 rng(2);
  for (int i = 0; i < 81; ++i) {
    const std::uint32_t id = static_cast<std::uint32_t>(rng() % 200);
    EXPECT_EQ(core::visit(SerialTeam{}, table.data(), slots - 1, id), seen.insert(id).second);
  }
  // A full table answers "seen" rather than looping.
  std::vector<std::uint32_t> tiny(4, core::kEmptySlot);
  for (std::uint32_t id = 0; id < 4; ++id) EXPECT_TRUE(core::visit(SerialTeam{}, tiny.data(), 3, id));
  EXPECT_FALSE(core::visit(SerialTeam{}, tiny.data(), 3, 99));
}

// A team-shared table in front of the global one is the same exact set; ids that find their
// local window full go to the global table, and say so.
TEST(CudaCore, TwoLevelVisitedSetSemantics) {
  const std::uint32_t slots = core::visited_table_slots(100, 8), local_slots = 32;
  std::vector<std::uint32_t> table(slots, core::kEmptySlot), local(local_slots, core::kEmptySlot);
  std::uint32_t spilled = 0;
  std::set<std::uint32_t> seen;
  std::mt19937_64 rng(3);
  for (int i = 0; i < 400; ++i) {
    const std::uint32_t id = static_cast<std::uint32_t>(rng() % 300);
    ASSERT_EQ(core::visit_two_level(SerialTeam{}, local.data(), local_slots - 1, table.data(), slots - 1, &spilled, id),
              seen.insert(id).second)
        << "id " << id;
    if (seen.size() <= core::kLocalProbes) {
      EXPECT_EQ(spilled, 0u);  // the first window always has room
    }
  }
  EXPECT_EQ(spilled, 1u);  // 300 ids, 32 local slots
  const auto in_local =
      static_cast<std::size_t>(local_slots - std::count(local.begin(), local.end(), core::kEmptySlot));
  const auto in_global = static_cast<std::size_t>(slots - std::count(table.begin(), table.end(), core::kEmptySlot));
  EXPECT_EQ(in_local + in_global, seen.size());  // each id in one table
  EXPECT_EQ(in_local, local_slots);
}

// bfloat16 rounding: the nearest bfloat16 value, ties to the even one, as __float2bfloat16_rn.
TEST(CudaCore, Bf16RoundsToNearestEven) {
  auto bits = [](float f) { return core::float_bits(f); };
  std::mt19937_64 rng(31);
  for (int i = 0; i < 200000; ++i) {
    const auto u = static_cast<std::uint32_t>(rng());
    const float f = core::float_from_bits(u);
    if (std::isnan(f) || std::isinf(f)) continue;
    const float got = core::to_float(core::to_bf16(f));
    const float lo = core::float_from_bits(u & 0xFFFF0000u);  // toward zero
    const std::uint32_t lo_bits = u & 0xFFFF0000u;
    const float hi = core::float_from_bits(lo_bits + 0x10000u);  // away from zero (may be inf)
    // Past the largest bfloat16, IEEE rounding measures against 2^128 (unbounded exponent).
    const double hi_value = std::isinf(hi) ? std::copysign(std::ldexp(1.0, 128), f) : hi;
    const double dl = std::fabs(static_cast<double>(f) - lo), dh = std::fabs(static_cast<double>(f) - hi_value);
    const float want = dl < dh ? lo : dh < dl ? hi : ((lo_bits >> 16) & 1u) == 0 ? lo : hi;
    ASSERT_EQ(bits(got), bits(want)) << std::hexfloat << f;
  }
  EXPECT_EQ(core::to_float(core::to_bf16(1.0f)), 1.0f);
  EXPECT_EQ(bits(core::to_float(core::to_bf16(-0.0f))), bits(-0.0f));
  EXPECT_EQ(core::to_float(core::to_bf16(1.0f + 0x1p-8f)), 1.0f);                 // tie, to even
  EXPECT_EQ(core::to_float(core::to_bf16(1.0f + 0x3p-8f)), 1.0f + 0x1p-6f);       // tie, to even
  EXPECT_EQ(core::to_float(core::to_bf16(3.4e38f)), core::infinity());            // rounds past the largest
  EXPECT_EQ(core::to_float(core::to_bf16(-core::infinity())), -core::infinity());
  EXPECT_TRUE(std::isnan(core::to_float(core::to_bf16(std::nanf("")))));
  EXPECT_TRUE(std::isnan(core::to_float(core::to_bf16(core::float_from_bits(0x7F800001u)))));  // low payload
}

// A search over bfloat16 vectors is the search over the float values they stand for.
TEST(CudaCore, GreedySearchOverBf16IsTheSearchOverItsValues) {
  std::mt19937_64 rng(41);
  const std::uint32_t n = 300, dims = 16, stride = 10, L = 20;
  const auto pts = test::uniform(n * dims, rng(), -2.0f, 2.0f);
  std::vector<core::Bf16> half(pts.size());
  std::vector<float> values(pts.size());
  for (std::size_t i = 0; i < pts.size(); ++i) {
    half[i] = core::to_bf16(pts[i]);
    values[i] = core::to_float(half[i]);
  }
  const auto [nb, deg] = test::random_graph(n, stride, false, rng);
  auto run = [&](const auto& args, const auto* query) {
    std::vector<std::uint32_t> mem(core::search_shared_bytes(L, stride) / 4 + 1);
    std::vector<std::uint32_t> table(core::visited_table_slots(args.max_iters, stride), core::kEmptySlot);
    std::vector<std::uint32_t> log_id(args.max_iters);
    std::vector<float> log_key(args.max_iters);
    const auto r = core::greedy_search_one(SerialTeam{}, args, core::carve_search_shared(mem.data(), L, stride), query,
                                           0, table.data(), static_cast<std::uint32_t>(table.size() - 1),
                                           log_id.data(), log_key.data());
    log_id.resize(r.expanded);
    log_key.resize(r.expanded);
    return std::make_pair(log_id, log_key);
  };
  for (const auto metric : {core::Metric::kL2, core::Metric::kCosine, core::Metric::kInnerProduct}) {
    core::SearchArgsOf<core::Bf16> hb;
    core::SearchArgs fb;
    hb.vectors = half.data();
    fb.vectors = values.data();
    hb.dims = fb.dims = dims;
    hb.metric = fb.metric = metric;
    hb.neighbors = fb.neighbors = nb.data();
    hb.degrees = fb.degrees = deg.data();
    hb.stride = fb.stride = stride;
    hb.list_size = fb.list_size = L;
    hb.max_iters = fb.max_iters = 3 * L;
    for (std::uint32_t q : {5u, 77u, 299u}) {
      const auto a = run(hb, &half[q * dims]);
      const auto b = run(fb, &values[q * dims]);
      EXPECT_GT(a.first.size(), 0u);
      EXPECT_EQ(a, b) << "query " << q;
    }
  }
}

// Wide loads: a Chunk's elements are the row's elements in order, for both element types, and
// their distance terms sum to the element-at-a-time sum (exact on integer values).
TEST(CudaCore, ChunksAreTheRowsElements) {
  EXPECT_EQ(core::kChunkElements<float>, 4u);
  EXPECT_EQ(core::kChunkElements<core::Bf16>, 8u);
  std::mt19937_64 rng(29);
  const std::uint32_t dims = 64;
  const auto a = integer_points(1, dims, rng(), 9), b = integer_points(1, dims, rng(), 9);
  std::vector<core::Bf16> ha(dims), hb(dims);
  for (std::uint32_t d = 0; d < dims; ++d) {
    ha[d] = core::to_bf16(a[d] * 0.5f);
    hb[d] = core::to_bf16(b[d]);
  }
  for (std::uint32_t c = 0; c < dims / 8; ++c) {
    const core::Chunk chunk = core::load_chunk(&ha[c * 8]);
    for (std::uint32_t i = 0; i < 8; ++i)
      ASSERT_EQ(core::chunk_element(chunk, i, ha.data()), core::to_float(ha[c * 8 + i])) << c << " " << i;
    const core::Chunk fchunk = core::load_chunk(&a[c * 4]);
    for (std::uint32_t i = 0; i < 4; ++i) ASSERT_EQ(core::chunk_element(fchunk, i, a.data()), a[c * 4 + i]);
  }
  for (const auto metric : {core::Metric::kL2, core::Metric::kCosine, core::Metric::kInnerProduct}) {
    float want = 0, want_half = 0, got = 0, got_half = 0;
    for (std::uint32_t d = 0; d < dims; ++d) {
      want += core::distance_term(metric, a[d], b[d]);
      want_half += core::distance_term(metric, core::to_float(ha[d]), core::to_float(hb[d]));
    }
    for (std::uint32_t d = 0; d < dims; d += 4) got += core::chunk_distance_terms(metric, &a[d], &b[d]);
    for (std::uint32_t d = 0; d < dims; d += 8) got_half += core::chunk_distance_terms(metric, &ha[d], &hb[d]);
    EXPECT_EQ(got, want);
    EXPECT_EQ(got_half, want_half);
  }
  core::Chunk stored{};
  core::store_chunk(&stored, core::load_chunk(&ha[8]));
  EXPECT_EQ(std::memcmp(&stored, &ha[8], sizeof stored), 0);
  // Rows are wide when dims is a multiple of the chunk's elements and the first row is aligned.
  alignas(16) static const float row[8] = {};
  EXPECT_TRUE(core::wide_rows(row, 4));
  EXPECT_TRUE(core::wide_rows(row, 768));
  EXPECT_FALSE(core::wide_rows(row, 6));
  EXPECT_FALSE(core::wide_rows(row + 1, 4));
  EXPECT_TRUE(core::wide_rows(reinterpret_cast<const core::Bf16*>(row), 8));
  EXPECT_FALSE(core::wide_rows(reinterpret_cast<const core::Bf16*>(row), 12));
  // A misaligned Chunk access stops, as it faults on the device.
  EXPECT_DEATH((void)core::load_chunk(row + 1), "");
  EXPECT_DEATH(core::store_chunk(&stored.w[1], stored), "");
}

// The search core on a random graph against vamana::greedy_search: the same expansions in the
// same order (integer points make every distance exact on both sides), reading rows an element
// or a Chunk at a time, with a visited set in the global table alone, or behind a team-shared
// table too small for the search (most ids spill to the global table) or large enough, reading
// the query where it is or from its copy in team-shared memory. Each search leaves its global
// table empty.
TEST(CudaCore, GreedySearchOneIsCommonsGreedySearch) {
  std::mt19937_64 rng(13);
  for (int round = 0; round < 30; ++round) {
    const std::uint32_t n = 400, dims = 8, stride = 12;
    const std::uint32_t L = 4 + static_cast<std::uint32_t>(rng() % 40);
    const auto pts = integer_points(n, dims, rng(), 9);
    const auto [nb, deg] = test::random_graph(n, stride, true, rng);
    const auto q = integer_points(1, dims, rng(), 9);
    const std::uint32_t start = static_cast<std::uint32_t>(rng() % n);
    for (const auto metric : {core::Metric::kL2, core::Metric::kInnerProduct}) {
      auto dist = [&](std::uint32_t id) {
        return distance::index_distance(static_cast<distance::Metric>(metric), q.data(), &pts[id * dims], dims);
      };
      // common/
      vamana::SearchList<std::uint32_t> list(L);
      vamana::EpochVisited visited(n);
      visited.test_and_set(start);
      list.insert(start, dist(start));
      std::vector<std::pair<std::uint32_t, float>> want;
      const std::size_t computed = vamana::greedy_search(
          list,
          [&](std::uint32_t id, auto&& visit) {
            for (std::uint32_t k = 0; k < deg[id]; ++k) visit(nb[id * stride + k]);
          },
          dist, visited, [&](const vamana::Candidate<std::uint32_t>& c) { want.emplace_back(c.id, c.distance); });
      // the core
      core::SearchArgs a;
      a.vectors = pts.data();
      a.dims = dims;
      a.metric = metric;
      a.neighbors = nb.data();
      a.degrees = deg.data();
      a.stride = stride;
      a.list_size = L;
      a.max_iters = 10 * n;
      a.wide = round % 2 == 1;
      a.local_slots = std::array<std::uint32_t, 3>{0, core::kLocalProbes, 1024}[round % 3];
      a.query_bytes = round % 4 >= 2 ? core::staged_query_bytes<float>(dims) : 0;
      std::vector<core::Chunk> mem(core::search_shared_bytes(L, stride, a.local_slots, a.query_bytes) / 16 + 1);
      std::vector<std::uint32_t> table(core::visited_table_slots(a.max_iters, stride), core::kEmptySlot);
      std::vector<std::uint32_t> log_id(a.max_iters);
      std::vector<float> log_key(a.max_iters);
      const auto shared = core::carve_search_shared(mem.data(), L, stride, a.local_slots, a.query_bytes);
      EXPECT_EQ(shared.local != nullptr, a.local_slots != 0);
      EXPECT_EQ(shared.query != nullptr, a.query_bytes != 0);
      auto search = [&] {
        const auto mask = static_cast<std::uint32_t>(table.size() - 1);
        return a.query_bytes != 0 ? core::greedy_search_one<true>(SerialTeam{}, a, shared, q.data(), start,
                                                                  table.data(), mask, log_id.data(), log_key.data())
                                  : core::greedy_search_one<false>(SerialTeam{}, a, shared, q.data(), start,
                                                                   table.data(), mask, log_id.data(), log_key.data());
      };
      const auto r = search();
      ASSERT_EQ(r.expanded, want.size());
      EXPECT_EQ(r.computed, computed + 1);  // + the start node
      for (std::uint32_t i = 0; i < r.expanded; ++i) {
        EXPECT_EQ(log_id[i], want[i].first);
        EXPECT_EQ(log_key[i], want[i].second);
      }
      if (a.local_slots == 0 || (a.local_slots == core::kLocalProbes && r.computed > core::kLocalProbes)) {
        EXPECT_TRUE(r.spilled);
      }
      if (shared.query != nullptr) {
        EXPECT_TRUE(std::equal(q.begin(), q.end(), static_cast<const float*>(shared.query)));
      }
      EXPECT_EQ(std::count(table.begin(), table.end(), core::kEmptySlot), static_cast<std::ptrdiff_t>(table.size()));
      // A cap stops the search after max_iters expansions, with the log of the first ones.
      a.max_iters = 2;
      const auto capped = search();
      EXPECT_EQ(capped.expanded, std::min<std::size_t>(2, want.size()));
      for (std::uint32_t i = 0; i < capped.expanded; ++i) EXPECT_EQ(log_id[i], want[i].first);
    }
  }
}

TEST(CudaCore, UnionOfListAndIncoming) {
  const std::vector<std::uint32_t> list = {5, 9, 2};
  const std::vector<std::uint32_t> in = {9, 7, 5, 11, 13};
  EXPECT_EQ(core::union_size(list.data(), 3, in.data(), 5, 100), 6u);
  EXPECT_EQ(core::union_size(list.data(), 3, in.data(), 5, 4), 4u);
  std::vector<std::uint32_t> out(6);
  EXPECT_EQ(core::write_union(list.data(), 3, in.data(), 5, 100, out.data()), 6u);
  EXPECT_EQ(out, (std::vector<std::uint32_t>{5, 9, 2, 7, 11, 13}));
  std::vector<std::uint32_t> in_place = {5, 9, 2, 0, 0};
  EXPECT_EQ(core::write_union(in_place.data(), 3, in.data(), 5, 5, in_place.data()), 5u);
  EXPECT_EQ(in_place, (std::vector<std::uint32_t>{5, 9, 2, 7, 11}));
}

TEST(CudaPlan, InsertionBatchesGrowAndCover) {
  for (std::size_t n : {1u, 2u, 3u, 17u, 1000u, 12345u}) {
    for (std::size_t cap : {1u, 7u, 64u, 100000u}) {
      const auto b = cuda::insertion_batches(n, cap);
      std::size_t next = 0;
      for (const auto& [begin, end] : b) {
        EXPECT_EQ(begin, next);
        EXPECT_GT(end, begin);
        EXPECT_LE(end - begin, std::max<std::size_t>(1, std::min(cap, begin)));
        next = end;
      }
      EXPECT_EQ(next, n);
    }
  }
  EXPECT_EQ(cuda::insertion_batches(10, 100),
            (std::vector<std::pair<std::size_t, std::size_t>>{{0, 1}, {1, 2}, {2, 4}, {4, 8}, {8, 10}}));
}

TEST(CudaPlan, SettingsFollowBuildParams) {
  vamana::BuildParams p;
  p.num_neighbors = 50;
  p.search_list_size = 100;
  p.max_alpha = 1.2f;
  const auto s = cuda::derive_settings(p);
  EXPECT_EQ(s.stride, 65u);  // ceil(1.3 * 50)
  EXPECT_EQ(s.max_iters, 300u);
  EXPECT_EQ(s.max_candidates, 300u);
  EXPECT_EQ(s.prune.schedule.count, 2u);
  EXPECT_TRUE(s.prune.ratio_rule);
  EXPECT_EQ(s.refine_passes_for(100000), 1u);  // refine_max_rows
  EXPECT_EQ(s.refine_passes_for(100001), 0u);
  cuda::GraphOptions unlimited;
  unlimited.refine_max_rows = 0;
  unlimited.refine_passes = 2;
  EXPECT_EQ(cuda::derive_settings(p, unlimited).refine_passes_for(100000000), 2u);
  p.metric = distance::Metric::kInnerProduct;
  EXPECT_FALSE(cuda::derive_settings(p).prune.ratio_rule);
  EXPECT_EQ(cuda::derive_settings(p).prune.schedule.count, 1u);
  p.num_neighbors = 3;
  EXPECT_THROW((void)cuda::derive_settings(p), vs::Error);
}

// The plan for the benchmark shape on an 80 GB H100, and the out-of-core fallbacks.
TEST(CudaPlan, MemoryPlanForOneMillionBy768) {
  vamana::BuildParams bp;  // R 50, L 100
  const auto s = cuda::derive_settings(bp);
  const std::size_t n = 1000000, dims = 768, words = sbq::code_words(dims, 1);
  const auto h100 = cuda::plan_device_memory(76ull << 30, n, dims, words, s);
  EXPECT_TRUE(h100.resident);
  EXPECT_EQ(h100.search_batch, 60000u);  // 6% of the rows
  EXPECT_EQ(h100.prune_batch, 8192u);
  EXPECT_LE(h100.peak, h100.budget);
  EXPECT_EQ(h100.upload_rows % cuda::kStatsRows, 0u);
  EXPECT_EQ(h100.vector_bytes, 3072000000ull);

  // A 16 GB card keeps the vectors resident with smaller batches.
  const auto small = cuda::plan_device_memory(16ull << 30, n, dims, words, s);
  EXPECT_TRUE(small.resident);
  EXPECT_LE(small.peak, small.budget);
  EXPECT_GE(small.search_batch, 1000u);

  // 3 GiB: the vectors no longer fit with the graph and a working set: mapped host memory.
  const auto tiny = cuda::plan_device_memory(3ull << 30, n, dims, words, s);
  EXPECT_FALSE(tiny.resident);
  EXPECT_EQ(tiny.vector_bytes, 0u);
  EXPECT_LE(tiny.peak, tiny.budget);
  EXPECT_GE(tiny.search_batch, 1u);

  // Not even the graph fits: a clear out-of-memory error.
  try {
    (void)cuda::plan_device_memory(128ull << 20, n, dims, words, s);
    FAIL() << "expected an error";
  } catch (const vs::Error& e) {
    EXPECT_EQ(e.code(), vs::ErrorCode::kOutOfMemory);
  }

  // Limits (the tests' tiny tiles) are honoured.
  cuda::PlanLimits lim;
  lim.force_mapped = true;
  lim.search_batch = 7;
  lim.prune_batch = 3;
  lim.upload_rows = 300;
  const auto forced = cuda::plan_device_memory(76ull << 30, 5000, 96, 3, s, lim);
  EXPECT_FALSE(forced.resident);
  EXPECT_EQ(forced.search_batch, 7u);
  EXPECT_EQ(forced.prune_batch, 3u);
  EXPECT_EQ(forced.upload_rows, 256u);
  EXPECT_GE(forced.gram_dim, s.max_candidates + 1);
  EXPECT_EQ(forced.gram_dim % 4, 0u);
}

// With the graph phase in bfloat16 (the default on devices with BF16 GEMMs): the float vectors
// resident while training, replaced by their copy; a build whose float vectors do not fit
// beside the graph keeps the copy alone on the device and trains from host memory, where it
// used to read every row of every search over the bus.
TEST(CudaPlan, BfloatGraphPlacements) {
  vamana::BuildParams bp;  // R 50, L 100
  const auto s = cuda::derive_settings(bp);
  const std::size_t dims = 768, words = sbq::code_words(dims, 1);
  const std::uint64_t budget = 76ull << 30;
  auto expect_fits = [](const cuda::MemoryPlan& p) {
    EXPECT_LE(p.peak, p.budget);
    EXPECT_GE(p.search_batch, 1u);
    EXPECT_GE(p.prune_batch, 1u);
  };

  // 1M rows: float resident for training, the copy (half the bytes) for the graph.
  const auto small = cuda::plan_device_memory(budget, 1000000, dims, words, s, {}, true);
  EXPECT_TRUE(small.resident);
  EXPECT_TRUE(small.bf16_graph);
  EXPECT_EQ(small.train_vector_bytes, 3072000000ull);
  EXPECT_EQ(small.vector_bytes, 1536000000ull);
  EXPECT_EQ(small.search_batch, 60000u);
  expect_fits(small);
  EXPECT_NE(small.describe().find("bfloat16"), std::string::npos) << small.describe();

  // 25M rows on an 80 GB device: 77 GB of float vectors, 38 GB as bfloat16.
  const std::size_t n = 25000000;
  const auto mid = cuda::plan_device_memory(budget, n, dims, words, s, {}, true);
  EXPECT_FALSE(mid.resident);
  EXPECT_TRUE(mid.bf16_graph);
  EXPECT_EQ(mid.train_vector_bytes, 0u);
  EXPECT_EQ(mid.vector_bytes, std::uint64_t{n} * dims * 2);
  expect_fits(mid);
  // The float graph phase: the vectors stay in host memory.
  const auto mid_float = cuda::plan_device_memory(budget, n, dims, words, s, {}, false);
  EXPECT_FALSE(mid_float.resident);
  EXPECT_FALSE(mid_float.bf16_graph);
  EXPECT_EQ(mid_float.vector_bytes, 0u);
  expect_fits(mid_float);

  // 60M rows: not even the copy fits beside the graph: mapped host memory throughout.
  const auto big = cuda::plan_device_memory(budget, 60000000, dims, words, s, {}, true);
  EXPECT_FALSE(big.resident);
  EXPECT_FALSE(big.bf16_graph);
  expect_fits(big);

  // The tests' limits: training from host memory, or no device copy at all.
  cuda::PlanLimits lim;
  lim.force_mapped_training = true;
  const auto trained_mapped = cuda::plan_device_memory(budget, 5000, 96, 3, s, lim, true);
  EXPECT_FALSE(trained_mapped.resident);
  EXPECT_TRUE(trained_mapped.bf16_graph);
  lim.force_mapped = true;
  const auto mapped = cuda::plan_device_memory(budget, 5000, 96, 3, s, lim, true);
  EXPECT_FALSE(mapped.resident);
  EXPECT_FALSE(mapped.bf16_graph);
}

}  // namespace
