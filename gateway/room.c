/* room.c: local room membership and delivery. */
#include "room.h"

#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chat_limits.h"
#include "log.h"
#include "session.h"
#include "sio.h"

#define ROOM_BUCKETS 1024

static struct room *by_name[ROOM_BUCKETS];
static size_t nrooms;

static size_t
name_bucket(const char *name)
{
	uint32_t h = 2166136261u;

	for (; *name != '\0'; name++)
		h = (h ^ (unsigned char)*name) * 16777619u;
	return h % ROOM_BUCKETS;
}

static struct room *
room_find(const char *name)
{
	for (struct room *r = by_name[name_bucket(name)]; r != NULL; r = r->hnext)
		if (strcmp(r->name, name) == 0)
			return r;
	return NULL;
}

static struct room *
room_create(const char *name)
{
	struct room *r = calloc(1, sizeof(*r));
	size_t b;

	if (r == NULL || (r->name = strdup(name)) == NULL) {
		free(r);
		return NULL;
	}
	b = name_bucket(name);
	r->hnext = by_name[b];
	by_name[b] = r;
	nrooms++;
	return r;
}

static void
room_destroy(struct room *r)
{
	for (struct room **pp = &by_name[name_bucket(r->name)]; *pp != NULL; pp = &(*pp)->hnext)
		if (*pp == r) {
			*pp = r->hnext;
			break;
		}
	nrooms--;
	free(r->members);
	free(r->owner);
	free(r->name);
	free(r);
}

/* Removes s from r's member array (not from s's list). */
static void
members_remove(struct room *r, const struct session *s)
{
	for (size_t i = 0; i < r->n; i++)
		if (r->members[i] == s) {
			r->members[i] = r->members[--r->n];
			break;
		}
}

bool
room_join(struct session *s, const char *name)
{
	struct room *r = room_find(name);

	for (int i = 0; r != NULL && i < s->nrooms; i++)
		if (s->rooms[i] == r) {
			/* Already in: it becomes the current room. */
			memmove(&s->rooms[i], &s->rooms[i + 1], (size_t)(s->nrooms - i - 1) * sizeof(r));
			s->rooms[s->nrooms - 1] = r;
			return true;
		}
	if (s->nrooms >= SESSION_ROOMS_MAX)
		return false;
	if (r == NULL && (r = room_create(name)) == NULL)
		return false;
	if (r->n == r->cap) {
		size_t cap = r->cap != 0 ? r->cap * 2 : 4;
		struct session **m = realloc(r->members, cap * sizeof(*m));

		if (m == NULL) {
			if (r->n == 0)
				room_destroy(r);
			return false;
		}
		r->members = m;
		r->cap = cap;
	}
	r->members[r->n++] = s;
	s->rooms[s->nrooms++] = r;
	return true;
}

void
room_leave(struct session *s, const char *name)
{
	struct room *r = room_find(name);

	for (int i = 0; r != NULL && i < s->nrooms; i++)
		if (s->rooms[i] == r) {
			memmove(&s->rooms[i], &s->rooms[i + 1], (size_t)(s->nrooms - i - 1) * sizeof(r));
			s->nrooms--;
			members_remove(r, s);
			if (r->n == 0)
				room_destroy(r);
			return;
		}
}

void
room_leave_all(struct session *s)
{
	while (s->nrooms > 0) {
		struct room *r = s->rooms[--s->nrooms];

		members_remove(r, s);
		if (r->n == 0)
			room_destroy(r);
	}
}

bool
room_has(const struct session *s, const char *name)
{
	for (int i = 0; i < s->nrooms; i++)
		if (strcmp(s->rooms[i]->name, name) == 0)
			return true;
	return false;
}

const char *
room_current(const struct session *s)
{
	return s->nrooms > 0 ? s->rooms[s->nrooms - 1]->name : NULL;
}

