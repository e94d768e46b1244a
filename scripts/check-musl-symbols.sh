#!/bin/sh
# Fails when a veer binary calls a libc function that musl (OpenWrt's libc) does not provide.
#
#   scripts/check-musl-symbols.sh BINARY [NM]
#
# Lists the binary's undefined dynamic symbols (nm -D --undefined-only; NM defaults to nm, a
# cross nm such as mipsel-linux-gnu-nm also works) and checks them against the glibc-only
# functions below. The binary is built against glibc here, so glibc's own header plumbing
# (__isoc99_sscanf, __*_chk fortify wrappers, __libc_single_threaded, __libc_start_main) is not
# reported: musl builds of the same source do not produce those references. What is reported
# is a call in veer's source that has no musl counterpart and would fail to link on OpenWrt.
set -eu

bin=${1:?usage: $0 BINARY [NM]}
nm=${2:-nm}

# glibc-only interfaces that musl 1.2 does not have.
glibc_only='
backtrace backtrace_symbols backtrace_symbols_fd
malloc_trim mallinfo mallinfo2 malloc_stats malloc_info mallopt malloc_get_state
malloc_set_state mtrace muntrace mcheck mcheck_check_all mprobe
__malloc_hook __free_hook __realloc_hook __memalign_hook __after_morecore_hook
error error_at_line error_message_count error_print_progname error_one_per_line
gnu_get_libc_version gnu_get_libc_release
getcontext setcontext makecontext swapcontext
register_printf_function register_printf_specifier register_printf_type
argp_parse argp_usage argp_help argp_error argp_failure
obstack_free _obstack_begin _obstack_newchunk
dlvsym dlmopen dlinfo
pthread_getattr_default_np pthread_setattr_default_np pthread_mutex_consistent_np
pthread_yield
fcloseall fgetgrent_r fgetpwent_r
execvpe_np sigstack sigvec
strfry memfrob
qecvt qfcvt qgcvt
cuserid
'

undef=$("$nm" -D --undefined-only "$bin" | awk '{print $NF}' | sed 's/@.*//' | sort -u)
if [ -z "$undef" ]; then
	echo "check-musl-symbols: no dynamic symbols in $bin (static, or nm failed)" >&2
	exit 1
fi

bad=""
for s in $undef; do
	for g in $glibc_only; do
		[ "$s" = "$g" ] && bad="$bad $s"
	done
	case $s in
		# glibc internals that headers do not produce on their own.
		__libc_start_main|__libc_single_threaded) ;;
		__libc_*) bad="$bad $s" ;;
	esac
done

count=$(printf '%s\n' "$undef" | wc -l)
if [ -n "$bad" ]; then
	echo "check-musl-symbols: $bin uses glibc-only symbols that musl lacks:$bad" >&2
	exit 1
fi
echo "check-musl-symbols: $bin: $count undefined dynamic symbols, none glibc-only"
