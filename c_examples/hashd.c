/*
 * hashd: a small daemon serving the md5 chain over a line protocol. It is the
 * worked example of linking md5pool into an existing single-threaded epoll
 * daemon: the pool is one more descriptor in the loop, and the loop never
 * blocks on it.
 *
 * Protocol, one request per line, any number of requests in flight (pipelined)
 * on one connection; replies come back in request order on each connection:
 *
 *     ITERATIONS SP MESSAGE LF   ->  OK <32 lowercase hex digits> LF
 *                                ->  ERR <STATUS_NAME> <text> LF
 *     STATS LF                   ->  STATS name=value ... LF  (pool_stats_get
 *                                    fields, then clients=<connections>)
 *
 * MESSAGE is every byte after the first space up to the LF (a CR right before
 * the LF is dropped); it may hold any other byte, NUL included. STATUS_NAME is
 * the pool_status name (POOL_EINVAL, POOL_EWORKER, ...) and text starts with
 * pool_strerror(). A line longer than --max-line gets ERR POOL_ETOOBIG and is
 * skipped up to its LF. When the peer half-closes (shutdown(SHUT_WR)), a last
 * line without LF still counts, every reply is sent, then the connection is
 * closed; a peer that goes away entirely gets its outstanding jobs canceled.
 *
 * Flow control, so that memory stays bounded whatever the clients do:
 *   - the pool's queue is full (POOL_EFULL): the request stays in that client's
 *     input buffer, the client stops being read (EPOLLIN off) and waits in a
 *     FIFO; each collected job frees one slot and wakes the waiters in order;
 *   - a client has --max-pipeline replies owed, or has not read 64 KiB of
 *     replies: it stops being read until it catches up.
 *
 * SIGTERM/SIGINT: stop accepting, stop reading requests, finish the jobs in
 * flight and send their replies for up to --shutdown-timeout-ms, then
 * pool_destroy and exit 0. A second signal cuts the wait short.
 * SIGHUP: reopen --log-file (after logrotate); nothing else is reloaded.
 * Under systemd (Type=notify) it reports READY=1 and STOPPING=1.
 *
 * The manual is man/hashd.8; the systemd unit is c_examples/hashd.service.
 * Build: make hashd   (build/bin/hashd)
 * Try:   build/bin/hashd --unix=/tmp/hashd.sock --port=7373 &
 *        printf '1000000 Hello World\nSTATS\n' | nc -q1 127.0.0.1 7373
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE /* accept4, signalfd, epoll, MSG_NOSIGNAL */
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <getopt.h>
#include <grp.h>
#include <limits.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <time.h>
#include <fcntl.h>
#include <unistd.h>

#include <md5pool.h>

/* A reply line: "ERR POOL_EJOBTIMEOUT <strerror text>: <detail>\n" and the
 * STATS line with every counter at its largest fit. */
#define REPLY_MAX 320
/* Stop reading a client that has this many reply bytes it has not read yet. */
#define OUT_HIGH_WATER (64 * 1024)
#define MAX_EVENTS 64

/* ------------------------------------------------------------------ options */

struct options {
    const char *unix_path; /* NULL: no Unix socket */
    const char *addr;      /* TCP address to bind */
    long port;             /* 0: no TCP; -1: any free port (reported at startup) */
    long socket_mode;      /* -1: leave the Unix socket's mode to the umask */
    long socket_gid;       /* -1: leave the Unix socket's group alone */
    const char *log_path;  /* NULL: log to stderr as it was given to us */
    unsigned long workers, queue, max_line, max_pipeline, max_clients;
    unsigned long long max_iterations;
    unsigned long job_timeout_ms, max_attempts, shutdown_timeout_ms;
    int verbose;
};

static void usage(FILE *f)
{
    fprintf(f,
            "usage: hashd [options]\n"
            "  -u, --unix=PATH              listen on a Unix stream socket at PATH\n"
            "  -m, --socket-mode=MODE       octal mode of that socket (e.g. 0660; default: umask)\n"
            "  -g, --socket-group=GROUP     group (name or number) of that socket\n"
            "  -p, --port=N|any             listen on TCP port N (0 = no TCP, default 7373;\n"
            "                               any = a free port, printed in the READY line)\n"
            "  -a, --addr=A                 TCP address to bind (default 127.0.0.1)\n"
            "  -w, --workers=N              worker processes (0 = one per CPU, default 0)\n"
            "  -q, --queue=N                pool queue capacity (default 1024)\n"
            "      --max-line=N             longest request line in bytes (default 4096)\n"
            "      --max-pipeline=N         replies one client may owe before it is not read (default 64)\n"
            "      --max-clients=N          connections at once (default 1024)\n"
            "      --max-iterations=N       largest ITERATIONS accepted (default 100000000)\n"
            "      --job-timeout-ms=N       limit on one job's run time (default 0 = none)\n"
            "      --max-attempts=N         tries per job when its worker dies (default 0 = library's 3)\n"
            "      --shutdown-timeout-ms=N  how long SIGTERM waits for jobs in flight (default 5000)\n"
            "  -l, --log-file=PATH          append log lines to PATH (reopened on SIGHUP)\n"
            "  -v, --verbose                also log the pool's messages\n"
            "  -h, --help                   this text\n");
}

/* Parses a whole number in [min, max] in `base`; 0 on success. */
static int parse_number(const char *s, int base, unsigned long long min, unsigned long long max,
                        unsigned long long *out)
{
    char *end;
    unsigned long long v;
    if (*s < '0' || *s > '9') /* strtoull would accept "-1" and " 1" */
        return -1;
    errno = 0;
    v = strtoull(s, &end, base);
    if (errno != 0 || *end != '\0' || v < min || v > max)
        return -1;
    *out = v;
    return 0;
}

/* A group name, or a number for a group without one. */
static int parse_group(const char *s, long *gid)
{
    unsigned long long n;
    struct group *g = getgrnam(s);
    if (g) {
        *gid = (long)g->gr_gid;
        return 0;
    }
    if (parse_number(s, 10, 0, UINT32_MAX - 1, &n) != 0)
        return -1;
    *gid = (long)n;
    return 0;
}

/* Long options without a short form get codes past the char range. */
enum {
    OPT_MAX_LINE = 256,
    OPT_MAX_PIPELINE,
    OPT_MAX_CLIENTS,
    OPT_MAX_ITERATIONS,
    OPT_JOB_TIMEOUT,
    OPT_MAX_ATTEMPTS,
    OPT_SHUTDOWN_TIMEOUT
};

