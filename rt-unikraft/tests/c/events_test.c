/*
 * The glue's device events (glue/netdev.c, compiled on the host against the stand-ins in
 * mock/) with a fake semaphore that simulates an interrupt at the worst moment: just as
 * the thread enters its first semaphore call. The interrupt handler's rtuk_kick must not
 * be lost, and the semaphore must be initialised exactly once, before main.
 *
 * Prints one line per check and exits non-zero if any fails.
 */
#include <stdio.h>
#include <uk/semaphore.h>

#include "rt_glue.h"

static int inits;
static int inits_before_main = -1;
/* Set: the next semaphore call from the thread is interrupted by a device event first. */
static int interrupt_next;
static int in_interrupt;
/* What the thread's timed waits ended with. */
static int wakeups, timeouts;

/* A receive interrupt: what rtuk_rx_event does besides disarming. */
static void interrupt(void)
{
	in_interrupt = 1;
	rtuk_kick();
	in_interrupt = 0;
}

static void maybe_interrupt(void)
{
	if (interrupt_next && !in_interrupt) {
		interrupt_next = 0;
		interrupt();
	}
}

void uk_semaphore_init(struct uk_semaphore *s, long count)
{
	maybe_interrupt();
	inits++;
	s->count = count;
}

__nsec uk_semaphore_down_to(struct uk_semaphore *s, __nsec timeout)
{
	(void)timeout;
	maybe_interrupt();
	if (s->count > 0) {
		s->count--;
		wakeups++;
		return 0;
	}
	timeouts++;
	return __NSEC_MAX; /* timed out (no real sleep here) */
}

int uk_semaphore_down_try(struct uk_semaphore *s)
{
	maybe_interrupt();
	if (s->count > 0) {
		s->count--;
		return 1;
	}
	return 0;
}

void uk_semaphore_up(struct uk_semaphore *s)
{
	maybe_interrupt();
	s->count++;
}

static int failures;

static void check(int ok, const char *what)
{
	printf("%s %s\n", ok ? "ok" : "FAIL", what);
	if (!ok)
		failures++;
}

int main(void)
{
	inits_before_main = inits;
	check(inits_before_main == 1, "the event semaphore is initialised once, before main");

	/* A device interrupt arrives just as the thread starts its first wait. */
	interrupt_next = 1;
	rtuk_wait(1000000000ULL);
	check(interrupt_next == 0, "the simulated interrupt happened");
	check(wakeups == 1 && timeouts == 0, "the first wait saw the interrupt's wake-up");
	check(inits == 1, "neither the wait nor the interrupt initialised the semaphore again");

	/* Two interrupts while the thread works: one wait takes both, the next one sleeps. */
	interrupt();
	interrupt();
	rtuk_wait(1000000000ULL);
	check(wakeups == 2 && timeouts == 0, "a wait after two interrupts returns at once");
	rtuk_wait(1000000000ULL);
	check(wakeups == 2 && timeouts == 1, "and takes both: the next wait sleeps until its deadline");

	/* A wait of 0 only collects events. */
	rtuk_wait(0);
	check(timeouts == 1, "a zero wait does not sleep");
	check(inits == 1, "the semaphore was initialised exactly once");
	return failures ? 1 : 0;
}
