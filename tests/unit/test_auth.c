/* test_auth.c: unit tests of auth.h: argon2id passwords, HS256 access tokens
 * (and every way a forged token must be refused), Bearer parsing, UUIDs. */
#include <check.h>
#include <jwt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "auth.h"
#include "config.h"

#define SECRET  "0123456789abcdef0123456789abcdef-test-secret"
#define SECRET2 "another-secret-of-at-least-32-bytes-xxxxxxxx"
#define UUID    "0b9e6c1e-3f4a-4c2d-9e8f-1a2b3c4d5e6f"
#define UUID2   "ffffffff-3f4a-4c2d-9e8f-1a2b3c4d5e6f"

static struct config cfg;

static void
cfg_setup(void)
{
	memset(&cfg, 0, sizeof(cfg));
	cfg.jwt_secret = (char *)SECRET;
	cfg.jwt_issuer = (char *)"chatd";
	cfg.jwt_ttl = 3600;
}

/* ---- helpers ------------------------------------------------------------ */

/* base64url without padding; the caller frees. */
static char *
b64url(const void *data, size_t n)
{
	static const char tab[] =
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
	const unsigned char *p = data;
	char *out = malloc(n * 4 / 3 + 4), *o = out;
	size_t i;

	ck_assert_ptr_nonnull(out);
	for (i = 0; i + 2 < n; i += 3) {
		*o++ = tab[p[i] >> 2];
		*o++ = tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = tab[((p[i + 1] & 15) << 2) | (p[i + 2] >> 6)];
		*o++ = tab[p[i + 2] & 63];
	}
	if (n - i == 1) {
		*o++ = tab[p[i] >> 2];
		*o++ = tab[(p[i] & 3) << 4];
	} else if (n - i == 2) {
		*o++ = tab[p[i] >> 2];
		*o++ = tab[((p[i] & 3) << 4) | (p[i + 1] >> 4)];
		*o++ = tab[(p[i + 1] & 15) << 2];
	}
	*o = '\0';
	return out;
}

static int
b64val(char c)
{
	if (c >= 'A' && c <= 'Z') return c - 'A';
	if (c >= 'a' && c <= 'z') return c - 'a' + 26;
	if (c >= '0' && c <= '9') return c - '0' + 52;
	if (c == '-') return 62;
	if (c == '_') return 63;
	return -1;
}

/* Decodes base64url s[0..n) into a NUL-terminated malloc'd string. */
static char *
unb64url(const char *s, size_t n)
{
	char *out = malloc(n + 1), *o = out;
	unsigned acc = 0;
	int bits = 0;

	ck_assert_ptr_nonnull(out);
	for (size_t i = 0; i < n; i++) {
		int v = b64val(s[i]);

		ck_assert_int_ge(v, 0);
		acc = (acc << 6) | (unsigned)v;
		bits += 6;
		if (bits >= 8) {
			bits -= 8;
			*o++ = (char)((acc >> bits) & 0xff);
		}
	}
	*o = '\0';
	return out;
}

/* A token signed by libjwt with the given algorithm, key and claims. */
static char *
make_token(jwt_alg_t alg, const char *key, const char *claims)
{
	jwt_t *jwt = NULL;
	char *tok;

	ck_assert_int_eq(jwt_new(&jwt), 0);
	ck_assert_int_eq(jwt_add_grants_json(jwt, claims), 0);
	ck_assert_int_eq(jwt_set_alg(jwt, alg, (const unsigned char *)key, (int)strlen(key)), 0);
	tok = jwt_encode_str(jwt);
	ck_assert_ptr_nonnull(tok);
	jwt_free(jwt);
	return tok;
}

/* Claims JSON with the given parts; pass NULL to omit a claim. Times are
 * offsets from now. */
static char *
claims(const char *sub, const char *iss, const long *iat, const long *exp, const long *nbf)
{
	char *s = malloc(1024);
	long now = (long)time(NULL);
	int n = 0;

	ck_assert_ptr_nonnull(s);
	n += snprintf(s + n, 1024 - (size_t)n, "{\"x\":1");
	if (sub != NULL)
		n += snprintf(s + n, 1024 - (size_t)n, ",\"sub\":\"%s\"", sub);
	if (iss != NULL)
		n += snprintf(s + n, 1024 - (size_t)n, ",\"iss\":\"%s\"", iss);
	if (iat != NULL)
		n += snprintf(s + n, 1024 - (size_t)n, ",\"iat\":%ld", now + *iat);
	if (exp != NULL)
		n += snprintf(s + n, 1024 - (size_t)n, ",\"exp\":%ld", now + *exp);
	if (nbf != NULL)
		n += snprintf(s + n, 1024 - (size_t)n, ",\"nbf\":%ld", now + *nbf);
	(void)snprintf(s + n, 1024 - (size_t)n, "}");
	return s;
}

