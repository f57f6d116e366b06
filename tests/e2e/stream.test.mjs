// stream.test.mjs: SPEC §3 and §7, the seed-000 stream end to end
// (HTTPS through nginx to chatd to the fake upstream and PostgreSQL).
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import {
	BASE_URL,
	CA_CERT,
	DEFAULT_SYSTEM_PROMPT,
	HTTP_URL,
	ISO_MS_RE,
	SESSIONS,
	UPSTREAM_KEY,
	UUID_RE,
	api,
	closeDb,
	createSession,
	dbMessages,
	fakeStats,
	isErrorBody,
	logTail,
	openStream,
	readSSE,
	registerAndLogin,
	streamTurn,
} from './lib.mjs';

after(closeDb);

let user;
before(async () => {
	user = await registerAndLogin('stream');
});

/** start, content..., then exactly one terminal event, which is last. */
function assertWellFormed(turn, sessionId) {
	const types = turn.data.map((d) => d.type);
	assert.ok(types.length >= 2, `events: ${types}`);
	assert.equal(types[0], 'start', `first event: ${types}`);
	const terminal = types.filter((t) => t === 'done' || t === 'error');
	assert.equal(terminal.length, 1, `exactly one terminal event: ${types}`);
	assert.ok(['done', 'error'].includes(types.at(-1)), `the terminal event is last: ${types}`);
	for (const t of types.slice(1, -1)) assert.equal(t, 'content', `between start and the end: ${types}`);
	for (const ev of turn.events) assert.equal(ev.event, 'message', 'no named events in seed 000');

	assert.equal(turn.start.session_id, sessionId);
	assert.match(turn.start.message_id, UUID_RE);
	const end = turn.done ?? turn.error;
	assert.equal(end.message_id, turn.start.message_id, 'start and end name the same reply');

	// Every event carries an SSE id, distinct and increasing: <reply id>:<n>.
	let prev = -1;
	const seen = new Set();
	for (const ev of turn.events) {
		assert.ok(ev.id !== '', `event without id: ${ev.data}`);
		assert.ok(!seen.has(ev.id), `duplicate id ${ev.id}`);
		seen.add(ev.id);
		const m = /^(.+):(\d+)$/.exec(ev.id);
		assert.ok(m, `id shape <reply>:<n>: ${ev.id}`);
		assert.equal(m[1], turn.start.message_id, `id names the reply: ${ev.id}`);
		assert.ok(Number(m[2]) > prev, `ids increase: ${ev.id} after ${prev}`);
		prev = Number(m[2]);
	}
	for (const d of turn.data.filter((x) => x.type === 'content')) {
		assert.equal(typeof d.content, 'string');
		assert.ok(d.content.length > 0, 'no empty deltas');
	}
}

/** PostgreSQL holds the user message and then the reply, as streamed. */
async function assertStored(sessionId, userContent, turn, status = 'complete') {
	const rows = await dbMessages(sessionId);
	const reply = rows.findIndex((r) => r.id === turn.start.message_id);
	assert.ok(reply >= 1, `the reply row exists after a user row: ${JSON.stringify(rows)}`);
	assert.equal(rows[reply].role, 'assistant');
	assert.equal(rows[reply].status, status);
	assert.equal(rows[reply].content, turn.done ? turn.done.full_content : turn.text);
	if (status === 'complete') assert.equal(rows[reply].model, 'gpt-4o-mini');
	if (userContent !== null) {
		assert.equal(rows[reply - 1].role, 'user');
		assert.equal(rows[reply - 1].content, userContent);
	}
	return rows;
}

