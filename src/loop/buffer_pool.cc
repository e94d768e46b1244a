#include "loop/buffer_pool.h"

#include <cstdlib>

namespace veer::loop {

size_t BufferPool::classify(size_t want) {
  size_t s = kMinSize;
  while (s < want && s < kMaxSize) s <<= 1;
  return s;
}

size_t BufferPool::classIndex(size_t size) {
  size_t i = 0;
  for (size_t s = kMinSize; s < size && i < 5; s <<= 1) ++i;
  return i;
}

BufferPool::BufferPool(size_t max_cached_bytes) : max_cached_bytes_(max_cached_bytes) {}

BufferPool::~BufferPool() {
  for (auto& list : free_) {
    for (char* p : list) std::free(p);
  }
}

char* BufferPool::acquire(size_t size) {
  size = classify(size);
  ++outstanding_;
  auto& list = free_[classIndex(size)];
  if (!list.empty()) {
    char* p = list.back();
    list.pop_back();
    cached_bytes_ -= size;
    return p;
  }
  return static_cast<char*>(std::malloc(size));
}

void BufferPool::release(char* p, size_t size) {
  if (p == nullptr) return;
  --outstanding_;
  size = classify(size);
  // Keep a bounded cache so that a burst does not pin memory forever on a 128 MB router.
  if (cached_bytes_ + size > max_cached_bytes_) {
    std::free(p);
    return;
  }
  free_[classIndex(size)].push_back(p);
  cached_bytes_ += size;
}

BufferPool& BufferPool::local() {
  static thread_local BufferPool pool;
  return pool;
}

}  // namespace veer::loop
