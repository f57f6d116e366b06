// reply_storage.test.mjs: issue 15, replies stored without bloat
// (migrations/011_write_paths.sql). While a reply streams its batches are
// rows of reply_chunks, not new versions of its messages row; its end folds
// them into the row in the same transaction as its status. What a user
// sees must not change:
// - the session read while the reply streams shows its text so far;
// - once it ended, the row holds the whole text and one chunk end per
//   delta, and no chunk or in-flight entry is left behind;
// - a reply that ends in error gives its Idempotency-Key back.
// Batches lock nothing (migrations/013_stream_statements.sql): a batch that
// lands after its reply ended is never read and is swept, and a deleted
// reply in flight takes its chunks with it.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
	SESSIONS,
	api,
	closeDb,
	createSession,
	db,
	dbReply,
	nonce,
	openStream,
	registerAndLogin,
	sleep,
	streamInBackground,
	tokensText,
	waitFor,
	waitReplyEnd,
	withTimeout,
} from './lib.mjs';

let user;
before(async () => {
	user = await registerAndLogin('store');
});
after(closeDb);

describe('a streaming reply is stored in chunks, folded once at its end', () => {
	test('the session shows the text so far while it streams; the row is written once, whole, at the end', async () => {
		const TOKENS = 30;
		const session = await createSession(user.token);
		const s = streamInBackground((signal) =>
			openStream(user.token, session.id, `${nonce('chunks')} [[tokens=${TOKENS}]] [[delay=100]]`, { signal }),
		);
		const first = await withTimeout(s.started, 10000, 'the start event');
		const replyId = first.json.message_id;

		// Batches are stored every second: wait for two of them.
		const { rows: chunked } = await waitFor(
			async () => {
				const r = await db().query('SELECT count(*)::int AS n FROM reply_chunks WHERE message_id = $1', [replyId]);
				return r.rows[0].n >= 2 ? r : false;
			},
			{ timeout: 8000, what: 'two stored batches' },
		);
		assert.ok(chunked[0].n >= 2);
		const { rows: midRow } = await db().query('SELECT status, content FROM messages WHERE id = $1', [replyId]);
		assert.deepEqual(midRow[0], { status: 'streaming', content: '' }, 'the row itself is not rewritten per batch');
		assert.ok((await dbReply(replyId)).content.length > 0, 'the text so far, with its chunks');

		const got = await api('GET', `${SESSIONS}/${session.id}`, { token: user.token });
		assert.equal(got.status, 200, got.text);
		const reply = got.json.messages.find((m) => m.id === replyId);
		assert.equal(reply.status, 'streaming');
		assert.ok(reply.content.length > 0, 'the text so far is shown');
		assert.ok(tokensText(TOKENS).startsWith(reply.content), `a prefix of the reply: ${JSON.stringify(reply.content)}`);

		const res = await withTimeout(s.done, 20000, 'the stream');
		assert.equal(res.status, 200);
		const row = await waitReplyEnd(replyId);
		assert.equal(row.status, 'complete');
		assert.equal(row.content, tokensText(TOKENS), 'the whole reply in the row');
		assert.equal(row.chunks, TOKENS, 'one chunk end per delta');
		const { rows: left } = await db().query(
			`SELECT (SELECT count(*) FROM reply_chunks WHERE message_id = $1)::int AS chunks,
			        (SELECT count(*) FROM replies_in_flight WHERE message_id = $1)::int AS in_flight`,
			[replyId],
		);
		assert.deepEqual(left[0], { chunks: 0, in_flight: 0 }, 'nothing left beside the row');
		const after = await api('GET', `${SESSIONS}/${session.id}`, { token: user.token });
		assert.equal(after.json.messages.find((m) => m.id === replyId).content, tokensText(TOKENS));
	});

	test('a reply cut by the upstream keeps the text stored before the cut, folded, as interrupted', async () => {
		const session = await createSession(user.token);
		const r = await openStream(user.token, session.id, `${nonce('cut')} [[tokens=40]] [[delay=60]] [[drop-after=25]]`);
		assert.equal(r.status, 200);
		const body = await r.text();
		const id = /"message_id":"([0-9a-f-]{36})"/.exec(body)[1];
		const row = await waitReplyEnd(id);
		assert.notEqual(row.status, 'complete');
		assert.ok(row.content.length > 0 && tokensText(40).startsWith(row.content), `a prefix: ${JSON.stringify(row.content)}`);
		const { rows } = await db().query('SELECT count(*)::int AS n FROM reply_chunks WHERE message_id = $1', [id]);
		assert.equal(rows[0].n, 0);
	});

	test('a reply that ends in error gives its Idempotency-Key back: the retry generates anew', async () => {
		const session = await createSession(user.token);
		const key = nonce('idem');
		const send = (content) =>
			api('POST', `${SESSIONS}/${session.id}/stream`, {
				token: user.token,
				body: { content },
				headers: { 'idempotency-key': key },
			});
		const failed = await send('[[status=500]] fail');
		assert.ok(failed.status >= 500, `the first send fails: ${failed.status}`);
		await sleep(100);
		const ok = await send('hello again [[tokens=3]]');
		assert.equal(ok.status, 200, ok.text);
		const { rows } = await db().query(
			`SELECT status, idempotency_key FROM messages WHERE session_id = $1 AND role = 'assistant' ORDER BY seq`,
			[session.id],
		);
		assert.equal(rows.at(-1).status, 'complete');
		assert.equal(rows.at(-1).idempotency_key, key);
		for (const r of rows.slice(0, -1)) assert.equal(r.idempotency_key, null, `an ended-in-error reply holds no key (${r.status})`);
	});

	// The replies below are written as a generator would, in SQL: the
	// races they stand for (a batch committing just after an ending from
	// the sweep, a delete during a batch) cannot be timed from outside.
	async function streamingReply(sessionId, chunks) {
		const { rows } = await db().query(
			`INSERT INTO messages (session_id, role, status) VALUES ($1, 'assistant', 'streaming') RETURNING id::text`,
			[sessionId],
		);
		const id = rows[0].id;
		let end = 0;
		for (const text of chunks) {
			end += Buffer.byteLength(text);
			await db().query('INSERT INTO reply_chunks (message_id, content, chunk_ends) VALUES ($1, $2, $3)', [id, text, [end]]);
		}
		return id;
	}

	test('a batch that lands after its reply ended is never shown, and the sweep deletes it', async () => {
		const session = await createSession(user.token);
		const id = await streamingReply(session.id, ['Hello', ' world']);
		await db().query(`UPDATE messages SET status = 'interrupted', error = 'worker_died' WHERE id = $1`, [id]);
		await db().query('INSERT INTO reply_chunks (message_id, content, chunk_ends) VALUES ($1, $2, $3)', [id, ' late', [16]]);

		const got = await api('GET', `${SESSIONS}/${session.id}`, { token: user.token });
		assert.equal(got.status, 200, got.text);
		assert.equal(got.json.messages.find((m) => m.id === id).content, 'Hello world', 'the text as the end folded it');
		const row = await dbReply(id);
		assert.equal(row.content, 'Hello world');
		assert.equal(row.chunks, 2);

		const { rows: swept } = await db().query('SELECT reply_chunks_sweep()::int AS n');
		assert.ok(swept[0].n >= 1, `the stray chunk is swept (${swept[0].n})`);
		const { rows } = await db().query('SELECT count(*)::int AS n FROM reply_chunks WHERE message_id = $1', [id]);
		assert.equal(rows[0].n, 0);
		assert.equal((await dbReply(id)).content, 'Hello world', 'the sweep leaves the reply as it was');
	});

	test('the sweep keeps the chunks of replies in flight', async () => {
		const session = await createSession(user.token);
		const id = await streamingReply(session.id, ['still ', 'going']);
		await db().query('SELECT reply_chunks_sweep()');
		assert.equal((await dbReply(id)).content, 'still going');
		await db().query(`UPDATE messages SET status = 'complete' WHERE id = $1`, [id]);
		assert.equal((await dbReply(id)).content, 'still going');
	});

	test('deleting a session while its reply streams deletes the chunks of that reply', async () => {
		const session = await createSession(user.token);
		const id = await streamingReply(session.id, ['some ', 'text']);
		const del = await api('DELETE', `${SESSIONS}/${session.id}`, { token: user.token });
		assert.ok(del.status === 204 || del.status === 200, `${del.status} ${del.text}`);
		const { rows } = await db().query('SELECT count(*)::int AS n FROM reply_chunks WHERE message_id = $1', [id]);
		assert.equal(rows[0].n, 0, 'no chunk outlives its reply');
	});
});
