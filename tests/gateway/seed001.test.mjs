// seed001.test.mjs: seed 001 over Socket.IO with the stock socket.io-client:
// the seed's client snippets as written (URL substituted); `connected`,
// join-room, stream-chat → stream-start / stream-chunk {content,
// fullResponse, isComplete} / stream-complete {fullResponse, timestamp} /
// stream-error, on both transports; a reply streamed in a room reaches
// every member, in this gateway process and in another one; and POST
// /openai/chatCompletion/stream/start streams to the room sessionId.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { ISO_MS_RE, api, closeDb, registerAndLogin } from '../e2e/lib.mjs';
import {
	BASE_URL,
	TRANSPORTS,
	collect001,
	connect,
	emitAck,
	gatewayStatus,
	sleep,
	startGateway,
	transportName,
	until,
} from './lib.mjs';
import { BROWSER_PRELUDE, runSnippet } from './snippets.mjs';

after(closeDb);

const uniqueRoom = (p = 'room') => `${p}-${Date.now().toString(36)}-${Math.random().toString(36).slice(2, 8)}`;
const ask = (content) => ({ messages: [{ role: 'user', content }] });

/** The checks every seed 001 stream passes; returns the reply text. */
function checkStream(s, { tokens } = {}) {
	assert.equal(s.error, undefined, `stream-error: ${JSON.stringify(s.error)}`);
	assert.ok(s.start, 'stream-start came');
	assert.equal(s.events[0][0], 'stream-start', 'stream-start comes first');
	assert.equal(typeof s.start.streamId, 'string');
	assert.match(s.start.timestamp, ISO_MS_RE);
	const parts = s.chunks.filter((c) => !c.isComplete);
	const last = s.chunks.at(-1);
	assert.ok(last?.isComplete === true, 'the last stream-chunk says isComplete');
	let full = '';
	for (const c of parts) {
		assert.equal(typeof c.content, 'string');
		assert.ok(c.content.length > 0, 'no empty deltas');
		assert.equal(c.isComplete, false);
		full += c.content;
		assert.equal(c.fullResponse, full, 'fullResponse is the reply so far');
	}
	assert.equal(last.fullResponse, full);
	assert.ok(s.complete, 'stream-complete came');
	assert.equal(s.complete.fullResponse, full);
	assert.match(s.complete.timestamp, ISO_MS_RE);
	assert.equal(s.events.at(-1)[0], 'stream-complete', 'stream-complete comes last');
	if (tokens !== undefined)
		assert.equal(full, Array.from({ length: tokens }, (_, i) => `t${i}`).join(' '));
	return full;
}

describe('seed 001 client snippets, unchanged but for the URL', () => {
	test('connect, join a room, stream a chat, and the four server events', async () => {
		const code = `${BROWSER_PRELUDE}
const socket = io('${BASE_URL}'); // or your deployed URL

socket.on('connected', (data) => {
    console.log('Connected:', data);
});

socket.emit('join-room', {
    roomName: 'my-chat-room',
    participantName: 'John Doe'
});

socket.emit('stream-chat', {
    messages: [
        { role: 'user', content: 'Explain quantum computing in simple terms' }
    ]
});

socket.on('stream-start', (data) => {
    console.log('AI started responding...', data);
    // Show "AI is typing..." indicator
});

socket.on('stream-chunk', (data) => {
    console.log('New content:', data.content);
    console.log('Full response so far:', data.fullResponse);

    // Update UI with new content in real-time
    // updateChatUI(data.content, data.isComplete);
});

socket.on('stream-complete', (data) => {
    console.log('AI finished responding:', data.fullResponse);
    // Hide "AI is typing..." indicator
    // Show final response
});

socket.on('stream-error', (error) => {
    console.error('Streaming error:', error);
    // Handle error (show error message, retry, etc.)
});
`;
		const r = await runSnippet(code, { until: /AI finished responding:|Streaming error:/ });
		assert.ok(r.matched, `snippet output:\n${r.stdout}\n${r.stderr}`);
		assert.doesNotMatch(r.stderr, /Streaming error/);
		assert.match(r.stdout, /Connected: \{[^}]*message:/s);
		assert.match(r.stdout, /AI started responding\.\.\./);
		assert.match(r.stdout, /New content: \S/);
		assert.match(r.stdout, /Full response so far: \S/);
		assert.match(r.stdout, /AI finished responding: \S/);
	});

	test('"Test Streaming Locally", with the seed\'s listeners', async () => {
		const code = `${BROWSER_PRELUDE}
const socket = io('${BASE_URL}');
socket.emit('stream-chat', {
    messages: [{ role: 'user', content: 'Write a short poem' }]
});

socket.on('stream-start', (data) => {
    console.log('AI started responding...', data);
});

socket.on('stream-chunk', (data) => {
    console.log('New content:', data.content);
    console.log('Full response so far:', data.fullResponse);
});

socket.on('stream-complete', (data) => {
    console.log('AI finished responding:', data.fullResponse);
});

socket.on('stream-error', (error) => {
    console.error('Streaming error:', error);
});
`;
		const r = await runSnippet(code, { until: /AI finished responding:|Streaming error:/ });
		assert.ok(r.matched, `snippet output:\n${r.stdout}\n${r.stderr}`);
		assert.match(r.stdout, /AI started responding/);
		assert.match(r.stdout, /AI finished responding: \S/);
	});
});

