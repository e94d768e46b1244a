// DNS over TLS (RFC 7858) and DNS over HTTPS (RFC 8484, HTTP/1.1 only), sing-box's `tls` and
// `https` server types.
//
// DoT keeps one TLS connection per server and pipelines every query on it with its own message
// IDs (RFC 7858 §3.3); answers may come in any order. The connection is opened on the first
// query, closed after `idle_timeout_ms` without queries in flight, and opened again when the
// server closes it; a query that was in flight on a connection that died is sent once more
// on the next one.
//
// DoH sends each query as an HTTP/1.1 POST (application/dns-message, message ID 0 as RFC 8484
// §4.1 recommends) on a keep-alive connection, one request at a time per connection, with up
// to `max_connections` connections. HTTP/2 is not implemented: the ALPN list offers only
// http/1.1 unless the `tls` object names others.
//
// A server given by name is resolved before each new connection through another DNS server
// (`resolver`, sing-box's domain_resolver / address_resolver): A and AAAA, tried in the order
// given (happy eyeballs, conn/dialer.h).
#pragma once

#include <uv.h>

#include <cstdint>
#include <deque>
#include <list>
#include <map>
#include <memory>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "base/address.h"
#include "conn/dialer.h"
#include "conn/stream.h"
#include "dns/doh_codec.h"
#include "dns/transport.h"
#include "dns/uv_handles.h"
#include "tls/client.h"

namespace veer::dns {

struct RemoteServerOptions {
  std::string tag;
  std::string server;  // as configured: an IP literal or a domain
  uint16_t port = 853;
  /// The addresses to dial when `server` is an IP literal (else resolved through `resolver`).
  std::vector<SocketAddress> addresses;
  /// Resolves `server` when it is a name (set after every server exists; not owned).
  Transport* resolver = nullptr;
  std::shared_ptr<const tls::ClientConfig> tls;
  conn::DialOptions dial;
  uint32_t handshake_timeout_ms = 5000;
  /// A query not answered within this gets an error.
  uint32_t query_timeout_ms = 5000;
  /// A connection without queries for this long is closed.
  uint32_t idle_timeout_ms = 30000;
  // https only
  std::string host_header;  // Host: (default: SNI name or server, with the port unless 443)
  std::string path = "/dns-query";
  std::vector<std::pair<std::string, std::string>> headers;
  size_t max_connections = 2;
};

/// One connection attempt: resolve (when the server is a name), dial, TLS handshake. The
/// callback runs once, from the loop, never inside start(); destroying the Connector first
/// cancels everything and the callback never runs.
class Connector {
 public:
  using Done = std::function<void(Result<conn::StreamPtr>)>;
  Connector(uv_loop_t* loop, const RemoteServerOptions& server, Deferrer* deferrer, Done done);
  ~Connector();
  Connector(const Connector&) = delete;
  Connector& operator=(const Connector&) = delete;
  void start();

 private:
  void resolved(uint16_t type, Result<std::vector<uint8_t>> r);
  void dial(std::vector<SocketAddress> addrs);
  void finish(Result<conn::StreamPtr> r);

  uv_loop_t* loop_;
  const RemoteServerOptions& server_;
  Deferrer* deferrer_;
  Done done_;
  std::shared_ptr<Connector*> self_;  // weak handles for callbacks that may outlive us
  std::vector<uint64_t> lookups_;
  int lookups_left_ = 0;
  std::vector<IpAddress> v4_, v6_;
  std::string lookup_error_;
  conn::Dialer* dialer_ = nullptr;
  std::function<void()> cancel_tls_;
  bool finished_ = false;
};

/// Shared by both transports: the query bookkeeping, deadlines, the deferrer, close().
class RemoteTransport : public Transport {
 public:
  void cancel(uint64_t id) override;
  void close() override;
  const RemoteServerOptions& options() const { return opts_; }
  /// The server that resolves a server given by name (the router sets it once every server
  /// exists; it must outlive this transport's queries, as the router's transports do).
  void setResolver(Transport* resolver) { opts_.resolver = resolver; }
  /// Connections opened so far (tests: reuse).
  uint64_t connectionsOpened() const { return connections_opened_; }

