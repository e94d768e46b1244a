// Logging with sing-box's levels. The level is checked before any formatting happens.
#pragma once

#include <cstdint>
#include <optional>
#include <string_view>

namespace veer::log {

enum class Level : uint8_t { Trace = 0, Debug, Info, Warn, Error, Fatal, Panic };

/// Parses sing-box level names: trace, debug, info, warn, error, fatal, panic.
std::optional<Level> parseLevel(std::string_view name);
const char* levelName(Level level);

void setLevel(Level level);
Level level();
void setDisabled(bool disabled);
void setTimestamp(bool enabled);
inline bool enabled(Level l);

void write(Level level, const char* fmt, ...) __attribute__((format(printf, 2, 3)));

namespace detail {
extern Level g_level;
extern bool g_disabled;
}  // namespace detail

inline bool enabled(Level l) { return !detail::g_disabled && l >= detail::g_level; }

}  // namespace veer::log

#define VEER_LOG(lvl, ...)                                         \
  do {                                                             \
    if (::veer::log::enabled(::veer::log::Level::lvl)) {           \
      ::veer::log::write(::veer::log::Level::lvl, __VA_ARGS__);    \
    }                                                              \
  } while (0)

#define LOG_TRACE(...) VEER_LOG(Trace, __VA_ARGS__)
#define LOG_DEBUG(...) VEER_LOG(Debug, __VA_ARGS__)
#define LOG_INFO(...) VEER_LOG(Info, __VA_ARGS__)
#define LOG_WARN(...) VEER_LOG(Warn, __VA_ARGS__)
#define LOG_ERROR(...) VEER_LOG(Error, __VA_ARGS__)
