/* Thin wrappers over the GNU/Linux calls Swift cannot see; each returns the result or -errno. */
#ifndef _GNU_SOURCE
#error "CEpoll must be compiled with _GNU_SOURCE (Package.swift cSettings)"
#endif
#include "CEpoll.h"
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <signal.h>
#include <stddef.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/ioctl.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

_Static_assert(CEPOLL_SPLICE_F_MOVE == SPLICE_F_MOVE, "SPLICE_F_MOVE");
_Static_assert(CEPOLL_SPLICE_F_NONBLOCK == SPLICE_F_NONBLOCK, "SPLICE_F_NONBLOCK");
_Static_assert(CEPOLL_EPOLLIN == EPOLLIN, "EPOLLIN");
_Static_assert(CEPOLL_EPOLLOUT == EPOLLOUT, "EPOLLOUT");
_Static_assert(CEPOLL_EPOLLERR == EPOLLERR, "EPOLLERR");
_Static_assert(CEPOLL_EPOLLHUP == EPOLLHUP, "EPOLLHUP");
_Static_assert(CEPOLL_EPOLLRDHUP == EPOLLRDHUP, "EPOLLRDHUP");
_Static_assert(CEPOLL_EPOLLEXCLUSIVE == EPOLLEXCLUSIVE, "EPOLLEXCLUSIVE");
_Static_assert(CEPOLL_EPOLLET == (unsigned int)EPOLLET, "EPOLLET");
_Static_assert(CEPOLL_CTL_ADD == EPOLL_CTL_ADD && CEPOLL_CTL_DEL == EPOLL_CTL_DEL && CEPOLL_CTL_MOD == EPOLL_CTL_MOD, "ctl");

#define RET(x) do { long r_ = (long)(x); return r_ < 0 ? -errno : r_; } while (0)

int cepoll_create(void) { RET(epoll_create1(EPOLL_CLOEXEC)); }

int cepoll_ctl(int epfd, int op, int fd, unsigned int events, uint64_t token) {
    struct epoll_event ev;
    memset(&ev, 0, sizeof ev);
    ev.events = events;
    ev.data.u64 = token;
    RET(epoll_ctl(epfd, op, fd, &ev));
}

int cepoll_wait(int epfd, uint32_t *events, uint64_t *tokens, int max, int timeout_ms) {
    struct epoll_event evs[256];
    if (max > 256) max = 256;
    int n = epoll_wait(epfd, evs, max, timeout_ms);
    if (n < 0) return -errno;
    for (int i = 0; i < n; i++) {
        events[i] = evs[i].events;
        tokens[i] = evs[i].data.u64;
    }
    return n;
}

int cepoll_eventfd(void) { RET(eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC)); }

int cepoll_eventfd_signal(int fd) {
    uint64_t one = 1;
    /* EAGAIN means the counter is saturated, i.e. a wake-up is already pending: fine. */
    if (write(fd, &one, sizeof one) < 0 && errno != EAGAIN) return -errno;
    return 0;
}

int cepoll_eventfd_drain(int fd) {
    uint64_t v;
    if (read(fd, &v, sizeof v) < 0 && errno != EAGAIN) return -errno;
    return 0;
}

long cepoll_splice(int fd_in, int fd_out, unsigned long len, unsigned int flags) {
    RET(splice(fd_in, NULL, fd_out, NULL, len, flags));
}

int cepoll_pipe2(int fds[2]) { RET(pipe2(fds, O_NONBLOCK | O_CLOEXEC)); }
int cepoll_set_pipe_size(int fd, int size) { RET(fcntl(fd, F_SETPIPE_SZ, size)); }
int cepoll_get_pipe_size(int fd) { RET(fcntl(fd, F_GETPIPE_SZ)); }

int cepoll_accept4(int fd, struct sockaddr_storage *addr, socklen_t *len) {
    RET(accept4(fd, (struct sockaddr *)addr, len, SOCK_NONBLOCK | SOCK_CLOEXEC));
}

int cepoll_socket(int family, int type) { RET(socket(family, type | SOCK_NONBLOCK | SOCK_CLOEXEC, 0)); }

int cepoll_setsockopt_int(int fd, int level, int name, int value) {
    RET(setsockopt(fd, level, name, &value, sizeof value));
}

int cepoll_getsockopt_int(int fd, int level, int name, int *value) {
    socklen_t len = sizeof *value;
    RET(getsockopt(fd, level, name, value, &len));
}

int cepoll_connect(int fd, const struct sockaddr_storage *addr, socklen_t len) {
    RET(connect(fd, (const struct sockaddr *)addr, len));
}

int cepoll_bind(int fd, const struct sockaddr_storage *addr, socklen_t len) {
    RET(bind(fd, (const struct sockaddr *)addr, len));
}

int cepoll_listen(int fd, int backlog) { RET(listen(fd, backlog)); }

int cepoll_getsockname(int fd, struct sockaddr_storage *addr, socklen_t *len) {
    RET(getsockname(fd, (struct sockaddr *)addr, len));
}

int cepoll_shutdown(int fd, int how) { RET(shutdown(fd, how)); }

int cepoll_close(int fd) {
    /* On Linux the fd is released even when close reports EINTR: never retry. */
    if (close(fd) < 0 && errno != EINTR) return -errno;
    return 0;
}

long cepoll_read(int fd, void *buf, unsigned long len) { RET(read(fd, buf, len)); }
long cepoll_write(int fd, const void *buf, unsigned long len) { RET(send(fd, buf, len, MSG_NOSIGNAL)); }
long cepoll_write_pipe(int fd, const void *buf, unsigned long len) { RET(write(fd, buf, len)); }

