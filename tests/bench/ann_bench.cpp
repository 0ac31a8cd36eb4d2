// ann_bench: builds the in-memory DiskANN index (and hnswlib, when available) on .fvecs data
// and reports build seconds, recall@k and QPS over a sweep of search list sizes, side by side
// in one run on the same number of threads. One JSON object per line on stdout.
//
//   ann_bench --data ../shared/data/mnist-10k --metric l2 --threads 2 --sweep 10,20,40,80
#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <string>
#include <thread>
#include <vector>

#include "vecio.hpp"
#include "vectorscale/core/threads.hpp"
#include "vectorscale/distance/distance.hpp"
#include "vectorscale/vamana/index.hpp"

#ifdef VS_HAVE_HNSWLIB
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wunused-parameter"
#pragma GCC diagnostic ignored "-Wsign-compare"
#pragma GCC diagnostic ignored "-Wmissing-field-initializers"
#pragma GCC diagnostic ignored "-Wunused-variable"
#include <hnswlib/hnswlib.h>
#pragma GCC diagnostic pop
#endif

namespace {

using Clock = std::chrono::steady_clock;
using vs::distance::Metric;

double seconds_since(Clock::time_point t0) { return std::chrono::duration<double>(Clock::now() - t0).count(); }

struct Options {
  std::string data;  // prefix: <data>.base.fvecs, <data>.query.fvecs, <data>.gt.ivecs
  std::string name;
  Metric metric = Metric::kL2;
  unsigned threads = 1;
  unsigned k = 10;
  std::vector<unsigned> sweep{10, 20, 30, 40, 60, 80, 100, 150, 200};
  vs::vamana::IndexParams index;
  std::vector<unsigned> rescore{0};
  bool hnsw = true;
  unsigned hnsw_m = 16, hnsw_efc = 100;
  std::size_t max_base = static_cast<std::size_t>(-1);
  std::size_t max_queries = static_cast<std::size_t>(-1);
  double expect_recall = -1;  // exit 1 unless some vectorscale setting reaches it
};

std::vector<unsigned> parse_list(const char* s) {
  std::vector<unsigned> out;
  for (const char* p = s; *p != '\0';) {
    char* end = nullptr;
    out.push_back(static_cast<unsigned>(std::strtoul(p, &end, 10)));
    p = (*end == ',') ? end + 1 : end;
    if (end == p && *p != '\0') break;
  }
  return out;
}

[[noreturn]] void usage() {
  std::fprintf(stderr,
               "usage: ann_bench --data PREFIX [--metric l2|cosine|ip] [--threads N] [--k K]\n"
               "       [--sweep L1,L2,..] [--storage plain|sbq] [--bits B] [--rescore R1,R2,..]\n"
               "       [--R n] [--L n] [--alpha a] [--seed s] [--no-hnsw] [--hnsw-m M] [--hnsw-efc E]\n"
               "       [--max-base N] [--max-queries N] [--expect-recall R]\n"
               "--expect-recall: exit 1 unless the best vectorscale recall of the sweep reaches R\n");
  std::exit(2);
}

Options parse(int argc, char** argv) {
  Options o;
  o.index.build.metric = Metric::kL2;
  o.index.build.threads = 1;
  for (int i = 1; i < argc; ++i) {
    const std::string a = argv[i];
    auto next = [&]() -> const char* {
      if (i + 1 >= argc) usage();
      return argv[++i];
    };
    if (a == "--data") o.data = next();
    else if (a == "--metric") {
      const std::string m = next();
      o.metric = m == "l2" ? Metric::kL2 : m == "cosine" ? Metric::kCosine : m == "ip" ? Metric::kInnerProduct : (usage(), Metric::kL2);
    } else if (a == "--threads") o.threads = static_cast<unsigned>(std::atoi(next()));
    else if (a == "--k") o.k = static_cast<unsigned>(std::atoi(next()));
    else if (a == "--sweep") o.sweep = parse_list(next());
    else if (a == "--storage") o.index.storage = std::string(next()) == "plain" ? vs::vamana::Storage::kPlain : vs::vamana::Storage::kMemoryOptimized;
    else if (a == "--bits") o.index.bits_per_dim = static_cast<unsigned>(std::atoi(next()));
    else if (a == "--rescore") o.rescore = parse_list(next());
    else if (a == "--R") o.index.build.num_neighbors = static_cast<unsigned>(std::atoi(next()));
    else if (a == "--L") o.index.build.search_list_size = static_cast<unsigned>(std::atoi(next()));
    else if (a == "--alpha") o.index.build.max_alpha = static_cast<float>(std::atof(next()));
    else if (a == "--seed") o.index.build.seed = std::strtoull(next(), nullptr, 10);
    else if (a == "--no-hnsw") o.hnsw = false;
    else if (a == "--hnsw-m") o.hnsw_m = static_cast<unsigned>(std::atoi(next()));
    else if (a == "--hnsw-efc") o.hnsw_efc = static_cast<unsigned>(std::atoi(next()));
    else if (a == "--max-base") o.max_base = std::strtoull(next(), nullptr, 10);
    else if (a == "--max-queries") o.max_queries = std::strtoull(next(), nullptr, 10);
    else if (a == "--expect-recall") o.expect_recall = std::atof(next());
    else usage();
  }
  if (o.data.empty() || o.threads == 0 || o.k == 0) usage();
  o.index.build.metric = o.metric;
  o.index.build.threads = o.threads;
  const auto slash = o.data.find_last_of('/');
  o.name = slash == std::string::npos ? o.data : o.data.substr(slash + 1);
  return o;
}

// Recall@k of one result list against the first k ground-truth ids.
double recall_of(const std::vector<std::uint32_t>& found, const std::int32_t* truth, unsigned k) {
  unsigned hits = 0;
  for (std::size_t i = 0; i < std::min<std::size_t>(found.size(), k); ++i)
    for (unsigned j = 0; j < k; ++j)
      if (static_cast<std::int32_t>(found[i]) == truth[j]) {
        ++hits;
        break;
      }
  return static_cast<double>(hits) / k;
}

// Runs `query(i, out)` for every query on `threads` workers; returns {recall, qps}.
template <class Query>
std::pair<double, double> run_queries(const Options& o, std::size_t nq, const vs::test::VecFile<std::int32_t>& gt,
                                      Query&& query) {
  std::vector<double> recall(nq, 0.0);
  std::atomic<std::size_t> next{0};
  const auto t0 = Clock::now();
  vs::run_workers(o.threads, [&](std::size_t w) {
    std::vector<std::uint32_t> out;
    for (std::size_t i = next.fetch_add(1); i < nq; i = next.fetch_add(1)) {
      query(w, i, out);
      recall[i] = recall_of(out, &gt.data[i * gt.dims], o.k);
    }
  });
  const double secs = seconds_since(t0);
  double sum = 0;
  for (const double r : recall) sum += r;
  return {sum / static_cast<double>(nq), static_cast<double>(nq) / secs};
}

const char* storage_name(vs::vamana::Storage s) { return s == vs::vamana::Storage::kPlain ? "plain" : "sbq"; }

}  // namespace

