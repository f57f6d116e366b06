/* api_auth.c: register, login and the current user (SPEC §2). */
#include <stdlib.h>
#include <string.h>

#include "account.h"
#include "auth.h"
#include "config.h"
#include "handlers.h"
#include "json_in.h"
#include "json_out.h"
#include "log.h"
#include "request.h"
#include "store.h"

#define EMAIL_MAX    254

int
api_auth_register(struct request *r)
{
	json_object *body;
	const char *username, *password, *email, *err;
	size_t ulen, plen, elen;
	char *user = NULL;
	int status;

	/* Closed: users are made by the administrator (chatd --create-user). */
	if (strcmp(r->cfg->registration, "closed") == 0)
		return http_error(r, 403, REQUEST_MSG_REGISTRATION_CLOSED);
	if ((body = handler_body_object(r, &status)) == NULL)
		return status;
	if (!json_in_string(body, "username", JSON_REQUIRED, ACCOUNT_USERNAME_MAX, &username, &ulen, &err)) {
		status = handler_bad_field(r, "username", err);
		goto done;
	}
	if (!account_username_valid(username, ulen)) {
		status = handler_bad_field(r, "username", ACCOUNT_MSG_USERNAME);
		goto done;
	}
	if (!json_in_string(body, "password", JSON_REQUIRED, AUTH_PASSWORD_MAX, &password, &plen, &err)) {
		status = handler_bad_field(r, "password", err);
		goto done;
	}
	if (!account_password_valid(plen)) {
		status = handler_bad_field(r, "password", ACCOUNT_MSG_PASSWORD);
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
	enum store_rc rc = account_create(r->store, username, email, password, plen, &user);
	if (rc == STORE_CONFLICT)
		status = http_error(r, 409, "Username already taken");
	else if (rc != STORE_OK)
		status = handler_store_error(r, rc, "Not found");
	else
		status = http_reply_json_text(r, 201, user);
done:
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
	status = http_reply_json_text(r, 200, user);
	free(user);
	return status;
}
