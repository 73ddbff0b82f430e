/*
 * rt-unikraft's ukblkdev glue: a flat C ABI over Unikraft's block device API, compiled by
 * Unikraft's build. Requests are asynchronous: rtuk_blk_submit queues one (at most
 * RTUK_BLK_INFLIGHT at a time, each within the device's maximum sectors per request;
 * rt-unikraft/src/block.rs splits larger ones), rtuk_blk_poll collects completions.
 * Completion interrupts wake the executor's wait (rtuk_kick_executor, glue/netdev.c).
 *
 * Dropping the Rust device gives it back (rtuk_blk_close) without stopping it:
 * Unikraft 0.16.3's virtio-blk cannot be restarted after uk_blkdev_stop, so the device
 * stays started and a later rtuk_blk_open hands it out again. Requests still running at
 * the close are abandoned: their handles come free when the device finishes them, and
 * Rust keeps their buffers until then (rt-unikraft/src/block.rs, UkBlock's Drop).
 *
 * Without ukblkdev in the configuration the functions report that no device exists.
 */
#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#include <uk/config.h>

#include "rt_glue.h"

#if CONFIG_LIBUKBLKDEV
#include <uk/alloc.h>
#include <uk/blkdev.h>

#define RTUK_BLK_INFLIGHT 8

_Static_assert(RTUK_BLK_OP_READ == UK_BLKREQ_READ && RTUK_BLK_OP_WRITE == UK_BLKREQ_WRITE &&
	       RTUK_BLK_OP_FLUSH == UK_BLKREQ_FFLUSH, "rtuk_blk_submit's operations are Unikraft's");

/* rtuk_blk.busy[] values. */
#define RTUK_BLK_FREE 0
#define RTUK_BLK_IN_USE 1
#define RTUK_BLK_ABANDONED 2 /* running when the device was closed; freed once done */

static struct {
	struct uk_blkdev *dev;
	unsigned index;
	/* Held by a Rust device (between rtuk_blk_open and rtuk_blk_close). */
	int open;
	struct uk_blkreq reqs[RTUK_BLK_INFLIGHT];
	int busy[RTUK_BLK_INFLIGHT];
	int started;
	/*
	 * Completion interrupts are armed and none has fired since. Like virtio-net, the
	 * virtio-blk driver only allows finish_reqs with its interrupt off (the interrupt
	 * turns it off, finish_reqs turns it back on), and nothing can have completed while
	 * it was armed.
	 */
	volatile int armed;
} rtuk_blk;

static void rtuk_blk_event(struct uk_blkdev *dev __unused, uint16_t queue __unused,
			   void *argp __unused)
{
	rtuk_blk.armed = 0;
	rtuk_kick_executor();
}

/* Opens device `index`; `out` gets Unikraft's own capability struct (see unikraft-sys). */
int rtuk_blk_open(unsigned index, struct uk_blkdev_cap *out)
{
	struct uk_blkdev_conf conf = { .nb_queues = 1 };
	struct uk_blkdev_queue_conf qconf = { 0 };
	const struct uk_blkdev_cap *cap;
	struct uk_blkdev *dev;
	int rc;

	if (index >= uk_blkdev_count())
		return -ENODEV;
	/* One device at a time; the one given back by rtuk_blk_close is still started. */
	if (rtuk_blk.dev) {
		if (rtuk_blk.open || index != rtuk_blk.index)
			return -EBUSY;
		*out = *uk_blkdev_capabilities(rtuk_blk.dev);
		rtuk_blk.open = 1;
		return 0;
	}
	dev = uk_blkdev_get(index);
	if (!dev)
		return -ENODEV;
	rc = uk_blkdev_configure(dev, &conf);
	if (rc < 0)
		return rc;
	qconf.a = uk_alloc_get_default();
	qconf.callback = rtuk_blk_event;
	qconf.callback_cookie = NULL;
	rc = uk_blkdev_queue_configure(dev, 0, 0, &qconf);
	if (rc < 0)
		return rc;
	rc = uk_blkdev_start(dev);
	if (rc < 0)
		return rc;
	/* Completions interrupt; if the driver cannot, rtuk_blk_poll still collects them
	 * whenever the executor wakes. */
	rtuk_blk.armed = uk_blkdev_queue_intr_enable(dev, 0) == 0;
	cap = uk_blkdev_capabilities(dev);
	*out = *cap;
	rtuk_blk.dev = dev;
	rtuk_blk.index = index;
	rtuk_blk.started = 1;
	rtuk_blk.open = 1;
	return 0;
}

