// The login screen: register, log in, log out, where the token is kept,
// and what a rejected token does.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
	BASE_URL,
	assertNoProblems,
	launch,
	loginViaUI,
	newPage,
	screenshot,
	uniqueName,
} from './lib.mjs';

let browser;
before(async () => {
	browser = await launch();
});
after(async () => {
	await browser?.close();
});

test('register through the form, log out, log in again', async () => {
	const page = await newPage(browser);
	await page.goto(`${BASE_URL}/`);
	const login = page.locator('#login-form');
	await login.waitFor();
	await screenshot(page, 'login');

	// Register (the form logs the new user in).
	await page.getByRole('button', { name: 'Create one' }).click();
	const reg = page.locator('#register-form');
	await assert.doesNotReject(reg.waitFor());
	assert.equal(await reg.getByLabel('Username').evaluate((el) => el === document.activeElement), true);
	const username = uniqueName('reg');
	const password = 'correct horse battery';
	await reg.getByLabel('Username').fill(username);
	await reg.getByLabel('Email (optional)').fill(`${username}@example.com`);
	await reg.getByLabel('Password').fill(password);
	await screenshot(page, 'register');
	await reg.getByRole('button', { name: 'Create account' }).click();
	await page.locator('#message-input').waitFor();
	assert.equal(await page.locator('#user-name').textContent(), username);

	// The token lives in sessionStorage, not in localStorage or a cookie.
	const storage = await page.evaluate(() => ({
		session: sessionStorage.getItem('chat.auth'),
		local: Object.keys(localStorage).length,
		cookie: document.cookie,
	}));
	assert.match(JSON.parse(storage.session).token, /^[\w-]+\.[\w-]+\.[\w-]+$/);
	assert.equal(storage.local, 0);
	assert.equal(storage.cookie, '');

	// A reload keeps the user logged in.
	await page.reload();
	await page.locator('#message-input').waitFor();
	assert.equal(await page.locator('#user-name').textContent(), username);

	// Another browser context (another tab profile) is not logged in.
	const other = await newPage(browser);
	await other.goto(`${BASE_URL}/`);
	await other.locator('#login-form').waitFor();
	await other.context().close();

	// Log out: back to the login form, token gone.
	await page.getByRole('button', { name: 'Log out' }).click();
	await login.waitFor();
	assert.equal(await page.evaluate(() => sessionStorage.getItem('chat.auth')), null);
	await page.reload();
	await login.waitFor();

	// Registering the same name again is refused with the server's message.
	await page.getByRole('button', { name: 'Create one' }).click();
	await reg.getByLabel('Username').fill(username);
	await reg.getByLabel('Password').fill(password);
	await reg.getByRole('button', { name: 'Create account' }).click();
	await assert.doesNotReject(page.locator('#register-error').filter({ hasText: /./ }).waitFor());
	await page.locator('#show-login').click();

	// A wrong password shows an error and stays on the form.
	await login.getByLabel('Username').fill(username);
	await login.getByLabel('Password').fill('wrong password!');
	await login.getByRole('button', { name: 'Log in' }).click();
	const error = page.locator('#login-error');
	await error.filter({ hasText: /./ }).waitFor();
	assert.equal(await page.locator('#app-view').isHidden(), true);

	await loginViaUI(page, { username, password });
	assertNoProblems(page);
	await page.context().close();
});

test('a token the server rejects (401) returns to the login screen', async () => {
	const page = await newPage(browser);
	await page.goto(`${BASE_URL}/`);
	// A well-formed but forged token: the server answers 401.
	await page.evaluate(() => {
		sessionStorage.setItem(
			'chat.auth',
			JSON.stringify({
				token: 'eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJ4In0.c2lnbmF0dXJl',
				username: 'mallory',
				expiresAt: Date.now() + 3600000,
			}),
		);
	});
	await page.reload();
	await page.locator('#login-form').waitFor();
	assert.match(await page.locator('#login-error').textContent(), /expired|log in/i);
	assert.equal(await page.evaluate(() => sessionStorage.getItem('chat.auth')), null);
	assertNoProblems(page);
	await page.context().close();
});

test('the login form works with the keyboard alone', async () => {
	const page = await newPage(browser);
	const username = uniqueName('kbd');
	const r = await page.request.post(`${BASE_URL}/api/auth/register`, {
		data: { username, password: 'keyboard-only-1' },
	});
	assert.equal(r.status(), 201);
	await page.goto(`${BASE_URL}/`);
	await page.locator('#login-form').waitFor();
	// The first field has focus; Tab moves on; Enter submits.
	await page.keyboard.type(username);
	await page.keyboard.press('Tab');
	await page.keyboard.type('keyboard-only-1');
	await page.keyboard.press('Enter');
	await page.locator('#message-input').waitFor();
	// After logging in, the message box has the focus (moved there once the
	// chat view has rendered, a frame or two after the box appears).
	await page.waitForFunction(() => document.activeElement?.id === 'message-input', null, { timeout: 5000 })
		.catch(() => {});
	assert.equal(await page.evaluate(() => document.activeElement?.id), 'message-input');
	assertNoProblems(page);
	await page.context().close();
});
