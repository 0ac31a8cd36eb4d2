// The CUDA emulator's runtime (emu/include/vectorscale/cuda/emu/device.hpp has the model): the
// CUDA runtime API calls the backend makes, with the checks a device makes, and the block
// scheduler that runs kernels' threads as fibers.
//
// Settings (environment): VS_CUDA_EMU_MEMORY_MB (device memory, default 4096),
// VS_CUDA_EMU_DEVICES (default 1; 0: "no device"), VS_CUDA_EMU_ORDER=reverse (threads and
// blocks run last to first).
#include <sys/mman.h>
#include <unistd.h>

#include <algorithm>
#include <boost/context/fiber.hpp>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <new>
#include <optional>
#include <set>
#include <stdexcept>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "state.hpp"
#include "vectorscale/cuda/emu/device.hpp"

#if defined(__SANITIZE_ADDRESS__)
#include <sanitizer/common_interface_defs.h>
#endif
#if __has_include(<valgrind/valgrind.h>)
#include <valgrind/valgrind.h>
#define VS_EMU_VALGRIND 1
#endif

namespace vs::cuda::emu {

namespace ctx = boost::context;

thread_local const ThreadIndex* t_index = nullptr;

namespace {

// ---- the device ------------------------------------------------------------------------------
constexpr int kComputeMajor = 9, kComputeMinor = 0;  // an H100's: the backend's BF16 paths run
// (only what the backend and its tests ask a device for is answered)
constexpr std::size_t kDefaultShared = 48 * 1024;
constexpr std::size_t kOptinShared = 227 * 1024;
constexpr std::size_t kSharedPerSm = 228 * 1024, kReservedSharedPerBlock = 1024;  // an H100's
constexpr std::size_t kAlignment = 256;  // cudaMalloc's
constexpr unsigned char kFill = 0xA5;    // fresh device and pinned memory: never zero by chance

std::size_t env_size(const char* name, std::size_t fallback) {
  const char* v = std::getenv(name);
  if (v == nullptr || *v == '\0') return fallback;
  char* end = nullptr;
  const unsigned long long x = std::strtoull(v, &end, 10);
  return end != nullptr && *end == '\0' ? static_cast<std::size_t>(x) : fallback;
}

// VS_CUDA_EMU_ORDER=reverse: threads between barriers, and blocks, run last to first (results
// that change with it depend on the order a device happens to run threads in: a race).
bool reverse_order() {
  static const bool reverse = [] {
    const char* v = std::getenv("VS_CUDA_EMU_ORDER");
    return v != nullptr && std::strcmp(v, "reverse") == 0;
  }();
  return reverse;
}

int device_count() {
  static const int n = static_cast<int>(env_size("VS_CUDA_EMU_DEVICES", 1));
  return n;
}

std::size_t total_memory() {
  static const std::size_t bytes = env_size("VS_CUDA_EMU_MEMORY_MB", 4096) << 20;
  return bytes;
}

enum class Kind { kDevice, kPinned, kRegistered };

struct Range {
  std::size_t bytes;
  Kind kind;
};

struct State {
  std::mutex mu;
  std::map<std::uintptr_t, Range> ranges;  // by first byte
  std::size_t device_bytes = 0;
  std::set<cudaStream_t> streams;
  std::set<cudaEvent_t> events;
  // Timing events (created without cudaEventDisableTiming) and when each was last recorded.
  std::map<cudaEvent_t, std::optional<std::chrono::steady_clock::time_point>> timing_events;
  std::unordered_map<const void*, std::size_t> max_dynamic_shared;  // cudaFuncSetAttribute
  cudaError_t sticky = cudaSuccess;
};

State& state() {
  static State s;
  return s;
}

thread_local cudaError_t t_last_error = cudaSuccess;

// The range that contains p, or null.
const std::pair<const std::uintptr_t, Range>* find_range(State& s, const void* p) {
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  auto it = s.ranges.upper_bound(a);
  if (it == s.ranges.begin()) return nullptr;
  --it;
  return a < it->first + it->second.bytes ? &*it : nullptr;
}

// Where [p, p + bytes) lies: outside device memory, inside one device allocation, or starting
// in one and running past its end.
enum class Place { kHost, kDevice, kOverrun };

Place place(State& s, const void* p, std::size_t bytes) {
  const auto* r = find_range(s, p);
  if (r == nullptr || r->second.kind != Kind::kDevice) return Place::kHost;
  return reinterpret_cast<std::uintptr_t>(p) + bytes <= r->first + r->second.bytes ? Place::kDevice : Place::kOverrun;
}

// Every call starts here: a sticky error answers every call.
cudaError_t begin() {
  State& s = state();
  std::lock_guard lock(s.mu);
  return s.sticky;
}

cudaError_t record(cudaError_t e) {
  if (e != cudaSuccess) t_last_error = e;
  return e;
}

void* aligned_block(std::size_t bytes) {
  return ::operator new (bytes, std::align_val_t{kAlignment}, std::nothrow);
}

void free_block(void* p) {
  ::operator delete (p, std::align_val_t{kAlignment});
}

// ---- fibers --------------------------------------------------------------------------------
// Stacks of the emulated threads, reused across launches; a guard page below each turns a
// stack overflow into a crash instead of corruption.
class StackPool {
 public:
  static constexpr std::size_t kStackBytes = 256 * 1024;
  StackPool() : page_(static_cast<std::size_t>(::sysconf(_SC_PAGESIZE))) {}
  StackPool(const StackPool&) = delete;
  StackPool& operator=(const StackPool&) = delete;
  ~StackPool() {
    for (const ctx::stack_context& sc : free_) ::munmap(static_cast<char*>(sc.sp) - sc.size - page_, sc.size + page_);
  }
  ctx::stack_context allocate() {
    if (!free_.empty()) {
      const ctx::stack_context sc = free_.back();
      free_.pop_back();
      return sc;
    }
    void* base = ::mmap(nullptr, kStackBytes + page_, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (base == MAP_FAILED) throw std::bad_alloc();
    ::mprotect(base, page_, PROT_NONE);
#if defined(VS_EMU_VALGRIND)
    (void)VALGRIND_STACK_REGISTER(static_cast<char*>(base) + page_, static_cast<char*>(base) + page_ + kStackBytes);
#endif
    ctx::stack_context sc;
    sc.size = kStackBytes;
    sc.sp = static_cast<char*>(base) + page_ + kStackBytes;
    return sc;
  }
  void deallocate(ctx::stack_context& sc) noexcept {
    free_.push_back(sc);
  }

 private:
  std::size_t page_;
  std::vector<ctx::stack_context> free_;
};

// The stack the last fiber created got (for the sanitizer's annotations).
thread_local ctx::stack_context t_new_stack;

struct StackRef {
  StackPool* pool;
  ctx::stack_context allocate() { return t_new_stack = pool->allocate(); }
  void deallocate(ctx::stack_context& sc) noexcept { pool->deallocate(sc); }
};

// A context's stack, as AddressSanitizer must be told about it at every switch (its bounds, and
// where it keeps the context's fake stack meanwhile).
struct Stack {
  const void* bottom = nullptr;
  std::size_t size = 0;
  void* fake = nullptr;
};

enum class Wait : std::uint8_t { kRun, kBlock, kWarp, kDone };

// One emulated thread: a fiber that runs the kernel body once per block of the launch.
struct Lane {
  ThreadIndex index{};
  Wait wait = Wait::kRun;
  std::uint32_t warp = 0, lane = 0;  // of the block's linear thread index
  unsigned exchange_phase = 0;
  ctx::fiber fiber;  // the lane, while it is suspended
  Stack stack;
};

// The launch being run on this host thread.
struct Run {
  const std::function<void()>* body = nullptr;
  std::vector<Lane> lanes;
  std::vector<std::uint64_t> slots;  // per warp: 2 sets (used in turn) x 32 lanes
  std::vector<std::uint8_t> summed;  // per warp and set: warp_butterfly_sum replaced the values
  ctx::fiber scheduler;              // the scheduler, while lanes run
  Stack scheduler_stack;             // learnt at the first switch away from it
  void* shared = nullptr;
  bool finished = false;  // every block ran: lanes leave their loop
  std::string failure;    // a block that cannot go on
};

thread_local Run* t_run = nullptr;
thread_local Lane* t_lane = nullptr;
// Where the context that switched last parks itself: whoever switches sets it to its own slot,
// and whoever that resumed stores the context it gets back there (null: it ended).
thread_local ctx::fiber* t_park = nullptr;

// Sanitizer annotations: leaving `me` (null: it ends) for `to`, and arriving in `me`.
void leaving(Stack* me, const Stack& to) {
#if defined(__SANITIZE_ADDRESS__)
  __sanitizer_start_switch_fiber(me != nullptr ? &me->fake : nullptr, to.bottom, to.size);
#else
  (void)me, (void)to;
#endif
}

void arriving(Stack& me) {
#if defined(__SANITIZE_ADDRESS__)
  const void* bottom = nullptr;
  std::size_t size = 0;
  __sanitizer_finish_switch_fiber(me.fake, &bottom, &size);
  if (t_park == &t_run->scheduler) t_run->scheduler_stack.bottom = bottom, t_run->scheduler_stack.size = size;
#else
  (void)me;
#endif
}

// Switches from the context `me` (parked in *park afterwards) to `target`, which runs on `to`.
void switch_to(ctx::fiber& target, const Stack& to, ctx::fiber* park, Stack& me) {
  t_park = park;
  leaving(&me, to);
  ctx::fiber from = std::move(target).resume();
  arriving(me);
  if (t_park != nullptr) *t_park = std::move(from);
}

void resume_lane(Lane& l, ctx::fiber* park, Stack& me) {
  t_lane = &l;
  t_index = &l.index;
  switch_to(l.fiber, l.stack, park, me);
}

// A lane at a barrier (or at its end) switches straight to the next runnable lane of its
// block, and the last one to the scheduler: one switch per lane and pass.
void yield_to_scheduler() {
  Lane& me = *t_lane;
  Run& run = *t_run;
  if (run.failure.empty()) {
    if (reverse_order()) {
      for (Lane* next = &me; next != run.lanes.data();)
        if ((--next)->wait == Wait::kRun) return resume_lane(*next, &me.fiber, me.stack);
    } else {
      for (Lane* next = &me + 1; next != run.lanes.data() + run.lanes.size(); ++next)
        if (next->wait == Wait::kRun) return resume_lane(*next, &me.fiber, me.stack);
    }
  }
  switch_to(run.scheduler, run.scheduler_stack, &me.fiber, me.stack);
}

std::string describe(const ThreadIndex& i) {
  char buf[160];
  std::snprintf(buf, sizeof buf, "block (%u,%u,%u) thread (%u,%u,%u)", i.block_idx.x, i.block_idx.y, i.block_idx.z,
                i.thread_idx.x, i.thread_idx.y, i.thread_idx.z);
  return buf;
}

// Runs one block to its end: passes over the runnable lanes, each running to its next barrier
// or its end, then releases the barriers every covered lane has reached.
void run_block(Run& run) {
  const std::size_t n = run.lanes.size();
  for (;;) {
    Lane* start = nullptr;  // the chain from it runs every runnable lane
    for (std::size_t i = 0; i < n; ++i) {
      Lane& l = run.lanes[reverse_order() ? n - 1 - i : i];
      if (l.wait == Wait::kRun) {
        start = &l;
        break;
      }
    }
    if (start != nullptr) resume_lane(*start, &run.scheduler, run.scheduler_stack);
    if (!run.failure.empty()) return;
    bool released = false;
    std::size_t done = 0, at_block = 0;
    for (std::size_t w = 0; w * 32 < n; ++w) {
      const std::size_t first = w * 32, last = std::min(n, first + 32);
      std::size_t at_warp = 0, exited = 0;
      for (std::size_t i = first; i < last; ++i) {
        at_warp += run.lanes[i].wait == Wait::kWarp;
        exited += run.lanes[i].wait == Wait::kDone;
      }
      if (at_warp == last - first) {
        for (std::size_t i = first; i < last; ++i) run.lanes[i].wait = Wait::kRun;
        released = true;
      } else if (at_warp != 0 && at_warp + exited == last - first) {
        run.failure = describe(run.lanes[first].index) + ": lanes of the warp exited before a warp-wide call";
        return;
      }
    }
    if (released) continue;
    for (const Lane& l : run.lanes) done += l.wait == Wait::kDone, at_block += l.wait == Wait::kBlock;
    if (done == n) return;
    if (at_block + done == n) {
      for (Lane& l : run.lanes)
        if (l.wait == Wait::kBlock) l.wait = Wait::kRun;
      continue;
    }
    std::size_t stuck = 0;
    while (run.lanes[stuck].wait != Wait::kWarp) ++stuck;
    run.failure = describe(run.lanes[stuck].index) +
                  ": threads of the block wait at different barriers (__syncthreads and a warp-wide call)";
    return;
  }
}

cudaError_t check_configuration(const void* kernel, dim3 grid, dim3 block, std::size_t shared) {
  if (grid.x == 0 || grid.y == 0 || grid.z == 0 || block.x == 0 || block.y == 0 || block.z == 0)
    return cudaErrorInvalidConfiguration;
  if (grid.x > 0x7FFFFFFFu || grid.y > 65535 || grid.z > 65535) return cudaErrorInvalidConfiguration;
  if (block.x > 1024 || block.y > 1024 || block.z > 64 || std::uint64_t{block.x} * block.y * block.z > 1024)
    return cudaErrorInvalidConfiguration;
  std::size_t limit = kDefaultShared;
  {
    State& s = state();
    std::lock_guard lock(s.mu);
    const auto it = s.max_dynamic_shared.find(kernel);
    if (it != s.max_dynamic_shared.end()) limit = std::max(limit, it->second);
  }
  return shared > limit ? cudaErrorInvalidValue : cudaSuccess;
}

// Streams and events: opaque handles the emulator hands out and checks.
template <class Handle>
cudaError_t create_handle(std::set<Handle> State::*live, Handle* out) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  const auto handle = reinterpret_cast<Handle>(new char[1]);
  State& s = state();
  std::lock_guard lock(s.mu);
  (s.*live).insert(handle);
  *out = handle;
  return cudaSuccess;
}

template <class Handle>
cudaError_t destroy_handle(std::set<Handle> State::*live, Handle handle) {
  State& s = state();
  std::lock_guard lock(s.mu);
  if (handle == nullptr || (s.*live).erase(handle) == 0) return record(cudaErrorInvalidResourceHandle);
  delete[] reinterpret_cast<char*>(handle);
  return s.sticky;
}

template <class Handle>
bool live_handle(std::set<Handle> State::*live, Handle handle) {
  State& s = state();
  std::lock_guard lock(s.mu);
  return (s.*live).count(handle) != 0;
}

// The errors the emulator reports, with the runtime's names and texts.
const CodeText<cudaError_t>& describe_error(cudaError_t error) {
  static constexpr CodeText<cudaError_t> kErrors[] = {
      {cudaSuccess, "cudaSuccess", "no error"},
      {cudaErrorInvalidValue, "cudaErrorInvalidValue", "invalid argument"},
      {cudaErrorMemoryAllocation, "cudaErrorMemoryAllocation", "out of memory"},
      {cudaErrorInvalidConfiguration, "cudaErrorInvalidConfiguration", "invalid configuration argument"},
      {cudaErrorNoDevice, "cudaErrorNoDevice", "no CUDA-capable device is detected (CUDA emulator)"},
      {cudaErrorInvalidDevice, "cudaErrorInvalidDevice", "invalid device ordinal"},
      {cudaErrorInvalidResourceHandle, "cudaErrorInvalidResourceHandle", "invalid resource handle"},
      {cudaErrorIllegalAddress, "cudaErrorIllegalAddress", "an illegal memory access was encountered"},
      {cudaErrorHostMemoryAlreadyRegistered, "cudaErrorHostMemoryAlreadyRegistered",
       "part or all of the requested memory range is already mapped"},
      {cudaErrorHostMemoryNotRegistered, "cudaErrorHostMemoryNotRegistered",
       "pointer does not correspond to a registered memory region"},
      {cudaErrorLaunchFailure, "cudaErrorLaunchFailure", "unspecified launch failure"},
      {cudaErrorNotSupported, "cudaErrorNotSupported", "operation not supported"},
  };
  static constexpr CodeText<cudaError_t> kUnknown{cudaErrorUnknown, "cudaErrorUnknown", "unknown error"};
  return describe(kErrors, kUnknown, error);
}

// cudaMalloc and cudaMallocHost: device memory counts against the device's, and is reserved
// before it is allocated.
cudaError_t allocate(void** p, std::size_t bytes, Kind kind) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  *p = nullptr;
  if (bytes == 0) return cudaSuccess;
  State& s = state();
  if (kind == Kind::kDevice) {
    std::lock_guard lock(s.mu);
    if (bytes > total_memory() - s.device_bytes) return record(cudaErrorMemoryAllocation);
    s.device_bytes += bytes;
  }
  void* block = aligned_block(bytes);
  std::lock_guard lock(s.mu);
  if (block == nullptr) {
    if (kind == Kind::kDevice) s.device_bytes -= bytes;
    return record(cudaErrorMemoryAllocation);
  }
  std::memset(block, kFill, bytes);
  s.ranges[reinterpret_cast<std::uintptr_t>(block)] = Range{bytes, kind};
  *p = block;
  return cudaSuccess;
}

// cudaFree and cudaFreeHost: only what the matching call allocated.
cudaError_t release(void* p, Kind kind) {
  if (p == nullptr) return begin();
  State& s = state();
  {
    std::lock_guard lock(s.mu);
    const auto it = s.ranges.find(reinterpret_cast<std::uintptr_t>(p));
    if (it == s.ranges.end() || it->second.kind != kind) return record(cudaErrorInvalidValue);
    if (kind == Kind::kDevice) s.device_bytes -= it->second.bytes;
    s.ranges.erase(it);
  }
  free_block(p);
  return begin();
}

}  // namespace

