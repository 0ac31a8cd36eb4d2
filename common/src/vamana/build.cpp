// Vamana graph build (DiskANN), multi-threaded, with Filtered DiskANN for labelled data.
//
// Phases:
//  1. Entry points: the medoid (node nearest the centroid) and, for labelled data, one start
//     node per label (the medoid of that label's nodes).
//  2. Insertion, in a seeded random order, by all workers: greedy search from the medoid
//     (L = search_list_size); for a labelled node also, per label, a filtered search from
//     that label's start node that only enters nodes carrying it; RobustPrune of all
//     expanded nodes to R with the alpha schedule and label-aware occlusion; then reverse
//     edges: p is appended to each kept neighbour's list, which is re-pruned to R once it
//     would exceed ceil(slack * R).
//  3. Final prune of every list longer than R.
//  4. Connectivity: every node must be reachable from the medoid; any that is not gets an
//     in-edge from the nearest reachable node found by a search for it.
//
// Concurrency: each node's list is guarded by a one-byte spin lock. Readers copy a list under
// its lock; a writer that re-prunes copies the list, prunes without the lock and writes back
// (a concurrent append in between may be lost, as in DiskANN; the list stays valid). Only the
// calling thread (worker 0) runs the Control callbacks; other workers stop when `stop_` is set.
#include "vectorscale/vamana/build.hpp"

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <map>
#include <numeric>
#include <random>

#include "vectorscale/core/error.hpp"
#include "vectorscale/core/threads.hpp"
#include "vectorscale/distance/distance.hpp"
#include "vectorscale/vamana/prune.hpp"
#include "vectorscale/vamana/search.hpp"

