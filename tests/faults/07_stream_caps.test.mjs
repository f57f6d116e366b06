// 07_stream_caps.test.mjs: concurrent-stream caps (issue 13's abuse case). One user (or one anonymous address)
// cannot hold more than its share of streams: past the cap a 429 with
// Retry-After, for new replies and resumes alike, while everyone else is
// served as usual; slots come back when the streams end.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import {
	LIMITS,
	SESSIONS,
	api,
	assertJsonError,
	closeDb,
	createSession,
	db,
	mapConcurrent,
	openStream,
	randomClientIp,
	readAll,
	registerAndLogin,
	streamTurn,
	tokensText,
	waitFor,
} from '../e2e/lib.mjs';

after(closeDb);

const HOLD = 'hold [[tokens=400]] [[delay=50]]';   // ~20 s unless cancelled

function assertCapped(r, what) {
	assertJsonError(r, 429, what);
	assert.match(r.json.error, /Too many streams/, what);
	assert.match(r.headers.get('retry-after') ?? '', /^\d+$/, `${what}: Retry-After`);
}

async function slotsOf(holder) {
	const { rows } = await db().query('SELECT count(*)::int AS n FROM stream_slots WHERE holder = $1', [holder]);
	return rows[0].n;
}

describe('streams per user', { skip: LIMITS.streamsUser === 0 && 'streams_per_user is 0 (unlimited)' }, () => {
	test('past the cap: 429 for new replies and resumes; a neighbour is served; slots come back', async () => {
		const cap = LIMITS.streamsUser;
		const a = await registerAndLogin('capa');
		const sessions = [];
		for (let i = 0; i <= cap; i++) sessions.push(await createSession(a.token));
		const held = [];
		try {
			for (let i = 0; i < cap; i++) {
				const controller = new AbortController();
				const response = await openStream(a.token, sessions[i].id, HOLD, { signal: controller.signal });
				assert.equal(response.status, 200, `stream ${i + 1} of ${cap}`);
				held.push({ response, controller });
			}
			assert.equal(await slotsOf(`u:${a.userId}`), cap);

			const over = await api('POST', `${SESSIONS}/${sessions[cap].id}/stream`, { token: a.token, body: { content: 'one too many' } });
			assertCapped(over, 'stream past the cap');
			// What was refused is not stored: no message was added to that session.
			const { rows } = await db().query('SELECT count(*)::int AS n FROM messages WHERE session_id = $1', [sessions[cap].id]);
			assert.equal(rows[0].n, 0, 'a refused stream stores nothing');

			// The attack that used to take every thread: 1,300 resumes at
			// once (64 at a time here, on fresh connections). Each is refused.
			const resumes = await mapConcurrent(Array.from({ length: 1300 }, (_, i) => i), 64, (i) =>
				api('GET', `${SESSIONS}/${sessions[i % cap].id}/stream`, { token: a.token }));
			for (const r of resumes) assertCapped(r, 'resume past the cap');
			const v1 = await api('POST', '/v1/chat/completions', {
				token: a.token,
				body: { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'hi' }] },
			});
			assertCapped(v1, 'OpenAI-compatible stream past the cap');

			// Meanwhile another user is served as usual.
			const b = await registerAndLogin('capb');
			const me = await api('GET', '/api/auth/me', { token: b.token });
			assert.equal(me.status, 200);
			const bs = await createSession(b.token);
			const turn = await streamTurn(b.token, bs.id, 'neighbour [[tokens=5]]');
			assert.equal(turn.text, tokensText(5));
		} finally {
			for (const h of held) {
				h.controller.abort();
				await readAll(h.response).catch(() => {});
			}
			for (let i = 0; i < cap; i++)
				await api('POST', `${SESSIONS}/${sessions[i].id}/cancel`, { token: a.token });
		}
		// Cancelled, the streams end and give their slots back.
		await waitFor(async () => (await slotsOf(`u:${a.userId}`)) === 0, { timeout: 20000, what: 'the slots to be released' });
		const again = await streamTurn(a.token, sessions[cap].id, 'after [[tokens=3]]');
		assert.equal(again.text, tokensText(3));
	});
});

describe('streams per user, all at once', { skip: LIMITS.streamsUser === 0 && 'streams_per_user is 0 (unlimited)' }, () => {
	// Admission takes the slot in the statement that stores the message
	// (migrations/013_stream_statements.sql: slots are numbered, takers do
	// not wait for each other): the cap holds when they all race.
	test('cap + 5 streams started together: exactly cap are served, the rest get 429', async () => {
		const cap = LIMITS.streamsUser;
		const a = await registerAndLogin('capr');
		const sessions = [];
		for (let i = 0; i < cap + 5; i++) sessions.push(await createSession(a.token));
		const controllers = sessions.map(() => new AbortController());
		const responses = await Promise.all(sessions.map((s, i) =>
			openStream(a.token, s.id, HOLD, { signal: controllers[i].signal })));
		try {
			const served = responses.filter((r) => r.status === 200).length;
			assert.equal(served, cap, `served ${served} of ${cap + 5} (statuses ${responses.map((r) => r.status).join(',')})`);
			for (const r of responses.filter((x) => x.status !== 200)) {
				r.json = await r.json();
				assertCapped(r, 'a stream past the cap');
			}
			assert.equal(await slotsOf(`u:${a.userId}`), cap);
		} finally {
			for (let i = 0; i < sessions.length; i++) {
				controllers[i].abort();
				if (responses[i].status === 200) {
					await readAll(responses[i]).catch(() => {});
					await api('POST', `${SESSIONS}/${sessions[i].id}/cancel`, { token: a.token });
				}
			}
		}
		await waitFor(async () => (await slotsOf(`u:${a.userId}`)) === 0, { timeout: 20000, what: 'the slots to be released' });
	});
});

describe('streams per anonymous address', { skip: LIMITS.streamsAnon === 0 && 'streams_per_anon is 0 (unlimited)' }, () => {
	test('one address past its cap gets 429; another address is served; the slots come back', async () => {
		const cap = LIMITS.streamsAnon;
		const ip = randomClientIp();
		const anonStream = (addr, message, signal) => api('POST', '/api/v2/ai/chat/stream', {
			body: { message }, headers: { 'x-forwarded-for': addr }, raw: true, signal,
		});
		const held = [];
		try {
			for (let i = 0; i < cap; i++) {
				const controller = new AbortController();
				const response = await anonStream(ip, 'hold [[tokens=80]] [[delay=50]]', controller.signal);
				assert.equal(response.status, 200, `anonymous stream ${i + 1} of ${cap}`);
				held.push({ response, controller });
			}
			const over = await api('POST', '/api/v2/ai/chat/stream', { body: { message: 'one more' }, headers: { 'x-forwarded-for': ip } });
			assertCapped(over, 'anonymous stream past the cap');
			const other = await anonStream(randomClientIp(), 'another address [[tokens=3]]');
			assert.equal(other.status, 200);
			const text = await other.text();
			assert.match(text, /"done":true/);
		} finally {
			for (const h of held) {
				h.controller.abort();
				await readAll(h.response).catch(() => {});
			}
		}
		// The abandoned replies run to their end (a stored session's reply
		// outlives its client), then give their slots back.
		await waitFor(async () => (await slotsOf(`ip:${ip}`)) === 0, { timeout: 30000, interval: 250, what: 'the slots to come back' });
		const again = await api('POST', '/api/v2/ai/chat/stream', { body: { message: 'again [[tokens=2]]' }, headers: { 'x-forwarded-for': ip } });
		assert.equal(again.status, 200, again.text);
	});
});
