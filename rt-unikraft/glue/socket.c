/*
 * rt-unikraft's AF_INET socket driver for Unikraft's posix-socket (`sockets = true` in an
 * app's [package.metadata.unikraft]). Compiled by Unikraft's build with the rest of the
 * glue; the socket layer itself is Rust (rt-unikraft/src/socket/), over shared-core's
 * smoltcp stack. This file only:
 *
 *   - registers the driver for AF_INET (POSIX_SOCKET_FAMILY_REGISTER; the object is
 *     always linked, as an app source, so the registration cannot be dropped);
 *   - turns each posix-socket op into one call of a flat Rust function (rtuk_sock_*,
 *     declared in rt_glue.h): socket data is the Rust socket's id, addresses travel as
 *     bytes with their length, message buffers as struct rtuk_iovec arrays;
 *   - wraps posix-socket's static inline event helpers so Rust can raise and clear a
 *     socket file's poll events (rtuk_sock_event_*);
 *   - fixes the result of a blocking connect() (__wrap_uk_syscall_r_connect, below).
 *
 * Every op is non-blocking and returns -errno: posix-socket does the blocking, by waiting
 * on the file's poll queue for EPOLLIN or EPOLLOUT whenever an op says -EAGAIN on a
 * blocking file, so the Rust side keeps each file's events exact.
 *
 * Without CONFIG_LIBPOSIX_SOCKET only the event stand-ins remain (Rust refers to them).
 */
#include <stdint.h>
#include <stddef.h>
#include <errno.h>
#include <uk/config.h>

#include "rt_glue.h"

#if CONFIG_LIBPOSIX_SOCKET
#include <stdio.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <unistd.h>
#include <uk/socket_driver.h>

/*
 * `localhost` for musl's resolver, in /etc/hosts unless the app's filesystem has one.
 * Called by the glue's main before the app starts (main.c's weak declaration): std
 * resolves "localhost:port" before it creates any socket, so the socket layer writing the
 * file when it starts (on the first socket()) came too late, and bind("localhost:20000")
 * failed with "failed to lookup address information" (serde_json's tests).
 */
void rt_unikraft_sockets_boot(void)
{
	FILE *hosts;

	if (access("/etc/hosts", F_OK) == 0)
		return;
	mkdir("/etc", 0755);
	hosts = fopen("/etc/hosts", "w");
	if (!hosts)
		return;
	fputs("127.0.0.1\tlocalhost\n", hosts);
	fclose(hosts);
}

/* struct rtuk_iovec is struct iovec under another name (the header stays libc-free). */
_Static_assert(sizeof(struct rtuk_iovec) == sizeof(struct iovec), "rtuk_iovec size");
_Static_assert(offsetof(struct rtuk_iovec, base) == offsetof(struct iovec, iov_base), "rtuk_iovec.base");
_Static_assert(offsetof(struct rtuk_iovec, len) == offsetof(struct iovec, iov_len), "rtuk_iovec.len");
_Static_assert(sizeof(socklen_t) == sizeof(uint32_t), "socklen_t is 32 bits");

static uint64_t sock_id(posix_sock *file)
{
	return (uint64_t)(uintptr_t)posix_sock_get_data(file);
}

/* An id (> 0) as socket data, or the error as an error pointer. */
static void *as_sock_data(int64_t id)
{
	if (id < 0)
		return ERR2PTR((int)id);
	return (void *)(uintptr_t)id;
}

static int rtuk_af_inet_init(struct posix_socket_driver *d __unused)
{
	/* Devices are not probed yet: the stack starts at the first socket(). */
	return 0;
}

static void *rtuk_af_inet_create(struct posix_socket_driver *d __unused, int family __unused, int type,
				 int protocol)
{
	return as_sock_data(rtuk_sock_create(type, protocol));
}

static void *rtuk_af_inet_accept4(posix_sock *file, struct sockaddr *restrict addr,
				  socklen_t *restrict addr_len, int flags)
{
	return as_sock_data(rtuk_sock_accept(sock_id(file), addr, addr_len, flags));
}

static int rtuk_af_inet_bind(posix_sock *file, const struct sockaddr *addr, socklen_t addr_len)
{
	return rtuk_sock_bind(sock_id(file), addr, addr_len);
}

static int rtuk_af_inet_shutdown(posix_sock *file, int how)
{
	return rtuk_sock_shutdown(sock_id(file), how);
}

static int rtuk_af_inet_getpeername(posix_sock *file, struct sockaddr *restrict addr,
				    socklen_t *restrict addr_len)
{
	return rtuk_sock_getname(sock_id(file), 1, addr, addr_len);
}

static int rtuk_af_inet_getsockname(posix_sock *file, struct sockaddr *restrict addr,
				    socklen_t *restrict addr_len)
{
	return rtuk_sock_getname(sock_id(file), 0, addr, addr_len);
}

static int rtuk_af_inet_getsockopt(posix_sock *file, int level, int optname, void *restrict optval,
				   socklen_t *restrict optlen)
{
	return rtuk_sock_getsockopt(sock_id(file), level, optname, optval, optlen);
}

static int rtuk_af_inet_setsockopt(posix_sock *file, int level, int optname, const void *optval,
				   socklen_t optlen)
{
	return rtuk_sock_setsockopt(sock_id(file), level, optname, optval, optlen);
}

static int rtuk_af_inet_connect(posix_sock *file, const struct sockaddr *addr, socklen_t addr_len)
{
	return rtuk_sock_connect(sock_id(file), addr, addr_len);
}

