// api.js: the one place that talks HTTP to the backend. It adds the bearer
// token, turns error answers ({"error": "..."}) into ApiError, and reports a
// 401 once so the app can send the user back to the login screen.

export class ApiError extends Error {
	constructor(status, message, body = null) {
		super(message);
		this.name = 'ApiError';
		this.status = status;
		this.body = body;
	}
}

let getToken = () => null;
let onUnauthorized = () => {};

/** getToken(): the current token or null; onUnauthorized(): a 401 came back. */
export function configureApi(options) {
	({ getToken, onUnauthorized } = { getToken, onUnauthorized, ...options });
}

/**
 * One request. opts: body (sent as JSON), headers, signal, auth (default
 * true: send the token, and treat 401 as "logged out"), raw (return the
 * Response unread once it is known to be OK, e.g. for streams).
 */
export async function request(method, path, opts = {}) {
	const { body, signal, auth = true, raw = false } = opts;
	const headers = { Accept: 'application/json', ...(opts.headers ?? {}) };
	const token = auth ? getToken() : null;
	if (token) headers.Authorization = `Bearer ${token}`;
	if (body !== undefined) headers['Content-Type'] = 'application/json';
	const response = await fetch(path, {
		method,
		headers,
		body: body === undefined ? undefined : JSON.stringify(body),
		signal,
		cache: 'no-store',
		credentials: 'same-origin',
	});
	if (response.status === 401 && auth) {
		await response.body?.cancel();
		onUnauthorized();
		throw new ApiError(401, 'Your session has expired. Please log in again.');
	}
	if (!response.ok) throw await toError(response);
	if (raw) return response;
	if (response.status === 204) return null;
	const text = await response.text();
	return text ? JSON.parse(text) : null;
}

/** An ApiError from a failed response, with the server's own message. */
export async function toError(response) {
	let body = null;
	try {
		body = JSON.parse(await response.text());
	} catch {
		// not JSON (a proxy's HTML page, an empty body): keep the status
	}
	let message = typeof body?.error === 'string' ? body.error : body?.error?.message;
	if (!message) message = `The server answered ${response.status} ${response.statusText}`.trim();
	if (response.status === 429) {
		const retry = response.headers.get('Retry-After');
		message = `Too many requests. ${retry ? `Try again in ${retry} s.` : 'Try again later.'}`;
	}
	return new ApiError(response.status, message, body);
}

/** A sentence for the user, whatever went wrong. */
export function errorMessage(err) {
	if (err instanceof ApiError) return err.message;
	if (err instanceof TypeError) return 'Cannot reach the server. Check your connection and try again.';
	return err?.message || 'Something went wrong.';
}
