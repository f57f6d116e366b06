// seed002.test.mjs: seed 002's client contract, POST /stream/chat (JWT) with
// named SSE events: `event: start` {"conversation_id","status":"processing"},
// `event: chunk` {"type":"content","content","chunk_index","is_final":false}
// per delta, a final empty chunk with is_final true, then `event: end`
// {"conversation_id","status":"completed","message_count":1}; failures mid-
// stream as `event: error` {"error","conversation_id","status":"error"}.
// Also the seed's own JavaScript reader loop and its curl login, run as the
// document has them (only the URL, token and credentials substituted).
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
	SESSIONS,
	UPSTREAM_KEY,
	UUID_RE,
	api,
	assertJsonError,
	closeDb,
	db,
	dbMessages,
	fakeStats,
	readAll,
	readSSE,
	registerAndLogin,
	run,
} from './lib.mjs';

after(closeDb);

const ROUTE = '/stream/chat';

/** POSTs to /stream/chat; returns {status, text, json} or, for 200, the read events too. */
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
	const { events, comments } = await readAll(response);
	return { status: 200, headers: response.headers, events, comments, ...checkSeed002(events) };
}

/**
 * Checks a seed-002 stream and returns {conversationId, chunks, text, end,
 * error}: named events only (start, chunk, end, error); start first with
 * exactly {conversation_id, status: "processing"}; content chunks with
 * chunk_index 0, 1, 2... and is_final false; then either the final chunk
 * (content "", is_final true, the next index) and `end`, or one `error`;
 * nothing after the terminal event; one conversation_id throughout.
 */
function checkSeed002(events) {
	const names = events.map((e) => e.event);
	assert.ok(events.length >= 2, `events: ${names}`);
	for (const e of events) {
		assert.ok(['start', 'chunk', 'end', 'error'].includes(e.event), `unknown event name ${e.event}`);
		assert.ok(e.json !== null && typeof e.json === 'object', `JSON data: ${e.data}`);
		assert.ok(e.id !== '', 'every event carries an id');
	}
	assert.equal(names[0], 'start', `first event: ${names}`);
	const start = events[0].json;
	assert.deepEqual(Object.keys(start).sort(), ['conversation_id', 'status']);
	assert.equal(start.status, 'processing');
	assert.equal(typeof start.conversation_id, 'string');
	assert.ok(start.conversation_id.length > 0);
	const terminal = names.filter((n) => n === 'end' || n === 'error');
	assert.equal(terminal.length, 1, `exactly one terminal event: ${names}`);
	assert.ok(['end', 'error'].includes(names.at(-1)), `the terminal event is last: ${names}`);
	const last = events.at(-1);
	const chunks = events.slice(1, -1);
	const out = { conversationId: start.conversation_id, chunks: [], text: '' };
	for (const c of chunks) assert.equal(c.event, 'chunk', `between start and the end: ${names}`);
	let content = chunks;
	if (last.event === 'end') {
		const final = chunks.at(-1);
		assert.ok(final, 'a final chunk before end');
		assert.deepEqual(final.json, { type: 'content', content: '', chunk_index: chunks.length - 1, is_final: true });
		content = chunks.slice(0, -1);
		assert.deepEqual(last.json, { conversation_id: out.conversationId, status: 'completed', message_count: 1 });
		out.end = last.json;
	} else {
		assert.equal(last.json.conversation_id, out.conversationId);
		assert.equal(last.json.status, 'error');
		assert.equal(typeof last.json.error, 'string');
		assert.ok(last.json.error.length > 0);
		assert.ok(!last.data.includes(UPSTREAM_KEY));
		out.error = last.json;
	}
	content.forEach((c, i) => {
		assert.equal(c.json.type, 'content');
		assert.equal(c.json.chunk_index, i, 'chunk_index counts from 0');
		assert.equal(c.json.is_final, false);
		assert.equal(typeof c.json.content, 'string');
		assert.ok(c.json.content.length > 0, 'no empty content chunks before the final one');
		assert.deepEqual(Object.keys(c.json).sort(), ['chunk_index', 'content', 'is_final', 'type']);
	});
	out.chunks = content.map((c) => c.json.content);
	out.text = out.chunks.join('');
	return out;
}

