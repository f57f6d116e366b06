// Voice: Connect / Mute / Disconnect through /api/session and WebRTC, as far
// as the fake upstream goes (it answers the SDP offer but carries no media),
// and a clear message when the upstream refuses.
import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import {
	BASE_URL,
	UPSTREAM_URL,
	assertNoProblems,
	fakeStats,
	launch,
	loggedInPage,
	screenshot,
} from './lib.mjs';

let browser;
before(async () => {
	browser = await launch();
});
after(async () => {
	await browser?.close();
});

test('Connect obtains an ephemeral session and posts the SDP offer to the upstream', async () => {
	const { page } = await loggedInPage(browser, { permissions: ['microphone'] });
	const before = await fakeStats();
	const connect = page.getByRole('button', { name: 'Connect', exact: true });
	const mute = page.getByRole('button', { name: /Mute mic|Unmute mic/ });
	const disconnect = page.getByRole('button', { name: 'Disconnect' });
	assert.equal(await mute.isDisabled(), true);
	assert.equal(await disconnect.isDisabled(), true);

	const sessionAnswer = page.waitForResponse(
		(r) => r.url() === `${BASE_URL}/api/session` && r.request().method() === 'POST',
	);
	const sdpAnswer = page.waitForResponse((r) => r.url().startsWith(UPSTREAM_URL) && r.request().method() === 'POST');
	await connect.click();
	const status = page.locator('#voice-status');
	// Past the SDP exchange: connecting (ICE to the fake never completes).
	await status.filter({ hasText: /Connecting audio|Connected/ }).waitFor({ timeout: 15000 });

	// The page got an ephemeral secret from our server...
	const session = await sessionAnswer;
	assert.equal(session.status(), 200);
	const { client_secret: clientSecret, sdp_url: sdpUrl } = await session.json();
	assert.match(clientSecret.value, /^ek_/);
	// ...and posted its SDP offer to the address it was given, with that secret.
	const answer = await sdpAnswer;
	const offer = answer.request();
	const headers = await offer.allHeaders();
	assert.equal(offer.url(), sdpUrl);
	assert.equal(headers.authorization, `Bearer ${clientSecret.value}`);
	assert.match(headers['content-type'], /^application\/sdp/);
	assert.match(offer.postData(), /^v=0\r?\n/);
	assert.match(offer.postData(), /m=audio /);
	assert.match(offer.postData(), /m=application .*webrtc-datachannel/);
	assert.equal(answer.status(), 201);
	assert.match(await answer.text(), /^v=0\r?\n/);
	const after = await fakeStats();
	assert.equal(after.realtime_secrets, before.realtime_secrets + 1);
	assert.equal(after.sdp_answers, before.sdp_answers + 1);

	// The answer SDP was accepted (setRemoteDescription did not throw: the
	// status would say so), and the remote audio element is ready to play.
	assert.equal(await page.locator('#remote-audio').evaluate((a) => a.autoplay), true);
	assert.equal(await connect.isDisabled(), true);
	await screenshot(page, 'voice-connecting');

	// Mute toggles without hanging up.
	await mute.click();
	assert.equal(await page.locator('#voice-mute').getAttribute('aria-pressed'), 'true');
	assert.equal(await page.locator('#voice-mute').textContent(), 'Unmute mic');
	await mute.click();
	assert.equal(await page.locator('#voice-mute').getAttribute('aria-pressed'), 'false');

	await disconnect.click();
	await status.filter({ hasText: 'Disconnected.' }).waitFor();
	assert.equal(await connect.isEnabled(), true);
	assert.equal(await disconnect.isDisabled(), true);
	assertNoProblems(page);
	await page.context().close();
});

test('a refused voice session shows a clear message', async () => {
	const { page } = await loggedInPage(browser, { permissions: ['microphone'] });
	// The fake upstream refuses sessions whose instructions say [[refuse]].
	const r = await page.request.put(`${BASE_URL}/api/settings`, {
		headers: { authorization: `Bearer ${await token(page)}` },
		data: { system_prompt: 'Be brief. [[refuse]]' },
	});
	assert.equal(r.status(), 200);
	await page.getByRole('button', { name: 'Connect', exact: true }).click();
	const alert = page.locator('#voice-status[role="alert"]');
	await alert.waitFor();
	assert.match(await alert.textContent(), /^The voice service is unavailable: .+/);
	assert.equal(await page.getByRole('button', { name: 'Connect', exact: true }).isEnabled(), true);
	assert.equal(await page.getByRole('button', { name: 'Disconnect' }).isDisabled(), true);
	await screenshot(page, 'voice-refused');
	assertNoProblems(page);
	await page.context().close();
});

test('a denied microphone shows a clear message', async () => {
	// No 'microphone' permission and no fake UI auto-accept in this context:
	// Playwright denies the request.
	const { page } = await loggedInPage(browser);
	await page.context().clearPermissions();
	await page.evaluate(() => {
		navigator.mediaDevices.getUserMedia = () => Promise.reject(new DOMException('Permission denied', 'NotAllowedError'));
	});
	await page.getByRole('button', { name: 'Connect', exact: true }).click();
	const alert = page.locator('#voice-status[role="alert"]');
	await alert.waitFor();
	assert.match(await alert.textContent(), /Microphone access was denied/);
	assertNoProblems(page);
	await page.context().close();
});

const token = (page) => page.evaluate(() => JSON.parse(sessionStorage.getItem('chat.auth')).token);