static const struct option long_options[] = {
    {"unix", required_argument, NULL, 'u'},
    {"socket-mode", required_argument, NULL, 'm'},
    {"socket-group", required_argument, NULL, 'g'},
    {"port", required_argument, NULL, 'p'},
    {"addr", required_argument, NULL, 'a'},
    {"workers", required_argument, NULL, 'w'},
    {"queue", required_argument, NULL, 'q'},
    {"max-line", required_argument, NULL, OPT_MAX_LINE},
    {"max-pipeline", required_argument, NULL, OPT_MAX_PIPELINE},
    {"max-clients", required_argument, NULL, OPT_MAX_CLIENTS},
    {"max-iterations", required_argument, NULL, OPT_MAX_ITERATIONS},
    {"job-timeout-ms", required_argument, NULL, OPT_JOB_TIMEOUT},
    {"max-attempts", required_argument, NULL, OPT_MAX_ATTEMPTS},
    {"shutdown-timeout-ms", required_argument, NULL, OPT_SHUTDOWN_TIMEOUT},
    {"log-file", required_argument, NULL, 'l'},
    {"verbose", no_argument, NULL, 'v'},
    {"help", no_argument, NULL, 'h'},
    {NULL, 0, NULL, 0},
};

/* parse_number into an unsigned long option. */
static int parse_ulong(const char *s, unsigned long long min, unsigned long long max,
                       unsigned long *out)
{
    unsigned long long n;
    if (parse_number(s, 10, min, max, &n) != 0)
        return -1;
    *out = (unsigned long)n;
    return 0;
}

/* Applies one option; -1 on a bad value. */
static int apply_option(int code, const char *val, struct options *o)
{
    unsigned long long n;
    switch (code) {
    case 'u':
        o->unix_path = *val ? val : NULL;
        return 0;
    case 'm':
        if (parse_number(val, 8, 0, 07777, &n) != 0)
            return -1;
        o->socket_mode = (long)n;
        return 0;
    case 'g':
        return parse_group(val, &o->socket_gid);
    case 'p':
        if (strcmp(val, "any") == 0) {
            o->port = -1;
            return 0;
        }
        if (parse_number(val, 10, 0, 65535, &n) != 0)
            return -1;
        o->port = (long)n;
        return 0;
    case 'a':
        o->addr = val;
        return 0;
    case 'l':
        o->log_path = val;
        return 0;
    case 'w':
        return parse_ulong(val, 0, 1024, &o->workers);
    case 'q':
        return parse_ulong(val, 0, 1u << 24, &o->queue);
    case OPT_MAX_LINE:
        return parse_ulong(val, 16, 1u << 24, &o->max_line);
    case OPT_MAX_PIPELINE:
        return parse_ulong(val, 1, 1u << 16, &o->max_pipeline);
    case OPT_MAX_CLIENTS:
        return parse_ulong(val, 1, 1u << 20, &o->max_clients);
    case OPT_MAX_ITERATIONS:
        return parse_number(val, 10, 1, UINT64_MAX, &o->max_iterations);
    case OPT_JOB_TIMEOUT:
        return parse_ulong(val, 0, UINT32_MAX, &o->job_timeout_ms);
    case OPT_MAX_ATTEMPTS:
        return parse_ulong(val, 0, 1000, &o->max_attempts);
    case OPT_SHUTDOWN_TIMEOUT:
        return parse_ulong(val, 0, 3600000, &o->shutdown_timeout_ms);
    }
    return -1;
}

/* "--name" of an option, for messages (a short option has a long name too). */
static const char *option_name(int code)
{
    const struct option *opt;
    for (opt = long_options; opt->name; opt++)
        if (opt->val == code)
            return opt->name;
    return "?";
}

static int parse_options(int argc, char **argv, struct options *o)
{
    int code, index;
    static const struct options defaults = {
        .addr = "127.0.0.1",
        .port = 7373,
        .socket_mode = -1,
        .socket_gid = -1,
        .queue = 1024,
        .max_line = 4096,
        .max_pipeline = 64,
        .max_clients = 1024,
        .max_iterations = 100000000ULL,
        .shutdown_timeout_ms = 5000,
    };
    *o = defaults;
    opterr = 0; /* our own messages, with the option's name */
    while ((code = getopt_long(argc, argv, ":u:m:g:p:a:w:q:l:vh", long_options, &index)) != -1) {
        switch (code) {
        case 'h':
            usage(stdout);
            exit(0);
        case 'v':
            o->verbose = 1;
            break;
        case '?':
            fprintf(stderr, "hashd: unknown option: %s\n", argv[optind - 1]);
            return -1;
        case ':':
            fprintf(stderr, "hashd: missing value for %s\n", argv[optind - 1]);
            return -1;
        default:
            if (apply_option(code, optarg, o) != 0) {
                fprintf(stderr, "hashd: bad value for --%s: %s\n", option_name(code), optarg);
                return -1;
            }
        }
    }
    if (optind < argc) {
        fprintf(stderr, "hashd: unexpected argument: %s\n", argv[optind]);
        return -1;
    }
    if (o->unix_path == NULL && o->port == 0) {
        fprintf(stderr, "hashd: nothing to listen on (give --unix and/or --port)\n");
        return -1;
    }
    if (o->unix_path == NULL && (o->socket_mode >= 0 || o->socket_gid >= 0)) {
        fprintf(stderr, "hashd: --socket-mode and --socket-group need --unix\n");
        return -1;
    }
    return 0;
}

/* ------------------------------------------------------------------ helpers */

static void logmsg(const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    fputs("hashd: ", stderr);
    vfprintf(stderr, fmt, ap);
    fputc('\n', stderr);
    va_end(ap);
}

/* Points stderr, where every log line goes, at the --log-file (appending).
 * dup2 swaps it atomically, so the pool's thread never sees it closed. */
static int open_log(const char *path)
{
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0640);
    if (fd < 0) {
        logmsg("--log-file %s: %s", path, strerror(errno));
        return -1;
    }
    if (dup2(fd, STDERR_FILENO) < 0) {
        logmsg("dup2(--log-file): %s", strerror(errno));
        close(fd);
        return -1;
    }
    close(fd);
    return 0;
}

/* Tells systemd (Type=notify) what we are doing, e.g. "READY=1"; does nothing
 * when systemd did not start us. The protocol is one datagram, so no libsystemd. */
