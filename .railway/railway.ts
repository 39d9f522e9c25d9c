// Railway Infrastructure as Code for the YogaFlow backend service: the successor of
// railway.toml (read only until 2026-12-01, and only for services that already use it).
// Apply with `railway config plan` / `railway config apply`.
//
// No `start` command on purpose: a start command replaces the image's ENTRYPOINT, which is
// what runs `yogaflow-migrate up` before the app. IaC documents no pre-deploy key, so the
// entrypoint is the way to migrate here.
export default {
  services: {
    backend: {
      build: {
        builder: "DOCKERFILE",
        dockerfilePath: "Dockerfile",
      },
      healthcheck: "/health",
      healthcheckTimeout: 300,
      restartPolicy: { type: "ON_FAILURE", maxRetries: 10 },
      replicas: 1,
      variables: {
        // A missing reference leaves DATABASE_URL unset; the migrator then stops the deploy.
        DATABASE_URL: "${{Postgres.DATABASE_URL}}",
      },
    },
  },
};
