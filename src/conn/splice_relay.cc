// SpliceRelay: the relay for two plain TCP sockets on Linux, moving bytes with splice(2)
// through one pipe per direction, so payload never enters user space.
//
// The sockets are taken over from their uv_tcp_t handles (the fds are duplicated and the
// handles closed, which removes them from libuv's epoll set) and registered, edge-triggered, in
// one epoll set per loop that a single uv_poll_t watches (SplicePoller). Semantics match
// TcpRelay: half-close passes EOF on as shutdown(SHUT_WR) once the pipe toward that side is
// empty; a reset is passed on as a reset; the idle and half-close timers are the same. Pipes
// come from a small per-thread pool and are taken only when a direction carries data, so an
// idle relay holds none; the pipe's capacity (256 KiB) is the backpressure bound: a full pipe
// stops reads from its source until the destination takes some.
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <vector>

#include "base/log.h"
#include "conn/tcp_relay.h"
#include "loop/uv_util.h"

#ifdef __linux__
#include <fcntl.h>
#include <sys/epoll.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>
#endif

namespace veer::conn {

namespace {

RelayStats g_relay_stats;

#ifdef __linux__

constexpr size_t kSpliceChunk = 1 << 20;
constexpr int kPipeSize = 256 * 1024;  // VEER_PIPE_SIZE (bytes) in the environment overrides

struct Pipe {
  int r = -1, w = -1;
};

class PipePool {
 public:
  ~PipePool() {
    for (auto& p : free_) {
      ::close(p.r);
      ::close(p.w);
    }
  }
  bool acquire(Pipe& out) {
    if (!free_.empty()) {
      out = free_.back();
      free_.pop_back();
      ++g_relay_stats.pipes_in_use;
      return true;
    }
    int fds[2];
    if (pipe2(fds, O_NONBLOCK | O_CLOEXEC) != 0) return false;
    out.r = fds[0];
    out.w = fds[1];
    // A 64 KiB pipe (the default) moves at most 16 pages per splice() pair; 256 KiB cuts the
    // syscalls per byte by four (bench/run: 0.41 → 0.23-0.29 CPU s/GiB, 12-13 → 16-19 Gbit/s
    // upload). Pages are only held while a transfer is in flight, and a drained pipe goes back
    // to the pool. Failing (an unprivileged user over fs.pipe-user-pages-soft) keeps 64 KiB.
    static const int want = [] {
      const char* e = std::getenv("VEER_PIPE_SIZE");
      int v = e ? std::atoi(e) : 0;
      return v > 0 ? v : kPipeSize;
    }();
    if (want != 65536) (void)fcntl(out.w, F_SETPIPE_SZ, want);
    ++g_relay_stats.pipes_in_use;
    return true;
  }
  // Only empty pipes come back (a pipe with bytes left is closed instead).
  void release(Pipe p, bool empty) {
    if (p.r < 0) return;
    --g_relay_stats.pipes_in_use;
    if (!empty || free_.size() >= 16) {
      ::close(p.r);
      ::close(p.w);
      return;
    }
    free_.push_back(p);
  }
  static PipePool& local() {
    static thread_local PipePool pool;
    return pool;
  }

 private:
  std::vector<Pipe> free_;
};

class SpliceRelay;

// One edge-triggered epoll set per loop holds the sockets of every splice relay on that loop;
// one uv_poll_t watches the set. Compared with a level-triggered uv_poll_t per socket, a relay
// costs two epoll_ctl(ADD) and two epoll_ctl(DEL) for its whole life (libuv's uv_poll_start
// removes and re-adds the fd on every change of interest, and uv_poll_init probes each fd with
// an ADD and a DEL), and 320 bytes less. The set exists while at least one relay uses it.
class SplicePoller {
 public:
  static SplicePoller* forLoop(uv_loop_t* loop) {
    for (SplicePoller* p : live()) {
      if (p->loop_ == loop && !p->closing_) return p;
    }
    int ep = epoll_create1(EPOLL_CLOEXEC);
    if (ep < 0) return nullptr;
    auto* p = new SplicePoller(loop, ep);
    if (uv_poll_init(loop, &p->poll_, ep) != 0) {
      ::close(ep);
      delete p;
      return nullptr;
    }
    p->poll_.data = p;
    uv_poll_start(&p->poll_, UV_READABLE, [](uv_poll_t* h, int, int) {
      static_cast<SplicePoller*>(h->data)->dispatch();
    });
    live().push_back(p);
    return p;
  }

