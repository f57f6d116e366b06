/* follow.c: waiters by reply id, in a fixed table of buckets. */
#include "follow.h"

#include <stdint.h>
#include <string.h>

#define FOLLOW_BUCKETS 256   /* power of two */

static struct follow_waiter *buckets[FOLLOW_BUCKETS];

static struct follow_waiter **
bucket_of(const char *reply_id)
{
	uint32_t h = 2166136261u;  /* FNV-1a */

	for (const unsigned char *p = (const unsigned char *)reply_id; *p != '\0'; p++)
		h = (h ^ *p) * 16777619u;
	return &buckets[h & (FOLLOW_BUCKETS - 1)];
}

void
follow_add(struct follow_waiter *w)
{
	struct follow_waiter **b = bucket_of(w->reply_id);

	w->next = *b;
	if (*b != NULL)
		(*b)->prevp = &w->next;
	*b = w;
	w->prevp = b;
}

void
follow_remove(struct follow_waiter *w)
{
	if (w->prevp == NULL)
		return;
	*w->prevp = w->next;
	if (w->next != NULL)
		w->next->prevp = w->prevp;
	w->prevp = NULL;
	w->next = NULL;
}

void
follow_wake(const char *reply_id)
{
	struct follow_waiter *w = *bucket_of(reply_id), *next;

	for (; w != NULL; w = next) {
		next = w->next;  /* w may remove itself (not others) */
		if (strcmp(w->reply_id, reply_id) == 0)
			w->wake(w->arg);
	}
}
