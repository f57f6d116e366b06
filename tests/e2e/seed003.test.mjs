// seed003.test.mjs: seed 003's HTTP contract, POST /api/v2/ai/chat/stream
// {message, sessionId?} with optional auth: `data: {"content","sessionId"}`
// per delta, `data: {"done":true,"sessionId"}` at the end, `data:
// {"error"}` on failure; a new session when sessionId is absent; messages
// persist (PostgreSQL; chat_sessions.user_id NULL for anonymous callers),
// and an anonymous caller never reaches a user's session. Also the seed's
// two fetch readers and its curl command, run as documented (URL and token
// substituted).
//
// Anonymous requests count against the anonymous rate limit (20 per 15 min
// per IP, SPEC §7): this file makes few of them.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
	BASE_URL,
	CA_CERT,
	DEFAULT_SYSTEM_PROMPT,
	HTTP_URL,
	REPO,
	UPSTREAM_KEY,
	UUID_RE,
	api,
	assertJsonError,
	closeDb,
	db,
	dbMessages,
	fakeStats,
	randomClientIp,
	readAll,
	readSSE,
	registerAndLogin,
	run,
} from './lib.mjs';

after(closeDb);

const ROUTE = '/api/v2/ai/chat/stream';

const tokens = (n) => Array.from({ length: n }, (_, i) => `t${i}`).join(' ');

/**
 * Checks a seed-003 stream; returns {sessionId, deltas, text, done, error}:
 * unnamed events, JSON data; content events {content, sessionId}, then
 * exactly one terminal event, last: {done: true, sessionId} or {error}; one
 * sessionId throughout.
 */
function checkSeed003(events) {
	assert.ok(events.length >= 1, 'no events');
	const out = { sessionId: undefined, deltas: [] };
	events.forEach((e, i) => {
		const where = `event ${i}: ${e.data.slice(0, 160)}`;
		assert.equal(e.event, 'message', `${where}: no named events in seed 003`);
		assert.ok(e.json !== null && typeof e.json === 'object', `${where}: JSON`);
		assert.equal(out.done ?? out.error, undefined, `${where}: an event after the terminal one`);
		if (e.json.sessionId !== undefined) {
			assert.equal(typeof e.json.sessionId, 'string', where);
			out.sessionId ??= e.json.sessionId;
			assert.equal(e.json.sessionId, out.sessionId, `${where}: one sessionId`);
		}
		if (e.json.done !== undefined) {
			assert.equal(e.json.done, true, where);
			assert.equal(typeof e.json.sessionId, 'string', `${where}: the end names the session`);
			out.done = e.json;
		} else if (e.json.error !== undefined) {
			assert.equal(typeof e.json.error, 'string', where);
			assert.ok(e.json.error.length > 0, where);
			assert.ok(!e.data.includes(UPSTREAM_KEY), where);
			out.error = e.json;
		} else {
			assert.equal(typeof e.json.content, 'string', where);
			assert.ok(e.json.content.length > 0, `${where}: no empty deltas`);
			assert.equal(typeof e.json.sessionId, 'string', `${where}: every delta names the session`);
			out.deltas.push(e.json.content);
		}
	});
	assert.ok(out.done || out.error, 'a terminal event');
	out.text = out.deltas.join('');
	return out;
}

/** POST the route; {status, json|text} or, for 200, the checked stream. */
async function chat(token, body, opts = {}) {
	const response = await api('POST', ROUTE, { token, body, raw: true, ...opts });
	if (response.status !== 200) {
		const text = await response.text();
		let json;
		try {
			json = JSON.parse(text);
		} catch {
			json = undefined;
		}
		return { status: response.status, headers: response.headers, text, json };
	}
	const { events } = await readAll(response);
	return { status: 200, headers: response.headers, events, ...checkSeed003(events) };
}

async function dbSession(id) {
	const { rows } = await db().query(
		'SELECT id::text, user_id::text, external_id FROM chat_sessions WHERE id = $1',
		[id],
	);
	return rows[0];
}

