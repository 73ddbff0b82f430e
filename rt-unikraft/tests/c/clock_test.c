/*
 * The clock_nanosleep shim (glue/std_shims.inc), compiled on the host: durations
 * saturate instead of wrapping, and a sleep far longer than any test stays asleep.
 * (The shim's clock_nanosleep replaces the C library's in this program; its nanosleep is
 * the host's.) Prints one line per check and exits non-zero if any fails.
 */
#include <pthread.h>
#include <unistd.h>
#include <stdio.h>

#include "std_shims.inc"

static int failures;

static void check(int ok, const char *what)
{
	printf("%s %s\n", ok ? "ok" : "FAIL", what);
	if (!ok)
		failures++;
}

static volatile int woke[2];

/* 18446744074 s: the first whole second whose nanoseconds no longer fit in 64 bits
 * (wrapped, it is 0.29 s). */
static void *sleep_relative(void *arg)
{
	struct timespec ts = { 18446744074LL, 0 };

	(void)arg;
	clock_nanosleep(CLOCK_MONOTONIC, 0, &ts, NULL);
	woke[0] = 1;
	return NULL;
}

/* As far in the future as a timespec goes, as a deadline. */
static void *sleep_absolute(void *arg)
{
	struct timespec ts = { INT64_MAX, 999999999L };

	(void)arg;
	clock_nanosleep(CLOCK_REALTIME, TIMER_ABSTIME, &ts, NULL);
	woke[1] = 1;
	return NULL;
}

int main(void)
{
	struct timespec t;
	pthread_t a, b;
	uint64_t before, slept;

	t = (struct timespec){ 1, 5 };
	check(rt_unikraft_timespec_ns(&t) == 1000000005ULL, "1 s 5 ns is 1000000005 ns");
	t = (struct timespec){ 18446744073LL, 709551615L };
	check(rt_unikraft_timespec_ns(&t) == UINT64_MAX, "the largest representable duration is exact");
	t = (struct timespec){ 18446744073LL, 709551616L };
	check(rt_unikraft_timespec_ns(&t) == UINT64_MAX, "one nanosecond more saturates");
	t = (struct timespec){ 18446744074LL, 0 };
	check(rt_unikraft_timespec_ns(&t) == UINT64_MAX, "18446744074 s saturates instead of wrapping to 0.29 s");
	t = (struct timespec){ INT64_MAX, 999999999L };
	check(rt_unikraft_timespec_ns(&t) == UINT64_MAX, "the largest timespec saturates");

	t = (struct timespec){ -1, 0 };
	check(clock_nanosleep(CLOCK_MONOTONIC, 0, &t, NULL) == EINVAL, "a negative duration is EINVAL");
	t = (struct timespec){ 0, 1000000000L };
	check(clock_nanosleep(CLOCK_MONOTONIC, 0, &t, NULL) == EINVAL, "tv_nsec of a whole second is EINVAL");
	t = (struct timespec){ 0, 20000000L };
	before = rt_unikraft_clock_ns(CLOCK_MONOTONIC);
	check(clock_nanosleep(CLOCK_MONOTONIC, 0, &t, NULL) == 0, "a 20 ms sleep succeeds");
	slept = rt_unikraft_clock_ns(CLOCK_MONOTONIC) - before;
	check(slept >= 20000000ULL, "and lasts at least 20 ms");

	pthread_create(&a, NULL, sleep_relative, NULL);
	pthread_create(&b, NULL, sleep_absolute, NULL);
	t = (struct timespec){ 0, 800000000L };
	nanosleep(&t, NULL);
	check(!woke[0], "a relative sleep of 18446744074 s is still asleep after 0.8 s");
	check(!woke[1], "a sleep until the end of time is still asleep after 0.8 s");
	fflush(stdout);
	/* The sleepers never wake: leave without joining them. */
	_exit(failures ? 1 : 0);
}
