/* server.c: Engine.IO long-polling and WebSocket transports on
 * libwebsockets (the only gateway module besides loop_lws.c and the main that
 * includes libwebsockets.h). */
#include "server.h"

#include <libwebsockets.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "buf.h"
#include "chat_limits.h"
#include "chat.h"
#include "clock.h"
#include "config.h"
#include "cors.h"
#include "eio.h"
#include "gwmetrics.h"
#include "log.h"
#include "loop_lws.h"
#include "request.h"
#include "session.h"

#define HDR_MAX        512        /* a header value we look at */
#define XFF_MAX        4096       /* X-Forwarded-For: a chain of proxies */
#define ORIGIN_MAX     256
#define RESP_HDR_MAX   2048
#define STATUS_MAX     4096
#define TOO_MANY_MSG   "Too many sessions from this address"

_Static_assert(SESSION_PKT_HEADROOM >= LWS_PRE, "packets need LWS_PRE bytes of headroom");

/* Per-connection data (lws allocates it zeroed, one per wsi). A polling
 * HTTP connection may carry several requests: conn_reset starts each. */
struct conn {
	/* HTTP */
	bool             held;            /* a long-poll GET waiting for packets */
	bool             is_post;
	bool             too_large;
	bool             responding;      /* out holds a response to write */
	bool             close_after;     /* close the connection after it */
	bool             cors;            /* the Origin is allowed: CORS headers */
	bool             preflight;
	int              status;
	const char      *ctype;
	char             origin[ORIGIN_MAX];
	char             sid[EIO_SID_LEN + 1];
	struct buf       body;            /* POST body */
	struct buf       out;             /* LWS_PRE bytes, then the response body */
	/* WebSocket */
	bool             ws;
	bool             probing;         /* upgrading a polling session */
	bool             probe_reply;     /* "3probe" to send */
	bool             close_ws;        /* close at the next writable */
	bool             rx_binary;
	const char      *close_reason;    /* with close_ws: why (static text), or NULL */
	char             ip[64];
	struct buf       rx;              /* the message being assembled */
	/* Both */
	struct session  *session;         /* ws: its session; GET: while held */
};

static struct server_settings settings;

/* ---- helpers ---------------------------------------------------------- */

/* Copies header t into out; false when absent, empty or too long. */
static bool
hdr(struct lws *wsi, enum lws_token_indexes t, char *out, size_t len)
{
	int n = lws_hdr_copy(wsi, out, (int)len, t);

	if (n <= 0) {
		out[0] = '\0';
		return false;
	}
	return true;
}

/* The value of query argument name (given with its '='); false if absent. */
static bool
urlarg(struct lws *wsi, const char *name, char *out, size_t len)
{
	char frag[256];
	const char *v = lws_get_urlarg_by_name(wsi, name, frag, sizeof(frag));

	if (v == NULL || strlen(v) >= len) {
		out[0] = '\0';
		return false;
	}
	memcpy(out, v, strlen(v) + 1);
	return true;
}

/* The client's address for rate limits: the peer, or when the peer is a
 * trusted proxy (nginx) the address X-Forwarded-For vouches for. */
static void
client_ip(struct lws *wsi, char *out, size_t len)
{
	char peer[64] = "", xff[XFF_MAX];

	lws_get_peer_simple(wsi, peer, sizeof(peer));
	request_client_ip(settings.cfg, peer,
	    hdr(wsi, WSI_TOKEN_X_FORWARDED_FOR, xff, sizeof(xff)) ? xff : NULL, out, len);
}

static void
conn_reset(struct conn *c)
{
	buf_free(&c->body);
	buf_free(&c->out);
	c->held = c->is_post = c->too_large = c->responding = c->close_after = false;
	c->cors = c->preflight = false;
	c->status = 0;
	c->ctype = NULL;
	c->origin[0] = '\0';
	c->sid[0] = '\0';
	c->session = NULL;
}

/* ---- HTTP responses ------------------------------------------------------ */