static const long zero = 0, hour = 3600, minus_hour = -3600;

/* Signs claims with HS256 and SECRET and reports whether auth accepts it. */
static bool
verify_claims(const char *c)
{
	char *tok = make_token(JWT_ALG_HS256, SECRET, c);
	char uid[64] = "";
	bool ok = auth_token_verify(&cfg, tok, uid, sizeof(uid));

	free(tok);
	return ok;
}

static bool
verify(const char *tok)
{
	char uid[64] = "";

	return auth_token_verify(&cfg, tok, uid, sizeof(uid));
}

/* ---- passwords ------------------------------------------------------------ */

START_TEST(password_hash_verify_round_trip)
{
	char *h = auth_password_hash("correct horse battery", 21);

	ck_assert_ptr_nonnull(h);
	ck_assert(auth_password_verify(h, "correct horse battery", 21));
	free(h);
}
END_TEST

START_TEST(password_wrong_password_fails)
{
	char *h = auth_password_hash("correct horse battery", 21);

	ck_assert_ptr_nonnull(h);
	ck_assert(!auth_password_verify(h, "correct horse batterx", 21));
	ck_assert(!auth_password_verify(h, "correct horse battery", 20));
	ck_assert(!auth_password_verify(h, "", 0));
	free(h);
}
END_TEST

START_TEST(password_hash_is_argon2id_phc_with_random_salt)
{
	char *a = auth_password_hash("samepassword", 12);
	char *b = auth_password_hash("samepassword", 12);

	ck_assert_ptr_nonnull(a);
	ck_assert_ptr_nonnull(b);
	ck_assert_msg(strncmp(a, "$argon2id$", 10) == 0, "hash: %s", a);
	ck_assert_ptr_nonnull(strstr(a, "$v=19$"));
	ck_assert_str_ne(a, b);
	ck_assert_ptr_null(strstr(a, "samepassword"));
	free(a);
	free(b);
}
END_TEST

START_TEST(password_length_is_authoritative)
{
	/* (ptr, len): bytes after a NUL still count. */
	char *h = auth_password_hash("abc\0def", 7);

	ck_assert_ptr_nonnull(h);
	ck_assert(auth_password_verify(h, "abc\0def", 7));
	ck_assert(!auth_password_verify(h, "abc", 3));
	ck_assert(!auth_password_verify(h, "abc\0xyz", 7));
	free(h);
}
END_TEST

START_TEST(password_verify_against_garbage_hash_fails)
{
	ck_assert(!auth_password_verify("", "x", 1));
	ck_assert(!auth_password_verify("not a hash", "x", 1));
	ck_assert(!auth_password_verify("$argon2i$v=19$m=16,t=2,p=1$c2FsdHNhbHQ$aGFzaA", "x", 1));
	ck_assert(!auth_password_verify("$argon2id$v=19$m=19456,t=2,p=1$$", "x", 1));
}
END_TEST

/* ---- tokens: what is accepted ---------------------------------------------- */

START_TEST(token_issue_verify_round_trip)
{
	char *tok = auth_token_issue(&cfg, UUID);
	char uid[64] = "";

	ck_assert_ptr_nonnull(tok);
	ck_assert(auth_token_verify(&cfg, tok, uid, sizeof(uid)));
	ck_assert_str_eq(uid, UUID);
	free(tok);
}
END_TEST

/* Both front ends refuse to start with a secret shorter than 32 bytes. */
START_TEST(secret_of_32_bytes_at_least)
{
	struct config c = cfg;

	c.jwt_secret = (char *)"0123456789abcdef0123456789abcde";     /* 31 */
	ck_assert_ptr_nonnull(auth_secret_problem(&c));
	c.jwt_secret = (char *)"";
	ck_assert_ptr_nonnull(auth_secret_problem(&c));
	c.jwt_secret = (char *)"0123456789abcdef0123456789abcdef";    /* 32 */
	ck_assert_ptr_null(auth_secret_problem(&c));
}
END_TEST

