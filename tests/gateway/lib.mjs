// lib.mjs: helpers of the Socket.IO gateway suites (node --test tests/gateway).
//
// Environment (scripts/test exports it):
//   CHAT_BASE_URL      https://127.0.0.1:18443  nginx: /socket.io/ goes to the gateway
//   CHAT_GATEWAY_URL   http://127.0.0.1:18091   the gateway itself (GET /gateway/status)
//   CHAT_UPSTREAM_URL, CHAT_UPSTREAM_KEY        the fake upstream (for gateways we start)
//   DATABASE_URL, JWT_SECRET_FILE, CHAT_REPO    the instance's database, secret, checkout
// Gateways started here (startGateway) get their own port, the instance's
// database and upstream, and whatever extra environment a test needs (short
// heartbeats, low rate limits): they are the "other process" of the rooms
// tests too.
import { spawn } from 'node:child_process';
import { randomBytes } from 'node:crypto';
import { existsSync } from 'node:fs';
import net from 'node:net';
import path from 'node:path';

import { io } from 'socket.io-client';

import { BASE_URL, DATABASE_URL, REPO, UPSTREAM_KEY, UPSTREAM_URL, sleep } from '../e2e/lib.mjs';

export { BASE_URL, sleep };
export const GATEWAY_URL = (process.env.CHAT_GATEWAY_URL ?? 'http://127.0.0.1:18091').replace(/\/$/, '');
export const GATEWAY_BIN = process.env.CHAT_GATEWAY_BIN ?? path.join(REPO, 'gateway/chat-gateway');
export const CHATD_CONF = process.env.CHAT_CHATD_CONF ?? path.join(REPO, 'fcgi/chatd.conf');
export const TRANSPORTS = [['polling', 'websocket'], ['websocket']];
export const transportName = (t) => (t.length === 1 ? 'websocket only' : 'polling then websocket');

/**
 * A client address of its own for each test client: nginx appends the real
 * peer to X-Forwarded-For, and the test instance trusts loopback, so the
 * gateway counts each client under this address (anonymous rate limit).
 * Random over 24 bits: every test file is a process of its own, and the
 * rate-limit windows outlive them, so a counter per file would collide.
 */
export function freshIp() {
	const b = randomBytes(3);
	return `10.${b[0]}.${b[1]}.${b[2] === 0 || b[2] === 255 ? 1 : b[2]}`;
}

/**
 * Opens a socket.io-client socket. opts: transports, auth, url, ip (sent as
 * X-Forwarded-For), timeout. Resolves with the socket once `connected`
 * (seed 001's event after CONNECT) arrived; its data is on socket.connectedData.
 */
export function connect(opts = {}) {
	const url = opts.url ?? BASE_URL;
	const socket = io(url, {
		transports: opts.transports ?? ['polling', 'websocket'],
		auth: opts.auth,
		reconnection: false,
		forceNew: true,
		timeout: opts.timeout ?? 10000,
		extraHeaders: { 'x-forwarded-for': opts.ip ?? freshIp() },
	});
	return new Promise((resolve, reject) => {
		const timer = setTimeout(() => {
			socket.close();
			reject(new Error(`no 'connected' from ${url} within 10 s`));
		}, opts.timeout ?? 10000);
		socket.once('connected', (data) => {
			clearTimeout(timer);
			socket.connectedData = data;
			resolve(socket);
		});
		socket.once('connect_error', (err) => {
			clearTimeout(timer);
			socket.close();
			reject(err);
		});
	});
}

/** Emits with an acknowledgement; resolves with the ack's argument. */
export function emitAck(socket, event, data, timeout = 10000) {
	return socket.timeout(timeout).emitWithAck(event, data);
}

/**
 * Collects seed 001's events of one stream on a socket until stream-complete
 * or stream-error. Resolves {start, chunks, complete, error, events}.
 * streamId: only that stream's events (others are ignored); by default the
 * first stream-start seen names it.
 */
export function collect001(socket, { streamId, timeout = 20000 } = {}) {
	return new Promise((resolve, reject) => {
		const out = { start: undefined, chunks: [], complete: undefined, error: undefined, events: [] };
		let id = streamId;
		const mine = (d) => id === undefined || d?.streamId === undefined || d.streamId === id;
		const done = () => {
			clearTimeout(timer);
			socket.off('stream-start', onStart);
			socket.off('stream-chunk', onChunk);
			socket.off('stream-complete', onComplete);
			socket.off('stream-error', onError);
			resolve(out);
		};
		const onStart = (d) => {
			if (id === undefined) id = d.streamId;
			if (!mine(d)) return;
			out.start = d;
			out.events.push(['stream-start', d]);
		};
		const onChunk = (d) => {
			if (!mine(d)) return;
			out.chunks.push(d);
			out.events.push(['stream-chunk', d]);
		};
		const onComplete = (d) => {
			if (!mine(d)) return;
			out.complete = d;
			out.events.push(['stream-complete', d]);
			done();
		};
		const onError = (d) => {
			if (!mine(d)) return;
			out.error = d;
			out.events.push(['stream-error', d]);
			done();
		};
		const timer = setTimeout(() => {
			done();
			reject(new Error(`stream did not end within ${timeout} ms: ${JSON.stringify(out.events.slice(-3))}`));
		}, timeout);
		socket.on('stream-start', onStart);
		socket.on('stream-chunk', onChunk);
		socket.on('stream-complete', onComplete);
		socket.on('stream-error', onError);
	});
}

