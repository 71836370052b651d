// Webhook bench (issue 16), with the production configuration: the server `npm start` runs
// (`node dist/src/web/main.js`, NODE_ENV=production: Probot's own Octokit with its write
// throttle ON, the outbox drainer), pointed at a fake GitHub through the GitHub Enterprise
// setting (GHE_HOST, GHE_PROTOCOL=http), real Redis under a prefix of its own.
//
//  1. Bursts: 20 and 200 `/autofix` commands sent at once (each on its own issue). Prints the
//     acknowledgement p50/p99/max, how many were 2xx, and the time until every status comment
//     (and, for the smaller bursts, every 👀 reaction) exists on the fake GitHub.
//  2. Open-loop rates (as before): chatter and commands at fixed rates, same production server.
//
// Side by side, the baseline: a bare Probot app that only acknowledges (bench/lib/webhook-server.mjs).
//
//   npm run bench:webhooks [-- --bursts 20,200 --seconds 5 --rates 50,100,200,400 --latency 0]
//
// --latency adds that many ms to every fake GitHub answer (the issue saw trouble at 150 ms).
import { fork, spawn } from "node:child_process";
import { createHmac, generateKeyPairSync } from "node:crypto";
import { Agent, request } from "node:http";
import { createRequire } from "node:module";
import { createServer } from "node:net";
import { Redis } from "ioredis";
import { startFakeGitHubProcess } from "./lib/fake-github.mjs";
import { fmtMs, reportJson } from "./lib/report.mjs";
import { percentile, printTable } from "./lib/table.mjs";

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const SECONDS = Number(opt("seconds", "5"));
const RATES = opt("rates", "50,100,200,400").split(",").filter(Boolean).map(Number);
const BURSTS = opt("bursts", "20,200").split(",").filter(Boolean).map(Number);
const LATENCY_MS = Number(opt("latency", "0"));
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
// Production refuses a secret shorter than 16 characters; the bare server uses the same one.
const SECRET = "bench-webhook-secret-0123456789";
/** GitHub's documented content-creation limit, which the outbox paces to: 80 a minute per installation. */
const CONTENT_PER_MINUTE = 80;

const example = require("@octokit/webhooks-examples/api.github.com/index.json")
  .find((e) => e.name === "issue_comment")
  .examples.find((x) => x.action === "created");

let issueBase = 100_000;
function deliveries(n, kind) {
  const start = issueBase;
  issueBase += n;
  return Array.from({ length: n }, (_, k) => {
    const i = start + k;
    const p = structuredClone(example);
    p.installation = { id: 42 };
    p.repository.default_branch = "main";
    p.issue.number = i; // a new target each time: commands enqueue instead of deduplicating
    p.issue.body = "The gather op times out on N150.\n\nhttps://github.com/o/r/actions/runs/5/job/6";
    p.comment.id = 5_000_000 + i;
    p.comment.body = kind === "command" ? "/autofix the gather op times out" : "Thanks, looks good to me.";
    const body = JSON.stringify(p);
    return {
      body,
      sig: `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`,
      id: `bench-${kind}-${process.pid}-${i}`,
    };
  });
}

function freePort() {
  return new Promise((resolve, reject) => {
    const s = createServer();
    s.once("error", reject);
    s.listen(0, "127.0.0.1", () => {
      const { port } = s.address();
      s.close(() => resolve(port));
    });
  });
}

const privateKey = generateKeyPairSync("rsa", { modulusLength: 2048 })
  .privateKey.export({ type: "pkcs1", format: "pem" })
  .toString();

