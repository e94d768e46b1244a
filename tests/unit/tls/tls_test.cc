// TLS client tests against real servers on 127.0.0.1: the `openssl` CLI makes a test CA, a
// server certificate and a second (untrusted) CA in a temporary directory; the peers are
// tls_server.py (Python's ssl module, i.e. OpenSSL) and `openssl s_server`, each started for
// one test and killed by PID. The veer loop runs in the test thread, every wait is bounded.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <sys/wait.h>
#if defined(__linux__)
#include <sys/prctl.h>
#endif
#include <unistd.h>

#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <functional>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "conn/stream.h"
#include "conn/tcp_relay.h"
#include "tls/client.h"

namespace veer::tls {
namespace {

using Clock = std::chrono::steady_clock;

bool haveCommand(const std::string& probe) {
  return std::system((probe + " >/dev/null 2>&1").c_str()) == 0;
}

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
#if defined(__linux__)
      prctl(PR_SET_PDEATHSIG, SIGKILL);  // no orphaned server when the test itself crashes
#endif
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

  // The next line of output starting with `prefix` (others are skipped), within `ms`.
  std::optional<std::string> waitLine(const std::string& prefix, int ms = 5000) {
    auto end = Clock::now() + std::chrono::milliseconds(ms);
    while (true) {
      size_t nl;
      while ((nl = buf_.find('\n')) != std::string::npos) {
        std::string line = buf_.substr(0, nl);
        buf_.erase(0, nl + 1);
        if (line.rfind(prefix, 0) == 0) return line;
      }
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(end - Clock::now()).count();
      if (left <= 0 || out_ < 0) return std::nullopt;
      pollfd p{out_, POLLIN, 0};
      if (poll(&p, 1, static_cast<int>(left)) <= 0) continue;
      char tmp[4096];
      ssize_t n = read(out_, tmp, sizeof(tmp));
      if (n <= 0) {
        ::close(out_);
        out_ = -1;
        continue;
      }
      buf_.append(tmp, static_cast<size_t>(n));
    }
  }

  void stop() {
    if (pid_ > 0) {
      kill(pid_, SIGKILL);
      waitpid(pid_, nullptr, 0);
      pid_ = -1;
    }
    if (out_ >= 0) ::close(out_);
    out_ = -1;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1;
  std::string buf_;
};

struct Certs {
  bool ok = false;
  std::string why;
  std::string dir, ca, ca2, cert, key, no_san_cert, no_san_key;
};
Certs* g_certs = nullptr;
bool g_python = false;

std::string readAll(const std::string& path) {
  std::ifstream f(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(f), std::istreambuf_iterator<char>());
}

void writeFile(const std::string& path, const std::string& text) {
  std::ofstream f(path, std::ios::binary);
  f << text;
}

class TlsTest : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    // As the daemon does (app/main.cc): a write to a peer that already closed is EPIPE, not
    // a signal (the version tests' servers close while the ClientHello may still be in flight).
    signal(SIGPIPE, SIG_IGN);
    g_certs = new Certs;
    Certs& c = *g_certs;
    if (!haveCommand("openssl version")) {
      c.why = "the openssl command is not installed";
      return;
    }
    g_python = haveCommand("python3 -c 'import ssl'");
    char tmpl[] = "/tmp/veer-tls-test.XXXXXX";
    if (mkdtemp(tmpl) == nullptr) {
      c.why = "mkdtemp failed";
      return;
    }
    c.dir = tmpl;
    const std::string ec = " -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
    const std::string ca_ext =
        " -addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign";
    std::string script =
        "set -e; cd '" + c.dir + "'\n" +
        "openssl req -x509" + ec + " -keyout ca.key -out ca.pem -days 3 -subj '/CN=veer test CA'" +
        ca_ext + "\n" +
        "openssl req -x509" + ec +
        " -keyout ca2.key -out ca2.pem -days 3 -subj '/CN=veer untrusted CA'" + ca_ext + "\n" +
        "openssl req" + ec + " -keyout server.key -out server.csr -subj '/CN=test.example'\n" +
        "printf 'subjectAltName=DNS:test.example,DNS:*.wild.example,IP:127.0.0.1\\n"
        "basicConstraints=CA:FALSE\\nkeyUsage=critical,digitalSignature\\n"
        "extendedKeyUsage=serverAuth\\n' > server.ext\n"
        "openssl x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out server.pem -days 3 -extfile server.ext\n"
        "openssl req" + ec + " -keyout nosan.key -out nosan.csr -subj '/CN=cn-only.example'\n" +
        "printf 'basicConstraints=CA:FALSE\\nkeyUsage=critical,digitalSignature\\n' > nosan.ext\n"
        "openssl x509 -req -in nosan.csr -CA ca.pem -CAkey ca.key -CAcreateserial "
        "-out nosan.pem -days 3 -extfile nosan.ext\n";
    writeFile(c.dir + "/gen.sh", script);
    if (std::system(("sh '" + c.dir + "/gen.sh' >'" + c.dir + "/gen.log' 2>&1").c_str()) != 0) {
      c.why = "generating test certificates failed: " + readAll(c.dir + "/gen.log");
      return;
    }
    c.ca = c.dir + "/ca.pem";
    c.ca2 = c.dir + "/ca2.pem";
    c.cert = c.dir + "/server.pem";
    c.key = c.dir + "/server.key";
    c.no_san_cert = c.dir + "/nosan.pem";
    c.no_san_key = c.dir + "/nosan.key";
    c.ok = true;
  }

