#include "loop/defer.h"
#include "outbound/outbound.h"

namespace veer::outbound {

namespace {

class BlockOutbound : public Outbound {
 public:
  BlockOutbound(std::string tag, uv_loop_t* loop) : Outbound("block", std::move(tag)), loop_(loop) {}

  uint64_t dialTcp(const conn::InboundContext&, DialCallback cb) override {
    uint64_t id = next_++;
    loop::defer(loop_, [cb = std::move(cb)] {
      cb(unexpected(Error("blocked by outbound block", UV_EPERM)));
    });
    return id;
  }
  void cancelDial(uint64_t) override {}
  Result<PacketConn*> listenUdp(const conn::InboundContext&, PacketConn::ReceiveFn) override {
    return unexpected(Error("blocked by outbound block", UV_EPERM));
  }

 private:
  uv_loop_t* loop_;
  uint64_t next_ = 1;
};

}  // namespace

OutboundPtr makeBlock(std::string tag, uv_loop_t* loop) {
  return std::make_unique<BlockOutbound>(std::move(tag), loop);
}

}  // namespace veer::outbound
