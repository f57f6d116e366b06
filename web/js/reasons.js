// reasons.js: why a reply did not complete, in words, from the reason code
// the server stores with it (messages[].error; the stream's error `code`).
// The same sentences as the server's live error events.
const REASONS = {
	worker_died: 'The server generating the reply stopped',
	client_gone: 'The client went away',
	cancelled: 'The reply was cancelled',
	stream_max_duration: 'The reply reached the maximum stream duration',
	upstream_dropped: 'The connection to the AI service was lost',
	upstream_idle_timeout: 'The AI service stopped answering',
	upstream_stream_error: 'The AI service reported an error',
	upstream_protocol_error: 'The AI service sent a malformed stream',
	upstream_unreachable: 'The AI service is unreachable',
	upstream_http_error: 'The AI service failed',
	upstream_connect_timeout: 'Timed out connecting to the AI service',
	upstream_first_token_timeout: 'The AI service did not start answering in time',
	replay_failed: 'The reply can no longer be read',
};

/** The sentence for a stored reply's status and reason code ('' for none). */
export function reasonText(status, code) {
	if (status === 'complete' || status === 'streaming' || status === 'cancelled') return '';
	if (code && REASONS[code]) return REASONS[code];
	if (status === 'error') return 'The reply failed';
	if (status === 'interrupted') return 'The reply was interrupted';
	return '';
}
