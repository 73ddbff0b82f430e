/*
 * Host stand-in for Unikraft's generated <uk/config.h>, for compiling the glue on the
 * host (rt-unikraft/tests/glue_c.rs): semaphores on, device libraries off.
 */
#define CONFIG_LIBUKLOCK_SEMAPHORE 1
