// 02_reload.test.mjs: issue 9, graceful reloads with clients mid-stream.
// - chatd SIGHUP: a new generation of workers starts, the old one finishes
//   its streams and exits; no in-flight stream is dropped, and requests sent
//   during the reload are all served.
// - nginx reload (SIGHUP): in-flight streams over HTTP/1.1, HTTPS and HTTP/2
//   finish on the old nginx workers; a stream that outlives nginx's
//   worker_shutdown_timeout (10 s) is cut, and the client resumes it with
//   Last-Event-ID and gets the rest: the reply arrives whole.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
	BASE_URL,
	CA_CERT,
	CHATD,
	HTTP_URL,
	LOG_DIR,
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
	mapConcurrent,
	nonce,
	onlyWorker,
	openStream,
	pidFromFile,
	poolStatus,
	procAlive,
	procChildren,
	rawRequest,
	readAll,
	registerAndLogin,
	replyWorkerPid,
	sleep,
	streamInBackground,
	tokensText,
	waitFor,
	waitHealthy,
	waitReplyEnd,
	withTimeout,
} from '../e2e/lib.mjs';

let user;
before(async () => {
	await waitHealthy();
	user = await registerAndLogin('rl');
});
after(async () => {
	continueWorkers();
	await waitHealthy().catch(() => {});
	await closeDb();
});

async function startStream(content, opts = {}) {
	const session = await createSession(user.token);
	const s = streamInBackground((signal) => openStream(user.token, session.id, content, { signal, ...opts }));
	const first = await withTimeout(s.started, 10000, 'the start event');
	assert.equal(first?.json?.type, 'start', `the stream started: ${JSON.stringify(first)}`);
	s.session = session;
	s.replyId = first.json.message_id;
	return s;
}

/**
 * Short requests and whole streams, concurrently, for ms. Each request has a
 * connection of its own: an idle keep-alive connection that a reloading
 * nginx closes under a client is the client's to retry, not a failure here.
 */
async function trafficDuring(ms) {
	const until = Date.now() + ms;
	const results = [];
	await mapConcurrent(Array.from({ length: 6 }, (_, i) => i), 6, async (lane) => {
		for (let i = 0; Date.now() < until; i++) {
			if (lane < 4) {
				const r = await rawRequest('GET', `${HTTP_URL}${i % 2 ? '/api/auth/me' : SESSIONS}`, { token: user.token }).catch((e) => ({ status: 0, text: e.message }));
				results.push({ what: `GET lane ${lane}`, ok: r.status === 200, detail: `${r.status} ${r.text.slice(0, 120)}` });
			} else {
				const own = await rawRequest('POST', `${BASE_URL}${SESSIONS}`, { token: user.token, body: {} });
				const r = await rawRequest('POST', `${BASE_URL}${SESSIONS}/${own.json?.id}/stream`, {
					token: user.token,
					body: { content: `during ${lane}/${i} [[tokens=5]] [[delay=20]]` },
				}).catch((e) => ({ status: 0, text: e.message }));
				const { events } = r.status === 200 ? await readAll(new Response(r.text)) : { events: [] };
				const end = events.at(-1)?.json;
				results.push({
					what: `stream lane ${lane}`,
					ok: end?.type === 'done' && end.full_content === tokensText(5),
					detail: `${r.status} ${r.status === 200 ? JSON.stringify(end) : r.text.slice(0, 120)}`,
				});
			}
		}
	});
	return results;
}