namespace vs::vamana {

void check(const BuildParams& p) {
  VS_EXPECTS(p.num_neighbors >= kMinNumNeighbors && p.num_neighbors <= kMaxNumNeighbors,
             "num_neighbors must be between %u and %u, not %u", kMinNumNeighbors, kMaxNumNeighbors,
             p.num_neighbors);
  VS_EXPECTS(p.search_list_size >= 1, "search_list_size must be at least 1");
  VS_EXPECTS(std::isfinite(p.max_alpha) && p.max_alpha >= 1.0f, "max_alpha must be at least 1.0");
  VS_EXPECTS(std::isfinite(p.slack) && p.slack >= 1.0f && p.slack <= 4.0f, "slack must be between 1 and 4");
  VS_EXPECTS(p.threads >= 1 && p.threads <= 1024, "threads must be between 1 and 1024, not %u", p.threads);
}

void LabelSets::push_back(std::span<const Label> labels) {
  const std::size_t start = values.size();
  values.insert(values.end(), labels.begin(), labels.end());
  std::sort(values.begin() + static_cast<std::ptrdiff_t>(start), values.end());
  values.erase(std::unique(values.begin() + static_cast<std::ptrdiff_t>(start), values.end()), values.end());
  offsets.push_back(static_cast<std::uint32_t>(values.size()));
}

std::uint32_t Graph::label_start(Label l) const noexcept {
  const auto it = std::lower_bound(label_starts.begin(), label_starts.end(), l,
                                   [](const auto& e, Label v) { return e.first < v; });
  return it != label_starts.end() && it->first == l ? it->second : kNoNode;
}

std::vector<std::uint32_t> insertion_order(std::size_t n, std::uint64_t seed) {
  std::vector<std::uint32_t> order(n);
  std::iota(order.begin(), order.end(), 0u);
  std::mt19937_64 rng(seed);
  std::shuffle(order.begin(), order.end(), rng);
  return order;
}

std::uint32_t medoid(const float* vectors, std::size_t n, std::size_t dims, std::span<const std::uint32_t> members) {
  const std::size_t count = members.empty() ? n : members.size();
  if (count == 0) return kNoNode;
  auto id = [&](std::size_t i) { return members.empty() ? static_cast<std::uint32_t>(i) : members[i]; };
  std::vector<double> sum(dims, 0.0);
  for (std::size_t i = 0; i < count; ++i) {
    const float* v = vectors + static_cast<std::size_t>(id(i)) * dims;
    for (std::size_t d = 0; d < dims; ++d) sum[d] += v[d];
  }
  std::vector<float> centroid(dims);
  for (std::size_t d = 0; d < dims; ++d) centroid[d] = static_cast<float>(sum[d] / static_cast<double>(count));
  std::uint32_t best = id(0);
  float best_d = std::numeric_limits<float>::infinity();
  for (std::size_t i = 0; i < count; ++i) {
    const float dd = distance::l2_squared(centroid.data(), vectors + static_cast<std::size_t>(id(i)) * dims, dims);
    if (dd < best_d) {
      best_d = dd;
      best = id(i);
    }
  }
  return best;
}

MemoryEstimate estimate_build_memory(std::uint64_t n, std::uint32_t dims, const BuildParams& params,
                                     std::uint32_t bits_per_dim, double avg_labels) {
  MemoryEstimate m;
  const auto cap = static_cast<std::uint64_t>(std::ceil(params.slack * static_cast<float>(params.num_neighbors)));
  m.vectors = n * dims * sizeof(float);
  m.graph = n * (cap * sizeof(std::uint32_t) + sizeof(std::uint32_t) + 1);
  m.codes = bits_per_dim == 0 ? 0 : n * ((static_cast<std::uint64_t>(dims) * bits_per_dim + 63) / 64) * 8;
  m.labels = static_cast<std::uint64_t>(static_cast<double>(n) * (avg_labels * sizeof(Label) + sizeof(std::uint32_t)));
  // Per worker: a visited tag per node, plus lists and candidate buffers of a few L.
  const std::uint64_t per_worker = n * sizeof(std::uint32_t) + 16ULL * (params.search_list_size + cap) * 16;
  m.scratch = per_worker * std::max<std::uint32_t>(1, params.threads);
  return m;
}

namespace {

using Clock = std::chrono::steady_clock;

// Spin-wait hint.
inline void cpu_relax() noexcept {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#elif defined(__aarch64__)
  asm volatile("yield");
#endif
}

// Per-worker buffers, reused across insertions.
struct Scratch {
  explicit Scratch(std::size_t n) : visited(n) {}
  SearchList<std::uint32_t> list;
  EpochVisited visited;
  std::vector<Candidate<std::uint32_t>> expanded;
  std::vector<std::uint32_t> nbuf;   // a copied neighbour list
  std::vector<std::uint32_t> ids;    // prune candidates
  std::vector<float> dists;          // their distances
  std::vector<std::uint32_t> kept;   // prune result (indices into ids)
  std::vector<float> factor;         // prune occlusion factors
  std::vector<std::uint32_t> reverse;  // kept neighbours that get a reverse edge
  std::uint64_t computed = 0;
};

class Builder {
 public:
  Builder(const float* vectors, std::size_t n, std::size_t dims, const BuildParams& p, const LabelSets* labels,
          const Control& control, Allocator& alloc, Graph& g)
      : vecs_(vectors), n_(n), dims_(dims), p_(p), labels_(labels), control_(control), g_(g),
        ratio_rule_(p.metric != distance::Metric::kInnerProduct),
        cap_(static_cast<std::uint32_t>(std::ceil(p.slack * static_cast<float>(p.num_neighbors)))),
        locks_(n, alloc) {
    g_.num_nodes = static_cast<std::uint32_t>(n);
    g_.stride = cap_;
    g_.neighbors = Array<std::uint32_t>(n * cap_, alloc);
    g_.degrees = Array<std::uint32_t>(n, alloc);
  }