/* Queues a response; it is written at the next HTTP_WRITEABLE. */
static int
respond(struct lws *wsi, struct conn *c, int status, const char *ctype, const char *body,
    size_t len)
{
	static const char pre[LWS_PRE];

	buf_free(&c->out);
	buf_init(&c->out, LWS_PRE + len + 1);
	if (!buf_append(&c->out, pre, LWS_PRE) || !buf_append(&c->out, body, len)) {
		log_error("gateway: out of memory for a response");
		return -1;
	}
	c->status = status;
	c->ctype = ctype;
	c->responding = true;
	c->held = false;
	lws_callback_on_writable(wsi);
	return 0;
}

static int
respond_error(struct lws *wsi, struct conn *c, enum eio_error code, int status)
{
	struct buf b;
	int rc;

	buf_init(&b, 128);
	if (!eio_encode_error(&b, code)) {
		buf_free(&b);
		return -1;
	}
	rc = respond(wsi, c, status != 0 ? status : eio_error_status(code), "application/json", b.data,
	    b.len);
	buf_free(&b);
	return rc;
}

static bool
add_header(struct lws *wsi, const char *name, const char *value, unsigned char **p,
    unsigned char *end)
{
	return lws_add_http_header_by_name(wsi, (const unsigned char *)name,
	    (const unsigned char *)value, (int)strlen(value), p, end) == 0;
}

/* Writes the queued response: headers, then the body. Returns -1 to close. */
static int
write_response(struct lws *wsi, struct conn *c)
{
	unsigned char hbuf[LWS_PRE + RESP_HDR_MAX], *start = hbuf + LWS_PRE, *p = start,
	    *end = hbuf + sizeof(hbuf) - 1;
	size_t len = c->out.len - LWS_PRE;

	if (lws_add_http_common_headers(wsi, (unsigned int)c->status, c->ctype, len, &p, end) ||
	    !add_header(wsi, "cache-control:", "no-store", &p, end) ||
	    !add_header(wsi, "x-content-type-options:", "nosniff", &p, end))
		return -1;
	if (c->cors && (!add_header(wsi, "access-control-allow-origin:", c->origin, &p, end) ||
	    !add_header(wsi, "access-control-allow-credentials:", "true", &p, end) ||
	    !add_header(wsi, "vary:", "Origin", &p, end)))
		return -1;
	if (c->preflight && (!add_header(wsi, "access-control-allow-methods:", "GET, POST", &p, end) ||
	    !add_header(wsi, "access-control-allow-headers:", "Content-Type, Authorization", &p, end) ||
	    !add_header(wsi, "access-control-max-age:", "600", &p, end)))
		return -1;
	if (lws_finalize_write_http_header(wsi, start, &p, end))
		return -1;
	if (len > 0 && lws_write(wsi, (unsigned char *)c->out.data + LWS_PRE, len,
	    LWS_WRITE_HTTP_FINAL) != (int)len)
		return -1;
	c->responding = false;
	buf_free(&c->out);
	buf_free(&c->body);
	if (c->close_after)
		return -1;
	return lws_http_transaction_completed(wsi) ? -1 : 0;
}

/* Takes the session's queued packets as a polling body (at least one,
 * at most max_payload bytes when there are several). A dropped session
 * whose goodbye this takes is closed. */
static int
respond_packets(struct lws *wsi, struct conn *c, struct session *s)
{
	struct buf b;
	int rc;

	/* Several packets up to maxPayload, or a lone one up to an event. */
	buf_init(&b, (size_t)settings.max_payload + LIMIT_EVENT_BYTES + 1);
	while (s->head != NULL) {
		if (b.len > 0 && b.len + 1 + s->head->len > (size_t)settings.max_payload)
			break;   /* the rest goes with the next GET */
		struct session_pkt *pkt = session_pop(s);

		if (!eio_payload_append(&b, session_pkt_data(pkt), pkt->len)) {
			free(pkt);
			buf_free(&b);
			return -1;
		}
		free(pkt);
	}
	rc = respond(wsi, c, 200, "text/plain; charset=UTF-8", b.data != NULL ? b.data : "", b.len);
	buf_free(&b);
	session_sent(s);
	return rc;
}

/* ---- session hooks ----------------------------------------------------- */

static void
hook_wake(struct session *s)
{
	if (s->transport == SESSION_WEBSOCKET && s->ws != NULL)
		lws_callback_on_writable(s->ws);
	else if (s->poll_wait != NULL)
		lws_callback_on_writable(s->poll_wait);
}

/* Lets a WebSocket go: it closes at its next writable, with reason
 * (static text) as a policy violation when given. */
