// HTTP CONNECT client outbound (sing-box protocol/http/outbound.go, without TLS): one request
// write, the response head read without consuming a byte past it; 200 is success.
#include <cstdlib>

#include "outbound/handshake.h"
#include "outbound/outbound.h"

namespace veer::outbound {

namespace {

std::string base64(const std::string& in) {
  static const char* t = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  std::string out;
  size_t i = 0;
  for (; i + 2 < in.size(); i += 3) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8 |
                 static_cast<uint8_t>(in[i + 2]);
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += t[v & 63];
  }
  if (i + 1 == in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += "==";
  } else if (i + 2 == in.size()) {
    uint32_t v = static_cast<uint8_t>(in[i]) << 16 | static_cast<uint8_t>(in[i + 1]) << 8;
    out += t[v >> 18];
    out += t[(v >> 12) & 63];
    out += t[(v >> 6) & 63];
    out += '=';
  }
  return out;
}

constexpr size_t kMaxHead = 16 * 1024;

// How many more bytes certainly belong to the head: the terminator \r\n\r\n is not complete yet.
size_t headNeed(const std::string& b) {
  size_t n = b.size();
  auto ends = [&](const char* s, size_t len) {
    return n >= len && b.compare(n - len, len, s) == 0;
  };
  if (ends("\r\n\r\n", 4)) return 0;
  if (ends("\r\n\r", 3)) return 1;
  if (ends("\r\n", 2)) return 2;
  if (ends("\r", 1)) return 3;
  return 4;
}

void readHead(Handshake* hs, std::function<void(const std::string&)> done) {
  if (hs->buffer().size() >= 5 && hs->buffer().compare(0, 5, "HTTP/") != 0) {
    return hs->fail("bad HTTP proxy response (not an HTTP proxy?)");
  }
  size_t need = headNeed(hs->buffer());
  if (need == 0) return done(hs->buffer());
  if (hs->buffer().size() > kMaxHead) return hs->fail("HTTP proxy response head too large");
  hs->readUntil(hs->buffer().size() + need, [hs, done] { readHead(hs, done); });
}

class HttpOutbound : public ProxyOutbound {
 public:
  HttpOutbound(std::string tag, uv_loop_t* loop, SharedOutbound via, const HttpOptions& o)
      : ProxyOutbound("http", std::move(tag), loop, std::move(via), o.server, o.server_port),
        o_(o) {}

  Result<PacketConn*> listenUdp(const conn::InboundContext&, PacketConn::ReceiveFn) override {
    return unexpected(Error("http outbound does not support UDP"));
  }

 protected:
  void runHandshake(Handshake* hs, const conn::InboundContext& ctx) override {
    std::string authority = ctx.destination.toString();
    std::string req = "CONNECT " + authority + " HTTP/1.1\r\nHost: " + authority + "\r\n";
    if (!o_.username.empty() || !o_.password.empty()) {
      req += "Proxy-Authorization: Basic " + base64(o_.username + ":" + o_.password) + "\r\n";
    }
    for (const auto& [k, v] : o_.headers) req += k + ": " + v + "\r\n";
    req += "\r\n";
    hs->write(std::move(req));
    readHead(hs, [hs](const std::string& head) {
      std::string line = head.substr(0, head.find("\r\n"));
      // "HTTP/1.1 200 Connection established"
      if (line.size() < 12 || line.compare(0, 5, "HTTP/") != 0) {
        return hs->fail("bad HTTP proxy response (not an HTTP proxy?)");
      }
      size_t sp = line.find(' ');
      int status = sp == std::string::npos ? 0 : std::atoi(line.c_str() + sp + 1);
      if (status != 200) return hs->fail("HTTP proxy refused CONNECT: \"" + line + "\"");
      hs->succeed();
    });
  }

 private:
  HttpOptions o_;
};

}  // namespace

OutboundPtr makeHttp(std::string tag, uv_loop_t* loop, SharedOutbound via,
                     const HttpOptions& opts) {
  return std::make_unique<HttpOutbound>(std::move(tag), loop, std::move(via), opts);
}

}  // namespace veer::outbound
