// openai_compat.test.mjs: POST /v1/chat/completions through the official
// `openai` npm package, as any OpenAI client would use this server:
// new OpenAI({ baseURL: <server>/v1, apiKey: <our JWT> }). Non-streamed and
// streamed completions (with stream_options.include_usage the last chunk
// carries the usage), the SDK's stream helper, errors surfacing as the SDK's
// APIError subclasses with the right status, and the token usage recorded
// per user (stream_metrics rows, the usage_by_user view).
import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import OpenAI from 'openai';

import {
	BASE_URL,
	CHATD,
	HTTP_URL,
	UPSTREAM_KEY,
	api,
	closeDb,
	db,
	fakeStats,
	readAll,
	registerAndLogin,
	uniqueName,
	waitFor,
} from './lib.mjs';

after(closeDb);

let user;
let client;
before(async () => {
	user = await registerAndLogin('openai');
	client = new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey: user.token });
});

const tokens = (n) => Array.from({ length: n }, (_, i) => `t${i}`).join(' ');
const MODEL = 'gpt-4o-mini';

describe('chat.completions.create, not streamed', () => {
	test('choices[0].message.content and usage', async () => {
		const { data: c, response } = await client.chat.completions
			.create({ model: MODEL, messages: [{ role: 'user', content: 'Hello from the SDK' }] })
			.withResponse();
		assert.equal(response.status, 200);
		assert.equal(c.object, 'chat.completion');
		assert.match(c.id, /^chatcmpl-/);
		assert.equal(c.model, MODEL);
		assert.equal(c.choices[0].message.role, 'assistant');
		assert.equal(c.choices[0].message.content, 'You said: Hello from the SDK');
		assert.equal(c.choices[0].finish_reason, 'stop');
		assert.ok(c.usage.prompt_tokens > 0 && c.usage.completion_tokens > 0);
		assert.equal(c.usage.total_tokens, c.usage.prompt_tokens + c.usage.completion_tokens);
	});

	test('model, temperature and max_tokens reach the upstream', async () => {
		const c = await client.chat.completions.create({
			model: 'gpt-4.1-mini',
			temperature: 0.3,
			max_tokens: 50,
			messages: [
				{ role: 'system', content: 'Be brief.' },
				{ role: 'user', content: '[[request]]' },
			],
		});
		const req = JSON.parse(c.choices[0].message.content);
		assert.equal(req.model, 'gpt-4.1-mini');
		assert.equal(req.temperature, 0.3);
		assert.equal(req.max_tokens, 50);
		assert.deepEqual(req.messages, [
			{ role: 'system', content: 'Be brief.' },
			{ role: 'user', content: '[[request]]' },
		]);
		assert.equal(c.model, 'gpt-4.1-mini');
	});

	test('max_completion_tokens is accepted as max_tokens', async () => {
		const c = await client.chat.completions.create({
			model: MODEL,
			max_completion_tokens: 77,
			messages: [{ role: 'user', content: '[[request]]' }],
		});
		assert.equal(JSON.parse(c.choices[0].message.content).max_tokens, 77);
	});

	test('over plain HTTP too', async () => {
		const plain = new OpenAI({ baseURL: `${HTTP_URL}/v1`, apiKey: user.token });
		const c = await plain.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'plain' }] });
		assert.equal(c.choices[0].message.content, 'You said: plain');
	});
});

