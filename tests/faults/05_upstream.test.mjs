// 05_upstream.test.mjs: issue 9, the model upstream killed (SIGKILL) with
// streams in flight. Each client gets exactly one error event and a clean
// close; each partial reply is stored as interrupted with what the client
// saw; while the upstream is down new chat requests get 502 JSON (after the
// retries), /readyz turns 503 and nothing hangs; once it is back, chat works
// again without touching chatd.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
	HTTP_URL,
	SESSIONS,
	checkSeed000,
	chatdWorkerPids,
	closeDb,
	createSession,
	isErrorBody,
	nonce,
	openStream,
	pidFromFile,
	procAlive,
	rawRequest,
	registerAndLogin,
	sleep,
	startUpstream,
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
	user = await registerAndLogin('up');
});
after(async () => {
	if (!procAlive(pidFromFile('upstream'))) await startUpstream();
	await waitHealthy().catch(() => {});
	await closeDb();
});

describe('the upstream killed mid-stream', () => {
	test('every client gets one error event and a clean close; each partial reply is stored as interrupted, as streamed', async () => {
		const streams = [];
		for (const route of ['seed000', 'seed000', 'seed000', 'seed002', 'seed003']) {
			const content = `${nonce('upk')} [[tokens=100]] [[delay=100]]`;
			if (route === 'seed000') {
				const session = await createSession(user.token);
				const s = streamInBackground((signal) => openStream(user.token, session.id, content, { signal }));
				s.route = route;
				streams.push(s);
			} else {
				const path = route === 'seed002' ? '/stream/chat' : '/api/v2/ai/chat/stream';
				const s = streamInBackground((signal) =>
					fetch(`${HTTP_URL}${path}`, {
						method: 'POST',
						headers: { 'content-type': 'application/json', authorization: `Bearer ${user.token}` },
						body: JSON.stringify({ message: content }),
						signal,
					}),
				);
				s.route = route;
				streams.push(s);
			}
		}
		for (const s of streams) assert.ok(await withTimeout(s.started, 10000, `${s.route} to start`), `${s.route} started`);
		await sleep(1000);
		const workers = chatdWorkerPids();
		const upstream = pidFromFile('upstream');
		process.kill(upstream, 'SIGKILL');
		const t0 = performance.now();

		const results = await withTimeout(Promise.all(streams.map((s) => s.done)), 15000, 'the streams to end');
		const ms = performance.now() - t0;
		assert.ok(ms < 5000, `every stream ended within ${ms.toFixed(0)} ms of the kill`);
		for (const [i, s] of streams.entries()) {
			const res = results[i];
			assert.equal(res.error, null, `${s.route}: a clean close, not a cut (${res.error})`);
			if (s.route === 'seed000') {
				const parsed = checkSeed000(res.events);
				assert.equal(parsed.error?.code, 'upstream_dropped', JSON.stringify(parsed.end));
				assert.equal(parsed.error?.status, 'interrupted');
				assert.ok(parsed.deltas.length >= 5, 'the client got the deltas before the kill');
				const row = await waitReplyEnd(parsed.replyId);
				assert.equal(row.status, 'interrupted');
				assert.equal(row.error, 'upstream_dropped');
				assert.equal(row.content, parsed.text, 'the stored partial reply is what the client saw');
			} else if (s.route === 'seed002') {
				assert.equal(res.events.filter((e) => e.event === 'error').length, 1, 'one event: error');
				assert.equal(res.events.at(-1).event, 'error', 'the error is the last event');
				assert.equal(res.events.filter((e) => e.event === 'end').length, 0, 'no end event');
			} else {
				const errors = res.events.filter((e) => e.json?.error !== undefined);
				assert.equal(errors.length, 1, 'one data: {"error"} event');
				assert.equal(res.events.at(-1), errors[0], 'the error is the last event');
				assert.ok(!res.events.some((e) => e.json?.done), 'no done event');
			}
		}
		assert.deepEqual(chatdWorkerPids(), workers, 'chatd did not lose a worker');
	});

	test('while it is down: 502 JSON after the retries, /readyz 503, nothing hangs', async () => {
		assert.ok(!procAlive(pidFromFile('upstream')), 'the upstream is down (previous test)');
		const session = await createSession(user.token);
		for (const [name, path, body] of [
			['seed 000', `${SESSIONS}/${session.id}/stream`, { content: 'down' }],
			['seed 002', '/stream/chat', { message: 'down' }],
			['seed 003', '/api/v2/ai/chat/stream', { message: 'down' }],
			['seed 004', '/api/chat', { message: 'down' }],
			['seed 001', '/openai/chatCompletion', { messages: [{ role: 'user', content: 'down' }] }],
			['v1 streamed', '/v1/chat/completions', { model: 'gpt-4o-mini', stream: true, messages: [{ role: 'user', content: 'down' }] }],
			['voice', '/api/session', undefined],
		]) {
			const t0 = performance.now();
			const r = await rawRequest('POST', `${HTTP_URL}${path}`, { token: user.token, body, timeout: 20000 });
			const ms = performance.now() - t0;
			assert.equal(r.status, 502, `${name}: ${r.status} ${r.text.slice(0, 200)}`);
			assert.ok(isErrorBody(r.json), `${name}: ${r.text}`);
			assert.ok(ms < 10000, `${name} answered in ${ms.toFixed(0)} ms`);
		}
		await waitFor(async () => (await rawRequest('GET', `${HTTP_URL}/readyz`)).json?.upstream === false, {
			timeout: 6000,
			what: '/readyz to report the upstream down',
		});
		const ready = await rawRequest('GET', `${HTTP_URL}/readyz`);
		assert.equal(ready.status, 503);
		assert.equal((await rawRequest('GET', `${HTTP_URL}/healthz`)).status, 200);
		// The user's messages were kept, with an error reply each.
		const msgs = (await rawRequest('GET', `${HTTP_URL}${SESSIONS}/${session.id}`, { token: user.token })).json.messages;
		assert.equal(msgs[0].content, 'down');
	});

	test('back: chat works again on every worker, chatd untouched', async () => {
		await startUpstream();
		await waitHealthy();
		const session = await createSession(user.token);
		for (let i = 0; i < 8; i++) {
			const r = await streamTurn(user.token, session.id, `back ${i} [[tokens=4]]`);
			assert.ok(r.done, JSON.stringify(r.data.at(-1)));
			assert.equal(r.text, tokensText(4));
		}
	});
});
