/* eio.c: Engine.IO protocol 4 packets, polling payloads and the handshake. */
#include "eio.h"

#include <string.h>
#include <sys/random.h>

#include "json_out.h"

bool
eio_packet_decode(const char *p, size_t n, struct eio_packet *out)
{
	if (n == 0)
		return false;
	memset(out, 0, sizeof(*out));
	if (p[0] == 'b') {
		/* A binary message over polling: base64 follows. */
		out->type = EIO_MESSAGE;
		out->binary = true;
	} else if (p[0] >= '0' && p[0] <= '6')
		out->type = (enum eio_type)(p[0] - '0');
	else
		return false;
	out->data = p + 1;
	out->len = n - 1;
	return true;
}

void
eio_payload_iter_init(struct eio_payload_iter *it, const char *p, size_t n)
{
	it->p = p;
	it->n = n;
	it->off = 0;
	it->done = false;
}

int
eio_payload_next(struct eio_payload_iter *it, struct eio_packet *out)
{
	const char *start, *sep;
	size_t len;

	if (it->done)
		return 0;
	start = it->p + it->off;
	sep = memchr(start, EIO_SEPARATOR, it->n - it->off);
	len = sep != NULL ? (size_t)(sep - start) : it->n - it->off;
	if (sep != NULL)
		it->off += len + 1;
	else
		it->done = true;
	/* Every record must be a packet: "", "\x1e" and "2\x1e" are refused
	 * (engine.io-parser turns an empty record into an error packet). */
	if (!eio_packet_decode(start, len, out)) {
		it->done = true;
		return -1;
	}
	return 1;
}

bool
eio_payload_append(struct buf *b, const char *packet, size_t len)
{
	size_t old = b->len;

	if ((b->len > 0 && !buf_appendc(b, EIO_SEPARATOR)) || !buf_append(b, packet, len)) {
		/* All or nothing: drop a separator that was added. */
		if (b->data != NULL) {
			b->len = old;
			b->data[old] = '\0';
		}
		return false;
	}
	return true;
}

bool
eio_encode_open(struct buf *b, const char *sid, bool upgrade_ws, long ping_interval_ms,
    long ping_timeout_ms, long max_payload)
{
	return buf_appendc(b, (char)('0' + EIO_OPEN)) && buf_appendc(b, '{') && json_put_key(b, "sid") &&
	    json_put_stringz(b, sid) &&
	    buf_appendz(b, upgrade_ws ? ",\"upgrades\":[\"websocket\"]" : ",\"upgrades\":[]") &&
	    buf_printf(b, ",\"pingInterval\":%ld,\"pingTimeout\":%ld,\"maxPayload\":%ld}",
	        ping_interval_ms, ping_timeout_ms, max_payload);
}

static const char *
eio_error_message(enum eio_error code)
{
	switch (code) {
	case EIO_ERR_TRANSPORT_UNKNOWN:    return "Transport unknown";
	case EIO_ERR_SESSION_UNKNOWN:      return "Session ID unknown";
	case EIO_ERR_BAD_HANDSHAKE_METHOD: return "Bad handshake method";
	case EIO_ERR_BAD_REQUEST:          return "Bad request";
	case EIO_ERR_FORBIDDEN:            return "Forbidden";
	case EIO_ERR_UNSUPPORTED_PROTOCOL: return "Unsupported protocol version";
	}
	return "Bad request";
}

bool
eio_encode_error(struct buf *b, enum eio_error code)
{
	return buf_printf(b, "{\"code\":%d,\"message\":", (int)code) &&
	    json_put_stringz(b, eio_error_message(code)) && buf_appendc(b, '}');
}

bool
eio_encode_error_text(struct buf *b, enum eio_error code, const char *message)
{
	return buf_printf(b, "{\"code\":%d,\"message\":", (int)code) &&
	    json_put_stringz(b, message) && buf_appendc(b, '}');
}

int
eio_error_status(enum eio_error code)
{
	return code == EIO_ERR_FORBIDDEN ? 403 : 400;
}

static const char sid_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

bool
eio_sid_generate(char *out, size_t len)
{
	unsigned char r[EIO_SID_LEN];

	if (len <= EIO_SID_LEN || getrandom(r, sizeof(r), 0) != (ssize_t)sizeof(r))
		return false;
	/* 6 random bits per character: 120 bits, unguessable. */
	for (size_t i = 0; i < EIO_SID_LEN; i++)
		out[i] = sid_alphabet[r[i] & 63];
	out[EIO_SID_LEN] = '\0';
	return true;
}
