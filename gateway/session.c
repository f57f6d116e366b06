/* session.c: Engine.IO sessions: the sid table, send queues and their
 * bounds, heartbeats, sessions per address and deferred freeing. */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chat_limits.h"
#include "clock.h"
#include "events.h"
#include "log.h"
#include "room.h"
#include "sio.h"

#define SID_BUCKETS  4096
#define ADDR_BUCKETS 4096
#define DEFAULT_QUEUE_BYTES (1u << 20)

/* Live sessions of one client address. */
struct addr {
	struct addr *next;
	size_t       n;
	char         ip[LIMIT_CLIENT_IP_BYTES];
};

static struct session_settings settings = {
	.ping_interval_ms = 25000,
	.ping_timeout_ms = 20000,
	.connect_timeout_ms = 45000,
	.upgrade_timeout_ms = 10000,
	.max_queue_bytes = DEFAULT_QUEUE_BYTES,
	.max_total_bytes = 0,
	.sessions_per_address = 0,
};
static struct session_hooks hooks;
static struct session *by_sid[SID_BUCKETS];
static struct session *live;     /* all live sessions */
static struct session *dead;     /* closed, waiting for session_reap */
static size_t nlive;
static size_t total_queued;      /* bytes queued by live sessions */
static size_t ndropped;
static struct addr *by_addr[ADDR_BUCKETS];

void
session_setup(const struct session_settings *s, const struct session_hooks *h)
{
	settings = *s;
	hooks = *h;
}

const struct session_settings *
session_settings(void)
{
	return &settings;
}

static uint32_t
fnv1a(const char *p)
{
	uint32_t h = 2166136261u;

	for (; *p != '\0'; p++)
		h = (h ^ (unsigned char)*p) * 16777619u;
	return h;
}

static size_t
sid_bucket(const char *sid)
{
	return fnv1a(sid) % SID_BUCKETS;
}

/* ---- sessions per address ------------------------------------------------ */

static struct addr **
addr_slot(const char *ip)
{
	struct addr **pp = &by_addr[fnv1a(ip) % ADDR_BUCKETS];

	while (*pp != NULL && strcmp((*pp)->ip, ip) != 0)
		pp = &(*pp)->next;
	return pp;
}

bool
session_admit(const char *client_ip)
{
	struct addr *a;

	if (settings.sessions_per_address == 0)
		return true;
	a = *addr_slot(client_ip != NULL ? client_ip : "");
	return a == NULL || a->n < settings.sessions_per_address;
}

/* Counts a session of ip; false when out of memory. */
static bool
addr_add(const char *ip)
{
	struct addr **pp = addr_slot(ip), *a = *pp;

	if (a == NULL) {
		if ((a = calloc(1, sizeof(*a))) == NULL)
			return false;
		(void)snprintf(a->ip, sizeof(a->ip), "%s", ip);
		*pp = a;
	}
	a->n++;
	return true;
}

static void
addr_remove(const char *ip)
{
	struct addr **pp = addr_slot(ip), *a = *pp;

	if (a == NULL)
		return;
	if (--a->n == 0) {
		*pp = a->next;
		free(a);
	}
}

struct session *
session_find(const char *sid)
{
	for (struct session *s = by_sid[sid_bucket(sid)]; s != NULL; s = s->hnext)
		if (strcmp(s->sid, sid) == 0)
			return s;
	return NULL;
}

struct session *
session_new(enum session_transport transport, const char *client_ip, int64_t now_ms)
{
	struct session *s = calloc(1, sizeof(*s));
	size_t b;

	if (s == NULL) {
		log_error("session: out of memory");
		return NULL;
	}
	/* A collision of 120 random bits is not going to happen; checking
	 * costs nothing and keeps the table's invariant unconditional. */
	do {
		if (!eio_sid_generate(s->sid, sizeof(s->sid)) ||
		    !eio_sid_generate(s->sio_sid, sizeof(s->sio_sid))) {
			log_error("session: no randomness for a sid");
			free(s);
			return NULL;
		}
	} while (session_find(s->sid) != NULL);
	s->transport = transport;
	(void)snprintf(s->client_ip, sizeof(s->client_ip), "%s", client_ip != NULL ? client_ip : "");
	if (!addr_add(s->client_ip)) {
		log_error("session: out of memory");
		free(s);
		return NULL;
	}
	s->next_ping_ms = now_ms + settings.ping_interval_ms;
	s->connect_deadline_ms = now_ms + settings.connect_timeout_ms;
	b = sid_bucket(s->sid);
	s->hnext = by_sid[b];
	by_sid[b] = s;
	s->next = live;
	if (live != NULL)
		live->prev = s;
	live = s;
	nlive++;
	log_debug("session %s: open (%s) client=%s", s->sid,
	    transport == SESSION_POLLING ? "polling" : "websocket", s->client_ip);
	return s;
}