  static void TearDownTestSuite() {
    if (g_certs != nullptr && !g_certs->dir.empty() &&
        g_certs->dir.rfind("/tmp/veer-tls-test.", 0) == 0) {
      (void)std::system(("rm -rf '" + g_certs->dir + "'").c_str());
    }
    delete g_certs;
    g_certs = nullptr;
  }

  void SetUp() override {
    if (!g_certs->ok) GTEST_SKIP() << "skipping: " << g_certs->why;
    ASSERT_EQ(uv_loop_init(&loop_), 0);
    loop_ready_ = true;
  }

  void TearDown() override {
    if (!loop_ready_) return;
    runUntil([&] { return uv_loop_alive(&loop_) == 0; }, 5000);
    EXPECT_EQ(uv_loop_close(&loop_), 0) << "handles left open";
  }

  // Runs the loop until `done` or the deadline (which only bounds a broken test).
  void runUntil(const std::function<bool()>& done, int max_ms = 15000) {
    auto end = Clock::now() + std::chrono::milliseconds(max_ms);
    while (!done() && Clock::now() < end) {
      uv_run(&loop_, UV_RUN_NOWAIT);
      if (!done()) usleep(200);
    }
  }
  void runFor(int ms) {
    auto end = Clock::now() + std::chrono::milliseconds(ms);
    runUntil([&] { return Clock::now() >= end; }, ms + 1000);
  }

  // tls_server.py in `mode`; returns its port (0 when it could not start).
  uint16_t startPy(Proc& p, const std::string& mode, std::vector<std::string> extra = {},
                   const std::string& cert = "", const std::string& key = "") {
    std::vector<std::string> args = {"python3", VEER_TLS_SERVER_PY, "--mode", mode,
                                     "--cert",  cert.empty() ? g_certs->cert : cert,
                                     "--key",   key.empty() ? g_certs->key : key};
    args.insert(args.end(), extra.begin(), extra.end());
    if (!p.start(args)) return 0;
    auto line = p.waitLine("PORT ", 10000);
    if (!line) return 0;
    return static_cast<uint16_t>(std::stoi(line->substr(5)));
  }

