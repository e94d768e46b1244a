// Shadowsocks AEAD: known-answer framing (vectors from an independent implementation, Python's
// `cryptography` on OpenSSL), round trips in every split, tampered/truncated/oversized records,
// UDP packets, method validation, and the client Stream over an in-memory inner stream.
#include <gtest/gtest.h>
#include <uv.h>

#include <random>
#include <string>
#include <vector>

#include "loop/defer.h"
#include "outbound/shadowsocks.h"
#include "outbound/shadowsocks_codec.h"

namespace veer::outbound {
namespace {

std::string hex(const std::string& b) {
  static const char* d = "0123456789abcdef";
  std::string s;
  for (unsigned char c : b) {
    s.push_back(d[c >> 4]);
    s.push_back(d[c & 15]);
  }
  return s;
}
std::vector<uint8_t> seq(size_t n) {
  std::vector<uint8_t> v(n);
  for (size_t i = 0; i < n; ++i) v[i] = static_cast<uint8_t>(i + 1);
  return v;
}
ss::Cipher cipher(const std::string& method, const std::string& pw = "veer") {
  auto c = ss::makeCipher(method, pw);
  EXPECT_TRUE(c) << method;
  return *c;
}
std::string randomBytes(size_t n, uint32_t seed) {
  std::mt19937 g(seed);
  std::string s(n, '\0');
  for (auto& c : s) c = static_cast<char>(g());
  return s;
}

const char* const kMethods[] = {"aes-128-gcm", "aes-256-gcm", "chacha20-ietf-poly1305"};

TEST(ShadowsocksCodec, KnownAnswer) {
  // salt = 01 02 .. keysize, password "veer", plaintext = 127.0.0.1:80 header + "hello".
  const std::pair<const char*, const char*> kVectors[] = {
      {"aes-128-gcm",
       "0102030405060708090a0b0c0d0e0f1076a7cc06050bf3b737ddad7847c29bde04a2b031a5d4a87c7f237e22"
       "c54fd7a89e0cf1807078d8d1822f9d6db34e"},
      {"aes-256-gcm",
       "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f201e5ec08b0fc6aeabdccb9c4e"
       "054bbf0a77844817ea33679bb82d9ca90c8776147573b7aa9b223aa59432f7e3f874"},
      {"chacha20-ietf-poly1305",
       "0102030405060708090a0b0c0d0e0f101112131415161718191a1b1c1d1e1f201d000da158d279b070b3dcbb"
       "55d1dfc969c3220820da9f36c79313b940abeab2b6d58a65aae99d64feabc36151ca"},
  };
  for (const auto& [method, want] : kVectors) {
    ss::Cipher c = cipher(method);
    ss::Encoder e;
    ASSERT_TRUE(e.init(c, seq(c.saltSize())));
    std::string plain;
    ASSERT_TRUE(ss::appendAddress(plain, Destination::fromHost("127.0.0.1", 80)));
    plain += "hello";
    std::string out;
    ASSERT_TRUE(e.encode(asBytes(plain), out));
    EXPECT_EQ(hex(out), want) << method;
    ss::Decoder d(c);
    std::string back;
    ASSERT_TRUE(d.feed(asBytes(out), back));
    EXPECT_EQ(back, plain);
    EXPECT_TRUE(d.atBoundary());
  }
}

TEST(ShadowsocksCodec, RoundTripAnySplit) {
  for (const char* m : kMethods) {
    ss::Cipher c = cipher(m);
    ss::Encoder e;
    ASSERT_TRUE(e.init(c));
    std::string wire;
    std::vector<std::string> pieces = {"a", std::string(), randomBytes(0x3FFF, 1),
                                       randomBytes(0x4000, 2), randomBytes(100000, 3), "z"};
    std::string all;
    for (const auto& p : pieces) {
      ASSERT_TRUE(e.encode(asBytes(p), wire));
      all += p;
    }
    // 1 byte at a time, then random splits.
    for (uint32_t seed : {0u, 7u, 99u}) {
      ss::Decoder d(c);
      std::string got;
      std::mt19937 g(seed);
      size_t off = 0;
      while (off < wire.size()) {
        size_t n = seed == 0 ? 1 : 1 + g() % 40000;
        if (n > wire.size() - off) n = wire.size() - off;
        ASSERT_TRUE(d.feed(asBytes(std::string_view(wire).substr(off, n)), got));
        off += n;
        if (off < wire.size()) {
          EXPECT_LE(got.size(), all.size());
        }
      }
      EXPECT_EQ(got, all) << m << " seed " << seed;
      EXPECT_TRUE(d.atBoundary());
    }
  }
}

TEST(ShadowsocksCodec, TamperedTruncatedWrongKey) {
  ss::Cipher c = cipher("chacha20-ietf-poly1305");
  ss::Encoder e;
  ASSERT_TRUE(e.init(c));
  std::string wire;
  ASSERT_TRUE(e.encode(asBytes(std::string("some payload")), wire));
  // Any flipped byte after the salt (which only changes the key) fails verification.
  for (size_t i = c.saltSize(); i < wire.size(); ++i) {
    std::string bad = wire;
    bad[i] ^= 0x20;
    ss::Decoder d(c);
    std::string out;
    EXPECT_FALSE(d.feed(asBytes(bad), out)) << i;
    EXPECT_TRUE(d.failed());
    EXPECT_FALSE(d.feed(asBytes(std::string("x")), out));
  }
  // A flipped salt byte derives another key: fails too.
  std::string bad_salt = wire;
  bad_salt[0] ^= 1;
  ss::Decoder ds(c);
  std::string out;
  EXPECT_FALSE(ds.feed(asBytes(bad_salt), out));
  // Truncated: the decoder waits (not at a boundary), delivering nothing.
  for (size_t cut : {size_t{1}, c.saltSize() - 1, c.saltSize() + 5, wire.size() - 1}) {
    ss::Decoder d(c);
    std::string got;
    ASSERT_TRUE(d.feed(asBytes(std::string_view(wire).substr(0, cut)), got));
    EXPECT_TRUE(got.empty());
    EXPECT_FALSE(d.atBoundary());
  }
  // Wrong password.
  ss::Decoder dw(cipher("chacha20-ietf-poly1305", "other"));
  EXPECT_FALSE(dw.feed(asBytes(wire), out));
}

TEST(ShadowsocksCodec, OversizedLengthRefused) {
  ss::Cipher c = cipher("aes-128-gcm");
  auto salt = seq(16);
  crypto::Aead a;
  ASSERT_TRUE(ss::sessionAead(c, salt, a));
  uint8_t nonce[12] = {};
  uint8_t len[2 + 16] = {0x40, 0x00};  // 0x4000: a reserved bit set
  ASSERT_TRUE(a.seal(nonce, {}, ByteView(len, 2), len));
  std::string wire(salt.begin(), salt.end());
  wire.append(reinterpret_cast<const char*>(len), sizeof len);
  ss::Decoder d(c);
  std::string out;
  EXPECT_FALSE(d.feed(asBytes(wire), out));
}

TEST(ShadowsocksCodec, Packets) {
  for (const char* m : kMethods) {
    ss::Cipher c = cipher(m);
    std::string plain;
    ASSERT_TRUE(ss::appendAddress(plain, Destination::fromHost("2001:db8::1", 53)));
    plain += "query";
    std::string pkt, back;
    ASSERT_TRUE(ss::sealPacket(c, asBytes(plain), pkt));
    EXPECT_EQ(pkt.size(), c.saltSize() + plain.size() + 16);
    ASSERT_TRUE(ss::openPacket(c, asBytes(pkt), back));
    EXPECT_EQ(back, plain);
    std::string again;
    ASSERT_TRUE(ss::sealPacket(c, asBytes(plain), again));
    EXPECT_NE(pkt, again);  // a fresh salt per datagram
    std::string bad = pkt;
    bad.back() ^= 1;
    EXPECT_FALSE(ss::openPacket(c, asBytes(bad), back));
    EXPECT_FALSE(ss::openPacket(c, asBytes(pkt.substr(0, c.saltSize() + 15)), back));
    EXPECT_FALSE(ss::openPacket(cipher(m, "x"), asBytes(pkt), back));
    ASSERT_TRUE(ss::sealPacket(c, {}, pkt));
    ASSERT_TRUE(ss::openPacket(c, asBytes(pkt), back));
    EXPECT_TRUE(back.empty());
  }
}

TEST(ShadowsocksCodec, Addresses) {
  for (const char* host : {"192.0.2.7", "2001:db8::9", "example.com"}) {
    Destination d = Destination::fromHost(host, 8443);
    std::string b;
    ASSERT_TRUE(ss::appendAddress(b, d));
    b += "tail";
    Destination back;
    size_t used = 0;
    ASSERT_TRUE(ss::parseAddress(asBytes(b), back, used));
    EXPECT_EQ(back.toString(), d.toString());
    EXPECT_EQ(b.substr(used), "tail");
    for (size_t cut = 0; cut + 4 < b.size(); ++cut) {
      EXPECT_FALSE(ss::parseAddress(asBytes(b.substr(0, cut)), back, used)) << host << cut;
    }
  }
  Destination d;
  size_t used;
  EXPECT_FALSE(ss::parseAddress(asBytes(std::string("\x05\x01\x02\x03\x04\x00\x50", 7)), d, used));
  std::string sink;
  EXPECT_FALSE(ss::appendAddress(sink, Destination::fromHost(std::string(256, 'a'), 1)));
}

TEST(ShadowsocksMethod, Validation) {
  for (const char* m : kMethods) EXPECT_TRUE(validateShadowsocksMethod(m)) << m;
  for (const char* m : {"2022-blake3-aes-128-gcm", "2022-blake3-chacha20-poly1305", "aes-256-cfb",
                        "rc4-md5", "none", "chacha20-ietf", "xchacha20-ietf-poly1305"}) {
    auto st = validateShadowsocksMethod(m);
    ASSERT_FALSE(st) << m;
    EXPECT_NE(st.error().message().find("not implemented by veer"), std::string::npos) << m;
  }
  EXPECT_FALSE(validateShadowsocksMethod("bogus"));
  EXPECT_FALSE(ss::makeCipher("aes-128-gcm", ""));
}

// ---- The client stream over an in-memory inner stream ----

class FakeStream : public conn::Stream {
 public:
  FakeStream(uv_loop_t* loop, std::shared_ptr<struct FakeState> st) : loop_(loop), st_(st) {}
  void readStart(ReadFn fn) override;
  void readStop() override;
  void write(const char* data, size_t len, DoneFn done) override;
  size_t writeQueueSize() const override { return 0; }
  void shutdown(DoneFn done) override;
  void close(bool reset) override;
  const char* kind() const override { return "fake"; }

