/*
 * glue/netdev.c's receive path against a scripted virtio-net device, on the host.
 *
 * The device below behaves as Unikraft 0.16.3's virtio-net driver and QEMU's device do
 * together, in the ways the glue depends on (docs/unikraft.md, "traps"):
 *
 * - the driver puts each receive buffer in the ring after a header room of
 *   nb_encap_rx (16) bytes; the device writes a 10-byte (legacy) or 12-byte (modern,
 *   ending with num_buffers = 1) virtio-net header there and the frame after it;
 * - the device (QEMU without mergeable buffers) drops a frame that does not fit in the
 *   first posted buffer, and the buffer stays in the ring;
 * - rx_one reports the length the device wrote, header included; it rejects a length
 *   below header + 14 or above header + 1514 with -EINVAL, after taking the buffer off
 *   the ring, and never returns that buffer;
 * - rx_one refills the ring only when it returned a frame, asking alloc_rxpkts for
 *   what is free, and adds UNDERRUN to its status when it got fewer (the glue gives one
 *   buffer per call once the device runs).
 *
 * Scenarios (argv[1]): "receive" (default), "start-fails", "configure-fails". Prints one
 * line per check and exits non-zero if any fails.
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <uk/netdev.h>
#include <uk/semaphore.h>

#include "rt_glue.h"

/* ---- the fake semaphore (the glue's events) ---- */

void uk_semaphore_init(struct uk_semaphore *s, long count)
{
	s->count = count;
}

__nsec uk_semaphore_down_to(struct uk_semaphore *s, __nsec timeout)
{
	(void)timeout;
	if (s->count > 0) {
		s->count--;
		return 0;
	}
	return __NSEC_MAX;
}

int uk_semaphore_down_try(struct uk_semaphore *s)
{
	if (s->count > 0) {
		s->count--;
		return 1;
	}
	return 0;
}

void uk_semaphore_up(struct uk_semaphore *s)
{
	s->count++;
}

/* ---- the scripted device ---- */

#define RING 128  /* receive buffers the ring holds (256 descriptors, two per buffer) */
#define PADDED 16 /* header room the driver keeps before a frame (nb_encap_rx) */
#define DRIVER_MAX_FRAME 1514

static struct {
	enum uk_netdev_state state;
	int fail_configure, fail_rxq;
	uint16_t mtu;
	unsigned hdr; /* 10: legacy, 12: modern */
	uk_netdev_alloc_rxpkts alloc;
	void *alloc_argp;
	uk_netdev_queue_event_t callback;
	void *cookie;
	struct uk_netbuf *avail[RING];
	unsigned avail_head, avail_len;
	struct {
		struct uk_netbuf *nb;
		uint32_t len;
	} used[RING];
	unsigned used_head, used_len;
	int intr;
	unsigned host_dropped; /* frames the device dropped: no buffer, or too long */
	unsigned lost;         /* buffers the driver kept with a frame it rejected */
	size_t max_offered;    /* longest receive buffer the glue offered */
} dev = { .state = UK_NETDEV_UNPROBED, .hdr = 10 };

static const struct uk_hwaddr mac = { { 0x52, 0x54, 0x00, 0x12, 0x34, 0x56 } };

void uk_netbuf_init_indir(struct uk_netbuf *m, void *buf, size_t buflen, uint16_t headroom,
			  void *priv, uk_netbuf_dtor_t dtor)
{
	memset(m, 0, sizeof(*m));
	m->buf = buf;
	m->buflen = buflen;
	m->data = (uint8_t *)buf + headroom;
	m->priv = priv;
	m->dtor = dtor;
}

/* Asks the glue for up to `count` buffers; returns UNDERRUN if it gave fewer. */
static int fillup(unsigned count)
{
	struct uk_netbuf *pkts[64];

	while (count > 0) {
		uint16_t req = count < 64 ? (uint16_t)count : 64;
		uint16_t got = dev.alloc(dev.alloc_argp, pkts, req);

		for (uint16_t i = 0; i < got; i++) {
			struct uk_netbuf *nb = pkts[i];

			if ((size_t)nb->len > dev.max_offered)
				dev.max_offered = nb->len;
			/* The driver's header goes in front of the buffer. */
			nb->data = (uint8_t *)nb->data - PADDED;
			nb->len += PADDED;
			dev.avail[(dev.avail_head + dev.avail_len++) % RING] = nb;
		}
		if (got < req)
			return UK_NETDEV_STATUS_UNDERRUN;
		count -= got;
	}
	return 0;
}

