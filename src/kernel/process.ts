import fs from 'node:fs';
/** Whether a process still runs: the owner named in a stale object's name (`pktpath_PID`, `pktpath_trace_PID`). */
export function processAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
    return true;
  } catch (e) {
    // EPERM: it runs, as another user.
    return (e as NodeJS.ErrnoException).code === 'EPERM';
  }
}

/**
 * Whether a process other than this one has the file open for writing
 * (`merge --follow`: a trace still being written). Read from /proc: every
 * process's fds that lead to the file's device and inode, and their flags.
 */
export function openForWriting(dev: number, ino: number): boolean {
  let pids: string[];
  try {
    pids = fs.readdirSync('/proc').filter((p) => /^\d+$/.test(p) && Number(p) !== process.pid);
  } catch {
    return false;
  }
  for (const pid of pids) {
    let fds: string[];
    try {
      fds = fs.readdirSync(`/proc/${pid}/fd`);
    } catch {
      continue;
    }
    for (const fd of fds) {
      try {
        const st = fs.statSync(`/proc/${pid}/fd/${fd}`);
        if (st.dev !== dev || st.ino !== ino) continue;
        const flags = /^flags:\s+([0-7]+)/m.exec(fs.readFileSync(`/proc/${pid}/fdinfo/${fd}`, 'utf8'));
        // O_ACCMODE: 1 write-only, 2 read-write.
        if (flags && (parseInt(flags[1]!, 8) & 3) !== 0) return true;
      } catch {
        // Gone meanwhile.
      }
    }
  }
  return false;
}
