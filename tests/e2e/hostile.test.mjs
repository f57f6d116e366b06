// hostile.test.mjs: issue 9, hostile input is refused, and nothing breaks.
// Truncated and smuggled requests, bad JSON beyond the basics of
// validation.test.mjs (every non-RFC 8259 form, depth at the limit, numbers,
// duplicate keys, surrogates), bad UTF-8 and NUL in every string field, huge
// headers, unknown and mass-assignment fields, SQL metacharacters in every
// string field (stored and echoed verbatim), path traversal on the static
// files, header injection, and SSE framing injection in every field that
// reaches an event. Safe on the shared instance; every request is counted
// and the totals are printed at the end ("inputs tried").
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
	BASE_URL,
	CA_CERT,
	CHAT_VAR,
	FCGI_SOCKET,
	HTTP_URL,
	REPO,
	SESSIONS,
	api,
	chatdWorkerPids,
	closeDb,
	createSession,
	db,
	dbMessages,
	decodeJwtPart,
	fakeStats,
	fcgiRequest,
	isErrorBody,
	jwtSecret,
	poolStatus,
	randomClientIp,
	rawHttp,
	rawRequest,
	readAll,
	registerAndLogin,
	run,
	sleep,
	streamTurn,
	tokensText,
	uniqueName,
	waitFor,
} from './lib.mjs';

let tried = 0; // inputs sent, for the summary
const count = (n = 1) => {
	tried += n;
};
after(async () => {
	// The instance survived all of it: every worker that was there still is.
	await closeDb();
});

// The user (and a session of theirs) the requests of a suite run as. Each
// suite gets a fresh one: refused requests count against the per-user chat
// rate limit too, and one user would run out of it here.
let user;
let session;
let workersAtStart;
async function freshUser() {
	user = await registerAndLogin('hostile');
	session = await createSession(user.token, { title: 'hostile' });
}
before(async () => {
	workersAtStart = chatdWorkerPids();
});

/** What a refused request must not have caused: upstream calls, rows. */
async function footprint() {
	const [stats, rows] = await Promise.all([
		fakeStats(),
		db().query(
			`SELECT (SELECT count(*) FROM chat_sessions)::int AS sessions,
			        (SELECT count(*) FROM messages)::int AS messages,
			        (SELECT count(*) FROM users)::int AS users,
			        (SELECT count(*) FROM user_settings)::int AS settings`,
		),
	]);
	return { upstream: stats.chat_requests, ...rows.rows[0] };
}

