// gpu_build_bench: the builder alone, CUDA backend against CPU backend on the same machine and
// data. Generates seeded clustered data (N x D), builds the index with each backend (the CPU
// one: vamana::Index::build, as gpu_builder's CPU backend; the CUDA one: vs::cuda::
// build_on_device + Index::from_parts, as its CUDA backend), and prints one JSON object per
// line: seconds per phase and in total, and recall@10 against brute force on sampled queries at
// several query search list sizes (for cuda also `device_seconds`: the graph phase's device time
// by kind of work; `search`: distances and expansions per search, the vector bytes they read and
// the bandwidth that took; `prune_gemm`: the prunes' Gram GEMM work in GFLOP and gathered rows
// in GiB, as done and as the unbucketed layout would do it). A last line compares the first two
// backends (speed-up, recall gap). Backend `reference` runs the CUDA backend's algorithm serially on the CPU
// (vs::cuda::reference_build_graph): its recall without a GPU, slowly.
//
//   gpu_build_bench --n 1000000 --dims 768                  # the issue's benchmark
//   gpu_build_bench --n 100000 --dims 768 --backends cuda   # GPU only
//   gpu_build_bench --n 1000000 --dims 768 --write /tmp/c1m # data files for pg_bench.py, then exit
//
// CREATE INDEX end to end: tests/bench/pg_bench.py --data PREFIX --builder build/gpu_builder/gpu_builder
// --builder-backends cpu,cuda --sections build,sweep (see gpu_builder/README.md).
#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <iterator>
#include <map>
#include <random>
#include <string>
#include <thread>
#include <utility>
#include <vector>

#include "vecio.hpp"
#include "vectorscale/core/error.hpp"
#include "vectorscale/core/threads.hpp"
#include "vectorscale/cuda/reference.hpp"
#include "vectorscale/distance/distance.hpp"
#include "vectorscale/vamana/build.hpp"
#include "vectorscale/vamana/index.hpp"
#ifdef VS_HAVE_CUDA
#include "vectorscale/cuda/device_build.hpp"
#endif

namespace {

using Clock = std::chrono::steady_clock;
using vs::distance::Metric;

double since(Clock::time_point t) {
  return std::chrono::duration<double>(Clock::now() - t).count();
}

struct Options {
  std::size_t n = 100000, dims = 768, clusters = 1000, queries = 1000, k = 10;
  std::string data;  // prefix of real data (<data>.base.fvecs, <data>.query.fvecs) instead of generated data
  bool n_given = false, queries_given = false;
  std::size_t latent = 32;  // dimensions the clusters live in (0: all of dims)
  float spread = 0.35f, noise = 0.2f;
  std::uint64_t seed = 42;
  Metric metric = Metric::kCosine;
  vs::vamana::IndexParams index;
  unsigned threads = std::max(1u, std::thread::hardware_concurrency());
  std::vector<unsigned> search_l{10, 20, 50, 100, 200};
  unsigned rescore = 50;
  std::vector<std::string> backends{"cpu", "cuda"};
  int device = -1;
  double batch_fraction = -1, max_iters_factor = -1;
  int refine_passes = -1;
  long refine_max_rows = -1;
  long local_visited = -1;
  bool tf32 = false;
  bool fp32 = false;
  bool full_occupancy = false;
  int query_in_shared = -1;
  std::string vectors = "auto";  // where the device build keeps the vectors: auto, mapped-training, mapped

