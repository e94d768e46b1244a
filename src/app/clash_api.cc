#include "app/clash_api.h"

#include <rapidjson/document.h>
#include <rapidjson/stringbuffer.h>
#include <rapidjson/writer.h>

#include <cstdlib>
#include <cstring>

#include "base/log.h"
#include "inbound/http_codec.h"
#include "loop/uv_util.h"

#ifndef VEER_VERSION
#define VEER_VERSION "0.0.0"
#endif

namespace veer::app {
namespace {

constexpr size_t kMaxBody = 64 * 1024;
constexpr uint64_t kRequestTimeoutMs = 10000;

using Writer = rapidjson::Writer<rapidjson::StringBuffer>;

std::string statusText(int code) {
  switch (code) {
    case 200: return "OK";
    case 204: return "No Content";
    case 400: return "Bad Request";
    case 401: return "Unauthorized";
    case 404: return "Not Found";
    case 405: return "Method Not Allowed";
    case 413: return "Payload Too Large";
    default: return "Error";
  }
}

std::string response(int code, const std::string& body) {
  std::string r = "HTTP/1.1 " + std::to_string(code) + " " + statusText(code) + "\r\n";
  r += "Access-Control-Allow-Origin: *\r\n"
       "Access-Control-Allow-Methods: GET, PUT, PATCH, DELETE, OPTIONS\r\n"
       "Access-Control-Allow-Headers: Content-Type, Authorization\r\n"
       "Connection: close\r\n";
  if (code != 204) {
    r += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) +
         "\r\n";
  }
  r += "\r\n";
  if (code != 204) r += body;
  return r;
}

std::string message(int code, const std::string& text) {
  rapidjson::StringBuffer sb;
  Writer w(sb);
  w.StartObject();
  w.Key("message");
  w.String(text.c_str(), static_cast<rapidjson::SizeType>(text.size()));
  w.EndObject();
  return response(code, sb.GetString());
}

void str(Writer& w, const std::string& s) {
  w.String(s.c_str(), static_cast<rapidjson::SizeType>(s.size()));
}

// Clash's names for outbound types.
std::string clashType(const std::string& t) {
  if (t == "direct") return "Direct";
  if (t == "block") return "Reject";
  if (t == "socks") return "Socks5";
  if (t == "http") return "Http";
  if (t == "shadowsocks") return "Shadowsocks";
  if (t == "trojan") return "Trojan";
  if (t == "selector") return "Selector";
  if (t == "urltest") return "URLTest";
  return t;
}

std::string urlDecode(const std::string& s) {
  std::string out;
  for (size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '%' && i + 2 < s.size()) {
      out += static_cast<char>(std::strtol(s.substr(i + 1, 2).c_str(), nullptr, 16));
      i += 2;
    } else {
      out += s[i];
    }
  }
  return out;
}

}  // namespace

// One client connection: read one request, answer, close.
class ClashApi::Session {
 public:
  Session(ClashApi* api, uv_tcp_t* tcp) : api_(api), tcp_(tcp) {
    api_->sessions_.insert(this);
    tcp_->data = this;
    uv_timer_init(api->loop_, &timer_);
    timer_.data = this;
    uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<Session*>(t->data)->close(); },
                   kRequestTimeoutMs, 0);
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(tcp_),
        [](uv_handle_t* h, size_t, uv_buf_t* b) {
          auto* s = static_cast<Session*>(h->data);
          b->base = s->scratch_;
          b->len = sizeof(s->scratch_);
        },
        [](uv_stream_t* st, ssize_t n, const uv_buf_t* b) {
          auto* s = static_cast<Session*>(st->data);
          if (n < 0) {
            s->close();
            return;
          }
          s->buf_.append(b->base, static_cast<size_t>(n));
          s->process();
        });
  }

 private:
  friend class ClashApi;
  void process() {
    inbound::http::RequestHead head;
    std::string why;
    auto p = inbound::http::parseRequestHead(asBytes(buf_), head, why);
    if (p == inbound::http::Parse::NeedMore) {
      if (buf_.size() > inbound::http::kMaxHeadSize) answer(message(400, "request head too large"));
      return;
    }
    if (p == inbound::http::Parse::Bad) {
      answer(message(400, why));
      return;
    }
    size_t body_len = 0;
    if (const std::string* cl = head.header("Content-Length")) {
      body_len = static_cast<size_t>(std::strtoull(cl->c_str(), nullptr, 10));
    }
    if (body_len > kMaxBody) {
      answer(message(413, "body too large"));
      return;
    }
    if (buf_.size() < head.head_len + body_len) return;
    std::string body = buf_.substr(head.head_len, body_len);
    if (api_ == nullptr) return;
    answer(api_->handle(head.method, head.target, head.header("Authorization"), body));
  }

  void answer(std::string resp) {
    if (answered_) return;
    answered_ = true;
    uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_));
    out_ = std::move(resp);
    write_.data = this;
    uv_buf_t b = uv_buf_init(out_.data(), static_cast<unsigned>(out_.size()));
    if (uv_write(&write_, reinterpret_cast<uv_stream_t*>(tcp_), &b, 1,
                 [](uv_write_t* w, int) { static_cast<Session*>(w->data)->close(); }) != 0) {
      close();
    }
  }

  /// Also called by ~ClashApi for the sessions still open.
  void close() {
    if (closing_) return;
    closing_ = true;
    if (api_ != nullptr) api_->sessions_.erase(this);
    api_ = nullptr;
    pending_ = 2;
    auto done = [](uv_handle_t* h) {
      auto* s = static_cast<Session*>(h->data);
      if (--s->pending_ == 0) delete s;
    };
    loop::closeHandle(&timer_, done);
    loop::closeHandle(reinterpret_cast<uv_handle_t*>(tcp_), [](uv_handle_t* h) {
      auto* s = static_cast<Session*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
      if (--s->pending_ == 0) delete s;
    });
  }

  ClashApi* api_;
  uv_tcp_t* tcp_;
  uv_timer_t timer_{};
  uv_write_t write_{};
  char scratch_[4096];
  std::string buf_, out_;
  int pending_ = 0;
  bool answered_ = false, closing_ = false;
};

