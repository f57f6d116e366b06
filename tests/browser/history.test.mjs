// The chat list and long chats: date groups, search, pages of chats by the
// server's cursor, and older messages loaded as the user scrolls up.
//
// Search (q=), cursors (next_cursor) and message pages (limit/before,
// has_more) are the server's: the tests marked [server paging] pass once
// GET …/sessions?q=&cursor= and GET …/sessions/{id}?limit=&before= are
// served; on a server that ignores those parameters they fail, while the UI
// still works (the whole list, every message at once).
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { BASE_URL, assertNoProblems, launch, loggedInPage, screenshot, send, waitReplyDone } from './lib.mjs';

let browser;
before(async () => {
	browser = await launch();
});
after(async () => {
	await browser?.close();
});

const SESSIONS = '/api/chat/realtime/sessions';

/** The page's token (sessionStorage), for API calls of the test itself. */
async function tokenOf(page) {
	return page.evaluate(() => JSON.parse(sessionStorage.getItem('chat.auth') ?? '{}').token);
}

async function api(page, method, path, body) {
	const token = await tokenOf(page);
	const r = await page.request.fetch(`${BASE_URL}${path}`, {
		method,
		headers: { Authorization: `Bearer ${token}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
		data: body ? JSON.stringify(body) : undefined,
	});
	assert.ok(r.ok(), `${method} ${path}: ${r.status()} ${await r.text()}`);
	return r.status() === 204 ? null : r.json();
}

/** A chat with turns, made through the API (each turn streamed to its end). */
async function chatWith(page, title, messages) {
	const s = await api(page, 'POST', SESSIONS, { title });
	for (const content of messages) {
		const token = await tokenOf(page);
		const r = await page.request.post(`${BASE_URL}${SESSIONS}/${s.id}/stream`, {
			headers: { Authorization: `Bearer ${token}`, 'Content-Type': 'application/json' },
			data: JSON.stringify({ content }),
		});
		assert.equal(r.status(), 200);
		await r.body();
	}
	return s;
}

const groupHeadings = (page) => page.locator('#session-list .session-group-heading').allTextContents();

test('chats are grouped by date: Today, Yesterday, Previous 7 days, Previous 30 days, Older', async () => {
	const { page } = await loggedInPage(browser);
	await send(page, 'today [[tokens=1]]');
	await waitReplyDone(page);
	assert.deepEqual(await groupHeadings(page), ['Today']);
	// The grouping rule itself, at fixed dates.
	const groups = await page.evaluate(async () => {
		const { dateGroup } = await import('/js/sessions.js');
		const now = new Date(2026, 2, 10, 9, 0, 0);
		const at = (d, h = 12) => new Date(2026, 2, 10 - d, h).toISOString();
		return [at(0, 1), at(1, 23), at(2), at(7), at(8), at(30), at(31), at(400)].map((iso) => dateGroup(iso, now));
	});
	assert.deepEqual(groups, [
		'Today',
		'Yesterday',
		'Previous 7 days',
		'Previous 7 days',
		'Previous 30 days',
		'Previous 30 days',
		'Older',
		'Older',
	]);
	// The group is a labelled section of the list, its chats a list.
	assert.equal(await page.getByRole('region', { name: 'Today', exact: true }).getByRole('listitem').count(), 1);
	assertNoProblems(page);
	await page.context().close();
});

test('[server paging] search finds a chat by a word in a message', async () => {
	const { page } = await loggedInPage(browser);
	const word = `zebra${Date.now().toString(36)}`;
	const wanted = await chatWith(page, 'About animals', ['hello [[tokens=1]]', `the ${word} is striped [[tokens=1]]`]);
	await chatWith(page, 'Something else', ['nothing here [[tokens=1]]']);
	await page.reload();
	await page.locator('#session-list .session').nth(1).waitFor();

	const asked = page.waitForRequest((r) => r.url().includes(`${SESSIONS}?`) && new URL(r.url()).searchParams.get('q') === word);
	await page.getByRole('searchbox', { name: 'Search chats' }).fill(word);
	await asked;
	await page.waitForFunction(() => document.querySelectorAll('#session-list .session').length === 1, null, { timeout: 5000 });
	assert.equal(await page.locator('#session-list .session').getAttribute('data-id'), wanted.id);
	await screenshot(page, 'history-search');

	// No match: said so; clearing the box brings every chat back.
	await page.getByRole('searchbox', { name: 'Search chats' }).fill(`${word}nomatch`);
	await page.locator('#sessions-empty', { hasText: 'No chats match' }).waitFor();
	await page.getByRole('searchbox', { name: 'Search chats' }).fill('');
	await page.waitForFunction(() => document.querySelectorAll('#session-list .session').length === 2);
	assertNoProblems(page);
	await page.context().close();
});

test('[server paging] more chats come by the server\'s cursor as the list is scrolled', async () => {
	const { page } = await loggedInPage(browser);
	for (let i = 0; i < 33; i += 1) await api(page, 'POST', SESSIONS, { title: `Chat ${i}` });
	const first = page.waitForResponse((r) => r.url().includes(`${SESSIONS}?`));
	await page.reload();
	const page1 = await (await first).json();
	assert.equal(page1.sessions.length, 30);
	assert.equal(typeof page1.next_cursor, 'string', 'the server gives a cursor');
	await page.locator('#session-list .session').nth(29).waitFor();

	const second = page.waitForRequest((r) => r.url().includes(`${SESSIONS}?`) && r.url().includes('cursor='));
	await page.locator('#sessions-more').scrollIntoViewIfNeeded();
	const url = new URL((await second).url());
	assert.equal(url.searchParams.get('cursor'), page1.next_cursor);
	await page.waitForFunction(() => document.querySelectorAll('#session-list .session').length === 33);
	assert.equal(await page.locator('#sessions-more').isHidden(), true);
	assertNoProblems(page);
	await page.context().close();
});

test('the chat list pages by offset on a server without cursors', async () => {
	const { page } = await loggedInPage(browser);
	for (let i = 0; i < 32; i += 1) await api(page, 'POST', SESSIONS, { title: `Chat ${i}` });
	// A server of before the cursors: has_more, no next_cursor.
	await page.route(`**${SESSIONS}?*`, async (route) => {
		const response = await route.fetch();
		const body = await response.json();
		delete body.next_cursor;
		await route.fulfill({ response, json: body });
	});
	await page.reload();
	await page.locator('#session-list .session').nth(29).waitFor();
	await page.locator('#sessions-more').scrollIntoViewIfNeeded();
	await page.waitForFunction(() => document.querySelectorAll('#session-list .session').length === 32);
	assertNoProblems(page);
	await page.context().close();
});

test('[server paging] a long chat opens at its latest messages; older ones load when scrolled up', async () => {
	const { page } = await loggedInPage(browser);
	const turns = Array.from({ length: 30 }, (_, i) => `message ${i} [[tokens=1]]`);
	const s = await chatWith(page, 'Long chat', turns); // 60 messages
	await page.goto(`${BASE_URL}/#/chat/${s.id}`);
	await page.locator('#transcript .message').first().waitFor();
	const count = () => page.locator('#transcript .message').count();
	assert.equal(await count(), 50, 'the latest 50');
	assert.equal(await page.locator('#transcript .message.user .message-body').first().textContent(), 'message 5 [[tokens=1]]');
	assert.equal(await page.locator('#older-status').isVisible(), true);

	// Scrolled to the top: the 10 before them, above, and the view stays put.
	const anchor = page.locator('#transcript .message.user', { hasText: 'message 5 ' });
	await page.locator('#transcript-scroller').evaluate((s) => {
		s.scrollTop = 0;
	});
	await page.waitForFunction(() => document.querySelectorAll('#transcript .message').length === 60);
	assert.equal(await page.locator('#transcript .message.user .message-body').first().textContent(), 'message 0 [[tokens=1]]');
	const box = await anchor.boundingBox();
	assert.ok(box && box.y >= 0, 'what was on screen did not jump away');
	assert.equal(await page.locator('#older-status').isVisible(), false);
	await screenshot(page, 'history-older-loaded');
	assertNoProblems(page);
	await page.context().close();
});

test('a chat opens whole on a server that sends every message (no has_more)', async () => {
	const { page } = await loggedInPage(browser);
	const s = await chatWith(page, 'Short chat', ['one [[tokens=1]]', 'two [[tokens=1]]']);
	await page.route(`**${SESSIONS}/${s.id}?*`, async (route) => {
		const response = await route.fetch();
		const body = await response.json();
		delete body.has_more;
		await route.fulfill({ response, json: body });
	});
	await page.goto(`${BASE_URL}/#/chat/${s.id}`);
	await page.waitForFunction(() => document.querySelectorAll('#transcript .message').length === 4);
	assert.equal(await page.locator('#older-status').isVisible(), false);
	assertNoProblems(page);
	await page.context().close();
});

// The same UI paths against paging done here, in front of a server without
// it: they are covered now, whatever the server does.

/** Serves GET …/sessions/{id}?limit=&before= from the full answer, as a paging server would. */
async function pageMessages(page, id) {
	await page.route(`**${SESSIONS}/${id}?*`, async (route) => {
		const url = new URL(route.request().url());
		const response = await route.fetch();
		const body = await response.json();
		const limit = Number(url.searchParams.get('limit') ?? 50);
		const before = url.searchParams.get('before');
		const end = before ? body.messages.findIndex((m) => m.id === before) : body.messages.length;
		const start = Math.max(0, end - limit);
		await route.fulfill({ response, json: { ...body, messages: body.messages.slice(start, end), has_more: start > 0 } });
	});
}

test('(simulated paging) older messages load above when scrolled to the top, the view kept in place', async () => {
	const { page } = await loggedInPage(browser);
	const s = await chatWith(
		page,
		'Long chat',
		Array.from({ length: 30 }, (_, i) => `message ${i} [[tokens=1]]`),
	);
	await pageMessages(page, s.id);
	await page.goto(`${BASE_URL}/#/chat/${s.id}`);
	await page.waitForFunction(() => document.querySelectorAll('#transcript .message').length === 50);
	assert.equal(await page.locator('#older-status').isVisible(), true);
	const anchor = page.locator('#transcript .message.user', { hasText: 'message 5 ' });
	await page.locator('#transcript-scroller').evaluate((el) => {
		el.scrollTop = 0;
	});
	await page.waitForFunction(() => document.querySelectorAll('#transcript .message').length === 60);
	assert.equal(await page.locator('#transcript .message.user .message-body').first().textContent(), 'message 0 [[tokens=1]]');
	const box = await anchor.boundingBox();
	assert.ok(box && box.y >= 0, 'what was on screen did not jump away');
	assert.equal(await page.locator('#older-status').isVisible(), false);
	// An export has every message, not only those on screen.
	const ids = await page.locator('#transcript .message').evaluateAll((els) => els.map((e) => e.dataset.id));
	assert.equal(new Set(ids).size, 60, 'no message twice');
	assertNoProblems(page);
	await page.context().close();
});

test('(simulated paging) the chat list follows next_cursor and searches with q=', async () => {
	const { page } = await loggedInPage(browser);
	for (let i = 0; i < 33; i += 1) await api(page, 'POST', SESSIONS, { title: `Chat ${i}` });
	const seen = [];
	await page.route(`**${SESSIONS}?*`, async (route) => {
		const url = new URL(route.request().url());
		seen.push(url.search);
		// The whole list from the server, then paged and filtered here.
		const all = new URL(url);
		all.searchParams.set('limit', '100');
		all.searchParams.set('offset', '0');
		all.searchParams.delete('cursor');
		const response = await route.fetch({ url: all.toString() });
		const body = await response.json();
		const q = url.searchParams.get('q');
		const list = q ? body.sessions.filter((x) => x.title.includes(q)) : body.sessions;
		const from = Number(url.searchParams.get('cursor')?.replace('c', '') ?? 0);
		const limit = Number(url.searchParams.get('limit'));
		const sessions = list.slice(from, from + limit);
		const more = from + limit < list.length;
		await route.fulfill({
			response,
			json: { sessions, limit, offset: from, has_more: more, next_cursor: more ? `c${from + limit}` : null },
		});
	});
	await page.reload();
	await page.locator('#session-list .session').nth(29).waitFor();
	await page.locator('#sessions-more').scrollIntoViewIfNeeded();
	await page.waitForFunction(() => document.querySelectorAll('#session-list .session').length === 33);
	assert.ok(seen.some((q) => q.includes('cursor=c30')), `the second page by its cursor: ${seen}`);
	assert.equal(await page.locator('#sessions-more').isHidden(), true);

	await page.getByRole('searchbox', { name: 'Search chats' }).fill('Chat 3');
	// "Chat 3" and "Chat 30".."Chat 32"
	await page.waitForFunction(() => document.querySelectorAll('#session-list .session').length === 4);
	assert.ok(seen.some((q) => new URLSearchParams(q).get('q') === 'Chat 3'));
	assertNoProblems(page);
	await page.context().close();
});
