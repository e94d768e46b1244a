// A per-loop pool of payload buffers in a few size classes. Connections borrow a buffer only
// for the duration of one read-and-write, so an idle connection holds none. Not thread-safe:
// one pool per loop thread.
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace veer::loop {

class BufferPool {
 public:
  static constexpr size_t kMinSize = 2048;
  static constexpr size_t kMaxSize = 65536;

  /// Size classes are powers of two from kMinSize to kMaxSize.
  static size_t classify(size_t want);

  explicit BufferPool(size_t max_cached_bytes = 4u << 20);
  ~BufferPool();
  BufferPool(const BufferPool&) = delete;
  BufferPool& operator=(const BufferPool&) = delete;

  /// A buffer of exactly classify(size) bytes.
  char* acquire(size_t size);
  /// Returns a buffer obtained from acquire() with the same size.
  void release(char* p, size_t size);

  size_t cachedBytes() const { return cached_bytes_; }
  size_t outstanding() const { return outstanding_; }

  /// The pool of the calling thread's loop.
  static BufferPool& local();

 private:
  static size_t classIndex(size_t size);
  std::vector<char*> free_[6];  // 2K 4K 8K 16K 32K 64K
  size_t cached_bytes_ = 0;
  size_t max_cached_bytes_;
  size_t outstanding_ = 0;
};

}  // namespace veer::loop
