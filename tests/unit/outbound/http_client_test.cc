// The HTTP GET client used for remote rule sets: URL parsing and Location resolution, the
// response parser (framings, limits, malformed input), and HttpGet over a fake outbound whose
// streams replay scripted server bytes (redirects, conditional requests, timeouts).
#include <gtest/gtest.h>
#include <uv.h>

#include <deque>
#include <optional>
#include <set>

#include "loop/defer.h"
#include "outbound/http_get.h"
#include "outbound/http_response.h"

namespace veer::outbound {
namespace {

// ---- URLs ----

TEST(HttpUrl, Parse) {
  auto u = parseHttpUrl("http://Example.COM/a/b.srs?x=1#frag");
  ASSERT_TRUE(u) << u.error().message();
  EXPECT_FALSE(u->tls);
  EXPECT_EQ(u->host, "example.com");
  EXPECT_EQ(u->port, 80);
  EXPECT_EQ(u->target, "/a/b.srs?x=1");
  EXPECT_EQ(u->authority(), "example.com");

  u = parseHttpUrl("HTTPS://1.2.3.4:8443");
  ASSERT_TRUE(u);
  EXPECT_TRUE(u->tls);
  EXPECT_EQ(u->port, 8443);
  EXPECT_EQ(u->target, "/");
  EXPECT_EQ(u->authority(), "1.2.3.4:8443");

  u = parseHttpUrl("http://[::1]:8080?q");
  ASSERT_TRUE(u);
  EXPECT_EQ(u->host, "::1");
  EXPECT_EQ(u->target, "/?q");
  EXPECT_EQ(u->authority(), "[::1]:8080");
  EXPECT_EQ(u->toString(), "http://[::1]:8080/?q");
}

TEST(HttpUrl, Errors) {
  for (const char* bad : {"ftp://x/", "http://", "http:///x", "http://a:0/", "http://a:65536/",
                          "http://a:/", "http://a:8x/", "http://u@a/", "http://[::1/",
                          "http://[zz]/", "http://a b/", "http://a/b c", "example.com/x",
                          "http://a/\x01"}) {
    EXPECT_FALSE(parseHttpUrl(bad)) << bad;
  }
}

TEST(HttpUrl, ResolveLocation) {
  auto base = *parseHttpUrl("https://h.test:444/dir/sub/file.srs?v=1");
  auto r = resolveLocation(base, "http://other/x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->toString(), "http://other/x");
  r = resolveLocation(base, "//cdn.test/y");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->toString(), "https://cdn.test/y");
  r = resolveLocation(base, "/abs?z");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->toString(), "https://h.test:444/abs?z");
  r = resolveLocation(base, "new.srs");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->target, "/dir/sub/new.srs");
  r = resolveLocation(base, "../up/./n.json");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->target, "/dir/up/n.json");
  r = resolveLocation(base, "../../../../x");
  ASSERT_TRUE(r);
  EXPECT_EQ(r->target, "/x");
  EXPECT_FALSE(resolveLocation(base, "ftp://x/"));
  EXPECT_FALSE(resolveLocation(base, "javascript:alert(1)"));
  EXPECT_FALSE(resolveLocation(base, ""));
}

// ---- the response parser ----

bool feedAll(HttpResponseParser& p, std::string_view s, size_t step = 0) {
  if (step == 0) return p.feed(s.data(), s.size());
  for (size_t i = 0; i < s.size(); i += step) {
    if (!p.feed(s.data() + i, std::min(step, s.size() - i))) return false;
  }
  return true;
}

TEST(HttpResponseParser, ContentLength) {
  for (size_t step : {0, 1, 3, 7}) {
    HttpResponseParser p(1024);
    ASSERT_TRUE(feedAll(p, "HTTP/1.1 200 OK\r\nETag: \"abc\"\r\nContent-Length: 5\r\n\r\nhelloEXTRA",
                        step));
    EXPECT_TRUE(p.done());
    EXPECT_EQ(p.status(), 200);
    EXPECT_EQ(p.reason(), "OK");
    EXPECT_EQ(p.body(), "hello");
    ASSERT_NE(p.header("etag"), nullptr);
    EXPECT_EQ(*p.header("ETAG"), "\"abc\"");
  }
}

