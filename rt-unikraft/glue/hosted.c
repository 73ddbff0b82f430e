/*
 * rt-unikraft's C glue for the hosted-musl harness: the same Rust archive as a Unikraft
 * image, linked statically against the host's musl (`musl-gcc -static`) and run as a
 * Linux process, so ABI mistakes in the shims show up without Unikraft. docs/runtime.md
 * has the details.
 *
 * Exit status needs nothing here: a process's `exit(code)` already reaches the parent.
 *
 * Arguments: the gnu std records argc/argv from an `.init_array` function, relying on
 * glibc (and Unikraft's boot) calling those with (argc, argv, envp). Static musl calls
 * them with no arguments, so std would record garbage and `std::env::args()` would
 * crash. `main` therefore calls the `.init_array` functions again with the real values.
 * That is only safe for functions that merely record their arguments, so the harness
 * (xtask) refuses to link an archive with any other `.init_array` entry than std's.
 */
#include <stddef.h>

/* The glue's ABI with rt-unikraft's Rust, which the stand-ins below implement. */
#include "rt_glue.h"

/* The same libc shims as a Unikraft image (and the default thread stack). */
#include "std_shims.inc"

int unikernel_main(int argc, char *argv[]);

typedef void (*rt_init_fn)(int, char **, char **);
extern rt_init_fn __init_array_start[] __attribute__((weak));
extern rt_init_fn __init_array_end[] __attribute__((weak));

int main(int argc, char *argv[], char *envp[])
{
	for (rt_init_fn *f = __init_array_start; f && f < __init_array_end; f++)
		(*f)(argc, argv, envp);
	rt_unikraft_default_thread_stack();
	return unikernel_main(argc, argv);
}

/*
 * Stand-ins for what the Rust archive calls on Unikraft: the platform clocks (from the
 * host), the glue's waits (plain timed sleeps), and no devices.
 */
#include <errno.h>
#include <stdint.h>
#include <time.h>

static uint64_t rtuk_clock(clockid_t clock)
{
	struct timespec ts;

	clock_gettime(clock, &ts);
	return (uint64_t)ts.tv_sec * 1000000000ULL + (uint64_t)ts.tv_nsec;
}

uint64_t ukplat_monotonic_clock(void)
{
	return rtuk_clock(CLOCK_MONOTONIC);
}

uint64_t ukplat_wall_clock(void)
{
	return rtuk_clock(CLOCK_REALTIME);
}

static void rtuk_sleep_for(uint64_t timeout_ns)
{
	struct timespec ts = { (time_t)(timeout_ns / 1000000000ULL),
			       (long)(timeout_ns % 1000000000ULL) };

	nanosleep(&ts, NULL);
}

void rtuk_wait_executor(uint64_t timeout_ns)
{
	rtuk_sleep_for(timeout_ns);
}

void rtuk_wait_net(uint64_t timeout_ns)
{
	rtuk_sleep_for(timeout_ns);
}

void rtuk_kick(void)
{
}

void rtuk_kick_executor(void)
{
}

#include "no_netdev.inc"
#include "no_blkdev.inc"
#include "no_socket.inc"
#include "hosted_dl_find_object.inc"