// ---- state shared with cublas.cpp ------------------------------------------------------------
cudaError_t sticky_error() noexcept {
  return begin();
}

void fail_sticky(cudaError_t error, const std::string& what) {
  State& s = state();
  std::lock_guard lock(s.mu);
  if (s.sticky != cudaSuccess) return;
  s.sticky = error;
  std::fprintf(stderr, "CUDA emulator: %s (%s)\n", what.c_str(), cudaGetErrorName(error));
}

bool in_device_memory(const void* p, std::size_t bytes) noexcept {
  State& s = state();
  std::lock_guard lock(s.mu);
  return place(s, p, bytes) == Place::kDevice;
}

bool valid_stream(cudaStream_t stream) noexcept {
  return stream == nullptr || live_handle(&State::streams, stream);
}

// ---- the device side (device.hpp) ------------------------------------------------------------
void sync_block() {
  t_lane->wait = Wait::kBlock;
  yield_to_scheduler();
}

void sync_warp(unsigned mask) {
  if (mask != 0xFFFFFFFFu) {
    t_run->failure = describe(t_lane->index) + ": partial-warp masks are not emulated";
    yield_to_scheduler();
  }
  t_lane->wait = Wait::kWarp;
  yield_to_scheduler();
}

namespace {

// Publishes this lane's value to its warp and waits for the others'; returns the warp's 32
// slots. Two sets of slots are used in turn: a lane writes the next exchange's value only after
// every lane of its warp passed this one's barrier, so after every lane read this one's values.
std::uint64_t* exchange(std::uint64_t bits, unsigned mask, std::size_t& set) {
  Lane& l = *t_lane;
  set = std::size_t{l.warp} * 2 + l.exchange_phase;
  l.exchange_phase ^= 1u;
  std::uint64_t* slots = t_run->slots.data() + set * 32;
  slots[l.lane] = bits;
  t_run->summed[set] = 0;
  sync_warp(mask);
  return slots;
}

}  // namespace

