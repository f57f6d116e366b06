/* fake_upstream.c: a fake OpenAI-compatible upstream for the tests and the
 * offline demo.
 *
 * One process, one thread, one epoll loop. Connections are non-blocking;
 * output is buffered and drained on EPOLLOUT; every delay (token cadence,
 * stalls, lingering close) is a deadline in one min-heap, so thousands of
 * concurrent streams cost one heap operation per token.
 *
 * Endpoints: POST /v1/chat/completions (plain and SSE), GET /v1/models,
 * POST /v1/realtime/client_secrets, POST /v1/realtime/sessions,
 * POST /v1/realtime/calls and POST /v1/realtime (SDP), OPTIONS (CORS),
 * GET /_fake/stats, POST /_fake/reset.
 *
 * Chat replies are deterministic and steered by directives written into the
 * last user message, e.g. "hi [[tokens=5]] [[delay=50]]":
 *
 *   [[request]]             reply = the request body re-serialized by json-c
 *   [[system]]              reply = "System prompt: " + first system message
 *   [[tokens=N]]            reply = "t0 t1 ... t<N-1>" (N <= 100000)
 *   [[raw=TEXT]]            reply = TEXT verbatim (ends at the first "]]")
 *   [[delay=MS]]            token interval (0..10000), default --delay-ms
 *   [[status=CODE]]         answer CODE (400..599) with an error JSON
 *   [[retry-after=S]]       with status: add "Retry-After: S"
 *   [[retry-after-ms=MS]]   with status: add "retry-after-ms: MS"
 *   [[fail-first=N]]        with status: only the first N matching requests fail
 *   [[key=K]]               fail-first bucket (default: the text without directives)
 *   [[error-after=K]]       after K tokens: data: {"error":...}, end without [DONE]
 *   [[event-error-after=K]] same as "event: error"
 *   [[drop-after=K]]        after K tokens: close the connection mid-body
 *   [[stall-headers=MS]]    wait before the response headers
 *   [[stall-first=MS]]      wait between the headers and the role chunk
 *   [[stall-after=K:MS]]    after K tokens wait MS more
 *   [[split=odd]]           send each SSE event in pieces of 1, 3, 5... bytes
 *   [[split-gap=MS]]        with split: wait MS between pieces (default 0)
 *   [[crlf]]                CRLF line endings in the SSE stream
 *   [[comments]]            ": ping" comments before the role chunk and tokens
 *   [[no-usage]]            never send the usage chunk
 */
#ifndef _GNU_SOURCE
#define _GNU_SOURCE
#endif

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <inttypes.h>
#include <limits.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/epoll.h>
#include <sys/random.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <json-c/json.h>

#define HEAD_MAX	(64u * 1024u)		/* request line + headers */
#define BODY_MAX	(4u * 1024u * 1024u)	/* decoded request body */
#define IN_MAX		(HEAD_MAX + 16u * 1024u)	/* unparsed input */
#define OUT_MAX		(64u * 1024u * 1024u)	/* queued response bytes */
#define READ_MIN	4096u
#define CHUNK_LINE_MAX	1024u			/* chunk-size line with extensions */
#define JSON_DEPTH	64
#define WORD_PIECE_MAX	16			/* longest token, in bytes */
#define TOKENS_MAX	100000L
#define DELAY_MAX_MS	10000L
#define STALL_MAX_MS	3600000L
#define SPLIT_GAP_MAX_MS 1000L
#define COUNT_MAX	1000000L		/* K of error-after and friends */
#define MAP_SLOTS	16384u
#define MAP_MAX		10000u			/* entries per map */
#define LINGER_MS	2000u			/* read-and-discard after SHUT_WR */
#define EVENTS_MAX	256

#define DEFAULT_MODEL	"gpt-4o-mini"

/* ------------------------------------------------------------------ */
/* Buffers                                                             */
/* ------------------------------------------------------------------ */

/* Live bytes are data[off, len); off only moves for output (sent bytes). */
struct buf {
	char	*data;
	size_t	 len;
	size_t	 off;
	size_t	 cap;
};

#define BUF_LIT(b, s)	buf_append((b), (s), sizeof(s) - 1)

static size_t
buf_live(const struct buf *b)
{
	return b->len - b->off;
}

/* Makes room for extra more bytes without growing past max total.
 * Returns false on overflow or allocation failure (b unchanged). */
static bool
buf_reserve_max(struct buf *b, size_t extra, size_t max)
{
	size_t need, ncap;
	char *p;

	if (b->cap - b->len >= extra)
		return true;
	if (b->off > 0) {
		/* Reclaim the consumed front before growing. */
		memmove(b->data, b->data + b->off, b->len - b->off);
		b->len -= b->off;
		b->off = 0;
		if (b->cap - b->len >= extra)
			return true;
	}
	if (extra > max || b->len > max - extra)
		return false;
	need = b->len + extra;
	ncap = b->cap ? b->cap : 256;
	while (ncap < need)
		ncap = ncap > max / 2 ? max : ncap * 2;
	if ((p = realloc(b->data, ncap)) == NULL)
		return false;
	b->data = p;
	b->cap = ncap;
	return true;
}

static bool
buf_append(struct buf *b, const void *p, size_t n)
{
	if (n == 0)
		return true;
	if (!buf_reserve_max(b, n, OUT_MAX))
		return false;
	memcpy(b->data + b->len, p, n);
	b->len += n;
	return true;
}

static bool
buf_appendz(struct buf *b, const char *s)
{
	return buf_append(b, s, strlen(s));
}

static bool buf_appendf(struct buf *, const char *, ...)
    __attribute__((format(printf, 2, 3)));

static bool
buf_appendf(struct buf *b, const char *fmt, ...)
{
	va_list ap;
	size_t room;
	int n, pass;

	for (pass = 0; pass < 2; pass++) {
		room = b->cap - b->len;
		va_start(ap, fmt);
		n = vsnprintf(room > 0 ? b->data + b->len : NULL, room, fmt, ap);
		va_end(ap);
		if (n < 0)
			return false;
		if ((size_t)n < room) {
			b->len += (size_t)n;
			return true;
		}
		if (!buf_reserve_max(b, (size_t)n + 1, OUT_MAX))
			return false;
	}
	return false;
}

/* Removes the first n live bytes (input buffers: keeps data at offset 0). */
static void
buf_drop_front(struct buf *b, size_t n)
{
	if (n >= buf_live(b)) {
		b->len = b->off = 0;
		return;
	}
	memmove(b->data, b->data + b->off + n, buf_live(b) - n);
	b->len = buf_live(b) - n;
	b->off = 0;
}

static void
buf_reset(struct buf *b)
{
	b->len = b->off = 0;
}

static void
buf_free(struct buf *b)
{
	free(b->data);
	memset(b, 0, sizeof(*b));
}

/* Hands the bytes to the caller as a NUL-terminated string; b is emptied. */
static char *
buf_steal(struct buf *b, size_t *len)
{
	char *s;

	if (b->off > 0)
		buf_drop_front(b, 0);
	if (!buf_reserve_max(b, 1, OUT_MAX + 1))
		return NULL;
	b->data[b->len] = '\0';
	s = b->data;
	*len = b->len;
	memset(b, 0, sizeof(*b));
	return s;
}

/* Appends s as the inside of a JSON string literal (no quotes). */
static bool
json_escape_append(struct buf *b, const char *s, size_t n)
{
	static const char hex[] = "0123456789abcdef";
	size_t i, run = 0;
	char esc[6];
	size_t elen;
	unsigned char ch;

	for (i = 0; i < n; i++) {
		ch = (unsigned char)s[i];
		if (ch >= 0x20 && ch != '"' && ch != '\\')
			continue;
		if (!buf_append(b, s + run, i - run))
			return false;
		run = i + 1;
		esc[0] = '\\';
		elen = 2;
		switch (ch) {
		case '"':  esc[1] = '"'; break;
		case '\\': esc[1] = '\\'; break;
		case '\n': esc[1] = 'n'; break;
		case '\r': esc[1] = 'r'; break;
		case '\t': esc[1] = 't'; break;
		case '\b': esc[1] = 'b'; break;
		case '\f': esc[1] = 'f'; break;
		default:
			esc[1] = 'u';
			esc[2] = '0';
			esc[3] = '0';
			esc[4] = hex[ch >> 4];
			esc[5] = hex[ch & 15];
			elen = 6;
			break;
		}
		if (!buf_append(b, esc, elen))
			return false;
	}
	return buf_append(b, s + run, n - run);
}

/* ------------------------------------------------------------------ */
/* Small helpers                                                       */
/* ------------------------------------------------------------------ */

static bool
is_ws(unsigned char ch)
{
	return ch == ' ' || ch == '\t' || ch == '\n' || ch == '\r' ||
	    ch == '\f' || ch == '\v';
}

static bool
is_utf8_cont(unsigned char ch)
{
	return (ch & 0xC0) == 0x80;
}

static bool
is_tchar(unsigned char ch)
{
	return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') ||
	    (ch >= '0' && ch <= '9') || strchr("!#$%&'*+-.^_`|~", ch) != NULL;
}

static bool
bytes_eq_nocase(const char *p, size_t n, const char *z)
{
	return strlen(z) == n && strncasecmp(p, z, n) == 0;
}

/* Parses decimal digits only into [min, max]. */
static bool
parse_long(const char *p, size_t n, long min, long max, long *out)
{
	long v = 0;
	size_t i;

	if (n == 0 || n > 10)
		return false;
	for (i = 0; i < n; i++) {
		if (p[i] < '0' || p[i] > '9')
			return false;
		v = v * 10 + (p[i] - '0');
	}
	if (v < min || v > max)
		return false;
	*out = v;
	return true;
}

static char *
xstrndup(const char *p, size_t n)
{
	char *s;

	if ((s = malloc(n + 1)) == NULL)
		return NULL;
	memcpy(s, p, n);
	s[n] = '\0';
	return s;
}

static uint64_t
clock_ms(void)
{
	struct timespec ts;

	if (clock_gettime(CLOCK_MONOTONIC, &ts) != 0)
		return 0;
	return (uint64_t)ts.tv_sec * 1000u + (uint64_t)ts.tv_nsec / 1000000u;
}

/* Counts whitespace-separated words. */
static long
count_words(const char *s, size_t n)
{
	long words = 0;
	bool in_word = false;
	size_t i;

	for (i = 0; i < n; i++) {
		if (is_ws((unsigned char)s[i]))
			in_word = false;
		else if (!in_word) {
			in_word = true;
			words++;
		}
	}
	return words;
}

/* ------------------------------------------------------------------ */
/* String map (fail-first counters, minted ephemeral keys)            */
/* ------------------------------------------------------------------ */

struct map_entry {
	struct map_entry	*next;
	int64_t			 value;
	size_t			 klen;
	char			 key[];
};

struct map {
	struct map_entry	*slots[MAP_SLOTS];
	size_t			 count;
};

static size_t
map_hash(const char *k, size_t n)
{
	uint64_t h = 1469598103934665603ULL;
	size_t i;

	for (i = 0; i < n; i++) {
		h ^= (unsigned char)k[i];
		h *= 1099511628211ULL;
	}
	return (size_t)(h & (MAP_SLOTS - 1));
}

static void
map_clear(struct map *m)
{
	struct map_entry *e, *next;
	size_t i;

	for (i = 0; i < MAP_SLOTS; i++) {
		for (e = m->slots[i]; e != NULL; e = next) {
			next = e->next;
			free(e);
		}
		m->slots[i] = NULL;
	}
	m->count = 0;
}

static struct map_entry *
map_get(struct map *m, const char *k, size_t n)
{
	struct map_entry *e;

	for (e = m->slots[map_hash(k, n)]; e != NULL; e = e->next)
		if (e->klen == n && memcmp(e->key, k, n) == 0)
			return e;
	return NULL;
}

/* Returns the entry for k, adding it with value v if absent. A full map is
 * cleared first: a test fake forgets rather than grows. NULL on OOM. */
static struct map_entry *
map_put(struct map *m, const char *k, size_t n, int64_t v)
{
	struct map_entry *e;
	size_t h;

	if ((e = map_get(m, k, n)) != NULL)
		return e;
	if (m->count >= MAP_MAX)
		map_clear(m);
	if ((e = malloc(sizeof(*e) + n)) == NULL)
		return NULL;
	h = map_hash(k, n);
	e->next = m->slots[h];
	e->value = v;
	e->klen = n;
	memcpy(e->key, k, n);
	m->slots[h] = e;
	m->count++;
	return e;
}

/* ------------------------------------------------------------------ */
/* Server state                                                        */
/* ------------------------------------------------------------------ */

enum src_kind { SRC_LISTEN, SRC_SIGNAL, SRC_CONN };

struct source {
	enum src_kind	kind;
};

enum conn_state {
	CS_READ,	/* reading (or idle between) requests */
	CS_WAIT,	/* a response is held back by a timer */
	CS_STREAM,	/* an SSE stream is in progress */
	CS_DRAIN_CLOSE,	/* write what is queued, then close */
	CS_LINGER	/* SHUT_WR done; discard input until EOF or timeout */
};

enum body_mode { BODY_NONE, BODY_LENGTH, BODY_CHUNKED };
enum chunk_state { CH_SIZE, CH_DATA, CH_DATA_END, CH_TRAILER };

