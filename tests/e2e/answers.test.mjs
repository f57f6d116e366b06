// answers.test.mjs: details of what clients and operators see (issue 17):
// every JSON answer is compact, a reply's created_at follows its message's,
// and a user's Stop is logged as `cancelled` at info, not as a warning.
import assert from 'node:assert/strict';
import { existsSync, readFileSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
	LOG_DIR,
	SESSIONS,
	api,
	checkSeed000,
	closeDb,
	createSession,
	openStream,
	readAll,
	registerAndLogin,
	sleep,
	streamTurn,
	waitFor,
} from './lib.mjs';

after(closeDb);

/** The answer's text is exactly what JSON.stringify writes: no spaces between tokens. */
function assertCompact(r, what) {
	assert.ok(r.json !== undefined, `${what}: JSON (${r.status} ${r.text.slice(0, 200)})`);
	assert.equal(r.text, JSON.stringify(r.json), `${what}: compact`);
}

describe('JSON answers', () => {
	let user;
	before(async () => {
		user = await registerAndLogin('answers');
	});

	test('register, me, sessions and the transcript are compact like every other answer', async () => {
		const username = `compact_${Date.now().toString(36)}`;
		const reg = await api('POST', '/api/auth/register', {
			body: { username, password: 'correct horse', email: 'a@example.org' },
		});
		assert.equal(reg.status, 201, reg.text);
		assertCompact(reg, 'register');
		const login = await api('POST', '/api/auth/login', { body: { username, password: 'correct horse' } });
		assertCompact(login, 'login');
		const token = login.json.access_token;
		assertCompact(await api('GET', '/api/auth/me', { token }), 'me');
		const created = await api('POST', SESSIONS, { token, body: { title: 'a title, with: punctuation' } });
		assertCompact(created, 'session create');
		assert.equal(created.json.title, 'a title, with: punctuation', 'spaces inside strings are kept');
		await streamTurn(token, created.json.id, 'hello,  "spaced"  world');
		const transcript = await api('GET', `${SESSIONS}/${created.json.id}`, { token });
		assertCompact(transcript, 'transcript');
		assert.equal(transcript.json.messages[0].content, 'hello,  "spaced"  world');
		assertCompact(await api('GET', SESSIONS, { token }), 'session list');
		assertCompact(await api('PATCH', `${SESSIONS}/${created.json.id}`, { token, body: { title: 'x y' } }), 'rename');
		assertCompact(await api('GET', '/api/settings', { token }), 'settings');
		assertCompact(await api('GET', `${SESSIONS}/00000000-0000-0000-0000-000000000000`, { token }), '404');
	});

	test('a reply is created after the message it answers', async () => {
		const session = await createSession(user.token);
		for (const text of ['first', 'second']) await streamTurn(user.token, session.id, text);
		const r = await api('GET', `${SESSIONS}/${session.id}`, { token: user.token });
		const times = r.json.messages.map((m) => m.created_at);
		assert.equal(times.length, 4, r.text);
		for (let i = 1; i < times.length; i++)
			assert.ok(times[i - 1] < times[i], `message ${i} (${times[i]}) after message ${i - 1} (${times[i - 1]})`);
	});
});

describe('logs', () => {
	test('a user’s Stop is logged at info as cancelled, with no warning about it', async () => {
		const user = await registerAndLogin('stoplog');
		const file = path.join(LOG_DIR, 'chatd.log');
		assert.ok(existsSync(file), `${file} exists`);
		const from = statSync(file).size;
		const session = await createSession(user.token);
		const reading = readAll(await openStream(user.token, session.id, 'stop me [[tokens=100]] [[delay=50]]'));
		await sleep(600);
		const c = await api('POST', `${SESSIONS}/${session.id}/cancel`, { token: user.token });
		assert.equal(c.status, 200, c.text);
		const turn = checkSeed000((await reading).events);
		assert.equal(turn.done?.status, 'cancelled');
		const fresh = () => readFileSync(file).subarray(from).toString('utf8').split('\n');
		// The upstream transfer's end is logged once the loop has closed it.
		const lines = await waitFor(
			() => {
				const l = fresh();
				return l.some((x) => x.includes('upstream transfer cancelled')) ? l : null;
			},
			{ timeout: 5000, what: 'the cancelled transfer in chatd.log' },
		);
		const mine = lines.filter((l) => l.includes(turn.replyId) || l.includes('upstream transfer'));
		assert.ok(
			mine.some((l) => /level=info/.test(l) && l.includes(`reply ${turn.replyId}: cancelled`)),
			`an info line "reply … cancelled":\n${mine.join('\n')}`,
		);
		const warnings = lines.filter((l) => /level=(warn|error)/.test(l));
		assert.deepEqual(warnings.filter((l) => /Failed writing|cancel/i.test(l)), [], 'no warning about the Stop');
	});
});
