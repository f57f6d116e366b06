// engine.test.mjs: the chat engine under stress (SPEC §3, §7), through the
// seed-000 stream: retries before the first token, the failure mapping
// before the stream opens (HTTP 502/504 JSON) and after (one error event,
// then a clean close), timeouts, heartbeats on a quiet stream, odd upstream
// framing, many streams at once, and a healthy worker after every failure.
//
// Timing knobs come from the environment chatd was started with (CHATD in
// lib.mjs); tests that would wait too long at chatd's defaults are skipped
// with a note. scripts/test should run the instance with, e.g.,
// CHAT_HEARTBEAT_INTERVAL=1 CHAT_UPSTREAM_IDLE_TIMEOUT=3
// CHAT_UPSTREAM_FIRST_TOKEN_TIMEOUT=5 CHAT_STREAM_MAX_DURATION=15.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
	CHATD,
	SESSIONS,
	UPSTREAM_KEY,
	api,
	assertJsonError,
	checkSeed000,
	closeDb,
	createSession,
	dbMessages,
	dbReply,
	fakeStats,
	openStream,
	readAll,
	registerAndLogin,
	uniqueName,
	waitFor,
} from './lib.mjs';

after(closeDb);

/** Longest wait a test may spend on one timeout at the configured values. */
const BUDGET_S = 20;

const tokens = (n) => Array.from({ length: n }, (_, i) => `t${i}`).join(' ');

/** Sends one message; returns {response, status, turn (checked), events, comments, ms, text (non-200 body)}. */
async function send(token, sessionId, content, opts = {}) {
	const t0 = performance.now();
	const response = await openStream(token, sessionId, content, opts);
	if (response.status !== 200) {
		const text = await response.text();
		let json;
		try {
			json = JSON.parse(text);
		} catch {
			json = undefined;
		}
		return { status: response.status, headers: response.headers, text, json, ms: performance.now() - t0 };
	}
	const { events, comments } = await readAll(response, { t0 });
	return {
		status: 200,
		response,
		events,
		comments,
		turn: checkSeed000(events),
		ms: performance.now() - t0,
	};
}

/** The session still works: a plain turn completes (on whichever worker). */
async function assertHealthy(token, sessionId, what) {
	// The label without brackets: directives in it would steer the fake.
	const label = what.replace(/[[\]]/g, '');
	const r = await send(token, sessionId, `healthy after ${label}`);
	assert.equal(r.status, 200, `${what}: the next send got ${r.status} ${r.text}`);
	assert.equal(r.turn.done?.status, 'complete', `${what}: the next send ended ${JSON.stringify(r.turn.end)}`);
	assert.equal(r.turn.done.full_content, `You said: healthy after ${label}`);
}

/** The reply row and the user row before it, for a failed send with no stream. */
async function storedFailure(sessionId, content) {
	const rows = await dbMessages(sessionId);
	const i = rows.findLastIndex((r) => r.role === 'user' && r.content === content);
	assert.ok(i >= 0, `the user message is stored: ${JSON.stringify(rows)}`);
	const reply = rows[i + 1];
	assert.ok(reply, 'a reply row records the failure');
	assert.equal(reply.role, 'assistant');
	return reply;
}

let user;
before(async () => {
	user = await registerAndLogin('engine');
});

