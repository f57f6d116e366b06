// highlight.js (ours): syntax highlighting of finished code blocks with the
// highlight.js library, served from the site (/vendor/highlight/, copied
// from the npm package pinned in web-deps/package-lock.json). Loaded on
// first use; when it is missing the code simply stays plain.
const LIBRARY = '/vendor/highlight/highlight.min.js';
let library = null;

function load() {
	library ??= import(LIBRARY)
		.then((m) => {
			const hljs = m.default;
			hljs.configure({ ignoreUnescapedHTML: true });
			return hljs;
		})
		.catch(() => null);
	return library;
}

/** Highlights the code blocks under root that are not highlighted yet. */
export async function highlightIn(root) {
	const blocks = [...root.querySelectorAll('pre > code:not(.hljs)')];
	if (blocks.length === 0) return;
	const hljs = await load();
	if (!hljs) return;
	for (const code of blocks) {
		if (!code.isConnected || code.classList.contains('hljs')) continue;
		// An unknown language is guessed instead of refused.
		const lang = /(?:^|\s)language-(\S+)/.exec(code.className)?.[1];
		if (lang && !hljs.getLanguage(lang)) code.classList.remove(`language-${lang}`);
		hljs.highlightElement(code);
	}
}
