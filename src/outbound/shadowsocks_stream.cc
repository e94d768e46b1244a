// ShadowsocksStream: conn::Stream that encrypts toward a Shadowsocks server and decrypts its
// answers (outbound/shadowsocks_codec.h does the framing).
#include <cstring>
#include <string>

#include "base/log.h"
#include "loop/defer.h"
#include "loop/uv_util.h"
#include "outbound/shadowsocks.h"

namespace veer::outbound {

namespace {

class ShadowsocksStream final : public conn::Stream {
 public:
  ShadowsocksStream(uv_loop_t* loop, conn::StreamPtr inner, const ss::Cipher& c,
                    std::string header, const ShadowsocksStreamOptions& o)
      : loop_(loop), inner_(std::move(inner)), decoder_(c), header_(std::move(header)), o_(o) {
    uv_timer_init(loop_, &timer_);
    timer_.data = this;
  }

  bool init(const ss::Cipher& c) {
    if (!encoder_.init(c)) return false;
    if (o_.header_delay_ms > 0) {
      uv_timer_start(&timer_, &ShadowsocksStream::onTimer, o_.header_delay_ms, 0);
    }
    return true;
  }

  void readStart(ReadFn on_read) override {
    on_read_ = std::move(on_read);
    if (closed_) return;
    if (read_done_) {
      // The read side ended while nobody was reading (a reply deadline): report it now, from
      // the loop, exactly once.
      if (!end_delivered_) {
        end_delivered_ = true;
        loop::defer(loop_, [this, alive = alive_] {
          if (*alive && on_read_) on_read_(end_status_, nullptr, 0);
        });
      }
      return;
    }
    if (reading_) return;
    reading_ = true;
    inner_->readStart([this](int status, const char* data, size_t len) {
      onInnerRead(status, data, len);
    });
  }

  void readStop() override {
    if (closed_ || !reading_) return;
    reading_ = false;
    inner_->readStop();
  }

  void write(const char* data, size_t len, DoneFn done) override {
    if (closed_) return;
    out_.clear();
    bool ok;
    if (len > 0) awaitReply();
    if (!header_sent_) {
      header_sent_ = true;
      if (len == 0) uv_timer_stop(&timer_);
      std::string first = std::move(header_);
      first.append(data, len);
      ok = encoder_.encode(asBytes(first), out_);
    } else {
      ok = encoder_.encode(ByteView(reinterpret_cast<const uint8_t*>(data), len), out_);
    }
    if (!ok) {
      if (done) {
        loop::defer(loop_, [done = std::move(done), alive = alive_] {
          if (*alive) done(UV_EIO);
        });
      }
      return;
    }
    inner_->write(out_.data(), out_.size(), std::move(done));
  }

  size_t writeQueueSize() const override { return inner_ ? inner_->writeQueueSize() : 0; }

  void shutdown(DoneFn done) override {
    if (closed_) return;
    if (!header_sent_) sendHeader();
    inner_->shutdown(std::move(done));
  }

  void close(bool reset) override {
    if (closed_) return;
    closed_ = true;
    *alive_ = false;
    conn::Stream* in = inner_.release();
    if (in != nullptr) in->close(reset);
    uv_timer_stop(&timer_);
    // on_read_ may be running (close() from inside it): it is destroyed with the stream, in
    // the timer's close callback.
    loop::closeHandle(&timer_, [](uv_handle_t* h) {
      delete static_cast<ShadowsocksStream*>(h->data);
    });
  }

  uv_tcp_t* socket() override { return inner_ ? inner_->socket() : nullptr; }
  const char* kind() const override { return "shadowsocks"; }

 private:
  ~ShadowsocksStream() override = default;

  static void onTimer(uv_timer_t* t) {
    auto* self = static_cast<ShadowsocksStream*>(t->data);
    if (self->closed_) return;
    if (!self->header_sent_) {
      // Nothing to send yet (a server-first protocol): the server needs the target to connect.
      self->sendHeader();
    } else if (self->awaiting_ && !self->decoder_.gotSalt() && !self->read_done_) {
      // Only a warning: a legitimate server may take this long (a long poll), and cutting it
      // would lose the reply. The client's own timeout ends a connection that never answers.
      LOG_WARN("shadowsocks: no answer from the %s within %u ms of the request (wrong password "
               "or method? ss-server stays silent when it cannot decrypt); the connection stays "
               "open", self->o_.label.c_str(), self->o_.reply_timeout_ms);
    }
  }

