import { createHash } from "node:crypto";
import { posix } from "node:path";

/**
 * Submodules as the service's git sees them, before anything is fetched: the entries of a
 * commit's `.gitmodules` matched to the gitlinks of its tree, each URL resolved against the
 * superproject's remote and checked against the same rules as the service's remotes
 * (src/git/remote.ts): https (http only under an http superproject), a local path only as a
 * relative URL under a local superproject (the tests' file:// remotes), never ext::, ssh, git://,
 * scp-like addresses, options (`--upload-pack=...`) or credentials. Paths are relative, inside
 * the work tree, and never through `.git`. Everything here is pure; a `.gitmodules` is the
 * repository's (a fork's, a model's) and is read as hostile data.
 */

export class SubmoduleError extends Error {
  override name = "SubmoduleError";
}

export interface GitmodulesEntry {
  /** The subsection name (`[submodule "<name>"]`). */
  name: string;
  path?: string;
  url?: string;
}

/** Entries of `git config -z --list --blob <commit>:.gitmodules`. Pure. */
export function parseGitmodulesList(z: string): GitmodulesEntry[] {
  const byName = new Map<string, GitmodulesEntry>();
  for (const rec of z.split("\0")) {
    if (!rec) continue;
    const nl = rec.indexOf("\n");
    const key = nl >= 0 ? rec.slice(0, nl) : rec;
    const value = nl >= 0 ? rec.slice(nl + 1) : "";
    if (!key.startsWith("submodule.")) continue;
    const dot = key.lastIndexOf(".");
    if (dot <= "submodule.".length) continue;
    const name = key.slice("submodule.".length, dot);
    const field = key.slice(dot + 1).toLowerCase();
    const e = byName.get(name) ?? { name };
    if (field === "path") e.path = value;
    else if (field === "url") e.url = value;
    byName.set(name, e);
  }
  return [...byName.values()];
}

export interface TreeEntries {
  /** Gitlinks (mode 160000): path -> the recorded commit. */
  gitlinks: Map<string, string>;
  /** Paths of every `.gitattributes` in the tree. */
  attributes: string[];
}

/** Gitlinks and `.gitattributes` files from `git ls-tree -r -z <commit>`. Pure. */
export function parseLsTree(z: string): TreeEntries {
  const gitlinks = new Map<string, string>();
  const attributes: string[] = [];
  for (const rec of z.split("\0")) {
    const tab = rec.indexOf("\t");
    if (tab < 0) continue;
    const [mode, type, oid] = rec.slice(0, tab).split(" ");
    const path = rec.slice(tab + 1);
    if (mode === "160000" && type === "commit" && oid && /^[0-9a-f]{40}$/.test(oid)) gitlinks.set(path, oid);
    else if (type === "blob" && (path === ".gitattributes" || path.endsWith("/.gitattributes")))
      attributes.push(path);
  }
  return { gitlinks, attributes };
}

/**
 * A submodule path as a safe relative path in the work tree: no absolute paths, no `.` or `..`
 * or empty components, no `.git` component (in any case, or with trailing dots and spaces as
 * some file systems fold them), no control characters or backslashes. Throws SubmoduleError. Pure.
 */
export function checkSubmodulePath(p: string): string {
  const why = (reason: string) => new SubmoduleError(`unsafe submodule path "${printable(p)}": ${reason}`);
  if (p === "") throw why("empty");

  if (/[\u0000-\u001f\u007f\\]/.test(p)) throw why("control characters or backslashes");
  if (p.startsWith("/")) throw why("absolute");
  for (const part of p.split("/")) {
    if (part === "" || part === "." || part === "..") throw why("'.', '..' or empty components");
    if (/^\.git[. ]*$/i.test(part) || /^git~\d+$/i.test(part)) throw why("a .git component");
  }
  return p;
}

/** A remote URL's parts the rules look at; null when it is no URL this module accepts. */
function parseRemote(u: string): URL | null {
  try {
    const url = new URL(u);
    return ["https:", "http:", "file:"].includes(url.protocol) ? url : null;
  } catch {
    return null;
  }
}

/**
 * The URL the service fetches a submodule from: `url` from `.gitmodules`, relative URLs
 * (`./x`, `../x`) resolved against `superUrl` the way git resolves them (each `../` drops one
 * component of the superproject's URL). Refused with a SubmoduleError naming the rule:
 * - anything but https, or http under an http superproject (ext::, ssh://, git://, scp-like
 *   `git@host:path`, `file://`, absolute or `~` local paths);
 * - a relative URL that climbs above the host (or, under a local superproject, above the folder
 *   holding its owner folders: `<root>/<owner>/<name>.git` may reach `<root>/*`), or that does
 *   not end as `<owner>/<name>` at least;
 * - credentials, a query or a fragment in the URL, whitespace, control characters, a leading `-`.
 * Pure.
 */
