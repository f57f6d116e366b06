// lib.mjs: shared helpers of the browser suite (node --test tests/browser/).
//
// Headless Chromium (Debian's package) driven by playwright-core against the
// running stack. Environment, as scripts/test exports it:
//   CHAT_BASE_URL      https://127.0.0.1:18443 (self-signed: TLS errors ignored)
//   CHAT_UPSTREAM_URL  the fake upstream (GET /_fake/stats)
//   CHAT_CHROMIUM      the browser binary (default /usr/bin/chromium)
// Screenshots go to tests/artifacts/screens/ (git-ignored) for a person to
// look at; they are not compared.
import assert from 'node:assert/strict';
import crypto from 'node:crypto';
import { mkdirSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const REPO = process.env.CHAT_REPO ?? path.resolve(HERE, '../..');
export const BASE_URL = (process.env.CHAT_BASE_URL ?? 'https://127.0.0.1:18443').replace(/\/$/, '');
export const UPSTREAM_URL = (process.env.CHAT_UPSTREAM_URL ?? 'http://127.0.0.1:18099').replace(/\/$/, '');
export const SCREENS_DIR = path.join(REPO, 'tests/artifacts/screens');
const CHROMIUM = process.env.CHAT_CHROMIUM || '/usr/bin/chromium';

export const PHONE = { width: 375, height: 740 };
export const DESKTOP = { width: 1280, height: 800 };

export const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

export function launch() {
	return chromium.launch({
		executablePath: CHROMIUM,
		headless: true,
		args: [
			'--no-sandbox',
			'--disable-background-networking',
			'--disable-gpu',
			'--disable-dev-shm-usage',
			// A fake microphone for the voice flow, allowed without a prompt.
			'--use-fake-ui-for-media-stream',
			'--use-fake-device-for-media-stream',
		],
	});
}

/**
 * A fresh browser context (its own sessionStorage) and page. The page's
 * console errors, uncaught exceptions and CSP violations are collected in
 * page.problems; assertNoProblems(page) checks there were none.
 */
export async function newPage(browser, { viewport = DESKTOP, permissions = [] } = {}) {
	const context = await browser.newContext({
		ignoreHTTPSErrors: true,
		viewport,
		permissions,
		acceptDownloads: true,
		reducedMotion: 'no-preference',
	});
	const page = await context.newPage();
	page.problems = [];
	page.on('pageerror', (err) => page.problems.push(`pageerror: ${err.message}`));
	page.on('console', (msg) => {
		if (msg.type() === 'error') page.problems.push(`console: ${msg.text()}`);
	});
	return page;
}

/**
 * Console errors that are expected: the browser logs every failed HTTP
 * response (a 401 on a wrong password, a 502 the test provoked). Anything
 * else — an exception, a CSP violation — is a failure.
 */
export function assertNoProblems(page, allowed = []) {
	const patterns = [/Failed to load resource: the server responded with a status of/, ...allowed];
	const left = page.problems.filter((p) => !patterns.some((re) => re.test(p)));
	assert.deepEqual(left, [], `unexpected browser errors:\n${left.join('\n')}`);
}

export async function screenshot(page, name) {
	mkdirSync(SCREENS_DIR, { recursive: true });
	const file = path.join(SCREENS_DIR, `${name}.png`);
	await page.screenshot({ path: file });
	return file;
}

/** A username nobody has used yet. */
export function uniqueName(prefix = 'ui') {
	return `${prefix}_${Date.now().toString(36)}_${crypto.randomBytes(3).toString('hex')}`;
}

/** Registers a user through the API (page.request shares the TLS settings). */
export async function registerUser(page, prefix = 'ui') {
	const username = uniqueName(prefix);
	const password = `pw-${crypto.randomBytes(6).toString('hex')}`;
	const r = await page.request.post(`${BASE_URL}/api/auth/register`, { data: { username, password } });
	assert.equal(r.status(), 201, `register: ${r.status()} ${await r.text()}`);
	return { username, password };
}

/** Logs in through the login form and waits for the chat page. */
export async function loginViaUI(page, { username, password }) {
	await page.goto(`${BASE_URL}/`);
	const form = page.locator('#login-form');
	await form.getByLabel('Username').fill(username);
	await form.getByLabel('Password').fill(password);
	await form.getByRole('button', { name: 'Log in' }).click();
	await page.locator('#app-view').waitFor({ state: 'visible' });
	await page.locator('#message-input').waitFor({ state: 'visible' });
}

/** A new user, logged in on a new page. Returns {page, user}. */
export async function loggedInPage(browser, opts = {}) {
	const page = await newPage(browser, opts);
	const user = await registerUser(page, opts.prefix);
	await loginViaUI(page, user);
	return { page, user };
}

/** Types a message into the composer and sends it with Enter. */
export async function send(page, text) {
	const input = page.getByLabel('Message', { exact: true });
	await input.fill(text);
	await input.press('Enter');
}

export const lastReply = (page) => page.locator('#transcript .message.assistant').last();
export const replyBody = (page) => lastReply(page).locator('.message-body');

/** Waits until the last reply is no longer streaming; returns its text. */
export async function waitReplyDone(page, timeout = 15000) {
	await page.waitForFunction(
		() => {
			const replies = document.querySelectorAll('#transcript .message.assistant');
			const last = replies[replies.length - 1];
			return last && !last.classList.contains('streaming');
		},
		null,
		{ timeout },
	);
	return (await replyBody(page).textContent()) ?? '';
}

/** The fake upstream's counters. */
export async function fakeStats() {
	const r = await fetch(`${UPSTREAM_URL}/_fake/stats`);
	assert.equal(r.status, 200);
	return r.json();
}

/** The session id in the page's URL (#/chat/<id>). */
export async function currentSessionId(page) {
	const m = /#\/chat\/([0-9a-f-]{36})$/.exec(page.url());
	return m ? m[1] : null;
}
