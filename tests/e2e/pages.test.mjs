// pages.test.mjs: reading large data in pages (issue 15): a session's
// messages by ?limit=&before=, the session list by an opaque cursor (and
// the capped offset), the list's search (?q=), and named sessions of
// users and anonymous callers kept apart.
//
// Big fixtures are written with SQL (hundreds of messages would take
// hundreds of turns); every read goes through nginx as a client's would.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
	SESSIONS,
	api,
	assertJsonError,
	closeDb,
	createSession,
	db,
	randomClientIp,
	registerAndLogin,
	streamTurn,
} from './lib.mjs';

after(closeDb);

// n messages appended to a session, alternating user / assistant, with
// distinct texts "m<i>"; returns their ids oldest first.
async function addMessages(sessionId, n) {
	const { rows } = await db().query(
		`INSERT INTO messages (session_id, role, content, model)
		 SELECT $1, CASE WHEN g % 2 = 1 THEN 'user' ELSE 'assistant' END, 'm' || g,
		        CASE WHEN g % 2 = 0 THEN 'gpt-test' END
		 FROM generate_series(1, $2::int) g ORDER BY g RETURNING id::text`,
		[sessionId, n],
	);
	return rows.map((r) => r.id);
}

describe('GET a session: its messages in pages', () => {
	let alice;
	let bob;
	let big;
	let ids;

	before(async () => {
		[alice, bob] = await Promise.all([registerAndLogin('pagesa'), registerAndLogin('pagesb')]);
		big = await createSession(alice.token, { title: 'long one' });
		ids = await addMessages(big.id, 130);
	});

	test('a small session: every message, has_more false, the shape of seed 000', async () => {
		const s = await createSession(alice.token, { title: 'short', initial_message: 'hello there' });
		const turn = await streamTurn(alice.token, s.id);
		assert.ok(turn.done, 'the turn completed');
		const r = await api('GET', `${SESSIONS}/${s.id}`, { token: alice.token });
		assert.equal(r.status, 200);
		assert.deepEqual(Object.keys(r.json).sort(),
			['created_at', 'has_more', 'id', 'messages', 'title', 'updated_at', 'user_id']);
		assert.equal(r.json.has_more, false);
		assert.deepEqual(r.json.messages.map((m) => m.role), ['user', 'assistant']);
		assert.equal(r.json.messages[0].content, 'hello there');
		for (const m of r.json.messages)
			assert.deepEqual(Object.keys(m).sort(), ['content', 'created_at', 'error', 'id', 'model', 'role', 'status']);
	});

	test('by default the newest 50, oldest first', async () => {
		const r = await api('GET', `${SESSIONS}/${big.id}`, { token: alice.token });
		assert.equal(r.status, 200);
		assert.equal(r.json.messages.length, 50);
		assert.deepEqual(r.json.messages.map((m) => m.id), ids.slice(-50));
		assert.equal(r.json.messages.at(-1).content, 'm130');
		assert.equal(r.json.has_more, true);
		assert.equal(r.json.title, 'long one');
	});

	test('before= pages back to the first message, none twice, none missed', async () => {
		const seen = [];
		let cursor = null;
		let pages = 0;
		for (;;) {
			const q = cursor ? `?limit=40&before=${cursor}` : '?limit=40';
			const r = await api('GET', `${SESSIONS}/${big.id}${q}`, { token: alice.token });
			assert.equal(r.status, 200, r.text);
			pages++;
			seen.unshift(...r.json.messages.map((m) => m.id));
			if (!r.json.has_more) break;
			assert.equal(r.json.messages.length, 40);
			cursor = r.json.messages[0].id;
			assert.ok(pages < 10, 'pages end');
		}
		assert.equal(pages, 4);   // 40 + 40 + 40 + 10
		assert.deepEqual(seen, ids);
	});

	test('exactly limit older messages left: has_more false', async () => {
		const r = await api('GET', `${SESSIONS}/${big.id}?limit=10&before=${ids[10]}`, { token: alice.token });
		assert.equal(r.status, 200);
		assert.deepEqual(r.json.messages.map((m) => m.id), ids.slice(0, 10));
		assert.equal(r.json.has_more, false);
		const none = await api('GET', `${SESSIONS}/${big.id}?before=${ids[0]}`, { token: alice.token });
		assert.equal(none.status, 200);
		assert.deepEqual(none.json.messages, []);
		assert.equal(none.json.has_more, false);
	});

	test('limit up to 200', async () => {
		const r = await api('GET', `${SESSIONS}/${big.id}?limit=200`, { token: alice.token });
		assert.equal(r.status, 200);
		assert.equal(r.json.messages.length, 130);
		assert.equal(r.json.has_more, false);
	});

	test('bad limit or before: 400 JSON naming the parameter', async () => {
		for (const q of ['limit=0', 'limit=201', 'limit=-1', 'limit=abc', 'limit=2.5', 'before=nope',
			'before=', 'before=123']) {
			const r = await api('GET', `${SESSIONS}/${big.id}?${q}`, { token: alice.token });
			assertJsonError(r, 400, q);
			assert.match(r.json.error, /^(limit|before) /, q);
		}
	});

	test('before: a message of another session is 400, another user\'s session 404', async () => {
		const other = await createSession(alice.token, { initial_message: 'elsewhere' });
		const { rows } = await db().query('SELECT id::text FROM messages WHERE session_id = $1', [other.id]);
		const r = await api('GET', `${SESSIONS}/${big.id}?before=${rows[0].id}`, { token: alice.token });
		assertJsonError(r, 400);
		assert.equal(r.json.error, 'before is not a message of this session');
		const unknown = await api('GET', `${SESSIONS}/${big.id}?before=00000000-0000-4000-8000-000000000000`,
			{ token: alice.token });
		assertJsonError(unknown, 400);
		const stranger = await api('GET', `${SESSIONS}/${big.id}?before=${ids[5]}`, { token: bob.token });
		assertJsonError(stranger, 404);
		assert.equal(stranger.json.error, 'Session not found');
	});
});

