// 03_drain.test.mjs: issue 9, SIGTERM to chatd's master with clients
// mid-stream. Workers stop accepting, finish their in-flight streams and
// exit; the master exits as soon as they are done, and no later than
// drain_timeout: a stream still running then is cut (its worker is
// SIGKILLed) and its reply is stored as interrupted, ready to be resumed.
//
// chatd is restarted here with a short drain_timeout (CHAT_DRAIN_TIMEOUT)
// and brought back with the test instance's settings at the end.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
	HTTP_URL,
	SESSIONS,
	api,
	checkSeed000,
	chatdLog,
	chatdMasterPid,
	chatdWorkerPids,
	closeDb,
	collectSSE,
	createSession,
	isErrorBody,
	nonce,
	openStream,
	procAlive,
	rawRequest,
	registerAndLogin,
	restartChatd,
	sleep,
	stackCtl,
	streamInBackground,
	tokensText,
	waitFor,
	waitHealthy,
	waitReplyEnd,
	withTimeout,
} from '../e2e/lib.mjs';

const DRAIN = 4; // seconds
let user;

before(async () => {
	await waitHealthy();
	await restartChatd({ CHAT_DRAIN_TIMEOUT: String(DRAIN) });
	user = await registerAndLogin('dr');
});
after(async () => {
	// Back to the instance's own settings, whatever happened above.
	await restartChatd().catch(async (e) => {
		await stackCtl('chatd_start');
		throw e;
	});
	await closeDb();
});

async function startStream(content) {
	const session = await createSession(user.token);
	const s = streamInBackground((signal) => openStream(user.token, session.id, content, { signal }));
	const first = await withTimeout(s.started, 10000, 'the start event');
	assert.equal(first?.json?.type, 'start', `the stream started: ${JSON.stringify(first)}`);
	s.session = session;
	s.replyId = first.json.message_id;
	return s;
}

/** Starts chatd again (same drain setting) after a test stopped it. */
const startAgain = () => stackCtl('chatd_start', { env: { CHAT_DRAIN_TIMEOUT: String(DRAIN) } }).then(() => waitHealthy());