/* Frees the handles of abandoned requests the device has finished. */
static void rtuk_blk_reap_abandoned(void)
{
	int slot;

	for (slot = 0; slot < RTUK_BLK_INFLIGHT; slot++) {
		if (rtuk_blk.busy[slot] == RTUK_BLK_ABANDONED && uk_blkreq_is_done(&rtuk_blk.reqs[slot]))
			rtuk_blk.busy[slot] = RTUK_BLK_FREE;
	}
}

/* Collects finished requests (only allowed with the interrupt off, see `armed`). */
static void rtuk_blk_collect(void)
{
	if (!rtuk_blk.armed)
		uk_blkdev_queue_finish_reqs(rtuk_blk.dev, 0);
	rtuk_blk_reap_abandoned();
}

/* See rt_glue.h. */
int rtuk_blk_close(void)
{
	int slot;

	if (!rtuk_blk.open)
		return -EINVAL;
	rtuk_blk_collect();
	for (slot = 0; slot < RTUK_BLK_INFLIGHT; slot++) {
		if (rtuk_blk.busy[slot] == RTUK_BLK_IN_USE)
			rtuk_blk.busy[slot] = RTUK_BLK_ABANDONED;
	}
	rtuk_blk.open = 0;
	return 0;
}

static void rtuk_blk_done(struct uk_blkreq *req __unused, void *cookie __unused)
{
	/* State and result are in the request; rtuk_blk_poll reads them. */
}

/*
 * Queues an operation (0 = read, 1 = write, 4 = flush) on `nb` sectors from `sector`,
 * with `buf` (aligned to the device's ioalign). Returns the request's handle (>= 0),
 * -EBUSY when RTUK_BLK_INFLIGHT requests or the device queue are full, or -errno.
 */
int rtuk_blk_submit(int op, uint64_t sector, uint64_t nb, void *buf)
{
	int slot, rc;

	if (!rtuk_blk.started || !rtuk_blk.open)
		return -ENODEV;
	rtuk_blk_reap_abandoned();
	for (slot = 0; slot < RTUK_BLK_INFLIGHT && rtuk_blk.busy[slot]; slot++)
		;
	if (slot == RTUK_BLK_INFLIGHT)
		return -EBUSY;
	uk_blkreq_init(&rtuk_blk.reqs[slot], (enum uk_blkreq_op)op, sector, nb, buf,
		       rtuk_blk_done, NULL);
	rc = uk_blkdev_queue_submit_one(rtuk_blk.dev, 0, &rtuk_blk.reqs[slot]);
	if (rc < 0)
		return rc;
	if (!uk_blkdev_status_test_set(rc, UK_BLKDEV_STATUS_SUCCESS))
		return -EBUSY;
	rtuk_blk.busy[slot] = RTUK_BLK_IN_USE;
	return slot;
}

/*
 * Collects finished requests, then reports on `handle`: 0 = still running, 1 = done,
 * -errno = failed (the handle is free again after 1 or an error).
 */
int rtuk_blk_poll(int handle)
{
	struct uk_blkreq *req;

	if (!rtuk_blk.started || !rtuk_blk.open || handle < 0 || handle >= RTUK_BLK_INFLIGHT ||
	    rtuk_blk.busy[handle] != RTUK_BLK_IN_USE)
		return -EINVAL;
	rtuk_blk_collect();
	req = &rtuk_blk.reqs[handle];
	if (!uk_blkreq_is_done(req))
		return 0;
	rtuk_blk.busy[handle] = RTUK_BLK_FREE;
	return req->result < 0 ? (req->result ? req->result : -EIO) : 1;
}
#else /* !CONFIG_LIBUKBLKDEV */
#include "no_blkdev.inc"
#endif /* CONFIG_LIBUKBLKDEV */
