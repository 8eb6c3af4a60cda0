//! Scenario `prefork`: a pre-forked worker model, as nginx or haproxy run, with one measured
//! region per worker process.
//!
//! # The model
//! The **parent** is a supervisor and is *not instrumented*: it never calls `funcscope::init`, so
//! it creates no `<pid>.sock` and the harness sees only the workers. For each of `--workers N`
//! (default 2) workers it creates a Unix socketpair and spawns a worker: this same binary,
//! re-executed with `--worker K` and the ordinary scenario flags (`--duration-ms`, `--iterations`,
//! `--seed`), its end of the socketpair as its standard input. (Re-exec rather than `fork`: the
//! scenarios crate is `#![forbid(unsafe_code)]`, and a fork of a multi-threaded process needs
//! `unsafe`; the worker's life is the same.) Workers inherit the environment, so
//! `FUNCSCOPE_SOCKET_DIR`, `FUNCSCOPE_WAIT_ATTACH_MS` and `FUNCSCOPE_PLANT` reach each of them.
//!
//! Each **worker** is an ordinary scenario process: it calibrates, calls `funcscope::init` itself
//! (so it creates its own `<pid>.sock`), waits for the reader and runs its instrumented loop over
//! its own seeded corpus of HTTP/1.1 requests (seed + K): per request, `worker_parse` (request
//! line and headers, see `funcscope_scenarios::http`) and `worker_respond` (route and build the
//! response; a fixed 400 for a request that does not parse). Outside the checkpoints it sends each
//! response, length-prefixed and batched, to the parent over the socketpair, then prints the usual
//! summary line (`prefork worker K: iterations=N ...`) on its standard output, which the parent
//! reads. The checkpoint names are the same in every worker, so the harness merges them by name.
//!
//! The parent relays the workers' summary lines, counts the responses each worker sent, waits for
//! every worker, checks that each one answered exactly as many requests as it reports iterations,
//! and prints `prefork: workers=N iterations=T responses=T` (with `--totals-file P` it also writes
//! each worker's count and the total to P). A worker that writes to a parent that has gone away
//! gets a broken pipe and exits 1.
//!
//! # Exit codes
//! 0 when every worker exited 0 and its counts agree; 1 when a worker failed (its exit code or
//! signal is named on stderr), could not be started, or its counts disagree; 2 on bad arguments,
//! a bad `FUNCSCOPE_PLANT` or `FUNCSCOPE_WAIT_ATTACH_MS`, or (in a worker) a probe that could not
//! start. `--fail-worker K` makes worker K exit with code 7, without funcscope cleanup, 50 ms
//! into its measured phase (to test how failures are reported).

#![forbid(unsafe_code)]

use std::io::{BufRead, BufReader, Write};
use std::os::fd::{AsFd, OwnedFd};
use std::os::unix::net::UnixStream;
use std::os::unix::process::ExitStatusExt;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use funcscope_scenarios::http::{self, HeaderSpan, Router};
use funcscope_scenarios::prefork::{self, FrameWriter, ParsedPrefork, PreforkArgs, Role, FAIL_EXIT_CODE};
use funcscope_scenarios::{Meter, Plant, Probe, Scenario};

const WORKER_PARSE: usize = 0;
const WORKER_RESPOND: usize = 1;

/// Requests in each worker's corpus.
const CORPUS: usize = 256;

/// How long into its measured phase the `--fail-worker` worker fails.
const FAIL_AFTER: Duration = Duration::from_millis(50);

/// The answer to a request that does not parse.
const BAD_REQUEST: &[u8] = b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";

/// One worker's state: its corpus, router, scratch buffers and (in the measured phase) the
/// stream of responses to the parent.
struct Worker {
    corpus: Vec<Vec<u8>>,
    next: usize,
    router: Router,
    headers: Vec<HeaderSpan>,
    out: Vec<u8>,
    body: Vec<u8>,
    sink: Option<FrameWriter<UnixStream>>,
}