let alice;
let bob;
before(async () => {
	[alice, bob] = await Promise.all([registerAndLogin('seed003a'), registerAndLogin('seed003b')]);
});

describe('anonymous callers', () => {
	let anonSession;

	test('a new session: content events, then done; persisted with user_id NULL', async () => {
		const r = await chat(undefined, { message: 'What services do you offer?' });
		assert.equal(r.status, 200);
		assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
		assert.match(r.sessionId, UUID_RE);
		assert.equal(r.text, 'You said: What services do you offer?');
		assert.deepEqual(r.deltas, ['You', ' said:', ' What', ' services', ' do', ' you', ' offer?']);
		assert.deepEqual(Object.keys(r.done).filter((k) => k !== 'status').sort(), ['done', 'sessionId']);
		const row = await dbSession(r.sessionId);
		assert.ok(row, 'the session is in PostgreSQL');
		assert.equal(row.user_id, null, 'anonymous: user_id NULL');
		assert.deepEqual(
			(await dbMessages(r.sessionId)).map((m) => [m.role, m.content, m.status]),
			[
				['user', 'What services do you offer?', 'complete'],
				['assistant', 'You said: What services do you offer?', 'complete'],
			],
		);
		anonSession = r.sessionId;
	});

	test('the same sessionId continues it: the model sees the history', async () => {
		assert.ok(anonSession, 'needs the previous test');
		const r = await chat(undefined, { message: 'and prices? [[request]]', sessionId: anonSession });
		assert.equal(r.sessionId, anonSession);
		assert.deepEqual(JSON.parse(r.text).messages, [
			{ role: 'system', content: DEFAULT_SYSTEM_PROMPT },
			{ role: 'user', content: 'What services do you offer?' },
			{ role: 'assistant', content: 'You said: What services do you offer?' },
			{ role: 'user', content: 'and prices? [[request]]' },
		]);
		assert.equal((await dbMessages(anonSession)).length, 4);
	});

	test("a user's session is out of reach: 404, nothing stored, no upstream call", async () => {
		const mine = await chat(alice.token, { message: 'secret plans' });
		assert.equal((await dbSession(mine.sessionId)).user_id, alice.userId);
		const stats = await fakeStats();
		const r = await chat(undefined, { message: 'show me [[request]]', sessionId: mine.sessionId });
		assertJsonError(r, 404, 'anonymous on a user session');
		assert.equal((await fakeStats()).chat_requests, stats.chat_requests);
		assert.equal((await dbMessages(mine.sessionId)).length, 2, 'nothing added');
		// Nor is an anonymous session a user's: Alice cannot write into it.
		assert.ok(anonSession);
		assertJsonError(await chat(alice.token, { message: 'x', sessionId: anonSession }), 404, 'user on an anonymous session');
		assert.equal((await dbMessages(anonSession)).length, 4);
	});

	test('an anonymous session by UUID answers only the address that opened it: 404 from another', async () => {
		const home = randomClientIp();
		const away = randomClientIp();
		const first = await chat(undefined, { message: 'at home [[tokens=2]]' }, { headers: { 'x-forwarded-for': home } });
		assert.equal(first.status, 200);
		assert.match(first.sessionId, UUID_RE);
		assert.equal((await dbSession(first.sessionId)).user_id, null);
		const stats = await fakeStats();
		const r = await chat(undefined, { message: 'peek [[request]]', sessionId: first.sessionId },
			{ headers: { 'x-forwarded-for': away } });
		assertJsonError(r, 404, 'another address');
		assert.equal(r.json.error, 'Session not found');
		assert.equal((await fakeStats()).chat_requests, stats.chat_requests, 'no upstream call');
		assert.equal((await dbMessages(first.sessionId)).length, 2, 'nothing added');
		// The address that opened it continues it, with its history.
		const again = await chat(undefined, { message: 'again [[request]]', sessionId: first.sessionId },
			{ headers: { 'x-forwarded-for': home } });
		assert.equal(again.status, 200);
		assert.equal(again.sessionId, first.sessionId);
		assert.deepEqual(JSON.parse(again.text).messages.map((m) => m.content),
			[DEFAULT_SYSTEM_PROMPT, 'at home [[tokens=2]]', 't0 t1', 'again [[request]]']);
	});

	test('a bad token is refused, not treated as anonymous', async () => {
		const r = await chat('not.a.token', { message: 'x' });
		assertJsonError(r, 401, 'bad token');
	});
});

