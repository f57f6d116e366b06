// ops.test.mjs: SPEC §7 and issue 5, the operations features end to end:
// rate limits shared by every worker (per user, per anonymous client
// address, per route class), Prometheus /metrics and the pool status page,
// a metrics row per stream and the SQL views over them, one log line per
// request, and CORS.
//
// The limits are read from the environment scripts/test exports
// (CHAT_RATELIMIT_*, CHAT_TRUSTED_PROXIES): the tests count against the
// values the instance runs with. Each test keys its traffic on a fresh user
// or a random client address, so a re-run within the window starts clean.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
	CHATD,
	DATABASE_URL,
	HTTP_URL,
	ISO_MS_RE,
	LIMITS,
	LOG_DIR,
	REPO,
	SESSIONS,
	UPSTREAM_KEY,
	UPSTREAM_URL,
	api,
	assertJsonError,
	chatdLog,
	checkSeed000,
	closeDb,
	createSession,
	db,
	dbReply,
	fcgiRequest,
	isErrorBody,
	mapConcurrent,
	openStream,
	parsePrometheus,
	randomClientIp,
	randomLoopback,
	rawRequest,
	readAll,
	readSSE,
	registerAndLogin,
	run,
	scrapeMetrics,
	sleep,
	uniqueName,
	waitFor,
} from './lib.mjs';

after(closeDb);

const CHATD_BIN = process.env.CHAT_CHATD_BIN ?? path.join(REPO, 'fcgi/chatd');
const CHATD_CONF = process.env.CHAT_CHATD_CONF ?? path.join(REPO, 'fcgi/chatd.conf');
// The cheapest generation: one token, no delay.
const CHEAP = { message: 'x [[tokens=1]] [[delay=0]]' };
// Requests in flight at once in the bursts (each on its own connection).
const BURST_CONCURRENCY = 48;
// Bursts above this are too slow for a test run: the test is skipped.
const BURST_MAX = 2000;
// Known, reported: under concurrency RateLimit-Reset/Retry-After can read
// window + 1 (the window's start is another transaction's now(), later than
// this one's; the seconds are rounded up). Tolerated so the burst tests stay
// about counting.
const RESET_SLACK = 1;

/** POST /api/chat (seed 004, chat class, auth optional) on a connection of its own. */
function cheapChat({ token, xff, localAddress, route = '/api/chat', body = CHEAP } = {}) {
	const headers = xff === undefined ? {} : { 'x-forwarded-for': xff };
	return rawRequest('POST', `${HTTP_URL}${route}`, { body, token, headers, localAddress });
}

/** The RateLimit-* and Retry-After headers as numbers (NaN if absent). */
function rl(r) {
	const n = (h) => (r.headers.get(h) === null ? Number.NaN : Number(r.headers.get(h)));
	return {
		policy: r.headers.get('ratelimit-policy'),
		limit: n('ratelimit-limit'),
		remaining: n('ratelimit-remaining'),
		reset: n('ratelimit-reset'),
		retryAfter: n('retry-after'),
	};
}

/** A 200 under a limit: the four RateLimit-* headers, consistent. */
function assertCounted(r, limit, what) {
	const h = rl(r);
	assert.equal(r.status, 200, `${what}: ${r.status} ${r.text.slice(0, 200)}`);
	assert.equal(h.policy, `${limit};w=${LIMITS.window}`, `${what}: RateLimit-Policy`);
	assert.equal(h.limit, limit, `${what}: RateLimit-Limit`);
	assert.ok(Number.isInteger(h.remaining) && h.remaining >= 0 && h.remaining < limit, `${what}: RateLimit-Remaining ${h.remaining}`);
	assert.ok(Number.isInteger(h.reset) && h.reset >= 1 && h.reset <= LIMITS.window + RESET_SLACK, `${what}: RateLimit-Reset ${h.reset}`);
	assert.equal(r.headers.get('retry-after'), null, `${what}: no Retry-After below the limit`);
	return h;
}

/** A 429: JSON {"error"}, Retry-After, RateLimit-* with nothing remaining. */
function assertLimited(r, limit, what) {
	assertJsonError(r, 429, what);
	const h = rl(r);
	assert.equal(h.policy, `${limit};w=${LIMITS.window}`, `${what}: RateLimit-Policy`);
	assert.equal(h.limit, limit, `${what}: RateLimit-Limit`);
	assert.equal(h.remaining, 0, `${what}: RateLimit-Remaining`);
	assert.ok(Number.isInteger(h.retryAfter) && h.retryAfter >= 1 && h.retryAfter <= LIMITS.window + RESET_SLACK, `${what}: Retry-After ${h.retryAfter}`);
	assert.ok(Number.isInteger(h.reset) && h.reset >= 1 && h.reset <= LIMITS.window + RESET_SLACK, `${what}: RateLimit-Reset ${h.reset}`);
	assert.ok(Math.abs(h.reset - h.retryAfter) <= 1, `${what}: Retry-After ${h.retryAfter} vs RateLimit-Reset ${h.reset}`);
}

/**
 * limit + 1 requests of one caller, concurrently: exactly one 429, and the
 * 200s saw every RateLimit-Remaining from limit-1 down to 0 exactly once
 * (no hit lost or counted twice under concurrency). Returns the 429.
 */
function assertExactlyOne429(results, limit, what) {
	const byStatus = {};
	for (const r of results) byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
	assert.deepEqual(byStatus, { 200: limit, 429: 1 }, `${what}: statuses of ${limit + 1} requests`);
	const remaining = results.filter((r) => r.status === 200).map((r) => assertCounted(r, limit, what).remaining);
	remaining.sort((a, b) => a - b);
	assert.deepEqual(remaining, Array.from({ length: limit }, (_, i) => i), `${what}: each RateLimit-Remaining once`);
	const limited = results.find((r) => r.status === 429);
	assertLimited(limited, limit, what);
	return limited;
}

/** The shared counter of a rate-limit key as PostgreSQL holds it (0: none). */
async function dbHits(key) {
	const { rows } = await db().query('SELECT hits FROM rate_limits WHERE key = $1', [key]);
	return rows.length === 0 ? 0 : rows[0].hits;
}

function skipBurst(t, limit, name) {
	if (limit === 0) {
		t.skip(`${name} = 0: unlimited`);
		return true;
	}
	if (limit > BURST_MAX) {
		t.skip(`${name} = ${limit}: too many requests for a test`);
		return true;
	}
	return false;
}

async function statusJson() {
	const r = await rawRequest('GET', `${HTTP_URL}/status?json`);
	assert.equal(r.status, 200, r.text);
	assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
	return r.json;
}

