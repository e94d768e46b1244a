// TcpRelay: copies both directions between two connected TCP streams.
//
// - Early data (bytes the inbound already read: sniffed bytes, a payload sent with the
//   handshake) goes to the remote first, in the same write as nothing else can precede it.
// - Half-close: EOF on one side stops reading it and shuts down writing on the other side
//   (uv_shutdown waits for queued writes); the other direction keeps running. When both
//   directions are shut the relay ends. A half-closed relay gets its own, shorter timer.
// - Errors close both sides at once; a reset from one side is passed on as a reset.
// - Buffers come from the loop's BufferPool only for the duration of a read-and-write: an idle
//   relay holds no payload buffer. The read size adapts: it doubles when a read fills the
//   buffer and halves when a read uses a quarter or less, within [2 KiB, 64 KiB].
// - Backpressure: when the write queue toward one side passes `high_watermark`, reading the
//   other side stops, and resumes below `low_watermark`. Memory per relay is bounded whatever
//   the peers do.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>

#include "conn/stream.h"

namespace veer::conn {

struct RelayOptions {
  /// Use splice(2) between the two sockets when both are plain TCP (Linux). The bytes move
  /// kernel-side through a pipe per direction (docs/benchmarks.md: faster and cheaper in CPU
  /// than the buffered copy here).
  bool splice = true;
  uint32_t idle_timeout_ms = 300000;       // both directions open, no traffic
  uint32_t half_close_timeout_ms = 30000;  // one direction finished, the other silent
  size_t high_watermark = 64 * 1024;
  size_t low_watermark = 16 * 1024;
};

struct RelayResult {
  uint64_t up = 0;    // client → remote bytes
  uint64_t down = 0;  // remote → client bytes
  std::string reason;  // "done", "idle timeout", "client reset", "remote: connection reset", ...
  bool error = false;
  size_t max_queued = 0;  // the most bytes ever queued toward one side (backpressure bound)
};

/// A running relay (buffered or spliced).
class Relay {
 public:
  using DoneCallback = std::function<void(const RelayResult&)>;
  virtual ~Relay() = default;
  /// Closes both sides now (shutdown of veer, connection killed by the user).
  virtual void abort(const std::string& reason) = 0;
  virtual uint64_t up() const = 0;
  virtual uint64_t down() const = 0;
};

/// Starts the best relay for two plain TCP streams: splice(2) when enabled and available (and
/// the early data, if any, could be written at once), the buffered TcpRelay otherwise.
/// Takes ownership of both handles; `done` runs exactly once, after everything is closed.
Relay* startRelay(uv_loop_t* loop, uv_tcp_t* client, uv_tcp_t* remote, std::string early_data,
                  const RelayOptions& opts, Relay::DoneCallback done);

/// Starts a relay between two Streams. When both are plain TCP it hands their sockets to
/// startRelay() (splice or the buffered copy); otherwise the bytes pass through the streams'
/// transforms in user space (StreamRelay, stream_relay.cc) under the same half-close, timer and
/// backpressure policy. `done` runs exactly once, after everything is closed.
Relay* startStreamRelay(uv_loop_t* loop, StreamPtr client, StreamPtr remote,
                        std::string early_data, const RelayOptions& opts,
                        Relay::DoneCallback done);

/// Process-wide relay counters (loop thread only).
struct RelayStats {
  uint64_t spliced = 0;   // relays that ran on splice(2)
  uint64_t buffered = 0;  // relays that ran on the buffered copy
  uint64_t pipes_in_use = 0;  // splice pipes held by relays right now (not in the pool)
};
const RelayStats& relayStats();

class TcpRelay : public Relay {
 public:
  /// Takes ownership of both heap-allocated, connected handles (their `data` is overwritten).
  /// `done` runs exactly once, after both handles are closed.
  static TcpRelay* start(uv_loop_t* loop, uv_tcp_t* client, uv_tcp_t* remote,
                         std::string early_data, const RelayOptions& opts, DoneCallback done);

  void abort(const std::string& reason) override;

  uint64_t up() const override { return dirs_[0].bytes; }
  uint64_t down() const override { return dirs_[1].bytes; }

  TcpRelay(const TcpRelay&) = delete;
  TcpRelay& operator=(const TcpRelay&) = delete;

  /// Process-wide counters (loop thread only).
  static uint64_t liveCount();

 private:
  struct Direction {
    TcpRelay* relay = nullptr;
    uv_tcp_t* src = nullptr;
    uv_tcp_t* dst = nullptr;
    size_t buf_size = 2048;
    size_t pending = 0;  // bytes queued toward dst
    uint64_t bytes = 0;
    bool reading = false;
    bool eof = false;
    bool shut = false;
    uv_shutdown_t shutdown_req{};
  };
  struct WriteReq;

  TcpRelay(uv_loop_t* loop, const RelayOptions& opts, DoneCallback done);
  ~TcpRelay() override;

  void startReading(Direction& d);
  void onRead(Direction& d, ssize_t nread, const uv_buf_t* buf);
  void writeTo(Direction& d, char* base, size_t cap, size_t off, size_t len);
  void onWriteDone(Direction& d, int status, size_t len);
  void onEof(Direction& d);
  void onShutdown(Direction& d, int status);
  void onTimer();
  void armTimer();
  void finish(const std::string& reason, bool error, bool reset_client, bool reset_remote);

  uv_loop_t* loop_;
  RelayOptions opts_;
  DoneCallback done_;
  Direction dirs_[2];  // [0] client→remote, [1] remote→client
  uv_timer_t timer_{};
  uint64_t last_activity_ = 0;
  int open_handles_ = 0;
  bool finished_ = false;
  RelayResult result_;
};

}  // namespace veer::conn
