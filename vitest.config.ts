import { defineConfig } from "vitest/config";

// Three projects, from cheap to expensive:
// - unit: pure logic, fakes allowed, no root, no network;
// - integration: real parts on loopback (sshd, Mosquitto, snmptrapd, the sidecar process);
// - lab: the multi-host lab in network namespaces (root), brought up once for the whole project.
export default defineConfig({
  test: {
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          testTimeout: 10_000,
        },
      },
      {
        test: {
          name: "integration",
          include: ["test/integration/**/*.test.ts"],
          globalSetup: ["test/integration/global-setup.ts"],
          // One file at a time: real zigbee2mqtt, sshd and simulators on 2 cores time out under
          // each other's load, and serial is hardly slower (the files wait on real programs).
          pool: "forks",
          poolOptions: { forks: { singleFork: true } },
          testTimeout: 60_000,
          hookTimeout: 60_000,
        },
      },
      {
        test: {
          name: "lab",
          include: ["test/lab/**/*.test.ts"],
          testTimeout: 300_000,
          hookTimeout: 300_000,
          pool: "forks",
          poolOptions: { forks: { singleFork: true } },
          globalSetup: ["test/lab/global-setup.ts"],
        },
      },
    ],
  },
});
