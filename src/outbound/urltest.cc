// The urltest group (sing-box protocol/group/urltest.go): every `interval` each member fetches
// `url` (http:// or https://, verified against the system CA store); dials go to the member with the lowest
// latency, which changes only when another one is faster by more than `tolerance`. Members
// whose probe fails are skipped. Until the first round completes the first member is used.
#include <cstring>
#include <unordered_map>

#include "base/log.h"
#include "loop/uv_util.h"
#include "outbound/handshake.h"
#include "outbound/outbound.h"
#include "tls/client.h"

namespace veer::outbound {

namespace {

struct Ticker {
  uv_timer_t timer{};
  std::function<void()> fn;
  void close() {
    fn = nullptr;
    loop::closeHandle(&timer, [](uv_handle_t* h) { delete static_cast<Ticker*>(h->data); });
  }
};

class UrlTestImpl : public UrlTest {
 public:
  UrlTestImpl(std::string tag, uv_loop_t* loop, std::vector<SharedOutbound> members,
              const UrlTestOptions& o)
      : UrlTest("urltest", std::move(tag)), loop_(loop), members_(std::move(members)), o_(o) {
    current_ = members_.empty() ? nullptr : members_.front().get();
    parseUrl();
    ticker_ = new Ticker;
    uv_timer_init(loop_, &ticker_->timer);
    ticker_->timer.data = ticker_;
    ticker_->fn = [this] { startRound(); };
    uv_timer_start(
        &ticker_->timer,
        [](uv_timer_t* t) {
          auto* tk = static_cast<Ticker*>(t->data);
          if (tk->fn) tk->fn();
        },
        0, o_.interval_ms == 0 ? 180000 : o_.interval_ms);
    // The health checks must not keep the loop alive at shutdown.
    uv_unref(reinterpret_cast<uv_handle_t*>(&ticker_->timer));
  }

  ~UrlTestImpl() override {
    ticker_->close();
    for (auto& [i, p] : probes_) {
      if (p.dial_id) members_[i]->cancelDial(p.dial_id);
      if (p.tls_cancel) p.tls_cancel();
      if (p.hs) p.hs->abort();
    }
  }

  const std::string& selected() const override {
    static const std::string none;
    return current_ ? current_->tag() : none;
  }

  std::vector<std::string> members() const override {
    std::vector<std::string> out;
    for (const auto& m : members_) out.push_back(m->tag());
    return out;
  }
  int64_t delayOf(const std::string& member) const override {
    for (size_t i = 0; i < members_.size(); ++i) {
      if (members_[i]->tag() == member) return i < last_.size() ? last_[i] : -1;
    }
    return -1;
  }

  uint64_t dialTcp(const conn::InboundContext& ctx, DialCallback cb) override {
    return dialer_.dial(current_, ctx, std::move(cb));
  }
  void cancelDial(uint64_t id) override { dialer_.cancel(id); }
  Result<PacketConn*> listenUdp(const conn::InboundContext& ctx,
                                PacketConn::ReceiveFn fn) override {
    return current_->listenUdp(ctx, std::move(fn));
  }

 private:
  struct Probe {
    uint64_t dial_id = 0;
    std::function<void()> tls_cancel;
    Handshake* hs = nullptr;
    uint64_t start_ms = 0;
  };

  void parseUrl() {
    // http://host[:port][/path] or https://...
    bool https = o_.url.rfind("https://", 0) == 0;
    std::string rest = o_.url.substr(https ? std::strlen("https://") : std::strlen("http://"));
    size_t slash = rest.find('/');
    std::string authority = rest.substr(0, slash);
    path_ = slash == std::string::npos ? "/" : rest.substr(slash);
    uint16_t port = https ? 443 : 80;
    host_ = authority;
    size_t colon = authority.rfind(':');
    if (colon != std::string::npos && authority.find(']', colon) == std::string::npos) {
      host_ = authority.substr(0, colon);
      port = static_cast<uint16_t>(std::atoi(authority.c_str() + colon + 1));
    }
    std::string bare = host_;
    if (bare.size() > 2 && bare.front() == '[') bare = bare.substr(1, bare.size() - 2);
    target_ = Destination::fromHost(bare, port);
    if (https) {
      tls::TlsOptions t;
      t.enabled = true;
      auto cfg = tls::makeClientConfig(t, bare);
      if (!cfg) {
        LOG_ERROR("urltest %s: %s", tag().c_str(), cfg.error().message().c_str());
        tls_failed_ = true;
      } else {
        tls_ = *cfg;
      }
    }
  }

