// lib.mjs: shared helpers of the end-to-end suites (node --test tests/e2e).
//
// Everything is read from the environment that scripts/test exports:
//   CHAT_BASE_URL      https://127.0.0.1:18443  (TLS, HTTP/2 capable)
//   CHAT_HTTP_URL      http://127.0.0.1:18080   (plain HTTP, same routes)
//   CHAT_UPSTREAM_URL  the fake OpenAI upstream (GET /_fake/stats)
//   DATABASE_URL       the test instance's PostgreSQL
//   CHAT_VAR           its state directory (jwt_secret, tls/, log/)
//   NODE_EXTRA_CA_CERTS  its self-signed certificate (Node reads it at start)
import assert from 'node:assert/strict';
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import { existsSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import pg from 'pg';

export const REPO =
	process.env.CHAT_REPO ?? path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');
export const CHAT_VAR = process.env.CHAT_VAR ?? path.join(REPO, 'var/test');
export const BASE_URL = (process.env.CHAT_BASE_URL ?? 'https://127.0.0.1:18443').replace(/\/$/, '');
export const HTTP_URL = (process.env.CHAT_HTTP_URL ?? 'http://127.0.0.1:18080').replace(/\/$/, '');
export const UPSTREAM_URL = (process.env.CHAT_UPSTREAM_URL ?? 'http://127.0.0.1:18099').replace(/\/$/, '');
export const UPSTREAM_KEY = process.env.CHAT_UPSTREAM_KEY ?? 'test-upstream-key-not-secret';
export const CA_CERT =
	process.env.CHAT_TLS_CERT ?? process.env.NODE_EXTRA_CA_CERTS ?? path.join(CHAT_VAR, 'tls/cert.pem');
export const LOG_DIR = process.env.CHAT_LOG_DIR ?? path.join(CHAT_VAR, 'log');
export const DATABASE_URL =
	process.env.DATABASE_URL ?? 'postgresql://chat@127.0.0.1:15432/chat';

export const SESSIONS = '/api/chat/realtime/sessions';
export const UUID_RE = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;
// ISO-8601 UTC with milliseconds, as in seed 000: 2025-10-11T10:30:00.000Z
export const ISO_MS_RE = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/;
export const DEFAULT_SYSTEM_PROMPT = 'You are a helpful assistant.';

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

// ------------------------------------------------------------------ HTTP

/**
 * One request to the API. Returns {status, headers, text, json, response}.
 * body: an object (sent as JSON), a string (sent as is) or undefined.
 * opts.base: BASE_URL (default) or HTTP_URL. opts.raw: return the fetch
 * Response unread (for streams).
 */
export async function api(method, urlPath, opts = {}) {
	const { token, body, base = BASE_URL, raw = false, signal } = opts;
	const headers = { ...(opts.headers ?? {}) };
	if (token !== undefined && token !== null) headers.authorization = `Bearer ${token}`;
	let payload;
	if (body !== undefined) {
		if (typeof body === 'string' || body instanceof Uint8Array) payload = body;
		else payload = JSON.stringify(body);
		if (!Object.keys(headers).some((h) => h.toLowerCase() === 'content-type'))
			headers['content-type'] = 'application/json';
	}
	const response = await fetch(base + urlPath, { method, headers, body: payload, signal });
	if (raw) return response;
	const text = await response.text();
	let json;
	try {
		json = text.length > 0 ? JSON.parse(text) : undefined;
	} catch {
		json = undefined;
	}
	return { status: response.status, headers: response.headers, text, json, response };
}

let userSeq = 0;
/** A username nobody else has used: prefix + time + counter + randomness. */
export function uniqueName(prefix = 'u') {
	userSeq += 1;
	return `${prefix}_${Date.now().toString(36)}_${userSeq}_${crypto.randomBytes(4).toString('hex')}`;
}

/** Registers a fresh user and logs in. Returns {username, password, user, token, userId}. */
export async function registerAndLogin(prefix = 'e2e') {
	const username = uniqueName(prefix);
	const password = `pw-${crypto.randomBytes(8).toString('hex')}`;
	const reg = await api('POST', '/api/auth/register', { body: { username, password } });
	if (reg.status !== 201)
		throw new Error(`register ${username}: ${reg.status} ${reg.text}`);
	const login = await api('POST', '/api/auth/login', { body: { username, password } });
	if (login.status !== 200 || !login.json?.access_token)
		throw new Error(`login ${username}: ${login.status} ${login.text}`);
	return { username, password, user: reg.json, token: login.json.access_token, userId: reg.json.id };
}

/** Creates a session (body optional). Returns the session JSON; throws unless 201. */
export async function createSession(token, body) {
	const r = await api('POST', SESSIONS, { token, body });
	if (r.status !== 201) throw new Error(`create session: ${r.status} ${r.text}`);
	return r.json;
}

/** Opens the seed-000 stream; returns the unread fetch Response. */
export function openStream(token, sessionId, content, opts = {}) {
	const body = content === undefined ? undefined : { content };
	return api('POST', `${SESSIONS}/${sessionId}/stream`, { token, body, raw: true, ...opts });
}

/**
 * Sends one message and reads the whole stream. Returns
 * {response, events, data (parsed JSON of each event), deltas, done, error, text}.
 */
export async function streamTurn(token, sessionId, content, opts = {}) {
	const response = await openStream(token, sessionId, content, opts);
	if (response.status !== 200) {
		const text = await response.text();
		throw new Error(`stream: ${response.status} ${text}`);
	}
	const events = [];
	for await (const ev of readSSE(response)) events.push(ev);
	const data = events.map((e) => JSON.parse(e.data));
	const deltas = data.filter((d) => d.type === 'content').map((d) => d.content);
	return {
		response,
		events,
		data,
		deltas,
		text: deltas.join(''),
		start: data.find((d) => d.type === 'start'),
		done: data.find((d) => d.type === 'done'),
		error: data.find((d) => d.type === 'error'),
	};
}

// ------------------------------------------------------------------- SSE

/**
 * Parses a text/event-stream body as the WHATWG HTML spec says (§9.2.6):
 * CR, LF and CRLF end lines; a line starting with ':' is a comment; `data`
 * lines accumulate joined by LF; `id` persists (unless it holds NUL); a
 * blank line dispatches; an event with an empty data buffer is not
 * dispatched; a trailing event without its blank line is dropped. A UTF-8
 * BOM at the start is skipped.
 *
 * Yields {id, event, data, t, read} per dispatched event, where t is
 * performance.now() when the read that completed the event arrived and
 * read is that read's ordinal. opts.onRead(chunkText, t) and
 * opts.onComment(text) observe the raw reads and the comments.
 */
export async function* readSSE(response, opts = {}) {
	const decoder = new TextDecoder('utf-8');
	const reader = response.body.getReader();
	let buffer = '';
	let first = true;
	let lastId = '';
	let dataLines = null; // null: no data field yet in this event
	let eventType = '';
	let reads = 0;
	const parseLine = (line) => {
		if (line === '') {
			const out =
				dataLines === null
					? null
					: { id: lastId, event: eventType || 'message', data: dataLines.join('\n') };
			dataLines = null;
			eventType = '';
			return out;
		}
		if (line.startsWith(':')) {
			opts.onComment?.(line.slice(1));
			return null;
		}
		const colon = line.indexOf(':');
		let field = line;
		let value = '';
		if (colon >= 0) {
			field = line.slice(0, colon);
			value = line.slice(colon + 1);
			if (value.startsWith(' ')) value = value.slice(1);
		}
		if (field === 'data') (dataLines ??= []).push(value);
		else if (field === 'event') eventType = value;
		else if (field === 'id') {
			if (!value.includes('\0')) lastId = value;
		}
		// retry and unknown fields: ignored here
		return null;
	};
	try {
		for (;;) {
			const { done, value } = await reader.read();
			if (done) break;
			const t = performance.now();
			reads += 1;
			const chunk = decoder.decode(value, { stream: true });
			opts.onRead?.(chunk, t);
			buffer += chunk;
			if (first && buffer.length > 0) {
				if (buffer.charCodeAt(0) === 0xfeff) buffer = buffer.slice(1);
				first = false;
			}
			// Split off complete lines. A CR at the very end may be the first
			// half of a CRLF: keep it until the next read.
			let start = 0;
			for (let i = 0; i < buffer.length; i++) {
				const c = buffer[i];
				if (c !== '\n' && c !== '\r') continue;
				if (c === '\r' && i + 1 === buffer.length) break;
				const line = buffer.slice(start, i);
				if (c === '\r' && buffer[i + 1] === '\n') i += 1;
				start = i + 1;
				const ev = parseLine(line);
				if (ev !== null) yield { ...ev, t, read: reads };
			}
			buffer = buffer.slice(start);
		}
		buffer += decoder.decode();
		// A lone CR at the very end still ends a line.
		if (buffer.endsWith('\r')) {
			const ev = parseLine(buffer.slice(0, -1));
			if (ev !== null) yield { ...ev, t: performance.now(), read: reads };
		}
	} finally {
		reader.releaseLock();
	}
}

// ------------------------------------------------------------------- JWT

/** The test instance's JWT secret, as chatd reads it (trailing CR/LF cut). */
export function jwtSecret() {
	if (process.env.JWT_SECRET) return process.env.JWT_SECRET;
	const file = process.env.JWT_SECRET_FILE ?? path.join(CHAT_VAR, 'jwt_secret');
	return readFileSync(file, 'utf8').replace(/[\r\n]+$/, '');
}

export const b64url = (buf) => Buffer.from(buf).toString('base64url');

/**
 * Builds a JWT by hand. header/payload: objects (or strings, used as is);
 * alg: 'HS256' | 'HS384' | 'HS512' | 'none'; secret defaults to jwtSecret().
 */
export function signJwt(payload, { alg = 'HS256', secret = jwtSecret(), header } = {}) {
	const h = header ?? { alg, typ: 'JWT' };
	const enc = (x) => b64url(typeof x === 'string' ? x : JSON.stringify(x));
	const signingInput = `${enc(h)}.${enc(payload)}`;
	if (alg === 'none') return `${signingInput}.`;
	const hash = { HS256: 'sha256', HS384: 'sha384', HS512: 'sha512' }[alg];
	if (!hash) throw new Error(`signJwt: unsupported alg ${alg}`);
	const sig = crypto.createHmac(hash, secret).update(signingInput).digest();
	return `${signingInput}.${b64url(sig)}`;
}

/** Standard claims for userId, valid now; override any of them. */
export function claims(userId, extra = {}) {
	const now = Math.floor(Date.now() / 1000);
	return { sub: userId, iat: now, exp: now + 3600, iss: 'chatd', ...extra };
}

export function decodeJwtPart(token, index) {
	return JSON.parse(Buffer.from(token.split('.')[index], 'base64url').toString('utf8'));
}

// -------------------------------------------------------------- database

let pool = null;
/** The pg Pool of DATABASE_URL (created on first use; see closeDb). */
export function db() {
	pool ??= new pg.Pool({ connectionString: DATABASE_URL, max: 4 });
	return pool;
}

export async function closeDb() {
	if (pool !== null) {
		const p = pool;
		pool = null;
		await p.end();
	}
}

/**
 * The messages of a session as PostgreSQL holds them, oldest first (the
 * text of a reply still streaming: its row's and its stored chunks').
 */
export async function dbMessages(sessionId) {
	const { rows } = await db().query(
		`SELECT id::text, role, reply_text(id, status, content) AS content, status, model, error
		   FROM messages WHERE session_id = $1 ORDER BY seq`,
		[sessionId],
	);
	return rows;
}

// ------------------------------------------------------------- upstream

/** Counters of the fake upstream. */
export async function fakeStats() {
	const r = await fetch(`${UPSTREAM_URL}/_fake/stats`);
	if (r.status !== 200) throw new Error(`fake stats: ${r.status}`);
	return r.json();
}

// ---------------------------------------------------------- subprocesses

/**
 * Runs a program (no shell) and resolves {code, stdout, stderr} whatever its
 * exit status. Times out after opts.timeout ms (default 20 s).
 */
export function run(file, args, opts = {}) {
	return new Promise((resolve, reject) => {
		execFile(
			file,
			args,
			{ timeout: opts.timeout ?? 20000, maxBuffer: 16 << 20, encoding: 'utf8', ...opts },
			(err, stdout, stderr) => {
				if (err && typeof err.code !== 'number') {
					reject(Object.assign(err, { stdout, stderr }));
					return;
				}
				resolve({ code: err ? err.code : 0, stdout, stderr });
			},
		);
	});
}

/** The last n lines of a service log of the test instance ('' if absent). */
export function logTail(name, n = 40) {
	const file = path.join(LOG_DIR, name);
	if (!existsSync(file)) return '';
	return readFileSync(file, 'utf8').split('\n').slice(-n - 1).join('\n');
}

/** Every JSON error body has exactly the shape {"error": "<non-empty>"}. */
export function isErrorBody(json) {
	return (
		json !== null &&
		typeof json === 'object' &&
		!Array.isArray(json) &&
		Object.keys(json).length === 1 &&
		typeof json.error === 'string' &&
		json.error.length > 0
	);
}

// ------------------------------------------------------ streams, in depth
//
// Helpers of the engine and seed suites (engine, resume, seed00x, openai).

const envSeconds = (name, dflt, min = 1) => {
	const v = Number(process.env[name]);
	return process.env[name] !== undefined && process.env[name] !== '' && Number.isFinite(v) && v >= min ? v : dflt;
};

/**
 * chatd's timing knobs as the test instance runs with them: scripts/test
 * exports the CHAT_* variables it gives chatd, so the suites see the same
 * values; unset means chatd's default.
 */
export const CHATD = {
	heartbeat: envSeconds('CHAT_HEARTBEAT_INTERVAL', 15),
	idleTimeout: envSeconds('CHAT_UPSTREAM_IDLE_TIMEOUT', 60),
	firstTokenTimeout: envSeconds('CHAT_UPSTREAM_FIRST_TOKEN_TIMEOUT', 60),
	maxDuration: envSeconds('CHAT_STREAM_MAX_DURATION', 300),
	retries: envSeconds('CHAT_UPSTREAM_RETRIES', 2, 0),
	workers: envSeconds('CHAT_WORKERS', 4),
};

/** Polls fn until it returns something truthy (which it returns); throws after timeout ms. */
export async function waitFor(fn, { timeout = 10000, interval = 50, what = 'the condition' } = {}) {
	const deadline = Date.now() + timeout;
	for (;;) {
		const v = await fn();
		if (v) return v;
		if (Date.now() > deadline) throw new Error(`timed out after ${timeout} ms waiting for ${what}`);
		await sleep(interval);
	}
}

/**
 * Reads a whole SSE response. Returns {events, comments}: events as readSSE
 * yields them plus json (the parsed data, null if not JSON) and at (ms since
 * opts.t0, default: now); comments as {text, at}.
 */
export async function readAll(response, opts = {}) {
	const t0 = opts.t0 ?? performance.now();
	const events = [];
	const comments = [];
	const onComment = (text) => comments.push({ text, at: performance.now() - t0 });
	for await (const ev of readSSE(response, { onComment })) {
		let json = null;
		try {
			json = JSON.parse(ev.data);
		} catch {
			json = null;
		}
		events.push({ ...ev, json, at: ev.t - t0 });
		if (opts.limit !== undefined && events.length >= opts.limit) break;
	}
	return { events, comments };
}

/**
 * Reads n events of a stream, then disconnects (aborts the fetch through
 * its AbortController). Returns the events (readAll's shape).
 */
export async function readThenAbort(response, controller, n) {
	try {
		return await readAll(response, { limit: n });
	} finally {
		controller.abort();
	}
}

/**
 * Checks what every seed-000 stream (POST …/stream, or its replay by GET)
 * must keep, and returns {replyId, start, deltas, text, end, done, error,
 * seqs}: each event's data is a JSON object with type start, content, done or
 * error; ids are "<reply uuid>:<n>" naming one reply, with n running from
 * `first` (0 when the stream starts with its start event, else the n of the
 * Last-Event-ID + 1) without gap or repeat; the start only at n = 0; content
 * deltas are non-empty strings; exactly one terminal event (done or error),
 * and it is last. opts.complete = false accepts a stream cut before its end.
 */
export function checkSeed000(events, { first = 0, complete = true } = {}) {
	const out = { replyId: null, start: undefined, deltas: [], end: undefined, seqs: [] };
	assert.ok(events.length > 0, 'the stream has no events');
	events.forEach((ev, i) => {
		const where = `event ${i} [id ${ev.id}] ${ev.data.slice(0, 160)}`;
		assert.equal(ev.event, 'message', `${where}: seed 000 has no named events`);
		assert.ok(ev.json !== null && typeof ev.json === 'object', `${where}: data is a JSON object`);
		const m = /^([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}):(\d+)$/.exec(ev.id);
		assert.ok(m, `${where}: the id is "<reply uuid>:<n>"`);
		out.replyId ??= m[1];
		assert.equal(m[1], out.replyId, `${where}: one reply per stream`);
		const n = Number(m[2]);
		assert.equal(n, first + i, `${where}: ids run from ${first} without gap or repeat`);
		out.seqs.push(n);
		const { type } = ev.json;
		assert.equal(out.end, undefined, `${where}: an event after the terminal one`);
		if (type === 'start') {
			assert.equal(n, 0, `${where}: the start event is event 0`);
			out.start = ev.json;
		} else if (type === 'content') {
			assert.ok(n > 0, `${where}: content after the start`);
			assert.equal(typeof ev.json.content, 'string', where);
			assert.ok(ev.json.content.length > 0, `${where}: no empty deltas`);
			out.deltas.push(ev.json.content);
		} else if (type === 'done' || type === 'error') {
			out.end = ev.json;
		} else assert.fail(`${where}: unknown event type ${type}`);
	});
	if (first === 0) assert.ok(out.start, 'a stream from its beginning opens with the start event');
	if (out.start) {
		assert.match(out.start.session_id, UUID_RE);
		assert.equal(out.start.message_id, out.replyId, 'the start event names the reply');
	}
	if (complete) assert.ok(out.end, `a terminal event ends the stream: ${events.map((e) => e.json?.type)}`);
	if (out.end) {
		assert.equal(out.end.message_id, out.replyId, 'the terminal event names the reply');
		if (out.end.type === 'done') {
			assert.equal(typeof out.end.full_content, 'string');
			assert.ok(['complete', 'cancelled'].includes(out.end.status), `done status ${out.end.status}`);
			out.done = out.end;
		} else {
			assert.equal(typeof out.end.error, 'string');
			assert.ok(out.end.error.length > 0, 'an error message');
			assert.equal(typeof out.end.code, 'string');
			out.error = out.end;
		}
	}
	out.text = out.deltas.join('');
	return out;
}

/**
 * One message (a reply, usually) as PostgreSQL holds it: while it streams,
 * its text and chunk ends are its row's plus its stored batches'
 * (reply_chunks, folded into the row at its end).
 */
export async function dbReply(id) {
	const { rows } = await db().query(
		`SELECT id::text, session_id::text, role, reply_text(id, status, content) AS content, status,
		        error, model, worker, prompt_tokens, completion_tokens,
		        array_length(reply_chunk_ends(id, status, chunk_ends), 1) AS chunks
		   FROM messages WHERE id = $1`,
		[id],
	);
	return rows[0];
}

/** Waits until a reply is no longer 'streaming'; returns its row. */
export function waitReplyEnd(id, timeout = 15000) {
	return waitFor(
		async () => {
			const row = await dbReply(id);
			return row && row.status !== 'streaming' ? row : null;
		},
		{ timeout, interval: 100, what: `reply ${id} to end` },
	);
}

/**
 * The test instance's chatd.log as records of their key=value fields
 * (pid, event, route, status, user, ...), filtered; [] when not readable.
 */
export function chatdLog(filter = () => true) {
	const file = path.join(LOG_DIR, 'chatd.log');
	if (!existsSync(file)) return [];
	const out = [];
	for (const line of readFileSync(file, 'utf8').split('\n')) {
		if (!line.startsWith('ts=')) continue;
		const rec = {};
		for (const m of line.matchAll(/([\w.]+)=("(?:[^"\\]|\\.)*"|\S*)/g))
			rec[m[1]] = m[2].startsWith('"') ? m[2].slice(1, -1) : m[2];
		if (filter(rec)) out.push(rec);
	}
	return out;
}

/** Asserts a JSON error response: the status, application/json, exactly {"error": "..."}. */
export function assertJsonError(r, status, what = '') {
	const body = typeof r.text === 'string' ? r.text.slice(0, 300) : '';
	assert.equal(r.status, status, `${what}: status (body ${body})`);
	assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${what}: content-type`);
	assert.ok(isErrorBody(r.json), `${what}: body is {"error": "..."}: ${body}`);
}

// ------------------------------------------------------------ operations
//
// Helpers of the operations suites (ops, readyz, zz_secrets): raw requests
// from a chosen source address, a Prometheus text parser, the rate-limit
// settings of the instance, and a minimal FastCGI client.

import http from 'node:http';
import https from 'node:https';
import net from 'node:net';

const envInt = (name, dflt) => {
	const v = process.env[name];
	return v !== undefined && /^\d+$/.test(v.trim()) ? Number(v) : dflt;
};

/**
 * chatd's rate-limit settings as the test instance runs with them (scripts/test
 * exports them; unset means chatd's default). 0 = unlimited.
 */
export const LIMITS = {
	window: envInt('CHAT_RATELIMIT_WINDOW', 900),
	chatUser: envInt('CHAT_RATELIMIT_CHAT_USER', 100),
	chatAnon: envInt('CHAT_RATELIMIT_CHAT_ANON', 20),
	authIp: envInt('CHAT_RATELIMIT_AUTH_IP', 30),
	apiUser: envInt('CHAT_RATELIMIT_API_USER', 0),
	streamsUser: envInt('CHAT_STREAMS_PER_USER', 20),
	streamsAnon: envInt('CHAT_STREAMS_PER_ANON', 5),
	trustedProxies: (process.env.CHAT_TRUSTED_PROXIES ?? '').split(/[\s,]+/).filter(Boolean),
};

/**
 * One request on a connection of its own (no keep-alive, no pooling), from
 * opts.localAddress when given (any 127.x.y.z works on Linux: the whole
 * 127.0.0.0/8 is loopback). Returns {status, headers (a Headers), text,
 * json}, like api(). No Accept-Encoding is sent, so bodies arrive uncompressed.
 */
export function rawRequest(method, url, opts = {}) {
	const { headers = {}, body, localAddress, token, timeout = 30000 } = opts;
	const u = new URL(url);
	const lib = u.protocol === 'https:' ? https : http;
	const h = { ...headers };
	let payload;
	if (body !== undefined) {
		payload = typeof body === 'string' || Buffer.isBuffer(body) ? body : JSON.stringify(body);
		if (!Object.keys(h).some((k) => k.toLowerCase() === 'content-type')) h['content-type'] = 'application/json';
		h['content-length'] = Buffer.byteLength(payload);
	}
	if (token) h.authorization = `Bearer ${token}`;
	return new Promise((resolve, reject) => {
		const req = lib.request(
			u,
			{ method, headers: h, agent: false, localAddress, timeout },
			(res) => {
				const chunks = [];
				res.on('data', (c) => chunks.push(c));
				res.on('error', reject);
				res.on('end', () => {
					const text = Buffer.concat(chunks).toString('utf8');
					let json;
					try {
						json = text.length > 0 ? JSON.parse(text) : undefined;
					} catch {
						json = undefined;
					}
					const hdrs = new Headers();
					for (const [k, v] of Object.entries(res.headers)) hdrs.set(k, Array.isArray(v) ? v.join(', ') : v);
					resolve({ status: res.statusCode, headers: hdrs, text, json });
				});
			},
		);
		req.on('timeout', () => req.destroy(new Error(`${method} ${url}: timed out after ${timeout} ms`)));
		req.on('error', reject);
		req.end(payload);
	});
}

/** Runs fn over items with at most `limit` calls in flight; results in order. */
export async function mapConcurrent(items, limit, fn) {
	const out = new Array(items.length);
	let next = 0;
	const lanes = Array.from({ length: Math.min(limit, items.length) }, async () => {
		while (next < items.length) {
			const i = next++;
			out[i] = await fn(items[i], i);
		}
	});
	await Promise.all(lanes);
	return out;
}

/** An address of the benchmarking range 198.18.0.0/15, random per call. */
export function randomClientIp() {
	const b = crypto.randomBytes(3);
	return `198.${18 + (b[0] & 1)}.${b[1]}.${b[2] === 0 ? 1 : b[2]}`;
}

/** A random loopback address other than 127.0.0.1 (an untrusted source). */
export function randomLoopback() {
	const b = crypto.randomBytes(3);
	return `127.${b[0] === 0 ? 1 : b[0]}.${b[1]}.${b[2] === 0 || b[2] === 255 ? 2 : b[2]}`;
}

const PROM_METRIC_RE = /^[a-zA-Z_:][a-zA-Z0-9_:]*$/;
const PROM_LABEL_RE = /^[a-zA-Z_][a-zA-Z0-9_]*$/;
const PROM_VALUE_RE = /^(?:[+-]?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?|[+-]Inf|NaN)$/;
const PROM_TYPES = new Set(['counter', 'gauge', 'histogram', 'summary', 'untyped']);

const promNumber = (s) => (s === '+Inf' ? Infinity : s === '-Inf' ? -Infinity : Number(s));
const promKey = (name, labels) =>
	`${name}{${Object.keys(labels)
		.sort()
		.map((k) => `${k}=${JSON.stringify(labels[k])}`)
		.join(',')}}`;

/**
 * Parses the Prometheus text exposition format (version 0.0.4) strictly,
 * and throws on anything a Prometheus server would reject or that breaks
 * the format's rules: a malformed line, a bad metric or label name, a bad
 * escape, a duplicate series, a duplicate or late TYPE/HELP, the samples of
 * one metric not in one group, a negative counter, a histogram whose
 * buckets are not cumulative or lack +Inf, or whose _count is not the +Inf
 * bucket. Returns {families: Map(name -> {name, type, help, samples}),
 * value(name, labels) (undefined if absent), histogram(name, labels),
 * duplicates}. With opts.duplicates = 'sum', a duplicate series is added to
 * the first one and listed in `duplicates` instead of throwing (for tests
 * that count, when another test already reports the duplicate).
 */
export function parsePrometheus(text, opts = {}) {
	if (text.length > 0 && !text.endsWith('\n')) throw new Error('prometheus: the last line does not end with \\n');
	const families = new Map();
	const series = new Map();
	const duplicates = [];
	const closed = new Set();
	let current = null;
	const family = (name) => {
		let f = families.get(name);
		if (!f) {
			f = { name, type: undefined, help: undefined, samples: [] };
			families.set(name, f);
		}
		return f;
	};
	// The family a sample name belongs to: itself, or a histogram/summary base.
	const familyOf = (name) => {
		const f = families.get(name);
		if (f?.type !== undefined) return f;
		for (const suffix of ['_bucket', '_sum', '_count']) {
			if (!name.endsWith(suffix)) continue;
			const base = families.get(name.slice(0, -suffix.length));
			if (base?.type === 'histogram' || (base?.type === 'summary' && suffix !== '_bucket')) return base;
		}
		return family(name);
	};
	text.split('\n').forEach((line, i) => {
		const where = `prometheus line ${i + 1} (${JSON.stringify(line.slice(0, 120))})`;
		if (line === '') return;
		if (line.startsWith('#')) {
			const m = /^#[ \t]+(HELP|TYPE)[ \t]+(\S+)(?:[ \t]+(.*))?$/.exec(line);
			if (!m) return; // a plain comment
			const [, keyword, name, rest = ''] = m;
			if (!PROM_METRIC_RE.test(name)) throw new Error(`${where}: bad metric name`);
			const f = family(name);
			if (f.samples.length > 0 || closed.has(name))
				throw new Error(`${where}: ${keyword} after the samples of ${name}`);
			if (keyword === 'TYPE') {
				if (f.type !== undefined) throw new Error(`${where}: a second TYPE for ${name}`);
				if (!PROM_TYPES.has(rest)) throw new Error(`${where}: unknown type ${rest}`);
				f.type = rest;
			} else {
				if (f.help !== undefined) throw new Error(`${where}: a second HELP for ${name}`);
				if (/\\[^\\n]/.test(rest.replaceAll('\\\\', ''))) throw new Error(`${where}: bad escape in HELP`);
				f.help = rest.replaceAll('\\n', '\n').replaceAll('\\\\', '\\');
			}
			return;
		}
		// name [{labels}] value [timestamp]
		const nm = /^[a-zA-Z_:][a-zA-Z0-9_:]*/.exec(line);
		if (!nm) throw new Error(`${where}: no metric name`);
		const name = nm[0];
		let pos = name.length;
		const labels = {};
		if (line[pos] === '{') {
			pos += 1;
			for (;;) {
				while (line[pos] === ' ') pos += 1;
				if (line[pos] === '}') {
					pos += 1;
					break;
				}
				const lm = /^([a-zA-Z_][a-zA-Z0-9_]*)[ ]*=[ ]*"/.exec(line.slice(pos));
				if (!lm) throw new Error(`${where}: bad label at column ${pos + 1}`);
				if (!PROM_LABEL_RE.test(lm[1])) throw new Error(`${where}: bad label name ${lm[1]}`);
				if (Object.hasOwn(labels, lm[1])) throw new Error(`${where}: label ${lm[1]} twice`);
				pos += lm[0].length;
				let value = '';
				for (;;) {
					const c = line[pos];
					if (c === undefined) throw new Error(`${where}: unterminated label value`);
					pos += 1;
					if (c === '"') break;
					if (c === '\\') {
						const e = line[pos];
						pos += 1;
						if (e === '\\') value += '\\';
						else if (e === '"') value += '"';
						else if (e === 'n') value += '\n';
						else throw new Error(`${where}: bad escape \\${e} in a label value`);
					} else value += c;
				}
				labels[lm[1]] = value;
				while (line[pos] === ' ') pos += 1;
				if (line[pos] === ',') pos += 1;
				else if (line[pos] !== '}') throw new Error(`${where}: expected , or } at column ${pos + 1}`);
			}
		}
		const rest = line.slice(pos);
		const vm = /^[ \t]+(\S+)(?:[ \t]+(-?\d+))?[ \t]*$/.exec(rest);
		if (!vm || !PROM_VALUE_RE.test(vm[1])) throw new Error(`${where}: bad value`);
		const value = promNumber(vm[1]);
		const f = familyOf(name);
		if (current !== f) {
			if (current !== null) closed.add(current.name);
			if (closed.has(f.name)) throw new Error(`${where}: the samples of ${f.name} are not in one group`);
			current = f;
		}
		const key = promKey(name, labels);
		if (series.has(key) && opts.duplicates === 'sum' && f.type === 'counter') {
			duplicates.push(key);
			series.get(key).value += value;
			return;
		}
		if (series.has(key)) throw new Error(`${where}: duplicate series ${key}`);
		const sample = { name, labels, value };
		series.set(key, sample);
		f.samples.push(sample);
		if (f.type === 'counter' && !(value >= 0 && Number.isFinite(value)))
			throw new Error(`${where}: a counter must be finite and >= 0`);
		if (f.type === 'histogram' && name === `${f.name}_bucket` && labels.le === undefined)
			throw new Error(`${where}: a bucket without le`);
	});
	// Histograms: per label set (le aside), cumulative buckets up to +Inf = _count.
	for (const f of families.values()) {
		if (f.type !== 'histogram') continue;
		const groups = new Map();
		for (const s of f.samples) {
			const { le, ...rest } = s.labels;
			const k = promKey('', rest);
			if (!groups.has(k)) groups.set(k, { buckets: [], sum: undefined, count: undefined });
			const g = groups.get(k);
			if (s.name === `${f.name}_bucket`) g.buckets.push([promNumber(le), s.value]);
			else if (s.name === `${f.name}_sum`) g.sum = s.value;
			else if (s.name === `${f.name}_count`) g.count = s.value;
			else throw new Error(`prometheus: ${s.name} in histogram ${f.name}`);
		}
		for (const [k, g] of groups) {
			const what = `prometheus: histogram ${f.name}${k}`;
			if (g.buckets.length === 0 || g.buckets.at(-1)[0] !== Infinity) throw new Error(`${what}: no +Inf bucket last`);
			for (let i = 1; i < g.buckets.length; i++) {
				if (!(g.buckets[i][0] > g.buckets[i - 1][0])) throw new Error(`${what}: le not increasing`);
				if (g.buckets[i][1] < g.buckets[i - 1][1]) throw new Error(`${what}: buckets not cumulative`);
			}
			if (g.count === undefined || g.sum === undefined) throw new Error(`${what}: _sum or _count missing`);
			if (g.count !== g.buckets.at(-1)[1]) throw new Error(`${what}: _count ${g.count} != +Inf bucket`);
		}
	}
	return {
		families,
		duplicates,
		value: (name, labels = {}) => series.get(promKey(name, labels))?.value,
		histogram(name, labels = {}) {
			const key = promKey('', labels);
			const f = families.get(name);
			if (f?.type !== 'histogram') return undefined;
			const buckets = [];
			let sum;
			let count;
			for (const s of f.samples) {
				const { le, ...rest } = s.labels;
				if (promKey('', rest) !== key) continue;
				if (s.name === `${name}_bucket`) buckets.push([promNumber(le), s.value]);
				else if (s.name === `${name}_sum`) sum = s.value;
				else count = s.value;
			}
			return { buckets, sum, count };
		},
	};
}

/** GET /metrics from loopback (plain HTTP), parsed (opts: parsePrometheus's); also returns the raw text. */
export async function scrapeMetrics(opts = {}) {
	const r = await rawRequest('GET', `${HTTP_URL}/metrics`);
	if (r.status !== 200) throw new Error(`GET /metrics: ${r.status} ${r.text.slice(0, 200)}`);
	return Object.assign(parsePrometheus(r.text, opts), { text: r.text, headers: r.headers });
}

/**
 * One FastCGI request straight to a chatd socket (no nginx): params are the
 * CGI variables. Resolves {status, headers (a Headers), text, json}.
 */
export function fcgiRequest(socketPath, params, body = '', timeout = 10000) {
	const record = (type, content) => {
		const pad = (8 - (content.length % 8)) % 8;
		const h = Buffer.alloc(8);
		h[0] = 1; // FCGI_VERSION_1
		h[1] = type;
		h.writeUInt16BE(1, 2); // request id
		h.writeUInt16BE(content.length, 4);
		h[6] = pad;
		return Buffer.concat([h, content, Buffer.alloc(pad)]);
	};
	const len = (n) => {
		if (n < 128) return Buffer.from([n]);
		const b = Buffer.alloc(4);
		b.writeUInt32BE((n | 0x80000000) >>> 0);
		return b;
	};
	const bodyBuf = Buffer.from(body);
	const all = { CONTENT_LENGTH: String(bodyBuf.length), ...params };
	const pairs = Buffer.concat(
		Object.entries(all).flatMap(([k, v]) => {
			const kb = Buffer.from(k);
			const vb = Buffer.from(String(v));
			return [len(kb.length), len(vb.length), kb, vb];
		}),
	);
	const out = [record(1, Buffer.from([0, 1, 0, 0, 0, 0, 0, 0])), record(4, pairs), record(4, Buffer.alloc(0))];
	for (let i = 0; i < bodyBuf.length; i += 32768) out.push(record(5, bodyBuf.subarray(i, i + 32768)));
	out.push(record(5, Buffer.alloc(0)));
	return new Promise((resolve, reject) => {
		const sock = net.createConnection(socketPath);
		let input = Buffer.alloc(0);
		const stdout = [];
		let ended = false;
		const timer = setTimeout(() => sock.destroy(new Error(`fastcgi ${params.REQUEST_URI}: timed out`)), timeout);
		sock.on('connect', () => sock.write(Buffer.concat(out)));
		sock.on('data', (d) => {
			input = Buffer.concat([input, d]);
			while (input.length >= 8) {
				const type = input[1];
				const clen = input.readUInt16BE(4);
				const total = 8 + clen + input[6];
				if (input.length < total) break;
				if (type === 6) stdout.push(input.subarray(8, 8 + clen));
				if (type === 3) ended = true;
				input = input.subarray(total);
			}
			if (ended) sock.end();
		});
		sock.on('error', (e) => {
			clearTimeout(timer);
			reject(e);
		});
		sock.on('close', () => {
			clearTimeout(timer);
			if (!ended) {
				reject(new Error(`fastcgi ${params.REQUEST_URI}: connection closed before the end of the request`));
				return;
			}
			const raw = Buffer.concat(stdout).toString('utf8');
			const cut = raw.indexOf('\r\n\r\n');
			const head = cut >= 0 ? raw.slice(0, cut) : raw;
			const text = cut >= 0 ? raw.slice(cut + 4) : '';
			const headers = new Headers();
			for (const l of head.split('\r\n')) {
				const c = l.indexOf(':');
				if (c > 0) headers.append(l.slice(0, c).trim(), l.slice(c + 1).trim());
			}
			const status = headers.has('status') ? Number.parseInt(headers.get('status'), 10) : 200;
			let json;
			try {
				json = text.length > 0 ? JSON.parse(text) : undefined;
			} catch {
				json = undefined;
			}
			resolve({ status, headers, text, json });
		});
	});
}

// ------------------------------------------------- reliability and security
//
// Helpers of the fault and soak suites (tests/faults: they kill, restart and
// reload the services of the test instance) and of the hostile-input and
// auth-attack suites (tests/e2e/hostile, tests/e2e/attacks). Services are
// found through their pid files in $CHAT_VAR/run, as scripts/lib.sh writes
// them; they are restarted through scripts/lib.sh itself, so a test brings a
// service back exactly as scripts/test started it.

import * as relFs from 'node:fs';

export const RUN_DIR = path.join(CHAT_VAR, 'run');
/** chatd's FastCGI socket (CHAT_LISTEN of the test instance). */
export const FCGI_SOCKET = path.join(RUN_DIR, 'chatd.sock');

/** The pid recorded in $CHAT_VAR/run/<name>.pid (chatd, nginx, upstream), or null. */
export function pidFromFile(name) {
	try {
		const pid = Number.parseInt(relFs.readFileSync(path.join(RUN_DIR, `${name}.pid`), 'utf8').trim(), 10);
		return Number.isInteger(pid) && pid > 0 ? pid : null;
	} catch {
		return null;
	}
}

/** /proc/<pid>/stat as {state, ppid}, or null when the process is gone. */
function procStat(pid) {
	try {
		const s = relFs.readFileSync(`/proc/${pid}/stat`, 'utf8');
		const rest = s.slice(s.lastIndexOf(')') + 2).split(' ');
		return { state: rest[0], ppid: Number(rest[1]) };
	} catch {
		return null;
	}
}

/** True while pid runs (a zombie does not count). */
export function procAlive(pid) {
	const st = pid ? procStat(pid) : null;
	return st !== null && st.state !== 'Z' && st.state !== 'X';
}

/** The live children of ppid, ascending. */
export function procChildren(ppid) {
	const out = [];
	for (const name of relFs.readdirSync('/proc')) {
		if (!/^\d+$/.test(name)) continue;
		const st = procStat(name);
		if (st && st.ppid === ppid && st.state !== 'Z' && st.state !== 'X') out.push(Number(name));
	}
	return out.sort((a, b) => a - b);
}

/** chatd's master (chatd.pid) and its workers (the master's children). */
export const chatdMasterPid = () => pidFromFile('chatd');
export function chatdWorkerPids() {
	const master = chatdMasterPid();
	return master && procAlive(master) ? procChildren(master) : [];
}

/** Resident memory of pid in KiB (VmRSS), or null when it is gone. */
export function procRssKiB(pid) {
	try {
		const m = /^VmRSS:\s+(\d+)\s+kB/m.exec(relFs.readFileSync(`/proc/${pid}/status`, 'utf8'));
		return m ? Number(m[1]) : null;
	} catch {
		return null;
	}
}

/** The socket inodes of pid's network namespace: inode -> {kind, remotePort}. */
function procSocketTable(pid) {
	const table = new Map();
	for (const [file, kind] of [
		['tcp', 'tcp'],
		['tcp6', 'tcp'],
		['unix', 'unix'],
	]) {
		let text = '';
		try {
			text = relFs.readFileSync(`/proc/${pid}/net/${file}`, 'utf8');
		} catch {
			continue;
		}
		for (const line of text.split('\n').slice(1)) {
			const f = line.trim().split(/\s+/);
			if (f.length < 7) continue;
			if (kind === 'tcp') {
				const remotePort = Number.parseInt(f[2].split(':')[1], 16);
				table.set(f[9], { kind, remotePort, state: f[3] });
			} else {
				// Accepted connections of a bound socket carry its path; the
				// listening one has __SO_ACCEPTCON (0x10000) in its flags.
				const listening = (Number.parseInt(f[3], 16) & 0x10000) !== 0;
				table.set(f[6], { kind, remotePort: null, path: f[7] ?? null, listening });
			}
		}
	}
	return table;
}

/**
 * pid's open descriptors, counted by what they are: {total, pg (TCP to
 * PostgreSQL), upstream (TCP to the fake upstream), tcp (other TCP), fcgi
 * (connections accepted on chatd's FastCGI socket), listen (listening unix
 * sockets), unix (other unix sockets, e.g. libcurl's wake-up socketpairs),
 * files, other (pipes, eventfds, epoll, ...)}; null when the process is gone.
 */
export function procFds(pid) {
	let names;
	try {
		names = relFs.readdirSync(`/proc/${pid}/fd`);
	} catch {
		return null;
	}
	const pgPort = Number(process.env.CHAT_PG_PORT ?? new URL(DATABASE_URL).port);
	const upPort = Number(new URL(UPSTREAM_URL).port);
	const table = procSocketTable(pid);
	const out = { total: 0, pg: 0, upstream: 0, tcp: 0, fcgi: 0, listen: 0, unix: 0, files: 0, other: 0 };
	for (const fd of names) {
		let target;
		try {
			target = relFs.readlinkSync(`/proc/${pid}/fd/${fd}`);
		} catch {
			continue; // closed meanwhile
		}
		out.total += 1;
		const m = /^socket:\[(\d+)\]$/.exec(target);
		if (m) {
			const s = table.get(m[1]);
			if (!s) out.other += 1;
			else if (s.kind === 'unix' && s.listening) out.listen += 1;
			else if (s.kind === 'unix' && s.path === FCGI_SOCKET) out.fcgi += 1;
			else if (s.kind === 'unix') out.unix += 1;
			else if (s.remotePort === pgPort) out.pg += 1;
			else if (s.remotePort === upPort) out.upstream += 1;
			else out.tcp += 1;
		} else if (target.startsWith('/')) out.files += 1;
		else out.other += 1;
	}
	return out;
}

/** chatd's connections as PostgreSQL counts them (application_name chatd). */
export async function pgChatdConnections() {
	const { rows } = await dbTolerant().query(
		`SELECT count(*)::int AS n FROM pg_stat_activity WHERE application_name = 'chatd'`,
	);
	return rows[0].n;
}

/**
 * db(), with an error listener: an idle pooled connection that PostgreSQL
 * terminates (a restart) must not crash the test process.
 */
export function dbTolerant() {
	const p = db();
	if (p.listenerCount('error') === 0) p.on('error', () => {});
	return p;
}

/**
 * The environment chatd gets from scripts/test: the suites' own environment
 * (the CHAT_* settings are exported to both) plus what scripts/test keeps
 * from the suites (the upstream's URL and key). extra overrides it.
 */
export function appEnv(extra = {}) {
	return {
		...process.env,
		OPENAI_BASE_URL: `${UPSTREAM_URL}/v1`,
		OPENAI_API_KEY: UPSTREAM_KEY,
		...extra,
	};
}

/**
 * Runs shell code after `. scripts/lib.sh; chat_init` with appEnv(env), as
 * scripts/test would (pg_start, chatd_start, upstream_start, ...). Resolves
 * {code, stdout, stderr}; throws when it fails and opts.check is not false.
 */
export async function stackCtl(script, { env = {}, timeout = 120000, check = true } = {}) {
	const r = await run('bash', ['-c', `set -e; . "${REPO}/scripts/lib.sh"; chat_init; ${script}`], {
		env: appEnv(env),
		timeout,
		cwd: REPO,
	});
	if (check && r.code !== 0) throw new Error(`${script}: exit ${r.code}\n${r.stdout}\n${r.stderr}`);
	return r;
}

/** The pool as /status?json reports it. */
export async function poolStatus() {
	const r = await rawRequest('GET', `${HTTP_URL}/status?json`, { timeout: 10000 });
	if (r.status !== 200 || !r.json) throw new Error(`GET /status?json: ${r.status} ${r.text.slice(0, 200)}`);
	return r.json;
}

/**
 * Waits until the instance serves again: /healthz and /readyz 200 through
 * nginx, and (unless opts.workers is 0) the master has exactly opts.workers
 * workers (none of an older generation still draining), each with its
 * threads.
 */
export async function waitHealthy({ timeout = 60000, workers = CHATD.workers } = {}) {
	await waitFor(
		async () => {
			try {
				const [h, r] = await Promise.all([
					rawRequest('GET', `${HTTP_URL}/healthz`, { timeout: 3000 }),
					rawRequest('GET', `${HTTP_URL}/readyz`, { timeout: 3000 }),
				]);
				if (h.status !== 200 || r.status !== 200) return false;
				if (workers === 0) return true;
				if (chatdWorkerPids().length !== workers) return false;
				const s = await poolStatus();
				return s.workers === workers && s.processes.every((p) => p.threads > 0);
			} catch {
				return false;
			}
		},
		{ timeout, interval: 200, what: 'the instance to be healthy and ready' },
	);
}

/**
 * (Re)starts chatd through scripts/lib.sh's chatd_start with env overrides
 * (e.g. {CHAT_DRAIN_TIMEOUT: '4'}); restartChatd() with none brings back the
 * test instance's own settings. Waits until it serves.
 */
export async function restartChatd(env = {}, { stopTimeout = 20 } = {}) {
	await stackCtl('chatd_stop; chatd_start', { env: { CHAT_STOP_TIMEOUT: String(stopTimeout), ...env } });
	await waitHealthy();
}

/** Brings the fake upstream back exactly as scripts/test starts it. */
export function startUpstream() {
	return stackCtl('upstream_start --api-key "$OPENAI_API_KEY" --delay-ms 5 --quiet');
}

/** The pid of the worker that generates a reply (its row's worker column, "host:pid"). */
export async function replyWorkerPid(replyId) {
	const row = await waitFor(async () => (await dbReply(replyId))?.worker, { what: `reply ${replyId} row` });
	return Number(row.split(':').at(-1));
}

/**
 * Reads an SSE response to its end, never throwing: {events (readAll's
 * shape), comments, error (what cut the body off, or null), ms (time to
 * the end)}. opts.onEvent(ev, events) is called for each event; returning
 * 'stop' ends the read (opts.controller, if given, is then aborted).
 */
export async function collectSSE(response, opts = {}) {
	const t0 = opts.t0 ?? performance.now();
	const events = [];
	const comments = [];
	let error = null;
	try {
		for await (const ev of readSSE(response, { onComment: (text) => comments.push({ text, at: performance.now() - t0 }) })) {
			let json = null;
			try {
				json = JSON.parse(ev.data);
			} catch {
				json = null;
			}
			const e = { ...ev, json, at: ev.t - t0 };
			events.push(e);
			if (opts.onEvent && (await opts.onEvent(e, events)) === 'stop') {
				opts.controller?.abort();
				break;
			}
		}
	} catch (err) {
		error = err;
	}
	return { events, comments, error, ms: performance.now() - t0 };
}

/** A string no other test uses, to find a message in PostgreSQL. */
export function nonce(tag = 'n') {
	return `${tag}-${Date.now().toString(36)}-${crypto.randomBytes(6).toString('hex')}`;
}

/**
 * One HTTP/1.1 exchange over a raw TCP connection to HTTP_URL's port (or
 * opts.port): the request bytes are sent exactly as given, so malformed
 * requests reach nginx unchanged. Resolves {status, head, body (Buffer),
 * text, closed} once the server closes the connection or opts.timeout
 * (default 10 s) passes (then timedOut is true).
 */
export function rawHttp(requestBytes, opts = {}) {
	const u = new URL(HTTP_URL);
	const port = opts.port ?? Number(u.port);
	return new Promise((resolve, reject) => {
		const chunks = [];
		let timedOut = false;
		const sock = net.createConnection({ host: u.hostname, port, localAddress: opts.localAddress });
		const timer = setTimeout(() => {
			timedOut = true;
			sock.destroy();
		}, opts.timeout ?? 10000);
		sock.on('connect', () => {
			if (opts.halfClose) sock.end(requestBytes);
			else sock.write(requestBytes);
		});
		sock.on('data', (d) => chunks.push(d));
		sock.on('error', (e) => {
			if (e.code !== 'ECONNRESET' && e.code !== 'EPIPE') {
				clearTimeout(timer);
				reject(e);
			}
		});
		sock.on('close', () => {
			clearTimeout(timer);
			const raw = Buffer.concat(chunks);
			const cut = raw.indexOf('\r\n\r\n');
			const head = cut >= 0 ? raw.subarray(0, cut).toString('latin1') : raw.toString('latin1');
			const body = cut >= 0 ? raw.subarray(cut + 4) : Buffer.alloc(0);
			const m = /^HTTP\/1\.[01] (\d{3})/.exec(head);
			resolve({ status: m ? Number(m[1]) : 0, head, body, text: body.toString('utf8'), timedOut, raw });
		});
	});
}

/** Rejects when promise has not settled within ms. */
export function withTimeout(promise, ms, what = 'the operation') {
	let timer;
	return Promise.race([
		promise,
		new Promise((_, reject) => {
			timer = setTimeout(() => reject(new Error(`${what}: no result within ${ms} ms`)), ms);
		}),
	]).finally(() => clearTimeout(timer));
}

/**
 * Runs a stream in the background. open(signal) returns the fetch Response.
 * Returns {controller, started (resolves with the first event, or null if
 * the stream never opened), events (filled as they arrive), done (resolves
 * {status, text, events, comments, error, ms} when the body ended or broke)}.
 */
export function streamInBackground(open) {
	const controller = new AbortController();
	const events = [];
	let resolveStart;
	const started = new Promise((resolve) => {
		resolveStart = resolve;
	});
	const t0 = performance.now();
	const done = (async () => {
		let response;
		try {
			response = await open(controller.signal);
		} catch (error) {
			resolveStart(null);
			return { status: 0, text: '', events, comments: [], error, ms: performance.now() - t0 };
		}
		if (response.status !== 200) {
			const text = await response.text().catch(() => '');
			resolveStart(null);
			return { status: response.status, text, events, comments: [], error: null, ms: performance.now() - t0 };
		}
		const res = await collectSSE(response, {
			t0,
			onEvent: (e) => {
				events.push(e);
				if (events.length === 1) resolveStart(e);
			},
		});
		resolveStart(null);
		return { status: 200, text: '', ...res, events };
	})();
	return { controller, started, done, events };
}

/** "t0 t1 … t<n-1>": what the fake upstream answers to [[tokens=n]]. */
export const tokensText = (n) => Array.from({ length: n }, (_, i) => `t${i}`).join(' ');

/** The one-letter state of pid (R, S, D, T, Z, ...), or null when it is gone. */
export const procState = (pid) => procStat(pid)?.state ?? null;

/** True when every thread of pid is stopped (T), or pid is gone. */
export function procTasksStopped(pid) {
	let tasks;
	try {
		tasks = relFs.readdirSync(`/proc/${pid}/task`);
	} catch {
		return true;
	}
	return tasks.every((tid) => {
		try {
			const s = relFs.readFileSync(`/proc/${pid}/task/${tid}/stat`, 'utf8');
			const state = s.slice(s.lastIndexOf(')') + 2, s.lastIndexOf(')') + 3);
			return state === 'T' || state === 'Z' || state === 'X';
		} catch {
			return true;
		}
	});
}

/**
 * Runs fn while every chatd worker but pid is stopped (SIGSTOP), so that
 * whatever fn connects lands on worker pid (a stopped process accepts
 * nothing; its streams just pause). The others are continued afterwards,
 * whatever happens.
 */
export async function onlyWorker(pid, fn, { timeout = 20000 } = {}) {
	const others = chatdWorkerPids().filter((p) => p !== pid);
	try {
		for (const p of others) process.kill(p, 'SIGSTOP');
		// Every thread, not just the main one: a thread still running (just
		// woken by an earlier SIGCONT) could accept a connection and stop
		// with it, and fn would wait for an answer that never comes.
		await waitFor(() => others.every((p) => procTasksStopped(p)), {
			timeout: 5000,
			interval: 10,
			what: 'the other workers to stop',
		});
		return await withTimeout(Promise.resolve().then(fn), timeout, 'onlyWorker(fn)');
	} finally {
		for (const p of others) {
			try {
				process.kill(p, 'SIGCONT');
			} catch {
				// gone
			}
		}
	}
}

/** SIGCONT to every chatd worker (a safety net for after hooks). */
export function continueWorkers() {
	for (const p of chatdWorkerPids()) {
		try {
			process.kill(p, 'SIGCONT');
		} catch {
			// gone
		}
	}
}

/**
 * The value of one series in GET /metrics (plain text match, no strict
 * parse), e.g. metricValue('chat_pool_respawns_total'); undefined if absent.
 */
export async function metricValue(series) {
	const r = await rawRequest('GET', `${HTTP_URL}/metrics`, { timeout: 10000 });
	if (r.status !== 200) throw new Error(`GET /metrics: ${r.status}`);
	const line = r.text.split('\n').find((l) => l.startsWith(`${series} `));
	return line === undefined ? undefined : Number(line.slice(series.length + 1));
}