describe('chatd SIGHUP (graceful reload) with streams in flight', () => {
	let reloaded; // {generation}: the master's generation number after the reload
	test('every in-flight stream completes whole, requests during the reload are served, the old generation drains and exits', async () => {
		const TOKENS = 30;
		const before = await poolStatus();
		const oldWorkers = chatdWorkerPids();
		const streams = [];
		for (const w of oldWorkers)
			for (let i = 0; i < 2; i++)
				streams.push(await onlyWorker(w, () => startStream(`${nonce('hup')} [[tokens=${TOKENS}]] [[delay=100]]`)));
		await sleep(500);
		const master = chatdMasterPid();
		process.kill(master, 'SIGHUP');
		const traffic = await trafficDuring(3000);

		const results = await withTimeout(Promise.all(streams.map((s) => s.done)), 20000, 'the in-flight streams');
		for (const [i, s] of streams.entries()) {
			const parsed = checkSeed000(results[i].events);
			assert.ok(parsed.done, `in-flight stream ${i}: ${JSON.stringify(parsed.end)} ${results[i].error ?? ''}`);
			assert.equal(parsed.text, tokensText(TOKENS), `in-flight stream ${i} is whole`);
			const row = await waitReplyEnd(s.replyId);
			assert.equal(row.status, 'complete');
			assert.equal(row.content, tokensText(TOKENS));
		}
		const failed = traffic.filter((r) => !r.ok);
		assert.deepEqual(failed, [], `${failed.length} of ${traffic.length} requests during the reload failed`);
		assert.ok(traffic.length >= 20, `${traffic.length} requests during the reload`);

		// The old generation exits once its streams are done; the new one serves.
		await waitFor(() => oldWorkers.every((p) => !procAlive(p)), { timeout: 15000, what: 'the old workers to exit' });
		await waitHealthy();
		assert.equal(chatdMasterPid(), master, 'the same master');
		const after = await poolStatus();
		assert.equal(after.workers, CHATD.workers);
		assert.deepEqual(
			after.processes.map((p) => p.pid).sort((x, y) => x - y),
			chatdWorkerPids(),
			'/status lists the new workers',
		);
		assert.equal(after.respawns, before.respawns, 'a reload is not a crash');
		const lines = chatdLog((r) => r.pid === String(master) && /^reloading: starting generation \d+/.test(r.msg ?? ''));
		assert.ok(lines.length > 0, 'the master logged the reload');
		reloaded = { generation: Number(/generation (\d+)/.exec(lines.at(-1).msg)[1]) };
		for (const p of chatdWorkerPids()) assert.ok(!oldWorkers.includes(p));
	});

	// FINDING (reported; left failing on purpose until chatd is fixed): every
	// worker claims its /status slot with generation 0 (worker.c passes a
	// constant to metrics_worker_claim), so the status page cannot tell the
	// draining generation from the new one after a reload.
	test('/status shows the workers of the new generation as such', async () => {
		assert.ok(reloaded, 'needs the previous test');
		const st = await poolStatus();
		for (const p of st.processes)
			assert.equal(p.generation, reloaded.generation, `worker ${p.pid}: the master started generation ${reloaded.generation}`);
	});
});

/** The nginx master's workers. */
const nginxWorkers = () => procChildren(pidFromFile('nginx'));

/** A seed-000 stream through curl --http2 -N; resolves {code, stdout, stderr}. */
function curlHttp2Stream(sessionId, content) {
	return new Promise((resolve, reject) => {
		const child = spawn('curl', [
			'--http2', '-sS', '-N', '--cacert', CA_CERT, '-X', 'POST',
			`${BASE_URL}${SESSIONS}/${sessionId}/stream`,
			'-H', `Authorization: Bearer ${user.token}`, '-H', 'Content-Type: application/json',
			'--data-binary', JSON.stringify({ content }), '-w', '\n%{http_version} %{http_code}',
		]);
		let stdout = '';
		let stderr = '';
		child.stdout.on('data', (d) => (stdout += d));
		child.stderr.on('data', (d) => (stderr += d));
		child.on('error', reject);
		child.on('close', (code) => resolve({ code, stdout, stderr }));
	});
}