describe('authenticated callers', () => {
	test('a new session of the caller; sessionId continues it', async () => {
		const a = await chat(alice.token, { message: 'hello [[raw=hi alice]]' });
		assert.match(a.sessionId, UUID_RE);
		assert.equal(a.text, 'hi alice');
		assert.equal((await dbSession(a.sessionId)).user_id, alice.userId);
		const b = await chat(alice.token, { message: 'again [[request]]', sessionId: a.sessionId });
		assert.equal(b.sessionId, a.sessionId);
		assert.deepEqual(
			JSON.parse(b.text).messages.map((m) => [m.role, m.content]),
			[
				['system', DEFAULT_SYSTEM_PROMPT],
				['user', 'hello [[raw=hi alice]]'],
				['assistant', 'hi alice'],
				['user', 'again [[request]]'],
			],
		);
	});

	test("another user's session: 404 JSON, untouched", async () => {
		const a = await chat(alice.token, { message: 'mine' });
		const stats = await fakeStats();
		assertJsonError(await chat(bob.token, { message: 'x', sessionId: a.sessionId }), 404, 'Bob on Alice');
		assertJsonError(await chat(bob.token, { message: 'x', sessionId: '00000000-0000-4000-8000-000000000000' }), 404, 'unknown UUID');
		assert.equal((await fakeStats()).chat_requests, stats.chat_requests);
		assert.equal((await dbMessages(a.sessionId)).length, 2);
	});

	test('a sessionId that is not a UUID names a session per owner (as in the Socket.IO example, "my-session")', async () => {
		const name = `my-session-${Date.now()}`;
		const a1 = await chat(alice.token, { message: 'a1 [[raw=one]]', sessionId: name });
		assert.equal(a1.sessionId, name, 'the client keeps the name it gave');
		const a2 = await chat(alice.token, { message: 'a2 [[request]]', sessionId: name });
		assert.deepEqual(
			JSON.parse(a2.text).messages.map((m) => m.content),
			[DEFAULT_SYSTEM_PROMPT, 'a1 [[raw=one]]', 'one', 'a2 [[request]]'],
		);
		const b1 = await chat(bob.token, { message: 'b1 [[request]]', sessionId: name });
		assert.deepEqual(JSON.parse(b1.text).messages.map((m) => m.content), [DEFAULT_SYSTEM_PROMPT, 'b1 [[request]]']);
		const anon = await chat(undefined, { message: 'n1 [[request]]', sessionId: name });
		assert.deepEqual(JSON.parse(anon.text).messages.map((m) => m.content), [DEFAULT_SYSTEM_PROMPT, 'n1 [[request]]']);
		const { rows } = await db().query(
			// An anonymous caller's name is scoped by its address ("<address>/<name>").
			"SELECT user_id::text FROM chat_sessions WHERE external_id = $1 OR external_id LIKE '%/' || $1 ORDER BY user_id NULLS LAST",
			[name],
		);
		assert.deepEqual(rows.map((r) => r.user_id).sort(), [alice.userId, bob.userId, null].sort());
	});

	test('an upstream error mid-stream: data: {"error"}, no done, partial reply kept', async () => {
		const r = await chat(alice.token, { message: 'x [[tokens=6]] [[error-after=3]]' });
		assert.ok(r.error);
		assert.equal(r.done, undefined);
		assert.deepEqual(r.deltas, ['t0', ' t1', ' t2']);
		const msgs = await dbMessages(r.sessionId);
		assert.equal(msgs[1].status, 'error');
		assert.equal(msgs[1].content, 't0 t1 t2');
		const d = await chat(alice.token, { message: 'y [[tokens=6]] [[drop-after=2]]', sessionId: r.sessionId });
		assert.ok(d.error);
		assert.equal(d.done, undefined);
		const ok = await chat(alice.token, { message: 'fine', sessionId: r.sessionId });
		assert.equal(ok.text, 'You said: fine');
	});

	test('an upstream failure before the stream: 502 JSON', async () => {
		const r = await chat(alice.token, { message: 'down [[status=503]]' });
		assertJsonError(r, 502, 'upstream 503');
		assert.ok(!r.text.includes(UPSTREAM_KEY));
	});

	test('bad requests: 400/415 JSON, nothing stored', async () => {
		const stats = await fakeStats();
		const count = async () =>
			(await db().query('SELECT count(*)::int AS n FROM chat_sessions WHERE user_id = $1', [alice.userId])).rows[0].n;
		const before = await count();
		for (const [what, body, headers, status] of [
			['no message', { sessionId: 'x' }, undefined, 400],
			['empty message', { message: '' }, undefined, 400],
			['message an object', { message: { text: 'x' } }, undefined, 400],
			['numeric sessionId', { message: 'x', sessionId: 12 }, undefined, 400],
			['too long a sessionId', { message: 'x', sessionId: 's'.repeat(500) }, undefined, 400],
			['a JSON string body', '"hello"', undefined, 400],
			['malformed JSON', '{message: "x"}', undefined, 400],
			['text/plain', 'hello', { 'content-type': 'text/plain' }, 415],
		]) {
			assertJsonError(await chat(alice.token, body, { headers }), status, what);
		}
		assert.equal((await fakeStats()).chat_requests, stats.chat_requests, 'no upstream call');
		assert.equal(await count(), before, 'no session created');
	});
});