START_TEST(token_issued_has_hs256_iss_iat_exp)
{
	char *tok = auth_token_issue(&cfg, UUID);
	jwt_t *jwt = NULL;
	long now = (long)time(NULL), iat, exp;

	ck_assert_ptr_nonnull(tok);
	ck_assert_int_eq(jwt_decode(&jwt, tok, (const unsigned char *)SECRET,
	    (int)strlen(SECRET)), 0);
	ck_assert_int_eq(jwt_get_alg(jwt), JWT_ALG_HS256);
	ck_assert_str_eq(jwt_get_grant(jwt, "sub"), UUID);
	ck_assert_str_eq(jwt_get_grant(jwt, "iss"), "chatd");
	iat = jwt_get_grant_int(jwt, "iat");
	exp = jwt_get_grant_int(jwt, "exp");
	ck_assert_int_le(labs(iat - now), 5);
	ck_assert_int_eq(exp - iat, 3600);
	jwt_free(jwt);
	free(tok);
}
END_TEST

START_TEST(token_hand_made_with_all_claims_is_accepted)
{
	/* The positive control for every rejection below. */
	char *c = claims(UUID, "chatd", &zero, &hour, &minus_hour);
	char *tok = make_token(JWT_ALG_HS256, SECRET, c);
	char uid[64] = "";

	ck_assert(auth_token_verify(&cfg, tok, uid, sizeof(uid)));
	ck_assert_str_eq(uid, UUID);
	free(tok);
	free(c);
	c = claims(UUID, "chatd", NULL, &hour, NULL);   /* iat and nbf optional */
	ck_assert(verify_claims(c));
	free(c);
}
END_TEST

START_TEST(token_uppercase_uuid_sub_is_accepted)
{
	char *c = claims("0B9E6C1E-3F4A-4C2D-9E8F-1A2B3C4D5E6F", "chatd", &zero, &hour, NULL);

	ck_assert(verify_claims(c));
	free(c);
}
END_TEST

/* ---- tokens: what is refused --------------------------------------------- */

START_TEST(token_signed_with_another_secret_is_refused)
{
	struct config other = cfg;
	char *tok;

	other.jwt_secret = (char *)SECRET2;
	tok = auth_token_issue(&other, UUID);
	ck_assert_ptr_nonnull(tok);
	ck_assert(!verify(tok));
	free(tok);
}
END_TEST

START_TEST(token_with_alg_none_is_refused)
{
	static const char *const headers[] = {
		"{\"alg\":\"none\",\"typ\":\"JWT\"}",
		"{\"alg\":\"None\",\"typ\":\"JWT\"}",
		"{\"alg\":\"NONE\",\"typ\":\"JWT\"}",
		"{\"typ\":\"JWT\"}",
	};
	char *c = claims(UUID, "chatd", &zero, &hour, NULL);
	char *body = b64url(c, strlen(c));
	char *good = make_token(JWT_ALG_HS256, SECRET, c);
	const char *goodsig = strrchr(good, '.') + 1;

	for (size_t i = 0; i < sizeof(headers) / sizeof(headers[0]); i++) {
		char *head = b64url(headers[i], strlen(headers[i]));
		char tok[2048];

		(void)snprintf(tok, sizeof(tok), "%s.%s.", head, body);
		ck_assert_msg(!verify(tok), "accepted %s", headers[i]);
		/* with a stolen valid signature appended */
		(void)snprintf(tok, sizeof(tok), "%s.%s.%s", head, body, goodsig);
		ck_assert_msg(!verify(tok), "accepted %s with signature", headers[i]);
		/* without the trailing dot */
		(void)snprintf(tok, sizeof(tok), "%s.%s", head, body);
		ck_assert_msg(!verify(tok), "accepted %s, two parts", headers[i]);
		free(head);
	}
	free(good);
	free(body);
	free(c);
}
END_TEST

START_TEST(token_hs512_with_the_right_secret_is_refused)
{
	char *c = claims(UUID, "chatd", &zero, &hour, NULL);
	char *tok = make_token(JWT_ALG_HS512, SECRET, c);

	ck_assert(!verify(tok));
	free(tok);
	tok = make_token(JWT_ALG_HS384, SECRET, c);
	ck_assert(!verify(tok));
	free(tok);
	free(c);
}
END_TEST