  // The GPU build's knobs, defaults unless given.
  [[nodiscard]] vs::cuda::GraphOptions graph() const {
    vs::cuda::GraphOptions g;
    if (batch_fraction > 0) g.batch_fraction = batch_fraction;
    if (refine_passes >= 0) g.refine_passes = static_cast<std::uint32_t>(refine_passes);
    if (refine_max_rows >= 0) g.refine_max_rows = static_cast<std::size_t>(refine_max_rows);
    if (max_iters_factor > 0) g.max_iters_factor = max_iters_factor;
    if (local_visited >= 0) g.local_visited_slots = static_cast<std::uint32_t>(local_visited);
    g.tf32_gram = tf32;
    g.search_full_occupancy = full_occupancy;
    if (query_in_shared >= 0) g.search_query_in_shared = query_in_shared != 0;
    g.bf16_vectors = !fp32;
    return g;
  }
  std::string write;
};

[[noreturn]] void usage(const char* why) {
  std::fprintf(stderr,
               "gpu_build_bench: %s\n"
               "usage: gpu_build_bench [--n N] [--dims D] [--clusters C] [--spread S] [--latent K] [--noise E]\n"
               "         [--data PREFIX (PREFIX.base.fvecs and PREFIX.query.fvecs instead of generated data)]\n"
               "         [--seed X]\n"
               "         [--metric cosine|l2|ip] [--R 50] [--L 100] [--alpha 1.2] [--storage sbq|plain] [--bits B]\n"
               "         [--threads T] [--queries Q] [--search-l 10,20,50,100,200] [--rescore 50]\n"
               "         [--backends cpu,cuda,reference[:knob=value...],...] [--cuda-device I]\n"
               "         [--batch-fraction F] [--refine-passes P] [--refine-max-rows N (0: no limit)]\n"
               "         [--max-iters-factor M] [--local-visited SLOTS] [--search-full-occupancy] [--tf32] [--fp32]\n"
               "         [--query-in-shared 0|1] [--vectors auto|mapped-training|mapped]\n"
               "         [--write PREFIX]\n",
               why);
  std::exit(2);
}

std::vector<std::string> split(const std::string& s) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at <= s.size()) {
    const std::size_t comma = s.find(',', at);
    out.push_back(s.substr(at, comma == std::string::npos ? std::string::npos : comma - at));
    if (comma == std::string::npos) break;
    at = comma + 1;
  }
  return out;
}

// Applies the options argv[first..argc) on top of o.
void parse_onto(Options& o, int first, int argc, char** argv) {
  for (int i = first; i < argc; ++i) {
    const std::string a = argv[i];
    auto value = [&]() -> std::string {
      if (i + 1 >= argc) usage(("missing value for " + a).c_str());
      return argv[++i];
    };
    auto num = [&]() { return std::strtod(value().c_str(), nullptr); };
    if (a == "--n") {
      o.n = static_cast<std::size_t>(num());
      o.n_given = true;
    } else if (a == "--data")
      o.data = value();
    else if (a == "--dims")
      o.dims = static_cast<std::size_t>(num());
    else if (a == "--clusters")
      o.clusters = static_cast<std::size_t>(num());
    else if (a == "--spread")
      o.spread = static_cast<float>(num());
    else if (a == "--latent")
      o.latent = static_cast<std::size_t>(num());
    else if (a == "--noise")
      o.noise = static_cast<float>(num());
    else if (a == "--seed")
      o.seed = static_cast<std::uint64_t>(num());
    else if (a == "--queries") {
      o.queries = static_cast<std::size_t>(num());
      o.queries_given = true;
    } else if (a == "--metric") {
      const std::string m = value();
      o.metric = m == "l2"       ? Metric::kL2
                 : m == "ip"     ? Metric::kInnerProduct
                 : m == "cosine" ? Metric::kCosine
                                 : (usage("bad --metric"), Metric::kL2);
    } else if (a == "--R")
      o.index.build.num_neighbors = static_cast<std::uint32_t>(num());
    else if (a == "--L")
      o.index.build.search_list_size = static_cast<std::uint32_t>(num());
    else if (a == "--alpha")
      o.index.build.max_alpha = static_cast<float>(num());
    else if (a == "--storage")
      o.index.storage = value() == "plain" ? vs::vamana::Storage::kPlain : vs::vamana::Storage::kMemoryOptimized;
    else if (a == "--bits")
      o.index.bits_per_dim = static_cast<std::uint32_t>(num());
    else if (a == "--threads")
      o.threads = static_cast<unsigned>(num()), o.index.build.threads = o.threads;
    else if (a == "--search-l") {
      o.search_l.clear();
      for (const auto& s : split(value())) o.search_l.push_back(static_cast<unsigned>(std::atoi(s.c_str())));
    } else if (a == "--rescore")
      o.rescore = static_cast<unsigned>(num());
    else if (a == "--backends")
      o.backends = split(value());
    else if (a == "--cuda-device")
      o.device = static_cast<int>(num());
    else if (a == "--batch-fraction")
      o.batch_fraction = num();
    else if (a == "--refine-passes")
      o.refine_passes = static_cast<int>(num());
    else if (a == "--refine-max-rows")
      o.refine_max_rows = static_cast<long>(num());
    else if (a == "--max-iters-factor")
      o.max_iters_factor = num();
    else if (a == "--local-visited")
      o.local_visited = static_cast<long>(num());
    else if (a == "--write")
      o.write = value();
    else if (a == "--tf32")
      o.tf32 = true;
    else if (a == "--fp32")
      o.fp32 = true;
    else if (a == "--search-full-occupancy")
      o.full_occupancy = true;
    else if (a == "--query-in-shared")
      o.query_in_shared = static_cast<int>(num());
    else if (a == "--vectors") {
      o.vectors = value();
      if (o.vectors != "auto" && o.vectors != "mapped-training" && o.vectors != "mapped")
        usage("--vectors takes auto, mapped-training or mapped");
    } else
      usage(("unknown option " + a).c_str());
  }
}

