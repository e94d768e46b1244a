// The selector group: default member, switching at run time, delegation and cancellation.
#include <gtest/gtest.h>

#include "outbound/outbound.h"

namespace veer::outbound {
namespace {

class FakeOutbound : public Outbound {
 public:
  explicit FakeOutbound(std::string tag) : Outbound("fake", std::move(tag)) {}
  uint64_t dialTcp(const conn::InboundContext&, DialCallback cb) override {
    cbs.push_back(std::move(cb));
    return cbs.size();
  }
  void cancelDial(uint64_t id) override { cancelled.push_back(id); }
  Result<PacketConn*> listenUdp(const conn::InboundContext&, PacketConn::ReceiveFn) override {
    ++udp;
    return unexpected(Error("fake"));
  }
  std::vector<DialCallback> cbs;
  std::vector<uint64_t> cancelled;
  int udp = 0;
};

TEST(Selector, DefaultSwitchAndDelegate) {
  auto a = std::make_shared<FakeOutbound>("a");
  auto b = std::make_shared<FakeOutbound>("b");
  auto sel = makeSelector("sel", {a, b}, "b");
  EXPECT_EQ(sel->selected(), "b");
  conn::InboundContext ctx;
  int done = 0;
  sel->dialTcp(ctx, [&](Result<conn::StreamPtr> r) {
    EXPECT_FALSE(r);
    ++done;
  });
  ASSERT_EQ(b->cbs.size(), 1u);
  EXPECT_TRUE(a->cbs.empty());
  b->cbs[0](unexpected(Error("x")));
  EXPECT_EQ(done, 1);

  ASSERT_TRUE(sel->select("a"));
  EXPECT_EQ(sel->selected(), "a");
  uint64_t id = sel->dialTcp(ctx, [&](Result<conn::StreamPtr>) { ++done; });
  ASSERT_EQ(a->cbs.size(), 1u);
  sel->cancelDial(id);
  ASSERT_EQ(a->cancelled.size(), 1u);
  (void)sel->listenUdp(ctx, nullptr);
  EXPECT_EQ(a->udp, 1);

  auto bad = sel->select("nope");
  ASSERT_FALSE(bad);
  EXPECT_NE(bad.error().message().find("not a member"), std::string::npos);
  EXPECT_EQ(sel->selected(), "a");
}

TEST(Selector, NoDefaultUsesFirst) {
  auto a = std::make_shared<FakeOutbound>("a");
  auto b = std::make_shared<FakeOutbound>("b");
  auto sel = makeSelector("sel", {a, b}, "");
  EXPECT_EQ(sel->selected(), "a");
}

TEST(Selector, DestroyCancelsPendingDials) {
  auto a = std::make_shared<FakeOutbound>("a");
  {
    auto sel = makeSelector("sel", {a}, "");
    conn::InboundContext ctx;
    sel->dialTcp(ctx, [](Result<conn::StreamPtr>) { FAIL() << "callback after destruction"; });
  }
  EXPECT_EQ(a->cancelled.size(), 1u);
  a->cbs[0](unexpected(Error("late")));  // ignored
}

}  // namespace
}  // namespace veer::outbound
