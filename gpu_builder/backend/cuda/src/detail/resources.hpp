// RAII owners of the CUDA resources of one build: device memory, pinned host memory, host
// memory registered for mapped access, streams, events and the cuBLAS handle. Move-only;
// destructors never throw (a failure there is ignored: the build already failed or finished).
// Host code only (.cpp).
#pragma once

#include <cublas_v2.h>
#include <cuda_runtime_api.h>

#include <cstddef>
#include <utility>

#include "detail/cuda_try.hpp"

namespace vs::cuda::detail {

/** Where a CudaBuffer lives: device memory. */
struct DeviceMemory {
  static cudaError_t allocate(void** p, std::size_t bytes) noexcept { return cudaMalloc(p, bytes); }
  static void release(void* p) noexcept { (void)cudaFree(p); }
};

/** Where a CudaBuffer lives: pinned (page-locked) host memory, for asynchronous copies. */
struct PinnedMemory {
  static cudaError_t allocate(void** p, std::size_t bytes) noexcept { return cudaMallocHost(p, bytes); }
  static void release(void* p) noexcept { (void)cudaFreeHost(p); }
};

/** n elements of T (uninitialised) in the memory that Memory allocates. */
template <class T, class Memory>
class CudaBuffer {
 public:
  CudaBuffer() = default;
  explicit CudaBuffer(std::size_t n) : size_(n) {
    if (n != 0) VS_CUDA_TRY(Memory::allocate(reinterpret_cast<void**>(&data_), n * sizeof(T)));
  }
  CudaBuffer(CudaBuffer&& o) noexcept : data_(std::exchange(o.data_, nullptr)), size_(std::exchange(o.size_, 0)) {}
  CudaBuffer& operator=(CudaBuffer&& o) noexcept {
    if (this != &o) {
      reset();
      data_ = std::exchange(o.data_, nullptr);
      size_ = std::exchange(o.size_, 0);
    }
    return *this;
  }
  CudaBuffer(const CudaBuffer&) = delete;
  CudaBuffer& operator=(const CudaBuffer&) = delete;
  ~CudaBuffer() { reset(); }
  /** Frees the memory now. */
  void reset() noexcept {
    if (data_ != nullptr) Memory::release(data_);
    data_ = nullptr;
    size_ = 0;
  }
  [[nodiscard]] T* data() const noexcept { return data_; }
  [[nodiscard]] std::size_t size() const noexcept { return size_; }
  [[nodiscard]] std::size_t bytes() const noexcept { return size_ * sizeof(T); }

 private:
  T* data_ = nullptr;
  std::size_t size_ = 0;
};

/** n elements of T in device memory (uninitialised). */
template <class T>
using DeviceBuffer = CudaBuffer<T, DeviceMemory>;

/** n elements of T in pinned (page-locked) host memory, for asynchronous copies. */
template <class T>
using PinnedBuffer = CudaBuffer<T, PinnedMemory>;

/** Host memory page-locked and mapped into the device's address space for the owner's lifetime. */
class HostRegistration {
 public:
  HostRegistration() = default;
  HostRegistration(const void* p, std::size_t bytes) : host_(const_cast<void*>(p)) {
    // Read-only registration lets the device cache the data; not every system supports it.
    if (cudaHostRegister(host_, bytes, cudaHostRegisterMapped | cudaHostRegisterReadOnly) != cudaSuccess) {
      (void)cudaGetLastError();
      VS_CUDA_TRY(cudaHostRegister(host_, bytes, cudaHostRegisterMapped));
    }
    void* dev = nullptr;
    const cudaError_t st = cudaHostGetDevicePointer(&dev, host_, 0);
    if (st != cudaSuccess) {
      (void)cudaHostUnregister(host_);
      host_ = nullptr;
      VS_CUDA_TRY(st);
    }
    device_ = dev;
  }
  HostRegistration(HostRegistration&&) = delete;
  HostRegistration& operator=(HostRegistration&&) = delete;
  ~HostRegistration() {
    if (host_ != nullptr) (void)cudaHostUnregister(host_);
  }
  /** The device's address of the registered memory. */
  [[nodiscard]] const void* device_pointer() const noexcept { return device_; }

 private:
  void* host_ = nullptr;
  const void* device_ = nullptr;
};

/** A non-blocking stream. */
class Stream {
 public:
  Stream() { VS_CUDA_TRY(cudaStreamCreateWithFlags(&s_, cudaStreamNonBlocking)); }
  Stream(const Stream&) = delete;
  Stream& operator=(const Stream&) = delete;
  ~Stream() { (void)cudaStreamDestroy(s_); }
  [[nodiscard]] cudaStream_t get() const noexcept { return s_; }
  /** Waits for everything queued on the stream; throws what the work raised. */
  void sync() const { VS_CUDA_TRY(cudaStreamSynchronize(s_)); }

 private:
  cudaStream_t s_{};
};

/** Waits for a stream when leaving a scope (before the buffers its work uses are freed). */
class StreamSyncGuard {
 public:
  explicit StreamSyncGuard(const Stream& s) noexcept : s_(s) {}
  StreamSyncGuard(const StreamSyncGuard&) = delete;
  StreamSyncGuard& operator=(const StreamSyncGuard&) = delete;
  ~StreamSyncGuard() { (void)cudaStreamSynchronize(s_.get()); }

 private:
  const Stream& s_;
};

/** An event: without timing by default, for ordering streams; cudaEventDefault for timing. */
class Event {
 public:
  explicit Event(unsigned flags = cudaEventDisableTiming) { VS_CUDA_TRY(cudaEventCreateWithFlags(&e_, flags)); }
  Event(const Event&) = delete;
  Event& operator=(const Event&) = delete;
  ~Event() { (void)cudaEventDestroy(e_); }
  [[nodiscard]] cudaEvent_t get() const noexcept { return e_; }
  void record(cudaStream_t s) const { VS_CUDA_TRY(cudaEventRecord(e_, s)); }
  void sync() const { VS_CUDA_TRY(cudaEventSynchronize(e_)); }

 private:
  cudaEvent_t e_{};
};

/** A cuBLAS handle bound to a stream, in pedantic FP32 math (no TF32 unless asked for). */
class CublasHandle {
 public:
  explicit CublasHandle(cudaStream_t stream) {
    VS_CUBLAS_TRY(cublasCreate(&h_));
    const cublasStatus_t st = cublasSetStream(h_, stream);
    if (st != CUBLAS_STATUS_SUCCESS) {
      (void)cublasDestroy(h_);
      VS_CUBLAS_TRY(st);
    }
  }
  CublasHandle(const CublasHandle&) = delete;
  CublasHandle& operator=(const CublasHandle&) = delete;
  ~CublasHandle() { (void)cublasDestroy(h_); }
  [[nodiscard]] cublasHandle_t get() const noexcept { return h_; }

 private:
  cublasHandle_t h_{};
};

}  // namespace vs::cuda::detail
