//! Starting a function process in a cgroup, and when its init starts.
//!
//! A process under a CPU quota (`quota`) is started through a launcher: this same binary,
//! spawned as `--launch-in-cgroup <join file> <stamp file> <program> [<argument>...]`. It
//! joins the cgroup, writes the wall-clock time to the stamp file, and execs the function.
//! Init counts from that stamp, so the exec, the loader and everything after it are the
//! function's, and nothing before it is.
//!
//! Why: joining a cgroup can take tens of ms (cgroup v1 waits for an RCU grace period), and
//! joining between fork and exec of the harness itself (`pre_exec`) makes std fork it instead
//! of spawning it: copying, then tearing down, the page tables of a process of hundreds of MB
//! added 10 to 15 ms to every init. The launcher is spawned without a fork of the harness.

use std::ffi::OsString;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use tokio::time::Instant;

use crate::BoxError;

/// The argument that makes this binary a launcher.
const LAUNCH: &str = "--launch-in-cgroup";

/// The program and arguments that start `program` with `args` in the cgroup that `join`
/// admits a process to, writing its stamp to `stamp`.
pub fn command(
    join: &Path,
    stamp: &Path,
    program: &Path,
    args: &[String],
) -> (PathBuf, Vec<OsString>) {
    // Not `current_exe()`: a rebuild during the run would leave that path deleted.
    let me = PathBuf::from("/proc/self/exe");
    let mut all: Vec<OsString> = vec![LAUNCH.into(), join.into(), stamp.into(), program.into()];
    all.extend(args.iter().map(OsString::from));
    (me, all)
}

/// When a launched process's init started, on the harness's clock: `spawned` and
/// `spawned_wall` are the same moment on the two clocks, taken just before the spawn, and
/// `first_next` is when the process first asked for an event.
pub fn init_start(
    stamp: &Path,
    spawned: Instant,
    spawned_wall: SystemTime,
    first_next: Instant,
) -> Result<Instant, BoxError> {
    let text = std::fs::read_to_string(stamp)
        .map_err(|e| format!("no launch stamp at {}: {e}", stamp.display()))?;
    let nanos: u64 = text
        .trim()
        .parse()
        .map_err(|e| format!("launch stamp {}: {e}", stamp.display()))?;
    let joined = UNIX_EPOCH + Duration::from_nanos(nanos);
    let after = joined.duration_since(spawned_wall).map_err(|_| {
        format!(
            "launch stamp {} is before the spawn (a clock step?)",
            stamp.display()
        )
    })?;
    let start = spawned + after;
    if start > first_next {
        return Err(format!(
            "launch stamp {} is after the first `next` (a clock step?)",
            stamp.display()
        )
        .into());
    }
    Ok(start)
}

/// In a launcher: joins the cgroup, writes the stamp and execs the program, returning only
/// on an error. `None` when this process is not a launcher.
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
    let e = std::process::Command::new(&program).args(args).exec();
    Some(format!("cannot exec {}: {e}", program.display()).into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_stamp_outside_the_spawn_and_the_first_next_is_refused() {
        let dir = std::env::temp_dir().join(format!("launch-test-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let stamp = dir.join("f.stamp");
        let (spawned, wall) = (Instant::now(), SystemTime::now());
        let first_next = spawned + Duration::from_millis(10);
        let at = |d: Duration| {
            let nanos = (wall + d).duration_since(UNIX_EPOCH).unwrap().as_nanos();
            std::fs::write(&stamp, nanos.to_string()).unwrap();
        };
        at(Duration::from_millis(3));
        let start = init_start(&stamp, spawned, wall, first_next).unwrap();
        assert_eq!(start - spawned, Duration::from_millis(3));
        at(Duration::from_millis(11));
        assert!(init_start(&stamp, spawned, wall, first_next).is_err());
        std::fs::write(&stamp, "0").unwrap();
        assert!(init_start(&stamp, spawned, wall, first_next).is_err());
        std::fs::remove_file(&stamp).unwrap();
        assert!(init_start(&stamp, spawned, wall, first_next).is_err());
        let _ = std::fs::remove_dir_all(&dir);
    }
}
