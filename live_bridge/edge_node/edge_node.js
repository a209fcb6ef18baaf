#!/usr/bin/env node
// An independent Sparkplug B edge node, built on Eclipse Tahu's JavaScript client, so the
// bridge's host side can be tested against an implementation it did not write.
//
//   node edge_node.js BROKER_URL GROUP EDGE_NODE DEVICE COUNT
//
// It births the node and one device (a Double "litres" with alias 1, an Int32 "level" with
// alias 2, a Boolean "alarm" with alias 3), publishes COUNT DDATA messages (data i carries
// litres = 1.5 * i by alias, level = 2 - i by name (negative from i = 3), stamped 1700000000000 + 60000 * i), prints
// "published COUNT" and then waits: a line "stop" on stdin ends it cleanly (NDEATH published);
// a kill ends it as a power cut would (the broker publishes its last will). A rebirth command
// (NCMD "Node Control/Rebirth") is answered with new births.
"use strict";

const sparkplug = require("sparkplug-client");

const [url, group, edgeNode, device, countText] = process.argv.slice(2);
if (!url || !group || !edgeNode || !device || !/^\d+$/.test(countText || "")) {
  process.stderr.write("usage: node edge_node.js BROKER_URL GROUP EDGE_NODE DEVICE COUNT\n");
  process.exit(2);
}
const count = Number(countText);
const EPOCH_MS = 1700000000000;

const client = sparkplug.newClient({
  serverUrl: url,
  username: null,
  password: null,
  groupId: group,
  edgeNode: edgeNode,
  clientId: `tahu-${edgeNode}-${process.pid}`,
  publishDeath: true,
  version: "spBv1.0",
});

function births() {
  const now = Date.now();
  client.publishNodeBirth({
    timestamp: now,
    metrics: [{ name: "Node Control/Rebirth", type: "Boolean", value: false }],
  });
  client.publishDeviceBirth(device, {
    timestamp: now,
    metrics: [
      { name: "litres", alias: 1, type: "Double", value: 0.0 },
      { name: "level", alias: 2, type: "Int32", value: 0 },
      { name: "alarm", alias: 3, type: "Boolean", value: false },
    ],
  });
}

let published = false;
client.on("birth", () => {
  births();
  if (published) return; // a reconnection: births again, the data was sent once
  published = true;
  for (let i = 0; i < count; i++) {
    const t = EPOCH_MS + 60000 * i;
    client.publishDeviceData(device, {
      timestamp: t,
      metrics: [
        { alias: 1, type: "Double", value: 1.5 * i, timestamp: t },
        { name: "level", type: "Int32", value: 2 - i, timestamp: t },
      ],
    });
  }
  process.stdout.write(`published ${count}\n`);
});

client.on("ncmd", (payload) => {
  const rebirth = (payload.metrics || []).some((m) => m.name === "Node Control/Rebirth" && m.value === true);
  if (rebirth) {
    births();
    process.stdout.write("reborn\n");
  }
});

client.on("error", (error) => {
  process.stderr.write(`edge node: ${error.message || error}\n`);
  process.exit(1);
});

process.stdin.setEncoding("utf8");
process.stdin.on("data", (text) => {
  if (text.split("\n").includes("stop")) {
    client.stop(); // publishes the NDEATH, then ends the connection once it is sent
    process.stdin.destroy(); // nothing else keeps the process alive: it exits when the connection closes
  }
});
