// auth.js: log in, register, log out, and where the access token lives.
//
// Where the token is kept, and why: sessionStorage.
// - It survives a reload of the tab (the user does not have to log in again
//   after F5) but not the closing of the tab or the browser, so a token
//   does not linger on a shared computer the way localStorage would keep it
//   for weeks.
// - It belongs to one tab and one origin: other sites cannot read it, and
//   unlike a cookie the browser never attaches it to requests on its own,
//   so cross-site request forgery has nothing to ride on.
// - Script running in the page could read it, so the page runs none but its
//   own: the Content-Security-Policy allows only our files, and model output
//   is rendered as inert text nodes (markdown.js), never as HTML.
// The token is also dropped when it expires, when the server answers 401,
// and on log out.
import { request } from './api.js';

const STORAGE_KEY = 'chat.auth';

let current = readStored();

function readStored() {
	try {
		const stored = JSON.parse(sessionStorage.getItem(STORAGE_KEY) ?? 'null');
		if (stored && typeof stored.token === 'string' && stored.expiresAt > Date.now()) return stored;
	} catch {
		// corrupt or unavailable storage: logged out
	}
	sessionStorage.removeItem(STORAGE_KEY);
	return null;
}

/** The bearer token, or null when logged out or expired. */
export function token() {
	if (current && current.expiresAt <= Date.now()) clearAuth();
	return current?.token ?? null;
}

export function username() {
	return current?.username ?? '';
}

export function clearAuth() {
	current = null;
	sessionStorage.removeItem(STORAGE_KEY);
}

export async function login(name, password) {
	const answer = await request('POST', '/api/auth/login', {
		body: { username: name, password },
		auth: false,
	});
	current = {
		token: answer.access_token,
		username: name,
		userId: answer.user_id ?? null,
		// A minute early, so a request never leaves with a dying token.
		expiresAt: Date.now() + Math.max(60, Number(answer.expires_in) || 3600) * 1000 - 60000,
	};
	sessionStorage.setItem(STORAGE_KEY, JSON.stringify(current));
	return current;
}

export async function register(name, password, email) {
	const body = { username: name, password };
	if (email) body.email = email;
	return request('POST', '/api/auth/register', { body, auth: false });
}

/** The logged-in user as the server sees it (checks the token too). */
export async function me() {
	const user = await request('GET', '/api/auth/me');
	if (current && user?.username && current.username !== user.username) {
		current.username = user.username;
		sessionStorage.setItem(STORAGE_KEY, JSON.stringify(current));
	}
	return user;
}

/** Log out: the token is a stateless JWT, so forgetting it is the logout. */
export function logout() {
	clearAuth();
}