START_TEST(token_expired_is_refused)
{
	long exp = -10, iat = -4000;
	char *c = claims(UUID, "chatd", &iat, &exp, NULL);

	ck_assert(!verify_claims(c));
	free(c);
	exp = 0;   /* exp == now is already expired */
	c = claims(UUID, "chatd", &iat, &exp, NULL);
	ck_assert(!verify_claims(c));
	free(c);
}
END_TEST

START_TEST(token_without_exp_is_refused)
{
	char *c = claims(UUID, "chatd", &zero, NULL, NULL);

	ck_assert(!verify_claims(c));
	free(c);
}
END_TEST

START_TEST(token_with_non_numeric_exp_is_refused)
{
	char c[256];

	(void)snprintf(c, sizeof(c), "{\"sub\":\"%s\",\"iss\":\"chatd\",\"exp\":\"%ld\"}", UUID,
	    (long)time(NULL) + 3600);
	ck_assert(!verify_claims(c));
	(void)snprintf(c, sizeof(c), "{\"sub\":\"%s\",\"iss\":\"chatd\",\"exp\":null}", UUID);
	ck_assert(!verify_claims(c));
}
END_TEST

START_TEST(token_nbf_in_the_future_is_refused)
{
	char *c = claims(UUID, "chatd", &zero, &hour, &hour);

	ck_assert(!verify_claims(c));
	free(c);
}
END_TEST

START_TEST(token_iat_in_the_future_is_refused)
{
	long iat = 600, exp = 7200;
	char *c = claims(UUID, "chatd", &iat, &exp, NULL);

	ck_assert(!verify_claims(c));
	free(c);
}
END_TEST

START_TEST(token_wrong_issuer_is_refused)
{
	static const char *const bad[] = { "evil", "", "Chatd", "chatd ", "chatdx" };

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *c = claims(UUID, bad[i], &zero, &hour, NULL);
		ck_assert_msg(!verify_claims(c), "accepted iss '%s'", bad[i]);
		free(c);
	}
}
END_TEST

START_TEST(token_missing_issuer_is_refused)
{
	char *c = claims(UUID, NULL, &zero, &hour, NULL);

	ck_assert(!verify_claims(c));
	free(c);
}
END_TEST

START_TEST(token_sub_not_a_uuid_is_refused)
{
	static const char *const bad[] = {
		"admin", "", "0b9e6c1e3f4a4c2d9e8f1a2b3c4d5e6f", UUID "0", UUID " ",
		"0b9e6c1e-3f4a-4c2d-9e8f-1a2b3c4d5e6g", "../../etc/passwd",
		"0b9e6c1e-3f4a-4c2d-9e8f-1a2b3c4d5e6", "' OR 1=1 --",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++) {
		char *c = claims(bad[i], "chatd", &zero, &hour, NULL);
		ck_assert_msg(!verify_claims(c), "accepted sub '%s'", bad[i]);
		free(c);
	}
}
END_TEST

START_TEST(token_missing_or_numeric_sub_is_refused)
{
	char *c = claims(NULL, "chatd", &zero, &hour, NULL);
	char n[256];

	ck_assert(!verify_claims(c));
	free(c);
	(void)snprintf(n, sizeof(n), "{\"sub\":12345,\"iss\":\"chatd\",\"exp\":%ld}",
	    (long)time(NULL) + 3600);
	ck_assert(!verify_claims(n));
}
END_TEST

START_TEST(token_user_id_buffer_too_small_is_refused)
{
	char *tok = auth_token_issue(&cfg, UUID);
	char uid[36];

	ck_assert_ptr_nonnull(tok);
	ck_assert(!auth_token_verify(&cfg, tok, uid, sizeof(uid)));
	free(tok);
}
END_TEST

/* Replaces the payload of a valid token, keeping header and signature. */
static char *
with_payload(const char *tok, const char *payload_json)
{
	const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
	char *p = b64url(payload_json, strlen(payload_json));
	size_t n = (size_t)(d1 - tok) + 1 + strlen(p) + strlen(d2) + 1;
	char *out = malloc(n);

	ck_assert_ptr_nonnull(out);
	(void)snprintf(out, n, "%.*s.%s%s", (int)(d1 - tok), tok, p, d2);
	free(p);
	return out;
}