static void
ws_let_go(struct lws *wsi, const char *reason)
{
	struct conn *c = lws_wsi_user(wsi);

	c->session = NULL;
	c->close_ws = true;
	c->close_reason = reason;
	lws_callback_on_writable(wsi);
}

static void
hook_detach(struct session *s)
{
	const char *reason = s->closing ? s->close_reason : NULL;

	if (s->ws != NULL)
		ws_let_go(s->ws, reason);
	if (s->upgrade_ws != NULL)
		ws_let_go(s->upgrade_ws, reason);
	if (s->poll_wait != NULL) {
		struct lws *wsi = s->poll_wait;
		struct conn *c = lws_wsi_user(wsi);

		/* The held GET learns of the end: a close packet. */
		c->session = NULL;
		(void)respond(wsi, c, 200, "text/plain; charset=UTF-8", "1", 1);
	}
	s->ws = s->upgrade_ws = s->poll_wait = NULL;
}

static void
hook_upgrade_expired(struct session *s)
{
	if (s->upgrade_ws != NULL)
		ws_let_go(s->upgrade_ws, NULL);
	s->upgrade_ws = NULL;
	s->upgrading = false;
}

/* ---- packets from a client ------------------------------------------- */

/* One Engine.IO packet from s (either transport). */
static void
session_packet(struct session *s, const struct eio_packet *pk)
{
	if (s->closing)
		return;   /* dropped: it only gets its goodbye */
	switch (pk->type) {
	case EIO_PING: {
		/* Protocol 3 clients ping; answer in kind. */
		char pong[64] = "3";
		size_t n = pk->len < sizeof(pong) - 1 ? pk->len : sizeof(pong) - 2;

		memcpy(pong + 1, pk->data, n);
		(void)session_send(s, pong, n + 1);
		break;
	}
	case EIO_PONG:
		session_pong(s, clock_now_ms());
		break;
	case EIO_MESSAGE:
		if (!pk->binary)
			chat_on_message(s, pk->data, pk->len);
		break;
	case EIO_CLOSE:
		session_close(s, "client closed");
		break;
	default:
		break;   /* open, upgrade, noop: nothing to do here */
	}
}

/* ---- HTTP long-polling -------------------------------------------------- */

/* 429 {"code":3,"message":"Too many sessions from this address"}:
 * socket.io-client reports a connect_error (xhr poll error, 429). */
static int
respond_too_many(struct lws *wsi, struct conn *c, const char *ip)
{
	struct buf b;
	int rc;

	log_info("gateway: client=%s has %zu sessions: handshake refused (429)", ip,
	    session_settings()->sessions_per_address);
	buf_init(&b, 256);
	if (!eio_encode_error_text(&b, EIO_ERR_BAD_REQUEST, TOO_MANY_MSG)) {
		buf_free(&b);
		return -1;
	}
	rc = respond(wsi, c, 429, "application/json", b.data, b.len);
	buf_free(&b);
	return rc;
}

static int
http_handshake(struct lws *wsi, struct conn *c)
{
	char ip[64];
	struct session *s;
	struct buf b;
	int rc;

	client_ip(wsi, ip, sizeof(ip));
	if (!session_admit(ip))
		return respond_too_many(wsi, c, ip);
	if ((s = session_new(SESSION_POLLING, ip, clock_now_ms())) == NULL)
		return respond_error(wsi, c, EIO_ERR_BAD_REQUEST, 500);
	buf_init(&b, 512);
	if (!eio_encode_open(&b, s->sid, true, settings.ping_interval_ms, settings.ping_timeout_ms,
	    settings.max_payload)) {
		buf_free(&b);
		session_close(s, "handshake failed");
		return -1;
	}
	rc = respond(wsi, c, 200, "text/plain; charset=UTF-8", b.data, b.len);
	buf_free(&b);
	return rc;
}