// --------------------------------------------------- the seed's own clients

// "Client Example" under "1. HTTP Streaming (SSE)", verbatim in an async
// wrapper (it uses top-level await). The seed's URL is relative (a page on
// the API's origin): the base URL is put in front; 'Bearer TOKEN' becomes a
// real token.
// prettier-ignore
async function seedClientExample() {
const response = await fetch('/api/v2/ai/chat/stream', {
  method: 'POST',
  headers: {
    'Content-Type': 'application/json',
    'Authorization': 'Bearer TOKEN' // optional
  },
  body: JSON.stringify({ message: 'Hello' })
});

const reader = response.body.getReader();
const decoder = new TextDecoder();

while (true) {
  const { done, value } = await reader.read();
  if (done) break;
  
  const chunk = decoder.decode(value);
  const lines = chunk.split('\n');
  
  for (const line of lines) {
    if (line.startsWith('data: ')) {
      const data = JSON.parse(line.slice(6));
      if (data.content) {
        console.log(data.content); // Stream content
      }
      if (data.done) {
        console.log('Stream complete');
      }
    }
  }
}
}

// "HTTP SSE (Fetch API)" under "Usage Examples", verbatim.
// prettier-ignore
function seedUsageExample() {
async function streamChat(message) {
  const response = await fetch('/api/v2/ai/chat/stream', {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ message })
  });

  const reader = response.body.getReader();
  const decoder = new TextDecoder();
  let fullResponse = '';

  while (true) {
    const { done, value } = await reader.read();
    if (done) break;

    const chunk = decoder.decode(value);
    const lines = chunk.split('\n');

    for (const line of lines) {
      if (line.startsWith('data: ')) {
        const data = JSON.parse(line.slice(6));
        if (data.content) {
          fullResponse += data.content;
          updateUI(fullResponse); // Update UI in real-time
        }
      }
    }
  }
}
}

// "Test HTTP SSE" under "Testing".
const CURL = String.raw`curl -N -X POST http://localhost:7000/api/v2/ai/chat/stream \
  -H "Content-Type: application/json" \
  -d '{"message":"Hello"}'`;

const bodyOf = (fn) => {
	const src = fn.toString();
	return src.slice(src.indexOf('{') + 1, src.lastIndexOf('}')).replace(/^\n/, '');
};
const withBase = (src, base) => src.replaceAll("fetch('/api/v2/ai/chat/stream'", `fetch('${base}/api/v2/ai/chat/stream'`);

