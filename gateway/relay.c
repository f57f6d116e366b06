/* relay.c: room streams across gateway processes: local emission,
 * coalesced publication, and the rebuilding of other processes' streams. */
#include "relay.h"

#include <json-c/json.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chat_limits.h"
#include "clock.h"
#include "events.h"
#include "json_in.h"
#include "json_out.h"
#include "log.h"
#include "loop.h"
#include "request.h"
#include "room.h"
#include "rooms_pg.h"
#include "session.h"

#define ID_MAX          64
#define CHUNK_ESC_MAX   6000        /* escaped delta bytes in one payload */
#define PIECE_MAX       1000        /* raw bytes taken at once (<= 6x escaped) */
#define BATCH_MAX       (512 << 10) /* bytes of one publishing statement */
#define REMOTE_IDLE_MS  (10 * 60 * 1000)
#define REMOTE_BUCKETS  256

/* A publication waiting for the next flush. */
struct pub {
	struct pub *next;
	char        kind;                     /* s, c, e, x */
	char        stream_id[ID_MAX];
	char        room[ROOM_NAME_MAX + 1];
	char        owner[ID_MAX];            /* the stream's user; "" anonymous */
	unsigned long seq;
	struct buf  text;                     /* c: the delta; x: the error */
	size_t      esc;                      /* text's escaped size */
	char        ts[EVENTS_TS_LEN];
};

/* A stream generated here. */
struct relay_stream {
	char          id[ID_MAX];
	char          room[ROOM_NAME_MAX + 1];
	char          owner[ID_MAX];          /* the stream's user; "" anonymous */
	unsigned long seq;
	struct pub   *open;                   /* chunk still taking deltas ... */
	unsigned long open_gen;               /* ... if flush_gen has not moved */
};

/* A stream of another process, rebuilt here. */
struct remote {
	struct remote *hnext;
	char           id[ID_MAX];
	char           room[ROOM_NAME_MAX + 1];
	char           owner[ID_MAX];         /* the stream's user; "" anonymous */
	struct buf     full;
	int64_t        seen_ms;
};

static char *self_id;
static struct pub *pub_head, *pub_tail;
static unsigned long flush_gen;
static struct loop_timer *flush_timer;
static struct remote *remotes[REMOTE_BUCKETS];
static size_t nremotes;
static bool publish_down;

static void relay_flush(void *ctx);

bool
relay_setup(const char *gateway_id)
{
	if ((self_id = strdup(gateway_id)) == NULL ||
	    (flush_timer = loop_timer_new(relay_flush, NULL)) == NULL) {
		free(self_id);
		self_id = NULL;
		return false;
	}
	return true;
}

/* ---- local emission ----------------------------------------------------- */

/* The room's members hear a stream only while the room is open to its
 * user: once someone owns the room, only the owner's streams. */
static void
emit_room(const char *room, const char *owner, const char *event, struct buf *json, bool ok)
{
	if (!room_accepts(room, owner))
		return;
	if (!ok) {
		log_warn("room %s: %s event too large", room, event);
		return;
	}
	(void)room_emit(room, event, json->data, json->len);
}

static void
emit_start(const char *room, const char *owner, const char *id, const char *ts)
{
	struct buf b;

	buf_init(&b, LIMIT_EVENT_BYTES);
	emit_room(room, owner, "stream-start", &b, events_stream_start(&b, id, room, ts));
	buf_free(&b);
}

static void
emit_chunk(const char *room, const char *owner, const char *id, const char *text, size_t len,
    const char *full, size_t flen, bool complete)
{
	struct buf b;

	if (!complete) {
		/* Members that are behind get it merged with their queued one;
		 * an owned room hears only its owner's streams, as emit_room. */
		if (room_accepts(room, owner))
			(void)room_emit_chunk(room, id, len, full, flen);
		return;
	}

	buf_init(&b, LIMIT_EVENT_BYTES);
	emit_room(room, owner, "stream-chunk", &b,
	    events_stream_chunk(&b, id, text, len, full != NULL ? full : "", flen, complete));
	buf_free(&b);
}

static void
emit_complete(const char *room, const char *owner, const char *id, const char *full, size_t flen,
    const char *ts)
{
	struct buf b;

	emit_chunk(room, owner, id, "", 0, full, flen, true);
	buf_init(&b, LIMIT_EVENT_BYTES);
	emit_room(room, owner, "stream-complete", &b,
	    events_stream_complete(&b, id, full != NULL ? full : "", flen, ts));
	buf_free(&b);
}

static void
emit_error(const char *room, const char *owner, const char *id, const char *error)
{
	struct buf b;

	buf_init(&b, LIMIT_EVENT_BYTES);
	emit_room(room, owner, "stream-error", &b, events_stream_error(&b, id, error));
	buf_free(&b);
}

