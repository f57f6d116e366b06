/* reply_end.h: the end of one reply, as the engine hands it on when the
 * database did not take it at once: to the retry thread (reply_retry.h),
 * to the spool at exit (spool.h), and in one statement to the store
 * (store_reply_end). */
#ifndef CHAT_REPLY_END_H
#define CHAT_REPLY_END_H

#include <stddef.h>

#include "reply_status.h"

struct reply_end {
	const char        *reply_id;
	const char        *text;          /* content not stored yet; NULL when none */
	size_t             len;
	const char        *chunk_ends;    /* "{3,9}": where text's chunks end; set with text */
	enum reply_status  status;
	const char        *model;         /* may be NULL */
	const char        *error_code;    /* may be NULL */
	long               prompt_tokens;      /* -1 if unknown */
	long               completion_tokens;
};

#endif
