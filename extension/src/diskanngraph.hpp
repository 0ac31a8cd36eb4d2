/*
 * diskanngraph.hpp
 *		The graph as it lives in index pages (C++ zone): node reads, appends, in-place
 *		neighbor updates, and the page-based DiskANN insert (greedy search, RobustPrune,
 *		reverse edges with prune).
 *
 * Used by the bounded-memory build, which inserts row by row into pages written without WAL
 * (the relation is WAL-logged once at the end). Include after diskann.hpp and bridge/guard.hpp.
 */
#pragma once

#include <cstdint>
#include <span>
#include <unordered_map>
#include <vector>

#include "vectorscale/format/records.hpp"
#include "vectorscale/sbq/sbq.hpp"

/* Inserts vectors into the node pages of an index whose meta and quantizer pages exist. */
class DiskannPageGraph
{
  public:
	/* meta: the index as written so far (layout, quantizer, counts, entry point). */
	DiskannPageGraph(Relation index, const vs::format::MetaInfo &meta, vs::sbq::Quantizer quantizer);

	/* Inserts one row: v is the indexed prefix (unit length for cosine). */
	void		insert(std::span<const float> v, vs::format::Tid heap);

	/* The meta fields the inserts changed (entry point, node count). */
	const vs::format::MetaInfo &meta() const noexcept { return meta_; }

  private:
	struct Cached
	{
		std::vector<std::byte> payload;
		std::vector<vs::format::Tid> neighbors;
	};

	const Cached &load(vs::format::Tid tid);
	float		distance(std::span<const std::byte> a, std::span<const std::byte> b);
	void		prune(std::span<const std::byte> self, std::vector<vs::format::Tid> &candidates,
					  std::vector<vs::format::Tid> &out);
	vs::format::Tid append(std::span<const std::byte> record);
	void		set_neighbors(vs::format::Tid tid, std::span<const vs::format::Tid> neighbors);

	Relation	index_;
	vs::format::MetaInfo meta_;
	vs::format::NodeLayout layout_;
	vs::sbq::Quantizer quantizer_;
	BlockNumber last_block_;
	std::unordered_map<std::uint64_t, Cached> cache_;	/* per insert */
	std::vector<std::byte> record_;
	std::vector<std::uint64_t> code_;
	std::vector<float> plain_a_, plain_b_;
};
