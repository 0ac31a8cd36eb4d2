#include "vectorscale/core/memory.hpp"

namespace vs {
namespace {

class HeapAllocator final : public Allocator {
 public:
  void* allocate(std::size_t bytes, std::size_t align) override {
    return ::operator new(bytes, std::align_val_t(align));
  }
  void deallocate(void* p, std::size_t, std::size_t align) noexcept override {
    ::operator delete(p, std::align_val_t(align));
  }
};

}  // namespace

Allocator& default_allocator() noexcept {
  static HeapAllocator heap;
  return heap;
}

}  // namespace vs
