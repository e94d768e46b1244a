#include "conn/context.h"

namespace veer::conn {

DialFailure classifyDialError(const Error& e) {
  switch (e.code()) {
    case 0: return DialFailure::Other;
    case UV_ECONNREFUSED: return DialFailure::Refused;
    case UV_ENETUNREACH:
    case UV_EHOSTUNREACH:
    case UV_EAI_NONAME:
    case UV_EAI_NODATA:
    case UV_EAI_FAIL:
    case UV_EAI_AGAIN: return DialFailure::Unreachable;
    case UV_ETIMEDOUT: return DialFailure::Timeout;
    case UV_EPERM:
    case UV_EACCES: return DialFailure::Blocked;
    default: return DialFailure::Other;
  }
}

}  // namespace veer::conn
