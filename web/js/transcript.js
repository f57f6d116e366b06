// transcript.js: the messages of the open session on screen: rendering
// (Markdown for replies, plain text for the user's own words), the reply
// that is still streaming with its blinking cursor, auto-scroll that lets
// go when the user scrolls up, older messages loaded when the user scrolls
// to the top, per-message actions (Copy, Edit, Regenerate) and code blocks
// with a Copy button and syntax highlighting, and the exports (text,
// Markdown, JSON).
import { formatStamp, h, timeElement } from './dom.js';
import { highlightIn } from './highlight.js';
import { renderMarkdown } from './markdown.js';
import { reasonText } from './reasons.js';

const ROLE_LABEL = { user: 'You', assistant: 'Assistant', system: 'System' };
const EXPORT_ROLE = { user: 'User', assistant: 'Assistant', system: 'System' };
const STATUS_LABEL = {
	cancelled: 'Stopped',
	interrupted: 'Interrupted',
	error: 'Error',
	streaming: 'Replying…',
};
const NEAR_BOTTOM_PX = 48;
const NEAR_TOP_PX = 160;
const COPIED_MS = 2000;

/** Puts text on the clipboard; true if the browser allowed it. */
export async function copyText(text) {
	try {
		await navigator.clipboard.writeText(text);
		return true;
	} catch {
		return false;
	}
}

/** Shows "Copied" (or the refusal) on a button for a moment. */
async function copyWithFeedback(button, text) {
	const label = button.dataset.label ?? button.textContent;
	button.dataset.label = label;
	button.textContent = (await copyText(text)) ? 'Copied' : 'Copy refused';
	clearTimeout(button.copyTimer);
	button.copyTimer = setTimeout(() => {
		button.textContent = label;
	}, COPIED_MS);
}

export class Transcript {
	/**
	 * onRegenerate(entry): the last reply should be generated again.
	 * onEdit(entry, text): the last message of the user, edited, is to be sent.
	 * onNeedOlder(): the user scrolled to the top and hasMore is set.
	 */
	constructor({ list, scroller, empty, jump, older, onRegenerate, onEdit, onNeedOlder }) {
		this.list = list;
		this.scroller = scroller;
		this.empty = empty;
		this.jump = jump;
		this.older = older;
		this.onRegenerate = onRegenerate ?? (() => {});
		this.onEdit = onEdit ?? (() => {});
		this.onNeedOlder = onNeedOlder ?? (() => {});
		this.messages = []; // {id, role, content, status, error, created_at, superseded, view}
		this.stick = true; // follow new text to the bottom?
		this.bulk = false; // adding a whole history at once
		this.hasMore = false; // older messages on the server
		this.busy = false; // a reply is streaming: no Edit / Regenerate
		scroller.addEventListener('scroll', () => this.onScroll(), { passive: true });
		jump.addEventListener('click', () => {
			this.stick = true;
			this.scrollToBottom();
			jump.hidden = true;
		});
	}

	clear() {
		for (const m of this.messages) m.view?.stop();
		this.messages = [];
		this.list.replaceChildren();
		this.stick = true;
		this.jump.hidden = true;
		this.setHasMore(false);
		this.updateEmpty();
	}

	/** Replaces everything with a session's messages from the server. */
	setMessages(messages, hasMore = false) {
		this.clear();
		this.bulk = true; // one scroll at the end, not one layout per message
		try {
			for (const m of messages) this.add(m);
		} finally {
			this.bulk = false;
		}
		this.setHasMore(hasMore);
		this.markVersions();
		this.stick = true;
		this.scrollToBottom();
	}

	/** Adds older messages above the others, keeping what is on screen in place. */
	prepend(messages, hasMore) {
		const known = new Set(this.messages.map((m) => m.id).filter(Boolean));
		const fresh = messages.filter((m) => !m.id || !known.has(m.id));
		const before = this.scroller.scrollHeight;
		const entries = fresh.map((m) => this.entry(m));
		this.messages = [...entries, ...this.messages];
		this.list.prepend(...entries.map((e) => e.view.el));
		this.setHasMore(hasMore && fresh.length > 0);
		this.markVersions();
		this.scroller.scrollTop += this.scroller.scrollHeight - before;
		this.updateEmpty();
	}

	setHasMore(hasMore) {
		this.hasMore = Boolean(hasMore);
		this.older.hidden = !this.hasMore;
		this.older.textContent = this.hasMore ? 'Scroll up for earlier messages.' : '';
	}

