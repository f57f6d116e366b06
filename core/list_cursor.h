/* list_cursor.h: the session list's opaque keyset cursor: the position
 * after the last session of a page, as "<updated_at in µs>_<session id>".
 * Clients pass it back unchanged; nothing else reads its parts. */
#ifndef CHAT_LIST_CURSOR_H
#define CHAT_LIST_CURSOR_H

#include <stdbool.h>
#include <stddef.h>

#define LIST_CURSOR_MAX    64                      /* with its NUL */
#define LIST_CURSOR_END_US 253402300800000000LL    /* year 10000: after every row */

/* Writes the cursor of (us, id) into out. False if it does not fit or
 * the parts are not a position (us out of range, id not a UUID). */
bool list_cursor_format(char *out, size_t len, long long us, const char *id);

/* Reads a cursor made by list_cursor_format. False if s is not one. */
bool list_cursor_parse(const char *s, long long *us, char id[37]);

#endif