/**
 * Until no request is in flight but the /status one asking: a stream an
 * earlier file abandoned may still be generating (replies outlive their
 * client), and it would move the counters under a test that counts.
 */
function waitIdle() {
	return waitFor(async () => {
		const s = await statusJson();
		return s.busy_threads === 1 && s.open_streams === 0;
	}, {
		timeout: 60000,
		interval: 200,
		what: 'chatd to be idle (no stream in flight)',
	});
}

// ------------------------------------------------------------ rate limits

describe('rate limits (shared by every worker, in PostgreSQL)', () => {
	test('per user: limit + 1 chat requests over separate connections give exactly one 429, counted exactly across workers', async (t) => {
		const limit = LIMITS.chatUser;
		if (skipBurst(t, limit, 'CHAT_RATELIMIT_CHAT_USER')) return;
		const user = await registerAndLogin('rl_user');
		const results = await mapConcurrent(Array.from({ length: limit + 1 }), BURST_CONCURRENCY, () =>
			cheapChat({ token: user.token }),
		);
		assertExactlyOne429(results, limit, 'per user');
		for (const r of results.filter((x) => x.status === 200)) assert.equal(r.json.reply, 't0');
		assert.equal(await dbHits(`chat:u:${user.userId}`), limit + 1, 'the shared counter holds every hit');

		// Several workers served them (the counter is not per process).
		const workers = (await statusJson()).workers;
		const lines = await waitFor(
			() => {
				const l = chatdLog((x) => x.event === 'request' && x.user === user.userId && x.route === 'seed004_chat');
				return l.length >= limit + 1 ? l : null;
			},
			{ timeout: 10000, what: 'the request log lines' },
		);
		assert.equal(lines.length, limit + 1, 'one log line per request');
		assert.equal(lines.filter((x) => x.status === '429').length, 1, 'one 429 in the log');
		const pids = new Set(lines.map((x) => x.pid));
		if (workers > 1) assert.ok(pids.size >= 2, `served by ${pids.size} worker(s) of ${workers}`);

		// Still limited; every chat route shares the class; other classes and
		// other users are not affected.
		assertLimited(await cheapChat({ token: user.token }), limit, 'request limit + 2');
		assertLimited(
			await cheapChat({ token: user.token, route: '/stream/chat', body: { message: 'x [[tokens=1]]' } }),
			limit,
			'seed 002 stream',
		);
		const session = await createSession(user.token);
		const stream = await api('POST', `${SESSIONS}/${session.id}/stream`, { token: user.token, body: { content: 'x' } });
		assertLimited(stream, limit, 'seed 000 stream');
		const me = await api('GET', '/api/auth/me', { token: user.token });
		assert.equal(me.status, 200, 'the api class is not the chat class');
		const other = await registerAndLogin('rl_other');
		const h = assertCounted(await cheapChat({ token: other.token }), limit, 'another user');
		assert.equal(h.remaining, limit - 1, 'another user has a fresh budget');
	});

	test('anonymous: the limit keys on the client address, taken from X-Forwarded-For only via a trusted proxy', async (t) => {
		const limit = LIMITS.chatAnon;
		if (skipBurst(t, limit, 'CHAT_RATELIMIT_CHAT_ANON')) return;
		if (!LIMITS.trustedProxies.includes('127.0.0.1')) {
			t.skip('CHAT_TRUSTED_PROXIES does not list 127.0.0.1');
			return;
		}
		const a = randomClientIp();
		const b = randomClientIp();
		const results = await mapConcurrent(Array.from({ length: limit + 1 }), BURST_CONCURRENCY, () => cheapChat({ xff: a }));
		assertExactlyOne429(results, limit, `anonymous ${a}`);
		assert.equal(await dbHits(`chat:ip:${a}`), limit + 1);

		// Another address has its own budget.
		let h = assertCounted(await cheapChat({ xff: b }), limit, `anonymous ${b}`);
		assert.equal(h.remaining, limit - 1);
		// The rightmost hop that is not a trusted proxy is the client: what a
		// client writes in front of it is not believed.
		h = assertCounted(await cheapChat({ xff: `${a}, ${b}` }), limit, `"${a}, ${b}"`);
		assert.equal(h.remaining, limit - 2, 'keyed on the rightmost hop');
		assertLimited(await cheapChat({ xff: `${b}, ${a}` }), limit, `"${b}, ${a}"`);
		// A trusted hop (127.0.0.1) vouches for the one before it.
		assertLimited(await cheapChat({ xff: `${a}, 127.0.0.1` }), limit, `"${a}, 127.0.0.1"`);
		// A logged-in user behind the same address counts per user.
		const user = await registerAndLogin('rl_anon');
		const mine = await cheapChat({ token: user.token, xff: a });
		assert.equal(mine.status, 200, 'a user at a limited address counts on the user');
		if (LIMITS.chatUser > 0) assert.equal(assertCounted(mine, LIMITS.chatUser, 'a user at a limited address').remaining, LIMITS.chatUser - 1);
	});

	test('anonymous from an untrusted source: X-Forwarded-For is ignored, the limit keys on the address nginx sees', async (t) => {
		const limit = LIMITS.chatAnon;
		if (skipBurst(t, limit, 'CHAT_RATELIMIT_CHAT_ANON')) return;
		const src = randomLoopback();
		assert.ok(!LIMITS.trustedProxies.includes(src), `${src} must not be trusted`);
		// Spoofed addresses from a range no other test draws from (IPv6
		// documentation), so a counter row for one can only come from here.
		const spoofed = Array.from({ length: limit + 1 },
			() => `2001:db8:${crypto.randomBytes(6).toString('hex').match(/.{4}/g).join(':')}::1`);
		// Every request claims another client address: were the header
		// believed, none would be limited.
		const results = await mapConcurrent(spoofed, BURST_CONCURRENCY, (xff) => cheapChat({ xff, localAddress: src }));
		assertExactlyOne429(results, limit, `from ${src}`);
		assert.equal(await dbHits(`chat:ip:${src}`), limit + 1, `counted on ${src}`);
		const { rows } = await db().query('SELECT key FROM rate_limits WHERE key = ANY($1)', [spoofed.map((ip) => `chat:ip:${ip}`)]);
		assert.deepEqual(rows, [], 'no counter for a spoofed address');
		assertLimited(await cheapChat({ xff: randomClientIp(), localAddress: src }), limit, 'another spoofed address');
		assertLimited(await cheapChat({ localAddress: src }), limit, 'no header at all');
		// The trusted proxy's other clients are not affected.
		assertCounted(await cheapChat({ xff: randomClientIp() }), limit, 'another client');
	});

	test('auth routes: limited per client address, whoever the bearer token names', async (t) => {
		const limit = LIMITS.authIp;
		const ip = randomClientIp();
		const headers = { 'x-forwarded-for': ip };
		const username = uniqueName('rl_auth');
		const password = `pw-${crypto.randomBytes(8).toString('hex')}`;
		const reg = await rawRequest('POST', `${HTTP_URL}/api/auth/register`, { body: { username, password }, headers });
		assert.equal(reg.status, 201, reg.text);
		if (limit === 0) {
			assert.equal(reg.headers.get('ratelimit-limit'), null, 'CHAT_RATELIMIT_AUTH_IP = 0: unlimited');
			t.skip('CHAT_RATELIMIT_AUTH_IP = 0');
			return;
		}
		if (!LIMITS.trustedProxies.includes('127.0.0.1')) {
			t.skip('CHAT_TRUSTED_PROXIES does not list 127.0.0.1');
			return;
		}
		assert.equal(rl(reg).remaining, limit - 1, 'register counts');
		const login = await rawRequest('POST', `${HTTP_URL}/api/auth/login`, { body: { username, password }, headers });
		assert.equal(login.status, 200, login.text);
		assert.equal(rl(login).remaining, limit - 2, 'login counts on the same address');
		const other = await registerAndLogin('rl_auth_other');
		const withToken = await rawRequest('POST', `${HTTP_URL}/auth/login`, {
			body: { username, password: 'wrong-password' },
			headers,
			token: other.token,
		});
		assertJsonError(withToken, 401, 'wrong password');
		assert.equal(rl(withToken).remaining, limit - 3, 'a bearer token does not move login attempts to a user budget');
		assert.equal(rl(withToken).policy, `${limit};w=${LIMITS.window}`);
		assert.equal(await dbHits(`auth:ip:${ip}`), 3);
	});

	test('the api class (CHAT_RATELIMIT_API_USER, 0 = off) and the probes', async () => {
		const user = await registerAndLogin('rl_api');
		const me = await api('GET', '/api/auth/me', { token: user.token });
		assert.equal(me.status, 200);
		if (LIMITS.apiUser === 0) assert.equal(me.headers.get('ratelimit-limit'), null, 'unlimited: no RateLimit headers');
		else assert.equal(Number(me.headers.get('ratelimit-limit')), LIMITS.apiUser);
		for (const p of ['/healthz', '/readyz']) {
			const r = await api('GET', p);
			assert.equal(r.headers.get('ratelimit-limit'), null, `${p} is not limited`);
		}
	});
});