describe('the session list: cursor, capped offset, search', () => {
	let carol;
	let dave;
	let made;

	before(async () => {
		[carol, dave] = await Promise.all([registerAndLogin('pagesc'), registerAndLogin('pagesd')]);
		made = [];
		for (let i = 0; i < 9; i++) made.push(await createSession(carol.token, { title: `plain ${i}` }));
		// Three sessions at the very same instant: the cursor must order
		// them by id and neither repeat nor skip one across pages.
		await db().query(
			`UPDATE chat_sessions SET updated_at = '2026-01-01T00:00:00.123456Z' WHERE id = ANY($1::uuid[])`,
			[[made[2].id, made[3].id, made[4].id]],
		);
	});

	async function walk(token, query, limit) {
		const seen = [];
		let cursor = null;
		for (let page = 0; page < 50; page++) {
			const c = cursor ? `&cursor=${encodeURIComponent(cursor)}` : '';
			const r = await api('GET', `${SESSIONS}?limit=${limit}${query}${c}`, { token });
			assert.equal(r.status, 200, r.text);
			assert.equal(r.json.limit, limit);
			seen.push(...r.json.sessions.map((s) => s.id));
			if (r.json.next_cursor === null) {
				assert.equal(r.json.has_more, false);
				return seen;
			}
			assert.equal(r.json.has_more, true);
			assert.equal(typeof r.json.next_cursor, 'string');
			cursor = r.json.next_cursor;
		}
		throw new Error('the cursor never ended');
	}

	test('the cursor walks the whole list in the offset order, ties included', async () => {
		const all = await api('GET', `${SESSIONS}?limit=100`, { token: carol.token });
		assert.equal(all.status, 200);
		assert.equal(all.json.next_cursor, null);
		const order = all.json.sessions.map((s) => s.id);
		assert.equal(order.length, 9);
		for (const limit of [1, 2, 4, 9])
			assert.deepEqual(await walk(carol.token, '', limit), order, `limit ${limit}`);
		// The first page by cursor is the offset 0 page; an offset page hands
		// out a cursor too.
		const byOffset = await api('GET', `${SESSIONS}?limit=2&offset=2`, { token: carol.token });
		assert.deepEqual(byOffset.json.sessions.map((s) => s.id), order.slice(2, 4));
		const next = await api('GET', `${SESSIONS}?limit=2&cursor=${encodeURIComponent(byOffset.json.next_cursor)}`,
			{ token: carol.token });
		assert.deepEqual(next.json.sessions.map((s) => s.id), order.slice(4, 6));
	});

	test('a cursor is only good for its owner\'s list', async () => {
		const p = await api('GET', `${SESSIONS}?limit=1`, { token: carol.token });
		const r = await api('GET', `${SESSIONS}?limit=5&cursor=${encodeURIComponent(p.json.next_cursor)}`,
			{ token: dave.token });
		assert.equal(r.status, 200);
		assert.deepEqual(r.json.sessions, []);
	});

	test('offset is capped at 1000; past it a 400 that names the cursor', async () => {
		const ok = await api('GET', `${SESSIONS}?offset=1000`, { token: carol.token });
		assert.equal(ok.status, 200);
		assert.deepEqual(ok.json.sessions, []);
		const r = await api('GET', `${SESSIONS}?offset=1001`, { token: carol.token });
		assertJsonError(r, 400);
		assert.match(r.json.error, /offset .*cursor/);
	});

	test('bad cursors and bad combinations: 400 JSON', async () => {
		const p = await api('GET', `${SESSIONS}?limit=1`, { token: carol.token });
		const good = encodeURIComponent(p.json.next_cursor);
		for (const q of ['cursor=', 'cursor=abc', 'cursor=123', 'cursor=1_2', 'cursor=-1_00000000-0000-4000-8000-000000000000',
			`cursor=99999999999999999999_${made[0].id}`, `cursor=${good}&offset=3`, 'q=', 'q=%20%20',
			`q=${'x'.repeat(201)}`, 'q=a&offset=2', 'q=%FF']) {
			const r = await api('GET', `${SESSIONS}?${q}`, { token: carol.token });
			assertJsonError(r, 400, q);
		}
	});

	test('search finds titles and message text, only the caller\'s, with the cursor', async () => {
		const t = await createSession(carol.token, { title: 'Quokka travel notes' });
		const m = await createSession(carol.token, { title: 'untitled', initial_message: 'where do quokkas and quokka live' });
		const reply = await createSession(carol.token, { title: 'other', initial_message: 'say something' });
		await streamTurn(carol.token, reply.id, 'tell me about wombats');
		const foreign = await createSession(dave.token, { title: 'quokka of dave' });

		const r = await api('GET', `${SESSIONS}?q=quokka`, { token: carol.token });
		assert.equal(r.status, 200, r.text);
		assert.deepEqual(r.json.sessions.map((s) => s.id).sort(), [t.id, m.id].sort());
		assert.ok(!r.json.sessions.some((s) => s.id === foreign.id));
		// Every word must match; case does not matter.
		const both = await api('GET', `${SESSIONS}?q=${encodeURIComponent('QUOKKA travel')}`, { token: carol.token });
		assert.deepEqual(both.json.sessions.map((s) => s.id), [t.id]);
		// A reply's text is searchable once it is complete (the fake
		// upstream echoes "You said: ...").
		const said = await api('GET', `${SESSIONS}?q=wombats`, { token: carol.token });
		assert.deepEqual(said.json.sessions.map((s) => s.id), [reply.id]);
		const none = await api('GET', `${SESSIONS}?q=platypus`, { token: carol.token });
		assert.deepEqual(none.json.sessions, []);
		assert.equal(none.json.next_cursor, null);
		// Paged by cursor, one at a time: the same two.
		assert.deepEqual((await walk(carol.token, '&q=quokka', 1)).sort(), [t.id, m.id].sort());
		// A deleted session leaves the results.
		assert.equal((await api('DELETE', `${SESSIONS}/${m.id}`, { token: carol.token })).status, 204);
		const after = await api('GET', `${SESSIONS}?q=quokka`, { token: carol.token });
		assert.deepEqual(after.json.sessions.map((s) => s.id), [t.id]);
	});
});