static int
http_poll(struct lws *wsi, struct conn *c, struct session *s)
{
	if (s->poll_wait != NULL) {
		/* One GET at a time: a second one ends the session. */
		(void)respond_error(wsi, c, EIO_ERR_BAD_REQUEST, 0);
		session_close(s, "overlapping long-poll");
		return 0;
	}
	if (session_pending(s))
		return respond_packets(wsi, c, s);
	/* Mid-upgrade the client waits for its GET to end before it sends
	 * `5`: release it at once (engine.io's noop during the upgrade). */
	if (s->upgrading)
		return respond(wsi, c, 200, "text/plain; charset=UTF-8", "6", 1);
	c->held = true;
	c->session = s;
	s->poll_wait = wsi;
	/* Held until a packet (at worst the next ping) is queued. */
	lws_set_timeout(wsi, NO_PENDING_TIMEOUT, 0);
	return 0;
}

static int
http_status(struct lws *wsi, struct conn *c)
{
	struct buf b;
	int rc;

	buf_init(&b, STATUS_MAX);
	if (!chat_status(&b)) {
		buf_free(&b);
		return -1;
	}
	rc = respond(wsi, c, 200, "application/json", b.data, b.len);
	buf_free(&b);
	return rc;
}

/* GET /gateway/metrics: Prometheus text. Not checked against the peer:
 * gateway_listen is loopback (or firewalled) like /gateway/status, and
 * nginx exposes it to loopback clients only. */
static int
http_metrics(struct lws *wsi, struct conn *c)
{
	struct buf b;
	int rc;

	buf_init(&b, LIMIT_METRICS_TEXT_BYTES);
	if (!gwmetrics_render(&b)) {
		log_error("gateway: the metrics page exceeds %d bytes", LIMIT_METRICS_TEXT_BYTES);
		buf_free(&b);
		return -1;
	}
	rc = respond(wsi, c, 200, "text/plain; version=0.0.4; charset=utf-8", b.data, b.len);
	buf_free(&b);
	return rc;
}

/* LWS_CALLBACK_HTTP: a request's headers are in. */
static int
http_request(struct lws *wsi, struct conn *c, const char *path)
{
	char eio[8], transport[16], host[HDR_MAX], len_hdr[32];
	bool get = lws_hdr_total_length(wsi, WSI_TOKEN_GET_URI) > 0;
	bool post = lws_hdr_total_length(wsi, WSI_TOKEN_POST_URI) > 0;
	bool options = lws_hdr_total_length(wsi, WSI_TOKEN_OPTIONS_URI) > 0;
	struct session *s;

	conn_reset(c);
	if (get && strcmp(path, "/gateway/status") == 0)
		return http_status(wsi, c);
	if (get && strcmp(path, "/gateway/metrics") == 0)
		return http_metrics(wsi, c);
	if (strncmp(path, "/socket.io", 10) != 0 || (path[10] != '/' && path[10] != '\0'))
		return respond(wsi, c, 404, "application/json", "{\"error\":\"Not found\"}", 21);
	if (hdr(wsi, WSI_TOKEN_ORIGIN, c->origin, sizeof(c->origin))) {
		(void)hdr(wsi, WSI_TOKEN_HOST, host, sizeof(host));
		if (!cors_origin_allowed(settings.cfg, c->origin, host)) {
			log_info("gateway: origin %s refused", c->origin);
			return respond_error(wsi, c, EIO_ERR_FORBIDDEN, 0);
		}
		c->cors = true;
	}
	if (options) {
		c->preflight = true;
		return respond(wsi, c, 204, NULL, "", 0);
	}
	if (!urlarg(wsi, "EIO=", eio, sizeof(eio)) || strcmp(eio, "4") != 0)
		return respond_error(wsi, c, EIO_ERR_UNSUPPORTED_PROTOCOL, 0);
	if (!urlarg(wsi, "transport=", transport, sizeof(transport)) ||
	    (strcmp(transport, "polling") != 0 && strcmp(transport, "websocket") != 0))
		return respond_error(wsi, c, EIO_ERR_TRANSPORT_UNKNOWN, 0);
	if (strcmp(transport, "polling") != 0)
		return respond_error(wsi, c, EIO_ERR_BAD_REQUEST, 0);   /* no Upgrade header */
	if (!urlarg(wsi, "sid=", c->sid, sizeof(c->sid)) || c->sid[0] == '\0') {
		if (!get)
			return respond_error(wsi, c, EIO_ERR_BAD_HANDSHAKE_METHOD, 0);
		return http_handshake(wsi, c);
	}
	if ((s = session_find(c->sid)) == NULL)
		return respond_error(wsi, c, EIO_ERR_SESSION_UNKNOWN, 0);
	if (s->transport != SESSION_POLLING)
		return respond_error(wsi, c, EIO_ERR_BAD_REQUEST, 0);
	if (get)
		return http_poll(wsi, c, s);
	if (!post)
		return respond_error(wsi, c, EIO_ERR_BAD_REQUEST, 0);
	c->is_post = true;
	if (hdr(wsi, WSI_TOKEN_HTTP_CONTENT_LENGTH, len_hdr, sizeof(len_hdr))) {
		char *endp;
		unsigned long long n = strtoull(len_hdr, &endp, 10);

		if (*endp != '\0' || n > (unsigned long long)settings.max_payload) {
			/* Answered now; lws discards the body before it ends the
			 * transaction, so a proxy still sending it sees the 413,
			 * not a reset. */
			c->is_post = false;
			session_close(s, "payload too large");
			return respond_error(wsi, c, EIO_ERR_BAD_REQUEST, 413);
		}
		if (n > 0) {
			buf_init(&c->body, (size_t)settings.max_payload);
			return 0;   /* the body follows: HTTP_BODY, HTTP_BODY_COMPLETION */
		}
	}
	/* No body at all: an empty payload is malformed. */
	session_close(s, "empty payload");
	return respond_error(wsi, c, EIO_ERR_BAD_REQUEST, 0);
}

