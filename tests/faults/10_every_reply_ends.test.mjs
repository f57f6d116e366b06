// 10_every_reply_ends.test.mjs: issue 14 part 3, no reply stays 'streaming'.
// A reply's owner (a chatd worker or a gateway, "host:pid" in its row) may
// die or stop without ending it; the sweep (core/sweep.c: the chatd master
// every 5 s, each gateway at start-up) marks such replies interrupted, and
// the heartbeats in `processes` tell it which owners are alive.
// - an owner on another host whose heartbeat stopped: swept; one that beats: kept;
// - cancel of a reply whose owner is gone: 409, and the row is ended;
// - a gateway killed with SIGKILL mid-reply;
// - a worker killed with SIGKILL while PostgreSQL is down;
// - a SIGHUP reload, a max_requests recycle and a gateway's SIGTERM while
//   PostgreSQL is down: the exiting processes spool the endings the database refused (spool_dir), and
//   the sweep stores them once it is back.
// After recovery each reply is complete with its whole text, or interrupted
// holding a prefix of it, within a bounded time.
import assert from 'node:assert/strict';
import { existsSync, readdirSync } from 'node:fs';
import { hostname } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
	CHATD,
	HTTP_URL,
	SESSIONS,
	chatdMasterPid,
	chatdWorkerPids,
	closeDb,
	continueWorkers,
	createSession,
	db,
	dbReply,
	dbTolerant,
	mapConcurrent,
	nonce,
	openStream,
	rawRequest,
	registerAndLogin,
	replyWorkerPid,
	restartChatd,
	sleep,
	stackCtl,
	streamInBackground,
	tokensText,
	waitFor,
	waitHealthy,
	waitReplyEnd,
	withTimeout,
} from '../e2e/lib.mjs';

const EXTERNAL = Boolean(process.env.CHAT_TEST_DATABASE_URL);
// The master sweeps every 5 s (and every second while PostgreSQL refuses):
// a reply of a dead owner ends within this, counted from recovery.
const SWEPT_MS = 12000;

/** The endings waiting in the test instance's spool (scripts/lib.sh SPOOL_DIR). */
function spoolFiles() {
	const dir = join(process.env.CHAT_VAR, 'spool');
	return existsSync(dir) ? readdirSync(dir).filter((f) => !f.startsWith('.')) : [];
}

let user;
before(async () => {
	dbTolerant();
	await waitHealthy();
	user = await registerAndLogin('ends');
});
after(async () => {
	continueWorkers();
	if (!EXTERNAL) await stackCtl('pg_start');
	await waitHealthy().catch(() => {});
	await closeDb();
});

/** A 'streaming' reply row owned by worker, as a dead process leaves it. */
async function fakeReply(sessionId, worker, { ageS = 0 } = {}) {
	const { rows } = await db().query(
		`INSERT INTO messages (session_id, role, content, status, worker, chunk_ends, created_at, updated_at)
		 VALUES ($1, 'assistant', 'half a', 'streaming', $2, '{4,6}',
		         now() - make_interval(secs => $3), now() - make_interval(secs => $3))
		 RETURNING id::text`,
		[sessionId, worker, ageS],
	);
	return rows[0].id;
}

/** Opens a seed-000 stream in the background; resolves once it started. */
async function startStream(content) {
	const session = await createSession(user.token);
	const s = streamInBackground((signal) => openStream(user.token, session.id, content, { signal }));
	const first = await withTimeout(s.started, 10000, 'the start event');
	assert.equal(first?.json?.type, 'start', `the stream started: ${JSON.stringify(first)}`);
	s.session = session;
	s.replyId = first.json.message_id;
	return s;
}

/** The gateway gw's reply in flight: its owner id and its row ({id}). */
async function gatewayReply(gw, until) {
	const worker = `gw:${hostname()}:${gw.proc.pid}`; // gateway/gateway_main.c
	const row = await until(async () => {
		const { rows } = await db().query(
			`SELECT id::text FROM messages WHERE worker = $1 AND status = 'streaming'`, [worker]);
		return rows[0];
	}, { what: 'the gateway\'s reply row' });
	return { worker, row };
}

/** Each row ended: complete with all of full, or interrupted with a prefix of it. */
async function assertEnded(replyIds, full, what) {
	const t0 = performance.now();
	const rows = [];
	for (const id of replyIds) rows.push(await waitReplyEnd(id, Math.max(1000, SWEPT_MS - (performance.now() - t0))));
	for (const row of rows) {
		assert.ok(['complete', 'interrupted'].includes(row.status), `${what}: reply ${row.id} ${row.status}`);
		if (row.status === 'complete') assert.equal(row.content, full, `${what}: a complete reply is whole`);
		else {
			assert.equal(row.error, 'worker_died', what);
			assert.ok(full.startsWith(row.content), `${what}: an interrupted reply keeps a prefix`);
		}
	}
	return rows;
}

