#include "base/json.h"

#include <rapidjson/error/en.h>
#include <rapidjson/reader.h>

#include <cmath>
#include <cstdio>

namespace veer::json {

namespace {

// A RapidJSON input stream that tracks line/column and the start of the current token, so that
// each SAX event can be given the position where its value began.
class PosStream {
 public:
  using Ch = char;
  explicit PosStream(std::string_view s) : s_(s) {}

  Ch Peek() const { return i_ < s_.size() ? s_[i_] : '\0'; }
  Ch Take() {
    if (i_ >= s_.size()) return '\0';
    char c = s_[i_++];
    track(c);
    return c;
  }
  size_t Tell() const { return i_; }
  Ch* PutBegin() { return nullptr; }
  void Put(Ch) {}
  void Flush() {}
  size_t PutEnd(Ch*) { return 0; }

  Pos tokenStart() const { return token_; }
  Pos posOfOffset(size_t off) const {
    Pos p{1, 1};
    for (size_t k = 0; k < off && k < s_.size(); ++k) {
      if (s_[k] == '\n') {
        ++p.line;
        p.column = 1;
      } else {
        ++p.column;
      }
    }
    return p;
  }

 private:
  void track(char c) {
    Pos here{line_, col_};
    if (c == '\n') {
      ++line_;
      col_ = 1;
    } else {
      ++col_;
    }
    switch (state_) {
      case State::String:
        if (escape_) {
          escape_ = false;
        } else if (c == '\\') {
          escape_ = true;
        } else if (c == '"') {
          state_ = State::Normal;
        }
        return;
      case State::LineComment:
        if (c == '\n') state_ = State::Normal;
        prev_ = ' ';
        return;
      case State::BlockComment:
        if (prev_ == '*' && c == '/') {
          state_ = State::Normal;
          prev_ = ' ';
        } else {
          prev_ = c;
        }
        return;
      case State::Normal:
        break;
    }
    if (prev_ == '/' && c == '/') {
      state_ = State::LineComment;
      return;
    }
    if (prev_ == '/' && c == '*') {
      state_ = State::BlockComment;
      prev_ = ' ';
      return;
    }
    bool boundary = prev_ == ' ' || prev_ == '\t' || prev_ == '\n' || prev_ == '\r' ||
                    prev_ == ':' || prev_ == ',' || prev_ == '[' || prev_ == '{' || prev_ == 0;
    if (boundary && c != ' ' && c != '\t' && c != '\n' && c != '\r' && c != '/') token_ = here;
    if (c == '"') state_ = State::String;
    prev_ = c;
  }

  enum class State { Normal, String, LineComment, BlockComment };
  std::string_view s_;
  size_t i_ = 0;
  uint32_t line_ = 1, col_ = 1;
  Pos token_{1, 1};
  char prev_ = 0;
  bool escape_ = false;
  State state_ = State::Normal;
};

class Builder : public rapidjson::BaseReaderHandler<rapidjson::UTF8<>, Builder> {
 public:
  explicit Builder(const PosStream& s) : s_(s) {}

  bool Null() { return add(Value{}); }
  bool Bool(bool b) {
    Value v;
    v.type = Value::Type::Bool;
    v.b = b;
    return add(std::move(v));
  }
  bool Int(int i) { return Int64(i); }
  bool Uint(unsigned u) { return Uint64(u); }
  bool Int64(int64_t i) {
    Value v;
    if (i >= 0) {
      v.type = Value::Type::Uint;
      v.u = static_cast<uint64_t>(i);
    } else {
      v.type = Value::Type::Int;
    }
    v.i = i;
    v.d = static_cast<double>(i);
    return add(std::move(v));
  }
  bool Uint64(uint64_t u) {
    Value v;
    v.type = Value::Type::Uint;
    v.u = u;
    v.i = static_cast<int64_t>(u);
    v.d = static_cast<double>(u);
    return add(std::move(v));
  }
  bool Double(double d) {
    Value v;
    v.type = Value::Type::Double;
    v.d = d;
    return add(std::move(v));
  }
  bool String(const char* s, rapidjson::SizeType n, bool) {
    Value v;
    v.type = Value::Type::String;
    v.str.assign(s, n);
    return add(std::move(v));
  }
  bool StartObject() { return start(Value::Type::Object); }
  bool Key(const char* s, rapidjson::SizeType n, bool) {
    Value::Member m;
    m.key.assign(s, n);
    m.key_pos = s_.tokenStart();
    stack_.back()->members.push_back(std::move(m));
    return true;
  }
  bool EndObject(rapidjson::SizeType) { return end(); }
  bool StartArray() { return start(Value::Type::Array); }
  bool EndArray(rapidjson::SizeType) { return end(); }

