/* What unikraft-sys declares by hand, for bindgen to check against. */
#include <uk/plat/time.h>
#include <uk/netdev_core.h>
#include <uk/blkdev_core.h>
