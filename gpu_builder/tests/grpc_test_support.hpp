// Helpers of the gpu_builder tests that talk gRPC: protocol messages of the core's specs and
// datasets, a whole client-side build, a GetStatus call.
#pragma once
#include "builder_test_support.hpp"

#include <chrono>
#include <cstdlib>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include <grpcpp/grpcpp.h>
#include <vectorscale/builder/v1/builder.grpc.pb.h>

namespace vs::builder::test {

namespace pb = vectorscale::builder::v1;

// The protocol's BuildSpec of a core spec.
inline pb::BuildRequest spec_request(const BuildSpec& s) {
  pb::BuildRequest r;
  auto* m = r.mutable_spec();
  m->set_protocol_version(s.protocol_version);
  m->set_format_version(s.format_version);
  m->set_page_size(s.page_size);
  m->set_metric(static_cast<pb::Metric>(s.metric));
  m->set_column_dims(s.column_dims);
  m->set_indexed_dims(s.indexed_dims);
  m->set_storage(static_cast<pb::StorageLayout>(s.storage));
  m->set_bits_per_dim(s.bits_per_dim);
  m->set_num_neighbors(s.num_neighbors);
  m->set_search_list_size(s.search_list_size);
  m->set_max_alpha(s.max_alpha);
  m->set_expected_rows(s.expected_rows);
  m->set_threads(s.threads);
  m->set_client(s.client);
  return r;
}

/** Rows [from, to) as a VectorBatch request. */
inline pb::BuildRequest batch_request(const Dataset& d, std::size_t from, std::size_t to) {
  pb::BuildRequest r;
  auto* v = r.mutable_vectors();
  for (std::size_t i = from; i < to; ++i) v->add_heap_tids(d.tids[i].key());
  v->mutable_data()->Add(d.vectors.begin() + static_cast<std::ptrdiff_t>(from * d.dims),
                         d.vectors.begin() + static_cast<std::ptrdiff_t>(to * d.dims));
  return r;
}

/** What a client collected from one Build call. */
struct ClientResult {
  grpc::Status status;
  std::vector<std::vector<std::byte>> pages;
  std::vector<pb::Progress> progress;
  std::optional<pb::Summary> summary;
  bool crc_ok = true;
  bool in_order = true;
  std::uint64_t request_bytes = 0;   // serialized bytes of the requests written
  std::uint64_t response_bytes = 0;  // serialized bytes of the responses read
};

/**
 * Runs a whole build as the extension's client would.
 * With `after_first`, reads the first response right after the spec and then calls it.
 */
inline ClientResult build(pb::Builder::Stub& stub, const BuildSpec& spec, const Dataset& d,
                          const std::string& token = "", const std::function<void()>& after_first = {}) {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(60));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  auto stream = stub.Build(&ctx);
  ClientResult out;
  const auto write = [&](const pb::BuildRequest& r) {
    if (!stream->Write(r)) return false;
    out.request_bytes += r.ByteSizeLong();
    return true;
  };
  bool ok = write(spec_request(spec));
  pb::BuildResponse resp;
  if (after_first) {
    if (ok && stream->Read(&resp)) {
      out.response_bytes += resp.ByteSizeLong();
      if (resp.has_progress()) out.progress.push_back(resp.progress());
    }
    after_first();
  }
  for (std::size_t i = 0; ok && i < d.n; i += 400) ok = write(batch_request(d, i, std::min(d.n, i + 400)));
  pb::BuildRequest fin;
  fin.mutable_finish()->set_rows(d.n);
  if (ok) ok = write(fin);
  stream->WritesDone();
  while (stream->Read(&resp)) {
    out.response_bytes += resp.ByteSizeLong();
    if (resp.has_progress()) out.progress.push_back(resp.progress());
    if (resp.has_summary()) out.summary = resp.summary();
    if (resp.has_pages()) {
      const auto& b = resp.pages();
      out.in_order = out.in_order && b.first_block() == out.pages.size() && b.page_size() == spec.page_size &&
                     b.format_version() == vs::format::kFormatVersion && b.pages_size() == b.crc32c_size();
      for (int i = 0; i < b.pages_size(); ++i) {
        const auto* p = reinterpret_cast<const std::byte*>(b.pages(i).data());
        out.pages.emplace_back(p, p + b.pages(i).size());
        out.crc_ok = out.crc_ok && vs::crc32c(out.pages.back()) == b.crc32c(i);
      }
    }
  }
  out.status = stream->Finish();
  return out;
}

/** Calls GetStatus (with `token` when not empty) within 10 seconds. */
inline grpc::Status get_status(pb::Builder::Stub& stub, pb::StatusResponse& out, const std::string& token = "") {
  grpc::ClientContext ctx;
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
  if (!token.empty()) ctx.AddMetadata("authorization", "Bearer " + token);
  return stub.GetStatus(&ctx, pb::StatusRequest(), &out);
}

// Writes a self-signed certificate for `subject_alt_name` (e.g. "DNS:localhost") and its key
// with openssl; false when openssl is missing or fails.
inline bool make_test_certificate(const std::string& key, const std::string& cert,
                                  const std::string& subject_alt_name) {
  const std::string cmd =
      "openssl req -x509 -newkey rsa:2048 -nodes -days 1 -subj /CN=localhost -addext subjectAltName=" +
      subject_alt_name + " -keyout " + key + " -out " + cert + " >/dev/null 2>&1";
  return std::system(cmd.c_str()) == 0;
}

}  // namespace vs::builder::test
