#!/usr/bin/env node
import { EXIT, streamIO } from "./command.js";
import { runCli } from "./run.js";

const io = streamIO(process.stdout, process.stderr, process.env, process.cwd());

runCli(process.argv.slice(2), io).then(
  (code) => {
    process.exitCode = code;
  },
  (err) => {
    io.err(`autofix: ${(err as Error).message}`);
    process.exitCode = EXIT.failed;
  },
);
