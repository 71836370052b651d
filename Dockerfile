# syntax=docker/dockerfile:1
# Multi-stage: build with dev dependencies, run with production dependencies only.
FROM node:22-bookworm-slim AS build
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --ignore-scripts --no-audit --no-fund
COPY tsconfig.json tsconfig.build.json ./
COPY src ./src
RUN npx tsc -p tsconfig.build.json

FROM node:22-bookworm-slim AS runtime
# git for workspaces and pushes; tini reaps the process trees the agent's commands leave behind.
RUN apt-get update \
  && apt-get install -y --no-install-recommends git ca-certificates tini procps psmisc python3 \
  && rm -rf /var/lib/apt/lists/*
ENV NODE_ENV=production
WORKDIR /app
COPY package.json package-lock.json ./
RUN npm ci --omit=dev --ignore-scripts --no-audit --no-fund && npm cache clean --force
COPY --from=build /app/dist ./dist
COPY prompts ./prompts
COPY app.yml ./
RUN useradd --create-home --uid 10001 autofix && mkdir -p /var/lib/autofix && chown autofix /var/lib/autofix
USER autofix
ENV AUTOFIX_WORK_DIR=/var/lib/autofix PORT=3000
EXPOSE 3000
ENTRYPOINT ["/usr/bin/tini", "--"]
# The web process by default; the worker service overrides this with `node dist/src/cli/main.js worker`.
CMD ["node", "dist/src/web/main.js"]