describe('retries before the first token', () => {
	test('429 with Retry-After: 1 → a normal stream after about a second; the upstream saw 2 requests', async () => {
		const session = await createSession(user.token);
		const key = uniqueName('k');
		const content = `retry me [[status=429]] [[fail-first=1]] [[key=${key}]] [[retry-after=1]]`;
		const before = await fakeStats();
		const r = await send(user.token, session.id, content);
		assert.equal(r.status, 200, r.text);
		assert.equal(r.turn.done?.status, 'complete', JSON.stringify(r.turn.end));
		assert.equal(r.turn.done.full_content, 'You said: retry me');
		assert.ok(r.events[0].at >= 900, `the start came after ${Math.round(r.events[0].at)} ms: Retry-After ignored`);
		assert.ok(r.events[0].at < 4000, `the start came after ${Math.round(r.events[0].at)} ms`);
		assert.equal((await fakeStats()).chat_requests - before.chat_requests, 2);
		const rows = await dbMessages(session.id);
		assert.deepEqual(
			rows.map((m) => [m.role, m.status]),
			[
				['user', 'complete'],
				['assistant', 'complete'],
			],
			'retries leave one reply row',
		);
	});

	test('429 with retry-after-ms: 300 → retried after about 300 ms', async () => {
		const session = await createSession(user.token);
		const key = uniqueName('k');
		const before = await fakeStats();
		const r = await send(user.token, session.id, `ms [[status=429]] [[fail-first=1]] [[key=${key}]] [[retry-after-ms=300]]`);
		assert.equal(r.status, 200, r.text);
		assert.equal(r.turn.done?.status, 'complete');
		assert.ok(r.events[0].at >= 250 && r.events[0].at < 900, `start after ${Math.round(r.events[0].at)} ms`);
		assert.equal((await fakeStats()).chat_requests - before.chat_requests, 2);
	});

	test('503 twice, no Retry-After → backoff, then a normal stream (3 upstream requests)', async (t) => {
		if (CHATD.retries < 2) {
			t.skip(`upstream_retries is ${CHATD.retries}`);
			return;
		}
		const session = await createSession(user.token);
		const key = uniqueName('k');
		const before = await fakeStats();
		const r = await send(user.token, session.id, `backoff [[status=503]] [[fail-first=2]] [[key=${key}]]`);
		assert.equal(r.status, 200, r.text);
		assert.equal(r.turn.done?.full_content, 'You said: backoff');
		assert.equal((await fakeStats()).chat_requests - before.chat_requests, 3);
		t.diagnostic(`start after ${Math.round(r.events[0].at)} ms of backoff`);
		assert.ok(r.events[0].at >= 500, 'the backoff waited (0.25–0.5 s, then 0.5–1 s)');
	});

	test(`a 5xx on every attempt → 502 JSON after ${CHATD.retries + 1} attempts; the user message is kept, the reply row says error`, async () => {
		const session = await createSession(user.token);
		const key = uniqueName('k');
		const content = `always down [[status=503]] [[fail-first=5]] [[key=${key}]]`;
		const before = await fakeStats();
		const r = await send(user.token, session.id, content);
		assertJsonError(r, 502, 'all attempts failed');
		assert.ok(!r.text.includes(UPSTREAM_KEY));
		assert.equal((await fakeStats()).chat_requests - before.chat_requests, CHATD.retries + 1);
		const reply = await storedFailure(session.id, content);
		assert.equal(reply.status, 'error');
		assert.equal(reply.content, '');
		assert.equal(reply.error, 'upstream_http_error');
		await assertHealthy(user.token, session.id, 'five 503s');
	});

	for (const status of [400, 401, 404, 422]) {
		test(`a ${status} is not retried: 502 JSON after one request`, async () => {
			const session = await createSession(user.token);
			const key = uniqueName('k');
			const content = `no retry [[status=${status}]] [[fail-first=5]] [[key=${key}]]`;
			const before = await fakeStats();
			const r = await send(user.token, session.id, content);
			assertJsonError(r, 502, `upstream ${status}`);
			assert.ok(!r.text.includes(UPSTREAM_KEY));
			assert.equal((await fakeStats()).chat_requests - before.chat_requests, 1);
			assert.equal((await storedFailure(session.id, content)).status, 'error');
			await assertHealthy(user.token, session.id, `a ${status}`);
		});
	}

	test('a Retry-After beyond the first-token deadline is not waited for: 502 at once', async (t) => {
		if (CHATD.firstTokenTimeout >= 30) {
			// chatd caps a Retry-After at 30 s, which then fits in the deadline.
			t.skip(`upstream_first_token_timeout is ${CHATD.firstTokenTimeout} s`);
			return;
		}
		const session = await createSession(user.token);
		const key = uniqueName('k');
		const wait = CHATD.firstTokenTimeout + 5;
		const before = await fakeStats();
		const r = await send(user.token, session.id, `too long [[status=429]] [[fail-first=1]] [[key=${key}]] [[retry-after=${wait}]]`);
		assertJsonError(r, 502, 'retry-after beyond the deadline');
		assert.ok(r.ms < 3000, `answered after ${Math.round(r.ms)} ms`);
		assert.equal((await fakeStats()).chat_requests - before.chat_requests, 1);
	});
});

