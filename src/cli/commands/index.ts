import type { CliCommand } from "../command.js";
import { actionCommand } from "./action.js";
import { analyzeCommand } from "./analyze.js";
import { configCheckCommand } from "./config-check.js";
import { doctorCommand } from "./doctor.js";
import { logsCommand } from "./logs.js";
import { proveCommand } from "./prove.js";
import { runLocalCommand } from "./run.js";
import { statusCommand } from "./status.js";
import { validateCommand } from "./validate.js";
import { workerCommand } from "./worker.js";

/** Every subcommand of `autofix`. Add new ones here. */
export const commands: CliCommand[] = [
  validateCommand,
  configCheckCommand,
  logsCommand,
  workerCommand,
  doctorCommand,
  statusCommand,
  runLocalCommand,
  proveCommand,
  analyzeCommand,
  actionCommand,
];
