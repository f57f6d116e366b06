// validation.test.mjs: SPEC §7, every JSON route refuses a bad request the
// same way, before any upstream call and without storing anything: 400 for
// malformed JSON or fields, 401 without a valid token, 405 for a wrong
// method, 413 above the 1 MiB body limit (nginx and chatd agree on it), 415
// for a body that is not application/json; always {"error": "..."}.
// (The seed suites test each route's own fields; this is the cross-cut.)
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { after, before, describe, test } from 'node:test';

import {
	BASE_URL,
	CA_CERT,
	HTTP_URL,
	SESSIONS,
	api,
	assertJsonError,
	closeDb,
	createSession,
	db,
	fakeStats,
	isErrorBody,
	registerAndLogin,
} from './lib.mjs';

after(closeDb);

const MiB = 1024 * 1024;
const LIVEKIT =
	(process.env.CHAT_LIVEKIT_KEY || process.env.LIVEKIT_API_KEY || '') !== '' &&
	(process.env.CHAT_LIVEKIT_SECRET || process.env.LIVEKIT_API_SECRET || '') !== '';

let user;
let session;
before(async () => {
	user = await registerAndLogin('valid');
	session = await createSession(user.token);
});

/**
 * The JSON routes: method, path (a function of the fixture), whether a token
 * is required, a valid body, and the name of a string field to blow up.
 */
const ROUTES = [
	{ name: '/api/chat/realtime/sessions/{id}/stream', method: 'POST', path: () => `${SESSIONS}/${session.id}/stream`, auth: true, body: { content: 'x' }, field: 'content' },
	{ name: '/api/chat/realtime/sessions', method: 'POST', path: () => SESSIONS, auth: true, body: { title: 't' }, field: 'title' },
	{ name: '/stream/chat', method: 'POST', path: () => '/stream/chat', auth: true, body: { message: 'x' }, field: 'message' },
	{ name: '/api/v2/ai/chat/stream', method: 'POST', path: () => '/api/v2/ai/chat/stream', auth: false, body: { message: 'x' }, field: 'message' },
	{ name: '/api/chat', method: 'POST', path: () => '/api/chat', auth: false, body: { message: 'x' }, field: 'message' },
	{ name: '/api/settings', method: 'PUT', path: () => '/api/settings', auth: true, body: { voice: 'marin' }, field: 'system_prompt' },
	{
		name: '/openai/chatCompletion',
		method: 'POST',
		path: () => '/openai/chatCompletion',
		auth: true,
		body: { messages: [{ role: 'user', content: 'x' }] },
		field: null,
	},
	{
		name: '/v1/chat/completions',
		method: 'POST',
		path: () => '/v1/chat/completions',
		auth: true,
		body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'x' }] },
		field: null,
	},
	{
		name: '/api/livekit/token',
		method: 'POST',
		path: () => '/api/livekit/token',
		auth: true,
		body: { roomName: 'r', participantName: 'p' },
		field: 'roomName',
		unconfigured: !LIVEKIT, // 503 before the body is read
	},
];

/** Counts of what a refused request must not have created. */
async function footprint() {
	const [stats, rows] = await Promise.all([
		fakeStats(),
		db().query(
			`SELECT (SELECT count(*) FROM chat_sessions)::int AS sessions,
			        (SELECT count(*) FROM messages)::int AS messages,
			        (SELECT count(*) FROM user_settings)::int AS settings`,
		),
	]);
	return { chat_requests: stats.chat_requests, realtime_secrets: stats.realtime_secrets, ...rows.rows[0] };
}