describe('failures after the stream opened: one error event, a clean close, the partial reply kept', () => {
	for (const [directive, code, status] of [
		['[[error-after=3]]', 'upstream_stream_error', 'error'],
		['[[event-error-after=3]]', 'upstream_stream_error', 'error'],
		['[[drop-after=3]]', 'upstream_dropped', 'interrupted'],
	]) {
		test(`${directive} → error event ${code}, reply ${status}`, async () => {
			const session = await createSession(user.token);
			const r = await send(user.token, session.id, `partial [[tokens=10]] [[delay=20]] ${directive}`);
			assert.equal(r.status, 200);
			const { turn } = r;
			assert.equal(turn.done, undefined, 'no done event');
			assert.ok(turn.error, 'an error event');
			assert.equal(turn.error.code, code);
			assert.equal(turn.error.status, status);
			assert.ok(!JSON.stringify(turn.error).includes(UPSTREAM_KEY));
			assert.deepEqual(turn.deltas, ['t0', ' t1', ' t2']);
			assert.equal(turn.seqs.at(-1), 4, 'the error is event N+1');
			const row = await dbReply(turn.replyId);
			assert.equal(row.status, status);
			assert.equal(row.error, code);
			assert.equal(row.content, 't0 t1 t2', 'the partial reply is kept');
			await assertHealthy(user.token, session.id, directive);
		});
	}

	test('an error before any token: the stream opened, so an error event with an empty reply', async () => {
		const session = await createSession(user.token);
		const r = await send(user.token, session.id, 'zero [[tokens=5]] [[error-after=0]]');
		assert.equal(r.status, 200);
		assert.equal(r.turn.error?.code, 'upstream_stream_error');
		assert.deepEqual(r.turn.deltas, []);
		assert.equal((await dbReply(r.turn.replyId)).content, '');
		await assertHealthy(user.token, session.id, 'an immediate error');
	});

	test(`idle timeout (${CHATD.idleTimeout} s between tokens) → upstream_idle_timeout, reply interrupted`, async (t) => {
		if (CHATD.idleTimeout > BUDGET_S) {
			t.skip(`upstream_idle_timeout is ${CHATD.idleTimeout} s; run the instance with CHAT_UPSTREAM_IDLE_TIMEOUT=3`);
			return;
		}
		const session = await createSession(user.token);
		const stall = (CHATD.idleTimeout + 4) * 1000;
		const r = await send(user.token, session.id, `idle [[tokens=6]] [[stall-after=3:${stall}]]`);
		assert.equal(r.status, 200);
		assert.equal(r.turn.error?.code, 'upstream_idle_timeout', JSON.stringify(r.turn.end));
		assert.equal(r.turn.error.status, 'interrupted');
		assert.deepEqual(r.turn.deltas, ['t0', ' t1', ' t2']);
		const gap = r.events.at(-1).at - r.events.at(-2).at;
		assert.ok(
			gap >= CHATD.idleTimeout * 1000 - 300 && gap < CHATD.idleTimeout * 1000 + 2500,
			`the error came ${Math.round(gap)} ms after the last token`,
		);
		const row = await dbReply(r.turn.replyId);
		assert.equal(row.status, 'interrupted');
		assert.equal(row.content, 't0 t1 t2');
		await assertHealthy(user.token, session.id, 'an idle timeout');
	});

	test(`first-token timeout after the headers (${CHATD.firstTokenTimeout} s) → error event upstream_first_token_timeout`, async (t) => {
		if (CHATD.firstTokenTimeout > BUDGET_S) {
			t.skip(`upstream_first_token_timeout is ${CHATD.firstTokenTimeout} s; run the instance with CHAT_UPSTREAM_FIRST_TOKEN_TIMEOUT=5`);
			return;
		}
		const session = await createSession(user.token);
		const stall = (CHATD.firstTokenTimeout + 4) * 1000;
		const r = await send(user.token, session.id, `slow start [[tokens=3]] [[stall-first=${stall}]]`);
		assert.equal(r.status, 200, 'the upstream answered its headers: the stream is open');
		assert.equal(r.turn.error?.code, 'upstream_first_token_timeout', JSON.stringify(r.turn.end));
		assert.ok(['error', 'interrupted'].includes(r.turn.error.status), r.turn.error.status);
		assert.deepEqual(r.turn.deltas, []);
		assert.ok(r.ms >= CHATD.firstTokenTimeout * 1000 - 300, `ended after ${Math.round(r.ms)} ms`);
		const row = await dbReply(r.turn.replyId);
		assert.equal(row.status, r.turn.error.status);
		assert.equal(row.content, '');
		await assertHealthy(user.token, session.id, 'a first-token timeout');
	});

	test(`stream_max_duration (${CHATD.maxDuration} s) → error event stream_max_duration, partial reply kept`, async (t) => {
		if (CHATD.maxDuration > BUDGET_S) {
			t.skip(`stream_max_duration is ${CHATD.maxDuration} s; run the instance with CHAT_STREAM_MAX_DURATION=15`);
			return;
		}
		const session = await createSession(user.token);
		// Tokens keep coming (no idle timeout), for longer than the cap.
		const delay = Math.min(200, Math.floor((CHATD.idleTimeout * 1000) / 2));
		const r = await send(user.token, session.id, `forever [[tokens=100000]] [[delay=${delay}]]`);
		assert.equal(r.status, 200);
		assert.equal(r.turn.error?.code, 'stream_max_duration', JSON.stringify(r.turn.end));
		assert.equal(r.turn.error.status, 'interrupted');
		assert.ok(r.turn.deltas.length > 0);
		assert.ok(
			r.ms >= CHATD.maxDuration * 1000 - 500 && r.ms < CHATD.maxDuration * 1000 + 3000,
			`closed after ${Math.round(r.ms)} ms`,
		);
		const row = await dbReply(r.turn.replyId);
		assert.equal(row.status, 'interrupted');
		assert.equal(row.content, r.turn.text);
		await assertHealthy(user.token, session.id, 'the maximum duration');
	});
});

