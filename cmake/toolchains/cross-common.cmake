# Shared part of the Debian cross toolchain files (cmake/toolchains/<arch>.cmake), which set
# VEER_CROSS_TRIPLET and VEER_CROSS_QEMU and include this file.
#
# Compilers: Debian's crossbuild-essential-<arch> (<triplet>-gcc/g++). Libraries: the multiarch
# -dev packages (libuv1-dev:<arch>, ...), which install into /usr/lib/<triplet> and share
# /usr/include with the host; pkg-config reads only the target's .pc files.
#
# Tests run through CMAKE_CROSSCOMPILING_EMULATOR = qemu-<arch> (qemu-user, no binfmt, no -L):
# the -dev packages pull in libc6:<arch>, whose dynamic loader (/lib/ld-linux-aarch64.so.1,
# /lib/ld.so.1, /lib/ld64.so.1) and libraries (/usr/lib/<triplet>) sit at the paths the binary
# asks for, so qemu needs no sysroot prefix. scripts/cross-test.sh installs all of it.
set(CMAKE_SYSTEM_NAME Linux)
set(CMAKE_C_COMPILER ${VEER_CROSS_TRIPLET}-gcc)
set(CMAKE_CXX_COMPILER ${VEER_CROSS_TRIPLET}-g++)
set(CMAKE_LIBRARY_ARCHITECTURE ${VEER_CROSS_TRIPLET})

set(CMAKE_FIND_ROOT_PATH /usr/${VEER_CROSS_TRIPLET} /usr/lib/${VEER_CROSS_TRIPLET})
set(CMAKE_FIND_ROOT_PATH_MODE_PROGRAM NEVER)
# Libraries from the target's directories only; headers also from /usr/include (multiarch
# -dev packages put arch-independent headers there, arch-specific ones under
# /usr/include/<triplet>).
set(CMAKE_FIND_ROOT_PATH_MODE_LIBRARY ONLY)
set(CMAKE_FIND_ROOT_PATH_MODE_INCLUDE BOTH)
set(CMAKE_FIND_ROOT_PATH_MODE_PACKAGE BOTH)
set(CMAKE_LIBRARY_PATH /usr/lib/${VEER_CROSS_TRIPLET})

set(ENV{PKG_CONFIG_LIBDIR} /usr/lib/${VEER_CROSS_TRIPLET}/pkgconfig:/usr/share/pkgconfig)
set(ENV{PKG_CONFIG_PATH} "")

find_program(_veer_qemu ${VEER_CROSS_QEMU} REQUIRED)
set(CMAKE_CROSSCOMPILING_EMULATOR ${_veer_qemu})