describe("the seed's documented clients", () => {
	test('the copies here are verbatim from the seed document', (t) => {
		const dir = path.resolve(REPO, '../shared/seeds');
		const file = existsSync(dir) && readdirSync(dir).find((f) => f.startsWith('003_'));
		if (!file) {
			t.skip(`seed document not found in ${dir}`);
			return;
		}
		const doc = readFileSync(path.join(dir, file), 'utf8');
		assert.ok(doc.includes(bodyOf(seedClientExample)), 'the Client Example differs from the seed');
		assert.ok(doc.includes(bodyOf(seedUsageExample)), 'the Fetch API example differs from the seed');
		assert.ok(doc.includes(CURL), 'the curl command differs from the seed');
	});

	test('"Client Example" (with a token): logs each delta, then "Stream complete"; the session is the user\'s', async () => {
		const logs = [];
		const src = withBase(bodyOf(seedClientExample), BASE_URL).replace("'Bearer TOKEN'", `'Bearer ${alice.token}'`);
		const AsyncFunction = (async () => {}).constructor;
		await new AsyncFunction('console', src)({ log: (...a) => logs.push(a.join(' ')) });
		assert.equal(logs.at(-1), 'Stream complete');
		assert.equal(logs.filter((l) => l === 'Stream complete').length, 1);
		assert.equal(logs.slice(0, -1).join(''), 'You said: Hello');
		const { rows } = await db().query(
			`SELECT s.user_id::text FROM chat_sessions s JOIN messages m ON m.session_id = s.id
			  WHERE m.role = 'assistant' AND m.content = 'You said: Hello' AND s.user_id = $1`,
			[alice.userId],
		);
		assert.equal(rows.length, 1, "persisted as Alice's");
	});

	// The seed's reader splits each read on '\n' and parses every "data: "
	// line: it needs every read to end at a line boundary, also when a
	// burst of events comes at once. 300 tokens at once are about 27 KB of
	// events: more than one TLS record (16 KB, and one read over HTTPS is at
	// most one record), less than nginx's 64 KB FastCGI buffer.
	for (const [what, message, expected, base, times] of [
		['a sentence, anonymously', 'What services do you offer?', 'You said: What services do you offer?', BASE_URL, 1],
		['tokens 40 ms apart', 'slow [[tokens=12]] [[delay=40]]', tokens(12), BASE_URL, 1],
		['bursts of 300 tokens at once, over HTTP', 'fast [[tokens=300]] [[delay=0]]', tokens(300), HTTP_URL, 5],
		['bursts of 300 tokens at once, over HTTPS', 'fast [[tokens=300]] [[delay=0]]', tokens(300), BASE_URL, 5],
	]) {
		test(`streamChat(message), ${what}: updateUI ends with the whole reply`, async () => {
			const factory = new Function('updateUI', `${withBase(bodyOf(seedUsageExample), base)}\nreturn streamChat;`);
			for (let i = 0; i < times; i++) {
				const shown = [];
				const streamChat = factory((text) => shown.push(text));
				await streamChat(message);
				assert.equal(shown.at(-1), expected);
				for (let j = 1; j < shown.length; j++) assert.ok(shown[j].startsWith(shown[j - 1]), 'the text only grows');
			}
		});
	}

	for (const [label, base] of [
		['HTTP', HTTP_URL],
		['HTTPS', BASE_URL],
	]) {
		test(`the curl command over ${label}`, async () => {
			const r = await run('bash', ['-c', CURL.replace('http://localhost:7000', base)], {
				env: { ...process.env, CURL_CA_BUNDLE: CA_CERT },
			});
			assert.equal(r.code, 0, r.stderr);
			const events = [];
			for await (const ev of readSSE(new Response(r.stdout))) events.push({ ...ev, json: JSON.parse(ev.data) });
			const s = checkSeed003(events);
			assert.equal(s.text, 'You said: Hello');
			assert.ok(s.done);
			assert.equal((await dbSession(s.sessionId)).user_id, null);
		});
	}
});
