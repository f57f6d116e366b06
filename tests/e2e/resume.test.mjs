// resume.test.mjs: SPEC §3 and §7 beyond the seeds, the seed-000 stream
// surviving its client: resume after a disconnect with Last-Event-ID (on
// any worker, and with the eventsource npm client), Idempotency-Key
// re-attaching a retried send, and cancel from another connection.
//
// Event ids are "<reply id>:<n>": 0 the start, 1..N the content deltas,
// N+1 the end. A POST sends each id in its own block ("id: …\n\n" then
// "data: …\n\n"); a replay uses the ordinary "id: …\ndata: …\n\n" framing.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { EventSource } from 'eventsource';

import {
	BASE_URL,
	HTTP_URL,
	SESSIONS,
	api,
	assertJsonError,
	chatdLog,
	checkSeed000,
	closeDb,
	createSession,
	db,
	dbMessages,
	dbReply,
	fakeStats,
	openStream,
	readAll,
	readThenAbort,
	registerAndLogin,
	sleep,
	uniqueName,
	waitFor,
	waitReplyEnd,
} from './lib.mjs';

after(closeDb);

/** "t0 t1 … t<n-1>": the fake upstream's reply to [[tokens=n]]. */
const tokens = (n) => Array.from({ length: n }, (_, i) => `t${i}`).join(' ');

/** GET …/stream (the resume route); headers/query as given; unread Response. */
function resume(token, sessionId, { lastEventId, query = '', base } = {}) {
	const headers = lastEventId === undefined ? {} : { 'last-event-id': lastEventId };
	return api('GET', `${SESSIONS}/${sessionId}/stream${query}`, { token, headers, raw: true, base });
}

/** The n of an event id "<reply>:<n>". */
const seqOf = (id) => Number(id.slice(id.lastIndexOf(':') + 1));

