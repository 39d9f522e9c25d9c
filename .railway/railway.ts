// Railway Infrastructure as Code for the YogaFlow project: the Postgres database and the
// backend service, written with Railway's SDK (`railway/iac`), planned and applied with
// `railway config plan` / `railway config apply`. A service is managed either by this file or
// by the repository's railway.toml (Config as Code), not both.
//
// Migrations run in the image's ENTRYPOINT (`docker-entrypoint.sh` runs `yogaflow-migrate up`,
// then execs the app). So there is no start command here on purpose: a start command replaces
// the ENTRYPOINT and the migration would be skipped. The alternative is `preDeploy:
// ["yogaflow-migrate", "up"]`: it runs once per deploy in a container of its own (replicas never
// race), but with no volumes mounted and without retries; see docs/container.md, "Railway".
//
// For the first deploy over a database the backend made before the migrator (Alembic or
// create_all), set MIGRATE_BASELINE=true on the service: `up` adopts it, then applies the rest.
import { defineRailway, postgres, service } from "railway/iac";

export default defineRailway((_ctx, project) => {
  const db = postgres("Postgres");
  const backend = service("backend", {
    // The example backend (examples/backend): the migrator, its entrypoint and the app in one
    // image, built from the repository root. Point this at the real backend's Dockerfile.
    build: { builder: "DOCKERFILE", dockerfilePath: "examples/backend/Dockerfile" },
    healthcheck: "/health",
    healthcheckTimeout: 300,
    deploy: { restartPolicyType: "ON_FAILURE", restartPolicyMaxRetries: 10 },
    env: {
      // A missing reference leaves DATABASE_URL unset; the migrator then stops the deploy.
      DATABASE_URL: db.env.DATABASE_URL,
    },
  });
  return project("yogaflow", { resources: [db, backend] });
});
