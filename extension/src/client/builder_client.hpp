/*
 * builder_client.hpp
 *		The extension's gRPC client of gpu_builder, free of PostgreSQL headers (gRPC and
 *		abseil headers do not survive postgres.h's macros, and PostgreSQL must not see gRPC).
 *
 * One RemoteBuild is one Build stream. The backend thread sends (add / finish) and polls
 * for events with a short wait, checking for interrupts in between; a reader thread, started
 * with every signal blocked, receives the server's messages. Every gRPC call on the backend
 * thread runs with signals blocked too, so gRPC's own threads inherit a blocked mask and
 * PostgreSQL's signal handlers only ever run on the backend thread. Errors are thrown as
 * RemoteError with a reason fit for a NOTICE. No method calls PostgreSQL.
 */
#pragma once

#include <chrono>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <span>
#include <stdexcept>
#include <string>
#include <vector>

namespace vs::client {

/* Why a remote build failed (gRPC status code, or -1 for client-side problems). */
class RemoteError : public std::runtime_error
{
  public:
	RemoteError(int code, const std::string &reason) : std::runtime_error(reason), code_(code) {}
	int			code() const noexcept { return code_; }

	/*
	 * The builder went away without answering: UNAVAILABLE (it died, reset the connection, is
	 * shutting down, or none was ready when the call started) or CANCELLED (gRPC cancels the
	 * calls that reach a server whose shutdown has begun; a cancel of our own is the caller's
	 * to recognize). Another builder of the target may do the build. A connect timeout
	 * (DEADLINE_EXCEEDED) is not: round_robin tried every address of the target meanwhile.
	 */
	bool		builder_went_away() const noexcept { return code_ == 14 || code_ == 1; }

  private:
	int			code_;
};

/* Where and how to reach the builder (DESIGN.md 5: diskann.builder_* settings). */
struct BuilderSettings
{
	std::string endpoint;		/* gRPC target: host:port, ipv4:a:p,b:q, dns:///name:port */
	std::string tls_ca_file;	/* PEM roots; empty = plaintext */
	std::string token_file;		/* bearer token; empty = none */
	std::chrono::seconds timeout{3600};	/* deadline of the whole build */
	std::chrono::seconds connect_timeout{10};	/* until a builder is connected and SERVING */
	/* Polled while connecting; true makes the constructor throw RemoteError(CANCELLED). */
	std::function<bool()> interrupted;
};

/* The build request (mirrors BuildSpec). */
struct RemoteSpec
{
	std::uint32_t page_size = 8192;
	std::uint32_t metric = 0;
	std::uint32_t column_dims = 0;
	std::uint32_t indexed_dims = 0;
	std::uint32_t storage = 0;
	std::uint32_t bits_per_dim = 0;
	std::uint32_t num_neighbors = 0;
	std::uint32_t search_list_size = 0;
	float		max_alpha = 1.2f;
	std::uint64_t expected_rows = 0;
	std::uint32_t threads = 0;
	std::uint64_t seed = 0;
	std::string client;
	bool		has_labels = false;	/* rows carry label sets */
	std::uint32_t label_capacity = 0;	/* label slots per node record at least */
};

/* What poll() saw. */
struct RemoteEvent
{
	enum Kind
	{
		kNone,					/* nothing within the wait */
		kProgress,
		kPages,
		kSummary,
		kDone					/* stream over and OK (a failure throws instead) */
	}			kind = kNone;
	std::uint32_t phase = 0;
	std::uint64_t done = 0;
	std::uint64_t total = 0;
	std::uint32_t first_block = 0;
	std::uint32_t format_version = 0;
	std::uint32_t page_size = 0;
	std::vector<std::string> pages;	/* page images */
	std::vector<std::uint32_t> crc32c;
	std::uint64_t nodes = 0;
	std::uint32_t total_pages = 0;
	std::string builder_id;
	std::string backend;
	std::string peer;			/* the builder's address, as gRPC names it */
};

class RemoteBuildImpl;

/*
 * Drops the channel that builds share (at backend exit; the next build makes a new one).
 * Call it on the thread that builds.
 */
void		release_channel() noexcept;

/* One Build stream to gpu_builder. */
class RemoteBuild
{
  public:
	/*
	 * Connects (within connect_timeout) and sends the spec; throws RemoteError. The channel
	 * (one per target and TLS roots, kept between builds) balances calls round robin over
	 * the target's builders whose health service says SERVING.
	 */
	RemoteBuild(const BuilderSettings &settings, const RemoteSpec &spec);
	/* Cancels the call if it is still open and joins the reader thread. */
	~RemoteBuild();
	RemoteBuild(const RemoteBuild &) = delete;
	RemoteBuild &operator=(const RemoteBuild &) = delete;

	/*
	 * Queues one row (indexed_dims floats; labels when the spec has them). A full batch goes
	 * to the writer thread, which sends it while more rows come; add() waits only when 3
	 * batches are already queued or being sent. Throws RemoteError (a failed send shows up at
	 * the next full batch or in finish()).
	 */
	void		add(const float *vector, std::uint64_t heap_tid, std::span<const std::int16_t> labels = {});
	/* Sends the last batch, waits until every batch is sent, sends Finish and half-closes; throws RemoteError. */
	void		finish();
	/* Waits up to wait for the next server message; throws RemoteError on a failed stream. */
	RemoteEvent poll(std::chrono::milliseconds wait);
	/* Cancels the call (safe at any time). */
	void		cancel() noexcept;
	/* Rows sent so far. */
	std::uint64_t rows() const noexcept;

  private:
	std::unique_ptr<RemoteBuildImpl> impl_;
};

}							/* namespace vs::client */
