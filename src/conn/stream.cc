// TcpStream: conn::Stream over a connected uv_tcp_t.
#include "conn/stream.h"

#include <cstring>
#include <string>

#include "loop/buffer_pool.h"
#include "loop/defer.h"
#include "loop/uv_util.h"

namespace veer::conn {
namespace {

class TcpStream final : public Stream {
 public:
  explicit TcpStream(uv_tcp_t* tcp) : tcp_(tcp) { tcp_->data = this; }

  void readStart(ReadFn on_read) override {
    on_read_ = std::move(on_read);
    if (tcp_ == nullptr || read_done_ || closed_) return;
    reading_ = true;
    int rc = uv_read_start(reinterpret_cast<uv_stream_t*>(tcp_), &TcpStream::onAlloc,
                           &TcpStream::onRead);
    if (rc != 0) {
      reading_ = false;
      // Report the failure from the loop, not from inside readStart().
      auto* self = this;
      loop::defer(tcp_->loop, [self, rc, alive = alive_] {
        if (!*alive || self->read_done_) return;
        self->read_done_ = true;
        if (self->on_read_) self->on_read_(rc, nullptr, 0);
      });
    }
  }

  void readStop() override {
    if (tcp_ != nullptr && reading_) uv_read_stop(reinterpret_cast<uv_stream_t*>(tcp_));
    reading_ = false;
  }

  void write(const char* data, size_t len, DoneFn done) override {
    if (tcp_ == nullptr || closed_) return;
    size_t off = 0;
    // Fast path: the kernel takes it all now (nothing may be queued ahead of it).
    if (queued_ == 0 && len > 0) {
      uv_buf_t b = uv_buf_init(const_cast<char*>(data), static_cast<unsigned>(len));
      int n = uv_try_write(reinterpret_cast<uv_stream_t*>(tcp_), &b, 1);
      if (n > 0) off = static_cast<size_t>(n);
    }
    auto* w = new WriteReq;
    w->self = this;
    w->alive = alive_;
    w->done = std::move(done);
    w->data.assign(data + off, len - off);
    w->req.data = w;
    queued_ += w->data.size();
    uv_buf_t b = uv_buf_init(w->data.data(), static_cast<unsigned>(w->data.size()));
    // A zero-length uv_write still completes through the callback, keeping `done` async.
    int rc = uv_write(&w->req, reinterpret_cast<uv_stream_t*>(tcp_), &b, 1, &TcpStream::onWrite);
    if (rc != 0) {
      queued_ -= w->data.size();
      DoneFn cb = std::move(w->done);
      delete w;
      if (cb) {
        loop::defer(tcp_->loop, [cb = std::move(cb), rc, alive = alive_] {
          if (*alive) cb(rc);
        });
      }
    }
  }

  size_t writeQueueSize() const override { return queued_; }

  void shutdown(DoneFn done) override {
    if (tcp_ == nullptr || closed_) return;
    auto* s = new ShutdownReq;
    s->alive = alive_;
    s->done = std::move(done);
    s->req.data = s;
    int rc = uv_shutdown(&s->req, reinterpret_cast<uv_stream_t*>(tcp_), [](uv_shutdown_t* r,
                                                                          int status) {
      auto* sr = static_cast<ShutdownReq*>(r->data);
      if (*sr->alive && sr->done) sr->done(status);
      delete sr;
    });
    if (rc != 0) {
      DoneFn cb = std::move(s->done);
      delete s;
      if (cb) {
        loop::defer(tcp_->loop, [cb = std::move(cb), rc, alive = alive_] {
          if (*alive) cb(rc);
        });
      }
    }
  }

  void close(bool reset) override {
    if (closed_) return;
    closed_ = true;
    *alive_ = false;
    if (tcp_ == nullptr) {
      delete this;
      return;
    }
    // The stream is freed with its handle, after the loop is done with both: close() may be
    // called from inside this stream's own read callback.
    uv_tcp_t* t = tcp_;
    t->data = this;
    auto cb = [](uv_handle_t* h) {
      delete static_cast<TcpStream*>(h->data);
      delete reinterpret_cast<uv_tcp_t*>(h);
    };
    if (!reset || uv_tcp_close_reset(t, cb) != 0) loop::closeHandle(t, cb);
  }

  uv_tcp_t* releaseTcp() override {
    if (tcp_ == nullptr || queued_ != 0) return nullptr;
    readStop();
    uv_tcp_t* t = tcp_;
    tcp_ = nullptr;
    t->data = nullptr;
    return t;
  }

  uv_tcp_t* socket() override { return tcp_; }
  const char* kind() const override { return "tcp"; }

