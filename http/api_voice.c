/* api_voice.c: seed 004's voice session (an OpenAI Realtime ephemeral
 * secret minted with the server's key) and seed 001's LiveKit token. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "buf.h"
#include "chat_limits.h"
#include "config.h"
#include "handlers.h"
#include "json_in.h"
#include "log.h"
#include "store.h"
#include "upstream.h"

#define SECRET_TTL_S     600
#define LIVEKIT_TTL_S    (6 * 3600)

/* The upstream request for the configured Realtime API flavour. */
static json_object *
realtime_request(const struct config *cfg, const char *model, const char *voice,
    const char *instructions)
{
	json_object *req = json_object_new_object(), *td = json_object_new_object();

	json_object_object_add(td, "type", json_object_new_string("server_vad"));
	if (strcmp(cfg->realtime_api, "sessions") == 0) {
		json_object *modalities = json_object_new_array();
		json_object_array_add(modalities, json_object_new_string("audio"));
		json_object_array_add(modalities, json_object_new_string("text"));
		json_object_object_add(req, "model", json_object_new_string(model));
		json_object_object_add(req, "voice", json_object_new_string(voice));
		json_object_object_add(req, "instructions", json_object_new_string(instructions));
		json_object_object_add(req, "modalities", modalities);
		json_object_object_add(req, "turn_detection", td);
		return req;
	}
	json_object *expires = json_object_new_object(), *session = json_object_new_object();
	json_object *audio = json_object_new_object(), *input = json_object_new_object();
	json_object *output = json_object_new_object();
	json_object_object_add(expires, "anchor", json_object_new_string("created_at"));
	json_object_object_add(expires, "seconds", json_object_new_int(SECRET_TTL_S));
	json_object_object_add(input, "turn_detection", td);
	json_object_object_add(output, "voice", json_object_new_string(voice));
	json_object_object_add(audio, "input", input);
	json_object_object_add(audio, "output", output);
	json_object_object_add(session, "type", json_object_new_string("realtime"));
	json_object_object_add(session, "model", json_object_new_string(model));
	json_object_object_add(session, "instructions", json_object_new_string(instructions));
	json_object_object_add(session, "audio", audio);
	json_object_object_add(req, "expires_after", expires);
	json_object_object_add(req, "session", session);
	return req;
}

/* Finds the ephemeral secret in either API's answer. */
static bool
realtime_secret(json_object *resp, const char **value, int64_t *expires_at)
{
	json_object *cs = resp, *v, *e;

	if (json_object_object_get_ex(resp, "client_secret", &v) && json_object_is_type(v, json_type_object))
		cs = v;  /* beta: {client_secret: {value, expires_at}} */
	if (!json_object_object_get_ex(cs, "value", &v) || !json_object_is_type(v, json_type_string))
		return false;
	*value = json_object_get_string(v);
	*expires_at = json_object_object_get_ex(cs, "expires_at", &e) ? json_object_get_int64(e) : 0;
	return true;
}

