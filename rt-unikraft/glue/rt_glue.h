/*
 * The C ABI between rt-unikraft's Rust (src/glue.rs declares the same items) and its C
 * glue (netdev.c, blkdev.c, socket.c, hosted.c and the no_*.inc stand-ins). Everything that
 * crosses is here: function prototypes, the one struct, and every number either side
 * interprets. A test (src/glue.rs, `the_rust_declarations_match_rt_glue_h`) compiles
 * this header with the host's C compiler and checks each Rust declaration against it:
 * constant values, struct size and field offsets, and function signatures. Change both
 * sides together.
 *
 * Errors are negative errno values (Linux numbering, which musl, Unikraft and the Rust
 * `libc` crate share): -ENODEV for "no such device", -EBUSY for "in use / full", ...
 *
 * Only <stdint.h> and <stddef.h>: the header must compile on the host too (the test,
 * and the hosted-musl harness), without Unikraft's headers. The two Unikraft structs
 * that cross are passed by pointer and declared (and layout-checked) in unikraft-sys.
 */
#ifndef RT_GLUE_H
#define RT_GLUE_H

#include <stddef.h>
#include <stdint.h>

struct uk_netdev_info;
struct uk_blkdev_cap;

/* ---- Device events (netdev.c; hosted.c has stand-ins) ---- */

/*
 * One wake-up per waiter: the thread running shared-core's executor and the socket
 * layer's network thread each sleep on their own, so one never uses up the other's.
 * A wait returns at the first wake-up since its last return (several count as one), or
 * after `timeout_ns` (0: at once).
 */
void rtuk_wait_executor(uint64_t timeout_ns);
void rtuk_wait_net(uint64_t timeout_ns);
/* Wakes every waiter (a network event: whoever drives the NIC looks). Safe from
 * interrupt context. */
void rtuk_kick(void);
/* Wakes the executor only (a block completion). Safe from interrupt context. */
void rtuk_kick_executor(void);

/* ---- Network (netdev.c, no_netdev.inc) ---- */

/* Most pool slots the glue can lend (slot numbers are uint16_t; one netbuf per slot). */
#define RTUK_NET_MAX_SLOTS 4096
/*
 * The largest frame (Ethernet header included, no FCS) Unikraft 0.16.3's virtio-net
 * driver accepts. It rejects a longer one after taking it from the ring and never gives
 * its buffer back, so receive buffers must not be longer than this: a longer frame then
 * does not fit, and the VMM drops it before the guest sees it.
 */
#define RTUK_NET_MAX_FRAME 1514
/* The MTU reported when the driver reports none, or more than it can carry. */
#define RTUK_NET_DEFAULT_MTU 1500
/* A driver-reported MTU below this is not believed (IPv4's minimum reassembly size). */
#define RTUK_NET_MIN_MTU 576

/* rtuk_net_rx status bits (a non-negative return value). */
#define RTUK_NET_RX_FRAME 0x1   /* *out holds a received frame */
#define RTUK_NET_RX_MORE 0x2    /* more frames may be waiting: call again */
#define RTUK_NET_RX_DROPPED 0x4 /* the driver discarded a frame, and its buffer with it */

/* rtuk_net_tx results (or a negative errno). */
#define RTUK_NET_TX_FULL 0   /* the ring is full: try again later */
#define RTUK_NET_TX_QUEUED 1 /* taken; the slot comes back through rtuk_net_tx_reclaim */

/* struct rtuk_net_rx_frame flags. */
#define RTUK_NET_RX_F_PARTIAL_CSUM 0x1 /* the sender left its checksum to complete */

/* One received frame, as the driver reported it (rt-unikraft/src/frame.rs interprets it). */
struct rtuk_net_rx_frame {
	/* The pool slot; the frame starts at the slot's buffer (after its headroom). */
	uint16_t slot;
	/* The length the driver reported, which counts the virtio-net header too. */
	uint16_t len;
	/* How many bytes of `len` are that header (10, or 12 on modern virtio). */
	uint16_t header;
	/* RTUK_NET_RX_F_* bits. */
	uint16_t flags;
	/* With RTUK_NET_RX_F_PARTIAL_CSUM: where the summing starts, from the frame's
	 * start, and where the checksum field is, from csum_start. */
	uint16_t csum_start;
	uint16_t csum_offset;
};

int rtuk_net_count(void);
/* Opens device `index`: probes and configures it and its transmit queue. */
int rtuk_net_open(unsigned index, struct uk_netdev_info *info, uint8_t mac_out[6],
		  uint16_t *mtu_out);
/* Gives the glue the pool: slot i's headroom at base + i * stride, receive buffers of
 * `rx_len` bytes (at most RTUK_NET_MAX_FRAME) after `headroom`. */
int rtuk_net_attach(uint8_t *base, size_t stride, uint16_t headroom, uint16_t slots,
		    uint16_t rx_len);
