// readyz.test.mjs: SPEC §7 and issue 5: GET /readyz reports whether the
// database and the upstream are reachable, from a short cached probe, while
// GET /healthz only says that the process is up.
//
// PostgreSQL of the test instance is stopped here and started again. The
// other files run after this one on the same instance, so PostgreSQL is
// restarted in an after hook whatever happens, and the file ends only once
// chatd serves database-backed requests again on every worker.
//
// The cluster is found as scripts/lib.sh lays it out (pg_paths): data in
// $CHAT_VAR/pg (or where that links to), run as the `postgres` OS user when
// root. With CHAT_TEST_DATABASE_URL (an external database) there is nothing
// to stop and the test is skipped.
import assert from 'node:assert/strict';
import { existsSync, lstatSync, readdirSync, realpathSync } from 'node:fs';
import path from 'node:path';
import { after, describe, test } from 'node:test';

import {
	CHAT_VAR,
	DATABASE_URL,
	HTTP_URL,
	LOG_DIR,
	api,
	assertJsonError,
	mapConcurrent,
	rawRequest,
	registerAndLogin,
	run,
	sleep,
	waitFor,
} from './lib.mjs';

// Connections at once when checking that every worker agrees.
const FANOUT = 16;

/** The local cluster: {data, log, pgCtl} or {skip: why}. */
function localCluster() {
	if (process.env.CHAT_TEST_DATABASE_URL) return { skip: 'CHAT_TEST_DATABASE_URL: an external database' };
	let port;
	try {
		port = new URL(DATABASE_URL).port;
	} catch {
		return { skip: `DATABASE_URL is not a URL: cannot tell its cluster` };
	}
	if (process.env.CHAT_PG_PORT && port !== process.env.CHAT_PG_PORT)
		return { skip: `DATABASE_URL (port ${port}) is not the local cluster (port ${process.env.CHAT_PG_PORT})` };
	const link = path.join(CHAT_VAR, 'pg');
	let data = link;
	let log = path.join(LOG_DIR, 'postgresql.log');
	try {
		if (lstatSync(link).isSymbolicLink()) {
			const base = path.dirname(realpathSync(link));
			data = path.join(base, 'pg');
			log = path.join(base, 'postgresql.log');
		}
	} catch {
		return { skip: `no cluster at ${link}` };
	}
	if (!existsSync(path.join(data, 'PG_VERSION'))) return { skip: `no cluster in ${data}` };
	// The newest installed server, as scripts/lib.sh picks it (pg_bindir).
	const root = '/usr/lib/postgresql';
	const versions = existsSync(root)
		? readdirSync(root)
				.filter((v) => existsSync(path.join(root, v, 'bin/pg_ctl')))
				.sort((a, b) => Number(a) - Number(b))
		: [];
	if (versions.length === 0) return { skip: `no pg_ctl under ${root}` };
	return { data, log, pgCtl: path.join(root, versions.at(-1), 'bin/pg_ctl') };
}

const pg = localCluster();

/** pg_ctl ARGS as the cluster's OS user (postgres when we are root). */
function pgCtl(args, timeout = 90000) {
	const root = typeof process.getuid === 'function' && process.getuid() === 0;
	return root
		? run('runuser', ['-u', 'postgres', '--', pg.pgCtl, ...args], { cwd: '/', timeout })
		: run(pg.pgCtl, args, { cwd: '/', timeout });
}

const pgRunning = async () => (await pgCtl(['status', '-D', pg.data])).code === 0;

async function pgStop() {
	const r = await pgCtl(['stop', '-w', '-t', '60', '-m', 'fast', '-D', pg.data]);
	assert.equal(r.code, 0, `pg_ctl stop: ${r.stdout}${r.stderr}`);
}

/** Starts the cluster; retries while its port is still held (TIME_WAIT), like scripts/lib.sh. */
async function pgStart() {
	const deadline = Date.now() + 75000;
	for (;;) {
		if (await pgRunning()) return;
		const r = await pgCtl(['start', '-w', '-t', '60', '-D', pg.data, '-l', pg.log]);
		if (r.code === 0) return;
		if (Date.now() > deadline) throw new Error(`pg_ctl start failed: ${r.stdout}${r.stderr}`);
		await sleep(2000);
	}
}

const readyz = () => rawRequest('GET', `${HTTP_URL}/readyz`, { timeout: 15000 });

/** FANOUT /readyz requests at once, each on its own connection (so several workers answer). */
const readyzAll = () => mapConcurrent(Array.from({ length: FANOUT }), FANOUT, readyz);

