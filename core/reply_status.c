/* reply_status.c: the text names of enum reply_status. */
#include "reply_status.h"

#include <stddef.h>
#include <string.h>

/* Indexed by the enum; the SQL (store.c, migrations/) uses the same words. */
static const char *const names[] = {
	[REPLY_STREAMING]   = "streaming",
	[REPLY_COMPLETE]    = "complete",
	[REPLY_CANCELLED]   = "cancelled",
	[REPLY_INTERRUPTED] = "interrupted",
	[REPLY_ERROR]       = "error",
};

const char *
reply_status_name(enum reply_status s)
{
	if ((size_t)s >= sizeof(names) / sizeof(names[0]))
		return "error";
	return names[s];
}

bool
reply_status_parse(const char *name, enum reply_status *out)
{
	if (name == NULL)
		return false;
	for (size_t i = 0; i < sizeof(names) / sizeof(names[0]); i++)
		if (strcmp(names[i], name) == 0) {
			*out = (enum reply_status)i;
			return true;
		}
	return false;
}
