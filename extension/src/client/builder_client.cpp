/*
 * builder_client.cpp
 *		gRPC client of gpu_builder (no PostgreSQL headers here; see builder_client.hpp).
 */
#include "builder_client.hpp"

// common/ first: its headers refuse to follow gRPC's.
#include "vectorscale/format/records.hpp"

#include <grpcpp/grpcpp.h>
#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <fstream>
#include <mutex>
#include <sstream>
#include <thread>

#include "vectorscale/builder/v1/builder.grpc.pb.h"

namespace vs::client {

namespace pb = vectorscale::builder::v1;

namespace {

/* Bytes of floats per VectorBatch: far below gRPC's 4 MiB message limit. */
constexpr std::size_t kMaxBatchBytes = 1u << 20;

/*
 * gRPC's round_robin over every address the target resolves to, each address used only while
 * its standard health service (the overall "" entry gpu_builder sets) says SERVING.
 */
constexpr const char *kServiceConfig =
	R"({"loadBalancingConfig":[{"round_robin":{}}],"healthCheckConfig":{"serviceName":""}})";

/* Blocks every signal on this thread for its lifetime (gRPC threads inherit the mask). */
class SignalBlock
{
  public:
	SignalBlock() noexcept
	{
		sigset_t	all;

		sigfillset(&all);
		pthread_sigmask(SIG_BLOCK, &all, &saved_);
	}
	~SignalBlock() { pthread_sigmask(SIG_SETMASK, &saved_, nullptr); }
	const sigset_t &saved() const noexcept { return saved_; }
	SignalBlock(const SignalBlock &) = delete;
	SignalBlock &operator=(const SignalBlock &) = delete;

  private:
	sigset_t	saved_;
};

/* Reads a whole file; throws RemoteError naming the setting. */
std::string
read_file(const std::string &path, const char *what)
{
	std::ifstream in(path, std::ios::binary);

	if (!in)
		throw RemoteError(-1, std::string("cannot read ") + what + " \"" + path + "\"");
	std::ostringstream s;

	s << in.rdbuf();
	return s.str();
}

std::string
status_reason(const grpc::Status &st)
{
	static const char *const names[] = {
		"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION",
		"ABORTED", "OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS",
		"UNAUTHENTICATED"};
	const int	code = static_cast<int>(st.error_code());
	std::string name = code >= 0 && code <= 16 ? names[code] : std::to_string(code);

	return name + (st.error_message().empty() ? "" : ": " + st.error_message());
}

/*
 * The backend's channel to the builder target. It is kept from one build to the next, so that
 * round_robin turns over across the builds of a backend and a retry sees the state of the
 * builder that failed (a fresh channel would send its only call to whichever builder answered
 * first); it is replaced when the target or the TLS roots change, and dropped by
 * release_channel(). Never destroyed by a static destructor: gRPC must not be torn down
 * while exit() runs. A minute after the last build it goes idle: its connections close, and the
 * next build resolves the target again (a DNS name then finds builders added meanwhile).
 */
struct ChannelCache
{
	std::mutex	mu;
	std::string key;			/* target and PEM roots of channel */
	std::shared_ptr<grpc::Channel> channel;
};

ChannelCache &
channel_cache()
{
	static ChannelCache *const cache = new ChannelCache;

	return *cache;
}

/* The channel for these settings (call with signals blocked); throws RemoteError. */
std::shared_ptr<grpc::Channel>
shared_channel(const BuilderSettings &settings)
{
	const std::string roots =
		settings.tls_ca_file.empty() ? std::string() : read_file(settings.tls_ca_file, "diskann.builder_tls_ca");

	/* A file that is not PEM would only show up later as a builder that never answers. */
	if (!settings.tls_ca_file.empty() && roots.find("-----BEGIN CERTIFICATE-----") == std::string::npos)
		throw RemoteError(-1, "diskann.builder_tls_ca \"" + settings.tls_ca_file + "\" holds no PEM certificate");
	std::string key = settings.endpoint + '\n' + roots;
	ChannelCache &cache = channel_cache();
	std::lock_guard<std::mutex> lock(cache.mu);

	if (cache.channel && cache.key == key)
		return cache.channel;
	std::shared_ptr<grpc::ChannelCredentials> creds;

	if (roots.empty())
		creds = grpc::InsecureChannelCredentials();
	else
	{
		grpc::SslCredentialsOptions ssl;

		ssl.pem_root_certs = roots;
		creds = grpc::SslCredentials(ssl);
	}
	grpc::ChannelArguments args;

	args.SetMaxReceiveMessageSize(16 << 20);
	args.SetServiceConfigJSON(kServiceConfig);
	args.SetInt(GRPC_ARG_CLIENT_IDLE_TIMEOUT_MS, 60 * 1000);
	cache.channel = grpc::CreateCustomChannel(settings.endpoint, creds, args);
	cache.key = std::move(key);
	return cache.channel;
}

}							/* namespace */

void
release_channel() noexcept
{
	SignalBlock blocked;
	std::shared_ptr<grpc::Channel> dropped;
	ChannelCache &cache = channel_cache();

	{
		std::lock_guard<std::mutex> lock(cache.mu);

		dropped.swap(cache.channel);
		cache.key.clear();
	}
}

class RemoteBuildImpl
{
  public:
	RemoteBuildImpl(const BuilderSettings &settings, const RemoteSpec &spec);
	~RemoteBuildImpl();

