#!/usr/bin/env node
// Fails when SQL text appears in a string or template literal outside the places that own SQL:
// repositories (`*.repository.ts`) and `src/database/**` (data source, migrations, embedded
// server, LISTEN/NOTIFY listener). Services build no SQL (docs: DESIGN.md "Layout", STYLE.md).
//
// Usage: node scripts/sql-outside-repositories.mjs [root]   (root defaults to the cwd)
// Prints each hit as file:line and exits 1 when there is any.
import { readdirSync, readFileSync } from 'node:fs';
import { join, relative, sep } from 'node:path';

const root = process.argv[2] ?? process.cwd();

/** Files that may hold SQL although they are not repositories, each with the reason. */
const ALLOW = {
  'src/modules/tasks/backoff.ts':
    'backoffSql is the SQL twin of the backoff formula beside it, unit-tested side by side so the two cannot drift; only repositories call it',
};

/** Heuristics, case-sensitive: SQL keywords are written upper case here, prose is not. */
const PATTERNS = [
  [/\bSELECT\s+(\*|DISTINCT\b|[a-z_][\w.]*\s*(,|\bFROM\b|\bAS\b|\()|count\(|\d)/, 'SELECT'],
  [/\bSELECT\b[\s\S]*\bFROM\b/, 'SELECT … FROM'],
  [/\bUPDATE\s+[a-z_][\w.]*(\s+[a-z_]\w*)?\s+SET\b/, 'UPDATE … SET'],
  [/\bINSERT\s+INTO\b/, 'INSERT INTO'],
  [/\bDELETE\s+FROM\b/, 'DELETE FROM'],
  [/\bWHERE\s+[a-z_(]/, 'WHERE'],
  [/\bRETURNING\s+[a-z_*]/, 'RETURNING'],
  [/\bON CONFLICT\b/, 'ON CONFLICT'],
  [/\b(TRUNCATE|ANALYZE|VACUUM)\s+[a-z_]/, 'maintenance statement'],
  // A statement starts the literal (or follows `;`); "LISTEN/NOTIFY wake-ups" in prose does not.
  [/(^|;)\s*(LISTEN|UNLISTEN|NOTIFY)(\s+[a-z_"]|\s*$)/, 'LISTEN/NOTIFY'],
  [/\bpg_notify\s*\(/, 'pg_notify'],
  [/\bstatus\s+(NOT\s+)?IN\s*\(/i, 'status IN ('],
  [/\bstatus\s*=\s*(ANY\s*\(|'[a-z_]+')/, 'status = …'],
  [/\b[a-z_]+\s*=\s*(t\.[a-z_]+\b|now\(\)|COALESCE\(|GREATEST\(|CASE WHEN\b)/, 'SET list'],
  [
    /::(jsonb|text\[\]|uuid\[\]|int|timestamptz)\b|\bjsonb_build_object\(|\bmake_interval\(|\binterval '\d/,
    'SQL cast or function',
  ],
  // A placeholder follows an operator, a paren, a comma or a keyword (a replace() pattern's `$1` does not).
  [/([=(,<>]\s*|\b(LIMIT|OFFSET|AND|OR|THEN|ELSE|VALUES|ANY)\s*)\$\d+\b|\$\d+::\w+/, '$n parameter'],
];

function walk(dir, out = []) {
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    const path = join(dir, entry.name);
    if (entry.isDirectory()) walk(path, out);
    else if (entry.name.endsWith('.ts')) out.push(path);
  }
  return out;
}

/**
 * The string and template literals of a TypeScript source, as [offset, text] pairs. Template
 * interpolations are blanked out of the text (their own literals are scanned on their own);
 * comments and regex literals are skipped well enough for this code base.
 */
function literals(src) {
  const found = [];
  let i = 0;
  const n = src.length;
  const braces = []; // for each open `${`, the brace depth at which it closes
  let depth = 0;
  const readQuoted = (quote) => {
    const start = i++;
    let text = '';
    while (i < n && src[i] !== quote && src[i] !== '\n') {
      if (src[i] === '\\') {
        text += src[i + 1] ?? '';
        i += 2;
      } else text += src[i++];
    }
    i++;
    found.push([start, text]);
  };
  // Reads template text from i (just after ` or }) up to the closing ` or the next ${.
  const readTemplate = (start) => {
    let text = '';
    while (i < n) {
      if (src[i] === '\\') {
        text += src[i + 1] ?? '';
        i += 2;
      } else if (src[i] === '`') {
        i++;
        found.push([start, text]);
        return;
      } else if (src[i] === '$' && src[i + 1] === '{') {
        i += 2;
        found.push([start, text]);
        braces.push(depth);
        depth++;
        return;
      } else text += src[i++];
    }
  };
  while (i < n) {
    const c = src[i];
    if (c === '/' && src[i + 1] === '/') {
      while (i < n && src[i] !== '\n') i++;
    } else if (c === '/' && src[i + 1] === '*') {
      const end = src.indexOf('*/', i + 2);
      i = end < 0 ? n : end + 2;
    } else if (c === "'" || c === '"') {
      readQuoted(c);
    } else if (c === '`') {
      i++;
      readTemplate(i - 1);
    } else if (c === '{') {
      depth++;
      i++;
    } else if (c === '}') {
      depth--;
      i++;
      if (braces.length && braces[braces.length - 1] === depth) {
        braces.pop();
        readTemplate(i - 1);
      }
    } else if (c === '/' && /[=(,:!&|?;{}[\n]\s*$/.test(src.slice(Math.max(0, i - 20), i))) {
      // A regex literal: skip to its unescaped closing slash (outside a character class).
      i++;
      let inClass = false;
      while (i < n && src[i] !== '\n') {
        if (src[i] === '\\') i += 2;
        else if (src[i] === '/' && !inClass) break;
        else {
          if (src[i] === '[') inClass = true;
          else if (src[i] === ']') inClass = false;
          i++;
        }
      }
      i++;
    } else i++;
  }
  return found;
}

const lineOf = (src, offset) => src.slice(0, offset).split('\n').length;

const files = walk(join(root, 'src'))
  .map((f) => relative(root, f).split(sep).join('/'))
  .filter((f) => !f.endsWith('.repository.ts') && !f.startsWith('src/database/') && !(f in ALLOW))
  .sort();

const hits = [];
for (const file of files) {
  const src = readFileSync(join(root, file), 'utf8');
  const seen = new Set();
  for (const [offset, text] of literals(src)) {
    for (const [pattern, name] of PATTERNS) {
      const m = pattern.exec(text);
      if (!m) continue;
      const line = lineOf(src, offset) + text.slice(0, m.index).split('\n').length - 1;
      const key = `${line}`;
      if (seen.has(key)) continue;
      seen.add(key);
      hits.push(`${file}:${line}: ${name}: ${text.trim().split('\n')[0].slice(0, 100)}`);
    }
  }
}

for (const hit of hits) console.log(hit);
if (hits.length) {
  console.error(`\n${hits.length} SQL text(s) outside repositories and src/database: move them into a repository.`);
  process.exit(1);
}
console.log(`No SQL outside repositories (${files.length} files scanned).`);
