// app.js: starts the UI and wires the parts together: the login screen,
// the pages (#/chat, #/chat/<id>, #/system), the sidebar (a drawer on
// small screens), and the rename/delete dialog.
import { configureApi, errorMessage, request } from './api.js';
import * as auth from './auth.js';
import { ChatPage } from './chat.js';
import { setTitleSummaries, titleSummaries } from './prefs.js';
import { DEFAULT_TITLE, SessionList, deleteSession, renameSession } from './sessions.js';
import { SettingsPage } from './settings.js';
import { VoiceControls } from './voice.js';

const $ = (id) => document.getElementById(id);

// --------------------------------------------------------------- login

const authView = $('auth-view');
const appView = $('app-view');
const loginForm = $('login-form');
const registerForm = $('register-form');

function showAuth(message = '') {
	appView.hidden = true;
	authView.hidden = false;
	showForm(loginForm);
	$('login-error').textContent = message;
	document.title = 'Log in · Chat';
}

function showForm(form) {
	loginForm.hidden = form !== loginForm;
	registerForm.hidden = form !== registerForm;
	for (const el of authView.querySelectorAll('.form-error')) el.textContent = '';
	form.querySelector('input')?.focus();
}

$('show-register').addEventListener('click', () => showForm(registerForm));
$('show-login').addEventListener('click', () => showForm(loginForm));

/** Runs a form's async action with its button disabled and errors shown. */
async function submitting(form, errorEl, action) {
	const button = form.querySelector('button[type="submit"]');
	button.disabled = true;
	errorEl.textContent = '';
	try {
		await action();
	} catch (err) {
		errorEl.textContent = errorMessage(err);
	} finally {
		button.disabled = false;
	}
}

loginForm.addEventListener('submit', (e) => {
	e.preventDefault();
	const { username, password } = loginForm.elements;
	submitting(loginForm, $('login-error'), async () => {
		await auth.login(username.value.trim(), password.value);
		password.value = '';
		await startApp();
	});
});

registerForm.addEventListener('submit', (e) => {
	e.preventDefault();
	const { username, email, password } = registerForm.elements;
	submitting(registerForm, $('register-error'), async () => {
		const name = username.value.trim();
		await auth.register(name, password.value, email.value.trim());
		await auth.login(name, password.value);
		password.value = '';
		await startApp();
	});
});

// ------------------------------------------------------------ the app

const sessions = new SessionList({
	list: $('session-list'),
	empty: $('sessions-empty'),
	more: $('sessions-more'),
	search: $('session-search'),
	onRename: (session) => askRename(session),
	onDelete: (session) => askDelete(session),
});

const chat = new ChatPage({
	els: {
		title: $('chat-title'),
		transcript: $('transcript'),
		scroller: $('transcript-scroller'),
		empty: $('transcript-empty'),
		jump: $('jump-latest'),
		composer: $('composer'),
		input: $('message-input'),
		send: $('send'),
		stop: $('stop'),
		copy: $('copy-transcript'),
		download: $('download-transcript'),
		downloadMenu: $('download-menu'),
		modelPicker: $('model-picker'),
		older: $('older-status'),
		status: $('chat-status'),
	},
	sessions,
	onSessionOpened: (id) => {
		// Name the new session in the URL without reloading it.
		history.replaceState(null, '', `#/chat/${encodeURIComponent(id)}`);
	},
});

const settings = new SettingsPage({
	form: $('settings-form'),
	status: $('settings-status'),
	onSaved: (saved) => chat.settingsChanged(saved),
});

const summaries = $('title-summaries');
summaries.checked = titleSummaries();
summaries.addEventListener('change', () => setTitleSummaries(summaries.checked));

const voice = new VoiceControls({
	connect: $('voice-connect'),
	mute: $('voice-mute'),
	disconnect: $('voice-disconnect'),
	status: $('voice-status'),
	audio: $('remote-audio'),
});

configureApi({
	getToken: () => auth.token(),
	onUnauthorized: () => logout('Your session has expired. Please log in again.'),
});

let started = false;

async function startApp() {
	const user = await auth.me();
	$('user-name').textContent = user?.username ?? auth.username();
	authView.hidden = true;
	appView.hidden = false;
	started = true;
	try {
		await sessions.load();
	} catch (err) {
		chat.say(`Could not load your chats: ${errorMessage(err)}`, true);
	}
	showCapabilities(); // the voice panel, when the server has voice
	chat.loadModels().then((ids) => settings.offerModels(ids));
	await route();
	if (!location.hash.startsWith('#/system')) $('message-input').focus();
}

/** Shows what the server offers (GET /api/config): the voice panel only when voice is configured. */
async function showCapabilities() {
	const panel = $('voice-panel');
	let config = null;
	try {
		config = await request('GET', '/api/config');
	} catch {
		// an older server without /api/config: voice as before
		config = { voice: true };
	}
	panel.hidden = !config?.voice;
	// Open on a wide screen; on a phone a one-line summary until asked for.
	if (!narrow.matches) panel.open = true;
}

function logout(message = '') {
	if (!started && !message) return;
	started = false;
	voice.disconnect('Not connected.');
	chat.openBlank();
	auth.logout();
	closeSidebar(false);
	history.replaceState(null, '', location.pathname);
	showAuth(message);
}

$('logout').addEventListener('click', () => logout('You have logged out.'));

// -------------------------------------------------------------- pages

const chatView = $('chat-view');
const systemView = $('system-view');

// The skip link moves focus without touching the URL (the hash is the route).
document.querySelector('.skip-link').addEventListener('click', (e) => {
	e.preventDefault();
	(chatView.hidden ? $('system-heading') : $('message-input')).focus();
});

