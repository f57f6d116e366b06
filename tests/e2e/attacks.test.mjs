// attacks.test.mjs: issue 9, attacks on authentication and authorisation.
// - Forged tokens on EVERY route (auth.test.mjs checks the basic cases on
//   three): alg none in all spellings, algorithm confusion (RS/ES/PS/EdDSA
//   headers signed with the HMAC secret, embedded jwk/jku/kid), other
//   secrets (including the server's other secrets and near misses),
//   expired and future tokens, odd claim types, tampered headers, payloads
//   and signatures, malformed shapes; a valid token of a deleted user.
// - Another user's ids on every route that takes one: read, rename, delete,
//   stream, resume (also through Last-Event-ID and Idempotency-Key),
//   cancel, seed 002's conversation_id and seed 003's sessionId (by UUID
//   and by name, with a token and anonymously).
// - Rate-limit bypass through forged forwarding headers, and through a new
//   token of the same user. (Password guessing, which needs a low auth
//   limit, is in tests/faults/07_bruteforce.test.mjs.)
// Socket.IO rooms are tested with the gateway.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import {
	HTTP_URL,
	LIMITS,
	SESSIONS,
	api,
	b64url,
	checkSeed000,
	claims,
	closeDb,
	createSession,
	db,
	dbMessages,
	fakeStats,
	jwtSecret,
	mapConcurrent,
	openStream,
	randomClientIp,
	randomLoopback,
	rawRequest,
	readAll,
	registerAndLogin,
	signJwt,
	streamInBackground,
	streamTurn,
	tokensText,
	withTimeout,
} from './lib.mjs';

after(closeDb);

const UNAUTHORIZED = { error: 'Unauthorized' };
let tried = 0;

/** Every route behind a token, and the two where a token is optional, as [method, path, body]. */
function routes(sessionId) {
	const chat = { messages: [{ role: 'user', content: 'x [[tokens=1]]' }] };
	return {
		required: [
			['GET', '/api/auth/me'],
			['GET', SESSIONS],
			['POST', SESSIONS, { title: 'forged' }],
			['GET', `${SESSIONS}/${sessionId}`],
			['PATCH', `${SESSIONS}/${sessionId}`, { title: 'forged' }],
			['DELETE', `${SESSIONS}/${sessionId}`],
			['POST', `${SESSIONS}/${sessionId}/stream`, { content: 'forged [[tokens=1]]' }],
			['GET', `${SESSIONS}/${sessionId}/stream`],
			['POST', `${SESSIONS}/${sessionId}/cancel`],
			['POST', '/stream/chat', { message: 'forged [[tokens=1]]' }],
			['GET', '/api/settings'],
			['PUT', '/api/settings', { system_prompt: 'forged' }],
			['POST', '/api/session'],
			['POST', '/openai/chatCompletion', chat],
			['POST', '/api/livekit/token', { roomName: 'r', participantName: 'p' }],
			['POST', '/v1/chat/completions', { model: 'gpt-4o-mini', ...chat }],
		],
		optional: [
			['POST', '/api/v2/ai/chat/stream', { message: 'forged [[tokens=1]]' }],
			['POST', '/api/chat', { message: 'forged [[tokens=1]]' }],
		],
	};
}

/** What a refused request must not have caused. */
async function footprint() {
	const [stats, rows] = await Promise.all([
		fakeStats(),
		db().query(
			`SELECT (SELECT count(*) FROM chat_sessions)::int AS sessions,
			        (SELECT count(*) FROM messages)::int AS messages,
			        (SELECT count(*) FROM user_settings)::int AS settings,
			        (SELECT coalesce(max(updated_at), 'epoch') FROM chat_sessions)::text AS touched`,
		),
	]);
	return { upstream: stats.chat_requests, secrets: stats.realtime_secrets, ...rows.rows[0] };
}

/** The header and payload of a token, re-signed as the attacker likes. */
const part = (x) => b64url(typeof x === 'string' ? x : JSON.stringify(x));
const hmac = (alg, key, input) => b64url(crypto.createHmac(alg, key).update(input).digest());

