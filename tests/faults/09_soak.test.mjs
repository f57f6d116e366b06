// 09_soak.test.mjs: issue 9, a soak of mixed requests and streams with
// clients that disconnect at random, then the books are checked: no worker
// crashed; no growth of worker memory or open descriptors; no leaked
// PostgreSQL connection; every user message whose stream was acknowledged
// (its first event arrived) is in PostgreSQL, once, in its owner's session;
// no reply is left `streaming`.
//
// Short by default (2,000 operations, ~10 s); CHAT_SOAK=1 runs the long one
// (CHAT_SOAK_OPS operations, default 30,000, a few minutes). chatd is restarted for the soak with 16
// threads per worker: every thread serves during the warm-up, so per-thread
// caches (the thread's stack, its libcurl handle and kept-alive upstream
// connection) are in place before the baseline, and any growth after it is
// a leak. Rate limits stay on, high enough for the soak. Users log in before
// the baseline: the soak makes no logins (see the last test for those).
//
// The instance's own settings are restored at the end.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import {
	HTTP_URL,
	SESSIONS,
	api,
	chatdLog,
	chatdMasterPid,
	chatdWorkerPids,
	closeDb,
	collectSSE,
	continueWorkers,
	createSession,
	db,
	mapConcurrent,
	nonce,
	openStream,
	pgChatdConnections,
	poolStatus,
	procFds,
	procRssKiB,
	randomClientIp,
	rawRequest,
	registerAndLogin,
	restartChatd,
	sleep,
	stackCtl,
	tokensText,
	waitFor,
	waitHealthy,
} from '../e2e/lib.mjs';

const LONG = process.env.CHAT_SOAK === '1';
const SOAK_OPS = LONG ? Number(process.env.CHAT_SOAK_OPS ?? 30000) : 2000;
const WARMUP_OPS = 400;
const LANES = 24;
const THREADS = 16;
const POOL = Number(process.env.CHAT_DB_POOL_SIZE ?? 8);
const RSS_SLACK_KIB = 8 * 1024;
const CHUNKS = LONG ? 6 : 1;
const RSS_TAIL_KIB = 1024; // the long soak's last chunk may add at most this
const rssTrail = []; // per chunk: {pid: {rss, fds}}

const rand = (n) => crypto.randomInt(n);
const pick = (xs) => xs[rand(xs.length)];

let users = [];
const acked = []; // {content, userId|null}: user messages whose stream was acknowledged
const figures = { ops: 0, streams: 0, aborted: 0, acked: 0, byKind: {} };

before(async () => {
	await waitHealthy();
	await restartChatd({
		CHAT_THREADS: String(THREADS),
		CHAT_RATELIMIT_CHAT_USER: '1000000',
		CHAT_RATELIMIT_CHAT_ANON: '1000000',
	});
	users = [];
	for (let i = 0; i < 8; i++) {
		const u = await registerAndLogin('soak');
		u.sessions = [await createSession(u.token), await createSession(u.token)];
		u.spare = []; // sessions created by the soak with no message: safe to delete
		users.push(u);
	}
});
after(async () => {
	continueWorkers();
	await restartChatd().catch(async (e) => {
		await stackCtl('chatd_start');
		throw e;
	});
	await closeDb();
});

// --------------------------------------------------------------- the ops

/** Reads a streamed response; aborts after `abortAfter` events when given. */
async function readStream(response, controller, abortAfter, onFirst) {
	let n = 0;
	const res = await collectSSE(response, {
		controller,
		onEvent: (e) => {
			n += 1;
			if (n === 1) onFirst?.(e);
			if (abortAfter !== undefined && n >= abortAfter) return 'stop';
			return undefined;
		},
	});
	return res;
}

function ack(content, userId) {
	acked.push({ content, userId });
}