describe('failures before the stream opened: JSON errors, the user message kept', () => {
	test(`no response headers within the first-token timeout → 504 JSON`, async (t) => {
		if (CHATD.firstTokenTimeout > BUDGET_S) {
			t.skip(`upstream_first_token_timeout is ${CHATD.firstTokenTimeout} s; run the instance with CHAT_UPSTREAM_FIRST_TOKEN_TIMEOUT=5`);
			return;
		}
		const session = await createSession(user.token);
		const stall = (CHATD.firstTokenTimeout + 4) * 1000;
		const content = `silent [[stall-headers=${stall}]]`;
		const r = await send(user.token, session.id, content);
		assertJsonError(r, 504, 'headers never came');
		assert.ok(
			r.ms >= CHATD.firstTokenTimeout * 1000 - 300 && r.ms < CHATD.firstTokenTimeout * 1000 + 3000,
			`answered after ${Math.round(r.ms)} ms`,
		);
		const reply = await storedFailure(session.id, content);
		assert.equal(reply.status, 'error');
		assert.equal(reply.error, 'upstream_first_token_timeout');
		await assertHealthy(user.token, session.id, 'a header timeout');
	});
});

describe('heartbeats', () => {
	const skipUnlessShort = (t) => {
		if (CHATD.heartbeat * 2.5 > BUDGET_S) {
			t.skip(`heartbeat_interval is ${CHATD.heartbeat} s; run the instance with CHAT_HEARTBEAT_INTERVAL=1`);
			return true;
		}
		if (CHATD.heartbeat * 2.5 >= CHATD.firstTokenTimeout || CHATD.heartbeat * 2.5 >= CHATD.idleTimeout) {
			t.skip('the heartbeat interval is not well below the upstream timeouts');
			return true;
		}
		return false;
	};
	const hbMs = CHATD.heartbeat * 1000;

	test('a quiet stream before its first token gets ": ping" comments every heartbeat_interval', async (t) => {
		if (skipUnlessShort(t)) return;
		const session = await createSession(user.token);
		const stall = Math.round(hbMs * 2.5);
		const r = await send(user.token, session.id, `quiet [[tokens=3]] [[stall-first=${stall}]]`);
		assert.equal(r.turn.done?.full_content, 't0 t1 t2');
		const start = r.events[0].at;
		const firstDelta = r.events[1].at;
		const pings = r.comments.filter((c) => c.at > start && c.at < firstDelta);
		t.diagnostic(`pings at ${pings.map((p) => Math.round(p.at)).join(', ')} ms; start ${Math.round(start)}, first token ${Math.round(firstDelta)}`);
		assert.ok(pings.length >= 2, `${pings.length} heartbeats during ${stall} ms of silence`);
		for (const p of r.comments) assert.equal(p.text.trim(), 'ping', 'heartbeats are SSE comments');
		assert.ok(pings[0].at - start >= hbMs * 0.8 && pings[0].at - start < hbMs + 1000, 'the first after one interval');
		for (let i = 1; i < pings.length; i++) {
			const gap = pings[i].at - pings[i - 1].at;
			assert.ok(gap >= hbMs * 0.8 && gap < hbMs + 1000, `gap between heartbeats: ${Math.round(gap)} ms`);
		}
	});

	test('a pause between tokens gets heartbeats; a busy stream gets none', async (t) => {
		if (skipUnlessShort(t)) return;
		const session = await createSession(user.token);
		const stall = Math.round(hbMs * 2.5);
		const r = await send(user.token, session.id, `pause [[tokens=6]] [[delay=10]] [[stall-after=3:${stall}]]`);
		assert.equal(r.turn.done?.full_content, tokens(6));
		const third = r.events[3].at;
		const fourth = r.events[4].at;
		const pings = r.comments.filter((c) => c.at > third && c.at < fourth);
		assert.ok(pings.length >= 2, `${pings.length} heartbeats in the pause`);
		// Tokens a fifth of the interval apart, for two intervals.
		const busy = await send(user.token, session.id, `busy [[tokens=10]] [[delay=${Math.floor(hbMs / 5)}]]`);
		assert.equal(busy.turn.done?.full_content, tokens(10));
		assert.equal(busy.comments.length, 0, 'no heartbeat while tokens flow');
	});

	test('a resume that follows a quiet generation gets heartbeats too', async (t) => {
		if (skipUnlessShort(t)) return;
		const session = await createSession(user.token);
		const stall = Math.round(hbMs * 2.5);
		const ac = new AbortController();
		const response = await openStream(user.token, session.id, `follow quiet [[tokens=4]] [[stall-after=2:${stall}]]`, {
			signal: ac.signal,
		});
		const { events } = await readAll(response, { limit: 2 });
		ac.abort();
		const r = await api('GET', `${SESSIONS}/${session.id}/stream`, {
			token: user.token,
			headers: { 'last-event-id': events.at(-1).id },
			raw: true,
		});
		const { events: rest, comments } = await readAll(r);
		const resumed = checkSeed000(rest, { first: 2 });
		assert.equal(resumed.done?.full_content, tokens(4));
		assert.ok(comments.length >= 1, `${comments.length} heartbeats while following a ${stall} ms pause`);
		for (const c of comments) assert.equal(c.text.trim(), 'ping');
	});
});

