// tests/peer/relay.mjs: the peer that scripts/bench sets chatd beside. A
// plain Node/Express relay, written the way seed 003's Node backend would
// be: POST /api/v2/ai/chat/stream {message, sessionId?} asks the upstream
// for POST /v1/chat/completions (stream: true) through the official
// `openai` SDK and streams each delta back as seed 003's SSE events:
//
//   data: {"content":"I","sessionId":"…"}\n\n   one per non-empty delta
//   data: {"done":true,"sessionId":"…"}\n\n      at the end
//   data: {"error":"Failed to process message","sessionId":"…"}\n\n
//
// Each event goes out in one write, so seed 003's client loop (split each
// read on '\n', JSON.parse each `data: ` line, no buffering across reads)
// gets whole lines. No auth, no database, no rate limit: the least a relay
// can do, so the comparison is about the relaying alone.
//
// Environment:
//   PEER_UPSTREAM_BASE_URL  upstream API base (else OPENAI_BASE_URL), e.g.
//                           http://127.0.0.1:8099/v1 (loopback only)
//   OPENAI_API_KEY          sent to the upstream (default: a dummy)
//   PEER_MODEL              default gpt-4o-mini
//   PEER_PORT               port on 127.0.0.1 (default 0: a free one)
//   PEER_PORT_FILE          where to write the port once listening
// GET /healthz answers 200. SIGTERM/SIGINT: stops listening, ends open
// streams and exits.
import { writeFileSync } from 'node:fs';
import { randomUUID } from 'node:crypto';
import express from 'express';
import OpenAI from 'openai';

const baseURL = process.env.PEER_UPSTREAM_BASE_URL || process.env.OPENAI_BASE_URL;
if (!baseURL) {
	console.error('relay: set PEER_UPSTREAM_BASE_URL (or OPENAI_BASE_URL)');
	process.exit(2);
}
const host = new URL(baseURL).hostname;
if (!/^(127\.\d+\.\d+\.\d+|localhost|\[::1\])$/.test(host)) {
	console.error(`relay: the upstream must be on loopback, not ${host}`);
	process.exit(2);
}
const model = process.env.PEER_MODEL || 'gpt-4o-mini';
const port = Number(process.env.PEER_PORT || 0);

// As a production relay would set it up, except for retries: a retry would
// hide upstream failures from the measurement.
const openai = new OpenAI({
	baseURL,
	apiKey: process.env.OPENAI_API_KEY || 'peer-relay',
	maxRetries: 0,
	timeout: 10 * 60 * 1000,
});

const app = express();
app.disable('x-powered-by');
app.use(express.json({ limit: '1mb' }));

app.get('/healthz', (_req, res) => {
	res.json({ status: 'ok' });
});

const open = new Set();

function event(res, obj) {
	res.write(`data: ${JSON.stringify(obj)}\n\n`);
}

app.post('/api/v2/ai/chat/stream', async (req, res) => {
	const { message, sessionId } = req.body ?? {};
	if (typeof message !== 'string' || message.trim() === '') {
		res.status(400).json({ error: 'message is required' });
		return;
	}
	const sid = typeof sessionId === 'string' && sessionId !== '' ? sessionId : randomUUID();
	const abort = new AbortController();
	res.on('close', () => abort.abort());
	open.add(res);
	res.status(200).set({
		'Content-Type': 'text/event-stream',
		'Cache-Control': 'no-cache',
		Connection: 'keep-alive',
		'X-Accel-Buffering': 'no',
	});
	res.flushHeaders();
	try {
		const stream = await openai.chat.completions.create(
			{ model, stream: true, messages: [{ role: 'user', content: message }] },
			{ signal: abort.signal },
		);
		for await (const chunk of stream) {
			const content = chunk.choices?.[0]?.delta?.content;
			if (content) event(res, { content, sessionId: sid });
		}
		event(res, { done: true, sessionId: sid });
	} catch (err) {
		if (!abort.signal.aborted) {
			console.error(`relay: ${err?.status ?? ''} ${err?.message ?? err}`);
			event(res, { error: 'Failed to process message', sessionId: sid });
		}
	} finally {
		open.delete(res);
		res.end();
	}
});

const server = app.listen(port, '127.0.0.1', () => {
	const actual = server.address().port;
	if (process.env.PEER_PORT_FILE) writeFileSync(process.env.PEER_PORT_FILE, `${actual}\n`);
	console.log(`relay: listening on http://127.0.0.1:${actual}, upstream ${baseURL}`);
});
// Streams may be idle between tokens for long: no socket timeout.
server.timeout = 0;
server.requestTimeout = 0;

function stop() {
	server.close(() => process.exit(0));
	for (const res of open) res.destroy();
	server.closeIdleConnections?.();
	setTimeout(() => process.exit(0), 2000).unref();
}
process.on('SIGTERM', stop);
process.on('SIGINT', stop);
