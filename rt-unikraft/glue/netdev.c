/*
 * rt-unikraft's uknetdev glue: a flat C ABI over Unikraft's network device API, compiled
 * by Unikraft's build (it needs Unikraft's headers and inline functions). The Rust side
 * (rt-unikraft/src/net.rs) owns the buffer pool; this file only lends pool slots to the
 * driver and hands them back, so frames are never copied:
 *
 *   RX: Rust posts free slots (rtuk_net_post_rx). When the driver refills its receive
 *       ring it calls rtuk_alloc_rxpkts, which wraps posted slots in netbufs that point
 *       into the pool (uk_netbuf_init_indir, headroom for the virtio header).
 *       rtuk_net_rx returns a received slot and its length.
 *   TX: rtuk_net_tx wraps a slot in a netbuf and queues it; when the driver is done it
 *       frees the netbuf, whose destructor records the slot for rtuk_net_tx_reclaim.
 *
 * One netbuf struct per pool slot lives here (a slot is either on the RX or the TX side,
 * never both). Receive interrupts, and the executor's wait, go through one semaphore:
 * rtuk_wait sleeps on it until an event or the deadline.
 *
 * Without uknetdev in the configuration the functions report that no device exists.
 */
#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#include <string.h>
#include <uk/config.h>
#include <uk/plat/time.h>

#if CONFIG_LIBUKLOCK_SEMAPHORE
#include <uk/semaphore.h>
static struct uk_semaphore rtuk_events;
static int rtuk_events_ready;

static void rtuk_events_init(void)
{
	if (!rtuk_events_ready) {
		uk_semaphore_init(&rtuk_events, 0);
		rtuk_events_ready = 1;
	}
}

/* Sleeps until a device event or `timeout_ns` passes (0: just collect events). */
void rtuk_wait(uint64_t timeout_ns)
{
	rtuk_events_init();
	if (timeout_ns == 0)
		return;
	if (uk_semaphore_down_to(&rtuk_events, timeout_ns) != __NSEC_MAX) {
		/* Several events may have arrived: one wake-up drains them all. */
		while (uk_semaphore_down_try(&rtuk_events))
			;
	}
}

static void rtuk_signal(void)
{
	rtuk_events_init();
	uk_semaphore_up(&rtuk_events);
}
#else
#include <time.h>
void rtuk_wait(uint64_t timeout_ns)
{
	struct timespec ts = { (time_t)(timeout_ns / 1000000000ULL),
			       (long)(timeout_ns % 1000000000ULL) };
	nanosleep(&ts, NULL);
}
#endif

/* Makes the next rtuk_wait return at once: work was left for the next round. */
void rtuk_kick(void)
{
#if CONFIG_LIBUKLOCK_SEMAPHORE
	rtuk_signal();
#endif
}

#if CONFIG_LIBUKNETDEV
#include <uk/alloc.h>
#include <uk/netdev.h>
#include <uk/netbuf.h>

#define RTUK_MAX_SLOTS 4096

static struct {
	struct uk_netdev *dev;
	uint8_t *base;
	size_t stride;
	uint16_t headroom;
	uint16_t slots;
	struct uk_netbuf *nbs;   /* one per slot */
	uint16_t *rx_free;       /* slots posted by Rust, not yet given to the driver */
	uint16_t rx_free_len;
	struct uk_netbuf *early;  /* a frame the start-up rx_one found, for the first rx */
	uint16_t *tx_done;       /* slots the driver released after sending */
	uint16_t tx_done_len;
	int started;
	/*
	 * Receive interrupts are armed and none has fired yet. The virtio driver only
	 * allows rx_one once an interrupt has disarmed them (it re-arms them itself on
	 * its last packet); until then nothing can have arrived anyway.
	 */
	volatile int rx_armed;
} rtuk_net;

/*
 * Gives the driver posted buffers for its receive ring: all it asks for while the queue
 * is being set up, but one per call once the device runs.
 *
 * Why one: with VIRTIO_F_EVENT_IDX (QEMU offers it), Unikraft 0.16.3's virtio ring
 * decides whether to notify the device as if exactly one buffer had been added since
 * the last notification (virtqueue_notify_enabled assumes `old = new - 1`). When the
 * device ran out of receive buffers it waits for a notification at the next index; a
 * refill that adds two or more buffers at once steps over that index, no notification
 * is sent, and the device never delivers another frame (the conformance net.tcp case
 * stalled so, about once in 15 runs, more often under host load). Refilling one buffer
 * per rx_one keeps the driver's arithmetic right: each rx_one takes one frame and adds
 * one buffer, and when one finds no frame, rtuk_net_rx calls it again until the posted
 * buffers are all in the ring.
 */