/* ---- queues -------------------------------------------------------------- */

static void
queue_append(struct session *s, struct session_pkt *p)
{
	p->next = NULL;
	if (s->tail != NULL)
		s->tail->next = p;
	else
		s->head = p;
	s->tail = p;
	s->queued_bytes += p->len;
	total_queued += p->len;
	if (p->kind == SESSION_PKT_CHUNK)
		s->nchunks++;
}

/* Unlinks p (prev: the packet before it, or NULL for the head). */
static void
queue_unlink(struct session *s, struct session_pkt *prev, struct session_pkt *p)
{
	if (prev != NULL)
		prev->next = p->next;
	else
		s->head = p->next;
	if (s->tail == p)
		s->tail = prev;
	s->queued_bytes -= p->len;
	total_queued -= p->len;
	if (p->kind == SESSION_PKT_CHUNK)
		s->nchunks--;
	p->next = NULL;
}

static void
queue_free(struct session *s)
{
	struct session_pkt *p;

	while ((p = s->head) != NULL) {
		queue_unlink(s, NULL, p);
		free(p);
	}
}

/* The live session with the most bytes queued, or NULL if none has any. */
static struct session *
largest_queue(void)
{
	struct session *best = NULL;

	for (struct session *s = live; s != NULL; s = s->next)
		if (!s->closing && s->queued_bytes > 0 && (best == NULL || s->queued_bytes > best->queued_bytes))
			best = s;
	return best;
}

/* Makes room for len more bytes on s: drops s when its own queue is full,
 * and the sessions with the most queued while the process's queues are
 * (s among them, possibly). False when s was dropped. A packet alone on
 * an empty queue always fits its session. */
static bool
queue_make_room(struct session *s, size_t len)
{
	if (s->queued_bytes > 0 && s->queued_bytes + len > settings.max_queue_bytes) {
		log_warn("session %s: client=%s send queue over %zu bytes: dropping the client", s->sid,
		    s->client_ip, settings.max_queue_bytes);
		session_drop(s, "send queue full: the client reads too slowly");
		return false;
	}
	while (settings.max_total_bytes > 0 && total_queued + len > settings.max_total_bytes) {
		struct session *victim = largest_queue();

		if (victim == NULL)
			break;   /* nothing queued anywhere: a lone packet goes through */
		log_warn("session %s: client=%s gateway send queues over %zu bytes: dropping the "
		    "client with the most queued (%zu bytes)", victim->sid, victim->client_ip,
		    settings.max_total_bytes, victim->queued_bytes);
		session_drop(victim, "gateway send queues full: the client reads too slowly");
		if (victim == s)
			return false;
	}
	return true;
}

/* A new packet of len bytes, or NULL (logged) when out of memory. */
static struct session_pkt *
pkt_new(const struct session *s, const char *data, size_t len, enum session_pkt_kind kind)
{
	struct session_pkt *p = malloc(sizeof(*p) + SESSION_PKT_HEADROOM + len + 1);

	if (p == NULL) {
		log_error("session %s: out of memory queueing %zu bytes", s->sid, len);
		return NULL;
	}
	p->next = NULL;
	p->len = len;
	p->kind = kind;
	p->from = 0;
	p->stream_id[0] = '\0';
	memcpy(session_pkt_data(p), data, len);
	session_pkt_data(p)[len] = '\0';
	return p;
}

/* Queues a copy of data as a packet of kind; see session_send. */
static bool
queue_push(struct session *s, const char *data, size_t len, enum session_pkt_kind kind)
{
	struct session_pkt *p;

	if (s->closed || s->closing)
		return false;
	if (!queue_make_room(s, len))
		return false;
	if ((p = pkt_new(s, data, len, kind)) == NULL) {
		session_close(s, "out of memory");
		return false;
	}
	queue_append(s, p);
	hooks.wake(s);
	return true;
}