static int
http_body(struct conn *c, const char *in, size_t len)
{
	if (!c->is_post)
		return 0;
	if (!c->too_large && !buf_append(&c->body, in, len))
		c->too_large = true;
	return 0;
}

/* LWS_CALLBACK_HTTP_BODY_COMPLETION: a POST's packets. */
static int
http_body_done(struct lws *wsi, struct conn *c)
{
	struct session *s = session_find(c->sid);
	struct eio_payload_iter it;
	struct eio_packet pk;
	int rc = 0;

	if (!c->is_post)
		return 0;
	if (s == NULL)
		return respond_error(wsi, c, EIO_ERR_SESSION_UNKNOWN, 0);
	if (c->too_large) {
		session_close(s, "payload too large");
		return respond_error(wsi, c, EIO_ERR_BAD_REQUEST, 413);
	}
	if (s->transport != SESSION_POLLING)
		return respond_error(wsi, c, EIO_ERR_BAD_REQUEST, 0);
	eio_payload_iter_init(&it, c->body.data != NULL ? c->body.data : "", c->body.len);
	while (!s->closed && (rc = eio_payload_next(&it, &pk)) == 1)
		session_packet(s, &pk);
	if (rc < 0) {
		session_close(s, "malformed payload");
		return respond_error(wsi, c, EIO_ERR_BAD_REQUEST, 0);
	}
	return respond(wsi, c, 200, "text/html", "ok", 2);
}

static int
http_writeable(struct lws *wsi, struct conn *c)
{
	if (c->held) {
		struct session *s = c->session;

		if (s == NULL || !session_pending(s))
			return 0;   /* woken for nothing */
		s->poll_wait = NULL;
		c->session = NULL;
		c->held = false;
		if (respond_packets(wsi, c, s) != 0)
			return -1;
	}
	if (!c->responding)
		return 0;
	return write_response(wsi, c);
}

static void
http_closed(struct lws *wsi, struct conn *c)
{
	if (c->held && c->session != NULL && c->session->poll_wait == wsi)
		c->session->poll_wait = NULL;   /* the client gave up the GET */
	c->held = false;
	c->session = NULL;
	buf_free(&c->body);
	buf_free(&c->out);
}

/* ---- WebSocket --------------------------------------------------------------- */

/* LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION: accept the upgrade? */
static int
ws_filter(struct lws *wsi, struct conn *c)
{
	char eio[8], transport[16], host[HDR_MAX];
	struct session *s;

	memset(c, 0, sizeof(*c));
	if (!urlarg(wsi, "EIO=", eio, sizeof(eio)) || strcmp(eio, "4") != 0 ||
	    !urlarg(wsi, "transport=", transport, sizeof(transport)) ||
	    strcmp(transport, "websocket") != 0)
		return 1;
	if (hdr(wsi, WSI_TOKEN_ORIGIN, c->origin, sizeof(c->origin))) {
		(void)hdr(wsi, WSI_TOKEN_HOST, host, sizeof(host));
		if (!cors_origin_allowed(settings.cfg, c->origin, host)) {
			log_info("gateway: origin %s refused (websocket)", c->origin);
			return 1;
		}
	}
	client_ip(wsi, c->ip, sizeof(c->ip));
	if (urlarg(wsi, "sid=", c->sid, sizeof(c->sid)) && c->sid[0] != '\0') {
		s = session_find(c->sid);
		if (s == NULL || s->transport != SESSION_POLLING || s->upgrade_ws != NULL || s->closing)
			return 1;
	} else if (!session_admit(c->ip)) {
		/* A new session by WebSocket alone: refused before the upgrade. */
		log_info("gateway: client=%s has %zu sessions: WebSocket handshake refused (429)",
		    c->ip, session_settings()->sessions_per_address);
		(void)lws_return_http_status(wsi, 429, TOO_MANY_MSG);
		return 1;
	}
	return 0;
}

static int
ws_established(struct lws *wsi, struct conn *c)
{
	int64_t now = clock_now_ms();
	struct session *s;
	struct buf b;
	bool ok;

	c->ws = true;
	buf_init(&c->rx, (size_t)settings.max_payload);
	if (c->sid[0] != '\0') {
		s = session_find(c->sid);
		if (s == NULL || s->transport != SESSION_POLLING || s->upgrade_ws != NULL)
			return -1;
		s->upgrade_ws = wsi;
		s->upgrade_deadline_ms = now + session_settings()->upgrade_timeout_ms;
		c->session = s;
		c->probing = true;
		return 0;
	}
	if ((s = session_new(SESSION_WEBSOCKET, c->ip, now)) == NULL)
		return -1;
	s->ws = wsi;
	c->session = s;
	buf_init(&b, 512);
	ok = eio_encode_open(&b, s->sid, false, settings.ping_interval_ms, settings.ping_timeout_ms,
	    settings.max_payload) && session_send(s, b.data, b.len);
	buf_free(&b);
	return ok ? 0 : -1;
}

/* The probe succeeded and the client sent `5`: the WebSocket takes over. */
static void
ws_upgrade(struct lws *wsi, struct conn *c, struct session *s)
{
	s->transport = SESSION_WEBSOCKET;
	s->ws = wsi;
	s->upgrade_ws = NULL;
	s->upgrading = false;
	c->probing = false;
	if (s->poll_wait != NULL) {
		struct lws *get = s->poll_wait;
		struct conn *gc = lws_wsi_user(get);

		/* A GET still held is released empty-handed. */
		s->poll_wait = NULL;
		gc->session = NULL;
		(void)respond(get, gc, 200, "text/plain; charset=UTF-8", "6", 1);
	}
	if (session_pending(s))
		lws_callback_on_writable(wsi);
}

/* A whole message arrived. Returns -1 to close the WebSocket. */
static int
ws_message(struct lws *wsi, struct conn *c, const char *data, size_t len, bool binary)
{
	struct session *s = c->session;
	struct eio_packet pk;

	if (s == NULL || s->closed)
		return -1;
	if (c->probing) {
		if (!binary && len == 6 && memcmp(data, "2probe", 6) == 0) {
			c->probe_reply = true;
			s->upgrading = true;
			lws_callback_on_writable(wsi);
			/* Release the held GET so the client can pause polling. */
			if (s->poll_wait != NULL)
				(void)session_send(s, "6", 1);
			return 0;
		}
		if (!binary && len == 1 && data[0] == '5') {
			ws_upgrade(wsi, c, s);
			return 0;
		}
		/* Anything else aborts the upgrade; polling goes on. */
		s->upgrade_ws = NULL;
		s->upgrading = false;
		c->session = NULL;
		return -1;
	}
	if (binary)
		return 0;   /* no binary attachments are accepted */
	if (!eio_packet_decode(data, len, &pk)) {
		session_close(s, "malformed packet");
		return 0;   /* detach closes this socket */
	}
	session_packet(s, &pk);
	return 0;
}

