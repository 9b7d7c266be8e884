//! Reading `/proc`: memory of the server process, CPU time of the server, of this process and
//! of the whole machine, and the machine description for the report. Also CPU affinity
//! (`--server-cpus`): parsing a CPU list and pinning threads with `sched_setaffinity`.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

/// Linux reports CPU times in USER_HZ ticks, which is 100 on every architecture Rust targets.
pub const TICKS_PER_SEC: f64 = 100.0;

/// A `kB` field of `/proc/<pid>/status` (`VmRSS`, `VmHWM`).
pub fn status_kb(pid: u32, key: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    text.lines().find_map(|l| {
        let rest = l.strip_prefix(key)?.strip_prefix(':')?;
        rest.trim().trim_end_matches("kB").trim().parse().ok()
    })
}

/// utime + stime of a process, in ticks (`/proc/<pid>/stat`, or `self`).
pub fn cpu_ticks(pid: &str) -> Option<u64> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name (field 2) may contain spaces; everything after its ')' is fixed.
    let rest = &text[text.rfind(')')? + 1..];
    let f: Vec<&str> = rest.split_whitespace().collect();
    // After ')': state is index 0, so utime (field 14) is index 11 and stime index 12.
    Some(f.get(11)?.parse::<u64>().ok()? + f.get(12)?.parse::<u64>().ok()?)
}

/// Bytes written so far (`wchar` of `/proc/<pid>/task/<tid>/io`: every `write`-family call,
/// cached or not) by the threads of `pid` named `name`; `None` if it has no such thread.
/// The SQLite token writer's thread (`sqlite-writer`) writes its WAL appends and, in its own
/// small checkpoints, pages copied back into the database file.
pub fn thread_bytes_written(pid: u32, name: &str) -> Option<u64> {
    let mut total = None;
    for task in std::fs::read_dir(format!("/proc/{pid}/task"))
        .ok()?
        .flatten()
    {
        let path = task.path();
        let comm = std::fs::read_to_string(path.join("comm")).unwrap_or_default();
        if comm.trim_end() != name {
            continue;
        }
        let io = std::fs::read_to_string(path.join("io")).ok()?;
        let wchar = io
            .lines()
            .find_map(|l| l.strip_prefix("wchar:"))?
            .trim()
            .parse::<u64>()
            .ok()?;
        total = Some(total.unwrap_or(0) + wchar);
    }
    total
}

/// (busy, total) ticks of all CPUs from `/proc/stat`.
fn machine_ticks() -> Option<(u64, u64)> {
    let text = std::fs::read_to_string("/proc/stat").ok()?;
    let line = text.lines().next()?.strip_prefix("cpu ")?;
    let v: Vec<u64> = line
        .split_whitespace()
        .filter_map(|x| x.parse().ok())
        .collect();
    // user nice system idle iowait irq softirq steal guest guest_nice; guest time is already
    // counted in user.
    let total: u64 = v.iter().take(8).sum();
    let idle = v.get(3).copied().unwrap_or(0) + v.get(4).copied().unwrap_or(0);
    Some((total.saturating_sub(idle), total))
}

/// A point-in-time CPU reading; two of them give the CPU use in between.
#[derive(Clone, Copy)]
pub struct CpuSnapshot {
    at: Instant,
    server: u64,
    client: u64,
    busy: u64,
    total: u64,
}

/// CPU used between two snapshots, in cores (1.0 = one core fully busy).
#[derive(Clone, Copy, Debug, Default)]
pub struct CpuUse {
    pub server: f64,
    pub client: f64,
    /// Everything busy on the machine, including the two above.
    pub machine: f64,
}

impl CpuSnapshot {
    pub fn take(server_pid: u32) -> Self {
        let (busy, total) = machine_ticks().unwrap_or((0, 0));
        Self {
            at: Instant::now(),
            server: cpu_ticks(&server_pid.to_string()).unwrap_or(0),
            client: cpu_ticks("self").unwrap_or(0),
            busy,
            total,
        }
    }