  // Registers a socket for input, output and peer shutdown, edge-triggered; `tag` comes back
  // with its events.
  bool add(int fd, uint64_t tag) {
    epoll_event ev{};
    ev.events = EPOLLIN | EPOLLOUT | EPOLLRDHUP | EPOLLET;
    ev.data.u64 = tag;
    return epoll_ctl(epfd_, EPOLL_CTL_ADD, fd, &ev) == 0;
  }
  // Explicit, not left to close(): the file may still be open elsewhere (the handle it was
  // duplicated from closes only in the loop's close phase), and its events must not outlive
  // the relay.
  void remove(int fd) { (void)epoll_ctl(epfd_, EPOLL_CTL_DEL, fd, nullptr); }

  void retain() { ++users_; }
  void release() {
    if (--users_ > 0 || closing_) return;
    closing_ = true;
    auto& l = live();
    for (size_t i = 0; i < l.size(); ++i) {
      if (l[i] == this) {
        l.erase(l.begin() + static_cast<long>(i));
        break;
      }
    }
    uv_close(reinterpret_cast<uv_handle_t*>(&poll_), [](uv_handle_t* h) {
      auto* self = static_cast<SplicePoller*>(h->data);
      ::close(self->epfd_);
      delete self;
    });
  }

 private:
  SplicePoller(uv_loop_t* loop, int epfd) : loop_(loop), epfd_(epfd) {}

  static std::vector<SplicePoller*>& live() {
    static thread_local std::vector<SplicePoller*> pollers;
    return pollers;
  }

  inline void dispatch();

  uv_loop_t* loop_;
  int epfd_;
  uv_poll_t poll_{};
  size_t users_ = 0;
  bool closing_ = false;
};

class SpliceRelay : public Relay {
 public:
  static SpliceRelay* start(uv_loop_t* loop, SplicePoller* poller, int client_fd, int remote_fd,
                            uint64_t early_bytes, const RelayOptions& opts, DoneCallback done) {
    auto* r = new SpliceRelay(loop, poller, opts, std::move(done));
    r->fds_[0] = client_fd;
    r->fds_[1] = remote_fd;
    r->dirs_[0].bytes = early_bytes;
    uv_timer_init(loop, &r->timer_);
    r->timer_.data = r;
    r->last_activity_ = uv_now(loop);
    poller->retain();
    ++g_relay_stats.spliced;
    // The set reports each socket's current readiness on its next wait: nothing to do here.
    for (int side = 0; side < 2; ++side) {
      if (!poller->add(r->fds_[side], r->tag(side))) {
        r->finish(std::string("epoll: ") + strerror(errno), true, -1);
        return r;
      }
    }
    r->armTimer();
    return r;
  }

  void abort(const std::string& reason) override { finish(reason, false, -1); }
  uint64_t up() const override { return dirs_[0].bytes; }
  uint64_t down() const override { return dirs_[1].bytes; }

  // Events for socket `side` (0 = client, 1 = remote) from the poller.
  void onEvents(int side, uint32_t ev) {
    if (finished_) return;
    if (ev & (EPOLLIN | EPOLLRDHUP | EPOLLHUP | EPOLLERR)) readable_[side] = true;
    if (ev & (EPOLLOUT | EPOLLHUP | EPOLLERR)) writable_[side] = true;
    pump();
    if (finished_ || !(ev & EPOLLERR)) return;
    // An error the reads and writes above did not meet (nothing was left to move): say which.
    int err = 0;
    socklen_t len = sizeof(err);
    getsockopt(fds_[side], SOL_SOCKET, SO_ERROR, &err, &len);
    if (err != 0) {
      finish(std::string(side == 0 ? "client: " : "remote: ") + strerror(err), true,
             err == ECONNRESET ? 1 - side : -1);
    }
  }

 private:
  struct Direction {
    Pipe pipe;
    size_t in_pipe = 0;
    uint64_t bytes = 0;
    bool eof = false;   // the source said EOF
    bool shut = false;  // EOF passed on to the destination
    // The pipe took no more while the source still had bytes: reading waits for a drain.
    bool pipe_full = false;
  };

  SpliceRelay(uv_loop_t* loop, SplicePoller* poller, const RelayOptions& opts, DoneCallback done)
      : loop_(loop), poller_(poller), opts_(opts), done_(std::move(done)) {}

  // What the poller hands back with a socket's events: this relay, and the side in the low bit.
  uint64_t tag(int side) {
    return static_cast<uint64_t>(reinterpret_cast<uintptr_t>(this)) | static_cast<uint64_t>(side);
  }

  // dirs_[0]: client(fds_[0]) → remote(fds_[1]); dirs_[1]: remote → client.
  int src(int d) const { return fds_[d]; }
  int dst(int d) const { return fds_[1 - d]; }

