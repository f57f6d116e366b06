// seed004.test.mjs: seed 004's contract. POST /api/chat {message, history?}
// (auth optional) → {reply, timestamp}; GET/PUT /api/settings, the caller's
// system prompt, model, temperature, realtime model and voice, which apply
// to the prompt of every chat route; POST /api/session, an OpenAI Realtime
// ephemeral secret minted upstream (client_secret.value, as seed 004's
// browser code reads it), with which the browser posts its SDP offer.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
	DEFAULT_SYSTEM_PROMPT,
	HTTP_URL,
	ISO_MS_RE,
	SESSIONS,
	UPSTREAM_KEY,
	UPSTREAM_URL,
	api,
	assertJsonError,
	checkSeed000,
	closeDb,
	createSession,
	db,
	fakeStats,
	openStream,
	readAll,
	registerAndLogin,
} from './lib.mjs';

after(closeDb);

const DEFAULTS = {
	system_prompt: DEFAULT_SYSTEM_PROMPT,
	model: 'gpt-4o-mini',
	temperature: 0.7,
	realtime_model: 'gpt-realtime',
	voice: 'marin',
};

/** A minimal WebRTC offer, as a browser's RTCPeerConnection makes one. */
const SDP_OFFER = [
	'v=0',
	'o=- 4611731400430051336 2 IN IP4 127.0.0.1',
	's=-',
	't=0 0',
	'a=group:BUNDLE 0',
	'm=audio 9 UDP/TLS/RTP/SAVPF 111',
	'c=IN IP4 0.0.0.0',
	'a=mid:0',
	'a=sendrecv',
	'a=rtpmap:111 opus/48000/2',
	'',
].join('\r\n');

const putSettings = (token, body) => api('PUT', '/api/settings', { token, body });