// A user per describe block keeps each under the per-user rate limit.
describe('disconnect and resume with Last-Event-ID', () => {
	let user;
	before(async () => {
		user = await registerAndLogin('resume');
	});

	test('abort after a few events; the resume sends exactly the missing events and the end', async () => {
		const session = await createSession(user.token, { title: 'resume' });
		const content = 'resume me [[tokens=40]] [[delay=50]]';
		const ac = new AbortController();
		const response = await openStream(user.token, session.id, content, { signal: ac.signal });
		assert.equal(response.status, 200);
		const first = await readThenAbort(response, ac, 6); // start + 5 deltas
		const seen = checkSeed000(first.events, { complete: false });
		assert.equal(seen.deltas.length, 5);
		const lastId = first.events.at(-1).id;
		assert.equal(seqOf(lastId), 5);

		const r = await resume(user.token, session.id, { lastEventId: lastId });
		assert.equal(r.status, 200);
		assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
		const rest = await readAll(r);
		const resumed = checkSeed000(rest.events, { first: 6 });
		assert.equal(resumed.start, undefined, 'no second start event');
		assert.equal(resumed.replyId, seen.replyId, 'the same reply');
		assert.ok(resumed.done, `ends with done: ${JSON.stringify(resumed.end)}`);
		assert.equal(resumed.done.status, 'complete');
		// No duplicate and no gap: ids 1..40 were each delivered once.
		assert.deepEqual(
			[...seen.seqs.slice(1), ...resumed.seqs.slice(0, -1)],
			Array.from({ length: 40 }, (_, i) => i + 1),
		);
		assert.equal(resumed.seqs.at(-1), 41, 'the end is event N+1');
		const whole = seen.text + resumed.text;
		assert.equal(whole, tokens(40));
		assert.equal(resumed.done.full_content, whole);
		const row = await dbReply(seen.replyId);
		assert.equal(row.status, 'complete');
		assert.equal(row.content, whole, 'PostgreSQL holds what the client pieced together');
	});

	test('the generation goes on while nobody listens, and is stored whole', async () => {
		const session = await createSession(user.token);
		const before = await fakeStats();
		const ac = new AbortController();
		const response = await openStream(user.token, session.id, 'away [[tokens=30]] [[delay=40]]', {
			signal: ac.signal,
		});
		const first = await readThenAbort(response, ac, 3); // start + 2 deltas
		const seen = checkSeed000(first.events, { complete: false });
		assert.equal((await dbReply(seen.replyId)).status, 'streaming', 'still generating when the client left');
		const row = await waitReplyEnd(seen.replyId);
		assert.equal(row.status, 'complete', `the reply ended ${row.status} (${row.error})`);
		assert.equal(row.content, tokens(30));
		assert.equal(row.model, 'gpt-4o-mini');
		assert.equal(row.chunks, 30, 'every delta boundary is stored');
		const afterStats = await waitFor(async () => {
			const s = await fakeStats();
			return s.streams_completed > before.streams_completed ? s : null;
		}, { what: 'the upstream stream to complete' });
		assert.equal(
			afterStats.streams_aborted_by_client,
			before.streams_aborted_by_client,
			'the upstream request was not closed when the client left',
		);

		// Coming back later: the rest at once, then the end.
		const r = await resume(user.token, session.id, { lastEventId: first.events.at(-1).id });
		assert.equal(r.status, 200);
		const resumed = checkSeed000((await readAll(r)).events, { first: 3 });
		assert.equal(seen.text + resumed.text, tokens(30));
		assert.equal(resumed.done.full_content, tokens(30));
		assert.equal(resumed.done.status, 'complete');

		// And with the id of the end: nothing left, 204 (eventsource stops on it).
		const end = await resume(user.token, session.id, { lastEventId: `${seen.replyId}:31` });
		assert.equal(end.status, 204);
		assert.equal(await end.text(), '');
	});

	test('?lastEventId= does what the header does (EventSource in a browser cannot set headers)', async () => {
		const session = await createSession(user.token);
		const ac = new AbortController();
		const response = await openStream(user.token, session.id, 'query [[tokens=20]] [[delay=30]]', {
			signal: ac.signal,
		});
		const first = await readThenAbort(response, ac, 4);
		const seen = checkSeed000(first.events, { complete: false });
		const lastId = first.events.at(-1).id;
		const r = await resume(user.token, session.id, { query: `?lastEventId=${encodeURIComponent(lastId)}` });
		assert.equal(r.status, 200);
		const resumed = checkSeed000((await readAll(r)).events, { first: 4 });
		assert.equal(seen.text + resumed.text, tokens(20));
		assert.equal(resumed.done.full_content, tokens(20));
	});

	test('over plain HTTP too', async () => {
		const session = await createSession(user.token);
		const ac = new AbortController();
		const response = await openStream(user.token, session.id, 'plain [[tokens=15]] [[delay=30]]', {
			signal: ac.signal,
			base: HTTP_URL,
		});
		const first = await readThenAbort(response, ac, 2);
		const r = await resume(user.token, session.id, { lastEventId: first.events.at(-1).id, base: HTTP_URL });
		assert.equal(r.status, 200);
		const resumed = checkSeed000((await readAll(r)).events, { first: 2 });
		assert.equal(checkSeed000(first.events, { complete: false }).text + resumed.text, tokens(15));
	});

	test('without Last-Event-ID: the latest reply from its start, the same events as the POST, followed live', async () => {
		const session = await createSession(user.token);
		const response = await openStream(user.token, session.id, 'follow [[tokens=60]] [[delay=50]]');
		const postRead = readAll(response);
		await sleep(400); // a few deltas in, some not yet stored (batches every 1 s)
		const t0 = performance.now();
		const r = await resume(user.token, session.id);
		assert.equal(r.status, 200);
		const replay = await readAll(r, { t0 });
		const post = await postRead;
		const a = checkSeed000(post.events);
		const b = checkSeed000(replay.events);
		assert.equal(b.replyId, a.replyId);
		assert.deepEqual(
			replay.events.map((e) => [e.id, e.data]),
			post.events.map((e) => [e.id, e.data]),
			'the replay is event for event the POST stream',
		);
		assert.equal(b.done.full_content, tokens(60));
		// Followed live: the replay did not wait for the end to send its deltas.
		const firstDelta = replay.events.find((e) => e.json.type === 'content');
		const end = replay.events.at(-1);
		assert.ok(
			end.at - firstDelta.at > 1000,
			`deltas came ${Math.round(end.at - firstDelta.at)} ms before the end: not followed live`,
		);
	});

	test('a resume follows the generation to its end, with no gap while batches are stored', async () => {
		const session = await createSession(user.token);
		const ac = new AbortController();
		const response = await openStream(user.token, session.id, 'batches [[tokens=80]] [[delay=40]]', {
			signal: ac.signal,
		});
		const first = await readThenAbort(response, ac, 2); // start + t0
		const r = await resume(user.token, session.id, { lastEventId: first.events.at(-1).id });
		const rest = await readAll(r);
		const resumed = checkSeed000(rest.events, { first: 2 });
		assert.equal(checkSeed000(first.events, { complete: false }).text + resumed.text, tokens(80));
		assert.equal(resumed.done.full_content, tokens(80));
		// It took a while: the follower polled batches as they were stored.
		const span = rest.events.at(-1).at - rest.events[0].at;
		assert.ok(span > 1000, `the 80 deltas 40 ms apart were replayed within ${Math.round(span)} ms`);
	});

	test('resumes land on other workers and each gets exactly the missing events', async (t) => {
		// chatd runs several worker processes; the generating one is in the
		// reply row (worker = host:pid), the one serving each request in the
		// pid= field of its chatd.log line.
		const probe = chatdLog((r) => r.event === 'request');
		if (probe.length === 0) {
			t.skip('chatd.log is not readable here');
			return;
		}
		// Its own user: many requests, and the log lines are picked by user.
		const user = await registerAndLogin('workers');
		const pidsServing = new Set();
		let generator;
		for (let round = 0; round < 4; round++) {
			const session = await createSession(user.token);
			const ac = new AbortController();
			const response = await openStream(user.token, session.id, `workers ${round} [[tokens=40]] [[delay=40]]`, {
				signal: ac.signal,
			});
			const first = await readThenAbort(response, ac, 3);
			const seen = checkSeed000(first.events, { complete: false });
			const lastId = first.events.at(-1).id;
			const results = await Promise.all(
				Array.from({ length: 10 }, async () => {
					const r = await resume(user.token, session.id, { lastEventId: lastId });
					assert.equal(r.status, 200);
					return checkSeed000((await readAll(r)).events, { first: 3 });
				}),
			);
			for (const res of results) {
				assert.equal(seen.text + res.text, tokens(40));
				assert.equal(res.done.full_content, tokens(40));
			}
			const row = await waitReplyEnd(seen.replyId);
			generator = row.worker.slice(row.worker.lastIndexOf(':') + 1);
			// The request lines are written when the requests end.
			const lines = await waitFor(() => {
				const l = chatdLog((r) => r.route === 'sessions_resume' && r.user === user.userId);
				return l.length >= 10 * (round + 1) ? l : null;
			}, { what: 'the resume requests in chatd.log' });
			for (const l of lines) pidsServing.add(l.pid);
			t.diagnostic(`round ${round}: generated by pid ${generator}; resumes served by pids ${[...pidsServing].join(', ')}`);
			if ([...pidsServing].some((p) => p !== generator)) break;
		}
		assert.ok(
			[...pidsServing].some((p) => p !== generator),
			`every resume was served by the generating worker ${generator}`,
		);
	});

	test('the eventsource client: resumes from ?lastEventId=, reconnects with Last-Event-ID, stops on 204', async () => {
		const session = await createSession(user.token);
		const ac = new AbortController();
		const response = await openStream(user.token, session.id, 'es [[tokens=20]] [[delay=30]]', { signal: ac.signal });
		const first = await readThenAbort(response, ac, 4);
		const seen = checkSeed000(first.events, { complete: false });
		const lastId = first.events.at(-1).id;
		const requests = [];
		const messages = [];
		const errors = [];
		const es = new EventSource(
			`${BASE_URL}${SESSIONS}/${session.id}/stream?lastEventId=${encodeURIComponent(lastId)}`,
			{
				fetch: (input, init) => {
					requests.push({ ...init.headers });
					return fetch(input, { ...init, headers: { ...init.headers, authorization: `Bearer ${user.token}` } });
				},
			},
		);
		es.onmessage = (e) => messages.push({ id: e.lastEventId, data: JSON.parse(e.data) });
		es.onerror = (e) => errors.push({ code: e.code, message: e.message, state: es.readyState });
		try {
			// The stream ends; the client reconnects after its retry delay (3 s),
			// gets 204 and gives up for good.
			await waitFor(() => es.readyState === EventSource.CLOSED, { timeout: 15000, what: 'eventsource to stop' });
		} finally {
			es.close();
		}
		assert.equal(requests.length, 2, `requests: ${JSON.stringify(requests)}`);
		assert.equal(requests[0]['Last-Event-ID'], undefined);
		assert.equal(requests[1]['Last-Event-ID'], `${seen.replyId}:21`, 'the reconnect names the end it saw');
		assert.equal(errors.at(-1)?.code, 204, JSON.stringify(errors));
		assert.deepEqual(
			messages.map((m) => m.id),
			Array.from({ length: 18 }, (_, i) => `${seen.replyId}:${i + 4}`),
			'each missing event once, the end last, nothing after the reconnect',
		);
		assert.equal(seen.text + messages.slice(0, -1).map((m) => m.data.content).join(''), tokens(20));
		assert.equal(messages.at(-1).data.type, 'done');
	});

	test('a failed reply replays its partial content, then its error event', async () => {
		for (const [directive, status, code] of [
			['[[error-after=4]]', 'error', 'upstream_stream_error'],
			['[[drop-after=4]]', 'interrupted', 'upstream_dropped'],
		]) {
			const session = await createSession(user.token);
			const response = await openStream(user.token, session.id, `fail [[tokens=10]] ${directive}`);
			const post = checkSeed000((await readAll(response)).events);
			assert.equal(post.error?.code, code, directive);
			const r = await resume(user.token, session.id, { lastEventId: `${post.replyId}:1` });
			assert.equal(r.status, 200, directive);
			const resumed = checkSeed000((await readAll(r)).events, { first: 2 });
			assert.deepEqual(resumed.deltas, [' t1', ' t2', ' t3'], directive);
			assert.ok(resumed.error, `${directive}: ends with an error event`);
			assert.equal(resumed.error.code, code, directive);
			assert.equal(resumed.error.status, status, directive);
			assert.equal(resumed.seqs.at(-1), 5, `${directive}: the error is event N+1`);
		}
	});

	test('resume errors: bad Last-Event-ID 400, nothing to resume 404, already seen 204, JSON', async () => {
		const session = await createSession(user.token);
		const turn = checkSeed000((await readAll(await openStream(user.token, session.id, '[[tokens=3]]'))).events);
		for (const bad of ['garbage', `${turn.replyId}`, `${turn.replyId}:`, `${turn.replyId}:-1`, `${turn.replyId}:x`, 'nope:3']) {
			const r = await api('GET', `${SESSIONS}/${session.id}/stream`, {
				token: user.token,
				headers: { 'last-event-id': bad },
			});
			assertJsonError(r, 400, `Last-Event-ID ${bad}`);
		}
		// An id of no reply of this session.
		const r1 = await api('GET', `${SESSIONS}/${session.id}/stream`, {
			token: user.token,
			headers: { 'last-event-id': '00000000-0000-4000-8000-000000000000:2' },
		});
		assertJsonError(r1, 404, 'unknown reply');
		// A session with no reply yet.
		const empty = await createSession(user.token);
		assertJsonError(await api('GET', `${SESSIONS}/${empty.id}/stream`, { token: user.token }), 404, 'no reply');
		// Already seen the end (n = N+1) or beyond.
		for (const n of [4, 9]) {
			const r = await api('GET', `${SESSIONS}/${session.id}/stream`, {
				token: user.token,
				headers: { 'last-event-id': `${turn.replyId}:${n}` },
			});
			assert.equal(r.status, 204, `:${n} → ${r.status} ${r.text}`);
			assert.equal(r.text, '');
		}
		// Seen the last delta: only the end is left.
		const r2 = await resume(user.token, session.id, { lastEventId: `${turn.replyId}:3` });
		const only = checkSeed000((await readAll(r2)).events, { first: 4 });
		assert.deepEqual(only.deltas, []);
		assert.equal(only.done.full_content, 't0 t1 t2');
		// Not the caller's session, or no token.
		const intruder = await registerAndLogin('intruder');
		assertJsonError(
			await api('GET', `${SESSIONS}/${session.id}/stream`, {
				token: intruder.token,
				headers: { 'last-event-id': `${turn.replyId}:1` },
			}),
			404,
			"another user's session",
		);
		assertJsonError(await api('GET', `${SESSIONS}/${session.id}/stream`, { token: intruder.token }), 404, "another user's, no id");
		assertJsonError(await api('GET', `${SESSIONS}/${session.id}/stream`), 401, 'no token');
		assertJsonError(await api('GET', `${SESSIONS}/not-a-uuid/stream`, { token: user.token }), 404, 'malformed id');
	});
});

