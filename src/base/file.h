// Whole-file reads and line splitting with stdio: the daemon links no iostreams (they pull in
// locales and a few hundred KiB on a router).
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace veer {

/// The whole file, or nullopt when it cannot be opened or read.
std::optional<std::string> readFile(const std::string& path);

/// Splits text at '\n' (a trailing "\r" is kept off each line); the last line may lack '\n'.
std::vector<std::string_view> splitLines(std::string_view text);

/// Splits at runs of spaces and tabs.
std::vector<std::string_view> splitWords(std::string_view line);

}  // namespace veer
