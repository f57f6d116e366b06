/* account.c: creating a user (account.h). */
#include "account.h"

#include <stdlib.h>

#include "auth.h"
#include "log.h"

bool
account_username_valid(const char *s, size_t n)
{
	if (n == 0 || n > ACCOUNT_USERNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
		    c != '_' && c != '-' && c != '.' && c != '@')
			return false;
	}
	return true;
}

bool
account_password_valid(size_t n)
{
	return n >= AUTH_PASSWORD_MIN && n <= AUTH_PASSWORD_MAX;
}

enum store_rc
account_create(struct store *st, const char *username, const char *email, const char *password,
    size_t len, char **user_json)
{
	char *hash;
	enum store_rc rc;

	*user_json = NULL;
	if ((hash = auth_password_hash(password, len)) == NULL) {
		log_error("account %s: password hashing failed", username);
		return STORE_ERROR;
	}
	rc = store_user_create(st, username, email, hash, user_json);
	free(hash);
	return rc;
}
