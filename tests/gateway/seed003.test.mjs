// seed003.test.mjs: seed 003 over Socket.IO with the stock socket.io-client:
// the seed's Node test and client example as written (URL and token
// substituted); ai:chat {message, sessionId?, token?} → ai:stream
// {content, sessionId}, ai:complete {response, sessionId}, ai:error
// {error}; messages persist like POST /api/v2/ai/chat/stream; the token
// authenticates (in the event, or in the CONNECT auth payload); a bad
// token gets ai:error "Unauthorized" and nothing is stored; the chat rate
// limit applies; a reply goes on (and is stored) when its socket leaves.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { UUID_RE, claims, closeDb, db, dbMessages, registerAndLogin, signJwt } from '../e2e/lib.mjs';
import {
	BASE_URL,
	TRANSPORTS,
	collect003,
	connect,
	freshIp,
	startGateway,
	transportName,
	until,
} from './lib.mjs';
import { runSnippet } from './snippets.mjs';

after(closeDb);

let user;
before(async () => {
	user = await registerAndLogin('gw003');
});

const tokens = (n) => Array.from({ length: n }, (_, i) => `t${i}`).join(' ');

/** Sends ai:chat and collects the answer. */
async function chat(socket, payload) {
	const done = collect003(socket);
	socket.emit('ai:chat', payload);
	return done;
}

/** The session's row: owner and messages. */
async function sessionRow(id) {
	const { rows } = await db().query('SELECT id::text, user_id::text, external_id FROM chat_sessions WHERE id = $1', [id]);
	return rows[0];
}

