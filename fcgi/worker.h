/* worker.h: one FastCGI worker process: T threads accepting on the shared
 * socket, each serving one request at a time, and the process's event loop,
 * to which a thread hands each stream (fcgi_conn.h) before it accepts again. */
#ifndef CHAT_WORKER_H
#define CHAT_WORKER_H

struct config;

/* Runs the worker until SIGTERM (drain in-flight requests, then return) or
 * until it served cfg->max_requests requests. Returns the exit status. Call
 * in the child after fork, with all signals blocked. */
int worker_run(const struct config *cfg, int listen_fd, unsigned generation);

/* Writes "host:pid", the tag of the replies a worker generates (the master
 * marks them interrupted if the worker dies). */
#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>
bool worker_id_format(char *out, size_t len, pid_t pid);

#endif
