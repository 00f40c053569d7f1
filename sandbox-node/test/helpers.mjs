// Shared by the node --test files: host-side views of processes and fds.
import fs from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';

/** Host pids whose command line contains every one of `parts` (NUL-joined argv). */
export function findProcs(...parts) {
  const found = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d) || Number(d) === process.pid) continue;
    let cmd;
    try {
      cmd = fs.readFileSync(`/proc/${d}/cmdline`, 'latin1');
    } catch {
      continue;
    }
    if (parts.every((p) => cmd.includes(p))) found.push(Number(d));
  }
  return found;
}

/** Pids whose parent is this node process. */
export function ownChildren() {
  const kids = [];
  for (const d of fs.readdirSync('/proc')) {
    if (!/^\d+$/.test(d)) continue;
    try {
      const stat = fs.readFileSync(`/proc/${d}/stat`, 'latin1');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      if (ppid === process.pid) kids.push(Number(d));
    } catch {
      // gone meanwhile
    }
  }
  return kids.sort((a, b) => a - b);
}

/** Open fds of this process. */
export function fdCount() {
  return fs.readdirSync('/proc/self/fd').length;
}

/** Poll `fn` until it returns truthy or `ms` pass; returns the last value. */
export async function until(fn, ms = 5000, step = 20) {
  const end = Date.now() + ms;
  let v = fn();
  while (!v && Date.now() < end) {
    await sleep(step);
    v = fn();
  }
  return v;
}

/** A fresh host directory, world-readable (sandbox ids map to nobody as root). */
export function tmpDir(tag) {
  const d = fs.mkdtempSync(path.join(os.tmpdir(), `stockade-node-${tag}-`));
  fs.chmodSync(d, 0o777);
  return d;
}

/** A number unlikely to appear in any other process's argv. */
export function marker() {
  return `${600 + (process.pid % 97)}.${Date.now() % 100000}${Math.floor(Math.random() * 1000)}`;
}
