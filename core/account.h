/* account.h: creating a user, the one path of POST /api/auth/register and
 * of the administrator's `chatd --create-user`: the username's charset, the
 * password's length, argon2id (auth.h) and the store. */
#ifndef CHAT_ACCOUNT_H
#define CHAT_ACCOUNT_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

#define ACCOUNT_USERNAME_MAX 64
#define ACCOUNT_MSG_USERNAME "may hold only letters, digits and _-.@"
#define ACCOUNT_MSG_PASSWORD "must be at least 8 characters"

/* True if s (n bytes) is a username: 1 to ACCOUNT_USERNAME_MAX letters,
 * digits and _-.@ (ACCOUNT_MSG_USERNAME says so to a client). */
bool account_username_valid(const char *s, size_t n);

/* True if a password of n bytes is long enough (AUTH_PASSWORD_MIN) and
 * not too long (AUTH_PASSWORD_MAX). */
bool account_password_valid(size_t n);

/* Hashes password (len bytes) with argon2id and stores the user. Checks
 * nothing: validate the fields first. STORE_OK with *user_json
 * {"id","username","email","created_at"} (the caller frees it);
 * STORE_CONFLICT when the username is taken; STORE_ERROR when hashing
 * failed; the store's other failures. Everything else is borrowed; email
 * may be NULL. */
enum store_rc account_create(struct store *st, const char *username, const char *email,
    const char *password, size_t len, char **user_json);

#endif
