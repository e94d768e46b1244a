// A transport over c-ares, driven from the libuv loop (the Envoy cares/dns_impl.cc pattern):
// c-ares' sock_state_cb opens/updates/closes one uv_poll_t per socket it uses, and a uv_timer_t
// follows ares_timeout() for retransmits and failover. Raw queries go through ares_send, so
// lookups and hijacked queries share one path. c-ares moves on to the next server when one
// times out, and retries over TCP when a UDP answer is truncated.
#pragma once

#include <ares.h>
#include <uv.h>

#include <string>
#include <unordered_map>
#include <vector>

#include "base/address.h"
#include "dns/transport.h"

namespace veer::dns {

struct CaresOptions {
  enum class Mode { Udp, Tcp, System };
  std::string tag;
  Mode mode = Mode::Udp;
  /// Udp/Tcp: the servers, tried in this order.
  std::vector<SocketAddress> servers;
  /// Time for one try of one server; c-ares doubles it on each later round.
  uint32_t timeout_ms = 2000;
  /// Rounds over the server list.
  uint32_t tries = 2;
  /// System: resolv.conf to read ("" = c-ares' default, /etc/resolv.conf).
  std::string resolv_conf;
  /// System: a port for every server of resolv.conf instead of 53 (resolv.conf cannot name
  /// ports; tests use it to reach a resolver on an unprivileged port).
  uint16_t system_port = 0;
};

class CaresTransport final : public Transport {
 public:
  static Result<TransportPtr> create(uv_loop_t* loop, const CaresOptions& options);
  CaresTransport(const CaresTransport&) = delete;
  CaresTransport& operator=(const CaresTransport&) = delete;

  // Transport
  uint64_t exchange(std::vector<uint8_t> query, Callback cb) override;
  void cancel(uint64_t id) override;
  void close() override;

  /// Queries handed to c-ares (each may use several packets: retries, failover, TCP).
  uint64_t queriesSent() const { return queries_sent_; }
  size_t openSockets() const { return polls_.size(); }

 private:
  struct Query {
    CaresTransport* self;
    uint64_t id;
    uint16_t original_id;
    Callback cb;  // null once cancelled
  };
  struct Poll {
    uv_poll_t handle;
    CaresTransport* owner;
    int fd;
  };

  CaresTransport(uv_loop_t* loop, std::string tag);
  ~CaresTransport();
  Status init(const CaresOptions& options);

  static void onSockState(void* data, ares_socket_t fd, int readable, int writable);
  static void onAnswer(void* arg, int status, int timeouts, unsigned char* abuf, int alen);
  static void onPollEvent(uv_poll_t* h, int status, int events);
  static void onTimer(uv_timer_t* h);
  static void onHandleClosed(uv_handle_t* h);

  void process(ares_socket_t read_fd, ares_socket_t write_fd);
  void updateTimer();
  void finishClose();
  void closePoll(Poll* p);

  uv_loop_t* loop_;
  ares_channel channel_ = nullptr;
  uv_timer_t timer_{};
  std::unordered_map<int, Poll*> polls_;
  std::unordered_map<uint64_t, Query*> queries_;
  uint64_t next_id_ = 1;
  uint64_t queries_sent_ = 0;
  int open_handles_ = 0;
  int processing_ = 0;  // depth of ares_process_fd/ares_send calls on the stack
  bool closing_ = false;
  bool destroy_pending_ = false;
};

}  // namespace veer::dns