    pub fn since(&self, earlier: &CpuSnapshot) -> CpuUse {
        let secs = self.at.duration_since(earlier.at).as_secs_f64().max(1e-3);
        let cores = |a: u64, b: u64| a.saturating_sub(b) as f64 / TICKS_PER_SEC / secs;
        let total = self.total.saturating_sub(earlier.total) as f64;
        let machine = if total > 0.0 {
            self.busy.saturating_sub(earlier.busy) as f64 / total * online_cpus() as f64
        } else {
            0.0
        };
        CpuUse {
            server: cores(self.server, earlier.server),
            client: cores(self.client, earlier.client),
            machine,
        }
    }
}

/// Polls the server's memory every 100 ms while alive.
pub struct RssMonitor {
    stop: Arc<AtomicBool>,
    max_rss_kb: Arc<AtomicU64>,
    pid: u32,
    task: tokio::task::JoinHandle<()>,
}

/// Resets the kernel's peak-RSS counter of a process (`echo 5 > /proc/<pid>/clear_refs`,
/// Linux ≥ 4.0) so `VmHWM` covers only what follows.
pub fn reset_peak(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

impl RssMonitor {
    pub fn start(pid: u32) -> Self {
        let stop = Arc::new(AtomicBool::new(false));
        let max_rss_kb = Arc::new(AtomicU64::new(status_kb(pid, "VmRSS").unwrap_or(0)));
        let task = {
            let (stop, max) = (stop.clone(), max_rss_kb.clone());
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(Duration::from_millis(100));
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    match status_kb(pid, "VmRSS") {
                        Some(kb) => {
                            max.fetch_max(kb, Ordering::Relaxed);
                        }
                        None => break,
                    }
                }
            })
        };
        Self {
            stop,
            max_rss_kb,
            pid,
            task,
        }
    }

    /// Peak resident memory in kB: the kernel's high-water mark (`VmHWM`, since the process
    /// started or since [`reset_peak`]) or the highest polled `VmRSS`, whichever is larger.
    pub async fn finish(self) -> u64 {
        self.stop.store(true, Ordering::Relaxed);
        let hwm = status_kb(self.pid, "VmHWM").unwrap_or(0);
        let _ = self.task.await;
        hwm.max(self.max_rss_kb.load(Ordering::Relaxed))
    }
}

/// CPUs online on the machine (the `cpuN` lines of `/proc/stat`, which the first line sums),
/// whatever this process is pinned to; falls back to [`nproc`].
pub fn online_cpus() -> usize {
    std::fs::read_to_string("/proc/stat")
        .ok()
        .map(|t| {
            t.lines()
                .filter(|l| {
                    l.split_whitespace()
                        .next()
                        .and_then(|name| name.strip_prefix("cpu"))
                        .is_some_and(|n| n.parse::<usize>().is_ok())
                })
                .count()
        })
        .filter(|&n| n > 0)
        .unwrap_or_else(nproc)
}

/// CPUs this process may use (its affinity mask, so fewer after pinning).
pub fn nproc() -> usize {
    std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(1)
}

fn cpu_model() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                let (k, v) = l.split_once(':')?;
                (k.trim() == "model name").then(|| v.trim().to_string())
            })
        })
        .unwrap_or_else(|| "unknown".into())
}

fn first_line(path: &str) -> String {
    std::fs::read_to_string(path)
        .ok()
        .and_then(|t| t.lines().next().map(|l| l.trim().to_string()))
        .unwrap_or_else(|| "unknown".into())
}

fn mem_total_mib() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|t| {
            t.lines().find_map(|l| {
                l.strip_prefix("MemTotal:")?
                    .trim()
                    .trim_end_matches("kB")
                    .trim()
                    .parse::<u64>()
                    .ok()
            })
        })
        .unwrap_or(0)
        / 1024
}

