/* setup.c: register, log in and create sessions before a run, many
 * requests at a time. */
#include "setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define SETUP_JSON_MAX     1024
#define SETUP_TIMEOUT_MS   60000L   /* one setup request (argon2id queues) */

/* One POST of a batch. */
struct setup_call {
	const char          *path;      /* borrowed */
	const char          *body;      /* borrowed JSON */
	const char          *bearer;    /* borrowed, or NULL */
	const char          *source;    /* borrowed local address, or NULL */
	struct client_reply  reply;     /* out: status, body, error */
};

/* A busy slot of a batch: its handle and header list. */
struct setup_slot {
	CURL               *easy;
	struct curl_slist  *hdrs;
	struct setup_call  *call;       /* NULL: idle */
};

static bool
setup_headers(struct setup_slot *s, const char *bearer)
{
	struct curl_slist *h;
	char auth[4096];

	curl_slist_free_all(s->hdrs);
	s->hdrs = NULL;
	if (bearer != NULL) {
		int n = snprintf(auth, sizeof(auth), "Authorization: Bearer %s", bearer);

		if (n < 0 || (size_t)n >= sizeof(auth) || (s->hdrs = curl_slist_append(NULL, auth)) == NULL)
			return false;
	}
	if ((h = curl_slist_append(s->hdrs, "Content-Type: application/json")) == NULL)
		return false;
	s->hdrs = h;
	return true;
}

/* Runs the n calls, up to conc at a time. Each call's reply says how it
 * went (status 0 and an error text when it got no response). Returns false
 * only when the batch could not be run (memory). */
static bool
setup_batch(const struct client *c, struct setup_call *calls, size_t n, int conc)
{
	struct setup_slot *slots = NULL;
	CURLM *multi = NULL;
	size_t next = 0, done = 0;
	bool ok = false;

	if (n == 0)
		return true;
	if (conc < 1)
		conc = 1;
	if ((size_t)conc > n)
		conc = (int)n;
	if ((slots = calloc((size_t)conc, sizeof(*slots))) == NULL ||
	    (multi = curl_multi_init()) == NULL)
		goto done;
	while (done < n) {
		CURLMsg *msg;
		int left, running;

		for (int i = 0; i < conc && next < n; i++) {
			struct setup_slot *s = &slots[i];
			struct setup_call *call = &calls[next];
			struct client cc = *c;

			if (s->call != NULL)
				continue;
			if (s->easy == NULL && (s->easy = curl_easy_init()) == NULL)
				goto done;
			curl_easy_reset(s->easy);
			cc.source = call->source;
			memset(&call->reply, 0, sizeof(call->reply));
			if (!client_setup(&cc, s->easy, call->path) || !setup_headers(s, call->bearer))
				goto done;
			curl_easy_setopt(s->easy, CURLOPT_HTTPHEADER, s->hdrs);
			curl_easy_setopt(s->easy, CURLOPT_POSTFIELDS, call->body);
			curl_easy_setopt(s->easy, CURLOPT_TIMEOUT_MS, SETUP_TIMEOUT_MS);
			curl_easy_setopt(s->easy, CURLOPT_WRITEFUNCTION, client_collect);
			curl_easy_setopt(s->easy, CURLOPT_WRITEDATA, &call->reply);
			curl_easy_setopt(s->easy, CURLOPT_ERRORBUFFER, call->reply.error);
			curl_easy_setopt(s->easy, CURLOPT_PRIVATE, s);
			if (curl_multi_add_handle(multi, s->easy) != CURLM_OK)
				goto done;
			s->call = call;
			next++;
		}
		curl_multi_perform(multi, &running);
		while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
			struct setup_slot *s = NULL;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(msg->easy_handle, CURLINFO_PRIVATE, (char **)&s);
			s->call->reply.rc = msg->data.result;
			if (msg->data.result == CURLE_OK)
				curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &s->call->reply.status);
			else if (s->call->reply.error[0] == '\0')
				snprintf(s->call->reply.error, sizeof(s->call->reply.error), "%s",
				    curl_easy_strerror(msg->data.result));
			curl_multi_remove_handle(multi, s->easy);
			s->call = NULL;
			done++;
		}
		if (done < n)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
	ok = true;
done:
	if (!ok)
		fprintf(stderr, "loadtest: out of memory during setup\n");
	if (slots != NULL) {
		for (int i = 0; i < conc; i++) {
			if (slots[i].easy != NULL) {
				if (slots[i].call != NULL)
					curl_multi_remove_handle(multi, slots[i].easy);
				curl_easy_cleanup(slots[i].easy);
			}
			curl_slist_free_all(slots[i].hdrs);
		}
		free(slots);
	}
	if (multi != NULL)
		curl_multi_cleanup(multi);
	return ok;
}

