// Helpers shared by the tests.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <vector>

namespace veer::test {

/// ../shared/testdata beside the clone (or $VEER_TESTDATA), if it exists.
std::optional<std::string> testdataDir();
/// Reads a whole file; empty optional when it cannot be read.
std::optional<std::string> readFile(const std::string& path);
/// The project's source directory (for examples/ and tests/data/).
std::string sourceDir();
/// The build directory (where the veer binary is).
std::string binaryDir();
/// Parses hex text (whitespace ignored) into bytes.
std::vector<uint8_t> fromHex(const std::string& hex);

}  // namespace veer::test

/// Skips the current test with a message when ../shared/testdata is absent.
#define REQUIRE_TESTDATA(var)                                                        \
  auto var##_opt = ::veer::test::testdataDir();                                      \
  if (!var##_opt) {                                                                  \
    GTEST_SKIP() << "../shared/testdata not found (set VEER_TESTDATA); skipping";     \
  }                                                                                  \
  const std::string var = *var##_opt
