/* A worker SIGKILLed in the middle of a job: the job is re-run on a new worker
 * and answered right; with max_attempts = 1 it ends with POOL_EWORKER. */
#include "check.h"

#define LONG_JOB 2000000ULL

static pool *make_pool_attempts(uint32_t workers, uint32_t max_attempts)
{
    pool_config cfg;
    pool *p = NULL;
    pool_config_init(&cfg);
    cfg.workers = workers;
    cfg.max_attempts = max_attempts;
    CHECK_OK(pool_create(&cfg, &p));
    return p;
}

/* Starts the long job on the pool's only worker, kills that worker mid-job and
 * returns the job id; *killed gets the pid. */
static uint64_t kill_mid_job(pool *p, pid_t *killed)
{
    int32_t pid;
    uint64_t id = submit(p, "Hello World", 11, LONG_JOB);

    CHECK(running_within(p, 1, LONG_WAIT_MS));
    CHECK(worker_pids(p, &pid, 1) == 1);
    sleep_ms(50); /* well inside the job (~0.25 s or more) */
    CHECK(stats_of(p).jobs_running == 1);
    CHECK(kill(pid, SIGKILL) == 0);
    *killed = pid;
    return id;
}

int main(void)
{
    char want[POOL_HEX_LEN], hex[POOL_HEX_LEN];
    pool_stats st;
    pool *p;
    pid_t killed;
    int32_t now_pid;
    uint64_t id;

    ref_hex("Hello World", 11, LONG_JOB, want);

    /* Default max_attempts (3): re-run, right answer. */
    p = make_pool_attempts(1, 0);
    id = kill_mid_job(p, &killed);
    wait_ok(p, id, want);
    CHECK(replaced_within(p, killed, 1, 5000));
    CHECK(worker_pids(p, &now_pid, 1) == 1);
    CHECK(now_pid != killed && now_pid > 0);
    CHECK(reaped_within(killed, 5000));
    st = stats_of(p);
    CHECK(st.jobs_retried >= 1);
    CHECK(st.worker_restarts >= 1);
    CHECK(st.workers_configured == 1 && st.workers_alive == 1);
    CHECK(st.jobs_completed == 1 && st.jobs_failed == 0);
    /* The new worker works. */
    id = submit(p, "after", 5, 1000);
    ref_hex("after", 5, 1000, hex);
    wait_ok(p, id, hex);
    CHECK_OK(pool_destroy(p));

    /* max_attempts = 1: the killed job is not re-run. */
    p = make_pool_attempts(1, 1);
    id = kill_mid_job(p, &killed);
    CHECK_STATUS(pool_wait(p, id, LONG_WAIT_MS, hex), POOL_EWORKER);
    CHECK_STATUS(pool_wait(p, id, 0, hex), POOL_ENOJOB);
    CHECK(replaced_within(p, killed, 1, 5000));
    st = stats_of(p);
    CHECK(st.jobs_retried == 0);
    CHECK(st.jobs_failed == 1 && st.jobs_completed == 0);
    CHECK(st.worker_restarts >= 1);
    id = submit(p, "after", 5, 1000);
    ref_hex("after", 5, 1000, want);
    wait_ok(p, id, want);
    CHECK_OK(pool_destroy(p));

    /* max_attempts = 2: killed on both tries -> POOL_EWORKER after one re-run. */
    p = make_pool_attempts(1, 2);
    id = kill_mid_job(p, &killed);
    CHECK(replaced_within(p, killed, 1, 5000));
    CHECK(running_within(p, 1, LONG_WAIT_MS));
    CHECK(stats_of(p).jobs_retried == 1);
    CHECK(worker_pids(p, &now_pid, 1) == 1);
    sleep_ms(50);
    CHECK(kill(now_pid, SIGKILL) == 0);
    CHECK_STATUS(pool_wait(p, id, LONG_WAIT_MS, hex), POOL_EWORKER);
    st = stats_of(p);
    CHECK(st.jobs_retried == 1 && st.jobs_failed == 1);
    CHECK(replaced_within(p, now_pid, 1, 5000));
    CHECK(stats_of(p).worker_restarts >= 2);
    CHECK_OK(pool_destroy(p));

    /* Two workers, one killed: the other keeps its job and the pool heals. */
    p = make_pool_attempts(2, 0);
    {
        int32_t pids[2];
        char want_a[POOL_HEX_LEN], want_b[POOL_HEX_LEN];
        uint64_t a, b;
        ref_hex("a", 1, 1000000, want_a);
        ref_hex("b", 1, 1000000, want_b);
        a = submit(p, "a", 1, 1000000);
        b = submit(p, "b", 1, 1000000);
        CHECK(running_within(p, 2, LONG_WAIT_MS));
        CHECK(worker_pids(p, pids, 2) == 2);
        CHECK(kill(pids[0], SIGKILL) == 0);
        wait_ok(p, a, want_a);
        wait_ok(p, b, want_b);
        CHECK(replaced_within(p, pids[0], 2, 5000));
        CHECK(stats_of(p).jobs_retried <= 2); /* both jobs may share one worker */
    }
    CHECK_OK(pool_destroy(p));
    return 0;
}
