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

int unikernel_main(int argc, char *argv[]);

typedef void (*rt_init_fn)(int, char **, char **);
extern rt_init_fn __init_array_start[] __attribute__((weak));
extern rt_init_fn __init_array_end[] __attribute__((weak));

int main(int argc, char *argv[], char *envp[])
{
	for (rt_init_fn *f = __init_array_start; f && f < __init_array_end; f++)
		(*f)(argc, argv, envp);
	return unikernel_main(argc, argv);
}
