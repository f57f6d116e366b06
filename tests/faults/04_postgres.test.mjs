// 04_postgres.test.mjs: issue 9, PostgreSQL restarted under load. While it
// is down every route that needs it answers 503 {"error": ...} at once (no
// crash, no hang), /healthz stays 200 and /readyz turns 503; a stream in
// flight keeps streaming and its reply is stored whole once the database is
// back (the batches are retried); afterwards every worker reconnects, cancel
// (LISTEN/NOTIFY) works again, and no connection leaks.
//
// PostgreSQL is stopped and started with scripts/lib.sh's pg_stop/pg_start,
// as scripts/test runs it; an after hook starts it whatever happens.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
	CHATD,
	HTTP_URL,
	SESSIONS,
	checkSeed000,
	chatdLog,
	chatdMasterPid,
	chatdWorkerPids,
	closeDb,
	continueWorkers,
	createSession,
	dbReply,
	dbTolerant,
	isErrorBody,
	mapConcurrent,
	nonce,
	onlyWorker,
	openStream,
	pgChatdConnections,
	rawRequest,
	registerAndLogin,
	sleep,
	stackCtl,
	streamInBackground,
	tokensText,
	waitFor,
	waitHealthy,
	waitReplyEnd,
	withTimeout,
} from '../e2e/lib.mjs';

const EXTERNAL = Boolean(process.env.CHAT_TEST_DATABASE_URL);
let user;
let session;

before(async () => {
	if (EXTERNAL) return;
	dbTolerant();
	await waitHealthy();
	user = await registerAndLogin('pg');
	session = await createSession(user.token);
});
after(async () => {
	if (EXTERNAL) return;
	continueWorkers();
	await stackCtl('pg_start');
	await waitHealthy().catch(() => {});
	await closeDb();
});

/** Every route that needs the database, as {name, method, path, body, token}. */
function routes() {
	const t = user.token;
	const sid = session.id;
	const chat = { messages: [{ role: 'user', content: 'x' }] };
	return [
		['me', 'GET', '/api/auth/me', undefined, t],
		['sessions list', 'GET', SESSIONS, undefined, t],
		['session create', 'POST', SESSIONS, { title: 'x' }, t],
		['session get', 'GET', `${SESSIONS}/${sid}`, undefined, t],
		['session rename', 'PATCH', `${SESSIONS}/${sid}`, { title: 'y' }, t],
		['session delete', 'DELETE', `${SESSIONS}/${sid}`, undefined, t],
		['stream', 'POST', `${SESSIONS}/${sid}/stream`, { content: 'x' }, t],
		['resume', 'GET', `${SESSIONS}/${sid}/stream`, undefined, t],
		['cancel', 'POST', `${SESSIONS}/${sid}/cancel`, undefined, t],
		['seed 002', 'POST', '/stream/chat', { message: 'x' }, t],
		['seed 003 anonymous', 'POST', '/api/v2/ai/chat/stream', { message: 'x' }, undefined],
		['seed 003', 'POST', '/api/v2/ai/chat/stream', { message: 'x' }, t],
		['seed 004 anonymous', 'POST', '/api/chat', { message: 'x' }, undefined],
		['settings get', 'GET', '/api/settings', undefined, t],
		['settings put', 'PUT', '/api/settings', { voice: 'marin' }, t],
		['voice session', 'POST', '/api/session', undefined, t],
		['seed 001', 'POST', '/openai/chatCompletion', chat, t],
		['livekit', 'POST', '/api/livekit/token', { roomName: 'r', participantName: 'p' }, t],
		['v1', 'POST', '/v1/chat/completions', { model: 'gpt-4o-mini', ...chat }, t],
		['login', 'POST', '/api/auth/login', { username: user.username, password: user.password }, undefined],
		['register', 'POST', '/api/auth/register', { username: nonce('pgreg'), password: 'password1' }, undefined],
	];
}

