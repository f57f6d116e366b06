// 12_metrics_retention.test.mjs: issue 15, stream_metrics partitioned by
// UTC day with a retention (metrics_retention_days, default 30) that the
// chatd master applies at start-up, after a reload and hourly; usage is
// rolled up per user and day (usage_daily), so usage_by_user and the daily
// budget stay right once the rows they came from are dropped.
// - the coming week's partitions exist;
// - a day partition older than the retention is dropped whole, rows of
//   days within it are kept;
// - usage_by_user still counts the dropped rows, and today's real stream;
// - a shorter retention (restart with CHAT_METRICS_RETENTION_DAYS) drops more;
// - a row dated where no partition exists is kept (default partition).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
	closeDb,
	createSession,
	db,
	dbTolerant,
	registerAndLogin,
	restartChatd,
	streamTurn,
	waitFor,
	waitHealthy,
} from '../e2e/lib.mjs';

let user;
before(async () => {
	dbTolerant();
	await waitHealthy();
	user = await registerAndLogin('retain');
});
after(async () => {
	await restartChatd();
	await closeDb();
});

/** The partition of day (UTC) `daysAgo` days ago, by its name. */
async function partitionName(daysAgo) {
	const { rows } = await db().query(
		`SELECT 'stream_metrics_p' || to_char((now() AT TIME ZONE 'UTC')::date - $1::int, 'YYYYMMDD') AS name`,
		[daysAgo],
	);
	return rows[0].name;
}

async function exists(name) {
	const { rows } = await db().query('SELECT to_regclass($1) IS NOT NULL AS e', [name]);
	return rows[0].e;
}

/** Metrics rows of the user `daysAgo` days ago, as a worker would have recorded them then. */
async function recordOld(daysAgo, prompt, completion) {
	await db().query(
		`INSERT INTO stream_metrics (route, user_id, status, duration_ms, prompt_tokens, completion_tokens, created_at)
		 VALUES ('retention_test', $1, 'complete', 1, $2, $3, now() - make_interval(days => $4))`,
		[user.userId, prompt, completion, daysAgo],
	);
}

async function usage() {
	const { rows } = await db().query(
		`SELECT count(*)::int AS days, sum(requests)::int AS requests, sum(prompt_tokens)::int AS p,
		        sum(completion_tokens)::int AS c
		   FROM usage_by_user WHERE user_id = $1`,
		[user.userId],
	);
	return rows[0];
}

async function rowsOfUser() {
	const { rows } = await db().query('SELECT count(*)::int AS n FROM stream_metrics WHERE user_id = $1', [user.userId]);
	return rows[0].n;
}

describe('stream_metrics retention and the daily usage rollup', () => {
	test('the master keeps a week of partitions ahead', async () => {
		for (const d of [0, -1, -7]) assert.ok(await exists(await partitionName(d)), `the partition of today + ${-d} days`);
	});

	test('a partition past the retention is dropped whole; usage_by_user still counts it', async () => {
		// A real stream today: its row comes from a worker.
		const session = await createSession(user.token);
		const turn = await streamTurn(user.token, session.id, 'hello [[tokens=5]]');
		assert.equal(turn.done?.status, 'complete');
		await waitFor(async () => (await rowsOfUser()) === 1, { what: 'the stream’s metrics row' });

		// The day partition 40 days ago, as the job made it then, with rows.
		const old = await partitionName(40);
		const { rows: made } = await db().query(
			`SELECT stream_metrics_partition_create((now() AT TIME ZONE 'UTC')::date - 40) AS made`,
		);
		assert.equal(made[0].made, true);
		await recordOld(40, 1000, 2000);
		await recordOld(40, 10, 20);
		await recordOld(10, 100, 200);   // no partition that day: the default one
		const before = await usage();
		assert.equal(before.requests, 4);
		assert.equal(await rowsOfUser(), 4);

		await restartChatd();   // the retention runs at start-up (default 30 days)
		await waitFor(async () => !(await exists(old)), { timeout: 20000, what: `${old} to be dropped` });

		assert.equal(await rowsOfUser(), 2, 'today’s row and the one 10 days ago are kept');
		assert.deepEqual(await usage(), before, 'usage_by_user counts the dropped rows still');
		const { rows } = await db().query(
			`SELECT prompt_tokens::int AS p, completion_tokens::int AS c FROM usage_by_user
			  WHERE user_id = $1 AND day = date_trunc('day', now() AT TIME ZONE 'UTC') AT TIME ZONE 'UTC' - interval '40 days'`,
			[user.userId],
		);
		assert.deepEqual(rows[0], { p: 1010, c: 2020 }, 'the dropped day, summed');
	});

	test('a shorter metrics_retention_days drops more at the next start; usage stays', async () => {
		const before = await usage();
		await restartChatd({ CHAT_METRICS_RETENTION_DAYS: '5' });
		await waitFor(async () => (await rowsOfUser()) === 1, { timeout: 20000, what: 'the row 10 days old to be deleted' });
		assert.deepEqual(await usage(), before);
		// Today's stream (the budget's day) is untouched.
		const { rows } = await db().query(
			`SELECT count(*)::int AS n FROM stream_metrics WHERE user_id = $1 AND created_at > now() - interval '1 day'`,
			[user.userId],
		);
		assert.equal(rows[0].n, 1);
	});
});
