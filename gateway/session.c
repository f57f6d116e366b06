/* session.c: Engine.IO sessions: the sid table, send queues, heartbeats
 * and deferred freeing. */
#include "session.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chat_limits.h"
#include "log.h"
#include "room.h"
#include "sio.h"

#define SID_BUCKETS  4096

static struct session_settings settings = {
	.ping_interval_ms = 25000,
	.ping_timeout_ms = 20000,
	.connect_timeout_ms = 45000,
	.upgrade_timeout_ms = 10000,
	.max_queue_bytes = LIMIT_SESSION_QUEUE_BYTES,
};
static struct session_hooks hooks;
static struct session *by_sid[SID_BUCKETS];
static struct session *live;     /* all live sessions */
static struct session *dead;     /* closed, waiting for session_reap */
static size_t nlive;

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

static size_t
sid_bucket(const char *sid)
{
	uint32_t h = 2166136261u;

	for (; *sid != '\0'; sid++)
		h = (h ^ (unsigned char)*sid) * 16777619u;
	return h % SID_BUCKETS;
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

bool
session_send(struct session *s, const char *pkt, size_t len)
{
	struct session_pkt *p;

	if (s->closed)
		return false;
	if (s->queued_bytes + len > settings.max_queue_bytes) {
		log_warn("session %s: send queue over %zu bytes: dropping the client", s->sid,
		    settings.max_queue_bytes);
		session_close(s, "send queue full");
		return false;
	}
	if ((p = malloc(sizeof(*p) + SESSION_PKT_HEADROOM + len + 1)) == NULL) {
		log_error("session %s: out of memory queueing %zu bytes", s->sid, len);
		session_close(s, "out of memory");
		return false;
	}
	p->next = NULL;
	p->len = len;
	memcpy(session_pkt_data(p), pkt, len);
	session_pkt_data(p)[len] = '\0';
	if (s->tail != NULL)
		s->tail->next = p;
	else
		s->head = p;
	s->tail = p;
	s->queued_bytes += len;
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
	s->head = p->next;
	if (s->head == NULL)
		s->tail = NULL;
	s->queued_bytes -= p->len;
	p->next = NULL;
	return p;
}

void
session_pong(struct session *s, int64_t now_ms)
{
	s->awaiting_pong = false;
	s->next_ping_ms = now_ms + settings.ping_interval_ms;
}

static void
queue_free(struct session *s)
{
	struct session_pkt *p;

	while ((p = session_pop(s)) != NULL)
		free(p);
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
			s->pong_deadline_ms = now_ms + settings.ping_timeout_ms;
			(void)session_send(s, "2", 1);
		}
	}
}

size_t
session_count(void)
{
	return nlive;
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