describe('odd upstream framing does not change the result', () => {
	const raw = 'Héllo wörld — 世界 🙂 "quoted" \\ back\\slash and a long word: Donaudampfschifffahrtsgesellschaft';
	let reference;
	before(async () => {
		const session = await createSession(user.token);
		const r = await send(user.token, session.id, `[[raw=${raw}]]`);
		reference = r.turn;
		assert.equal(r.turn.done.full_content, raw);
	});
	/** The deltas of [[tokens=n]]: "t0", " t1", ... */
	const tokenDeltas = (n) => Array.from({ length: n }, (_, i) => (i === 0 ? 't0' : ` t${i}`));

	for (const directives of [
		'[[split=odd]]',
		'[[split=odd]] [[split-gap=5]]',
		'[[crlf]]',
		'[[comments]]',
		'[[crlf]] [[comments]] [[split=odd]] [[split-gap=1]]',
		'[[no-usage]]',
	]) {
		test(directives, async () => {
			const session = await createSession(user.token);
			const a = await send(user.token, session.id, `[[raw=${raw}]] ${directives}`);
			assert.equal(a.turn.done?.status, 'complete', JSON.stringify(a.turn.end));
			assert.equal(a.turn.done.full_content, raw);
			assert.deepEqual(a.turn.deltas, reference.deltas, 'the same deltas');
			// Many events (fewer when each piece waits).
			const n = directives.includes('split-gap') ? 20 : 300;
			const b = await send(user.token, session.id, `[[tokens=${n}]] [[delay=0]] ${directives}`);
			assert.equal(b.turn.done?.full_content, tokens(n));
			assert.deepEqual(b.turn.deltas, tokenDeltas(n));
			const rows = await dbMessages(session.id);
			assert.deepEqual(
				rows.filter((m) => m.role === 'assistant').map((m) => [m.content, m.status]),
				[
					[raw, 'complete'],
					[tokens(n), 'complete'],
				],
			);
		});
	}
});