static unsigned ring_free(void)
{
	return RING - dev.avail_len - dev.used_len;
}

/* The host sends a frame of `n` bytes; with `csum`, it leaves its checksum partial. */
static void host_send(const uint8_t *frame, unsigned n, int csum, uint16_t start, uint16_t offset)
{
	struct uk_netbuf *nb;
	uint8_t *hdr;

	if (dev.avail_len == 0) {
		dev.host_dropped++;
		return;
	}
	nb = dev.avail[dev.avail_head];
	hdr = nb->data;
	if (n > (unsigned)nb->len - PADDED) {
		dev.host_dropped++;
		return;
	}
	dev.avail_head = (dev.avail_head + 1) % RING;
	dev.avail_len--;
	memset(hdr, 0, dev.hdr);
	if (csum) {
		hdr[0] = 1; /* NEEDS_CSUM */
		hdr[6] = (uint8_t)start;
		hdr[7] = (uint8_t)(start >> 8);
		hdr[8] = (uint8_t)offset;
		hdr[9] = (uint8_t)(offset >> 8);
	}
	if (dev.hdr == 12)
		hdr[10] = 1; /* num_buffers */
	memcpy(hdr + PADDED, frame, n);
	dev.used[(dev.used_head + dev.used_len) % RING].nb = nb;
	dev.used[(dev.used_head + dev.used_len++) % RING].len = dev.hdr + n;
	if (dev.intr) {
		dev.intr = 0;
		dev.callback((struct uk_netdev *)&dev, 0, dev.cookie);
	}
}

unsigned int uk_netdev_count(void)
{
	return 1;
}

struct uk_netdev *uk_netdev_get(unsigned int id)
{
	return id == 0 ? (struct uk_netdev *)&dev : NULL;
}

enum uk_netdev_state uk_netdev_state_get(struct uk_netdev *d)
{
	(void)d;
	return dev.state;
}

int uk_netdev_probe(struct uk_netdev *d)
{
	(void)d;
	dev.state = UK_NETDEV_UNCONFIGURED;
	return 0;
}

void uk_netdev_info_get(struct uk_netdev *d, struct uk_netdev_info *info)
{
	(void)d;
	memset(info, 0, sizeof(*info));
	info->max_rx_queues = info->max_tx_queues = 1;
	info->max_mtu = 1500;
	info->nb_encap_rx = info->nb_encap_tx = PADDED;
}

int uk_netdev_configure(struct uk_netdev *d, const struct uk_netdev_conf *conf)
{
	(void)d;
	(void)conf;
	if (dev.fail_configure)
		return dev.fail_configure;
	dev.state = UK_NETDEV_CONFIGURED;
	return 0;
}

int uk_netdev_rxq_configure(struct uk_netdev *d, uint16_t q, uint16_t nb_desc,
			    struct uk_netdev_rxqueue_conf *conf)
{
	(void)d;
	(void)q;
	(void)nb_desc;
	if (dev.fail_rxq)
		return dev.fail_rxq;
	dev.alloc = conf->alloc_rxpkts;
	dev.alloc_argp = conf->alloc_rxpkts_argp;
	dev.callback = conf->callback;
	dev.cookie = conf->callback_cookie;
	fillup(RING);
	return 0;
}

int uk_netdev_txq_configure(struct uk_netdev *d, uint16_t q, uint16_t nb_desc,
			    struct uk_netdev_txqueue_conf *conf)
{
	(void)d;
	(void)q;
	(void)nb_desc;
	(void)conf;
	return 0;
}

int uk_netdev_start(struct uk_netdev *d)
{
	(void)d;
	dev.state = UK_NETDEV_RUNNING;
	return 0;
}

