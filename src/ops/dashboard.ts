import type { IncomingMessage, ServerResponse } from "node:http";
import { createBullBoard } from "@bull-board/api";
import { BullMQAdapter } from "@bull-board/api/bullMQAdapter";
import { ExpressAdapter } from "@bull-board/express";
import express from "express";
import type { JobQueues } from "../queue/queues.js";
import { type BasicCredentials, checkBasicAuth, isCrossSiteWrite } from "./auth.js";

export const DASHBOARD_PATH = "/admin/queues";

/** True for the dashboard's own paths (the page, its API and its static files). */
export function isDashboardPath(url: string | undefined): boolean {
  const path = (url ?? "").split("?")[0]!;
  return path === DASHBOARD_PATH || path.startsWith(`${DASHBOARD_PATH}/`);
}

export type DashboardHandler = (req: IncomingMessage, res: ServerResponse) => void;

/**
 * bull-board for every pool queue, behind HTTP Basic authentication. Every request is checked,
 * including the dashboard's JSON API and its static files; the dashboard can retry, promote and
 * remove jobs, so it is an admin tool and never anonymous.
 */
export function createDashboard(opts: {
  queues: JobQueues;
  pools: readonly string[];
  credentials: BasicCredentials;
}): DashboardHandler {
  const serverAdapter = new ExpressAdapter().setBasePath(DASHBOARD_PATH);
  createBullBoard({
    queues: opts.pools.map(
      (pool) =>
        new BullMQAdapter(opts.queues.queue(pool), {
          displayName: pool,
          description: `jobs for the ${pool} pool`,
        }),
    ),
    serverAdapter,
    options: { uiConfig: { boardTitle: "Autofix queues", hideDocsLink: true } },
  });
  const app = express();
  app.disable("x-powered-by");
  app.use(DASHBOARD_PATH, serverAdapter.getRouter());

  return (req, res) => {
    if (!checkBasicAuth(req.headers.authorization, opts.credentials)) {
      res
        .writeHead(401, {
          "www-authenticate": 'Basic realm="autofix admin", charset="UTF-8"',
          "content-type": "text/plain; charset=utf-8",
          "cache-control": "no-store",
        })
        .end("authentication required\n");
      return;
    }
    if (isCrossSiteWrite(req)) {
      res.writeHead(403, { "content-type": "text/plain; charset=utf-8" }).end("cross-site request refused\n");
      return;
    }
    res.setHeader("cache-control", "no-store");
    res.setHeader("x-frame-options", "DENY");
    app(req as express.Request, res as express.Response, () => {
      if (!res.headersSent) res.writeHead(404, { "content-type": "text/plain" }).end("not found\n");
    });
  };
}
