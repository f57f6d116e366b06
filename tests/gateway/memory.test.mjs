// memory.test.mjs: issue 14 part 2, the gateway's memory is bounded by its
// configuration. The attack of the issue, repeated: 60 anonymous polling
// sessions join one room, never poll, and post pongs to pings they never
// got; one anonymous stream-chat into that room has a long reply, each of
// whose stream-chunk events carries the whole reply so far. Before the
// fix this grew a gateway from 12 MiB to 622 MiB. Now: the gateway's RSS
// stays under its queue cap plus a margin, the idle sessions are closed
// (dropped as slow consumers, or by the ping timeout their pongs cannot
// defer), and a well-behaved client in another room streams to the end.
// Also: the sessions-per-address cap refuses the handshake with 429.
//
// The gateway is one of our own (startGateway) with small caps and short
// heartbeats, so the test takes seconds and leaves the instance alone.
import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { after, before, describe, test } from 'node:test';

import { collect001, connect, freshIp, sleep, startGateway, until } from './lib.mjs';

const QUEUE_TOTAL = 8 << 20;          // gateway_queue_total of the test gateway
const SESSION_QUEUE = 1 << 20;        // gateway_session_queue (the default)
const PER_ADDRESS = 16;               // gateway_sessions_per_address
const PING_INTERVAL_MS = 4000;
const PING_TIMEOUT_MS = 3000;
const MARGIN = 16 << 20;              // the process's own growth: encodings, malloc slack
const IDLE = 60;

let gw;

before(async () => {
	gw = await startGateway({
		CHAT_GATEWAY_QUEUE_TOTAL: String(QUEUE_TOTAL),
		CHAT_GATEWAY_SESSION_QUEUE: String(SESSION_QUEUE),
		CHAT_GATEWAY_SESSIONS_PER_ADDRESS: String(PER_ADDRESS),
		CHAT_GATEWAY_PING_INTERVAL_MS: String(PING_INTERVAL_MS),
		CHAT_GATEWAY_PING_TIMEOUT_MS: String(PING_TIMEOUT_MS),
		CHAT_RATELIMIT_CHAT_ANON: '1000',
		CHAT_LOG_LEVEL: 'warn',
	});
});

after(async () => {
	if (gw) await gw.stop();
});

/** Resident memory of pid in bytes (VmRSS). */
function rss(pid) {
	const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
	return Number(m[1]) * 1024;
}

const mib = (n) => `${(n / 1048576).toFixed(1)} MiB`;

/** A raw Engine.IO polling request to the test gateway as client ip. */
async function poll(method, ip, { sid, body } = {}) {
	const q = `EIO=4&transport=polling&t=${Date.now().toString(36)}${sid ? `&sid=${sid}` : ''}`;
	const r = await fetch(`${gw.url}/socket.io/?${q}`, {
		method,
		headers: { 'x-forwarded-for': ip, ...(body !== undefined ? { 'content-type': 'text/plain;charset=UTF-8' } : {}) },
		body,
		signal: AbortSignal.timeout(5000),
	});
	return { status: r.status, text: await r.text() };
}

/** Opens a polling session, CONNECTs and joins room; never polls. */
async function idleSession(ip, room) {
	const h = await poll('GET', ip);
	assert.equal(h.status, 200, h.text);
	const { sid } = JSON.parse(h.text.slice(1));
	assert.equal((await poll('POST', ip, { sid, body: '40' })).text, 'ok');
	const join = `42${JSON.stringify(['join-room', { roomName: room }])}`;
	assert.equal((await poll('POST', ip, { sid, body: join })).text, 'ok');
	return { sid, ip, open: true };
}

async function metric(name) {
	const text = await (await fetch(`${gw.url}/gateway/metrics`)).text();
	const m = new RegExp(`^${name}\\{[^}]*\\} (\\d+)`, 'm').exec(text);
	return m ? Number(m[1]) : undefined;
}