static int
ws_receive(struct lws *wsi, struct conn *c, const char *in, size_t len)
{
	int rc;

	if (lws_is_first_fragment(wsi)) {
		buf_reset(&c->rx);
		c->rx_binary = lws_frame_is_binary(wsi) != 0;
	}
	if (!buf_append(&c->rx, in, len)) {
		/* Over maxPayload (or out of memory). */
		log_info("gateway: WebSocket message over %ld bytes: closing", settings.max_payload);
		if (c->session != NULL && !c->probing)
			session_close(c->session, "payload too large");
		lws_close_reason(wsi, LWS_CLOSE_STATUS_MESSAGE_TOO_LARGE, NULL, 0);
		return -1;
	}
	if (!lws_is_final_fragment(wsi) || lws_remaining_packet_payload(wsi) > 0)
		return 0;
	rc = ws_message(wsi, c, c->rx.data != NULL ? c->rx.data : "", c->rx.len, c->rx_binary);
	buf_reset(&c->rx);
	return rc;
}

static int
ws_writeable(struct lws *wsi, struct conn *c)
{
	struct session *s = c->session;
	struct session_pkt *pkt;

	if (c->close_ws) {
		if (c->close_reason != NULL)
			lws_close_reason(wsi, LWS_CLOSE_STATUS_POLICY_VIOLATION,
			    (unsigned char *)(uintptr_t)c->close_reason, strlen(c->close_reason));
		else
			lws_close_reason(wsi, LWS_CLOSE_STATUS_NORMAL, NULL, 0);
		return -1;
	}
	if (c->probe_reply) {
		unsigned char msg[LWS_PRE + 6];

		memcpy(msg + LWS_PRE, "3probe", 6);
		c->probe_reply = false;
		return lws_write(wsi, msg + LWS_PRE, 6, LWS_WRITE_TEXT) < 6 ? -1 : 0;
	}
	if (s == NULL || c->probing || s->ws != wsi)
		return 0;
	while ((pkt = session_pop(s)) != NULL) {
		int n = lws_write(wsi, (unsigned char *)session_pkt_data(pkt), pkt->len, LWS_WRITE_TEXT);

		free(pkt);
		if (n < 0) {
			session_close(s, "write failed");
			return -1;
		}
		if (lws_send_pipe_choked(wsi))
			break;
	}
	session_sent(s);   /* a dropped session's goodbye is out: it closes */
	if (!s->closed && session_pending(s))
		lws_callback_on_writable(wsi);
	return 0;
}

static void
ws_closed(struct lws *wsi, struct conn *c)
{
	struct session *s = c->session;

	c->session = NULL;
	buf_free(&c->rx);
	if (s == NULL)
		return;
	if (s->ws == wsi) {
		s->ws = NULL;
		session_close(s, "transport closed");
	} else if (s->upgrade_ws == wsi) {
		s->upgrade_ws = NULL;
		s->upgrading = false;
	}
}

/* ---- the protocol -------------------------------------------------------- */

static int
sio_callback(struct lws *wsi, enum lws_callback_reasons reason, void *user, void *in, size_t len)
{
	struct conn *c = user;

	switch (reason) {
	case LWS_CALLBACK_HTTP:
		return c != NULL ? http_request(wsi, c, (const char *)in) : -1;
	case LWS_CALLBACK_HTTP_BODY:
		return c != NULL ? http_body(c, in, len) : 0;
	case LWS_CALLBACK_HTTP_BODY_COMPLETION:
		return c != NULL ? http_body_done(wsi, c) : 0;
	case LWS_CALLBACK_HTTP_WRITEABLE:
		return c != NULL ? http_writeable(wsi, c) : 0;
	case LWS_CALLBACK_CLOSED_HTTP:
	case LWS_CALLBACK_HTTP_DROP_PROTOCOL:
		if (c != NULL && !c->ws)
			http_closed(wsi, c);
		return 0;
	case LWS_CALLBACK_FILTER_PROTOCOL_CONNECTION:
		return c != NULL ? ws_filter(wsi, c) : 1;
	case LWS_CALLBACK_ESTABLISHED:
		return c != NULL ? ws_established(wsi, c) : -1;
	case LWS_CALLBACK_RECEIVE:
		return c != NULL ? ws_receive(wsi, c, in, len) : -1;
	case LWS_CALLBACK_SERVER_WRITEABLE:
		return c != NULL ? ws_writeable(wsi, c) : 0;
	case LWS_CALLBACK_CLOSED:
		if (c != NULL)
			ws_closed(wsi, c);
		return 0;
	default:
		return 0;
	}
}

