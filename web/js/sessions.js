// sessions.js: the user's chat sessions: the API calls and the sidebar list.
import { errorMessage, request } from './api.js';
import { h, icon, timeElement } from './dom.js';

const BASE = '/api/chat/realtime/sessions';
const PAGE_SIZE = 30;
export const MESSAGES_PAGE = 50;
export const DEFAULT_TITLE = 'New chat';
const TITLE_MAX = 48;
const SEARCH_DELAY_MS = 250;
const FOCUSABLE_PARTS = ['session-link', 'session-rename', 'session-delete'];

export const createSession = (title) => request('POST', BASE, { body: title ? { title } : {} });
/** A session with its latest messages (all of them on a server without paging). */
export const getSession = (id, signal, before = null) => {
	const q = new URLSearchParams({ limit: String(MESSAGES_PAGE) });
	if (before) q.set('before', before);
	return request('GET', `${BASE}/${encodeURIComponent(id)}?${q}`, { signal });
};
export const renameSession = (id, title) =>
	request('PATCH', `${BASE}/${encodeURIComponent(id)}`, { body: { title } });
export const deleteSession = (id) => request('DELETE', `${BASE}/${encodeURIComponent(id)}`);

/**
 * A session title from a message: steering directives such as [[delay=20]]
 * dropped, whitespace folded, cut at a word near TITLE_MAX characters.
 */
export function titleFrom(text) {
	const oneLine = String(text ?? '')
		.replace(/\[\[[\s\S]*?\]\]/g, ' ')
		.replace(/\s+/g, ' ')
		.trim();
	return shorten(oneLine) || DEFAULT_TITLE;
}

/** Cuts text to TITLE_MAX characters at a word boundary, with an ellipsis. */
export function shorten(text, max = TITLE_MAX) {
	const chars = [...text];
	if (chars.length <= max) return text;
	const cut = chars.slice(0, max - 1).join('');
	const space = cut.lastIndexOf(' ');
	return `${(space > max / 2 ? cut.slice(0, space) : cut).replace(/[\s,;:.\-–—]+$/, '')}…`;
}

/** The date group of a session: Today, Yesterday, Previous 7 days, Previous 30 days, Older. */
export function dateGroup(iso, now = new Date()) {
	const d = new Date(iso);
	if (Number.isNaN(d.getTime())) return 'Today';
	const startOfDay = (x) => new Date(x.getFullYear(), x.getMonth(), x.getDate()).getTime();
	const days = Math.round((startOfDay(now) - startOfDay(d)) / 86400000);
	if (days <= 0) return 'Today';
	if (days === 1) return 'Yesterday';
	if (days <= 7) return 'Previous 7 days';
	if (days <= 30) return 'Previous 30 days';
	return 'Older';
}

/**
 * The sidebar list, grouped by date, with a search box. Pages come by the
 * server's next_cursor (or, from a server without cursors, by offset); the
 * search is the server's (q=). Each entry is a link to #/chat/<id> (so it
 * works with the keyboard, middle-click and the back button) with Rename and
 * Delete buttons; the callbacks do the asking and the API calls.
 */
export class SessionList {
	constructor({ list, empty, more, search, onRename, onDelete }) {
		this.listEl = list;
		this.emptyEl = empty;
		this.moreButton = more;
		this.searchEl = search;
		this.onRename = onRename;
		this.onDelete = onDelete;
		this.sessions = [];
		this.activeId = null;
		this.hasMore = false;
		this.cursor = null;
		this.query = '';
		this.loading = null; // the AbortController of the page being read
		this.moreButton.addEventListener('click', () => this.loadMore());
		if (search) {
			let timer = 0;
			search.addEventListener('input', () => {
				clearTimeout(timer);
				timer = setTimeout(() => this.search(search.value), SEARCH_DELAY_MS);
			});
			search.form?.addEventListener('submit', (e) => {
				e.preventDefault();
				clearTimeout(timer);
				this.search(search.value);
			});
		}
		// The next page comes when "Load more" scrolls into view.
		if ('IntersectionObserver' in window) {
			new IntersectionObserver((entries) => {
				if (entries.some((e) => e.isIntersecting) && this.hasMore && !this.loading) this.loadMore().catch(() => {});
			}).observe(more);
		}
	}

	pageUrl(first) {
		const q = new URLSearchParams({ limit: String(PAGE_SIZE) });
		if (this.query) q.set('q', this.query);
		if (!first && this.cursor) q.set('cursor', this.cursor);
		else q.set('offset', first ? '0' : String(this.sessions.length));
		return `${BASE}?${q}`;
	}

	async fetchPage(first) {
		this.loading?.abort();
		const controller = new AbortController();
		this.loading = controller;
		this.listEl.setAttribute('aria-busy', 'true');
		try {
			const page = await request('GET', this.pageUrl(first), { signal: controller.signal });
			this.cursor = typeof page.next_cursor === 'string' && page.next_cursor ? page.next_cursor : null;
			this.hasMore = Boolean(this.cursor || page.has_more);
			return page.sessions ?? [];
		} finally {
			if (this.loading === controller) {
				this.loading = null;
				this.listEl.setAttribute('aria-busy', 'false');
			}
		}
	}

	async load() {
		this.sessions = await this.fetchPage(true);
		this.render();
		return this.sessions;
	}

	/** Shows the chats matching words (all chats for none). */
	async search(words) {
		const q = words.trim();
		if (q === this.query) return;
		this.query = q;
		try {
			await this.load();
		} catch (err) {
			if (err?.name === 'AbortError') return;
			// Said where the results would be; the list is left as it was.
			this.emptyEl.hidden = false;
			this.emptyEl.textContent = `The search failed: ${errorMessage(err)}`;
		}
	}

	async loadMore() {
		if (this.loading) return;
		this.moreButton.disabled = true;
		try {
			const page = await this.fetchPage(false);
			const known = new Set(this.sessions.map((s) => s.id));
			this.sessions.push(...page.filter((s) => !known.has(s.id)));
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
		const groups = new Map();
		const now = new Date();
		for (const s of this.sessions) {
			const name = dateGroup(s.updated_at ?? s.created_at, now);
			if (!groups.has(name)) groups.set(name, []);
			groups.get(name).push(s);
		}
		let n = 0;
		const sections = [...groups].map(([name, sessions]) => {
			n += 1;
			const headingId = `session-group-${n}`;
			return h(
				'section',
				{ className: 'session-group', attrs: { 'aria-labelledby': headingId } },
				h('h3', { className: 'session-group-heading', id: headingId, text: name }),
				h('ul', { className: 'session-group-list' }, sessions.map((s) => this.item(s))),
			);
		});
		this.listEl.replaceChildren(...sections);
		this.emptyEl.hidden = this.sessions.length > 0;
		this.emptyEl.textContent = this.query ? `No chats match “${this.query}”.` : 'No chats yet.';
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
