// TCP dialing with multi-address fallback (RFC 8305 happy eyeballs).
//
// Addresses are interleaved by family, starting with the family of the first address. The
// first attempt starts at once; each further attempt starts when the previous one fails or
// after `fallback_delay_ms`, whichever comes first, so a black-holed address costs one fallback
// delay, not the OS connect timeout. The first connection to succeed wins and cancels the rest.
#pragma once

#include <uv.h>

#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "base/address.h"
#include "base/result.h"

namespace veer::conn {

/// Per-outbound socket options (sing-box dial fields).
struct DialOptions {
  uint32_t connect_timeout_ms = 5000;  // sing-box C.TCPConnectTimeout
  uint32_t fallback_delay_ms = 300;    // sing-box N.DefaultFallbackDelay
  uint32_t routing_mark = 0;           // SO_MARK (0 = unset)
  std::string bind_interface;          // SO_BINDTODEVICE
  IpAddress inet4_bind_address;
  IpAddress inet6_bind_address;
  bool tcp_fast_open = false;
  bool tcp_nodelay = true;
};

/// Orders addresses for happy eyeballs: families alternate, starting with the first one's.
std::vector<SocketAddress> interleaveFamilies(const std::vector<SocketAddress>& in);

/// Applies DialOptions that must be set before connect/bind on a raw socket.
Status applySocketOptions(int fd, int family, const DialOptions& opts);

/// One dial in flight. On success the callback receives a connected, heap-allocated uv_tcp_t
/// that the receiver owns: it must eventually close it with a close callback that deletes it.
/// The callback runs exactly once, never synchronously inside start(), and never after
/// cancel(). The Dialer frees itself after the callback (or after cancel()).
class Dialer {
 public:
  using Callback = std::function<void(Result<uv_tcp_t*>)>;

  static Dialer* start(uv_loop_t* loop, std::vector<SocketAddress> addresses,
                       const DialOptions& opts, Callback cb);
  /// Abandons the dial; the callback will not run.
  void cancel();

  Dialer(const Dialer&) = delete;
  Dialer& operator=(const Dialer&) = delete;

 private:
  struct Attempt;
  Dialer(uv_loop_t* loop, std::vector<SocketAddress> addresses, const DialOptions& opts,
         Callback cb);
  ~Dialer() = default;

  void startNext();
  void onAttemptDone(Attempt* a, int status);
  void onFallbackTimer();
  void armAttemptTimer();
  void onAttemptTimer();
  void onDeadline();
  void finish(Result<uv_tcp_t*> r);
  void maybeFree();
  static void onAttemptClosed(uv_handle_t* h);

  uv_loop_t* loop_;
  std::vector<SocketAddress> addresses_;
  DialOptions opts_;
  Callback cb_;
  size_t next_ = 0;
  uint64_t deadline_ = 0;  // loop time of connect_timeout
  uv_timer_t attempt_timer_{};
  std::vector<Attempt*> attempts_;
  uv_timer_t fallback_timer_{};
  uv_timer_t deadline_timer_{};
  int open_handles_ = 0;
  bool done_ = false;
  Error last_error_;
};

}  // namespace veer::conn
