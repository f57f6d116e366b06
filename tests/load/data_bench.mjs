// data_bench.mjs: the hot routes of chatd, one request at a time through
// nginx, timed per route (scripts/bench --data runs it; see there).
//
//   node tests/load/data_bench.mjs --url http://127.0.0.1:8080 --requests 100
//     [--heavy-user NAME --password PW] [--long-session UUID]
//     [--deep-cursor CURSOR] [--json-out FILE]
//
// Without a seeded heavy user, the bench's own user stands in for it (the
// empty-database figures). Latency, not throughput: one request in flight.
// Each request comes from its own loopback address 127.0.x.y, a fresh one
// every few requests, so the per-address limits of an instance with its
// default settings do not cut the run; streams rotate over fresh users
// for the per-user chat limit.
import http from 'node:http';
import crypto from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { parseArgs } from 'node:util';

const { values: opt } = parseArgs({
	options: {
		url: { type: 'string', default: 'http://127.0.0.1:8080' },
		requests: { type: 'string', default: '100' },
		'heavy-user': { type: 'string' },
		password: { type: 'string' },
		'long-session': { type: 'string' },
		'deep-cursor': { type: 'string' },
		'json-out': { type: 'string' },
	},
});
const N = Number(opt.requests);
if (!Number.isInteger(N) || N < 1) throw new Error('--requests: a whole number >= 1');
const base = new URL(opt.url);
const SESSIONS = '/api/chat/realtime/sessions';

// One keep-alive agent per source address; a new address every PER_ADDR
// requests (under ratelimit_auth_ip, 30 by default).
const PER_ADDR = 20;
let addrSeq = 1 + crypto.randomInt(200) * 250;
let agent = null;
let agentUses = 0;
function nextAgent() {
	if (agent) agent.destroy();
	addrSeq++;
	agent = new http.Agent({
		keepAlive: true,
		maxSockets: 1,
		localAddress: `127.0.${(addrSeq >> 8) & 255}.${(addrSeq & 255) || 1}`,
	});
	agentUses = 0;
}
nextAgent();

// request: {status, body, ms}; the whole body read (a stream to its end).
function request(method, path, { token, body, headers = {} } = {}) {
	if (++agentUses > PER_ADDR) nextAgent();
	const payload = body === undefined ? undefined : JSON.stringify(body);
	const h = { ...headers };
	if (token) h.authorization = `Bearer ${token}`;
	if (payload !== undefined) {
		h['content-type'] = 'application/json';
		h['content-length'] = Buffer.byteLength(payload);
	}
	return new Promise((resolve, reject) => {
		const t0 = process.hrtime.bigint();
		const req = http.request(
			{ host: base.hostname, port: base.port, method, path, headers: h, agent },
			(res) => {
				const chunks = [];
				res.on('data', (c) => chunks.push(c));
				res.on('end', () => {
					const ms = Number(process.hrtime.bigint() - t0) / 1e6;
					resolve({ status: res.statusCode, body: Buffer.concat(chunks).toString(), ms });
				});
				res.on('error', reject);
			},
		);
		req.setTimeout(60000, () => req.destroy(new Error(`${method} ${path}: timed out`)));
		req.on('error', reject);
		req.end(payload);
	});
}

function expect(res, status, what) {
	if (res.status !== status)
		throw new Error(`${what}: expected ${status}, got ${res.status}: ${res.body.slice(0, 300)}`);
	return res;
}

async function newUser() {
	const username = `bench_${crypto.randomBytes(6).toString('hex')}`;
	const password = 'bench-password';
	expect(await request('POST', '/api/auth/register', { body: { username, password } }), 201, 'register');
	const login = expect(await request('POST', '/api/auth/login', { body: { username, password } }), 200, 'login');
	return { username, password, token: JSON.parse(login.body).access_token };
}

async function newSession(token) {
	const r = expect(await request('POST', SESSIONS, { token, body: { title: 'bench session' } }), 201, 'create');
	return JSON.parse(r.body).id;
}

// One turn through the fake upstream: one token, no delay.
async function turn(token, id) {
	return request('POST', `${SESSIONS}/${id}/stream`, {
		token,
		body: { content: 'bench turn [[tokens=1]] [[delay=0]]' },
	});
}

function percentile(sorted, p) {
	if (sorted.length === 0) return null;
	const i = Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1);
	return sorted[Math.max(0, i)];
}