describe('chat.completions.create, streamed', () => {
	test('for await over the chunks: the role first, the deltas, finish_reason stop; no usage unless asked', async () => {
		const stream = await client.chat.completions.create({
			model: MODEL,
			messages: [{ role: 'user', content: 'stream [[tokens=12]] [[delay=10]]' }],
			stream: true,
		});
		const chunks = [];
		for await (const chunk of stream) chunks.push(chunk);
		assert.ok(chunks.length >= 14, `${chunks.length} chunks`);
		for (const c of chunks) {
			assert.equal(c.object, 'chat.completion.chunk');
			assert.equal(c.id, chunks[0].id, 'one id for the whole stream');
			assert.equal(c.model, MODEL);
			assert.ok(c.usage === undefined || c.usage === null, 'no usage chunk unless asked');
		}
		assert.equal(chunks[0].choices[0].delta.role, 'assistant');
		const text = chunks.map((c) => c.choices[0]?.delta?.content ?? '').join('');
		assert.equal(text, tokens(12));
		assert.equal(chunks.at(-1).choices[0].finish_reason, 'stop');
		assert.equal(chunks.filter((c) => c.choices[0]?.finish_reason).length, 1);
	});

	test('with stream_options.include_usage the last chunk has the usage (and no choices)', async () => {
		const stream = await client.chat.completions.create({
			model: MODEL,
			messages: [{ role: 'user', content: 'usage please [[tokens=7]]' }],
			stream: true,
			stream_options: { include_usage: true },
		});
		const chunks = [];
		for await (const chunk of stream) chunks.push(chunk);
		const last = chunks.at(-1);
		assert.deepEqual(last.choices, []);
		assert.equal(last.usage.completion_tokens, 7);
		assert.ok(last.usage.prompt_tokens > 0);
		assert.equal(last.usage.total_tokens, last.usage.prompt_tokens + last.usage.completion_tokens);
		assert.equal(chunks.filter((c) => c.usage).length, 1);
		assert.equal(chunks.at(-2).choices[0].finish_reason, 'stop');
	});

	test('the SDK stream helper: content events and finalChatCompletion()', async () => {
		const runner = client.chat.completions.stream({
			model: MODEL,
			messages: [{ role: 'user', content: 'helper [[tokens=20]] [[delay=5]]' }],
		});
		const deltas = [];
		runner.on('content', (delta) => deltas.push(delta));
		const final = await runner.finalChatCompletion();
		assert.equal(final.choices[0].message.content, tokens(20));
		assert.equal(deltas.join(''), tokens(20));
		assert.equal(final.choices[0].finish_reason, 'stop');
	});

	test('a quiet upstream: the heartbeat comments do not disturb the SDK', async (t) => {
		if (CHATD.heartbeat * 2.5 > 20 || CHATD.heartbeat * 2.5 >= CHATD.firstTokenTimeout) {
			t.skip(`heartbeat_interval is ${CHATD.heartbeat} s; run the instance with CHAT_HEARTBEAT_INTERVAL=1`);
			return;
		}
		const stall = Math.round(CHATD.heartbeat * 2500);
		const stream = await client.chat.completions.create({
			model: MODEL,
			messages: [{ role: 'user', content: `quiet [[tokens=3]] [[stall-first=${stall}]]` }],
			stream: true,
		});
		let text = '';
		for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
		assert.equal(text, 't0 t1 t2');
	});

	test('the raw stream: text/event-stream, data lines only, [DONE] last', async () => {
		const r = await api('POST', '/v1/chat/completions', {
			token: user.token,
			body: { model: MODEL, stream: true, messages: [{ role: 'user', content: 'raw [[tokens=3]]' }] },
			raw: true,
		});
		assert.equal(r.status, 200);
		assert.match(r.headers.get('content-type') ?? '', /^text\/event-stream/);
		const { events } = await readAll(r);
		assert.equal(events.at(-1).data, '[DONE]');
		for (const e of events) assert.equal(e.event, 'message', 'no named events (an event: line without data crashes the SDK)');
		assert.equal(events.filter((e) => e.data === '[DONE]').length, 1);
	});

	test('breaking off a stream closes the upstream request', async () => {
		const before = await fakeStats();
		const stream = await client.chat.completions.create({
			model: MODEL,
			messages: [{ role: 'user', content: 'long [[tokens=200]] [[delay=30]]' }],
			stream: true,
		});
		let n = 0;
		for await (const chunk of stream) {
			if (chunk.choices[0]?.delta?.content && ++n === 3) break; // the SDK aborts the request
		}
		await waitFor(async () => (await fakeStats()).streams_aborted_by_client > before.streams_aborted_by_client, {
			timeout: 5000,
			what: 'the upstream request to be closed',
		});
	});
});

