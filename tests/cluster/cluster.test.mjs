// cluster.test.mjs: several hosts, proven (issue 16). scripts/cluster has
// built a network of namespaces: nginx and this test on `front`, chatd and
// the gateway on `app-a` and `app-b`, PostgreSQL and PgBouncer on `db`.
// Every test has streams in flight:
// - streams spread over both hosts, each host beating under its own id;
// - a resume (Last-Event-ID) on the other host continues the reply;
// - a cancel through one host stops the generation on the other;
// - stream caps and rate limits count across both hosts;
// - a Socket.IO room with members on both gateways (one on long polling,
//   which only works if nginx keeps its requests on one gateway);
// - PgBouncer killed and restarted;
// - 20 ms and 1 % loss each way on the db link (netem, or netdelay);
// - app-a killed with SIGKILL: nginx sends new requests to app-b, and its
//   replies end interrupted with their stored part, resumed on app-b;
// - app-a cut off the network: the sweep on app-b marks its replies
//   interrupted by their stopped heartbeats; back on the network, it serves.
// The destructive tests come last, in that order.
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
	BASE_URL,
	REPO,
	SESSIONS,
	api,
	closeDb,
	createSession,
	db,
	dbReply,
	fcgiRequest,
	nonce,
	openStream,
	readSSE,
	registerAndLogin,
	sleep,
	streamInBackground,
	tokensText,
	waitFor,
	waitReplyEnd,
	withTimeout,
} from '../e2e/lib.mjs';
import { collect001, connect, emitAck } from '../gateway/lib.mjs';

const HOSTS = {
	'app-a': process.env.CHAT_APP_A ?? '10.231.0.11',
	'app-b': process.env.CHAT_APP_B ?? '10.231.0.12',
};
const FCGI_PORT = Number(process.env.CHAT_FCGI_PORT ?? 9000);
const GATEWAY_PORT = Number(process.env.CHAT_CLUSTER_GATEWAY_PORT ?? 8091);
const other = (host) => (host === 'app-a' ? 'app-b' : 'app-a');
// The sweep's heartbeat rule (core/sweep.h): silent for 15 s, then the
// next sweep of a master (every 5 s); a margin for a loaded machine.
const SWEPT_MS = 40000;

/** Runs scripts/cluster ARGS (root ns or not: it enters the namespaces itself). */
function cluster(...args) {
	return new Promise((resolve, reject) => {
		execFile(path.join(REPO, 'scripts/cluster'), args, { timeout: 120000 }, (err, stdout, stderr) => {
			if (err) reject(new Error(`scripts/cluster ${args.join(' ')}: ${err.message}\n${stdout}${stderr}`));
			else resolve(stdout);
		});
	});
}

/** The host that owns (or owned) a reply: "app-a:123" or "gw:app-b:45". */
async function hostOf(replyId) {
	const row = await dbReply(replyId);
	const parts = (row?.worker ?? '').split(':');
	return parts.length === 3 ? parts[1] : parts[0];
}

/**
 * A request straight to one app host's FastCGI port, as nginx would send
 * it: the way to pick the host. Resolves once the response is complete.
 */
function direct(host, method, uri, { token, body, headers = {}, ip = '192.0.2.10', timeout = 30000 } = {}) {
	const [p, q = ''] = uri.split('?');
	const params = {
		REQUEST_METHOD: method, REQUEST_URI: uri, PATH_INFO: p, QUERY_STRING: q,
		REMOTE_ADDR: ip, SERVER_PROTOCOL: 'HTTP/1.1',
	};
	if (token) params.HTTP_AUTHORIZATION = `Bearer ${token}`;
	for (const [k, v] of Object.entries(headers)) params[`HTTP_${k.toUpperCase().replaceAll('-', '_')}`] = v;
	const text = body === undefined ? '' : JSON.stringify(body);
	if (text) params.CONTENT_TYPE = 'application/json';
	return fcgiRequest({ host: HOSTS[host], port: FCGI_PORT }, params, text, timeout);
}

/** The SSE events of a complete response text, JSON parsed. */
async function sseOf(text) {
	const events = [];
	for await (const ev of readSSE(new Response(text))) events.push({ ...ev, json: JSON.parse(ev.data) });
	return events;
}

