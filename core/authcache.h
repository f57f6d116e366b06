/* authcache.h: which users are known to exist, so that a request with a
 * valid token skips the database round trip that checks its user was not
 * deleted since the token was issued.
 *
 * Deleting a user NOTIFYs chat_user_gone (migration 006); the process's
 * listener (live.c) then forgets every entry. The cache answers only while
 * that listener is connected: a deletion it might have missed can never
 * be covered by an old entry. Entries also expire after AUTHCACHE_TTL_S.
 * Thread-safe. */
#ifndef CHAT_AUTHCACHE_H
#define CHAT_AUTHCACHE_H

#include <stdbool.h>

#define AUTHCACHE_TTL_S 60

/* True if user_id was seen to exist since the last revocation. */
bool authcache_known(const char *user_id);

/* Records that user_id exists (just checked in the database). */
void authcache_add(const char *user_id);

/* Forgets everything: a user was deleted, or deletions may have been
 * missed. listening says whether deletions are heard from now on (false:
 * the cache stays off until it is true again). */
void authcache_revoke_all(bool listening);

#endif
