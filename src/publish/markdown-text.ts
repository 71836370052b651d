import { stripInvisible } from "../shared/sanitize.js";

/**
 * Text that Autofix did not write (the model's summary, root cause, changes, performance
 * notes and failure mode; reasons that quote it; paths and test ids from logs) as GitHub
 * markdown that shows exactly that text. Pure.
 *
 * Kept: paragraphs, lists, emphasis, blockquotes, code spans and fenced code (re-fenced by us,
 * so the text cannot close them), links into the repository's own GitHub pages.
 * Neutralised, shown as text: raw HTML and HTML comments (`<` and `&` escaped), images (the URL
 * is shown as code, never fetched), links and autolinks to any other place (shown as code),
 * reference links and definitions (`[x][y]`, `[y]: url`, `[//]: #`), headings and setext
 * underlines (a model cannot forge a section such as "Evidence"), tables, math, @-mentions,
 * e-mail addresses and cross-repository references (nobody is pinged, nothing is linked).
 * Removed: invisible characters (format, private use, variation selectors, tags).
 */

export interface ModelTextOptions {
  /**
   * The only place links may point to: the repository's web URL (`https://github.com/o/r`, or
   * the GHE host). Absent: no link survives.
   */
  allowedLinkBase?: string | undefined;
  /** One line (a list item, a sentence): newlines become spaces and fences are not parsed. */
  inline?: boolean;
  /** Inside a table cell: like inline, and `|` is escaped even inside code spans. */
  cell?: boolean;
}

/** Info strings GitHub renders as something other than code (diagrams, maps, 3D, math). */
const RENDERED_LANGS = new Set(["mermaid", "geojson", "topojson", "stl", "math", "latex", "tex"]);

