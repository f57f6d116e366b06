// snippets.mjs: runs a seed's client snippet as its own Node process,
// unchanged but for the URL (and a token placeholder where the seed has
// one), and collects what it prints.
//
// Snippets are written under tests/node_modules/.cache/ so that both their
// `require('socket.io-client')` and `import io from 'socket.io-client'`
// resolve to the pinned client. Browser snippets that use the global `io`
// (the <script> tag of seed 001) get a one-line prelude defining it.
import { spawn } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import path from 'node:path';

import { REPO } from '../e2e/lib.mjs';

const DIR = path.join(REPO, 'tests/node_modules/.cache/chat-gateway-snippets');
let seq = 0;

/**
 * Runs code (ext 'cjs' or 'mjs') until its output matches `until`, then
 * kills it. Resolves {stdout, stderr, matched}. env: extra environment
 * (e.g. an X-Forwarded-For is not possible from a snippet: they share the
 * test's address).
 */
export function runSnippet(code, { ext = 'cjs', until, timeout = 20000, env = {} } = {}) {
	mkdirSync(DIR, { recursive: true });
	seq += 1;
	const file = path.join(DIR, `snippet-${process.pid}-${seq}.${ext}`);
	writeFileSync(file, code);
	return new Promise((resolve) => {
		const child = spawn(process.execPath, [file], {
			env: { ...process.env, ...env },
			stdio: ['ignore', 'pipe', 'pipe'],
		});
		let stdout = '';
		let stderr = '';
		let matched = false;
		const finish = () => {
			clearTimeout(timer);
			if (child.exitCode === null) child.kill('SIGKILL');
		};
		const check = () => {
			if (!matched && until !== undefined && until.test(stdout + stderr)) {
				matched = true;
				// Let the lines that follow the marker arrive too.
				setTimeout(finish, 200);
			}
		};
		child.stdout.on('data', (b) => {
			stdout += b;
			check();
		});
		child.stderr.on('data', (b) => {
			stderr += b;
			check();
		});
		const timer = setTimeout(finish, timeout);
		child.on('exit', () => {
			clearTimeout(timer);
			rmSync(file, { force: true });
			resolve({ stdout, stderr, matched });
		});
	});
}

/** The prelude for browser snippets: the global `io` of the <script> tag. */
export const BROWSER_PRELUDE = "globalThis.io = require('socket.io-client');\n";
