// Helpers for the DNS tests that run a libuv loop: a loop fixture that checks every handle is
// closed at the end, a dnsmasq child process, and a UDP DNS server on the test's own loop that
// counts the queries it gets.
#pragma once

#include <gtest/gtest.h>
#include <sys/types.h>
#include <uv.h>

#include <functional>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "base/json.h"
#include "dns/message.h"

namespace veer::dns::test {

/// Runs `loop` until `done()` or `timeout_ms` of wall time pass; returns done().
bool runUntil(uv_loop_t* loop, const std::function<bool()>& done, uint64_t timeout_ms = 10'000);
/// Runs the loop for about `ms` milliseconds (for TTL expiry).
void runFor(uv_loop_t* loop, uint64_t ms);

/// A free port on 127.0.0.1 for both UDP and TCP (probed; a race with other processes is
/// possible but unlikely on a test machine).
uint16_t freePort();
/// Full path of dnsmasq, or "" when it is not installed.
std::string dnsmasqPath();

/// A dnsmasq child on 127.0.0.1:port with its own zone data, killed by PID in the destructor.
class Dnsmasq {
 public:
  /// Starts dnsmasq with the common options plus `args`; waits until it answers.
  bool start(const std::vector<std::string>& args);
  ~Dnsmasq();
  uint16_t port() const { return port_; }
  std::string address() const { return "127.0.0.1:" + std::to_string(port_); }
  const std::string& error() const { return error_; }

 private:
  pid_t pid_ = -1;
  uint16_t port_ = 0;
  std::string error_;
};

/// A UDP DNS server on the test's loop. It answers with `answer(query)` (or never, when
/// `answer` returns nullopt) and counts queries per "name/TYPE".
class CountingServer {
 public:
  using Answer = std::function<std::optional<Message>(const Message&)>;
  CountingServer(uv_loop_t* loop, Answer answer);
  ~CountingServer();  // the handle must be closed by then: call close() and run the loop
  void close();
  bool closed() const { return closed_; }
  uint16_t port() const { return port_; }
  int total() const { return total_; }
  int count(const std::string& name, uint16_t type) const;
  /// Holds answers until release() (to make sure concurrent questions overlap).
  void hold() { holding_ = true; }
  void release();

 private:
  static void onAlloc(uv_handle_t*, size_t, uv_buf_t* buf);
  static void onRecv(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from, unsigned);
  void send(const Message& m, const sockaddr_storage& to);

  uv_udp_t udp_{};
  Answer answer_;
  uint16_t port_ = 0;
  int total_ = 0;
  std::map<std::string, int> counts_;
  bool holding_ = false;
  std::vector<std::pair<Message, sockaddr_storage>> held_;
  bool closing_ = false;
  bool closed_ = false;
  char buf_[65536];
};

/// Parses JSON text for config tests (fails the test on syntax errors).
json::Value parseJson(const std::string& text);
/// The diagnostics as text, for failure messages.
std::string describe(const DiagList& d);

}  // namespace veer::dns::test
