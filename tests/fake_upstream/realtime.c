/* realtime.c: POST /v1/realtime/client_secrets and /v1/realtime/sessions:
 * minted ephemeral keys. */
#include <inttypes.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>
#include <sys/random.h>
#include <time.h>

#include "conn.h"
#include "http.h"
#include "json.h"
#include "map.h"
#include "realtime.h"
#include "stats.h"

static struct map	secrets;	/* ephemeral key -> expires_at (unix) */
static uint64_t		session_ids;

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
	return map_put(&secrets, out, strlen(out), expires_at) != NULL;
}

/* Mints an ephemeral key (see secret_mint) and the next session id. */
static bool
session_mint(char *key, size_t keysz, char *sid, size_t sidsz, int64_t exp)
{
	return secret_mint(key, keysz, exp) &&
	    snprintf(sid, sidsz, "sess_fake%" PRIu64, ++session_ids) < (int)sidsz;
}

/* Counts a minted secret and answers 200 with root (released). */
static bool
secret_respond(struct conn *c, json_object *root)
{
	stats.realtime_secrets++;
	return http_respond_json(c, 200, root, NULL);
}

/* The request body as a JSON object (the caller puts it), or NULL. */
static json_object *
body_object(const struct conn *c)
{
	json_object *req;

	req = json_parse_body(c->req.body.data, buf_live(&c->req.body));
	if (req != NULL && !json_object_is_type(req, json_type_object)) {
		json_object_put(req);
		req = NULL;
	}
	return req;
}

/* Answers a body that is not a JSON object. */
static bool
body_refuse(struct conn *c)
{
	return http_error(c, 400, "We could not parse the JSON body of your "
	    "request.", "invalid_request_error", NULL, NULL, NULL);
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

bool
realtime_handle_client_secrets(struct conn *c)
{
	json_object *req, *session = NULL, *v, *root = NULL;
	char key[64], sid[64];
	int64_t ttl = 600, exp;
	bool ok = false;

	if ((req = body_object(c)) == NULL)
		return body_refuse(c);
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
	if (!session_mint(key, sizeof(key), sid, sizeof(sid), exp))
		goto out;
	if (!json_add(session, "id", json_object_new_string(sid)) ||
	    (root = json_object_new_object()) == NULL ||
	    !json_add(root, "value", json_object_new_string(key)) ||
	    !json_add(root, "expires_at", json_object_new_int64(exp)) ||
	    !json_add(root, "session", json_object_get(session)))
		goto out;
	ok = secret_respond(c, root);
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

bool
realtime_handle_sessions(struct conn *c)
{
	json_object *req, *root = NULL, *secret = NULL;
	char key[64], sid[64];
	int64_t exp;
	bool ok = false;

	if ((req = body_object(c)) == NULL)
		return body_refuse(c);
	if (instructions_refuse(req)) {
		ok = http_error(c, 403, "fake upstream refused the session",
		    "invalid_request_error", "instructions", "refused", NULL);
		goto out;
	}
	exp = (int64_t)time(NULL) + 60;
	if (!session_mint(key, sizeof(key), sid, sizeof(sid), exp))
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
	ok = secret_respond(c, root);
	root = NULL;
out:
	json_object_put(root);
	json_object_put(req);
	return ok;
}

bool
realtime_auth_ok(const struct conn *c)
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
	e = map_get(&secrets, a, strlen(a));
	return e != NULL && e->value >= (int64_t)time(NULL);
}

void
realtime_free(void)
{
	map_clear(&secrets);
}
