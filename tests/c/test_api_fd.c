/* pool_fd: readable exactly while a finished job (any status) awaits
 * collection, with poll and with level-triggered epoll. */
#include <poll.h>
#include <sys/epoll.h>

#include "check.h"

static int readable(int fd, int timeout_ms)
{
    struct pollfd pfd;
    int n;
    pfd.fd = fd;
    pfd.events = POLLIN;
    pfd.revents = 0;
    do {
        n = poll(&pfd, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    CHECK(n >= 0);
    CHECK((pfd.revents & (POLLERR | POLLNVAL)) == 0);
    return n == 1 && (pfd.revents & POLLIN);
}

static int epoll_readable(int ep, int fd, int timeout_ms)
{
    struct epoll_event ev;
    int n;
    do {
        n = epoll_wait(ep, &ev, 1, timeout_ms);
    } while (n < 0 && errno == EINTR);
    CHECK(n >= 0);
    if (n == 0)
        return 0;
    CHECK(ev.data.fd == fd && (ev.events & EPOLLIN));
    return 1;
}

int main(void)
{
    pool *p = make_pool(2);
    int fd = pool_fd(p), ep;
    char want[POOL_HEX_LEN], hex[POOL_HEX_LEN];
    uint64_t a, b, c, got;
    struct epoll_event ev;

    CHECK(fd >= 0);
    CHECK(pool_fd(p) == fd); /* the same descriptor every time */
    CHECK(!readable(fd, 0));

    /* One finished job makes it readable; it stays so until collected. */
    ref_hex("fd", 2, 1000, want);
    a = submit(p, "fd", 2, 1000);
    CHECK(readable(fd, LONG_WAIT_MS));
    CHECK(readable(fd, 0));
    CHECK(readable(fd, 0));
    wait_ok(p, a, want);
    CHECK(!readable(fd, 0));

    /* Two finished: still readable after collecting one, not after both. */
    a = submit(p, "fd", 2, 1000);
    b = submit(p, "fd", 2, 1000);
    CHECK(ready_within(p, 2, LONG_WAIT_MS));
    CHECK(readable(fd, 0));
    wait_ok(p, a, want);
    CHECK(readable(fd, 0));
    CHECK(readable(fd, 0));
    CHECK_OK(pool_wait_any(p, 0, &got, hex));
    CHECK(got == b && strcmp(hex, want) == 0);
    CHECK(!readable(fd, 0));

    /* A running job is not a finished one; a canceled job is. */
    c = submit(p, "huge", 4, HUGE_ITERATIONS);
    CHECK(running_within(p, 1, LONG_WAIT_MS));
    CHECK(!readable(fd, 50));
    CHECK_OK(pool_cancel(p, c));
    CHECK(readable(fd, LONG_WAIT_MS));
    CHECK_STATUS(pool_wait(p, c, 0, hex), POOL_ECANCELED);
    CHECK(!readable(fd, 0));

    /* epoll, level-triggered: EPOLLIN again and again until collected. */
    ep = epoll_create1(EPOLL_CLOEXEC);
    CHECK(ep >= 0);
    memset(&ev, 0, sizeof ev);
    ev.events = EPOLLIN;
    ev.data.fd = fd;
    CHECK(epoll_ctl(ep, EPOLL_CTL_ADD, fd, &ev) == 0);
    CHECK(!epoll_readable(ep, fd, 0));
    a = submit(p, "fd", 2, 1000);
    b = submit(p, "fd", 2, 1000);
    CHECK(epoll_readable(ep, fd, LONG_WAIT_MS));
    CHECK(ready_within(p, 2, LONG_WAIT_MS));
    CHECK(epoll_readable(ep, fd, 0));
    CHECK(epoll_readable(ep, fd, 0));
    wait_ok(p, b, want);
    CHECK(epoll_readable(ep, fd, 0));
    wait_ok(p, a, want);
    CHECK(!epoll_readable(ep, fd, 0));
    CHECK(!epoll_readable(ep, fd, 20));

    /* A typical event loop: wake on the fd, collect with pool_wait_any(0). */
    {
        int left = 5, i;
        for (i = 0; i < 5; i++)
            submit(p, "fd", 2, 1000 + (uint64_t)i);
        while (left > 0) {
            pool_status st;
            CHECK(epoll_readable(ep, fd, LONG_WAIT_MS));
            while ((st = pool_wait_any(p, 0, &got, hex)) == POOL_OK)
                left--;
            CHECK(st == POOL_ETIMEDOUT || (st == POOL_ENOJOB && left == 0));
        }
        CHECK(!epoll_readable(ep, fd, 0));
    }

    CHECK(close(ep) == 0);
    CHECK_OK(pool_destroy(p));
    return 0;
}
