// caps.test.mjs: the gateway's streams count against the same
// concurrent-stream caps as chatd's (streams_per_anon per address,
// streams_per_user per user; stream_slots in PostgreSQL): past the cap the
// seed's error event says so, another address is served meanwhile, and the
// slots come back when the streams end.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import { LIMITS, closeDb, db } from '../e2e/lib.mjs';
import { collect001, collect003, connect, freshIp, until } from './lib.mjs';

after(closeDb);

const HOLD = 'hold [[tokens=400]] [[delay=50]]';   // ~20 s unless its socket leaves

async function slotsOf(holder) {
	const { rows } = await db().query('SELECT count(*)::int AS n FROM stream_slots WHERE holder = $1', [holder]);
	return rows[0].n;
}

/** Opens n sockets from ip; each starts one stream with start(socket). */
async function openMany(n, ip, start) {
	const sockets = await Promise.all(Array.from({ length: n }, () => connect({ ip, transports: ['websocket'] })));
	const ends = sockets.map((s) => start(s));
	return { sockets, ends };
}

describe('stream caps on the gateway', { skip: LIMITS.streamsAnon <= 0 && 'streams_per_anon is 0' }, () => {
	const cap = LIMITS.streamsAnon;

	test('seed 001: one address past its cap gets stream-error; another is served; the slots come back', { timeout: 60000 }, async () => {
		const ip = freshIp();
		const { sockets, ends } = await openMany(cap + 1, ip, (s) => {
			const done = collect001(s, { timeout: 45000 });
			s.emit('stream-chat', { messages: [{ role: 'user', content: HOLD }] });
			return done;
		});
		try {
			// The refused one ends at once; the others hold their slots.
			const first = await Promise.race(ends);
			assert.ok(first.error, `the first stream to end was refused: ${JSON.stringify(first.events.slice(-2))}`);
			assert.match(first.error.error, /Too many streams/);
			await until(async () => (await slotsOf(`ip:${ip}`)) === cap, { what: `${cap} slots held` });

			const neighbour = await connect({ transports: ['websocket'] });
			try {
				const done = collect001(neighbour, { timeout: 20000 });
				neighbour.emit('stream-chat', { messages: [{ role: 'user', content: 'hi [[tokens=3]]' }] });
				const s = await done;
				assert.equal(s.error, undefined, `neighbour served: ${JSON.stringify(s.error)}`);
				assert.equal(s.complete.fullResponse, 't0 t1 t2');
			} finally {
				neighbour.close();
			}
		} finally {
			for (const s of sockets) s.close();
		}
		// A lone socket that leaves stops its reply: the slots come back.
		await until(async () => (await slotsOf(`ip:${ip}`)) === 0, { timeout: 20000, what: 'the slots back' });
		const again = await connect({ ip, transports: ['websocket'] });
		try {
			const done = collect001(again, { timeout: 20000 });
			again.emit('stream-chat', { messages: [{ role: 'user', content: 'again [[tokens=2]]' }] });
			const s = await done;
			assert.equal(s.error, undefined, `served again once its streams ended: ${JSON.stringify(s.error)}`);
		} finally {
			again.close();
		}
	});

	test('seed 003: past the cap ai:error, and no message is stored for the refused one', { timeout: 60000 }, async () => {
		const ip = freshIp();
		const marker = `cap003-${Date.now().toString(36)}`;
		const { sockets, ends } = await openMany(cap + 1, ip, (s) => {
			const done = collect003(s, { timeout: 45000 });
			s.emit('ai:chat', { message: `${marker} ${HOLD}` });
			return done;
		});
		try {
			const first = await Promise.race(ends);
			assert.ok(first.error, 'the first to end was refused');
			assert.match(JSON.stringify(first.error), /Too many streams/);
			await until(async () => (await slotsOf(`ip:${ip}`)) === cap, { what: `${cap} slots held` });
			const { rows } = await db().query(
				"SELECT count(*)::int AS n FROM messages WHERE role = 'user' AND content LIKE $1", [`${marker}%`]);
			assert.equal(rows[0].n, cap, 'the refused turn stored nothing');
		} finally {
			for (const s of sockets) s.close();
		}
	});
});
