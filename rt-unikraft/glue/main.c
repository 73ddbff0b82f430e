/*
 * rt-unikraft's C glue for Unikraft images, compiled by Unikraft's build as part of the
 * app library (the generated Makefile.uk lists this file in APP<NAME>_SRCS-y and links
 * with -Wl,--wrap=exit). docs/runtime.md explains each piece.
 *
 * `main`: Unikraft's boot code declares `main` weak. The linker only pulls an archive
 * member to resolve an *undefined* symbol, never to replace a weak definition, so a
 * `main` inside the Rust staticlib would be ignored and the weak stub would run. An
 * object compiled here is always linked, and its reference to `unikernel_main` pulls the
 * Rust archive in.
 *
 * A plain `fn main()` binary (linked by cargo-unikraft's linker wrapper) works the same
 * way: the wrapper renames rustc's C `main` to `unikernel_main`, which takes (argc, argv)
 * and returns the exit status just as rt-unikraft's does.
 *
 * The libc shims std needs (std_shims.inc) and the unwinder's _dl_find_object
 * (dl_find_object.inc) are #included here, so they are in this always-linked object.
 *
 * Exit status: Unikraft's exit_group drops the status, so every `exit(code)` (from the
 * app returning, `std::process::exit`, or a panic) is routed through `__wrap_exit`, which
 * records the code; an atexit handler registered before the app starts reports it once
 * the other exit handlers have run. Without an exit device (Firecracker, QEMU as urunc or
 * kraftkit start it) the port write is ignored, and the handler then powers the VM off
 * with Unikraft's ukplat_terminate (ACPI soft-off on QEMU, the PS/2 reset line on
 * Firecracker). That call is needed: Unikraft's exit_group ends only the calling thread,
 * and ukboot shuts down only when main *returns*, so an exit() would otherwise leave the
 * VM running its idle thread forever.
 *
 * The encoding (cargo-unikraft's runner/qemu.rs decodes it; a test there checks these
 * constants): the code becomes a status byte like a process's, except that a nonzero
 * code never becomes 0 (exit(256) is a failure, not success). The port gets
 * `min(status, RT_UNIKRAFT_EXIT_EXACT_MAX) + 1`, so it is never 0: QEMU exits with
 * `(value << 1) | 1`, and a QEMU that failed on its own exits with 1, which must not read
 * as "the app exited 0". Only 7 bits survive QEMU's exit status, so a status of
 * RT_UNIKRAFT_EXIT_EXACT_MAX or more is also printed on the console as
 * "rt-unikraft: exit status N", which the runner reads.
 *
 * abort(): lib-musl's halts the VM as a crash (`CRIT: [libmusl] abort called`), which
 * QEMU ends with status 0, so the runner could only say that no exit code came. The link
 * wraps it (-Wl,--wrap=abort) and `__wrap_abort` reports status 134 instead, the status a
 * process killed by SIGABRT has on Linux, after the line RT_UNIKRAFT_ABORT_LINE.
 */
#include <dlfcn.h>
#include <stdlib.h>
#include <stdio.h>
#include <string.h>
#include <sys/random.h>
#include <unistd.h>
#include <uk/plat/bootstrap.h>

/* The I/O port of the isa-debug-exit device the runner adds (not Unikraft's own 0x501,
 * which it writes on a crash, so a crash never looks like an exit code). */
#define RT_UNIKRAFT_EXIT_PORT 0xf4
/* Statuses below this are carried exactly by the port; the rest also on the console. */
#define RT_UNIKRAFT_EXIT_EXACT_MAX 126
/* What an abort reports: the status of a process killed by SIGABRT (128 + 6). */
#define RT_UNIKRAFT_ABORT_STATUS 134
/* The console line an abort prints before its status line (the runner reads it). */
#define RT_UNIKRAFT_ABORT_LINE "rt-unikraft: abort"

#include "std_shims.inc"
#include "dl_find_object.inc"

int unikernel_main(int argc, char *argv[]);
void __real_exit(int code) __attribute__((noreturn));

static volatile int rt_unikraft_exit_code;

/* Writes a status to the exit device; returns only when there is none. */
static void rt_unikraft_exit_port(unsigned int status)
{
	unsigned int value = status >= RT_UNIKRAFT_EXIT_EXACT_MAX ? RT_UNIKRAFT_EXIT_EXACT_MAX + 1 : status + 1;

	/* Ring 0: port I/O is allowed; an unclaimed port is ignored by the VMM. */
	__asm__ __volatile__("outl %0, %w1" : : "a"(value), "Nd"(RT_UNIKRAFT_EXIT_PORT));
}