START_TEST(token_tampered_payload_is_refused)
{
	char *tok = auth_token_issue(&cfg, UUID);
	const char *d1 = strchr(tok, '.'), *d2 = strrchr(tok, '.');
	char *payload = unb64url(d1 + 1, (size_t)(d2 - d1 - 1));
	char *sub = strstr(payload, UUID), *forged, *same;

	ck_assert_ptr_nonnull(sub);
	/* Re-encoding the unchanged payload keeps the token valid: the test
	 * isolates the one changed claim. */
	same = with_payload(tok, payload);
	ck_assert(verify(same));
	memcpy(sub, UUID2, strlen(UUID2));
	forged = with_payload(tok, payload);
	ck_assert(!verify(forged));
	free(forged);
	free(same);
	free(payload);
	free(tok);
}
END_TEST

START_TEST(token_extended_expiry_is_refused)
{
	char *tok = auth_token_issue(&cfg, UUID);
	char c[256], *forged;

	(void)snprintf(c, sizeof(c), "{\"sub\":\"%s\",\"iss\":\"chatd\",\"iat\":%ld,\"exp\":%ld}",
	    UUID, (long)time(NULL), (long)time(NULL) + 10L * 365 * 86400);
	forged = with_payload(tok, c);
	ck_assert(!verify(forged));
	free(forged);
	free(tok);
}
END_TEST

START_TEST(token_tampered_signature_is_refused)
{
	char *tok = auth_token_issue(&cfg, UUID);
	char *sig = strrchr(tok, '.') + 1;
	size_t slen = strlen(sig);

	ck_assert_uint_ge(slen, 40);
	for (size_t i = 0; i + 1 < slen; i += 7) {
		char was = sig[i];
		sig[i] = was == 'A' ? 'B' : 'A';
		ck_assert_msg(!verify(tok), "accepted with signature byte %zu changed", i);
		sig[i] = was;
	}
	ck_assert(verify(tok));
	free(tok);
}
END_TEST

START_TEST(token_truncated_is_refused)
{
	char *tok = auth_token_issue(&cfg, UUID);
	size_t n = strlen(tok);
	char *d2 = strrchr(tok, '.');

	ck_assert(verify(tok));
	for (size_t cut = 0; cut < n; cut += 5) {
		char *t = strndup(tok, cut);
		ck_assert_msg(!verify(t), "accepted prefix of %zu bytes", cut);
		free(t);
	}
	d2[1] = '\0';   /* header.payload. with no signature */
	ck_assert(!verify(tok));
	free(tok);
}
END_TEST

START_TEST(token_garbage_is_refused)
{
	static const char *const bad[] = {
		"", "abc", "a.b.c", "\xff\xfe\xfd", "Bearer x", "eyJhbGciOiJIUzI1NiJ9",
		"eyJhbGciOiJIUzI1NiJ9.e30.", "null", "{}", "e30.e30.e30", "e30..x",
		"a b.c d.e f", "eyJhbGciOiJIUzI1NiJ9.e30.e30.e30",
	};
	char uid[64];

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!verify(bad[i]), "accepted '%s'", bad[i]);
	ck_assert(!auth_token_verify(&cfg, NULL, uid, sizeof(uid)));
}
END_TEST

START_TEST(token_with_empty_segments_is_refused)
{
	/* libjwt 1.10.2 writes past a malloc(0) block when it base64-decodes an
	 * empty header or payload segment: auth must refuse these before libjwt
	 * sees them. The result is right either way; run under valgrind or ASan
	 * to see the out-of-bounds write. */
	static const char *const bad[] = {
		"..", "...", "....", ".e30.x", ".e30.", "eyJhbGciOiJIUzI1NiJ9..",
		"eyJhbGciOiJIUzI1NiJ9..x",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!verify(bad[i]), "accepted '%s'", bad[i]);
}
END_TEST

