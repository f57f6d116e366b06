// sessions.js: the user's chat sessions: the API calls and the sidebar list.
import { request } from './api.js';
import { h, icon, timeElement } from './dom.js';

const BASE = '/api/chat/realtime/sessions';
const PAGE_SIZE = 50;
export const DEFAULT_TITLE = 'New chat';
const FOCUSABLE_PARTS = ['session-link', 'session-rename', 'session-delete'];

export const createSession = (title) => request('POST', BASE, { body: title ? { title } : {} });
export const getSession = (id, signal) => request('GET', `${BASE}/${encodeURIComponent(id)}`, { signal });
export const renameSession = (id, title) =>
	request('PATCH', `${BASE}/${encodeURIComponent(id)}`, { body: { title } });
export const deleteSession = (id) => request('DELETE', `${BASE}/${encodeURIComponent(id)}`);

/** A session title from the first words of a message. */
export function titleFrom(text) {
	const oneLine = text.replace(/\s+/g, ' ').trim();
	return oneLine.length > 60 ? `${oneLine.slice(0, 57).trimEnd()}…` : oneLine || DEFAULT_TITLE;
}

/**
 * The sidebar list. Each entry is a link to #/chat/<id> (so it works with
 * the keyboard, middle-click and the back button) with Rename and Delete
 * buttons; the callbacks do the asking and the API calls.
 */
export class SessionList {
	constructor({ list, empty, more, onRename, onDelete }) {
		this.listEl = list;
		this.emptyEl = empty;
		this.moreButton = more;
		this.onRename = onRename;
		this.onDelete = onDelete;
		this.sessions = [];
		this.activeId = null;
		this.hasMore = false;
		this.moreButton.addEventListener('click', () => this.loadMore());
	}

	async load() {
		const page = await request('GET', `${BASE}?limit=${PAGE_SIZE}&offset=0`);
		this.sessions = page.sessions ?? [];
		this.hasMore = Boolean(page.has_more);
		this.render();
		return this.sessions;
	}

	async loadMore() {
		this.moreButton.disabled = true;
		try {
			const page = await request('GET', `${BASE}?limit=${PAGE_SIZE}&offset=${this.sessions.length}`);
			const known = new Set(this.sessions.map((s) => s.id));
			this.sessions.push(...(page.sessions ?? []).filter((s) => !known.has(s.id)));
			this.hasMore = Boolean(page.has_more);
			this.render();
		} finally {
			this.moreButton.disabled = false;
		}
	}

	get(id) {
		return this.sessions.find((s) => s.id === id) ?? null;
	}

	/** Adds or updates a session and puts it first (most recently active). */
	upsert(session) {
		const old = this.get(session.id);
		this.sessions = [{ ...old, ...session }, ...this.sessions.filter((s) => s.id !== session.id)];
		this.render();
	}

	remove(id) {
		this.sessions = this.sessions.filter((s) => s.id !== id);
		this.render();
	}

	setActive(id) {
		this.activeId = id;
		for (const link of this.listEl.querySelectorAll('.session-link')) {
			if (link.dataset.id === id) link.setAttribute('aria-current', 'page');
			else link.removeAttribute('aria-current');
		}
	}

	render() {
		// Re-rendering must not throw the keyboard user's focus away.
		const active = document.activeElement;
		const focused = this.listEl.contains(active)
			? { id: active.closest('li[data-id]')?.dataset.id, part: FOCUSABLE_PARTS.find((c) => active.classList.contains(c)) }
			: null;
		this.listEl.replaceChildren(...this.sessions.map((s) => this.item(s)));
		this.emptyEl.hidden = this.sessions.length > 0;
		this.moreButton.hidden = !this.hasMore;
		if (focused?.id && focused.part) {
			this.listEl.querySelector(`li[data-id="${CSS.escape(focused.id)}"] .${focused.part}`)?.focus();
		}
	}

	item(session) {
		const title = session.title || DEFAULT_TITLE;
		const link = h(
			'a',
			{
				className: 'session-link',
				href: `#/chat/${encodeURIComponent(session.id)}`,
				dataset: { id: session.id },
				attrs: { 'aria-current': session.id === this.activeId ? 'page' : null },
			},
			h('span', { className: 'session-title', text: title }),
			timeElement(session.updated_at ?? session.created_at, 'session-time'),
		);
		const rename = h(
			'button',
			{
				type: 'button',
				className: 'icon-button session-rename',
				title: 'Rename',
				attrs: { 'aria-label': `Rename chat “${title}”` },
				onclick: () => this.onRename(session),
			},
			icon('pencil'),
		);
		const remove = h(
			'button',
			{
				type: 'button',
				className: 'icon-button session-delete',
				title: 'Delete',
				attrs: { 'aria-label': `Delete chat “${title}”` },
				onclick: () => this.onDelete(session),
			},
			icon('trash'),
		);
		return h('li', { className: 'session', dataset: { id: session.id } }, link, h('div', { className: 'session-actions' }, rename, remove));
	}
}