for (const transports of TRANSPORTS) {
	describe(`seed 001 events (${transportName(transports)})`, () => {
		test('`connected` on connect', async () => {
			const socket = await connect({ transports });
			try {
				const d = socket.connectedData;
				assert.equal(typeof d.message, 'string');
				assert.equal(d.clientId, socket.id, 'clientId is the Socket.IO id');
				assert.match(d.timestamp, ISO_MS_RE);
				if (transports.length === 2)
					await until(() => socket.io.engine.transport.name === 'websocket', { what: 'the upgrade' });
			} finally {
				socket.close();
			}
		});

		test('stream-chat streams the reply to the socket', async () => {
			const socket = await connect({ transports });
			try {
				const done = collect001(socket);
				socket.emit('stream-chat', ask('count [[tokens=12]] [[delay=10]]'));
				const s = await done;
				checkStream(s, { tokens: 12 });
				assert.equal(s.start.roomName, undefined, 'no room: the socket alone');
				assert.equal(s.chunks.length, 13);
			} finally {
				socket.close();
			}
		});

		test('an upstream failure becomes stream-error', async () => {
			const socket = await connect({ transports });
			try {
				const done = collect001(socket);
				socket.emit('stream-chat', ask('fail [[status=500]]'));
				const s = await done;
				assert.ok(s.error, 'stream-error');
				assert.equal(typeof s.error.error, 'string');
				assert.ok(s.error.error.length > 0);
				assert.equal(s.complete, undefined);
			} finally {
				socket.close();
			}
		});

		test('bad payloads get stream-error, not a reply', async () => {
			const socket = await connect({ transports });
			try {
				for (const [payload, re] of [
					[{ messages: 'hello' }, /messages/],
					[{ messages: [] }, /messages/],
					[{ messages: [{ role: 'wizard', content: 'x' }] }, /role/],
					[{ messages: [{ role: 'user', content: 42 }] }, /content/],
					['just text', /payload/],
					[{ messages: [{ role: 'user', content: 'x' }], roomName: 'not-joined-here' }, /room/i],
				]) {
					const err = new Promise((resolve) => socket.once('stream-error', resolve));
					socket.emit('stream-chat', payload);
					const e = await err;
					assert.match(e.error, re, JSON.stringify(payload));
				}
			} finally {
				socket.close();
			}
		});

		test('join-room answers its acknowledgement', async () => {
			const socket = await connect({ transports });
			try {
				const room = uniqueRoom();
				assert.deepEqual(await emitAck(socket, 'join-room', { roomName: room, participantName: 'Ada' }),
					{ ok: true, roomName: room });
				const bad = await emitAck(socket, 'join-room', { participantName: 'no room' });
				assert.equal(bad.ok, false);
				assert.match(bad.error, /roomName/);
			} finally {
				socket.close();
			}
		});
	});
}

describe('rooms', () => {
	test('a reply streamed in a room reaches every member, and only them', async () => {
		const room = uniqueRoom();
		const [a, b, outsider] = await Promise.all([
			connect({ transports: ['polling', 'websocket'] }),
			connect({ transports: ['websocket'] }),
			connect({ transports: ['websocket'] }),
		]);
		try {
			await emitAck(a, 'join-room', { roomName: room, participantName: 'A' });
			await emitAck(b, 'join-room', { roomName: room, participantName: 'B' });
			let leaked = 0;
			outsider.on('stream-chunk', () => (leaked += 1));
			const got = [collect001(a), collect001(b)];
			a.emit('stream-chat', ask('room reply [[tokens=10]] [[delay=10]]'));
			const [sa, sb] = await Promise.all(got);
			checkStream(sa, { tokens: 10 });
			checkStream(sb, { tokens: 10 });
			assert.equal(sa.start.streamId, sb.start.streamId, 'one stream');
			assert.equal(sa.start.roomName, room);
			await sleep(200);
			assert.equal(leaked, 0, 'a socket outside the room hears nothing');
		} finally {
			a.close();
			b.close();
			outsider.close();
		}
	});

	test('a member that leaves stops hearing the room', async () => {
		const room = uniqueRoom();
		const [a, b] = await Promise.all([connect({ transports: ['websocket'] }), connect()]);
		try {
			await emitAck(a, 'join-room', { roomName: room });
			await emitAck(b, 'join-room', { roomName: room });
			await emitAck(b, 'leave-room', { roomName: room });
			let heard = 0;
			b.on('stream-chunk', () => (heard += 1));
			const s = await (async () => {
				const done = collect001(a);
				a.emit('stream-chat', ask('x [[tokens=3]]'));
				return done;
			})();
			checkStream(s, { tokens: 3 });
			await sleep(200);
			assert.equal(heard, 0);
		} finally {
			a.close();
			b.close();
		}
	});
});