function assertError(r, status, what) {
	const statuses = Array.isArray(status) ? status : [status];
	assert.ok(statuses.includes(r.status), `${what}: status ${r.status}, expected ${statuses} (${String(r.text).slice(0, 200)})`);
	assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${what}: content-type`);
	assert.ok(isErrorBody(r.json), `${what}: {"error": "..."}: ${String(r.text).slice(0, 200)}`);
}

/**
 * The JSON routes with a valid body and its string fields, as
 * {name, method, path, token, body, fields: [dotted paths of strings]}.
 * Anonymous routes get a random client address (their own rate limit).
 */
function jsonRoutes() {
	const t = user.token;
	return [
		{ name: 'register', method: 'POST', path: '/api/auth/register', body: { username: uniqueName('h'), password: 'password1', email: 'a@b.c' }, fields: ['username', 'password', 'email'] },
		{ name: 'login', method: 'POST', path: '/api/auth/login', body: { username: user.username, password: user.password }, fields: ['username', 'password'] },
		{ name: 'session create', method: 'POST', path: SESSIONS, token: t, body: { title: 't', initial_message: 'm' }, fields: ['title', 'initial_message'] },
		{ name: 'session rename', method: 'PATCH', path: `${SESSIONS}/${session.id}`, token: t, body: { title: 't' }, fields: ['title'] },
		{ name: 'seed 000 stream', method: 'POST', path: `${SESSIONS}/${session.id}/stream`, token: t, body: { content: 'c [[tokens=1]]' }, fields: ['content'] },
		{ name: 'seed 002 stream', method: 'POST', path: '/stream/chat', token: t, body: { message: 'm [[tokens=1]]', conversation_id: 'c', metadata: { k: 'v' } }, fields: ['message', 'conversation_id', 'metadata.k'] },
		{ name: 'seed 003 stream', method: 'POST', path: '/api/v2/ai/chat/stream', body: { message: 'm [[tokens=1]]', sessionId: 's' }, fields: ['message', 'sessionId'] },
		{ name: 'seed 004 chat', method: 'POST', path: '/api/chat', body: { message: 'm [[tokens=1]]', history: [{ role: 'user', content: 'h' }] }, fields: ['message', 'history.0.content', 'history.0.role'] },
		{ name: 'settings', method: 'PUT', path: '/api/settings', token: t, body: { system_prompt: 's', model: 'gpt-4o-mini', realtime_model: 'gpt-realtime', voice: 'v' }, fields: ['system_prompt', 'model', 'realtime_model', 'voice'] },
		{ name: 'seed 001 completion', method: 'POST', path: '/openai/chatCompletion', token: t, body: { messages: [{ role: 'user', content: 'c [[tokens=1]]' }] }, fields: ['messages.0.content', 'messages.0.role'] },
		{ name: 'v1 completions', method: 'POST', path: '/v1/chat/completions', token: t, body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'c [[tokens=1]]' }] }, fields: ['model', 'messages.0.content'] },
		{ name: 'livekit token', method: 'POST', path: '/api/livekit/token', token: t, body: { roomName: 'r', participantName: 'p' }, fields: ['roomName', 'participantName'] },
	];
}

/** Sets a dotted path (a.0.b) in a copy of obj. */
function setPath(obj, dotted, value) {
	const copy = structuredClone(obj);
	const keys = dotted.split('.');
	let o = copy;
	for (const k of keys.slice(0, -1)) o = o[k];
	o[keys.at(-1)] = value;
	return copy;
}

/** A request with a raw (Buffer) or JSON body; a random client address for anonymous routes. */
function send(route, body, extraHeaders = {}) {
	count();
	const headers = { 'x-forwarded-for': randomClientIp(), ...extraHeaders };
	return rawRequest(route.method, `${HTTP_URL}${route.path}`, { token: route.token, body, headers, timeout: 20000 });
}

// ------------------------------------------------------------- transport

describe('truncated, stalled and smuggled requests', () => {
	before(freshUser);

	/** A client address only this request uses: if chatd ever saw it, a rate-limit row would name it. */
	async function chatdSaw(ip) {
		const { rows } = await db().query(`SELECT 1 FROM rate_limits WHERE key = $1`, [`chat:ip:${ip}`]);
		return rows.length > 0;
	}

	test('a body cut short (Content-Length or chunked, then EOF) is dropped by nginx at once; chatd never sees it', async () => {
		for (const [what, head, part] of [
			['Content-Length 100, 16 bytes sent', 'Content-Length: 100', '{"message":"hi"}'],
			['chunked, a chunk cut short', 'Transfer-Encoding: chunked', '20\r\n{"message":"hi'],
			['chunked, no last chunk', 'Transfer-Encoding: chunked', '10\r\n{"message":"hi"}\r\n'],
		]) {
			const ip = randomClientIp();
			count();
			const t0 = performance.now();
			const r = await rawHttp(
				`POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Forwarded-For: ${ip}\r\n${head}\r\n\r\n${part}`,
				{ halfClose: true, timeout: 5000 },
			);
			const ms = performance.now() - t0;
			assert.ok(!r.timedOut && ms < 3000, `${what}: the connection ended within ${ms.toFixed(0)} ms`);
			assert.ok(r.status === 0 || r.status === 400, `${what}: ${r.status}`);
			assert.equal(await chatdSaw(ip), false, `${what}: chatd saw the request`);
		}
	});

	test('uploads that stall mid-body hold no chatd thread (nginx reads bodies whole first); other requests are not slowed', async () => {
		const u = new URL(HTTP_URL);
		const net = await import('node:net');
		const busyBefore = (await poolStatus()).busy_threads;
		const socks = [];
		for (let i = 0; i < 40; i++) {
			count();
			const s = net.createConnection({ host: u.hostname, port: Number(u.port) });
			s.on('error', () => {});
			s.write(`POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{"message":"`);
			socks.push(s);
		}
		await sleep(500);
		try {
			const st = await poolStatus();
			assert.ok(st.busy_threads <= busyBefore + 1, `busy threads ${busyBefore} → ${st.busy_threads}`);
			const t0 = performance.now();
			const r = await streamTurn(user.token, session.id, 'while they stall [[tokens=3]]');
			assert.equal(r.text, tokensText(3));
			assert.ok(performance.now() - t0 < 3000, 'a stream meanwhile is not slowed');
		} finally {
			for (const s of socks) s.destroy();
		}
	});

	test('framing attacks are refused by nginx before chatd: duplicate or negative Content-Length, Transfer-Encoding with Content-Length (smuggling), bad chunk sizes, obs-fold, bare CR and NUL in headers', async () => {
		const cases = [
			['two Content-Lengths', (ip) => `POST /api/chat HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${ip}\r\nContent-Type: application/json\r\nContent-Length: 5\r\nContent-Length: 17\r\n\r\n{"message":"hi"}`],
			['negative Content-Length', (ip) => `POST /api/chat HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${ip}\r\nContent-Type: application/json\r\nContent-Length: -1\r\n\r\n{}`],
			['Content-Length beyond 64 bits', (ip) => `POST /api/chat HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${ip}\r\nContent-Type: application/json\r\nContent-Length: 99999999999999999999\r\n\r\n{}`],
			['chunk size beyond 64 bits', (ip) => `POST /api/chat HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${ip}\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\nffffffffffffffffff\r\n{}\r\n0\r\n\r\n`],
			['unknown Transfer-Encoding', (ip) => `POST /api/chat HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${ip}\r\nContent-Type: application/json\r\nTransfer-Encoding: gzip, chunked\r\n\r\n2\r\n{}\r\n0\r\n\r\n`],
			['obs-fold continuation line', (ip) => `GET /api/auth/me HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${ip}\r\nX-A: a\r\n Set-Cookie: x=1\r\n\r\n`],
			['bare CR inside a header', (ip) => `GET /api/auth/me HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${ip}\r\nX-A: a\rSet-Cookie: x=1\r\n\r\n`],
			['NUL inside a header', (ip) => `GET /api/auth/me HTTP/1.1\r\nHost: x\r\nX-Forwarded-For: ${ip}\r\nX-A: a\0b\r\n\r\n`],
			['no Host', (ip) => `GET /api/auth/me HTTP/1.1\r\nX-Forwarded-For: ${ip}\r\n\r\n`],
		];
		for (const [what, build] of cases) {
			const ip = randomClientIp();
			count();
			const r = await rawHttp(build(ip), { timeout: 5000 });
			assert.ok(!r.timedOut, `${what}: answered`);
			assert.ok(r.status >= 400 && r.status < 500 || r.status === 501, `${what}: ${r.status}`);
			assert.doesNotMatch(r.head, /^set-cookie:/im, `${what}: no header got through`);
			assert.equal(await chatdSaw(ip), false, `${what}: reached chatd`);
		}
		// Smuggling: Content-Length and Transfer-Encoding together, with a
		// second request hidden in the body; it must not run.
		const hidden = randomClientIp();
		count();
		const r = await rawHttp(
			`POST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 4\r\nTransfer-Encoding: chunked\r\n\r\n` +
				`0\r\n\r\nPOST /api/chat HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nX-Forwarded-For: ${hidden}\r\nContent-Length: 17\r\n\r\n{"message":"hi"}`,
			{ timeout: 5000 },
		);
		assert.equal(r.status, 400, 'CL + TE is refused');
		await sleep(200);
		assert.equal(await chatdSaw(hidden), false, 'the smuggled request never ran');
	});

	test('straight to the FastCGI socket: a lying CONTENT_LENGTH, odd and missing parameters are answered with 4xx, no worker dies', async () => {
		const base = { REQUEST_METHOD: 'POST', DOCUMENT_URI: '/api/chat', REQUEST_URI: '/api/chat', CONTENT_TYPE: 'application/json', REMOTE_ADDR: '127.0.0.9' };
		const cases = [
			['CONTENT_LENGTH larger than the body (cut JSON)', { ...base, CONTENT_LENGTH: '1000' }, '{"message":"h', [400]],
			['CONTENT_LENGTH not a number', { ...base, CONTENT_LENGTH: 'abc' }, '{"message":"hi"}', [400]],
			['CONTENT_LENGTH negative', { ...base, CONTENT_LENGTH: '-1' }, '{"message":"hi"}', [400, 413]],
			['CONTENT_LENGTH beyond 64 bits', { ...base, CONTENT_LENGTH: '99999999999999999999999' }, '{"message":"hi"}', [400, 413]],
			['CONTENT_LENGTH over the limit', { ...base, CONTENT_LENGTH: String(64 << 20) }, '{}', [413]],
			['no REQUEST_METHOD', { DOCUMENT_URI: '/api/auth/me' }, '', [401, 404, 405]],
			['no path at all', { REQUEST_METHOD: 'GET' }, '', [404]],
			['a 5000-byte path', { REQUEST_METHOD: 'GET', DOCUMENT_URI: `${SESSIONS}/${'a'.repeat(5000)}` }, '', [401, 404]],
			['a 5000-byte REQUEST_URI, no DOCUMENT_URI', { REQUEST_METHOD: 'GET', REQUEST_URI: `/healthz${'a'.repeat(5000)}?x=1` }, '', [404]],
			['a 60 KB Authorization', { REQUEST_METHOD: 'GET', DOCUMENT_URI: '/api/auth/me', HTTP_AUTHORIZATION: `Bearer ${'a'.repeat(60000)}` }, '', [401]],
			['a 60 KB X-Forwarded-For from a trusted proxy', { ...base, REMOTE_ADDR: '127.0.0.1', HTTP_X_FORWARDED_FOR: '1.2.3.4,'.repeat(7500) }, '{"message":1}', [400]],
			['bytes that are not UTF-8 in the path', { REQUEST_METHOD: 'GET', DOCUMENT_URI: '/api/\xff\xfe' }, '', [404]],
		];
		for (const [what, params, body, statuses] of cases) {
			count();
			const r = await fcgiRequest(FCGI_SOCKET, params, body, 10000);
			assert.ok(statuses.includes(r.status), `${what}: ${r.status} ${r.text.slice(0, 200)}`);
			assert.ok(isErrorBody(r.json), `${what}: ${r.text.slice(0, 200)}`);
		}
		assert.deepEqual(chatdWorkerPids(), workersAtStart, 'no worker died');
	});
});

