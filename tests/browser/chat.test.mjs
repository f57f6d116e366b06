// The Chatbot page: sessions, streaming with a cursor, Stop, history after
// a reload, recovery from a dropped connection, auto-scroll.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
	BASE_URL,
	assertNoProblems,
	currentSessionId,
	lastReply,
	launch,
	loggedInPage,
	loginViaUI,
	replyBody,
	screenshot,
	send,
	sleep,
	waitReplyDone,
} from './lib.mjs';

let browser;
before(async () => {
	browser = await launch();
});
after(async () => {
	await browser?.close();
});

const sidebarItems = (page) => page.locator('#session-list .session');

test('send a message: the reply streams in with a cursor, then history survives a reload', async () => {
	const { page } = await loggedInPage(browser);
	await screenshot(page, 'chat-empty');

	await send(page, 'Count for me [[tokens=40]] [[delay=40]]');
	// A session was created for the first message, named after it.
	await sidebarItems(page).first().waitFor();
	assert.equal(await sidebarItems(page).count(), 1);
	assert.match(await page.locator('#chat-title').textContent(), /^Count for me/);
	assert.match(await sidebarItems(page).first().textContent(), /Count for me/);
	const sessionId = await currentSessionId(page);
	assert.ok(sessionId, `the URL names the session: ${page.url()}`);

	// The text grows over several animation frames, with a blinking cursor.
	const reply = lastReply(page);
	await reply.locator('.cursor').waitFor();
	assert.equal(await page.locator('#stop').isVisible(), true);
	assert.equal(await reply.getAttribute('aria-busy'), 'true');
	const animation = await page.evaluate(
		() => getComputedStyle(document.querySelector('#transcript .message.assistant .cursor')).animationName,
	);
	assert.equal(animation, 'blink');
	const lengths = await page.evaluate(
		() =>
			new Promise((resolve) => {
				const seen = [];
				const body = () => document.querySelector('#transcript .message.assistant:last-child .message-body');
				const tick = () => {
					seen.push(body().textContent.length);
					if (seen.length < 90) requestAnimationFrame(tick);
					else resolve(seen);
				};
				requestAnimationFrame(tick);
			}),
	);
	const distinct = [...new Set(lengths)];
	assert.ok(distinct.length >= 5, `the text grew in steps: ${distinct.join(' ')}`);
	assert.deepEqual(
		distinct,
		[...distinct].sort((a, b) => a - b),
		'and only ever grew',
	);
	await screenshot(page, 'chat-streaming');

	const text = await waitReplyDone(page);
	assert.equal(text, Array.from({ length: 40 }, (_, i) => `t${i}`).join(' '));
	assert.equal(await reply.locator('.cursor').count(), 0, 'the cursor is gone when done');
	assert.equal(await reply.getAttribute('aria-busy'), null);
	assert.equal(await page.locator('#send').isVisible(), true);
	assert.equal(await page.locator('#stop').isVisible(), false);

	// Timestamps on every message.
	const times = page.locator('#transcript .message time');
	assert.equal(await times.count(), 2);
	for (const dt of await times.evaluateAll((els) => els.map((e) => e.dateTime))) {
		assert.match(dt, /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$/);
	}

	// Reload: the same session with its history.
	await page.reload();
	await page.locator('#transcript .message.assistant').waitFor();
	assert.equal(await currentSessionId(page), sessionId);
	assert.equal(await page.locator('#transcript .message').count(), 2);
	assert.match(await page.locator('#transcript .message.user').textContent(), /Count for me/);
	assert.equal(await replyBody(page).textContent(), text);
	assert.equal(await page.locator('#transcript .message time').count(), 2);
	assert.equal(
		await page.locator(`#session-list a[aria-current="page"]`).getAttribute('data-id'),
		sessionId,
	);
	await screenshot(page, 'chat-history');
	assertNoProblems(page);
	await page.context().close();
});

test('Stop cancels a reply mid-way; the partial text is kept', async () => {
	const { page } = await loggedInPage(browser);
	await send(page, 'long one [[tokens=400]] [[delay=30]]');
	await page.waitForFunction(
		() => (document.querySelector('#transcript .message.assistant .message-body')?.textContent.length ?? 0) > 20,
	);
	await page.getByRole('button', { name: 'Stop' }).click();
	const partial = await waitReplyDone(page);
	const badge = lastReply(page).locator('.badge');
	assert.equal(await badge.textContent(), 'Stopped');
	assert.ok(partial.length > 20, 'some text arrived');
	assert.ok(partial.length < 400 * 3, `stopped before the end (${partial.length} chars)`);
	assert.match(partial, /^t0 t1 t2/);
	assert.match(await page.locator('#chat-status').textContent(), /stopped/i);
	assert.equal(await page.locator('#send').isVisible(), true);
	await screenshot(page, 'chat-stopped');

	// The server kept the partial reply as cancelled.
	await page.reload();
	await lastReply(page).waitFor();
	assert.equal(await lastReply(page).locator('.badge').textContent(), 'Stopped');
	const kept = await replyBody(page).textContent();
	assert.ok(kept.startsWith('t0 t1 t2'), kept);
	assert.ok(kept.length >= partial.length - 10 && kept.length < 400 * 3);

	// Escape in the message box stops a reply too.
	await send(page, 'again [[tokens=400]] [[delay=30]]');
	await page.waitForFunction(
		() => document.querySelectorAll('#transcript .message.assistant')[1]?.textContent.includes('t3'),
	);
	await page.locator('#message-input').press('Escape');
	await waitReplyDone(page);
	assert.equal(await lastReply(page).locator('.badge').textContent(), 'Stopped');
	assertNoProblems(page);
	await page.context().close();
});

