/* spool.h: reply endings handed on across a process's exit.
 *
 * A process that must exit while PostgreSQL is away still holds the ends of
 * replies its clients received whole (reply_retry.h). Rather than dropping
 * them, it writes each to a file of its own in the spool directory (the
 * `spool_dir` setting). The sweep (sweep_run) stores them once the database
 * answers, before it interrupts the replies of gone owners, so such a reply
 * ends stored whole and `complete`, not cut short. A file is written under a
 * temporary name and renamed, so a reader never sees half of one; storing
 * one twice does nothing (store_reply_end), so two sweeps may race. */
#ifndef CHAT_SPOOL_H
#define CHAT_SPOOL_H

#include <stdbool.h>

#include "reply_end.h"

struct store;

/* Writes end to dir (created 0700 if missing). False, after logging why,
 * when it cannot: the ending is then lost and the sweep interrupts the
 * reply with the text stored so far. */
bool spool_put(const char *dir, const struct reply_end *end);

/* Stores every ending spooled in dir and removes its file. Returns how many
 * were stored, or -1 when the database was unavailable (the rest wait for
 * the next call). A file that cannot be read as an ending, or that the
 * database refuses, is renamed "*.bad" and logged. An empty dir or a missing directory is 0. */
long spool_apply(const char *dir, struct store *st);

#endif