	void		add(const float *vector, std::uint64_t heap_tid, std::span<const std::int16_t> labels);
	void		finish();
	RemoteEvent poll(std::chrono::milliseconds wait);
	void		cancel() noexcept { context_.TryCancel(); }
	std::uint64_t rows() const noexcept { return rows_; }

  private:
	void		send_batch();
	void		write(const pb::BuildRequest &req);
	[[noreturn]] void fail_from_stream(const char *while_doing);
	void		read_loop();
	void		write_loop();
	void		stop_writer() noexcept;

	std::uint32_t dims_;
	bool		has_labels_;
	std::shared_ptr<grpc::Channel> channel_;
	std::unique_ptr<pb::Builder::Stub> stub_;
	grpc::ClientContext context_;
	std::unique_ptr<grpc::ClientReaderWriter<pb::BuildRequest, pb::BuildResponse>> stream_;
	std::unique_ptr<pb::BuildRequest> batch_;	/* being filled by add() */
	std::size_t batch_rows_ = 0;
	std::size_t batch_labels_ = 0;
	std::uint64_t rows_ = 0;

	/*
	 * The writer thread sends the full batches, so that the heap scan goes on while gRPC
	 * serializes and sends the previous ones. kBatchesInFlight messages circulate: queued
	 * (outbox_), being written, or empty and ready to fill (spare_); their capacity is reused.
	 */
	static constexpr std::size_t kBatchesInFlight = 4;
	std::thread writer_;
	std::mutex	wmu_;
	std::condition_variable wcv_;
	std::deque<std::unique_ptr<pb::BuildRequest>> outbox_;
	std::vector<std::unique_ptr<pb::BuildRequest>> spare_;
	bool		write_failed_ = false;
	bool		stop_writing_ = false;