describe('nginx reload with streams in flight', () => {
	test('streams over HTTP/1.1, HTTPS and HTTP/2 finish on the old nginx workers; new requests go to the new ones', async () => {
		const TOKENS = 30;
		const nginxLogStart = readFileSync(path.join(LOG_DIR, 'nginx-error.log'), 'utf8').length;
		const oldNginx = nginxWorkers();
		assert.ok(oldNginx.length > 0, 'nginx has workers');
		const streams = [
			await startStream(`${nonce('ngx')} [[tokens=${TOKENS}]] [[delay=100]]`),
			await startStream(`${nonce('ngx')} [[tokens=${TOKENS}]] [[delay=100]]`, { base: HTTP_URL }),
		];
		const h2Session = await createSession(user.token);
		const h2 = curlHttp2Stream(h2Session.id, `${nonce('ngx')} [[tokens=${TOKENS}]] [[delay=100]]`);
		await sleep(800);
		process.kill(pidFromFile('nginx'), 'SIGHUP');
		await waitFor(() => nginxWorkers().some((p) => !oldNginx.includes(p)), { timeout: 10000, what: 'new nginx workers' });
		const traffic = await trafficDuring(1500);

		for (const s of streams) {
			const res = await withTimeout(s.done, 20000, 'an in-flight stream');
			const parsed = checkSeed000(res.events);
			assert.ok(parsed.done, `${JSON.stringify(parsed.end)} ${res.error ?? ''}`);
			assert.equal(parsed.text, tokensText(TOKENS));
		}
		const c = await withTimeout(h2, 20000, 'the HTTP/2 stream');
		assert.equal(c.code, 0, c.stderr);
		assert.match(c.stdout, /\n2 200$/, 'HTTP/2, 200');
		const events = c.stdout
			.split(/\n\n/)
			.map((b) => b.split('\n').find((l) => l.startsWith('data: ')))
			.filter(Boolean)
			.map((l) => JSON.parse(l.slice(6)));
		assert.equal(events.at(-1).type, 'done', 'the HTTP/2 stream ends with done');
		assert.equal(events.at(-1).full_content, tokensText(TOKENS));
		const failed = traffic.filter((r) => !r.ok);
		assert.deepEqual(failed, [], `${failed.length} of ${traffic.length} requests during the nginx reload failed`);
		await waitFor(() => oldNginx.every((p) => !procAlive(p)), { timeout: 15000, what: 'the old nginx workers to exit' });
		// Only what this reload logged: the file also holds earlier tests'
		// restarts of chatd (a request in that gap finds no socket).
		const errors = readFileSync(path.join(LOG_DIR, 'nginx-error.log'), 'utf8')
			.slice(nginxLogStart)
			.split('\n')
			.filter((l) => /\[(crit|alert|emerg)\]/.test(l));
		assert.deepEqual(errors, [], 'nginx logged no critical error');
	});

	test('a stream that outlives worker_shutdown_timeout is cut; the client resumes with Last-Event-ID and gets the rest, whole', async (t) => {
		const TOKENS = 140; // 14 s: longer than nginx's worker_shutdown_timeout (10 s)
		const s = await startStream(`${nonce('ngxlong')} [[tokens=${TOKENS}]] [[delay=100]]`);
		await sleep(500);
		process.kill(pidFromFile('nginx'), 'SIGHUP');
		const first = await withTimeout(s.done, 25000, 'the cut stream');
		const a = checkSeed000(first.events, { complete: false });
		let all = a.deltas.slice();
		let end = a.end;
		t.diagnostic(`the first connection carried ${a.deltas.length} of ${TOKENS} deltas${end ? ' and the end' : ', then was cut'}`);
		if (end === undefined) {
			// Cut: resume from the last id seen (a new nginx worker answers).
			const lastId = first.events.at(-1).id;
			const resp = await api('GET', `${SESSIONS}/${s.session.id}/stream`, {
				token: user.token,
				headers: { 'last-event-id': lastId },
				raw: true,
			});
			assert.equal(resp.status, 200, 'the resume is served');
			const rest = await collectSSE(resp);
			const b = checkSeed000(rest.events, { first: Number(lastId.split(':')[1]) + 1 });
			assert.equal(b.replyId, a.replyId);
			all = all.concat(b.deltas);
			end = b.end;
		}
		assert.equal(end?.type, 'done', JSON.stringify(end));
		assert.equal(all.join(''), tokensText(TOKENS), 'the stream and its resume hold the whole reply, once');
		const row = await waitReplyEnd(s.replyId, 20000);
		assert.equal(row.status, 'complete');
		assert.equal(row.content, tokensText(TOKENS));
		await replyWorkerPid(s.replyId); // the row names its worker
		const { rows } = await db().query(`SELECT count(*)::int AS n FROM messages WHERE session_id = $1`, [s.session.id]);
		assert.equal(rows[0].n, 2, 'one user message, one reply: the resume did not start a second generation');
	});
});
