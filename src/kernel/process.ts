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
