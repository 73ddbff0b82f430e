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
 * never both). The device edge's wake-ups are here too: receive interrupts (and block
 * completions, glue/blkdev.c) end the waits of rtuk_wait_executor / rtuk_wait_net, one
 * semaphore per waiter.
 *
 * Without uknetdev in the configuration the functions report that no device exists.
 */
#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#include <string.h>
#include <uk/config.h>
#include <uk/plat/time.h>

#include "rt_glue.h"

#if CONFIG_LIBUKLOCK_SEMAPHORE
#include <uk/semaphore.h>

/*
 * One wake-up per waiter. Two threads may sleep here at once: the thread running
 * shared-core's executor (rtuk_wait_executor: timers, block completions, a Stack it
 * polls) and, with `sockets = true`, the socket layer's network thread (rtuk_wait_net).
 * Each has its own semaphore, so neither can use up the other's wake-up. (They used to
 * share one, and each wait drains its semaphore: a block completion taken by the network
 * thread left the executor asleep until its timeout, up to a second.)
 */
static struct uk_semaphore rtuk_executor_events;
static struct uk_semaphore rtuk_net_events;

/*
 * The semaphores are initialised once, by a constructor: Unikraft runs constructors at
 * boot, before `main`, so before any device of ours exists and can interrupt. (They used
 * to be initialised on first use, from the thread's wait or from an interrupt handler,
 * whichever came first: an interrupt during the thread's initialisation had its wake-up
 * wiped out by it.) rt-unikraft/tests/glue_c.rs checks this on the host.
 */
__attribute__((constructor)) static void rtuk_events_init(void)
{
	uk_semaphore_init(&rtuk_executor_events, 0);
	uk_semaphore_init(&rtuk_net_events, 0);
}

/* Sleeps on `events` until a wake-up or `timeout_ns` passes (0: returns at once). */
static void rtuk_sleep_on(struct uk_semaphore *events, uint64_t timeout_ns)
{
	if (timeout_ns == 0)
		return;
	if (uk_semaphore_down_to(events, timeout_ns) != __NSEC_MAX) {
		/* Several wake-ups may have come: one return drains them all. */
		while (uk_semaphore_down_try(events))
			;
	}
}

void rtuk_wait_executor(uint64_t timeout_ns)
{
	rtuk_sleep_on(&rtuk_executor_events, timeout_ns);
}

void rtuk_wait_net(uint64_t timeout_ns)
{
	rtuk_sleep_on(&rtuk_net_events, timeout_ns);
}

void rtuk_kick_executor(void)
{
	uk_semaphore_up(&rtuk_executor_events);
}

/* Every waiter: a network event concerns whichever of them drives the NIC. */
void rtuk_kick(void)
{
	uk_semaphore_up(&rtuk_executor_events);
	uk_semaphore_up(&rtuk_net_events);
}
#else
#include <time.h>

/* Without semaphores nothing can wake a waiter early: each wait sleeps its time out. */
static void rtuk_sleep_for(uint64_t timeout_ns)
{
	struct timespec ts = { (time_t)(timeout_ns / 1000000000ULL),
			       (long)(timeout_ns % 1000000000ULL) };
	nanosleep(&ts, NULL);
}

void rtuk_wait_executor(uint64_t timeout_ns)
{
	rtuk_sleep_for(timeout_ns);
}

void rtuk_wait_net(uint64_t timeout_ns)
{
	rtuk_sleep_for(timeout_ns);
}

void rtuk_kick_executor(void)
{
}

void rtuk_kick(void)
{
}
#endif

#if CONFIG_LIBUKNETDEV
#include <uk/alloc.h>
#include <uk/netdev.h>
#include <uk/netbuf.h>

/* What rt_glue.h promises about the driver, checked against Unikraft's own numbers. */
_Static_assert(RTUK_NET_MAX_FRAME == UK_ETH_HDR_UNTAGGED_LEN + UK_ETH_PAYLOAD_MAXLEN,
	       "RTUK_NET_MAX_FRAME is what virtio-net accepts after its header");