static uint16_t rtuk_alloc_rxpkts(void *argp __unused, struct uk_netbuf *pkts[],
				  uint16_t count)
{
	uint16_t n = 0;

	if (rtuk_net.started && count > 1)
		count = 1;

	/* While the queue is set up, one posted buffer is held back for rtuk_net_start. */
	while (n < count && rtuk_net.rx_free_len > (rtuk_net.started ? 0 : 1)) {
		uint16_t slot = rtuk_net.rx_free[--rtuk_net.rx_free_len];
		struct uk_netbuf *nb = &rtuk_net.nbs[slot];

		uk_netbuf_init_indir(nb, rtuk_net.base + (size_t)slot * rtuk_net.stride,
				     rtuk_net.stride, rtuk_net.headroom,
				     (void *)(uintptr_t)slot, NULL);
		nb->len = (uint16_t)(rtuk_net.stride - rtuk_net.headroom);
		pkts[n++] = nb;
	}
	return n;
}

static void rtuk_tx_done(struct uk_netbuf *nb)
{
	if (rtuk_net.tx_done_len < rtuk_net.slots)
		rtuk_net.tx_done[rtuk_net.tx_done_len++] = (uint16_t)(uintptr_t)nb->priv;
}

static void rtuk_rx_event(struct uk_netdev *dev __unused, uint16_t queue __unused,
			  void *argp __unused)
{
	rtuk_net.rx_armed = 0;
#if CONFIG_LIBUKLOCK_SEMAPHORE
	rtuk_signal();
#endif
}

int rtuk_net_count(void)
{
	return (int)uk_netdev_count();
}

/*
 * Opens and configures device `index`, before any buffers exist (the pool comes later).
 * `info` is Unikraft's own struct (unikraft-sys declares it, checked by its layout test).
 */
int rtuk_net_open(unsigned index, struct uk_netdev_info *info, uint8_t mac_out[6],
		  uint16_t *mtu_out)
{
	struct uk_netdev_conf conf = { .nb_rx_queues = 1, .nb_tx_queues = 1 };
	const struct uk_hwaddr *mac;
	struct uk_netdev *dev;
	uint16_t mtu;

	if (rtuk_net.dev)
		return -EBUSY;
	dev = uk_netdev_get(index);
	if (!dev)
		return -ENODEV;
	if (uk_netdev_state_get(dev) == UK_NETDEV_UNPROBED && uk_netdev_probe(dev) < 0)
		return -EIO;
	if (uk_netdev_state_get(dev) != UK_NETDEV_UNCONFIGURED)
		return -EBUSY;
	uk_netdev_info_get(dev, info);
	/* The address is only available once the device is configured. */
	if (uk_netdev_configure(dev, &conf) < 0)
		return -EIO;
	memset(mac_out, 0, 6);
	mac = uk_netdev_hwaddr_get(dev);
	if (mac)
		memcpy(mac_out, mac->addr_bytes, 6);
	mtu = uk_netdev_mtu_get(dev);
	*mtu_out = mtu ? mtu : 1500;
	rtuk_net.dev = dev;
	return 0;
}

/*
 * Gives the glue the pool (slot i's headroom at base + i * stride). Rust then posts
 * receive buffers and calls rtuk_net_start.
 */
int rtuk_net_attach(uint8_t *base, size_t stride, uint16_t headroom, uint16_t slots)
{
	struct uk_alloc *a = uk_alloc_get_default();

	if (!rtuk_net.dev || rtuk_net.base)
		return -EINVAL;
	if (slots == 0 || slots > RTUK_MAX_SLOTS)
		return -EINVAL;
	rtuk_net.nbs = uk_calloc(a, slots, sizeof(*rtuk_net.nbs));
	rtuk_net.rx_free = uk_calloc(a, slots, sizeof(uint16_t));
	rtuk_net.tx_done = uk_calloc(a, slots, sizeof(uint16_t));
	if (!rtuk_net.nbs || !rtuk_net.rx_free || !rtuk_net.tx_done)
		return -ENOMEM;
	rtuk_net.base = base;
	rtuk_net.stride = stride;
	rtuk_net.headroom = headroom;
	rtuk_net.slots = slots;
	return 0;
}

/*
 * Sets up the queues and starts the device. The driver fills its receive ring from the
 * buffers posted so far, and later from those posted before each rtuk_net_rx.
 */
