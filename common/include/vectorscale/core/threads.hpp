/**
 * @file threads.hpp
 * @brief Worker threads that are safe to start inside a PostgreSQL backend.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <cstddef>
#include <functional>

namespace vs {

/**
 * Runs body(worker_id) on `threads` workers and returns when all have finished.
 *
 * Worker 0 is the calling thread itself; workers 1..threads-1 are new threads started with
 * every signal blocked (they inherit the mask), so a backend's signal handlers only ever run
 * on the backend's own thread. Exceptions from any worker are captured; after every worker
 * joined, the first one is rethrown on the calling thread.
 */
void run_workers(std::size_t threads, const std::function<void(std::size_t worker)>& body);

}  // namespace vs
