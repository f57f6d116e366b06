// ratelimit_sweep.test.mjs: expired rate-limit counters are deleted by
// the chatd master's periodic sweep, by time, with no traffic at all
// (they used to wait for a worker's 1,000th limited request).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, test } from 'node:test';

import { closeDb, db, waitFor } from './lib.mjs';

after(closeDb);

test('a counter whose window ended long ago goes; a current one stays', async () => {
	const tag = crypto.randomBytes(6).toString('hex');
	const stale = `chat:ip:sweep-stale-${tag}`;
	const fresh = `chat:ip:sweep-fresh-${tag}`;
	await db().query(
		`INSERT INTO rate_limits (key, window_start, hits)
		 VALUES ($1, now() - interval '3 days', 7), ($2, now(), 1)`,
		[stale, fresh],
	);
	// The sweep runs every 5 s (SWEEP_INTERVAL_S); a loaded machine may
	// delay it a little.
	await waitFor(
		async () => (await db().query('SELECT 1 FROM rate_limits WHERE key = $1', [stale])).rows.length === 0,
		{ timeout: 20000, interval: 200, what: 'the stale counter to be swept' },
	);
	const { rows } = await db().query('SELECT hits FROM rate_limits WHERE key = $1', [fresh]);
	assert.deepEqual(rows, [{ hits: 1 }], 'the counter of the current window is kept');
	await db().query('DELETE FROM rate_limits WHERE key = $1', [fresh]);
});
