// protocol.test.mjs: Engine.IO 4 / Socket.IO 5 on the wire, without the
// client library: the polling handshake and its errors, CORS, payloads
// joined by the record separator, malformed packets, payload limits, one
// held GET at a time, the upgrade probe, direct WebSocket, and the
// heartbeat: a client that stops answering pings is dropped and its
// session and rooms are freed.
//
// Raw WebSockets use `ws`, the WebSocket library socket.io-client itself
// runs on in Node (pinned through tests/package-lock.json).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import WebSocket from 'ws';

import { BASE_URL, GATEWAY_URL, gatewayStatus, sleep, startGateway, until } from './lib.mjs';

const SEP = '\x1e';
const q = (params) => `/socket.io/?${new URLSearchParams({ EIO: '4', transport: 'polling', ...params })}`;

/** fetch against a gateway; returns {status, headers, text, json}. */
async function req(base, path, { method = 'GET', body, headers = {} } = {}) {
	const r = await fetch(base + path, { method, body, headers: { 'content-type': 'text/plain;charset=UTF-8', ...headers } });
	const text = await r.text();
	let json;
	try {
		json = JSON.parse(text);
	} catch {
		json = undefined;
	}
	return { status: r.status, headers: r.headers, text, json };
}

/** A polling handshake: resolves {sid, open}. */
async function handshake(base = GATEWAY_URL) {
	const r = await req(base, q({ t: 'x' }));
	assert.equal(r.status, 200, r.text);
	assert.equal(r.text[0], '0');
	const open = JSON.parse(r.text.slice(1));
	return { sid: open.sid, open };
}

const post = (base, sid, body) => req(base, q({ sid }), { method: 'POST', body });
const poll = (base, sid) => req(base, q({ sid }));
const packets = (text) => text.split(SEP);

