//! Command-line arguments every scenario accepts.
//!
//! A dozen lines of hand parsing instead of clap: scenarios are measured programs, and a small
//! dependency tree keeps their build fast and their code layout stable across dependency updates.
//! Both `--flag N` and `--flag=N` are accepted.

use std::fmt;
use std::time::Duration;

/// Seed used when `--seed` is not given. Fixed, so that every run of a scenario works on the same
/// inputs as the runs its baseline came from.
pub const DEFAULT_SEED: u64 = 0x5EED_F00D;

/// Duration of the measured phase when `--duration-ms` is not given: 1 s.
pub const DEFAULT_DURATION_MS: u64 = 1000;

/// What a scenario was asked to do.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Args {
    /// How long the measured phase runs; `None` (from `--duration-ms 0`) means no time limit,
    /// which is only accepted together with `iterations`.
    pub duration: Option<Duration>,
    /// Stop after this many iterations of the main loop (whichever of the two limits comes
    /// first); `None` means no cap. Always >= 1 when set.
    pub iterations: Option<u64>,
    /// Seed of the generated inputs.
    pub seed: u64,
}

impl Default for Args {
    fn default() -> Args {
        Args { duration: Some(Duration::from_millis(DEFAULT_DURATION_MS)), iterations: None, seed: DEFAULT_SEED }
    }
}

/// What `parse` decided.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Parsed {
    /// Run with these arguments.
    Run(Args),
    /// `-h` / `--help` was given: print [`usage`] and exit 0.
    Help,
}

/// Why the arguments were rejected.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ArgsError {
    /// An argument this program does not know.
    Unknown(String),
    /// A flag that needs a value came last.
    MissingValue(&'static str),
    /// A flag's value is not a non-negative integer.
    BadNumber {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
    },
    /// `--iterations 0`: there would be nothing to measure.
    ZeroIterations,
    /// `--duration-ms 0` without `--iterations`: the run would never end.
    Unbounded,
}

impl fmt::Display for ArgsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ArgsError::Unknown(a) => write!(f, "unknown argument {a:?}"),
            ArgsError::MissingValue(flag) => write!(f, "{flag} needs a value"),
            ArgsError::BadNumber { flag, value } => {
                write!(f, "{flag} takes a non-negative integer, not {value:?}")
            }
            ArgsError::ZeroIterations => write!(f, "--iterations must be at least 1"),
            ArgsError::Unbounded => write!(f, "--duration-ms 0 (no time limit) needs --iterations N"),
        }
    }
}

impl std::error::Error for ArgsError {}

/// The usage text for program `prog`.
pub fn usage(prog: &str) -> String {
    format!(
        "usage: {prog} [--duration-ms N] [--iterations N] [--seed N]\n\
         \x20 --duration-ms N  length of the measured phase in ms (default {DEFAULT_DURATION_MS}; 0 = no limit, needs --iterations)\n\
         \x20 --iterations N   stop after N iterations of the main loop (whichever limit comes first)\n\
         \x20 --seed N         seed of the generated inputs (default {DEFAULT_SEED})\n\
         environment:\n\
         \x20 {plant}=name=pct[,name=pct...]  add real work worth pct% of a checkpoint's cost inside it\n\
         \x20 {wait}=N             wait up to N ms for a reader to attach before measuring",
        plant = funcscope::env::PLANT,
        wait = funcscope::env::WAIT_ATTACH_MS,
    )
}

