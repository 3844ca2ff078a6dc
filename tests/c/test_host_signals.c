/* The host's signals.
 * Each sub-test runs in its own child process (it changes dispositions).
 *   - SIGPIPE at SIG_DFL: 1 MiB jobs sent to workers being killed never raise it;
 *   - a 1 ms SIGALRM without SA_RESTART during create, 200 jobs (pool_wait(-1) and
 *     pool_wait_any(-1)) and destroy: every result right, no error;
 *   - a host SIGCHLD handler reaping waitpid(-1, WNOHANG), and SIGCHLD = SIG_IGN:
 *     killed workers are replaced, their job answered, destroy returns, no zombie;
 *   - the library never reaps the host's own children;
 *   - dispositions of SIGPIPE, SIGCHLD, SIGINT, SIGTERM and the calling thread's
 *     mask are unchanged by pool_create / pool_destroy;
 *   - workers have SigBlk, SigIgn and SigCgt all zero even when the host ignored,
 *     blocked and caught signals at pool_create.
 */
#include "check.h"

#include <pthread.h>
#include <sys/time.h>

static volatile sig_atomic_t alarms, chld_signals, reaped;

/* ------------------------------------------------------------------ SIGPIPE */

static void no_sigpipe_when_worker_dies_during_send(void)
{
    const size_t len = 1u << 20; /* max_message_bytes by default */
    char *msg = malloc(len);
    char want[POOL_HEX_LEN], hex[POOL_HEX_LEN];
    int round, ok = 0, eworker = 0;
    pool_config cfg;
    pool *p = NULL;
    CHECK(msg != NULL);
    memset(msg, 'm', len);
    CHECK(signal(SIGPIPE, SIG_DFL) != SIG_ERR);
    CHECK_OK(pool_md5_chain(msg, len, 1, want));
    pool_config_init(&cfg);
    cfg.workers = 1;
    cfg.max_attempts = 2;
    CHECK_OK(pool_create(&cfg, &p));
    for (round = 0; round < 30; round++) {
        uint64_t id;
        int32_t pid;
        pool_status st;
        /* The worker is up (a tiny job answered), so the kill is not a failed start. */
        CHECK_OK(host_run_job(p, "ready?", 1, 10000));
        CHECK(worker_pids(p, &pid, 1) >= 1);
        CHECK_OK(pool_submit(p, msg, len, 1, &id));
        if (round % 3)
            sleep_ms(round % 3); /* 0, 1 or 2 ms into the send */
        CHECK(kill(pid, SIGKILL) == 0);
        st = pool_wait(p, id, 20000, hex);
        if (st == POOL_OK) {
            CHECK(strcmp(hex, want) == 0);
            ok++;
        } else {
            CHECK_STATUS(st, POOL_EWORKER);
            eworker++;
        }
        CHECK(gone_within(pid, 2000));
    }
    printf("  30 x 1 MiB job + SIGKILL: %d answered, %d POOL_EWORKER\n", ok, eworker);
    /* The worker is busy with a long job, so it does not read its channel: a 1 MiB
     * job sent to it fills the socket buffer and the pool's send is still pending
     * when the worker dies. */
    for (round = 0; round < 5; round++) {
        uint64_t longjob, big;
        int32_t pid;
        pool_status st;
        CHECK_OK(host_run_job(p, "ready?", 1, 10000));
        CHECK(worker_pids(p, &pid, 1) == 1);
        CHECK_OK(pool_submit(p, "long", 4, 200000000, &longjob));
        CHECK_OK(pool_submit(p, msg, len, 1, &big));
        sleep_ms(30);
        CHECK(kill(pid, SIGKILL) == 0);
        CHECK_OK(pool_cancel(p, longjob));
        st = pool_wait(p, big, 20000, hex);
        CHECK(st == POOL_OK || st == POOL_EWORKER);
        if (st == POOL_OK)
            CHECK(strcmp(hex, want) == 0);
        CHECK_STATUS(pool_wait(p, longjob, 20000, hex), POOL_ECANCELED);
        CHECK(gone_within(pid, 2000));
    }
    CHECK_OK(pool_destroy(p));
    free(msg);
}

/* ------------------------------------------------------------------ EINTR */

static void on_alarm(int sig)
{
    (void)sig;
    alarms++;
}