	setLoadingOlder(loading) {
		if (loading) this.older.textContent = 'Loading earlier messages…';
		else this.setHasMore(this.hasMore);
	}

	get isEmpty() {
		return this.messages.length === 0;
	}

	entry(message) {
		const entry = {
			id: message.id ?? null,
			role: message.role,
			content: message.content ?? '',
			status: message.status ?? 'complete',
			error: message.error ?? null,
			model: message.model ?? null,
			created_at: message.created_at ?? new Date().toISOString(),
			superseded: false,
		};
		entry.view = new MessageView(entry, this);
		return entry;
	}

	/** Adds one message; returns its MessageView. */
	add(message) {
		const entry = this.entry(message);
		this.messages.push(entry);
		this.list.append(entry.view.el);
		this.updateEmpty();
		this.updateActions();
		this.followIfStuck();
		return entry.view;
	}

	/**
	 * A regenerated reply is sent as the same message again: a turn whose
	 * message repeats the previous turn's makes that turn an earlier version.
	 * Edited turns are marked by the page as they happen (supersede).
	 */
	markVersions() {
		let lastUser = -1;
		for (let i = 0; i < this.messages.length; i += 1) {
			const m = this.messages[i];
			if (m.role !== 'user') continue;
			const prev = lastUser >= 0 ? this.messages[lastUser] : null;
			if (prev && prev.content === m.content && i - lastUser >= 2) {
				for (let j = lastUser; j < i; j += 1) this.setSuperseded(this.messages[j]);
			}
			lastUser = i;
		}
		this.updateActions();
	}

	/** Marks the turn from entry on (the user's message and its reply) as an earlier version. */
	supersedeFrom(entry) {
		const i = this.messages.indexOf(entry);
		if (i < 0) return;
		for (const m of this.messages.slice(i)) this.setSuperseded(m);
		this.updateActions();
	}

	setSuperseded(m) {
		m.superseded = true;
		m.view.showVersion();
	}

	/** Only the last turn can be edited or regenerated, and not while a reply streams. */
	updateActions(busy = this.busy) {
		this.busy = busy;
		const current = this.messages.filter((m) => !m.superseded);
		const lastUser = current.findLast((m) => m.role === 'user');
		const last = current.at(-1);
		for (const m of this.messages) {
			m.view.setActions({
				edit: !busy && m === lastUser,
				regenerate: !busy && m === last && m.role === 'assistant' && Boolean(lastUser),
			});
		}
	}

	updateEmpty() {
		this.empty.hidden = this.messages.length > 0;
	}

	onScroll() {
		const s = this.scroller;
		this.stick = s.scrollHeight - s.scrollTop - s.clientHeight <= NEAR_BOTTOM_PX;
		if (this.stick) this.jump.hidden = true;
		if (this.hasMore && s.scrollTop <= NEAR_TOP_PX) this.onNeedOlder();
	}

	/** Called after content grew: follow it, or offer a way down. */
	followIfStuck() {
		if (this.bulk) return;
		if (this.stick) this.scrollToBottom();
		else this.jump.hidden = false;
	}

	scrollToBottom() {
		this.scroller.scrollTop = this.scroller.scrollHeight;
	}

	exported() {
		return this.messages.map((m) => ({
			...m,
			note: m.status !== 'complete' && STATUS_LABEL[m.status] ? STATUS_LABEL[m.status].toLowerCase() : '',
		}));
	}

	/** The transcript as plain text with timestamps (Copy and Download). */
	toPlainText(title) {
		const lines = [`Chat transcript: ${title}`, `Exported: ${formatStamp(new Date())}`, ''];
		for (const m of this.exported()) {
			const note = [m.note, m.superseded ? 'earlier version' : ''].filter(Boolean).join(', ');
			lines.push(`[${formatStamp(m.created_at)}] ${EXPORT_ROLE[m.role] ?? m.role}${note ? ` (${note})` : ''}: ${m.content}`, '');
		}
		return `${lines.join('\n').trimEnd()}\n`;
	}

	/** Markdown: a heading per message; replies are Markdown already, the user's words are quoted. */
	toMarkdown(title) {
		const out = [`# ${title}`, '', `_Exported ${formatStamp(new Date())}_`, ''];
		for (const m of this.exported()) {
			const note = [m.note, m.superseded ? 'earlier version' : ''].filter(Boolean).join(', ');
			out.push(`## ${EXPORT_ROLE[m.role] ?? m.role} · ${formatStamp(m.created_at)}${note ? ` (${note})` : ''}`, '');
			if (m.role === 'user') out.push(m.content.split('\n').map((l) => `> ${l}`.trimEnd()).join('\n'));
			else out.push(m.content);
			const why = m.view.errorText();
			if (why) out.push('', `_${why}_`);
			out.push('');
		}
		return `${out.join('\n').trimEnd()}\n`;
	}

