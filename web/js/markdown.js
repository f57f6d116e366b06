// markdown.js: a small, safe Markdown renderer for model output.
//
// Safety by construction: the output is built with createElement and text
// nodes only. Model text never reaches innerHTML, so a reply containing
// <script> or <img onerror=…> shows up as literal text. Links keep only
// absolute http(s) URLs and open in a new tab without a referrer or an
// opener; images are shown as links (no remote loads; the CSP forbids them
// anyway).
//
// Supported: paragraphs (single newlines are line breaks, as chat users
// expect), headings, fenced code blocks (an unclosed fence runs to the end,
// which suits a reply that is still streaming), block quotes, ordered and
// unordered lists (nested by indentation), GitHub-style tables, horizontal
// rules; inline **bold**, *italic*, ~~strike~~, `code`, [links](https://…),
// <https://…> and bare https:// URLs, backslash escapes.

const MAX_DEPTH = 16; // nesting limit for blocks and inline spans
const SAFE_PROTOCOLS = new Set(['http:', 'https:']);

/** The URL normalised, if it is absolute http(s); otherwise null. */
export function safeUrl(href) {
	if (typeof href !== 'string' || href.length === 0 || href.length > 4096) return null;
	try {
		const url = new URL(href.trim());
		return SAFE_PROTOCOLS.has(url.protocol) ? url.href : null;
	} catch {
		return null;
	}
}

/** Renders Markdown source into a DocumentFragment of inert nodes. */
export function renderMarkdown(source) {
	const fragment = document.createDocumentFragment();
	const lines = String(source ?? '').replace(/\r\n?/g, '\n').split('\n');
	for (const node of parseBlocks(lines, 0)) fragment.append(node);
	return fragment;
}

// ------------------------------------------------------------------ blocks