// ---------------------------------------------------------------- metrics

const SEED002_FAMILIES = {
	stream_chat_started_total: 'counter',
	stream_chat_completed_total: 'counter',
	stream_chat_error_total: 'counter',
	stream_chat_duration_seconds: 'histogram',
	stream_chat_ttfb_seconds: 'histogram',
};
const OPS_FAMILIES = {
	chat_http_requests_total: 'counter',
	chat_upstream_errors_total: 'counter',
	chat_tokens_total: 'counter',
	chat_pool_workers: 'gauge',
	chat_pool_threads: 'gauge',
	chat_pool_busy_threads: 'gauge',
	chat_pool_streams: 'gauge',
	chat_pool_respawns_total: 'counter',
};
const UPSTREAM_KINDS = [
	'upstream_unreachable',
	'upstream_http_error',
	'upstream_connect_timeout',
	'upstream_first_token_timeout',
	'upstream_idle_timeout',
	'upstream_stream_error',
	'upstream_dropped',
];

// The tests that count add up duplicate series (the parse test above reports
// them) so that one format error does not hide the figures.
const COUNTING = { duplicates: 'sum' };

/** Every sample of m as "name{labels}" -> value (histogram samples included). */
function allSeries(m) {
	const out = new Map();
	for (const f of m.families.values())
		for (const s of f.samples) out.set(`${s.name}${JSON.stringify(Object.entries(s.labels).sort())}`, s);
	return out;
}

