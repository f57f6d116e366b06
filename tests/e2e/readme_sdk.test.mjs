// readme_sdk.test.mjs: the README's official-SDK example, run as a user
// would copy it (issue 17): with NODE_EXTRA_CA_CERTS naming the instance's
// certificate it streams a reply; without it the SDK fails with the bare
// "Connection error" the README warns about; the plain-HTTP port needs no
// certificate.
import assert from 'node:assert/strict';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import path from 'node:path';
import { before, describe, test } from 'node:test';

import { BASE_URL, CA_CERT, HTTP_URL, REPO, registerAndLogin, run } from './lib.mjs';

/** The js block after "With the official SDK" in README.md. */
function readmeSnippet() {
	const readme = readFileSync(path.join(REPO, 'README.md'), 'utf8');
	const at = readme.indexOf('With the official SDK');
	assert.ok(at >= 0, 'README has the SDK example');
	const m = readme.slice(at).match(/```js\n([\s\S]*?)```/);
	assert.ok(m, 'a js block follows');
	return m[1];
}

// tests/artifacts/ (not committed) resolves `openai` from tests/node_modules.
const DIR = path.join(REPO, 'tests/artifacts');

/** Writes the snippet for one base URL and token; returns its path. */
function snippetFile(name, baseURL, token) {
	const code = readmeSnippet()
		.replace("'https://localhost:8443/v1'", JSON.stringify(`${baseURL}/v1`))
		.replace('apiKey: accessToken', `apiKey: ${JSON.stringify(token)}`);
	assert.ok(code.includes(`${baseURL}/v1`) && code.includes(token), `the snippet was adapted:\n${code}`);
	mkdirSync(DIR, { recursive: true });
	const file = path.join(DIR, `readme-sdk-${name}.mjs`);
	writeFileSync(file, code);
	return file;
}

/** The environment of a user's shell: no test CA unless given. */
function userEnv(extra = {}) {
	const env = { ...process.env, ...extra };
	if (!('NODE_EXTRA_CA_CERTS' in extra)) delete env.NODE_EXTRA_CA_CERTS;
	return env;
}

describe('the README SDK example', () => {
	let token;
	before(async () => {
		token = (await registerAndLogin('readme_sdk')).token;
	});

	test('with NODE_EXTRA_CA_CERTS=<the instance certificate> it streams a reply over HTTPS', async () => {
		const file = snippetFile('https', BASE_URL, token);
		const r = await run(process.execPath, [file], { env: userEnv({ NODE_EXTRA_CA_CERTS: CA_CERT }), timeout: 30000 });
		assert.equal(r.code, 0, r.stderr);
		assert.equal(r.stdout, 'You said: Hello!');
	});

	test('without it the SDK fails with "Connection error", as the README says', async () => {
		const file = snippetFile('https-untrusted', BASE_URL, token);
		const r = await run(process.execPath, [file], { env: userEnv(), timeout: 60000 });
		assert.notEqual(r.code, 0);
		assert.match(r.stderr, /Connection error/);
	});

	test('the plain-HTTP port needs no certificate', async () => {
		const file = snippetFile('http', HTTP_URL, token);
		const r = await run(process.execPath, [file], { env: userEnv(), timeout: 30000 });
		assert.equal(r.code, 0, r.stderr);
		assert.equal(r.stdout, 'You said: Hello!');
	});
});
