# Debian cross build for aarch64 (aarch64-linux-gnu); see cross-common.cmake.
set(CMAKE_SYSTEM_PROCESSOR aarch64)
set(VEER_CROSS_TRIPLET aarch64-linux-gnu)
set(VEER_CROSS_QEMU qemu-aarch64)
include(${CMAKE_CURRENT_LIST_DIR}/cross-common.cmake)