/* ---- ownership --------------------------------------------------------- */

/* A socket removed from a room another user owns is told so. */
static void
evict_notice(void *ctx, struct session *s, const char *room)
{
	struct buf b;

	(void)ctx;
	buf_init(&b, LIMIT_EVENT_BYTES);
	if (events_room_error(&b, room, REQUEST_MSG_ROOM_TAKEN))
		(void)session_emit(s, "stream-error", b.data, b.len);
	buf_free(&b);
}

void
relay_room_owned(const char *room, const char *owner)
{
	const char *known = room_owner(room);

	if (owner == NULL || owner[0] == '\0') {
		(void)room_set_owner(room, NULL, NULL, NULL);
		return;
	}
	if (known != NULL && strcmp(known, owner) == 0)
		return;   /* known here already: every member is the owner's */
	(void)room_set_owner(room, owner, evict_notice, NULL);
}

/* ---- publication -------------------------------------------------------- */

/* Bytes text takes inside a JSON string (json_put_string's escapes). */
static size_t
escaped_len(const char *p, size_t n)
{
	size_t e = 0;

	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)p[i];

		if (c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t')
			e += 2;
		else if (c < 0x20)
			e += 6;
		else
			e += 1;
	}
	return e;
}

static struct pub *
pub_new(const struct relay_stream *rs, char kind)
{
	struct pub *p = calloc(1, sizeof(*p));

	if (p == NULL) {
		log_error("relay: out of memory: a room publication is lost");
		return NULL;
	}
	p->kind = kind;
	memcpy(p->stream_id, rs->id, sizeof(p->stream_id));
	memcpy(p->room, rs->room, sizeof(p->room));
	memcpy(p->owner, rs->owner, sizeof(p->owner));
	buf_init(&p->text, CHUNK_ESC_MAX + PIECE_MAX);
	if (pub_tail != NULL)
		pub_tail->next = p;
	else
		pub_head = p;
	pub_tail = p;
	if (flush_timer != NULL && !loop_timer_armed(flush_timer))
		loop_timer_set(flush_timer, RELAY_FLUSH_MS);
	return p;
}

static void
pub_free(struct pub *p)
{
	buf_free(&p->text);
	free(p);
}

/* Appends a delta to rs's open chunk publication, opening new ones as the
 * payload limit requires. */
static void
pub_text(struct relay_stream *rs, const char *text, size_t len)
{
	while (len > 0) {
		size_t n = len < PIECE_MAX ? len : PIECE_MAX, e;

		if (n < len && (e = utf8_complete_prefix(text, n)) > 0)
			n = e;   /* never split a character between payloads */
		e = escaped_len(text, n);
		if (rs->open == NULL || rs->open_gen != flush_gen || rs->open->esc + e > CHUNK_ESC_MAX) {
			if ((rs->open = pub_new(rs, 'c')) == NULL)
				return;
			rs->open->seq = rs->seq++;
			rs->open_gen = flush_gen;
		}
		if (!buf_append(&rs->open->text, text, n))
			return;
		rs->open->esc += e;
		text += n;
		len -= n;
	}
}

/* Encodes one publication as its NOTIFY payload. */
static bool
pub_encode(const struct pub *p, struct buf *out)
{
	char kind[2] = { p->kind, '\0' };

	if (!buf_appendc(out, '{') || !json_put_key(out, "g") || !json_put_stringz(out, self_id) ||
	    !buf_appendc(out, ',') || !json_put_key(out, "r") || !json_put_stringz(out, p->room) ||
	    !buf_appendc(out, ',') || !json_put_key(out, "s") || !json_put_stringz(out, p->stream_id) ||
	    !buf_printf(out, ",\"n\":%lu,", p->seq) || !json_put_key(out, "k") ||
	    !json_put_stringz(out, kind))
		return false;
	/* Every payload names the stream's owner: a gateway that missed the
	 * start still learns who owns the room before delivering anything. */
	if (p->owner[0] != '\0' && (!buf_appendc(out, ',') || !json_put_key(out, "o") ||
	    !json_put_stringz(out, p->owner)))
		return false;
	switch (p->kind) {
	case 'c':
		if (!buf_appendc(out, ',') || !json_put_key(out, "c") ||
		    !json_put_string(out, p->text.data != NULL ? p->text.data : "", p->text.len))
			return false;
		break;
	case 'x':
		if (!buf_appendc(out, ',') || !json_put_key(out, "e") ||
		    !json_put_string(out, p->text.data != NULL ? p->text.data : "", p->text.len))
			return false;
		break;
	default:
		if (!buf_appendc(out, ',') || !json_put_key(out, "t") || !json_put_stringz(out, p->ts))
			return false;
	}
	return buf_appendc(out, '}');
}

