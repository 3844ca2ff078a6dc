/* workers = 0 under a CPU quota. In a control group of its own with half a
 * CPU's worth of time (cgroup v1 cpu.cfs_quota_us, or v2 cpu.max), the pool
 * starts 1 worker, not one per CPU of the affinity mask; in a sub-group with no
 * quota of its own the parent's still counts; 1.5 CPUs' worth rounds up to 2.
 * It needs root, a writable cpu controller and 2 CPUs: without them it says
 * "skipped" and checks only that no quota means the affinity mask. */
#include <sched.h>
#include <sys/stat.h>

#include "check.h"

#define PATH_SIZE 1024

struct hierarchy {
    char top[PATH_SIZE];  /* mount point: our test groups go right below it */
    char home[PATH_SIZE]; /* the group this process was in */
    int v2;
};

static int exists(const char *path)
{
    struct stat st;
    return stat(path, &st) == 0;
}

/* Whether `word` is one of the items of `list` (split at any of `separators`). */
static int list_has(const char *list, const char *word, const char *separators)
{
    char copy[PATH_SIZE], *item, *save = NULL;
    snprintf(copy, sizeof copy, "%s", list);
    for (item = strtok_r(copy, separators, &save); item; item = strtok_r(NULL, separators, &save))
        if (strcmp(item, word) == 0)
            return 1;
    return 0;
}

/* Our group's path in the cpu hierarchy (v1 "N:...cpu...:/path", v2 "0::/path"). */
static int own_group(int v2, char path[PATH_SIZE])
{
    char line[PATH_SIZE];
    int found = 0;
    FILE *f = fopen("/proc/self/cgroup", "r");
    if (!f)
        return 0;
    while (!found && fgets(line, sizeof line, f)) {
        char *controllers = strchr(line, ':'), *group;
        if (!controllers || !(group = strchr(controllers + 1, ':')))
            continue;
        *group++ = '\0';
        group[strcspn(group, "\n")] = '\0';
        controllers++;
        if (v2 ? controllers[0] == '\0' : list_has(controllers, "cpu", ",")) {
            snprintf(path, PATH_SIZE, "%s", group);
            found = 1;
        }
    }
    fclose(f);
    return found;
}

static int file_has_word(const char *path, const char *word)
{
    char line[PATH_SIZE];
    FILE *f = fopen(path, "r");
    int found;
    if (!f)
        return 0;
    found = fgets(line, sizeof line, f) != NULL && list_has(line, word, " \n");
    fclose(f);
    return found;
}

/* The cpu hierarchy's usual mount points (v1 on CentOS 7 and Debian, then v2). */
static int find_hierarchy(struct hierarchy *h)
{
    static const char *const v1_tops[] = {"/sys/fs/cgroup/cpu,cpuacct", "/sys/fs/cgroup/cpu"};
    char group[PATH_SIZE], path[2 * PATH_SIZE];
    size_t i;

    for (i = 0; i < sizeof v1_tops / sizeof v1_tops[0]; i++) {
        snprintf(path, sizeof path, "%s/cpu.cfs_quota_us", v1_tops[i]);
        if (exists(path) && own_group(0, group)) {
            snprintf(h->top, sizeof h->top, "%s", v1_tops[i]);
            h->v2 = 0;
            goto found;
        }
    }
    /* v2: only where the root already hands the cpu controller down (this test
     * does not change the machine's cgroup setup). */
    if (file_has_word("/sys/fs/cgroup/cgroup.subtree_control", "cpu") &&
        own_group(1, group)) {
        snprintf(h->top, sizeof h->top, "/sys/fs/cgroup");
        h->v2 = 1;
        goto found;
    }
    return 0;
found:
    /* In a container the mount shows its own group at the top. */
    snprintf(path, sizeof path, "%s%s", h->top, group);
    if (!exists(path) || strlen(path) >= sizeof h->home)
        snprintf(path, sizeof path, "%s", h->top);
    memcpy(h->home, path, strlen(path) + 1);
    return 1;
}

static int write_file(const char *dir, const char *name, const char *text)
{
    char path[2 * PATH_SIZE];
    FILE *f;
    int ok;
    snprintf(path, sizeof path, "%s/%s", dir, name);
    f = fopen(path, "w");
    if (!f)
        return 0;
    ok = fputs(text, f) >= 0;
    return (fclose(f) == 0) && ok;
}

static int move_here(const char *dir)
{
    char pid[32];
    snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    return write_file(dir, "cgroup.procs", pid);
}

/* quota_us of CPU time per 100 ms period; -1 for none. */
static int set_quota(const struct hierarchy *h, const char *dir, long quota_us)
{
    char text[64];
    if (h->v2) {
        if (quota_us < 0)
            snprintf(text, sizeof text, "max 100000\n");
        else
            snprintf(text, sizeof text, "%ld 100000\n", quota_us);
        return write_file(dir, "cpu.max", text);
    }
    snprintf(text, sizeof text, "%ld\n", quota_us);
    return write_file(dir, "cpu.cfs_period_us", "100000\n") &&
           write_file(dir, "cpu.cfs_quota_us", text);
}

/* The test's groups, removed at exit, also when a check fails (unless a pool
 * was alive then: its processes keep the group busy, and the message names it). */
static struct hierarchy h;
static char group[PATH_SIZE + 64], sub[PATH_SIZE + 128];

static void remove_groups(void)
{
    if (!move_here(h.home))
        fprintf(stderr, "could not move back to %s\n", h.home);
    if ((exists(sub) && rmdir(sub) != 0) || rmdir(group) != 0)
        fprintf(stderr, "could not remove %s: %s\n", group, strerror(errno));
}

static uint32_t default_workers(void)
{
    pool *p = make_pool(0);
    uint32_t n = stats_of(p).workers_configured;
    CHECK(worker_pids(p, NULL, 0) == n);
    CHECK_OK(pool_destroy(p));
    return n;
}

int main(void)
{
    cpu_set_t mask;
    int cpus;

    CHECK(sched_getaffinity(0, sizeof mask, &mask) == 0);
    cpus = CPU_COUNT(&mask);
    if (cpus < 2 || getuid() != 0 || !find_hierarchy(&h)) {
        printf("skipped: needs root, 2 CPUs and a cgroup cpu controller\n");
        CHECK(default_workers() <= (uint32_t)cpus);
        return 0;
    }
    snprintf(group, sizeof group, "%s/md5pool_test_%d", h.top, (int)getpid());
    snprintf(sub, sizeof sub, "%s/sub", group);
    if (mkdir(group, 0755) != 0) {
        printf("skipped: cannot create %s: %s\n", group, strerror(errno));
        return 0;
    }
    CHECK(atexit(remove_groups) == 0);
    CHECK(mkdir(sub, 0755) == 0);
    CHECK(move_here(group));
    printf("%s (cgroup v%d), %d CPUs in the affinity mask\n", group, h.v2 ? 2 : 1, cpus);

    CHECK(set_quota(&h, group, -1));
    CHECK(default_workers() == (uint32_t)cpus);
    CHECK(set_quota(&h, group, 50000));
    CHECK(default_workers() == 1);
    CHECK(set_quota(&h, group, 150000));
    CHECK(default_workers() == 2);

    /* The parent's quota caps a group without one. */
    CHECK(set_quota(&h, group, 50000));
    CHECK(move_here(sub));
    CHECK(default_workers() == 1);

    /* An explicit count is the caller's choice, quota or not. */
    {
        pool *p = make_pool(2);
        CHECK(stats_of(p).workers_configured == 2);
        CHECK_OK(pool_destroy(p));
    }
    return 0;
}