_Static_assert(RTUK_NET_DEFAULT_MTU == UK_ETH_PAYLOAD_MAXLEN, "the MTU virtio-net carries");
_Static_assert(RTUK_NET_RX_FRAME == UK_NETDEV_STATUS_SUCCESS &&
	       RTUK_NET_RX_MORE == UK_NETDEV_STATUS_MORE, "rx status bits");

/*
 * The virtio-net header's size, which the driver keeps to itself: 10 bytes on legacy
 * virtio (QEMU's virtio-net-pci as Unikraft 0.16.3 drives it), 12 on modern virtio
 * (virtio-mmio, Firecracker), where the header ends with num_buffers. The driver puts
 * the header `nb_encap_rx` bytes before the frame. Before lending a buffer the glue
 * marks bytes 10-11 of that header with RTUK_VNET_MARK, which a device never writes
 * there (num_buffers is 1 when buffers are not merged); a 12-byte header overwrites the
 * mark, a 10-byte one leaves it.
 */
#define RTUK_VNET_HDR_LEGACY 10
#define RTUK_VNET_HDR_MODERN 12
#define RTUK_VNET_MARK 0xff

static struct {
	struct uk_netdev *dev;
	uint16_t encap_rx;       /* the driver's header room before a received frame */
	uint8_t *base;
	size_t stride;
	uint16_t headroom;
	uint16_t slots;
	uint16_t rx_len;         /* receive buffer length: at most RTUK_NET_MAX_FRAME */
	struct uk_netbuf *nbs;   /* one per slot */
	uint16_t *rx_free;       /* slots posted by Rust, not yet given to the driver */
	uint16_t rx_free_len;
	struct uk_netbuf *early;  /* a frame the start-up rx_one found, for the first rx */
	uint16_t rx_dropped;     /* frames the driver rejected, not yet reported */
	uint16_t *tx_done;       /* slots the driver released after sending */
	uint16_t tx_done_len;
	int started;
	/* Rust dropped the device (rtuk_net_close): it is never handed out again. */
	int closed;
	/*
	 * Receive interrupts are armed and none has fired yet. The virtio driver only
	 * allows rx_one once an interrupt has disarmed them (it re-arms them itself on
	 * its last packet); until then nothing can have arrived anyway.
	 */
	volatile int rx_armed;
} rtuk_net;

static uint8_t *rtuk_slot_buf(uint16_t slot)
{
	return rtuk_net.base + (size_t)slot * rtuk_net.stride + rtuk_net.headroom;
}

/* Where the driver will put the virtio-net header of a frame received in `slot`. */
static uint8_t *rtuk_slot_vnet_hdr(uint16_t slot)
{
	return rtuk_slot_buf(slot) - rtuk_net.encap_rx;
}

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
 *
 * Each buffer is rx_len bytes, no more than the driver accepts (RTUK_NET_MAX_FRAME): the
 * driver rejects a longer frame after taking it off the ring and never returns that
 * buffer, so a buffer that could hold one would be lost with it (a host with a jumbo MTU
 * deafened the guest after about a hundred such frames). A frame that does not fit is
 * dropped by the VMM, and the buffer stays in the ring.
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
		uint8_t *hdr = rtuk_slot_vnet_hdr(slot);

		uk_netbuf_init_indir(nb, rtuk_net.base + (size_t)slot * rtuk_net.stride,
				     rtuk_net.headroom + rtuk_net.rx_len, rtuk_net.headroom,
				     (void *)(uintptr_t)slot, NULL);
		nb->len = rtuk_net.rx_len;
		hdr[RTUK_VNET_HDR_LEGACY] = RTUK_VNET_MARK;
		hdr[RTUK_VNET_HDR_LEGACY + 1] = RTUK_VNET_MARK;
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
	rtuk_kick();
}

int rtuk_net_count(void)
{
	return (int)uk_netdev_count();
}

/*
 * Opens device `index`: probes it, configures it and its transmit queue (the receive
 * queue needs the pool, which comes later). Every error here reaches the app from
 * open_net. `info` is Unikraft's own struct (unikraft-sys declares it, checked by its
 * layout test).
 */
