/* server.c: the process: listening socket, signals, the epoll loop. */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "conn.h"
#include "fail.h"
#include "realtime.h"
#include "server.h"
#include "sse.h"
#include "timer.h"

#define EVENTS_MAX	256

struct server srv = { .epfd = -1, .lfd = -1, .sfd = -1, .spare_fd = -1 };

static struct source listen_src = { SRC_LISTEN };

static struct source signal_src = { SRC_SIGNAL };

static uint64_t
clock_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

static void
srv_accept(void)
{
	int fd, one = 1, i;

	for (i = 0; i < 256; i++) {
		fd = accept4(srv.lfd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
		if (fd < 0) {
			if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
				continue;
			if (errno == EAGAIN || errno == EWOULDBLOCK)
				return;
			if ((errno == EMFILE || errno == ENFILE) && srv.spare_fd >= 0) {
				/* Out of descriptors: accept and drop one so the
				 * listen socket does not stay readable forever. */
				close(srv.spare_fd);
				fd = accept(srv.lfd, NULL, NULL);
				if (fd >= 0)
					close(fd);
				srv.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
				fprintf(stderr, "fake-upstream: out of file descriptors\n");
				return;
			}
			fprintf(stderr, "fake-upstream: accept: %s\n", strerror(errno));
			return;
		}
		/* TCP_NODELAY: every SSE event (and split piece) leaves now. */
		if (setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one)) != 0 ||
		    conn_new(fd) == NULL)
			close(fd);
	}
}

int
srv_listen(const char *spec)
{
	struct addrinfo hints, *res = NULL, *ai;
	char host[256], port[16];
	const char *colon = strrchr(spec, ':');
	size_t hl;
	int fd = -1, one = 1, rc;

	if (colon == NULL || colon == spec || colon[1] == '\0')
		return -1;
	hl = (size_t)(colon - spec);
	if (spec[0] == '[' && hl >= 2 && spec[hl - 1] == ']') {
		spec++;
		hl -= 2;
	}
	if (hl >= sizeof(host) || strlen(colon + 1) >= sizeof(port))
		return -1;
	memcpy(host, spec, hl);
	host[hl] = '\0';
	memcpy(port, colon + 1, strlen(colon + 1) + 1);

	memset(&hints, 0, sizeof(hints));
	hints.ai_family = AF_UNSPEC;
	hints.ai_socktype = SOCK_STREAM;
	hints.ai_flags = AI_PASSIVE | AI_NUMERICSERV;
	if ((rc = getaddrinfo(host, port, &hints, &res)) != 0) {
		fprintf(stderr, "fake-upstream: %s: %s\n", spec, gai_strerror(rc));
		return -1;
	}
	for (ai = res; ai != NULL; ai = ai->ai_next) {
		fd = socket(ai->ai_family, ai->ai_socktype | SOCK_NONBLOCK | SOCK_CLOEXEC,
		    ai->ai_protocol);
		if (fd < 0)
			continue;
		if (setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one)) == 0 &&
		    bind(fd, ai->ai_addr, ai->ai_addrlen) == 0 &&
		    listen(fd, 4096) == 0)
			break;
		close(fd);
		fd = -1;
	}
	freeaddrinfo(res);
	if (fd < 0)
		fprintf(stderr, "fake-upstream: cannot listen on %s: %s\n", spec,
		    strerror(errno));
	return fd;
}

bool
srv_announce(void)
{
	struct sockaddr_storage ss;
	socklen_t sl = sizeof(ss);
	char addr[INET6_ADDRSTRLEN];
	int rc;

	if (getsockname(srv.lfd, (struct sockaddr *)&ss, &sl) != 0)
		return false;
	if (ss.ss_family == AF_INET6) {
		struct sockaddr_in6 *s6 = (struct sockaddr_in6 *)&ss;

		if (inet_ntop(AF_INET6, &s6->sin6_addr, addr, sizeof(addr)) == NULL)
			return false;
		rc = printf("fake-upstream listening on [%s]:%u\n", addr,
		    (unsigned int)ntohs(s6->sin6_port));
	} else {
		struct sockaddr_in *s4 = (struct sockaddr_in *)&ss;

		if (inet_ntop(AF_INET, &s4->sin_addr, addr, sizeof(addr)) == NULL)
			return false;
		rc = printf("fake-upstream listening on %s:%u\n", addr,
		    (unsigned int)ntohs(s4->sin_port));
	}
	return rc >= 0 && fflush(stdout) == 0;
}

bool
srv_setup(void)
{
	struct epoll_event ev;
	struct rlimit rl;
	sigset_t mask;

	/* Thousands of test connections need more than the default 1024. */
	if (getrlimit(RLIMIT_NOFILE, &rl) == 0 && rl.rlim_cur < rl.rlim_max) {
		rl.rlim_cur = rl.rlim_max;
		if (setrlimit(RLIMIT_NOFILE, &rl) != 0)
			fprintf(stderr, "fake-upstream: setrlimit: %s\n", strerror(errno));
	}
	if (signal(SIGPIPE, SIG_IGN) == SIG_ERR)
		return false;
	sigemptyset(&mask);
	sigaddset(&mask, SIGTERM);
	sigaddset(&mask, SIGINT);
	if (sigprocmask(SIG_BLOCK, &mask, NULL) != 0)
		return false;
	if ((srv.sfd = signalfd(-1, &mask, SFD_NONBLOCK | SFD_CLOEXEC)) < 0)
		return false;
	if ((srv.epfd = epoll_create1(EPOLL_CLOEXEC)) < 0)
		return false;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = &listen_src;
	if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.lfd, &ev) != 0)
		return false;
	ev.data.ptr = &signal_src;
	if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, srv.sfd, &ev) != 0)
		return false;
	srv.spare_fd = open("/dev/null", O_RDONLY | O_CLOEXEC);
	return true;
}

void
srv_cleanup(void)
{
	conn_destroy_all();
	timers_free();
	fail_reset();
	realtime_free();
	sse_free();
	if (srv.spare_fd >= 0)
		close(srv.spare_fd);
	if (srv.sfd >= 0)
		close(srv.sfd);
	if (srv.lfd >= 0)
		close(srv.lfd);
	if (srv.epfd >= 0)
		close(srv.epfd);
}

int
srv_run(void)
{
	struct epoll_event evs[EVENTS_MAX];
	struct signalfd_siginfo si;
	bool quit = false;
	int i, n;

	while (!quit) {
		/* Fresh time: the last batch may have taken a while, and a
		 * stale clock would make every sleep that much too long. */
		srv.now = clock_ms();
		n = epoll_wait(srv.epfd, evs, EVENTS_MAX, timers_timeout());
		if (n < 0 && errno != EINTR) {
			fprintf(stderr, "fake-upstream: epoll_wait: %s\n", strerror(errno));
			srv_cleanup();
			return 1;
		}
		srv.now = clock_ms();
		for (i = 0; i < n; i++) {
			struct source *src = evs[i].data.ptr;

			if (src->kind == SRC_LISTEN)
				srv_accept();
			else if (src->kind == SRC_SIGNAL) {
				while (read(srv.sfd, &si, sizeof(si)) == (ssize_t)sizeof(si))
					quit = true;
			} else
				conn_on_event((struct conn *)src, evs[i].events);
		}
		timers_run();
	}
	srv_cleanup();
	return 0;
}