describe('POST /api/chat', () => {
	let user;
	before(async () => {
		user = await registerAndLogin('seed004chat');
	});

	test('anonymous: {reply, timestamp}, nothing else', async () => {
		const t0 = Date.now();
		const r = await api('POST', '/api/chat', { body: { message: 'Hola, ¿qué tal?' } });
		assert.equal(r.status, 200, r.text);
		assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
		assert.deepEqual(Object.keys(r.json).sort(), ['reply', 'timestamp']);
		assert.equal(r.json.reply, 'You said: Hola, ¿qué tal?');
		assert.match(r.json.timestamp, ISO_MS_RE);
		assert.ok(Math.abs(Date.parse(r.json.timestamp) - t0) < 60000, `timestamp ${r.json.timestamp}`);
	});

	test('the history goes to the model after the system prompt, then the message', async () => {
		const history = [
			{ role: 'user', content: 'first question' },
			{ role: 'assistant', content: 'first answer' },
			{ role: 'user', content: 'second question' },
			{ role: 'assistant', content: 'second answer' },
		];
		const r = await api('POST', '/api/chat', { token: user.token, body: { message: 'third [[request]]', history } });
		assert.equal(r.status, 200, r.text);
		const req = JSON.parse(r.json.reply);
		assert.deepEqual(req.messages, [
			{ role: 'system', content: DEFAULT_SYSTEM_PROMPT },
			...history,
			{ role: 'user', content: 'third [[request]]' },
		]);
		assert.equal(req.model, 'gpt-4o-mini');
		assert.equal(req.temperature, 0.7);
		assert.equal(req.stream, true, 'chatd streams from the upstream even for a plain reply');
	});

	test('an empty history is no history; null is as absent', async () => {
		for (const history of [[], null]) {
			const r = await api('POST', '/api/chat', { token: user.token, body: { message: '[[request]]', history } });
			assert.equal(r.status, 200, r.text);
			assert.deepEqual(JSON.parse(r.json.reply).messages, [
				{ role: 'system', content: DEFAULT_SYSTEM_PROMPT },
				{ role: 'user', content: '[[request]]' },
			]);
		}
	});

	test('nothing but a metrics row is stored: /api/chat keeps no session', async () => {
		const before = await db().query('SELECT count(*)::int AS n FROM chat_sessions WHERE user_id = $1', [user.userId]);
		const r = await api('POST', '/api/chat', { token: user.token, body: { message: 'stateless' } });
		assert.equal(r.status, 200);
		const afterCount = await db().query('SELECT count(*)::int AS n FROM chat_sessions WHERE user_id = $1', [user.userId]);
		assert.equal(afterCount.rows[0].n, before.rows[0].n);
		const { rows } = await db().query(
			"SELECT status FROM stream_metrics WHERE user_id = $1 AND route = 'seed004_chat' ORDER BY id DESC LIMIT 1",
			[user.userId],
		);
		assert.equal(rows[0]?.status, 'complete');
	});

	test('upstream failures: 502 JSON, before or during the reply (no partial reply)', async () => {
		for (const message of ['x [[status=500]]', 'x [[tokens=9]] [[error-after=3]]', 'x [[tokens=9]] [[drop-after=3]]']) {
			const r = await api('POST', '/api/chat', { token: user.token, body: { message } });
			assertJsonError(r, 502, message);
			assert.ok(!r.text.includes(UPSTREAM_KEY));
		}
	});

	test('bad requests: 400/415 JSON, no upstream call', async () => {
		const stats = await fakeStats();
		for (const [what, body, headers, status] of [
			['no message', { history: [] }, undefined, 400],
			['empty message', { message: '' }, undefined, 400],
			['numeric message', { message: 1 }, undefined, 400],
			['history an object', { message: 'x', history: { role: 'user' } }, undefined, 400],
			['history of strings', { message: 'x', history: ['hi'] }, undefined, 400],
			['a history role of tool', { message: 'x', history: [{ role: 'tool', content: 'x' }] }, undefined, 400],
			['a history without role', { message: 'x', history: [{ content: 'x' }] }, undefined, 400],
			['a history content number', { message: 'x', history: [{ role: 'user', content: 3 }] }, undefined, 400],
			['201 history messages', { message: 'x', history: Array(201).fill({ role: 'user', content: 'x' }) }, undefined, 400],
			['malformed JSON', '{"message":"x"', undefined, 400],
			['no body', undefined, undefined, 400],
			['form-encoded', 'message=x', { 'content-type': 'application/x-www-form-urlencoded' }, 415],
		]) {
			assertJsonError(await api('POST', '/api/chat', { token: user.token, body, headers }), status, what);
		}
		assert.equal((await fakeStats()).chat_requests, stats.chat_requests);
	});
});

