/* api_auth.c: register, login and the current user (SPEC §2). */
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "config.h"
#include "handlers.h"
#include "json_in.h"
#include "json_out.h"
#include "log.h"
#include "store.h"

#define USERNAME_MAX 64
#define EMAIL_MAX    254

static bool
username_ok(const char *s, size_t n)
{
	if (n == 0 || n > USERNAME_MAX)
		return false;
	for (size_t i = 0; i < n; i++) {
		unsigned char c = (unsigned char)s[i];
		if (!(c >= 'a' && c <= 'z') && !(c >= 'A' && c <= 'Z') && !(c >= '0' && c <= '9') &&
		    c != '_' && c != '-' && c != '.' && c != '@')
			return false;
	}
	return true;
}

int
api_auth_register(struct request *r)
{
	json_object *body;
	const char *username, *password, *email, *err;
	size_t ulen, plen, elen;
	char *hash = NULL, *user = NULL;
	int status;

	if ((body = handler_body_object(r, &status)) == NULL)
		return status;
	if (!json_in_string(body, "username", JSON_REQUIRED, USERNAME_MAX, &username, &ulen, &err)) {
		status = handler_bad_field(r, "username", err);
		goto done;
	}
	if (!username_ok(username, ulen)) {
		status = handler_bad_field(r, "username", "may hold only letters, digits and _-.@");
		goto done;
	}
	if (!json_in_string(body, "password", JSON_REQUIRED, AUTH_PASSWORD_MAX, &password, &plen, &err)) {
		status = handler_bad_field(r, "password", err);
		goto done;
	}
	if (plen < AUTH_PASSWORD_MIN) {
		status = handler_bad_field(r, "password", "must be at least 8 characters");
		goto done;
	}
	if (!json_in_string(body, "email", JSON_OPTIONAL, EMAIL_MAX, &email, &elen, &err)) {
		status = handler_bad_field(r, "email", err);
		goto done;
	}
	if (email != NULL && (elen == 0 || strchr(email, '@') == NULL)) {
		status = handler_bad_field(r, "email", "is not an email address");
		goto done;
	}
	if ((hash = auth_password_hash(password, plen)) == NULL) {
		status = http_error(r, 500, "Internal server error");
		goto done;
	}
	enum store_rc rc = store_user_create(r->store, username, email, hash, &user);
	if (rc == STORE_CONFLICT)
		status = http_error(r, 409, "Username already taken");
	else if (rc != STORE_OK)
		status = handler_store_error(r, rc, "Not found");
	else
		status = http_reply_raw(r, 201, "application/json", user, strlen(user));
done:
	free(hash);
	free(user);
	json_object_put(body);
	return status;
}

int
api_auth_login(struct request *r)
{
	json_object *body, *resp;
	const char *username, *password, *err;
	size_t ulen, plen;
	char *user_id = NULL, *hash = NULL, *token = NULL;
	enum store_rc rc;
	int status;

	if ((body = handler_body_object(r, &status)) == NULL)
		return status;
	if (!json_in_string(body, "username", JSON_REQUIRED, 256, &username, &ulen, &err)) {
		status = handler_bad_field(r, "username", err);
		goto done;
	}
	if (!json_in_string(body, "password", JSON_REQUIRED, AUTH_PASSWORD_MAX, &password, &plen, &err)) {
		status = handler_bad_field(r, "password", err);
		goto done;
	}
	rc = store_user_credentials(r->store, username, &user_id, &hash);
	if (rc == STORE_NOT_FOUND) {
		/* Hash anyway so timing does not reveal which usernames exist. */
		char *dummy = auth_password_hash(password, plen);
		free(dummy);
		status = http_error(r, 401, "Invalid username or password");
		goto done;
	}
	if (rc != STORE_OK) {
		status = handler_store_error(r, rc, "Not found");
		goto done;
	}
	if (!auth_password_verify(hash, password, plen)) {
		log_info("login failed for user %s", user_id);
		status = http_error(r, 401, "Invalid username or password");
		goto done;
	}
	if ((token = auth_token_issue(r->cfg, user_id)) == NULL) {
		status = http_error(r, 500, "Internal server error");
		goto done;
	}
	if ((resp = json_object_new_object()) == NULL) {
		status = http_error(r, 500, "Internal server error");
		goto done;
	}
	json_object_object_add(resp, "access_token", json_object_new_string(token));
	json_object_object_add(resp, "token_type", json_object_new_string("Bearer"));
	json_object_object_add(resp, "expires_in", json_object_new_int(r->cfg->jwt_ttl));
	json_object_object_add(resp, "user_id", json_object_new_string(user_id));
	status = http_reply_json(r, 200, resp);
done:
	free(user_id);
	free(hash);
	free(token);
	json_object_put(body);
	return status;
}

int
api_auth_me(struct request *r)
{
	char *user = NULL;
	enum store_rc rc = store_user_get(r->store, r->user_id, &user);
	int status;

	/* A valid token of a deleted user is no longer a credential. */
	if (rc == STORE_NOT_FOUND)
		return http_error(r, 401, "Unauthorized");
	if (rc != STORE_OK)
		return handler_store_error(r, rc, "Not found");
	status = http_reply_raw(r, 200, "application/json", user, strlen(user));
	free(user);
	return status;
}
