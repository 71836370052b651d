import { createHash } from "node:crypto";

/**
 * Reduce an error line to what stays the same between two occurrences of the same failure:
 * timestamps, hex addresses, temporary paths, checkout prefixes, PIDs, durations, runner names
 * and every other number are replaced by placeholders.
 */
export function normalizeSignature(text: string): string {
  return (
    text
      // ISO timestamps and clock times (before numbers are folded).
      .replace(/\b\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}:\d{2}(?:[.,]\d+)?Z?\b/g, "<ts>")
      .replace(/\b\d{1,2}:\d{2}:\d{2}(?:[.,]\d+)?\b/g, "<time>")
      .replace(/\b0x[0-9a-f]+\b/gi, "<addr>")
      // Temporary files and directories, then absolute paths, which differ by checkout location
      // (/__w/repo/repo, /work, /home/...): keep their last two parts.
      .replace(
        /(?<=^|[\s'"(=])(?:\/private)?(?:\/var\/folders|\/var\/tmp|\/tmp|\/dev\/shm)\/[^\s:'",)\]]*/g,
        "<tmp>",
      )
      .replace(/(?<=^|[\s'"(=])\/[^\s:'",)\]]*\/_temp\/[^\s:'",)\]]*/g, "<tmp>")
      .replace(/\bpytest-of-[^\s/]+\/pytest-\d+\/[^\s:'",)\]]*/g, "<tmp>")
      .replace(/(?<=^|[\s'"(=])(?:\/[\w.@+-]+)+(\/[\w.@+-]+\/[\w.@+-]+)(?=[\s:'",)\]]|$)/g, "...$1")
      .replace(/\b[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\b/gi, "<uuid>")
      // Runner and host names.
      .replace(/\b(on runner|hosted runner:?) [\w.-]+/gi, "$1 <name>")
      .replace(/\b(?:pid|PID|process|thread|tid)[ =:#]*\d+/g, (m) => `${m.replace(/[\s=:#]*\d+$/, "")} <id>`)
      .replace(/\b\d+(?:\.\d+)?\s?(?:ms|us|µs|ns|s|sec|secs|seconds|min|mins|minutes)\b/g, "<dur>")
      .replace(/\b[0-9a-f]{12,}\b/gi, "<hex>")
      .replace(/\d+(?:\.\d+)?/g, "N")
      .replace(/\s+/g, " ")
      .trim()
  );
}

/** A short, stable hash of the error class and the normalized signature. */
export function fingerprintOf(errorClass: string, normalizedSignature: string): string {
  return createHash("sha256").update(`${errorClass}\n${normalizedSignature}`).digest("hex").slice(0, 12);
}
