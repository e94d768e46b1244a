#include "base/file.h"
#include "rules/geosite_text.h"

#include <dirent.h>
#include <sys/stat.h>

#include <algorithm>
#include <set>
#include <unordered_set>

namespace veer::rules {
namespace {

enum class RuleType : uint8_t { Plain, Regex, Root, Full };

struct Entry {
  RuleType type;
  std::string value;
  std::vector<std::string> attrs;  // sorted
  bool hasAttr(const std::string& a) const {
    return std::binary_search(attrs.begin(), attrs.end(), a);
  }
};

struct Include {
  std::string name;
  std::vector<std::string> must_have;
  std::vector<std::string> must_not_have;
  size_t line;
};

struct ParsedList {
  std::string name;
  // Entries and includes interleaved in file order: an include is an index into `includes`.
  struct Item {
    bool is_include;
    size_t index;
  };
  std::vector<Item> order;
  std::vector<Entry> entries;
  std::vector<Include> includes;
};

std::string lower(std::string s) {
  for (auto& c : s) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  return s;
}

std::vector<std::string> splitWs(std::string_view s) {
  std::vector<std::string> out;
  size_t i = 0;
  while (i < s.size()) {
    while (i < s.size() && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r')) ++i;
    size_t j = i;
    while (j < s.size() && !(s[j] == ' ' || s[j] == '\t' || s[j] == '\r')) ++j;
    if (j > i) out.emplace_back(s.substr(i, j - i));
    i = j;
  }
  return out;
}

Status parseList(const std::string& name, const std::string& text,
                 std::map<std::string, ParsedList>& lists) {
  ParsedList& pl = lists[name];
  pl.name = name;
  size_t lineno = 0;
  for (std::string_view line_view : splitLines(text)) {
    ++lineno;
    std::string line(line_view);
    auto hash = line.find('#');
    if (hash != std::string::npos) line.resize(hash);
    auto tokens = splitWs(line);
    if (tokens.empty()) continue;
    auto where = [&] { return name + ":" + std::to_string(lineno) + ": "; };
    std::string rule = tokens[0];
    std::vector<std::string> attrs, affiliations, minus;
    for (size_t k = 1; k < tokens.size(); ++k) {
      const std::string& t = tokens[k];
      if (t.size() > 2 && t[0] == '@' && t[1] == '-') {
        minus.push_back(lower(t.substr(2)));
      } else if (t.size() > 1 && t[0] == '@') {
        attrs.push_back(lower(t.substr(1)));
      } else if (t.size() > 1 && t[0] == '&') {
        affiliations.push_back(lower(t.substr(1)));
      } else {
        return unexpected(where() + "unexpected \"" + t + "\" (attributes start with @)");
      }
    }
    std::string type = "domain", value = rule;
    auto colon = rule.find(':');
    if (colon != std::string::npos) {
      type = lower(rule.substr(0, colon));
      value = rule.substr(colon + 1);
    }
    if (value.empty()) return unexpected(where() + "empty value");
    if (type == "include") {
      if (!affiliations.empty()) return unexpected(where() + "an include has no affiliations");
      pl.includes.push_back({lower(value), attrs, minus, lineno});
      pl.order.push_back({true, pl.includes.size() - 1});
      continue;
    }
    if (!minus.empty()) return unexpected(where() + "@-attr is only allowed on include lines");
    Entry e;
    if (type == "domain") {
      e.type = RuleType::Root;
    } else if (type == "full") {
      e.type = RuleType::Full;
    } else if (type == "keyword") {
      e.type = RuleType::Plain;
    } else if (type == "regexp") {
      e.type = RuleType::Regex;
    } else {
      return unexpected(where() + "unknown rule type \"" + type + "\"");
    }
    // The v2fly builder lower-cased every value, regexes included.
    e.value = lower(value);
    std::sort(attrs.begin(), attrs.end());
    attrs.erase(std::unique(attrs.begin(), attrs.end()), attrs.end());
    e.attrs = attrs;
    pl.entries.push_back(e);
    pl.order.push_back({false, pl.entries.size() - 1});
    for (const auto& target : affiliations) {
      ParsedList& other = lists[target];
      other.name = target;
      other.entries.push_back(e);
      other.order.push_back({false, other.entries.size() - 1});
    }
  }
  return {};
}

class Resolver {
 public:
  explicit Resolver(std::map<std::string, ParsedList>& lists) : lists_(lists) {}

  Result<const std::vector<Entry>*> resolve(const std::string& name) {
    auto done = resolved_.find(name);
    if (done != resolved_.end()) return &done->second;
    if (!active_.insert(name).second) return unexpected("include cycle through \"" + name + "\"");
    ParsedList& pl = lists_.at(name);
    std::vector<Entry> out;
    for (const auto& item : pl.order) {
      if (!item.is_include) {
        out.push_back(pl.entries[item.index]);
        continue;
      }
      const Include& inc = pl.includes[item.index];
      if (!lists_.count(inc.name)) {
        return unexpected(name + ":" + std::to_string(inc.line) + ": include of unknown list \"" +
                          inc.name + "\"");
      }
      auto sub = resolve(inc.name);
      if (!sub) return unexpected(sub.error());
      for (const Entry& e : **sub) {
        bool ok = true;
        for (const auto& a : inc.must_have) ok &= e.hasAttr(a);
        for (const auto& a : inc.must_not_have) ok &= !e.hasAttr(a);
        if (ok) out.push_back(e);
      }
    }
    active_.erase(name);
    return &(resolved_[name] = std::move(out));
  }

 private:
  std::map<std::string, ParsedList>& lists_;
  std::map<std::string, std::vector<Entry>> resolved_;
  std::set<std::string> active_;
};

struct ItemKey {
  bool operator()(const GeositeItem& a, const GeositeItem& b) const {
    return a.type != b.type ? a.type < b.type : a.value < b.value;
  }
};

void appendUnique(std::vector<GeositeItem>& out, std::set<GeositeItem, ItemKey>& seen,
                  GeositeItem it) {
  if (seen.insert(it).second) out.push_back(std::move(it));
}

void convert(const Entry& e, std::vector<GeositeItem>& out, std::set<GeositeItem, ItemKey>& seen) {
  using T = GeositeItem::Type;
  switch (e.type) {
    case RuleType::Plain: appendUnique(out, seen, {T::Keyword, e.value}); break;
    case RuleType::Regex: appendUnique(out, seen, {T::Regex, e.value}); break;
    case RuleType::Full: appendUnique(out, seen, {T::Domain, e.value}); break;
    case RuleType::Root:
      if (e.value.find('.') != std::string::npos) appendUnique(out, seen, {T::Domain, e.value});
      appendUnique(out, seen, {T::Suffix, "." + e.value});
      break;
  }
}

std::string lastPart(const std::string& code) {
  auto dash = code.rfind('-');
  return dash == std::string::npos ? code : code.substr(dash + 1);
}

void postprocess(GeositeMap& m) {
  // 1. Attribute codes that restate or contradict the list's own region suffix.
  std::vector<std::string> attr_codes;
  for (const auto& [code, items] : m) {
    if (code.find('@') != std::string::npos) attr_codes.push_back(code);
  }
  for (const auto& code : attr_codes) {
    auto at = code.find('@');
    std::string base = code.substr(0, at), attr = code.substr(at + 1), last = lastPart(base);
    if (attr == last) {
      m.erase(code);
    } else if (attr == "!" + last || last == "!" + attr) {
      auto it = m.find(base);
      if (it != m.end()) {
        std::set<GeositeItem, ItemKey> drop(m[code].begin(), m[code].end());
        auto& items = it->second;
        items.erase(std::remove_if(items.begin(), items.end(),
                                   [&](const GeositeItem& x) { return drop.count(x) > 0; }),
                    items.end());
      }
      m.erase(code);
    }
  }
  // 2. geolocation-cn absorbs the Chinese parts of every category; cn is that plus ".cn".
  std::vector<GeositeItem> merged;
  std::set<GeositeItem, ItemKey> seen;
  auto add = [&](const std::vector<GeositeItem>& items) {
    for (const auto& it : items) appendUnique(merged, seen, it);
  };
  if (auto it = m.find("geolocation-cn"); it != m.end()) add(it->second);
  for (const auto& [code, items] : m) {
    if (code.rfind("category-", 0) != 0) continue;
    auto at = code.find('@');
    if (at != std::string::npos) {
      std::string base = code.substr(0, at);
      if (code.substr(at + 1) == "cn" && !(base.size() > 3 && base.ends_with("-cn")) &&
          !base.ends_with("-!cn")) {
        add(items);
      }
    } else if (code.ends_with("-cn")) {
      add(items);
    }
  }
  m["geolocation-cn"] = merged;
  merged.push_back({GeositeItem::Type::Suffix, "cn"});
  m["cn"] = std::move(merged);
}

}  // namespace

Result<GeositeMap> compileGeositeLists(const std::map<std::string, std::string>& texts,
                                       const GeositeCompileOptions& opts) {
  std::map<std::string, ParsedList> lists;
  std::set<std::string> names;
  for (const auto& [name, text] : texts) {
    std::string code = lower(name);
    if (!names.insert(code).second) {
      return unexpected("two lists are named \"" + code + "\" (names are case-insensitive)");
    }
    if (auto s = parseList(code, text, lists); !s) return unexpected(s.error());
  }
  Resolver resolver(lists);
  GeositeMap out;
  for (const auto& [name, pl] : lists) {
    auto entries = resolver.resolve(name);
    if (!entries) return unexpected(entries.error());
    std::vector<GeositeItem> items;
    std::set<GeositeItem, ItemKey> seen;
    std::map<std::string, std::pair<std::vector<GeositeItem>, std::set<GeositeItem, ItemKey>>>
        by_attr;
    for (const Entry& e : **entries) {
      convert(e, items, seen);
      for (const auto& a : e.attrs) {
        auto& slot = by_attr[a];
        convert(e, slot.first, slot.second);
      }
    }
    out[name] = std::move(items);
    for (auto& [attr, slot] : by_attr) out[name + "@" + attr] = std::move(slot.first);
  }
  if (opts.singbox_postprocess) postprocess(out);
  return out;
}

Result<GeositeMap> compileGeositeDir(const std::string& data_dir,
                                     const GeositeCompileOptions& opts) {
  DIR* d = opendir(data_dir.c_str());
  if (!d) return unexpected(data_dir + ": cannot open directory");
  std::map<std::string, std::string> texts;
  while (dirent* de = readdir(d)) {
    std::string name = de->d_name;
    if (name.empty() || name[0] == '.') continue;
    std::string path = data_dir + "/" + name;
    struct stat st {};
    if (stat(path.c_str(), &st) != 0 || !S_ISREG(st.st_mode)) continue;
    auto text = readFile(path);
    if (!text) {
      closedir(d);
      return unexpected(path + ": cannot read");
    }
    texts[name] = std::move(*text);
  }
  closedir(d);
  return compileGeositeLists(texts, opts);
}

}  // namespace veer::rules