test('sessions: new, switch, rename, delete', async () => {
	const { page } = await loggedInPage(browser);
	await send(page, 'first chat [[tokens=2]]');
	await waitReplyDone(page);
	const first = await currentSessionId(page);

	await page.getByRole('button', { name: 'New chat' }).click();
	await page.waitForFunction(() => location.hash === '#/chat/new');
	assert.equal(await page.locator('#transcript .message').count(), 0);
	assert.equal(await page.evaluate(() => document.activeElement?.id), 'message-input');
	await send(page, 'second chat [[tokens=3]]');
	await waitReplyDone(page);
	const second = await currentSessionId(page);
	assert.notEqual(first, second);
	await sidebarItems(page).nth(1).waitFor();
	// Newest first.
	assert.deepEqual(await page.locator('#session-list .session').evaluateAll((els) => els.map((e) => e.dataset.id)), [
		second,
		first,
	]);

	// Switch back to the first one from the sidebar.
	await page.locator(`#session-list a[data-id="${first}"]`).click();
	await page.waitForFunction((id) => location.hash === `#/chat/${id}`, first);
	await page.locator('#transcript .message.user', { hasText: 'first chat' }).waitFor();
	assert.equal(await page.locator('#transcript .message').count(), 2);
	assert.equal(await replyBody(page).textContent(), 't0 t1');

	// Rename it through the dialog.
	// The title is the first message without its [[directives]].
	await page.getByRole('button', { name: 'Rename chat “first chat”' }).click();
	const dialog = page.getByRole('dialog', { name: 'Rename chat' });
	await dialog.waitFor();
	await screenshot(page, 'chat-rename-dialog');
	await dialog.getByLabel('Title').fill('Renamed by the test');
	await dialog.getByLabel('Title').press('Enter');
	await dialog.waitFor({ state: 'hidden' });
	await page.locator('#chat-title', { hasText: 'Renamed by the test' }).waitFor();
	await page.locator('#session-list .session-title', { hasText: 'Renamed by the test' }).waitFor();

	// Cancel a delete, then delete for real.
	await page.getByRole('button', { name: 'Delete chat “Renamed by the test”' }).click();
	const confirm = page.getByRole('dialog', { name: 'Delete chat?' });
	await confirm.waitFor();
	await page.keyboard.press('Escape');
	await confirm.waitFor({ state: 'hidden' });
	assert.equal(await sidebarItems(page).count(), 2);
	await page.getByRole('button', { name: 'Delete chat “Renamed by the test”' }).click();
	await confirm.getByRole('button', { name: 'Delete' }).click();
	await page.waitForFunction(() => document.querySelectorAll('#session-list .session').length === 1);
	assert.equal(await page.locator('#session-list .session').getAttribute('data-id'), second);
	assert.equal(await page.locator('#transcript .message').count(), 0, 'the deleted chat left the screen');

	// The server agrees after a reload.
	await page.reload();
	await sidebarItems(page).first().waitFor();
	assert.equal(await sidebarItems(page).count(), 1);
	assertNoProblems(page);
	await page.context().close();
});

