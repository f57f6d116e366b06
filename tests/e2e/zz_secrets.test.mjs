// zz_secrets.test.mjs: SPEC §7 ("The API key, passwords and JWT secret
// never appear in responses or logs") and issue 5 ("nothing secret in
// them"). Named to sort last: scripts/test runs the e2e files in name order
// on one instance, so this scan reads the service logs of the whole run.
//
// First it walks the paths where a secret could slip into a log (logins
// with right and wrong passwords, forged and expired tokens, upstream
// failures, the voice and LiveKit tokens), then it scans every service log
// in $CHAT_LOG_DIR for: the upstream API key, the JWT secret, the LiveKit
// secret, a DATABASE_URL password, every password the e2e files use (string
// literals found in tests/e2e/*.test.mjs, a fixed list, and the pattern
// registerAndLogin generates), anything JWT-shaped (eyJ…), bearer
// credentials, argon2 hashes and ephemeral realtime keys (ek_…).
//
// Findings are reported by file, line and kind, with the secret itself
// redacted (the test output is itself saved as a log).
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { readFileSync, readdirSync, statSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
	LOG_DIR,
	REPO,
	SESSIONS,
	UPSTREAM_KEY,
	api,
	claims,
	closeDb,
	createSession,
	jwtSecret,
	openStream,
	registerAndLogin,
	run,
	signJwt,
	sleep,
	uniqueName,
} from './lib.mjs';

after(closeDb);

const E2E_DIR = path.dirname(new URL(import.meta.url).pathname);

// Passwords the e2e files use, as of this writing (the literal scan below
// finds new ones); too short or too common strings ("x", "test",
// "1234567") are left out: they would match innocent text.
const KNOWN_PASSWORDS = [
	'correct horse battery staple',
	'wrong-password',
	'whatever1',
	'password1',
	'password2',
	'password3',
	'abcdefgh',
	'abcdefgh1',
];
// registerAndLogin's passwords, and the ones made here the same way.
const GENERATED_PASSWORD_RE = /\bpw-[0-9a-f]{16}\b/;

