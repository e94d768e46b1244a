// The on-disk cache of remote rule sets (`route.rule_set[]` with "type": "remote"). sing-box
// keeps them in its bbolt cache file; veer keeps one file per rule set in a directory:
//
//   <dir>/<tag>.cache   one line of JSON metadata, '\n', then the downloaded bytes unchanged
//   metadata: {"url": ..., "format": "binary"|"source", "etag": ..., "last_modified": ...,
//              "fetched": <unix seconds>, "size": <bytes that follow>}
//
// A file is written to a temporary name and renamed over the old one, so a reader sees either
// the old copy or the new one, never a mix (also after a crash or power loss mid-write).
// Pure file I/O; no loop.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "base/result.h"
#include "rules/ruleset_json.h"

namespace veer::rules {

struct CachedRuleSet {
  std::string url;
  std::string format;  // "source" | "binary"
  std::string etag;
  std::string last_modified;
  int64_t fetched = 0;  // unix seconds of the last successful download (or 304)
  std::string content;
};

/// The cache directory: "cache/rule-set" (the config loader makes it relative to the config
/// file's directory), or $VEER_RULE_SET_CACHE when set.
std::string defaultRuleSetCacheDir();
/// "<dir>/<tag>.cache", the tag percent-encoded where it is not [A-Za-z0-9._-] (tags such as
/// "geosite-category-ai-!cn" or "a/b" stay one safe file name).
std::string ruleSetCachePath(const std::string& dir, const std::string& tag);

/// Reads a cache file. The error's code is ENOENT when there is none; any other error means
/// the file is damaged (bad header, size mismatch) and its message says how.
Result<CachedRuleSet> loadCachedRuleSet(const std::string& path);
/// Writes the cache file atomically (temporary file, fsync, rename), creating the directory.
Status storeCachedRuleSet(const std::string& path, const CachedRuleSet& c);

/// Parses downloaded rule-set bytes in `format` ("source" JSON or "binary" .srs); `name`
/// names the origin in error messages (the URL, or the cache file).
Result<RuleSetSpec> parseRuleSetBytes(std::string_view content, const std::string& format,
                                      const std::string& name);

/// The format a URL's path implies (".json" source, ".srs" binary), or "" (sing-box's
/// ruleSetDefaultFormat).
std::string ruleSetFormatFromUrl(std::string_view url);

}  // namespace veer::rules