  void run(BuildStats* stats) {
    const auto t0 = Clock::now();
    if (n_ == 0) return;
    g_.medoid = medoid(vecs_, n_, dims_);
    if (labels_ != nullptr && !labels_->empty()) choose_label_starts();

    const std::vector<std::uint32_t> order = insertion_order(n_, p_.seed);

    // Phase 2: insert every node.
    const std::size_t threads = std::min<std::size_t>(p_.threads, std::max<std::size_t>(1, n_ / 64));
    std::vector<std::uint64_t> computed(threads, 0);
    parallel_for(kPhaseInsert, threads, n_, [&](std::size_t k, Scratch& s) { insert(order[k], s); },
                 [&](std::size_t w, Scratch& s) { computed[w] += s.computed; });

    // Phase 3: every list to at most R.
    parallel_for(kPhasePrune, threads, n_, [&](std::size_t i, Scratch& s) {
      const auto node = static_cast<std::uint32_t>(i);
      if (g_.degrees[node] <= p_.num_neighbors) return;
      copy_list(node, s.nbuf);
      prune_list(node, s.nbuf, s);
      write_list(node, s);
    }, [&](std::size_t w, Scratch& s) { computed[w] += s.computed; });

    // Phase 4: reachability from the medoid.
    std::uint64_t connect_computed = 0;
    const std::uint32_t repaired = link_unreachable(g_, vecs_, dims_, p_, control_, &connect_computed);
    if (control_.log && repaired != 0)
      control_.log(LogLevel::kInfo, detail::format("vamana build: linked %u nodes that were unreachable from the medoid",
                                                   repaired));
    if (stats != nullptr) {
      stats->distance_computations = std::accumulate(computed.begin(), computed.end(), connect_computed);
      stats->repaired_unreachable = repaired;
      stats->seconds = std::chrono::duration<double>(Clock::now() - t0).count();
    }
  }

 private:
  const float* vec(std::uint32_t i) const noexcept { return vecs_ + static_cast<std::size_t>(i) * dims_; }
  float dist(std::uint32_t a, std::uint32_t b) const noexcept {
    return distance::index_distance(p_.metric, vec(a), vec(b), dims_);
  }

  void lock(std::uint32_t i) noexcept {
    std::atomic_ref<std::uint8_t> l(locks_[i]);
    for (;;) {
      if (l.exchange(1, std::memory_order_acquire) == 0) return;
      while (l.load(std::memory_order_relaxed) != 0) cpu_relax();
    }
  }
  void unlock(std::uint32_t i) noexcept { std::atomic_ref<std::uint8_t>(locks_[i]).store(0, std::memory_order_release); }

  std::uint32_t* slots(std::uint32_t i) noexcept { return g_.neighbors.data() + static_cast<std::size_t>(i) * cap_; }

  void copy_list(std::uint32_t i, std::vector<std::uint32_t>& out) {
    lock(i);
    out.assign(slots(i), slots(i) + g_.degrees[i]);
    unlock(i);
  }

  // Runs body(k, scratch) for k in [0, count) on `threads` workers; the calling thread also
  // polls cancellation and reports progress, starting with (phase, 0, count) so that callers
  // see a phase when it begins (the builder times its phases by these changes).
  template <class Body, class Done>
  void parallel_for(std::uint32_t phase, std::size_t threads, std::size_t count, Body&& body, Done&& done) {
    poll(phase, 0, count);
    std::atomic<std::size_t> next{0};
    std::atomic<std::size_t> finished{0};
    stop_.store(false);
    auto last_poll = Clock::now();
    std::size_t reported = 0;  // touched by worker 0 only
    run_workers(threads, [&](std::size_t w) {
      Scratch s(n_);
      try {
        constexpr std::size_t kChunk = 8;
        for (;;) {
          if (stop_.load(std::memory_order_relaxed)) break;
          const std::size_t begin = next.fetch_add(kChunk, std::memory_order_relaxed);
          if (begin >= count) break;
          const std::size_t end = std::min(count, begin + kChunk);
          for (std::size_t k = begin; k < end; ++k) body(k, s);
          const std::size_t total_done = finished.fetch_add(end - begin, std::memory_order_relaxed) + (end - begin);
          if (w == 0 && Clock::now() - last_poll > std::chrono::milliseconds(20)) {
            last_poll = Clock::now();
            // Workers finish chunks out of order: report the largest count seen so far.
            reported = std::max(reported, total_done);
            poll(phase, reported, count);
          }
        }
      } catch (...) {
        stop_.store(true);
        throw;
      }
      done(w, s);
    });
    poll(phase, count, count);
  }

  void poll(std::uint32_t phase, std::size_t done, std::size_t total) {
    if (control_.cancel && control_.cancel()) {
      stop_.store(true);
      throw Cancelled();
    }
    if (control_.progress) control_.progress(phase, done, total);
  }