  conn::StreamPtr dialTcp(uint16_t port) {
    auto* t = new uv_tcp_t;
    uv_tcp_init(&loop_, t);
    sockaddr_in a{};
    uv_ip4_addr("127.0.0.1", port, &a);
    int status = 1;
    uv_connect_t req{};
    req.data = &status;
    int rc = uv_tcp_connect(&req, t, reinterpret_cast<const sockaddr*>(&a),
                            [](uv_connect_t* r, int st) { *static_cast<int*>(r->data) = st; });
    if (rc == 0) runUntil([&] { return status != 1; });
    if (rc != 0 || status != 0) {
      uv_close(reinterpret_cast<uv_handle_t*>(t),
               [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
      ADD_FAILURE() << "tcp connect to " << port << " failed";
      return nullptr;
    }
    return conn::makeTcpStream(t);
  }

  TlsOptions trusting(const std::string& ca_path = "") {
    TlsOptions o;
    o.enabled = true;
    o.certificate_path = ca_path.empty() ? g_certs->ca : ca_path;
    return o;
  }

  // Dials, runs the handshake, waits for `done`.
  Result<conn::StreamPtr> handshake(uint16_t port, const TlsOptions& o,
                                    const std::string& server = "test.example",
                                    uint32_t timeout_ms = 10000) {
    auto cfg = makeClientConfig(o, server);
    if (!cfg) return unexpected(Error("config: " + cfg.error().message()));
    auto tcp = dialTcp(port);
    if (!tcp) return unexpected(Error("tcp connect failed"));
    int calls = 0;
    std::optional<Result<conn::StreamPtr>> out;
    auto cancel = connect(&loop_, std::move(tcp), *cfg, timeout_ms,
                          [&](Result<conn::StreamPtr> r) {
                            ++calls;
                            out.emplace(std::move(r));
                          });
    EXPECT_EQ(calls, 0) << "done ran inside connect()";
    runUntil([&] { return calls > 0; }, static_cast<int>(timeout_ms) + 10000);
    EXPECT_EQ(calls, 1);
    cancel();  // after done: does nothing
    if (!out) return unexpected(Error("no callback"));
    return std::move(*out);
  }

  // Reads until the end; returns the final status.
  int readToEnd(conn::Stream& s, std::string& got, int max_ms = 15000) {
    int end = 1;
    s.readStart([&](int st, const char* d, size_t n) {
      if (st == 0) {
        got.append(d, n);
      } else {
        end = st;
      }
    });
    runUntil([&] { return end != 1; }, max_ms);
    return end;
  }

  uv_loop_t loop_{};
  bool loop_ready_ = false;
};

#define REQUIRE_PYTHON()                                                   \
  if (!g_python) GTEST_SKIP() << "skipping: python3 with ssl is not installed"

std::string pattern(size_t n, uint32_t seed) {
  std::string s(n, '\0');
  uint32_t x = seed;
  for (size_t i = 0; i < n; ++i) {
    x = x * 1664525u + 1013904223u;
    s[i] = static_cast<char>(x >> 24);
  }
  return s;
}

// ---- configuration -----------------------------------------------------------------------

TEST_F(TlsTest, ConfigNamesAndSni) {
  auto o = trusting();
  auto c = makeClientConfig(o, "Example.COM.");
  ASSERT_TRUE(c) << c.error().message();
  EXPECT_EQ(sniOf(**c), "example.com");
  EXPECT_EQ(expectedNameOf(**c), "example.com");

  c = makeClientConfig(o, "127.0.0.1");
  ASSERT_TRUE(c);
  EXPECT_EQ(sniOf(**c), "");
  EXPECT_EQ(expectedNameOf(**c), "127.0.0.1");

  c = makeClientConfig(o, "[2001:db8::1]");
  ASSERT_TRUE(c);
  EXPECT_EQ(sniOf(**c), "");

  o.server_name = "front.example";
  c = makeClientConfig(o, "10.0.0.1");
  ASSERT_TRUE(c);
  EXPECT_EQ(sniOf(**c), "front.example");

  o.disable_sni = true;
  c = makeClientConfig(o, "10.0.0.1");
  ASSERT_TRUE(c);
  EXPECT_EQ(sniOf(**c), "");
  EXPECT_EQ(expectedNameOf(**c), "front.example");
}

TEST_F(TlsTest, ConfigErrorsNameTheProblem) {
  TlsOptions o;
  o.certificate_path = g_certs->dir + "/missing.pem";
  auto c = makeClientConfig(o, "example.com");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("certificate_path " + o.certificate_path), std::string::npos)
      << c.error().message();
  EXPECT_NE(c.error().message().find("cannot read"), std::string::npos);

  std::string junk = g_certs->dir + "/junk.pem";
  writeFile(junk, "hello, not a certificate\n");
  o.certificate_path = junk;
  c = makeClientConfig(o, "example.com");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find(junk), std::string::npos) << c.error().message();
  EXPECT_NE(c.error().message().find("no PEM certificate"), std::string::npos);

  std::string bad = g_certs->dir + "/bad.pem";
  writeFile(bad, "-----BEGIN CERTIFICATE-----\nAAAA!!!!notbase64\n-----END CERTIFICATE-----\n");
  o.certificate_path = bad;
  c = makeClientConfig(o, "example.com");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find(bad), std::string::npos) << c.error().message();
  EXPECT_NE(c.error().message().find("invalid PEM"), std::string::npos) << c.error().message();

  o = TlsOptions{};
  o.certificate = {"not pem"};
  c = makeClientConfig(o, "example.com");
  ASSERT_FALSE(c);
  EXPECT_EQ(c.error().message().rfind("tls: certificate: ", 0), 0u) << c.error().message();

  o = trusting();
  o.min_version = "1.5";
  c = makeClientConfig(o, "example.com");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("min_version"), std::string::npos);

  o = trusting();
  o.min_version = "1.3";
  c = makeClientConfig(o, "example.com");
#if MBEDTLS_VERSION_NUMBER < 0x03000000
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("2.28 lacks TLS 1.3"), std::string::npos)
      << c.error().message();
#endif

  o = trusting();
  o.min_version = "1.2";
  o.max_version = "1.1";
  c = makeClientConfig(o, "example.com");
  ASSERT_FALSE(c);

  o = trusting();
  o.alpn = {"h2", ""};
  c = makeClientConfig(o, "example.com");
  ASSERT_FALSE(c);
  EXPECT_NE(c.error().message().find("alpn"), std::string::npos);
}