const struct uk_hwaddr *uk_netdev_hwaddr_get(struct uk_netdev *d)
{
	(void)d;
	return &mac;
}

uint16_t uk_netdev_mtu_get(struct uk_netdev *d)
{
	(void)d;
	return dev.mtu;
}

const char *uk_netdev_einfo_get(struct uk_netdev *d, enum uk_netdev_einfo_type einfo)
{
	(void)d;
	return einfo == UK_NETDEV_IPV4_CIDR ? "10.0.0.2/24" : NULL;
}

int uk_netdev_txq_info_get(struct uk_netdev *d, uint16_t q, struct uk_netdev_queue_info *info)
{
	(void)d;
	(void)q;
	memset(info, 0, sizeof(*info));
	info->nb_max = 256;
	return 0;
}

int uk_netdev_rx_one(struct uk_netdev *d, uint16_t q, struct uk_netbuf **pkt)
{
	struct uk_netbuf *nb;
	uint8_t *hdr;
	uint32_t len;
	int status;

	(void)d;
	(void)q;
	*pkt = NULL;
	if (dev.used_len == 0) {
		dev.intr = 1;
		return 0;
	}
	nb = dev.used[dev.used_head].nb;
	len = dev.used[dev.used_head].len;
	dev.used_head = (dev.used_head + 1) % RING;
	dev.used_len--;
	if (len < dev.hdr + 14 || len > dev.hdr + DRIVER_MAX_FRAME) {
		dev.lost++; /* off the ring, never given back */
		return -EINVAL;
	}
	hdr = nb->data;
	nb->flags = 0;
	if (hdr[0] & 1) {
		nb->flags |= UK_NETBUF_F_PARTIAL_CSUM;
		nb->csum_start = (uint16_t)(hdr[6] | hdr[7] << 8);
		nb->csum_offset = (uint16_t)(hdr[8] | hdr[9] << 8);
	}
	nb->data = hdr + PADDED;
	nb->len = (uint16_t)len; /* the header's bytes counted in, as 0.16.3 does */
	*pkt = nb;
	status = UK_NETDEV_STATUS_SUCCESS | fillup(ring_free());
	if (dev.used_len > 0)
		status |= UK_NETDEV_STATUS_MORE;
	else
		dev.intr = 1;
	return status;
}

int uk_netdev_tx_one(struct uk_netdev *d, uint16_t q, struct uk_netbuf *pkt)
{
	(void)d;
	(void)q;
	if (pkt->dtor)
		pkt->dtor(pkt);
	return UK_NETDEV_STATUS_SUCCESS;
}

int uk_netdev_rxq_intr_enable(struct uk_netdev *d, uint16_t q)
{
	(void)d;
	(void)q;
	dev.intr = 1;
	return dev.used_len > 0;
}

/* ---- the checks: the glue driven as rt-unikraft/src/net.rs drives it ---- */

#define SLOTS 256
#define HEADROOM PADDED
#define STRIDE 2112 /* (16 + 2048) rounded up to 64, as the pool lays it out */
#define POSTED 112

static uint8_t *pool;
static int failures;

static void check(int ok, const char *what)
{
	printf("%s %s\n", ok ? "ok" : "FAIL", what);
	if (!ok)
		failures++;
}

static uint8_t *slot_buf(uint16_t slot)
{
	return pool + (size_t)slot * STRIDE + HEADROOM;
}

/* Takes every frame the glue has; returns how many, with the last one in *last. */
static int drain(struct rtuk_net_rx_frame *last, int *dropped)
{
	int frames = 0, status;

	*dropped = 0;
	for (int i = 0; i < 10000; i++) {
		struct rtuk_net_rx_frame out;

		status = rtuk_net_rx(&out);
		if (status < 0)
			break;
		if (status & RTUK_NET_RX_DROPPED)
			(*dropped)++;
		if (status & RTUK_NET_RX_FRAME) {
			frames++;
			*last = out;
			rtuk_net_post_rx(out.slot); /* Rust posts a fresh slot; the same will do */
		}
		if (!(status & RTUK_NET_RX_MORE))
			break;
	}
	return frames;
}

