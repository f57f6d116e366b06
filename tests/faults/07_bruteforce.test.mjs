// 07_bruteforce.test.mjs: issue 9, brute-force login limits. chatd runs here
// with a low auth limit (CHAT_RATELIMIT_AUTH_IP) and a short window, so that
// an attacker's budget runs out within a test: password guesses are limited
// per client address whatever username they try, across every worker,
// whatever forwarding headers they forge; the right password does not get
// through once the budget is spent; the budget comes back with the window.
// The test instance's settings are restored at the end.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
	HTTP_URL,
	chatdWorkerPids,
	closeDb,
	continueWorkers,
	db,
	isErrorBody,
	onlyWorker,
	randomClientIp,
	randomLoopback,
	rawRequest,
	registerAndLogin,
	restartChatd,
	sleep,
	stackCtl,
	uniqueName,
	waitHealthy,
} from '../e2e/lib.mjs';

const LIMIT = 6;
const WINDOW = 8; // seconds: long enough for the guesses of one test on a busy machine
let victim;

before(async () => {
	await waitHealthy();
	victim = await registerAndLogin('bf'); // before the limit is lowered
	await restartChatd({ CHAT_RATELIMIT_AUTH_IP: String(LIMIT), CHAT_RATELIMIT_WINDOW: String(WINDOW) });
});
after(async () => {
	continueWorkers();
	await restartChatd().catch(async (e) => {
		await stackCtl('chatd_start');
		throw e;
	});
	await closeDb();
});

/** Headers an attacker forges to look like many clients. */
function forged(i) {
	const ip = randomClientIp();
	return {
		'x-forwarded-for': i % 2 ? ip : `${ip}, ${randomClientIp()}`,
		'x-real-ip': randomClientIp(),
		forwarded: `for=${randomClientIp()};proto=https`,
		'true-client-ip': randomClientIp(),
		'cf-connecting-ip': randomClientIp(),
		'x-client-ip': randomClientIp(),
		'x-cluster-client-ip': randomClientIp(),
	};
}

const login = (body, opts = {}) =>
	rawRequest('POST', `${HTTP_URL}${opts.path ?? '/api/auth/login'}`, { body, headers: opts.headers, localAddress: opts.from });

function assertLimited(r, what) {
	assert.equal(r.status, 429, `${what}: ${r.status} ${r.text}`);
	assert.ok(isErrorBody(r.json), `${what}: ${r.text}`);
	assert.ok(Number(r.headers.get('retry-after')) >= 1, `${what}: Retry-After ${r.headers.get('retry-after')}`);
	assert.equal(r.headers.get('ratelimit-remaining'), '0', what);
	assert.equal(r.json.access_token, undefined, `${what}: no token`);
}

describe(`password guessing (auth limit ${LIMIT} per ${WINDOW} s window)`, () => {
	test('from one address: guesses at many usernames with forged forwarding headers, on every worker, are cut off after the limit; then even the right password is refused', async () => {
		const from = randomLoopback(); // not a trusted proxy: nginx sees this address
		const workers = chatdWorkerPids();
		for (let i = 0; i < LIMIT; i++) {
			const w = workers[i % workers.length];
			const username = i % 2 ? victim.username : uniqueName('guess');
			const r = await onlyWorker(w, () => login({ username, password: `guess-${i}` }, { from, headers: forged(i) }));
			assert.equal(r.status, 401, `guess ${i + 1} on worker ${w}: ${r.status} ${r.text}`);
			assert.equal(Number(r.headers.get('ratelimit-remaining')), LIMIT - i - 1, `guess ${i + 1}: one budget, shared by every worker`);
		}
		assertLimited(await login({ username: victim.username, password: victim.password }, { from, headers: forged(99) }), 'the right password');
		assertLimited(
			await login({ username: victim.username, password: victim.password }, { from, path: '/auth/login' }),
			'the /auth/login alias',
		);
		assertLimited(
			await rawRequest('POST', `${HTTP_URL}/api/auth/register`, { body: { username: uniqueName('bfreg'), password: 'password1' }, localAddress: from }),
			'registering',
		);
		const { rows } = await db().query(`SELECT hits FROM rate_limits WHERE key = $1`, [`auth:ip:${from}`]);
		assert.ok(rows[0]?.hits > LIMIT, `counted on the address nginx saw (${from})`);

		// Another client is not affected.
		const other = await login({ username: victim.username, password: victim.password }, { from: randomLoopback() });
		assert.equal(other.status, 200, other.text);
	});

	test('behind the trusted proxy: what the attacker writes in front of X-Forwarded-For is not believed', async () => {
		const client = randomClientIp(); // what the trusted proxy (127.0.0.1) appends
		for (let i = 0; i < LIMIT; i++) {
			const r = await login(
				{ username: uniqueName('guess'), password: 'nope-nope' },
				{ headers: { 'x-forwarded-for': `${randomClientIp()}, ${randomClientIp()}, ${client}`, 'x-real-ip': randomClientIp() } },
			);
			assert.equal(r.status, 401, `guess ${i + 1}: ${r.text}`);
		}
		assertLimited(
			await login({ username: victim.username, password: victim.password }, { headers: { 'x-forwarded-for': `${randomClientIp()}, ${client}` } }),
			'the right password from the same client',
		);
	});

	test('the budget comes back when the window ends', async () => {
		const from = randomLoopback();
		for (let i = 0; i < LIMIT; i++) await login({ username: victim.username, password: 'wrong-password' }, { from });
		const limited = await login({ username: victim.username, password: victim.password }, { from });
		assertLimited(limited, 'at the limit');
		await sleep(Number(limited.headers.get('retry-after')) * 1000 + 500);
		const r = await login({ username: victim.username, password: victim.password }, { from });
		assert.equal(r.status, 200, `after Retry-After: ${r.text}`);
		assert.equal(typeof r.json.access_token, 'string');
	});
});