describe('owners on another host, by heartbeat', () => {
	test('a silent owner\'s reply is swept; one that beats keeps it', async () => {
		const session = await createSession(user.token);
		const dead = `gone-${nonce('h')}.invalid:4242`;
		const live = `live-${nonce('h')}.invalid:4343`;
		const old = await fakeReply(session.id, dead, { ageS: 120 });
		const kept = await fakeReply((await createSession(user.token)).id, live, { ageS: 120 });
		for (const [id, beat] of [[dead, '2 minutes'], [live, '0 seconds']])
			await db().query(
				`INSERT INTO processes (id, host, pid, kind, proc_start, started_at, heartbeat_at)
				 VALUES ($1, split_part($1, ':', 1), 1, 'worker', 1, now() - interval '1 hour', now() - $2::interval)`,
				[id, beat],
			);
		// The live one keeps beating while the master sweeps.
		const beating = setInterval(() => {
			db().query('UPDATE processes SET heartbeat_at = now() WHERE id = $1', [live]).catch(() => {});
		}, 500);
		try {
			// Its database may have just restarted (an earlier test): the
			// heartbeat rule waits until it has been up for a while.
			const row = await waitReplyEnd(old, 30000);
			assert.equal(row.status, 'interrupted');
			assert.equal(row.error, 'worker_died');
			assert.equal(row.content, 'half a', 'the stored text is kept');
			const { rows } = await db().query('SELECT count(*)::int AS n FROM processes WHERE id = $1', [dead]);
			assert.equal(rows[0].n, 0, 'the dead owner is forgotten');
			// The sweep that took the silent one weighed the beating one too.
			assert.equal((await dbReply(kept)).status, 'streaming', 'a beating owner keeps its reply');
		} finally {
			clearInterval(beating);
			await db().query(`UPDATE messages SET status = 'interrupted' WHERE id = $1`, [kept]);
			await db().query('DELETE FROM processes WHERE id = $1', [live]);
		}
	});
});

describe('cancel of a generation that no longer runs', () => {
	test('409, and the reply is ended in the database; a resume then ends as stored', async () => {
		const session = await createSession(user.token);
		// A pid of this host that is surely not alive.
		const id = await fakeReply(session.id, `${hostname()}:${2 ** 22 + 17}`);
		const c = await rawRequest('POST', `${HTTP_URL}${SESSIONS}/${session.id}/cancel`, { token: user.token });
		assert.equal(c.status, 409, c.text);
		const row = await waitReplyEnd(id, 2000);
		assert.equal(row.status, 'interrupted');
		assert.equal(row.error, 'worker_died');
		const r = await rawRequest('GET', `${HTTP_URL}${SESSIONS}/${session.id}/stream`, { token: user.token });
		assert.equal(r.status, 200);
		const data = r.text.split('\n').filter((l) => l.startsWith('data:')).map((l) => JSON.parse(l.slice(5)));
		assert.equal(data.at(-1)?.type, 'error', r.text);
		assert.equal(data.at(-1).code, 'worker_died', 'the ending the database holds');
	});
});

describe('gateway kill -9 mid-reply', { skip: !process.env.CHAT_GATEWAY_BIN && 'no gateway' }, () => {
	test('its reply ends interrupted: swept by the master, or by the next gateway at start-up', async () => {
		const { connect, startGateway, until } = await import('../gateway/lib.mjs');
		const gw = await startGateway();
		let socket;
		try {
			socket = await connect({ url: gw.url, transports: ['websocket'] });
			const first = new Promise((resolve) => socket.once('ai:stream', resolve));
			socket.emit('ai:chat', { message: `${nonce('gwk')} [[tokens=400]] [[delay=25]]`, token: user.token });
			await withTimeout(first, 10000, 'the first ai:stream');
			const { worker, row } = await gatewayReply(gw, until);
			const beat = await db().query(`SELECT kind FROM processes WHERE id = $1`, [worker]);
			assert.equal(beat.rows[0]?.kind, 'gateway', 'the gateway registered its heartbeat');
			await sleep(1200); // a batch or two stored
			gw.proc.kill('SIGKILL');
			await gw.stop();
			const t0 = performance.now();
			// The start-up sweep of a gateway that comes up next ends it at
			// once; without one, the master's periodic sweep would.
			const next = await startGateway();
			try {
				const end = await waitReplyEnd(row.id, SWEPT_MS);
				assert.equal(end.status, 'interrupted');
				assert.equal(end.error, 'worker_died');
				assert.ok(tokensText(400).startsWith(end.content), 'a prefix of the reply is kept');
				assert.ok(performance.now() - t0 < SWEPT_MS);
			} finally {
				await next.stop();
			}
		} finally {
			socket?.close();
			if (gw.proc.exitCode === null && gw.proc.signalCode === null) gw.proc.kill('SIGKILL');
		}
	});
});

