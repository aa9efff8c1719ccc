// Renders every ```mermaid block of the Markdown files named on the command line to PNG with a
// headless Chromium, to look at a diagram the way a reader will see it (GitHub renders the same
// Mermaid). Not part of the tests, which only parse (check-diagrams.mjs) and need no browser.
//   node docs/node/render-diagrams.mjs OUT_DIR docs/architecture.md ...
// Needs Chromium (Debian: apt-get install chromium; CHROMIUM=/path overrides /usr/bin/chromium).
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, readFileSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { basename, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';

const [outDir, ...files] = process.argv.slice(2);
if (!outDir || files.length === 0) {
  console.error('usage: node render-diagrams.mjs OUT_DIR FILE.md...');
  process.exit(2);
}
const chromium = process.env.CHROMIUM ?? '/usr/bin/chromium';
const script = resolve(fileURLToPath(import.meta.url), '..', 'node_modules', 'mermaid', 'dist', 'mermaid.min.js');
const FENCE = /^```mermaid[ \t]*\n([\s\S]*?)^```[ \t]*$/gm;
const escape = (text) => text.replace(/&/g, '&amp;').replace(/</g, '&lt;');

mkdirSync(outDir, { recursive: true });
const work = mkdtempSync(join(tmpdir(), 'diagrams-'));
for (const file of files) {
  [...readFileSync(file, 'utf8').matchAll(FENCE)].forEach((match, index) => {
    const name = `${basename(file, '.md')}-${index + 1}`;
    const page = join(work, `${name}.html`);
    writeFileSync(page, `<!doctype html><html><head><meta charset="utf-8"></head><body style="margin:16px;background:#fff">
<pre class="mermaid">${escape(match[1])}</pre>
<script src="file://${script}"></script>
<script>mermaid.initialize({startOnLoad: true, securityLevel: 'strict'});</script></body></html>`);
    execFileSync(chromium, ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync', '--hide-scrollbars',
      `--user-data-dir=${join(work, 'profile')}`, '--allow-file-access-from-files', '--virtual-time-budget=5000',
      '--window-size=1600,1100', `--screenshot=${resolve(outDir, `${name}.png`)}`, `file://${page}`],
    { stdio: 'ignore', timeout: 120000 });
    console.log(join(outDir, `${name}.png`));
  });
}
