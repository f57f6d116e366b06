/* reply_status.h: how far an assistant reply got, as the code sees it.
 *
 * The database column messages.status, stream_metrics.status and the wire
 * formats keep the text names ("streaming", "complete", ...); C code tests
 * the enum. reply_status_name and reply_status_parse are the only places
 * where the two meet. */
#ifndef CHAT_REPLY_STATUS_H
#define CHAT_REPLY_STATUS_H

#include <stdbool.h>

enum reply_status {
	REPLY_STREAMING = 0,   /* still being generated */
	REPLY_COMPLETE,        /* the upstream finished it */
	REPLY_CANCELLED,       /* a user cancelled it; the partial reply stands */
	REPLY_INTERRUPTED,     /* cut short: client, worker, stall or time limit */
	REPLY_ERROR,           /* the upstream or the server failed */
};

/* The text form ("complete", ...): static, never NULL. */
const char *reply_status_name(enum reply_status s);

/* Parses the text form into *out. False (and *out untouched) if name is
 * NULL or not one of the names above. */
bool reply_status_parse(const char *name, enum reply_status *out);

/* True for the endings a client sees as `done` (complete, or cancelled with
 * its partial reply); the other endings are an `error`. */
static inline bool
reply_status_is_done(enum reply_status s)
{
	return s == REPLY_COMPLETE || s == REPLY_CANCELLED;
}

#endif