describe('GET/PUT /api/settings', () => {
	let user;
	before(async () => {
		user = await registerAndLogin('seed004set');
	});

	test('a new user sees the server defaults', async () => {
		const r = await api('GET', '/api/settings', { token: user.token });
		assert.equal(r.status, 200);
		assert.deepEqual(r.json, DEFAULTS);
	});

	test('PUT changes only the fields it names and answers the whole settings; GET agrees', async () => {
		let r = await putSettings(user.token, { temperature: 1.1 });
		assert.equal(r.status, 200, r.text);
		assert.deepEqual(r.json, { ...DEFAULTS, temperature: 1.1 });
		r = await putSettings(user.token, { system_prompt: 'Eres un asistente conciso.', voice: 'verse' });
		assert.deepEqual(r.json, { ...DEFAULTS, temperature: 1.1, system_prompt: 'Eres un asistente conciso.', voice: 'verse' });
		r = await putSettings(user.token, {});
		assert.equal(r.status, 200);
		const got = await api('GET', '/api/settings', { token: user.token });
		assert.deepEqual(got.json, r.json);
		assert.deepEqual(got.json, { ...DEFAULTS, temperature: 1.1, system_prompt: 'Eres un asistente conciso.', voice: 'verse' });
	});

	test('null resets a field to the server default', async () => {
		await putSettings(user.token, { model: 'gpt-4o', realtime_model: 'gpt-realtime-mini' });
		const r = await putSettings(user.token, { model: null, temperature: null, system_prompt: null, voice: null });
		assert.equal(r.status, 200, r.text);
		assert.deepEqual(r.json, { ...DEFAULTS, realtime_model: 'gpt-realtime-mini' });
		const r2 = await putSettings(user.token, { realtime_model: null });
		assert.deepEqual(r2.json, DEFAULTS);
	});

	test('temperature 0 and 2 are in range', async () => {
		for (const t of [0, 2, 0.25]) {
			const r = await putSettings(user.token, { temperature: t });
			assert.equal(r.status, 200, r.text);
			assert.equal(r.json.temperature, t);
		}
		await putSettings(user.token, { temperature: null });
	});

	test('bad values, unknown fields, bad bodies: 400/415 JSON, and nothing changes', async () => {
		await putSettings(user.token, { temperature: 0.9 });
		const before = (await api('GET', '/api/settings', { token: user.token })).json;
		for (const [what, body, headers, status] of [
			['temperature above 2', { temperature: 2.5 }, undefined, 400],
			['temperature below 0', { temperature: -0.1 }, undefined, 400],
			['temperature a string', { temperature: '1' }, undefined, 400],
			['temperature a boolean', { temperature: true }, undefined, 400],
			['an unknown field', { colour: 'blue' }, undefined, 400],
			['a valid and an unknown field', { temperature: 1, max_tokens: 10 }, undefined, 400],
			['model empty', { model: '' }, undefined, 400],
			['model a number', { model: 4 }, undefined, 400],
			['system_prompt an array', { system_prompt: ['a'] }, undefined, 400],
			['system_prompt too long', { system_prompt: 'x'.repeat(20001) }, undefined, 400],
			['voice an object', { voice: { name: 'x' } }, undefined, 400],
			['an array body', '[]', undefined, 400],
			['malformed JSON', '{', undefined, 400],
			['no body', undefined, undefined, 400],
			['text/plain', '{"temperature":1}', { 'content-type': 'text/plain' }, 415],
		]) {
			assertJsonError(await api('PUT', '/api/settings', { token: user.token, body, headers }), status, what);
		}
		assert.deepEqual((await api('GET', '/api/settings', { token: user.token })).json, before);
	});

	test('settings are per user', async () => {
		const other = await registerAndLogin('seed004other');
		await putSettings(user.token, { system_prompt: 'Only mine.' });
		assert.deepEqual((await api('GET', '/api/settings', { token: other.token })).json, DEFAULTS);
		await putSettings(user.token, { system_prompt: null });
	});

	test('a token is required', async () => {
		assertJsonError(await api('GET', '/api/settings'), 401, 'GET');
		assertJsonError(await api('PUT', '/api/settings', { body: { temperature: 1 } }), 401, 'PUT');
		assertJsonError(await api('PUT', '/api/settings', { token: 'x.y.z', body: { temperature: 1 } }), 401, 'bad token');
	});
});

