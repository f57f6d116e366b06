/* fuzz_router.c: libFuzzer target for routing and query parsing.
 * Input: method, path and query separated by NUL bytes. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "http.h"
#include "router.h"

static int handler(struct request *r) { (void)r; return 200; }

static const struct route table[] = {
	{ "GET",    "/healthz", handler, ROUTE_PUBLIC, 0, "healthz" },
	{ "POST",   "/api/chat/realtime/sessions", handler, ROUTE_AUTH_REQUIRED, 0, "create" },
	{ "GET",    "/api/chat/realtime/sessions/{id}", handler, ROUTE_AUTH_REQUIRED, 0, "get" },
	{ "DELETE", "/api/chat/realtime/sessions/{id}", handler, ROUTE_AUTH_REQUIRED, 0, "delete" },
	{ "POST",   "/api/chat/realtime/sessions/{id}/stream", handler, ROUTE_AUTH_REQUIRED, 0, "stream" },
	{ "GET",    "/api/chat/realtime/sessions/{id}/stream", handler, ROUTE_AUTH_REQUIRED, 0, "resume" },
};

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	char *copy = malloc(size + 3), *method, *path, *query;
	const struct route *r = NULL;
	char id[HTTP_ID_MAX], allow[64], value[256];

	if (copy == NULL)
		return 0;
	memcpy(copy, data, size);
	copy[size] = copy[size + 1] = copy[size + 2] = '\0';
	method = copy;
	path = method + strlen(method) + 1;
	query = path + strlen(path) + 1;
	if ((size_t)(query - copy) > size + 2)
		query = copy + size + 2;
	if (router_match(table, sizeof(table) / sizeof(table[0]), method, path, &r, id, sizeof(id),
	    allow, sizeof(allow)) == ROUTE_FOUND) {
		/* A captured id is short and of the safe alphabet only. */
		for (const char *p = id; *p != '\0'; p++)
			if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_", *p) == NULL)
				abort();
	}
	if (http_query_get(query, "lastEventId", value, sizeof(value)) && strlen(value) >= sizeof(value))
		abort();
	(void)http_query_get(query, "limit", value, sizeof(value));
	free(copy);
	return 0;
}