int rtuk_net_open(unsigned index, struct uk_netdev_info *info, uint8_t mac_out[6],
		  uint16_t *mtu_out)
{
	struct uk_netdev_conf conf = { .nb_rx_queues = 1, .nb_tx_queues = 1 };
	struct uk_netdev_txqueue_conf txq = { 0 };
	const struct uk_hwaddr *mac;
	struct uk_netdev *dev;
	uint16_t mtu;
	int rc;

	dev = uk_netdev_get(index);
	if (!dev)
		return -ENODEV;
	/* One device at a time: the glue's state is static. And once only (rtuk_net_close). */
	if (rtuk_net.dev)
		return rtuk_net.closed ? -ESHUTDOWN : -EBUSY;
	if (uk_netdev_state_get(dev) == UK_NETDEV_UNPROBED && uk_netdev_probe(dev) < 0)
		return -EIO;
	if (uk_netdev_state_get(dev) != UK_NETDEV_UNCONFIGURED)
		return -EBUSY;
	uk_netdev_info_get(dev, info);
	/* The header must fit where the mark goes (see RTUK_VNET_HDR_MODERN). */
	if (info->nb_encap_rx < RTUK_VNET_HDR_MODERN)
		return -ENOTSUP;
	/* The address is only available once the device is configured. */
	rc = uk_netdev_configure(dev, &conf);
	if (rc < 0)
		return rc;
	txq.a = uk_alloc_get_default();
	rc = uk_netdev_txq_configure(dev, 0, 0, &txq);
	if (rc < 0)
		return rc;
	memset(mac_out, 0, 6);
	mac = uk_netdev_hwaddr_get(dev);
	if (mac)
		memcpy(mac_out, mac->addr_bytes, 6);
	/* The driver carries no more than RTUK_NET_DEFAULT_MTU either way. And 0.16.3 reads
	 * a device-offered MTU (VIRTIO_NET_F_MTU: QEMU's host_mtu=, which urunc sets) from
	 * the MAC's config offset, so that value is the MAC's first two bytes (2 for
	 * 02:00:...): an MTU below RTUK_NET_MIN_MTU, or equal to those bytes, is not believed. */
	mtu = uk_netdev_mtu_get(dev);
	if (mac && mtu == (uint16_t)(mac->addr_bytes[0] | (mac->addr_bytes[1] << 8)))
		mtu = 0;
	*mtu_out = (mtu >= RTUK_NET_MIN_MTU && mtu <= RTUK_NET_DEFAULT_MTU) ? mtu : RTUK_NET_DEFAULT_MTU;
	rtuk_net.dev = dev;
	rtuk_net.encap_rx = info->nb_encap_rx;
	return 0;
}

/*
 * Gives the glue the pool (slot i's headroom at base + i * stride, its receive buffer
 * of rx_len bytes after it). Rust then posts receive buffers and calls rtuk_net_start.
 */
int rtuk_net_attach(uint8_t *base, size_t stride, uint16_t headroom, uint16_t slots,
		    uint16_t rx_len)
{
	struct uk_alloc *a = uk_alloc_get_default();

	if (!rtuk_net.dev || rtuk_net.base || rtuk_net.closed)
		return -EINVAL;
	if (slots == 0 || slots > RTUK_NET_MAX_SLOTS)
		return -EINVAL;
	if (headroom < rtuk_net.encap_rx || rx_len < UK_ETH_HDR_UNTAGGED_LEN ||
	    rx_len > RTUK_NET_MAX_FRAME || (size_t)headroom + rx_len > stride)
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
	rtuk_net.rx_len = rx_len;
	return 0;
}

/*
 * Sets up the receive queue and starts the device. The driver fills its receive ring
 * from the buffers posted so far, and later from those posted before each rtuk_net_rx.
 */
