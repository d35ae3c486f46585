#!/usr/bin/env node
// An SMSC simulator on node-smpp (npm `smpp`) for the SMPP tests: it sends receipts and MO with
// the data_coding a test asks for (1 = IA5/ASCII by default), which the smpp34 simulator cannot.
//   NODE_PATH=<node_modules> node smsc_sim_node.js PORT LOGFILE
// Accepts every bind; answers submit_sm with a decimal id and, when registered_delivery & 1, a
// receipt in data_coding 1. Commands on stdin, one JSON object a line:
//   {"mo": {"src", "dst", "text", "dc"}}   {"receipt": {"id", "stat", "dc"}}
// Prints "ready PORT" when listening. Loopback only.
'use strict';
const fs = require('fs');
const readline = require('readline');
const smpp = require('smpp');

const port = parseInt(process.argv[2], 10);
const logFile = process.argv[3];
const sessions = [];
let counter = 0;

function log(record) { fs.appendFileSync(logFile, JSON.stringify(record) + '\n'); }

function stamp() {
  const d = new Date();
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
    p(d.getUTCHours()) + p(d.getUTCMinutes());
}

function deliver(fields) {
  const session = sessions[0];
  if (!session) { log({ event: 'deliver_dropped' }); return; }
  session.deliver_sm(fields, (pdu) => log({ event: 'deliver_resp', status: pdu.command_status }));
}

function receipt(id, stat, dc, src, dst) {
  const text = `id:${id} sub:001 dlvrd:001 submit date:${stamp()} done date:${stamp()} ` +
    `stat:${stat} err:000 text:ascii receipt`;
  deliver({
    source_addr: dst || '15551230001', destination_addr: src || '15550001111', esm_class: 0x04,
    data_coding: dc, short_message: { message: Buffer.from(text, 'latin1') },
  });
}

const server = smpp.createServer({ debug: false }, (session) => {
  const bind = (pdu) => {
    sessions.unshift(session);
    log({ event: 'bind', system_id: pdu.system_id });
    session.send(pdu.response({ system_id: 'NODESIM' }));
  };
  session.on('bind_transceiver', bind);
  session.on('bind_transmitter', bind);
  session.on('bind_receiver', bind);
  session.on('enquire_link', (pdu) => session.send(pdu.response()));
  session.on('unbind', (pdu) => { session.send(pdu.response()); session.close(); });
  session.on('close', () => { const i = sessions.indexOf(session); if (i >= 0) sessions.splice(i, 1); });
  session.on('error', (e) => log({ event: 'session_error', error: e.message }));
  session.on('submit_sm', (pdu) => {
    counter += 1;
    const mid = String(counter);
    log({ event: 'submit', mid, dc: pdu.data_coding, dst: pdu.destination_addr });
    session.send(pdu.response({ message_id: mid }));
    if (pdu.registered_delivery & 1) {
      setTimeout(() => receipt(mid, 'DELIVRD', 1, pdu.source_addr, pdu.destination_addr), 20);
    }
  });
});

server.listen(port, '127.0.0.1', () => console.log(`ready ${port}`));
readline.createInterface({ input: process.stdin }).on('line', (line) => {
  if (!line.trim()) return;
  const cmd = JSON.parse(line);
  if (cmd.mo) {
    const dc = cmd.mo.dc === undefined ? 1 : cmd.mo.dc;
    const encoding = dc === 8 ? 'utf16le' : 'latin1';
    let body = Buffer.from(cmd.mo.text, encoding);
    if (dc === 8) body = body.swap16();
    deliver({
      source_addr: cmd.mo.src, destination_addr: cmd.mo.dst, data_coding: dc,
      short_message: { message: body },
    });
  }
  if (cmd.receipt) receipt(cmd.receipt.id, cmd.receipt.stat || 'DELIVRD', cmd.receipt.dc === undefined ? 1 : cmd.receipt.dc);
});
process.on('SIGTERM', () => process.exit(0));
