/* sio.c: Socket.IO protocol 5 packets: decoding with socket.io-parser 4's
 * rules, and the few encoders the server needs. */
#include "sio.h"

#include <string.h>

#include "json_in.h"
#include "json_out.h"

/* Event names a client may not use (socket.io-parser's RESERVED_EVENTS). */
static const char *const reserved_events[] = {
	"connect", "connect_error", "disconnect", "disconnecting", "newListener",
	"removeListener",
};

static bool
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

static bool
event_name_reserved(const char *name)
{
	for (size_t i = 0; i < sizeof(reserved_events) / sizeof(reserved_events[0]); i++)
		if (strcmp(name, reserved_events[i]) == 0)
			return true;
	return false;
}

/* The payload shape each type allows (socket.io-parser isPayloadValid). */
static bool
payload_valid(enum sio_type type, json_object *data, bool present)
{
	json_object *first;

	switch (type) {
	case SIO_CONNECT:
		return !present || json_object_is_type(data, json_type_object);
	case SIO_DISCONNECT:
		return !present;
	case SIO_CONNECT_ERROR:
		return !present || json_object_is_type(data, json_type_object) ||
		    json_object_is_type(data, json_type_string);
	case SIO_EVENT:
	case SIO_BINARY_EVENT:
		if (!present || !json_object_is_type(data, json_type_array) ||
		    json_object_array_length(data) == 0)
			return false;
		first = json_object_array_get_idx(data, 0);
		if (json_object_is_type(first, json_type_int) || json_object_is_type(first, json_type_double))
			return true;
		return json_object_is_type(first, json_type_string) &&
		    !event_name_reserved(json_object_get_string(first));
	case SIO_ACK:
	case SIO_BINARY_ACK:
		return present && json_object_is_type(data, json_type_array);
	}
	return false;
}

bool
sio_packet_decode(const char *p, size_t n, struct sio_packet *out, const char **err)
{
	size_t i = 1;

	memset(out, 0, sizeof(*out));
	out->ack_id = -1;
	out->nsp = "/";
	out->nsp_len = 1;
	if (n == 0 || p[0] < '0' || p[0] > '6') {
		*err = "unknown packet type";
		return false;
	}
	out->type = (enum sio_type)(p[0] - '0');

	if (out->type == SIO_BINARY_EVENT || out->type == SIO_BINARY_ACK) {
		size_t start = i;
		long v = 0;

		while (i < n && is_digit(p[i]) && i - start < 6)
			v = v * 10 + (p[i++] - '0');
		if (i == start || i >= n || p[i] != '-') {
			*err = "illegal attachments";
			return false;
		}
		out->attachments = v;
		i++;
	}

	if (i < n && p[i] == '/') {
		size_t start = i;

		while (i < n && p[i] != ',')
			i++;
		out->nsp = p + start;
		out->nsp_len = i - start;
		if (i < n)
			i++;  /* the comma */
	}

	if (i < n && is_digit(p[i])) {
		long long id = 0;
		size_t start = i;

		while (i < n && is_digit(p[i])) {
			if (i - start >= 15) {
				*err = "ack id too large";
				return false;
			}
			id = id * 10 + (p[i++] - '0');
		}
		out->ack_id = id;
	}

	bool present = i < n;
	if (present) {
		const char *jerr;

		/* json_in_parse turns `null` into NULL: no valid payload is null. */
		if ((out->data = json_in_parse(p + i, n - i, &jerr)) == NULL) {
			*err = "invalid payload";
			return false;
		}
	}
	if (!payload_valid(out->type, out->data, present)) {
		sio_packet_free(out);
		*err = "invalid payload";
		return false;
	}
	return true;
}

void
sio_packet_free(struct sio_packet *pk)
{
	if (pk == NULL)
		return;
	json_object_put(pk->data);
	pk->data = NULL;
}

bool
sio_packet_default_nsp(const struct sio_packet *pk)
{
	return pk->nsp_len == 1 && pk->nsp[0] == '/';
}

const char *
sio_event_name(const struct sio_packet *pk)
{
	json_object *first;

	if (pk->type != SIO_EVENT || pk->data == NULL)
		return NULL;
	first = json_object_array_get_idx(pk->data, 0);
	return json_object_is_type(first, json_type_string) ? json_object_get_string(first) : NULL;
}

json_object *
sio_event_arg(const struct sio_packet *pk, size_t i)
{
	if (pk->data == NULL || !json_object_is_type(pk->data, json_type_array))
		return NULL;
	if (pk->type == SIO_EVENT || pk->type == SIO_BINARY_EVENT)
		i++;  /* skip the name */
	if (i >= json_object_array_length(pk->data))
		return NULL;
	return json_object_array_get_idx(pk->data, i);
}

/* Appends the type and, unless it is "/", the namespace and its comma. */
static bool
encode_head(struct buf *b, enum sio_type type, const char *nsp)
{
	if (!buf_appendc(b, (char)('0' + (int)type)))
		return false;
	if (nsp == NULL || strcmp(nsp, "/") == 0)
		return true;
	return buf_appendz(b, nsp) && buf_appendc(b, ',');
}

bool
sio_encode_connect(struct buf *b, const char *nsp, const char *sid)
{
	return encode_head(b, SIO_CONNECT, nsp) && buf_appendc(b, '{') && json_put_key(b, "sid") &&
	    json_put_stringz(b, sid) && buf_appendc(b, '}');
}

bool
sio_encode_connect_error(struct buf *b, const char *nsp, const char *message)
{
	return encode_head(b, SIO_CONNECT_ERROR, nsp) && buf_appendc(b, '{') &&
	    json_put_key(b, "message") && json_put_stringz(b, message) && buf_appendc(b, '}');
}

bool
sio_encode_event(struct buf *b, const char *nsp, const char *name, const char *arg,
    size_t arg_len)
{
	if (!encode_head(b, SIO_EVENT, nsp) || !buf_appendc(b, '[') || !json_put_stringz(b, name))
		return false;
	if (arg != NULL && (!buf_appendc(b, ',') || !buf_append(b, arg, arg_len)))
		return false;
	return buf_appendc(b, ']');
}

bool
sio_encode_ack(struct buf *b, const char *nsp, long long id, const char *arg, size_t arg_len)
{
	if (!encode_head(b, SIO_ACK, nsp) || !buf_printf(b, "%lld[", id))
		return false;
	if (arg != NULL && !buf_append(b, arg, arg_len))
		return false;
	return buf_appendc(b, ']');
}