  Value root;

 private:
  Value* slot() {
    if (stack_.empty()) return &root;
    Value* top = stack_.back();
    if (top->isArray()) {
      top->items.emplace_back();
      return &top->items.back();
    }
    return &top->members.back().value;
  }
  bool add(Value v) {
    v.pos = s_.tokenStart();
    *slot() = std::move(v);
    return true;
  }
  bool start(Value::Type t) {
    Pos p = s_.tokenStart();
    Value* v = slot();
    v->type = t;
    v->pos = p;
    // Depth bound: nothing in a config nests this deep; refuse before the stack grows without
    // bound on hostile input.
    if (stack_.size() >= 128) return false;
    stack_.push_back(v);
    return true;
  }
  bool end() {
    stack_.pop_back();
    return true;
  }

  const PosStream& s_;
  std::vector<Value*> stack_;
};

void serializeTo(const Value& v, bool pretty, int indent, std::string& out) {
  auto nl = [&](int ind) {
    if (!pretty) return;
    out += '\n';
    out.append(static_cast<size_t>(ind) * 2, ' ');
  };
  switch (v.type) {
    case Value::Type::Null: out += "null"; break;
    case Value::Type::Bool: out += v.b ? "true" : "false"; break;
    case Value::Type::Int: out += std::to_string(v.i); break;
    case Value::Type::Uint: out += std::to_string(v.u); break;
    case Value::Type::Double: {
      char buf[64];
      snprintf(buf, sizeof(buf), "%.17g", v.d);
      out += buf;
      break;
    }
    case Value::Type::String: out += quote(v.str); break;
    case Value::Type::Array:
      out += '[';
      for (size_t k = 0; k < v.items.size(); ++k) {
        if (k) out += ',';
        nl(indent + 1);
        serializeTo(v.items[k], pretty, indent + 1, out);
      }
      if (!v.items.empty()) nl(indent);
      out += ']';
      break;
    case Value::Type::Object:
      out += '{';
      for (size_t k = 0; k < v.members.size(); ++k) {
        if (k) out += ',';
        nl(indent + 1);
        out += quote(v.members[k].key);
        out += pretty ? ": " : ":";
        serializeTo(v.members[k].value, pretty, indent + 1, out);
      }
      if (!v.members.empty()) nl(indent);
      out += '}';
      break;
  }
}

}  // namespace

const Value* Value::find(std::string_view key) const {
  for (const auto& m : members) {
    if (m.key == key) return &m.value;
  }
  return nullptr;
}

const char* Value::typeName() const {
  switch (type) {
    case Type::Null: return "null";
    case Type::Bool: return "boolean";
    case Type::Int:
    case Type::Uint:
    case Type::Double: return "number";
    case Type::String: return "string";
    case Type::Array: return "array";
    case Type::Object: return "object";
  }
  return "?";
}

Result<Value> parse(std::string_view text, const std::string& file) {
  PosStream stream(text);
  Builder builder(stream);
  rapidjson::Reader reader;
  constexpr unsigned kFlags = rapidjson::kParseCommentsFlag | rapidjson::kParseTrailingCommasFlag |
                              rapidjson::kParseStopWhenDoneFlag | rapidjson::kParseNanAndInfFlag;
  rapidjson::ParseResult r = reader.Parse<kFlags>(stream, builder);
  if (!r) {
    Pos p = stream.posOfOffset(r.Offset());
    std::string msg = r.Code() == rapidjson::kParseErrorTermination
                          ? "nesting too deep"
                          : rapidjson::GetParseError_En(r.Code());
    return unexpected(file + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) +
                      ": invalid JSON: " + msg);
  }
  // Anything after the value other than whitespace and comments is an error.
  size_t rest = stream.Tell();
  bool in_line = false, in_block = false;
  for (size_t k = rest; k < text.size(); ++k) {
    char c = text[k];
    if (in_line) {
      if (c == '\n') in_line = false;
      continue;
    }
    if (in_block) {
      if (c == '*' && k + 1 < text.size() && text[k + 1] == '/') {
        in_block = false;
        ++k;
      }
      continue;
    }
    if (c == ' ' || c == '\t' || c == '\n' || c == '\r') continue;
    if (c == '/' && k + 1 < text.size() && text[k + 1] == '/') {
      in_line = true;
      continue;
    }
    if (c == '/' && k + 1 < text.size() && text[k + 1] == '*') {
      in_block = true;
      ++k;
      continue;
    }
    Pos p = stream.posOfOffset(k);
    return unexpected(file + ":" + std::to_string(p.line) + ":" + std::to_string(p.column) +
                      ": invalid JSON: unexpected content after the top-level value");
  }
  return std::move(builder.root);
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (unsigned char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (c < 0x20) {
          char buf[8];
          snprintf(buf, sizeof(buf), "\\u%04x", c);
          out += buf;
        } else {
          out += static_cast<char>(c);
        }
    }
  }
  out += '"';
  return out;
}

