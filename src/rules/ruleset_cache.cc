#include "rules/ruleset_cache.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "base/bytes.h"
#include "base/file.h"
#include "base/json.h"
#include "rules/srs.h"

namespace veer::rules {

namespace {

// mkdir -p
bool makeDirs(const std::string& dir) {
  if (dir.empty()) return true;
  std::string cur;
  size_t i = 0;
  while (i <= dir.size()) {
    size_t j = dir.find('/', i);
    if (j == std::string::npos) j = dir.size();
    cur = dir.substr(0, j);
    if (!cur.empty() && ::mkdir(cur.c_str(), 0755) != 0 && errno != EEXIST) return false;
    i = j + 1;
  }
  struct stat st {};
  return ::stat(dir.c_str(), &st) == 0 && S_ISDIR(st.st_mode);
}

Status writeAll(int fd, std::string_view data) {
  while (!data.empty()) {
    ssize_t n = ::write(fd, data.data(), data.size());
    if (n < 0) {
      if (errno == EINTR) continue;
      return unexpected(Error(std::strerror(errno), errno));
    }
    data.remove_prefix(static_cast<size_t>(n));
  }
  return {};
}

}  // namespace

std::string defaultRuleSetCacheDir() {
  const char* env = std::getenv("VEER_RULE_SET_CACHE");
  if (env != nullptr && *env != '\0') return env;
  return "cache/rule-set";
}

std::string ruleSetCachePath(const std::string& dir, const std::string& tag) {
  static const char* hex = "0123456789ABCDEF";
  std::string name;
  for (size_t i = 0; i < tag.size(); ++i) {
    auto c = static_cast<unsigned char>(tag[i]);
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || (c == '.' && i > 0);
    if (ok) {
      name += static_cast<char>(c);
    } else {
      name += '%';
      name += hex[c >> 4];
      name += hex[c & 15];
    }
  }
  std::string d = dir.empty() ? "." : dir;
  if (d.back() != '/') d += '/';
  return d + name + ".cache";
}

Result<CachedRuleSet> loadCachedRuleSet(const std::string& path) {
  auto text = readFile(path);
  if (!text) {
    struct stat st {};
    if (::stat(path.c_str(), &st) != 0 && errno == ENOENT) {
      return unexpected(Error("no cached copy", ENOENT));
    }
    return unexpected(Error("cannot read " + path));
  }
  size_t nl = text->find('\n');
  if (nl == std::string::npos || nl > 64 * 1024) {
    return unexpected(Error(path + ": no metadata line"));
  }
  auto meta = json::parse(std::string_view(*text).substr(0, nl), path);
  if (!meta || !meta->isObject()) return unexpected(Error(path + ": bad metadata line"));
  CachedRuleSet c;
  auto str = [&](const char* k, std::string& out) {
    const json::Value* v = meta->find(k);
    if (v != nullptr && v->isString()) out = v->str;
  };
  str("url", c.url);
  str("format", c.format);
  str("etag", c.etag);
  str("last_modified", c.last_modified);
  const json::Value* f = meta->find("fetched");
  if (f != nullptr && f->type == json::Value::Type::Uint) c.fetched = static_cast<int64_t>(f->u);
  const json::Value* sz = meta->find("size");
  if (sz == nullptr || sz->type != json::Value::Type::Uint) {
    return unexpected(Error(path + ": metadata has no size"));
  }
  size_t size = text->size() - nl - 1;
  if (sz->u != size) {
    return unexpected(Error(path + ": truncated (" + std::to_string(size) + " of " +
                            std::to_string(sz->u) + " bytes)"));
  }
  if (c.url.empty() || (c.format != "source" && c.format != "binary")) {
    return unexpected(Error(path + ": metadata lacks url or format"));
  }
  c.content = text->substr(nl + 1);
  return c;
}

Status storeCachedRuleSet(const std::string& path, const CachedRuleSet& c) {
  size_t slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "" : path.substr(0, slash);
  if (!makeDirs(dir)) {
    return unexpected(Error("cannot create directory " + dir + ": " + std::strerror(errno), errno));
  }
  std::string meta = "{\"url\":" + json::quote(c.url) + ",\"format\":" + json::quote(c.format) +
                     ",\"etag\":" + json::quote(c.etag) +
                     ",\"last_modified\":" + json::quote(c.last_modified) +
                     ",\"fetched\":" + std::to_string(c.fetched < 0 ? 0 : c.fetched) +
                     ",\"size\":" + std::to_string(c.content.size()) + "}\n";
  std::string tmp = path + ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) {
    return unexpected(Error("cannot create " + tmp + ": " + std::strerror(errno), errno));
  }
  Status st = writeAll(fd, meta);
  if (st) st = writeAll(fd, c.content);
  if (st && ::fsync(fd) != 0) st = unexpected(Error(std::strerror(errno), errno));
  ::close(fd);
  if (!st) {
    ::unlink(tmp.c_str());
    return unexpected(st.error().wrap("cannot write " + tmp));
  }
  if (::rename(tmp.c_str(), path.c_str()) != 0) {
    int e = errno;
    ::unlink(tmp.c_str());
    return unexpected(Error("cannot rename " + tmp + " to " + path + ": " + std::strerror(e), e));
  }
  // Make the rename itself durable.
  int dfd = ::open(dir.empty() ? "." : dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (dfd >= 0) {
    (void)::fsync(dfd);
    ::close(dfd);
  }
  return {};
}

Result<RuleSetSpec> parseRuleSetBytes(std::string_view content, const std::string& format,
                                      const std::string& name) {
  if (format == "binary") return readSrs(asBytes(content), name);
  if (format == "source") return readRuleSetJson(content, name);
  return unexpected(Error("unknown rule-set format \"" + format + "\" (source, binary)"));
}

std::string ruleSetFormatFromUrl(std::string_view url) {
  size_t scheme = url.find("://");
  std::string_view path = scheme == std::string_view::npos ? url : url.substr(scheme + 3);
  size_t slash = path.find('/');
  path = slash == std::string_view::npos ? std::string_view() : path.substr(slash);
  size_t end = path.find_first_of("?#");
  if (end != std::string_view::npos) path = path.substr(0, end);
  auto ends = [&](std::string_view suf) {
    return path.size() >= suf.size() && path.substr(path.size() - suf.size()) == suf;
  };
  if (ends(".json")) return "source";
  if (ends(".srs")) return "binary";
  return "";
}

}  // namespace veer::rules