fn git_revision(root: &std::path::Path) -> String {
    let run = |args: &[&str]| {
        std::process::Command::new("git")
            .args(args)
            .current_dir(root)
            .output()
            .ok()
            .filter(|o| o.status.success())
            .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
    };
    match run(&["rev-parse", "--short", "HEAD"]) {
        Some(rev) => {
            // Only changes outside the bench itself matter for the numbers.
            let dirty = run(&[
                "status",
                "--porcelain",
                "--untracked-files=no",
                "--",
                ".",
                ":!crates/bench",
                ":!BENCHMARKS.md",
            ])
            .map(|s| !s.is_empty())
            .unwrap_or(false);
            if dirty {
                format!("{rev} (with uncommitted changes outside crates/bench)")
            } else {
                rev
            }
        }
        None => "unknown".into(),
    }
}

/// The machine the numbers come from.
pub struct MachineInfo {
    pub nproc: usize,
    pub cpu_model: String,
    pub mem_mib: u64,
    pub kernel: String,
    pub date: String,
    pub loadavg_start: String,
    pub pressure_start: String,
    pub revision: String,
}

impl MachineInfo {
    pub fn collect(root: &std::path::Path) -> Self {
        Self {
            nproc: online_cpus(),
            cpu_model: cpu_model(),
            mem_mib: mem_total_mib(),
            kernel: first_line("/proc/sys/kernel/osrelease"),
            date: chrono::Utc::now().format("%Y-%m-%d %H:%M UTC").to_string(),
            loadavg_start: loadavg(),
            pressure_start: pressure(),
            revision: git_revision(root),
        }
    }
}

/// CPU and I/O pressure (PSI, share of the last 60 s in which some task waited), if the kernel
/// exposes it: how much the other tenants of the machine got in the way.
pub fn pressure() -> String {
    let read = |kind: &str| {
        std::fs::read_to_string(format!("/proc/pressure/{kind}"))
            .ok()
            .and_then(|t| {
                t.lines()
                    .find(|l| l.starts_with("some"))
                    .and_then(|l| l.split_whitespace().find_map(|f| f.strip_prefix("avg60=")))
                    .map(|v| format!("{kind} {v}%"))
            })
    };
    match (read("cpu"), read("io")) {
        (Some(c), Some(i)) => format!("{c}, {i}"),
        (Some(c), None) => c,
        (None, Some(i)) => i,
        (None, None) => "n/a".into(),
    }
}

/// The 1/5/15-minute load averages.
pub fn loadavg() -> String {
    let l = first_line("/proc/loadavg");
    l.split_whitespace().take(3).collect::<Vec<_>>().join(" ")
}

/// A set of CPU numbers (`--server-cpus`), ascending, without duplicates, never empty.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct CpuList(Vec<usize>);

impl CpuList {
    /// Parses `0`, `0,1`, `0-3`, `0-1,4` (spaces around the parts allowed). Every CPU must be
    /// one of `available` (the CPUs this process may run on).
    pub fn parse(text: &str, available: &[usize]) -> Result<Self, String> {
        let shown = CpuList::label_of(available);
        let mut cpus = Vec::new();
        for part in text.split(',') {
            let part = part.trim();
            if part.is_empty() {
                return Err(format!(
                    "`{text}`: empty entry (expected a list such as 0, 0,1 or 0-1)"
                ));
            }
            let number = |n: &str| match n.trim() {
                "" => Err(format!("`{part}`: a CPU number is missing")),
                n => n.parse::<usize>().map_err(|_| {
                    if n == part {
                        format!("`{n}` is not a CPU number")
                    } else {
                        format!("`{part}`: `{n}` is not a CPU number")
                    }
                }),
            };
            let (lo, hi) = match part.split_once('-') {
                Some((a, b)) => (number(a)?, number(b)?),
                None => {
                    let n = number(part)?;
                    (n, n)
                }
            };
            if lo > hi {
                return Err(format!("`{part}`: the range runs backwards"));
            }
            // Checked before expanding, so that `0-99999999` is refused without a huge list.
            for n in [lo, hi].into_iter().chain(lo..=hi) {
                if !available.contains(&n) {
                    return Err(format!(
                        "CPU {n} is not available on this machine (this process may use CPUs {shown})"
                    ));
                }
            }
            cpus.extend(lo..=hi);
        }
        cpus.sort_unstable();
        cpus.dedup();
        Ok(Self(cpus))
    }

