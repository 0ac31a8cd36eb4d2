// The core algorithms of the CUDA backend run by a team of real threads (thread_team.hpp),
// compared with the serial team: the kernels run them on thread blocks and warps, so their
// barriers and shared-memory writes must be right for any interleaving, and every thread must
// compute the same uniform values (sizes, counts, loop bounds). Team sizes 3 (ranks with
// uneven shares) and 32 (a warp). The deploy/test.sh ThreadSanitizer build runs these too.
#include <gtest/gtest.h>

#include <algorithm>
#include <numeric>
#include <random>
#include <set>
#include <tuple>
#include <vector>

#include "core_test_data.hpp"
#include "thread_team.hpp"
#include "vectorscale/cuda/core/prune_node.hpp"
#include "vectorscale/cuda/core/search.hpp"
#include "vectorscale/cuda/core/team.hpp"

namespace {

namespace core = vs::cuda::core;
using core::SerialTeam;
using vs::test::integer_points;
using vs::test::run_team;
using vs::test::ThreadTeam;

constexpr std::uint32_t kTeamSizes[] = {3, 32};

float l2(const float* a, const float* b, std::size_t dims) {
  float s = 0.0f;
  for (std::size_t d = 0; d < dims; ++d) s += (a[d] - b[d]) * (a[d] - b[d]);
  return s;
}

TEST(CudaCoreThreads, BitonicSort) {
  std::mt19937_64 rng(5);
  for (const std::uint32_t size : kTeamSizes) {
    for (std::uint32_t m : {1u, 2u, 8u, 64u, 256u}) {
      std::vector<float> key(m);
      std::vector<std::uint32_t> id(m), payload(m);
      for (std::uint32_t i = 0; i < m; ++i) {
        key[i] = static_cast<float>(rng() % 12);  // many ties: they go by id
        id[i] = static_cast<std::uint32_t>(rng() % 100000);
        payload[i] = id[i] ^ 0x5A5Au;
      }
      auto want_key = key;
      auto want_id = id;
      auto want_payload = payload;
      core::bitonic_sort(SerialTeam{}, want_key.data(), want_id.data(), want_payload.data(), m);
      run_team(size, [&](const ThreadTeam& team) {
        core::bitonic_sort(team, key.data(), id.data(), payload.data(), m);
        return 0;
      });
      EXPECT_EQ(key, want_key) << "team " << size << " m " << m;
      EXPECT_EQ(id, want_id);
      EXPECT_EQ(payload, want_payload);
    }
  }
}

TEST(CudaCoreThreads, MergeLists) {
  std::mt19937_64 rng(9);
  for (const std::uint32_t size : kTeamSizes) {
    for (int round = 0; round < 20; ++round) {
      const std::uint32_t na = static_cast<std::uint32_t>(rng() % 40), nb = static_cast<std::uint32_t>(rng() % 40);
      const std::uint32_t cap = 1 + static_cast<std::uint32_t>(rng() % 50);
      std::vector<std::uint32_t> ids(na + nb);
      std::iota(ids.begin(), ids.end(), 0u);
      std::shuffle(ids.begin(), ids.end(), rng);
      std::vector<float> ak(na), bk(nb);
      std::vector<std::uint32_t> ai(ids.begin(), ids.begin() + na), bi(ids.begin() + na, ids.end());
      std::vector<std::uint8_t> af(na);
      for (auto& k : ak) k = static_cast<float>(rng() % 10);
      for (auto& k : bk) k = static_cast<float>(rng() % 10);
      for (auto& f : af) f = static_cast<std::uint8_t>(rng() % 2);
      // a sorted (with its flags); b stays in any order.
      std::vector<std::uint32_t> order(na);
      std::iota(order.begin(), order.end(), 0u);
      std::sort(order.begin(), order.end(),
                [&](auto x, auto y) { return core::candidate_less(ak[x], ai[x], ak[y], ai[y]); });
      const auto k0 = ak;
      const auto i0 = ai;
      const auto f0 = af;
      for (std::uint32_t t = 0; t < na; ++t) ak[t] = k0[order[t]], ai[t] = i0[order[t]], af[t] = f0[order[t]];
      std::vector<float> wk(cap), ok(cap);
      std::vector<std::uint32_t> wi(cap), oi(cap);
      std::vector<std::uint8_t> wf(cap), of(cap);
      std::uint32_t want_first = core::kNoNode, got_first = core::kNoNode;
      const std::uint32_t want = core::merge_lists(SerialTeam{}, ak.data(), ai.data(), af.data(), na, bk.data(),
                                                   bi.data(), nb, wk.data(), wi.data(), wf.data(), cap, &want_first);
      const std::uint32_t got = run_team(size, [&](const ThreadTeam& team) {
        return core::merge_lists(team, ak.data(), ai.data(), af.data(), na, bk.data(), bi.data(), nb, ok.data(),
                                 oi.data(), of.data(), cap, &got_first);
      });
      ASSERT_EQ(got, want);
      EXPECT_EQ(got_first, want_first);
      for (std::uint32_t t = 0; t < got; ++t) {
        EXPECT_EQ(ok[t], wk[t]);
        EXPECT_EQ(oi[t], wi[t]);
        EXPECT_EQ(of[t], wf[t]);
      }
    }
  }
}

// Concurrent inserts into one visited set (a global table alone, or behind a team-shared table
// of 64 slots that most of the 700 ids overflow): each distinct id is new for exactly one rank.
TEST(CudaCoreThreads, VisitedTableUnderContention) {
  std::mt19937_64 rng(2);
  for (const std::uint32_t size : kTeamSizes) {
    for (const std::uint32_t local_slots : {0u, 64u}) {
      const std::uint32_t count = 2000;
      std::vector<std::uint32_t> ids(count);
      for (auto& id : ids) id = static_cast<std::uint32_t>(rng() % 700);  // many duplicates
      const std::uint32_t slots = core::visited_table_slots(count, 1);
      std::vector<std::uint32_t> table(slots, core::kEmptySlot), firsts(count, 0), fresh_count(1, 0);
      std::vector<std::uint32_t> local(local_slots, core::kEmptySlot), spilled(1, 0);
      run_team(size, [&](const ThreadTeam& team) {
        team.for_each(count, [&](std::uint32_t i) {
          if (core::visit_two_level(team, local_slots != 0 ? local.data() : nullptr, local_slots - 1, table.data(),
                                    slots - 1, spilled.data(), ids[i])) {
            firsts[i] = 1;
            team.atomic_add(fresh_count.data(), 1);
          }
        });
        return 0;
      });
      const std::set<std::uint32_t> distinct(ids.begin(), ids.end());
      EXPECT_EQ(fresh_count[0], distinct.size()) << "team " << size << " local " << local_slots;
      EXPECT_EQ(spilled[0], 1u);
      std::vector<int> per_id(700, 0);
      for (std::uint32_t i = 0; i < count; ++i) per_id[ids[i]] += static_cast<int>(firsts[i]);
      for (auto id : distinct) EXPECT_EQ(per_id[id], 1) << "id " << id;
    }
  }
}

TEST(CudaCoreThreads, RobustPruneSorted) {
  std::mt19937_64 rng(11);
  for (const std::uint32_t size : kTeamSizes) {
    for (int round = 0; round < 40; ++round) {
      const std::uint32_t m = static_cast<std::uint32_t>(rng() % 100);
      const std::uint32_t R = 1 + static_cast<std::uint32_t>(rng() % 30);
      const bool ratio = round % 3 != 0;
      const auto schedule = core::make_alpha_schedule(1.0f + 0.1f * static_cast<float>(rng() % 20), ratio);
      const auto pts = integer_points(m + 1, 6, rng());
      std::vector<std::uint32_t> order(m);
      std::iota(order.begin(), order.end(), 1u);
      auto d = [&](std::uint32_t x, std::uint32_t y) { return l2(&pts[x * 6], &pts[y * 6], 6); };
      std::sort(order.begin(), order.end(),
                [&](auto x, auto y) { return core::candidate_less(d(0, x), x, d(0, y), y); });
      std::vector<float> dist(m);
      for (std::uint32_t i = 0; i < m; ++i) dist[i] = d(0, order[i]);
      auto pair = [&](std::uint32_t i, std::uint32_t j) { return d(order[i], order[j]); };
      std::vector<float> factor(m + 1);
      std::vector<std::uint32_t> kept(m + 1);
      const std::uint32_t want_count =
          core::robust_prune_sorted(SerialTeam{}, dist.data(), m, pair, R, schedule, ratio, factor.data(), kept.data());
      const std::vector<std::uint32_t> want(kept.begin(), kept.begin() + want_count);
      const auto got = run_team(size, [&](const ThreadTeam& team) {
        const std::uint32_t n =
            core::robust_prune_sorted(team, dist.data(), m, pair, R, schedule, ratio, factor.data(), kept.data());
        return std::vector<std::uint32_t>(kept.begin(), kept.begin() + n);  // every rank reads the leader's list
      });
      EXPECT_EQ(got, want) << "team " << size << " round " << round;
    }
  }
}

TEST(CudaCoreThreads, PruneNode) {
  std::mt19937_64 rng(3);
  for (const std::uint32_t size : kTeamSizes) {
    for (int round = 0; round < 30; ++round) {
      const std::uint32_t n = 200, dims = 5;
      const auto pts = integer_points(n, dims, rng(), 4);
      const std::uint32_t p = static_cast<std::uint32_t>(rng() % n);
      std::vector<std::uint32_t> ids(n);
      std::iota(ids.begin(), ids.end(), 0u);
      std::shuffle(ids.begin(), ids.end(), rng);
      const std::uint32_t count = static_cast<std::uint32_t>(rng() % 120);
      const std::vector<std::uint32_t> cand(ids.begin(), ids.begin() + count);  // may contain p
      core::PruneParams params;
      params.metric = round % 2 == 0 ? core::Metric::kL2 : core::Metric::kInnerProduct;
      params.ratio_rule = params.metric != core::Metric::kInnerProduct;
      params.R = 4 + static_cast<std::uint32_t>(rng() % 20);
      params.schedule = core::make_alpha_schedule(1.4f, params.ratio_rule);
      std::vector<std::uint32_t> rows = {p};
      rows.insert(rows.end(), cand.begin(), cand.end());
      auto gram = [&](std::uint32_t a, std::uint32_t b) {
        float s = 0.0f;
        for (std::uint32_t d = 0; d < dims; ++d) s += pts[rows[a] * dims + d] * pts[rows[b] * dims + d];
        return s;
      };
      const std::uint32_t capacity = 128;
      std::vector<std::uint32_t> serial_mem(core::prune_shared_bytes(capacity) / 4 + 1), team_mem(serial_mem.size());
      std::vector<std::uint32_t> want(params.R), out(params.R);
      std::vector<float> want_d(params.R), out_d(params.R);
      want.resize(core::prune_node(SerialTeam{}, p, cand.data(), count, gram, params,
                                   core::carve_prune_shared(serial_mem.data(), capacity), want.data(), want_d.data()));
      want_d.resize(want.size());
      // The ranks share out (each writes the entries it owns), as the device threads do.
      const std::uint32_t kept = run_team(size, [&](const ThreadTeam& team) {
        return core::prune_node(team, p, cand.data(), count, gram, params,
                                core::carve_prune_shared(team_mem.data(), capacity), out.data(), out_d.data());
      });
      ASSERT_EQ(kept, want.size()) << "team " << size << " round " << round;
      out.resize(kept);
      out_d.resize(kept);
      EXPECT_EQ(out, want);
      EXPECT_EQ(out_d, want_d);
    }
  }
}

// The search core on a random graph: the same expansions, in the same order, as the serial team,
// within its barrier budget.
TEST(CudaCoreThreads, GreedySearchOne) {
  std::mt19937_64 rng(13);
  for (const std::uint32_t size : kTeamSizes) {
    for (int round = 0; round < 8; ++round) {
      const std::uint32_t n = 300, dims = 6, stride = 12;
      const std::uint32_t L = 4 + static_cast<std::uint32_t>(rng() % 40);
      const auto pts = integer_points(n, dims, rng(), 9);
      const auto [nb, deg] = vs::test::random_graph(n, stride, true, rng);
      const auto q = integer_points(1, dims, rng(), 9);
      const std::uint32_t start = static_cast<std::uint32_t>(rng() % n);
      core::SearchArgs a;
      a.vectors = pts.data();
      a.dims = dims;
      a.metric = round % 2 == 0 ? core::Metric::kL2 : core::Metric::kInnerProduct;
      a.neighbors = nb.data();
      a.degrees = deg.data();
      a.stride = stride;
      a.list_size = L;
      a.max_iters = round % 4 == 3 ? 3 : 10 * n;  // some searches stop at the cap
      a.local_slots = round % 2 == 0 ? 0 : core::kLocalProbes;  // a team-shared table the search outgrows
      a.query_bytes = round % 3 == 0 ? core::staged_query_bytes<float>(dims) : 0;  // the query copied in
      struct Run {
        std::vector<core::Chunk> mem;
        std::vector<std::uint32_t> table, log_id;
        std::vector<float> log_key;
      };
      auto make_run = [&] {
        return Run{
            std::vector<core::Chunk>(core::search_shared_bytes(L, stride, a.local_slots, a.query_bytes) / 16 + 1),
            std::vector<std::uint32_t>(core::visited_table_slots(a.max_iters, stride), core::kEmptySlot),
            std::vector<std::uint32_t>(a.max_iters), std::vector<float>(a.max_iters)};
      };
      auto search = [&](const auto& team, Run& run) {
        const auto shared = core::carve_search_shared(run.mem.data(), L, stride, a.local_slots, a.query_bytes);
        const auto mask = static_cast<std::uint32_t>(run.table.size() - 1);
        const auto r = a.query_bytes != 0
                           ? core::greedy_search_one<true>(team, a, shared, q.data(), start, run.table.data(), mask,
                                                           run.log_id.data(), run.log_key.data())
                           : core::greedy_search_one<false>(team, a, shared, q.data(), start, run.table.data(), mask,
                                                            run.log_id.data(), run.log_key.data());
        return std::make_tuple(r.expanded, r.computed);
      };
      Run serial = make_run(), threaded = make_run();
      const auto want = search(SerialTeam{}, serial);
      std::uint64_t barriers = 0;
      const auto got = run_team(size, [&](const ThreadTeam& team) { return search(team, threaded); }, &barriers);
      ASSERT_EQ(got, want) << "team " << size << " round " << round;
      const auto expanded = std::get<0>(got);
      // At most three barriers a step (distances, merge, neighbours), plus the start (clearing
      // the team-shared table, the first candidate), the last step's two and the table's clearing.
      EXPECT_LE(barriers, 3u * expanded + 5u) << expanded << " steps";
      EXPECT_TRUE(std::equal(threaded.log_id.begin(), threaded.log_id.begin() + expanded, serial.log_id.begin()));
      EXPECT_TRUE(std::equal(threaded.log_key.begin(), threaded.log_key.begin() + expanded, serial.log_key.begin()));
      EXPECT_EQ(std::count(threaded.table.begin(), threaded.table.end(), core::kEmptySlot),
                static_cast<std::ptrdiff_t>(threaded.table.size()));  // left empty
    }
  }
}

}  // namespace