const FENCE_RE = /^ {0,3}(`{3,}|~{3,})\s*([^\s`]*)[^`]*$/;
const HEADING_RE = /^ {0,3}(#{1,6})(?:[ \t]+(.*?))?(?:[ \t]+#+)?[ \t]*$/;
const HR_RE = /^ {0,3}([-*_])(?:[ \t]*\1){2,}[ \t]*$/;
const QUOTE_RE = /^ {0,3}> ?(.*)$/;
const LIST_RE = /^( *)([-*+]|\d{1,9}[.)])[ \t]+(.*)$/;
const TABLE_SEP_RE = /^ {0,3}\|?\s*:?-+:?\s*(?:\|\s*:?-+:?\s*)*\|?\s*$/;

const indentOf = (line) => line.length - line.trimStart().length;
const isBlank = (line) => line.trim() === '';

function isTableStart(lines, i) {
	return (
		i + 1 < lines.length &&
		lines[i].includes('|') &&
		TABLE_SEP_RE.test(lines[i + 1]) &&
		lines[i + 1].includes('-') &&
		(lines[i + 1].includes('|') || lines[i].trim().startsWith('|'))
	);
}

/** True when the line starts a block other than a paragraph. */
function startsBlock(lines, i) {
	const line = lines[i];
	return (
		FENCE_RE.test(line) ||
		HEADING_RE.test(line) ||
		HR_RE.test(line) ||
		QUOTE_RE.test(line) ||
		LIST_RE.test(line) ||
		isTableStart(lines, i)
	);
}

function parseBlocks(lines, depth) {
	const nodes = [];
	let i = 0;
	while (i < lines.length) {
		const line = lines[i];
		if (isBlank(line)) {
			i += 1;
			continue;
		}
		if (depth >= MAX_DEPTH) {
			// Absurd nesting: the rest is shown as plain text.
			nodes.push(paragraph(lines.slice(i).join('\n'), depth));
			break;
		}
		let m;
		if ((m = FENCE_RE.exec(line))) {
			i = codeBlock(lines, i, m, nodes);
		} else if ((m = HR_RE.exec(line))) {
			nodes.push(document.createElement('hr'));
			i += 1;
		} else if ((m = HEADING_RE.exec(line))) {
			// The transcript sits under an h2, so a reply's "#" is an h3.
			const level = Math.min(6, m[1].length + 2);
			const heading = document.createElement(`h${level}`);
			heading.append(...parseInline(m[2] ?? '', depth));
			nodes.push(heading);
			i += 1;
		} else if (QUOTE_RE.test(line)) {
			const inner = [];
			while (i < lines.length && (m = QUOTE_RE.exec(lines[i]))) {
				inner.push(m[1]);
				i += 1;
			}
			const quote = document.createElement('blockquote');
			quote.append(...parseBlocks(inner, depth + 1));
			nodes.push(quote);
		} else if ((m = LIST_RE.exec(line))) {
			i = list(lines, i, depth, nodes);
		} else if (isTableStart(lines, i)) {
			i = table(lines, i, depth, nodes);
		} else {
			const text = [line.trim()];
			i += 1;
			while (i < lines.length && !isBlank(lines[i]) && !startsBlock(lines, i)) {
				text.push(lines[i].trim());
				i += 1;
			}
			nodes.push(paragraph(text.join('\n'), depth));
		}
	}
	return nodes;
}

function paragraph(text, depth) {
	const p = document.createElement('p');
	p.append(...parseInline(text, depth));
	return p;
}

function codeBlock(lines, start, match, nodes) {
	const fence = match[1];
	const lang = match[2].replace(/[^A-Za-z0-9_+#.-]/g, '').slice(0, 32);
	const closing = new RegExp(`^ {0,3}${fence[0] === '`' ? '`' : '~'}{${fence.length},}\\s*$`);
	const indent = indentOf(lines[start]);
	const body = [];
	let i = start + 1;
	while (i < lines.length && !closing.test(lines[i])) {
		// Lines lose up to the fence's own indentation.
		const line = lines[i];
		body.push(line.slice(Math.min(indent, indentOf(line))));
		i += 1;
	}
	const pre = document.createElement('pre');
	const code = document.createElement('code');
	if (lang) {
		code.className = `language-${lang}`;
		pre.dataset.lang = lang;
	}
	code.textContent = body.join('\n');
	pre.append(code);
	nodes.push(pre);
	return i < lines.length ? i + 1 : i; // past the closing fence, if any
}

function list(lines, start, depth, nodes) {
	const first = LIST_RE.exec(lines[start]);
	const base = first[1].length;
	const ordered = /\d/.test(first[2]);
	const el = document.createElement(ordered ? 'ol' : 'ul');
	if (ordered) {
		const n = parseInt(first[2], 10);
		if (n !== 1) el.start = n;
	}
	let i = start;
	while (i < lines.length) {
		const m = LIST_RE.exec(lines[i]);
		if (!m || m[1].length < base || m[1].length > base + 3 || /\d/.test(m[2]) !== ordered) break;
		const contentIndent = m[1].length + m[2].length + 1;
		const itemLines = [m[3]];
		i += 1;
		while (i < lines.length) {
			const line = lines[i];
			if (isBlank(line)) {
				// A blank line continues the item only if indented text follows.
				let j = i + 1;
				while (j < lines.length && isBlank(lines[j])) j += 1;
				if (j < lines.length && indentOf(lines[j]) >= Math.max(contentIndent, base + 2)) {
					for (; i < j; i += 1) itemLines.push('');
					continue;
				}
				break;
			}
			const indent = indentOf(line);
			if (indent >= base + 2) {
				itemLines.push(line.slice(Math.min(indent, contentIndent)));
			} else if (!startsBlock(lines, i)) {
				itemLines.push(line.trim()); // lazy continuation of the text
			} else {
				break;
			}
			i += 1;
		}
		const li = document.createElement('li');
		const blocks = parseBlocks(itemLines, depth + 1);
		// A tight item: its single paragraph's content goes straight in.
		if (blocks.length > 0 && blocks[0].tagName === 'P' && !itemLines.includes('')) {
			li.append(...blocks[0].childNodes, ...blocks.slice(1));
		} else {
			li.append(...blocks);
		}
		el.append(li);
		// A blank line between items of the same list keeps the list going.
		let j = i;
		while (j < lines.length && isBlank(lines[j])) j += 1;
		const next = j < lines.length ? LIST_RE.exec(lines[j]) : null;
		if (j > i && next && next[1].length === base && /\d/.test(next[2]) === ordered) i = j;
	}
	nodes.push(el);
	return i;
}

function splitRow(line) {
	let row = line.trim();
	if (row.startsWith('|')) row = row.slice(1);
	if (row.endsWith('|') && !row.endsWith('\\|')) row = row.slice(0, -1);
	const cells = [];
	let cell = '';
	for (let k = 0; k < row.length; k += 1) {
		if (row[k] === '\\' && row[k + 1] === '|') {
			cell += '|';
			k += 1;
		} else if (row[k] === '|') {
			cells.push(cell.trim());
			cell = '';
		} else {
			cell += row[k];
		}
	}
	cells.push(cell.trim());
	return cells;
}

function table(lines, start, depth, nodes) {
	const header = splitRow(lines[start]);
	const aligns = splitRow(lines[start + 1]).map((spec) => {
		const left = spec.startsWith(':');
		const right = spec.endsWith(':');
		if (left && right) return 'center';
		if (right) return 'right';
		return left ? 'left' : '';
	});
	const tableEl = document.createElement('table');
	const thead = document.createElement('thead');
	const headRow = document.createElement('tr');
	header.forEach((text, k) => headRow.append(tableCell('th', text, aligns[k], depth)));
	thead.append(headRow);
	tableEl.append(thead);
	const tbody = document.createElement('tbody');
	let i = start + 2;
	while (i < lines.length && !isBlank(lines[i]) && lines[i].includes('|')) {
		const cells = splitRow(lines[i]);
		const tr = document.createElement('tr');
		for (let k = 0; k < header.length; k += 1) tr.append(tableCell('td', cells[k] ?? '', aligns[k], depth));
		tbody.append(tr);
		i += 1;
	}
	tableEl.append(tbody);
	// Wide tables scroll sideways inside their own box (focusable, so the
	// keyboard can scroll it too).
	const wrap = document.createElement('div');
	wrap.className = 'table-wrap';
	wrap.tabIndex = 0;
	wrap.append(tableEl);
	nodes.push(wrap);
	return i;
}

function tableCell(tag, text, align, depth) {
	const cell = document.createElement(tag);
	if (tag === 'th') cell.scope = 'col';
	if (align) cell.className = `align-${align}`;
	cell.append(...parseInline(text, depth + 1));
	return cell;
}

// ------------------------------------------------------------------ inline

const PUNCTUATION = /[!-/:-@[-`{-~]/;
const isSpace = (c) => c === undefined || /\s/.test(c);
const isWordChar = (c) => c !== undefined && /[\p{L}\p{N}]/u.test(c);
const BARE_URL_RE = /^https?:\/\/[^\s<>"]+/;
const startsWithHttp = (text, i) => text.slice(i, i + 4).toLowerCase() === 'http';

function link(href, children) {
	const a = document.createElement('a');
	a.href = href;
	a.target = '_blank';
	a.rel = 'noopener noreferrer';
	a.append(...children);
	return a;
}

function runLength(text, i) {
	let n = 0;
	while (text[i + n] === text[i]) n += 1;
	return n;
}

/** Index of the matching close bracket for text[open] ('[' or '('), or -1. */
function matchBracket(text, open, close, from) {
	let depth = 0;
	for (let k = from; k < text.length; k += 1) {
		const c = text[k];
		if (c === '\\') k += 1;
		else if (c === open[0]) depth += 1;
		else if (c === close) {
			if (depth === 0) return k;
			depth -= 1;
		}
	}
	return -1;
}

/**
 * Parses inline Markdown into nodes. `noLinks` inside link labels (no links
 * within links). `failed` remembers delimiters that found no closer, so a
 * reply full of stray asterisks stays linear rather than quadratic.
 */
function parseInline(text, depth, noLinks = false) {
	const nodes = [];
	if (depth >= MAX_DEPTH) {
		nodes.push(document.createTextNode(text));
		return nodes;
	}
	const failed = new Set();
	let last = null; // see inlineLink
	let buffer = '';
	const flush = () => {
		if (buffer) nodes.push(document.createTextNode(buffer));
		buffer = '';
	};
	let i = 0;
	while (i < text.length) {
		const c = text[i];

		if (c === '\\' && i + 1 < text.length && PUNCTUATION.test(text[i + 1])) {
			buffer += text[i + 1];
			i += 2;
			continue;
		}
		if (c === '\n') {
			flush();
			nodes.push(document.createElement('br'));
			i += 1;
			continue;
		}
		if (c === '`') {
			const n = runLength(text, i);
			const close = findCodeClose(text, i + n, n);
			if (close < 0) {
				buffer += text.slice(i, i + n);
				i += n;
				continue;
			}
			let content = text.slice(i + n, close).replace(/\n/g, ' ');
			if (content.length > 2 && content.startsWith(' ') && content.endsWith(' ') && content.trim())
				content = content.slice(1, -1);
			flush();
			const code = document.createElement('code');
			code.textContent = content;
			nodes.push(code);
			i = close + n;
			continue;
		}
		if (!noLinks && (c === '[' || (c === '!' && text[i + 1] === '['))) {
			const image = c === '!';
			const open = image ? i + 1 : i;
			last ??= { bracket: text.lastIndexOf(']'), paren: text.lastIndexOf(')') };
			const consumed = inlineLink(text, open, image, depth, last);
			if (consumed) {
				flush();
				nodes.push(consumed.node);
				i = consumed.end;
				continue;
			}
		}
		if (!noLinks && c === '<' && startsWithHttp(text, i + 1)) {
			const m = /^<(https?:\/\/[^\s<>]+)>/.exec(text.slice(i, i + 4100));
			const href = m && safeUrl(m[1]);
			if (href) {
				flush();
				nodes.push(link(href, [document.createTextNode(m[1])]));
				i += m[0].length;
				continue;
			}
		}
		if (!noLinks && (c === 'h' || c === 'H') && startsWithHttp(text, i) && !isWordChar(text[i - 1])) {
			const m = BARE_URL_RE.exec(text.slice(i, i + 4100));
			if (m) {
				const url = trimUrl(m[0]);
				const href = safeUrl(url);
				if (href) {
					flush();
					nodes.push(link(href, [document.createTextNode(url)]));
					i += url.length;
					continue;
				}
			}
		}
		if (c === '*' || c === '_' || c === '~') {
			const span = emphasis(text, i, depth, noLinks, failed);
			if (span) {
				flush();
				nodes.push(span.node);
				i = span.end;
				continue;
			}
			const n = runLength(text, i);
			buffer += text.slice(i, i + n);
			i += n;
			continue;
		}
		buffer += c;
		i += 1;
	}
	flush();
	return nodes;
}

function findCodeClose(text, from, n) {
	let k = text.indexOf('`', from);
	while (k >= 0) {
		const len = runLength(text, k);
		if (len === n) return k;
		k = text.indexOf('`', k + len);
	}
	return -1;
}

/** Bare URLs lose trailing punctuation and unbalanced closing parentheses. */
function trimUrl(url) {
	let end = url.length;
	for (;;) {
		const last = url[end - 1];
		if (/[.,;:!?'"*_~]/.test(last)) {
			end -= 1;
		} else if (last === ')') {
			const s = url.slice(0, end);
			if ((s.match(/\(/g) ?? []).length < (s.match(/\)/g) ?? []).length) end -= 1;
			else break;
		} else {
			break;
		}
	}
	return url.slice(0, end);
}

/**
 * [label](url "title") or ![alt](url) starting at text[open] === '['.
 * last: the text's last ']' and ')'; a '[' after them cannot start a link,
 * so a reply full of stray brackets costs no rescans.
 */
function inlineLink(text, open, image, depth, last) {
	if (open > last.bracket || open > last.paren) return null;
	const closeLabel = matchBracket(text, '[', ']', open + 1);
	if (closeLabel < 0 || text[closeLabel + 1] !== '(' || closeLabel > last.paren) return null;
	const closeDest = matchBracket(text, '(', ')', closeLabel + 2);
	if (closeDest < 0) return null;
	const label = text.slice(open + 1, closeLabel);
	let dest = text.slice(closeLabel + 2, closeDest).trim();
	const titled = /^(\S+)\s+(?:"[^"]*"|'[^']*'|\([^)]*\))$/.exec(dest);
	if (titled) dest = titled[1];
	if (dest.startsWith('<') && dest.endsWith('>')) dest = dest.slice(1, -1);
	const start = image ? open - 1 : open;
	const end = closeDest + 1;
	const href = safeUrl(dest);
	if (!href) {
		// Not a URL we link to (javascript:, data:, relative…): the source
		// stays visible as plain text.
		return { node: document.createTextNode(text.slice(start, end)), end };
	}
	const children = image
		? [document.createTextNode(`Image: ${label || dest}`)]
		: parseInline(label, depth + 1, true);
	const a = link(href, children);
	if (image) a.className = 'image-link';
	return { node: a, end };
}

/** **strong**, *em*, ***both***, __strong__, _em_, ~~del~~ at text[i]. */
function emphasis(text, i, depth, noLinks, failed) {
	const c = text[i];
	const run = runLength(text, i);
	const n = c === '~' ? 2 : Math.min(run, 3);
	if (c === '~' && run !== 2) return null;
	if (run !== n) return null; // e.g. four asterisks: left as text
	if (isSpace(text[i + n])) return null; // an opener touches its text
	if (c === '_' && isWordChar(text[i - 1])) return null; // snake_case
	const key = c + n;
	if (failed.has(key)) return null;
	let k = i + n + 1; // at least one character inside
	for (; k < text.length; k += 1) {
		const ch = text[k];
		if (ch === '\\') {
			k += 1;
			continue;
		}
		if (ch === '`') {
			// Delimiters inside a code span do not count.
			const len = runLength(text, k);
			const close = findCodeClose(text, k + len, len);
			k = close < 0 ? k + len - 1 : close + len - 1;
			continue;
		}
		if (ch !== c) continue;
		const len = runLength(text, k);
		if (len === n && !isSpace(text[k - 1]) && !(c === '_' && isWordChar(text[k + n]))) break;
		k += len - 1;
	}
	if (k >= text.length) {
		failed.add(key);
		return null;
	}
	const inner = parseInline(text.slice(i + n, k), depth + 1, noLinks);
	let node;
	if (c === '~') {
		node = document.createElement('del');
		node.append(...inner);
	} else if (n === 3) {
		node = document.createElement('strong');
		const em = document.createElement('em');
		em.append(...inner);
		node.append(em);
	} else {
		node = document.createElement(n === 2 ? 'strong' : 'em');
		node.append(...inner);
	}
	return { node, end: k + n };
}