TEST_F(TlsTest, InlineCertificateWinsOverPath) {
  TlsOptions o;
  o.certificate = {readAll(g_certs->ca)};
  o.certificate_path = g_certs->dir + "/missing.pem";  // ignored, as in sing-box
  auto c = makeClientConfig(o, "example.com");
  EXPECT_TRUE(c) << c.error().message();
}

TEST_F(TlsTest, SystemStoreLoadsWhenPresent) {
  if (access("/etc/ssl/certs/ca-certificates.crt", R_OK) != 0 &&
      access("/etc/ssl/cert.pem", R_OK) != 0 && access("/etc/ssl/certs", R_OK) != 0) {
    GTEST_SKIP() << "skipping: no system CA store";
  }
  TlsOptions o;
  auto c = makeClientConfig(o, "example.com");
  ASSERT_TRUE(c) << c.error().message();
  auto c2 = makeClientConfig(o, "example.org");  // the parsed store is shared
  ASSERT_TRUE(c2) << c2.error().message();
}

// ---- handshakes and data -----------------------------------------------------------------

TEST_F(TlsTest, VerifiedHandshakeEchoesMegabytesAndShutdownSendsCloseNotify) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo");
  ASSERT_NE(port, 0);
  auto r = handshake(port, trusting());
  ASSERT_TRUE(r) << r.error().message();
  conn::StreamPtr s = std::move(*r);
  EXPECT_STREQ(s->kind(), "tls");
  EXPECT_NE(s->socket(), nullptr);
  EXPECT_EQ(s->releaseTcp(), nullptr);
  EXPECT_EQ(versionOf(*s), "TLSv1.2");
  EXPECT_FALSE(cipherOf(*s).empty());
  EXPECT_EQ(alpnOf(*s), "");
  EXPECT_EQ(srv.waitLine("SNI "), "SNI test.example");

  // 8 MiB in 64 KiB writes plus odd sizes (records split across reads and writes).
  const std::string data = pattern(8 * 1024 * 1024 + 12345, 7);
  std::string got;
  int end = 1;
  s->readStart([&](int st, const char* d, size_t n) {
    if (st == 0) {
      got.append(d, n);
    } else {
      end = st;
    }
  });
  int dones = 0, bad = 0, writes = 0;
  for (size_t off = 0; off < data.size();) {
    size_t n = std::min<size_t>(writes % 3 == 0 ? 65536 : 1 + (writes * 7919) % 40000,
                                data.size() - off);
    s->write(data.data() + off, n, [&](int st) {
      ++dones;
      if (st != 0) ++bad;
    });
    off += n;
    ++writes;
  }
  EXPECT_EQ(dones, 0) << "write done ran inside write()";
  runUntil([&] { return got.size() >= data.size() || end != 1; }, 60000);
  ASSERT_EQ(got.size(), data.size()) << "end status " << end;
  EXPECT_TRUE(got == data) << "echoed bytes differ";
  runUntil([&] { return dones == writes; });
  EXPECT_EQ(dones, writes);
  EXPECT_EQ(bad, 0);
  EXPECT_EQ(s->writeQueueSize(), 0u);

  int shut = 1;
  s->shutdown([&](int st) { shut = st; });
  runUntil([&] { return end != 1 && shut != 1; });
  EXPECT_EQ(shut, 0);
  EXPECT_EQ(end, UV_EOF);  // the server's close_notify
  EXPECT_EQ(srv.waitLine("EOF "), "EOF close_notify");
  EXPECT_EQ(errorOf(*s), "");
}

TEST_F(TlsTest, ShutdownIsSeenAsCloseNotify) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo");
  ASSERT_NE(port, 0);
  auto r = handshake(port, trusting());
  ASSERT_TRUE(r) << r.error().message();
  conn::StreamPtr s = std::move(*r);
  s->write("ping", 4);
  std::string got;
  int end = 1;
  s->readStart([&](int st, const char* d, size_t n) {
    if (st == 0) {
      got.append(d, n);
      if (got == "ping") s->shutdown({});
    } else {
      end = st;
    }
  });
  runUntil([&] { return end != 1; });
  EXPECT_EQ(got, "ping");
  EXPECT_EQ(end, UV_EOF);  // the server answers our close_notify with its own
  EXPECT_EQ(srv.waitLine("EOF "), "EOF close_notify");
  // Writing after shutdown fails (asynchronously).
  int st = 1;
  s->write("x", 1, [&](int status) { st = status; });
  EXPECT_EQ(st, 1);
  runUntil([&] { return st != 1; });
  EXPECT_LT(st, 0);
}

