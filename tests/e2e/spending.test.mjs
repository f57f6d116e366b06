// spending.test.mjs: issue 14 part 4, the spending limits end to end. What a
// client may make the server's API key pay for:
// - allowed_models: /v1/chat/completions and PUT /api/settings refuse other
//   models with 400 and the list; nothing reaches the upstream;
// - max_tokens_ceiling: max_tokens / max_completion_tokens above it are 400;
// - daily_token_budget: past a user's tokens of the UTC day (stream_metrics),
//   429 "Daily token budget spent…" with Retry-After until midnight UTC, on
//   every generating route and on the gateway's events;
// - registration = closed: 403, and `chatd --create-user` makes users.
//
// The defaults are checked against the test instance; the other values
// against a second chatd (and a second gateway) started here with their
// own environment, on the same database, upstream and JWT secret.
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import crypto from 'node:crypto';
import { existsSync, mkdtempSync, rmSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
	DATABASE_URL,
	HTTP_URL,
	REPO,
	SESSIONS,
	UPSTREAM_KEY,
	UPSTREAM_URL,
	api,
	assertJsonError,
	closeDb,
	createSession,
	db,
	fakeStats,
	fcgiRequest,
	randomClientIp,
	readAll,
	registerAndLogin,
	uniqueName,
	waitFor,
} from './lib.mjs';
import { collect001, collect003, connect, startGateway } from '../gateway/lib.mjs';

after(closeDb);

const CHATD_BIN = process.env.CHAT_CHATD_BIN ?? path.join(REPO, 'fcgi/chatd');
const CHATD_CONF = process.env.CHAT_CHATD_CONF ?? path.join(REPO, 'fcgi/chatd.conf');
const DEFAULT_MODELS = 'gpt-4o-mini, gpt-4o, gpt-4.1, gpt-4.1-mini, gpt-4.1-nano, gpt-realtime-mini';
const chat = (content, extra = {}) => ({ messages: [{ role: 'user', content }], ...extra });

/** Seconds until the next midnight UTC, as chatd computes Retry-After. */
const toMidnight = () => 86400 - (Math.floor(Date.now() / 1000) % 86400);

/** A chatd of its own (one worker) on a unix socket, answering FastCGI. */
async function startChatd(env) {
	const dir = mkdtempSync(path.join(os.tmpdir(), 'chatd-spend-'));
	const sock = path.join(dir, 'chatd.sock');
	const out = [];
	const child = spawn(CHATD_BIN, ['-c', CHATD_CONF], {
		env: {
			...process.env,
			CHAT_LISTEN: sock,
			CHAT_PID_FILE: '',
			CHAT_LOG_FILE: '',
			CHAT_WORKERS: '1',
			CHAT_THREADS: '4',
			CHAT_DB_POOL_SIZE: '2',
			CHAT_DRAIN_TIMEOUT: '1',
			DATABASE_URL,
			OPENAI_BASE_URL: `${UPSTREAM_URL}/v1`,
			OPENAI_API_KEY: UPSTREAM_KEY,
			...env,
		},
		stdio: ['ignore', 'pipe', 'pipe'],
	});
	child.stdout.on('data', (d) => out.push(d));
	child.stderr.on('data', (d) => out.push(d));
	const exited = new Promise((resolve) => child.on('exit', (code, signal) => resolve({ code, signal })));
	const instance = {
		output: () => Buffer.concat(out).toString('utf8'),
		request: (method, uri, { token, body, headers = {} } = {}) => {
			const [p, q = ''] = uri.split('?');
			const params = { REQUEST_METHOD: method, REQUEST_URI: uri, PATH_INFO: p, QUERY_STRING: q, REMOTE_ADDR: '127.0.0.1', SERVER_PROTOCOL: 'HTTP/1.1' };
			const all = { 'x-forwarded-for': randomClientIp(), ...headers };
			if (token) all.authorization = `Bearer ${token}`;
			for (const [k, v] of Object.entries(all)) params[`HTTP_${k.toUpperCase().replaceAll('-', '_')}`] = v;
			const text = body === undefined ? '' : JSON.stringify(body);
			if (text) params.CONTENT_TYPE = 'application/json';
			return fcgiRequest(sock, params, text, 20000);
		},
		async stop() {
			if (child.exitCode === null && child.signalCode === null) {
				child.kill('SIGTERM');
				const t = setTimeout(() => child.kill('SIGKILL'), 10000);
				await exited;
				clearTimeout(t);
			}
			rmSync(dir, { recursive: true, force: true });
		},
	};
	try {
		await waitFor(
			async () => {
				if (child.exitCode !== null) throw new Error(`chatd exited: ${instance.output()}`);
				if (!existsSync(sock)) return false;
				try {
					return (await instance.request('GET', '/healthz')).status === 200;
				} catch {
					return false;
				}
			},
			{ timeout: 15000, interval: 100, what: 'the second chatd' },
		);
	} catch (e) {
		await instance.stop();
		throw e;
	}
	return instance;
}