 private:
  struct WriteReq {
    uv_write_t req{};
    TcpStream* self = nullptr;
    std::shared_ptr<bool> alive;
    DoneFn done;
    std::string data;
  };
  struct ShutdownReq {
    uv_shutdown_t req{};
    std::shared_ptr<bool> alive;
    DoneFn done;
  };

  ~TcpStream() override = default;

  static void onAlloc(uv_handle_t* h, size_t, uv_buf_t* buf) {
    auto* self = static_cast<TcpStream*>(h->data);
    size_t size = self != nullptr ? self->buf_size_ : loop::BufferPool::kMinSize;
    buf->base = loop::BufferPool::local().acquire(size);
    buf->len = static_cast<decltype(buf->len)>(loop::BufferPool::classify(size));
  }

  static void onRead(uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
    auto* self = static_cast<TcpStream*>(s->data);
    if (self == nullptr || self->closed_) {
      if (buf->base != nullptr) loop::BufferPool::local().release(buf->base, buf->len);
      return;
    }
    if (nread > 0) {
      // Adapt the read size: grow after a full read, shrink after a small one.
      size_t cap = buf->len;
      if (static_cast<size_t>(nread) == cap && cap < loop::BufferPool::kMaxSize) {
        self->buf_size_ = cap * 2;
      } else if (static_cast<size_t>(nread) <= cap / 4 && cap > loop::BufferPool::kMinSize) {
        self->buf_size_ = cap / 2;
      }
      if (self->on_read_) self->on_read_(0, buf->base, static_cast<size_t>(nread));
      loop::BufferPool::local().release(buf->base, buf->len);
      return;
    }
    if (buf->base != nullptr) loop::BufferPool::local().release(buf->base, buf->len);
    if (nread == 0) return;
    self->readStop();
    self->read_done_ = true;
    if (self->on_read_) self->on_read_(static_cast<int>(nread), nullptr, 0);
  }

  static void onWrite(uv_write_t* req, int status) {
    auto* w = static_cast<WriteReq*>(req->data);
    if (*w->alive) {
      w->self->queued_ -= w->data.size();
      if (w->done) w->done(status);
    }
    delete w;
  }

  uv_tcp_t* tcp_;
  ReadFn on_read_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  size_t queued_ = 0;
  size_t buf_size_ = 16384;
  bool reading_ = false;
  bool read_done_ = false;
  bool closed_ = false;
};

/// Delivers `prefix` (bytes a handshake read past its end) before the inner stream's bytes.
class PrefixedStream final : public Stream {
 public:
  PrefixedStream(uv_loop_t* loop, StreamPtr inner, std::string prefix)
      : loop_(loop), inner_(std::move(inner)), prefix_(std::move(prefix)) {}

  void readStart(ReadFn on_read) override {
    on_read_ = std::move(on_read);
    reading_ = true;
    if (prefix_.empty()) {
      startInner();
      return;
    }
    loop::defer(loop_, [this, alive = alive_] {
      if (!*alive || !reading_ || prefix_.empty()) return;
      std::string p = std::move(prefix_);
      prefix_.clear();
      on_read_(0, p.data(), p.size());
      if (*alive && reading_) startInner();
    });
  }
  void readStop() override {
    reading_ = false;
    inner_->readStop();
  }
  void write(const char* data, size_t len, DoneFn done) override {
    inner_->write(data, len, std::move(done));
  }
  size_t writeQueueSize() const override { return inner_->writeQueueSize(); }
  void shutdown(DoneFn done) override { inner_->shutdown(std::move(done)); }
  void close(bool reset) override {
    if (closed_) return;
    closed_ = true;
    *alive_ = false;
    inner_.release()->close(reset);
    // Freed from the loop: close() may run inside on_read_.
    loop::defer(loop_, [self = this] { delete self; });
  }
  uv_tcp_t* releaseTcp() override { return prefix_.empty() ? inner_->releaseTcp() : nullptr; }
  uv_tcp_t* socket() override { return inner_->socket(); }
  const char* kind() const override { return inner_->kind(); }

 private:
  void startInner() {
    inner_->readStart([this](int status, const char* data, size_t len) {
      if (!closed_ && on_read_) on_read_(status, data, len);
    });
  }

  uv_loop_t* loop_;
  StreamPtr inner_;
  std::string prefix_;
  ReadFn on_read_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
  bool reading_ = false;
  bool closed_ = false;
};

}  // namespace

StreamPtr makePrefixedStream(uv_loop_t* loop, StreamPtr inner, std::string prefix) {
  if (prefix.empty()) return inner;
  return StreamPtr(new PrefixedStream(loop, std::move(inner), std::move(prefix)));
}

StreamPtr makeTcpStream(uv_tcp_t* tcp) { return StreamPtr(new TcpStream(tcp)); }

}  // namespace veer::conn