int rtuk_net_start(void)
{
	struct uk_netdev_rxqueue_conf rxq = { 0 };
	int rc;

	if (!rtuk_net.base || rtuk_net.started || rtuk_net.closed)
		return -EINVAL;
	rxq.a = uk_alloc_get_default();
	rxq.alloc_rxpkts = rtuk_alloc_rxpkts;
	rxq.alloc_rxpkts_argp = NULL;
#if CONFIG_LIBUKLOCK_SEMAPHORE
	rxq.callback = rtuk_rx_event;
	rxq.callback_cookie = NULL;
#endif
	rc = uk_netdev_rxq_configure(rtuk_net.dev, 0, 0, &rxq);
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
	 * frame it finds waits for the first rtuk_net_rx; one the driver rejects is reported
	 * there.
	 */
	rc = uk_netdev_rx_one(rtuk_net.dev, 0, &rtuk_net.early);
	if (rc < 0)
		rtuk_net.rx_dropped++;
	if (rc < 0 || !(rc & UK_NETDEV_STATUS_SUCCESS))
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
	if (!rtuk_net.base || rtuk_net.closed || slot >= rtuk_net.slots ||
	    rtuk_net.rx_free_len >= rtuk_net.slots)
		return -EINVAL;
	rtuk_net.rx_free[rtuk_net.rx_free_len++] = slot;
	return 0;
}

/* Fills `out` for a frame the driver returned in `nb`. */
static void rtuk_describe(struct uk_netbuf *nb, struct rtuk_net_rx_frame *out)
{
	uint16_t slot = (uint16_t)(uintptr_t)nb->priv;
	const uint8_t *hdr = rtuk_slot_vnet_hdr(slot);
	int marked = hdr[RTUK_VNET_HDR_LEGACY] == RTUK_VNET_MARK &&
		     hdr[RTUK_VNET_HDR_LEGACY + 1] == RTUK_VNET_MARK;

	memset(out, 0, sizeof(*out));
	out->slot = slot;
	/* The driver strips its header, so the frame starts where the pool expects it. If
	 * a driver ever left it elsewhere, the frame is reported empty (Rust drops it, counted). */
	out->len = (uint8_t *)nb->data == rtuk_slot_buf(slot) ? nb->len : 0;
	out->header = marked ? RTUK_VNET_HDR_LEGACY : RTUK_VNET_HDR_MODERN;
	if (nb->flags & UK_NETBUF_F_PARTIAL_CSUM) {
		out->flags |= RTUK_NET_RX_F_PARTIAL_CSUM;
		out->csum_start = nb->csum_start;
		out->csum_offset = nb->csum_offset;
	}
}

/*
 * Takes one received frame and describes it in `out` (the frame starts at the slot's
 * buffer). Returns RTUK_NET_RX_* bits: FRAME when `out` holds one, MORE when more may be
 * waiting, DROPPED when the driver rejected a frame (it keeps the buffer: Rust counts
 * both); or a negative errno.
 */