static void eintr_storm(void)
{
    enum { JOBS = 200 };
    struct sigaction sa;
    struct itimerval every_ms;
    uint64_t ids[JOBS];
    char hex[POOL_HEX_LEN], want[POOL_HEX_LEN];
    char msg[32];
    int i, got[JOBS];
    pool *p;

    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_alarm;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = 0; /* no SA_RESTART: every blocking call may fail with EINTR */
    CHECK(sigaction(SIGALRM, &sa, NULL) == 0);
    memset(&every_ms, 0, sizeof every_ms);
    every_ms.it_interval.tv_usec = 1000;
    every_ms.it_value.tv_usec = 1000;
    CHECK(setitimer(ITIMER_REAL, &every_ms, NULL) == 0);

    p = make_pool(2);
    for (i = 0; i < JOBS; i++) {
        int len = snprintf(msg, sizeof msg, "eintr %d", i);
        CHECK_OK(pool_submit(p, msg, (size_t)len, 2000 + (uint64_t)i, &ids[i]));
        got[i] = 0;
    }
    /* Half by id, waiting forever... */
    for (i = 0; i < JOBS / 2; i++) {
        int len = snprintf(msg, sizeof msg, "eintr %d", i);
        CHECK_OK(pool_wait(p, ids[i], -1, hex));
        CHECK_OK(pool_md5_chain(msg, (size_t)len, 2000 + (uint64_t)i, want));
        CHECK(strcmp(hex, want) == 0);
        got[i] = 1;
    }
    /* ...half with wait_any, waiting forever. */
    for (i = JOBS / 2; i < JOBS; i++) {
        uint64_t id = 0;
        int k, len;
        CHECK_OK(pool_wait_any(p, -1, &id, hex));
        for (k = JOBS / 2; k < JOBS && ids[k] != id; k++) {
        }
        CHECK(k < JOBS && !got[k]);
        got[k] = 1;
        len = snprintf(msg, sizeof msg, "eintr %d", k);
        CHECK_OK(pool_md5_chain(msg, (size_t)len, 2000 + (uint64_t)k, want));
        CHECK(strcmp(hex, want) == 0);
    }
    {
        uint64_t id;
        CHECK_STATUS(pool_wait_any(p, -1, &id, hex), POOL_ENOJOB);
    }
    /* Kill a worker under the storm too: it is replaced and jobs still answer. */
    {
        int32_t pid;
        CHECK(worker_pids(p, &pid, 1) >= 1);
        CHECK(kill(pid, SIGKILL) == 0);
        for (i = 0; i < 20; i++)
            CHECK_OK(host_run_job(p, "after a kill, under SIGALRM", 500, -1));
    }
    CHECK_OK(pool_destroy(p));
    memset(&every_ms, 0, sizeof every_ms);
    CHECK(setitimer(ITIMER_REAL, &every_ms, NULL) == 0);
    printf("  %d SIGALRMs during the run\n", (int)alarms);
    CHECK(alarms >= 20); /* the storm really happened */
}

/* ------------------------------------------------------------------ SIGCHLD */

static void reap_everything(int sig)
{
    int saved = errno, status;
    (void)sig;
    chld_signals++;
    while (waitpid(-1, &status, WNOHANG) > 0)
        reaped++;
    errno = saved;
}

/* Kills a running job's worker (and another idle one) and checks that the job is
 * answered, replacements come from the fork server, destroy returns, no zombie. */
static void supervise_despite_host_sigchld(void)
{
    int32_t pids[2], after[2];
    pid_t fs;
    uint64_t id;
    char hex[POOL_HEX_LEN], want[POOL_HEX_LEN];
    double t, end;
    pool *p = make_pool(2);
    CHECK_OK(host_run_job(p, "warm", 1, 10000));
    CHECK(host_wait_workers(p, 2, 10000));
    CHECK(worker_pids(p, pids, 2) == 2);
    fs = parent_of(pids[0]);
    CHECK(parent_of(fs) == getpid());
    CHECK_OK(pool_md5_chain("sigchld", 7, 1000000, want));
    CHECK_OK(pool_submit(p, "sigchld", 7, 1000000, &id));
    sleep_ms(50); /* running on one of the two */
    CHECK(kill(pids[0], SIGKILL) == 0 && kill(pids[1], SIGKILL) == 0);
    CHECK_OK(pool_wait(p, id, 30000, hex));
    CHECK(strcmp(hex, want) == 0);
    end = now_seconds() + 10.0;
    for (;;) {
        size_t n = worker_pids(p, after, 2);
        if (n == 2 && after[0] != pids[0] && after[0] != pids[1] && after[1] != pids[0] &&
            after[1] != pids[1])
            break;
        CHECK(now_seconds() < end);
        sleep_ms(5);
    }
    CHECK(parent_of(after[0]) == fs && parent_of(after[1]) == fs);
    CHECK_OK(host_run_job(p, "after", 33, 10000));
    t = now_seconds();
    CHECK_OK(pool_destroy(p));
    CHECK(now_seconds() - t < 3.0);
    CHECK(gone_within(fs, 2000));
    sleep_ms(50); /* let a last SIGCHLD handler run */
    CHECK(host_all_children(getpid()) == 0);
}

