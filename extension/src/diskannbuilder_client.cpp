/*
 * diskannbuilder_client.cpp
 *		CREATE INDEX through gpu_builder (DESIGN.md 5.2): the PostgreSQL side of the client.
 *
 * The heap is scanned once per attempt; every indexed vector is streamed to the builder as it
 * comes (no copy of the table stays in the backend: only the 8-byte heap TIDs sent, to check the
 * answer). While the builder works, the backend thread relays its progress into
 * pg_stat_progress_create_index and polls for interrupts every 100 ms (a cancel cancels
 * the RPC). The returned page images are all checked before any is written: CRC-32C, page
 * size and format version, every page and cross-page invariant (format::IndexValidator, with
 * pd_lsn/pd_checksum required zero), every live node's heap TID one we sent and each exactly
 * once, and the meta page's options equal to ours. Then the pages go into new buffers without
 * WAL and the relation is WAL-logged once with log_newpage_range.
 *
 * diskann.builder_endpoint is any gRPC target; the client balances builds round robin over the
 * target's builders that are up and SERVING (builder_client.hpp). Any failure (cannot connect,
 * deadline, error status, a bad page, a wrong TID set, an authentication error) ends an attempt
 * before the index is touched. When the builder went away before any page arrived
 * (RemoteError::builder_went_away), the whole attempt runs once more on the same channel, where
 * round_robin no longer picks a builder whose connection failed; that is a second heap scan, as
 * the rows are streamed, not kept. Otherwise, or when the second attempt fails too, with
 * diskann.builder_fallback on a NOTICE says why and the caller builds locally (one more heap
 * scan); with it off, the build fails with that reason. A cancel is never retried. A LOG line
 * names the builder of every remote build; another reports each retry.
 */
#include <algorithm>
#include <chrono>
#include <cstring>
#include <numeric>
#include <optional>
#include <string>
#include <vector>

#include "vectorscale/core/crc32c.hpp"
#include "vectorscale/format/records.hpp"
#include "vectorscale/format/reader.hpp"
#include "vectorscale/format/validate.hpp"
#include "vectorscale/vamana/labels.hpp"

#include "client/builder_client.hpp"
#include "diskann.hpp"

extern "C" {
#include "access/tableam.h"
#include "access/xloginsert.h"
#include "catalog/index.h"
#include "commands/progress.h"
#include "pgstat.h"
#include "storage/ipc.h"
#include "utils/backend_progress.h"
}

#include "bridge/guard.hpp"
#include "diskannbuild.hpp"
#include "diskannutils.hpp"

