// gpu_builder: flags, signals, startup (STYLE.md rule 16). The service itself is in server.cpp;
// `gpu_builder --status HOST:PORT` is a client of a running one (status_client.cpp).
#include "server.hpp"
#include "status_client.hpp"

#include "vectorscale/builder/faults.hpp"
#include "vectorscale/core/error.hpp"

#include <pthread.h>
#include <signal.h>

#include <algorithm>
#include <charconv>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <exception>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

namespace {

// The usage text.
void print_usage(std::FILE* out) {
  std::fprintf(out,
               "usage: gpu_builder [options]\n"
               "       gpu_builder --status HOST:PORT [--tls-ca FILE] [--token-file FILE] [--timeout S]\n"
               "  --listen HOST:PORT             address to serve on (default 127.0.0.1:50051; port 0 = any)\n"
               "  --backend auto|cpu|cuda        build backend (default auto: cuda when a CUDA device is\n"
               "                                 usable, else cpu)\n"
               "  --cuda-device N                CUDA device of the cuda backend (default: the one with\n"
               "                                 the most free memory)\n"
               "  --threads N                    build threads per build (default: hardware threads)\n"
               "  --max-concurrent-builds K      builds running at once (default 1)\n"
               "  --max-queued-builds Q          builds waiting for a slot (default 16)\n"
               "  --max-memory BYTES             memory all running builds may hold (K/M/G/T suffixes;\n"
               "                                 default half of physical memory)\n"
               "  --tls-cert FILE --tls-key FILE serve TLS with this PEM certificate chain and key\n"
               "  --token-file FILE              require 'authorization: Bearer <token>' on every build\n"
               "  --page-batch-bytes B           most page bytes per PageBatch message (default 1048576)\n"
               "  --shutdown-grace-seconds S     on SIGTERM/SIGINT, let running builds finish this long (default 10)\n"
#ifdef VS_FAILURE_POINTS
               "  --fault NAME[=ARG]             failure point (corrupt-page, bad-crc, wrong-tid, wrong-labels,\n"
               "                                 truncate, slow=SECONDS, die-after-pages=N, fail=CODE); repeatable\n"
#endif
               "  --help                         this text\n"
               "status of a running builder (prints key: value lines; exit 0, 1 when the call fails):\n"
               "  --status HOST:PORT             the builder to ask\n"
               "  --tls-ca FILE                  connect with TLS, verifying the server with these PEM roots\n"
               "  --token-file FILE              send 'authorization: Bearer <token>'\n"
               "  --timeout S                    deadline of the call in seconds (default 5)\n");
}

// Parses an unsigned integer with an optional binary K/M/G/T suffix; false when malformed.
bool parse_size(std::string_view s, std::uint64_t& out, bool allow_suffix) {
  std::uint64_t mult = 1;
  if (allow_suffix && !s.empty()) {
    switch (s.back()) {
      case 'K':
      case 'k':
        mult = 1ull << 10;
        break;
      case 'M':
      case 'm':
        mult = 1ull << 20;
        break;
      case 'G':
      case 'g':
        mult = 1ull << 30;
        break;
      case 'T':
      case 't':
        mult = 1ull << 40;
        break;
      default:
        break;
    }
    if (mult != 1) s.remove_suffix(1);
  }
  std::uint64_t v = 0;
  const auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
  if (s.empty() || ec != std::errc() || p != s.data() + s.size()) return false;
  if (v > UINT64_MAX / mult) return false;
  out = v * mult;
  return true;
}

// Parses a non-negative number of seconds; false when malformed.
bool parse_seconds(const std::string& s, double& out) {
  try {
    std::size_t used = 0;
    out = std::stod(s, &used);
    return used == s.size() && out >= 0 && out < 1e6;
  } catch (const std::exception&) {
    return false;
  }
}

// Where an option applies: to the server, to the status client (--status), or to both.
enum class Mode { kServer, kClient, kBoth };

// One command-line option: its name, where it applies, and how it stores its value (false
// when the value is invalid; an exception's message is printed as it is).
struct Option {
  std::string_view name;
  Mode mode;
  std::function<bool(const std::string&)> set;
};

// Stores the value as it is.
auto text(std::string& field) {
  return [&field](const std::string& v) {
    field = v;
    return true;
  };
}

// Stores an unsigned integer in [lo, hi] (with a K/M/G/T suffix when `suffix`).
template <class T>
auto uint_in(T& field, std::uint64_t lo, std::uint64_t hi, bool suffix) {
  return [&field, lo, hi, suffix](const std::string& v) {
    std::uint64_t n = 0;
    if (!parse_size(v, n, suffix) || n < lo || n > hi) return false;
    field = static_cast<T>(n);
    return true;
  };
}

// The options of the server and of the status client.
std::vector<Option> option_table(vs::builder::ServerOptions& o, vs::builder::StatusClientOptions& status) {
  return {
      {"--listen", Mode::kServer, text(o.listen)},
      {"--backend", Mode::kServer, text(o.backend)},
      {"--cuda-device", Mode::kServer, uint_in(o.cuda_device, 0, 1024, false)},
      {"--threads", Mode::kServer, uint_in(o.threads, 1, 1024, false)},
      {"--max-concurrent-builds", Mode::kServer, uint_in(o.max_concurrent_builds, 1, 1024, false)},
      {"--max-queued-builds", Mode::kServer, uint_in(o.max_queued_builds, 0, 100000, false)},
      {"--max-memory", Mode::kServer, uint_in(o.max_memory, 1, UINT64_MAX, true)},
      {"--tls-cert", Mode::kServer, text(o.tls_cert_file)},
      {"--tls-key", Mode::kServer, text(o.tls_key_file)},
      {"--token-file", Mode::kBoth,
       [&](const std::string& v) {
         o.token_file = v;
         status.token_file = v;
         return true;
       }},
      {"--page-batch-bytes", Mode::kServer, uint_in(o.page_batch_bytes, 0, UINT64_MAX, true)},
      {"--shutdown-grace-seconds", Mode::kServer,
       [&](const std::string& v) { return parse_seconds(v, o.shutdown_grace_seconds); }},
      {"--status", Mode::kClient,
       [&](const std::string& v) {
         if (v.find(':') == std::string::npos) return false;
         status.target = v;
         return true;
       }},
      {"--tls-ca", Mode::kClient, text(status.tls_ca_file)},
      {"--timeout", Mode::kClient,
       [&](const std::string& v) { return parse_seconds(v, status.timeout_seconds) && status.timeout_seconds > 0; }},
#ifdef VS_FAILURE_POINTS
      {"--fault", Mode::kServer,
       [&](const std::string& v) {
         vs::builder::add_fault(o.faults, v);
         return true;
       }},
#endif
  };
}

// Parses argv into options (the server's, or the status client's with --status) and the
// options given; prints the problem and returns false on a bad command line.
bool parse_args(int argc, char** argv, const std::vector<Option>& table, std::vector<const Option*>& given,
                bool& help) {
  for (int i = 1; i < argc; ++i) {
    std::string arg = argv[i];
    std::string value;
    bool has_value = false;
    if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != std::string::npos) {
      value = arg.substr(eq + 1);
      arg = arg.substr(0, eq);
      has_value = true;
    }
    if (arg == "--help" || arg == "-h") {
      help = true;
      return true;
    }
    const auto opt = std::find_if(table.begin(), table.end(), [&](const Option& t) { return t.name == arg; });
    if (opt == table.end()) {
      std::fprintf(stderr, "gpu_builder: unknown option \"%s\" (see --help)\n", argv[i]);
      return false;
    }
    given.push_back(&*opt);
    if (!has_value) {
      if (i + 1 >= argc) {
        std::fprintf(stderr, "gpu_builder: %s needs a value\n", arg.c_str());
        return false;
      }
      value = argv[++i];
    }
    try {
      if (!opt->set(value)) {
        std::fprintf(stderr, "gpu_builder: invalid value \"%s\" for %s\n", value.c_str(), arg.c_str());
        return false;
      }
    } catch (const std::exception& e) {
      std::fprintf(stderr, "gpu_builder: %s: %s\n", arg.c_str(), e.what());
      return false;
    }
  }
  return true;
}