/** What the upstream was sent, by route: the fake echoes it for [[request]]. */
const ROUTES = {
	'seed 000 stream': async (token) => {
		const session = await createSession(token);
		const turn = checkSeed000((await readAll(await openStream(token, session.id, 'hi [[request]]'))).events);
		return JSON.parse(turn.done.full_content);
	},
	'seed 002 /stream/chat': async (token) => {
		const r = await api('POST', '/stream/chat', { token, body: { message: 'hi [[request]]' }, raw: true });
		const { events } = await readAll(r);
		return JSON.parse(events.filter((e) => e.event === 'chunk').map((e) => e.json.content).join(''));
	},
	'seed 003 /api/v2/ai/chat/stream': async (token) => {
		const r = await api('POST', '/api/v2/ai/chat/stream', { token, body: { message: 'hi [[request]]' }, raw: true });
		const { events } = await readAll(r);
		return JSON.parse(events.filter((e) => e.json.content !== undefined).map((e) => e.json.content).join(''));
	},
	'seed 004 /api/chat': async (token) => {
		const r = await api('POST', '/api/chat', { token, body: { message: 'hi [[request]]' } });
		return JSON.parse(r.json.reply);
	},
	'seed 001 /openai/chatCompletion': async (token) => {
		const r = await api('POST', '/openai/chatCompletion', {
			token,
			body: { messages: [{ role: 'user', content: 'hi [[request]]' }] },
		});
		return JSON.parse(r.json.choices[0].message.content);
	},
	'/v1/chat/completions (no model or temperature in the body)': async (token) => {
		const r = await api('POST', '/v1/chat/completions', {
			token,
			body: { messages: [{ role: 'user', content: 'hi [[request]]' }] },
		});
		return JSON.parse(r.json.choices[0].message.content);
	},
};

describe("a new user's prompt carries the server defaults on every chat route", () => {
	let user;
	before(async () => {
		user = await registerAndLogin('seed004dflt');
	});
	for (const [name, call] of Object.entries(ROUTES)) {
		test(name, async () => {
			const req = await call(user.token);
			assert.deepEqual(req.messages[0], { role: 'system', content: DEFAULT_SYSTEM_PROMPT });
			assert.deepEqual(req.messages.at(-1), { role: 'user', content: 'hi [[request]]' });
			assert.equal(req.model, DEFAULTS.model);
			assert.equal(req.temperature, DEFAULTS.temperature, 'the default temperature');
			assert.equal(req.max_tokens, 2000);
		});
	}
});

describe("the caller's settings apply to every chat route", () => {
	let user;
	const SYSTEM = 'You are a pirate. Answer in pirate speak.';
	const TEMPERATURE = 1.25;
	const MODEL = 'gpt-4o';
	before(async () => {
		user = await registerAndLogin('seed004apply');
		const r = await putSettings(user.token, { system_prompt: SYSTEM, temperature: TEMPERATURE, model: MODEL });
		assert.equal(r.status, 200, r.text);
	});

	for (const [name, call] of Object.entries(ROUTES)) {
		test(name, async () => {
			const req = await call(user.token);
			assert.deepEqual(req.messages[0], { role: 'system', content: SYSTEM });
			assert.deepEqual(req.messages.at(-1), { role: 'user', content: 'hi [[request]]' });
			assert.equal(req.temperature, TEMPERATURE);
			assert.equal(req.model, MODEL);
		});
	}

	test('/v1/chat/completions: the body’s model and temperature win over the settings', async () => {
		const r = await api('POST', '/v1/chat/completions', {
			token: user.token,
			body: { model: 'gpt-4.1-nano', temperature: 0.2, messages: [{ role: 'user', content: '[[request]]' }] },
		});
		assert.equal(r.status, 200, r.text);
		const req = JSON.parse(r.json.choices[0].message.content);
		assert.equal(req.model, 'gpt-4.1-nano');
		assert.equal(req.temperature, 0.2);
		assert.equal(r.json.model, 'gpt-4.1-nano');
		assert.deepEqual(req.messages[0], { role: 'system', content: SYSTEM });
	});

	test('a conversation that brings its own system message keeps it (stateless routes)', async () => {
		for (const route of ['/openai/chatCompletion', '/v1/chat/completions']) {
			const r = await api('POST', route, {
				token: user.token,
				body: {
					messages: [
						{ role: 'system', content: 'Client system prompt.' },
						{ role: 'user', content: '[[request]]' },
					],
				},
			});
			assert.equal(r.status, 200, r.text);
			const req = JSON.parse(r.json.choices[0].message.content);
			assert.deepEqual(
				req.messages,
				[
					{ role: 'system', content: 'Client system prompt.' },
					{ role: 'user', content: '[[request]]' },
				],
				route,
			);
		}
	});

	test('[[system]] through seed 004: the model hears the configured prompt', async () => {
		const r = await api('POST', '/api/chat', { token: user.token, body: { message: '[[system]]' } });
		assert.equal(r.json.reply, `System prompt: ${SYSTEM}`);
	});

	test('a stored reply records the model used', async () => {
		const session = await createSession(user.token);
		const turn = checkSeed000((await readAll(await openStream(user.token, session.id, 'which model'))).events);
		const { rows } = await db().query('SELECT model FROM messages WHERE id = $1', [turn.replyId]);
		assert.equal(rows[0].model, MODEL);
	});

	test('an empty system prompt means no system message', async () => {
		const u = await registerAndLogin('seed004empty');
		assert.equal((await putSettings(u.token, { system_prompt: '' })).status, 200);
		const r = await api('POST', '/api/chat', { token: u.token, body: { message: '[[request]]' } });
		assert.deepEqual(JSON.parse(r.json.reply).messages, [{ role: 'user', content: '[[request]]' }]);
	});

	test('after a reset, the defaults apply again', async () => {
		const u = await registerAndLogin('seed004reset');
		await putSettings(u.token, { system_prompt: 'temporary', temperature: 2 });
		await putSettings(u.token, { system_prompt: null, temperature: null });
		const r = await api('POST', '/api/chat', { token: u.token, body: { message: '[[request]]' } });
		const req = JSON.parse(r.json.reply);
		assert.deepEqual(req.messages[0], { role: 'system', content: DEFAULT_SYSTEM_PROMPT });
		assert.equal(req.temperature, 0.7);
	});
});

