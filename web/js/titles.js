// titles.js: naming a new chat with a short summary by the model, after its
// first reply (when the browser setting allows it). One non-streamed
// /v1/chat/completions call of a few tokens; any failure keeps the title
// taken from the first message.
import { request } from './api.js';
import { DEFAULT_TITLE, shorten, titleFrom } from './sessions.js';

const PROMPT =
	'Write a title of at most six words for a chat that begins with the message below. Answer with the title only: no quotes, no final period.';
const EXCERPT = 1500;

/** Cleans a model's answer into a title ('' if nothing usable is left). */
export function cleanTitle(text) {
	const line = String(text ?? '')
		.split('\n')
		.map((l) => l.trim())
		.find((l) => l) ?? '';
	const t = titleFrom(
		line
			.replace(/^(?:title|chat title)\s*:\s*/i, '')
			.replace(/^["'“”‘’«»*_#`]+|["'“”‘’«»*_`]+$/g, '')
			.replace(/[.。]+$/, '')
			.replace(/\*\*|__|`/g, ''),
	);
	return t === DEFAULT_TITLE ? '' : shorten(t, 60);
}

/** Asks the model for a title of a chat from its first message; resolves with it or ''. */
export async function summaryTitle({ model, message, signal }) {
	// The words only: steering directives are no part of what the chat is about.
	const words = message.replace(/\[\[[\s\S]*?\]\]/g, ' ').replace(/[ \t]+/g, ' ').trim();
	if (!words) return '';
	const body = {
		messages: [
			{ role: 'system', content: PROMPT },
			{ role: 'user', content: words.slice(0, EXCERPT) },
		],
		max_tokens: 24,
		temperature: 0.2,
		stream: false,
	};
	if (model) body.model = model;
	const answer = await request('POST', '/v1/chat/completions', { body, signal });
	return cleanTitle(answer?.choices?.[0]?.message?.content);
}
