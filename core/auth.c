/* auth.c: argon2id password hashes and HS256 access tokens. */
#include "auth.h"

#include <argon2.h>
#include <errno.h>
#include <jwt.h>
#include <pthread.h>
#include <semaphore.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <time.h>

#include "auth_tokencache.h"
#include "chat_limits.h"
#include "config.h"
#include "log.h"

/* OWASP's argon2id minimum: 19 MiB, 2 passes, 1 lane. */
#define ARGON2_T_COST    2
#define ARGON2_M_COST    19456
#define ARGON2_LANES     1
#define ARGON2_SALT_LEN  16
#define ARGON2_HASH_LEN  32
#define HASHES_AT_ONCE   4
#define CLOCK_LEEWAY_S   5

static sem_t hash_slots;
static pthread_once_t hash_slots_once = PTHREAD_ONCE_INIT;

static void
hash_slots_init(void)
{
	if (sem_init(&hash_slots, 0, HASHES_AT_ONCE) != 0)
		abort();
}

static void
hash_slot_acquire(void)
{
	pthread_once(&hash_slots_once, hash_slots_init);
	while (sem_wait(&hash_slots) != 0)
		;  /* EINTR */
}

char *
auth_password_hash(const char *password, size_t len)
{
	unsigned char salt[ARGON2_SALT_LEN];
	size_t enclen;
	char *encoded;
	int rc;

	if (getrandom(salt, sizeof(salt), 0) != (ssize_t)sizeof(salt)) {
		log_error("getrandom failed");
		return NULL;
	}
	enclen = argon2_encodedlen(ARGON2_T_COST, ARGON2_M_COST, ARGON2_LANES,
	    ARGON2_SALT_LEN, ARGON2_HASH_LEN, Argon2_id);
	if ((encoded = malloc(enclen)) == NULL)
		return NULL;
	hash_slot_acquire();
	rc = argon2id_hash_encoded(ARGON2_T_COST, ARGON2_M_COST, ARGON2_LANES, password, len,
	    salt, sizeof(salt), ARGON2_HASH_LEN, encoded, enclen);
	sem_post(&hash_slots);
	if (rc != ARGON2_OK) {
		log_error("argon2id_hash_encoded: %s", argon2_error_message(rc));
		free(encoded);
		return NULL;
	}
	return encoded;
}

bool
auth_password_verify(const char *encoded, const char *password, size_t len)
{
	int rc;

	hash_slot_acquire();
	rc = argon2id_verify(encoded, password, len);
	sem_post(&hash_slots);
	return rc == ARGON2_OK;
}

const char *
auth_secret_problem(const struct config *cfg)
{
	if (strlen(cfg->jwt_secret) < AUTH_SECRET_MIN)
		return "jwt_secret (or jwt_secret_file) must hold at least " LIMIT_TEXT(AUTH_SECRET_MIN) " bytes";
	return NULL;
}

char *
auth_token_issue(const struct config *cfg, const char *user_id)
{
	jwt_t *jwt = NULL;
	char *token = NULL;
	time_t now = time(NULL);

	if (jwt_new(&jwt) != 0)
		return NULL;
	if (jwt_add_grant(jwt, "sub", user_id) != 0 ||
	    jwt_add_grant(jwt, "iss", cfg->jwt_issuer) != 0 ||
	    jwt_add_grant_int(jwt, "iat", (long)now) != 0 ||
	    jwt_add_grant_int(jwt, "exp", (long)now + cfg->jwt_ttl) != 0 ||
	    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)cfg->jwt_secret,
	        (int)strlen(cfg->jwt_secret)) != 0)
		goto done;
	token = jwt_encode_str(jwt);
done:
	jwt_free(jwt);
	return token;
}

/* Reads an integer claim; false if absent. */
static bool
claim_int(jwt_t *jwt, const char *name, long *out)
{
	errno = 0;
	*out = jwt_get_grant_int(jwt, name);
	return errno == 0;
}

/* Three non-empty base64url segments: libjwt 1.10 writes out of bounds on
 * an empty segment, so nothing else reaches jwt_decode. */
