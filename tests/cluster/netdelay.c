/* netdelay.c: delay and loss on a link, for kernels without sch_netem.
 *
 *   netdelay --queue N --delay-ms D --loss-pct P
 *
 * The cluster suite's db host sends its link's packets to netfilter queue N
 * (nftables `queue num N bypass`, scripts/cluster impair); this program
 * gets each packet's id (metadata only, never the payload) and gives the
 * verdict: drop with probability P %, else accept D ms after it arrived,
 * in arrival order, as `tc qdisc ... netem delay D loss P` would. It speaks
 * nfnetlink_queue over a raw netlink socket (the kernel's own headers, no
 * library). If it dies, `bypass` lets packets pass undelayed. Linux only;
 * a test tool, never installed. */
#include <arpa/inet.h>
#include <errno.h>
#include <linux/netfilter.h>
#include <linux/netfilter/nfnetlink.h>
#include <linux/netfilter/nfnetlink_queue.h>
#include <linux/netlink.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define HELD_MAX  65536     /* packets waiting for their verdict */
#define RECV_BYTES 65536

struct held {
	uint32_t id;        /* the kernel's packet id */
	int64_t  due_ns;    /* CLOCK_MONOTONIC */
};

static struct held held[HELD_MAX];
static size_t held_head, held_n;
static volatile sig_atomic_t stopping;
static unsigned long long seen, dropped;   /* for the summary at exit */
static int nl = -1;
static uint16_t queue_num;

static int64_t
now_ns(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (int64_t)ts.tv_sec * 1000000000 + ts.tv_nsec;
}

static void
on_signal(int sig)
{
	(void)sig;
	stopping = 1;
}

/* Appends an attribute to the message in buf (room for it is the caller's). */
static void
attr_put(struct nlmsghdr *nh, uint16_t type, const void *data, size_t len)
{
	struct nlattr *a = (struct nlattr *)((char *)nh + NLMSG_ALIGN(nh->nlmsg_len));

	a->nla_type = type;
	a->nla_len = (uint16_t)(NLA_HDRLEN + len);
	memcpy((char *)a + NLA_HDRLEN, data, len);
	nh->nlmsg_len = NLMSG_ALIGN(nh->nlmsg_len) + NLA_ALIGN(a->nla_len);
}

/* Starts a queue message of type in buf; family AF_UNSPEC unless given. */
static struct nlmsghdr *
msg_start(char *buf, uint16_t type, uint8_t family)
{
	struct nlmsghdr *nh = (struct nlmsghdr *)buf;
	struct nfgenmsg *g;

	memset(buf, 0, 256);
	nh->nlmsg_len = NLMSG_LENGTH(sizeof(*g));
	nh->nlmsg_type = (uint16_t)((NFNL_SUBSYS_QUEUE << 8) | type);
	nh->nlmsg_flags = NLM_F_REQUEST;
	g = NLMSG_DATA(nh);
	g->nfgen_family = family;
	g->version = NFNETLINK_V0;
	g->res_id = htons(queue_num);
	return nh;
}

static int
msg_send(struct nlmsghdr *nh)
{
	struct sockaddr_nl to = { .nl_family = AF_NETLINK };

	if (sendto(nl, nh, nh->nlmsg_len, 0, (struct sockaddr *)&to, sizeof(to)) < 0) {
		perror("netdelay: sendto");
		return -1;
	}
	return 0;
}

static int
verdict(uint32_t id, uint32_t v)
{
	char buf[256];
	struct nlmsghdr *nh = msg_start(buf, NFQNL_MSG_VERDICT, AF_UNSPEC);
	struct nfqnl_msg_verdict_hdr vh = { .verdict = htonl(v), .id = htonl(id) };

	attr_put(nh, NFQA_VERDICT_HDR, &vh, sizeof(vh));
	return msg_send(nh);
}

/* Binds queue_num for IPv4, metadata only. */
static int
bind_queue(void)
{
	char buf[256];
	struct nlmsghdr *nh = msg_start(buf, NFQNL_MSG_CONFIG, AF_INET);
	struct nfqnl_msg_config_cmd cmd = { .command = NFQNL_CFG_CMD_BIND, .pf = htons(AF_INET) };
	struct nfqnl_msg_config_params params = { .copy_range = htonl(0), .copy_mode = NFQNL_COPY_META };
	uint32_t maxlen = htonl(HELD_MAX);

	attr_put(nh, NFQA_CFG_CMD, &cmd, sizeof(cmd));
	if (msg_send(nh) != 0)
		return -1;
	nh = msg_start(buf, NFQNL_MSG_CONFIG, AF_INET);
	attr_put(nh, NFQA_CFG_PARAMS, &params, sizeof(params));
	attr_put(nh, NFQA_CFG_QUEUE_MAXLEN, &maxlen, sizeof(maxlen));
	return msg_send(nh);
}

