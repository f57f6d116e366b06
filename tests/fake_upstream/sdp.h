/* sdp.h: POST /v1/realtime/calls and POST /v1/realtime: an SDP answer mirroring the offer. */
#ifndef FAKE_UPSTREAM_SDP_H
#define FAKE_UPSTREAM_SDP_H

#include <stdbool.h>

struct conn;

/* Answer an SDP offer with 201 and an answer; the GA form (calls) adds a
 * Location header. Return false if c must be destroyed. */
bool	sdp_handle_calls(struct conn *c);
bool	sdp_handle_beta(struct conn *c);

#endif
