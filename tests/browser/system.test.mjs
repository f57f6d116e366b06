// The System page (settings) and the transcript's Copy and Download.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';

import {
	assertNoProblems,
	launch,
	loggedInPage,
	replyBody,
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

// [2025-10-11 10:30:05] Role: text
const LINE_RE = (role, text) =>
	new RegExp(`^\\[\\d{4}-\\d{2}-\\d{2} \\d{2}:\\d{2}:\\d{2}\\] ${role}: ${text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')}$`, 'm');

test('the System page saves the settings, and the next reply uses the new system prompt', async () => {
	const { page } = await loggedInPage(browser);
	await page.getByRole('link', { name: 'System' }).click();
	const form = page.locator('#settings-form');
	await page.getByRole('heading', { name: 'System', level: 1 }).waitFor();
	const prompt = form.getByLabel('System prompt');
	// The server's defaults are shown.
	await page.waitForFunction(() => document.querySelector('#system-prompt').value !== '');
	assert.equal(await prompt.inputValue(), 'You are a helpful assistant.');
	assert.equal(await form.getByLabel('Model', { exact: true }).inputValue(), 'gpt-4o-mini');
	assert.equal(await form.getByLabel('Temperature', { exact: true }).inputValue(), '0.7');
	assert.equal(await form.getByLabel('Realtime model').inputValue(), 'gpt-realtime');
	assert.equal(await form.getByLabel('Voice', { exact: true }).inputValue(), 'marin');

	await prompt.fill('You are a pirate. Always say arr.');
	await form.getByLabel('Model', { exact: true }).fill('gpt-4o');
	await form.getByLabel('Temperature', { exact: true }).fill('1.25');
	await form.getByLabel('Voice', { exact: true }).fill('verse');
	await form.getByRole('button', { name: 'Save' }).click();
	await page.locator('#settings-status', { hasText: 'Settings saved.' }).waitFor();
	await screenshot(page, 'system');

	// A value the server refuses: the message is shown, nothing saved.
	// (Set from script: the field's maxlength stops a user typing that much.)
	await form.getByLabel('Model', { exact: true }).evaluate((el) => {
		el.value = 'x'.repeat(300);
	});
	await form.getByRole('button', { name: 'Save' }).click();
	await page.locator('#settings-status', { hasText: /Not saved: model/ }).waitFor();
	assert.equal(await form.getByLabel('Model', { exact: true }).getAttribute('aria-invalid'), 'true');

	// Reload: the saved values come back from the server.
	await page.reload();
	await page.waitForFunction(() => document.querySelector('#system-prompt').value.includes('pirate'));
	assert.equal(await form.getByLabel('Model', { exact: true }).inputValue(), 'gpt-4o');
	assert.equal(await form.getByLabel('Temperature', { exact: true }).inputValue(), '1.25');
	assert.equal(await form.getByLabel('Voice', { exact: true }).inputValue(), 'verse');

	// The fake upstream echoes the system prompt it was sent.
	await page.getByRole('link', { name: 'Chatbot' }).click();
	await page.locator('#message-input').waitFor();
	await send(page, 'What are your instructions? [[system]]');
	assert.equal(await waitReplyDone(page), 'System prompt: You are a pirate. Always say arr.');
	assertNoProblems(page);
	await page.context().close();
});

test('Copy and Download give the plain-text transcript with timestamps', async () => {
	const { page } = await loggedInPage(browser, { permissions: ['clipboard-read', 'clipboard-write'] });
	const copyAll = page.getByRole('button', { name: 'Copy', exact: true });
	assert.equal(await copyAll.isDisabled(), true, 'nothing to copy yet');
	await send(page, 'First question [[tokens=3]]');
	await waitReplyDone(page);
	await send(page, 'Second question [[raw=**Bold** answer\nwith two lines]]');
	await waitReplyDone(page);
	assert.equal(await replyBody(page).locator('strong').textContent(), 'Bold');

	await copyAll.click();
	await page.locator('#chat-status', { hasText: 'copied' }).waitFor();
	const copied = await page.evaluate(() => navigator.clipboard.readText());
	for (const text of [copied]) {
		assert.match(text, /^Chat transcript: First question/);
		assert.match(text, LINE_RE('User', 'First question [[tokens=3]]'));
		assert.match(text, LINE_RE('Assistant', 't0 t1 t2'));
		assert.match(text, LINE_RE('User', 'Second question [[raw=**Bold** answer'));
		// Plain text: the Markdown source, not HTML.
		assert.match(text, /\] Assistant: \*\*Bold\*\* answer\nwith two lines\n/);
		assert.doesNotMatch(text, /<strong>/);
	}

	await page.getByRole('button', { name: 'Download' }).click();
	const [download] = await Promise.all([
		page.waitForEvent('download'),
		page.getByRole('button', { name: 'Text (.txt)' }).click(),
	]);
	assert.match(download.suggestedFilename(), /^transcript-first-question-.*\.txt$/);
	const file = await readFile(await download.path(), 'utf8');
	// The same transcript, but for the export time in the header.
	const body = (t) => t.split('\n').slice(2).join('\n');
	assert.equal(body(file), body(copied));
	assert.equal((file.match(/^\[\d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\] /gm) ?? []).length, 4);
	await screenshot(page, 'chat-copied');
	assertNoProblems(page);
	await page.context().close();
});