/**
 * A new session, made on app-b directly: then the stream POSTs alone pass
 * nginx, and its round robin alternates them between the hosts.
 */
async function newSession(user) {
	const r = await direct('app-b', 'POST', SESSIONS, { token: user.token, body: {} });
	assert.equal(r.status, 201, r.text);
	return r.json;
}

/** Opens a seed-000 stream through nginx in the background; resolves once it started. */
async function startStream(user, content) {
	const session = await newSession(user);
	const s = streamInBackground((signal) => openStream(user.token, session.id, content, { signal }));
	const first = await withTimeout(s.started, 15000, 'the start event');
	if (first?.json?.type !== 'start') {
		const end = await s.done;
		assert.fail(`the stream did not start: ${end.status} ${end.text} ${end.error ?? ''}`);
	}
	s.session = session;
	s.replyId = first.json.message_id;
	s.host = await hostOf(s.replyId);
	return s;
}

/**
 * Streams through nginx until one runs on host: round robin takes the next
 * one, unless nginx rests the host after a failure (fail_timeout, 10 s).
 */
async function streamOn(user, host, content) {
	for (let i = 0; i < 15; i++) {
		if (i >= 2) await sleep(1000);
		const s = await startStream(user, content);
		if (s.host === host) return s;
		// Not wanted: stopped, so that it holds no stream slot; the cancel
		// goes to app-b directly, so that nginx's next request is the next
		// stream (round robin counts every request).
		s.controller.abort();
		const c = await direct('app-b', 'POST', `${SESSIONS}/${s.session.id}/cancel`, { token: user.token });
		assert.ok([200, 409].includes(c.status), c.text);
	}
	throw new Error(`no stream landed on ${host}`);
}

/** The processes rows of a host, as its heartbeat threads keep them. */
async function beats(host) {
	const { rows } = await db().query(
		`SELECT id, kind, extract(epoch FROM now() - heartbeat_at)::float8 AS age
		   FROM processes WHERE host = $1`, [host]);
	return rows;
}

const waitReady = () =>
	waitFor(async () => (await api('GET', '/readyz').catch(() => ({ status: 0 }))).status === 200,
		{ timeout: 30000, interval: 250, what: 'readyz through nginx' });

after(closeDb);