TEST_F(TlsTest, SniAndAlpnAreNegotiated) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo", {"--alpn", "h2,http/1.1"});
  ASSERT_NE(port, 0);
  auto o = trusting();
  o.alpn = {"h2", "http/1.1"};
  auto r = handshake(port, o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(alpnOf(**r), "h2");
  EXPECT_EQ(srv.waitLine("SNI "), "SNI test.example");
  EXPECT_EQ(srv.waitLine("ALPN "), "ALPN h2");

  o.alpn = {"http/1.1"};
  o.server_name = "Test.Example";
  r = handshake(port, o, "127.0.0.1");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(alpnOf(**r), "http/1.1");
  EXPECT_EQ(srv.waitLine("SNI "), "SNI test.example");
}

TEST_F(TlsTest, IpAddressIsCheckedAgainstIpSanWithoutSni) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo");
  ASSERT_NE(port, 0);
  auto r = handshake(port, trusting(), "127.0.0.1");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(srv.waitLine("SNI "), "SNI -");

  r = handshake(port, trusting(), "127.0.0.2");
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message().rfind("tls: certificate verify failed: ", 0), 0u)
      << r.error().message();
  EXPECT_NE(r.error().message().find("expected 127.0.0.2"), std::string::npos)
      << r.error().message();
}

TEST_F(TlsTest, DisableSniStillVerifiesTheName) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo");
  ASSERT_NE(port, 0);
  auto o = trusting();
  o.disable_sni = true;
  auto r = handshake(port, o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(srv.waitLine("SNI "), "SNI -");

  o.server_name = "b.wild.example";  // wildcard, checked by veer
  r = handshake(port, o);
  ASSERT_TRUE(r) << r.error().message();

  o.server_name = "a.b.wild.example";  // a wildcard covers one label only
  r = handshake(port, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("tls: certificate verify failed"), std::string::npos);

  o.server_name = "wrong.example";
  r = handshake(port, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("expected wrong.example"), std::string::npos)
      << r.error().message();
}

TEST_F(TlsTest, CommonNameIsUsedWithoutSan) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo", {}, g_certs->no_san_cert, g_certs->no_san_key);
  ASSERT_NE(port, 0);
  auto o = trusting();
  auto r = handshake(port, o, "cn-only.example");
  ASSERT_TRUE(r) << r.error().message();
  o.disable_sni = true;
  r = handshake(port, o, "cn-only.example");
  ASSERT_TRUE(r) << r.error().message();
  r = handshake(port, o, "other.example");
  ASSERT_FALSE(r);
}

TEST_F(TlsTest, WildcardNameWithSni) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo");
  ASSERT_NE(port, 0);
  auto r = handshake(port, trusting(), "a.wild.example");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(srv.waitLine("SNI "), "SNI a.wild.example");
}

TEST_F(TlsTest, WrongCaIsAVerifyError) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo");
  ASSERT_NE(port, 0);
  auto r = handshake(port, trusting(g_certs->ca2));
  ASSERT_FALSE(r);
  const std::string& m = r.error().message();
  EXPECT_EQ(m.rfind("tls: certificate verify failed: ", 0), 0u) << m;
  EXPECT_NE(m.find("not correctly signed by the trusted CA"), std::string::npos) << m;
}

TEST_F(TlsTest, NameMismatchIsAVerifyError) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo");
  ASSERT_NE(port, 0);
  auto r = handshake(port, trusting(), "other.example");
  ASSERT_FALSE(r);
  const std::string& m = r.error().message();
  EXPECT_EQ(m.rfind("tls: certificate verify failed: ", 0), 0u) << m;
  EXPECT_NE(m.find("Common Name"), std::string::npos) << m;
  EXPECT_NE(m.find("(expected other.example)"), std::string::npos) << m;
}

TEST_F(TlsTest, InsecureAcceptsAnUntrustedCertificate) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo");
  ASSERT_NE(port, 0);
  auto o = trusting(g_certs->ca2);
  o.insecure = true;
  auto r = handshake(port, o, "other.example");
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(srv.waitLine("SNI "), "SNI other.example");
  std::string got;
  (*r)->write("abc", 3);
  (*r)->shutdown({});
  EXPECT_EQ(readToEnd(**r, got), UV_EOF);
  EXPECT_EQ(got, "abc");
}

TEST_F(TlsTest, InlineCertificateText) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo");
  ASSERT_NE(port, 0);
  TlsOptions o;
  std::string pem = readAll(g_certs->ca);
  size_t pos = 0, nl;
  while ((nl = pem.find('\n', pos)) != std::string::npos) {
    o.certificate.push_back(pem.substr(pos, nl - pos));
    pos = nl + 1;
  }
  auto r = handshake(port, o);
  ASSERT_TRUE(r) << r.error().message();
}