describe('Idempotency-Key on POST …/stream', () => {
	let user;
	before(async () => {
		user = await registerAndLogin('idem');
	});

	test('a second send while the first runs re-attaches: same reply, no second upstream call, one pair of rows', async () => {
		const session = await createSession(user.token);
		const key = uniqueName('key');
		const content = 'once only [[tokens=25]] [[delay=40]]';
		const before = await fakeStats();
		const r1 = await openStream(user.token, session.id, content, { headers: { 'idempotency-key': key } });
		assert.equal(r1.status, 200);
		const read1 = readAll(r1);
		await sleep(300);
		const r2 = await openStream(user.token, session.id, content, { headers: { 'idempotency-key': key } });
		assert.equal(r2.status, 200);
		const [a, b] = [checkSeed000((await read1).events), checkSeed000((await readAll(r2)).events)];
		assert.equal(b.replyId, a.replyId, 'the same message_id');
		assert.equal(b.done.full_content, a.done.full_content, 'the same full_content');
		assert.equal(a.done.full_content, tokens(25));
		assert.equal(b.text, tokens(25), 'the retry got every delta from the start');
		assert.equal((await fakeStats()).chat_requests - before.chat_requests, 1, 'one upstream call');
		const rows = await dbMessages(session.id);
		assert.deepEqual(
			rows.map((r) => [r.role, r.content, r.status]),
			[
				['user', content, 'complete'],
				['assistant', tokens(25), 'complete'],
			],
		);
	});

	test('a send after the first finished replays it, without calling the upstream', async () => {
		const session = await createSession(user.token);
		const key = uniqueName('key');
		const content = 'finished [[tokens=8]]';
		const a = checkSeed000(
			(await readAll(await openStream(user.token, session.id, content, { headers: { 'idempotency-key': key } }))).events,
		);
		const before = await fakeStats();
		for (let i = 0; i < 2; i++) {
			const r = await openStream(user.token, session.id, content, { headers: { 'idempotency-key': key } });
			assert.equal(r.status, 200);
			const b = checkSeed000((await readAll(r)).events);
			assert.equal(b.replyId, a.replyId);
			assert.equal(b.done.full_content, a.done.full_content);
			assert.deepEqual(b.deltas, a.deltas);
		}
		assert.equal((await fakeStats()).chat_requests, before.chat_requests, 'no upstream call');
		assert.equal((await dbMessages(session.id)).length, 2, 'one user message, one reply');
	});

	test('the key is per session; another key is another send', async () => {
		const s1 = await createSession(user.token);
		const s2 = await createSession(user.token);
		const key = uniqueName('key');
		const before = await fakeStats();
		const a = checkSeed000((await readAll(await openStream(user.token, s1.id, 'k1', { headers: { 'idempotency-key': key } }))).events);
		const b = checkSeed000((await readAll(await openStream(user.token, s2.id, 'k1', { headers: { 'idempotency-key': key } }))).events);
		const c = checkSeed000(
			(await readAll(await openStream(user.token, s1.id, 'k2', { headers: { 'idempotency-key': `${key}-2` } }))).events,
		);
		assert.notEqual(b.replyId, a.replyId);
		assert.notEqual(c.replyId, a.replyId);
		assert.equal(c.done.full_content, 'You said: k2');
		assert.equal((await fakeStats()).chat_requests - before.chat_requests, 3);
		assert.equal((await dbMessages(s1.id)).length, 4);
		assert.equal((await dbMessages(s2.id)).length, 2);
	});

	test('a cut connection, then the same send again: the generation goes on, the retry gets all of it', async () => {
		const session = await createSession(user.token);
		const key = uniqueName('key');
		const content = 'flaky network [[tokens=30]] [[delay=30]]';
		const before = await fakeStats();
		const ac = new AbortController();
		const r1 = await openStream(user.token, session.id, content, {
			signal: ac.signal,
			headers: { 'idempotency-key': key },
		});
		const first = checkSeed000((await readThenAbort(r1, ac, 3)).events, { complete: false });
		const r2 = await openStream(user.token, session.id, content, { headers: { 'idempotency-key': key } });
		const b = checkSeed000((await readAll(r2)).events);
		assert.equal(b.replyId, first.replyId);
		assert.equal(b.done.full_content, tokens(30));
		assert.equal((await fakeStats()).chat_requests - before.chat_requests, 1);
		assert.equal((await dbMessages(session.id)).length, 2);
	});

	test('concurrent sends with one key: one generation, every client gets it whole', async () => {
		const session = await createSession(user.token);
		const key = uniqueName('key');
		const content = 'stampede [[tokens=15]] [[delay=30]]';
		const before = await fakeStats();
		const turns = await Promise.all(
			Array.from({ length: 6 }, async () => {
				const r = await openStream(user.token, session.id, content, { headers: { 'idempotency-key': key } });
				assert.equal(r.status, 200);
				return checkSeed000((await readAll(r)).events);
			}),
		);
		for (const tt of turns) {
			assert.equal(tt.replyId, turns[0].replyId);
			assert.equal(tt.done.full_content, tokens(15));
			assert.equal(tt.text, tokens(15));
		}
		assert.equal((await fakeStats()).chat_requests - before.chat_requests, 1, 'one upstream call');
		assert.equal((await dbMessages(session.id)).length, 2, 'one user message, one reply');
	});

	test('a bad key is a 400 JSON error before anything is stored', async () => {
		const session = await createSession(user.token);
		for (const key of ['', 'k'.repeat(256)]) {
			const r = await api('POST', `${SESSIONS}/${session.id}/stream`, {
				token: user.token,
				body: { content: 'x' },
				headers: { 'idempotency-key': key },
			});
			assertJsonError(r, 400, `key of ${key.length} characters`);
		}
		assert.deepEqual(await dbMessages(session.id), []);
	});
});