async function route() {
	if (!started) return;
	const hash = location.hash;
	const system = hash === '#/system';
	chatView.hidden = system;
	systemView.hidden = !system;
	$(system ? 'nav-system' : 'nav-chat').setAttribute('aria-current', 'page');
	$(system ? 'nav-chat' : 'nav-system').removeAttribute('aria-current');
	// Chosen from the phone drawer: the drawer closes, focus goes to the page.
	if (closeSidebar(false)) (system ? $('system-heading') : $('message-input')).focus();

	if (system) {
		document.title = 'System · Chat';
		await settings.load();
		return;
	}
	const m = /^#\/chat\/([0-9a-fA-F-]{36})$/.exec(hash);
	if (m) {
		await chat.open(m[1].toLowerCase());
	} else if (!chat.sessionId && sessions.sessions.length > 0 && hash !== '#/chat/new') {
		// Plain #/chat: the most recent chat.
		history.replaceState(null, '', `#/chat/${sessions.sessions[0].id}`);
		await chat.open(sessions.sessions[0].id);
	} else if (hash === '#/chat/new' || !chat.sessionId) {
		chat.openBlank();
		$('message-input').focus();
	} else {
		history.replaceState(null, '', `#/chat/${chat.sessionId}`);
	}
	chat.setTitle(chat.session?.title ?? DEFAULT_TITLE);
}

window.addEventListener('hashchange', () => route());

$('new-chat').addEventListener('click', () => {
	if (location.hash === '#/chat/new') chat.openBlank();
	else location.hash = '#/chat/new';
	closeSidebar(false);
});

// ------------------------------------------- sidebar as a phone drawer

const menuToggle = $('menu-toggle');
const sidebar = $('sidebar');
const backdrop = $('backdrop');
const narrow = window.matchMedia('(max-width: 48rem)');

function openSidebar() {
	appView.classList.add('sidebar-open');
	menuToggle.setAttribute('aria-expanded', 'true');
	backdrop.hidden = false;
	$('main').inert = true; // behind the drawer: out of reach until it closes
	sidebar.querySelector('a[aria-current], a, button')?.focus();
}

/** Closes the drawer; true if it was open. */
function closeSidebar(restoreFocus = true) {
	if (!appView.classList.contains('sidebar-open')) return false;
	appView.classList.remove('sidebar-open');
	menuToggle.setAttribute('aria-expanded', 'false');
	backdrop.hidden = true;
	$('main').inert = false;
	if (restoreFocus) menuToggle.focus();
	return true;
}

menuToggle.addEventListener('click', () => {
	if (appView.classList.contains('sidebar-open')) closeSidebar();
	else openSidebar();
});
backdrop.addEventListener('click', () => closeSidebar());
document.addEventListener('keydown', (e) => {
	if (e.key === 'Escape' && narrow.matches && appView.classList.contains('sidebar-open')) closeSidebar();
});
narrow.addEventListener('change', () => closeSidebar(false));

// ---------------------------------------------- rename / delete dialog

const dialog = $('dialog');
const dialogForm = $('dialog-form');

/**
 * Opens the modal dialog (focus is trapped in it, Escape cancels) and
 * resolves with the input's value (rename), true (confirm) or null.
 */
function ask({ title, text = '', confirm, value = null, danger = false }) {
	$('dialog-title').textContent = title;
	$('dialog-text').textContent = text;
	$('dialog-text').hidden = !text;
	const field = $('dialog-field');
	const input = $('dialog-input');
	field.hidden = value === null;
	input.required = value !== null;
	input.value = value ?? '';
	const ok = $('dialog-ok');
	ok.textContent = confirm;
	ok.classList.toggle('danger', danger);
	dialog.returnValue = '';
	const opener = document.activeElement;
	dialog.showModal();
	(value === null ? ok : input).focus();
	if (value !== null) input.select();
	return new Promise((resolve) => {
		dialog.addEventListener(
			'close',
			() => {
				opener?.focus?.();
				if (dialog.returnValue !== 'ok') resolve(null);
				else resolve(value === null ? true : input.value.trim());
			},
			{ once: true },
		);
	});
}

$('dialog-cancel').addEventListener('click', () => dialog.close('cancel'));
dialogForm.addEventListener('submit', (e) => {
	e.preventDefault();
	if (dialogForm.reportValidity()) dialog.close('ok');
});

async function askRename(session) {
	const title = await ask({ title: 'Rename chat', confirm: 'Rename', value: session.title || DEFAULT_TITLE });
	if (!title || title === session.title) return;
	try {
		const renamed = await renameSession(session.id, title);
		sessions.upsert(renamed);
		chat.renamed(renamed);
	} catch (err) {
		chat.say(`Could not rename the chat: ${errorMessage(err)}`, true);
	}
}

async function askDelete(session) {
	const yes = await ask({
		title: 'Delete chat?',
		text: `“${session.title || DEFAULT_TITLE}” and all its messages will be deleted. This cannot be undone.`,
		confirm: 'Delete',
		danger: true,
	});
	if (!yes) return;
	try {
		await deleteSession(session.id);
		sessions.remove(session.id);
		if (chat.sessionId === session.id) {
			chat.openBlank();
			location.hash = '#/chat/new';
		}
		chat.say('Chat deleted.');
	} catch (err) {
		chat.say(`Could not delete the chat: ${errorMessage(err)}`, true);
	}
}

// --------------------------------------------------------------- boot

async function boot() {
	if (!auth.token()) {
		showAuth();
		return;
	}
	try {
		await startApp();
	} catch (err) {
		auth.logout();
		showAuth(err?.status === 401 ? 'Your session has expired. Please log in again.' : errorMessage(err));
	}
}

boot();
