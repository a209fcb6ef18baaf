#!/usr/bin/env node
// Compile every contracts/*.sol with the pinned solc (node API, standard-JSON input) and write
// one artifact per contract to contracts/build/<Name>.json (or to the folder given as argv[2]).
//
// The solcjs CLI is avoided on purpose: it mangles output names. The settings written into each
// artifact are exactly the ones compiled with, so an artifact says how to reproduce itself.
"use strict";

const crypto = require("crypto");
const fs = require("fs");
const path = require("path");
const solc = require("solc");

const HERE = __dirname;
const OUT = path.resolve(process.argv[2] || path.join(HERE, "build"));

// shanghai: both py-evm (Prague-capable) and ganache 7 run it; solc 0.8.37 defaults to osaka.
const SETTINGS = {
  evmVersion: "shanghai",
  optimizer: { enabled: true, runs: 200 },
  metadata: { bytecodeHash: "ipfs" },
  outputSelection: { "*": { "*": ["abi", "evm.bytecode.object", "evm.deployedBytecode.object"] } },
};

function sha256(text) {
  return crypto.createHash("sha256").update(text, "utf8").digest("hex");
}

function main() {
  const files = fs.readdirSync(HERE).filter((f) => f.endsWith(".sol")).sort();
  if (files.length === 0) throw new Error(`no .sol files in ${HERE}`);
  const sources = {};
  for (const f of files) sources[f] = { content: fs.readFileSync(path.join(HERE, f), "utf8") };

  const output = JSON.parse(solc.compile(JSON.stringify({ language: "Solidity", sources, settings: SETTINGS })));
  const problems = output.errors || [];
  for (const p of problems) process.stderr.write(p.formattedMessage + "\n");
  if (problems.some((p) => p.severity === "error")) process.exit(1);

  // One digest over every source (name and content, in name order): a change to any file,
  // even one a contract does not import, marks every artifact stale.
  const sourcesSha256 = sha256(files.map((f) => `${f}\n${sha256(sources[f].content)}\n`).join(""));
  fs.mkdirSync(OUT, { recursive: true });
  for (const f of files) {
    for (const [name, c] of Object.entries(output.contracts[f] || {})) {
      const artifact = {
        contractName: name,
        sourceName: f,
        compiler: { name: "solc", version: solc.version() },
        settings: { evmVersion: SETTINGS.evmVersion, optimizer: SETTINGS.optimizer, metadata: SETTINGS.metadata },
        sourceSha256: sha256(sources[f].content),
        sourcesSha256,
        abi: c.abi,
        bytecode: "0x" + c.evm.bytecode.object,
        deployedBytecode: "0x" + c.evm.deployedBytecode.object,
      };
      fs.writeFileSync(path.join(OUT, `${name}.json`), JSON.stringify(artifact, null, 2) + "\n");
      process.stdout.write(`${path.join(OUT, name + ".json")}\n`);
    }
  }
}

main();