/* The packet id of one NFQNL_MSG_PACKET, or -1. */
static int64_t
packet_id(const struct nlmsghdr *nh)
{
	const char *p = (const char *)NLMSG_DATA(nh) + NLMSG_ALIGN(sizeof(struct nfgenmsg));
	const char *end = (const char *)nh + nh->nlmsg_len;

	while (p + NLA_HDRLEN <= end) {
		const struct nlattr *a = (const struct nlattr *)p;

		if (a->nla_len < NLA_HDRLEN || p + a->nla_len > end)
			break;
		if ((a->nla_type & NLA_TYPE_MASK) == NFQA_PACKET_HDR &&
		    a->nla_len >= NLA_HDRLEN + sizeof(struct nfqnl_msg_packet_hdr)) {
			struct nfqnl_msg_packet_hdr ph;

			memcpy(&ph, p + NLA_HDRLEN, sizeof(ph));
			return ntohl(ph.packet_id);
		}
		p += NLA_ALIGN(a->nla_len);
	}
	return -1;
}

/* Accepts every held packet that is due; returns ms until the next one (-1: none). */
static int
release_due(void)
{
	int64_t now = now_ns();

	while (held_n > 0) {
		struct held *h = &held[held_head];

		if (h->due_ns > now)
			return (int)((h->due_ns - now + 999999) / 1000000);
		if (verdict(h->id, NF_ACCEPT) != 0)
			return -2;
		held_head = (held_head + 1) % HELD_MAX;
		held_n--;
	}
	return -1;
}

static int
usage(void)
{
	fprintf(stderr, "usage: netdelay --queue N --delay-ms D --loss-pct P\n");
	return 2;
}

int
main(int argc, char **argv)
{
	static char buf[RECV_BYTES];
	struct sockaddr_nl me = { .nl_family = AF_NETLINK };
	long queue = -1, delay_ms = -1, loss_pct = 0;
	struct sigaction sa;

	for (int i = 1; i + 1 < argc; i += 2) {
		char *end;
		long v = strtol(argv[i + 1], &end, 10);

		if (*argv[i + 1] == '\0' || *end != '\0')
			return usage();
		if (strcmp(argv[i], "--queue") == 0 && v >= 0 && v <= 65535)
			queue = v;
		else if (strcmp(argv[i], "--delay-ms") == 0 && v >= 0 && v <= 10000)
			delay_ms = v;
		else if (strcmp(argv[i], "--loss-pct") == 0 && v >= 0 && v <= 100)
			loss_pct = v;
		else
			return usage();
	}
	if (argc % 2 != 1 || queue < 0 || delay_ms < 0)
		return usage();
	queue_num = (uint16_t)queue;
	memset(&sa, 0, sizeof(sa));
	sa.sa_handler = on_signal;
	if (sigaction(SIGTERM, &sa, NULL) != 0 || sigaction(SIGINT, &sa, NULL) != 0)
		return 1;
	srand((unsigned)(now_ns() ^ getpid()));
	if ((nl = socket(AF_NETLINK, SOCK_RAW, NETLINK_NETFILTER)) < 0 ||
	    bind(nl, (struct sockaddr *)&me, sizeof(me)) != 0) {
		perror("netdelay: netlink socket");
		return 1;
	}
	if (bind_queue() != 0)
		return 1;
	printf("netdelay: queue %ld, %ld ms, %ld %% loss\n", queue, delay_ms, loss_pct);
	(void)fflush(stdout);
	while (!stopping) {
		struct pollfd pfd = { .fd = nl, .events = POLLIN };
		int wait_ms = release_due();
		ssize_t n;

		if (wait_ms == -2)
			return 1;
		if (poll(&pfd, 1, wait_ms < 0 ? 500 : wait_ms) < 0) {
			if (errno == EINTR)
				continue;
			perror("netdelay: poll");
			return 1;
		}
		if (!(pfd.revents & POLLIN))
			continue;
		if ((n = recv(nl, buf, sizeof(buf), MSG_DONTWAIT)) < 0) {
			if (errno == EINTR || errno == EAGAIN || errno == ENOBUFS)
				continue;   /* ENOBUFS: the kernel dropped some; bypass does not apply */
			perror("netdelay: recv");
			return 1;
		}
		int len = (int)n;

		for (struct nlmsghdr *nh = (struct nlmsghdr *)buf; NLMSG_OK(nh, len);
		     nh = NLMSG_NEXT(nh, len)) {
			int64_t id;

			if (nh->nlmsg_type == NLMSG_ERROR) {
				const struct nlmsgerr *e = NLMSG_DATA(nh);

				if (e->error != 0) {
					fprintf(stderr, "netdelay: netlink error %d\n", -e->error);
					return 1;
				}
				continue;
			}
			if ((nh->nlmsg_type & 0xff) != NFQNL_MSG_PACKET || (id = packet_id(nh)) < 0)
				continue;
			seen++;
			if (loss_pct > 0 && rand() % 100 < loss_pct) {
				dropped++;
				if (verdict((uint32_t)id, NF_DROP) != 0)
					return 1;
			} else if (held_n == HELD_MAX || delay_ms == 0) {
				if (verdict((uint32_t)id, NF_ACCEPT) != 0)
					return 1;
			} else {
				held[(held_head + held_n) % HELD_MAX] =
				    (struct held){ (uint32_t)id, now_ns() + delay_ms * 1000000 };
				held_n++;
			}
		}
	}
	/* Whatever is held passes now; closing the socket unbinds the queue. */
	while (held_n > 0) {
		(void)verdict(held[held_head].id, NF_ACCEPT);
		held_head = (held_head + 1) % HELD_MAX;
		held_n--;
	}
	close(nl);
	printf("netdelay: %llu packets, %llu dropped, the others delayed %ld ms\n", seen, dropped, delay_ms);
	return 0;
}