  // Edge-triggered: readable_/writable_ remember what the last events said until a splice()
  // meets EAGAIN, so every byte the kernel announced is moved without waiting for another edge.
  void pump() {
    for (int d = 0; d < 2 && !finished_; ++d) {
      Direction& dir = dirs_[d];
      if (dir.in_pipe > 0 && writable_[1 - d]) drain(d);
      if (!finished_ && !dir.eof && readable_[d] && !dir.pipe_full) fill(d);
    }
  }

  // Reads from direction d's source into its pipe while the source has bytes and the pipe
  // room, passing them on whenever the destination takes them.
  void fill(int d) {
    Direction& dir = dirs_[d];
    while (!dir.eof) {
      if (dir.pipe.r < 0 && !PipePool::local().acquire(dir.pipe)) {
        finish(std::string("pipe: ") + strerror(errno), true, -1);
        return;
      }
      ssize_t n = splice(src(d), nullptr, dir.pipe.w, nullptr, kSpliceChunk,
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        dir.in_pipe += static_cast<size_t>(n);
        dir.bytes += static_cast<uint64_t>(n);
        last_activity_ = uv_now(loop_);
        if (writable_[1 - d]) drain(d);
        if (finished_) return;
        continue;  // the pipe holds what the destination did not take, while it has room
      }
      if (n == 0) {
        dir.eof = true;
        last_activity_ = uv_now(loop_);
        armTimer();
        if (dir.in_pipe == 0) passEof(d);
        return;
      }
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        if (dir.in_pipe > 0) {
          // Either the socket is empty or the pipe is full (a pipe holds 64 page buffers, fewer
          // bytes when the segments are small): ask the socket.
          int avail = 0;
          if (ioctl(src(d), FIONREAD, &avail) == 0 && avail > 0) {
            dir.pipe_full = true;  // the destination's next drain resumes reading
            return;
          }
          readable_[d] = false;
          return;
        }
        readable_[d] = false;
        // Nothing to read: an empty pipe goes back to the pool, so an idle connection holds
        // only its two sockets.
        if (dir.pipe.r >= 0) {
          PipePool::local().release(dir.pipe, true);
          dir.pipe = Pipe{};
        }
        return;
      }
      bool reset = errno == ECONNRESET;
      finish(std::string(d == 0 ? "client: " : "remote: ") + strerror(errno), true,
             reset ? 1 - d : -1);
      return;
    }
  }

  // Moves bytes from direction d's pipe to its destination.
  void drain(int d) {
    Direction& dir = dirs_[d];
    while (dir.in_pipe > 0) {
      ssize_t n = splice(dir.pipe.r, nullptr, dst(d), nullptr, dir.in_pipe,
                         SPLICE_F_MOVE | SPLICE_F_NONBLOCK);
      if (n > 0) {
        dir.in_pipe -= static_cast<size_t>(n);
        dir.pipe_full = false;
        continue;
      }
      if (n < 0 && errno == EINTR) continue;
      if (n < 0 && errno == EAGAIN) {
        writable_[1 - d] = false;  // EPOLLOUT says when it takes more
        return;
      }
      bool reset = n < 0 && (errno == ECONNRESET || errno == EPIPE);
      finish(std::string(d == 0 ? "remote: " : "client: ") +
                 (n < 0 ? strerror(errno) : "closed"),
             true, reset ? d : -1);
      return;
    }
    // Drained: the pipe goes back to the pool, so only transfers in flight hold pipe fds (a
    // router with thousands of mostly idle connections would otherwise hold two pipes each).
    PipePool::local().release(dir.pipe, true);
    dir.pipe = Pipe{};
    if (dir.eof) passEof(d);
  }

  void passEof(int d) {
    Direction& dir = dirs_[d];
    if (dir.shut) return;
    dir.shut = true;
    ::shutdown(dst(d), SHUT_WR);
    if (dirs_[0].shut && dirs_[1].shut) finish("done", false, -1);
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
    uv_timer_start(&timer_, [](uv_timer_t* t) { static_cast<SpliceRelay*>(t->data)->onTimer(); },
                   deadline > now ? deadline - now : 0, 0);
  }

  void onTimer() {
    if (finished_) return;
    bool half = dirs_[0].eof || dirs_[1].eof;
    uint64_t timeout = half ? opts_.half_close_timeout_ms : opts_.idle_timeout_ms;
    if (uv_now(loop_) >= last_activity_ + timeout) {
      finish(half ? "half-close timeout" : "idle timeout", false, -1);
      return;
    }
    armTimer();
  }

