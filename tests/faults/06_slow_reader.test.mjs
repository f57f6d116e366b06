// 06_slow_reader.test.mjs: issue 9, a client that reads very slowly. A
// stream of ~20 MB (100,000 chunks of /v1/chat/completions) goes to a client
// that reads nothing for longer than the upstream idle timeout: the kernel
// and nginx buffers fill, chatd pauses the upstream transfer (backpressure)
// instead of piling the reply up in memory, the worker's memory stays flat, a normal
// stream on the same worker keeps its pace, and when the client reads again
// it gets every chunk, in order, and [DONE].
import assert from 'node:assert/strict';
import net from 'node:net';
import { after, before, describe, test } from 'node:test';

import {
	CHATD,
	HTTP_URL,
	chatdWorkerPids,
	closeDb,
	continueWorkers,
	createSession,
	fakeStats,
	nonce,
	onlyWorker,
	pidFromFile,
	poolStatus,
	procChildren,
	procRssKiB,
	registerAndLogin,
	sleep,
	streamTurn,
	tokensText,
	waitFor,
	waitHealthy,
	withTimeout,
} from '../e2e/lib.mjs';

const N = 100000; // chunks of the slow stream, ~220 bytes each
const PAUSE_MS = Math.max(6000, (CHATD.idleTimeout + 2) * 1000); // longer than the idle timeout
const MAX_GROWTH_KIB = 16 * 1024; // far below the ~20 MB the stream carries

let user;
before(async () => {
	await waitHealthy();
	user = await registerAndLogin('slow');
});
after(async () => {
	continueWorkers();
	await closeDb();
});

/**
 * A raw HTTP/1.0 request (so the body comes unchunked, ended by the close)
 * whose response is not read until resume() is called.
 */
function pausedRequest(path, body, token) {
	const u = new URL(HTTP_URL);
	const payload = JSON.stringify(body);
	const sock = net.createConnection({ host: u.hostname, port: Number(u.port) });
	const chunks = [];
	let bytes = 0;
	sock.pause();
	sock.on('data', (d) => {
		chunks.push(d);
		bytes += d.length;
	});
	const closed = new Promise((resolve, reject) => {
		sock.on('close', resolve);
		sock.on('error', reject);
	});
	sock.write(
		`POST ${path} HTTP/1.0\r\nHost: ${u.host}\r\nAuthorization: Bearer ${token}\r\n` +
			`Content-Type: application/json\r\nContent-Length: ${Buffer.byteLength(payload)}\r\n\r\n${payload}`,
	);
	return {
		bytes: () => bytes,
		resume: () => sock.resume(),
		destroy: () => sock.destroy(),
		text: async () => {
			await closed;
			return Buffer.concat(chunks).toString('utf8');
		},
	};
}

describe('a client that reads very slowly', () => {
	test(`a ${N}-chunk stream to a client that reads nothing for ${PAUSE_MS / 1000} s: bounded memory, backpressure, no effect on a neighbour, nothing lost`, async (t) => {
		const worker = chatdWorkerPids()[0];
		const nginxWorkers = procChildren(pidFromFile('nginx'));
		const rss0 = procRssKiB(worker);
		const nginx0 = new Map(nginxWorkers.map((p) => [p, procRssKiB(p)]));
		const stats0 = await fakeStats();

		const slow = await onlyWorker(worker, async () => {
			const req = pausedRequest(
				'/v1/chat/completions',
				{ model: 'gpt-4o-mini', stream: true, max_tokens: N, messages: [{ role: 'user', content: `${nonce('slow')} [[tokens=${N}]] [[delay=0]]` }] },
				user.token,
			);
			await waitFor(async () => (await fakeStats()).chat_requests > stats0.chat_requests, { what: 'the slow request upstream' });
			return req;
		});
		const tStart = performance.now();

		// A normal stream on the same worker, while the slow one is stuck.
		await sleep(1500);
		const session = await createSession(user.token);
		const normal = await onlyWorker(worker, () => streamTurn(user.token, session.id, `${nonce('neighbour')} [[tokens=40]] [[delay=50]]`));
		assert.ok(normal.done, 'the neighbour completed');
		assert.equal(normal.text, tokensText(40));
		const times = normal.events.map((e) => e.t);
		const gaps = times.slice(1).map((x, i) => x - times[i]);
		const maxGap = Math.max(...gaps);
		const total = times.at(-1) - times[0];
		t.diagnostic(`neighbour: 40 deltas in ${total.toFixed(0)} ms, largest gap ${maxGap.toFixed(0)} ms (50 ms pace)`);
		assert.ok(maxGap < 500, `the neighbour's largest gap between events: ${maxGap.toFixed(0)} ms`);
		assert.ok(total < 4000, `the neighbour took ${total.toFixed(0)} ms for a 2 s reply`);

		// Keep not reading, past the idle timeout, and watch the memory.
		let peak = rss0;
		while (performance.now() - tStart < PAUSE_MS) {
			peak = Math.max(peak, procRssKiB(worker));
			await sleep(200);
		}
		t.diagnostic(`worker ${worker}: RSS ${rss0} KiB before, peak ${peak} KiB while the client did not read`);
		assert.ok(peak - rss0 < MAX_GROWTH_KIB, `the worker grew by ${peak - rss0} KiB`);
		for (const [p, before] of nginx0) {
			const now = procRssKiB(p);
			if (now !== null) assert.ok(now - before < MAX_GROWTH_KIB, `nginx worker ${p} grew by ${now - before} KiB`);
		}
		assert.equal(slow.bytes(), 0, 'the client has read nothing');
		// Still in progress (open on the worker's loop) with flat memory:
		// chatd paused its upstream transfer, it is not holding the reply
		// in its heap.
		const open = (await poolStatus()).processes.find((p) => p.pid === worker)?.streams;
		assert.ok(open >= 1, `the slow stream is still open on worker ${worker} (streams ${open})`);

		// Now read it all.
		slow.resume();
		const text = await withTimeout(slow.text(), 60000, 'the slow stream to end');
		const head = text.slice(0, text.indexOf('\r\n\r\n'));
		assert.match(head, /^HTTP\/1\.[01] 200/);
		assert.doesNotMatch(head, /transfer-encoding/i);
		const datas = text.split('\n').filter((l) => l.startsWith('data: '));
		assert.equal(datas.at(-1), 'data: [DONE]', 'the stream ends with [DONE]');
		let content = '';
		let chunks = 0;
		for (const d of datas.slice(0, -1)) {
			const j = JSON.parse(d.slice(6));
			const c = j.choices?.[0]?.delta?.content;
			if (typeof c === 'string' && c.length > 0) {
				content += c;
				chunks += 1;
			}
			assert.equal(j.choices?.[0]?.finish_reason === 'length' || j.choices?.[0]?.finish_reason === 'stop' || j.choices?.[0]?.finish_reason == null, true);
		}
		assert.equal(chunks, N, 'every chunk arrived');
		assert.equal(content, tokensText(N), 'in order, none lost or repeated');
		t.diagnostic(`${(text.length / 1e6).toFixed(1)} MB delivered after the pause`);
	});
});
