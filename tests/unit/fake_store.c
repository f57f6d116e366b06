/* fake_store.c: the store_* functions of core/store.h that the engine,
 * replay and live.c call, over fixed in-memory arrays (see fake_store.h). */
#include "fake_store.h"

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

struct fake_store_state fake_store;
static pthread_mutex_t mu = PTHREAD_MUTEX_INITIALIZER;
static char inserted[FAKE_REPLIES][FAKE_ID_MAX];
static int ninserted;

static const char *
nz(const char *s)
{
	return s != NULL ? s : "";
}

void
fake_store_reset(void)
{
	pthread_mutex_lock(&mu);
	memset(&fake_store, 0, sizeof(fake_store));
	memset(inserted, 0, sizeof(inserted));
	ninserted = 0;
	pthread_mutex_unlock(&mu);
}

struct fake_session *
fake_store_add_session(const char *id, const char *user_id, const char *history_json)
{
	struct fake_session *s;

	pthread_mutex_lock(&mu);
	s = &fake_store.sessions[fake_store.nsessions++];
	(void)snprintf(s->id, sizeof(s->id), "%s", id);
	(void)snprintf(s->user_id, sizeof(s->user_id), "%s", nz(user_id));
	s->history_json = history_json;
	pthread_mutex_unlock(&mu);
	return s;
}

static struct fake_session *
session_find(const char *id, const char *user_id)
{
	for (int i = 0; i < fake_store.nsessions; i++)
		if (strcmp(fake_store.sessions[i].id, id) == 0 &&
		    strcmp(fake_store.sessions[i].user_id, nz(user_id)) == 0)
			return &fake_store.sessions[i];
	return NULL;
}

static struct fake_reply *
reply_find(const char *id)
{
	for (int i = 0; i < fake_store.nreplies; i++)
		if (strcmp(fake_store.replies[i].id, id) == 0)
			return &fake_store.replies[i];
	return NULL;
}

static struct fake_reply *
reply_new(const struct fake_session *s, const char *id)
{
	struct fake_reply *r;

	if (fake_store.nreplies == FAKE_REPLIES)
		return NULL;
	r = &fake_store.replies[fake_store.nreplies++];
	memset(r, 0, sizeof(*r));
	(void)snprintf(r->id, sizeof(r->id), "%s", id);
	(void)snprintf(r->session_id, sizeof(r->session_id), "%s", s->id);
	(void)snprintf(r->user_id, sizeof(r->user_id), "%s", s->user_id);
	(void)snprintf(r->status, sizeof(r->status), "streaming");
	r->prompt_tokens = r->completion_tokens = -1;
	return r;
}

struct fake_reply *
fake_store_add_reply(const char *session_id, const char *id, const char *status,
    const char *content, const char *ends, const char *error)
{
	struct fake_reply *r = NULL;

	pthread_mutex_lock(&mu);
	for (int i = 0; i < fake_store.nsessions; i++)
		if (strcmp(fake_store.sessions[i].id, session_id) == 0)
			r = reply_new(&fake_store.sessions[i], id);
	if (r != NULL) {
		(void)snprintf(r->status, sizeof(r->status), "%s", status);
		r->len = (size_t)snprintf(r->content, sizeof(r->content), "%s", content);
		(void)snprintf(r->ends, sizeof(r->ends), "%s", ends);
		(void)snprintf(r->error, sizeof(r->error), "%s", nz(error));
	}
	pthread_mutex_unlock(&mu);
	return r;
}

bool
fake_store_get(const char *id, struct fake_reply *out)
{
	struct fake_reply *r;

	pthread_mutex_lock(&mu);
	if ((r = reply_find(id)) != NULL)
		*out = *r;
	pthread_mutex_unlock(&mu);
	return r != NULL;
}

/* Appends text as one more chunk. Caller holds mu. */
static void
reply_add_chunk(struct fake_reply *r, const char *text, size_t len)
{
	size_t n = strlen(r->ends);

	if (r->len + len >= sizeof(r->content))
		return;
	memcpy(r->content + r->len, text, len);
	r->len += len;
	r->content[r->len] = '\0';
	(void)snprintf(r->ends + n, sizeof(r->ends) - n, "%s%zu", n ? "," : "", r->len);
}

