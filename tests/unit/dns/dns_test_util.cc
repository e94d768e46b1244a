#include "dns_test_util.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <cstring>
#include <thread>

namespace veer::dns::test {

bool runUntil(uv_loop_t* loop, const std::function<bool()>& done, uint64_t timeout_ms) {
  // A ticking timer keeps uv_run(ONCE) from blocking forever and bounds the wait.
  uv_timer_t tick;
  uv_timer_init(loop, &tick);
  uv_timer_start(&tick, [](uv_timer_t*) {}, 10, 10);
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(timeout_ms);
  while (!done() && std::chrono::steady_clock::now() < deadline) uv_run(loop, UV_RUN_ONCE);
  uv_close(reinterpret_cast<uv_handle_t*>(&tick), nullptr);
  uv_run(loop, UV_RUN_NOWAIT);  // let the tick's close callback run
  return done();
}

void runFor(uv_loop_t* loop, uint64_t ms) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
  runUntil(loop, [&] { return std::chrono::steady_clock::now() >= deadline; }, ms + 1000);
}

uint16_t freePort() {
  for (int attempt = 0; attempt < 50; ++attempt) {
    int u = ::socket(AF_INET, SOCK_DGRAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t len = sizeof a;
    if (::bind(u, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(u, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
      ::close(u);
      continue;
    }
    int t = ::socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    ::setsockopt(t, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    bool ok = ::bind(t, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
    ::close(t);
    ::close(u);
    if (ok) return ntohs(a.sin_port);
  }
  return 0;
}

std::string dnsmasqPath() {
  for (const char* p : {"/usr/sbin/dnsmasq", "/usr/bin/dnsmasq", "/usr/local/sbin/dnsmasq"}) {
    if (::access(p, X_OK) == 0) return p;
  }
  return "";
}

namespace {

// Sends one A query for "ready.probe" and waits up to 100 ms for any answer.
bool probe(uint16_t port) {
  int s = ::socket(AF_INET, SOCK_DGRAM, 0);
  timeval tv{0, 100'000};
  ::setsockopt(s, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(port);
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  auto q = serializeMessage(makeQuery(1, "ready.probe", rrtype::kA, std::nullopt));
  ::sendto(s, q->data(), q->size(), 0, reinterpret_cast<sockaddr*>(&a), sizeof a);
  uint8_t buf[512];
  ssize_t n = ::recv(s, buf, sizeof buf, 0);
  ::close(s);
  return n >= 12;
}

}  // namespace

bool Dnsmasq::start(const std::vector<std::string>& extra) {
  std::string bin = dnsmasqPath();
  if (bin.empty()) {
    error_ = "dnsmasq not installed";
    return false;
  }
  for (int attempt = 0; attempt < 3; ++attempt) {
    port_ = freePort();
    std::vector<std::string> args = {bin,
                                     "--keep-in-foreground",
                                     "--conf-file=/dev/null",
                                     "--pid-file=",
                                     "--no-resolv",
                                     "--no-hosts",
                                     "--bind-interfaces",
                                     "--listen-address=127.0.0.1",
                                     "--port=" + std::to_string(port_),
                                     "--log-facility=/dev/null"};
    args.insert(args.end(), extra.begin(), extra.end());
    pid_ = ::fork();
    if (pid_ == 0) {
      int devnull = ::open("/dev/null", O_RDWR);
      ::dup2(devnull, 1);
      ::dup2(devnull, 2);
      std::vector<char*> argv;
      for (auto& a : args) argv.push_back(a.data());
      argv.push_back(nullptr);
      ::execv(argv[0], argv.data());
      ::_exit(127);
    }
    if (pid_ < 0) {
      error_ = "fork failed";
      return false;
    }
    // Bounded wait for the server to answer: 50 probes of at most 100 ms.
    for (int i = 0; i < 50; ++i) {
      if (probe(port_)) return true;
      int status = 0;
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        pid_ = -1;  // it exited (port taken?): try another port
        break;
      }
    }
    if (pid_ > 0) {
      ::kill(pid_, SIGKILL);
      ::waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
  }
  error_ = "dnsmasq did not start";
  return false;
}

Dnsmasq::~Dnsmasq() {
  if (pid_ > 0) {
    ::kill(pid_, SIGTERM);
    ::waitpid(pid_, nullptr, 0);
  }
}

CountingServer::CountingServer(uv_loop_t* loop, Answer answer) : answer_(std::move(answer)) {
  uv_udp_init(loop, &udp_);
  udp_.data = this;
  sockaddr_in a{};
  uv_ip4_addr("127.0.0.1", 0, &a);
  EXPECT_EQ(uv_udp_bind(&udp_, reinterpret_cast<sockaddr*>(&a), 0), 0);
  sockaddr_storage ss{};
  int len = sizeof ss;
  uv_udp_getsockname(&udp_, reinterpret_cast<sockaddr*>(&ss), &len);
  port_ = ntohs(reinterpret_cast<sockaddr_in*>(&ss)->sin_port);
  uv_udp_recv_start(&udp_, &CountingServer::onAlloc, &CountingServer::onRecv);
}

CountingServer::~CountingServer() { EXPECT_TRUE(closed_); }

void CountingServer::close() {
  if (closing_) return;
  closing_ = true;
  uv_close(reinterpret_cast<uv_handle_t*>(&udp_), [](uv_handle_t* h) {
    static_cast<CountingServer*>(h->data)->closed_ = true;
  });
}

int CountingServer::count(const std::string& name, uint16_t type) const {
  auto it = counts_.find(name + "/" + typeName(type));
  return it == counts_.end() ? 0 : it->second;
}

void CountingServer::onAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
  auto* self = static_cast<CountingServer*>(h->data);
  *buf = uv_buf_init(self->buf_, sizeof self->buf_);
}

void CountingServer::onRecv(uv_udp_t* h, ssize_t n, const uv_buf_t* buf, const sockaddr* from,
                            unsigned) {
  auto* self = static_cast<CountingServer*>(h->data);
  if (n <= 0 || from == nullptr || self->closing_) return;
  auto q = parseMessage(ByteView(reinterpret_cast<const uint8_t*>(buf->base), size_t(n)));
  if (!q || q->questions.empty()) return;
  ++self->total_;
  ++self->counts_[canonicalName(q->questions[0].name) + "/" + typeName(q->questions[0].type)];
  auto reply = self->answer_(*q);
  if (!reply) return;
  sockaddr_storage to{};
  std::memcpy(&to, from, from->sa_family == AF_INET6 ? sizeof(sockaddr_in6) : sizeof(sockaddr_in));
  if (self->holding_) {
    self->held_.emplace_back(*reply, to);
    return;
  }
  self->send(*reply, to);
}

void CountingServer::release() {
  holding_ = false;
  for (auto& [m, to] : held_) send(m, to);
  held_.clear();
}

void CountingServer::send(const Message& m, const sockaddr_storage& to) {
  auto wire = serializeMessage(m);
  if (!wire) return;
  // uv_udp_try_send: loopback never blocks for these sizes, and no request must be owned.
  uv_buf_t b = uv_buf_init(reinterpret_cast<char*>(wire->data()), wire->size());
  uv_udp_try_send(&udp_, &b, 1, reinterpret_cast<const sockaddr*>(&to));
}

json::Value parseJson(const std::string& text) {
  auto v = json::parse(text, "test.json");
  EXPECT_TRUE(v.has_value()) << (v ? "" : v.error().message());
  return v ? std::move(*v) : json::Value{};
}

std::string describe(const DiagList& d) {
  std::string s;
  for (const auto& x : d.all()) s += x.toString() + "\n";
  return s;
}

}  // namespace veer::dns::test
