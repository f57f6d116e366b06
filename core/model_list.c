/* model_list.c: the models clients may use (model_list.h): the
 * configuration says which, the upstream's own list which of them exist. */
#include "model_list.h"

#include <stdbool.h>
#include <string.h>

#include "chat_limits.h"

/* The upstream's entry for the n bytes at name, or NULL. */
static json_object *
upstream_entry(json_object *data, const char *name, size_t n)
{
	size_t count = json_object_array_length(data);

	for (size_t i = 0; i < count; i++) {
		json_object *m = json_object_array_get_idx(data, i), *id;
		const char *s;

		if (!json_object_is_type(m, json_type_object) || !json_object_object_get_ex(m, "id", &id) ||
		    !json_object_is_type(id, json_type_string))
			continue;
		s = json_object_get_string(id);
		if (strlen(s) == n && memcmp(s, name, n) == 0)
			return m;
	}
	return NULL;
}

static bool
listed(json_object *out, const char *name, size_t n)
{
	return upstream_entry(out, name, n) != NULL;
}

/* Appends the model named by the n bytes at name, unless out has it or the
 * upstream's data (when known) lacks it. False when out of memory. */
static bool
add_model(json_object *out, json_object *data, const char *name, size_t n)
{
	json_object *m, *src = NULL, *v;
	int64_t created = 0;
	const char *owner = "chatd";

	if (n == 0 || n > LIMIT_MODEL_BYTES || listed(out, name, n))
		return true;
	if (data != NULL && (src = upstream_entry(data, name, n)) == NULL)
		return true;
	if (src != NULL) {
		if (json_object_object_get_ex(src, "created", &v) && json_object_is_type(v, json_type_int))
			created = json_object_get_int64(v);
		if (json_object_object_get_ex(src, "owned_by", &v) && json_object_is_type(v, json_type_string))
			owner = json_object_get_string(v);
	}
	if ((m = json_object_new_object()) == NULL)
		return false;
	if (json_object_object_add(m, "id", json_object_new_string_len(name, (int)n)) != 0 ||
	    json_object_object_add(m, "object", json_object_new_string("model")) != 0 ||
	    json_object_object_add(m, "created", json_object_new_int64(created)) != 0 ||
	    json_object_object_add(m, "owned_by", json_object_new_string(owner)) != 0 ||
	    json_object_array_add(out, m) != 0) {
		json_object_put(m);
		return false;
	}
	return true;
}

json_object *
model_list_build(const char *configured, const char *allowed, const char *upstream_json)
{
	json_object *out, *up = NULL, *data = NULL;
	const char *p = allowed != NULL ? allowed : "";
	bool ok;

	if ((out = json_object_new_array()) == NULL)
		return NULL;
	if (upstream_json != NULL && (up = json_tokener_parse(upstream_json)) != NULL &&
	    json_object_is_type(up, json_type_object) && json_object_object_get_ex(up, "data", &data) &&
	    !json_object_is_type(data, json_type_array))
		data = NULL;
	ok = configured == NULL || add_model(out, data, configured, strlen(configured));
	while (ok && *p != '\0') {
		size_t n = strcspn(p, ", ");

		ok = add_model(out, data, p, n);
		p += n;
		p += strspn(p, ", ");
	}
	json_object_put(up);
	if (!ok) {
		json_object_put(out);
		return NULL;
	}
	return out;
}

json_object *
model_list_find(json_object *list, const char *id)
{
	return list != NULL && id != NULL ? upstream_entry(list, id, strlen(id)) : NULL;
}
