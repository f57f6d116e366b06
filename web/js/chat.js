// chat.js: the Chatbot page: opening a session, sending a message and
// streaming the reply into the transcript, Stop, and Copy / Download of
// the transcript (seed 004).
import { errorMessage } from './api.js';
import { formatStamp, isAbortError } from './dom.js';
import { DEFAULT_TITLE, createSession, getSession, renameSession, titleFrom } from './sessions.js';
import { StreamLostError, cancelReply, streamReply } from './stream.js';
import { Transcript } from './transcript.js';

// Give up waiting for the server's "cancelled" event after this long.
const STOP_GRACE_MS = 5000;

export class ChatPage {
	/**
	 * els: the page's elements. sessions: the SessionList (kept in step).
	 * onSessionOpened(id): the URL should now name this session.
	 */
	constructor({ els, sessions, onSessionOpened }) {
		this.els = els;
		this.sessions = sessions;
		this.onSessionOpened = onSessionOpened;
		this.session = null;
		this.stream = null; // {controller, sessionId, view, stopping}
		this.loadController = null;
		this.transcript = new Transcript({
			list: els.transcript,
			scroller: els.scroller,
			empty: els.empty,
			jump: els.jump,
		});

		els.composer.addEventListener('submit', (e) => {
			e.preventDefault();
			this.send();
		});
		els.input.addEventListener('keydown', (e) => {
			if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
				e.preventDefault();
				els.composer.requestSubmit();
			} else if (e.key === 'Escape' && this.stream) {
				e.preventDefault();
				this.stop();
			}
		});
		els.stop.addEventListener('click', () => this.stop());
		els.copy.addEventListener('click', () => this.copy());
		els.download.addEventListener('click', () => this.download());
		this.updateControls();
	}

	get sessionId() {
		return this.session?.id ?? null;
	}

	/** Shows an empty chat; the first message creates the session. */
	openBlank() {
		this.detachStream();
		this.loadController?.abort();
		this.session = null;
		this.transcript.clear();
		this.setTitle(DEFAULT_TITLE);
		this.sessions.setActive(null);
		this.say('');
		this.updateControls();
	}

	/** Loads a session's history; attaches to a reply still in progress. */
	async open(id) {
		if (id === this.sessionId && !this.loadController) return;
		this.detachStream();
		this.loadController?.abort();
		const controller = new AbortController();
		this.loadController = controller;
		this.session = { id, title: this.sessions.get(id)?.title ?? DEFAULT_TITLE };
		this.sessions.setActive(id);
		this.setTitle(this.session.title);
		this.transcript.clear();
		this.say('Loading…');
		this.updateControls();
		try {
			const session = await getSession(id, controller.signal);
			if (controller.signal.aborted) return;
			this.session = session;
			this.setTitle(session.title);
			this.transcript.setMessages(session.messages ?? []);
			this.say('');
			const last = this.transcript.messages.at(-1);
			if (last?.role === 'assistant' && last.status === 'streaming') this.attach(last.view);
		} catch (err) {
			if (isAbortError(err)) return;
			this.say(err.status === 404 ? 'This chat does not exist (any more).' : `Could not load the chat: ${errorMessage(err)}`, true);
			this.session = null;
		} finally {
			if (this.loadController === controller) this.loadController = null;
			this.updateControls();
		}
	}

	async send() {
		const { input } = this.els;
		// Leading blank lines and trailing space go; indentation stays (code).
		const content = input.value.replace(/^(?:[ \t]*\n)+/, '').trimEnd();
		if (!content.trim() || this.stream || this.loadController) return;
		input.value = '';
		try {
			if (!this.session) {
				const session = await createSession(titleFrom(content));
				this.session = { ...session, messages: [] };
				this.sessions.upsert(session);
				this.sessions.setActive(session.id);
				this.setTitle(session.title);
				this.onSessionOpened(session.id);
			} else if (this.transcript.isEmpty && this.session.title === DEFAULT_TITLE) {
				this.autoTitle(content); // no need to wait for it
			}
		} catch (err) {
			input.value = content;
			this.say(`Could not start the chat: ${errorMessage(err)}`, true);
			return;
		}
		this.transcript.add({ role: 'user', content });
		const view = this.transcript.add({ role: 'assistant', content: '', status: 'streaming' });
		this.run(view, content);
	}

	/** Reads a reply into view: a new one (content) or one in progress. */
	async run(view, content) {
		const sessionId = this.sessionId;
		const controller = new AbortController();
		const stream = { controller, sessionId, view, stopping: false };
		this.stream = stream;
		this.say('');
		this.updateControls();
		try {
			const terminal = await streamReply({
				sessionId,
				content,
				signal: controller.signal,
				onEvent: (event) => this.onEvent(view, event),
				onConnection: (state, attempt) =>
					this.say(state === 'reconnecting' ? `Connection lost. Reconnecting (attempt ${attempt})…` : 'Reconnected.'),
			});
			if (terminal === null) {
				// Nothing left to replay: the reply ended while we were away.
				const session = await getSession(sessionId);
				const saved = session.messages?.find((m) => m.id === view.entry.id) ?? session.messages?.at(-1);
				view.finish(saved?.status ?? 'interrupted', saved?.content);
			}
			if (view.entry.status === 'cancelled') this.say('Reply stopped.');
			else if (this.els.status.textContent === 'Reconnected.') this.say('');
		} catch (err) {
			if (isAbortError(err)) {
				if (stream.stopping) {
					view.finish('cancelled');
					this.say('Reply stopped.');
				}
				// Otherwise the user left this chat: the reply goes on server-side.
			} else {
				view.fail(errorMessage(err), err instanceof StreamLostError ? 'interrupted' : 'error');
				this.say(errorMessage(err), true);
			}
		} finally {
			clearTimeout(stream.stopTimer);
			if (this.stream === stream) this.stream = null;
			this.updateControls();
			const known = this.sessions.get(sessionId);
			if (known) this.sessions.upsert({ ...known, updated_at: new Date().toISOString() });
		}
	}

	onEvent(view, event) {
		switch (event.type) {
			case 'start':
				view.setId(event.message_id);
				view.startStreaming(''); // a replay from the start begins anew
				break;
			case 'content':
				if (typeof event.content === 'string') view.append(event.content);
				break;
			case 'done':
				view.setId(event.message_id);
				view.finish(event.status || 'complete', event.full_content);
				break;
			case 'error':
				view.setId(event.message_id);
				view.fail(event.error || 'The reply failed.', event.status || 'error');
				this.say(event.error || 'The reply failed.', true);
				break;
			default:
				break; // unknown event types are ignored
		}
	}

	/** Follows a reply that was still being generated when the page loaded. */
	attach(view) {
		if (!view) return;
		view.startStreaming();
		this.run(view, undefined);
	}

	/** Stop: asks the server to cancel; the stream ends with "cancelled". */
	async stop() {
		const stream = this.stream;
		if (!stream || stream.stopping) return;
		stream.stopping = true;
		this.updateControls();
		this.say('Stopping…');
		// If the server's final event does not come, stop reading anyway.
		stream.stopTimer = setTimeout(() => stream.controller.abort(), STOP_GRACE_MS);
		try {
			await cancelReply(stream.sessionId);
		} catch (err) {
			this.say(`Could not stop the reply: ${errorMessage(err)}`, true);
			stream.controller.abort();
		}
	}

	/** Stops reading the current stream (the server carries on). */
	detachStream() {
		if (!this.stream) return;
		const { controller, view } = this.stream;
		this.stream = null;
		controller.abort();
		view.stop();
		this.updateControls();
	}

	async autoTitle(content) {
		const session = this.session;
		try {
			const renamed = await renameSession(session.id, titleFrom(content));
			if (this.session?.id === renamed.id) {
				this.session.title = renamed.title;
				this.setTitle(renamed.title);
			}
			this.sessions.upsert(renamed);
		} catch {
			// the default title stays; nothing the user needs to hear about
		}
	}

	/** Renaming from the sidebar shows in the header too. */
	renamed(session) {
		if (session.id === this.sessionId) {
			this.session.title = session.title;
			this.setTitle(session.title);
		}
	}

	setTitle(title) {
		this.els.title.textContent = title || DEFAULT_TITLE;
		if (!this.els.title.closest('[hidden]')) document.title = `${title || DEFAULT_TITLE} · Chat`;
	}

	exportText() {
		return this.transcript.toPlainText(this.session?.title ?? DEFAULT_TITLE);
	}

	async copy() {
		const text = this.exportText();
		try {
			await navigator.clipboard.writeText(text);
			this.say('Transcript copied to the clipboard.');
		} catch {
			this.say('Copying was refused by the browser. Use Download instead.', true);
		}
	}

	download() {
		const blob = new Blob([this.exportText()], { type: 'text/plain;charset=utf-8' });
		const url = URL.createObjectURL(blob);
		const a = document.createElement('a');
		a.href = url;
		a.download = downloadName(this.session?.title);
		document.body.append(a);
		a.click();
		a.remove();
		setTimeout(() => URL.revokeObjectURL(url), 1000);
		this.say('Transcript downloaded.');
	}

	updateControls() {
		const { send, stop, copy, download } = this.els;
		const streaming = Boolean(this.stream);
		send.disabled = streaming || Boolean(this.loadController);
		stop.hidden = !streaming;
		send.hidden = streaming;
		stop.disabled = Boolean(this.stream?.stopping);
		copy.disabled = this.transcript.isEmpty;
		download.disabled = this.transcript.isEmpty;
		this.els.scroller.setAttribute('aria-busy', String(Boolean(this.loadController)));
		// Keep keyboard focus on a usable control when the buttons swap.
		if (streaming && document.activeElement === send) stop.focus();
		if (!streaming && document.activeElement === stop) this.els.input.focus();
	}

	say(text, isError = false) {
		const { status } = this.els;
		status.textContent = text;
		status.classList.toggle('error', isError);
	}
}

/** transcript-<title>-20251011-103005.txt */
function downloadName(title) {
	const slug = (title || 'chat')
		.toLowerCase()
		.normalize('NFKD')
		.replace(/[^a-z0-9]+/g, '-')
		.replace(/^-+|-+$/g, '')
		.slice(0, 40);
	const stamp = formatStamp(new Date()).replace(/[-:]/g, '').replace(' ', '-');
	return `transcript-${slug || 'chat'}-${stamp}.txt`;
}
