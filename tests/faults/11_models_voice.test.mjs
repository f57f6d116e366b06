// 11_models_voice.test.mjs: settings and outages the web UI adapts to.
// With realtime_api = off the server reports no voice (GET /api/config) and
// refuses voice sessions (503 JSON). With the upstream down, GET /v1/models
// still answers: every configured model (created 0, owned_by "chatd"), and
// the upstream's own list again once it is back.
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
	api,
	closeDb,
	isErrorBody,
	pidFromFile,
	procAlive,
	registerAndLogin,
	restartChatd,
	stackCtl,
	startUpstream,
	waitHealthy,
} from '../e2e/lib.mjs';

let user;
before(async () => {
	await waitHealthy();
	user = await registerAndLogin('mv');
});
after(async () => {
	if (!procAlive(pidFromFile('upstream'))) await startUpstream();
	await restartChatd().catch(async (e) => {
		await stackCtl('chatd_start');
		throw e;
	});
	await closeDb();
});

describe('realtime_api = off', () => {
	test('/api/config says no voice and /api/session answers 503 JSON', async () => {
		await restartChatd({ CHAT_REALTIME_API: 'off' });
		const config = await api('GET', '/api/config', { token: user.token });
		assert.equal(config.status, 200);
		assert.deepEqual(config.json, { voice: false });
		const session = await api('POST', '/api/session', { token: user.token });
		assert.equal(session.status, 503);
		assert.ok(isErrorBody(session.json), session.text);
		assert.match(session.json.error, /Voice is not configured/);
	});
});

describe('GET /v1/models while the upstream is down', () => {
	test('the configured models, then the upstream\'s list once it is back', async () => {
		await restartChatd(); // no worker has a list cached yet
		await stackCtl('upstream_stop');
		const down = await api('GET', '/v1/models', { token: user.token });
		assert.equal(down.status, 200);
		assert.equal(down.json.object, 'list');
		// The default configuration: model, then allowed_models, once each.
		assert.deepEqual(
			down.json.data.map((m) => m.id),
			['gpt-4o-mini', 'gpt-4o', 'gpt-4.1', 'gpt-4.1-mini', 'gpt-4.1-nano', 'gpt-realtime-mini'],
		);
		for (const m of down.json.data) assert.deepEqual([m.object, m.created, m.owned_by], ['model', 0, 'chatd']);
		const nano = await api('GET', '/v1/models/gpt-4.1-nano', { token: user.token });
		assert.equal(nano.status, 200);
		assert.equal(nano.json.id, 'gpt-4.1-nano');

		await startUpstream();
		await restartChatd();
		const up = await api('GET', '/v1/models', { token: user.token });
		assert.deepEqual(
			up.json.data.map((m) => [m.id, m.owned_by]),
			[
				['gpt-4o-mini', 'fake'],
				['gpt-4o', 'fake'],
				['gpt-4.1-mini', 'fake'],
			],
		);
	});
});