int cepoll_close_rst(int fd) {
    struct linger l = {1, 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &l, sizeof l);
    return cepoll_close(fd);
}

static socklen_t handover_address(const char *name, struct sockaddr_un *a) {
    memset(a, 0, sizeof *a);
    a->sun_family = AF_UNIX;
    size_t n = strnlen(name, sizeof a->sun_path - 2);
    memcpy(a->sun_path + 1, name, n); /* sun_path[0] = 0: the abstract namespace */
    return (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + n);
}

int cepoll_handover_listen(const char *name) {
    struct sockaddr_un a;
    socklen_t len = handover_address(name, &a);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
    if (fd < 0) return -errno;
    if (bind(fd, (struct sockaddr *)&a, len) < 0 || listen(fd, 4) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int cepoll_handover_connect(const char *name) {
    struct sockaddr_un a;
    socklen_t len = handover_address(name, &a);
    int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
    if (fd < 0) return -errno;
    if (connect(fd, (struct sockaddr *)&a, len) < 0) {
        int e = errno;
        close(fd);
        return -e;
    }
    return fd;
}

int cepoll_handover_accept(int fd) { RET(accept4(fd, NULL, NULL, SOCK_CLOEXEC)); }

int cepoll_peer_credentials(int fd, int *pid, int *uid) {
    struct ucred c;
    socklen_t len = sizeof c;
    if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &c, &len) < 0) return -errno;
    *pid = (int)c.pid;
    *uid = (int)c.uid;
    return 0;
}

long cepoll_send_msg(int sock, const void *data, unsigned long len, int fd) {
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct iovec iov = { (void *)data, len };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    if (fd >= 0) {
        memset(&control, 0, sizeof control);
        m.msg_control = control.buf;
        m.msg_controllen = sizeof control.buf;
        struct cmsghdr *c = CMSG_FIRSTHDR(&m);
        c->cmsg_level = SOL_SOCKET;
        c->cmsg_type = SCM_RIGHTS;
        c->cmsg_len = CMSG_LEN(sizeof(int));
        memcpy(CMSG_DATA(c), &fd, sizeof(int));
    }
    RET(sendmsg(sock, &m, MSG_NOSIGNAL));
}

long cepoll_recv_msg(int sock, void *buf, unsigned long cap, int *fd) {
    union { char buf[CMSG_SPACE(sizeof(int))]; struct cmsghdr align; } control;
    struct iovec iov = { buf, cap };
    struct msghdr m = { 0 };
    m.msg_iov = &iov;
    m.msg_iovlen = 1;
    m.msg_control = control.buf;
    m.msg_controllen = sizeof control.buf;
    *fd = -1;
    ssize_t n = recvmsg(sock, &m, MSG_CMSG_CLOEXEC);
    if (n < 0) return -errno;
    for (struct cmsghdr *c = CMSG_FIRSTHDR(&m); c != NULL; c = CMSG_NXTHDR(&m, c)) {
        if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS && c->cmsg_len == CMSG_LEN(sizeof(int)))
            memcpy(fd, CMSG_DATA(c), sizeof(int));
    }
    if (n == 0 && *fd >= 0) { close(*fd); *fd = -1; }
    return n;
}

int cepoll_make_addr(const char *ip, int port, struct sockaddr_storage *out) {
    memset(out, 0, sizeof *out);
    struct sockaddr_in *v4 = (struct sockaddr_in *)out;
    if (inet_pton(AF_INET, ip, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        v4->sin_port = htons((uint16_t)port);
        return sizeof *v4;
    }
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)out;
    if (inet_pton(AF_INET6, ip, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        v6->sin6_port = htons((uint16_t)port);
        return sizeof *v6;
    }
    return -EINVAL;
}

int cepoll_format_addr(const struct sockaddr_storage *addr, char *ip, int iplen, int *port) {
    if (addr->ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)addr;
        if (!inet_ntop(AF_INET, &v4->sin_addr, ip, iplen)) return -errno;
        *port = ntohs(v4->sin_port);
        return 0;
    }
    if (addr->ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)addr;
        if (!inet_ntop(AF_INET6, &v6->sin6_addr, ip, iplen)) return -errno;
        *port = ntohs(v6->sin6_port);
        return 0;
    }
    return -EINVAL;
}

int cepoll_set_thread_name(const char *name) {
    char buf[16];
    strncpy(buf, name, 15);
    buf[15] = 0;
    return -pthread_setname_np(pthread_self(), buf);
}

long cepoll_thread_cpu_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return ts.tv_sec * 1000000000L + ts.tv_nsec;
}

int cepoll_raise_nofile(void) {
    struct rlimit rl;
    if (getrlimit(RLIMIT_NOFILE, &rl) < 0) return -errno;
    rl.rlim_cur = rl.rlim_max;
    if (setrlimit(RLIMIT_NOFILE, &rl) < 0) return -errno;
    return (int)(rl.rlim_cur > 0x7fffffff ? 0x7fffffff : rl.rlim_cur);
}

uint64_t cepoll_monotonic_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

uint64_t cepoll_monotonic_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000u + (uint64_t)ts.tv_nsec / 1000u;
}

int cepoll_ignore_sigpipe(void) {
    /* splice has no MSG_NOSIGNAL: without this a write to a reset peer kills the process. */
    signal(SIGPIPE, SIG_IGN);
    return 0;
}