ClashApi::ClashApi(uv_loop_t* loop, std::string secret, route::Router* router, ConfigFn config)
    : loop_(loop), secret_(std::move(secret)), router_(router), config_(std::move(config)) {}

ClashApi::~ClashApi() {
  auto open = sessions_;
  for (Session* s : open) s->close();
  if (listener_ != nullptr) {
    loop::closeHandle(listener_, [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
  }
}

Result<std::unique_ptr<ClashApi>> ClashApi::start(uv_loop_t* loop, const std::string& controller,
                                                  std::string secret, route::Router* router,
                                                  ConfigFn config) {
  std::string text = controller;
  if (!text.empty() && text[0] == ':') text = "0.0.0.0" + text;
  auto sa = SocketAddress::parse(text);
  if (!sa) {
    return unexpected(Error("clash_api: external_controller \"" + controller +
                            "\" is not an address:port"));
  }
  std::unique_ptr<ClashApi> api(new ClashApi(loop, std::move(secret), router, std::move(config)));
  api->listener_ = new uv_tcp_t;
  uv_tcp_init(loop, api->listener_);
  api->listener_->data = api.get();
  int rc = uv_tcp_bind(api->listener_, sa->sa(), 0);
  if (rc == 0) {
    rc = uv_listen(reinterpret_cast<uv_stream_t*>(api->listener_), 64,
                   [](uv_stream_t* s, int status) {
                     if (status != 0) return;
                     auto* self = static_cast<ClashApi*>(s->data);
                     auto* c = new uv_tcp_t;
                     uv_tcp_init(s->loop, c);
                     if (uv_accept(s, reinterpret_cast<uv_stream_t*>(c)) != 0) {
                       loop::closeHandle(c, [](uv_handle_t* h) {
                         delete reinterpret_cast<uv_tcp_t*>(h);
                       });
                       return;
                     }
                     new Session(self, c);
                   });
  }
  if (rc != 0) {
    return unexpected(Error("clash_api: listen on " + controller + ": " + uv_strerror(rc), rc));
  }
  sockaddr_storage ss{};
  int len = sizeof(ss);
  uv_tcp_getsockname(api->listener_, reinterpret_cast<sockaddr*>(&ss), &len);
  if (auto bound = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss))) {
    api->address_ = bound->toString();
  }
  return api;
}