static void host_sigchld_handler_reaps_all(void)
{
    struct sigaction sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = reap_everything;
    sigemptyset(&sa.sa_mask);
    sa.sa_flags = SA_NOCLDSTOP; /* and no SA_RESTART */
    CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);
    supervise_despite_host_sigchld();
    printf("  host handler: %d SIGCHLD, reaped %d\n", (int)chld_signals, (int)reaped);
    CHECK(chld_signals >= 1); /* the fork server's exit reached the host's handler */
}

static void host_sigchld_ignored(void)
{
    struct sigaction old;
    CHECK(signal(SIGCHLD, SIG_IGN) != SIG_ERR);
    supervise_despite_host_sigchld();
    CHECK(sigaction(SIGCHLD, NULL, &old) == 0);
    CHECK(old.sa_handler == SIG_IGN);
}

/* The host's own child is reaped by the host, with its exit status: the pool does
 * not take it (SIGCHLD at SIG_DFL, host waits for its child while the pool works). */
static void library_never_reaps_host_children(void)
{
    pid_t child;
    int status = 0, i;
    pool *p = make_pool(2);
    CHECK(signal(SIGCHLD, SIG_DFL) != SIG_ERR);
    child = fork();
    CHECK(child >= 0);
    if (child == 0)
        _exit(42);
    /* Workers die and get replaced meanwhile. */
    for (i = 0; i < 3; i++) {
        int32_t pid;
        CHECK_OK(host_run_job(p, "busy", 1000, 10000));
        CHECK(worker_pids(p, &pid, 1) >= 1);
        CHECK(kill(pid, SIGKILL) == 0);
        CHECK(gone_within(pid, 2000));
    }
    CHECK_OK(host_run_job(p, "busy", 1000, 10000));
    CHECK(waitpid(child, &status, 0) == child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 42);
    CHECK_OK(pool_destroy(p));
}

/* ------------------------------------------------------------------ dispositions */

static void on_signal(int sig)
{
    (void)sig;
}

static const int watched[] = {SIGPIPE, SIGCHLD, SIGINT, SIGTERM, SIGALRM, SIGUSR1};
#define NWATCHED (int)(sizeof watched / sizeof watched[0])

static void snapshot(struct sigaction *acts, sigset_t *mask)
{
    int i;
    for (i = 0; i < NWATCHED; i++)
        CHECK(sigaction(watched[i], NULL, &acts[i]) == 0);
    CHECK(pthread_sigmask(SIG_SETMASK, NULL, mask) == 0);
}

static void compare(const struct sigaction *a, const sigset_t *ma, const struct sigaction *b,
                    const sigset_t *mb, const char *when)
{
    int i, s;
    for (i = 0; i < NWATCHED; i++) {
        int same = a[i].sa_handler == b[i].sa_handler && a[i].sa_flags == b[i].sa_flags;
        for (s = 1; s < 32; s++)
            same &= sigismember(&a[i].sa_mask, s) == sigismember(&b[i].sa_mask, s);
        if (!same) {
            fprintf(stderr, "%s: the disposition of signal %d (%s) changed\n", when, watched[i],
                    strsignal(watched[i]));
            exit(1);
        }
    }
    for (s = 1; s < 65; s++)
        if (sigismember(ma, s) != sigismember(mb, s)) {
            fprintf(stderr, "%s: the calling thread's mask changed for signal %d\n", when, s);
            exit(1);
        }
}

static void set_dispositions(void)
{
    struct sigaction sa;
    sigset_t block;
    memset(&sa, 0, sizeof sa);
    sigemptyset(&sa.sa_mask);
    CHECK(signal(SIGPIPE, SIG_IGN) != SIG_ERR);
    sa.sa_handler = on_signal;
    sa.sa_flags = SA_RESTART | SA_NOCLDSTOP;
    sigaddset(&sa.sa_mask, SIGUSR2);
    CHECK(sigaction(SIGCHLD, &sa, NULL) == 0);
    sa.sa_flags = 0;
    CHECK(sigaction(SIGINT, &sa, NULL) == 0);
    CHECK(signal(SIGTERM, SIG_DFL) != SIG_ERR);
    CHECK(signal(SIGALRM, SIG_IGN) != SIG_ERR);
    sigemptyset(&block);
    sigaddset(&block, SIGUSR1);
    sigaddset(&block, SIGHUP);
    sigaddset(&block, SIGRTMIN + 3);
    CHECK(pthread_sigmask(SIG_BLOCK, &block, NULL) == 0);
}

