// A phone-sized screen (375 px): the sidebar becomes a drawer, nothing
// overflows sideways, and keyboard focus stays visible and sensible.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
	PHONE,
	assertNoProblems,
	launch,
	loggedInPage,
	screenshot,
	send,
	waitReplyDone,
} from './lib.mjs';

let browser;
before(async () => {
	browser = await launch();
});
after(async () => {
	await browser?.close();
});

const overflowX = (page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

test('at 375 px the sidebar is a drawer and the chat fits the screen', async () => {
	const { page } = await loggedInPage(browser, { viewport: PHONE });
	const sidebar = page.locator('#sidebar');
	const toggle = page.getByRole('button', { name: 'Chats' });

	// The drawer starts closed and out of the tab order.
	assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
	assert.equal(await sidebar.evaluate((el) => getComputedStyle(el).visibility), 'hidden');

	await send(page, 'A phone-sized chat with a long word: Donaudampfschifffahrtsgesellschaftskapitän [[tokens=12]]');
	await waitReplyDone(page);
	await send(page, '[[raw=```\nconst aVeryLongLineOfCode = "that must scroll inside its own box and not widen the page";\n```\n\n| a | b | c | d |\n|---|---|---|---|\n| long cell text | more long text | and more | still more |]]');
	await waitReplyDone(page);
	assert.ok((await overflowX(page)) <= 0, 'no sideways scrolling of the page');
	// The voice panel is one line until opened (it used to take a third of the screen).
	const voice = page.locator('#voice-heading');
	await voice.waitFor();
	assert.ok((await page.locator('#voice-panel').boundingBox()).height < 60, 'the closed voice panel is one line');
	await screenshot(page, 'phone-chat');
	await voice.click();
	for (const id of ['send', 'message-input', 'model-picker', 'copy-transcript', 'download-transcript', 'voice-connect']) {
		const box = await page.locator(`#${id}`).boundingBox();
		assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.width + 0.5, `#${id} is on screen`);
	}
	await voice.click();

	// Open the drawer: focus moves in, Escape closes it and returns focus.
	await toggle.click();
	assert.equal(await toggle.getAttribute('aria-expanded'), 'true');
	await page.waitForFunction(() => getComputedStyle(document.querySelector('#sidebar')).visibility === 'visible');
	assert.equal(await page.evaluate(() => document.querySelector('#sidebar').contains(document.activeElement)), true);
	await page.waitForTimeout(250); // the slide-in transition
	await screenshot(page, 'phone-drawer');
	await page.keyboard.press('Escape');
	assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
	assert.equal(await page.evaluate(() => document.activeElement?.id), 'menu-toggle');

	// Choosing a chat from the drawer closes it.
	await toggle.click();
	await page.getByRole('button', { name: 'New chat' }).click();
	assert.equal(await toggle.getAttribute('aria-expanded'), 'false');
	await page.waitForFunction(() => location.hash === '#/chat/new');
	await toggle.click();
	await page.locator('#session-list a').first().click();
	await page.locator('#transcript .message').first().waitFor();
	assert.equal(await toggle.getAttribute('aria-expanded'), 'false');

	// The System page fits as well.
	await page.getByRole('link', { name: 'System' }).click();
	await page.waitForFunction(() => document.querySelector('#system-prompt').value !== '');
	assert.ok((await overflowX(page)) <= 0);
	await screenshot(page, 'phone-system');
	assertNoProblems(page);
	await page.context().close();
});

test('keyboard: visible focus, Enter sends, Shift+Enter adds a line', async () => {
	const { page } = await loggedInPage(browser);
	const input = page.locator('#message-input');
	await input.focus();
	await page.keyboard.type('line one');
	await page.keyboard.press('Shift+Enter');
	await page.keyboard.type('line two [[tokens=2]]');
	assert.equal(await input.inputValue(), 'line one\nline two [[tokens=2]]');
	await page.keyboard.press('Enter');
	await waitReplyDone(page);
	assert.equal(await page.locator('#transcript .message.user .message-body').textContent(), 'line one\nline two [[tokens=2]]');
	assert.equal(await input.inputValue(), '');

	// Tab from the message box reaches Send, with a visible focus ring.
	await input.focus();
	await page.keyboard.press('Tab');
	assert.equal(await page.evaluate(() => document.activeElement?.id), 'send');
	const outline = await page.evaluate(() => {
		const s = getComputedStyle(document.activeElement);
		return `${s.outlineStyle} ${s.outlineWidth}`;
	});
	assert.match(outline, /^solid [1-9]/);

	// Every control has an accessible name.
	const unnamed = await page.evaluate(() =>
		[...document.querySelectorAll('button, a[href], input, textarea')]
			.filter((el) => el.offsetParent !== null)
			.filter((el) => {
				const labelled = el.labels?.length || el.getAttribute('aria-label') || el.getAttribute('aria-labelledby');
				return !labelled && !el.textContent.trim();
			})
			.map((el) => el.outerHTML.slice(0, 80)),
	);
	assert.deepEqual(unnamed, []);
	assertNoProblems(page);
	await page.context().close();
});
