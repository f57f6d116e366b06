/* auth_tokencache.h: access tokens this process has already verified.
 *
 * A client sends the same token with every request. Checking it again
 * (libjwt decodes two JSON documents and computes an HMAC) was about a
 * tenth of a plain request's CPU in chatd; a hit here costs a hash and a
 * comparison. An entry is the whole token and the claims it was found to
 * carry, under the secret and issuer it was verified with: a hit is the
 * same bytes under the same secret and issuer, and the caller still checks
 * the times (exp, nbf, iat). Only tokens that passed every check are put.
 * Bounded (a fixed number of slots, each holding at most one token).
 * Thread-safe, per process. */
#ifndef CHAT_AUTH_TOKENCACHE_H
#define CHAT_AUTH_TOKENCACHE_H

#include <stdbool.h>
#include <stddef.h>

struct auth_claims {
	char sub[40];     /* a UUID and its NUL */
	long exp;
	long nbf;         /* valid when has_nbf */
	long iat;         /* valid when has_iat */
	bool has_nbf;
	bool has_iat;
};

/* True, with *out filled, if token (len bytes) was put under this secret
 * and issuer (all borrowed). */
bool auth_tokencache_get(const char *secret, const char *issuer, const char *token, size_t len,
    struct auth_claims *out);

/* Records that token verified under secret and issuer with claims c (all
 * copied). A different secret or issuer than the entries' empties the
 * cache first. Out of memory: nothing is recorded. */
void auth_tokencache_put(const char *secret, const char *issuer, const char *token, size_t len,
    const struct auth_claims *c);

#endif