/** Password string literals of the e2e files: `password: '…'`, `password = "…"`, `"password":"…"`. */
function passwordLiterals() {
	const out = new Set();
	for (const f of readdirSync(E2E_DIR)) {
		if (!f.endsWith('.mjs')) continue;
		const src = readFileSync(path.join(E2E_DIR, f), 'utf8');
		for (const m of src.matchAll(/password['"]?\s*[:=]\s*(['"`])((?:(?!\1)[^\\\n$]|\\.)*)\1/gi)) out.add(m[2]);
	}
	return [...out];
}

/** A string worth scanning for: long enough not to match innocent text. */
const scannable = (s) => typeof s === 'string' && s.length >= 8 && !/^\d+$/.test(s);

// Secrets used by this file's own requests, added in the first test.
const extraPasswords = [];

/** [{kind, test(line) -> bool}] of everything that must not be logged. */
function secretsToFind() {
	const exact = [];
	const add = (kind, value) => {
		if (scannable(value)) exact.push({ kind, value });
	};
	add('upstream API key (CHAT_UPSTREAM_KEY)', UPSTREAM_KEY);
	add('upstream API key (OPENAI_API_KEY)', process.env.OPENAI_API_KEY);
	add('JWT secret', jwtSecret());
	add('JWT secret (JWT_SECRET)', process.env.JWT_SECRET);
	add('LiveKit secret', process.env.LIVEKIT_API_SECRET);
	add('LiveKit secret (CHAT_LIVEKIT_SECRET)', process.env.CHAT_LIVEKIT_SECRET);
	for (const url of [process.env.DATABASE_URL, process.env.CHAT_TEST_DATABASE_URL]) {
		try {
			if (url) add('database password', decodeURIComponent(new URL(url).password));
		} catch {
			// not a URL: a keyword=value conninfo
			const m = /\bpassword\s*=\s*'?([^'\s]+)/.exec(url ?? '');
			if (m) add('database password', m[1]);
		}
	}
	for (const p of new Set([...KNOWN_PASSWORDS, ...passwordLiterals(), ...extraPasswords])) add('a test password', p);
	const patterns = [
		{ kind: 'a generated test password (pw-…)', re: GENERATED_PASSWORD_RE },
		{ kind: 'a JWT (eyJ…)', re: /eyJ[A-Za-z0-9_-]{10,}/ },
		{ kind: 'a bearer credential', re: /\bBearer\s+[A-Za-z0-9._~+/=-]{20,}/i },
		{ kind: 'an argon2 hash', re: /\$argon2(?:id|i|d)\$/ },
		{ kind: 'an ephemeral realtime key (ek_…)', re: /\bek_[A-Za-z0-9_-]{8,}/ },
		{ kind: 'an OpenAI-style key (sk-…)', re: /\bsk-[A-Za-z0-9_-]{16,}/ },
	];
	return [
		...exact.map(({ kind, value }) => ({ kind, test: (line) => line.includes(value), redact: (l) => l.replaceAll(value, '«REDACTED»') })),
		...patterns.map(({ kind, re }) => ({ kind, test: (line) => re.test(line), redact: (l) => l.replace(new RegExp(re.source, `${re.flags}g`), '«REDACTED»') })),
	];
}

/**
 * The service logs: every file in LOG_DIR but the test runners' own output
 * (test-*.log, which quotes assertion messages) and the fake upstream's log
 * (the stand-in for OpenAI: not part of the system under test).
 */
function serviceLogs() {
	return readdirSync(LOG_DIR)
		.filter((f) => !f.startsWith('test-') && f !== 'upstream.log')
		.map((f) => path.join(LOG_DIR, f))
		.filter((f) => {
			try {
				return statSync(f).isFile(); // follows the postgresql.log link
			} catch {
				return false;
			}
		});
}

describe('no secret in the logs after the e2e run', () => {
	before(async () => {
		// Paths where a secret could reach a log.
		const user = await registerAndLogin('secrets');
		extraPasswords.push(user.password);
		const wrong = `pw-${crypto.randomBytes(8).toString('hex')}`;
		extraPasswords.push(wrong);
		assert.equal((await api('POST', '/api/auth/login', { body: { username: user.username, password: wrong } })).status, 401);
		assert.equal((await api('POST', '/auth/login', { body: { username: uniqueName('ghost'), password: wrong } })).status, 401);
		const dup = await api('POST', '/api/auth/register', { body: { username: user.username, password: wrong } });
		assert.equal(dup.status, 409);
		// Forged, expired and malformed tokens.
		const forged = signJwt(claims(user.userId), { secret: 'not-the-secret-0123456789abcdef0123' });
		const expired = signJwt(claims(user.userId, { exp: Math.floor(Date.now() / 1000) - 60 }));
		for (const token of [forged, expired, `${user.token}x`, 'eyJhbGciOiJub25lIn0.eyJzdWIiOiJ4In0.'])
			assert.equal((await api('GET', '/api/auth/me', { token })).status, 401);
		// Streams, a failing upstream, the voice and LiveKit tokens.
		const session = await createSession(user.token);
		await (await openStream(user.token, session.id, 'secret scan [[tokens=2]]')).text();
		await (await openStream(user.token, session.id, 'upstream refuses [[status=401]]')).text();
		await api('POST', `${SESSIONS}/${session.id}/stream`, { token: user.token, body: { content: 'x [[status=500]] [[fail-first=1]] [[key=' + crypto.randomUUID() + ']]' } });
		await api('POST', '/api/session', { token: user.token });
		await api('POST', '/api/livekit/token', { token: user.token, body: { roomName: 'room', participantName: 'p' } });
		await api('POST', '/v1/chat/completions', { token: user.token, body: { model: 'gpt-4o-mini', messages: [{ role: 'user', content: 'hi' }] } });
		// nginx buffers its access log (flush=1s).
		await sleep(2000);
	});

	test('the service logs are there to scan', () => {
		const files = serviceLogs().map((f) => path.basename(f));
		assert.ok(files.includes('chatd.log'), `chatd.log in ${LOG_DIR}: ${files}`);
		const chatd = readFileSync(path.join(LOG_DIR, 'chatd.log'), 'utf8');
		assert.ok(/event=request .*route=auth_login/.test(chatd), 'chatd.log holds the request lines');
		assert.ok(files.some((f) => f.startsWith('nginx')), `nginx logs in ${LOG_DIR}: ${files}`);
	});

	test('no upstream key, JWT secret, LiveKit secret, password, token, hash or ephemeral key in any service log', () => {
		const secrets = secretsToFind();
		assert.ok(secrets.length >= 10, 'something to look for');
		// Every secret on a reported line is redacted, not just the one found.
		const redactAll = (line) => secrets.reduce((l, s) => s.redact(l), line);
		const findings = [];
		for (const file of serviceLogs()) {
			const lines = readFileSync(file, 'utf8').split('\n');
			lines.forEach((line, i) => {
				for (const s of secrets)
					if (s.test(line)) findings.push(`${path.basename(file)}:${i + 1}: ${s.kind}: ${redactAll(line).slice(0, 300)}`);
			});
		}
		assert.deepEqual(findings, [], `secrets in the logs:\n${findings.slice(0, 40).join('\n')}`);
	});

	test('`chatd -t` prints the effective settings with the secrets masked', async () => {
		const bin = process.env.CHAT_CHATD_BIN ?? path.join(REPO, 'fcgi/chatd');
		const conf = process.env.CHAT_CHATD_CONF ?? path.join(REPO, 'fcgi/chatd.conf');
		const r = await run(bin, ['-t', '-c', conf], {
			env: { ...process.env, OPENAI_API_KEY: UPSTREAM_KEY, CHAT_DEV_MODE: '1' },
		});
		assert.equal(r.code, 0, r.stderr);
		const out = r.stdout + r.stderr;
		for (const [kind, value] of [
			['upstream key', UPSTREAM_KEY],
			['JWT secret', jwtSecret()],
			['LiveKit secret', process.env.LIVEKIT_API_SECRET],
		])
			if (scannable(value)) assert.ok(!out.includes(value), `chatd -t prints the ${kind}`);
		assert.match(out, /^openai_api_key = \(set\)$/m);
		assert.match(out, /^jwt_secret = \(set\)$/m);
	});
});
