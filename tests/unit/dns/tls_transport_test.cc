// DoT and DoH transports through the DNS router, against dns_front.py (Python's ssl module) on
// 127.0.0.1 with a test CA made by the `openssl` CLI: answers, pipelining on one connection,
// reconnects, idle close, timeouts, a wrong CA, malformed DoH responses, a server name
// resolved through another server, and closing with queries in flight.
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <optional>
#include <string>
#include <vector>

#include "base/log.h"
#include "loop_fixture.h"

namespace veer::dns::test {
namespace {

// A child process with its stdout on a pipe; killed (SIGKILL) and reaped on destruction.
class Proc {
 public:
  Proc() = default;
  Proc(const Proc&) = delete;
  Proc& operator=(const Proc&) = delete;
  ~Proc() { stop(); }

  bool start(const std::vector<std::string>& args) {
    int fds[2];
    if (pipe(fds) != 0) return false;
    pid_t pid = fork();
    if (pid < 0) return false;
    if (pid == 0) {
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // no orphaned server when the test itself crashes
      dup2(fds[1], 1);
      int devnull = open("/dev/null", O_RDWR);
      dup2(devnull, 0);
      dup2(devnull, 2);
      ::close(fds[0]);
      ::close(fds[1]);
      std::vector<char*> argv;
      for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
      argv.push_back(nullptr);
      execvp(argv[0], argv.data());
      _exit(127);
    }
    ::close(fds[1]);
    pid_ = pid;
    out_ = fds[0];
    return true;
  }

  /// Lines starting with `prefix` that arrive within `ms` (stops at `want` of them).
  int count(const std::string& prefix, int ms, int want = 1 << 30) {
    int n = 0;
    auto end = std::chrono::steady_clock::now() + std::chrono::milliseconds(ms);
    while (n < want) {
      size_t nl;
      while (n < want && (nl = buf_.find('\n')) != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (line.rfind(prefix, 0) == 0) {
          ++n;
          last_ = line;
        }
      }
      if (n >= want || out_ < 0) break;
      auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                      end - std::chrono::steady_clock::now())
                      .count();
      // One non-blocking look at least (ms = 0: only what has already arrived).
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(std::max<long long>(left, 0))) <= 0) {
        if (left <= 0) break;
        continue;
      }
      char tmp[4096];
      ssize_t r = read(out_, tmp, sizeof(tmp));
      if (r <= 0) {
        ::close(out_);
        out_ = -1;
        continue;
      }
      buf_.append(tmp, static_cast<size_t>(r));
    }
    return n;
  }
  const std::string& last() const { return last_; }

  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (out_ >= 0) ::close(out_);
    out_ = -1;
    buf_.clear();
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buf_, last_;
};

struct Certs {
  bool ok = false;
  std::string why, dir, ca, ca2, cert, key;
};
Certs* g_certs = nullptr;

