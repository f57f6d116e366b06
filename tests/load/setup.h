/* setup.h: the API calls a load run needs before its measured window:
 * a user, its access token, and one chat session per stream. */
#ifndef LOAD_SETUP_H
#define LOAD_SETUP_H

#include <stdbool.h>
#include <stddef.h>

#include "client.h"

/* Registers user (an existing user is fine) and logs in. On success *token
 * is the access token, owned by the caller (free). Logs the reason to
 * stderr and returns false on failure. */
bool setup_login(const struct client *c, const char *user, const char *password, char **token);

/* Creates n chat sessions for token, up to conc requests at a time. On
 * success (*ids)[0..n-1] are the session ids; the caller frees each and the
 * array (setup_ids_free). Logs the reason to stderr and returns false on
 * failure (nothing is returned then). */
bool setup_sessions(const struct client *c, const char *token, size_t n, int conc, char ***ids);

/* Frees n ids and their array. NULL-safe. */
void setup_ids_free(char **ids, size_t n);

#endif
