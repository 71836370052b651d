/** `autofix prove`: re-run a fix branch's proof in the sandbox (see ../run/prove.ts). */
export { createProveCommand, proveLocalCommand as proveCommand } from "../run/prove.js";