describe('two app hosts behind one nginx', () => {
	let user;
	before(async () => {
		await waitReady();
		user = await registerAndLogin('cl');
	});

	test('each host beats under its own id; streams spread over both and complete', { timeout: 60000 }, async () => {
		const { rows: hostRows } = await db().query(
			`SELECT host, workers::int, gateways::int, extract(epoch FROM silent_for)::float8 AS silent
			   FROM hosts WHERE host LIKE 'app-%' ORDER BY host`);
		assert.deepEqual(hostRows.map((h) => [h.host, h.workers, h.gateways]), [['app-a', 2, 1], ['app-b', 2, 1]],
			'one row per host in the hosts view');
		for (const h of hostRows) assert.ok(h.silent < 10, `${h.host} silent for ${h.silent} s`);
		for (const host of Object.keys(HOSTS)) {
			const rows = await beats(host);
			assert.ok(rows.some((r) => r.kind === 'worker'), `${host} has worker heartbeats`);
			assert.ok(rows.some((r) => r.kind === 'gateway'), `${host} has a gateway heartbeat`);
			for (const r of rows) assert.ok(r.age < 10, `${r.id} beat ${r.age} s ago`);
		}
		const n = 6;
		const streams = await Promise.all(
			Array.from({ length: n }, (_, i) => startStream(user, `${nonce('spread')} ${i} [[tokens=40]] [[delay=20]]`)));
		const ends = await Promise.all(streams.map((s) => withTimeout(s.done, 30000, 'a stream to end')));
		const hosts = new Set(streams.map((s) => s.host));
		assert.deepEqual([...hosts].sort(), ['app-a', 'app-b'], 'round robin used both hosts');
		for (const [i, end] of ends.entries()) {
			const last = end.events.at(-1)?.json;
			assert.equal(last?.type, 'done', `stream ${i} ended: ${JSON.stringify(last)}`);
			assert.equal(last.full_content, tokensText(40));
			const row = await dbReply(streams[i].replyId);
			assert.equal(row.status, 'complete');
			assert.equal(row.content, tokensText(40), 'stored whole');
		}
	});

	test('a resume with Last-Event-ID on the other host continues the reply to its end', { timeout: 60000 }, async () => {
		const s = await startStream(user, `${nonce('res')} [[tokens=120]] [[delay=25]]`);
		await waitFor(() => s.events.length >= 6, { what: 'a few deltas' });
		s.controller.abort();
		const seen = s.events.slice(0, 6);
		const text = seen.filter((e) => e.json?.type === 'content').map((e) => e.json.content).join('');
		const host = other(s.host);
		const r = await direct(host, 'GET', `${SESSIONS}/${s.session.id}/stream`,
			{ token: user.token, headers: { 'last-event-id': seen.at(-1).id } });
		assert.equal(r.status, 200, r.text);
		const rest = await sseOf(r.text);
		assert.equal(rest[0].json.type, 'content', 'no second start');
		const done = rest.at(-1).json;
		assert.equal(done.type, 'done', JSON.stringify(done));
		const whole = text + rest.filter((e) => e.json.type === 'content').map((e) => e.json.content).join('');
		assert.equal(whole, tokensText(120), `${s.host} generated, ${host} resumed: nothing lost or repeated`);
		assert.equal(done.full_content, whole);
		assert.equal(await hostOf(s.replyId), s.host, 'the reply stayed with its generator');
	});

	test('a cancel through one host stops the generation on the other', { timeout: 60000 }, async () => {
		const s = await startStream(user, `${nonce('cancel')} [[tokens=400]] [[delay=25]]`);
		await waitFor(() => s.events.length >= 3, { what: 'a few deltas' });
		const t0 = performance.now();
		const c = await direct(other(s.host), 'POST', `${SESSIONS}/${s.session.id}/cancel`, { token: user.token });
		assert.equal(c.status, 200, c.text);
		assert.equal(c.json.cancelled, true);
		const end = await withTimeout(s.done, 10000, 'the cancelled stream to end');
		assert.ok(performance.now() - t0 < 5000, 'the generation stopped within seconds');
		const last = end.events.at(-1)?.json;
		assert.equal(last?.type, 'done', JSON.stringify(last));
		assert.equal(last.status, 'cancelled');
		const row = await dbReply(s.replyId);
		assert.equal(row.status, 'cancelled');
		assert.ok(tokensText(400).startsWith(row.content) && row.content.length < tokensText(400).length);
	});

	test('the stream cap counts the streams of both hosts', { timeout: 60000 }, async () => {
		const cap = Number(process.env.CHAT_STREAMS_PER_USER);
		assert.ok(cap >= 2 && cap <= 8, `the cluster suite sets a small CHAT_STREAMS_PER_USER (${cap})`);
		const capped = await registerAndLogin('clcap');
		const sessions = await Promise.all(Array.from({ length: cap + 2 }, () => createSession(capped.token)));
		// cap streams, alternating hosts, held open for a few seconds.
		const held = sessions.slice(0, cap).map((session, i) =>
			direct(i % 2 ? 'app-b' : 'app-a', 'POST', `${SESSIONS}/${session.id}/stream`,
				{ token: capped.token, body: { content: `${nonce('cap')} [[tokens=100]] [[delay=40]]` } }));
		await waitFor(async () => {
			const { rows } = await db().query(
				`SELECT count(*)::int AS n FROM messages m JOIN chat_sessions s ON s.id = m.session_id
				  WHERE s.user_id = $1 AND m.status = 'streaming'`, [capped.userId]);
			return rows[0].n === cap;
		}, { timeout: 15000, what: `${cap} streams in flight` });
		for (const [i, host] of ['app-a', 'app-b'].entries()) {
			const r = await direct(host, 'POST', `${SESSIONS}/${sessions[cap + i].id}/stream`,
				{ token: capped.token, body: { content: 'one too many [[tokens=2]]' } });
			assert.equal(r.status, 429, `${host}: ${r.status} ${r.text.slice(0, 200)}`);
			assert.equal(typeof r.json?.error, 'string', 'a JSON error');
		}
		for (const r of await Promise.all(held)) {
			assert.equal(r.status, 200);
			assert.equal((await sseOf(r.text)).at(-1).json.type, 'done', 'the held streams completed');
		}
		// Slots freed on both hosts: one more goes through.
		const again = await direct('app-b', 'POST', `${SESSIONS}/${sessions[cap].id}/stream`,
			{ token: capped.token, body: { content: 'after [[tokens=2]]' } });
		assert.equal(again.status, 200, again.text.slice(0, 200));
	});

	test('the chat rate limit counts the requests of both hosts', { timeout: 90000 }, async () => {
		const limit = Number(process.env.CHAT_RATELIMIT_CHAT_USER);
		assert.ok(limit >= 2 && limit <= 60, `the cluster suite sets a small CHAT_RATELIMIT_CHAT_USER (${limit})`);
		const limited = await registerAndLogin('clrate');
		const session = await createSession(limited.token);
		for (let i = 0; i < limit; i++) {
			const host = i % 2 ? 'app-b' : 'app-a';
			const r = await direct(host, 'POST', `${SESSIONS}/${session.id}/stream`,
				{ token: limited.token, body: { content: `r${i} [[tokens=1]]` } });
			assert.equal(r.status, 200, `request ${i + 1} on ${host}: ${r.text.slice(0, 200)}`);
		}
		for (const host of Object.keys(HOSTS)) {
			const r = await direct(host, 'POST', `${SESSIONS}/${session.id}/stream`,
				{ token: limited.token, body: { content: 'over [[tokens=1]]' } });
			assert.equal(r.status, 429, `${host}, after ${limit / 2} requests of its own: ${r.text.slice(0, 200)}`);
			assert.ok(Number(r.headers.get('retry-after')) > 0, 'Retry-After');
		}
	});

	test('a Socket.IO room has members on both gateways, one of them long polling', { timeout: 60000 }, async () => {
		const status = async (host) => (await fetch(`http://${HOSTS[host]}:${GATEWAY_PORT}/gateway/status`)).json();
		/** A socket through nginx, and the gateway that holds it. */
		const connectOn = async (ip, opts) => {
			const before = { 'app-a': (await status('app-a')).sessions, 'app-b': (await status('app-b')).sessions };
			const socket = await connect({ ...opts, ip });
			for (const host of Object.keys(HOSTS))
				if ((await status(host)).sessions > before[host]) return { socket, host };
			socket.close();
			throw new Error('the socket is on no gateway');
		};
		const alice = await registerAndLogin('clroom');
		const sockets = [];
		try {
			// nginx picks the gateway by client address: try addresses until
			// each gateway holds one socket. The poller never upgrades.
			const poller = await connectOn('198.51.100.1', { transports: ['polling'], auth: { token: alice.token } });
			sockets.push(poller.socket);
			let ws;
			for (let i = 2; i < 60 && !ws; i++) {
				const c = await connectOn(`198.51.100.${i}`, { transports: ['websocket'], auth: { token: alice.token } });
				sockets.push(c.socket);
				if (c.host !== poller.host) ws = c;
			}
			assert.ok(ws, 'a socket on the other gateway');
			const room = `cl-${nonce('room')}`;
			for (const s of [poller.socket, ws.socket])
				assert.deepEqual(await emitAck(s, 'join-room', { roomName: room }), { ok: true, roomName: room });
			const heard = [collect001(poller.socket), collect001(ws.socket)];
			const r = await api('POST', '/openai/chatCompletion/stream/start', {
				token: alice.token,
				body: { sessionId: room, messages: [{ role: 'user', content: 'both [[tokens=30]] [[delay=20]]' }] },
			});
			assert.equal(r.status, 202, r.text);
			for (const [i, got] of (await Promise.all(heard)).entries()) {
				assert.equal(got.error, undefined, JSON.stringify(got.error));
				assert.equal(got.complete.fullResponse, tokensText(30), `member ${i} heard the whole reply`);
			}
			assert.notEqual(poller.host, ws.host);
		} finally {
			for (const s of sockets) s.close();
		}
	});
});

