#include "inbound/http_forward.h"

#include "base/log.h"
#include "conn/tracker.h"
#include "inbound/http_codec.h"
#include "loop/buffer_pool.h"
#include "loop/uv_util.h"

namespace veer::inbound {

namespace {

constexpr size_t kHighWater = 256 * 1024;

class Session {
 public:
  Session(uv_loop_t* loop, conn::ConnectionHandler* handler, std::string tag, uv_tcp_t* client,
          std::string buffered, std::string user)
      : loop_(loop), handler_(handler), tag_(std::move(tag)), client_(client),
        cbuf_(std::move(buffered)), user_(std::move(user)) {
    client_->data = this;
    sockaddr_storage ss{};
    int len = sizeof(ss);
    if (uv_tcp_getpeername(client_, reinterpret_cast<sockaddr*>(&ss), &len) == 0) {
      if (auto sa = SocketAddress::fromSockaddr(reinterpret_cast<sockaddr*>(&ss))) source_ = *sa;
    }
  }

  void start() {
    readClient(true);
    processClient();
  }

 private:
  enum class Phase { Head, Dialing, Exchange, Closing };

  struct Write {
    uv_write_t req;
    std::string data;
    Session* s;
    bool to_client;
  };

  // ---- client side ----
  void readClient(bool on) {
    if (client_ == nullptr || on == client_reading_) return;
    client_reading_ = on;
    if (!on) {
      uv_read_stop(reinterpret_cast<uv_stream_t*>(client_));
      return;
    }
    uv_read_start(
        reinterpret_cast<uv_stream_t*>(client_),
        [](uv_handle_t*, size_t, uv_buf_t* buf) {
          buf->base = loop::BufferPool::local().acquire(16384);
          buf->len = 16384;
        },
        [](uv_stream_t* s, ssize_t n, const uv_buf_t* buf) {
          auto* self = static_cast<Session*>(s->data);
          if (n > 0) self->cbuf_.append(buf->base, static_cast<size_t>(n));
          if (buf->base) loop::BufferPool::local().release(buf->base, buf->len);
          if (n < 0) {
            self->onClientEnd(static_cast<int>(n));
            return;
          }
          if (n > 0) self->processClient();
        });
  }

  void onClientEnd(int status) {
    client_eof_ = true;
    readClient(false);
    if (phase_ == Phase::Head && cbuf_.empty()) {
      close(status == UV_EOF ? "client closed" : uv_strerror(status));
      return;
    }
    if (phase_ == Phase::Exchange && req_.done()) return;  // let the response finish
    close(status == UV_EOF ? "client closed mid-request" : uv_strerror(status));
  }

  void processClient() {
    if (phase_ == Phase::Head) {
      http::RequestHead head;
      std::string why;
      auto p = http::parseRequestHead(asBytes(cbuf_), head, why);
      if (p == http::Parse::NeedMore) {
        if (client_eof_) close("client closed");
        return;
      }
      if (p == http::Parse::Bad) {
        replyAndClose(http::simpleResponse(400, "Bad Request", why + "\n"), "http: " + why);
        return;
      }
      std::string origin;
      auto dst = http::proxyDestination(head, origin, why);
      if (!dst || head.method == "CONNECT") {
        replyAndClose(http::simpleResponse(400, "Bad Request",
                                           (dst ? "CONNECT after a plain request" : why) + "\n"),
                      "http: " + why);
        return;
      }
      bool ok = true;
      req_ = http::BodyFramer::forRequest(head, why, ok);
      if (!ok) {
        replyAndClose(http::simpleResponse(400, "Bad Request", why + "\n"), "http: " + why);
        return;
      }
      method_ = head.method;
      {
        // Clients speak to the proxy with Proxy-Connection when they send it at all.
        const std::string* pc = head.header("Proxy-Connection");
        client_keep_alive_ = http::keepAlive(head.version, pc ? pc : head.header("Connection"));
      }
      pending_head_ = http::rewriteForOrigin(head, origin, *dst);
      cbuf_.erase(0, head.head_len);
      resp_head_done_ = false;
      resp_ = http::BodyFramer();
      rbuf_.clear();
      ++requests_;
      if (upstream_ && dst->toString() == upstream_dst_.toString()) {
        phase_ = Phase::Exchange;
        reused_ = true;
        LOG_DEBUG("[http/%s] reusing upstream %s", tag_.c_str(), upstream_dst_.toString().c_str());
        sendHeadAndBody();
        return;
      }
      closeUpstream();
      phase_ = Phase::Dialing;
      readClient(false);
      conn::InboundContext ctx;
      ctx.id = handler_->nextConnectionId();
      ctx.inbound_tag = tag_;
      ctx.inbound_type = "mixed";
      ctx.network = "tcp";
      ctx.source = source_;
      ctx.destination = *dst;
      ctx.user = user_;
      ctx.protocol = "http";
      ctx.sniffed_domain = dst->isDomain() ? dst->domain : "";
      Destination want = *dst;
      dial_id_ = handler_->dialTcp(ctx, [this, want](Result<conn::StreamPtr> r, conn::DialFailure f) {
        dial_id_ = 0;
        if (!r) {
          int code = f == conn::DialFailure::Blocked   ? 403
                     : f == conn::DialFailure::Timeout ? 504
                                                       : 502;
          const char* reason = code == 403 ? "Forbidden" : code == 504 ? "Gateway Timeout"
                                                                       : "Bad Gateway";
          replyAndClose(http::simpleResponse(code, reason, r.error().message() + "\n"),
                        r.error().message());
          return;
        }
        upstream_ = std::move(*r);
        upstream_dst_ = want;
        phase_ = Phase::Exchange;
        readUpstream(true);
        readClient(true);
        sendHeadAndBody();
      });
      return;
    }
    if (phase_ == Phase::Exchange) {
      forwardBody();
    }
    // In Dialing, bytes wait in cbuf_ (reading is stopped while dialing).
  }