describe('a streamed reply', () => {
	test('start, content deltas, done; headers; stored in PostgreSQL', async () => {
		const session = await createSession(user.token, { title: 'basic' });
		const content = 'hello streaming world';
		const response = await openStream(user.token, session.id, content);
		assert.equal(response.status, 200);
		assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/);
		assert.match(response.headers.get('cache-control') ?? '', /no-cache/);
		assert.equal(response.headers.get('content-encoding'), null, 'a stream must not be compressed');
		const events = [];
		for await (const ev of readSSE(response)) events.push(ev);
		const data = events.map((e) => JSON.parse(e.data));
		const deltas = data.filter((d) => d.type === 'content').map((d) => d.content);
		const turn = {
			events,
			data,
			deltas,
			text: deltas.join(''),
			start: data[0],
			done: data.find((d) => d.type === 'done'),
			error: data.find((d) => d.type === 'error'),
		};
		assert.equal(turn.error, undefined, `error event: ${JSON.stringify(turn.error)}`);
		assertWellFormed(turn, session.id);
		assert.equal(turn.done.full_content, `You said: ${content}`);
		assert.equal(turn.text, turn.done.full_content, 'full_content is the concatenation of the deltas');
		// The fake upstream sends one word per token: so does the stream.
		assert.deepEqual(deltas, ['You', ' said:', ' hello', ' streaming', ' world']);
		await assertStored(session.id, content, turn);

		// GET shows both messages, in order.
		const got = await api('GET', `${SESSIONS}/${session.id}`, { token: user.token });
		assert.deepEqual(
			got.json.messages.map((m) => [m.role, m.content, m.status]),
			[
				['user', content, 'complete'],
				['assistant', turn.done.full_content, 'complete'],
			],
		);
		assert.equal(got.json.messages[1].id, turn.start.message_id);
		assert.equal(got.json.messages[1].model, 'gpt-4o-mini');
		for (const m of got.json.messages) assert.match(m.created_at, ISO_MS_RE);
		assert.ok(Date.parse(got.json.updated_at) > Date.parse(session.updated_at), 'a turn touches the session');
	});

	test('response headers over HTTPS and HTTP: event stream, no-cache, X-Accel-Buffering: no', async () => {
		// X-Accel-Buffering: no tells any further proxy in front of this one
		// (a hosting provider's nginx, say) not to buffer the stream.
		for (const base of [BASE_URL, HTTP_URL]) {
			const session = await createSession(user.token);
			const response = await openStream(user.token, session.id, 'headers', { base });
			await response.text();
			assert.equal(response.status, 200, base);
			assert.match(response.headers.get('content-type') ?? '', /^text\/event-stream/, base);
			assert.match(response.headers.get('cache-control') ?? '', /no-cache/, base);
			assert.equal(response.headers.get('content-encoding'), null, `${base}: a stream must not be compressed`);
			assert.equal(response.headers.get('x-accel-buffering'), 'no', `${base}: x-accel-buffering`);
		}
	});

	test('deltas arrive spread over time, not in one read', async (t) => {
		const session = await createSession(user.token);
		const t0 = performance.now();
		const turn = await streamTurn(user.token, session.id, 'count [[tokens=20]] [[delay=50]]');
		assertWellFormed(turn, session.id);
		const expected = Array.from({ length: 20 }, (_, i) => (i === 0 ? 't0' : ` t${i}`));
		assert.deepEqual(turn.deltas, expected);
		assert.equal(turn.done.full_content, expected.join(''));
		const contentEvents = turn.events.filter((_, i) => turn.data[i].type === 'content');
		const reads = new Set(contentEvents.map((e) => e.read));
		const span = contentEvents.at(-1).t - contentEvents[0].t;
		const gaps = contentEvents.slice(1).map((e, i) => Math.round(e.t - contentEvents[i].t));
		const msg = `content events came in ${reads.size} reads over ${span.toFixed(0)} ms; gaps ${gaps.join(',')}; first at ${(
			contentEvents[0].t - t0
		).toFixed(0)} ms`;
		t.diagnostic(msg);
		assert.ok(reads.size >= 10, `tokens were held back and sent in bursts: ${msg}`);
		assert.ok(span > 500, `the 20 tokens 50 ms apart arrived within ${span.toFixed(0)} ms: ${msg}`);
		await assertStored(session.id, 'count [[tokens=20]] [[delay=50]]', turn);
	});

	test('over plain HTTP too', async () => {
		const session = await createSession(user.token);
		const turn = await streamTurn(user.token, session.id, 'plain http', { base: HTTP_URL });
		assertWellFormed(turn, session.id);
		assert.equal(turn.done.full_content, 'You said: plain http');
	});

	test('HTTP/2 with curl --http2 -N: the same stream, token by token', async (t) => {
		const session = await createSession(user.token);
		const url = `${BASE_URL}${SESSIONS}/${session.id}/stream`;
		const args = [
			'--http2',
			'-N',
			'-sS',
			'--cacert',
			CA_CERT,
			'-X',
			'POST',
			url,
			'-H',
			`Authorization: Bearer ${user.token}`,
			'-H',
			'Content-Type: application/json',
			'-d',
			JSON.stringify({ content: 'h2 [[tokens=20]] [[delay=50]]' }),
			'-w',
			'%{stderr}\nhttp_version=%{http_version} status=%{http_code} connect=%{time_connect} tls=%{time_appconnect} ttfb=%{time_starttransfer} total=%{time_total}\n',
		];
		const started = performance.now();
		const reads = [];
		const { code, stdout, stderr } = await new Promise((resolve, reject) => {
			const child = spawn('curl', args, { stdio: ['ignore', 'pipe', 'pipe'] });
			let out = '';
			let err = '';
			const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
			child.stdout.setEncoding('utf8');
			child.stdout.on('data', (chunk) => {
				reads.push({ t: performance.now() - started, bytes: Buffer.byteLength(chunk) });
				out += chunk;
			});
			child.stderr.on('data', (chunk) => {
				err += chunk;
			});
			child.on('error', reject);
			child.on('close', (c) => {
				clearTimeout(timer);
				resolve({ code: c, stdout: out, stderr: err });
			});
		});
		t.diagnostic(`curl: ${stderr.trim()}`);
		t.diagnostic(`curl stdout reads (ms:bytes): ${reads.map((r) => `${r.t.toFixed(0)}:${r.bytes}`).join(' ')}`);
		assert.equal(code, 0, `curl exit ${code}: ${stderr}`);
		assert.match(stderr, /http_version=2 /, 'negotiated HTTP/2');
		assert.match(stderr, /status=200 /);
		// Parse what curl printed with the spec parser.
		const events = [];
		for await (const ev of readSSE(new Response(stdout))) events.push(ev);
		const data = events.map((e) => JSON.parse(e.data));
		assert.equal(data[0].type, 'start');
		assert.equal(data.at(-1).type, 'done', stdout.slice(-300));
		const deltas = data.filter((d) => d.type === 'content').map((d) => d.content);
		assert.equal(deltas.length, 20);
		assert.equal(deltas.join(''), data.at(-1).full_content);
		assert.ok(events.every((e) => e.id !== ''), 'every event has an id');
		// -N: curl wrote the tokens as they came.
		const span = reads.at(-1).t - reads[0].t;
		assert.ok(reads.length >= 10, `curl got the stream in ${reads.length} pieces`);
		assert.ok(span > 500, `curl got the stream within ${span.toFixed(0)} ms`);
	});
});

