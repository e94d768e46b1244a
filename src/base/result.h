// Result<T> and Error: the project's error model (no exceptions). The API mirrors the parts of
// std::expected that veer uses, so it can become an alias once the toolchains have <expected>.
#pragma once

#include <cassert>
#include <string>
#include <utility>
#include <variant>

namespace veer {

/// An error: a human-readable message with context added by each layer ("dial 1.2.3.4:443 via
/// direct: connection refused"), and an optional system/libuv error code.
class Error {
 public:
  Error() = default;
  explicit Error(std::string message, int code = 0) : message_(std::move(message)), code_(code) {}

  const std::string& message() const { return message_; }
  int code() const { return code_; }

  /// Returns a copy with `context: ` prepended, for adding the caller's view of the failure.
  Error wrap(const std::string& context) const { return Error(context + ": " + message_, code_); }

 private:
  std::string message_;
  int code_ = 0;
};

/// Tag to construct a failed Result: `return unexpected(Error("..."));`.
struct Unexpected {
  Error error;
};
inline Unexpected unexpected(Error e) { return Unexpected{std::move(e)}; }
inline Unexpected unexpected(std::string msg) { return Unexpected{Error(std::move(msg))}; }

template <typename T>
class [[nodiscard]] Result {
 public:
  Result(T value) : v_(std::in_place_index<0>, std::move(value)) {}  // NOLINT: implicit by design
  Result(Unexpected u) : v_(std::in_place_index<1>, std::move(u.error)) {}  // NOLINT

  bool has_value() const { return v_.index() == 0; }
  explicit operator bool() const { return has_value(); }

  T& value() & {
    assert(has_value());
    return std::get<0>(v_);
  }
  const T& value() const& {
    assert(has_value());
    return std::get<0>(v_);
  }
  T&& value() && {
    assert(has_value());
    return std::get<0>(std::move(v_));
  }
  T& operator*() & { return value(); }
  const T& operator*() const& { return value(); }
  T* operator->() { return &value(); }
  const T* operator->() const { return &value(); }

  const Error& error() const& {
    assert(!has_value());
    return std::get<1>(v_);
  }
  Error&& error() && {
    assert(!has_value());
    return std::get<1>(std::move(v_));
  }

 private:
  std::variant<T, Error> v_;
};

template <>
class [[nodiscard]] Result<void> {
 public:
  Result() = default;
  Result(Unexpected u) : err_(std::move(u.error)), ok_(false) {}  // NOLINT

  bool has_value() const { return ok_; }
  explicit operator bool() const { return ok_; }
  const Error& error() const& { return err_; }

 private:
  Error err_;
  bool ok_ = true;
};

using Status = Result<void>;

}  // namespace veer
