//! Memory and CPU time of other processes, read from `/proc` (Linux).

/// Clock ticks per second of `/proc/PID/stat` (`getconf CLK_TCK`), assumed: `libc` is not a
/// dependency of this crate.
const CLK_TCK: f64 = 100.0;

/// Resident set size of `pid` in KiB (`VmRSS` of `/proc/PID/status`).
pub(crate) fn rss_kib(pid: u32) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with("VmRSS:"))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

/// utime + stime of `pid` in seconds (fields 14 and 15 of `/proc/PID/stat`).
pub(crate) fn cpu_secs(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may hold spaces: count the fields after its closing `)`.
    let rest = &stat[stat.rfind(')')? + 2..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    let ticks = fields.get(11)?.parse::<u64>().ok()? + fields.get(12)?.parse::<u64>().ok()?;
    Some(ticks as f64 / CLK_TCK)
}

/// The sum of [`cpu_secs`] over `pids` (a process that is gone counts as 0).
pub(crate) fn total_cpu_secs(pids: &[u32]) -> f64 {
    pids.iter().filter_map(|&p| cpu_secs(p)).sum()
}

/// Seconds the threads of `pids` ran on a CPU and seconds they were runnable but waited for
/// one (the first two fields of `/proc/PID/task/TID/schedstat`, summed over every thread of
/// every process): the second tells a busy host from a process that is idle.
pub(crate) fn run_and_wait_secs(pids: &[u32]) -> (f64, f64) {
    let (mut run, mut wait) = (0u64, 0u64);
    for pid in pids {
        let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
            continue;
        };
        for task in tasks.flatten() {
            let Ok(stat) = std::fs::read_to_string(task.path().join("schedstat")) else {
                continue;
            };
            let mut fields = stat
                .split_whitespace()
                .map(|f| f.parse::<u64>().unwrap_or(0));
            run += fields.next().unwrap_or(0);
            wait += fields.next().unwrap_or(0);
        }
    }
    (run as f64 / 1e9, wait as f64 / 1e9)
}

/// [`rss_kib`] of each of `pids` (0 for a process that is gone).
pub(crate) fn each_rss_kib(pids: &[u32]) -> Vec<u64> {
    pids.iter().map(|&p| rss_kib(p).unwrap_or(0)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_this_process() {
        let me = std::process::id();
        assert!(rss_kib(me).is_some_and(|k| k > 0));
        assert!(cpu_secs(me).is_some());
        assert_eq!(each_rss_kib(&[u32::MAX]), vec![0]);
        assert!(run_and_wait_secs(&[me]).0 > 0.0);
    }
}