std::uint64_t shuffle_xor(std::uint64_t bits, int lane_mask, unsigned mask) {
  const Lane& l = *t_lane;
  const std::uint32_t src = l.lane ^ static_cast<std::uint32_t>(lane_mask & 31);
  const bool present = std::size_t{l.warp} * 32 + src < t_run->lanes.size();
  std::size_t set = 0;
  const std::uint64_t* slots = exchange(bits, mask, set);
  return present ? slots[src] : bits;
}

float warp_butterfly_sum(float v) {
  if (t_run->lanes.size() < (std::size_t{t_lane->warp} + 1) * 32) {
    t_run->failure = describe(t_lane->index) + ": a warp-wide sum in a partial warp";
    yield_to_scheduler();
  }
  std::size_t set = 0;
  std::uint64_t* slots = exchange(to_bits(v), 0xFFFFFFFFu, set);
  // The first lane past the barrier sums for the whole warp, in place: every value of this set
  // was written before the barrier, and the next write to it follows the next barrier.
  if (t_run->summed[set] == 0) {
    float s[32], t[32];
    for (int i = 0; i < 32; ++i) s[i] = from_bits<float>(slots[i]);
    for (int offset = 16; offset > 0; offset >>= 1) {
      for (int i = 0; i < 32; ++i) t[i] = s[i] + s[i ^ offset];
      std::memcpy(s, t, sizeof s);
    }
    for (int i = 0; i < 32; ++i) slots[i] = to_bits(s[i]);
    t_run->summed[set] = 1;
  }
  return from_bits<float>(slots[t_lane->lane]);
}