class TlsTransportTest : public LoopTest {
 protected:
  static void SetUpTestSuite() {
    signal(SIGPIPE, SIG_IGN);  // as the daemon does
    g_certs = new Certs;
    Certs& c = *g_certs;
    if (std::system("openssl version >/dev/null 2>&1") != 0 ||
        std::system("python3 -c 'import ssl' >/dev/null 2>&1") != 0) {
      c.why = "openssl or python3 (ssl) not installed";
      return;
    }
    char tmpl[] = "/tmp/veer-dns-tls.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      c.why = "mkdtemp failed";
      return;
    }
    c.dir = tmpl;
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string ca_ext =
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";
    std::string script =
        "set -e; cd '" + c.dir + "'\n" + "openssl req -x509" + ec +
        " -keyout ca.key -out ca.pem -days 3 -subj '/CN=veer test CA'" + ca_ext + "\n" +
        "openssl req -x509" + ec + " -keyout ca2.key -out ca2.pem -days 3 -subj '/CN=other CA'" +
        ca_ext + "\n" + "openssl req" + ec +
        " -keyout server.key -out server.csr -subj '/CN=dns.example'\n"
        "printf 'subjectAltName=DNS:dns.example,IP:127.0.0.1\\n' > server.ext\n"
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 3 -extfile server.ext\n";
    {
      std::ofstream f(c.dir + "/gen.sh");
      f << script;
    }
    if (std::system(("sh '" + c.dir + "/gen.sh' >'" + c.dir + "/gen.log' 2>&1").c_str()) != 0) {
      c.why = "generating test certificates failed";
      return;
    }
    c.ca = c.dir + "/ca.pem";
    c.ca2 = c.dir + "/ca2.pem";
    c.cert = c.dir + "/server.pem";
    c.key = c.dir + "/server.key";
    c.ok = true;
  }

  static void TearDownTestSuite() {
    if (g_certs && g_certs->dir.rfind("/tmp/veer-dns-tls.", 0) == 0) {
      (void)std::system(("rm -rf '" + g_certs->dir + "'").c_str());
    }
    delete g_certs;
    g_certs = nullptr;
  }

  void SetUp() override {
    LoopTest::SetUp();
    if (!g_certs->ok) GTEST_SKIP() << g_certs->why;
  }

  uint16_t startFront(Proc& p, const char* kind, uint16_t port = 0) {
    std::vector<std::string> args = {"python3", VEER_DNS_FRONT_PY, kind, g_certs->cert,
                                     g_certs->key, std::to_string(port)};
    EXPECT_TRUE(p.start(args));
    if (p.count("PORT ", 5000, 1) != 1) {
      ADD_FAILURE() << "dns_front.py did not start";
      return 0;
    }
    return static_cast<uint16_t>(std::stoi(p.last().substr(5)));
  }

  DnsRouterOptions options() {
    DnsRouterOptions o = fastOptions();  // 250 ms x 1 try: queries time out after 1.25 s
    return o;
  }

  std::string server(const char* type, uint16_t port, const std::string& ca,
                     const std::string& extra = "", const char* tag = "s",
                     const char* host = "127.0.0.1") {
    return std::string("{\"type\": \"") + type + "\", \"tag\": \"" + tag + "\", \"server\": \"" +
           host + "\", \"server_port\": " + std::to_string(port) +
           ", \"tls\": {\"certificate_path\": \"" + ca + "\"}" + extra + "}";
  }

  RemoteTransport* remote(const char* tag = "s") {
    return dynamic_cast<RemoteTransport*>(router_->server(tag));
  }

  static std::string errorOf(const Result<LookupResult>& r) {
    return r ? std::string("(no error)") : r.error().message();
  }
};

const std::vector<std::string> kAnswer = {"127.0.0.7", "::7"};

TEST_F(TlsTransportTest, DotPipelinesOnOneConnection) {
  Proc front;
  uint16_t port = startFront(front, "dot");
  ASSERT_NE(makeRouter("{\"servers\": [" + server("tls", port, g_certs->ca) +
                           "], \"disable_cache\": true}",
                       options()),
            nullptr);
  constexpr int kN = 12;
  int done = 0;
  for (int i = 0; i < kN; ++i) {
    router_->lookup("q" + std::to_string(i) + ".example", Strategy::AsIs, {},
                    [&](Result<LookupResult> r) {
                      ++done;
                      ASSERT_TRUE(r.has_value()) << errorOf(r);
                      EXPECT_EQ(strings(r->addresses), kAnswer);
                    });
  }
  ASSERT_TRUE(runUntil(&loop_, [&] { return done == kN; }));
  EXPECT_EQ(remote()->connectionsOpened(), 1u);
  EXPECT_EQ(front.count("ACCEPT", 200), 1);
}

TEST_F(TlsTransportTest, DotReconnectsAfterServerRestart) {
  Proc front;
  uint16_t port = startFront(front, "dot");
  ASSERT_NE(makeRouter("{\"servers\": [" + server("tls", port, g_certs->ca) +
                           "], \"disable_cache\": true}",
                       options()),
            nullptr);
  auto r = lookup("before.example");
  ASSERT_TRUE(r.has_value()) << errorOf(r);
  front.stop();
  ASSERT_EQ(startFront(front, "dot", port), port);
  r = lookup("after.example");
  ASSERT_TRUE(r.has_value()) << errorOf(r);
  EXPECT_EQ(strings(r->addresses), kAnswer);
  EXPECT_EQ(remote()->connectionsOpened(), 2u);
}

