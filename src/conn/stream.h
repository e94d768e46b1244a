// Stream: a connected byte stream as the relay and the outbounds see it, whatever carries it
// (a plain TCP socket, TLS over TCP, a Shadowsocks AEAD stream over either). Loop thread only.
//
// Contract, for every implementation:
// - readStart(on_read) delivers bytes as on_read(0, data, len) until readStop(), and ends
//   with exactly one on_read(UV_EOF, nullptr, 0) or on_read(<0 error, nullptr, 0); after that
//   nothing more is delivered. `data` is valid only during the call (copy what you keep).
//   readStart() may be called again after readStop(); buffered plaintext is delivered then.
// - write(data, len, done) queues the bytes (the stream copies what it cannot write at once);
//   done(status), if given, runs after they were handed to the next layer (or failed), never
//   inside write(). writeQueueSize() is the number of bytes accepted but not yet written, for
//   backpressure.
// - shutdown(done) ends the write side once queued writes are out (TCP FIN; for TLS a
//   close_notify first). Reading continues.
// - close(reset) tears everything down now (reset = RST on TCP) and frees the stream
//   asynchronously; no callback of any kind runs after close() returns. StreamPtr calls
//   close() when it goes out of scope.
// - releaseTcp(): a plain TCP stream gives its uv_tcp_t up (for splice(2) and the buffered
//   relay); the stream is then empty and must only be closed. Transforming streams return null.
#pragma once

#include <uv.h>

#include <cstddef>
#include <functional>
#include <memory>
#include <string>

namespace veer::conn {

class Stream {
 public:
  using ReadFn = std::function<void(int status, const char* data, size_t len)>;
  using DoneFn = std::function<void(int status)>;

  virtual ~Stream() = default;
  virtual void readStart(ReadFn on_read) = 0;
  virtual void readStop() = 0;
  virtual void write(const char* data, size_t len, DoneFn done = {}) = 0;
  virtual size_t writeQueueSize() const = 0;
  virtual void shutdown(DoneFn done) = 0;
  virtual void close(bool reset = false) = 0;
  virtual uv_tcp_t* releaseTcp() { return nullptr; }
  /// The TCP socket at the bottom of the stack (peer/local addresses), or null. Not released.
  virtual uv_tcp_t* socket() { return nullptr; }
  /// "tcp", "tls", "shadowsocks", ... (logs).
  virtual const char* kind() const = 0;
};

struct StreamCloser {
  void operator()(Stream* s) const {
    if (s != nullptr) s->close();
  }
};
using StreamPtr = std::unique_ptr<Stream, StreamCloser>;

/// Wraps a connected, heap-allocated uv_tcp_t (takes ownership; overwrites its `data`).
StreamPtr makeTcpStream(uv_tcp_t* tcp);

/// A stream that first delivers `prefix` (bytes a handshake read past its own end), then the
/// inner stream's bytes. Returns `inner` itself when `prefix` is empty.
StreamPtr makePrefixedStream(uv_loop_t* loop, StreamPtr inner, std::string prefix);

}  // namespace veer::conn