// ------------------------------------------------------------------ JSON

describe('bad JSON, beyond validation.test.mjs', () => {
	before(freshUser);

	const NOT_JSON = [
		['single quotes', `{'message':'x'}`],
		['NaN', '{"message":"x","n":NaN}'],
		['Infinity', '{"message":"x","n":-Infinity}'],
		['a trailing comma in an object', '{"message":"x",}'],
		['a trailing comma in an array', '{"message":"x","a":[1,]}'],
		['a block comment', '{"message":"x" /* c */}'],
		['a line comment', '{"message":"x"} // c'],
		['a byte order mark', '\ufeff{"message":"x"}'],
		['an unquoted key', '{message:"x"}'],
		['a hex number', '{"message":"x","n":0x10}'],
		['a leading zero', '{"message":"x","n":01}'],
		['a plus sign', '{"message":"x","n":+1}'],
		['.5', '{"message":"x","n":.5}'],
		['1.', '{"message":"x","n":1.}'],
		['a raw tab in a string', '{"message":"a\tb"}'],
		['a raw newline in a string', '{"message":"a\nb"}'],
		['a raw control character', '{"message":"a\x01b"}'],
		['a raw NUL', '{"message":"a\x00b"}'],
		['the escape \\x', '{"message":"a\\x41"}'],
		['a short \\u escape', '{"message":"a\\u12"}'],
		['the escape \\a', '{"message":"a\\a"}'],
		['two values', '{"message":"x"} {"message":"y"}'],
		['a lone value after the object', '{"message":"x"} 1'],
		['an unterminated string', '{"message":"x'],
		['an unterminated object', '{"message":"x"'],
		['a key without a value', '{"message"}'],
		['a colon without a key', '{:"x"}'],
		['true misspelt', '{"message":"x","b":tru}'],
		['nothing but whitespace', ' \n\t '],
	];

	test(`${NOT_JSON.length} forms json-c would accept or that are not RFC 8259, on every JSON route: 400 JSON, nothing called, nothing stored`, async () => {
		const before = await footprint();
		for (const route of jsonRoutes()) {
			for (const [what, body] of NOT_JSON) {
				const r = await send(route, Buffer.from(body, 'utf8'));
				assertError(r, 400, `${route.name}, ${what}`);
			}
		}
		assert.deepEqual(await footprint(), before);
	});

	test('nesting: 32 levels are accepted, 33 refused; wide arrays and long keys are fine', async () => {
		const nested = (d) => `{"message":"x [[tokens=1]]","extra":${'['.repeat(d - 1)}${']'.repeat(d - 1)}}`;
		const route = jsonRoutes().find((r) => r.name === 'seed 004 chat');
		const ok = await send(route, nested(32));
		assert.equal(ok.status, 200, `depth 32: ${ok.text}`);
		assertError(await send(route, nested(33)), 400, 'depth 33');
		assertError(await send(route, `{"message":"x","extra":${'{"a":'.repeat(5000)}1${'}'.repeat(5000)}}`), 400, '5000 nested objects');
		const wide = await send(route, JSON.stringify({ message: 'x [[tokens=1]]', extra: Array.from({ length: 50000 }, (_, i) => i) }));
		assert.equal(wide.status, 200, `50,000 array items: ${wide.text.slice(0, 200)}`);
		const keys = await send(route, JSON.stringify({ message: 'x [[tokens=1]]', ['k'.repeat(100000)]: 1 }));
		assert.equal(keys.status, 200, `a 100 KB key: ${keys.text.slice(0, 200)}`);
		const many = await send(route, JSON.stringify({ message: 'x [[tokens=1]]', ...Object.fromEntries(Array.from({ length: 20000 }, (_, i) => [`k${i}`, i])) }));
		assert.equal(many.status, 200, `20,000 keys: ${many.text.slice(0, 200)}`);
	});

	test('numbers out of range in numeric fields are 400; in ignored fields harmless', async () => {
		const settings = jsonRoutes().find((r) => r.name === 'settings');
		const v1 = jsonRoutes().find((r) => r.name === 'v1 completions');
		const before = await api('GET', '/api/settings', { token: user.token });
		for (const n of ['1e999', '-1e999', '1e-999', '2.0000000000000001', '-0.0000001', '99999999999999999999999999', '2e0']) {
			const r = await send(settings, Buffer.from(`{"temperature":${n}}`));
			const value = Number(n);
			if (value >= 0 && value <= 2) assert.equal(r.status, 200, `temperature ${n}: ${r.text}`);
			else assertError(r, 400, `temperature ${n}`);
			if (r.status === 200) assert.ok(r.json.temperature >= 0 && r.json.temperature <= 2, `stored ${r.json.temperature}`);
		}
		for (const [field, n] of [['max_tokens', '1e999'], ['max_tokens', '0'], ['max_tokens', '-5'], ['max_tokens', '1e7'], ['temperature', '1e999'], ['temperature', '-1']]) {
			assertError(await send(v1, Buffer.from(`{"model":"gpt-4o-mini","${field}":${n},"messages":[{"role":"user","content":"x"}]}`)), 400, `${field} ${n}`);
		}
		for (const q of ['limit=1e3', 'offset=-1', 'limit=0x10', 'limit=0', 'limit=101', 'offset=1;DROP', "limit=1'--"]) {
			count();
			assertError(await api('GET', `${SESSIONS}?${q}`, { token: user.token }), 400, q);
		}
		await api('PUT', '/api/settings', { token: user.token, body: { temperature: before.json.temperature } });
	});

	// FINDING (reported; left failing on purpose until chatd is fixed): a
	// query value that is too long for chatd's 16-byte buffer, or holds %00,
	// is taken as absent (http_query_get returns false for both), so
	// ?limit=99999999999999999999 answers 200 with the default 20 instead of
	// the 400 that ?limit=1000 gets.
	test('limit and offset that are too long or hold NUL are refused like any other bad value', async () => {
		const bad = [];
		for (const q of ['limit=99999999999999999999', 'offset=99999999999999999999', 'limit=%00', 'limit=1%00']) {
			count();
			const r = await api('GET', `${SESSIONS}?${q}`, { token: user.token });
			if (r.status !== 400) bad.push(`?${q}: ${r.status} ${r.text.slice(0, 80)}`);
		}
		assert.deepEqual(bad, []);
	});

	test('duplicate keys: the last one counts, on every field; never both, never a crash', async () => {
		const route = jsonRoutes().find((r) => r.name === 'seed 004 chat');
		const r = await send(route, '{"message":"first [[tokens=2]]","message":"second [[raw=B]]"}');
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.reply, 'B', 'the last "message" won');
		const own = await createSession(user.token);
		const s = await send(
			{ ...jsonRoutes().find((x) => x.name === 'seed 000 stream'), path: `${SESSIONS}/${own.id}/stream` },
			'{"content":"one [[tokens=1]]","content":"two [[tokens=1]]"}',
		);
		assert.equal(s.status, 200);
		const msgs = await dbMessages(own.id);
		assert.deepEqual(msgs.filter((m) => m.role === 'user').map((m) => m.content), ['two [[tokens=1]]'], 'one message, the last value');
	});

	test('surrogate escapes: a pair is the character; a lone one is refused or becomes U+FFFD, never stored as broken UTF-8', async () => {
		const route = jsonRoutes().find((r) => r.name === 'seed 004 chat');
		const pair = await send(route, '{"message":"[[raw=a\\ud83d\\ude00b]]"}');
		assert.equal(pair.json?.reply, 'a😀b');
		for (const esc of ['\\ud800', '\\udfff', '\\ud800\\u0041', '\\udc00\\ud800']) {
			const r = await send(route, `{"message":"[[raw=a${esc}b]]"}`);
			if (r.status === 400) assertError(r, 400, esc);
			else {
				assert.equal(r.status, 200, `${esc}: ${r.text}`);
				assert.ok(!/[\ud800-\udfff]/.test(r.json.reply.replace(/[\ud800-\udbff][\udc00-\udfff]/g, '')), `${esc}: no lone surrogate came back`);
				assert.ok(r.json.reply.includes('\ufffd'), `${esc}: replaced by U+FFFD: ${JSON.stringify(r.json.reply)}`);
			}
		}
		const own = await createSession(user.token);
		await send({ ...jsonRoutes().find((x) => x.name === 'seed 000 stream'), path: `${SESSIONS}/${own.id}/stream` }, '{"content":"x\\ud800y [[tokens=1]]"}');
		for (const m of await dbMessages(own.id)) assert.ok(!/[\ud800-\udfff]/.test(m.content.replace(/[\ud800-\udbff][\udc00-\udfff]/g, '')), 'stored text is valid');
	});
});

