// The two libuv handles the DNS module needs beyond c-ares' polls: a timer and a deferred-call
// queue. Until src/loop/ offers equivalents these live here. Both follow STYLE.md §3: the
// object is heap-only, owns its handle, close() is idempotent, and the object frees itself in
// the close callback. Owners hold them through the *Ptr aliases, whose deleter calls close():
// after that no callback runs, even though the memory lives until libuv's closing phase.
#pragma once

#include <uv.h>

#include <deque>
#include <functional>
#include <memory>

namespace veer::dns {

class UvTimer {
 public:
  static UvTimer* create(uv_loop_t* loop, std::function<void()> on_fire);
  UvTimer(const UvTimer&) = delete;
  UvTimer& operator=(const UvTimer&) = delete;

  void start(uint64_t timeout_ms, uint64_t repeat_ms = 0);
  void stop();
  void close();
  bool active() const;
  /// The timer no longer keeps the loop alive (uv_unref): for work that may be skipped when
  /// everything else has stopped (a debounced save also done at shutdown).
  void unref() { uv_unref(reinterpret_cast<uv_handle_t*>(&handle_)); }
  void ref() { uv_ref(reinterpret_cast<uv_handle_t*>(&handle_)); }

 private:
  UvTimer(uv_loop_t* loop, std::function<void()> on_fire);
  ~UvTimer() = default;
  static void onTimer(uv_timer_t* h);
  static void onClose(uv_handle_t* h);

  uv_timer_t handle_{};
  std::function<void()> on_fire_;
  bool closing_ = false;
};

/// Runs posted functions on a later loop iteration (an idle handle, so the loop does not block
/// in poll while work is queued). Functions posted while draining run on the next round.
class Deferrer {
 public:
  static Deferrer* create(uv_loop_t* loop);
  Deferrer(const Deferrer&) = delete;
  Deferrer& operator=(const Deferrer&) = delete;

  void post(std::function<void()> fn);
  /// Drops what is queued without running it.
  void close();
  size_t queued() const { return queue_.size(); }

 private:
  explicit Deferrer(uv_loop_t* loop);
  ~Deferrer() = default;
  static void onIdle(uv_idle_t* h);
  static void onClose(uv_handle_t* h);

  uv_idle_t handle_{};
  std::deque<std::function<void()>> queue_;
  bool closing_ = false;
};

struct UvCloser {
  void operator()(UvTimer* t) const { t->close(); }
  void operator()(Deferrer* d) const { d->close(); }
};
using UvTimerPtr = std::unique_ptr<UvTimer, UvCloser>;
using DeferrerPtr = std::unique_ptr<Deferrer, UvCloser>;

}  // namespace veer::dns