void
fake_store_grow(const char *id, const char *text, const char *status)
{
	struct fake_reply *r;

	pthread_mutex_lock(&mu);
	if ((r = reply_find(id)) != NULL) {
		if (text != NULL)
			reply_add_chunk(r, text, strlen(text));
		if (status != NULL)
			(void)snprintf(r->status, sizeof(r->status), "%s", status);
	}
	pthread_mutex_unlock(&mu);
}

const char *
fake_store_reply_id(int n)
{
	return n < ninserted ? inserted[n] : NULL;
}

/* ---- store.h ---- */

int
store_http_status(enum store_rc rc)
{
	switch (rc) {
	case STORE_OK:          return 200;
	case STORE_NOT_FOUND:   return 404;
	case STORE_CONFLICT:    return 409;
	case STORE_INVALID:     return 400;
	case STORE_UNAVAILABLE: return 503;
	case STORE_ERROR:       return 500;
	case STORE_LIMITED:     return 429;
	}
	return 500;
}

enum store_rc
store_turn_begin(struct store *st, const char *user_id, const char *session_id,
    const char *content, int history, const char *idempotency_key, const char *worker_id,
    const struct store_slot_ask *slot, struct store_turn *turn)
{
	struct fake_session *s;
	struct fake_reply *r;
	enum store_rc rc = STORE_OK;
	char id[FAKE_ID_MAX];

	(void)st;
	memset(turn, 0, sizeof(*turn));
	pthread_mutex_lock(&mu);
	fake_store.begins++;
	fake_store.last_history = history;
	fake_store.last_content_null = content == NULL;
	(void)snprintf(fake_store.last_content, sizeof(fake_store.last_content), "%s", nz(content));
	if (fake_store.begin_rc != STORE_OK) {
		rc = fake_store.begin_rc;
		goto out;
	}
	if ((s = session_find(session_id, user_id)) == NULL) {
		rc = STORE_NOT_FOUND;
		goto out;
	}
	if (slot != NULL) {
		if (fake_store.slots_held >= slot->cap) {
			rc = STORE_LIMITED;
			goto out;
		}
		turn->slot = ++fake_store.slots_taken;
		fake_store.slots_held++;
	}
	for (int i = 0; idempotency_key != NULL && i < fake_store.nreplies; i++)
		if (strcmp(fake_store.replies[i].session_id, s->id) == 0 &&
		    strcmp(fake_store.replies[i].idempotency_key, idempotency_key) == 0) {
			turn->attached_reply_id = strdup(fake_store.replies[i].id);
			goto out;
		}
	(void)snprintf(id, sizeof(id), "00000000-0000-4000-8000-%012d", fake_store.nreplies + 1);
	if ((r = reply_new(s, id)) == NULL) {
		rc = STORE_ERROR;
		goto out;
	}
	(void)snprintf(r->idempotency_key, sizeof(r->idempotency_key), "%s", nz(idempotency_key));
	(void)snprintf(r->worker_id, sizeof(r->worker_id), "%s", nz(worker_id));
	(void)snprintf(inserted[ninserted++], FAKE_ID_MAX, "%s", id);
	turn->reply_id = strdup(id);
	if (content != NULL)
		turn->user_message_id = strdup("11111111-1111-4111-8111-111111111111");
	turn->history_json = strdup(s->history_json != NULL ? s->history_json : "[]");
	if (fake_store.settings_json != NULL)
		turn->settings_json = strdup(fake_store.settings_json);
out:
	pthread_mutex_unlock(&mu);
	return rc;
}

void
store_turn_free(struct store_turn *turn)
{
	free(turn->reply_id);
	free(turn->user_message_id);
	free(turn->history_json);
	free(turn->settings_json);
	free(turn->attached_reply_id);
	memset(turn, 0, sizeof(*turn));
}

enum store_rc
store_settings_get(struct store *st, const char *user_id, char **settings_json)
{
	(void)st;
	(void)user_id;
	*settings_json = NULL;
	if (fake_store.settings_json == NULL)
		return STORE_NOT_FOUND;
	return (*settings_json = strdup(fake_store.settings_json)) != NULL ? STORE_OK : STORE_ERROR;
}

