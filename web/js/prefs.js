// prefs.js: settings of this browser only (localStorage), as opposed to the
// account's settings on the server (/api/settings).
const KEY = 'chat.prefs';

function read() {
	try {
		return JSON.parse(localStorage.getItem(KEY) ?? '{}') ?? {};
	} catch {
		return {};
	}
}

/** Whether new chats are named by a model summary (default: yes). */
export const titleSummaries = () => read().titleSummaries !== false;

export function setTitleSummaries(on) {
	try {
		localStorage.setItem(KEY, JSON.stringify({ ...read(), titleSummaries: Boolean(on) }));
	} catch {
		// storage refused (private mode): the default stays
	}
}
