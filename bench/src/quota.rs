//! CPU quotas of Lambda memory sizes. Lambda gives a function CPU in proportion to its memory
//! (1,769 MB buys one vCPU), so a 128 MB function gets about 7% of one. A cgroup with that
//! CFS quota (cgroup v1 `cpu.cfs_quota_us`, or v2 `cpu.max`) holds the function process from
//! its first instruction: a small launcher joins it, then execs the function (`launch`). For
//! Lambda's on-demand init, which runs on a full vCPU, a cgroup of its own gives one vCPU
//! until the process's init ends, then the memory size's share ([`Quota::limit`]).

use std::path::PathBuf;

use crate::BoxError;

/// Memory that buys one vCPU.
pub const MB_PER_VCPU: f64 = 1769.0;
/// The CFS period. Lambda's is not published; 20 ms keeps the smallest quota (128 MB: 1.45 ms)
/// above the kernel's 1 ms minimum, and a cold start of tens of ms spans several periods.
pub const PERIOD_US: u64 = 20_000;

/// A cgroup with the CPU share of `memory_mb`; removed on drop.
pub struct Quota {
    /// The memory size whose share this cgroup gives (0: the whole machine), or, for an
    /// on-demand cgroup, the share it gives once a process's init ends.
    pub memory_mb: u32,
    dir: PathBuf,
    /// The file a process writes `0` to, to join.
    join: PathBuf,
    /// The file that sets the limit, and whether it is cgroup v2's `cpu.max`.
    limit: PathBuf,
    v2: bool,
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
        let q = Self::make(format!("{memory_mb}"), memory_mb)?;
        q.limit(memory_mb)?;
        Ok(q)
    }

    /// A cgroup for on-demand cold starts at `memory_mb`: its limit is set per process
    /// ([`Quota::limit`]: one vCPU during init, then `memory_mb`'s share).
    pub fn on_demand(memory_mb: u32) -> Result<Quota, BoxError> {
        let q = Self::make(format!("{memory_mb}-on-demand"), memory_mb)?;
        q.limit(0)?;
        Ok(q)
    }

    fn make(tag: String, memory_mb: u32) -> Result<Quota, BoxError> {
        let name = format!("apikeys-bench-{}-{tag}", std::process::id());
        let v1 = PathBuf::from("/sys/fs/cgroup/cpu");
        if v1.join("cpu.cfs_quota_us").exists() {
            let dir = v1.join(name);
            std::fs::create_dir_all(&dir)?;
            // Made first, so that the directory goes on drop whatever fails next.
            let q = Quota {
                memory_mb,
                join: dir.join("tasks"),
                limit: dir.join("cpu.cfs_quota_us"),
                v2: false,
                dir,
            };
            std::fs::write(q.dir.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
            return Ok(q);
        }
        let v2 = PathBuf::from("/sys/fs/cgroup");
        if v2.join("cgroup.controllers").exists() {
            let dir = v2.join(name);
            std::fs::create_dir_all(&dir)?;
            return Ok(Quota {
                memory_mb,
                join: dir.join("cgroup.procs"),
                limit: dir.join("cpu.max"),
                v2: true,
                dir,
            });
        }
        Err("no cgroup cpu controller at /sys/fs/cgroup/cpu (v1) or /sys/fs/cgroup (v2)".into())
    }

    /// Sets the cgroup's limit to `memory_mb`'s share (0: none). Setting a limit refills the
    /// cgroup's runtime at once, so a process limited this way does not wait for the next
    /// period (as one moved into a limited cgroup may).
    pub fn limit(&self, memory_mb: u32) -> Result<(), BoxError> {
        let value = match (Self::quota_us(memory_mb), self.v2) {
            (Some(q), false) => q.to_string(),
            (None, false) => "-1".to_owned(),
            (Some(q), true) => format!("{q} {PERIOD_US}"),
            (None, true) => format!("max {PERIOD_US}"),
        };
        std::fs::write(&self.limit, value)
            .map_err(|e| BoxError::from(format!("{}: {e}", self.limit.display())))
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