void* dynamic_shared() {
  return t_run->shared;
}

void launch(const void* kernel, dim3 grid, dim3 block, std::size_t shared, cudaStream_t stream,
            const std::function<void()>& body) {
  if (const cudaError_t e = begin(); e != cudaSuccess) {
    record(e);
    return;
  }
  if (!valid_stream(stream)) {
    record(cudaErrorInvalidResourceHandle);
    return;
  }
  if (const cudaError_t e = check_configuration(kernel, grid, block, shared); e != cudaSuccess) {
    record(e);
    return;
  }
  if (t_run != nullptr) {  // a kernel launching a kernel: not something the backend does
    record(cudaErrorNotSupported);
    return;
  }
  thread_local StackPool pool;
  const std::size_t threads = std::size_t{block.x} * block.y * block.z;
  Run run;
  run.body = &body;
  run.lanes.resize(threads);
  run.slots.assign(((threads + 31) / 32) * 64, 0);
  run.summed.assign(((threads + 31) / 32) * 2, 0);
  void* shared_block = shared != 0 ? aligned_block(shared) : nullptr;
  if (shared != 0 && shared_block == nullptr) {
    record(cudaErrorMemoryAllocation);
    return;
  }
  run.shared = shared_block;
  if (shared != 0) std::memset(run.shared, kFill, shared);
  t_run = &run;
  for (std::size_t t = 0; t < threads; ++t) {
    Lane& l = run.lanes[t];
    l.index.thread_idx = uint3{static_cast<unsigned>(t % block.x), static_cast<unsigned>((t / block.x) % block.y),
                               static_cast<unsigned>(t / (std::size_t{block.x} * block.y))};
    l.index.block_dim = block;
    l.index.grid_dim = grid;
    l.warp = static_cast<std::uint32_t>(t / 32);
    l.lane = static_cast<std::uint32_t>(t % 32);
    l.fiber = ctx::fiber(std::allocator_arg, StackRef{&pool}, [&run, &l](ctx::fiber&& from) {
      arriving(l.stack);
      if (t_park != nullptr) *t_park = std::move(from);
      while (!run.finished) {
        try {
          (*run.body)();
        } catch (const ctx::detail::forced_unwind&) {
          throw;
        } catch (const std::exception& e) {
          run.failure = describe(l.index) + ": " + e.what();
        }
        l.wait = Wait::kDone;
        yield_to_scheduler();
      }
      t_park = nullptr;  // this lane ends
      leaving(nullptr, run.scheduler_stack);
      return std::move(run.scheduler);
    });
    l.stack = Stack{static_cast<char*>(t_new_stack.sp) - t_new_stack.size, t_new_stack.size, nullptr};
  }
  const std::uint64_t blocks = std::uint64_t{grid.x} * grid.y * grid.z;
  for (std::uint64_t i = 0; i < blocks && run.failure.empty(); ++i) {
    const std::uint64_t b = reverse_order() ? blocks - 1 - i : i;
    const uint3 index{static_cast<unsigned>(b % grid.x), static_cast<unsigned>((b / grid.x) % grid.y),
                      static_cast<unsigned>(b / (std::uint64_t{grid.x} * grid.y))};
    for (Lane& l : run.lanes) {
      l.index.block_idx = index;
      l.wait = Wait::kRun;
      l.exchange_phase = 0;
    }
    run_block(run);
  }
  std::string failure = run.failure;
  if (failure.empty()) {
    run.finished = true;  // lanes leave their loops and end
    for (Lane& l : run.lanes) resume_lane(l, &run.scheduler, run.scheduler_stack);
  } else {
    // The threads of a failed block stay suspended for good, as a faulted device's do: never
    // resumed, never unwound (their stacks stay allocated; the device is unusable anyway).
    static auto* const failed = new std::vector<ctx::fiber>();
    std::lock_guard lock(state().mu);
    for (Lane& l : run.lanes)
      if (l.fiber) failed->push_back(std::move(l.fiber));
  }
  run.lanes.clear();
  t_run = nullptr;
  t_lane = nullptr;
  t_index = nullptr;
  if (shared_block != nullptr) free_block(shared_block);
  if (!failure.empty()) {
    fail_sticky(cudaErrorLaunchFailure, "kernel launch failed: " + failure);
    record(cudaErrorLaunchFailure);
  }
}

}  // namespace vs::cuda::emu