// With --status only the client's options apply, without it only the server's; false (after
// saying which option is out of place) when the two are mixed.
bool check_mode(const vs::builder::StatusClientOptions& status, const std::vector<const Option*>& given) {
  const bool client = !status.target.empty();
  for (const Option* opt : given) {
    if (opt->mode == Mode::kBoth || (opt->mode == Mode::kClient) == client) continue;
    std::fprintf(stderr, client ? "gpu_builder: %s does not apply to --status\n" : "gpu_builder: %s needs --status\n",
                 std::string(opt->name).c_str());
    return false;
  }
  return true;
}

}  // namespace

// Parses flags, starts the server, serves until SIGTERM/SIGINT, stops gracefully; or, with
// --status, asks a running server for its status.
int main(int argc, char** argv) {
  vs::builder::ServerOptions options = vs::builder::default_server_options();
  vs::builder::StatusClientOptions status;
  const std::vector<Option> table = option_table(options, status);
  std::vector<const Option*> given;
  bool help = false;
  if (!parse_args(argc, argv, table, given, help)) return vs::builder::kExitUsage;
  if (help) {
    print_usage(stdout);
    return 0;
  }
  if (!check_mode(status, given)) return vs::builder::kExitUsage;
  if (!status.target.empty()) return vs::builder::print_status(status, stdout, stderr);

  // Block the stop signals before any thread exists (gRPC's threads inherit the mask), then
  // wait for them on this thread.
  sigset_t stop_signals;
  sigemptyset(&stop_signals);
  sigaddset(&stop_signals, SIGTERM);
  sigaddset(&stop_signals, SIGINT);
  pthread_sigmask(SIG_BLOCK, &stop_signals, nullptr);

  std::unique_ptr<vs::builder::Server> server;
  try {
    server = vs::builder::Server::create(options);
    server->start();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_builder: %s\n", e.what());
    return 1;
  }
  std::fprintf(
      stderr,
      "gpu_builder: backend %s (%s), %u threads, %u concurrent builds, %u queued, max memory %llu bytes%s%s%s\n",
      server->backend_name().c_str(), server->backend_detail().c_str(), options.threads, options.max_concurrent_builds,
      options.max_queued_builds, static_cast<unsigned long long>(options.max_memory),
      options.tls_cert_file.empty() ? "" : ", TLS", options.token_file.empty() ? "" : ", bearer token",
      options.faults.any() ? ", FAILURE POINTS ACTIVE" : "");
  std::fprintf(stdout, "listening on %s\n", server->address().c_str());
  std::fflush(stdout);

  int sig = 0;
  while (sigwait(&stop_signals, &sig) != 0) {
  }
  std::fprintf(stderr, "gpu_builder: signal %d, stopping (grace %.0f s)\n", sig, options.shutdown_grace_seconds);
  try {
    server->stop(std::chrono::milliseconds(static_cast<long long>(options.shutdown_grace_seconds * 1000.0)));
    server.reset();
  } catch (const std::exception& e) {
    std::fprintf(stderr, "gpu_builder: error while stopping: %s\n", e.what());
    return 1;
  }
  std::fprintf(stderr, "gpu_builder: stopped\n");
  return 0;
}