describe('POST /api/session (voice)', () => {
	let user;
	before(async () => {
		user = await registerAndLogin('seed004voice');
	});

	test('an ephemeral secret minted upstream with the user’s realtime model, voice and prompt; never the server key', async (t) => {
		if (process.env.CHAT_REALTIME_API === 'sessions') {
			t.skip('the instance runs the beta flavour (see the next describe)');
			return;
		}
		const before = await fakeStats();
		const r = await api('POST', '/api/session', { token: user.token });
		assert.equal(r.status, 200, r.text);
		assert.ok(!r.text.includes(UPSTREAM_KEY), 'the server key leaked');
		const b = r.json;
		assert.match(b.client_secret.value, /^ek_/, 'seed 004 reads client_secret.value');
		assert.equal(b.value, b.client_secret.value);
		assert.equal(b.expires_at, b.client_secret.expires_at);
		const now = Date.now() / 1000;
		assert.ok(b.expires_at > now + 60 && b.expires_at <= now + 7200, `expires_at ${b.expires_at}`);
		assert.equal(b.model, 'gpt-realtime');
		assert.equal(b.voice, 'marin');
		assert.equal(b.api, 'client_secrets');
		assert.equal(b.sdp_url, `${UPSTREAM_URL}/v1/realtime/calls`);
		// The session the upstream was asked for (the fake echoes it).
		assert.equal(b.session.type, 'realtime');
		assert.equal(b.session.model, 'gpt-realtime');
		assert.equal(b.session.instructions, DEFAULT_SYSTEM_PROMPT);
		assert.deepEqual(b.session.audio.input.turn_detection, { type: 'server_vad' });
		assert.equal(b.session.audio.output.voice, 'marin');
		assert.equal((await fakeStats()).realtime_secrets - before.realtime_secrets, 1);

		// The browser's next step: its SDP offer, with the ephemeral key.
		const sdp = await fetch(b.sdp_url, {
			method: 'POST',
			headers: { authorization: `Bearer ${b.value}`, 'content-type': 'application/sdp' },
			body: SDP_OFFER,
		});
		assert.equal(sdp.status, 201);
		assert.match(sdp.headers.get('content-type') ?? '', /^application\/sdp/);
		const answer = await sdp.text();
		assert.ok(answer.startsWith('v=0'), answer.slice(0, 100));
		assert.match(answer, /^m=audio /m);
		// A made-up key does not open a call.
		const forged = await fetch(b.sdp_url, {
			method: 'POST',
			headers: { authorization: 'Bearer ek_forged', 'content-type': 'application/sdp' },
			body: SDP_OFFER,
		});
		assert.equal(forged.status, 401);
	});

	test('the realtime model, voice and system prompt come from the settings', async (t) => {
		if (process.env.CHAT_REALTIME_API === 'sessions') {
			t.skip('beta flavour');
			return;
		}
		const u = await registerAndLogin('seed004voice2');
		await putSettings(u.token, { realtime_model: 'gpt-realtime-mini', voice: 'verse', system_prompt: 'Habla como un poeta.' });
		const r = await api('POST', '/api/session', { token: u.token });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.model, 'gpt-realtime-mini');
		assert.equal(r.json.voice, 'verse');
		assert.equal(r.json.session.model, 'gpt-realtime-mini');
		assert.equal(r.json.session.instructions, 'Habla como un poeta.');
		assert.equal(r.json.session.audio.output.voice, 'verse');
	});

	test('an upstream refusal is a 502 JSON error that names the cause, not the key', async () => {
		const u = await registerAndLogin('seed004refuse');
		await putSettings(u.token, { system_prompt: 'please [[refuse]]' });
		const r = await api('POST', '/api/session', { token: u.token });
		assertJsonError(r, 502, 'refused upstream');
		assert.ok(!r.text.includes(UPSTREAM_KEY));
		assert.ok(!r.text.includes('ek_'));
	});

	test('a token is required', async () => {
		assertJsonError(await api('POST', '/api/session'), 401, 'no token');
		assertJsonError(await api('GET', '/api/session', { token: user.token }), 405, 'GET');
	});

	test('over plain HTTP too', async () => {
		const r = await api('POST', '/api/session', { token: user.token, base: HTTP_URL });
		assert.equal(r.status, 200, r.text);
		assert.match(r.json.client_secret.value, /^ek_/);
	});
});