TEST_F(TlsTest, VersionBounds) {
  REQUIRE_PYTHON();
  {
    Proc srv;
    uint16_t port = startPy(srv, "echo", {"--min", "1.2", "--max", "1.3"});
    ASSERT_NE(port, 0);
    auto o = trusting();
    o.max_version = "1.3";  // 2.28: silently 1.2
    o.min_version = "1.2";
    auto r = handshake(port, o);
    ASSERT_TRUE(r) << r.error().message();
    EXPECT_EQ(srv.waitLine("VERSION "), "VERSION " + versionOf(**r));
  }
#if MBEDTLS_VERSION_NUMBER < 0x03000000
  {
    Proc srv;  // a TLS 1.3-only server: mbedTLS 2.28 cannot talk to it
    uint16_t port = startPy(srv, "echo", {"--min", "1.3"});
    ASSERT_NE(port, 0);
    auto r = handshake(port, trusting());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message(), "tls: handshake failed: server sent alert protocol_version (70)");
  }
#endif
  {
    Proc srv;  // a server that stops at TLS 1.1, the client wants 1.2 at least
    uint16_t port = startPy(srv, "echo", {"--max", "1.1"});
    ASSERT_NE(port, 0);
    auto o = trusting();
    o.min_version = "1.2";
    auto r = handshake(port, o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().message().rfind("tls: handshake failed: server sent alert ", 0), 0u)
        << r.error().message();
  }
}

TEST_F(TlsTest, OpensslSServerInterop) {
  Proc srv;
  ASSERT_TRUE(srv.start({"openssl", "s_server", "-accept", "127.0.0.1:0", "-cert", g_certs->cert,
                         "-key", g_certs->key, "-alpn", "veer/1,http/1.1", "-rev", "-naccept",
                         "1"}));
  auto line = srv.waitLine("ACCEPT ", 10000);
  ASSERT_TRUE(line.has_value());
  uint16_t port = static_cast<uint16_t>(std::stoi(line->substr(line->rfind(':') + 1)));
  auto o = trusting();
  o.alpn = {"veer/1"};
  auto r = handshake(port, o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(alpnOf(**r), "veer/1");
  conn::Stream& s = **r;
  s.write("hello veer\n", 11);
  std::string got;
  int end = 1;
  s.readStart([&](int st, const char* d, size_t n) {
    if (st == 0) {
      got.append(d, n);
    } else {
      end = st;
    }
  });
  runUntil([&] { return got.find("reev olleh") != std::string::npos || end != 1; });
  EXPECT_NE(got.find("reev olleh"), std::string::npos) << got;
}

// ---- failures ----------------------------------------------------------------------------

TEST_F(TlsTest, ServerClosingMidHandshake) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "midclose");
  ASSERT_NE(port, 0);
  auto r = handshake(port, trusting());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "tls: connection closed during handshake");
}

TEST_F(TlsTest, NonTlsServerFailsTheHandshake) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "http");
  ASSERT_NE(port, 0);
  auto r = handshake(port, trusting());
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message().rfind("tls: handshake failed: ", 0), 0u) << r.error().message();
}

TEST_F(TlsTest, HandshakeTimeout) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "silent");
  ASSERT_NE(port, 0);
  auto start = Clock::now();
  auto r = handshake(port, trusting(), "test.example", 300);
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(Clock::now() - start).count();
  ASSERT_FALSE(r);
  EXPECT_EQ(r.error().message(), "tls: handshake timeout");
  EXPECT_GE(ms, 250);
  EXPECT_LT(ms, 5000);
}

TEST_F(TlsTest, CancelBeforeDone) {
  REQUIRE_PYTHON();
  Proc silent, echo;
  uint16_t sport = startPy(silent, "silent");
  uint16_t eport = startPy(echo, "echo");
  ASSERT_NE(sport, 0);
  ASSERT_NE(eport, 0);
  auto cfg = makeClientConfig(trusting(), "test.example");
  ASSERT_TRUE(cfg);
  int calls = 0;
  // At once, before the loop ran.
  auto cancel = connect(&loop_, dialTcp(sport), *cfg, 200, [&](auto) { ++calls; });
  cancel();
  cancel();
  // After some waiting, with the handshake pending.
  auto cancel2 = connect(&loop_, dialTcp(sport), *cfg, 2000, [&](auto) { ++calls; });
  runFor(100);
  cancel2();
  // Against a live TLS server, after one loop turn.
  auto cancel3 = connect(&loop_, dialTcp(eport), *cfg, 2000, [&](auto) { ++calls; });
  uv_run(&loop_, UV_RUN_NOWAIT);
  cancel3();
  // An error found inside connect() (reported from the loop) is cancelled too.
  TlsOptions bad = trusting();
  bad.server_name = std::string(300, 'a');  // longer than mbedTLS accepts for a host name
  auto cfg2 = makeClientConfig(bad, "x");
  ASSERT_TRUE(cfg2);
  auto cancel4 = connect(&loop_, dialTcp(sport), *cfg2, 2000, [&](auto) { ++calls; });
  cancel4();
  runFor(500);  // past the first timeout
  EXPECT_EQ(calls, 0);
}

