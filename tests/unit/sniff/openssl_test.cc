// Real ClientHellos made at test time: `openssl s_client` connects to a loopback listener that
// this test opens on port 0; the captured bytes must yield the SNI and ALPN it was given.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <gtest/gtest.h>

#include <cstdlib>
#include <string>
#include <vector>

#include "sniff/sniff.h"
#include "sniff_test_util.h"

extern char** environ;

namespace veer::sniff::test {
namespace {

bool haveOpenssl() { return std::system("command -v openssl >/dev/null 2>&1") == 0; }

// Runs s_client with `args` against a fresh listener and returns what it sent until sniffTls
// stopped asking for more (bounded by the sniff cap and a 10 s deadline).
Bytes captureHello(const std::vector<std::string>& args, Status& status, Info& info) {
  int lfd = socket(AF_INET, SOCK_STREAM, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (lfd < 0 || bind(lfd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0 ||
      listen(lfd, 1) != 0 || getsockname(lfd, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    ADD_FAILURE() << "loopback listener";
    if (lfd >= 0) close(lfd);
    return {};
  }
  const std::string target = "127.0.0.1:" + std::to_string(ntohs(addr.sin_port));
  std::vector<std::string> argv{"openssl", "s_client", "-connect", target};
  argv.insert(argv.end(), args.begin(), args.end());
  std::vector<char*> cargv;
  for (auto& a : argv) cargv.push_back(a.data());
  cargv.push_back(nullptr);
  posix_spawn_file_actions_t fa;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, "/dev/null", O_WRONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 2, "/dev/null", O_WRONLY, 0);
  pid_t pid = -1;
  const int rc = posix_spawnp(&pid, "openssl", &fa, nullptr, cargv.data(), environ);
  posix_spawn_file_actions_destroy(&fa);
  Bytes got;
  status = Status::NeedMore;
  if (rc == 0) {
    pollfd p{lfd, POLLIN, 0};
    if (poll(&p, 1, 10000) == 1) {
      int cfd = accept(lfd, nullptr, nullptr);
      // Each read is one more chunk of the stream; stop as soon as the sniffer decides.
      for (int reads = 0; cfd >= 0 && reads < 1000 && status == Status::NeedMore; ++reads) {
        pollfd q{cfd, POLLIN, 0};
        if (poll(&q, 1, 10000) != 1) break;
        uint8_t buf[4096];
        ssize_t n = read(cfd, buf, sizeof buf);
        if (n <= 0) break;
        got.insert(got.end(), buf, buf + n);
        status = sniffTls(got, info);
      }
      if (cfd >= 0) close(cfd);
    }
    kill(pid, SIGTERM);
    int wstatus;
    waitpid(pid, &wstatus, 0);
  } else {
    ADD_FAILURE() << "posix_spawnp openssl: " << rc;
  }
  close(lfd);
  return got;
}

TEST(SniffTlsOpenssl, RealClientHellosYieldTheSni) {
  if (!haveOpenssl()) GTEST_SKIP() << "openssl not installed";
  struct Case {
    std::vector<std::string> args;
    std::string domain;
    std::vector<std::string> alpn;
  };
  const std::vector<Case> cases = {
      {{"-servername", "some.example"}, "some.example", {}},
      {{"-servername", "Mixed.Case.Example", "-tls1_2"}, "mixed.case.example", {}},
      {{"-servername", "h2.example", "-alpn", "h2,http/1.1", "-tls1_3"},
       "h2.example",
       {"h2", "http/1.1"}},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.domain);
    Status st;
    Info info;
    Bytes hello = captureHello(c.args, st, info);
    ASSERT_EQ(st, Status::Match) << hello.size() << " bytes captured";
    EXPECT_EQ(info.protocol, "tls");
    EXPECT_EQ(info.domain, c.domain);
    EXPECT_EQ(info.alpn, c.alpn);
    // The same bytes one at a time: NeedMore until the last one.
    for (size_t n = 0; n < hello.size(); ++n) {
      Info partial;
      ASSERT_EQ(sniffTls(ByteView(hello).first(n), partial), Status::NeedMore) << n;
    }
  }
}

}  // namespace
}  // namespace veer::sniff::test