int rtuk_net_start(void);
int rtuk_net_tx_frames(void);
int rtuk_net_post_rx(uint16_t slot);
int rtuk_net_rx(struct rtuk_net_rx_frame *out);
int rtuk_net_tx(uint16_t slot, uint16_t len);
int rtuk_net_tx_reclaim(uint16_t *out, int max);
/* The device was dropped. Unikraft 0.16.3 cannot stop a network device, so it keeps
 * writing into the receive buffers it holds: the caller must keep the pool's memory for
 * good. Every later call fails, and a later rtuk_net_open gets -ESHUTDOWN. */
int rtuk_net_close(void);

/* rtuk_net_einfo kinds: the IPv4 settings the platform gave the open device (Unikraft's
 * `netdev.ip=<cidr>:<gw>:<dns>` kernel parameter, as urunc passes it). */
#define RTUK_NET_EINFO_IPV4_CIDR 0
#define RTUK_NET_EINFO_IPV4_GW 1
#define RTUK_NET_EINFO_IPV4_DNS0 2
/* Copies the open device's einfo `kind` into buf (NUL-terminated). Returns its length,
 * 0 when the platform gave none, -ENOSPC when it does not fit, -ENODEV with no open
 * device, -EINVAL for an unknown kind. */
int rtuk_net_einfo(int kind, char *buf, size_t len);

/* ---- Block (blkdev.c, no_blkdev.inc) ---- */

/* rtuk_blk_submit operations (Unikraft's enum uk_blkreq_op values). */
#define RTUK_BLK_OP_READ 0
#define RTUK_BLK_OP_WRITE 1
#define RTUK_BLK_OP_FLUSH 4
/* rtuk_blk_poll results (or a negative errno). */
#define RTUK_BLK_RUNNING 0
#define RTUK_BLK_DONE 1

/* Opens device `index`, or opens again the one a rtuk_blk_close gave back (it stays
 * started: virtio-blk cannot be restarted after a stop in 0.16.3). -EBUSY while open. */
int rtuk_blk_open(unsigned index, struct uk_blkdev_cap *out);
int rtuk_blk_submit(int op, uint64_t sector, uint64_t nb, void *buf);
int rtuk_blk_poll(int handle);
/* Gives the device back. Requests still running are abandoned: their handles are freed
 * once the device finishes them, and their buffers must stay valid until then (the
 * caller keeps them for good). */
int rtuk_blk_close(void);

/* ---- Sockets (socket.c calls these Rust functions; rt-unikraft/src/socket/) ---- */

/* One buffer of a message: struct iovec's layout (socket.c checks it). */
struct rtuk_iovec {
	void *base;
	size_t len;
};

/*
 * posix-socket's AF_INET ops, flattened. `id` is the socket's number in the Rust table
 * (the socket file's data); addresses are struct sockaddr bytes with their length
 * (socklen_t, 32 bits); results are >= 0 or -errno, and never block (-EAGAIN instead).
 */
int64_t rtuk_sock_create(int type, int protocol); /* the new id (> 0), or -errno */
int64_t rtuk_sock_accept(uint64_t id, void *addr, uint32_t *addr_len, int flags);
int rtuk_sock_bind(uint64_t id, const void *addr, uint32_t addr_len);
int rtuk_sock_connect(uint64_t id, const void *addr, uint32_t addr_len);
int rtuk_sock_listen(uint64_t id, int backlog);
int rtuk_sock_shutdown(uint64_t id, int how);
/* getsockname (peer 0) or getpeername (peer 1). */
int rtuk_sock_getname(uint64_t id, int peer, void *addr, uint32_t *addr_len);
int rtuk_sock_getsockopt(uint64_t id, int level, int name, void *val, uint32_t *len);
int rtuk_sock_setsockopt(uint64_t id, int level, int name, const void *val, uint32_t len);
/* from/from_len may be NULL; *msg_flags gets MSG_TRUNC for a cut datagram. */
int64_t rtuk_sock_recv(uint64_t id, const struct rtuk_iovec *iov, int iovcnt, int flags, void *from,
		       uint32_t *from_len, int *msg_flags);
int64_t rtuk_sock_send(uint64_t id, const struct rtuk_iovec *iov, int iovcnt, int flags, const void *to,
		       uint32_t to_len);
int rtuk_sock_ioctl(uint64_t id, int request, void *arg);
/* Once per new socket file: `file` is where the socket's events go from now on. */
void rtuk_sock_poll(uint64_t id, const void *file);
int rtuk_sock_close(uint64_t id);

/* The file's poll events (EPOLL* bits), from thread context only (socket.c). */
void rtuk_sock_event_set(const void *file, uint32_t events);
void rtuk_sock_event_clear(const void *file, uint32_t events);
void rtuk_sock_event_assign(const void *file, uint32_t events);

#endif /* RT_GLUE_H */
