/**
 * @module bench/proc — CPU time and memory of a process from /proc (Linux).
 */

/** What /proc says about a process. */
export interface ProcStats {
  /** user + system CPU seconds so far, all threads. */
  cpuSeconds: number;
  /** Resident set size now, MB. */
  rssMb: number;
  /** Peak resident set size (VmHWM), MB. */
  peakRssMb: number;
}

/** Clock ticks per second of /proc/<pid>/stat (USER_HZ: 100 on Linux). */
const TICKS = 100;

/** Reads /proc/<pid>/stat and /proc/<pid>/status. */
export async function procStats(pid: number): Promise<ProcStats> {
  const stat = await Deno.readTextFile(`/proc/${pid}/stat`);
  // Fields after the command name, which is in parentheses and may hold spaces.
  const fields = stat.slice(stat.lastIndexOf(")") + 2).split(" ");
  const utime = Number(fields[11]);
  const stime = Number(fields[12]);
  const status = await Deno.readTextFile(`/proc/${pid}/status`);
  const kb = (key: string) =>
    Number(new RegExp(`^${key}:\\s+(\\d+) kB`, "m").exec(status)?.[1] ?? 0);
  return {
    cpuSeconds: (utime + stime) / TICKS,
    rssMb: kb("VmRSS") / 1024,
    peakRssMb: kb("VmHWM") / 1024,
  };
}

/** The 1, 5 and 15 minute load averages. */
export async function loadAverage(): Promise<number[]> {
  const text = await Deno.readTextFile("/proc/loadavg");
  return text.split(" ").slice(0, 3).map(Number);
}
