// Checks every ```mermaid block of the Markdown files named on the command line with Mermaid's own
// parser, the one GitHub and the Mermaid CLI render with. Prints one JSON document:
//   {"mermaid": "<version>", "diagrams": [{"file", "line", "ok", "type", "error"}]}
// `line` is the line of the opening fence. Exit status 0 when every diagram parses, 1 otherwise,
// 2 on a usage error. Run by tests/unit/test_diagrams.py; by hand: node docs/node/check-diagrams.mjs docs/*.md
//
// Mermaid sanitizes labels with DOMPurify, which needs a DOM: jsdom provides one. Parsing needs no
// layout, so no browser is involved. For Gantt charts the tasks are also resolved (dates, durations),
// which Mermaid otherwise only does while drawing.
import { readFileSync } from 'node:fs';
import { createRequire } from 'node:module';
import { JSDOM } from 'jsdom';

const dom = new JSDOM('<!doctype html><html><body></body></html>');
globalThis.window = dom.window;
globalThis.document = dom.window.document;
const { default: mermaid } = await import('mermaid');
mermaid.initialize({ startOnLoad: false, securityLevel: 'strict' });

const FENCE = /^```mermaid[ \t]*\n([\s\S]*?)^```[ \t]*$/gm;

function blocks(file) {
  const text = readFileSync(file, 'utf8');
  return [...text.matchAll(FENCE)].map((match) => ({
    file,
    line: text.slice(0, match.index).split('\n').length,
    source: match[1],
  }));
}

async function check({ file, line, source }) {
  try {
    const diagram = await mermaid.mermaidAPI.getDiagramFromText(source);
    if (typeof diagram.db.getTasks === 'function') diagram.db.getTasks();
    return { file, line, ok: true, type: diagram.type, error: null };
  } catch (error) {
    return { file, line, ok: false, type: null, error: String(error?.message ?? error) };
  }
}

const files = process.argv.slice(2);
if (files.length === 0) {
  console.error('usage: node check-diagrams.mjs FILE.md...');
  process.exit(2);
}
const diagrams = [];
for (const block of files.flatMap(blocks)) diagrams.push(await check(block));
const { version } = createRequire(import.meta.url)('mermaid/package.json');
console.log(JSON.stringify({ mermaid: version, diagrams }, null, 2));
process.exit(diagrams.every((d) => d.ok) ? 0 : 1);