const OPS = [
	// seed 000, read whole
	[25, async (u) => {
		const session = pick(u.sessions);
		const k = 3 + rand(28);
		const content = `${nonce('soak000')} [[tokens=${k}]] [[delay=${pick([0, 5, 20])}]]`;
		const r = await openStream(u.token, session.id, content);
		if (r.status !== 200) return { ok: false, detail: `seed000 ${r.status} ${await r.text()}` };
		const res = await readStream(r, null, undefined, (e) => e.json?.type === 'start' && ack(content, u.userId));
		const end = res.events.at(-1)?.json;
		const text = res.events.filter((e) => e.json?.type === 'content').map((e) => e.json.content).join('');
		return { ok: end?.type === 'done' && text === tokensText(k), detail: `seed000 end ${JSON.stringify(end)}` };
	}],
	// seed 000, the client leaves mid-stream
	[10, async (u) => {
		const session = pick(u.sessions);
		const content = `${nonce('soak000a')} [[tokens=30]] [[delay=20]]`;
		const c = new AbortController();
		const r = await openStream(u.token, session.id, content, { signal: c.signal });
		if (r.status !== 200) return { ok: false, detail: `seed000 abort ${r.status}` };
		await readStream(r, c, 1 + rand(10), (e) => e.json?.type === 'start' && ack(content, u.userId));
		figures.aborted += 1;
		return { ok: true };
	}],
	// seed 000, cancelled from a second connection
	[3, async (u) => {
		// A session of its own: a cancel stops whatever the session generates.
		const session = await createSession(u.token);
		const content = `${nonce('soak000c')} [[tokens=300]] [[delay=20]]`;
		const r = await openStream(u.token, session.id, content);
		if (r.status !== 200) return { ok: false, detail: `cancel stream ${r.status}` };
		let cancel;
		const res = await readStream(r, null, undefined, (e) => {
			if (e.json?.type === 'start') ack(content, u.userId);
			cancel = rawRequest('POST', `${HTTP_URL}${SESSIONS}/${session.id}/cancel`, { token: u.token });
		});
		const cr = await cancel;
		u.sessions.push(session);
		const end = res.events.at(-1)?.json;
		return { ok: cr.status === 200 && end?.type === 'done' && end.status === 'cancelled', detail: `cancel ${cr.status} ${JSON.stringify(end)}` };
	}],
	// seed 000, the same send twice with one Idempotency-Key
	[3, async (u) => {
		const session = pick(u.sessions);
		const content = `${nonce('soak000i')} [[tokens=10]] [[delay=10]]`;
		const key = nonce('key');
		let started = false;
		const both = await Promise.all(
			[0, 1].map(async () => {
				const r = await openStream(u.token, session.id, content, { headers: { 'idempotency-key': key } });
				if (r.status !== 200) return null;
				return readStream(r, null, undefined, (e) => {
					if (e.json?.type === 'start' && !started) {
						started = true;
						ack(content, u.userId); // one message for the two sends
					}
				});
			}),
		);
		const ends = both.map((b) => b?.events.at(-1)?.json);
		return { ok: ends.every((e) => e?.type === 'done' && e.message_id === ends[0].message_id), detail: `idempotent ${JSON.stringify(ends)}` };
	}],
	// resume the latest reply of a session
	[5, async (u) => {
		const session = pick(u.sessions);
		const r = await api('GET', `${SESSIONS}/${session.id}/stream`, { token: u.token, raw: true });
		if (r.status === 204 || r.status === 404) {
			await r.text();
			return { ok: true };
		}
		if (r.status !== 200) return { ok: false, detail: `resume ${r.status}` };
		const res = await readStream(r, null);
		const end = res.events.at(-1)?.json;
		return { ok: end?.type === 'done' || end?.type === 'error', detail: `resume ${JSON.stringify(end)}` };
	}],
	// seed 002
	[8, async (u) => {
		const content = `${nonce('soak002')} [[tokens=${2 + rand(10)}]]`;
		const body = { message: content, metadata: {} };
		if (rand(2)) body.conversation_id = pick(['conv-a', 'conv-b']);
		const c = new AbortController();
		const r = await fetch(`${HTTP_URL}/stream/chat`, {
			method: 'POST',
			headers: { 'content-type': 'application/json', authorization: `Bearer ${u.token}` },
			body: JSON.stringify(body),
			signal: c.signal,
		});
		if (r.status !== 200) return { ok: false, detail: `seed002 ${r.status} ${await r.text()}` };
		const leave = rand(5) === 0;
		const res = await readStream(r, c, leave ? 2 : undefined, (e) => e.event === 'start' && ack(content, u.userId));
		if (leave) {
			figures.aborted += 1;
			return { ok: true };
		}
		return { ok: res.events.at(-1)?.event === 'end', detail: `seed002 last ${res.events.at(-1)?.event}` };
	}],
	// seed 003, with a token or anonymous
	[10, async (u) => {
		const anonymous = rand(2) === 0;
		const content = `${nonce('soak003')} [[tokens=${2 + rand(10)}]]`;
		const body = { message: content };
		if (rand(3) === 0) body.sessionId = `soak-${pick(['x', 'y'])}`;
		const headers = { 'content-type': 'application/json', 'x-forwarded-for': randomClientIp() };
		if (!anonymous) headers.authorization = `Bearer ${u.token}`;
		const c = new AbortController();
		const r = await fetch(`${HTTP_URL}/api/v2/ai/chat/stream`, { method: 'POST', headers, body: JSON.stringify(body), signal: c.signal });
		if (r.status !== 200) return { ok: false, detail: `seed003 ${r.status} ${await r.text()}` };
		const leave = rand(5) === 0;
		const res = await readStream(r, c, leave ? 1 : undefined, () => ack(content, anonymous ? null : u.userId));
		if (leave) {
			figures.aborted += 1;
			return { ok: true };
		}
		return { ok: res.events.at(-1)?.json?.done === true, detail: `seed003 ${res.events.at(-1)?.data}` };
	}],
	// seed 004, not streamed, not stored
	[6, async (u) => {
		const r = await rawRequest('POST', `${HTTP_URL}/api/chat`, {
			token: rand(2) ? u.token : undefined,
			headers: { 'x-forwarded-for': randomClientIp() },
			body: { message: 'soak [[tokens=3]]', history: [{ role: 'user', content: 'a' }, { role: 'assistant', content: 'b' }] },
		});
		return { ok: r.status === 200 && r.json?.reply === tokensText(3), detail: `seed004 ${r.status} ${r.text.slice(0, 100)}` };
	}],
	// /v1/chat/completions, streamed (sometimes left) or not
	[8, async (u) => {
		const stream = rand(3) !== 0;
		const body = { model: 'gpt-4o-mini', stream, messages: [{ role: 'user', content: 'soak [[tokens=8]] [[delay=5]]' }] };
		if (!stream) {
			const r = await rawRequest('POST', `${HTTP_URL}/v1/chat/completions`, { token: u.token, body });
			return { ok: r.status === 200 && r.json?.choices?.[0]?.message?.content === tokensText(8), detail: `v1 ${r.status}` };
		}
		const c = new AbortController();
		const r = await fetch(`${HTTP_URL}/v1/chat/completions`, {
			method: 'POST',
			headers: { 'content-type': 'application/json', authorization: `Bearer ${u.token}` },
			body: JSON.stringify(body),
			signal: c.signal,
		});
		if (r.status !== 200) return { ok: false, detail: `v1 stream ${r.status}` };
		const leave = rand(4) === 0;
		const res = await readStream(r, c, leave ? 3 : undefined);
		if (leave) {
			figures.aborted += 1;
			return { ok: true };
		}
		return { ok: res.events.at(-1)?.data === '[DONE]', detail: `v1 last ${res.events.at(-1)?.data}` };
	}],
	// seed 001
	[2, async (u) => {
		const r = await rawRequest('POST', `${HTTP_URL}/openai/chatCompletion`, { token: u.token, body: { messages: [{ role: 'user', content: 'soak [[tokens=2]]' }] } });
		return { ok: r.status === 200, detail: `seed001 ${r.status}` };
	}],
	// sessions: list, get, rename, create, delete an empty one
	[12, async (u) => {
		const which = rand(5);
		if (which === 0) {
			const r = await api('GET', `${SESSIONS}?limit=${1 + rand(20)}&offset=${rand(3)}`, { token: u.token });
			return { ok: r.status === 200 && Array.isArray(r.json?.sessions), detail: `list ${r.status}` };
		}
		if (which === 1) {
			const r = await api('GET', `${SESSIONS}/${pick(u.sessions).id}`, { token: u.token });
			return { ok: r.status === 200 && Array.isArray(r.json?.messages), detail: `get ${r.status}` };
		}
		if (which === 2) {
			const title = `renamed ${nonce('t')} '; DROP TABLE users; --`;
			const r = await api('PATCH', `${SESSIONS}/${pick(u.sessions).id}`, { token: u.token, body: { title } });
			return { ok: r.status === 200 && r.json?.title === title, detail: `rename ${r.status}` };
		}
		if (which === 3 || u.spare.length === 0) {
			const r = await api('POST', SESSIONS, { token: u.token, body: { title: 'spare' } });
			if (r.status === 201) u.spare.push(r.json);
			return { ok: r.status === 201, detail: `create ${r.status}` };
		}
		const s = u.spare.pop();
		const r = await api('DELETE', `${SESSIONS}/${s.id}`, { token: u.token });
		return { ok: r.status === 204, detail: `delete ${r.status}` };
	}],
	// settings
	[3, async (u) => {
		if (rand(2)) {
			const r = await api('PUT', '/api/settings', { token: u.token, body: { temperature: rand(20) / 10 } });
			return { ok: r.status === 200, detail: `settings put ${r.status}` };
		}
		const r = await api('GET', '/api/settings', { token: u.token });
		return { ok: r.status === 200, detail: `settings get ${r.status}` };
	}],
	// probes and the user
	[5, async (u) => {
		const [path, opts, status] = pick([
			['/api/auth/me', { token: u.token }, 200],
			['/healthz', {}, 200],
			['/readyz', {}, 200],
			['/metrics', {}, 200],
			['/status?json', {}, 200],
		]);
		const r = await rawRequest('GET', `${HTTP_URL}${path}`, opts);
		return { ok: r.status === status, detail: `${path} ${r.status}` };
	}],
	// refused requests
	[3, async (u) => {
		const [method, path, opts, status] = pick([
			['POST', `${SESSIONS}/${pick(u.sessions).id}/stream`, { token: u.token, body: '{"content": ' }, 400],
			['GET', `${SESSIONS}/${crypto.randomUUID()}`, { token: u.token }, 404],
			['GET', SESSIONS, { token: 'garbage' }, 401],
			['POST', '/api/chat', { body: { message: 12 } }, 400],
		]);
		const r = await api(method, path, opts);
		return { ok: r.status === status, detail: `${method} ${path} ${r.status}` };
	}],
];
const TOTAL_WEIGHT = OPS.reduce((a, [w]) => a + w, 0);

