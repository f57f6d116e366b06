/* model_list.h: the models clients may use, as /v1/models lists them. */
#ifndef CHAT_MODEL_LIST_H
#define CHAT_MODEL_LIST_H

#include <json-c/json.h>

/* The configured model first, then the allowed list's entries (commas or
 * spaces between them), each once, as OpenAI model objects {id, object,
 * created, owned_by}. With the upstream's GET /models answer (its JSON text),
 * only the models it lists appear, with its created and owned_by; without
 * one (NULL, or not an OpenAI list), all of them with created 0 and owned_by
 * "chatd". A new array, or NULL when out of memory. */
json_object *model_list_build(const char *configured, const char *allowed, const char *upstream_json);

/* The entry of list (an array as above) whose id is id, or NULL. Borrowed. */
json_object *model_list_find(json_object *list, const char *id);

#endif
