// settings.js: the System page (seed 004): system prompt, model,
// temperature, realtime model and voice, read from and saved through
// /api/settings; the models offered come from /v1/models.
import { errorMessage, request } from './api.js';

const FIELDS = ['system_prompt', 'model', 'temperature', 'realtime_model', 'voice'];

export class SettingsPage {
	constructor({ form, status, onSaved = () => {} }) {
		this.form = form;
		this.status = status;
		this.onSaved = onSaved;
		this.saveButton = form.querySelector('button[type="submit"]');
		form.addEventListener('submit', (e) => {
			e.preventDefault();
			this.save();
		});
		form.elements.temperature.addEventListener('input', () => this.showTemperature());
		form.elements.temperature_range.addEventListener('input', (e) => {
			form.elements.temperature.value = e.target.value;
			this.showTemperature();
		});
	}

	async load() {
		this.say('Loading…');
		this.form.setAttribute('aria-busy', 'true');
		try {
			this.fill(await request('GET', '/api/settings'));
			this.say('');
		} catch (err) {
			this.say(`Could not load the settings: ${errorMessage(err)}`, true);
		} finally {
			this.form.removeAttribute('aria-busy');
		}
	}

	fill(settings) {
		for (const name of FIELDS) {
			const field = this.form.elements[name];
			if (!field || settings[name] === undefined || settings[name] === null) continue;
			field.value = name === 'temperature' ? roundTemperature(settings[name]) : settings[name];
			field.removeAttribute('aria-invalid');
		}
		this.showTemperature();
	}

	showTemperature() {
		const value = this.form.elements.temperature.value;
		this.form.elements.temperature_range.value = value;
	}

	async save() {
		const els = this.form.elements;
		if (!this.form.reportValidity()) return;
		const body = {
			system_prompt: els.system_prompt.value,
			model: els.model.value.trim(),
			temperature: Number(els.temperature.value),
			realtime_model: els.realtime_model.value.trim(),
			voice: els.voice.value.trim(),
		};
		this.saveButton.disabled = true;
		this.say('Saving…');
		try {
			const saved = await request('PUT', '/api/settings', { body });
			this.fill(saved);
			this.onSaved(saved);
			this.say('Settings saved.');
		} catch (err) {
			// The server names the bad field ("temperature: …"): mark it.
			const field = FIELDS.find((name) => errorMessage(err).startsWith(name));
			if (field) els[field].setAttribute('aria-invalid', 'true');
			this.say(`Not saved: ${errorMessage(err)}`, true);
		} finally {
			this.saveButton.disabled = false;
		}
	}

	/** The Model field suggests the server's models (GET /v1/models). */
	offerModels(ids) {
		if (!ids?.length) return;
		const list = document.getElementById(this.form.elements.model.getAttribute('list'));
		list?.replaceChildren(...ids.map((id) => new Option('', id)));
	}

	say(text, isError = false) {
		this.status.textContent = text;
		this.status.classList.toggle('error', isError);
	}
}

// The server stores a double: 0.7 comes back as 0.69999999999999996.
const roundTemperature = (t) => String(Math.round(Number(t) * 100) / 100);
