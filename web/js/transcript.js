// transcript.js: the messages of the open session on screen: rendering
// (Markdown for replies, plain text for the user's own words), the reply
// that is still streaming with its blinking cursor, auto-scroll that lets
// go when the user scrolls up, and the plain-text export.
import { formatStamp, h, timeElement } from './dom.js';
import { renderMarkdown } from './markdown.js';

const ROLE_LABEL = { user: 'You', assistant: 'Assistant', system: 'System' };
const EXPORT_ROLE = { user: 'User', assistant: 'Assistant', system: 'System' };
const STATUS_LABEL = {
	cancelled: 'Stopped',
	interrupted: 'Interrupted',
	error: 'Error',
	streaming: 'Replying…',
};
const NEAR_BOTTOM_PX = 48;

export class Transcript {
	constructor({ list, scroller, empty, jump }) {
		this.list = list;
		this.scroller = scroller;
		this.empty = empty;
		this.jump = jump;
		this.messages = []; // {id, role, content, status, created_at, view}
		this.stick = true; // follow new text to the bottom?
		this.bulk = false; // adding a whole history at once
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
		this.updateEmpty();
	}

	/** Replaces everything with a session's messages from the server. */
	setMessages(messages) {
		this.clear();
		this.bulk = true; // one scroll at the end, not one layout per message
		try {
			for (const m of messages) this.add(m);
		} finally {
			this.bulk = false;
		}
		this.stick = true;
		this.scrollToBottom();
	}

	get isEmpty() {
		return this.messages.length === 0;
	}

	/** Adds one message; returns its MessageView. */
	add(message) {
		const entry = {
			id: message.id ?? null,
			role: message.role,
			content: message.content ?? '',
			status: message.status ?? 'complete',
			created_at: message.created_at ?? new Date().toISOString(),
		};
		entry.view = new MessageView(entry, this);
		this.messages.push(entry);
		this.list.append(entry.view.el);
		this.updateEmpty();
		this.followIfStuck();
		return entry.view;
	}

	updateEmpty() {
		this.empty.hidden = this.messages.length > 0;
	}

	onScroll() {
		const s = this.scroller;
		this.stick = s.scrollHeight - s.scrollTop - s.clientHeight <= NEAR_BOTTOM_PX;
		if (this.stick) this.jump.hidden = true;
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

	/** The transcript as plain text with timestamps (Copy and Download). */
	toPlainText(title) {
		const lines = [`Chat transcript: ${title}`, `Exported: ${formatStamp(new Date())}`, ''];
		for (const m of this.messages) {
			const note = m.status !== 'complete' && STATUS_LABEL[m.status] ? ` (${STATUS_LABEL[m.status].toLowerCase()})` : '';
			lines.push(`[${formatStamp(m.created_at)}] ${EXPORT_ROLE[m.role] ?? m.role}${note}: ${m.content}`, '');
		}
		return `${lines.join('\n').trimEnd()}\n`;
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
		this.badge = h('span', { className: 'badge', hidden: true });
		this.body = h('div', { className: entry.role === 'user' ? 'message-body plain' : 'message-body md' });
		this.errorEl = h('p', { className: 'message-error', hidden: true });
		this.el = h(
			'li',
			{ className: `message ${entry.role}`, dataset: { id: entry.id ?? '' } },
			h(
				'div',
				{ className: 'message-meta' },
				h('span', { className: 'role', text: ROLE_LABEL[entry.role] ?? entry.role }),
				' ',
				timeElement(entry.created_at),
				' ',
				this.badge,
			),
			this.body,
			this.errorEl,
		);
		this.render();
		this.setStatus(entry.status);
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

	fail(message, status = 'error') {
		this.errorEl.textContent = message;
		this.errorEl.hidden = false;
		this.finish(status);
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
		if (status === 'streaming') this.el.setAttribute('aria-busy', 'true');
		else this.el.removeAttribute('aria-busy');
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
			if (this.streaming) cursorTarget(this.body).append(h('span', { className: 'cursor', attrs: { 'aria-hidden': 'true' } }));
		}
		this.transcript.followIfStuck();
	}
}

/** The innermost element at the end of the text, where the cursor goes. */
function cursorTarget(root) {
	let el = root;
	for (;;) {
		const last = el.lastChild;
		if (!(last instanceof Element) || ['A', 'BR', 'HR', 'TABLE'].includes(last.tagName)) return el;
		if (last.classList.contains('table-wrap')) return el;
		el = last;
	}
}