// ----------------------------------------------------- UTF-8 and NUL bytes

describe('bad UTF-8 and NUL in every string field', () => {
	before(freshUser);

	const BAD = {
		'0xff': [0xff],
		'an overlong "/"': [0xc0, 0xaf],
		'an overlong 3-byte form': [0xe0, 0x80, 0xaf],
		'a UTF-8 encoded surrogate': [0xed, 0xa0, 0x80],
		'beyond U+10FFFF': [0xf4, 0x90, 0x80, 0x80],
		'a truncated sequence': [0xe2, 0x82],
		'a lone continuation byte': [0x80],
		'a 5-byte form': [0xf8, 0x88, 0x80, 0x80, 0x80],
	};

	test(`${Object.keys(BAD).length} malformed sequences and \\u0000 in each string field of each route: 400 JSON, nothing called, nothing stored`, async () => {
		const before = await footprint();
		let n = 0;
		for (const route of jsonRoutes()) {
			for (const field of route.fields) {
				const marker = `@@${crypto.randomBytes(6).toString('hex')}@@`;
				const template = Buffer.from(JSON.stringify(setPath(route.body, field, `a${marker}b`)), 'utf8');
				const at = template.indexOf(marker);
				for (const [what, bytes] of Object.entries(BAD)) {
					const body = Buffer.concat([template.subarray(0, at), Buffer.from(bytes), template.subarray(at + marker.length)]);
					assertError(await send(route, body), 400, `${route.name}.${field}, ${what}`);
					n += 1;
				}
				// NUL: refused in every field chatd uses (seed 002's metadata
				// is accepted as an object and ignored, so its values are not).
				if (field.startsWith('metadata.')) continue;
				const nul = Buffer.from(JSON.stringify(setPath(route.body, field, 'a\u0000b')), 'utf8');
				assertError(await send(route, nul), 400, `${route.name}.${field}, \\u0000`);
				n += 1;
			}
			// And in a key.
			const key = Buffer.concat([Buffer.from('{"'), Buffer.from([0xc0, 0xaf]), Buffer.from(`":1,${JSON.stringify(route.body).slice(1)}`)]);
			assertError(await send(route, key), 400, `${route.name}, bad UTF-8 in a key`);
			n += 1;
		}
		assert.ok(n > 200, `${n} inputs`);
		assert.deepEqual(await footprint(), before);
	});
});

// --------------------------------------------------------------- headers

