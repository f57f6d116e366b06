// stream.js: reading a reply as Server-Sent Events over fetch, and
// resuming it after a dropped connection.
//
// EventSource cannot POST or send an Authorization header, so the stream is
// read from fetch's ReadableStream and parsed here as the WHATWG spec says.
// When the connection fails before the reply's terminal event, the reply
// goes on on the server; we reconnect with GET …/stream and Last-Event-ID
// (the last `id:` seen), which replays what we missed and follows the rest.
import { ApiError, request } from './api.js';
import { isAbortError, sleep } from './dom.js';

/**
 * Incremental text/event-stream parser (WHATWG HTML §9.2.6): CR, LF and
 * CRLF end lines; ':' lines are comments (heartbeats); data lines join with
 * LF; the last id persists across events; an event without data is not
 * dispatched. onEvent({id, event, data}).
 */
export class SSEParser {
	constructor(onEvent) {
		this.onEvent = onEvent;
		this.buffer = '';
		this.first = true;
		this.lastId = '';
		this.resetEvent();
	}

	resetEvent() {
		this.data = null;
		this.type = '';
	}

	feed(chunk) {
		this.buffer += chunk;
		if (this.first && this.buffer.length > 0) {
			if (this.buffer.charCodeAt(0) === 0xfeff) this.buffer = this.buffer.slice(1);
			this.first = false;
		}
		let start = 0;
		for (let i = 0; i < this.buffer.length; i += 1) {
			const c = this.buffer[i];
			if (c !== '\n' && c !== '\r') continue;
			if (c === '\r' && i + 1 === this.buffer.length) break; // maybe half a CRLF
			const line = this.buffer.slice(start, i);
			if (c === '\r' && this.buffer[i + 1] === '\n') i += 1;
			start = i + 1;
			this.line(line);
		}
		this.buffer = this.buffer.slice(start);
	}

	/** End of input: a trailing lone CR still ends a line. */
	end() {
		if (this.buffer.endsWith('\r')) this.line(this.buffer.slice(0, -1));
		this.buffer = '';
	}

	line(line) {
		if (line === '') {
			if (this.data !== null) {
				this.onEvent({ id: this.lastId, event: this.type || 'message', data: this.data.join('\n') });
			}
			this.resetEvent();
			return;
		}
		if (line.startsWith(':')) return; // comment: a heartbeat
		const colon = line.indexOf(':');
		const field = colon < 0 ? line : line.slice(0, colon);
		let value = colon < 0 ? '' : line.slice(colon + 1);
		if (value.startsWith(' ')) value = value.slice(1);
		if (field === 'data') (this.data ??= []).push(value);
		else if (field === 'event') this.type = value;
		else if (field === 'id' && !value.includes('\0')) this.lastId = value;
	}
}

export class StreamLostError extends Error {
	constructor() {
		super('The connection was lost and could not be restored. Reload the chat to see the reply.');
		this.name = 'StreamLostError';
	}
}

const RETRY_DELAYS_MS = [500, 1000, 2000, 4000, 8000];
// Statuses where trying again may help: a proxy or app server restarting.
const RETRIABLE = new Set([502, 503, 504]);

const sessionPath = (sessionId) => `/api/chat/realtime/sessions/${encodeURIComponent(sessionId)}`;

/**
 * Streams one reply of a session and resolves with the terminal event
 * ({type:'done'|'error', …}), or with null when the server says nothing is
 * left to replay (204: the reply ended while we were away; reload it).
 *
 * opts.content: send this message (POST, with an Idempotency-Key so that a
 *   retry re-attaches to the same generation instead of starting another);
 *   undefined: attach to the session's reply in progress (GET).
 * opts.onEvent(data): each parsed event object, in order.
 * opts.onConnection(state, attempt): 'reconnecting' | 'connected'.
 * opts.signal: aborts reading (the generation itself goes on server-side).
 */
export async function streamReply({ sessionId, content, onEvent, onConnection = () => {}, signal }) {
	const idempotencyKey = crypto.randomUUID();
	let lastEventId = null;
	let failures = 0;

	for (;;) {
		let terminal = null;
		try {
			const response = await open();
			if (response.status === 204) return null;
			if (failures > 0) onConnection('connected', failures);
			const parser = new SSEParser((ev) => {
				if (ev.id) lastEventId = ev.id;
				let data;
				try {
					data = JSON.parse(ev.data);
				} catch {
					return; // not ours; ignore
				}
				failures = 0; // progress: the next failure starts a fresh count
				onEvent(data);
				if (data.type === 'done' || data.type === 'error') terminal = data;
			});
			const reader = response.body.getReader();
			const decoder = new TextDecoder();
			try {
				while (terminal === null) {
					const { done, value } = await reader.read();
					if (done) break;
					parser.feed(decoder.decode(value, { stream: true }));
				}
				parser.feed(decoder.decode());
				parser.end();
			} finally {
				if (terminal !== null) reader.cancel().catch(() => {});
				reader.releaseLock();
			}
			if (terminal !== null) return terminal;
			// The body ended without a terminal event: a dropped connection.
		} catch (err) {
			if (isAbortError(err) || signal?.aborted) throw err;
			if (terminal !== null) return terminal;
			// An HTTP error answer is final, except while resuming a reply
			// that exists server-side (a proxy or app server restarting).
			if (err instanceof ApiError && (lastEventId === null || !RETRIABLE.has(err.status))) throw err;
		}
		if (failures >= RETRY_DELAYS_MS.length) throw new StreamLostError();
		onConnection('reconnecting', failures + 1);
		await sleep(RETRY_DELAYS_MS[failures], signal);
		failures += 1;
	}

	function open() {
		const headers = { Accept: 'text/event-stream' };
		if (lastEventId !== null) {
			headers['Last-Event-ID'] = lastEventId;
			return request('GET', `${sessionPath(sessionId)}/stream`, { headers, signal, raw: true });
		}
		if (content === undefined) {
			return request('GET', `${sessionPath(sessionId)}/stream`, { headers, signal, raw: true });
		}
		headers['Idempotency-Key'] = idempotencyKey;
		return request('POST', `${sessionPath(sessionId)}/stream`, {
			body: { content },
			headers,
			signal,
			raw: true,
		});
	}
}

/** Asks the server to stop the session's reply in progress. */
export async function cancelReply(sessionId) {
	try {
		return await request('POST', `${sessionPath(sessionId)}/cancel`);
	} catch (err) {
		if (err instanceof ApiError && err.status === 409) return { cancelled: false }; // already over
		throw err;
	}
}
