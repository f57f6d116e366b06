// auth.test.mjs: SPEC §2, registration, login, /me and every way a token
// must be refused.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { after, before, describe, test } from 'node:test';

import {
	HTTP_URL,
	ISO_MS_RE,
	SESSIONS,
	UUID_RE,
	api,
	b64url,
	claims,
	closeDb,
	createSession,
	db,
	decodeJwtPart,
	isErrorBody,
	jwtSecret,
	registerAndLogin,
	signJwt,
	uniqueName,
} from './lib.mjs';

after(closeDb);

const UNAUTHORIZED = { error: 'Unauthorized' };

/** Asserts a 400/415/... JSON error response of exactly {"error": "..."}. */
function assertJsonError(r, status, what) {
	assert.equal(r.status, status, `${what}: status (body ${r.text})`);
	assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${what}: content-type`);
	assert.ok(isErrorBody(r.json), `${what}: body is {"error": "..."}: ${r.text}`);
}

/** Asserts that body text leaks neither the password nor any argon2 hash. */
function assertNoSecrets(text, password, what) {
	assert.ok(!text.includes(password), `${what}: response contains the password`);
	assert.ok(!/\$argon2/i.test(text), `${what}: response contains a password hash`);
	assert.ok(!/password/i.test(text), `${what}: response mentions a password field: ${text}`);
}

describe('register', () => {
	test('201 with the user, no password and no hash', async () => {
		const username = uniqueName('reg');
		const password = 'correct horse battery staple';
		const email = `${username}@example.com`;
		const r = await api('POST', '/api/auth/register', { body: { username, password, email } });
		assert.equal(r.status, 201, r.text);
		assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
		assert.match(r.json.id, UUID_RE);
		assert.equal(r.json.username, username);
		assert.equal(r.json.email, email);
		assert.match(r.json.created_at, ISO_MS_RE);
		assert.ok(Math.abs(Date.parse(r.json.created_at) - Date.now()) < 120000, 'created_at is now');
		assertNoSecrets(r.text, password, 'register');
		// And PostgreSQL holds an argon2id hash, not the password.
		const { rows } = await db().query('SELECT password_hash FROM users WHERE id = $1', [r.json.id]);
		assert.equal(rows.length, 1);
		assert.match(rows[0].password_hash, /^\$argon2id\$/);
		assert.ok(!rows[0].password_hash.includes(password));
	});

	test('email is optional', async () => {
		const username = uniqueName('noemail');
		const r = await api('POST', '/api/auth/register', { body: { username, password: 'abcdefgh' } });
		assert.equal(r.status, 201, r.text);
		assert.equal(r.json.username, username);
		assert.ok(r.json.email === null || r.json.email === undefined, `email: ${r.json.email}`);
	});

	test('works over plain HTTP too', async () => {
		const username = uniqueName('plain');
		const r = await api('POST', '/api/auth/register', {
			base: HTTP_URL,
			body: { username, password: 'abcdefgh1' },
		});
		assert.equal(r.status, 201, r.text);
		assert.equal(r.json.username, username);
	});

	test('a duplicate username is 409, whatever its case', async () => {
		const username = uniqueName('dup');
		const first = await api('POST', '/api/auth/register', { body: { username, password: 'password1' } });
		assert.equal(first.status, 201, first.text);
		const same = await api('POST', '/api/auth/register', { body: { username, password: 'password2' } });
		assertJsonError(same, 409, 'same name');
		const upper = await api('POST', '/api/auth/register', {
			body: { username: username.toUpperCase(), password: 'password3' },
		});
		assertJsonError(upper, 409, 'upper-case name');
		const { rows } = await db().query('SELECT count(*)::int AS n FROM users WHERE lower(username) = lower($1)', [
			username,
		]);
		assert.equal(rows[0].n, 1, 'only one row was created');
	});

	const bad = [
		['missing username', { password: 'password1' }],
		['missing password', { username: 'x' }],
		['username is a number', { username: 12345, password: 'password1' }],
		['password is a number', { username: 'x', password: 12345678 }],
		['password is null', { username: 'x', password: null }],
		['username is an object', { username: { a: 1 }, password: 'password1' }],
		['empty username', { username: '', password: 'password1' }],
		['password of 7 characters', { username: 'x', password: '1234567' }],
		['email is not an address', { username: 'x', password: 'password1', email: 'nope' }],
		['email is a number', { username: 'x', password: 'password1', email: 5 }],
		['username too long', { username: 'a'.repeat(300), password: 'password1' }],
	];
	for (const [what, body] of bad) {
		test(`400 JSON: ${what}`, async () => {
			// A fresh name for each case, so a 409 cannot hide a missed 400.
			if (body.username === 'x') body.username = uniqueName('bad');
			const r = await api('POST', '/api/auth/register', { body });
			assertJsonError(r, 400, what);
			if (typeof body.username === 'string' && body.username.length > 0) {
				const { rows } = await db().query('SELECT 1 FROM users WHERE lower(username) = lower($1)', [
					body.username,
				]);
				assert.equal(rows.length, 0, `${what}: no user was created`);
			}
		});
	}

	test('400 JSON: malformed JSON', async () => {
		const r = await api('POST', '/api/auth/register', { body: '{"username": "a", "password": ' });
		assertJsonError(r, 400, 'malformed JSON');
	});

	test('400 JSON: a JSON array or a string instead of an object', async () => {
		const arr = await api('POST', '/api/auth/register', { body: '["a","b"]' });
		assertJsonError(arr, 400, 'array body');
		const str = await api('POST', '/api/auth/register', { body: '"username"' });
		assertJsonError(str, 400, 'string body');
	});

	test('400 JSON: empty body', async () => {
		const r = await api('POST', '/api/auth/register', { body: '' });
		assertJsonError(r, 400, 'empty body');
		const none = await api('POST', '/api/auth/register', {});
		assertJsonError(none, 400, 'no body at all');
	});

	test('415 JSON: a body that is not application/json', async () => {
		const username = uniqueName('ctype');
		const body = JSON.stringify({ username, password: 'password1' });
		const plain = await api('POST', '/api/auth/register', { body, headers: { 'content-type': 'text/plain' } });
		assertJsonError(plain, 415, 'text/plain');
		const form = await api('POST', '/api/auth/register', {
			body: `username=${username}&password=password1`,
			headers: { 'content-type': 'application/x-www-form-urlencoded' },
		});
		assertJsonError(form, 415, 'form-urlencoded');
		// With a charset parameter it is still JSON.
		const ok = await api('POST', '/api/auth/register', {
			body,
			headers: { 'content-type': 'application/json; charset=utf-8' },
		});
		assert.equal(ok.status, 201, ok.text);
	});
});

describe('login', () => {
	let user;
	before(async () => {
		user = await registerAndLogin('login');
	});

	for (const route of ['/api/auth/login', '/auth/login']) {
		test(`${route}: a bearer token for the user`, async () => {
			const r = await api('POST', route, { body: { username: user.username, password: user.password } });
			assert.equal(r.status, 200, r.text);
			assert.match(r.headers.get('content-type') ?? '', /^application\/json/);
			assert.equal(r.json.token_type, 'Bearer');
			assert.equal(typeof r.json.access_token, 'string');
			assert.ok(Number.isInteger(r.json.expires_in) && r.json.expires_in > 0, `expires_in ${r.json.expires_in}`);
			assert.equal(r.json.user_id, user.userId);
			assertNoSecrets(r.text, user.password, route);

			// An HS256 JWT with sub, iat, exp, iss.
			const token = r.json.access_token;
			assert.equal(token.split('.').length, 3);
			const header = decodeJwtPart(token, 0);
			const payload = decodeJwtPart(token, 1);
			assert.equal(header.alg, 'HS256');
			assert.equal(payload.sub, user.userId);
			assert.equal(payload.iss, 'chatd');
			const now = Math.floor(Date.now() / 1000);
			assert.ok(Math.abs(payload.iat - now) < 120, `iat ${payload.iat} vs now ${now}`);
			assert.equal(payload.exp - payload.iat, r.json.expires_in);

			// The token works.
			const me = await api('GET', '/api/auth/me', { token });
			assert.equal(me.status, 200, me.text);
			assert.equal(me.json.id, user.userId);
		});
	}

	test('wrong password: 401 JSON, no token', async () => {
		const r = await api('POST', '/api/auth/login', { body: { username: user.username, password: 'wrong-password' } });
		assertJsonError(r, 401, 'wrong password');
		assert.equal(r.json.access_token, undefined);
		const legacy = await api('POST', '/auth/login', { body: { username: user.username, password: 'wrong-password' } });
		assertJsonError(legacy, 401, 'wrong password on /auth/login');
	});

	test('unknown user: 401 JSON, same answer as a wrong password', async () => {
		const r = await api('POST', '/api/auth/login', { body: { username: uniqueName('ghost'), password: 'whatever1' } });
		assertJsonError(r, 401, 'unknown user');
		const wrong = await api('POST', '/api/auth/login', { body: { username: user.username, password: 'whatever1' } });
		assert.deepEqual(r.json, wrong.json, 'the error does not tell which usernames exist');
	});

	test('validation: 400/415 JSON', async () => {
		assertJsonError(await api('POST', '/api/auth/login', { body: { username: user.username } }), 400, 'no password');
		assertJsonError(await api('POST', '/api/auth/login', { body: { password: 'x' } }), 400, 'no username');
		assertJsonError(
			await api('POST', '/api/auth/login', { body: { username: user.username, password: 1 } }),
			400,
			'numeric password',
		);
		assertJsonError(await api('POST', '/api/auth/login', { body: '{"username":' }), 400, 'malformed JSON');
		assertJsonError(await api('POST', '/api/auth/login', { body: '' }), 400, 'empty body');
		assertJsonError(
			await api('POST', '/auth/login', {
				body: JSON.stringify({ username: user.username, password: user.password }),
				headers: { 'content-type': 'text/plain' },
			}),
			415,
			'text/plain',
		);
	});
});

describe('GET /api/auth/me', () => {
	test('the user, no hash', async () => {
		const user = await registerAndLogin('me');
		const r = await api('GET', '/api/auth/me', { token: user.token });
		assert.equal(r.status, 200, r.text);
		assert.deepEqual(r.json, user.user, '/me is the user that register returned');
		assertNoSecrets(r.text, user.password, '/me');
	});
});

describe('rejected credentials: 401 {"error":"Unauthorized"}', () => {
	let user;
	let secret;
	before(async () => {
		user = await registerAndLogin('rej');
		secret = jwtSecret();
	});

	/** Every protected route answers exactly 401 {"error":"Unauthorized"}. */
	async function assertRejected(authorization, what) {
		const headers = authorization === undefined ? {} : { authorization };
		for (const [method, path, body] of [
			['GET', '/api/auth/me'],
			['GET', SESSIONS],
			['POST', SESSIONS, { title: 'should not exist' }],
		]) {
			const r = await api(method, path, { headers, body });
			assert.equal(r.status, 401, `${what}: ${method} ${path} status (body ${r.text})`);
			assert.match(r.headers.get('content-type') ?? '', /^application\/json/, `${what}: content-type`);
			assert.deepEqual(r.json, UNAUTHORIZED, `${what}: ${method} ${path} body`);
		}
	}

	test('control: a token forged here with the right secret and claims is accepted', async () => {
		// Without this, every rejection below could pass for the wrong reason.
		const token = signJwt(claims(user.userId), { secret });
		const r = await api('GET', '/api/auth/me', { token });
		assert.equal(r.status, 200, `forged valid token refused: ${r.text} (is CHAT_VAR/jwt_secret the instance's?)`);
		assert.equal(r.json.id, user.userId);
	});

	test('no Authorization header', () => assertRejected(undefined, 'no header'));
	test('Basic credentials', () =>
		assertRejected(`Basic ${Buffer.from(`${user.username}:${user.password}`).toString('base64')}`, 'Basic'));
	test('"Basic x"', () => assertRejected('Basic x', 'Basic x'));
	test('"Bearer" with no token', () => assertRejected('Bearer ', 'empty bearer'));
	test('garbage token', () => assertRejected('Bearer not.a.jwt', 'garbage'));
	test('random bytes', () => assertRejected(`Bearer ${crypto.randomBytes(48).toString('base64url')}`, 'random'));
	test('the token without "Bearer "', () => assertRejected(user.token, 'raw token'));

	test('alg none', async () => {
		await assertRejected(`Bearer ${signJwt(claims(user.userId), { alg: 'none' })}`, 'alg none');
		// Also with the signature of a real token glued on.
		const real = user.token.split('.');
		const none = signJwt(claims(user.userId), { alg: 'none' }).split('.');
		await assertRejected(`Bearer ${none[0]}.${none[1]}.${real[2]}`, 'alg none + signature');
		// And "None"/"NONE" spellings.
		for (const alg of ['None', 'NONE']) {
			const h = b64url(JSON.stringify({ alg, typ: 'JWT' }));
			await assertRejected(`Bearer ${h}.${none[1]}.`, `alg ${alg}`);
		}
	});

	test('signed with another secret', () =>
		assertRejected(`Bearer ${signJwt(claims(user.userId), { secret: `${secret}x` })}`, 'other secret'));
	test('HS512 with the right secret', () =>
		assertRejected(`Bearer ${signJwt(claims(user.userId), { alg: 'HS512', secret })}`, 'HS512'));
	test('HS384 with the right secret', () =>
		assertRejected(`Bearer ${signJwt(claims(user.userId), { alg: 'HS384', secret })}`, 'HS384'));
	test('header says HS256 but the signature is HS512', async () => {
		const t = signJwt(claims(user.userId), { alg: 'HS512', secret }).split('.');
		const h = b64url(JSON.stringify({ alg: 'HS256', typ: 'JWT' }));
		await assertRejected(`Bearer ${h}.${t[1]}.${t[2]}`, 'HS256 header, HS512 signature');
	});

	test('expired', async () => {
		const now = Math.floor(Date.now() / 1000);
		await assertRejected(
			`Bearer ${signJwt(claims(user.userId, { iat: now - 7200, exp: now - 60 }), { secret })}`,
			'expired',
		);
	});
	test('no exp claim', async () => {
		const c = claims(user.userId);
		delete c.exp;
		await assertRejected(`Bearer ${signJwt(c, { secret })}`, 'no exp');
	});
	test('nbf in the future', async () => {
		const now = Math.floor(Date.now() / 1000);
		await assertRejected(`Bearer ${signJwt(claims(user.userId, { nbf: now + 600 }), { secret })}`, 'nbf future');
	});
	test('iat in the future', async () => {
		const now = Math.floor(Date.now() / 1000);
		await assertRejected(
			`Bearer ${signJwt(claims(user.userId, { iat: now + 600, exp: now + 4000 }), { secret })}`,
			'iat future',
		);
	});
	test('wrong iss', () =>
		assertRejected(`Bearer ${signJwt(claims(user.userId, { iss: 'someone-else' }), { secret })}`, 'wrong iss'));
	test('no iss', async () => {
		const c = claims(user.userId);
		delete c.iss;
		await assertRejected(`Bearer ${signJwt(c, { secret })}`, 'no iss');
	});
	test('sub is not a user id', () =>
		assertRejected(`Bearer ${signJwt(claims('admin'), { secret })}`, 'sub not a uuid'));
	test('no sub', async () => {
		const c = claims(user.userId);
		delete c.sub;
		await assertRejected(`Bearer ${signJwt(c, { secret })}`, 'no sub');
	});

	test('tampered payload (another sub, original signature)', async () => {
		const other = await registerAndLogin('victim');
		const [h, , s] = user.token.split('.');
		const payload = { ...decodeJwtPart(user.token, 1), sub: other.userId };
		await assertRejected(`Bearer ${h}.${b64url(JSON.stringify(payload))}.${s}`, 'tampered sub');
		// Extending exp is tampering too.
		const longer = { ...decodeJwtPart(user.token, 1), exp: decodeJwtPart(user.token, 1).exp + 1 };
		await assertRejected(`Bearer ${h}.${b64url(JSON.stringify(longer))}.${s}`, 'tampered exp');
	});

	test('tampered signature', async () => {
		const [h, p, s] = user.token.split('.');
		const sig = Buffer.from(s, 'base64url');
		sig[0] ^= 1;
		await assertRejected(`Bearer ${h}.${p}.${b64url(sig)}`, 'flipped bit');
		await assertRejected(`Bearer ${h}.${p}.`, 'no signature');
		await assertRejected(`Bearer ${h}.${p}`, 'two parts');
	});

	test('the token of a user deleted in PostgreSQL', async () => {
		const doomed = await registerAndLogin('deleted');
		const before = await api('GET', '/api/auth/me', { token: doomed.token });
		assert.equal(before.status, 200, 'the token works before the deletion');
		const del = await db().query('DELETE FROM users WHERE id = $1', [doomed.userId]);
		assert.equal(del.rowCount, 1);
		await assertRejected(`Bearer ${doomed.token}`, 'deleted user');
		// Logging in is no longer possible either.
		const login = await api('POST', '/api/auth/login', {
			body: { username: doomed.username, password: doomed.password },
		});
		assert.equal(login.status, 401, login.text);
	});

	test('none of the rejected requests created a session', async () => {
		const { rows } = await db().query(
			`SELECT count(*)::int AS n FROM chat_sessions WHERE title = 'should not exist'`,
		);
		assert.equal(rows[0].n, 0);
	});

	test('the stream route refuses too, before any upstream call', async () => {
		const session = await createSession(user.token, { title: 'mine' });
		const forged = signJwt(claims(user.userId), { alg: 'HS512', secret });
		for (const authorization of [undefined, `Bearer ${forged}`, 'Bearer garbage']) {
			const headers = authorization === undefined ? {} : { authorization };
			const r = await api('POST', `${SESSIONS}/${session.id}/stream`, { headers, body: { content: 'hi' } });
			assert.equal(r.status, 401, r.text);
			assert.deepEqual(r.json, UNAUTHORIZED);
		}
		const { rows } = await db().query('SELECT count(*)::int AS n FROM messages WHERE session_id = $1', [
			session.id,
		]);
		assert.equal(rows[0].n, 0, 'no message was stored');
	});
});
