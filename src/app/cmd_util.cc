#include "app/cmd_util.h"

#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

namespace veer::app {

void ArgParser::flag(std::vector<std::string> names, bool* out) {
  specs_.push_back(Spec{std::move(names), out, nullptr});
}

void ArgParser::option(std::vector<std::string> names, std::string* out) {
  specs_.push_back(Spec{std::move(names), nullptr, out});
}

const ArgParser::Spec* ArgParser::find(std::string_view name) const {
  for (const auto& s : specs_) {
    for (const auto& n : s.names) {
      if (n == name) return &s;
    }
  }
  return nullptr;
}

bool ArgParser::parse(const std::vector<std::string>& args) {
  bool options_done = false;
  for (size_t i = 0; i < args.size(); ++i) {
    const std::string& a = args[i];
    if (options_done || a == "-" || a.empty() || a[0] != '-') {
      positional_.push_back(a);
      continue;
    }
    if (a == "--") {
      options_done = true;
      continue;
    }
    if (a == "-h" || a == "--help") {
      help_ = true;
      return true;
    }
    std::string name = a;
    std::string value;
    bool inline_value = false;
    size_t eq = a.find('=');
    if (a.rfind("--", 0) == 0 && eq != std::string::npos) {
      name = a.substr(0, eq);
      value = a.substr(eq + 1);
      inline_value = true;
    }
    const Spec* s = find(name);
    if (s == nullptr) {
      error_ = "unknown option \"" + a + "\"";
      return false;
    }
    if (s->flag != nullptr) {
      if (inline_value) {
        error_ = "option " + name + " takes no value";
        return false;
      }
      *s->flag = true;
      continue;
    }
    if (!inline_value) {
      if (i + 1 >= args.size()) {
        error_ = "option " + name + " needs a value";
        return false;
      }
      value = args[++i];
    }
    *s->value = value;
  }
  return true;
}

int printHelp(const char* help) {
  std::fputs(help, stdout);
  return kExitOk;
}

int usageError(const char* cmd, const std::string& message, const char* help) {
  std::fprintf(stderr, "veer %s: %s\n\n%s", cmd, message.c_str(), help);
  return kExitUsage;
}

int failure(const char* cmd, const std::string& message) {
  std::fprintf(stderr, "veer %s: %s\n", cmd, message.c_str());
  return kExitFailure;
}

Result<std::string> readInput(const std::string& path) {
  FILE* f = path == "-" ? stdin : std::fopen(path.c_str(), "rb");
  if (f == nullptr) return unexpected("cannot open \"" + path + "\": " + std::strerror(errno));
  std::string out;
  char buf[65536];
  size_t n;
  while ((n = std::fread(buf, 1, sizeof buf, f)) > 0) out.append(buf, n);
  bool bad = std::ferror(f) != 0;
  int err = errno;
  if (f != stdin) std::fclose(f);
  if (bad) return unexpected("cannot read \"" + path + "\": " + std::strerror(err));
  return out;
}

Status writeOutput(const std::string& path, std::string_view data) {
  if (path == "-") {
    if (std::fwrite(data.data(), 1, data.size(), stdout) != data.size() ||
        std::fflush(stdout) != 0) {
      return unexpected("cannot write to stdout");
    }
    return {};
  }
  std::string tmp = path + ".tmp." + std::to_string(getpid());
  FILE* f = std::fopen(tmp.c_str(), "wb");
  if (f == nullptr) return unexpected("cannot create \"" + tmp + "\": " + std::strerror(errno));
  bool ok = std::fwrite(data.data(), 1, data.size(), f) == data.size();
  ok = (std::fclose(f) == 0) && ok;
  if (!ok) {
    int err = errno;
    std::remove(tmp.c_str());
    return unexpected("cannot write \"" + tmp + "\": " + std::strerror(err));
  }
  if (std::rename(tmp.c_str(), path.c_str()) != 0) {
    int err = errno;
    std::remove(tmp.c_str());
    return unexpected("cannot write \"" + path + "\": " + std::strerror(err));
  }
  return {};
}

bool hasExtension(std::string_view path, std::string_view ext) {
  return path.size() > ext.size() && path.substr(path.size() - ext.size()) == ext;
}

std::string replaceExtension(const std::string& path, std::string_view ext) {
  size_t slash = path.rfind('/');
  size_t dot = path.rfind('.');
  size_t base = slash == std::string::npos ? 0 : slash + 1;
  // A leading dot (".hidden") is part of the name, not an extension.
  if (dot == std::string::npos || dot <= base) return path + std::string(ext);
  return path.substr(0, dot) + std::string(ext);
}

std::string normalizeDomain(std::string_view domain) {
  std::string out(domain);
  for (char& c : out) {
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  }
  if (!out.empty() && out.back() == '.') out.pop_back();
  return out;
}

std::string validUtf8(std::string_view s) {
  std::string out;
  out.reserve(s.size());
  size_t i = 0;
  while (i < s.size()) {
    auto b = static_cast<uint8_t>(s[i]);
    size_t len = b < 0x80 ? 1 : (b >> 5) == 0x6 ? 2 : (b >> 4) == 0xe ? 3 : (b >> 3) == 0x1e ? 4 : 0;
    bool ok = len != 0 && i + len <= s.size();
    for (size_t k = 1; ok && k < len; ++k) ok = (static_cast<uint8_t>(s[i + k]) >> 6) == 0x2;
    if (ok && len > 1) {
      // Reject overlong forms, surrogates and code points above U+10FFFF.
      uint32_t cp = b & (0x7f >> len);
      for (size_t k = 1; k < len; ++k) cp = (cp << 6) | (static_cast<uint8_t>(s[i + k]) & 0x3f);
      static constexpr uint32_t kMin[] = {0, 0, 0x80, 0x800, 0x10000};
      ok = cp >= kMin[len] && cp <= 0x10ffff && (cp < 0xd800 || cp > 0xdfff);
    }
    if (!ok) {
      out += "\xef\xbf\xbd";
      ++i;
      continue;
    }
    out.append(s.substr(i, len));
    i += len;
  }
  return out;
}

std::string printable(std::string_view s) {
  static const char kHex[] = "0123456789abcdef";
  std::string out;
  for (char c : s) {
    auto b = static_cast<uint8_t>(c);
    if (b < 0x20 || b >= 0x7f || c == '\\') {
      out += "\\x";
      out += kHex[b >> 4];
      out += kHex[b & 0xf];
    } else {
      out += c;
    }
  }
  return out;
}

}  // namespace veer::app
