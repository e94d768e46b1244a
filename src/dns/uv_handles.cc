#include "dns/uv_handles.h"

namespace veer::dns {

UvTimer::UvTimer(uv_loop_t* loop, std::function<void()> on_fire) : on_fire_(std::move(on_fire)) {
  uv_timer_init(loop, &handle_);  // cannot fail on Linux
  handle_.data = this;
}

UvTimer* UvTimer::create(uv_loop_t* loop, std::function<void()> on_fire) {
  return new UvTimer(loop, std::move(on_fire));
}

void UvTimer::start(uint64_t timeout_ms, uint64_t repeat_ms) {
  if (closing_) return;
  uv_timer_start(&handle_, &UvTimer::onTimer, timeout_ms, repeat_ms);
}

void UvTimer::stop() {
  if (!closing_) uv_timer_stop(&handle_);
}

bool UvTimer::active() const {
  return !closing_ && uv_is_active(reinterpret_cast<const uv_handle_t*>(&handle_));
}

void UvTimer::close() {
  if (closing_) return;
  closing_ = true;
  on_fire_ = nullptr;  // release captures now; nothing may run after close()
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), &UvTimer::onClose);
}

void UvTimer::onTimer(uv_timer_t* h) {
  auto* self = static_cast<UvTimer*>(h->data);
  if (self->closing_ || !self->on_fire_) return;
  // Copy: the callback may close this timer, which clears on_fire_ while it runs.
  auto fn = self->on_fire_;
  fn();
}

void UvTimer::onClose(uv_handle_t* h) { delete static_cast<UvTimer*>(h->data); }

Deferrer::Deferrer(uv_loop_t* loop) {
  uv_idle_init(loop, &handle_);
  handle_.data = this;
}

Deferrer* Deferrer::create(uv_loop_t* loop) { return new Deferrer(loop); }

void Deferrer::post(std::function<void()> fn) {
  if (closing_) return;
  queue_.push_back(std::move(fn));
  if (queue_.size() == 1) uv_idle_start(&handle_, &Deferrer::onIdle);
}

void Deferrer::close() {
  if (closing_) return;
  closing_ = true;
  queue_.clear();
  uv_close(reinterpret_cast<uv_handle_t*>(&handle_), &Deferrer::onClose);
}

void Deferrer::onIdle(uv_idle_t* h) {
  auto* self = static_cast<Deferrer*>(h->data);
  std::deque<std::function<void()>> batch;
  batch.swap(self->queue_);
  uv_idle_stop(h);
  for (auto& fn : batch) {
    // A function may close the deferrer (its owner went away): the rest must not run.
    if (self->closing_) return;
    fn();
  }
  if (!self->closing_ && !self->queue_.empty()) uv_idle_start(h, &Deferrer::onIdle);
}

void Deferrer::onClose(uv_handle_t* h) { delete static_cast<Deferrer*>(h->data); }

}  // namespace veer::dns
