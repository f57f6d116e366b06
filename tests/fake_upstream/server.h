/* server.h: the process: listening socket, signals, the epoll loop. */
#ifndef FAKE_UPSTREAM_SERVER_H
#define FAKE_UPSTREAM_SERVER_H

#include <stdbool.h>
#include <stdint.h>

/* What an epoll event's data.ptr points at: the first member says which. */

enum src_kind { SRC_LISTEN, SRC_SIGNAL, SRC_CONN };

struct source {
	enum src_kind	kind;
};

/* Process-wide state. The options are set once by main before srv_setup. */
struct server {
	int		 epfd, lfd, sfd, spare_fd;
	const char	*api_key;	/* --api-key; NULL: any key is accepted */
	long		 delay_ms;	/* --delay-ms: default token interval */
	bool		 quiet;		/* --quiet: no request log */
	uint64_t	 now;		/* monotonic ms, refreshed every loop turn */
};

extern struct server srv;

/* Opens a non-blocking listening socket on "HOST:PORT" ("[V6]:PORT" too).
 * Returns the fd, or -1 after printing why. */
int	srv_listen(const char *spec);

/* Raises the fd limit, routes SIGTERM/SIGINT to a signalfd and creates the
 * epoll set with srv.lfd in it. Returns false with errno set on failure. */
bool	srv_setup(void);

/* Prints the one readiness line (with the real port when PORT was 0). */
bool	srv_announce(void);

/* Runs the loop until SIGTERM or SIGINT, then srv_cleanup. Returns the exit
 * status for main. */
int	srv_run(void);

/* Destroys every connection and frees all state; closes the fds. */
void	srv_cleanup(void);

#endif