static void notify_systemd(const char *state)
{
    const char *path = getenv("NOTIFY_SOCKET");
    struct sockaddr_un sa;
    size_t len;
    int fd;
    if (!path || (path[0] != '/' && path[0] != '@') || (len = strlen(path)) >= sizeof sa.sun_path)
        return;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    memcpy(sa.sun_path, path, len);
    if (path[0] == '@')
        sa.sun_path[0] = '\0'; /* an abstract socket */
    fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0 || sendto(fd, state, strlen(state), MSG_NOSIGNAL, (struct sockaddr *)&sa,
                         (socklen_t)(offsetof(struct sockaddr_un, sun_path) + len)) < 0)
        logmsg("NOTIFY_SOCKET %s: %s", path, strerror(errno));
    if (fd >= 0)
        close(fd);
}

/* The pool calls this from its own thread: stdio's stream lock makes it safe. */
static void pool_log(int level, const char *message, void *arg)
{
    static const char *const levels[] = {"error", "warn", "info"};
    (void)arg;
    logmsg("pool %s: %s", level >= 0 && level <= 2 ? levels[level] : "?", message);
}

static const char *status_name(pool_status st)
{
    static const char *const names[] = {
        [POOL_OK] = "POOL_OK",
        [POOL_EINVAL] = "POOL_EINVAL",
        [POOL_ETOOBIG] = "POOL_ETOOBIG",
        [POOL_EFULL] = "POOL_EFULL",
        [POOL_ETIMEDOUT] = "POOL_ETIMEDOUT",
        [POOL_ENOJOB] = "POOL_ENOJOB",
        [POOL_EWORKER] = "POOL_EWORKER",
        [POOL_EJOBTIMEOUT] = "POOL_EJOBTIMEOUT",
        [POOL_ECANCELED] = "POOL_ECANCELED",
        [POOL_ESPAWN] = "POOL_ESPAWN",
        [POOL_ENOMEM] = "POOL_ENOMEM",
        [POOL_EFORKED] = "POOL_EFORKED",
        [POOL_EINTERNAL] = "POOL_EINTERNAL",
    };
    /* A newer library may return a status this table does not know yet. */
    if ((unsigned)st < sizeof names / sizeof names[0] && names[st] != NULL)
        return names[st];
    return "POOL_EUNKNOWN";
}

/* pool_wait_any returns either a collected job's own status, or its own
 * (POOL_ETIMEDOUT, POOL_ENOJOB, POOL_EINVAL, ...) which collected nothing. */
static int is_job_status(pool_status st)
{
    return st == POOL_OK || st == POOL_EWORKER || st == POOL_EJOBTIMEOUT ||
           st == POOL_ECANCELED || st == POOL_ESPAWN;
}

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

/* ---------------------------------------------------- job id -> (client, slot)
 *
 * pool_wait_any hands back a job id; this table says whose reply it is. Open
 * addressing with linear probing; job ids are never 0, so 0 marks a free entry.
 * It never holds more than queue_capacity entries (each is an outstanding job)
 * and has at least twice as many buckets, so probes stay short. */

struct client;

struct jobref {
    uint64_t job;
    struct client *client;
    size_t slot;
};

struct jobmap {
    struct jobref *tab;
    size_t mask;
};

static size_t jobmap_home(const struct jobmap *m, uint64_t job)
{
    job ^= job >> 33; /* a 64-bit mix, so that consecutive ids spread */
    job *= 0xff51afd7ed558ccdULL;
    job ^= job >> 33;
    return (size_t)job & m->mask;
}

static int jobmap_init(struct jobmap *m, size_t entries)
{
    size_t n = 16;
    while (n < 2 * entries)
        n *= 2;
    m->tab = calloc(n, sizeof *m->tab);
    m->mask = n - 1;
    return m->tab ? 0 : -1;
}

static void jobmap_put(struct jobmap *m, uint64_t job, struct client *c, size_t slot)
{
    size_t i = jobmap_home(m, job);
    while (m->tab[i].job != 0)
        i = (i + 1) & m->mask;
    m->tab[i].job = job;
    m->tab[i].client = c;
    m->tab[i].slot = slot;
}

/* Removes `job`, copying its entry to *out; -1 when it is not there. */
static int jobmap_take(struct jobmap *m, uint64_t job, struct jobref *out)
{
    size_t i = jobmap_home(m, job), j;
    while (m->tab[i].job != job) {
        if (m->tab[i].job == 0)
            return -1;
        i = (i + 1) & m->mask;
    }
    if (out)
        *out = m->tab[i];
    /* Backward-shift deletion: pull later entries of the probe run into the
     * hole unless their home lies cyclically in (hole, j]. No tombstones. */
    for (j = i;;) {
        size_t home;
        j = (j + 1) & m->mask;
        if (m->tab[j].job == 0)
            break;
        home = jobmap_home(m, m->tab[j].job);
        if (i <= j ? (i < home && home <= j) : (i < home || home <= j))
            continue;
        m->tab[i] = m->tab[j];
        i = j;
    }
    m->tab[i].job = 0;
    return 0;
}

/* ------------------------------------------------------------------ state */

/* What an epoll event points at: every watched object starts with one. */
enum watch_kind { W_LISTENER, W_CLIENT, W_SIGNAL, W_POOL };
struct watch {
    enum watch_kind kind;
};

struct listener {
    struct watch w;
    int fd;
    int is_tcp;
};

/* One request's place in its client's reply order. */
struct slot {
    uint64_t job;       /* the pool job computing it; 0 once the reply is known */
    unsigned len;       /* length of reply, 0 while the job runs */
    char reply[REPLY_MAX];
};

struct client {
    struct watch w; /* first: epoll data points here */
    int fd;
    uint32_t events; /* what epoll watches for it now */
    int eof;         /* the peer sends no more requests */
    int discarding;  /* skipping the rest of an over-long line */
    int held;        /* a request waits for pool capacity (on the held list) */
    int touched;     /* on the touched list: a reply of it arrived */
    int dead;        /* closed; freed once the current batch of events is done */
    struct client *prev, *next;         /* all open clients */
    struct client *held_next;           /* FIFO of clients waiting for capacity */
    struct client *touched_next;
    struct client *dead_next;
    char *in;        /* request bytes not yet handled, max_line + 1 of room */
    size_t in_len;
    char *out;       /* reply bytes not yet sent: out[out_off..out_len) */
    size_t out_off, out_len, out_cap;
    struct slot *slots; /* ring of max_pipeline replies owed, oldest first */
    size_t head, count;
};

