// sessions.test.mjs: SPEC §3 (seed 000) sessions CRUD, ownership, and the
// router's 404/405 answers.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
	BASE_URL,
	HTTP_URL,
	ISO_MS_RE,
	SESSIONS,
	UUID_RE,
	api,
	closeDb,
	createSession,
	db,
	dbMessages,
	fakeStats,
	isErrorBody,
	registerAndLogin,
	sleep,
} from './lib.mjs';

after(closeDb);

const NOT_FOUND = { error: 'Session not found' };

function assertSessionShape(s, userId) {
	assert.match(s.id, UUID_RE, `id ${s.id}`);
	assert.equal(s.user_id, userId);
	assert.equal(typeof s.title, 'string');
	assert.match(s.created_at, ISO_MS_RE, `created_at ${s.created_at}`);
	assert.match(s.updated_at, ISO_MS_RE, `updated_at ${s.updated_at}`);
	assert.ok(Date.parse(s.updated_at) >= Date.parse(s.created_at), 'updated_at >= created_at');
}

function assertNotFound(r, what) {
	assert.equal(r.status, 404, `${what}: status (body ${r.text})`);
	assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${what}: content-type`);
	assert.deepEqual(r.json, NOT_FOUND, `${what}: body`);
}

describe('create', () => {
	let alice;
	before(async () => {
		alice = await registerAndLogin('alice');
	});

	test('with a title: 201 and the seed-000 shape', async () => {
		const r = await api('POST', SESSIONS, { token: alice.token, body: { title: 'Mi conversación' } });
		assert.equal(r.status, 201, r.text);
		assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
		assertSessionShape(r.json, alice.userId);
		assert.equal(r.json.title, 'Mi conversación');
		assert.deepEqual(Object.keys(r.json).sort(), ['created_at', 'id', 'title', 'updated_at', 'user_id']);
		assert.equal(r.json.created_at, r.json.updated_at, 'a new session was never updated');
		assert.ok(Math.abs(Date.parse(r.json.created_at) - Date.now()) < 120000, 'created_at is now');
		const { rows } = await db().query('SELECT user_id::text, title FROM chat_sessions WHERE id = $1', [r.json.id]);
		assert.deepEqual(rows, [{ user_id: alice.userId, title: 'Mi conversación' }]);
	});

	test('with no body at all: 201, a default title, no messages', async () => {
		const r = await api('POST', SESSIONS, { token: alice.token });
		assert.equal(r.status, 201, r.text);
		assertSessionShape(r.json, alice.userId);
		assert.ok(r.json.title.length > 0, 'a default title');
		const got = await api('GET', `${SESSIONS}/${r.json.id}`, { token: alice.token });
		assert.deepEqual(got.json.messages, []);
	});

	test('with an empty JSON object: 201', async () => {
		const r = await api('POST', SESSIONS, { token: alice.token, body: {} });
		assert.equal(r.status, 201, r.text);
		assertSessionShape(r.json, alice.userId);
	});

	test('over plain HTTP too', async () => {
		const r = await api('POST', SESSIONS, { base: HTTP_URL, token: alice.token, body: { title: 'plain' } });
		assert.equal(r.status, 201, r.text);
		assert.equal(r.json.title, 'plain');
	});

	test('initial_message becomes the first user message', async () => {
		const initial = 'Hola, ¿cómo puedo mejorar mi productividad?';
		const s = await createSession(alice.token, { title: 'Con mensaje', initial_message: initial });
		const r = await api('GET', `${SESSIONS}/${s.id}`, { token: alice.token });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.messages.length, 1);
		const [m] = r.json.messages;
		assert.equal(m.role, 'user');
		assert.equal(m.content, initial);
		assert.equal(m.status, 'complete');
		assert.match(m.id, UUID_RE);
		assert.match(m.created_at, ISO_MS_RE);
		const rows = await dbMessages(s.id);
		assert.deepEqual(
			rows.map((x) => [x.role, x.content]),
			[['user', initial]],
		);
	});

	test('bad fields: 400 JSON and nothing stored', async () => {
		const before = await db().query('SELECT count(*)::int AS n FROM chat_sessions WHERE user_id = $1', [
			alice.userId,
		]);
		for (const [what, body, headers] of [
			['numeric title', { title: 42 }],
			['array title', { title: ['a'] }],
			['numeric initial_message', { initial_message: 7 }],
			['title too long', { title: 'x'.repeat(5000) }],
			['malformed JSON', '{"title": '],
			['array body', '[]'],
		]) {
			const r = await api('POST', SESSIONS, { token: alice.token, body, headers });
			assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
			assert.ok(isErrorBody(r.json), `${what}: ${r.text}`);
		}
		const ct = await api('POST', SESSIONS, {
			token: alice.token,
			body: '{"title":"x"}',
			headers: { 'content-type': 'text/plain' },
		});
		assert.equal(ct.status, 415, ct.text);
		assert.ok(isErrorBody(ct.json));
		const afterCount = await db().query('SELECT count(*)::int AS n FROM chat_sessions WHERE user_id = $1', [
			alice.userId,
		]);
		assert.equal(afterCount.rows[0].n, before.rows[0].n, 'no session was created by a bad request');
	});
});

describe('list', () => {
	let bob;
	const made = [];
	before(async () => {
		bob = await registerAndLogin('bob');
		for (const title of ['first', 'second', 'third', 'fourth', 'fifth']) {
			made.push(await createSession(bob.token, { title }));
			await sleep(5); // distinct timestamps (ms resolution)
		}
		// Someone else's sessions never show up in bob's list.
		const eve = await registerAndLogin('eve');
		await createSession(eve.token, { title: 'not bob’s' });
	});

	test("the caller's sessions, newest first", async () => {
		const r = await api('GET', SESSIONS, { token: bob.token });
		assert.equal(r.status, 200, r.text);
		assert.ok(Array.isArray(r.json.sessions), r.text);
		assert.deepEqual(
			r.json.sessions.map((s) => s.title),
			['fifth', 'fourth', 'third', 'second', 'first'],
		);
		assert.equal(r.json.has_more, false);
		for (const s of r.json.sessions) assertSessionShape(s, bob.userId);
		assert.deepEqual(r.json.sessions[0], made[4], 'list items equal what create returned');
	});

	test('pagination with limit and offset', async () => {
		const p1 = await api('GET', `${SESSIONS}?limit=2`, { token: bob.token });
		assert.equal(p1.status, 200, p1.text);
		assert.deepEqual(
			p1.json.sessions.map((s) => s.title),
			['fifth', 'fourth'],
		);
		assert.equal(p1.json.limit, 2);
		assert.equal(p1.json.offset, 0);
		assert.equal(p1.json.has_more, true);
		const p2 = await api('GET', `${SESSIONS}?limit=2&offset=2`, { token: bob.token });
		assert.deepEqual(
			p2.json.sessions.map((s) => s.title),
			['third', 'second'],
		);
		assert.equal(p2.json.offset, 2);
		assert.equal(p2.json.has_more, true);
		const p3 = await api('GET', `${SESSIONS}?limit=2&offset=4`, { token: bob.token });
		assert.deepEqual(
			p3.json.sessions.map((s) => s.title),
			['first'],
		);
		assert.equal(p3.json.has_more, false);
		const past = await api('GET', `${SESSIONS}?limit=2&offset=50`, { token: bob.token });
		assert.equal(past.status, 200);
		assert.deepEqual(past.json.sessions, []);
		assert.equal(past.json.has_more, false);
		const exact = await api('GET', `${SESSIONS}?limit=5`, { token: bob.token });
		assert.equal(exact.json.sessions.length, 5);
		assert.equal(exact.json.has_more, false, 'exactly limit sessions left: no more');
	});

	test('bad limit/offset: 400 JSON', async () => {
		for (const q of ['limit=0', 'limit=-1', 'limit=abc', 'limit=101', 'offset=-3', 'offset=x', 'limit=2.5']) {
			const r = await api('GET', `${SESSIONS}?${q}`, { token: bob.token });
			assert.equal(r.status, 400, `${q}: ${r.status} ${r.text}`);
			assert.ok(isErrorBody(r.json), `${q}: ${r.text}`);
		}
	});

	test('a new user has an empty list', async () => {
		const fresh = await registerAndLogin('fresh');
		const r = await api('GET', SESSIONS, { token: fresh.token });
		assert.equal(r.status, 200, r.text);
		assert.deepEqual(r.json.sessions, []);
		assert.equal(r.json.has_more, false);
	});
});

describe('get, rename, delete', () => {
	let carol;
	before(async () => {
		carol = await registerAndLogin('carol');
	});

	test('get: the session with its (empty) messages', async () => {
		const s = await createSession(carol.token, { title: 'to get' });
		const r = await api('GET', `${SESSIONS}/${s.id}`, { token: carol.token });
		assert.equal(r.status, 200, r.text);
		assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
		// has_more: whether older messages exist than the page holds
		// (pages.test.mjs).
		const { messages, has_more: more, ...rest } = r.json;
		assert.deepEqual(rest, s);
		assert.deepEqual(messages, []);
		assert.equal(more, false);
	});

	test('rename: 200 with the new title, updated_at moves, GET and list agree', async () => {
		const s = await createSession(carol.token, { title: 'old name' });
		await sleep(20);
		const r = await api('PATCH', `${SESSIONS}/${s.id}`, { token: carol.token, body: { title: 'new name ✓' } });
		assert.equal(r.status, 200, r.text);
		assertSessionShape(r.json, carol.userId);
		assert.equal(r.json.id, s.id);
		assert.equal(r.json.title, 'new name ✓');
		assert.equal(r.json.created_at, s.created_at);
		assert.ok(Date.parse(r.json.updated_at) > Date.parse(s.updated_at), 'updated_at moved forward');
		const got = await api('GET', `${SESSIONS}/${s.id}`, { token: carol.token });
		assert.equal(got.json.title, 'new name ✓');
		const list = await api('GET', SESSIONS, { token: carol.token });
		assert.equal(list.json.sessions.find((x) => x.id === s.id)?.title, 'new name ✓');
	});

	test('rename: bad bodies are 400/415 JSON and change nothing', async () => {
		const s = await createSession(carol.token, { title: 'stays' });
		for (const [what, body] of [
			['empty title', { title: '' }],
			['no title', {}],
			['numeric title', { title: 3 }],
			['null title', { title: null }],
			['malformed JSON', '{"title"'],
			['no body', undefined],
		]) {
			const r = await api('PATCH', `${SESSIONS}/${s.id}`, { token: carol.token, body });
			assert.equal(r.status, 400, `${what}: ${r.status} ${r.text}`);
			assert.ok(isErrorBody(r.json), `${what}: ${r.text}`);
		}
		const ct = await api('PATCH', `${SESSIONS}/${s.id}`, {
			token: carol.token,
			body: '{"title":"x"}',
			headers: { 'content-type': 'text/plain' },
		});
		assert.equal(ct.status, 415, ct.text);
		const got = await api('GET', `${SESSIONS}/${s.id}`, { token: carol.token });
		assert.equal(got.json.title, 'stays');
	});

	test('delete: 204 with no body, then 404 everywhere, messages gone from PostgreSQL', async () => {
		const s = await createSession(carol.token, { title: 'doomed', initial_message: 'bye' });
		assert.equal((await dbMessages(s.id)).length, 1);
		const r = await api('DELETE', `${SESSIONS}/${s.id}`, { token: carol.token });
		assert.equal(r.status, 204, r.text);
		assert.equal(r.text, '');
		assertNotFound(await api('GET', `${SESSIONS}/${s.id}`, { token: carol.token }), 'GET after delete');
		assertNotFound(
			await api('PATCH', `${SESSIONS}/${s.id}`, { token: carol.token, body: { title: 'x' } }),
			'PATCH after delete',
		);
		assertNotFound(await api('DELETE', `${SESSIONS}/${s.id}`, { token: carol.token }), 'DELETE again');
		assertNotFound(
			await api('POST', `${SESSIONS}/${s.id}/stream`, { token: carol.token, body: { content: 'hi' } }),
			'stream after delete',
		);
		const list = await api('GET', SESSIONS, { token: carol.token });
		assert.ok(!list.json.sessions.some((x) => x.id === s.id), 'not listed any more');
		const { rows } = await db().query('SELECT count(*)::int AS n FROM chat_sessions WHERE id = $1', [s.id]);
		assert.equal(rows[0].n, 0);
		assert.deepEqual(await dbMessages(s.id), []);
	});

	test('an unknown (well-formed) id: 404 Session not found', async () => {
		const id = '00000000-0000-4000-8000-000000000000';
		assertNotFound(await api('GET', `${SESSIONS}/${id}`, { token: carol.token }), 'GET');
		assertNotFound(await api('PATCH', `${SESSIONS}/${id}`, { token: carol.token, body: { title: 'x' } }), 'PATCH');
		assertNotFound(await api('DELETE', `${SESSIONS}/${id}`, { token: carol.token }), 'DELETE');
		assertNotFound(
			await api('POST', `${SESSIONS}/${id}/stream`, { token: carol.token, body: { content: 'x' } }),
			'stream',
		);
	});

	test('a malformed id: 404 JSON', async () => {
		for (const id of ['not-a-uuid', '12345', 'zzzzzzzz-zzzz-zzzz-zzzz-zzzzzzzzzzzz', 'abc%21', "1'%20OR%20'1'='1"]) {
			for (const [method, path, body] of [
				['GET', `${SESSIONS}/${id}`],
				['PATCH', `${SESSIONS}/${id}`, { title: 'x' }],
				['DELETE', `${SESSIONS}/${id}`],
				['POST', `${SESSIONS}/${id}/stream`, { content: 'x' }],
			]) {
				const r = await api(method, path, { token: carol.token, body });
				assert.equal(r.status, 404, `${method} ${path}: ${r.status} ${r.text}`);
				assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${method} ${path}`);
				assert.ok(isErrorBody(r.json), `${method} ${path}: ${r.text}`);
			}
		}
	});
});

