/* sio.h: Socket.IO protocol 5 packets (the data of an Engine.IO message).
 *
 * A packet is `<type>[<attachments>-][<nsp>,][<ack id>][JSON]`: type 0
 * CONNECT, 1 DISCONNECT, 2 EVENT, 3 ACK, 4 CONNECT_ERROR, 5 BINARY_EVENT,
 * 6 BINARY_ACK; the namespace is written only when it is not "/". The
 * decoder applies socket.io-parser 4's rules: strict JSON, a payload shape
 * per type, reserved event names refused. Encoders append to a struct buf
 * the caller owns (the Engine.IO `4` is the caller's). */
#ifndef GATEWAY_SIO_H
#define GATEWAY_SIO_H

#include <stdbool.h>
#include <stddef.h>

#include <json-c/json.h>

#include "buf.h"

enum sio_type {
	SIO_CONNECT = 0,
	SIO_DISCONNECT,
	SIO_EVENT,
	SIO_ACK,
	SIO_CONNECT_ERROR,
	SIO_BINARY_EVENT,
	SIO_BINARY_ACK,
};

#define SIO_ACK_ID_MAX 999999999999999LL   /* 15 digits: exact in a JS number */

/* A decoded packet. nsp borrows from the decoded bytes; data is owned. */
struct sio_packet {
	enum sio_type  type;
	long           attachments;  /* binary types only */
	const char    *nsp;          /* "/" unless the packet names another */
	size_t         nsp_len;
	long long      ack_id;       /* -1: no acknowledgement asked */
	json_object   *data;         /* the payload, NULL when absent */
};

/* Decodes p[0..n). On success the caller releases *out with
 * sio_packet_free(); on failure nothing needs releasing and *err says
 * why (a static string). */
bool sio_packet_decode(const char *p, size_t n, struct sio_packet *out, const char **err);

/* Releases what a decoded packet owns. NULL-safe, idempotent. */
void sio_packet_free(struct sio_packet *pk);

/* True if the packet is for the default namespace "/". */
bool sio_packet_default_nsp(const struct sio_packet *pk);

/* The name of an EVENT (NULL for a numeric name or another type); borrowed
 * from pk->data. */
const char *sio_event_name(const struct sio_packet *pk);

/* The i-th argument after the name (NULL if absent); borrowed. */
json_object *sio_event_arg(const struct sio_packet *pk, size_t i);

/* `0[nsp,]{"sid":"..."}`: the server's answer to CONNECT. */
bool sio_encode_connect(struct buf *b, const char *nsp, const char *sid);

/* `4[nsp,]{"message":"..."}`: CONNECT refused. */
bool sio_encode_connect_error(struct buf *b, const char *nsp, const char *message);

/* `2[nsp,]["name",arg]`: one event with one argument, arg being JSON text
 * (trusted: produced by this program) or NULL for none. */
bool sio_encode_event(struct buf *b, const char *nsp, const char *name, const char *arg,
    size_t arg_len);

/* `3[nsp,]<id>[arg]`: the acknowledgement of event id, with one argument
 * (JSON text) or none. */
bool sio_encode_ack(struct buf *b, const char *nsp, long long id, const char *arg, size_t arg_len);

#endif
