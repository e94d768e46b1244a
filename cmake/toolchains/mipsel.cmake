# Debian cross build for mipsel (mipsel-linux-gnu); see cross-common.cmake.
set(CMAKE_SYSTEM_PROCESSOR mipsel)
set(VEER_CROSS_TRIPLET mipsel-linux-gnu)
set(VEER_CROSS_QEMU qemu-mipsel)
include(${CMAKE_CURRENT_LIST_DIR}/cross-common.cmake)
