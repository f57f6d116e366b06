// metrics.test.mjs: issue 12, the gateway's streams reach Prometheus. An
// operator scrapes GET /gateway/metrics through nginx (loopback only, like
// chatd's /metrics): a Socket.IO stream moves stream_chat_started_total
// {frontend="gateway"} and its end, tokens and duration; chatd's own
// /metrics does not count it; the page parses strictly; a non-loopback
// source gets 403; the gateway's own port serves the same page.
import assert from 'node:assert/strict';
import { after, describe, test } from 'node:test';

import {
	HTTP_URL,
	assertJsonError,
	closeDb,
	parsePrometheus,
	randomLoopback,
	rawRequest,
	registerAndLogin,
	scrapeMetrics,
} from '../e2e/lib.mjs';
import { GATEWAY_URL, collect001, collect003, connect, until } from './lib.mjs';

after(closeDb);

const GW = { frontend: 'gateway' };

/** GET /gateway/metrics (through nginx unless url says otherwise), strictly parsed. */
async function scrapeGateway(url = `${HTTP_URL}/gateway/metrics`) {
	const r = await rawRequest('GET', url, { timeout: 10000 });
	assert.equal(r.status, 200, `GET ${url}: ${r.status} ${r.text.slice(0, 200)}`);
	assert.match(r.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
	return Object.assign(parsePrometheus(r.text), { text: r.text });
}

/** The figures a stream moves, from one scrape. */
function figures(m) {
	return {
		started: m.value('stream_chat_started_total', GW),
		completed: m.value('stream_chat_completed_total', GW),
		errors: m.value('stream_chat_error_total', GW),
		durations: m.histogram('stream_chat_duration_seconds', GW).count,
		ttfbs: m.histogram('stream_chat_ttfb_seconds', GW).count,
		tokensOut: m.value('chat_tokens_total', { ...GW, direction: 'out' }),
	};
}

/** Scrapes once no generation runs in the gateway (a previous test's may still end). */
async function settled() {
	let m;
	await until(async () => {
		m = await scrapeGateway();
		return m.value('chat_gateway_streams', GW) === 0;
	}, { timeout: 15000, what: 'the gateway to have no stream running' });
	return m;
}

describe('GET /gateway/metrics (the gateway\'s Prometheus page, through nginx)', () => {
	test('a Socket.IO stream moves stream_chat_started_total, and chatd\'s /metrics does not count it', async () => {
		const before = figures(await settled());
		const chatdBefore = (await scrapeMetrics({ duplicates: 'sum' })).value('stream_chat_started_total');
		for (const [k, v] of Object.entries(before)) assert.equal(typeof v, 'number', `${k} is exposed`);

		const socket = await connect();
		try {
			const done = collect001(socket);
			socket.emit('stream-chat', { messages: [{ role: 'user', content: 'metrics please' }] });
			const s = await done;
			assert.equal(s.error, undefined, `stream-error: ${JSON.stringify(s.error)}`);
			assert.ok(s.complete, 'stream-complete came');
		} finally {
			socket.close();
		}

		const after1 = figures(await settled());
		assert.equal(after1.started, before.started + 1, 'started: one more');
		assert.equal(after1.completed, before.completed + 1, 'completed: one more');
		assert.equal(after1.errors, before.errors, 'no error');
		assert.equal(after1.durations, before.durations + 1, 'one more duration observed');
		assert.equal(after1.ttfbs, before.ttfbs + 1, 'one more time to first token observed');
		assert.ok(after1.tokensOut > before.tokensOut, 'completion tokens counted');
		const chatdAfter = (await scrapeMetrics({ duplicates: 'sum' })).value('stream_chat_started_total');
		assert.equal(chatdAfter, chatdBefore, 'chatd\'s /metrics counts its own streams only');
	});

	test('seed 003\'s ai:chat (WebSocket only, stored) counts too', async () => {
		const user = await registerAndLogin('gwmetrics');
		const before = figures(await settled());
		const socket = await connect({ transports: ['websocket'] });
		try {
			const done = collect003(socket);
			socket.emit('ai:chat', { message: 'count me', token: user.token });
			const r = await done;
			assert.equal(r.error, undefined, `ai:error: ${JSON.stringify(r.error)}`);
			assert.ok(r.complete, 'ai:complete came');
		} finally {
			socket.close();
		}
		const after1 = figures(await settled());
		assert.equal(after1.started, before.started + 1);
		assert.equal(after1.completed, before.completed + 1);
	});

	test('what an operator scrapes: every series labelled frontend="gateway", the gateway\'s gauges, no pool', async () => {
		const m = await scrapeGateway();
		for (const [name, type] of Object.entries({
			stream_chat_started_total: 'counter',
			stream_chat_completed_total: 'counter',
			stream_chat_error_total: 'counter',
			stream_chat_duration_seconds: 'histogram',
			stream_chat_ttfb_seconds: 'histogram',
			chat_tokens_total: 'counter',
			chat_upstream_errors_total: 'counter',
			chat_gateway_sessions: 'gauge',
			chat_gateway_rooms: 'gauge',
			chat_gateway_streams: 'gauge',
		})) {
			const f = m.families.get(name);
			assert.ok(f, `${name} is exposed`);
			assert.equal(f.type, type, `${name} is a ${type}`);
			assert.ok(f.help, `${name} has a HELP line`);
			for (const s of f.samples) assert.equal(s.labels.frontend, 'gateway', `${s.name} is labelled`);
		}
		// The pool and the HTTP routes are chatd's alone.
		for (const name of ['chat_pool_workers', 'chat_http_requests_total'])
			assert.equal(m.families.get(name), undefined, `${name} is not the gateway's`);
		// The gateway's own port serves the same page (for several gateways).
		const direct = await scrapeGateway(`${GATEWAY_URL}/gateway/metrics`);
		assert.ok(direct.value('stream_chat_started_total', GW) >= m.value('stream_chat_started_total', GW));
	});

	test('not public: an address nginx does not allow gets 403 JSON, a forged X-Forwarded-For too', async () => {
		const src = randomLoopback();
		const r = await rawRequest('GET', `${HTTP_URL}/gateway/metrics`, { localAddress: src });
		assertJsonError(r, 403, `/gateway/metrics from ${src}`);
		assert.ok(!r.text.includes('stream_chat'), 'nothing leaks');
		const forged = await rawRequest('GET', `${HTTP_URL}/gateway/metrics`, {
			localAddress: src,
			headers: { 'x-forwarded-for': '127.0.0.1' },
		});
		assert.equal(forged.status, 403);
	});
});