static void frame_of(uint8_t *frame, unsigned n, uint8_t fill)
{
	memset(frame, fill, n);
	if (n >= 14) {
		frame[12] = 0x08; /* ARP: not trimmed by IP length */
		frame[13] = 0x06;
	}
}

static int scenario_receive(void)
{
	struct uk_netdev_info info;
	struct rtuk_net_rx_frame out = { 0 };
	static uint8_t frame[9100];
	uint8_t addr[6];
	uint16_t mtu;
	int frames, dropped;

	dev.mtu = 0x5452; /* 0.16.3 reads an offered MTU from the MAC's bytes */
	check(rtuk_net_open(1, &info, addr, &mtu) == -ENODEV, "device 1 does not exist: -ENODEV");
	check(rtuk_net_open(0, &info, addr, &mtu) == 0, "device 0 opens");
	check(mtu == RTUK_NET_DEFAULT_MTU, "an MTU the driver cannot carry is reported as 1500");
	check(memcmp(addr, mac.addr_bytes, 6) == 0, "the MAC address is the device's");
	check(rtuk_net_open(0, &info, addr, &mtu) == -EBUSY, "opening it again: -EBUSY");
	{
		char text[32];

		check(rtuk_net_einfo(RTUK_NET_EINFO_IPV4_CIDR, text, sizeof(text)) == 11 &&
			      strcmp(text, "10.0.0.2/24") == 0,
		      "the platform's IPv4 address is copied out");
		check(rtuk_net_einfo(RTUK_NET_EINFO_IPV4_GW, text, sizeof(text)) == 0, "no gateway: 0");
		check(rtuk_net_einfo(RTUK_NET_EINFO_IPV4_CIDR, text, 11) == -ENOSPC, "a short buffer: -ENOSPC");
		check(rtuk_net_einfo(99, text, sizeof(text)) == -EINVAL, "an unknown kind: -EINVAL");
	}

	check(rtuk_net_attach(pool, STRIDE, HEADROOM, RTUK_NET_MAX_SLOTS + 1, RTUK_NET_MAX_FRAME) == -EINVAL,
	      "a pool of more than RTUK_NET_MAX_SLOTS buffers is refused");
	check(rtuk_net_attach(pool, STRIDE, HEADROOM, SLOTS, RTUK_NET_MAX_FRAME + 1) == -EINVAL,
	      "receive buffers longer than the driver accepts are refused");
	check(rtuk_net_attach(pool, STRIDE, 8, SLOTS, RTUK_NET_MAX_FRAME) == -EINVAL,
	      "a headroom smaller than the driver's header room is refused");
	check(rtuk_net_attach(pool, STRIDE, HEADROOM, SLOTS, RTUK_NET_MAX_FRAME) == 0, "the pool attaches");
	for (uint16_t s = 0; s < POSTED; s++)
		rtuk_net_post_rx(s);
	check(rtuk_net_start() == 0, "the device starts");
	/* One is held back; the first refill adds it (see rtuk_alloc_rxpkts). */
	check(dev.avail_len == POSTED - 1, "the posted buffers are in the ring, but one");
	check(dev.max_offered == RTUK_NET_MAX_FRAME, "receive buffers are exactly what the driver accepts");

	/* A jumbo-MTU host: 600 frames of 1515 to 2094 bytes, and some of 9014. */
	for (unsigned i = 0; i < 600; i++) {
		unsigned n = i % 10 == 9 ? 9014 : 1515 + i % 580;

		frame_of(frame, n, (uint8_t)i);
		host_send(frame, n, 0, 0, 0);
		drain(&out, &dropped);
	}
	check(dev.host_dropped == 600, "the device dropped all 600 frames longer than a buffer");
	check(dev.lost == 0 && dev.avail_len == POSTED - 1, "and no buffer was lost: all are still in the ring");

	/* The guest still hears: a minimum and a maximum frame. */
	frame_of(frame, 42, 0xa1);
	host_send(frame, 42, 0, 0, 0);
	frames = drain(&out, &dropped);
	check(frames == 1 && dropped == 0, "a 42-byte ARP frame is received after them");
	check(out.len == 52 && out.header == 10, "its length counts the 10-byte legacy header, which is reported");
	check(memcmp(slot_buf(out.slot), frame, 42) == 0, "the frame is at the slot's buffer");
	frame_of(frame, RTUK_NET_MAX_FRAME, 0xa2);
	host_send(frame, RTUK_NET_MAX_FRAME, 0, 0, 0);
	frames = drain(&out, &dropped);
	check(frames == 1 && out.len - out.header == RTUK_NET_MAX_FRAME,
	      "a 1514-byte frame fills a buffer exactly");

	/* A frame the driver rejects (shorter than an Ethernet header). */
	frame_of(frame, 8, 0xa3);
	host_send(frame, 8, 0, 0, 0);
	frames = drain(&out, &dropped);
	check(dev.lost == 1 && frames == 0 && dropped == 1, "a frame the driver rejects is reported as dropped");
	frame_of(frame, 60, 0xa4);
	host_send(frame, 60, 0, 0, 0);
	frames = drain(&out, &dropped);
	check(frames == 1 && dropped == 0, "and the next frame is received");

	/* The host leaves a checksum to the guest. */
	frame_of(frame, 90, 0xa5);
	host_send(frame, 90, 1, 34, 6);
	frames = drain(&out, &dropped);
	check(frames == 1 && (out.flags & RTUK_NET_RX_F_PARTIAL_CSUM) && out.csum_start == 34 &&
		      out.csum_offset == 6,
	      "a partial checksum's start and offset are passed on");

	/* Modern virtio: a 12-byte header. */
	dev.hdr = 12;
	frame_of(frame, 60, 0xa6);
	host_send(frame, 60, 0, 0, 0);
	frames = drain(&out, &dropped);
	check(frames == 1 && out.len == 72 && out.header == 12, "a 12-byte modern header is recognised");
	dev.hdr = 10;
	frame_of(frame, 60, 0xa7);
	host_send(frame, 60, 0, 0, 0);
	frames = drain(&out, &dropped);
	check(frames == 1 && out.header == 10, "and a legacy one again in a reused buffer");

	/* Transmit. */
	{
		uint16_t done[4];

		check(rtuk_net_tx(200, 60) == RTUK_NET_TX_QUEUED, "a frame is queued for sending");
		check(rtuk_net_tx_reclaim(done, 4) == 1 && done[0] == 200, "its slot comes back");
		check(rtuk_net_tx(201, STRIDE) == -EINVAL, "a frame longer than its slot is refused");
	}
	return failures;
}