/** The conversation's row in PostgreSQL. */
async function dbSession(id) {
	const { rows } = await db().query(
		'SELECT id::text, user_id::text, external_id, title FROM chat_sessions WHERE id = $1',
		[id],
	);
	return rows[0];
}

let alice;
let bob;
before(async () => {
	[alice, bob] = await Promise.all([registerAndLogin('seed002a'), registerAndLogin('seed002b')]);
});

describe('POST /stream/chat', () => {
	test('start, chunks, the final chunk, end; stored in PostgreSQL as a conversation of the caller', async () => {
		const r = await chat(alice.token, { message: 'hola agentes NGX', metadata: {} });
		assert.equal(r.status, 200);
		assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
		assert.match(r.headers.get('cache-control') ?? '', /no-cache/);
		assert.equal(r.text, 'You said: hola agentes NGX');
		assert.deepEqual(r.chunks, ['You', ' said:', ' hola', ' agentes', ' NGX']);
		assert.match(r.conversationId, UUID_RE, 'a new conversation gets a UUID');
		const row = await dbSession(r.conversationId);
		assert.equal(row.user_id, alice.userId);
		const msgs = await dbMessages(r.conversationId);
		assert.deepEqual(
			msgs.map((m) => [m.role, m.content, m.status]),
			[
				['user', 'hola agentes NGX', 'complete'],
				['assistant', 'You said: hola agentes NGX', 'complete'],
			],
		);
		// The same conversation through the seed-000 routes.
		const got = await api('GET', `${SESSIONS}/${r.conversationId}`, { token: alice.token });
		assert.equal(got.status, 200);
		assert.equal(got.json.messages.length, 2);
	});

	test('conversation_id continues the conversation: the model sees its history', async () => {
		const first = await chat(alice.token, { message: 'first [[raw=first answer]]' });
		const id = first.conversationId;
		const second = await chat(alice.token, { message: 'second [[request]]', conversation_id: id });
		assert.equal(second.conversationId, id, 'the same conversation_id comes back');
		assert.equal(second.end.conversation_id, id);
		const req = JSON.parse(second.text);
		assert.deepEqual(req.messages, [
			{ role: 'system', content: DEFAULT_SYSTEM_PROMPT },
			{ role: 'user', content: 'first [[raw=first answer]]' },
			{ role: 'assistant', content: 'first answer' },
			{ role: 'user', content: 'second [[request]]' },
		]);
		assert.equal((await dbMessages(id)).length, 4);
	});

	test('a conversation_id that is not a UUID names a conversation of the caller, created on first use', async () => {
		const name = `conv-${Date.now()}`;
		const a1 = await chat(alice.token, { message: 'a1 [[raw=alice one]]', conversation_id: name });
		assert.equal(a1.conversationId, name, 'the client keeps the name it gave');
		const a2 = await chat(alice.token, { message: 'a2 [[request]]', conversation_id: name });
		assert.deepEqual(
			JSON.parse(a2.text).messages.map((m) => m.content),
			[DEFAULT_SYSTEM_PROMPT, 'a1 [[raw=alice one]]', 'alice one', 'a2 [[request]]'],
		);
		// Bob's conversation of the same name is his own.
		const b1 = await chat(bob.token, { message: 'b1 [[request]]', conversation_id: name });
		assert.deepEqual(
			JSON.parse(b1.text).messages.map((m) => m.content),
			[DEFAULT_SYSTEM_PROMPT, 'b1 [[request]]'],
			"no trace of Alice's messages",
		);
		const { rows } = await db().query(
			'SELECT user_id::text, (SELECT count(*)::int FROM messages m WHERE m.session_id = s.id) AS n FROM chat_sessions s WHERE external_id = $1 ORDER BY n DESC',
			[name],
		);
		assert.deepEqual(rows, [
			{ user_id: alice.userId, n: 4 },
			{ user_id: bob.userId, n: 2 },
		]);
	});

	test("another user's conversation_id: 404 JSON, no upstream call, nothing stored", async () => {
		const mine = await chat(alice.token, { message: 'private' });
		const stats = await fakeStats();
		const r = await chat(bob.token, { message: 'let me in [[request]]', conversation_id: mine.conversationId });
		assertJsonError(r, 404, "Bob on Alice's conversation");
		assert.equal(r.json.error, 'Session not found');
		const unknown = await chat(bob.token, { message: 'x', conversation_id: '00000000-0000-4000-8000-000000000000' });
		assertJsonError(unknown, 404, 'unknown UUID');
		assert.equal((await fakeStats()).chat_requests, stats.chat_requests);
		assert.equal((await dbMessages(mine.conversationId)).length, 2, "Alice's conversation is untouched");
	});

	test('an upstream error mid-stream: event: error, no end, partial reply kept', async () => {
		const r = await chat(alice.token, { message: 'x [[tokens=6]] [[error-after=2]]' });
		assert.equal(r.status, 200);
		assert.ok(r.error, 'an error event');
		assert.equal(r.end, undefined);
		assert.deepEqual(r.chunks, ['t0', ' t1']);
		const msgs = await dbMessages(r.conversationId);
		assert.equal(msgs[1].status, 'error');
		assert.equal(msgs[1].content, 't0 t1');
		// A dropped connection too.
		const d = await chat(alice.token, { message: 'y [[tokens=6]] [[drop-after=4]]', conversation_id: r.conversationId });
		assert.ok(d.error);
		assert.equal(d.conversationId, r.conversationId);
		assert.deepEqual(d.chunks, ['t0', ' t1', ' t2', ' t3']);
		// And the conversation goes on.
		const ok = await chat(alice.token, { message: 'z', conversation_id: r.conversationId });
		assert.ok(ok.end);
		assert.equal(ok.text, 'You said: z');
	});

	test('an upstream failure before the stream: 502 JSON, the message kept', async () => {
		const r = await chat(alice.token, { message: 'down [[status=500]]' });
		assertJsonError(r, 502, 'upstream 500');
		assert.ok(!r.text.includes(UPSTREAM_KEY));
		const { rows } = await db().query(
			`SELECT m.content FROM messages m JOIN chat_sessions s ON s.id = m.session_id
			  WHERE s.user_id = $1 AND m.role = 'user' AND m.content = $2`,
			[alice.userId, 'down [[status=500]]'],
		);
		assert.equal(rows.length, 1);
	});

	test('a long reply keeps the framing: 500 chunks, indexes in order', async () => {
		const r = await chat(alice.token, { message: '[[tokens=500]] [[delay=0]]' });
		assert.equal(r.chunks.length, 500);
		assert.equal(r.text, Array.from({ length: 500 }, (_, i) => `t${i}`).join(' '));
	});

	test('over plain HTTP too', async () => {
		const r = await chat(alice.token, { message: 'plain' }, { base: HTTP_URL });
		assert.equal(r.text, 'You said: plain');
		assert.ok(r.end);
	});

	test('bad requests: 401/400/415 JSON, nothing stored', async () => {
		const stats = await fakeStats();
		const { rows: before } = await db().query('SELECT count(*)::int AS n FROM chat_sessions WHERE user_id = $1', [
			alice.userId,
		]);
		assertJsonError(await chat(undefined, { message: 'x' }), 401, 'no token');
		for (const [what, body, headers, status] of [
			['no message', { metadata: {} }, undefined, 400],
			['empty message', { message: '' }, undefined, 400],
			['numeric message', { message: 42 }, undefined, 400],
			['metadata not an object', { message: 'x', metadata: 'm' }, undefined, 400],
			['numeric conversation_id', { message: 'x', conversation_id: 7 }, undefined, 400],
			['malformed JSON', '{"message": ', undefined, 400],
			['text/plain', '{"message":"x"}', { 'content-type': 'text/plain' }, 415],
		]) {
			assertJsonError(await chat(alice.token, body, { headers }), status, what);
		}
		assert.equal((await fakeStats()).chat_requests, stats.chat_requests, 'no upstream call');
		const { rows: afterRows } = await db().query('SELECT count(*)::int AS n FROM chat_sessions WHERE user_id = $1', [
			alice.userId,
		]);
		assert.equal(afterRows[0].n, before[0].n, 'no conversation created');
	});
});

