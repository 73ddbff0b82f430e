/*
 * Host stand-in for Unikraft's <uk/netdev.h>: the types, constants and functions the glue
 * uses, with Unikraft 0.16.3's signatures. netdev_test.c implements the functions as a
 * scripted virtio-net device (see there).
 */
#ifndef MOCK_UK_NETDEV_H
#define MOCK_UK_NETDEV_H
#include <stdint.h>
#include <uk/netbuf.h>

#define __unused __attribute__((unused))

#define UK_NETDEV_HWADDR_LEN 6
#define UK_ETH_HDR_UNTAGGED_LEN 14
#define UK_ETH_PAYLOAD_MAXLEN 1500

#define UK_NETDEV_STATUS_SUCCESS 0x1
#define UK_NETDEV_STATUS_MORE 0x2
#define UK_NETDEV_STATUS_UNDERRUN 0x4

struct uk_alloc;
struct uk_netdev;

enum uk_netdev_state {
	UK_NETDEV_UNREGISTERED = 0,
	UK_NETDEV_UNPROBED,
	UK_NETDEV_UNCONFIGURED,
	UK_NETDEV_CONFIGURED,
	UK_NETDEV_RUNNING,
};

struct uk_hwaddr {
	uint8_t addr_bytes[UK_NETDEV_HWADDR_LEN];
};

struct uk_netdev_info {
	uint16_t max_rx_queues;
	uint16_t max_tx_queues;
	int in_queue_pairs;
	uint16_t max_mtu;
	uint16_t nb_encap_tx;
	uint16_t nb_encap_rx;
	uint16_t ioalign;
	uint32_t features;
};

enum uk_netdev_einfo_type {
	UK_NETDEV_IPV4_ADDR = 0,
	UK_NETDEV_IPV4_MASK,
	UK_NETDEV_IPV4_CIDR,
	UK_NETDEV_IPV4_GW,
	UK_NETDEV_IPV4_DNS0,
};

struct uk_netdev_conf {
	uint16_t nb_rx_queues;
	uint16_t nb_tx_queues;
};

struct uk_netdev_queue_info {
	uint16_t nb_max;
	uint16_t nb_min;
	uint16_t nb_align;
	int nb_is_power_of_two;
};

typedef void (*uk_netdev_queue_event_t)(struct uk_netdev *dev, uint16_t queue_id, void *argp);
typedef uint16_t (*uk_netdev_alloc_rxpkts)(void *argp, struct uk_netbuf *pkts[], uint16_t count);

struct uk_netdev_rxqueue_conf {
	uk_netdev_queue_event_t callback;
	void *callback_cookie;
	struct uk_alloc *a;
	uk_netdev_alloc_rxpkts alloc_rxpkts;
	void *alloc_rxpkts_argp;
};

struct uk_netdev_txqueue_conf {
	struct uk_alloc *a;
};

unsigned int uk_netdev_count(void);
struct uk_netdev *uk_netdev_get(unsigned int id);
enum uk_netdev_state uk_netdev_state_get(struct uk_netdev *dev);
int uk_netdev_probe(struct uk_netdev *dev);
void uk_netdev_info_get(struct uk_netdev *dev, struct uk_netdev_info *dev_info);
int uk_netdev_configure(struct uk_netdev *dev, const struct uk_netdev_conf *dev_conf);
int uk_netdev_rxq_configure(struct uk_netdev *dev, uint16_t queue_id, uint16_t nb_desc,
			    struct uk_netdev_rxqueue_conf *rx_conf);
int uk_netdev_txq_configure(struct uk_netdev *dev, uint16_t queue_id, uint16_t nb_desc,
			    struct uk_netdev_txqueue_conf *tx_conf);
int uk_netdev_start(struct uk_netdev *dev);
const struct uk_hwaddr *uk_netdev_hwaddr_get(struct uk_netdev *dev);
uint16_t uk_netdev_mtu_get(struct uk_netdev *dev);
const char *uk_netdev_einfo_get(struct uk_netdev *dev, enum uk_netdev_einfo_type einfo);
int uk_netdev_txq_info_get(struct uk_netdev *dev, uint16_t queue_id,
			   struct uk_netdev_queue_info *queue_info);
int uk_netdev_rx_one(struct uk_netdev *dev, uint16_t queue_id, struct uk_netbuf **pkt);
int uk_netdev_tx_one(struct uk_netdev *dev, uint16_t queue_id, struct uk_netbuf *pkt);
int uk_netdev_rxq_intr_enable(struct uk_netdev *dev, uint16_t queue_id);
#endif