/** The forgeries: [name, Authorization header value]. */
function forgeries(victim, secret) {
	const now = Math.floor(Date.now() / 1000);
	const c = claims(victim.userId);
	const sign = (header, payload, key = secret, alg = 'sha256') => {
		const input = `${part(header)}.${part(payload)}`;
		return `${input}.${hmac(alg, key, input)}`;
	};
	const hs = { alg: 'HS256', typ: 'JWT' };
	const real = victim.token.split('.');
	const { publicKey } = crypto.generateKeyPairSync('rsa', { modulusLength: 2048 });
	const pem = publicKey.export({ type: 'spki', format: 'pem' });
	const jwk = publicKey.export({ format: 'jwk' });
	const other = crypto.generateKeyPairSync('ec', { namedCurve: 'P-256' });
	const es256 = (() => {
		const input = `${part({ alg: 'ES256', typ: 'JWT' })}.${part(c)}`;
		return `${input}.${b64url(crypto.sign('sha256', Buffer.from(input), { key: other.privateKey, dsaEncoding: 'ieee-p1363' }))}`;
	})();
	const list = [
		// alg none and friends
		...['none', 'None', 'NONE', 'nOnE', ''].map((alg) => [`alg "${alg}"`, `${part({ alg, typ: 'JWT' })}.${part(c)}.`]),
		['alg none with the signature of a real token', `${part({ alg: 'none' })}.${part(c)}.${real[2]}`],
		['no alg at all, HS256 signature', sign({ typ: 'JWT' }, c)],
		['alg null, HS256 signature', sign({ alg: null }, c)],
		['alg as an array', sign({ alg: ['HS256'] }, c)],
		// algorithm confusion
		// (libjwt reads the alg name case-insensitively, so "hs256" signed
		// with the right secret is a valid token, not a forgery.)
		...['RS256', 'RS512', 'ES256', 'PS256', 'EdDSA', 'HS256 ', 'HS256\u0000'].map((alg) => [`alg ${alg}, signed with the HMAC secret`, sign({ alg, typ: 'JWT' }, c)]),
		['RS256 header, HMAC keyed with an RSA public key', sign({ alg: 'RS256' }, c, pem)],
		['HS256 keyed with an RSA public key (PEM)', sign(hs, c, pem)],
		['ES256 signed with an attacker key', es256],
		['an embedded jwk', sign({ ...hs, jwk }, c, 'attacker-secret-attacker-secret-attacker')],
		['a jku to fetch the key from', sign({ ...hs, jku: 'http://127.0.0.1:1/jwks.json' }, c, 'attacker-secret-attacker-secret-attacker')],
		['a kid pointing at /dev/null, empty key', sign({ ...hs, kid: '../../../../../../dev/null' }, c, '')],
		['a kid with SQL', sign({ ...hs, kid: "x' UNION SELECT 'k" }, c, 'k')],
		['x5u and x5c', sign({ ...hs, x5u: 'http://127.0.0.1:1/c.pem', x5c: ['MIIB'] }, c, 'attacker-secret-attacker-secret-attacker')],
		['HS384 with the right secret', sign({ alg: 'HS384' }, c, secret, 'sha384')],
		['HS512 with the right secret', sign({ alg: 'HS512' }, c, secret, 'sha512')],
		['HS256 header, HS512 signature', sign(hs, c, secret, 'sha512')],
		// other secrets
		['an empty secret', sign(hs, c, '')],
		['the secret with a trailing newline (as in the file)', sign(hs, c, `${secret}\n`)],
		['the secret minus its last character', sign(hs, c, secret.slice(0, -1))],
		['the secret in upper case', sign(hs, c, secret.toUpperCase())],
		['the secret hex-decoded', sign(hs, c, Buffer.from(secret, 'hex'))],
		['"secret"', sign(hs, c, 'secret')],
		['the LiveKit API secret', sign(hs, c, process.env.LIVEKIT_API_SECRET ?? 'test-livekit-secret-0123456789abcdef')],
		['the upstream API key', sign(hs, c, process.env.CHAT_UPSTREAM_KEY ?? 'test-upstream-key-not-secret')],
		// time
		['expired a second ago', sign(hs, { ...c, iat: now - 100, exp: now - 1 })],
		['expiring right now', sign(hs, { ...c, iat: now - 100, exp: now })],
		['exp 0', sign(hs, { ...c, exp: 0 })],
		['exp negative', sign(hs, { ...c, exp: -1 })],
		['exp as a string', sign(hs, { ...c, exp: String(now + 3600) })],
		['exp as a float', sign(hs, { ...c, exp: now + 3600.5 })],
		['exp 1e300', sign(hs, { ...c, exp: 1e300 })],
		['exp null', sign(hs, { ...c, exp: null })],
		['nbf in a minute', sign(hs, { ...c, nbf: now + 60 })],
		['iat in a minute', sign(hs, { ...c, iat: now + 60 })],
		['iat far in the future', sign(hs, { ...c, iat: 32503680000, exp: 32503683600 })],
		// claims
		['iss of someone else', sign(hs, { ...c, iss: 'evil' })],
		['iss in upper case', sign(hs, { ...c, iss: 'CHATD' })],
		['iss as an array', sign(hs, { ...c, iss: ['chatd'] })],
		['iss with a NUL after it', sign(hs, { ...c, iss: 'chatd\u0000evil' })],
		['sub of nobody', sign(hs, { ...c, sub: crypto.randomUUID() })],
		['sub with SQL after the id', sign(hs, { ...c, sub: `${victim.userId}' OR '1'='1` })],
		['sub with a NUL after the id', sign(hs, { ...c, sub: `${victim.userId}\u0000x` })],
		['sub as a number', sign(hs, { ...c, sub: 1 })],
		['sub as an array', sign(hs, { ...c, sub: [victim.userId] })],
		['sub as an object', sign(hs, { ...c, sub: { id: victim.userId } })],
		['sub null', sign(hs, { ...c, sub: null })],
		['sub "*"', sign(hs, { ...c, sub: '*' })],
		['a payload that is not an object', sign(hs, '"just a string"')],
		['a payload that is not JSON', `${part(hs)}.${b64url('{sub:')}.${hmac('sha256', secret, `${part(hs)}.${b64url('{sub:')}`)}`],
		// tampering with a real token
		['the real token, payload swapped for another user', `${real[0]}.${part({ ...JSON.parse(Buffer.from(real[1], 'base64url')), sub: crypto.randomUUID() })}.${real[2]}`],
		['the real token, header swapped for alg none', `${part({ alg: 'none', typ: 'JWT' })}.${real[1]}.${real[2]}`],
		['the real token, signature cut short', `${real[0]}.${real[1]}.${real[2].slice(0, -4)}`],
		['the real token, signature extended', `${real[0]}.${real[1]}.${real[2]}AAAA`],
		['the real token, signature in standard base64', `${real[0]}.${real[1]}.${Buffer.from(real[2], 'base64url').toString('base64')}`],
		['the real token with a fourth segment', `${victim.token}.x`],
		['the real token with a trailing dot', `${victim.token}.`],
		['the real token with a space inside', `${real[0]}. ${real[1]}.${real[2]}`],
		['the real token twice', `${victim.token} ${victim.token}`],
		['five segments (a JWE shape)', `${real[0]}.${real[1]}.${real[2]}.${real[2]}.${real[2]}`],
		['empty segments', '..'],
		['a 6 KB token', `${real[0]}.${b64url(crypto.randomBytes(4500))}.${real[2]}`],
	];
	return list.map(([name, token]) => [name, `Bearer ${token}`]);
}