TEST_F(TlsTransportTest, DotServerClosingOnEveryQueryIsAnError) {
  Proc front;
  uint16_t port = startFront(front, "dot");
  ASSERT_NE(makeRouter("{\"servers\": [" + server("tls", port, g_certs->ca) + "]}", options()),
            nullptr);
  auto r = lookup("close.example", Strategy::Ipv4Only);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(errorOf(r).find("connection closed by the server"), std::string::npos) << errorOf(r);
  EXPECT_EQ(remote()->connectionsOpened(), 2u);  // sent once more on a new connection
  r = lookup("fine.example", Strategy::Ipv4Only);
  EXPECT_TRUE(r.has_value()) << errorOf(r);
}

TEST_F(TlsTransportTest, DotUnansweredQueryTimesOut) {
  Proc front;
  uint16_t port = startFront(front, "dot");
  ASSERT_NE(makeRouter("{\"servers\": [" + server("tls", port, g_certs->ca) + "]}", options()),
            nullptr);
  auto r = lookup("silent.example", Strategy::Ipv4Only);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(errorOf(r).find("no answer within 1250 ms"), std::string::npos) << errorOf(r);
  r = lookup("fine.example", Strategy::Ipv4Only);
  EXPECT_TRUE(r.has_value()) << errorOf(r);
}

TEST_F(TlsTransportTest, IdleConnectionIsClosed) {
  Proc front;
  uint16_t port = startFront(front, "dot");
  DnsRouterOptions o = options();
  o.remote_idle_timeout_ms = 100;
  ASSERT_NE(makeRouter("{\"servers\": [" + server("tls", port, g_certs->ca) +
                           "], \"disable_cache\": true}",
                       o),
            nullptr);
  ASSERT_TRUE(lookup("a.example").has_value());
  runFor(&loop_, 300);
  ASSERT_TRUE(lookup("b.example").has_value());
  EXPECT_EQ(remote()->connectionsOpened(), 2u);
}

TEST_F(TlsTransportTest, WrongCaIsAClearError) {
  Proc front;
  uint16_t port = startFront(front, "dot");
  ASSERT_NE(makeRouter("{\"servers\": [" + server("tls", port, g_certs->ca2) + "," +
                           server("https", port, g_certs->ca2, "", "h") + "]}",
                       options()),
            nullptr);
  auto r = lookup("x.example", Strategy::Ipv4Only);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(errorOf(r).find("dns/s (tls://127.0.0.1:" + std::to_string(port) +
                            "): tls: certificate verify failed"),
            std::string::npos)
      << errorOf(r);
}

TEST_F(TlsTransportTest, ServerNameResolvedThroughAnotherServer) {
  Proc front;
  uint16_t port = startFront(front, "dot");
  ASSERT_NE(makeRouter("{\"servers\": [" +
                           server("tls", port, g_certs->ca, ", \"domain_resolver\": \"h\"", "s",
                                  "dns.example") +
                           ", {\"type\": \"hosts\", \"tag\": \"h\", \"predefined\": "
                           "{\"dns.example\": \"127.0.0.1\"}}]}",
                       options()),
            nullptr);
  auto r = lookup("x.example");
  ASSERT_TRUE(r.has_value()) << errorOf(r);
  EXPECT_EQ(strings(r->addresses), kAnswer);
}

TEST_F(TlsTransportTest, UnresolvableServerNameIsAClearError) {
  ASSERT_NE(makeRouter("{\"servers\": [" +
                           server("tls", 853, g_certs->ca, ", \"domain_resolver\": \"h\"", "s",
                                  "nowhere.example") +
                           ", {\"type\": \"hosts\", \"tag\": \"h\", \"predefined\": {}}]}",
                       options()),
            nullptr);
  auto r = lookup("x.example", Strategy::Ipv4Only);
  ASSERT_FALSE(r.has_value());
  EXPECT_NE(errorOf(r).find("resolve nowhere.example via dns/h: NXDOMAIN"), std::string::npos)
      << errorOf(r);
}