describe("another user's session", () => {
	let owner;
	let intruder;
	let session;
	before(async () => {
		owner = await registerAndLogin('owner');
		intruder = await registerAndLogin('intruder');
		session = await createSession(owner.token, { title: 'private', initial_message: 'secret question' });
	});

	test('GET/PATCH/DELETE/stream are 404 Session not found, exactly like an unknown id', async () => {
		const statsBefore = await fakeStats();
		assertNotFound(await api('GET', `${SESSIONS}/${session.id}`, { token: intruder.token }), 'GET');
		assertNotFound(
			await api('PATCH', `${SESSIONS}/${session.id}`, { token: intruder.token, body: { title: 'pwned' } }),
			'PATCH',
		);
		assertNotFound(await api('DELETE', `${SESSIONS}/${session.id}`, { token: intruder.token }), 'DELETE');
		assertNotFound(
			await api('POST', `${SESSIONS}/${session.id}/stream`, {
				token: intruder.token,
				body: { content: 'intruding' },
			}),
			'stream with content',
		);
		assertNotFound(
			await api('POST', `${SESSIONS}/${session.id}/stream`, { token: intruder.token }),
			'stream without content (would answer the initial message)',
		);
		const statsAfter = await fakeStats();
		assert.equal(statsAfter.chat_requests, statsBefore.chat_requests, 'no upstream call was made');
	});

	test('the session is untouched and not in the intruder’s list', async () => {
		const r = await api('GET', `${SESSIONS}/${session.id}`, { token: owner.token });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.title, 'private');
		assert.deepEqual(
			r.json.messages.map((m) => [m.role, m.content]),
			[['user', 'secret question']],
		);
		const list = await api('GET', SESSIONS, { token: intruder.token });
		assert.deepEqual(list.json.sessions, []);
	});
});