TEST(HttpResponseParser, Chunked) {
  std::string r =
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5;ext=1\r\nhello\r\n1A\r\nabcdefghijklmnopqrstuvwxyz\r\n0\r\nX-Trailer: 1\r\n\r\n";
  for (size_t step : {0, 1, 2, 5}) {
    HttpResponseParser p(1024);
    ASSERT_TRUE(feedAll(p, r, step)) << p.error();
    EXPECT_TRUE(p.done());
    EXPECT_EQ(p.body(), "helloabcdefghijklmnopqrstuvwxyz");
  }
  // Bare LF line ends are accepted.
  HttpResponseParser p(1024);
  ASSERT_TRUE(feedAll(p, "HTTP/1.1 200 OK\nTransfer-Encoding: chunked\n\n3\nabc\n0\n\n"));
  EXPECT_TRUE(p.done());
  EXPECT_EQ(p.body(), "abc");
}

TEST(HttpResponseParser, UntilCloseAndNoBody) {
  HttpResponseParser p(1024);
  ASSERT_TRUE(feedAll(p, "HTTP/1.0 200 OK\r\n\r\nsome"));
  ASSERT_TRUE(feedAll(p, " bytes"));
  EXPECT_FALSE(p.done());
  EXPECT_TRUE(p.untilClose());
  ASSERT_TRUE(p.finish());
  EXPECT_EQ(p.body(), "some bytes");

  HttpResponseParser nm(1024);
  ASSERT_TRUE(feedAll(nm, "HTTP/1.1 304 Not Modified\r\nContent-Length: 99\r\n\r\n"));
  EXPECT_TRUE(nm.done());
  EXPECT_EQ(nm.status(), 304);
  EXPECT_EQ(nm.body(), "");

  HttpResponseParser cont(1024);
  ASSERT_TRUE(feedAll(cont, "HTTP/1.1 100 Continue\r\n\r\nHTTP/1.1 200 OK\r\nContent-Length: 1\r\n\r\nx"));
  EXPECT_TRUE(cont.done());
  EXPECT_EQ(cont.status(), 200);
  EXPECT_EQ(cont.body(), "x");

  HttpResponseParser same(1024);
  ASSERT_TRUE(feedAll(same, "HTTP/1.1 200 OK\r\nContent-Length: 2, 2\r\nContent-Length: 2\r\n\r\nab"));
  EXPECT_EQ(same.body(), "ab");
}

TEST(HttpResponseParser, Malformed) {
  struct Case {
    const char* text;
    const char* why;  // a substring of error()
  };
  const Case cases[] = {
      {"HTTP/2 200 OK\r\n\r\n", "status line"},
      {"ICY 200 OK\r\n\r\n", "status line"},
      {"HTTP/1.1 2000 OK\r\n\r\n", "status line"},
      {"HTTP/1.1 20x OK\r\n\r\n", "status code"},
      {"HTTP/1.1 099 Low\r\n\r\n", "status code"},
      {"HTTP/1.1 200 OK\r\nNo colon here\r\n\r\n", "without a name"},
      {"HTTP/1.1 200 OK\r\n: empty\r\n\r\n", "without a name"},
      {"HTTP/1.1 200 OK\r\nBad Name: x\r\n\r\n", "header name"},
      {"HTTP/1.1 200 OK\r\nA: b\r\n  folded\r\n\r\n", "folding"},
      {"HTTP/1.1 200 OK\r\nContent-Length: -1\r\n\r\n", "Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1x\r\n\r\n", "Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 99999999999999999999\r\n\r\n", "Content-Length"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n", "conflicting"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 1,\r\n\r\n", "Content-Length"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip\r\n\r\n", "Transfer-Encoding"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", "Transfer-Encoding"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n",
       "several"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", "chunk size"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n\r\n", "chunk size"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\nfffffffffffffffff\r\n", "too large"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX", "CRLF"},
      {"HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n3\rX", "LF"},
      {"HTTP/1.1 200 OK\r\nX: a\x01z\r\n\r\n", "control"},
      {"HTTP/1.1 200 O\x7fK\r\n\r\n", "control"},
      {"HTTP/1.1 200 OK\r\nContent-Length: 2000\r\n\r\n", "limit"},
  };
  for (const auto& c : cases) {
    HttpResponseParser p(1024);
    EXPECT_FALSE(feedAll(p, c.text)) << c.text;
    EXPECT_TRUE(p.failed()) << c.text;
    EXPECT_NE(p.error().find(c.why), std::string::npos) << c.text << " -> " << p.error();
    // Once failed, it stays failed.
    EXPECT_FALSE(p.feed("x", 1));
    EXPECT_FALSE(p.finish());
  }
}