describe('huge and odd headers', () => {
	before(freshUser);

	const get = (extra) => `GET /api/auth/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${user.token}\r\n${extra}\r\n`;

	test('too large is refused by nginx (4xx, never 5xx, never a hang); within the limits chatd answers normally', async () => {
		for (const [what, req, statuses] of [
			['one 16 KB header', get(`X-Big: ${'a'.repeat(16000)}\r\n`), [400, 431, 494]],
			['60 headers of 1 KB', get(Array.from({ length: 60 }, (_, i) => `X-H${i}: ${'b'.repeat(1000)}\r\n`).join('')), [400, 431, 494]],
			['a 20 KB request line', `GET /api/${'a'.repeat(20000)} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, [414]],
			['a 16 KB cookie', get(`Cookie: a=${'c'.repeat(16000)}\r\n`), [400, 431, 494]],
			['2000 small headers', get(Array.from({ length: 2000 }, (_, i) => `X-${i}: 1\r\n`).join('')), [200, 400, 431, 494]],
		]) {
			count();
			const r = await rawHttp(req, { timeout: 5000 });
			assert.ok(!r.timedOut, `${what}: answered`);
			assert.ok(statuses.includes(r.status), `${what}: ${r.status}`);
		}
		count(2);
		const ok = await rawHttp(get(Array.from({ length: 100 }, (_, i) => `X-Pad-${i}: ${'p'.repeat(60)}\r\n`).join('')));
		assert.equal(ok.status, 200, '100 headers of 70 bytes are fine');
		const auth = await rawHttp(`GET /api/auth/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${'a'.repeat(7000)}\r\n\r\n`);
		assert.equal(auth.status, 401, 'a 7 KB bearer token is just a bad token');
		assert.deepEqual(JSON.parse(auth.text.split('\r\n').find((l) => l.startsWith('{'))), { error: 'Unauthorized' });
	});

	// FINDING (reported; left failing on purpose until the nginx site is
	// fixed): the errors nginx produces itself for malformed or oversized
	// requests (400, 414, and 405 for TRACE) are its HTML pages, while
	// SPEC §7 wants every API error as JSON {"error": ...}; only 403, 413,
	// 502 and 504 are mapped to JSON in nginx/chat-routes.conf.in.
	test('errors nginx itself produces on API paths are JSON too', async () => {
		const bad = [];
		// A request nginx cannot parse (a header or request line over its
		// buffers, a malformed header) is refused before any location or
		// error_page applies: those stay nginx's own 400/414 pages (see
		// nginx/chat-routes.conf.in); the "never 5xx, never a hang" checks
		// above cover them. Everything nginx answers after parsing is JSON.
		for (const [what, req] of [
			// (chatd's own 405 for other methods is JSON: sessions.test.mjs)
			['TRACE', `TRACE /api/auth/me HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`],
		]) {
			count();
			const r = await rawHttp(req, { timeout: 5000 });
			const ctype = /^content-type:\s*(.*)$/im.exec(r.head)?.[1] ?? '';
			let json;
			try {
				json = JSON.parse(r.text);
			} catch {
				json = undefined;
			}
			if (!/^application\/json/.test(ctype) || !isErrorBody(json)) bad.push(`${what}: ${r.status} ${ctype}`);
		}
		assert.deepEqual(bad, [], 'non-JSON error answers');
	});
});

// --------------------------------------------------------- unknown fields

describe('unknown fields and mass assignment', () => {
	before(freshUser);

	test('unknown fields are ignored (settings: refused), and fields the server owns cannot be set by a client', async () => {
		const victim = await registerAndLogin('massvictim');
		const extra = {
			user_id: victim.userId, id: crypto.randomUUID(), session_id: crypto.randomUUID(), role: 'system', status: 'complete',
			created_at: '2000-01-01T00:00:00.000Z', is_admin: true, __proto__: { polluted: 1 }, constructor: { prototype: {} },
			password_hash: '$argon2id$v=19$m=1,t=1,p=1$AAAA$AAAA',
		};
		const bodyWith = (b) => ({ ...b, ...JSON.parse(JSON.stringify(extra)) });
		// Registration: no id, hash or admin flag taken from the client.
		const username = uniqueName('mass');
		const reg = await send(jsonRoutes()[0], bodyWith({ username, password: 'password1' }));
		assert.equal(reg.status, 201, reg.text);
		assert.notEqual(reg.json.id, extra.id);
		assert.deepEqual(Object.keys(reg.json).sort(), ['created_at', 'email', 'id', 'username']);
		const { rows } = await db().query('SELECT password_hash FROM users WHERE id = $1', [reg.json.id]);
		assert.notEqual(rows[0].password_hash, extra.password_hash);
		const login = await api('POST', '/api/auth/login', { body: { username, password: 'password1' } });
		assert.equal(login.status, 200, 'the real password works');
		// A session is the caller's, whatever user_id the body names.
		const created = await send(jsonRoutes()[2], bodyWith({ title: 'mine' }));
		assert.equal(created.status, 201);
		assert.equal(created.json.user_id, user.userId);
		assert.notEqual(created.json.id, extra.id);
		assert.ok(created.json.created_at > '2001', 'created_at is the server’s');
		const renamed = await send({ ...jsonRoutes()[3], path: `${SESSIONS}/${created.json.id}` }, bodyWith({ title: 'still mine' }));
		assert.equal(renamed.status, 200);
		assert.equal(renamed.json.user_id, user.userId);
		// Streams: the message is the user's, the reply the assistant's.
		const s = await send({ ...jsonRoutes()[4], path: `${SESSIONS}/${created.json.id}/stream` }, bodyWith({ content: 'hello [[tokens=1]]' }));
		assert.equal(s.status, 200);
		const msgs = await dbMessages(created.json.id);
		assert.deepEqual(msgs.map((m) => m.role), ['user', 'assistant']);
		assert.equal(msgs[1].status, 'complete');
		// Unknown fields elsewhere are ignored...
		for (const name of ['seed 002 stream', 'seed 003 stream', 'seed 004 chat', 'seed 001 completion', 'v1 completions', 'livekit token']) {
			const route = jsonRoutes().find((r) => r.name === name);
			const r = await send(route, bodyWith(route.body));
			assert.equal(r.status, 200, `${name} with unknown fields: ${r.text.slice(0, 200)}`);
		}
		// ...but not in the settings, which name every field they take.
		assertError(await send(jsonRoutes().find((r) => r.name === 'settings'), { voice: 'marin', user_id: victim.userId }), 400, 'settings + user_id');
		const theirs = await api('GET', `${SESSIONS}`, { token: victim.token });
		assert.equal(theirs.json.sessions.length, 0, 'nothing was created for the user named in the bodies');
		assert.equal(({}).polluted, undefined);
	});
});

// ------------------------------------------------------------------- SQL

const SQL = [
	`'; DROP TABLE users; --`,
	`" OR "1"="1`,
	`' OR '1'='1' --`,
	`\\'; SELECT pg_sleep(5); --`,
	`$$; DELETE FROM messages; $$`,
	`%_%' ESCAPE '\\`,
	`1); TRUNCATE chat_sessions CASCADE; --`,
	`\\x00\\u0000 E'\\\\' $1 $2 ::text ;`,
	`'||(SELECT password_hash FROM users LIMIT 1)||'`,
	`*/ UNION SELECT * FROM users /*`,
];

describe('SQL metacharacters in every string field', () => {
	before(freshUser);

	test(`${SQL.length} payloads: stored and answered verbatim where a field is free text, refused where it is not; the tables are intact`, async () => {
		const before = await footprint();
		const t0 = performance.now();
		for (const p of SQL) {
			// Free-text fields: round trip.
			const s = await send(jsonRoutes()[2], { title: p, initial_message: p });
			assert.equal(s.status, 201, s.text);
			assert.equal(s.json.title, p);
			const sid = s.json.id;
			const got = await api('GET', `${SESSIONS}/${sid}`, { token: user.token });
			count();
			assert.equal(got.json.title, p);
			assert.equal(got.json.messages[0].content, p, 'initial_message stored verbatim');
			const ren = await send({ ...jsonRoutes()[3], path: `${SESSIONS}/${sid}` }, { title: `${p}!` });
			assert.equal(ren.json.title, `${p}!`);
			const st = await send({ ...jsonRoutes()[4], path: `${SESSIONS}/${sid}/stream` }, { content: `[[raw=${p}]]` }, { 'idempotency-key': p });
			assert.equal(st.status, 200, st.text);
			const { events } = await readAll(new Response(st.text));
			assert.equal(events.at(-1).json.full_content, p.replace(/\]\].*/s, ''), 'the reply carries the payload');
			const msgs = await dbMessages(sid);
			assert.equal(msgs.at(-2).content, `[[raw=${p}]]`, 'the message is stored verbatim');
			// Seeds 002 and 003: the payload as message and as the conversation name.
			for (const [route, ref] of [['seed 002 stream', 'conversation_id'], ['seed 003 stream', 'sessionId']]) {
				const base = jsonRoutes().find((r) => r.name === route);
				const a = await send({ ...base, token: user.token }, { message: `${p} [[tokens=1]]`, [ref]: p.slice(0, 100) });
				assert.equal(a.status, 200, `${route}: ${a.text.slice(0, 200)}`);
				const b = await send({ ...base, token: user.token }, { message: '[[request]]', [ref]: p.slice(0, 100) });
				const { events: ev } = await readAll(new Response(b.text));
				const sent = JSON.parse(ev.map((e) => (e.event === 'chunk' || e.event === 'message' ? e.json?.content ?? '' : '')).join(''));
				assert.ok(
					sent.messages.some((m) => m.role === 'user' && m.content === `${p} [[tokens=1]]`),
					`${route}: the named conversation continued with the earlier message, verbatim`,
				);
			}
			// Stateless routes echo it.
			const c4 = await send(jsonRoutes().find((r) => r.name === 'seed 004 chat'), { message: `[[raw=${p}]]`, history: [{ role: 'user', content: p }] });
			assert.equal(c4.json?.reply, p.replace(/\]\].*/s, ''));
			// A model name is one of allowed_models: the payload is refused
			// with the list, never sent upstream nor stored.
			const v1 = await send(jsonRoutes().find((r) => r.name === 'v1 completions'), { model: p.slice(0, 100), messages: [{ role: 'user', content: `[[raw=${p}]]` }] });
			assertError(v1, 400, 'v1 model');
			assert.match(v1.json.error, /^model must be one of: gpt-4o-mini, /);
			const v1ok = await send(jsonRoutes().find((r) => r.name === 'v1 completions'), { messages: [{ role: 'user', content: `[[raw=${p}]]` }] });
			assert.equal(v1ok.status, 200, v1ok.text);
			assert.equal(v1ok.json.choices[0].message.content, p.replace(/\]\].*/s, ''));
			const lk = await send(jsonRoutes().find((r) => r.name === 'livekit token'), { roomName: p, participantName: p });
			assert.equal(lk.status, 200, lk.text);
			assert.equal(decodeJwtPart(lk.json.token, 1).video.room, p);
			// Settings round trip.
			const set = await send(jsonRoutes().find((r) => r.name === 'settings'), { system_prompt: p, voice: p.slice(0, 50) });
			assert.equal(set.status, 200, set.text);
			assertError(await send(jsonRoutes().find((r) => r.name === 'settings'), { model: p.slice(0, 100) }), 400, 'settings model');
			assert.equal(set.json.system_prompt, p);
			// Credentials: a password is any text; a username is refused by its charset.
			const pw = await send(jsonRoutes()[0], { username: uniqueName('sqlpw'), password: p });
			assert.equal(pw.status, 201, pw.text);
			assertError(await send(jsonRoutes()[0], { username: p, password: 'password1' }), 400, 'username');
			const li = await send(jsonRoutes()[1], { username: p, password: p });
			assertError(li, 401, 'login');
			// Path, query and headers.
			count(3);
			assertError(await api('GET', `${SESSIONS}/${encodeURIComponent(p)}`, { token: user.token }), [400, 404], 'path id');
			assertError(await api('GET', `${SESSIONS}?limit=${encodeURIComponent(p.slice(0, 10))}`, { token: user.token }), 400, 'limit');
			assertError(await api('GET', `${SESSIONS}/${sid}/stream`, { token: user.token, headers: { 'last-event-id': p } }), 400, 'Last-Event-ID');
		}
		assert.ok(performance.now() - t0 < 60000, 'no payload made a query sleep');
		await api('PUT', '/api/settings', { token: user.token, body: { system_prompt: null, model: null, voice: null } });
		const after = await footprint();
		assert.ok(after.users >= before.users + SQL.length, 'the users table is intact and grew by the registrations');
		assert.ok(after.sessions > before.sessions && after.messages > before.messages, 'sessions and messages intact');
		const { rows } = await db().query(`SELECT count(*)::int AS n FROM users WHERE id = $1`, [user.userId]);
		assert.equal(rows[0].n, 1);
	});
});

