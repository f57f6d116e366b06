/* auth.h: password hashing (argon2id) and access tokens (HS256 JWT).
 *
 * The only module that includes argon2.h and jwt.h. libjwt 1.10 validates no
 * claims and accepts any algorithm it knows, so auth_token_verify checks the
 * algorithm, signature, exp, nbf, iat and iss itself. */
#ifndef CHAT_AUTH_H
#define CHAT_AUTH_H

#include <stdbool.h>
#include <stddef.h>

struct config;

#define AUTH_PASSWORD_MIN 8
#define AUTH_PASSWORD_MAX 1024
#define AUTH_TOKEN_MAX    4096
/* The shortest jwt_secret either front end starts with: 32 bytes, the
 * 256 bits of HMAC-SHA256's output (RFC 7518 3.2). */
#define AUTH_SECRET_MIN   32

/* NULL when cfg's jwt_secret may sign tokens, else what is wrong with it
 * (static words, for the start-up error). */
const char *auth_secret_problem(const struct config *cfg);

/* Hashes a password with argon2id and a random salt. Returns a PHC string the
 * caller frees, or NULL on failure. At most a few hashes run at once per
 * process, because each needs ~19 MiB. */
char *auth_password_hash(const char *password, size_t len);

/* True if password matches the PHC string. Constant-time in the hash. */
bool auth_password_verify(const char *encoded, const char *password, size_t len);

/* Issues a token for user_id (sub) with iat, exp = now + jwt_ttl, iss. Returns
 * a string the caller frees, or NULL. */
char *auth_token_issue(const struct config *cfg, const char *user_id);

/* Verifies token and copies its sub into user_id. Returns false for any bad
 * token: wrong algorithm (incl. none), bad signature, expired, not yet valid,
 * issued in the future, wrong issuer, sub not a UUID. */
bool auth_token_verify(const struct config *cfg, const char *token, char *user_id, size_t len);

/* Extracts the token from an `Authorization: Bearer <token>` value; NULL if
 * the header is missing or malformed. Borrowed from header. */
const char *auth_bearer(const char *header);

/* True if s is a canonical UUID (8-4-4-4-12 hex). */
bool auth_is_uuid(const char *s);

/* Signs an arbitrary claims object (JSON text) with HS256 and key: used for
 * LiveKit access tokens. Returns a string the caller frees, or NULL. */
char *auth_sign_hs256(const char *claims_json, const char *key);

#endif
