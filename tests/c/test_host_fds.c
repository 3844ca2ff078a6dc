/* Descriptor hygiene.
 *   - a pipe (not CLOEXEC) and a file opened by the host before pool_create are not
 *     open in any worker nor in the fork server;
 *   - a worker holds only its channel socket, plus /dev/null on 0, 1 and 2; the fork
 *     server only its control socket and a signalfd, plus /dev/null on 0-2 and on
 *     every number the host had open (kept taken, so that the host's fork handlers
 *     never close a worker's channel: see test_host_atfork.c);
 *   - also for workers started later (replacements);
 *   - the host's descriptor count is back to its baseline after pool_destroy.
 * (1,000 create/destroy cycles: test_host_cycles.c.)
 */
#include "check.h"

#include <sys/stat.h>

#define MAXFD 64

static char pipe_link[2][128], file_link[128];

static void link_of(int fd, char *out)
{
    char path[64];
    ssize_t n;
    snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    n = readlink(path, out, 127);
    CHECK(n > 0);
    out[n] = '\0';
}

/* Checks the descriptors of a pool process. `extra` lists the link prefixes its
 * non-stdio descriptors may have, each exactly once; with `parked`, any number of
 * them may also be /dev/null. Returns NULL or what is wrong (in a static buffer). */
static const char *fds_problem(pid_t pid, const char *const *extra, int n_extra, int parked)
{
    static char why[4096];
    int fds[MAXFD], i, k, n, n_parked = 0, seen[4] = {0, 0, 0, 0};
    char links[MAXFD][128];
    n = host_proc_fds(pid, fds, links, MAXFD);
    if (n < 0)
        return "gone";
    for (i = 0; i < n; i++) {
        int ok = 0;
        if (strcmp(links[i], pipe_link[0]) == 0 || strcmp(links[i], pipe_link[1]) == 0 ||
            strcmp(links[i], file_link) == 0) {
            snprintf(why, sizeof why, "holds the host's descriptor %d -> %.127s", fds[i], links[i]);
            return why;
        }
        if (fds[i] <= 2) {
            ok = strcmp(links[i], "/dev/null") == 0;
        } else if (parked && strcmp(links[i], "/dev/null") == 0) {
            n_parked++;
            ok = 1;
        } else {
            for (k = 0; k < n_extra; k++)
                if (strncmp(links[i], extra[k], strlen(extra[k])) == 0) {
                    seen[k]++;
                    ok = 1;
                    break;
                }
        }
        if (!ok) {
            snprintf(why, sizeof why, "unexpected descriptor %d -> %.127s", fds[i], links[i]);
            return why;
        }
    }
    if (n != 3 + n_extra + n_parked) {
        snprintf(why, sizeof why, "%d descriptors, expected %d", n, 3 + n_extra + n_parked);
        return why;
    }
    for (k = 0; k < n_extra; k++)
        if (seen[k] != 1) {
            snprintf(why, sizeof why, "%d descriptors -> %s..., expected 1", seen[k], extra[k]);
            return why;
        }
    return NULL;
}

/* A process just forked still holds its parent's descriptors until it closes them
 * (before worker_init): allow it up to 2 s to get there, then it must be clean. */
static void check_process_fds(pid_t pid, const char *what, const char *const *extra, int n_extra,
                              int parked)
{
    double end = now_seconds() + 2.0;
    const char *why;
    while ((why = fds_problem(pid, extra, n_extra, parked)) != NULL && now_seconds() < end)
        sleep_ms(5);
    if (why) {
        int fds[MAXFD], i, n;
        char links[MAXFD][128];
        fprintf(stderr, "%s %d: %s; its descriptors:\n", what, (int)pid, why);
        n = host_proc_fds(pid, fds, links, MAXFD);
        for (i = 0; i < n; i++)
            fprintf(stderr, "  %d -> %s\n", fds[i], links[i]);
        exit(1);
    }
}