int rtuk_net_rx(struct rtuk_net_rx_frame *out)
{
	struct uk_netbuf *nb = NULL;
	int status;

	if (!rtuk_net.started || rtuk_net.closed)
		return -EINVAL;
	if (rtuk_net.rx_dropped) {
		rtuk_net.rx_dropped--;
		return RTUK_NET_RX_DROPPED | RTUK_NET_RX_MORE;
	}
	if (rtuk_net.early) {
		nb = rtuk_net.early;
		rtuk_net.early = NULL;
		/* MORE: whatever else is waiting is taken by the next calls. */
		rtuk_describe(nb, out);
		return RTUK_NET_RX_FRAME | RTUK_NET_RX_MORE;
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
	/*
	 * The driver rejected a frame (a length it does not accept): the buffer went with
	 * it, and its interrupt stays off until a later rx_one finds the queue empty. MORE
	 * makes the caller come back for that.
	 */
	if (status < 0)
		return RTUK_NET_RX_DROPPED | RTUK_NET_RX_MORE;
	if (!(status & UK_NETDEV_STATUS_SUCCESS) || !nb)
		return (status & UK_NETDEV_STATUS_MORE) ? RTUK_NET_RX_MORE : 0;
	rtuk_describe(nb, out);
	return RTUK_NET_RX_FRAME | ((status & UK_NETDEV_STATUS_MORE) ? RTUK_NET_RX_MORE : 0);
}

/*
 * Queues the frame in `slot` (len bytes at the slot's buffer). Returns RTUK_NET_TX_QUEUED
 * when the driver took it (the slot comes back through rtuk_net_tx_reclaim),
 * RTUK_NET_TX_FULL when the ring is full (try again later), or a negative errno.
 */
int rtuk_net_tx(uint16_t slot, uint16_t len)
{
	struct uk_netbuf *nb;
	int status;

	if (!rtuk_net.started || rtuk_net.closed || slot >= rtuk_net.slots ||
	    (size_t)rtuk_net.headroom + len > rtuk_net.stride)
		return -EINVAL;
	nb = &rtuk_net.nbs[slot];
	uk_netbuf_init_indir(nb, rtuk_net.base + (size_t)slot * rtuk_net.stride,
			     rtuk_net.stride, rtuk_net.headroom,
			     (void *)(uintptr_t)slot, rtuk_tx_done);
	nb->len = len;
	status = uk_netdev_tx_one(rtuk_net.dev, 0, nb);
	if (status < 0)
		return status;
	return (status & UK_NETDEV_STATUS_SUCCESS) ? RTUK_NET_TX_QUEUED : RTUK_NET_TX_FULL;
}

/* Moves up to `max` slots the driver has finished sending into `out`. */
int rtuk_net_tx_reclaim(uint16_t *out, int max)
{
	int n = 0;

	while (n < max && rtuk_net.tx_done_len > 0)
		out[n++] = rtuk_net.tx_done[--rtuk_net.tx_done_len];
	return n;
}

/*
 * Rust dropped its device. Unikraft 0.16.3 cannot stop a network device (uknetdev has no
 * stop, no queue release), so the device keeps the receive buffers it was lent and writes
 * into them by DMA whenever a frame arrives, for as long as the VM runs. So nothing it
 * may touch is freed: Rust keeps the pool's memory (PacketPool::keep_memory_for_device,
 * called before rtuk_net_attach), the glue keeps its netbufs. The device is marked closed:
 * every later call but this one fails, and a later open gets -ESHUTDOWN, instead of
 * lending the device a second pool. Its receive interrupt fires at most once more (the
 * driver switches it off in its handler; only rx_one, which nobody calls now, re-arms it).
 */
int rtuk_net_close(void)
{
	if (!rtuk_net.dev || rtuk_net.closed)
		return -EINVAL;
	rtuk_net.closed = 1;
	return 0;
}

/*
 * The platform's IPv4 settings for the open device: with
 * CONFIG_LIBUKNETDEV_EINFO_LIBPARAM (kraftfile-gen enables it with the net device),
 * uknetdev answers from the `netdev.ip=` kernel parameter, else from the driver (virtio
 * has none). Copied out, so Rust never holds Unikraft's pointers.
 */
int rtuk_net_einfo(int kind, char *buf, size_t len)
{
	enum uk_netdev_einfo_type type;
	const char *value;
	size_t n;

	switch (kind) {
	case RTUK_NET_EINFO_IPV4_CIDR:
		type = UK_NETDEV_IPV4_CIDR;
		break;
	case RTUK_NET_EINFO_IPV4_GW:
		type = UK_NETDEV_IPV4_GW;
		break;
	case RTUK_NET_EINFO_IPV4_DNS0:
		type = UK_NETDEV_IPV4_DNS0;
		break;
	default:
		return -EINVAL;
	}
	if (!rtuk_net.dev)
		return -ENODEV;
	value = uk_netdev_einfo_get(rtuk_net.dev, type);
	if (!value)
		return 0;
	n = strlen(value);
	if (n + 1 > len)
		return -ENOSPC;
	memcpy(buf, value, n + 1);
	return (int)n;
}

#else /* !CONFIG_LIBUKNETDEV */
#include "no_netdev.inc"
#endif /* CONFIG_LIBUKNETDEV */