int rtuk_net_start(void)
{
	struct uk_alloc *a = uk_alloc_get_default();
	struct uk_netdev_rxqueue_conf rxq = { 0 };
	struct uk_netdev_txqueue_conf txq = { 0 };
	int rc;

	if (!rtuk_net.base || rtuk_net.started)
		return -EINVAL;
	rxq.a = a;
	rxq.alloc_rxpkts = rtuk_alloc_rxpkts;
	rxq.alloc_rxpkts_argp = NULL;
#if CONFIG_LIBUKLOCK_SEMAPHORE
	rxq.callback = rtuk_rx_event;
	rxq.callback_cookie = NULL;
#endif
	rc = uk_netdev_rxq_configure(rtuk_net.dev, 0, 0, &rxq);
	if (rc < 0)
		return rc;
	txq.a = a;
	rc = uk_netdev_txq_configure(rtuk_net.dev, 0, 0, &txq);
	if (rc < 0)
		return rc;
	rc = uk_netdev_start(rtuk_net.dev);
	if (rc < 0)
		return rc;
	rtuk_net.started = 1;
	/*
	 * The ring was filled while the queue was set up, without notifying the device. If
	 * the host sent a frame before then, QEMU found no buffers and now waits to be told
	 * about one: a guest that received nothing at all (seen once in ~35 conformance
	 * runs). This rx_one adds the buffer held back above, and its refill notifies. A
	 * frame it finds waits for the first rtuk_net_rx.
	 */
	if (!(uk_netdev_rx_one(rtuk_net.dev, 0, &rtuk_net.early) & UK_NETDEV_STATUS_SUCCESS))
		rtuk_net.early = NULL;
#if CONFIG_LIBUKLOCK_SEMAPHORE
	/* Interrupt mode; without it (or if the driver cannot) the executor polls.
	 * 0 = armed; 1 = frames already waiting, so receiving may start at once. */
	rtuk_net.rx_armed = uk_netdev_rxq_intr_enable(rtuk_net.dev, 0) == 0;
#endif
	return 0;
}

/*
 * How many frames the driver's transmit queue can hold at most. virtio-net uses two
 * descriptors per frame (header and data: it does not negotiate ANY_LAYOUT), and it
 * frees a sent frame only inside a later transmit call, so this many pool slots can be
 * parked in the driver's transmit side. Call after rtuk_net_open.
 */
int rtuk_net_tx_frames(void)
{
	struct uk_netdev_queue_info qinfo = { 0 };
	int rc;

	if (!rtuk_net.dev)
		return -EINVAL;
	rc = uk_netdev_txq_info_get(rtuk_net.dev, 0, &qinfo);
	if (rc < 0)
		return rc;
	return qinfo.nb_max / 2;
}

/* Lends `slot` to the driver for receiving. */
int rtuk_net_post_rx(uint16_t slot)
{
	if (!rtuk_net.base || slot >= rtuk_net.slots ||
	    rtuk_net.rx_free_len >= rtuk_net.slots)
		return -EINVAL;
	rtuk_net.rx_free[rtuk_net.rx_free_len++] = slot;
	return 0;
}

/*
 * Finishes a checksum the sender left to "the hardware" (virtio's NEEDS_CSUM: a host
 * stack sending over a TAP offloads it). The field holds the pseudo-header sum; the
 * one's-complement sum of everything from csum_start, that field included, goes there.
 */
static void rtuk_complete_csum(uint8_t *frame, uint16_t len, uint16_t start, uint16_t offset)
{
	uint32_t sum = 0;
	uint16_t i, csum;

	if ((uint32_t)start + offset + 2 > len)
		return;
	for (i = start; i + 1 < len; i += 2)
		sum += (uint32_t)((frame[i] << 8) | frame[i + 1]);
	if (i < len)
		sum += (uint32_t)(frame[i] << 8);
	while (sum >> 16)
		sum = (sum & 0xffff) + (sum >> 16);
	csum = (uint16_t)~sum;
	frame[start + offset] = (uint8_t)(csum >> 8);
	frame[start + offset + 1] = (uint8_t)csum;
}

/*
 * The frame's real length. Unikraft 0.16.3's virtio-net driver reports the length the
 * device wrote, which includes the virtio-net header (10 or 12 bytes), so a frame comes
 * with that many bytes of whatever the buffer held before. For IPv4 and IPv6 the IP
 * header says where the packet ends; other frames (ARP) keep the extra bytes, which
 * their parsers ignore.
 */
