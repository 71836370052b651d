/**
 * Bounded capture of command output, pure: keeps the first `head` bytes and the last `tail`
 * bytes and says how much was cut in between. Build logs run to megabytes; the start (the
 * command, the configuration) and the end (the error) are what matter.
 */
export { HeadTail } from "../shared/head-tail.js";

/** The last `lines` lines of a text, for gate records. */
export function lastLines(text: string, lines: number, maxChars = 4000): string {
  const all = text.replace(/\n+$/, "").split("\n");
  const tail = all.slice(-lines).join("\n");
  return tail.length > maxChars ? tail.slice(tail.length - maxChars) : tail;
}

/** Cut a text to `max` characters, keeping head and tail, with a note. */
export function clip(text: string, max: number): string {
  if (text.length <= max) return text;
  const half = Math.floor(max / 2);
  return `${text.slice(0, half)}\n[... ${text.length - 2 * half} characters cut ...]\n${text.slice(text.length - half)}`;
}