  void sendHeadAndBody() {
    writeUpstream(std::move(pending_head_));
    pending_head_.clear();
    forwardBody();
  }

  void forwardBody() {
    if (req_.done()) {
      // The next request waits until this response is complete; bound what we buffer.
      if (cbuf_.size() > http::kMaxHeadSize) readClient(false);
      return;
    }
    if (cbuf_.empty()) return;
    long n = req_.consume(asBytes(cbuf_));
    if (n < 0) {
      close("http: malformed chunked request body");
      return;
    }
    writeUpstream(cbuf_.substr(0, static_cast<size_t>(n)));
    cbuf_.erase(0, static_cast<size_t>(n));
  }

  // ---- upstream side ----
  void readUpstream(bool on) {
    if (!upstream_ || on == upstream_reading_) return;
    upstream_reading_ = on;
    if (!on) {
      upstream_->readStop();
      return;
    }
    // The stream calls nothing after it is closed, and the session closes it before it is
    // freed, so `this` outlives every callback.
    upstream_->readStart([this](int status, const char* data, size_t n) {
      if (status == 0) {
        onUpstreamData(data, n);
      } else {
        upstream_reading_ = false;
        onUpstreamEnd(status);
      }
    });
  }

  void onUpstreamData(const char* data, size_t n) {
    if (phase_ != Phase::Exchange) return;
    rbuf_.append(data, n);
    while (!rbuf_.empty() && phase_ == Phase::Exchange) {
      if (!resp_head_done_) {
        http::ResponseHead head;
        std::string why;
        auto p = http::parseResponseHead(asBytes(rbuf_), head, why);
        if (p == http::Parse::NeedMore) return;
        if (p == http::Parse::Bad) {
          replyAndClose(http::simpleResponse(502, "Bad Gateway", why + "\n"), "upstream: " + why);
          return;
        }
        writeClient(rbuf_.substr(0, head.head_len));
        rbuf_.erase(0, head.head_len);
        if (head.status / 100 == 1 && head.status != 101) continue;  // interim response
        bool ok = true;
        resp_ = http::BodyFramer::forResponse(head, method_, why, ok);
        if (!ok) {
          close("upstream: " + why);
          return;
        }
        upstream_keep_alive_ = http::keepAlive(head.version, head.header("Connection"));
        resp_head_done_ = true;
        if (head.status == 101) {
          resp_ = http::BodyFramer::forResponse(http::ResponseHead{}, "", why, ok);
          close("protocol upgrade is not supported through a plain proxy request");
          return;
        }
      }
      long used = resp_.consume(asBytes(rbuf_));
      if (used < 0) {
        close("upstream: malformed chunked response");
        return;
      }
      writeClient(rbuf_.substr(0, static_cast<size_t>(used)));
      rbuf_.erase(0, static_cast<size_t>(used));
      if (resp_.done()) {
        responseComplete();
        return;
      }
    }
    if (resp_head_done_ && resp_.done()) responseComplete();
  }

  void responseComplete() {
    if (!req_.done()) {
      // The server answered before the body was complete: nothing sane can follow.
      close("response before request body finished");
      return;
    }
    if (!client_keep_alive_ || client_eof_) {
      closeAfterFlush("done");
      return;
    }
    if (!upstream_keep_alive_) closeUpstream();
    rbuf_.clear();
    phase_ = Phase::Head;
    readClient(true);
    if (!cbuf_.empty()) processClient();
  }

  void onUpstreamEnd(int status) {
    readUpstream(false);
    if (phase_ == Phase::Exchange && resp_head_done_ &&
        resp_.kind() == http::BodyFramer::Kind::UntilClose) {
      closeAfterFlush("done");
      return;
    }
    if (phase_ == Phase::Exchange && !resp_head_done_ && rbuf_.empty() && requests_ > 1 &&
        reused_) {
      close("upstream closed a reused connection");
      return;
    }
    if (phase_ == Phase::Exchange && !resp_head_done_) {
      replyAndClose(http::simpleResponse(502, "Bad Gateway", "upstream closed\n"),
                    "upstream closed before responding");
      return;
    }
    if (phase_ == Phase::Head) {
      closeUpstream();
      return;
    }
    close(status == UV_EOF ? "upstream closed" : uv_strerror(status));
  }

