//! CPU time as Linux accounts it: a process's (all its threads) and the machine's, so a
//! measurement can say where the cores went, not only how long it took.

use std::time::Duration;

use anyhow::{Context, Result};

/// Linux reports `/proc` times in USER_HZ, which is 100 on every architecture it exposes
/// to user space (`sysconf(_SC_CLK_TCK)`).
const TICKS_PER_SECOND: u64 = 100;

/// The user and system CPU time process `pid` has used so far, over all its threads.
pub(super) fn process_cpu(pid: u32) -> Result<Duration> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).with_context(|| format!("/proc/{pid}/stat"))?;
    // The command name (field 2) may hold spaces; the fields after it are plain.
    let after_name = stat.rsplit_once(')').map(|(_, rest)| rest).context("no command name in /proc/PID/stat")?;
    let fields: Vec<&str> = after_name.split_whitespace().collect();
    // utime and stime are fields 14 and 15; `after_name` starts at field 3.
    let ticks = |field: usize| -> Result<u64> {
        let value = fields.get(field - 3).with_context(|| format!("no field {field} in /proc/{pid}/stat"))?;
        value.parse().with_context(|| format!("field {field} of /proc/{pid}/stat is `{value}`"))
    };
    Ok(from_ticks(ticks(14)? + ticks(15)?))
}

/// The CPU time every core of the machine has spent busy so far (not idle or waiting for
/// I/O), summed.
pub(super) fn machine_busy() -> Result<Duration> {
    let stat = std::fs::read_to_string("/proc/stat").context("/proc/stat")?;
    let line = stat.lines().find(|line| line.starts_with("cpu ")).context("no `cpu` line in /proc/stat")?;
    let counts: Vec<u64> = line.split_whitespace().skip(1).map(str::parse).collect::<Result<_, _>>()?;
    // user nice system idle iowait irq softirq steal …: all but idle and iowait.
    let busy: u64 = counts.iter().take(8).enumerate().filter(|(i, _)| *i != 3 && *i != 4).map(|(_, n)| n).sum();
    Ok(from_ticks(busy))
}

fn from_ticks(ticks: u64) -> Duration {
    Duration::from_millis(ticks * 1000 / TICKS_PER_SECOND)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_machine_accounts_for_at_least_a_busy_process_s_work() {
        let me = std::process::id();
        let (process_before, machine_before) = (process_cpu(me).unwrap(), machine_busy().unwrap());
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        let mut spin = 0u64;
        while process_cpu(me).unwrap() - process_before < Duration::from_millis(200) {
            assert!(std::time::Instant::now() < deadline, "30 s of spinning never showed 200 ms of CPU");
            for _ in 0..1_000_000 {
                spin = std::hint::black_box(spin.wrapping_add(1));
            }
        }
        let process = process_cpu(me).unwrap() - process_before;
        let machine = machine_busy().unwrap() - machine_before;
        // Both round to 10 ms ticks.
        assert!(machine + Duration::from_millis(20) >= process, "machine {machine:?} < process {process:?}");
    }
}
