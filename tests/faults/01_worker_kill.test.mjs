// 01_worker_kill.test.mjs: issue 9, a worker killed with SIGKILL in the
// middle of a stream. The master respawns it; the client's stream ends (it
// never hangs); the partial reply is stored as `interrupted` (worker_died)
// by the master; a resume ends it with an error event; followers on other
// workers see the same end; every other stream goes on untouched.
//
// Where a test needs a stream on a given worker, it stops the other workers
// (SIGSTOP) while it connects: a stopped process accepts nothing, so the
// connection lands on the one left running (onlyWorker).
//
// Runs in the faults suite (after e2e): it kills processes of the test
// instance. Every test leaves the pool at its full size.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
	CHATD,
	SESSIONS,
	api,
	checkSeed000,
	chatdLog,
	chatdMasterPid,
	chatdWorkerPids,
	closeDb,
	collectSSE,
	continueWorkers,
	createSession,
	db,
	dbMessages,
	dbReply,
	mapConcurrent,
	metricValue,
	nonce,
	onlyWorker,
	openStream,
	poolStatus,
	procAlive,
	procTasksStopped,
	registerAndLogin,
	replyWorkerPid,
	sleep,
	streamInBackground,
	streamTurn,
	tokensText,
	waitFor,
	waitHealthy,
	waitReplyEnd,
	withTimeout,
} from '../e2e/lib.mjs';

let user;
before(async () => {
	await waitHealthy();
	user = await registerAndLogin('fk');
});
after(async () => {
	continueWorkers();
	await waitHealthy().catch(() => {});
	await closeDb();
});

/** Until the pool is back to full size without the killed pids (respawned). */
async function waitRespawned(killed) {
	await waitFor(
		() => {
			const pids = chatdWorkerPids();
			return pids.length === CHATD.workers && killed.every((k) => !pids.includes(k));
		},
		{ timeout: 15000, interval: 50, what: `workers ${killed} to be replaced` },
	);
	await waitHealthy();
}

/** Every worker answers: n streams in a row complete. */
async function assertServes(n = 12) {
	const session = await createSession(user.token);
	for (let i = 0; i < n; i++) {
		const r = await streamTurn(user.token, session.id, `after ${i} [[tokens=3]]`);
		assert.ok(r.done, `stream ${i} after the kill: ${JSON.stringify(r.data.at(-1))}`);
		assert.equal(r.text, tokensText(3));
	}
}

/** GET …/sessions/{id}/stream, with Last-Event-ID when given. */
function fetchResume(sessionId, lastEventId, signal) {
	const headers = lastEventId ? { 'last-event-id': lastEventId } : {};
	return api('GET', `${SESSIONS}/${sessionId}/stream`, { token: user.token, headers, raw: true, signal });
}

/** Opens a seed-000 stream in the background and waits for its start event. */
async function startStream(session, content) {
	const s = streamInBackground((signal) => openStream(user.token, session.id, content, { signal }));
	const first = await withTimeout(s.started, 10000, 'the start event');
	assert.equal(first?.json?.type, 'start', `the stream started: ${JSON.stringify(first)}`);
	s.replyId = first.json.message_id;
	s.worker = await replyWorkerPid(s.replyId);
	return s;
}