  // ---- writes ----
  void writeClient(std::string data) { write(client_, std::move(data), true); }
  void writeUpstream(std::string data) {
    if (!upstream_ || data.empty()) return;
    up_ += data.size();
    upstream_->write(data.data(), data.size(), [this](int status) { onWriteDone(false, status); });
    if (upstream_->writeQueueSize() > kHighWater) readClient(false);
  }

  void write(uv_tcp_t* h, std::string data, bool to_client) {
    if (h == nullptr || data.empty()) return;
    auto* w = new Write{{}, std::move(data), this, to_client};
    w->req.data = w;
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    ++writes_;
    down_ += w->data.size();
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(h), &b, 1,
                      [](uv_write_t* req, int status) {
                        auto* ww = static_cast<Write*>(req->data);
                        Session* s = ww->s;
                        bool tc = ww->to_client;
                        delete ww;
                        --s->writes_;
                        s->onWriteDone(tc, status);
                      });
    if (rc != 0) {
      --writes_;
      delete w;
      close(uv_strerror(rc));
      return;
    }
    // Backpressure: a slow side stops reads from the other.
    size_t q = uv_stream_get_write_queue_size(reinterpret_cast<uv_stream_t*>(h));
    if (q > kHighWater) {
      if (to_client) {
        readUpstream(false);
      } else {
        readClient(false);
      }
    }
  }

  void onWriteDone(bool to_client, int status) {
    if (phase_ == Phase::Closing) {
      maybeFree();
      return;
    }
    if (status != 0) {
      close(uv_strerror(status));
      return;
    }
    size_t q = to_client ? (client_ ? uv_stream_get_write_queue_size(
                                          reinterpret_cast<uv_stream_t*>(client_))
                                    : kHighWater)
                         : (upstream_ ? upstream_->writeQueueSize() : kHighWater);
    if (q < kHighWater / 4) {
      if (to_client && phase_ == Phase::Exchange) readUpstream(true);
      if (!to_client && phase_ == Phase::Exchange && !client_eof_) readClient(true);
    }
    if (close_after_flush_ && writes_ == 0) close(close_reason_);
  }

  // ---- teardown ----
  void replyAndClose(std::string response, const std::string& why) {
    LOG_DEBUG("[http/%s] %s", tag_.c_str(), why.c_str());
    closeUpstream();
    if (client_ == nullptr) {
      close(why);
      return;
    }
    writeClient(std::move(response));
    closeAfterFlush(why);
  }

  void closeAfterFlush(const std::string& why) {
    readClient(false);
    readUpstream(false);
    close_after_flush_ = true;
    close_reason_ = why;
    if (writes_ == 0) close(why);
  }

  void closeUpstream() {
    upstream_.reset();
    upstream_reading_ = false;
  }

  void close(const std::string& why) {
    if (phase_ == Phase::Closing) return;
    phase_ = Phase::Closing;
    LOG_INFO("[http/%s] %s: %d request(s), up %llu B, down %llu B, %s", tag_.c_str(),
             source_.toString().c_str(), requests_, static_cast<unsigned long long>(up_),
             static_cast<unsigned long long>(down_), why.c_str());
    if (dial_id_) {
      handler_->cancelDial(dial_id_);
      dial_id_ = 0;
    }
    closeUpstream();
    if (client_ != nullptr) {
      uv_tcp_t* c = client_;
      client_ = nullptr;
      ++handles_;
      loop::closeHandle(c, [](uv_handle_t* h) {
        auto* s = static_cast<Session*>(h->data);
        delete reinterpret_cast<uv_tcp_t*>(h);
        --s->handles_;
        s->maybeFree();
      });
    }
    maybeFree();
  }

  void maybeFree() {
    if (phase_ == Phase::Closing && handles_ == 0 && writes_ == 0) delete this;
  }

  uv_loop_t* loop_;
  conn::ConnectionHandler* handler_;
  std::string tag_;
  uv_tcp_t* client_;
  conn::StreamPtr upstream_;
  Destination upstream_dst_;
  SocketAddress source_;
  std::string cbuf_, rbuf_;
  std::string user_;
  std::string method_;
  std::string pending_head_;
  http::BodyFramer req_, resp_;
  Phase phase_ = Phase::Head;
  bool client_reading_ = false, upstream_reading_ = false;
  bool client_eof_ = false;
  bool client_keep_alive_ = true, upstream_keep_alive_ = true;
  bool resp_head_done_ = false;
  bool close_after_flush_ = false;
  bool reused_ = false;
  std::string close_reason_;
  uint64_t dial_id_ = 0;
  int writes_ = 0;
  int handles_ = 0;
  int requests_ = 0;
  uint64_t up_ = 0, down_ = 0;
};

}  // namespace

void HttpForwardSession::start(uv_loop_t* loop, conn::ConnectionHandler* handler,
                               const std::string& tag, uv_tcp_t* client, std::string buffered,
                               const std::string& user) {
  (new Session(loop, handler, tag, client, std::move(buffered), user))->start();
}

}  // namespace veer::inbound