TEST_F(TlsTransportTest, DohAnswersKeepsAliveAndRejectsMalformedResponses) {
  Proc front;
  uint16_t port = startFront(front, "doh");
  ASSERT_NE(makeRouter("{\"servers\": [" + server("https", port, g_certs->ca) +
                           "], \"disable_cache\": true}",
                       options()),
            nullptr);
  for (const char* name : {"a.example", "b.example", "chunked.example"}) {
    auto r = lookup(name);
    ASSERT_TRUE(r.has_value()) << name << ": " << errorOf(r);
    EXPECT_EQ(strings(r->addresses), kAnswer);
  }
  // A and AAAA go out together: two connections, then kept alive and reused.
  EXPECT_EQ(remote()->connectionsOpened(), 2u);
  for (const char* name : {"c.example", "d.example"}) {
    ASSERT_TRUE(lookup(name, Strategy::Ipv4Only).has_value()) << name;
  }
  EXPECT_EQ(remote()->connectionsOpened(), 2u);
  for (auto [name, want] : {std::pair{"bad-status.example", "HTTP status 500"},
                            std::pair{"wrong-type.example",
                                      "unexpected Content-Type \"text/html\""},
                            std::pair{"truncated.example", "(truncated)"}}) {
    auto r = lookup(name, Strategy::Ipv4Only);
    ASSERT_FALSE(r.has_value()) << name;
    EXPECT_NE(errorOf(r).find(want), std::string::npos) << errorOf(r);
    r = lookup(std::string("after-") + name, Strategy::Ipv4Only);
    EXPECT_TRUE(r.has_value()) << errorOf(r);
  }
}

TEST_F(TlsTransportTest, DohConcurrentQueriesUseAtMostTwoConnections) {
  Proc front;
  uint16_t port = startFront(front, "doh");
  ASSERT_NE(makeRouter("{\"servers\": [" + server("https", port, g_certs->ca) +
                           "], \"disable_cache\": true}",
                       options()),
            nullptr);
  constexpr int kN = 8;
  int done = 0;
  for (int i = 0; i < kN; ++i) {
    router_->lookup("c" + std::to_string(i) + ".example", Strategy::AsIs, {},
                    [&](Result<LookupResult> r) {
                      ++done;
                      EXPECT_TRUE(r.has_value()) << errorOf(r);
                    });
  }
  ASSERT_TRUE(runUntil(&loop_, [&] { return done == kN; }));
  EXPECT_EQ(remote()->connectionsOpened(), 2u);
}

TEST_F(TlsTransportTest, ClosingWithQueriesInFlightRunsNoCallback) {
  Proc dot, doh;
  uint16_t p1 = startFront(dot, "dot");
  uint16_t p2 = startFront(doh, "doh");
  ASSERT_NE(makeRouter("{\"servers\": [" + server("tls", p1, g_certs->ca) + "," +
                           server("https", p2, g_certs->ca, "", "h") +
                           "], \"rules\": [{\"domain_suffix\": \"doh.example\", \"server\": "
                           "\"h\"}]}",
                       options()),
            nullptr);
  int called = 0;
  if (getenv("VEER_TEST_DEBUG")) veer::log::setLevel(veer::log::Level::Debug);
  router_->lookup("silent.example", Strategy::AsIs, {}, [&](Result<LookupResult>) { ++called; });
  router_->lookup("silent.doh.example", Strategy::AsIs, {},
                  [&](Result<LookupResult>) { ++called; });
  // Both servers got the questions (and will never answer them).
  int dot_queries = 0, doh_queries = 0;
  EXPECT_TRUE(runUntil(
      &loop_,
      [&] {
        dot_queries += dot.count("QUERY", 0);
        doh_queries += doh.count("QUERY", 0);
        return dot_queries >= 1 && doh_queries >= 1;
      },
      5000))
      << "queries seen: DoT " << dot_queries << ", DoH " << doh_queries;
  router_.reset();
  runFor(&loop_, 50);
  EXPECT_EQ(called, 0);
}

}  // namespace
}  // namespace veer::dns::test