static void dispositions_and_mask_unchanged(void)
{
    struct sigaction before[NWATCHED], now[NWATCHED];
    sigset_t mask_before, mask_now;
    int32_t pid;
    pool *p;
    set_dispositions();
    snapshot(before, &mask_before);
    p = make_pool(2);
    snapshot(now, &mask_now);
    compare(before, &mask_before, now, &mask_now, "after pool_create");
    CHECK_OK(host_run_job(p, "signals", 100, 10000));
    CHECK(worker_pids(p, &pid, 1) >= 1);
    CHECK(kill(pid, SIGKILL) == 0);
    CHECK_OK(host_run_job(p, "signals", 101, 10000));
    snapshot(now, &mask_now);
    compare(before, &mask_before, now, &mask_now, "after jobs and a respawn");
    CHECK_OK(pool_destroy(p));
    snapshot(now, &mask_now);
    compare(before, &mask_before, now, &mask_now, "after pool_destroy");
}

/* Workers start with no signal blocked, ignored or caught; the fork server blocks
 * only SIGCHLD (it reads it from a signalfd) and ignores and catches nothing. */
/* A worker is listed as soon as it is forked, a moment before it resets what it
 * inherited from the fork server: wait (2 s at most) for its state to clear. */
static void settle_signal_state(pid_t pid)
{
    double end = now_seconds() + 2.0;
    while ((host_status_mask(pid, "SigBlk") | host_status_mask(pid, "SigIgn") |
            host_status_mask(pid, "SigCgt")) != 0 && now_seconds() < end)
        sleep_ms(1);
}

static void workers_have_clean_signal_state(void)
{
    struct sigaction sa;
    int32_t pids[2];
    pid_t fs;
    size_t i;
    pool *p;
    set_dispositions(); /* ignores SIGPIPE, SIGALRM; catches SIGCHLD, SIGINT; blocks 3 */
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    CHECK(sigaction(SIGUSR2, &sa, NULL) == 0);
    CHECK(host_status_mask(getpid(), "SigIgn") != 0);
    CHECK(host_status_mask(getpid(), "SigCgt") != 0);
    p = make_pool(2);
    CHECK_OK(host_run_job(p, "signal state", 10, 10000));
    CHECK_OK(host_run_job(p, "signal state", 11, 10000));
    CHECK(host_wait_workers(p, 2, 10000));
    CHECK(worker_pids(p, pids, 2) == 2);
    for (i = 0; i < 2; i++) {
        unsigned long long blk, ign, cgt;
        settle_signal_state(pids[i]);
        blk = host_status_mask(pids[i], "SigBlk");
        ign = host_status_mask(pids[i], "SigIgn");
        cgt = host_status_mask(pids[i], "SigCgt");
        if (blk || ign || cgt) {
            fprintf(stderr, "worker %d: SigBlk %llx SigIgn %llx SigCgt %llx, expected all 0\n",
                    (int)pids[i], blk, ign, cgt);
            exit(1);
        }
    }
    fs = parent_of(pids[0]);
    if (host_status_mask(fs, "SigIgn") != 0 || host_status_mask(fs, "SigCgt") != 0 ||
        (host_status_mask(fs, "SigBlk") & ~(1ULL << (SIGCHLD - 1))) != 0) {
        fprintf(stderr, "fork server %d: SigBlk %llx SigIgn %llx SigCgt %llx, expected only "
                        "SIGCHLD blocked\n", (int)fs, host_status_mask(fs, "SigBlk"),
                host_status_mask(fs, "SigIgn"), host_status_mask(fs, "SigCgt"));
        exit(1);
    }
    /* And for a replacement started after the host changed more. */
    CHECK(signal(SIGQUIT, SIG_IGN) != SIG_ERR);
    CHECK(kill(pids[0], SIGKILL) == 0);
    CHECK(gone_within(pids[0], 2000));
    CHECK_OK(host_run_job(p, "signal state", 12, 10000));
    CHECK(host_wait_workers(p, 2, 10000));
    CHECK(worker_pids(p, pids, 2) == 2);
    for (i = 0; i < 2; i++) {
        settle_signal_state(pids[i]);
        CHECK(host_status_mask(pids[i], "SigBlk") == 0 && host_status_mask(pids[i], "SigIgn") == 0 &&
              host_status_mask(pids[i], "SigCgt") == 0);
    }
    CHECK_OK(pool_destroy(p));
}

int main(void)
{
    int failed = 0;
    setvbuf(stdout, NULL, _IOLBF, 0);
    failed += HOST_SUBTEST(no_sigpipe_when_worker_dies_during_send);
    failed += HOST_SUBTEST(eintr_storm);
    failed += HOST_SUBTEST(host_sigchld_handler_reaps_all);
    failed += HOST_SUBTEST(host_sigchld_ignored);
    failed += HOST_SUBTEST(library_never_reaps_host_children);
    failed += HOST_SUBTEST(dispositions_and_mask_unchanged);
    failed += HOST_SUBTEST(workers_have_clean_signal_state);
    return failed != 0;
}