int
api_realtime_session(struct request *r)
{
	const struct config *cfg = r->cfg;
	json_object *settings = NULL, *req = NULL, *resp = NULL, *out, *cs, *v;
	const char *model, *voice, *instructions, *secret, *body;
	char *over = NULL, sdp_url[2300];
	struct upstream_result res;
	struct buf answer;
	int64_t expires_at;
	size_t body_len;
	bool beta = strcmp(cfg->realtime_api, "sessions") == 0;
	int status;

	if (strcmp(cfg->realtime_api, "off") == 0)
		return http_error(r, 503, "Voice is not configured on this server");
	buf_init(&answer, LIMIT_UPSTREAM_ANSWER_BYTES);
	enum store_rc rc = store_settings_get(r->store, r->user_id, &over);
	if (rc != STORE_OK && rc != STORE_NOT_FOUND) {
		status = handler_store_error(r, rc, "Not found");
		goto done;
	}
	settings = settings_effective(cfg, over);
	model = json_object_get_string(json_object_object_get(settings, "realtime_model"));
	voice = json_object_get_string(json_object_object_get(settings, "voice"));
	instructions = json_object_get_string(json_object_object_get(settings, "system_prompt"));
	if ((req = realtime_request(cfg, model, voice, instructions)) == NULL) {
		status = http_error(r, 500, "Out of memory");
		goto done;
	}
	body = json_object_to_json_string_length(req, JSON_C_TO_STRING_PLAIN, &body_len);
	upstream_post(r->upstream, beta ? "/realtime/sessions" : "/realtime/client_secrets",
	    "application/json", body, body_len, &answer, &res);
	if (res.error != UPSTREAM_OK) {
		log_warn("realtime session refused upstream: status %d (%s)", res.http_status,
		    upstream_error_code(res.error));
		status = http_error(r, upstream_error_http_status(res.error),
		    res.http_status == 401 || res.http_status == 403
		    ? "The AI service refused to create a voice session (check the server's API key and model access)"
		    : upstream_error_message(res.error, res.http_status));
		goto done;
	}
	if ((resp = json_tokener_parse(answer.data != NULL ? answer.data : "")) == NULL ||
	    !realtime_secret(resp, &secret, &expires_at)) {
		status = http_error(r, 502, "No ephemeral client_secret received from the AI service");
		goto done;
	}
	/* The browser posts its SDP offer here with the ephemeral secret. */
	if (beta)
		(void)snprintf(sdp_url, sizeof(sdp_url), "%s/realtime?model=%s", cfg->openai_base_url, model);
	else
		(void)snprintf(sdp_url, sizeof(sdp_url), "%s/realtime/calls", cfg->openai_base_url);
	out = json_object_new_object();
	cs = json_object_new_object();
	json_object_object_add(cs, "value", json_object_new_string(secret));
	json_object_object_add(cs, "expires_at", json_object_new_int64(expires_at));
	json_object_object_add(out, "client_secret", cs);
	json_object_object_add(out, "value", json_object_new_string(secret));
	json_object_object_add(out, "expires_at", json_object_new_int64(expires_at));
	json_object_object_add(out, "model", json_object_new_string(model));
	json_object_object_add(out, "voice", json_object_new_string(voice));
	json_object_object_add(out, "api", json_object_new_string(cfg->realtime_api));
	json_object_object_add(out, "sdp_url", json_object_new_string(sdp_url));
	if (json_object_object_get_ex(resp, "session", &v))
		json_object_object_add(out, "session", json_object_get(v));
	status = http_reply_json(r, 200, out);
done:
	buf_free(&answer);
	free(over);
	json_object_put(settings);
	json_object_put(req);
	json_object_put(resp);
	return status;
}

int
api_livekit_token(struct request *r)
{
	const struct config *cfg = r->cfg;
	json_object *body, *claims = NULL, *video, *out;
	const char *room, *participant, *err;
	size_t rlen, plen;
	char *token = NULL;
	time_t now = time(NULL);
	int status;

	if (cfg->livekit_api_key[0] == '\0' || cfg->livekit_api_secret[0] == '\0')
		return http_error(r, 503, "LiveKit is not configured on this server (LIVEKIT_API_KEY and LIVEKIT_API_SECRET)");
	if ((body = handler_body_object(r, &status)) == NULL)
		return status;
	if (!json_in_string(body, "roomName", JSON_REQUIRED, LIMIT_SESSION_REF_BYTES, &room, &rlen, &err)) {
		status = handler_bad_field(r, "roomName", err);
		goto done;
	}
	if (!json_in_string(body, "participantName", JSON_REQUIRED, LIMIT_PARTICIPANT_BYTES, &participant, &plen, &err)) {
		status = handler_bad_field(r, "participantName", err);
		goto done;
	}
	if (rlen == 0 || plen == 0) {
		status = handler_bad_field(r, rlen == 0 ? "roomName" : "participantName", "must not be empty");
		goto done;
	}
	claims = json_object_new_object();
	video = json_object_new_object();
	json_object_object_add(video, "roomJoin", json_object_new_boolean(1));
	json_object_object_add(video, "room", json_object_new_string(room));
	json_object_object_add(video, "canPublish", json_object_new_boolean(1));
	json_object_object_add(video, "canSubscribe", json_object_new_boolean(1));
	json_object_object_add(video, "canPublishData", json_object_new_boolean(1));
	json_object_object_add(claims, "iss", json_object_new_string(cfg->livekit_api_key));
	json_object_object_add(claims, "sub", json_object_new_string(participant));
	json_object_object_add(claims, "name", json_object_new_string(participant));
	json_object_object_add(claims, "nbf", json_object_new_int64(now));
	json_object_object_add(claims, "exp", json_object_new_int64(now + LIVEKIT_TTL_S));
	json_object_object_add(claims, "video", video);
	token = auth_sign_hs256(json_object_to_json_string_ext(claims, JSON_C_TO_STRING_PLAIN),
	    cfg->livekit_api_secret);
	if (token == NULL) {
		status = http_error(r, 500, "Could not sign the token");
		goto done;
	}
	out = json_object_new_object();
	json_object_object_add(out, "token", json_object_new_string(token));
	json_object_object_add(out, "roomName", json_object_new_string(room));
	json_object_object_add(out, "participantName", json_object_new_string(participant));
	if (cfg->livekit_url[0] != '\0')
		json_object_object_add(out, "url", json_object_new_string(cfg->livekit_url));
	status = http_reply_json(r, 200, out);
done:
	free(token);
	json_object_put(claims);
	json_object_put(body);
	return status;
}
