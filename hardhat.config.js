// Hardhat 3 compiles with the solc that npm installed (soljson.js), so nothing is downloaded;
// the `solc` package's version in package.json must equal `version` below.
import { createRequire } from "node:module";
import { defineConfig } from "hardhat/config";

const require = createRequire(import.meta.url);

export default defineConfig({
  solidity: {
    version: "0.8.30",
    path: require.resolve("solc/soljson.js"),
    settings: {
      optimizer: { enabled: true, runs: 10000 },
      evmVersion: "prague",
    },
  },
  networks: {
    localhost: { type: "http", url: "http://127.0.0.1:8545" },
  },
});