/// Parses the arguments after the program name.
pub fn parse<I, S>(args: I) -> Result<Parsed, ArgsError>
where
    I: IntoIterator<Item = S>,
    S: AsRef<str>,
{
    let mut out = Args::default();
    let mut duration_ms = DEFAULT_DURATION_MS;
    let mut it = args.into_iter();
    while let Some(arg) = it.next() {
        let arg = arg.as_ref();
        if arg == "-h" || arg == "--help" {
            return Ok(Parsed::Help);
        }
        let (name, inline) = match arg.split_once('=') {
            Some((n, v)) if n.starts_with("--") => (n, Some(v.to_owned())),
            _ => (arg, None),
        };
        let flag: &'static str = match name {
            "--duration-ms" => "--duration-ms",
            "--iterations" => "--iterations",
            "--seed" => "--seed",
            _ => return Err(ArgsError::Unknown(arg.to_owned())),
        };
        let value = match inline {
            Some(v) => v,
            None => it.next().map(|v| v.as_ref().to_owned()).ok_or(ArgsError::MissingValue(flag))?,
        };
        let n = parse_u64(&value).ok_or(ArgsError::BadNumber { flag, value })?;
        match flag {
            "--duration-ms" => duration_ms = n,
            "--iterations" => out.iterations = Some(n),
            _ => out.seed = n,
        }
    }
    if out.iterations == Some(0) {
        return Err(ArgsError::ZeroIterations);
    }
    out.duration = (duration_ms > 0).then(|| Duration::from_millis(duration_ms));
    if out.duration.is_none() && out.iterations.is_none() {
        return Err(ArgsError::Unbounded);
    }
    Ok(Parsed::Run(out))
}

/// Decimal, or hexadecimal with a `0x` prefix (handy for seeds); `_` separators allowed.
fn parse_u64(s: &str) -> Option<u64> {
    let s = s.replace('_', "");
    match s.strip_prefix("0x").or_else(|| s.strip_prefix("0X")) {
        Some(hex) => u64::from_str_radix(hex, 16).ok(),
        None => s.parse().ok(),
    }
}

/// Parses `std::env::args()`; prints usage and exits 0 on `--help`, prints the error and usage
/// and exits 2 on bad arguments.
pub fn from_env_or_exit(prog: &str) -> Args {
    match parse(std::env::args().skip(1)) {
        Ok(Parsed::Run(a)) => a,
        Ok(Parsed::Help) => {
            println!("{}", usage(prog));
            std::process::exit(0)
        }
        Err(e) => {
            eprintln!("{prog}: {e}\n{}", usage(prog));
            std::process::exit(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(a: &[&str]) -> Result<Args, ArgsError> {
        match parse(a)? {
            Parsed::Run(a) => Ok(a),
            Parsed::Help => panic!("unexpected help"),
        }
    }

    #[test]
    fn defaults() {
        let a = run(&[]).unwrap();
        assert_eq!(a.duration, Some(Duration::from_millis(1000)));
        assert_eq!(a.iterations, None);
        assert_eq!(a.seed, DEFAULT_SEED);
    }

    #[test]
    fn all_flags_both_forms() {
        let a = run(&["--duration-ms", "500", "--iterations=1000", "--seed", "0x2a"]).unwrap();
        assert_eq!(a, Args { duration: Some(Duration::from_millis(500)), iterations: Some(1000), seed: 42 });
        let b = run(&["--duration-ms=0", "--iterations", "1_000"]).unwrap();
        assert_eq!(b.duration, None);
        assert_eq!(b.iterations, Some(1000));
    }

    #[test]
    fn help() {
        assert_eq!(parse(["--help"]).unwrap(), Parsed::Help);
        assert_eq!(parse(["--seed", "1", "-h"]).unwrap(), Parsed::Help);
    }

    #[test]
    fn errors() {
        assert_eq!(run(&["--frobnicate"]), Err(ArgsError::Unknown("--frobnicate".into())));
        assert_eq!(run(&["extra"]), Err(ArgsError::Unknown("extra".into())));
        assert_eq!(run(&["--seed"]), Err(ArgsError::MissingValue("--seed")));
        assert_eq!(
            run(&["--duration-ms", "-5"]),
            Err(ArgsError::BadNumber { flag: "--duration-ms", value: "-5".into() })
        );
        assert_eq!(run(&["--iterations", "0"]), Err(ArgsError::ZeroIterations));
        assert_eq!(run(&["--duration-ms", "0"]), Err(ArgsError::Unbounded));
        assert!(run(&["--unknown=3"]).unwrap_err().to_string().contains("--unknown=3"));
    }
}