struct server {
    struct options opt;
    pool *pool;
    int epfd, sigfd, pool_fd;
    int reserve_fd; /* spare descriptor, given up to shed a connection on EMFILE */
    struct watch sig_watch, pool_watch;
    struct listener listeners[2];
    int nlisteners;
    int listeners_paused;
    struct client *clients;
    size_t nclients;
    struct client *held_head, *held_tail;
    struct client *touched;
    struct client *dead;
    struct jobmap jobs;
    int stopping;
    long long deadline_ms;
    struct { /* printed at exit */
        unsigned long long connections, requests, ok, err, held, canceled;
    } count;
};

/* ------------------------------------------------------------------ clients */

static size_t out_pending(const struct client *c)
{
    return c->out_len - c->out_off;
}

/* May we take one more request from c now? */
static int client_may_submit(const struct server *s, const struct client *c)
{
    return !s->stopping && !c->held && c->count < s->opt.max_pipeline &&
           out_pending(c) < OUT_HIGH_WATER;
}

static void held_unlink(struct server *s, struct client *c)
{
    struct client **pp = &s->held_head, *prev = NULL;
    while (*pp && *pp != c) {
        prev = *pp;
        pp = &(*pp)->held_next;
    }
    if (*pp == NULL)
        return;
    *pp = c->held_next;
    if (s->held_tail == c)
        s->held_tail = prev;
    c->held_next = NULL;
    c->held = 0;
}

static void held_push(struct server *s, struct client *c, int at_front)
{
    c->held = 1;
    if (at_front) {
        c->held_next = s->held_head;
        s->held_head = c;
        if (!s->held_tail)
            s->held_tail = c;
    } else {
        c->held_next = NULL;
        if (s->held_tail)
            s->held_tail->held_next = c;
        else
            s->held_head = c;
        s->held_tail = c;
    }
}

static void listeners_set(struct server *s, int paused)
{
    int i;
    if (s->listeners_paused == paused)
        return;
    for (i = 0; i < s->nlisteners; i++) {
        struct epoll_event ev;
        ev.events = paused ? 0 : EPOLLIN;
        ev.data.ptr = &s->listeners[i].w;
        if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, s->listeners[i].fd, &ev) != 0)
            logmsg("epoll_ctl(listener): %s", strerror(errno));
    }
    s->listeners_paused = paused;
}

/* Closes c at once: its jobs are canceled (their results would have nowhere to
 * go), its descriptor closed. The memory waits for the end of the event batch,
 * since later events of the same epoll_wait may still point at it. */
static void client_close(struct server *s, struct client *c)
{
    size_t i;
    if (c->dead)
        return;
    for (i = 0; i < c->count; i++) {
        struct slot *sl = &c->slots[(c->head + i) % s->opt.max_pipeline];
        if (sl->job != 0) {
            /* The canceled job still counts against the queue until collected:
             * pool_fd turns readable and collect_finished drops it. */
            pool_status st = pool_cancel(s->pool, sl->job);
            if (st == POOL_OK)
                s->count.canceled++;
            else if (st != POOL_ENOJOB)
                logmsg("pool_cancel: %s", pool_strerror(st));
            jobmap_take(&s->jobs, sl->job, NULL);
            sl->job = 0;
        }
    }
    if (c->held)
        held_unlink(s, c);
    /* close() alone would leave the registration if the fd were ever dup'ed. */
    if (epoll_ctl(s->epfd, EPOLL_CTL_DEL, c->fd, NULL) != 0)
        logmsg("epoll_ctl(DEL): %s", strerror(errno));
    close(c->fd);
    c->fd = -1;
    if (c->prev)
        c->prev->next = c->next;
    else
        s->clients = c->next;
    if (c->next)
        c->next->prev = c->prev;
    s->nclients--;
    c->dead = 1;
    c->dead_next = s->dead;
    s->dead = c;
    if (!s->stopping && s->nclients < s->opt.max_clients)
        listeners_set(s, 0);
}

static void client_free(struct client *c)
{
    free(c->in);
    free(c->out);
    free(c->slots);
    free(c);
}

static void free_dead_clients(struct server *s)
{
    while (s->dead) {
        struct client *c = s->dead;
        s->dead = c->dead_next;
        client_free(c);
    }
}

static int out_append(struct client *c, const char *data, size_t len)
{
    if (c->out_len + len > c->out_cap && c->out_off > 0) {
        memmove(c->out, c->out + c->out_off, out_pending(c));
        c->out_len -= c->out_off;
        c->out_off = 0;
    }
    if (c->out_len + len > c->out_cap) {
        size_t cap = c->out_cap ? c->out_cap : 4096;
        char *p;
        while (cap < c->out_len + len)
            cap *= 2;
        p = realloc(c->out, cap);
        if (!p)
            return -1;
        c->out = p;
        c->out_cap = cap;
    }
    memcpy(c->out + c->out_len, data, len);
    c->out_len += len;
    return 0;
}

/* Appends a reply slot; the caller has checked there is room. */
static struct slot *slot_push(struct server *s, struct client *c, size_t *index)
{
    size_t i = (c->head + c->count) % s->opt.max_pipeline;
    c->count++;
    c->slots[i].job = 0;
    c->slots[i].len = 0;
    if (index)
        *index = i;
    return &c->slots[i];
}

/* Sets a slot's reply, a whole line ending in LF even if it had to be cut. */
static void slot_printf(struct slot *sl, const char *fmt, ...)
{
    va_list ap;
    int n;
    va_start(ap, fmt);
    n = vsnprintf(sl->reply, sizeof sl->reply, fmt, ap);
    va_end(ap);
    if (n < 0 || (size_t)n >= sizeof sl->reply) { /* truncated: keep the line ending */
        n = (int)sizeof sl->reply - 1;
        sl->reply[n - 1] = '\n';
    }
    sl->len = (unsigned)n;
}

static void slot_set_error(struct slot *sl, pool_status st, const char *detail)
{
    slot_printf(sl, "ERR %s %s%s%s\n", status_name(st), pool_strerror(st), detail ? ": " : "",
                detail ? detail : "");
}

