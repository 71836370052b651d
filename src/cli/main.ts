#!/usr/bin/env node
import type { CliIO } from "./command.js";
import { EXIT } from "./command.js";
import { runCli } from "./run.js";

const io: CliIO = {
  out: (l) => process.stdout.write(`${l}\n`),
  err: (l) => process.stderr.write(`${l}\n`),
  env: process.env,
  cwd: process.cwd(),
};

runCli(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    io.err(`autofix: ${(err as Error).message}`);
    process.exitCode = EXIT.failed;
  },
);