Options parse(int argc, char** argv) {
  Options o;
  o.index.build.threads = o.threads;
  parse_onto(o, 1, argc, argv);
  o.index.build.metric = o.metric;
  if (o.n == 0 || o.dims == 0 || o.clusters == 0) usage("--n, --dims and --clusters must be positive");
  return o;
}

// A backend of --backends: its name and the options it runs with. "cuda:refine-passes=0:fp32"
// runs cuda with the GPU build's knobs changed (--refine-passes 0 --fp32) on the same data and
// queries, so that variants compare side by side in one run; its JSON lines name it in full.
std::pair<std::string, Options> backend_options(const Options& o, const std::string& spec) {
  static const char* const kKnobs[] = {"batch-fraction",   "refine-passes", "refine-max-rows",
                                       "max-iters-factor", "local-visited", "search-full-occupancy",
                                       "query-in-shared",  "tf32",          "fp32",
                                       "vectors"};
  std::vector<std::string> parts;
  for (std::size_t at = 0;;) {
    const std::size_t colon = spec.find(':', at);
    parts.push_back(spec.substr(at, colon == std::string::npos ? std::string::npos : colon - at));
    if (colon == std::string::npos) break;
    at = colon + 1;
  }
  std::vector<std::string> args{"gpu_build_bench"};
  for (std::size_t i = 1; i < parts.size(); ++i) {
    const std::size_t eq = parts[i].find('=');
    const std::string key = parts[i].substr(0, eq);
    if (std::find(std::begin(kKnobs), std::end(kKnobs), key) == std::end(kKnobs))
      usage(("a backend variant may set only the GPU build's knobs, not " + key).c_str());
    args.push_back("--" + key);
    if (eq != std::string::npos) args.push_back(parts[i].substr(eq + 1));
  }
  std::vector<char*> argv;
  for (auto& a : args) argv.push_back(a.data());
  Options vo = o;
  parse_onto(vo, 1, static_cast<int>(argv.size()), argv.data());
  return {parts[0], vo};
}