/* The STATS request: the pool's counters and hashd's own, as NAME=VALUE pairs. */
static void slot_set_stats(struct server *s, struct slot *sl)
{
    pool_stats ps;
    pool_status st = pool_stats_get(s->pool, &ps);
    if (st != POOL_OK) {
        slot_set_error(sl, st, "pool_stats_get");
        return;
    }
    slot_printf(sl,
                "STATS workers_configured=%lu workers_alive=%lu jobs_queued=%llu "
                "jobs_running=%llu jobs_ready=%llu jobs_completed=%llu jobs_failed=%llu "
                "jobs_retried=%llu worker_restarts=%llu clients=%zu\n",
                (unsigned long)ps.workers_configured, (unsigned long)ps.workers_alive,
                (unsigned long long)ps.jobs_queued, (unsigned long long)ps.jobs_running,
                (unsigned long long)ps.jobs_ready, (unsigned long long)ps.jobs_completed,
                (unsigned long long)ps.jobs_failed, (unsigned long long)ps.jobs_retried,
                (unsigned long long)ps.worker_restarts, s->nclients);
}

/* Moves the finished replies at the head of the ring, in order, to the output
 * buffer. A reply still computing stops it: later ones wait behind it. */
static int client_move_replies(struct server *s, struct client *c)
{
    while (c->count > 0) {
        struct slot *sl = &c->slots[c->head];
        if (sl->job != 0 || sl->len == 0)
            break;
        if (out_append(c, sl->reply, sl->len) != 0)
            return -1;
        if (sl->reply[0] == 'O')
            s->count.ok++;
        else if (sl->reply[0] == 'E')
            s->count.err++;
        c->head = (c->head + 1) % s->opt.max_pipeline;
        c->count--;
    }
    return 0;
}

enum line_result { LINE_DONE, LINE_HELD, LINE_NOMEM };

/* Handles one request line (without its LF). */
static enum line_result handle_line(struct server *s, struct client *c, const char *line,
                                    size_t len)
{
    const char *msg;
    unsigned long long iterations = 0;
    size_t i = 0;
    uint64_t job;
    size_t index;
    pool_status st;
    struct slot *sl;
    char detail[96];

    if (len > 0 && line[len - 1] == '\r')
        len--;
    if (len == 5 && memcmp(line, "STATS", 5) == 0) {
        slot_set_stats(s, slot_push(s, c, NULL));
        return LINE_DONE;
    }
    /* ITERATIONS: decimal digits, no sign, then one space. */
    while (i < len && line[i] >= '0' && line[i] <= '9') {
        unsigned digit = (unsigned)(line[i] - '0');
        if (iterations > (ULLONG_MAX - digit) / 10) {
            iterations = ULLONG_MAX; /* saturate: rejected as out of range below */
        } else {
            iterations = iterations * 10 + digit;
        }
        i++;
    }
    if (i == 0 || i >= len || line[i] != ' ') {
        slot_set_error(slot_push(s, c, NULL), POOL_EINVAL, "expected ITERATIONS MESSAGE");
        return LINE_DONE;
    }
    if (iterations == 0 || iterations > s->opt.max_iterations) {
        snprintf(detail, sizeof detail, "ITERATIONS must be 1..%llu", s->opt.max_iterations);
        slot_set_error(slot_push(s, c, NULL), POOL_EINVAL, detail);
        return LINE_DONE;
    }
    msg = line + i + 1;

    st = pool_submit(s->pool, msg, len - i - 1, (uint64_t)iterations, &job);
    if (st == POOL_EFULL) {
        s->count.held++;
        return LINE_HELD; /* the line stays in the buffer; retried when a job is collected */
    }
    sl = slot_push(s, c, &index);
    if (st != POOL_OK) {
        /* POOL_ETOOBIG cannot happen (max_message_bytes >= max_line); POOL_ESPAWN
         * means the pool cannot start workers right now: the client may retry. */
        slot_set_error(sl, st, NULL);
        return LINE_DONE;
    }
    sl->job = job;
    jobmap_put(&s->jobs, job, c, index);
    return LINE_DONE;
}

/* Handles the complete lines in c's input buffer for as long as c may submit.
 * LINE_HELD when the pool was full: c must wait for capacity. LINE_NOMEM when
 * its output buffer could not grow. */
static enum line_result client_handle_input(struct server *s, struct client *c)
{
    size_t start = 0, cap = s->opt.max_line + 1;
    enum line_result r = LINE_DONE;

    while (client_may_submit(s, c)) {
        char *line = c->in + start;
        size_t rest = c->in_len - start;
        char *nl = memchr(line, '\n', rest);
        size_t len = nl ? (size_t)(nl - line) : rest;

        if (!nl && !(c->eof && rest > 0)) {
            if (c->discarding) {
                start = c->in_len; /* the middle of an over-long line */
            } else if (rest >= cap) {
                slot_set_error(slot_push(s, c, NULL), POOL_ETOOBIG, "request line too long");
                s->count.requests++;
                c->discarding = 1;
                start = c->in_len;
            }
            break;
        }
        /* A complete line, or the unterminated last one of a half-closed peer. */
        if (c->discarding) {
            c->discarding = 0; /* its end: the next line is a request again */
        } else if ((r = handle_line(s, c, line, len)) == LINE_HELD) {
            break;
        } else {
            s->count.requests++;
        }
        start += nl ? len + 1 : len;
        /* Replies known at once (errors) leave the ring now, so that a client
         * pipelining many bad lines does not stall on --max-pipeline. */
        if (client_move_replies(s, c) != 0) {
            r = LINE_NOMEM;
            break;
        }
    }
    if (start > 0) {
        memmove(c->in, c->in + start, c->in_len - start);
        c->in_len -= start;
    }
    return r;
}

static int client_send(struct client *c)
{
    while (out_pending(c) > 0) {
        /* MSG_NOSIGNAL: a peer that went away is EPIPE here, not a SIGPIPE. */
        ssize_t n = send(c->fd, c->out + c->out_off, out_pending(c), MSG_NOSIGNAL);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return 0; /* EPOLLOUT tells us when to go on */
            if (errno != EPIPE && errno != ECONNRESET)
                logmsg("send: %s", strerror(errno));
            return -1;
        }
        c->out_off += (size_t)n;
    }
    c->out_off = c->out_len = 0;
    return 0;
}

/* Chooses what epoll watches for c: EPOLLIN only while we would take its
 * requests (so a paused client costs nothing), EPOLLOUT only while replies wait
 * for room in its socket buffer. */