std::string serialize(const Value& v, bool pretty) {
  std::string out;
  serializeTo(v, pretty, 0, out);
  return out;
}

std::optional<uint64_t> parseDurationMs(std::string_view text) {
  if (text.empty()) return std::nullopt;
  if (text == "0") return 0;
  double total_ms = 0;
  size_t k = 0;
  while (k < text.size()) {
    size_t start = k;
    while (k < text.size() && ((text[k] >= '0' && text[k] <= '9') || text[k] == '.')) ++k;
    if (k == start) return std::nullopt;
    double num = 0;
    try {
      num = std::stod(std::string(text.substr(start, k - start)));
    } catch (...) {
      return std::nullopt;
    }
    size_t us = k;
    while (k < text.size() && ((text[k] >= 'a' && text[k] <= 'z'))) ++k;
    std::string_view unit = text.substr(us, k - us);
    double mult;
    if (unit == "ns") mult = 1e-6;
    else if (unit == "us") mult = 1e-3;
    else if (unit == "ms") mult = 1;
    else if (unit == "s") mult = 1000;
    else if (unit == "m") mult = 60000;
    else if (unit == "h") mult = 3600000;
    else return std::nullopt;
    total_ms += num * mult;
  }
  if (!std::isfinite(total_ms) || total_ms > 1e15) return std::nullopt;
  return static_cast<uint64_t>(total_ms + 0.5);
}

ObjectReader::ObjectReader(const Value& obj, std::string path, const std::string& file,
                           DiagList& diags)
    : obj_(&obj), path_(std::move(path)), file_(file), diags_(diags) {
  if (!obj.isObject()) {
    diags_.error(file_, obj.pos.line, obj.pos.column, path_,
                 std::string("expected an object, got ") + obj.typeName() +
                     (path_.empty() ? "" : " at " + path_),
                 "type");
    obj_ = nullptr;
    return;
  }
  used_.assign(obj.members.size(), false);
}

std::string ObjectReader::memberPath(std::string_view key) const {
  return path_.empty() ? std::string(key) : path_ + "." + std::string(key);
}

const Value* ObjectReader::get(std::string_view key) {
  if (!obj_) return nullptr;
  const Value* found = nullptr;
  for (size_t k = 0; k < obj_->members.size(); ++k) {
    if (obj_->members[k].key == key) {
      used_[k] = true;
      found = &obj_->members[k].value;  // last one wins, as in Go's encoding/json
    }
  }
  return found;
}

bool ObjectReader::has(std::string_view key) const { return obj_ && obj_->find(key) != nullptr; }

void ObjectReader::markUsed(std::string_view key) { (void)get(key); }

void ObjectReader::errorAt(const Value& v, const std::string& path, const std::string& message) {
  diags_.error(file_, v.pos.line, v.pos.column, path, message, "type");
}

void ObjectReader::error(std::string_view key, const std::string& message) {
  const Value* v = obj_ ? obj_->find(key) : nullptr;
  Pos p = v ? v->pos : (obj_ ? obj_->pos : Pos{});
  diags_.error(file_, p.line, p.column, memberPath(key), message, "invalid");
}

bool ObjectReader::str(std::string_view key, std::string& out) {
  const Value* v = get(key);
  if (!v || v->isNull()) return false;
  if (!v->isString()) {
    errorAt(*v, memberPath(key),
            "expected a string for \"" + std::string(key) + "\", got " + v->typeName());
    return false;
  }
  out = v->str;
  return true;
}

bool ObjectReader::boolean(std::string_view key, bool& out) {
  const Value* v = get(key);
  if (!v || v->isNull()) return false;
  if (!v->isBool()) {
    errorAt(*v, memberPath(key),
            "expected true or false for \"" + std::string(key) + "\", got " + v->typeName());
    return false;
  }
  out = v->b;
  return true;
}

