// Drives every vector of testdata/sniff/manifest.json through the sniffer for its protocol
// (and, for recognised ones, through the dispatcher) and checks what the manifest expects.
#include <gtest/gtest.h>

#include "base/json.h"
#include "sniff/sniff.h"
#include "sniff_test_util.h"

namespace veer::sniff::test {
namespace {

using SniffFn = Status (*)(ByteView, Info&);

SniffFn sniffFor(const std::string& protocol, const std::string& transport) {
  const bool tcp = transport == "tcp";
  if (protocol == "tls") return sniffTls;
  if (protocol == "http") return sniffHttp;
  if (protocol == "dns") return tcp ? sniffDnsTcp : sniffDnsUdp;
  if (protocol == "bittorrent") return tcp ? sniffBittorrentTcp : sniffBittorrentUdp;
  if (protocol == "ssh") return sniffSsh;
  if (protocol == "rdp") return sniffRdp;
  if (protocol == "stun") return sniffStun;
  if (protocol == "dtls") return sniffDtls;
  if (protocol == "ntp") return sniffNtp;
  return nullptr;
}

std::string str(const json::Value* v) { return v && v->isString() ? v->str : std::string(); }

struct Outcome {
  Status status;
  Info info;
};

// Checks one outcome against the manifest's `expect` block.
void checkExpect(const json::Value& expect, const std::string& protocol, const Outcome& got,
                 const json::Value* derived) {
  const std::string result = str(expect.find("result"));
  const std::string domain = str(expect.find("domain"));
  const json::Value* acceptable = expect.find("acceptable");
  if (acceptable && acceptable->isArray()) {
    // Upstream implementations disagree: either a named domain or a rejection is fine, but
    // never a request for more data.
    bool ok = false;
    for (const auto& a : acceptable->items) {
      if (a.str == "error") ok = ok || got.status == Status::NoMatch;
      else ok = ok || (got.status == Status::Match && got.info.domain == a.str);
    }
    EXPECT_TRUE(ok) << "status " << got.status << " domain '" << got.info.domain << "'";
    return;
  }
  if (result == "ok") {
    ASSERT_EQ(got.status, Status::Match);
    EXPECT_EQ(got.info.protocol, protocol);
    EXPECT_EQ(got.info.domain, domain);  // empty when the manifest names none
    if (const json::Value* client = expect.find("client")) EXPECT_EQ(got.info.client, client->str);
    if (derived) {
      if (const json::Value* alpn = derived->find("alpn"); alpn && alpn->isArray()) {
        std::vector<std::string> want;
        for (const auto& a : alpn->items) want.push_back(a.str);
        EXPECT_EQ(got.info.alpn, want);
      }
    }
  } else if (result == "need_more_data") {
    EXPECT_EQ(got.status, Status::NeedMore);
    EXPECT_TRUE(got.info.domain.empty());
  } else if (result == "error" || result == "response") {
    EXPECT_EQ(got.status, Status::NoMatch);
  } else if (result == "no_sni" || result == "no_host") {
    // A valid message of the protocol without a name: recognised, no domain (sing-box).
    EXPECT_EQ(got.status, Status::Match);
    EXPECT_EQ(got.info.protocol, protocol);
    EXPECT_TRUE(got.info.domain.empty());
  } else if (result == "need_more_data_or_error") {
    EXPECT_NE(got.status, Status::Match);
  } else if (result == "implementation_defined") {
    // veer follows sing-box (Go's net/http request parser) where the manifest records it.
    const json::Value* go = expect.find("go_net_http");
    ASSERT_NE(go, nullptr) << "no sing-box/Go expectation recorded";
    EXPECT_EQ(got.status, Status::Match);
    EXPECT_EQ(got.info.domain, go->str);
  } else {
    ADD_FAILURE() << "unknown expectation " << result;
  }
}

TEST(SniffManifest, EveryVectorMeetsItsExpectation) {
  REQUIRE_TESTDATA(dir);
  const std::string base = dir + "/sniff/";
  auto text = veer::test::readFile(base + "manifest.json");
  ASSERT_TRUE(text);
  auto doc = json::parse(*text, "manifest.json");
  ASSERT_TRUE(doc) << doc.error().message();
  const json::Value* vectors = doc->find("vectors");
  ASSERT_TRUE(vectors && vectors->isArray());
  size_t checked = 0;
  for (const json::Value& v : vectors->items) {
    const std::string id = str(v.find("id"));
    const std::string protocol = str(v.find("protocol"));
    const std::string transport = str(v.find("transport"));
    const json::Value& expect = *v.find("expect");
    const json::Value* derived = v.find("derived");
    SCOPED_TRACE(id);
    auto chunks = readChunks(base + str(v.find("file")));
    ASSERT_TRUE(chunks);
    ASSERT_EQ(chunks->size(), v.find("chunks")->u);
    const std::string result = str(expect.find("result"));

    Outcome got{Status::NoMatch, {}};
    if (protocol == "quic") {
      // One session: every datagram but the last must ask for more when the manifest says the
      // ClientHello is split, which needs the state kept across datagrams.
      const json::Value* before = expect.find("need_more_data_before_last");
      const bool splitExpected = before && before->b;
      QuicSniffer quic;
      PacketSniffer packet;
      for (size_t i = 0; i < chunks->size(); ++i) {
        Info info, pinfo;
        Status st = quic.feed((*chunks)[i], info);
        Status pst = packet.feed((*chunks)[i], pinfo);
        if (i + 1 < chunks->size()) {
          if (splitExpected) {
            EXPECT_EQ(st, Status::NeedMore) << "datagram " << i;
            EXPECT_EQ(info.protocol, "quic");
            EXPECT_EQ(pst, Status::NeedMore) << "dispatcher, datagram " << i;
          }
        } else {
          got = {st, info};
          if (result == "ok") {
            EXPECT_EQ(pst, Status::Match) << "dispatcher";
            EXPECT_EQ(pinfo.protocol, "quic");
            EXPECT_EQ(pinfo.domain, info.domain);
          }
        }
      }
    } else {
      SniffFn fn = sniffFor(protocol, transport);
      ASSERT_NE(fn, nullptr) << "no sniffer for " << protocol;
      Bytes all = concat(*chunks);
      got.status = fn(all, got.info);
      if (result == "ok" && !expect.find("acceptable")) {
        Info d;
        Status ds;
        if (transport == "tcp") {
          ds = sniffStream(all, {}, d);
        } else {
          PacketSniffer ps;
          ds = ps.feed(all, d);
        }
        EXPECT_EQ(ds, Status::Match) << "dispatcher";
        EXPECT_EQ(d.protocol, protocol) << "dispatcher";
      }
    }
    checkExpect(expect, protocol, got, derived);
    ++checked;
  }
  EXPECT_EQ(checked, 114u);
}

}  // namespace
}  // namespace veer::sniff::test
