/* reply_retry.h: reply endings the database could not take, stored later.
 *
 * A reply that ends while PostgreSQL is away must not stay 'streaming' with
 * half its text. The engine hands its unstored tail and its ending here; one
 * thread per process (started on first use) retries them every second until
 * they are in, or REPLY_RETRY_S passed, so neither the request's thread nor
 * its client waits for the database. A stopping process stops and joins the
 * thread (reply_retry_stop) before it frees the store: endings still queued
 * then get a last short chance; those the database still refuses are
 * written to the spool (spool.h), whence the sweep stores them once it
 * can. Only an ending that cannot be spooled either is lost: its reply
 * stays 'streaming' with the text stored so far until the sweep
 * (core/sweep.c) marks it interrupted, this process being gone. */
#ifndef CHAT_REPLY_RETRY_H
#define CHAT_REPLY_RETRY_H

#include <stdbool.h>
#include <stddef.h>

#include "reply_end.h"

struct store;

/* Queues end (its pointers borrowed for the call only) for the retry thread, copying everything it needs; store is
 * borrowed and must outlive the process's use of it (the workers keep theirs
 * until exit). False when it cannot (no memory, no thread): the reply's end
 * is then lost, and the caller logs it. Thread-safe. */
bool reply_retry_enqueue(struct store *store, const struct reply_end *end);

/* Stops the retry thread: queued endings are tried until the database takes
 * them or flush_ms passed, the rest written to spool_dir (spool.h), and
 * the thread joined. After it returns nothing uses a store given to
 * reply_retry_enqueue, and enqueue refuses. Call once, at exit, from the
 * thread that frees the store; a no-op if the thread never started. */
void reply_retry_stop(int flush_ms, const char *spool_dir);

#endif