static const char *const worker_fds[] = {"socket:["};
static const char *const server_fds[] = {"socket:[", "anon_inode:[signalfd]"};

static void check_pool(pool *p, size_t workers)
{
    int32_t pids[8];
    size_t i, n;
    CHECK(host_wait_workers(p, workers, 10000));
    /* A job per worker makes sure each finished starting (closing happens first). */
    for (i = 0; i < 2 * workers; i++)
        CHECK_OK(host_run_job(p, "hygiene", 10, 10000));
    n = worker_pids(p, pids, 8);
    CHECK(n == workers);
    for (i = 0; i < n; i++)
        check_process_fds(pids[i], "worker", worker_fds, 1, 0);
    check_process_fds(parent_of(pids[0]), "fork server", server_fds, 2, 1);
}

static void inherited_descriptors_closed(void)
{
    int pfd[2], file, baseline, with_pool;
    int32_t pids[2];
    pool *p;
    CHECK(pipe(pfd) == 0); /* deliberately not CLOEXEC */
    file = open("/proc/self/exe", O_RDONLY);
    CHECK(file >= 0);
    link_of(pfd[0], pipe_link[0]);
    link_of(pfd[1], pipe_link[1]);
    link_of(file, file_link);
    CHECK(strncmp(pipe_link[0], "pipe:[", 6) == 0);
    baseline = open_fd_count();

    p = make_pool(2);
    with_pool = open_fd_count();
    check_pool(p, 2);

    /* Replacements are started later, by the fork server: same hygiene. */
    CHECK(worker_pids(p, pids, 2) == 2);
    CHECK(kill(pids[0], SIGKILL) == 0 && kill(pids[1], SIGKILL) == 0);
    CHECK(gone_within(pids[0], 2000) && gone_within(pids[1], 2000));
    {
        double end = now_seconds() + 10.0;
        int32_t now[2];
        for (;;) {
            size_t n = worker_pids(p, now, 2);
            if (n == 2 && now[0] != pids[0] && now[0] != pids[1] && now[1] != pids[0] &&
                now[1] != pids[1])
                break;
            CHECK(now_seconds() < end);
            sleep_ms(5);
        }
    }
    check_pool(p, 2);
    /* The host's own count did not grow with respawns. */
    CHECK(open_fd_count() == with_pool);

    CHECK_OK(pool_destroy(p));
    CHECK(open_fd_count() == baseline);
    /* The host's descriptors are untouched and still work. */
    CHECK(write(pfd[1], "x", 1) == 1);
    {
        char c = 0;
        CHECK(read(pfd[0], &c, 1) == 1 && c == 'x');
    }
    CHECK(close(pfd[0]) == 0 && close(pfd[1]) == 0 && close(file) == 0);
}

/* Descriptors opened after pool_create (by other host threads, say) never reach
 * workers started later either. */
static void later_host_descriptors_not_inherited(void)
{
    int pfd[2], file;
    int32_t pid;
    pool *p = make_pool(1);
    CHECK_OK(host_run_job(p, "warm", 1, 10000));
    CHECK(pipe(pfd) == 0);
    file = open("/proc/self/exe", O_RDONLY);
    CHECK(file >= 0);
    link_of(pfd[0], pipe_link[0]);
    link_of(pfd[1], pipe_link[1]);
    link_of(file, file_link);
    CHECK(worker_pids(p, &pid, 1) == 1);
    CHECK(kill(pid, SIGKILL) == 0);
    CHECK(gone_within(pid, 2000));
    CHECK_OK(host_run_job(p, "after respawn", 3, 10000));
    check_pool(p, 1);
    CHECK_OK(pool_destroy(p));
    CHECK(close(pfd[0]) == 0 && close(pfd[1]) == 0 && close(file) == 0);
}

int main(void)
{
    int failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    failed += HOST_SUBTEST(inherited_descriptors_closed);
    failed += HOST_SUBTEST(later_host_descriptors_not_inherited);
    return failed != 0;
}