test('a dropped connection mid-reply resumes from the last event id', async () => {
	const { page, user } = await loggedInPage(browser);
	// Cut the POST stream's body after a few reads, as a network failure
	// would; the GET resume with Last-Event-ID is left alone.
	await page.evaluate(() => {
		const realFetch = window.fetch;
		window.__resumes = [];
		window.fetch = async (input, init = {}) => {
			const response = await realFetch(input, init);
			const url = String(input);
			if (init.method === 'GET' && url.endsWith('/stream')) {
				window.__resumes.push(new Headers(init.headers).get('Last-Event-ID'));
			}
			if (init.method !== 'POST' || !url.endsWith('/stream') || window.__cut) return response;
			window.__cut = true;
			// Fail once three content events have gone through.
			const reader = response.body.getReader();
			const decoder = new TextDecoder();
			let contents = 0;
			const body = new ReadableStream({
				async pull(controller) {
					if (contents >= 3) {
						reader.cancel();
						controller.error(new TypeError('network error (simulated)'));
						return;
					}
					const { done, value } = await reader.read();
					if (done) {
						controller.close();
						return;
					}
					contents += decoder.decode(value, { stream: true }).split('"type":"content"').length - 1;
					controller.enqueue(value);
				},
			});
			return new Response(body, { status: response.status, headers: response.headers });
		};
	});
	await send(page, 'resume me [[tokens=30]] [[delay=40]]');
	await page.locator('#chat-status', { hasText: /Reconnect/ }).waitFor();
	const text = await waitReplyDone(page);
	assert.equal(text, Array.from({ length: 30 }, (_, i) => `t${i}`).join(' '), 'no token lost or doubled');
	const resumes = await page.evaluate(() => window.__resumes);
	assert.equal(resumes.length, 1);
	assert.match(resumes[0], /^[0-9a-f-]{36}:\d+$/);
	assert.equal(await lastReply(page).locator('.badge').isHidden(), true);

	// A reload while a reply is still being generated follows it live.
	await send(page, 'still going [[tokens=50]] [[delay=40]]');
	await page.waitForFunction(
		() => document.querySelectorAll('#transcript .message.assistant')[1]?.textContent.includes('t2'),
	);
	await page.reload();
	await loginIfNeeded(page, user);
	await page.locator('#transcript .message.assistant.streaming .cursor').waitFor();
	const resumed = await waitReplyDone(page);
	assert.equal(resumed, Array.from({ length: 50 }, (_, i) => `t${i}`).join(' '));
	assertNoProblems(page);
	await page.context().close();
});

test('upstream failures show a clear error on the reply, once, and still after a reload', async () => {
	const { page, user } = await loggedInPage(browser);
	// Mid-stream: the partial text stays, the error is shown under it...
	await send(page, 'break later [[error-after=3]]');
	await waitReplyDone(page);
	assert.equal(await replyBody(page).textContent(), 'You said: break');
	assert.equal(await lastReply(page).locator('.badge').textContent(), 'Error');
	const shown = await lastReply(page).locator('.message-error').textContent();
	assert.match(shown, /AI service/);
	// ...and only there: not again under the composer.
	assert.doesNotMatch(await page.locator('#chat-status').textContent(), /AI service/);
	assert.equal(await page.getByText(shown, { exact: true }).count(), 1);

	// After a reload the reply keeps its text and its error (stored with it).
	await page.reload();
	await loginIfNeeded(page, user);
	await page.locator('#transcript .message.assistant .message-error').waitFor();
	assert.equal(await replyBody(page).textContent(), 'You said: break');
	assert.equal(await lastReply(page).locator('.badge').textContent(), 'Error');
	assert.equal(await lastReply(page).locator('.message-error').textContent(), shown);

	// Before the first token: the HTTP error's message, at once (no retries).
	const started = Date.now();
	await send(page, 'break now [[status=500]]');
	await waitReplyDone(page);
	assert.ok(Date.now() - started < 4000, 'not retried by the page');
	assert.equal(await lastReply(page).locator('.badge').textContent(), 'Error');
	assert.match(await lastReply(page).locator('.message-error').textContent(), /AI service/);
	// The page is still usable.
	await send(page, 'fine again [[tokens=2]]');
	assert.equal(await waitReplyDone(page), 't0 t1');
	await screenshot(page, 'chat-errors');
	assertNoProblems(page);
	await page.context().close();
});

test('auto-scroll follows the reply until the user scrolls up', async () => {
	const { page } = await loggedInPage(browser, { viewport: { width: 900, height: 600 } });
	await send(page, 'tall [[raw=line\n\nline\n\nline\n\nline\n\nline\n\nline\n\nline\n\nline\n\nline\n\nline\n\nline\n\nline]]');
	await waitReplyDone(page);
	const scroller = page.locator('#transcript-scroller');
	const gap = () => scroller.evaluate((el) => el.scrollHeight - el.scrollTop - el.clientHeight);

	await send(page, 'and more [[tokens=300]] [[delay=15]]');
	await page.waitForFunction(
		() => (document.querySelectorAll('#transcript .message.assistant')[1]?.textContent.length ?? 0) > 200,
	);
	assert.ok((await gap()) < 50, 'stuck to the bottom while streaming');

	// The user scrolls up: the view stays put and offers a way back.
	await scroller.hover();
	await page.mouse.wheel(0, -400);
	await sleep(300);
	const top = await scroller.evaluate((el) => el.scrollTop);
	await sleep(400);
	assert.equal(await scroller.evaluate((el) => el.scrollTop), top, 'no longer follows');
	assert.ok((await gap()) > 100);
	await page.getByRole('button', { name: 'Jump to the latest' }).waitFor();
	await screenshot(page, 'chat-scrolled-up');
	await page.getByRole('button', { name: 'Jump to the latest' }).click();
	await sleep(200);
	assert.ok((await gap()) < 50, 'follows again after Jump to the latest');
	await page.getByRole('button', { name: 'Stop' }).click();
	await waitReplyDone(page);
	assertNoProblems(page);
	await page.context().close();
});

async function loginIfNeeded(page, user) {
	if (await page.locator('#login-form').isVisible()) await loginViaUI(page, user);
	assert.ok(page.url().startsWith(BASE_URL));
}