namespace {

using vs::client::RemoteError;

/* Why a remote attempt failed, and whether another attempt may succeed. */
struct AttemptFailure
{
	std::string reason;
	bool		retryable = false;
};

/* State of the heap scan callback of a remote build (PODs and pointers only). */
struct RemoteLoadState
{
	const DiskannBuildOptions *opts;
	vs::client::RemoteBuild *remote;
	std::vector<std::uint64_t> *tids;
	vs::vamana::LabelSets *labels;	/* labeled indexes: the rows' label sets, in scan order */
	AttemptFailure *failure;
	MemoryContext tmpctx;
	double		sent;
};

/* Heap scan callback (PG zone): sends one row. */
void
remote_callback(Relation index, ItemPointer tid, Datum *values, bool *isnull, bool tupleIsAlive, void *arg)
{
	RemoteLoadState *st = (RemoteLoadState *) arg;
	MemoryContext old;
	DiskannVector *v;
	int16	   *labels = nullptr;
	int			nlabels = 0;

	(void) index;
	(void) tupleIsAlive;
	if (isnull[0])
		return;
	old = MemoryContextSwitchTo(st->tmpctx);
	v = DiskannBuildRowVector(values[0], st->opts);
	if (st->labels != nullptr && !isnull[1])
		labels = DiskannLabelValues(values[1], &nlabels);
	vs::pg::invoke([&] {
		const std::uint64_t key = DiskannTidFromItemPointer(tid).key();
		const std::span<const std::int16_t> row_labels(labels, (std::size_t) nlabels);

		st->tids->push_back(key);
		if (st->labels != nullptr)
			st->labels->push_back(row_labels);
		if (!st->failure->reason.empty())
			return;				/* the stream already failed: whatever comes next rescans */
		try
		{
			st->remote->add(v->x, key, row_labels);
		}
		catch (const RemoteError &e)
		{
			*st->failure = {e.what(), e.builder_went_away()};
		}
	});
	st->sent += 1;
	if (((long) st->sent & 1023) == 0)
		pgstat_progress_update_param(PROGRESS_CREATEIDX_TUPLES_DONE, (int64) st->sent);
	MemoryContextSwitchTo(old);
	MemoryContextReset(st->tmpctx);
}

/* Progress phase of ours for a builder phase. */
int
local_phase(std::uint32_t builder_phase)
{
	switch (builder_phase)
	{
		case 1:
			return DISKANN_PHASE_GRAPH;
		case 2:
			return DISKANN_PHASE_PRUNE;
		case 3:
			return DISKANN_PHASE_CONNECT;
		case 11:
			return DISKANN_PHASE_TRAIN;
		case 12:
			return DISKANN_PHASE_WRITE;
		default:
			return DISKANN_PHASE_LOAD;
	}
}

/*
 * Checks that every live node carries the labels sent with its row. by_tid[i] is the scan
 * position of the row whose heap TID is sorted_tids[i]. Returns the first problem, or "".
 */
std::string
check_node_labels(const std::vector<std::string> &pages, const vs::format::MetaInfo &meta,
				  const std::vector<std::uint64_t> &sorted_tids, const std::vector<std::uint32_t> &by_tid,
				  const vs::vamana::LabelSets &labels)
{
	const vs::format::NodeLayout layout = vs::format::NodeLayout::from_meta(meta, BLCKSZ);

	for (std::size_t b = 1; b < pages.size(); ++b)
	{
		const std::span<const std::byte> page(reinterpret_cast<const std::byte *>(pages[b].data()), pages[b].size());

		if (!vs::format::is_node_page(page))
			continue;
		const std::uint16_t count = vs::format::node_page_count(page, layout);

		for (std::uint16_t off = 1; off <= count; ++off)
		{
			const vs::format::NodeView node = vs::format::node_at(page, off, layout);

			if (node.state() != vs::format::NodeState::kLive)
				continue;
			const auto	pos = std::lower_bound(sorted_tids.begin(), sorted_tids.end(), node.heap_tid().key());
			const std::vector<std::int16_t> got = node.labels();

			if (!std::ranges::equal(got, labels.of(by_tid[(std::size_t) (pos - sorted_tids.begin())])))
				return vs::detail::format("block %zu record %u does not carry the labels of its row", b,
										  (unsigned) off);
		}
	}
	return {};
}

/* Checks the returned pages; returns the first problem, or an empty string. */
std::string
check_pages(const std::vector<std::string> &pages, const DiskannBuildOptions *opts,
			const std::vector<std::uint64_t> &sorted_tids, const std::vector<std::uint32_t> &by_tid,
			const vs::vamana::LabelSets &labels)
{
	if (pages.empty())
		return "the builder returned no pages";
	vs::format::IndexValidator validator(
		BLCKSZ, (std::uint32_t) pages.size(), true,
		[&](vs::format::Tid heap) { return std::binary_search(sorted_tids.begin(), sorted_tids.end(), heap.key()); });

	for (std::size_t b = 0; b < pages.size(); ++b)
	{
		const auto check = validator.add_page(
			(std::uint32_t) b, {reinterpret_cast<const std::byte *>(pages[b].data()), pages[b].size()});

		if (!check)
			return check.reason;
	}
	if (const auto check = validator.finish(); !check)
		return check.reason;

	const vs::format::MetaInfo m = vs::format::decode_meta(
		{reinterpret_cast<const std::byte *>(pages[0].data()), pages[0].size()});

	if ((int) m.metric != opts->metric || (int) m.storage != opts->storage ||
		(int) m.column_dims != opts->column_dims || (int) m.indexed_dims != opts->indexed_dims ||
		(int) m.bits_per_dim != opts->bits_per_dim || (int) m.num_neighbors != opts->num_neighbors ||
		(int) m.search_list_size != opts->search_list_size || m.max_alpha != opts->max_alpha ||
		m.has_labels != opts->labeled || (opts->labeled && m.label_capacity < DISKANN_DEFAULT_LABEL_CAPACITY))
		return "the meta page's options differ from the index's";
	if (m.node_count != sorted_tids.size() || m.deleted_count != 0 || m.free_list_head.valid())
		return vs::detail::format("the index has %llu nodes for %zu rows sent",
								  (unsigned long long) m.node_count, sorted_tids.size());
	if (m.built_by != vs::format::BuiltBy::kBuilder)
		return "the meta page does not say a builder built it";
	return opts->labeled ? check_node_labels(pages, m, sorted_tids, by_tid, labels) : std::string();
}

/* A pending cancel or termination ends the build at once: no retry, no fallback. */
void
check_cancel()
{
	if (QueryCancelPending || ProcDiePending)
		throw vs::Cancelled();
}

/* Ends a failed remote build: NOTICE and fall back, or ERROR (a cancel is not a failure). */
bool
give_up(const char *endpoint, const std::string &reason)
{
	check_cancel();
	vs::pg::call([&] {
		if (!diskann_builder_fallback)
			ereport(ERROR,
					(errcode(ERRCODE_CONNECTION_FAILURE),
					 errmsg("diskann build through builder \"%s\" failed: %s", endpoint, reason.c_str()),
					 errhint("Set diskann.builder_fallback = on to build locally when the builder fails.")));
		ereport(NOTICE,
				(errmsg("diskann build through builder \"%s\" failed: %s", endpoint, reason.c_str()),
				 errdetail("Building the index locally instead.")));
	});
	return false;
}

/* Drops the builder channel at backend exit, before exit() (builder_client.hpp). */
void
release_builder_channel(int code, Datum arg)
{
	(void) code;
	(void) arg;
	vs::client::release_channel();
}

/* What every attempt of one remote build needs. */
struct RemoteRequest
{
	Relation	heap;
	Relation	index;
	IndexInfo  *indexInfo;
	const DiskannBuildOptions *opts;
	const vs::client::BuilderSettings *settings;
	const vs::client::RemoteSpec *spec;
};

/*
 * One remote attempt (C++ zone): scan and stream, collect the pages, check them all, write them.
 * Returns true when the pages are written; false with *failure set otherwise.
 */
bool
remote_attempt(const RemoteRequest &rq, IndexBuildResult *result, AttemptFailure *failure)
{
	using Clock = std::chrono::steady_clock;
	const auto	started = Clock::now();
	const auto	since = [](Clock::time_point from, Clock::time_point to) {
		return std::chrono::duration<double>(to - from).count();
	};
	Clock::time_point sent,
				received,
				checked,
				written;
	const DiskannBuildOptions *opts = rq.opts;
	std::optional<vs::client::RemoteBuild> remote;
	std::vector<std::uint64_t> tids;
	vs::vamana::LabelSets labels;
	const auto	fail = [failure](std::string reason) {
		*failure = {std::move(reason), false};
		return false;
	};

	try
	{
		remote.emplace(*rq.settings, *rq.spec);
	}
	catch (const RemoteError &e)
	{
		*failure = {e.what(), e.builder_went_away()};
	}
	if (!failure->reason.empty())
		return false;

	/* 1. One heap scan, streaming every row. */
	RemoteLoadState st{opts, &*remote, &tids, opts->labeled ? &labels : nullptr, failure, nullptr, 0};

	DiskannReportPhase(DISKANN_PHASE_LOAD, 0, (double) rq.spec->expected_rows);
	st.tmpctx = vs::pg::call([&] {
		return AllocSetContextCreate(CurrentMemoryContext, "diskann remote build tuple", ALLOCSET_DEFAULT_SIZES);
	});
	const double reltuples = vs::pg::call([&] {
		return table_index_build_scan(rq.heap, rq.index, rq.indexInfo, true, true, remote_callback, &st, nullptr);
	});

	vs::pg::call([&] { MemoryContextDelete(st.tmpctx); });
	if (!failure->reason.empty())
		return false;

	/* 2. Finish the upload, then relay progress and collect pages until the stream ends. */
	std::vector<std::string> pages;
	std::optional<vs::client::RemoteEvent> summary;

	try
	{
		remote->finish();
		sent = Clock::now();
		for (;;)
		{
			if (QueryCancelPending || ProcDiePending)
			{
				remote->cancel();
				throw vs::Cancelled();
			}
			vs::client::RemoteEvent ev = remote->poll(std::chrono::milliseconds(100));

			if (ev.kind == vs::client::RemoteEvent::kDone)
				break;
			if (ev.kind == vs::client::RemoteEvent::kProgress)
				DiskannReportPhase(local_phase(ev.phase), (double) ev.done, (double) ev.total);
			else if (ev.kind == vs::client::RemoteEvent::kSummary)
				summary = std::move(ev);
			else if (ev.kind == vs::client::RemoteEvent::kPages)
			{
				if (ev.first_block != pages.size())
					return fail(vs::detail::format("page batch starts at block %u, expected %zu", ev.first_block,
												   pages.size()));
				if (ev.page_size != BLCKSZ || ev.format_version != vs::format::kFormatVersion)
					return fail(vs::detail::format("pages of %u bytes, format %u; expected %d bytes, format %u",
												   ev.page_size, ev.format_version, BLCKSZ, vs::format::kFormatVersion));
				if (ev.crc32c.size() != ev.pages.size())
					return fail("a page batch has no checksum for every page");
				for (std::size_t i = 0; i < ev.pages.size(); ++i)
				{
					const std::span<const std::byte> bytes(reinterpret_cast<const std::byte *>(ev.pages[i].data()),
														   ev.pages[i].size());

					if (bytes.size() != BLCKSZ)
						return fail(vs::detail::format("block %zu is %zu bytes", pages.size(), bytes.size()));
					if (vs::crc32c(bytes) != ev.crc32c[i])
						return fail(vs::detail::format("block %zu fails its CRC-32C check", pages.size()));
					pages.push_back(std::move(ev.pages[i]));
				}
				DiskannReportPhase(DISKANN_PHASE_WRITE, 0, (double) tids.size());
			}
		}
	}
	catch (const RemoteError &e)
	{
		/* Only a builder that went away before sending anything is worth another attempt. */
		*failure = {e.what(), e.builder_went_away() && pages.empty()};
	}
	if (!failure->reason.empty())
		return false;
	if (!summary)
		return fail(vs::detail::format("the page stream ended after %zu pages without a summary", pages.size()));

	/* 3. Check everything before writing anything. */
	received = Clock::now();
	std::vector<std::uint32_t> by_tid;

	if (opts->labeled)
	{
		by_tid.resize(tids.size());
		std::iota(by_tid.begin(), by_tid.end(), 0u);
		std::sort(by_tid.begin(), by_tid.end(), [&](std::uint32_t a, std::uint32_t b) { return tids[a] < tids[b]; });
	}
	std::sort(tids.begin(), tids.end());
	if (std::adjacent_find(tids.begin(), tids.end()) != tids.end())
		VS_FAIL(vs::ErrorCode::kInternal, "the heap scan returned a heap TID twice");
	if (const std::string problem = check_pages(pages, opts, tids, by_tid, labels); !problem.empty())
		return fail("invalid index returned: " + problem);

	/* 4. Write, then WAL-log once. */
	checked = Clock::now();
	Relation	index = rq.index;

	for (std::size_t b = 0; b < pages.size(); ++b)
		DiskannWriteNewPage(index, MAIN_FORKNUM, (std::uint32_t) b,
							{reinterpret_cast<const std::byte *>(pages[b].data()), pages[b].size()});
	written = Clock::now();
	vs::pg::call([&] {
		if (RelationNeedsWAL(index))
			log_newpage_range(index, MAIN_FORKNUM, 0, RelationGetNumberOfBlocks(index), true);
	});
	DiskannReportPhase(DISKANN_PHASE_WRITE, (double) tids.size(), (double) tids.size());
	result->heap_tuples = reltuples;
	result->index_tuples = (double) tids.size();

	const auto	done = Clock::now();

	vs::pg::call([&] {
		elog(LOG, "diskann index \"%s\" built through builder \"%s\" by \"%s\" at %s, backend %s: %zu rows, %zu pages, "
			 "%.3f s (scan and send %.3f s, builder until the last page %.3f s, check %.3f s, write %.3f s, WAL %.3f s)",
			 RelationGetRelationName(index), rq.settings->endpoint.c_str(), summary->builder_id.c_str(),
			 summary->peer.c_str(), summary->backend.c_str(), tids.size(), pages.size(), since(started, done),
			 since(started, sent), since(sent, received), since(received, checked), since(checked, written),
			 since(written, done));
	});
	return true;
}

}							/* namespace */