    pub fn cpus(&self) -> &[usize] {
        &self.0
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    /// The CPUs of `available` not in this list; `None` if there are none.
    pub fn rest(&self, available: &[usize]) -> Option<CpuList> {
        let mut rest: Vec<usize> = available
            .iter()
            .copied()
            .filter(|c| !self.0.contains(c))
            .collect();
        rest.sort_unstable();
        rest.dedup();
        (!rest.is_empty()).then_some(Self(rest))
    }

    /// The CPUs in both lists, as a label (`None` if they share none).
    pub fn shared_with(&self, other: &CpuList) -> Option<String> {
        let shared: Vec<usize> = self
            .0
            .iter()
            .copied()
            .filter(|c| other.0.contains(c))
            .collect();
        (!shared.is_empty()).then(|| CpuList::label_of(&shared))
    }

    /// `0-1,4`.
    pub fn label(&self) -> String {
        CpuList::label_of(&self.0)
    }

    fn label_of(cpus: &[usize]) -> String {
        let mut sorted = cpus.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        let mut parts: Vec<String> = Vec::new();
        let mut i = 0;
        while i < sorted.len() {
            let mut j = i;
            while j + 1 < sorted.len() && sorted[j + 1] == sorted[j] + 1 {
                j += 1;
            }
            parts.push(if i == j {
                sorted[i].to_string()
            } else {
                format!("{}-{}", sorted[i], sorted[j])
            });
            i = j + 1;
        }
        parts.join(",")
    }

    fn set(&self) -> rustix::thread::CpuSet {
        let mut set = rustix::thread::CpuSet::new();
        for &c in &self.0 {
            set.set(c);
        }
        set
    }
}

fn set_cpus(set: &rustix::thread::CpuSet) -> Vec<usize> {
    (0..rustix::thread::CpuSet::MAX_CPU)
        .filter(|&c| set.is_set(c))
        .collect()
}

/// The CPUs the calling thread may run on (its affinity mask).
pub fn available_cpus() -> anyhow::Result<Vec<usize>> {
    let set = rustix::thread::sched_getaffinity(None)
        .map_err(|e| anyhow::anyhow!("sched_getaffinity: {e}"))?;
    Ok(set_cpus(&set))
}

/// The CPUs process (or thread) `pid` may run on.
pub fn cpus_of(pid: u32) -> anyhow::Result<Vec<usize>> {
    let raw = i32::try_from(pid).map_err(|_| anyhow::anyhow!("pid {pid} out of range"))?;
    let pid = rustix::process::Pid::from_raw(raw).ok_or_else(|| anyhow::anyhow!("pid 0"))?;
    let set = rustix::thread::sched_getaffinity(Some(pid))
        .map_err(|e| anyhow::anyhow!("sched_getaffinity({raw}): {e}"))?;
    Ok(set_cpus(&set))
}

/// Pins the calling thread to `cpus`; threads and processes it starts afterwards inherit that.
pub fn pin_current_thread(cpus: &CpuList) -> anyhow::Result<()> {
    rustix::thread::sched_setaffinity(None, &cpus.set())
        .map_err(|e| anyhow::anyhow!("sched_setaffinity({}): {e}", cpus.label()))
}

/// Makes every thread of process `pid` at least `nice` nice (a thread already nicer keeps its
/// value; nothing is made less nice, which would need privileges). Threads the process starts
/// afterwards inherit the value of the thread that starts them. Returns how many threads
/// changed.
pub fn renice_threads(pid: u32, nice: i32) -> anyhow::Result<usize> {
    let dir = format!("/proc/{pid}/task");
    let mut changed = 0;
    for entry in std::fs::read_dir(&dir).map_err(|e| anyhow::anyhow!("listing {dir}: {e}"))? {
        let name = entry?.file_name();
        let Some(tid) = name
            .to_str()
            .and_then(|t| t.parse::<i32>().ok())
            .and_then(rustix::process::Pid::from_raw)
        else {
            continue;
        };
        // A thread may end between the listing and here: skip it.
        let Ok(now) = rustix::process::getpriority_process(Some(tid)) else {
            continue;
        };
        if now < nice {
            // On Linux, PRIO_PROCESS with a thread id sets that thread alone.
            match rustix::process::setpriority_process(Some(tid), nice) {
                Ok(()) => changed += 1,
                // The thread ended meanwhile.
                Err(rustix::io::Errno::SRCH) => {}
                Err(e) => anyhow::bail!("setpriority({}, {nice}): {e}", tid.as_raw_nonzero()),
            }
        }
    }
    Ok(changed)
}

/// Runs `f` with the calling thread pinned to `cpus` (unchanged if `None`), then puts its
/// previous affinity back. A child process forked or a thread spawned inside `f` keeps
/// `cpus`, from its first instruction on, and so do the threads it starts in turn.
pub fn on_cpus<T>(cpus: Option<&CpuList>, f: impl FnOnce() -> T) -> anyhow::Result<T> {
    let Some(cpus) = cpus else {
        return Ok(f());
    };
    let before = rustix::thread::sched_getaffinity(None)
        .map_err(|e| anyhow::anyhow!("sched_getaffinity: {e}"))?;
    pin_current_thread(cpus)?;
    let out = f();
    // Not an error: `out` may own a child process that must not be dropped unnoticed.
    if let Err(e) = rustix::thread::sched_setaffinity(None, &before) {
        eprintln!("  warning: could not restore this thread's CPU affinity: {e}");
    }
    Ok(out)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::expect_used)]