describe('errors are the SDK’s APIError with the right status', () => {
	test('a bad body → BadRequestError 400', async () => {
		const noRetry = new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey: user.token, maxRetries: 0 });
		for (const body of [
			{ model: MODEL, messages: 'hello' },
			{ model: MODEL, messages: [] },
			{ model: MODEL, messages: [{ role: 'robot', content: 'x' }] },
			{ model: MODEL, temperature: 3, messages: [{ role: 'user', content: 'x' }] },
			{ model: MODEL, n: 2, messages: [{ role: 'user', content: 'x' }] },
			{ model: 42, messages: [{ role: 'user', content: 'x' }] },
		]) {
			await assert.rejects(noRetry.chat.completions.create(body), (err) => {
				assert.ok(err instanceof OpenAI.BadRequestError, `${JSON.stringify(body)}: ${err}`);
				assert.equal(err.status, 400);
				assert.ok(err.message.length > 0);
				return true;
			});
		}
	});

	test('not our token → AuthenticationError 401', async () => {
		for (const apiKey of ['sk-not-a-jwt', UPSTREAM_KEY]) {
			const stranger = new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey, maxRetries: 0 });
			await assert.rejects(
				stranger.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: 'x' }] }),
				(err) => err instanceof OpenAI.AuthenticationError && err.status === 401,
			);
		}
	});

	test('the upstream failing every time → 502 after the SDK’s own retries; each call retried upstream', async () => {
		const key = uniqueName('k');
		const before = await fakeStats();
		await assert.rejects(
			client.chat.completions.create({
				model: MODEL,
				messages: [{ role: 'user', content: `x [[status=500]] [[fail-first=9]] [[key=${key}]]` }],
			}),
			(err) => {
				assert.ok(err instanceof OpenAI.InternalServerError, String(err));
				assert.equal(err.status, 502);
				assert.ok(!String(err.message).includes(UPSTREAM_KEY));
				return true;
			},
		);
		// 3 SDK attempts (maxRetries 2) × (1 + upstream_retries) chatd attempts.
		assert.equal((await fakeStats()).chat_requests - before.chat_requests, 3 * (CHATD.retries + 1));
	});

	test('…and succeeds when the upstream recovers within the retries', async () => {
		const key = uniqueName('k');
		const c = await client.chat.completions.create({
			model: MODEL,
			messages: [{ role: 'user', content: `recover [[status=503]] [[fail-first=${CHATD.retries + 1}]] [[key=${key}]]` }],
		});
		assert.equal(c.choices[0].message.content, 'You said: recover');
	});

	test('an error mid-stream throws an APIError while iterating, after the partial content', async () => {
		const stream = await client.chat.completions.create({
			model: MODEL,
			messages: [{ role: 'user', content: 'x [[tokens=8]] [[error-after=3]]' }],
			stream: true,
		});
		let text = '';
		await assert.rejects(
			(async () => {
				for await (const chunk of stream) text += chunk.choices[0]?.delta?.content ?? '';
			})(),
			(err) => err instanceof OpenAI.APIError && !String(err.message).includes(UPSTREAM_KEY),
		);
		assert.equal(text, 't0 t1 t2');
	});

	test('streamed, the upstream down before the first token → the SDK sees the 502 at create()', async () => {
		const noRetry = new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey: user.token, maxRetries: 0 });
		await assert.rejects(
			noRetry.chat.completions.create({
				model: MODEL,
				messages: [{ role: 'user', content: 'x [[status=503]]' }],
				stream: true,
			}),
			(err) => err instanceof OpenAI.InternalServerError && err.status === 502,
		);
	});
});

describe('usage is recorded per user', () => {
	test('stream_metrics rows of route v1_chat_completions carry the tokens; usage_by_user sums them', async () => {
		const u = await registerAndLogin('usage');
		const c = new OpenAI({ baseURL: `${BASE_URL}/v1`, apiKey: u.token });
		const a = await c.chat.completions.create({ model: MODEL, messages: [{ role: 'user', content: '[[tokens=11]]' }] });
		const stream = await c.chat.completions.create({
			model: MODEL,
			messages: [{ role: 'user', content: 'streamed [[tokens=5]]' }],
			stream: true,
			stream_options: { include_usage: true },
		});
		let usage;
		for await (const chunk of stream) usage = chunk.usage ?? usage;
		const { rows } = await db().query(
			`SELECT route, user_id::text, status, prompt_tokens, completion_tokens
			   FROM stream_metrics WHERE user_id = $1 ORDER BY id`,
			[u.userId],
		);
		assert.deepEqual(rows, [
			{
				route: 'v1_chat_completions',
				user_id: u.userId,
				status: 'complete',
				prompt_tokens: a.usage.prompt_tokens,
				completion_tokens: 11,
			},
			{
				route: 'v1_chat_completions',
				user_id: u.userId,
				status: 'complete',
				prompt_tokens: usage.prompt_tokens,
				completion_tokens: 5,
			},
		]);
		const view = await db().query(
			'SELECT sum(requests)::int AS requests, sum(prompt_tokens)::int AS p, sum(completion_tokens)::int AS c FROM usage_by_user WHERE user_id = $1',
			[u.userId],
		);
		assert.deepEqual(view.rows[0], {
			requests: 2,
			p: a.usage.prompt_tokens + usage.prompt_tokens,
			c: 16,
		});
	});
});
