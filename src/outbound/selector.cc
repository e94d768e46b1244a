// The selector group (sing-box protocol/group/selector.go): every dial and UDP session goes to
// the selected member. Also the shared-ownership wrapper and the proxy servers' own dialer.
#include <unordered_map>

#include "base/log.h"
#include "outbound/handshake.h"
#include "outbound/outbound.h"

namespace veer::outbound {

namespace {

class SharedWrapper : public Outbound {
 public:
  explicit SharedWrapper(SharedOutbound inner)
      : Outbound(inner->type(), inner->tag()), inner_(std::move(inner)) {}
  uint64_t dialTcp(const conn::InboundContext& ctx, DialCallback cb) override {
    return inner_->dialTcp(ctx, std::move(cb));
  }
  void cancelDial(uint64_t id) override { inner_->cancelDial(id); }
  Result<PacketConn*> listenUdp(const conn::InboundContext& ctx,
                                PacketConn::ReceiveFn fn) override {
    return inner_->listenUdp(ctx, std::move(fn));
  }

 private:
  SharedOutbound inner_;
};

class SelectorImpl : public Selector {
 public:
  SelectorImpl(std::string tag, std::vector<SharedOutbound> members, const std::string& def)
      : Selector("selector", std::move(tag)), members_(std::move(members)) {
    if (!members_.empty()) current_ = members_.front().get();
    if (!def.empty()) (void)select(def);
  }

  Status select(const std::string& tag) override {
    for (const auto& m : members_) {
      if (m->tag() == tag) {
        if (current_ != m.get()) {
          LOG_INFO("selector %s: selected %s", this->tag().c_str(), tag.c_str());
        }
        current_ = m.get();
        return {};
      }
    }
    return unexpected(Error("selector " + this->tag() + ": \"" + tag + "\" is not a member"));
  }
  const std::string& selected() const override {
    static const std::string none;
    return current_ ? current_->tag() : none;
  }

  std::vector<std::string> members() const override {
    std::vector<std::string> out;
    for (const auto& m : members_) out.push_back(m->tag());
    return out;
  }

  uint64_t dialTcp(const conn::InboundContext& ctx, DialCallback cb) override {
    return dialer_.dial(current_, ctx, std::move(cb));
  }
  void cancelDial(uint64_t id) override { dialer_.cancel(id); }
  Result<PacketConn*> listenUdp(const conn::InboundContext& ctx,
                                PacketConn::ReceiveFn fn) override {
    return current_->listenUdp(ctx, std::move(fn));
  }

 private:
  std::vector<SharedOutbound> members_;
  Outbound* current_ = nullptr;
  GroupDialer dialer_;
};

}  // namespace

OutboundPtr makeShared(SharedOutbound inner) {
  return std::make_unique<SharedWrapper>(std::move(inner));
}

SharedOutbound makeServerDialer(uv_loop_t* loop, conn::HostResolver* resolver,
                                const DirectOptions& opts) {
  return SharedOutbound(makeDirect("direct", loop, resolver, opts).release());
}

std::unique_ptr<Selector> makeSelector(std::string tag, std::vector<SharedOutbound> members,
                                       const std::string& default_tag) {
  return std::make_unique<SelectorImpl>(std::move(tag), std::move(members), default_tag);
}

}  // namespace veer::outbound