TEST(HttpResponseParser, Limits) {
  // The body cap holds for every framing.
  HttpResponseParser chunked(4);
  EXPECT_FALSE(feedAll(chunked, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhello\r\n"));
  EXPECT_NE(chunked.error().find("limit"), std::string::npos);
  HttpResponseParser close(4);
  EXPECT_FALSE(feedAll(close, "HTTP/1.1 200 OK\r\n\r\nhello"));
  HttpResponseParser exact(5);
  EXPECT_TRUE(feedAll(exact, "HTTP/1.1 200 OK\r\nContent-Length: 5\r\n\r\nhello"));
  // An endless head.
  HttpResponseParser head(1024);
  std::string big = "HTTP/1.1 200 OK\r\nX: " + std::string(20000, 'a');
  EXPECT_FALSE(feedAll(head, big, 1000));
  EXPECT_NE(head.error().find("head"), std::string::npos);
  HttpResponseParser many(1024);
  std::string hs = "HTTP/1.1 200 OK\r\n";
  for (int i = 0; i < 200; ++i) hs += "X: y\r\n";
  EXPECT_FALSE(feedAll(many, hs + "\r\n"));
  // Cut short.
  HttpResponseParser cut(1024);
  ASSERT_TRUE(feedAll(cut, "HTTP/1.1 200 OK\r\nContent-Length: 10\r\n\r\nabc"));
  EXPECT_FALSE(cut.finish());
  EXPECT_NE(cut.error().find("3 of 10"), std::string::npos) << cut.error();
  HttpResponseParser none(1024);
  EXPECT_FALSE(none.finish());
  EXPECT_NE(none.error().find("before a response"), std::string::npos);
  HttpResponseParser half(1024);
  ASSERT_TRUE(feedAll(half, "HTTP/1.1 200"));
  EXPECT_FALSE(half.finish());
  HttpResponseParser chunk_cut(1024);
  ASSERT_TRUE(feedAll(chunk_cut, "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nab"));
  EXPECT_FALSE(chunk_cut.finish());
}

// ---- HttpGet over a fake outbound ----

// A stream that answers the first request written to it with scripted bytes (in pieces, each
// on its own loop turn), then EOF unless `hang`.
class ScriptedStream : public conn::Stream {
 public:
  ScriptedStream(uv_loop_t* loop, std::deque<std::string> pieces, bool hang, std::string* request)
      : loop_(loop), pieces_(std::move(pieces)), hang_(hang), request_(request) {}
  void readStart(ReadFn fn) override {
    fn_ = std::move(fn);
    pump();
  }
  void readStop() override { fn_ = nullptr; }
  void write(const char* data, size_t len, DoneFn done) override {
    if (request_) request_->append(data, len);
  }
  size_t writeQueueSize() const override { return 0; }
  void shutdown(DoneFn) override {}
  void close(bool) override {
    *alive_ = false;
    auto* self = this;
    loop::defer(loop_, [self] { delete self; });
  }
  const char* kind() const override { return "scripted"; }

 private:
  void pump() {
    std::weak_ptr<bool> alive = alive_;
    loop::defer(loop_, [this, alive] {
      if (alive.expired() || !*alive.lock() || !fn_) return;
      if (pieces_.empty()) {
        if (!hang_) fn_(UV_EOF, nullptr, 0);
        return;
      }
      std::string p = std::move(pieces_.front());
      pieces_.pop_front();
      auto fn = fn_;
      fn(0, p.data(), p.size());
      if (alive.expired() || !*alive.lock()) return;
      pump();
    });
  }
  uv_loop_t* loop_;
  std::deque<std::string> pieces_;
  bool hang_;
  std::string* request_;
  ReadFn fn_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

class ScriptedOutbound : public Outbound {
 public:
  struct Reply {
    std::deque<std::string> pieces;
    bool hang = false;
    std::string fail;  // a dial error instead
  };
  ScriptedOutbound(uv_loop_t* loop) : Outbound("scripted", "scripted"), loop_(loop) {}
  uint64_t dialTcp(const conn::InboundContext& ctx, DialCallback cb) override {
    dialed.push_back(ctx.destination.toString());
    requests.emplace_back();
    Reply r = replies.empty() ? Reply{} : replies.front();
    if (!replies.empty()) replies.pop_front();
    std::string* req = &requests.back();
    uint64_t id = ++next_;
    loop::defer(loop_, [this, id, r, req, cb] {
      if (cancelled.count(id)) return;
      if (!r.fail.empty()) return cb(unexpected(Error(r.fail)));
      cb(conn::StreamPtr(new ScriptedStream(loop_, r.pieces, r.hang, req)));
    });
    return id;
  }
  void cancelDial(uint64_t id) override { cancelled.insert(id); }
  Result<PacketConn*> listenUdp(const conn::InboundContext&, PacketConn::ReceiveFn) override {
    return unexpected(Error("no"));
  }
  std::deque<Reply> replies;
  std::vector<std::string> dialed;
  std::deque<std::string> requests;
  std::set<uint64_t> cancelled;

 private:
  uv_loop_t* loop_;
  uint64_t next_ = 0;
};

class HttpGetTest : public ::testing::Test {
 protected:
  void SetUp() override { uv_loop_init(&loop_); }
  void TearDown() override {
    get_.reset();
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  Result<HttpGetResponse> run(ScriptedOutbound& ob, HttpGetOptions o, TlsStep tls = nullptr) {
    std::optional<Result<HttpGetResponse>> out;
    get_ = HttpGet::start(&loop_, &ob, std::move(o), std::move(tls),
                          [&](Result<HttpGetResponse> r) { out.emplace(std::move(r)); });
    EXPECT_FALSE(out.has_value());  // never inside start()
    while (!out) {
      if (uv_run(&loop_, UV_RUN_ONCE) == 0 && !out) break;
    }
    if (!out) return unexpected(Error("no result"));
    return std::move(*out);
  }
  uv_loop_t loop_{};
  std::unique_ptr<HttpGet> get_;
};

TEST_F(HttpGetTest, ChunkedBodyInPieces) {
  ScriptedOutbound ob(&loop_);
  ob.replies.push_back({{"HTTP/1.1 200 OK\r\nTransfer-", "Encoding: chunked\r\nETag: W/\"e1\"\r\n",
                         "Last-Modified: Mon, 01 Jan 2024 00:00:00 GMT\r\n\r\n4\r\nru",
                         "le\r\n0\r\n\r\n"}});
  HttpGetOptions o;
  o.url = "http://rules.test:8080/a.srs";
  o.if_none_match = "\"old\"";
  auto r = run(ob, o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, "rule");
  EXPECT_EQ(r->etag, "W/\"e1\"");
  EXPECT_EQ(r->last_modified, "Mon, 01 Jan 2024 00:00:00 GMT");
  ASSERT_EQ(ob.dialed.size(), 1u);
  EXPECT_EQ(ob.dialed[0], "rules.test:8080");
  const std::string& req = ob.requests[0];
  EXPECT_EQ(req.rfind("GET /a.srs HTTP/1.1\r\nHost: rules.test:8080\r\n", 0), 0u) << req;
  EXPECT_NE(req.find("If-None-Match: \"old\"\r\n"), std::string::npos);
  EXPECT_NE(req.find("Connection: close\r\n"), std::string::npos);
  EXPECT_EQ(req.substr(req.size() - 4), "\r\n\r\n");
}

TEST_F(HttpGetTest, FollowsRedirects) {
  ScriptedOutbound ob(&loop_);
  ob.replies.push_back({{"HTTP/1.1 302 Found\r\nLocation: /v2/b.json\r\nContent-Length: 0\r\n\r\n"}});
  ob.replies.push_back({{"HTTP/1.1 301 Moved\r\nLocation: http://cdn.test/c.json\r\n\r\n"}});
  ob.replies.push_back({{"HTTP/1.0 200 OK\r\n\r\nuntil close"}});
  HttpGetOptions o;
  o.url = "http://origin.test/a.json";
  auto r = run(ob, o);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->body, "until close");
  EXPECT_EQ(r->url, "http://cdn.test/c.json");
  ASSERT_EQ(ob.dialed.size(), 3u);
  EXPECT_EQ(ob.dialed[1], "origin.test:80");
  EXPECT_EQ(ob.dialed[2], "cdn.test:80");
  EXPECT_EQ(ob.requests[1].rfind("GET /v2/b.json HTTP/1.1\r\n", 0), 0u);
}

TEST_F(HttpGetTest, TooManyRedirects) {
  ScriptedOutbound ob(&loop_);
  for (int i = 0; i < 5; ++i) {
    ob.replies.push_back({{"HTTP/1.1 307 Again\r\nLocation: /loop\r\nContent-Length: 0\r\n\r\n"}});
  }
  HttpGetOptions o;
  o.url = "http://origin.test/";
  o.max_redirects = 2;
  auto r = run(ob, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("more than 2 redirects"), std::string::npos);
  EXPECT_EQ(ob.dialed.size(), 3u);
}

TEST_F(HttpGetTest, StatusesAreResults) {
  ScriptedOutbound ob(&loop_);
  ob.replies.push_back({{"HTTP/1.1 304 Not Modified\r\nETag: \"x\"\r\n\r\n"}, true});
  HttpGetOptions o;
  o.url = "http://h.test/";
  auto r = run(ob, o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 304);
  ob.replies.push_back({{"HTTP/1.1 500 Internal Server Error\r\nContent-Length: 4\r\n\r\noops"}});
  r = run(ob, o);
  ASSERT_TRUE(r);
  EXPECT_EQ(r->status, 500);
  EXPECT_EQ(r->reason, "Internal Server Error");
}

TEST_F(HttpGetTest, Failures) {
  ScriptedOutbound ob(&loop_);
  HttpGetOptions o;
  o.url = "http://h.test/x";
  ob.replies.push_back({{}, false, "connection refused"});
  auto r = run(ob, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("connection refused"), std::string::npos);
  // Truncated body.
  ob.replies.push_back({{"HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nshort"}});
  r = run(ob, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("5 of 100"), std::string::npos) << r.error().message();
  // Garbage.
  ob.replies.push_back({{"SSH-2.0-OpenSSH\r\n\r\n"}});
  r = run(ob, o);
  ASSERT_FALSE(r);
  // Over the size cap.
  o.max_body = 3;
  ob.replies.push_back({{"HTTP/1.1 200 OK\r\n\r\n", "abcd"}});
  r = run(ob, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("limit"), std::string::npos);
  // A server that never answers: the timeout.
  o.timeout_ms = 50;
  ob.replies.push_back({{"HTTP/1.1 200 OK\r\n"}, true});
  r = run(ob, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("timed out"), std::string::npos);
  // Bad URL, and https without a TLS step: failures reported from the loop.
  o.url = "gopher://x/";
  r = run(ob, o);
  ASSERT_FALSE(r);
  o.url = "https://h.test/x";
  r = run(ob, o);
  ASSERT_FALSE(r);
  EXPECT_NE(r.error().message().find("TLS"), std::string::npos);
}

TEST_F(HttpGetTest, TlsStepWrapsTheStream) {
  ScriptedOutbound ob(&loop_);
  ob.replies.push_back({{"HTTP/1.1 200 OK\r\nContent-Length: 2\r\n\r\nok"}});
  std::string seen_host;
  TlsStep tls = [&](uv_loop_t* loop, const HttpUrl& url, conn::StreamPtr inner, uint32_t,
                    std::function<void(Result<conn::StreamPtr>)> done) {
    seen_host = url.host;
    auto s = std::make_shared<conn::StreamPtr>(std::move(inner));
    loop::defer(loop, [s, done] { done(std::move(*s)); });
    return std::function<void()>([] {});
  };
  HttpGetOptions o;
  o.url = "https://secure.test/r.srs";
  auto r = run(ob, o, tls);
  ASSERT_TRUE(r) << r.error().message();
  EXPECT_EQ(r->body, "ok");
  EXPECT_EQ(seen_host, "secure.test");
  EXPECT_EQ(ob.dialed[0], "secure.test:443");
}

TEST_F(HttpGetTest, DestroyBeforeDoneCancels) {
  ScriptedOutbound ob(&loop_);
  ob.replies.push_back({{"HTTP/1.1 200 OK\r\n"}, true});
  HttpGetOptions o;
  o.url = "http://h.test/";
  bool called = false;
  get_ = HttpGet::start(&loop_, &ob, o, nullptr, [&](Result<HttpGetResponse>) { called = true; });
  get_.reset();  // before the dial completes
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_FALSE(called);
  EXPECT_EQ(ob.cancelled.size(), 1u);
  // And while reading.
  ob.replies.push_back({{"HTTP/1.1 200 OK\r\n"}, true});
  get_ = HttpGet::start(&loop_, &ob, o, nullptr, [&](Result<HttpGetResponse>) { called = true; });
  for (int i = 0; i < 5; ++i) uv_run(&loop_, UV_RUN_NOWAIT);
  get_.reset();
  uv_run(&loop_, UV_RUN_DEFAULT);
  EXPECT_FALSE(called);
}

}  // namespace
}  // namespace veer::outbound