struct request {
	char		 method[16];
	char		*target;	/* path and query */
	size_t		 path_len;	/* bytes of target before '?' */
	char		*auth;		/* Authorization, or NULL */
	char		*origin;	/* Origin, or NULL */
	char		*ctype;		/* Content-Type, or NULL */
	bool		 http10;
	bool		 keep_alive;
	bool		 expect_continue;
	bool		 head_done;
	enum body_mode	 body_mode;
	size_t		 body_left;	/* length: bytes to come; chunked: of this chunk */
	enum chunk_state ch;
	struct buf	 body;
};

enum stream_phase { PH_HEADERS, PH_ROLE, PH_TOKENS, PH_END, PH_DROP };
enum stream_end { END_COMPLETED, END_ERRORED, END_DROPPED, END_ABORTED };

struct stream {
	enum stream_phase phase;
	enum stream_end	 end_kind;	/* valid in PH_END */
	uint64_t	 next_at;	/* when the next step is due */
	char		*reply;
	size_t		 reply_len;
	size_t		*tok_end;	/* token i is reply[tok_end[i-1], tok_end[i]) */
	size_t		 ntok;
	size_t		 next_tok;
	const char	*finish;	/* "stop" or "length" */
	char		*head;		/* JSON prefix shared by every chunk */
	size_t		 head_len;
	long		 prompt_tokens;
	long		 delay_ms;
	long		 stall_first_ms;
	long		 stall_after_k, stall_after_ms;
	long		 error_after, drop_after;
	long		 split_gap_ms;
	bool		 error_as_event;
	bool		 include_usage;
	bool		 chunked;	/* false for HTTP/1.0: close-delimited */
	bool		 crlf, comments, split;
	struct buf	 pend;		/* split mode: event bytes not yet sent */
	size_t		*pieces;	/* split mode: lengths of the pending pieces */
	size_t		 npieces, pieces_cap, piece_idx;
};

struct conn {
	enum src_kind	 kind;		/* first: epoll tag */
	int		 fd;
	uint64_t	 id;
	enum conn_state	 state;
	uint32_t	 ev_mask;	/* events registered with epoll */
	bool		 rd_eof;
	bool		 keep_alive;	/* of the response being produced */
	bool		 cors;		/* add Access-Control-Allow-Origin */
	long		 defer_ms;	/* > 0: hold the next response back */
	bool		 defer_drop;	/* at the deadline close instead of answering */
	struct buf	 in;
	struct buf	 out;
	struct buf	 deferred;
	size_t		 scan_off;	/* header terminator search resumes here */
	struct request	 req;
	struct stream	*stream;
	size_t		 t_idx;		/* heap index, SIZE_MAX when not armed */
	uint64_t	 t_when, t_seq;
	struct conn	*prev, *next;
};

struct stats {
	uint64_t	requests;
	uint64_t	chat_requests;
	uint64_t	streams_active;
	uint64_t	streams_completed;
	uint64_t	streams_errored;
	uint64_t	streams_dropped;
	uint64_t	streams_aborted_by_client;
	uint64_t	realtime_secrets;
	uint64_t	sdp_answers;
};

static struct server {
	int		 epfd, lfd, sfd, spare_fd;
	const char	*api_key;
	long		 delay_ms;
	bool		 quiet;
	uint64_t	 now;		/* monotonic ms, refreshed every loop turn */
	uint64_t	 timer_seq;
	struct conn	**heap;
	size_t		 heap_len, heap_cap;
	struct conn	*conns;
	uint64_t	 conn_ids, completion_ids, session_ids, call_ids;
	struct stats	 st;
	struct map	 fail_first;
	struct map	 secrets;	/* ephemeral key -> expires_at (unix) */
	struct buf	 scratch;	/* one SSE event being formatted */
} srv = { .epfd = -1, .lfd = -1, .sfd = -1, .spare_fd = -1 };

static struct source listen_src = { SRC_LISTEN };
static struct source signal_src = { SRC_SIGNAL };

static bool conn_process_input(struct conn *);
static bool conn_flush(struct conn *);
static void stream_free(struct stream *);

/* ------------------------------------------------------------------ */
/* Timers: a min-heap of connections ordered by (deadline, arm order)  */
/* ------------------------------------------------------------------ */

static bool
timer_before(const struct conn *a, const struct conn *b)
{
	return a->t_when < b->t_when ||
	    (a->t_when == b->t_when && a->t_seq < b->t_seq);
}

static void
heap_place(size_t i, struct conn *c)
{
	srv.heap[i] = c;
	c->t_idx = i;
}

static void
heap_up(size_t i)
{
	struct conn *c = srv.heap[i];
	size_t parent;

	while (i > 0) {
		parent = (i - 1) / 2;
		if (!timer_before(c, srv.heap[parent]))
			break;
		heap_place(i, srv.heap[parent]);
		i = parent;
	}
	heap_place(i, c);
}

static void
heap_down(size_t i)
{
	struct conn *c = srv.heap[i];
	size_t l, m;

	for (;;) {
		l = 2 * i + 1;
		if (l >= srv.heap_len)
			break;
		m = l;
		if (l + 1 < srv.heap_len && timer_before(srv.heap[l + 1], srv.heap[l]))
			m = l + 1;
		if (!timer_before(srv.heap[m], c))
			break;
		heap_place(i, srv.heap[m]);
		i = m;
	}
	heap_place(i, c);
}

static void
timer_cancel(struct conn *c)
{
	struct conn *last;
	size_t i = c->t_idx;

	if (i == SIZE_MAX)
		return;
	c->t_idx = SIZE_MAX;
	last = srv.heap[--srv.heap_len];
	if (i < srv.heap_len) {
		heap_place(i, last);
		heap_up(i);
		heap_down(last->t_idx);
	}
}

/* (Re)arms c's single timer. Returns false on OOM. */
static bool
timer_arm(struct conn *c, uint64_t when)
{
	struct conn **v;
	size_t ncap;

	timer_cancel(c);
	if (srv.heap_len == srv.heap_cap) {
		ncap = srv.heap_cap ? srv.heap_cap * 2 : 256;
		if ((v = realloc(srv.heap, ncap * sizeof(*v))) == NULL)
			return false;
		srv.heap = v;
		srv.heap_cap = ncap;
	}
	c->t_when = when;
	c->t_seq = srv.timer_seq++;
	heap_place(srv.heap_len++, c);
	heap_up(srv.heap_len - 1);
	return true;
}

/* Milliseconds epoll_wait may sleep. */
static int
timers_timeout(void)
{
	uint64_t d;

	if (srv.heap_len == 0)
		return -1;
	if (srv.heap[0]->t_when <= srv.now)
		return 0;
	d = srv.heap[0]->t_when - srv.now;
	return d > INT_MAX ? INT_MAX : (int)d;
}

/* ------------------------------------------------------------------ */
/* Connections and output                                              */
/* ------------------------------------------------------------------ */

static void
log_request(const struct conn *c, const char *status)
{
	char path[201];
	size_t i, n;

	if (srv.quiet)
		return;
	n = c->req.target ? strlen(c->req.target) : 0;
	if (n > sizeof(path) - 1)
		n = sizeof(path) - 1;
	for (i = 0; i < n; i++) {
		unsigned char ch = (unsigned char)c->req.target[i];
		path[i] = (ch >= 0x20 && ch < 0x7f) ? (char)ch : '?';
	}
	path[n] = '\0';
	fprintf(stderr, "%s %s %s\n", c->req.method[0] ? c->req.method : "-",
	    n ? path : "-", status);
}

static void
log_status(const struct conn *c, int status)
{
	char s[16];

	if (snprintf(s, sizeof(s), "%d", status) >= (int)sizeof(s))
		return;
	log_request(c, s);
}

static void
request_reset(struct request *r)
{
	free(r->target);
	free(r->auth);
	free(r->origin);
	free(r->ctype);
	buf_free(&r->body);
	memset(r, 0, sizeof(*r));
}

static bool
conn_update_events(struct conn *c)
{
	struct epoll_event ev;
	uint32_t want = 0;

	if (!c->rd_eof)
		want |= EPOLLIN;
	if (buf_live(&c->out) > 0)
		want |= EPOLLOUT;
	if (want == c->ev_mask)
		return true;
	memset(&ev, 0, sizeof(ev));
	ev.events = want;
	ev.data.ptr = c;
	if (epoll_ctl(srv.epfd, EPOLL_CTL_MOD, c->fd, &ev) != 0) {
		fprintf(stderr, "fake-upstream: epoll_ctl: %s\n", strerror(errno));
		return false;
	}
	c->ev_mask = want;
	return true;
}

static void
stream_end(struct conn *c, enum stream_end kind)
{
	srv.st.streams_active--;
	switch (kind) {
	case END_COMPLETED: srv.st.streams_completed++; break;
	case END_ERRORED: srv.st.streams_errored++; break;
	case END_DROPPED: srv.st.streams_dropped++; break;
	case END_ABORTED: srv.st.streams_aborted_by_client++; break;
	}
	stream_free(c->stream);
	c->stream = NULL;
	c->state = CS_READ;
}

static struct conn *
conn_new(int fd)
{
	struct epoll_event ev;
	struct conn *c;

	if ((c = calloc(1, sizeof(*c))) == NULL)
		return NULL;
	c->kind = SRC_CONN;
	c->fd = fd;
	c->id = ++srv.conn_ids;
	c->state = CS_READ;
	c->t_idx = SIZE_MAX;
	memset(&ev, 0, sizeof(ev));
	ev.events = EPOLLIN;
	ev.data.ptr = c;
	if (epoll_ctl(srv.epfd, EPOLL_CTL_ADD, fd, &ev) != 0) {
		fprintf(stderr, "fake-upstream: epoll_ctl: %s\n", strerror(errno));
		free(c);
		return NULL;
	}
	c->ev_mask = EPOLLIN;
	c->next = srv.conns;
	if (srv.conns)
		srv.conns->prev = c;
	srv.conns = c;
	return c;
}

/* Frees c and closes its socket. A stream still running is one the client
 * abandoned (or one we could not continue): it counts as aborted. */
static void
conn_destroy(struct conn *c)
{
	if (c->state == CS_STREAM)
		stream_end(c, END_ABORTED);
	stream_free(c->stream);
	timer_cancel(c);
	if (c->fd >= 0)
		close(c->fd);
	request_reset(&c->req);
	buf_free(&c->in);
	buf_free(&c->out);
	buf_free(&c->deferred);
	if (c->prev)
		c->prev->next = c->next;
	else
		srv.conns = c->next;
	if (c->next)
		c->next->prev = c->prev;
	free(c);
}

/* Sends queued output. Returns false when c must be destroyed: a write
 * error, or a close-after-write that has completed. */
static bool
conn_flush(struct conn *c)
{
	ssize_t n;

	while (buf_live(&c->out) > 0) {
		n = send(c->fd, c->out.data + c->out.off, buf_live(&c->out),
		    MSG_NOSIGNAL);
		if (n > 0) {
			c->out.off += (size_t)n;
			continue;
		}
		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
			return conn_update_events(c);
		return false;	/* EPIPE, ECONNRESET: the client is gone */
	}
	buf_reset(&c->out);
	if (c->out.cap > 256u * 1024u)
		buf_free(&c->out);	/* do not keep a big reply's buffer */
	if (c->state == CS_DRAIN_CLOSE) {
		if (c->rd_eof)
			return false;
		/* FIN first, then read until the peer closes, so unread
		 * input does not turn our close into an RST that would
		 * destroy the response before the client reads it. */
		if (shutdown(c->fd, SHUT_WR) != 0)
			return false;
		c->state = CS_LINGER;
		if (!timer_arm(c, srv.now + LINGER_MS))
			return false;
	}
	return conn_update_events(c);
}

static bool
conn_begin_close(struct conn *c)
{
	c->state = CS_DRAIN_CLOSE;
	return conn_flush(c);
}

/* The response for the current request is fully queued. */
static bool
conn_response_done(struct conn *c)
{
	if (!c->keep_alive)
		return conn_begin_close(c);
	c->state = CS_READ;
	return conn_flush(c);
}

/* ------------------------------------------------------------------ */
/* HTTP responses                                                      */
/* ------------------------------------------------------------------ */

static const char *
http_reason(int status)
{
	switch (status) {
	case 100: return "Continue";
	case 200: return "OK";
	case 201: return "Created";
	case 204: return "No Content";
	case 400: return "Bad Request";
	case 401: return "Unauthorized";
	case 402: return "Payment Required";
	case 403: return "Forbidden";
	case 404: return "Not Found";
	case 405: return "Method Not Allowed";
	case 408: return "Request Timeout";
	case 409: return "Conflict";
	case 413: return "Content Too Large";
	case 415: return "Unsupported Media Type";
	case 422: return "Unprocessable Entity";
	case 429: return "Too Many Requests";
	case 431: return "Request Header Fields Too Large";
	case 500: return "Internal Server Error";
	case 501: return "Not Implemented";
	case 502: return "Bad Gateway";
	case 503: return "Service Unavailable";
	case 504: return "Gateway Timeout";
	default: return status < 500 ? "Client Error" : "Server Error";
	}
}

/* The Origin to echo in CORS headers: only plain printable values. */
static const char *
cors_origin(const struct conn *c)
{
	const char *o = c->req.origin;
	size_t i;

	if (o == NULL || *o == '\0' || strlen(o) > 256)
		return "*";
	for (i = 0; o[i]; i++)
		if ((unsigned char)o[i] <= 0x20 || (unsigned char)o[i] >= 0x7f)
			return "*";
	return o;
}