/* Sends every pending publication, in order, in as few round trips as
 * the batch size allows. */
static void
relay_flush(void *ctx)
{
	struct buf batch, one;
	size_t count = 0;

	(void)ctx;
	flush_gen++;  /* no open chunk takes more deltas */
	buf_init(&batch, BATCH_MAX + ROOMS_PG_PAYLOAD_MAX * 2);
	buf_init(&one, ROOMS_PG_PAYLOAD_MAX);
	while (pub_head != NULL) {
		struct pub *p = pub_head;

		pub_head = p->next;
		if (pub_head == NULL)
			pub_tail = NULL;
		buf_reset(&one);
		if (!pub_encode(p, &one)) {
			log_warn("relay: a publication of room %s does not fit a NOTIFY: dropped", p->room);
			pub_free(p);
			continue;
		}
		if (!buf_appendc(&batch, count == 0 ? '[' : ',') || !json_put_string(&batch, one.data, one.len)) {
			log_error("relay: publication batch overflow");
			pub_free(p);
			continue;
		}
		count++;
		pub_free(p);
		if (batch.len >= BATCH_MAX || pub_head == NULL) {
			bool sent = buf_appendc(&batch, ']') && rooms_pg_publish(batch.data, batch.len);

			/* Said once per outage, not every 50 ms. */
			if (!sent && !publish_down)
				log_warn("relay: room publications are not reaching other gateways "
				    "(database unavailable): %zu dropped so far", count);
			else if (sent && publish_down)
				log_info("relay: room publications flow again");
			publish_down = !sent;
			buf_reset(&batch);
			count = 0;
		}
	}
	buf_free(&one);
	buf_free(&batch);
}

/* ---- streams generated here ----------------------------------------------- */

struct relay_stream *
relay_begin(const char *room, const char *stream_id, const char *owner)
{
	struct relay_stream *rs = calloc(1, sizeof(*rs));
	struct pub *p;
	int n;

	if (rs == NULL)
		return NULL;
	(void)snprintf(rs->id, sizeof(rs->id), "%s", stream_id);
	(void)snprintf(rs->room, sizeof(rs->room), "%s", room);
	n = snprintf(rs->owner, sizeof(rs->owner), "%s", owner != NULL ? owner : "");
	if (n < 0 || (size_t)n >= sizeof(rs->owner)) {
		log_error("relay: stream %s: owner id too long", stream_id);
		free(rs);
		return NULL;
	}
	/* The owner's stream: everyone else leaves the room first, here now
	 * and in the other processes as this start reaches them. */
	if (rs->owner[0] != '\0')
		relay_room_owned(rs->room, rs->owner);
	if ((p = pub_new(rs, 's')) != NULL) {
		p->seq = rs->seq++;
		events_timestamp(p->ts);
		emit_start(rs->room, rs->owner, rs->id, p->ts);
	}
	return rs;
}

void
relay_chunk(struct relay_stream *rs, const char *text, size_t len, const char *full, size_t flen)
{
	emit_chunk(rs->room, rs->owner, rs->id, text, len, full, flen, false);
	pub_text(rs, text, len);
}

void
relay_complete(struct relay_stream *rs, const char *full, size_t flen)
{
	struct pub *p = pub_new(rs, 'e');
	char ts[EVENTS_TS_LEN];

	events_timestamp(ts);
	if (p != NULL) {
		p->seq = rs->seq++;
		memcpy(p->ts, ts, sizeof(ts));
	}
	emit_complete(rs->room, rs->owner, rs->id, full, flen, ts);
	free(rs);
}

void
relay_error(struct relay_stream *rs, const char *error)
{
	struct pub *p = pub_new(rs, 'x');

	if (p != NULL) {
		p->seq = rs->seq++;
		(void)buf_append(&p->text, error, strnlen(error, 512));
	}
	emit_error(rs->room, rs->owner, rs->id, error);
	free(rs);
}

void
relay_shutdown(void)
{
	if (flush_timer != NULL)
		relay_flush(NULL);
	loop_timer_free(flush_timer);
	flush_timer = NULL;
	for (size_t i = 0; i < REMOTE_BUCKETS; i++)
		while (remotes[i] != NULL) {
			struct remote *r = remotes[i];

			remotes[i] = r->hnext;
			buf_free(&r->full);
			free(r);
		}
	nremotes = 0;
	free(self_id);
	self_id = NULL;
}

/* ---- streams of other processes -------------------------------------------- */

