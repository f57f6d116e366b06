/* fuzz_json.c: libFuzzer target for request-body parsing: the strict
 * grammar check, json-c behind it, typed field access, and the writer that
 * escapes whatever was read back into JSON. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <json-c/json.h>

#include "buf.h"
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
	bool valid = json_in_valid((const char *)data, size, JSON_IN_MAX_DEPTH);

	obj = json_in_parse((const char *)data, size, &err);
	/* json_in_parse accepts nothing the strict check refuses. */
	if (obj != NULL && !valid)
		abort();
	if (obj == NULL && err == NULL)
		abort();
	if (obj != NULL && json_object_is_type(obj, json_type_object)) {
		struct buf b;

		(void)json_in_string(obj, "content", JSON_OPTIONAL, 100000, &s, &len, &err);
		(void)json_in_double(obj, "temperature", JSON_OPTIONAL, 0, 2, &d, &err);
		buf_init(&b, 1 << 22);
		if (s != NULL) {
			if (!json_put_string(&b, s, len))
				abort();
			/* What the writer produced must be valid JSON again. */
			if (!json_in_valid(b.data, b.len, 4))
				abort();
		}
		buf_free(&b);
	}
	json_object_put(obj);
	return 0;
}
