#include "loop/defer.h"

namespace veer::loop {

namespace {
struct Deferred {
  uv_timer_t timer{};
  std::function<void()> fn;
};
}  // namespace

void defer(uv_loop_t* loop, std::function<void()> fn) {
  auto* d = new Deferred;
  d->fn = std::move(fn);
  uv_timer_init(loop, &d->timer);
  d->timer.data = d;
  uv_timer_start(&d->timer, [](uv_timer_t* t) {
    auto* dd = static_cast<Deferred*>(t->data);
    std::function<void()> f = std::move(dd->fn);
    uv_close(reinterpret_cast<uv_handle_t*>(t), [](uv_handle_t* h) {
      delete static_cast<Deferred*>(h->data);
    });
    if (f) f();
  }, 0, 0);
}

}  // namespace veer::loop