// ---- the CUDA runtime API ----------------------------------------------------------------------
using vs::cuda::emu::State;
using namespace vs::cuda::emu;

extern "C" {

cudaError_t cudaGetLastError(void) {
  const cudaError_t sticky = begin();
  if (sticky != cudaSuccess) return sticky;
  return std::exchange(t_last_error, cudaSuccess);
}

const char* cudaGetErrorName(cudaError_t error) {
  return describe_error(error).name;
}

const char* cudaGetErrorString(cudaError_t error) {
  return describe_error(error).text;
}

cudaError_t cudaGetDeviceCount(int* count) {
  *count = device_count();
  return record(*count == 0 ? cudaErrorNoDevice : cudaSuccess);
}

cudaError_t cudaSetDevice(int device) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  if (device < 0 || device >= device_count()) return record(cudaErrorInvalidDevice);
  return cudaSuccess;
}

cudaError_t cudaDeviceReset(void) {
  return begin();  // the emulator keeps allocations; a sticky error stays too
}

cudaError_t cudaDeviceSynchronize(void) {
  return begin();
}

cudaError_t cudaGetDeviceProperties(cudaDeviceProp* prop, int device) {
  if (device < 0 || device >= device_count()) return record(cudaErrorInvalidDevice);
  *prop = cudaDeviceProp{};
  std::snprintf(prop->name, sizeof prop->name, "vectorscale CUDA emulator");
  prop->totalGlobalMem = total_memory();
  prop->sharedMemPerBlock = kDefaultShared;
  prop->sharedMemPerBlockOptin = kOptinShared;
  prop->major = kComputeMajor;
  prop->minor = kComputeMinor;
  return cudaSuccess;
}

