# Initial cache for the release-size build (`make release-size`; cmake -C this file), usable
# with or without a cross toolchain file: -Os, LTO, one section per function and object so the
# linker can drop what is unused (--gc-sections), symbols stripped, no tests.
set(CMAKE_BUILD_TYPE MinSizeRel CACHE STRING "")
set(CMAKE_C_FLAGS_MINSIZEREL "-Os -DNDEBUG -ffunction-sections -fdata-sections" CACHE STRING "")
set(CMAKE_CXX_FLAGS_MINSIZEREL "-Os -DNDEBUG -ffunction-sections -fdata-sections" CACHE STRING "")
set(CMAKE_EXE_LINKER_FLAGS_MINSIZEREL "-Wl,--gc-sections -Wl,--as-needed -s" CACHE STRING "")
set(CMAKE_INTERPROCEDURAL_OPTIMIZATION ON CACHE BOOL "")
set(VEER_TESTS OFF CACHE BOOL "")
# veer's own code, as the OpenWrt package ships it (the libraries are packages of their own)
set(VEER_STATIC_DEPS OFF CACHE BOOL "")