static bool
http_append_cors(struct conn *c, struct buf *b)
{
	const char *o = cors_origin(c);

	if (!c->cors)
		return true;
	if (!buf_appendf(b, "Access-Control-Allow-Origin: %s\r\n", o))
		return false;
	if (strcmp(o, "*") != 0 && !BUF_LIT(b, "Vary: Origin\r\n"))
		return false;
	return true;
}

/* Queues a complete response (or holds it back when c->defer_ms is set).
 * extra: preformatted header lines ("Name: value\r\n"), may be NULL. */
static bool
http_respond(struct conn *c, int status, const char *ctype, const char *extra,
    const char *body, size_t len)
{
	bool defer = c->defer_ms > 0;
	struct buf *b = defer ? &c->deferred : &c->out;
	bool ok;

	log_status(c, status);
	ok = buf_appendf(b, "HTTP/1.1 %d %s\r\nServer: fake-upstream\r\n",
	    status, http_reason(status));
	if (ok && status != 204)
		ok = buf_appendf(b, "Content-Type: %s\r\nContent-Length: %zu\r\n",
		    ctype, len);
	if (ok)
		ok = buf_appendf(b, "Connection: %s\r\n",
		    c->keep_alive ? "keep-alive" : "close");
	if (ok)
		ok = http_append_cors(c, b);
	if (ok && extra)
		ok = buf_appendz(b, extra);
	if (ok)
		ok = BUF_LIT(b, "\r\n") && buf_append(b, body, len);
	if (!ok)
		return false;
	if (defer) {
		c->state = CS_WAIT;
		ok = timer_arm(c, srv.now + (uint64_t)c->defer_ms);
		c->defer_ms = 0;
		return ok;
	}
	return conn_response_done(c);
}