// n + q rows around `clusters` Gaussian centres (spread * N(0, 1) each) in `latent` dimensions,
// mapped into `dims` by a fixed random Gaussian matrix (entries N(0, 1/dims): lengths and
// distances about kept), plus isotropic noise of expected length `noise`. Real embeddings have
// a low intrinsic dimension; Gaussian clusters in all 768 dimensions make every point of a
// cluster about equally far from every other, so that the exact top 10 is near ties and no
// index finds it (recall@10 below 0.8 at L=200 on 100,000 such rows). latent 0: clusters in
// all dims, no map or noise. Generated in blocks of 16384 rows with their own seeded
// generator: the same data whatever the number of threads.
std::vector<float> clustered(std::size_t rows, std::size_t dims, const Options& o) {
  const std::size_t k = o.latent == 0 ? dims : std::min(o.latent, dims);
  const bool mapped = k < dims;
  std::vector<float> centres(o.clusters * k), map(mapped ? dims * k : 0);
  {
    std::mt19937_64 rng(o.seed);
    std::normal_distribution<float> g(0.0f, 1.0f);
    for (auto& c : centres) c = g(rng);
    const float scale = 1.0f / std::sqrt(static_cast<float>(dims));
    for (auto& m : map) m = scale * g(rng);
  }
  std::vector<float> out(rows * dims);
  constexpr std::size_t kBlock = 16384;
  const std::size_t blocks = (rows + kBlock - 1) / kBlock;
  const float noise = o.noise / std::sqrt(static_cast<float>(dims));
  vs::run_workers(o.threads, [&](std::size_t w) {
    std::vector<float> z(k);
    for (std::size_t b = w; b < blocks; b += o.threads) {
      std::mt19937_64 rng(o.seed * 1000003ull + b + 1);
      std::normal_distribution<float> g(0.0f, 1.0f);
      std::uniform_int_distribution<std::size_t> pick(0, o.clusters - 1);
      for (std::size_t i = b * kBlock; i < std::min(rows, (b + 1) * kBlock); ++i) {
        const float* c = &centres[pick(rng) * k];
        for (std::size_t j = 0; j < k; ++j) z[j] = c[j] + o.spread * g(rng);
        float* x = &out[i * dims];
        if (!mapped) {
          std::copy(z.begin(), z.end(), x);
          continue;
        }
        for (std::size_t d = 0; d < dims; ++d) x[d] = noise * g(rng) + vs::distance::dot(&map[d * k], z.data(), k);
      }
    }
  });
  return out;
}

// Exact top-k of every query by index_distance on the stored vectors (ties: smaller row).
std::vector<std::vector<std::uint32_t>> brute_force(const float* base, std::size_t n, const std::vector<float>& q,
                                                    std::size_t dims, std::size_t k, Metric metric, unsigned threads) {
  const std::size_t nq = q.size() / dims;
  std::vector<std::vector<std::uint32_t>> out(nq);
  vs::run_workers(threads, [&](std::size_t w) {
    std::vector<std::pair<float, std::uint32_t>> best;
    for (std::size_t i = w; i < nq; i += threads) {
      best.clear();
      for (std::size_t j = 0; j < n; ++j) {
        const float d = vs::distance::index_distance(metric, &q[i * dims], base + j * dims, dims);
        if (best.size() < k || std::make_pair(d, static_cast<std::uint32_t>(j)) < best.back()) {
          best.emplace_back(d, static_cast<std::uint32_t>(j));
          std::sort(best.begin(), best.end());
          if (best.size() > k) best.pop_back();
        }
      }
      for (const auto& b : best) out[i].push_back(b.second);
    }
  });
  return out;
}

void write_vecs(const std::string& path, const void* data, std::size_t rows, std::size_t dims) {
  std::FILE* f = std::fopen(path.c_str(), "wb");
  if (f == nullptr) throw std::runtime_error("cannot write " + path);
  const auto* p = static_cast<const char*>(data);
  const auto d = static_cast<std::int32_t>(dims);
  for (std::size_t i = 0; i < rows; ++i) {
    std::fwrite(&d, 4, 1, f);
    std::fwrite(p + i * dims * 4, 4, dims, f);
  }
  std::fclose(f);
}