static void client_set_events(struct server *s, struct client *c)
{
    uint32_t want = 0;
    if (!c->eof && client_may_submit(s, c))
        want |= EPOLLIN;
    if (out_pending(c) > 0)
        want |= EPOLLOUT;
    if (want != c->events) {
        struct epoll_event ev;
        ev.events = want; /* 0 is fine: EPOLLHUP and EPOLLERR still come */
        ev.data.ptr = &c->w;
        if (epoll_ctl(s->epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
            logmsg("epoll_ctl(client): %s", strerror(errno));
            client_close(s, c);
            return;
        }
        c->events = want;
    }
}

/* Brings c up to date after anything changed: queue finished replies, take
 * the requests it may now submit, send, choose what epoll watches, and close it
 * once it has nothing more to say. A request that met a full pool puts c on the
 * held list: at its front when c was already first in line, else at its end. */
static void client_pump(struct server *s, struct client *c, int held_at_front)
{
    enum line_result r;
    if (c->dead)
        return;
    r = client_move_replies(s, c) != 0 ? LINE_NOMEM : client_handle_input(s, c);
    if (r == LINE_NOMEM) {
        logmsg("out of memory for a client's replies: closing it");
        client_close(s, c);
        return;
    }
    if (r == LINE_HELD)
        held_push(s, c, held_at_front);
    if (client_send(c) != 0) {
        client_close(s, c); /* EPIPE, ECONNRESET: the peer is gone */
        return;
    }
    client_set_events(s, c);
    if (!c->dead && c->count == 0 && out_pending(c) == 0 &&
        (s->stopping || (c->eof && c->in_len == 0 && !c->held)))
        client_close(s, c); /* every request answered, no more coming */
}

static void client_new(struct server *s, int fd)
{
    struct client *c = calloc(1, sizeof *c);
    struct epoll_event ev;
    if (!c)
        goto fail;
    c->w.kind = W_CLIENT;
    c->fd = fd;
    c->in = malloc(s->opt.max_line + 1);
    c->slots = malloc(s->opt.max_pipeline * sizeof *c->slots);
    if (!c->in || !c->slots)
        goto fail;
    c->events = EPOLLIN;
    ev.events = c->events;
    ev.data.ptr = &c->w;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        logmsg("epoll_ctl(ADD client): %s", strerror(errno));
        goto fail;
    }
    c->next = s->clients;
    if (s->clients)
        s->clients->prev = c;
    s->clients = c;
    s->nclients++;
    return;
fail:
    if (c)
        client_free(c);
    close(fd);
}

static void client_readable(struct server *s, struct client *c)
{
    size_t room = s->opt.max_line + 1 - c->in_len;
    ssize_t n;
    if (room == 0 || !client_may_submit(s, c))
        return; /* not reading it now; client_set_events turns EPOLLIN off */
    n = recv(c->fd, c->in + c->in_len, room, 0);
    if (n < 0) {
        if (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR)
            return;
        if (errno != ECONNRESET)
            logmsg("recv: %s", strerror(errno));
        client_close(s, c);
        return;
    }
    if (n == 0)
        c->eof = 1; /* half-close: answer what was asked, then close */
    else
        c->in_len += (size_t)n;
    client_pump(s, c, 0);
}

/* -------------------------------------------------------------- pool events */

/* Gives freed capacity to the clients waiting for it, oldest first. */
static void resume_held(struct server *s)
{
    while (s->held_head && !s->stopping) {
        struct client *c = s->held_head;
        held_unlink(s, c);
        client_pump(s, c, 1); /* held again: still first in line */
        if (c->held)
            break; /* the pool is full again */
    }
}

/* pool_fd polled readable: collect every finished job without blocking. */
static void collect_finished(struct server *s)
{
    for (;;) {
        uint64_t job = 0;
        char hex[POOL_HEX_LEN];
        struct jobref ref;
        struct slot *sl;
        pool_status st = pool_wait_any(s->pool, 0, &job, hex);

        if (!is_job_status(st)) {
            /* POOL_ETIMEDOUT: nothing finished; POOL_ENOJOB: nothing outstanding. */
            if (st != POOL_ETIMEDOUT && st != POOL_ENOJOB)
                logmsg("pool_wait_any: %s", pool_strerror(st));
            break;
        }
        if (jobmap_take(&s->jobs, job, &ref) != 0)
            continue; /* its client went away and we canceled it */
        sl = &ref.client->slots[ref.slot];
        sl->job = 0;
        if (st == POOL_OK) {
            memcpy(sl->reply, "OK ", 3);
            memcpy(sl->reply + 3, hex, POOL_HEX_LEN - 1);
            sl->reply[3 + POOL_HEX_LEN - 1] = '\n';
            sl->len = 3 + POOL_HEX_LEN;
        } else {
            slot_set_error(sl, st, NULL); /* EWORKER, EJOBTIMEOUT, ESPAWN */
        }
        if (!ref.client->touched) {
            ref.client->touched = 1;
            ref.client->touched_next = s->touched;
            s->touched = ref.client;
        }
    }
    /* Waiters first, so that the clients whose replies just came in do not take
     * all the freed capacity for their next requests. */
    resume_held(s);
    while (s->touched) {
        struct client *c = s->touched;
        s->touched = c->touched_next;
        c->touched = 0;
        client_pump(s, c, 0);
    }
}

/* ------------------------------------------------------------------ setup */

static int listen_tcp(struct server *s, struct listener *l, unsigned *port_out)
{
    struct sockaddr_in sa;
    socklen_t salen = sizeof sa;
    int one = 1;
    memset(&sa, 0, sizeof sa);
    sa.sin_family = AF_INET;
    sa.sin_port = htons((unsigned short)(s->opt.port > 0 ? s->opt.port : 0));
    if (inet_pton(AF_INET, s->opt.addr, &sa.sin_addr) != 1) {
        logmsg("--addr %s: not an IPv4 address", s->opt.addr);
        return -1;
    }
    l->fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        logmsg("socket: %s", strerror(errno));
        return -1;
    }
    l->w.kind = W_LISTENER;
    l->is_tcp = 1;
    if (setsockopt(l->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(l->fd, (struct sockaddr *)&sa, sizeof sa) != 0 || listen(l->fd, SOMAXCONN) != 0 ||
        getsockname(l->fd, (struct sockaddr *)&sa, &salen) != 0) {
        logmsg("listen on %s:%ld: %s", s->opt.addr, s->opt.port, strerror(errno));
        return -1;
    }
    *port_out = ntohs(sa.sin_port);
    return 0;
}

