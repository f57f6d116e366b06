/* setup.c: register, log in and create sessions before a run. */
#include "setup.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#define SETUP_JSON_MAX 1024

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

/* A JSON object {"username":…,"password":…}; false if it does not fit. */
static bool
setup_credentials(char *out, size_t len, const char *user, const char *password)
{
	json_object *o = json_object_new_object();
	int n;

	json_object_object_add(o, "username", json_object_new_string(user));
	json_object_object_add(o, "password", json_object_new_string(password));
	n = snprintf(out, len, "%s", json_object_to_json_string_ext(o, JSON_C_TO_STRING_PLAIN));
	json_object_put(o);
	return n >= 0 && (size_t)n < len;
}

bool
setup_login(const struct client *c, const char *user, const char *password, char **token)
{
	struct client_reply r;
	char body[SETUP_JSON_MAX];

	*token = NULL;
	if (!setup_credentials(body, sizeof(body), user, password)) {
		fprintf(stderr, "loadtest: user name or password too long\n");
		return false;
	}
	if (!client_fetch(c, "POST", "/api/auth/register", NULL, body, &r)) {
		fprintf(stderr, "loadtest: register %s at %s: %s\n", user, c->base, r.error);
		client_reply_free(&r);
		return false;
	}
	if (r.status != 201 && r.status != 200 && r.status != 409) {
		fprintf(stderr, "loadtest: register %s: HTTP %ld %s\n", user, r.status,
		    r.body != NULL ? r.body : "");
		client_reply_free(&r);
		return false;
	}
	client_reply_free(&r);
	if (!client_fetch(c, "POST", "/api/auth/login", NULL, body, &r)) {
		fprintf(stderr, "loadtest: login %s: %s\n", user, r.error);
		client_reply_free(&r);
		return false;
	}
	if (r.status != 200 || (*token = setup_member(r.body, "access_token")) == NULL) {
		fprintf(stderr, "loadtest: login %s: HTTP %ld %s\n", user, r.status,
		    r.body != NULL ? r.body : "");
		client_reply_free(&r);
		return false;
	}
	client_reply_free(&r);
	return true;
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

struct setup_req {
	CURL                *easy;
	struct client_reply  reply;
	size_t               index;
};

bool
setup_sessions(const struct client *c, const char *token, size_t n, int conc, char ***ids)
{
	static const char body[] = "{\"title\":\"loadtest\"}";
	struct curl_slist *hdrs = NULL, *h;
	struct setup_req *reqs = NULL;
	char auth[4096], **out = NULL;
	CURLM *multi = NULL;
	size_t next = 0, done = 0;
	int active = 0, running, nauth;
	bool ok = false;

	*ids = NULL;
	if (conc < 1)
		conc = 1;
	if ((size_t)conc > n)
		conc = (int)(n > 0 ? n : 1);
	nauth = snprintf(auth, sizeof(auth), "Authorization: Bearer %s", token);
	if (nauth < 0 || (size_t)nauth >= sizeof(auth)) {
		fprintf(stderr, "loadtest: token too long\n");
		return false;
	}
	if ((out = calloc(n > 0 ? n : 1, sizeof(*out))) == NULL ||
	    (reqs = calloc((size_t)conc, sizeof(*reqs))) == NULL ||
	    (multi = curl_multi_init()) == NULL ||
	    (h = curl_slist_append(NULL, auth)) == NULL)
		goto nomem;
	hdrs = h;
	if ((h = curl_slist_append(hdrs, "Content-Type: application/json")) == NULL)
		goto nomem;
	hdrs = h;
	for (int i = 0; i < conc; i++) {
		if ((reqs[i].easy = curl_easy_init()) == NULL)
			goto nomem;
		if (!client_setup(c, reqs[i].easy, "/api/chat/realtime/sessions"))
			goto nomem;
		curl_easy_setopt(reqs[i].easy, CURLOPT_HTTPHEADER, hdrs);
		curl_easy_setopt(reqs[i].easy, CURLOPT_POSTFIELDS, body);
		curl_easy_setopt(reqs[i].easy, CURLOPT_TIMEOUT_MS, 30000L);
		curl_easy_setopt(reqs[i].easy, CURLOPT_WRITEFUNCTION, client_collect);
		curl_easy_setopt(reqs[i].easy, CURLOPT_WRITEDATA, &reqs[i].reply);
		curl_easy_setopt(reqs[i].easy, CURLOPT_PRIVATE, &reqs[i]);
	}
	while (done < n) {
		CURLMsg *msg;
		int left;

		while (active < conc && next < n) {
			/* An idle slot (index 0; busy ones hold next's 1-based value). */
			for (int i = 0; i < conc; i++) {
				if (reqs[i].index != 0)
					continue;
				reqs[i].index = ++next;   /* 1-based while busy */
				client_reply_free(&reqs[i].reply);
				memset(&reqs[i].reply, 0, sizeof(reqs[i].reply));
				curl_multi_add_handle(multi, reqs[i].easy);
				active++;
				break;
			}
		}
		curl_multi_perform(multi, &running);
		while ((msg = curl_multi_info_read(multi, &left)) != NULL) {
			struct setup_req *r;
			CURLcode rc = msg->data.result;
			CURL *e = msg->easy_handle;
			long status = 0;

			if (msg->msg != CURLMSG_DONE)
				continue;
			curl_easy_getinfo(e, CURLINFO_PRIVATE, (char **)&r);
			curl_easy_getinfo(e, CURLINFO_RESPONSE_CODE, &status);
			curl_multi_remove_handle(multi, e);
			active--;
			if (rc != CURLE_OK || status != 201 ||
			    (out[r->index - 1] = setup_member(r->reply.body, "id")) == NULL) {
				fprintf(stderr, "loadtest: create session: %s HTTP %ld %s\n",
				    rc != CURLE_OK ? curl_easy_strerror(rc) : "", status,
				    r->reply.body != NULL ? r->reply.body : "");
				goto done;
			}
			r->index = 0;
			done++;
		}
		if (done < n)
			curl_multi_poll(multi, NULL, 0, 100, NULL);
	}
	*ids = out;
	out = NULL;
	ok = true;
	goto done;
nomem:
	fprintf(stderr, "loadtest: out of memory creating sessions\n");
done:
	if (reqs != NULL) {
		for (int i = 0; i < conc; i++) {
			if (reqs[i].easy != NULL) {
				curl_multi_remove_handle(multi, reqs[i].easy);
				curl_easy_cleanup(reqs[i].easy);
			}
			client_reply_free(&reqs[i].reply);
		}
		free(reqs);
	}
	if (multi != NULL)
		curl_multi_cleanup(multi);
	curl_slist_free_all(hdrs);
	setup_ids_free(out, n);
	return ok;
}
