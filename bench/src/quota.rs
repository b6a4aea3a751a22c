//! CPU quotas of Lambda memory sizes. Lambda gives a function CPU in proportion to its memory
//! (1,769 MB buys one vCPU), so a 128 MB function gets about 7% of one. A cgroup with that
//! CFS quota (cgroup v1 `cpu.cfs_quota_us`, or v2 `cpu.max`) holds the function process from
//! its first instruction: the child joins it between fork and exec. For Lambda's on-demand
//! init, which runs on a full vCPU, a process can instead move into it when its init ends.

use std::path::PathBuf;

use crate::BoxError;

/// Memory that buys one vCPU.
pub const MB_PER_VCPU: f64 = 1769.0;
/// The CFS period. Lambda's is not published; 20 ms keeps the smallest quota (128 MB: 1.45 ms)
/// above the kernel's 1 ms minimum, and a cold start of tens of ms spans several periods.
pub const PERIOD_US: u64 = 20_000;

/// A cgroup with the CPU share of `memory_mb`; removed on drop.
pub struct Quota {
    pub memory_mb: u32,
    dir: PathBuf,
    /// The file a process writes `0` to, to join.
    join: PathBuf,
}

impl Quota {
    /// The quota per period, in µs; `None` (no limit) for `memory_mb` 0, the whole machine.
    pub fn quota_us(memory_mb: u32) -> Option<u64> {
        (memory_mb > 0)
            .then(|| (f64::from(memory_mb) / MB_PER_VCPU * PERIOD_US as f64).round() as u64)
    }

    /// Makes the cgroup, or says why it cannot. `memory_mb` 0 makes one without a limit, so
    /// that the full-CPU runs are scheduled as a group too, like the limited ones (on a busy
    /// machine a group competes as one entity beside the other processes).
    pub fn new(memory_mb: u32) -> Result<Quota, BoxError> {
        let quota = Self::quota_us(memory_mb);
        let name = format!("apikeys-bench-{}-{memory_mb}", std::process::id());
        let v1 = PathBuf::from("/sys/fs/cgroup/cpu");
        if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(name);
            std::fs::create_dir_all(&dir)?;
            std::fs::write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
            let quota = quota.map_or("-1".to_owned(), |q| q.to_string());
            std::fs::write(dir.join("cpu.cfs_quota_us"), quota)?;
            let join = dir.join("tasks");
            return Ok(Quota {
                memory_mb,
                dir,
                join,
            });
        }
        let v2 = PathBuf::from("/sys/fs/cgroup");
        if v2.join("cgroup.controllers").exists() {
            let dir = v2.join(name);
            std::fs::create_dir_all(&dir)?;
            let quota = quota.map_or("max".to_owned(), |q| q.to_string());
            std::fs::write(dir.join("cpu.max"), format!("{quota} {PERIOD_US}"))?;
            let join = dir.join("cgroup.procs");
            return Ok(Quota {
                memory_mb,
                dir,
                join,
            });
        }
        Err("no cgroup cpu controller at /sys/fs/cgroup/cpu (v1) or /sys/fs/cgroup (v2)".into())
    }

    /// The file that moves a whole process (all its threads) into the cgroup.
    pub fn procs_file(&self) -> PathBuf {
        self.dir.join("cgroup.procs")
    }

    /// The file the child writes `0` to (itself) before exec.
    pub fn join_file(&self) -> &std::path::Path {
        &self.join
    }
}

impl Drop for Quota {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir(&self.dir);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_memory_size_buys_its_share_of_a_vcpu() {
        // 128 MB: 7.2% of a vCPU, above the kernel's 1 ms minimum quota.
        assert_eq!(Quota::quota_us(128), Some(1447));
        assert_eq!(Quota::quota_us(1769), Some(PERIOD_US));
        assert_eq!(Quota::quota_us(0), None);
    }
}