  // reset_side: 0 = send RST to the client, 1 = to the remote, -1 = orderly close.
  void finish(const std::string& reason, bool error, int reset_side) {
    if (finished_) return;
    finished_ = true;
    result_.up = dirs_[0].bytes;
    result_.down = dirs_[1].bytes;
    result_.reason = reason;
    result_.error = error;
    for (int d = 0; d < 2; ++d) {
      PipePool::local().release(dirs_[d].pipe, dirs_[d].in_pipe == 0);
      dirs_[d].pipe = Pipe{};
    }
    if (reset_side >= 0) {
      linger lg{1, 0};
      setsockopt(fds_[reset_side], SOL_SOCKET, SO_LINGER, &lg, sizeof(lg));
    }
    // Out of the set before the fds close; the relay itself is freed only in the loop's close
    // phase, after any events of this round that still name it (they see finished_).
    for (int side = 0; side < 2; ++side) {
      poller_->remove(fds_[side]);
      ::close(fds_[side]);
    }
    poller_->release();
    uv_close(reinterpret_cast<uv_handle_t*>(&timer_), [](uv_handle_t* h) {
      auto* self = static_cast<SpliceRelay*>(h->data);
      if (self->done_) self->done_(self->result_);
      delete self;
    });
  }

  uv_loop_t* loop_;
  SplicePoller* poller_;
  RelayOptions opts_;
  DoneCallback done_;
  int fds_[2] = {-1, -1};
  uv_timer_t timer_{};
  Direction dirs_[2];
  uint64_t last_activity_ = 0;
  bool readable_[2] = {false, false};
  bool writable_[2] = {false, false};
  bool finished_ = false;
  RelayResult result_;
};

void SplicePoller::dispatch() {
  epoll_event evs[64];
  // A bounded number of rounds per wake-up; what is left keeps the set readable for the next
  // loop iteration, so other handles are not starved.
  for (int round = 0; round < 4 && !closing_; ++round) {
    int n = epoll_wait(epfd_, evs, 64, 0);
    for (int i = 0; i < n; ++i) {
      uint64_t t = evs[i].data.u64;
      auto* r = reinterpret_cast<SpliceRelay*>(static_cast<uintptr_t>(t & ~uint64_t{1}));
      r->onEvents(static_cast<int>(t & 1), evs[i].events);
    }
    if (n < 64) return;
  }
}

// Takes the fd out of a uv_tcp_t: duplicates it and closes the handle (and its fd).
int detachFd(uv_tcp_t* t) {
  uv_os_fd_t fd;
  if (uv_fileno(reinterpret_cast<uv_handle_t*>(t), &fd) != 0) return -1;
  int copy = fcntl(fd, F_DUPFD_CLOEXEC, 0);
  return copy;
}

void closeTcp(uv_tcp_t* t) {
  loop::closeHandle(t, [](uv_handle_t* h) { delete reinterpret_cast<uv_tcp_t*>(h); });
}

#endif  // __linux__

}  // namespace

const RelayStats& relayStats() { return g_relay_stats; }

Relay* startRelay(uv_loop_t* loop, uv_tcp_t* client, uv_tcp_t* remote, std::string early_data,
                  const RelayOptions& opts, Relay::DoneCallback done) {
#ifdef __linux__
  if (opts.splice) {
    // Early data must reach the remote before anything spliced: write it now, whole, or fall
    // back to the buffered relay, which queues it.
    bool early_ok = true;
    if (!early_data.empty()) {
      uv_buf_t b = uv_buf_init(early_data.data(), static_cast<unsigned>(early_data.size()));
      int w = uv_try_write(reinterpret_cast<uv_stream_t*>(remote), &b, 1);
      early_ok = w == static_cast<int>(early_data.size());
      if (!early_ok && w > 0) early_data.erase(0, static_cast<size_t>(w));
    }
    SplicePoller* poller = early_ok ? SplicePoller::forLoop(loop) : nullptr;
    if (poller) {
      int cfd = detachFd(client);
      int rfd = detachFd(remote);
      if (cfd >= 0 && rfd >= 0) {
        uint64_t early_bytes = early_data.size();
        closeTcp(client);
        closeTcp(remote);
        return SpliceRelay::start(loop, poller, cfd, rfd, early_bytes, opts, std::move(done));
      }
      if (cfd >= 0) ::close(cfd);
      if (rfd >= 0) ::close(rfd);
      poller->retain();
      poller->release();  // closes the set if no relay uses it
    }
  }
#endif
  ++g_relay_stats.buffered;
  return TcpRelay::start(loop, client, remote, std::move(early_data), opts, std::move(done));
}

}  // namespace veer::conn
