/* eio.h: Engine.IO protocol 4 packets, long-polling payloads and the
 * handshake, as socket.io-client 4.x speaks them.
 *
 * A packet is one type character and its data: `0` open, `1` close,
 * `2` ping, `3` pong, `4` message, `5` upgrade, `6` noop. A polling body
 * joins packets with the record separator 0x1e; a binary packet travels
 * there as `b` + base64. Over WebSocket each frame holds one packet.
 * Pure functions over (pointer, length) slices: no I/O, no allocation
 * except in the struct buf the caller passes. */
#ifndef GATEWAY_EIO_H
#define GATEWAY_EIO_H

#include <stdbool.h>
#include <stddef.h>

#include "buf.h"

#define EIO_PROTOCOL     4
#define EIO_SEPARATOR    '\x1e'
#define EIO_SID_LEN      20          /* characters of a generated sid */

enum eio_type {
	EIO_OPEN = 0,
	EIO_CLOSE,
	EIO_PING,
	EIO_PONG,
	EIO_MESSAGE,
	EIO_UPGRADE,
	EIO_NOOP,
};

/* A decoded packet; data borrows from the decoded bytes. */
struct eio_packet {
	enum eio_type  type;
	bool           binary;    /* `b` + base64 over polling: data is the base64 text */
	const char    *data;
	size_t         len;
};

/* The HTTP errors of the protocol (the `code` of the JSON error body). */
enum eio_error {
	EIO_ERR_TRANSPORT_UNKNOWN = 0,
	EIO_ERR_SESSION_UNKNOWN = 1,
	EIO_ERR_BAD_HANDSHAKE_METHOD = 2,
	EIO_ERR_BAD_REQUEST = 3,
	EIO_ERR_FORBIDDEN = 4,
	EIO_ERR_UNSUPPORTED_PROTOCOL = 5,
};

/* Decodes one packet (a WebSocket text frame, or one record of a polling
 * body). Returns false for an empty packet or an unknown type; *out is
 * valid only on success and borrows from p. */
bool eio_packet_decode(const char *p, size_t n, struct eio_packet *out);

/* Iterates over the packets of a polling body. */
struct eio_payload_iter {
	const char *p;
	size_t      n;
	size_t      off;
	bool        done;
};

void eio_payload_iter_init(struct eio_payload_iter *it, const char *p, size_t n);

/* Stores the next packet in *out and returns 1; returns 0 at the end and
 * -1 for a malformed packet (then the whole body must be refused). An
 * empty body is malformed. */
int eio_payload_next(struct eio_payload_iter *it, struct eio_packet *out);

/* Appends one encoded packet (type character included) to a polling body,
 * with the separator when the body is not empty. False if b is full. */
bool eio_payload_append(struct buf *b, const char *packet, size_t len);

/* Appends the open packet: 0{"sid",...,"upgrades",...}. upgrade_ws lists
 * "websocket" (polling handshake) or nothing (direct WebSocket). */
bool eio_encode_open(struct buf *b, const char *sid, bool upgrade_ws, long ping_interval_ms,
    long ping_timeout_ms, long max_payload);

/* The JSON body of an HTTP error: {"code":N,"message":"..."}. */
bool eio_encode_error(struct buf *b, enum eio_error code);

/* The same with a message of our own (a refusal the protocol has no code
 * for, such as too many sessions from one address). */
bool eio_encode_error_text(struct buf *b, enum eio_error code, const char *message);

/* The status that goes with it: 403 for Forbidden, else 400. */
int eio_error_status(enum eio_error code);

/* Fills out with EIO_SID_LEN random base64url characters and a NUL
 * (len > EIO_SID_LEN). False if the system has no randomness to give. */
bool eio_sid_generate(char *out, size_t len);

#endif