int main(int argc, char **argv)
{
	const char *scenario = argc > 1 ? argv[1] : "receive";
	struct uk_netdev_info info;
	uint8_t addr[6];
	uint16_t mtu;

	pool = aligned_alloc(64, (size_t)SLOTS * STRIDE);
	memset(pool, 0, (size_t)SLOTS * STRIDE);
	if (strcmp(scenario, "receive") == 0) {
		scenario_receive();
	} else if (strcmp(scenario, "configure-fails") == 0) {
		dev.fail_configure = -EIO;
		check(rtuk_net_open(0, &info, addr, &mtu) == -EIO, "a configure error reaches the opener");
	} else if (strcmp(scenario, "start-fails") == 0) {
		dev.fail_rxq = -ENOMEM;
		check(rtuk_net_open(0, &info, addr, &mtu) == 0, "the device opens");
		check(rtuk_net_attach(pool, STRIDE, HEADROOM, SLOTS, RTUK_NET_MAX_FRAME) == 0, "the pool attaches");
		check(rtuk_net_start() == -ENOMEM, "a receive queue error reaches the starter");
		struct rtuk_net_rx_frame out;
		check(rtuk_net_rx(&out) == -EINVAL, "and nothing is received from a device that did not start");
	} else {
		fprintf(stderr, "unknown scenario %s\n", scenario);
		return 2;
	}
	return failures ? 1 : 0;
}