  // One start node per label: the medoid of the nodes carrying it.
  void choose_label_starts() {
    std::map<Label, std::vector<std::uint32_t>> members;
    for (std::size_t i = 0; i < n_; ++i)
      for (const Label l : labels_->of(i)) members[l].push_back(static_cast<std::uint32_t>(i));
    for (const auto& [label, ids] : members) g_.label_starts.emplace_back(label, medoid(vecs_, n_, dims_, ids));
  }

  // Greedy search for node p from `starts`; when filter_labels is non-empty only nodes whose
  // labels overlap it are entered. Expanded nodes are appended to s.expanded.
  void search(std::uint32_t p, std::span<const std::uint32_t> starts, std::span<const Label> filter_labels,
              Scratch& s) {
    s.list.reset(p_.search_list_size);
    s.visited.clear();
    const bool filtered = !filter_labels.empty();
    for (const std::uint32_t st : starts) {
      if (s.visited.test_and_set(st)) continue;
      s.list.insert(st, dist(p, st));
      ++s.computed;
    }
    std::vector<std::uint32_t>& nb = s.nbuf;
    s.computed += greedy_search(
        s.list,
        [&](std::uint32_t id, auto&& visit) {
          copy_list(id, nb);
          for (const std::uint32_t x : nb)
            if (!s.visited.test(x)) prefetch(vec(x), std::min(kPrefetchBytes, dims_ * sizeof(float)));
          for (const std::uint32_t x : nb) {
            if (filtered && !labels_overlap(labels_->of(x), filter_labels)) continue;
            visit(x);
          }
        },
        [&](std::uint32_t id) { return dist(p, id); }, s.visited,
        [&](const Candidate<std::uint32_t>& c) { s.expanded.push_back(c); });
  }

  // RobustPrune of node p over candidate ids (any order, may hold p and duplicates; must not
  // be s.expanded, s.ids or s.dists); leaves the kept ids in s.ids[s.kept[...]].
  void prune_list(std::uint32_t p, const std::vector<std::uint32_t>& candidates, Scratch& s) {
    s.expanded.clear();
    for (const std::uint32_t c : candidates) s.expanded.push_back({dist(p, c), c, true});
    s.computed += candidates.size();
    prune_expanded(p, s);
  }

  void prune_expanded(std::uint32_t p, Scratch& s) {
    auto& cands = s.expanded;
    std::sort(cands.begin(), cands.end(), [](const auto& a, const auto& b) {
      return a.distance < b.distance || (a.distance == b.distance && a.id < b.id);
    });
    s.ids.clear();
    s.dists.clear();
    for (std::size_t i = 0; i < cands.size(); ++i) {
      if (cands[i].id == p) continue;
      if (!s.ids.empty() && std::find(s.ids.begin(), s.ids.end(), cands[i].id) != s.ids.end()) continue;
      s.ids.push_back(cands[i].id);
      s.dists.push_back(cands[i].distance);
    }
    const bool labelled = labels_ != nullptr && !labels_->empty();
    const auto plabels = labelled ? labels_->of(p) : std::span<const Label>{};
    std::uint64_t pairs = 0;
    robust_prune(
        s.dists, p_.num_neighbors, p_.max_alpha, ratio_rule_,
        [&](std::size_t i, std::size_t j) {
          ++pairs;
          return dist(s.ids[i], s.ids[j]);
        },
        [&](std::size_t i, std::size_t j) {
          return !labelled || covers_intersection(labels_->of(s.ids[i]), labels_->of(s.ids[j]), plabels);
        },
        s.kept, s.factor);
    s.computed += pairs;
  }

  void write_list(std::uint32_t p, Scratch& s) {
    lock(p);
    std::uint32_t* out = slots(p);
    for (std::size_t i = 0; i < s.kept.size(); ++i) out[i] = s.ids[s.kept[i]];
    g_.degrees[p] = static_cast<std::uint32_t>(s.kept.size());
    unlock(p);
  }

