// seed000.test.mjs: seed 000's own client examples, run UNCHANGED against the
// server: its two curl commands (through bash, over plain HTTP and HTTPS)
// and its vanilla-JS fetch reader (in Node, whose fetch is the browser's).
// Only the base URL (http://localhost:5000), the token (tu_token_jwt /
// `token`) and SESSION_ID are substituted.
//
// The text below is copied byte for byte from the seed document, including
// its mis-encoded Spanish ("Conversaci√≥n" is how the document itself spells
// "Conversación"): that is what a user copying it would send.
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync } from 'node:fs';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { EventSource as NodeEventSource } from 'eventsource';

import {
	BASE_URL,
	CA_CERT,
	HTTP_URL,
	REPO,
	SESSIONS,
	UUID_RE,
	api,
	closeDb,
	createSession,
	dbMessages,
	readSSE,
	registerAndLogin,
	run,
	sleep,
} from './lib.mjs';

after(closeDb);

const SEED_BASE = 'http://localhost:5000';
const SEED_TOKEN = 'tu_token_jwt';

// ---------------------------------------------------------------- verbatim

// "### Crear sesión" of the seed's "Curl Examples".
const CURL_CREATE = String.raw`curl -X POST http://localhost:5000/api/chat/realtime/sessions \
  -H "Authorization: Bearer tu_token_jwt" \
  -H "Content-Type: application/json" \
  -d '{
    "title": "Conversaci√≥n de prueba"
  }'`;

// "### Enviar mensaje con streaming" of the seed's "Curl Examples".
const CURL_STREAM = String.raw`curl -N -X POST http://localhost:5000/api/chat/realtime/sessions/SESSION_ID/stream \
  -H "Authorization: Bearer tu_token_jwt" \
  -H "Content-Type: application/json" \
  -d '{
    "content": "¬øC√≥mo puedo mejorar mi productividad?"
  }'`;