describe('malformed bodies: 400/415 JSON, nothing called, nothing stored', () => {
	for (const route of ROUTES) {
		test(`${route.method} ${route.name}`, async () => {
			const path = route.path();
			const before = await footprint();
			const bad = [
				['malformed JSON', '{"a": ', undefined, 400],
				['trailing garbage', `${JSON.stringify(route.body)} x`, undefined, 400],
				['a JSON array', '[]', undefined, 400],
				['a JSON string', '"x"', undefined, 400],
				['JSON null', 'null', undefined, 400],
				['invalid UTF-8', Buffer.from(`{"${route.field ?? 'x'}":"a\xff\xfeb"}`, 'latin1'), undefined, 400],
				['nested 100000 deep', '['.repeat(100000) + ']'.repeat(100000), undefined, 400],
				['text/plain', JSON.stringify(route.body), { 'content-type': 'text/plain' }, 415],
				['text/json', JSON.stringify(route.body), { 'content-type': 'text/json' }, 415],
				['application/jsonp', JSON.stringify(route.body), { 'content-type': 'application/jsonp' }, 415],
				['form-encoded', 'a=b', { 'content-type': 'application/x-www-form-urlencoded' }, 415],
			];
			if (route.field) bad.push(['a field of the wrong type', { ...route.body, [route.field]: 12 }, undefined, 400]);
			for (const [what, body, headers, status] of bad) {
				const r = await api(route.method, path, { token: user.token, body, headers });
				assertJsonError(r, route.unconfigured ? 503 : status, `${route.method} ${path}, ${what}`);
			}
			// A body with no Content-Type at all.
			const raw = await fetch(BASE_URL + path, {
				method: route.method,
				headers: { authorization: `Bearer ${user.token}` },
				body: new TextEncoder().encode(JSON.stringify(route.body)),
			});
			const text = await raw.text();
			assert.equal(raw.status, route.unconfigured ? 503 : 415, `no Content-Type: ${raw.status} ${text}`);
			assert.ok(isErrorBody(JSON.parse(text)), text);
			assert.deepEqual(await footprint(), before, 'nothing called upstream, nothing stored');
		});
	}

	test('application/json with parameters or in another case is fine', async () => {
		for (const ct of ['application/json; charset=utf-8', 'Application/JSON', 'application/json;charset=UTF-8']) {
			const r = await api('POST', '/api/chat', { token: user.token, body: { message: 'ct' }, headers: { 'content-type': ct } });
			assert.equal(r.status, 200, `${ct}: ${r.text}`);
			const s = await api('PUT', '/api/settings', { token: user.token, body: { voice: 'marin' }, headers: { 'content-type': ct } });
			assert.equal(s.status, 200, `${ct}: ${s.text}`);
		}
	});
});

describe('the body size limit: 1 MiB, the same in nginx and chatd', () => {
	for (const [label, base] of [
		['HTTPS', BASE_URL],
		['HTTP', HTTP_URL],
	]) {
		test(`over ${label}: 1 MiB + 1 byte → 413 JSON; exactly 1 MiB reaches chatd (400: a field too long)`, async () => {
			const before = await footprint();
			for (const route of ROUTES.filter((r) => r.field && !r.unconfigured)) {
				const path = route.path();
				const over = JSON.stringify({ ...route.body, [route.field]: '' });
				const pad = (n) => JSON.stringify({ ...route.body, [route.field]: 'x'.repeat(n - Buffer.byteLength(over)) });
				const exact = pad(MiB);
				assert.equal(Buffer.byteLength(exact), MiB);
				const r1 = await api(route.method, path, { base, token: user.token, body: pad(MiB + 1) });
				assertJsonError(r1, 413, `${route.method} ${path}, 1 MiB + 1`);
				const r2 = await api(route.method, path, { base, token: user.token, body: exact });
				assertJsonError(r2, 400, `${route.method} ${path}, exactly 1 MiB`);
				assert.match(r2.json.error, /too long|too large|at most/i, r2.json.error);
			}
			// Bodyless routes too.
			for (const [method, path] of [
				['POST', '/api/session'],
				['POST', `${SESSIONS}/${session.id}/cancel`],
				['POST', '/openai/chatCompletion'],
				['POST', '/v1/chat/completions'],
			]) {
				assertJsonError(await api(method, path, { base, token: user.token, body: 'x'.repeat(2 * MiB) }), 413, `${path}, 2 MiB`);
			}
			assert.deepEqual(await footprint(), before);
		});
	}

	test('over HTTP/2 (curl --http2): 413 JSON', async () => {
		const body = JSON.stringify({ message: 'x'.repeat(MiB + 100) });
		const { code, stdout, stderr } = await new Promise((resolve, reject) => {
			const child = spawn(
				'curl',
				[
					'--http2',
					'-sS',
					'--cacert',
					CA_CERT,
					'-X',
					'POST',
					`${BASE_URL}/api/chat`,
					'-H',
					'Content-Type: application/json',
					'--data-binary',
					'@-',
					'-w',
					'\n%{http_version} %{http_code} %{content_type}',
				],
				{ stdio: ['pipe', 'pipe', 'pipe'] },
			);
			let out = '';
			let err = '';
			child.stdout.on('data', (d) => (out += d));
			child.stderr.on('data', (d) => (err += d));
			child.on('error', reject);
			child.on('close', (c) => resolve({ code: c, stdout: out, stderr: err }));
			child.stdin.on('error', () => {}); // the server may answer before the whole body is read
			child.stdin.end(body);
		});
		assert.equal(code, 0, stderr);
		const lines = stdout.trimEnd().split('\n');
		const [version, status, ctype] = lines.at(-1).split(' ');
		assert.equal(version, '2');
		assert.equal(status, '413');
		assert.match(ctype, /^application\/json/);
		assert.ok(isErrorBody(JSON.parse(lines.slice(0, -1).join('\n'))));
	});
});

