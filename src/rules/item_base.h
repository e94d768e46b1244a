// Compiled rule items. Each item tests one field kind (one file per kind: item_domain.cc,
// item_ip_cidr.cc, ...), like sing-box's route/rule/rule_item_*.go. match() is the hot path:
// it must not allocate unless `why` is non-null, which only `veer route explain` passes; then
// the item appends what matched ("domain_suffix \"google.com\"").
#pragma once

#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "rules/aho_corasick.h"
#include "rules/cidr_set.h"
#include "rules/domain_set.h"
#include "rules/geo.h"
#include "rules/match_input.h"

namespace re2 {
class RE2;
}

namespace veer::rules {

/// Per-evaluation switches that rule sets and on-demand resolution change.
struct EvalEnv {
  /// rule_set_ip_cidr_match_source: ip_cidr inside the sets tests the source address.
  bool ip_cidr_match_source = false;
  /// Optimistic pass for on-demand resolution: destination-IP items count as matching when the
  /// input has no destination IP yet ("could this rule match once the name is resolved?").
  bool assume_destination_ip = false;
};

class Item {
 public:
  virtual ~Item() = default;
  virtual bool match(const MatchInput& in, const EvalEnv& env, std::string* why) const = 0;
  /// The compiled form for logs and `veer check -v`, e.g. `domain_suffix(1200 suffix, 30 exact)`
  /// or `port=[443 8000-8100]`.
  virtual void describe(std::string& out) const = 0;
  /// True when the item tests the destination IP (ip_cidr, geoip, ip_is_private).
  virtual bool needsDestinationIp() const { return false; }
  virtual size_t memoryBytes() const { return 0; }
};
using ItemPtr = std::unique_ptr<Item>;

/// Provenance of a domain-matcher entry: 0 = the rule itself, k = geosite code k-1.
struct Origins {
  std::vector<std::string> geosite_codes;
  /// Appends "domain_suffix \"x.com\"" or "geosite:cn (domain_suffix \"x.com\")".
  void explain(uint32_t origin, std::string_view field, std::string_view value,
               std::string* why) const;
  /// Appends ", geosite=[cn google]" when codes contributed entries.
  void describe(std::string& out) const;
};

/// domain + domain_suffix (+ the domain/full/suffix items of geosite codes).
class DomainItem : public Item {
 public:
  DomainItem(DomainSet set, Origins origins) : set_(std::move(set)), origins_(std::move(origins)) {}
  bool match(const MatchInput& in, const EvalEnv& env, std::string* why) const override;
  void describe(std::string& out) const override;
  size_t memoryBytes() const override { return set_.memoryBytes(); }
  static uint32_t tag(uint32_t origin) { return origin; }

 private:
  DomainSet set_;
  Origins origins_;
};

/// domain_keyword (+ geosite keyword items): substring test, Aho-Corasick.
class KeywordItem : public Item {
 public:
  KeywordItem(AhoCorasick ac, Origins origins) : ac_(std::move(ac)), origins_(std::move(origins)) {}
  bool match(const MatchInput& in, const EvalEnv& env, std::string* why) const override;
  void describe(std::string& out) const override;
  size_t memoryBytes() const override { return ac_.memoryBytes(); }

 private:
  AhoCorasick ac_;
  Origins origins_;
};

/// domain_regex (+ geosite regexp items): RE2 (Go syntax, unanchored), one RE2::Set for all.
class RegexItem : public Item {
 public:
  RegexItem();
  ~RegexItem() override;
  RegexItem(const RegexItem&) = delete;
  RegexItem& operator=(const RegexItem&) = delete;
  /// Returns RE2's message when the pattern does not compile.
  Status add(std::string_view pattern, uint32_t origin);
  Status finalize();
  bool empty() const { return patterns_.empty(); }
  bool match(const MatchInput& in, const EvalEnv& env, std::string* why) const override;
  void describe(std::string& out) const override;
  void setOrigins(Origins o) { origins_ = std::move(o); }
  /// Checks one pattern alone (for the lint). Empty string when it compiles.
  static std::string checkPattern(std::string_view pattern);

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  std::vector<std::string> patterns_;
  std::vector<uint32_t> origin_;
  Origins origins_;
};

/// ip_cidr / source_ip_cidr.
class IpCidrItem : public Item {
 public:
  IpCidrItem(CidrSet set, std::vector<std::string> text, bool source)
      : set_(std::move(set)), text_(std::move(text)), source_(source) {}
  bool match(const MatchInput& in, const EvalEnv& env, std::string* why) const override;
  void describe(std::string& out) const override;
  bool needsDestinationIp() const override { return !source_; }
  size_t memoryBytes() const override { return set_.memoryBytes(); }