/* libwebsockets' own log lines go to log.h (warnings and errors only). */
static void
lws_log(int level, const char *line)
{
	size_t n = strlen(line);

	while (n > 0 && (line[n - 1] == '\n' || line[n - 1] == '\r'))
		n--;
	if (level & LLL_ERR)
		log_error("libwebsockets: %.*s", (int)n, line);
	else
		log_warn("libwebsockets: %.*s", (int)n, line);
}

bool
server_parse_listen(const char *listen, char *host, unsigned long hostlen, int *port)
{
	const char *colon = strrchr(listen, ':'), *h = listen;
	size_t hl;
	char *end;
	long p;

	if (colon == NULL) {
		colon = listen - 1;   /* a bare port */
		hl = 0;
	} else
		hl = (size_t)(colon - listen);
	if (hl >= 2 && h[0] == '[' && h[hl - 1] == ']') {
		h++;
		hl -= 2;
	}
	if (hl >= hostlen)
		return false;
	p = strtol(colon + 1, &end, 10);
	if (colon[1] == '\0' || *end != '\0' || p < 1 || p > 65535)
		return false;
	memcpy(host, h, hl);
	host[hl] = '\0';
	if (strcmp(host, "*") == 0)
		host[0] = '\0';
	*port = (int)p;
	return true;
}

struct lws_context *
server_create(const struct server_settings *s)
{
	static struct lws_protocols protocols[3];
	static char host[256];
	struct lws_context_creation_info info;
	struct lws_context *ctx;
	struct lws_vhost *vh;
	int port;
	struct session_settings ss = {
		.ping_interval_ms = s->ping_interval_ms,
		.ping_timeout_ms = s->ping_timeout_ms,
		.connect_timeout_ms = 45000,
		.upgrade_timeout_ms = 10000,
		.max_queue_bytes = (size_t)s->cfg->gateway_session_queue,
		.max_total_bytes = (size_t)s->cfg->gateway_queue_total,
		.sessions_per_address = (size_t)s->cfg->gateway_sessions_per_address,
	};
	struct session_hooks hooks = { hook_wake, hook_detach, hook_upgrade_expired };

	settings = *s;
	if (!server_parse_listen(s->cfg->gateway_listen, host, sizeof(host), &port)) {
		log_error("gateway_listen: expected host:port, got \"%s\"", s->cfg->gateway_listen);
		return NULL;
	}
	session_setup(&ss, &hooks);
	protocols[0] = (struct lws_protocols){
		.name = "socket.io",
		.callback = sio_callback,
		.per_session_data_size = sizeof(struct conn),
		.rx_buffer_size = 65536,
	};
	protocols[1] = *loop_protocol();
	memset(&protocols[2], 0, sizeof(protocols[2]));

	lws_set_log_level(LLL_ERR | LLL_WARN, lws_log);
	memset(&info, 0, sizeof(info));
	info.port = port;
	info.iface = host[0] != '\0' ? host : NULL;
	info.protocols = protocols;
	info.vhost_name = "default";
	info.gid = -1;
	info.uid = -1;
	/* Text frames must be UTF-8 (RFC 6455); v4 of IP unless asked for v6. */
	info.options = LWS_SERVER_OPTION_VALIDATE_UTF8;
	if (host[0] != '\0' && strchr(host, ':') == NULL)
		info.options |= LWS_SERVER_OPTION_DISABLE_IPV6;
	info.max_http_header_data = 8192;
	info.timeout_secs = 30;
	info.keepalive_timeout = 10;
	if ((ctx = lws_create_context(&info)) == NULL) {
		log_error("gateway: cannot listen on %s", s->cfg->gateway_listen);
		return NULL;
	}
	if ((vh = lws_get_vhost_by_name(ctx, "default")) == NULL) {
		log_error("gateway: no default vhost");
		lws_context_destroy(ctx);
		return NULL;
	}
	loop_setup(ctx, vh);
	log_info("gateway listening on %s (ping %ld ms, timeout %ld ms; queues %zu bytes a "
	    "session, %zu in all; %zu sessions an address)", s->cfg->gateway_listen,
	    s->ping_interval_ms, s->ping_timeout_ms, ss.max_queue_bytes, ss.max_total_bytes,
	    ss.sessions_per_address);
	return ctx;
}
