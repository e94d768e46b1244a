# Debian cross build for s390x (s390x-linux-gnu); see cross-common.cmake.
set(CMAKE_SYSTEM_PROCESSOR s390x)
set(VEER_CROSS_TRIPLET s390x-linux-gnu)
set(VEER_CROSS_QEMU qemu-s390x)
include(${CMAKE_CURRENT_LIST_DIR}/cross-common.cmake)