describe('cancel', () => {
	let user;
	before(async () => {
		user = await registerAndLogin('cancel');
	});

	test('from a second connection: 200, the stream ends with done "cancelled", the upstream request is closed', async () => {
		const session = await createSession(user.token);
		const before = await fakeStats();
		const response = await openStream(user.token, session.id, 'long story [[tokens=100]] [[delay=50]]');
		const reading = readAll(response);
		await sleep(600);
		const c = await api('POST', `${SESSIONS}/${session.id}/cancel`, { token: user.token });
		assert.equal(c.status, 200, c.text);
		assert.match(c.headers.get('content-type') ?? '', /^application\/json/);
		assert.equal(c.json.cancelled, true);
		const t0 = performance.now();
		const turn = checkSeed000((await reading).events);
		assert.ok(performance.now() - t0 < 2000, 'the stream ended soon after the cancel');
		assert.equal(c.json.message_id, turn.replyId);
		assert.ok(turn.done, `a done event: ${JSON.stringify(turn.end)}`);
		assert.equal(turn.done.status, 'cancelled');
		assert.equal(turn.done.full_content, turn.text, 'full_content is the partial reply');
		assert.ok(turn.deltas.length > 0 && turn.deltas.length < 100, `${turn.deltas.length} deltas`);
		assert.ok(tokens(100).startsWith(turn.text));
		const row = await dbReply(turn.replyId);
		assert.equal(row.status, 'cancelled');
		assert.equal(row.content, turn.text);
		await waitFor(async () => (await fakeStats()).streams_aborted_by_client > before.streams_aborted_by_client, {
			timeout: 3000,
			what: 'the fake upstream to see its request closed',
		});
		// Nothing is in flight any more.
		assertJsonError(await api('POST', `${SESSIONS}/${session.id}/cancel`, { token: user.token }), 409, 'second cancel');
		// The session goes on.
		const next = checkSeed000((await readAll(await openStream(user.token, session.id, 'after cancel'))).events);
		assert.equal(next.done.full_content, 'You said: after cancel');
	});

	test('a follower on GET …/stream sees the cancelled end too', async () => {
		const session = await createSession(user.token);
		const ac = new AbortController();
		const response = await openStream(user.token, session.id, 'watched [[tokens=100]] [[delay=40]]', {
			signal: ac.signal,
		});
		const first = await readThenAbort(response, ac, 3);
		const follower = readAll(await resume(user.token, session.id, { lastEventId: first.events.at(-1).id }));
		await sleep(700);
		const c = await api('POST', `${SESSIONS}/${session.id}/cancel`, { token: user.token });
		assert.equal(c.status, 200, c.text);
		const rest = checkSeed000((await follower).events, { first: 3 });
		assert.equal(rest.done?.status, 'cancelled', JSON.stringify(rest.end));
		const whole = checkSeed000(first.events, { complete: false }).text + rest.text;
		assert.equal(rest.done.full_content, whole);
		const row = await dbReply(rest.replyId);
		assert.equal(row.status, 'cancelled');
		assert.equal(row.content, whole);
	});

	test('before the first token: done "cancelled" with an empty reply', async () => {
		const session = await createSession(user.token);
		const response = await openStream(user.token, session.id, 'wait [[stall-first=4000]]');
		const reading = readAll(response);
		await sleep(500);
		const c = await api('POST', `${SESSIONS}/${session.id}/cancel`, { token: user.token });
		assert.equal(c.status, 200, c.text);
		const turn = checkSeed000((await reading).events);
		assert.equal(turn.done?.status, 'cancelled', JSON.stringify(turn.end));
		assert.equal(turn.done.full_content, '');
		assert.equal((await dbReply(turn.replyId)).status, 'cancelled');
	});

	test('with nothing in flight: 409 JSON; unknown, malformed or another user’s session: 404 JSON', async () => {
		const session = await createSession(user.token);
		assertJsonError(await api('POST', `${SESSIONS}/${session.id}/cancel`, { token: user.token }), 409, 'fresh session');
		await readAll(await openStream(user.token, session.id, 'done already'));
		assertJsonError(await api('POST', `${SESSIONS}/${session.id}/cancel`, { token: user.token }), 409, 'finished reply');
		assertJsonError(
			await api('POST', `${SESSIONS}/00000000-0000-4000-8000-000000000000/cancel`, { token: user.token }),
			404,
			'unknown session',
		);
		assertJsonError(await api('POST', `${SESSIONS}/nope/cancel`, { token: user.token }), 404, 'malformed id');
		assertJsonError(await api('POST', `${SESSIONS}/${session.id}/cancel`), 401, 'no token');
	});

	test("another user's cancel is a 404 and the stream runs on to its end", async () => {
		const session = await createSession(user.token);
		const intruder = await registerAndLogin('intruder');
		const response = await openStream(user.token, session.id, 'mine [[tokens=20]] [[delay=40]]');
		const reading = readAll(response);
		await sleep(300);
		const c = await api('POST', `${SESSIONS}/${session.id}/cancel`, { token: intruder.token });
		assertJsonError(c, 404, 'intruder');
		assert.equal(c.json.error, 'Session not found');
		const turn = checkSeed000((await reading).events);
		assert.equal(turn.done?.status, 'complete');
		assert.equal(turn.done.full_content, tokens(20));
		const { rows } = await db().query(
			'SELECT count(*)::int AS n FROM messages WHERE session_id = $1 AND cancel_requested',
			[session.id],
		);
		assert.equal(rows[0].n, 0, 'nothing was marked for cancelling');
	});

	test('a generation nobody listens to can still be cancelled', async () => {
		const session = await createSession(user.token);
		const ac = new AbortController();
		const response = await openStream(user.token, session.id, 'orphan [[tokens=100]] [[delay=40]]', {
			signal: ac.signal,
		});
		const first = checkSeed000((await readThenAbort(response, ac, 2)).events, { complete: false });
		await sleep(300);
		const c = await api('POST', `${SESSIONS}/${session.id}/cancel`, { token: user.token });
		assert.equal(c.status, 200, c.text);
		assert.equal(c.json.message_id, first.replyId);
		const row = await waitReplyEnd(first.replyId, 5000);
		assert.equal(row.status, 'cancelled');
		assert.ok(row.content.length > 0 && tokens(100).startsWith(row.content), row.content);
		// A resume now replays the partial reply and the cancelled end.
		const r = await resume(user.token, session.id, { lastEventId: `${first.replyId}:1` });
		const rest = checkSeed000((await readAll(r)).events, { first: 2 });
		assert.equal(rest.done.status, 'cancelled');
		assert.equal(first.text + rest.text, row.content);
		assert.equal(rest.done.full_content, row.content);
	});
});