// --------------------------------------------------- the seed's own clients

const SEED_BASE = 'http://localhost:8000';

// The seed's "Cliente JavaScript/HTML" block, verbatim inside this wrapper;
// it uses top-level await, so it runs as the body of an async function.
// prettier-ignore
async function seedJsClient() {
const response = await fetch('http://localhost:8000/stream/chat', {
    method: 'POST',
    headers: {
        'Content-Type': 'application/json',
        'Authorization': `Bearer ${token}`,
        'Accept': 'text/event-stream'
    },
    body: JSON.stringify({
        message: 'Tu mensaje aquí',
        metadata: {}
    })
});

const reader = response.body.getReader();
const decoder = new TextDecoder();

while (true) {
    const { done, value } = await reader.read();
    if (done) break;
    
    const chunk = decoder.decode(value);
    // Procesar eventos SSE
}
}

// The seed's login command ("Tests de Rendimiento").
const CURL_LOGIN = String.raw`TOKEN=$(curl -X POST http://localhost:8000/auth/login \
  -H "Content-Type: application/json" \
  -d '{"username":"test","password":"test"}' | jq -r .access_token)`;

function seedJsSource() {
	const src = seedJsClient.toString();
	return src.slice(src.indexOf('{') + 1, src.lastIndexOf('}')).replace(/^\n/, '');
}

