// StreamRelay: the relay for connections where one side carries a transform (TLS, AEAD) and
// the bytes must pass through user space. Same policy as TcpRelay (half-close with its own
// timer, resets passed on, backpressure on the destination's write queue), over conn::Stream.
#include <string>

#include "conn/stream.h"
#include "conn/tcp_relay.h"
#include "loop/uv_util.h"

namespace veer::conn {
namespace {

class StreamRelay final : public Relay {
 public:
  StreamRelay(uv_loop_t* loop, StreamPtr client, StreamPtr remote, const RelayOptions& opts,
              DoneCallback done)
      : loop_(loop),
        opts_(opts),
        done_(std::move(done)),
        client_(std::move(client)),
        remote_(std::move(remote)) {
    dirs_[0] = Direction{client_.get(), remote_.get()};
    dirs_[1] = Direction{remote_.get(), client_.get()};
    uv_timer_init(loop, &timer_);
    timer_.data = this;
    last_activity_ = uv_now(loop);
  }

  void start(std::string early) {
    armTimer();
    if (!early.empty()) {
      dirs_[0].bytes += early.size();
      // The cached bytes go to the remote first and whole: a transforming stream puts its
      // protocol header in front of them in the same write.
      writeTo(dirs_[0], early.data(), early.size());
    }
    if (!finished_) startReading(dirs_[0]);
    if (!finished_) startReading(dirs_[1]);
  }

  void abort(const std::string& reason) override { finish(reason, false, false, false); }
  uint64_t up() const override { return dirs_[0].bytes; }
  uint64_t down() const override { return dirs_[1].bytes; }

 private:
  struct Direction {
    Stream* src = nullptr;
    Stream* dst = nullptr;
    uint64_t bytes = 0;
    bool reading = false;
    bool eof = false;
    bool shut = false;
  };

  int index(const Direction& d) const { return &d == &dirs_[0] ? 0 : 1; }
  const char* srcName(const Direction& d) const { return index(d) == 0 ? "client" : "remote"; }
  const char* dstName(const Direction& d) const { return index(d) == 0 ? "remote" : "client"; }

  void startReading(Direction& d) {
    if (d.reading || d.eof || finished_) return;
    d.reading = true;
    int i = index(d);
    d.src->readStart([this, i](int status, const char* data, size_t len) {
      onRead(dirs_[i], status, data, len);
    });
  }

  void onRead(Direction& d, int status, const char* data, size_t len) {
    if (finished_) return;
    if (status == UV_EOF) {
      onEof(d);
      return;
    }
    if (status < 0) {
      bool reset = status == UV_ECONNRESET;
      bool from_client = index(d) == 0;
      finish(std::string(srcName(d)) + ": " + uv_strerror(status), true, reset && !from_client,
             reset && from_client);
      return;
    }
    d.bytes += len;
    last_activity_ = uv_now(loop_);
    writeTo(d, data, len);
  }

  void writeTo(Direction& d, const char* data, size_t len) {
    if (finished_ || d.shut) return;
    int i = index(d);
    d.dst->write(data, len, [this, i, alive = alive_](int status) {
      if (!*alive) return;
      onWriteDone(dirs_[i], status);
    });
    size_t q = d.dst->writeQueueSize();
    if (q > result_.max_queued) result_.max_queued = q;
    if (q > opts_.high_watermark && d.reading) {
      d.src->readStop();
      d.reading = false;
    }
  }

  void onWriteDone(Direction& d, int status) {
    if (finished_) return;
    if (status < 0) {
      bool to_remote = index(d) == 0;
      finish(std::string(dstName(d)) + ": " + uv_strerror(status), true,
             status == UV_ECONNRESET && !to_remote, status == UV_ECONNRESET && to_remote);
      return;
    }
    last_activity_ = uv_now(loop_);
    if (!d.reading && !d.eof && d.dst->writeQueueSize() <= opts_.low_watermark) startReading(d);
  }

  void onEof(Direction& d) {
    d.eof = true;
    d.reading = false;
    int i = index(d);
    d.dst->shutdown([this, i, alive = alive_](int status) {
      if (!*alive || finished_) return;
      Direction& dd = dirs_[i];
      dd.shut = true;
      if (status < 0 && status != UV_ENOTCONN) {
        finish(std::string(dstName(dd)) + ": shutdown: " + uv_strerror(status), true, false,
               false);
        return;
      }
      if (dirs_[0].shut && dirs_[1].shut) finish("done", false, false, false);
    });
    last_activity_ = uv_now(loop_);
    armTimer();
  }

  void armTimer() {
    bool half = dirs_[0].eof || dirs_[1].eof;
    uint64_t timeout = half ? opts_.half_close_timeout_ms : opts_.idle_timeout_ms;
    if (timeout == 0) {
      uv_timer_stop(&timer_);
      return;
    }
    uint64_t now = uv_now(loop_);
    uint64_t deadline = last_activity_ + timeout;
    uv_timer_start(
        &timer_, [](uv_timer_t* t) { static_cast<StreamRelay*>(t->data)->onTimer(); },
        deadline > now ? deadline - now : 0, 0);
  }

  void onTimer() {
    if (finished_) return;
    bool half = dirs_[0].eof || dirs_[1].eof;
    uint64_t timeout = half ? opts_.half_close_timeout_ms : opts_.idle_timeout_ms;
    if (uv_now(loop_) >= last_activity_ + timeout) {
      finish(half ? "half-close timeout" : "idle timeout", false, false, false);
      return;
    }
    armTimer();
  }

  void finish(const std::string& reason, bool error, bool reset_client, bool reset_remote) {
    if (finished_) return;
    finished_ = true;
    *alive_ = false;
    result_.up = dirs_[0].bytes;
    result_.down = dirs_[1].bytes;
    result_.reason = reason;
    result_.error = error;
    client_.release()->close(reset_client);
    remote_.release()->close(reset_remote);
    dirs_[0] = dirs_[1] = Direction{};
    loop::closeHandle(&timer_, [](uv_handle_t* h) {
      auto* r = static_cast<StreamRelay*>(h->data);
      if (r->done_) r->done_(r->result_);
      delete r;
    });
  }

  uv_loop_t* loop_;
  RelayOptions opts_;
  DoneCallback done_;
  StreamPtr client_, remote_;
  Direction dirs_[2];
  uv_timer_t timer_{};
  uint64_t last_activity_ = 0;
  bool finished_ = false;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  RelayResult result_;
};

}  // namespace

Relay* startStreamRelay(uv_loop_t* loop, StreamPtr client, StreamPtr remote,
                        std::string early_data, const RelayOptions& opts,
                        Relay::DoneCallback done) {
  // Two plain TCP streams: the zero-copy path.
  if (client && remote) {
    uv_tcp_t* c = client->releaseTcp();
    if (c != nullptr) {
      uv_tcp_t* r = remote->releaseTcp();
      if (r != nullptr) {
        client.reset();
        remote.reset();
        return startRelay(loop, c, r, std::move(early_data), opts, std::move(done));
      }
      client = makeTcpStream(c);  // give it back: the remote transforms
    }
  }
  auto* r = new StreamRelay(loop, std::move(client), std::move(remote), opts, std::move(done));
  r->start(std::move(early_data));
  return r;
}

}  // namespace veer::conn