function pickOp() {
	let x = rand(TOTAL_WEIGHT);
	for (const [i, [w, fn]] of OPS.entries()) {
		if (x < w) return [i, fn];
		x -= w;
	}
	throw new Error('unreachable');
}

/** Runs n random ops on LANES lanes; returns the failures. */
async function runOps(n) {
	const failures = [];
	await mapConcurrent(Array.from({ length: n }), LANES, async () => {
		const [i, fn] = pickOp();
		const u = pick(users);
		figures.ops += 1;
		figures.byKind[i] = (figures.byKind[i] ?? 0) + 1;
		try {
			const r = await fn(u);
			if (!r.ok) failures.push(r.detail);
		} catch (e) {
			failures.push(`op ${i}: ${e.message}`);
		}
	});
	return failures;
}

// ------------------------------------------------------------ the books

/** Until nothing is in flight: no busy thread but /status's own, no reply streaming. */
async function settle() {
	await waitFor(
		async () => {
			const { rows } = await db().query(
				`SELECT count(*)::int AS n FROM messages m JOIN chat_sessions s ON s.id = m.session_id
				  WHERE m.status = 'streaming' AND (s.user_id = ANY($1) OR s.user_id IS NULL)`,
				[users.map((u) => u.userId)],
			);
			const pool = await poolStatus();
			return rows[0].n === 0 && pool.busy_threads <= 1 && (pool.open_streams ?? 0) === 0;
		},
		{ timeout: 60000, interval: 200, what: 'every generation to end' },
	);
	await sleep(500);
}

