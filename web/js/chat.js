// chat.js: the Chatbot page: opening a session (its latest messages, older
// ones as the user scrolls up), sending a message and streaming the reply
// into the transcript, Stop, Regenerate and Edit (each a new turn through
// the same stream route), the model picker, naming a new chat, and Copy /
// Download (text, Markdown, JSON) of the transcript.
import { errorMessage, request } from './api.js';
import { formatStamp, isAbortError } from './dom.js';
import { titleSummaries } from './prefs.js';
import { DEFAULT_TITLE, createSession, getSession, renameSession, titleFrom } from './sessions.js';
import { StreamLostError, cancelReply, streamReply } from './stream.js';
import { summaryTitle } from './titles.js';
import { Transcript, copyText } from './transcript.js';

// Give up waiting for the server's "cancelled" event after this long.
const STOP_GRACE_MS = 5000;
const FORMATS = {
	txt: { type: 'text/plain', ext: 'txt' },
	md: { type: 'text/markdown', ext: 'md' },
	json: { type: 'application/json', ext: 'json' },
};

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
		this.olderLoading = null;
		this.model = null; // the account's chat model (settings)
		this.touch = window.matchMedia('(pointer: coarse)');
		this.transcript = new Transcript({
			list: els.transcript,
			scroller: els.scroller,
			empty: els.empty,
			jump: els.jump,
			older: els.older,
			onRegenerate: (entry) => this.regenerate(entry),
			onEdit: (entry, text) => this.resend(entry, text),
			onNeedOlder: () => this.loadOlder(),
		});

		els.composer.addEventListener('submit', (e) => {
			e.preventDefault();
			this.send();
		});
		els.input.addEventListener('keydown', (e) => {
			// On a touch screen Enter adds a line; the Send button sends.
			if (e.key === 'Enter' && !e.shiftKey && !e.isComposing && !this.touch.matches) {
				e.preventDefault();
				els.composer.requestSubmit();
			} else if (e.key === 'Escape' && this.stream) {
				e.preventDefault();
				this.stop();
			}
		});
		const hint = () => {
			els.input.placeholder = this.touch.matches ? 'Message…' : 'Message… (Enter sends, Shift+Enter adds a line)';
		};
		hint();
		this.touch.addEventListener('change', hint);
		els.stop.addEventListener('click', () => this.stop());
		els.copy.addEventListener('click', () => this.copy());
		els.download.addEventListener('click', () => this.toggleDownloadMenu());
		for (const item of els.downloadMenu.querySelectorAll('button[data-format]')) {
			item.addEventListener('click', () => {
				this.toggleDownloadMenu(false);
				this.download(item.dataset.format);
			});
		}
		els.downloadMenu.addEventListener('keydown', (e) => {
			if (e.key === 'Escape') this.toggleDownloadMenu(false, true);
		});
		document.addEventListener('click', (e) => {
			if (!els.download.parentElement.contains(e.target)) this.toggleDownloadMenu(false);
		});
		els.modelPicker.addEventListener('change', () => this.chooseModel(els.modelPicker.value));
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

	/** Loads a session's latest messages; attaches to a reply still in progress. */
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
			this.transcript.setMessages(session.messages ?? [], session.has_more);
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

	/** The messages before the first one on screen (a server that pages them says has_more). */
	async loadOlder() {
		const first = this.transcript.messages.find((m) => m.id);
		const sessionId = this.sessionId;
		if (this.olderLoading || this.loadController || !first || !sessionId) return;
		const controller = new AbortController();
		this.olderLoading = controller;
		this.transcript.setLoadingOlder(true);
		try {
			const page = await getSession(sessionId, controller.signal, first.id);
			if (this.sessionId !== sessionId) return;
			this.transcript.prepend(page.messages ?? [], page.has_more);
		} catch (err) {
			if (!isAbortError(err)) this.say(`Could not load earlier messages: ${errorMessage(err)}`, true);
		} finally {
			if (this.olderLoading === controller) this.olderLoading = null;
			this.transcript.setLoadingOlder(false);
		}
	}

	/** Every message of the session on screen (before an export). */
	async loadAll() {
		while (this.transcript.hasMore && this.sessionId) {
			const before = this.transcript.messages.length;
			await this.loadOlder();
			if (this.transcript.messages.length === before) break;
		}
	}

	async send() {
		const { input } = this.els;
		// Leading blank lines and trailing space go; indentation stays (code).
		const content = input.value.replace(/^(?:[ \t]*\n)+/, '').trimEnd();
		if (!content.trim() || this.stream || this.loadController) return;
		input.value = '';
		let named = false;
		try {
			if (!this.session) {
				const session = await createSession(titleFrom(content));
				this.session = { ...session, messages: [] };
				this.sessions.upsert(session);
				this.sessions.setActive(session.id);
				this.setTitle(session.title);
				this.onSessionOpened(session.id);
				named = true;
			} else if (this.transcript.isEmpty && this.session.title === DEFAULT_TITLE) {
				this.autoTitle(content); // no need to wait for it
				named = true;
			}
		} catch (err) {
			input.value = content;
			this.say(`Could not start the chat: ${errorMessage(err)}`, true);
			return;
		}
		this.turn(content, named);
	}

	/** A new turn: the user's message and its reply, streamed. */
	async turn(content, first = false) {
		this.transcript.add({ role: 'user', content });
		const view = this.transcript.add({ role: 'assistant', content: '', status: 'streaming', model: this.model });
		await this.run(view, content);
		if (first && view.entry.status === 'complete' && titleSummaries()) this.summarise(content);
	}

	/** Regenerate: the last message again, as a new turn; the earlier one stays, marked. */
	regenerate(reply) {
		if (this.stream || this.loadController) return;
		const current = this.transcript.messages.filter((m) => !m.superseded);
		const userEntry = current.findLast((m) => m.role === 'user' && current.indexOf(m) < current.indexOf(reply));
		if (!userEntry) return;
		this.transcript.supersedeFrom(userEntry);
		this.turn(userEntry.content);
	}

	/** Edit and resend: the edited message as a new turn; the earlier one stays, marked. */
	resend(userEntry, text) {
		if (this.stream || this.loadController) return;
		this.transcript.supersedeFrom(userEntry);
		this.turn(text);
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
				view.entry.error = saved?.error ?? null;
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
				// Shown once, with the reply it belongs to.
				view.fail(errorMessage(err), err instanceof StreamLostError ? 'interrupted' : 'error');
				this.say('');
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
				view.entry.error = event.code ?? null;
				view.fail(event.error || 'The reply failed.', event.status || 'error');
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
		await this.retitle(this.session, titleFrom(content));
	}

	/** A title by the model after the first reply (the browser setting allows it). */
	async summarise(content) {
		const session = this.session;
		if (!session) return;
		try {
			const title = await summaryTitle({ model: this.model, message: content });
			// The user may have renamed it meanwhile: only a title we gave is replaced.
			if (title && this.sessions.get(session.id)?.title === titleFrom(content)) await this.retitle(session, title);
		} catch {
			// the first message's words stay the title
		}
	}

	async retitle(session, title) {
		try {
			const renamed = await renameSession(session.id, title);
			if (this.session?.id === renamed.id) {
				this.session.title = renamed.title;
				this.setTitle(renamed.title);
			}
			this.sessions.upsert(renamed);
		} catch {
			// the title stays; nothing the user needs to hear about
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
		this.els.title.title = title || DEFAULT_TITLE;
		if (!this.els.title.closest('[hidden]')) document.title = `${title || DEFAULT_TITLE} · Chat`;
	}

	// ---------------------------------------------------------- model picker

	/** Fills the picker from GET /v1/models, the account's model selected. */
	async loadModels() {
		const picker = this.els.modelPicker;
		try {
			const [list, settings] = await Promise.all([request('GET', '/v1/models'), request('GET', '/api/settings')]);
			this.model = settings?.model ?? null;
			const ids = (list?.data ?? []).map((m) => m.id).filter((id) => typeof id === 'string');
			if (this.model && !ids.includes(this.model)) ids.unshift(this.model);
			picker.replaceChildren(...ids.map((id) => new Option(id, id, false, id === this.model)));
			picker.hidden = ids.length === 0;
			return ids;
		} catch {
			picker.hidden = true; // the chat works without it, with the account's model
			return [];
		}
	}

	async chooseModel(model) {
		const picker = this.els.modelPicker;
		const previous = this.model;
		picker.disabled = true;
		try {
			const saved = await request('PUT', '/api/settings', { body: { model } });
			this.model = saved?.model ?? model;
			this.say(`Replies now come from ${this.model}.`);
		} catch (err) {
			picker.value = previous ?? '';
			this.say(`Could not switch the model: ${errorMessage(err)}`, true);
		} finally {
			picker.disabled = false;
		}
	}

	/** The System page saved settings: the picker follows. */
	settingsChanged(settings) {
		if (!settings?.model) return;
		this.model = settings.model;
		const picker = this.els.modelPicker;
		if (![...picker.options].some((o) => o.value === settings.model)) picker.add(new Option(settings.model, settings.model));
		picker.value = settings.model;
	}

	// ---------------------------------------------------------------- export

	exportText() {
		return this.transcript.toPlainText(this.session?.title ?? DEFAULT_TITLE);
	}

	async copy() {
		await this.loadAll();
		if (await copyText(this.exportText())) this.say('Transcript copied to the clipboard.');
		else this.say('Copying was refused by the browser. Use Download instead.', true);
	}

	toggleDownloadMenu(open = this.els.downloadMenu.hidden, restoreFocus = false) {
		const { download, downloadMenu } = this.els;
		downloadMenu.hidden = !open;
		download.setAttribute('aria-expanded', String(open));
		if (open) downloadMenu.querySelector('button')?.focus();
		else if (restoreFocus) download.focus();
	}

	async download(format = 'txt') {
		await this.loadAll();
		const title = this.session?.title ?? DEFAULT_TITLE;
		const text =
			format === 'md' ? this.transcript.toMarkdown(title) : format === 'json' ? this.transcript.toJSON(this.session) : this.exportText();
		const { type, ext } = FORMATS[format] ?? FORMATS.txt;
		const blob = new Blob([text], { type: `${type};charset=utf-8` });
		const url = URL.createObjectURL(blob);
		const a = document.createElement('a');
		a.href = url;
		a.download = downloadName(this.session?.title, ext);
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
		if (download.disabled) this.toggleDownloadMenu(false);
		this.transcript.updateActions(streaming || Boolean(this.loadController));
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

/** transcript-<title>-20251011-103005.<ext> */
function downloadName(title, ext = 'txt') {
	const slug = (title || 'chat')
		.toLowerCase()
		.normalize('NFKD')
		.replace(/[^a-z0-9]+/g, '-')
		.replace(/^-+|-+$/g, '')
		.slice(0, 40);
	const stamp = formatStamp(new Date()).replace(/[-:]/g, '').replace(' ', '-');
	return `transcript-${slug || 'chat'}-${stamp}.${ext}`;
}
