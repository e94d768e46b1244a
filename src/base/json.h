// A JSON DOM that remembers where every value started (line:column), parsed with RapidJSON's
// SAX reader, plus ObjectReader: strict, typed field access that reports wrong types and
// unknown fields with file:line:col and a JSON path. Comments (// and /* */) and trailing
// commas are accepted, as sing-box's reader accepts them.
#pragma once

#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "base/diag.h"
#include "base/result.h"

namespace veer::json {

struct Pos {
  uint32_t line = 0;
  uint32_t column = 0;
};

class Value {
 public:
  enum class Type : uint8_t { Null, Bool, Int, Uint, Double, String, Array, Object };
  struct Member;

  Type type = Type::Null;
  Pos pos;
  bool b = false;
  int64_t i = 0;   // Int
  uint64_t u = 0;  // Uint (non-negative integers are Uint)
  double d = 0;
  std::string str;
  std::vector<Value> items;
  std::vector<Member> members;

  bool isNull() const { return type == Type::Null; }
  bool isBool() const { return type == Type::Bool; }
  bool isString() const { return type == Type::String; }
  bool isArray() const { return type == Type::Array; }
  bool isObject() const { return type == Type::Object; }
  bool isNumber() const { return type == Type::Int || type == Type::Uint || type == Type::Double; }
  bool isInteger() const { return type == Type::Int || type == Type::Uint; }
  /// The member `key` of an object, or nullptr.
  const Value* find(std::string_view key) const;
  /// "string", "number", "object", ... for error messages.
  const char* typeName() const;
};

struct Value::Member {
  std::string key;
  Pos key_pos;
  Value value;
};

/// Parses `text`; the error message is "file:line:col: ..." on syntax errors.
Result<Value> parse(std::string_view text, const std::string& file);

/// Serialises a Value (compact or indented with two spaces).
std::string serialize(const Value& v, bool pretty = true);
/// Escapes and quotes a string for JSON output.
std::string quote(std::string_view s);

/// Parses a Go-style duration ("300ms", "5m", "1h30m", "10s", "1.5s") into milliseconds.
std::optional<uint64_t> parseDurationMs(std::string_view text);

/// Typed, strict access to the members of one JSON object. Every member that is read is
/// marked; finish() reports the others as unknown fields. Type errors are reported once, with
/// the value's position and the member's path, and leave the output untouched.
class ObjectReader {
 public:
  /// `path` is the JSON path of `obj` ("inbounds[0]", "" for the root).
  ObjectReader(const Value& obj, std::string path, const std::string& file, DiagList& diags);

  bool ok() const { return obj_ != nullptr; }
  const std::string& path() const { return path_; }
  /// "inbounds[0].listen" style path of a member.
  std::string memberPath(std::string_view key) const;

  /// The raw member (marked as used), or nullptr.
  const Value* get(std::string_view key);
  bool has(std::string_view key) const;

  bool str(std::string_view key, std::string& out);
  bool boolean(std::string_view key, bool& out);
  bool u16(std::string_view key, uint16_t& out);
  bool u32(std::string_view key, uint32_t& out);
  bool u64(std::string_view key, uint64_t& out);
  bool i64(std::string_view key, int64_t& out);
  /// A Go duration string ("300ms", "5m"); sing-box durations are strings, a number is an error.
  bool durationMs(std::string_view key, uint64_t& out);
  /// A string or a list of strings (sing-box's Listable).
  bool strList(std::string_view key, std::vector<std::string>& out);
  /// A number or a list of numbers in [0, 65535].
  bool u16List(std::string_view key, std::vector<uint16_t>& out);

  /// Marks `key` as known without reading it (for fields handled elsewhere).
  void markUsed(std::string_view key);
  /// Reports every member that was not read as `unknown field "x"`.
  void finish();

  /// Reports an error at the member `key` (its value position).
  void error(std::string_view key, const std::string& message);
  /// Reports an error at a given value.
  void errorAt(const Value& v, const std::string& path, const std::string& message);
  DiagList& diags() { return diags_; }
  const std::string& file() const { return file_; }

 private:
  const Value* obj_;
  std::string path_;
  std::string file_;  // a copy: callers pass temporaries
  DiagList& diags_;
  std::vector<bool> used_;
};

}  // namespace veer::json