async function snapshot() {
	const workers = chatdWorkerPids();
	return {
		master: chatdMasterPid(),
		workers: Object.fromEntries(workers.map((p) => [p, { rss: procRssKiB(p), fds: procFds(p) }])),
		pg: await pgChatdConnections(),
		respawns: (await poolStatus()).respawns,
	};
}

describe(`soak: ${SOAK_OPS} mixed requests and streams${LONG ? ' (long)' : ''}, clients leaving at random`, () => {
	let base;
	let failures = [];
	let t0;

	test(`warm-up: ${WARMUP_OPS} operations, then the baseline`, { timeout: 120000 }, async () => {
		const f = await runOps(WARMUP_OPS);
		assert.deepEqual(f.slice(0, 10), [], `${f.length} warm-up operations failed`);
		await settle();
		base = await snapshot();
		t0 = new Date();
		figures.ops = 0;
		figures.aborted = 0;
	});

	test(`${SOAK_OPS} operations on ${LANES} lanes: none fails`, { timeout: LONG ? 3600000 : 180000 }, async (t) => {
		assert.ok(base, 'needs the baseline');
		const started = performance.now();
		// In chunks, with the memory after each: a leak grows with every
		// chunk, a cache filling up stops growing.
		failures = [];
		for (let i = 0; i < CHUNKS; i++) {
			failures.push(...(await runOps(Math.ceil(SOAK_OPS / CHUNKS))));
			if (CHUNKS > 1) {
				await settle();
				const snap = await snapshot();
				rssTrail.push(snap.workers);
				t.diagnostic(`after chunk ${i + 1}/${CHUNKS}: RSS ${Object.values(snap.workers).map((w) => w.rss).join(', ')} KiB`);
			}
		}
		const secs = (performance.now() - started) / 1000;
		t.diagnostic(`${figures.ops} operations in ${secs.toFixed(1)} s (${(figures.ops / secs).toFixed(0)}/s), ${figures.aborted} left mid-stream`);
		assert.deepEqual(failures.slice(0, 10), [], `${failures.length} of ${figures.ops} operations failed`);
	});

	test('afterwards: same master and workers, no growth of memory or descriptors, no leaked PostgreSQL connection', async (t) => {
		assert.ok(base, 'needs the baseline');
		await settle();
		const now = await snapshot();
		assert.equal(now.master, base.master, 'the same master');
		assert.deepEqual(Object.keys(now.workers), Object.keys(base.workers), 'the same workers: none crashed or was recycled');
		assert.equal(now.respawns, base.respawns, 'no respawn');
		for (const [pid, b] of Object.entries(base.workers)) {
			const a = now.workers[pid];
			t.diagnostic(`worker ${pid}: RSS ${b.rss} → ${a.rss} KiB; fds ${JSON.stringify(b.fds)} → ${JSON.stringify(a.fds)}`);
			assert.ok(a.rss - b.rss <= RSS_SLACK_KIB, `worker ${pid} grew by ${a.rss - b.rss} KiB`);
			assert.equal(a.fds.files, b.fds.files, `worker ${pid}: open files`);
			assert.equal(a.fds.other, b.fds.other, `worker ${pid}: pipes, eventfds, epoll`);
			assert.equal(a.fds.tcp, b.fds.tcp, `worker ${pid}: other TCP sockets`);
			assert.equal(a.fds.fcgi, 0, `worker ${pid}: FastCGI connections left open at rest`);
			assert.equal(a.fds.listen, b.fds.listen, `worker ${pid}: listening sockets`);
			// libcurl's wake-up socketpairs: the thread's multi handle's, and
			// the one curl_easy_perform keeps for the /readyz probe.
			assert.ok(a.fds.unix <= 4 * THREADS, `worker ${pid}: ${a.fds.unix} other unix sockets (two pairs per thread at most)`);
			// The pool, the NOTIFY listener, the heartbeat (core/sweep.c).
			assert.ok(a.fds.pg <= POOL + 2, `worker ${pid}: ${a.fds.pg} PostgreSQL connections (pool ${POOL} + listener + heartbeat)`);
			// libcurl keeps a finished connection for reuse: one in the
			// thread's multi handle, one in its easy handle (the /readyz probe).
			assert.ok(a.fds.upstream <= 2 * THREADS, `worker ${pid}: ${a.fds.upstream} upstream connections (kept for reuse, two per thread at most)`);
		}
		if (rssTrail.length >= 2) {
			const [prev, last] = rssTrail.slice(-2);
			for (const pid of Object.keys(last))
				assert.ok(last[pid].rss - prev[pid].rss <= RSS_TAIL_KIB, `worker ${pid} still grows: ${prev[pid].rss} → ${last[pid].rss} KiB in the last chunk`);
		}
		t.diagnostic(`PostgreSQL connections of chatd: ${base.pg} → ${now.pg}`);
		assert.ok(now.pg <= Object.keys(now.workers).length * (POOL + 1), `${now.pg} chatd connections`);
		const errors = chatdLog((r) => r.level === 'error' && r.ts >= t0.toISOString());
		assert.deepEqual(errors.slice(0, 5), [], `${errors.length} error lines in chatd.log during the soak`);
	});

	test('nothing lost: every acknowledged user message is in PostgreSQL, once, in its owner’s session; no reply is left streaming', async (t) => {
		const contents = acked.map((a) => a.content);
		figures.acked = contents.length;
		const { rows } = await db().query(
			`SELECT m.content, s.user_id::text AS owner, count(*) OVER (PARTITION BY m.content)::int AS copies,
			        (SELECT r.status FROM messages r WHERE r.session_id = m.session_id AND r.seq > m.seq
			          AND r.role = 'assistant' ORDER BY r.seq LIMIT 1) AS reply
			   FROM messages m JOIN chat_sessions s ON s.id = m.session_id
			  WHERE m.role = 'user' AND m.content = ANY($1)`,
			[contents],
		);
		const found = new Map(rows.map((r) => [r.content, r]));
		const missing = acked.filter((a) => !found.has(a.content));
		t.diagnostic(`${acked.length} acknowledged user messages (warm-up and soak), ${missing.length} missing`);
		assert.deepEqual(missing.slice(0, 5), [], `${missing.length} acknowledged messages are not in PostgreSQL`);
		for (const a of acked) {
			const r = found.get(a.content);
			assert.equal(r.copies, 1, `${a.content}: stored once`);
			assert.equal(r.owner, a.userId, `${a.content}: in its owner's session`);
			assert.ok(['complete', 'cancelled', 'interrupted'].includes(r.reply), `${a.content}: its reply ended (${r.reply})`);
		}
	});
});

