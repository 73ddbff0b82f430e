/*
 * Host stand-in for Unikraft's <uk/semaphore.h>: the functions the glue calls, with the
 * same signatures. events_test.c implements them as a recording fake.
 */
#include <uk/plat/time.h>

struct uk_semaphore {
	long count;
};

void uk_semaphore_init(struct uk_semaphore *s, long count);
__nsec uk_semaphore_down_to(struct uk_semaphore *s, __nsec timeout);
int uk_semaphore_down_try(struct uk_semaphore *s);
void uk_semaphore_up(struct uk_semaphore *s);
