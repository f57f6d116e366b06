// ui_support.test.mjs: what the web UI reads besides the chat routes: the
// server's capabilities (GET /api/config) and, for a reply that did not
// complete, the reason code stored with it (messages[].error), so that a
// reload shows why it failed.
import assert from 'node:assert/strict';
import { before, test } from 'node:test';

import { SESSIONS, api, createSession, registerAndLogin, streamTurn } from './lib.mjs';

let user;
before(async () => {
	user = await registerAndLogin('uis');
});

test('GET /api/config reports voice on the test instance (realtime_api is not off); 401 without a token', async () => {
	const r = await api('GET', '/api/config', { token: user.token });
	assert.equal(r.status, 200);
	assert.deepEqual(r.json, { voice: true });
	assert.equal((await api('GET', '/api/config')).status, 401);
});

test('a failed reply keeps its partial text and its reason code; a complete one has error null', async () => {
	const session = await createSession(user.token);
	const ok = await streamTurn(user.token, session.id, 'fine [[tokens=2]]');
	assert.ok(ok.done);
	const failed = await streamTurn(user.token, session.id, 'break [[tokens=6]] [[error-after=3]]');
	assert.equal(failed.error?.code, 'upstream_stream_error');

	const r = await api('GET', `${SESSIONS}/${session.id}`, { token: user.token });
	assert.equal(r.status, 200);
	const replies = r.json.messages.filter((m) => m.role === 'assistant');
	assert.deepEqual(
		replies.map((m) => [m.status, m.content, m.error]),
		[
			['complete', 't0 t1', null],
			['error', failed.text, 'upstream_stream_error'],
		],
	);
	assert.equal(failed.text, 't0 t1 t2');
	// User messages carry the field too, always null.
	assert.ok(r.json.messages.filter((m) => m.role === 'user').every((m) => m.error === null));
});
