import type { Readable } from "node:stream";
import { redact } from "../shared/redact.js";
import {
  classifyLine,
  type ErrorClass,
  type Family,
  mightMatter,
  parseExceptionLine,
  parseTestLine,
  rank,
  type Strength,
  testLeaf,
} from "./classify.js";
import { fingerprintOf, normalizeSignature } from "./fingerprint.js";
import type { Triage, TriageOptions } from "./types.js";

const DEFAULTS = {
  excerptBudget: 12 * 1024,
  contextBefore: 6,
  contextAfter: 10,
  maxFailingTests: 200,
  maxBlocks: 32,
  maxLineLength: 400,
} satisfies Required<TriageOptions>;

/** Longest raw line kept while splitting; the rest of a longer line is skipped. */
const MAX_RAW_LINE = 64 * 1024;
const MAX_BLOCK_LINES = 80;
const MAX_ANNOTATIONS = 20;
const MAX_MESSAGE = 500;
const TRACEBACK_WINDOW = 300;

const TIMESTAMP = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(?:\.\d+)?Z ?/;
const ANSI = /\x1b\[[0-9;?]*[ -/]*[@-~]|\x1b[()][A-Z0-9]/g;

/** Strip GitHub's timestamp prefix, ANSI colour codes and a trailing CR from one raw log line. */
export function cleanLogLine(raw: string): string {
  let line = raw.endsWith("\r") ? raw.slice(0, -1) : raw;
  if (line.charCodeAt(0) === 0xfeff) line = line.slice(1);
  // Fast path for GitHub's fixed-width stamp (YYYY-MM-DDTHH:MM:SS.fffffffZ), regex otherwise.
  const z =
    line.charCodeAt(10) === 84 /* T */ && line.charCodeAt(4) === 45 /* - */ ? line.indexOf("Z", 19) : -1;
  if (z !== -1 && z <= 30 && TIMESTAMP.test(line.slice(0, z + 2)))
    line = line.slice(line.charCodeAt(z + 1) === 32 ? z + 2 : z + 1);
  if (line.includes("\x1b")) line = line.replace(ANSI, "");
  return line;
}

interface Hit {
  line: number;
  errorClass: ErrorClass;
  family: Family;
  strength: Strength;
  rank: number;
  message: string;
  step: string | null;
  test: string | null;
}

/** A run of log lines around one or more failure lines. */
export interface Block {
  start: number;
  lines: string[];
  /** The log line number of each of `lines` (the step script GitHub echoes is not kept, so they can skip). */
  numbers: number[];
  /** Line numbers of the failure lines in it, with their rank. */
  hits: Array<{ line: number; rank: number }>;
  bestRank: number;
  step: string | null;
}

interface FamilyStat {
  errorClass: ErrorClass;
  family: Family;
  count: number;
  firstLine: number;
  message: string;
  rank: number;
}

/**
 * Streaming triage: feed it chunks (or lines) of a log of any size; memory stays bounded by
 * the ring buffer of context lines, the caps on kept blocks and test ids, and one partial line.
 */
export class TriageEngine {
  readonly #o: Required<TriageOptions>;
  #decoder = new TextDecoder();
  #carry = "";
  #skipping = false;
  #lineNo = 0;
  #bytes = 0;

  #ring: Array<{ n: number; text: string }> = [];
  #ringPos = 0;
  #lastBlockEnd = 0;
  #open: Block | null = null;
  #afterLeft = 0;
  #head: Block[] = [];
  #tail: Block[] = [];
  #dropped = 0;

  #step: string | null = null;
  #inRunEcho = false;
  #pytestSection = "";
  #pytestTest: string | null = null;
  #gtestRunning: string | null = null;
  #tracebackLeft = 0;

  #tests = new Set<string>();
  #testsOmitted = 0;
  #headerNames = new Set<string>();
  #families = new Map<Family, FamilyStat>();
  #best: Hit | null = null;
  #annotations: string[] = [];

  constructor(opts: TriageOptions = {}) {
    this.#o = { ...DEFAULTS, ...stripUndefined(opts) };
  }

  /** Feed a chunk of the log (bytes are decoded as UTF-8; chunk borders may split lines or characters). */
  write(chunk: string | Uint8Array): void {
    const text = typeof chunk === "string" ? chunk : this.#decoder.decode(chunk, { stream: true });
    this.#bytes += typeof chunk === "string" ? Buffer.byteLength(chunk) : chunk.byteLength;
    let start = 0;
    let nl = text.indexOf("\n");
    if (nl !== -1 && (this.#carry || this.#skipping)) {
      const first = this.#carry + text.slice(0, nl);
      this.#carry = "";
      if (this.#skipping) this.#skipping = false;
      else this.pushLine(first);
      start = nl + 1;
      nl = text.indexOf("\n", start);
    }
    while (nl !== -1) {
      this.pushLine(text.slice(start, nl));
      start = nl + 1;
      nl = text.indexOf("\n", start);
    }
    if (start < text.length && !this.#skipping) {
      this.#carry += text.slice(start);
      if (this.#carry.length > MAX_RAW_LINE) {
        this.pushLine(`${this.#carry.slice(0, MAX_RAW_LINE)} [line truncated]`);
        this.#carry = "";
        this.#skipping = true;
      }
    }
  }

  /** Feed one raw line (without its newline). */
  pushLine(raw: string): void {
    const n = ++this.#lineNo;
    let line = cleanLogLine(raw);
    let isError = false;
    if (line.charCodeAt(0) === 35 /* # */ && line.startsWith("##[")) {
      const close = line.indexOf("]");
      const tag = line.slice(3, close);
      const rest = line.slice(close + 1);
      if (tag === "group") {
        if (rest.startsWith("Run ")) {
          this.#step = own(rest.slice(4).trim().slice(0, 120)) || null;
          this.#inRunEcho = true;
          return;
        }
        line = rest;
      } else if (tag === "endgroup") {
        this.#inRunEcho = false;
        return;
      } else if (tag === "error") {
        isError = true;
        line = rest;
        if (this.#annotations.length < MAX_ANNOTATIONS)
          this.#annotations.push(own(truncate(rest, MAX_MESSAGE)));
      } else if (tag === "command") {
        this.#context(n, truncate(line, this.#o.maxLineLength), null);
        return;
      } else {
        line = rest;
      }
    }
    // The step's script and env echoed under "##[group]Run ..." are source text, not output.
    // A `##[error]` is never echo: it also ends a run group whose `##[endgroup]` never came
    // (a truncated or hand-assembled log), so the output after it is read again.
    if (this.#inRunEcho) {
      if (!isError) return;
      this.#inRunEcho = false;
    }

    const hit =
      isError || this.#tracebackLeft > 0 || mightMatter(line) ? this.#analyze(n, line, isError) : null;
    this.#context(n, truncate(line, this.#o.maxLineLength), hit);
  }

  #analyze(n: number, line: string, isError: boolean): Hit | null {
    const t = parseTestLine(line);
    if (t) {
      switch (t.kind) {
        case "pytest-result": {
          this.#addTest(t.id);
          // Verbose progress lines carry no message: the E lines or the summary name the error better.
          const message = t.message ?? `${t.outcome} ${t.id}`;
          const cls = classifyLine(message);
          return this.#hit(
            n,
            cls ?? { errorClass: "assertion-failure", family: "pytest-failed", strength: t.message ? 3 : 2 },
            message,
            t.id,
          );
        }
        case "pytest-header": {
          const inFailures = /FAILURES|ERRORS/.test(this.#pytestSection);
          if (inFailures && !t.name.startsWith("ERROR ") && !/\s/.test(t.name.replace(/\[.*\]$/, ""))) {
            this.#pytestTest = own(t.name);
            if (this.#headerNames.size < this.#o.maxFailingTests) this.#headerNames.add(this.#pytestTest);
          } else {
            this.#pytestTest = null;
          }
          // A header ("ERROR collecting x.py") only announces a failure its lines explain.
          const cls = classifyLine(line);
          return cls ? this.#hit(n, { ...cls, strength: 2 }, line, null) : null;
        }
        case "pytest-section":
          this.#pytestSection = t.title;
          this.#pytestTest = null;
          return null;
        case "gtest-run":
          this.#gtestRunning = own(t.id);
          return null;
        case "gtest-ok":
          this.#gtestRunning = null;
          return null;
        case "gtest-failed":
          this.#addTest(t.id);
          this.#gtestRunning = null;
          return this.#hit(
            n,
            { errorClass: "assertion-failure", family: "gtest-failed", strength: 3 },
            `[  FAILED  ] ${t.id}`,
            t.id,
          );
      }
    }

    if (line.startsWith("Traceback (most recent call last)")) {
      this.#tracebackLeft = TRACEBACK_WINDOW;
      return null;
    }
    let cls = classifyLine(line);
    const eLine = line.charCodeAt(0) === 69 /* E */ && /^E\s/.test(line);
    if (this.#tracebackLeft > 0) {
      this.#tracebackLeft--;
      // The exception line at column 0 ends a traceback.
      if (!/^\s/.test(line) && parseExceptionLine(line)) {
        this.#tracebackLeft = 0;
        cls ??= { errorClass: "assertion-failure", family: "python-exception", strength: 3 };
      }
    }
    if (!cls && eLine && parseExceptionLine(line)) {
      cls = { errorClass: "assertion-failure", family: "python-exception", strength: 3 };
    }
    if (!cls && isError) cls = { errorClass: "unknown", family: "gha-error", strength: 1 };
    if (!cls) return null;

    const test = this.#pytestTest ?? this.#gtestRunning;
    const crash =
      cls.errorClass === "segfault" ||
      cls.errorClass === "resource-exhaustion" ||
      cls.errorClass === "device-timeout" ||
      cls.errorClass === "hardware-error" ||
      cls.family === "cpp-fatal";
    if (test && test === this.#gtestRunning && crash && cls.strength > 1) {
      // A crash inside a GoogleTest test: gtest never gets to print [  FAILED  ] for it.
      this.#addTest(test);
    }
    return this.#hit(n, cls, stripLogPrefix(eLine ? line.replace(/^E\s+/, "") : line), test);
  }

  #hit(
    n: number,
    cls: { errorClass: ErrorClass; family: Family; strength: Strength },
    message: string,
    test: string | null,
  ): Hit {
    const msg = own(truncate(message.trim(), MAX_MESSAGE));
    const r = rank(cls.errorClass, cls.strength);
    const h: Hit = { line: n, ...cls, rank: r, message: msg, step: this.#step, test };
    const stat = this.#families.get(cls.family);
    if (stat) stat.count++;
    else this.#families.set(cls.family, { ...cls, count: 1, firstLine: n, message: msg, rank: r });
    if (!this.#best || r > this.#best.rank) this.#best = h;
    return h;
  }

  #addTest(id: string): void {
    if (this.#tests.has(id)) return;
    if (this.#tests.size < this.#o.maxFailingTests) this.#tests.add(own(id));
    else this.#testsOmitted++;
  }

  /** Keep context: the ring of recent lines, the open block, the kept blocks. */
  #context(n: number, text: string, hit: Hit | null): void {
    const open = this.#open;
    if (open) {
      open.lines.push(own(text));
      open.numbers.push(n);
      if (hit) {
        open.hits.push({ line: n, rank: hit.rank });
        open.bestRank = Math.max(open.bestRank, hit.rank);
        this.#afterLeft = this.#o.contextAfter;
      } else {
        this.#afterLeft--;
      }
      if (this.#afterLeft <= 0 || open.lines.length >= MAX_BLOCK_LINES) this.#close(n);
    } else if (hit) {
      const before = this.#ringLines().filter((l) => l.n > this.#lastBlockEnd);
      this.#open = {
        start: before[0]?.n ?? n,
        lines: [...before.map((l) => own(l.text)), own(text)],
        numbers: [...before.map((l) => l.n), n],
        hits: [{ line: n, rank: hit.rank }],
        bestRank: hit.rank,
        step: hit.step,
      };
      this.#afterLeft = this.#o.contextAfter;
      if (this.#o.contextAfter === 0) this.#close(n);
    }
    const size = this.#o.contextBefore;
    if (size > 0) {
      if (this.#ring.length < size) this.#ring.push({ n, text });
      else {
        this.#ring[this.#ringPos] = { n, text };
        this.#ringPos = (this.#ringPos + 1) % size;
      }
    }
  }

  #ringLines(): Array<{ n: number; text: string }> {
    return [...this.#ring.slice(this.#ringPos), ...this.#ring.slice(0, this.#ringPos)];
  }

  #close(n: number): void {
    const b = this.#open;
    if (!b) return;
    this.#open = null;
    this.#lastBlockEnd = n;
    const headCap = Math.max(1, this.#o.maxBlocks - Math.floor(this.#o.maxBlocks / 4));
    if (this.#head.length < headCap) {
      this.#head.push(b);
      return;
    }
    this.#tail.push(b);
    if (this.#tail.length > this.#o.maxBlocks - headCap) {
      // Keep the first blocks and the last ones (pytest's summary is at the end); drop the
      // weakest of the middle ones.
      let weakest = 0;
      for (let i = 1; i < this.#tail.length - 1; i++) {
        if (this.#tail[i]!.bestRank < this.#tail[weakest]!.bestRank) weakest = i;
      }
      this.#tail.splice(weakest, 1);
      this.#dropped++;
    }
  }

  /** Finish the log and compute the triage. */
  end(): Triage {
    const rest = this.#carry + this.#decoder.decode();
    this.#carry = "";
    if (rest && !this.#skipping) this.pushLine(rest);
    this.#close(this.#lineNo);
    return this.#result();
  }

  #result(): Triage {
    const best = this.#best;
    const tests = [...this.#tests];
    // Section headers name failing tests even when pytest ran without its summary (-rN, a crash).
    const leaves = new Set(tests.map(testLeaf));
    for (const name of this.#headerNames) {
      if (leaves.has(testLeaf(name))) continue;
      if (tests.length < this.#o.maxFailingTests) tests.push(name);
      else this.#testsOmitted++;
    }
    const failingTests = tests.map(redact);

    let signature: string;
    let primary: Triage["primary"] = null;
    if (best) {
      const message = redact(best.message);
      const test = best.test ? redact(best.test) : null;
      primary = { line: best.line, step: best.step ? redact(best.step) : null, test, message };
      // An assertion or an unclassified error is only identified by where it happened.
      const where =
        (best.errorClass === "assertion-failure" || best.errorClass === "unknown") &&
        (test ?? failingTests[0])
          ? ` @ ${testLeaf(test ?? failingTests[0]!)}`
          : "";
      signature = normalizeSignature(`${best.family}: ${message}${where}`);
    } else {
      signature = "no failure recognised";
    }
    const errorClass: ErrorClass = best?.errorClass ?? "unknown";
    const hits = [...this.#families.values()]
      .sort((a, b) => b.rank - a.rank || a.firstLine - b.firstLine)
      .map((s) => ({
        errorClass: s.errorClass,
        family: s.family,
        count: s.count,
        firstLine: s.firstLine,
        message: redact(s.message),
      }));
    const blocks = [...this.#head, ...this.#tail];
    const excerpt = redact(buildExcerpt(blocks, best?.line ?? null, this.#o.excerptBudget, this.#dropped));
    return {
      failureFound: best !== null,
      errorClass,
      family: best?.family ?? null,
      failingTests,
      failingTestsOmitted: this.#testsOmitted,
      primary,
      signature,
      fingerprint: fingerprintOf(errorClass, signature),
      hits,
      errorAnnotations: this.#annotations.map(redact),
      excerpt: fitBytes(excerpt, this.#o.excerptBudget),
      stats: { lines: this.#lineNo, bytes: this.#bytes, blocks: blocks.length, blocksDropped: this.#dropped },
    };
  }
}

function blockHeader(b: Block, first = b.numbers[0] ?? b.start): string {
  return `--- line ${first}${b.step ? ` (step: ${b.step})` : ""} ---`;
}

/** A block's lines from index `lo` to `hi` (exclusive), as the excerpt shows them. */
interface Shown {
  i: number;
  /** The shown lines, without the header. */
  body: string;
  header: string;
  first: number;
  last: number;
}

/**
 * Pick failure blocks for the excerpt within a byte budget: the block with the primary failure
 * first, then the strongest others; shown in log order. Each shown block has one header naming
 * the log line of its first shown line; a block that continues the previous one line for line
 * is joined to it without a second header.
 */
export function buildExcerpt(
  blocks: Block[],
  primaryLine: number | null,
  budget: number,
  dropped = 0,
): string {
  if (blocks.length === 0) return "";
  const footerReserve = 80;
  let left = budget - footerReserve;
  const primaryIdx = blocks.findIndex(
    (b) => primaryLine !== null && b.hits.some((h) => h.line === primaryLine),
  );
  const order = blocks
    .map((b, i) => ({ b, i }))
    .sort(
      (x, y) =>
        Number(y.i === primaryIdx) - Number(x.i === primaryIdx) || y.b.bestRank - x.b.bestRank || x.i - y.i,
    );
  const chosen: Shown[] = [];
  for (const { b, i } of order) {
    let shown = window(b, i, 0, b.lines.length);
    let size = Buffer.byteLength(shown.header) + 1 + Buffer.byteLength(shown.body) + 1;
    if (size > left && chosen.length === 0) {
      shown = trimBlock(b, i, i === primaryIdx ? primaryLine : (b.hits[0]?.line ?? null), left - 1);
      size = Buffer.byteLength(shown.header) + 1 + Buffer.byteLength(shown.body) + 1;
    }
    if (size > left) continue;
    chosen.push(shown);
    left -= size;
  }
  chosen.sort((a, b) => a.i - b.i);
  const omitted = blocks.length - chosen.length + dropped;
  const parts: string[] = [];
  chosen.forEach((c, k) => {
    const prev = chosen[k - 1];
    // The next block starts on the line after the previous one ends: one block, one header.
    if (prev && prev.i === c.i - 1 && c.first === prev.last + 1) parts.push(c.body);
    else parts.push(`${c.header}\n${c.body}`);
  });
  const body = parts.join("\n");
  return omitted > 0 ? `${body}\n[${omitted} more failure block${omitted > 1 ? "s" : ""} not shown]` : body;
}

function window(b: Block, i: number, lo: number, hi: number): Shown {
  const first = b.numbers[lo] ?? b.start;
  return {
    i,
    header: blockHeader(b, first),
    body: b.lines.slice(lo, hi).join("\n"),
    first,
    last: b.numbers[hi - 1] ?? first,
  };
}

/** A window of a block around one line that fits the budget; its header names its first line. */
function trimBlock(b: Block, i: number, focus: number | null, budget: number): Shown {
  const found = focus === null ? -1 : b.numbers.indexOf(focus);
  const at = found === -1 ? 0 : found;
  // The widest header this block can have: the window's size does not depend on which line it starts at.
  const header = blockHeader(b, b.numbers[b.numbers.length - 1] ?? b.start);
  let lo = at;
  let hi = at + 1;
  let size = Buffer.byteLength(header) + 1 + Buffer.byteLength(b.lines[at] ?? "");
  // Grow the window: a little before, more after.
  for (let step = 0; ; step++) {
    const takeBefore = step % 3 === 0 && lo > 0;
    const idx = takeBefore ? lo - 1 : hi < b.lines.length ? hi : lo > 0 ? lo - 1 : -1;
    if (idx === -1) break;
    const add = Buffer.byteLength(b.lines[idx]!) + 1;
    if (size + add > budget) break;
    size += add;
    if (idx < lo) lo = idx;
    else hi = idx + 1;
  }
  const shown = window(b, i, lo, hi);
  return { ...shown, body: fitBytes(shown.body, Math.max(0, budget - Buffer.byteLength(shown.header) - 1)) };
}

function fitBytes(text: string, budget: number): string {
  if (Buffer.byteLength(text) <= budget) return text;
  let out = text.slice(0, budget);
  while (Buffer.byteLength(out) > budget) out = out.slice(0, -1);
  return out;
}

/** Loguru and TT logger prefixes: `2024-05-01 12:00:00.123 | ERROR | Module - ` or `Always | FATAL | `. */
const LOG_PREFIX =
  /^\s*(?:\d{4}-\d\d-\d\d \d\d:\d\d:\d\d(?:[.,]\d+)?\s*\|\s*)?(?:\w+\s*\|\s*)?(?:TRACE|DEBUG|INFO|WARNING|WARN|ERROR|CRITICAL|FATAL|critical|error|fatal)\s*\|\s*(?:[\w.:<>]+\s+-\s+)?/;

export function stripLogPrefix(line: string): string {
  const m = LOG_PREFIX.exec(line);
  return m && m[0].length < line.length ? line.slice(m[0].length) : line;
}

function truncate(s: string, max: number): string {
  return s.length > max ? `${s.slice(0, max)}...` : s;
}

/**
 * A copy that does not share memory with the chunk it was cut from: V8 keeps a slice's whole
 * parent string alive, so a kept 100-byte line could pin a 256 KB chunk.
 */
function own(s: string): string {
  return s.length < 13 ? s : Buffer.from(s, "utf8").toString("utf8");
}

function stripUndefined<T extends object>(o: T): Partial<T> {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as Partial<T>;
}

/** Anything a log can come from: a Node Readable, a web ReadableStream, an async iterable of chunks. */
export type LogSource = Readable | AsyncIterable<string | Uint8Array> | Iterable<string | Uint8Array>;

/** Triage a log as it streams in; never holds it whole. */
export async function triageStream(source: LogSource, opts: TriageOptions = {}): Promise<Triage> {
  const engine = new TriageEngine(opts);
  for await (const chunk of source as AsyncIterable<string | Uint8Array>) engine.write(chunk);
  return engine.end();
}

/** Triage a log already in memory (pasted raw logs, a test fixture). */
export function triageText(text: string, opts: TriageOptions = {}): Triage {
  const engine = new TriageEngine(opts);
  engine.write(text);
  return engine.end();
}