const results = [];
// route NAME COUNT FN: FN(i) makes the i-th request; two warm-up calls
// first (prepared statements, connections), not counted.
async function route(name, count, fn, status = 200) {
	for (let i = 0; i < 2; i++) expect(await fn(-1 - i), status, name);
	const ms = [];
	let bytes = 0;
	for (let i = 0; i < count; i++) {
		const r = expect(await fn(i), status, name);
		ms.push(r.ms);
		bytes = Math.max(bytes, Buffer.byteLength(r.body));
	}
	ms.sort((a, b) => a - b);
	const row = {
		route: name,
		n: count,
		p50_ms: percentile(ms, 50),
		p99_ms: percentile(ms, 99),
		max_ms: ms[ms.length - 1],
		bytes,
	};
	results.push(row);
	process.stdout.write(
		`${name.padEnd(26)} n=${String(count).padStart(4)}  p50 ${row.p50_ms.toFixed(2).padStart(8)} ms` +
			`  p99 ${row.p99_ms.toFixed(2).padStart(8)} ms  max ${row.max_ms.toFixed(2).padStart(8)} ms` +
			`  ${row.bytes} B\n`,
	);
}

// ------------------------------------------------------------------ setup

const me = await newUser();
const mySession = await newSession(me.token);
for (let i = 0; i < 3; i++) expect(await turn(me.token, mySession), 200, 'setup turn');

let heavy = me;
if (opt['heavy-user']) {
	const login = expect(
		await request('POST', '/api/auth/login', {
			body: { username: opt['heavy-user'], password: opt.password },
		}),
		200,
		`login as ${opt['heavy-user']}`,
	);
	heavy = { username: opt['heavy-user'], password: opt.password, token: JSON.parse(login.body).access_token };
}
const longSession = opt['long-session'] ?? mySession;
// A message in the middle of the long session: the "older page" request.
const first = JSON.parse(expect(await request('GET', `${SESSIONS}/${longSession}?limit=200`, { token: heavy.token }), 200, 'get').body);
const mid = first.messages[Math.floor(first.messages.length / 2)]?.id;
const deepCursor = opt['deep-cursor'];
// The reply to resume: the latest of the bench session, complete.
const stored = JSON.parse(expect(await request('GET', `${SESSIONS}/${mySession}`, { token: me.token }), 200, 'get').body);
const reply = stored.messages.filter((m) => m.role === 'assistant').at(-1);

// ----------------------------------------------------------------- routes

const few = Math.max(5, Math.floor(N / 4));
await route('login', few, () =>
	request('POST', '/api/auth/login', { body: { username: heavy.username, password: heavy.password } }),
);
await route('auth me', N, () => request('GET', '/api/auth/me', { token: heavy.token }));
await route('list first page', N, () => request('GET', `${SESSIONS}?limit=20`, { token: heavy.token }));
await route('list offset 1000', N, () =>
	request('GET', `${SESSIONS}?limit=20&offset=1000`, { token: heavy.token }),
);
if (deepCursor)
	await route('list deep cursor', N, () =>
		request('GET', `${SESSIONS}?limit=20&cursor=${encodeURIComponent(deepCursor)}`, { token: heavy.token }),
	);
await route('list search', N, () => request('GET', `${SESSIONS}?limit=20&q=banana`, { token: heavy.token }));
await route('session get (50)', N, () => request('GET', `${SESSIONS}/${longSession}`, { token: heavy.token }));
if (mid)
	await route('session get older page', N, () =>
		request('GET', `${SESSIONS}/${longSession}?before=${mid}`, { token: heavy.token }),
	);
// Streams: fresh users now and then (the per-user chat limit), each with
// its own session; every turn stores two messages and a reply.
let streamer = null;
let streamSession = null;
await route('stream start', few, async (i) => {
	if (streamer === null || (i >= 0 && i % 40 === 0)) {
		streamer = await newUser();
		streamSession = await newSession(streamer.token);
	}
	return turn(streamer.token, streamSession);
});
await route('resume (stored reply)', N, () =>
	request('GET', `${SESSIONS}/${mySession}/stream`, {
		token: me.token,
		headers: { 'last-event-id': `${reply.id}:0` },
	}),
);
await route('cancel (none running)', N, () =>
	request('POST', `${SESSIONS}/${mySession}/cancel`, { token: me.token }), 409,
);

if (opt['json-out']) writeFileSync(opt['json-out'], `${JSON.stringify({ heavy: heavy.username, longSession, results }, null, 1)}\n`);
agent.destroy();
