/*
 * The glue's device events (glue/netdev.c, compiled on the host against the stand-ins in
 * mock/) with a fake semaphore that simulates an interrupt at the worst moment: just as
 * the thread enters its first semaphore call. The interrupt handler's rtuk_kick must not
 * be lost, and the semaphores must be initialised exactly once, before main. Each waiter
 * (the executor, the socket layer's network thread) has its own wake-up: one never
 * uses up the other's.
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
	check(inits_before_main == 2, "the two waiters' semaphores are initialised once each, before main");

	/* A device interrupt arrives just as the executor starts its first wait. */
	interrupt_next = 1;
	rtuk_wait_executor(1000000000ULL);
	check(interrupt_next == 0, "the simulated interrupt happened");
	check(wakeups == 1 && timeouts == 0, "the first wait saw the interrupt's wake-up");
	check(inits == 2, "neither the wait nor the interrupt initialised a semaphore again");
	/* The same interrupt was the network thread's too. */
	rtuk_wait_net(1000000000ULL);
	check(wakeups == 2 && timeouts == 0, "the network thread's first wait saw it as well");

	/* Two interrupts while the executor works: one wait takes both, the next one sleeps. */
	interrupt();
	interrupt();
	rtuk_wait_executor(1000000000ULL);
	check(wakeups == 3 && timeouts == 0, "a wait after two interrupts returns at once");
	rtuk_wait_executor(1000000000ULL);
	check(wakeups == 3 && timeouts == 1, "and takes both: the next wait sleeps until its deadline");

	/*
	 * One waiter never uses up the other's wake-up (they used to share one semaphore:
	 * the executor's wait drained the kick and the network thread slept its time out).
	 */
	rtuk_wait_net(1000000000ULL);
	check(wakeups == 4 && timeouts == 1, "the network thread still has its wake-up after the executor took its own");
	rtuk_wait_net(1000000000ULL);
	check(wakeups == 4 && timeouts == 2, "and then sleeps until its deadline");

	/* A block completion wakes the executor, and not the network thread. */
	rtuk_kick_executor();
	rtuk_wait_net(1000000000ULL);
	check(wakeups == 4 && timeouts == 3, "a block completion does not wake the network thread");
	rtuk_wait_executor(1000000000ULL);
	check(wakeups == 5 && timeouts == 3, "the executor gets the block completion's wake-up");

	/* A wait of 0 only collects events. */
	rtuk_wait_executor(0);
	rtuk_wait_net(0);
	check(timeouts == 3, "a zero wait does not sleep");
	check(inits == 2, "each semaphore was initialised exactly once");
	return failures ? 1 : 0;
}