/** Runs chatd with args, stdin as its standard input: {code, stdout, stderr}.
 * env: extra variables; undefined removes one. */
function chatdCommand(args, stdin, env = {}) {
	const childEnv = { ...process.env, DATABASE_URL, ...env };
	for (const [k, v] of Object.entries(childEnv)) if (v === undefined) delete childEnv[k];
	return new Promise((resolve, reject) => {
		const child = spawn(CHATD_BIN, ['-c', CHATD_CONF, ...args], {
			env: childEnv,
			stdio: ['pipe', 'pipe', 'pipe'],
		});
		let stdout = '';
		let stderr = '';
		const timer = setTimeout(() => child.kill('SIGKILL'), 20000);
		child.stdout.on('data', (d) => (stdout += d));
		child.stderr.on('data', (d) => (stderr += d));
		child.on('error', reject);
		child.on('exit', (code) => {
			clearTimeout(timer);
			resolve({ code, stdout, stderr });
		});
		child.stdin.on('error', () => {});   // EPIPE: it exited without reading (a refused setting)
		child.stdin.end(stdin);
	});
}

/** Adds a stream_metrics row for userId: tokens used at `at` (SQL expression). */
async function recordUsage(userId, prompt, completion, at = 'now()') {
	await db().query(
		`INSERT INTO stream_metrics (route, user_id, status, duration_ms, prompt_tokens, completion_tokens, created_at)
		 VALUES ('spend_test', $1, 'complete', 1, $2, $3, ${at})`,
		[userId, prompt, completion],
	);
}

async function tokensToday(userId) {
	const { rows } = await db().query(
		`SELECT coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)), 0)::int AS n
		 FROM stream_metrics WHERE user_id = $1
		 AND created_at >= date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'`,
		[userId],
	);
	return rows[0].n;
}

// ------------------------------------------------------------ the defaults

