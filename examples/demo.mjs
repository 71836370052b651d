#!/usr/bin/env node
// The offline demo: `npm run demo` (builds first). No credentials, no network.
//
// 1. Creates a fresh git repository in a temp folder from examples/add-bug/repo (a tiny
//    shell calculator whose add.sh drops its last argument).
// 2. Starts a replay server on 127.0.0.1 that answers POST /v1/messages with the recorded
//    responses of examples/add-bug/transcript.json, in order.
// 3. Runs the built CLI, `autofix run examples/add-bug/info.json --repo <tmp>/repo --out
//    <tmp>/outputs`, with ANTHROPIC_BASE_URL pointing at the replay server, so the real SDK,
//    the real harness, real git and the real gate runs are used; only the model is replayed.
// 4. Prints the run as it goes, then the report.
import { spawn, spawnSync } from "node:child_process";
import { existsSync } from "node:fs";
import { chmod, mkdtemp, readdir, readFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
const example = join(root, "examples", "add-bug");
const cli = join(root, "dist", "src", "cli", "main.js");
if (!existsSync(cli)) {
  console.error(`demo: ${cli} is missing; run "npm run demo" (it builds first) or "npm run build"`);
  process.exit(2);
}
const { loadTranscript, startReplayServer } = await import(
  pathToFileURL(join(root, "dist", "src", "demo", "replay.js")).href
);
const { createDemoRepo } = await import(pathToFileURL(join(root, "dist", "src", "demo", "repo.js")).href);

const work = await mkdtemp(join(tmpdir(), "autofix-demo-"));
// The run's sandbox may run as another uid (bubblewrap as root): it must pass through.
await chmod(work, 0o755);
// The replayed commands are a fixed, known script: without bubblewrap the demo still runs,
// and says so (a real run refuses to start without a sandbox unless asked for none).
const hasBwrap = spawnSync("bwrap", ["--version"], { stdio: "ignore" }).status === 0;
const repo = join(work, "repo");
const outputs = join(work, "outputs");
const base = await createDemoRepo(join(example, "repo"), repo);
const transcript = await loadTranscript(join(example, "transcript.json"));
const server = await startReplayServer(transcript);

console.log("Autofix demo (offline): the model is a replay of examples/add-bug/transcript.json");
console.log(`  repository: ${repo} (main at ${base.slice(0, 12)}; src/add.sh drops its last argument)`);
console.log(`  replay:     ${server.url} (${transcript.responses.length} recorded responses)`);
if (!hasBwrap)
  console.log(
    "  sandbox:    bubblewrap is not installed: this replay runs with --sandbox none (apt-get install bubblewrap)",
  );
console.log("");

// No credentials reach the run: no GitHub token (nothing is published), a dummy API key.
const env = { ...process.env };
for (const name of Object.keys(env)) {
  if (/^(GITHUB_TOKEN|GH_TOKEN|GHE_HOST|GHE_PROTOCOL)$/.test(name) || name.startsWith("ANTHROPIC_"))
    delete env[name];
}
Object.assign(env, {
  ANTHROPIC_API_KEY: "demo",
  ANTHROPIC_BASE_URL: server.url,
  AUTOFIX_MODEL: transcript.model,
});

const code = await new Promise((resolve) => {
  const child = spawn(
    process.execPath,
    [
      cli,
      "run",
      join(example, "info.json"),
      "--repo",
      repo,
      "--out",
      outputs,
      ...(hasBwrap ? [] : ["--sandbox", "none"]),
    ],
    { cwd: work, env, stdio: "inherit" },
  );
  // Ctrl-C reaches the child through the terminal; the demo waits for its report.
  process.on("SIGINT", () => {});
  child.on("exit", (c, signal) => resolve(c ?? (signal ? 1 : 0)));
});
await server.close();

console.log("");
console.log(`replay: ${server.served()}/${transcript.responses.length} recorded responses served`);
for (const r of server.refusals()) console.log(`replay refused: ${r}`);
const reports = existsSync(outputs) ? (await readdir(outputs)).filter((f) => f.endsWith(".md")) : [];
if (reports.length > 0) {
  const path = join(outputs, reports.sort().at(-1));
  console.log("");
  console.log(`===== ${path} =====`);
  console.log("");
  console.log(await readFile(path, "utf8"));
}
console.log(`The demo repository stays at ${repo}: try "git -C ${repo} log --oneline --all".`);
process.exit(code);