// Recall@k of `index` at each query list size.
std::map<unsigned, double> measure(const vs::vamana::Index& index, const Options& o, const std::vector<float>& q,
                                   const std::vector<std::vector<std::uint32_t>>& truth) {
  std::map<unsigned, double> out;
  const std::size_t nq = truth.size();
  for (const unsigned L : o.search_l) {
    std::vector<std::size_t> hits(o.threads, 0);
    vs::run_workers(o.threads, [&](std::size_t w) {
      vs::vamana::SearchParams sp;
      sp.k = static_cast<std::uint32_t>(o.k);
      sp.search_list_size = L;
      sp.rescore = o.rescore;
      vs::vamana::SearchScratch scratch;
      std::vector<std::uint32_t> found;
      for (std::size_t i = w; i < nq; i += o.threads) {
        index.search(&q[i * o.dims], sp, found, scratch);
        for (const std::uint32_t id : found)
          if (std::find(truth[i].begin(), truth[i].end(), id) != truth[i].end()) ++hits[w];
      }
    });
    std::size_t total = 0;
    for (const auto h : hits) total += h;
    out[L] = static_cast<double>(total) / static_cast<double>(nq * o.k);
  }
  return out;
}

// The exact top-k of the queries over the stored rows (for cosine: queries and rows normalised),
// as the index compares them.
std::vector<std::vector<std::uint32_t>> stored_truth(const std::vector<float>& all, const std::vector<float>& queries,
                                                     const Options& o, std::size_t k) {
  std::vector<float> stored = all, qn = queries;
  if (o.metric == Metric::kCosine) {
    for (std::size_t i = 0; i < o.n; ++i) (void)vs::distance::normalize(&stored[i * o.dims], o.dims);
    for (std::size_t i = 0; i < o.queries; ++i) (void)vs::distance::normalize(&qn[i * o.dims], o.dims);
  }
  return brute_force(stored.data(), o.n, qn, o.dims, k, o.metric, o.threads);
}

struct Result {
  std::string backend;
  double total = 0;
  std::map<std::string, double> phases;
  std::map<unsigned, double> recall;
  // cuda: "device_seconds" (the graph phase by kind of work), "search" (work of the greedy
  // searches and the bandwidth it took), "prune_gemm" (vs::cuda::GramWork: GFLOP, GiB, counts);
  // reference: "search".
  std::map<std::string, std::map<std::string, double>> sections;
  std::string note;
};

// The greedy searches' work (n searches per pass): distances and expansions per search, and the
// vector bytes those distances read (element_bytes a dimension; neighbour lists and visited
// tables not counted); with the searches' device seconds, the bandwidth that took. The
// distances include the few of the connectivity pass.
std::map<std::string, double> search_work(const Options& o, const vs::cuda::GraphBuildStats& st,
                                          unsigned element_bytes, double seconds) {
  const double searches = static_cast<double>(o.n) * (1 + st.refine_passes);
  const double gib = static_cast<double>(st.distance_computations) * static_cast<double>(o.dims * element_bytes) /
                     static_cast<double>(1ull << 30);
  std::map<std::string, double> m = {{"searches", searches},
                                     {"refine_passes", static_cast<double>(st.refine_passes)},
                                     {"distances_per_search", static_cast<double>(st.distance_computations) / searches},
                                     {"expansions_per_search", static_cast<double>(st.expansions) / searches},
                                     {"vector_gib", gib}};
  if (seconds > 0) m["vector_gib_per_s"] = gib / seconds;
  return m;
}