cudaError_t cudaDeviceGetAttribute(int* value, cudaDeviceAttr attr, int device) {
  if (device < 0 || device >= device_count()) return record(cudaErrorInvalidDevice);
  switch (attr) {
    case cudaDevAttrComputeCapabilityMajor:
      *value = kComputeMajor;
      break;
    case cudaDevAttrMaxSharedMemoryPerBlockOptin:
      *value = static_cast<int>(kOptinShared);
      break;
    case cudaDevAttrMaxSharedMemoryPerMultiprocessor:
      *value = static_cast<int>(kSharedPerSm);
      break;
    case cudaDevAttrReservedSharedMemoryPerBlock:
      *value = static_cast<int>(kReservedSharedPerBlock);
      break;
    default:
      return record(cudaErrorInvalidValue);  // not one the backend asks for
  }
  return cudaSuccess;
}

cudaError_t cudaMemGetInfo(size_t* free_bytes, size_t* total_bytes) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  State& s = state();
  std::lock_guard lock(s.mu);
  *total_bytes = total_memory();
  *free_bytes = total_memory() - s.device_bytes;
  return cudaSuccess;
}

cudaError_t cudaFuncSetAttribute(const void* func, cudaFuncAttribute attr, int value) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  if (attr != cudaFuncAttributeMaxDynamicSharedMemorySize) return record(cudaErrorInvalidValue);
  if (value < 0 || static_cast<std::size_t>(value) > kOptinShared) return record(cudaErrorInvalidValue);
  State& s = state();
  std::lock_guard lock(s.mu);
  s.max_dynamic_shared[func] = static_cast<std::size_t>(value);
  return cudaSuccess;
}

