// models.test.mjs: GET /v1/models and /v1/models/{model} through the official
// `openai` npm package (models.list(), models.retrieve()) and raw HTTP: the
// configured models the upstream lists, with the upstream's created and
// owned_by; the configured ones it does not list, and the ones it lists
// but the configuration does not allow (the fake's fake-internal), are
// left out; an unknown model is a 404 in OpenAI's error shape.
import assert from 'node:assert/strict';
import { before, describe, test } from 'node:test';

import OpenAI from 'openai';

import { BASE_URL, CHATD, api, fakeStats, registerAndLogin } from './lib.mjs';

let user;
let client;
before(async () => {
	user = await registerAndLogin('models');
	client = new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey: user.token, maxRetries: 0 });
});

// The test instance runs with the default allowed_models; the fake upstream
// lists gpt-4o-mini, gpt-4o, gpt-4.1-mini and fake-internal.
const EXPECTED = ['gpt-4o-mini', 'gpt-4o', 'gpt-4.1-mini'];

describe('GET /v1/models', () => {
	test('models.list(): the allowed models the upstream serves, OpenAI list shape', async () => {
		const ids = [];
		for await (const m of client.models.list()) {
			assert.equal(m.object, 'model');
			assert.equal(typeof m.created, 'number');
			assert.ok(m.created > 0, `${m.id}: created from the upstream`);
			assert.equal(m.owned_by, 'fake');
			ids.push(m.id);
		}
		assert.deepEqual(ids, EXPECTED);
	});

	test('raw answer: {object:"list", data:[{id, object, created, owned_by}]}', async () => {
		const r = await api('GET', '/v1/models', { token: user.token });
		assert.equal(r.status, 200);
		assert.match(r.headers.get('content-type'), /^application\/json/);
		assert.equal(r.json.object, 'list');
		assert.deepEqual(
			r.json.data.map((m) => Object.keys(m).sort()),
			EXPECTED.map(() => ['created', 'id', 'object', 'owned_by']),
		);
		assert.ok(!r.json.data.some((m) => m.id === 'fake-internal'), 'a model the configuration does not allow');
		assert.ok(!r.json.data.some((m) => m.id === 'gpt-4.1-nano'), 'an allowed model the upstream does not serve');
	});

	test('the upstream list is cached: repeated calls do not ask it each time', async () => {
		// Every worker asks at most once per 5 minutes: 20 calls ask the
		// upstream at most once per worker (fewer if earlier tests filled them).
		const before = await fakeStats();
		for (let i = 0; i < 20; i += 1) {
			const r = await api('GET', '/v1/models', { token: user.token });
			assert.equal(r.status, 200);
		}
		const after = await fakeStats();
		const asked = after.model_lists - before.model_lists;
		assert.ok(asked <= CHATD.workers, `the upstream was asked ${asked} times`);
	});

	test('needs a token: 401 without one', async () => {
		const r = await api('GET', '/v1/models');
		assert.equal(r.status, 401);
		await assert.rejects(new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey: 'nope', maxRetries: 0 }).models.list(), (err) => {
			assert.ok(err instanceof OpenAI.AuthenticationError);
			return true;
		});
	});
});

describe('GET /v1/models/{model}', () => {
	test('models.retrieve() of a listed model, dots in its name too', async () => {
		const m = await client.models.retrieve('gpt-4.1-mini');
		assert.equal(m.id, 'gpt-4.1-mini');
		assert.equal(m.object, 'model');
		assert.equal(m.owned_by, 'fake');
		assert.ok(m.created > 0);
	});

	test('an unknown model: 404 NotFoundError with OpenAI\'s error object', async () => {
		await assert.rejects(client.models.retrieve('no-such-model'), (err) => {
			assert.ok(err instanceof OpenAI.NotFoundError, String(err));
			assert.equal(err.status, 404);
			assert.equal(err.code, 'model_not_found');
			assert.equal(err.type, 'invalid_request_error');
			assert.match(err.message, /no-such-model/);
			return true;
		});
		const r = await api('GET', '/v1/models/fake-internal', { token: user.token });
		assert.equal(r.status, 404, 'listed by the upstream, not allowed here');
		assert.deepEqual(Object.keys(r.json.error).sort(), ['code', 'message', 'param', 'type']);
		assert.equal(r.json.error.param, null);
	});

	test('model names up to the 100-byte limit are looked up; longer ones are not found either', async () => {
		const long = `m-${'x'.repeat(98)}`;   // 100 bytes: a valid name, not listed
		let r = await api('GET', `/v1/models/${long}`, { token: user.token });
		assert.equal(r.status, 404);
		assert.equal(r.json?.error?.code, 'model_not_found', `looked up, not refused by the router: ${r.text ?? JSON.stringify(r.json)}`);
		assert.match(r.json.error.message, new RegExp(long));
		r = await api('GET', `/v1/models/${long}y`, { token: user.token });
		assert.equal(r.status, 404, '101 bytes: no such model either');
	});

	test('a POST is 405 with Allow: GET', async () => {
		const r = await api('POST', '/v1/models/gpt-4o', { token: user.token, body: {} });
		assert.equal(r.status, 405);
		assert.equal(r.headers.get('allow'), 'GET');
	});
});
