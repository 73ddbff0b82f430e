/*
 * Host stand-in for Unikraft's <uk/netbuf.h>: the fields and the one function the glue
 * uses, with Unikraft 0.16.3's types. netdev_test.c implements uk_netbuf_init_indir.
 */
#ifndef MOCK_UK_NETBUF_H
#define MOCK_UK_NETBUF_H
#include <stddef.h>
#include <stdint.h>

#define UK_NETBUF_F_DATA_VALID (1 << 0)
#define UK_NETBUF_F_PARTIAL_CSUM (1 << 1)

struct uk_netbuf;
typedef void (*uk_netbuf_dtor_t)(struct uk_netbuf *);

struct uk_netbuf {
	uint8_t flags;
	void *data;
	uint16_t len;
	void *priv;
	void *buf;
	size_t buflen;
	uint16_t csum_start;
	uint16_t csum_offset;
	uk_netbuf_dtor_t dtor;
};

void uk_netbuf_init_indir(struct uk_netbuf *m, void *buf, size_t buflen, uint16_t headroom,
			  void *priv, uk_netbuf_dtor_t dtor);
#endif