TEST_F(TlsTest, ErrorInsideConnectIsReportedFromTheLoop) {
  REQUIRE_PYTHON();
  Proc silent;
  uint16_t sport = startPy(silent, "silent");
  ASSERT_NE(sport, 0);
  TlsOptions bad = trusting();
  bad.server_name = std::string(300, 'a');
  auto cfg = makeClientConfig(bad, "x");
  ASSERT_TRUE(cfg);
  int calls = 0;
  std::string msg;
  auto cancel = connect(&loop_, dialTcp(sport), *cfg, 2000, [&](Result<conn::StreamPtr> r) {
    ++calls;
    if (!r) msg = r.error().message();
  });
  EXPECT_EQ(calls, 0);
  runUntil([&] { return calls > 0; });
  EXPECT_EQ(calls, 1);
  EXPECT_EQ(msg.rfind("tls: server name", 0), 0u) << msg;
}

TEST_F(TlsTest, RaggedEofIsEof) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "ragged");
  ASSERT_NE(port, 0);
  auto r = handshake(port, trusting());
  ASSERT_TRUE(r) << r.error().message();
  std::string got;
  EXPECT_EQ(readToEnd(**r, got), UV_EOF);
  EXPECT_EQ(got, "hello");
  EXPECT_EQ(errorOf(**r), "");
}

TEST_F(TlsTest, GarbageAfterHandshakeIsAProtocolError) {
  REQUIRE_PYTHON();
  for (const char* mode : {"garbage", "badmac", "truncate"}) {
    SCOPED_TRACE(mode);
    Proc srv;
    uint16_t port = startPy(srv, mode);
    ASSERT_NE(port, 0);
    auto r = handshake(port, trusting());
    ASSERT_TRUE(r) << r.error().message();
    std::string got;
    EXPECT_EQ(readToEnd(**r, got), UV_EPROTO);
    EXPECT_EQ(got, "");
    std::string e = errorOf(**r);
    EXPECT_EQ(e.rfind("tls: ", 0), 0u) << e;
    if (std::string(mode) == "truncate") {
      EXPECT_NE(e.find("truncated"), std::string::npos) << e;
    } else {
      EXPECT_EQ(e.rfind("tls: read: ", 0), 0u) << e;
    }
  }
}

// ---- stream behaviour --------------------------------------------------------------------

TEST_F(TlsTest, ReadStopHoldsDataUntilReadStart) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo");
  ASSERT_NE(port, 0);
  auto r = handshake(port, trusting());
  ASSERT_TRUE(r) << r.error().message();
  conn::Stream& s = **r;
  const std::string data = pattern(300000, 3);
  s.write(data.data(), data.size());
  std::string got;
  int reads = 0, end = 1;
  std::function<void(int, const char*, size_t)> on = [&](int st, const char* d, size_t n) {
    if (st != 0) {
      end = st;
      return;
    }
    ++reads;
    got.append(d, n);
    s.readStop();
  };
  s.readStart(on);
  runUntil([&] { return reads > 0; });
  ASSERT_EQ(reads, 1);
  runFor(200);
  EXPECT_EQ(reads, 1) << "data delivered after readStop()";
  // Resume one read at a time until everything arrived.
  for (int i = 0; i < 10000 && got.size() < data.size() && end == 1; ++i) {
    int before = reads;
    s.readStart(on);
    runUntil([&] { return reads > before || end != 1; });
  }
  EXPECT_EQ(got.size(), data.size());
  EXPECT_TRUE(got == data);
}

TEST_F(TlsTest, CloseInsideReadCallback) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo");
  ASSERT_NE(port, 0);
  auto r = handshake(port, trusting());
  ASSERT_TRUE(r) << r.error().message();
  conn::StreamPtr s = std::move(*r);
  const std::string data = pattern(200000, 5);
  int writes_done = 0;
  s->write(data.data(), data.size(), [&](int) { ++writes_done; });
  int reads = 0;
  s->readStart([&](int st, const char*, size_t) {
    ++reads;
    s.reset();  // close from inside the callback: nothing may run after
  });
  runUntil([&] { return s == nullptr; });
  runFor(200);
  EXPECT_EQ(reads, 1);
  EXPECT_LE(writes_done, 1);
}