static size_t
remote_bucket(const char *id)
{
	uint32_t h = 2166136261u;

	for (; *id != '\0'; id++)
		h = (h ^ (unsigned char)*id) * 16777619u;
	return h % REMOTE_BUCKETS;
}

static struct remote *
remote_get(const char *id, const char *room, const char *owner, bool create)
{
	size_t b = remote_bucket(id);
	struct remote *r;

	for (r = remotes[b]; r != NULL; r = r->hnext)
		if (strcmp(r->id, id) == 0)
			return r;
	if (!create || (r = calloc(1, sizeof(*r))) == NULL)
		return NULL;
	(void)snprintf(r->id, sizeof(r->id), "%s", id);
	(void)snprintf(r->room, sizeof(r->room), "%s", room);
	(void)snprintf(r->owner, sizeof(r->owner), "%s", owner);
	buf_init(&r->full, LIMIT_REPLY_BYTES);
	r->hnext = remotes[b];
	remotes[b] = r;
	nremotes++;
	return r;
}

static void
remote_free(struct remote *r)
{
	for (struct remote **pp = &remotes[remote_bucket(r->id)]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == r) {
			*pp = r->hnext;
			break;
		}
	nremotes--;
	buf_free(&r->full);
	free(r);
}

/* A string member, or NULL; borrowed from o. */
static const char *
member(json_object *o, const char *key, size_t *len)
{
	json_object *v;

	if (!json_object_object_get_ex(o, key, &v) || !json_object_is_type(v, json_type_string))
		return NULL;
	if (len != NULL)
		*len = (size_t)json_object_get_string_len(v);
	return json_object_get_string(v);
}

void
relay_on_notify(const char *payload)
{
	const char *err, *g, *room, *id, *kind, *text, *owner;
	size_t tlen = 0;
	json_object *o;
	struct remote *r;

	if ((o = json_in_parse(payload, strlen(payload), &err)) == NULL ||
	    !json_object_is_type(o, json_type_object)) {
		log_warn("relay: malformed room publication ignored");
		json_object_put(o);
		return;
	}
	g = member(o, "g", NULL);
	room = member(o, "r", NULL);
	id = member(o, "s", NULL);
	kind = member(o, "k", NULL);
	if ((owner = member(o, "o", NULL)) == NULL)
		owner = "";   /* an anonymous stream */
	if (g == NULL || room == NULL || id == NULL || kind == NULL || strlen(id) >= ID_MAX ||
	    strlen(room) > ROOM_NAME_MAX || strlen(owner) >= ID_MAX) {
		log_warn("relay: incomplete room publication ignored");
		goto done;
	}
	if (self_id != NULL && strcmp(g, self_id) == 0)
		goto done;  /* our own: the local members have it already */
	/* An owner's stream: the room is theirs, here too, before anything of
	 * it is delivered. */
	if (owner[0] != '\0')
		relay_room_owned(room, owner);
	switch (kind[0]) {
	case 's':
		if ((r = remote_get(id, room, owner, true)) != NULL) {
			buf_reset(&r->full);
			r->seen_ms = clock_now_ms();
		}
		text = member(o, "t", NULL);
		emit_start(room, owner, id, text != NULL ? text : "");
		break;
	case 'c':
		if ((text = member(o, "c", &tlen)) == NULL)
			break;
		if ((r = remote_get(id, room, owner, true)) == NULL)
			break;
		r->seen_ms = clock_now_ms();
		(void)buf_append(&r->full, text, tlen);
		emit_chunk(room, owner, id, text, tlen, r->full.data, r->full.len, false);
		break;
	case 'e': {
		char ts[EVENTS_TS_LEN];

		text = member(o, "t", NULL);
		(void)snprintf(ts, sizeof(ts), "%s", text != NULL ? text : "");
		r = remote_get(id, room, owner, false);
		emit_complete(room, owner, id, r != NULL ? r->full.data : "", r != NULL ? r->full.len : 0, ts);
		if (r != NULL)
			remote_free(r);
		break;
	}
	case 'x':
		text = member(o, "e", NULL);
		emit_error(room, owner, id, text != NULL ? text : "The reply failed");
		if ((r = remote_get(id, room, owner, false)) != NULL)
			remote_free(r);
		break;
	default:
		break;
	}
done:
	json_object_put(o);
}

void
relay_tick(int64_t now_ms)
{
	for (size_t i = 0; i < REMOTE_BUCKETS; i++) {
		struct remote *r = remotes[i], *next;

		for (; r != NULL; r = next) {
			next = r->hnext;
			if (now_ms - r->seen_ms > REMOTE_IDLE_MS)
				remote_free(r);
		}
	}
}

size_t
relay_remote_count(void)
{
	return nremotes;
}
