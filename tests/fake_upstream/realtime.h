/* realtime.h: POST /v1/realtime/client_secrets and /v1/realtime/sessions: minted ephemeral keys. */
#ifndef FAKE_UPSTREAM_REALTIME_H
#define FAKE_UPSTREAM_REALTIME_H

#include <stdbool.h>

struct conn;

/* Answer POST /v1/realtime/client_secrets (GA) and POST
 * /v1/realtime/sessions (beta). Return false if c must be destroyed. */
bool	realtime_handle_client_secrets(struct conn *c);
bool	realtime_handle_sessions(struct conn *c);

/* Whether the request carries "Bearer ek_..." that this process minted and
 * that has not expired. */
bool	realtime_auth_ok(const struct conn *c);

/* Forgets every minted key (at exit). */
void	realtime_free(void);

#endif
