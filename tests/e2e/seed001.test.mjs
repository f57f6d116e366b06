// seed001.test.mjs: seed 001's REST routes. POST /openai/chatCompletion
// {messages} → an OpenAI chat.completion (not streamed); POST
// /api/livekit/token {roomName, participantName} → a LiveKit access token
// from LIVEKIT_API_KEY/LIVEKIT_API_SECRET, or 503 with a clear error when
// the server has none. (The Socket.IO side of seed 001 is the gateway's.)
//
// The positive LiveKit tests need the instance's key and secret: scripts/test
// exports them to the suites as CHAT_LIVEKIT_KEY/CHAT_LIVEKIT_SECRET (or as
// LIVEKIT_API_KEY/LIVEKIT_API_SECRET, which it also gives chatd).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { TokenVerifier } from 'livekit-server-sdk';

import {
	DEFAULT_SYSTEM_PROMPT,
	HTTP_URL,
	UPSTREAM_KEY,
	api,
	assertJsonError,
	closeDb,
	db,
	decodeJwtPart,
	fakeStats,
	registerAndLogin,
} from './lib.mjs';

after(closeDb);

const LIVEKIT_KEY = process.env.CHAT_LIVEKIT_KEY || process.env.LIVEKIT_API_KEY || '';
const LIVEKIT_SECRET = process.env.CHAT_LIVEKIT_SECRET || process.env.LIVEKIT_API_SECRET || '';
const LIVEKIT = LIVEKIT_KEY !== '' && LIVEKIT_SECRET !== '';

let user;
before(async () => {
	user = await registerAndLogin('seed001');
});

const completion = (token, body, opts = {}) => api('POST', '/openai/chatCompletion', { token, body, ...opts });

describe('POST /openai/chatCompletion', () => {
	test('the body of the seed ({"messages":[{"role":"user","content":"Hello!"}]}) → a chat.completion', async () => {
		const t0 = Math.floor(Date.now() / 1000);
		const r = await completion(user.token, { messages: [{ role: 'user', content: 'Hello!' }] });
		assert.equal(r.status, 200, r.text);
		assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
		const c = r.json;
		assert.match(c.id, /^chatcmpl-/);
		assert.equal(c.object, 'chat.completion');
		assert.ok(Number.isInteger(c.created) && Math.abs(c.created - t0) < 60, `created ${c.created}`);
		assert.equal(c.model, 'gpt-4o-mini');
		assert.equal(c.choices.length, 1);
		assert.equal(c.choices[0].index, 0);
		assert.deepEqual(c.choices[0].message, { role: 'assistant', content: 'You said: Hello!', refusal: null });
		assert.equal(c.choices[0].finish_reason, 'stop');
		assert.ok(c.usage.prompt_tokens > 0);
		assert.ok(c.usage.completion_tokens > 0);
		assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
		assert.ok(!r.text.includes(UPSTREAM_KEY));
	});

	test('the whole conversation goes to the model, after the server’s system prompt', async () => {
		const messages = [
			{ role: 'user', content: 'Explain quantum computing in simple terms' },
			{ role: 'assistant', content: 'Bits that are both 0 and 1.' },
			{ role: 'user', content: 'more [[request]]' },
		];
		const r = await completion(user.token, { messages });
		assert.equal(r.status, 200, r.text);
		const req = JSON.parse(r.json.choices[0].message.content);
		assert.deepEqual(req.messages, [{ role: 'system', content: DEFAULT_SYSTEM_PROMPT }, ...messages]);
	});

	test('content as OpenAI text parts is accepted', async () => {
		const r = await completion(user.token, {
			messages: [{ role: 'user', content: [{ type: 'text', text: 'part one' }, { type: 'text', text: 'part two' }] }],
		});
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.choices[0].message.content, 'You said: part one\npart two');
	});

	test('a long reply arrives whole', async () => {
		const r = await completion(user.token, { messages: [{ role: 'user', content: '[[tokens=2000]] [[delay=0]]' }] });
		assert.equal(r.status, 200);
		assert.equal(r.json.choices[0].message.content, Array.from({ length: 2000 }, (_, i) => `t${i}`).join(' '));
		assert.equal(r.json.usage.completion_tokens, 2000);
	});

	test('upstream failures: 502 JSON (retried first), also when the stream breaks midway', async () => {
		for (const content of ['x [[status=503]]', 'x [[tokens=8]] [[error-after=2]]', 'x [[tokens=8]] [[drop-after=2]]']) {
			const r = await completion(user.token, { messages: [{ role: 'user', content }] });
			assertJsonError(r, 502, content);
			assert.ok(!r.text.includes(UPSTREAM_KEY));
		}
	});

	test('token usage is recorded per user', async () => {
		const r = await completion(user.token, { messages: [{ role: 'user', content: 'count me' }] });
		const { rows } = await db().query(
			`SELECT prompt_tokens, completion_tokens, status FROM stream_metrics
			  WHERE user_id = $1 AND route = 'seed001_completion' ORDER BY id DESC LIMIT 1`,
			[user.userId],
		);
		assert.deepEqual(rows[0], {
			prompt_tokens: r.json.usage.prompt_tokens,
			completion_tokens: r.json.usage.completion_tokens,
			status: 'complete',
		});
	});

	test('over plain HTTP too', async () => {
		const r = await completion(user.token, { messages: [{ role: 'user', content: 'plain' }] }, { base: HTTP_URL });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.choices[0].message.content, 'You said: plain');
	});

	test('bad requests: 401/400/415 JSON, no upstream call', async () => {
		const stats = await fakeStats();
		assertJsonError(await completion(undefined, { messages: [{ role: 'user', content: 'x' }] }), 401, 'no token');
		for (const [what, body, headers, status] of [
			['no messages', {}, undefined, 400],
			['messages null', { messages: null }, undefined, 400],
			['messages a string', { messages: 'Hello!' }, undefined, 400],
			['no message in messages', { messages: [] }, undefined, 400],
			['a message without role', { messages: [{ content: 'x' }] }, undefined, 400],
			['an unknown role', { messages: [{ role: 'wizard', content: 'x' }] }, undefined, 400],
			['content a number', { messages: [{ role: 'user', content: 5 }] }, undefined, 400],
			['content parts that are not text', { messages: [{ role: 'user', content: [{ type: 'image_url', image_url: {} }] }] }, undefined, 400],
			['201 messages', { messages: Array(201).fill({ role: 'user', content: 'x' }) }, undefined, 400],
			['malformed JSON', '{"messages": [', undefined, 400],
			['text/plain', '{"messages":[]}', { 'content-type': 'text/plain' }, 415],
		]) {
			assertJsonError(await completion(user.token, body, { headers }), status, what);
		}
		assert.equal((await fakeStats()).chat_requests, stats.chat_requests);
	});
});

