#include "rules/lint.h"

#include <gtest/gtest.h>

#include "rules/dsl.h"

namespace veer::rules {
namespace {

std::vector<Diag> lint(std::string_view text, const RuleSetMap& sets = {}) {
  DiagList parse;
  DslFile f = parseDsl(text, "l.veer", DslMode::Route, parse);
  EXPECT_TRUE(parse.empty()) << renderDiags(text, parse);
  DiagList diags;
  lintRules(f.rules, sets, diags);
  return diags.all();
}

TEST(Lint, CleanRulesGiveNothing) {
  EXPECT_TRUE(lint("domain:a.com => x\ndomain:b.com => y\nport:443 => z\n").empty());
}

TEST(Lint, ExactDuplicateAfterFinalRule) {
  auto d = lint("domain:[a.com, b.com] && port:443 => x\nport:443 && domain:[b.com, a.com, a.com] => y\n");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].code, "duplicate-rule");
  EXPECT_EQ(d[0].line, 2u);
  EXPECT_EQ(d[0].severity, Diag::Severity::Warning);
  EXPECT_NE(d[0].message.find("rule #0 (l.veer:1:1)"), std::string::npos) << d[0].message;
}

TEST(Lint, DuplicateAfterNonFinalRuleIsFine) {
  EXPECT_TRUE(lint("domain:a.com => sniff\ndomain:a.com => x\n").empty());
  EXPECT_TRUE(lint("any => resolve\ndomain:a.com => x\n").empty());
}

TEST(Lint, InvertedDuplicateIsNotADuplicate) {
  EXPECT_TRUE(lint("domain:a.com => x\n!domain:a.com => y\n").empty());
}

TEST(Lint, CatchAllBefore) {
  auto d = lint("any => direct\ndomain:a.com => x\n");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].code, "shadowed-rule");
  d = lint("domain:z.com || any => direct\ndomain:a.com => x\n");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].code, "shadowed-rule");
  d = lint("!any => direct\nport:1 => x\n");  // sing-box: a rule without items always matches
  ASSERT_EQ(d.size(), 1u);
  // An inverted OR containing a catch-all matches nothing: it shadows nothing.
  EXPECT_TRUE(lint("!(domain:z.com || any) => direct\ndomain:a.com => x\n").empty());
}

TEST(Lint, EmptyRuleSetAndBadRegex) {
  RuleSetMap sets;
  sets["empty"] = {};
  RuleSpec bad;
  bad.domain_regex = {"(x"};
  sets["bad"] = {bad};
  RuleSpec r;
  r.rule_set = {"empty"};
  r.domain_regex = {"[z"};
  r.action = RuleAction{};
  DiagList diags;
  lintRules({r}, sets, diags);
  bool empty = false;
  int regex = 0;
  for (const auto& d : diags.all()) {
    empty = empty || d.code == "empty-rule-set";
    regex += d.code == "bad-regex" && d.severity == Diag::Severity::Error;
  }
  EXPECT_TRUE(empty);
  EXPECT_EQ(regex, 2);
}

TEST(Lint, RuleSetMergeWarning) {
  auto d = lint("domain:a.com && rule_set:x => y\n");
  ASSERT_EQ(d.size(), 1u);
  EXPECT_EQ(d[0].code, "rule-set-merge");
  EXPECT_TRUE(lint("rule_set:x && network:tcp => y\n").empty());
}

}  // namespace
}  // namespace veer::rules