describe('kill -9 a worker mid-stream', () => {
	let killed; // {victim, session, replyId, res, parsed}

	test('the client’s stream ends at once (no hang), the master respawns the worker', async () => {
		const session = await createSession(user.token);
		const s = await startStream(session, `${nonce('kill')} [[tokens=100]] [[delay=100]]`);
		const victim = s.worker;
		assert.ok(chatdWorkerPids().includes(victim), `the reply's worker ${victim} is a worker of the pool`);
		const respawnsBefore = (await poolStatus()).respawns;
		const metricBefore = await metricValue('chat_pool_respawns_total');

		// Kill it mid-batch: a batch has been stored and the next one is
		// half-way, so the client has seen deltas PostgreSQL does not have.
		await waitFor(async () => (await dbReply(s.replyId)).chunks >= 3, { what: 'a stored batch' });
		await sleep(450);
		const seen = s.events.length;
		process.kill(victim, 'SIGKILL');
		const tKill = performance.now();

		const res = await withTimeout(s.done, 10000, 'the end of the cut stream');
		const endedAfter = performance.now() - tKill;
		assert.ok(endedAfter < 5000, `the client's stream ended ${endedAfter.toFixed(0)} ms after the kill`);
		const parsed = checkSeed000(res.events, { complete: false });
		assert.ok(res.events.length >= seen, 'no event was taken back');
		assert.equal(parsed.done, undefined, 'no done event: the reply did not complete');
		assert.ok(!parsed.text.includes('t99'), 'the stream stopped with its worker');

		await waitRespawned([victim]);
		const st = await poolStatus();
		assert.equal(st.workers, CHATD.workers);
		assert.equal(st.respawns, respawnsBefore + 1, '/status counts the respawn');
		assert.equal(await metricValue('chat_pool_respawns_total'), metricBefore + 1, 'the metric too');
		assert.ok(procAlive(chatdMasterPid()), 'the master lives on');
		killed = { victim, session, replyId: s.replyId, res, parsed };
	});

	test('the partial reply is stored as interrupted (worker_died), the user message is kept, and the master says so in its log', async () => {
		assert.ok(killed, 'needs the previous test');
		const row = await waitReplyEnd(killed.replyId, 10000);
		assert.equal(row.status, 'interrupted');
		assert.equal(row.error, 'worker_died');
		assert.ok(row.content.length > 0, 'the stored batches are kept');
		assert.ok(killed.parsed.text.startsWith(row.content), 'what is stored is what the client was sent, up to the last batch');
		const msgs = await dbMessages(killed.session.id);
		assert.equal(msgs.length, 2, 'the user message and the reply');
		assert.equal(msgs[0].role, 'user');
		assert.match(msgs[0].content, /^kill-/);
		const log = chatdLog((r) => r.msg !== undefined && r.msg.includes(`worker ${killed.victim} `));
		assert.ok(log.some((r) => r.msg === `worker ${killed.victim} killed by signal 9`), 'the master logged the death');
		assert.ok(
			log.some((r) => r.msg === `marked 1 replies of worker ${killed.victim} interrupted`),
			`the master marked the reply: ${JSON.stringify(log)}`,
		);
	});

	test('a resume from the start replays what was stored and ends with the worker_died error event', async () => {
		assert.ok(killed, 'needs the first test');
		const resp = await fetchResume(killed.session.id);
		assert.equal(resp.status, 200);
		const { events } = await collectSSE(resp);
		const parsed = checkSeed000(events);
		assert.equal(parsed.replyId, killed.replyId);
		assert.equal(parsed.error?.code, 'worker_died');
		assert.equal(parsed.error?.status, 'interrupted');
		assert.equal(parsed.text, (await dbReply(killed.replyId)).content, 'the replay is the stored reply');
	});

	// FINDING (reported; left failing on purpose until chatd is fixed): a
	// client that saw more deltas than the last batch stored before its worker
	// died resumes with the last id it saw, and gets 204 ("you already have
	// the end"): it never learns that the reply was interrupted, and
	// EventSource stops reconnecting. Expected: the worker_died error event.
	test('a resume with the last id the client saw ends with the worker_died error event (not 204)', async () => {
		assert.ok(killed, 'needs the first test');
		const lastId = killed.res.events.at(-1).id;
		const resp = await fetchResume(killed.session.id, lastId);
		const body = resp.status === 200 ? await collectSSE(resp) : { events: [] };
		assert.equal(
			resp.status,
			200,
			`Last-Event-ID ${lastId}: the client saw ${killed.parsed.deltas.length} deltas, ` +
				`${(await dbReply(killed.replyId)).chunks} were stored; got ${resp.status}, expected the error end`,
		);
		const end = body.events.at(-1)?.json;
		assert.equal(end?.type, 'error');
		assert.equal(end?.code, 'worker_died');
	});

	test('every worker serves new streams', () => assertServes());
});