 protected:
  struct Pending {
    uint16_t original_id = 0;
    std::vector<uint8_t> query;
    Callback cb;  // null once cancelled
    uint64_t deadline = 0;
    bool sent = false;
    int sends = 0;
  };

  RemoteTransport(uv_loop_t* loop, RemoteServerOptions opts);
  ~RemoteTransport() override = default;

  uint64_t add(std::vector<uint8_t> query, Callback cb);
  /// Removes `id` and calls its callback (if any) with `r`; the response gets the query's ID.
  void complete(uint64_t id, Result<std::vector<uint8_t>> r);
  /// Arms the timer for the earliest query deadline or the idle timeout.
  void armTimer();
  virtual void onTimeout(uint64_t id) = 0;
  virtual void closeIdle(uint64_t now) = 0;
  virtual uint64_t idleDeadline() const = 0;  // 0: none
  virtual void closeConnections() = 0;
  virtual const char* scheme() const = 0;
  /// Only connections with queries in flight keep the loop alive (an idle one must not hold
  /// up shutdown; the router closes it when it goes away).
  virtual void updateRefs() = 0;
  static void holdLoop(conn::Stream* s, bool hold);
  std::string where() const;  // "dns/<tag> (tls://1.2.3.4:853)"

  uv_loop_t* loop_;
  RemoteServerOptions opts_;
  DeferrerPtr deferrer_;
  UvTimerPtr timer_;
  std::map<uint64_t, Pending> pending_;  // ordered by id, so by deadline too
  uint64_t next_id_ = 1;
  uint64_t connections_opened_ = 0;
  int depth_ = 0;  // callbacks of ours on the stack: close() then defers the delete
  bool closing_ = false;

 private:
  void onTimer();
};

class DotTransport final : public RemoteTransport {
 public:
  static TransportPtr create(uv_loop_t* loop, RemoteServerOptions opts);
  // Transport
  uint64_t exchange(std::vector<uint8_t> query, Callback cb) override;

 private:
  using RemoteTransport::RemoteTransport;
  void connect();
  void onConnected(Result<conn::StreamPtr> r);
  void send(uint64_t id);
  void onRead(int status, const char* data, size_t len);
  void onLost(const std::string& why);
  // RemoteTransport
  void onTimeout(uint64_t id) override;
  void closeIdle(uint64_t now) override;
  uint64_t idleDeadline() const override;
  void closeConnections() override;
  const char* scheme() const override { return "tls"; }
  void updateRefs() override { holdLoop(stream_.get(), !inflight_.empty()); }

  conn::StreamPtr stream_;
  std::unique_ptr<Connector> connector_;
  std::string rbuf_;
  std::unordered_map<uint16_t, uint64_t> inflight_;  // wire ID -> query
  uint16_t next_wire_id_ = 1;
  uint64_t last_active_ = 0;
};

class DohTransport final : public RemoteTransport {
 public:
  static TransportPtr create(uv_loop_t* loop, RemoteServerOptions opts);
  // Transport
  uint64_t exchange(std::vector<uint8_t> query, Callback cb) override;
  void cancel(uint64_t id) override;

 private:
  struct Conn {
    conn::StreamPtr stream;
    std::unique_ptr<Connector> connector;
    uint64_t current = 0;  // the query in flight (0: idle)
    DohResponseReader reader;
    uint64_t last_active = 0;
  };
  using RemoteTransport::RemoteTransport;
  void pump();
  void startConnection();
  void onConnected(Conn* c, Result<conn::StreamPtr> r);
  void send(Conn* c, uint64_t id);
  void onRead(Conn* c, int status, const char* data, size_t len);
  void onResponse(Conn* c);
  void drop(Conn* c, const std::string& why);
  // RemoteTransport
  void onTimeout(uint64_t id) override;
  void closeIdle(uint64_t now) override;
  uint64_t idleDeadline() const override;
  void closeConnections() override;
  const char* scheme() const override { return "https"; }
  void updateRefs() override {
    for (auto& c : conns_) holdLoop(c->stream.get(), c->current != 0);
  }

  std::list<std::unique_ptr<Conn>> conns_;
  std::deque<uint64_t> queue_;  // queries waiting for a connection
};

}  // namespace veer::dns