/** `npm start`'s process: node dist/src/web/main.js, production settings, the fake GitHub as GHE. */
async function startProduction(githubUrl, prefix) {
  const port = await freePort();
  // BENCH_PROFILE=<dir> writes a CPU profile of the web process there.
  const profile = process.env.BENCH_PROFILE
    ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`]
    : [];
  const child = spawn(
    process.execPath,
    [...profile, new URL("../dist/src/web/main.js", import.meta.url).pathname],
    {
      stdio: ["ignore", "ignore", "pipe"],
      env: {
        PATH: process.env.PATH,
        HOME: process.env.HOME,
        NODE_ENV: "production",
        APP_ID: "1",
        PRIVATE_KEY: privateKey,
        WEBHOOK_SECRET: SECRET,
        GHE_HOST: new URL(githubUrl).host,
        GHE_PROTOCOL: "http",
        HOST: "127.0.0.1",
        PORT: String(port),
        REDIS_URL,
        AUTOFIX_QUEUE_PREFIX: prefix,
        LOG_LEVEL: "warn",
        LOG_FORMAT: "json",
      },
    },
  );
  let stderr = "";
  child.stderr.on("data", (c) => {
    stderr += c;
  });
  const exited = new Promise((r) => child.once("exit", (code) => r(code)));
  const deadline = Date.now() + 60_000;
  for (;;) {
    const code = await Promise.race([exited, new Promise((r) => setTimeout(() => r(undefined), 100))]);
    if (code !== undefined) throw new Error(`node dist/src/web/main.js exited with ${code}:\n${stderr}`);
    try {
      const res = await fetch(`http://127.0.0.1:${port}/healthz`);
      if (res.ok) break;
    } catch {}
    if (Date.now() > deadline) throw new Error(`the web process did not answer /healthz:\n${stderr}`);
  }
  return {
    port,
    stop: async () => {
      child.kill("SIGTERM");
      await exited;
    },
  };
}

/** The baseline: a bare Probot app (signature check, acknowledge, one no-op handler). */
async function startBare(githubUrl, prefix) {
  const child = fork(
    new URL("./lib/webhook-server.mjs", import.meta.url),
    ["bare", githubUrl, REDIS_URL, prefix],
    {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      env: { ...process.env, BENCH_WEBHOOK_SECRET: SECRET },
    },
  );
  const port = await new Promise((resolve, reject) => {
    child.once("message", (m) => resolve(m.port));
    child.once("exit", (code) => reject(new Error(`bare server exited with ${code}`)));
  });
  return {
    port,
    stop: () =>
      new Promise((r) => {
        child.once("exit", r);
        child.send("stop");
      }),
  };
}

function send(agent, port, d, onDone) {
  const req = request(
    {
      host: "127.0.0.1",
      port,
      path: "/api/github/webhooks",
      method: "POST",
      agent,
      headers: {
        "content-type": "application/json",
        "x-github-event": "issue_comment",
        "x-github-delivery": d.id,
        "x-hub-signature-256": d.sig,
      },
    },
    (res) => {
      res.resume();
      res.on("end", () => onDone(res.statusCode));
    },
  );
  req.on("error", () => onDone(0));
  req.end(d.body);
}

/**
 * n commands at once. Latency counts from the moment the burst starts. With `stats`, waits for
 * every status comment (and every reaction, when `reactions`) to exist on the fake GitHub.
 */
async function burst(port, n, stats, { reactions = true } = {}) {
  const agent = new Agent({ keepAlive: true, maxSockets: n });
  const ds = deliveries(n, "command");
  const before = stats ? await stats() : null;
  const latencies = [];
  let ok = 0;
  const t0 = performance.now();
  await new Promise((done) => {
    let finished = 0;
    for (const d of ds)
      send(agent, port, d, (status) => {
        latencies.push(performance.now() - t0);
        if (status >= 200 && status < 300) ok++;
        if (++finished === n) done();
      });
  });
  agent.destroy();
  latencies.sort((a, b) => a - b);
  const out = {
    n,
    ok,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    max: latencies.at(-1),
    statusMs: null,
    reactionsMs: null,
  };
  if (stats) {
    // GitHub's pace is the floor: n comments at 80 a minute, plus a minute of slack.
    const deadline = t0 + (n * 60_000) / CONTENT_PER_MINUTE + 60_000;
    while (performance.now() < deadline) {
      const s = await stats();
      const now = performance.now() - t0;
      if (out.statusMs === null && s.statusComments - before.statusComments >= n) out.statusMs = now;
      if (out.reactionsMs === null && s.reactions - before.reactions >= n) out.reactionsMs = now;
      if (out.statusMs !== null && (!reactions || out.reactionsMs !== null)) break;
      await new Promise((r) => setTimeout(r, 50));
    }
  }
  return out;
}