  void probe(size_t i, conn::StreamPtr s) {
    Probe& pr = probes_[i];
    pr.hs = Handshake::start(loop_, std::move(s), o_.timeout_ms,
                             [this, i](Result<conn::StreamPtr> hr) {
      probes_[i].hs = nullptr;
      if (!hr) return done(i, hr.error().message());
      hr->reset();  // the probe connection is done with
      results_[i] = static_cast<int64_t>(uv_now(loop_) - probes_[i].start_ms);
      done(i, "");
    });
    Handshake* hs = pr.hs;
    hs->write("GET " + path_ + " HTTP/1.1\r\nHost: " + host_ +
              "\r\nUser-Agent: veer\r\nConnection: close\r\n\r\n");
    readStatus(hs);
  }

  void startRound() {
    if (!probes_.empty() || members_.empty()) return;  // the previous round is still running
    results_.assign(members_.size(), -1);
    for (size_t i = 0; i < members_.size(); ++i) {
      Probe& p = probes_[i];
      p.start_ms = uv_now(loop_);
      conn::InboundContext ctx;
      ctx.inbound_tag = "urltest/" + tag();
      ctx.network = "tcp";
      ctx.destination = target_;
      ctx.original_destination = target_;
      p.dial_id = members_[i]->dialTcp(ctx, [this, i](Result<conn::StreamPtr> r) {
        Probe& pr = probes_[i];
        pr.dial_id = 0;
        if (!r) return done(i, r.error().message());
        if (!tls_) {
          if (tls_failed_) return done(i, "no TLS configuration for the https URL");
          probe(i, std::move(*r));
          return;
        }
        pr.tls_cancel = tls::connect(loop_, std::move(*r), tls_, o_.timeout_ms,
                                     [this, i](Result<conn::StreamPtr> tr) {
                                       probes_[i].tls_cancel = nullptr;
                                       if (!tr) return done(i, tr.error().message());
                                       probe(i, std::move(*tr));
                                     });
      });
    }
  }

  static void readStatus(Handshake* hs) {
    const std::string& b = hs->buffer();
    if (b.size() >= 5 && b.compare(0, 5, "HTTP/") != 0) return hs->fail("not an HTTP response");
    size_t eol = b.find("\r\n");
    if (eol != std::string::npos) return hs->succeed(eol + 2);
    if (b.size() > 1024) return hs->fail("status line too long");
    hs->readUntil(b.size() < 12 ? 12 : b.size() + 1, [hs] { readStatus(hs); });
  }

  void done(size_t i, const std::string& err) {
    if (!err.empty()) {
      LOG_DEBUG("urltest %s: %s failed: %s", tag().c_str(), members_[i]->tag().c_str(),
                err.c_str());
    }
    probes_.erase(i);
    if (!probes_.empty()) return;
    last_ = results_;
    // The round is complete: choose.
    int best = -1;
    for (size_t k = 0; k < results_.size(); ++k) {
      if (results_[k] >= 0 && (best < 0 || results_[k] < results_[best])) best = static_cast<int>(k);
    }
    if (best < 0) {
      LOG_WARN("urltest %s: every member failed its check; keeping %s", tag().c_str(),
               selected().c_str());
      return;
    }
    int cur = -1;
    for (size_t k = 0; k < members_.size(); ++k) {
      if (members_[k].get() == current_) cur = static_cast<int>(k);
    }
    bool sw = cur < 0 || results_[cur] < 0 ||
              results_[best] + static_cast<int64_t>(o_.tolerance_ms) < results_[cur];
    if (sw && members_[best].get() != current_) {
      LOG_INFO("urltest %s: selected %s (%lld ms)", tag().c_str(),
               members_[best]->tag().c_str(), static_cast<long long>(results_[best]));
      current_ = members_[best].get();
    }
  }

  uv_loop_t* loop_;
  std::vector<SharedOutbound> members_;
  UrlTestOptions o_;
  Outbound* current_ = nullptr;
  std::string host_, path_;
  Destination target_;
  Ticker* ticker_ = nullptr;
  std::unordered_map<size_t, Probe> probes_;
  std::vector<int64_t> results_;
  std::vector<int64_t> last_;  // the last complete round
  std::shared_ptr<const tls::ClientConfig> tls_;  // https:// URLs
  bool tls_failed_ = false;
  GroupDialer dialer_;
};

}  // namespace

std::unique_ptr<UrlTest> makeUrlTest(std::string tag, uv_loop_t* loop,
                                     std::vector<SharedOutbound> members,
                                     const UrlTestOptions& opts) {
  return std::make_unique<UrlTestImpl>(std::move(tag), loop, std::move(members), opts);
}

}  // namespace veer::outbound