	/** JSON: the session and its messages as the API names their fields. */
	toJSON(session) {
		return `${JSON.stringify(
			{
				id: session?.id ?? null,
				title: session?.title ?? null,
				exported_at: new Date().toISOString(),
				messages: this.messages.map((m) => ({
					id: m.id,
					role: m.role,
					content: m.content,
					status: m.status,
					error: m.error,
					model: m.model,
					created_at: m.created_at,
					current: !m.superseded,
				})),
			},
			null,
			2,
		)}\n`;
	}
}

/**
 * One message on screen. A reply in progress re-renders its Markdown at
 * most once per animation frame, with a blinking cursor at the end of the
 * text, and is aria-busy until done so screen readers read it once whole.
 */
export class MessageView {
	constructor(entry, transcript) {
		this.entry = entry;
		this.transcript = transcript;
		this.frame = 0;
		this.editing = false;
		this.badge = h('span', { className: 'badge', hidden: true });
		this.version = h('span', { className: 'version-tag', hidden: true, text: 'Earlier version' });
		this.body = h('div', { className: entry.role === 'user' ? 'message-body plain' : 'message-body md' });
		this.errorEl = h('p', { className: 'message-error', hidden: true });
		const who = ROLE_LABEL[entry.role] ?? entry.role;
		this.copyButton = h('button', {
			type: 'button',
			className: 'quiet message-copy',
			text: 'Copy',
			attrs: { 'aria-label': `Copy ${entry.role === 'user' ? 'your message' : 'the reply'}` },
			onclick: () => copyWithFeedback(this.copyButton, this.entry.content),
		});
		this.editButton = h('button', {
			type: 'button',
			className: 'quiet message-edit',
			text: 'Edit',
			hidden: true,
			attrs: { 'aria-label': 'Edit and resend your message' },
			onclick: () => this.startEdit(),
		});
		this.regenerateButton = h('button', {
			type: 'button',
			className: 'quiet message-regenerate',
			text: 'Regenerate',
			hidden: true,
			attrs: { 'aria-label': 'Regenerate the reply' },
			onclick: () => this.transcript.onRegenerate(this.entry),
		});
		this.actions = h(
			'div',
			{ className: 'message-actions', attrs: { role: 'group', 'aria-label': `${who}: actions` } },
			this.copyButton,
			this.editButton,
			this.regenerateButton,
		);
		this.el = h(
			'li',
			{ className: `message ${entry.role}`, dataset: { id: entry.id ?? '' } },
			h(
				'div',
				{ className: 'message-meta' },
				h('span', { className: 'role', text: who }),
				' ',
				timeElement(entry.created_at),
				' ',
				this.badge,
				' ',
				this.version,
			),
			this.body,
			this.errorEl,
			this.actions,
		);
		this.render();
		this.setStatus(entry.status);
		this.showError(reasonText(entry.status, entry.error));
	}

	get streaming() {
		return this.entry.status === 'streaming';
	}

	setId(id) {
		if (!id) return;
		this.entry.id = id;
		this.el.dataset.id = id;
	}

	/** Marks the message as a reply in progress (possibly with some text). */
	startStreaming(content = this.entry.content) {
		this.entry.content = content;
		this.showError('');
		this.setStatus('streaming');
		this.render();
	}

	append(text) {
		this.entry.content += text;
		this.scheduleRender();
	}

	/** The reply ended: its final text and status (complete, cancelled…). */
	finish(status, content) {
		if (typeof content === 'string') this.entry.content = content;
		this.setStatus(status || 'complete');
		this.stop();
		this.render();
	}

	/** The reply failed: the reason is shown under its text (once: not in the status line too). */
	fail(message, status = 'error') {
		this.showError(message);
		this.finish(status);
	}

	showError(text) {
		this.errorEl.textContent = text;
		this.errorEl.hidden = !text;
	}

	errorText() {
		return this.errorEl.hidden ? '' : this.errorEl.textContent;
	}

	stop() {
		if (this.frame) cancelAnimationFrame(this.frame);
		this.frame = 0;
	}