static void
setup_calls_free(struct setup_call *calls, size_t n)
{
	if (calls == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		client_reply_free(&calls[i].reply);
	free(calls);
}

/* Copies a string member of a JSON body; NULL when absent. Caller frees. */
static char *
setup_member(const char *body, const char *key)
{
	json_object *o, *v;
	char *s = NULL;

	if (body == NULL || (o = json_tokener_parse(body)) == NULL)
		return NULL;
	if (json_object_object_get_ex(o, key, &v) && json_object_is_type(v, json_type_string))
		s = strdup(json_object_get_string(v));
	json_object_put(o);
	return s;
}

/* A JSON object {"username":…,"password":…}, owned; NULL if too long. */
static char *
setup_credentials(const char *user, const char *password)
{
	json_object *o = json_object_new_object();
	const char *s;
	char *out = NULL;

	json_object_object_add(o, "username", json_object_new_string(user));
	json_object_object_add(o, "password", json_object_new_string(password));
	s = json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN);
	if (strlen(s) < SETUP_JSON_MAX)
		out = strdup(s);
	json_object_put(o);
	return out;
}

/* Logs why call (for what, e.g. "login lt…-3") failed. */
static void
setup_complain(const char *what, const struct setup_call *call)
{
	fprintf(stderr, "loadtest: %s: %s%sHTTP %ld %.300s\n", what, call->reply.error,
	    call->reply.error[0] != '\0' ? " " : "", call->reply.status,
	    call->reply.body != NULL ? call->reply.body : "");
}

bool
setup_users(const struct client *c, char **names, char **sources, int n,
    const char *password, int conc, char **tokens)
{
	struct setup_call *calls = NULL;
	char **bodies = NULL, what[160];
	bool ok = false;

	if (conc > SETUP_AUTH_CONC_MAX)
		conc = SETUP_AUTH_CONC_MAX;
	if ((calls = calloc((size_t)n, sizeof(*calls))) == NULL ||
	    (bodies = calloc((size_t)n, sizeof(*bodies))) == NULL)
		goto nomem;
	for (int i = 0; i < n; i++) {
		if ((bodies[i] = setup_credentials(names[i], password)) == NULL) {
			fprintf(stderr, "loadtest: user name or password too long\n");
			goto done;
		}
		calls[i] = (struct setup_call){ .path = "/api/auth/register", .body = bodies[i],
		    .source = sources != NULL ? sources[i] : NULL };
	}
	if (!setup_batch(c, calls, (size_t)n, conc))
		goto done;
	for (int i = 0; i < n; i++) {
		long st = calls[i].reply.status;

		if (st != 201 && st != 200 && st != 409) {
			snprintf(what, sizeof(what), "register %.64s at %.64s", names[i], c->base);
			setup_complain(what, &calls[i]);
			goto done;
		}
		client_reply_free(&calls[i].reply);
		calls[i].path = "/api/auth/login";
	}
	if (!setup_batch(c, calls, (size_t)n, conc))
		goto done;
	for (int i = 0; i < n; i++) {
		if (calls[i].reply.status != 200 ||
		    (tokens[i] = setup_member(calls[i].reply.body, "access_token")) == NULL) {
			snprintf(what, sizeof(what), "login %.64s", names[i]);
			setup_complain(what, &calls[i]);
			goto done;
		}
	}
	ok = true;
	goto done;
nomem:
	fprintf(stderr, "loadtest: out of memory registering users\n");
done:
	if (!ok) {
		for (int i = 0; i < n; i++) {
			free(tokens[i]);
			tokens[i] = NULL;
		}
	}
	setup_calls_free(calls, (size_t)n);
	if (bodies != NULL) {
		for (int i = 0; i < n; i++)
			free(bodies[i]);
		free(bodies);
	}
	return ok;
}

void
setup_ids_free(char **ids, size_t n)
{
	if (ids == NULL)
		return;
	for (size_t i = 0; i < n; i++)
		free(ids[i]);
	free(ids);
}

bool
setup_sessions(const struct client *c, char **tokens, char **sources, size_t n, int conc,
    char ***ids)
{
	static const char body[] = "{\"title\":\"loadtest\"}";
	struct setup_call *calls = NULL;
	char **out = NULL;
	bool ok = false;

	*ids = NULL;
	if ((out = calloc(n > 0 ? n : 1, sizeof(*out))) == NULL ||
	    (calls = calloc(n > 0 ? n : 1, sizeof(*calls))) == NULL) {
		fprintf(stderr, "loadtest: out of memory creating sessions\n");
		goto done;
	}
	for (size_t i = 0; i < n; i++)
		calls[i] = (struct setup_call){ .path = "/api/chat/realtime/sessions", .body = body,
		    .bearer = tokens[i], .source = sources != NULL ? sources[i] : NULL };
	if (!setup_batch(c, calls, n, conc))
		goto done;
	for (size_t i = 0; i < n; i++) {
		if (calls[i].reply.status != 201 ||
		    (out[i] = setup_member(calls[i].reply.body, "id")) == NULL) {
			setup_complain("create session", &calls[i]);
			goto done;
		}
	}
	*ids = out;
	out = NULL;
	ok = true;
done:
	setup_calls_free(calls, n);
	setup_ids_free(out, n);
	return ok;
}