describe('forged tokens on every route', () => {
	let victim;
	let session;
	before(async () => {
		victim = await registerAndLogin('forge');
		session = await createSession(victim.token, { title: 'untouched' });
	});

	test('control: the victim’s own token, and one signed here with the right secret and claims, are accepted on every route', async () => {
		const forged = signJwt(claims(victim.userId));
		const { required, optional } = routes(crypto.randomUUID());
		for (const token of [victim.token, forged]) {
			for (const [method, path, body] of [...required, ...optional]) {
				const r = await api(method, path, { token, body });
				assert.notEqual(r.status, 401, `${method} ${path}: ${r.text.slice(0, 120)}`);
				assert.ok(r.status < 500 || (path === '/api/session' && r.status === 502), `${method} ${path}: ${r.status} ${r.text.slice(0, 120)}`);
			}
		}
	});

	test('every forgery, on every route (tokens required or optional): 401 {"error":"Unauthorized"}, nothing called, nothing stored', async (t) => {
		const secret = jwtSecret();
		const list = forgeries(victim, secret);
		const { required, optional } = routes(session.id);
		const before = await footprint();
		const failures = [];
		await mapConcurrent(list, 8, async ([name, authorization]) => {
			for (const [method, path, body] of [...required, ...optional]) {
				tried += 1;
				const r = await rawRequest(method, `${HTTP_URL}${path}`, { body, headers: { authorization }, timeout: 20000 });
				if (r.status !== 401 || JSON.stringify(r.json) !== JSON.stringify(UNAUTHORIZED))
					failures.push(`${name}: ${method} ${path} → ${r.status} ${r.text.slice(0, 80)}`);
			}
		});
		t.diagnostic(`${list.length} forgeries × ${required.length + optional.length} routes`);
		assert.deepEqual(failures.slice(0, 20), [], `${failures.length} forged requests were not refused`);
		assert.deepEqual(await footprint(), before, 'no upstream call, no row created or changed');
		const mine = await api('GET', `${SESSIONS}/${session.id}`, { token: victim.token });
		assert.equal(mine.json.title, 'untouched');
	});

	test('?access_token= (for EventSource) is a credential on GET only, never over a bad Authorization header; cookies and other headers are none', async () => {
		// Percent-encoded whole: the request line holds nothing JWT-shaped,
		// whatever nginx logs.
		const q = (token) => [...token].map((ch) => `%${ch.charCodeAt(0).toString(16).padStart(2, '0')}`).join('');
		tried += 1;
		const ok = await rawRequest('GET', `${HTTP_URL}/api/auth/me?access_token=${q(victim.token)}`);
		assert.equal(ok.status, 200, 'GET with ?access_token= (what EventSource can do)');
		for (const [what, method, path, opts] of [
			['POST with ?access_token=', 'POST', `${SESSIONS}?access_token=${q(victim.token)}`, { body: { title: 'x' } }],
			['PATCH with ?access_token=', 'PATCH', `${SESSIONS}/${session.id}?access_token=${q(victim.token)}`, { body: { title: 'x' } }],
			['DELETE with ?access_token=', 'DELETE', `${SESSIONS}/${session.id}?access_token=${q(victim.token)}`, {}],
			['POST stream with ?access_token=', 'POST', `${SESSIONS}/${session.id}/stream?access_token=${q(victim.token)}`, { body: { content: 'x' } }],
			['GET, a bad Authorization and a good ?access_token=', 'GET', `/api/auth/me?access_token=${q(victim.token)}`, { headers: { authorization: 'Bearer garbage' } }],
			['GET, Basic credentials and a good ?access_token=', 'GET', `/api/auth/me?access_token=${q(victim.token)}`, { headers: { authorization: 'Basic eDp5' } }],
			['GET with ?token=', 'GET', `/api/auth/me?token=${q(victim.token)}`, {}],
			['GET with a cookie', 'GET', '/api/auth/me', { headers: { cookie: `token=${victim.token}; access_token=${victim.token}` } }],
			['GET with X-Access-Token', 'GET', '/api/auth/me', { headers: { 'x-access-token': victim.token } }],
			['GET with Proxy-Authorization', 'GET', '/api/auth/me', { headers: { 'proxy-authorization': `Bearer ${victim.token}` } }],
		]) {
			tried += 1;
			const r = await rawRequest(method, `${HTTP_URL}${path}`, opts);
			assert.equal(r.status, 401, `${what}: ${r.status} ${r.text.slice(0, 100)}`);
			assert.deepEqual(r.json, UNAUTHORIZED, what);
		}
		assert.equal((await api('GET', `${SESSIONS}/${session.id}`, { token: victim.token })).json.title, 'untouched');
	});

	test('every forgery as ?access_token= on the GET routes: 401', async (t) => {
		const list = forgeries(victim, jwtSecret());
		const gets = routes(session.id).required.filter(([m]) => m === 'GET');
		const failures = [];
		await mapConcurrent(list, 8, async ([name, authorization]) => {
			const token = authorization.slice('Bearer '.length);
			for (const [, path] of gets) {
				tried += 1;
				const r = await rawRequest('GET', `${HTTP_URL}${path}${path.includes('?') ? '&' : '?'}access_token=${encodeURIComponent(token)}`);
				if (r.status !== 401) failures.push(`${name}: GET ${path} → ${r.status} ${r.text.slice(0, 80)}`);
			}
		});
		t.diagnostic(`${list.length} forgeries × ${gets.length} GET routes`);
		assert.deepEqual(failures.slice(0, 20), [], `${failures.length} forged query tokens were not refused`);
	});

	test('the valid token of a user deleted since: 401 on every route, nothing stored', async () => {
		const doomed = await registerAndLogin('forge_deleted');
		const theirs = await createSession(doomed.token);
		await db().query('DELETE FROM users WHERE id = $1', [doomed.userId]);
		const before = await footprint();
		const { required, optional } = routes(theirs.id);
		for (const [method, path, body] of [...required, ...optional]) {
			tried += 1;
			const r = await api(method, path, { token: doomed.token, body });
			assert.equal(r.status, 401, `${method} ${path}: ${r.text.slice(0, 120)}`);
			assert.deepEqual(r.json, UNAUTHORIZED);
		}
		// A token re-signed here for the deleted id fares no better.
		const resigned = signJwt(claims(doomed.userId));
		for (const [method, path, body] of required) {
			tried += 1;
			assert.equal((await api(method, path, { token: resigned, body })).status, 401, `${method} ${path}`);
		}
		assert.deepEqual(await footprint(), before);
	});
});