/** The /readyz body: {status, database, upstream}, JSON. */
function assertReadyz(r, ready, database, what) {
	assert.equal(r.status, ready ? 200 : 503, `${what}: ${r.status} ${r.text}`);
	assert.match(r.headers.get('content-type') ?? '', /^application\/json/, what);
	assert.equal(r.json?.status, ready ? 'ready' : 'unready', `${what}: ${r.text}`);
	assert.equal(r.json?.database, database, `${what}: database`);
	assert.equal(r.json?.upstream, true, `${what}: the upstream stays reachable`);
}

/** Until chatd answers database-backed requests on every worker again. */
async function waitServing(token) {
	await waitFor(async () => (await readyzAll()).every((r) => r.status === 200), {
		timeout: 30000,
		interval: 250,
		what: 'every worker to report ready',
	});
	if (token) {
		await waitFor(
			async () => {
				const rs = await mapConcurrent(Array.from({ length: FANOUT }), FANOUT, () =>
					rawRequest('GET', `${HTTP_URL}/api/auth/me`, { token }),
				);
				return rs.every((r) => r.status === 200);
			},
			{ timeout: 30000, interval: 250, what: 'authenticated requests to succeed again' },
		);
	}
}

describe('GET /readyz follows PostgreSQL', { skip: pg.skip ?? false }, () => {
	let stopped = false;
	let user;

	after(async () => {
		if (stopped || !(await pgRunning())) {
			await pgStart();
			stopped = false;
		}
		await waitServing(user?.token);
	});

	test('ready while PostgreSQL and the upstream answer; /healthz is only the process', async () => {
		user = await registerAndLogin('readyz');
		for (const r of await readyzAll()) assertReadyz(r, true, true, 'before');
		const tls = await api('GET', '/readyz');
		assert.equal(tls.status, 200, 'over HTTPS too');
		const h = await api('GET', '/healthz');
		assert.equal(h.status, 200);
		assert.deepEqual(h.json, { status: 'ok' });
	});

	test('PostgreSQL stopped: /readyz turns unready on every worker within its short cache, /healthz stays 200', { timeout: 120000 }, async () => {
		assert.ok(user, 'the first test registered a user');
		stopped = true;
		await pgStop();
		const tStopped = Date.now();
		const first = await waitFor(async () => {
			const r = await readyz();
			return r.status === 503 ? r : null;
		}, {
			timeout: 15000,
			interval: 100,
			what: '/readyz to turn unready',
		});
		assertReadyz(first, false, false, 'first unready answer');
		// The probe is cached a short while per worker: a few seconds after
		// the stop, no worker may still say ready.
		await sleep(Math.max(0, tStopped + 4000 - Date.now()));
		for (const r of await readyzAll()) assertReadyz(r, false, false, '4 s after the stop');

		// Liveness does not depend on the database.
		const h = await rawRequest('GET', `${HTTP_URL}/healthz`);
		assert.equal(h.status, 200);
		// Database-backed routes fail cleanly: 503 JSON, not a hang or a 500.
		assertJsonError(await api('GET', '/api/auth/me', { token: user.token }), 503, 'an authenticated route');
		const chat = await api('POST', '/api/chat', { body: { message: 'x [[tokens=1]]' }, headers: { 'x-forwarded-for': '198.18.0.77' } });
		assertJsonError(chat, 503, 'a rate-limited route (the counters live in PostgreSQL)');
	});

	test('PostgreSQL back: ready again, and chatd serves on every worker without a restart', { timeout: 150000 }, async () => {
		assert.ok(user, 'the first test registered a user');
		await pgStart();
		stopped = false;
		const back = await waitFor(async () => {
			const r = await readyz();
			return r.status === 200 ? r : null;
		}, {
			timeout: 15000,
			interval: 100,
			what: '/readyz to turn ready',
		});
		assertReadyz(back, true, true, 'first ready answer');
		await sleep(3000);
		for (const r of await readyzAll()) assertReadyz(r, true, true, 'a few seconds after the start');
		// The connections broken by the restart are reopened on first use:
		// no request fails for it.
		const rs = await mapConcurrent(Array.from({ length: 4 * FANOUT }), FANOUT, () =>
			rawRequest('GET', `${HTTP_URL}/api/auth/me`, { token: user.token }),
		);
		assert.deepEqual([...new Set(rs.map((r) => r.status))], [200], 'every authenticated request succeeds');
		const fresh = await registerAndLogin('readyz_after');
		const chat = await api('POST', '/api/chat', { token: fresh.token, body: { message: 'again [[tokens=2]]' } });
		assert.equal(chat.status, 200, chat.text);
		assert.equal(chat.json.reply, 't0 t1');
		await waitServing(user.token);
	});
});
