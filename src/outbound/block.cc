#include <set>

#include "loop/defer.h"
#include "outbound/outbound.h"

namespace veer::outbound {

namespace {

// Refuses every connection. Also the `dns` outbound's stand-in: the router answers what is
// routed to a `dns` outbound itself (as hijack-dns), so a dial reaching it is an error.
class BlockOutbound : public Outbound {
 public:
  BlockOutbound(std::string type, std::string tag, uv_loop_t* loop, std::string why)
      : Outbound(std::move(type), std::move(tag)), loop_(loop), why_(std::move(why)) {}
  ~BlockOutbound() override { *alive_ = false; }

  uint64_t dialTcp(const conn::InboundContext&, DialCallback cb) override {
    uint64_t id = next_++;
    pending_.insert(id);
    loop::defer(loop_, [this, alive = alive_, id, cb = std::move(cb)] {
      if (!*alive || pending_.erase(id) == 0) return;  // cancelled
      cb(unexpected(Error(why_, UV_EPERM)));
    });
    return id;
  }
  void cancelDial(uint64_t id) override { pending_.erase(id); }
  Result<PacketConn*> listenUdp(const conn::InboundContext&, PacketConn::ReceiveFn) override {
    return unexpected(Error(why_, UV_EPERM));
  }

 private:
  uv_loop_t* loop_;
  std::string why_;
  uint64_t next_ = 1;
  std::set<uint64_t> pending_;
  std::shared_ptr<bool> alive_ = std::make_shared<bool>(true);
};

}  // namespace

OutboundPtr makeBlock(std::string tag, uv_loop_t* loop) {
  return std::make_unique<BlockOutbound>("block", std::move(tag), loop,
                                         "blocked by outbound block");
}

OutboundPtr makeDnsOutbound(std::string tag, uv_loop_t* loop) {
  return std::make_unique<BlockOutbound>("dns", std::move(tag), loop,
                                         "the dns outbound only takes DNS (hijacked by the router)");
}

}  // namespace veer::outbound