static int listen_unix(struct server *s, struct listener *l)
{
    struct sockaddr_un sa;
    memset(&sa, 0, sizeof sa);
    sa.sun_family = AF_UNIX;
    if (strlen(s->opt.unix_path) >= sizeof sa.sun_path) {
        logmsg("--unix %s: path too long", s->opt.unix_path);
        return -1;
    }
    strcpy(sa.sun_path, s->opt.unix_path);
    l->fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (l->fd < 0) {
        logmsg("socket: %s", strerror(errno));
        return -1;
    }
    l->w.kind = W_LISTENER;
    l->is_tcp = 0;
    if (bind(l->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
        /* A file is there. If it is a socket nobody answers on, it is the
         * leftover of a daemon that did not exit cleanly: replace it. Never
         * steal a live socket, never remove anything else. */
        struct stat st;
        int probe, live, err;
        if (errno != EADDRINUSE || lstat(s->opt.unix_path, &st) != 0 || !S_ISSOCK(st.st_mode)) {
            logmsg("bind %s: %s", s->opt.unix_path,
                   errno == EADDRINUSE ? "exists and is not a socket" : strerror(errno));
            return -1;
        }
        probe = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        live = probe >= 0 && connect(probe, (struct sockaddr *)&sa, sizeof sa) == 0;
        err = errno;
        if (probe >= 0)
            close(probe);
        if (live || err != ECONNREFUSED) {
            logmsg("--unix %s: %s", s->opt.unix_path,
                   live ? "another daemon is listening there" : strerror(err));
            return -1;
        }
        if (unlink(s->opt.unix_path) != 0 || bind(l->fd, (struct sockaddr *)&sa, sizeof sa) != 0) {
            logmsg("bind %s: %s", s->opt.unix_path, strerror(errno));
            return -1;
        }
    }
    /* Before listen(): until then nobody can connect, whatever the mode. */
    if (s->opt.socket_gid >= 0 && chown(s->opt.unix_path, (uid_t)-1, (gid_t)s->opt.socket_gid) != 0) {
        logmsg("--socket-group %ld on %s: %s", s->opt.socket_gid, s->opt.unix_path, strerror(errno));
        unlink(s->opt.unix_path);
        return -1;
    }
    if (s->opt.socket_mode >= 0 && chmod(s->opt.unix_path, (mode_t)s->opt.socket_mode) != 0) {
        logmsg("--socket-mode %lo on %s: %s", s->opt.socket_mode, s->opt.unix_path, strerror(errno));
        unlink(s->opt.unix_path);
        return -1;
    }
    if (listen(l->fd, SOMAXCONN) != 0) {
        logmsg("listen %s: %s", s->opt.unix_path, strerror(errno));
        unlink(s->opt.unix_path);
        return -1;
    }
    return 0;
}

static void close_listeners(struct server *s)
{
    int i;
    for (i = 0; i < s->nlisteners; i++) {
        struct listener *l = &s->listeners[i];
        if (l->fd < 0)
            continue;
        epoll_ctl(s->epfd, EPOLL_CTL_DEL, l->fd, NULL);
        close(l->fd);
        l->fd = -1;
        if (!l->is_tcp)
            unlink(s->opt.unix_path);
    }
    s->nlisteners = 0;
}

static void accept_clients(struct server *s, struct listener *l)
{
    for (;;) {
        int fd, one = 1;
        if (s->nclients >= s->opt.max_clients) {
            listeners_set(s, 1); /* new connections wait in the backlog */
            return;
        }
        fd = accept4(l->fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EAGAIN || errno == EWOULDBLOCK)
                return;
            if ((errno == EMFILE || errno == ENFILE) && s->reserve_fd >= 0) {
                /* Out of descriptors: the pending connection would keep the
                 * level-triggered listener readable forever. Use the spare
                 * descriptor to accept and close it, then take a new spare. */
                close(s->reserve_fd);
                fd = accept4(l->fd, NULL, NULL, SOCK_CLOEXEC);
                if (fd >= 0)
                    close(fd);
                s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
                logmsg("out of descriptors: refused a connection");
                return;
            }
            logmsg("accept: %s", strerror(errno));
            /* Do not spin on a listener we cannot serve: wait for a close. */
            listeners_set(s, 1);
            return;
        }
        /* Replies are small and the client waits for them: do not let Nagle
         * hold them back. */
        if (l->is_tcp && setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one) != 0)
            logmsg("TCP_NODELAY: %s", strerror(errno));
        client_new(s, fd);
        s->count.connections++;
    }
}

