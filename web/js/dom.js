// dom.js: small DOM and formatting helpers shared by the views. Text always
// goes in through textContent or text nodes, never through innerHTML.

/**
 * Creates an element. props: className, text (textContent), dataset,
 * attrs (setAttribute, for aria-* and friends) and any other DOM property
 * (type, href, disabled, …). Children: nodes or strings (as text).
 */
export function h(tag, props = {}, ...children) {
	const el = document.createElement(tag);
	for (const [key, value] of Object.entries(props)) {
		if (value === undefined || value === null) continue;
		if (key === 'text') el.textContent = value;
		else if (key === 'dataset') Object.assign(el.dataset, value);
		else if (key === 'attrs') {
			for (const [name, v] of Object.entries(value)) if (v !== undefined && v !== null) el.setAttribute(name, v);
		} else el[key] = value;
	}
	for (const child of children.flat()) {
		if (child === null || child === undefined || child === false) continue;
		el.append(child);
	}
	return el;
}

const SVG_NS = 'http://www.w3.org/2000/svg';
const ICONS = {
	pencil: 'M4 20h4L19 9l-4-4L4 16v4zm11-15 4 4',
	trash: 'M5 7h14M10 11v6M14 11v6M6 7l1 13h10l1-13M9 7V4h6v3',
};

/** A decorative line icon (aria-hidden; the button carries the label). */
export function icon(name) {
	const svg = document.createElementNS(SVG_NS, 'svg');
	svg.setAttribute('viewBox', '0 0 24 24');
	svg.setAttribute('aria-hidden', 'true');
	svg.setAttribute('focusable', 'false');
	svg.classList.add('icon');
	const path = document.createElementNS(SVG_NS, 'path');
	path.setAttribute('d', ICONS[name]);
	svg.append(path);
	return svg;
}

const pad = (n) => String(n).padStart(2, '0');

/** "2025-10-11 10:30:05" in local time: transcripts and exports. */
export function formatStamp(date) {
	const d = toDate(date);
	return `${d.getFullYear()}-${pad(d.getMonth() + 1)}-${pad(d.getDate())} ${pad(d.getHours())}:${pad(d.getMinutes())}:${pad(d.getSeconds())}`;
}

/** Short form for the screen: the time today, else date and time. */
export function formatShort(date) {
	const d = toDate(date);
	const now = new Date();
	const time = `${pad(d.getHours())}:${pad(d.getMinutes())}`;
	if (d.toDateString() === now.toDateString()) return time;
	const sameYear = d.getFullYear() === now.getFullYear();
	const day = d.toLocaleDateString(undefined, { month: 'short', day: 'numeric', year: sameYear ? undefined : 'numeric' });
	return `${day} ${time}`;
}

/** <time> with a machine-readable value and the full date as a tooltip. */
export function timeElement(iso, className = 'time') {
	const d = toDate(iso);
	return h('time', {
		className,
		dateTime: d.toISOString(),
		title: d.toLocaleString(),
		text: formatShort(d),
	});
}

function toDate(value) {
	const d = value instanceof Date ? value : new Date(value ?? Date.now());
	return Number.isNaN(d.getTime()) ? new Date() : d;
}

/** Resolves after ms, or rejects with an AbortError when signal fires. */
export function sleep(ms, signal) {
	return new Promise((resolve, reject) => {
		if (signal?.aborted) {
			reject(signal.reason ?? new DOMException('Aborted', 'AbortError'));
			return;
		}
		const timer = setTimeout(() => {
			signal?.removeEventListener('abort', onAbort);
			resolve();
		}, ms);
		const onAbort = () => {
			clearTimeout(timer);
			reject(signal.reason ?? new DOMException('Aborted', 'AbortError'));
		};
		signal?.addEventListener('abort', onAbort, { once: true });
	});
}

export const isAbortError = (err) => err?.name === 'AbortError';
