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

// Reads the response head; `done` gets it and its length (bytes after it belong to the tunnel).
void readHead(Handshake* hs, std::function<void(const std::string&, size_t)> done) {
  const std::string& b = hs->buffer();
  if (b.size() >= 5 && b.compare(0, 5, "HTTP/") != 0) {
    return hs->fail("bad HTTP proxy response (not an HTTP proxy?)");
  }
  size_t end = b.find("\r\n\r\n");
  if (end != std::string::npos && end + 4 <= kMaxHead) return done(b.substr(0, end + 4), end + 4);
  if (b.size() > kMaxHead) return hs->fail("HTTP proxy response head too large");
  hs->readUntil(b.size() + 1, [hs, done] { readHead(hs, done); });
}

class HttpOutbound : public ProxyOutbound {
 public:
  HttpOutbound(std::string tag, uv_loop_t* loop, SharedOutbound via, const HttpOptions& o)
      : ProxyOutbound("http", std::move(tag), loop, std::move(via), o.server, o.server_port,
                      o.tls),
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
    readHead(hs, [hs](const std::string& head, size_t head_len) {
      std::string line = head.substr(0, head.find("\r\n"));
      // "HTTP/1.1 200 Connection established"
      if (line.size() < 12 || line.compare(0, 5, "HTTP/") != 0) {
        return hs->fail("bad HTTP proxy response (not an HTTP proxy?)");
      }
      size_t sp = line.find(' ');
      int status = sp == std::string::npos ? 0 : std::atoi(line.c_str() + sp + 1);
      if (status != 200) return hs->fail("HTTP proxy refused CONNECT: \"" + line + "\"");
      hs->succeed(head_len);
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
