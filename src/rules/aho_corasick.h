// AhoCorasick: substring search for many keywords at once (sing-box `domain_keyword`), linear in
// the length of the text whatever the number of keywords. The automaton is stored as flat arrays
// (sorted edge lists per state) so that a large keyword list stays small in memory, and a search
// does not allocate.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace veer::rules {

class AhoCorasick {
 public:
  /// Adds a keyword (empty keywords are ignored). `tag` is returned on a hit.
  void add(std::string_view keyword, uint32_t tag);
  /// Builds the automaton; must be called once after the last add().
  void finalize();

  /// True when any keyword occurs in `text`; `index` (when non-null) receives the index (in
  /// add() order) of one keyword that occurs.
  bool search(std::string_view text, uint32_t* index = nullptr) const;

  bool empty() const { return keywords_.empty(); }
  size_t size() const { return keywords_.size(); }
  const std::string& keyword(uint32_t index) const { return keywords_[index]; }
  uint32_t tag(uint32_t index) const { return tags_[index]; }
  size_t memoryBytes() const;

 private:
  struct Edge {
    uint8_t byte;
    uint32_t target;
  };
  uint32_t next(uint32_t state, uint8_t byte) const;  // goto; UINT32_MAX when absent

  std::vector<std::string> keywords_;
  std::vector<uint32_t> tags_;
  std::vector<uint32_t> edge_begin_;  // per state, into edges_ (size states + 1)
  std::vector<Edge> edges_;
  std::vector<uint32_t> fail_;
  std::vector<int32_t> output_;  // keyword index reachable from this state (via fail), or -1
};

}  // namespace veer::rules
