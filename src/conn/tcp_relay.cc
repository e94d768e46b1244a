#include "conn/tcp_relay.h"

#include <cstring>

#include "base/log.h"
#include "loop/buffer_pool.h"
#include "loop/uv_util.h"

namespace veer::conn {

namespace {
uint64_t g_live = 0;
}

struct TcpRelay::WriteReq {
  uv_write_t req{};
  Direction* dir = nullptr;
  char* base = nullptr;  // pool buffer (or heap copy for early data when cap == 0)
  size_t cap = 0;
  size_t len = 0;
};

uint64_t TcpRelay::liveCount() { return g_live; }

TcpRelay::TcpRelay(uv_loop_t* loop, const RelayOptions& opts, DoneCallback done)
    : loop_(loop), opts_(opts), done_(std::move(done)) {
  ++g_live;
}

TcpRelay::~TcpRelay() { --g_live; }

TcpRelay* TcpRelay::start(uv_loop_t* loop, uv_tcp_t* client, uv_tcp_t* remote,
                          std::string early_data, const RelayOptions& opts, DoneCallback done) {
  auto* r = new TcpRelay(loop, opts, std::move(done));
  r->dirs_[0] = Direction{r, client, remote};
  r->dirs_[1] = Direction{r, remote, client};
  client->data = r;
  remote->data = r;
  uv_timer_init(loop, &r->timer_);
  r->timer_.data = r;
  r->open_handles_ = 3;
  r->last_activity_ = uv_now(loop);
  r->armTimer();
  if (!early_data.empty()) {
    // The cached bytes go out first and whole, so that the remote sees them in one segment
    // with nothing of ours in front.
    size_t n = early_data.size();
    char* copy = static_cast<char*>(std::malloc(n));
    std::memcpy(copy, early_data.data(), n);
    r->dirs_[0].bytes += n;
    r->writeTo(r->dirs_[0], copy, 0, 0, n);
  }
  if (!r->finished_) r->startReading(r->dirs_[0]);
  if (!r->finished_) r->startReading(r->dirs_[1]);
  return r;
}

void TcpRelay::startReading(Direction& d) {
  if (d.reading || d.eof || finished_) return;
  d.reading = true;
  d.src->data = this;
  // libuv calls alloc_cb only when the socket is readable, so an idle relay holds no buffer.
  int rc = uv_read_start(
      reinterpret_cast<uv_stream_t*>(d.src),
      [](uv_handle_t* h, size_t, uv_buf_t* buf) {
        auto* r = static_cast<TcpRelay*>(h->data);
        Direction& dd = reinterpret_cast<uv_tcp_t*>(h) == r->dirs_[0].src ? r->dirs_[0] : r->dirs_[1];
        buf->base = loop::BufferPool::local().acquire(dd.buf_size);
        buf->len = dd.buf_size;
      },
      [](uv_stream_t* s, ssize_t nread, const uv_buf_t* buf) {
        auto* r = static_cast<TcpRelay*>(s->data);
        Direction& dd = reinterpret_cast<uv_tcp_t*>(s) == r->dirs_[0].src ? r->dirs_[0] : r->dirs_[1];
        r->onRead(dd, nread, buf);
      });
  if (rc != 0) {
    d.reading = false;
    finish(loop::uvError(rc, "read start").message(), true, false, false);
  }
}

void TcpRelay::onRead(Direction& d, ssize_t nread, const uv_buf_t* buf) {
  if (nread <= 0) {
    if (buf->base) loop::BufferPool::local().release(buf->base, buf->len);
    if (nread == 0 || finished_) return;  // EAGAIN
    if (nread == UV_EOF) {
      onEof(d);
      return;
    }
    bool from_client = &d == &dirs_[0];
    std::string who = from_client ? "client" : "remote";
    bool reset = nread == UV_ECONNRESET;
    // Pass a reset on to the other side as a reset, so the peer learns the truth.
    finish(who + ": " + uv_strerror(static_cast<int>(nread)), true, reset && !from_client,
           reset && from_client);
    return;
  }
  size_t n = static_cast<size_t>(nread);
  d.bytes += n;
  last_activity_ = uv_now(loop_);
  // Adapt the next read size to the flow: bulk flows get large reads, chatty ones small.
  if (n == buf->len && d.buf_size < loop::BufferPool::kMaxSize) {
    d.buf_size <<= 1;
  } else if (n <= buf->len / 4 && d.buf_size > loop::BufferPool::kMinSize) {
    d.buf_size >>= 1;
  }
  writeTo(d, buf->base, buf->len, 0, n);
}

void TcpRelay::writeTo(Direction& d, char* base, size_t cap, size_t off, size_t len) {
  auto release = [](char* b, size_t c) {
    if (c == 0) {
      std::free(b);
    } else {
      loop::BufferPool::local().release(b, c);
    }
  };
  if (finished_ || d.shut) {
    release(base, cap);
    return;
  }
  // Try the write synchronously first: most of the time the socket buffer has room and the
  // payload buffer goes straight back to the pool.
  if (d.pending == 0) {
    uv_buf_t b = uv_buf_init(base + off, static_cast<unsigned>(len));
    int w = uv_try_write(reinterpret_cast<uv_stream_t*>(d.dst), &b, 1);
    if (w > 0) {
      off += static_cast<size_t>(w);
      len -= static_cast<size_t>(w);
    } else if (w != UV_EAGAIN && w != UV_ENOSYS) {
      release(base, cap);
      bool to_remote = &d == &dirs_[0];
      finish(std::string(to_remote ? "remote" : "client") + ": " + uv_strerror(w), true,
             w == UV_ECONNRESET && to_remote, w == UV_ECONNRESET && !to_remote);
      return;
    }
    if (len == 0) {
      release(base, cap);
      return;
    }
  }
  auto* wr = new WriteReq;
  wr->dir = &d;
  wr->base = base;
  wr->cap = cap;
  wr->len = len;
  wr->req.data = wr;
  uv_buf_t b = uv_buf_init(base + off, static_cast<unsigned>(len));
  int rc = uv_write(&wr->req, reinterpret_cast<uv_stream_t*>(d.dst), &b, 1,
                    [](uv_write_t* req, int status) {
                      auto* w = static_cast<WriteReq*>(req->data);
                      Direction& dd = *w->dir;
                      size_t l = w->len;
                      if (w->cap == 0) {
                        std::free(w->base);
                      } else {
                        loop::BufferPool::local().release(w->base, w->cap);
                      }
                      delete w;
                      dd.relay->onWriteDone(dd, status, l);
                    });
  if (rc != 0) {
    release(base, cap);
    delete wr;
    finish(loop::uvError(rc, "write").message(), true, false, false);
    return;
  }
  d.pending += len;
  if (d.pending > result_.max_queued) result_.max_queued = d.pending;
  if (d.pending > opts_.high_watermark && d.reading) {
    // The destination is slower than the source: stop reading until it drains.
    uv_read_stop(reinterpret_cast<uv_stream_t*>(d.src));
    d.reading = false;
  }
}

void TcpRelay::onWriteDone(Direction& d, int status, size_t len) {
  d.pending -= len;
  if (finished_) {
    return;
  }
  if (status != 0) {
    bool to_remote = &d == &dirs_[0];
    finish(std::string(to_remote ? "remote" : "client") + ": " + uv_strerror(status), true,
           status == UV_ECONNRESET && to_remote, status == UV_ECONNRESET && !to_remote);
    return;
  }
  last_activity_ = uv_now(loop_);
  if (!d.reading && !d.eof && d.pending <= opts_.low_watermark) startReading(d);
}

void TcpRelay::onEof(Direction& d) {
  d.eof = true;
  uv_read_stop(reinterpret_cast<uv_stream_t*>(d.src));
  d.reading = false;
  d.shutdown_req.data = &d;
  // uv_shutdown waits until the queued writes are flushed, then half-closes the destination.
  int rc = uv_shutdown(&d.shutdown_req, reinterpret_cast<uv_stream_t*>(d.dst),
                       [](uv_shutdown_t* req, int status) {
                         auto* dd = static_cast<Direction*>(req->data);
                         dd->relay->onShutdown(*dd, status);
                       });
  if (rc != 0) {
    finish(loop::uvError(rc, "shutdown").message(), true, false, false);
    return;
  }
  last_activity_ = uv_now(loop_);
  armTimer();
}

void TcpRelay::onShutdown(Direction& d, int status) {
  if (finished_) return;
  d.shut = true;
  if (status != 0 && status != UV_ENOTCONN) {
    finish(loop::uvError(status, "shutdown").message(), true, false, false);
    return;
  }
  if (dirs_[0].shut && dirs_[1].shut) finish("done", false, false, false);
}

void TcpRelay::armTimer() {
  bool half = dirs_[0].eof || dirs_[1].eof;
  uint64_t timeout = half ? opts_.half_close_timeout_ms : opts_.idle_timeout_ms;
  if (timeout == 0) {
    uv_timer_stop(&timer_);
    return;
  }
  uint64_t now = uv_now(loop_);
  uint64_t deadline = last_activity_ + timeout;
  uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<TcpRelay*>(t->data)->onTimer(); },
                 deadline > now ? deadline - now : 0, 0);
}