describe('the defaults (the test instance)', () => {
	let user;
	before(async () => {
		user = await registerAndLogin('spend');
	});

	test('/v1/chat/completions: a model outside allowed_models is 400 with the list, streamed or not; nothing reaches the upstream', async () => {
		const before0 = await fakeStats();
		for (const model of ['o1-pro', 'gpt-4.5-preview', 'GPT-4o', 'gpt-4o ', 'gpt-4o,gpt-4o-mini', 'x'.repeat(100)]) {
			for (const stream of [false, true]) {
				const r = await api('POST', '/v1/chat/completions', { token: user.token, body: chat('hi [[tokens=1]]', { model, stream }) });
				assertJsonError(r, 400, `${model} stream=${stream}`);
				assert.equal(r.json.error, `model must be one of: ${DEFAULT_MODELS}`);
			}
		}
		assert.equal((await fakeStats()).chat_requests, before0.chat_requests, 'no refused model was asked of the upstream');
		for (const model of DEFAULT_MODELS.split(', ').filter((m) => !m.includes('realtime'))) {
			const r = await api('POST', '/v1/chat/completions', { token: user.token, body: chat('[[request]]', { model }) });
			assert.equal(r.status, 200, `${model}: ${r.text}`);
			assert.equal(JSON.parse(r.json.choices[0].message.content).model, model);
		}
	});

	test('PUT /api/settings: model and realtime_model outside the list are 400 with the list; nothing is stored', async () => {
		const before0 = await api('GET', '/api/settings', { token: user.token });
		let r = await api('PUT', '/api/settings', { token: user.token, body: { model: 'o1-pro' } });
		assertJsonError(r, 400, 'model');
		assert.equal(r.json.error, `model must be one of: ${DEFAULT_MODELS}`);
		r = await api('PUT', '/api/settings', { token: user.token, body: { realtime_model: 'gpt-4o-realtime-preview', system_prompt: 'not stored' } });
		assertJsonError(r, 400, 'realtime_model');
		assert.equal(r.json.error, `realtime_model must be one of: gpt-realtime, ${DEFAULT_MODELS}`);
		assert.deepEqual((await api('GET', '/api/settings', { token: user.token })).json, before0.json, 'nothing stored');
		r = await api('PUT', '/api/settings', { token: user.token, body: { model: 'gpt-4.1-nano', realtime_model: 'gpt-realtime-mini' } });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.model, 'gpt-4.1-nano');
		r = await api('PUT', '/api/settings', { token: user.token, body: { model: null, realtime_model: null } });
		assert.equal(r.json.model, 'gpt-4o-mini');
	});

	test('max_tokens and max_completion_tokens above 4,096 are 400 with the limit; 4,096 reaches the upstream', async () => {
		for (const [field, n] of [['max_tokens', 4097], ['max_completion_tokens', 4097], ['max_tokens', 1000000], ['max_completion_tokens', 100000]]) {
			const r = await api('POST', '/v1/chat/completions', { token: user.token, body: chat('x', { model: 'gpt-4o-mini', [field]: n }) });
			assertJsonError(r, 400, `${field} ${n}`);
			assert.equal(r.json.error, `${field} must be at most 4096`);
		}
		// Both given: either one above the ceiling is refused.
		const both = await api('POST', '/v1/chat/completions', { token: user.token, body: chat('x', { max_tokens: 10, max_completion_tokens: 5000 }) });
		assertJsonError(both, 400, 'both');
		for (const field of ['max_tokens', 'max_completion_tokens']) {
			const r = await api('POST', '/v1/chat/completions', { token: user.token, body: chat('[[request]]', { [field]: 4096 }) });
			assert.equal(r.status, 200, r.text);
			assert.equal(JSON.parse(r.json.choices[0].message.content).max_tokens, 4096);
		}
	});

	test('registration is open; chatd -t shows the limits and their defaults', async () => {
		const r = await api('POST', '/api/auth/register', { body: { username: uniqueName('open'), password: 'password1' }, headers: { 'x-forwarded-for': randomClientIp() } });
		assert.equal(r.status, 201, r.text);
		const t = await chatdCommand(['-t'], '', {
			CHAT_ALLOWED_MODELS: undefined, CHAT_MAX_TOKENS_CEILING: undefined,
			CHAT_DAILY_TOKEN_BUDGET: undefined, CHAT_REGISTRATION: undefined,
		});
		assert.equal(t.code, 0, t.stderr);
		for (const line of [`allowed_models = ${DEFAULT_MODELS}`, 'max_tokens_ceiling = 4096', 'daily_token_budget = 0', 'registration = open'])
			assert.ok(t.stdout.split('\n').includes(line), `${line} in:\n${t.stdout}`);
	});

	test('settings that cannot work are refused at start: max_tokens above the ceiling, an unknown registration mode', async () => {
		for (const [env, what] of [
			[{ CHAT_MAX_TOKENS_CEILING: '1000' }, /max_tokens/],
			[{ CHAT_REGISTRATION: 'invite' }, /registration/],
			[{ CHAT_ALLOWED_MODELS: 'gpt-4o,\tgpt-4o-mini' }, /allowed_models/],
		]) {
			const r = await chatdCommand(['-t'], '', env);
			assert.notEqual(r.code, 0, JSON.stringify(env));
			assert.match(r.stderr, what);
		}
	});
});