	setStatus(status) {
		this.entry.status = status;
		const label = status === 'complete' ? '' : STATUS_LABEL[status] ?? status;
		this.badge.textContent = label;
		this.badge.hidden = !label;
		this.badge.className = `badge badge-${status}`;
		this.el.classList.toggle('streaming', status === 'streaming');
		this.el.classList.toggle('failed', status === 'error' || status === 'interrupted');
		this.copyButton.hidden = status === 'streaming';
		if (status === 'streaming') this.el.setAttribute('aria-busy', 'true');
		else this.el.removeAttribute('aria-busy');
	}

	showVersion() {
		this.el.classList.toggle('superseded', this.entry.superseded);
		this.version.hidden = !this.entry.superseded;
	}

	setActions({ edit, regenerate }) {
		this.editButton.hidden = !edit || this.editing;
		this.regenerateButton.hidden = !regenerate;
	}

	/** Edit in place: the message in a text box, sent as a new turn. */
	startEdit() {
		if (this.editing) return;
		this.editing = true;
		const input = h('textarea', { className: 'edit-input', value: this.entry.content, rows: 3 });
		input.setAttribute('aria-label', 'Edit your message');
		const cancel = h('button', { type: 'button', className: 'quiet', text: 'Cancel', onclick: () => this.endEdit() });
		const send = h('button', {
			type: 'button',
			className: 'primary',
			text: 'Send',
			onclick: () => {
				const text = input.value.trim();
				if (!text) return;
				this.endEdit();
				this.transcript.onEdit(this.entry, text);
			},
		});
		input.addEventListener('keydown', (e) => {
			if (e.key === 'Escape') {
				e.preventDefault();
				this.endEdit();
			} else if (e.key === 'Enter' && !e.shiftKey && !e.isComposing) {
				e.preventDefault();
				send.click();
			}
		});
		this.editBox = h('div', { className: 'edit-box' }, input, h('div', { className: 'edit-actions' }, cancel, send));
		this.body.hidden = true;
		this.actions.hidden = true;
		this.body.after(this.editBox);
		input.focus();
		input.setSelectionRange(input.value.length, input.value.length);
	}

	endEdit() {
		this.editing = false;
		this.editBox?.remove();
		this.editBox = null;
		this.body.hidden = false;
		this.actions.hidden = false;
		this.transcript.updateActions();
		this.editButton.focus();
	}

	scheduleRender() {
		if (this.frame) return;
		this.frame = requestAnimationFrame(() => {
			this.frame = 0;
			this.render();
		});
	}

	render() {
		const { role, content } = this.entry;
		if (role === 'user') {
			this.body.textContent = content;
		} else {
			this.body.replaceChildren(renderMarkdown(content));
			decorateCodeBlocks(this.body);
			if (this.streaming) cursorTarget(this.body).append(h('span', { className: 'cursor', attrs: { 'aria-hidden': 'true' } }));
			else highlightIn(this.body);
		}
		this.transcript.followIfStuck();
	}
}

/** Puts each code block in a frame with its language and a Copy button. */
function decorateCodeBlocks(root) {
	for (const pre of root.querySelectorAll('pre')) {
		const code = pre.querySelector('code');
		const lang = pre.dataset.lang ?? '';
		const copy = h('button', {
			type: 'button',
			className: 'code-copy',
			text: 'Copy code',
			// The visible words first in the name (WCAG 2.5.3).
			attrs: { 'aria-label': lang ? `Copy code (${lang})` : 'Copy code' },
			onclick: () => copyWithFeedback(copy, code?.textContent ?? ''),
		});
		// A block that scrolls sideways must be reachable by the keyboard.
		pre.tabIndex = 0;
		if (lang) pre.setAttribute('aria-label', `${lang} code`);
		const frame = h('div', { className: 'code-block' });
		pre.replaceWith(frame);
		frame.append(h('div', { className: 'code-bar' }, h('span', { className: 'code-lang', text: lang || 'code' }), copy), pre);
	}
}

/** The innermost element at the end of the text, where the cursor goes. */
function cursorTarget(root) {
	let el = root;
	for (;;) {
		const last = el.lastChild;
		if (!(last instanceof Element) || ['A', 'BR', 'HR', 'TABLE', 'BUTTON'].includes(last.tagName)) return el;
		if (last.classList.contains('table-wrap')) return el;
		if (last.classList.contains('code-block')) {
			el = last.querySelector('pre') ?? last;
			continue;
		}
		el = last;
	}
}
