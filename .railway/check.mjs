// Evaluates railway.ts (compiled by `tsc -p .` into out/) with Railway's SDK, offline, and
// checks what it declares; checks ../railway.toml's keys against the SDK's BuildConfig and
// DeployConfig types. Exits non-zero naming what is wrong.
import { existsSync, readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { createRailwayContext, project } from "railway/iac";
import program from "./out/railway.js";

const problems = [];
const check = (ok, what) => { if (!ok) problems.push(what); };

const definition = await program(createRailwayContext({ environment: "production" }), project);
check(definition.name === "yogaflow", `project name ${definition.name}`);
const resources = definition.resources ?? [];
const json = (x) => JSON.stringify(x);
const db = resources.find((r) => json(r).includes('"postgres"') && json(r).includes('"Postgres"'));
const backend = resources.find((r) => json(r).includes('"backend"'));
check(db, `no Postgres database among ${json(resources)}`);
check(backend, `no backend service among ${json(resources)}`);
if (backend) {
  const text = json(backend);
  check(!/"start(Command)?"\s*:/.test(text), `the backend has a start command: ${text}`);
  check(text.includes("DATABASE_URL"), `the backend has no DATABASE_URL: ${text}`);
  const ref = backend.variables?.DATABASE_URL;
  check(ref?.type === "reference" && ref?.resource === "database.Postgres" && ref?.output === "DATABASE_URL",
    `DATABASE_URL does not reference the Postgres database's DATABASE_URL: ${json(ref)}`);
  check(backend.deploy?.healthcheckPath === "/health", `no /health health check: ${text}`);
  check(!backend.deploy?.startCommand, `a start command: ${backend.deploy?.startCommand}`);
  check(text.includes("/health"), `no /health health check: ${text}`);
  check(text.includes("DOCKERFILE"), `not built from the Dockerfile: ${text}`);
  const m = text.match(/"dockerfilePath"\s*:\s*"([^"]+)"/);
  check(m && existsSync(`../${m[1]}`), `dockerfilePath names no Dockerfile of the repository: ${m && m[1]}`);
  const toml = readFileSync("../railway.toml", "utf8").match(/^dockerfilePath\s*=\s*"([^"]+)"/m);
  check(m && toml && toml[1] === m[1], `railway.toml and railway.ts build different Dockerfiles: ${toml && toml[1]} vs ${m && m[1]}`);
}

// railway.toml: every key a key of the SDK's BuildConfig ([build]) or DeployConfig ([deploy]).
const require = createRequire(import.meta.url);
const dir = require.resolve("railway/iac").replace(/iac[\\/]index\.c?js$/, "");
const types = readFileSync(require.resolve("railway/iac").replace(/\.c?js$/, ".d.ts"), "utf8");
const chunk = (types.match(/from '\.\.\/(index-[^']+)\.js'/) || [])[1];
const decls = chunk ? readFileSync(`${dir}${chunk}.d.ts`, "utf8") : types;
const keysOf = (name) => {
  const body = decls.match(new RegExp(`type ${name} = \\{([\\s\\S]*?)\\n\\};`));
  return new Set(body ? [...body[1].matchAll(/^\s{4}(\w+)\??:/gm)].map((m) => m[1]) : []);
};
const allowed = { build: keysOf("BuildConfig"), deploy: keysOf("DeployConfig") };
check(allowed.build.size > 3 && allowed.deploy.size > 3, "could not read BuildConfig/DeployConfig from the SDK");
let section = "";
for (const line of readFileSync("../railway.toml", "utf8").split("\n")) {
  const s = line.trim();
  const head = s.match(/^\[(\w+)\]$/);
  if (head) { section = head[1]; continue; }
  const key = s.match(/^(\w+)\s*=/);
  if (!key) continue;
  check(allowed[section]?.has(key[1]), `railway.toml [${section}] ${key[1]} is not a key of the SDK's ${section === "build" ? "BuildConfig" : "DeployConfig"}`);
  check(!(section === "deploy" && key[1] === "startCommand"), "railway.toml sets startCommand");
}

if (problems.length) {
  console.error(problems.map((p) => `FAIL ${p}`).join("\n"));
  process.exit(1);
}
console.log(`railway.ts: ${resources.length} resources (Postgres, backend: Dockerfile, /health, DATABASE_URL from Postgres, no start command); railway.toml keys match the SDK`);