void TcpRelay::onTimer() {
  if (finished_) return;
  bool half = dirs_[0].eof || dirs_[1].eof;
  uint64_t timeout = half ? opts_.half_close_timeout_ms : opts_.idle_timeout_ms;
  // Activity moves last_activity_ without touching the timer (no timer syscalls per read);
  // here we either expire or re-arm for the remainder.
  if (uv_now(loop_) >= last_activity_ + timeout) {
    finish(half ? "half-close timeout" : "idle timeout", false, false, false);
    return;
  }
  armTimer();
}

void TcpRelay::abort(const std::string& reason) { finish(reason, false, false, false); }

void TcpRelay::finish(const std::string& reason, bool error, bool reset_client,
                      bool reset_remote) {
  if (finished_) return;
  finished_ = true;
  result_.up = dirs_[0].bytes;
  result_.down = dirs_[1].bytes;
  result_.reason = reason;
  result_.error = error;
  auto closed = [](uv_handle_t* h) {
    auto* r = static_cast<TcpRelay*>(h->data);
    if (h != reinterpret_cast<uv_handle_t*>(&r->timer_)) delete reinterpret_cast<uv_tcp_t*>(h);
    if (--r->open_handles_ == 0) {
      if (r->done_) r->done_(r->result_);
      delete r;
    }
  };
  uv_tcp_t* client = dirs_[0].src;
  uv_tcp_t* remote = dirs_[0].dst;
  if (reset_client && uv_tcp_close_reset(client, closed) == 0) {
  } else {
    loop::closeHandle(client, closed);
  }
  if (reset_remote && uv_tcp_close_reset(remote, closed) == 0) {
  } else {
    loop::closeHandle(remote, closed);
  }
  loop::closeHandle(&timer_, closed);
}

}  // namespace veer::conn
