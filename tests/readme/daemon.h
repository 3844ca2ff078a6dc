/* What README.md's daemon fragment takes from the daemon around it. */
#define _GNU_SOURCE
#include <stdint.h>
#include <stdlib.h>
#include <sys/epoll.h>
#include <md5pool.h>

struct client;
extern int ep;
extern int pool_tag;
extern struct client *client;
extern const char *msg;
extern size_t len;
extern uint64_t iterations;
void remember(uint64_t job, struct client *c);
struct client *forget(uint64_t job);
void pause_reading(struct client *c);
void reply_error(struct client *c, pool_status st);
void reply(struct client *c, uint64_t job, pool_status st, const char *hex);
void resume_paused_clients(void);