describe(`SIGTERM drains in-flight streams (drain_timeout ${DRAIN} s)`, () => {
	let duringMs; // how long a request sent during the drain waited for its answer
	test('streams shorter than the deadline all complete; the master exits as soon as they are done', async () => {
		const TOKENS = 15; // 1.5 s
		const streams = [];
		for (let i = 0; i < 6; i++) streams.push(await startStream(`${nonce('drain')} [[tokens=${TOKENS}]] [[delay=100]]`));
		const master = chatdMasterPid();
		const workers = chatdWorkerPids();
		const t0 = performance.now();
		process.kill(master, 'SIGTERM');
		const results = await withTimeout(Promise.all(streams.map((s) => s.done)), 15000, 'the streams');
		for (const [i, s] of streams.entries()) {
			const parsed = checkSeed000(results[i].events);
			assert.ok(parsed.done, `stream ${i} completed: ${JSON.stringify(parsed.end)}`);
			assert.equal(parsed.text, tokensText(TOKENS));
			const row = await waitReplyEnd(s.replyId);
			assert.equal(row.status, 'complete');
			assert.equal(row.content, tokensText(TOKENS));
		}
		await waitFor(() => !procAlive(master) && workers.every((p) => !procAlive(p)), {
			timeout: (DRAIN + 5) * 1000,
			interval: 50,
			what: 'the master and its workers to exit',
		});
		const ms = performance.now() - t0;
		assert.ok(ms < DRAIN * 1000, `the master exited ${ms.toFixed(0)} ms after SIGTERM, before the ${DRAIN} s deadline`);
		const lines = chatdLog((r) => r.pid === String(master));
		assert.ok(lines.some((r) => /^stopping: draining workers/.test(r.msg ?? '')), 'the master logged the drain');
		assert.ok(lines.some((r) => /^master stopped/.test(r.msg ?? '')), 'the master logged its stop');
		assert.ok(!lines.some((r) => /still draining/.test(r.msg ?? '')), 'no worker had to be killed');
		await startAgain();
	});

	test('a stream longer than the deadline is cut at it, stored as interrupted, and resumable after the restart; a request sent during the drain is answered, never left hanging', async (t) => {
		const short = await startStream(`${nonce('drain')} [[tokens=10]] [[delay=100]]`);
		const long = await startStream(`${nonce('drain')} [[tokens=300]] [[delay=100]]`);
		const master = chatdMasterPid();
		await sleep(300);
		const t0 = performance.now();
		process.kill(master, 'SIGTERM');
		await sleep(300);
		// Nobody accepts any more: this waits in the listen queue until the
		// master exits and the socket closes; nginx then answers 502 JSON.
		const tDuring = performance.now();
		const during = rawRequest('GET', `${HTTP_URL}/api/auth/me`, { token: user.token, timeout: (DRAIN + 10) * 1000 }).then((r) => {
			duringMs = performance.now() - tDuring;
			return r;
		});

		const s = checkSeed000((await withTimeout(short.done, 10000, 'the short stream')).events);
		assert.ok(s.done, 'the short stream completed');
		const res = await withTimeout(long.done, (DRAIN + 6) * 1000, 'the long stream to be cut');
		const cutAt = performance.now() - t0;
		const parsed = checkSeed000(res.events, { complete: false });
		assert.equal(parsed.done, undefined, 'the long stream did not complete');
		// The master keeps its deadlines in whole seconds (time()): the cut
		// comes within a second either side of drain_timeout.
		assert.ok(cutAt >= (DRAIN - 1) * 1000 - 200, `cut ${cutAt.toFixed(0)} ms after SIGTERM: not long before the deadline`);
		assert.ok(cutAt < (DRAIN + 3) * 1000, `cut ${cutAt.toFixed(0)} ms after SIGTERM: soon after the deadline`);
		await waitFor(() => !procAlive(master), { timeout: 5000, what: 'the master to exit' });

		const d = await during;
		t.diagnostic(`a request sent during the drain got ${d.status}; the long stream was cut ${cutAt.toFixed(0)} ms after SIGTERM`);
		assert.ok(d.status === 502 || d.status === 200, `a request during the drain: ${d.status} ${d.text}`);
		if (d.status === 502) assert.ok(isErrorBody(d.json), `nginx's 502 is JSON: ${d.text}`);

		const row = await waitReplyEnd(long.replyId, 10000);
		assert.equal(row.status, 'interrupted', 'the cut reply is interrupted');
		assert.equal(row.error, 'worker_died');
		assert.ok(parsed.text.startsWith(row.content), 'the stored part is what the client got');
		assert.ok(
			chatdLog((r) => r.pid === String(master) && /still draining after \d+s: killing it/.test(r.msg ?? '')).length > 0,
			'the master logged the kill at the deadline',
		);

		await startAgain();
		const resp = await api('GET', `${SESSIONS}/${long.session.id}/stream`, { token: user.token, raw: true });
		assert.equal(resp.status, 200);
		const replay = checkSeed000((await collectSSE(resp)).events);
		assert.equal(replay.replyId, long.replyId);
		assert.equal(replay.text, row.content, 'the resume replays the stored part');
		assert.equal(replay.error?.code, 'worker_died', 'and ends with the interrupted end');
	});

	// FINDING (reported; left failing on purpose until chatd is fixed): while
	// chatd drains, its listening socket stays open (in the master and in
	// every worker) but nobody accepts: a request that arrives then waits in
	// the listen queue until the master exits — up to drain_timeout, 60 s by
	// default — and only then gets nginx's 502; behind an nginx upstream of
	// several chatd servers it cannot fail over to another one meanwhile.
	// Expected: the socket is closed when the drain begins, so such a request
	// is refused at once.
	test('a request that arrives during the drain is refused at once, not held until the master exits', () => {
		assert.ok(duringMs !== undefined, 'needs the previous test');
		assert.ok(duringMs < 1500, `answered ${duringMs.toFixed(0)} ms after it was sent (the drain deadline is ${DRAIN} s)`);
	});
});
