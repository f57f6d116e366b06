// Model output can never run script: replies are rendered as inert DOM
// nodes, links are http(s) only, and nginx sends a strict CSP.
import assert from 'node:assert/strict';
import { readFile, readdir } from 'node:fs/promises';
import path from 'node:path';
import { after, before, test } from 'node:test';

import {
	BASE_URL,
	REPO,
	assertNoProblems,
	lastReply,
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

const XSS = '<script>window.__xss=1</script><img src=x onerror="window.__xss=2">';

/** Elements in the transcript that could run or load something. */
const dangerous = (page) =>
	page.evaluate(() => {
		const found = [];
		for (const el of document.querySelectorAll('#transcript *')) {
			if (['SCRIPT', 'IMG', 'IFRAME', 'OBJECT', 'EMBED', 'STYLE', 'SVG', 'FORM'].includes(el.tagName.toUpperCase()))
				found.push(el.tagName);
			for (const attr of el.attributes) {
				if (/^on/i.test(attr.name) || /^\s*(javascript|data|vbscript):/i.test(attr.value))
					found.push(`${el.tagName}[${attr.name}=${attr.value}]`);
			}
		}
		return found;
	});

test('a reply with <script> or <img onerror> renders as inert text', async () => {
	const { page } = await loggedInPage(browser);
	// Script that the page would run is reported as a console error by the
	// CSP, or sets window.__xss; neither may happen.
	await send(page, `show me [[raw=${XSS}]]`);
	const text = await waitReplyDone(page);
	assert.equal(text, XSS, 'the markup is shown literally');
	assert.deepEqual(await dangerous(page), []);
	assert.equal(await page.evaluate(() => window.__xss), undefined);
	// The user's own message (which holds the same markup) is inert too.
	assert.match(await page.locator('#transcript .message.user').textContent(), /<script>window.__xss=1<\/script>/);

	// Links: only http(s), opened safely; javascript: stays text.
	await send(
		page,
		'[[raw=[click](javascript:window.__xss=3) [data](data:text/html,hi) <a href="javascript:window.__xss=4">a</a> ![pic](https://example.com/p.png) [ok](https://example.com/a?b=1) `<b>code</b>`\n\n```html\n<script>window.__xss=5</script>\n```]]',
	);
	await waitReplyDone(page);
	const reply = replyBody(page);
	const links = await reply.locator('a').evaluateAll((as) =>
		as.map((a) => ({ href: a.getAttribute('href'), rel: a.rel, target: a.target, text: a.textContent })),
	);
	assert.deepEqual(links, [
		{ href: 'https://example.com/p.png', rel: 'noopener noreferrer', target: '_blank', text: 'Image: pic' },
		{ href: 'https://example.com/a?b=1', rel: 'noopener noreferrer', target: '_blank', text: 'ok' },
	]);
	assert.match(await reply.textContent(), /\[click\]\(javascript:window.__xss=3\)/);
	assert.equal(await reply.locator('code').first().textContent(), '<b>code</b>');
	assert.equal(await reply.locator('pre code').textContent(), '<script>window.__xss=5</script>');
	assert.deepEqual(await dangerous(page), []);
	await screenshot(page, 'chat-xss-inert');

	// The same after a reload (history rendering goes the same way).
	await page.reload();
	await lastReply(page).waitFor();
	assert.deepEqual(await dangerous(page), []);
	assert.equal(await page.evaluate(() => window.__xss), undefined);
	assertNoProblems(page);
	await page.context().close();
});

test('Markdown renders: emphasis, code, lists, headings, tables', async () => {
	const { page } = await loggedInPage(browser);
	const md = [
		'# Title',
		'',
		'Some **bold**, *italic*, ~~old~~ and `inline code`; snake_case_name stays.',
		'',
		'- one',
		'- two',
		'  - nested',
		'',
		'1. first',
		'2. second',
		'',
		'| a | b |',
		'|---|--:|',
		'| 1 | 2 |',
		'',
		'> quoted',
		'',
		'```js',
		'const x = 1 < 2;',
		'```',
	].join('\n');
	await send(page, `[[raw=${md}]]`);
	await waitReplyDone(page);
	const reply = replyBody(page);
	assert.equal(await reply.locator('h3').textContent(), 'Title');
	assert.equal(await reply.locator('strong').textContent(), 'bold');
	assert.equal(await reply.locator('em').textContent(), 'italic');
	assert.equal(await reply.locator('del').textContent(), 'old');
	assert.equal(await reply.locator('p code').textContent(), 'inline code');
	assert.match(await reply.locator('p').first().textContent(), /snake_case_name stays/);
	assert.deepEqual(await reply.locator('ul > li').evaluateAll((els) => els.map((e) => e.firstChild.textContent)), [
		'one',
		'two',
		'nested',
	]);
	assert.equal(await reply.locator('ul ul li').textContent(), 'nested');
	assert.equal(await reply.locator('ol > li').count(), 2);
	assert.equal(await reply.locator('table th').count(), 2);
	assert.equal(await reply.locator('table td.align-right').textContent(), '2');
	assert.equal(await reply.locator('blockquote').textContent(), 'quoted');
	assert.equal(await reply.locator('pre code.language-js').textContent(), 'const x = 1 < 2;');
	await screenshot(page, 'chat-markdown');
	assertNoProblems(page);
	await page.context().close();
});

test('the Markdown renderer: hostile input stays inert, and rendering stays fast', async () => {
	const { page } = await loggedInPage(browser);
	const result = await page.evaluate(async () => {
		const { renderMarkdown } = await import('/js/markdown.js');
		const vectors = [
			'<svg onload="window.__xss=1">',
			'[x](JaVaScRiPt:window.__xss=1)',
			'[x]( javascript:window.__xss=1)',
			'[x](java\tscript:window.__xss=1)',
			'[x](//evil.example/path)',
			'[x](/relative)',
			'![x](javascript:window.__xss=1)',
			'[x](data:text/html;base64,PHNjcmlwdD4=)',
			'<http://x" onmouseover="window.__xss=1>',
			'[<img src=x onerror=window.__xss=1>](https://example.com)',
			'```"><script>window.__xss=1</script>\ncode\n```',
			'**<iframe src=javascript:window.__xss=1>**',
		];
		const bad = [];
		const box = document.createElement('div');
		for (const v of vectors) {
			box.replaceChildren(renderMarkdown(v));
			for (const el of box.querySelectorAll('*')) {
				if (!['P', 'A', 'STRONG', 'EM', 'CODE', 'PRE', 'BR', 'DEL'].includes(el.tagName)) bad.push(`${v} -> ${el.tagName}`);
				for (const a of el.attributes) {
					if (!['href', 'target', 'rel', 'class', 'data-lang'].includes(a.name)) bad.push(`${v} -> ${a.name}`);
					if (a.name === 'href' && !/^https?:\/\/(example\.com|x)\/$/.test(a.value)) bad.push(`${v} -> href=${a.value}`);
				}
			}
		}
		const hostile = [
			'*a '.repeat(5000),
			'_a '.repeat(5000),
			'[a](b '.repeat(3000),
			'`a ``b '.repeat(3000),
			'>'.repeat(5000),
			Array.from({ length: 400 }, (_, i) => `${' '.repeat(i * 2)}- item`).join('\n'),
			'**a *b _c ~~d `e` f~~ g_ h* i** '.repeat(800),
			'see https://example.com/a_(b) and <http://x.y> '.repeat(800),
		];
		const t = performance.now();
		for (const h of hostile) renderMarkdown(h);
		return { bad, ms: performance.now() - t, xss: window.__xss };
	});
	assert.deepEqual(result.bad, []);
	assert.equal(result.xss, undefined);
	assert.ok(result.ms < 1500, `hostile inputs rendered in ${Math.round(result.ms)} ms`);
	assertNoProblems(page);
	await page.context().close();
});

test('nginx sends a strict Content-Security-Policy with the UI', async () => {
	const { page } = await loggedInPage(browser);
	const response = await page.request.get(`${BASE_URL}/`);
	const csp = response.headers()['content-security-policy'] ?? '';
	assert.match(csp, /script-src 'self'(;|$)/);
	assert.match(csp, /style-src 'self'(;|$)/);
	assert.match(csp, /object-src 'none'/);
	assert.doesNotMatch(csp, /unsafe-inline|unsafe-eval/);
	assert.equal(response.headers()['x-content-type-options'], 'nosniff');
	// An inline script in the page is refused by the browser.
	await page.evaluate(() => {
		const s = document.createElement('script');
		s.textContent = 'window.__inline = 1';
		document.body.append(s);
	});
	assert.equal(await page.evaluate(() => window.__inline), undefined);
	await page.context().close();
});

test('the UI code never parses strings as HTML or code', async () => {
	const dir = path.join(REPO, 'web/js');
	for (const name of await readdir(dir)) {
		if (!name.endsWith('.js')) continue;
		const source = await readFile(path.join(dir, name), 'utf8');
		const code = source.replace(/\/\/.*$/gm, '').replace(/\/\*[\s\S]*?\*\//g, '');
		assert.doesNotMatch(
			code,
			/\.(innerHTML|outerHTML)\s*=|insertAdjacentHTML|document\.write|\beval\(|new Function\(|createContextualFragment|DOMParser/,
			`${name} must build DOM nodes, not HTML strings`,
		);
	}
	// No inline scripts, styles or event handlers in the page.
	const html = await readFile(path.join(REPO, 'web/index.html'), 'utf8');
	assert.doesNotMatch(html, /<script(?![^>]*\bsrc=)[^>]*>/);
	assert.doesNotMatch(html, /\sstyle=|<style|\son[a-z]+=/i);
});