async function load(port, rate, kind) {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round(rate * SECONDS);
  const bodies = deliveries(total, kind);
  const latencies = [];
  let errors = 0;
  const start = performance.now();
  await new Promise((done) => {
    let finished = 0;
    bodies.forEach((d, i) => {
      const scheduled = start + (i * 1000) / rate;
      setTimeout(
        () =>
          send(agent, port, d, (status) => {
            // Latency from the scheduled send time: a server that falls behind is charged for the wait.
            latencies.push(performance.now() - scheduled);
            if (status < 200 || status >= 300) errors++;
            if (++finished === total) done();
          }),
        Math.max(0, scheduled - performance.now()),
      );
    });
  });
  const elapsed = (performance.now() - start) / 1000;
  agent.destroy();
  latencies.sort((a, b) => a - b);
  return {
    sent: total,
    throughput: total / elapsed,
    p50: percentile(latencies, 50),
    p99: percentile(latencies, 99),
    errors,
  };
}

async function dropPrefix(prefix) {
  const redis = new Redis(REDIS_URL);
  let cursor = "0";
  do {
    const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
    cursor = next;
    if (keys.length) await redis.del(...keys);
  } while (cursor !== "0");
  redis.disconnect();
}

const secs = (ms) => (ms === null ? "-" : (ms / 1000).toFixed(2));
const prefixes = [];
const newPrefix = (label) => {
  const p = `autofix-bench-${process.pid}-${label}`;
  prefixes.push(p);
  return p;
};

// 1. Bursts. A fresh fake GitHub and a fresh prefix per server, so one server's backlog is not the other's.
const burstRows = [];
const bursts = {};
for (const mode of ["bare", "production"]) {
  const github = await startFakeGitHubProcess({ latencyMs: LATENCY_MS });
  const server =
    mode === "bare"
      ? await startBare(github.url, newPrefix("bare"))
      : await startProduction(github.url, newPrefix("burst"));
  await burst(server.port, 2, mode === "bare" ? null : github.stats); // warm-up: JIT, token, connections
  for (const n of BURSTS) {
    const r = await burst(server.port, n, mode === "bare" ? null : github.stats, { reactions: n <= 20 });
    bursts[`${mode}@${n}`] = r;
    burstRows.push([
      mode === "bare" ? "bare Probot (ack only)" : "Autofix, npm start (throttle on)",
      n,
      `${r.ok}/${n}`,
      r.p50.toFixed(1),
      r.p99.toFixed(1),
      r.max.toFixed(1),
      mode === "bare" ? "-" : secs(r.statusMs),
      mode === "bare" ? "-" : n <= 20 ? secs(r.reactionsMs) : "(not waited)",
      mode === "bare" ? "-" : ((n * 60) / CONTENT_PER_MINUTE).toFixed(1),
    ]);
  }
  await server.stop();
  await github.close();
}

// 2. Open-loop rates, against the same production server.
const rows = [];
const results = {};
for (const [mode, kind, label] of [
  ["bare", "chatter", "bare Probot (ack only)"],
  ["production", "chatter", "Autofix: comments without a command"],
  ["production", "command", "Autofix: /autofix commands (enqueue)"],
]) {
  if (RATES.length === 0) break;
  const github = await startFakeGitHubProcess({ latencyMs: LATENCY_MS });
  const server =
    mode === "bare"
      ? await startBare(github.url, newPrefix(`rate-bare-${kind}`))
      : await startProduction(github.url, newPrefix(`rate-${kind}`));
  await load(server.port, 20, kind); // warm-up
  for (const rate of RATES) {
    const r = await load(server.port, rate, kind);
    results[`${label}@${rate}`] = r;
    rows.push([label, rate, r.throughput.toFixed(0), r.p50.toFixed(1), r.p99.toFixed(1), r.errors]);
  }
  await server.stop();
  await github.close();
}
for (const p of prefixes) await dropPrefix(p);