describe('router', () => {
	let dave;
	before(async () => {
		dave = await registerAndLogin('dave');
	});

	test('an unknown route under /api is 404 JSON', async () => {
		for (const [method, path] of [
			['GET', '/api/nope'],
			['POST', '/api/chat/realtime/nope'],
			['GET', `${SESSIONS}/00000000-0000-4000-8000-000000000000/nope`],
			['GET', '/api/auth'],
		]) {
			const r = await api(method, path, { token: dave.token });
			assert.equal(r.status, 404, `${method} ${path}: ${r.status} ${r.text}`);
			assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${method} ${path}`);
			assert.ok(isErrorBody(r.json), `${method} ${path}: ${r.text}`);
		}
	});

	test('a body over the limit is 413 JSON', async () => {
		const before = await db().query('SELECT count(*)::int AS n FROM chat_sessions WHERE user_id = $1', [
			dave.userId,
		]);
		const big = JSON.stringify({ title: 'big', initial_message: 'x'.repeat(2 * 1024 * 1024) });
		for (const base of [BASE_URL, HTTP_URL]) {
			const r = await api('POST', SESSIONS, { base, token: dave.token, body: big });
			assert.equal(r.status, 413, `${base}: ${r.status} ${r.text.slice(0, 200)}`);
			assert.match(r.headers.get('content-type') ?? '', /^application\/json/, base);
			assert.ok(isErrorBody(r.json), `${base}: ${r.text.slice(0, 200)}`);
		}
		const afterCount = await db().query('SELECT count(*)::int AS n FROM chat_sessions WHERE user_id = $1', [
			dave.userId,
		]);
		assert.equal(afterCount.rows[0].n, before.rows[0].n);
	});

	test('a wrong method is 405 JSON with Allow', async () => {
		const id = '00000000-0000-4000-8000-000000000000';
		for (const [method, path, allowed] of [
			['PUT', SESSIONS, ['GET', 'POST']],
			['DELETE', SESSIONS, ['GET', 'POST']],
			['PUT', `${SESSIONS}/${id}`, ['DELETE', 'GET', 'PATCH']],
			['POST', `${SESSIONS}/${id}`, ['DELETE', 'GET', 'PATCH']],
			['GET', '/api/auth/login', ['POST']],
			['DELETE', '/auth/login', ['POST']],
			['POST', '/api/auth/me', ['GET']],
		]) {
			const r = await api(method, path, { token: dave.token });
			assert.equal(r.status, 405, `${method} ${path}: ${r.status} ${r.text}`);
			assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${method} ${path}`);
			assert.ok(isErrorBody(r.json), `${method} ${path}: ${r.text}`);
			const allow = (r.headers.get('allow') ?? '')
				.split(',')
				.map((x) => x.trim())
				.filter(Boolean);
			for (const m of allowed) assert.ok(allow.includes(m), `${method} ${path}: Allow "${allow}" lacks ${m}`);
			assert.ok(!allow.includes(method), `${method} ${path}: Allow "${allow}" lists ${method}`);
		}
	});
});
