/* fcgi_conn.h: a FastCGI response written non-blocking from the loop.
 *
 * When a stream leaves its accept thread, libfcgi lets go of the
 * connection (FCGX_Free without closing) and this module writes the rest
 * of the response itself: FCGI_STDOUT records (an 8-byte header, version 1,
 * type 6, the request id and the content length big-endian, no padding;
 * at most 65,535 content bytes each), then an empty FCGI_STDOUT and an
 * FCGI_END_REQUEST (type 3, body: appStatus, protocolStatus 0), then close.
 *
 * Writes are coalesced: everything a loop turn produces for a connection
 * leaves in one write(2) at the end of the turn, so a burst of events
 * reaches nginx whole. nginx closes the connection when its client goes
 * away (it sends no FCGI_ABORT_REQUEST): EOF or an error on the socket
 * marks the client gone. Loop thread only, apart from new/free. */
#ifndef CHAT_FCGI_CONN_H
#define CHAT_FCGI_CONN_H

#include <stdbool.h>
#include <stdint.h>

struct http_io;
struct fcgi_conn;

/* Any thread: allocates an unattached connection. NULL when out of memory. */
struct fcgi_conn *fcgi_conn_new(void);

/* Any thread: frees a connection that was never adopted. NULL-safe. */
void fcgi_conn_free_unadopted(struct fcgi_conn *c);

/* Loop thread: takes fd over (made non-blocking; closed by this module
 * from now on, even on failure) for the response to request_id, and fills
 * io with its write/flush/finish. closed(ctx) runs once the connection is
 * closed and freed (after io's finish, or at once on failure, when this
 * returns false). */
bool fcgi_conn_adopt(struct fcgi_conn *c, int fd, uint16_t request_id, struct http_io *io,
    void (*closed)(void *ctx), void *ctx);

#endif