describe('authentication and methods', () => {
	test('routes that need a token: 401 {"error":"Unauthorized"} without one or with a bad one, before the body is looked at', async () => {
		const before = await footprint();
		const routes = [
			...ROUTES.filter((r) => r.auth).map((r) => [r.method, r.path()]),
			['GET', '/api/settings'],
			['POST', '/api/session'],
			['GET', `${SESSIONS}/${session.id}/stream`],
			['POST', `${SESSIONS}/${session.id}/cancel`],
		];
		for (const [method, path] of routes) {
			for (const token of [undefined, 'garbage', `${user.token}x`]) {
				const r = await api(method, path, { token, body: method === 'GET' ? undefined : '{bad json' });
				assertJsonError(r, 401, `${method} ${path} with token ${token?.slice(0, 8)}`);
				assert.deepEqual(r.json, { error: 'Unauthorized' });
			}
		}
		assert.deepEqual(await footprint(), before);
	});

	test('auth-optional routes: no token is anonymous, but a bad token is 401 (never silently anonymous)', async () => {
		for (const path of ['/api/v2/ai/chat/stream', '/api/chat']) {
			for (const authorization of ['Bearer garbage', 'Basic dXNlcjpwYXNz', 'Bearer ']) {
				const r = await api('POST', path, { body: { message: 'x' }, headers: { authorization } });
				assertJsonError(r, 401, `${path} with ${authorization}`);
			}
		}
	});

	test('a wrong method: 405 JSON with Allow', async () => {
		for (const [method, path, allowed] of [
			['GET', '/stream/chat', 'POST'],
			['PUT', '/api/v2/ai/chat/stream', 'POST'],
			['GET', '/api/chat', 'POST'],
			['POST', '/api/settings', 'GET'],
			['DELETE', '/api/settings', 'PUT'],
			['GET', '/api/session', 'POST'],
			['GET', '/openai/chatCompletion', 'POST'],
			['GET', '/api/livekit/token', 'POST'],
			['GET', '/v1/chat/completions', 'POST'],
			['PUT', `${SESSIONS}/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/stream`, 'GET'],
			['GET', `${SESSIONS}/${'0'.repeat(8)}-0000-4000-8000-${'0'.repeat(12)}/cancel`, 'POST'],
		]) {
			const r = await api(method, path, { token: user.token });
			assertJsonError(r, 405, `${method} ${path}`);
			const allow = (r.headers.get('allow') ?? '').split(',').map((x) => x.trim());
			assert.ok(allow.includes(allowed), `${method} ${path}: Allow "${allow}" lacks ${allowed}`);
		}
	});
});
