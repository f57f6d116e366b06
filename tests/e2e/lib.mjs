// lib.mjs: shared helpers of the end-to-end suites (node --test tests/e2e).
//
// Everything is read from the environment that scripts/test exports:
//   CHAT_BASE_URL      https://127.0.0.1:18443  (TLS, HTTP/2 capable)
//   CHAT_HTTP_URL      http://127.0.0.1:18080   (plain HTTP, same routes)
//   CHAT_UPSTREAM_URL  the fake OpenAI upstream (GET /_fake/stats)
//   DATABASE_URL       the test instance's PostgreSQL
//   CHAT_VAR           its state directory (jwt_secret, tls/, log/)
//   NODE_EXTRA_CA_CERTS  its self-signed certificate (Node reads it at start)
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

/** The messages of a session as PostgreSQL holds them, oldest first. */
export async function dbMessages(sessionId) {
	const { rows } = await db().query(
		`SELECT id::text, role, content, status, model, error
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