/** A polling session connected to "/": resolves {sid, ioSid}. */
async function connectPolling(base = GATEWAY_URL) {
	const { sid } = await handshake(base);
	assert.equal((await post(base, sid, '40')).text, 'ok');
	const r = await poll(base, sid);
	const ps = packets(r.text);
	assert.match(ps[0], /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
	assert.equal(JSON.parse(ps[0].slice(2)).sid === sid, false, 'Socket.IO sid differs from the Engine.IO sid');
	assert.match(ps[1], /^42\["connected",\{/);
	return { sid, ioSid: JSON.parse(ps[0].slice(2)).sid };
}

/** Opens a raw WebSocket; resolves it with a message queue. */
function openWs(url) {
	return new Promise((resolve, reject) => {
		const ws = new WebSocket(url);
		ws.queue = [];
		ws.waiters = [];
		ws.on('message', (data, isBinary) => {
			const m = isBinary ? data : data.toString('utf8');
			const w = ws.waiters.shift();
			if (w) w(m);
			else ws.queue.push(m);
		});
		ws.closed = new Promise((r) => ws.once('close', (code) => r(code)));
		ws.once('open', () => resolve(ws));
		ws.once('error', reject);
	});
}

/** The next message of a raw WebSocket (or rejects after timeout). */
function next(ws, timeout = 5000) {
	if (ws.queue.length > 0) return Promise.resolve(ws.queue.shift());
	return new Promise((resolve, reject) => {
		const t = setTimeout(() => reject(new Error('no message')), timeout);
		ws.waiters.push((m) => {
			clearTimeout(t);
			resolve(m);
		});
	});
}

/** Messages until one matches re (skipping pings, answered or not). */
async function nextMatching(ws, re, { pong = true, timeout = 5000 } = {}) {
	for (;;) {
		const m = await next(ws, timeout);
		if (m === '2') {
			if (pong) ws.send('3');
			continue;
		}
		if (re.test(m)) return m;
	}
}

const wsUrl = (base, params = {}) =>
	`${base.replace(/^http/, 'ws')}/socket.io/?${new URLSearchParams({ EIO: '4', transport: 'websocket', ...params })}`;

describe('the polling handshake', () => {
	test('open packet with sid, upgrades and the heartbeat settings', async () => {
		const r = await req(GATEWAY_URL, q({ t: 'N1a2b' }));
		assert.equal(r.status, 200);
		assert.equal(r.headers.get('content-type'), 'text/plain; charset=UTF-8');
		assert.equal(r.headers.get('cache-control'), 'no-store');
		assert.equal(r.text[0], '0');
		const open = JSON.parse(r.text.slice(1));
		assert.match(open.sid, /^[A-Za-z0-9_-]{20}$/);
		assert.deepEqual(open.upgrades, ['websocket']);
		assert.equal(open.pingInterval, 25000);
		assert.equal(open.pingTimeout, 20000);
		assert.equal(open.maxPayload, 1000000);
	});

	test('through nginx as well', async () => {
		const r = await req(BASE_URL, q({}));
		assert.equal(r.status, 200);
		assert.equal(r.text[0], '0');
	});

	test('protocol errors: 400 with the Engine.IO error codes', async () => {
		const cases = [
			[q({ EIO: '3' }), 5, 'Unsupported protocol version'],
			['/socket.io/?transport=polling', 5, 'Unsupported protocol version'],
			[q({ transport: 'carrier-pigeon' }), 0, 'Transport unknown'],
			[q({ sid: 'AAAAAAAAAAAAAAAAAAAA' }), 1, 'Session ID unknown'],
			[q({ transport: 'websocket' }), 3, 'Bad request'],
		];
		for (const [path, code, message] of cases) {
			const r = await req(GATEWAY_URL, path);
			assert.equal(r.status, 400, path);
			assert.equal(r.headers.get('content-type'), 'application/json');
			assert.deepEqual(r.json, { code, message }, path);
		}
		const p = await req(GATEWAY_URL, q({}), { method: 'POST', body: '40' });
		assert.equal(p.status, 400);
		assert.deepEqual(p.json, { code: 2, message: 'Bad handshake method' });
		const nf = await req(GATEWAY_URL, '/elsewhere');
		assert.equal(nf.status, 404);
	});

	test('CORS: a foreign Origin is refused, the same host and dev-mode `*` rules apply', async () => {
		const bad = await req(GATEWAY_URL, q({}), { headers: { origin: 'https://evil.example' } });
		assert.equal(bad.status, 403);
		assert.deepEqual(bad.json, { code: 4, message: 'Forbidden' });
		const viaNginx = await req(BASE_URL, q({}), { headers: { origin: 'https://evil.example' } });
		assert.equal(viaNginx.status, 403);
		const own = new URL(BASE_URL);
		const ownOrigin = `${own.protocol}//${own.host}`;
		const same = await req(BASE_URL, q({}), { headers: { origin: ownOrigin } });
		assert.equal(same.status, 200, 'the same host may connect');
		assert.equal(same.headers.get('access-control-allow-origin'), ownOrigin);
		assert.equal(same.headers.get('access-control-allow-credentials'), 'true');
		const pre = await req(BASE_URL, q({}), {
			method: 'OPTIONS',
			headers: { origin: ownOrigin, 'access-control-request-method': 'POST' },
		});
		assert.equal(pre.status, 204);
		assert.match(pre.headers.get('access-control-allow-methods'), /POST/);
		// The WebSocket upgrade checks the Origin too.
		await assert.rejects(
			new Promise((resolve, reject) => {
				const ws = new WebSocket(wsUrl(GATEWAY_URL), { origin: 'https://evil.example' });
				ws.once('open', () => {
					ws.close();
					resolve();
				});
				ws.once('error', reject);
			}),
		);
	});
});

describe('long-polling', () => {
	test('packets joined by the record separator, both ways', async () => {
		const { sid } = await connectPolling();
		const room = `sep-${Date.now()}`;
		const body = [
			`420["join-room",{"roomName":"${room}"}]`,
			`42["stream-chat",{"messages":[{"role":"user","content":"sep [[tokens=3]]"}]}]`,
		].join(SEP);
		assert.equal((await post(GATEWAY_URL, sid, body)).text, 'ok');
		const got = [];
		while (!got.some((p) => p.startsWith('42["stream-complete"'))) {
			const r = await poll(GATEWAY_URL, sid);
			assert.equal(r.status, 200);
			for (const p of packets(r.text)) if (p !== '2') got.push(p);
		}
		assert.equal(got[0], `430[{"ok":true,"roomName":"${room}"}]`, 'the ack of join-room, id 0');
		const names = got.filter((p) => p.startsWith('42')).map((p) => JSON.parse(p.slice(2))[0]);
		assert.deepEqual(names, ['stream-start', 'stream-chunk', 'stream-chunk', 'stream-chunk', 'stream-chunk', 'stream-complete']);
		assert.equal((await post(GATEWAY_URL, sid, '1')).text, 'ok');
		assert.equal((await poll(GATEWAY_URL, sid)).json?.code, 1, 'closed by the client');
	});

	test('malformed payloads: 400 and the session ends', async () => {
		for (const body of ['9hello', `40${SEP}`, `${SEP}40`, '42["unterminated"', '42["connect"]', '42/x,']) {
			const { sid } = await connectPolling();
			const r = await post(GATEWAY_URL, sid, body);
			if (body.startsWith('42')) {
				// Well-formed Engine.IO, bad Socket.IO: the server closes.
				assert.equal(r.status, 200, JSON.stringify(body));
			} else {
				assert.equal(r.status, 400, JSON.stringify(body));
				assert.deepEqual(r.json, { code: 3, message: 'Bad request' });
			}
			const after2 = await poll(GATEWAY_URL, sid);
			assert.ok(after2.status === 400 || after2.text === '1', `${JSON.stringify(body)}: ${after2.text}`);
		}
		const { sid } = await connectPolling();
		const empty = await fetch(`${GATEWAY_URL}${q({ sid })}`, { method: 'POST', body: '' });
		assert.equal(empty.status, 400);
	});

	test('a body over maxPayload: 413, directly and through nginx', async () => {
		for (const base of [GATEWAY_URL, BASE_URL]) {
			const { sid } = await connectPolling(base);
			const big = `42["stream-chat",{"messages":[{"role":"user","content":"${'x'.repeat(1000000)}"}]}]`;
			const r = await post(base, sid, big);
			assert.equal(r.status, 413, base);
			assert.equal((await poll(base, sid)).json?.code, 1, 'the session ended');
		}
	});

	test('a second concurrent GET: 400, and the session ends', async () => {
		const { sid } = await connectPolling();
		const held = poll(GATEWAY_URL, sid);
		await sleep(100);
		const second = await poll(GATEWAY_URL, sid);
		assert.equal(second.status, 400);
		assert.equal((await held).text, '1', 'the held GET learns of the close');
		assert.equal((await poll(GATEWAY_URL, sid)).json?.code, 1);
	});

	test('another namespace is refused with CONNECT_ERROR', async () => {
		const { sid } = await handshake();
		await post(GATEWAY_URL, sid, '40/admin,');
		const r = await poll(GATEWAY_URL, sid);
		assert.equal(r.text, '44/admin,{"message":"Invalid namespace"}');
	});
});

describe('WebSocket', () => {
	test('direct: open packet without upgrades, then CONNECT and events', async () => {
		const ws = await openWs(wsUrl(GATEWAY_URL));
		try {
			const open = JSON.parse((await next(ws)).slice(1));
			assert.deepEqual(open.upgrades, []);
			assert.match(open.sid, /^[A-Za-z0-9_-]{20}$/);
			ws.send('40');
			assert.match(await next(ws), /^40\{"sid":"[A-Za-z0-9_-]{20}"\}$/);
			assert.match(await next(ws), /^42\["connected",/);
			ws.send('42["stream-chat",{"messages":[{"role":"user","content":"ws [[tokens=2]]"}]}]');
			assert.match(await nextMatching(ws, /stream-complete/), /"fullResponse":"t0 t1"/);
			// One packet per frame: polling this session is refused now.
			assert.equal((await poll(GATEWAY_URL, open.sid)).json?.code, 3);
		} finally {
			ws.close();
		}
	});

	test('the upgrade: 2probe, 3probe, the held GET released with noop, 5', async () => {
		const { sid } = await connectPolling();
		const held = poll(GATEWAY_URL, sid);
		await sleep(50);
		const ws = await openWs(wsUrl(GATEWAY_URL, { sid }));
		try {
			ws.send('2probe');
			assert.equal(await next(ws), '3probe');
			assert.equal((await held).text, '6', 'the held GET ends with a noop');
			ws.send('5');
			ws.send('42["stream-chat",{"messages":[{"role":"user","content":"up [[tokens=2]]"}]}]');
			assert.match(await nextMatching(ws, /stream-complete/), /"fullResponse":"t0 t1"/);
			assert.equal((await poll(GATEWAY_URL, sid)).json?.code, 3, 'polling is over');
		} finally {
			ws.close();
		}
		await until(async () => (await poll(GATEWAY_URL, sid)).json?.code === 1, { what: 'the session to end' });
	});

	test('a message over maxPayload closes the connection (1009)', async () => {
		const ws = await openWs(wsUrl(GATEWAY_URL));
		await next(ws);
		ws.send('40');
		ws.send(`42["stream-chat","${'y'.repeat(1000001)}"]`);
		assert.equal(await ws.closed, 1009);
	});

	test('an unknown sid cannot upgrade', async () => {
		await assert.rejects(openWs(wsUrl(GATEWAY_URL, { sid: 'AAAAAAAAAAAAAAAAAAAA' })));
	});
});

describe('heartbeat (a gateway with a 400 ms ping interval and timeout)', () => {
	let gw;
	before(async () => {
		gw = await startGateway({ CHAT_GATEWAY_PING_INTERVAL_MS: '400', CHAT_GATEWAY_PING_TIMEOUT_MS: '400' });
	});
	after(async () => {
		if (gw) assert.equal(await gw.stop(), 0, gw.log());
	});

	test('the handshake announces the settings', async () => {
		const { sid, open } = await handshake(gw.url);
		assert.equal(open.pingInterval, 400);
		assert.equal(open.pingTimeout, 400);
		assert.equal((await post(gw.url, sid, '1')).text, 'ok');
	});

	test('a WebSocket client that stops answering pings is dropped, its session and rooms freed', async () => {
		const base = await gatewayStatus(gw.url);
		const ws = await openWs(wsUrl(gw.url));
		await next(ws);
		ws.send('40');
		await next(ws);
		await next(ws);
		ws.send('420["join-room",{"roomName":"silent-room"}]');
		assert.match(await next(ws), /^430\[\{"ok":true/);
		const during = await gatewayStatus(gw.url);
		assert.equal(during.sessions, base.sessions + 1);
		assert.equal(during.rooms, base.rooms + 1);
		// Never answer: the server pings once, then gives up.
		assert.equal(await next(ws, 2000), '2', 'the server pings first');
		const t0 = Date.now();
		await ws.closed;
		const waited = Date.now() - t0;
		assert.ok(waited < 1500, `closed ${waited} ms after the ping`);
		const st = await gatewayStatus(gw.url);
		assert.equal(st.sessions, base.sessions);
		assert.equal(st.rooms, base.rooms);
	});

	test('a polling client that stops polling is dropped too', async () => {
		const base = await gatewayStatus(gw.url);
		const { sid } = await connectPolling(gw.url);
		await post(gw.url, sid, '42["join-room",{"roomName":"idle-room"}]');
		assert.equal((await gatewayStatus(gw.url)).rooms, base.rooms + 1);
		await until(async () => (await gatewayStatus(gw.url)).sessions === base.sessions, {
			timeout: 3000, what: 'the idle session to be dropped',
		});
		assert.equal((await gatewayStatus(gw.url)).rooms, base.rooms);
		assert.equal((await poll(gw.url, sid)).json?.code, 1);
	});

	test('a client that answers stays connected across many pings', async () => {
		const ws = await openWs(wsUrl(gw.url));
		try {
			await next(ws);
			ws.send('40');
			let pings = 0;
			const t0 = Date.now();
			while (Date.now() - t0 < 2500) {
				const m = await next(ws, 2000);
				if (m === '2') {
					pings += 1;
					ws.send('3');
				}
			}
			assert.ok(pings >= 4, `${pings} pings`);
			assert.equal(ws.readyState, WebSocket.OPEN);
		} finally {
			ws.close();
		}
	});
});