// ---- memory ----------------------------------------------------------------------------------
cudaError_t cudaMalloc(void** p, size_t bytes) {
  return allocate(p, bytes, Kind::kDevice);
}

cudaError_t cudaFree(void* p) {
  return release(p, Kind::kDevice);
}

cudaError_t cudaMallocHost(void** p, size_t bytes) {
  return allocate(p, bytes, Kind::kPinned);
}

cudaError_t cudaFreeHost(void* p) {
  return release(p, Kind::kPinned);
}

cudaError_t cudaHostRegister(void* p, size_t bytes, unsigned int flags) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  (void)flags;
  if (p == nullptr || bytes == 0) return record(cudaErrorInvalidValue);
  State& s = state();
  std::lock_guard lock(s.mu);
  const auto a = reinterpret_cast<std::uintptr_t>(p);
  const auto next = s.ranges.lower_bound(a);
  if (find_range(s, p) != nullptr || (next != s.ranges.end() && next->first < a + bytes))
    return record(cudaErrorHostMemoryAlreadyRegistered);
  s.ranges[a] = Range{bytes, Kind::kRegistered};
  return cudaSuccess;
}

cudaError_t cudaHostUnregister(void* p) {
  State& s = state();
  std::lock_guard lock(s.mu);
  const auto it = s.ranges.find(reinterpret_cast<std::uintptr_t>(p));
  if (it == s.ranges.end() || it->second.kind != Kind::kRegistered) return record(cudaErrorHostMemoryNotRegistered);
  s.ranges.erase(it);
  return s.sticky;
}

cudaError_t cudaHostGetDevicePointer(void** device, void* host, unsigned int flags) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  if (flags != 0) return record(cudaErrorInvalidValue);
  State& s = state();
  std::lock_guard lock(s.mu);
  const auto* r = find_range(s, host);
  if (r == nullptr || r->second.kind == Kind::kDevice) return record(cudaErrorInvalidValue);
  *device = host;  // one address space
  return cudaSuccess;
}