TEST_F(TlsTest, ResetCloseAfterHandshake) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo");
  ASSERT_NE(port, 0);
  auto r = handshake(port, trusting());
  ASSERT_TRUE(r) << r.error().message();
  conn::StreamPtr s = std::move(*r);
  s->write("abc", 3, [&](int) { ADD_FAILURE() << "callback after close"; });
  s->readStart([&](int, const char*, size_t) { ADD_FAILURE() << "callback after close"; });
  s.release()->close(true);
  runFor(200);
}

// The way outbounds use it: the StreamRelay between a plain TCP client and a TLS remote, with
// half-close (client EOF -> close_notify -> the server's close_notify -> client EOF) and
// backpressure bounded through the TLS layer.
TEST_F(TlsTest, StreamRelayBetweenTcpClientAndTlsRemote) {
  REQUIRE_PYTHON();
  Proc srv;
  uint16_t port = startPy(srv, "echo");
  ASSERT_NE(port, 0);
  auto r = handshake(port, trusting());
  ASSERT_TRUE(r) << r.error().message();
  conn::StreamPtr remote = std::move(*r);

  // A listener for the client side.
  auto* listener = new uv_tcp_t;
  uv_tcp_init(&loop_, listener);
  sockaddr_in a{};
  uv_ip4_addr("127.0.0.1", 0, &a);
  ASSERT_EQ(uv_tcp_bind(listener, reinterpret_cast<const sockaddr*>(&a), 0), 0);
  conn::StreamPtr client;
  listener->data = &client;
  ASSERT_EQ(uv_listen(reinterpret_cast<uv_stream_t*>(listener), 4,
                      [](uv_stream_t* l, int st) {
                        if (st != 0) return;
                        auto* c = new uv_tcp_t;
                        uv_tcp_init(l->loop, c);
                        if (uv_accept(l, reinterpret_cast<uv_stream_t*>(c)) == 0) {
                          *static_cast<conn::StreamPtr*>(l->data) = conn::makeTcpStream(c);
                        }
                      }),
            0);
  int alen = sizeof(a);
  uv_tcp_getsockname(listener, reinterpret_cast<sockaddr*>(&a), &alen);
  uint16_t lport = ntohs(a.sin_port);

  const std::string data = pattern(4 * 1024 * 1024 + 777, 11);
  std::string echoed;
  std::thread peer([&] {
    int fd = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in to{};
    to.sin_family = AF_INET;
    to.sin_port = htons(lport);
    to.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (::connect(fd, reinterpret_cast<sockaddr*>(&to), sizeof(to)) != 0) {
      ::close(fd);
      return;
    }
    std::thread writer([&] {
      size_t off = 0;
      while (off < data.size()) {
        ssize_t n = ::send(fd, data.data() + off, std::min<size_t>(65536, data.size() - off),
                           MSG_NOSIGNAL);
        if (n <= 0) break;
        off += static_cast<size_t>(n);
      }
      ::shutdown(fd, SHUT_WR);
    });
    char buf[65536];
    timeval tv{20, 0};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof(tv));
    while (true) {
      ssize_t n = ::recv(fd, buf, sizeof(buf), 0);
      if (n <= 0) break;
      echoed.append(buf, static_cast<size_t>(n));
    }
    writer.join();
    ::close(fd);
  });
  runUntil([&] { return client != nullptr; });
  ASSERT_NE(client, nullptr);
  conn::RelayOptions opts;
  std::optional<conn::RelayResult> result;
  conn::startStreamRelay(&loop_, std::move(client), std::move(remote), "", opts,
                         [&](const conn::RelayResult& res) { result = res; });
  runUntil([&] { return result.has_value(); }, 60000);
  peer.join();
  uv_close(reinterpret_cast<uv_handle_t*>(listener),
           [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  ASSERT_TRUE(result.has_value());
  EXPECT_EQ(result->reason, "done");
  EXPECT_FALSE(result->error);
  EXPECT_EQ(result->up, data.size());
  EXPECT_EQ(result->down, data.size());
  EXPECT_LT(result->max_queued, 1024u * 1024u) << "backpressure did not bound the queue";
  EXPECT_EQ(echoed.size(), data.size());
  EXPECT_TRUE(echoed == data);
  EXPECT_EQ(srv.waitLine("EOF "), "EOF close_notify");
}

}  // namespace
}  // namespace veer::tls
