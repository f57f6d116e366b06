// rooms.test.mjs: room ownership (issue 14, part 1) with the stock
// socket.io-client. A room that an authenticated user streams into (POST
// /openai/chatCompletion/stream/start, or stream-chat on a socket
// authenticated by a token) is that user's: only sockets authenticated as
// them (CONNECT auth or a token in join-room) join it or stream into it;
// the others, anonymous ones included, are removed with stream-error
// {error, roomName} before the owner's stream starts, in every gateway
// process; another user's stream/start gets 403 JSON. Rooms that only
// anonymous sockets use keep seed 001's flow (seed001.test.mjs).
//
// Ownership is stored in PostgreSQL and outlives the test: every room name
// here is unique.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { api, assertJsonError, closeDb, db, registerAndLogin } from '../e2e/lib.mjs';
import { collect001, connect, emitAck, sleep, startGateway, until } from './lib.mjs';

after(closeDb);

const TAKEN = 'This room belongs to another user';
const uniqueRoom = (p = 'support-42') => `${p}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
const ask = (content) => ({ messages: [{ role: 'user', content }] });
const tokens = (n) => Array.from({ length: n }, (_, i) => `t${i}`).join(' ');

/** Everything seed 001 sends a socket, in order. */
function record(socket) {
	const events = [];
	for (const name of ['stream-start', 'stream-chunk', 'stream-complete', 'stream-error'])
		socket.on(name, (d) => events.push([name, d]));
	return events;
}

/** POST stream/start as token into room. */
const restStart = (token, room, content) =>
	api('POST', '/openai/chatCompletion/stream/start', {
		token,
		body: { sessionId: room, messages: [{ role: 'user', content }] },
	});

async function ownerOf(room) {
	const { rows } = await db().query('SELECT user_id::text FROM room_owners WHERE room = $1', [room]);
	return rows[0]?.user_id;
}

let alice;
let mallory;
let other;
before(async () => {
	[alice, mallory] = await Promise.all([registerAndLogin('roomA'), registerAndLogin('roomM')]);
	other = await startGateway();
});
after(async () => {
	if (other) assert.equal(await other.stop(), 0, `second gateway exit; log:\n${other.log()}`);
});

describe('the attack of issue 14: an anonymous socket waits in a room a user then streams into', () => {
	test('REST stream/start: the anonymous sockets (both processes) are removed and hear nothing', async () => {
		const room = uniqueRoom();
		const spyHere = await connect({ transports: ['websocket'] });
		const spyThere = await connect({ url: other.url });
		const owner = await connect({ auth: { token: alice.token } });
		try {
			for (const spy of [spyHere, spyThere])
				assert.deepEqual(await emitAck(spy, 'join-room', { roomName: room }), { ok: true, roomName: room },
					'an open room: anyone joins');
			assert.deepEqual(await emitAck(owner, 'join-room', { roomName: room }), { ok: true, roomName: room });
			const heard = [record(spyHere), record(spyThere)];
			const got = collect001(owner);
			const r = await restStart(alice.token, room, `private [[tokens=12]] [[delay=5]]`);
			assert.equal(r.status, 202, r.text);
			const s = await got;
			assert.equal(s.error, undefined, JSON.stringify(s.error));
			assert.equal(s.complete.fullResponse, tokens(12), 'the owner hears the whole reply');
			await sleep(300);
			for (const events of heard) {
				assert.deepEqual(events, [['stream-error', { error: TAKEN, roomName: room }]],
					'the spy got one error and not a word of the reply');
			}
			assert.equal(await ownerOf(room), alice.userId);

			// It cannot come back, nor stream into the room.
			for (const spy of [spyHere, spyThere]) {
				const refused = new Promise((resolve) => spy.once('stream-error', resolve));
				const ack = await emitAck(spy, 'join-room', { roomName: room });
				assert.deepEqual(ack, { ok: false, error: TAKEN });
				assert.deepEqual(await refused, { error: TAKEN, roomName: room });
			}
			const ownerHeard = record(owner);
			for (const spy of [spyHere, spyThere]) {
				const err = new Promise((resolve) => spy.once('stream-error', resolve));
				spy.emit('stream-chat', { ...ask('attacker text [[tokens=3]]'), roomName: room });
				assert.ok((await err).error.length > 0, 'stream-chat into the room is refused');
			}
			await sleep(300);
			assert.deepEqual(ownerHeard, [], "the owner's socket received nothing of the attacker's");
		} finally {
			spyHere.close();
			spyThere.close();
			owner.close();
		}
	});

	test('stream-chat on an authenticated socket claims the room the same way', async () => {
		const room = uniqueRoom('sc');
		const spy = await connect({ url: other.url, transports: ['websocket'] });
		const owner = await connect({ auth: { token: alice.token }, transports: ['websocket'] });
		try {
			await emitAck(spy, 'join-room', { roomName: room });
			await emitAck(owner, 'join-room', { roomName: room });
			const heard = record(spy);
			const got = collect001(owner);
			owner.emit('stream-chat', { ...ask('mine [[tokens=5]]'), roomName: room });
			const s = await got;
			assert.equal(s.complete.fullResponse, tokens(5));
			await sleep(300);
			assert.deepEqual(heard, [['stream-error', { error: TAKEN, roomName: room }]]);
			assert.equal(await ownerOf(room), alice.userId);
		} finally {
			spy.close();
			owner.close();
		}
	});

	test("another user's stream/start into an owned room: 403 JSON, no stream", async () => {
		const room = uniqueRoom('own');
		const owner = await connect({ auth: { token: alice.token } });
		try {
			await emitAck(owner, 'join-room', { roomName: room });
			// Alice's own stream claims the room; it ends before Mallory tries.
			const claimed = collect001(owner);
			assert.equal((await restStart(alice.token, room, 'claim [[tokens=1]]')).status, 202);
			assert.equal((await claimed).complete?.fullResponse, 't0');
			const heard = record(owner);
			const r = await restStart(mallory.token, room, 'inject [[tokens=3]]');
			assertJsonError(r, 403, 'stream/start into a room of another user');
			assert.equal(r.json.error, TAKEN);
			await sleep(300);
			assert.deepEqual(heard, [], 'nothing streamed to the room');
			assert.equal(await ownerOf(room), alice.userId, 'the owner did not change');
		} finally {
			owner.close();
		}
	});

	test('two users racing for one room: one owner, the other refused', async () => {
		const room = uniqueRoom('race');
		const rs = await Promise.all([
			restStart(alice.token, room, 'a [[tokens=1]]'),
			restStart(mallory.token, room, 'm [[tokens=1]]'),
		]);
		assert.deepEqual(rs.map((r) => r.status).sort(), [202, 403]);
		const winner = rs[0].status === 202 ? alice : mallory;
		assert.equal(await ownerOf(room), winner.userId);
	});
});

describe("the owner's sockets", () => {
	test('authenticated by CONNECT auth or by a token in join-room, in two processes, hear REST and socket streams', async () => {
		const room = uniqueRoom('ok');
		const web = await connect({ auth: { token: alice.token } });
		const mobile = await connect({ url: other.url, transports: ['websocket'] });
		try {
			assert.deepEqual(await emitAck(web, 'join-room', { roomName: room }), { ok: true, roomName: room });
			assert.deepEqual(await emitAck(mobile, 'join-room', { roomName: room, token: alice.token }),
				{ ok: true, roomName: room });
			let got = [collect001(web), collect001(mobile)];
			assert.equal((await restStart(alice.token, room, 'rest [[tokens=8]] [[delay=5]]')).status, 202);
			for (const s of await Promise.all(got)) assert.equal(s.complete?.fullResponse, tokens(8));
			// Now owned: they join again and stream into it, from either process.
			assert.equal(await ownerOf(room), alice.userId);
			assert.deepEqual(await emitAck(mobile, 'join-room', { roomName: room }), { ok: true, roomName: room });
			got = [collect001(web), collect001(mobile)];
			mobile.emit('stream-chat', { ...ask('socket [[tokens=6]]'), roomName: room });
			for (const s of await Promise.all(got)) assert.equal(s.complete?.fullResponse, tokens(6));
			// A new socket of the owner joins the owned room with its token.
			const late = await connect({ transports: ['websocket'] });
			try {
				assert.deepEqual(await emitAck(late, 'join-room', { roomName: room, token: alice.token }),
					{ ok: true, roomName: room });
			} finally {
				late.close();
			}
		} finally {
			web.close();
			mobile.close();
		}
	});

	test("another user's socket cannot join an owned room; a bad token in join-room is Unauthorized", async () => {
		const room = uniqueRoom('deny');
		assert.equal((await restStart(alice.token, room, 'claim [[tokens=1]]')).status, 202);
		await until(async () => (await ownerOf(room)) === alice.userId, { what: 'the claim' });
		const m = await connect({ auth: { token: mallory.token } });
		const anon = await connect();
		// Each refusal is an ack, then a stream-error event. The event may
		// arrive after the ack's continuation has run (a separate frame under
		// load), so every event is recorded from the start and checked in order.
		const refusals = [];
		anon.on('stream-error', (e) => refusals.push(e));
		try {
			assert.deepEqual(await emitAck(m, 'join-room', { roomName: room }), { ok: false, error: TAKEN });
			assert.deepEqual(await emitAck(anon, 'join-room', { roomName: room, token: mallory.token }),
				{ ok: false, error: TAKEN });
			assert.deepEqual(await emitAck(anon, 'join-room', { roomName: room, token: 'not-a-token' }),
				{ ok: false, error: 'Unauthorized' });
			await until(() => refusals.length >= 2, { what: 'the two stream-error events' });
			assert.deepEqual(refusals, [{ error: TAKEN, roomName: room }, { error: 'Unauthorized', roomName: room }]);
			// A socket never changes user: Mallory's socket with Alice's token is refused.
			const ack = await emitAck(m, 'join-room', { roomName: room, token: alice.token });
			assert.equal(ack.ok, false);
		} finally {
			m.close();
			anon.close();
		}
	});

	test('an anonymous socket in an unowned room streams as in seed 001; a user joins it too', async () => {
		const room = uniqueRoom('anon');
		const a = await connect();
		const b = await connect({ url: other.url });
		const u = await connect({ auth: { token: alice.token } });
		try {
			for (const s of [a, b, u]) assert.deepEqual(await emitAck(s, 'join-room', { roomName: room }), { ok: true, roomName: room });
			const got = [collect001(a), collect001(b), collect001(u)];
			a.emit('stream-chat', ask('open room [[tokens=4]]'));
			for (const s of await Promise.all(got)) assert.equal(s.complete?.fullResponse, tokens(4));
			assert.equal(await ownerOf(room), undefined, 'an anonymous stream claims nothing');
		} finally {
			a.close();
			b.close();
			u.close();
		}
	});
});