size_t
room_emit(const char *name, const char *event, const char *json, size_t len)
{
	struct room *r = room_find(name);
	struct session **targets;
	struct buf b;
	size_t n, reached = 0;

	if (r == NULL || r->n == 0)
		return 0;
	buf_init(&b, LIMIT_EVENT_BYTES);
	if (!buf_appendc(&b, (char)('0' + EIO_MESSAGE)) || !sio_encode_event(&b, "/", event, json, len)) {
		log_warn("room %s: event %s too large to encode", name, event);
		buf_free(&b);
		return 0;
	}
	/* A member whose queue overflows closes and leaves the room while we
	 * iterate: walk a snapshot of the members. */
	n = r->n;
	if ((targets = malloc(n * sizeof(*targets))) == NULL) {
		buf_free(&b);
		return 0;
	}
	memcpy(targets, r->members, n * sizeof(*targets));
	for (size_t i = 0; i < n; i++)
		if (session_send(targets[i], b.data, b.len))
			reached++;
	free(targets);
	buf_free(&b);
	return reached;
}

/* Takes r out of s's list of rooms (not s out of r's members). */
static void
rooms_remove(struct session *s, const struct room *r)
{
	for (int i = 0; i < s->nrooms; i++)
		if (s->rooms[i] == r) {
			memmove(&s->rooms[i], &s->rooms[i + 1], (size_t)(s->nrooms - i - 1) * sizeof(r));
			s->nrooms--;
			return;
		}
}

size_t
room_set_owner(const char *name, const char *owner,
    void (*evicted)(void *ctx, struct session *s, const char *name), void *ctx)
{
	struct room *r = room_find(name);
	struct session **out;
	const char *keep = owner;   /* the members that stay: the owner's */
	size_t nout = 0;

	if (r == NULL)
		return 0;
	if (owner == NULL) {
		free(r->owner);
		r->owner = NULL;
		return 0;
	}
	if (r->owner == NULL || strcmp(r->owner, owner) != 0) {
		char *copy = strdup(owner);

		free(r->owner);
		r->owner = copy;
		if (copy == NULL) {
			/* Without the record nobody may stay: fail closed. */
			log_error("room %s: out of memory recording its owner: emptied", name);
			keep = NULL;
		}
	}
	/* The members to remove, taken out first: the callbacks may close
	 * sessions, which must find their rooms consistent. */
	if ((out = malloc((r->n + 1) * sizeof(*out))) == NULL)
		log_error("room %s: out of memory: other users' sockets leave it untold", name);
	for (size_t i = 0; i < r->n;) {
		struct session *s = r->members[i];

		if (keep != NULL && strcmp(s->user_id, keep) == 0) {
			i++;
			continue;
		}
		rooms_remove(s, r);
		r->members[i] = r->members[--r->n];
		if (out != NULL)
			out[nout++] = s;
	}
	if (r->n == 0)
		room_destroy(r);
	for (size_t i = 0; i < nout; i++) {
		log_info("session %s: removed from room %s (owned by another user)", out[i]->sid, name);
		if (evicted != NULL)
			evicted(ctx, out[i], name);
	}
	free(out);
	return nout;
}

const char *
room_owner(const char *name)
{
	struct room *r = room_find(name);

	return r != NULL ? r->owner : NULL;
}

bool
room_accepts(const char *name, const char *user_id)
{
	const char *owner = room_owner(name);

	return owner == NULL || (user_id != NULL && strcmp(owner, user_id) == 0);
}

size_t
room_emit_chunk(const char *name, const char *stream_id, size_t len, const char *full, size_t flen)
{
	struct room *r = room_find(name);
	struct session_chunk c;
	struct session **targets;
	size_t n, reached = 0;

	if (r == NULL || r->n == 0)
		return 0;
	/* Members may be dropped while we iterate: walk a snapshot. */
	n = r->n;
	if ((targets = malloc(n * sizeof(*targets))) == NULL)
		return 0;
	memcpy(targets, r->members, n * sizeof(*targets));
	session_chunk_init(&c, stream_id, len, full, flen);
	for (size_t i = 0; i < n; i++)
		if (session_send_chunk(targets[i], &c))
			reached++;
	session_chunk_free(&c);
	free(targets);
	return reached;
}

size_t
room_size(const char *name)
{
	struct room *r = room_find(name);

	return r != NULL ? r->n : 0;
}

size_t
room_count(void)
{
	return nrooms;
}