	std::thread reader_;
	std::mutex	mu_;
	std::condition_variable cv_;
	std::deque<pb::BuildResponse> inbox_;
	bool		read_done_ = false;
	bool		status_taken_ = false;
};

RemoteBuildImpl::RemoteBuildImpl(const BuilderSettings &settings, const RemoteSpec &spec)
	: dims_(spec.indexed_dims), has_labels_(spec.has_labels)
{
	SignalBlock blocked;

	channel_ = shared_channel(settings);
	/* Builders that were down are tried now, not when their reconnect backoff (up to 2 min) ends. */
	grpc::experimental::ChannelResetConnectionBackoff(channel_.get());
	if (!settings.token_file.empty())
	{
		std::string token = read_file(settings.token_file, "diskann.builder_token_file");

		while (!token.empty() && std::isspace(static_cast<unsigned char>(token.back())))
			token.pop_back();
		context_.AddMetadata("authorization", "Bearer " + token);
	}
	/* Connect in short slices so that an interrupt is seen within ~100 ms. */
	const auto connect_deadline = std::chrono::system_clock::now() + settings.connect_timeout;

	for (;;)
	{
		if (channel_->WaitForConnected(std::min(connect_deadline, std::chrono::system_clock::now() +
												std::chrono::milliseconds(100))))
			break;
		if (std::chrono::system_clock::now() >= connect_deadline)
			throw RemoteError(static_cast<int>(grpc::StatusCode::DEADLINE_EXCEEDED),
							  "no serving builder at " + settings.endpoint + " could be reached within " +
							  std::to_string(settings.connect_timeout.count()) + " s");
		if (settings.interrupted)
		{
			/* Let a pending signal in, then look at the flags its handler sets. */
			pthread_sigmask(SIG_SETMASK, &blocked.saved(), nullptr);
			const bool	stop = settings.interrupted();
			sigset_t	all;

			sigfillset(&all);
			pthread_sigmask(SIG_BLOCK, &all, nullptr);
			if (stop)
				throw RemoteError(static_cast<int>(grpc::StatusCode::CANCELLED), "cancelled while connecting");
		}
	}
	stub_ = pb::Builder::NewStub(channel_);
	context_.set_deadline(std::chrono::system_clock::now() + settings.timeout);
	stream_ = stub_->Build(&context_);
	reader_ = std::thread([this] { read_loop(); });

	pb::BuildRequest req;
	pb::BuildSpec *s = req.mutable_spec();

	s->set_protocol_version(pb::PROTOCOL_VERSION_1);
	s->set_format_version(1);
	s->set_page_size(spec.page_size);
	s->set_metric(static_cast<pb::Metric>(spec.metric));
	s->set_column_dims(spec.column_dims);
	s->set_indexed_dims(spec.indexed_dims);
	s->set_storage(static_cast<pb::StorageLayout>(spec.storage));
	s->set_bits_per_dim(spec.bits_per_dim);
	s->set_num_neighbors(spec.num_neighbors);
	s->set_search_list_size(spec.search_list_size);
	s->set_max_alpha(spec.max_alpha);
	s->set_has_labels(spec.has_labels);
	s->set_label_capacity(spec.label_capacity);
	s->set_expected_rows(spec.expected_rows);
	s->set_threads(spec.threads);
	s->set_seed(spec.seed);
	s->set_client(spec.client);
	try
	{
		write(req);
		for (std::size_t i = 0; i < kBatchesInFlight; ++i)
			spare_.push_back(std::make_unique<pb::BuildRequest>());
		batch_ = std::move(spare_.back());
		spare_.pop_back();
		writer_ = std::thread([this] { write_loop(); });
	}
	catch (...)
	{
		/* No destructor runs for a half-built object: stop the reader here. */
		context_.TryCancel();
		reader_.join();
		if (!status_taken_)
			(void) stream_->Finish();
		throw;
	}
}

RemoteBuildImpl::~RemoteBuildImpl()
{
	SignalBlock blocked;

	context_.TryCancel();
	stop_writer();
	if (reader_.joinable())
		reader_.join();
	if (stream_ && !status_taken_)
		(void) stream_->Finish();
}

/* The writer thread: writes the queued batches in order until told to stop or a write fails. */
void
RemoteBuildImpl::write_loop()
{
	for (;;)
	{
		std::unique_ptr<pb::BuildRequest> req;

		{
			std::unique_lock<std::mutex> lock(wmu_);

			wcv_.wait(lock, [this] { return !outbox_.empty() || stop_writing_; });
			if (outbox_.empty())
				return;
			req = std::move(outbox_.front());
			outbox_.pop_front();
		}
		const bool	ok = stream_->Write(*req);

		req->Clear();
		std::lock_guard<std::mutex> lock(wmu_);

		spare_.push_back(std::move(req));
		if (!ok)
		{
			/* The stream is over; fail_from_stream() collects its status. */
			write_failed_ = true;
			outbox_.clear();
		}
		wcv_.notify_all();
		if (!ok)
			return;
	}
}

/* Ends the writer thread once its queue is written (or its write failed, or the call ended). */
void
RemoteBuildImpl::stop_writer() noexcept
{
	if (!writer_.joinable())
		return;
	{
		std::lock_guard<std::mutex> lock(wmu_);

		stop_writing_ = true;
	}
	wcv_.notify_all();
	writer_.join();
}

/* The reader thread: queues every response until the stream ends. */
void
RemoteBuildImpl::read_loop()
{
	pb::BuildResponse msg;

	while (stream_->Read(&msg))
	{
		std::lock_guard<std::mutex> lock(mu_);

		inbox_.push_back(std::move(msg));
		msg = pb::BuildResponse();
		cv_.notify_one();
	}
	std::lock_guard<std::mutex> lock(mu_);

	read_done_ = true;
	cv_.notify_one();
}

/* Writes one request; a failed write means the stream is over: report its status. */
void
RemoteBuildImpl::write(const pb::BuildRequest &req)
{
	SignalBlock blocked;

	if (!stream_->Write(req))
		fail_from_stream("sending");
}

/* Collects the final status of a stream that stopped early and throws it. */
void
RemoteBuildImpl::fail_from_stream(const char *while_doing)
{
	{
		std::unique_lock<std::mutex> lock(mu_);

		/* The reader sees the end too; bounded by the call's deadline or cancellation. */
		if (!cv_.wait_for(lock, std::chrono::seconds(30), [this] { return read_done_; }))
		{
			context_.TryCancel();
			cv_.wait(lock, [this] { return read_done_; });
		}
	}
	stop_writer();				/* its writes fail at once: the call is over */
	status_taken_ = true;
	const grpc::Status st = stream_->Finish();

	if (st.ok())
		throw RemoteError(static_cast<int>(grpc::StatusCode::DATA_LOSS),
						  std::string("DATA_LOSS: the builder ended the stream while ") + while_doing);
	throw RemoteError(static_cast<int>(st.error_code()), status_reason(st));
}

void
RemoteBuildImpl::send_batch()
{
	if (batch_rows_ == 0)
		return;
	bool		failed;

	{
		std::unique_lock<std::mutex> lock(wmu_);

		/* Bounded by the call's deadline: a write that cannot go on fails then. */
		wcv_.wait(lock, [this] { return !spare_.empty() || write_failed_; });
		failed = write_failed_;
		if (!failed)
		{
			outbox_.push_back(std::move(batch_));
			batch_ = std::move(spare_.back());
			spare_.pop_back();
		}
	}
	if (failed)
		fail_from_stream("sending");
	wcv_.notify_all();
	batch_rows_ = 0;
	batch_labels_ = 0;
}

void
RemoteBuildImpl::add(const float *vector, std::uint64_t heap_tid, std::span<const std::int16_t> labels)
{
	pb::VectorBatch *b = batch_->mutable_vectors();

	b->add_heap_tids(heap_tid);
	b->mutable_data()->Add(vector, vector + dims_);
	if (has_labels_)
	{
		if (b->label_offsets_size() == 0)
			b->add_label_offsets(0);
		for (const std::int16_t l : labels)
			b->add_labels(l);
		b->add_label_offsets(static_cast<std::uint32_t>(b->labels_size()));
		batch_labels_ += labels.size();
	}
	++batch_rows_;
	++rows_;
	/* Floats plus labels (sint32 varints: at most 3 bytes for a smallint) plus offsets. */
	if ((batch_rows_ + 1) * dims_ * sizeof(float) + batch_labels_ * 3 + batch_rows_ * 5 > kMaxBatchBytes)
		send_batch();
}

void
RemoteBuildImpl::finish()
{
	send_batch();
	stop_writer();				/* writes what is queued first */
	if (write_failed_)
		fail_from_stream("sending");
	pb::BuildRequest req;

	req.mutable_finish()->set_rows(rows_);
	write(req);
	SignalBlock blocked;

	stream_->WritesDone();
}

RemoteEvent
RemoteBuildImpl::poll(std::chrono::milliseconds wait)
{
	RemoteEvent ev;
	pb::BuildResponse msg;
	bool		ended = false;

	{
		std::unique_lock<std::mutex> lock(mu_);

		cv_.wait_for(lock, wait, [this] { return !inbox_.empty() || read_done_; });
		if (!inbox_.empty())
		{
			msg = std::move(inbox_.front());
			inbox_.pop_front();
		}
		else if (read_done_)
			ended = true;
		else
			return ev;
	}
	if (ended)
	{
		SignalBlock blocked;

		status_taken_ = true;
		const grpc::Status st = stream_->Finish();

		if (!st.ok())
			throw RemoteError(static_cast<int>(st.error_code()), status_reason(st));
		ev.kind = RemoteEvent::kDone;
		return ev;
	}
	switch (msg.kind_case())
	{
		case pb::BuildResponse::kProgress:
			ev.kind = RemoteEvent::kProgress;
			ev.phase = msg.progress().phase();
			ev.done = msg.progress().done();
			ev.total = msg.progress().total();
			break;
		case pb::BuildResponse::kPages:
			{
				pb::PageBatch *p = msg.mutable_pages();

				ev.kind = RemoteEvent::kPages;
				ev.first_block = p->first_block();
				ev.format_version = p->format_version();
				ev.page_size = p->page_size();
				ev.pages.reserve(static_cast<std::size_t>(p->pages_size()));
				for (auto &page : *p->mutable_pages())
					ev.pages.push_back(std::move(page));
				ev.crc32c.assign(p->crc32c().begin(), p->crc32c().end());
				break;
			}
		case pb::BuildResponse::kSummary:
			ev.kind = RemoteEvent::kSummary;
			ev.nodes = msg.summary().nodes();
			ev.total_pages = msg.summary().total_pages();
			ev.builder_id = msg.summary().builder_id();
			/* The wire values are format::BuildBackend's (the builder casts it). */
			ev.backend = vs::format::build_backend_name(
				static_cast<vs::format::BuildBackend>(msg.summary().backend()));
			{
				SignalBlock blocked;

				ev.peer = context_.peer();
			}
			break;
		default:
			throw RemoteError(-1, "the builder sent an empty response message");
	}
	return ev;
}

RemoteBuild::RemoteBuild(const BuilderSettings &settings, const RemoteSpec &spec)
	: impl_(std::make_unique<RemoteBuildImpl>(settings, spec))
{
}

RemoteBuild::~RemoteBuild() = default;

void
RemoteBuild::add(const float *vector, std::uint64_t heap_tid, std::span<const std::int16_t> labels)
{
	impl_->add(vector, heap_tid, labels);
}

void
RemoteBuild::finish()
{
	impl_->finish();
}

RemoteEvent
RemoteBuild::poll(std::chrono::milliseconds wait)
{
	return impl_->poll(wait);
}

void
RemoteBuild::cancel() noexcept
{
	impl_->cancel();
}

std::uint64_t
RemoteBuild::rows() const noexcept
{
	return impl_->rows();
}

}							/* namespace vs::client */
