#include "conn/tracker.h"

namespace veer::conn {

void Tracker::add(uint64_t id, const InboundContext& ctx, Closable* c) {
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

std::vector<TrackedInfo> Tracker::list() const {
  std::vector<TrackedInfo> out;
  out.reserve(items_.size());
  for (const auto& [id, item] : items_) {
    out.push_back(TrackedInfo{item.ctx, item.c->bytesUp(), item.c->bytesDown()});
  }
  return out;
}

}  // namespace veer::conn