describe('many streams at once', () => {
	test('40 concurrent streams of 10 users, mixed outcomes: each well-formed, each stored as streamed', async () => {
		const users = await Promise.all(Array.from({ length: 10 }, () => registerAndLogin('crowd')));
		const kinds = [
			['plain [[tokens=30]] [[delay=20]]', 'complete', null],
			['split [[tokens=30]] [[delay=10]] [[split=odd]]', 'complete', null],
			['crlf [[tokens=30]] [[crlf]] [[comments]]', 'complete', null],
			['dropped [[tokens=30]] [[delay=10]] [[drop-after=7]]', 'interrupted', 'upstream_dropped'],
			['broken [[tokens=30]] [[delay=10]] [[error-after=5]]', 'error', 'upstream_stream_error'],
		];
		const before = await fakeStats();
		const jobs = Array.from({ length: 40 }, async (_, i) => {
			const u = users[i % users.length];
			const [content, status, code] = kinds[i % kinds.length];
			const session = await createSession(u.token);
			const r = await send(u.token, session.id, content);
			assert.equal(r.status, 200, `${content}: ${r.status} ${r.text}`);
			const { turn } = r;
			if (status === 'complete') {
				assert.equal(turn.done?.full_content, tokens(30), content);
				assert.equal(turn.text, tokens(30), content);
			} else {
				assert.equal(turn.error?.code, code, content);
				assert.equal(turn.error.status, status, content);
			}
			const row = await dbReply(turn.replyId);
			assert.equal(row.status, status, content);
			assert.equal(row.content, turn.text, `${content}: stored as streamed`);
			assert.equal(row.session_id, session.id);
		});
		const results = await Promise.allSettled(jobs);
		const failed = results.filter((x) => x.status === 'rejected');
		assert.deepEqual(failed.map((x) => String(x.reason?.message ?? x.reason)).slice(0, 5), [], `${failed.length} of 40 failed`);
		const afterStats = await waitFor(async () => {
			const s = await fakeStats();
			return s.streams_active === 0 ? s : null;
		}, { what: 'the fake upstream to have no stream left' });
		assert.equal(afterStats.chat_requests - before.chat_requests, 40, 'one upstream call per stream');
	});

	test('after all that, every worker answers: 12 turns in a row complete', async () => {
		const session = await createSession(user.token);
		for (let i = 0; i < 12; i++) {
			const r = await send(user.token, session.id, `turn ${i} [[raw=ok ${i}]]`);
			assert.equal(r.turn.done?.full_content, `ok ${i}`);
		}
	});
});
