/* fake_store.h: an in-memory stand-in for core/store.c, for unit tests of
 * the engine and replay (tests/unit/test_engine.c).
 *
 * fake_store.c defines the store_* functions that engine.c, replay.c and
 * live.c call; linked before core/libchatcore.a, it keeps store.o (and
 * PostgreSQL) out of the test program. Sessions and replies live in fixed
 * arrays; a test seeds them, runs the engine, then reads what was stored.
 * Every function takes the fake's mutex: engine.c's retry thread may store
 * a reply's end while the test reads it. */
#ifndef TEST_FAKE_STORE_H
#define TEST_FAKE_STORE_H

#include <stdbool.h>
#include <stddef.h>

#include "store.h"

#define FAKE_ID_MAX      40
#define FAKE_TEXT_MAX    8192
#define FAKE_SESSIONS    8
#define FAKE_REPLIES     16

struct fake_session {
	char        id[FAKE_ID_MAX];
	char        user_id[FAKE_ID_MAX];   /* "" anonymous */
	const char *history_json;           /* borrowed; NULL: "[]" */
};

struct fake_reply {
	char   id[FAKE_ID_MAX];
	char   session_id[FAKE_ID_MAX];
	char   user_id[FAKE_ID_MAX];
	char   idempotency_key[64];
	char   worker_id[64];
	char   status[16];                  /* streaming, complete, ... */
	char   content[FAKE_TEXT_MAX];
	size_t len;
	char   ends[1024];                  /* "3,9,14" */
	char   error[64];                   /* "" none */
	char   model[64];
	long   prompt_tokens, completion_tokens;
	bool   stale;
	int    appends, finishes;
};

struct fake_store_state {
	struct fake_session sessions[FAKE_SESSIONS];
	int                 nsessions;
	struct fake_reply   replies[FAKE_REPLIES];
	int                 nreplies;
	const char         *settings_json;  /* the user's overrides, NULL: none */

	/* Failures to inject (STORE_OK: behave). */
	enum store_rc       begin_rc;
	enum store_rc       append_rc;
	enum store_rc       finish_rc;
	enum store_rc       end_rc;         /* store_turn_end as a whole */

	/* Called (under no lock) at the start of each store_reply_read with
	 * the count of reads so far: lets a test advance a live reply. */
	void              (*on_read)(int nth);

	/* What the engine asked. */
	int                 begins, reads, follows, metrics, append_failures, reply_notifies;
	int                 last_history;
	char                last_content[256];
	bool                last_content_null;
	char                metric_status[16];
	long                metric_chunks;

	/* Stream slots (store_turn_begin's, store_turn_end's). */
	int                 slots_held, slots_taken, slots_released, turn_ends;
};

extern struct fake_store_state fake_store;

/* Forgets everything (call in each test's setup). */
void fake_store_reset(void);

/* Adds a session of user_id (NULL: anonymous). */
struct fake_session *fake_store_add_session(const char *id, const char *user_id,
    const char *history_json);

/* Adds a stored reply of a session: ends is the chunk ends csv. */
struct fake_reply *fake_store_add_reply(const char *session_id, const char *id,
    const char *status, const char *content, const char *ends, const char *error);

/* Copies reply id out under the lock; false if unknown. */
bool fake_store_get(const char *id, struct fake_reply *out);

/* Appends to / finishes a reply as a generator elsewhere would. */
void fake_store_grow(const char *id, const char *text, const char *status);

/* The n-th reply the engine inserted (0 = first), or NULL. Borrowed. */
const char *fake_store_reply_id(int n);

#endif