describe('POST /api/session, beta flavour (CHAT_REALTIME_API=sessions)', () => {
	test('client_secret from /v1/realtime/sessions; the SDP goes to /v1/realtime?model=…', async (t) => {
		if (process.env.CHAT_REALTIME_API !== 'sessions') {
			t.skip('the shared test instance runs the current API (set CHAT_REALTIME_API=sessions for this one)');
			return;
		}
		const u = await registerAndLogin('seed004beta');
		const r = await api('POST', '/api/session', { token: u.token });
		assert.equal(r.status, 200, r.text);
		assert.equal(r.json.api, 'sessions');
		assert.match(r.json.client_secret.value, /^ek_/);
		assert.ok(!r.text.includes(UPSTREAM_KEY));
		assert.equal(r.json.sdp_url, `${UPSTREAM_URL}/v1/realtime?model=${r.json.model}`);
		const sdp = await fetch(r.json.sdp_url, {
			method: 'POST',
			headers: { authorization: `Bearer ${r.json.client_secret.value}`, 'content-type': 'application/sdp' },
			body: SDP_OFFER,
		});
		assert.equal(sdp.status, 201);
		assert.ok((await sdp.text()).startsWith('v=0'));
	});
});

test('the seed-000 routes also honour the settings after a session is created with them', async () => {
	// A session created before a settings change uses the new settings on its
	// next turn: settings are read per turn, not frozen per session.
	const u = await registerAndLogin('seed004late');
	const session = await createSession(u.token);
	await putSettings(u.token, { system_prompt: 'Changed later.' });
	const turn = checkSeed000((await readAll(await openStream(u.token, session.id, '[[system]]'))).events);
	assert.equal(turn.done.full_content, 'System prompt: Changed later.');
	const r = await api('GET', `${SESSIONS}/${session.id}`, { token: u.token });
	assert.equal(r.json.messages.length, 2);
});