describe('kill -9 one worker while streams run on every worker', () => {
	test('only the killed worker’s streams end early; every other stream completes whole; none is left streaming', async () => {
		const PER_WORKER = 4;
		const TOKENS = 40;
		const workers = chatdWorkerPids();
		const streams = [];
		for (const w of workers) {
			for (let i = 0; i < PER_WORKER; i++) {
				const session = await createSession(user.token);
				const s = await onlyWorker(w, () => startStream(session, `${nonce('many')} [[tokens=${TOKENS}]] [[delay=100]]`));
				assert.equal(s.worker, w, 'the stream runs on the only worker left accepting');
				streams.push(s);
			}
		}
		const victim = workers[0];
		await sleep(800);
		process.kill(victim, 'SIGKILL');

		const results = await withTimeout(Promise.all(streams.map((s) => s.done)), 20000, 'the streams to end');
		for (const [i, s] of streams.entries()) {
			const parsed = checkSeed000(results[i].events, { complete: s.worker !== victim });
			const row = await waitReplyEnd(s.replyId, 10000);
			if (s.worker === victim) {
				assert.equal(parsed.done, undefined, 'a stream of the killed worker does not complete');
				assert.equal(row.status, 'interrupted');
				assert.equal(row.error, 'worker_died');
			} else {
				assert.ok(parsed.done, `stream on ${s.worker}: ${JSON.stringify(parsed.end)}`);
				assert.equal(parsed.text, tokensText(TOKENS), 'a survivor streams every token');
				assert.equal(row.status, 'complete');
				assert.equal(row.content, tokensText(TOKENS));
			}
		}
		await waitRespawned([victim]);
		const { rows } = await db().query(
			`SELECT count(*)::int AS n FROM messages WHERE id = ANY($1) AND status = 'streaming'`,
			[streams.map((s) => s.replyId)],
		);
		assert.equal(rows[0].n, 0, 'no reply is left streaming');
	});
});

describe('a follower on another worker', () => {
	test('GET …/stream followers of a reply whose worker dies get the stored rest, then the worker_died end', async () => {
		const [genWorker, followWorker] = chatdWorkerPids();
		const session = await createSession(user.token);
		const gen = await onlyWorker(genWorker, () =>
			startStream(session, `${nonce('follow')} [[tokens=100]] [[delay=100]]`),
		);
		const followers = await onlyWorker(followWorker, async () => {
			const fs = Array.from({ length: 3 }, () => streamInBackground((signal) => fetchResume(session.id, undefined, signal)));
			await Promise.all(fs.map((f) => withTimeout(f.started, 10000, 'a follower to start')));
			return fs;
		});
		await sleep(1200);
		process.kill(genWorker, 'SIGKILL');
		const results = await withTimeout(Promise.all(followers.map((f) => f.done)), 20000, 'the followers to end');
		const row = await waitReplyEnd(gen.replyId, 10000);
		assert.equal(row.status, 'interrupted');
		for (const res of results) {
			const parsed = checkSeed000(res.events);
			assert.equal(parsed.replyId, gen.replyId);
			assert.equal(parsed.error?.code, 'worker_died', JSON.stringify(parsed.end));
			assert.equal(parsed.text, row.content, 'the follower got everything stored');
		}
		await gen.done;
		await waitRespawned([genWorker]);
	});
});

describe('kill -9 every worker at once', () => {
	test('requests that arrive while no worker accepts wait in the listen queue and are served by the respawned workers', async () => {
		const session = await createSession(user.token);
		const victims = chatdWorkerPids();
		assert.equal(victims.length, CHATD.workers);
		// Stopped first, so that nothing is accepted by a dying process.
		for (const pid of victims) process.kill(pid, 'SIGSTOP');
		await waitFor(() => victims.every((p) => procTasksStopped(p)), { timeout: 5000, interval: 10, what: 'all workers stopped' });
		const pending = mapConcurrent(Array.from({ length: 24 }, (_, i) => i), 24, async (i) => {
			if (i % 3 === 0) return api('GET', `${SESSIONS}/${session.id}`, { token: user.token });
			if (i % 3 === 1) return api('GET', '/api/auth/me', { token: user.token });
			const r = await streamTurn(user.token, session.id, `during the respawn ${i} [[tokens=2]]`);
			return { status: r.done ? 200 : 500, text: JSON.stringify(r.data.at(-1)) };
		});
		await sleep(500); // the requests are queued now
		for (const pid of victims) process.kill(pid, 'SIGKILL');
		const t0 = performance.now();
		const results = await withTimeout(pending, 20000, 'the queued requests');
		const ms = performance.now() - t0;
		for (const r of results) assert.equal(r.status, 200, r.text);
		assert.ok(ms < 10000, `served ${ms.toFixed(0)} ms after the kill`);
		await waitRespawned(victims);
		await assertServes(8);
	});
});