mod tests {
    use super::*;

    #[test]
    fn bytes_written_are_counted_for_the_named_threads_only() {
        use std::io::Write;
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("out");
        let (done, wait) = std::sync::mpsc::channel::<()>();
        let (wrote, written) = std::sync::mpsc::channel::<()>();
        let t = std::thread::Builder::new()
            .name("bench-io-test".into())
            .spawn(move || {
                let mut f = std::fs::File::create(path).unwrap();
                f.write_all(&[7u8; 100_000]).unwrap();
                wrote.send(()).unwrap();
                // Alive until measured: a finished thread leaves /proc/<pid>/task.
                wait.recv().unwrap();
            })
            .unwrap();
        written.recv().unwrap();
        let pid = std::process::id();
        let n = thread_bytes_written(pid, "bench-io-test").unwrap();
        assert!(n >= 100_000, "{n}");
        assert_eq!(thread_bytes_written(pid, "no-such-thread"), None);
        done.send(()).unwrap();
        t.join().unwrap();
    }

    #[test]
    fn renices_every_thread_of_a_child_and_never_lowers() {
        let nice_of = |pid: u32| {
            let pid = rustix::process::Pid::from_raw(i32::try_from(pid).unwrap()).unwrap();
            rustix::process::getpriority_process(Some(pid)).unwrap()
        };
        let mut child = std::process::Command::new("sleep")
            .arg("5")
            .spawn()
            .unwrap();
        let pid = child.id();
        let before = nice_of(pid);
        let target = (before + 3).min(19);
        assert_eq!(renice_threads(pid, target).unwrap(), 1);
        assert_eq!(nice_of(pid), target);
        // Asking for less than it has changes nothing.
        assert_eq!(renice_threads(pid, before).unwrap(), 0);
        assert_eq!(nice_of(pid), target);
        child.kill().unwrap();
        child.wait().unwrap();
    }

