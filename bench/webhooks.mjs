// Webhook ingest: signed deliveries over real HTTP on loopback, at fixed rates (open loop),
// to the Autofix web app (real Redis, local fake GitHub) and, side by side, to a bare Probot
// app that only acknowledges. Prints throughput, p50/p99 acknowledgement latency and errors.
//
//   npm run bench:webhooks [-- --seconds 5 --rates 50,100,200,400]
import { fork } from "node:child_process";
import { createHmac } from "node:crypto";
import { Agent, request } from "node:http";
import { createRequire } from "node:module";
import { Redis } from "ioredis";
import { startFakeGitHubProcess } from "./lib/fake-github.mjs";
import { reportJson } from "./lib/report.mjs";
import { percentile, printTable } from "./lib/table.mjs";

const require = createRequire(import.meta.url);
const args = process.argv.slice(2);
const opt = (name, def) => {
  const i = args.indexOf(`--${name}`);
  return i >= 0 ? args[i + 1] : def;
};
const SECONDS = Number(opt("seconds", "5"));
const RATES = opt("rates", "50,100,200,400").split(",").map(Number);
const REDIS_URL = process.env.REDIS_URL ?? "redis://127.0.0.1:6379";
const SECRET = "bench-secret";

const example = require("@octokit/webhooks-examples/api.github.com/index.json")
  .find((e) => e.name === "issue_comment")
  .examples.find((x) => x.action === "created");

function delivery(i, kind) {
  const p = structuredClone(example);
  p.installation = { id: 42 };
  p.repository.default_branch = "main";
  p.issue.number = 100_000 + i; // a new target each time: commands enqueue instead of deduplicating
  p.comment.id = 5_000_000 + i;
  p.comment.body = kind === "command" ? "/autofix the gather op times out" : "Thanks, looks good to me.";
  const body = JSON.stringify(p);
  return {
    body,
    sig: `sha256=${createHmac("sha256", SECRET).update(body).digest("hex")}`,
    id: `bench-${kind}-${Date.now()}-${i}`,
  };
}

async function startServer(mode, githubUrl, prefix) {
  const child = fork(
    new URL("./lib/webhook-server.mjs", import.meta.url),
    [mode, githubUrl, REDIS_URL, prefix],
    {
      stdio: ["ignore", "inherit", "inherit", "ipc"],
      execArgv: process.env.BENCH_PROFILE
        ? ["--cpu-prof", `--cpu-prof-dir=${process.env.BENCH_PROFILE}`]
        : [],
    },
  );
  const port = await new Promise((resolve, reject) => {
    child.once("message", (m) => resolve(m.port));
    child.once("exit", (code) => reject(new Error(`${mode} server exited with ${code}`)));
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

async function load(port, rate, kind) {
  const agent = new Agent({ keepAlive: true, maxSockets: 256 });
  const total = Math.round(rate * SECONDS);
  const bodies = Array.from({ length: total }, (_, i) => delivery(i, kind));
  const latencies = [];
  let errors = 0;
  const start = performance.now();
  await new Promise((done) => {
    let finished = 0;
    bodies.forEach((d, i) => {
      const scheduled = start + (i * 1000) / rate;
      setTimeout(
        () => {
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
              res.on("end", () => {
                // Latency from the scheduled send time: a server that falls behind is charged for the wait.
                latencies.push(performance.now() - scheduled);
                if (res.statusCode < 200 || res.statusCode >= 300) errors++;
                if (++finished === total) done();
              });
            },
          );
          req.on("error", () => {
            errors++;
            if (++finished === total) done();
          });
          req.end(d.body);
        },
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

const github = await startFakeGitHubProcess();
const prefix = `autofix-bench-${process.pid}`;
const rows = [];
const results = {};
for (const [mode, kind, label] of [
  ["bare", "chatter", "bare Probot (ack only)"],
  ["autofix", "chatter", "Autofix: comments without a command"],
  ["autofix", "command", "Autofix: /autofix commands (enqueue)"],
]) {
  const server = await startServer(mode, github.url, prefix);
  await load(server.port, 20, kind); // warm-up: JIT, connections, token cache
  for (const rate of RATES) {
    const r = await load(server.port, rate, kind);
    results[`${label}@${rate}`] = r;
    rows.push([label, rate, r.throughput.toFixed(0), r.p50.toFixed(1), r.p99.toFixed(1), r.errors]);
  }
  await server.stop();
}
await github.close();
const redis = new Redis(REDIS_URL);
let cursor = "0";
do {
  const [next, keys] = await redis.scan(cursor, "MATCH", `${prefix}:*`, "COUNT", 1000);
  cursor = next;
  if (keys.length) await redis.del(...keys);
} while (cursor !== "0");
redis.disconnect();

console.log(`\nWebhook ingest (${SECONDS}s per rate, open loop, loopback, Redis ${REDIS_URL}):\n`);
printTable(["server", "rate/s", "done/s", "p50 ms", "p99 ms", "errors"], rows);
for (const rate of RATES) {
  const bare = results[`bare Probot (ack only)@${rate}`];
  const cmd = results[`Autofix: /autofix commands (enqueue)@${rate}`];
  const chat = results[`Autofix: comments without a command@${rate}`];
  console.log(
    `at ${rate}/s: Autofix throughput ${((100 * chat.throughput) / bare.throughput).toFixed(0)}% (chatter) and ${((100 * cmd.throughput) / bare.throughput).toFixed(0)}% (commands) of the bare app`,
  );
}
const top = Math.max(...RATES);
const bareTop = results[`bare Probot (ack only)@${top}`];
const cmdTop = results[`Autofix: /autofix commands (enqueue)@${top}`];
// The issue's goal, at 200 deliveries/s: p99 under 50 ms, throughput at least 70% of the bare app.
const GOAL_RATE = 200;
const goalRows = RATES.includes(GOAL_RATE)
  ? ["Autofix: comments without a command", "Autofix: /autofix commands (enqueue)"].flatMap((label) => {
      const r = results[`${label}@${GOAL_RATE}`];
      const bare = results[`bare Probot (ack only)@${GOAL_RATE}`];
      const kind = label.includes("commands (enqueue)") ? "/autofix commands" : "comments without a command";
      return [
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
      ];
    })
  : [];
reportJson("webhooks", [
  ...goalRows,
  {
    figure: `/autofix commands at ${top}/s: done/s`,
    value: cmdTop.throughput.toFixed(0),
    baseline: `${bareTop.throughput.toFixed(0)} (bare Probot)`,
    goal: "-",
    met: null,
  },
  {
    figure: `/autofix commands at ${top}/s: p99 ack`,
    value: `${cmdTop.p99.toFixed(1)} ms`,
    baseline: `${bareTop.p99.toFixed(1)} ms (bare Probot)`,
    goal: "-",
    met: null,
  },
  {
    figure: "/autofix commands: highest rate served in full",
    value: `${Math.max(0, ...RATES.filter((r) => results[`Autofix: /autofix commands (enqueue)@${r}`].throughput >= 0.95 * r))}/s`,
    baseline: `${Math.max(0, ...RATES.filter((r) => results[`bare Probot (ack only)@${r}`].throughput >= 0.95 * r))}/s (bare Probot)`,
    goal: "-",
    met: null,
  },
  {
    figure: "errors (all rates, all servers)",
    value: String(Object.values(results).reduce((a, r) => a + r.errors, 0)),
    baseline: "-",
    goal: "0",
    met: Object.values(results).every((r) => r.errors === 0),
  },
]);
