/* conversation.c: validation of client conversations; session titles. */
#include "conversation.h"

#include <stdbool.h>
#include <stdio.h>
#include <string.h>

#include "buf.h"
#include "chat_limits.h"

#define TITLE_CHARS 60

/* The text of a message's content: a string, or the "text" parts joined. */
static bool
content_text(json_object *content, struct buf *out)
{
	if (json_object_is_type(content, json_type_string))
		return buf_append(out, json_object_get_string(content),
		    (size_t)json_object_get_string_len(content));
	if (!json_object_is_type(content, json_type_array))
		return false;
	for (size_t i = 0; i < json_object_array_length(content); i++) {
		json_object *part = json_object_array_get_idx(content, i), *type, *text;

		if (!json_object_is_type(part, json_type_object) ||
		    !json_object_object_get_ex(part, "type", &type) ||
		    !json_object_object_get_ex(part, "text", &text) ||
		    !json_object_is_type(type, json_type_string) ||
		    strcmp(json_object_get_string(type), "text") != 0 ||
		    !json_object_is_type(text, json_type_string))
			return false;
		if ((out->len > 0 && !buf_appendc(out, '\n')) ||
		    !buf_append(out, json_object_get_string(text), (size_t)json_object_get_string_len(text)))
			return false;
	}
	return true;
}

static bool
role_known(const char *role)
{
	return strcmp(role, "system") == 0 || strcmp(role, "user") == 0 ||
	    strcmp(role, "assistant") == 0 || strcmp(role, "developer") == 0;
}

enum conversation_rc
conversation_clean(json_object *arr, const char *field, json_object **cleaned, char *err,
    size_t errlen)
{
	enum conversation_rc rc = CONVERSATION_INVALID;
	json_object *out = NULL;
	struct buf text;

	buf_init(&text, LIMIT_CONTENT_BYTES);
	if (arr == NULL || !json_object_is_type(arr, json_type_array)) {
		(void)snprintf(err, errlen, "%s must be an array", field);
		goto failed;
	}
	if (json_object_array_length(arr) > CONVERSATION_MESSAGES_MAX) {
		(void)snprintf(err, errlen, "%s has too many messages (%d at most)", field,
		    CONVERSATION_MESSAGES_MAX);
		goto failed;
	}
	if ((out = json_object_new_array()) == NULL) {
		(void)snprintf(err, errlen, "Out of memory");
		rc = CONVERSATION_NO_MEMORY;
		goto failed;
	}
	for (size_t i = 0; i < json_object_array_length(arr); i++) {
		json_object *m = json_object_array_get_idx(arr, i), *role, *content, *clean;
		const char *rs;

		if (!json_object_is_type(m, json_type_object) ||
		    !json_object_object_get_ex(m, "role", &role) ||
		    !json_object_is_type(role, json_type_string)) {
			(void)snprintf(err, errlen, "%s[%zu] needs a string role", field, i);
			goto failed;
		}
		rs = json_object_get_string(role);
		if (!role_known(rs)) {
			(void)snprintf(err, errlen,
			    "%s[%zu] role must be system, developer, user or assistant", field, i);
			goto failed;
		}
		buf_reset(&text);
		if (!json_object_object_get_ex(m, "content", &content) || !content_text(content, &text) ||
		    memchr(text.data != NULL ? text.data : "", '\0', text.len) != NULL) {
			(void)snprintf(err, errlen, "%s[%zu] needs a text content", field, i);
			goto failed;
		}
		if ((clean = json_object_new_object()) == NULL) {
			(void)snprintf(err, errlen, "Out of memory");
			rc = CONVERSATION_NO_MEMORY;
			goto failed;
		}
		json_object_object_add(clean, "role", json_object_new_string(rs));
		json_object_object_add(clean, "content",
		    json_object_new_string_len(text.data != NULL ? text.data : "", (int)text.len));
		json_object_array_add(out, clean);
	}
	buf_free(&text);
	*cleaned = out;
	return CONVERSATION_OK;
failed:
	buf_free(&text);
	json_object_put(out);
	*cleaned = NULL;
	return rc;
}

void
conversation_title(const char *message, char *out, size_t len)
{
	size_t n = 0, chars = 0;

	while (message[n] != '\0' && n + 4 < len && chars < TITLE_CHARS) {
		size_t k = 1;

		while ((message[n + k] & 0xc0) == 0x80)
			k++;
		n += k;
		chars++;
	}
	memcpy(out, message, n);
	out[n] = '\0';
	for (size_t i = 0; i < n; i++)
		if (out[i] == '\n' || out[i] == '\r' || out[i] == '\t')
			out[i] = ' ';
}