// The seed's "Usando JavaScript Vanilla" block, verbatim between the braces
// of this wrapper; compileSeedClient() takes it back out as source text.
// prettier-ignore
function seedVanillaClient() {
// Crear una sesi√≥n
async function createChatSession() {
  const response = await fetch('http://localhost:5000/api/chat/realtime/sessions', {
    method: 'POST',
    headers: {
      'Authorization': `Bearer ${token}`,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({
      title: 'Nueva conversaci√≥n'
    })
  });
  
  return await response.json();
}

// Enviar mensaje con streaming
function sendStreamingMessage(sessionId, message) {
  const eventSource = new EventSource(
    `http://localhost:5000/api/chat/realtime/sessions/${sessionId}/stream`,
    {
      headers: {
        'Authorization': `Bearer ${token}`,
        'Content-Type': 'application/json'
      }
    }
  );
  
  // En realidad, EventSource no soporta POST directamente
  // Usa fetch con streaming manual:
  
  fetch(`http://localhost:5000/api/chat/realtime/sessions/${sessionId}/stream`, {
    method: 'POST',
    headers: {
      'Authorization': `Bearer ${token}`,
      'Content-Type': 'application/json'
    },
    body: JSON.stringify({ content: message })
  })
  .then(response => {
    const reader = response.body.getReader();
    const decoder = new TextDecoder();
    
    function readStream() {
      reader.read().then(({ done, value }) => {
        if (done) {
          console.log('Stream terminado');
          return;
        }
        
        // Decodificar el chunk
        const chunk = decoder.decode(value, { stream: true });
        
        // Procesar cada evento SSE
        const events = chunk.split('\n\n');
        events.forEach(event => {
          if (event.startsWith('data: ')) {
            const data = JSON.parse(event.substring(6));
            
            switch(data.type) {
              case 'start':
                console.log('Iniciando respuesta...');
                break;
              case 'content':
                // Agregar contenido al UI
                appendToMessage(data.content);
                break;
              case 'done':
                console.log('Respuesta completa:', data.full_content);
                break;
              case 'error':
                console.error('Error:', data.error);
                break;
            }
          }
        });
        
        // Continuar leyendo
        readStream();
      });
    }
    
    readStream();
  });
}

// Funci√≥n auxiliar para agregar contenido al mensaje
function appendToMessage(content) {
  const messageElement = document.getElementById('current-message');
  messageElement.textContent += content;
}
}

// ----------------------------------------------------------------- harness

/** The seed client's source text (the wrapper's body), with the base URL swapped. */
function seedClientSource(base) {
	const src = seedVanillaClient.toString();
	const body = src.slice(src.indexOf('{') + 1, src.lastIndexOf('}'));
	return body.replaceAll(SEED_BASE, base);
}

/**
 * Compiles the seed's vanilla-JS client as a browser page would hold it:
 * `token` a page variable, `document` with the #current-message element,
 * EventSource (which the seed constructs and then abandons: here the npm
 * eventsource, which like a browser ignores the headers option), and a
 * console that records what the client logs.
 */
function compileSeedClient(base, token) {
	const logs = [];
	const errors = [];
	const element = { id: 'current-message', textContent: '' };
	const document = {
		getElementById(id) {
			assert.equal(id, 'current-message');
			return element;
		},
	};
	const sources = [];
	class EventSource extends NodeEventSource {
		constructor(...args) {
			super(...args);
			sources.push(this);
		}
	}
	const fakeConsole = {
		log: (...args) => logs.push(args),
		error: (...args) => errors.push(args),
	};
	const factory = new Function(
		'token',
		'document',
		'EventSource',
		'console',
		`${seedClientSource(base)}\nreturn { createChatSession, sendStreamingMessage, appendToMessage };`,
	);
	const client = factory(token, document, EventSource, fakeConsole);
	return {
		client,
		logs,
		errors,
		element,
		closeEventSources: () => sources.forEach((s) => s.close()),
	};
}

/**
 * Runs the seed's sendStreamingMessage (which returns nothing: it logs
 * 'Stream terminado' when the body ends) and waits for that log line.
 * Unhandled rejections (a JSON.parse of a split event, say) are collected.
 */
async function runSeedStream(page, sessionId, message, timeoutMs = 20000) {
	const rejections = [];
	const onRejection = (reason) => rejections.push(reason);
	process.on('unhandledRejection', onRejection);
	try {
		page.client.sendStreamingMessage(sessionId, message);
		const deadline = Date.now() + timeoutMs;
		while (!page.logs.some((l) => l[0] === 'Stream terminado') && rejections.length === 0) {
			if (Date.now() > deadline) break;
			await sleep(20);
		}
		await sleep(50); // let any late rejection surface
	} finally {
		process.off('unhandledRejection', onRejection);
		page.closeEventSources();
	}
	return rejections;
}

/** Replaces the seed's placeholders in a curl command. */
function seedCommand(cmd, base, token, sessionId) {
	let out = cmd.replaceAll(SEED_BASE, base).replaceAll(SEED_TOKEN, token);
	if (sessionId !== undefined) out = out.replaceAll('SESSION_ID', sessionId);
	return out;
}

/** Runs a seed curl command through bash; HTTPS trusts the test certificate. */
function runCurl(cmd) {
	return run('bash', ['-c', cmd], { env: { ...process.env, CURL_CA_BUNDLE: CA_CERT }, timeout: 30000 });
}

// ------------------------------------------------------------------- tests

let user;
before(async () => {
	user = await registerAndLogin('seed000');
});

test('the copies here are verbatim from the seed document', (t) => {
	const dir = path.resolve(REPO, '../shared/seeds');
	const file = existsSync(dir) && readdirSync(dir).find((f) => f.startsWith('000_'));
	if (!file) {
		t.skip(`seed document not found in ${dir}`);
		return;
	}
	const doc = readFileSync(path.join(dir, file), 'utf8');
	assert.ok(doc.includes(CURL_CREATE), 'CURL_CREATE differs from the seed');
	assert.ok(doc.includes(CURL_STREAM), 'CURL_STREAM differs from the seed');
	assert.ok(doc.includes(seedClientSource(SEED_BASE).replace(/^\n/, '')), 'the vanilla client differs from the seed');
});

for (const [label, base] of [
	['HTTP', HTTP_URL],
	['HTTPS', BASE_URL],
]) {
	describe(`seed curl commands over ${label}`, () => {
		let sessionId;

		test('create a session', async () => {
			const r = await runCurl(seedCommand(CURL_CREATE, base, user.token));
			assert.equal(r.code, 0, `curl: ${r.stderr}`);
			const session = JSON.parse(r.stdout);
			assert.match(session.id, UUID_RE);
			assert.equal(session.user_id, user.userId);
			assert.equal(session.title, 'Conversaci√≥n de prueba');
			for (const k of ['created_at', 'updated_at']) assert.match(session[k], /^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$/);
			sessionId = session.id;
		});

		test('stream a message with curl -N', async () => {
			assert.ok(sessionId, 'needs the session of the previous test');
			const r = await runCurl(seedCommand(CURL_STREAM, base, user.token, sessionId));
			assert.equal(r.code, 0, `curl: ${r.stderr}`);
			const events = [];
			for await (const ev of readSSE(new Response(r.stdout))) events.push(JSON.parse(ev.data));
			const types = events.map((e) => e.type);
			assert.equal(types[0], 'start', r.stdout.slice(0, 300));
			assert.equal(events[0].session_id, sessionId);
			assert.equal(types.at(-1), 'done', r.stdout.slice(-300));
			const text = events
				.filter((e) => e.type === 'content')
				.map((e) => e.content)
				.join('');
			const expected = 'You said: ¬øC√≥mo puedo mejorar mi productividad?';
			assert.equal(text, expected);
			assert.equal(events.at(-1).full_content, expected);
			const rows = await dbMessages(sessionId);
			assert.deepEqual(
				rows.map((m) => [m.role, m.content, m.status]),
				[
					['user', '¬øC√≥mo puedo mejorar mi productividad?', 'complete'],
					['assistant', expected, 'complete'],
				],
			);
		});
	});

	describe(`seed vanilla-JS client over ${label}`, () => {
		test('createChatSession', async () => {
			const page = compileSeedClient(base, user.token);
			const session = await page.client.createChatSession();
			assert.match(session.id, UUID_RE);
			assert.equal(session.title, 'Nueva conversaci√≥n');
			const got = await api('GET', `${SESSIONS}/${session.id}`, { token: user.token });
			assert.equal(got.status, 200);
		});

		for (const [what, message] of [
			['a sentence', '¿Cómo puedo ser más productivo?'],
			['tokens 40 ms apart (one event per read)', 'slow [[tokens=12]] [[delay=40]]'],
			['many tokens at once (several events per read)', 'fast [[tokens=300]] [[delay=0]]'],
		]) {
			test(`sendStreamingMessage: ${what}`, async () => {
				const page = compileSeedClient(base, user.token);
				const session = await createSession(user.token, { title: 'seed client' });
				const rejections = await runSeedStream(page, session.id, message);
				assert.deepEqual(rejections.map(String), [], 'the seed client threw');
				assert.deepEqual(page.errors, [], 'the seed client logged an error');
				assert.ok(
					page.logs.some((l) => l[0] === 'Stream terminado'),
					`'Stream terminado' not reached; logs: ${JSON.stringify(page.logs)}`,
				);
				const started = page.logs.filter((l) => l[0] === 'Iniciando respuesta...');
				assert.equal(started.length, 1, `'Iniciando respuesta...' logged ${started.length} times`);
				const complete = page.logs.filter((l) => l[0] === 'Respuesta completa:');
				assert.equal(complete.length, 1, `'Respuesta completa:' logged ${complete.length} times; logs: ${JSON.stringify(page.logs)}`);
				// What the page shows is the whole reply, as the done event has it.
				assert.ok(complete[0][1].length > 0, 'a non-empty reply');
				assert.equal(page.element.textContent, complete[0][1], 'the text appended to #current-message');
				// And that is the reply PostgreSQL holds.
				const rows = await dbMessages(session.id);
				const reply = rows.find((r) => r.role === 'assistant');
				assert.ok(reply, 'the reply is stored');
				assert.equal(reply.status, 'complete');
				assert.equal(reply.content, page.element.textContent);
			});
		}
	});
}