int main(int argc, char** argv) {
  const Options o = parse(argc, argv);
  const auto base = vs::test::read_vecs<float>(o.data + ".base.fvecs", o.max_base);
  const auto queries = vs::test::read_vecs<float>(o.data + ".query.fvecs", o.max_queries);
  const auto gt = vs::test::read_vecs<std::int32_t>(o.data + ".gt.ivecs", o.max_queries);
  if (base.dims != queries.dims || gt.rows < queries.rows || gt.dims < o.k) {
    std::fprintf(stderr, "ann_bench: inconsistent data files\n");
    return 1;
  }
  if (o.max_base != static_cast<std::size_t>(-1))
    std::fprintf(stderr, "ann_bench: warning: --max-base truncates the base; the ground truth no longer matches\n");
  const std::size_t nq = queries.rows, dims = base.dims;
  const char* metric = vs::distance::metric_name(o.metric);
  const char* simd = vs::distance::simd_level_name(vs::distance::active_simd_level());

  // ---- vectorscale -----------------------------------------------------------------------
  vs::vamana::BuildStats stats;
  auto t0 = Clock::now();
  const auto index = vs::vamana::Index::build(base.data.data(), base.rows, dims, o.index, nullptr, {}, &stats);
  const double build_s = seconds_since(t0);
  std::uint64_t edges = 0;
  for (std::uint32_t i = 0; i < index.size(); ++i) edges += index.graph().degrees[i];
  const unsigned bits = o.index.storage == vs::vamana::Storage::kPlain ? 0 : index.quantizer().bits();
  std::printf("{\"engine\":\"vectorscale\",\"dataset\":\"%s\",\"metric\":\"%s\",\"phase\":\"build\",\"rows\":%zu,"
              "\"dims\":%zu,\"threads\":%u,\"R\":%u,\"L\":%u,\"alpha\":%.2f,\"storage\":\"%s\",\"bits\":%u,"
              "\"seconds\":%.3f,\"avg_degree\":%.2f,\"repaired\":%u,\"simd\":\"%s\"}\n",
              o.name.c_str(), metric, base.rows, dims, o.threads, o.index.build.num_neighbors,
              o.index.build.search_list_size, o.index.build.max_alpha, storage_name(o.index.storage), bits, build_s,
              static_cast<double>(edges) / static_cast<double>(std::max<std::size_t>(1, index.size())),
              stats.repaired_unreachable, simd);
  std::fflush(stdout);

  std::vector<vs::vamana::SearchScratch> scratch(o.threads);
  double best_recall = 0;
  const auto rescores = o.index.storage == vs::vamana::Storage::kPlain ? std::vector<unsigned>{0} : o.rescore;
  for (const unsigned rescore : rescores) {
    for (const unsigned L : o.sweep) {
      vs::vamana::SearchParams sp;
      sp.k = o.k;
      sp.search_list_size = L;
      sp.rescore = rescore;
      for (auto& s : scratch) s.distance_computations = 0;
      const auto [recall, qps] = run_queries(o, nq, gt, [&](std::size_t w, std::size_t i, auto& out) {
        index.search(&queries.data[i * dims], sp, out, scratch[w]);
      });
      std::uint64_t dc = 0;
      for (const auto& s : scratch) dc += s.distance_computations;
      best_recall = std::max(best_recall, recall);
      std::printf("{\"engine\":\"vectorscale\",\"dataset\":\"%s\",\"phase\":\"search\",\"storage\":\"%s\",\"L\":%u,"
                  "\"rescore\":%u,\"k\":%u,\"threads\":%u,\"recall\":%.4f,\"qps\":%.1f,\"dist_per_query\":%.1f}\n",
                  o.name.c_str(), storage_name(o.index.storage), L, rescore, o.k, o.threads, recall, qps,
                  static_cast<double>(dc) / static_cast<double>(nq));
      std::fflush(stdout);
    }
  }

#ifdef VS_HAVE_HNSWLIB
  // ---- hnswlib ----------------------------------------------------------------------------
  if (o.hnsw) {
    std::vector<float> hbase(base.data), hq(queries.data);
    std::unique_ptr<hnswlib::SpaceInterface<float>> space;
    if (o.metric == Metric::kL2) {
      space = std::make_unique<hnswlib::L2Space>(dims);
    } else {
      if (o.metric == Metric::kCosine) {
        for (std::size_t i = 0; i < base.rows; ++i) (void)vs::distance::normalize(&hbase[i * dims], dims);
        for (std::size_t i = 0; i < nq; ++i) (void)vs::distance::normalize(&hq[i * dims], dims);
      }
      space = std::make_unique<hnswlib::InnerProductSpace>(dims);
    }
    hnswlib::HierarchicalNSW<float> h(space.get(), base.rows, o.hnsw_m, o.hnsw_efc, 100);
    t0 = Clock::now();
    std::atomic<std::size_t> next{0};
    vs::run_workers(o.threads, [&](std::size_t) {
      for (std::size_t i = next.fetch_add(1); i < base.rows; i = next.fetch_add(1)) h.addPoint(&hbase[i * dims], i);
    });
    const double hbuild = seconds_since(t0);
    std::printf("{\"engine\":\"hnswlib\",\"dataset\":\"%s\",\"metric\":\"%s\",\"phase\":\"build\",\"rows\":%zu,"
                "\"dims\":%zu,\"threads\":%u,\"M\":%u,\"ef_construction\":%u,\"seconds\":%.3f}\n",
                o.name.c_str(), metric, base.rows, dims, o.threads, o.hnsw_m, o.hnsw_efc, hbuild);
    std::fflush(stdout);
    for (const unsigned ef : o.sweep) {
      h.setEf(std::max(ef, o.k));
      h.metric_distance_computations = 0;
      const auto [recall, qps] = run_queries(o, nq, gt, [&](std::size_t, std::size_t i, auto& out) {
        auto pq = h.searchKnn(&hq[i * dims], o.k);
        out.assign(pq.size(), 0);
        for (std::size_t j = pq.size(); j-- > 0; pq.pop()) out[j] = static_cast<std::uint32_t>(pq.top().second);
      });
      std::printf("{\"engine\":\"hnswlib\",\"dataset\":\"%s\",\"phase\":\"search\",\"ef\":%u,\"k\":%u,\"threads\":%u,"
                  "\"recall\":%.4f,\"qps\":%.1f,\"dist_per_query\":%.1f}\n",
                  o.name.c_str(), ef, o.k, o.threads, recall, qps,
                  static_cast<double>(h.metric_distance_computations.load()) / static_cast<double>(nq));
      std::fflush(stdout);
    }
  }
#endif
  if (o.expect_recall >= 0 && best_recall < o.expect_recall) {
    std::fprintf(stderr, "ann_bench: best vectorscale recall@%u %.4f is below the expected %.4f\n", o.k, best_recall,
                 o.expect_recall);
    return 1;
  }
  return 0;
}