bool ObjectReader::u64(std::string_view key, uint64_t& out) {
  const Value* v = get(key);
  if (!v || v->isNull()) return false;
  if (v->type != Value::Type::Uint) {
    errorAt(*v, memberPath(key),
            "expected a non-negative integer for \"" + std::string(key) + "\", got " +
                (v->isNumber() ? std::string("a negative or fractional number") : v->typeName()));
    return false;
  }
  out = v->u;
  return true;
}

bool ObjectReader::u32(std::string_view key, uint32_t& out) {
  uint64_t x;
  if (!u64(key, x)) return false;
  if (x > 0xffffffffu) {
    error(key, "\"" + std::string(key) + "\" is out of range");
    return false;
  }
  out = static_cast<uint32_t>(x);
  return true;
}

bool ObjectReader::u16(std::string_view key, uint16_t& out) {
  uint64_t x;
  if (!u64(key, x)) return false;
  if (x > 65535) {
    error(key, "\"" + std::string(key) + "\" must be in 0..65535");
    return false;
  }
  out = static_cast<uint16_t>(x);
  return true;
}

bool ObjectReader::i64(std::string_view key, int64_t& out) {
  const Value* v = get(key);
  if (!v || v->isNull()) return false;
  if (!v->isInteger()) {
    errorAt(*v, memberPath(key),
            "expected an integer for \"" + std::string(key) + "\", got " + v->typeName());
    return false;
  }
  out = v->type == Value::Type::Uint ? static_cast<int64_t>(v->u) : v->i;
  return true;
}

bool ObjectReader::durationMs(std::string_view key, uint64_t& out) {
  const Value* v = get(key);
  if (!v || v->isNull()) return false;
  if (!v->isString()) {
    errorAt(*v, memberPath(key),
            "expected a duration string such as \"300ms\" or \"5m\" for \"" + std::string(key) +
                "\", got " + v->typeName());
    return false;
  }
  auto d = parseDurationMs(v->str);
  if (!d) {
    errorAt(*v, memberPath(key), "invalid duration \"" + v->str + "\" for \"" +
                                     std::string(key) + "\" (use e.g. 300ms, 10s, 5m, 1h)");
    return false;
  }
  out = *d;
  return true;
}

bool ObjectReader::strList(std::string_view key, std::vector<std::string>& out) {
  const Value* v = get(key);
  if (!v || v->isNull()) return false;
  if (v->isString()) {
    out.push_back(v->str);
    return true;
  }
  if (!v->isArray()) {
    errorAt(*v, memberPath(key),
            "expected a string or a list of strings for \"" + std::string(key) + "\", got " +
                v->typeName());
    return false;
  }
  bool ok = true;
  for (size_t k = 0; k < v->items.size(); ++k) {
    const Value& it = v->items[k];
    if (!it.isString()) {
      errorAt(it, memberPath(key) + "[" + std::to_string(k) + "]",
              std::string("expected a string, got ") + it.typeName());
      ok = false;
      continue;
    }
    out.push_back(it.str);
  }
  return ok;
}

bool ObjectReader::u16List(std::string_view key, std::vector<uint16_t>& out) {
  const Value* v = get(key);
  if (!v || v->isNull()) return false;
  auto one = [&](const Value& it, const std::string& path) {
    if (it.type != Value::Type::Uint || it.u > 65535) {
      errorAt(it, path,
              std::string("expected an integer in 0..65535, got ") +
                  (it.isNumber() ? "an out-of-range number" : it.typeName()));
      return false;
    }
    out.push_back(static_cast<uint16_t>(it.u));
    return true;
  };
  if (!v->isArray()) return one(*v, memberPath(key));
  bool ok = true;
  for (size_t k = 0; k < v->items.size(); ++k) {
    ok &= one(v->items[k], memberPath(key) + "[" + std::to_string(k) + "]");
  }
  return ok;
}

void ObjectReader::finish() {
  if (!obj_) return;
  for (size_t k = 0; k < obj_->members.size(); ++k) {
    if (used_[k]) continue;
    const auto& m = obj_->members[k];
    diags_.error(file_, m.key_pos.line, m.key_pos.column, path_,
                 "unknown field \"" + m.key + "\"" + (path_.empty() ? "" : " at " + path_),
                 "unknown-field");
  }
}

}  // namespace veer::json