static int rtuk_af_inet_listen(posix_sock *file, int backlog)
{
	return rtuk_sock_listen(sock_id(file), backlog);
}

static ssize_t rtuk_af_inet_recvfrom(posix_sock *file, void *restrict buf, size_t len, int flags,
				     struct sockaddr *from, socklen_t *restrict fromlen)
{
	struct rtuk_iovec iov = { .base = buf, .len = len };
	int msg_flags = 0;

	return rtuk_sock_recv(sock_id(file), &iov, 1, flags, from, fromlen, &msg_flags);
}

static ssize_t rtuk_af_inet_recvmsg(posix_sock *file, struct msghdr *msg, int flags)
{
	socklen_t namelen = msg->msg_name ? msg->msg_namelen : 0;
	int msg_flags = 0;
	ssize_t ret;

	if (msg->msg_iovlen < 0)
		return -EINVAL;
	ret = rtuk_sock_recv(sock_id(file), (const struct rtuk_iovec *)msg->msg_iov, (int)msg->msg_iovlen,
			     flags, msg->msg_name, msg->msg_name ? &namelen : NULL, &msg_flags);
	if (ret >= 0) {
		msg->msg_namelen = namelen;
		msg->msg_controllen = 0;
		msg->msg_flags = msg_flags;
	}
	return ret;
}

static ssize_t rtuk_af_inet_sendmsg(posix_sock *file, const struct msghdr *msg, int flags)
{
	if (msg->msg_iovlen < 0)
		return -EINVAL;
	return rtuk_sock_send(sock_id(file), (const struct rtuk_iovec *)msg->msg_iov, (int)msg->msg_iovlen,
			      flags, msg->msg_name, msg->msg_name ? msg->msg_namelen : 0);
}

static ssize_t rtuk_af_inet_sendto(posix_sock *file, const void *buf, size_t len, int flags,
				   const struct sockaddr *dest_addr, socklen_t addrlen)
{
	struct rtuk_iovec iov = { .base = (void *)buf, .len = len };

	return rtuk_sock_send(sock_id(file), &iov, 1, flags, dest_addr, dest_addr ? addrlen : 0);
}

static int rtuk_af_inet_socketpair(struct posix_socket_driver *d __unused, int family __unused,
				   int type __unused, int protocol __unused, void *sockvec[2] __unused)
{
	return -EOPNOTSUPP; /* as Linux for AF_INET */
}

static int rtuk_af_inet_close(posix_sock *file)
{
	return rtuk_sock_close(sock_id(file));
}

static int rtuk_af_inet_ioctl(posix_sock *file, int request, void *argp)
{
	return rtuk_sock_ioctl(sock_id(file), request, argp);
}

static void rtuk_af_inet_poll(posix_sock *file)
{
	/* Once per new socket file: Rust keeps the file to raise its events from now on. */
	rtuk_sock_poll(sock_id(file), file);
}

static struct posix_socket_ops rtuk_af_inet_ops = {
	.init = rtuk_af_inet_init,
	.create = rtuk_af_inet_create,
	.accept4 = rtuk_af_inet_accept4,
	.bind = rtuk_af_inet_bind,
	.shutdown = rtuk_af_inet_shutdown,
	.getpeername = rtuk_af_inet_getpeername,
	.getsockname = rtuk_af_inet_getsockname,
	.getsockopt = rtuk_af_inet_getsockopt,
	.setsockopt = rtuk_af_inet_setsockopt,
	.connect = rtuk_af_inet_connect,
	.listen = rtuk_af_inet_listen,
	.recvfrom = rtuk_af_inet_recvfrom,
	.recvmsg = rtuk_af_inet_recvmsg,
	.sendmsg = rtuk_af_inet_sendmsg,
	.sendto = rtuk_af_inet_sendto,
	.socketpair = rtuk_af_inet_socketpair,
	/* read/write: posix-socket falls back to recvmsg/sendmsg. */
	.close = rtuk_af_inet_close,
	.ioctl = rtuk_af_inet_ioctl,
	.poll = rtuk_af_inet_poll,
};

POSIX_SOCKET_FAMILY_REGISTER(AF_INET, &rtuk_af_inet_ops);

void rtuk_sock_event_set(const void *file, uint32_t events)
{
	posix_sock_event_set((posix_sock *)file, events);
}

void rtuk_sock_event_clear(const void *file, uint32_t events)
{
	posix_sock_event_clear((posix_sock *)file, events);
}

void rtuk_sock_event_assign(const void *file, uint32_t events)
{
	posix_sock_event_assign((posix_sock *)file, events);
}

/*
 * A blocking connect() in posix-socket 0.16.3 waits for EPOLLOUT, then returns what
 * getsockopt(SO_ERROR) stored into its result variable: a positive errno (ECONNREFUSED
 * is 111), which musl takes for success. SO_ERROR must stay positive (non-blocking
 * callers such as std's connect_timeout, mio and tokio read it as Linux gives it), so the
 * result is fixed here instead: connect() never succeeds with a positive value. The link
 * wraps the symbol (-Wl,--wrap=uk_syscall_r_connect, generated for `sockets = true`);
 * musl and the syscall table call it from other objects, which is what --wrap redirects.
 */
long __real_uk_syscall_r_connect(long sock, long addr, long addr_len);

long __wrap_uk_syscall_r_connect(long sock, long addr, long addr_len)
{
	long ret = __real_uk_syscall_r_connect(sock, addr, addr_len);

	return ret > 0 ? -ret : ret;
}

#else /* !CONFIG_LIBPOSIX_SOCKET */
#include "no_socket.inc"
#endif /* CONFIG_LIBPOSIX_SOCKET */