 private:
  CidrSet set_;
  std::vector<std::string> text_;  // as written, for the trace
  bool source_;
};

/// ip_is_private / source_ip_is_private: not a public address (sing-box !N.IsPublicAddr).
class IpPrivateItem : public Item {
 public:
  explicit IpPrivateItem(bool source) : source_(source) {}
  bool match(const MatchInput& in, const EvalEnv& env, std::string* why) const override;
  void describe(std::string& out) const override;
  bool needsDestinationIp() const override { return !source_; }

 private:
  bool source_;
};

/// geoip / source_geoip: country codes through a GeoipSource; "private" = not public.
class GeoipItem : public Item {
 public:
  GeoipItem(std::vector<std::string> codes, const GeoipSource* db, bool source);
  bool match(const MatchInput& in, const EvalEnv& env, std::string* why) const override;
  void describe(std::string& out) const override;
  bool needsDestinationIp() const override { return !source_; }

 private:
  bool test(const IpAddress& ip, std::string* why) const;
  std::vector<std::string> codes_;  // lower-case, without "private"
  bool private_ = false;
  const GeoipSource* db_;
  bool source_;
};

/// port / port_range / source_port / source_port_range.
class PortItem : public Item {
 public:
  PortItem(PortSet set, bool source) : set_(std::move(set)), source_(source) {}
  bool match(const MatchInput& in, const EvalEnv& env, std::string* why) const override;
  void describe(std::string& out) const override;

 private:
  PortSet set_;
  bool source_;
};

/// inbound, network, auth_user, protocol, client: the input's value equals one of the values.
class StringItem : public Item {
 public:
  StringItem(std::string_view field, std::vector<std::string> values,
             std::string_view MatchInput::*member)
      : field_(field), values_(std::move(values)), member_(member) {}
  bool match(const MatchInput& in, const EvalEnv& env, std::string* why) const override;
  void describe(std::string& out) const override;

 private:
  std::string_view field_;  // a literal
  std::vector<std::string> values_;
  std::string_view MatchInput::*member_;
};

/// ip_version (4/6).
class IpVersionItem : public Item {
 public:
  explicit IpVersionItem(std::vector<int> versions) : versions_(std::move(versions)) {}
  bool match(const MatchInput& in, const EvalEnv& env, std::string* why) const override;
  void describe(std::string& out) const override;

 private:
  std::vector<int> versions_;
};

/// query_type (DNS).
class QueryTypeItem : public Item {
 public:
  explicit QueryTypeItem(std::vector<uint16_t> types) : types_(std::move(types)) {}
  bool match(const MatchInput& in, const EvalEnv& env, std::string* why) const override;
  void describe(std::string& out) const override;

 private:
  std::vector<uint16_t> types_;
};

/// A field veer accepts but a router has no metadata for (process_name, wifi_ssid, ...): the
/// item never matches, as in sing-box on a platform without that information.
class NeverItem : public Item {
 public:
  explicit NeverItem(std::string_view field) : field_(field) {}
  bool match(const MatchInput&, const EvalEnv&, std::string*) const override { return false; }
  void describe(std::string& out) const override { out += std::string(field_) + "(never matches)"; }

 private:
  std::string_view field_;
};

/// Destination IPs to test: the destination address, or else the resolved addresses
/// (sing-box: Destination.Addr if valid, else DestinationAddresses).
template <typename F>
bool anyDestinationIp(const MatchInput& in, F&& f) {
  if (in.destination.valid()) return f(in.destination);
  for (const IpAddress& ip : in.destination_addresses) {
    if (f(ip)) return true;
  }
  return false;
}

}  // namespace veer::rules
