// load.test.mjs: 500 socket.io-client instances (WebSocket transport,
// through nginx) stream a reply each at the same time; every one
// completes, in one gateway process driving all the upstream transfers
// from its event loop. Then every session and stream is gone again.
//
// CHAT_GATEWAY_LOAD_CLIENTS changes the count (default 500).
import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { BASE_URL, collect001, connect, freshIp, gatewayStatus, until } from './lib.mjs';

const CLIENTS = Number(process.env.CHAT_GATEWAY_LOAD_CLIENTS ?? 500);
const TOKENS = 20;
const EXPECT = Array.from({ length: TOKENS }, (_, i) => `t${i}`).join(' ');

describe(`${CLIENTS} concurrent clients`, () => {
	test('all stream at once and all complete', { timeout: 60000 }, async () => {
		const before = await gatewayStatus();
		const t0 = Date.now();
		// Connect in waves: 500 handshakes at the very same instant would
		// measure the accept queue, not the gateway.
		const sockets = [];
		for (let i = 0; i < CLIENTS; i += 100) {
			const wave = [];
			for (let j = i; j < Math.min(CLIENTS, i + 100); j++)
				wave.push(connect({ url: BASE_URL, transports: ['websocket'], ip: freshIp(), timeout: 20000 }));
			sockets.push(...(await Promise.all(wave)));
		}
		const connected = Date.now() - t0;
		try {
			const t1 = Date.now();
			const results = sockets.map((s) => collect001(s, { timeout: 30000 }));
			for (const s of sockets)
				s.emit('stream-chat', { messages: [{ role: 'user', content: `load [[tokens=${TOKENS}]] [[delay=20]]` }] });
			await until(async () => (await gatewayStatus()).streams >= Math.min(CLIENTS, 50), {
				timeout: 10000, what: 'streams to run concurrently',
			}).catch(() => {});
			const peak = (await gatewayStatus()).streams;
			const all = await Promise.all(results);
			const streamed = Date.now() - t1;
			let ok = 0;
			for (const r of all) {
				assert.equal(r.error, undefined, JSON.stringify(r.error));
				assert.equal(r.complete?.fullResponse, EXPECT);
				assert.equal(r.chunks.filter((c) => !c.isComplete).length, TOKENS);
				ok += 1;
			}
			assert.equal(ok, CLIENTS);
			console.log(`# ${CLIENTS} clients: connected in ${connected} ms, all streams done in ${streamed} ms, ` +
				`${peak} streams seen running at once`);
			assert.ok(peak > 1, 'streams ran concurrently');
		} finally {
			for (const s of sockets) s.close();
		}
		await until(async () => {
			const st = await gatewayStatus();
			return st.sessions <= before.sessions && st.streams === 0;
		}, { timeout: 15000, what: 'sessions and streams to be freed' });
	});
});
