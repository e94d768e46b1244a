// Small helpers around libuv: error conversion and the handle-closing protocol.
//
// Ownership rules (../STYLE.md §3): a handle is a member of a heap-allocated owner; every
// successful init gets exactly one uv_close; the owner frees itself only in its last close
// callback. closeHandle() makes the close idempotent.
#pragma once

#include <uv.h>

#include <string>

#include "base/result.h"

namespace veer::loop {

/// libuv error code → Error ("connection refused", code kept).
inline Error uvError(int code) { return Error(uv_strerror(code), code); }
inline Error uvError(int code, const std::string& context) {
  return Error(context + ": " + uv_strerror(code), code);
}

/// Closes `h` unless it is already closing; `cb` may be null.
inline void closeHandle(uv_handle_t* h, uv_close_cb cb) {
  if (h->loop != nullptr && !uv_is_closing(h)) uv_close(h, cb);
}
template <typename T>
inline void closeHandle(T* h, uv_close_cb cb) {
  closeHandle(reinterpret_cast<uv_handle_t*>(h), cb);
}

/// Milliseconds of the loop's cached clock.
inline uint64_t nowMs(uv_loop_t* loop) { return uv_now(loop); }

}  // namespace veer::loop