bool
session_send(struct session *s, const char *pkt, size_t len)
{
	return queue_push(s, pkt, len, SESSION_PKT_OTHER);
}

/* ---- stream-chunk merging ---------------------------------------------------- */

void
session_chunk_init(struct session_chunk *c, const char *stream_id, size_t len, const char *full,
    size_t flen)
{
	memset(c, 0, sizeof(*c));
	c->stream_id = stream_id;
	c->full = full != NULL ? full : "";
	c->flen = flen;
	/* A rebuilt reply may have stopped growing at its bound. */
	c->from = len <= flen ? flen - len : 0;
	buf_init(&c->enc, LIMIT_EVENT_BYTES);
	buf_init(&c->merged, LIMIT_EVENT_BYTES);
}

void
session_chunk_free(struct session_chunk *c)
{
	buf_free(&c->enc);
	buf_free(&c->merged);
}

/* Encodes `42["stream-chunk",{...}]` with content full[from..flen]. */
static bool
chunk_encode(const struct session_chunk *c, size_t from, struct buf *out)
{
	struct buf json;
	bool ok;

	buf_init(&json, LIMIT_EVENT_BYTES);
	ok = events_stream_chunk(&json, c->stream_id, c->full + from, c->flen - from, c->full,
	    c->flen, false) && buf_appendc(out, (char)('0' + EIO_MESSAGE)) &&
	    sio_encode_event(out, "/", "stream-chunk", json.data, json.len);
	buf_free(&json);
	return ok;
}

/* The encoding of c starting at from (cached). NULL when too large. */
static const struct buf *
chunk_packet(struct session_chunk *c, size_t from)
{
	if (from == c->from) {
		if (!c->enc_done) {
			c->enc_done = true;
			if (!chunk_encode(c, from, &c->enc))
				buf_free(&c->enc);
		}
		return c->enc.data != NULL ? &c->enc : NULL;
	}
	if (!c->merged_done || c->merged_from != from) {
		buf_reset(&c->merged);
		c->merged_done = true;
		c->merged_from = from;
		if (!chunk_encode(c, from, &c->merged))
			buf_free(&c->merged);
	}
	return c->merged.data != NULL ? &c->merged : NULL;
}

bool
session_send_chunk(struct session *s, struct session_chunk *c)
{
	struct session_pkt *prev = NULL, *old = NULL, *p;
	const struct buf *enc;
	size_t from = c->from;

	if (s->closed || s->closing)
		return false;
	/* Only a session that is behind: one that keeps up sees every delta.
	 * The newest queued chunk of the stream is the one to replace: the
	 * older ones stay, so the contents the client sees still add up. */
	if (s->nchunks > 0 && s->queued_bytes >= settings.max_queue_bytes / 2) {
		struct session_pkt *before = NULL;

		for (p = s->head; p != NULL; before = p, p = p->next)
			if (p->kind == SESSION_PKT_CHUNK && strcmp(p->stream_id, c->stream_id) == 0 &&
			    p->from <= c->from) {
				old = p;
				prev = before;
			}
		if (old != NULL)
			from = old->from;
	}
	if ((enc = chunk_packet(c, from)) == NULL) {
		log_warn("session %s: stream-chunk too large to encode", s->sid);
		return false;
	}
	if (old != NULL) {
		/* Not yet written (written packets leave the queue): the new
		 * chunk says everything it said. */
		queue_unlink(s, prev, old);
		free(old);
	}
	if (!queue_make_room(s, enc->len))
		return false;
	if ((p = pkt_new(s, enc->data, enc->len, SESSION_PKT_CHUNK)) == NULL) {
		session_close(s, "out of memory");
		return false;
	}
	p->from = from;
	(void)snprintf(p->stream_id, sizeof(p->stream_id), "%s", c->stream_id);
	queue_append(s, p);
	hooks.wake(s);
	return true;
}

bool
session_emit(struct session *s, const char *name, const char *json, size_t len)
{
	struct buf b;
	bool ok;

	if (s->closed)
		return false;
	buf_init(&b, LIMIT_EVENT_BYTES);
	ok = buf_appendc(&b, (char)('0' + EIO_MESSAGE)) && sio_encode_event(&b, "/", name, json, len);
	if (!ok)
		log_warn("session %s: event %s too large to encode", s->sid, name);
	else
		ok = session_send(s, b.data, b.len);
	buf_free(&b);
	return ok;
}

bool
session_pending(const struct session *s)
{
	return s->head != NULL;
}