START_TEST(token_of_5000_bytes_is_refused)
{
	char *pad = malloc(4000), *c = malloc(4200), *tok;
	char *garbage;

	ck_assert_ptr_nonnull(pad);
	ck_assert_ptr_nonnull(c);
	memset(pad, 'p', 3999);
	pad[3999] = '\0';
	(void)snprintf(c, 4200, "{\"sub\":\"%s\",\"iss\":\"chatd\",\"exp\":%ld,\"pad\":\"%s\"}",
	    UUID, (long)time(NULL) + 3600, pad);
	/* correctly signed, otherwise valid: refused only for its size */
	tok = make_token(JWT_ALG_HS256, SECRET, c);
	ck_assert_uint_gt(strlen(tok), AUTH_TOKEN_MAX);
	ck_assert(!verify(tok));
	free(tok);
	/* just 5000 bytes of junk */
	garbage = malloc(5001);
	ck_assert_ptr_nonnull(garbage);
	memset(garbage, 'A', 5000);
	garbage[5000] = '\0';
	ck_assert(!verify(garbage));
	free(garbage);
	/* the positive control: 2 KiB of padding is fine */
	pad[2000] = '\0';
	(void)snprintf(c, 4200, "{\"sub\":\"%s\",\"iss\":\"chatd\",\"exp\":%ld,\"pad\":\"%s\"}",
	    UUID, (long)time(NULL) + 3600, pad);
	tok = make_token(JWT_ALG_HS256, SECRET, c);
	ck_assert_uint_le(strlen(tok), AUTH_TOKEN_MAX);
	ck_assert(verify(tok));
	free(tok);
	free(c);
	free(pad);
}
END_TEST

START_TEST(token_verify_with_empty_secret_refuses_everything)
{
	char *tok = auth_token_issue(&cfg, UUID);
	struct config empty = cfg;

	ck_assert_ptr_nonnull(tok);
	empty.jwt_secret = (char *)"";
	ck_assert(!auth_token_verify(&empty, tok, (char[64]){ 0 }, 64));
	free(tok);
}
END_TEST

/* ---- auth_bearer ------------------------------------------------------------ */

START_TEST(bearer_extracts_the_token)
{
	const char *h = "Bearer abc.def.ghi";

	ck_assert_ptr_eq(auth_bearer(h), h + 7);
	ck_assert_str_eq(auth_bearer("bearer x"), "x");
	ck_assert_str_eq(auth_bearer("BEARER x"), "x");
	ck_assert_str_eq(auth_bearer("Bearer    x"), "x");
}
END_TEST

START_TEST(bearer_refuses_other_schemes_and_empty_tokens)
{
	ck_assert_ptr_null(auth_bearer(NULL));
	ck_assert_ptr_null(auth_bearer(""));
	ck_assert_ptr_null(auth_bearer("Basic x"));
	ck_assert_ptr_null(auth_bearer("Basic dXNlcjpwYXNz"));
	ck_assert_ptr_null(auth_bearer("Bearer "));
	ck_assert_ptr_null(auth_bearer("Bearer    "));
	ck_assert_ptr_null(auth_bearer("Bearer"));
	ck_assert_ptr_null(auth_bearer("Bearerx"));
	ck_assert_ptr_null(auth_bearer(" Bearer x"));
	ck_assert_ptr_null(auth_bearer("Token x"));
}
END_TEST

/* ---- auth_is_uuid ------------------------------------------------------------ */

START_TEST(uuid_canonical_forms_accepted)
{
	ck_assert(auth_is_uuid(UUID));
	ck_assert(auth_is_uuid("00000000-0000-0000-0000-000000000000"));
	ck_assert(auth_is_uuid("FFFFFFFF-FFFF-FFFF-FFFF-FFFFFFFFFFFF"));
	ck_assert(auth_is_uuid("0B9E6C1E-3f4a-4C2D-9e8f-1A2B3C4D5E6F"));
}
END_TEST

START_TEST(uuid_malformed_refused)
{
	static const char *const bad[] = {
		"", "x", "0b9e6c1e3f4a4c2d9e8f1a2b3c4d5e6f",
		"0b9e6c1e-3f4a-4c2d-9e8f-1a2b3c4d5e6",      /* 35 */
		"0b9e6c1e-3f4a-4c2d-9e8f-1a2b3c4d5e6f0",    /* 37 */
		"0b9e6c1e-3f4a-4c2d-9e8f1-a2b3c4d5e6f",     /* hyphen moved */
		"0b9e6c1e_3f4a_4c2d_9e8f_1a2b3c4d5e6f",
		"{0b9e6c1e-3f4a-4c2d-9e8f-1a2b3c4d5e6f}",
		"0b9e6c1g-3f4a-4c2d-9e8f-1a2b3c4d5e6f",
		" 0b9e6c1e-3f4a-4c2d-9e8f-1a2b3c4d5e6f",
		"0b9e6c1e-3f4a-4c2d-9e8f-1a2b3c4d5e6 ",
		"------------------------------------",
	};

	for (size_t i = 0; i < sizeof(bad) / sizeof(bad[0]); i++)
		ck_assert_msg(!auth_is_uuid(bad[i]), "accepted '%s'", bad[i]);
}
END_TEST