/* chunk_ends is a SQL array literal "{3,7}" of ends within the whole reply. */
enum store_rc
store_reply_append(struct store *st, const char *reply_id, const char *text, size_t len,
    const char *chunk_ends)
{
	struct fake_reply *r;
	enum store_rc rc = STORE_OK;
	size_t n, m;

	(void)st;
	pthread_mutex_lock(&mu);
	if (fake_store.append_rc != STORE_OK) {
		fake_store.append_failures++;
		rc = fake_store.append_rc;
	} else if ((r = reply_find(reply_id)) == NULL) {
		rc = STORE_NOT_FOUND;
	} else if (r->len + len >= sizeof(r->content) || chunk_ends[0] != '{' ||
	    (m = strlen(chunk_ends)) < 2 || chunk_ends[m - 1] != '}') {
		rc = STORE_INVALID;
	} else {
		memcpy(r->content + r->len, text, len);
		r->len += len;
		r->content[r->len] = '\0';
		n = strlen(r->ends);
		(void)snprintf(r->ends + n, sizeof(r->ends) - n, "%s%.*s", n ? "," : "",
		    (int)(m - 2), chunk_ends + 1);
		r->appends++;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

enum store_rc
store_reply_finish(struct store *st, const char *reply_id, enum reply_status status,
    const char *model, long prompt_tokens, long completion_tokens, const char *error)
{
	struct fake_reply *r;
	enum store_rc rc = STORE_OK;

	(void)st;
	pthread_mutex_lock(&mu);
	if (fake_store.finish_rc != STORE_OK)
		rc = fake_store.finish_rc;
	else if ((r = reply_find(reply_id)) == NULL)
		rc = STORE_NOT_FOUND;
	else {
		(void)snprintf(r->status, sizeof(r->status), "%s", reply_status_name(status));
		(void)snprintf(r->model, sizeof(r->model), "%s", nz(model));
		(void)snprintf(r->error, sizeof(r->error), "%s", nz(error));
		r->prompt_tokens = prompt_tokens;
		r->completion_tokens = completion_tokens;
		r->finishes++;
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

enum store_rc
store_metric_insert(struct store *st, const struct store_stream_metric *m)
{
	(void)st;
	pthread_mutex_lock(&mu);
	fake_store.metrics++;
	(void)snprintf(fake_store.metric_status, sizeof(fake_store.metric_status), "%s", reply_status_name(m->status));
	fake_store.metric_chunks = m->chunks;
	pthread_mutex_unlock(&mu);
	return STORE_OK;
}

static char *
dup_n(const char *s, size_t n)
{
	char *p = malloc(n + 1);

	if (p != NULL) {
		memcpy(p, s, n);
		p[n] = '\0';
	}
	return p;
}

enum store_rc
store_reply_read(struct store *st, const char *user_id, const char *session_id,
    const char *reply_id, int stale_after_s, struct store_reply *out)
{
	struct fake_reply *r = NULL;
	enum store_rc rc = STORE_NOT_FOUND;
	int nth;

	(void)st;
	(void)stale_after_s;
	memset(out, 0, sizeof(*out));
	pthread_mutex_lock(&mu);
	nth = fake_store.reads++;
	pthread_mutex_unlock(&mu);
	if (fake_store.on_read != NULL)
		fake_store.on_read(nth);
	pthread_mutex_lock(&mu);
	for (int i = 0; i < fake_store.nreplies; i++) {
		struct fake_reply *c = &fake_store.replies[i];

		if (strcmp(c->session_id, session_id) != 0 || strcmp(c->user_id, nz(user_id)) != 0)
			continue;
		if (reply_id == NULL || strcmp(c->id, reply_id) == 0)
			r = c;   /* NULL: the latest one wins */
	}
	if (r != NULL) {
		out->id = strdup(r->id);
		if (!reply_status_parse(r->status, &out->status))
			out->status = REPLY_STREAMING;
		out->content = dup_n(r->content, r->len);
		out->content_len = r->len;
		out->chunk_ends = strdup(r->ends);
		out->error = strdup(r->error);
		out->stale = r->stale;
		rc = STORE_OK;
		if (out->id == NULL || out->content == NULL ||
		    out->chunk_ends == NULL || out->error == NULL) {
			store_reply_free(out);
			rc = STORE_ERROR;
		}
	}
	pthread_mutex_unlock(&mu);
	return rc;
}

void
store_reply_free(struct store_reply *r)
{
	/* Scribble over the text first, so a caller still reading it after
	 * the free sees garbage even without valgrind. */
	if (r->content != NULL)
		memset(r->content, '#', r->content_len);
	free(r->id);
	free(r->content);
	free(r->chunk_ends);
	free(r->error);
	memset(r, 0, sizeof(*r));
}

enum store_rc
store_notify_follow(struct store *st, const char *reply_id)
{
	(void)st;
	(void)reply_id;
	pthread_mutex_lock(&mu);
	fake_store.follows++;
	pthread_mutex_unlock(&mu);
	return STORE_OK;
}

/* One statement in the real store; here each batch as its own append. */
/* Both steps or neither, as the real statement: a failure configured for
 * either one fails the whole ending. */
enum store_rc
store_reply_end(struct store *st, const struct reply_end *end)
{
	enum store_rc rc;

	pthread_mutex_lock(&mu);
	rc = fake_store.append_rc != STORE_OK && end->text != NULL ? fake_store.append_rc : fake_store.finish_rc;
	if (rc != STORE_OK && end->text != NULL && fake_store.append_rc != STORE_OK)
		fake_store.append_failures++;
	pthread_mutex_unlock(&mu);
	if (rc != STORE_OK)
		return rc;
	if (end->text != NULL && (rc = store_reply_append(st, end->reply_id, end->text, end->len,
	    end->chunk_ends)) != STORE_OK)
		return rc;
	return store_reply_finish(st, end->reply_id, end->status, end->model, end->prompt_tokens,
	    end->completion_tokens, end->error_code);
}

/* All or nothing, as the real statement: a failure configured for the
 * append or the finish fails the whole end, figures and slot included. */
enum store_rc
store_turn_end(struct store *st, const struct reply_end *end, const struct store_stream_metric *m,
    long long slot, bool notify)
{
	enum store_rc rc = STORE_OK;

	pthread_mutex_lock(&mu);
	fake_store.turn_ends++;
	if (fake_store.end_rc != STORE_OK)
		rc = fake_store.end_rc;
	pthread_mutex_unlock(&mu);
	if (rc == STORE_OK && end != NULL)
		rc = store_reply_end(st, end);
	if (rc != STORE_OK)
		return rc;
	(void)store_metric_insert(st, m);
	if (slot > 0)
		(void)store_stream_slot_release(st, slot);
	if (notify && end != NULL)
		(void)store_notify_reply(st, end->reply_id);
	return STORE_OK;
}

enum store_rc
store_stream_slot_release(struct store *st, long long slot)
{
	(void)st;
	(void)slot;
	pthread_mutex_lock(&mu);
	fake_store.slots_held--;
	fake_store.slots_released++;
	pthread_mutex_unlock(&mu);
	return STORE_OK;
}

enum store_rc
store_reply_append_many(struct store *st, size_t n, const struct store_reply_batch *batches)
{
	enum store_rc rc = STORE_OK;

	for (size_t i = 0; i < n && rc == STORE_OK; i++)
		rc = store_reply_append(st, batches[i].reply_id, batches[i].text, batches[i].len,
		    batches[i].chunk_ends);
	return rc;
}

enum store_rc
store_notify_reply(struct store *st, const char *reply_id)
{
	(void)st;
	(void)reply_id;
	pthread_mutex_lock(&mu);
	fake_store.reply_notifies++;
	pthread_mutex_unlock(&mu);
	return STORE_OK;
}

/* live.c's listener; the tests never start it. */
void
store_listen_loop(const char *conninfo, const char *const *channels,
    void (*on_notify)(void *ctx, const char *channel, const char *payload), void *ctx,
    atomic_bool *stop)
{
	(void)conninfo;
	(void)channels;
	(void)on_notify;
	(void)ctx;
	(void)stop;
}

enum store_rc
store_reply_interrupt_stale(struct store *st, const char *reply_id, int stale_s)
{
	struct fake_reply *r;

	(void)st;
	(void)stale_s;
	pthread_mutex_lock(&mu);
	if ((r = reply_find(reply_id)) != NULL && r->stale && strcmp(r->status, "streaming") == 0) {
		(void)snprintf(r->status, sizeof(r->status), "interrupted");
		(void)snprintf(r->error, sizeof(r->error), "worker_died");
		r->stale = false;
	}
	pthread_mutex_unlock(&mu);
	return STORE_OK;
}