export function resolveSubmoduleUrl(superUrl: string, url: string): string {
  const refuse = (reason: string) =>
    new SubmoduleError(`refusing submodule URL "${printable(url)}": ${reason}`);

  if (url === "" || /[\s\u0000-\u001f\u007f\\]/.test(url))
    throw refuse("empty, whitespace or control characters");
  if (url.startsWith("-")) throw refuse("looks like a command-line option");
  if (url.includes("::")) throw refuse("transport helpers (ext:: and others) are not allowed");
  const base = parseRemote(superUrl);
  if (!base) throw refuse(`the superproject's remote ${superUrl} is not an https or local URL`);

  if (url.startsWith("./") || url.startsWith("../")) {
    const segs = base.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    // How far up a relative URL may go: to the host, or to the folder of the owner folders.
    const floor = base.protocol === "file:" ? Math.max(0, segs.length - 2) : 0;
    const out = [...segs];
    let rest = url;
    while (rest.startsWith("./") || rest.startsWith("../")) {
      if (rest.startsWith("./")) rest = rest.slice(2);
      else {
        if (out.length <= floor)
          throw refuse(`climbs above ${base.protocol === "file:" ? "the remotes' root" : "the host"}`);
        out.pop();
        rest = rest.slice(3);
      }
      rest = rest.replace(/^\/+/, "");
    }
    for (const part of rest.split("/").filter(Boolean)) {
      if (part === ".") continue;
      if (part === "..") {
        if (out.length <= floor) throw refuse("climbs above the host");
        out.pop();
      } else out.push(part);
    }
    if (out.length < floor + 2) throw refuse("does not name an <owner>/<repository>");
    if (/[?#@]/.test(rest)) throw refuse("a query, fragment or credentials");
    const resolved = new URL(base.href);
    resolved.pathname = `/${out.map((s) => encodeURIComponent(s)).join("/")}`;
    resolved.search = "";
    resolved.hash = "";
    return resolved.href;
  }

  const abs = (() => {
    try {
      return new URL(url);
    } catch {
      return null;
    }
  })();
  if (!abs) throw refuse("not a URL (scp-like addresses and local paths are not allowed)");
  const allowed = base.protocol === "http:" ? ["https:", "http:"] : ["https:"];
  if (!allowed.includes(abs.protocol))
    throw refuse(`protocol ${abs.protocol.replace(/:$/, "")} is not allowed (https only)`);
  if (abs.username || abs.password) throw refuse("credentials in the URL");
  if (abs.search || abs.hash) throw refuse("a query or fragment");
  if (!abs.hostname) throw refuse("no host");
  const segs = abs.pathname.split("/").filter(Boolean);
  if (segs.some((s) => s === "." || s === "..") || segs.length < 2)
    throw refuse("does not name an <owner>/<repository>");
  return abs.href;
}

/**
 * The folder name of a submodule's mirror: readable (host and path) and unique (a hash of the
 * whole URL). Pure.
 */
export function submoduleMirrorName(url: string): string {
  const u = new URL(url);
  const readable = `${u.host}${u.pathname}`
    .replace(/\.git$/, "")
    .replace(/[^A-Za-z0-9._-]+/g, "_")
    .replace(/^[._]+/, "")
    .slice(-80);
  const hash = createHash("sha256").update(url).digest("hex").slice(0, 12);
  return `${readable || "repo"}-${hash}.git`;
}

/** Is `url` on the same host and owner as `superUrl` (where the installation's token may go)? Pure. */
export function sameOwner(superUrl: string, url: string): boolean {
  const a = parseRemote(superUrl);
  const b = parseRemote(url);
  if (!a || !b || a.protocol !== b.protocol || a.host !== b.host) return false;
  const owner = (u: URL) => u.pathname.split("/").filter(Boolean)[0]?.toLowerCase();
  return a.protocol !== "file:" && owner(a) !== undefined && owner(a) === owner(b);
}

/** The LFS endpoint git-lfs derives from a remote (`<remote>/info/lfs`, `.git` added for https). Pure. */
export function lfsUrlOf(remoteUrl: string): string {
  const trimmed = remoteUrl.replace(/\/+$/, "");
  if (trimmed.startsWith("file:")) return trimmed;
  return `${trimmed.endsWith(".git") ? trimmed : `${trimmed}.git`}/info/lfs`;
}

/** Does a `.gitattributes` text send any path through the LFS filter? Pure. */
export function usesLfs(attributes: string): boolean {
  return attributes.split("\n").some((l) => !l.trim().startsWith("#") && /(^|\s)filter=lfs(\s|$)/.test(l));
}

/** The relative path from a work tree to a nested one, normalized (for messages). Pure. */
export function joinSubmodulePath(parent: string, child: string): string {
  return parent ? posix.join(parent, child) : child;
}

function printable(s: string): string {
  return s
    .replace(/[\u0000-\u001f\u007f]/g, (c) => `\\x${c.charCodeAt(0).toString(16).padStart(2, "0")}`)
    .slice(0, 200);
}