/*
 * Builds the index through the builder (C++ zone), retrying once when the builder went away
 * before sending any page. Returns true when the pages are written; false after a NOTICE when
 * the caller must build locally.
 */
bool
DiskannBuildRemote(Relation heap, Relation index, IndexInfo *indexInfo, const DiskannBuildOptions *opts,
				   std::uint64_t seed, IndexBuildResult *result)
{
	static bool release_registered = false;
	const char *endpoint = diskann_builder_endpoint;
	vs::client::BuilderSettings settings;
	vs::client::RemoteSpec spec;

	settings.endpoint = endpoint;
	settings.tls_ca_file = diskann_builder_tls_ca != nullptr ? diskann_builder_tls_ca : "";
	settings.token_file = diskann_builder_token_file != nullptr ? diskann_builder_token_file : "";
	settings.timeout = std::chrono::seconds(diskann_builder_timeout);
	settings.connect_timeout = std::chrono::seconds(std::min(diskann_builder_connect_timeout, diskann_builder_timeout));
	settings.interrupted = [] { return QueryCancelPending || ProcDiePending; };
	spec.page_size = BLCKSZ;
	spec.metric = (std::uint32_t) opts->metric;
	spec.column_dims = (std::uint32_t) opts->column_dims;
	spec.indexed_dims = (std::uint32_t) opts->indexed_dims;
	spec.storage = (std::uint32_t) opts->storage;
	spec.bits_per_dim = (std::uint32_t) opts->bits_per_dim;
	spec.num_neighbors = (std::uint32_t) opts->num_neighbors;
	spec.search_list_size = (std::uint32_t) opts->search_list_size;
	spec.max_alpha = opts->max_alpha;
	spec.expected_rows = (std::uint64_t) std::max<double>(heap->rd_rel->reltuples, 0.0);
	spec.threads = diskann_build_threads > 0 ? (std::uint32_t) diskann_build_threads : 0;
	spec.seed = seed;
	spec.client = vs::detail::format("postgres pid %d index %s", MyProcPid, RelationGetRelationName(index));
	spec.has_labels = opts->labeled;
	spec.label_capacity = opts->labeled ? DISKANN_DEFAULT_LABEL_CAPACITY : 0;

	/* The channel outlives this build (builder_client.hpp); release it before exit(). */
	if (!release_registered)
	{
		vs::pg::call([] { on_proc_exit(release_builder_channel, (Datum) 0); });
		release_registered = true;
	}

	const RemoteRequest rq{heap, index, indexInfo, opts, &settings, &spec};
	AttemptFailure first;

	if (remote_attempt(rq, result, &first))
		return true;
	if (!first.retryable)
		return give_up(endpoint, first.reason);
	check_cancel();
	vs::pg::call([&] {
		elog(LOG, "diskann build of index \"%s\" through builder \"%s\" failed before any page arrived: %s; retrying once",
			 RelationGetRelationName(index), endpoint, first.reason.c_str());
	});

	AttemptFailure second;

	if (remote_attempt(rq, result, &second))
		return true;
	return give_up(endpoint, "first attempt: " + first.reason + "; second attempt: " + second.reason);
}