describe('named sessions (seed 003): users and anonymous callers apart', () => {
	const ROUTE = '/api/v2/ai/chat/stream';

	async function named(token, name, ip) {
		const headers = { 'x-forwarded-for': ip };
		const r = await api('POST', ROUTE, { token, body: { message: 'hi [[tokens=1]]', sessionId: name }, headers });
		assert.equal(r.status, 200, r.text);
		const { rows } = await db().query(
			`SELECT id::text, user_id::text FROM chat_sessions
			  WHERE external_id = $1 OR external_id = $2 ORDER BY created_at`,
			[name, `${ip}/${name}`],
		);
		return rows;
	}

	test('one name: the user\'s session and the anonymous one stay two, each found again', async () => {
		const erin = await registerAndLogin('pagese');
		const ip = randomClientIp();
		const name = `shared-name-${Date.now()}`;
		const first = await named(erin.token, name, ip);
		assert.equal(first.length, 1);
		assert.equal(first[0].user_id, erin.userId);
		const anon = await named(null, name, ip);
		assert.equal(anon.length, 2);
		assert.equal(anon[1].user_id, null);
		// Again, both: found, not created anew.
		assert.equal((await named(erin.token, name, ip)).length, 2);
		assert.equal((await named(null, name, ip)).length, 2);
		const { rows } = await db().query('SELECT count(*)::int AS n FROM messages WHERE session_id = $1', [anon[1].id]);
		assert.equal(rows[0].n, 4, 'two turns in the anonymous session');
	});
});