  void insert(std::uint32_t p, Scratch& s) {
    s.expanded.clear();
    const std::uint32_t entry = g_.medoid;
    search(p, std::span<const std::uint32_t>(&entry, 1), {}, s);
    // One filtered search per label, from that label's start: a search filtered on all of
    // p's labels at once would fill its list with the nodes of p's most common label and
    // leave its rare labels few edges (streaming inserts search per label too).
    if (labels_ != nullptr && !labels_->empty())
      for (const Label& l : labels_->of(p)) {
        const std::uint32_t start = g_.label_start(l);  // every label has one
        search(p, std::span<const std::uint32_t>(&start, 1), std::span<const Label>(&l, 1), s);
      }
    prune_expanded(p, s);
    write_list(p, s);
    // Reverse edges; add_reverse_edge reuses s.ids and s.kept, so copy the kept ids first.
    s.reverse.clear();
    for (const std::uint32_t k : s.kept) s.reverse.push_back(s.ids[k]);
    for (const std::uint32_t j : s.reverse) add_reverse_edge(j, p, s);
  }

  // Adds edge j -> p; re-prunes j's list to R when it is full at slack capacity.
  void add_reverse_edge(std::uint32_t j, std::uint32_t p, Scratch& s) {
    lock(j);
    std::uint32_t* list = slots(j);
    const std::uint32_t deg = g_.degrees[j];
    if (std::find(list, list + deg, p) != list + deg) {
      unlock(j);
      return;
    }
    if (deg < cap_) {
      list[deg] = p;
      g_.degrees[j] = deg + 1;
      unlock(j);
      return;
    }
    s.nbuf.assign(list, list + deg);
    unlock(j);
    s.nbuf.push_back(p);
    prune_list(j, s.nbuf, s);
    write_list(j, s);
  }

