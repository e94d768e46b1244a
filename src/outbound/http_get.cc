#include "outbound/http_get.h"

#include "base/log.h"
#include "loop/defer.h"
#include "loop/uv_util.h"
#include "tls/client.h"

#ifndef VEER_VERSION
#define VEER_VERSION "0"
#endif

namespace veer::outbound {

namespace {

// A timer owned through a pointer: closed (and freed in its close callback) by close().
struct TimerBox {
  uv_timer_t timer{};
  std::function<void()> fn;
  static TimerBox* make(uv_loop_t* loop) {
    auto* t = new TimerBox;
    uv_timer_init(loop, &t->timer);
    t->timer.data = t;
    return t;
  }
  void start(uint64_t ms, std::function<void()> f) {
    fn = std::move(f);
    uv_timer_start(&timer, [](uv_timer_t* h) {
      auto* tb = static_cast<TimerBox*>(h->data);
      if (tb->fn) {
        auto f = std::move(tb->fn);
        tb->fn = nullptr;
        f();
      }
    }, ms, 0);
  }
  void close() {
    fn = nullptr;
    loop::closeHandle(&timer, [](uv_handle_t* h) { delete static_cast<TimerBox*>(h->data); });
  }
};

bool isRedirect(int status) {
  return status == 301 || status == 302 || status == 303 || status == 307 || status == 308;
}

class HttpGetImpl : public HttpGet {
 public:
  HttpGetImpl(uv_loop_t* loop, Outbound* via, HttpGetOptions opts, TlsStep tls, Done done)
      : loop_(loop), via_(via), opts_(std::move(opts)), tls_(std::move(tls)),
        done_(std::move(done)) {
    timer_ = TimerBox::make(loop_);
  }

  ~HttpGetImpl() override {
    *alive_ = false;
    if (dial_id_ != 0) via_->cancelDial(dial_id_);
    if (tls_cancel_) tls_cancel_();
    stream_.reset();
    timer_->close();
  }

  void begin() {
    auto url = parseHttpUrl(opts_.url);
    if (!url) {
      failLater(url.error().message());
      return;
    }
    url_ = *url;
    if (opts_.timeout_ms > 0) {
      timer_->start(opts_.timeout_ms, [this] {
        fail("timed out after " + std::to_string(opts_.timeout_ms) + " ms");
      });
    }
    connect();
  }

 private:
  void failLater(std::string why) {
    std::weak_ptr<bool> alive = alive_;
    loop::defer(loop_, [this, alive, why] {
      if (alive.expired() || !*alive.lock()) return;
      fail(why);
    });
  }

  void connect() {
    if (url_.tls && !tls_) {
      failLater(url_.toString() + ": https:// needs TLS, which this build does not have");
      return;
    }
    conn::InboundContext ctx;
    ctx.inbound_tag = opts_.inbound_tag;
    ctx.inbound_type = "internal";
    ctx.network = "tcp";
    ctx.destination = Destination::fromHost(url_.host, url_.port);
    ctx.original_destination = ctx.destination;
    std::weak_ptr<bool> alive = alive_;
    dial_id_ = via_->dialTcp(ctx, [this, alive](Result<conn::StreamPtr> r) {
      if (alive.expired() || !*alive.lock()) return;
      dial_id_ = 0;
      if (!r) return fail("dial " + url_.authority() + " via " + via_->tag() + ": " +
                          r.error().message());
      if (!url_.tls) return sendRequest(std::move(*r));
      tls_cancel_ = tls_(loop_, url_, std::move(*r), opts_.timeout_ms,
                         [this, alive](Result<conn::StreamPtr> t) {
        if (alive.expired() || !*alive.lock()) return;
        tls_cancel_ = nullptr;
        if (!t) return fail(t.error().message());
        sendRequest(std::move(*t));
      });
    });
  }