static void rt_unikraft_report_exit(void)
{
	int code = rt_unikraft_exit_code;
	unsigned int status = (unsigned int)code & 0xff;

	if (code != 0 && status == 0)
		status = 255;
	if (status >= RT_UNIKRAFT_EXIT_EXACT_MAX)
		printf("rt-unikraft: exit status %u\n", status);
	fflush(NULL);
	rt_unikraft_exit_port(status);
	/* Still here: no exit device. The last exit handler (registered first), so nothing
	 * else is left to run. */
	ukplat_terminate(UKPLAT_HALT);
}

/*
 * Rust's aborts come here: std::process::abort, a failed allocation ("memory allocation
 * of N bytes failed"), a panic while panicking, libgcc's unwinder giving up. As with a
 * real abort, no exit handler runs and stdio is not flushed; the lines go out with
 * write(2), which takes no stdio lock (the aborting thread may hold one). Then a crash
 * for a VMM without the exit device (pvpanic; QEMU as urunc or kraftkit starts it).
 */
__attribute__((noreturn)) void __wrap_abort(void)
{
	static const char lines[] = "\n" RT_UNIKRAFT_ABORT_LINE "\nrt-unikraft: exit status 134\n";

	(void)!write(2, lines, sizeof(lines) - 1);
	rt_unikraft_exit_port(RT_UNIKRAFT_ABORT_STATUS);
	ukplat_terminate(UKPLAT_CRASH);
}

/*
 * virtio notifications (the generated Makefile.uk links with
 * -Wl,--wrap=virtqueue_notify_enabled). Unikraft 0.16.3's check, under
 * VIRTIO_F_EVENT_IDX (which QEMU's default virtio-net and Firecracker offer), assumes one
 * buffer was added since the last notification. After a refill of several buffers it can
 * decide the device needs no notification although the device asked for one, and the
 * device then waits for buffers it was never told about: under floods the guest went deaf
 * (docs/unikraft.md). A notification the device did not need is allowed by the virtio
 * spec and only costs a VM exit, so this always notifies.
 */
struct virtqueue;
int __wrap_virtqueue_notify_enabled(struct virtqueue *vq)
{
	(void)vq;
	return 1;
}

void __wrap_exit(int code)
{
	rt_unikraft_exit_code = code;
	__real_exit(code);
}

/*
 * dlsym(): crates built for the gnu target look newer libc functions up at run time
 * instead of linking them; the getrandom crate (0.3, under rand 0.9's and 0.10's
 * ThreadRng) asks for `getrandom` this way and otherwise reads /dev/urandom. lib-musl's
 * dlsym finds nothing (there is no dynamic linker) and an image has no /dev/urandom, so
 * rand failed with "No such file or directory (os error 2)" where Linux gives random
 * bytes. The link wraps dlsym (-Wl,--wrap=dlsym): the functions lib-musl has are
 * answered here, anything else goes to lib-musl's dlsym as before.
 */
void *__real_dlsym(void *restrict handle, const char *restrict name);
void *__wrap_dlsym(void *restrict handle, const char *restrict name)
{
	if (handle == RTLD_DEFAULT && name && strcmp(name, "getrandom") == 0)
		return (void *)getrandom;
	return __real_dlsym(handle, name);
}

/*
 * The app's arguments follow the first `--` of the kernel command line (Unikraft's
 * parameters precede it; cargo-unikraft/src/runner/cmdline.rs). Unikraft removes
 * `<params> --` itself, but leaves a `--` that has no parameter before it; drop that one
 * here. In place: std recorded this very array (through .init_array, before main) and
 * stops at the first NULL, so it sees the same arguments as unikernel_main.
 */
static int rt_unikraft_drop_stop_sequence(int argc, char *argv[])
{
	if (argc < 2 || strcmp(argv[1], "--") != 0)
		return argc;
	for (int i = 1; i < argc - 1; i++)
		argv[i] = argv[i + 1];
	argv[argc - 1] = NULL;
	return argc - 1;
}

/* Defined by socket.c when the image has std's sockets (`sockets = true`). */
void rt_unikraft_sockets_boot(void) __attribute__((weak));

int main(int argc, char *argv[])
{
	argc = rt_unikraft_drop_stop_sequence(argc, argv);
	if (rt_unikraft_sockets_boot)
		rt_unikraft_sockets_boot();
	atexit(rt_unikraft_report_exit);
	rt_unikraft_default_thread_stack();
	exit(unikernel_main(argc, argv));
}