describe('content round-trips intact', () => {
	const tricky = [
		['quotes and backslashes', 'She said "hi" and \'bye\' \\ back\\slash \\" \\n'],
		['newlines and CRs', 'line one\nline two\r\nline three\rline four\n'],
		['an SSE injection attempt', 'x\n\ndata: {"type":"done","message_id":"fake","full_content":"pwned"}\n\nid: 9\nevent: error\n\n: comment'],
		['emoji and CJK', 'hello 👋🏽 世界 你好 こんにちは 🇪🇸 é ñ ü'],
		['JSON-looking text', '{"type":"content","content":"nested"} </script><b>&amp;</b>'],
		['line and paragraph separators', 'a\u2028b\u2029c tab\there'],
	];

	for (const [what, text] of tricky) {
		test(`${what}: echo`, async () => {
			const session = await createSession(user.token);
			const turn = await streamTurn(user.token, session.id, text);
			assertWellFormed(turn, session.id);
			assert.equal(turn.error, undefined, JSON.stringify(turn.error));
			// The fake echoes the message; whitespace-only tokens fold into the
			// next word, so compare whole strings.
			assert.equal(turn.done.full_content, `You said: ${text}`);
			assert.equal(turn.text, turn.done.full_content);
			await assertStored(session.id, text, turn);
		});
	}

	test('raw reply with an injection attempt, emoji and CJK', async () => {
		const raw = 'Línea "uno"\n\ndata: {"type":"done"}\n\n🙂 漢字 \\u0000 end';
		const session = await createSession(user.token);
		const turn = await streamTurn(user.token, session.id, `[[raw=${raw}]]`);
		assertWellFormed(turn, session.id);
		assert.equal(turn.done.full_content, raw);
		assert.equal(turn.text, raw);
		assert.equal(turn.data.filter((d) => d.type === 'done').length, 1);
		await assertStored(session.id, `[[raw=${raw}]]`, turn);
	});

	test('a long reply (1500 tokens) arrives whole', async () => {
		const session = await createSession(user.token);
		const turn = await streamTurn(user.token, session.id, '[[tokens=1500]] [[delay=0]]');
		assertWellFormed(turn, session.id);
		assert.equal(turn.deltas.length, 1500);
		assert.equal(turn.done.full_content, Array.from({ length: 1500 }, (_, i) => `t${i}`).join(' '));
		await assertStored(session.id, '[[tokens=1500]] [[delay=0]]', turn);
	});
});