  void sendHeader() {
    header_sent_ = true;
    uv_timer_stop(&timer_);
    out_.clear();
    if (encoder_.encode(asBytes(header_), out_)) inner_->write(out_.data(), out_.size());
    header_.clear();
  }

  /// The client sent payload: the server owes an answer. Only payload starts the deadline: a
  /// connection the client keeps idle (a browser's preconnect) or a server-first protocol
  /// whose server stays quiet is not an error.
  void awaitReply() {
    if (awaiting_ || decoder_.gotSalt() || read_done_ || o_.reply_timeout_ms == 0) return;
    awaiting_ = true;
    uv_timer_start(&timer_, &ShadowsocksStream::onTimer, o_.reply_timeout_ms, 0);
  }

  void onInnerRead(int status, const char* data, size_t len) {
    if (closed_ || read_done_) return;
    if (status == 0) {
      plain_.clear();
      bool had_salt = decoder_.gotSalt();
      if (!decoder_.feed(ByteView(reinterpret_cast<const uint8_t*>(data), len), plain_)) {
        failRead(UV_EPROTO, "shadowsocks: decryption failed (wrong password or corrupted data) "
                            "from the " + o_.label);
        return;
      }
      if (!had_salt && decoder_.gotSalt()) uv_timer_stop(&timer_);
      if (!plain_.empty() && on_read_) on_read_(0, plain_.data(), plain_.size());
      return;
    }
    if (status == UV_EOF) {
      if (!decoder_.atBoundary()) {
        failRead(UV_EPROTO, "shadowsocks: the " + o_.label +
                                " closed the connection inside an encrypted record (truncated "
                                "data)");
        return;
      }
      if (!decoder_.gotSalt()) {
        failRead(UV_ECONNRESET, "shadowsocks: the " + o_.label +
                                    " closed the connection without answering (the target "
                                    "refused or closed, or a wrong password or method)");
        return;
      }
    }
    endRead(status);
  }

  void failRead(int status, const std::string& why) {
    LOG_WARN("%s", why.c_str());
    endRead(status);
  }

  /// Ends the read side with `status`: delivered now when someone is reading, else at the
  /// next readStart().
  void endRead(int status) {
    bool was_reading = reading_;
    read_done_ = true;
    uv_timer_stop(&timer_);
    if (reading_) inner_->readStop();
    reading_ = false;
    end_status_ = status;
    if (was_reading && on_read_) {
      end_delivered_ = true;
      on_read_(status, nullptr, 0);
    }
  }

  uv_loop_t* loop_;
  conn::StreamPtr inner_;
  ss::Encoder encoder_;
  ss::Decoder decoder_;
  std::string header_;
  ShadowsocksStreamOptions o_;
  uv_timer_t timer_{};
  ReadFn on_read_;
  std::string out_, plain_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool header_sent_ = false;
  bool awaiting_ = false;
  bool reading_ = false;
  bool read_done_ = false;
  bool end_delivered_ = false;
  int end_status_ = 0;
  bool closed_ = false;
};

}  // namespace

Result<conn::StreamPtr> makeShadowsocksStream(uv_loop_t* loop, conn::StreamPtr inner,
                                              const ss::Cipher& cipher, const Destination& target,
                                              const ShadowsocksStreamOptions& opts) {
  std::string header;
  if (!ss::appendAddress(header, target)) {
    return unexpected(Error("shadowsocks: cannot encode the target " + target.toString()));
  }
  auto* s = new ShadowsocksStream(loop, std::move(inner), cipher, std::move(header), opts);
  conn::StreamPtr p(s);
  if (!s->init(cipher)) return unexpected(Error("shadowsocks: no random bytes for the salt"));
  return p;
}

}  // namespace veer::outbound
