// voice.js: talking to the model over WebRTC (seed 004's Voice section).
//
// Connect: the microphone (echo cancellation, noise suppression, automatic
// gain), an ephemeral secret from POST /api/session (the server's API key
// never reaches the browser), an RTCPeerConnection with the mic track and
// the "oai-events" data channel, and the SDP offer posted straight to the
// upstream address the server names (sdp_url) with the ephemeral secret.
// The model's audio plays in the <audio> element. Mute switches the mic
// track off without hanging up; Disconnect closes everything.
import { ApiError, request } from './api.js';

const DEFAULT_SDP_URL = 'https://api.openai.com/v1/realtime/calls';

class VoiceError extends Error {}

export class VoiceControls {
	constructor({ connect, mute, disconnect, status, audio }) {
		this.buttons = { connect, mute, disconnect };
		this.statusEl = status;
		this.audio = audio;
		this.state = 'idle'; // idle | starting | connecting | connected
		this.attempt = 0; // bumps on every connect/disconnect; stale work stops
		this.muted = false;
		this.pc = null;
		this.channel = null;
		this.mic = null;
		connect.addEventListener('click', () => this.connect());
		mute.addEventListener('click', () => this.toggleMute());
		disconnect.addEventListener('click', () => this.disconnect('Disconnected.'));
		this.update();
	}

	async connect() {
		if (this.state !== 'idle') return;
		const attempt = ++this.attempt;
		const current = () => attempt === this.attempt;
		this.setState('starting', 'Asking for the microphone…');
		try {
			if (!navigator.mediaDevices?.getUserMedia || typeof RTCPeerConnection === 'undefined') {
				throw new VoiceError('Voice needs a browser with WebRTC on a secure (https://) page.');
			}
			const mic = await getMicrophone();
			if (!current()) return stopTracks(mic);
			this.mic = mic;
			this.applyMute();

			this.say('Creating a voice session…');
			const session = await request('POST', '/api/session').catch((err) => {
				throw new VoiceError(
					err instanceof ApiError
						? `The voice service is unavailable: ${err.message}`
						: 'Cannot reach the server to start a voice session.',
				);
			});
			if (!current()) return undefined;
			const secret = session?.client_secret?.value ?? session?.value;
			if (!secret) throw new VoiceError('No ephemeral client_secret received from the server.');

			this.say('Negotiating the audio connection…');
			const pc = new RTCPeerConnection();
			this.pc = pc;
			pc.addEventListener('track', (e) => {
				this.audio.srcObject = e.streams[0] ?? new MediaStream([e.track]);
			});
			pc.addEventListener('connectionstatechange', () => this.onConnectionState(pc));
			for (const track of mic.getTracks()) pc.addTrack(track, mic);
			this.channel = pc.createDataChannel('oai-events');
			this.channel.addEventListener('message', (e) => this.onServerEvent(e.data));

			const offer = await pc.createOffer();
			await pc.setLocalDescription(offer);
			const answer = await postOffer(session.sdp_url || DEFAULT_SDP_URL, secret, offer.sdp);
			if (!current()) return undefined;
			await pc.setRemoteDescription({ type: 'answer', sdp: answer });
			if (!current()) return undefined;
			if (pc.connectionState !== 'connected') this.setState('connecting', 'Connecting audio…');
		} catch (err) {
			if (!current()) return undefined;
			const message =
				err instanceof VoiceError ? err.message : `The voice connection failed: ${err?.message || err}`;
			this.disconnect(message, true);
		}
		return undefined;
	}

	onConnectionState(pc) {
		if (pc !== this.pc) return;
		if (pc.connectionState === 'connected') this.setState('connected', 'Connected. Speak now.');
		else if (pc.connectionState === 'failed') this.disconnect('The audio connection failed. Try again.', true);
	}

	/** Events from the model on the data channel: surface errors only. */
	onServerEvent(raw) {
		let event;
		try {
			event = JSON.parse(raw);
		} catch {
			return;
		}
		if (event?.type === 'error') this.say(`Voice error: ${event.error?.message ?? 'unknown'}`, true);
	}

	toggleMute() {
		if (!this.mic) return;
		this.muted = !this.muted;
		this.applyMute();
		this.update();
	}

	applyMute() {
		for (const track of this.mic?.getAudioTracks() ?? []) track.enabled = !this.muted;
	}

	/** Hangs up; message says why (isError: shown as an alert). */
	disconnect(message = 'Disconnected.', isError = false) {
		this.attempt += 1;
		this.channel?.close();
		this.pc?.close();
		stopTracks(this.mic);
		this.channel = null;
		this.pc = null;
		this.mic = null;
		this.muted = false;
		this.audio.srcObject = null;
		this.setState('idle', message, isError);
	}

	setState(state, message, isError = false) {
		this.state = state;
		this.update();
		this.say(message, isError);
	}

	say(text, isError = false) {
		this.statusEl.textContent = text;
		this.statusEl.classList.toggle('error', isError);
		// Errors interrupt (role=alert); progress is announced politely.
		this.statusEl.setAttribute('role', isError ? 'alert' : 'status');
	}

	update() {
		const active = this.state !== 'idle';
		const { connect, mute, disconnect } = this.buttons;
		connect.disabled = active;
		disconnect.disabled = !active;
		mute.disabled = !active || !this.mic;
		mute.setAttribute('aria-pressed', String(this.muted));
		mute.textContent = this.muted ? 'Unmute mic' : 'Mute mic';
		// A focused button that just got disabled hands focus to the live one.
		if ([connect, mute, disconnect].some((b) => b.disabled && b === document.activeElement)) {
			(active ? disconnect : connect).focus();
		}
		this.statusEl.closest('.voice')?.setAttribute('data-state', this.state);
	}
}

async function getMicrophone() {
	try {
		return await navigator.mediaDevices.getUserMedia({
			audio: { echoCancellation: true, noiseSuppression: true, autoGainControl: true },
		});
	} catch (err) {
		if (err?.name === 'NotAllowedError' || err?.name === 'SecurityError') {
			throw new VoiceError('Microphone access was denied. Allow the microphone for this site, then Connect again.');
		}
		if (err?.name === 'NotFoundError' || err?.name === 'OverconstrainedError') {
			throw new VoiceError('No microphone was found. Plug one in, then Connect again.');
		}
		if (err?.name === 'NotReadableError') {
			throw new VoiceError('The microphone is in use by another program.');
		}
		throw new VoiceError(`Could not open the microphone: ${err?.message || err}`);
	}
}

/** POSTs the SDP offer to the realtime upstream; resolves the answer SDP. */
async function postOffer(url, secret, sdp) {
	let response;
	try {
		response = await fetch(url, {
			method: 'POST',
			body: sdp,
			headers: { Authorization: `Bearer ${secret}`, 'Content-Type': 'application/sdp' },
			credentials: 'omit',
			referrerPolicy: 'no-referrer',
		});
	} catch {
		throw new VoiceError(`Cannot reach the voice service at ${new URL(url).origin}.`);
	}
	const text = await response.text();
	if (!response.ok) {
		let detail = '';
		try {
			const body = JSON.parse(text);
			detail = body?.error?.message ?? body?.error ?? '';
		} catch {
			// not JSON
		}
		throw new VoiceError(
			`The voice service refused the connection (HTTP ${response.status})${detail ? `: ${detail}` : '.'}`,
		);
	}
	return text;
}

function stopTracks(stream) {
	for (const track of stream?.getTracks() ?? []) track.stop();
}
