// Compiler for v2fly/domain-list-community text lists (data/<name> files) into geosite codes,
// producing what sing-geosite produces from the same commit.
//
// Syntax, per line ('#' starts a comment anywhere; blank lines are skipped):
//   [domain:]x   x and its subdomains        full:x     exactly x
//   keyword:x    substring                   regexp:re  RE2, unanchored
//   include:name [@attr] [@-attr]            the items of another list, optionally only those
//                                            that carry @attr / that do not carry @-attr
// followed by attributes " @attr" (e.g. @cn, @ads, @!cn) and affiliations " &other" (the item
// is also added to list "other"). List names are file names, case-insensitive.
//
// Conversion (sing-geosite): codes are lower-case; domain:x -> domain x (when x has a dot) and
// suffix ".x"; full -> domain; keyword -> keyword; regexp -> regex; values are lower-cased as
// the v2fly builder did. For every attribute a list's items carry, a code "name@attr" holds
// those items. Then sing-geosite's post-processing (see ../shared/testdata/singbox-db/
// SOURCES.md): "X@Y" is dropped when Y is X's last '-' part; when Y and that part differ by a
// leading '!', X@Y's items are removed from X and X@Y is dropped; geolocation-cn absorbs every
// category-*@cn and category-*-cn code, and cn becomes geolocation-cn plus the suffix "cn".
#pragma once

#include <map>
#include <string>

#include "base/result.h"
#include "rules/geosite_db.h"

namespace veer::rules {

struct GeositeCompileOptions {
  /// Apply sing-geosite's attribute filtering and cn/geolocation-cn merging (above).
  bool singbox_postprocess = true;
};

/// Compiles lists given as name -> file text. Errors name the list and line ("google:12: ...")
/// for bad rules, unknown includes and include cycles.
Result<GeositeMap> compileGeositeLists(const std::map<std::string, std::string>& lists,
                                       const GeositeCompileOptions& opts = {});

/// Reads every regular file in `data_dir` (a domain-list-community data/ folder) and compiles.
Result<GeositeMap> compileGeositeDir(const std::string& data_dir,
                                     const GeositeCompileOptions& opts = {});

}  // namespace veer::rules