describe('another user’s ids, on every route that takes one', () => {
	let victim;
	let intruder;
	let vSession; // the victim's session with a finished reply
	let vReply;
	let vKey; // the Idempotency-Key of that send
	let vNamed; // the victim's seed-002 conversation named "shared-name"
	let vSeed3; // the victim's seed-003 session named "my-session"
	let anonSession; // a seed-003 session of nobody
	const SECRET_WORDS = 'victim-private-words';

	before(async () => {
		victim = await registerAndLogin('owner');
		intruder = await registerAndLogin('intruder');
		vSession = await createSession(victim.token, { title: 'victim title' });
		vKey = `key-${crypto.randomBytes(6).toString('hex')}`;
		const turn = await streamTurn(victim.token, vSession.id, `${SECRET_WORDS} [[tokens=4]]`, { headers: { 'idempotency-key': vKey } });
		vReply = turn.start.message_id;
		await api('POST', '/stream/chat', { token: victim.token, body: { message: `${SECRET_WORDS} [[tokens=1]]`, conversation_id: 'shared-name' } });
		const { rows } = await db().query(`SELECT id::text FROM chat_sessions WHERE user_id = $1 AND external_id = 'shared-name'`, [victim.userId]);
		vNamed = rows[0].id;
		await api('POST', '/api/v2/ai/chat/stream', { token: victim.token, body: { message: `${SECRET_WORDS} [[tokens=1]]`, sessionId: 'my-session' } });
		vSeed3 = (await db().query(`SELECT id::text FROM chat_sessions WHERE user_id = $1 AND external_id = 'my-session'`, [victim.userId])).rows[0].id;
		const anon = await api('POST', '/api/v2/ai/chat/stream', { body: { message: 'anonymous [[tokens=1]]' }, headers: { 'x-forwarded-for': randomClientIp() } });
		anonSession = (await readAll(new Response(anon.text))).events[0].json.sessionId;
		await api('PUT', '/api/settings', { token: victim.token, body: { system_prompt: `${SECRET_WORDS} prompt` } });
	});

	/** The victim's sessions and messages, to compare before and after. */
	async function victimState() {
		const { rows } = await db().query(
			`SELECT s.id::text, s.title, s.updated_at::text, (SELECT count(*) FROM messages m WHERE m.session_id = s.id)::int AS n
			   FROM chat_sessions s WHERE s.user_id = $1 ORDER BY s.id`,
			[victim.userId],
		);
		return rows;
	}

	test('read, rename, delete, stream, resume and cancel with the victim’s session ids: 404 "Session not found", exactly as an unknown id, and nothing changes', async () => {
		const before = await victimState();
		const stats = await fakeStats();
		const unknown = crypto.randomUUID();
		for (const id of [vSession.id, vNamed, vSeed3, anonSession]) {
			for (const [method, path, body, headers] of [
				['GET', `${SESSIONS}/${id}`],
				['PATCH', `${SESSIONS}/${id}`, { title: 'pwned' }],
				['DELETE', `${SESSIONS}/${id}`],
				['POST', `${SESSIONS}/${id}/stream`, { content: 'pwned [[tokens=1]]' }],
				['POST', `${SESSIONS}/${id}/stream`, { content: 'pwned [[tokens=1]]' }, { 'idempotency-key': vKey }],
				['GET', `${SESSIONS}/${id}/stream`],
				['GET', `${SESSIONS}/${id}/stream`, undefined, { 'last-event-id': `${vReply}:0` }],
				['GET', `${SESSIONS}/${id}/stream?lastEventId=${vReply}:1`],
				['POST', `${SESSIONS}/${id}/cancel`],
			]) {
				tried += 2;
				const r = await api(method, path, { token: intruder.token, body, headers });
				const u = await api(method, path.replace(id, unknown), { token: intruder.token, body, headers });
				assert.equal(r.status, 404, `${method} ${path}: ${r.status} ${r.text.slice(0, 120)}`);
				assert.deepEqual(r.json, u.json, `${method} ${path}: the same answer as for an id that does not exist`);
				assert.doesNotMatch(r.text, new RegExp(SECRET_WORDS));
			}
		}
		assert.deepEqual(await victimState(), before, 'the victim’s sessions are untouched');
		assert.equal((await fakeStats()).chat_requests, stats.chat_requests, 'no upstream call');
	});

	test('the victim’s reply id in Last-Event-ID or the victim’s Idempotency-Key, on the intruder’s own session: no replay of the victim’s reply', async () => {
		const own = await createSession(intruder.token);
		await streamTurn(intruder.token, own.id, 'mine [[tokens=2]]');
		for (const headers of [{ 'last-event-id': `${vReply}:0` }, { 'last-event-id': `${vReply}:2` }]) {
			tried += 1;
			const r = await api('GET', `${SESSIONS}/${own.id}/stream`, { token: intruder.token, headers });
			assert.ok([400, 404].includes(r.status), `${JSON.stringify(headers)}: ${r.status} ${r.text.slice(0, 200)}`);
			assert.doesNotMatch(r.text, new RegExp(`${SECRET_WORDS}|${vReply}`));
		}
		tried += 1;
		const r = await api('GET', `${SESSIONS}/${own.id}/stream?lastEventId=${vReply}:0`, { token: intruder.token });
		assert.doesNotMatch(r.text, new RegExp(`${SECRET_WORDS}|${vReply}`));
		// The same Idempotency-Key in another user's session is another send.
		tried += 1;
		const again = await streamTurn(intruder.token, own.id, 'own send [[tokens=2]]', { headers: { 'idempotency-key': vKey } });
		assert.ok(again.done, 'a send of its own');
		assert.notEqual(again.start.message_id, vReply, 'not attached to the victim’s reply');
		assert.equal(again.text, tokensText(2));
	});

	test('cancel of the victim’s running stream by the intruder: 404, and the stream runs on to its end', async () => {
		const s = streamInBackground((signal) => openStream(victim.token, vSession.id, 'long [[tokens=20]] [[delay=50]]', { signal }));
		await withTimeout(s.started, 10000, 'the victim’s stream');
		tried += 1;
		const c = await api('POST', `${SESSIONS}/${vSession.id}/cancel`, { token: intruder.token });
		assert.equal(c.status, 404);
		const res = await withTimeout(s.done, 15000, 'the victim’s stream to end');
		const parsed = checkSeed000(res.events);
		assert.equal(parsed.done?.status, 'complete');
		assert.equal(parsed.text, tokensText(20));
	});

	test('seeds 002 and 003: the victim’s session by UUID is 404; by name it is another session, and the model never sees the victim’s words', async () => {
		const stats = await fakeStats();
		for (const [path, ref] of [['/stream/chat', 'conversation_id'], ['/api/v2/ai/chat/stream', 'sessionId']]) {
			for (const id of [vSession.id, vNamed, vSeed3, anonSession]) {
				tried += 1;
				const r = await api('POST', path, { token: intruder.token, body: { message: 'pwned', [ref]: id } });
				assert.equal(r.status, 404, `${path} ${ref}=${id}: ${r.status} ${r.text.slice(0, 120)}`);
			}
		}
		for (const id of [vSession.id, vNamed, vSeed3]) {
			tried += 1;
			const r = await api('POST', '/api/v2/ai/chat/stream', { body: { message: 'pwned', sessionId: id }, headers: { 'x-forwarded-for': randomClientIp() } });
			assert.equal(r.status, 404, `anonymous sessionId=${id}: ${r.status}`);
		}
		assert.equal((await fakeStats()).chat_requests, stats.chat_requests, 'no upstream call for any of them');
		// Same names: the intruder's own sessions; [[request]] shows what the model got.
		for (const [path, ref, name] of [['/stream/chat', 'conversation_id', 'shared-name'], ['/api/v2/ai/chat/stream', 'sessionId', 'my-session']]) {
			for (const token of path === '/stream/chat' ? [intruder.token] : [intruder.token, undefined]) {
				tried += 1;
				const r = await api('POST', path, { token, body: { message: '[[request]]', [ref]: name }, headers: { 'x-forwarded-for': randomClientIp() } });
				assert.equal(r.status, 200, r.text);
				const { events } = await readAll(new Response(r.text));
				const sent = events.map((e) => e.json?.content ?? '').join('');
				assert.doesNotMatch(sent, new RegExp(SECRET_WORDS), `${path} ${name} ${token ? 'as the intruder' : 'anonymously'}: the victim’s words reached the model`);
			}
		}
		const v = await dbMessages(vNamed);
		assert.ok(v.every((m) => !/\[\[request\]\]/.test(m.content)), 'nothing was added to the victim’s conversation');
	});

	// FINDING (reported; left failing on purpose until chatd is fixed): seed
	// 003's anonymous sessions named by a string live in one namespace shared
	// by every anonymous caller (user_id NULL + external_id), so two
	// strangers who pick the same sessionId — e.g. "my-session", the name in
	// seed 003's own example — share one conversation, and the model is
	// handed the other's messages as history (here: echoed by [[request]]).
	test('two anonymous callers who pick the same sessionId do not share a conversation', async () => {
		const name = `anon-shared-${crypto.randomBytes(4).toString('hex')}`;
		const words = `anonymous-private-${crypto.randomBytes(4).toString('hex')}`;
		tried += 2;
		const a = await api('POST', '/api/v2/ai/chat/stream', { body: { message: `${words} [[tokens=1]]`, sessionId: name }, headers: { 'x-forwarded-for': randomClientIp() } });
		assert.equal(a.status, 200, a.text);
		const b = await rawRequest('POST', `${HTTP_URL}/api/v2/ai/chat/stream`, { body: { message: '[[request]]', sessionId: name }, localAddress: randomLoopback() });
		assert.equal(b.status, 200, b.text);
		const { events } = await readAll(new Response(b.text));
		const sent = events.map((e) => e.json?.content ?? '').join('');
		assert.doesNotMatch(sent, new RegExp(words), 'another anonymous caller’s message reached the model as history');
	});

	test('lists and settings are per user: the intruder sees none of the victim’s sessions, and not the victim’s system prompt', async () => {
		const mine = [];
		for (let offset = 0; ; offset += 100) {
			tried += 1;
			const r = await api('GET', `${SESSIONS}?limit=100&offset=${offset}`, { token: intruder.token });
			mine.push(...r.json.sessions);
			if (!r.json.has_more) break;
		}
		const theirs = new Set((await victimState()).map((s) => s.id));
		assert.ok(mine.every((s) => !theirs.has(s.id) && s.user_id === intruder.userId), 'only the intruder’s own sessions');
		tried += 2;
		const set = await api('GET', '/api/settings', { token: intruder.token });
		assert.doesNotMatch(set.text, new RegExp(SECRET_WORDS));
		const own = await createSession(intruder.token);
		const sys = await streamTurn(intruder.token, own.id, '[[system]]');
		assert.doesNotMatch(sys.text, new RegExp(SECRET_WORDS));
	});

	test('a deleted session cannot be brought back by its old id, by anybody', async () => {
		const s = await createSession(victim.token, { title: 'to delete' });
		await streamTurn(victim.token, s.id, 'bye [[tokens=1]]');
		assert.equal((await api('DELETE', `${SESSIONS}/${s.id}`, { token: victim.token })).status, 204);
		for (const token of [victim.token, intruder.token]) {
			tried += 3;
			assert.equal((await api('POST', `${SESSIONS}/${s.id}/stream`, { token, body: { content: 'again' } })).status, 404);
			assert.equal((await api('GET', `${SESSIONS}/${s.id}/stream`, { token })).status, 404);
			assert.equal((await api('POST', '/stream/chat', { token, body: { message: 'again', conversation_id: s.id } })).status, 404);
		}
		const { rows } = await db().query('SELECT count(*)::int AS n FROM messages WHERE session_id = $1', [s.id]);
		assert.equal(rows[0].n, 0);
	});
});