describe('seed 003 client snippets, unchanged but for the URL and token', () => {
	test('the Node.js test', async () => {
		const code = `// Node.js test
const io = require('socket.io-client');
const socket = io('${BASE_URL}');

socket.emit('ai:chat', { message: 'Hello' });
socket.on('ai:stream', console.log);
socket.on('ai:complete', console.log);
`;
		const r = await runSnippet(code, { until: /response:/ });
		assert.ok(r.matched, `snippet output:\n${r.stdout}\n${r.stderr}`);
		assert.match(r.stdout, /\{ content: '[^']+', sessionId: '[0-9a-f-]{36}' \}/);
		assert.match(r.stdout, /\{\s*response: '[^']+',\s*sessionId: '[0-9a-f-]{36}'\s*\}/s);
	});

	test('the client example, with a real token', async () => {
		const code = `import io from 'socket.io-client';

const socket = io('${BASE_URL}');

// Send message
socket.emit('ai:chat', {
  message: 'Hello',
  sessionId: 'my-session',
  token: '${user.token}' // optional
});

// Receive streaming chunks
socket.on('ai:stream', (data) => {
  console.log(data.content); // "I", " can", " help"
  // Append to UI
});

// Receive complete response
socket.on('ai:complete', (data) => {
  console.log('Full response:', data.response);
  console.log('Session ID:', data.sessionId);
});

// Handle errors
socket.on('ai:error', (data) => {
  console.error('Error:', data.error);
});
`;
		const r = await runSnippet(code, { ext: 'mjs', until: /Session ID:|Error:/ });
		assert.ok(r.matched, `snippet output:\n${r.stdout}\n${r.stderr}`);
		assert.doesNotMatch(r.stderr, /Error:/);
		assert.match(r.stdout, /Full response: \S/);
		assert.match(r.stdout, /Session ID: my-session/);
		const { rows } = await db().query(
			"SELECT id::text FROM chat_sessions WHERE user_id = $1 AND external_id = 'my-session'", [user.userId]);
		assert.equal(rows.length, 1, 'the named session belongs to the user');
	});

	test('the client example with the seed\'s placeholder token is refused', async () => {
		const code = `import io from 'socket.io-client';
const socket = io('${BASE_URL}');
socket.emit('ai:chat', {
  message: 'Hello',
  sessionId: 'my-session',
  token: 'jwt-token' // optional
});
socket.on('ai:stream', (data) => {
  console.log(data.content);
});
socket.on('ai:error', (data) => {
  console.error('Error:', data.error);
});
`;
		const r = await runSnippet(code, { ext: 'mjs', until: /Error:/ });
		assert.ok(r.matched, r.stdout + r.stderr);
		assert.match(r.stderr, /Error: Unauthorized/);
	});
});

for (const transports of TRANSPORTS) {
	describe(`ai:chat (${transportName(transports)})`, () => {
		test('anonymous: a new session, streamed and stored', async () => {
			const socket = await connect({ transports });
			try {
				const r = await chat(socket, { message: `anon [[tokens=9]] [[delay=5]]` });
				assert.equal(r.error, undefined, JSON.stringify(r.error));
				assert.equal(r.text, tokens(9));
				assert.equal(r.complete.response, tokens(9));
				assert.equal(r.sessionIds.size, 1, 'one sessionId throughout');
				const sid = r.complete.sessionId;
				assert.match(sid, UUID_RE);
				assert.equal((await sessionRow(sid)).user_id, null, 'an anonymous session');
				const msgs = await until(async () => {
					const m = await dbMessages(sid);
					return m.length === 2 && m[1].status === 'complete' ? m : null;
				}, { what: 'the stored reply' });
				assert.equal(msgs[0].role, 'user');
				assert.equal(msgs[0].content, 'anon [[tokens=9]] [[delay=5]]');
				assert.equal(msgs[1].role, 'assistant');
				assert.equal(msgs[1].content, tokens(9));
			} finally {
				socket.close();
			}
		});

		test('a token in the event: the user\'s session, continued by sessionId', async () => {
			const socket = await connect({ transports });
			try {
				const ref = `conv-${Date.now()}-${transports.length}`;
				const first = await chat(socket, { message: 'one [[tokens=3]]', sessionId: ref, token: user.token });
				assert.equal(first.error, undefined, JSON.stringify(first.error));
				assert.equal(first.complete.sessionId, ref, 'the client keeps its own name');
				const second = await chat(socket, { message: 'two [[request]]', sessionId: ref, token: user.token });
				assert.equal(second.error, undefined);
				// The fake upstream echoes the request: the history went up.
				assert.match(second.complete.response, /one \[\[tokens=3\]\]/);
				assert.match(second.complete.response, /t0 t1 t2/);
				const { rows } = await db().query(
					'SELECT id::text FROM chat_sessions WHERE user_id = $1 AND external_id = $2', [user.userId, ref]);
				assert.equal(rows.length, 1);
				const msgs = await until(async () => {
					const m = await dbMessages(rows[0].id);
					return m.length === 4 && m[3].status === 'complete' ? m : null;
				}, { what: 'four stored messages' });
				assert.deepEqual(msgs.map((m) => m.role), ['user', 'assistant', 'user', 'assistant']);
			} finally {
				socket.close();
			}
		});

		test('a bad token gets ai:error Unauthorized and stores nothing', async () => {
			const socket = await connect({ transports });
			try {
				const marker = `never-stored-${Date.now()}-${transports.length}`;
				const expired = signJwt(claims(user.userId, { exp: Math.floor(Date.now() / 1000) - 60 }));
				for (const token of ['jwt-token', expired, signJwt(claims(user.userId), { alg: 'none' }),
					signJwt(claims(user.userId), { secret: 'x'.repeat(40) })]) {
					const r = await chat(socket, { message: marker, token });
					assert.deepEqual(r.error, { error: 'Unauthorized' });
					assert.equal(r.deltas.length, 0);
				}
				const { rows } = await db().query('SELECT count(*)::int AS n FROM messages WHERE content = $1', [marker]);
				assert.equal(rows[0].n, 0, 'nothing stored');
			} finally {
				socket.close();
			}
		});

		test('the CONNECT auth token authenticates the socket', async () => {
			const socket = await connect({ transports, auth: { token: user.token } });
			try {
				const r = await chat(socket, { message: 'authed by connect [[tokens=2]]' });
				assert.equal(r.error, undefined);
				assert.equal((await sessionRow(r.complete.sessionId)).user_id, user.userId);
			} finally {
				socket.close();
			}
		});

		test('a bad CONNECT auth token is a connect_error', async () => {
			await assert.rejects(connect({ transports, auth: { token: 'nope' } }), /Unauthorized/);
		});

		test('validation errors arrive as ai:error', async () => {
			const socket = await connect({ transports });
			try {
				for (const [payload, re] of [
					[{}, /message/],
					[{ message: '' }, /message/],
					[{ message: 42 }, /message/],
					[{ message: 'x', sessionId: 7 }, /sessionId/],
					[{ message: 'x', sessionId: '00000000-0000-4000-8000-000000000000' }, /Session not found/],
					['text', /payload/],
				]) {
					const r = await chat(socket, payload);
					assert.match(r.error?.error ?? '', re, JSON.stringify(payload));
				}
			} finally {
				socket.close();
			}
		});
	});
}

describe('ai:chat beyond the happy path', () => {
	test('an anonymous caller never reaches a user\'s session', async () => {
		const socket = await connect();
		try {
			const ref = `private-${Date.now()}`;
			const mine = await chat(socket, { message: 'mine [[tokens=1]]', sessionId: ref, token: user.token });
			assert.equal(mine.error, undefined);
			const { rows } = await db().query(
				'SELECT id::text FROM chat_sessions WHERE user_id = $1 AND external_id = $2', [user.userId, ref]);
			const r = await chat(socket, { message: 'peek', sessionId: rows[0].id });
			assert.deepEqual(r.error, { error: 'Session not found', sessionId: rows[0].id });
		} finally {
			socket.close();
		}
	});

	test("an anonymous session by UUID answers only the address that opened it", async () => {
		const home = freshIp();
		const opener = await connect({ ip: home });
		const stranger = await connect({ ip: freshIp() });
		const neighbour = await connect({ ip: home, transports: ['websocket'] });
		try {
			const first = await chat(opener, { message: 'anon at home [[tokens=2]]' });
			assert.equal(first.error, undefined, JSON.stringify(first.error));
			const id = first.complete.sessionId;
			assert.match(id, UUID_RE);
			assert.equal((await sessionRow(id)).user_id, null);
			await until(async () => {
				const m = await dbMessages(id);
				return m.length === 2 && m[1].status === 'complete';
			}, { what: 'the stored reply' });
			const r = await chat(stranger, { message: 'peek [[request]]', sessionId: id });
			assert.deepEqual(r.error, { error: 'Session not found', sessionId: id });
			assert.equal(r.deltas.length, 0);
			assert.equal((await dbMessages(id)).length, 2, 'nothing stored from another address');
			// Another socket from the same address continues it.
			const again = await chat(neighbour, { message: 'again [[request]]', sessionId: id });
			assert.equal(again.error, undefined, JSON.stringify(again.error));
			assert.match(again.complete.response, /anon at home/);
		} finally {
			opener.close();
			stranger.close();
			neighbour.close();
		}
	});

	test('the reply goes on and is stored when the socket leaves', async () => {
		const socket = await connect({ transports: ['websocket'] });
		const first = new Promise((resolve) => socket.once('ai:stream', resolve));
		socket.emit('ai:chat', { message: 'keep going [[tokens=40]] [[delay=15]]', token: user.token });
		const d = await first;
		socket.close();
		const { rows } = await db().query(
			`SELECT s.id::text FROM chat_sessions s JOIN messages m ON m.session_id = s.id
			  WHERE s.user_id = $1 AND m.content = 'keep going [[tokens=40]] [[delay=15]]'`, [user.userId]);
		assert.equal(rows.length, 1);
		assert.equal(typeof d.sessionId, 'string');
		const msgs = await until(async () => {
			const m = await dbMessages(rows[0].id);
			return m.length === 2 && m[1].status === 'complete' ? m : null;
		}, { timeout: 10000, what: 'the reply to finish without its client' });
		assert.equal(msgs[1].content, tokens(40));
	});

	test('the chat rate limit applies (same keys as the HTTP routes)', async () => {
		const gw = await startGateway({ CHAT_RATELIMIT_CHAT_ANON: '2', CHAT_RATELIMIT_CHAT_USER: '3' });
		try {
			const ip = freshIp();
			const socket = await connect({ url: gw.url, ip });
			try {
				for (let i = 0; i < 2; i++)
					assert.equal((await chat(socket, { message: `limited ${i} [[tokens=1]]` })).error, undefined);
				const r = await chat(socket, { message: 'one too many' });
				assert.match(r.error.error, /Too many requests/);
				// stream-chat shares the budget.
				const err = new Promise((resolve) => socket.once('stream-error', resolve));
				socket.emit('stream-chat', { messages: [{ role: 'user', content: 'x' }] });
				assert.match((await err).error, /Too many requests/);
				// Another address has its own.
				const other = await connect({ url: gw.url, ip: freshIp() });
				assert.equal((await chat(other, { message: 'fresh [[tokens=1]]' })).error, undefined);
				other.close();
				// A user is counted as the user.
				const u = await registerAndLogin('gw003rl');
				for (let i = 0; i < 3; i++)
					assert.equal((await chat(socket, { message: `u ${i} [[tokens=1]]`, token: u.token })).error, undefined);
				assert.match((await chat(socket, { message: 'u over', token: u.token })).error.error, /Too many/);
			} finally {
				socket.close();
			}
		} finally {
			assert.equal(await gw.stop(), 0);
		}
	});
});
