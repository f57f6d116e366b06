// Issue 18's features: copy buttons (a message, a code block), syntax
// highlighting, Regenerate and Edit (a new turn streamed through the same
// route, the earlier one marked), the model picker fed by /v1/models,
// Markdown and JSON export, chat titles (directives dropped, named by the
// model unless turned off), the voice panel only when the server has voice,
// and the hover colours of every button.
import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { after, before, test } from 'node:test';

import {
	BASE_URL,
	PHONE,
	assertNoProblems,
	currentSessionId,
	lastReply,
	launch,
	loggedInPage,
	loginViaUI,
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

const CLIPBOARD = { permissions: ['clipboard-read', 'clipboard-write'] };
const clipboard = (page) => page.evaluate(() => navigator.clipboard.readText());
const CODE = 'def greet(name):\n    return f"Hello, {name}"  # a comment\n\nclass Box:\n    pass';

async function loginIfNeeded(page, user) {
	if (await page.locator('#login-form').isVisible()) await loginViaUI(page, user);
}

test('copy buttons put the message and the code block on the clipboard', async () => {
	const { page } = await loggedInPage(browser, CLIPBOARD);
	await send(page, `Show code [[raw=Here:\n\n\`\`\`python\n${CODE}\n\`\`\`\n\nDone.]]`);
	await waitReplyDone(page);

	// The code block's own button: exactly the code.
	const codeCopy = lastReply(page).getByRole('button', { name: 'Copy code (python)', exact: true });
	await codeCopy.click();
	await lastReply(page).locator('.code-copy', { hasText: 'Copied' }).waitFor();
	assert.equal(await clipboard(page), CODE);

	// The reply's button: its Markdown source.
	await lastReply(page).getByRole('button', { name: 'Copy the reply' }).click();
	assert.equal(await clipboard(page), `Here:\n\n\`\`\`python\n${CODE}\n\`\`\`\n\nDone.`);

	// The user's message.
	await page.locator('#transcript .message.user').last().getByRole('button', { name: 'Copy your message' }).click();
	assert.match(await clipboard(page), /^Show code \[\[raw=Here:/);
	await screenshot(page, 'feature-code-block');
	assertNoProblems(page);
	await page.context().close();
});

test('highlighted code has token spans, from the site-served highlight.js', async () => {
	const { page } = await loggedInPage(browser);
	const vendor = page.waitForResponse((r) => r.url() === `${BASE_URL}/vendor/highlight/highlight.min.js`);
	await send(page, `Code [[raw=\`\`\`python\n${CODE}\n\`\`\`]]`);
	await waitReplyDone(page);
	assert.equal((await vendor).status(), 200, 'served by our own nginx');
	const code = replyBody(page).locator('pre code');
	await code.locator('span.hljs-keyword').first().waitFor();
	const kinds = await code.locator('span[class^="hljs-"]').evaluateAll((els) => [...new Set(els.map((e) => e.className))]);
	for (const kind of ['hljs-keyword', 'hljs-string', 'hljs-comment']) assert.ok(kinds.includes(kind), `${kind} in ${kinds}`);
	// The text is untouched.
	assert.equal(await code.textContent(), CODE);
	// A language highlight.js does not know is guessed, not an error.
	await send(page, 'More [[raw=```nosuchlang\nint main(void) { return 0; }\n```]]');
	await waitReplyDone(page);
	await replyBody(page).locator('pre code.hljs').waitFor();
	assertNoProblems(page);
	await page.context().close();
});

test('regenerate streams a new reply; the earlier one stays, marked, also after a reload', async () => {
	const { page, user } = await loggedInPage(browser);
	await send(page, 'Tell me [[tokens=3]]');
	await waitReplyDone(page);
	const firstId = await lastReply(page).getAttribute('data-id');

	const streamed = page.waitForRequest((r) => r.method() === 'POST' && r.url().endsWith('/stream'));
	await lastReply(page).getByRole('button', { name: 'Regenerate the reply' }).click();
	assert.deepEqual((await streamed).postDataJSON(), { content: 'Tell me [[tokens=3]]' });
	await lastReply(page).locator('.cursor').waitFor({ state: 'attached' }).catch(() => {});
	assert.equal(await waitReplyDone(page), 't0 t1 t2');
	const secondId = await lastReply(page).getAttribute('data-id');
	assert.notEqual(secondId, firstId, 'a new reply');

	const marks = async () =>
		page.locator('#transcript .message').evaluateAll((els) =>
			els.map((e) => `${e.classList.contains('user') ? 'user' : 'assistant'}:${e.classList.contains('superseded') ? 'earlier' : 'current'}`),
		);
	const expected = ['user:earlier', 'assistant:earlier', 'user:current', 'assistant:current'];
	assert.deepEqual(await marks(), expected);
	assert.equal(await page.getByText('Earlier version').filter({ visible: true }).count(), 2);
	// Only the current turn offers Regenerate / Edit.
	assert.equal(await page.getByRole('button', { name: 'Regenerate the reply' }).count(), 1);
	await screenshot(page, 'feature-regenerated');

	await page.reload();
	await loginIfNeeded(page, user);
	await page.locator('#transcript .message.superseded').first().waitFor();
	assert.deepEqual(await marks(), expected);
	assertNoProblems(page);
	await page.context().close();
});

test('edit and resend streams a new reply to the edited message', async () => {
	const { page } = await loggedInPage(browser);
	await send(page, 'Frist try');
	await waitReplyDone(page);
	const userMsg = page.locator('#transcript .message.user').last();
	await userMsg.getByRole('button', { name: 'Edit and resend your message' }).click();
	const box = page.getByRole('textbox', { name: 'Edit your message' });
	assert.equal(await box.inputValue(), 'Frist try');
	await box.fill('First try');
	await screenshot(page, 'feature-editing');
	await page.locator('.edit-box').getByRole('button', { name: 'Send' }).click();
	assert.equal(await waitReplyDone(page), 'You said: First try');
	const users = page.locator('#transcript .message.user');
	assert.equal(await users.count(), 2);
	assert.equal(await users.nth(0).evaluate((e) => e.classList.contains('superseded')), true);
	assert.equal(await users.nth(1).locator('.message-body').textContent(), 'First try');
	// Escape cancels an edit and leaves the message as it was.
	await users.nth(1).getByRole('button', { name: 'Edit and resend your message' }).click();
	await page.getByRole('textbox', { name: 'Edit your message' }).press('Escape');
	assert.equal(await page.locator('.edit-box').count(), 0);
	assert.equal(await page.locator('#transcript .message').count(), 4);
	assertNoProblems(page);
	await page.context().close();
});

test('the model picker lists /v1/models and switches the model of the next reply', async () => {
	const { page } = await loggedInPage(browser);
	const picker = page.getByRole('combobox', { name: 'Model' });
	await picker.waitFor();
	const options = await picker.locator('option').evaluateAll((els) => els.map((o) => o.value));
	// The allowed models the (fake) upstream serves, the account's first.
	assert.deepEqual(options, ['gpt-4o-mini', 'gpt-4o', 'gpt-4.1-mini']);
	assert.equal(await picker.inputValue(), 'gpt-4o-mini');

	const saved = page.waitForResponse((r) => r.url().endsWith('/api/settings') && r.request().method() === 'PUT');
	await picker.selectOption('gpt-4o');
	assert.equal((await (await saved).json()).model, 'gpt-4o');
	await page.locator('#chat-status', { hasText: 'gpt-4o' }).waitFor();
	// [[request]]: the fake answers with the request it got.
	await send(page, 'which model [[request]]');
	const request = JSON.parse(await waitReplyDone(page));
	assert.equal(request.model, 'gpt-4o');
	// The System page shows it too.
	await page.getByRole('link', { name: 'System' }).click();
	await page.waitForFunction(() => document.getElementById('model').value === 'gpt-4o');
	assertNoProblems(page);
	await page.context().close();
});

test('Download as Markdown and as JSON', async () => {
	const { page } = await loggedInPage(browser);
	await send(page, 'Export me [[raw=**Bold** and `code`]]');
	await waitReplyDone(page);
	const sessionId = await currentSessionId(page);

	const download = async (label) => {
		await page.getByRole('button', { name: 'Download' }).click();
		const [file] = await Promise.all([page.waitForEvent('download'), page.getByRole('button', { name: label }).click()]);
		return { name: file.suggestedFilename(), text: await readFile(await file.path(), 'utf8') };
	};
	const md = await download('Markdown (.md)');
	assert.match(md.name, /^transcript-export-me-.*\.md$/);
	assert.match(md.text, /^# Export me\n/);
	assert.match(md.text, /\n## User · \d{4}-\d{2}-\d{2} \d{2}:\d{2}:\d{2}\n\n> Export me \[\[raw=\*\*Bold\*\* and `code`\]\]\n/);
	assert.match(md.text, /\n## Assistant · [^\n]+\n\n\*\*Bold\*\* and `code`\n/);

	const json = await download('JSON (.json)');
	assert.match(json.name, /\.json$/);
	const doc = JSON.parse(json.text);
	assert.equal(doc.id, sessionId);
	assert.equal(doc.title, 'Export me');
	assert.deepEqual(
		doc.messages.map((m) => [m.role, m.content, m.status, m.current]),
		[
			['user', 'Export me [[raw=**Bold** and `code`]]', 'complete', true],
			['assistant', '**Bold** and `code`', 'complete', true],
		],
	);
	assert.match(doc.messages[1].id, /^[0-9a-f-]{36}$/);
	assertNoProblems(page);
	await page.context().close();
});

test('titles drop directives, are shortened at a word, and are named by the model unless turned off', async () => {
	const { page } = await loggedInPage(browser);
	const long = 'Please explain how the rotation of the earth creates day and night for everyone';
	const asked = page.waitForRequest((r) => r.url().endsWith('/v1/chat/completions'));
	await send(page, `${long} [[tokens=2]] [[delay=5]]`);
	await waitReplyDone(page);
	// The summary request, then the title the (fake) model wrote.
	const request = (await asked).postDataJSON();
	assert.match(request.messages[0].content, /^Write a title/);
	assert.equal(request.max_tokens, 24);
	await page.waitForFunction(() => document.getElementById('chat-title').textContent === 'Please explain how the rotation of');
	await page.locator('#session-list .session-title', { hasText: /^Please explain how the rotation of$/ }).waitFor();

	// Turned off in System: the title is the first message, without directives, cut at a word.
	await page.getByRole('link', { name: 'System' }).click();
	await page.getByLabel('Name new chats with a summary by the model').uncheck();
	await page.getByRole('link', { name: 'Chatbot' }).click();
	await page.getByRole('button', { name: 'New chat' }).click();
	let summaryAsked = false;
	page.on('request', (r) => {
		if (r.url().endsWith('/v1/chat/completions')) summaryAsked = true;
	});
	await send(page, `${long} [[tokens=2]]`);
	await waitReplyDone(page);
	const title = await page.locator('#chat-title').textContent();
	assert.equal(title, 'Please explain how the rotation of the earth…');
	assert.ok(!title.includes('[['));
	assert.equal(summaryAsked, false);
	// The setting is kept in this browser.
	await page.reload();
	await page.getByRole('link', { name: 'System' }).click();
	assert.equal(await page.getByLabel('Name new chats with a summary by the model').isChecked(), false);
	assertNoProblems(page);
	await page.context().close();
});

test('the composer hint fits the device: no Enter/Shift+Enter on a touch screen', async () => {
	const { page } = await loggedInPage(browser);
	assert.match(await page.locator('#message-input').getAttribute('placeholder'), /Enter sends/);
	await page.context().close();
	const context = await browser.newContext({ ignoreHTTPSErrors: true, viewport: PHONE, hasTouch: true, isMobile: true });
	const phone = await context.newPage();
	const { registerUser } = await import('./lib.mjs');
	const user = await registerUser(phone);
	await loginViaUI(phone, user);
	assert.equal(await phone.locator('#message-input').getAttribute('placeholder'), 'Message…');
	await context.close();
});

test('the voice panel shows only when the server reports voice (GET /api/config)', async () => {
	const { page } = await loggedInPage(browser);
	// The test instance has voice: the panel is there, open on a wide screen.
	await page.locator('#voice-panel').waitFor();
	assert.equal(await page.locator('#voice-panel').evaluate((d) => d.open), true);
	await page.context().close();

	// A server without voice (realtime_api = off): no panel at all.
	const { page: other } = await loggedInPage(browser, { viewport: PHONE });
	await other.route('**/api/config', (route) => route.fulfill({ json: { voice: false } }));
	await other.reload();
	await other.locator('#message-input').waitFor();
	await other.waitForResponse((r) => r.url().endsWith('/api/config')).catch(() => {});
	await other.waitForFunction(() => document.getElementById('voice-panel').hidden);
	assert.equal(await other.locator('#voice-heading').isVisible(), false);
	assert.equal(await other.getByRole('button', { name: 'Connect' }).count(), 0);
	await screenshot(other, 'feature-no-voice-375');
	await other.context().close();
});

/** WCAG contrast of the text of every visible, enabled button while hovered. */
async function hoverContrasts(page) {
	const results = [];
	// Handles, not nth(): a list re-rendered meanwhile must not shift them.
	for (const b of await page.locator('button:visible').elementHandles()) {
		if (!(await b.isVisible().catch(() => false)) || !(await b.isEnabled().catch(() => false))) continue;
		await b.hover({ timeout: 2000 }).catch(() => {});
		// Past the transition, if any.
		await page.waitForTimeout(50);
		results.push(
			await b.evaluate((el) => {
				const rgba = (s) => {
					const m = s.match(/[\d.]+/g)?.map(Number) ?? [0, 0, 0, 0];
					return { r: m[0], g: m[1], b: m[2], a: m.length > 3 ? m[3] : 1 };
				};
				const over = (top, bottom) => ({
					r: top.r * top.a + bottom.r * (1 - top.a),
					g: top.g * top.a + bottom.g * (1 - top.a),
					b: top.b * top.a + bottom.b * (1 - top.a),
					a: 1,
				});
				// The background: this element's, over its ancestors' down to an opaque one.
				const layers = [];
				for (let e = el; e; e = e.parentElement) {
					const c = rgba(getComputedStyle(e).backgroundColor);
					if (c.a > 0) layers.push(c);
					if (c.a >= 1) break;
				}
				let bg = { r: 255, g: 255, b: 255, a: 1 };
				for (const c of layers.reverse()) bg = over(c, bg);
				const style = getComputedStyle(el);
				let fg = over(rgba(style.color), bg);
				// A brightness() filter changes both.
				const f = /brightness\(([\d.]+)\)/.exec(style.filter);
				if (f) {
					const k = Number(f[1]);
					const scale = (c) => ({ r: Math.min(255, c.r * k), g: Math.min(255, c.g * k), b: Math.min(255, c.b * k), a: 1 });
					bg = scale(bg);
					fg = scale(fg);
				}
				const lum = (c) => {
					const ch = [c.r, c.g, c.b].map((v) => {
						const s = v / 255;
						return s <= 0.03928 ? s / 12.92 : ((s + 0.055) / 1.055) ** 2.4;
					});
					return 0.2126 * ch[0] + 0.7152 * ch[1] + 0.0722 * ch[2];
				};
				const [hi, lo] = [lum(fg), lum(bg)].sort((a, b) => b - a);
				return { name: el.getAttribute('aria-label') || el.textContent.trim() || el.id, ratio: (hi + 0.05) / (lo + 0.05) };
			}).catch(() => null), // gone meanwhile (re-rendered)
		);
	}
	return results.filter(Boolean);
}

for (const [scheme, viewport] of [
	['light', undefined],
	['dark', PHONE],
]) {
	test(`every button keeps a readable label when hovered (${scheme}${viewport ? ', 375 px' : ''})`, async () => {
		const { page } = await loggedInPage(browser, viewport ? { viewport } : {});
		await page.emulateMedia({ colorScheme: scheme });
		await send(page, `hello [[raw=Some \`code\`:\n\n\`\`\`js\nlet x = 1;\n\`\`\`]]`);
		await waitReplyDone(page);
		const checked = [];
		const check = async (what) => {
			for (const r of await hoverContrasts(page)) {
				checked.push(r.name);
				assert.ok(r.ratio >= 4.5, `${what}: "${r.name}" on hover has contrast ${r.ratio.toFixed(2)} (< 4.5)`);
			}
		};
		await check('chat');
		// Stop exists while a reply streams: the one the issue was about.
		await send(page, 'long one [[tokens=400]] [[delay=40]]');
		await page.locator('#stop').waitFor();
		await page.locator('#stop').hover();
		await screenshot(page, `feature-stop-hover-${scheme}`);
		await check('streaming');
		assert.ok(checked.includes('Stop'), `Stop was checked: ${checked}`);
		await page.locator('#stop').click();
		await waitReplyDone(page);
		await page.getByRole('button', { name: 'Download' }).click();
		await check('download menu');
		assert.ok(checked.length >= 8, `checked ${checked.length} buttons`);
		assertNoProblems(page);
		await page.context().close();
	});
}

test('the title rules: directives dropped, whitespace folded, cut at a word; a model\'s answer cleaned', async () => {
	const { page } = await loggedInPage(browser);
	const out = await page.evaluate(async () => {
		const { titleFrom } = await import('/js/sessions.js');
		const { cleanTitle } = await import('/js/titles.js');
		const { reasonText } = await import('/js/reasons.js');
		return {
			titles: [
				titleFrom('  Hello\n\n  world [[tokens=5]] [[raw=multi\nline]]  '),
				titleFrom('[[tokens=5]]'),
				titleFrom('A'.repeat(80)),
				titleFrom('word '.repeat(20)),
			],
			cleaned: [
				cleanTitle('Title: "Lisbon Weekend Plan."'),
				cleanTitle('\n**Sorting lists in Python**\nmore text'),
				cleanTitle('   '),
			],
			reasons: [
				reasonText('error', 'upstream_stream_error'),
				reasonText('interrupted', 'worker_died'),
				reasonText('error', 'something_new'),
				reasonText('complete', null),
				reasonText('cancelled', 'cancelled'),
			],
		};
	});
	assert.deepEqual(out.titles, [
		'Hello world',
		'New chat',
		`${'A'.repeat(47)}…`,
		'word word word word word word word word word…',
	]);
	assert.deepEqual(out.cleaned, ['Lisbon Weekend Plan', 'Sorting lists in Python', '']);
	assert.deepEqual(out.reasons, [
		'The AI service reported an error',
		'The server generating the reply stopped',
		'The reply failed',
		'',
		'',
	]);
	await page.context().close();
});