 private:
  uv_loop_t* loop_;
  std::shared_ptr<FakeState> st_;
};

struct FakeState {
  std::vector<std::string> writes;
  conn::Stream::ReadFn on_read;
  bool reading = false, shut = false, closed = false, reset = false;
  std::shared_ptr<bool> alive = std::make_shared<bool>(true);
  void feed(const std::string& b) {
    if (on_read && reading) on_read(0, b.data(), b.size());
  }
  void end(int status) {
    if (on_read) on_read(status, nullptr, 0);
  }
};

void FakeStream::readStart(ReadFn fn) {
  st_->on_read = std::move(fn);
  st_->reading = true;
}
void FakeStream::readStop() { st_->reading = false; }
void FakeStream::write(const char* data, size_t len, DoneFn done) {
  st_->writes.emplace_back(data, len);
  if (done) {
    loop::defer(loop_, [done, a = st_->alive] {
      if (*a) done(0);
    });
  }
}
void FakeStream::shutdown(DoneFn done) {
  st_->shut = true;
  if (done) {
    loop::defer(loop_, [done, a = st_->alive] {
      if (*a) done(0);
    });
  }
}
void FakeStream::close(bool reset) {
  st_->closed = true;
  st_->reset = reset;
  *st_->alive = false;
  st_->on_read = nullptr;
  delete this;
}

class StreamTest : public ::testing::Test {
 protected:
  void SetUp() override { uv_loop_init(&loop_); }
  void TearDown() override {
    uv_run(&loop_, UV_RUN_DEFAULT);
    EXPECT_EQ(uv_loop_close(&loop_), 0);
  }
  conn::StreamPtr make(const ss::Cipher& c, ShadowsocksStreamOptions o = {}) {
    st_ = std::make_shared<FakeState>();
    o.label = "server test";
    auto s = makeShadowsocksStream(&loop_, conn::StreamPtr(new FakeStream(&loop_, st_)), c,
                                   Destination::fromHost("example.com", 443), o);
    EXPECT_TRUE(s);
    return std::move(*s);
  }
  /// The server's view of everything written so far.
  std::string serverReads(const ss::Cipher& c) {
    ss::Decoder d(c);
    std::string all, out;
    for (const auto& w : st_->writes) all += w;
    EXPECT_TRUE(d.feed(asBytes(all), out));
    EXPECT_TRUE(d.atBoundary());
    return out;
  }
  void runFor(uint64_t ms) {
    uv_timer_t t;
    uv_timer_init(&loop_, &t);
    uv_timer_start(&t, [](uv_timer_t* h) { uv_stop(h->loop); }, ms, 0);
    uv_run(&loop_, UV_RUN_DEFAULT);
    uv_close(reinterpret_cast<uv_handle_t*>(&t), nullptr);
    uv_run(&loop_, UV_RUN_NOWAIT);
  }
  uv_loop_t loop_;
  std::shared_ptr<FakeState> st_;
};

const std::string kHeader("\x03\x0b" "example.com\x01\xbb", 15);

TEST_F(StreamTest, HeaderTravelsWithFirstWrite) {
  ss::Cipher c = cipher("aes-256-gcm");
  auto s = make(c);
  EXPECT_STREQ(s->kind(), "shadowsocks");
  int done = 0;
  s->write("GET / HTTP/1.1\r\n", 16, [&](int st) {
    EXPECT_EQ(st, 0);
    ++done;
  });
  EXPECT_EQ(done, 0);  // never inside write()
  ASSERT_EQ(st_->writes.size(), 1u);  // salt, header and early data in one inner write
  s->write(std::string(70000, 'x').data(), 70000, nullptr);
  EXPECT_EQ(serverReads(c), kHeader + "GET / HTTP/1.1\r\n" + std::string(70000, 'x'));
  runFor(80);  // past the header delay: nothing more is sent
  EXPECT_EQ(done, 1);
  EXPECT_EQ(st_->writes.size(), 2u);
  int shut = 0;
  s->shutdown([&](int) { ++shut; });
  EXPECT_TRUE(st_->shut);
  runFor(1);
  EXPECT_EQ(shut, 1);
}

TEST_F(StreamTest, HeaderAloneAfterDelayOrShutdown) {
  ss::Cipher c = cipher("aes-128-gcm");
  auto s = make(c);
  runFor(10);
  EXPECT_TRUE(st_->writes.empty());
  runFor(100);
  ASSERT_EQ(st_->writes.size(), 1u);
  EXPECT_EQ(serverReads(c), kHeader);
  auto s2 = make(c);
  s2->shutdown(nullptr);
  EXPECT_EQ(serverReads(c), kHeader);
}

TEST_F(StreamTest, ReadsDecryptedReplyInAnySplit) {
  ss::Cipher c = cipher("chacha20-ietf-poly1305");
  auto s = make(c);
  std::string got;
  int eof = 0;
  s->readStart([&](int st, const char* d, size_t n) {
    if (st == 0) got.append(d, n);
    else if (st == UV_EOF) ++eof;
  });
  ss::Encoder server;
  ASSERT_TRUE(server.init(c));
  std::string wire;
  std::string reply = randomBytes(50000, 5);
  ASSERT_TRUE(server.encode(asBytes(reply), wire));
  for (size_t off = 0; off < wire.size(); off += 777) st_->feed(wire.substr(off, 777));
  EXPECT_EQ(got, reply);
  st_->end(UV_EOF);
  EXPECT_EQ(eof, 1);
  s->write("x", 1, nullptr);  // writing after the read side ended still works
}

TEST_F(StreamTest, TamperedReplyIsAReadError) {
  ss::Cipher c = cipher("aes-128-gcm");
  auto s = make(c);
  int status = 1, calls = 0;
  s->readStart([&](int st, const char*, size_t) {
    status = st;
    ++calls;
  });
  ss::Encoder server;
  ASSERT_TRUE(server.init(c));
  std::string wire;
  ASSERT_TRUE(server.encode(asBytes(std::string("hello")), wire));
  wire[wire.size() - 3] ^= 1;
  st_->feed(wire);
  EXPECT_EQ(status, UV_EPROTO);
  EXPECT_EQ(calls, 1);
  EXPECT_FALSE(st_->reading);
  st_->feed(wire);  // nothing more is delivered
  st_->end(UV_EOF);
  EXPECT_EQ(calls, 1);
}

TEST_F(StreamTest, TruncatedAndSilentEnds) {
  ss::Cipher c = cipher("aes-128-gcm");
  ss::Encoder server;
  ASSERT_TRUE(server.init(c));
  std::string wire;
  ASSERT_TRUE(server.encode(asBytes(std::string("hello")), wire));
  {
    auto s = make(c);
    int status = 1;
    s->readStart([&](int st, const char*, size_t) { status = st; });
    st_->feed(wire.substr(0, wire.size() - 1));
    st_->end(UV_EOF);
    EXPECT_EQ(status, UV_EPROTO);
  }
  {
    auto s = make(c);
    int status = 1;
    s->readStart([&](int st, const char*, size_t) { status = st; });
    st_->end(UV_EOF);  // closed before the server's salt
    EXPECT_EQ(status, UV_ECONNRESET);
  }
  {
    auto s = make(c);
    int status = 1;
    s->readStart([&](int st, const char*, size_t) { status = st; });
    st_->end(UV_ECONNRESET);  // errors pass through
    EXPECT_EQ(status, UV_ECONNRESET);
  }
}

TEST_F(StreamTest, SilentServerIsReportedNotCut) {
  ss::Cipher c = cipher("aes-128-gcm");
  ShadowsocksStreamOptions o;
  o.reply_timeout_ms = 30;
  auto s = make(c, o);
  int status = 1;
  std::string got;
  s->readStart([&](int st, const char* d, size_t n) {
    status = st;
    if (st == 0) got.append(d, n);
  });
  s->write("ping", 4, nullptr);
  runFor(80);
  // The deadline passed (a warning in the log): the connection is still open...
  EXPECT_EQ(status, 1);
  // ...and a late answer (a long poll, a slow server) still arrives.
  ss::Encoder server;
  ASSERT_TRUE(server.init(c));
  std::string wire;
  ASSERT_TRUE(server.encode(asBytes(std::string("late pong")), wire));
  st_->feed(wire);
  runFor(20);
  EXPECT_EQ(status, 0);
  EXPECT_EQ(got, "late pong");
  // An idle client (a preconnect) or a quiet server-first target is not an error: only payload
  // from the client starts the deadline.
  o.header_delay_ms = 5;
  auto s3 = make(c, o);
  status = 1;
  s3->readStart([&](int st, const char*, size_t) { status = st; });
  runFor(100);
  EXPECT_EQ(st_->writes.size(), 1u);  // the header, alone
  EXPECT_EQ(status, 1);
}

TEST_F(StreamTest, CloseInsideReadCallbackAndWithPendingDone) {
  ss::Cipher c = cipher("aes-128-gcm");
  conn::StreamPtr s = make(c);
  int done = 0;
  s->write("a", 1, [&](int) { ++done; });  // cancelled by close: never runs
  auto state = st_;
  s->readStart([&](int, const char*, size_t) { s.reset(); });
  ss::Encoder server;
  ASSERT_TRUE(server.init(c));
  std::string wire;
  ASSERT_TRUE(server.encode(asBytes(std::string("x")), wire));
  state->feed(wire);
  EXPECT_FALSE(s);
  EXPECT_TRUE(state->closed);
  runFor(10);
  EXPECT_EQ(done, 0);
}

// ---- The outbound over a fake `via` ----

class FakeVia : public Outbound {
 public:
  FakeVia() : Outbound("fake", "via") {}
  uint64_t dialTcp(const conn::InboundContext& ctx, DialCallback cb) override {
    dialed.push_back(ctx.destination.toString());
    cbs.push_back(std::move(cb));
    return cbs.size();
  }
  void cancelDial(uint64_t id) override { cancelled.push_back(id); }
  Result<PacketConn*> listenUdp(const conn::InboundContext& ctx,
                                PacketConn::ReceiveFn fn) override {
    auto* pc = new Pc;
    pc->fn = std::move(fn);
    pc->owner = this;
    udp = pc;
    return static_cast<PacketConn*>(pc);
  }
  struct Pc : PacketConn {
    void send(const Destination& dst, const char* d, size_t n) override {
      owner->sent.emplace_back(dst.toString(), std::string(d, n));
    }
    void close() override {
      owner->udp = nullptr;
      delete this;
    }
    ReceiveFn fn;
    FakeVia* owner;
  };
  std::vector<std::string> dialed;
  std::vector<DialCallback> cbs;
  std::vector<uint64_t> cancelled;
  std::vector<std::pair<std::string, std::string>> sent;
  Pc* udp = nullptr;
};

TEST_F(StreamTest, OutboundDialsTheServerAndWraps) {
  auto via = std::make_shared<FakeVia>();
  ShadowsocksOptions o{"192.0.2.1", 8388, "aes-128-gcm", "veer"};
  auto ob = makeShadowsocks("ss", &loop_, via, o);
  conn::InboundContext ctx;
  ctx.destination = Destination::fromHost("example.com", 443);
  std::string kind;
  ob->dialTcp(ctx, [&](Result<conn::StreamPtr> r) {
    ASSERT_TRUE(r);
    kind = (*r)->kind();
  });
  ASSERT_EQ(via->dialed.size(), 1u);
  EXPECT_EQ(via->dialed[0], "192.0.2.1:8388");
  st_ = std::make_shared<FakeState>();
  via->cbs[0](conn::StreamPtr(new FakeStream(&loop_, st_)));
  EXPECT_EQ(kind, "shadowsocks");
  EXPECT_TRUE(st_->closed);  // the callback dropped the stream: it closed its inner stream
  // Cancelled: the dial is cancelled at `via` and the callback never runs.
  int calls = 0;
  uint64_t id = ob->dialTcp(ctx, [&](Result<conn::StreamPtr>) { ++calls; });
  ob->cancelDial(id);
  EXPECT_EQ(via->cancelled.size(), 1u);
  runFor(5);
  EXPECT_EQ(calls, 0);
}

TEST_F(StreamTest, OutboundRefusals) {
  auto via = std::make_shared<FakeVia>();
  conn::InboundContext ctx;
  ctx.destination = Destination::fromHost("example.com", 443);
  std::vector<std::string> errors;
  auto collect = [&](Result<conn::StreamPtr> r) {
    ASSERT_FALSE(r);
    errors.push_back(r.error().message());
  };
  auto bad = makeShadowsocks("ss", &loop_, via, {"192.0.2.1", 1, "2022-blake3-aes-128-gcm", "x"});
  bad->dialTcp(ctx, collect);
  EXPECT_FALSE(bad->listenUdp(ctx, nullptr));
  ShadowsocksOptions udp_only{"192.0.2.1", 1, "aes-128-gcm", "x"};
  udp_only.tcp = false;
  auto u = makeShadowsocks("ss", &loop_, via, udp_only);
  u->dialTcp(ctx, collect);
  EXPECT_TRUE(errors.empty());  // never inside dialTcp()
  runFor(5);
  ASSERT_EQ(errors.size(), 2u);
  EXPECT_NE(errors[0].find("not implemented by veer"), std::string::npos);
  EXPECT_NE(errors[1].find("TCP is disabled"), std::string::npos);
  EXPECT_TRUE(via->dialed.empty());
}

TEST_F(StreamTest, OutboundUdpSealsAndOpens) {
  auto via = std::make_shared<FakeVia>();
  ShadowsocksOptions o{"192.0.2.1", 8388, "chacha20-ietf-poly1305", "veer"};
  auto ob = makeShadowsocks("ss", &loop_, via, o);
  std::vector<std::pair<std::string, std::string>> got;
  auto pc = ob->listenUdp({}, [&](const SocketAddress& from, const char* d, size_t n) {
    got.emplace_back(from.toString(), std::string(d, n));
  });
  ASSERT_TRUE(pc);
  (*pc)->send(Destination::fromHost("dns.example", 53), "query", 5);
  ASSERT_EQ(via->sent.size(), 1u);
  EXPECT_EQ(via->sent[0].first, "192.0.2.1:8388");
  ss::Cipher c = cipher("chacha20-ietf-poly1305");
  std::string plain;
  ASSERT_TRUE(ss::openPacket(c, asBytes(via->sent[0].second), plain));
  EXPECT_EQ(plain, std::string("\x03\x0b" "dns.example\x00\x35query", 20));
  // A reply from 198.51.100.7:53, then garbage (dropped), then a domain source (dropped).
  std::string reply, pkt;
  ASSERT_TRUE(ss::appendAddress(reply, Destination::fromHost("198.51.100.7", 53)));
  reply += "answer";
  ASSERT_TRUE(ss::sealPacket(c, asBytes(reply), pkt));
  via->udp->fn(SocketAddress(), pkt.data(), pkt.size());
  via->udp->fn(SocketAddress(), "garbage", 7);
  std::string dom;
  ASSERT_TRUE(ss::appendAddress(dom, Destination::fromHost("a.example", 53)));
  ASSERT_TRUE(ss::sealPacket(c, asBytes(dom), pkt));
  via->udp->fn(SocketAddress(), pkt.data(), pkt.size());
  ASSERT_EQ(got.size(), 1u);
  EXPECT_EQ(got[0].first, "198.51.100.7:53");
  EXPECT_EQ(got[0].second, "answer");
  (*pc)->close();
  EXPECT_EQ(via->udp, nullptr);
}

}  // namespace
}  // namespace veer::outbound
