/* pool.h: the master process: the listening socket, prefork workers,
 * respawn, recycle, graceful reload (SIGHUP) and drain (SIGTERM). */
#ifndef CHAT_POOL_H
#define CHAT_POOL_H

struct config;

/* Opens the FastCGI listening socket named by cfg->listen (a unix socket
 * path, or host:port). Returns the fd or -1 after logging why. */
int pool_listen(const struct config *cfg);

/* Runs the master until SIGTERM/SIGINT and every worker has exited. cfg and
 * listen_fd are owned by the pool from here on (cfg replaced on reload;
 * listen_fd closed, and a unix socket removed, when stopping begins).
 * config_path is re-read on SIGHUP. Returns the process exit status. */
int pool_run(struct config *cfg, const char *config_path, int listen_fd);

#endif