std::string ClashApi::handle(const std::string& method, const std::string& target,
                             const std::string* auth, const std::string& body) {
  if (method == "OPTIONS") return response(204, "");
  if (!secret_.empty() && (auth == nullptr || *auth != "Bearer " + secret_)) {
    return message(401, "Unauthorized");
  }
  std::string path = target.substr(0, target.find('?'));
  while (path.size() > 1 && path.back() == '/') path.pop_back();
  const auto& st = router_->state();
  rapidjson::StringBuffer sb;
  Writer w(sb);

  auto proxy = [&](const std::string& tag) {
    outbound::Outbound* ob = st->find(tag);
    w.StartObject();
    w.Key("name");
    str(w, tag);
    w.Key("type");
    str(w, clashType(ob ? ob->type() : ""));
    w.Key("udp");
    w.Bool(true);
    w.Key("history");
    w.StartArray();
    w.EndArray();
    auto sit = st->selectors.find(tag);
    auto uit = st->urltests.find(tag);
    if (sit != st->selectors.end() || uit != st->urltests.end()) {
      std::vector<std::string> members =
          sit != st->selectors.end() ? sit->second->members() : uit->second->members();
      w.Key("now");
      str(w, sit != st->selectors.end() ? sit->second->selected() : uit->second->selected());
      w.Key("all");
      w.StartArray();
      for (const auto& m : members) str(w, m);
      w.EndArray();
      if (uit != st->urltests.end()) {
        w.Key("delays");
        w.StartObject();
        for (const auto& m : members) {
          w.Key(m.c_str(), static_cast<rapidjson::SizeType>(m.size()));
          w.Int64(uit->second->delayOf(m));
        }
        w.EndObject();
      }
    }
    w.EndObject();
  };

  if (path == "/" && method == "GET") {
    return response(200, R"({"hello":"clash"})");
  }
  if (path == "/version" && method == "GET") {
    return response(200, R"({"version":"veer )" VEER_VERSION R"(","premium":false,"meta":false})");
  }
  if (path == "/proxies" && method == "GET") {
    w.StartObject();
    w.Key("proxies");
    w.StartObject();
    for (const auto& [tag, ob] : st->outbounds) {
      w.Key(tag.c_str(), static_cast<rapidjson::SizeType>(tag.size()));
      proxy(tag);
    }
    w.EndObject();
    w.EndObject();
    return response(200, sb.GetString());
  }
  if (path.rfind("/proxies/", 0) == 0) {
    std::string name = urlDecode(path.substr(9));
    if (st->find(name) == nullptr) return message(404, "proxy \"" + name + "\" not found");
    if (method == "GET") {
      proxy(name);
      return response(200, sb.GetString());
    }
    if (method == "PUT" || method == "PATCH") {
      auto sit = st->selectors.find(name);
      if (sit == st->selectors.end()) {
        return message(400, "\"" + name + "\" is not a selector");
      }
      rapidjson::Document doc;
      doc.Parse(body.c_str(), body.size());
      if (doc.HasParseError() || !doc.IsObject() || !doc.HasMember("name") ||
          !doc["name"].IsString()) {
        return message(400, "expected {\"name\": \"<member>\"}");
      }
      std::string member = doc["name"].GetString();
      std::string before = sit->second->selected();
      Status s = sit->second->select(member);
      if (!s) return message(400, s.error().message());
      if (before != member) {
        LOG_INFO("clash_api: selector %s switched from %s to %s", name.c_str(), before.c_str(),
                 member.c_str());
        auto it = st->interrupt_on_switch.find(name);
        if (it != st->interrupt_on_switch.end() && it->second) {
          size_t n = router_->tracker().closeIf(
              [&](const conn::InboundContext& c) { return c.outbound == name; },
              "selector switched");
          LOG_INFO("clash_api: closed %zu connection(s) of %s", n, name.c_str());
        }
      }
      return response(204, "");
    }
    return message(405, "method not allowed");
  }
  if (path == "/connections") {
    if (method == "DELETE") {
      router_->closeAll("closed by the control API");
      return response(204, "");
    }
    if (method != "GET") return message(405, "method not allowed");
    uint64_t up_total = 0, down_total = 0;
    w.StartObject();
    w.Key("connections");
    w.StartArray();
    for (const auto& t : router_->tracker().list()) {
      up_total += t.up;
      down_total += t.down;
      const auto& c = t.ctx;
      w.StartObject();
      w.Key("id");
      str(w, std::to_string(c.id));
      w.Key("metadata");
      w.StartObject();
      w.Key("network");
      str(w, c.network);
      w.Key("type");
      str(w, c.inbound_type + "/" + c.inbound_tag);
      w.Key("sourceIP");
      str(w, c.source.ip().toString());
      w.Key("sourcePort");
      str(w, std::to_string(c.source.port()));
      w.Key("destinationIP");
      str(w, c.destination.isDomain() ? "" : c.destination.ip.toString());
      w.Key("destinationPort");
      str(w, std::to_string(c.destination.port));
      w.Key("host");
      str(w, c.destination.isDomain() ? c.destination.domain : c.sniffed_domain);
      w.Key("protocol");
      str(w, c.protocol);
      w.EndObject();
      w.Key("upload");
      w.Uint64(t.up);
      w.Key("download");
      w.Uint64(t.down);
      w.Key("startMs");
      w.Uint64(c.start_ms);
      w.Key("chains");
      w.StartArray();
      str(w, c.outbound);
      w.EndArray();
      w.Key("rule");
      str(w, c.rule);
      w.EndObject();
    }
    w.EndArray();
    w.Key("uploadTotal");
    w.Uint64(up_total);
    w.Key("downloadTotal");
    w.Uint64(down_total);
    w.EndObject();
    return response(200, sb.GetString());
  }
  if (path.rfind("/connections/", 0) == 0 && method == "DELETE") {
    uint64_t id = std::strtoull(path.c_str() + 13, nullptr, 10);
    if (!router_->tracker().close(id, "closed by the control API")) {
      return message(404, "no connection " + path.substr(13));
    }
    return response(204, "");
  }
  return message(404, "not found");
}

}  // namespace veer::app
