/**
 * @file control.hpp
 * @brief How a caller steers long engine work: cancellation, progress and log callbacks.
 *
 * All three callbacks are invoked only on the thread that called into the engine (the
 * PostgreSQL backend's main thread in the extension), never on worker threads, so the
 * extension may read InterruptPending or update pg_stat_progress from them.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <cstdint>
#include <functional>
#include <string_view>

namespace vs {

/** Returns true when the work must stop; the engine then throws vs::Cancelled. */
using CancelToken = std::function<bool()>;

/**
 * Receives (phase, done, total): `done` of `total` units of the current phase. Phases are
 * numbered by the operation (e.g. vamana::BuildPhase) and only increase; within a phase
 * `done` only increases and the last report of a finished phase has done == total.
 */
using ProgressCallback = std::function<void(std::uint32_t phase, std::uint64_t done, std::uint64_t total)>;

/** Severity of an engine log line. */
enum class LogLevel : std::uint8_t { kDebug, kInfo, kWarning };

/** Receives engine log lines (no printf in common/). */
using LogSink = std::function<void(LogLevel, std::string_view)>;

/** The caller-side hooks of a long operation; every member may be empty. */
struct Control {
  CancelToken cancel;          ///< polled between units of work on the calling thread
  ProgressCallback progress;   ///< called between units of work on the calling thread
  LogSink log;                 ///< called on the calling thread
};

}  // namespace vs