  const float* vecs_;
  std::size_t n_, dims_;
  const BuildParams& p_;
  const LabelSets* labels_;
  const Control& control_;
  Graph& g_;
  bool ratio_rule_;
  std::uint32_t cap_;
  Array<std::uint8_t> locks_;
  std::atomic<bool> stop_{false};
};

// Marks in `reached` every node reachable from g.medoid (reached all 0 on entry): breadth-first,
// level by level, a level's nodes spread over `threads` workers when it is large. A node is
// claimed by an atomic exchange of its mark, so it enters the queue once whoever finds it; the
// set does not depend on the number of threads. No allocation inside the workers.
void mark_reachable(const Graph& g, std::vector<std::uint8_t>& reached, std::size_t threads) {
  constexpr std::size_t kParallelLevel = 4096;    // smaller levels: the calling thread alone
  constexpr std::size_t kBuffer = 256;            // nodes a worker finds before it reserves room
  std::vector<std::uint32_t> queue(g.num_nodes);  // every node enters at most once
  std::atomic<std::size_t> tail{1};
  queue[0] = g.medoid;
  reached[g.medoid] = 1;
  for (std::size_t begin = 0, end = 1; begin < end; begin = end, end = tail.load()) {
    const std::size_t workers = end - begin < kParallelLevel ? 1 : std::max<std::size_t>(1, threads);
    run_workers(workers, [&](std::size_t w) {
      std::uint32_t found[kBuffer];
      std::size_t count = 0;
      auto flush = [&] {
        std::copy_n(found, count, queue.begin() + static_cast<std::ptrdiff_t>(tail.fetch_add(count)));
        count = 0;
      };
      for (std::size_t i = begin + w; i < end; i += workers) {
        for (const std::uint32_t v : g.neighbors_of(queue[i])) {
          if (std::atomic_ref<std::uint8_t>(reached[v]).exchange(1, std::memory_order_relaxed) != 0) continue;
          found[count++] = v;
          if (count == kBuffer) flush();
        }
      }
      flush();
    });
  }
}

}  // namespace

// Links every node unreachable from the medoid to the nearest reachable node a search finds.
std::uint32_t link_unreachable(Graph& g, const float* vectors, std::size_t dims, const BuildParams& params,
                               const Control& control, std::uint64_t* distance_computations) {
  const std::size_t n = g.num_nodes;
  if (n == 0) return 0;
  VS_EXPECTS(g.medoid < n, "the graph has no entry point");
  VS_EXPECTS(g.stride >= params.num_neighbors, "graph lists of %u slots cannot hold R = %u", g.stride,
             params.num_neighbors);
  auto vec = [&](std::uint32_t i) { return vectors + static_cast<std::size_t>(i) * dims; };
  std::uint64_t computed = 0;
  SearchList<std::uint32_t> list;
  EpochVisited visited(n);
  // Greedy search for u from the medoid (L = search_list_size); leaves the result in `list`.
  auto search = [&](std::uint32_t u) {
    list.reset(params.search_list_size);
    visited.clear();
    visited.test_and_set(g.medoid);
    list.insert(g.medoid, distance::index_distance(params.metric, vec(u), vec(g.medoid), dims));
    ++computed;
    computed += greedy_search(
        list,
        [&](std::uint32_t id, auto&& visit) {
          for (const std::uint32_t x : g.neighbors_of(id)) visit(x);
        },
        [&](std::uint32_t id) { return distance::index_distance(params.metric, vec(u), vec(id), dims); }, visited,
        [](const Candidate<std::uint32_t>&) {});
  };
  auto slots = [&](std::uint32_t i) { return g.neighbors.data() + static_cast<std::size_t>(i) * g.stride; };

  std::vector<std::uint8_t> reached(n, 0);
  std::vector<std::uint32_t> stack;
  // Marks what a newly linked node makes reachable (usually little: serially).
  auto flood = [&](std::uint32_t from) {
    if (reached[from]) return;
    reached[from] = 1;
    stack.push_back(from);
    while (!stack.empty()) {
      const std::uint32_t u = stack.back();
      stack.pop_back();
      for (const std::uint32_t v : g.neighbors_of(u))
        if (!reached[v]) {
          reached[v] = 1;
          stack.push_back(v);
        }
    }
  };
  std::uint32_t repaired = 0;
  for (int round = 0; round < 8; ++round) {
    std::fill(reached.begin(), reached.end(), 0);
    mark_reachable(g, reached, params.threads);
    bool all = true;
    for (std::uint32_t u = 0; u < n; ++u) {
      if ((u & 255) == 0) {  // long only when many nodes are unreachable (e.g. duplicates)
        if (control.cancel && control.cancel()) throw Cancelled();
        if (round == 0 && control.progress) control.progress(kPhaseConnect, u, n);
      }
      if (reached[u]) continue;
      all = false;
      search(u);
      // The list holds reachable nodes only (the search started at the medoid), nearest first.
      std::uint32_t host = kNoNode;
      for (const auto& c : list)
        if (c.id != u && g.degrees[c.id] < params.num_neighbors) {
          host = c.id;
          break;
        }
      if (host == kNoNode) {
        for (const auto& c : list)
          if (c.id != u) {
            host = c.id;
            break;
          }
        if (host == kNoNode) host = g.medoid;
        // Full list: the last kept (longest-alpha) edge makes room.
        if (g.degrees[host] >= params.num_neighbors) g.degrees[host] = params.num_neighbors - 1;
      }
      slots(host)[g.degrees[host]++] = u;
      ++repaired;
      flood(u);
    }
    if (all) break;
  }
  if (control.progress) control.progress(kPhaseConnect, n, n);
  if (distance_computations != nullptr) *distance_computations += computed;
  return repaired;
}

Graph build_graph(const float* vectors, std::size_t n, std::size_t dims, const BuildParams& params,
                  const LabelSets* labels, const Control& control, Allocator& alloc, BuildStats* stats) {
  check(params);
  VS_EXPECTS(dims >= 1, "vectors must have at least one dimension");
  VS_EXPECTS(n < kNoNode, "too many vectors for one graph: %zu", n);
  VS_EXPECTS(labels == nullptr || labels->empty() || labels->size() == n,
             "label sets describe %zu nodes, expected %zu", labels == nullptr ? 0 : labels->size(), n);
  Graph g;
  Builder b(vectors, n, dims, params, labels, control, alloc, g);
  b.run(stats);
  return g;
}

}  // namespace vs::vamana
