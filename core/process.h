/* process.h: process-wide set-up shared by chatd and the gateway. */
#ifndef CHAT_PROCESS_H
#define CHAT_PROCESS_H

#include <stdbool.h>
#include <stddef.h>
#include <sys/types.h>

/* Raises the soft limit on open descriptors to the hard limit: each stream
 * holds a few (client, upstream, maybe database). Logs when it cannot. */
void process_raise_fd_limit(void);

/* The start time of process pid on this host (/proc/<pid>/stat field 22,
 * clock ticks after boot): with the pid, it names one process for good, as
 * pids are reused. False if pid does not exist (or /proc cannot say). */
bool process_start_time(pid_t pid, long long *out);

/* True if a process pid exists on this host (even one we may not signal). */
bool process_alive(pid_t pid);

/* This host's name as chatd writes it in "host:pid" ids: the one set by
 * process_set_host, else the system host name; out holds len bytes. */
void process_host(char *out, size_t len);

/* Names this host (config host_id; empty: the system host name). Hosts
 * sharing one database need distinct names: the sweep judges owners on its
 * own host by pid and the others by heartbeat. Call before any thread. */
void process_set_host(const char *id);

#endif
