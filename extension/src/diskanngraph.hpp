/*
 * diskanngraph.hpp
 *		The graph as it lives in index pages (C++ zone): node reads, appends, in-place
 *		neighbor updates, and the page-based DiskANN insert (greedy search, RobustPrune,
 *		reverse edges with prune).
 *
 * Two modes. kBuild: the bounded-memory build inserts row by row into pages written without
 * WAL (the relation is WAL-logged once at the end), with no concurrency. kLive: aminsert, where
 * every change is one Generic WAL record and other backends insert, scan and vacuum at the
 * same time (the rules are in extension/README.locking). Include after diskann.hpp and
 * bridge/guard.hpp.
 */
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <unordered_set>
#include <vector>

#include "vectorscale/format/records.hpp"
#include "vectorscale/sbq/sbq.hpp"

/* Inserts vectors into the node pages of an index whose meta and quantizer pages exist. */
class DiskannPageGraph
{
  public:
	enum class Mode
	{
		kBuild,
		kLive
	};

	/* meta: the index as written so far (layout, quantizer, counts, entry point). */
	DiskannPageGraph(Relation index, const vs::format::MetaInfo &meta, vs::sbq::Quantizer quantizer,
					 Mode mode = Mode::kBuild);

	/*
	 * Inserts one row: v is the indexed prefix (unit length for cosine), labels its label set
	 * (labeled indexes; any order, duplicates allowed).
	 */
	void		insert(std::span<const float> v, vs::format::Tid heap, std::span<const std::int16_t> labels = {});

	/*
	 * kLive, under the exclusive update lock (VACUUM): rewrites u's neighbor list without the
	 * dead nodes, choosing from u's live neighbors and the dead neighbors' live neighbors by
	 * RobustPrune. Returns whether u pointed at a dead node.
	 */
	bool		repair(vs::format::Tid u, const std::unordered_set<std::uint64_t> &dead);

	/*
	 * kLive, under the exclusive update lock (VACUUM): makes u reachable from the entry point
	 * again: gives u out-edges if it has none, and an in-edge from the nearest reachable node
	 * (appended, or replacing that node's last edge when its list is full).
	 */
	void		link_unreachable(vs::format::Tid u);

	/* Labels of a node (sorted). */
	std::vector<std::int16_t> labels_of(vs::format::Tid u) { return load(u).labels; }

	/* Neighbor list of a node (its current stored list). */
	std::vector<vs::format::Tid> neighbors_of(vs::format::Tid u);

	/* The meta fields the inserts changed (entry point, node count). */
	const vs::format::MetaInfo &meta() const noexcept { return meta_; }

  private:
	struct Cached
	{
		std::vector<std::byte> payload;
		std::vector<vs::format::Tid> neighbors;
		std::vector<std::int16_t> labels;	/* sorted (labeled indexes) */
	};

	const Cached &load(vs::format::Tid tid);
	static void copy_node(const std::byte *rec, const vs::format::NodeLayout &layout, Cached &c) noexcept;
	float		distance(std::span<const std::byte> a, std::span<const std::byte> b);
	void		prune(std::span<const std::byte> self, std::span<const std::int16_t> self_labels,
					  std::vector<vs::format::Tid> &candidates, std::vector<vs::format::Tid> &out);
	vs::format::Tid append(std::span<const std::byte> record, std::span<const std::int16_t> labels);
	vs::format::Tid append_live(std::span<const std::byte> record, std::span<const std::int16_t> labels);
	void		set_neighbors(vs::format::Tid tid, std::span<const vs::format::Tid> neighbors);
	bool		replace_neighbors_live(vs::format::Tid tid, std::span<const vs::format::Tid> expected,
									   std::span<const vs::format::Tid> neighbors);
	bool		store_neighbors(vs::format::Tid tid, std::span<const vs::format::Tid> expected,
								std::span<const vs::format::Tid> neighbors);
	bool		add_reverse_edge(vs::format::Tid n, vs::format::Tid self);
	bool		force_edge(vs::format::Tid host, vs::format::Tid u);
	void		search_neighbors(std::span<const std::byte> payload, vs::format::Tid entry,
								 std::vector<vs::format::Tid> &out);
	std::vector<vs::format::LabelStart> current_label_starts();
	void		search_expanded(std::span<const std::byte> payload, vs::format::Tid entry, const std::int16_t *label,
								std::vector<vs::format::Tid> &expanded);

	Relation	index_;
	Mode		mode_;
	vs::format::MetaInfo meta_;
	vs::format::NodeLayout layout_;
	vs::sbq::Quantizer quantizer_;
	BlockNumber last_block_ = InvalidBlockNumber;	/* kBuild only */
	std::unordered_map<std::uint64_t, Cached> cache_;	/* per insert */
	std::unordered_set<std::uint64_t> visited_;	/* per search */
	std::vector<std::uint64_t> code_;
	std::vector<float> plain_a_, plain_b_;
};
