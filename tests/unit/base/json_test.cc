#include "base/json.h"

#include <gtest/gtest.h>

namespace veer::json {
namespace {

TEST(Json, RecordsPositions) {
  std::string text = "{\n  // comment with \"quote\n  \"a\": 1,\n  \"bb\": [true, \"x\"],\n}\n";
  auto v = parse(text, "t.json");
  ASSERT_TRUE(v) << v.error().message();
  const Value* a = v->find("a");
  ASSERT_NE(a, nullptr);
  EXPECT_EQ(a->pos.line, 3u);
  EXPECT_EQ(a->pos.column, 8u);
  EXPECT_EQ(v->members[0].key_pos.line, 3u);
  EXPECT_EQ(v->members[0].key_pos.column, 3u);
  const Value* bb = v->find("bb");
  ASSERT_NE(bb, nullptr);
  ASSERT_EQ(bb->items.size(), 2u);
  EXPECT_EQ(bb->items[1].pos.line, 4u);
  EXPECT_EQ(bb->items[1].pos.column, 16u);
}

TEST(Json, SyntaxErrorHasPosition) {
  auto v = parse("{\n \"a\": 1\n \"b\": 2}", "c.json");
  ASSERT_FALSE(v);
  EXPECT_EQ(v.error().message().rfind("c.json:3:", 0), 0u) << v.error().message();
  auto w = parse("{} x", "d.json");
  ASSERT_FALSE(w);
  EXPECT_NE(w.error().message().find("d.json:1:4"), std::string::npos) << w.error().message();
}

TEST(Json, DeepNestingIsRefused) {
  std::string deep(10000, '[');
  auto v = parse(deep, "deep.json");
  ASSERT_FALSE(v);
}

TEST(ObjectReader, UnknownFieldsAndTypes) {
  auto v = parse("{\"listen\": \"::\", \"listen_prot\": 1, \"port\": \"x\", \"ok\": [1, 70000]}",
                 "f.json");
  ASSERT_TRUE(v);
  DiagList diags;
  ObjectReader r(*v, "inbounds[0]", "f.json", diags);
  std::string listen;
  EXPECT_TRUE(r.str("listen", listen));
  uint16_t port = 7;
  EXPECT_FALSE(r.u16("port", port));
  EXPECT_EQ(port, 7);
  std::vector<uint16_t> ok;
  EXPECT_FALSE(r.u16List("ok", ok));
  r.finish();
  ASSERT_EQ(diags.all().size(), 3u);
  EXPECT_EQ(diags.all()[2].toString(), "f.json:1:18: unknown field \"listen_prot\" at inbounds[0]");
}

TEST(Duration, GoSyntax) {
  EXPECT_EQ(parseDurationMs("300ms"), 300u);
  EXPECT_EQ(parseDurationMs("5m"), 300000u);
  EXPECT_EQ(parseDurationMs("1h30m"), 5400000u);
  EXPECT_EQ(parseDurationMs("1.5s"), 1500u);
  EXPECT_FALSE(parseDurationMs("5"));
  EXPECT_FALSE(parseDurationMs("abc"));
  EXPECT_FALSE(parseDurationMs(""));
}

TEST(Diag, RendersCaret) {
  std::string r = renderSourceLine("a\n  bad line\n", 2, 3);
  EXPECT_EQ(r, "    2 |   bad line\n      |   ^\n");
}

}  // namespace
}  // namespace veer::json