impl Scenario for Worker {
    const NAME: &'static str = "prefork";
    const CHECKPOINTS: &'static [&'static str] = &["worker_parse", "worker_respond"];

    fn new(seed: u64) -> Self {
        Worker {
            corpus: http::corpus(seed, CORPUS),
            next: 0,
            router: Router::default(),
            headers: Vec::with_capacity(http::MAX_HEADERS),
            out: Vec::with_capacity(1024),
            body: Vec::with_capacity(256),
            sink: None,
        }
    }

    fn step<M: Meter>(&mut self, m: &mut M, plant: &Plant) -> u64 {
        let req = &self.corpus[self.next];
        self.next = (self.next + 1) % self.corpus.len();

        m.enter(WORKER_PARSE);
        let parsed = http::parse_request_line(req)
            .and_then(|(line, off)| http::parse_headers(req, off, line.version, &mut self.headers).map(|h| (line, h)));
        plant.extra(WORKER_PARSE);
        m.exit(WORKER_PARSE);

        m.enter(WORKER_RESPOND);
        let n = match &parsed {
            Ok((line, head)) => {
                let route = self.router.lookup(line.method, &req[line.path.clone()]);
                http::build_response(&mut self.out, &mut self.body, line.method, &route, head)
            }
            Err(_) => {
                self.out.clear();
                self.out.extend_from_slice(BAD_REQUEST);
                self.out.len()
            }
        };
        plant.extra(WORKER_RESPOND);
        m.exit(WORKER_RESPOND);

        if let Some(sink) = &mut self.sink {
            if let Err(e) = sink.push(&self.out) {
                eprintln!("prefork worker: sending a response to the parent: {e}; exiting");
                std::process::exit(1);
            }
        }
        (n as u64) ^ ((self.headers.len() as u64) << 16) ^ (u64::from(parsed.is_ok()) << 40)
    }
}

fn main() {
    let p = match prefork::parse(std::env::args().skip(1)) {
        Ok(ParsedPrefork::Run(p)) => p,
        Ok(ParsedPrefork::Help) => {
            println!("{}", prefork::usage(Worker::NAME));
            return;
        }
        Err(e) => {
            eprintln!("{}: {e}\n{}", Worker::NAME, prefork::usage(Worker::NAME));
            std::process::exit(2)
        }
    };
    match p.role.clone() {
        Role::Worker { index } => worker(index, &p),
        Role::Parent { workers, totals_file } => std::process::exit(parent(workers, totals_file, &p)),
    }
}

/// Worker K's seed: its own corpus.
fn worker_seed(seed: u64, index: u32) -> u64 {
    seed.wrapping_add(u64::from(index))
}

/// A worker's whole life: the life of any scenario (see `funcscope_scenarios::main`), plus the
/// response stream to the parent and the planned failure.
fn worker(index: u32, p: &PreforkArgs) {
    let name = format!("{} worker {index}", Worker::NAME);
    let mut plant = Plant::from_env_or_exit(&name, Worker::CHECKPOINTS);
    let seed = worker_seed(p.common.seed, index);
    let cal = funcscope_scenarios::calibrate::<Worker>(seed, funcscope_scenarios::CALIBRATION, &plant);
    let costs: Vec<String> =
        Worker::CHECKPOINTS.iter().zip(&cal.cost_ticks).map(|(n, &t)| format!("{n}={:.1}ns", cal.ns(t))).collect();
    eprintln!("calib: {name} {}", costs.join(" "));
    for s in plant.size(&cal.cost_ticks, cal.chain) {
        eprintln!("plant: {name} {} +{}% = {:.1} chain iterations", Worker::CHECKPOINTS[s.idx], s.percent, s.steps);
    }
    // Our end of the socketpair is our standard input; a duplicate of it is a full socket.
    let sock = match std::io::stdin().as_fd().try_clone_to_owned() {
        Ok(fd) => UnixStream::from(fd),
        Err(e) => {
            eprintln!("{name}: duplicating standard input (the socket to the parent): {e}");
            std::process::exit(1)
        }
    };
    let mut w = Worker::new(seed);
    w.sink = Some(FrameWriter::new(sock));
    let fail = p.fail_worker == Some(index);
    let mut fail_at: Option<Instant> = None;
    let session = funcscope_scenarios::start(Worker::CHECKPOINTS);
    funcscope_scenarios::run_loop(session, &p.common, &name, || {
        if fail && Instant::now() >= *fail_at.get_or_insert_with(|| Instant::now() + FAIL_AFTER) {
            eprintln!("{name}: failing on purpose (--fail-worker {index}) with exit code {FAIL_EXIT_CODE}");
            std::process::exit(FAIL_EXIT_CODE);
        }
        w.step(&mut Probe, &plant)
    });
    let sent = w.sink.take().map(|s| s.finish().and_then(|s| s.shutdown(std::net::Shutdown::Write)));
    if let Some(Err(e)) = sent {
        eprintln!("{name}: sending the last responses to the parent: {e}");
        std::process::exit(1);
    }
}