static int watch_fd(struct server *s, int fd, struct watch *w)
{
    struct epoll_event ev;
    ev.events = EPOLLIN;
    ev.data.ptr = w;
    if (epoll_ctl(s->epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
        logmsg("epoll_ctl(ADD): %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* SIGTERM/SIGINT: stop taking work, let the jobs in flight finish. */
static void begin_shutdown(struct server *s)
{
    struct client *c, *next;
    s->stopping = 1;
    s->deadline_ms = now_ms() + (long long)s->opt.shutdown_timeout_ms;
    notify_systemd("STOPPING=1");
    close_listeners(s);
    /* Requests still waiting for capacity will not be submitted now. */
    while (s->held_head)
        held_unlink(s, s->held_head);
    for (c = s->clients; c; c = next) {
        next = c->next;
        client_pump(s, c, 0); /* reads off; closes the clients owed nothing */
    }
}

static int handle_signals(struct server *s)
{
    struct signalfd_siginfo si;
    ssize_t n;
    while ((n = read(s->sigfd, &si, sizeof si)) == (ssize_t)sizeof si) {
        if (si.ssi_signo == SIGHUP) {
            /* logrotate's postrotate, or systemctl reload: nothing else to reload. */
            if (s->opt.log_path && open_log(s->opt.log_path) == 0)
                logmsg("SIGHUP: reopened %s", s->opt.log_path);
            else if (!s->opt.log_path)
                logmsg("SIGHUP: no --log-file to reopen, nothing to reload");
        } else if (!s->stopping) {
            logmsg("signal %u: finishing the jobs in flight", si.ssi_signo);
            begin_shutdown(s);
        } else {
            logmsg("signal %u again: exiting now", si.ssi_signo);
            s->deadline_ms = now_ms();
        }
    }
    if (n < 0 && errno != EAGAIN && errno != EINTR) {
        logmsg("read(signalfd): %s", strerror(errno));
        return -1;
    }
    return 0;
}

/* Frees everything; safe on a partly set-up server. */
static int server_teardown(struct server *s)
{
    pool_status st;
    while (s->clients)
        client_close(s, s->clients);
    free_dead_clients(s);
    close_listeners(s);
    /* Drops any job still outstanding, stops and reaps the workers. */
    st = pool_destroy(s->pool);
    s->pool = NULL;
    if (st != POOL_OK)
        logmsg("pool_destroy: %s", pool_strerror(st));
    if (s->sigfd >= 0)
        close(s->sigfd);
    if (s->epfd >= 0)
        close(s->epfd);
    if (s->reserve_fd >= 0)
        close(s->reserve_fd);
    free(s->jobs.tab);
    return st == POOL_OK ? 0 : -1;
}

int main(int argc, char **argv)
{
    static struct server srv; /* zeroed */
    struct server *s = &srv;
    struct epoll_event events[MAX_EVENTS];
    pool_config cfg;
    sigset_t mask;
    pool_status st;
    unsigned tcp_port = 0;
    int rc = 1, i;

    s->epfd = s->sigfd = s->reserve_fd = -1;
    s->listeners[0].fd = s->listeners[1].fd = -1;
    if (parse_options(argc, argv, &s->opt) != 0) {
        usage(stderr);
        return 2;
    }
    if (s->opt.log_path && open_log(s->opt.log_path) != 0)
        return 1;

    /* Block the signals we take through signalfd before any thread exists, so
     * that no thread (the pool's included) ever takes their default action.
     * The pool's processes set their own masks. Run from a shell, Ctrl-C sends
     * SIGINT to the whole process group, pool processes included: the pool
     * replaces them and re-runs their jobs (an attempt each). A daemon started
     * by a supervisor gets its signals alone. SIGPIPE keeps its disposition:
     * every send() passes MSG_NOSIGNAL. */
    sigemptyset(&mask);
    sigaddset(&mask, SIGTERM);
    sigaddset(&mask, SIGINT);
    sigaddset(&mask, SIGHUP);
    if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0) {
        logmsg("sigprocmask: %s", strerror(errno));
        return 1;
    }

    /* Create the pool early: its fork server is a copy of this process as it
     * is now, so the smaller the better. */
    pool_config_init(&cfg);
    cfg.workers = (uint32_t)s->opt.workers;
    cfg.queue_capacity = (uint32_t)s->opt.queue;
    cfg.max_message_bytes = (uint32_t)s->opt.max_line; /* a message always fits */
    cfg.job_timeout_ms = (uint32_t)s->opt.job_timeout_ms;
    cfg.max_attempts = (uint32_t)s->opt.max_attempts;
    if (s->opt.verbose) {
        cfg.log = pool_log;
        cfg.log_arg = NULL;
    }
    st = pool_create(&cfg, &s->pool);
    if (st != POOL_OK) {
        logmsg("pool_create: %s", pool_strerror(st));
        return 1;
    }
    s->pool_fd = pool_fd(s->pool);
    if (jobmap_init(&s->jobs, s->opt.queue ? s->opt.queue : 65536) != 0) {
        logmsg("out of memory");
        goto out;
    }

    s->epfd = epoll_create1(EPOLL_CLOEXEC);
    s->sigfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC);
    s->reserve_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
    if (s->epfd < 0 || s->sigfd < 0 || s->pool_fd < 0) {
        logmsg("setup: %s", s->pool_fd < 0 ? "pool_fd failed" : strerror(errno));
        goto out;
    }
    s->sig_watch.kind = W_SIGNAL;
    s->pool_watch.kind = W_POOL;
    if (watch_fd(s, s->sigfd, &s->sig_watch) != 0 || watch_fd(s, s->pool_fd, &s->pool_watch) != 0)
        goto out;
    if (s->opt.port != 0) {
        if (listen_tcp(s, &s->listeners[s->nlisteners++], &tcp_port) != 0)
            goto out;
    }
    if (s->opt.unix_path) {
        if (listen_unix(s, &s->listeners[s->nlisteners]) != 0) {
            if (s->listeners[s->nlisteners].fd >= 0)
                close(s->listeners[s->nlisteners].fd);
            goto out;
        }
        s->nlisteners++;
    }
    for (i = 0; i < s->nlisteners; i++)
        if (watch_fd(s, s->listeners[i].fd, &s->listeners[i].w) != 0)
            goto out;

    /* One machine-readable line for whoever started us (tests, supervisors). */
    printf("READY pid=%ld", (long)getpid());
    if (s->opt.port != 0)
        printf(" tcp=%s:%u", s->opt.addr, tcp_port);
    if (s->opt.unix_path)
        printf(" unix=%s", s->opt.unix_path);
    printf("\n");
    fflush(stdout);
    notify_systemd("READY=1");

    for (;;) {
        int n, timeout = -1;
        if (s->stopping) {
            long long left = s->deadline_ms - now_ms();
            if (s->nclients == 0)
                break; /* every reply delivered */
            if (left <= 0) {
                logmsg("shutdown timeout: dropping %zu connections", s->nclients);
                break;
            }
            timeout = left > INT_MAX ? INT_MAX : (int)left;
        }
        n = epoll_wait(s->epfd, events, MAX_EVENTS, timeout);
        if (n < 0) {
            if (errno == EINTR)
                continue;
            logmsg("epoll_wait: %s", strerror(errno));
            goto out;
        }
        for (i = 0; i < n; i++) {
            struct watch *w = events[i].data.ptr;
            uint32_t ev = events[i].events;
            switch (w->kind) {
            case W_SIGNAL:
                if (handle_signals(s) != 0)
                    goto out;
                break;
            case W_POOL:
                collect_finished(s);
                break;
            case W_LISTENER:
                if (!s->stopping)
                    accept_clients(s, (struct listener *)w);
                break;
            case W_CLIENT: {
                struct client *c = (struct client *)w;
                if (c->dead)
                    break; /* closed earlier in this batch */
                if (ev & (EPOLLERR | EPOLLHUP)) {
                    /* The peer is gone both ways: nobody can read replies. */
                    client_close(s, c);
                    break;
                }
                if (ev & EPOLLOUT)
                    client_pump(s, c, 0);
                if ((ev & EPOLLIN) && !c->dead)
                    client_readable(s, c);
                break;
            }
            }
        }
        free_dead_clients(s);
    }
    logmsg("served %llu requests on %llu connections: %llu OK, %llu ERR; waited for pool "
           "capacity %llu times; canceled %llu jobs of departed clients",
           s->count.requests, s->count.connections, s->count.ok, s->count.err, s->count.held,
           s->count.canceled);
    rc = 0;
out:
    if (server_teardown(s) != 0)
        rc = 1;
    return rc;
}
