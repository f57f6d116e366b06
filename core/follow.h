/* follow.h: resumed streams waiting for more of a reply, by reply id.
 *
 * A generator that knows it is followed NOTIFYs chat_reply with the reply's
 * id after each stored batch and at its end; the worker's listener hands
 * that to the loop, which wakes every waiter of that reply here so it reads
 * at once instead of at its next poll. Loop thread only. */
#ifndef CHAT_FOLLOW_H
#define CHAT_FOLLOW_H

struct follow_waiter {
	char                  reply_id[40];
	void                (*wake)(void *arg);
	void                 *arg;
	struct follow_waiter *next;        /* in its bucket */
	struct follow_waiter **prevp;      /* NULL while not added */
};

/* Starts waking w (reply_id, wake and arg set by the caller) for its reply.
 * w is the caller's and must stay until follow_remove. */
void follow_add(struct follow_waiter *w);

/* Stops waking w. Safe when w was never added or is already removed, and
 * from inside w's own wake. */
void follow_remove(struct follow_waiter *w);

/* Wakes every waiter of reply_id (each may remove itself). */
void follow_wake(const char *reply_id);

#endif