// ---------------------------------------------- another configuration

describe('a chatd with registration closed, two models, a ceiling of 1,000 and a budget of 1,000 tokens a day', () => {
	const BUDGET = 1000;
	let chatd;
	let gateway;
	before(async () => {
		const env = {
			CHAT_REGISTRATION: 'closed',
			CHAT_MODEL: 'gpt-4o-mini',
			CHAT_ALLOWED_MODELS: 'gpt-4.1-nano',
			CHAT_MAX_TOKENS: '500',
			CHAT_MAX_TOKENS_CEILING: '1000',
			CHAT_DAILY_TOKEN_BUDGET: String(BUDGET),
		};
		chatd = await startChatd(env);
		gateway = await startGateway(env);
	});
	after(async () => {
		await chatd?.stop();
		await gateway?.stop();
	});

	test('registration closed: POST /api/auth/register is 403 {"error": "Registration is closed"}, nothing stored', async () => {
		const username = uniqueName('closed');
		const r = await chatd.request('POST', '/api/auth/register', { body: { username, password: 'password1' } });
		assert.equal(r.status, 403, r.text);
		assert.deepEqual(r.json, { error: 'Registration is closed' });
		const { rows } = await db().query('SELECT count(*)::int AS n FROM users WHERE username = $1', [username]);
		assert.equal(rows[0].n, 0);
	});

	test('chatd --create-user NAME (password on stdin) creates a user who can log in; a taken name, a bad name or a short password fail', async () => {
		const username = uniqueName('admin-made');
		const password = `pw-${crypto.randomBytes(6).toString('hex')}`;
		const made = await chatdCommand(['--create-user', username], `${password}\n`, { CHAT_REGISTRATION: 'closed' });
		assert.equal(made.code, 0, made.stderr);
		const user = JSON.parse(made.stdout);
		assert.equal(made.stdout, `${JSON.stringify(user)}\n`, 'compact JSON, like the API');
		assert.equal(user.username, username);
		assert.match(user.id, /^[0-9a-f-]{36}$/);
		assert.ok(!made.stdout.includes(password) && !made.stderr.includes(password), 'the password is never echoed');
		const { rows } = await db().query('SELECT password_hash FROM users WHERE id = $1', [user.id]);
		assert.match(rows[0].password_hash, /^\$argon2id\$/, 'hashed like a registration');
		const login = await chatd.request('POST', '/api/auth/login', { body: { username, password } });
		assert.equal(login.status, 200, login.text);
		assert.equal(login.json.user_id, user.id);
		const wrong = await chatd.request('POST', '/api/auth/login', { body: { username, password: `${password}x` } });
		assert.equal(wrong.status, 401);

		const again = await chatdCommand(['--create-user', username], 'another-password\n');
		assert.equal(again.code, 1);
		assert.match(again.stderr, /already exists/);
		const badName = await chatdCommand(['--create-user', 'no spaces'], 'password1\n');
		assert.equal(badName.code, 1);
		assert.match(badName.stderr, /username/);
		const short = await chatdCommand(['--create-user', uniqueName('short')], 'short\n');
		assert.equal(short.code, 1);
		assert.match(short.stderr, /password/);
		const none = await chatdCommand(['--create-user', uniqueName('none')], '');
		assert.equal(none.code, 1);
	});

	test('allowed_models and the configured model; the ceiling from the configuration', async () => {
		const { token } = await registerAndLogin('spend2');
		let r = await chatd.request('POST', '/v1/chat/completions', { token, body: chat('x', { model: 'gpt-4o' }) });
		assertJsonError(r, 400, 'gpt-4o is not listed here');
		assert.equal(r.json.error, 'model must be one of: gpt-4o-mini, gpt-4.1-nano');
		for (const model of ['gpt-4o-mini', 'gpt-4.1-nano']) {
			r = await chatd.request('POST', '/v1/chat/completions', { token, body: chat('[[tokens=1]]', { model }) });
			assert.equal(r.status, 200, `${model}: ${r.text}`);
		}
		r = await chatd.request('PUT', '/api/settings', { token, body: { realtime_model: 'gpt-realtime-mini' } });
		assertJsonError(r, 400, 'realtime_model');
		assert.equal(r.json.error, 'realtime_model must be one of: gpt-realtime, gpt-4.1-nano');
		r = await chatd.request('POST', '/v1/chat/completions', { token, body: chat('x', { max_tokens: 1001 }) });
		assertJsonError(r, 400, 'max_tokens');
		assert.equal(r.json.error, 'max_tokens must be at most 1000');
		r = await chatd.request('POST', '/v1/chat/completions', { token, body: chat('[[request]]') });
		assert.equal(JSON.parse(r.json.choices[0].message.content).max_tokens, 500, 'the configured max_tokens by default');
	});

	test('a model stored when it was allowed, and no longer is, is not used: the server’s is', async () => {
		const { token } = await registerAndLogin('spend-retired');
		const set = await api('PUT', '/api/settings', { token, body: { model: 'gpt-4o' } });   // allowed by the defaults
		assert.equal(set.status, 200, set.text);
		const got = await chatd.request('GET', '/api/settings', { token });
		assert.equal(got.json.model, 'gpt-4o-mini', 'the effective settings show the server’s model');
		const r = await chatd.request('POST', '/api/chat', { token, body: { message: '[[request]]' } });
		assert.equal(r.status, 200, r.text);
		assert.equal(JSON.parse(r.json.reply).model, 'gpt-4o-mini');
	});

	test('the budget counts today’s recorded tokens (not yesterday’s, not another user’s); past it every generating route is 429 with Retry-After until midnight UTC', async () => {
		const { token, userId } = await registerAndLogin('budget');
		const other = await registerAndLogin('budget-other');
		// Real usage: one reply, recorded in stream_metrics by the worker.
		let r = await chatd.request('POST', '/v1/chat/completions', { token, body: chat('[[tokens=5]]') });
		assert.equal(r.status, 200, r.text);
		const used = r.json.usage.total_tokens;
		assert.ok(used > 0 && used < BUDGET, `usage ${used}`);
		await waitFor(async () => (await tokensToday(userId)) === used, { what: 'the usage recorded' });
		// Yesterday's usage and another user's do not count.
		await recordUsage(userId, 50000, 50000, "date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '1 second'");
		await recordUsage(other.userId, BUDGET / 2, BUDGET / 2 - 100);   // under its own budget
		r = await chatd.request('POST', '/api/chat', { token, body: { message: '[[tokens=1]]' } });
		assert.equal(r.status, 200, `still within the budget: ${r.text}`);
		await waitFor(async () => (await tokensToday(userId)) > used, { what: 'the second usage recorded' });
		// Reach it exactly.
		await recordUsage(userId, BUDGET - (await tokensToday(userId)), 0);
		assert.equal(await tokensToday(userId), BUDGET);

		const session = await createSession(token);
		const stats0 = await fakeStats();
		const routes = [
			['POST', `${SESSIONS}/${session.id}/stream`, { content: 'hi [[tokens=1]]' }],
			['POST', '/stream/chat', { message: 'hi [[tokens=1]]' }],
			['POST', '/api/v2/ai/chat/stream', { message: 'hi [[tokens=1]]' }],
			['POST', '/api/chat', { message: 'hi [[tokens=1]]' }],
			['POST', '/openai/chatCompletion', chat('hi [[tokens=1]]')],
			['POST', '/openai/chatCompletion/stream/start', { sessionId: `room-${crypto.randomUUID()}`, ...chat('hi [[tokens=1]]') }],
			['POST', '/v1/chat/completions', chat('hi [[tokens=1]]')],
			['POST', '/v1/chat/completions', chat('hi [[tokens=1]]', { stream: true })],
			['POST', '/api/session', undefined],
		];
		for (const [method, uri, body] of routes) {
			const res = await chatd.request(method, uri, { token, body });
			assert.equal(res.status, 429, `${uri}: ${res.status} ${res.text}`);
			assert.deepEqual(res.json, { error: 'Daily token budget spent; it renews at midnight UTC' }, uri);
			const retry = Number(res.headers.get('retry-after'));
			assert.ok(Math.abs(retry - toMidnight()) <= 5, `${uri}: Retry-After ${retry}, midnight UTC in ${toMidnight()} s`);
		}
		assert.equal((await fakeStats()).chat_requests, stats0.chat_requests, 'nothing reached the upstream');
		const msgs = await db().query('SELECT count(*)::int AS n FROM messages WHERE session_id = $1', [session.id]);
		assert.equal(msgs.rows[0].n, 0, 'nothing stored');

		// What generates nothing still works; so do other users and anonymous callers.
		assert.equal((await chatd.request('GET', '/api/settings', { token })).status, 200);
		assert.equal((await chatd.request('GET', SESSIONS, { token })).status, 200);
		r = await chatd.request('POST', '/api/chat', { token: other.token, body: { message: '[[tokens=1]]' } });
		assert.equal(r.status, 200, `another user, under their own budget: ${r.text}`);
		r = await chatd.request('POST', '/api/chat', { body: { message: '[[tokens=1]]' } });
		assert.equal(r.status, 200, `anonymous: ${r.text}`);
		// The instance without a budget still serves the user.
		const open = await api('POST', '/api/chat', { token, body: { message: '[[tokens=1]]' } });
		assert.equal(open.status, 200, open.text);

		// The gateway says the same in its events, for ai:chat and stream-chat.
		const socket = await connect({ url: gateway.url, auth: { token } });
		try {
			const ended003 = collect003(socket);
			socket.emit('ai:chat', { message: 'hi [[tokens=1]]', token });
			const e3 = await ended003;
			assert.equal(e3.error?.error, 'Daily token budget spent; it renews at midnight UTC');
			assert.equal(e3.deltas.length, 0);
			const ended001 = collect001(socket);
			socket.emit('stream-chat', chat('hi [[tokens=1]]'));
			const e1 = await ended001;
			assert.equal(e1.error?.error, 'Daily token budget spent; it renews at midnight UTC');
			assert.equal(e1.chunks.length, 0);
		} finally {
			socket.close();
		}
		assert.equal((await fakeStats()).chat_requests, stats0.chat_requests + 3, 'only the three allowed generations reached the upstream');
	});

	test('the budget query reads one row of the daily rollup by its index', async () => {
		const sql = `EXPLAIN (FORMAT JSON) SELECT coalesce(sum(coalesce(prompt_tokens, 0) + coalesce(completion_tokens, 0)), 0)
			 FROM usage_daily WHERE user_id = $1::uuid AND day = (now() AT TIME ZONE 'UTC')::date`;
		// A small table may be scanned whole; with sequential scans off the
		// index must serve the query.
		const client = await db().connect();
		try {
			await client.query('BEGIN');
			await client.query('SET LOCAL enable_seqscan = off');
			const r = await client.query(sql, [crypto.randomUUID()]);
			assert.match(JSON.stringify(r.rows[0]['QUERY PLAN']), /usage_daily_key/);
			await client.query('ROLLBACK');
		} finally {
			client.release();
		}
	});
});