struct session_pkt *
session_pop(struct session *s)
{
	struct session_pkt *p = s->head;

	if (p == NULL)
		return NULL;
	queue_unlink(s, NULL, p);
	/* Popped is delivered: the transport writes it now or closes. */
	if (p->kind == SESSION_PKT_PING)
		s->ping_delivered = true;
	return p;
}

void
session_pong(struct session *s, int64_t now_ms)
{
	/* A pong answers a ping the client got; any other proves nothing
	 * (a client that never polls could post pongs forever). */
	if (s->closing || !s->awaiting_pong || !s->ping_delivered)
		return;
	s->awaiting_pong = false;
	s->ping_delivered = false;
	s->next_ping_ms = now_ms + settings.ping_interval_ms;
}

void
session_drop(struct session *s, const char *reason)
{
	struct session_pkt *p;

	if (s->closed || s->closing)
		return;
	ndropped++;
	queue_free(s);
	room_leave_all(s);
	s->closing = true;
	s->connected = false;   /* its replies stop; its events are ignored */
	s->close_reason = reason;
	s->close_deadline_ms = clock_now_ms() + SESSION_DROP_GRACE_MS;
	/* The goodbye bypasses the bounds: three bytes. The Socket.IO
	 * DISCONNECT makes socket.io-client report "io server disconnect"
	 * (and not reconnect on its own), the close ends the transport. */
	if ((p = pkt_new(s, "41", 2, SESSION_PKT_OTHER)) != NULL)
		queue_append(s, p);
	if ((p = pkt_new(s, "1", 1, SESSION_PKT_OTHER)) != NULL)
		queue_append(s, p);
	hooks.wake(s);
}

void
session_sent(struct session *s)
{
	if (s->closing && !s->closed && s->head == NULL)
		session_close(s, s->close_reason != NULL ? s->close_reason : "dropped");
}

void
session_close(struct session *s, const char *reason)
{
	if (s->closed)
		return;
	s->closed = true;
	log_debug("session %s: closed (%s)", s->sid, reason);
	room_leave_all(s);
	for (struct session **pp = &by_sid[sid_bucket(s->sid)]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == s) {
			*pp = s->hnext;
			break;
		}
	if (s->prev != NULL)
		s->prev->next = s->next;
	else
		live = s->next;
	if (s->next != NULL)
		s->next->prev = s->prev;
	nlive--;
	addr_remove(s->client_ip);
	hooks.detach(s);
	queue_free(s);
	s->prev = NULL;
	s->next = dead;
	dead = s;
}

void
session_reap(void)
{
	while (dead != NULL) {
		struct session *s = dead;

		dead = s->next;
		queue_free(s);
		free(s);
	}
}

void
session_tick(int64_t now_ms)
{
	struct session *s, *next;

	for (s = live; s != NULL; s = next) {
		next = s->next;   /* s may close below */
		if (s->closing) {
			if (now_ms >= s->close_deadline_ms)
				session_close(s, s->close_reason != NULL ? s->close_reason : "dropped");
			continue;
		}
		if (!s->connected && now_ms >= s->connect_deadline_ms) {
			session_close(s, "no CONNECT in time");
			continue;
		}
		if (s->upgrade_ws != NULL && now_ms >= s->upgrade_deadline_ms)
			hooks.upgrade_expired(s);
		if (s->awaiting_pong) {
			if (now_ms >= s->pong_deadline_ms)
				session_close(s, "ping timeout");
		} else if (now_ms >= s->next_ping_ms) {
			s->awaiting_pong = true;
			s->ping_delivered = false;
			s->pong_deadline_ms = now_ms + settings.ping_timeout_ms;
			(void)queue_push(s, "2", 1, SESSION_PKT_PING);
		}
	}
}

size_t
session_count(void)
{
	return nlive;
}

size_t
session_queued_total(void)
{
	return total_queued;
}

size_t
session_dropped_count(void)
{
	return ndropped;
}

size_t
session_backlog(void)
{
	size_t n = 0;

	for (const struct session *s = live; s != NULL; s = s->next)
		if (s->head != NULL && ((s->transport == SESSION_WEBSOCKET && s->ws != NULL) ||
		    (s->transport == SESSION_POLLING && s->poll_wait != NULL)))
			n++;
	return n;
}

void
session_close_all(const char *reason)
{
	while (live != NULL)
		session_close(live, reason);
}
