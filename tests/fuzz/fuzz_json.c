/* fuzz_json.c: libFuzzer target for request-body parsing: the strict
 * grammar check and json-c behind it (json_in_parse), typed field access,
 * and the writer that escapes whatever was read back into JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "buf.h"
#include "chat_limits.h"
#include "json_in.h"
#include "json_out.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	const char *err = NULL, *s = NULL;
	json_object *obj;
	size_t len = 0;
	double d = 0;

	obj = json_in_parse((const char *)data, size, &err);
	if (obj == NULL && err == NULL)
		abort();
	if (obj != NULL && json_object_is_type(obj, json_type_object)) {
		struct buf b;

		(void)json_in_string(obj, "content", JSON_OPTIONAL, LIMIT_CONTENT_BYTES, &s, &len, &err);
		(void)json_in_double(obj, "temperature", JSON_OPTIONAL, 0, 2, &d, &err);
		buf_init(&b, 1 << 22);
		if (s != NULL) {
			json_object *again;

			if (!json_put_string(&b, s, len))
				abort();
			/* What the writer produced must parse again, to the same bytes. */
			if ((again = json_in_parse(b.data, b.len, &err)) == NULL ||
			    !json_object_is_type(again, json_type_string) ||
			    (size_t)json_object_get_string_len(again) != len ||
			    memcmp(json_object_get_string(again), s, len) != 0)
				abort();
			json_object_put(again);
		}
		buf_free(&b);
	}
	json_object_put(obj);
	return 0;
}