describe('the database link', () => {
	let user;
	before(async () => {
		await waitReady();
		user = await registerAndLogin('cldb');
	});

	test('PgBouncer killed and restarted: streams in flight end stored, new ones work', { timeout: 90000 }, async () => {
		const streams = await Promise.all([0, 1, 2, 3].map((i) =>
			startStream(user, `${nonce('pgb')} ${i} [[tokens=120]] [[delay=25]]`)));
		await sleep(800);
		await cluster('pgbouncer-restart');
		for (const s of streams) {
			const end = await withTimeout(s.done, 30000, 'a stream to end');
			const last = end.events.at(-1)?.json;
			const row = await waitReplyEnd(s.replyId, SWEPT_MS);
			// The reply goes on while PgBouncer is back within the retries;
			// the client is told what is stored, either way.
			if (last?.type === 'done') {
				assert.equal(row.status, 'complete');
				assert.equal(row.content, last.full_content);
			} else {
				assert.ok(['error', 'done'].includes(last?.type) || end.error, `an ending: ${JSON.stringify(last)}`);
				assert.ok(tokensText(120).startsWith(row.content), 'a prefix is stored');
			}
		}
		await waitReady();
		const session = await createSession(user.token);
		const r = await openStream(user.token, session.id, 'after pgbouncer [[tokens=5]]');
		assert.equal(r.status, 200);
	});

	test('20 ms and 1 % loss on the db link: streams complete, nothing acknowledged is lost', { timeout: 180000 }, async () => {
		console.log(`# ${(await cluster('impair', 'on')).trim().split('\n').at(-1)}`);
		try {
			const streams = [];
			for (let i = 0; i < 6; i++)
				streams.push(await startStream(user, `${nonce('lossy')} ${i} [[tokens=150]] [[delay=20]]`));
			const ends = await Promise.all(streams.map((s) => withTimeout(s.done, 60000, 'a stream to end')));
			for (const [i, end] of ends.entries()) {
				const last = end.events.at(-1)?.json;
				assert.equal(last?.type, 'done', `stream ${i}: ${JSON.stringify(last)}`);
				assert.equal(last.full_content, tokensText(150));
				// The done event was sent once the reply was stored: it is there.
				const row = await dbReply(streams[i].replyId);
				assert.equal(row.status, 'complete');
				assert.equal(row.content, tokensText(150));
			}
			// And every acknowledged user message of theirs is stored.
			for (const s of streams) {
				const { rows } = await db().query(
					`SELECT count(*)::int AS n FROM messages WHERE session_id = $1 AND role = 'user'`, [s.session.id]);
				assert.equal(rows[0].n, 1);
			}
		} finally {
			console.log(`# ${(await cluster('impair', 'off')).trim().split('\n').at(-1)}`);
		}
	});
});