static bool
token_shape_ok(const char *token)
{
	int segments = 1;
	size_t seglen = 0;

	for (const char *p = token; *p != '\0'; p++) {
		char c = *p;
		if (c == '.') {
			if (seglen == 0)
				return false;
			segments++;
			seglen = 0;
		} else if ((c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
		    c == '-' || c == '_')
			seglen++;
		else
			return false;
	}
	return segments == 3 && seglen > 0;
}

/* Decodes token, checks its signature, algorithm, issuer and subject, and
 * reads its claims into *c (times not checked). */
static bool
token_decode(const struct config *cfg, const char *token, struct auth_claims *c)
{
	jwt_t *jwt = NULL;
	const char *sub, *iss;
	bool ok = false;

	if (!token_shape_ok(token))
		return false;
	/* A NULL key would make libjwt skip the signature check: never pass one. */
	if (jwt_decode(&jwt, token, (const unsigned char *)cfg->jwt_secret,
	    (int)strlen(cfg->jwt_secret)) != 0)
		return false;
	if (jwt_get_alg(jwt) != JWT_ALG_HS256)
		goto done;
	if (!claim_int(jwt, "exp", &c->exp))
		goto done;
	c->has_nbf = claim_int(jwt, "nbf", &c->nbf);
	c->has_iat = claim_int(jwt, "iat", &c->iat);
	if ((iss = jwt_get_grant(jwt, "iss")) == NULL || strcmp(iss, cfg->jwt_issuer) != 0)
		goto done;
	if ((sub = jwt_get_grant(jwt, "sub")) == NULL || !auth_is_uuid(sub))
		goto done;
	memcpy(c->sub, sub, strlen(sub) + 1);   /* a UUID: fits */
	ok = true;
done:
	jwt_free(jwt);
	return ok;
}

/* The claims' times: not expired, already valid, not issued in the future. */
static bool
claims_current(const struct auth_claims *c, time_t now)
{
	return c->exp > now && !(c->has_nbf && c->nbf > now + CLOCK_LEEWAY_S) &&
	    !(c->has_iat && c->iat > now + CLOCK_LEEWAY_S);
}

bool
auth_token_verify(const struct config *cfg, const char *token, char *user_id, size_t len)
{
	struct auth_claims c;
	time_t now = time(NULL);
	size_t tlen;

	if (token == NULL || (tlen = strlen(token)) > AUTH_TOKEN_MAX || cfg->jwt_secret[0] == '\0')
		return false;
	/* A token seen before under this secret skips the decoding and the
	 * HMAC; its times are checked every time. */
	if (!auth_tokencache_get(cfg->jwt_secret, cfg->jwt_issuer, token, tlen, &c)) {
		if (!token_decode(cfg, token, &c) || !claims_current(&c, now))
			return false;
		auth_tokencache_put(cfg->jwt_secret, cfg->jwt_issuer, token, tlen, &c);
	}
	if (!claims_current(&c, now) || strlen(c.sub) >= len)
		return false;
	memcpy(user_id, c.sub, strlen(c.sub) + 1);
	return true;
}

const char *
auth_bearer(const char *header)
{
	if (header == NULL || strncasecmp(header, "Bearer ", 7) != 0)
		return NULL;
	header += 7;
	while (*header == ' ')
		header++;
	return *header != '\0' ? header : NULL;
}

bool
auth_is_uuid(const char *s)
{
	static const char shape[] = "xxxxxxxx-xxxx-xxxx-xxxx-xxxxxxxxxxxx";

	for (size_t i = 0; i < sizeof(shape) - 1; i++) {
		char c = s[i];
		if (shape[i] == '-') {
			if (c != '-')
				return false;
		} else if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')))
			return false;
	}
	return s[sizeof(shape) - 1] == '\0';
}

char *
auth_sign_hs256(const char *claims_json, const char *key)
{
	jwt_t *jwt = NULL;
	char *token = NULL;

	if (jwt_new(&jwt) != 0)
		return NULL;
	if (jwt_add_grants_json(jwt, claims_json) == 0 &&
	    jwt_set_alg(jwt, JWT_ALG_HS256, (const unsigned char *)key, (int)strlen(key)) == 0)
		token = jwt_encode_str(jwt);
	jwt_free(jwt);
	return token;
}