/* ---- auth_sign_hs256 ---------------------------------------------------------- */

START_TEST(sign_hs256_verifies_with_libjwt)
{
	static const char key[] = "livekit-secret-key-of-some-length";
	char *tok = auth_sign_hs256("{\"iss\":\"APIkey\",\"sub\":\"alice\",\"nbf\":1,"
	    "\"exp\":4102444800,\"video\":{\"room\":\"r1\",\"roomJoin\":true}}", key);
	jwt_t *jwt = NULL;
	char *video;

	ck_assert_ptr_nonnull(tok);
	ck_assert_int_eq(jwt_decode(&jwt, tok, (const unsigned char *)key, (int)strlen(key)), 0);
	ck_assert_int_eq(jwt_get_alg(jwt), JWT_ALG_HS256);
	ck_assert_str_eq(jwt_get_grant(jwt, "iss"), "APIkey");
	ck_assert_str_eq(jwt_get_grant(jwt, "sub"), "alice");
	ck_assert_int_eq(jwt_get_grant_int(jwt, "exp"), 4102444800L);
	video = jwt_get_grants_json(jwt, "video");
	ck_assert_ptr_nonnull(video);
	ck_assert_ptr_nonnull(strstr(video, "\"room\""));
	ck_assert_ptr_nonnull(strstr(video, "\"r1\""));
	free(video);
	jwt_free(jwt);
	jwt = NULL;
	/* and does not verify with another key */
	ck_assert_int_ne(jwt_decode(&jwt, tok, (const unsigned char *)"wrong-key-wrong-key-wrong",
	    25), 0);
	jwt_free(jwt);
	free(tok);
}
END_TEST

START_TEST(sign_hs256_refuses_bad_claims_json)
{
	char *tok = auth_sign_hs256("{not json", "key-key-key-key-key-key-key-key!");

	ck_assert_ptr_null(tok);
}
END_TEST

/* ---- tokens verified before (auth_tokencache) ---------------------------- */

START_TEST(token_verified_again_gives_the_same_user)
{
	char *tok = auth_token_issue(&cfg, UUID);
	char uid[64] = "", small[36];

	ck_assert_ptr_nonnull(tok);
	for (int i = 0; i < 3; i++) {
		uid[0] = '\0';
		ck_assert(auth_token_verify(&cfg, tok, uid, sizeof(uid)));
		ck_assert_str_eq(uid, UUID);
	}
	ck_assert(!auth_token_verify(&cfg, tok, small, sizeof(small)));
	free(tok);
}
END_TEST

START_TEST(token_verified_before_is_refused_under_another_secret_or_issuer)
{
	char *tok = auth_token_issue(&cfg, UUID);
	struct config other = cfg;

	ck_assert_ptr_nonnull(tok);
	ck_assert(verify(tok));
	other.jwt_secret = (char *)SECRET2;
	ck_assert(!auth_token_verify(&other, tok, (char[64]){ 0 }, 64));
	other = cfg;
	other.jwt_issuer = (char *)"someone-else";
	ck_assert(!auth_token_verify(&other, tok, (char[64]){ 0 }, 64));
	ck_assert(verify(tok));
	free(tok);
}
END_TEST

START_TEST(token_verified_before_with_one_byte_changed_is_refused)
{
	char *tok = auth_token_issue(&cfg, UUID);
	size_t n;

	ck_assert_ptr_nonnull(tok);
	ck_assert(verify(tok));
	n = strlen(tok);
	tok[n - 2] = tok[n - 2] == 'A' ? 'B' : 'A';
	ck_assert(!verify(tok));
	free(tok);
}
END_TEST