  void sendRequest(conn::StreamPtr s) {
    stream_ = std::move(s);
    parser_ = std::make_unique<HttpResponseParser>(opts_.max_body);
    std::string req = "GET " + url_.target + " HTTP/1.1\r\nHost: " + url_.authority() +
                      "\r\nUser-Agent: veer/" VEER_VERSION
                      "\r\nAccept: */*\r\nAccept-Encoding: identity\r\nConnection: close\r\n";
    if (!opts_.if_none_match.empty()) req += "If-None-Match: " + opts_.if_none_match + "\r\n";
    if (!opts_.if_modified_since.empty()) {
      req += "If-Modified-Since: " + opts_.if_modified_since + "\r\n";
    }
    req += "\r\n";
    stream_->write(req.data(), req.size());
    std::weak_ptr<bool> alive = alive_;
    stream_->readStart([this, alive](int status, const char* data, size_t len) {
      if (alive.expired() || !*alive.lock()) return;
      if (status == 0) {
        if (!parser_->feed(data, len)) return fail(url_.toString() + ": " + parser_->error());
        if (parser_->done()) responseDone();
        return;
      }
      if (status == UV_EOF) {
        if (!parser_->finish()) return fail(url_.toString() + ": " + parser_->error());
        return responseDone();
      }
      fail(url_.toString() + ": read: " + uv_strerror(status));
    });
  }

  void responseDone() {
    stream_.reset();
    int status = parser_->status();
    const std::string* loc = parser_->header("Location");
    if (isRedirect(status) && loc != nullptr) {
      if (redirects_ >= opts_.max_redirects) {
        return fail(url_.toString() + ": more than " + std::to_string(opts_.max_redirects) +
                    " redirects");
      }
      auto next = resolveLocation(url_, *loc);
      if (!next) return fail(url_.toString() + ": redirect: " + next.error().message());
      ++redirects_;
      LOG_DEBUG("%s: %d redirect to %s", url_.toString().c_str(), status,
                next->toString().c_str());
      url_ = *next;
      parser_.reset();
      connect();
      return;
    }
    HttpGetResponse r;
    r.status = status;
    r.reason = parser_->reason();
    if (const auto* e = parser_->header("ETag")) r.etag = *e;
    if (const auto* m = parser_->header("Last-Modified")) r.last_modified = *m;
    r.body = parser_->takeBody();
    r.url = url_.toString();
    finish(std::move(r));
  }

  void fail(const std::string& why) { finish(unexpected(Error(why))); }

  // Ends the exchange: releases the connection and the timer, then runs `done` last (it may
  // destroy this object).
  void finish(Result<HttpGetResponse> r) {
    if (finished_) return;
    finished_ = true;
    if (dial_id_ != 0) {
      via_->cancelDial(dial_id_);
      dial_id_ = 0;
    }
    if (tls_cancel_) {
      auto c = std::move(tls_cancel_);
      tls_cancel_ = nullptr;
      c();
    }
    stream_.reset();
    timer_->fn = nullptr;
    uv_timer_stop(&timer_->timer);
    Done d = std::move(done_);
    done_ = nullptr;
    if (d) d(std::move(r));
  }

  uv_loop_t* loop_;
  Outbound* via_;
  HttpGetOptions opts_;
  TlsStep tls_;
  Done done_;
  HttpUrl url_;
  int redirects_ = 0;
  uint64_t dial_id_ = 0;
  std::function<void()> tls_cancel_;
  conn::StreamPtr stream_;
  std::unique_ptr<HttpResponseParser> parser_;
  TimerBox* timer_ = nullptr;
  bool finished_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

TlsStep systemTlsStep() {
  return [](uv_loop_t* loop, const HttpUrl& url, conn::StreamPtr inner, uint32_t timeout_ms,
            std::function<void(Result<conn::StreamPtr>)> done) -> std::function<void()> {
    tls::TlsOptions o;
    o.enabled = true;
    o.alpn = {"http/1.1"};
    auto cfg = tls::makeClientConfig(o, url.host);
    if (!cfg) {
      // Reported from the loop like any other failure; HttpGet ignores it once cancelled.
      Error e = cfg.error();
      loop::defer(loop, [done, e] { done(unexpected(e)); });
      return [] {};
    }
    return tls::connect(loop, std::move(inner), *cfg, timeout_ms, std::move(done));
  };
}

std::unique_ptr<HttpGet> HttpGet::start(uv_loop_t* loop, Outbound* via, HttpGetOptions opts,
                                        TlsStep tls, Done done) {
  auto g = std::make_unique<HttpGetImpl>(loop, via, std::move(opts), std::move(tls),
                                         std::move(done));
  g->begin();
  return g;
}

}  // namespace veer::outbound
