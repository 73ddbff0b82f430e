/* Host stand-in for Unikraft's <uk/alloc.h>: the default allocator is the C library's. */
#include <stdlib.h>

struct uk_alloc;

static inline struct uk_alloc *uk_alloc_get_default(void)
{
	return NULL;
}

static inline void *uk_calloc(struct uk_alloc *a, size_t n, size_t size)
{
	(void)a;
	return calloc(n, size);
}
