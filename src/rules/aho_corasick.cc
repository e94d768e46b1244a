#include "rules/aho_corasick.h"

#include <algorithm>
#include <deque>
#include <map>

namespace veer::rules {

void AhoCorasick::add(std::string_view keyword, uint32_t tag) {
  if (keyword.empty()) return;
  keywords_.emplace_back(keyword);
  tags_.push_back(tag);
}

void AhoCorasick::finalize() {
  // Build a plain trie with maps first (compile time only), then flatten it.
  std::vector<std::map<uint8_t, uint32_t>> trie(1);
  std::vector<int32_t> own(1, -1);
  for (uint32_t k = 0; k < keywords_.size(); ++k) {
    uint32_t s = 0;
    for (unsigned char c : keywords_[k]) {
      auto it = trie[s].find(c);
      if (it == trie[s].end()) {
        trie.emplace_back();
        own.push_back(-1);
        uint32_t t = static_cast<uint32_t>(trie.size() - 1);
        trie[s][c] = t;
        s = t;
      } else {
        s = it->second;
      }
    }
    if (own[s] < 0) own[s] = static_cast<int32_t>(k);
  }
  size_t n = trie.size();
  edge_begin_.assign(n + 1, 0);
  edges_.clear();
  for (size_t s = 0; s < n; ++s) {
    edge_begin_[s] = static_cast<uint32_t>(edges_.size());
    for (auto [c, t] : trie[s]) edges_.push_back(Edge{c, t});  // std::map keeps them sorted
  }
  edge_begin_[n] = static_cast<uint32_t>(edges_.size());
  fail_.assign(n, 0);
  output_.assign(own.begin(), own.end());
  // Breadth-first, so that a state's fail target is finished before the state itself.
  std::deque<uint32_t> queue;
  for (auto [c, t] : trie[0]) queue.push_back(t);
  while (!queue.empty()) {
    uint32_t s = queue.front();
    queue.pop_front();
    if (output_[s] < 0) output_[s] = output_[fail_[s]];
    for (auto [c, t] : trie[s]) {
      uint32_t f = fail_[s];
      uint32_t g;
      while ((g = next(f, c)) == UINT32_MAX && f != 0) f = fail_[f];
      g = next(f, c);
      fail_[t] = (g != UINT32_MAX && g != t) ? g : 0;
      queue.push_back(t);
    }
  }
}

uint32_t AhoCorasick::next(uint32_t state, uint8_t byte) const {
  const Edge* b = edges_.data() + edge_begin_[state];
  const Edge* e = edges_.data() + edge_begin_[state + 1];
  if (e - b <= 8) {
    for (; b != e; ++b) {
      if (b->byte == byte) return b->target;
    }
    return UINT32_MAX;
  }
  const Edge* it = std::lower_bound(b, e, byte, [](const Edge& x, uint8_t v) { return x.byte < v; });
  return (it != e && it->byte == byte) ? it->target : UINT32_MAX;
}

bool AhoCorasick::search(std::string_view text, uint32_t* index) const {
  if (keywords_.empty()) return false;
  uint32_t s = 0;
  for (unsigned char c : text) {
    uint32_t g;
    while ((g = next(s, c)) == UINT32_MAX && s != 0) s = fail_[s];
    s = g == UINT32_MAX ? 0 : g;
    if (output_[s] >= 0) {
      if (index != nullptr) *index = static_cast<uint32_t>(output_[s]);
      return true;
    }
  }
  return false;
}

size_t AhoCorasick::memoryBytes() const {
  size_t n = 0;
  for (const auto& k : keywords_) n += k.capacity() + sizeof(std::string);
  return n + tags_.capacity() * 4 + edge_begin_.capacity() * 4 + edges_.capacity() * sizeof(Edge) +
         fail_.capacity() * 4 + output_.capacity() * 4;
}

}  // namespace veer::rules
