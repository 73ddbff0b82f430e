/* Host stand-in for Unikraft's <uk/plat/time.h>: only what the glue uses. */
#include <stdint.h>

typedef uint64_t __nsec;
#define __NSEC_MAX UINT64_MAX
