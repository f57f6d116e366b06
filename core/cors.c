/* cors.c: the origin check of cors.h. */
#include "cors.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "config.h"

#define CORS_AUTHORITY_MAX 256

/* host[:port] of an origin "scheme://host[:port]" into out. */
static bool
origin_authority(const char *origin, char *out, size_t len)
{
	const char *p = strstr(origin, "://");
	size_t n;

	if (p == NULL)
		return false;
	p += 3;
	n = strcspn(p, "/?#");
	if (n == 0 || n >= len)
		return false;
	memcpy(out, p, n);
	out[n] = '\0';
	return true;
}

/* Compares authorities case-insensitively; when one has no port, only
 * the host names (nginx passes Host as $host, without the port). */
static bool
same_host(const char *a, const char *b)
{
	const char *pa = strrchr(a, ':'), *pb = strrchr(b, ':');
	size_t na, nb;

	if (pa != NULL && strchr(pa, ']') != NULL)
		pa = NULL;   /* "[::1]" without port */
	if (pb != NULL && strchr(pb, ']') != NULL)
		pb = NULL;
	if (pa != NULL && pb != NULL)
		return strcasecmp(a, b) == 0;
	na = pa != NULL ? (size_t)(pa - a) : strlen(a);
	nb = pb != NULL ? (size_t)(pb - b) : strlen(b);
	return na == nb && strncasecmp(a, b, na) == 0;
}

bool
cors_origin_allowed(const struct config *cfg, const char *origin, const char *host)
{
	char auth[CORS_AUTHORITY_MAX];

	if (origin == NULL)
		return false;
	/* config_load refuses `*` outside dev_mode; checked again here so a
	 * hand-built config cannot open the service to every page. */
	if (config_list_has(cfg->cors_origins, origin) ||
	    (cfg->dev_mode && config_list_has(cfg->cors_origins, "*")))
		return true;
	return host != NULL && host[0] != '\0' && origin_authority(origin, auth, sizeof(auth)) &&
	    same_host(auth, host);
}