describe('rooms across gateway processes (PostgreSQL LISTEN/NOTIFY)', () => {
	let other;
	let user;
	before(async () => {
		other = await startGateway();
		user = await registerAndLogin('gw001');
	});
	after(async () => {
		if (other) assert.equal(await other.stop(), 0, `second gateway exit; log:\n${other.log()}`);
	});

	test('a stream in a room reaches members connected to another process, both ways', async () => {
		const room = uniqueRoom('x');
		const here = await connect({ transports: ['websocket'] });
		const there = await connect({ url: other.url });
		try {
			await emitAck(here, 'join-room', { roomName: room });
			await emitAck(there, 'join-room', { roomName: room });
			for (const [from, to] of [[here, there], [there, here]]) {
				const got = [collect001(from), collect001(to)];
				from.emit('stream-chat', ask('across [[tokens=40]] [[delay=5]]'));
				const [sf, st] = await Promise.all(got);
				const text = checkStream(sf, { tokens: 40 });
				assert.equal(checkStream(st), text, 'the other process rebuilt the same reply');
				assert.equal(st.start.streamId, sf.start.streamId);
				assert.equal(st.start.roomName, room);
			}
		} finally {
			here.close();
			there.close();
		}
	});

	test('POST /openai/chatCompletion/stream/start streams to room sessionId everywhere', async () => {
		const room = uniqueRoom('rest');
		// The room becomes the user's: their sockets, authenticated by the
		// CONNECT auth or by a token in join-room (rooms.test.mjs).
		const here = await connect({ auth: { token: user.token } });
		const there = await connect({ url: other.url, transports: ['websocket'] });
		try {
			await emitAck(here, 'join-room', { roomName: room, participantName: 'web' });
			await emitAck(there, 'join-room', { roomName: room, participantName: 'mobile', token: user.token });
			const got = [collect001(here), collect001(there)];
			const r = await api('POST', '/openai/chatCompletion/stream/start', {
				token: user.token,
				body: { sessionId: room, messages: [{ role: 'user', content: 'rest [[tokens=15]] [[delay=10]]' }] },
			});
			assert.equal(r.status, 202, r.text);
			assert.deepEqual(r.json, { sessionId: room, status: 'started' });
			const [s1, s2] = await Promise.all(got);
			const text = checkStream(s1, { tokens: 15 });
			assert.equal(checkStream(s2), text);
			assert.equal(s1.start.roomName, room);
		} finally {
			here.close();
			there.close();
		}
	});

	test('stream/start validates like the other routes', async () => {
		const msgs = [{ role: 'user', content: 'x' }];
		let r = await api('POST', '/openai/chatCompletion/stream/start', { body: { sessionId: 'r', messages: msgs } });
		assert.equal(r.status, 401);
		r = await api('POST', '/openai/chatCompletion/stream/start', { token: user.token, body: { messages: msgs } });
		assert.equal(r.status, 400);
		assert.match(r.json.error, /sessionId/);
		r = await api('POST', '/openai/chatCompletion/stream/start', {
			token: user.token, body: { sessionId: 'x'.repeat(129), messages: msgs },
		});
		assert.equal(r.status, 400);
		r = await api('POST', '/openai/chatCompletion/stream/start', { token: user.token, body: { sessionId: 'r', messages: [] } });
		assert.equal(r.status, 400);
		assert.match(r.json.error, /messages/);
		r = await api('POST', '/openai/chatCompletion/stream/start', {
			token: user.token, body: { sessionId: 'r', messages: [{ role: 'user' }] },
		});
		assert.equal(r.status, 400);
	});
});

describe('a socket that leaves mid-stream', () => {
	test('its lone stateless stream stops and frees its transfer', async () => {
		const gw = await startGateway();
		try {
			const socket = await connect({ url: gw.url, transports: ['websocket'] });
			const first = new Promise((resolve) => socket.once('stream-chunk', resolve));
			socket.emit('stream-chat', ask('long [[tokens=400]] [[delay=20]]'));
			await first;
			assert.equal((await gatewayStatus(gw.url)).streams, 1);
			socket.close();
			await until(async () => (await gatewayStatus(gw.url)).streams === 0, {
				timeout: 5000, what: 'the stream to stop',
			});
			const st = await gatewayStatus(gw.url);
			assert.equal(st.sessions, 0);
		} finally {
			assert.equal(await gw.stop(), 0);
		}
	});
});