namespace {

// Both ends of a copy lie where its kind says, and inside their allocations.
cudaError_t check_copy(void* dst, const void* src, std::size_t bytes, cudaMemcpyKind kind) {
  if (bytes == 0) return cudaSuccess;
  State& s = state();
  std::lock_guard lock(s.mu);
  const Place to = place(s, dst, bytes), from = place(s, src, bytes);
  if (kind == cudaMemcpyDefault)
    return to != Place::kOverrun && from != Place::kOverrun ? cudaSuccess : cudaErrorInvalidValue;
  if (kind > cudaMemcpyDeviceToDevice) return cudaErrorInvalidValue;
  // The runtime's encoding of the other four kinds: bit 0, the destination is device memory;
  // bit 1, the source is.
  const auto side = [&](unsigned bit) { return (kind & bit) != 0 ? Place::kDevice : Place::kHost; };
  return to == side(1) && from == side(2) ? cudaSuccess : cudaErrorInvalidValue;
}

}  // namespace

cudaError_t cudaMemcpy(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  if (const cudaError_t e = check_copy(dst, src, bytes, kind); e != cudaSuccess) return record(e);
  if (bytes != 0) std::memmove(dst, src, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemcpyAsync(void* dst, const void* src, size_t bytes, cudaMemcpyKind kind, cudaStream_t stream) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  if (!valid_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  return cudaMemcpy(dst, src, bytes, kind);
}

cudaError_t cudaMemset(void* p, int value, size_t bytes) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  if (bytes == 0) return cudaSuccess;
  if (!in_device_memory(p, bytes)) return record(cudaErrorInvalidValue);
  std::memset(p, value, bytes);
  return cudaSuccess;
}

cudaError_t cudaMemsetAsync(void* p, int value, size_t bytes, cudaStream_t stream) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  if (!valid_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  return cudaMemset(p, value, bytes);
}

// ---- streams and events (synchronous: work is done when it is enqueued) ----------------------
cudaError_t cudaStreamCreateWithFlags(cudaStream_t* stream, unsigned int flags) {
  (void)flags;
  return create_handle(&State::streams, stream);
}

cudaError_t cudaStreamDestroy(cudaStream_t stream) {
  return destroy_handle(&State::streams, stream);
}

cudaError_t cudaStreamSynchronize(cudaStream_t stream) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  return valid_stream(stream) ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaEventCreateWithFlags(cudaEvent_t* event, unsigned int flags) {
  if (const cudaError_t e = create_handle(&State::events, event); e != cudaSuccess) return e;
  if ((flags & cudaEventDisableTiming) == 0) {
    State& s = state();
    std::lock_guard lock(s.mu);
    s.timing_events[*event];
  }
  return cudaSuccess;
}

cudaError_t cudaEventDestroy(cudaEvent_t event) {
  {
    State& s = state();
    std::lock_guard lock(s.mu);
    s.timing_events.erase(event);
  }
  return destroy_handle(&State::events, event);
}

cudaError_t cudaEventRecord(cudaEvent_t event, cudaStream_t stream) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  if (!live_handle(&State::events, event) || !valid_stream(stream)) return record(cudaErrorInvalidResourceHandle);
  State& s = state();
  std::lock_guard lock(s.mu);
  if (const auto it = s.timing_events.find(event); it != s.timing_events.end())
    it->second = std::chrono::steady_clock::now();  // the work before it is done: streams are synchronous
  return cudaSuccess;
}

// As the runtime: both events recorded, neither created with cudaEventDisableTiming.
cudaError_t cudaEventElapsedTime(float* ms, cudaEvent_t start, cudaEvent_t end) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  if (ms == nullptr) return record(cudaErrorInvalidValue);
  State& s = state();
  std::lock_guard lock(s.mu);
  const auto a = s.timing_events.find(start), b = s.timing_events.find(end);
  if (a == s.timing_events.end() || b == s.timing_events.end() || !a->second || !b->second)
    return record(cudaErrorInvalidResourceHandle);
  *ms = std::chrono::duration<float, std::milli>(*b->second - *a->second).count();
  return cudaSuccess;
}

cudaError_t cudaEventSynchronize(cudaEvent_t event) {
  if (const cudaError_t e = begin(); e != cudaSuccess) return e;
  return live_handle(&State::events, event) ? cudaSuccess : record(cudaErrorInvalidResourceHandle);
}

cudaError_t cudaStreamWaitEvent(cudaStream_t stream, cudaEvent_t event, unsigned int flags) {
  (void)flags;
  return cudaEventRecord(event, stream);  // the same checks; the work is already done
}

}  // extern "C"