describe('with PostgreSQL down', { skip: EXTERNAL && 'CHAT_TEST_DATABASE_URL: not our cluster to stop' }, () => {
	test('a worker killed with SIGKILL: its reply is interrupted once the database is back', async () => {
		const s = await startStream(`${nonce('wk')} [[tokens=200]] [[delay=25]]`);
		const victim = await replyWorkerPid(s.replyId);
		await waitFor(async () => (await dbReply(s.replyId)).chunks >= 1, { what: 'a stored batch' });
		await stackCtl('pg_stop');
		try {
			process.kill(victim, 'SIGKILL');
			await withTimeout(s.done, 10000, 'the end of the cut stream');
			await sleep(1500); // the master's interrupt fails meanwhile
		} finally {
			await stackCtl('pg_start');
		}
		const [row] = await assertEnded([s.replyId], tokensText(200), 'killed worker');
		assert.equal(row.status, 'interrupted');
		await waitHealthy();
	});

	async function streamsThen(what, n, disrupt) {
		const TOKENS = 60; // 3 s: they end while PostgreSQL is down
		const streams = await mapConcurrent(Array.from({ length: n }), n, () =>
			startStream(`${nonce('pd')} [[tokens=${TOKENS}]] [[delay=50]]`));
		await sleep(300);
		await stackCtl('pg_stop');
		try {
			await disrupt();
			// The streams end (the clients get them whole) and their
			// workers exit with endings the database did not take.
			for (const s of streams) await withTimeout(s.done, 15000, `${what}: a stream`);
			await sleep(2500);
		} finally {
			await stackCtl('pg_start');
		}
		const rows = await assertEnded(streams.map((s) => s.replyId), tokensText(TOKENS), what);
		await waitHealthy();
		return rows;
	}

	// The clients got these replies whole; their workers exit while the
	// database is down, spool the endings (spool_dir), and the sweep
	// stores them once it is back: complete and whole, not cut short.
	const assertStoredWhole = (rows, what) => {
		for (const row of rows) assert.equal(row.status, 'complete', `${what}: reply ${row.id} (${row.error})`);
	};

	test('a SIGHUP reload: every reply is stored whole once the database is back (spooled endings)', async () => {
		const rows = await streamsThen('reload', 4, async () => {
			process.kill(chatdMasterPid(), 'SIGHUP');
		});
		assertStoredWhole(rows, 'reload');
		await waitFor(() => spoolFiles().length === 0, { what: `an empty spool (${spoolFiles()})` });
	});

	test('a gateway stopped (SIGTERM): its reply, sent whole, is stored whole once the database is back (spooled)',
		{ skip: !process.env.CHAT_GATEWAY_BIN && 'no gateway' }, async () => {
			const { connect, startGateway, until } = await import('../gateway/lib.mjs');
			// The chatd master's spool: its sweep stores what the gateway leaves.
			const gw = await startGateway({ CHAT_SPOOL_DIR: join(process.env.CHAT_VAR, 'spool') });
			const TOKENS = 60;
			let socket;
			try {
				socket = await connect({ url: gw.url, transports: ['websocket'] });
				const first = new Promise((resolve) => socket.once('ai:stream', resolve));
				const complete = new Promise((resolve) => socket.once('ai:complete', resolve));
				socket.emit('ai:chat', { message: `${nonce('gws')} [[tokens=${TOKENS}]] [[delay=50]]`, token: user.token });
				await withTimeout(first, 10000, 'the first ai:stream');
				const { row } = await gatewayReply(gw, until);
				await stackCtl('pg_stop');
				try {
					const done = await withTimeout(complete, 15000, 'ai:complete');
					assert.equal(done.response, tokensText(TOKENS), 'the client got the reply whole');
					assert.equal(await withTimeout(gw.stop(), 15000, 'the gateway exit'), 0, gw.log());
					assert.match(gw.log(), /spooled/, 'the gateway spooled the ending');
				} finally {
					await stackCtl('pg_start');
				}
				const end = await waitReplyEnd(row.id, SWEPT_MS);
				assert.equal(end.status, 'complete');
				assert.equal(end.content, tokensText(TOKENS));
			} finally {
				socket?.close();
				if (gw.proc.exitCode === null && gw.proc.signalCode === null) gw.proc.kill('SIGKILL');
			}
		});

	test('a max_requests recycle: every reply is stored whole once the database is back (spooled endings)', async () => {
		const MAX = 40;
		await restartChatd({ CHAT_MAX_REQUESTS: String(MAX) });
		try {
			const before = chatdWorkerPids();
			const rows = await streamsThen('recycle', 4, async () => {
				// Enough requests for every worker to reach its limit.
				for (let i = 0; i < 4 && before.some((p) => chatdWorkerPids().includes(p)); i++)
					await mapConcurrent(Array.from({ length: MAX * CHATD.workers }), 8, () =>
						rawRequest('GET', `${HTTP_URL}/healthz`, { timeout: 5000 }).catch(() => null));
			});
			assertStoredWhole(rows, 'recycle');
		} finally {
			await restartChatd();
		}
	});
});
