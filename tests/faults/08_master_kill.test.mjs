// 08_master_kill.test.mjs: chatd's master killed with SIGKILL (the OOM
// killer, an operator's kill -9). Nothing can respawn the pool then, and
// nobody will ever stop workers that outlive it: they must notice that
// their master is gone, finish what they serve and exit, so that a restart
// starts the only pool (no second set of PostgreSQL connections, no
// workers answering on an unlinked socket).
//
// The instance is restored at the end whatever happens: leftover workers
// of the killed master are SIGKILLed by pid and chatd is started again.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
	CHATD,
	checkSeed000,
	chatdMasterPid,
	chatdWorkerPids,
	closeDb,
	createSession,
	nonce,
	openStream,
	pgChatdConnections,
	procAlive,
	registerAndLogin,
	sleep,
	stackCtl,
	streamInBackground,
	tokensText,
	waitFor,
	waitHealthy,
	withTimeout,
} from '../e2e/lib.mjs';

let user;
let orphans = [];
before(async () => {
	await waitHealthy();
	user = await registerAndLogin('mk');
});
after(async () => {
	for (const pid of orphans) {
		try {
			if (procAlive(pid)) process.kill(pid, 'SIGKILL');
		} catch {
			// gone
		}
	}
	await sleep(300);
	await stackCtl('chatd_start');
	await waitHealthy().catch(() => {});
	await closeDb();
});

describe('kill -9 the master', () => {
	// FINDING (reported; left failing on purpose until chatd is fixed): the
	// workers of a master killed with SIGKILL run on for good, re-parented to
	// init, still accepting on the socket they inherited and holding their
	// PostgreSQL connections; chatd_start then starts a second pool beside
	// them (pool.c sets no PR_SET_PDEATHSIG, and workers never check
	// getppid()).
	test('its workers finish their in-flight streams and exit on their own', async (t) => {
		const master = chatdMasterPid();
		orphans = chatdWorkerPids();
		assert.equal(orphans.length, CHATD.workers);
		const session = await createSession(user.token);
		const s = streamInBackground((signal) => openStream(user.token, session.id, `${nonce('mk')} [[tokens=20]] [[delay=100]]`, { signal }));
		await withTimeout(s.started, 10000, 'the start event');
		const pgBefore = await pgChatdConnections();
		process.kill(master, 'SIGKILL');
		const res = await withTimeout(s.done, 15000, 'the in-flight stream');
		const parsed = checkSeed000(res.events);
		assert.ok(parsed.done, 'the in-flight stream completed');
		assert.equal(parsed.text, tokensText(20));
		let gone = true;
		try {
			await waitFor(() => orphans.every((p) => !procAlive(p)), { timeout: 10000, interval: 100, what: 'the workers to exit' });
		} catch {
			gone = false;
		}
		const left = orphans.filter((p) => procAlive(p));
		t.diagnostic(`${left.length} of ${orphans.length} workers still running 10 s after their master died; chatd held ${pgBefore} PostgreSQL connections`);
		assert.ok(gone, `workers ${left} outlived their master`);
	});
});