/// One spawned worker and the threads that read its two outputs.
struct Spawned {
    index: u32,
    child: Child,
    /// Relays its standard output; returns the iteration count of its summary line.
    stdout: JoinHandle<Option<u64>>,
    /// Counts its responses on the socketpair.
    responses: JoinHandle<std::io::Result<(u64, u64)>>,
}

fn spawn_worker(index: u32, p: &PreforkArgs) -> std::io::Result<Spawned> {
    let exe = std::env::current_exe()?;
    let (ours, theirs) = UnixStream::pair()?;
    let mut cmd = Command::new(exe);
    cmd.arg("--worker").arg(index.to_string()).args(&p.passthrough);
    if let Some(k) = p.fail_worker {
        cmd.arg("--fail-worker").arg(k.to_string());
    }
    cmd.stdin(Stdio::from(OwnedFd::from(theirs))).stdout(Stdio::piped());
    let mut child = cmd.spawn()?;
    // Drop our copy of the worker's end, so its exit ends the response stream.
    drop(cmd);
    let out = child.stdout.take().expect("stdout is piped");
    let stdout = std::thread::spawn(move || {
        let mut iterations = None;
        for line in BufReader::new(out).lines().map_while(Result::ok) {
            iterations = prefork::summary_iterations(&line).or(iterations);
            let mut o = std::io::stdout().lock();
            let _ = writeln!(o, "{line}");
            let _ = o.flush();
        }
        iterations
    });
    let responses = std::thread::spawn(move || prefork::count_frames(ours));
    Ok(Spawned { index, child, stdout, responses })
}

fn describe(status: ExitStatus) -> String {
    match (status.code(), status.signal()) {
        (Some(c), _) => format!("exited with code {c}"),
        (None, Some(s)) => format!("was killed by signal {s}"),
        _ => format!("ended with {status}"),
    }
}

/// Spawns the workers, waits for all of them and checks their counts; returns the exit code.
fn parent(workers: u32, totals_file: Option<std::path::PathBuf>, p: &PreforkArgs) -> i32 {
    // Fail before spawning anything on a bad plant (each worker would exit 2 on it).
    let _ = Plant::from_env_or_exit(Worker::NAME, Worker::CHECKPOINTS);
    let mut spawned = Vec::new();
    let mut ok = true;
    for k in 0..workers {
        match spawn_worker(k, p) {
            Ok(s) => spawned.push(s),
            Err(e) => {
                eprintln!("prefork: cannot start worker {k}: {e}");
                ok = false;
                break;
            }
        }
    }
    if !ok {
        for s in &mut spawned {
            let _ = s.child.kill();
        }
    }
    let mut totals = Vec::new();
    let (mut total_iterations, mut total_responses) = (0u64, 0u64);
    for mut s in spawned {
        let pid = s.child.id();
        let status = s.child.wait();
        let iterations = s.stdout.join().unwrap_or(None);
        let responses = s.responses.join().unwrap_or_else(|_| Err(std::io::Error::other("reader thread panicked")));
        let k = s.index;
        match status {
            Err(e) => {
                eprintln!("prefork: waiting for worker {k} (pid {pid}): {e}");
                ok = false;
            }
            Ok(st) if !st.success() => {
                eprintln!("prefork: worker {k} (pid {pid}) {}", describe(st));
                ok = false;
            }
            Ok(_) => match (iterations, responses) {
                (Some(n), Ok((r, _))) if n == r => {
                    total_iterations += n;
                    total_responses += r;
                    totals.push(format!("worker={k} pid={pid} iterations={n} responses={r}"));
                }
                (n, r) => {
                    eprintln!("prefork: worker {k} (pid {pid}): iterations {n:?} but responses {r:?}");
                    ok = false;
                }
            },
        }
    }
    if !ok {
        eprintln!("prefork: a worker failed; exiting 1");
        return 1;
    }
    println!("prefork: workers={workers} iterations={total_iterations} responses={total_responses}");
    if let Some(path) = totals_file {
        totals.push(format!("total iterations={total_iterations} responses={total_responses}"));
        if let Err(e) = std::fs::write(&path, totals.join("\n") + "\n") {
            eprintln!("prefork: writing {}: {e}", path.display());
            return 1;
        }
    }
    0
}