describe('GET /metrics (Prometheus text) and GET /status', () => {
	test('not public: loopback only, an address nginx does not allow gets 403 JSON', async () => {
		const local = await rawRequest('GET', `${HTTP_URL}/metrics`);
		assert.equal(local.status, 200);
		assert.match(local.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
		const tls = await api('GET', '/metrics');
		assert.equal(tls.status, 200, 'over HTTPS from 127.0.0.1 too');
		assert.match(tls.text, /^# HELP /);
		const src = randomLoopback();
		for (const p of ['/metrics', '/status', '/status?json']) {
			const r = await rawRequest('GET', `${HTTP_URL}${p}`, { localAddress: src });
			assertJsonError(r, 403, `${p} from ${src}`);
			assert.ok(!r.text.includes('stream_chat') && !r.text.includes('pool'), `${p}: nothing leaks`);
			// A forged X-Forwarded-For does not help.
			const forged = await rawRequest('GET', `${HTTP_URL}${p}`, { localAddress: src, headers: { 'x-forwarded-for': '127.0.0.1' } });
			assert.equal(forged.status, 403, `${p} with X-Forwarded-For: 127.0.0.1`);
		}
	});

	test('parses as Prometheus text, strictly, also once both login routes have been used', async () => {
		// /api/auth/login and /auth/login are one route name: one series each.
		for (const p of ['/auth/login', '/api/auth/login']) {
			const r = await rawRequest('POST', `${HTTP_URL}${p}`, { body: { username: uniqueName('ghost'), password: 'whatever1' } });
			assert.equal(r.status, 401, p);
		}
		// Strict: what a Prometheus server would reject fails here (a
		// duplicate series, say); the tests below add duplicates up instead.
		const m = await scrapeMetrics();
		assert.ok(m.value('chat_http_requests_total', { route: 'auth_login', status: '401' }) >= 2);
		assert.ok(m.families.size >= 12);
	});

	test('exposes seed 002 figures, requests by route and status, upstream errors by kind, tokens in/out and the pool', async () => {
		const m = await scrapeMetrics(COUNTING);
		for (const [name, type] of Object.entries({ ...SEED002_FAMILIES, ...OPS_FAMILIES })) {
			const f = m.families.get(name);
			assert.ok(f, `${name} is exposed`);
			assert.equal(f.type, type, `${name} is a ${type}`);
			assert.ok(f.help && f.help.length > 0, `${name} has a HELP line`);
			assert.ok(f.samples.length > 0, `${name} has samples`);
		}
		for (const name of Object.keys(SEED002_FAMILIES).filter((n) => SEED002_FAMILIES[n] === 'counter'))
			assert.notEqual(m.value(name), undefined, `${name} without labels`);
		for (const name of ['stream_chat_duration_seconds', 'stream_chat_ttfb_seconds']) {
			const h = m.histogram(name);
			assert.ok(h.buckets.length >= 5, `${name}: ${h.buckets.length} buckets`);
		}
		// TTFB buckets resolve tens of milliseconds; durations reach minutes.
		assert.ok(m.histogram('stream_chat_ttfb_seconds').buckets[0][0] <= 0.05);
		assert.ok(m.histogram('stream_chat_duration_seconds').buckets.at(-2)[0] >= 60);
		assert.deepEqual(
			m.families.get('chat_tokens_total').samples.map((s) => s.labels).sort((x, y) => x.direction.localeCompare(y.direction)),
			[{ direction: 'in' }, { direction: 'out' }],
		);
		const kinds = m.families.get('chat_upstream_errors_total').samples.map((s) => s.labels.kind);
		for (const k of UPSTREAM_KINDS) assert.ok(kinds.includes(k), `upstream error kind ${k}`);
		for (const s of m.families.get('chat_http_requests_total').samples) {
			assert.deepEqual(Object.keys(s.labels).sort(), ['route', 'status']);
			assert.match(s.labels.status, /^(\d{3}|other)$/);
			assert.match(s.labels.route, /^[a-z0-9_]+$/);
		}
		assert.ok(m.value('chat_http_requests_total', { route: 'healthz', status: '200' }) >= 1);
	});

	// The streams of the next test, and what they left, for the tests after it.
	const made = {};

	test('its counters move by exactly the streams made here: completed, errors, TTFB, tokens, upstream errors, requests', async () => {
		const user = await registerAndLogin('metrics');
		made.user = user;
		await waitIdle();
		const { rows: maxRows } = await db().query('SELECT coalesce(max(id), 0)::text AS id FROM stream_metrics');
		made.maxId = maxRows[0].id;
		const m0 = await scrapeMetrics(COUNTING);

		const sessionStream = async (content) => {
			const session = await createSession(user.token);
			const response = await openStream(user.token, session.id, content);
			if (response.status !== 200) {
				const text = await response.text();
				return { session, status: response.status, json: JSON.parse(text) };
			}
			const { events } = await readAll(response);
			return { session, status: 200, ...checkSeed000(events) };
		};
		made.ok1 = await sessionStream('m1 [[tokens=3]]');
		assert.equal(made.ok1.done?.full_content, 't0 t1 t2');
		made.ok2 = await sessionStream('m2 [[tokens=6]] [[delay=20]]');
		assert.equal(made.ok2.done?.full_content, 't0 t1 t2 t3 t4 t5');
		// Refused by the upstream before any token (4xx: no retry): 502 JSON.
		made.refused = await sessionStream('m3 [[status=400]]');
		assert.equal(made.refused.status, 502, JSON.stringify(made.refused.json));
		assert.ok(isErrorBody(made.refused.json));
		// An error event after two tokens.
		made.failed = await sessionStream('m4 [[tokens=5]] [[error-after=2]]');
		assert.equal(made.failed.error?.code, 'upstream_stream_error', JSON.stringify(made.failed.end));
		// The upstream connection drops after two tokens.
		made.dropped = await sessionStream('m5 [[tokens=5]] [[drop-after=2]]');
		assert.equal(made.dropped.error?.code, 'upstream_dropped', JSON.stringify(made.dropped.end));
		// Cancelled by the user after the first token: counted as completed.
		{
			const session = await createSession(user.token);
			const response = await openStream(user.token, session.id, 'm6 [[tokens=100]] [[delay=50]]');
			assert.equal(response.status, 200);
			const events = [];
			let cancel;
			for await (const ev of readSSE(response)) {
				const json = JSON.parse(ev.data);
				events.push({ ...ev, json });
				if (json.type === 'content' && cancel === undefined)
					cancel = await api('POST', `${SESSIONS}/${session.id}/cancel`, { token: user.token });
			}
			assert.equal(cancel?.status, 200, cancel?.text);
			made.cancelled = { session, status: 200, ...checkSeed000(events) };
			assert.equal(made.cancelled.done?.status, 'cancelled');
		}
		// An anonymous, non-streamed generation (seed 004) counts as well.
		const anon = await cheapChat({ xff: randomClientIp() });
		assert.equal(anon.status, 200, anon.text);

		const m1 = await scrapeMetrics(COUNTING);
		const d = (name, labels = {}) => (m1.value(name, labels) ?? 0) - (m0.value(name, labels) ?? 0);

		// Every stream left its row: the figures below are checked against them.
		const { rows } = await db().query(
			`SELECT id::text, route, user_id::text, session_id::text, message_id::text, status,
			        ttfb_ms, duration_ms, chunks, prompt_tokens, completion_tokens
			   FROM stream_metrics WHERE id > $1 ORDER BY id`,
			[made.maxId],
		);
		made.rows = rows;
		assert.equal(rows.length, 7, `7 streams, 7 rows: ${JSON.stringify(rows)}`);

		assert.equal(d('stream_chat_started_total'), 7, 'started');
		assert.equal(d('stream_chat_completed_total'), 4, 'completed: 2 complete, 1 cancelled, 1 seed 004');
		assert.equal(d('stream_chat_error_total'), 3, 'errors: refused, error event, dropped');

		const dur0 = m0.histogram('stream_chat_duration_seconds');
		const dur1 = m1.histogram('stream_chat_duration_seconds');
		assert.equal(dur1.count - dur0.count, 7, 'a duration per stream');
		const rowsDuration = rows.reduce((s, r) => s + r.duration_ms, 0) / 1000;
		const durSum = dur1.sum - dur0.sum;
		assert.ok(durSum > 0 && durSum <= rowsDuration + 0.01, `duration sum ${durSum} vs rows ${rowsDuration}`);

		// TTFB: observed for the six streams that got a token, not the refused one.
		const ttfb0 = m0.histogram('stream_chat_ttfb_seconds');
		const ttfb1 = m1.histogram('stream_chat_ttfb_seconds');
		const ttfbs = rows.filter((r) => r.ttfb_ms !== null).map((r) => r.ttfb_ms);
		assert.equal(ttfbs.length, 6, 'the rows hold a TTFB for the streams with a token');
		assert.equal(ttfb1.count - ttfb0.count, 6, 'TTFB observations');
		const ttfbSum = ttfb1.sum - ttfb0.sum;
		const rowsTtfb = ttfbs.reduce((s, v) => s + v, 0) / 1000;
		assert.ok(Math.abs(ttfbSum - rowsTtfb) < 2e-5, `TTFB sum ${ttfbSum} = rows ${rowsTtfb}`);
		ttfb1.buckets.forEach(([le, v], i) => {
			const got = v - ttfb0.buckets[i][1];
			// Rows keep microseconds: a value within 1 µs of a bound may fall either way.
			const low = ttfbs.filter((ms) => ms < le * 1000 - 0.001).length;
			const high = ttfbs.filter((ms) => ms <= le * 1000 + 0.001).length;
			assert.ok(got >= low && got <= high, `TTFB bucket le=${le}: +${got}, expected ${low}..${high} from ${ttfbs}`);
		});

		const sum = (k) => rows.reduce((s, r) => s + (r[k] ?? 0), 0);
		assert.ok(sum('completion_tokens') >= 3 + 6 + 1, 'completion tokens of the complete replies');
		assert.equal(d('chat_tokens_total', { direction: 'out' }), sum('completion_tokens'), 'tokens out');
		assert.equal(d('chat_tokens_total', { direction: 'in' }), sum('prompt_tokens'), 'tokens in');

		const kinds = { upstream_http_error: 1, upstream_stream_error: 1, upstream_dropped: 1 };
		for (const s of m1.families.get('chat_upstream_errors_total').samples)
			assert.equal(d('chat_upstream_errors_total', s.labels), kinds[s.labels.kind] ?? 0, `upstream errors ${s.labels.kind}`);

		// Requests by route and status: exactly these, nothing else moved.
		const expected = new Map([
			['sessions_create|201', 6],
			['sessions_stream|200', 5],
			['sessions_stream|502', 1],
			['sessions_cancel|200', 1],
			['seed004_chat|200', 1],
			['metrics|200', 1], // the first scrape
		]);
		const names = new Set([
			...m0.families.get('chat_http_requests_total').samples,
			...m1.families.get('chat_http_requests_total').samples,
		].map((s) => `${s.labels.route}|${s.labels.status}`));
		for (const k of names) {
			const [route, status] = k.split('|');
			assert.equal(d('chat_http_requests_total', { route, status }), expected.get(k) ?? 0, `requests ${k}`);
		}
		for (const k of expected.keys()) assert.ok(names.has(k), `chat_http_requests_total{${k}} is exposed`);

		// /status counts the same streams.
		assert.equal((await statusJson()).streams_started, m1.value('stream_chat_started_total'));
		// Nothing else in the exposition moved but what these requests explain.
		const before0 = allSeries(m0);
		for (const [k, s] of allSeries(m1)) if (!before0.has(k)) assert.ok(s.name === 'chat_http_requests_total', `new series ${k}`);
	});

	test('a row per stream in stream_metrics: route, user, session, reply, status, TTFB, duration, chunks, tokens', async (t) => {
		if (!made.rows) {
			t.skip('the previous test did not get that far');
			return;
		}
		const bySession = new Map(made.rows.map((r) => [r.session_id, r]));
		const check = (turn, want) => {
			const row = bySession.get(turn.session.id);
			assert.ok(row, `a row for session ${turn.session.id}`);
			assert.equal(row.route, 'sessions_stream');
			assert.equal(row.user_id, made.user.userId);
			if (turn.replyId) assert.equal(row.message_id, turn.replyId);
			assert.equal(row.status, want.status);
			assert.equal(row.chunks, want.chunks ?? turn.deltas.length, `${want.status}: chunks`);
			if (want.ttfb) {
				assert.ok(row.ttfb_ms > 0 && row.ttfb_ms <= row.duration_ms, `ttfb ${row.ttfb_ms} <= duration ${row.duration_ms}`);
			} else assert.equal(row.ttfb_ms, null, 'no token, no TTFB');
			assert.ok(row.duration_ms > 0);
			if (want.completion !== undefined) {
				assert.equal(row.completion_tokens, want.completion);
				assert.ok(row.prompt_tokens > 0, 'prompt tokens');
			}
			return row;
		};
		check(made.ok1, { status: 'complete', ttfb: true, completion: 3, chunks: 3 });
		check(made.ok2, { status: 'complete', ttfb: true, completion: 6, chunks: 6 });
		check(made.refused, { status: 'error', ttfb: false, chunks: 0 });
		check(made.failed, { status: 'error', ttfb: true, chunks: 2 });
		check(made.dropped, { status: 'interrupted', ttfb: true, chunks: 2 });
		// (chunks of the cancelled stream: see the next test)
		const c = check(made.cancelled, { status: 'cancelled', ttfb: true, chunks: bySession.get(made.cancelled.session.id).chunks });
		assert.ok(c.chunks >= made.cancelled.deltas.length && c.chunks < 100, `cancelled: ${c.chunks} chunks`);
		const ok2 = bySession.get(made.ok2.session.id);
		assert.ok(ok2.duration_ms >= 5 * 20 * 0.8, `six tokens 20 ms apart last ${ok2.duration_ms} ms`);
		const anon = made.rows.find((r) => r.session_id === null);
		assert.ok(anon, 'a row for the seed 004 request');
		assert.equal(anon.route, 'seed004_chat');
		assert.equal(anon.user_id, null, 'anonymous');
		assert.equal(anon.message_id, null);
		assert.equal(anon.status, 'complete');
		assert.equal(anon.chunks, 1);
		assert.equal(anon.completion_tokens, 1);
	});

	test('a cancelled stream\'s row counts the chunks it streamed and stored, not a delta discarded after the cancel', async (t) => {
		if (!made.rows) {
			t.skip('the counters test did not get that far');
			return;
		}
		const row = made.rows.find((r) => r.session_id === made.cancelled.session.id);
		const reply = await dbReply(made.cancelled.replyId);
		assert.equal(reply.chunks, made.cancelled.deltas.length, 'the stored reply has the chunks the client got');
		assert.equal(row.chunks, made.cancelled.deltas.length, `stream_metrics.chunks ${row.chunks} vs ${made.cancelled.deltas.length} streamed`);
	});

	test('the SQL views summarise the rows: usage_by_user and stream_summary_last_hour', async (t) => {
		if (!made.rows) {
			t.skip('the counters test did not get that far');
			return;
		}
		const mine = made.rows.filter((r) => r.user_id === made.user.userId);
		const { rows: usage } = await db().query(
			'SELECT requests::int, prompt_tokens::int, completion_tokens::int FROM usage_by_user WHERE user_id = $1',
			[made.user.userId],
		);
		const total = (k) => usage.reduce((s, r) => s + (r[k] ?? 0), 0);
		assert.equal(total('requests'), mine.length, 'usage_by_user: requests');
		assert.equal(total('prompt_tokens'), mine.reduce((s, r) => s + (r.prompt_tokens ?? 0), 0));
		assert.equal(total('completion_tokens'), mine.reduce((s, r) => s + (r.completion_tokens ?? 0), 0));

		// The last hour's summary, recomputed here from the rows it reads, at
		// the same now() (one transaction).
		const client = await db().connect();
		let view;
		let raw;
		try {
			await client.query('BEGIN ISOLATION LEVEL REPEATABLE READ');
			({ rows: view } = await client.query('SELECT * FROM stream_summary_last_hour'));
			({ rows: raw } = await client.query(
				`SELECT route, status, ttfb_ms, duration_ms, chunks, completion_tokens
				   FROM stream_metrics WHERE created_at > now() - interval '1 hour'`,
			));
			await client.query('COMMIT');
		} finally {
			client.release();
		}
		const groups = new Map();
		for (const r of raw) {
			const k = `${r.route}|${r.status}`;
			if (!groups.has(k)) groups.set(k, []);
			groups.get(k).push(r);
		}
		assert.equal(view.length, groups.size, 'one summary row per route and status');
		const near = (a, b, what) => {
			if (a === null || b === null) assert.equal(a, b, what);
			else assert.ok(Math.abs(Number(a) - b) <= 0.051, `${what}: ${a} vs ${b}`);
		};
		for (const v of view) {
			const g = groups.get(`${v.route}|${v.status}`);
			assert.ok(g, `rows for ${v.route}|${v.status}`);
			assert.equal(Number(v.streams), g.length, `${v.route}|${v.status}: streams`);
			const ttfbs = g.map((r) => r.ttfb_ms).filter((x) => x !== null).sort((a, b) => a - b);
			const avg = (xs) => (xs.length === 0 ? null : xs.reduce((s, x) => s + x, 0) / xs.length);
			near(v.ttfb_avg_ms, avg(ttfbs), `${v.route}|${v.status}: ttfb_avg_ms`);
			let p99 = null;
			if (ttfbs.length > 0) {
				const pos = 0.99 * (ttfbs.length - 1);
				const lo = Math.floor(pos);
				p99 = ttfbs[lo] + (ttfbs[Math.min(lo + 1, ttfbs.length - 1)] - ttfbs[lo]) * (pos - lo);
			}
			near(v.ttfb_p99_ms, p99, `${v.route}|${v.status}: ttfb_p99_ms`);
			near(v.duration_avg_ms, avg(g.map((r) => r.duration_ms)), `${v.route}|${v.status}: duration_avg_ms`);
			assert.equal(Number(v.chunks), g.reduce((s, r) => s + r.chunks, 0), `${v.route}|${v.status}: chunks`);
			const ct = g.filter((r) => r.completion_tokens !== null);
			assert.equal(v.completion_tokens === null ? null : Number(v.completion_tokens),
				ct.length === 0 ? null : ct.reduce((s, r) => s + r.completion_tokens, 0), `${v.route}|${v.status}: completion_tokens`);
		}
		for (const k of ['sessions_stream|complete', 'sessions_stream|error', 'sessions_stream|interrupted', 'sessions_stream|cancelled', 'seed004_chat|complete'])
			assert.ok(view.some((v) => `${v.route}|${v.status}` === k), `the summary has ${k}`);
	});

	test('the pool: workers, threads, busy threads and respawns, the same on /metrics, /status and /status?json', async () => {
		await waitIdle();
		const s = await statusJson();
		assert.equal(s.pool, 'chatd');
		assert.equal(s.workers, CHATD.workers, 'workers alive = the configured pool size');
		assert.equal(s.processes.length, s.workers);
		assert.equal(s.total_threads, s.processes.reduce((x, p) => x + p.threads, 0));
		if (process.env.CHAT_THREADS) for (const p of s.processes) assert.equal(p.threads, Number(process.env.CHAT_THREADS));
		assert.equal(s.idle_threads, s.total_threads - s.busy_threads);
		assert.equal(s.requests, s.processes.reduce((x, p) => x + p.requests, 0));
		assert.ok(s.busy_threads >= 1, 'the /status request itself holds a thread');
		for (const p of s.processes) {
			assert.ok(Number.isInteger(p.pid) && p.pid > 1);
			assert.ok(p.uptime >= 0 && p.uptime <= s.start_since);
			const comm = `/proc/${p.pid}/comm`;
			if (existsSync('/proc/self/comm') && existsSync(comm)) assert.equal(readFileSync(comm, 'utf8').trim(), 'chatd', `${p.pid} is a chatd`);
		}

		const m = await scrapeMetrics(COUNTING);
		assert.equal(m.value('chat_pool_workers'), s.workers);
		assert.equal(m.value('chat_pool_threads'), s.total_threads);
		assert.equal(m.value('chat_pool_respawns_total'), s.respawns);
		assert.ok(m.value('chat_pool_busy_threads') >= 1);

		const text = await rawRequest('GET', `${HTTP_URL}/status`);
		assert.equal(text.status, 200);
		assert.match(text.headers.get('content-type') ?? '', /^text\/plain/);
		const field = (name) => Number(new RegExp(`^${name}:\\s+(\\d+)$`, 'm').exec(text.text)?.[1]);
		assert.equal(field('workers'), s.workers);
		assert.equal(field('total threads'), s.total_threads);
		assert.equal(field('respawns'), s.respawns);
		assert.ok(field('busy threads') >= 1);
		assert.ok(Number.isInteger(field('start since')));
		const pids = [...text.text.matchAll(/^(\d+)\s+\d+\s+\d+\s+\d+\s+\d+\s+\d+s$/gm)].map((x) => Number(x[1])).sort();
		assert.deepEqual(pids, s.processes.map((p) => p.pid).sort(), 'one row per worker');

		// An open stream lives on its worker's event loop, not on a thread:
		// open streams count it while it runs, then let it go.
		const user = await registerAndLogin('pool');
		const session = await createSession(user.token);
		const response = await openStream(user.token, session.id, 'busy [[tokens=40]] [[delay=50]]');
		const events = [];
		const reading = (async () => {
			for await (const ev of readSSE(response)) events.push(JSON.parse(ev.data));
		})();
		await waitFor(() => events.some((e) => e.type === 'content'), { what: 'the first token' });
		const during = await scrapeMetrics(COUNTING);
		assert.ok(during.value('chat_pool_streams') >= 1, `streams during a stream: ${during.value('chat_pool_streams')}`);
		const sj = await statusJson();
		assert.ok(sj.open_streams >= 1, `/status?json open_streams ${sj.open_streams}`);
		assert.ok(sj.processes.some((p) => p.streams >= 1));
		const duringText = await rawRequest('GET', `${HTTP_URL}/status`);
		assert.ok(Number(/^open streams:\s+(\d+)$/m.exec(duringText.text)?.[1]) >= 1);
		await reading;
		await waitFor(async () => (await scrapeMetrics(COUNTING)).value('chat_pool_streams') === 0, {
			timeout: 5000,
			what: 'no stream left open',
		});
	});
});

// ------------------------------------------------------------------- logs

describe('the request log', () => {
	test('one logfmt line per request: time, route, status, user, duration, TTFB for streams, bytes', async () => {
		const user = await registerAndLogin('log');
		const me = await api('GET', '/api/auth/me', { token: user.token });
		assert.equal(me.status, 200);
		const session = await createSession(user.token);
		const response = await openStream(user.token, session.id, 'logged [[tokens=2]]');
		const streamText = await response.text();
		const missing = await api('GET', `${SESSIONS}/${crypto.randomUUID()}`, { token: user.token });
		assert.equal(missing.status, 404);
		const expected = [
			['GET', 'auth_me', '200'],
			['POST', 'sessions_create', '201'],
			['POST', 'sessions_stream', '200'],
			['GET', 'sessions_get', '404'],
		];
		const lines = await waitFor(
			() => {
				const l = chatdLog((x) => x.event === 'request' && x.user === user.userId);
				return l.length >= expected.length ? l : null;
			},
			{ timeout: 5000, what: 'the request lines' },
		);
		await sleep(300);
		const all = chatdLog((x) => x.event === 'request' && x.user === user.userId);
		assert.deepEqual(all.map((x) => [x.method, x.route, x.status]), expected, 'one line per request, in order');
		for (const x of all) {
			assert.match(x.ts, ISO_MS_RE, 'ts');
			assert.equal(x.level, 'info');
			assert.match(x.pid, /^\d+$/);
			assert.match(x.duration_ms, /^\d+(\.\d+)?$/, 'duration_ms');
			assert.match(x.bytes, /^\d+$/, 'bytes');
			assert.ok(Number(x.bytes) > 0);
		}
		const stream = all.find((x) => x.route === 'sessions_stream');
		assert.match(stream.ttfb_ms, /^\d+(\.\d+)?$/, 'a stream logs its TTFB');
		assert.ok(Number(stream.ttfb_ms) <= Number(stream.duration_ms));
		assert.ok(Number(stream.bytes) >= Buffer.byteLength(streamText), 'bytes cover the stream body');
		for (const x of all.filter((y) => y !== stream)) assert.equal(x.ttfb_ms, '-', `${x.route}: no TTFB outside streams`);
		// Nothing secret in this user's lines.
		const raw = readFileSync(path.join(LOG_DIR, 'chatd.log'), 'utf8')
			.split('\n')
			.filter((l) => l.includes(user.userId));
		for (const l of raw) {
			assert.ok(!l.includes(user.token) && !l.includes(user.password), 'no token or password in the log');
			assert.ok(!/eyJ[\w-]{8,}/.test(l) && !/bearer/i.test(l), `no credential in: ${l}`);
		}
	});
});

// ------------------------------------------------------------------- CORS

/**
 * A second chatd of our own (1 worker) on a unix socket, spoken to over
 * FastCGI without nginx, with env on top of the test instance's settings.
 */
async function startChatd(env) {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'chatd-ops-'));
	const sock = path.join(dir, 'chatd.sock');
	const out = [];
	const child = spawn(CHATD_BIN, ['-c', CHATD_CONF], {
		env: {
			...process.env,
			CHAT_LISTEN: sock,
			CHAT_PID_FILE: '',
			CHAT_LOG_FILE: '',
			CHAT_WORKERS: '1',
			CHAT_THREADS: '4',
			CHAT_DB_POOL_SIZE: '2',
			CHAT_DRAIN_TIMEOUT: '1',
			DATABASE_URL,
			OPENAI_BASE_URL: `${UPSTREAM_URL}/v1`,
			OPENAI_API_KEY: UPSTREAM_KEY,
			...env,
		},
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	child.stdout.on('data', (d) => out.push(d));
	child.stderr.on('data', (d) => out.push(d));
	const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
	const instance = {
		sock,
		output: () => Buffer.concat(out).toString('utf8'),
		request: (method, uri, headers = {}, body = '') => {
			const [p, q = ''] = uri.split('?');
			const params = { REQUEST_METHOD: method, REQUEST_URI: uri, PATH_INFO: p, QUERY_STRING: q, REMOTE_ADDR: '127.0.0.1', SERVER_PROTOCOL: 'HTTP/1.1' };
			for (const [k, v] of Object.entries(headers)) params[`HTTP_${k.toUpperCase().replaceAll('-', '_')}`] = v;
			if (body) params.CONTENT_TYPE = 'application/json';
			return fcgiRequest(sock, params, body);
		},
		async stop() {
			if (child.exitCode === null && child.signalCode === null) {
				child.kill('SIGTERM');
				const t = setTimeout(() => child.kill('SIGKILL'), 10000);
				await exited;
				clearTimeout(t);
			}
			rmSync(dir, { recursive: true, force: true });
		},
	};
	try {
		await waitFor(
			async () => {
				if (child.exitCode !== null) throw new Error(`chatd exited: ${instance.output()}`);
				if (!existsSync(sock)) return false;
				try {
					return (await instance.request('GET', '/healthz')).status === 200;
				} catch {
					return false;
				}
			},
			{ timeout: 15000, interval: 100, what: 'the second chatd' },
		);
	} catch (e) {
		await instance.stop();
		throw e;
	}
	return instance;
}

describe('CORS', () => {
	test('the test instance: an origin not configured gets 403 on preflight and no Access-Control-* headers', async () => {
		const configured = (process.env.CHAT_CORS_ORIGINS ?? '').split(/[\s,]+/).filter(Boolean);
		const origin = `https://not-allowed-${crypto.randomBytes(4).toString('hex')}.example`;
		assert.ok(!configured.includes(origin));
		const pre = await api('OPTIONS', '/api/chat', { headers: { origin, 'access-control-request-method': 'POST' } });
		if (configured.includes('*')) {
			assert.equal(pre.status, 204, "CHAT_CORS_ORIGINS = '*' (development mode)");
			return;
		}
		assertJsonError(pre, 403, 'preflight from a foreign origin');
		assert.equal(pre.headers.get('access-control-allow-origin'), null);
		const r = await api('POST', '/api/chat', { body: CHEAP, headers: { origin, 'x-forwarded-for': randomClientIp() } });
		assert.equal(r.status, 200, 'the server answers; the browser withholds it');
		assert.equal(r.headers.get('access-control-allow-origin'), null);
		assert.equal(r.headers.get('access-control-expose-headers'), null);
		const get = await api('GET', '/healthz', { headers: { origin } });
		assert.equal(get.headers.get('access-control-allow-origin'), null);
		// An OPTIONS that is not a preflight is just a method not allowed.
		const plain = await api('OPTIONS', '/api/chat', { headers: { origin } });
		assertJsonError(plain, 405, 'OPTIONS without Access-Control-Request-Method');
		assert.match(plain.headers.get('allow') ?? '', /POST/);
		for (const o of configured) {
			const ok = await api('OPTIONS', '/api/chat', { headers: { origin: o, 'access-control-request-method': 'POST' } });
			assert.equal(ok.status, 204, `configured origin ${o}`);
			assert.equal(ok.headers.get('access-control-allow-origin'), o);
		}
	});

	describe('configured origins (a second chatd, over FastCGI)', () => {
		let chatd;
		before(async () => {
			chatd = await startChatd({ CHAT_DEV_MODE: '0', CHAT_CORS_ORIGINS: 'https://app.example, https://admin.example:8443' });
		});
		after(async () => {
			await chatd?.stop();
		});

		test('preflight from a listed origin: 204 with Allow-Origin, the route\'s methods, the headers, Max-Age', async () => {
			for (const origin of ['https://app.example', 'https://admin.example:8443']) {
				const r = await chatd.request('OPTIONS', '/api/chat', {
					origin,
					'access-control-request-method': 'POST',
					'access-control-request-headers': 'authorization, content-type',
				});
				assert.equal(r.status, 204, `${origin}: ${r.status} ${r.text}`);
				assert.equal(r.headers.get('access-control-allow-origin'), origin, 'the origin itself, never *');
				assert.match(r.headers.get('vary') ?? '', /Origin/);
				assert.match(r.headers.get('access-control-allow-methods') ?? '', /\bPOST\b/);
				const allowHeaders = (r.headers.get('access-control-allow-headers') ?? '').toLowerCase();
				for (const h of ['authorization', 'content-type', 'idempotency-key', 'last-event-id'])
					assert.ok(allowHeaders.includes(h), `Allow-Headers has ${h}: ${allowHeaders}`);
				assert.match(r.headers.get('access-control-max-age') ?? '', /^\d+$/);
				assert.equal(r.text, '');
			}
			const s = await chatd.request('OPTIONS', `${SESSIONS}/${crypto.randomUUID()}`, {
				origin: 'https://app.example',
				'access-control-request-method': 'PATCH',
			});
			assert.equal(s.status, 204);
			for (const m of ['GET', 'PATCH', 'DELETE']) assert.match(s.headers.get('access-control-allow-methods') ?? '', new RegExp(`\\b${m}\\b`));
		});

		test('preflight from any other origin: 403 JSON, no Allow-Origin (exact match only)', async () => {
			for (const origin of ['https://evil.example', 'http://app.example', 'https://app.example.evil', 'https://app.exampl', 'https://admin.example', 'null', '*']) {
				const r = await chatd.request('OPTIONS', '/api/chat', { origin, 'access-control-request-method': 'POST' });
				assertJsonError(r, 403, `preflight from ${origin}`);
				assert.equal(r.headers.get('access-control-allow-origin'), null, origin);
			}
			const none = await chatd.request('OPTIONS', '/api/chat', { 'access-control-request-method': 'POST' });
			assertJsonError(none, 403, 'preflight without Origin');
		});

		test('requests from a listed origin get Allow-Origin and the rate-limit headers exposed', async () => {
			const r = await chatd.request('POST', '/api/chat', { origin: 'https://app.example', 'x-forwarded-for': randomClientIp() }, JSON.stringify(CHEAP));
			assert.equal(r.status, 200, r.text);
			assert.equal(r.headers.get('access-control-allow-origin'), 'https://app.example');
			const exposed = (r.headers.get('access-control-expose-headers') ?? '').toLowerCase();
			for (const h of ['retry-after', 'ratelimit-limit', 'ratelimit-remaining', 'ratelimit-reset', 'ratelimit-policy'])
				assert.ok(exposed.includes(h), `exposes ${h}: ${exposed}`);
			const foreign = await chatd.request('GET', '/healthz', { origin: 'https://evil.example' });
			assert.equal(foreign.status, 200);
			assert.equal(foreign.headers.get('access-control-allow-origin'), null);
		});
	});

	test("'*' is refused outside development mode, accepted in it", async () => {
		const check = (env) => run(CHATD_BIN, ['-t', '-c', CHATD_CONF], { env: { ...process.env, ...env } });
		for (const origins of ['*', 'https://app.example, *']) {
			const r = await check({ CHAT_DEV_MODE: '0', CHAT_CORS_ORIGINS: origins });
			assert.notEqual(r.code, 0, `cors_origins = ${origins} without dev mode must not start`);
			assert.match(r.stderr, /cors_origins/, r.stderr);
		}
		const listed = await check({ CHAT_DEV_MODE: '0', CHAT_CORS_ORIGINS: 'https://app.example' });
		assert.equal(listed.code, 0, listed.stderr);
		assert.match(listed.stdout, /^cors_origins = https:\/\/app\.example$/m);
		const dev = await check({ CHAT_DEV_MODE: '1', CHAT_CORS_ORIGINS: '*' });
		assert.equal(dev.code, 0, dev.stderr);
		assert.match(dev.stdout, /^cors_origins = \*$/m);
		assert.match(dev.stdout, /^dev_mode = 1$/m);
	});

	test("development mode with '*': any origin is allowed", async () => {
		const chatd = await startChatd({ CHAT_DEV_MODE: '1', CHAT_CORS_ORIGINS: '*' });
		try {
			const origin = `http://localhost:${10000 + crypto.randomInt(50000)}`;
			const r = await chatd.request('OPTIONS', '/api/chat', { origin, 'access-control-request-method': 'POST' });
			assert.equal(r.status, 204, r.text);
			assert.ok([origin, '*'].includes(r.headers.get('access-control-allow-origin')));
		} finally {
			await chatd.stop();
		}
	});
});
