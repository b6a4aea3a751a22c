//! CPU quotas of Lambda memory sizes. Lambda gives a function CPU in proportion to its memory
//! (1,769 MB buys one vCPU), so a 128 MB function gets about 7% of one. A cgroup with that
//! CFS quota (cgroup v1 `cpu.cfs_quota_us`, or v2 `cpu.max`) holds the function process from
//! its first instruction: a small launcher joins it, then execs the function (`launch`).
//! For Lambda's on-demand
//! init, which runs on a full vCPU, a cgroup of its own starts without a limit and gets the
//! memory size's share when the process's init ends ([`Quota::limit`]).

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use crate::BoxError;

/// The argument that makes this binary a launcher: `LAUNCH <join file> <stamp file> <program>
/// [<argument>...]`.
const LAUNCH: &str = "--launch-in-cgroup";

/// The program and arguments that start `program` in `quota`'s cgroup, writing to `stamp`
/// the wall-clock time at which it joined (read back by [`joined_at`]).
///
/// Why a launcher, and why the clock starts there: joining a cgroup can take tens of ms
/// (cgroup v1 waits for an RCU grace period), and joining between fork and exec of this
/// process (`pre_exec`) makes std fork it instead of spawning it: copying, then tearing
/// down, the page tables of a process of hundreds of MB added 10 to 15 ms to every init. The
/// launcher is spawned without a fork of this process, joins, reads the clock, and execs the
/// function; init counts from that stamp, so the exec, the loader and everything after it are
/// the function's, and nothing before it is.
pub fn launch(
    quota: &Quota,
    stamp: &Path,
    program: &Path,
    args: &[String],
) -> Result<(PathBuf, Vec<String>), BoxError> {
    let me = std::env::current_exe()?;
    let mut all = vec![
        LAUNCH.to_owned(),
        quota.join_file().display().to_string(),
        stamp.display().to_string(),
        program.display().to_string(),
    ];
    all.extend(args.iter().cloned());
    Ok((me, all))
}

/// When the launched process joined its cgroup, from its stamp file.
pub fn joined_at(stamp: &Path) -> Result<SystemTime, BoxError> {
    let text = std::fs::read_to_string(stamp)
        .map_err(|e| format!("no launch stamp at {}: {e}", stamp.display()))?;
    let nanos: u64 = text.trim().parse()?;
    Ok(UNIX_EPOCH + Duration::from_nanos(nanos))
}

/// In a launcher (see [`launch`]): joins the cgroup, writes the stamp and execs the program,
/// returning only on an error. `None` when this process is not a launcher.
pub fn launch_if_asked() -> Option<BoxError> {
    use std::os::unix::process::CommandExt;
    let mut args = std::env::args_os().skip(1);
    if args.next()? != LAUNCH {
        return None;
    }
    let (Some(join), Some(stamp), Some(program)) = (args.next(), args.next(), args.next()) else {
        return Some(format!("{LAUNCH} <join file> <stamp file> <program> [args]").into());
    };
    if let Err(e) = std::fs::write(&join, "0") {
        return Some(format!("cannot join {}: {e}", join.display()).into());
    }
    let now = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .unwrap_or_default();
    if let Err(e) = std::fs::write(&stamp, now.as_nanos().to_string()) {
        return Some(format!("cannot write {}: {e}", stamp.display()).into());
    }
    Some(std::process::Command::new(program).args(args).exec().into())
}

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

    /// A cgroup for on-demand cold starts at `memory_mb`: no limit until [`Quota::limit`].
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
            std::fs::write(dir.join("cpu.cfs_period_us"), PERIOD_US.to_string())?;
            return Ok(Quota {
                memory_mb,
                join: dir.join("tasks"),
                limit: dir.join("cpu.cfs_quota_us"),
                v2: false,
                dir,
            });
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