describe('losing app-a', () => {
	let user;
	before(async () => {
		await waitReady();
		user = await registerAndLogin('cllose');
	});

	test('kill -9 of everything on app-a: nginx moves to app-b, its replies end with the stored part', { timeout: 120000 }, async () => {
		const onA = [];
		for (let i = 0; i < 2; i++) onA.push(await streamOn(user, 'app-a', `${nonce('k9')} ${i} [[tokens=400]] [[delay=25]]`));
		const onB = await streamOn(user, 'app-b', `${nonce('k9b')} [[tokens=100]] [[delay=25]]`);
		await sleep(1500); // a batch or two stored
		await cluster('kill', 'a');
		const t0 = performance.now();
		// New requests: app-b answers all of them within seconds.
		await waitFor(async () => (await api('GET', '/healthz').catch(() => ({ status: 0 }))).status === 200,
			{ timeout: 10000, what: 'nginx to answer from app-b' });
		const firstOk = performance.now() - t0;
		for (let i = 0; i < 6; i++) assert.equal((await api('GET', '/readyz')).status, 200, `request ${i} after the kill`);
		console.log(`# nginx answered from app-b ${Math.round(firstOk)} ms after the kill`);
		// The streams on app-a broke off without a done.
		for (const s of onA) {
			const end = await withTimeout(s.done, 10000, 'the broken stream');
			assert.notEqual(end.events.at(-1)?.json?.type, 'done', 'no done from a dead host');
		}
		// Resumed (through nginx: app-b), each ends with what is stored and
		// the error ending, once app-b's sweep finds app-a silent.
		for (const s of onA) {
			const r = await api('GET', `${SESSIONS}/${s.session.id}/stream`, {
				token: user.token, headers: { 'last-event-id': s.events.at(-1).id }, raw: true,
			});
			assert.equal(r.status, 200);
			const events = await sseOf(await withTimeout(r.text(), SWEPT_MS, 'the resumed stream'));
			const last = events.at(-1).json;
			assert.equal(last.type, 'error', JSON.stringify(last));
			assert.equal(last.code, 'worker_died');
			const row = await dbReply(s.replyId);
			assert.equal(row.status, 'interrupted');
			assert.equal(row.error, 'worker_died');
			assert.ok(row.content.length > 0 && tokensText(400).startsWith(row.content));
			// The client may have seen more than app-a stored before it died
			// (replies are stored in batches, every second): then the resume
			// sends no text, only the ending; else exactly the stored rest.
			const seen = s.events.filter((e) => e.json?.type === 'content').map((e) => e.json.content).join('');
			const resumed = events.filter((e) => e.json.type === 'content').map((e) => e.json.content).join('');
			if (seen.length >= row.content.length) {
				assert.equal(resumed, '', 'nothing beyond the stored part');
				assert.ok(seen.startsWith(row.content));
			} else assert.equal(seen + resumed, row.content, 'the client pieced together the stored part');
			// From the start (no Last-Event-ID): the stored part, then the ending.
			const again = await api('GET', `${SESSIONS}/${s.session.id}/stream`, { token: user.token });
			assert.equal(again.status, 200);
			const all = await sseOf(again.text);
			assert.equal(all.filter((e) => e.json.type === 'content').map((e) => e.json.content).join(''), row.content);
			assert.equal(all.at(-1).json.code, 'worker_died');
		}
		// The stream on app-b never noticed.
		const endB = await withTimeout(onB.done, 30000, 'the app-b stream');
		assert.equal(endB.events.at(-1)?.json?.type, 'done');
		assert.equal(endB.events.at(-1).json.full_content, tokensText(100));
		await cluster('start', 'a');
		await waitFor(async () => (await beats('app-a')).some((r) => r.age < 5),
			{ timeout: 20000, what: 'app-a to beat again' });
	});

	test('app-a cut off the network: the sweep on app-b ends its replies by heartbeat', { timeout: 120000 }, async () => {
		// Its own user: the first's slots on app-a were freed by the sweep,
		// but a fresh user depends on nothing earlier.
		const user = await registerAndLogin('clcut');
		const s = await streamOn(user, 'app-a', `${nonce('cut')} [[tokens=400]] [[delay=25]]`);
		await sleep(1500);
		await cluster('link', 'a', 'down');
		const t0 = performance.now();
		try {
			const row = await waitReplyEnd(s.replyId, SWEPT_MS);
			const ms = performance.now() - t0;
			console.log(`# app-a's reply was marked interrupted ${Math.round(ms)} ms after its link went down`);
			assert.equal(row.status, 'interrupted');
			assert.equal(row.error, 'worker_died');
			assert.ok(row.content.length > 0 && tokensText(400).startsWith(row.content), 'the stored part is kept');
			assert.ok(ms > 10000, 'not before its heartbeat went stale');
			for (const b of await beats('app-a')) assert.ok(b.age > 10, `${b.id} is silent`);
			const { rows: [h] } = await db().query(
				`SELECT extract(epoch FROM silent_for)::float8 AS silent FROM hosts WHERE host = 'app-a'`);
			assert.ok(h === undefined || h.silent > 10, 'the hosts view shows app-a silent');
			// Meanwhile nginx serves from app-b (app-a times out once, then rests).
			const session = await createSession(user.token);
			const r = await openStream(user.token, session.id, 'while cut [[tokens=5]]');
			assert.equal(r.status, 200);
			await r.text();
		} finally {
			s.controller.abort();
			await cluster('link', 'a', 'up');
		}
		// Back on the network, app-a beats and serves again; its late ending
		// does not change what the sweep recorded.
		await waitFor(async () => (await beats('app-a')).some((r) => r.age < 5),
			{ timeout: 20000, what: 'app-a to beat again' });
		const session = await createSession(user.token);
		const r = await direct('app-a', 'POST', `${SESSIONS}/${session.id}/stream`,
			{ token: user.token, body: { content: 'back [[tokens=3]]' } });
		assert.equal(r.status, 200, r.text.slice(0, 200));
		assert.equal((await dbReply(s.replyId)).status, 'interrupted', 'the ending stays');
	});
});