    #[test]
    fn reads_own_process() {
        let pid = std::process::id();
        assert!(status_kb(pid, "VmRSS").unwrap_or(0) > 0);
        assert!(cpu_ticks("self").is_some());
        assert!(machine_ticks().is_some());
        assert!(online_cpus() >= nproc());
    }

    #[test]
    fn parses_cpu_lists() {
        let avail: Vec<usize> = (0..4).collect();
        let p = |t: &str| CpuList::parse(t, &avail);
        assert_eq!(p("0").unwrap().cpus(), &[0]);
        assert_eq!(p("0,1").unwrap().cpus(), &[0, 1]);
        assert_eq!(p("0-1").unwrap().cpus(), &[0, 1]);
        assert_eq!(p(" 3 , 0-1 ").unwrap().cpus(), &[0, 1, 3]);
        assert_eq!(p("1,1,0-1").unwrap().cpus(), &[0, 1]);
        assert_eq!(p("0-3").unwrap().label(), "0-3");
        assert_eq!(p("0-1,3").unwrap().label(), "0-1,3");

        let err = |t: &str| p(t).unwrap_err();
        assert!(err("").contains("empty entry"), "{}", err(""));
        assert!(err("0,").contains("empty entry"));
        assert_eq!(err("a"), "`a` is not a CPU number");
        assert!(err("-1").contains("`-1`: a CPU number is missing"));
        assert!(err("0-").contains("a CPU number is missing"));
        assert!(err("1-2-3").contains("`1-2-3`: `2-3` is not a CPU number"));
        assert!(err("3-1").contains("runs backwards"));
        // Beyond the machine, also as the end of a huge range.
        let e = err("4");
        assert!(
            e.contains("CPU 4 is not available") && e.contains("CPUs 0-3"),
            "{e}"
        );
        assert!(err("0-99999999").contains("CPU 99999999 is not available"));
        // A CPU the process may not use (a gap in its mask) is refused too.
        let gap = CpuList::parse("1", &[0, 2, 3]).unwrap_err();
        assert!(gap.contains("CPUs 0,2-3"), "{gap}");
    }

    #[test]
    fn splits_server_and_bench_cpus() {
        let avail = [0, 1];
        let server = CpuList::parse("0", &avail).unwrap();
        assert_eq!(server.rest(&avail).unwrap().cpus(), &[1]);
        let all = CpuList::parse("0-1", &avail).unwrap();
        assert!(all.rest(&avail).is_none());
        // --bench-cpus against the server sets.
        let avail: Vec<usize> = (0..16).collect();
        let bench = CpuList::parse("6-15", &avail).unwrap();
        assert_eq!(
            bench.shared_with(&CpuList::parse("0-7", &avail).unwrap()),
            Some("6-7".to_string())
        );
        assert_eq!(
            bench.shared_with(&CpuList::parse("0-3", &avail).unwrap()),
            None
        );
    }

    #[test]
    fn pins_a_thread_and_restores_it() {
        let avail = available_cpus().unwrap();
        assert!(!avail.is_empty());
        let first = CpuList::parse(&avail[0].to_string(), &avail).unwrap();
        let inside = on_cpus(Some(&first), || available_cpus().unwrap()).unwrap();
        assert_eq!(inside, vec![avail[0]]);
        assert_eq!(available_cpus().unwrap(), avail);
        // A thread started while pinned inherits the mask.
        let child = on_cpus(Some(&first), || {
            std::thread::spawn(|| available_cpus().unwrap())
                .join()
                .unwrap()
        })
        .unwrap();
        assert_eq!(child, vec![avail[0]]);
        assert_eq!(cpus_of(std::process::id()).unwrap().len(), avail.len());
    }
}
