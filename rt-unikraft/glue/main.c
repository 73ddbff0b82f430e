/*
 * rt-unikraft's C glue, compiled by Unikraft's build as part of the app library (the
 * generated Makefile.uk lists this file in APP<NAME>_SRCS-y).
 *
 * Why C: Unikraft's boot code declares `main` weak. The linker only pulls an archive
 * member to resolve an *undefined* symbol, never to replace a weak definition, so a
 * `main` inside the Rust staticlib would be ignored and the weak stub would run. An
 * object compiled here is always linked, and its reference to `unikernel_main` pulls the
 * Rust archive in.
 */
int unikernel_main(int argc, char *argv[]);

int main(int argc, char *argv[])
{
	return unikernel_main(argc, argv);
}