describe("the seed's documented clients", () => {
	test('the copies here are verbatim from the seed document', (t) => {
		const dir = path.resolve(REPO, '../shared/seeds');
		const file = existsSync(dir) && readdirSync(dir).find((f) => f.startsWith('002_'));
		if (!file) {
			t.skip(`seed document not found in ${dir}`);
			return;
		}
		const doc = readFileSync(path.join(dir, file), 'utf8');
		assert.ok(doc.includes(seedJsSource()), 'the JavaScript client differs from the seed');
		assert.ok(doc.includes(CURL_LOGIN), 'the curl login differs from the seed');
	});

	for (const [label, base] of [
		['HTTPS', BASE_URL],
		['HTTP', HTTP_URL],
	]) {
		test(`the JavaScript reader loop over ${label}: reads the whole stream, which parses as seed 002 says`, async () => {
			// The page's TextDecoder, recording what the loop decoded (the
			// loop itself leaves "Procesar eventos SSE" to the reader).
			const decoded = [];
			class TextDecoder extends globalThis.TextDecoder {
				decode(...args) {
					const s = super.decode(...args);
					decoded.push(s);
					return s;
				}
			}
			const AsyncFunction = (async () => {}).constructor;
			const client = new AsyncFunction('token', 'TextDecoder', seedJsSource().replaceAll(SEED_BASE, base));
			await client(alice.token, TextDecoder);
			const text = decoded.join('');
			const events = [];
			for await (const ev of readSSE(new Response(text))) events.push({ ...ev, json: JSON.parse(ev.data) });
			const r = checkSeed002(events);
			assert.equal(r.text, 'You said: Tu mensaje aquí');
			assert.ok(r.end);
			assert.ok(decoded.length >= 1);
		});
	}

	for (const [label, base] of [
		['HTTP', HTTP_URL],
		['HTTPS', BASE_URL],
	]) {
		test(`the curl login over ${label}: TOKEN=$(curl … | jq -r .access_token) is a working token`, async () => {
			const cmd = CURL_LOGIN.replaceAll(SEED_BASE, base).replace(
				'{"username":"test","password":"test"}',
				JSON.stringify({ username: alice.username, password: alice.password }),
			);
			const hasJq = (await run('bash', ['-c', 'command -v jq'])).code === 0;
			// Without jq (not installed here), node plays its part.
			const script = hasJq
				? cmd
				: cmd.replace(
						'jq -r .access_token',
						`node -e 'let s="";process.stdin.on("data",d=>s+=d).on("end",()=>console.log(JSON.parse(s).access_token))'`,
					);
			const r = await run('bash', ['-c', `set -o pipefail; ${script}\nprintf '%s' "$TOKEN"`], {
				env: { ...process.env, CURL_CA_BUNDLE: CA_CERT },
			});
			assert.equal(r.code, 0, r.stderr);
			const token = r.stdout.trim();
			assert.match(token, /^[\w-]+\.[\w-]+\.[\w-]+$/, `TOKEN=${token}`);
			const me = await api('GET', '/api/auth/me', { token });
			assert.equal(me.status, 200);
			assert.equal(me.json.id, alice.userId);
			const s = await chat(token, { message: 'with the curl token' });
			assert.equal(s.text, 'You said: with the curl token');
		});
	}
});