/**
 * Collects seed 003's events until ai:complete or ai:error.
 * Resolves {deltas, text, complete, error, sessionIds}.
 */
export function collect003(socket, { timeout = 20000 } = {}) {
	return new Promise((resolve, reject) => {
		const out = { deltas: [], complete: undefined, error: undefined, sessionIds: new Set() };
		const done = () => {
			clearTimeout(timer);
			socket.off('ai:stream', onStream);
			socket.off('ai:complete', onComplete);
			socket.off('ai:error', onError);
			out.text = out.deltas.join('');
			resolve(out);
		};
		const onStream = (d) => {
			out.deltas.push(d.content);
			out.sessionIds.add(d.sessionId);
		};
		const onComplete = (d) => {
			out.complete = d;
			out.sessionIds.add(d.sessionId);
			done();
		};
		const onError = (d) => {
			out.error = d;
			done();
		};
		const timer = setTimeout(() => {
			done();
			reject(new Error(`ai:chat did not end within ${timeout} ms`));
		}, timeout);
		socket.on('ai:stream', onStream);
		socket.on('ai:complete', onComplete);
		socket.on('ai:error', onError);
	});
}

/** GET /gateway/status of a gateway (its own port, not through nginx). */
export async function gatewayStatus(url = GATEWAY_URL) {
	const r = await fetch(`${url}/gateway/status`);
	if (r.status !== 200) throw new Error(`status: ${r.status}`);
	return r.json();
}

/** A free TCP port on loopback. */
export function freePort() {
	return new Promise((resolve, reject) => {
		const srv = net.createServer();
		srv.once('error', reject);
		srv.listen(0, '127.0.0.1', () => {
			const { port } = srv.address();
			srv.close(() => resolve(port));
		});
	});
}

/**
 * Starts another gateway process on a free port, on the instance's database
 * and upstream. env: extra environment. Resolves {url, port, proc, log(),
 * stop()} once it answers. stop() sends SIGTERM and resolves with the exit
 * code.
 */
export async function startGateway(env = {}) {
	if (!existsSync(GATEWAY_BIN)) throw new Error(`${GATEWAY_BIN} is not built`);
	const port = await freePort();
	const url = `http://127.0.0.1:${port}`;
	const childEnv = {
		PATH: process.env.PATH,
		DATABASE_URL,
		OPENAI_BASE_URL: `${UPSTREAM_URL}/v1`,
		CHAT_GATEWAY_LISTEN: `127.0.0.1:${port}`,
		CHAT_DEV_MODE: '1',
		CHAT_TRUSTED_PROXIES: '127.0.0.1',
		CHAT_LOG_LEVEL: 'info',
		CHAT_DRAIN_TIMEOUT: '5',
		...env,
	};
	if (UPSTREAM_KEY) childEnv.OPENAI_API_KEY = UPSTREAM_KEY;
	if (process.env.JWT_SECRET_FILE) childEnv.JWT_SECRET_FILE = process.env.JWT_SECRET_FILE;
	for (const k of ['CHAT_RATELIMIT_CHAT_USER', 'CHAT_RATELIMIT_CHAT_ANON', 'CHAT_UPSTREAM_IDLE_TIMEOUT',
		'CHAT_UPSTREAM_FIRST_TOKEN_TIMEOUT', 'CHAT_HEARTBEAT_INTERVAL'])
		if (childEnv[k] === undefined && process.env[k] !== undefined) childEnv[k] = process.env[k];
	const argv = [GATEWAY_BIN, '-c', CHATD_CONF];
	// CHAT_GATEWAY_WRAPPER="valgrind --leak-check=full" runs it under a tool.
	const wrapper = (process.env.CHAT_GATEWAY_WRAPPER ?? '').split(/\s+/).filter(Boolean);
	const cmd = [...wrapper, ...argv];
	const proc = spawn(cmd[0], cmd.slice(1), { env: childEnv, stdio: ['ignore', 'pipe', 'pipe'] });
	let output = '';
	proc.stdout.on('data', (b) => (output += b));
	proc.stderr.on('data', (b) => (output += b));
	const exited = new Promise((resolve) => proc.once('exit', (code, signal) => resolve(code ?? signal)));
	const deadline = Date.now() + (wrapper.length > 0 ? 60000 : 15000);
	for (;;) {
		if (proc.exitCode !== null) throw new Error(`gateway exited: ${output}`);
		try {
			await gatewayStatus(url);
			break;
		} catch {
			if (Date.now() > deadline) {
				proc.kill('SIGKILL');
				throw new Error(`gateway on ${url} did not answer: ${output}`);
			}
			await sleep(100);
		}
	}
	return {
		url,
		port,
		proc,
		log: () => output,
		async stop() {
			if (proc.exitCode === null) proc.kill('SIGTERM');
			return exited;
		},
	};
}

/** Waits until fn() is truthy (polling). */
export async function until(fn, { timeout = 10000, interval = 50, what = 'the condition' } = {}) {
	const deadline = Date.now() + timeout;
	for (;;) {
		const v = await fn();
		if (v) return v;
		if (Date.now() > deadline) throw new Error(`timed out waiting for ${what}`);
		await sleep(interval);
	}
}
