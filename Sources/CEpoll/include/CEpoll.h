/*
 * CEpoll: the system calls Swift's Glibc module does not expose.
 *
 * Glibc's module map covers neither <sys/epoll.h> nor <sys/eventfd.h>, and it is built without
 * _GNU_SOURCE, so splice, pipe2, accept4 and F_SETPIPE_SZ are invisible to Swift. The two headers
 * are included here textually; the GNU calls are wrapped in shim.c, which alone is compiled with
 * _GNU_SOURCE (defining it here would break Swift's view of bind/connect/accept).
 *
 * Every cepoll_* wrapper returns its result, or -errno on failure, so errno is read inside C.
 */
#ifndef CEPOLL_H
#define CEPOLL_H

#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <netinet/in.h>
#include <stdint.h>

/* Typed constants (an anonymous C enum would import as Int). Checked against the macros in shim.c. */
static const unsigned int CEPOLL_SPLICE_F_MOVE = 1;
static const unsigned int CEPOLL_SPLICE_F_NONBLOCK = 2;
static const unsigned int CEPOLL_EPOLLIN = 0x001;
static const unsigned int CEPOLL_EPOLLOUT = 0x004;
static const unsigned int CEPOLL_EPOLLERR = 0x008;
static const unsigned int CEPOLL_EPOLLHUP = 0x010;
static const unsigned int CEPOLL_EPOLLRDHUP = 0x2000;
static const unsigned int CEPOLL_EPOLLEXCLUSIVE = 1u << 28;
static const unsigned int CEPOLL_EPOLLET = 1u << 31;

/* epoll: the packed struct epoll_event is filled and read in C, so Swift never touches its layout. */
int cepoll_create(void);
int cepoll_ctl(int epfd, int op, int fd, unsigned int events, uint64_t token);
/* Waits for events; writes up to max (events, token) pairs into the two arrays. */
int cepoll_wait(int epfd, uint32_t *events, uint64_t *tokens, int max, int timeout_ms);
static const int CEPOLL_CTL_ADD = 1;
static const int CEPOLL_CTL_DEL = 2;
static const int CEPOLL_CTL_MOD = 3;

/* eventfd: one per worker, to wake it from another thread. */
int cepoll_eventfd(void);
int cepoll_eventfd_signal(int fd);
int cepoll_eventfd_drain(int fd);

/* Zero-copy relay. */
long cepoll_splice(int fd_in, int fd_out, unsigned long len, unsigned int flags);
int cepoll_pipe2(int fds[2]);
int cepoll_set_pipe_size(int fd, int size);
int cepoll_get_pipe_size(int fd);

/* Sockets. */
int cepoll_accept4(int fd, struct sockaddr_storage *addr, socklen_t *len);
int cepoll_socket(int family, int type);
int cepoll_setsockopt_int(int fd, int level, int name, int value);
int cepoll_getsockopt_int(int fd, int level, int name, int *value);
int cepoll_connect(int fd, const struct sockaddr_storage *addr, socklen_t len);
int cepoll_bind(int fd, const struct sockaddr_storage *addr, socklen_t len);
int cepoll_listen(int fd, int backlog);
int cepoll_getsockname(int fd, struct sockaddr_storage *addr, socklen_t *len);
int cepoll_shutdown(int fd, int how);
int cepoll_close(int fd);
long cepoll_read(int fd, void *buf, unsigned long len);
long cepoll_write(int fd, const void *buf, unsigned long len);   /* send(MSG_NOSIGNAL): sockets */
long cepoll_write_pipe(int fd, const void *buf, unsigned long len); /* write(): pipes */
/* Abortive close: SO_LINGER 0 then close, so the peer sees RST (HAProxy ends checks this way). */
int cepoll_close_rst(int fd);
/* Fills the address for an IPv4/IPv6 literal; returns the sockaddr length, or -EINVAL. */
int cepoll_make_addr(const char *ip, int port, struct sockaddr_storage *out);
/* Formats an address as ip and port; returns 0 or -EINVAL. */
int cepoll_format_addr(const struct sockaddr_storage *addr, char *ip, int iplen, int *port);

/* Listener hand-over on reload: a SOCK_SEQPACKET unix socket in the abstract namespace (no file to
 * clean up), and one listening socket passed per message as SCM_RIGHTS ancillary data (the CMSG_*
 * macros are not importable into Swift). */
int cepoll_handover_listen(const char *name);
int cepoll_handover_connect(const char *name);
int cepoll_handover_accept(int fd);
/* The peer's pid and uid (SO_PEERCRED). */
int cepoll_peer_credentials(int fd, int *pid, int *uid);
/* Sends one message of len bytes (len >= 1), carrying fd unless fd < 0. */
long cepoll_send_msg(int sock, const void *data, unsigned long len, int fd);
/* Receives one message into buf: returns its length (0 at end of stream) or -errno; *fd is the
 * descriptor it carried (close-on-exec) or -1. */
long cepoll_recv_msg(int sock, void *buf, unsigned long cap, int *fd);

/* Threads and process limits. */
int cepoll_set_thread_name(const char *name);
long cepoll_thread_cpu_ns(void);
int cepoll_raise_nofile(void);
uint64_t cepoll_monotonic_ms(void);
uint64_t cepoll_monotonic_us(void);
int cepoll_ignore_sigpipe(void);

#endif