static bool
json_add(json_object *o, const char *k, json_object *v)
{
	if (v == NULL)
		return false;
	if (json_object_object_add(o, k, v) != 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

static bool
json_add_null(json_object *o, const char *k)
{
	return json_object_object_add(o, k, NULL) == 0;
}

static bool
json_append(json_object *a, json_object *v)
{
	if (v == NULL)
		return false;
	if (json_object_array_add(a, v) != 0) {
		json_object_put(v);
		return false;
	}
	return true;
}

/* Serializes obj (and releases it) as the response body. */
static bool
http_respond_json(struct conn *c, int status, json_object *obj, const char *extra)
{
	const char *s;
	size_t len = 0;
	bool ok;

	if (obj == NULL)
		return false;
	s = json_object_to_json_string_length(obj,
	    JSON_C_TO_STRING_PLAIN | JSON_C_TO_STRING_NOSLASHESCAPE, &len);
	ok = s != NULL && http_respond(c, status, "application/json", extra, s, len);
	json_object_put(obj);
	return ok;
}

/* The one place that renders OpenAI-style errors. param/code may be NULL. */
static bool
http_error(struct conn *c, int status, const char *message, const char *type,
    const char *param, const char *code, const char *extra)
{
	json_object *root, *err = NULL;
	bool ok;

	if ((root = json_object_new_object()) == NULL)
		return false;
	/* Containers are attached first: root owns everything on failure. */
	ok = json_add(root, "error", err = json_object_new_object()) &&
	    json_add(err, "message", json_object_new_string(message)) &&
	    json_add(err, "type", json_object_new_string(type)) &&
	    (param ? json_add(err, "param", json_object_new_string(param)) :
	    json_add_null(err, "param")) &&
	    (code ? json_add(err, "code", json_object_new_string(code)) :
	    json_add_null(err, "code"));
	if (!ok) {
		json_object_put(root);
		return false;
	}
	return http_respond_json(c, status, root, extra);
}

/* Protocol errors: answer and close. */
static bool
http_fail(struct conn *c, int status, const char *message)
{
	c->keep_alive = false;
	c->defer_ms = 0;
	return http_error(c, status, message, "invalid_request_error", NULL,
	    NULL, NULL);
}

/* ------------------------------------------------------------------ */
/* HTTP parsing                                                        */
/* ------------------------------------------------------------------ */

/* Returns the length of the head (through the blank line) or 0. */
static size_t
http_find_head_end(struct conn *c)
{
	const char *d = c->in.data;
	size_t i, n = c->in.len;

	for (i = c->scan_off; i < n; i++) {
		if (d[i] != '\n')
			continue;
		if (i + 1 < n && d[i + 1] == '\n')
			return i + 2;
		if (i + 2 < n && d[i + 1] == '\r' && d[i + 2] == '\n')
			return i + 3;
	}
	c->scan_off = n >= 2 ? n - 2 : 0;
	return 0;
}

static bool
header_dup(char **dst, const char *p, size_t n)
{
	free(*dst);
	*dst = xstrndup(p, n);
	return *dst != NULL;
}

/* Interprets one header. Returns 0 or an HTTP status to fail with. */
static int
http_parse_header(struct request *r, const char *name, size_t nlen,
    const char *v, size_t vlen, bool *has_cl, size_t *cl)
{
	long n;
	size_t i, start, end;

	if (bytes_eq_nocase(name, nlen, "content-length")) {
		if (vlen > 12 || vlen == 0)
			return vlen == 0 ? 400 : 413;
		for (i = 0; i < vlen; i++)
			if (v[i] < '0' || v[i] > '9')
				return 400;
		if (!parse_long(v, vlen, 0, LONG_MAX, &n))
			return 413;
		if (*has_cl && *cl != (size_t)n)
			return 400;
		*has_cl = true;
		*cl = (size_t)n;
	} else if (bytes_eq_nocase(name, nlen, "transfer-encoding")) {
		/* Only "chunked" (as the final coding) is understood. */
		start = vlen;
		while (start > 0 && v[start - 1] != ',')
			start--;
		while (start < vlen && (v[start] == ' ' || v[start] == '\t'))
			start++;
		if (!bytes_eq_nocase(v + start, vlen - start, "chunked"))
			return 501;
		if (start != 0)
			return 501;
		r->body_mode = BODY_CHUNKED;
	} else if (bytes_eq_nocase(name, nlen, "connection")) {
		for (start = 0; start < vlen; start = end + 1) {
			end = start;
			while (end < vlen && v[end] != ',')
				end++;
			i = end;
			while (start < i && (v[start] == ' ' || v[start] == '\t'))
				start++;
			while (i > start && (v[i - 1] == ' ' || v[i - 1] == '\t'))
				i--;
			if (bytes_eq_nocase(v + start, i - start, "close"))
				r->keep_alive = false;
			else if (bytes_eq_nocase(v + start, i - start, "keep-alive"))
				r->keep_alive = true;
		}
	} else if (bytes_eq_nocase(name, nlen, "expect")) {
		if (bytes_eq_nocase(v, vlen, "100-continue"))
			r->expect_continue = true;
	} else if (bytes_eq_nocase(name, nlen, "authorization")) {
		if (!header_dup(&r->auth, v, vlen))
			return 500;
	} else if (bytes_eq_nocase(name, nlen, "origin")) {
		if (!header_dup(&r->origin, v, vlen))
			return 500;
	} else if (bytes_eq_nocase(name, nlen, "content-type")) {
		if (!header_dup(&r->ctype, v, vlen))
			return 500;
	}
	return 0;
}

/* Parses the head in d[0, n). Returns 0 or an HTTP status to fail with. */
static int
http_parse_head(struct request *r, const char *d, size_t n)
{
	const char *line, *eol, *end = d + n, *sp1, *sp2, *colon;
	size_t len, mlen, tlen, vstart, vend;
	bool has_cl = false;
	size_t cl = 0;
	int st;

	/* Request line. */
	eol = memchr(d, '\n', n);
	len = (size_t)(eol - d);
	if (len > 0 && d[len - 1] == '\r')
		len--;
	if ((sp1 = memchr(d, ' ', len)) == NULL)
		return 400;
	mlen = (size_t)(sp1 - d);
	if (mlen == 0 || mlen >= sizeof(r->method))
		return mlen == 0 ? 400 : 501;
	if ((sp2 = memchr(sp1 + 1, ' ', len - mlen - 1)) == NULL)
		return 400;
	tlen = (size_t)(sp2 - sp1 - 1);
	if (tlen == 0)
		return 400;
	for (size_t i = 0; i < mlen; i++)
		if (!is_tchar((unsigned char)d[i]))
			return 400;
	memcpy(r->method, d, mlen);
	r->method[mlen] = '\0';
	if ((size_t)(d + len - (sp2 + 1)) != 8 || memcmp(sp2 + 1, "HTTP/1.", 7) != 0)
		return 400;
	if (sp2[8] == '0')
		r->http10 = true;
	else if (sp2[8] != '1')
		return 400;
	for (size_t i = 0; i < tlen; i++)
		if ((unsigned char)sp1[1 + i] <= 0x20 || (unsigned char)sp1[1 + i] == 0x7f)
			return 400;
	if ((r->target = xstrndup(sp1 + 1, tlen)) == NULL)
		return 500;
	r->path_len = strcspn(r->target, "?");
	r->keep_alive = !r->http10;

	/* Header fields. */
	for (line = eol + 1; line < end; line = eol + 1) {
		if ((eol = memchr(line, '\n', (size_t)(end - line))) == NULL)
			break;
		len = (size_t)(eol - line);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (len == 0)
			break;
		if (line[0] == ' ' || line[0] == '\t')
			return 400;	/* obsolete line folding */
		if ((colon = memchr(line, ':', len)) == NULL || colon == line)
			return 400;
		for (const char *p = line; p < colon; p++)
			if (!is_tchar((unsigned char)*p))
				return 400;
		vstart = (size_t)(colon - line) + 1;
		vend = len;
		while (vstart < vend && (line[vstart] == ' ' || line[vstart] == '\t'))
			vstart++;
		while (vend > vstart && (line[vend - 1] == ' ' || line[vend - 1] == '\t'))
			vend--;
		st = http_parse_header(r, line, (size_t)(colon - line),
		    line + vstart, vend - vstart, &has_cl, &cl);
		if (st != 0)
			return st;
	}

	if (r->body_mode == BODY_CHUNKED) {
		/* Both framings: a smuggling attempt or a broken proxy. Use
		 * chunked as the RFC says, but do not reuse the connection. */
		if (has_cl)
			r->keep_alive = false;
		r->ch = CH_SIZE;
	} else if (has_cl && cl > 0) {
		if (cl > BODY_MAX)
			return 413;
		r->body_mode = BODY_LENGTH;
		r->body_left = cl;
	}
	return 0;
}

/* Moves body bytes from c->in to the request body.
 * Returns 0 when complete, 1 when more input is needed, else a status. */
static int
http_read_body(struct conn *c)
{
	struct request *r = &c->req;
	const char *d = c->in.data, *nl;
	size_t pos = 0, avail = buf_live(&c->in), take, i, len;
	long sz;
	int rc = 1;

	if (r->body_mode == BODY_NONE)
		return 0;
	if (r->body_mode == BODY_LENGTH) {
		take = avail < r->body_left ? avail : r->body_left;
		if (!buf_append(&r->body, d, take))
			return 500;
		buf_drop_front(&c->in, take);
		r->body_left -= take;
		return r->body_left == 0 ? 0 : 1;
	}

	while (rc == 1 && pos < avail) {
		switch (r->ch) {
		case CH_SIZE:
			if ((nl = memchr(d + pos, '\n', avail - pos)) == NULL) {
				if (avail - pos > CHUNK_LINE_MAX)
					rc = 400;
				goto out;
			}
			len = (size_t)(nl - (d + pos));
			if (len > CHUNK_LINE_MAX)
				return 400;
			sz = 0;
			for (i = 0; i < len; i++) {
				char h = d[pos + i];
				int v;

				if (h >= '0' && h <= '9')
					v = h - '0';
				else if (h >= 'a' && h <= 'f')
					v = h - 'a' + 10;
				else if (h >= 'A' && h <= 'F')
					v = h - 'A' + 10;
				else
					break;	/* ';' extensions, CR */
				if (sz > (long)BODY_MAX)
					return 413;
				sz = sz * 16 + v;
			}
			if (i == 0)
				return 400;
			if (sz > (long)BODY_MAX ||
			    r->body.len + (size_t)sz > BODY_MAX)
				return 413;
			pos += len + 1;
			r->body_left = (size_t)sz;
			r->ch = sz == 0 ? CH_TRAILER : CH_DATA;
			break;
		case CH_DATA:
			take = avail - pos < r->body_left ? avail - pos : r->body_left;
			if (!buf_append(&r->body, d + pos, take))
				return 500;
			pos += take;
			r->body_left -= take;
			if (r->body_left == 0)
				r->ch = CH_DATA_END;
			break;
		case CH_DATA_END:
			if (d[pos] == '\r') {
				if (avail - pos < 2)
					goto out;
				pos++;
			}
			if (d[pos] != '\n')
				return 400;
			pos++;
			r->ch = CH_SIZE;
			break;
		case CH_TRAILER:
			if ((nl = memchr(d + pos, '\n', avail - pos)) == NULL) {
				if (avail - pos > HEAD_MAX)
					rc = 431;
				goto out;
			}
			len = (size_t)(nl - (d + pos));
			pos += len + 1;
			if (len == 0 || (len == 1 && d[pos - 2] == '\r'))
				rc = 0;	/* blank line: end of the message */
			break;
		}
	}
out:
	buf_drop_front(&c->in, pos);
	return rc;
}

/* ------------------------------------------------------------------ */
/* Directives                                                          */
/* ------------------------------------------------------------------ */

struct slice {
	const char	*p;	/* NULL: absent */
	size_t		 n;
};

struct directives {
	bool		request, system, crlf, comments, no_usage;
	long		tokens, status, fail_first;
	long		error_after, event_error_after, drop_after;
	long		stall_first, stall_headers, stall_after_k, stall_after_ms;
	long		delay, split_gap;
	struct slice	raw, key, retry_after, retry_after_ms, split;
};

enum dir_kind { DIR_FLAG, DIR_LONG, DIR_TEXT, DIR_PAIR };

static const struct directive_spec {
	const char	*name;
	enum dir_kind	 kind;
	long		 min, max;
	size_t		 off;
} directive_specs[] = {
	{ "request",		DIR_FLAG, 0, 0, offsetof(struct directives, request) },
	{ "system",		DIR_FLAG, 0, 0, offsetof(struct directives, system) },
	{ "crlf",		DIR_FLAG, 0, 0, offsetof(struct directives, crlf) },
	{ "comments",		DIR_FLAG, 0, 0, offsetof(struct directives, comments) },
	{ "no-usage",		DIR_FLAG, 0, 0, offsetof(struct directives, no_usage) },
	{ "tokens",		DIR_LONG, 0, TOKENS_MAX, offsetof(struct directives, tokens) },
	{ "status",		DIR_LONG, 400, 599, offsetof(struct directives, status) },
	{ "fail-first",		DIR_LONG, 0, COUNT_MAX, offsetof(struct directives, fail_first) },
	{ "error-after",	DIR_LONG, 0, COUNT_MAX, offsetof(struct directives, error_after) },
	{ "event-error-after",	DIR_LONG, 0, COUNT_MAX, offsetof(struct directives, event_error_after) },
	{ "drop-after",		DIR_LONG, 0, COUNT_MAX, offsetof(struct directives, drop_after) },
	{ "stall-first",	DIR_LONG, 0, STALL_MAX_MS, offsetof(struct directives, stall_first) },
	{ "stall-headers",	DIR_LONG, 0, STALL_MAX_MS, offsetof(struct directives, stall_headers) },
	{ "stall-after",	DIR_PAIR, 0, STALL_MAX_MS, offsetof(struct directives, stall_after_k) },
	{ "delay",		DIR_LONG, 0, DELAY_MAX_MS, offsetof(struct directives, delay) },
	{ "split-gap",		DIR_LONG, 0, SPLIT_GAP_MAX_MS, offsetof(struct directives, split_gap) },
	{ "raw",		DIR_TEXT, 0, 0, offsetof(struct directives, raw) },
	{ "key",		DIR_TEXT, 0, 0, offsetof(struct directives, key) },
	{ "retry-after",	DIR_TEXT, 0, 0, offsetof(struct directives, retry_after) },
	{ "retry-after-ms",	DIR_TEXT, 0, 0, offsetof(struct directives, retry_after_ms) },
	{ "split",		DIR_TEXT, 0, 0, offsetof(struct directives, split) },
};

static void
directives_init(struct directives *d)
{
	memset(d, 0, sizeof(*d));
	d->tokens = d->status = d->fail_first = -1;
	d->error_after = d->event_error_after = d->drop_after = -1;
	d->stall_first = d->stall_headers = d->stall_after_k = -1;
	d->stall_after_ms = d->delay = d->split_gap = -1;
}

/* Applies the directive whose inside ("name" or "name=value") is s[0, n).
 * Returns 1 if applied, 0 if s is not a known directive (left as text),
 * -1 on a bad value (err says which). */
static int
directive_apply(struct directives *d, const char *s, size_t n, char *err,
    size_t errsz)
{
	const struct directive_spec *spec = NULL;
	const char *eq, *val = NULL, *colon;
	size_t nlen, vlen = 0, i;
	char *base = (char *)d;
	long v, v2;

	eq = memchr(s, '=', n);
	nlen = eq ? (size_t)(eq - s) : n;
	if (nlen == 0)
		return 0;
	for (i = 0; i < nlen; i++)
		if (!((s[i] >= 'a' && s[i] <= 'z') || (s[i] >= '0' && s[i] <= '9') ||
		    s[i] == '-'))
			return 0;
	for (i = 0; i < sizeof(directive_specs) / sizeof(directive_specs[0]); i++)
		if (strlen(directive_specs[i].name) == nlen &&
		    memcmp(directive_specs[i].name, s, nlen) == 0)
			spec = &directive_specs[i];
	if (spec == NULL)
		return 0;
	if (eq) {
		val = eq + 1;
		vlen = n - nlen - 1;
	}

	switch (spec->kind) {
	case DIR_FLAG:
		if (eq)
			goto bad;
		*(bool *)(base + spec->off) = true;
		return 1;
	case DIR_LONG:
		if (!eq || !parse_long(val, vlen, spec->min, spec->max, &v))
			goto bad;
		*(long *)(base + spec->off) = v;
		return 1;
	case DIR_PAIR:
		/* stall-after=K:MS fills stall_after_k and stall_after_ms. */
		if (!eq || (colon = memchr(val, ':', vlen)) == NULL)
			goto bad;
		if (!parse_long(val, (size_t)(colon - val), 0, COUNT_MAX, &v) ||
		    !parse_long(colon + 1, vlen - (size_t)(colon - val) - 1,
		    spec->min, spec->max, &v2))
			goto bad;
		d->stall_after_k = v;
		d->stall_after_ms = v2;
		return 1;
	case DIR_TEXT:
		if (!eq)
			goto bad;
		((struct slice *)(void *)(base + spec->off))->p = val;
		((struct slice *)(void *)(base + spec->off))->n = vlen;
		return 1;
	}
bad:
	if (snprintf(err, errsz, "fake upstream: invalid directive [[%.*s]]",
	    (int)(n > 80 ? 80 : n), s) >= (int)errsz)
		err[errsz - 1] = '\0';
	return -1;
}

/* A header value taken from a directive: printable ASCII, no CR/LF. */
static bool
header_value_ok(struct slice v)
{
	size_t i;

	if (v.n == 0 || v.n > 100)
		return false;
	for (i = 0; i < v.n; i++)
		if ((unsigned char)v.p[i] < 0x20 || (unsigned char)v.p[i] >= 0x7f)
			return false;
	return true;
}

/* Scans s for [[directives]], fills d, and returns in *text (malloc'd,
 * NUL-terminated) s without them, spaces around them collapsed. The slices
 * in d borrow s. Returns false with err set on a bad directive or OOM. */
static bool
directives_parse(const char *s, size_t n, struct directives *d, char **text,
    size_t *text_len, char *err, size_t errsz)
{
	const char *rb;
	size_t i = 0, o = 0;
	bool found = false;
	char *out;
	int r;

	directives_init(d);
	*text = NULL;
	if ((out = malloc(n + 1)) == NULL) {
		snprintf(err, errsz, "out of memory");
		return false;
	}
	while (i < n) {
		if (i + 1 < n && s[i] == '[' && s[i + 1] == '[' &&
		    (rb = memmem(s + i + 2, n - i - 2, "]]", 2)) != NULL) {
			r = directive_apply(d, s + i + 2, (size_t)(rb - s - i - 2),
			    err, errsz);
			if (r < 0) {
				free(out);
				return false;
			}
			if (r > 0) {
				found = true;
				i = (size_t)(rb - s) + 2;
				while (i < n && s[i] == ' ' && (o == 0 || out[o - 1] == ' '))
					i++;
				continue;
			}
		}
		out[o++] = s[i++];
	}
	if (found)
		while (o > 0 && is_ws((unsigned char)out[o - 1]))
			o--;
	out[o] = '\0';

	if (d->split.p && !(d->split.n == 3 && memcmp(d->split.p, "odd", 3) == 0)) {
		snprintf(err, errsz, "fake upstream: [[split=...]] takes only \"odd\"");
		goto bad;
	}
	if ((d->retry_after.p && !header_value_ok(d->retry_after)) ||
	    (d->retry_after_ms.p && !header_value_ok(d->retry_after_ms))) {
		snprintf(err, errsz, "fake upstream: retry-after values must be printable ASCII (1..100 bytes)");
		goto bad;
	}
	if (d->fail_first >= 0 && d->status < 0) {
		snprintf(err, errsz, "fake upstream: [[fail-first=N]] needs [[status=CODE]]");
		goto bad;
	}
	*text = out;
	*text_len = o;
	return true;
bad:
	free(out);
	return false;
}

/* ------------------------------------------------------------------ */
/* Reply building                                                      */
/* ------------------------------------------------------------------ */

/* Appends a message's content: a string, or the "text" of each part
 * joined with single spaces. */
static bool
content_text_append(json_object *msg, struct buf *dst)
{
	json_object *content, *part, *text;
	size_t i, n;
	bool first = true;

	if (!json_object_object_get_ex(msg, "content", &content) || content == NULL)
		return true;
	if (json_object_is_type(content, json_type_string))
		return buf_append(dst, json_object_get_string(content),
		    (size_t)json_object_get_string_len(content));
	if (!json_object_is_type(content, json_type_array))
		return true;
	n = json_object_array_length(content);
	for (i = 0; i < n; i++) {
		part = json_object_array_get_idx(content, i);
		if (!json_object_is_type(part, json_type_object) ||
		    !json_object_object_get_ex(part, "text", &text) ||
		    !json_object_is_type(text, json_type_string))
			continue;
		if (!first && !BUF_LIT(dst, " "))
			return false;
		first = false;
		if (!buf_append(dst, json_object_get_string(text),
		    (size_t)json_object_get_string_len(text)))
			return false;
	}
	return true;
}

static bool
message_has_role(json_object *msg, const char *role)
{
	json_object *r;

	return json_object_is_type(msg, json_type_object) &&
	    json_object_object_get_ex(msg, "role", &r) &&
	    json_object_is_type(r, json_type_string) &&
	    strcmp(json_object_get_string(r), role) == 0;
}

/* Splits the reply into tokens: each is a run of non-space bytes with the
 * whitespace before it; words longer than WORD_PIECE_MAX bytes are cut at
 * UTF-8 character boundaries; trailing whitespace joins the last token. */
static bool
reply_tokenize(const char *s, size_t n, size_t **ends, size_t *count)
{
	size_t *v = NULL, *nv, cap = 0, cnt = 0, i = 0, p, cut;

	*ends = NULL;
	*count = 0;
	while (i < n) {
		while (i < n && is_ws((unsigned char)s[i]))
			i++;
		if (i == n) {
			if (cnt > 0) {
				v[cnt - 1] = n;
				break;
			}
		}
		p = i;
		while (i < n && !is_ws((unsigned char)s[i]))
			i++;
		for (;;) {
			cut = i;
			if (i - p > WORD_PIECE_MAX) {
				cut = p + WORD_PIECE_MAX;
				while (cut > p && is_utf8_cont((unsigned char)s[cut]))
					cut--;
				if (cut == p)
					cut = p + WORD_PIECE_MAX;
			}
			if (cnt == cap) {
				cap = cap ? cap * 2 : 64;
				if ((nv = realloc(v, cap * sizeof(*v))) == NULL) {
					free(v);
					return false;
				}
				v = nv;
			}
			v[cnt++] = cut;
			if (cut == i)
				break;
			p = cut;
		}
	}
	*ends = v;
	*count = cnt;
	return true;
}

/* One parsed chat completion request. */
struct chat {
	json_object		*req;		/* owned */
	const char		*model;		/* borrows req */
	size_t			 model_len;
	bool			 stream, include_usage;
	long			 max_tokens;	/* -1: none */
	long			 prompt_tokens;
	char			*last;		/* owned: last user message text */
	size_t			 last_len;
	char			*text;		/* owned: last without directives */
	size_t			 text_len;
	struct directives	 d;		/* slices borrow last */
	char			*reply;		/* owned */
	size_t			 reply_len;
	size_t			*tok_end;	/* owned */
	size_t			 ntok;
	const char		*finish;
};

static void
chat_free(struct chat *ch)
{
	json_object_put(ch->req);
	free(ch->last);
	free(ch->text);
	free(ch->reply);
	free(ch->tok_end);
	memset(ch, 0, sizeof(*ch));
}

/* Parses a JSON body (bounded depth, strict, UTF-8 checked). NULL if bad. */
static json_object *
json_parse_body(const char *s, size_t n)
{
	struct json_tokener *tok;
	json_object *obj;

	if (n == 0 || n > INT_MAX)
		return NULL;
	if ((tok = json_tokener_new_ex(JSON_DEPTH)) == NULL)
		return NULL;
	json_tokener_set_flags(tok, JSON_TOKENER_STRICT | JSON_TOKENER_VALIDATE_UTF8);
	obj = json_tokener_parse_ex(tok, s, (int)n);
	if (obj != NULL && json_tokener_get_error(tok) != json_tokener_success) {
		json_object_put(obj);
		obj = NULL;
	}
	/* Strict mode leaves trailing bytes unread: only whitespace may follow. */
	if (obj != NULL) {
		for (size_t i = json_tokener_get_parse_end(tok); i < n; i++) {
			if (!is_ws((unsigned char)s[i])) {
				json_object_put(obj);
				obj = NULL;
				break;
			}
		}
	}
	json_tokener_free(tok);
	return obj;
}

/* Builds ch->reply from the request and directives, then its tokens. */
static bool
chat_build_reply(struct chat *ch, json_object *messages)
{
	struct buf b = { 0 };
	json_object *msg = NULL;
	const char *s;
	size_t i, n, len = 0;
	bool ok = true;
	long t;

	if (ch->d.request) {
		s = json_object_to_json_string_length(ch->req, JSON_C_TO_STRING_PLAIN, &len);
		ok = s != NULL && buf_append(&b, s, len);
	} else if (ch->d.system) {
		ok = BUF_LIT(&b, "System prompt: ");
		n = json_object_array_length(messages);
		for (i = 0; i < n; i++) {
			msg = json_object_array_get_idx(messages, i);
			if (message_has_role(msg, "system"))
				break;
		}
		if (ok)
			ok = i < n ? content_text_append(msg, &b) : BUF_LIT(&b, "(none)");
	} else if (ch->d.tokens >= 0) {
		for (t = 0; ok && t < ch->d.tokens; t++)
			ok = buf_appendf(&b, t == 0 ? "t%ld" : " t%ld", t);
	} else if (ch->d.raw.p) {
		ok = buf_append(&b, ch->d.raw.p, ch->d.raw.n);
	} else {
		ok = BUF_LIT(&b, "You said: ") && buf_append(&b, ch->text, ch->text_len);
	}
	if (!ok || (ch->reply = buf_steal(&b, &ch->reply_len)) == NULL) {
		buf_free(&b);
		return false;
	}
	if (!reply_tokenize(ch->reply, ch->reply_len, &ch->tok_end, &ch->ntok))
		return false;
	ch->finish = "stop";
	if (ch->max_tokens >= 0 && ch->ntok > (size_t)ch->max_tokens) {
		ch->ntok = (size_t)ch->max_tokens;
		ch->finish = "length";
	}
	return true;
}

/* Returns the completion's text length after max_tokens truncation. */
static size_t
chat_reply_len(const struct chat *ch)
{
	return ch->ntok == 0 ? 0 : ch->tok_end[ch->ntok - 1];
}

/* ------------------------------------------------------------------ */
/* SSE writing                                                         */
/* ------------------------------------------------------------------ */

static void
stream_free(struct stream *s)
{
	if (s == NULL)
		return;
	free(s->reply);
	free(s->tok_end);
	free(s->head);
	free(s->pieces);
	buf_free(&s->pend);
	free(s);
}

static const char *
sse_eol(const struct stream *s)
{
	return s->crlf ? "\r\n" : "\n";
}

/* Appends p as one chunked-encoding chunk (raw for HTTP/1.0). */
static bool
chunk_append(struct buf *out, bool chunked, const char *p, size_t n)
{
	if (n == 0)
		return true;
	if (!chunked)
		return buf_append(out, p, n);
	return buf_appendf(out, "%zx\r\n", n) && buf_append(out, p, n) &&
	    BUF_LIT(out, "\r\n");
}

static bool
stream_push_piece(struct stream *s, size_t len)
{
	size_t *v, ncap;

	if (s->npieces == s->pieces_cap) {
		ncap = s->pieces_cap ? s->pieces_cap * 2 : 32;
		if ((v = realloc(s->pieces, ncap * sizeof(*v))) == NULL)
			return false;
		s->pieces = v;
		s->pieces_cap = ncap;
	}
	s->pieces[s->npieces++] = len;
	return true;
}

/* Queues one SSE event. Split mode cuts it at 1, 4, 9, 16... (pieces of
 * 1, 3, 5, 7... bytes) and adds a cut inside the first multi-byte character
 * if no cut fell inside one, so the client must reassemble UTF-8. */
static bool
stream_emit(struct conn *c, const char *p, size_t n)
{
	struct stream *s = c->stream;
	size_t k, cut, prev = 0, extra = 0, i;
	bool inside = false;

	if (!s->split)
		return chunk_append(&c->out, s->chunked, p, n);
	for (k = 1; k * k < n; k++)
		if (is_utf8_cont((unsigned char)p[k * k]))
			inside = true;
	if (!inside)
		for (i = 0; i + 1 < n && extra == 0; i++)
			if ((unsigned char)p[i] >= 0xC0 && is_utf8_cont((unsigned char)p[i + 1]))
				extra = i + 1;
	if (!buf_append(&s->pend, p, n))
		return false;
	for (k = 1; prev < n; k++) {
		cut = k * k < n ? k * k : n;
		if (extra > prev && extra < cut) {
			if (!stream_push_piece(s, extra - prev))
				return false;
			prev = extra;
		}
		if (!stream_push_piece(s, cut - prev))
			return false;
		prev = cut;
	}
	return true;
}

/* Sends pending split pieces, each as its own chunk and send() call. With a
 * gap only one piece goes per call. Returns false if c must be destroyed. */
static bool
stream_pump(struct conn *c)
{
	struct stream *s = c->stream;
	size_t len;

	while (s->piece_idx < s->npieces) {
		len = s->pieces[s->piece_idx++];
		if (!chunk_append(&c->out, s->chunked, s->pend.data + s->pend.off, len))
			return false;
		s->pend.off += len;
		if (!conn_flush(c))
			return false;
		if (s->split_gap_ms > 0)
			break;
	}
	if (s->piece_idx == s->npieces) {
		buf_reset(&s->pend);
		s->npieces = s->piece_idx = 0;
	}
	return true;
}

/* srv.scratch collects one event: sse_begin, the JSON, then sse_end. */
static bool
sse_begin(const struct stream *s, const char *event)
{
	buf_reset(&srv.scratch);
	if (event && !buf_appendf(&srv.scratch, "event: %s%s", event, sse_eol(s)))
		return false;
	return BUF_LIT(&srv.scratch, "data: ");
}

static bool
sse_end(struct conn *c)
{
	const char *eol = sse_eol(c->stream);

	return buf_appendz(&srv.scratch, eol) && buf_appendz(&srv.scratch, eol) &&
	    stream_emit(c, srv.scratch.data, srv.scratch.len);
}

static bool
sse_comment(struct conn *c)
{
	const char *eol = sse_eol(c->stream);

	buf_reset(&srv.scratch);
	return buf_appendf(&srv.scratch, ": ping%s%s", eol, eol) &&
	    stream_emit(c, srv.scratch.data, srv.scratch.len);
}

/* A chunk: head, choices with the given delta and finish_reason, tail. */
static bool
sse_choice(struct conn *c, const char *delta_open, const char *tok, size_t tok_len,
    const char *delta_close, const char *finish, bool obfuscation)
{
	struct stream *s = c->stream;
	struct buf *b = &srv.scratch;

	if (!sse_begin(s, NULL) || !buf_append(b, s->head, s->head_len) ||
	    !BUF_LIT(b, "\"choices\":[{\"index\":0,\"delta\":") ||
	    !buf_appendz(b, delta_open) ||
	    (tok && !json_escape_append(b, tok, tok_len)) ||
	    !buf_appendz(b, delta_close) ||
	    !buf_appendf(b, ",\"logprobs\":null,\"finish_reason\":%s%s%s}]",
	    finish ? "\"" : "", finish ? finish : "null", finish ? "\"" : ""))
		return false;
	/* Real OpenAI sends "usage":null on every chunk with include_usage. */
	if (s->include_usage && !BUF_LIT(b, ",\"usage\":null"))
		return false;
	if (obfuscation && !BUF_LIT(b, ",\"obfuscation\":\"x\""))
		return false;
	return BUF_LIT(b, "}") && sse_end(c);
}

static bool
sse_token(struct conn *c, size_t k)
{
	struct stream *s = c->stream;
	size_t start = k == 0 ? 0 : s->tok_end[k - 1];

	return sse_choice(c, "{\"content\":\"", s->reply + start,
	    s->tok_end[k] - start, "\"}", NULL, true);
}

static bool
sse_usage(struct conn *c)
{
	struct stream *s = c->stream;
	struct buf *b = &srv.scratch;

	return sse_begin(s, NULL) && buf_append(b, s->head, s->head_len) &&
	    buf_appendf(b, "\"choices\":[],\"usage\":{\"prompt_tokens\":%ld,"
	    "\"completion_tokens\":%zu,\"total_tokens\":%zu}}", s->prompt_tokens,
	    s->ntok, (size_t)s->prompt_tokens + s->ntok) && sse_end(c);
}

static bool
sse_error(struct conn *c)
{
	struct stream *s = c->stream;

	return sse_begin(s, s->error_as_event ? "error" : NULL) &&
	    BUF_LIT(&srv.scratch, "{\"error\":{\"message\":\"fake mid-stream error\","
	    "\"type\":\"server_error\",\"param\":null,\"code\":null}}") && sse_end(c);
}

static bool
sse_done(struct conn *c)
{
	return sse_begin(c->stream, NULL) && BUF_LIT(&srv.scratch, "[DONE]") &&
	    sse_end(c);
}

/* ------------------------------------------------------------------ */
/* Streams: a state machine advanced by the connection's timer         */
/* ------------------------------------------------------------------ */

static bool
stream_write_head(struct conn *c)
{
	struct stream *s = c->stream;

	return buf_appendf(&c->out, "HTTP/1.1 200 OK\r\nServer: fake-upstream\r\n"
	    "Content-Type: text/event-stream\r\nCache-Control: no-cache\r\n"
	    "%sConnection: %s\r\n\r\n",
	    s->chunked ? "Transfer-Encoding: chunked\r\n" : "",
	    c->keep_alive ? "keep-alive" : "close");
}

/* Schedules the next step one token interval (plus any stall-after) after
 * the time this step was due, not after "now", so loop latency does not
 * accumulate over a long stream; a stream that fell a whole interval
 * behind restarts from now instead of bursting to catch up. */
static void
stream_schedule_next(struct stream *s)
{
	uint64_t base = s->next_at, d = (uint64_t)s->delay_ms;

	if (base + d < srv.now)
		base = srv.now;
	if (s->stall_after_k >= 0 && (size_t)s->stall_after_k == s->next_tok)
		d += (uint64_t)s->stall_after_ms;
	s->next_at = base + d;
}

/* Performs one step of the stream; sets next_at or a final phase. */
static bool
stream_step(struct conn *c)
{
	struct stream *s = c->stream;
	size_t k = s->next_tok;

	switch (s->phase) {
	case PH_HEADERS:
		if (!stream_write_head(c))
			return false;
		s->phase = PH_ROLE;
		s->next_at = (s->next_at > srv.now ? s->next_at : srv.now) +
		    (uint64_t)s->stall_first_ms;
		return true;
	case PH_ROLE:
		if (s->comments && !sse_comment(c))
			return false;
		if (!sse_choice(c, "{\"role\":\"assistant\",\"content\":\"\"}",
		    NULL, 0, "", NULL, false))
			return false;
		s->phase = PH_TOKENS;
		stream_schedule_next(s);
		return true;
	case PH_TOKENS:
		break;
	case PH_END:
	case PH_DROP:
		return true;
	}

	if (s->drop_after >= 0 && (size_t)s->drop_after == k) {
		s->phase = PH_DROP;
		return true;
	}
	if (s->error_after >= 0 && (size_t)s->error_after == k) {
		if (!sse_error(c))
			return false;
		s->phase = PH_END;
		s->end_kind = END_ERRORED;
		return true;
	}
	if (s->comments && !sse_comment(c))
		return false;
	if (k < s->ntok) {
		if (!sse_token(c, k))
			return false;
		s->next_tok++;
		stream_schedule_next(s);
		return true;
	}
	if (!sse_choice(c, "{}", NULL, 0, "", s->finish, false))
		return false;
	if (s->include_usage && !sse_usage(c))
		return false;
	if (!sse_done(c))
		return false;
	s->phase = PH_END;
	s->end_kind = END_COMPLETED;
	return true;
}

/* Runs the stream until it must wait. Called from the request handler and
 * from the connection's timer. Returns false if c must be destroyed. */
static bool
stream_run(struct conn *c)
{
	struct stream *s = c->stream;
	enum stream_end kind;
	int budget;

	for (budget = 16;; budget--) {
		if (!stream_pump(c))
			return false;
		if (s->piece_idx < s->npieces)
			return timer_arm(c, srv.now + (uint64_t)s->split_gap_ms);
		if (s->phase == PH_END) {
			if (s->chunked && !BUF_LIT(&c->out, "0\r\n\r\n"))
				return false;
			kind = s->end_kind;
			stream_end(c, kind);	/* frees s */
			return conn_response_done(c);
		}
		if (s->phase == PH_DROP) {
			stream_end(c, END_DROPPED);
			c->keep_alive = false;
			return conn_begin_close(c);
		}
		/* With zero delays, yield to other connections now and then. */
		if (s->next_at > srv.now || budget == 0)
			return timer_arm(c, s->next_at > srv.now ? s->next_at : srv.now);
		if (!stream_step(c) || !conn_flush(c))
			return false;
	}
}

/* Starts streaming ch's reply; takes its reply and tokens. */
static bool
stream_start(struct conn *c, struct chat *ch)
{
	struct stream *s;
	struct buf head = { 0 };
	const struct directives *d = &ch->d;

	if ((s = calloc(1, sizeof(*s))) == NULL)
		return false;
	if (!buf_appendf(&head, "{\"id\":\"chatcmpl-fake%" PRIu64 "\","
	    "\"object\":\"chat.completion.chunk\",\"created\":%lld,\"model\":\"",
	    ++srv.completion_ids, (long long)time(NULL)) ||
	    !json_escape_append(&head, ch->model, ch->model_len) ||
	    !BUF_LIT(&head, "\",\"system_fingerprint\":\"fp_fake\",") ||
	    (s->head = buf_steal(&head, &s->head_len)) == NULL) {
		buf_free(&head);
		free(s);
		return false;
	}
	s->reply = ch->reply;
	s->reply_len = ch->reply_len;
	s->tok_end = ch->tok_end;
	s->ntok = ch->ntok;
	ch->reply = NULL;
	ch->tok_end = NULL;
	s->finish = ch->finish;
	s->prompt_tokens = ch->prompt_tokens;
	s->include_usage = ch->include_usage && !d->no_usage;
	s->delay_ms = d->delay >= 0 ? d->delay : srv.delay_ms;
	s->stall_first_ms = d->stall_first > 0 ? d->stall_first : 0;
	s->stall_after_k = d->stall_after_k;
	s->stall_after_ms = d->stall_after_ms;
	s->drop_after = d->drop_after;
	s->error_after = d->error_after;
	if (d->event_error_after >= 0 &&
	    (s->error_after < 0 || d->event_error_after <= s->error_after)) {
		s->error_after = d->event_error_after;
		s->error_as_event = true;
	}
	s->split = d->split.p != NULL;
	s->split_gap_ms = d->split_gap > 0 ? d->split_gap : 0;
	s->crlf = d->crlf;
	s->comments = d->comments;
	s->chunked = !c->req.http10;
	if (!s->chunked)
		c->keep_alive = false;	/* HTTP/1.0: the close ends the body */
	s->phase = PH_HEADERS;
	s->next_at = srv.now + (uint64_t)(d->stall_headers > 0 ? d->stall_headers : 0);

	c->stream = s;
	c->state = CS_STREAM;
	srv.st.streams_active++;
	log_status(c, 200);
	return stream_run(c);
}

/* ------------------------------------------------------------------ */
/* Endpoints                                                           */
/* ------------------------------------------------------------------ */

static bool
chat_respond_full(struct conn *c, struct chat *ch)
{
	json_object *root, *choices = NULL, *choice = NULL, *message = NULL;
	json_object *usage = NULL;
	size_t clen = chat_reply_len(ch);
	char id[64];
	bool ok;

	if (snprintf(id, sizeof(id), "chatcmpl-fake%" PRIu64, ++srv.completion_ids) >=
	    (int)sizeof(id))
		return false;
	if ((root = json_object_new_object()) == NULL)
		return false;
	/* Each container is attached before it is filled: root owns all. */
	ok = json_add(root, "id", json_object_new_string(id)) &&
	    json_add(root, "object", json_object_new_string("chat.completion")) &&
	    json_add(root, "created", json_object_new_int64((int64_t)time(NULL))) &&
	    json_add(root, "model", json_object_new_string_len(ch->model,
	    (int)ch->model_len)) &&
	    json_add(root, "choices", choices = json_object_new_array()) &&
	    json_append(choices, choice = json_object_new_object()) &&
	    json_add(choice, "index", json_object_new_int(0)) &&
	    json_add(choice, "message", message = json_object_new_object()) &&
	    json_add(message, "role", json_object_new_string("assistant")) &&
	    json_add(message, "content", json_object_new_string_len(
	    clen ? ch->reply : "", (int)clen)) &&
	    json_add_null(choice, "logprobs") &&
	    json_add(choice, "finish_reason", json_object_new_string(ch->finish)) &&
	    json_add(root, "usage", usage = json_object_new_object()) &&
	    json_add(usage, "prompt_tokens", json_object_new_int64(ch->prompt_tokens)) &&
	    json_add(usage, "completion_tokens", json_object_new_int64((int64_t)ch->ntok)) &&
	    json_add(usage, "total_tokens",
	    json_object_new_int64(ch->prompt_tokens + (int64_t)ch->ntok));
	if (!ok) {
		json_object_put(root);
		return false;
	}
	return http_respond_json(c, 200, root, NULL);
}

/* [[status=CODE]] answers, honouring [[fail-first=N]] buckets. Returns
 * true in *failed when the error was sent. */
static bool
chat_maybe_fail(struct conn *c, struct chat *ch, bool *failed)
{
	const struct directives *d = &ch->d;
	struct map_entry *e;
	struct buf key = { 0 }, hdr = { 0 };
	char msg[64];
	bool ok = true;

	*failed = false;
	if (d->status < 0)
		return true;
	if (d->fail_first >= 0) {
		/* The bucket is the key directive plus the text, so retries
		 * of the same prompt share it. */
		if ((d->key.p && !buf_append(&key, d->key.p, d->key.n)) ||
		    !BUF_LIT(&key, "\x1f") ||
		    !buf_append(&key, ch->text, ch->text_len) ||
		    (e = map_put(&srv.fail_first, key.data, key.len, 0)) == NULL) {
			buf_free(&key);
			return false;
		}
		buf_free(&key);
		if (e->value >= d->fail_first)
			return true;
		e->value++;
	}
	*failed = true;
	if (d->retry_after.p)
		ok = buf_appendf(&hdr, "Retry-After: %.*s\r\n", (int)d->retry_after.n,
		    d->retry_after.p);
	if (ok && d->retry_after_ms.p)
		ok = buf_appendf(&hdr, "retry-after-ms: %.*s\r\n",
		    (int)d->retry_after_ms.n, d->retry_after_ms.p);
	if (ok && !BUF_LIT(&hdr, "\0"))
		ok = false;
	if (ok && snprintf(msg, sizeof(msg), "fake upstream error %ld", d->status) >=
	    (int)sizeof(msg))
		ok = false;
	if (ok)
		ok = http_error(c, (int)d->status, msg,
		    d->status == 429 ? "rate_limit_exceeded" : "server_error", NULL,
		    NULL, hdr.data);
	buf_free(&hdr);
	return ok;
}

static bool
handle_chat(struct conn *c)
{
	struct chat ch;
	json_object *messages, *v, *msg;
	struct buf tmp = { 0 };
	char err[160];
	size_t i, n;
	bool ok = false, failed;
	long stall;

	memset(&ch, 0, sizeof(ch));
	ch.max_tokens = -1;
	ch.req = json_parse_body(c->req.body.data, buf_live(&c->req.body));
	if (ch.req == NULL || !json_object_is_type(ch.req, json_type_object)) {
		chat_free(&ch);
		return http_error(c, 400, "We could not parse the JSON body of your "
		    "request. (HINT: This likely means you aren't using your HTTP "
		    "library correctly.)", "invalid_request_error", NULL, NULL, NULL);
	}
	if (!json_object_object_get_ex(ch.req, "messages", &messages) ||
	    !json_object_is_type(messages, json_type_array) ||
	    (n = json_object_array_length(messages)) == 0) {
		chat_free(&ch);
		return http_error(c, 400, "Missing required parameter: 'messages'.",
		    "invalid_request_error", "messages", "missing_required_parameter",
		    NULL);
	}

	ch.model = DEFAULT_MODEL;
	ch.model_len = strlen(DEFAULT_MODEL);
	if (json_object_object_get_ex(ch.req, "model", &v) &&
	    json_object_is_type(v, json_type_string)) {
		ch.model = json_object_get_string(v);
		ch.model_len = (size_t)json_object_get_string_len(v);
	}
	if (json_object_object_get_ex(ch.req, "stream", &v))
		ch.stream = json_object_get_boolean(v);
	if (json_object_object_get_ex(ch.req, "stream_options", &v) &&
	    json_object_is_type(v, json_type_object) &&
	    json_object_object_get_ex(v, "include_usage", &v))
		ch.include_usage = json_object_get_boolean(v);
	if ((json_object_object_get_ex(ch.req, "max_completion_tokens", &v) ||
	    json_object_object_get_ex(ch.req, "max_tokens", &v)) &&
	    json_object_is_type(v, json_type_int) && json_object_get_int64(v) >= 0)
		ch.max_tokens = json_object_get_int64(v) > COUNT_MAX ? COUNT_MAX :
		    (long)json_object_get_int64(v);

	/* Prompt "tokens": words over all messages; LAST: the last user turn. */
	for (i = 0; i < n; i++) {
		msg = json_object_array_get_idx(messages, i);
		if (!json_object_is_type(msg, json_type_object))
			continue;
		buf_reset(&tmp);
		if (!content_text_append(msg, &tmp))
			goto out;
		ch.prompt_tokens += count_words(tmp.data, tmp.len);
		if (message_has_role(msg, "user")) {
			free(ch.last);
			if ((ch.last = buf_steal(&tmp, &ch.last_len)) == NULL)
				goto out;
		}
	}
	if (ch.prompt_tokens < 1)
		ch.prompt_tokens = 1;
	if (ch.last == NULL && (ch.last = xstrndup("", 0)) == NULL)
		goto out;

	if (!directives_parse(ch.last, ch.last_len, &ch.d, &ch.text, &ch.text_len,
	    err, sizeof(err))) {
		ok = http_error(c, 400, err, "invalid_request_error", "messages",
		    NULL, NULL);
		goto out;
	}

	/* Held-back plain responses wait for both stalls. */
	stall = (ch.d.stall_headers > 0 ? ch.d.stall_headers : 0) +
	    (ch.d.stall_first > 0 ? ch.d.stall_first : 0);
	if (!ch.stream || ch.d.status >= 0)
		c->defer_ms = stall;
	if (!chat_maybe_fail(c, &ch, &failed))
		goto out;
	if (failed) {
		ok = true;
		goto out;
	}
	if (!chat_build_reply(&ch, messages))
		goto out;

	if (ch.stream) {
		ok = stream_start(c, &ch);
	} else if (ch.d.drop_after >= 0) {
		/* A plain request that "drops" gets no response at all. */
		log_request(c, "drop");
		c->defer_drop = true;
		c->state = CS_WAIT;
		ok = timer_arm(c, srv.now + (uint64_t)stall);
		c->defer_ms = 0;
	} else {
		ok = chat_respond_full(c, &ch);
	}
out:
	c->defer_ms = 0;
	buf_free(&tmp);
	chat_free(&ch);
	return ok;
}

static bool
handle_models(struct conn *c)
{
	static const char body[] = "{\"object\":\"list\",\"data\":[{\"id\":\""
	    DEFAULT_MODEL "\",\"object\":\"model\",\"created\":0,\"owned_by\":\"fake\"}]}";

	return http_respond(c, 200, "application/json", NULL, body, sizeof(body) - 1);
}

/* Mints an ephemeral key valid until expires_at (unix seconds). */
static bool
secret_mint(char *out, size_t outsz, int64_t expires_at)
{
	static const char hex[] = "0123456789abcdef";
	unsigned char rnd[12];
	size_t i;

	if (outsz < 8 + 2 * sizeof(rnd) + 1)
		return false;
	if (getrandom(rnd, sizeof(rnd), 0) != (ssize_t)sizeof(rnd))
		return false;
	memcpy(out, "ek_fake_", 8);
	for (i = 0; i < sizeof(rnd); i++) {
		out[8 + 2 * i] = hex[rnd[i] >> 4];
		out[9 + 2 * i] = hex[rnd[i] & 15];
	}
	out[8 + 2 * sizeof(rnd)] = '\0';
	return map_put(&srv.secrets, out, strlen(out), expires_at) != NULL;
}

static bool
instructions_refuse(json_object *obj)
{
	json_object *v;

	return json_object_is_type(obj, json_type_object) &&
	    json_object_object_get_ex(obj, "instructions", &v) &&
	    json_object_is_type(v, json_type_string) &&
	    strstr(json_object_get_string(v), "[[refuse]]") != NULL;
}

static bool
handle_client_secrets(struct conn *c)
{
	json_object *req, *session = NULL, *v, *root = NULL;
	char key[64], sid[64];
	int64_t ttl = 600, exp;
	bool ok = false;

	req = json_parse_body(c->req.body.data, buf_live(&c->req.body));
	if (req == NULL || !json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		return http_error(c, 400, "We could not parse the JSON body of your "
		    "request.", "invalid_request_error", NULL, NULL, NULL);
	}
	if (json_object_object_get_ex(req, "session", &v) && v != NULL) {
		if (!json_object_is_type(v, json_type_object)) {
			json_object_put(req);
			return http_error(c, 400, "Invalid type for 'session': "
			    "expected an object.", "invalid_request_error",
			    "session", "invalid_type", NULL);
		}
		session = json_object_get(v);
	} else if ((session = json_object_new_object()) == NULL ||
	    !json_add(session, "type", json_object_new_string("realtime"))) {
		goto out;
	}
	if (instructions_refuse(session)) {
		ok = http_error(c, 403, "fake upstream refused the session",
		    "invalid_request_error", "session.instructions", "refused", NULL);
		goto out;
	}
	if (json_object_object_get_ex(req, "expires_after", &v) &&
	    json_object_is_type(v, json_type_object) &&
	    json_object_object_get_ex(v, "seconds", &v) &&
	    json_object_is_type(v, json_type_int) &&
	    json_object_get_int64(v) >= 10 && json_object_get_int64(v) <= 7200)
		ttl = json_object_get_int64(v);
	exp = (int64_t)time(NULL) + ttl;
	if (!secret_mint(key, sizeof(key), exp) ||
	    snprintf(sid, sizeof(sid), "sess_fake%" PRIu64, ++srv.session_ids) >=
	    (int)sizeof(sid))
		goto out;
	if (!json_add(session, "id", json_object_new_string(sid)) ||
	    (root = json_object_new_object()) == NULL ||
	    !json_add(root, "value", json_object_new_string(key)) ||
	    !json_add(root, "expires_at", json_object_new_int64(exp)) ||
	    !json_add(root, "session", json_object_get(session)))
		goto out;
	srv.st.realtime_secrets++;
	ok = http_respond_json(c, 200, root, NULL);
	root = NULL;
out:
	json_object_put(root);
	json_object_put(session);
	json_object_put(req);
	return ok;
}

/* Copies field k from req into dst, or the default given as JSON text. */
static bool
session_field(json_object *dst, json_object *req, const char *k, const char *dflt)
{
	json_object *v;

	if (json_object_object_get_ex(req, k, &v)) {
		/* v may be JSON null (NULL): echoed as null. */
		if (json_object_object_add(dst, k, json_object_get(v)) != 0) {
			json_object_put(v);
			return false;
		}
		return true;
	}
	return json_add(dst, k, json_tokener_parse(dflt));
}

static bool
handle_sessions(struct conn *c)
{
	json_object *req, *root = NULL, *secret = NULL;
	char key[64], sid[64];
	int64_t exp;
	bool ok = false;

	req = json_parse_body(c->req.body.data, buf_live(&c->req.body));
	if (req == NULL || !json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		return http_error(c, 400, "We could not parse the JSON body of your "
		    "request.", "invalid_request_error", NULL, NULL, NULL);
	}
	if (instructions_refuse(req)) {
		ok = http_error(c, 403, "fake upstream refused the session",
		    "invalid_request_error", "instructions", "refused", NULL);
		goto out;
	}
	exp = (int64_t)time(NULL) + 60;
	if (!secret_mint(key, sizeof(key), exp) ||
	    snprintf(sid, sizeof(sid), "sess_fake%" PRIu64, ++srv.session_ids) >=
	    (int)sizeof(sid))
		goto out;
	if ((root = json_object_new_object()) == NULL ||
	    !json_add(root, "id", json_object_new_string(sid)) ||
	    !json_add(root, "object", json_object_new_string("realtime.session")) ||
	    !session_field(root, req, "model", "\"gpt-4o-realtime-preview\"") ||
	    !session_field(root, req, "voice", "\"alloy\"") ||
	    !session_field(root, req, "instructions", "\"\"") ||
	    !session_field(root, req, "modalities", "[\"audio\",\"text\"]") ||
	    !session_field(root, req, "turn_detection", "{\"type\":\"server_vad\"}") ||
	    !json_add(root, "client_secret", secret = json_object_new_object()) ||
	    !json_add(secret, "value", json_object_new_string(key)) ||
	    !json_add(secret, "expires_at", json_object_new_int64(exp)))
		goto out;
	srv.st.realtime_secrets++;
	ok = http_respond_json(c, 200, root, NULL);
	root = NULL;
out:
	json_object_put(root);
	json_object_put(req);
	return ok;
}

/* Whether the request carries "Bearer ek_..." that this process minted and
 * that has not expired. */
static bool
auth_ephemeral_ok(const struct conn *c)
{
	const char *a = c->req.auth;
	struct map_entry *e;

	if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0)
		return false;
	a += 7;
	while (*a == ' ')
		a++;
	if (strncmp(a, "ek_", 3) != 0)
		return false;
	e = map_get(&srv.secrets, a, strlen(a));
	return e != NULL && e->value >= (int64_t)time(NULL);
}

static bool
auth_key_ok(const struct conn *c)
{
	const char *a = c->req.auth;

	if (srv.api_key == NULL)
		return true;
	if (a == NULL || strncasecmp(a, "Bearer ", 7) != 0)
		return false;
	return strcmp(a + 7, srv.api_key) == 0;
}

struct sdp_section {
	char	kind[16];
	char	proto[64];
	char	fmts[128];
	char	mid[32];
	char	dir[16];
	char	pt[8];
	char	rtpmap[128];
	char	fmtp[256];
	bool	opus;
};

static bool
sdp_copy(char *dst, size_t dstsz, const char *p, size_t n)
{
	if (n >= dstsz)
		return false;
	memcpy(dst, p, n);
	dst[n] = '\0';
	return true;
}

/* Sets a fixed-size field from a C string; false if it does not fit. */
static bool
sdp_set(char *dst, size_t dstsz, const char *z)
{
	return sdp_copy(dst, dstsz, z, strlen(z));
}

static bool
sdp_starts(const char *p, size_t n, const char *z)
{
	size_t zl = strlen(z);

	return n >= zl && memcmp(p, z, zl) == 0;
}

/* Reads the offer's media sections so the answer mirrors them (same order,
 * mids, a payload type the offer listed): browsers reject anything else. */
static int
sdp_parse_offer(const char *d, size_t n, struct sdp_section *sec, int max)
{
	const char *line = d, *end = d + n, *nl, *sp;
	struct sdp_section *s = NULL;
	size_t len, f;
	int count = 0;

	for (; line < end; line = nl + 1) {
		if ((nl = memchr(line, '\n', (size_t)(end - line))) == NULL)
			nl = end;
		len = (size_t)(nl - line);
		if (len > 0 && line[len - 1] == '\r')
			len--;
		if (sdp_starts(line, len, "m=")) {
			const char *f1, *f2, *f3;

			if (count == max)
				return -1;
			s = &sec[count++];
			memset(s, 0, sizeof(*s));
			if (!sdp_set(s->dir, sizeof(s->dir), "sendrecv"))
				return -1;
			f1 = line + 2;
			if ((f2 = memchr(f1, ' ', len - 2)) == NULL ||
			    (f2 = memchr(f2 + 1, ' ', (size_t)(line + len - f2 - 1))) == NULL)
				return -1;
			f2++;
			if ((f3 = memchr(f2, ' ', (size_t)(line + len - f2))) == NULL)
				return -1;
			sp = memchr(f1, ' ', len - 2);
			if (!sdp_copy(s->kind, sizeof(s->kind), f1, (size_t)(sp - f1)) ||
			    !sdp_copy(s->proto, sizeof(s->proto), f2, (size_t)(f3 - f2)) ||
			    !sdp_copy(s->fmts, sizeof(s->fmts), f3 + 1,
			    (size_t)(line + len - f3 - 1)))
				return -1;
			/* The first format is the default payload type; for
			 * data channels it is a name, and pt is unused. */
			f = strcspn(s->fmts, " ");
			if (strcmp(s->kind, "application") != 0 &&
			    !sdp_copy(s->pt, sizeof(s->pt), s->fmts, f))
				return -1;
			continue;
		}
		if (s == NULL)
			continue;
		if (sdp_starts(line, len, "a=mid:")) {
			if (!sdp_copy(s->mid, sizeof(s->mid), line + 6, len - 6))
				return -1;
		} else if (sdp_starts(line, len, "a=sendonly") ||
		    sdp_starts(line, len, "a=recvonly") ||
		    sdp_starts(line, len, "a=inactive")) {
			/* The answer's direction mirrors the offer's. */
			if (!sdp_set(s->dir, sizeof(s->dir),
			    line[2] == 'i' ? "inactive" :
			    line[2] == 's' ? "recvonly" : "sendonly"))
				return -1;
		} else if (sdp_starts(line, len, "a=rtpmap:")) {
			const char *pt = line + 9, *codec;

			if ((codec = memchr(pt, ' ', len - 9)) == NULL)
				continue;
			f = (size_t)(codec - pt);
			codec++;
			if (!s->opus && strcmp(s->kind, "audio") == 0 &&
			    (size_t)(line + len - codec) > 5 &&
			    strncasecmp(codec, "opus/", 5) == 0) {
				if (!sdp_copy(s->pt, sizeof(s->pt), pt, f))
					return -1;
				s->opus = true;
				s->fmtp[0] = '\0';
			} else if (!(strlen(s->pt) == f && memcmp(s->pt, pt, f) == 0) ||
			    s->rtpmap[0] != '\0') {
				continue;
			}
			if (!sdp_copy(s->rtpmap, sizeof(s->rtpmap), codec,
			    (size_t)(line + len - codec)))
				return -1;
		} else if (sdp_starts(line, len, "a=fmtp:")) {
			const char *pt = line + 7, *params;

			if ((params = memchr(pt, ' ', len - 7)) == NULL)
				continue;
			f = (size_t)(params - pt);
			if (strlen(s->pt) == f && memcmp(s->pt, pt, f) == 0 &&
			    !sdp_copy(s->fmtp, sizeof(s->fmtp), params + 1,
			    (size_t)(line + len - params - 1)))
				return -1;
		}
	}
	return count;
}

static bool
sdp_build_answer(struct buf *b, const struct sdp_section *sec, int n, uint64_t id)
{
	static const char fp[] = "a=fingerprint:sha-256 "
	    "0F:A1:5E:23:74:9B:C2:D8:11:6E:44:3A:8F:B7:09:C5:"
	    "72:1D:E0:58:AB:36:94:CF:07:61:F3:2B:8D:4A:E6:10\r\n";
	bool ok;
	int i;

	ok = buf_appendf(b, "v=0\r\no=- %" PRIu64 " 2 IN IP4 127.0.0.1\r\n"
	    "s=fake\r\nt=0 0\r\n", (uint64_t)4611686018427387904ULL + id);
	if (ok && sec[0].mid[0]) {
		ok = BUF_LIT(b, "a=group:BUNDLE");
		for (i = 0; ok && i < n; i++)
			if (sec[i].mid[0])
				ok = buf_appendf(b, " %s", sec[i].mid);
		ok = ok && BUF_LIT(b, "\r\n");
	}
	ok = ok && BUF_LIT(b, "a=msid-semantic: WMS\r\n");
	for (i = 0; ok && i < n; i++) {
		const struct sdp_section *s = &sec[i];
		bool app = strcmp(s->kind, "application") == 0;

		ok = buf_appendf(b, "m=%s 9 %s %s\r\nc=IN IP4 0.0.0.0\r\n", s->kind,
		    s->proto, app ? s->fmts : s->pt);
		if (ok && !app)
			ok = BUF_LIT(b, "a=rtcp:9 IN IP4 0.0.0.0\r\n");
		ok = ok && BUF_LIT(b, "a=ice-ufrag:fake\r\n"
		    "a=ice-pwd:fakefakefakefakefakefake\r\n") &&
		    BUF_LIT(b, fp) && BUF_LIT(b, "a=setup:active\r\n");
		if (ok && s->mid[0])
			ok = buf_appendf(b, "a=mid:%s\r\n", s->mid);
		if (ok && app)
			ok = BUF_LIT(b, "a=sctp-port:5000\r\na=max-message-size:262144\r\n");
		if (ok && !app) {
			ok = buf_appendf(b, "a=%s\r\na=rtcp-mux\r\n", s->dir);
			if (ok && s->rtpmap[0])
				ok = buf_appendf(b, "a=rtpmap:%s %s\r\n", s->pt, s->rtpmap);
			if (ok && s->fmtp[0])
				ok = buf_appendf(b, "a=fmtp:%s %s\r\n", s->pt, s->fmtp);
		}
	}
	return ok;
}

/* POST /v1/realtime/calls (beta == false) and POST /v1/realtime. */
static bool
handle_sdp(struct conn *c, bool beta)
{
	struct sdp_section sec[16];
	struct buf b = { 0 };
	const char *body = c->req.body.data;
	size_t blen = buf_live(&c->req.body);
	char loc[96];
	uint64_t id;
	bool ok;
	int n;

	if (c->req.ctype == NULL ||
	    strncasecmp(c->req.ctype, "application/sdp", 15) != 0)
		return http_error(c, 400, "Content-Type must be application/sdp",
		    "invalid_request_error", NULL, NULL, NULL);
	if (blen < 3 || memcmp(body, "v=0", 3) != 0)
		return http_error(c, 400, "The SDP offer must start with v=0",
		    "invalid_request_error", NULL, "invalid_offer", NULL);
	if ((n = sdp_parse_offer(body, blen, sec, 16)) < 0)
		return http_error(c, 400, "Could not parse the SDP offer",
		    "invalid_request_error", NULL, "invalid_offer", NULL);
	if (n == 0) {
		/* No media in the offer: answer one Opus audio section. */
		memset(&sec[0], 0, sizeof(sec[0]));
		if (!sdp_set(sec[0].kind, sizeof(sec[0].kind), "audio") ||
		    !sdp_set(sec[0].proto, sizeof(sec[0].proto), "UDP/TLS/RTP/SAVPF") ||
		    !sdp_set(sec[0].pt, sizeof(sec[0].pt), "111") ||
		    !sdp_set(sec[0].mid, sizeof(sec[0].mid), "0") ||
		    !sdp_set(sec[0].dir, sizeof(sec[0].dir), "sendrecv") ||
		    !sdp_set(sec[0].rtpmap, sizeof(sec[0].rtpmap), "opus/48000/2"))
			return false;
		n = 1;
	}
	id = ++srv.call_ids;
	if (!sdp_build_answer(&b, sec, n, id) ||
	    snprintf(loc, sizeof(loc), "Location: /v1/realtime/calls/rtc_fake%"
	    PRIu64 "\r\nAccess-Control-Expose-Headers: Location\r\n", id) >=
	    (int)sizeof(loc)) {
		buf_free(&b);
		return false;
	}
	srv.st.sdp_answers++;
	ok = http_respond(c, 201, "application/sdp", beta ? NULL : loc, b.data, b.len);
	buf_free(&b);
	return ok;
}

static bool
handle_sdp_calls(struct conn *c)
{
	return handle_sdp(c, false);
}

static bool
handle_sdp_beta(struct conn *c)
{
	return handle_sdp(c, true);
}

static bool
handle_stats(struct conn *c)
{
	char body[512];
	int n;

	n = snprintf(body, sizeof(body), "{\"requests\":%" PRIu64 ","
	    "\"chat_requests\":%" PRIu64 ",\"streams_active\":%" PRIu64 ","
	    "\"streams_completed\":%" PRIu64 ",\"streams_aborted_by_client\":%" PRIu64
	    ",\"streams_errored\":%" PRIu64 ",\"streams_dropped\":%" PRIu64 ","
	    "\"realtime_secrets\":%" PRIu64 ",\"sdp_answers\":%" PRIu64 "}",
	    srv.st.requests, srv.st.chat_requests, srv.st.streams_active,
	    srv.st.streams_completed, srv.st.streams_aborted_by_client,
	    srv.st.streams_errored, srv.st.streams_dropped,
	    srv.st.realtime_secrets, srv.st.sdp_answers);
	if (n < 0 || (size_t)n >= sizeof(body))
		return false;
	return http_respond(c, 200, "application/json", NULL, body, (size_t)n);
}

static bool
handle_reset(struct conn *c)
{
	static const char body[] = "{\"ok\":true}";
	uint64_t active = srv.st.streams_active;

	/* streams_active is a gauge of live streams, not a counter. */
	memset(&srv.st, 0, sizeof(srv.st));
	srv.st.streams_active = active;
	map_clear(&srv.fail_first);
	return http_respond(c, 200, "application/json", NULL, body, sizeof(body) - 1);
}

enum auth_kind { AUTH_NONE, AUTH_KEY, AUTH_EPHEMERAL };

static const struct route {
	const char	*path;
	const char	*method;
	enum auth_kind	 auth;
	bool		(*handler)(struct conn *);
} routes[] = {
	{ "/v1/chat/completions",	"POST", AUTH_KEY,	handle_chat },
	{ "/v1/models",			"GET",	AUTH_KEY,	handle_models },
	{ "/v1/realtime/client_secrets", "POST", AUTH_KEY,	handle_client_secrets },
	{ "/v1/realtime/sessions",	"POST", AUTH_KEY,	handle_sessions },
	{ "/v1/realtime/calls",		"POST", AUTH_EPHEMERAL,	handle_sdp_calls },
	{ "/v1/realtime",		"POST", AUTH_EPHEMERAL,	handle_sdp_beta },
	{ "/_fake/stats",		"GET",	AUTH_NONE,	handle_stats },
	{ "/_fake/reset",		"POST", AUTH_NONE,	handle_reset },
};

static bool
path_is(const struct request *r, const char *z)
{
	return strlen(z) == r->path_len && memcmp(r->target, z, r->path_len) == 0;
}

static bool
path_has_prefix(const struct request *r, const char *z)
{
	size_t n = strlen(z);

	return r->path_len >= n && memcmp(r->target, z, n) == 0;
}

/* Dispatches one complete request. Returns false if c must be destroyed. */
static bool
route_request(struct conn *c)
{
	struct request *r = &c->req;
	const struct route *rt = NULL;
	char msg[160], allow[48];
	size_t i;

	c->keep_alive = r->keep_alive;
	/* No HEAD support: the error body we send would desync keep-alive. */
	if (strcmp(r->method, "HEAD") == 0)
		c->keep_alive = false;
	c->defer_ms = 0;
	c->cors = path_has_prefix(r, "/v1/realtime");

	if (strcmp(r->method, "OPTIONS") == 0) {
		c->cors = true;
		return http_respond(c, 204, NULL,
		    "Access-Control-Allow-Headers: Authorization, Content-Type\r\n"
		    "Access-Control-Allow-Methods: GET, POST, OPTIONS\r\n"
		    "Access-Control-Max-Age: 600\r\n", NULL, 0);
	}
	if (!path_has_prefix(r, "/_fake/"))
		srv.st.requests++;
	for (i = 0; i < sizeof(routes) / sizeof(routes[0]); i++)
		if (path_is(r, routes[i].path))
			rt = &routes[i];
	if (rt == &routes[0] && strcmp(r->method, "POST") == 0)
		srv.st.chat_requests++;

	if (rt && strcmp(r->method, rt->method) != 0) {
		if (snprintf(allow, sizeof(allow), "Allow: %s, OPTIONS\r\n",
		    rt->method) >= (int)sizeof(allow))
			return false;
		if (snprintf(msg, sizeof(msg), "Invalid method for %s: use %s.",
		    rt->path, rt->method) >= (int)sizeof(msg))
			return false;
		return http_error(c, 405, msg, "invalid_request_error", NULL,
		    "method_not_allowed", allow);
	}
	if (path_has_prefix(r, "/v1/") && (rt == NULL || rt->auth == AUTH_KEY) &&
	    !auth_key_ok(c))
		return http_error(c, 401, "Incorrect API key provided",
		    "invalid_request_error", NULL, "invalid_api_key", NULL);
	if (rt == NULL) {
		if (snprintf(msg, sizeof(msg), "Unknown request URL: %s %.*s.",
		    r->method, (int)(r->path_len > 100 ? 100 : r->path_len),
		    r->target) < 0)
			return false;
		return http_error(c, 404, msg, "invalid_request_error", NULL,
		    "unknown_url", NULL);
	}
	if (rt->auth == AUTH_EPHEMERAL && !auth_ephemeral_ok(c))
		return http_error(c, 401, "Invalid or expired ephemeral key "
		    "(expected Bearer ek_... minted by this server)",
		    "invalid_request_error", NULL, "invalid_api_key", NULL);
	return rt->handler(c);
}

/* ------------------------------------------------------------------ */
/* Main loop                                                           */
/* ------------------------------------------------------------------ */

/* Parses and answers buffered requests while the connection is idle. */
static bool
conn_process_input(struct conn *c)
{
	struct request *r = &c->req;
	size_t skip, end;
	bool ok;
	int st;

	while (c->state == CS_READ) {
		if (!r->head_done) {
			/* Stray CRLFs between requests are allowed. */
			for (skip = 0; skip < c->in.len &&
			    (c->in.data[skip] == '\r' || c->in.data[skip] == '\n'); skip++)
				;
			if (skip > 0) {
				buf_drop_front(&c->in, skip);
				c->scan_off = 0;
			}
			if ((end = http_find_head_end(c)) == 0) {
				if (c->in.len >= HEAD_MAX)
					return http_fail(c, 431,
					    "Request header fields too large");
				return true;
			}
			c->scan_off = 0;
			if (end > HEAD_MAX)
				return http_fail(c, 431, "Request header fields too large");
			st = http_parse_head(r, c->in.data, end);
			buf_drop_front(&c->in, end);
			if (st != 0)
				return http_fail(c, st, st == 413 ?
				    "Request body too large (max 4 MiB)" :
				    "Malformed HTTP request");
			r->head_done = true;
			if (r->expect_continue && !r->http10 &&
			    ((r->body_mode == BODY_LENGTH && c->in.len < r->body_left) ||
			    (r->body_mode == BODY_CHUNKED && c->in.len == 0))) {
				if (!BUF_LIT(&c->out, "HTTP/1.1 100 Continue\r\n\r\n") ||
				    !conn_flush(c))
					return false;
			}
		}
		st = http_read_body(c);
		if (st == 1)
			return true;
		if (st != 0)
			return http_fail(c, st, st == 413 ?
			    "Request body too large (max 4 MiB)" :
			    "Malformed request body");
		ok = route_request(c);
		request_reset(r);
		if (!ok)
			return false;
	}
	return true;
}

static bool
conn_on_eof(struct conn *c)
{
	c->rd_eof = true;
	if ((c->state == CS_READ || c->state == CS_DRAIN_CLOSE) &&
	    buf_live(&c->out) > 0) {
		/* A half-closed client still gets what is queued. */
		c->state = CS_DRAIN_CLOSE;
		return conn_update_events(c);
	}
	return false;	/* a stream in progress counts as aborted */
}

/* Reads straight into the body of a Content-Length request: big bodies
 * skip the input buffer. Returns bytes read, 0 at EOF, -1 (errno) else. */
static ssize_t
conn_recv_body(struct conn *c)
{
	struct request *r = &c->req;
	size_t want = r->body_left < 65536 ? r->body_left : 65536;
	ssize_t n;

	if (!buf_reserve_max(&r->body, want, BODY_MAX)) {
		errno = ENOMEM;
		return -1;
	}
	n = recv(c->fd, r->body.data + r->body.len, want, 0);
	if (n > 0) {
		r->body.len += (size_t)n;
		r->body_left -= (size_t)n;
	}
	return n;
}

static bool
conn_on_readable(struct conn *c)
{
	size_t want;
	ssize_t n;
	int rounds;

	for (rounds = 0; rounds < 8; rounds++) {
		if (c->state == CS_READ && c->req.head_done &&
		    c->req.body_mode == BODY_LENGTH && c->req.body_left > 0 &&
		    c->in.len == 0) {
			n = conn_recv_body(c);
		} else {
			want = IN_MAX - c->in.len;
			if (want == 0) {
				if (c->state == CS_LINGER) {
					buf_reset(&c->in);
					continue;
				}
				return false;	/* a busy client flooding us */
			}
			if (want > READ_MIN)
				want = READ_MIN;
			if (!buf_reserve_max(&c->in, want, IN_MAX))
				return false;
			n = recv(c->fd, c->in.data + c->in.len, c->in.cap - c->in.len, 0);
			if (n > 0)
				c->in.len += (size_t)n;
		}
		if (n > 0) {
			if (c->state == CS_LINGER)
				buf_reset(&c->in);
			else if (c->state == CS_READ && !conn_process_input(c))
				return false;
			continue;
		}
		if (n == 0)
			return conn_on_eof(c);
		if (errno == EINTR)
			continue;
		if (errno == EAGAIN || errno == EWOULDBLOCK)
			break;
		return false;	/* ECONNRESET and friends */
	}
	return true;
}

static void
conn_on_event(struct conn *c, uint32_t events)
{
	bool ok = true;

	if (events & (EPOLLERR | EPOLLHUP))
		ok = false;
	if (ok && (events & EPOLLOUT))
		ok = conn_flush(c);
	if (ok && (events & EPOLLIN) && !c->rd_eof)
		ok = conn_on_readable(c);
	if (!ok)
		conn_destroy(c);
}

static void
conn_on_timer(struct conn *c)
{
	bool ok = false;

	switch (c->state) {
	case CS_WAIT:
		if (c->defer_drop) {
			c->defer_drop = false;
			c->keep_alive = false;
			buf_free(&c->deferred);
			ok = conn_begin_close(c);
			break;
		}
		ok = buf_append(&c->out, c->deferred.data, c->deferred.len);
		buf_free(&c->deferred);
		ok = ok && conn_response_done(c);
		break;
	case CS_STREAM:
		ok = stream_run(c);
		break;
	case CS_READ:
		ok = true;
		break;
	case CS_DRAIN_CLOSE:
	case CS_LINGER:
		ok = false;	/* linger timeout */
		break;
	}
	if (ok && c->state == CS_READ && buf_live(&c->in) > 0)
		ok = conn_process_input(c);
	if (!ok)
		conn_destroy(c);
}

static void
timers_run(void)
{
	uint64_t limit = srv.timer_seq;
	struct conn *c;

	/* Timers armed while running wait for the next turn of the loop, so
	 * zero-delay streams cannot starve the sockets. */
	while (srv.heap_len > 0) {
		c = srv.heap[0];
		if (c->t_when > srv.now || c->t_seq >= limit)
			break;
		timer_cancel(c);
		conn_on_timer(c);
	}
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

static int
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

/* Prints the one readiness line (with the real port when PORT was 0). */
static bool
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

static void
usage(FILE *f)
{
	fprintf(f, "usage: fake-upstream --listen HOST:PORT [--api-key KEY] "
	    "[--delay-ms N] [--quiet]\n");
}

static bool
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

static void
srv_cleanup(void)
{
	while (srv.conns != NULL)
		conn_destroy(srv.conns);
	free(srv.heap);
	map_clear(&srv.fail_first);
	map_clear(&srv.secrets);
	buf_free(&srv.scratch);
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
main(int argc, char **argv)
{
	static const struct option opts[] = {
		{ "listen", required_argument, NULL, 'l' },
		{ "api-key", required_argument, NULL, 'k' },
		{ "delay-ms", required_argument, NULL, 'd' },
		{ "quiet", no_argument, NULL, 'q' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 }
	};
	struct epoll_event evs[EVENTS_MAX];
	struct signalfd_siginfo si;
	const char *listen_spec = NULL;
	bool quit = false;
	int ch, i, n;

	srv.delay_ms = 20;
	while ((ch = getopt_long(argc, argv, "l:k:d:qh", opts, NULL)) != -1) {
		switch (ch) {
		case 'l':
			listen_spec = optarg;
			break;
		case 'k':
			srv.api_key = optarg;
			break;
		case 'd':
			if (!parse_long(optarg, strlen(optarg), 0, DELAY_MAX_MS,
			    &srv.delay_ms)) {
				fprintf(stderr, "fake-upstream: --delay-ms takes 0..%ld\n",
				    DELAY_MAX_MS);
				return 2;
			}
			break;
		case 'q':
			srv.quiet = true;
			break;
		case 'h':
			usage(stdout);
			return 0;
		default:
			usage(stderr);
			return 2;
		}
	}
	if (listen_spec == NULL || optind != argc) {
		usage(stderr);
		return 2;
	}
	if ((srv.lfd = srv_listen(listen_spec)) < 0) {
		fprintf(stderr, "fake-upstream: bad or unusable --listen %s\n",
		    listen_spec);
		return 1;
	}
	if (!srv_setup() || !srv_announce()) {
		fprintf(stderr, "fake-upstream: setup: %s\n", strerror(errno));
		srv_cleanup();
		return 1;
	}

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