describe('POST /api/livekit/token', () => {
	const token = (body, opts = {}) => api('POST', '/api/livekit/token', { token: user.token, body, ...opts });

	test('without LIVEKIT_API_KEY/LIVEKIT_API_SECRET: 503 with a clear JSON error', async (t) => {
		if (LIVEKIT) {
			t.skip('the instance has LiveKit credentials');
			return;
		}
		const r = await token({ roomName: 'my-chat-room', participantName: 'John Doe' });
		assertJsonError(r, 503, 'unconfigured');
		assert.match(r.json.error, /LIVEKIT_API_KEY|LiveKit/);
	});

	test('a token for the room that livekit-server-sdk’s TokenVerifier accepts', async (t) => {
		if (!LIVEKIT) {
			t.skip('set CHAT_LIVEKIT_KEY/CHAT_LIVEKIT_SECRET (and LIVEKIT_API_KEY/LIVEKIT_API_SECRET for chatd) to run this');
			return;
		}
		const r = await token({ roomName: 'my-chat-room', participantName: 'John Doe' });
		assert.equal(r.status, 200, r.text);
		assert.equal(typeof r.json.token, 'string');
		assert.ok(!r.text.includes(LIVEKIT_SECRET), 'the secret leaked');
		const claims = await new TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET).verify(r.json.token);
		assert.equal(claims.iss, LIVEKIT_KEY);
		assert.equal(claims.sub, 'John Doe');
		assert.equal(claims.video.roomJoin, true);
		assert.equal(claims.video.room, 'my-chat-room');
		const now = Date.now() / 1000;
		assert.ok(claims.nbf <= now + 10 && claims.exp > now + 3600, `nbf ${claims.nbf} exp ${claims.exp}`);
		assert.equal(decodeJwtPart(r.json.token, 0).alg, 'HS256');
		// Another secret does not verify it.
		await assert.rejects(new TokenVerifier(LIVEKIT_KEY, `${LIVEKIT_SECRET}-not`).verify(r.json.token));
		await assert.rejects(new TokenVerifier('another-key', LIVEKIT_SECRET).verify(r.json.token));
	});

	test('names with spaces and accents survive in the claims', async (t) => {
		if (!LIVEKIT) {
			t.skip('no LiveKit credentials on this instance');
			return;
		}
		const r = await token({ roomName: 'sala de reunión 1', participantName: 'José Ñúñez' });
		assert.equal(r.status, 200, r.text);
		const claims = await new TokenVerifier(LIVEKIT_KEY, LIVEKIT_SECRET).verify(r.json.token);
		assert.equal(claims.video.room, 'sala de reunión 1');
		assert.equal(claims.sub, 'José Ñúñez');
	});

	test('bad requests: 400/415 JSON (or 503 first when unconfigured)', async () => {
		for (const [what, body, headers, status] of [
			['no roomName', { participantName: 'p' }, undefined, 400],
			['no participantName', { roomName: 'r' }, undefined, 400],
			['empty roomName', { roomName: '', participantName: 'p' }, undefined, 400],
			['roomName a number', { roomName: 1, participantName: 'p' }, undefined, 400],
			['too long a roomName', { roomName: 'r'.repeat(300), participantName: 'p' }, undefined, 400],
			['malformed JSON', '{"roomName"', undefined, 400],
			['text/plain', 'room', { 'content-type': 'text/plain' }, 415],
		]) {
			const r = await token(body, { headers });
			assertJsonError(r, LIVEKIT ? status : 503, what);
		}
	});

	test('a token of this API is required', async () => {
		const r = await api('POST', '/api/livekit/token', { body: { roomName: 'r', participantName: 'p' } });
		assertJsonError(r, 401, 'no token');
	});
});
