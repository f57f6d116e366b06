/* setup.h: the API calls a load run needs before its measured window:
 * users, their access tokens, and one chat session per stream. Every step
 * runs many requests at once (curl multi), each from its user's own
 * address, so that a run of ten thousand streams is set up in seconds
 * rather than minutes. */
#ifndef LOAD_SETUP_H
#define LOAD_SETUP_H

#include <stdbool.h>
#include <stddef.h>

#include "client.h"

/* Registrations and logins at most this many at a time: each costs chatd
 * an argon2id hash (about 19 MiB and 50 ms of one core), so more than a
 * few at once buys no speed on a small machine and leaves chatd's heap
 * swollen for the measured run. */
#define SETUP_AUTH_CONC_MAX 4

/* Registers n users (an existing user is fine) and logs each in, up to
 * conc requests at a time (capped at SETUP_AUTH_CONC_MAX); user i from
 * sources[i] (sources NULL: the default address). On success tokens[i] is
 * user i's access token, owned by the caller (free). Logs the first reason
 * to stderr and returns false on failure. */
bool setup_users(const struct client *c, char **names, char **sources, int n,
    const char *password, int conc, char **tokens);

/* Creates n chat sessions; session i belongs to the user whose token is
 * tokens[i] and is created from sources[i] (sources NULL: the default
 * address), up to conc requests at a time. On success (*ids)[0..n-1] are
 * the session ids; the caller frees each and the array (setup_ids_free).
 * Logs the reason to stderr and returns false on failure (nothing is
 * returned then). */
bool setup_sessions(const struct client *c, char **tokens, char **sources, size_t n, int conc,
    char ***ids);

/* Frees n ids and their array. NULL-safe. */
void setup_ids_free(char **ids, size_t n);

#endif