/** A code span showing `s` literally, whatever backticks it holds. Pure. */
export function codeSpan(s: string, cell = false): string {
  let text = stripInvisible(s).replace(/\r?\n|\r/g, " ");
  if (cell) text = text.replace(/\|/g, "\\|");
  if (text === "") return "` `";
  const longest = Math.max(0, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const ticks = "`".repeat(longest + 1);
  const pad = text.startsWith("`") || text.endsWith("`") || (text.startsWith(" ") && text.endsWith(" "));
  return pad ? `${ticks} ${text} ${ticks}` : `${ticks}${text}${ticks}`;
}

/** A fenced code block showing `s` literally; the fence is longer than any backtick run inside. */
export function fenceBlock(s: string, lang = ""): string {
  const text = stripInvisible(s);
  const longest = Math.max(2, ...[...text.matchAll(/`+/g)].map((m) => m[0].length));
  const fence = "`".repeat(longest + 1);
  const info = /^[A-Za-z0-9_+.-]{1,30}$/.test(lang) && !RENDERED_LANGS.has(lang.toLowerCase()) ? lang : "";
  return `${fence}${info}\n${text}\n${fence}`;
}

/** Text for an HTML context (`<summary>`): every markup character as an entity. Pure. */
export function escapeHtml(s: string): string {
  return stripInvisible(s)
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/>/g, "&gt;")
    .replace(/"/g, "&quot;")
    .replace(/'/g, "&#39;");
}

/** True when `url` is an absolute http(s) URL at or beneath `base` (same origin, path prefix). */
export function isAllowedLink(url: string, base: string | undefined): boolean {
  if (!base) return false;
  let u: URL;
  let b: URL;
  try {
    u = new URL(url);
    b = new URL(base);
  } catch {
    return false;
  }
  if (u.protocol !== "https:" && u.protocol !== "http:") return false;
  if (u.protocol !== b.protocol || u.host !== b.host || u.username || u.password) return false;
  const basePath = b.pathname.replace(/\/+$/, "");
  if (basePath === "") return true;
  // Compare on the raw text too: `/o/r/../other` is normalised by URL, so check what it became.
  return u.pathname === basePath || u.pathname.startsWith(`${basePath}/`);
}

/** A URL as a link destination that cannot end early. */
function linkDestination(url: string): string {
  return url.replace(
    /[\s()<>"'\\`[\]]/g,
    (c) => `%${c.charCodeAt(0).toString(16).toUpperCase().padStart(2, "0")}`,
  );
}

/** Plain text, every active character escaped. */
function escapeText(s: string, cell: boolean): string {
  let out = s
    .replace(/\\/g, "\\\\")
    .replace(/&/g, "&amp;")
    .replace(/</g, "&lt;")
    .replace(/`/g, "\\`")
    .replace(/\[/g, "\\[")
    .replace(/\]/g, "\\]")
    .replace(/\|/g, "\\|")
    .replace(/\$/g, "\\$");
  if (cell) out = out.replace(/\n/g, " ");
  return out;
}

// Inline constructs recognised in the model's text, tried in this order at each position.
const URL_CHARS = String.raw`[^\s<>\x60"]`;
const INLINE_RE = new RegExp(
  [
    // 1: a code span's backticks, 2: its content (closed by a run of the same length).
    String.raw`(\x60+)([\s\S]*?[^\x60])\1(?!\x60)`,
    // 3: image alt, 4: image URL.
    String.raw`!\[([^\[\]\n]*)\]\(\s*<?([^()\s<>]*(?:\([^()\s]*\)[^()\s<>]*)*)>?(?:\s+(?:"[^"\n]*"|'[^'\n]*'|\([^()\n]*\)))?\s*\)`,
    // 5: link text, 6: link URL.
    String.raw`\[([^\[\]\n]*)\]\(\s*<?([^()\s<>]*(?:\([^()\s]*\)[^()\s<>]*)*)>?(?:\s+(?:"[^"\n]*"|'[^'\n]*'|\([^()\n]*\)))?\s*\)`,
    // 7: an autolink in angle brackets.
    String.raw`<([a-zA-Z][a-zA-Z0-9+.-]{1,31}:[^\s<>]*)>`,
    // 8: a bare URL (any scheme with //, mailto:, xmpp:) or www. address.
    String.raw`((?:\b[a-zA-Z][a-zA-Z0-9+.-]{1,31}://|\bmailto:|\bxmpp:|\bwww\.)${URL_CHARS}*)`,
    // 9: an e-mail address.
    String.raw`([A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)+)`,
    // 10: an @-mention (user or org/team).
    String.raw`((?<![A-Za-z0-9_\x60])@[A-Za-z0-9][A-Za-z0-9-]*(?:/[A-Za-z0-9_.-]+)?)`,
    // 11: a cross-repository reference: owner/repo#12, owner/repo@sha.
    String.raw`((?<![A-Za-z0-9_./-])[A-Za-z0-9_.-]+/[A-Za-z0-9_.-]+(?:#\d+|@[0-9a-f]{7,40}\b))`,
  ].join("|"),
  "g",
);

/** Trailing punctuation GFM leaves out of an autolink. */
function trimUrl(url: string): { url: string; rest: string } {
  let end = url.length;
  for (;;) {
    const ch = url[end - 1];
    if (ch && /[?!.,:*_~'";]/.test(ch)) {
      end--;
      continue;
    }
    if (ch === ")") {
      const body = url.slice(0, end);
      const open = (body.match(/\(/g) ?? []).length;
      const close = (body.match(/\)/g) ?? []).length;
      if (close > open) {
        end--;
        continue;
      }
    }
    break;
  }
  return { url: url.slice(0, end), rest: url.slice(end) };
}

function inline(text: string, opts: ModelTextOptions, cell: boolean): string {
  const base = opts.allowedLinkBase;
  let out = "";
  let last = 0;
  for (const m of text.matchAll(INLINE_RE)) {
    const at = m.index;
    out += escapeText(text.slice(last, at), cell);
    last = at + m[0].length;
    if (m[1] !== undefined) {
      out += codeSpan(m[2] ?? "", cell);
    } else if (m[4] !== undefined) {
      const alt = m[3] ? `${inline(m[3], opts, cell)} ` : "";
      out += `(image ${alt}not shown: ${codeSpan(m[4], cell)})`;
    } else if (m[6] !== undefined) {
      const label = m[5] ?? "";
      if (isAllowedLink(m[6], base)) {
        out += `[${label ? inline(label, opts, cell) : escapeText(m[6], cell)}](${linkDestination(m[6])})`;
      } else {
        out += `${label ? `${inline(label, opts, cell)} ` : ""}(${codeSpan(m[6], cell)})`;
      }
    } else if (m[7] !== undefined) {
      out += isAllowedLink(m[7], base) ? `<${linkDestination(m[7])}>` : codeSpan(m[7], cell);
    } else if (m[8] !== undefined) {
      const { url, rest } = trimUrl(m[8]);
      out += isAllowedLink(url, base) ? `<${linkDestination(url)}>` : codeSpan(url, cell);
      out += escapeText(rest, cell);
    } else {
      out += codeSpan(m[0], cell);
    }
  }
  return out + escapeText(text.slice(last), cell);
}

/** One line's block-level markers that would let the text forge structure. */
function escapeLineStart(line: string): string {
  // ATX headings, setext underlines (which turn the line above into a heading).
  if (/^ {0,3}#/.test(line)) return line.replace(/#/, "\\#");
  if (/^ {0,3}(?:=+|-{2,})[ \t]*$/.test(line)) return line.replace(/[=-]/, (c) => `\\${c}`);
  return line;
}

/**
 * CommonMark backslash escapes resolved first (outside fenced code), so no construct hides from
 * the scan behind one (`www\.example.com` would be an autolink again once re-escaped).
 */
function unescapeMarkdown(s: string): string {
  return s.replace(/\\([!-/:-@[-`{-~])/g, "$1");
}

/**
 * The model's prose as safe GitHub markdown (see the module comment). `inline`/`cell` for text
 * that sits inside a line. Pure.
 */
export function modelText(s: string | null | undefined, opts: ModelTextOptions = {}): string {
  if (!s) return "";
  const text = stripInvisible(s).replace(/\r\n?|[\u2028\u2029]/g, "\n");
  if (opts.inline || opts.cell) {
    const one = unescapeMarkdown(text.replace(/\s*\n\s*/g, " ").trim());
    return escapeLineStart(inline(one, opts, opts.cell === true));
  }
  const lines = text.split("\n");
  const out: string[] = [];
  let para: string[] = [];
  const flush = () => {
    if (para.length) out.push(...para.map((l) => escapeLineStart(inline(unescapeMarkdown(l), opts, false))));
    para = [];
  };
  for (let i = 0; i < lines.length; i++) {
    const line = lines[i]!;
    const open = /^ {0,3}(`{3,}|~{3,})(.*)$/.exec(line);
    if (open && !(open[1]!.startsWith("`") && open[2]!.includes("`"))) {
      flush();
      const marker = open[1]!;
      const closeRe = new RegExp(`^ {0,3}${marker[0] === "`" ? "`" : "~"}{${marker.length},}[ \\t]*$`);
      const body: string[] = [];
      let j = i + 1;
      while (j < lines.length && !closeRe.test(lines[j]!)) body.push(lines[j++]!);
      out.push(fenceBlock(body.join("\n"), open[2]!.trim().split(/\s+/)[0] ?? ""));
      i = j;
      continue;
    }
    para.push(line);
  }
  flush();
  return out.join("\n");
}