void print(const Options& o, const Result& r) {
  std::printf(
      "{\"backend\":\"%s\",\"n\":%zu,\"dims\":%zu,\"metric\":\"%s\",\"R\":%u,\"L\":%u,\"storage\":\"%s\","
      "\"threads\":%u,\"seconds\":{",
      r.backend.c_str(), o.n, o.dims, vs::distance::metric_name(o.metric), o.index.build.num_neighbors,
      o.index.build.search_list_size, o.index.storage == vs::vamana::Storage::kPlain ? "plain" : "memory_optimized",
      o.threads);
  for (const auto& [k, v] : r.phases) std::printf("\"%s\":%.3f,", k.c_str(), v);
  std::printf("\"total\":%.3f},\"recall_at_10\":{", r.total);
  bool first = true;
  for (const auto& [l, v] : r.recall) std::printf("%s\"%u\":%.4f", first ? "" : ",", l, v), first = false;
  std::printf("}");
  for (const auto& [name, values] : r.sections) {
    std::printf(",\"%s\":{", name.c_str());
    first = true;
    for (const auto& [k, v] : values) std::printf("%s\"%s\":%.6g", first ? "" : ",", k.c_str(), v), first = false;
    std::printf("}");
  }
  std::printf(",\"note\":\"%s\"}\n", r.note.c_str());
  std::fflush(stdout);
}

}  // namespace

