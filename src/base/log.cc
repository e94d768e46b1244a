#include "base/log.h"

#include <cstdarg>
#include <cstdio>
#include <ctime>

namespace veer::log {
namespace detail {
Level g_level = Level::Info;
bool g_disabled = false;
}  // namespace detail

namespace {
bool g_timestamp = true;
}

std::optional<Level> parseLevel(std::string_view name) {
  static const std::pair<std::string_view, Level> kLevels[] = {
      {"trace", Level::Trace}, {"debug", Level::Debug}, {"info", Level::Info},
      {"warn", Level::Warn},   {"error", Level::Error}, {"fatal", Level::Fatal},
      {"panic", Level::Panic}};
  for (const auto& [n, l] : kLevels) {
    if (n == name) return l;
  }
  return std::nullopt;
}

const char* levelName(Level level) {
  switch (level) {
    case Level::Trace: return "TRACE";
    case Level::Debug: return "DEBUG";
    case Level::Info: return "INFO";
    case Level::Warn: return "WARN";
    case Level::Error: return "ERROR";
    case Level::Fatal: return "FATAL";
    case Level::Panic: return "PANIC";
  }
  return "?";
}

void setLevel(Level level) { detail::g_level = level; }
Level level() { return detail::g_level; }
void setDisabled(bool disabled) { detail::g_disabled = disabled; }
void setTimestamp(bool enabled) { g_timestamp = enabled; }

void write(Level level, const char* fmt, ...) {
  char line[2048];
  size_t n = 0;
  if (g_timestamp) {
    timespec ts{};
    clock_gettime(CLOCK_REALTIME, &ts);
    tm t{};
    localtime_r(&ts.tv_sec, &t);
    n = strftime(line, sizeof(line), "%Y-%m-%dT%H:%M:%S", &t);
    n += static_cast<size_t>(snprintf(line + n, sizeof(line) - n, ".%03ld ", ts.tv_nsec / 1000000));
  }
  n += static_cast<size_t>(snprintf(line + n, sizeof(line) - n, "%s ", levelName(level)));
  va_list ap;
  va_start(ap, fmt);
  int m = vsnprintf(line + n, sizeof(line) - n, fmt, ap);
  va_end(ap);
  if (m < 0) return;
  n += static_cast<size_t>(m);
  if (n >= sizeof(line) - 1) n = sizeof(line) - 2;
  line[n++] = '\n';
  // One write per line so that concurrent writers do not interleave within a line.
  fwrite(line, 1, n, stderr);
  fflush(stderr);
}

}  // namespace veer::log