// ------------------------------------------------------- static files

describe('path traversal on the static files', () => {
	before(freshUser);

	const secrets = () => {
		const out = [['/etc/passwd', /root:.*:0:0:/]];
		try {
			out.push(['the JWT secret', new RegExp(jwtSecret().replace(/[.*+?^${}()|[\]\\]/g, '\\$&'))]);
		} catch {
			// no secret file: nothing to leak
		}
		out.push(['README.md', /# chatd — a streaming AI chat backend/]);
		out.push(['scripts/lib.sh', /CHAT_REPO=\$\(cd/]);
		out.push(['a TLS key', /BEGIN [A-Z ]*PRIVATE KEY/]);
		out.push(['fcgi sources', /#include "/]);
		out.push(['a git config', /\[core\]/]);
		out.push(['PostgreSQL files', /PG_VERSION|postgresql\.conf/]);
		return out;
	};
	const rel = path.relative(path.join(REPO, 'web'), CHAT_VAR);
	const PATHS = [
		'/../../../../../../etc/passwd',
		'/%2e%2e/%2e%2e/%2e%2e/%2e%2e/etc/passwd',
		'/%2e%2e%2f%2e%2e%2f%2e%2e%2fetc%2fpasswd',
		'/..%2f..%2f..%2f..%2fetc%2fpasswd',
		'/..%5c..%5c..%5cetc%5cpasswd',
		'/%252e%252e/%252e%252e/etc/passwd',
		'/%c0%ae%c0%ae/%c0%ae%c0%ae/etc/passwd',
		'/.%2e/.%2e/.%2e/etc/passwd',
		'/js/../../README.md',
		'/js/..%2f..%2fREADME.md',
		'/css/%2e%2e/%2e%2e/scripts/lib.sh',
		'/..;/README.md',
		'//etc/passwd',
		'/index.html%00.js',
		'/../.git/config',
		'/.git/config',
		`/${rel}/jwt_secret`,
		`/${rel}/tls/key.pem`,
		`/../${path.basename(CHAT_VAR)}/jwt_secret`,
		'/%2e%2e/core/auth.c',
		'/js/%2e%2e/%2e%2e/fcgi/chatd.conf',
		'/api/../../../etc/passwd',
		'/api/..%2f..%2f..%2fetc%2fpasswd',
		`${SESSIONS}/..%2f..%2f..%2f..%2fetc%2fpasswd`,
		'/js/',
		'/css/',
	];

	test(`${PATHS.length} traversal paths over HTTP: refused (4xx), nothing outside web/ is served, no directory listing`, async () => {
		const leaks = secrets();
		for (const p of PATHS) {
			count();
			const r = await rawHttp(`GET ${p} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`, { timeout: 5000 });
			assert.ok(r.status >= 400 && r.status < 500, `${p}: ${r.status}`);
			for (const [what, re] of leaks) assert.doesNotMatch(r.text, re, `${p} leaked ${what}`);
			assert.doesNotMatch(r.text, /Index of \//, `${p}: a directory listing`);
		}
		// The files web/ does hold are served.
		const index = await rawHttp(`GET /index.html HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n`);
		assert.equal(index.status, 200);
		assert.ok(index.text.includes(readFileSync(path.join(REPO, 'web/index.html'), 'utf8').slice(0, 40)), 'web/index.html');
	});

	test('over HTTPS with HTTP/2 too (curl --path-as-is)', async () => {
		for (const p of ['/../../../../etc/passwd', '/js/../../README.md', '/%2e%2e/%2e%2e/README.md', `/${rel}/jwt_secret`]) {
			count();
			const r = await run('curl', ['--http2', '-sS', '--path-as-is', '--cacert', CA_CERT, '-o', '-', '-w', '\n%{http_code}', `${BASE_URL}${p}`]);
			const status = Number(r.stdout.trim().split('\n').at(-1));
			assert.ok(status >= 400 && status < 500, `${p}: ${status} ${r.stderr}`);
			for (const [what, re] of secrets()) assert.doesNotMatch(r.stdout, re, `${p} leaked ${what}`);
		}
	});
});

// ------------------------------------------------------ header injection

describe('header injection', () => {
	before(freshUser);

	test('CR/LF sent percent-encoded in a path, a query or a header value never becomes a response header', async () => {
		const inj = '%0d%0aSet-Cookie:%20injected=1%0d%0aX-Injected:%201';
		const own = await createSession(user.token);
		for (const target of [
			`${SESSIONS}/${inj}`,
			`${SESSIONS}/${own.id}/stream?lastEventId=${inj}`,
			`/api/auth/me?x=${inj}`,
			`/healthz/${inj}`,
			`/${inj}`,
			`/js/${inj}`,
		]) {
			count();
			const r = await rawHttp(`GET ${target} HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${user.token}\r\n\r\n`, { timeout: 5000 });
			assert.ok(r.status > 0, `${target}: answered`);
			assert.doesNotMatch(r.head, /^(set-cookie|x-injected):/im, `${target}: ${r.head}`);
		}
		for (const [name, value] of [
			['Idempotency-Key', 'k%0d%0aSet-Cookie: injected=1'],
			['Last-Event-ID', `${crypto.randomUUID()}:1\\r\\nSet-Cookie: injected=1`],
			['Origin', 'https://evil.example%0d%0aSet-Cookie: injected=1'],
			['Accept', 'text/event-stream\\r\\nX-Injected: 1'],
		]) {
			count();
			const r = await rawHttp(
				`POST ${SESSIONS}/${own.id}/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${user.token}\r\n` +
					`Content-Type: application/json\r\nContent-Length: 28\r\n${name}: ${value}\r\n\r\n{"content":"x [[tokens=1]]"}`,
				{ timeout: 10000 },
			);
			assert.ok(r.status > 0, `${name}: answered`);
			assert.doesNotMatch(r.head, /^(set-cookie|x-injected|access-control-allow-origin):/im, `${name}: ${r.head}`);
		}
	});

	test('routing and method headers from the client are ignored: X-Original-URL, X-Rewrite-URL, X-HTTP-Method-Override', async () => {
		const own = await createSession(user.token, { title: 'keep me' });
		count(3);
		const r1 = await rawRequest('GET', `${HTTP_URL}/api/auth/me`, { headers: { 'x-original-url': '/healthz', 'x-rewrite-url': '/healthz' } });
		assert.equal(r1.status, 401, 'still /api/auth/me, which needs a token');
		const r2 = await rawRequest('GET', `${HTTP_URL}${SESSIONS}/${own.id}`, { token: user.token, headers: { 'x-http-method-override': 'DELETE', 'x-method-override': 'DELETE' } });
		assert.equal(r2.status, 200);
		const r3 = await rawRequest('POST', `${HTTP_URL}${SESSIONS}/${own.id}/cancel`, { token: user.token, headers: { 'x-http-method-override': 'DELETE' } });
		assert.equal(r3.status, 409, 'a cancel with nothing to cancel, not a delete');
		assert.equal((await api('GET', `${SESSIONS}/${own.id}`, { token: user.token })).status, 200, 'the session is still there');
	});

	// FINDING (reported; left failing on purpose until the nginx site is
	// fixed): nginx builds the Location of its directory redirects from the
	// client's Host header (absolute_redirect is on by default), so
	// GET /js with "Host: evil.example" answers Location: http://evil.example:…/js/
	// — host header injection, usable for cache poisoning behind a cache.
	test('a redirect never points at the host the client claims', async () => {
		count();
		const r = await rawHttp(`GET /js HTTP/1.1\r\nHost: evil.example\r\nConnection: close\r\n\r\n`, { timeout: 5000 });
		const location = /^location:\s*(.*)$/im.exec(r.head)?.[1] ?? '';
		assert.doesNotMatch(location, /evil\.example/, `GET /js → ${r.status} Location: ${location}`);
	});

	// FINDING (reported; left failing on purpose until chatd is fixed): seeds
	// 002 and 003 take the Idempotency-Key header unchecked (seed 000 allows
	// 1 to 255 characters): an empty key is a key, and a long key that
	// PostgreSQL cannot index (over ~2.7 KB once compressed) makes the
	// insert fail: 500 "Internal server error", and an ERROR in chatd.log
	// ("index row size … exceeds btree version 4 maximum 2704").
	test('seeds 002 and 003 check the Idempotency-Key like seed 000 (1 to 255 characters): 400, never 500', async () => {
		const long = crypto.randomBytes(3500).toString('hex'); // 7000 characters, incompressible
		const bad = [];
		for (const p of ['/stream/chat', '/api/v2/ai/chat/stream']) {
			for (const [what, key] of [['7000 characters', long], ['empty', '']]) {
				count();
				const r = await rawRequest('POST', `${HTTP_URL}${p}`, { token: user.token, body: { message: 'k [[tokens=1]]' }, headers: { 'idempotency-key': key } });
				if (r.status !== 400) bad.push(`${p} with a key of ${what}: ${r.status} ${r.text.slice(0, 80)}`);
			}
		}
		assert.deepEqual(bad, []);
	});

	// FINDING (reported; left failing on purpose until chatd is fixed): bytes
	// that are not UTF-8 in headers chatd stores reach PostgreSQL unchecked,
	// which refuses them (SQLSTATE 22021): an Idempotency-Key answers 400
	// "content is required" (the wrong field), and an X-Forwarded-For hop
	// from a trusted proxy answers 503 "Database unavailable" (the rate-limit
	// upsert failed, counted as an outage).
	test('header values that are not UTF-8 are refused as such (400 naming the header), never blamed on another field or the database', async () => {
		const bad = [];
		const own = await createSession(user.token);
		const body = '{"content":"x [[tokens=1]]"}';
		count();
		const idem = await rawHttp(Buffer.concat([
			Buffer.from(`POST ${SESSIONS}/${own.id}/stream HTTP/1.1\r\nHost: x\r\nConnection: close\r\nAuthorization: Bearer ${user.token}\r\nContent-Type: application/json\r\nContent-Length: ${body.length}\r\nIdempotency-Key: a`),
			Buffer.from([0xff, 0xfe]),
			Buffer.from(`\r\n\r\n${body}`),
		]));
		const idemJson = idem.text.split('\r\n').find((l) => l.startsWith('{'));
		if (idem.status !== 400 || !/idempotency/i.test(idemJson ?? '')) bad.push(`Idempotency-Key: ${idem.status} ${idemJson}`);
		count();
		const chat = '{"message":"x [[tokens=1]]"}';
		const xff = await rawHttp(Buffer.concat([
			Buffer.from(`POST /api/chat HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: ${chat.length}\r\nX-Forwarded-For: 198.18.0.`),
			Buffer.from([0xff]),
			Buffer.from(`\r\n\r\n${chat}`),
		]));
		if (xff.status >= 500) bad.push(`X-Forwarded-For: ${xff.status} ${xff.text.split('\r\n').find((l) => l.startsWith('{'))}`);
		assert.deepEqual(bad, []);
	});
});

// ------------------------------------------------------ SSE framing

/**
 * Checks a raw text/event-stream body line by line: only id, event and data
 * fields and comments, LF line ends, every data a JSON document (or
 * [DONE]); returns the events as readAll parses them.
 */
async function strictEvents(text, what) {
	for (const line of text.split('\n')) {
		if (line === '') continue;
		assert.match(line, /^(id: |event: |data: |:)/, `${what}: a line that is no SSE field of ours: ${JSON.stringify(line.slice(0, 120))}`);
		assert.ok(!line.includes('\r'), `${what}: a CR inside a line`);
		if (line.startsWith('data: ') && line !== 'data: [DONE]') JSON.parse(line.slice(6));
	}
	return (await readAll(new Response(text))).events;
}

describe('SSE framing injection in every field that reaches an event', () => {
	before(freshUser);

	const INJECT = [
		'\n\ndata: {"type":"done","full_content":"forged"}\n\n',
		'\r\n\r\nevent: end\r\ndata: {"done":true}\r\n\r\n',
		'\rid: forged\r\rdata: x\r\r',
		'\nretry: 1\n: comment\nevent: error\n',
		'\u2028\u2029\u0085</script><script>alert(1)</script>',
		'data: [DONE]\n\n',
		'"},{"type":"done"}\n\n',
		'\\n\\ndata: {}\\n\\n',
	];

	test(`${INJECT.length} framing payloads, in the model's reply (seed 000, 002, 003, v1), in echoed ids (conversation_id, sessionId; a model is refused) and in a replay: the events are exactly as many as sent, and each value comes back whole`, async () => {
		for (const p of INJECT) {
			// The reply text: [[raw=…]] makes the fake upstream answer p itself.
			const raw = `A${p}Z`;
			const own = await createSession(user.token);
			count();
			const s0 = await rawRequest('POST', `${HTTP_URL}${SESSIONS}/${own.id}/stream`, { token: user.token, body: { content: `[[raw=${raw}]]` } });
			let ev = await strictEvents(s0.text, 'seed 000');
			const types = ev.map((e) => e.json?.type);
			assert.equal(types[0], 'start');
			assert.equal(types.at(-1), 'done');
			assert.equal(types.filter((x) => x === 'done').length, 1, 'one end');
			assert.ok(types.slice(1, -1).every((x) => x === 'content'), `seed 000: ${types}`);
			assert.equal(ev.slice(1, -1).map((e) => e.json.content).join(''), raw, 'the deltas rebuild the reply');
			assert.equal(ev.at(-1).json.full_content, raw);
			// The replay from PostgreSQL frames it the same way.
			count();
			const rp = await rawRequest('GET', `${HTTP_URL}${SESSIONS}/${own.id}/stream`, { token: user.token });
			const replay = await strictEvents(rp.text, 'replay');
			assert.deepEqual(replay.map((e) => e.json), ev.map((e) => e.json), 'the replay is the stream');
			// Seed 002: the reply and conversation_id.
			const conv = p.slice(0, 120);
			count();
			const s2 = await rawRequest('POST', `${HTTP_URL}/stream/chat`, { token: user.token, body: { message: `[[raw=${raw}]]`, conversation_id: conv } });
			ev = await strictEvents(s2.text, 'seed 002');
			assert.deepEqual(ev.map((e) => e.event), ['start', ...Array(ev.length - 3).fill('chunk'), 'chunk', 'end'], 'seed 002 event names');
			assert.equal(ev[0].json.conversation_id, conv);
			assert.equal(ev.at(-1).json.conversation_id, conv);
			assert.equal(ev.filter((e) => e.event === 'chunk').map((e) => e.json.content).join(''), raw);
			// Seed 003: the reply and sessionId.
			count();
			const s3 = await rawRequest('POST', `${HTTP_URL}/api/v2/ai/chat/stream`, { token: user.token, body: { message: `[[raw=${raw}]]`, sessionId: conv } });
			ev = await strictEvents(s3.text, 'seed 003');
			assert.ok(ev.slice(0, -1).every((e) => typeof e.json.content === 'string' && e.json.sessionId === conv), 'seed 003 deltas');
			assert.deepEqual(ev.at(-1).json, { done: true, sessionId: conv, ...(ev.at(-1).json.status ? { status: ev.at(-1).json.status } : {}) });
			assert.equal(ev.slice(0, -1).map((e) => e.json.content).join(''), raw);
			// v1: a model name outside allowed_models is refused whole, as
			// JSON; the reply streams with an allowed one, echoed by every chunk.
			count(2);
			const refused = await rawRequest('POST', `${HTTP_URL}/v1/chat/completions`, {
				token: user.token,
				body: { model: p.slice(0, 100), stream: true, messages: [{ role: 'user', content: `[[raw=${raw}]]` }] },
			});
			assertError(refused, 400, 'v1 model');
			const v1 = await rawRequest('POST', `${HTTP_URL}/v1/chat/completions`, {
				token: user.token,
				body: { model: 'gpt-4o', stream: true, messages: [{ role: 'user', content: `[[raw=${raw}]]` }] },
			});
			ev = await strictEvents(v1.text, 'v1');
			assert.equal(ev.at(-1).data, '[DONE]');
			assert.equal(ev.filter((e) => e.data === '[DONE]').length, 1, 'one [DONE]');
			const chunks = ev.slice(0, -1).map((e) => e.json);
			assert.ok(chunks.every((c) => c.model === 'gpt-4o'), 'the model comes back in every chunk');
			assert.equal(chunks.map((c) => c.choices?.[0]?.delta?.content ?? '').join(''), raw);
		}
	});

	test('the system prompt (settings) echoed through [[system]], and error events, keep the framing too', async () => {
		const p = INJECT[0] + INJECT[2];
		const set = await api('PUT', '/api/settings', { token: user.token, body: { system_prompt: p } });
		count();
		assert.equal(set.status, 200);
		try {
			const own = await createSession(user.token);
			count();
			const r = await rawRequest('POST', `${HTTP_URL}${SESSIONS}/${own.id}/stream`, { token: user.token, body: { content: '[[system]]' } });
			const ev = await strictEvents(r.text, '[[system]]');
			assert.equal(ev.at(-1).json.full_content, `System prompt: ${p}`);
			// A mid-stream error event after injected content.
			count();
			const e = await rawRequest('POST', `${HTTP_URL}${SESSIONS}/${own.id}/stream`, { token: user.token, body: { content: `[[raw=${INJECT[1]}]] [[error-after=3]]` } });
			const ee = await strictEvents(e.text, 'error event');
			assert.equal(ee.at(-1).json.type, 'error');
			assert.equal(ee.filter((x) => x.json.type === 'error' || x.json.type === 'done').length, 1);
		} finally {
			await api('PUT', '/api/settings', { token: user.token, body: { system_prompt: null } });
		}
	});
});

describe('afterwards', () => {
	before(freshUser);

	test('the instance is whole: the same workers, serving; the figures', async (t) => {
		assert.deepEqual(chatdWorkerPids(), workersAtStart, 'no worker died or was respawned');
		const r = await streamTurn(user.token, session.id, 'still here [[tokens=2]]');
		assert.equal(r.text, tokensText(2));
		await waitFor(async () => {
			const pool = await poolStatus();
			return pool.busy_threads <= 1 && pool.open_streams === 0;
		}, { timeout: 20000, what: 'idle' });
		t.diagnostic(`hostile inputs tried: ${tried}`);
	});
});