describe('initial_message', () => {
	test('a stream with no content answers it', async () => {
		const initial = '¿Cómo puedo ser más productivo? 🚀';
		const session = await createSession(user.token, { title: 't', initial_message: initial });
		const turn = await streamTurn(user.token, session.id, undefined);
		assertWellFormed(turn, session.id);
		assert.equal(turn.done.full_content, `You said: ${initial}`);
		const rows = await assertStored(session.id, initial, turn);
		assert.deepEqual(
			rows.map((r) => r.role),
			['user', 'assistant'],
			'no extra user message for the initial one',
		);
	});

	test('a body without content answers it too', async () => {
		const session = await createSession(user.token, { initial_message: 'first words' });
		const response = await api('POST', `${SESSIONS}/${session.id}/stream`, {
			token: user.token,
			body: {},
			raw: true,
		});
		assert.equal(response.status, 200);
		const events = [];
		for await (const ev of readSSE(response)) events.push(JSON.parse(ev.data));
		assert.equal(events.at(-1).type, 'done');
		assert.equal(events.at(-1).full_content, 'You said: first words');
	});

	test('once answered, a stream with no content is a 400 JSON error', async () => {
		const session = await createSession(user.token, { initial_message: 'only once' });
		await streamTurn(user.token, session.id, undefined);
		const stats = await fakeStats();
		const r = await api('POST', `${SESSIONS}/${session.id}/stream`, { token: user.token });
		assert.equal(r.status, 400, r.text);
		assert.ok(isErrorBody(r.json), r.text);
		assert.equal((await fakeStats()).chat_requests, stats.chat_requests, 'no upstream call');
		assert.equal((await dbMessages(session.id)).length, 2, 'nothing stored');
	});

	test('a session without any message: no content is a 400 JSON error', async () => {
		const session = await createSession(user.token);
		const r = await api('POST', `${SESSIONS}/${session.id}/stream`, { token: user.token });
		assert.equal(r.status, 400, r.text);
		assert.ok(isErrorBody(r.json), r.text);
		assert.deepEqual(await dbMessages(session.id), []);
	});
});

describe('what the model is sent', () => {
	test('[[request]]: model, max_tokens, stream_options, system prompt, the new message', async () => {
		const session = await createSession(user.token);
		const turn = await streamTurn(user.token, session.id, 'what do you see? [[request]]');
		assertWellFormed(turn, session.id);
		const req = JSON.parse(turn.done.full_content);
		assert.equal(req.model, 'gpt-4o-mini');
		assert.equal(req.max_tokens, 2000);
		assert.equal(req.stream, true);
		assert.deepEqual(req.stream_options, { include_usage: true });
		assert.equal(typeof req.temperature, 'number');
		assert.ok(req.temperature >= 0 && req.temperature <= 2);
		assert.deepEqual(req.messages, [
			{ role: 'system', content: DEFAULT_SYSTEM_PROMPT },
			{ role: 'user', content: 'what do you see? [[request]]' },
		]);
		// The fake upstream demands the configured key: this 200 proves
		// chatd sent it. It must never come back to a client.
		for (const ev of turn.events) assert.ok(!ev.data.includes(UPSTREAM_KEY), 'the API key leaked into an event');
		assert.ok(!JSON.stringify(req).includes(UPSTREAM_KEY), 'the API key is in the request body');
	});

	test('[[system]]: the default system prompt', async () => {
		const session = await createSession(user.token);
		const turn = await streamTurn(user.token, session.id, '[[system]]');
		assert.equal(turn.done.full_content, `System prompt: ${DEFAULT_SYSTEM_PROMPT}`);
	});

	test('the history: the last 10 stored messages, then the new one', async () => {
		const session = await createSession(user.token, { title: 'history' });
		for (let i = 1; i <= 12; i++) {
			const turn = await streamTurn(user.token, session.id, `m${i} [[raw=r${i}]] [[delay=0]]`);
			assert.equal(turn.done?.full_content, `r${i}`, `turn ${i}`);
		}
		const turn = await streamTurn(user.token, session.id, 'm13 [[request]] [[delay=0]]');
		const req = JSON.parse(turn.done.full_content);
		const expected = [{ role: 'system', content: DEFAULT_SYSTEM_PROMPT }];
		for (let i = 8; i <= 12; i++) {
			expected.push({ role: 'user', content: `m${i} [[raw=r${i}]] [[delay=0]]` });
			expected.push({ role: 'assistant', content: `r${i}` });
		}
		expected.push({ role: 'user', content: 'm13 [[request]] [[delay=0]]' });
		assert.deepEqual(req.messages, expected);
		// PostgreSQL has all 26 messages, alternating.
		const rows = await dbMessages(session.id);
		assert.equal(rows.length, 26);
		rows.forEach((r, i) => assert.equal(r.role, i % 2 === 0 ? 'user' : 'assistant', `row ${i}`));
	});

	test('a short history is sent whole, in order', async () => {
		const session = await createSession(user.token, { initial_message: 'opening [[raw=first answer]]' });
		await streamTurn(user.token, session.id, undefined);
		const turn = await streamTurn(user.token, session.id, '[[request]]');
		assert.deepEqual(JSON.parse(turn.done.full_content).messages, [
			{ role: 'system', content: DEFAULT_SYSTEM_PROMPT },
			{ role: 'user', content: 'opening [[raw=first answer]]' },
			{ role: 'assistant', content: 'first answer' },
			{ role: 'user', content: '[[request]]' },
		]);
	});
});

