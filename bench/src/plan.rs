//! What to run: the plan of counts (full, smoke or compare) and the command line.

use std::path::PathBuf;

use crate::BoxError;

/// How much of everything to run.
#[derive(Clone, Copy, Debug)]
pub struct Plan {
    pub smoke: bool,
    /// Warm invocations per function (and calls per floor).
    pub warm: usize,
    /// The warm runs are split into this many rounds, alternating function and floor.
    pub rounds: usize,
    /// Cold starts per binary.
    pub inits: usize,
    /// Keys seeded into the demo organization.
    pub org_keys: usize,
    /// Keys of the noisy neighbour.
    pub noisy_keys: usize,
    /// Invocations per page depth, per phase.
    pub depth_calls: usize,
    /// Get invocations per phase of the scaling run.
    pub scale_gets: usize,
}

impl Plan {
    fn full() -> Plan {
        Plan {
            smoke: false,
            warm: 10_000,
            rounds: 10,
            inits: 9,
            org_keys: 100_000,
            noisy_keys: 200_000,
            depth_calls: 400,
            scale_gets: 2_000,
        }
    }

    fn smoke() -> Plan {
        Plan {
            smoke: true,
            warm: 20,
            rounds: 2,
            inits: 1,
            org_keys: 1_000,
            noisy_keys: 2_000,
            depth_calls: 3,
            scale_gets: 10,
        }
    }

    /// For comparing builds: the warm run and cold starts only, no scaling.
    fn compare() -> Plan {
        Plan {
            warm: 3_000,
            rounds: 6,
            inits: 7,
            noisy_keys: 0,
            depth_calls: 0,
            scale_gets: 0,
            ..Plan::full()
        }
    }

    /// The page size of the scaling run: depth 1,000 is the organization's last page.
    pub fn page_limit(&self) -> usize {
        (self.org_keys / 1_000).max(1)
    }
}

pub const DEPTHS: [usize; 3] = [1, 100, 1_000];

pub struct Args {
    pub plan: Plan,
    pub bin_dir: PathBuf,
    pub events: PathBuf,
    pub out: PathBuf,
    pub zips: Option<PathBuf>,
    pub template: PathBuf,
    /// The Python peer's interpreter (a venv with its requirements).
    pub python_peer: Option<PathBuf>,
    /// The Node.js peer's directory (its entry file and node_modules).
    pub node_peer: Option<PathBuf>,
    /// bench-variant built with `AWS_LC_SYS_NO_JITTER_ENTROPY=1`.
    pub nojitter: Option<PathBuf>,
    pub coldstart_only: bool,
    /// The quota simulation alone (`sim`), at this scale.
    pub quota: Option<crate::sim::Scale>,
    /// The verify cases alone (verify.md): seeds only the keys they need.
    pub verify_only: bool,
}

pub fn args() -> Result<Args, BoxError> {
    let mut plan = Plan::full();
    let exe = std::env::current_exe()?;
    let mut bin_dir = exe.parent().ok_or("no binary directory")?.to_path_buf();
    let mut events = PathBuf::from("events");
    let mut out = PathBuf::from("bench/results");
    let mut zips = None;
    let mut template = PathBuf::from("template.yaml");
    let mut python_peer = None;
    let mut node_peer = None;
    let mut nojitter = None;
    let mut coldstart_only = false;
    let mut quota = None;
    let mut verify_only = false;
    let mut it = std::env::args().skip(1);
    while let Some(a) = it.next() {
        let mut value = || it.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--smoke" => plan = Plan::smoke(),
            "--compare" => plan = Plan::compare(),
            "--bin-dir" => bin_dir = value()?.into(),
            "--events" => events = value()?.into(),
            "--out" => out = value()?.into(),
            "--zips" => zips = Some(value()?.into()),
            "--template" => template = value()?.into(),
            "--python-peer" => python_peer = Some(value()?.into()),
            "--node-peer" => node_peer = Some(value()?.into()),
            "--nojitter-bin" => nojitter = Some(value()?.into()),
            "--coldstart-only" => coldstart_only = true,
            "--quota" => quota = Some(crate::sim::Scale::full()),
            "--quota-quick" => quota = Some(crate::sim::Scale::quick()),
            "--verify-only" => verify_only = true,
            _ => return Err(format!("unknown argument {a}").into()),
        }
    }
    Ok(Args {
        plan,
        bin_dir,
        events,
        out,
        zips,
        template,
        python_peer,
        node_peer,
        nojitter,
        coldstart_only,
        quota,
        verify_only,
    })
}