describe('logins', () => {
	// Each argon2id hash allocates 19 MiB with malloc. Before worker.c fixed
	// glibc's mmap threshold, the freed buffers stayed in the threads'
	// arenas: a worker's resident memory climbed from 15 MiB to 300-800 MiB
	// over a few hundred logins and stayed there. At most 4 hashes run at
	// once per process (76 MiB), which is all a worker should need.
	test('a burst of logins leaves worker memory near where it was (argon2id buffers are given back)', { timeout: 120000 }, async (t) => {
		await restartChatd();
		const u = users[0];
		const pids = chatdWorkerPids();
		const before = Object.fromEntries(pids.map((p) => [p, procRssKiB(p)]));
		const N = 160;
		const rs = await mapConcurrent(Array.from({ length: N }), 16, () =>
			rawRequest('POST', `${HTTP_URL}/api/auth/login`, { body: { username: u.username, password: u.password }, timeout: 60000 }),
		);
		assert.ok(rs.every((r) => r.status === 200), 'every login succeeded');
		await sleep(500);
		const LIMIT_KIB = 128 * 1024; // 4 hashes at once × 19 MiB, with room to spare
		const after = Object.fromEntries(pids.map((p) => [p, procRssKiB(p)]));
		for (const p of pids) t.diagnostic(`worker ${p}: ${before[p]} → ${after[p]} KiB after ${N} logins over all workers`);
		for (const p of pids) assert.ok(after[p] - before[p] <= LIMIT_KIB, `worker ${p} grew by ${((after[p] - before[p]) / 1024).toFixed(0)} MiB`);
	});
});
