#include "conn/tracker.h"

namespace veer::conn {

void Tracker::add(uint64_t id, const InboundContext* ctx, Closable* c) {
  items_[id] = Item{ctx, c};
}

void Tracker::remove(uint64_t id) { items_.erase(id); }

void Tracker::closeAll(const std::string& reason) {
  // closeNow() may remove entries synchronously or later: iterate over a snapshot of ids.
  std::vector<uint64_t> ids;
  ids.reserve(items_.size());
  for (const auto& [id, _] : items_) ids.push_back(id);
  for (uint64_t id : ids) {
    auto it = items_.find(id);
    if (it != items_.end()) it->second.c->closeNow(reason);
  }
}

bool Tracker::close(uint64_t id, const std::string& reason) {
  auto it = items_.find(id);
  if (it == items_.end()) return false;
  it->second.c->closeNow(reason);
  return true;
}

size_t Tracker::closeIf(const std::function<bool(const InboundContext&)>& pred,
                        const std::string& reason) {
  std::vector<uint64_t> ids;
  for (const auto& [id, item] : items_) {
    if (pred(*item.ctx)) ids.push_back(id);
  }
  size_t n = 0;
  for (uint64_t id : ids) n += close(id, reason) ? 1 : 0;
  return n;
}

std::vector<TrackedInfo> Tracker::list() const {
  std::vector<TrackedInfo> out;
  out.reserve(items_.size());
  for (const auto& [id, item] : items_) {
    out.push_back(TrackedInfo{*item.ctx, item.c->bytesUp(), item.c->bytesDown()});
  }
  return out;
}

}  // namespace veer::conn