int main(int argc, char** argv) {
  Options o = parse(argc, argv);
  try {
    auto t = Clock::now();
    std::vector<float> all, queries;
    if (!o.data.empty()) {
      // Real data: all its rows and queries (or the first --n / --queries); exact answers by brute force below.
      auto base = vs::test::read_vecs<float>(o.data + ".base.fvecs", o.n_given ? o.n : static_cast<std::size_t>(-1));
      auto query = vs::test::read_vecs<float>(o.data + ".query.fvecs",
                                              o.queries_given ? o.queries : static_cast<std::size_t>(-1));
      if (base.rows == 0 || query.rows == 0 || query.dims != base.dims)
        usage(("no rows, or queries of another dimension, in " + o.data).c_str());
      o.n = base.rows;
      o.dims = base.dims;
      o.queries = query.rows;
      all = std::move(base.data);
      queries = std::move(query.data);
      std::fprintf(stderr, "gpu_build_bench: read %zu x %zu (+%zu queries) from %s in %.1f s\n", o.n, o.dims, o.queries,
                   o.data.c_str(), since(t));
    } else {
      all = clustered(o.n + o.queries, o.dims, o);
      queries.assign(all.begin() + static_cast<std::ptrdiff_t>(o.n * o.dims), all.end());
      all.resize(o.n * o.dims);
      std::fprintf(stderr, "gpu_build_bench: generated %zu x %zu (+%zu queries) in %.1f s\n", o.n, o.dims, o.queries,
                   since(t));
    }
    if (!o.write.empty()) {
      write_vecs(o.write + ".base.fvecs", all.data(), o.n, o.dims);
      write_vecs(o.write + ".query.fvecs", queries.data(), o.queries, o.dims);
      // pg_bench.py reads the exact top-10 by the SQL distance; for cosine and L2 it is the
      // order of index_distance on normalised rows / raw rows, as computed here.
      const auto truth = stored_truth(all, queries, o, 10);
      std::vector<std::int32_t> gt;
      for (const auto& row : truth) gt.insert(gt.end(), row.begin(), row.end());
      write_vecs(o.write + ".gt.ivecs", gt.data(), o.queries, 10);
      std::fprintf(stderr, "gpu_build_bench: wrote %s.{base,query}.fvecs and %s.gt.ivecs (%s)\n", o.write.c_str(),
                   o.write.c_str(), vs::distance::metric_name(o.metric));
      return 0;
    }

    t = Clock::now();
    const auto truth = stored_truth(all, queries, o, o.k);
    std::fprintf(stderr, "gpu_build_bench: brute force for %zu queries in %.1f s\n", o.queries, since(t));

    std::vector<Result> results;
    for (const std::string& spec : o.backends) {
      Result r;
      r.backend = spec;
      const auto [backend, vo] = backend_options(o, spec);
      if (backend == "cpu") {
        // Phases by the progress reports, as gpu_builder's log line times them.
        std::map<std::uint32_t, Clock::time_point> entered;
        vs::Control control;
        control.progress = [&](std::uint32_t phase, std::uint64_t, std::uint64_t) {
          entered.emplace(phase, Clock::now());
        };
        const auto t0 = Clock::now();
        const auto index = vs::vamana::Index::build(all.data(), o.n, o.dims, o.index, nullptr, control);
        r.total = since(t0);
        const auto at = [&](std::uint32_t p) { return entered.count(p) ? entered[p] : Clock::now(); };
        r.phases["train"] = std::chrono::duration<double>(at(vs::vamana::kPhaseInsert) - t0).count();
        r.phases["insert"] =
            std::chrono::duration<double>(at(vs::vamana::kPhasePrune) - at(vs::vamana::kPhaseInsert)).count();
        r.phases["prune"] =
            std::chrono::duration<double>(at(vs::vamana::kPhaseConnect) - at(vs::vamana::kPhasePrune)).count();
        r.phases["connect"] =
            std::chrono::duration<double>(
                t0 + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(r.total)) -
                at(vs::vamana::kPhaseConnect))
                .count();
        r.recall = measure(index, o, queries, truth);
        r.note = "vamana::Index::build, " + std::to_string(o.threads) + " threads";
      } else if (backend == "cuda") {
#ifdef VS_HAVE_CUDA
        const vs::cuda::DeviceChoice dev = vs::cuda::choose_device(o.device);
        if (dev.device < 0) {
          std::fprintf(stderr, "gpu_build_bench: skipping cuda: %s\n", dev.reason.c_str());
          continue;
        }
        vs::cuda::DeviceBuildOptions bo;
        bo.device = dev.device;
        bo.graph = vo.graph();
        // The memory plan's placements (plan.hpp): by memory, or forced for a side-by-side run.
        bo.limits.force_mapped_training = vo.vectors == "mapped-training";
        bo.limits.force_mapped = vo.vectors == "mapped";
        vs::Array<float> v(o.n * o.dims);
        std::copy(all.begin(), all.end(), v.data());
        const auto t0 = Clock::now();
        // As the CUDA backend: normalise on the host (threads), then the device build.
        if (o.metric == Metric::kCosine)
          vs::run_workers(o.threads, [&](std::size_t w) {
            for (std::size_t i = w; i < o.n; i += o.threads)
              (void)vs::distance::normalize(v.data() + i * o.dims, o.dims);
          });
        const double normalize = since(t0);
        auto d = vs::cuda::build_on_device(v.data(), o.n, o.dims, o.index, {}, bo);
        const auto index = vs::vamana::Index::from_parts(std::move(v), o.n, o.dims, o.index, std::move(d.quantizer),
                                                         std::move(d.codes), std::move(d.graph));
        r.total = since(t0);
        r.phases["normalize"] = normalize;
        r.phases["train"] = d.times.train;
        r.phases["insert"] = d.times.insert;
        r.phases["prune"] = d.times.prune;
        r.phases["connect"] = d.times.connect;
        r.recall = measure(index, o, queries, truth);
        r.note = dev.name + (d.bf16_vectors ? "; bf16 vectors" : "; fp32 vectors") + "; " + d.plan.describe() + "; capped searches " + std::to_string(d.stats.capped_searches) +
                 ", batches " + std::to_string(d.stats.batches);
        const vs::cuda::DeviceKernelTimes& k = d.times.device;
        r.sections["device_seconds"] = {{"search", k.search},   {"candidates", k.candidates}, {"order", k.order},
                                        {"gather", k.gather},   {"gemm", k.gemm},             {"prune", k.prune},
                                        {"reverse", k.reverse}, {"host", k.host}};
        r.sections["search"] = search_work(vo, d.stats, d.bf16_vectors ? 2 : 4, k.search);
        r.sections["search"]["spilled_searches"] = static_cast<double>(d.stats.spilled_searches);
        r.sections["search"]["local_visited_slots"] = static_cast<double>(d.local_visited_slots);
        r.sections["search"]["query_in_shared"] = d.query_in_shared ? 1.0 : 0.0;
        r.sections["plan"] = {{"resident", d.plan.resident ? 1.0 : 0.0},
                              {"bf16_graph", d.plan.bf16_graph ? 1.0 : 0.0},
                              {"search_batch", static_cast<double>(d.plan.search_batch)},
                              {"prune_batch", static_cast<double>(d.plan.prune_batch)},
                              {"peak_gib", static_cast<double>(d.plan.peak) / (1ull << 30)}};
        // The prunes' Gram GEMMs as done (sorted by candidate count) and unbucketed.
        r.sections["prune_gemm"] = {{"gflop", d.gram.flops * 1e-9},
                        {"gflop_unbucketed", d.gram.flops_unbucketed * 1e-9},
                        {"row_gib", d.gram.row_bytes / (1ull << 30)},
                        {"row_gib_unbucketed", d.gram.row_bytes_unbucketed / (1ull << 30)},
                        {"items", static_cast<double>(d.gram.items)},
                        {"groups", static_cast<double>(d.gram.groups)},
                        {"sub_batches", static_cast<double>(d.gram.sub_batches)}};
#else
        std::fprintf(stderr, "gpu_build_bench: skipping cuda: built without CUDA\n");
        continue;
#endif
      } else if (backend == "reference") {
        // The CPU backend's index with the GPU algorithm's graph.
        const auto t0 = Clock::now();
        auto ref = vs::vamana::Index::build(all.data(), o.n, o.dims, o.index);  // stored vectors, quantizer, codes
        const double cpu_seconds = since(t0);
        const auto t1 = Clock::now();
        vs::cuda::GraphBuildStats st;
        vs::vamana::Graph g =
            vs::cuda::reference_build_graph(ref.vector(0), o.n, o.dims, o.index.build, vo.graph(), 0, {}, &st);
        r.total = since(t1);
        r.phases["graph"] = r.total;
        vs::Array<float> v(o.n * o.dims);
        std::copy_n(ref.vector(0), o.n * o.dims, v.data());
        vs::Array<std::uint64_t> codes(o.index.storage == vs::vamana::Storage::kPlain ? 0
                                                                                      : o.n * ref.quantizer().words());
        if (!codes.empty()) std::copy_n(ref.code(0), codes.size(), codes.data());
        const auto index = vs::vamana::Index::from_parts(std::move(v), o.n, o.dims, o.index, ref.quantizer(),
                                                         std::move(codes), std::move(g));
        r.recall = measure(index, o, queries, truth);
        r.sections["search"] = search_work(vo, st, vo.graph().bf16_vectors ? 2 : 4, 0);
        r.note = "serial CPU run of the CUDA algorithm (not a speed figure); the CPU build took " +
                 std::to_string(cpu_seconds) + " s; batches " + std::to_string(st.batches) + ", capped searches " +
                 std::to_string(st.capped_searches);
      } else {
        usage(("unknown backend " + backend).c_str());
      }
      print(o, r);
      results.push_back(std::move(r));
    }
    if (results.size() >= 2) {  // the first two backends
      const Result &a = results[0], &b = results[1];
      std::printf("{\"compare\":\"%s/%s\",\"speedup\":%.2f,\"recall_gap_points\":{", a.backend.c_str(),
                  b.backend.c_str(), a.total / b.total);
      bool first = true;
      for (const auto& [l, v] : a.recall)
        std::printf("%s\"%u\":%.2f", first ? "" : ",", l, 100.0 * (b.recall.at(l) - v)), first = false;
      std::printf("}}\n");
    }
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_build_bench: %s\n", e.what());
    return 1;
  }
  return 0;
}
