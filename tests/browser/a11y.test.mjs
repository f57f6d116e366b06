// Accessibility audit with axe-core (pinned in tests/package-lock.json) of
// the login, chat and settings pages at 1280 and 375 px, in light and dark:
// no serious or critical violation. A screenshot of each page at each width
// is written on every run (tests/artifacts/screens/a11y-*.png) to be looked at.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { createRequire } from 'node:module';
import { after, before, test } from 'node:test';

import { BASE_URL, DESKTOP, PHONE, launch, loginViaUI, registerUser, screenshot, send, waitReplyDone } from './lib.mjs';

const require = createRequire(import.meta.url);
let browser;
let axeSource;
before(async () => {
	browser = await launch();
	axeSource = await readFile(require.resolve('axe-core/axe.min.js'), 'utf8');
});
after(async () => {
	await browser?.close();
});

/** Runs axe on the page as it is; returns the serious and critical violations, described. */
async function audit(page) {
	await page.evaluate(axeSource);
	const result = await page.evaluate(() =>
		window.axe.run(document, { runOnly: { type: 'tag', values: ['wcag2a', 'wcag2aa', 'wcag21a', 'wcag21aa', 'best-practice'] } }),
	);
	return result.violations
		.filter((v) => v.impact === 'serious' || v.impact === 'critical')
		.map((v) => `${v.impact} ${v.id}: ${v.help}\n    ${v.nodes.map((n) => `${n.target.join(' ')} ${n.failureSummary?.split('\n')[1] ?? ''}`).join('\n    ')}`);
}

const REPLY = [
	'Here is **Markdown** with `inline code`, a [link](https://example.com) and a list:',
	'',
	'- one',
	'- two',
	'',
	'```python',
	'def greet(name):',
	'    return f"Hello, {name}"  # a comment',
	'```',
	'',
	'| a | b |',
	'|---|---|',
	'| 1 | 2 |',
].join('\n');

for (const scheme of ['light', 'dark']) {
	for (const [width, viewport] of [
		[1280, DESKTOP],
		[375, PHONE],
	]) {
		test(`axe: login, chat and settings at ${width} px (${scheme}): no serious or critical violations`, async () => {
			// The audit script is injected: CSP is bypassed in this context only
			// (security.test.mjs checks the CSP itself).
			const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport, bypassCSP: true, colorScheme: scheme });
			const page = await context.newPage();
			const found = {};
			const suffix = `${width}${scheme === 'dark' ? '-dark' : ''}`;

			await page.goto(`${BASE_URL}/`);
			await page.locator('#login-form').waitFor();
			found.login = await audit(page);
			await screenshot(page, `a11y-login-${suffix}`);

			const user = await registerUser(page, 'a11y');
			await loginViaUI(page, user);
			await send(page, `Show me [[raw=${REPLY}]]`);
			await waitReplyDone(page);
			await send(page, 'This one fails [[error-after=2]]');
			await waitReplyDone(page);
			// Regenerated: an earlier version on screen too.
			await page.getByRole('button', { name: 'Regenerate the reply' }).click();
			await page.locator('#transcript .message.superseded').first().waitFor();
			await waitReplyDone(page);
			await page.locator('#transcript pre code.hljs').waitFor();
			found.chat = await audit(page);
			await screenshot(page, `a11y-chat-${suffix}`);

			if (width < 800) {
				await page.getByRole('button', { name: 'Chats' }).click();
				await page.locator('#sidebar .session').first().waitFor();
				found.drawer = await audit(page);
				await screenshot(page, `a11y-drawer-${suffix}`);
				await page.keyboard.press('Escape');
			}

			await page.getByRole('link', { name: 'System' }).click();
			await page.locator('#system-heading').waitFor();
			await page.waitForFunction(() => document.getElementById('model').value !== '');
			found.settings = await audit(page);
			await screenshot(page, `a11y-settings-${suffix}`);

			const problems = Object.entries(found).flatMap(([where, list]) => list.map((v) => `${where}: ${v}`));
			assert.deepEqual(problems, [], problems.join('\n'));
			await context.close();
		});
	}
}