describe('gateway memory bounded by configuration', () => {
	test('pongs to pings never delivered do not keep a session alive', async () => {
		const ip = freshIp();
		const idle = [];
		for (let i = 0; i < 3; i++) idle.push(await idleSession(ip, `quiet-${i}`));
		// A client that reads its pings lives on meanwhile.
		const good = await connect({ url: gw.url, ip: freshIp() });
		const t0 = Date.now();
		try {
			while (idle.some((s) => s.open)) {
				for (const s of idle.filter((x) => x.open)) {
					const r = await poll('POST', s.ip, { sid: s.sid, body: '3' });
					if (r.status === 400) {
						assert.equal(JSON.parse(r.text).code, 1, r.text);
						s.open = false;
					} else assert.equal(r.text, 'ok');
				}
				assert.ok(Date.now() - t0 < PING_INTERVAL_MS + PING_TIMEOUT_MS + 3000,
					'the idle sessions outlived pingInterval + pingTimeout');
				await sleep(250);
			}
			assert.ok(Date.now() - t0 >= PING_INTERVAL_MS, 'not closed before their first ping');
			assert.ok(good.connected, 'the reading client is still connected');
		} finally {
			good.close();
		}
	});

	test('sessions per address: the next handshake is refused with 429', async () => {
		const ip = freshIp();
		const sids = [];
		for (let i = 0; i < PER_ADDRESS; i++) {
			const h = await poll('GET', ip);
			assert.equal(h.status, 200, `session ${i}: ${h.text}`);
			sids.push(JSON.parse(h.text.slice(1)).sid);
		}
		const refused = await poll('GET', ip);
		assert.equal(refused.status, 429);
		assert.deepEqual(JSON.parse(refused.text), { code: 3, message: 'Too many sessions from this address' });
		// socket.io-client gets a connect_error on both transports.
		for (const transports of [['polling', 'websocket'], ['websocket']])
			await assert.rejects(connect({ url: gw.url, ip, transports, timeout: 5000 }),
				`${transports.join('+')} connect_error`);
		// Another address is not concerned.
		const other = await connect({ url: gw.url, ip: freshIp() });
		other.close();
		// Closing one makes room for one.
		assert.equal((await poll('POST', ip, { sid: sids[0], body: '1' })).text, 'ok');
		assert.equal((await poll('GET', ip)).status, 200);
	});

	test('a member that is behind gets merged stream-chunks that still add up', async () => {
		const ip = freshIp();
		const room = `behind-${Date.now().toString(36)}`;
		const s = await idleSession(ip, room);
		const chat = `42${JSON.stringify(['stream-chat', {
			roomName: room,
			messages: [{ role: 'user', content: 'behind [[tokens=1500]] [[delay=1]]' }],
		}])}`;
		assert.equal((await poll('POST', ip, { sid: s.sid, body: chat })).text, 'ok');
		// It reads nothing until the reply is over (well before its ping
		// times out), then everything, answering its ping.
		const events = [];
		const deadline = Date.now() + PING_INTERVAL_MS - 500;
		let done = false;
		await sleep(1500);
		while (!done) {
			assert.ok(Date.now() < deadline + PING_TIMEOUT_MS, 'the reply never ended');
			const r = await poll('GET', ip, { sid: s.sid });
			assert.equal(r.status, 200, r.text);
			for (const pkt of r.text.split('')) {
				if (pkt === '2') assert.equal((await poll('POST', ip, { sid: s.sid, body: '3' })).text, 'ok');
				if (!pkt.startsWith('42')) continue;
				const [name, data] = JSON.parse(pkt.slice(2));
				if (name.startsWith('stream-')) events.push([name, data]);
				if (name === 'stream-complete' || name === 'stream-error') done = true;
			}
		}
		assert.equal(events[0][0], 'stream-start');
		assert.equal(events.at(-1)[0], 'stream-complete', JSON.stringify(events.at(-1)).slice(0, 200));
		const chunks = events.filter(([n]) => n === 'stream-chunk').map(([, d]) => d);
		const parts = chunks.filter((c) => !c.isComplete);
		let full = '';
		for (const c of parts) {
			assert.ok(c.content.length > 0, 'no empty deltas');
			full += c.content;
			assert.equal(c.fullResponse, full, 'contents add up to fullResponse');
		}
		assert.equal(full, Array.from({ length: 1500 }, (_, i) => `t${i}`).join(' '));
		assert.equal(chunks.at(-1).isComplete, true);
		assert.equal(chunks.at(-1).content, '');
		assert.ok(parts.length < 1500, `merged: ${parts.length} stream-chunks for 1500 deltas`);
		console.log(`# a member behind got ${parts.length} stream-chunks for 1500 deltas`);
		await poll('POST', ip, { sid: s.sid, body: '1' });
	});

	test('the attack of issue 14: idle pollers posting pongs and a long room reply', async () => {
		const room = `attack-${Date.now().toString(36)}`;
		// 60 idle sessions from four addresses (the per-address cap is 16).
		const addrs = [freshIp(), freshIp(), freshIp(), freshIp()];
		const idle = [];
		for (let i = 0; i < IDLE; i++) idle.push(await idleSession(addrs[i % addrs.length], room));
		const baseline = rss(gw.proc.pid);

		// They post pongs every 300 ms and never read their pings.
		let pongs = true;
		const ponger = (async () => {
			while (pongs) {
				await Promise.all(idle.filter((s) => s.open).map(async (s) => {
					const r = await poll('POST', s.ip, { sid: s.sid, body: '3' }).catch(() => undefined);
					if (r?.status === 400 && JSON.parse(r.text).code === 1) s.open = false;
				}));
				await sleep(300);
			}
		})();

		// RSS, sampled every 50 ms.
		let peak = baseline;
		let sampling = true;
		const sampler = (async () => {
			while (sampling) {
				peak = Math.max(peak, rss(gw.proc.pid));
				await sleep(50);
			}
		})();

		// A well-behaved client in another room.
		const good = await connect({ url: gw.url, ip: freshIp() });
		const goodRoom = `calm-${Date.now().toString(36)}`;
		await good.timeout(5000).emitWithAck('join-room', { roomName: goodRoom });
		const goodDone = collect001(good, { timeout: 60000 });

		// The long reply into the attackers' room, from one of them.
		const chat = `42${JSON.stringify(['stream-chat', {
			roomName: room,
			messages: [{ role: 'user', content: 'long [[tokens=4000]] [[delay=1]]' }],
		}])}`;
		assert.equal((await poll('POST', idle[0].ip, { sid: idle[0].sid, body: chat })).text, 'ok');
		good.emit('stream-chat', { roomName: goodRoom, messages: [{ role: 'user', content: 'calm [[tokens=300]] [[delay=10]]' }] });

		const s = await goodDone;
		try {
			assert.equal(s.error, undefined, `stream-error: ${JSON.stringify(s.error)}`);
			assert.ok(s.complete, 'the well-behaved client got stream-complete');
			const parts = s.chunks.filter((c) => !c.isComplete);
			let full = '';
			for (const c of parts) {
				full += c.content;
				assert.equal(c.fullResponse, full, 'contents add up to fullResponse');
			}
			assert.equal(full, Array.from({ length: 300 }, (_, i) => `t${i}`).join(' '));
			assert.equal(s.complete.fullResponse, full);
			assert.equal(s.chunks.at(-1).isComplete, true);
			assert.ok(good.connected, 'the well-behaved client is still connected');

			// Every idle session ends: dropped, or timed out in spite of its pongs.
			await until(() => idle.every((x) => !x.open), {
				timeout: PING_INTERVAL_MS + PING_TIMEOUT_MS + 10000,
				interval: 200,
				what: 'every idle session to be closed',
			});
		} finally {
			pongs = false;
			await ponger;
			sampling = false;
			await sampler;
			good.close();
		}
		const dropped = await metric('chat_gateway_sessions_dropped_total');
		const cap = baseline + QUEUE_TOTAL + MARGIN;
		const count = (re) => gw.log().split('\n').filter((l) => re.test(l)).length;
		console.log(`# gateway RSS: ${mib(baseline)} before the attack, ${mib(peak)} at its peak ` +
			`(cap ${mib(QUEUE_TOTAL)} of queues + ${mib(MARGIN)} margin); ${dropped} sessions dropped as slow ` +
			`(${count(/gateway send queues over/)} for the process's bound, ` +
			`${count(/send queue over \d+ bytes: dropping/)} for their own)`);
		assert.ok(peak < cap, `RSS peaked at ${mib(peak)}, over ${mib(cap)}`);
		assert.ok(dropped > 0, 'the queue caps dropped slow consumers');
		assert.equal(await metric('chat_gateway_queued_bytes') < QUEUE_TOTAL, true);
		await until(async () => (await metric('chat_gateway_sessions')) === 0, {
			timeout: 15000,
			what: 'every session to be gone',
		});
	});
});