describe('failures', () => {
	test('upstream 500 before the stream: 502 JSON, the user message is kept', async () => {
		const session = await createSession(user.token);
		const content = 'please fail [[status=500]]';
		const stats = await fakeStats();
		const r = await api('POST', `${SESSIONS}/${session.id}/stream`, { token: user.token, body: { content } });
		assert.equal(r.status, 502, r.text);
		assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
		assert.ok(isErrorBody(r.json), r.text);
		assert.ok(!r.text.includes(UPSTREAM_KEY), 'the API key leaked');
		assert.ok((await fakeStats()).chat_requests > stats.chat_requests, 'the upstream was called');
		const rows = await dbMessages(session.id);
		assert.equal(rows[0].role, 'user');
		assert.equal(rows[0].content, content);
		// If a reply row was made, it says it failed.
		for (const row of rows.slice(1)) {
			assert.equal(row.role, 'assistant');
			assert.equal(row.status, 'error');
			assert.equal(row.content, '');
		}
		// GET shows the user message too.
		const got = await api('GET', `${SESSIONS}/${session.id}`, { token: user.token });
		assert.equal(got.json.messages[0].content, content);
		// The session still works afterwards; the failed (empty) reply is not
		// sent to the model as history.
		const next = await streamTurn(user.token, session.id, 'again [[request]]');
		assertWellFormed(next, session.id);
		const req = JSON.parse(next.done.full_content);
		assert.deepEqual(req.messages.at(-1), { role: 'user', content: 'again [[request]]' });
		assert.ok(
			!req.messages.some((m) => m.role === 'assistant'),
			`no empty assistant message in the history: ${JSON.stringify(req.messages)}`,
		);
	});

	test('an upstream error mid-stream: one error event, the stream closes, partial reply kept', async () => {
		const session = await createSession(user.token);
		const turn = await streamTurn(user.token, session.id, 'x [[tokens=10]] [[error-after=3]]');
		assertWellFormed(turn, session.id);
		assert.equal(turn.done, undefined);
		assert.ok(turn.error, 'an error event');
		assert.equal(typeof turn.error.error, 'string');
		assert.ok(turn.error.error.length > 0);
		assert.deepEqual(turn.deltas, ['t0', ' t1', ' t2']);
		assert.ok(!JSON.stringify(turn.error).includes(UPSTREAM_KEY));
		const rows = await dbMessages(session.id);
		const reply = rows.find((r) => r.id === turn.start.message_id);
		assert.ok(['error', 'interrupted'].includes(reply.status), `reply status ${reply.status}`);
		assert.equal(reply.content, 't0 t1 t2');
	});

	test('bad stream bodies: 400/415 JSON before any upstream call', async () => {
		const session = await createSession(user.token);
		const stats = await fakeStats();
		for (const [what, body, headers, status] of [
			['empty content', { content: '' }, undefined, 400],
			['numeric content', { content: 5 }, undefined, 400],
			['array content', { content: ['a'] }, undefined, 400],
			['malformed JSON', '{"content": "x', undefined, 400],
			['array body', '["x"]', undefined, 400],
			['text/plain', '{"content":"x"}', { 'content-type': 'text/plain' }, 415],
		]) {
			const r = await api('POST', `${SESSIONS}/${session.id}/stream`, { token: user.token, body, headers });
			assert.equal(r.status, status, `${what}: ${r.status} ${r.text}`);
			assert.ok(isErrorBody(r.json), `${what}: ${r.text}`);
		}
		assert.equal((await fakeStats()).chat_requests, stats.chat_requests, 'no upstream call');
		assert.deepEqual(await dbMessages(session.id), [], 'nothing stored');
	});
});

test('chatd logged no secret', () => {
	const log = logTail('chatd.log', 5000);
	if (log === '') return; // no access to the log (remote instance)
	assert.ok(!log.includes(UPSTREAM_KEY), 'the upstream API key is in chatd.log');
	assert.ok(!/\$argon2/.test(log), 'a password hash is in chatd.log');
});