describe('PostgreSQL restart', { skip: EXTERNAL && 'CHAT_TEST_DATABASE_URL: not our cluster to stop' }, () => {
	test('down: 503 JSON on every route that needs it, at once; /healthz 200, /readyz 503; a stream in flight streams on and is stored whole once it is back', async (t) => {
		const TOKENS = 80; // 8 s
		const workersBefore = chatdWorkerPids();
		const master = chatdMasterPid();
		const own = await createSession(user.token);
		const s = streamInBackground((signal) => openStream(user.token, own.id, `${nonce('pgs')} [[tokens=${TOKENS}]] [[delay=100]]`, { signal }));
		const first = await withTimeout(s.started, 10000, 'the start event');
		const replyId = first.json.message_id;
		await sleep(1200);

		await stackCtl('pg_stop');
		const tDown = performance.now();
		try {
			const healthz = await rawRequest('GET', `${HTTP_URL}/healthz`);
			assert.equal(healthz.status, 200, '/healthz only says the process is up');
			await waitFor(async () => (await rawRequest('GET', `${HTTP_URL}/readyz`)).status === 503, {
				timeout: 6000,
				interval: 100,
				what: '/readyz to turn 503',
			});
			// Twice, on fresh connections: several workers answer.
			for (let round = 0; round < 2; round++) {
				for (const [name, method, path, body, token] of routes()) {
					const t0 = performance.now();
					const r = await rawRequest(method, `${HTTP_URL}${path}`, { body, token, timeout: 15000 });
					const ms = performance.now() - t0;
					assert.equal(r.status, 503, `${name}: ${r.status} ${r.text.slice(0, 200)}`);
					assert.match(r.headers.get('content-type') ?? '', /^application\/json/, name);
					assert.ok(isErrorBody(r.json), `${name}: ${r.text}`);
					assert.ok(ms < 6000, `${name} answered in ${ms.toFixed(0)} ms`);
				}
			}
			t.diagnostic(`${routes().length} routes answered 503 JSON twice while PostgreSQL was down`);
			// Down long enough for a batch of the stream to fail (one a second).
			await sleep(Math.max(0, 3000 - (performance.now() - tDown)));
			assert.equal(s.events.at(-1)?.json?.type, 'content', 'the stream is still streaming');
		} finally {
			await stackCtl('pg_start');
		}
		t.diagnostic(`PostgreSQL was down ${((performance.now() - tDown) / 1000).toFixed(1)} s`);

		const res = await withTimeout(s.done, 20000, 'the stream');
		const parsed = checkSeed000(res.events);
		assert.ok(parsed.done, `the stream completed: ${JSON.stringify(parsed.end)}`);
		assert.equal(parsed.text, tokensText(TOKENS));
		const row = await waitReplyEnd(replyId, 20000);
		assert.equal(row.status, 'complete', 'the final status was stored once the database was back');
		assert.equal(row.content, tokensText(TOKENS), 'no batch was lost while the database was down');
		assert.equal(row.chunks, TOKENS, 'every delta boundary was stored');
		assert.ok(
			chatdLog((r) => (r.msg ?? '').startsWith(`reply ${replyId}: batch not stored`)).length > 0,
			'a batch failed while the database was down (and was stored later)',
		);

		await waitHealthy();
		assert.equal(chatdMasterPid(), master);
		assert.deepEqual(chatdWorkerPids(), workersBefore, 'no worker crashed or was respawned');
		assert.equal(
			chatdLog((r) => /killed by signal|exited with status/.test(r.msg ?? '') && workersBefore.some((p) => r.msg.includes(` ${p} `))).length,
			0,
			'no worker died',
		);
	});

	// FINDING (reported; left failing on purpose until chatd is fixed): when a
	// reply ends while PostgreSQL is unreachable, engine.c tries its last
	// batch and its final status once (turn_persist, store_reply_finish) and
	// gives up: the client got the whole reply ("done", complete), but the
	// row keeps only the batches stored before the outage, stays `streaming`
	// for good, and a resume waits for the stale timeout, then reports
	// worker_died. chatd.log: "reply …: final status complete not stored".
	test('a reply that ends while PostgreSQL is down is stored whole, as complete, once it is back', async (t) => {
		const TOKENS = 20; // 2 s
		const own = await createSession(user.token);
		const s = streamInBackground((signal) => openStream(user.token, own.id, `${nonce('pgend')} [[tokens=${TOKENS}]] [[delay=100]]`, { signal }));
		const first = await withTimeout(s.started, 10000, 'the start event');
		const replyId = first.json.message_id;
		await sleep(1300);
		await stackCtl('pg_stop');
		let res;
		try {
			res = await withTimeout(s.done, 10000, 'the stream');
			await sleep(1500); // down a while longer
		} finally {
			await stackCtl('pg_start');
		}
		const parsed = checkSeed000(res.events);
		assert.equal(parsed.done?.status, 'complete', 'the client got the whole reply');
		assert.equal(parsed.text, tokensText(TOKENS));
		await waitHealthy();
		let row;
		try {
			row = await waitReplyEnd(replyId, 8000);
		} catch {
			row = await dbReply(replyId);
		}
		t.diagnostic(`stored: status ${row.status}, ${row.chunks} of ${TOKENS} deltas`);
		assert.equal(row.status, 'complete', `the reply row says ${row.status}`);
		assert.equal(row.content, tokensText(TOKENS), 'the whole reply is stored');
	});

	test('back: every worker serves database requests again, cancel (LISTEN) works on every worker, no connection leaked', async () => {
		const rs = await mapConcurrent(Array.from({ length: 48 }), 48, () =>
			rawRequest('GET', `${HTTP_URL}/api/auth/me`, { token: user.token }),
		);
		for (const r of rs) assert.equal(r.status, 200, r.text);

		// The cancel listener of each worker reconnected: a cancel sent to
		// any process stops a generation on every worker.
		for (const w of chatdWorkerPids()) {
			const own = await createSession(user.token);
			const s = await onlyWorker(w, async () => {
				const x = streamInBackground((signal) => openStream(user.token, own.id, `${nonce('pgc')} [[tokens=200]] [[delay=50]]`, { signal }));
				await withTimeout(x.started, 10000, 'the start event');
				return x;
			});
			await sleep(300);
			const c = await rawRequest('POST', `${HTTP_URL}${SESSIONS}/${own.id}/cancel`, { token: user.token });
			assert.equal(c.status, 200, `cancel: ${c.text}`);
			const t0 = performance.now();
			const res = await withTimeout(s.done, 5000, `the cancelled stream on worker ${w}`);
			const parsed = checkSeed000(res.events);
			assert.equal(parsed.done?.status, 'cancelled', `worker ${w}: ${JSON.stringify(parsed.end)}`);
			assert.ok(performance.now() - t0 < 2000, `worker ${w} stopped within 2 s of the cancel`);
		}

		const conns = await pgChatdConnections();
		const pool = Number(process.env.CHAT_DB_POOL_SIZE ?? 8);
		assert.ok(conns <= CHATD.workers * (pool + 1), `${conns} chatd connections, at most ${CHATD.workers} × (${pool} + 1 listener)`);
	});
});
