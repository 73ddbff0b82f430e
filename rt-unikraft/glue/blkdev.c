/*
 * rt-unikraft's ukblkdev glue: a flat C ABI over Unikraft's block device API, compiled by
 * Unikraft's build. Requests are asynchronous: rtuk_blk_submit queues one (at most
 * RTUK_BLK_INFLIGHT at a time, each within the device's maximum sectors per request;
 * rt-unikraft/src/block.rs splits larger ones), rtuk_blk_poll collects completions.
 * Completion interrupts wake the executor's wait through rtuk_kick (glue/netdev.c).
 *
 * Without ukblkdev in the configuration the functions report that no device exists.
 */
#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#include <uk/config.h>

void rtuk_kick(void);

#if CONFIG_LIBUKBLKDEV
#include <uk/alloc.h>
#include <uk/blkdev.h>

#define RTUK_BLK_INFLIGHT 8

static struct {
	struct uk_blkdev *dev;
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
	rtuk_kick();
}

/* Opens device `index`; `out` gets Unikraft's own capability struct (see unikraft-sys). */
int rtuk_blk_open(unsigned index, struct uk_blkdev_cap *out)
{
	struct uk_blkdev_conf conf = { .nb_queues = 1 };
	struct uk_blkdev_queue_conf qconf = { 0 };
	const struct uk_blkdev_cap *cap;
	struct uk_blkdev *dev;
	int rc;

	if (rtuk_blk.dev)
		return -EBUSY;
	if (index >= uk_blkdev_count())
		return -ENODEV;
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
	rtuk_blk.started = 1;
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

	if (!rtuk_blk.started)
		return -ENODEV;
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
	rtuk_blk.busy[slot] = 1;
	return slot;
}

/*
 * Collects finished requests, then reports on `handle`: 0 = still running, 1 = done,
 * -errno = failed (the handle is free again after 1 or an error).
 */
int rtuk_blk_poll(int handle)
{
	struct uk_blkreq *req;

	if (!rtuk_blk.started || handle < 0 || handle >= RTUK_BLK_INFLIGHT ||
	    !rtuk_blk.busy[handle])
		return -EINVAL;
	if (!rtuk_blk.armed)
		uk_blkdev_queue_finish_reqs(rtuk_blk.dev, 0);
	req = &rtuk_blk.reqs[handle];
	if (!uk_blkreq_is_done(req))
		return 0;
	rtuk_blk.busy[handle] = 0;
	return req->result < 0 ? (req->result ? req->result : -EIO) : 1;
}
#else /* !CONFIG_LIBUKBLKDEV */
#include "no_blkdev.inc"
#endif /* CONFIG_LIBUKBLKDEV */
