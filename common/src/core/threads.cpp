#include "vectorscale/core/threads.hpp"

#include <csignal>
#include <exception>
#include <mutex>
#include <pthread.h>
#include <thread>
#include <vector>

namespace vs {

void run_workers(std::size_t threads, const std::function<void(std::size_t)>& body) {
  if (threads <= 1) {
    body(0);
    return;
  }
  std::exception_ptr first_error;
  std::mutex error_mutex;
  auto guarded = [&](std::size_t worker) {
    try {
      body(worker);
    } catch (...) {
      std::lock_guard<std::mutex> lock(error_mutex);
      if (!first_error) first_error = std::current_exception();
    }
  };

  std::vector<std::thread> pool;
  pool.reserve(threads - 1);
  {
    // Block every signal while spawning so the new threads inherit a full mask.
    sigset_t all, old;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &old);
    try {
      for (std::size_t w = 1; w < threads; ++w) pool.emplace_back(guarded, w);
    } catch (...) {
      pthread_sigmask(SIG_SETMASK, &old, nullptr);
      for (auto& t : pool) t.join();
      throw;
    }
    pthread_sigmask(SIG_SETMASK, &old, nullptr);
  }
  guarded(0);
  for (auto& t : pool) t.join();
  if (first_error) std::rethrow_exception(first_error);
}

}  // namespace vs