console.log(
  `\nBursts: N /autofix commands sent at once (each on its own issue), loopback, fake GitHub latency ${LATENCY_MS} ms, Redis ${REDIS_URL}.`,
);
console.log(
  "Latency from the start of the burst; 'status comments' and 'reactions' are seconds from the start until the last one exists; the floor is GitHub's 80 creations a minute per installation.\n",
);
printTable(
  ["server", "burst", "2xx", "p50 ms", "p99 ms", "max ms", "status comments s", "reactions s", "floor s"],
  burstRows,
);
if (rows.length > 0) {
  console.log(`\nWebhook ingest (${SECONDS}s per rate, open loop, loopback, the same servers):\n`);
  printTable(["server", "rate/s", "done/s", "p50 ms", "p99 ms", "errors"], rows);
}

const figures = [];
for (const n of BURSTS) {
  const prod = bursts[`production@${n}`];
  const bare = bursts[`bare@${n}`];
  figures.push({
    figure: `burst of ${n} /autofix (npm start, throttle on): p99 ack`,
    value: fmtMs(prod.p99),
    baseline: `${fmtMs(bare.p99)} (bare Probot)`,
    goal: n === 20 ? "< 2 s" : "-",
    met: n === 20 ? prod.p99 < 2000 && prod.ok === n : null,
  });
  figures.push({
    figure: `burst of ${n} /autofix: every status comment exists after`,
    value: prod.statusMs === null ? "not within the wait" : `${secs(prod.statusMs)} s`,
    baseline: `${((n * 60) / CONTENT_PER_MINUTE).toFixed(1)} s (GitHub's 80/min floor)`,
    goal: "-",
    met: null,
  });
}
const GOAL_RATE = 200;
if (RATES.includes(GOAL_RATE)) {
  for (const label of ["Autofix: comments without a command", "Autofix: /autofix commands (enqueue)"]) {
    const r = results[`${label}@${GOAL_RATE}`];
    const bare = results[`bare Probot (ack only)@${GOAL_RATE}`];
    const kind = label.includes("commands (enqueue)") ? "/autofix commands" : "comments without a command";
    figures.push(
      {
        figure: `${kind} at ${GOAL_RATE}/s: p99 ack`,
        value: `${r.p99.toFixed(1)} ms`,
        baseline: `${bare.p99.toFixed(1)} ms (bare Probot)`,
        goal: "< 50 ms",
        met: r.p99 < 50,
      },
      {
        figure: `${kind} at ${GOAL_RATE}/s: throughput vs bare`,
        value: `${((100 * r.throughput) / bare.throughput).toFixed(0)}%`,
        baseline: `${bare.throughput.toFixed(0)}/s (bare Probot)`,
        goal: ">= 70%",
        met: r.throughput >= 0.7 * bare.throughput,
      },
    );
  }
}
if (RATES.length > 0) {
  figures.push({
    figure: "/autofix commands: highest rate served in full",
    value: `${Math.max(0, ...RATES.filter((r) => results[`Autofix: /autofix commands (enqueue)@${r}`].throughput >= 0.95 * r))}/s`,
    baseline: `${Math.max(0, ...RATES.filter((r) => results[`bare Probot (ack only)@${r}`].throughput >= 0.95 * r))}/s (bare Probot)`,
    goal: "-",
    met: null,
  });
}
const rateErrors = Object.values(results).reduce((a, r) => a + r.errors, 0);
const burstErrors = Object.values(bursts).reduce((a, r) => a + (r.n - r.ok), 0);
figures.push({
  figure: "non-2xx answers (all bursts and rates, all servers)",
  value: String(rateErrors + burstErrors),
  baseline: "-",
  goal: "0",
  met: rateErrors + burstErrors === 0,
});
reportJson("webhooks", figures);
