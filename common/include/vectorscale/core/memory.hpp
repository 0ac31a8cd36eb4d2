/**
 * @file memory.hpp
 * @brief Allocation interface for the engine's large arrays.
 *
 * The extension implements Allocator over a PostgreSQL memory context (MCXT_ALLOC_HUGE |
 * MCXT_ALLOC_NO_OOM, throwing std::bad_alloc on NULL) so that big builds are accounted to
 * the backend; everything else uses the aligned global heap. Allocators are only called from
 * the thread that created the owning object.
 */
#pragma once
#include "vectorscale/core/no_postgres.hpp"

#include <cstddef>
#include <cstring>
#include <new>
#include <type_traits>
#include <utility>

namespace vs {

/** Source of large, aligned allocations. */
class Allocator {
 public:
  virtual ~Allocator() = default;
  /** Returns `bytes` bytes aligned to `align`, or throws std::bad_alloc. */
  virtual void* allocate(std::size_t bytes, std::size_t align) = 0;
  /** Frees memory from allocate(); must not throw. */
  virtual void deallocate(void* p, std::size_t bytes, std::size_t align) noexcept = 0;
};

/** The process heap (aligned operator new). */
[[nodiscard]] Allocator& default_allocator() noexcept;

/** Alignment of engine arrays: one cache line, enough for AVX-512 loads. */
inline constexpr std::size_t kArrayAlign = 64;

/** Tag of an Array left uninitialised: storage that is written before it is read. */
struct Uninitialized {};
inline constexpr Uninitialized kUninitialized{};

/** Move-only array of trivially copyable T, zero-initialised, owned through an Allocator. */
template <class T>
class Array {
  static_assert(std::is_trivially_copyable_v<T>);

 public:
  Array() = default;
  explicit Array(std::size_t n, Allocator& alloc = default_allocator()) : Array(n, kUninitialized, alloc) {
    if (n != 0) std::memset(static_cast<void*>(data_), 0, n * sizeof(T));
  }
  /**
   * Elements left as the allocator returns them: no pass over the memory, so that a large
   * buffer is not faulted in (and zeroed by the kernel, then by memset) before it is filled.
   */
  Array(std::size_t n, Uninitialized, Allocator& alloc = default_allocator()) : alloc_(&alloc), size_(n) {
    if (n != 0) {
      if (n > static_cast<std::size_t>(-1) / sizeof(T)) throw std::bad_alloc();
      data_ = static_cast<T*>(alloc.allocate(n * sizeof(T), kArrayAlign));
    }
  }
  Array(const Array&) = delete;
  Array& operator=(const Array&) = delete;
  Array(Array&& o) noexcept { swap(o); }
  Array& operator=(Array&& o) noexcept {
    if (this != &o) {
      Array tmp(std::move(o));
      swap(tmp);
    }
    return *this;
  }
  ~Array() {
    if (data_ != nullptr) alloc_->deallocate(data_, size_ * sizeof(T), kArrayAlign);
  }

  [[nodiscard]] T* data() noexcept { return data_; }
  [[nodiscard]] const T* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] bool empty() const noexcept { return size_ == 0; }
  T& operator[](std::size_t i) noexcept { return data_[i]; }
  const T& operator[](std::size_t i) const noexcept { return data_[i]; }
  T* begin() noexcept { return data_; }
  T* end() noexcept { return data_ + size_; }
  const T* begin() const noexcept { return data_; }
  const T* end() const noexcept { return data_ + size_; }

 private:
  void swap(Array& o) noexcept {
    std::swap(alloc_, o.alloc_);
    std::swap(data_, o.data_);
    std::swap(size_, o.size_);
  }
  Allocator* alloc_ = nullptr;
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

}  // namespace vs