START_TEST(token_verified_before_is_refused_once_expired)
{
	static const long soon = 2;
	char *c = claims(UUID, "chatd", &zero, &soon, NULL);
	char *tok = make_token(JWT_ALG_HS256, SECRET, c);
	struct timespec pause = { 3, 0 };

	ck_assert(verify(tok));
	while (nanosleep(&pause, &pause) != 0)
		;
	ck_assert(!verify(tok));
	free(tok);
	free(c);
}
END_TEST

/* ---- the suite ---------------------------------------------------------- */

static Suite *
auth_suite(void)
{
	Suite *s = suite_create("auth");
	TCase *tp = tcase_create("password");
	TCase *tt = tcase_create("token");
	TCase *to = tcase_create("other");

	tcase_set_timeout(tp, 60);
	tcase_add_test(tp, password_hash_verify_round_trip);
	tcase_add_test(tp, password_wrong_password_fails);
	tcase_add_test(tp, password_hash_is_argon2id_phc_with_random_salt);
	tcase_add_test(tp, password_length_is_authoritative);
	tcase_add_test(tp, password_verify_against_garbage_hash_fails);
	suite_add_tcase(s, tp);

	tcase_add_checked_fixture(tt, cfg_setup, NULL);
	tcase_set_timeout(tt, 30);   /* one test waits for a token to expire */
	tcase_add_test(tt, token_issue_verify_round_trip);
	tcase_add_test(tt, secret_of_32_bytes_at_least);
	tcase_add_test(tt, token_issued_has_hs256_iss_iat_exp);
	tcase_add_test(tt, token_hand_made_with_all_claims_is_accepted);
	tcase_add_test(tt, token_uppercase_uuid_sub_is_accepted);
	tcase_add_test(tt, token_signed_with_another_secret_is_refused);
	tcase_add_test(tt, token_with_alg_none_is_refused);
	tcase_add_test(tt, token_hs512_with_the_right_secret_is_refused);
	tcase_add_test(tt, token_expired_is_refused);
	tcase_add_test(tt, token_without_exp_is_refused);
	tcase_add_test(tt, token_with_non_numeric_exp_is_refused);
	tcase_add_test(tt, token_nbf_in_the_future_is_refused);
	tcase_add_test(tt, token_iat_in_the_future_is_refused);
	tcase_add_test(tt, token_wrong_issuer_is_refused);
	tcase_add_test(tt, token_missing_issuer_is_refused);
	tcase_add_test(tt, token_sub_not_a_uuid_is_refused);
	tcase_add_test(tt, token_missing_or_numeric_sub_is_refused);
	tcase_add_test(tt, token_user_id_buffer_too_small_is_refused);
	tcase_add_test(tt, token_tampered_payload_is_refused);
	tcase_add_test(tt, token_extended_expiry_is_refused);
	tcase_add_test(tt, token_tampered_signature_is_refused);
	tcase_add_test(tt, token_truncated_is_refused);
	tcase_add_test(tt, token_garbage_is_refused);
	tcase_add_test(tt, token_with_empty_segments_is_refused);
	tcase_add_test(tt, token_of_5000_bytes_is_refused);
	tcase_add_test(tt, token_verify_with_empty_secret_refuses_everything);
	tcase_add_test(tt, token_verified_again_gives_the_same_user);
	tcase_add_test(tt, token_verified_before_is_refused_under_another_secret_or_issuer);
	tcase_add_test(tt, token_verified_before_with_one_byte_changed_is_refused);
	tcase_add_test(tt, token_verified_before_is_refused_once_expired);
	suite_add_tcase(s, tt);

	tcase_add_test(to, bearer_extracts_the_token);
	tcase_add_test(to, bearer_refuses_other_schemes_and_empty_tokens);
	tcase_add_test(to, uuid_canonical_forms_accepted);
	tcase_add_test(to, uuid_malformed_refused);
	tcase_add_test(to, sign_hs256_verifies_with_libjwt);
	tcase_add_test(to, sign_hs256_refuses_bad_claims_json);
	suite_add_tcase(s, to);
	return s;
}

int
main(void)
{
	SRunner *sr = srunner_create(auth_suite());
	int failed;

	srunner_run_all(sr, CK_NORMAL);
	failed = srunner_ntests_failed(sr);
	srunner_free(sr);
	return failed != 0 ? EXIT_FAILURE : EXIT_SUCCESS;
}