describe('rate-limit bypass', () => {
	const CHEAP = { message: 1 }; // counted, then refused (400) before any upstream call
	const FORGED = ['x-forwarded-for', 'x-real-ip', 'forwarded', 'true-client-ip', 'cf-connecting-ip', 'x-client-ip', 'x-cluster-client-ip', 'client-ip', 'x-originating-ip'];

	function forgedHeaders() {
		const h = {};
		for (const name of FORGED) h[name] = name === 'forwarded' ? `for=${randomClientIp()}` : randomClientIp();
		return h;
	}

	test('from an address that is not a trusted proxy, no forwarding header of any name moves the anonymous limit', async (t) => {
		const limit = LIMITS.chatAnon;
		if (limit === 0 || limit > 2000) {
			t.skip(`CHAT_RATELIMIT_CHAT_ANON = ${limit}: no burst test`);
			return;
		}
		const from = randomLoopback();
		const results = await mapConcurrent(Array.from({ length: limit + 1 }), 32, () => {
			tried += 1;
			return rawRequest('POST', `${HTTP_URL}/api/chat`, { body: CHEAP, headers: forgedHeaders(), localAddress: from });
		});
		const limited = results.filter((r) => r.status === 429).length;
		assert.equal(limited, 1, `${limited} of ${limit + 1} requests with forged headers were limited`);
		assert.ok(results.every((r) => r.status === 400 || r.status === 429), 'each was counted, then refused as a bad body');
		const again = await rawRequest('POST', `${HTTP_URL}/api/chat`, { body: CHEAP, headers: forgedHeaders(), localAddress: from });
		assert.equal(again.status, 429);
		assert.ok(Number(again.headers.get('retry-after')) > 0);
	});

	test('behind the trusted proxy only X-Forwarded-For counts, from its right end: other headers and forged left entries change nothing', async (t) => {
		const limit = LIMITS.chatAnon;
		if (limit === 0 || limit > 2000 || !LIMITS.trustedProxies.includes('127.0.0.1')) {
			t.skip('no anonymous limit, or 127.0.0.1 is not a trusted proxy');
			return;
		}
		const client = randomClientIp();
		const results = await mapConcurrent(Array.from({ length: limit + 1 }), 32, () => {
			tried += 1;
			const h = forgedHeaders();
			h['x-forwarded-for'] = `${randomClientIp()}, ${randomClientIp()}, ${client}`;
			return rawRequest('POST', `${HTTP_URL}/api/chat`, { body: CHEAP, headers: h });
		});
		assert.equal(results.filter((r) => r.status === 429).length, 1, 'one budget for the client the proxy vouches for');
	});

	test('a fresh token of the same user does not reset the user’s budget', async (t) => {
		const limit = LIMITS.chatUser;
		if (limit === 0 || limit > 2000) {
			t.skip(`CHAT_RATELIMIT_CHAT_USER = ${limit}`);
			return;
		}
		const u = await registerAndLogin('rl_tokens');
		const results = await mapConcurrent(Array.from({ length: limit }), 32, () => {
			tried += 1;
			return rawRequest('POST', `${HTTP_URL}/api/chat`, { token: u.token, body: CHEAP, headers: forgedHeaders() });
		});
		assert.ok(results.every((r) => r.status === 400), 'the budget is spent');
		const again = await api('POST', '/api/auth/login', { body: { username: u.username, password: u.password } });
		const forged = signJwt(claims(u.userId));
		for (const token of [again.json.access_token, forged]) {
			tried += 1;
			const r = await rawRequest('POST', `${HTTP_URL}/api/chat`, { token, body: CHEAP, headers: forgedHeaders(), localAddress: randomLoopback() });
			assert.equal(r.status, 429, 'still limited, whatever the token, address or headers');
		}
	});
});

describe('figures', () => {
	test('attacks tried', (t) => {
		t.diagnostic(`auth attacks tried: ${tried}`);
		assert.ok(tried > 0);
	});
});