static uint16_t rtuk_frame_len(const uint8_t *frame, uint16_t len)
{
	uint32_t end = len;

	if (len >= 14 + 20 && frame[12] == 0x08 && frame[13] == 0x00)
		end = 14 + (((uint32_t)frame[16] << 8) | frame[17]);
	else if (len >= 14 + 40 && frame[12] == 0x86 && frame[13] == 0xdd)
		end = 14 + 40 + (((uint32_t)frame[18] << 8) | frame[19]);
	return end <= len ? (uint16_t)end : len;
}

/*
 * Takes one received frame: its slot and length (the frame starts at the slot's buffer,
 * after the headroom). Returns a bit set: 1 = a frame was returned, 2 = more are waiting;
 * or a negative errno.
 */
int rtuk_net_rx(uint16_t *slot, uint16_t *len)
{
	struct uk_netbuf *nb = NULL;
	uint8_t *frame;
	int status;

	if (!rtuk_net.started)
		return -EINVAL;
	if (rtuk_net.early) {
		nb = rtuk_net.early;
		rtuk_net.early = NULL;
		/* MORE: whatever else is waiting is taken by the next calls. */
		status = UK_NETDEV_STATUS_SUCCESS | UK_NETDEV_STATUS_MORE;
		goto deliver;
	}
	if (rtuk_net.rx_armed)
		return 0;
	status = uk_netdev_rx_one(rtuk_net.dev, 0, &nb);
	/* Each rx_one refills at most one buffer (see rtuk_alloc_rxpkts): while no frame
	 * comes, go on until the posted buffers are all in the ring, or it takes no more. */
	while (status >= 0 && !(status & UK_NETDEV_STATUS_SUCCESS) && rtuk_net.rx_free_len > 0) {
		uint16_t waiting = rtuk_net.rx_free_len;

		status = uk_netdev_rx_one(rtuk_net.dev, 0, &nb);
		if (rtuk_net.rx_free_len == waiting)
			break;
	}
	if (status < 0)
		return status;
	if (!(status & UK_NETDEV_STATUS_SUCCESS) || !nb)
		return (status & UK_NETDEV_STATUS_MORE) ? 2 : 0;
deliver:
	*slot = (uint16_t)(uintptr_t)nb->priv;
	/* The driver strips its header, so the frame starts where the pool expects it;
	 * move it there if a driver ever leaves it elsewhere. */
	frame = rtuk_net.base + (size_t)*slot * rtuk_net.stride + rtuk_net.headroom;
	if ((uint8_t *)nb->data != frame)
		memmove(frame, nb->data, nb->len);
	*len = rtuk_frame_len(frame, nb->len);
	/* Summed up to the packet's real end: the stale bytes after it would spoil it. */
	if (nb->flags & UK_NETBUF_F_PARTIAL_CSUM)
		rtuk_complete_csum(frame, *len, nb->csum_start, nb->csum_offset);
	return 1 | ((status & UK_NETDEV_STATUS_MORE) ? 2 : 0);
}

/*
 * Queues the frame in `slot` (len bytes at the slot's buffer). Returns 1 when the driver
 * took it (the slot comes back through rtuk_net_tx_reclaim), 0 when the ring is full
 * (try again later), or a negative errno.
 */
int rtuk_net_tx(uint16_t slot, uint16_t len)
{
	struct uk_netbuf *nb;
	int status;

	if (!rtuk_net.started || slot >= rtuk_net.slots)
		return -EINVAL;
	nb = &rtuk_net.nbs[slot];
	uk_netbuf_init_indir(nb, rtuk_net.base + (size_t)slot * rtuk_net.stride,
			     rtuk_net.stride, rtuk_net.headroom,
			     (void *)(uintptr_t)slot, rtuk_tx_done);
	nb->len = len;
	status = uk_netdev_tx_one(rtuk_net.dev, 0, nb);
	if (status < 0)
		return status;
	return (status & UK_NETDEV_STATUS_SUCCESS) ? 1 : 0;
}

/* Moves up to `max` slots the driver has finished sending into `out`. */
int rtuk_net_tx_reclaim(uint16_t *out, int max)
{
	int n = 0;

	while (n < max && rtuk_net.tx_done_len > 0)
		out[n++] = rtuk_net.tx_done[--rtuk_net.tx_done_len];
	return n;
}
#else /* !CONFIG_LIBUKNETDEV */
#include "no_netdev.inc"
#endif /* CONFIG_LIBUKNETDEV */
