// Runs a function on the next loop iteration (for "callbacks never run inside the call that
// registered them").
#pragma once

#include <uv.h>

#include <functional>

namespace veer::loop {

void defer(uv_loop_t* loop, std::function<void()> fn);

}  // namespace veer::loop
